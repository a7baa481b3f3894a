//! Open positions, realized cash, unrealized PnL, portfolio heat and daily realized PnL.
//!
//! The portfolio is driven by [`Fill`]s. Every amount that must reconcile is exact: each
//! position keeps the exact `Σ qty × price` of its entry and exit fills (10^-16 USDT, `i128`) and
//! the exact fees; when it closes, its realized PnL is `floor(Σ side-signed cash flows) − Σ fees`,
//! the same number the venue's cash flows give. Partial closes book a proportional part on the
//! way; the final close books the exact remainder.
//!
//! Fees are booked into the balance when paid (like Bybit's wallet), gross PnL when a position is
//! reduced. Daily realized PnL is kept per UTC day of the fill's event time.

use crate::domain::{Category, Price, Qty, Side, Symbol, TimeMs};
use crate::execution::order::Fill;
use crate::risk::money::{self, Money, Rate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milliseconds per UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// UTC day number of a time (days since the epoch).
pub fn utc_day(ts_ms: TimeMs) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// One take-profit level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeProfit {
    /// Limit price.
    pub price: Price,
    /// Quantity closed there.
    pub qty: Qty,
}

/// What the core planned for a position; needed when the first entry fill opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionPlan {
    /// Symbol category (limits).
    pub category: Category,
    /// Initial stop.
    pub stop: Price,
    /// Take-profit levels.
    pub take_profits: Vec<TakeProfit>,
    /// Planned loss at the stop (R).
    pub planned_risk: Money,
}

/// An open position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub symbol: Symbol,
    pub category: Category,
    /// Long (`Buy`) or short (`Sell`).
    pub side: Side,
    /// Open quantity.
    pub qty: Qty,
    /// Current stop.
    pub stop: Price,
    /// Take-profit levels.
    pub take_profits: Vec<TakeProfit>,
    /// Fees paid so far (entry and partial exits).
    pub fees_paid: Money,
    /// Time of the first entry fill.
    pub opened_ms: TimeMs,
    /// Planned loss at the initial stop (R).
    pub planned_risk: Money,
    /// Last mark price.
    pub mark: Price,
    /// Maximum favourable excursion from the average entry, price units (>= 0).
    pub mfe: Price,
    /// Maximum adverse excursion from the average entry, price units (>= 0).
    pub mae: Price,
    /// Net PnL already booked by partial closes (gross minus fees).
    pub realized_booked: Money,
    entry_qty: Qty,
    entry_notional: i128,
    exit_qty: Qty,
    exit_notional: i128,
    gross_booked: Money,
}

impl Position {
    /// Average entry price (rounded down to 10^-8).
    pub fn avg_entry(&self) -> Price {
        if self.entry_qty.raw() <= 0 {
            return Price::ZERO;
        }
        Price::from_raw(money::clamp_i64(money::div_floor(self.entry_notional, self.entry_qty.raw() as i128)))
    }
    /// Exact entry cost of the open quantity, 10^-16 USDT.
    fn open_cost_raw(&self) -> i128 {
        if self.entry_qty.raw() <= 0 {
            return 0;
        }
        money::mul_div(self.entry_notional, self.qty.raw() as i128, self.entry_qty.raw() as i128)
    }
    /// Gross unrealized PnL of the open quantity at `price` (rounded down).
    pub fn unrealized_at(&self, price: Price) -> Money {
        let now = money::notional_raw(self.qty, price);
        money::money_floor(self.side.sign() as i128 * (now - self.open_cost_raw()))
    }
    /// Gross unrealized PnL at the last mark.
    pub fn unrealized(&self) -> Money {
        self.unrealized_at(self.mark)
    }
    /// Open risk: loss from the average entry to the current stop on the open quantity plus the
    /// exit fee at the stop (`exit_fee` rate), never below zero.
    pub fn open_risk(&self, exit_fee: Rate) -> Money {
        let loss = money::money_ceil(
            -(self.side.sign() as i128) * (money::notional_raw(self.qty, self.stop) - self.open_cost_raw()),
        );
        let r = money::add(loss, money::fee(self.qty, self.stop, exit_fee));
        r.max(Money::ZERO)
    }
    /// Unrealized PnL at the mark in multiples of the planned risk (0 when R is zero).
    pub fn r_multiple(&self) -> f64 {
        money::ratio(self.unrealized(), self.planned_risk)
    }
    fn update_excursions(&mut self) {
        let d = self.side.sign() * (self.mark.raw() - self.avg_entry().raw());
        if d > self.mfe.raw() {
            self.mfe = Price::from_raw(d);
        }
        if -d > self.mae.raw() {
            self.mae = Price::from_raw(-d);
        }
    }
}

