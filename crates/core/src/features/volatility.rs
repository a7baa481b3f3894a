//! Volatility: micro ATR on 1 s and 3 s candles, VolatilityScore against the symbol's own
//! baseline, ExplosionFlag.
//!
//! * `ATR_L` (percent of price) = `Σ TR / N / last_close × 100` over the last `N = atr_periods`
//!   complete intervals of length `L` before the one containing `now`, where
//!   `TR = max(high − low, |high − prev_close|, |low − prev_close|)`. Intervals without trades
//!   are flat candles (TR 0), as the candle module prescribes, so a quiet market has a small ATR.
//! * `volatility_ratio` comes from the symbol's long baselines
//!   ([`crate::features::baseline::SymbolBaselines::volatility_ratio`]: recent vs usual variance
//!   of 5 s returns); it is 0 while the baseline is cold, so nothing here fires before it is warm.
//! * `VolatilityScore = clamp01(volatility_ratio / explosion_ratio)` ∈ [0, 1].
//! * `ExplosionFlag` turns on at `volatility_ratio >= explosion_ratio` and off below
//!   `explosion_exit_ratio` (hysteresis).

use crate::features::math::clamp01;
use crate::market::candles::{CandleSet, Interval};
use serde::{Deserialize, Serialize};

/// Volatility settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolatilityConfig {
    /// Candles per ATR. >= 1.
    pub atr_periods: usize,
    /// Ratio at which the flag turns on (score 1). > 1.
    pub explosion_ratio: f64,
    /// Ratio below which it turns off. (0, explosion_ratio].
    pub explosion_exit_ratio: f64,
}

impl Default for VolatilityConfig {
    fn default() -> Self {
        VolatilityConfig { atr_periods: 14, explosion_ratio: 3.0, explosion_exit_ratio: 2.0 }
    }
}

impl VolatilityConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if self.atr_periods == 0 || self.atr_periods > 200 {
            e.push(format!("{prefix}.atr_periods must be in [1, 200], got {}", self.atr_periods));
        }
        if !(self.explosion_ratio.is_finite() && self.explosion_ratio > 1.0) {
            e.push(format!("{prefix}.explosion_ratio must be > 1, got {}", self.explosion_ratio));
        }
        if !(self.explosion_exit_ratio > 0.0 && self.explosion_exit_ratio <= self.explosion_ratio) {
            e.push(format!(
                "{prefix}.explosion_exit_ratio must be in (0, explosion_ratio], got {}",
                self.explosion_exit_ratio
            ));
        }
    }
}

/// ATR (percent of price) over the `n` complete intervals of `interval` before the one
/// containing `now_ms`; 0 without candles.
pub fn micro_atr_pct(candles: &CandleSet, interval: Interval, n: usize, now_ms: i64) -> f64 {
    let Some(newest) = candles.last_closed(interval) else {
        return 0.0;
    };
    let len = interval.ms();
    let cutoff = interval.start_of(now_ms).saturating_sub(len.saturating_mul(n as i64));
    let mut sum = 0.0;
    let mut it = candles.recent(interval).peekable();
    while let Some(c) = it.next() {
        if c.start_ms < cutoff {
            break;
        }
        let (h, l) = (c.high.to_f64(), c.low.to_f64());
        let tr = match it.peek() {
            Some(prev) => {
                let pc = prev.close.to_f64();
                (h - l).max((h - pc).abs()).max((l - pc).abs())
            }
            None => h - l,
        };
        sum += tr;
    }
    let close = newest.close.to_f64();
    if close > 0.0 {
        sum / n as f64 / close * 100.0
    } else {
        0.0
    }
}

/// Volatility figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VolatilityFeatures {
    /// ATR on 1 s candles, percent.
    pub atr_1s_pct: f64,
    /// ATR on 3 s candles, percent.
    pub atr_3s_pct: f64,
    /// Recent / usual volatility (1 = normal for this symbol; 0 while cold).
    pub ratio: f64,
    /// VolatilityScore ∈ [0, 1].
    pub score: f64,
    /// ExplosionFlag.
    pub explosion: bool,
}

/// ATRs and explosion hysteresis.
#[derive(Debug, Clone)]
pub struct VolatilityTracker {
    /// Shared by every symbol's tracker (one copy per configuration, not per symbol).
    cfg: std::sync::Arc<VolatilityConfig>,
    out: VolatilityFeatures,
}

