use super::*;
use crate::domain::Symbol;
use crate::testkit::{lv, p, q};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn upd(action: BookAction, u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
    BookUpdate {
        symbol: Symbol::new("BTCUSDT"),
        action,
        depth: 50,
        bids,
        asks,
        update_id: u,
        seq: u * 10,
        cts_ms: Some(1_700_000_000_000 + u as i64),
    }
}
fn snap(u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
    upd(BookAction::Snapshot, u, bids, asks)
}
fn delta(u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
    upd(BookAction::Delta, u, bids, asks)
}
fn book() -> OrderBook {
    let mut b = OrderBook::new(p("0.5"), 50).unwrap();
    b.apply(&snap(
        100,
        vec![lv("100", "1"), lv("99.5", "2"), lv("99", "3")],
        vec![lv("100.5", "4"), lv("101", "5"), lv("101.5", "6")],
    ))
    .unwrap();
    b
}

#[test]
fn touch_changed_is_exact_and_one_sided_deltas_are_checked() {
    let mut b = book();
    let mut u = 100;
    let mut d = |b: &mut OrderBook, bids: Vec<Level>, asks: Vec<Level>| {
        u += 1;
        b.apply(&delta(u, bids, asks)).map(|o| o.touch_changed)
    };
    // Below the touch on one side only: the best is never loaded and did not change.
    assert_eq!(d(&mut b, vec![lv("99", "7"), lv("98", "1")], vec![]), Ok(false));
    assert_eq!(d(&mut b, vec![], vec![lv("101.5", "0")]), Ok(false));
    // At the best with the same size, or deleted and put back as it was: unchanged.
    assert_eq!(d(&mut b, vec![lv("100", "1")], vec![]), Ok(false));
    assert_eq!(d(&mut b, vec![], vec![lv("100.5", "0"), lv("100.5", "4")]), Ok(false));
    // Below the touch first, then at it with a new size: changed.
    assert_eq!(d(&mut b, vec![lv("99.5", "9"), lv("100", "2")], vec![]), Ok(true));
    // A new best above, or the best deleted: changed.
    assert_eq!(d(&mut b, vec![], vec![lv("100.5", "0")]), Ok(true));
    assert_eq!(b.best_ask(), Some(lv("101", "5")));
    assert_eq!(d(&mut b, vec![lv("100.5", "3")], vec![]), Ok(true));
    assert_eq!(b.best_bid(), Some(lv("100.5", "3")));
    // A one-sided delta that crosses the untouched other side is refused.
    let best_ask = b.best_ask().unwrap();
    assert!(matches!(d(&mut b, vec![best_ask], vec![]), Err(BookError::Crossed { .. })));
    assert!(!b.is_valid());
}

#[test]
fn hot_fields_fill_the_first_four_cache_lines() {
    use std::mem::{align_of, offset_of, size_of};
    assert_eq!(align_of::<OrderBook>(), 64);
    assert_eq!(offset_of!(OrderBook, bids), 64);
    assert!(offset_of!(OrderBook, tick) + size_of::<Price>() <= 256);
    assert!(offset_of!(OrderBook, scratch_delta) >= offset_of!(OrderBook, tick));
}

