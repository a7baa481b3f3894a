//! Settings of wall and spoof detection (`[intel.walls]`), their defaults and validation; what
//! each one means is explained in the parent module.

use serde::{Deserialize, Serialize};

/// Wall / spoof detection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WallConfig {
    /// A candidate's size is >= `k` × the average of the other scanned levels. > 1.
    pub k: f64,
    /// … and >= `k_median` × the median size of the scanned levels of its side. >= 1.
    pub k_median: f64,
    /// Levels per side scanned for walls (best first). >= 3.
    pub scan_levels: usize,
    /// Minimum scanned levels on a side before walls are detected there. >= 3.
    pub min_levels: usize,
    /// Consecutive book updates a candidate must be seen in to count as a wall. >= 1.
    pub confirm_updates: u32,
    /// Maximum walls tracked per side (the first found, best price first, are kept).
    pub max_walls_per_side: usize,
    /// Minimum wall notional, USDT (0 = no minimum).
    pub min_notional: f64,
    /// A wall ends when the size removed without trades leaves less than this fraction of its
    /// peak. (0, 1].
    pub end_fraction: f64,
    /// Eaten volume >= this fraction of the lost size → ABSORBING. (0, 1].
    pub absorb_fraction: f64,
    /// A pull is SPOOFING only if the volume traded at the wall's price is at most this
    /// fraction of the lost size. [0, absorb_fraction].
    pub spoof_max_eaten_fraction: f64,
    /// Pulled at least this many ticks behind its side's touch (0 = at the touch counts; a
    /// wall the touch moved through is never SPOOFING) …
    pub spoof_min_distance_ticks: i64,
    /// … and within this many ticks of it → SPOOFING.
    pub spoof_near_ticks: i64,
    /// … or within this percent of the price (0.05 = 0.05 %; 0 = ticks only). Off by default:
    /// on fine-tick symbols a percentage spans many ticks and lets ordinary re-sizing of big
    /// levels several ticks away pass as spoofing.
    pub spoof_near_pct: f64,
    /// The touch must have come at least this many ticks closer to the wall (from the farthest
    /// distance seen within `spoof_approach_window_ms` before it ended) for a pull to be
    /// SPOOFING. >= 0.
    pub spoof_min_approach_ticks: i64,
    /// … and it must have covered at least this fraction of that distance: `d <= (1 −
    /// spoof_min_approach_fraction) × farthest`. [0, 1).
    pub spoof_min_approach_fraction: f64,
    /// How far back "approaching" looks, ms (the farthest distance is taken over the last
    /// half to whole window). 0 = the wall's whole life. >= 0.
    pub spoof_approach_window_ms: i64,
    /// How long an ended wall waits for late trades before a SPOOFING/CANCELLED verdict, ms.
    pub classify_grace_ms: i64,
    /// A wall pulled after resting less than this is a flicker (CANCELLED), not spoofing: a
    /// spoof must be seen long enough to mislead, ms.
    pub min_spoof_lifetime_ms: i64,
    /// … and it must have been shown within `spoof_shown_ticks` of the touch for this long in
    /// all, ms. A bluff is displayed near the price; on real books a big level the price sweeps
    /// onto from far away in a fast market is often pulled as it arrives (stale liquidity
    /// withdrawn), and that is not a bluff.
    pub spoof_min_shown_ms: i64,
    /// "Shown near the price" for `spoof_min_shown_ms`: within this many ticks of the touch.
    /// >= 0.
    pub spoof_shown_ticks: i64,
    /// A level of similar size this many ticks or fewer from an ended wall is a re-quote. >= 0
    /// (0 disables the re-quote rule).
    pub requote_ticks: i64,
    /// "Similar size" for re-quotes: `|qty − last| <= requote_size_tolerance × last`. [0, 1].
    pub requote_size_tolerance: f64,
    /// How long after a wall ended a re-quote is recognised, ms. >= 0.
    pub requote_window_ms: i64,
    /// Walls further than this percent from the mid add nothing to support/resistance.
    pub zone_pct: f64,
    /// Spoof score increment per SPOOFING verdict. (0, 1].
    pub spoof_increment: f64,
    /// Spoof score half-life, ms.
    pub spoof_half_life_ms: i64,
}

