//! Portfolio-level risk: RISK_OFF triggers and the pre-trade check.
//!
//! [`RiskEngine::verdict`] says whether new trades are allowed at all (RISK_OFF when heat, the
//! unrealized drawdown or the day's realized loss is over its limit, or when a pause / panic /
//! degraded / global-regime / integrity / kill-switch flag is set). [`RiskEngine::pre_trade_check`]
//! additionally refuses a candidate that would push the heat over the maximum or exceed the
//! category's position count. Both are pure functions of the portfolio, the flags and `now_ms`.

use crate::config::Config;
use crate::domain::{Category, Price, Qty, Side, Symbol, TimeMs};
use crate::risk::money::{self, Money, Rate};
use crate::state::portfolio::{risk_of, Portfolio};
use serde::{Deserialize, Serialize};

/// Risk limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskLimits {
    /// Max Σ open risk / balance.
    pub max_heat: Rate,
    /// Max realized loss of a UTC day / balance at the start of the day.
    pub daily_loss: Rate,
    /// Max unrealized loss / balance.
    pub unrealized_drawdown: Rate,
    /// Max open positions per category (Prime, Normal, Wild).
    pub max_positions: [u32; 3],
}

/// Entries working at the venue whose positions are not (fully) open yet. They fill without
/// another check, so the pre-trade check counts them as if open: without this, ten entries
/// resting at once all pass a "max 3 per category" and a heat limit, then all fill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Working entries without a position yet, per category (Prime, Normal, Wild).
    pub counts: [usize; 3],
    /// Planned loss at the stop of the part of those entries not filled yet, USDT.
    pub risk: Money,
}

impl Committed {
    /// One more working entry of `category`; `unfilled_risk` is its planned risk still to come.
    pub fn add(&mut self, category: Category, has_position: bool, unfilled_risk: Money) {
        if !has_position {
            self.counts[cat_index(category)] += 1;
        }
        self.risk = money::add(self.risk, unfilled_risk.max(Money::ZERO));
    }
}

fn cat_index(c: Category) -> usize {
    match c {
        Category::Prime => 0,
        Category::Normal => 1,
        Category::Wild => 2,
    }
}

impl RiskLimits {
    /// From configuration.
    pub fn from_config(cfg: &Config) -> Self {
        let c = &cfg.categories;
        RiskLimits {
            max_heat: Rate::from_f64(cfg.risk.max_portfolio_heat),
            daily_loss: Rate::from_f64(cfg.risk.daily_loss_limit),
            unrealized_drawdown: Rate::from_f64(cfg.risk.unrealized_drawdown_limit),
            max_positions: [c.prime.max_positions, c.normal.max_positions, c.wild.max_positions],
        }
    }
    /// Max positions of a category.
    pub fn max_positions(&self, c: Category) -> u32 {
        self.max_positions[cat_index(c)]
    }
}

/// Engine-level flags that block new trades (inputs; owned elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RiskFlags {
    /// Operator paused new entries.
    pub paused: bool,
    /// PANIC: close everything.
    pub panic: bool,
    /// Tick latency over budget.
    pub degraded: bool,
    /// Global regime says risk-off (market-wide crash, feed down…).
    pub global_risk_off: bool,
    /// Local and venue state disagree.
    pub integrity_broken: bool,
    /// Kill switch engaged.
    pub kill_switch: bool,
}

/// Why new trades are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskOffReason {
    /// Heat above max.
    Heat {
        /// Current heat.
        heat: f64,
        max: f64,
    },
    /// Unrealized loss above the limit.
    UnrealizedDrawdown {
        /// Current fraction.
        drawdown: f64,
        max: f64,
    },
    /// The day's realized loss above the limit.
    DailyLoss {
        /// Current loss fraction.
        loss: f64,
        max: f64,
    },
    /// Paused by the operator.
    Paused,
    Panic,
    /// Degraded latency.
    Degraded,
    /// Global regime risk-off.
    GlobalRegime,
    IntegrityBroken,
    /// Kill switch engaged.
    KillSwitch,
}

/// Whether new trades are allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reasons", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskVerdict {
    /// New trades allowed.
    Ok,
    /// RISK_OFF: new trades refused, for these reasons (in a fixed order).
    RiskOff(Vec<RiskOffReason>),
}