#[test]
fn snapshot_and_accessors() {
    let b = book();
    assert!(b.is_valid());
    assert_eq!(b.best_bid(), Some(lv("100", "1")));
    assert_eq!(b.best_ask(), Some(lv("100.5", "4")));
    assert_eq!(b.mid(), Some(p("100.25")));
    assert_eq!(b.spread(), Some(p("0.5")));
    assert_eq!(b.spread_ticks(), Some(1));
    let bps = b.spread_bps().unwrap();
    assert!((bps - 0.5 / 100.25 * 1e4).abs() < 1e-9);
    assert_eq!(b.level_count(Side::Buy), 3);
    assert_eq!(b.level_count(Side::Sell), 3);
    assert_eq!(b.last_update_id(), 100);
    assert_eq!(b.seq(), 1000);
    assert_eq!(b.last_cts_ms(), Some(1_700_000_000_100));
    let bids: Vec<_> = b.top_n(Side::Buy, 2).collect();
    assert_eq!(bids, vec![lv("100", "1"), lv("99.5", "2")]);
    let asks: Vec<_> = b.top_n(Side::Sell, 10).collect();
    assert_eq!(asks, vec![lv("100.5", "4"), lv("101", "5"), lv("101.5", "6")]);
    assert_eq!(b.depth_top_n(Side::Sell, 2), q("9"));
    assert!((b.notional_top_n(Side::Buy, 2) - (100.0 + 199.0)).abs() < 1e-9);
    // mid 100.25: 0.5 % → [99.74875, 100.75125]
    assert_eq!(b.depth_within(Side::Buy, 0.5), q("1"));
    assert_eq!(b.depth_within(Side::Sell, 0.5), q("4"));
    // 0.75 % → ask limit 101.0019, 1 % → bid limit 99.2475.
    assert_eq!(b.depth_within(Side::Sell, 0.75), q("9"));
    assert_eq!(b.depth_within(Side::Buy, 1.0), q("3"));
    assert_eq!(b.depth_within(Side::Buy, 50.0), q("6"));
    assert!((b.notional_within(Side::Sell, 0.75) - (100.5 * 4.0 + 101.0 * 5.0)).abs() < 1e-9);
    assert_eq!(OrderBook::new(p("1"), 5).unwrap().depth_within(Side::Buy, 1.0), Qty::ZERO);
    let imb = b.imbalance_top_n(1).unwrap();
    assert!((imb - (1.0 - 4.0) / 5.0).abs() < 1e-12);
    let mp = b.microprice().unwrap();
    assert!((mp - (100.0 * 4.0 + 100.5 * 1.0) / 5.0).abs() < 1e-9);
    assert_eq!(b.best(Side::Sell), b.best_ask());
}

#[test]
fn delta_updates_inserts_and_deletes() {
    let mut b = book();
    let out =
        b.apply(&delta(101, vec![lv("100", "0"), lv("98.5", "7")], vec![lv("101", "1.5"), lv("100.5", "0")])).unwrap();
    assert_eq!(out, ApplyOutcome { kind: ApplyKind::Delta, levels: 4, touch_changed: true });
    assert_eq!(b.best_bid(), Some(lv("99.5", "2")));
    assert_eq!(b.best_ask(), Some(lv("101", "1.5")));
    let (bids, asks) = b.to_levels();
    assert_eq!(bids, vec![lv("99.5", "2"), lv("99", "3"), lv("98.5", "7")]);
    assert_eq!(asks, vec![lv("101", "1.5"), lv("101.5", "6")]);
    // Deleting an absent level is fine; a far update leaves the touch alone.
    let out = b.apply(&delta(102, vec![lv("50", "0")], vec![lv("101.5", "1")])).unwrap();
    assert!(!out.touch_changed);
    assert_eq!(b.level_count(Side::Buy), 3);
    assert_eq!(b.last_update_id(), 102);
    // Improving the touch inside the spread.
    b.apply(&delta(103, vec![lv("100", "0.1")], vec![lv("100.5", "0.2")])).unwrap();
    assert_eq!(b.spread_ticks(), Some(1));
    assert_eq!(b.best_bid(), Some(lv("100", "0.1")));
}

#[test]
fn delta_before_snapshot_is_refused() {
    let mut b = OrderBook::new(p("0.5"), 50).unwrap();
    assert!(!b.is_valid());
    assert_eq!(b.apply(&delta(5, vec![lv("1", "1")], vec![])), Err(BookError::NoSnapshot { got: 5 }));
    assert!(!b.is_valid());
    assert_eq!(b.level_count(Side::Buy), 0);
}

