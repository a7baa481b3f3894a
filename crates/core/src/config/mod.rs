//! Configuration: defaults in code → `scalper.toml` → environment (`SCALPER_*`, `__` separates
//! sections, e.g. `SCALPER_RISK__PER_TRADE=0.004`; `SCALPER_DATA_DIR` sets the data directory).
//!
//! Every loaded configuration is validated; an invalid one is refused with every problem listed.
//! `mode = "LIVE"` is never accepted from configuration: LIVE is entered only through the
//! confirmed, PIN-checked control-plane flow.

pub mod paths;
mod startup;

use crate::domain::Category;
use crate::domain::Mode;
use crate::features::costs::CostParams;
use crate::regime::global::GlobalRegimeConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Error while loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be parsed into the schema.
    #[error("configuration could not be read: {0}")]
    Parse(String),
    /// The values parsed but break one or more rules.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Risk limits, all as fractions of equity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Equity the SIM venue starts with, USDT.
    pub starting_equity: f64,
    /// Loss at the stop of one trade (R), fraction of equity. (0, 0.05].
    pub per_trade: f64,
    /// Max sum of open risk, fraction of equity.
    pub max_portfolio_heat: f64,
    /// Max realized loss per UTC day, fraction of equity.
    pub daily_loss_limit: f64,
    /// Max unrealized drawdown, fraction of equity.
    pub unrealized_drawdown_limit: f64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            starting_equity: 10_000.0,
            per_trade: 0.005,
            max_portfolio_heat: 0.03,
            daily_loss_limit: 0.03,
            unrealized_drawdown_limit: 0.05,
        }
    }
}

/// Score thresholds in [0, 100].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Score to start watching a symbol.
    pub watch: f64,
    /// Score to arm (must be >= watch).
    pub arm: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { watch: 55.0, arm: 70.0 }
    }
}

/// Trading fees as fractions of notional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fees {
    /// Maker fee (Bybit default 0.02 %).
    pub maker: f64,
    /// Taker fee (Bybit default 0.055 %).
    pub taker: f64,
}

impl Default for Fees {
    fn default() -> Self {
        Fees { maker: 0.0002, taker: 0.00055 }
    }
}

/// Limits of one symbol category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryLimits {
    /// Max leverage used.
    pub max_leverage: f64,
    /// Max notional per position, USDT.
    pub max_notional: f64,
    /// Order-book depth subscribed (Bybit linear: 1, 50, 200 or 1000).
    pub book_depth: u16,
    /// Max concurrent positions in this category.
    pub max_positions: u32,
}

/// Per-category limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Categories {
    /// Prime (BTC, ETH, most liquid).
    pub prime: CategoryLimits,
    pub normal: CategoryLimits,
    /// Wild (new, thin, volatile).
    pub wild: CategoryLimits,
}

impl Categories {
    /// Limits of one category.
    pub fn get(&self, c: Category) -> &CategoryLimits {
        match c {
            Category::Prime => &self.prime,
            Category::Normal => &self.normal,
            Category::Wild => &self.wild,
        }
    }
}

impl Default for Categories {
    fn default() -> Self {
        Categories {
            prime: CategoryLimits { max_leverage: 20.0, max_notional: 50_000.0, book_depth: 200, max_positions: 3 },
            normal: CategoryLimits { max_leverage: 10.0, max_notional: 20_000.0, book_depth: 50, max_positions: 3 },
            wild: CategoryLimits { max_leverage: 5.0, max_notional: 5_000.0, book_depth: 50, max_positions: 1 },
        }
    }
}

