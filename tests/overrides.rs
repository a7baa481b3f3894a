//! The operator's per-symbol overrides (`data/profiles/<SYMBOL>.json` → `overrides`) reach the
//! core as one recorded command and change what it does: blacklist, size, notional and leverage
//! caps, extra score, book depth. A bad override is refused by name, never half applied.

mod common;
use common::driver::{armed_config, CoreDriver};
use scalper::domain::Symbol;
use scalper::engine::event::{ControlCommand, EventKind};
use scalper::engine::output::{FeedCommand, Output};
use scalper::market::data::BookAction;
use scalper::market::profile::SymbolOverride;
use serde_json::Value;
use std::collections::BTreeMap;

const SYMBOLS: [&str; 6] = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT"];

/// Every symbol gets a fresh book with heavier bids: each wants to enter.
fn all_arm(d: &mut CoreDriver) {
    for s in SYMBOLS {
        for i in 0..4 {
            d.book(s, if i == 0 { BookAction::Snapshot } else { BookAction::Delta });
        }
    }
}

fn entry(d: &CoreDriver, sym: &str) -> Option<Value> {
    d.named("ENTRY", Some(sym)).into_iter().next()
}

fn num(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_f64()).unwrap_or(f64::NAN)
}

fn cfg() -> scalper::config::Config {
    let mut cfg = armed_config();
    for c in [&mut cfg.categories.prime, &mut cfg.categories.normal, &mut cfg.categories.wild] {
        c.max_positions = 10;
    }
    cfg.risk.max_portfolio_heat = 1.0;
    cfg
}

#[test]
fn overrides_restrict_each_symbol_as_the_operator_set_them() {
    // Without overrides, every symbol enters.
    let mut base = CoreDriver::new(cfg(), &SYMBOLS);
    all_arm(&mut base);
    for s in SYMBOLS {
        assert!(entry(&base, s).is_some(), "{s} enters without overrides");
    }
    let base_a = entry(&base, "AAAUSDT").unwrap_or_default();

    let mut d = CoreDriver::new(cfg(), &SYMBOLS);
    let o = |f: fn(&mut SymbolOverride)| {
        let mut x = SymbolOverride::default();
        f(&mut x);
        x
    };
    let all: BTreeMap<Symbol, SymbolOverride> = [
        ("AAAUSDT", o(|x| x.size_multiplier = Some(0.5))),
        ("BBBUSDT", o(|x| x.blacklisted = Some(true))),
        ("CCCUSDT", o(|x| x.max_notional = Some(500.0))),
        ("DDDUSDT", o(|x| x.extra_score = Some(1000.0))),
        ("EEEUSDT", o(|x| x.book_depth = Some(1000))),
        ("FFFUSDT", o(|x| x.size_multiplier = Some(2.0))),
    ]
    .into_iter()
    .map(|(s, x)| (Symbol::new(s), x))
    .collect();
    let out = d.ev(EventKind::Control(ControlCommand::SetOverrides(all)));

    let set = d.named("OVERRIDES_SET", None);
    assert_eq!(set.len(), 1);
    assert!(set[0]["refused"]["FFFUSDT"].as_str().unwrap_or("").contains("size_multiplier"), "{set:?}");
    assert!(set[0]["overrides"].get("FFFUSDT").is_none(), "a bad override is not applied: {set:?}");
    let subs: Vec<(Symbol, u16)> = out
        .items
        .iter()
        .filter_map(|o| match o {
            Output::Feed(FeedCommand::Subscribe(v)) => Some(v.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(subs, vec![(Symbol::new("EEEUSDT"), 1000)], "the overridden depth is subscribed");
    assert_eq!(d.named("DEPTH_CHANGED", Some("EEEUSDT"))[0]["depth"], 1000);
    // The book starts over at the new depth, and so does the symbol's state (as on any depth
    // change): its baselines come back as the seeder sends them.
    let now = d.now;
    d.ev(common::warm_baselines("EEEUSDT", now));

    all_arm(&mut d);
    let a = entry(&d, "AAAUSDT").expect("AAA enters");
    assert!(
        (num(&a["qty"]) - num(&base_a["qty"]) * 0.5).abs() <= 0.1 + 1e-9,
        "half size: {} vs {}",
        a["qty"],
        base_a["qty"]
    );
    assert!(entry(&d, "BBBUSDT").is_none(), "blacklisted by override");
    let c = entry(&d, "CCCUSDT").expect("CCC enters");
    assert!(num(&c["notional"]) <= 500.0 + 1e-9, "notional capped: {c}");
    assert!(num(&c["notional"]) > 0.0);
    assert!(entry(&d, "DDDUSDT").is_none(), "an extra score of 1000 never arms");
    assert!(entry(&d, "EEEUSDT").is_some(), "a depth override does not stop trading");
    assert!(entry(&d, "FFFUSDT").is_some(), "the refused override left FFF as it was");

    // The whole set is replaced: with none left, BBB trades again.
    d.ev(EventKind::Control(ControlCommand::SetOverrides(BTreeMap::new())));
    for i in 0..4 {
        d.book("BBBUSDT", if i == 0 { BookAction::Snapshot } else { BookAction::Delta });
    }
    assert!(entry(&d, "BBBUSDT").is_some(), "overrides removed: BBB enters");
}