#[test]
fn stale_and_duplicate_deltas_invalidate() {
    for u in [99, 100] {
        let mut b = book();
        assert_eq!(b.apply(&delta(u, vec![], vec![])), Err(BookError::Stale { last: 100, got: u }));
        assert!(!b.is_valid());
        assert_eq!(b.best_bid(), None, "book cleared after error");
        // Further deltas are refused until a snapshot.
        assert_eq!(b.apply(&delta(101, vec![], vec![])), Err(BookError::NoSnapshot { got: 101 }));
        b.apply(&snap(120, vec![lv("10", "1")], vec![lv("11", "1")])).unwrap();
        assert!(b.is_valid());
        b.apply(&delta(121, vec![], vec![])).unwrap();
    }
}

#[test]
fn gap_invalidates() {
    let mut b = book();
    assert_eq!(b.apply(&delta(102, vec![], vec![])), Err(BookError::Gap { last: 100, got: 102 }));
    assert!(!b.is_valid());
    assert_eq!(b.last_update_id(), 100);
}

#[test]
fn off_tick_and_invalid_levels() {
    let mut b = book();
    let e = b.apply(&delta(101, vec![lv("99.7", "1")], vec![]));
    assert_eq!(e, Err(BookError::OffTick { price: p("99.7"), tick: p("0.5") }));
    assert!(!b.is_valid());

    let mut b = book();
    let e = b.apply(&delta(101, vec![], vec![lv("101", "-1")]));
    assert_eq!(e, Err(BookError::InvalidLevel { price: p("101"), qty: q("-1") }));
    assert!(!b.is_valid());

    let mut b = book();
    let e = b.apply(&delta(101, vec![lv("0", "1")], vec![]));
    assert!(matches!(e, Err(BookError::InvalidLevel { .. })));

    let mut b = OrderBook::new(p("0.5"), 50).unwrap();
    let e = b.apply(&snap(1, vec![lv("10.25", "1")], vec![]));
    assert!(matches!(e, Err(BookError::OffTick { .. })));
    assert!(!b.is_valid());
    assert_eq!(b.level_count(Side::Buy), 0);
}

#[test]
fn crossed_or_locked_invalidates() {
    let mut b = book();
    let e = b.apply(&delta(101, vec![lv("100.5", "1")], vec![]));
    assert_eq!(e, Err(BookError::Crossed { bid: p("100.5"), ask: p("100.5") }));
    assert!(!b.is_valid());

    let mut b = book();
    let e = b.apply(&delta(101, vec![], vec![lv("99.5", "1")]));
    assert_eq!(e, Err(BookError::Crossed { bid: p("100"), ask: p("99.5") }));

    let mut b = OrderBook::new(p("0.5"), 50).unwrap();
    let e = b.apply(&snap(7, vec![lv("10", "1")], vec![lv("9.5", "1")]));
    assert!(matches!(e, Err(BookError::Crossed { .. })));
    assert!(!b.is_valid());
}

#[test]
fn snapshot_sequencing() {
    // u == 1 after a later id: service restart, reset and accept.
    let mut b = book();
    let out = b.apply(&snap(1, vec![lv("50", "1")], vec![lv("51", "1")])).unwrap();
    assert_eq!(out.kind, ApplyKind::Restart);
    assert!(b.is_valid());
    assert_eq!(b.last_update_id(), 1);
    assert_eq!(b.to_levels(), (vec![lv("50", "1")], vec![lv("51", "1")]));
    b.apply(&delta(2, vec![lv("49.5", "1")], vec![])).unwrap();

    // Same u resent (depth-1 keep-alive): accepted.
    let mut b = book();
    let out = b.apply(&snap(100, vec![lv("100", "9")], vec![lv("100.5", "4")])).unwrap();
    assert_eq!(out.kind, ApplyKind::Resend);
    assert!(out.touch_changed);
    assert_eq!(b.level_count(Side::Buy), 1);
    b.apply(&delta(101, vec![], vec![])).unwrap();

    // Older snapshot on a valid book: stale.
    let mut b = book();
    assert_eq!(b.apply(&snap(50, vec![], vec![])), Err(BookError::Stale { last: 100, got: 50 }));
    assert!(!b.is_valid());
    // Once invalid, any snapshot resyncs.
    let out = b.apply(&snap(50, vec![lv("1", "1")], vec![])).unwrap();
    assert_eq!(out.kind, ApplyKind::Snapshot);
    assert!(b.is_valid());

    // Newer snapshot replaces everything.
    let mut b = book();
    b.apply(&snap(500, vec![lv("90", "1")], vec![])).unwrap();
    assert_eq!(b.to_levels(), (vec![lv("90", "1")], vec![]));
}

