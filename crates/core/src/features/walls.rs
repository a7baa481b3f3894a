//! Walls and spoofing.
//!
//! **Walls.** A *candidate* is a level among the best [`WallConfig::scan_levels`] of a side
//! (needs `n >= min_levels` of them) that is large relative to that side's own level-size
//! distribution: `qty >= k · (Σ qty − qty) / (n − 1)` (the average of the other scanned levels)
//! **and** `qty >= k_median · median` (the median of the scanned sizes, the candidate
//! included, but never below the symbol's usual level size from its long baseline, so a
//! momentarily thin book does not turn ordinary levels into walls). Level sizes are
//! heavy-tailed in real books: the tail pulls the average around and an ordinary big level
//! passes `k × average` every few seconds, while the median of the scanned levels barely moves,
//! so `k_median` is what makes a wall exceptional for *this* book. A candidate becomes a **wall** once seen in `confirm_updates` consecutive book
//! updates; a large level that flickers in and out is never a wall (no support / resistance,
//! no verdict).
//!
//! A wall's identity is `(side, price tick)`; it is tracked across book updates until it
//! **ends**: its level disappears while inside the scanned range, or the size removed *without
//! trades* (`peak − qty − eaten`) exceeds `(1 − end_fraction) × peak`. A wall being eaten
//! keeps being tracked however small it gets. A wall that merely drifts deeper than the
//! scanned range (price moved away) is forgotten without a verdict.
//!
//! **Re-quotes.** When a level of about the same size (`|qty − last| <= requote_size_tolerance
//! × last`) appears within `requote_ticks` of an ended wall on the same side within
//! `requote_window_ms`, the wall has moved, not been pulled: it continues at the new price
//! (keeping its age, confirmation and farthest distance) and gets no verdict.
//!
//! **Trades** are matched against walls in event order: a taker **sell** at or below a bid
//! wall's price (a taker **buy** at or above an ask wall's price) counts as volume *eaten* from
//! it. RPI trades (`Trade::rpi`: the maker was a Retail Price Improvement order, never shown in
//! the public book) are left out: the liquidity they hit was not the wall, so they are neither
//! absorption at a wall nor late trades that clear a pulled wall of spoofing. An ended wall waits `max(classify_grace_ms, requote_window_ms)` for late trades (the
//! trade and book streams are separate, so the prints that ate a wall may arrive just after the
//! book update that removed it; only prints whose exchange time is not after that update's count)
//! and re-quotes, then is classified with `lost = peak −
//! remaining`:
//!
//! * **ABSORBING** (a real wall) when `eaten >= absorb_fraction × lost` (decided as soon as it
//!   holds);
//! * **SPOOFING** when every test of a pull *as the price approaches without trades* holds:
//!   - it was a confirmed wall that rested at least `min_spoof_lifetime_ms`, of which at least
//!     `spoof_min_shown_ms` within `spoof_shown_ticks` of the touch (shown near the price: on
//!     real books big levels the price sweeps onto from far away are routinely withdrawn as it
//!     arrives, and that is liquidity leaving, not a bluff);
//!   - it was pulled **near the touch but before the price went through it**: with `d` the
//!     smaller of its last-seen distance and its distance at removal (ticks from its own side's
//!     best price; 0 = it was the touch, negative = the touch moved through it),
//!     `d >= spoof_min_distance_ticks` (default 0: a level the touch runs over without trading
//!     is a quote fading as the price gets there, not a bluff) and (`d <= spoof_near_ticks` or
//!     `d` is within `spoof_near_pct` % of the price);
//!   - the price was **approaching** it: with `far` the farthest distance seen in the last
//!     `spoof_approach_window_ms`, `d <= far − spoof_min_approach_ticks` and `d <= (1 −
//!     spoof_min_approach_fraction) × far`;
//!   - **no trades** to speak of printed at its price: `eaten <= spoof_max_eaten_fraction ×
//!     lost`;
//! * **CANCELLED** otherwise (withdrawn far away, faded as the price reached it, partly traded,
//!   never approached: neutral, no event).
//!
//! Scores (all in [0, 1]):
//! * `spoof_bid`, `spoof_ask`: decaying scores, `s ← s + spoof_increment · (1 − s)` on each
//!   SPOOFING verdict of that side, halved every `spoof_half_life_ms` of event time.
//!   `SpoofingScore = 1 − (1 − spoof_bid)(1 − spoof_ask)`. With the defaults one verdict gives
//!   0.25, and the regime's MANIPULATED threshold (0.6) takes four verdicts in quick
//!   succession or five about 12 s apart: one cancelled wall, or a burst of cancellations on
//!   one price move, is not manipulation; a sustained pattern is.
//! * `WallSupportScore` (bid walls), `WallResistanceScore` (ask walls), over confirmed walls:
//!   `(1 − Π_i (1 − s_i)) · (1 − spoof_side)` with `s_i = min(1, ratio_i / (2k)) · max(0, 1 −
//!   dist_mid_pct_i / zone_pct)`, where `ratio_i` is the wall's size over the local average and
//!   `dist_mid_pct_i` its distance from the mid in percent.

