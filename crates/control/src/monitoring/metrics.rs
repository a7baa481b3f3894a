//! Prometheus metrics. One [`Metrics`] value owns a registry; every component gets an `Arc` of
//! it. Names follow Prometheus conventions (base units, `_total` counters, `_seconds`).
//!
//! The struct and its exposition live here; the `register` submodule holds the family definitions
//! ([`Metrics::new`]) and `observe` the `observe_*` / [`Metrics::refresh_derived`] updates.

mod observe;
mod register;
#[cfg(test)]
mod tests;

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Registry, TextEncoder,
};
use scalper_bybit::bybit_public::ConnectorStats;
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
    /// `scalper_symbol_pump_state` (labels of [`scalper_core::features::PumpState::as_str`]).
    pub const PUMP: &[(&str, i64)] =
        &[("NONE", 0), ("PREPUMP", 1), ("PUMPING", 2), ("BLOWOFF", 3), ("DUMP", 4), ("COOLDOWN", 5)];
    /// `scalper_symbol_state` (labels of [`scalper_core::state::machine::TradeState::as_str`]). Ordered so
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
    /// Profile files whose `overrides` were refused (unreadable, not JSON, an unknown key or a
    /// bad value): that symbol trades without overrides until the file is fixed.
    pub override_errors: IntCounter,
    /// Retention runs by result.
    pub retention_runs: IntCounterVec,
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
    /// Book updates whose imbalance zones the core re-summed from the book instead of keeping
    /// them from the delta's level changes.
    pub core_zone_rescans: IntCounter,
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
    private: Arc<scalper_bybit::bybit_private::PrivateStats>,
    /// Serialises [`Metrics::refresh_derived`] (it advances counters by differences).
    derived: Mutex<()>,
    /// Every registered family name.
    families: BTreeSet<String>,
}

impl Metrics {
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
    pub fn private_stats(&self) -> Arc<scalper_bybit::bybit_private::PrivateStats> {
        self.private.clone()
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
