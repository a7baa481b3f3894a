//! Symbol regime (NORMAL, PUMP, MANIPULATED, NEWS_DRIVEN, COOLDOWN) and global regime
//! (GLOBAL_NORMAL, GLOBAL_RISK_OFF, GLOBAL_PANIC). Pure; driven by the engine's regime step.

pub mod global;
pub mod symbol;

pub use global::{GlobalRegime, GlobalRegimeChange, GlobalRegimeConfig, GlobalRegimeTracker, GlobalSnapshot};
pub use symbol::{RegimeChange, RegimeConfig, RegimeInputs, RegimeSnapshot, RegimeState, SymbolRegimeTracker};
