//! Order-book imbalance: level-1 and zonal depth imbalance, plus the zone depths the pump engine
//! uses for thinning.
//!
//! * `imb_l1 = (bid1_qty − ask1_qty) / (bid1_qty + ask1_qty)` ∈ [-1, 1].
//! * `imb_z(p) = (B_p − A_p) / (B_p + A_p)` ∈ [-1, 1], where `B_p` (`A_p`) is the total bid
//!   (ask) size priced within `p` % of the mid, for `p` ∈ {0.1, 0.25, 0.5, 1.0}.
//!
//! Sizes are base units (both sides comparable). Every value is 0 when the book is empty.
//!
//! The zone depths are exact integer sums (raw size units, and ticks × raw size for the notional
//! within 0.5 %), converted to `f64` once. Integer sums do not depend on the order of their
//! additions, so [`ZoneTracker`] keeps them up to date from a delta's level changes alone
//! (no rescan of the levels within 1 %) while the mid stays put, and equals a rescan bit for bit.

use crate::domain::{Price, Side, SCALE};
use crate::features::math::imbalance;
use crate::market::orderbook::{key_of, BookChanges, LevelChange, OrderBook};

/// Zone half-widths in percent of the mid.
pub const ZONES_PCT: [f64; 4] = [0.1, 0.25, 0.5, 1.0];

/// Index in [`ZONES_PCT`] of the zone whose notional is kept (0.5 %).
const NOTIONAL_ZONE: usize = 2;

/// Imbalance and depth figures of one book state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BookFeatures {
    /// Mid price (0 when a side is empty).
    pub mid: f64,
    /// Spread in basis points of the mid.
    pub spread_bps: f64,
    /// Volume-weighted mid from the touch.
    pub microprice: f64,
    /// Level-1 imbalance ∈ [-1, 1].
    pub imb_l1: f64,
    /// Zonal imbalance per [`ZONES_PCT`] ∈ [-1, 1].
    pub imb_zone: [f64; 4],
    /// Bid notional (USDT) within 0.5 % of the mid.
    pub bid_notional_0_5: f64,
    /// Ask notional (USDT) within 0.5 % of the mid.
    pub ask_notional_0_5: f64,
}

/// A level's distance from the mid in percent of the mid, positive away from the touch. The
/// same float expression for every level, monotone in the price, so the levels of a zone are
/// the best ones of their side.
#[inline]
fn dist_pct(side: Side, px: f64, mid: f64) -> f64 {
    match side {
        Side::Buy => (mid - px) / mid * 100.0,
        Side::Sell => (px - mid) / mid * 100.0,
    }
}

/// Exact zone sums of one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SideSums {
    /// Raw size units (10⁻⁸ of a base unit) within each zone of [`ZONES_PCT`].
    depth: [i128; 4],
    /// Σ price in ticks × raw size within 0.5 %.
    notional: i128,
}

impl SideSums {
    /// Adds `qty` raw units (negative: removes) at `ticks` lying `dist` percent from the mid
    /// (nothing beyond the widest zone). False on an overflow of the notional's 128 bits (a
    /// book no exchange could hold), which leaves it saturated; the depths cannot overflow.
    #[inline]
    fn add(&mut self, dist: f64, ticks: i64, qty: i128) -> bool {
        for (z, d) in ZONES_PCT.iter().zip(self.depth.iter_mut()) {
            if dist <= *z {
                *d += qty;
            }
        }
        dist > ZONES_PCT[NOTIONAL_ZONE] || add_exact(&mut self.notional, i128::from(ticks) * qty)
    }

