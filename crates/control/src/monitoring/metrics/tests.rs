//! Unit tests of the metrics: registration, HELP texts, observation and series lifecycle.

use super::*;
use crate::view::{ControlView, GlobalView, PositionView, SymbolView};
use scalper_core::config::paths::DataKind;
use scalper_core::domain::Symbol;
use scalper_core::engine::event::FeedState;
use scalper_core::engine::snapshot::EngineSnapshot;

fn sym(name: &str, cat: &str) -> SymbolView {
    SymbolView { symbol: name.into(), category: cat.into(), ..Default::default() }
}

#[test]
fn enum_codes_are_documented_in_help() {
    let m = Metrics::new();
    let text = m.render();
    assert!(text.contains("# HELP scalper_mode Execution mode: -1 unknown, 0 SIM, 1 DRY_RUN, 2 LIVE"), "{text}");
    assert_eq!(codes::code(codes::STATE, "ARMED_LONG"), 3);
    assert_eq!(codes::code(codes::STATE, ""), -1);
    assert_eq!(codes::code(codes::FEED, "CONNECTED"), 2);
    // Every table has unique codes.
    for t in [codes::MODE, codes::GLOBAL_REGIME, codes::REGIME, codes::PUMP, codes::STATE, codes::FEED] {
        let set: BTreeSet<i64> = t.iter().map(|(_, c)| *c).collect();
        assert_eq!(set.len(), t.len());
    }
}

#[test]
fn observe_snapshot_sets_gauges_and_advances_counters() {
    let m = Metrics::new();
    let mut s = EngineSnapshot {
        mode: "DRY_RUN".into(),
        symbols: 7,
        valid_books: 5,
        feed: Some(FeedState::Reconnecting),
        degraded: true,
        ts_ms: 1_700_000_000_250,
        ..Default::default()
    };
    s.counters.book_updates = 10;
    s.counters.zone_rescans = 3;
    s.counters.book_errors.insert("gap", 2);
    m.observe_snapshot(&s);
    assert_eq!(m.mode.get(), 1);
    assert_eq!(m.symbols_tracked.get(), 7);
    assert_eq!(m.valid_books.get(), 5);
    assert_eq!(m.feed_status.with_label_values(&["0"]).get(), 1);
    assert_eq!(m.degraded.get(), 1);
    assert_eq!(m.last_event_timestamp.get(), 1_700_000_000.25);
    assert_eq!(m.core_book_updates.get(), 10);
    assert_eq!(m.core_zone_rescans.get(), 3);
    s.counters.book_updates = 25;
    s.degraded = false;
    m.observe_snapshot(&s);
    assert_eq!(m.core_book_updates.get(), 25, "counters follow the core's totals");
    assert_eq!(m.core_book_errors.with_label_values(&["gap"]).get(), 2);
    assert_eq!(m.degraded.get(), 0);
}

