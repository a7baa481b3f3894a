//! Bybit v5 private wire formats: request bodies built from the core's [`OrderRequest`]s, the
//! `result` shapes of the private REST endpoints, the private WebSocket topics (`order`,
//! `execution`, `position`, `wallet`) and exact conversions into typed values.
//!
//! Every number Bybit sends as a string is parsed exactly ([`Fixed`]); an empty string is
//! "absent". Malformed values are a [`BybitError::Decode`], never a panic.

use crate::connectors::bybit_public::messages::OpResponse;
use crate::connectors::bybit_public::BybitError;
use crate::domain::{Fixed, Price, Qty, Side, Symbol, TimeMs};
use crate::execution::integrity::{OrderSnapshot, PositionSnapshot, VenueSnapshot};
use crate::execution::order::{Fill, Liquidity, OrderKind, OrderRequest, TimeInForce};
use crate::risk::money::Money;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Bybit's longest `orderLinkId` for derivatives.
pub const MAX_ORDER_LINK_ID_LEN: usize = 36;

/// retCode: request parameter error.
pub const CODE_PARAMS: i64 = 10001;
/// retCode: timestamp outside the receive window.
pub const CODE_TIMESTAMP: i64 = 10002;
/// retCode: invalid API key.
pub const CODE_API_KEY: i64 = 10003;
/// retCode: signature mismatch ("error sign!").
pub const CODE_SIGN: i64 = 10004;
/// retCode: API rate limit ("Too many visits!").
pub const CODE_RATE_LIMIT: i64 = 10006;
/// retCode: order does not exist.
pub const CODE_ORDER_NOT_FOUND: i64 = 110001;
/// retCode: available balance insufficient.
pub const CODE_INSUFFICIENT_BALANCE: i64 = 110007;
/// retCode: the order is already filled or cancelled.
pub const CODE_ORDER_FINISHED: i64 = 110008;
/// retCode: reduce-only rule not satisfied.
pub const CODE_REDUCE_ONLY: i64 = 110017;
/// retCode: leverage not modified (already set).
pub const CODE_LEVERAGE_NOT_MODIFIED: i64 = 110043;
/// retCode: duplicate `orderLinkId`.
pub const CODE_DUPLICATE_LINK_ID: i64 = 110072;

fn decode(m: impl fmt::Display) -> BybitError {
    BybitError::Decode(m.to_string())
}

/// A JSON value read as text: strings as they are, numbers in their decimal form, `null` empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txt(pub String);

