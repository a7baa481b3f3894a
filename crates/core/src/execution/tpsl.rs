//! Fee-first TP/SL planner.
//!
//! - TP1 is never closer to the entry than `MinMoveForProfit` (an input fraction of the entry
//!   price that covers fees and slippage), nor than one tick.
//! - Break-even: once the unrealized PnL covers the fees (entry paid + exit estimated) times
//!   `1 + k`, the stop moves to entry ± fees per unit + a buffer of ticks.
//! - Pump-aware: in a BLOWOFF the targets come in and the trailing distance tightens; a
//!   MANIPULATED or NEWS-high-risk market either widens the stop or forbids the trade (policy).
//! - Every level is on the tick grid, rounded in the conservative direction: for a long every
//!   level rounds **up** (stops tighter / locking more, targets farther so they still clear the
//!   minimum move), for a short every level rounds **down**.

use crate::domain::{Price, Qty, Side};
use crate::risk::money::{self, Money, Rate, S};
use serde::{Deserialize, Serialize};

/// Market condition as the TP/SL planner needs it (the integrator maps regimes onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarketRisk {
    Normal,
    /// Blow-off phase of a pump: take profit sooner, trail tighter.
    Blowoff,
    /// Manipulation suspected.
    Manipulated,
    NewsHighRisk,
}

/// What to do in a high-risk market.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum HighRiskPolicy {
    /// Trade with the stop distance multiplied by `factor` (>= 1; the size must be computed from
    /// the widened stop).
    WidenStop {
        /// Stop-distance multiplier.
        factor: f64,
    },
    /// Refuse the trade.
    Forbid,
}

/// Planner policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TpSlPolicy {
    /// TP1 distance in multiples of the stop distance.
    pub tp1_r: f64,
    /// TP2 distance in multiples of the stop distance.
    pub tp2_r: f64,
    /// Fraction of the position closed at TP1.
    pub tp1_fraction: f64,
    /// Break-even trigger: unrealized PnL >= fees × (1 + k).
    pub be_fee_k: f64,
    /// Ticks added beyond the fee-covering break-even price.
    pub be_buffer_ticks: i64,
    /// Trailing distance in multiples of the stop distance.
    pub trail_r: f64,
    /// BLOWOFF: target distances multiplied by this (< 1 = sooner).
    pub blowoff_tp_factor: f64,
    /// BLOWOFF: trailing distance multiplied by this (< 1 = tighter).
    pub blowoff_trail_factor: f64,
    /// Policy when MANIPULATED.
    pub manipulated: HighRiskPolicy,
    /// Policy when news is high-risk.
    pub news_high_risk: HighRiskPolicy,
}

impl Default for TpSlPolicy {
    fn default() -> Self {
        TpSlPolicy {
            tp1_r: 1.0,
            tp2_r: 2.0,
            tp1_fraction: 0.5,
            be_fee_k: 0.5,
            be_buffer_ticks: 1,
            trail_r: 1.0,
            blowoff_tp_factor: 0.6,
            blowoff_trail_factor: 0.5,
            manipulated: HighRiskPolicy::WidenStop { factor: 1.5 },
            news_high_risk: HighRiskPolicy::Forbid,
        }
    }
}

/// Inputs of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TpSlRequest {
    pub side: Side,
    /// Planned entry price.
    pub entry: Price,
    /// Setup stop (before regime widening).
    pub stop: Price,
    /// Instrument tick size.
    pub tick: Price,
    /// MinMoveForProfit, fraction of the entry price.
    pub min_move_for_profit: f64,
    /// Market condition.
    pub market: MarketRisk,
}

/// A TP/SL plan; all prices on the tick grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TpSlPlan {
    /// Initial stop.
    pub stop: Price,
    /// First target.
    pub tp1: Price,
    /// Second target.
    pub tp2: Price,
    /// Trailing distance (whole ticks, >= 1 tick).
    pub trail_distance: Price,
    /// Market condition the plan was made for.
    pub market: MarketRisk,
}