#[test]
fn feed_events_are_counted_by_kind_and_symbol_of_the_universe() {
    use scalper_core::engine::output::LogRecord;
    let m = Metrics::new();
    let text = m.render();
    assert!(text.contains(r#"scalper_events_total{kind="engine",symbol=""} 0"#), "{text}");
    let view = |syms: Vec<SymbolView>| ControlView { symbols: syms, ..Default::default() };
    m.observe_view(&view(vec![sym("BTCUSDT", "prime"), sym("XUSDT", "wild")]));
    let text = m.render();
    assert!(text.contains(r#"scalper_events_total{kind="pump",symbol="XUSDT"} 0"#), "{text}");
    let rec = |kind, symbol: Option<&str>, body| LogRecord { kind, symbol: symbol.map(Symbol::new), ts_ms: 1, body };
    let get = |k: &str, s: &str| m.events.with_label_values(&[k, s]).get();
    m.observe_record(&rec(DataKind::Events, Some("XUSDT"), serde_json::json!({"kind": "PUMP"})));
    m.observe_record(&rec(DataKind::Events, Some("XUSDT"), serde_json::json!({"kind": "PUMP"})));
    m.observe_record(&rec(DataKind::Events, None, serde_json::json!({"event": "NEWS_FLAG_SET", "symbol": "BTCUSDT"})));
    m.observe_record(&rec(DataKind::Events, None, serde_json::json!({"event": "NEWS_FLAG_SET", "symbol": "NOPEUSDT"})));
    m.observe_record(&rec(DataKind::Events, None, serde_json::json!({"event": "PAUSED"})));
    m.observe_record(&rec(DataKind::Events, None, serde_json::json!({"event": "BLACKLISTED", "symbol": "BTCUSDT"})));
    m.observe_record(&rec(DataKind::Events, Some("BTCUSDT"), serde_json::json!({"event": "BASELINE_SEEDED"})));
    m.observe_record(&rec(DataKind::TradesLog, Some("BTCUSDT"), serde_json::json!({"net_pnl": -1.5})));
    assert_eq!(get("pump", "XUSDT"), 2);
    assert_eq!(get("news", "BTCUSDT"), 1);
    assert_eq!(get("news", ""), 1, "a symbol outside the universe counts as global");
    assert_eq!(get("engine", ""), 2, "engine events are global, even when they name a symbol");
    assert_eq!(get("trade", "BTCUSDT"), 1);
    let text = m.render();
    assert!(!text.contains("NOPEUSDT"), "{text}");
    assert!(!text.contains(r#"kind="engine",symbol="BTCUSDT""#), "engine events are global only");
    // A departed symbol loses its event series; a category change keeps them.
    m.observe_view(&view(vec![sym("BTCUSDT", "normal")]));
    let text = m.render();
    assert!(!text.contains(r#"symbol="XUSDT""#), "{text}");
    assert!(text.contains(r#"scalper_events_total{kind="trade",symbol="BTCUSDT"} 1"#), "{text}");
}

#[test]
fn observe_view_sets_per_symbol_series_and_drops_departed_symbols() {
    let m = Metrics::new();
    let mut a = sym("BTCUSDT", "prime");
    a.price = 65_000.0;
    a.spread_bps = 2.0;
    a.score_long = 71.0;
    a.state = "ARMED_SHORT".into();
    a.position = Some(PositionView { side: "Sell".into(), qty: 0.5, r_multiple: 1.5, ..Default::default() });
    let v = ControlView {
        global: GlobalView {
            equity: 1000.0,
            daily_pnl: -20.0,
            global_regime: "GLOBAL_PANIC".into(),
            global_panic: true,
            ..Default::default()
        },
        symbols: vec![a, sym("XUSDT", "wild")],
        ..Default::default()
    };
    m.observe_view(&v);
    assert_eq!(m.symbol_price.with_label_values(&["BTCUSDT", "prime"]).get(), 65_000.0);
    assert_eq!(m.symbol_spread.with_label_values(&["BTCUSDT", "prime"]).get(), 0.0002);
    assert_eq!(m.symbol_score.with_label_values(&["BTCUSDT", "prime", "long"]).get(), 71.0);
    assert_eq!(m.symbol_state.with_label_values(&["BTCUSDT", "prime"]).get(), 4.0);
    assert_eq!(m.symbol_state.with_label_values(&["XUSDT", "wild"]).get(), -1.0, "not produced yet");
    assert_eq!(m.symbol_position_size.with_label_values(&["BTCUSDT", "prime"]).get(), -0.5);
    assert_eq!(m.symbol_position_r.with_label_values(&["BTCUSDT", "prime"]).get(), 1.5);
    assert_eq!(m.global_regime.get(), 2);
    assert_eq!(m.global_panic.get(), 1);
    assert!((m.daily_loss_ratio.get() - 0.02).abs() < 1e-12);

    // XUSDT leaves, BTCUSDT changes category: old series disappear.
    let v2 = ControlView { symbols: vec![sym("BTCUSDT", "normal")], ..Default::default() };
    m.observe_view(&v2);
    let text = m.render();
    assert!(!text.contains("XUSDT"), "{text}");
    assert!(!text.contains(r#"category="prime""#), "{text}");
    assert!(text.contains(r#"scalper_symbol_price{category="normal",symbol="BTCUSDT"} 0"#), "{text}");
    assert_eq!(m.daily_loss_ratio.get(), 0.0, "no equity, no ratio");
}

/// Every label the core produces has a code: the exhaustive matches fail to compile when a
/// variant is added, the assertions fail when its label has no code.
#[test]
fn every_core_label_has_a_code() {
    use scalper_core::engine::event::Mode;
    use scalper_core::features::PumpState;
    use scalper_core::regime::global::GlobalRegime;
    use scalper_core::regime::symbol::RegimeState;
    use scalper_core::state::machine::TradeState as T;
    let has = |table: &[(&str, i64)], label: &str| assert!(codes::code(table, label) >= 0, "{label} has no code");
    for s in [
        T::Flat,
        T::WatchingLong,
        T::WatchingShort,
        T::ArmedLong,
        T::ArmedShort,
        T::OrderPlaced,
        T::InPosition,
        T::Managing,
        T::Exited,
        T::Cooldown,
        T::BlockedRegime,
    ] {
        match s {
            T::Flat
            | T::WatchingLong
            | T::WatchingShort
            | T::ArmedLong
            | T::ArmedShort
            | T::OrderPlaced
            | T::InPosition
            | T::Managing
            | T::Exited
            | T::Cooldown
            | T::BlockedRegime => has(codes::STATE, s.as_str()),
        }
    }
    assert_eq!(codes::STATE.len(), 11);
    use PumpState as P;
    for s in [P::None, P::Prepump, P::Pumping, P::Blowoff, P::Dump, P::Cooldown] {
        match s {
            P::None | P::Prepump | P::Pumping | P::Blowoff | P::Dump | P::Cooldown => has(codes::PUMP, s.as_str()),
        }
    }
    assert_eq!(codes::PUMP.len(), 6);
    use RegimeState as R;
    for s in [R::Normal, R::Pump, R::Manipulated, R::NewsDriven, R::Cooldown] {
        match s {
            R::Normal | R::Pump | R::Manipulated | R::NewsDriven | R::Cooldown => has(codes::REGIME, s.as_str()),
        }
    }
    use GlobalRegime as G;
    for s in [G::GlobalNormal, G::GlobalRiskOff, G::GlobalPanic] {
        match s {
            G::GlobalNormal | G::GlobalRiskOff | G::GlobalPanic => has(codes::GLOBAL_REGIME, s.as_str()),
        }
    }
    for s in [Mode::Sim, Mode::DryRun, Mode::Live] {
        match s {
            Mode::Sim | Mode::DryRun | Mode::Live => has(codes::MODE, s.as_str()),
        }
    }
    for s in [FeedState::Connected, FeedState::Reconnecting, FeedState::Down] {
        has(codes::FEED, crate::view::feed_label(s));
    }
}

#[test]
fn rare_event_counters_start_at_zero() {
    let m = Metrics::new();
    let text = m.render();
    for line in [
        r#"scalper_config_reloads_total{result="rejected"} 0"#,
        r#"scalper_storage_dropped_total{kind="events"} 0"#,
        r#"scalper_storage_write_failures_total{kind="trades_log"} 0"#,
        r#"scalper_live_pin_attempts_total{result="wrong"} 0"#,
        r#"scalper_shed_events_total{category="wild"} 0"#,
        r#"scalper_errors_total{component="storage"} 0"#,
        r#"scalper_core_book_errors_total{reason="gap"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line}");
    }
    assert!(!text.contains(r#"category="prime""#), "prime symbols are never shed");
}

#[test]
fn connector_counters_are_exported_once_used_and_errors_sum_by_component() {
    use std::sync::atomic::Ordering::Relaxed;
    let m = Metrics::new();
    assert!(!m.render().contains("scalper_ws_messages_total{"), "an unused connector exports nothing");
    let c = m.connector_stats();
    c.ws_frames.store(120, Relaxed);
    c.ws_reconnects.store(2, Relaxed);
    c.ws_disconnects.store(3, Relaxed);
    c.ws_malformed.store(1, Relaxed);
    c.rest_requests.store(10, Relaxed);
    c.rest_errors.store(4, Relaxed);
    c.rest_rate_limited.store(1, Relaxed);
    c.rest_retries.store(3, Relaxed);
    m.storage_dropped.with_label_values(&["events"]).inc_by(5);
    m.storage_write_failures.with_label_values(&["orderbook"]).inc();
    m.config_reloads.with_label_values(&["rejected"]).inc();
    m.retention_runs.with_label_values(&["ok"]).inc();
    let mut s = EngineSnapshot::default();
    s.counters.book_errors.insert("gap", 2);
    s.counters.book_errors.insert("shed", 7);
    m.observe_snapshot(&s);
    let text = m.render();
    for line in [
        r#"scalper_ws_messages_total{connection="0"} 120"#,
        r#"scalper_ws_reconnects_total{connection="0"} 2"#,
        r#"scalper_rest_requests_total{endpoint="public"} 10"#,
        r#"scalper_rest_errors_total{endpoint="public",kind="other"} 3"#,
        r#"scalper_rest_errors_total{endpoint="public",kind="rate_limited"} 1"#,
        r#"scalper_rest_retries_total{endpoint="public"} 3"#,
        r#"scalper_rate_limit_waits_total{endpoint="public"} 1"#,
        r#"scalper_errors_total{component="book"} 9"#,
        r#"scalper_errors_total{component="rest"} 4"#,
        r#"scalper_errors_total{component="ws"} 4"#,
        r#"scalper_errors_total{component="storage"} 6"#,
        r#"scalper_errors_total{component="config"} 1"#,
        r#"scalper_errors_total{component="retention"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    // Repeated refreshes do not count twice; counters follow the sources.
    c.rest_requests.store(11, Relaxed);
    m.render();
    m.observe_snapshot(&s);
    assert_eq!(m.rest_requests.with_label_values(&["public"]).get(), 11);
    assert_eq!(m.errors.with_label_values(&["book"]).get(), 9);
    assert_eq!(m.errors.with_label_values(&["storage"]).get(), 6);
}

#[test]
fn family_names_include_empty_vectors() {
    let m = Metrics::new();
    let names = m.family_names();
    for n in
        ["scalper_symbol_score", "scalper_rest_latency_seconds", "scalper_feed_status", "scalper_tick_latency_seconds"]
    {
        assert!(names.contains(n), "{n}");
    }
    assert!(!m.render().contains("scalper_symbol_score"), "empty vectors are not exposed yet");
}

#[test]
fn refusals_are_counted_by_stream_and_reason_and_exported() {
    use scalper_bybit::bybit_public::messages::{RefusalReason as R, RefusalStream as S, Refusals};
    let m = Metrics::new();
    let stats = m.connector_stats();
    let mut r = Refusals::default();
    r.add(S::Liquidation, R::NonPositivePrice, || "p=-30000".into());
    r.add(S::Liquidation, R::NonPositivePrice, || unreachable!("only the first detail is built"));
    r.add(S::Trade, R::FutureTime, || "T ahead".into());
    stats.record_refusals(&r, "test");
    stats.record_refusals(&r, "test");
    stats.record_refusals(&Refusals::default(), "test");
    let snap = stats.snapshot();
    assert_eq!(snap.refused[S::Liquidation as usize][R::NonPositivePrice as usize], 4);
    assert_eq!(snap.refused[S::Trade as usize][R::FutureTime as usize], 2);
    assert_eq!(snap.refused.iter().flatten().sum::<u64>(), 6);
    m.refresh_derived();
    let text = m.render();
    for line in [
        r#"scalper_public_refused_total{reason="non_positive_price",stream="liquidation"} 4"#,
        r#"scalper_public_refused_total{reason="future_time",stream="trade"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line}");
    }
}
