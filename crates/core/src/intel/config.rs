//! `[intel]` configuration section: every threshold of features, regimes and scoring, with
//! defaults in code. Each sub-section is validated and its problems are reported with the
//! others by [`crate::config::Config::validate`].

use crate::features::baseline::BaselineConfig;
use crate::features::costs::CostConfig;
use crate::features::flow::FlowConfig;
use crate::features::news::NewsConfig;
use crate::features::pump::PumpConfig;
use crate::features::volatility::VolatilityConfig;
use crate::features::walls::WallConfig;
use crate::regime::global::GlobalRegimeConfig;
use crate::regime::symbol::RegimeConfig;
use crate::scoring::scalp_score::ScoreConfig;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Market-intelligence settings (`[intel]` in `scalper.toml`, `SCALPER_INTEL__…` in the env).
///
/// The sections a per-symbol tracker keeps (baseline, walls, pump, volatility, regime) are
/// behind `Arc`s: every symbol's tracker shares the one copy instead of holding its own
/// (~520 bytes a symbol that each event would otherwise pull into the cache). Change one with
/// `Arc::make_mut(&mut cfg.intel.baseline).warmup_s = 10`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct IntelConfig {
    /// Long-horizon baselines and their warm-up.
    pub baseline: Arc<BaselineConfig>,
    /// Walls and spoofing.
    pub walls: Arc<WallConfig>,
    /// Pump engine.
    pub pump: Arc<PumpConfig>,
    /// Flow and defence.
    pub flow: FlowConfig,
    pub volatility: Arc<VolatilityConfig>,
    /// Fee hurdle and leverage safety.
    pub costs: CostConfig,
    /// Automatic news flags.
    pub news: NewsConfig,
    /// Symbol regime.
    pub regime: Arc<RegimeConfig>,
    pub global: GlobalRegimeConfig,
    pub score: ScoreConfig,
}

impl IntelConfig {
    /// Every problem, as `intel.<section>.<field> …` messages (empty when valid).
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        self.baseline.validate("intel.baseline", &mut e);
        self.walls.validate("intel.walls", &mut e);
        self.pump.validate("intel.pump", &mut e);
        self.flow.validate("intel.flow", &mut e);
        self.volatility.validate("intel.volatility", &mut e);
        self.costs.validate("intel.costs", &mut e);
        self.news.validate("intel.news", &mut e);
        self.regime.validate("intel.regime", &mut e);
        self.global.validate("intel.global", &mut e);
        self.score.validate("intel.score", &mut e);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The configuration as the file loader builds it: defaults, then the given sections.
    fn from_json(v: serde_json::Value) -> Result<Config, crate::config::ConfigError> {
        let cfg: Config = serde_json::from_value(v).map_err(|e| crate::config::ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn defaults_are_valid_and_toml_overrides() {
        assert!(IntelConfig::default().validate().is_empty(), "{:?}", IntelConfig::default().validate());
        let cfg =
            from_json(serde_json::json!({"intel": {"walls": {"k": 8.0}, "pump": {"pump_ret_pct": 2.0}}})).unwrap();
        assert_eq!(cfg.intel.walls.k, 8.0);
        assert_eq!(cfg.intel.pump.pump_ret_pct, 2.0);
        assert_eq!(cfg.intel.pump.pre_ret_pct, PumpConfig::default().pre_ret_pct);
        let err =
            from_json(serde_json::json!({"intel": {"walls": {"k": 0.5}, "regime": {"spoof_enter": 0.1}}})).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("intel.walls.k") && msg.contains("intel.regime"), "{msg}");
        assert!(from_json(serde_json::json!({"intel": {"walls": {"bogus": 1}}})).is_err());
    }
}
