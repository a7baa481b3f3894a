//! Market intelligence per symbol: the features ([`crate::features`]), the symbol regime
//! ([`crate::regime`]) and the long/short scores ([`crate::scoring`]) of one symbol, kept together
//! in a [`SymbolIntel`] and configured by [`IntelConfig`] (`[intel]` in `scalper.toml`).
//! [`harness::SymbolHarness`] wires a book, tape, candles, news and a `SymbolIntel` to a stream of
//! [`crate::engine::event::Event`]s (scenario tests, benches).

pub mod config;
pub mod harness;
pub mod symbol;

#[cfg(test)]
mod scenarios;

pub use config::IntelConfig;
pub use symbol::SymbolIntel;

use crate::features::{PumpEvent, WallEvent};
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