/// Why no plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TpSlRefusal {
    /// The policy forbids trading in this market.
    #[error("trading forbidden in a {0:?} market")]
    Forbidden(MarketRisk),
    /// Bad prices or tick, stop on the wrong side.
    #[error("invalid TP/SL input: {0}")]
    Invalid(String),
    /// The stop rounds onto (or past) the entry.
    #[error("stop is less than one tick from entry")]
    StopTooClose,
}

/// MinMoveForProfit from fee rates plus extra cost (slippage, buffer), all fractions.
pub fn min_move_for_profit(entry_fee: Rate, exit_fee: Rate, extra: f64) -> f64 {
    entry_fee.to_f64() + exit_fee.to_f64() + extra.max(0.0)
}

/// Rounds a price on the tick grid in the conservative direction for `side` (long up, short down).
pub fn round_level(side: Side, p: Price, tick: Price) -> Price {
    match side {
        Side::Buy => p.ceil_to_tick(tick),
        Side::Sell => p.floor_to_tick(tick),
    }
}

fn scaled(raw: i64, f: f64) -> i64 {
    let v = raw as f64 * f;
    if v.is_finite() {
        v.round().clamp(0.0, i64::MAX as f64 / 4.0) as i64
    } else {
        0
    }
}

/// Plans the initial stop, two targets and the trailing distance.
pub fn plan(policy: &TpSlPolicy, r: &TpSlRequest) -> Result<TpSlPlan, TpSlRefusal> {
    if r.tick.raw() <= 0 || r.entry.raw() <= 0 || r.stop.raw() <= 0 {
        return Err(TpSlRefusal::Invalid("tick, entry and stop must be > 0".into()));
    }
    let s = r.side.sign();
    let dist = s * (r.entry.raw() - r.stop.raw());
    if dist <= 0 {
        return Err(TpSlRefusal::Invalid(format!("stop {} on the wrong side of entry {}", r.stop, r.entry)));
    }
    let (mut stop_factor, mut tp_factor, mut trail_factor) = (1.0, 1.0, 1.0);
    let high = match r.market {
        MarketRisk::Normal => None,
        MarketRisk::Blowoff => {
            tp_factor = policy.blowoff_tp_factor;
            trail_factor = policy.blowoff_trail_factor;
            None
        }
        MarketRisk::Manipulated => Some(policy.manipulated),
        MarketRisk::NewsHighRisk => Some(policy.news_high_risk),
    };
    match high {
        Some(HighRiskPolicy::Forbid) => return Err(TpSlRefusal::Forbidden(r.market)),
        Some(HighRiskPolicy::WidenStop { factor }) => stop_factor = factor.max(1.0),
        None => {}
    }
    let stop_dist = scaled(dist, stop_factor);
    let stop = round_level(r.side, Price::from_raw(r.entry.raw().saturating_sub(s * stop_dist)), r.tick);
    if s * (r.entry.raw() - stop.raw()) <= 0 || stop.raw() <= 0 {
        return Err(TpSlRefusal::StopTooClose);
    }
    // Exact minimum move: ceil(entry × mm), at least one tick.
    let mm = Rate::from_f64(r.min_move_for_profit.max(0.0));
    let min_move = money::price_times_rate_ceil(r.entry, mm).raw().max(r.tick.raw());
    let target = |r_mult: f64| -> i64 { scaled(dist, r_mult * tp_factor).max(min_move) };
    let level = |d: i64| round_level(r.side, Price::from_raw(r.entry.raw().saturating_add(s * d)), r.tick);
    let tp1 = level(target(policy.tp1_r));
    let tp2 = level(target(policy.tp2_r));
    let tp2 = if s * (tp2.raw() - tp1.raw()) < 0 { tp1 } else { tp2 };
    let trail = Price::from_raw(scaled(dist, policy.trail_r * trail_factor)).floor_to_tick(r.tick);
    let trail_distance = if trail.raw() < r.tick.raw() { r.tick } else { trail };
    Ok(TpSlPlan { stop, tp1, tp2, trail_distance, market: r.market })
}

