//! Walls and spoofing.
//!
//! A **wall** is a level among the best [`WallConfig::scan_levels`] of a side whose size is at
//! least `k` times the average size of the *other* scanned levels of that side
//! (`qty >= k · (Σ qty − qty) / (n − 1)`, needs `n >= min_levels`). A wall's identity is
//! `(side, price tick)`; it is tracked across book updates until it **ends**: its level
//! disappears while inside the scanned range, or the size removed *without trades*
//! (`peak − qty − eaten`) exceeds `(1 − end_fraction) × peak` (pulled down to a remnant). A wall
//! being eaten keeps being tracked however small it gets.
//! A wall that merely drifts deeper than the scanned range (price moved away) is forgotten
//! without a verdict.
//!
//! Trades are matched against walls in event order: a taker **sell** at or below a bid wall's
//! price (a taker **buy** at or above an ask wall's price) counts as volume *eaten* from it.
//! An ended wall waits up to `classify_grace_ms` for late trades (the trade and book streams are
//! separate, so the prints that ate a wall may arrive just after the book update that removed
//! it), then is classified with `lost = peak − remaining`:
//!
//! * **ABSORBING** (a real wall) when `eaten >= absorb_fraction × lost` (decided as soon as it
//!   holds);
//! * **SPOOFING** otherwise, when it was pulled near the touch: distance from its own side's
//!   best price `<= spoof_near_ticks` ticks or `<= spoof_near_pct` % of the price (the smaller of
//!   its last-seen distance and the distance at removal; negative when the touch moved through
//!   it);
//! * **CANCELLED** otherwise (a far wall withdrawn: neutral, no event).
//!
//! Scores (all in [0, 1]):
//! * `spoof_bid`, `spoof_ask`: decaying scores, `s ← s + spoof_increment · (1 − s)` on each
//!   SPOOFING verdict of that side, halved every `spoof_half_life_ms` of event time.
//!   `SpoofingScore = 1 − (1 − spoof_bid)(1 − spoof_ask)`.
//! * `WallSupportScore` (bid walls), `WallResistanceScore` (ask walls):
//!   `(1 − Π_i (1 − s_i)) · (1 − spoof_side)` with `s_i = min(1, ratio_i / (2k)) · max(0, 1 −
//!   dist_mid_pct_i / zone_pct)`, where `ratio_i` is the wall's size over the local average and
//!   `dist_mid_pct_i` its distance from the mid in percent.

use crate::domain::{Price, Qty, Side, TimeMs};
use crate::features::math::{clamp01, decay};
use crate::market::data::{Level, Trade};
use crate::market::orderbook::OrderBook;
use serde::{Deserialize, Serialize};

/// Wall / spoof detection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WallConfig {
    /// A level is a wall when its size >= `k` × the average of the other scanned levels. > 1.
    pub k: f64,
    /// Levels per side scanned for walls (best first). >= 3.
    pub scan_levels: usize,
    /// Minimum scanned levels on a side before walls are detected there. >= 3.
    pub min_levels: usize,
    /// Maximum walls tracked per side (the first found, best price first, are kept).
    pub max_walls_per_side: usize,
    /// Minimum wall notional, USDT (0 = no minimum).
    pub min_notional: f64,
    /// A wall ends when the size removed without trades leaves less than this fraction of its
    /// peak. (0, 1].
    pub end_fraction: f64,
    /// Eaten volume >= this fraction of the lost size → ABSORBING. (0, 1].
    pub absorb_fraction: f64,
    /// Pulled within this many ticks of its side's touch → SPOOFING.
    pub spoof_near_ticks: i64,
    /// … or within this percent of the price (0.05 = 0.05 %).
    pub spoof_near_pct: f64,
    /// How long an ended wall waits for late trades before a SPOOFING/CANCELLED verdict, ms.
    pub classify_grace_ms: i64,
    /// A wall pulled after resting less than this is a flicker (CANCELLED), not spoofing: a
    /// spoof must be seen long enough to mislead. Calibrated on the simulator's calm books, where
    /// random large levels come and go within ~1.2 s, ms.
    pub min_spoof_lifetime_ms: i64,
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
            scan_levels: 20,
            min_levels: 5,
            max_walls_per_side: 8,
            min_notional: 0.0,
            end_fraction: 0.25,
            absorb_fraction: 0.5,
            spoof_near_ticks: 5,
            spoof_near_pct: 0.05,
            classify_grace_ms: 300,
            min_spoof_lifetime_ms: 1_500,
            zone_pct: 1.0,
            spoof_increment: 0.35,
            spoof_half_life_ms: 30_000,
        }
    }
}