    /// Every zone from a rescan of the side's levels within the widest zone, best first; the
    /// flag is false when the notional overflowed (saturated).
    ///
    /// Membership is [`dist_pct`] against each zone, as in [`SideSums::add`], but the loop never
    /// evaluates it: the distance is monotone in the price, so a zone holds the levels whose
    /// side key is at or above a floor, found by [`zone_floor`] from a handful of distance
    /// evaluations, and the levels then cost integer compares and adds alone. Floors are found
    /// only for the zones the levels reach beyond (a book whose levels all lie within 0.1 %
    /// needs one per side). One running depth serves every zone: the levels of a zone are a
    /// prefix of the next wider one's, so each zone takes the running depth when the first
    /// level below its floor shows up.
    fn scan(book: &OrderBook, side: Side, mid: f64) -> (SideSums, bool) {
        let tick = book.tick_size();
        let mut s = SideSums::default();
        // Cannot overflow: below 2^63 a level, far fewer than 2^64 levels.
        let mut acc = 0i128;
        // The notional's terms are not negative, so it cannot exceed (its largest price in
        // ticks) × (its depth): when that product fits, the wrapping sum is exact.
        let mut notional = 0i128;
        let mut top_ticks = 0i64;
        // Zones `open..` still take levels; `floor` is zone `open`'s.
        let mut open = 0usize;
        let mut floor = zone_floor(side, tick, mid, ZONES_PCT[0]);
        'levels: for (t, q) in book.levels_ticks(side) {
            let key = key_of(side, t);
            while key < floor {
                s.depth[open] = acc;
                open += 1;
                if open == ZONES_PCT.len() {
                    break 'levels;
                }
                floor = zone_floor(side, tick, mid, ZONES_PCT[open]);
            }
            let q = i128::from(q.raw());
            acc += q;
            if open <= NOTIONAL_ZONE {
                notional = notional.wrapping_add(i128::from(t) * q);
                top_ticks = top_ticks.max(t);
            }
        }
        for d in &mut s.depth[open..] {
            *d = acc;
        }
        s.notional = notional;
        let ok = i128::from(top_ticks).checked_mul(s.depth[NOTIONAL_ZONE]).is_some();
        if !ok {
            s.notional = i128::MAX;
        }
        (s, ok)
    }

    /// Depths in base units and the notional in USDT.
    fn to_f64(self, tick: Price) -> ([f64; 4], f64) {
        let scale = SCALE as f64;
        (self.depth.map(|d| int_to_f64(d) / scale), int_to_f64(self.notional) * tick.to_f64() / scale)
    }
}

/// `x as f64` (rounded to nearest), through the hardware's 64-bit conversion whenever `x` fits
/// in 64 bits (the same value: both conversions round the same integer to nearest), instead of
/// the ~45-instruction software routine a 128-bit conversion is.
#[inline]
fn int_to_f64(x: i128) -> f64 {
    match i64::try_from(x) {
        Ok(v) => v as f64,
        Err(_) => wide_to_f64(x),
    }
}

/// Out of line, so that the compiler cannot fold [`int_to_f64`]'s two cases back into one
/// 128-bit conversion.
#[cold]
#[inline(never)]
fn wide_to_f64(x: i128) -> f64 {
    x as f64
}

/// `acc += v`, saturating; false when it overflowed.
#[inline]
fn add_exact(acc: &mut i128, v: i128) -> bool {
    match acc.checked_add(v) {
        Some(x) => {
            *acc = x;
            true
        }
        None => {
            *acc = acc.saturating_add(v);
            false
        }
    }
}

/// Whether the price with side key `key` lies within `pct` percent of `mid` ([`dist_pct`]),
/// for any key: a key whose price is not positive lies on the other side of the mid (in, for
/// the asks; no bid has one), and one whose price overflows is far beyond it.
fn within(side: Side, tick: Price, mid: f64, pct: f64, key: i64) -> bool {
    let ticks = match side {
        Side::Buy => key,
        // The lowest ask key stands for a price of 2^63 ticks: far beyond.
        Side::Sell => match key.checked_neg() {
            Some(t) => t,
            None => return false,
        },
    };
    if ticks <= 0 {
        return side == Side::Sell;
    }
    match ticks.checked_mul(tick.raw()) {
        Some(raw) => dist_pct(side, Price::from_raw(raw).to_f64(), mid) <= pct,
        None => side == Side::Buy,
    }
}

