//! Wire types of Bybit's v5 public API and their conversions into [`scalper_core::market::data`].
//!
//! Shapes follow Bybit's v5 documentation:
//! - REST envelope `{retCode, retMsg, result, retExtInfo, time}`; `retCode != 0` is always an
//!   [`BybitError::Api`], never data.
//! - `GET /v5/market/instruments-info?category=linear` (`list`, `nextPageCursor`, filters),
//!   `GET /v5/market/orderbook` (`s`, `b`, `a`, `ts`, `u`, `seq`, `cts`), `GET /v5/market/tickers`,
//!   `GET /v5/market/time` (`timeSecond`, `timeNano`), `GET /v5/market/kline` (`list` of
//!   `[startTime, open, high, low, close, volume, turnover]` string rows, newest first).
//! - Public WS frames `{topic, type, ts, data, cts?, cs?}` for `orderbook.{depth}.{symbol}`,
//!   `publicTrade.{symbol}`, `tickers.{symbol}`, `allLiquidation.{symbol}`, and operation
//!   responses `{success, ret_msg, conn_id, req_id, op}` (subscribe / unsubscribe acks, pongs).
//!
//! Every price and size is parsed exactly from its decimal string ([`Price::parse`] /
//! [`Qty::parse`]); a value that does not parse makes the whole message a typed error.
//!
//! **Sanity.** Values that parse but that Bybit never sends are refused and reported in
//! [`Refusals`] (by stream and [`RefusalReason`]; the feed counts them in
//! `scalper_public_refused_total` and logs them throttled):
//! - trades and liquidations: price and size must be > 0; a bad item is dropped, the rest of the
//!   frame kept (each item stands alone). With a receive time ([`Sanity::recv_ms`]) a trade whose
//!   `T` is more than [`Sanity::max_trade_ahead_ms`] ahead of it is dropped too: one far-future
//!   print would otherwise make the tape and candles refuse every later (normal) trade;
//! - order books (WS and REST): price > 0 and size >= 0 (size "0" deletes a level in a delta),
//!   and at most `depth` levels per side in a snapshot, `2 × depth` in a delta (a delta may delete
//!   every level held and insert a whole new side; the real `orderbook.25` recording carries up
//!   to 47). A book frame with one bad level is refused whole (never half-applied) and
//!   [`Refusals::book_resync`] names the book that must be resynced;
//! - tickers: prices (last, mark, index, bid1, ask1) must be > 0 and turnover, volume and open
//!   interest >= 0; a bad field is dropped (read as "unchanged", like a field a delta omits),
//!   the others kept. `""` or an absent field is no value, as Bybit sends in deltas and for
//!   pre-launch contracts. The 24 h change and the funding rate may be negative;
//! - instruments: every rule must be >= 0 (tick size and quantity step > 0), else the instrument
//!   is refused.
//!
//! This module holds the WS side (operation requests and responses, topic frames and their
//! one-pass decoding, with the pass itself in `frame`); the REST results are in `rest`, the
//! ticker items both sides share in `ticker`, the refusal counting in `sanity`. The lenient
//! scalar readers are the crate's shared `wire` module. Everything is re-exported here.

mod frame;
mod rest;
mod sanity;
#[cfg(test)]
mod tests;
mod ticker;

pub use rest::{
    envelope_result, parse_envelope, parse_kline_row, Envelope, InstrumentInfo, InstrumentsPage, KlineResult,
    LeverageFilter, LotSizeFilter, OrderbookResult, ParsedKlines, PriceFilter, RecentTrade, RecentTradesResult,
    ServerTime,
};
pub use sanity::{RefusalReason, RefusalStream, Refusals, Sanity};
pub use ticker::{TickerData, TickersResult};

use super::BybitError;
use crate::wire::{de_i64, de_levels, de_opt_i64, de_side, de_text, de_u64, decode_err};
use sanity::{check_book_levels, item_problem};
use scalper_core::domain::{EventTime, Price, Qty, Side, Symbol, TimeMs};
use scalper_core::engine::event::{Event, EventKind};
use scalper_core::market::data::{BookAction, BookUpdate, Level, Liquidation, TickerUpdate, Trade, TradeBatch};
use serde::{Deserialize, Serialize};
use std::fmt;

// ---------------------------------------------------------------------------------------------
// WebSocket: requests
// ---------------------------------------------------------------------------------------------

/// An operation request: `{"req_id": "...", "op": "subscribe", "args": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRequest {
    /// Our id, echoed in the response.
    pub req_id: String,
    /// `subscribe`, `unsubscribe` or `ping`.
    pub op: String,
    /// Topics (omitted for `ping`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

