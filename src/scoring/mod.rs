//! FinalScalpScore long/short with explainable contributions. Pure; driven by the engine's
//! scoring step.