/// Universe selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UniverseConfig {
    /// Always Prime.
    pub prime_symbols: Vec<String>,
    /// Also Prime: the top N by 24 h turnover.
    pub prime_top_n: usize,
    /// Below this 24 h turnover (USDT) a symbol is Wild.
    pub wild_max_turnover_24h: f64,
    /// Listed less than this many days ago → Wild.
    pub new_listing_days: u32,
    /// Absolute 24 h change above this fraction → Wild.
    pub wild_min_abs_change_24h: f64,
    /// Seconds between instrument-list refreshes.
    pub refresh_s: u64,
    /// Symbols with no trade for this long are dropped.
    pub inactive_drop_s: u64,
    /// Max topics per WS subscribe request.
    pub topics_per_request: usize,
    /// Max symbols per public WS connection.
    pub symbols_per_connection: usize,
    /// Interval of `{"op":"ping"}` heartbeats, ms (Bybit recommends 20 s).
    pub ws_ping_interval_ms: u64,
    /// A ping unanswered this long drops the connection, ms.
    pub ws_pong_timeout_ms: u64,
    /// No frame at all for this long drops the connection (stale feed), ms.
    pub ws_data_timeout_ms: u64,
    /// A public trade stamped more than this many ms after its local receive time is refused at
    /// the connector (one far-future print would make the tape and candles refuse every later
    /// trade). Needs an NTP-synced host clock; [0, 600000].
    pub trade_max_ahead_ms: u64,
}

impl Default for UniverseConfig {
    fn default() -> Self {
        UniverseConfig {
            prime_symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            prime_top_n: 5,
            wild_max_turnover_24h: 5_000_000.0,
            new_listing_days: 7,
            wild_min_abs_change_24h: 0.25,
            refresh_s: 15,
            inactive_drop_s: 3_600,
            topics_per_request: 10,
            symbols_per_connection: 50,
            ws_ping_interval_ms: 20_000,
            ws_pong_timeout_ms: 10_000,
            ws_data_timeout_ms: 60_000,
            trade_max_ahead_ms: 5_000,
        }
    }
}

/// Which exchange endpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointPreset {
    /// api.bybit.com.
    Mainnet,
    /// api-testnet.bybit.com.
    Testnet,
    /// The built-in simulator (URLs filled in at run time).
    Sim,
    /// Use the explicit URLs given.
    Custom,
}

/// REST / WS base URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    /// Preset; `custom` uses the URLs below as given.
    pub preset: EndpointPreset,
    /// REST base URL.
    pub rest_url: String,
    /// Public linear WS URL.
    pub ws_public_url: String,
    pub ws_private_url: String,
}

impl Endpoints {
    /// Mainnet URLs.
    pub fn mainnet() -> Self {
        Endpoints {
            preset: EndpointPreset::Mainnet,
            rest_url: "https://api.bybit.com".into(),
            ws_public_url: "wss://stream.bybit.com/v5/public/linear".into(),
            ws_private_url: "wss://stream.bybit.com/v5/private".into(),
        }
    }
    /// Testnet URLs.
    pub fn testnet() -> Self {
        Endpoints {
            preset: EndpointPreset::Testnet,
            rest_url: "https://api-testnet.bybit.com".into(),
            ws_public_url: "wss://stream-testnet.bybit.com/v5/public/linear".into(),
            ws_private_url: "wss://stream-testnet.bybit.com/v5/private".into(),
        }
    }
    /// URLs of a simulator listening on `addr` (`127.0.0.1:port`).
    pub fn simulator(addr: std::net::SocketAddr) -> Self {
        Endpoints {
            preset: EndpointPreset::Sim,
            rest_url: format!("http://{addr}"),
            ws_public_url: format!("ws://{addr}/v5/public/linear"),
            ws_private_url: format!("ws://{addr}/v5/private"),
        }
    }
    /// The URLs actually used: presets win over the URL fields except for `custom` and `sim`.
    pub fn effective(&self) -> Endpoints {
        match self.preset {
            EndpointPreset::Mainnet => Endpoints::mainnet(),
            EndpointPreset::Testnet => Endpoints::testnet(),
            EndpointPreset::Sim | EndpointPreset::Custom => self.clone(),
        }
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints::mainnet()
    }
}

