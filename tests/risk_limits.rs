//! The category position cap and the portfolio heat hold while entries are still working: an
//! entry resting at the venue fills without another check, so the pre-trade check counts it as
//! open. (Before this, ten symbols arming in the same second each saw "0 open" and all entered.)

mod common;
use common::driver::{armed_config, CoreDriver};
use scalper::config::Config;
use scalper::domain::{Price, Side};
use scalper::market::data::BookAction;
use serde_json::Value;

const SYMBOLS: [&str; 5] = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"];

struct Market(CoreDriver);

impl std::ops::Deref for Market {
    type Target = CoreDriver;
    fn deref(&self) -> &CoreDriver {
        &self.0
    }
}

impl std::ops::DerefMut for Market {
    fn deref_mut(&mut self) -> &mut CoreDriver {
        &mut self.0
    }
}

impl Market {
    fn new(cfg: Config) -> Market {
        Market(CoreDriver::new(cfg, &SYMBOLS))
    }
    /// Every symbol gets a fresh book with heavier bids, so every one of them wants to enter.
    fn all_arm(&mut self) {
        for s in SYMBOLS {
            for i in 0..4 {
                let action = if i == 0 { BookAction::Snapshot } else { BookAction::Delta };
                self.book(s, action);
            }
        }
    }
    fn named(&self, name: &str) -> Vec<&Value> {
        self.records().filter(|r| r.body["event"] == name).map(|r| &r.body).collect()
    }
    /// Aggressors trade through `symbol`'s resting entry so it fills completely.
    fn fill(&mut self, symbol: &str, entry: &Value) {
        let side = if entry["side"] == "Buy" { Side::Buy } else { Side::Sell };
        let price = common::p(entry["entry"].as_str().expect("entry price"));
        let through = Price::from_raw(price.raw() - side.sign() * common::p("0.01").raw());
        self.trade(symbol, through, "100000", side.opposite());
    }
}

#[test]
fn working_entries_count_against_the_category_cap() {
    let mut cfg = armed_config();
    for c in [&mut cfg.categories.prime, &mut cfg.categories.normal, &mut cfg.categories.wild] {
        c.max_positions = 2;
    }
    let mut m = Market::new(cfg);
    m.all_arm();
    let entries: Vec<Value> = m.named("ENTRY").into_iter().cloned().collect();
    assert_eq!(entries.len(), 2, "two working entries at most with a cap of 2: {entries:?}");
    let refused: Vec<&Value> = m.named("ENTRY_REFUSED");
    assert!(
        refused.iter().any(|r| r["reason"].as_str().is_some_and(|t| t.contains("2 positions open, max 2"))),
        "the others are refused by the cap: {refused:?}"
    );
    // Filled, they are positions; a second wave of signals still finds the cap full.
    let placed: Vec<(String, Value)> = m
        .records()
        .filter(|r| r.body["event"] == "ENTRY")
        .map(|r| (r.symbol.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default(), r.body.clone()))
        .collect();
    for (sym, e) in &placed {
        m.fill(sym, e);
    }
    assert_eq!(m.e.pipeline().desk().portfolio.positions().count(), 2, "both entries filled");
    m.all_arm();
    assert_eq!(m.named("ENTRY").len(), 2, "no entry beyond the cap once the two are positions");
    assert_eq!(m.e.pipeline().desk().portfolio.positions().count(), 2);
}

#[test]
fn working_entries_count_in_the_portfolio_heat() {
    let mut cfg = armed_config();
    // Each entry here risks ~15.7 USDT at its stop (its size is capped by the notional limit);
    // 0.4 % of 10,000 USDT of heat leaves room for two, not three.
    cfg.risk.per_trade = 0.003;
    cfg.risk.max_portfolio_heat = 0.004;
    for c in [&mut cfg.categories.prime, &mut cfg.categories.normal, &mut cfg.categories.wild] {
        c.max_positions = 10;
    }
    let mut m = Market::new(cfg);
    m.all_arm();
    let risks: Vec<f64> =
        m.named("ENTRY").iter().filter_map(|e| e["risk"].as_str().and_then(|r| r.parse().ok())).collect();
    assert_eq!(risks.len(), 2, "two entries fit under the heat limit: risks {risks:?}");
    assert!(risks.iter().all(|r| *r > 40.0 / 3.0 && *r <= 20.0), "the sizing this test relies on: {risks:?}");
    let refused = m.named("ENTRY_REFUSED");
    assert!(
        refused.iter().any(|r| r["reason"].as_str().is_some_and(|t| t.starts_with("heat after trade"))),
        "the third is refused by the heat it would add: {refused:?}"
    );
}
