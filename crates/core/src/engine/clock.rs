//! Clocks used only to *measure* processing time (tick latency → DEGRADED). Decisions never read
//! a clock: their time comes in with the event. The process's real clock lives at the edge
//! (`scalper_bybit::clock::MonotonicClock`); the core only knows the trait.

use std::cell::Cell;

/// A monotonic nanosecond counter.
pub trait Clock {
    /// Monotonic nanoseconds since an arbitrary origin.
    fn now_nanos(&self) -> u64;
}

/// A clock that never moves: replay and backtests use it, so latency can never change a
/// decision there.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrozenClock;

impl Clock for FrozenClock {
    fn now_nanos(&self) -> u64 {
        0
    }
}

/// A clock moved by hand (tests inject slowness with it, no real sleeps).
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: Cell<u64>,
}

impl ManualClock {
    /// Advances the clock.
    pub fn advance_nanos(&self, n: u64) {
        self.nanos.set(self.nanos.get() + n);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.get()
    }
}

impl<C: Clock + ?Sized> Clock for std::rc::Rc<C> {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}
