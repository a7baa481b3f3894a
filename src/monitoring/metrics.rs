//! Prometheus metrics. One [`Metrics`] value owns a registry; every component gets an `Arc` of
//! it. Names follow Prometheus conventions (base units, `_total` counters, `_seconds`).

use crate::config::paths::DataKind;
use crate::connectors::bybit_public::{ConnectorStats, StatsSnapshot};
use crate::control::view::ControlView;
use crate::engine::runtime::EngineSnapshot;
use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Numeric codes of the enum-valued gauges. Each table is `(label, code)`; a label not in its
/// table (or not produced yet) is exported as `-1`. The HELP text of each gauge is generated from
/// its table, so the documented mapping cannot drift. Adding a label is one line.
pub mod codes {
    /// `scalper_mode`.
    pub const MODE: &[(&str, i64)] = &[("SIM", 0), ("DRY_RUN", 1), ("LIVE", 2)];
    /// `scalper_global_regime`.
    pub const GLOBAL_REGIME: &[(&str, i64)] = &[("GLOBAL_NORMAL", 0), ("GLOBAL_RISK_OFF", 1), ("GLOBAL_PANIC", 2)];
    /// `scalper_symbol_regime`.
    pub const REGIME: &[(&str, i64)] =
        &[("NORMAL", 0), ("PUMP", 1), ("MANIPULATED", 2), ("NEWS_DRIVEN", 3), ("COOLDOWN", 4)];
    /// `scalper_symbol_pump_state` (labels of [`crate::features::PumpState::as_str`]).
    pub const PUMP: &[(&str, i64)] =
        &[("NONE", 0), ("PREPUMP", 1), ("PUMPING", 2), ("BLOWOFF", 3), ("DUMP", 4), ("COOLDOWN", 5)];
    /// `scalper_symbol_state` (labels of [`crate::state::machine::TradeState::as_str`]). Ordered so
    /// that `>= 3 and <= 7` is "armed, entering or in a position".
    pub const STATE: &[(&str, i64)] = &[
        ("FLAT", 0),
        ("WATCHING_LONG", 1),
        ("WATCHING_SHORT", 2),
        ("ARMED_LONG", 3),
        ("ARMED_SHORT", 4),
        ("ORDER_PLACED", 5),
        ("IN_POSITION", 6),
        ("MANAGING", 7),
        ("EXITED", 8),
        ("COOLDOWN", 9),
        ("BLOCKED_REGIME", 10),
    ];
    /// `scalper_feed_status`.
    pub const FEED: &[(&str, i64)] = &[("DOWN", 0), ("RECONNECTING", 1), ("CONNECTED", 2)];

    /// Code of `label` in `table` (`-1` when absent).
    pub fn code(table: &[(&str, i64)], label: &str) -> i64 {
        table.iter().find(|(l, _)| *l == label).map(|(_, c)| *c).unwrap_or(-1)
    }

    /// `"-1 unknown, 0 SIM, 1 DRY_RUN, …"`.
    pub fn mapping(table: &[(&str, i64)]) -> String {
        let mut s = String::from("-1 unknown");
        for (l, c) in table {
            s.push_str(&format!(", {c} {l}"));
        }
        s
    }
}

/// Prefix of every metric name.
pub const PREFIX: &str = "scalper";

/// Labels of every per-symbol family.
const SYM: &[&str] = &["symbol", "category"];

/// `connection` label of the public feed's counters: the aggregate of all its sockets, like
/// `scalper_feed_status{connection="0"}`.
pub const FEED_CONNECTION: &str = "0";
/// `endpoint` label of the public REST client's counters (all its paths together).
pub const PUBLIC_REST: &str = "public";
/// `reason` labels of `scalper_core_book_errors_total` the core produces (created at 0; a reason
/// added to the core later simply appears on its first occurrence).
pub const BOOK_ERROR_REASONS: &[&str] = &[
    "no_snapshot",
    "stale",
    "gap",
    "off_tick",
    "invalid_level",
    "crossed",
    "oversized",
    "other",
    "stale_book",
    "shed",
];
/// `component` labels of `scalper_errors_total` (see [`Metrics::refresh_derived`]).
pub const ERROR_COMPONENTS: &[&str] = &["book", "rest", "ws", "storage", "retention", "config", "private"];
/// `endpoint` / `connection` label of the private connector's counters.
pub const PRIVATE: &str = "private";
/// `outcome` labels of `scalper_private_creates_total`.
pub const CREATE_OUTCOMES: &[&str] = &["sent", "ambiguous", "recovered", "resent", "duplicate"];

