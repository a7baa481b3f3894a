use super::*;
use crate::domain::Symbol;
use crate::market::data::{BookAction, BookUpdate};
use crate::testkit::p;

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
        rpi: false,
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

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
    /// Random books (touch moving, big levels appearing, growing, shrinking and vanishing)
    /// and trades: the tracker with its shortcuts (median selected only when needed, the
    /// candidate scan skipped when the largest level cannot pass) gives the same verdicts,
    /// scores and counters as one scanning every level every time.
    #[test]
    fn shortcuts_change_nothing(
        steps in proptest::collection::vec(
            (-3i64..=3, proptest::collection::vec((0i64..30, 0u32..60), 0..4), 0u32..40, proptest::bool::ANY),
            1..120,
        ),
    ) {
        let mut bk = Bk::new();
        let mut fast = WallTracker::new(quick());
        let mut full = WallTracker::new(quick());
        full.full_scan = true;
        let mut best = 1000i64;
        let mut big: Vec<(i64, f64)> = Vec::new();
        for (i, (mv, levels, traded, buy)) in steps.into_iter().enumerate() {
            let now = i as i64 * 100;
            best += mv;
            for (off, q) in levels {
                let px = if off < 15 { best - off } else { best + off - 14 };
                big.retain(|e| e.0 != px);
                // 0 removes the level, 1..9 ordinary sizes, beyond that walls.
                big.push((px, q as f64 / 2.0));
            }
            big.retain(|e| (e.0 - best).abs() < 30);
            let book = bk.set(best, &big).clone();
            if i % 7 == 3 {
                fast.set_reference_level(2.0);
                full.set_reference_level(2.0);
            }
            let a = fast.on_book(&book, now);
            let b = full.on_book(&book, now);
            proptest::prop_assert_eq!(a, b);
            if traded > 0 {
                let side = if buy { Side::Buy } else { Side::Sell };
                let px = if buy { best + 1 } else { best };
                let t = [trade(px, traded as f64 / 4.0, side)];
                proptest::prop_assert_eq!(fast.on_trades(&t, now + 50), full.on_trades(&t, now + 50));
            }
            proptest::prop_assert_eq!(fast.scores(now + 60), full.scores(now + 60));
            proptest::prop_assert_eq!(fast.totals(), full.totals());
            proptest::prop_assert_eq!(fast.active(Side::Buy), full.active(Side::Buy));
            proptest::prop_assert_eq!(fast.active(Side::Sell), full.active(Side::Sell));
        }
    }
}

/// The defaults, without the minimum spoof lifetime (the hand-built books step 100 ms).
fn quick() -> WallConfig {
    WallConfig { min_spoof_lifetime_ms: 0, spoof_min_shown_ms: 0, ..WallConfig::default() }
}