/// Listening addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `/metrics` and `/api/*`.
    pub http_addr: String,
    /// gRPC control plane.
    pub grpc_addr: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { http_addr: "127.0.0.1:9464".into(), grpc_addr: "127.0.0.1:50051".into() }
    }
}

/// Hardening of the control plane: HTTP connection limits and timeouts, exposure beyond
/// loopback, gRPC TLS, and the token/PIN throttles. Hot reload does not apply here: the servers
/// read it once at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// HTTP API connections served at once (1..=10000); more are closed at once and counted.
    /// The gRPC listener is separate and not counted here, so PANIC stays reachable.
    pub http_max_connections: usize,
    /// Time a client has to send a complete request head, ms (100..=60000); also the longest
    /// wait for the next request on a kept-alive connection.
    pub http_header_timeout_ms: u64,
    /// Time one request may take from its head to the end of the response, ms (100..=300000).
    pub http_request_timeout_ms: u64,
    /// A connection with no byte moving either way for this long is closed, ms (100..=3600000).
    pub http_idle_timeout_ms: u64,
    /// gRPC connections served at once (4..=10000), apart from the HTTP ones.
    pub grpc_max_connections: usize,
    /// Serve the (read-only, plaintext) HTTP API on a non-loopback address.
    pub http_allow_remote: bool,
    /// Serve gRPC without TLS on a non-loopback address (token and PIN cross the network in
    /// clear). Without it, a non-loopback `server.grpc_addr` needs `grpc_tls_cert` + `grpc_tls_key`.
    pub allow_insecure_remote: bool,
    /// PEM certificate chain of the gRPC server (TLS when set, with `grpc_tls_key`).
    pub grpc_tls_cert: Option<PathBuf>,
    /// PEM private key of the gRPC server.
    pub grpc_tls_key: Option<PathBuf>,
    /// Failed token attempts per peer IP per `auth_window_s` before that peer is refused without a
    /// check (1..=1000).
    pub auth_max_failures: usize,
    /// Window of `auth_max_failures`, seconds (1..=86400).
    pub auth_window_s: u64,
    /// Real LIVE PIN checks per peer IP per `pin_window_s` (1..=100).
    pub pin_attempts_per_peer: usize,
    /// Real LIVE PIN checks over all peers per `pin_window_s` (>= `pin_attempts_per_peer`, <= 10000).
    pub pin_attempts_global: usize,
    /// Window of both PIN limits, seconds (1..=86400).
    pub pin_window_s: u64,
    /// Peers each throttle remembers (16..=1000000).
    pub max_tracked_peers: usize,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            http_max_connections: 256,
            http_header_timeout_ms: 5_000,
            http_request_timeout_ms: 10_000,
            http_idle_timeout_ms: 30_000,
            grpc_max_connections: 128,
            http_allow_remote: false,
            allow_insecure_remote: false,
            grpc_tls_cert: None,
            grpc_tls_key: None,
            auth_max_failures: 10,
            auth_window_s: 60,
            pin_attempts_per_peer: 3,
            pin_attempts_global: 30,
            pin_window_s: 60,
            max_tracked_peers: 1024,
        }
    }
}

impl ControlConfig {
    /// True when gRPC is served over TLS (both PEM paths set).
    pub fn grpc_tls(&self) -> bool {
        self.grpc_tls_cert.is_some() && self.grpc_tls_key.is_some()
    }

