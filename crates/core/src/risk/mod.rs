//! Position sizing, portfolio heat, daily loss and RISK_OFF triggers. Pure; driven by the
//! engine's risk step.

pub mod engine;
pub mod money;
pub mod sizing;
