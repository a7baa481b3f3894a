//! FinalScalpScore long/short with explainable contributions ([`scalp_score`]) and the signal
//! gate ([`signal_allowed`]). Pure; driven by the engine's scoring step.

pub mod scalp_score;

use crate::config::Thresholds;
use crate::domain::TimeMs;
use crate::regime::global::GlobalRegime;
use crate::regime::symbol::RegimeSnapshot;
use serde::{Deserialize, Serialize};

pub use scalp_score::{score, ScalpScore, ScoreConfig, ScoreMode, ScoreTerms};

/// Score thresholds of one symbol: `config.thresholds` plus a per-symbol extra, plus a global
/// risk-off extra.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignalThresholds {
    /// Watch threshold [0, 100].
    pub watch: f64,
    /// Arm threshold [0, 100].
    pub arm: f64,
    /// Added to both for this symbol (e.g. Wild symbols, a bad track record).
    pub symbol_extra: f64,
    /// Added to both while GLOBAL_RISK_OFF.
    pub risk_off_extra: f64,
}

impl SignalThresholds {
    /// From `config.thresholds` and a per-symbol extra (risk-off extra 10 points).
    pub fn from_config(t: &Thresholds, symbol_extra: f64) -> Self {
        SignalThresholds { watch: t.watch, arm: t.arm, symbol_extra, risk_off_extra: 10.0 }
    }
}

/// Outcome of the signal gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalLevel {
    /// Regime forbids signals (symbol not NORMAL / finished COOLDOWN, or GLOBAL_PANIC).
    Blocked,
    /// Allowed regime, score at or below the watch threshold.
    Below,
    /// Score above watch (not above arm).
    Watch,
    /// Score above arm.
    Arm,
}

impl SignalLevel {
    /// True for `Watch` and `Arm`.
    pub fn passes(self) -> bool {
        matches!(self, SignalLevel::Watch | SignalLevel::Arm)
    }
}

/// The signal gate: passes only when the symbol regime is NORMAL or a finished COOLDOWN, the
/// global regime is not PANIC, and `score` exceeds `watch + extras` (`Arm` above
/// `arm + extras`). Extras: the symbol's, plus `risk_off_extra` in GLOBAL_RISK_OFF.
pub fn signal_allowed(
    regime: &RegimeSnapshot,
    global: GlobalRegime,
    score: f64,
    t: &SignalThresholds,
    now_ms: TimeMs,
) -> SignalLevel {
    if !regime.allows_signals(now_ms) || global == GlobalRegime::GlobalPanic || !score.is_finite() {
        return SignalLevel::Blocked;
    }
    let extra = t.symbol_extra + if global == GlobalRegime::GlobalRiskOff { t.risk_off_extra } else { 0.0 };
    if score > t.arm + extra {
        SignalLevel::Arm
    } else if score > t.watch + extra {
        SignalLevel::Watch
    } else {
        SignalLevel::Below
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regime::symbol::RegimeState;

    #[test]
    fn gate() {
        let t = SignalThresholds::from_config(&Thresholds::default(), 5.0); // watch 55, arm 70, +5
        let normal = RegimeSnapshot::default();
        let g = GlobalRegime::GlobalNormal;
        assert_eq!(signal_allowed(&normal, g, 60.0, &t, 0), SignalLevel::Below, "60 <= 55 + 5");
        assert_eq!(signal_allowed(&normal, g, 60.5, &t, 0), SignalLevel::Watch);
        assert_eq!(signal_allowed(&normal, g, 75.5, &t, 0), SignalLevel::Arm);
        assert_eq!(signal_allowed(&normal, GlobalRegime::GlobalRiskOff, 75.5, &t, 0), SignalLevel::Watch);
        assert_eq!(signal_allowed(&normal, GlobalRegime::GlobalPanic, 99.0, &t, 0), SignalLevel::Blocked);
        assert_eq!(signal_allowed(&normal, g, f64::NAN, &t, 0), SignalLevel::Blocked);
        let cool = RegimeSnapshot { state: RegimeState::Cooldown, cooldown_until_ms: 1_000, ..normal.clone() };
        assert_eq!(signal_allowed(&cool, g, 99.0, &t, 999), SignalLevel::Blocked);
        assert_eq!(signal_allowed(&cool, g, 99.0, &t, 1_000), SignalLevel::Arm, "finished cooldown");
        for st in [RegimeState::Pump, RegimeState::Manipulated, RegimeState::NewsDriven] {
            let r = RegimeSnapshot { state: st, ..normal.clone() };
            assert_eq!(signal_allowed(&r, g, 99.0, &t, 0), SignalLevel::Blocked);
        }
        assert!(SignalLevel::Arm.passes() && !SignalLevel::Below.passes());
    }
}