impl OpRequest {
    /// A subscribe request.
    pub fn subscribe(req_id: String, topics: Vec<String>) -> Self {
        OpRequest { req_id, op: "subscribe".into(), args: topics }
    }
    /// An unsubscribe request.
    pub fn unsubscribe(req_id: String, topics: Vec<String>) -> Self {
        OpRequest { req_id, op: "unsubscribe".into(), args: topics }
    }
    /// A heartbeat ping.
    pub fn ping(req_id: String) -> Self {
        OpRequest { req_id, op: "ping".into(), args: Vec::new() }
    }
    /// JSON text of the request.
    pub fn to_json(&self) -> String {
        // Serializing strings into a JSON object cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `orderbook.{depth}.{symbol}`.
pub fn topic_orderbook(depth: u16, symbol: &Symbol) -> String {
    format!("orderbook.{depth}.{symbol}")
}
/// `publicTrade.{symbol}`.
pub fn topic_trades(symbol: &Symbol) -> String {
    format!("publicTrade.{symbol}")
}
/// `tickers.{symbol}`.
pub fn topic_tickers(symbol: &Symbol) -> String {
    format!("tickers.{symbol}")
}
/// `allLiquidation.{symbol}`.
pub fn topic_liquidations(symbol: &Symbol) -> String {
    format!("allLiquidation.{symbol}")
}

// ---------------------------------------------------------------------------------------------
// WebSocket: frames
// ---------------------------------------------------------------------------------------------

/// Response to an operation (`subscribe`, `unsubscribe`, `ping`):
/// `{"success": true, "ret_msg": "", "conn_id": "...", "req_id": "...", "op": "subscribe"}`.
/// Public pongs look like `{"success": true, "ret_msg": "pong", ..., "op": "ping"}`; some
/// endpoints answer `{"op": "pong", "args": [...]}`. Both are pongs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OpResponse {
    /// Whether the operation succeeded (absent on `op: "pong"` frames).
    #[serde(default)]
    pub success: Option<bool>,
    /// Status text: empty, `"subscribe"`, `"pong"`, or the error.
    #[serde(default, deserialize_with = "de_text")]
    pub ret_msg: String,
    /// Connection id assigned by Bybit.
    #[serde(default, deserialize_with = "de_text")]
    pub conn_id: String,
    /// Our request id, echoed (empty when we sent none).
    #[serde(default, deserialize_with = "de_text")]
    pub req_id: String,
    /// The operation answered.
    #[serde(default, deserialize_with = "de_text")]
    pub op: String,
}

impl OpResponse {
    /// True for a heartbeat answer.
    pub fn is_pong(&self) -> bool {
        self.op == "pong" || (self.op == "ping" && self.ret_msg == "pong")
    }
    /// True when the operation succeeded. Re-subscribing a topic that is already subscribed
    /// is reported by Bybit as an error, but the topic is live, so it counts as success.
    pub fn is_success(&self) -> bool {
        self.success == Some(true) || self.ret_msg.contains("already subscribed")
    }
}

/// `{topic, type, ts, data, cts?, cs?}` with typed `data`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TopicFrame<D> {
    /// Topic, e.g. `orderbook.50.BTCUSDT`.
    pub topic: String,
    /// `snapshot` or `delta`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Time the system generated the data, ms.
    #[serde(deserialize_with = "de_i64")]
    pub ts: i64,
    /// Matching-engine time, ms (order book only).
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub cts: Option<i64>,
    /// The payload.
    pub data: D,
}

/// `data` of an `orderbook.{depth}.{symbol}` frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WsOrderbookData {
    /// Symbol.
    pub s: String,
    /// Bid levels (size 0 = delete in a delta).
    #[serde(default, deserialize_with = "de_levels")]
    pub b: Vec<Level>,
    /// Ask levels.
    #[serde(default, deserialize_with = "de_levels")]
    pub a: Vec<Level>,
    /// Update id.
    #[serde(deserialize_with = "de_u64")]
    pub u: u64,
    /// Cross sequence.
    #[serde(deserialize_with = "de_u64")]
    pub seq: u64,
}