    /// Problems of this section, with the listening addresses it guards: a non-loopback HTTP
    /// address needs `http_allow_remote`; a non-loopback gRPC address needs TLS or
    /// `allow_insecure_remote`.
    pub fn problems(&self, server: &ServerConfig) -> Vec<String> {
        let mut e = Vec::new();
        let range = |e: &mut Vec<String>, n: &str, v: u64, lo: u64, hi: u64| {
            if !(lo..=hi).contains(&v) {
                e.push(format!("control.{n} must be in [{lo}, {hi}], got {v}"));
            }
        };
        range(&mut e, "http_max_connections", self.http_max_connections as u64, 1, 10_000);
        range(&mut e, "http_header_timeout_ms", self.http_header_timeout_ms, 100, 60_000);
        range(&mut e, "http_request_timeout_ms", self.http_request_timeout_ms, 100, 300_000);
        range(&mut e, "http_idle_timeout_ms", self.http_idle_timeout_ms, 100, 3_600_000);
        range(&mut e, "grpc_max_connections", self.grpc_max_connections as u64, 4, 10_000);
        range(&mut e, "auth_max_failures", self.auth_max_failures as u64, 1, 1_000);
        range(&mut e, "auth_window_s", self.auth_window_s, 1, 86_400);
        range(&mut e, "pin_attempts_per_peer", self.pin_attempts_per_peer as u64, 1, 100);
        range(
            &mut e,
            "pin_attempts_global",
            self.pin_attempts_global as u64,
            self.pin_attempts_per_peer as u64,
            10_000,
        );
        range(&mut e, "pin_window_s", self.pin_window_s, 1, 86_400);
        range(&mut e, "max_tracked_peers", self.max_tracked_peers as u64, 16, 1_000_000);
        if self.grpc_tls_cert.is_some() != self.grpc_tls_key.is_some() {
            e.push("control.grpc_tls_cert and control.grpc_tls_key must be set together".into());
        }
        let remote = |a: &str| a.parse::<std::net::SocketAddr>().is_ok_and(|a| !a.ip().is_loopback());
        if remote(&server.http_addr) && !self.http_allow_remote {
            e.push(format!(
                "server.http_addr {} is not a loopback address: the HTTP API is plaintext; set                  control.http_allow_remote = true to serve it there anyway",
                server.http_addr
            ));
        }
        if remote(&server.grpc_addr) && !self.grpc_tls() && !self.allow_insecure_remote {
            e.push(format!(
                "server.grpc_addr {} is not a loopback address: gRPC would carry the control token and                  the LIVE PIN in clear; set control.grpc_tls_cert + control.grpc_tls_key (TLS), or                  control.allow_insecure_remote = true to accept plaintext",
                server.grpc_addr
            ));
        }
        e
    }
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Hours raw stream files are kept (never less than 24).
    pub retention_hours: u64,
    /// Seconds between retention runs.
    pub retention_interval_s: u64,
    /// Capacity of the writer queue (records).
    pub queue_capacity: usize,
    /// Max records written per batch.
    pub batch_max: usize,
    /// Record every input event of the core to `raw/_global/<hour>.jsonl.zst` for replay (on by
    /// default in every mode; `false` opts out, and a run can then not be replayed).
    pub record_raw: bool,
    /// Disk budget of the hourly stream files (recording included), GB (10^9 bytes). Retention
    /// deletes the oldest files beyond it even when younger than `retention_hours`, and says so
    /// (`scalper_retention_budget_forced_hours`). The default holds 24 h of the whole linear
    /// universe (~12,000 events/s at ~57 B per compressed event: ~60 GB/day) with room to spare.
    pub max_disk_gb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            retention_hours: 24,
            retention_interval_s: 7_200,
            queue_capacity: 65_536,
            batch_max: 1_024,
            record_raw: true,
            max_disk_gb: 100,
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// A tick slower than this enters DEGRADED.
    pub degraded_tick_ms: u64,
    /// Consecutive fast ticks needed to leave DEGRADED.
    pub degraded_recover_ticks: u32,
    /// Feed DOWN for longer than this → global RISK_OFF.
    pub feed_down_risk_off_s: u64,
    /// Capacity of the input queue into the core.
    pub input_queue_capacity: usize,
    /// Market events waiting beyond this are shed (Wild first, then Normal; never Prime).
    pub shed_high_water: usize,
    /// With a private connector: how often positions, open orders and the wallet are fetched
    /// and reconciled against the engine's state, ms.
    pub live_reconcile_interval_ms: u64,
    /// Capacity of the queue of orders from the core to the exchange edge.
    pub venue_queue_capacity: usize,
    /// Software prefetch of each market event's symbol state and of the next two queued
    /// events' (from [`crate::engine::core::PREFETCH_FROM_SYMBOLS`] symbols on). Off by
    /// default: on the 2-core EPYC VM it was measured slower than the hardware prefetchers
    /// alone (p50 7 % higher at 1000 symbols, 19–25 % at 64–200; README "Universe scale").
    /// A hint only: decisions are the same either way; `bench-replay --prefetch` measures it
    /// on a given host.
    pub prefetch: bool,
    /// MiB of heap to allocate, write and free at start-up, before the first event (0: none),
    /// when the heap keeps freed memory (`huge_pages`' tunables; otherwise it is skipped, since
    /// malloc would hand it back at once). Symbol states built later then do not fault fresh
    /// huge pages on the event path (6–11 ms single-event stalls on the project's VM). 512 MiB
    /// holds a 1000-symbol universe's states (256 measured 2 % slower at 1000 symbols, README
    /// "Universe scale"). Costs that much resident memory for the process's life (at most
    /// 16 GiB).
    pub prefault_mib: u64,
    /// Back the heap with 2 MiB transparent huge pages: the `scalper` binary starts itself once
    /// more with glibc's tunables (`scalper::memory::HUGE_PAGE_TUNABLES`) unless
    /// `GLIBC_TUNABLES` already names them. Read before anything else, from the file given to
    /// `run`/`demo` and the environment (`SCALPER_ENGINE__HUGE_PAGES=false` turns it off);
    /// start-up only. Linux with glibc only; a library embedding the engine sets its own
    /// allocator. Changes no decision, only where memory lives.
    pub huge_pages: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            degraded_tick_ms: 300,
            degraded_recover_ticks: 100,
            feed_down_risk_off_s: 10,
            input_queue_capacity: 65_536,
            shed_high_water: 20_000,
            live_reconcile_interval_ms: 5_000,
            venue_queue_capacity: 4_096,
            prefetch: false,
            prefault_mib: 512,
            huge_pages: true,
        }
    }
}

