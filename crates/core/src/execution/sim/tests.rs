use super::*;
use crate::domain::Category;
use crate::market::data::{BookAction, BookUpdate, Level, Trade};
use crate::risk::money::Rate;
use crate::state::portfolio::{cash_flow_of, FillOutcome, Portfolio, PositionPlan};
use crate::testkit::{m, p, q};

fn sym() -> Symbol {
    Symbol::new("BTCUSDT")
}
fn fees() -> FeeRates {
    FeeRates { maker: Rate::from_f64(0.0002), taker: Rate::from_f64(0.00055) }
}
fn book(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> OrderBook {
    let mut b = OrderBook::new(p("0.1"), 50).unwrap();
    let lv = |v: &[(&str, &str)]| v.iter().map(|(pp, qq)| Level { price: p(pp), qty: q(qq) }).collect();
    b.apply(&BookUpdate {
        symbol: sym(),
        action: BookAction::Snapshot,
        depth: 50,
        bids: lv(bids),
        asks: lv(asks),
        update_id: 1,
        seq: 1,
        cts_ms: None,
    })
    .unwrap();
    b
}
fn std_book() -> OrderBook {
    book(&[("100", "2"), ("99.9", "3"), ("99.8", "5")], &[("100.1", "1"), ("100.2", "2"), ("100.3", "4")])
}
fn trades(v: &[(i64, &str, &str, Side)]) -> TradeBatch {
    TradeBatch {
        symbol: sym(),
        trades: v
            .iter()
            .map(|(ts, pp, qq, a)| Trade {
                ts_ms: *ts,
                price: p(pp),
                qty: q(qq),
                aggressor: *a,
                id: format!("t{ts}"),
                block_trade: false,
                rpi: false,
            })
            .collect(),
    }
}
fn req(id: &str, side: Side, kind: OrderKind, qty: &str, reduce: bool) -> OrderRequest {
    OrderRequest { client_id: id.into(), symbol: sym(), side, kind, qty: q(qty), reduce_only: reduce }
}
fn post(price: &str) -> OrderKind {
    OrderKind::Limit { price: p(price), tif: TimeInForce::PostOnly }
}
fn fills(ev: &[VenueEvent]) -> Vec<Fill> {
    ev.iter()
        .filter_map(|e| match e {
            VenueEvent::Filled(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn post_only_that_would_cross_is_rejected() {
    let mut v = SimVenue::new(fees());
    let b = std_book();
    let ev = v.place(&req("a", Side::Buy, post("100.1"), "1", false), &b, 0);
    assert_eq!(
        ev,
        vec![VenueEvent::Rejected {
            symbol: sym(),
            client_id: "a".into(),
            reason: RejectReason::PostOnlyWouldTakeLiquidity
        }]
    );
    assert_eq!(RejectReason::PostOnlyWouldTakeLiquidity.bybit(), "EC_PostOnlyWillTakeLiquidity");
    let ev = v.place(&req("b", Side::Sell, post("100"), "1", false), &b, 0);
    assert!(matches!(ev[0], VenueEvent::Rejected { .. }));
    // Inside the spread and at the touch are fine.
    let ev = v.place(&req("c", Side::Buy, post("100"), "1", false), &b, 0);
    assert!(matches!(ev[..], [VenueEvent::Accepted { .. }]));
    assert_eq!(v.queue_ahead(&sym(), "c"), Some(q("2")));
    assert_eq!(v.open_orders(), 1);
    // Off-tick, zero qty, duplicate id.
    let ev = v.place(&req("d", Side::Buy, post("99.95"), "1", false), &b, 0);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::InvalidPrice, .. }));
    let ev = v.place(&req("d", Side::Buy, post("99.9"), "0", false), &b, 0);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::InvalidQty, .. }));
    let ev = v.place(&req("c", Side::Buy, post("99.9"), "1", false), &b, 0);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::DuplicateClientId, .. }));
}