/// Sets a counter to an absolute value taken from the core (counters only move forward).
fn set_counter(c: &IntCounter, v: u64) {
    let cur = c.get();
    if v > cur {
        c.inc_by(v - cur);
    }
}

fn b(v: bool) -> i64 {
    i64::from(v)
}

/// All engine metrics.
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// Config reloads by result (`ok`, `rejected`).
    pub config_reloads: IntCounterVec,
    /// Records written by the store, by kind.
    pub storage_writes: IntCounterVec,
    /// Failed store writes, by kind.
    pub storage_write_failures: IntCounterVec,
    /// Records dropped because the store queue was full, by kind.
    pub storage_dropped: IntCounterVec,
    /// Depth of the store's queue.
    pub storage_queue_depth: IntGauge,
    /// 1 while the store writer runs and its writes succeed, 0 while they fail or the writer is
    /// dead (new entries are then refused).
    pub storage_up: IntGauge,
    /// Operator state files (`blacklist`, `news_flags`) found corrupt at start and set aside.
    pub operator_state_corrupt: IntCounterVec,
    /// Retention runs by result.
    pub retention_runs: IntCounterVec,
    /// Files deleted by retention.
    pub retention_deleted_files: IntCounter,
    /// Hours of stream files younger than 24 h that the last retention run deleted because of
    /// `storage.max_disk_gb` (0 while the budget leaves at least 24 h).
    pub retention_budget_forced_hours: IntGauge,
    /// Stream files deleted by retention to stay under `storage.max_disk_gb` before their age
    /// (`retention_hours`) was reached.
    pub retention_budget_deleted_files: IntCounter,
    /// Bytes of hourly stream files (recording included) after the last retention run.
    pub storage_stream_bytes: IntGauge,
    /// `storage.max_disk_gb` in bytes.
    pub storage_budget_bytes: IntGauge,
    /// Baseline seeds at start or listing, by `source` (`kline`, `profile`) and `result`
    /// (`ok`, `error`, `stale`, `missing`).
    pub baseline_seeds: IntCounterVec,
    /// Events processed by the core, by type.
    pub engine_events: IntCounterVec,
    /// Whole-pipeline latency per event.
    pub tick_latency: Histogram,
    /// 1 while DEGRADED.
    pub degraded: IntGauge,
    /// Component health (1 = ok, 0 = not), label `component`.
    pub component_up: IntGaugeVec,

    /// Execution mode code ([`codes::MODE`]).
    pub mode: IntGauge,
    /// Global regime code ([`codes::GLOBAL_REGIME`]).
    pub global_regime: IntGauge,
    /// Equity, USDT.
    pub equity: Gauge,
    /// Wallet balance, USDT.
    pub balance: Gauge,
    /// Realized PnL since start, USDT.
    pub realized_pnl: Gauge,
    /// Unrealized PnL, USDT.
    pub unrealized_pnl: Gauge,
    /// Realized PnL of the UTC day, USDT.
    pub daily_pnl: Gauge,
    /// Daily realized loss as a fraction of equity (0 when in profit).
    pub daily_loss_ratio: Gauge,
    /// Configured daily loss limit, fraction of equity.
    pub daily_loss_limit_ratio: Gauge,
    /// Portfolio heat: Σ open risk / equity.
    pub portfolio_heat: Gauge,
    /// Configured maximum heat.
    pub portfolio_heat_limit: Gauge,
    /// Open positions.
    pub open_positions: IntGauge,
    /// 1 while new entries are paused by the operator.
    pub paused: IntGauge,
    /// 1 while globally RISK_OFF.
    pub risk_off: IntGauge,
    /// 1 while the feed has been down too long.
    pub feed_risk_off: IntGauge,
    /// 1 while portfolio integrity is broken.
    pub integrity_broken: IntGauge,
    /// 1 in GLOBAL_PANIC.
    pub global_panic: IntGauge,
    /// Feed status per connection ([`codes::FEED`]); connection `0` is the aggregate.
    pub feed_status: IntGaugeVec,
    /// WebSocket messages received, by connection.
    pub ws_messages: IntCounterVec,
    /// WebSocket reconnects, by connection.
    pub ws_reconnects: IntCounterVec,
    /// REST requests, by endpoint.
    pub rest_requests: IntCounterVec,
    /// REST errors, by endpoint and kind.
    pub rest_errors: IntCounterVec,
    /// REST attempts retried after a retryable error, by endpoint.
    pub rest_retries: IntCounterVec,
    /// REST latency, by endpoint. Nothing measures it yet (the public client does not time its
    /// requests), so it stays empty and no dashboard uses it.
    pub rest_latency: HistogramVec,
    /// Waits imposed by rate limiting, by endpoint.
    pub rate_limit_waits: IntCounterVec,
    /// Time spent waiting on rate limits, by endpoint. Not measured yet; no dashboard uses it.
    pub rate_limit_wait_seconds: CounterVec,
    /// Errors by component (for the error rate).
    pub errors: IntCounterVec,
    /// Depth of internal queues, by queue.
    pub queue_depth: IntGaugeVec,
    /// Market events shed under load, by category.
    pub shed_events: IntCounterVec,
    /// Public market values refused by the decoders' sanity checks, by stream and reason
    /// (labels of `bybit_public::messages::RefusalStream` / `RefusalReason`).
    pub public_refused: IntCounterVec,
    /// Symbols tracked by the core.
    pub symbols_tracked: IntGauge,
    /// Symbols with a valid book.
    pub valid_books: IntGauge,
    /// Book updates applied by the core.
    pub core_book_updates: IntCounter,
    /// Book errors seen by the core, by reason.
    pub core_book_errors: IntCounterVec,
    /// Book resyncs requested by the core.
    pub core_resyncs: IntCounter,
    /// Public trades processed by the core.
    pub core_trades: IntCounter,
    /// Micro-candles closed by the core.
    pub core_candles_closed: IntCounter,
    /// Market events for symbols outside the universe.
    pub core_unknown_symbol_events: IntCounter,
    /// Event time of the latest engine snapshot, seconds since the epoch.
    pub last_event_timestamp: Gauge,
    /// Latest market-data event time over all symbols, seconds since the epoch.
    pub last_market_data_timestamp: Gauge,
    /// Control-plane requests by method and result.
    pub control_requests: IntCounterVec,
    /// LIVE PIN attempts by result.
    pub live_pin_attempts: IntCounterVec,
    /// Refused control tokens by reason (`missing`, `invalid`, `throttled`).
    pub control_auth_failures: IntCounterVec,
    /// HTTP API connections being served now (at most `control.http_max_connections`).
    pub http_connections_open: IntGauge,
    /// HTTP API connections closed at once because `control.http_max_connections` were open.
    pub http_connections_rejected: IntCounter,
    /// HTTP API timeouts by kind (`header`, `idle`, `request`).
    pub http_timeouts: IntCounterVec,
    /// Failed accepts on the HTTP listener (e.g. out of file descriptors).
    pub http_accept_errors: IntCounter,
    /// gRPC connections closed at once because `control.grpc_max_connections` were open.
    pub grpc_connections_rejected: IntCounter,
    /// Failed accepts on the gRPC listener.
    pub grpc_accept_errors: IntCounter,

    /// Per symbol: last price.
    pub symbol_price: GaugeVec,
    /// Per symbol: spread as a fraction of the mid.
    pub symbol_spread: GaugeVec,
    /// Per symbol: book imbalance in [-1, 1].
    pub symbol_imbalance: GaugeVec,
    /// Per symbol and side (`bid`, `ask`): wall score.
    pub symbol_wall_score: GaugeVec,
    /// Per symbol: spoofing score.
    pub symbol_spoofing_score: GaugeVec,
    /// Per symbol: pump phase code ([`codes::PUMP`]).
    pub symbol_pump_state: GaugeVec,
    /// Per symbol: regime code ([`codes::REGIME`]).
    pub symbol_regime: GaugeVec,
    /// Per symbol: short-term volatility (fraction).
    pub symbol_volatility: GaugeVec,
    /// Per symbol: taker flow delta, base coin.
    pub symbol_flow_delta: GaugeVec,
    /// Per symbol: minimum move to beat fees, fraction.
    pub symbol_min_move: GaugeVec,
    /// Per symbol: news impact in [0, 1].
    pub symbol_news_impact: GaugeVec,
    /// Per symbol and direction (`long`, `short`): score 0–100.
    pub symbol_score: GaugeVec,
    /// Per symbol: state-machine code ([`codes::STATE`]).
    pub symbol_state: GaugeVec,
    /// Per symbol: signed position size, base coin (short negative).
    pub symbol_position_size: GaugeVec,
    /// Per symbol: unrealized PnL of the position, USDT.
    pub symbol_position_pnl: GaugeVec,
    /// Per symbol: position PnL in R.
    pub symbol_position_r: GaugeVec,
    /// Label sets `(symbol, category)` exported by the last [`Metrics::observe_view`].
    exported_symbols: Mutex<BTreeSet<(String, String)>>,
    /// Private stream state ([`codes::FEED`]; -1 without a private connector).
    pub private_feed_status: IntGauge,
    /// 1 while the exchange account is known (private stream connected and reconciled).
    pub exchange_account_known: IntGauge,
    /// Orders sent to the exchange and not yet seen to end.
    pub live_orders: IntGauge,
    /// `scalper_symbols_warming`: symbols whose baselines are still warming up.
    pub symbols_warming: IntGauge,
    /// `scalper_symbol_warmup_left_seconds`: live data a symbol still needs to be warm.
    pub symbol_warmup_left: GaugeVec,
    /// 1 once a PANIC was confirmed flat by the exchange (until the next PANIC).
    pub panic_confirmed: IntGauge,
    /// Order creates of the private connector by outcome ([`CREATE_OUTCOMES`]).
    pub private_creates: IntCounterVec,
    /// REST reconciliations of the private stream after (re)connects.
    pub private_reconciliations: IntCounter,
    /// Private items (WS frames and REST lists) left out, by `topic` and `reason`
    /// (`category`, `symbol`: outside the USDT-perpetual universe; `invalid`: impossible values).
    pub private_items_skipped: IntCounterVec,
    /// Wallets of a classic (non-unified) account refused (LIVE refused with the reason).
    pub private_account_not_unified: IntCounter,
    /// Executions recovered by reconciliations (missed by the stream).
    pub private_executions_recovered: IntCounter,
    /// The event feed for Grafana, by `kind` and `symbol` (see [`crate::monitoring::events`]);
    /// fed by [`Metrics::observe_record`].
    pub events: IntCounterVec,
    /// Counters of the public connector (REST client and WS feed), read at every refresh.
    connector: Arc<ConnectorStats>,
    /// Counters of the private connector, read at every refresh.
    private: Arc<crate::connectors::bybit_private::PrivateStats>,
    /// Serialises [`Metrics::refresh_derived`] (it advances counters by differences).
    derived: Mutex<()>,
    /// Every registered family name.
    families: BTreeSet<String>,
}

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
            private: Arc::new(crate::connectors::bybit_private::PrivateStats::default()),
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
        for stream in crate::connectors::bybit_public::messages::RefusalStream::ALL {
            for reason in crate::connectors::bybit_public::messages::RefusalReason::ALL {
                self.public_refused.with_label_values(&[stream.as_str(), reason.as_str()]);
            }
        }
        for topic in crate::connectors::bybit_private::ItemTopic::ALL {
            for reason in crate::connectors::bybit_private::SkipReason::ALL {
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

    /// The counters the public connector should count into: pass it to
    /// `PublicRest::with_config(.., stats)` and `PublicFeed::with_stats(stats)`. Its values are
    /// exported (as `ws_*`, `rest_*` and `rate_limit_waits_total`) from its first non-zero count
    /// on; an unused one exports nothing rather than misleading zeros.
    pub fn connector_stats(&self) -> Arc<ConnectorStats> {
        self.connector.clone()
    }

    /// The counters the private connector should count into (pass it to
    /// `PrivateRest::with_config`); exported under `endpoint`/`connection` = `private` and the
    /// `scalper_private_*` families.
    pub fn private_stats(&self) -> Arc<crate::connectors::bybit_private::PrivateStats> {
        self.private.clone()
    }

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
        if pc != crate::connectors::bybit_private::PrivateStatsSnapshot::default() {
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

    fn observe_private(&self, c: &crate::connectors::bybit_private::PrivateStatsSnapshot) {
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
        for topic in crate::connectors::bybit_private::ItemTopic::ALL {
            for reason in crate::connectors::bybit_private::SkipReason::ALL {
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
        use crate::connectors::bybit_public::messages::{RefusalReason, RefusalStream};
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
            self.feed_status
                .with_label_values(&["0"])
                .set(codes::code(codes::FEED, crate::control::view::feed_label(f)));
        }
        self.degraded.set(b(s.degraded));
        self.feed_risk_off.set(b(s.feed_risk_off));
        let c = &s.counters;
        set_counter(&self.core_book_updates, c.book_updates);
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
    /// core loop (see [`crate::control::spawn_observer`]).
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
    pub fn observe_record(&self, r: &crate::engine::output::LogRecord) {
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

    /// Every registered metric family name (with the `scalper_` prefix), including families that
    /// have no series yet (which the text exposition omits).
    pub fn family_names(&self) -> &BTreeSet<String> {
        &self.families
    }

    /// Text exposition of every metric (refreshes the derived counters first).
    pub fn render(&self) -> String {
        self.refresh_derived();
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::view::{GlobalView, PositionView, SymbolView};
    use crate::domain::Symbol;
    use crate::engine::event::FeedState;

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
        s.counters.book_errors.insert("gap", 2);
        m.observe_snapshot(&s);
        assert_eq!(m.mode.get(), 1);
        assert_eq!(m.symbols_tracked.get(), 7);
        assert_eq!(m.valid_books.get(), 5);
        assert_eq!(m.feed_status.with_label_values(&["0"]).get(), 1);
        assert_eq!(m.degraded.get(), 1);
        assert_eq!(m.last_event_timestamp.get(), 1_700_000_000.25);
        assert_eq!(m.core_book_updates.get(), 10);
        s.counters.book_updates = 25;
        s.degraded = false;
        m.observe_snapshot(&s);
        assert_eq!(m.core_book_updates.get(), 25, "counters follow the core's totals");
        assert_eq!(m.core_book_errors.with_label_values(&["gap"]).get(), 2);
        assert_eq!(m.degraded.get(), 0);
    }

    #[test]
    fn feed_events_are_counted_by_kind_and_symbol_of_the_universe() {
        use crate::engine::output::LogRecord;
        let m = Metrics::new();
        let text = m.render();
        assert!(text.contains(r#"scalper_events_total{kind="engine",symbol=""} 0"#), "{text}");
        let view = |syms: Vec<SymbolView>| ControlView { symbols: syms, ..Default::default() };
        m.observe_view(&view(vec![sym("BTCUSDT", "prime"), sym("XUSDT", "wild")]));
        let text = m.render();
        assert!(text.contains(r#"scalper_events_total{kind="pump",symbol="XUSDT"} 0"#), "{text}");
        let rec =
            |kind, symbol: Option<&str>, body| LogRecord { kind, symbol: symbol.map(Symbol::new), ts_ms: 1, body };
        let get = |k: &str, s: &str| m.events.with_label_values(&[k, s]).get();
        m.observe_record(&rec(DataKind::Events, Some("XUSDT"), serde_json::json!({"kind": "PUMP"})));
        m.observe_record(&rec(DataKind::Events, Some("XUSDT"), serde_json::json!({"kind": "PUMP"})));
        m.observe_record(&rec(
            DataKind::Events,
            None,
            serde_json::json!({"event": "NEWS_FLAG_SET", "symbol": "BTCUSDT"}),
        ));
        m.observe_record(&rec(
            DataKind::Events,
            None,
            serde_json::json!({"event": "NEWS_FLAG_SET", "symbol": "NOPEUSDT"}),
        ));
        m.observe_record(&rec(DataKind::Events, None, serde_json::json!({"event": "PAUSED"})));
        m.observe_record(&rec(
            DataKind::Events,
            None,
            serde_json::json!({"event": "BLACKLISTED", "symbol": "BTCUSDT"}),
        ));
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
        use crate::engine::event::Mode;
        use crate::features::PumpState;
        use crate::regime::global::GlobalRegime;
        use crate::regime::symbol::RegimeState;
        use crate::state::machine::TradeState as T;
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
            has(codes::FEED, crate::control::view::feed_label(s));
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
        for n in [
            "scalper_symbol_score",
            "scalper_rest_latency_seconds",
            "scalper_feed_status",
            "scalper_tick_latency_seconds",
        ] {
            assert!(names.contains(n), "{n}");
        }
        assert!(!m.render().contains("scalper_symbol_score"), "empty vectors are not exposed yet");
    }
}