impl VolatilityTracker {
    /// New tracker.
    pub fn new(cfg: impl Into<std::sync::Arc<VolatilityConfig>>) -> Self {
        VolatilityTracker { cfg: cfg.into(), out: VolatilityFeatures::default() }
    }

    /// Replaces the settings.
    pub fn set_config(&mut self, cfg: impl Into<std::sync::Arc<VolatilityConfig>>) {
        self.cfg = cfg.into();
    }

    /// Recomputes the ATRs at `now_ms` and applies `ratio` (the baseline's recent / usual
    /// volatility, 0 while cold). Cost O(atr_periods).
    pub fn update(&mut self, candles: &CandleSet, now_ms: i64, ratio: f64) -> VolatilityFeatures {
        let n = self.cfg.atr_periods;
        let a1 = micro_atr_pct(candles, Interval::S1, n, now_ms);
        let a3 = micro_atr_pct(candles, Interval::S3, n, now_ms);
        let ratio = if ratio.is_finite() { ratio.max(0.0) } else { 0.0 };
        let explosion =
            if self.out.explosion { ratio >= self.cfg.explosion_exit_ratio } else { ratio >= self.cfg.explosion_ratio };
        self.out = VolatilityFeatures {
            atr_1s_pct: a1,
            atr_3s_pct: a3,
            ratio,
            score: clamp01(ratio / self.cfg.explosion_ratio),
            explosion,
        };
        self.out
    }

    /// Last computed figures.
    pub fn current(&self) -> VolatilityFeatures {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty, Side};

    fn trade(cs: &mut CandleSet, ts: i64, px: f64) {
        cs.on_print(ts, Price::from_f64(px), Qty::from_f64(1.0), Side::Buy);
    }

    #[test]
    fn atr_on_known_candles() {
        let mut cs = CandleSet::new(300, 0);
        // Second 0: 100 → 101; second 1: 101 → 100.5 (low) ; second 3 (gap at 2): 102..102.
        trade(&mut cs, 0, 100.0);
        trade(&mut cs, 500, 101.0);
        trade(&mut cs, 1_100, 100.5);
        trade(&mut cs, 1_200, 101.0);
        trade(&mut cs, 3_100, 102.0);
        cs.on_time(4_000);
        // TRs: c0: 1.0 (no prev), c1: max(0.5, |101−101|, |100.5−101|) = 0.5, c3: |102 − 101| = 1.
        // N = 4 intervals ending at 4 000: covers seconds 0..3 (second 2 is a flat gap).
        let atr = micro_atr_pct(&cs, Interval::S1, 4, 4_000);
        assert!((atr - (1.0 + 0.5 + 1.0) / 4.0 / 102.0 * 100.0).abs() < 1e-9, "{atr}");
        // N = 2: only seconds 2..3.
        let atr2 = micro_atr_pct(&cs, Interval::S1, 2, 4_500);
        assert!((atr2 - 1.0 / 2.0 / 102.0 * 100.0).abs() < 1e-9, "{atr2}");
        assert_eq!(micro_atr_pct(&CandleSet::new(10, 0), Interval::S1, 4, 0), 0.0);
    }

    #[test]
    fn explosion_with_hysteresis() {
        let mut v = VolatilityTracker::new(VolatilityConfig { atr_periods: 3, ..VolatilityConfig::default() });
        let cs = CandleSet::new(300, 0);
        assert!(!v.update(&cs, 1_000, 0.0).explosion, "cold baseline: ratio 0, never an explosion");
        let calm = v.update(&cs, 2_000, 1.1);
        assert!(!calm.explosion && (calm.score - 1.1 / 3.0).abs() < 1e-12);
        let wild = v.update(&cs, 3_000, 3.5);
        assert!(wild.explosion && wild.score == 1.0);
        // Between exit and enter: stays on; below exit: off.
        assert!(v.update(&cs, 4_000, 2.5).explosion);
        assert!(!v.update(&cs, 5_000, 1.5).explosion);
        assert!(!v.update(&cs, 6_000, 2.5).explosion, "needs the enter ratio again");
        assert_eq!(v.update(&cs, 7_000, f64::NAN).ratio, 0.0);
    }
}
