//! Per-symbol market intelligence computed from books, tape and candles: order-book imbalance,
//! walls and spoofing, pump phases, flow and delta, volatility, fee hurdle and leverage safety,
//! news flags. Pure and deterministic: inputs are market state plus event time (ms); no I/O, no
//! clock reads, no randomness.
//!
//! The engine talks to [`SymbolIntel`] (one per symbol) and reads its [`FeatureSnapshot`];
//! the regimes live in [`crate::regime`], the scores in [`crate::scoring`].
//! [`harness::SymbolHarness`] wires a book, tape, candles, news and a `SymbolIntel` to a
//! stream of [`crate::engine::event::Event`]s (scenario tests, benches, the integrator).

pub mod baseline;
pub mod config;
pub mod costs;
pub mod flow;
pub mod harness;
pub mod imbalance;
pub mod intel;
pub mod math;
pub mod news;
pub mod pump;
pub mod snapshot;
pub mod volatility;
pub mod walls;
pub mod window;

#[cfg(test)]
mod scenarios;

pub use config::IntelConfig;
pub use intel::SymbolIntel;
pub use news::{ManualNewsSource, NewsFlag, NewsSource, NewsType, NewsView};
pub use pump::{PumpEvent, PumpState};
pub use snapshot::FeatureSnapshot;
pub use walls::{WallEvent, WallOutcome};

use crate::regime::symbol::RegimeChange;
use serde::{Deserialize, Serialize};

/// Something the intelligence layer noticed, for the event log (`DataKind::Events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IntelEvent {
    /// A wall verdict (SPOOFING events are the spoof events).
    Wall(WallEvent),
    /// A pump-phase transition with its evidence.
    Pump(PumpEvent),
    /// A symbol-regime change.
    Regime(RegimeChange),
}
