//! Observation: how [`Metrics`] is brought up to date from the engine snapshot, the control
//! view, core log records and the connectors' counters. Counters taken from elsewhere are set
//! to absolute values (they only move forward); per-symbol series follow the exported universe.

use super::{codes, Metrics, FEED_CONNECTION, PRIVATE, PUBLIC_REST};
use crate::view::ControlView;
use prometheus::{IntCounter, IntCounterVec};
use scalper_bybit::bybit_public::StatsSnapshot;
use scalper_core::config::paths::DataKind;
use scalper_core::engine::snapshot::EngineSnapshot;
use std::collections::BTreeSet;

/// Sets a counter to an absolute value taken from the core (counters only move forward).
fn set_counter(c: &IntCounter, v: u64) {
    let cur = c.get();
    if v > cur {
        c.inc_by(v - cur);
    }
}

/// A flag as a 0/1 gauge value.
fn b(v: bool) -> i64 {
    i64::from(v)
}

impl Metrics {
    /// Brings the derived counters up to date: the public connector's counters (see
    /// [`Metrics::connector_stats`]) and `scalper_errors_total` by component, the sum of the error
    /// counters of each part (`book`: core book errors, set by [`Metrics::observe_snapshot`]; `rest`: failed REST attempts, `ws`: WS
    /// disconnects, malformed frames and failed acks, `storage`: failed or dropped records,
    /// `retention`: runs with errors or failed, `config`: rejected reloads). Called on every
    /// snapshot and every scrape.
    pub fn refresh_derived(&self) {
        let Ok(_guard) = self.derived.lock() else { return };
        let c = self.connector.snapshot();
        if c != StatsSnapshot::default() {
            self.observe_connector(&c);
        }
        let pc = self.private.snapshot();
        if pc != scalper_bybit::bybit_private::PrivateStatsSnapshot::default() {
            self.observe_private(&pc);
        }
        let sum = |v: &IntCounterVec, labels: &[&str]| -> u64 {
            labels.iter().map(|l| v.with_label_values(&[l]).get()).sum()
        };
        let kinds: Vec<&str> = DataKind::ALL.iter().map(|k| k.dir_name()).collect();
        let totals = [
            ("rest", c.rest_errors),
            ("ws", c.ws_disconnects + c.ws_malformed + c.ws_ack_failures),
            ("storage", sum(&self.storage_write_failures, &kinds) + sum(&self.storage_dropped, &kinds)),
            ("retention", sum(&self.retention_runs, &["with_errors", "failed"])),
            ("config", self.config_reloads.with_label_values(&["rejected"]).get()),
            (
                "private",
                pc.rest_errors + pc.ws_disconnects + pc.ws_malformed + pc.ws_auth_failures + pc.ws_subscribe_failures,
            ),
        ];
        for (component, n) in totals {
            set_counter(&self.errors.with_label_values(&[component]), n);
        }
    }

    fn observe_private(&self, c: &scalper_bybit::bybit_private::PrivateStatsSnapshot) {
        set_counter(&self.ws_messages.with_label_values(&[PRIVATE]), c.ws_frames);
        set_counter(&self.ws_reconnects.with_label_values(&[PRIVATE]), c.ws_reconnects);
        set_counter(&self.rest_requests.with_label_values(&[PRIVATE]), c.rest_requests);
        set_counter(&self.rest_errors.with_label_values(&[PRIVATE, "rate_limited"]), c.rest_rate_limited);
        let other = c.rest_errors.saturating_sub(c.rest_rate_limited);
        set_counter(&self.rest_errors.with_label_values(&[PRIVATE, "other"]), other);
        set_counter(&self.rest_retries.with_label_values(&[PRIVATE]), c.rest_retries);
        set_counter(&self.rate_limit_waits.with_label_values(&[PRIVATE]), c.rest_rate_limited);
        for (outcome, n) in [
            ("sent", c.creates_sent),
            ("ambiguous", c.creates_ambiguous),
            ("recovered", c.creates_recovered),
            ("resent", c.creates_resent),
            ("duplicate", c.creates_duplicate),
        ] {
            set_counter(&self.private_creates.with_label_values(&[outcome]), n);
        }
        set_counter(&self.private_reconciliations, c.reconciliations);
        for topic in scalper_bybit::bybit_private::ItemTopic::ALL {
            for reason in scalper_bybit::bybit_private::SkipReason::ALL {
                let n = c.skipped(topic, reason);
                if n > 0 {
                    set_counter(&self.private_items_skipped.with_label_values(&[topic.as_str(), reason.as_str()]), n);
                }
            }
        }
        set_counter(&self.private_account_not_unified, c.wallet_not_unified);
        set_counter(&self.private_executions_recovered, c.reconciled_executions);
    }

