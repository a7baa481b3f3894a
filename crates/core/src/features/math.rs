//! Small numeric helpers shared by the feature trackers. All pure and `f64`-based (analytics
//! only; never used for prices sent to the venue).

/// Clamps to [0, 1]; NaN maps to 0.
#[inline]
pub fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Clamps to [lo, hi]; NaN maps to `lo`.
#[inline]
pub fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_nan() {
        lo
    } else {
        x.clamp(lo, hi)
    }
}

/// `(a - b) / (a + b)` in [-1, 1]; 0 when both are zero (or the sum is not positive).
#[inline]
pub fn imbalance(a: f64, b: f64) -> f64 {
    let s = a + b;
    if s > 0.0 && s.is_finite() {
        clamp((a - b) / s, -1.0, 1.0)
    } else {
        0.0
    }
}

/// `a / b`, or `default` when `b` is not a positive finite number.
#[inline]
pub fn ratio_or(a: f64, b: f64, default: f64) -> f64 {
    if b > 0.0 && b.is_finite() && a.is_finite() {
        a / b
    } else {
        default
    }
}

/// Per-step weight of an EWMA whose half-life is `half_life` steps: `1 - 0.5^(1/half_life)`.
/// A half-life <= 0 gives weight 1 (no smoothing).
#[inline]
pub fn ewma_alpha(half_life: f64) -> f64 {
    if half_life > 0.0 && half_life.is_finite() {
        1.0 - 0.5f64.powf(1.0 / half_life)
    } else {
        1.0
    }
}

/// Multiplicative decay factor `0.5^(dt / half_life)` for `dt >= 0` (1 for `dt <= 0`; 0 when the
/// half-life is not positive).
#[inline]
pub fn decay(dt_ms: i64, half_life_ms: i64) -> f64 {
    if dt_ms <= 0 {
        1.0
    } else if half_life_ms <= 0 {
        0.0
    } else {
        0.5f64.powf(dt_ms as f64 / half_life_ms as f64)
    }
}

/// Percent change `(now / then - 1) * 100`; 0 when `then` is not positive.
#[inline]
pub fn pct_change(now: f64, then: f64) -> f64 {
    if then > 0.0 && now.is_finite() {
        (now / then - 1.0) * 100.0
    } else {
        0.0
    }
}

/// Median of `v` (reorders it): the middle value, or the mean of the two middle values of an
/// even count; `None` when empty.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// A bias-corrected EWMA (one sample per second): `estimate = m / w` with
/// `m ← m + α(x − m)`, `w ← w + α(1 − w)`, so early estimates are not pulled towards 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ewma {
    m: f64,
    w: f64,
}

impl Ewma {
    /// Adds a sample with weight `alpha`.
    pub fn push(&mut self, x: f64, alpha: f64) {
        self.m += alpha * (x - self.m);
        self.w += alpha * (1.0 - self.w);
    }
    /// `k` samples of 0 at once.
    pub fn push_zeros(&mut self, k: u32, alpha: f64) {
        let keep = (1.0 - alpha).powi(k.min(i32::MAX as u32) as i32);
        self.m *= keep;
        self.w = 1.0 - (1.0 - self.w) * keep;
    }
    /// Current estimate (0 before any sample).
    pub fn get(&self) -> f64 {
        if self.w > 0.0 {
            self.m / self.w
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(clamp01(1.5), 1.0);
        assert_eq!(clamp01(-0.5), 0.0);
        assert_eq!(clamp01(f64::NAN), 0.0);
        assert_eq!(imbalance(3.0, 1.0), 0.5);
        assert_eq!(imbalance(0.0, 0.0), 0.0);
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(ratio_or(1.0, 0.0, 7.0), 7.0);
        assert!((ewma_alpha(1.0) - 0.5).abs() < 1e-12);
        assert_eq!(ewma_alpha(0.0), 1.0);
        assert!((decay(1_000, 1_000) - 0.5).abs() < 1e-12);
        assert_eq!(decay(-5, 1_000), 1.0);
        assert!((pct_change(101.0, 100.0) - 1.0).abs() < 1e-9);
        assert_eq!(pct_change(1.0, 0.0), 0.0);
        // Bias-corrected EWMA: a constant series is its own average from the first sample.
        let mut e = Ewma::default();
        assert_eq!(e.get(), 0.0);
        e.push(4.0, 0.01);
        assert!((e.get() - 4.0).abs() < 1e-12);
        e.push(4.0, 0.01);
        assert!((e.get() - 4.0).abs() < 1e-12);
        // 69 zero samples at once equal 69 pushes of 0.
        let mut f = e;
        e.push_zeros(69, 0.01);
        for _ in 0..69 {
            f.push(0.0, 0.01);
        }
        assert!((e.get() - f.get()).abs() < 1e-9);
        // Weight on the two 4s: (1 − 0.99²)·0.99^69 of a total 1 − 0.99^71.
        let k = 0.99f64.powi(69);
        let want = 4.0 * (1.0 - 0.99f64.powi(2)) * k / (1.0 - 0.99f64.powi(71));
        assert!((e.get() - want).abs() < 1e-9, "{} {want}", e.get());
    }
}