/// A position that has been fully closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedTrade {
    pub symbol: Symbol,
    pub category: Category,
    pub side: Side,
    /// Total entry quantity.
    pub qty: Qty,
    /// Average entry price (rounded down).
    pub avg_entry: Price,
    /// Average exit price (rounded down).
    pub avg_exit: Price,
    /// Exact net realized PnL: `floor(Σ side-signed qty × price) − Σ fees`.
    pub realized: Money,
    /// Total fees.
    pub fees: Money,
    /// Open time.
    pub opened_ms: TimeMs,
    /// Close time.
    pub closed_ms: TimeMs,
    /// Maximum favourable excursion, price units.
    pub mfe: Price,
    /// Maximum adverse excursion, price units.
    pub mae: Price,
    /// Planned risk R.
    pub planned_risk: Money,
}

/// Effect of one fill on the portfolio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FillOutcome {
    /// A new position was opened.
    Opened,
    /// The position grew.
    Increased,
    /// The position shrank; `realized` is the net PnL booked by this fill.
    Reduced {
        /// Net PnL booked.
        realized: Money,
    },
    /// The position closed; any quantity beyond the position is reported as `excess` (a
    /// venue/local mismatch for the integrity check: reduce-only exits never flip).
    Closed {
        trade: ClosedTrade,
        /// Fill quantity beyond the position.
        excess: Qty,
    },
}

/// Portfolio errors (malformed or unexpected fills).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortfolioError {
    /// A fill would open a position but no plan was given.
    #[error("fill on {0} opens a position but no plan was given")]
    NoPlan(Symbol),
    /// Zero or negative quantity or price.
    #[error("fill on {0} has a non-positive qty or price")]
    InvalidFill(Symbol),
    /// A reduce-only fill with no position to reduce.
    #[error("reduce-only fill on {0} with no open position")]
    NothingToReduce(Symbol),
    /// Unknown symbol.
    #[error("no open position on {0}")]
    NoPosition(Symbol),
    /// The operation needs a flat portfolio.
    #[error("position open on {0}")]
    Open(Symbol),
}

/// Realized PnL of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyPnl {
    /// UTC day number.
    pub day: i64,
    /// Balance at the start of the day (first event of the day).
    pub start_balance: Money,
    /// Net realized PnL (gross minus fees) booked that day.
    pub realized: Money,
}

/// All positions and the account balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portfolio {
    balance: Money,
    positions: BTreeMap<Symbol, Position>,
    exit_fee: Rate,
    daily: DailyPnl,
    peak_equity: Money,
    /// Balance realized PnL is counted from (the start, or the wallet when LIVE was entered).
    #[serde(default)]
    base: Money,
}