/// One element of a `publicTrade.{symbol}` frame's `data`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WsTrade {
    /// Fill time, ms.
    #[serde(rename = "T", deserialize_with = "de_i64")]
    pub time: i64,
    /// Symbol.
    pub s: String,
    /// Taker side.
    #[serde(rename = "S", deserialize_with = "de_side")]
    pub side: Side,
    /// Size.
    pub v: Qty,
    pub p: Price,
    /// Trade id.
    #[serde(deserialize_with = "de_text")]
    pub i: String,
    /// Block trade.
    #[serde(rename = "BT", default)]
    pub block_trade: bool,
    /// The maker was a Retail Price Improvement order (absent in older frames: `false`).
    #[serde(rename = "RPI", default)]
    pub rpi: bool,
}

/// One element of an `allLiquidation.{symbol}` frame's `data`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WsLiquidation {
    /// Time, ms.
    #[serde(rename = "T", deserialize_with = "de_i64")]
    pub time: i64,
    /// Symbol.
    pub s: String,
    /// Side of the liquidated position (`Buy` = a long was liquidated).
    #[serde(rename = "S", deserialize_with = "de_side")]
    pub side: Side,
    /// Size.
    pub v: Qty,
    /// Bankruptcy price.
    pub p: Price,
}

/// The documentation lists `data` of `allLiquidation` as an object but shows an array: accept
/// both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

/// Market data carried by a topic frame, already in engine types.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketData {
    /// Order-book snapshot or delta.
    Book(BookUpdate),
    /// Public trades.
    Trades(TradeBatch),
    /// Ticker snapshot or delta.
    Ticker(TickerUpdate),
    /// Liquidations (one frame may carry several).
    Liquidations(Vec<Liquidation>),
}

/// A parsed public WS frame.
#[derive(Debug, Clone, PartialEq)]
pub enum WsMessage {
    /// Market data with the frame's `ts` (ms).
    Market {
        /// Frame `ts`: the time the system generated the data.
        ts_ms: TimeMs,
        data: MarketData,
    },
    /// Answer to a subscribe / unsubscribe (or another non-ping operation).
    Ack(OpResponse),
    /// Heartbeat answer.
    Pong(OpResponse),
    /// A well-formed topic frame we do not handle (the topic is returned).
    Unhandled(String),
}

/// What a topic asks for, read from its text.
enum Route<'t> {
    /// `orderbook.{depth}.{symbol}`.
    Book { depth: u16, sym: &'t str },
    /// `publicTrade.{symbol}`.
    Trades(&'t str),
    /// `tickers.{symbol}`.
    Ticker(&'t str),
    /// `allLiquidation.{symbol}`.
    Liquidations(&'t str),
    /// Any other topic (returned as [`WsMessage::Unhandled`]).
    Other,
}

impl Route<'_> {
    fn data_kind(&self) -> Option<frame::DataKind> {
        match self {
            Route::Book { .. } => Some(frame::DataKind::Book),
            Route::Trades(_) => Some(frame::DataKind::Trades),
            Route::Ticker(_) => Some(frame::DataKind::Ticker),
            Route::Liquidations(_) => Some(frame::DataKind::Liquidations),
            Route::Other => None,
        }
    }
}

/// Routes a topic; a handled topic with a bad depth or symbol is an error.
fn route(topic: &str) -> Result<Route<'_>, BybitError> {
    if let Some(rest) = topic.strip_prefix("orderbook.") {
        let (depth, sym) = rest.split_once('.').ok_or_else(|| frame_err(topic, "bad orderbook topic"))?;
        let depth: u16 = depth.parse().map_err(|_| frame_err(topic, "bad depth"))?;
        if !Symbol::is_valid(sym) {
            return Err(frame_err(topic, "invalid symbol"));
        }
        return Ok(Route::Book { depth, sym });
    }
    if topic.starts_with("publicTrade.") {
        return symbol_of(topic, "publicTrade.").map(Route::Trades);
    }
    if topic.starts_with("tickers.") {
        return symbol_of(topic, "tickers.").map(Route::Ticker);
    }
    if topic.starts_with("allLiquidation.") {
        return symbol_of(topic, "allLiquidation.").map(Route::Liquidations);
    }
    Ok(Route::Other)
}

/// Typed `data` of a handled topic.
enum FrameData {
    Book(WsOrderbookData),
    Trades(Vec<WsTrade>),
    Ticker(TickerData),
    Liquidations(OneOrMany<WsLiquidation>),
}

fn symbol_of<'a>(topic: &'a str, prefix: &str) -> Result<&'a str, BybitError> {
    let s = topic.strip_prefix(prefix).unwrap_or("");
    if Symbol::is_valid(s) {
        Ok(s)
    } else {
        Err(BybitError::Decode(format!("invalid symbol in topic {topic:?}")))
    }
}

fn frame_err(topic: &str, e: impl fmt::Display) -> BybitError {
    BybitError::Decode(format!("{topic}: {e}"))
}

