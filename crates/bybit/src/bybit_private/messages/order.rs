//! Orders as Bybit reports them (`order` topic, `/v5/order/realtime`, `/v5/order/history`):
//! the raw item, its exact typed form and its mapping onto the core's order kinds.

use super::items::{ItemTopic, RawItem};
use super::{side, symbol};
use crate::error::BybitError;
use crate::wire::Txt;
use scalper_core::domain::{Price, Qty, Side, Symbol, TimeMs};
use scalper_core::execution::integrity::OrderSnapshot;
use scalper_core::execution::order::{OrderKind, TimeInForce};
use scalper_core::risk::money::Money;
use serde::{Deserialize, Serialize};

/// Bybit `orderStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Accepted by the system, not yet in the matching engine.
    Created,
    /// Resting in the book.
    New,
    Rejected,
    /// Partially filled and still working.
    PartiallyFilled,
    /// Partially filled, the rest cancelled.
    PartiallyFilledCanceled,
    /// Completely filled.
    Filled,
    /// Cancelled (post-only that would take liquidity, IOC remainder, user cancel, …).
    Cancelled,
    /// Conditional order waiting for its trigger.
    Untriggered,
    /// Conditional order triggered, being executed.
    Triggered,
    /// Conditional order cancelled before its trigger.
    Deactivated,
    /// Order is active (spot TP/SL).
    Active,
    /// A status this client does not know.
    Other(String),
}

impl OrderStatus {
    /// From Bybit's spelling.
    pub fn parse(s: &str) -> OrderStatus {
        match s {
            "Created" => OrderStatus::Created,
            "New" => OrderStatus::New,
            "Rejected" => OrderStatus::Rejected,
            "PartiallyFilled" => OrderStatus::PartiallyFilled,
            "PartiallyFilledCanceled" => OrderStatus::PartiallyFilledCanceled,
            "Filled" => OrderStatus::Filled,
            "Cancelled" => OrderStatus::Cancelled,
            "Untriggered" => OrderStatus::Untriggered,
            "Triggered" => OrderStatus::Triggered,
            "Deactivated" => OrderStatus::Deactivated,
            "Active" => OrderStatus::Active,
            other => OrderStatus::Other(other.to_string()),
        }
    }

    /// Bybit's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::Created => "Created",
            OrderStatus::New => "New",
            OrderStatus::Rejected => "Rejected",
            OrderStatus::PartiallyFilled => "PartiallyFilled",
            OrderStatus::PartiallyFilledCanceled => "PartiallyFilledCanceled",
            OrderStatus::Filled => "Filled",
            OrderStatus::Cancelled => "Cancelled",
            OrderStatus::Untriggered => "Untriggered",
            OrderStatus::Triggered => "Triggered",
            OrderStatus::Deactivated => "Deactivated",
            OrderStatus::Active => "Active",
            OrderStatus::Other(s) => s,
        }
    }

    /// True while the order can still execute.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            OrderStatus::Created
                | OrderStatus::New
                | OrderStatus::PartiallyFilled
                | OrderStatus::Untriggered
                | OrderStatus::Triggered
                | OrderStatus::Active
        )
    }
}

/// An order as the venue reports it (REST `/v5/order/realtime`, `/v5/order/history`, WS `order`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueOrder {
    pub symbol: Symbol,
    /// Venue order id.
    pub order_id: String,
    /// Client order id (`orderLinkId`).
    pub order_link_id: String,
    pub side: Side,
    /// `Limit` or `Market`.
    pub order_type: String,
    /// Limit price (`None` for market orders).
    pub price: Option<Price>,
    /// Order quantity.
    pub qty: Qty,
    /// `GTC`, `IOC`, `FOK`, `PostOnly`.
    pub time_in_force: String,
    pub status: OrderStatus,
    /// Quantity still working.
    pub leaves_qty: Qty,
    /// Quantity executed.
    pub cum_exec_qty: Qty,
    /// Value executed.
    pub cum_exec_value: Money,
    /// Fees paid.
    pub cum_exec_fee: Money,
    /// Average fill price.
    pub avg_price: Option<Price>,
    /// Trigger price of a conditional order.
    pub trigger_price: Option<Price>,
    /// 1 = triggers when the price rises to the trigger, 2 = when it falls; 0 = not conditional.
    pub trigger_direction: u8,
    /// `Stop`, `TakeProfit`, `StopLoss`, … or empty.
    pub stop_order_type: String,
    pub reduce_only: bool,
    /// Rejection / cancellation reason (`EC_NoError` when none).
    pub reject_reason: String,
    /// Creation time, ms.
    pub created_ms: TimeMs,
    /// Last update time, ms.
    pub updated_ms: TimeMs,
}

