//! Executions (`execution` topic, `/v5/execution/list`): the raw item, its exact typed form and
//! the core [`Fill`] a trade execution becomes.

use super::items::{ItemTopic, RawItem};
use super::{side, symbol};
use crate::error::BybitError;
use crate::wire::{decode_err, Txt};
use scalper_core::domain::{Fixed, Price, Qty, Side, Symbol, TimeMs};
use scalper_core::execution::order::{Fill, Liquidity};
use scalper_core::risk::money::Money;
use serde::{Deserialize, Serialize};

/// One execution (REST `/v5/execution/list`, WS `execution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueExecution {
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
            return Err(decode_err("execution without execId"));
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
