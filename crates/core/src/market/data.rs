//! Venue-agnostic market data as it enters the core: instruments, book updates, trades, tickers,
//! liquidations. Connectors parse exchange frames into these types.

use crate::domain::{Price, Qty, Side, Symbol, TimeMs};
use serde::{Deserialize, Serialize};

/// Trading status of an instrument (Bybit's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstrumentStatus {
    /// Not yet trading (`PreLaunch`): kept as upcoming.
    PreLaunch,
    Trading,
    /// `Delivering`, `Closed` or anything else: not tradeable.
    Closed,
}

/// One tradeable contract with its exact trading rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    /// Symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// Trading status.
    pub status: InstrumentStatus,
    /// Minimum price increment.
    pub tick_size: Price,
    /// Quantity increment.
    pub qty_step: Qty,
    /// Minimum order quantity.
    pub min_qty: Qty,
    /// Maximum order quantity (limit orders).
    pub max_qty: Qty,
    /// Minimum order notional in USDT (0 when the venue gives none).
    pub min_notional: Price,
    /// Maximum leverage allowed by the venue.
    pub max_leverage: Price,
    /// Launch time, ms since epoch.
    pub launch_time_ms: TimeMs,
}

/// One candle of Bybit's `/v5/market/kline` (an entry of `result.list`:
/// `[startTime, open, high, low, close, volume, turnover]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kline {
    /// Start of the interval, ms since epoch.
    pub start_ms: TimeMs,
    pub open: Price,
    /// Highest price.
    pub high: Price,
    /// Lowest price.
    pub low: Price,
    /// Close (last) price.
    pub close: Price,
    /// Traded size, base units.
    pub volume: Qty,
    /// Traded value, USDT, as exact fixed-point.
    pub turnover: Price,
}

/// A symbol's recent history, fetched at start to seed its baselines without a live warm-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KlineHistory {
    pub symbol: Symbol,
    /// Candle length, minutes (1 for the baseline seed).
    pub interval_min: u32,
    /// Candles, oldest first; the still-open newest interval excluded.
    pub klines: Vec<Kline>,
}

/// One price level: price and total size at that price. A size of zero deletes the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// Level price.
    pub price: Price,
    /// Total size resting at the price (0 = delete).
    pub qty: Qty,
}

/// Whether a book update replaces the book or amends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookAction {
    /// Replace the whole book.
    Snapshot,
    /// Apply levels on top of the current book.
    Delta,
}

/// An order-book update (Bybit `orderbook.{depth}.{symbol}` or a REST snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookUpdate {
    pub symbol: Symbol,
    /// Snapshot or delta.
    pub action: BookAction,
    /// Subscribed depth (1, 50, 200, 500…).
    pub depth: u16,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    /// Update id `u`: strictly increasing per symbol and depth; `1` on a snapshot means the
    /// exchange's book service restarted.
    pub update_id: u64,
    /// Cross sequence `seq` (comparable across depths).
    pub seq: u64,
    /// Matching-engine time of the update (`cts`) when known.
    pub cts_ms: Option<TimeMs>,
}

/// One public trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Fill time, ms.
    pub ts_ms: TimeMs,
    pub price: Price,
    pub qty: Qty,
    /// Side of the taker (aggressor).
    pub aggressor: Side,
    /// Exchange trade id.
    pub id: String,
    /// Block trade flag.
    pub block_trade: bool,
    /// Bybit's `RPI` flag: the maker was a Retail Price Improvement order, which is never shown
    /// in the public order book. The taker is real (volume, rate and aggressor flow count it),
    /// but the liquidity it hit was invisible, so it is no evidence about visible walls (see
    /// [`crate::features::flow`]). Absent in older recordings: reads as `false`.
    #[serde(default)]
    pub rpi: bool,
}

/// A batch of public trades for one symbol (one `publicTrade` frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeBatch {
    pub symbol: Symbol,
    /// Trades in exchange order.
    pub trades: Vec<Trade>,
}

/// Ticker fields; every field is optional because WS deltas carry only what changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TickerUpdate {
    pub symbol: Symbol,
    /// Last traded price.
    pub last_price: Option<Price>,
    pub mark_price: Option<Price>,
    pub index_price: Option<Price>,
    /// Best bid.
    pub bid1_price: Option<Price>,
    /// Best ask.
    pub ask1_price: Option<Price>,
    /// 24 h price change as a fraction (0.01 = +1 %).
    pub price_24h_pcnt: Option<f64>,
    /// 24 h turnover in USDT.
    pub turnover_24h: Option<f64>,
    /// 24 h volume in base coin.
    pub volume_24h: Option<f64>,
    /// Current funding rate.
    pub funding_rate: Option<f64>,
    /// Open interest in base coin.
    pub open_interest: Option<f64>,
}

impl Default for Symbol {
    fn default() -> Self {
        Symbol::new("")
    }
}

/// A liquidation print (Bybit `allLiquidation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liquidation {
    pub symbol: Symbol,
    pub ts_ms: TimeMs,
    /// Side of the liquidated position (`Buy` = a long was liquidated).
    pub side: Side,
    /// Bankruptcy price.
    pub price: Price,
    pub qty: Qty,
}

/// Connection state of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeedState {
    /// Subscribed and receiving.
    Connected,
    /// Lost; reconnecting with backoff.
    Reconnecting,
    /// Not connected and not expected back soon.
    Down,
}
