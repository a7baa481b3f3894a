//! SIM venue: a pure, deterministic fill model against the book and tape it is fed.
//!
//! - **Post-only** limits rest at or inside the touch; one that would cross is rejected like
//!   Bybit does (`EC_PostOnlyWillTakeLiquidity`).
//! - A **resting limit** fills as maker, at its own price, only when the tape trades *through* it
//!   (strictly better than the limit), or trades *at* it with the opposite aggressor after the
//!   queue ahead (the size resting at that price when the order was placed or re-priced) has been
//!   consumed by such trades. Conservative: cancellations ahead of us are never assumed.
//! - **Market** (and GTC/IOC limits that cross) walk the current book level by level as taker
//!   (slippage, partial levels). Beyond the visible depth a market order fills the rest at the
//!   worst visible level (the book is a truncated view of a deeper one); with no opposite level at
//!   all it is cancelled.
//! - **Stop-market** (SL) triggers on the trade price (falls to the trigger for a sell, rises for
//!   a buy) and then walks the book with each fill price capped at the triggering trade price
//!   (never better than the print that triggered it).
//! - **Reduce-only** orders never open or flip a position: their fills are clipped to the
//!   position, they are refused without one (`110017`), and they are cancelled when the position
//!   is gone.
//!
//! The rules themselves (crossing, the taker walk, reduce-only clipping, triggers, remainders,
//! the queue at a price) are the ones the exchange simulator uses too: [`matching`]. Fees use
//! the one formula in [`money::fee`]. The book is not mutated by our own fills.

use crate::domain::{Price, Qty, Side, Symbol, TimeMs};
use crate::execution::integrity::{OrderSnapshot, PositionSnapshot, VenueSnapshot};
use crate::execution::matching::{self, TriggerDirection};
use crate::execution::order::{
    EndReason, Fill, Intent, Liquidity, OrderKind, OrderRequest, RejectReason, TimeInForce, VenueEvent,
};
use crate::market::data::TradeBatch;
use crate::market::orderbook::OrderBook;
use crate::risk::money::{self, FeeRates, Money};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
struct SimOrder {
    req: OrderRequest,
    filled: Qty,
    queue_ahead: Qty,
    placed_ms: TimeMs,
}

impl SimOrder {
    fn remaining(&self) -> Qty {
        Qty::from_raw(self.req.qty.raw() - self.filled.raw())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Account {
    /// Signed position, raw qty units (+ long).
    net: i64,
    /// Σ cash flows, 10^-16 USDT.
    cash: i128,
    fees: Money,
}

/// The SIM venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimVenue {
    fees: FeeRates,
    orders: BTreeMap<u64, SimOrder>,
    accounts: BTreeMap<Symbol, Account>,
    next_seq: u64,
    next_exec: u64,
}

/// Size resting on `side` at exactly `price` (0 when no such level).
fn level_qty(book: &OrderBook, side: Side, price: Price) -> Qty {
    book.top_n(side, usize::MAX)
        .take_while(|l| match side {
            Side::Buy => l.price >= price,
            Side::Sell => l.price <= price,
        })
        .find(|l| l.price == price)
        .map_or(Qty::ZERO, |l| l.qty)
}

/// True when a limit at `price` on `side` would cross the opposite touch.
fn crosses(book: &OrderBook, side: Side, price: Price) -> bool {
    matching::crosses(side, price, book.best(side.opposite()).map(|l| l.price))
}

impl SimVenue {
    /// New venue charging `fees`.
    pub fn new(fees: FeeRates) -> Self {
        SimVenue { fees, orders: BTreeMap::new(), accounts: BTreeMap::new(), next_seq: 1, next_exec: 1 }
    }

    /// Position of a symbol: side and size.
    pub fn position(&self, s: &Symbol) -> Option<(Side, Qty)> {
        let a = self.accounts.get(s)?;
        match a.net {
            0 => None,
            n if n > 0 => Some((Side::Buy, Qty::from_raw(n))),
            n => Some((Side::Sell, Qty::from_raw(-n))),
        }
    }

    /// Exact realized cash flow of a symbol: `floor(Σ side-signed qty × price) − Σ fees`. When the
    /// symbol is flat this is its realized PnL.
    pub fn realized(&self, s: &Symbol) -> Money {
        self.accounts.get(s).map_or(Money::ZERO, |a| money::sub(money::money_floor(a.cash), a.fees))
    }

    /// Number of working orders.
    pub fn open_orders(&self) -> usize {
        self.orders.len()
    }

    /// Queue ahead of a working order (diagnostics and tests).
    pub fn queue_ahead(&self, s: &Symbol, client_id: &str) -> Option<Qty> {
        self.find(s, client_id).and_then(|k| self.orders.get(&k)).map(|o| o.queue_ahead)
    }