/// State of an open position needed for the break-even move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakEvenInput {
    pub side: Side,
    /// Average entry.
    pub entry: Price,
    /// Open quantity.
    pub qty: Qty,
    /// Fees paid so far.
    pub fees_paid: Money,
    /// Exit fee rate (taker).
    pub exit_fee: Rate,
    /// Current mark.
    pub mark: Price,
    pub current_stop: Price,
    /// Tick size.
    pub tick: Price,
}

/// New stop at break-even plus fees and buffer, when the unrealized PnL covers
/// `fees × (1 + k)`, the new stop improves on the current one and stays at least one tick on the
/// safe side of the mark. `None` otherwise.
pub fn break_even_stop(policy: &TpSlPolicy, b: &BreakEvenInput) -> Option<Price> {
    if b.qty.raw() <= 0 || b.tick.raw() <= 0 || b.mark.raw() <= 0 {
        return None;
    }
    let s = b.side.sign();
    let fees = money::add(b.fees_paid, money::fee(b.qty, b.mark, b.exit_fee)).max(Money::ZERO);
    let k = Rate::from_f64(policy.be_fee_k.max(0.0));
    let required = fees.raw() as i128 + money::div_ceil(fees.raw() as i128 * k.raw() as i128, S);
    let gross =
        money::money_floor(s as i128 * (money::notional_raw(b.qty, b.mark) - money::notional_raw(b.qty, b.entry)));
    if (gross.raw() as i128) < required {
        return None;
    }
    let per_unit = money::div_ceil(fees.raw() as i128 * S, b.qty.raw() as i128);
    let off = per_unit + b.tick.raw() as i128 * policy.be_buffer_ticks.max(0) as i128;
    let be = Price::from_raw(money::clamp_i64(b.entry.raw() as i128 + s as i128 * off));
    let be = round_level(b.side, be, b.tick);
    let improves = s * (be.raw() - b.current_stop.raw()) > 0;
    let safe = s * (b.mark.raw() - be.raw()) >= b.tick.raw();
    (improves && safe).then_some(be)
}

/// Trailing stop `distance` behind the best price since entry (`extreme`: highest for a long,
/// lowest for a short), when it improves on `current_stop` and stays at least one tick on the
/// safe side of `mark`.
pub fn trailing_stop(
    side: Side,
    extreme: Price,
    distance: Price,
    current_stop: Price,
    mark: Price,
    tick: Price,
) -> Option<Price> {
    if tick.raw() <= 0 || distance.raw() <= 0 {
        return None;
    }
    let s = side.sign();
    let cand = round_level(side, Price::from_raw(extreme.raw().saturating_sub(s * distance.raw())), tick);
    let improves = s * (cand.raw() - current_stop.raw()) > 0;
    let safe = s * (mark.raw() - cand.raw()) >= tick.raw();
    (cand.raw() > 0 && improves && safe).then_some(cand)
}

