//! Position sizing from the stop distance.
//!
//! The size is the largest multiple of the instrument's quantity step whose loss at the stop is
//! at most R = `risk_per_trade × equity`, where the loss at the stop counts (exactly, in
//! fixed-point):
//!
//! - the entry fill: the planned entry, worsened by the expected slippage when the entry is taker;
//! - the stop fill: the stop worsened by the expected slippage **and** the latency price buffer
//!   (the stop is a stop-market, so it exits as taker);
//! - the entry fee at the maker or taker rate as planned, and the exit fee at the taker rate.
//!
//! The size is then capped by the category's max notional, the margin available at the allowed
//! leverage (`min(category, instrument)`), and the instrument's max qty; a size below the
//! instrument's min qty or min notional is refused with the reason.

use crate::config::{CategoryLimits, Config};
use crate::domain::{Fixed, Price, Qty, Side};
use crate::execution::order::Liquidity;
use crate::market::data::Instrument;
use crate::risk::money::{self, FeeRates, Money, Rate, S, S2};
use serde::{Deserialize, Serialize};

/// Account-wide sizing parameters (from configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizingParams {
    /// Loss at the stop of one trade, fraction of equity (R).
    pub risk_per_trade: Rate,
    pub fees: FeeRates,
    /// Expected slippage of a taker fill, fraction of price.
    pub slippage: Rate,
    /// Latency price buffer added to the stop fill, fraction of price.
    pub latency_buffer: Rate,
}

impl SizingParams {
    /// From configuration (`latency_price_buffer_pct` is in percent) and an expected taker
    /// slippage fraction.
    pub fn from_config(cfg: &Config, slippage: f64) -> Self {
        SizingParams {
            risk_per_trade: Rate::from_f64(cfg.risk.per_trade),
            fees: FeeRates::from_config(&cfg.fees),
            slippage: Rate::from_f64(slippage.max(0.0)),
            latency_buffer: Rate::from_f64(cfg.latency_price_buffer_pct.max(0.0) / 100.0),
        }
    }
}

/// Per-symbol limits: category limits combined with the instrument's trading rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizingLimits {
    /// Max leverage: `min(category, instrument)`.
    pub max_leverage: Fixed,
    /// Max position notional, USDT.
    pub max_notional: Money,
    /// Quantity step.
    pub qty_step: Qty,
    /// Minimum order quantity.
    pub min_qty: Qty,
    /// Maximum order quantity (0 = none).
    pub max_qty: Qty,
    /// Minimum order notional, USDT (0 = none).
    pub min_notional: Money,
}

impl SizingLimits {
    /// Combines a category's limits with an instrument's rules.
    pub fn new(cat: &CategoryLimits, inst: &Instrument) -> Self {
        let mut lev = Fixed::from_f64(cat.max_leverage.max(0.0));
        if inst.max_leverage.raw() > 0 && inst.max_leverage.0 < lev {
            lev = inst.max_leverage.0;
        }
        SizingLimits {
            max_leverage: lev,
            max_notional: Money::from_f64(cat.max_notional.max(0.0)),
            qty_step: inst.qty_step,
            min_qty: inst.min_qty,
            max_qty: inst.max_qty,
            min_notional: inst.min_notional.0,
        }
    }

    /// The same limits under the operator's per-symbol caps (each only lowers its limit;
    /// non-positive or non-finite caps are ignored, validation refuses them earlier).
    pub fn capped(mut self, max_leverage: Option<f64>, max_notional: Option<f64>) -> Self {
        if let Some(l) = max_leverage.filter(|l| l.is_finite() && *l > 0.0) {
            self.max_leverage = self.max_leverage.min(Fixed::from_f64(l));
        }
        if let Some(n) = max_notional.filter(|n| n.is_finite() && *n > 0.0) {
            self.max_notional = self.max_notional.min(Money::from_f64(n));
        }
        self
    }
}

/// One sizing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeRequest {
    /// Direction (`Buy` = long).
    pub side: Side,
    /// Planned entry price.
    pub entry: Price,
    pub stop: Price,
    /// Planned entry liquidity (maker entry pays the maker fee and no slippage).
    pub entry_liquidity: Liquidity,
    /// Account equity, USDT.
    pub equity: Money,
    /// Margin available for this position, USDT.
    pub available_margin: Money,
}

