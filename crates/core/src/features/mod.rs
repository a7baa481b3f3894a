//! Per-symbol market features computed from books, tape and candles: order-book imbalance,
//! walls and spoofing, pump phases, flow and delta, volatility, fee hurdle and leverage safety,
//! news flags. Pure and deterministic: inputs are market state plus event time (ms); no I/O, no
//! clock reads, no randomness.
//!
//! Features sit below the regimes ([`crate::regime`]) and the scores ([`crate::scoring`]);
//! [`crate::intel`] puts the three together per symbol.

pub mod baseline;
pub mod costs;
pub mod flow;
pub mod imbalance;
pub mod math;
pub mod news;
pub mod pump;
pub mod snapshot;
pub mod volatility;
pub mod walls;
pub mod window;

pub use news::{ManualNewsSource, NewsFlag, NewsSource, NewsType, NewsView};
pub use pump::{PumpEvent, PumpState};
pub use snapshot::FeatureSnapshot;
pub use walls::{WallEvent, WallOutcome};
