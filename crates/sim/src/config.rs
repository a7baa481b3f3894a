//! Simulator configuration: universe size, clock, per-symbol scenarios, universe events and
//! faults scheduled in advance. Everything is plain data (serde) so `scalper sim-exchange` can
//! read it from a file.

use super::SimError;
use scalper_core::domain::Symbol;
use serde::{Deserialize, Serialize};

/// How the simulator's clock advances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ClockMode {
    /// Market steps run on a wall-clock schedule; `speed` simulated ms pass per real ms
    /// (1.0 = real time, 10.0 = ten times faster).
    RealTime {
        /// Simulated ms per real ms (> 0).
        speed: f64,
    },
    /// The market only moves when [`super::SimHandle::advance`] is called. Fully deterministic
    /// including timestamps when `start_time_ms` is set.
    Manual,
}

/// A market regime assigned to one symbol. Times are simulated ms since the simulator started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scenario {
    /// Random walk with normal activity: stochastic, clustered volatility (fat-tailed 1 s
    /// returns), heavy-tailed level and trade sizes, calibrated to real perpetuals (see
    /// `tests/sim_realism.rs`).
    Calm,
    /// Sustained rise of `magnitude_bps` over `duration_ms`, buy-dominated and busy.
    Pump {
        /// Start, ms since simulator start.
        start_ms: i64,
        /// Length of the rise.
        duration_ms: i64,
        /// Total rise in basis points.
        magnitude_bps: i64,
    },
    /// A pump of `magnitude_bps` over `pump_ms`, then a dump back over `dump_ms` with long
    /// liquidations.
    PumpAndDump {
        /// Start, ms since simulator start.
        start_ms: i64,
        /// Length of the rise.
        pump_ms: i64,
        /// Length of the fall.
        dump_ms: i64,
        /// Rise in basis points (the dump gives it back).
        magnitude_bps: i64,
    },
    /// Every `every_ms` a large wall appears a few ticks from the touch; it is pulled before the
    /// price reaches it.
    SpoofWalls {
        /// Interval between walls.
        every_ms: i64,
    },
    /// From `start_ms` a large wall sits near the touch and is eaten by trades at its price,
    /// after which the price breaks through. Repeats every `repeat_ms` (0 = once).
    AbsorbingWall {
        /// First wall, ms since simulator start.
        start_ms: i64,
        /// Interval between walls after the first is gone (0 = only one).
        repeat_ms: i64,
    },
    /// A sudden jump of `jump_bps` (negative = crash) at `at_ms` with a volume and liquidation
    /// spike that decays over a few seconds.
    NewsShock {
        /// Time of the jump, ms since simulator start.
        at_ms: i64,
        /// Size of the jump in basis points.
        jump_bps: i64,
    },
}

impl Scenario {
    /// The label tests use to check detection.
    pub fn label(&self) -> ScenarioLabel {
        match self {
            Scenario::Calm => ScenarioLabel::Calm,
            Scenario::Pump { .. } => ScenarioLabel::Pump,
            Scenario::PumpAndDump { .. } => ScenarioLabel::PumpAndDump,
            Scenario::SpoofWalls { .. } => ScenarioLabel::SpoofWalls,
            Scenario::AbsorbingWall { .. } => ScenarioLabel::AbsorbingWall,
            Scenario::NewsShock { .. } => ScenarioLabel::NewsShock,
        }
    }
}

/// Scenario kind without parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioLabel {
    /// [`Scenario::Calm`].
    Calm,
    /// [`Scenario::Pump`].
    Pump,
    /// [`Scenario::PumpAndDump`].
    PumpAndDump,
    /// [`Scenario::SpoofWalls`].
    SpoofWalls,
    /// [`Scenario::AbsorbingWall`].
    AbsorbingWall,
    /// [`Scenario::NewsShock`].
    NewsShock,
}

/// A scenario bound to a symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioAssignment {
    /// Symbol, e.g. `SIM003USDT` (may be a symbol listed later by [`UniverseEvent::NewListing`]).
    pub symbol: String,
    pub scenario: Scenario,
}

/// A change of the tradeable universe during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UniverseEvent {
    /// A new symbol appears in instruments-info (status `Trading`) and its streams start.
    NewListing {
        /// New symbol (must not be in the base universe).
        symbol: String,
        /// Listing time, ms since simulator start.
        at_ms: i64,
    },
    /// The symbol's status becomes `Closed`: it leaves the default instruments-info listing, its
    /// streams stop and REST market data for it is refused. Its `deliveryTime` announces the
    /// delisting time from the start.
    Delisting {
        /// Symbol being delisted.
        symbol: String,
        /// Delisting time, ms since simulator start.
        at_ms: i64,
    },
}

