//! The matching and fill rules every venue of ours shares: the in-core SIM venue
//! ([`crate::execution::sim`]) and the exchange simulator's private exchange (`scalper-sim`)
//! both decide with these functions whether an order crosses, how far a taker walks the book,
//! what a reduce-only order may still fill, when a stop triggers, whether a remainder rests and
//! when a resting limit is reached. Fees come from the one formula in
//! [`crate::risk::money::fee`].
//!
//! What differs between the two venues is only what they see, not the rules: the simulator is
//! the exchange, owns the whole book and consumes the levels a taker takes; the in-core SIM venue
//! sees the public book and tape, never mutates them, and so also tracks the queue ahead of a
//! resting limit ([`at_price_fill`]).

use crate::domain::{Price, Qty, Side};
use crate::execution::order::{OrderKind, TimeInForce};

/// True when a limit on `side` at `limit` would take liquidity from the opposite touch `best`
/// (a buy at or above the best ask, a sell at or below the best bid). Post-only orders and
/// amends that cross are refused; resting limits that the opposite touch reaches are matched.
pub fn crosses(side: Side, limit: Price, best: Option<Price>) -> bool {
    match (side, best) {
        (Side::Buy, Some(a)) => limit >= a,
        (Side::Sell, Some(b)) => limit <= b,
        (_, None) => false,
    }
}

/// True when a trade at `price` printed strictly beyond a resting limit on `side` (below a buy,
/// above a sell): the whole queue at the limit was consumed, so the order fills.
pub fn trades_through(side: Side, limit: Price, price: Price) -> bool {
    match side {
        Side::Buy => price < limit,
        Side::Sell => price > limit,
    }
}

/// What a reduce-only order on `side` may still fill against a signed position of `net` raw
/// quantity units (+ long): the position when the order closes it, zero otherwise.
pub fn reducible(net: i64, side: Side) -> Qty {
    match side {
        Side::Buy if net < 0 => Qty::from_raw(net.saturating_neg()),
        Side::Sell if net > 0 => Qty::from_raw(net),
        _ => Qty::ZERO,
    }
}

/// One taker execution: the level price and the quantity taken there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// Execution price.
    pub price: Price,
    /// Quantity taken at `price`.
    pub qty: Qty,
}

/// How a taker on `side` for `want` walks the opposite `levels` (best first): level by level,
/// never beyond `limit` (a limit order, or a market order's price band), each execution priced
/// at its level but never better than `cap` (a triggered stop fills no better than the print that
/// triggered it). Returns the executions and the quantity left unfilled.
pub fn walk(
    side: Side,
    levels: impl IntoIterator<Item = (Price, Qty)>,
    limit: Option<Price>,
    cap: Option<Price>,
    want: Qty,
) -> (Vec<Take>, Qty) {
    let mut left = want.raw();
    let mut takes = Vec::new();
    for (price, qty) in levels {
        if left <= 0 {
            break;
        }
        if limit.is_some_and(|l| !crosses(side, l, Some(price))) {
            break;
        }
        let price = match (cap, side) {
            (Some(c), Side::Sell) => price.min(c),
            (Some(c), Side::Buy) => price.max(c),
            (None, _) => price,
        };
        let take = left.min(qty.raw());
        if take <= 0 {
            continue;
        }
        takes.push(Take { price, qty: Qty::from_raw(take) });
        left -= take;
    }
    (takes, Qty::from_raw(left.max(0)))
}

/// Whether the part of an order its taker walk did not fill rests on the book (GTC limits) or
/// ends at once (market orders, IOC; FOK is treated like IOC). Post-only limits never take, so
/// all of them rests.
pub fn remainder_rests(kind: OrderKind) -> bool {
    matches!(kind, OrderKind::Limit { tif: TimeInForce::Gtc | TimeInForce::PostOnly, .. })
}

/// Which way the last price must move for a conditional order to trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerDirection {
    /// Triggers when the price rises to or above the trigger (Bybit `triggerDirection` 1).
    RisesTo,
    /// Triggers when the price falls to or below the trigger (Bybit `triggerDirection` 2).
    FallsTo,
}

impl TriggerDirection {
    /// The direction of a stop-loss order on `side`: a sell stop (closing a long) triggers on a
    /// fall, a buy stop (closing a short) on a rise.
    pub fn of_stop(side: Side) -> Self {
        match side {
            Side::Sell => TriggerDirection::FallsTo,
            Side::Buy => TriggerDirection::RisesTo,
        }
    }