#[test]
fn depth1_snapshot_stream() {
    let mut b = OrderBook::new(p("0.1"), 1).unwrap();
    for (u, bid, ask) in [(10, "5", "5.1"), (10, "5", "5.1"), (11, "5.1", "5.2"), (11, "5.1", "5.2")] {
        b.apply(&snap(u, vec![lv(bid, "1")], vec![lv(ask, "2")])).unwrap();
        assert_eq!(b.best_bid(), Some(lv(bid, "1")));
        assert_eq!(b.best_ask(), Some(lv(ask, "2")));
    }
    assert_eq!(b.level_count(Side::Buy), 1);
}

#[test]
fn depth_is_capped_keeping_the_best() {
    let mut b = OrderBook::new(p("1"), 3).unwrap();
    let bids: Vec<_> = (0..6).map(|i| lv(&(100 - i).to_string(), "1")).collect();
    let asks: Vec<_> = (0..6).map(|i| lv(&(101 + i).to_string(), "1")).collect();
    b.apply(&snap(1, bids, asks)).unwrap();
    let (bids, asks) = b.to_levels();
    assert_eq!(bids.iter().map(|l| l.price).collect::<Vec<_>>(), vec![p("100"), p("99"), p("98")]);
    assert_eq!(asks.iter().map(|l| l.price).collect::<Vec<_>>(), vec![p("101"), p("102"), p("103")]);
    // A better bid pushes out the worst; truncation happens after the whole message.
    b.apply(&delta(2, vec![lv("100.0", "2"), lv("97", "5")], vec![])).unwrap();
    assert_eq!(b.top_n(Side::Buy, 5).map(|l| l.price).collect::<Vec<_>>(), vec![p("100"), p("99"), p("98")]);
    b.apply(&delta(3, vec![lv("99", "0"), lv("97", "5")], vec![])).unwrap();
    assert_eq!(b.top_n(Side::Buy, 5).map(|l| l.price).collect::<Vec<_>>(), vec![p("100"), p("98"), p("97")]);
}

#[test]
fn unsorted_snapshot_with_duplicates_is_normalised() {
    let mut b = OrderBook::new(p("1"), 10).unwrap();
    b.apply(&snap(
        3,
        vec![lv("98", "1"), lv("100", "1"), lv("98", "4"), lv("99", "0")],
        vec![lv("103", "1"), lv("101", "2")],
    ))
    .unwrap();
    assert_eq!(b.to_levels(), (vec![lv("100", "1"), lv("98", "4")], vec![lv("101", "2"), lv("103", "1")]));
}

#[test]
fn construction_and_tick_change() {
    assert_eq!(OrderBook::new(Price::ZERO, 5).unwrap_err(), BookError::InvalidTick(Price::ZERO));
    assert_eq!(OrderBook::new(p("1"), 0).unwrap_err(), BookError::InvalidDepth(0));
    let mut b = book();
    b.set_tick(p("0.1")).unwrap();
    assert!(!b.is_valid());
    assert_eq!(b.tick_size(), p("0.1"));
    assert!(b.set_tick(p("-1")).is_err());
    b.apply(&snap(200, vec![lv("99.9", "1")], vec![lv("100.1", "1")])).unwrap();
    assert_eq!(b.spread_ticks(), Some(2));
}