impl WallConfig {
    /// Problems with the values, as messages prefixed with `prefix`.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if !(self.k.is_finite() && self.k > 1.0) {
            e.push(format!("{prefix}.k must be > 1, got {}", self.k));
        }
        if self.scan_levels < 3 || self.scan_levels > 1000 {
            e.push(format!("{prefix}.scan_levels must be in [3, 1000], got {}", self.scan_levels));
        }
        if self.min_levels < 3 {
            e.push(format!("{prefix}.min_levels must be >= 3, got {}", self.min_levels));
        }
        if self.max_walls_per_side == 0 || self.max_walls_per_side > 64 {
            e.push(format!("{prefix}.max_walls_per_side must be in [1, 64], got {}", self.max_walls_per_side));
        }
        for (n, v) in [("end_fraction", self.end_fraction), ("absorb_fraction", self.absorb_fraction)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                e.push(format!("{prefix}.{n} must be in (0, 1], got {v}"));
            }
        }
        if !(self.spoof_increment.is_finite() && self.spoof_increment > 0.0 && self.spoof_increment <= 1.0) {
            e.push(format!("{prefix}.spoof_increment must be in (0, 1], got {}", self.spoof_increment));
        }
        if self.spoof_near_ticks < 0 || self.classify_grace_ms < 0 || self.spoof_half_life_ms <= 0 {
            e.push(format!("{prefix}: spoof_near_ticks and classify_grace_ms must be >= 0 and spoof_half_life_ms > 0"));
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

/// Verdict on a wall that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WallOutcome {
    /// Eaten by trades at or through its price: a real wall.
    Absorbing,
    /// Pulled or shrunk near the touch without being traded.
    Spoofing,
}

/// A classified wall (spoof events are the `Spoofing` ones).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WallEvent {
    /// Verdict.
    pub outcome: WallOutcome,
    /// Book side of the wall (`Buy` = bid wall, `Sell` = ask wall).
    pub side: Side,
    /// Wall price.
    pub price: Price,
    /// Largest size seen.
    pub size: Qty,
    /// Size left when it ended (0 when the level disappeared).
    pub remaining: Qty,
    /// Taker volume traded at or through its price while tracked (and during the grace).
    pub eaten: Qty,
    /// From first seen to the update that ended it, ms.
    pub lifetime_ms: i64,
    /// Ticks from its side's touch when it ended (negative: the touch moved through it).
    pub distance_ticks: i64,
    /// Event time of the verdict.
    pub ts_ms: TimeMs,
}

#[derive(Debug, Clone, Copy)]
struct Wall {
    side: Side,
    ticks: i64,
    price: Price,
    first_seen_ms: TimeMs,
    peak: i64,
    last: i64,
    eaten: i64,
    ratio: f64,
    dist_ticks: i64,
    dist_pct: f64,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    wall: Wall,
    remaining: i64,
    ended_ms: TimeMs,
    dist_ticks: i64,
    dist_pct: f64,
}

/// A decaying score in [0, 1].
#[derive(Debug, Clone, Copy, Default)]
struct DecayScore {
    value: f64,
    at_ms: TimeMs,
}