impl Portfolio {
    /// New portfolio with `balance` USDT; `exit_fee` is the rate assumed for exits at the stop
    /// (taker). `now_ms` starts the first UTC day.
    pub fn new(balance: Money, exit_fee: Rate, now_ms: TimeMs) -> Self {
        Portfolio {
            balance,
            positions: BTreeMap::new(),
            exit_fee,
            daily: DailyPnl { day: utc_day(now_ms), start_balance: balance, realized: Money::ZERO },
            peak_equity: balance,
            base: balance,
        }
    }
    /// Realized PnL since the start (or since LIVE was entered): balance minus the base.
    pub fn realized_since_base(&self) -> Money {
        money::sub(self.balance, self.base)
    }
    /// Realized balance (cash), USDT.
    pub fn balance(&self) -> Money {
        self.balance
    }
    /// Exit fee rate used for open risk.
    pub fn exit_fee(&self) -> Rate {
        self.exit_fee
    }
    /// Changes the exit fee rate (config reload).
    pub fn set_exit_fee(&mut self, r: Rate) {
        self.exit_fee = r;
    }
    /// Open position of a symbol.
    pub fn position(&self, s: &Symbol) -> Option<&Position> {
        self.positions.get(s)
    }
    /// All open positions, in symbol order.
    pub fn positions(&self) -> impl ExactSizeIterator<Item = &Position> + '_ {
        self.positions.values()
    }
    /// Number of open positions in a category.
    pub fn count_in(&self, c: Category) -> usize {
        self.positions.values().filter(|p| p.category == c).count()
    }
    /// Σ gross unrealized PnL at the marks.
    pub fn unrealized(&self) -> Money {
        self.positions.values().fold(Money::ZERO, |a, p| money::add(a, p.unrealized()))
    }
    /// Balance plus unrealized PnL.
    pub fn equity(&self) -> Money {
        money::add(self.balance, self.unrealized())
    }
    /// Highest equity seen at a mark or fill.
    pub fn peak_equity(&self) -> Money {
        self.peak_equity
    }
    /// Σ open risk of all positions, USDT.
    pub fn open_risk(&self) -> Money {
        self.positions.values().fold(Money::ZERO, |a, p| money::add(a, p.open_risk(self.exit_fee)))
    }
    /// Portfolio heat: Σ open risk / balance.
    pub fn heat(&self) -> f64 {
        money::ratio(self.open_risk(), self.balance)
    }
    /// Unrealized loss as a fraction of the balance (0 when in profit).
    pub fn unrealized_drawdown(&self) -> f64 {
        money::ratio(self.unrealized_loss(), self.balance)
    }
    /// Unrealized loss in USDT (>= 0).
    pub fn unrealized_loss(&self) -> Money {
        Money::from_raw((-self.unrealized().raw()).max(0))
    }
    /// Realized PnL of the UTC day of `now_ms` (zero if nothing was booked that day).
    pub fn daily(&self, now_ms: TimeMs) -> DailyPnl {
        let day = utc_day(now_ms);
        if day == self.daily.day {
            self.daily
        } else {
            DailyPnl { day, start_balance: self.balance, realized: Money::ZERO }
        }
    }

    fn roll_day(&mut self, now_ms: TimeMs) {
        let day = utc_day(now_ms);
        if day != self.daily.day {
            self.daily = DailyPnl { day, start_balance: self.balance, realized: Money::ZERO };
        }
    }

    fn book(&mut self, amount: Money) {
        self.balance = money::add(self.balance, amount);
        self.daily.realized = money::add(self.daily.realized, amount);
    }

    fn update_peak(&mut self) {
        let e = self.equity();
        if e > self.peak_equity {
            self.peak_equity = e;
        }
    }

    /// Replaces the cash balance with the exchange's wallet balance (LIVE). Refused while
    /// positions are open (their cost basis is local). With `fresh`, the day's realized PnL and
    /// the equity peak start again from this balance (entering LIVE: SIM results do not count
    /// against the real account's limits); without, only the balance moves (funding, transfers).
    pub fn rebase(&mut self, balance: Money, now_ms: TimeMs, fresh: bool) -> Result<(), PortfolioError> {
        if let Some(p) = self.positions.values().next() {
            return Err(PortfolioError::Open(p.symbol.clone()));
        }
        self.balance = balance;
        if fresh {
            self.daily = DailyPnl { day: utc_day(now_ms), start_balance: balance, realized: Money::ZERO };
            self.peak_equity = balance;
            self.base = balance;
        } else {
            self.roll_day(now_ms);
            self.update_peak();
        }
        Ok(())
    }

    /// Updates a position's mark price (and MFE/MAE); rolls the UTC day at `now_ms`.
    pub fn mark(&mut self, s: &Symbol, price: Price, now_ms: TimeMs) {
        self.roll_day(now_ms);
        if let Some(p) = self.positions.get_mut(s) {
            if price.raw() > 0 {
                p.mark = price;
                p.update_excursions();
            }
        }
        self.update_peak();
    }

    /// Moves a position's stop.
    pub fn set_stop(&mut self, s: &Symbol, stop: Price) -> Result<(), PortfolioError> {
        let p = self.positions.get_mut(s).ok_or_else(|| PortfolioError::NoPosition(s.clone()))?;
        p.stop = stop;
        Ok(())
    }

    /// Replaces a position's take-profit levels.
    pub fn set_take_profits(&mut self, s: &Symbol, tps: Vec<TakeProfit>) -> Result<(), PortfolioError> {
        let p = self.positions.get_mut(s).ok_or_else(|| PortfolioError::NoPosition(s.clone()))?;
        p.take_profits = tps;
        Ok(())
    }

    /// Applies one fill. A fill on the position's side (or opening a new one, which needs
    /// `plan`) adds to it; an opposite fill reduces it and books PnL.
    pub fn on_fill(&mut self, f: &Fill, plan: Option<&PositionPlan>) -> Result<FillOutcome, PortfolioError> {
        if f.qty.raw() <= 0 || f.price.raw() <= 0 {
            return Err(PortfolioError::InvalidFill(f.symbol.clone()));
        }
        self.roll_day(f.ts_ms);
        let out = match self.positions.get(&f.symbol).map(|p| p.side) {
            None => {
                if f.reduce_only {
                    return Err(PortfolioError::NothingToReduce(f.symbol.clone()));
                }
                let plan = plan.ok_or_else(|| PortfolioError::NoPlan(f.symbol.clone()))?;
                let mut p = Position {
                    symbol: f.symbol.clone(),
                    category: plan.category,
                    side: f.side,
                    qty: f.qty,
                    stop: plan.stop,
                    take_profits: plan.take_profits.clone(),
                    fees_paid: f.fee,
                    opened_ms: f.ts_ms,
                    planned_risk: plan.planned_risk,
                    mark: f.price,
                    mfe: Price::ZERO,
                    mae: Price::ZERO,
                    realized_booked: money::sub(Money::ZERO, f.fee),
                    entry_qty: f.qty,
                    entry_notional: money::notional_raw(f.qty, f.price),
                    exit_qty: Qty::ZERO,
                    exit_notional: 0,
                    gross_booked: Money::ZERO,
                };
                p.update_excursions();
                self.positions.insert(f.symbol.clone(), p);
                self.book(money::sub(Money::ZERO, f.fee));
                FillOutcome::Opened
            }
            Some(side) if side == f.side => {
                if f.reduce_only {
                    return Err(PortfolioError::NothingToReduce(f.symbol.clone()));
                }
                if let Some(p) = self.positions.get_mut(&f.symbol) {
                    p.qty = Qty::from_raw(p.qty.raw().saturating_add(f.qty.raw()));
                    p.entry_qty = Qty::from_raw(p.entry_qty.raw().saturating_add(f.qty.raw()));
                    p.entry_notional += money::notional_raw(f.qty, f.price);
                    p.fees_paid = money::add(p.fees_paid, f.fee);
                    p.realized_booked = money::sub(p.realized_booked, f.fee);
                }
                self.book(money::sub(Money::ZERO, f.fee));
                FillOutcome::Increased
            }
            Some(_) => self.reduce(f),
        };
        self.update_peak();
        Ok(out)
    }

    fn reduce(&mut self, f: &Fill) -> FillOutcome {
        let Some(mut p) = self.positions.remove(&f.symbol) else {
            return FillOutcome::Increased; // unreachable: caller checked the position exists
        };
        let q = Qty::from_raw(f.qty.raw().min(p.qty.raw()));
        let excess = Qty::from_raw(f.qty.raw() - q.raw());
        let sign = p.side.sign() as i128;
        let cost_part = money::mul_div(p.entry_notional, q.raw() as i128, p.entry_qty.raw().max(1) as i128);
        let exit_part = money::notional_raw(q, f.price);
        p.exit_qty = Qty::from_raw(p.exit_qty.raw() + q.raw());
        p.exit_notional += exit_part;
        p.qty = Qty::from_raw(p.qty.raw() - q.raw());
        p.fees_paid = money::add(p.fees_paid, f.fee);
        if p.qty.raw() > 0 {
            let gross = f.venue_pnl.unwrap_or_else(|| money::money_floor(sign * (exit_part - cost_part)));
            p.gross_booked = money::add(p.gross_booked, gross);
            let net = money::sub(gross, f.fee);
            p.realized_booked = money::add(p.realized_booked, net);
            self.book(net);
            self.positions.insert(f.symbol.clone(), p);
            return FillOutcome::Reduced { realized: net };
        }
        // Final close: book the exact remainder of the gross PnL.
        // With the venue's own figure for this execution, the trade's gross is what the venue
        // booked (it rounds per execution); otherwise the exact total, floored once.
        let gross_total = match f.venue_pnl {
            Some(v) => money::add(p.gross_booked, v),
            None => money::money_floor(sign * (p.exit_notional - p.entry_notional)),
        };
        let gross_rest = money::sub(gross_total, p.gross_booked);
        self.book(money::sub(gross_rest, f.fee));
        let realized = money::sub(gross_total, p.fees_paid);
        let trade = ClosedTrade {
            symbol: p.symbol.clone(),
            category: p.category,
            side: p.side,
            qty: p.entry_qty,
            avg_entry: p.avg_entry(),
            avg_exit: Price::from_raw(money::clamp_i64(money::div_floor(
                p.exit_notional,
                p.exit_qty.raw().max(1) as i128,
            ))),
            realized,
            fees: p.fees_paid,
            opened_ms: p.opened_ms,
            closed_ms: f.ts_ms,
            mfe: p.mfe,
            mae: p.mae,
            planned_risk: p.planned_risk,
        };
        FillOutcome::Closed { trade, excess }
    }
}

