//! Bybit v5 private wire formats: request bodies built from the core's
//! [`OrderRequest`](scalper_core::execution::order::OrderRequest)s, the
//! `result` shapes of the private REST endpoints, the private WebSocket topics (`order`,
//! `execution`, `position`, `wallet`) and exact conversions into typed values.
//!
//! Every number Bybit sends as a string is parsed exactly
//! ([`Fixed`](scalper_core::domain::Fixed)); an empty string is "absent". Malformed values are a
//! [`BybitError::Decode`], never a panic. Scalars are read as [`Txt`] (the crate's shared `wire`
//! readers).
//!
//! One child module per item kind (`order`, `execution`, `account` for positions and wallets),
//! `items` for sorting raw items into ours and skipped, `rest` for REST results and request
//! bodies, `stream` for private WS frames; everything is re-exported here under its old path.

mod account;
mod execution;
mod items;
mod order;
mod rest;
mod stream;
#[cfg(test)]
mod tests;

pub use crate::wire::Txt;
pub use account::{CoinBalance, RawPosition, RawWallet, VenuePosition, WalletBalance};
pub use execution::{RawExecution, VenueExecution};
pub use items::{sort_items, ItemTopic, RawItem, SkipReason, Skipped, Sorted};
pub use order::{is_position_tpsl, OrderStatus, RawOrder, VenueOrder};
pub use rest::{
    validate_order_link_id, AmendOrderBody, CancelAllBody, CancelAllResult, CancelOrderBody, CreateOrderBody, OrderAck,
    Page, SetLeverageBody, TradingStopBody, WalletResult,
};
pub use stream::{parse_private_frame, PrivateFrame, PRIVATE_TOPICS};

use crate::error::BybitError;
use crate::wire::decode_err;
use scalper_core::domain::{Side, Symbol};
use scalper_core::execution::integrity::VenueSnapshot;

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

/// A symbol as Bybit spells it; an invalid one is a decode error.
fn symbol(s: &Txt) -> Result<Symbol, BybitError> {
    if Symbol::is_valid(s.s()) {
        Ok(Symbol::new(s.s()))
    } else {
        Err(decode_err(format!("invalid symbol {:?}", s.0)))
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

/// `"Buy"` / `"Sell"` of field `field`; anything else is a decode error naming the field.
fn side(s: &Txt, field: &str) -> Result<Side, BybitError> {
    Side::from_bybit(s.s()).ok_or_else(|| decode_err(format!("{field}: {:?} is not Buy/Sell", s.0)))
}

/// Positions and working orders of a reconciliation as an integrity snapshot.
pub fn venue_snapshot(orders: &[VenueOrder], positions: &[VenuePosition]) -> VenueSnapshot {
    VenueSnapshot {
        positions: positions.iter().filter_map(VenuePosition::to_snapshot).collect(),
        orders: orders.iter().filter(|o| o.status.is_open()).map(VenueOrder::to_snapshot).collect(),
    }
}