/// The lowest side key within `pct` percent of `mid`: [`within`] is false below it and true
/// from it on (monotone: the distance never decreases away from the touch). Searched from the
/// float estimate outwards (doubling steps, then bisection), so an estimate a few ticks off
/// costs a few evaluations and a wrong one at most ~128.
fn zone_floor(side: Side, tick: Price, mid: f64, pct: f64) -> i64 {
    let tick_f = tick.to_f64();
    let guess = match side {
        Side::Buy => (mid * (1.0 - pct / 100.0) / tick_f).ceil(),
        Side::Sell => -(mid * (1.0 + pct / 100.0) / tick_f).floor(),
    };
    // Saturating float-to-int conversion; NaN gives 0.
    let guess = guess as i64;
    let pred = |k: i64| within(side, tick, mid, pct, k);
    // Invariant once both are set: pred(lo) false, pred(hi) true.
    let (mut lo, mut hi);
    if pred(guess) {
        hi = guess;
        let mut step = 1i64;
        loop {
            let c = hi.saturating_sub(step);
            if c == hi {
                return hi;
            }
            if !pred(c) {
                lo = c;
                break;
            }
            hi = c;
            step = step.saturating_mul(2);
        }
    } else {
        lo = guess;
        let mut step = 1i64;
        loop {
            let c = lo.saturating_add(step);
            if c == lo {
                // Never true: no key is within (an empty zone).
                return i64::MAX;
            }
            if pred(c) {
                hi = c;
                break;
            }
            lo = c;
            step = step.saturating_mul(2);
        }
    }
    while hi - lo > 1 {
        let m = lo + (hi - lo) / 2;
        if pred(m) {
            hi = m;
        } else {
            lo = m;
        }
    }
    hi
}

/// The mid of a book's touch, when both sides hold a level and it is positive.
fn touch_mid(book: &OrderBook) -> Option<f64> {
    let (b, a) = (book.best_bid()?, book.best_ask()?);
    let mid = (b.price.to_f64() + a.price.to_f64()) / 2.0;
    (mid > 0.0).then_some(mid)
}

impl BookFeatures {
    /// Computes every figure from a book by a rescan. Cost O(levels within 1 % of the mid).
    pub fn compute(book: &OrderBook) -> BookFeatures {
        let Some(mid) = touch_mid(book) else {
            return BookFeatures::default();
        };
        let (b, _) = SideSums::scan(book, Side::Buy, mid);
        let (a, _) = SideSums::scan(book, Side::Sell, mid);
        BookFeatures::from_sums(book, mid, &b, &a)
    }

    fn from_sums(book: &OrderBook, mid: f64, bids: &SideSums, asks: &SideSums) -> BookFeatures {
        let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) else {
            return BookFeatures::default();
        };
        let tick = book.tick_size();
        let (bz, bn) = bids.to_f64(tick);
        let (az, an) = asks.to_f64(tick);
        let mut imb_zone = [0.0; 4];
        for i in 0..4 {
            imb_zone[i] = imbalance(bz[i], az[i]);
        }
        BookFeatures {
            mid,
            spread_bps: (a.price.to_f64() - b.price.to_f64()) / mid * 10_000.0,
            microprice: book.microprice().unwrap_or(mid),
            imb_l1: imbalance(b.qty.to_f64(), a.qty.to_f64()),
            imb_zone,
            bid_notional_0_5: bn,
            ask_notional_0_5: an,
        }
    }
}

/// A symbol's zone sums, kept up to date from each delta's level changes ([`BookChanges`])
/// while the mid stays the same, and rescanned otherwise (a snapshot, a moved mid, a change
/// list that is incomplete or does not continue the update the sums reflect). Either way the
/// figures equal [`BookFeatures::compute`] bit for bit (a property test checks it).
#[derive(Debug, Clone, Default)]
pub struct ZoneTracker {
    bids: SideSums,
    asks: SideSums,
    /// Mid the sums were taken at.
    mid: f64,
    /// Book update id the sums reflect (meaningful when `synced`).
    synced_u: u64,
    /// False until a rescan, after an invalid book and after an overflow.
    synced: bool,
    /// Updates whose figures came from a rescan rather than the change list.
    rescans: u64,
}

