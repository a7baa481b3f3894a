//! Private REST shapes: the `result`s of the list / ack endpoints and the request bodies built
//! from the core's [`OrderRequest`]s, serialised the way Bybit documents them.

use super::account::RawWallet;
use super::MAX_ORDER_LINK_ID_LEN;
use crate::wire::Txt;
use scalper_core::domain::Side;
use scalper_core::execution::order::{OrderKind, OrderRequest, TimeInForce};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// REST results
// ---------------------------------------------------------------------------------------------

/// A paginated `result`: `{category, list, nextPageCursor}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub list: Vec<T>,
    /// Cursor of the next page; empty on the last one.
    #[serde(default)]
    pub next_page_cursor: Txt,
}

/// `result` of `/v5/account/wallet-balance`: `{list: [wallet]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct WalletResult {
    /// One entry per account type asked for.
    #[serde(default)]
    pub list: Vec<RawWallet>,
}

/// `result` of create / amend / cancel: `{orderId, orderLinkId}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderAck {
    /// Venue order id.
    #[serde(default)]
    pub order_id: String,
    /// Client order id.
    #[serde(default)]
    pub order_link_id: String,
}

/// `result` of cancel-all: `{list: [{orderId, orderLinkId}], success}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CancelAllResult {
    /// Cancelled orders.
    #[serde(default)]
    pub list: Vec<OrderAck>,
}

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

/// Body of `POST /v5/order/create` (linear, one-way mode). Optional fields are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderBody {
    /// `linear`.
    pub category: &'static str,
    pub symbol: String,
    /// `Buy` / `Sell`.
    pub side: &'static str,
    /// `Limit` / `Market`.
    pub order_type: &'static str,
    pub qty: String,
    /// Limit price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Trigger price (conditional orders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_price: Option<String>,
    /// 1 rise / 2 fall (conditional orders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_direction: Option<u8>,
    /// `LastPrice` (conditional orders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_by: Option<&'static str>,
    /// `GTC` / `IOC` / `PostOnly` (limit orders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<&'static str>,
    /// 0 = one-way mode.
    pub position_idx: u8,
    /// Client order id.
    pub order_link_id: String,
    pub reduce_only: bool,
}

/// Checks an `orderLinkId`: 1..=36 characters of `[A-Za-z0-9_-]`.
pub fn validate_order_link_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ORDER_LINK_ID_LEN {
        return Err(format!("orderLinkId must have 1..={MAX_ORDER_LINK_ID_LEN} characters, got {}", id.len()));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("orderLinkId {id:?} may only contain letters, digits, '-' and '_'"));
    }
    Ok(())
}

impl CreateOrderBody {
    /// Maps a core order: limit GTC / IOC / PostOnly, market, and stop-market as a conditional
    /// market order with `triggerPrice`, `triggerDirection` (sell stops trigger on a fall, buy
    /// stops on a rise) and `triggerBy=LastPrice`.
    pub fn from_request(req: &OrderRequest) -> Result<CreateOrderBody, String> {
        validate_order_link_id(&req.client_id)?;
        if req.qty.raw() <= 0 {
            return Err(format!("order quantity must be positive, got {}", req.qty));
        }
        let mut body = CreateOrderBody {
            category: "linear",
            symbol: req.symbol.as_str().to_string(),
            side: req.side.as_bybit(),
            order_type: "Market",
            qty: req.qty.to_string(),
            price: None,
            trigger_price: None,
            trigger_direction: None,
            trigger_by: None,
            time_in_force: None,
            position_idx: 0,
            order_link_id: req.client_id.clone(),
            reduce_only: req.reduce_only,
        };
        match req.kind {
            OrderKind::Limit { price, tif } => {
                if price.raw() <= 0 {
                    return Err(format!("limit price must be positive, got {price}"));
                }
                body.order_type = "Limit";
                body.price = Some(price.to_string());
                body.time_in_force = Some(match tif {
                    TimeInForce::Gtc => "GTC",
                    TimeInForce::Ioc => "IOC",
                    TimeInForce::PostOnly => "PostOnly",
                });
            }
            OrderKind::Market => {}
            OrderKind::StopMarket { trigger } => {
                if trigger.raw() <= 0 {
                    return Err(format!("trigger price must be positive, got {trigger}"));
                }
                body.trigger_price = Some(trigger.to_string());
                body.trigger_direction = Some(match req.side {
                    Side::Buy => 1,
                    Side::Sell => 2,
                });
                body.trigger_by = Some("LastPrice");
            }
        }
        Ok(body)
    }
}

/// Body of `POST /v5/order/amend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmendOrderBody {
    /// `linear`.
    pub category: &'static str,
    pub symbol: String,
    /// Client order id.
    pub order_link_id: String,
    /// New quantity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qty: Option<String>,
    /// New limit price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// New trigger price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_price: Option<String>,
}

/// Body of `POST /v5/order/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrderBody {
    /// `linear`.
    pub category: &'static str,
    pub symbol: String,
    /// Client order id.
    pub order_link_id: String,
}

/// Body of `POST /v5/order/cancel-all` (one symbol, or every USDT contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAllBody {
    /// `linear`.
    pub category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// `USDT` when no symbol is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle_coin: Option<&'static str>,
}

/// Body of `POST /v5/position/set-leverage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetLeverageBody {
    /// `linear`.
    pub category: &'static str,
    pub symbol: String,
    /// Leverage of longs.
    pub buy_leverage: String,
    /// Leverage of shorts (equal to `buy_leverage` in one-way mode).
    pub sell_leverage: String,
}

/// Body of `POST /v5/position/trading-stop` (full-position TP/SL, one-way mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradingStopBody {
    /// `linear`.
    pub category: &'static str,
    pub symbol: String,
    /// `Full`.
    pub tpsl_mode: &'static str,
    /// 0 = one-way.
    pub position_idx: u8,
    /// Take-profit price (`"0"` cancels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<String>,
    /// Stop-loss price (`"0"` cancels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<String>,
    /// `LastPrice` when a take profit is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tp_trigger_by: Option<&'static str>,
    /// `LastPrice` when a stop loss is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sl_trigger_by: Option<&'static str>,
}