/// Which kind of crossed book to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossedKind {
    /// A snapshot whose best bid is at or above its best ask (same `u` as the current book).
    Snapshot,
    /// A delta (next `u`) that inserts a bid above the best ask.
    Delta,
}

/// A fault to inject, through the control API or scheduled in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fault {
    /// Close every open WebSocket abruptly (TCP close without a close frame).
    DropConnections,
    /// Stop (`on = true`) or resume all market-data frames while keeping sockets open (a stale
    /// feed). Frames generated meanwhile are lost, so the `u` chain jumps on resume.
    Silence {
        /// Silent when true.
        on: bool,
    },
    /// Like [`Fault::Silence`] for one symbol only.
    SilenceSymbol {
        symbol: String,
        /// Silent when true.
        on: bool,
    },
    /// Lose the next orderbook delta of the symbol on every depth above 1 (the `u` chain skips
    /// one value).
    SkipUpdateId { symbol: String },
    /// Send one text frame that is not valid JSON to every open connection.
    MalformedFrame,
    /// Publish a crossed book for the symbol to the subscribers of its depths above 1.
    CrossedBook {
        symbol: String,
        /// Snapshot or delta.
        kind: CrossedKind,
    },
    /// The next `count` REST requests answer with HTTP `status` (e.g. 403, 429, 500, 502, 503).
    RestHttpError {
        /// HTTP status code.
        status: u16,
        /// Number of requests affected.
        count: u32,
    },
    /// The next `count` REST requests answer HTTP 200 with this `retCode` (e.g. 10006
    /// "Too many visits!", 10016 "Server error", 10018 IP rate limit).
    RestRetCode {
        /// Bybit return code.
        ret_code: i64,
        /// Number of requests affected.
        count: u32,
    },
    /// Stop (`on = true`) or resume answering `{"op":"ping"}`.
    RefusePongs {
        /// Refuse when true.
        on: bool,
    },
    /// Simulate a restart of the symbol's book service: every depth restarts at `u = 1` with a
    /// fresh snapshot.
    RestartBook { symbol: String },
}

/// A fault applied at a given simulated time (before the market step that reaches it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Time, ms since simulator start.
    pub at_ms: i64,
    pub fault: Fault,
}

/// Everything the simulator needs to start. `Default` gives 50 calm symbols stepping every
/// 100 ms in real time on an ephemeral loopback port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of the synthetic market. Same seed (and config) = same market, step by step.
    pub seed: u64,
    /// Size of the base universe: `BTCUSDT`, `ETHUSDT`, then `SIM001USDT`, `SIM002USDT`, ...
    pub symbols: usize,
    /// Simulated ms per market step (1..=60000).
    pub tick_interval_ms: u64,
    /// Real-time or manual stepping.
    pub clock: ClockMode,
    /// Simulated epoch (ms since Unix epoch) of step 0; `None` = wall clock at start.
    pub start_time_ms: Option<i64>,
    /// Loopback port; 0 = any free port.
    pub port: u16,
    /// Scenario per symbol; unassigned symbols are [`Scenario::Calm`].
    pub scenarios: Vec<ScenarioAssignment>,
    /// Listings and delistings during the run.
    pub events: Vec<UniverseEvent>,
    /// Price levels kept per side of every simulated book (the `orderbook.1000` view is the whole
    /// book when this is below 1000).
    pub book_levels: usize,
    /// Multiplier of every symbol's volatility (1.0 = default).
    pub volatility: f64,
    /// A connection that sends nothing (no ping, no request) for this long is closed
    /// abruptly. Bybit cuts silent connections after about 10 minutes.
    pub ws_idle_timeout_ms: u64,
    /// Maximum `args` per subscribe request. Bybit's documentation sets no per-request limit for
    /// linear (only spot has 10), so the default is `None`; set `Some(10)` to be strict.
    pub max_args_per_request: Option<usize>,
    /// Maximum total length of subscribed topic strings on one connection (Bybit: 21,000).
    pub max_args_chars: usize,
    /// Outbound frames queued per connection before it is dropped as a slow consumer.
    pub outbound_queue: usize,
    /// Faults applied at fixed simulated times.
    pub faults: Vec<ScheduledFault>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            symbols: 50,
            tick_interval_ms: 100,
            clock: ClockMode::RealTime { speed: 1.0 },
            start_time_ms: None,
            port: 0,
            scenarios: Vec::new(),
            events: Vec::new(),
            book_levels: 250,
            volatility: 1.0,
            ws_idle_timeout_ms: 600_000,
            max_args_per_request: None,
            max_args_chars: 21_000,
            outbound_queue: 65_536,
            faults: Vec::new(),
        }
    }
}