/// Hot-reload settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadConfig {
    /// Milliseconds between checks of the config file.
    pub poll_interval_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig { poll_interval_ms: 1_000 }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Start-up mode: SIM (default) or DRY_RUN. LIVE is refused here.
    pub mode: Mode,
    /// Data directory (default `<root>/data`; `SCALPER_DATA_DIR` overrides).
    pub data_dir: Option<PathBuf>,
    /// Extra price buffer for latency, percent of price (0.02 = 0.02 %).
    pub latency_price_buffer_pct: f64,
    /// Risk limits.
    pub risk: RiskConfig,
    /// Score thresholds.
    pub thresholds: Thresholds,
    pub fees: Fees,
    /// Category limits.
    pub categories: Categories,
    /// Universe selection.
    pub universe: UniverseConfig,
    /// Exchange endpoints.
    pub endpoints: Endpoints,
    /// Listening addresses.
    pub server: ServerConfig,
    /// Control-plane limits, exposure and TLS.
    pub control: ControlConfig,
    pub storage: StorageConfig,
    pub engine: EngineConfig,
    /// Hot reload.
    pub reload: ReloadConfig,
    /// Market intelligence (features, regimes, scoring).
    pub intel: crate::intel::config::IntelConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Sim,
            data_dir: None,
            latency_price_buffer_pct: 0.02,
            risk: RiskConfig::default(),
            thresholds: Thresholds::default(),
            fees: Fees::default(),
            categories: Categories::default(),
            universe: UniverseConfig::default(),
            endpoints: Endpoints::default(),
            server: ServerConfig::default(),
            control: ControlConfig::default(),
            storage: StorageConfig::default(),
            engine: EngineConfig::default(),
            reload: ReloadConfig::default(),
            intel: Default::default(),
        }
    }
}