#[test]
fn levels_equal_compares_levels_only() {
    let a = book();
    let mut b = OrderBook::new(p("0.5"), 50).unwrap();
    let (bids, asks) = a.to_levels();
    b.apply(&snap(7, bids, asks)).unwrap();
    assert!(a.levels_equal(&b));
    b.apply(&delta(8, vec![lv("99", "3.5")], vec![])).unwrap();
    assert!(!a.levels_equal(&b));
}

#[test]
fn oversized_updates_are_refused_before_anything_is_applied() {
    // depth 50 (the update's and the book's): a snapshot may carry 50 levels per side, a
    // delta 100.
    let ladder = |from: i64, n: i64, step: i64| -> Vec<Level> {
        (0..n).map(|i| Level { price: Price::from_ticks(from + i * step, p("0.5")), qty: q("1") }).collect()
    };
    let mut b = book();
    let e = b.apply(&delta(101, ladder(190, 101, -1), vec![]));
    assert_eq!(e, Err(BookError::Oversized { levels: 101, max: 100 }));
    assert!(!b.is_valid() && b.level_count(Side::Buy) == 0, "refused and awaiting a resync");
    assert_eq!(b.apply(&delta(102, vec![], vec![])), Err(BookError::NoSnapshot { got: 102 }));
    let mut b = OrderBook::new(p("0.5"), 50).unwrap();
    let e = b.apply(&snap(1, ladder(190, 10, -1), ladder(201, 51, 1)));
    assert_eq!(e, Err(BookError::Oversized { levels: 51, max: 50 }));
    assert!(!b.is_valid());
    // At the limits both are accepted.
    b.apply(&snap(2, ladder(200, 50, -1), ladder(201, 50, 1))).unwrap();
    b.apply(&delta(3, ladder(200, 100, -1), ladder(201, 100, 1))).unwrap();
    assert_eq!((b.level_count(Side::Buy), b.level_count(Side::Sell)), (50, 50));
    // A refused level anywhere in a large delta leaves no trace either.
    let mut b = book();
    let mut bids = ladder(190, 60, -1);
    bids[59].qty = q("-1");
    assert!(matches!(b.apply(&delta(101, bids, vec![])), Err(BookError::InvalidLevel { .. })));
    assert_eq!(b.level_count(Side::Buy), 0);
}

#[test]
fn a_large_legal_delta_equals_applying_it_level_by_level() {
    // depth 1000: deltas of up to 2000 levels per side, unsorted, with repeated prices and
    // deletes, against the BTreeMap model applied in message order.
    let tick = p("0.01");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let depth = 1000;
    let mut book = OrderBook::new(tick, depth).unwrap();
    let mut model = Model::default();
    let side = |next: &mut dyn FnMut(u64) -> u64, lo: i64, n: usize| -> Vec<(i64, i64)> {
        (0..n).map(|_| (lo + next(3000) as i64, if next(4) == 0 { 0 } else { 1 + next(1_000_000) as i64 })).collect()
    };
    let sb: Vec<_> = side(&mut next, 1, 1000).into_iter().filter(|l| l.1 != 0).collect();
    let sa: Vec<_> = side(&mut next, 3001, 1000).into_iter().filter(|l| l.1 != 0).collect();
    model.apply(&sb, &sa, depth);
    let mut s = snap(1, to_levels(&sb, tick), to_levels(&sa, tick));
    s.depth = depth as u16;
    book.apply(&s).unwrap();
    assert_eq!(book.to_levels(), model.levels(tick));
    for u in 2..12u64 {
        let n = 1 + next(2000) as usize;
        let (db, da) = (side(&mut next, 1, n), side(&mut next, 3001, 2000 - n + 1));
        let mut d = delta(u, to_levels(&db, tick), to_levels(&da, tick));
        d.depth = depth as u16;
        book.apply(&d).unwrap();
        model.apply(&db, &da, depth);
        assert_eq!(book.to_levels(), model.levels(tick), "after u={u}");
    }
    assert!(book.level_count(Side::Buy) > 500 && book.level_count(Side::Sell) > 500);
}