impl RiskVerdict {
    /// True when new trades are allowed.
    pub fn allows_new_trades(&self) -> bool {
        matches!(self, RiskVerdict::Ok)
    }
}

/// A trade the core would like to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub symbol: Symbol,
    pub category: Category,
    pub side: Side,
    /// Planned entry.
    pub entry: Price,
    pub stop: Price,
    pub qty: Qty,
    /// Modelled loss at the stop (from sizing); the larger of this and the portfolio's own risk
    /// formula is counted.
    pub risk: Money,
}

/// Why a candidate was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// RISK_OFF.
    #[error("risk off: {0:?}")]
    RiskOff(Vec<RiskOffReason>),
    /// A position is already open on the symbol.
    #[error("position already open on {0}")]
    AlreadyOpen(Symbol),
    /// Category position count at its max.
    #[error("{category:?}: {open} positions open, max {max}")]
    MaxPositions {
        category: Category,
        /// Open now.
        open: usize,
        max: u32,
    },
    /// Heat after the trade would exceed the max.
    #[error("heat after trade {heat_after:.5} > max {max:.5}")]
    HeatExceeded {
        /// Heat with the candidate.
        heat_after: f64,
        max: f64,
    },
    /// Zero qty, bad prices or stop on the wrong side.
    #[error("invalid candidate: {0}")]
    Invalid(String),
}

/// Pure risk engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskEngine {
    limits: RiskLimits,
}