impl SimConfig {
    /// A lively preset for `scalper demo`: 50 symbols with one of each scenario on
    /// `SIM001USDT`..`SIM006USDT`, a listing (`SIMNEWUSDT` after 60 s) and a delisting
    /// (`SIM010USDT` after 300 s).
    pub fn demo(seed: u64) -> Self {
        let assign = |symbol: &str, scenario: Scenario| ScenarioAssignment { symbol: symbol.into(), scenario };
        SimConfig {
            seed,
            scenarios: vec![
                assign("SIM001USDT", Scenario::Pump { start_ms: 20_000, duration_ms: 60_000, magnitude_bps: 800 }),
                assign(
                    "SIM002USDT",
                    Scenario::PumpAndDump { start_ms: 30_000, pump_ms: 40_000, dump_ms: 20_000, magnitude_bps: 1_200 },
                ),
                assign("SIM003USDT", Scenario::SpoofWalls { every_ms: 8_000 }),
                assign("SIM004USDT", Scenario::AbsorbingWall { start_ms: 10_000, repeat_ms: 60_000 }),
                assign("SIM005USDT", Scenario::NewsShock { at_ms: 45_000, jump_bps: -600 }),
                assign("SIM006USDT", Scenario::NewsShock { at_ms: 90_000, jump_bps: 900 }),
            ],
            events: vec![
                UniverseEvent::NewListing { symbol: "SIMNEWUSDT".into(), at_ms: 60_000 },
                UniverseEvent::Delisting { symbol: "SIM010USDT".into(), at_ms: 300_000 },
            ],
            ..SimConfig::default()
        }
    }

    /// The same preset over a base universe of `symbols`: scenarios, delistings and faults that
    /// name a base symbol beyond it are dropped (the demo preset names `SIM001USDT`..`SIM010USDT`,
    /// which a universe of 11 or fewer does not list, so `validate` refused it). Listings are kept:
    /// they bring their own symbol.
    pub fn with_symbols(mut self, symbols: usize) -> Self {
        self.symbols = symbols;
        let base: std::collections::HashSet<String> = self.base_symbol_names().into_iter().collect();
        let listed: Vec<String> = self
            .events
            .iter()
            .filter_map(|e| match e {
                UniverseEvent::NewListing { symbol, .. } => Some(symbol.clone()),
                UniverseEvent::Delisting { .. } => None,
            })
            .collect();
        let exists = |s: &str| base.contains(s) || listed.iter().any(|l| l == s);
        self.scenarios.retain(|a| exists(&a.symbol));
        self.events.retain(|e| match e {
            UniverseEvent::Delisting { symbol, .. } => exists(symbol),
            UniverseEvent::NewListing { .. } => true,
        });
        self.faults.retain(|f| f.fault.symbol().is_none_or(exists));
        self
    }

    /// Names of the base universe in index order.
    pub fn base_symbol_names(&self) -> Vec<String> {
        (0..self.symbols).map(base_symbol_name).collect()
    }

    /// Checks limits and that every symbol named by scenarios, events and faults exists.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::InvalidConfig(m));
        if !(1..=10_000).contains(&self.symbols) {
            return bad(format!("symbols must be 1..=10000, got {}", self.symbols));
        }
        if !(1..=60_000).contains(&self.tick_interval_ms) {
            return bad(format!("tick_interval_ms must be 1..=60000, got {}", self.tick_interval_ms));
        }
        if let ClockMode::RealTime { speed } = self.clock {
            if !(speed.is_finite() && speed > 0.0 && speed <= 10_000.0) {
                return bad(format!("clock speed must be in (0, 10000], got {speed}"));
            }
        }
        if !(1..=5_000).contains(&self.book_levels) {
            return bad(format!("book_levels must be 1..=5000, got {}", self.book_levels));
        }
        if !(self.volatility.is_finite() && self.volatility >= 0.0 && self.volatility <= 100.0) {
            return bad(format!("volatility must be in [0, 100], got {}", self.volatility));
        }
        if self.ws_idle_timeout_ms == 0 {
            return bad("ws_idle_timeout_ms must be > 0".into());
        }
        if self.max_args_per_request == Some(0) {
            return bad("max_args_per_request must be > 0".into());
        }
        if self.max_args_chars == 0 {
            return bad("max_args_chars must be > 0".into());
        }
        if self.outbound_queue < 16 {
            return bad(format!("outbound_queue must be >= 16, got {}", self.outbound_queue));
        }
        let mut known: Vec<String> = self.base_symbol_names();
        for ev in &self.events {
            if let UniverseEvent::NewListing { symbol, at_ms } = ev {
                if !Symbol::is_valid(symbol) {
                    return bad(format!("invalid listing symbol {symbol:?}"));
                }
                if known.contains(symbol) {
                    return bad(format!("listing symbol {symbol} already exists"));
                }
                if *at_ms < 0 {
                    return bad(format!("listing time of {symbol} is negative"));
                }
                known.push(symbol.clone());
            }
        }
        let check = |s: &str, what: &str| -> Result<(), SimError> {
            if known.iter().any(|k| k == s) {
                Ok(())
            } else {
                Err(SimError::InvalidConfig(format!("{what} names unknown symbol {s:?}")))
            }
        };
        for ev in &self.events {
            if let UniverseEvent::Delisting { symbol, at_ms } = ev {
                check(symbol, "delisting")?;
                if *at_ms < 0 {
                    return bad(format!("delisting time of {symbol} is negative"));
                }
            }
        }
        for a in &self.scenarios {
            check(&a.symbol, "scenario")?;
        }
        for f in &self.faults {
            if let Some(s) = f.fault.symbol() {
                check(s, "fault")?;
            }
        }
        Ok(())
    }
}

