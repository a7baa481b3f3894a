//! Order-book imbalance: level-1 and zonal depth imbalance, plus the zone depths the pump engine
//! uses for thinning. One pass per side over the levels within the widest zone.
//!
//! * `imb_l1 = (bid1_qty − ask1_qty) / (bid1_qty + ask1_qty)` ∈ [-1, 1].
//! * `imb_z(p) = (B_p − A_p) / (B_p + A_p)` ∈ [-1, 1], where `B_p` (`A_p`) is the total bid
//!   (ask) size priced within `p` % of the mid, for `p` ∈ {0.1, 0.25, 0.5, 1.0}.
//!
//! Sizes are base units (both sides comparable). Every value is 0 when the book is empty.

use crate::domain::Side;
use crate::features::math::imbalance;
use crate::market::orderbook::OrderBook;

/// Zone half-widths in percent of the mid.
pub const ZONES_PCT: [f64; 4] = [0.1, 0.25, 0.5, 1.0];

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

/// Depth (base units) within each zone, plus notional within 0.5 %, for one side.
///
/// Levels come best first, so their distance from the mid never decreases (the float
/// expression is monotone in the price): the levels of a zone are a prefix of the levels of
/// the next wider one. One running sum therefore serves every zone, each taking its value
/// when the first level beyond it shows up. Bit-identical to adding each level to every zone
/// it lies in (the same additions in the same order from zero), at one addition per level
/// instead of four.
fn side_zones(book: &OrderBook, side: Side, mid: f64) -> ([f64; 4], f64) {
    let mut depth = [0.0f64; 4];
    let mut acc = 0.0f64;
    // Zones `open..` still take levels.
    let mut open = 0usize;
    let mut notional_05 = 0.0;
    let widest = ZONES_PCT[3];
    for l in book.top_n(side, usize::MAX) {
        let px = l.price.to_f64();
        let dist_pct = match side {
            Side::Buy => (mid - px) / mid * 100.0,
            Side::Sell => (px - mid) / mid * 100.0,
        };
        if dist_pct > widest {
            break;
        }
        while open < ZONES_PCT.len() && dist_pct > ZONES_PCT[open] {
            depth[open] = acc;
            open += 1;
        }
        let q = l.qty.to_f64();
        acc += q;
        if dist_pct <= 0.5 {
            notional_05 += px * q;
        }
    }
    for d in &mut depth[open..] {
        *d = acc;
    }
    (depth, notional_05)
}

/// One level as [`ZoneCache`] remembers it, with the running figures after it.
#[derive(Debug, Clone, Copy)]
struct ZoneLevel {
    /// Raw fixed-point price and size: the level is reused only when both are unchanged.
    price_raw: i64,
    qty_raw: i64,
    /// Distance from the mid in percent (same mid as the cache).
    dist_pct: f64,
    /// Depth sum (base units) over this level and the better ones.
    acc: f64,
    /// Notional within 0.5 % over this level and the better ones.
    notional_05: f64,
}

/// What one side's [`side_zones`] saw last time: the levels within the widest zone, best first,
/// with their running sums, for the mid of that time.
///
/// A book update changes a few levels; the levels better than the first changed one keep their
/// distances and running sums (the same float additions from zero in the same order), so only
/// the levels from the first changed one on are recomputed. A new mid recomputes the side.
#[derive(Debug, Clone, Default)]
pub struct ZoneCache {
    mid_bits: u64,
    levels: Vec<ZoneLevel>,
}