    /// Positions and working orders, as the integrity check wants them.
    pub fn snapshot(&self) -> VenueSnapshot {
        let positions = self
            .accounts
            .keys()
            .filter_map(|s| self.position(s).map(|(side, qty)| PositionSnapshot { symbol: s.clone(), side, qty }))
            .collect();
        let orders = self
            .orders
            .values()
            .map(|o| OrderSnapshot {
                symbol: o.req.symbol.clone(),
                client_id: o.req.client_id.clone(),
                side: o.req.side,
                kind: o.req.kind,
                remaining: o.remaining(),
                reduce_only: o.req.reduce_only,
            })
            .collect();
        VenueSnapshot { positions, orders }
    }

    fn find(&self, s: &Symbol, client_id: &str) -> Option<u64> {
        self.orders.iter().find(|(_, o)| &o.req.symbol == s && o.req.client_id == client_id).map(|(k, _)| *k)
    }

    /// How much a reduce-only order on `side` may still fill.
    fn reduce_cap(&self, s: &Symbol, side: Side) -> Qty {
        matching::reducible(self.accounts.get(s).map_or(0, |a| a.net), side)
    }

    /// Fillable quantity of an order now (remaining, clipped to the position when reduce-only).
    fn fillable(&self, k: u64) -> Qty {
        let Some(o) = self.orders.get(&k) else { return Qty::ZERO };
        let r = o.remaining();
        if o.req.reduce_only {
            r.min(self.reduce_cap(&o.req.symbol, o.req.side))
        } else {
            r
        }
    }

    fn exec(&mut self, k: u64, price: Price, qty: Qty, liq: Liquidity, ts: TimeMs, out: &mut Vec<VenueEvent>) {
        let Some(o) = self.orders.get_mut(&k) else { return };
        o.filled = Qty::from_raw(o.filled.raw() + qty.raw());
        let rate = self.fees.rate(liq == Liquidity::Maker);
        let fee = money::fee(qty, price, rate);
        let fill = Fill {
            symbol: o.req.symbol.clone(),
            order_id: format!("sim-{k}"),
            client_id: o.req.client_id.clone(),
            exec_id: format!("sim-e{}", self.next_exec),
            side: o.req.side,
            price,
            qty,
            fee,
            liquidity: liq,
            reduce_only: o.req.reduce_only,
            ts_ms: ts,
            venue_pnl: None,
        };
        self.next_exec += 1;
        let done = o.remaining().raw() <= 0;
        let a = self.accounts.entry(fill.symbol.clone()).or_default();
        a.net = a.net.saturating_add(fill.side.sign() * qty.raw());
        a.cash += money::cash_flow_raw(fill.side, qty, price);
        a.fees = money::add(a.fees, fee);
        let flat = a.net == 0;
        let sym = fill.symbol.clone();
        out.push(VenueEvent::Filled(fill));
        if done {
            self.orders.remove(&k);
        }
        if flat {
            self.end_reduce_only(&sym, out);
        }
    }

    /// Cancels the reduce-only orders of a symbol that has no position any more.
    fn end_reduce_only(&mut self, s: &Symbol, out: &mut Vec<VenueEvent>) {
        let ks: Vec<u64> =
            self.orders.iter().filter(|(_, o)| &o.req.symbol == s && o.req.reduce_only).map(|(k, _)| *k).collect();
        for k in ks {
            self.end(k, EndReason::ReduceOnlyNoPosition, out);
        }
    }

    fn end(&mut self, k: u64, reason: EndReason, out: &mut Vec<VenueEvent>) {
        if let Some(o) = self.orders.remove(&k) {
            out.push(VenueEvent::Cancelled {
                symbol: o.req.symbol.clone(),
                client_id: o.req.client_id.clone(),
                remaining: o.remaining(),
                reason,
            });
        }
    }

    /// Takes liquidity from the book for order `k`: up to `limit` when given, with prices capped
    /// at `cap` (stop fills), filling beyond the visible depth at the worst level when
    /// `beyond_depth`.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        k: u64,
        book: &OrderBook,
        limit: Option<Price>,
        cap: Option<Price>,
        beyond_depth: bool,
        ts: TimeMs,
        out: &mut Vec<VenueEvent>,
    ) {
        let Some(side) = self.orders.get(&k).map(|o| o.req.side) else { return };
        let levels = book.top_n(side.opposite(), usize::MAX).map(|l| (l.price, l.qty));
        let (takes, left) = matching::walk(side, levels, limit, cap, self.fillable(k));
        let last = takes.last().map(|t| t.price).or(cap);
        for t in takes {
            self.exec(k, t.price, t.qty, Liquidity::Taker, ts, out);
        }
        if left.raw() > 0 && beyond_depth && limit.is_none() {
            if let Some(px) = last {
                self.exec(k, px, left, Liquidity::Taker, ts, out);
            }
        }
    }