#[test]
fn detects_wall_and_support() {
    let mut bk = Bk::new();
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    out.extend(wt.on_book(bk.set(1000, &[(995, 20.0)]), 0));
    assert_eq!(wt.active(Side::Buy), 0, "a candidate until seen in 3 updates");
    assert_eq!(wt.scores(0).support, 0.0);
    out.extend(wt.on_book(bk.set(1000, &[(995, 20.0)]), 100));
    out.extend(wt.on_book(bk.set(1000, &[(995, 20.0)]), 200));
    assert_eq!(wt.active(Side::Buy), 1);
    assert_eq!(wt.active(Side::Sell), 0);
    let s = wt.scores(200);
    // ratio 20 → strength 1; 0.55 % from the mid (1000.5) → proximity 0.45.
    let want = 1.0 - (1000.5 - 995.0) / 1000.5 * 100.0;
    assert!((s.support - want).abs() < 1e-9, "{s:?}");
    assert_eq!(s.resistance, 0.0);
    assert_eq!(s.bid_wall_price, 995.0);
    // 4 units is below k × average (5 × ~1); 8 units passes it but not k_median × median
    // (12 × 1): neither is a wall.
    for q in [4.0, 8.0] {
        let mut wt2 = WallTracker::new(quick());
        for t in 0..5 {
            out.extend(wt2.on_book(bk.set(1000, &[(995, q)]), t * 100));
        }
        assert_eq!(wt2.active(Side::Buy), 0, "{q}");
    }
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
fn a_large_level_that_flickers_is_not_a_wall() {
    // A 30-unit bid at 995 shows in every other update while the price drifts down to it,
    // and finally disappears 2 ticks from the touch: never a wall, no verdict.
    let mut bk = Bk::new();
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    for k in 0..12i64 {
        let q = if k % 2 == 0 { 30.0 } else { 1.0 };
        out.extend(wt.on_book(bk.set(1003 - k / 2, &[(995, q)]), k * 100));
        assert_eq!(wt.active(Side::Buy), 0, "update {k}");
        assert_eq!(wt.scores(k * 100).support, 0.0);
    }
    out.extend(wt.on_book(bk.set(997, &[(995, 0.0)]), 1_200));
    out.extend(wt.finalize_due(5_000));
    assert!(walls(&out).is_empty(), "{:?}", walls(&out));
    assert_eq!(wt.totals(), (0, 0, 0));
    assert_eq!(wt.scores(5_000).spoofing, 0.0);
}

#[test]
fn wall_pulled_three_ticks_before_touch_is_spoofing() {
    let mut bk = Bk::new();
    let mut wt = WallTracker::new(quick());
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
    assert_eq!((e.size, e.approach_from_ticks), (Qty::from_f64(30.0), 10));
    assert!((e.size_ratio - 30.0).abs() < 1e-9, "30 units over a median of 1");
    let inc = WallConfig::default().spoof_increment;
    assert!((wt.scores(700).spoofing - inc).abs() < 1e-9);
    assert!((wt.scores(700).spoof_bid - inc).abs() < 1e-9);
    assert_eq!(wt.scores(700).spoof_ask, 0.0);
    // The score decays with event time.
    assert!(wt.scores(700 + 60_000).spoofing < wt.scores(700).spoofing * 0.51);
    assert_eq!(wt.totals(), (0, 1, 0));
}

#[test]
fn pulls_that_are_not_spoofing() {
    // Each case: a confirmed bid wall (30 units) at 990 is pulled without a fill; the
    // verdict is CANCELLED (no event) because one of the spoofing tests fails.
    let run = |path: &[i64], pulled_at: i64, prints: &[Trade]| {
        let mut bk = Bk::new();
        let mut wt = WallTracker::new(quick());
        let mut out = Out(Vec::new());
        for (i, bb) in path.iter().enumerate() {
            out.extend(wt.on_book(bk.set(*bb, &[(990, 30.0)]), 100 * i as i64));
        }
        let t = 100 * path.len() as i64;
        out.extend(wt.on_trades(prints, t - 50));
        out.extend(wt.on_book(bk.set(pulled_at, &[(990, 0.0)]), t));
        out.extend(wt.finalize_due(t + 1_000));
        (walls(&out), wt.totals())
    };
    // Control: approached from 10 ticks, pulled 2 ticks before the touch → SPOOFING.
    let (ev, totals) = run(&[1000, 998, 996, 994], 992, &[]);
    assert_eq!((ev.len(), totals), (1, (0, 1, 0)), "{ev:?}");
    // The price never approached: it sat 3 ticks away the whole time.
    assert_eq!(run(&[993, 993, 993, 993], 993, &[]), (vec![], (0, 0, 1)));
    // It went the other way (from 2 to 4 ticks away).
    assert_eq!(run(&[992, 993, 994, 994], 994, &[]), (vec![], (0, 0, 1)));
    // It was touched: the touch reached it and then moved through it without trades (a
    // quote faded as the price got there, not a bluff pulled before it).
    assert_eq!(run(&[996, 994, 992, 990], 989, &[]), (vec![], (0, 0, 1)));
    // Sellers traded 20 % of it at its price before it was pulled: not a clean pull (and
    // not absorbed either).
    let prints = [trade(990, 6.0, Side::Sell)];
    assert_eq!(run(&[1000, 998, 996, 994], 992, &prints), (vec![], (0, 0, 1)));
}

#[test]
fn a_requote_is_not_a_spoof() {
    // A bid wall at 990 approached by the price moves one tick away (same size at 989) as
    // the price comes near: a re-quote, not a pull. The wall keeps its history.
    let mut bk = Bk::new();
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    for (i, bb) in [1000, 998, 996, 994].iter().enumerate() {
        out.extend(wt.on_book(bk.set(*bb, &[(990, 30.0)]), 100 * i as i64));
    }
    out.extend(wt.on_book(bk.set(993, &[(990, 0.0), (989, 29.0)]), 400));
    out.extend(wt.on_book(bk.set(993, &[(989, 29.0)]), 500));
    out.extend(wt.on_book(bk.set(993, &[(989, 29.0)]), 2_000));
    assert!(walls(&out).is_empty(), "{:?}", walls(&out));
    assert_eq!((wt.requotes(), wt.active(Side::Buy), wt.totals()), (1, 1, (0, 0, 0)));
    assert_eq!(wt.scores(2_000).bid_wall_price, 989.0);
    // Re-quoted again, a tick further, within the window after the book showed it gone.
    out.extend(wt.on_book(bk.set(993, &[(989, 0.0)]), 2_100));
    out.extend(wt.on_book(bk.set(993, &[(988, 30.0)]), 2_200));
    assert_eq!((wt.requotes(), wt.active(Side::Buy)), (2, 1));
    // Eventually eaten at its last price: one verdict, aged from its first appearance.
    out.extend(wt.on_book(bk.set(988, &[(988, 30.0)]), 2_300));
    out.extend(wt.on_trades(&[trade(988, 30.0, Side::Sell)], 2_350));
    out.extend(wt.on_book(bk.set(987, &[(988, 0.0)]), 2_400));
    let ev = walls(&out);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!((ev[0].outcome, ev[0].price, ev[0].lifetime_ms), (WallOutcome::Absorbing, p("988"), 2_400));

    // Same moves with the re-quote rule off: the first move is a pull (SPOOFING).
    let mut wt = WallTracker::new(WallConfig { requote_ticks: 0, ..quick() });
    let mut out = Out(Vec::new());
    for (i, bb) in [1000, 998, 996, 994].iter().enumerate() {
        out.extend(wt.on_book(bk.set(*bb, &[(990, 30.0)]), 100 * i as i64));
    }
    out.extend(wt.on_book(bk.set(993, &[(990, 0.0), (989, 29.0)]), 400));
    out.extend(wt.on_book(bk.set(993, &[(989, 29.0)]), 800));
    assert_eq!(walls(&out).first().map(|e| (e.outcome, e.price)), Some((WallOutcome::Spoofing, p("990"))));
    // A level of a different size nearby is not a re-quote either.
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    for (i, bb) in [1000, 998, 996, 994].iter().enumerate() {
        out.extend(wt.on_book(bk.set(*bb, &[(990, 30.0)]), 100 * i as i64));
    }
    out.extend(wt.on_book(bk.set(993, &[(990, 0.0), (989, 15.0)]), 400));
    out.extend(wt.on_book(bk.set(993, &[(989, 15.0)]), 800));
    assert_eq!(walls(&out).first().map(|e| e.outcome), Some(WallOutcome::Spoofing));
    assert_eq!(wt.requotes(), 0);
}

#[test]
fn wall_eaten_by_trades_is_absorbing() {
    let mut bk = Bk::new();
    let mut wt = WallTracker::new(quick());
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
    // Buy aggressors never eat a bid wall: approached and pulled 2 ticks before the touch,
    // it is SPOOFING however much was bought at its price.
    let mut wt = WallTracker::new(quick());
    for (i, bb) in [1003, 1002, 1001].iter().enumerate() {
        out.extend(wt.on_book(bk.set(*bb, &[(998, 30.0)]), 10 * i as i64));
    }
    out.extend(wt.on_trades(&[trade(998, 30.0, Side::Buy)], 30));
    out.extend(wt.on_book(bk.set(1000, &[(998, 0.0)]), 40));
    out.extend(wt.on_book(bk.set(1000, &[]), 400));
    assert_eq!(walls(&out).last().map(|e| e.outcome), Some(WallOutcome::Spoofing));
}

#[test]
fn rpi_prints_neither_absorb_a_wall_nor_clear_it_of_spoofing() {
    let rpi = |px: i64, qty: f64| Trade { rpi: true, ..trade(px, qty, Side::Sell) };
    // The absorbing scenario, with every print hitting hidden RPI makers: nothing is eaten
    // from the visible wall, so it is not ABSORBING.
    let mut bk = Bk::new();
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    out.extend(wt.on_book(bk.set(1000, &[(997, 30.0)]), 0));
    out.extend(wt.on_book(bk.set(997, &[(997, 30.0)]), 100));
    out.extend(wt.on_trades(&[rpi(997, 6.0), rpi(997, 4.0)], 150));
    out.extend(wt.on_book(bk.set(996, &[(997, 0.0)]), 200));
    out.extend(wt.on_trades(&[rpi(997, 12.0)], 210));
    out.extend(wt.on_book(bk.set(996, &[]), 1_000));
    assert!(walls(&out).iter().all(|e| e.outcome != WallOutcome::Absorbing && e.eaten.is_zero()), "{:?}", walls(&out));
    // A bid wall approached and pulled 2 ticks before the touch is SPOOFING; RPI sells at its
    // price (late prints included) do not make it look traded.
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    for (i, bb) in [1003, 1002, 1001].iter().enumerate() {
        out.extend(wt.on_book(bk.set(*bb, &[(998, 30.0)]), 10 * i as i64));
    }
    out.extend(wt.on_trades(&[rpi(998, 20.0)], 30));
    out.extend(wt.on_book(bk.set(1000, &[(998, 0.0)]), 40));
    out.extend(wt.on_trades(&[rpi(998, 20.0)], 50));
    out.extend(wt.on_book(bk.set(1000, &[]), 400));
    let ev = walls(&out);
    assert_eq!(ev.last().map(|e| e.outcome), Some(WallOutcome::Spoofing), "{ev:?}");
    assert!(ev.last().is_some_and(|e| e.eaten.is_zero()));
    // The same sells as ordinary prints do count: the wall was traded, not spoofed.
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    for (i, bb) in [1003, 1002, 1001].iter().enumerate() {
        out.extend(wt.on_book(bk.set(*bb, &[(998, 30.0)]), 10 * i as i64));
    }
    out.extend(wt.on_trades(&[trade(998, 20.0, Side::Sell)], 30));
    out.extend(wt.on_book(bk.set(1000, &[(998, 0.0)]), 40));
    out.extend(wt.on_trades(&[trade(998, 20.0, Side::Sell)], 50));
    out.extend(wt.on_book(bk.set(1000, &[]), 400));
    assert_ne!(walls(&out).last().map(|e| e.outcome), Some(WallOutcome::Spoofing));
}

#[test]
fn far_wall_pulled_is_neutral_and_out_of_view_is_forgotten() {
    let mut bk = Bk::new();
    let mut wt = WallTracker::new(quick());
    let mut out = Out(Vec::new());
    // Ask wall 15 ticks away pulled: cancelled, no event.
    for t in [0, 50, 100] {
        out.extend(wt.on_book(bk.set(1000, &[(1015, 40.0)]), t));
    }
    assert_eq!(wt.active(Side::Sell), 1);
    out.extend(wt.on_book(bk.set(1000, &[(1015, 0.0)]), 150));
    out.extend(wt.on_book(bk.set(1000, &[]), 1_000));
    assert!(walls(&out).is_empty());
    assert_eq!(wt.totals(), (0, 0, 1));
    // A bid wall that drifts out of the scanned range (price rallies) is forgotten.
    for t in [2_000, 2_050, 2_100] {
        out.extend(wt.on_book(bk.set(1000, &[(985, 40.0)]), t));
    }
    assert_eq!(wt.active(Side::Buy), 1);
    out.extend(wt.on_book(bk.set(1010, &[(985, 40.0)]), 2_150));
    assert_eq!(wt.active(Side::Buy), 0);
    out.extend(wt.on_book(bk.set(1010, &[]), 3_000));
    assert_eq!(wt.totals(), (0, 0, 1));
    // Shrinking below end_fraction as the price comes near is spoofing too.
    for (t, bb) in [(4_000, 996), (4_050, 997), (4_080, 998)] {
        out.extend(wt.on_book(bk.set(bb, &[(1002, 40.0)]), t));
    }
    out.extend(wt.on_book(bk.set(1000, &[(1002, 5.0)]), 4_100));
    out.extend(wt.on_book(bk.set(1000, &[(1002, 5.0)]), 4_500));
    let ev = walls(&out);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].outcome, ev[0].side, ev[0].remaining, ev[0].distance_ticks),
        (WallOutcome::Spoofing, Side::Sell, Qty::from_f64(5.0), 1)
    );
    // An invalid book forgets everything.
    let mut bad = OrderBook::new(p("1"), 5).unwrap();
    bad.invalidate();
    for t in [5_000, 5_050, 5_100] {
        out.extend(wt.on_book(bk.set(1000, &[(1003, 40.0)]), t));
    }
    assert_eq!(wt.active(Side::Sell), 1);
    out.extend(wt.on_book(&bad, 5_150));
    assert_eq!(wt.active(Side::Sell), 0);
}