impl Default for WallConfig {
    fn default() -> Self {
        WallConfig {
            k: 5.0,
            k_median: 12.0,
            scan_levels: 20,
            min_levels: 5,
            confirm_updates: 3,
            max_walls_per_side: 8,
            min_notional: 0.0,
            end_fraction: 0.25,
            absorb_fraction: 0.5,
            spoof_max_eaten_fraction: 0.1,
            spoof_min_distance_ticks: 0,
            spoof_near_ticks: 4,
            spoof_near_pct: 0.0,
            spoof_min_approach_ticks: 2,
            spoof_min_approach_fraction: 0.5,
            spoof_approach_window_ms: 2_000,
            classify_grace_ms: 300,
            min_spoof_lifetime_ms: 500,
            spoof_min_shown_ms: 1_000,
            spoof_shown_ticks: 8,
            requote_ticks: 2,
            requote_size_tolerance: 0.2,
            requote_window_ms: 300,
            zone_pct: 1.0,
            spoof_increment: 0.25,
            spoof_half_life_ms: 60_000,
        }
    }
}

impl WallConfig {
    /// Problems with the values, as messages prefixed with `prefix`.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if self.spoof_min_shown_ms < 0 || self.spoof_shown_ticks < 0 {
            e.push(format!("{prefix}: spoof_min_shown_ms and spoof_shown_ticks must be >= 0"));
        }
        if !(self.k.is_finite() && self.k > 1.0) {
            e.push(format!("{prefix}.k must be > 1, got {}", self.k));
        }
        if !(self.k_median.is_finite() && self.k_median >= 1.0) {
            e.push(format!("{prefix}.k_median must be >= 1, got {}", self.k_median));
        }
        if self.scan_levels < 3 || self.scan_levels > 1000 {
            e.push(format!("{prefix}.scan_levels must be in [3, 1000], got {}", self.scan_levels));
        }
        if self.min_levels < 3 {
            e.push(format!("{prefix}.min_levels must be >= 3, got {}", self.min_levels));
        }
        if self.confirm_updates == 0 {
            e.push(format!("{prefix}.confirm_updates must be >= 1"));
        }
        if self.max_walls_per_side == 0 || self.max_walls_per_side > 64 {
            e.push(format!("{prefix}.max_walls_per_side must be in [1, 64], got {}", self.max_walls_per_side));
        }
        for (n, v) in [("end_fraction", self.end_fraction), ("absorb_fraction", self.absorb_fraction)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                e.push(format!("{prefix}.{n} must be in (0, 1], got {v}"));
            }
        }
        let f = self.spoof_max_eaten_fraction;
        if !(f.is_finite() && f >= 0.0 && f <= self.absorb_fraction) {
            e.push(format!("{prefix}.spoof_max_eaten_fraction must be in [0, absorb_fraction], got {f}"));
        }
        if !(self.spoof_increment.is_finite() && self.spoof_increment > 0.0 && self.spoof_increment <= 1.0) {
            e.push(format!("{prefix}.spoof_increment must be in (0, 1], got {}", self.spoof_increment));
        }
        if self.spoof_near_ticks < 0 || self.classify_grace_ms < 0 || self.spoof_half_life_ms <= 0 {
            e.push(format!("{prefix}: spoof_near_ticks and classify_grace_ms must be >= 0 and spoof_half_life_ms > 0"));
        }
        if self.spoof_min_distance_ticks < 0
            || self.spoof_min_approach_ticks < 0
            || self.spoof_approach_window_ms < 0
            || self.requote_ticks < 0
            || self.requote_window_ms < 0
        {
            e.push(format!(
                "{prefix}: spoof_min_distance_ticks, spoof_min_approach_ticks, spoof_approach_window_ms, \
                 requote_ticks and requote_window_ms must be >= 0"
            ));
        }
        let f = self.spoof_min_approach_fraction;
        if !(f.is_finite() && (0.0..1.0).contains(&f)) {
            e.push(format!("{prefix}.spoof_min_approach_fraction must be in [0, 1), got {f}"));
        }
        let t = self.requote_size_tolerance;
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            e.push(format!("{prefix}.requote_size_tolerance must be in [0, 1], got {t}"));
        }
        for (n, v) in [("min_notional", self.min_notional), ("spoof_near_pct", self.spoof_near_pct)] {
            if !(v.is_finite() && v >= 0.0) {
                e.push(format!("{prefix}.{n} must be >= 0, got {v}"));
            }
        }
        if !(self.zone_pct.is_finite() && self.zone_pct > 0.0) {
            e.push(format!("{prefix}.zone_pct must be > 0, got {}", self.zone_pct));
        }
    }
}
