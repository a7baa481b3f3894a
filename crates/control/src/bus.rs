//! The event bus: engine `events` records fanned out to gRPC `StreamEvents` readers and kept in a
//! bounded ring for `/api/events/recent`. Fed by the core loop from its `Output::Record`s of kind
//! `events`; publishing never blocks (slow readers skip ahead and are told how many they missed).

use scalper_core::config::paths::DataKind;
use scalper_core::domain::TimeMs;
use scalper_core::engine::output::LogRecord;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Records kept for `recent` queries.
pub const DEFAULT_RECENT: usize = 1_000;
/// Per-reader buffer of the broadcast channel.
pub const DEFAULT_FANOUT: usize = 4_096;

/// One engine event as the control plane shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Position on the bus (1, 2, …).
    pub seq: u64,
    /// Event time, ms.
    pub ts_ms: TimeMs,
    /// Symbol (`None` = global).
    pub symbol: Option<String>,
    /// The body's `event` field, e.g. `DEGRADED_ENTER` (empty when the body has none).
    pub event: String,
    /// The record body.
    pub body: serde_json::Value,
}

struct Inner {
    seq: u64,
    recent: VecDeque<Arc<EventRecord>>,
}

/// Cheap-to-clone handle on the bus.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<EventRecord>>,
    inner: Arc<Mutex<Inner>>,
    keep: usize,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(DEFAULT_RECENT, DEFAULT_FANOUT)
    }
}

impl EventBus {
    /// New bus keeping `keep` recent records, with `fanout` records of buffer per reader.
    pub fn new(keep: usize, fanout: usize) -> EventBus {
        let (tx, _) = broadcast::channel(fanout.max(1));
        EventBus { tx, inner: Arc::new(Mutex::new(Inner { seq: 0, recent: VecDeque::new() })), keep: keep.max(1) }
    }

    /// Publishes a core record if it is of kind `events`; other kinds are ignored. Returns true when
    /// published.
    pub fn publish_record(&self, r: &LogRecord) -> bool {
        if r.kind != DataKind::Events {
            return false;
        }
        self.publish(r.ts_ms, r.symbol.as_ref().map(|s| s.as_str().to_string()), r.body.clone());
        true
    }

    /// Publishes one event body.
    pub fn publish(&self, ts_ms: TimeMs, symbol: Option<String>, body: serde_json::Value) {
        let event = body.get("event").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let Ok(mut g) = self.inner.lock() else { return };
        g.seq += 1;
        let rec = Arc::new(EventRecord { seq: g.seq, ts_ms, symbol, event, body });
        if g.recent.len() == self.keep {
            g.recent.pop_front();
        }
        g.recent.push_back(rec.clone());
        // Sent under the lock so readers see records in sequence order; no receivers is fine.
        let _ = self.tx.send(rec);
    }

    /// The `n` most recent records, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Arc<EventRecord>> {
        let Ok(g) = self.inner.lock() else { return Vec::new() };
        let skip = g.recent.len().saturating_sub(n);
        g.recent.iter().skip(skip).cloned().collect()
    }

    /// The `n` most recent records and a receiver for every later one, atomically (no record is
    /// both in the list and on the receiver, none falls between).
    pub fn recent_and_subscribe(&self, n: usize) -> (Vec<Arc<EventRecord>>, broadcast::Receiver<Arc<EventRecord>>) {
        match self.inner.lock() {
            Ok(g) => {
                let rx = self.tx.subscribe();
                let skip = g.recent.len().saturating_sub(n);
                (g.recent.iter().skip(skip).cloned().collect(), rx)
            }
            Err(_) => (Vec::new(), self.tx.subscribe()),
        }
    }

    /// Current number of live readers.
    pub fn readers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalper_core::domain::Symbol;

    fn rec(kind: DataKind, n: i64) -> LogRecord {
        LogRecord {
            kind,
            symbol: Some(Symbol::new("BTCUSDT")),
            ts_ms: n,
            body: serde_json::json!({"event": "X", "n": n}),
        }
    }

    #[test]
    fn keeps_only_events_and_a_bounded_ring() {
        let bus = EventBus::new(3, 16);
        assert!(!bus.publish_record(&rec(DataKind::Microcandles, 0)));
        for n in 1..=5 {
            assert!(bus.publish_record(&rec(DataKind::Events, n)));
        }
        let r = bus.recent(10);
        assert_eq!(r.iter().map(|r| r.ts_ms).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(r.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(bus.recent(1)[0].ts_ms, 5);
        assert_eq!(r[0].event, "X");
        assert_eq!(r[0].symbol.as_deref(), Some("BTCUSDT"));
    }

    #[tokio::test]
    async fn subscribers_get_later_records_in_order_and_lag_is_reported() {
        let bus = EventBus::new(10, 2);
        bus.publish(1, None, serde_json::json!({"event": "A"}));
        let (recent, mut rx) = bus.recent_and_subscribe(5);
        assert_eq!(recent.len(), 1);
        bus.publish(2, None, serde_json::json!({"event": "B"}));
        assert_eq!(rx.recv().await.unwrap().event, "B");
        for t in 3..=6 {
            bus.publish(t, None, serde_json::json!({"event": "C"}));
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(2))));
        assert_eq!(rx.recv().await.unwrap().ts_ms, 5);
    }
}