/// Raw order object (all fields optional text).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawOrder {
    category: Txt,
    symbol: Txt,
    order_id: Txt,
    order_link_id: Txt,
    side: Txt,
    order_type: Txt,
    price: Txt,
    qty: Txt,
    time_in_force: Txt,
    order_status: Txt,
    leaves_qty: Txt,
    cum_exec_qty: Txt,
    cum_exec_value: Txt,
    cum_exec_fee: Txt,
    avg_price: Txt,
    trigger_price: Txt,
    trigger_direction: Txt,
    stop_order_type: Txt,
    reduce_only: Txt,
    reject_reason: Txt,
    created_time: Txt,
    updated_time: Txt,
}

/// Stop-order types of Bybit's position-level (Full-mode) TP/SL orders, the only orders whose
/// `qty` is `"0"` (they close whatever the position holds when triggered).
pub fn is_position_tpsl(stop_order_type: &str) -> bool {
    matches!(stop_order_type, "TakeProfit" | "StopLoss" | "TrailingStop")
}

impl RawOrder {
    /// Exact typed order.
    pub fn typed(&self) -> Result<VenueOrder, BybitError> {
        let is_market = self.order_type.s() == "Market";
        Ok(VenueOrder {
            symbol: symbol(&self.symbol)?,
            order_id: self.order_id.0.clone(),
            order_link_id: self.order_link_id.0.clone(),
            side: side(&self.side, "side")?,
            order_type: self.order_type.0.clone(),
            // Market orders carry the protection price (or "0"): checked, not kept.
            price: {
                let p = self.price.price("price")?;
                if is_market {
                    None
                } else {
                    p
                }
            },
            // "0" is legal only on Full-mode position TP/SL orders (they close the whole
            // position); any other order of size 0 is impossible.
            qty: Qty(if is_position_tpsl(self.stop_order_type.s()) {
                self.qty.nonneg("qty")?
            } else {
                self.qty.positive("qty")?
            }),
            time_in_force: self.time_in_force.0.clone(),
            status: OrderStatus::parse(self.order_status.s()),
            leaves_qty: Qty(self.leaves_qty.nonneg("leavesQty")?),
            cum_exec_qty: Qty(self.cum_exec_qty.nonneg("cumExecQty")?),
            cum_exec_value: self.cum_exec_value.nonneg("cumExecValue")?,
            cum_exec_fee: self.cum_exec_fee.dec0("cumExecFee")?,
            avg_price: self.avg_price.price("avgPrice")?,
            trigger_price: self.trigger_price.price("triggerPrice")?,
            trigger_direction: match self.trigger_direction.s() {
                "1" => 1,
                "2" => 2,
                _ => 0,
            },
            stop_order_type: self.stop_order_type.0.clone(),
            reduce_only: self.reduce_only.flag(),
            reject_reason: self.reject_reason.0.clone(),
            created_ms: self.created_time.ms("createdTime")?,
            updated_ms: self.updated_time.ms("updatedTime")?,
        })
    }
}

impl RawItem for RawOrder {
    type Typed = VenueOrder;
    const TOPIC: ItemTopic = ItemTopic::Order;
    fn category(&self) -> &str {
        self.category.s()
    }
    fn symbol_text(&self) -> Option<&str> {
        Some(self.symbol.s())
    }
    fn typed(&self) -> Result<VenueOrder, BybitError> {
        RawOrder::typed(self)
    }
}

impl VenueOrder {
    /// The core's view of the order type: a conditional market order is a
    /// [`OrderKind::StopMarket`], a market order [`OrderKind::Market`], anything else a limit
    /// with its time in force (FOK is reported as IOC).
    pub fn kind(&self) -> OrderKind {
        if let (Some(trigger), "Market") = (self.trigger_price, self.order_type.as_str()) {
            return OrderKind::StopMarket { trigger };
        }
        match (self.order_type.as_str(), self.price) {
            ("Limit", Some(price)) => {
                let tif = match self.time_in_force.as_str() {
                    "PostOnly" => TimeInForce::PostOnly,
                    "IOC" | "FOK" => TimeInForce::Ioc,
                    _ => TimeInForce::Gtc,
                };
                OrderKind::Limit { price, tif }
            }
            _ => OrderKind::Market,
        }
    }

    /// As a working-order snapshot for integrity checks.
    pub fn to_snapshot(&self) -> OrderSnapshot {
        OrderSnapshot {
            symbol: self.symbol.clone(),
            client_id: self.order_link_id.clone(),
            side: self.side,
            kind: self.kind(),
            remaining: self.leaves_qty,
            reduce_only: self.reduce_only,
        }
    }
}