    fn reject(r: &OrderRequest, reason: RejectReason) -> Vec<VenueEvent> {
        vec![VenueEvent::Rejected { symbol: r.symbol.clone(), client_id: r.client_id.clone(), reason }]
    }

    /// Places an order against the current `book` (of the order's symbol) at `now_ms`.
    pub fn place(&mut self, req: &OrderRequest, book: &OrderBook, now_ms: TimeMs) -> Vec<VenueEvent> {
        if req.qty.raw() <= 0 {
            return Self::reject(req, RejectReason::InvalidQty);
        }
        if self.find(&req.symbol, &req.client_id).is_some() {
            return Self::reject(req, RejectReason::DuplicateClientId);
        }
        match req.kind {
            OrderKind::Limit { price, .. } if price.raw() <= 0 || !price.is_on_tick(book.tick_size()) => {
                return Self::reject(req, RejectReason::InvalidPrice)
            }
            OrderKind::StopMarket { trigger } if trigger.raw() <= 0 => {
                return Self::reject(req, RejectReason::InvalidPrice)
            }
            _ => {}
        }
        if req.reduce_only && self.reduce_cap(&req.symbol, req.side).raw() <= 0 {
            return Self::reject(req, RejectReason::ReduceOnlyRuleNotSatisfied);
        }
        if let OrderKind::Limit { price, tif: TimeInForce::PostOnly } = req.kind {
            if crosses(book, req.side, price) {
                return Self::reject(req, RejectReason::PostOnlyWouldTakeLiquidity);
            }
        }
        let k = self.next_seq;
        self.next_seq += 1;
        self.orders
            .insert(k, SimOrder { req: req.clone(), filled: Qty::ZERO, queue_ahead: Qty::ZERO, placed_ms: now_ms });
        let mut out = vec![VenueEvent::Accepted {
            symbol: req.symbol.clone(),
            client_id: req.client_id.clone(),
            order_id: format!("sim-{k}"),
        }];
        match req.kind {
            OrderKind::Limit { price, tif } => {
                if tif != TimeInForce::PostOnly {
                    self.walk(k, book, Some(price), None, false, now_ms, &mut out);
                }
                if self.orders.contains_key(&k) {
                    if !matching::remainder_rests(req.kind) {
                        self.end(k, EndReason::IocRemainder, &mut out);
                    } else if let Some(o) = self.orders.get_mut(&k) {
                        o.queue_ahead = level_qty(book, req.side, price);
                    }
                }
            }
            OrderKind::Market => {
                self.walk(k, book, None, None, true, now_ms, &mut out);
                if self.orders.contains_key(&k) {
                    self.end(k, EndReason::NoLiquidity, &mut out);
                }
            }
            OrderKind::StopMarket { .. } => {}
        }
        out
    }

    /// Cancels a working order.
    pub fn cancel(&mut self, s: &Symbol, client_id: &str) -> Vec<VenueEvent> {
        let mut out = Vec::new();
        match self.find(s, client_id) {
            Some(k) => self.end(k, EndReason::Cancelled, &mut out),
            None => out.push(VenueEvent::Rejected {
                symbol: s.clone(),
                client_id: client_id.to_string(),
                reason: RejectReason::OrderNotFound,
            }),
        }
        out
    }

    /// Amends a working order's price, trigger or total quantity. A new price re-queues the
    /// order behind the size resting there; a limit amend that would cross is refused.
    pub fn amend(
        &mut self,
        s: &Symbol,
        client_id: &str,
        price: Option<Price>,
        trigger: Option<Price>,
        qty: Option<Qty>,
        book: &OrderBook,
    ) -> Vec<VenueEvent> {
        let rej = |reason| vec![VenueEvent::Rejected { symbol: s.clone(), client_id: client_id.to_string(), reason }];
        let Some(k) = self.find(s, client_id) else { return rej(RejectReason::OrderNotFound) };
        let Some(o) = self.orders.get(&k) else { return rej(RejectReason::OrderNotFound) };
        if let Some(q) = qty {
            if q <= o.filled {
                return rej(RejectReason::InvalidQty);
            }
        }
        let mut kind = o.req.kind;
        match (&mut kind, price, trigger) {
            (OrderKind::Limit { price: p, .. }, Some(np), None) => {
                if np.raw() <= 0 || !np.is_on_tick(book.tick_size()) {
                    return rej(RejectReason::InvalidPrice);
                }
                if crosses(book, o.req.side, np) {
                    return rej(RejectReason::PostOnlyWouldTakeLiquidity);
                }
                *p = np;
            }
            (OrderKind::StopMarket { trigger: t }, None, Some(nt)) => {
                if nt.raw() <= 0 {
                    return rej(RejectReason::InvalidPrice);
                }
                *t = nt;
            }
            (_, None, None) => {}
            _ => return rej(RejectReason::InvalidPrice),
        }
        let side = o.req.side;
        if let Some(o) = self.orders.get_mut(&k) {
            if let (OrderKind::Limit { price: np, .. }, Some(_)) = (kind, price) {
                o.queue_ahead = level_qty(book, side, np);
            }
            o.req.kind = kind;
            if let Some(q) = qty {
                o.req.qty = q;
            }
        }
        vec![VenueEvent::Amended { symbol: s.clone(), client_id: client_id.to_string() }]
    }

