//! Flow and delta: aggressive (taker) buy vs sell volume over 1 s / 5 s / 30 s windows, streaks
//! and defence.
//!
//! * `delta_W = buy_W − sell_W` (base units) and `delta_ratio_W = delta_W / (buy_W + sell_W)`
//!   ∈ [-1, 1] over the pro-rata event-time window `W` (see [`super::window`]).
//! * `trade_streak`: signed count of consecutive trades with the same aggressor (+n buys, −n
//!   sells).
//! * `delta_streak_s`: signed count of consecutive completed seconds whose delta had the same
//!   sign (seconds without trades end a streak).
//! * **Defence** ∈ [0, 1]: aggression absorbed by passive liquidity without the price moving.
//!   Over 5 s, `bid_defence = max(0, −delta_ratio_5s) · min(1, vol_ratio) · max(0, 1 − fall_pct /
//!   defence_move_pct)` where `fall_pct = max(0, −r5)`; `ask_defence` mirrors it with buyers and a
//!   rise. High bid defence = sellers hit the bid hard and the bid held.
//!
//! **RPI trades** (`Trade::rpi`, Bybit's `"RPI": true`: the maker was a Retail Price Improvement
//! order, never shown in the public book) count here like any trade: the taker is real, so its
//! volume, the trade rate, the aggressor flow, the streaks and the defence (aggression absorbed
//! without the price moving, whoever absorbed it) include them. They are excluded only where
//! the *visible* book is judged: the wall tracker ([`super::walls`]) neither counts them as
//! volume eaten from a wall (absorption) nor as late trades that clear a pulled wall of spoofing,
//! because the liquidity they hit was never in the public book.

use crate::features::math::{clamp01, imbalance};
use crate::features::window::SecBucket;
use serde::{Deserialize, Serialize};

/// Flow settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// A 5 s move of this many percent against the aggression means no defence. > 0.
    pub defence_move_pct: f64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig { defence_move_pct: 0.1 }
    }
}

impl FlowConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if !(self.defence_move_pct.is_finite() && self.defence_move_pct > 0.0) {
            e.push(format!("{prefix}.defence_move_pct must be > 0, got {}", self.defence_move_pct));
        }
    }
}

/// Flow figures at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowFeatures {
    /// Delta over 1 s, base units.
    pub delta_1s: f64,
    /// Delta over 5 s, base units.
    pub delta_5s: f64,
    /// Delta over 30 s, base units.
    pub delta_30s: f64,
    /// Delta ratio over 1 s ∈ [-1, 1].
    pub delta_ratio_1s: f64,
    /// Delta ratio over 5 s ∈ [-1, 1].
    pub delta_ratio_5s: f64,
    /// Delta ratio over 30 s ∈ [-1, 1].
    pub delta_ratio_30s: f64,
    /// Taker buy volume over 5 s.
    pub buy_vol_5s: f64,
    /// Taker sell volume over 5 s.
    pub sell_vol_5s: f64,
    /// Bid defence ∈ [0, 1].
    pub bid_defence: f64,
    /// Ask defence ∈ [0, 1].
    pub ask_defence: f64,
}

impl FlowFeatures {
    /// From the 1 s / 5 s / 30 s windows, the 5 s return (percent) and the 5 s volume ratio.
    pub fn compute(
        w1: &SecBucket,
        w5: &SecBucket,
        w30: &SecBucket,
        ret_5s_pct: f64,
        vol_ratio: f64,
        cfg: &FlowConfig,
    ) -> Self {
        let dr5 = imbalance(w5.buy, w5.sell);
        let act = clamp01(vol_ratio);
        let m = cfg.defence_move_pct;
        FlowFeatures {
            delta_1s: w1.delta(),
            delta_5s: w5.delta(),
            delta_30s: w30.delta(),
            delta_ratio_1s: imbalance(w1.buy, w1.sell),
            delta_ratio_5s: dr5,
            delta_ratio_30s: imbalance(w30.buy, w30.sell),
            buy_vol_5s: w5.buy,
            sell_vol_5s: w5.sell,
            bid_defence: clamp01(-dr5) * act * clamp01(1.0 - (-ret_5s_pct).max(0.0) / m),
            ask_defence: clamp01(dr5) * act * clamp01(1.0 - ret_5s_pct.max(0.0) / m),
        }
    }
}

/// Trade and second streaks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Streaks {
    /// +n consecutive buy aggressors, −n sells.
    pub trade_streak: i64,
    /// +n consecutive seconds of positive delta, −n negative.
    pub delta_streak_s: i64,
    last_sec: Option<i64>,
}

