//! Unit tests of the exchange state across its parts (universe, depth views, faults).

use super::*;
use crate::SimError;

fn ex(cfg: SimConfig) -> Exchange {
    Exchange::new(cfg, 1_700_000_000_000, Arc::new(Counters::default()))
}

#[test]
fn depth_views_follow_the_book_and_u_increases() {
    let mut e = ex(SimConfig { symbols: 3, tick_interval_ms: 20, clock: ClockMode::Manual, ..SimConfig::default() });
    let u0 = e.update_id("BTCUSDT", 50).unwrap();
    for _ in 0..50 {
        e.step();
        let s = &e.symbols[0];
        let m = s.market.as_ref().unwrap();
        assert_eq!(s.depths[1].bids, m.book.top(Side::Buy, 50));
        assert_eq!(s.depths[1].asks, m.book.top(Side::Sell, 50));
        assert!(s.depths[1].bids.windows(2).all(|w| w[0].0 > w[1].0));
    }
    assert!(e.update_id("BTCUSDT", 50).unwrap() > u0);
    assert!(e.symbols[0].depths[3].bids.len() <= 1000);
}

#[test]
fn listing_and_delisting_change_the_universe() {
    let cfg = SimConfig {
        symbols: 4,
        tick_interval_ms: 100,
        clock: ClockMode::Manual,
        events: vec![
            UniverseEvent::NewListing { symbol: "NEWUSDT".into(), at_ms: 300 },
            UniverseEvent::Delisting { symbol: "SIM001USDT".into(), at_ms: 500 },
        ],
        ..SimConfig::default()
    };
    let mut e = ex(cfg);
    assert!(e.trading("NEWUSDT").is_none());
    let body = e.instruments_info(None, None, None, None).unwrap();
    assert!(!body.contains("NEWUSDT"));
    assert!(body.contains("\"deliveryTime\":\"1700000000500\""));
    for _ in 0..3 {
        e.step();
    }
    assert!(e.trading("NEWUSDT").is_some());
    assert_eq!(e.instrument("NEWUSDT").unwrap().launch_time_ms, 1_700_000_000_300);
    for _ in 0..2 {
        e.step();
    }
    assert!(e.trading("SIM001USDT").is_none());
    let closed = e.instruments_info(None, Some("Closed"), None, None).unwrap();
    assert!(closed.contains("SIM001USDT"));
    assert_eq!(e.orderbook(Some("SIM001USDT"), None).unwrap_err().0, 10001);
}

#[test]
fn rest_faults_count_down() {
    let mut e = ex(SimConfig { symbols: 1, clock: ClockMode::Manual, ..SimConfig::default() });
    e.apply_fault(&Fault::RestHttpError { status: 503, count: 2 }).unwrap();
    e.apply_fault(&Fault::RestRetCode { ret_code: 10006, count: 1 }).unwrap();
    assert_eq!(e.take_rest_fault(), Some(RestFault::Http(503)));
    assert_eq!(e.take_rest_fault(), Some(RestFault::Http(503)));
    assert_eq!(e.take_rest_fault(), Some(RestFault::RetCode(10006)));
    assert_eq!(e.take_rest_fault(), None);
    assert!(matches!(e.apply_fault(&Fault::SkipUpdateId { symbol: "X".into() }), Err(SimError::UnknownSymbol(_))));
}

#[test]
fn scheduled_faults_fire_at_their_step() {
    use crate::config::ScheduledFault;
    let cfg = SimConfig {
        symbols: 1,
        clock: ClockMode::Manual,
        faults: vec![ScheduledFault { at_ms: 250, fault: Fault::RestRetCode { ret_code: 10016, count: 1 } }],
        ..SimConfig::default()
    };
    let mut e = ex(cfg);
    e.step();
    e.step();
    assert_eq!(e.take_rest_fault(), None);
    e.step();
    assert_eq!(e.take_rest_fault(), Some(RestFault::RetCode(10016)));
}
