//! Rate limiting of log lines that outside input can trigger.

/// Lets at most one log line through per interval and counts what it held back, so a line that
/// outside input can trigger at will (a bad token, a refused connection, refused exchange data)
/// cannot flood the log. Lock-free; shared between tasks behind an `Arc` or a static.
#[derive(Debug)]
pub struct LogGate {
    base: std::time::Instant,
    interval_us: u64,
    /// Microseconds since `base` before which nothing passes.
    next_us: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl LogGate {
    /// At most one line per `interval`.
    pub fn new(interval: std::time::Duration) -> LogGate {
        LogGate {
            base: std::time::Instant::now(),
            interval_us: interval.as_micros().min(u64::MAX as u128) as u64,
            next_us: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being the lines held back since the last
    /// one that passed; `None` (counted) otherwise.
    pub fn pass(&self) -> Option<u64> {
        self.pass_n(1)
    }

    /// Like [`LogGate::pass`] for a line that stands for `n` occurrences: `Some(k)` carries the
    /// occurrences held back before this one; when held back, all `n` are counted.
    pub fn pass_n(&self, n: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.base.elapsed().as_micros().min(u64::MAX as u128) as u64;
        let next = self.next_us.load(Relaxed);
        if now >= next
            && self.next_us.compare_exchange(next, now.saturating_add(self.interval_us), Relaxed, Relaxed).is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(n, Relaxed);
        None
    }
}