impl Streaks {
    /// A trade with this aggressor (`true` = buy).
    pub fn on_trade(&mut self, buy: bool) {
        self.trade_streak = match (buy, self.trade_streak) {
            (true, s) if s > 0 => s.saturating_add(1),
            (true, _) => 1,
            (false, s) if s < 0 => s.saturating_sub(1),
            (false, _) => -1,
        };
    }

    /// A completed second with its bucket (`None` = no trade that second).
    pub fn on_completed_second(&mut self, sec: i64, bucket: Option<&SecBucket>) {
        if self.last_sec.is_some_and(|l| sec <= l) {
            return;
        }
        let gap = self.last_sec.is_some_and(|l| sec > l + 1);
        self.last_sec = Some(sec);
        let d = bucket.map(|b| b.delta()).unwrap_or(0.0);
        if gap || d == 0.0 {
            self.delta_streak_s = if d > 0.0 {
                1
            } else if d < 0.0 {
                -1
            } else {
                0
            };
            return;
        }
        self.delta_streak_s = match (d > 0.0, self.delta_streak_s) {
            (true, s) if s > 0 => s + 1,
            (true, _) => 1,
            (false, s) if s < 0 => s - 1,
            (false, _) => -1,
        };
    }

    /// Second index of the last completed second seen.
    pub fn last_completed(&self) -> Option<i64> {
        self.last_sec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::window::SecondRing;

    #[test]
    fn deltas_and_defence() {
        let mut r = SecondRing::new();
        for s in 0..30 {
            r.add_trade(s * 1000 + 500, 100.0, 2.0, true);
            r.add_trade(s * 1000 + 600, 100.0, 1.0, false);
            if s >= 25 {
                // Last 5 s: heavy selling.
                r.add_trade(s * 1000 + 700, 100.0, 9.0, false);
            }
        }
        let now = 30_000;
        let (w1, w5, w30) = (r.window(now, 1_000), r.window(now, 5_000), r.window(now, 30_000));
        let cfg = FlowConfig::default();
        // Price flat while sellers dominate: bid defended.
        let f = FlowFeatures::compute(&w1, &w5, &w30, 0.0, 2.0, &cfg);
        assert!((f.delta_1s - (2.0 - 10.0)).abs() < 1e-6, "{f:?}");
        assert!((f.delta_5s - 5.0 * (2.0 - 10.0)).abs() < 1e-6);
        assert!((f.delta_30s - (30.0 * 1.0 - 45.0)).abs() < 1e-6);
        assert!((f.delta_ratio_5s - (-8.0 / 12.0)).abs() < 1e-9);
        assert!((f.bid_defence - 8.0 / 12.0).abs() < 1e-9);
        assert_eq!(f.ask_defence, 0.0);
        // Same flow but the price fell 0.1 %: nothing defended.
        let g = FlowFeatures::compute(&w1, &w5, &w30, -0.1, 2.0, &cfg);
        assert_eq!(g.bid_defence, 0.0);
        // Half the move: half the defence; low activity scales it down.
        let h = FlowFeatures::compute(&w1, &w5, &w30, -0.05, 0.5, &cfg);
        assert!((h.bid_defence - 8.0 / 12.0 * 0.5 * 0.5).abs() < 1e-9);
    }

    #[test]
    fn streaks() {
        let mut s = Streaks::default();
        for b in [true, true, true] {
            s.on_trade(b);
        }
        assert_eq!(s.trade_streak, 3);
        s.on_trade(false);
        s.on_trade(false);
        assert_eq!(s.trade_streak, -2);
        let up = SecBucket { buy: 2.0, sell: 1.0, ..SecBucket::default() };
        let dn = SecBucket { buy: 0.0, sell: 1.0, ..SecBucket::default() };
        s.on_completed_second(1, Some(&up));
        s.on_completed_second(2, Some(&up));
        s.on_completed_second(2, Some(&dn)); // repeated second ignored
        assert_eq!(s.delta_streak_s, 2);
        s.on_completed_second(3, Some(&dn));
        assert_eq!(s.delta_streak_s, -1);
        s.on_completed_second(5, Some(&dn)); // gap restarts
        assert_eq!(s.delta_streak_s, -1);
        s.on_completed_second(6, None);
        assert_eq!(s.delta_streak_s, 0);
        assert_eq!(s.last_completed(), Some(6));
    }
}
