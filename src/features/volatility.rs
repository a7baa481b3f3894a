//! Volatility: micro ATR on 1 s and 3 s candles, VolatilityScore against the symbol's own
//! baseline, ExplosionFlag.
//!
//! * `ATR_L` (percent of price) = `Σ TR / N / last_close × 100` over the last `N = atr_periods`
//!   complete intervals of length `L` before the one containing `now`, where
//!   `TR = max(high − low, |high − prev_close|, |low − prev_close|)`. Intervals without trades
//!   are flat candles (TR 0), as the candle module prescribes, so a quiet market has a small ATR.
//! * `volatility_ratio = ATR_1s / baseline`, the baseline being a bias-corrected EWMA of `ATR_1s`
//!   (one sample per second, half-life `baseline_half_life_s`), sampled only once `atr_periods`
//!   1 s candles have closed (an ATR over fewer candles would understate it).
//! * `VolatilityScore = clamp01(volatility_ratio / explosion_ratio)` ∈ [0, 1].
//! * `ExplosionFlag` turns on at `volatility_ratio >= explosion_ratio` and off below
//!   `explosion_exit_ratio` (hysteresis); never during the first `warmup_s` seconds.

use crate::features::math::{clamp01, ewma_alpha, Ewma};
use crate::market::candles::{CandleSet, Interval};
use serde::{Deserialize, Serialize};

/// Volatility settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolatilityConfig {
    /// Candles per ATR. >= 1.
    pub atr_periods: usize,
    /// Baseline half-life, seconds. > 0.
    pub baseline_half_life_s: f64,
    /// Ratio at which the flag turns on (score 1). > 1.
    pub explosion_ratio: f64,
    /// Ratio below which it turns off. (0, explosion_ratio].
    pub explosion_exit_ratio: f64,
    /// Seconds of baseline before the flag may fire.
    pub warmup_s: u32,
}

impl Default for VolatilityConfig {
    fn default() -> Self {
        VolatilityConfig {
            atr_periods: 14,
            baseline_half_life_s: 600.0,
            explosion_ratio: 3.0,
            explosion_exit_ratio: 2.0,
            warmup_s: 60,
        }
    }
}

impl VolatilityConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if self.atr_periods == 0 || self.atr_periods > 200 {
            e.push(format!("{prefix}.atr_periods must be in [1, 200], got {}", self.atr_periods));
        }
        if !(self.baseline_half_life_s.is_finite() && self.baseline_half_life_s > 0.0) {
            e.push(format!("{prefix}.baseline_half_life_s must be > 0, got {}", self.baseline_half_life_s));
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
    /// ATR_1s / baseline (1 = normal for this symbol).
    pub ratio: f64,
    /// VolatilityScore ∈ [0, 1].
    pub score: f64,
    /// ExplosionFlag.
    pub explosion: bool,
}

/// ATR baseline and explosion hysteresis.
#[derive(Debug, Clone)]
pub struct VolatilityTracker {
    cfg: VolatilityConfig,
    baseline: Ewma,
    samples: u32,
    last_sec: Option<i64>,
    out: VolatilityFeatures,
}

impl VolatilityTracker {
    /// New tracker.
    pub fn new(cfg: VolatilityConfig) -> Self {
        VolatilityTracker {
            cfg,
            baseline: Ewma::default(),
            samples: 0,
            last_sec: None,
            out: VolatilityFeatures::default(),
        }
    }

    /// Replaces the settings.
    pub fn set_config(&mut self, cfg: VolatilityConfig) {
        self.cfg = cfg;
    }

    /// Recomputes the ATRs at `now_ms`; the baseline takes one sample per new second.
    /// Cost O(atr_periods).
    pub fn update(&mut self, candles: &CandleSet, now_ms: i64) -> VolatilityFeatures {
        let n = self.cfg.atr_periods;
        let sec = now_ms.div_euclid(1000);
        let a1 = micro_atr_pct(candles, Interval::S1, n, now_ms);
        let a3 = micro_atr_pct(candles, Interval::S3, n, now_ms);
        if self.last_sec.is_none_or(|l| sec > l) && candles.closed_len(Interval::S1) >= n {
            self.last_sec = Some(sec);
            self.baseline.push(a1, ewma_alpha(self.cfg.baseline_half_life_s));
            self.samples = self.samples.saturating_add(1);
        }
        let base = self.baseline.get();
        let ratio = if base > 0.0 { a1 / base } else { 0.0 };
        let warm = self.samples >= self.cfg.warmup_s;
        let explosion = warm
            && if self.out.explosion {
                ratio >= self.cfg.explosion_exit_ratio
            } else {
                ratio >= self.cfg.explosion_ratio
            };
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

    /// Baseline ATR_1s, percent.
    pub fn baseline(&self) -> f64 {
        self.baseline.get()
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
        let cfg = VolatilityConfig { atr_periods: 3, warmup_s: 5, ..VolatilityConfig::default() };
        let mut v = VolatilityTracker::new(cfg);
        let mut cs = CandleSet::new(300, 0);
        let mut px = 100.0;
        let mut s = 0;
        // Calm: alternating ±0.01.
        for _ in 0..30 {
            px += if s % 2 == 0 { 0.01 } else { -0.01 };
            trade(&mut cs, s * 1000 + 10, px);
            cs.on_time(s * 1000 + 1000);
            v.update(&cs, s * 1000 + 1000);
            s += 1;
        }
        let calm = v.current();
        assert!(!calm.explosion && (calm.ratio - 1.0).abs() < 0.2, "{calm:?}");
        // Wild: ±0.2 per second → ratio ≈ 20.
        for _ in 0..3 {
            px += if s % 2 == 0 { 0.2 } else { -0.2 };
            trade(&mut cs, s * 1000 + 10, px);
            cs.on_time(s * 1000 + 1000);
            v.update(&cs, s * 1000 + 1000);
            s += 1;
        }
        let wild = v.current();
        assert!(wild.explosion && wild.ratio > 3.0 && wild.score == 1.0, "{wild:?}");
        assert!(wild.atr_3s_pct > 0.0);
    }
}