impl ZoneTracker {
    /// The figures of `book` (valid), from `changes` when they continue the sums (the changes
    /// of the update that brought the book to its current update id), else from a rescan.
    pub fn update(&mut self, book: &OrderBook, changes: Option<&BookChanges>) -> BookFeatures {
        let Some(mid) = touch_mid(book) else {
            self.reset();
            return BookFeatures::default();
        };
        let u = book.last_update_id();
        let listed = changes.filter(|c| c.span() == (self.synced_u, u)).and_then(BookChanges::changes);
        let kept = match listed {
            Some(list) if self.synced && mid.to_bits() == self.mid.to_bits() => self.apply(book, list),
            _ => false,
        };
        if !kept {
            let (b, bok) = SideSums::scan(book, Side::Buy, mid);
            let (a, aok) = SideSums::scan(book, Side::Sell, mid);
            self.bids = b;
            self.asks = a;
            self.mid = mid;
            self.synced = bok && aok;
            self.rescans += 1;
        }
        self.synced_u = u;
        BookFeatures::from_sums(book, mid, &self.bids, &self.asks)
    }

    /// Updates so far whose figures came from a rescan rather than the change list.
    pub fn rescans(&self) -> u64 {
        self.rescans
    }

    /// Forgets the sums (the book went invalid): the next update rescans.
    pub fn reset(&mut self) {
        self.synced = false;
    }