#[test]
fn a_delta_at_the_size_cap_applies_and_keeps_the_depth() {
    // The largest delta any depth allows: 131 070 bid levels (2 × depth 65 535), each a
    // new level below the touch. One Vec insert per level took seconds at this size; the cost
    // is measured in benches/market.rs (`delta_replace_all`, `delta_160k_levels_refused`), not
    // asserted here with a wall clock.
    let tick = p("1");
    let depth = 65_535;
    let mut b = OrderBook::new(tick, depth).unwrap();
    let mut s = snap(1, vec![lv("1", "1")], vec![lv("1000000", "1")]);
    s.depth = 65_535;
    b.apply(&s).unwrap();
    let n = 131_070;
    let bids: Vec<Level> = (0..n).map(|i| Level { price: Price::from_ticks(2 + 2 * i, tick), qty: q("1") }).collect();
    let mut d = delta(2, bids, vec![]);
    d.depth = 65_535;
    b.apply(&d).unwrap();
    assert_eq!(b.level_count(Side::Buy), depth);
    assert_eq!(b.best_bid().map(|l| l.price), Some(Price::from_ticks(2 + 2 * (n - 1), tick)));
}

/// Reference model: BTreeMap by tick, truncated per message.
#[derive(Default)]
struct Model {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}
impl Model {
    fn apply(&mut self, bids: &[(i64, i64)], asks: &[(i64, i64)], depth: usize) {
        for &(t, qv) in bids {
            if qv == 0 {
                self.bids.remove(&t);
            } else {
                self.bids.insert(t, qv);
            }
        }
        for &(t, qv) in asks {
            if qv == 0 {
                self.asks.remove(&t);
            } else {
                self.asks.insert(t, qv);
            }
        }
        while self.bids.len() > depth {
            let k = *self.bids.keys().next().unwrap();
            self.bids.remove(&k);
        }
        while self.asks.len() > depth {
            let k = *self.asks.keys().next_back().unwrap();
            self.asks.remove(&k);
        }
    }
    fn levels(&self, tick: Price) -> (Vec<Level>, Vec<Level>) {
        let f = |(t, qv): (&i64, &i64)| Level { price: Price::from_ticks(*t, tick), qty: Qty::from_raw(*qv) };
        (self.bids.iter().rev().map(f).collect(), self.asks.iter().map(f).collect())
    }
}

fn to_levels(v: &[(i64, i64)], tick: Price) -> Vec<Level> {
    v.iter().map(|&(t, qv)| Level { price: Price::from_ticks(t, tick), qty: Qty::from_raw(qv) }).collect()
}

// Bids live in ticks [1, 60), asks in [60, 120): never crossed, so every delta is accepted.
fn side_levels(lo: i64, hi: i64, max: usize) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((lo..hi, prop_oneof![1 => Just(0i64), 3 => 1i64..1_000_000]), 0..max)
}

/// One generated message of [`far_levels_and_window_moves_match_the_model`]: snapshot or
/// not, the centre's move, and (offset from the centre, size) per bid and ask.
type FarMsg = (bool, i64, Vec<(i64, i64)>, Vec<(i64, i64)>);

/// Offsets near the touch, around a window's edge and far away, so levels land in the dense
/// window, below it and (after a jump) above it.
fn far_side(max: usize) -> impl Strategy<Value = Vec<(i64, i64)>> {
    let off = prop_oneof![6 => 1i64..40, 2 => 150i64..700, 1 => 2_000i64..40_000];
    prop::collection::vec((off, prop_oneof![1 => Just(0i64), 3 => 1i64..1_000_000]), 0..max)
}

fn far_msg() -> impl Strategy<Value = FarMsg> {
    let jump = prop_oneof![6 => -3i64..=3, 2 => -400i64..=400, 1 => -6_000i64..=6_000];
    (prop::bool::weighted(0.1), jump, far_side(40), far_side(40))
}

