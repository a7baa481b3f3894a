//! Symbol regime (NORMAL, PUMP, MANIPULATED, NEWS_DRIVEN, COOLDOWN) and global regime
//! (GLOBAL_NORMAL, GLOBAL_RISK_OFF, GLOBAL_PANIC). Pure; driven by the engine's regime step.