/// Which limit reduced the size below the risk budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeLimit {
    /// Category max notional.
    MaxNotional,
    /// Available margin × max leverage.
    Margin,
    /// Instrument max qty.
    MaxQty,
}

/// A computed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizing {
    /// Quantity (multiple of the step).
    pub qty: Qty,
    /// Notional at the estimated entry fill (rounded up).
    pub notional: Money,
    /// Initial margin at the max leverage (rounded up).
    pub margin: Money,
    /// Leverage the margin assumes.
    pub leverage: Fixed,
    /// Risk budget R.
    pub risk_budget: Money,
    /// Exact modelled loss at the stop (<= R).
    pub loss_at_stop: Money,
    /// Estimated entry fill price.
    pub entry_fill: Price,
    /// Estimated stop fill price.
    pub stop_fill: Price,
    /// Limit that capped the size, if any.
    pub limited_by: Option<SizeLimit>,
}

/// Why no size was produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SizeRefusal {
    /// A non-positive price, equity, step or rate.
    #[error("invalid sizing input: {0}")]
    InvalidInput(String),
    /// The stop is not below (long) / above (short) the entry.
    #[error("stop {stop} is on the wrong side of entry {entry}")]
    StopOnWrongSide { entry: Price, stop: Price },
    /// The size fitting the budget and limits is below the instrument's min qty.
    #[error("size {qty} below min qty {min_qty} (limited by {limited_by:?})")]
    BelowMinQty {
        /// Size found.
        qty: Qty,
        /// Instrument min qty.
        min_qty: Qty,
        /// Limit that capped it (None = the risk budget).
        limited_by: Option<SizeLimit>,
    },
    /// The size's notional is below the instrument's min notional.
    #[error("notional {notional} below min notional {min_notional}")]
    BelowMinNotional {
        /// Notional of the size found.
        notional: Money,
        /// Instrument min notional.
        min_notional: Money,
    },
}

/// Estimated fill prices `(entry_fill, stop_fill)` of the loss model.
pub fn fill_estimates(p: &SizingParams, side: Side, entry: Price, stop: Price, liq: Liquidity) -> (Price, Price) {
    let entry_off = match liq {
        Liquidity::Maker => Price::ZERO,
        Liquidity::Taker => money::price_times_rate_ceil(entry, p.slippage),
    };
    let stop_off = money::price_times_rate_ceil(stop, p.slippage.plus(p.latency_buffer));
    let s = side.sign();
    (
        Price::from_raw(entry.raw().saturating_add(s * entry_off.raw())),
        Price::from_raw(stop.raw().saturating_sub(s * stop_off.raw())),
    )
}

/// Exact modelled loss of `qty` entered at `entry_fill` and stopped out at `stop_fill`:
/// price loss (rounded up) + entry fee at `entry_rate` + exit fee at the taker rate.
pub fn loss_at_stop(
    fees: &FeeRates,
    side: Side,
    entry_fill: Price,
    stop_fill: Price,
    entry_rate: Rate,
    qty: Qty,
) -> Money {
    let d = side.sign() as i128 * (money::notional_raw(qty, entry_fill) - money::notional_raw(qty, stop_fill));
    let l = money::add(money::money_ceil(d), money::fee(qty, entry_fill, entry_rate));
    money::add(l, money::fee(qty, stop_fill, fees.taker))
}

