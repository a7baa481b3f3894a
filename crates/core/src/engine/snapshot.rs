//! What the core publishes for the control plane once per second.

use crate::domain::TimeMs;
use crate::engine::event::FeedState;
use serde::Serialize;

/// What the core publishes for the API once per second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineSnapshot {
    /// Execution mode.
    pub mode: String,
    pub events_processed: u64,
    /// Symbols tracked.
    pub symbols: usize,
    /// Symbols with a valid book.
    pub valid_books: usize,
    /// Aggregate feed state.
    pub feed: Option<FeedState>,
    /// DEGRADED flag.
    pub degraded: bool,
    /// Feed RISK_OFF flag.
    pub feed_risk_off: bool,
    pub counters: crate::engine::core::CoreCounters,
    /// Time of the snapshot (event time).
    pub ts_ms: TimeMs,
}