/// Bybit linear order-book depths.
pub const BYBIT_LINEAR_DEPTHS: [u16; 4] = [1, 50, 200, 1000];

fn in_range(errs: &mut Vec<String>, name: &str, v: f64, lo_excl: f64, hi_incl: f64) {
    if !(v.is_finite() && v > lo_excl && v <= hi_incl) {
        errs.push(format!("{name} must be in ({lo_excl}, {hi_incl}], got {v}"));
    }
}

impl Config {
    /// Cost parameters of a symbol of `category` (leverage = the category's max).
    pub fn cost_params(&self, category: Category) -> CostParams {
        let c = &self.intel.costs;
        CostParams {
            maker_fee: self.fees.maker,
            taker_fee: self.fees.taker,
            latency_buffer: self.latency_price_buffer_pct / 100.0,
            leverage: self.categories.get(category).max_leverage,
            mmr: c.mmr(category),
            notional: c.slippage_notional_usdt,
            entry: c.entry,
            exit: c.exit,
        }
    }

    /// `intel.global` with the feed-down delay taken from `engine.feed_down_risk_off_s` (use it
    /// for [`GlobalRegimeTracker::set_config`](crate::regime::global::GlobalRegimeTracker::set_config)
    /// on a reload too).
    pub fn global_regime(&self) -> GlobalRegimeConfig {
        let mut g = self.intel.global.clone();
        g.feed_down_risk_off_ms = (self.engine.feed_down_risk_off_s as i64).saturating_mul(1000);
        g
    }

