//! The process's clocks, read only at the edges: connectors stamp what they receive with the wall
//! clock, and the runtime measures the core's tick latency with the monotonic one. The core never
//! reads either; its time comes in with each event.

use scalper_core::domain::TimeMs;
use scalper_core::engine::clock::Clock;
use std::time::Instant;

/// Wall-clock milliseconds since the epoch. Read only at the edges, never in the core.
pub fn wall_ms() -> TimeMs {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as TimeMs).unwrap_or(0)
}

/// The process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// New clock starting at zero now.
    pub fn new() -> Self {
        MonotonicClock { origin: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_nanos(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}