mod config;
pub use config::WallConfig;

use crate::domain::{Price, Qty, Side, TimeMs};
use crate::features::math::{clamp01, decay};
use crate::market::data::{Level, Trade};
use crate::market::orderbook::OrderBook;
use serde::{Deserialize, Serialize};

/// Verdict on a wall that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WallOutcome {
    /// Eaten by trades at or through its price: a real wall.
    Absorbing,
    /// Pulled or shrunk near the touch, as the price approached, without being traded.
    Spoofing,
}

/// A classified wall (spoof events are the `Spoofing` ones).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WallEvent {
    pub outcome: WallOutcome,
    /// Book side of the wall (`Buy` = bid wall, `Sell` = ask wall).
    pub side: Side,
    /// Wall price (where it ended, after any re-quotes).
    pub price: Price,
    /// Largest size seen.
    pub size: Qty,
    /// Largest size over the median scanned level of its side.
    pub size_ratio: f64,
    /// Size left when it ended (0 when the level disappeared).
    pub remaining: Qty,
    /// Taker volume traded at or through its price while tracked (and during the grace).
    pub eaten: Qty,
    /// From first seen to the update that ended it, ms.
    pub lifetime_ms: i64,
    /// Ticks from its side's touch when it ended (negative: the touch moved through it).
    pub distance_ticks: i64,
    /// Farthest distance from the touch within the approach window before it ended, ticks
    /// (the approach is `approach_from_ticks − distance_ticks`).
    pub approach_from_ticks: i64,
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
    /// Size over the average of the other scanned levels (support / resistance strength).
    ratio: f64,
    /// Largest size over the side's median.
    med_ratio: f64,
    dist_ticks: i64,
    dist_pct: f64,
    /// Farthest distance in the current / previous half approach window, and when the current
    /// half started.
    far_cur: i64,
    far_prev: i64,
    far_since_ms: TimeMs,
    /// Consecutive book updates it was seen in.
    updates: u32,
    /// Time spent within `spoof_shown_ticks` of the touch, ms (up to `noted_ms`).
    near_ms: i64,
    /// When `dist_ticks` was last noted.
    noted_ms: TimeMs,
}