    /// Checks every rule and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut e = Vec::new();
        if self.mode == Mode::Live {
            e.push(
                "mode LIVE cannot be set from configuration; start in SIM or DRY_RUN and enter LIVE \
                 with `scalperctl mode live --pin` (double confirmation + PIN)"
                    .to_string(),
            );
        }
        if !(self.latency_price_buffer_pct.is_finite() && (0.0..=1.0).contains(&self.latency_price_buffer_pct)) {
            e.push(format!(
                "latency_price_buffer_pct must be in [0, 1] (percent), got {}",
                self.latency_price_buffer_pct
            ));
        }
        let r = &self.risk;
        if !(r.starting_equity.is_finite() && r.starting_equity > 0.0) {
            e.push(format!("risk.starting_equity must be > 0, got {}", r.starting_equity));
        }
        in_range(&mut e, "risk.per_trade", r.per_trade, 0.0, 0.05);
        in_range(&mut e, "risk.max_portfolio_heat", r.max_portfolio_heat, 0.0, 0.5);
        in_range(&mut e, "risk.daily_loss_limit", r.daily_loss_limit, 0.0, 0.5);
        in_range(&mut e, "risk.unrealized_drawdown_limit", r.unrealized_drawdown_limit, 0.0, 0.5);
        if r.per_trade.is_finite() && r.max_portfolio_heat.is_finite() && r.max_portfolio_heat < r.per_trade {
            e.push(format!(
                "risk.max_portfolio_heat ({}) must be >= risk.per_trade ({})",
                r.max_portfolio_heat, r.per_trade
            ));
        }
        let t = &self.thresholds;
        for (n, v) in [("thresholds.watch", t.watch), ("thresholds.arm", t.arm)] {
            if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                e.push(format!("{n} must be in [0, 100], got {v}"));
            }
        }
        if t.arm < t.watch {
            e.push(format!("thresholds.arm ({}) must be >= thresholds.watch ({})", t.arm, t.watch));
        }
        for (n, v) in [("fees.maker", self.fees.maker), ("fees.taker", self.fees.taker)] {
            if !(v.is_finite() && (-0.001..=0.01).contains(&v)) {
                e.push(format!("{n} must be in [-0.001, 0.01] (fraction of notional), got {v}"));
            }
        }
        for c in [Category::Prime, Category::Normal, Category::Wild] {
            let l = self.categories.get(c);
            let n = c.as_str();
            if !(l.max_leverage.is_finite() && (1.0..=100.0).contains(&l.max_leverage)) {
                e.push(format!("categories.{n}.max_leverage must be in [1, 100], got {}", l.max_leverage));
            }
            if !(l.max_notional.is_finite() && l.max_notional > 0.0) {
                e.push(format!("categories.{n}.max_notional must be > 0, got {}", l.max_notional));
            }
            if !BYBIT_LINEAR_DEPTHS.contains(&l.book_depth) {
                e.push(format!(
                    "categories.{n}.book_depth must be one of {:?} (Bybit linear depths), got {}",
                    BYBIT_LINEAR_DEPTHS, l.book_depth
                ));
            }
        }
        let u = &self.universe;
        if u.topics_per_request == 0 || u.topics_per_request > 10 {
            e.push(format!(
                "universe.topics_per_request must be in [1, 10] (Bybit's limit), got {}",
                u.topics_per_request
            ));
        }
        for s in &u.prime_symbols {
            if !crate::domain::Symbol::is_valid(s) {
                e.push(format!("universe.prime_symbols: {s:?} is not a valid symbol"));
            }
        }
        let ep = &self.endpoints;
        if matches!(ep.preset, EndpointPreset::Custom | EndpointPreset::Sim) {
            for (n, v, schemes) in [
                ("endpoints.rest_url", &ep.rest_url, ["http://", "https://"]),
                ("endpoints.ws_public_url", &ep.ws_public_url, ["ws://", "wss://"]),
                ("endpoints.ws_private_url", &ep.ws_private_url, ["ws://", "wss://"]),
            ] {
                if !schemes.iter().any(|s| v.starts_with(s)) {
                    e.push(format!("{n} must start with {} or {}, got {v:?}", schemes[0], schemes[1]));
                }
            }
        }
        for (n, v) in [("server.http_addr", &self.server.http_addr), ("server.grpc_addr", &self.server.grpc_addr)] {
            if v.parse::<std::net::SocketAddr>().is_err() {
                e.push(format!("{n} must be an address like 127.0.0.1:9464, got {v:?}"));
            }
        }
        e.extend(self.control.problems(&self.server));
        self.validate_bounds(&mut e);
        e.extend(self.intel.validate());
        if e.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(e))
        }
    }

    /// Upper (and lower) bounds of every integer setting and of the float settings the rules
    /// above leave open: an absurd value (e.g. `i64::MAX`) is a config error naming the key and
    /// the allowed range, never a panic in a queue constructor or a writer thread that dies.
    fn validate_bounds(&self, e: &mut Vec<String>) {
        let (u, s, g) = (&self.universe, &self.storage, &self.engine);
        let ints: [(&str, u64, u64, u64); 23] = [
            ("universe.prime_top_n", u.prime_top_n as u64, 0, 1_000),
            ("universe.new_listing_days", u64::from(u.new_listing_days), 0, 3_650),
            ("universe.refresh_s", u.refresh_s, 1, 3_600),
            ("universe.inactive_drop_s", u.inactive_drop_s, 60, 30 * 86_400),
            ("universe.symbols_per_connection", u.symbols_per_connection as u64, 1, 2_000),
            ("universe.ws_ping_interval_ms", u.ws_ping_interval_ms, 100, 600_000),
            ("universe.ws_pong_timeout_ms", u.ws_pong_timeout_ms, 100, 600_000),
            ("universe.ws_data_timeout_ms", u.ws_data_timeout_ms, 100, 3_600_000),
            ("universe.trade_max_ahead_ms", u.trade_max_ahead_ms, 0, 600_000),
            ("storage.retention_hours", s.retention_hours, 24, 24 * 366),
            ("storage.retention_interval_s", s.retention_interval_s, 60, 86_400),
            ("storage.queue_capacity", s.queue_capacity as u64, 16, MAX_QUEUE_CAPACITY),
            ("storage.batch_max", s.batch_max as u64, 1, 65_536),
            ("storage.max_disk_gb", s.max_disk_gb, 1, 1_000_000),
            ("engine.degraded_tick_ms", g.degraded_tick_ms, 1, 60_000),
            ("engine.degraded_recover_ticks", u64::from(g.degraded_recover_ticks), 1, 1_000_000),
            ("engine.feed_down_risk_off_s", g.feed_down_risk_off_s, 1, 3_600),
            ("engine.input_queue_capacity", g.input_queue_capacity as u64, 16, MAX_QUEUE_CAPACITY),
            ("engine.shed_high_water", g.shed_high_water as u64, 16, MAX_QUEUE_CAPACITY),
            ("engine.live_reconcile_interval_ms", g.live_reconcile_interval_ms, 200, 600_000),
            ("engine.venue_queue_capacity", g.venue_queue_capacity as u64, 16, 1 << 20),
            ("engine.prefault_mib", g.prefault_mib, 0, 16_384),
            ("reload.poll_interval_ms", self.reload.poll_interval_ms, 50, 3_600_000),
        ];
        for (name, v, lo, hi) in ints {
            int_range(e, name, v, lo, hi);
        }
        for c in [Category::Prime, Category::Normal, Category::Wild] {
            let l = self.categories.get(c);
            int_range(e, &format!("categories.{}.max_positions", c.as_str()), u64::from(l.max_positions), 0, 1_000);
            if l.max_notional.is_finite() && l.max_notional > 1e9 {
                e.push(format!(
                    "categories.{}.max_notional must be in (0, 1e9] USDT, got {}",
                    c.as_str(),
                    l.max_notional
                ));
            }
        }
        if self.risk.starting_equity.is_finite() && self.risk.starting_equity > 1e12 {
            e.push(format!("risk.starting_equity must be in (0, 1e12] USDT, got {}", self.risk.starting_equity));
        }
        intel_integer_bounds(&serde_json::to_value(&self.intel).unwrap_or_default(), "intel", e);
        for (name, v, hi) in [
            ("universe.wild_max_turnover_24h", u.wild_max_turnover_24h, 1e13),
            ("universe.wild_min_abs_change_24h", u.wild_min_abs_change_24h, 100.0),
        ] {
            if !(v.is_finite() && (0.0..=hi).contains(&v)) {
                e.push(format!("{name} must be in [0, {hi}], got {v}"));
            }
        }
    }
}