#[test]
fn maker_fills_only_through_or_after_the_queue() {
    let mut v = SimVenue::new(fees());
    let b = std_book();
    v.place(&req("bid", Side::Buy, post("100"), "1", false), &b, 0);
    // Trades above our price or buy-aggressor prints at it: nothing.
    assert!(v.on_trades(&trades(&[(1, "100.1", "5", Side::Buy), (2, "100", "5", Side::Buy)]), &b).is_empty());
    // Sells at our price consume the 2 ahead of us first: 1.5 → queue 0.5, no fill.
    assert!(v.on_trades(&trades(&[(3, "100", "1.5", Side::Sell)]), &b).is_empty());
    assert_eq!(v.queue_ahead(&sym(), "bid"), Some(q("0.5")));
    // Next 0.8 at the price: 0.5 to the queue, 0.3 to us (maker, at our price).
    let f = fills(&v.on_trades(&trades(&[(4, "100", "0.8", Side::Sell)]), &b));
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].price, f[0].qty, f[0].liquidity), (p("100"), q("0.3"), Liquidity::Maker));
    assert_eq!(f[0].fee, m("0.006")); // 30 × 0.0002
                                      // A trade through the price fills the rest (capped by the trade size).
    let f = fills(&v.on_trades(&trades(&[(5, "99.9", "0.5", Side::Sell), (6, "99.8", "9", Side::Sell)]), &b));
    assert_eq!(f.iter().map(|f| f.qty).collect::<Vec<_>>(), vec![q("0.5"), q("0.2")]);
    assert!(f.iter().all(|f| f.price == p("100") && f.liquidity == Liquidity::Maker));
    assert_eq!(v.open_orders(), 0);
    assert_eq!(v.position(&sym()), Some((Side::Buy, q("1"))));
}

#[test]
fn market_walks_the_book_and_limits_stop_at_their_price() {
    let mut v = SimVenue::new(fees());
    let b = std_book();
    let ev = v.place(&req("m", Side::Buy, OrderKind::Market, "2.5", false), &b, 7);
    let f = fills(&ev);
    assert_eq!(
        f.iter().map(|f| (f.price, f.qty)).collect::<Vec<_>>(),
        vec![(p("100.1"), q("1")), (p("100.2"), q("1.5"))]
    );
    assert!(f.iter().all(|f| f.liquidity == Liquidity::Taker && f.ts_ms == 7));
    assert_eq!(f[1].fee, money::fee(q("1.5"), p("100.2"), fees().taker));
    // Beyond the visible depth (10): the rest fills at the worst visible level.
    let f = fills(&v.place(&req("m2", Side::Sell, OrderKind::Market, "12", false), &b, 8));
    assert_eq!(
        f.iter().map(|f| (f.price, f.qty)).collect::<Vec<_>>(),
        vec![(p("100"), q("2")), (p("99.9"), q("3")), (p("99.8"), q("5")), (p("99.8"), q("2"))]
    );
    // IOC limit: takes up to its price, cancels the rest.
    let ev =
        v.place(&req("i", Side::Buy, OrderKind::Limit { price: p("100.2"), tif: TimeInForce::Ioc }, "5", false), &b, 9);
    assert_eq!(fills(&ev).iter().map(|f| f.qty).collect::<Vec<_>>(), vec![q("1"), q("2")]);
    assert!(
        matches!(ev.last(), Some(VenueEvent::Cancelled { reason: EndReason::IocRemainder, remaining, .. }) if *remaining == q("2"))
    );
    // GTC limit: takes what crosses, rests the rest.
    let ev =
        v.place(&req("g", Side::Buy, OrderKind::Limit { price: p("100.1"), tif: TimeInForce::Gtc }, "3", false), &b, 9);
    assert_eq!(fills(&ev).len(), 1);
    assert_eq!(v.open_orders(), 1);
    // No liquidity at all.
    let empty = book(&[("100", "1")], &[]);
    let ev = v.place(&req("n", Side::Buy, OrderKind::Market, "1", false), &empty, 9);
    assert!(matches!(ev.last(), Some(VenueEvent::Cancelled { reason: EndReason::NoLiquidity, .. })));
}