    fn observe_connector(&self, c: &StatsSnapshot) {
        set_counter(&self.ws_messages.with_label_values(&[FEED_CONNECTION]), c.ws_frames);
        set_counter(&self.ws_reconnects.with_label_values(&[FEED_CONNECTION]), c.ws_reconnects);
        let e = [PUBLIC_REST];
        set_counter(&self.rest_requests.with_label_values(&e), c.rest_requests);
        set_counter(&self.rest_errors.with_label_values(&[PUBLIC_REST, "rate_limited"]), c.rest_rate_limited);
        let other = c.rest_errors.saturating_sub(c.rest_rate_limited);
        set_counter(&self.rest_errors.with_label_values(&[PUBLIC_REST, "other"]), other);
        set_counter(&self.rest_retries.with_label_values(&e), c.rest_retries);
        set_counter(&self.rate_limit_waits.with_label_values(&e), c.rest_rate_limited);
        use scalper_bybit::bybit_public::messages::{RefusalReason, RefusalStream};
        for (i, stream) in RefusalStream::ALL.iter().enumerate() {
            for (j, reason) in RefusalReason::ALL.iter().enumerate() {
                let v = c.refused[i][j];
                if v > 0 {
                    set_counter(&self.public_refused.with_label_values(&[stream.as_str(), reason.as_str()]), v);
                }
            }
        }
    }

    /// Sets what the engine snapshot carries: mode, symbol and book counts, feed status, DEGRADED,
    /// feed RISK_OFF, the core counters and the snapshot time.
    pub fn observe_snapshot(&self, s: &EngineSnapshot) {
        self.mode.set(codes::code(codes::MODE, &s.mode));
        self.symbols_tracked.set(s.symbols as i64);
        self.valid_books.set(s.valid_books as i64);
        if let Some(f) = s.feed {
            self.feed_status.with_label_values(&["0"]).set(codes::code(codes::FEED, crate::view::feed_label(f)));
        }
        self.degraded.set(b(s.degraded));
        self.feed_risk_off.set(b(s.feed_risk_off));
        let c = &s.counters;
        set_counter(&self.core_book_updates, c.book_updates);
        set_counter(&self.core_zone_rescans, c.zone_rescans);
        set_counter(&self.core_resyncs, c.resyncs);
        set_counter(&self.core_trades, c.trades);
        set_counter(&self.core_candles_closed, c.candles_closed);
        set_counter(&self.core_unknown_symbol_events, c.unknown_symbol_events);
        for (reason, n) in &c.book_errors {
            set_counter(&self.core_book_errors.with_label_values(&[reason]), *n);
        }
        set_counter(&self.errors.with_label_values(&["book"]), c.book_errors.values().sum());
        if s.ts_ms > 0 {
            self.last_event_timestamp.set(s.ts_ms as f64 / 1000.0);
        }
        self.refresh_derived();
    }