impl DecayScore {
    fn get(&self, now: TimeMs, half_life_ms: i64) -> f64 {
        self.value * decay(now - self.at_ms, half_life_ms)
    }
    fn bump(&mut self, now: TimeMs, inc: f64, half_life_ms: i64) {
        let v = self.get(now, half_life_ms);
        self.value = clamp01(v + inc * (1.0 - v));
        self.at_ms = now.max(self.at_ms);
    }
}

/// Wall scores at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WallScores {
    /// WallSupportScore in [0, 1].
    pub support: f64,
    /// WallResistanceScore in [0, 1].
    pub resistance: f64,
    /// SpoofingScore in [0, 1].
    pub spoofing: f64,
    /// Spoof score of the bid side in [0, 1].
    pub spoof_bid: f64,
    /// Spoof score of the ask side in [0, 1].
    pub spoof_ask: f64,
    /// Active bid walls.
    pub bid_walls: u32,
    /// Active ask walls.
    pub ask_walls: u32,
    /// Price of the nearest active bid wall (0 = none).
    pub bid_wall_price: f64,
    /// Price of the nearest active ask wall (0 = none).
    pub ask_wall_price: f64,
}

/// Tracks walls across book updates and trades and classifies them when they end.
#[derive(Debug, Clone)]
pub struct WallTracker {
    cfg: WallConfig,
    tick: Price,
    walls: Vec<Wall>,
    pending: Vec<Pending>,
    scan: Vec<Level>,
    spoof_bid: DecayScore,
    spoof_ask: DecayScore,
    raw_support: f64,
    raw_resistance: f64,
    absorbed_total: u64,
    spoofed_total: u64,
    cancelled_total: u64,
}

/// Distance in ticks from a side's best price to a wall (positive = behind the touch).
#[inline]
fn dist_from_touch(side: Side, best_ticks: i64, wall_ticks: i64) -> i64 {
    match side {
        Side::Buy => best_ticks - wall_ticks,
        Side::Sell => wall_ticks - best_ticks,
    }
}

impl WallTracker {
    /// New tracker.
    pub fn new(cfg: WallConfig) -> Self {
        let cap = cfg.max_walls_per_side * 2;
        WallTracker {
            scan: Vec::with_capacity(cfg.scan_levels),
            cfg,
            tick: Price::ZERO,
            walls: Vec::with_capacity(cap),
            pending: Vec::with_capacity(cap),
            spoof_bid: DecayScore::default(),
            spoof_ask: DecayScore::default(),
            raw_support: 0.0,
            raw_resistance: 0.0,
            absorbed_total: 0,
            spoofed_total: 0,
            cancelled_total: 0,
        }
    }

    /// Replaces the settings (tracked walls are kept).
    pub fn set_config(&mut self, cfg: WallConfig) {
        self.cfg = cfg;
    }

    /// Forgets every wall without a verdict (book invalid, resync, tick change).
    pub fn reset(&mut self) {
        self.walls.clear();
        self.pending.clear();
        self.raw_support = 0.0;
        self.raw_resistance = 0.0;
    }

    /// Verdict counters: (absorbing, spoofing, cancelled).
    pub fn totals(&self) -> (u64, u64, u64) {
        (self.absorbed_total, self.spoofed_total, self.cancelled_total)
    }

    /// Active walls on a side.
    pub fn active(&self, side: Side) -> usize {
        self.walls.iter().filter(|w| w.side == side).count()
    }

    /// Applies a book state (after the update was applied) and returns the verdicts due.
    /// Cost O(scan_levels + walls).
    pub fn on_book(&mut self, book: &OrderBook, now: TimeMs) -> Vec<WallEvent> {
        let mut out = self.finalize_due(now);
        if !book.is_valid() {
            self.reset();
            return out;
        }
        if book.tick_size() != self.tick {
            self.reset();
            self.tick = book.tick_size();
        }
        let Some(mid) = book.mid_f64() else {
            self.reset();
            return out;
        };
        for side in [Side::Buy, Side::Sell] {
            self.scan_side(book, side, mid, now);
        }
        self.recompute_raw(mid);
        // Verdicts that are already certain (eaten before the level vanished).
        out.extend(self.finalize_due(now));
        out
    }