    /// The direction of a take-profit order on `side`: a sell (closing a long) triggers on a
    /// rise, a buy (closing a short) on a fall.
    pub fn of_take_profit(side: Side) -> Self {
        match side {
            Side::Sell => TriggerDirection::RisesTo,
            Side::Buy => TriggerDirection::FallsTo,
        }
    }

    /// True when a trade or last price `price` reaches `trigger`.
    pub fn hit(self, price: Price, trigger: Price) -> bool {
        match self {
            TriggerDirection::RisesTo => price >= trigger,
            TriggerDirection::FallsTo => price <= trigger,
        }
    }
}

/// A trade printed exactly at a resting limit's price, seen by a venue that does not own the
/// book: how much of it reaches the order after the `queue_ahead` (raw) and what is left ahead.
/// Only trades whose aggressor is on the opposite side count (they consumed the queue);
/// cancellations ahead are never assumed. Returns `(fillable, queue_after)`.
pub fn at_price_fill(side: Side, trade_qty: Qty, aggressor: Side, queue_ahead: Qty) -> Option<(Qty, Qty)> {
    if aggressor != side.opposite() {
        return None;
    }
    let fillable = Qty::from_raw((trade_qty.raw() - queue_ahead.raw()).max(0));
    let after = Qty::from_raw((queue_ahead.raw() - trade_qty.raw()).max(0));
    Some((fillable, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{p, q};

    #[test]
    fn crossing_is_at_or_through_the_opposite_touch() {
        assert!(crosses(Side::Buy, p("100"), Some(p("100"))));
        assert!(!crosses(Side::Buy, p("99.9"), Some(p("100"))));
        assert!(crosses(Side::Sell, p("100"), Some(p("100"))));
        assert!(!crosses(Side::Sell, p("100.1"), Some(p("100"))));
        assert!(!crosses(Side::Buy, p("1000"), None));
    }

    #[test]
    fn walk_stops_at_the_limit_and_caps_prices() {
        let asks = [(p("100"), q("1")), (p("101"), q("2")), (p("102"), q("5"))];
        let (takes, left) = walk(Side::Buy, asks, Some(p("101")), None, q("4"));
        assert_eq!(takes, vec![Take { price: p("100"), qty: q("1") }, Take { price: p("101"), qty: q("2") }]);
        assert_eq!(left, q("1"));
        // A buy stop triggered by a print at 101 fills no better than 101.
        let (takes, left) = walk(Side::Buy, asks, None, Some(p("101")), q("1.5"));
        assert_eq!(takes, vec![Take { price: p("101"), qty: q("1") }, Take { price: p("101"), qty: q("0.5") }]);
        assert_eq!(left, Qty::ZERO);
    }

    #[test]
    fn reduce_only_fills_only_against_the_position() {
        assert_eq!(reducible(5, Side::Sell), Qty::from_raw(5));
        assert_eq!(reducible(5, Side::Buy), Qty::ZERO);
        assert_eq!(reducible(-7, Side::Buy), Qty::from_raw(7));
        assert_eq!(reducible(0, Side::Sell), Qty::ZERO);
        assert_eq!(reducible(i64::MIN, Side::Buy), Qty::from_raw(i64::MAX));
    }

    #[test]
    fn triggers_and_remainders() {
        assert!(TriggerDirection::of_stop(Side::Sell).hit(p("99"), p("99")));
        assert!(!TriggerDirection::of_stop(Side::Sell).hit(p("99.5"), p("99")));
        assert!(TriggerDirection::of_stop(Side::Buy).hit(p("101"), p("100")));
        assert!(TriggerDirection::of_take_profit(Side::Sell).hit(p("101"), p("100")));
        assert!(!TriggerDirection::of_take_profit(Side::Buy).hit(p("101"), p("100")));
        assert!(remainder_rests(OrderKind::Limit { price: p("1"), tif: TimeInForce::Gtc }));
        assert!(!remainder_rests(OrderKind::Limit { price: p("1"), tif: TimeInForce::Ioc }));
        assert!(!remainder_rests(OrderKind::Market));
    }

    #[test]
    fn queue_ahead_is_consumed_only_by_opposite_aggressors() {
        assert_eq!(at_price_fill(Side::Buy, q("3"), Side::Sell, q("2")), Some((q("1"), Qty::ZERO)));
        assert_eq!(at_price_fill(Side::Buy, q("1"), Side::Sell, q("2")), Some((Qty::ZERO, q("1"))));
        assert_eq!(at_price_fill(Side::Buy, q("3"), Side::Buy, q("0")), None);
    }
}