    /// Sets the global and per-symbol families from the control view. Series of symbols that left
    /// the view (or changed category) are removed. Costs a few µs per symbol: call it off the
    /// core loop (see [`crate::spawn_observer`]).
    pub fn observe_view(&self, v: &ControlView) {
        let gl = &v.global;
        self.global_regime.set(codes::code(codes::GLOBAL_REGIME, &gl.global_regime));
        self.equity.set(gl.equity);
        self.balance.set(gl.balance);
        self.realized_pnl.set(gl.realized_pnl);
        self.unrealized_pnl.set(gl.unrealized_pnl);
        self.daily_pnl.set(gl.daily_pnl);
        let loss = if gl.equity > 0.0 { (-gl.daily_pnl / gl.equity).max(0.0) } else { 0.0 };
        self.daily_loss_ratio.set(loss);
        self.daily_loss_limit_ratio.set(gl.daily_loss_limit);
        self.portfolio_heat.set(gl.portfolio_heat);
        self.portfolio_heat_limit.set(gl.max_portfolio_heat);
        self.open_positions.set(i64::from(gl.open_positions));
        self.paused.set(b(gl.paused));
        self.risk_off.set(b(gl.risk_off));
        self.integrity_broken.set(b(gl.integrity_broken));
        self.private_feed_status.set(if gl.private_feed.is_empty() {
            -1
        } else {
            codes::code(codes::FEED, &gl.private_feed)
        });
        self.exchange_account_known.set(b(gl.exchange_account_known));
        self.live_orders.set(i64::from(gl.live_orders));
        self.symbols_warming.set(i64::from(gl.symbols_warming));
        self.panic_confirmed.set(b(gl.panic_confirmed));
        self.global_panic.set(b(gl.global_panic));
        let last_md = v.last_market_data_ms();
        if last_md > 0 {
            self.last_market_data_timestamp.set(last_md as f64 / 1000.0);
        }

        let mut now = BTreeSet::new();
        for s in &v.symbols {
            let l = [s.symbol.as_str(), s.category.as_str()];
            self.symbol_price.with_label_values(&l).set(s.price);
            self.symbol_spread.with_label_values(&l).set(s.spread_bps / 10_000.0);
            self.symbol_imbalance.with_label_values(&l).set(s.imbalance);
            self.symbol_wall_score.with_label_values(&[l[0], l[1], "bid"]).set(s.wall_score_bid);
            self.symbol_wall_score.with_label_values(&[l[0], l[1], "ask"]).set(s.wall_score_ask);
            self.symbol_spoofing_score.with_label_values(&l).set(s.spoofing_score);
            self.symbol_pump_state.with_label_values(&l).set(codes::code(codes::PUMP, &s.pump_state) as f64);
            self.symbol_regime.with_label_values(&l).set(codes::code(codes::REGIME, &s.regime) as f64);
            self.symbol_volatility.with_label_values(&l).set(s.volatility);
            self.symbol_flow_delta.with_label_values(&l).set(s.flow_delta);
            self.symbol_min_move.with_label_values(&l).set(s.min_move_pct / 100.0);
            self.symbol_news_impact.with_label_values(&l).set(s.news_impact);
            self.symbol_score.with_label_values(&[l[0], l[1], "long"]).set(s.score_long);
            self.symbol_score.with_label_values(&[l[0], l[1], "short"]).set(s.score_short);
            self.symbol_state.with_label_values(&l).set(codes::code(codes::STATE, &s.state) as f64);
            self.symbol_warmup_left.with_label_values(&l).set(f64::from(s.warmup_left_s));
            let (size, pnl, r) =
                s.position.as_ref().map(|p| (p.signed_qty(), p.unrealized_pnl, p.r_multiple)).unwrap_or_default();
            self.symbol_position_size.with_label_values(&l).set(size);
            self.symbol_position_pnl.with_label_values(&l).set(pnl);
            self.symbol_position_r.with_label_values(&l).set(r);
            now.insert((s.symbol.clone(), s.category.clone()));
        }
        let Ok(mut prev) = self.exported_symbols.lock() else { return };
        for (sym, cat) in prev.difference(&now) {
            self.remove_symbol(sym, cat);
            if now.range((sym.clone(), String::new())..).next().is_none_or(|(s, _)| s != sym) {
                for k in crate::monitoring::events::SYMBOL_KINDS {
                    let _ = self.events.remove_label_values(&[k, sym.as_str()]);
                }
            }
        }
        // A symbol's event series exist at 0 from its arrival, so annotation queries and the
        // feed panel see "nothing yet" rather than no series.
        for (sym, _) in now.difference(&prev) {
            for k in crate::monitoring::events::SYMBOL_KINDS {
                self.events.with_label_values(&[k, sym.as_str()]);
            }
        }
        *prev = now;
    }

    /// Counts a core record in `scalper_events_total` when it belongs to the event feed. `engine`
    /// events and events naming a symbol outside the exported universe are counted as global
    /// (empty `symbol`), which bounds the label's values by the universe whatever an operator
    /// command names.
    pub fn observe_record(&self, r: &scalper_core::engine::output::LogRecord) {
        let Some(kind) = crate::monitoring::events::event_kind(r.kind, &r.body) else { return };
        let sym = crate::monitoring::events::event_symbol(r.symbol.as_ref().map(|s| s.as_str()), &r.body);
        let known = |s: &str| {
            self.exported_symbols
                .lock()
                .is_ok_and(|g| g.range((s.to_string(), String::new())..).next().is_some_and(|(x, _)| x == s))
        };
        let per_symbol = crate::monitoring::events::SYMBOL_KINDS.contains(&kind);
        let sym = sym.filter(|s| per_symbol && known(s)).unwrap_or("");
        self.events.with_label_values(&[kind, sym]).inc();
    }

    fn remove_symbol(&self, sym: &str, cat: &str) {
        let l = [sym, cat];
        for v in [
            &self.symbol_price,
            &self.symbol_spread,
            &self.symbol_imbalance,
            &self.symbol_spoofing_score,
            &self.symbol_pump_state,
            &self.symbol_regime,
            &self.symbol_volatility,
            &self.symbol_flow_delta,
            &self.symbol_min_move,
            &self.symbol_news_impact,
            &self.symbol_state,
            &self.symbol_warmup_left,
            &self.symbol_position_size,
            &self.symbol_position_pnl,
            &self.symbol_position_r,
        ] {
            let _ = v.remove_label_values(&l);
        }
        for side in ["bid", "ask"] {
            let _ = self.symbol_wall_score.remove_label_values(&[sym, cat, side]);
        }
        for dir in ["long", "short"] {
            let _ = self.symbol_score.remove_label_values(&[sym, cat, dir]);
        }
    }
}