/// The book's contract in a BTreeMap: snapshots (zeros skipped), deltas in message order,
/// the depth cap, and a crossed result refused and awaiting a snapshot.
#[derive(Default)]
struct CheckedModel {
    book: Model,
    valid: bool,
}
impl CheckedModel {
    /// What the book must answer: `Ok` or the error kind's name.
    fn apply(
        &mut self,
        snapshot: bool,
        bids: &[(i64, i64)],
        asks: &[(i64, i64)],
        depth: usize,
    ) -> Result<(), &'static str> {
        if snapshot {
            self.book = Model::default();
            let nz = |v: &[(i64, i64)]| v.iter().filter(|l| l.1 != 0).copied().collect::<Vec<_>>();
            self.book.apply(&nz(bids), &nz(asks), depth);
        } else if !self.valid {
            return Err("no snapshot");
        } else {
            self.book.apply(bids, asks, depth);
        }
        if let (Some(b), Some(a)) = (self.book.bids.keys().next_back(), self.book.asks.keys().next()) {
            if b >= a {
                self.book = Model::default();
                self.valid = false;
                return Err("crossed");
            }
        }
        self.valid = true;
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn far_levels_and_window_moves_match_the_model(
        depth in 1usize..80,
        msgs in prop::collection::vec(far_msg(), 1..60),
    ) {
        let tick = p("0.0001");
        let mut book = OrderBook::new(tick, depth).unwrap();
        let mut model = CheckedModel::default();
        let mut centre = 1_000_000i64;
        for (n, (snapshot, jump, db, da)) in msgs.iter().enumerate() {
            // The first message is always a snapshot.
            let snapshot = *snapshot || n == 0;
            centre += jump;
            let bids: Vec<(i64, i64)> = db.iter().map(|&(o, q)| (centre - o, q)).collect();
            let asks: Vec<(i64, i64)> = da.iter().map(|&(o, q)| (centre + o, q)).collect();
            let u = 10 + n as u64;
            let msg = if snapshot { snap(u, to_levels(&bids, tick), to_levels(&asks, tick)) } else { delta(u, to_levels(&bids, tick), to_levels(&asks, tick)) };
            let want = model.apply(snapshot, &bids, &asks, depth);
            let got = book.apply(&msg).map(|_| ()).map_err(|e| match e {
                BookError::NoSnapshot { .. } => "no snapshot",
                BookError::Crossed { .. } => "crossed",
                _ => "other",
            });
            prop_assert_eq!(got, want, "message {}", n);
            prop_assert_eq!(book.is_valid(), model.valid);
            prop_assert_eq!(book.to_levels(), model.book.levels(tick), "message {}", n);
            prop_assert_eq!(book.best_bid(), model.book.levels(tick).0.first().copied());
            prop_assert_eq!(book.best_ask(), model.book.levels(tick).1.first().copied());
            prop_assert_eq!(book.level_count(Side::Buy), model.book.bids.len());
            prop_assert_eq!(book.level_count(Side::Sell), model.book.asks.len());
            prop_assert_eq!(book.depth_top_n(Side::Buy, 3), Qty::from_raw(model.book.bids.values().rev().take(3).sum()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn deltas_equal_rebuild_from_snapshot(
        depth in 1usize..12,
        init_b in side_levels(1, 60, 20),
        init_a in side_levels(60, 120, 20),
        deltas in prop::collection::vec((side_levels(1, 60, 8), side_levels(60, 120, 8)), 0..40),
    ) {
        let tick = p("0.01");
        let mut book = OrderBook::new(tick, depth).unwrap();
        let mut model = Model::default();
        // Snapshot: zero sizes are skipped, a repeated price keeps its last occurrence.
        let sb: Vec<_> = init_b.iter().filter(|l| l.1 != 0).copied().collect();
        let sa: Vec<_> = init_a.iter().filter(|l| l.1 != 0).copied().collect();
        model.apply(&sb, &sa, depth);
        book.apply(&snap(1000, to_levels(&init_b, tick), to_levels(&init_a, tick))).unwrap();
        prop_assert_eq!(book.to_levels(), model.levels(tick));
        let mut u = 1000;
        for (db, da) in &deltas {
            u += 1;
            book.apply(&delta(u, to_levels(db, tick), to_levels(da, tick))).unwrap();
            model.apply(db, da, depth);
            prop_assert_eq!(book.to_levels(), model.levels(tick));
            prop_assert!(book.level_count(Side::Buy) <= depth && book.level_count(Side::Sell) <= depth);
        }
        // Rebuilding from the final state as a snapshot gives the same book.
        let (bids, asks) = book.to_levels();
        let mut rebuilt = OrderBook::new(tick, depth).unwrap();
        rebuilt.apply(&snap(u, bids, asks)).unwrap();
        prop_assert!(rebuilt.levels_equal(&book));
        prop_assert_eq!(rebuilt.best_bid(), book.best_bid());
        prop_assert_eq!(rebuilt.best_ask(), book.best_ask());
        prop_assert_eq!(book.last_update_id(), u);
    }
}

#[test]
fn apply_tracked_lists_a_small_delta_and_nothing_else() {
    let mut b = book();
    let mut ch = BookChanges::default();
    // A small delta: every size change in message order, with the old size; an unchanged
    // level and the delete of an absent one are not changes.
    b.apply_tracked(
        &delta(
            101,
            vec![lv("99.5", "7"), lv("98", "1"), lv("99", "3"), lv("97", "0"), lv("98", "2")],
            vec![lv("101", "0")],
        ),
        &mut ch,
    )
    .unwrap();
    assert_eq!(ch.span(), (100, 101));
    let got: Vec<(Side, i64, i64, i64)> =
        ch.changes().unwrap().iter().map(|c| (c.side, c.ticks, c.old.raw(), c.new.raw())).collect();
    let r = |x: &str| q(x).raw();
    assert_eq!(
        got,
        vec![
            (Side::Buy, 199, r("2"), r("7")),
            (Side::Buy, 196, 0, r("1")),
            (Side::Buy, 196, r("1"), r("2")),
            (Side::Sell, 202, r("5"), 0),
        ]
    );
    // A snapshot: not listed.
    b.apply_tracked(&snap(102, vec![lv("100", "1")], vec![lv("101", "1")]), &mut ch).unwrap();
    assert!(ch.changes().is_none());
    // A delta of more than 16 levels a side: not listed.
    let many: Vec<Level> = (0..17).map(|i| lv(&format!("{}", 80 + i), "1")).collect();
    b.apply_tracked(&delta(103, many, vec![]), &mut ch).unwrap();
    assert!(ch.changes().is_none());
    // A refused delta (gap): not listed.
    assert!(b.apply_tracked(&delta(105, vec![lv("99", "1")], vec![]), &mut ch).is_err());
    assert!(ch.changes().is_none());
}

#[test]
fn apply_tracked_does_not_list_a_delta_the_depth_cap_cut() {
    let mut b = OrderBook::new(p("0.1"), 3).unwrap();
    let mut ch = BookChanges::default();
    b.apply_tracked(&snap(1, vec![lv("100", "1"), lv("99.5", "1"), lv("99", "1")], vec![lv("101", "1")]), &mut ch)
        .unwrap();
    // A fourth bid level pushes the worst out: the change list would miss that drop.
    b.apply_tracked(&delta(2, vec![lv("99.8", "1")], vec![]), &mut ch).unwrap();
    assert_eq!(b.level_count(Side::Buy), 3);
    assert!(ch.changes().is_none());
    // Within the cap again: listed.
    b.apply_tracked(&delta(3, vec![lv("99.8", "2")], vec![]), &mut ch).unwrap();
    assert_eq!(ch.changes().map(<[_]>::len), Some(1));
}
