//! A configuration reload reaches every symbol the engine already tracks: a symbol whose state
//! was built before the reload and one registered before it but built after both take the new
//! `[intel]` settings and the new costs of their category, as a symbol listed afterwards does.
//! A symbol whose category changes at a universe refresh takes that category's costs.

mod common;
use common::instrument;
use scalper::config::Config;
use scalper::domain::{Category, EventTime, Price, Qty, Side, Symbol};
use scalper::engine::clock::FrozenClock;
use scalper::engine::core::CorePipeline;
use scalper::engine::event::{Event, EventKind};
use scalper::engine::{DegradedPolicy, Engine};
use scalper::features::FeatureSnapshot;
use scalper::market::data::{TickerUpdate, Trade, TradeBatch};
use std::sync::Arc;

struct T {
    e: Engine<CorePipeline, FrozenClock>,
    seq: u64,
}

impl T {
    fn ev(&mut self, now: i64, kind: EventKind) {
        self.seq += 1;
        self.e.on_event(&Event::new(self.seq, EventTime::local(now), kind));
    }
    fn trade(&mut self, symbol: &str, at: i64) {
        let trades = vec![Trade {
            ts_ms: at,
            price: Price::parse("100").expect("price"),
            qty: Qty::parse("1").expect("qty"),
            aggressor: Side::Buy,
            id: format!("{symbol}-{at}"),
            block_trade: false,
            rpi: false,
        }];
        self.ev(at, EventKind::Trades(TradeBatch { symbol: Symbol::new(symbol), trades }));
    }
    fn features(&self, symbol: &str) -> FeatureSnapshot {
        let (_, m) = self.e.pipeline().symbols().find(|(s, _)| s.as_str() == symbol).expect("tracked");
        *m.intel.snapshot()
    }
}

#[test]
fn a_reload_reaches_the_symbols_already_tracked() {
    let mut t = T {
        e: Engine::new(
            CorePipeline::new(Arc::new(Config::default())),
            FrozenClock,
            DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 },
        ),
        seq: 0,
    };
    let listed = ["AAAUSDT", "BBBUSDT"].map(|s| instrument(s, "0.1", "0.001", "100"));
    t.ev(0, EventKind::Universe(listed.to_vec()));
    t.trade("AAAUSDT", 1_000);
    let before = t.features("AAAUSDT");

    let mut cfg = Config::default();
    cfg.intel.costs.stop_min_pct = 2.5;
    for c in [&mut cfg.categories.prime, &mut cfg.categories.normal, &mut cfg.categories.wild] {
        c.max_leverage = 2.0;
    }
    cfg.validate().expect("a valid configuration");
    t.ev(2_000, EventKind::ConfigReload(Arc::new(cfg.clone())));
    // A symbol listed after the reload: what the others must agree with.
    let later = instrument("CCCUSDT", "0.1", "0.001", "100");
    t.ev(2_500, EventKind::Universe([listed.to_vec(), vec![later]].concat()));
    for s in ["AAAUSDT", "BBBUSDT", "CCCUSDT"] {
        t.trade(s, 3_000);
    }

    let (built_before, built_after, listed_after) =
        (t.features("AAAUSDT"), t.features("BBBUSDT"), t.features("CCCUSDT"));
    assert!((before.stop_distance - 0.0015).abs() < 1e-12, "the default 0.15 % stop first: {}", before.stop_distance);
    for (name, f) in [("built before", built_before), ("built after", built_after), ("listed after", listed_after)] {
        assert!(
            (f.stop_distance - 0.025).abs() < 1e-12,
            "{name}: intel.costs.stop_min_pct reloaded, got {}",
            f.stop_distance
        );
        assert_eq!(f.liq_distance, listed_after.liq_distance, "{name}: the category's leverage reloaded");
    }
    assert!(built_before.liq_distance > before.liq_distance, "2x leverage liquidates farther than the default");
}

#[test]
fn a_symbol_that_changes_category_takes_its_new_categorys_costs() {
    // No top-turnover Prime symbols: with two symbols the thin one would be among them.
    let mut cfg = Config::default();
    cfg.universe.prime_top_n = 0;
    let mut t = T {
        e: Engine::new(
            CorePipeline::new(Arc::new(cfg)),
            FrozenClock,
            DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 },
        ),
        seq: 0,
    };
    // Listed long ago (not young) and no 24 h figures yet: Normal. A thin 24 h turnover makes a
    // symbol Wild at the next universe refresh (same book depth, so its state is kept).
    let day0 = 100 * 86_400_000;
    let listed = ["AAAUSDT", "WWWUSDT"].map(|s| instrument(s, "0.1", "0.001", "100"));
    let thin = |s: &str| {
        EventKind::Ticker(TickerUpdate { symbol: Symbol::new(s), turnover_24h: Some(1.0), ..Default::default() })
    };
    t.ev(day0, thin("WWWUSDT"));
    t.ev(day0, EventKind::Universe(listed.to_vec()));
    t.trade("AAAUSDT", day0 + 1_000);
    let normal = t.features("AAAUSDT");
    t.ev(day0 + 2_000, thin("AAAUSDT"));
    t.ev(day0 + 3_000, EventKind::Universe(listed.to_vec()));
    for s in ["AAAUSDT", "WWWUSDT"] {
        t.trade(s, day0 + 4_000);
    }
    let category = |s: &str| t.e.pipeline().symbols().find(|(x, _)| x.as_str() == s).map(|(_, m)| m.category);
    assert_eq!(category("AAAUSDT"), Some(Category::Wild));
    assert_eq!(category("WWWUSDT"), Some(Category::Wild));
    let (turned, wild) = (t.features("AAAUSDT"), t.features("WWWUSDT"));
    assert_eq!(turned.liq_distance, wild.liq_distance, "Wild leverage, as a symbol Wild from the start");
    assert!(turned.liq_distance > normal.liq_distance, "5x (Wild) liquidates farther than 10x (Normal)");
}
