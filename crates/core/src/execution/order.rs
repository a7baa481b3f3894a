//! Orders, fills, the [`Intent`]s the core emits as data and the [`VenueEvent`]s every venue
//! (the SIM venue, the LIVE exchange edge) reports back. Shapes follow Bybit v5's order
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
        tif: TimeInForce,
    },
    /// Market order: walks the book.
    Market,
    /// Conditional stop-market: becomes a market order when the last trade price reaches
    /// `trigger` (falls to it for a sell, rises to it for a buy).
    StopMarket { trigger: Price },
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

/// Why an order or amend was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Post-only order (or amend) would take liquidity.
    PostOnlyWouldTakeLiquidity,
    /// Reduce-only order with no position to reduce.
    ReduceOnlyRuleNotSatisfied,
    /// Quantity not positive or below what is already filled.
    InvalidQty,
    /// Price not positive or off the tick grid.
    InvalidPrice,
    /// Client id already used by a working order.
    DuplicateClientId,
    /// No working order with that client id.
    OrderNotFound,
    /// The exchange refused the request with this `retCode` (LIVE).
    Exchange {
        /// Bybit's retCode (e.g. 110007 insufficient balance, 10001 bad parameter).
        code: i64,
    },
    /// The request could not be delivered (transport failure after the retries; LIVE).
    Unreachable,
}

impl RejectReason {
    /// Bybit's code or `rejectReason` for the same situation.
    pub fn bybit(&self) -> std::borrow::Cow<'static, str> {
        match self {
            RejectReason::PostOnlyWouldTakeLiquidity => "EC_PostOnlyWillTakeLiquidity".into(),
            RejectReason::ReduceOnlyRuleNotSatisfied => "110017".into(),
            RejectReason::InvalidQty | RejectReason::InvalidPrice => "10001".into(),
            RejectReason::DuplicateClientId => "110072".into(),
            RejectReason::OrderNotFound => "110001".into(),
            RejectReason::Exchange { code } => code.to_string().into(),
            RejectReason::Unreachable => "unreachable".into(),
        }
    }
}

/// Why a working order ended without filling completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Cancelled on request.
    Cancelled,
    /// The part of an IOC limit that did not cross at once.
    IocRemainder,
    /// No liquidity to take.
    NoLiquidity,
    /// Reduce-only order left without a position.
    ReduceOnlyNoPosition,
    /// DRY_RUN: the order was never sent.
    NotSent,
}

/// What a venue reports about an order: the SIM venue at once, the LIVE exchange edge through
/// [`crate::execution::venue::VenueReport::Order`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum VenueEvent {
    /// Order accepted.
    Accepted {
        symbol: Symbol,
        client_id: String,
        /// Venue order id.
        order_id: String,
    },
    /// Order or amend refused.
    Rejected { symbol: Symbol, client_id: String, reason: RejectReason },
    /// An execution.
    Filled(Fill),
    /// Order ended with quantity unfilled.
    Cancelled {
        symbol: Symbol,
        client_id: String,
        /// Unfilled quantity.
        remaining: Qty,
        reason: EndReason,
    },
    /// Amend applied.
    Amended { symbol: Symbol, client_id: String },
    /// Stop order triggered by a trade at `price`.
    Triggered {
        symbol: Symbol,
        client_id: String,
        /// Triggering trade price.
        price: Price,
    },
}

impl VenueEvent {
    /// Symbol of the order.
    pub fn symbol(&self) -> &Symbol {
        match self {
            VenueEvent::Filled(f) => &f.symbol,
            VenueEvent::Accepted { symbol, .. }
            | VenueEvent::Rejected { symbol, .. }
            | VenueEvent::Cancelled { symbol, .. }
            | VenueEvent::Amended { symbol, .. }
            | VenueEvent::Triggered { symbol, .. } => symbol,
        }
    }
}

/// What an order is for. It travels in the order's client id (Bybit `orderLinkId`) as the prefix
/// before the first `-`, so an execution the exchange reports, also one recovered after a
/// restart, says which part of a trade it belongs to without any other state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderRole {
    /// Maker-first entry limit (`e-`).
    Entry,
    /// Taker fallback of an entry (`et-`).
    TakerEntry,
    /// Protective stop (`sl-`).
    StopLoss,
    /// Take-profit leg (`tp-`).
    TakeProfit,
    /// Market close after the maximum hold (`to-`).
    Timeout,
    /// Market close of a position whose stop the venue refused (`x-`).
    StopReplacement,
    /// Kill-switch flattening (`kill-`).
    Kill,
}

impl OrderRole {
    const ALL: [OrderRole; 7] = [
        OrderRole::Entry,
        OrderRole::TakerEntry,
        OrderRole::StopLoss,
        OrderRole::TakeProfit,
        OrderRole::Timeout,
        OrderRole::StopReplacement,
        OrderRole::Kill,
    ];

    /// The client-id prefix (without the `-`).
    pub fn prefix(self) -> &'static str {
        match self {
            OrderRole::Entry => "e",
            OrderRole::TakerEntry => "et",
            OrderRole::StopLoss => "sl",
            OrderRole::TakeProfit => "tp",
            OrderRole::Timeout => "to",
            OrderRole::StopReplacement => "x",
            OrderRole::Kill => "kill",
        }
    }

    /// The client id `{prefix}-{key}-{n}`; `key` makes it unique across symbols (the symbol) or
    /// across kill rounds, `n` within them.
    pub fn client_id(self, key: &str, n: u64) -> String {
        format!("{}-{key}-{n}", self.prefix())
    }

    /// The role a client id names; `None` for an id we did not make.
    pub fn of(client_id: &str) -> Option<OrderRole> {
        let prefix = client_id.split('-').next()?;
        OrderRole::ALL.into_iter().find(|r| r.prefix() == prefix)
    }

    /// Why a trade ended when a fill of an order with this role closed it. A closing fill of an
    /// entry (a flip) or of an unknown order counts as a timeout, the generic market exit.
    pub fn exit_reason(self) -> ExitReason {
        match self {
            OrderRole::StopLoss | OrderRole::StopReplacement => ExitReason::StopLoss,
            OrderRole::TakeProfit => ExitReason::TakeProfit,
            OrderRole::Kill => ExitReason::Panic,
            OrderRole::Entry | OrderRole::TakerEntry | OrderRole::Timeout => ExitReason::Timeout,
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

    #[test]
    fn order_roles_round_trip_through_client_ids() {
        for role in OrderRole::ALL {
            let id = role.client_id("BTCUSDT", 42);
            assert_eq!(OrderRole::of(&id), Some(role), "{id}");
        }
        assert_eq!(OrderRole::of("kill-x3-0"), Some(OrderRole::Kill));
        assert_eq!(OrderRole::of("manual-order"), None);
        assert_eq!(OrderRole::of("sl-ETHUSDT-7").map(OrderRole::exit_reason), Some(ExitReason::StopLoss));
        assert_eq!(OrderRole::of("x-ETHUSDT-8").map(OrderRole::exit_reason), Some(ExitReason::StopLoss));
        assert_eq!(OrderRole::of("tp-ETHUSDT-9").map(OrderRole::exit_reason), Some(ExitReason::TakeProfit));
        assert_eq!(OrderRole::of("kill-1-0").map(OrderRole::exit_reason), Some(ExitReason::Panic));
        assert_eq!(OrderRole::of("to-ETHUSDT-1").map(OrderRole::exit_reason), Some(ExitReason::Timeout));
    }
}