#[test]
fn reduce_only_rules() {
    let mut v = SimVenue::new(fees());
    let b = std_book();
    let ev = v.place(&req("r", Side::Sell, post("100.5"), "1", true), &b, 0);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::ReduceOnlyRuleNotSatisfied, .. }));
    v.place(&req("e", Side::Buy, OrderKind::Market, "1", false), &b, 0);
    // Same-side reduce-only is refused too.
    let ev = v.place(&req("r2", Side::Buy, post("99"), "1", true), &b, 0);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::ReduceOnlyRuleNotSatisfied, .. }));
    // TP for 1 and SL for 1; a close of 5 only closes 1 and the others are cancelled.
    v.place(&req("tp", Side::Sell, post("101"), "1", true), &b, 0);
    v.place(&req("sl", Side::Sell, OrderKind::StopMarket { trigger: p("99") }, "1", true), &b, 0);
    let close = Intent::Close {
        symbol: sym(),
        position_side: Side::Buy,
        qty: q("5"),
        reason: crate::state::machine::ExitReason::Panic,
        client_id: "x".into(),
    };
    let ev = v.submit(&close, &b, 1);
    assert_eq!(fills(&ev).iter().map(|f| f.qty).collect::<Vec<_>>(), vec![q("1")]);
    let ended: Vec<(&str, EndReason)> = ev
        .iter()
        .filter_map(|e| match e {
            VenueEvent::Cancelled { client_id, reason, .. } => Some((client_id.as_str(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        vec![
            ("tp", EndReason::ReduceOnlyNoPosition),
            ("sl", EndReason::ReduceOnlyNoPosition),
            ("x", EndReason::ReduceOnlyNoPosition)
        ]
    );
    assert_eq!(v.position(&sym()), None);
    assert_eq!(v.open_orders(), 0);
}

#[test]
fn stop_market_triggers_on_trade_price_and_never_fills_better() {
    let mut v = SimVenue::new(fees());
    let b = std_book();
    v.place(&req("e", Side::Sell, OrderKind::Market, "3", false), &b, 0); // short 3 @ 100 ×2, 99.9 ×1
    v.place(&req("sl", Side::Buy, OrderKind::StopMarket { trigger: p("100.5") }, "3", true), &b, 0);
    assert!(v.on_trades(&trades(&[(1, "100.4", "1", Side::Buy)]), &b).is_empty());
    // The book is stale (asks 100.1…): fills are capped at the triggering print 100.6.
    let ev = v.on_trades(&trades(&[(2, "100.6", "1", Side::Buy)]), &b);
    assert!(matches!(&ev[0], VenueEvent::Triggered { price, .. } if *price == p("100.6")));
    let f = fills(&ev);
    assert_eq!(
        f.iter().map(|f| (f.price, f.qty)).collect::<Vec<_>>(),
        vec![(p("100.6"), q("1")), (p("100.6"), q("2"))]
    );
    assert!(f.iter().all(|f| f.liquidity == Liquidity::Taker && f.ts_ms == 2));
    assert_eq!(v.position(&sym()), None);
    // Amend of a missing order is refused.
    let ev = v.amend(&sym(), "sl", None, Some(p("101")), None, &b);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::OrderNotFound, .. }));
}

#[test]
fn amend_and_cancel() {
    let mut v = SimVenue::new(fees());
    let b = std_book();
    v.place(&req("a", Side::Buy, post("99.8"), "1", false), &b, 0);
    assert_eq!(v.queue_ahead(&sym(), "a"), Some(q("5")));
    let ev = v.amend(&sym(), "a", Some(p("99.9")), None, Some(q("2")), &b);
    assert!(matches!(ev[0], VenueEvent::Amended { .. }));
    assert_eq!(v.queue_ahead(&sym(), "a"), Some(q("3")));
    let ev = v.amend(&sym(), "a", Some(p("100.1")), None, None, &b);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::PostOnlyWouldTakeLiquidity, .. }));
    let ev = v.amend(&sym(), "a", None, Some(p("1")), None, &b);
    assert!(matches!(ev[0], VenueEvent::Rejected { reason: RejectReason::InvalidPrice, .. }));
    assert_eq!(v.snapshot().orders[0].remaining, q("2"));
    assert_eq!(v.snapshot().orders[0].kind, post("99.9"));
    assert_eq!(v.placed_ms(&sym(), "a"), Some(0));
    let ev = v.cancel(&sym(), "a");
    assert_eq!(
        ev,
        vec![VenueEvent::Cancelled {
            symbol: sym(),
            client_id: "a".into(),
            remaining: q("2"),
            reason: EndReason::Cancelled
        }]
    );
    assert!(matches!(v.cancel(&sym(), "a")[0], VenueEvent::Rejected { reason: RejectReason::OrderNotFound, .. }));
}