impl<'de> Deserialize<'de> for Txt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Txt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number, a boolean or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Txt, E> {
                Ok(Txt(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Txt, E> {
                Ok(Txt(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Txt, E> {
                Ok(Txt(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Txt, E> {
                Ok(Txt(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Txt, E> {
                Ok(Txt(format!("{v}")))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Txt, E> {
                Ok(Txt(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Txt, E> {
                Ok(Txt(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Txt, E> {
                Ok(Txt(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Txt {
    fn s(&self) -> &str {
        self.0.trim()
    }
    /// Exact decimal; empty → `None`.
    fn dec(&self, field: &str) -> Result<Option<Fixed>, BybitError> {
        if self.s().is_empty() {
            return Ok(None);
        }
        Fixed::parse(self.s()).map(Some).map_err(|e| decode(format!("{field}: {e}")))
    }
    /// Exact decimal; empty → zero.
    fn dec0(&self, field: &str) -> Result<Fixed, BybitError> {
        Ok(self.dec(field)?.unwrap_or(Fixed::ZERO))
    }
    /// Exact decimal that can never be negative (sizes, prices, values); empty → zero.
    fn nonneg(&self, field: &str) -> Result<Fixed, BybitError> {
        let v = self.dec0(field)?;
        if v.raw() < 0 {
            return Err(decode(format!("{field}: {v} is negative")));
        }
        Ok(v)
    }
    /// Exact decimal that must be strictly positive (an execution's price and quantity).
    fn positive(&self, field: &str) -> Result<Fixed, BybitError> {
        let v = self.nonneg(field)?;
        if v.is_zero() {
            return Err(decode(format!("{field}: must be positive, got {:?}", self.0)));
        }
        Ok(v)
    }
    /// A price where `""` and `"0"` mean "none"; a negative one is refused.
    fn price(&self, field: &str) -> Result<Option<Price>, BybitError> {
        Ok(Some(self.nonneg(field)?).filter(|v| !v.is_zero()).map(Price))
    }
    /// Integer milliseconds; empty → 0.
    fn ms(&self, field: &str) -> Result<TimeMs, BybitError> {
        if self.s().is_empty() {
            return Ok(0);
        }
        self.s().parse::<i64>().map_err(|_| decode(format!("{field}: {:?} is not an integer", self.0)))
    }
    /// `true` / `false` / `1` / `0`; empty → false.
    fn flag(&self) -> bool {
        matches!(self.s(), "true" | "1")
    }
}

fn symbol(s: &Txt) -> Result<Symbol, BybitError> {
    if Symbol::is_valid(s.s()) {
        Ok(Symbol::new(s.s()))
    } else {
        Err(decode(format!("invalid symbol {:?}", s.0)))
    }
}

/// True for a symbol of a USDT perpetual, the only contracts this engine trades: upper-case
/// letters and digits ending in `USDT` (`BTCUSDT`, `1000PEPEUSDT`). The `linear` category also
/// holds USDC perpetuals (`BTCPERP`, `ETHPERP`), USDC futures (`ETH-26DEC25`) and USDT futures
/// (`BTCUSDT-26DEC25`): none of them matches. The private stream does not know the instrument
/// list, so this symbol rule (Bybit's naming of USDT perpetuals) is the universe filter there;
/// the REST queries ask `settleCoin=USDT` where Bybit supports it as well.
pub fn is_usdt_perpetual(symbol: &str) -> bool {
    Symbol::is_valid(symbol) && symbol.len() > 4 && symbol.ends_with("USDT")
}

/// Which item kind a private list or topic carries (the `topic` label of
/// `scalper_private_items_skipped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemTopic {
    /// `order` topic, `/v5/order/realtime`, `/v5/order/history`.
    Order,
    /// `execution` topic, `/v5/execution/list`.
    Execution,
    /// `position` topic, `/v5/position/list`.
    Position,
    /// `wallet` topic, `/v5/account/wallet-balance`.
    Wallet,
}

impl ItemTopic {
    /// Every topic, in label order.
    pub const ALL: [ItemTopic; 4] = [ItemTopic::Order, ItemTopic::Execution, ItemTopic::Position, ItemTopic::Wallet];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemTopic::Order => "order",
            ItemTopic::Execution => "execution",
            ItemTopic::Position => "position",
            ItemTopic::Wallet => "wallet",
        }
    }
}

/// Why an item was left out (the `reason` label of `scalper_private_items_skipped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Its `category` is not `linear` (spot, inverse, option items of the all-in-one topics).
    Category,
    /// A `linear` contract that is not a USDT perpetual (USDC perpetual or future, dated future).
    Symbol,
    /// A value Bybit never sends (negative size or price, unknown side, …): a decode error of
    /// that item alone.
    Invalid,
}

impl SkipReason {
    /// Every reason, in label order.
    pub const ALL: [SkipReason; 3] = [SkipReason::Category, SkipReason::Symbol, SkipReason::Invalid];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Category => "category",
            SkipReason::Symbol => "symbol",
            SkipReason::Invalid => "invalid",
        }
    }
}

/// An item left out of a frame or a REST list, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Item kind.
    pub topic: ItemTopic,
    /// Why.
    pub reason: SkipReason,
    /// Its symbol as sent (cut to 64 characters).
    pub symbol: String,
    /// What was wrong (the category, or the decode error).
    pub detail: String,
}

/// The items of one frame or list: the USDT-perpetual ones typed, the others set aside one by
/// one (never the whole frame for one bad item).
#[derive(Debug, Clone, PartialEq)]
pub struct Sorted<T> {
    /// Items of our universe that decoded.
    pub kept: Vec<T>,
    /// Items left out.
    pub skipped: Vec<Skipped>,
}

/// A raw private item: where it belongs and how it decodes.
pub trait RawItem {
    /// Typed form.
    type Typed;
    /// Item kind.
    const TOPIC: ItemTopic;
    /// `category` as sent (empty when the item has none: REST list items carry it on the
    /// `result`, which the request fixed to `linear`).
    fn category(&self) -> &str;
    /// `symbol` as sent (`None` for items without one: wallets).
    fn symbol_text(&self) -> Option<&str>;
    /// Exact typed value, or the decode error.
    fn typed(&self) -> Result<Self::Typed, BybitError>;
}

/// Sorts raw items: foreign category → [`SkipReason::Category`], a linear contract that is not a
/// USDT perpetual → [`SkipReason::Symbol`], a value that does not decode or is impossible →
/// [`SkipReason::Invalid`]; the rest is typed and kept, in order.
pub fn sort_items<R: RawItem>(raw: &[R]) -> Sorted<R::Typed> {
    let mut out = Sorted { kept: Vec::with_capacity(raw.len()), skipped: Vec::new() };
    for r in raw {
        let sym = r.symbol_text().unwrap_or("");
        let skip = |reason, detail: String| Skipped {
            topic: R::TOPIC,
            reason,
            symbol: sym.chars().take(64).collect(),
            detail: detail.chars().take(200).collect(),
        };
        let category = r.category().trim();
        if !category.is_empty() && category != "linear" {
            out.skipped.push(skip(SkipReason::Category, format!("category {category:?}")));
            continue;
        }
        if r.symbol_text().is_some_and(|s| !is_usdt_perpetual(s.trim())) {
            out.skipped.push(skip(SkipReason::Symbol, "not a USDT perpetual".into()));
            continue;
        }
        match r.typed() {
            Ok(t) => out.kept.push(t),
            Err(e) => out.skipped.push(skip(SkipReason::Invalid, e.to_string())),
        }
    }
    out
}

fn side(s: &Txt, field: &str) -> Result<Side, BybitError> {
    Side::from_bybit(s.s()).ok_or_else(|| decode(format!("{field}: {:?} is not Buy/Sell", s.0)))
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// Bybit `orderStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Accepted by the system, not yet in the matching engine.
    Created,
    /// Resting in the book.
    New,
    /// Rejected.
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
    /// Symbol.
    pub symbol: Symbol,
    /// Venue order id.
    pub order_id: String,
    /// Client order id (`orderLinkId`).
    pub order_link_id: String,
    /// Side.
    pub side: Side,
    /// `Limit` or `Market`.
    pub order_type: String,
    /// Limit price (`None` for market orders).
    pub price: Option<Price>,
    /// Order quantity.
    pub qty: Qty,
    /// `GTC`, `IOC`, `FOK`, `PostOnly`.
    pub time_in_force: String,
    /// Status.
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
    /// Reduce-only.
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

// ---------------------------------------------------------------------------------------------
// Executions
// ---------------------------------------------------------------------------------------------

/// One execution (REST `/v5/execution/list`, WS `execution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueExecution {
    /// Symbol.
    pub symbol: Symbol,
    /// Venue order id.
    pub order_id: String,
    /// Client order id.
    pub order_link_id: String,
    /// Execution id (unique per venue).
    pub exec_id: String,
    /// Order side.
    pub side: Side,
    /// Execution price.
    pub exec_price: Price,
    /// Executed quantity.
    pub exec_qty: Qty,
    /// Executed value (`execPrice × execQty`).
    pub exec_value: Money,
    /// Fee charged (negative = rebate).
    pub exec_fee: Money,
    /// Fee rate applied.
    pub fee_rate: Fixed,
    /// Maker (`true`) or taker.
    pub is_maker: bool,
    /// `Trade`, `Funding`, `BustTrade`, `AdlTrade`, `Settle`, …
    pub exec_type: String,
    /// Execution time, ms.
    pub exec_time_ms: TimeMs,
    /// Position quantity closed by this execution.
    pub closed_size: Qty,
    /// Realised PnL of the closing part, fees excluded (`execPnl`; absent in some payloads).
    pub exec_pnl: Option<Money>,
    /// `Limit` / `Market`.
    pub order_type: String,
    /// Stop order type of the order, if conditional.
    pub stop_order_type: String,
    /// Cross sequence.
    pub seq: i64,
}

/// Raw execution object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawExecution {
    category: Txt,
    symbol: Txt,
    order_id: Txt,
    order_link_id: Txt,
    exec_id: Txt,
    side: Txt,
    exec_price: Txt,
    exec_qty: Txt,
    exec_value: Txt,
    exec_fee: Txt,
    fee_rate: Txt,
    is_maker: Txt,
    exec_type: Txt,
    exec_time: Txt,
    closed_size: Txt,
    exec_pnl: Txt,
    order_type: Txt,
    stop_order_type: Txt,
    seq: Txt,
}

/// `execType`s of a fill of one of our orders (trade, bust, ADL; `""` in older messages), as
/// opposed to funding, settlement and delivery entries.
fn is_fill_exec_type(exec_type: &str) -> bool {
    matches!(exec_type, "Trade" | "BustTrade" | "AdlTrade" | "")
}

impl RawExecution {
    /// Exact typed execution.
    pub fn typed(&self) -> Result<VenueExecution, BybitError> {
        if self.exec_id.s().is_empty() {
            return Err(decode("execution without execId"));
        }
        // A fill always has a price and a size; other executions (funding, settlement) are
        // only held to "never negative".
        let is_trade = is_fill_exec_type(self.exec_type.s());
        Ok(VenueExecution {
            symbol: symbol(&self.symbol)?,
            order_id: self.order_id.0.clone(),
            order_link_id: self.order_link_id.0.clone(),
            exec_id: self.exec_id.0.clone(),
            side: side(&self.side, "side")?,
            exec_price: Price(if is_trade {
                self.exec_price.positive("execPrice")?
            } else {
                self.exec_price.nonneg("execPrice")?
            }),
            exec_qty: Qty(if is_trade {
                self.exec_qty.positive("execQty")?
            } else {
                self.exec_qty.nonneg("execQty")?
            }),
            exec_value: self.exec_value.nonneg("execValue")?,
            exec_fee: self.exec_fee.dec0("execFee")?,
            fee_rate: self.fee_rate.dec0("feeRate")?,
            is_maker: self.is_maker.flag(),
            exec_type: self.exec_type.0.clone(),
            exec_time_ms: self.exec_time.ms("execTime")?,
            closed_size: Qty(self.closed_size.nonneg("closedSize")?),
            exec_pnl: self.exec_pnl.dec("execPnl")?,
            order_type: self.order_type.0.clone(),
            stop_order_type: self.stop_order_type.0.clone(),
            seq: self.seq.ms("seq")?,
        })
    }
}

impl RawItem for RawExecution {
    type Typed = VenueExecution;
    const TOPIC: ItemTopic = ItemTopic::Execution;
    fn category(&self) -> &str {
        self.category.s()
    }
    fn symbol_text(&self) -> Option<&str> {
        Some(self.symbol.s())
    }
    fn typed(&self) -> Result<VenueExecution, BybitError> {
        RawExecution::typed(self)
    }
}

impl VenueExecution {
    /// True for a trade of one of our orders (not funding, settlement, …).
    pub fn is_trade(&self) -> bool {
        is_fill_exec_type(&self.exec_type)
    }

    /// The core's [`Fill`]. `reduce_only` comes from the order (executions do not carry it).
    pub fn to_fill(&self, reduce_only: bool) -> Fill {
        Fill {
            symbol: self.symbol.clone(),
            order_id: self.order_id.clone(),
            client_id: self.order_link_id.clone(),
            exec_id: self.exec_id.clone(),
            side: self.side,
            price: self.exec_price,
            qty: self.exec_qty,
            fee: self.exec_fee,
            liquidity: if self.is_maker { Liquidity::Maker } else { Liquidity::Taker },
            reduce_only,
            ts_ms: self.exec_time_ms,
            // Only a closing execution books PnL; an opening one says "0".
            venue_pnl: if self.closed_size.raw() > 0 { self.exec_pnl } else { None },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Positions and wallet
// ---------------------------------------------------------------------------------------------

/// A position (REST `/v5/position/list`, WS `position`), one-way mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenuePosition {
    /// Symbol.
    pub symbol: Symbol,
    /// `Some(Buy)` long, `Some(Sell)` short, `None` flat (Bybit sends `""` / `"None"`).
    pub side: Option<Side>,
    /// Size (0 when flat).
    pub size: Qty,
    /// Average entry price (REST `avgPrice`, WS `entryPrice`).
    pub avg_price: Option<Price>,
    /// Position leverage; `None` when Bybit sends `""` or `"0"` (no leverage is meaningful
    /// then, and the position itself must not be lost over an informational field).
    pub leverage: Option<Fixed>,
    /// Mark price.
    pub mark_price: Option<Price>,
    /// Unrealised PnL.
    pub unrealised_pnl: Money,
    /// Realised PnL of the current position (fees included, Bybit's definition).
    pub cur_realised_pnl: Money,
    /// Cumulative realised PnL.
    pub cum_realised_pnl: Money,
    /// Take-profit price set on the position.
    pub take_profit: Option<Price>,
    /// Stop-loss price set on the position.
    pub stop_loss: Option<Price>,
    /// 0 one-way, 1 / 2 hedge mode.
    pub position_idx: i64,
    /// Last update time, ms.
    pub updated_ms: TimeMs,
    /// Cross sequence of the last change.
    pub seq: i64,
}

/// Raw position object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawPosition {
    category: Txt,
    symbol: Txt,
    side: Txt,
    size: Txt,
    avg_price: Txt,
    entry_price: Txt,
    leverage: Txt,
    mark_price: Txt,
    unrealised_pnl: Txt,
    cur_realised_pnl: Txt,
    cum_realised_pnl: Txt,
    take_profit: Txt,
    stop_loss: Txt,
    position_idx: Txt,
    updated_time: Txt,
    seq: Txt,
}

impl RawPosition {
    /// Exact typed position.
    pub fn typed(&self) -> Result<VenuePosition, BybitError> {
        let size = Qty(self.size.nonneg("size")?);
        let side = match self.side.s() {
            "" | "None" => None,
            s => Some(Side::from_bybit(s).ok_or_else(|| decode(format!("side: {s:?}")))?),
        };
        if side.is_none() && !size.is_zero() {
            // Would read as flat while the venue holds `size`.
            return Err(decode(format!("position of size {size} without a side")));
        }
        let (avg, avg_field) = if self.avg_price.s().is_empty() {
            (&self.entry_price, "entryPrice")
        } else {
            (&self.avg_price, "avgPrice")
        };
        Ok(VenuePosition {
            symbol: symbol(&self.symbol)?,
            side: if size.is_zero() { None } else { side },
            size,
            avg_price: avg.price(avg_field)?,
            leverage: Some(self.leverage.nonneg("leverage")?).filter(|l| l.raw() > 0 && !self.leverage.s().is_empty()),
            mark_price: self.mark_price.price("markPrice")?,
            unrealised_pnl: self.unrealised_pnl.dec0("unrealisedPnl")?,
            cur_realised_pnl: self.cur_realised_pnl.dec0("curRealisedPnl")?,
            cum_realised_pnl: self.cum_realised_pnl.dec0("cumRealisedPnl")?,
            take_profit: self.take_profit.price("takeProfit")?,
            stop_loss: self.stop_loss.price("stopLoss")?,
            position_idx: self.position_idx.ms("positionIdx")?,
            updated_ms: self.updated_time.ms("updatedTime")?,
            seq: self.seq.ms("seq")?,
        })
    }
}

impl RawItem for RawPosition {
    type Typed = VenuePosition;
    const TOPIC: ItemTopic = ItemTopic::Position;
    fn category(&self) -> &str {
        self.category.s()
    }
    fn symbol_text(&self) -> Option<&str> {
        Some(self.symbol.s())
    }
    fn typed(&self) -> Result<VenuePosition, BybitError> {
        RawPosition::typed(self)
    }
}

impl RawItem for RawWallet {
    type Typed = WalletBalance;
    const TOPIC: ItemTopic = ItemTopic::Wallet;
    fn category(&self) -> &str {
        ""
    }
    fn symbol_text(&self) -> Option<&str> {
        None
    }
    fn typed(&self) -> Result<WalletBalance, BybitError> {
        RawWallet::typed(self)
    }
}

impl VenuePosition {
    /// As a position snapshot for integrity checks (`None` when flat).
    pub fn to_snapshot(&self) -> Option<PositionSnapshot> {
        match self.side {
            Some(side) if !self.size.is_zero() => {
                Some(PositionSnapshot { symbol: self.symbol.clone(), side, qty: self.size })
            }
            _ => None,
        }
    }
}

/// One coin of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinBalance {
    /// Coin, e.g. `USDT`.
    pub coin: String,
    /// Wallet balance (deposits + realised PnL − fees).
    pub wallet_balance: Money,
    /// Equity (wallet balance + unrealised PnL).
    pub equity: Money,
    /// Unrealised PnL.
    pub unrealised_pnl: Money,
    /// Cumulative realised PnL.
    pub cum_realised_pnl: Money,
    /// Initial margin of positions.
    pub total_position_im: Money,
    /// Initial margin of open orders.
    pub total_order_im: Money,
}

/// A wallet (REST `/v5/account/wallet-balance`, WS `wallet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalance {
    /// `UNIFIED`.
    pub account_type: String,
    /// Total equity in USD.
    pub total_equity: Money,
    /// Total wallet balance in USD.
    pub total_wallet_balance: Money,
    /// Available balance in USD.
    pub total_available_balance: Money,
    /// Unrealised PnL of perpetuals in USD.
    pub total_perp_upl: Money,
    /// Coins.
    pub coins: Vec<CoinBalance>,
    /// A Unified Trading Account (`accountType` `UNIFIED` with a `totalEquity`). A classic
    /// account (`CONTRACT`, `SPOT`) sends `totalEquity: ""`, which must never be read as an
    /// equity of 0: see [`WalletBalance::not_unified_reason`].
    #[serde(default)]
    pub unified: bool,
}

impl WalletBalance {
    /// Why this wallet cannot be traded by the engine (`None` for a unified account). The USD
    /// totals the engine books against exist only on a Unified Trading Account.
    pub fn not_unified_reason(&self) -> Option<String> {
        (!self.unified).then(|| {
            format!(
                "the Bybit account is not a Unified Trading Account (accountType {:?}, no totalEquity); \
                 LIVE needs a unified account: upgrade it on Bybit or use another API key",
                self.account_type
            )
        })
    }

    /// The entry of `coin`, if any.
    pub fn coin(&self, coin: &str) -> Option<&CoinBalance> {
        self.coins.iter().find(|c| c.coin == coin)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawCoin {
    coin: Txt,
    wallet_balance: Txt,
    equity: Txt,
    unrealised_pnl: Txt,
    cum_realised_pnl: Txt,
    #[serde(rename = "totalPositionIM")]
    total_position_im: Txt,
    #[serde(rename = "totalOrderIM")]
    total_order_im: Txt,
}

/// Raw wallet object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawWallet {
    account_type: Txt,
    total_equity: Txt,
    total_wallet_balance: Txt,
    total_available_balance: Txt,
    #[serde(rename = "totalPerpUPL")]
    total_perp_upl: Txt,
    coin: Vec<RawCoin>,
}

impl RawWallet {
    /// Exact typed wallet.
    pub fn typed(&self) -> Result<WalletBalance, BybitError> {
        let coins = self
            .coin
            .iter()
            .map(|c| {
                Ok(CoinBalance {
                    coin: c.coin.0.clone(),
                    wallet_balance: c.wallet_balance.dec0("walletBalance")?,
                    equity: c.equity.dec0("equity")?,
                    unrealised_pnl: c.unrealised_pnl.dec0("unrealisedPnl")?,
                    cum_realised_pnl: c.cum_realised_pnl.dec0("cumRealisedPnl")?,
                    total_position_im: c.total_position_im.dec0("totalPositionIM")?,
                    total_order_im: c.total_order_im.dec0("totalOrderIM")?,
                })
            })
            .collect::<Result<Vec<_>, BybitError>>()?;
        let unified = self.account_type.s().eq_ignore_ascii_case("UNIFIED") && !self.total_equity.s().is_empty();
        Ok(WalletBalance {
            unified,
            account_type: self.account_type.0.clone(),
            total_equity: self.total_equity.dec0("totalEquity")?,
            total_wallet_balance: self.total_wallet_balance.dec0("totalWalletBalance")?,
            total_available_balance: self.total_available_balance.dec0("totalAvailableBalance")?,
            total_perp_upl: self.total_perp_upl.dec0("totalPerpUPL")?,
            coins,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// REST results
// ---------------------------------------------------------------------------------------------

/// A paginated `result`: `{category, list, nextPageCursor}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// Entries.
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
    /// Symbol.
    pub symbol: String,
    /// `Buy` / `Sell`.
    pub side: &'static str,
    /// `Limit` / `Market`.
    pub order_type: &'static str,
    /// Quantity.
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
    /// Reduce-only.
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
    /// Symbol.
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
    /// Symbol.
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
    /// Symbol.
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
    /// Symbol.
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
    /// Symbol.
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

// ---------------------------------------------------------------------------------------------
// Private WebSocket
// ---------------------------------------------------------------------------------------------

/// Private topics this client subscribes to: the `linear` ones (the all-in-one `order`,
/// `execution`, `position` also carry spot, inverse and option items); `wallet` has no
/// category form.
pub const PRIVATE_TOPICS: [&str; 4] = ["order.linear", "execution.linear", "position.linear", "wallet"];

/// `{id, topic, creationTime, data: [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrivateTopicFrame<D> {
    #[serde(default)]
    creation_time: Option<i64>,
    data: Vec<D>,
}

/// A parsed private WebSocket frame. Topic frames carry the items of our universe that decoded
/// and, apart, the ones left out ([`Skipped`]): one foreign or bad item never costs the others.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivateFrame {
    /// Answer to `auth`, `subscribe` or `ping` (pongs have `op == "pong"`).
    Op(OpResponse),
    /// `order` topic.
    Orders {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        /// Orders.
        orders: Vec<VenueOrder>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// `execution` topic.
    Executions {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        /// Executions.
        executions: Vec<VenueExecution>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// `position` topic.
    Positions {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        /// Positions.
        positions: Vec<VenuePosition>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// `wallet` topic.
    Wallet {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        /// Wallets.
        wallets: Vec<WalletBalance>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// A topic this client does not handle.
    Unhandled(String),
}

impl PrivateFrame {
    /// Items left out of a topic frame (empty for ops and unhandled topics).
    pub fn skipped(&self) -> &[Skipped] {
        match self {
            PrivateFrame::Orders { skipped, .. }
            | PrivateFrame::Executions { skipped, .. }
            | PrivateFrame::Positions { skipped, .. }
            | PrivateFrame::Wallet { skipped, .. } => skipped,
            PrivateFrame::Op(_) | PrivateFrame::Unhandled(_) => &[],
        }
    }
}

/// `{topic, creationTime, data: [...]}` with the items left raw.
fn topic_items<R: RawItem + de::DeserializeOwned>(
    v: serde_json::Value,
) -> Result<(Option<TimeMs>, Sorted<R::Typed>), BybitError> {
    let f: PrivateTopicFrame<serde_json::Value> = serde_json::from_value(v).map_err(decode)?;
    let mut raw = Vec::with_capacity(f.data.len());
    let mut shapeless = Vec::new();
    for item in f.data {
        let sym = item.get("symbol").and_then(|s| s.as_str()).unwrap_or("").chars().take(64).collect::<String>();
        match serde_json::from_value::<R>(item) {
            Ok(r) => raw.push(r),
            Err(e) => shapeless.push(Skipped {
                topic: R::TOPIC,
                reason: SkipReason::Invalid,
                symbol: sym,
                detail: e.to_string().chars().take(200).collect(),
            }),
        }
    }
    let mut sorted = sort_items(&raw);
    sorted.skipped.extend(shapeless);
    Ok((f.creation_time, sorted))
}

/// Parses one private WebSocket text frame. The topic may be all-in-one (`order`) or
/// categorised (`order.linear`): either way every item's `category` and symbol are checked.
pub fn parse_private_frame(text: &str) -> Result<PrivateFrame, BybitError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(decode)?;
    let topic = match v.get("topic").and_then(|t| t.as_str()) {
        Some(t) => t.to_string(),
        None => {
            if v.get("op").is_some() {
                return serde_json::from_value(v).map(PrivateFrame::Op).map_err(decode);
            }
            return Err(decode("frame has neither topic nor op"));
        }
    };
    match topic.split('.').next().unwrap_or("") {
        "order" => {
            let (ts_ms, s) = topic_items::<RawOrder>(v)?;
            Ok(PrivateFrame::Orders { ts_ms, orders: s.kept, skipped: s.skipped })
        }
        "execution" => {
            let (ts_ms, s) = topic_items::<RawExecution>(v)?;
            Ok(PrivateFrame::Executions { ts_ms, executions: s.kept, skipped: s.skipped })
        }
        "position" => {
            let (ts_ms, s) = topic_items::<RawPosition>(v)?;
            Ok(PrivateFrame::Positions { ts_ms, positions: s.kept, skipped: s.skipped })
        }
        "wallet" => {
            let (ts_ms, s) = topic_items::<RawWallet>(v)?;
            Ok(PrivateFrame::Wallet { ts_ms, wallets: s.kept, skipped: s.skipped })
        }
        _ => Ok(PrivateFrame::Unhandled(f_topic(&topic))),
    }
}

fn f_topic(t: &str) -> String {
    t.chars().take(64).collect()
}

/// Positions and working orders of a reconciliation as an integrity snapshot.
pub fn venue_snapshot(orders: &[VenueOrder], positions: &[VenuePosition]) -> VenueSnapshot {
    VenueSnapshot {
        positions: positions.iter().filter_map(VenuePosition::to_snapshot).collect(),
        orders: orders.iter().filter(|o| o.status.is_open()).map(VenueOrder::to_snapshot).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: OrderKind, side: Side, reduce_only: bool) -> OrderRequest {
        OrderRequest {
            client_id: "e-BTCUSDT-7".into(),
            symbol: Symbol::new("BTCUSDT"),
            side,
            kind,
            qty: Qty::parse("0.010").unwrap(),
            reduce_only,
        }
    }

    #[test]
    fn order_bodies_follow_bybit_shapes() {
        let p = Price::parse("65000.50").unwrap();
        let b = CreateOrderBody::from_request(&req(
            OrderKind::Limit { price: p, tif: TimeInForce::PostOnly },
            Side::Buy,
            false,
        ))
        .unwrap();
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"65000.5","timeInForce":"PostOnly","positionIdx":0,"orderLinkId":"e-BTCUSDT-7","reduceOnly":false}"#
        );
        let m = CreateOrderBody::from_request(&req(OrderKind::Market, Side::Sell, true)).unwrap();
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"0.01","positionIdx":0,"orderLinkId":"e-BTCUSDT-7","reduceOnly":true}"#
        );
        let s = CreateOrderBody::from_request(&req(OrderKind::StopMarket { trigger: p }, Side::Sell, true)).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["orderType"], "Market");
        assert_eq!(v["triggerPrice"], "65000.5");
        assert_eq!(v["triggerDirection"], 2);
        assert_eq!(v["triggerBy"], "LastPrice");
        assert!(v.get("timeInForce").is_none() && v.get("price").is_none());
        let buy_stop =
            CreateOrderBody::from_request(&req(OrderKind::StopMarket { trigger: p }, Side::Buy, true)).unwrap();
        assert_eq!(buy_stop.trigger_direction, Some(1));
        let ioc =
            CreateOrderBody::from_request(&req(OrderKind::Limit { price: p, tif: TimeInForce::Ioc }, Side::Buy, false));
        assert_eq!(ioc.unwrap().time_in_force, Some("IOC"));
    }

    #[test]
    fn order_link_ids_are_validated() {
        assert!(validate_order_link_id("e-SIM001USDT-12_a").is_ok());
        assert!(validate_order_link_id("").is_err());
        assert!(validate_order_link_id(&"x".repeat(37)).is_err());
        assert!(validate_order_link_id("a b").is_err());
        let mut r = req(OrderKind::Market, Side::Buy, false);
        r.client_id = "bad id".into();
        assert!(CreateOrderBody::from_request(&r).is_err());
        r.client_id = "ok".into();
        r.qty = Qty::ZERO;
        assert!(CreateOrderBody::from_request(&r).is_err());
    }

    #[test]
    fn order_objects_parse_exactly_and_map_to_kinds() {
        let raw: RawOrder = serde_json::from_str(
            r#"{"symbol":"BTCUSDT","orderId":"o1","orderLinkId":"l1","side":"Sell","orderType":"Market","price":"0",
                "qty":"0.010","timeInForce":"IOC","orderStatus":"Untriggered","leavesQty":"0.010","cumExecQty":"0",
                "cumExecValue":"0","cumExecFee":"0","avgPrice":"","triggerPrice":"64000.1","triggerDirection":2,
                "stopOrderType":"Stop","reduceOnly":true,"rejectReason":"EC_NoError","createdTime":"1700000000001",
                "updatedTime":"1700000000002"}"#,
        )
        .unwrap();
        let o = raw.typed().unwrap();
        assert_eq!(o.kind(), OrderKind::StopMarket { trigger: Price::parse("64000.1").unwrap() });
        assert!(o.status.is_open() && o.reduce_only);
        assert_eq!((o.price, o.avg_price, o.trigger_direction), (None, None, 2));
        assert_eq!(o.to_snapshot().remaining, Qty::parse("0.01").unwrap());
        let bad: RawOrder = serde_json::from_str(r#"{"symbol":"BTCUSDT","side":"Up","qty":"1"}"#).unwrap();
        assert!(matches!(bad.typed(), Err(BybitError::Decode(_))));
        let bad_qty: RawOrder = serde_json::from_str(r#"{"symbol":"BTCUSDT","side":"Buy","qty":"1.2.3"}"#).unwrap();
        assert!(bad_qty.typed().is_err());
        let zero: RawOrder = serde_json::from_str(
            r#"{"symbol":"BTCUSDT","side":"Buy","qty":"0","stopOrderType":"UNKNOWN","orderType":"Limit","price":"1"}"#,
        )
        .unwrap();
        assert!(zero.typed().is_err(), "an ordinary order of size 0 is impossible");
        let full_tp: RawOrder = serde_json::from_str(
            r#"{"symbol":"BTCUSDT","side":"Sell","qty":"0","stopOrderType":"TakeProfit","orderType":"Market","triggerPrice":"70000"}"#,
        )
        .unwrap();
        assert_eq!(full_tp.typed().unwrap().qty, Qty::ZERO, "a Full-mode position TP has size 0");
    }

    #[test]
    fn positions_treat_empty_side_as_flat() {
        let raw: RawPosition =
            serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"","size":"0","avgPrice":"0","positionIdx":0}"#)
                .unwrap();
        let p = raw.typed().unwrap();
        assert_eq!((p.side, p.size, p.avg_price), (None, Qty::ZERO, None));
        assert!(p.to_snapshot().is_none());
        let ws: RawPosition =
            serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"Sell","size":"2.5","entryPrice":"3000.25"}"#).unwrap();
        let p = ws.typed().unwrap();
        assert_eq!(p.avg_price, Some(Price::parse("3000.25").unwrap()));
        assert_eq!(p.to_snapshot().unwrap().side, Side::Sell);
    }

    #[test]
    fn a_zero_or_empty_leverage_is_unknown_but_keeps_the_position() {
        for lev in ["0", "0.0", ""] {
            let raw: RawPosition = serde_json::from_str(&format!(
                r#"{{"symbol":"ETHUSDT","side":"Buy","size":"1.5","entryPrice":"3000","leverage":"{lev}"}}"#
            ))
            .unwrap();
            let p = raw.typed().unwrap();
            assert_eq!((p.leverage, p.size), (None, Qty::parse("1.5").unwrap()), "leverage {lev:?}");
        }
        let raw: RawPosition =
            serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"Buy","size":"1","leverage":"-2"}"#).unwrap();
        assert!(raw.typed().is_err(), "a negative leverage is impossible");
        let raw: RawPosition =
            serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"Buy","size":"1","leverage":"10"}"#).unwrap();
        assert_eq!(raw.typed().unwrap().leverage.map(|l| l.to_string()), Some("10".to_string()));
    }

    #[test]
    fn only_usdt_perpetual_symbols_are_ours() {
        for ours in ["BTCUSDT", "1000PEPEUSDT", "XRPUSDT"] {
            assert!(is_usdt_perpetual(ours), "{ours}");
        }
        for foreign in ["BTCPERP", "ETHPERP", "ETH-26DEC25", "BTCUSDT-26DEC25", "USDT", "ETHUSDC", "btcusdt", ""] {
            assert!(!is_usdt_perpetual(foreign), "{foreign}");
        }
    }

    #[test]
    fn a_foreign_item_costs_only_itself() {
        let frame = r#"{"topic":"execution","creationTime":7,"data":[
            {"category":"option","symbol":"ETH-30DEC22-1400-C","execId":"o","side":"Sell","execPrice":"72.5","execQty":"1"},
            {"category":"linear","symbol":"BTCUSDT","execId":"a","side":"Buy","execPrice":"65000","execQty":"0.01"},
            {"category":"spot","symbol":"BTCUSDT","execId":"s","side":"Buy","execPrice":"65000","execQty":"0.01"},
            {"category":"linear","symbol":"ETH-26DEC25","execId":"f","side":"Buy","execPrice":"3000","execQty":"1"},
            {"category":"linear","symbol":"ETHUSDT","execId":"b","side":"Sell","execPrice":"3000","execQty":"-1"},
            {"category":"linear","symbol":"ETHUSDT","execId":"c","side":"Sell","execPrice":"3000","execQty":"2"}]}"#;
        let PrivateFrame::Executions { ts_ms, executions, skipped } = parse_private_frame(frame).unwrap() else {
            panic!("executions expected")
        };
        assert_eq!(ts_ms, Some(7));
        let ids: Vec<&str> = executions.iter().map(|x| x.exec_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "c"], "ours kept, in order");
        let why: Vec<(SkipReason, &str)> = skipped.iter().map(|s| (s.reason, s.symbol.as_str())).collect();
        assert_eq!(
            why,
            vec![
                (SkipReason::Category, "ETH-30DEC22-1400-C"),
                (SkipReason::Category, "BTCUSDT"),
                (SkipReason::Symbol, "ETH-26DEC25"),
                (SkipReason::Invalid, "ETHUSDT"),
            ]
        );
        assert!(skipped.iter().all(|s| s.topic == ItemTopic::Execution));
        // An item that is not even an object is refused alone too.
        let odd =
            r#"{"topic":"order.linear","data":[42,{"category":"linear","symbol":"BTCUSDT","side":"Buy","qty":"1"}]}"#;
        let f = parse_private_frame(odd).unwrap();
        assert!(matches!(&f, PrivateFrame::Orders { orders, .. } if orders.len() == 1), "{f:?}");
        assert_eq!(f.skipped().len(), 1);
    }

    #[test]
    fn frames_are_classified() {
        let pong = r#"{"req_id":"p1","op":"pong","args":["1675418560633"],"conn_id":"c1"}"#;
        match parse_private_frame(pong).unwrap() {
            PrivateFrame::Op(op) => assert!(op.is_pong() && op.req_id == "p1"),
            other => panic!("{other:?}"),
        }
        let auth = r#"{"success":false,"ret_msg":"Request not authorized","op":"auth","conn_id":"c"}"#;
        assert!(matches!(parse_private_frame(auth).unwrap(), PrivateFrame::Op(o) if !o.is_success()));
        assert!(matches!(parse_private_frame("{}"), Err(BybitError::Decode(_))));
        assert!(matches!(parse_private_frame("not json"), Err(BybitError::Decode(_))));
        let other = r#"{"topic":"greeks","creationTime":1,"data":[]}"#;
        assert_eq!(parse_private_frame(other).unwrap(), PrivateFrame::Unhandled("greeks".into()));
    }
}