    /// Carries out one intent against the current `book` of its symbol.
    pub fn submit(&mut self, intent: &Intent, book: &OrderBook, now_ms: TimeMs) -> Vec<VenueEvent> {
        match intent {
            Intent::Place(r) => self.place(r, book, now_ms),
            Intent::Cancel { symbol, client_id } => self.cancel(symbol, client_id),
            Intent::Amend { symbol, client_id, price, trigger, qty } => {
                self.amend(symbol, client_id, *price, *trigger, *qty, book)
            }
            Intent::Close { symbol, position_side, qty, client_id, .. } => {
                let r = OrderRequest {
                    client_id: client_id.clone(),
                    symbol: symbol.clone(),
                    side: position_side.opposite(),
                    kind: OrderKind::Market,
                    qty: *qty,
                    reduce_only: true,
                };
                self.place(&r, book, now_ms)
            }
        }
    }

    /// Matches working orders of the batch's symbol against its trades, in order; `book` is the
    /// symbol's current book (for triggered stops).
    pub fn on_trades(&mut self, batch: &TradeBatch, book: &OrderBook) -> Vec<VenueEvent> {
        let mut out = Vec::new();
        for t in &batch.trades {
            if t.qty.raw() <= 0 || t.price.raw() <= 0 {
                continue;
            }
            let ks: Vec<u64> =
                self.orders.iter().filter(|(_, o)| o.req.symbol == batch.symbol).map(|(k, _)| *k).collect();
            let mut avail = t.qty;
            for k in ks {
                let Some(o) = self.orders.get(&k) else { continue };
                let side = o.req.side;
                match o.req.kind {
                    OrderKind::StopMarket { trigger } => {
                        if !TriggerDirection::of_stop(side).hit(t.price, trigger) {
                            continue;
                        }
                        out.push(VenueEvent::Triggered {
                            symbol: batch.symbol.clone(),
                            client_id: o.req.client_id.clone(),
                            price: t.price,
                        });
                        self.walk(k, book, None, Some(t.price), true, t.ts_ms, &mut out);
                        if self.orders.contains_key(&k) {
                            let why = if reduce_only_blocked(self, k) {
                                EndReason::ReduceOnlyNoPosition
                            } else {
                                EndReason::NoLiquidity
                            };
                            self.end(k, why, &mut out);
                        }
                    }
                    OrderKind::Limit { price, .. } => {
                        let (can, queue_after) = if matching::trades_through(side, price, t.price) {
                            (avail, Qty::ZERO)
                        } else if t.price == price {
                            match matching::at_price_fill(side, t.qty, t.aggressor, o.queue_ahead) {
                                Some((fillable, after)) => (avail.min(fillable), after),
                                None => continue,
                            }
                        } else {
                            continue;
                        };
                        if let Some(o) = self.orders.get_mut(&k) {
                            o.queue_ahead = queue_after;
                        }
                        let take = can.min(self.fillable(k));
                        if take.raw() > 0 {
                            self.exec(k, price, take, Liquidity::Maker, t.ts_ms, &mut out);
                            avail = Qty::from_raw(avail.raw() - take.raw());
                        }
                    }
                    OrderKind::Market => {}
                }
            }
        }
        out
    }

    /// Time a working order was placed.
    pub fn placed_ms(&self, s: &Symbol, client_id: &str) -> Option<TimeMs> {
        self.find(s, client_id).and_then(|k| self.orders.get(&k)).map(|o| o.placed_ms)
    }
}

fn reduce_only_blocked(v: &SimVenue, k: u64) -> bool {
    v.orders.get(&k).is_some_and(|o| o.req.reduce_only) && v.fillable(k).raw() <= 0
}

#[cfg(test)]
mod tests;
