//! Orders, fills and the [`Intent`]s the core emits as data. Shapes follow Bybit v5's order
//! model (limit/market, `timeInForce` GTC/IOC/PostOnly, conditional stop-market, `reduceOnly`,
//! `orderLinkId`), but these are the core's own types, not wire messages.

use crate::domain::{Price, Qty, Side, Symbol, TimeMs};
use crate::risk::money::Money;
use crate::state::machine::ExitReason;
use serde::{Deserialize, Serialize};

/// Time in force of a limit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Good till cancelled: takes what crosses, rests the rest.
    Gtc,
    /// Immediate or cancel: takes what crosses up to the limit, cancels the rest.
    Ioc,
    /// Post-only: rests as maker or is rejected if it would cross.
    PostOnly,
}

/// Order type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderKind {
    /// Limit order at `price`.
    Limit {
        /// Limit price (on the tick grid).
        price: Price,
        /// Time in force.
        tif: TimeInForce,
    },
    /// Market order: walks the book.
    Market,
    /// Conditional stop-market: becomes a market order when the last trade price reaches
    /// `trigger` (falls to it for a sell, rises to it for a buy).
    StopMarket {
        /// Trigger price.
        trigger: Price,
    },
}

/// A new order as the core wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Client order id (Bybit `orderLinkId`), unique per order; generated deterministically by
    /// the core.
    pub client_id: String,
    pub symbol: Symbol,
    pub side: Side,
    /// Type and price.
    pub kind: OrderKind,
    /// Quantity.
    pub qty: Qty,
    /// Only reduces an open position (exits: SL, TP, close).
    pub reduce_only: bool,
}

/// Whether a fill added (maker) or took (taker) liquidity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Liquidity {
    /// Resting order was hit: maker fee.
    Maker,
    /// Order crossed the book: taker fee.
    Taker,
}

/// One execution of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub symbol: Symbol,
    /// Venue order id.
    pub order_id: String,
    /// Client order id.
    pub client_id: String,
    /// Execution id (unique per venue).
    pub exec_id: String,
    /// Order side.
    pub side: Side,
    /// Execution price.
    pub price: Price,
    /// Executed quantity.
    pub qty: Qty,
    /// Fee charged (negative = rebate), exact.
    pub fee: Money,
    /// Maker or taker.
    pub liquidity: Liquidity,
    /// The order was reduce-only.
    pub reduce_only: bool,
    /// Execution time, ms.
    pub ts_ms: TimeMs,
    /// Gross realized PnL of this execution as the venue books it (Bybit `execPnl`), when the
    /// venue says. The portfolio books the venue's figure for reducing fills, so the engine's
    /// PnL is the account's to the last unit (venues round per execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue_pnl: Option<Money>,
}

/// What the core asks an execution venue to do. Emitted as data; the edge (SIM, DRY_RUN log or
/// Bybit private API) carries it out and reports back with events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "intent", rename_all = "snake_case")]
pub enum Intent {
    /// Place a new order.
    Place(OrderRequest),
    /// Cancel an order by client id.
    Cancel {
        symbol: Symbol,
        /// Client order id.
        client_id: String,
    },
    /// Amend a resting order (any field left `None` is unchanged).
    Amend {
        symbol: Symbol,
        /// Client order id.
        client_id: String,
        /// New limit price.
        price: Option<Price>,
        /// New trigger price (stop orders).
        trigger: Option<Price>,
        /// New quantity.
        qty: Option<Qty>,
    },
    /// Close (part of) a position at market, reduce-only.
    Close {
        symbol: Symbol,
        /// Side of the position being closed (the order goes the other way).
        position_side: Side,
        /// Quantity to close.
        qty: Qty,
        /// Why.
        reason: ExitReason,
        /// Client order id for the closing order.
        client_id: String,
    },
}

impl Intent {
    /// Symbol the intent concerns.
    pub fn symbol(&self) -> &Symbol {
        match self {
            Intent::Place(r) => &r.symbol,
            Intent::Cancel { symbol, .. } | Intent::Amend { symbol, .. } | Intent::Close { symbol, .. } => symbol,
        }
    }
    /// True when the intent can only reduce exposure (cancels, closes, reduce-only orders).
    pub fn is_risk_reducing(&self) -> bool {
        match self {
            Intent::Place(r) => r.reduce_only,
            Intent::Cancel { .. } | Intent::Close { .. } => true,
            Intent::Amend { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_serialize_with_tags_and_round_trip() {
        let place = Intent::Place(OrderRequest {
            client_id: "e-BTCUSDT-1".into(),
            symbol: Symbol::new("BTCUSDT"),
            side: Side::Buy,
            kind: OrderKind::Limit { price: Price::parse("26000.5").unwrap(), tif: TimeInForce::PostOnly },
            qty: Qty::parse("0.01").unwrap(),
            reduce_only: false,
        });
        let j = serde_json::to_value(&place).unwrap();
        assert_eq!(j["intent"], "place");
        assert_eq!(j["kind"]["type"], "limit");
        assert_eq!(j["kind"]["price"], "26000.5");
        assert_eq!(j["kind"]["tif"], "PostOnly");
        assert_eq!(serde_json::from_value::<Intent>(j).unwrap(), place);
        assert!(!place.is_risk_reducing());

        let close = Intent::Close {
            symbol: Symbol::new("ETHUSDT"),
            position_side: Side::Sell,
            qty: Qty::parse("1").unwrap(),
            reason: ExitReason::Panic,
            client_id: "x-1".into(),
        };
        let s = serde_json::to_string(&close).unwrap();
        assert!(s.contains("\"intent\":\"close\""), "{s}");
        assert_eq!(serde_json::from_str::<Intent>(&s).unwrap(), close);
        assert!(close.is_risk_reducing());
        assert_eq!(close.symbol().as_str(), "ETHUSDT");
    }
}