/// Exact open-risk of a candidate position (same formula as [`Position::open_risk`]): loss from
/// `entry` to `stop` on `qty` plus the exit fee at the stop.
pub fn risk_of(side: Side, entry: Price, stop: Price, qty: Qty, exit_fee: Rate) -> Money {
    let d = -(side.sign() as i128) * (money::notional_raw(qty, stop) - money::notional_raw(qty, entry));
    money::add(money::money_ceil(d), money::fee(qty, stop, exit_fee)).max(Money::ZERO)
}

/// Money helper used by tests and callers: exact `Σ side-signed qty × price − Σ fees` of a set of
/// fills (cash flow view, rounded down once).
pub fn cash_flow_of(fills: &[Fill]) -> Money {
    let raw: i128 = fills.iter().map(|f| money::cash_flow_raw(f.side, f.qty, f.price)).sum();
    let fees = fills.iter().fold(Money::ZERO, |a, f| money::add(a, f.fee));
    money::sub(money::money_floor(raw), fees)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::order::Liquidity;
    use crate::testkit::{m, p, q};

    fn sym() -> Symbol {
        Symbol::new("BTCUSDT")
    }
    const TAKER: Rate = Rate::from_raw(55_000);
    const MAKER: Rate = Rate::from_raw(20_000);
    fn fill(side: Side, qty: &str, price: &str, rate: Rate, reduce: bool, ts: i64) -> Fill {
        let (qq, pp) = (q(qty), p(price));
        Fill {
            symbol: sym(),
            order_id: "o".into(),
            client_id: "c".into(),
            exec_id: format!("e{ts}"),
            side,
            price: pp,
            qty: qq,
            fee: money::fee(qq, pp, rate),
            liquidity: if rate == MAKER { Liquidity::Maker } else { Liquidity::Taker },
            reduce_only: reduce,
            ts_ms: ts,
            venue_pnl: None,
        }
    }
    fn plan(stop: &str) -> PositionPlan {
        PositionPlan { category: Category::Prime, stop: p(stop), take_profits: vec![], planned_risk: m("50") }
    }

    #[test]
    fn the_venues_own_pnl_figures_are_booked_when_given() {
        // A venue that rounds each execution's PnL down books 1e-8 less per partial close than
        // the exact total; the engine follows the venue (its wallet is the money).
        let mut pf = Portfolio::new(m("10000"), TAKER, 0);
        let f1 = fill(Side::Buy, "3", "1.00000001", MAKER, false, 1_000);
        pf.on_fill(&f1, Some(&plan("0.9"))).unwrap();
        let f2 = Fill { venue_pnl: Some(m("0.29999998")), ..fill(Side::Sell, "1", "1.3", TAKER, true, 2_000) };
        let FillOutcome::Reduced { realized } = pf.on_fill(&f2, None).unwrap() else { panic!() };
        assert_eq!(realized, money::sub(m("0.29999998"), f2.fee));
        let f3 = Fill { venue_pnl: Some(m("0.59999997")), ..fill(Side::Sell, "2", "1.3", TAKER, true, 3_000) };
        let FillOutcome::Closed { trade, .. } = pf.on_fill(&f3, None).unwrap() else { panic!() };
        let fees = [&f1, &f2, &f3].iter().fold(Money::ZERO, |a, f| money::add(a, f.fee));
        assert_eq!(trade.realized, money::sub(m("0.89999995"), fees), "venue figures, not the exact 0.89999997");
        assert_eq!(pf.balance(), money::add(m("10000"), trade.realized), "balance and trade agree");
    }

    #[test]
    fn long_round_trip_reconciles_exactly() {
        let mut pf = Portfolio::new(m("10000"), TAKER, 0);
        let f1 = fill(Side::Buy, "0.003", "26000.5", MAKER, false, 1_000);
        assert_eq!(pf.on_fill(&f1, Some(&plan("25900"))).unwrap(), FillOutcome::Opened);
        let f2 = fill(Side::Buy, "0.002", "26001.3", MAKER, false, 2_000);
        assert_eq!(pf.on_fill(&f2, None).unwrap(), FillOutcome::Increased);
        let pos = pf.position(&sym()).unwrap();
        assert_eq!(pos.qty, q("0.005"));
        // (78.0015 + 52.0026) / 0.005 = 26000.82
        assert_eq!(pos.avg_entry(), p("26000.82"));
        let f3 = fill(Side::Sell, "0.002", "26050.7", TAKER, true, 3_000);
        let FillOutcome::Reduced { realized } = pf.on_fill(&f3, None).unwrap() else { panic!() };
        // (26050.7 − 26000.82) × 0.002 = 0.09976, minus the exit fee.
        assert_eq!(realized, money::sub(m("0.09976"), f3.fee));
        let f4 = fill(Side::Sell, "0.003", "25990.1", TAKER, true, 4_000);
        let FillOutcome::Closed { trade, excess } = pf.on_fill(&f4, None).unwrap() else { panic!() };
        assert_eq!(excess, Qty::ZERO);
        let fills = [f1, f2, f3, f4];
        // By hand: sells 52.1014 + 77.9703 = 130.0717; buys 78.0015 + 52.0026 = 130.0041.
        let fees = fills.iter().fold(Money::ZERO, |a, f| money::add(a, f.fee));
        let expected = money::sub(m("0.0676"), fees);
        assert_eq!(trade.realized, expected);
        assert_eq!(cash_flow_of(&fills), expected);
        assert_eq!(trade.fees, fees);
        assert_eq!(pf.balance(), money::add(m("10000"), expected));
        assert_eq!(pf.daily(4_000).realized, expected);
        assert!(pf.position(&sym()).is_none());
        assert_eq!(pf.heat(), 0.0);
    }

    #[test]
    fn short_round_trip_and_excess_fill() {
        let mut pf = Portfolio::new(m("1000"), TAKER, 0);
        let f1 = fill(Side::Sell, "3", "1.2345", TAKER, false, 10);
        pf.on_fill(&f1, Some(&plan("1.3"))).unwrap();
        let f2 = fill(Side::Buy, "4", "1.2001", TAKER, true, 20);
        let FillOutcome::Closed { trade, excess } = pf.on_fill(&f2, None).unwrap() else { panic!() };
        assert_eq!(excess, q("1"));
        // (1.2345 − 1.2001) × 3 = 0.1032; the exit fee is charged on the whole fill.
        assert_eq!(trade.realized, money::sub(m("0.1032"), money::add(f1.fee, f2.fee)));
    }

    #[test]
    fn heat_risk_and_drawdown() {
        let mut pf = Portfolio::new(m("10000"), TAKER, 0);
        pf.on_fill(&fill(Side::Buy, "0.1", "30000", MAKER, false, 1), Some(&plan("29900"))).unwrap();
        // (30000 − 29900) × 0.1 = 10, exit fee 2990 × 0.00055 = 1.6445.
        let r = pf.position(&sym()).unwrap().open_risk(TAKER);
        assert_eq!(r, m("11.6445"));
        assert_eq!(r, risk_of(Side::Buy, p("30000"), p("29900"), q("0.1"), TAKER));
        // Balance after the 0.6 maker entry fee.
        assert_eq!(pf.balance(), m("9999.4"));
        assert!((pf.heat() - 11.6445 / 9999.4).abs() < 1e-12);
        pf.mark(&sym(), p("29800"), 2);
        assert_eq!(pf.unrealized(), m("-20"));
        assert_eq!(pf.unrealized_loss(), m("20"));
        assert!((pf.unrealized_drawdown() - 20.0 / 9999.4).abs() < 1e-12);
        assert_eq!(pf.position(&sym()).unwrap().mae, p("200"));
        pf.mark(&sym(), p("30150"), 3);
        let pos = pf.position(&sym()).unwrap();
        assert_eq!((pos.mfe, pos.mae), (p("150"), p("200")));
        assert_eq!(pf.peak_equity(), money::add(pf.balance(), m("15")));
        // Stop past break-even: risk only the exit fee region, never negative.
        pf.set_stop(&sym(), p("30100")).unwrap();
        assert_eq!(pf.open_risk(), Money::ZERO);
        assert!(pf.set_stop(&Symbol::new("XUSDT"), p("1")).is_err());
    }

    #[test]
    fn daily_pnl_rolls_at_utc_midnight() {
        let mut pf = Portfolio::new(m("1000"), TAKER, DAY_MS - 10);
        let f1 = fill(Side::Buy, "1", "100", TAKER, false, DAY_MS - 5);
        pf.on_fill(&f1, Some(&plan("90"))).unwrap();
        assert_eq!(pf.daily(DAY_MS - 1).realized, money::sub(Money::ZERO, f1.fee));
        assert_eq!(pf.daily(DAY_MS).realized, Money::ZERO);
        let f2 = fill(Side::Sell, "1", "95", TAKER, true, DAY_MS + 5);
        pf.on_fill(&f2, None).unwrap();
        let d = pf.daily(DAY_MS + 6);
        assert_eq!(d.day, 1);
        assert_eq!(d.realized, money::sub(m("-5"), f2.fee));
        assert_eq!(d.start_balance, money::sub(m("1000"), f1.fee));
    }

    #[test]
    fn malformed_fills_are_refused() {
        let mut pf = Portfolio::new(m("1000"), TAKER, 0);
        let f = fill(Side::Buy, "1", "100", TAKER, false, 1);
        assert_eq!(pf.on_fill(&f, None), Err(PortfolioError::NoPlan(sym())));
        let r = fill(Side::Sell, "1", "100", TAKER, true, 1);
        assert_eq!(pf.on_fill(&r, None), Err(PortfolioError::NothingToReduce(sym())));
        let z = Fill { qty: Qty::ZERO, ..f.clone() };
        assert_eq!(pf.on_fill(&z, Some(&plan("90"))), Err(PortfolioError::InvalidFill(sym())));
        assert_eq!(pf.positions().len(), 0);
        assert_eq!(pf.balance(), m("1000"));
    }
}