/// [`side_zones`] that reuses the unchanged best levels from `cache` and leaves it describing
/// this book. Bit-identical to [`side_zones`].
fn side_zones_cached(book: &OrderBook, side: Side, mid: f64, cache: &mut ZoneCache) -> ([f64; 4], f64) {
    if cache.mid_bits != mid.to_bits() {
        cache.mid_bits = mid.to_bits();
        cache.levels.clear();
    }
    let mut depth = [0.0f64; 4];
    let mut acc = 0.0f64;
    let mut open = 0usize;
    let mut notional_05 = 0.0;
    let widest = ZONES_PCT[3];
    // Levels of the cache still matching the book, best first.
    let mut matched = 0usize;
    let mut diverged = false;
    for l in book.top_n(side, usize::MAX) {
        let (price_raw, qty_raw) = (l.price.raw(), l.qty.raw());
        let reuse = if diverged {
            None
        } else {
            match cache.levels.get(matched) {
                Some(c) if c.price_raw == price_raw && c.qty_raw == qty_raw => Some(*c),
                _ => {
                    diverged = true;
                    cache.levels.truncate(matched);
                    None
                }
            }
        };
        let px = if reuse.is_some() { 0.0 } else { l.price.to_f64() };
        let dist_pct = match reuse {
            Some(c) => c.dist_pct,
            None => match side {
                Side::Buy => (mid - px) / mid * 100.0,
                Side::Sell => (px - mid) / mid * 100.0,
            },
        };
        if dist_pct > widest {
            break;
        }
        while open < ZONES_PCT.len() && dist_pct > ZONES_PCT[open] {
            depth[open] = acc;
            open += 1;
        }
        match reuse {
            Some(c) => {
                acc = c.acc;
                notional_05 = c.notional_05;
                matched += 1;
            }
            None => {
                let q = l.qty.to_f64();
                acc += q;
                if dist_pct <= 0.5 {
                    notional_05 += px * q;
                }
                cache.levels.push(ZoneLevel { price_raw, qty_raw, dist_pct, acc, notional_05 });
            }
        }
    }
    if !diverged {
        // The side ended (or left the widest zone) before the cached levels did.
        cache.levels.truncate(matched);
    }
    for d in &mut depth[open..] {
        *d = acc;
    }
    (depth, notional_05)
}

/// The per-side [`ZoneCache`]s of one symbol's book (see [`BookFeatures::compute_cached`]).
#[derive(Debug, Clone, Default)]
pub struct BookFeaturesCache {
    bids: ZoneCache,
    asks: ZoneCache,
}