/// Parses one public WS text frame. Malformed JSON, a missing field, a value that does not
/// parse exactly, or a symbol that does not match the topic are [`BybitError::Decode`].
/// Sanity checks without a time bound (see [`parse_ws_frame_checked`]); refusals are dropped.
pub fn parse_ws_frame(text: &str) -> Result<WsMessage, BybitError> {
    parse_ws_frame_checked(text, Sanity::default(), &mut Refusals::default())
}

/// [`parse_ws_frame`] with the sanity checks of the module doc: bad trades and liquidations are
/// dropped, bad ticker fields cleared, a bad book refused whole (an error, with
/// [`Refusals::book_resync`] set); everything refused is reported into `refusals`.
///
/// One pass over the text: `data` is decoded for the topic read before it. A frame whose `data`
/// comes before its `topic` (Bybit never sends one) has its `data` decoded in a second pass;
/// operation responses are read in a second pass too (they are rare).
pub fn parse_ws_frame_checked(text: &str, sanity: Sanity, refusals: &mut Refusals) -> Result<WsMessage, BybitError> {
    let mut topic_slot = None;
    let parts = match frame::read(text, &mut topic_slot) {
        Ok(p) => p,
        Err(e) => {
            return Err(match topic_slot.as_deref() {
                Some(t) if route(t).is_ok_and(|r| r.data_kind().is_some()) => frame_err(t, e),
                _ => decode_err(e),
            })
        }
    };
    let Some(topic) = topic_slot else {
        if parts.op {
            let r: OpResponse = serde_json::from_str(text).map_err(decode_err)?;
            return Ok(if r.is_pong() { WsMessage::Pong(r) } else { WsMessage::Ack(r) });
        }
        return Err(BybitError::Decode("frame has neither topic nor op".into()));
    };
    let topic = topic.as_ref();
    let route = route(topic)?;
    let Some(kind) = route.data_kind() else {
        return Ok(WsMessage::Unhandled(topic.to_string()));
    };
    if let Some(field) = parts.duplicate {
        return Err(frame_err(topic, format!("duplicate field `{field}`")));
    }
    let ts = match &parts.ts {
        Some(v) => de_i64(v).map_err(|e| frame_err(topic, e))?,
        None => return Err(frame_err(topic, "missing field `ts`")),
    };
    let cts = match &parts.cts {
        Some(v) => de_opt_i64(v).map_err(|e| frame_err(topic, e))?,
        None => None,
    };
    let data = match parts.data {
        Some(d) => d,
        None if parts.data_early => frame::read_data(text, kind).map_err(|e| frame_err(topic, e))?,
        None => return Err(frame_err(topic, "missing field `data`")),
    };
    match (route, data) {
        (Route::Book { depth, sym }, FrameData::Book(data)) => {
            let action = match parts.kind.as_ref().map(|v| v.as_str()) {
                Some(Some("snapshot")) => BookAction::Snapshot,
                Some(Some("delta")) => BookAction::Delta,
                Some(Some(other)) => return Err(frame_err(topic, format!("unknown type {other:?}"))),
                Some(None) => return Err(frame_err(topic, "type is not a string")),
                None => return Err(frame_err(topic, "unknown type \"\"")),
            };
            book_message(topic, depth, sym, action, ts, cts, data, refusals)
        }
        (Route::Trades(sym), FrameData::Trades(items)) => {
            check_kind(topic, parts.kind.as_ref())?;
            trades_message(topic, sym, ts, items, sanity, refusals)
        }
        (Route::Ticker(sym), FrameData::Ticker(mut data)) => {
            check_kind(topic, parts.kind.as_ref())?;
            if data.symbol != sym {
                return Err(frame_err(topic, format!("ticker symbol {:?} does not match topic", data.symbol)));
            }
            data.sanitize(RefusalStream::Ticker, refusals);
            Ok(WsMessage::Market { ts_ms: ts, data: MarketData::Ticker(data.into_update()) })
        }
        (Route::Liquidations(sym), FrameData::Liquidations(data)) => {
            check_kind(topic, parts.kind.as_ref())?;
            liquidations_message(topic, sym, ts, data, refusals)
        }
        _ => Err(frame_err(topic, "data does not match the topic")),
    }
}

