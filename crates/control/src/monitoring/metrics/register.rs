//! Registration of every metric family: [`Metrics::new`] creates each family with its name,
//! HELP text and labels, registers it, and creates at 0 the series whose label values are known
//! in advance. Kept apart from the struct so the long list of definitions does not bury the
//! observation logic.

use super::{codes, Metrics, BOOK_ERROR_REASONS, CREATE_OUTCOMES, ERROR_COMPONENTS, PREFIX};
use prometheus::{
    CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use scalper_bybit::bybit_public::ConnectorStats;
use scalper_core::config::paths::DataKind;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Labels of every per-symbol family.
const SYM: &[&str] = &["symbol", "category"];

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some(PREFIX.into()), None).expect("static registry prefix is valid");
        let mut families = BTreeSet::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("static metric definition is valid");
                for d in prometheus::core::Collector::desc(&m) {
                    families.insert(format!("{PREFIX}_{}", d.fq_name));
                }
                registry.register(Box::new(m.clone())).expect("metric names are unique");
                m
            }};
        }
        let config_reloads = reg!(IntCounterVec::new(
            Opts::new("config_reloads_total", "Configuration reload attempts by result"),
            &["result"]
        ));
        let storage_writes = reg!(IntCounterVec::new(
            Opts::new("storage_writes_total", "Records written to the JSONL store by kind"),
            &["kind"]
        ));
        let storage_write_failures = reg!(IntCounterVec::new(
            Opts::new("storage_write_failures_total", "Failed JSONL store writes by kind"),
            &["kind"]
        ));
        let storage_dropped = reg!(IntCounterVec::new(
            Opts::new("storage_dropped_total", "Records refused because the store queue was full, by kind"),
            &["kind"]
        ));
        let storage_queue_depth = reg!(IntGauge::new("storage_queue_depth", "Records waiting in the store queue"));
        let operator_state_corrupt = reg!(IntCounterVec::new(
            Opts::new(
                "operator_state_corrupt_total",
                "Operator state files (blacklist, news_flags) found corrupt at start, moved aside to .corrupt and ignored"
            ),
            &["file"]
        ));
        let storage_up = reg!(IntGauge::new(
            "storage_up",
            "1 while the store writer runs and its writes succeed; 0 while writes fail or the writer is dead (no new entries)"
        ));
        let retention_runs =
            reg!(IntCounterVec::new(Opts::new("retention_runs_total", "Retention runs by result"), &["result"]));
        let override_errors = reg!(IntCounter::new(
            "override_errors_total",
            "Profile files whose overrides were refused (unreadable, not JSON, unknown key or bad value); the symbol trades without overrides"
        ));
        let retention_deleted_files =
            reg!(IntCounter::new("retention_deleted_files_total", "Raw files deleted by retention"));
        let retention_budget_forced_hours = reg!(IntGauge::new(
            "retention_budget_forced_hours",
            "Hours of stream files younger than 24 h the last retention run deleted to stay under storage.max_disk_gb"
        ));
        let retention_budget_deleted_files = reg!(IntCounter::new(
            "retention_budget_deleted_files_total",
            "Stream files deleted before retention_hours to stay under storage.max_disk_gb"
        ));
        let storage_stream_bytes =
            reg!(IntGauge::new("storage_stream_bytes", "Bytes of hourly stream files after the last retention run"));
        let storage_budget_bytes = reg!(IntGauge::new("storage_budget_bytes", "storage.max_disk_gb in bytes"));
        let baseline_seeds = reg!(IntCounterVec::new(
            Opts::new(
                "baseline_seeds_total",
                "Baseline seeds per symbol at start and at listings, by source (kline, profile) and result"
            ),
            &["source", "result"]
        ));
        let events = reg!(IntCounterVec::new(
            Opts::new(
                "events_total",
                "Engine events of the event feed by kind (pump, spoof, news, regime, state, trade, engine) \
                 and symbol (empty = global)"
            ),
            &["kind", "symbol"]
        ));
        let engine_events = reg!(IntCounterVec::new(
            Opts::new("engine_events_total", "Events processed by the core, by type"),
            &["type"]
        ));
        let tick_latency = reg!(Histogram::with_opts(
            HistogramOpts::new("tick_latency_seconds", "Whole-pipeline processing time per event").buckets(vec![
                0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1,
                0.3, 1.0
            ])
        ));
        let degraded = reg!(IntGauge::new("degraded", "1 while the engine is DEGRADED (no new entries)"));
        let component_up =
            reg!(IntGaugeVec::new(Opts::new("component_up", "Component health: 1 healthy, 0 not"), &["component"]));
        let g = |name: &str, help: &str| Gauge::new(name, help);
        let ig = |name: &str, help: &str| IntGauge::new(name, help);
        let mode = reg!(ig("mode", &format!("Execution mode: {}", codes::mapping(codes::MODE))));
        let global_regime =
            reg!(ig("global_regime", &format!("Global regime: {}", codes::mapping(codes::GLOBAL_REGIME))));
        let equity = reg!(g("equity_usdt", "Account equity in USDT"));
        let balance = reg!(g("balance_usdt", "Wallet balance in USDT"));
        let realized_pnl = reg!(g("realized_pnl_usdt", "Realized PnL since start in USDT"));
        let unrealized_pnl = reg!(g("unrealized_pnl_usdt", "Unrealized PnL of open positions in USDT"));
        let daily_pnl = reg!(g("daily_pnl_usdt", "Realized PnL of the current UTC day in USDT"));
        let daily_loss_ratio =
            reg!(g("daily_loss_ratio", "Realized loss of the UTC day as a fraction of equity (0 when in profit)"));
        let daily_loss_limit_ratio =
            reg!(g("daily_loss_limit_ratio", "Configured daily loss limit as a fraction of equity"));
        let portfolio_heat = reg!(g("portfolio_heat_ratio", "Portfolio heat: sum of open risk / equity"));
        let portfolio_heat_limit =
            reg!(g("portfolio_heat_limit_ratio", "Configured maximum portfolio heat (fraction of equity)"));
        let open_positions = reg!(ig("open_positions", "Open positions"));
        let paused = reg!(ig("paused", "1 while new entries are paused by the operator"));
        let risk_off = reg!(ig("risk_off", "1 while the engine is globally RISK_OFF (any cause)"));
        let feed_risk_off = reg!(ig("feed_risk_off", "1 while RISK_OFF because the feed has been down too long"));
        let integrity_broken = reg!(ig("integrity_broken", "1 while portfolio integrity is broken (INTEGRITY_BROKEN)"));
        let global_panic = reg!(ig("global_panic", "1 while in GLOBAL_PANIC"));
        let feed_status = reg!(IntGaugeVec::new(
            Opts::new(
                "feed_status",
                format!("Feed status per connection (0 = aggregate): {}", codes::mapping(codes::FEED))
            ),
            &["connection"]
        ));
        let ws_messages = reg!(IntCounterVec::new(
            Opts::new("ws_messages_total", "WebSocket frames received by connection (0 = all public feed sockets)"),
            &["connection"]
        ));
        let ws_reconnects = reg!(IntCounterVec::new(
            Opts::new("ws_reconnects_total", "WebSocket reconnects by connection (0 = all public feed sockets)"),
            &["connection"]
        ));
        let rest_requests = reg!(IntCounterVec::new(
            Opts::new("rest_requests_total", "REST attempts by endpoint (public = the public REST client)"),
            &["endpoint"]
        ));
        let rest_errors = reg!(IntCounterVec::new(
            Opts::new("rest_errors_total", "Failed REST attempts by endpoint and kind (rate_limited, other)"),
            &["endpoint", "kind"]
        ));
        let rest_latency = reg!(HistogramVec::new(
            HistogramOpts::new("rest_latency_seconds", "REST request latency by endpoint")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["endpoint"]
        ));
        let rest_retries = reg!(IntCounterVec::new(
            Opts::new("rest_retries_total", "REST attempts retried after a retryable error, by endpoint"),
            &["endpoint"]
        ));
        let rate_limit_waits = reg!(IntCounterVec::new(
            Opts::new(
                "rate_limit_waits_total",
                "REST answers that were rate limits (HTTP 429 or retCode 10006) and forced a back-off, by endpoint"
            ),
            &["endpoint"]
        ));
        let rate_limit_wait_seconds = reg!(CounterVec::new(
            Opts::new("rate_limit_wait_seconds_total", "Time spent waiting on rate limits, by endpoint"),
            &["endpoint"]
        ));
        let errors = reg!(IntCounterVec::new(Opts::new("errors_total", "Errors by component"), &["component"]));
        let private_feed_status = reg!(IntGauge::new(
            "private_feed_status",
            format!("Private (account) stream state: {} (-1: no private connector)", codes::mapping(codes::FEED))
        ));
        let exchange_account_known = reg!(IntGauge::new(
            "exchange_account_known",
            "1 while the exchange account is known (private stream connected and reconciled): LIVE possible"
        ));
        let live_orders = reg!(IntGauge::new("live_orders", "Orders sent to the exchange and not yet seen to end"));
        let symbols_warming = reg!(IntGauge::new(
            "symbols_warming",
            "Symbols whose baselines are still warming up (not judged, not entered)"
        ));
        let panic_confirmed =
            reg!(IntGauge::new("panic_confirmed", "1 once a PANIC was confirmed flat by the exchange's own state"));
        let private_creates = reg!(IntCounterVec::new(
            Opts::new(
                "private_creates_total",
                "Order creates by outcome: sent (every send), ambiguous (timeout/5xx), recovered (found by orderLinkId), \
                 resent (absence proven), duplicate (resolved to the existing order)"
            ),
            &["outcome"]
        ));
        let private_reconciliations = reg!(IntCounter::new(
            "private_reconciliations_total",
            "REST reconciliations of the private stream after (re)connects"
        ));
        let private_items_skipped = reg!(IntCounterVec::new(
            Opts::new(
                "private_items_skipped_total",
                "Private order/execution/position/wallet items left out one by one: category (spot, inverse, option), \
                 symbol (linear but not a USDT perpetual, e.g. USDC contracts), invalid (impossible values)"
            ),
            &["topic", "reason"]
        ));
        let private_account_not_unified = reg!(IntCounter::new(
            "private_account_not_unified_total",
            "Wallets of a classic (non-unified) Bybit account refused: LIVE needs a Unified Trading Account"
        ));
        let private_executions_recovered = reg!(IntCounter::new(
            "private_executions_recovered_total",
            "Executions the private stream missed and a reconciliation recovered"
        ));
        let queue_depth =
            reg!(IntGaugeVec::new(Opts::new("queue_depth", "Items waiting in internal queues, by queue"), &["queue"]));
        let shed_events = reg!(IntCounterVec::new(
            Opts::new("shed_events_total", "Market events shed under load, by symbol category"),
            &["category"]
        ));
        let public_refused = reg!(IntCounterVec::new(
            Opts::new(
                "public_refused_total",
                "Public market values Bybit never sends (price <= 0, negative size, far-future trade, oversized book) refused at the decoders, by stream and reason"
            ),
            &["stream", "reason"]
        ));
        let symbols_tracked = reg!(ig("symbols_tracked", "Symbols tracked by the core"));
        let valid_books = reg!(ig("valid_books", "Symbols whose order book is valid"));
        let core_book_updates = reg!(IntCounter::new("core_book_updates_total", "Book updates applied by the core"));
        let core_zone_rescans = reg!(IntCounter::new(
            "core_zone_rescans_total",
            "Book updates whose imbalance zones were re-summed from the book (snapshot, moved mid, large delta) instead of kept from the delta's level changes"
        ));
        let core_book_errors = reg!(IntCounterVec::new(
            Opts::new("core_book_errors_total", "Book errors seen by the core, by reason"),
            &["reason"]
        ));
        let core_resyncs = reg!(IntCounter::new("core_resyncs_total", "Book resyncs requested by the core"));
        let core_trades = reg!(IntCounter::new("core_trades_total", "Public trades processed by the core"));
        let core_candles_closed =
            reg!(IntCounter::new("core_candles_closed_total", "Micro-candles closed by the core"));
        let core_unknown_symbol_events = reg!(IntCounter::new(
            "core_unknown_symbol_events_total",
            "Market events for symbols outside the universe (ignored)"
        ));
        let last_event_timestamp =
            reg!(g("last_event_timestamp_seconds", "Event time of the latest engine snapshot (Unix seconds)"));
        let last_market_data_timestamp = reg!(g(
            "last_market_data_timestamp_seconds",
            "Latest book or trade event time over all symbols (Unix seconds)"
        ));
        let control_requests = reg!(IntCounterVec::new(
            Opts::new("control_requests_total", "Control-plane gRPC requests by method and result"),
            &["method", "result"]
        ));
        let live_pin_attempts = reg!(IntCounterVec::new(
            Opts::new("live_pin_attempts_total", "LIVE PIN attempts by result (ok, wrong, rate_limited)"),
            &["result"]
        ));
        let control_auth_failures = reg!(IntCounterVec::new(
            Opts::new(
                "control_auth_failures_total",
                "Refused control tokens by reason (missing, invalid, throttled = peer over its failure limit)"
            ),
            &["reason"]
        ));
        let http_connections_open =
            reg!(IntGauge::new("http_connections_open", "HTTP API connections being served now"));
        let http_connections_rejected = reg!(IntCounter::new(
            "http_connections_rejected_total",
            "HTTP API connections closed at once because control.http_max_connections were open"
        ));
        let http_timeouts = reg!(IntCounterVec::new(
            Opts::new("http_timeouts_total", "HTTP API timeouts by kind (header, idle, request)"),
            &["kind"]
        ));
        let http_accept_errors =
            reg!(IntCounter::new("http_accept_errors_total", "Failed accepts on the HTTP API listener"));
        let grpc_connections_rejected = reg!(IntCounter::new(
            "grpc_connections_rejected_total",
            "gRPC connections closed at once because control.grpc_max_connections were open"
        ));
        let grpc_accept_errors =
            reg!(IntCounter::new("grpc_accept_errors_total", "Failed accepts on the gRPC listener"));
        let sym_gauge = |name: &str, help: &str, extra: &[&str]| {
            let labels: Vec<&str> = SYM.iter().chain(extra).copied().collect();
            GaugeVec::new(Opts::new(name, help), &labels)
        };
        let symbol_price = reg!(sym_gauge("symbol_price", "Last price per symbol (quote currency)", &[]));
        let symbol_spread =
            reg!(sym_gauge("symbol_spread_ratio", "Bid-ask spread per symbol as a fraction of the mid", &[]));
        let symbol_imbalance =
            reg!(sym_gauge("symbol_book_imbalance", "Order-book imbalance per symbol in [-1, 1]", &[]));
        let symbol_wall_score =
            reg!(sym_gauge("symbol_wall_score", "Wall score per symbol and book side (bid, ask)", &["side"]));
        let symbol_spoofing_score = reg!(sym_gauge("symbol_spoofing_score", "Spoofing score per symbol", &[]));
        let symbol_warmup_left = reg!(sym_gauge(
            "symbol_warmup_left_seconds",
            "Seconds of live data a symbol still needs before its baselines are warm (0 = warm)",
            &[]
        ));
        let symbol_pump_state = reg!(sym_gauge(
            "symbol_pump_state",
            &format!("Pump phase per symbol: {}", codes::mapping(codes::PUMP)),
            &[]
        ));
        let symbol_regime =
            reg!(sym_gauge("symbol_regime", &format!("Regime per symbol: {}", codes::mapping(codes::REGIME)), &[]));
        let symbol_volatility =
            reg!(sym_gauge("symbol_volatility_ratio", "Short-term volatility per symbol (fraction)", &[]));
        let symbol_flow_delta =
            reg!(sym_gauge("symbol_flow_delta", "Taker flow delta (buy - sell) per symbol, base coin", &[]));
        let symbol_min_move = reg!(sym_gauge(
            "symbol_min_move_ratio",
            "Minimum price move needed to beat fees per symbol (fraction)",
            &[]
        ));
        let symbol_news_impact = reg!(sym_gauge("symbol_news_impact", "News impact per symbol in [0, 1]", &[]));
        let symbol_score =
            reg!(sym_gauge("symbol_score", "Final scalp score (0-100) per symbol and direction", &["direction"]));
        let symbol_state = reg!(sym_gauge(
            "symbol_state",
            &format!("Trading state per symbol: {}", codes::mapping(codes::STATE)),
            &[]
        ));
        let symbol_position_size =
            reg!(sym_gauge("symbol_position_size", "Signed position size per symbol, base coin (short < 0)", &[]));
        let symbol_position_pnl =
            reg!(sym_gauge("symbol_position_pnl_usdt", "Unrealized PnL of the position per symbol, USDT", &[]));
        let symbol_position_r =
            reg!(sym_gauge("symbol_position_r", "PnL of the position per symbol in units of initial risk R", &[]));
        let m = Metrics {
            registry,
            config_reloads,
            storage_writes,
            storage_write_failures,
            storage_dropped,
            storage_queue_depth,
            storage_up,
            operator_state_corrupt,
            override_errors,
            retention_runs,
            retention_deleted_files,
            retention_budget_forced_hours,
            retention_budget_deleted_files,
            storage_stream_bytes,
            storage_budget_bytes,
            baseline_seeds,
            engine_events,
            tick_latency,
            degraded,
            component_up,
            mode,
            global_regime,
            equity,
            balance,
            realized_pnl,
            unrealized_pnl,
            daily_pnl,
            daily_loss_ratio,
            daily_loss_limit_ratio,
            portfolio_heat,
            portfolio_heat_limit,
            open_positions,
            paused,
            risk_off,
            feed_risk_off,
            integrity_broken,
            global_panic,
            feed_status,
            ws_messages,
            ws_reconnects,
            rest_requests,
            rest_errors,
            rest_retries,
            rest_latency,
            rate_limit_waits,
            rate_limit_wait_seconds,
            errors,
            queue_depth,
            shed_events,
            public_refused,
            symbols_tracked,
            valid_books,
            core_book_updates,
            core_zone_rescans,
            core_book_errors,
            core_resyncs,
            core_trades,
            core_candles_closed,
            core_unknown_symbol_events,
            last_event_timestamp,
            last_market_data_timestamp,
            control_requests,
            live_pin_attempts,
            control_auth_failures,
            http_connections_open,
            http_connections_rejected,
            http_timeouts,
            http_accept_errors,
            grpc_connections_rejected,
            grpc_accept_errors,
            symbol_price,
            symbol_spread,
            symbol_imbalance,
            symbol_wall_score,
            symbol_spoofing_score,
            symbol_pump_state,
            symbol_regime,
            symbol_volatility,
            symbol_flow_delta,
            symbol_min_move,
            symbol_news_impact,
            symbol_score,
            symbol_state,
            symbol_position_size,
            symbol_position_pnl,
            symbol_position_r,
            exported_symbols: Mutex::new(BTreeSet::new()),
            private_feed_status,
            exchange_account_known,
            live_orders,
            symbols_warming,
            symbol_warmup_left,
            panic_confirmed,
            private_creates,
            private_reconciliations,
            private_items_skipped,
            private_account_not_unified,
            private_executions_recovered,
            events,
            private: Arc::new(scalper_bybit::bybit_private::PrivateStats::default()),
            connector: Arc::new(ConnectorStats::default()),
            derived: Mutex::new(()),
            families,
        };
        m.init_known_labels();
        m
    }

    /// Creates at 0 the series of counters whose label values are known in advance, so a
    /// query sees "0 so far" rather than nothing (Prometheus practice for rare events).
    fn init_known_labels(&self) {
        self.private_feed_status.set(-1);
        for o in CREATE_OUTCOMES {
            self.private_creates.with_label_values(&[o]);
        }
        for r in ["ok", "rejected"] {
            self.config_reloads.with_label_values(&[r]);
        }
        for k in DataKind::ALL {
            let k = [k.dir_name()];
            self.storage_write_failures.with_label_values(&k);
            self.storage_dropped.with_label_values(&k);
        }
        for r in ["ok", "with_errors", "failed"] {
            self.retention_runs.with_label_values(&[r]);
        }
        for (src, results) in [("kline", &["ok", "error"][..]), ("profile", &["ok", "error", "stale", "missing"][..])] {
            for r in results {
                self.baseline_seeds.with_label_values(&[src, r]);
            }
        }
        for r in ["ok", "wrong", "rate_limited"] {
            self.live_pin_attempts.with_label_values(&[r]);
        }
        for r in ["missing", "invalid", "throttled"] {
            self.control_auth_failures.with_label_values(&[r]);
        }
        // Refusal and skip series exist at 0 from the start, so their alerts evaluate (and a
        // dashboard shows a flat zero) before the first bad value arrives.
        for stream in scalper_bybit::bybit_public::messages::RefusalStream::ALL {
            for reason in scalper_bybit::bybit_public::messages::RefusalReason::ALL {
                self.public_refused.with_label_values(&[stream.as_str(), reason.as_str()]);
            }
        }
        for topic in scalper_bybit::bybit_private::ItemTopic::ALL {
            for reason in scalper_bybit::bybit_private::SkipReason::ALL {
                self.private_items_skipped.with_label_values(&[topic.as_str(), reason.as_str()]);
            }
        }
        for k in ["header", "idle", "request"] {
            self.http_timeouts.with_label_values(&[k]);
        }
        // Prime symbols are never shed.
        for c in ["normal", "wild"] {
            self.shed_events.with_label_values(&[c]);
        }
        for c in ERROR_COMPONENTS {
            self.errors.with_label_values(&[c]);
        }
        for r in BOOK_ERROR_REASONS {
            self.core_book_errors.with_label_values(&[r]);
        }
        // Every kind exists at 0 as a global series; per-symbol ones come with the symbol.
        for k in crate::monitoring::events::KINDS {
            self.events.with_label_values(&[k, ""]);
        }
    }
}