    fn scan_side(&mut self, book: &OrderBook, side: Side, mid: f64, now: TimeMs) {
        let tick = self.tick;
        let mut scan = std::mem::take(&mut self.scan);
        scan.clear();
        scan.extend(book.top_n(side, self.cfg.scan_levels));
        let Some(best) = scan.first().map(|l| l.price.to_ticks(tick)) else {
            self.walls.retain(|w| w.side != side);
            self.scan = scan;
            return;
        };
        let deepest = scan.last().map(|l| l.price.to_ticks(tick)).unwrap_or(best);
        let whole_side = scan.len() < self.cfg.scan_levels;
        let n = scan.len();
        let total: f64 = scan.iter().map(|l| l.qty.to_f64()).sum();
        let local_avg = |q: f64| if n > 1 { (total - q) / (n - 1) as f64 } else { 0.0 };
        let deepest_dist = dist_from_touch(side, best, deepest);

        // Update tracked walls of this side.
        let mut i = 0;
        while i < self.walls.len() {
            let w = self.walls[i];
            if w.side != side {
                i += 1;
                continue;
            }
            let dist = dist_from_touch(side, best, w.ticks);
            let dist_pct = (w.price.to_f64() - price_of(&scan, 0)).abs() / mid.max(f64::MIN_POSITIVE) * 100.0;
            let found = scan.iter().find(|l| l.price.to_ticks(tick) == w.ticks).map(|l| l.qty.raw());
            let remaining = match found {
                Some(q)
                    if ((w.peak - q).saturating_sub(w.eaten) as f64)
                        <= (1.0 - self.cfg.end_fraction) * w.peak as f64 =>
                {
                    let ww = &mut self.walls[i];
                    ww.last = q;
                    ww.peak = ww.peak.max(q);
                    ww.dist_ticks = dist;
                    ww.dist_pct = dist_pct;
                    let qf = Qty::from_raw(q).to_f64();
                    let avg = local_avg(qf);
                    ww.ratio = if avg > 0.0 { qf / avg } else { self.cfg.k };
                    i += 1;
                    continue;
                }
                Some(q) => Some(q),
                None if whole_side || dist <= deepest_dist => Some(0),
                None => None,
            };
            self.walls.swap_remove(i);
            if let Some(rem) = remaining {
                let near_dist = dist.min(w.dist_ticks);
                let near_pct = if dist < w.dist_ticks { dist_pct } else { w.dist_pct };
                self.push_pending(Pending {
                    wall: w,
                    remaining: rem,
                    ended_ms: now,
                    dist_ticks: near_dist,
                    dist_pct: near_pct,
                });
            }
        }

        // New walls.
        if n >= self.cfg.min_levels {
            let mut count = self.walls.iter().filter(|w| w.side == side).count();
            for l in &scan {
                if count >= self.cfg.max_walls_per_side {
                    break;
                }
                let q = l.qty.to_f64();
                let avg = local_avg(q);
                if avg <= 0.0 || q < self.cfg.k * avg || l.price.to_f64() * q < self.cfg.min_notional {
                    continue;
                }
                let ticks = l.price.to_ticks(tick);
                if self.walls.iter().any(|w| w.side == side && w.ticks == ticks)
                    || self.pending.iter().any(|p| p.wall.side == side && p.wall.ticks == ticks)
                {
                    continue;
                }
                let dist = dist_from_touch(side, best, ticks);
                self.walls.push(Wall {
                    side,
                    ticks,
                    price: l.price,
                    first_seen_ms: now,
                    peak: l.qty.raw(),
                    last: l.qty.raw(),
                    eaten: 0,
                    ratio: q / avg,
                    dist_ticks: dist,
                    dist_pct: (l.price.to_f64() - price_of(&scan, 0)).abs() / mid.max(f64::MIN_POSITIVE) * 100.0,
                });
                count += 1;
            }
        }
        self.scan = scan;
    }

