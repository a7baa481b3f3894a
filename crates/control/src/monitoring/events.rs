//! The engine's event feed as a Prometheus counter, `scalper_events_total{kind, symbol}`, so
//! Grafana can draw pump, news, spoof, regime, state, trade and engine events as annotations and
//! in a feed panel. Text (the reasons) stays in the event log (`scalperctl events`); Prometheus
//! only learns *that* and *where* something happened.
//!
//! Label cardinality is bounded: `kind` is one of [`KINDS`], and `symbol` is a symbol of the
//! universe as last exported by [`crate::monitoring::metrics::Metrics::observe_view`], or empty
//! (global events, and events naming a symbol outside the universe).

use scalper_core::config::paths::DataKind;
use serde_json::Value;

/// Every `kind` label value.
pub const KINDS: &[&str] = &["pump", "spoof", "news", "regime", "state", "trade", "engine"];

/// The kinds that belong to one symbol: their series are created at 0 for every symbol of the
/// universe (`engine` events are global; global regime changes count as `regime` with no symbol).
pub const SYMBOL_KINDS: &[&str] = &["pump", "spoof", "news", "regime", "state", "trade"];

/// The `kind` label of a core record, `None` when the feed does not show it.
///
/// - `pump`: a pump-phase transition (intel `PUMP`);
/// - `spoof`: a wall judged spoofing (intel `WALL` with outcome `SPOOFING`; absorbing walls are not
///   counted);
/// - `news`: a news flag set, cleared or expired, a new listing;
/// - `regime`: a symbol-regime change (intel `REGIME`) or a global-regime change;
/// - `state`: a transition of a symbol's trading state machine (`STATE`);
/// - `trade`: an entry decision, a fill, a partial exit, a break-even move, a stop trigger, a
///   cancelled entry, and a closed trade (a `trades_log` record);
/// - `engine`: an engine-wide state change: pause, resume, mode change, panic, kill switch,
///   DEGRADED, feed RISK_OFF, INTEGRITY_BROKEN, storage down/up, blacklist changes.
pub fn event_kind(kind: DataKind, body: &Value) -> Option<&'static str> {
    match kind {
        // A closed trade (day summaries are snapshots, not records; the check keeps it that way).
        DataKind::TradesLog => return body.get("net_pnl").map(|_| "trade"),
        DataKind::Events => {}
        _ => return None,
    }
    if let Some(intel) = body.get("kind").and_then(Value::as_str) {
        return match intel {
            "PUMP" => Some("pump"),
            "WALL" if body.get("outcome").and_then(Value::as_str) == Some("SPOOFING") => Some("spoof"),
            "REGIME" => Some("regime"),
            _ => None,
        };
    }
    let event = body.get("event").and_then(Value::as_str)?;
    Some(match event {
        "NEWS_FLAG_SET" | "NEWS_FLAG_CLEARED" | "NEWS_FLAG_EXPIRED" | "NEWS_LISTING" => "news",
        "GLOBAL_REGIME" => "regime",
        "STATE" => "state",
        "ENTRY" | "FILL" | "PARTIAL_EXIT" | "BREAK_EVEN" | "STOP_TRIGGERED" | "ENTRY_CANCELLED" => "trade",
        "PAUSED" | "RESUMED" | "MODE_CHANGED" | "PANIC_CLOSE_ALL" | "PANIC_CONFIRMED" | "KILL_SWITCH"
        | "DEGRADED_ENTER" | "DEGRADED_EXIT" | "FEED_RISK_OFF" | "FEED_RISK_OFF_EXIT" | "INTEGRITY_BROKEN"
        | "STORAGE_DOWN" | "STORAGE_UP" | "BLACKLISTED" | "UNBLACKLISTED" => "engine",
        _ => return None,
    })
}

/// The symbol an event is about: the record's own symbol, else a `symbol` field of the body
/// (operator commands such as `NEWS_FLAG_SET` are global records naming a symbol).
pub fn event_symbol<'a>(record_symbol: Option<&'a str>, body: &'a Value) -> Option<&'a str> {
    record_symbol.or_else(|| body.get("symbol").and_then(Value::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_map_to_their_feed_kind() {
        let ev = |b: Value| event_kind(DataKind::Events, &b);
        assert_eq!(ev(json!({"kind": "PUMP", "from": "NONE", "to": "PREPUMP"})), Some("pump"));
        assert_eq!(ev(json!({"kind": "WALL", "outcome": "SPOOFING"})), Some("spoof"));
        assert_eq!(ev(json!({"kind": "WALL", "outcome": "ABSORBING"})), None);
        assert_eq!(ev(json!({"kind": "REGIME", "from": "NORMAL", "to": "PUMP"})), Some("regime"));
        assert_eq!(ev(json!({"event": "GLOBAL_REGIME", "to": "GLOBAL_PANIC"})), Some("regime"));
        assert_eq!(ev(json!({"event": "NEWS_FLAG_SET", "symbol": "BTCUSDT"})), Some("news"));
        assert_eq!(ev(json!({"event": "NEWS_LISTING"})), Some("news"));
        assert_eq!(ev(json!({"event": "STATE", "transition": {}})), Some("state"));
        assert_eq!(ev(json!({"event": "ENTRY"})), Some("trade"));
        assert_eq!(ev(json!({"event": "FILL"})), Some("trade"));
        assert_eq!(ev(json!({"event": "PANIC_CLOSE_ALL"})), Some("engine"));
        assert_eq!(ev(json!({"event": "PAUSED"})), Some("engine"));
        // Bookkeeping events are not in the feed.
        assert_eq!(ev(json!({"event": "BASELINE_SEEDED"})), None);
        assert_eq!(ev(json!({"event": "BOOK_INVALID"})), None);
        assert_eq!(ev(json!({"no": "event"})), None);
        // A closed trade is a trades_log record; other kinds never count.
        assert_eq!(event_kind(DataKind::TradesLog, &json!({"net_pnl": 1.0})), Some("trade"));
        assert_eq!(event_kind(DataKind::TradesLog, &json!({"day": "2026-12-02"})), None);
        assert_eq!(event_kind(DataKind::Metrics, &json!({"event": "PAUSED"})), None);
        for k in SYMBOL_KINDS {
            assert!(KINDS.contains(k));
        }
    }

    #[test]
    fn the_symbol_is_the_records_or_the_bodys() {
        let b = json!({"event": "NEWS_FLAG_SET", "symbol": "ETHUSDT"});
        assert_eq!(event_symbol(Some("BTCUSDT"), &b), Some("BTCUSDT"));
        assert_eq!(event_symbol(None, &b), Some("ETHUSDT"));
        assert_eq!(event_symbol(None, &json!({"event": "PAUSED"})), None);
    }
}