impl Wall {
    /// Adds the time since the last note to `near_ms` if the wall was near the touch then.
    fn note_near(&mut self, now: TimeMs, near_ticks: i64) {
        if (0..=near_ticks).contains(&self.dist_ticks) {
            self.near_ms += (now - self.noted_ms).max(0);
        }
        self.noted_ms = now;
    }
    /// Records the distance seen at `now` in the approach window (`window_ms` 0 = whole life).
    fn note_distance(&mut self, dist: i64, now: TimeMs, window_ms: i64) {
        if window_ms > 0 && now - self.far_since_ms >= window_ms / 2 {
            self.far_prev = self.far_cur;
            self.far_cur = dist;
            self.far_since_ms = now;
        } else {
            self.far_cur = self.far_cur.max(dist);
        }
    }
    /// Farthest recent distance from the touch.
    fn approach_from(&self) -> i64 {
        self.far_cur.max(self.far_prev)
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    wall: Wall,
    remaining: i64,
    ended_ms: TimeMs,
    /// Exchange time of the book update that ended it, when the venue gives one: a late trade
    /// counts as eaten from it only if it printed no later than that.
    ended_exchange_ms: Option<TimeMs>,
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
    /// Active (confirmed) bid walls.
    pub bid_walls: u32,
    /// Active (confirmed) ask walls.
    pub ask_walls: u32,
    /// Price of the nearest active bid wall (0 = none).
    pub bid_wall_price: f64,
    /// Price of the nearest active ask wall (0 = none).
    pub ask_wall_price: f64,
}

/// Tracks walls across book updates and trades and classifies them when they end.
#[derive(Debug, Clone)]
pub struct WallTracker {
    /// Shared by every symbol's tracker (one copy per configuration, not per symbol).
    cfg: std::sync::Arc<WallConfig>,
    tick: Price,
    walls: Vec<Wall>,
    pending: Vec<Pending>,
    /// Scan buffer when `scan_levels` exceeds [`STACK_SCAN`] (empty otherwise).
    scan: Vec<Level>,
    /// The symbol's usual resting level size (long baseline), base units; 0 = unknown.
    reference_level: f64,
    /// Scratch for the median (raw sizes) when `scan_levels` exceeds [`STACK_SCAN`].
    sizes: Vec<i64>,
    spoof_bid: DecayScore,
    spoof_ask: DecayScore,
    raw_support: f64,
    raw_resistance: f64,
    absorbed_total: u64,
    spoofed_total: u64,
    cancelled_total: u64,
    requoted_total: u64,
    /// Test oracle switch: scan every level for candidates (no shortcut).
    #[cfg(test)]
    full_scan: bool,
}

/// Distance in ticks from a side's best price to a wall (positive = behind the touch).
#[inline]
fn dist_from_touch(side: Side, best_ticks: i64, wall_ticks: i64) -> i64 {
    match side {
        Side::Buy => best_ticks - wall_ticks,
        Side::Sell => wall_ticks - best_ticks,
    }
}

/// Levels a side scan copies onto the stack: the stack is in the L1 cache on every event,
/// while a buffer per symbol is one more set of cold lines to write per book event once the
/// universe has hundreds of symbols. A configuration scanning more levels uses the tracker's
/// own buffers.
const STACK_SCAN: usize = 64;

impl WallTracker {
    /// New tracker.
    pub fn new(cfg: impl Into<std::sync::Arc<WallConfig>>) -> Self {
        let cfg = cfg.into();
        let cap = cfg.max_walls_per_side * 2;
        WallTracker {
            scan: Vec::new(),
            sizes: Vec::new(),
            cfg,
            tick: Price::ZERO,
            walls: Vec::with_capacity(cap),
            pending: Vec::with_capacity(cap),
            spoof_bid: DecayScore::default(),
            spoof_ask: DecayScore::default(),
            reference_level: 0.0,
            raw_support: 0.0,
            raw_resistance: 0.0,
            absorbed_total: 0,
            spoofed_total: 0,
            cancelled_total: 0,
            requoted_total: 0,
            #[cfg(test)]
            full_scan: false,
        }
    }

    /// Replaces the settings (tracked walls are kept).
    pub fn set_config(&mut self, cfg: impl Into<std::sync::Arc<WallConfig>>) {
        self.cfg = cfg.into();
    }

