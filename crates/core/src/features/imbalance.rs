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
        let (bz, bn) = side_zones(book, Side::Buy, mid);
        let (az, an) = side_zones(book, Side::Sell, mid);
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