impl RiskEngine {
    /// New engine.
    pub fn new(limits: RiskLimits) -> Self {
        RiskEngine { limits }
    }
    /// Current limits.
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }
    /// Replaces the limits (config reload).
    pub fn set_limits(&mut self, l: RiskLimits) {
        self.limits = l;
    }

    /// RISK_OFF reasons now (empty vector = none). Order: heat, drawdown, daily loss, then flags.
    pub fn risk_off_reasons(&self, p: &Portfolio, flags: &RiskFlags, now_ms: TimeMs) -> Vec<RiskOffReason> {
        let l = &self.limits;
        let mut r = Vec::new();
        let bal = p.balance();
        if money::exceeds_rate(p.open_risk(), bal, l.max_heat) {
            r.push(RiskOffReason::Heat { heat: p.heat(), max: l.max_heat.to_f64() });
        }
        if money::exceeds_rate(p.unrealized_loss(), bal, l.unrealized_drawdown) {
            r.push(RiskOffReason::UnrealizedDrawdown {
                drawdown: p.unrealized_drawdown(),
                max: l.unrealized_drawdown.to_f64(),
            });
        }
        let d = p.daily(now_ms);
        let loss = Money::from_raw((-d.realized.raw()).max(0));
        if money::exceeds_rate(loss, d.start_balance, l.daily_loss) {
            r.push(RiskOffReason::DailyLoss { loss: money::ratio(loss, d.start_balance), max: l.daily_loss.to_f64() });
        }
        for (on, why) in [
            (flags.paused, RiskOffReason::Paused),
            (flags.panic, RiskOffReason::Panic),
            (flags.degraded, RiskOffReason::Degraded),
            (flags.global_risk_off, RiskOffReason::GlobalRegime),
            (flags.integrity_broken, RiskOffReason::IntegrityBroken),
            (flags.kill_switch, RiskOffReason::KillSwitch),
        ] {
            if on {
                r.push(why);
            }
        }
        r
    }

    /// Whether new trades are allowed now.
    pub fn verdict(&self, p: &Portfolio, flags: &RiskFlags, now_ms: TimeMs) -> RiskVerdict {
        let r = self.risk_off_reasons(p, flags, now_ms);
        if r.is_empty() {
            RiskVerdict::Ok
        } else {
            RiskVerdict::RiskOff(r)
        }
    }

    /// Risk counted for a candidate: max(its modelled risk, the portfolio's open-risk formula).
    pub fn candidate_risk(&self, p: &Portfolio, c: &Candidate) -> Money {
        c.risk.max(risk_of(c.side, c.entry, c.stop, c.qty, p.exit_fee()))
    }

    /// Room left under the max heat, USDT (0 when at or over).
    pub fn heat_headroom(&self, p: &Portfolio) -> Money {
        let max = money::money_times_rate_floor(p.balance(), self.limits.max_heat);
        Money::from_raw(max.raw().saturating_sub(p.open_risk().raw()).max(0))
    }

    /// Accepts or refuses a candidate trade when nothing else is working at the venue.
    pub fn pre_trade_check(
        &self,
        p: &Portfolio,
        flags: &RiskFlags,
        c: &Candidate,
        now_ms: TimeMs,
    ) -> Result<(), Refusal> {
        self.pre_trade_check_with(p, &Committed::default(), flags, c, now_ms)
    }

    /// Accepts or refuses a candidate trade, counting the working entries in `committed` as
    /// open positions (category count) and open risk (heat).
    pub fn pre_trade_check_with(
        &self,
        p: &Portfolio,
        committed: &Committed,
        flags: &RiskFlags,
        c: &Candidate,
        now_ms: TimeMs,
    ) -> Result<(), Refusal> {
        if c.qty.raw() <= 0 || c.entry.raw() <= 0 || c.stop.raw() <= 0 {
            return Err(Refusal::Invalid("qty, entry and stop must be > 0".into()));
        }
        if c.side.sign() * (c.entry.raw() - c.stop.raw()) <= 0 {
            return Err(Refusal::Invalid(format!("stop {} on the wrong side of entry {}", c.stop, c.entry)));
        }
        let off = self.risk_off_reasons(p, flags, now_ms);
        if !off.is_empty() {
            return Err(Refusal::RiskOff(off));
        }
        if p.position(&c.symbol).is_some() {
            return Err(Refusal::AlreadyOpen(c.symbol.clone()));
        }
        let open = p.count_in(c.category) + committed.counts[cat_index(c.category)];
        let max = self.limits.max_positions(c.category);
        if open >= max as usize {
            return Err(Refusal::MaxPositions { category: c.category, open, max });
        }
        // The entry fee (at the taker rate, the worst case) leaves the balance when the trade
        // fills: check the heat against the balance after it.
        let after = money::add(money::add(p.open_risk(), committed.risk), self.candidate_risk(p, c));
        let bal_after = money::sub(p.balance(), money::fee(c.qty, c.entry, p.exit_fee()).max(Money::ZERO));
        if money::exceeds_rate(after, bal_after, self.limits.max_heat) {
            return Err(Refusal::HeatExceeded {
                heat_after: money::ratio(after, bal_after),
                max: self.limits.max_heat.to_f64(),
            });
        }
        Ok(())
    }

    /// Open positions ordered riskiest first (largest open risk, then largest unrealized loss,
    /// then symbol): the order in which to close when de-risking.
    pub fn close_first(&self, p: &Portfolio) -> Vec<Symbol> {
        let mut v: Vec<(Money, Money, &Symbol)> =
            p.positions().map(|x| (x.open_risk(p.exit_fee()), x.unrealized(), &x.symbol)).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
        v.into_iter().map(|(_, _, s)| s.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::order::{Fill, Liquidity};
    use crate::state::portfolio::{risk_of, PositionPlan, DAY_MS};
    use crate::testkit::{m, p, q};
    use proptest::prelude::*;

    const TAKER: Rate = Rate::from_raw(55_000);
    fn limits() -> RiskLimits {
        RiskLimits {
            max_heat: Rate::from_f64(0.03),
            daily_loss: Rate::from_f64(0.03),
            unrealized_drawdown: Rate::from_f64(0.05),
            max_positions: [3, 3, 1],
        }
    }
    fn cand(sym: &str, cat: Category, entry: &str, stop: &str, qty: &str) -> Candidate {
        let (e, s, qq) = (p(entry), p(stop), q(qty));
        Candidate {
            symbol: Symbol::new(sym),
            category: cat,
            side: if e > s { Side::Buy } else { Side::Sell },
            entry: e,
            stop: s,
            qty: qq,
            risk: Money::ZERO,
        }
    }
    /// Opens the candidate at its entry with a taker fill.
    fn open(pf: &mut Portfolio, c: &Candidate, ts: i64) {
        let f = Fill {
            symbol: c.symbol.clone(),
            order_id: "o".into(),
            client_id: "c".into(),
            exec_id: "e".into(),
            side: c.side,
            price: c.entry,
            qty: c.qty,
            fee: money::fee(c.qty, c.entry, TAKER),
            liquidity: Liquidity::Taker,
            reduce_only: false,
            ts_ms: ts,
            venue_pnl: None,
        };
        let plan = PositionPlan { category: c.category, stop: c.stop, take_profits: vec![], planned_risk: c.risk };
        pf.on_fill(&f, Some(&plan)).unwrap();
    }
    fn close(pf: &mut Portfolio, sym: &str, price: &str, ts: i64) {
        let pos = pf.position(&Symbol::new(sym)).unwrap().clone();
        let f = Fill {
            symbol: pos.symbol.clone(),
            order_id: "o".into(),
            client_id: "x".into(),
            exec_id: "e2".into(),
            side: pos.side.opposite(),
            price: p(price),
            qty: pos.qty,
            fee: money::fee(pos.qty, p(price), TAKER),
            liquidity: Liquidity::Taker,
            reduce_only: true,
            ts_ms: ts,
            venue_pnl: None,
        };
        pf.on_fill(&f, None).unwrap();
    }

    #[test]
    fn working_entries_count_as_open_positions_and_open_risk() {
        let eng = RiskEngine::new(limits());
        let pf = Portfolio::new(m("10000"), TAKER, 0);
        let f = RiskFlags::default();
        let c = cand("CUSDT", Category::Normal, "100", "90", "9.9");
        eng.pre_trade_check_with(&pf, &Committed::default(), &f, &c, 1).unwrap();
        // Three Normal entries working (limit 3): a fourth is over the cap.
        let mut full = Committed::default();
        for _ in 0..3 {
            full.add(Category::Normal, false, m("1"));
        }
        assert!(matches!(
            eng.pre_trade_check_with(&pf, &full, &f, &c, 1),
            Err(Refusal::MaxPositions { open: 3, max: 3, .. })
        ));
        // A partly filled entry is already a position: its count is the portfolio's, only its
        // unfilled risk is added.
        let mut partial = Committed::default();
        partial.add(Category::Normal, true, m("250"));
        assert_eq!(partial.counts, [0, 0, 0]);
        // 250 USDT still to come + ~99 for the candidate is over 3 % of 10,000.
        assert!(matches!(eng.pre_trade_check_with(&pf, &partial, &f, &c, 1), Err(Refusal::HeatExceeded { .. })));
        // Another category's working entries do not count against this one's cap.
        let mut wild = Committed::default();
        for _ in 0..5 {
            wild.add(Category::Wild, false, Money::ZERO);
        }
        eng.pre_trade_check_with(&pf, &wild, &f, &c, 1).unwrap();
    }

    #[test]
    fn heat_limit_refuses_the_trade_that_would_cross_it() {
        let eng = RiskEngine::new(limits());
        let mut pf = Portfolio::new(m("10000"), TAKER, 0);
        let f = RiskFlags::default();
        // Risk 100 × 1 + fee 0.0495 ≈ 1 % of equity each.
        let a = cand("AUSDT", Category::Prime, "100", "90", "9.9");
        eng.pre_trade_check(&pf, &f, &a, 1).unwrap();
        open(&mut pf, &a, 1);
        let b = cand("BUSDT", Category::Normal, "100", "110", "9.9");
        eng.pre_trade_check(&pf, &f, &b, 1).unwrap();
        open(&mut pf, &b, 1);
        let c = cand("CUSDT", Category::Normal, "50", "45", "40");
        let err = eng.pre_trade_check(&pf, &f, &c, 1).unwrap_err();
        assert!(matches!(err, Refusal::HeatExceeded { heat_after, .. } if heat_after > 0.03), "{err:?}");
        let c_small = Candidate { qty: q("19"), ..c.clone() };
        eng.pre_trade_check(&pf, &f, &c_small, 1).unwrap();
        // The candidate's modelled risk counts when it is larger.
        let c_risky = Candidate { risk: m("200"), ..c_small };
        assert!(matches!(eng.pre_trade_check(&pf, &f, &c_risky, 1), Err(Refusal::HeatExceeded { .. })));
        assert!(eng.heat_headroom(&pf) > Money::ZERO);
        assert!(eng.verdict(&pf, &f, 1).allows_new_trades());
        // Already open, category max.
        assert_eq!(eng.pre_trade_check(&pf, &f, &a, 1), Err(Refusal::AlreadyOpen(Symbol::new("AUSDT"))));
        let mut pf2 = Portfolio::new(m("10000"), TAKER, 0);
        open(&mut pf2, &cand("W1USDT", Category::Wild, "1", "0.99", "10"), 1);
        let w2 = cand("W2USDT", Category::Wild, "1", "0.99", "10");
        assert!(matches!(eng.pre_trade_check(&pf2, &f, &w2, 1), Err(Refusal::MaxPositions { max: 1, .. })));
        let bad = cand("XUSDT", Category::Prime, "1", "0.99", "10");
        let bad = Candidate { side: Side::Sell, ..bad };
        assert!(matches!(eng.pre_trade_check(&pf, &f, &bad, 1), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn risk_off_triggers() {
        let eng = RiskEngine::new(limits());
        let mut pf = Portfolio::new(m("10000"), TAKER, 0);
        let f = RiskFlags::default();
        // Heat above max after a stop is widened.
        let a = cand("AUSDT", Category::Prime, "100", "90", "20");
        open(&mut pf, &a, 1);
        assert!(eng.verdict(&pf, &f, 1).allows_new_trades());
        pf.set_stop(&a.symbol, p("80")).unwrap();
        let v = eng.verdict(&pf, &f, 1);
        assert!(matches!(&v, RiskVerdict::RiskOff(r) if matches!(r[0], RiskOffReason::Heat { .. })), "{v:?}");
        pf.set_stop(&a.symbol, p("95")).unwrap();
        // Unrealized drawdown (balance 9998.9 after the entry fee): −499 is under 5 %, −520 over.
        pf.mark(&a.symbol, p("75.05"), 2);
        assert!(eng.verdict(&pf, &f, 2).allows_new_trades());
        pf.mark(&a.symbol, p("74"), 2);
        let v = eng.verdict(&pf, &f, 2);
        assert!(matches!(&v, RiskVerdict::RiskOff(r) if matches!(r[0], RiskOffReason::UnrealizedDrawdown { .. })));
        // Daily realized loss: close at 84 → −320 − fees > 3 %.
        close(&mut pf, "AUSDT", "84", 3);
        let v = eng.verdict(&pf, &f, 3);
        assert!(
            matches!(&v, RiskVerdict::RiskOff(r) if r.len() == 1 && matches!(r[0], RiskOffReason::DailyLoss { .. }))
        );
        let c = cand("BUSDT", Category::Prime, "10", "9", "1");
        assert!(matches!(eng.pre_trade_check(&pf, &f, &c, 3), Err(Refusal::RiskOff(_))));
        // Next UTC day: allowed again.
        assert!(eng.verdict(&pf, &f, DAY_MS).allows_new_trades());
        eng.pre_trade_check(&pf, &f, &c, DAY_MS).unwrap();
        // Flags.
        let all = RiskFlags {
            paused: true,
            panic: true,
            degraded: true,
            global_risk_off: true,
            integrity_broken: true,
            kill_switch: true,
        };
        let RiskVerdict::RiskOff(r) = eng.verdict(&pf, &all, DAY_MS) else { panic!() };
        assert_eq!(
            r,
            vec![
                RiskOffReason::Paused,
                RiskOffReason::Panic,
                RiskOffReason::Degraded,
                RiskOffReason::GlobalRegime,
                RiskOffReason::IntegrityBroken,
                RiskOffReason::KillSwitch
            ]
        );
        for flags in [
            RiskFlags { paused: true, ..f },
            RiskFlags { degraded: true, ..f },
            RiskFlags { integrity_broken: true, ..f },
        ] {
            assert!(matches!(eng.pre_trade_check(&pf, &flags, &c, DAY_MS), Err(Refusal::RiskOff(_))));
        }
        let j = serde_json::to_value(eng.verdict(&pf, &RiskFlags { paused: true, ..f }, DAY_MS)).unwrap();
        assert_eq!(j["verdict"], "RISK_OFF");
        assert_eq!(j["reasons"][0]["reason"], "PAUSED");
    }

    #[test]
    fn heat_check_counts_the_entry_fee() {
        let eng = RiskEngine::new(limits());
        let pf = Portfolio::new(m("10000"), TAKER, 0);
        // Risk 10.0495 × 29.85 = 299.977575 ≤ 3 % of 10000, but the entry fee 1.64175 leaves
        // 9998.35825, whose 3 % is 299.95: refused.
        let c = cand("AUSDT", Category::Prime, "100", "90", "29.85");
        assert_eq!(eng.candidate_risk(&pf, &c), m("299.977575"));
        assert!(matches!(eng.pre_trade_check(&pf, &RiskFlags::default(), &c, 0), Err(Refusal::HeatExceeded { .. })));
        let c = Candidate { qty: q("29.8"), ..c };
        eng.pre_trade_check(&pf, &RiskFlags::default(), &c, 0).unwrap();
        let mut pf = pf;
        open(&mut pf, &c, 0);
        assert!(!money::exceeds_rate(pf.open_risk(), pf.balance(), limits().max_heat));
    }

    #[test]
    fn close_first_orders_by_risk() {
        let eng = RiskEngine::new(limits());
        let mut pf = Portfolio::new(m("100000"), TAKER, 0);
        open(&mut pf, &cand("AUSDT", Category::Prime, "100", "99", "10"), 1);
        open(&mut pf, &cand("BUSDT", Category::Prime, "100", "90", "10"), 1);
        open(&mut pf, &cand("CUSDT", Category::Normal, "100", "105", "10"), 1);
        let order: Vec<String> = eng.close_first(&pf).iter().map(|s| s.to_string()).collect();
        assert_eq!(order, ["BUSDT", "CUSDT", "AUSDT"]);
    }

    proptest! {
        #[test]
        fn heat_never_exceeds_max_after_accepted_signals(
            signals in proptest::collection::vec(
                (0u8..20, 0usize..3, 1i64..20_000, 1i64..2_000, 900i64..1_100, any::<bool>(), any::<bool>()),
                1..60,
            )
        ) {
            let eng = RiskEngine::new(limits());
            let mut pf = Portfolio::new(m("10000"), TAKER, 0);
            let flags = RiskFlags::default();
            let max = limits().max_heat;
            for (i, (sym, cat, price, dist_bp, frac, long, close_one)) in signals.into_iter().enumerate() {
                let ts = i as i64;
                let cat = [Category::Prime, Category::Normal, Category::Wild][cat];
                let entry = Price::from_raw(price * 1_000_000);
                let d = (entry.raw() * dist_bp / 10_000).max(1);
                let side = if long { Side::Buy } else { Side::Sell };
                let stop = Price::from_raw(entry.raw() - side.sign() * d);
                if stop.raw() <= 0 { continue; }
                // Size the candidate at 90 %..110 % of the heat headroom, so that many signals
                // land right at the limit.
                let unit = risk_of(side, entry, stop, Qty::from_raw(crate::domain::SCALE), TAKER).to_f64();
                let room = eng.heat_headroom(&pf).to_f64().max(1.0);
                let units = room * frac as f64 / 1_000.0 / unit;
                let qty = Qty::from_f64(units).floor_to_step(Qty::from_raw(1_000));
                if qty.raw() <= 0 { continue; }
                let c = Candidate {
                    symbol: Symbol::new(&format!("S{sym}USDT")),
                    category: cat, side, entry, stop, qty,
                    risk: Money::ZERO,
                };
                if eng.pre_trade_check(&pf, &flags, &c, ts).is_ok() {
                    open(&mut pf, &c, ts);
                }
                prop_assert!(!money::exceeds_rate(pf.open_risk(), pf.balance(), max), "heat {}", pf.heat());
                if close_one {
                    // Close the riskiest position at its stop (a full stop-out).
                    if let Some(s) = eng.close_first(&pf).first().cloned() {
                        let stop = pf.position(&s).unwrap().stop.to_string();
                        close(&mut pf, s.as_str(), &stop, ts);
                    }
                    prop_assert!(!money::exceeds_rate(pf.open_risk(), pf.balance(), max), "heat {}", pf.heat());
                }
            }
        }
    }
}