    fn push_pending(&mut self, p: Pending) {
        // Bounded: the oldest pending verdict is dropped (rare: only under extreme churn).
        if self.pending.len() >= self.cfg.max_walls_per_side * 4 {
            self.pending.remove(0);
            self.cancelled_total += 1;
        }
        self.pending.push(p);
    }

    fn recompute_raw(&mut self, mid: f64) {
        let (mut keep_b, mut keep_a) = (1.0f64, 1.0f64);
        for w in &self.walls {
            let dist_mid_pct = (w.price.to_f64() - mid).abs() / mid * 100.0;
            let s = (w.ratio / (2.0 * self.cfg.k)).min(1.0) * clamp01(1.0 - dist_mid_pct / self.cfg.zone_pct);
            match w.side {
                Side::Buy => keep_b *= 1.0 - s,
                Side::Sell => keep_a *= 1.0 - s,
            }
        }
        self.raw_support = clamp01(1.0 - keep_b);
        self.raw_resistance = clamp01(1.0 - keep_a);
    }

    /// Matches trades against tracked and ended walls and returns the verdicts due.
    /// Cost O(trades × walls).
    pub fn on_trades(&mut self, trades: &[Trade], now: TimeMs) -> Vec<WallEvent> {
        for t in trades {
            let (p, q) = (t.price.raw(), t.qty.raw());
            if q <= 0 {
                continue;
            }
            let hits = |side: Side, wp: i64| match (side, t.aggressor) {
                (Side::Buy, Side::Sell) => p <= wp,
                (Side::Sell, Side::Buy) => p >= wp,
                _ => false,
            };
            for w in &mut self.walls {
                if hits(w.side, w.price.raw()) {
                    w.eaten = w.eaten.saturating_add(q);
                }
            }
            for pd in &mut self.pending {
                if hits(pd.wall.side, pd.wall.price.raw()) {
                    pd.wall.eaten = pd.wall.eaten.saturating_add(q);
                }
            }
        }
        self.finalize_due(now)
    }

    /// Issues verdicts: ABSORBING as soon as it holds, the others after the grace period.
    /// (Also call it on a timer so verdicts are not held back by a quiet symbol.)
    pub fn finalize_due(&mut self, now: TimeMs) -> Vec<WallEvent> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let pd = self.pending[i];
            let lost = (pd.wall.peak - pd.remaining).max(0);
            let absorbed = pd.wall.eaten as f64 >= self.cfg.absorb_fraction * lost as f64;
            let due = now >= pd.ended_ms.saturating_add(self.cfg.classify_grace_ms);
            if !absorbed && !due {
                i += 1;
                continue;
            }
            self.pending.remove(i);
            let lived = pd.ended_ms - pd.wall.first_seen_ms >= self.cfg.min_spoof_lifetime_ms;
            let near = lived && (pd.dist_ticks <= self.cfg.spoof_near_ticks || pd.dist_pct <= self.cfg.spoof_near_pct);
            let outcome = if absorbed {
                self.absorbed_total += 1;
                WallOutcome::Absorbing
            } else if near {
                self.spoofed_total += 1;
                let hl = self.cfg.spoof_half_life_ms;
                match pd.wall.side {
                    Side::Buy => self.spoof_bid.bump(now, self.cfg.spoof_increment, hl),
                    Side::Sell => self.spoof_ask.bump(now, self.cfg.spoof_increment, hl),
                }
                WallOutcome::Spoofing
            } else {
                self.cancelled_total += 1;
                continue;
            };
            out.push(WallEvent {
                outcome,
                side: pd.wall.side,
                price: pd.wall.price,
                size: Qty::from_raw(pd.wall.peak),
                remaining: Qty::from_raw(pd.remaining),
                eaten: Qty::from_raw(pd.wall.eaten),
                lifetime_ms: (pd.ended_ms - pd.wall.first_seen_ms).max(0),
                distance_ticks: pd.dist_ticks,
                ts_ms: now,
            });
        }
        out
    }

    /// Scores at `now` (spoof scores decayed to `now`).
    pub fn scores(&self, now: TimeMs) -> WallScores {
        let hl = self.cfg.spoof_half_life_ms;
        let sb = self.spoof_bid.get(now, hl);
        let sa = self.spoof_ask.get(now, hl);
        let nearest = |side: Side| {
            self.walls
                .iter()
                .filter(|w| w.side == side)
                .min_by_key(|w| w.dist_ticks)
                .map(|w| w.price.to_f64())
                .unwrap_or(0.0)
        };
        WallScores {
            support: clamp01(self.raw_support * (1.0 - sb)),
            resistance: clamp01(self.raw_resistance * (1.0 - sa)),
            spoofing: clamp01(1.0 - (1.0 - sb) * (1.0 - sa)),
            spoof_bid: sb,
            spoof_ask: sa,
            bid_walls: self.active(Side::Buy) as u32,
            ask_walls: self.active(Side::Sell) as u32,
            bid_wall_price: nearest(Side::Buy),
            ask_wall_price: nearest(Side::Sell),
        }
    }
}