impl Fault {
    /// The symbol the fault targets, if any.
    pub fn symbol(&self) -> Option<&str> {
        match self {
            Fault::SilenceSymbol { symbol, .. }
            | Fault::SkipUpdateId { symbol }
            | Fault::CrossedBook { symbol, .. }
            | Fault::RestartBook { symbol } => Some(symbol),
            _ => None,
        }
    }
}

/// Name of base-universe symbol `i`: `BTCUSDT`, `ETHUSDT`, `SIM001USDT`, ...
pub fn base_symbol_name(i: usize) -> String {
    match i {
        0 => "BTCUSDT".to_string(),
        1 => "ETHUSDT".to_string(),
        n => format!("SIM{:03}USDT", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_validation() {
        let c = SimConfig::default();
        assert!(c.validate().is_ok());
        let names = c.base_symbol_names();
        assert_eq!(names[0], "BTCUSDT");
        assert_eq!(names[1], "ETHUSDT");
        assert_eq!(names[2], "SIM001USDT");
        assert_eq!(names.len(), 50);
        assert!(SimConfig::demo(7).validate().is_ok());
        let bad = SimConfig {
            scenarios: vec![ScenarioAssignment { symbol: "NOPEUSDT".into(), scenario: Scenario::Calm }],
            ..SimConfig::default()
        };
        assert!(matches!(bad.validate(), Err(SimError::InvalidConfig(_))));
        let bad = SimConfig { tick_interval_ms: 0, ..SimConfig::default() };
        assert!(bad.validate().is_err());
        let dup = SimConfig {
            events: vec![UniverseEvent::NewListing { symbol: "BTCUSDT".into(), at_ms: 5 }],
            ..SimConfig::default()
        };
        assert!(dup.validate().is_err());
    }

    #[test]
    fn demo_preset_fits_any_universe_size() {
        for n in [1, 2, 3, 7, 10, 11, 12, 50, 10_000] {
            let c = SimConfig::demo(5).with_symbols(n);
            assert_eq!(c.symbols, n);
            assert!(c.validate().is_ok(), "{n} symbols: {:?}", c.validate());
            // The listing survives every size; the delisting of SIM010USDT only where it exists.
            assert!(c.events.iter().any(|e| matches!(e, UniverseEvent::NewListing { .. })));
            let delists = c.events.iter().any(|e| matches!(e, UniverseEvent::Delisting { .. }));
            assert_eq!(delists, n >= 12, "{n} symbols");
        }
        assert!(SimConfig::demo(5).with_symbols(1).scenarios.is_empty());
        assert_eq!(SimConfig::demo(5).with_symbols(4).scenarios.len(), 2);
        assert_eq!(SimConfig::demo(5).with_symbols(50), SimConfig::demo(5));
        // The plain preset with a small universe is what `sim-exchange --symbols 10` used to build.
        assert!(SimConfig { symbols: 10, ..SimConfig::demo(5) }.validate().is_err());
        assert!(SimConfig::demo(5).with_symbols(0).validate().is_err());
    }

    #[test]
    fn config_round_trips_through_serde() {
        let c = SimConfig::demo(3);
        let s = serde_json::to_string(&c).unwrap();
        let back: SimConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
    }
}
