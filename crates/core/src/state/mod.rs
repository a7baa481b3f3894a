//! Per-symbol trading state machine and the portfolio. Pure; driven by the engine's state step.

pub mod machine;
pub mod portfolio;