impl BookFeatures {
    /// Computes every figure from a book. Cost O(levels within 1 % of the mid).
    pub fn compute(book: &OrderBook) -> BookFeatures {
        let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) else {
            return BookFeatures::default();
        };
        let mid = (b.price.to_f64() + a.price.to_f64()) / 2.0;
        if mid <= 0.0 {
            return BookFeatures::default();
        }
        let zones = (side_zones(book, Side::Buy, mid), side_zones(book, Side::Sell, mid));
        Self::assemble(book, mid, zones)
    }

    /// [`BookFeatures::compute`] updated from what changed since the previous call with the
    /// same `cache`: per side, the levels before the first changed one are not revisited (a
    /// new mid recomputes the side). Bit-identical to `compute`; `cache` belongs to one book.
    pub fn compute_cached(book: &OrderBook, cache: &mut BookFeaturesCache) -> BookFeatures {
        let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) else {
            return BookFeatures::default();
        };
        let mid = (b.price.to_f64() + a.price.to_f64()) / 2.0;
        if mid <= 0.0 {
            return BookFeatures::default();
        }
        let zones = (
            side_zones_cached(book, Side::Buy, mid, &mut cache.bids),
            side_zones_cached(book, Side::Sell, mid, &mut cache.asks),
        );
        Self::assemble(book, mid, zones)
    }

    /// The figures from both sides' zone depths and notionals (`(bids, asks)`).
    fn assemble(book: &OrderBook, mid: f64, zones: (([f64; 4], f64), ([f64; 4], f64))) -> BookFeatures {
        let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) else {
            return BookFeatures::default();
        };
        let ((bz, bn), (az, an)) = zones;
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

    /// The former per-zone accumulation, kept as the oracle of [`side_zones`].
    fn side_zones_oracle(book: &OrderBook, side: Side, mid: f64) -> ([f64; 4], f64) {
        let mut depth = [0.0f64; 4];
        let mut notional_05 = 0.0;
        let widest = ZONES_PCT[3];
        for l in book.top_n(side, usize::MAX) {
            let px = l.price.to_f64();
            let dist_pct = match side {
                Side::Buy => (mid - px) / mid * 100.0,
                Side::Sell => (px - mid) / mid * 100.0,
            };
            if dist_pct > widest {
                break;
            }
            let q = l.qty.to_f64();
            for (z, d) in ZONES_PCT.iter().zip(depth.iter_mut()) {
                if dist_pct <= *z {
                    *d += q;
                }
            }
            if dist_pct <= 0.5 {
                notional_05 += px * q;
            }
        }
        (depth, notional_05)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Random books (ticks from 1e-4 to 10, levels spread across and beyond the 1 % zone):
        /// the one-sum zones equal the per-zone sums bit for bit.
        #[test]
        fn zones_equal_per_zone_sums(
            tick_i in 0usize..4,
            mid_ticks in 50i64..20_000,
            bids in proptest::collection::vec((1i64..400, 1i64..5_000_000), 0..60),
            asks in proptest::collection::vec((1i64..400, 1i64..5_000_000), 0..60),
        ) {
            let tick = ["0.0001", "0.01", "0.5", "10"][tick_i];
            let t = Price::parse(tick).unwrap();
            let lv = |v: &[(i64, i64)], sign: i64| -> Vec<Level> {
                v.iter()
                    .filter(|(off, _)| mid_ticks + sign * off > 0)
                    .map(|(off, q)| Level { price: Price::from_ticks(mid_ticks + sign * off, t), qty: Qty::from_raw(*q * 1_000) })
                    .collect()
            };
            let mut b = OrderBook::new(t, 200).unwrap();
            b.apply(&BookUpdate {
                symbol: Symbol::new("X"),
                action: BookAction::Snapshot,
                depth: 200,
                bids: lv(&bids, -1),
                asks: lv(&asks, 1),
                update_id: 1,
                seq: 1,
                cts_ms: None,
            })
            .unwrap();
            if let Some(mid) = b.mid_f64() {
                for side in [Side::Buy, Side::Sell] {
                    let (d, n) = side_zones(&b, side, mid);
                    let (od, on) = side_zones_oracle(&b, side, mid);
                    for i in 0..4 {
                        proptest::prop_assert_eq!(d[i].to_bits(), od[i].to_bits(), "zone {}", i);
                    }
                    proptest::prop_assert_eq!(n.to_bits(), on.to_bits());
                }
            }
        }
    }

    fn feature_bits(f: &BookFeatures) -> Vec<u64> {
        let mut v = vec![f.mid.to_bits(), f.spread_bps.to_bits(), f.microprice.to_bits(), f.imb_l1.to_bits()];
        v.extend(f.imb_zone.iter().map(|x| x.to_bits()));
        v.extend([f.bid_notional_0_5.to_bits(), f.ask_notional_0_5.to_bits()]);
        v
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
        /// A random stream of deltas (touch moves, deletes, inserts beyond the 1 % zone, the
        /// occasional new snapshot): after every update the cached features equal a from-scratch
        /// `compute` bit for bit.
        #[test]
        fn cached_features_equal_from_scratch(
            tick_i in 0usize..3,
            mid in 200i64..5_000,
            steps in proptest::collection::vec(
                (proptest::collection::vec((proptest::bool::ANY, 1i64..80, 0i64..4_000), 1..8), 0u8..30),
                1..60,
            ),
        ) {
            let t = Price::parse(["0.0001", "0.5", "10"][tick_i]).unwrap();
            let lvl = |tk: i64, q: i64| Level { price: Price::from_ticks(tk, t), qty: Qty::from_raw(q * 1_000) };
            let snap = |seq: u64| BookUpdate {
                symbol: Symbol::new("X"),
                action: BookAction::Snapshot,
                depth: 200,
                bids: (1..40).map(|k| lvl(mid - k, 100 + k)).collect(),
                asks: (1..40).map(|k| lvl(mid + k, 200 + k)).collect(),
                update_id: seq,
                seq,
                cts_ms: None,
            };
            let mut b = OrderBook::new(t, 200).unwrap();
            b.apply(&snap(1)).unwrap();
            let mut cache = BookFeaturesCache::default();
            let mut seq = 1u64;
            for (levels, kind) in steps {
                seq += 1;
                let upd = if kind == 0 {
                    snap(seq)
                } else {
                    let (mut bids, mut asks) = (Vec::new(), Vec::new());
                    for (bid, off, q) in levels {
                        // Sizes of 0 delete; offsets past the touch cross nothing (the book
                        // keeps bids below asks by construction of the offsets).
                        if bid { bids.push(lvl(mid - off, q)) } else { asks.push(lvl(mid + off, q)) }
                    }
                    BookUpdate { action: BookAction::Delta, bids, asks, update_id: seq, seq, ..snap(seq) }
                };
                if b.apply(&upd).is_err() {
                    continue;
                }
                let cached = BookFeatures::compute_cached(&b, &mut cache);
                let scratch = BookFeatures::compute(&b);
                proptest::prop_assert_eq!(feature_bits(&cached), feature_bits(&scratch));
            }
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