    /// Adds each change's size difference to the zones its price lies in at the kept mid.
    /// False on an overflow (the caller rescans).
    fn apply(&mut self, book: &OrderBook, list: &[LevelChange]) -> bool {
        let tick = book.tick_size();
        for c in list {
            let dist = dist_pct(c.side, Price::from_ticks(c.ticks, tick).to_f64(), self.mid);
            if dist > ZONES_PCT[3] {
                continue;
            }
            let diff = i128::from(c.new.raw()) - i128::from(c.old.raw());
            let sums = match c.side {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            if !sums.add(dist, c.ticks, diff) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{Price, Qty, Symbol};
    use crate::market::data::{BookAction, BookUpdate, Level};

    pub(crate) fn book_of(tick: &str, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> OrderBook {
        let lv = |v: &[(&str, &str)]| -> Vec<Level> {
            v.iter().map(|(p, q)| Level { price: Price::parse(p).unwrap(), qty: Qty::parse(q).unwrap() }).collect()
        };
        let mut b = OrderBook::new(Price::parse(tick).unwrap(), 200).unwrap();
        b.apply(&BookUpdate {
            symbol: Symbol::new("X"),
            action: BookAction::Snapshot,
            depth: 200,
            bids: lv(bids),
            asks: lv(asks),
            update_id: 1,
            seq: 1,
            cts_ms: None,
        })
        .unwrap();
        b
    }

    /// Per-zone sums level by level in `f64` (the former computation), for comparison up to
    /// rounding.
    fn zones_f64(book: &OrderBook, side: Side, mid: f64) -> ([f64; 4], f64) {
        let mut depth = [0.0f64; 4];
        let mut notional_05 = 0.0;
        for l in book.top_n(side, usize::MAX) {
            let px = l.price.to_f64();
            let dist = dist_pct(side, px, mid);
            if dist > ZONES_PCT[3] {
                break;
            }
            for (z, d) in ZONES_PCT.iter().zip(depth.iter_mut()) {
                if dist <= *z {
                    *d += l.qty.to_f64();
                }
            }
            if dist <= 0.5 {
                notional_05 += px * l.qty.to_f64();
            }
        }
        (depth, notional_05)
    }

    fn levels(v: &[(i64, i64)], mid_ticks: i64, sign: i64, t: Price) -> Vec<Level> {
        v.iter()
            .filter(|(off, _)| mid_ticks + sign * off > 0)
            .map(|(off, q)| Level {
                price: Price::from_ticks(mid_ticks + sign * off, t),
                qty: Qty::from_raw(*q * 1_000),
            })
            .collect()
    }

    /// A snapshot (update id `u`) of levels `(offset in ticks, size / 1000 raw)` below (bids) and
    /// above (asks) `mid_ticks`.
    fn snapshot(t: Price, depth: u16, mid_ticks: i64, bids: &[(i64, i64)], asks: &[(i64, i64)], u: u64) -> BookUpdate {
        BookUpdate {
            symbol: Symbol::new("X"),
            action: BookAction::Snapshot,
            depth,
            bids: levels(bids, mid_ticks, -1, t),
            asks: levels(asks, mid_ticks, 1, t),
            update_id: u,
            seq: u,
            cts_ms: None,
        }
    }

    const TICKS: [&str; 4] = ["0.0001", "0.01", "0.5", "10"];

    /// Updates the property test's trackers followed from the change list alone.
    static KEPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Random books (ticks from 1e-4 to 10, levels spread across and beyond the 1 % zone):
        /// the exact sums equal the former per-zone `f64` sums up to rounding.
        #[test]
        fn exact_zones_match_float_sums(
            tick_i in 0usize..4,
            mid_ticks in 50i64..20_000,
            bids in proptest::collection::vec((1i64..400, 1i64..5_000_000), 0..60),
            asks in proptest::collection::vec((1i64..400, 1i64..5_000_000), 0..60),
        ) {
            let t = Price::parse(TICKS[tick_i]).unwrap();
            let mut b = OrderBook::new(t, 200).unwrap();
            b.apply(&snapshot(t, 200, mid_ticks, &bids, &asks, 1)).unwrap();
            if let Some(mid) = touch_mid(&b) {
                for side in [Side::Buy, Side::Sell] {
                    let (sums, ok) = SideSums::scan(&b, side, mid);
                    proptest::prop_assert!(ok);
                    let (d, n) = sums.to_f64(t);
                    let (fd, fn_) = zones_f64(&b, side, mid);
                    for i in 0..4 {
                        proptest::prop_assert!((d[i] - fd[i]).abs() <= 1e-9 * fd[i].abs().max(1.0), "zone {}: {} vs {}", i, d[i], fd[i]);
                    }
                    proptest::prop_assert!((n - fn_).abs() <= 1e-9 * fn_.abs().max(1.0), "notional {} vs {}", n, fn_);
                }
            }
        }

        /// A tracker fed every delta's changes (small and large deltas, deletes, touch moves,
        /// levels past the depth cap, refused updates, snapshots) gives exactly the figures of
        /// a rescan after every update.
        #[test]
        fn tracker_equals_rescan_after_every_update(
            tick_i in 0usize..4,
            mid_ticks in 500i64..20_000,
            bids in proptest::collection::vec((1i64..200, 1i64..5_000_000), 1..30),
            asks in proptest::collection::vec((1i64..200, 1i64..5_000_000), 1..30),
            steps in proptest::collection::vec(
                (proptest::collection::vec((1i64..200, 0i64..5_000_000, proptest::bool::ANY), 0..24), 0u8..20, proptest::bool::ANY),
                1..40,
            ),
        ) {
            let t = Price::parse(TICKS[tick_i]).unwrap();
            let mut b = OrderBook::new(t, 40).unwrap();
            let mut changes = BookChanges::default();
            let mut tracker = ZoneTracker::default();
            let mut u = 1;
            let _ = b.apply_tracked(&snapshot(t, 40, mid_ticks, &bids, &asks, u), &mut changes);
            for (lv, kind, small) in steps {
                let lv = if small { &lv[..lv.len().min(3)] } else { &lv[..] };
                u += 1;
                // Mostly deltas with the next id; now and then a gap (refused) or a snapshot.
                let (action, id) = match kind {
                    0 => (BookAction::Snapshot, u),
                    1 => (BookAction::Delta, u + 1),
                    _ => (BookAction::Delta, u),
                };
                let (mut bl, mut al) = (Vec::new(), Vec::new());
                for &(off, q, bid) in lv {
                    let (v, sign) = if bid { (&mut bl, -1) } else { (&mut al, 1) };
                    if mid_ticks + sign * off > 0 {
                        v.push(Level { price: Price::from_ticks(mid_ticks + sign * off, t), qty: Qty::from_raw(q * 1_000) });
                    }
                }
                let upd = BookUpdate { symbol: Symbol::new("X"), action, depth: 40, bids: bl, asks: al, update_id: id, seq: id, cts_ms: None };
                if b.apply_tracked(&upd, &mut changes).is_err() {
                    // Refused: the book awaits a snapshot; resync with one.
                    u += 1;
                    let _ = b.apply_tracked(&snapshot(t, 40, mid_ticks, &bids, &asks, u), &mut changes);
                } else {
                    u = id;
                }
                let rescans = tracker.rescans;
                let got = if b.is_valid() { tracker.update(&b, Some(&changes)) } else {
                    tracker.reset();
                    BookFeatures::default()
                };
                let want = if b.is_valid() { BookFeatures::compute(&b) } else { BookFeatures::default() };
                proptest::prop_assert_eq!(got.mid.to_bits(), want.mid.to_bits());
                for i in 0..4 {
                    proptest::prop_assert_eq!(got.imb_zone[i].to_bits(), want.imb_zone[i].to_bits(), "zone {}", i);
                }
                proptest::prop_assert_eq!(got.bid_notional_0_5.to_bits(), want.bid_notional_0_5.to_bits());
                proptest::prop_assert_eq!(got.ask_notional_0_5.to_bits(), want.ask_notional_0_5.to_bits());
                proptest::prop_assert_eq!(got, want);
                if b.is_valid() && tracker.rescans == rescans {
                    KEPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    /// The tracker follows small deltas without a rescan, and rescans when the mid moves or the
    /// change list does not continue its sums.
    #[test]
    fn tracker_keeps_sums_from_changes_and_rescans_when_it_must() {
        let mut b = book_of("0.5", &[("99.5", "3"), ("99", "2")], &[("100.5", "1"), ("101", "4")]);
        let mut ch = BookChanges::default();
        let mut tr = ZoneTracker::default();
        tr.update(&b, None);
        assert!(tr.synced && tr.synced_u == 1);
        let delta = |u: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]| BookUpdate {
            symbol: Symbol::new("X"),
            action: BookAction::Delta,
            depth: 200,
            bids: bids
                .iter()
                .map(|(p, q)| Level { price: Price::parse(p).unwrap(), qty: Qty::parse(q).unwrap() })
                .collect(),
            asks: asks
                .iter()
                .map(|(p, q)| Level { price: Price::parse(p).unwrap(), qty: Qty::parse(q).unwrap() })
                .collect(),
            update_id: u,
            seq: u,
            cts_ms: None,
        };
        // Below the touch: the sums move by the change alone (the old bid depth 5 becomes 8).
        b.apply_tracked(&delta(2, &[("99", "5")], &[]), &mut ch).unwrap();
        assert_eq!(ch.changes().map(<[_]>::len), Some(1));
        let before = tr.bids;
        let f = tr.update(&b, Some(&ch));
        assert_eq!(tr.rescans, 1, "no rescan");
        assert_eq!(tr.bids.depth[3] - before.depth[3], 3 * 100_000_000);
        assert_eq!(f, BookFeatures::compute(&b));
        // A change list that does not continue the sums (here: an older one) is not used.
        let stale = ch.clone();
        b.apply_tracked(&delta(3, &[], &[("101", "0")]), &mut ch).unwrap();
        assert_eq!(tr.update(&b, Some(&stale)), BookFeatures::compute(&b));
        assert_eq!(tr.rescans, 2);
        // The touch moves: a rescan at the new mid.
        b.apply_tracked(&delta(4, &[("100", "1")], &[]), &mut ch).unwrap();
        let f = tr.update(&b, Some(&ch));
        assert_eq!(f.mid, 100.25);
        assert_eq!(f, BookFeatures::compute(&b));
        assert_eq!(tr.rescans, 3);
        // Without a change list: a rescan.
        b.apply_tracked(&delta(5, &[("98", "1")], &[]), &mut ch).unwrap();
        assert_eq!(tr.update(&b, None), BookFeatures::compute(&b));
        assert_eq!(tr.rescans, 4);
    }

    /// The property test above followed most of its updates without a rescan (run after it in
    /// the same process when both are selected; alone, it runs the property itself first).
    #[test]
    fn tracker_property_exercises_the_change_path() {
        tracker_equals_rescan_after_every_update();
        assert!(
            KEPT.load(std::sync::atomic::Ordering::Relaxed) > 100,
            "kept {}",
            KEPT.load(std::sync::atomic::Ordering::Relaxed)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// The floor separates the keys within a zone from those beyond it, for ticks from
        /// 1e-8 to 10 and mids from 1e-6 to 1e9.
        #[test]
        fn zone_floor_splits_in_from_out(
            tick_raw in proptest::prop_oneof![1i64..10, 1i64..1_000_000_000],
            mid_exp in -6i32..9,
            mid_frac in 1.0f64..10.0,
            zone in 0usize..4,
            bid in proptest::bool::ANY,
        ) {
            let tick = Price::from_raw(tick_raw);
            let mid = mid_frac * 10f64.powi(mid_exp);
            let side = if bid { Side::Buy } else { Side::Sell };
            let pct = ZONES_PCT[zone];
            let k = zone_floor(side, tick, mid, pct);
            proptest::prop_assert!(within(side, tick, mid, pct, k), "floor {} not within", k);
            proptest::prop_assert!(k == i64::MIN || !within(side, tick, mid, pct, k - 1), "below floor {} within", k);
            for d in [1i64, 2, 5, 100] {
                proptest::prop_assert!(within(side, tick, mid, pct, k.saturating_add(d)));
                proptest::prop_assert!(k.checked_sub(d).is_none_or(|x| !within(side, tick, mid, pct, x)));
            }
        }
    }

    /// At the ends of the key range the predicate stays monotone: the lowest keys are beyond
    /// every zone on both sides, the highest within it.
    #[test]
    fn within_at_the_ends_of_the_key_range() {
        let tick = Price::parse("0.01").unwrap();
        for side in [Side::Buy, Side::Sell] {
            assert!(!within(side, tick, 100.0, 1.0, i64::MIN), "{side:?}");
            assert!(!within(side, tick, 100.0, 1.0, i64::MIN + 1), "{side:?}");
            assert!(within(side, tick, 100.0, 1.0, i64::MAX), "{side:?}");
        }
    }

    #[test]
    fn int_to_f64_rounds_like_a_128_bit_conversion() {
        for x in [
            0i128,
            1,
            -1,
            (1 << 53) + 1,
            (1 << 62) + 3,
            i64::MAX as i128,
            i64::MIN as i128,
            i64::MAX as i128 + 1,
            1 << 100,
            -(1 << 90) - 7,
        ] {
            assert_eq!(int_to_f64(x).to_bits(), (x as f64).to_bits(), "{x}");
        }
    }

    #[test]
    fn imbalance_of_a_known_book() {
        // mid = 100.0. Zone limits: 0.1 % → [99.9, 100.1]; 0.25 % → [99.75, 100.25];
        // 0.5 % → [99.5, 100.5]; 1 % → [99, 101].
        let b = book_of(
            "0.05",
            &[("99.95", "3"), ("99.8", "2"), ("99.6", "5"), ("99.1", "10"), ("98", "100")],
            &[("100.05", "1"), ("100.2", "1"), ("100.4", "2"), ("100.9", "6"), ("102", "100")],
        );
        let f = BookFeatures::compute(&b);
        assert!((f.mid - 100.0).abs() < 1e-12);
        assert!((f.imb_l1 - (3.0 - 1.0) / 4.0).abs() < 1e-12);
        let want = [(3.0, 1.0), (5.0, 2.0), (10.0, 4.0), (20.0, 10.0)];
        for (i, (bq, aq)) in want.iter().enumerate() {
            assert!((f.imb_zone[i] - (bq - aq) / (bq + aq)).abs() < 1e-12, "zone {i}: {:?}", f.imb_zone);
        }
        assert!((f.bid_notional_0_5 - (99.95 * 3.0 + 99.8 * 2.0 + 99.6 * 5.0)).abs() < 1e-9);
        assert!((f.ask_notional_0_5 - (100.05 + 100.2 + 100.4 * 2.0)).abs() < 1e-9);
        assert!((f.spread_bps - 0.1 / 100.0 * 1e4).abs() < 1e-9);
        // Bids only: all zero.
        let e = BookFeatures::compute(&book_of("1", &[("10", "1")], &[]));
        assert_eq!(e, BookFeatures::default());
    }
}