/// `type` of a frame whose kind is not looked at: absent or a string.
fn check_kind(topic: &str, kind: Option<&serde_json::Value>) -> Result<(), BybitError> {
    match kind {
        Some(v) if !v.is_string() => Err(frame_err(topic, "type is not a string")),
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn book_message(
    topic: &str,
    depth: u16,
    sym: &str,
    action: BookAction,
    ts: i64,
    cts: Option<i64>,
    data: WsOrderbookData,
    refusals: &mut Refusals,
) -> Result<WsMessage, BybitError> {
    if data.s != sym {
        return Err(frame_err(topic, format!("symbol {:?} does not match topic", data.s)));
    }
    let max_levels = match action {
        BookAction::Snapshot => usize::from(depth),
        BookAction::Delta => 2 * usize::from(depth),
    };
    let mut local = Refusals::default();
    if let Err(e) = check_book_levels(RefusalStream::Book, sym, &data.b, &data.a, max_levels, &mut local) {
        local.book_resync = Some((Symbol::new(sym), depth));
        refusals.merge(local);
        return Err(frame_err(topic, e));
    }
    let book = BookUpdate {
        symbol: Symbol::new(sym),
        action,
        depth,
        bids: data.b,
        asks: data.a,
        update_id: data.u,
        seq: data.seq,
        cts_ms: cts,
    };
    Ok(WsMessage::Market { ts_ms: ts, data: MarketData::Book(book) })
}

fn trades_message(
    topic: &str,
    sym: &str,
    ts: i64,
    items: Vec<WsTrade>,
    sanity: Sanity,
    refusals: &mut Refusals,
) -> Result<WsMessage, BybitError> {
    let mut trades = Vec::with_capacity(items.len());
    if let Some(t) = items.iter().find(|t| t.s != sym) {
        return Err(frame_err(topic, format!("trade symbol {:?} does not match topic", t.s)));
    }
    for t in items {
        if let Some(r) = item_problem(t.p, t.v) {
            refusals.add(RefusalStream::Trade, r, || format!("{sym}: trade {} price={} size={}", t.i, t.p, t.v));
            continue;
        }
        if let Some(recv) = sanity.recv_ms {
            if t.time.saturating_sub(recv) > sanity.max_trade_ahead_ms {
                refusals.add(RefusalStream::Trade, RefusalReason::FutureTime, || {
                    format!("{sym}: trade {} T={} is {} ms after receipt", t.i, t.time, t.time.saturating_sub(recv))
                });
                continue;
            }
        }
        trades.push(Trade {
            ts_ms: t.time,
            price: t.p,
            qty: t.v,
            aggressor: t.side,
            id: t.i,
            block_trade: t.block_trade,
            rpi: t.rpi,
        });
    }
    let batch = TradeBatch { symbol: Symbol::new(sym), trades };
    Ok(WsMessage::Market { ts_ms: ts, data: MarketData::Trades(batch) })
}

fn liquidations_message(
    topic: &str,
    sym: &str,
    ts: i64,
    data: OneOrMany<WsLiquidation>,
    refusals: &mut Refusals,
) -> Result<WsMessage, BybitError> {
    let items = match data {
        OneOrMany::Many(v) => v,
        OneOrMany::One(x) => vec![x],
    };
    if let Some(l) = items.iter().find(|l| l.s != sym) {
        return Err(frame_err(topic, format!("liquidation symbol {:?} does not match topic", l.s)));
    }
    let mut out = Vec::with_capacity(items.len());
    for l in items {
        if let Some(r) = item_problem(l.p, l.v) {
            refusals.add(RefusalStream::Liquidation, r, || format!("{sym}: liquidation price={} size={}", l.p, l.v));
            continue;
        }
        out.push(Liquidation { symbol: Symbol::new(sym), ts_ms: l.time, side: l.side, price: l.p, qty: l.v });
    }
    Ok(WsMessage::Market { ts_ms: ts, data: MarketData::Liquidations(out) })
}

impl MarketData {
    /// Appends the engine events of this data (`seq: 0`; the runtime stamps the sequence); an
    /// empty trade batch (every trade refused) gives none.
    pub fn push_events(self, time: EventTime, out: &mut Vec<Event>) {
        match self {
            MarketData::Book(b) => out.push(Event::new(0, time, EventKind::Book(b))),
            MarketData::Trades(t) => {
                // A frame whose every trade was refused carries nothing for the core.
                if !t.trades.is_empty() {
                    out.push(Event::new(0, time, EventKind::Trades(t)))
                }
            }
            MarketData::Ticker(t) => out.push(Event::new(0, time, EventKind::Ticker(t))),
            MarketData::Liquidations(v) => {
                out.extend(v.into_iter().map(|l| Event::new(0, time, EventKind::Liquidation(l))))
            }
        }
    }
}