/// Sizes a position so that a stop-out loses at most R, within the limits.
pub fn size_position(p: &SizingParams, lim: &SizingLimits, req: &SizeRequest) -> Result<Sizing, SizeRefusal> {
    let bad = |m: &str| Err(SizeRefusal::InvalidInput(m.to_string()));
    if req.entry.raw() <= 0 || req.stop.raw() <= 0 {
        return bad("entry and stop must be > 0");
    }
    if req.equity.raw() <= 0 {
        return bad("equity must be > 0");
    }
    if lim.qty_step.raw() <= 0 {
        return bad("qty step must be > 0");
    }
    if p.risk_per_trade.raw() <= 0 {
        return bad("risk per trade must be > 0");
    }
    let s = req.side.sign();
    if s * (req.entry.raw() - req.stop.raw()) <= 0 {
        return Err(SizeRefusal::StopOnWrongSide { entry: req.entry, stop: req.stop });
    }
    let (ef, sf) = fill_estimates(p, req.side, req.entry, req.stop, req.entry_liquidity);
    if sf.raw() <= 0 || ef.raw() <= 0 {
        return bad("stop fill estimate is not positive");
    }
    let entry_rate = p.fees.rate(req.entry_liquidity == Liquidity::Maker);
    let budget = money::money_times_rate_floor(req.equity, p.risk_per_trade);
    if budget.raw() <= 0 {
        return bad("risk budget rounds to zero");
    }
    // Loss per raw qty unit in 10^-24 USDT (exact, before the per-fill rounding up).
    let k = (s as i128 * (ef.raw() as i128 - sf.raw() as i128)) * S
        + ef.raw() as i128 * entry_rate.raw() as i128
        + sf.raw() as i128 * p.fees.taker.raw() as i128;
    if k <= 0 {
        return bad("non-positive loss per unit");
    }
    let step = lim.qty_step.raw() as i128;
    let floor_step = |raw: i128| -> i128 { raw.div_euclid(step) * step };
    let mut q = floor_step(budget.raw() as i128 * S2 / k);
    let mut limited_by = None;
    let mut cap = |q: &mut i128, c: i128, why: SizeLimit| {
        let c = floor_step(c.max(0));
        if c < *q {
            *q = c;
            limited_by = Some(why);
        }
    };
    cap(&mut q, lim.max_notional.raw() as i128 * S / ef.raw() as i128, SizeLimit::MaxNotional);
    if lim.max_leverage.raw() > 0 {
        let m = req.available_margin.raw().max(0) as i128 * lim.max_leverage.raw() as i128 / ef.raw() as i128;
        cap(&mut q, m, SizeLimit::Margin);
    }
    if lim.max_qty.raw() > 0 {
        cap(&mut q, lim.max_qty.raw() as i128, SizeLimit::MaxQty);
    }
    let to_qty = |raw: i128| Qty::from_raw(money::clamp_i64(raw));
    let mut loss = loss_at_stop(&p.fees, req.side, ef, sf, entry_rate, to_qty(q));
    // The per-fill rounding up can add a few 10^-8 USDT: step down until within budget.
    while q > 0 && loss > budget {
        q -= step;
        loss = loss_at_stop(&p.fees, req.side, ef, sf, entry_rate, to_qty(q));
    }
    let qty = to_qty(q.max(0));
    if qty.raw() <= 0 || qty < lim.min_qty {
        return Err(SizeRefusal::BelowMinQty { qty, min_qty: lim.min_qty, limited_by });
    }
    let notional = money::notional_ceil(qty, ef);
    let entry_notional = money::notional_floor(qty, req.entry);
    if entry_notional < lim.min_notional {
        return Err(SizeRefusal::BelowMinNotional { notional: entry_notional, min_notional: lim.min_notional });
    }
    let margin = if lim.max_leverage.raw() > 0 {
        Money::from_raw(money::clamp_i64(money::div_ceil(notional.raw() as i128 * S, lim.max_leverage.raw() as i128)))
    } else {
        notional
    };
    Ok(Sizing {
        qty,
        notional,
        margin,
        leverage: lim.max_leverage,
        risk_budget: budget,
        loss_at_stop: loss,
        entry_fill: ef,
        stop_fill: sf,
        limited_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{m, p, q};
    use proptest::prelude::*;

    fn params() -> SizingParams {
        SizingParams {
            risk_per_trade: Rate::from_f64(0.005),
            fees: FeeRates { maker: Rate::from_f64(0.0002), taker: Rate::from_f64(0.00055) },
            slippage: Rate::from_f64(0.0005),
            latency_buffer: Rate::from_f64(0.0002),
        }
    }
    fn wide(step: &str) -> SizingLimits {
        SizingLimits {
            max_leverage: Fixed::from_int(20),
            max_notional: m("1000000000"),
            qty_step: q(step),
            min_qty: q(step),
            max_qty: Qty::ZERO,
            min_notional: Money::ZERO,
        }
    }
    fn req(side: Side, entry: &str, stop: &str, liq: Liquidity) -> SizeRequest {
        SizeRequest {
            side,
            entry: p(entry),
            stop: p(stop),
            entry_liquidity: liq,
            equity: m("10000"),
            available_margin: m("10000"),
        }
    }

    #[test]
    fn long_taker_example_by_hand() {
        let s = size_position(&params(), &wide("0.1"), &req(Side::Buy, "100", "99", Liquidity::Taker)).unwrap();
        assert_eq!(s.risk_budget, m("50"));
        assert_eq!(s.entry_fill, p("100.05"));
        assert_eq!(s.stop_fill, p("98.9307"));
        // Loss per unit 1.1193 + fees 0.109439385 → 50 / 1.228739385 = 40.69… → 40.6.
        assert_eq!(s.qty, q("40.6"));
        // 45.44358 + 2.2341165 + 2.20912254 (fee rounded up).
        assert_eq!(s.loss_at_stop, m("49.88681904"));
        assert_eq!(s.limited_by, None);
        assert_eq!(s.notional, m("4062.03"));
        assert_eq!(s.margin, m("203.1015"));
    }

    #[test]
    fn short_maker_is_mirrored_and_cheaper() {
        let pr = params();
        let s = size_position(&pr, &wide("0.001"), &req(Side::Sell, "2000", "2010", Liquidity::Maker)).unwrap();
        assert_eq!(s.entry_fill, p("2000"));
        assert_eq!(s.stop_fill, p("2011.407"));
        assert!(s.loss_at_stop <= s.risk_budget);
        let next = Qty::from_raw(s.qty.raw() + q("0.001").raw());
        assert!(loss_at_stop(&pr.fees, Side::Sell, s.entry_fill, s.stop_fill, pr.fees.maker, next) > s.risk_budget);
        let t = size_position(&pr, &wide("0.001"), &req(Side::Sell, "2000", "2010", Liquidity::Taker)).unwrap();
        assert!(t.qty < s.qty);
    }

    #[test]
    fn caps_and_refusals() {
        let pr = params();
        let r = req(Side::Buy, "100", "99", Liquidity::Taker);
        let lim = SizingLimits { max_notional: m("1000"), ..wide("0.1") };
        let s = size_position(&pr, &lim, &r).unwrap();
        assert_eq!((s.qty, s.limited_by), (q("9.9"), Some(SizeLimit::MaxNotional)));
        assert!(s.notional <= m("1000"));
        let lim = SizingLimits { max_leverage: Fixed::from_int(2), ..wide("0.1") };
        let s = size_position(&pr, &lim, &SizeRequest { available_margin: m("1000"), ..r }).unwrap();
        assert_eq!((s.qty, s.limited_by), (q("19.9"), Some(SizeLimit::Margin)));
        assert!(s.margin <= m("1000"));
        let lim = SizingLimits { max_qty: q("5"), ..wide("0.1") };
        assert_eq!(size_position(&pr, &lim, &r).unwrap().limited_by, Some(SizeLimit::MaxQty));
        let lim = SizingLimits { min_qty: q("50"), ..wide("0.1") };
        assert!(matches!(size_position(&pr, &lim, &r), Err(SizeRefusal::BelowMinQty { limited_by: None, .. })));
        let lim = SizingLimits { min_notional: m("5000"), ..wide("0.1") };
        assert!(matches!(size_position(&pr, &lim, &r), Err(SizeRefusal::BelowMinNotional { .. })));
        let lim = SizingLimits { max_notional: m("5"), ..wide("0.1") };
        assert!(matches!(
            size_position(&pr, &lim, &r),
            Err(SizeRefusal::BelowMinQty { limited_by: Some(SizeLimit::MaxNotional), .. })
        ));
        assert!(matches!(
            size_position(&pr, &wide("0.1"), &req(Side::Buy, "100", "100", Liquidity::Maker)),
            Err(SizeRefusal::StopOnWrongSide { .. })
        ));
        assert!(matches!(
            size_position(&pr, &wide("0.1"), &req(Side::Sell, "100", "99", Liquidity::Maker)),
            Err(SizeRefusal::StopOnWrongSide { .. })
        ));
        assert!(matches!(
            size_position(&pr, &wide("0.1"), &SizeRequest { equity: Money::ZERO, ..r }),
            Err(SizeRefusal::InvalidInput(_))
        ));
        assert!(matches!(size_position(&pr, &wide("0"), &r), Err(SizeRefusal::InvalidInput(_))));
    }

    #[test]
    fn limits_from_category_and_instrument() {
        let inst = Instrument {
            symbol: crate::domain::Symbol::new("BTCUSDT"),
            status: crate::market::data::InstrumentStatus::Trading,
            tick_size: p("0.1"),
            qty_step: q("0.001"),
            min_qty: q("0.001"),
            max_qty: q("100"),
            min_notional: p("5"),
            max_leverage: p("10"),
            launch_time_ms: 0,
        };
        let cat = CategoryLimits { max_leverage: 20.0, max_notional: 50_000.0, book_depth: 200, max_positions: 3 };
        let l = SizingLimits::new(&cat, &inst);
        assert_eq!(l.max_leverage, Fixed::from_int(10));
        assert_eq!(l.max_notional, m("50000"));
        assert_eq!((l.qty_step, l.min_qty, l.max_qty, l.min_notional), (q("0.001"), q("0.001"), q("100"), m("5")));
        let sp = SizingParams::from_config(&Config::default(), 0.0003);
        assert_eq!(sp.latency_buffer, Rate::from_f64(0.0002));
        assert_eq!(sp.risk_per_trade, Rate::from_f64(0.005));
    }

    proptest! {
        #[test]
        fn loss_at_stop_is_r_within_one_step_and_never_more(
            tick_i in 0usize..4,
            price_ticks in 10i64..5_000_000,
            stop_bps in 5i64..1_000,
            step_i in 0usize..4,
            equity in 100i64..2_000_000,
            risk_bp in 5i64..200,
            long in any::<bool>(),
            maker in any::<bool>(),
            slip_bp in 0i64..10,
        ) {
            let tick = [p("0.0001"), p("0.01"), p("0.1"), p("0.5")][tick_i];
            let step = [q("0.001"), q("0.01"), q("1"), q("10")][step_i];
            let entry = Price::from_ticks(price_ticks, tick);
            let dist = (price_ticks * stop_bps / 10_000).max(1);
            let side = if long { Side::Buy } else { Side::Sell };
            let stop = Price::from_ticks(price_ticks - side.sign() * dist, tick);
            let pr = SizingParams {
                risk_per_trade: Rate::from_raw(risk_bp * 10_000),
                slippage: Rate::from_raw(slip_bp * 10_000),
                ..params()
            };
            let liq = if maker { Liquidity::Maker } else { Liquidity::Taker };
            let r = SizeRequest {
                side, entry, stop, entry_liquidity: liq,
                equity: Money::from_int(equity), available_margin: Money::from_int(equity),
            };
            let lim = SizingLimits { max_leverage: Fixed::from_int(1_000_000), ..wide("1") };
            let lim = SizingLimits { qty_step: step, min_qty: step, ..lim };
            let (ef, sf) = fill_estimates(&pr, side, entry, stop, liq);
            let rate = pr.fees.rate(maker);
            let budget = money::money_times_rate_floor(Money::from_int(equity), pr.risk_per_trade);
            match size_position(&pr, &lim, &r) {
                Ok(s) => {
                    prop_assert_eq!(s.limited_by, None);
                    prop_assert_eq!(s.qty.raw() % step.raw(), 0);
                    let loss = loss_at_stop(&pr.fees, side, ef, sf, rate, s.qty);
                    prop_assert_eq!(loss, s.loss_at_stop);
                    prop_assert!(loss <= budget, "loss {} > R {}", loss, budget);
                    let next = Qty::from_raw(s.qty.raw() + step.raw());
                    let loss_next = loss_at_stop(&pr.fees, side, ef, sf, rate, next);
                    // One more step would exceed R: R - loss < one step's worth of loss.
                    prop_assert!(loss_next > budget, "R {} loss {} next {}", budget, loss, loss_next);
                }
                Err(SizeRefusal::BelowMinQty { .. }) => {
                    prop_assert!(loss_at_stop(&pr.fees, side, ef, sf, rate, step) > budget);
                }
                Err(e) => prop_assert!(false, "unexpected refusal {e}"),
            }
        }
    }
}