/// Splits `qty` into the TP1 part (`fraction`, rounded down to the step) and the rest. When the
/// TP1 part would be below `min_qty` (or the rest would), everything goes to one part.
pub fn split_qty(qty: Qty, fraction: f64, step: Qty, min_qty: Qty) -> (Qty, Qty) {
    let f = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    let first = Qty::from_raw(scaled(qty.raw(), f).min(qty.raw())).floor_to_step(step);
    let rest = Qty::from_raw(qty.raw() - first.raw());
    if first.raw() <= 0 || first < min_qty {
        return (Qty::ZERO, qty);
    }
    if rest.raw() > 0 && rest < min_qty {
        return (qty, Qty::ZERO);
    }
    (first, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{m, p, q};
    use proptest::prelude::*;

    fn req(side: Side, entry: &str, stop: &str, tick: &str, mm: f64, market: MarketRisk) -> TpSlRequest {
        TpSlRequest { side, entry: p(entry), stop: p(stop), tick: p(tick), min_move_for_profit: mm, market }
    }

    #[test]
    fn long_and_short_levels_round_conservatively() {
        let pol = TpSlPolicy::default();
        // Long: stop 0.37 below → rounds up to 99.7 (tighter); TP1 = 100.37 → 100.4; TP2 100.74 → 100.8.
        let pl = plan(&pol, &req(Side::Buy, "100", "99.63", "0.2", 0.001, MarketRisk::Normal)).unwrap();
        assert_eq!((pl.stop, pl.tp1, pl.tp2, pl.trail_distance), (p("99.8"), p("100.4"), p("100.8"), p("0.2")));
        // Short mirror: stop 100.37 → 100.2; TP1 99.63 → 99.6; TP2 99.26 → 99.2.
        let pl = plan(&pol, &req(Side::Sell, "100", "100.37", "0.2", 0.001, MarketRisk::Normal)).unwrap();
        assert_eq!((pl.stop, pl.tp1, pl.tp2), (p("100.2"), p("99.6"), p("99.2")));
        for x in [pl.stop, pl.tp1, pl.tp2, pl.trail_distance] {
            assert!(x.is_on_tick(p("0.2")));
        }
    }

    #[test]
    fn tp1_never_below_min_move() {
        let pol = TpSlPolicy::default();
        // Stop 0.05 % away but min move 0.2 %: TP1 goes to 100.2 (ceil of 100.2 on 0.1 grid).
        let pl = plan(&pol, &req(Side::Buy, "100", "99.95", "0.01", 0.002, MarketRisk::Normal)).unwrap();
        assert_eq!(pl.tp1, p("100.2"));
        assert_eq!(pl.tp2, p("100.2"));
        let pl = plan(&pol, &req(Side::Sell, "100", "100.05", "0.01", 0.002, MarketRisk::Normal)).unwrap();
        assert_eq!(pl.tp1, p("99.8"));
        // Blow-off brings targets in, never past the minimum move.
        let n = plan(&pol, &req(Side::Buy, "100", "99", "0.01", 0.002, MarketRisk::Normal)).unwrap();
        let b = plan(&pol, &req(Side::Buy, "100", "99", "0.01", 0.002, MarketRisk::Blowoff)).unwrap();
        assert_eq!((n.tp1, b.tp1), (p("101"), p("100.6")));
        assert_eq!((n.trail_distance, b.trail_distance), (p("1"), p("0.5")));
        let b = plan(&pol, &req(Side::Buy, "100", "99.9", "0.01", 0.002, MarketRisk::Blowoff)).unwrap();
        assert_eq!(b.tp1, p("100.2"));
    }

    #[test]
    fn high_risk_widens_or_forbids() {
        let pol = TpSlPolicy::default();
        let pl = plan(&pol, &req(Side::Buy, "100", "99", "0.01", 0.001, MarketRisk::Manipulated)).unwrap();
        assert_eq!(pl.stop, p("98.5"));
        assert_eq!(
            plan(&pol, &req(Side::Buy, "100", "99", "0.01", 0.001, MarketRisk::NewsHighRisk)),
            Err(TpSlRefusal::Forbidden(MarketRisk::NewsHighRisk))
        );
        let pol2 = TpSlPolicy { manipulated: HighRiskPolicy::Forbid, ..pol };
        assert!(matches!(
            plan(&pol2, &req(Side::Sell, "100", "101", "0.01", 0.001, MarketRisk::Manipulated)),
            Err(TpSlRefusal::Forbidden(_))
        ));
        assert_eq!(
            plan(&pol, &req(Side::Buy, "100", "99.95", "0.1", 0.001, MarketRisk::Normal)),
            Err(TpSlRefusal::StopTooClose)
        );
        assert!(matches!(
            plan(&pol, &req(Side::Buy, "100", "101", "0.1", 0.001, MarketRisk::Normal)),
            Err(TpSlRefusal::Invalid(_))
        ));
    }

    #[test]
    fn break_even_moves_once_fees_are_covered() {
        let pol = TpSlPolicy::default();
        let taker = Rate::from_f64(0.00055);
        let mut b = BreakEvenInput {
            side: Side::Buy,
            entry: p("100"),
            qty: q("10"),
            fees_paid: m("0.55"),
            exit_fee: taker,
            mark: p("100.1"),
            current_stop: p("99"),
            tick: p("0.01"),
        };
        // Gross 1.0 < (0.55 + 0.550550) × 1.5.
        assert_eq!(break_even_stop(&pol, &b), None);
        b.mark = p("100.2");
        // Gross 2.0 >= 1.6517 × …; BE = 100 + 1.1011/10 + 0.01 = 100.12011 → 100.13.
        assert_eq!(break_even_stop(&pol, &b), Some(p("100.13")));
        // Already there: no move.
        b.current_stop = p("100.13");
        assert_eq!(break_even_stop(&pol, &b), None);
        // Short mirror: exit fee at 99.8 is 0.5489; 100 − 1.0989/10 − 0.01 = 99.88011 → 99.88.
        let s = BreakEvenInput { side: Side::Sell, mark: p("99.8"), current_stop: p("101"), ..b };
        assert_eq!(break_even_stop(&pol, &s), Some(p("99.88")));
        // Not a tick away from the mark → no move.
        let tight = BreakEvenInput { mark: p("100.13"), current_stop: p("99"), fees_paid: m("0"), ..b };
        let pol0 = TpSlPolicy { be_fee_k: 0.0, be_buffer_ticks: 12, ..pol };
        assert_eq!(break_even_stop(&pol0, &tight), None);
    }

    #[test]
    fn trailing_and_split() {
        let t = p("0.5");
        assert_eq!(trailing_stop(Side::Buy, p("110.2"), p("2"), p("100"), p("109"), t), Some(p("108.5")));
        assert_eq!(trailing_stop(Side::Buy, p("110.2"), p("2"), p("108.5"), p("109"), t), None);
        assert_eq!(trailing_stop(Side::Buy, p("110.2"), p("2"), p("100"), p("108.6"), t), None);
        assert_eq!(trailing_stop(Side::Sell, p("89.8"), p("2"), p("100"), p("90"), t), Some(p("91.5")));
        assert_eq!(split_qty(q("1.005"), 0.5, q("0.01"), q("0.01")), (q("0.5"), q("0.505")));
        assert_eq!(split_qty(q("0.01"), 0.5, q("0.01"), q("0.01")), (Qty::ZERO, q("0.01")));
        assert_eq!(split_qty(q("0.03"), 0.9, q("0.01"), q("0.02")), (q("0.03"), Qty::ZERO));
        assert!((min_move_for_profit(Rate::from_f64(0.0002), Rate::from_f64(0.00055), 0.0005) - 0.00125).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn plan_invariants(
            long in any::<bool>(),
            tick_i in 0usize..3,
            entry_ticks in 100i64..1_000_000,
            dist_ticks in 1i64..5_000,
            mm_bp in 0i64..100,
            blow in any::<bool>(),
        ) {
            let tick = [p("0.0001"), p("0.1"), p("0.5")][tick_i];
            let side = if long { Side::Buy } else { Side::Sell };
            let s = side.sign();
            prop_assume!(entry_ticks - dist_ticks > 0);
            let entry = Price::from_ticks(entry_ticks, tick);
            let stop = Price::from_ticks(entry_ticks - s * dist_ticks, tick);
            let mm = mm_bp as f64 / 10_000.0;
            let market = if blow { MarketRisk::Blowoff } else { MarketRisk::Normal };
            let pl = plan(&TpSlPolicy::default(), &TpSlRequest { side, entry, stop, tick, min_move_for_profit: mm, market }).unwrap();
            for x in [pl.stop, pl.tp1, pl.tp2, pl.trail_distance] {
                prop_assert!(x.is_on_tick(tick));
            }
            // TP1 clears the minimum move exactly.
            let min_move = money::price_times_rate_ceil(entry, Rate::from_f64(mm)).raw().max(tick.raw());
            prop_assert!(s * (pl.tp1.raw() - entry.raw()) >= min_move);
            prop_assert!(s * (pl.tp2.raw() - pl.tp1.raw()) >= 0);
            // The stop is never farther than asked (normal/blow-off) and on the right side.
            prop_assert!(s * (entry.raw() - pl.stop.raw()) > 0);
            prop_assert!(s * (pl.stop.raw() - stop.raw()) >= 0);
        }
    }
}