/// Largest capacity accepted for a bounded queue (records): far above any real backlog, far
/// below the limits where allocating or building the channel would fail.
pub const MAX_QUEUE_CAPACITY: u64 = 1 << 22;

/// A backstop for every integer under `intel.*` (their own rules live with the features): by the
/// key's unit suffix, `_ms` and `_s` at most 30 days, anything else (counts, ticks, levels) at
/// most 100 000, so no value can overflow time arithmetic or size a buffer absurdly.
fn intel_integer_bounds(v: &serde_json::Value, path: &str, errs: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                intel_integer_bounds(x, &format!("{path}.{k}"), errs);
            }
        }
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
            let hi: u64 = if path.ends_with("_ms") {
                30 * 86_400_000
            } else if path.ends_with("_s") {
                30 * 86_400
            } else {
                100_000
            };
            let abs = n.as_i64().map(i64::unsigned_abs).or(n.as_u64()).unwrap_or(u64::MAX);
            if abs > hi {
                errs.push(format!("{path} must be in [-{hi}, {hi}], got {n}"));
            }
        }
        _ => {}
    }
}

fn int_range(errs: &mut Vec<String>, name: &str, v: u64, lo: u64, hi: u64) {
    if !(lo..=hi).contains(&v) {
        errs.push(format!("{name} must be in [{lo}, {hi}], got {v}"));
    }
}