#[test]
fn config_validation() {
    let mut e = Vec::new();
    WallConfig::default().validate("w", &mut e);
    assert!(e.is_empty(), "{e:?}");
    let bad = WallConfig {
        k_median: 0.5,
        confirm_updates: 0,
        spoof_max_eaten_fraction: 0.9,
        spoof_min_approach_fraction: 1.0,
        requote_size_tolerance: -0.1,
        requote_window_ms: -1,
        ..WallConfig::default()
    };
    bad.validate("w", &mut e);
    for f in ["k_median", "confirm_updates", "spoof_max_eaten_fraction", "spoof_min_approach_fraction"] {
        assert!(e.iter().any(|m| m.contains(f)), "{f}: {e:?}");
    }
    assert!(e.iter().any(|m| m.contains("requote_size_tolerance")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("requote_window_ms")), "{e:?}");
}

/// A scan deeper than the stack buffer ([`STACK_SCAN`]) goes through the tracker's own buffer
/// and still sees every configured level: a wall 80 levels behind the touch is found with
/// `scan_levels` 100, and is out of view with 60.
#[test]
fn scans_deeper_than_the_stack_buffer_see_every_level() {
    let mut book = OrderBook::new(p("1"), 200).unwrap();
    let lvl = |px: i64, q: f64| Level { price: Price::from_raw(px * 100_000_000), qty: Qty::from_f64(q) };
    const { assert!(60 <= STACK_SCAN && 100 > STACK_SCAN) };
    let mut found = Vec::new();
    for scan_levels in [60, 100] {
        let mut wt = WallTracker::new(WallConfig { scan_levels, ..quick() });
        for u in 1..=4u64 {
            let bids = (0..120).map(|i| lvl(1000 - i, if i == 80 { 40.0 } else { 1.0 })).collect();
            let asks = (1..121).map(|i| lvl(1000 + i, 1.0)).collect();
            let upd = BookUpdate {
                symbol: Symbol::new("X"),
                action: BookAction::Snapshot,
                depth: 200,
                bids,
                asks,
                update_id: u,
                seq: u,
                cts_ms: None,
            };
            book.apply(&upd).unwrap();
            wt.on_book(&book, u as i64 * 100);
        }
        found.push(wt.active(Side::Buy));
        assert!(scan_levels <= STACK_SCAN || !wt.scan.is_empty(), "the deep scan used the tracker's buffer");
    }
    assert_eq!(found, vec![0, 1]);
}