    /// Sets the symbol's usual resting level size (base units; 0 or invalid = unknown): walls
    /// are measured against the larger of it and the book's current median level.
    pub fn set_reference_level(&mut self, qty: f64) {
        self.reference_level = if qty.is_finite() && qty > 0.0 { qty } else { 0.0 };
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

    /// Walls that ended as re-quotes (moved, not pulled).
    pub fn requotes(&self) -> u64 {
        self.requoted_total
    }

    /// Active (confirmed) walls on a side.
    pub fn active(&self, side: Side) -> usize {
        self.walls.iter().filter(|w| w.side == side && self.confirmed(w)).count()
    }

    #[inline]
    fn confirmed(&self, w: &Wall) -> bool {
        w.updates >= self.cfg.confirm_updates
    }

    /// Prefetches the tracker's buffers (see [`crate::engine::prefetch`]).
    #[inline]
    pub fn prefetch(&self) {
        use crate::engine::prefetch;
        prefetch::slice(&self.walls, 0..self.walls.len());
        prefetch::slice(&self.pending, 0..self.pending.len());
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
        let mut stack = [Level { price: Price::ZERO, qty: Qty::ZERO }; STACK_SCAN];
        let mut heap = std::mem::take(&mut self.scan);
        let scan: &[Level] = if self.cfg.scan_levels <= STACK_SCAN {
            let mut n = 0;
            for (slot, l) in stack.iter_mut().zip(book.top_n(side, self.cfg.scan_levels)) {
                *slot = l;
                n += 1;
            }
            &stack[..n]
        } else {
            heap.clear();
            heap.extend(book.top_n(side, self.cfg.scan_levels));
            &heap
        };
        let Some(best) = scan.first().map(|l| l.price.to_ticks(tick)) else {
            self.walls.retain(|w| w.side != side);
            self.scan = heap;
            return;
        };
        let deepest = scan.last().map(|l| l.price.to_ticks(tick)).unwrap_or(best);
        let whole_side = scan.len() < self.cfg.scan_levels;
        let n = scan.len();
        // One pass: the total, and the largest size (for the candidate shortcut below). `n >= 1`
        // here, so starting the sum at 0.0 is bit-identical to `Sum` (which starts at -0.0).
        let (total, largest_raw) =
            scan.iter().fold((0.0f64, i64::MIN), |(t, m), l| (t + l.qty.to_f64(), m.max(l.qty.raw())));
        let local_avg = |q: f64| if n > 1 { (total - q) / (n - 1) as f64 } else { 0.0 };
        // Median scanned size (upper median), O(n), selected only when a tracked wall or a
        // candidate that passed the cheaper tests needs it (most updates have neither); the
        // value is the same whenever it is used.
        let mut sizes_heap = std::mem::take(&mut self.sizes);
        let mut sizes_stack = [0i64; STACK_SCAN];
        let reference_level = self.reference_level;
        let mut median_cache: Option<f64> = None;
        let mut median = || -> f64 {
            *median_cache.get_or_insert_with(|| {
                let sizes: &mut [i64] = if n <= STACK_SCAN {
                    let sizes = &mut sizes_stack[..n];
                    for (d, l) in sizes.iter_mut().zip(scan) {
                        *d = l.qty.raw();
                    }
                    sizes
                } else {
                    sizes_heap.clear();
                    sizes_heap.extend(scan.iter().map(|l| l.qty.raw()));
                    &mut sizes_heap
                };
                let m = if sizes.is_empty() {
                    0.0
                } else {
                    let mid_i = sizes.len() / 2;
                    let (_, m, _) = sizes.select_nth_unstable(mid_i);
                    Qty::from_raw(*m).to_f64()
                };
                // A momentarily thin book must not make ordinary levels look exceptional: the
                // reference is never below the symbol's usual level size (its long baseline,
                // when known).
                m.max(reference_level)
            })
        };
        let med_ratio = |q: f64, median: f64| if median > 0.0 { q / median } else { 0.0 };
        let deepest_dist = dist_from_touch(side, best, deepest);
        let pct_from_touch = |p: Price| (p.to_f64() - price_of(scan, 0)).abs() / mid.max(f64::MIN_POSITIVE) * 100.0;

        // Update tracked walls of this side.
        let mut i = 0;
        while i < self.walls.len() {
            let w = self.walls[i];
            if w.side != side {
                i += 1;
                continue;
            }
            let dist = dist_from_touch(side, best, w.ticks);
            let dist_pct = pct_from_touch(w.price);
            let found = scan.iter().find(|l| l.price.to_ticks(tick) == w.ticks).map(|l| l.qty.raw());
            let remaining = match found {
                Some(q)
                    if ((w.peak - q).saturating_sub(w.eaten) as f64)
                        <= (1.0 - self.cfg.end_fraction) * w.peak as f64 =>
                {
                    let qf = Qty::from_raw(q).to_f64();
                    let avg = local_avg(qf);
                    let near = self.cfg.spoof_shown_ticks;
                    let m = median();
                    let ww = &mut self.walls[i];
                    ww.note_near(now, near);
                    ww.last = q;
                    ww.peak = ww.peak.max(q);
                    ww.dist_ticks = dist;
                    ww.dist_pct = dist_pct;
                    ww.note_distance(dist, now, self.cfg.spoof_approach_window_ms);
                    ww.updates = ww.updates.saturating_add(1);
                    ww.ratio = if avg > 0.0 { qf / avg } else { self.cfg.k };
                    ww.med_ratio = ww.med_ratio.max(med_ratio(qf, m));
                    i += 1;
                    continue;
                }
                Some(q) => Some(q),
                None if whole_side || dist <= deepest_dist => Some(0),
                None => None,
            };
            self.walls.swap_remove(i);
            match remaining {
                // A flicker that nobody traded: it never was a wall.
                Some(_) if w.updates < self.cfg.confirm_updates && w.eaten == 0 => {}
                Some(rem) => {
                    let near_dist = dist.min(w.dist_ticks);
                    let near_pct = if dist < w.dist_ticks { dist_pct } else { w.dist_pct };
                    self.push_pending(Pending {
                        wall: w,
                        remaining: rem,
                        ended_ms: now,
                        ended_exchange_ms: book.last_cts_ms(),
                        dist_ticks: near_dist,
                        dist_pct: near_pct,
                    });
                }
                None => {}
            }
        }

        // New candidates (and re-quoted walls). `k · local_avg(q)` never grows with `q` (float
        // rounding is monotone too), so when the largest level is below it no level passes that
        // test and the scan is skipped (exact: the loop would push nothing).
        let largest = Qty::from_raw(largest_raw).to_f64();
        let largest_avg = local_avg(largest);
        let none_large = self.cfg.k > 0.0 && largest_avg > 0.0 && largest < self.cfg.k * largest_avg;
        #[cfg(test)]
        let none_large = none_large && !self.full_scan;
        if n >= self.cfg.min_levels && !none_large {
            let mut count = self.walls.iter().filter(|w| w.side == side).count();
            for l in scan {
                if count >= self.cfg.max_walls_per_side {
                    break;
                }
                let q = l.qty.to_f64();
                let avg = local_avg(q);
                if avg <= 0.0
                    || q < self.cfg.k * avg
                    || l.price.to_f64() * q < self.cfg.min_notional
                    || q < self.cfg.k_median * median()
                {
                    continue;
                }
                let ticks = l.price.to_ticks(tick);
                if self.walls.iter().any(|w| w.side == side && w.ticks == ticks)
                    || self.pending.iter().any(|p| p.wall.side == side && p.wall.ticks == ticks)
                {
                    continue;
                }
                let dist = dist_from_touch(side, best, ticks);
                let fresh = Wall {
                    side,
                    ticks,
                    price: l.price,
                    first_seen_ms: now,
                    peak: l.qty.raw(),
                    last: l.qty.raw(),
                    eaten: 0,
                    ratio: q / avg,
                    med_ratio: med_ratio(q, median()),
                    dist_ticks: dist,
                    dist_pct: pct_from_touch(l.price),
                    far_cur: dist,
                    far_prev: dist,
                    far_since_ms: now,
                    updates: 1,
                    near_ms: 0,
                    noted_ms: now,
                };
                let wall = match self.requote_of(side, ticks, l.qty.raw(), now) {
                    Some(j) => {
                        let old = self.pending.remove(j).wall;
                        self.requoted_total += 1;
                        Wall {
                            first_seen_ms: old.first_seen_ms,
                            med_ratio: old.med_ratio.max(fresh.med_ratio),
                            far_cur: old.far_cur.max(dist),
                            far_prev: old.far_prev,
                            far_since_ms: old.far_since_ms,
                            updates: old.updates.saturating_add(1),
                            near_ms: old.near_ms
                                + if (0..=self.cfg.spoof_shown_ticks).contains(&old.dist_ticks) {
                                    (now - old.noted_ms).max(0)
                                } else {
                                    0
                                },
                            ..fresh
                        }
                    }
                    None => fresh,
                };
                self.walls.push(wall);
                count += 1;
            }
        }
        self.scan = heap;
        self.sizes = sizes_heap;
    }

    /// The pending (ended, unclassified) wall that a new level of `qty` at `ticks` re-quotes:
    /// same side, within `requote_ticks`, ended within `requote_window_ms`, similar size, and
    /// not traded (a wall being eaten is not moving).
    fn requote_of(&self, side: Side, ticks: i64, qty: i64, now: TimeMs) -> Option<usize> {
        let c = &self.cfg;
        if c.requote_ticks == 0 {
            return None;
        }
        self.pending.iter().position(|p| {
            let last = p.wall.last as f64;
            let lost = (p.wall.peak - p.remaining).max(0) as f64;
            p.wall.side == side
                && (p.wall.ticks - ticks).abs() <= c.requote_ticks
                && now - p.ended_ms <= c.requote_window_ms
                && (qty as f64 - last).abs() <= c.requote_size_tolerance * last
                && p.wall.eaten as f64 <= c.spoof_max_eaten_fraction * lost
        })
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
        for w in self.walls.iter().filter(|w| w.updates >= self.cfg.confirm_updates) {
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
            if q <= 0 || t.rpi {
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
                // A trade that printed after the wall had left the book did not eat it (the
                // price running through a level just pulled is what a pull before the touch
                // looks like).
                let after = pd.ended_exchange_ms.is_some_and(|e| t.ts_ms > e);
                if !after && hits(pd.wall.side, pd.wall.price.raw()) {
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
        let c = &self.cfg;
        let wait = c.classify_grace_ms.max(c.requote_window_ms);
        let mut i = 0;
        while i < self.pending.len() {
            let pd = self.pending[i];
            let c = &self.cfg;
            let lost = (pd.wall.peak - pd.remaining).max(0) as f64;
            let eaten = pd.wall.eaten as f64;
            let absorbed = eaten >= c.absorb_fraction * lost;
            let due = now >= pd.ended_ms.saturating_add(wait);
            if !absorbed && !due {
                i += 1;
                continue;
            }
            self.pending.remove(i);
            let w = &pd.wall;
            let mut shown = *w;
            shown.note_near(pd.ended_ms, c.spoof_shown_ticks);
            let spoof = w.updates >= c.confirm_updates
                && pd.ended_ms - w.first_seen_ms >= c.min_spoof_lifetime_ms
                && shown.near_ms >= c.spoof_min_shown_ms
                && pd.dist_ticks >= c.spoof_min_distance_ticks
                && (pd.dist_ticks <= c.spoof_near_ticks || pd.dist_pct <= c.spoof_near_pct)
                && pd.dist_ticks <= w.approach_from() - c.spoof_min_approach_ticks
                && pd.dist_ticks as f64 <= (1.0 - c.spoof_min_approach_fraction) * w.approach_from() as f64
                && eaten <= c.spoof_max_eaten_fraction * lost;
            let outcome = if absorbed {
                self.absorbed_total += 1;
                WallOutcome::Absorbing
            } else if spoof {
                self.spoofed_total += 1;
                let (inc, hl) = (c.spoof_increment, c.spoof_half_life_ms);
                match w.side {
                    Side::Buy => self.spoof_bid.bump(now, inc, hl),
                    Side::Sell => self.spoof_ask.bump(now, inc, hl),
                }
                WallOutcome::Spoofing
            } else {
                self.cancelled_total += 1;
                tracing::debug!(
                    side = ?w.side, price = %w.price, updates = w.updates, lifetime_ms = pd.ended_ms - w.first_seen_ms,
                    near_ms = shown.near_ms, dist = pd.dist_ticks, far = w.approach_from(), eaten, lost,
                    "wall cancelled (not spoofing)"
                );
                continue;
            };
            out.push(WallEvent {
                outcome,
                side: w.side,
                price: w.price,
                size: Qty::from_raw(w.peak),
                size_ratio: w.med_ratio,
                remaining: Qty::from_raw(pd.remaining),
                eaten: Qty::from_raw(w.eaten),
                lifetime_ms: (pd.ended_ms - w.first_seen_ms).max(0),
                distance_ticks: pd.dist_ticks,
                approach_from_ticks: w.approach_from(),
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
                .filter(|w| w.side == side && self.confirmed(w))
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
mod tests;