#[inline]
fn price_of(scan: &[Level], i: usize) -> f64 {
    scan.get(i).map(|l| l.price.to_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Symbol;
    use crate::market::data::{BookAction, BookUpdate};

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    /// Book with tick 1: bids from `bid` down, asks from `bid + 1` up, 1 unit each, with
    /// optional overrides (price → size).
    struct Bk {
        book: OrderBook,
        u: u64,
    }
    impl Bk {
        fn new() -> Self {
            Bk { book: OrderBook::new(p("1"), 50).unwrap(), u: 0 }
        }
        fn set(&mut self, best_bid: i64, extra: &[(i64, f64)]) -> &OrderBook {
            let lvl = |px: i64| {
                let q = extra.iter().find(|e| e.0 == px).map(|e| e.1).unwrap_or(1.0);
                Level { price: Price::from_raw(px * 100_000_000), qty: Qty::from_f64(q) }
            };
            let bids = (0..30).map(|i| lvl(best_bid - i)).filter(|l| !l.qty.is_zero()).collect();
            let asks = (1..31).map(|i| lvl(best_bid + i)).filter(|l| !l.qty.is_zero()).collect();
            self.u += 1;
            let upd = BookUpdate {
                symbol: Symbol::new("X"),
                action: BookAction::Snapshot,
                depth: 50,
                bids,
                asks,
                update_id: self.u,
                seq: self.u,
                cts_ms: None,
            };
            self.book.apply(&upd).unwrap();
            &self.book
        }
    }
    fn trade(px: i64, qty: f64, aggressor: Side) -> Trade {
        Trade {
            ts_ms: 0,
            price: Price::from_raw(px * 100_000_000),
            qty: Qty::from_f64(qty),
            aggressor,
            id: String::new(),
            block_trade: false,
        }
    }
    /// Collects every verdict of a test.
    struct Out(Vec<WallEvent>);
    impl Out {
        fn extend(&mut self, v: Vec<WallEvent>) {
            self.0.extend(v);
        }
    }
    fn walls(out: &Out) -> Vec<WallEvent> {
        out.0.clone()
    }

    #[test]
    fn detects_wall_and_support() {
        let mut bk = Bk::new();
        let mut wt = WallTracker::new(WallConfig { min_spoof_lifetime_ms: 0, ..WallConfig::default() });
        let mut out = Out(Vec::new());
        out.extend(wt.on_book(bk.set(1000, &[(995, 20.0)]), 0));
        assert_eq!(wt.active(Side::Buy), 1);
        assert_eq!(wt.active(Side::Sell), 0);
        let s = wt.scores(0);
        // ratio 20 → strength 1; 0.55 % from the mid (1000.5) → proximity 0.45.
        let want = 1.0 - (1000.5 - 995.0) / 1000.5 * 100.0;
        assert!((s.support - want).abs() < 1e-9, "{s:?}");
        assert_eq!(s.resistance, 0.0);
        assert_eq!(s.bid_wall_price, 995.0);
        // 4 units is below k × average (5 × ~1): not a wall.
        let mut wt2 = WallTracker::new(WallConfig { min_spoof_lifetime_ms: 0, ..WallConfig::default() });
        out.extend(wt2.on_book(bk.set(1000, &[(995, 4.0)]), 0));
        assert_eq!(wt2.active(Side::Buy), 0);
        assert!(out.0.is_empty());
    }

    #[test]
    fn a_wall_that_flickers_briefly_is_not_spoofing() {
        // Same pull as below, but with the default minimum lifetime: 400 ms is a flicker.
        let mut bk = Bk::new();
        let mut wt = WallTracker::new(WallConfig::default());
        let mut out = Out(Vec::new());
        out.extend(wt.on_book(bk.set(1000, &[(990, 30.0)]), 0));
        for (i, bb) in [998, 996, 994].iter().enumerate() {
            out.extend(wt.on_book(bk.set(*bb, &[(990, 30.0)]), 100 * (i as i64 + 1)));
        }
        out.extend(wt.on_book(bk.set(993, &[(990, 0.0)]), 400));
        out.extend(wt.on_book(bk.set(993, &[]), 1_000));
        out.extend(wt.finalize_due(2_000));
        assert!(walls(&out).is_empty(), "{:?}", walls(&out));
        assert_eq!(wt.scores(2_000).spoofing, 0.0);
    }

    #[test]
    fn wall_pulled_three_ticks_before_touch_is_spoofing() {
        let mut bk = Bk::new();
        let mut wt = WallTracker::new(WallConfig { min_spoof_lifetime_ms: 0, ..WallConfig::default() });
        let mut out = Out(Vec::new());
        // Bid wall at 990 while best bid is 1000; price drifts down towards it.
        out.extend(wt.on_book(bk.set(1000, &[(990, 30.0)]), 0));
        for (i, bb) in [998, 996, 994].iter().enumerate() {
            out.extend(wt.on_book(bk.set(*bb, &[(990, 30.0)]), 100 * (i as i64 + 1)));
        }
        assert_eq!(wt.active(Side::Buy), 1);
        // Best bid 993: the wall is 3 ticks behind the touch and is pulled; no trades.
        out.extend(wt.on_book(bk.set(993, &[(990, 0.0)]), 400));
        assert!(walls(&out).is_empty(), "verdict waits for the grace period");
        out.extend(wt.on_trades(&[trade(993, 1.0, Side::Sell)], 500)); // not at the wall price
        out.extend(wt.on_book(bk.set(993, &[]), 700));
        let ev = walls(&out);
        assert_eq!(ev.len(), 1, "{ev:?}");
        let e = ev[0];
        assert_eq!(e.outcome, WallOutcome::Spoofing);
        assert_eq!((e.side, e.price, e.distance_ticks, e.lifetime_ms), (Side::Buy, p("990"), 3, 400));
        assert_eq!(e.size, Qty::from_f64(30.0));
        assert!(wt.scores(700).spoofing > 0.3);
        assert!(wt.scores(700).spoof_bid > 0.3);
        assert_eq!(wt.scores(700).spoof_ask, 0.0);
        // The score decays with event time.
        assert!(wt.scores(700 + 30_000).spoofing < wt.scores(700).spoofing * 0.51);
        assert_eq!(wt.totals(), (0, 1, 0));
    }

    #[test]
    fn wall_eaten_by_trades_is_absorbing() {
        let mut bk = Bk::new();
        let mut wt = WallTracker::new(WallConfig { min_spoof_lifetime_ms: 0, ..WallConfig::default() });
        let mut out = Out(Vec::new());
        out.extend(wt.on_book(bk.set(1000, &[(997, 30.0)]), 0));
        out.extend(wt.on_book(bk.set(997, &[(997, 30.0)]), 100));
        // Sellers hit the wall; the book update removing it arrives before the last prints.
        out.extend(wt.on_trades(&[trade(997, 6.0, Side::Sell), trade(997, 4.0, Side::Sell)], 150));
        out.extend(wt.on_book(bk.set(996, &[(997, 0.0)]), 200));
        assert!(walls(&out).is_empty(), "only 10 of 30 eaten so far: undecided");
        out.extend(wt.on_trades(&[trade(997, 12.0, Side::Sell), trade(998, 50.0, Side::Sell)], 210));
        let ev = walls(&out);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].outcome, WallOutcome::Absorbing);
        assert_eq!(ev[0].eaten, Qty::from_f64(22.0), "the print above the wall price does not count");
        assert_eq!(ev[0].distance_ticks, -1, "the touch moved through it");
        assert_eq!(wt.scores(210).spoofing, 0.0);
        // Buy aggressors never eat a bid wall.
        let mut wt = WallTracker::new(WallConfig { min_spoof_lifetime_ms: 0, ..WallConfig::default() });
        out.extend(wt.on_book(bk.set(1000, &[(998, 30.0)]), 0));
        out.extend(wt.on_trades(&[trade(998, 30.0, Side::Buy)], 10));
        out.extend(wt.on_book(bk.set(1000, &[(998, 0.0)]), 20));
        out.extend(wt.on_book(bk.set(1000, &[]), 400));
        assert_eq!(walls(&out).last().map(|e| e.outcome), Some(WallOutcome::Spoofing));
    }

    #[test]
    fn far_wall_pulled_is_neutral_and_out_of_view_is_forgotten() {
        let mut bk = Bk::new();
        let mut wt = WallTracker::new(WallConfig { min_spoof_lifetime_ms: 0, ..WallConfig::default() });
        let mut out = Out(Vec::new());
        // Ask wall 15 ticks away (1.5 % at price 1000 > 0.05 %) pulled: cancelled, no event.
        out.extend(wt.on_book(bk.set(1000, &[(1015, 40.0)]), 0));
        assert_eq!(wt.active(Side::Sell), 1);
        out.extend(wt.on_book(bk.set(1000, &[(1015, 0.0)]), 100));
        out.extend(wt.on_book(bk.set(1000, &[]), 1_000));
        assert!(walls(&out).is_empty());
        assert_eq!(wt.totals(), (0, 0, 1));
        // A bid wall that drifts out of the scanned range (price rallies) is forgotten.
        out.extend(wt.on_book(bk.set(1000, &[(985, 40.0)]), 2_000));
        assert_eq!(wt.active(Side::Buy), 1);
        out.extend(wt.on_book(bk.set(1010, &[(985, 40.0)]), 2_100));
        assert_eq!(wt.active(Side::Buy), 0);
        out.extend(wt.on_book(bk.set(1010, &[]), 3_000));
        assert_eq!(wt.totals(), (0, 0, 1));
        // Shrinking below end_fraction near the touch is spoofing too.
        out.extend(wt.on_book(bk.set(1000, &[(1002, 40.0)]), 4_000));
        out.extend(wt.on_book(bk.set(1000, &[(1002, 5.0)]), 4_100));
        out.extend(wt.on_book(bk.set(1000, &[(1002, 5.0)]), 4_500));
        let ev = walls(&out);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].outcome, ev[0].side, ev[0].remaining),
            (WallOutcome::Spoofing, Side::Sell, Qty::from_f64(5.0))
        );
        // An invalid book forgets everything.
        let mut bad = OrderBook::new(p("1"), 5).unwrap();
        bad.invalidate();
        out.extend(wt.on_book(bk.set(1000, &[(1003, 40.0)]), 5_000));
        assert_eq!(wt.active(Side::Sell), 1);
        out.extend(wt.on_book(&bad, 5_100));
        assert_eq!(wt.active(Side::Sell), 0);
    }
}