#[test]
fn round_trip_pnl_reconciles_exactly_with_fills_and_fees() {
    // Long: maker entry 0.7 @ 100 (partially through two prints), then TP1 maker 0.3 @ 100.8,
    // then the stop triggers and closes 0.4 as taker across two levels.
    let mut v = SimVenue::new(fees());
    let mut pf = Portfolio::new(m("10000"), fees().taker, 0);
    let b = std_book();
    let plan =
        PositionPlan { category: Category::Prime, stop: p("99.5"), take_profits: vec![], planned_risk: m("0.5") };
    let mut all = Vec::new();
    let apply = |pf: &mut Portfolio, ev: Vec<VenueEvent>, all: &mut Vec<Fill>| {
        for f in fills(&ev) {
            pf.on_fill(&f, Some(&plan)).unwrap();
            all.push(f);
        }
    };
    v.place(&req("e", Side::Buy, post("100"), "0.7", false), &b, 0);
    let ev = v.on_trades(&trades(&[(1, "100", "2.4", Side::Sell), (2, "99.9", "0.3", Side::Sell)]), &b);
    apply(&mut pf, ev, &mut all);
    assert_eq!(v.position(&sym()), Some((Side::Buy, q("0.7"))));
    v.place(&req("tp", Side::Sell, post("100.8"), "0.3", true), &b, 3);
    v.place(&req("sl", Side::Sell, OrderKind::StopMarket { trigger: p("99.9") }, "0.7", true), &b, 3);
    let ev = v.on_trades(&trades(&[(4, "100.9", "1", Side::Buy)]), &b);
    apply(&mut pf, ev, &mut all);
    let thin = book(&[("99.8", "0.25"), ("99.7", "5")], &[("99.9", "1")]);
    let ev = v.on_trades(&trades(&[(5, "99.8", "1", Side::Sell)]), &thin);
    apply(&mut pf, ev, &mut all);
    assert_eq!(v.position(&sym()), None);
    assert!(pf.position(&sym()).is_none());
    let got: Vec<(Side, Price, Qty, Liquidity)> = all.iter().map(|f| (f.side, f.price, f.qty, f.liquidity)).collect();
    assert_eq!(
        got,
        vec![
            (Side::Buy, p("100"), q("0.4"), Liquidity::Maker),
            (Side::Buy, p("100"), q("0.3"), Liquidity::Maker),
            (Side::Sell, p("100.8"), q("0.3"), Liquidity::Maker),
            (Side::Sell, p("99.8"), q("0.25"), Liquidity::Taker),
            (Side::Sell, p("99.7"), q("0.15"), Liquidity::Taker),
        ]
    );
    // By hand, exact decimals: cash = −70 + 30.24 + 24.95 + 14.955 = 0.145.
    // Fees: maker 0.008 + 0.006 + 0.006048; taker 24.95 × 0.00055 = 0.0137225 and
    // 14.955 × 0.00055 = 0.00822525 → rounded up to 0.00822525 (exact).
    let fees_total =
        ["0.008", "0.006", "0.006048", "0.0137225", "0.00822525"].iter().fold(Money::ZERO, |a, x| money::add(a, m(x)));
    assert_eq!(all.iter().fold(Money::ZERO, |a, f| money::add(a, f.fee)), fees_total);
    let expected = money::sub(m("0.145"), fees_total);
    assert_eq!(expected, m("0.10300425"));
    assert_eq!(cash_flow_of(&all), expected);
    assert_eq!(v.realized(&sym()), expected);
    assert_eq!(pf.balance(), money::add(m("10000"), expected));
    assert_eq!(pf.daily(5).realized, expected);
}

#[test]
fn close_outcome_carries_the_reconciled_trade() {
    let mut v = SimVenue::new(fees());
    let mut pf = Portfolio::new(m("1000"), fees().taker, 0);
    let b = std_book();
    let plan =
        PositionPlan { category: Category::Normal, stop: p("100.5"), take_profits: vec![], planned_risk: m("1") };
    let mut last = None;
    for ev in [
        v.place(&req("e", Side::Sell, OrderKind::Market, "2.5", false), &b, 0),
        v.place(&req("x", Side::Buy, OrderKind::Market, "2.5", true), &b, 1),
    ] {
        for f in fills(&ev) {
            last = Some(pf.on_fill(&f, Some(&plan)).unwrap());
        }
    }
    let Some(FillOutcome::Closed { trade, .. }) = last else { panic!("{last:?}") };
    assert_eq!(trade.realized, v.realized(&sym()));
    // Short 2 @ 100 + 0.5 @ 99.9 = 249.95, covered 1 @ 100.1 + 1.5 @ 100.2 = 250.4: −0.45 gross.
    assert_eq!(trade.realized, money::sub(m("-0.45"), trade.fees));
}
