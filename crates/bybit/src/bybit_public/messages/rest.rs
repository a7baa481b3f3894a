//! `result` shapes of the public REST endpoints (instruments, order book, recent trades, server
//! time, klines) and the v5 envelope around them, with their exact conversions into market
//! types. Tickers, whose items the WS stream shares, are in [`super::ticker`].

use super::sanity::{check_book_levels, item_problem, RefusalStream, Refusals};
use crate::error::BybitError;
use crate::wire::{de_i64, de_levels, de_opt_i64, de_side, de_text, de_u64, decode_err};
use scalper_core::domain::{Fixed, Price, Qty, Side, Symbol, TimeMs};
use scalper_core::market::data::{
    BookAction, BookUpdate, Instrument, InstrumentStatus, Kline, Level, Trade, TradeBatch,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// REST envelope
// ---------------------------------------------------------------------------------------------

/// The v5 REST envelope. `result` stays generic; see [`envelope_result`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// `0` on success; anything else is an error code.
    pub ret_code: i64,
    /// Human-readable status (`"OK"`, `"success"` or the error text).
    #[serde(default)]
    pub ret_msg: String,
    /// The payload (an empty object on errors).
    #[serde(default)]
    pub result: Option<T>,
    /// Extra information, usually `{}`.
    #[serde(default)]
    pub ret_ext_info: Option<serde_json::Value>,
    /// Server time of the response, ms.
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub time: Option<i64>,
}

/// Checks the envelope of an already-parsed JSON body and extracts its `result` as `T`.
/// `retCode != 0` → [`BybitError::Api`] (the result is never looked at).
pub fn envelope_result<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, BybitError> {
    let env: Envelope<serde_json::Value> = serde_json::from_value(body).map_err(decode_err)?;
    if env.ret_code != 0 {
        return Err(BybitError::Api { code: env.ret_code, msg: env.ret_msg });
    }
    let result = env.result.ok_or_else(|| BybitError::Decode("envelope without result".into()))?;
    serde_json::from_value(result).map_err(decode_err)
}

/// Parses a REST body (text) and extracts its `result` as `T`; invalid JSON is a
/// [`BybitError::Decode`].
pub fn parse_envelope<T: DeserializeOwned>(body: &str) -> Result<T, BybitError> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(decode_err)?;
    envelope_result(v)
}

// ---------------------------------------------------------------------------------------------
// Instruments info
// ---------------------------------------------------------------------------------------------

/// `result` of `GET /v5/market/instruments-info` (one page).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentsPage {
    /// Product type (`linear`).
    #[serde(default)]
    pub category: String,
    /// Instruments on this page.
    #[serde(default)]
    pub list: Vec<InstrumentInfo>,
    /// Cursor of the next page; empty on the last page.
    #[serde(default, deserialize_with = "de_text")]
    pub next_page_cursor: String,
}

/// One linear instrument as Bybit describes it (fields we do not use are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentInfo {
    /// Symbol name, e.g. `BTCUSDT`.
    pub symbol: String,
    /// `LinearPerpetual`, `LinearFutures`, …
    #[serde(default, deserialize_with = "de_text")]
    pub contract_type: String,
    /// `PreLaunch`, `Trading`, `Delivering`, `Closed`.
    #[serde(default, deserialize_with = "de_text")]
    pub status: String,
    /// Base coin.
    #[serde(default, deserialize_with = "de_text")]
    pub base_coin: String,
    /// Quote coin.
    #[serde(default, deserialize_with = "de_text")]
    pub quote_coin: String,
    /// Settle coin (`USDT` for USDT perpetuals).
    #[serde(default, deserialize_with = "de_text")]
    pub settle_coin: String,
    /// Launch time, ms (string on the wire).
    #[serde(default, deserialize_with = "de_text")]
    pub launch_time: String,
    /// Price rules.
    #[serde(default)]
    pub price_filter: PriceFilter,
    /// Size rules.
    #[serde(default)]
    pub lot_size_filter: LotSizeFilter,
    /// Leverage rules.
    #[serde(default)]
    pub leverage_filter: LeverageFilter,
}

/// `priceFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceFilter {
    /// Minimum order price.
    #[serde(default, deserialize_with = "de_text")]
    pub min_price: String,
    /// Maximum order price.
    #[serde(default, deserialize_with = "de_text")]
    pub max_price: String,
    /// Price increment.
    #[serde(default, deserialize_with = "de_text")]
    pub tick_size: String,
}

/// `lotSizeFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LotSizeFilter {
    /// Maximum quantity of a limit order.
    #[serde(default, deserialize_with = "de_text")]
    pub max_order_qty: String,
    /// Maximum quantity of a market order.
    #[serde(default, deserialize_with = "de_text")]
    pub max_mkt_order_qty: String,
    /// Minimum order quantity.
    #[serde(default, deserialize_with = "de_text")]
    pub min_order_qty: String,
    /// Quantity increment.
    #[serde(default, deserialize_with = "de_text")]
    pub qty_step: String,
    /// Minimum order notional (USDT).
    #[serde(default, deserialize_with = "de_text")]
    pub min_notional_value: String,
}

/// `leverageFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeverageFilter {
    /// Minimum leverage.
    #[serde(default, deserialize_with = "de_text")]
    pub min_leverage: String,
    /// Maximum leverage.
    #[serde(default, deserialize_with = "de_text")]
    pub max_leverage: String,
    /// Leverage increment.
    #[serde(default, deserialize_with = "de_text")]
    pub leverage_step: String,
}

fn parse_field<T>(
    symbol: &str,
    field: &str,
    v: &str,
    parse: fn(&str) -> Result<T, scalper_core::domain::DecimalError>,
) -> Result<T, BybitError> {
    parse(v).map_err(|e| BybitError::Decode(format!("{symbol}: {field}: {e}")))
}

impl InstrumentInfo {
    /// True for a linear perpetual settled in USDT (the only contracts this engine trades).
    pub fn is_usdt_perpetual(&self) -> bool {
        self.contract_type == "LinearPerpetual" && self.settle_coin == "USDT"
    }

    /// Bybit status mapped onto [`InstrumentStatus`] (anything but `Trading` / `PreLaunch` is
    /// `Closed`).
    pub fn instrument_status(&self) -> InstrumentStatus {
        match self.status.as_str() {
            "Trading" => InstrumentStatus::Trading,
            "PreLaunch" => InstrumentStatus::PreLaunch,
            _ => InstrumentStatus::Closed,
        }
    }

    /// Converts into an [`Instrument`] with exact trading rules. Fails on an invalid symbol,
    /// a missing or non-positive tick size / quantity step, or any value that does not parse.
    /// A missing `minNotionalValue` or `maxOrderQty` reads as zero (the venue gives none).
    pub fn to_instrument(&self) -> Result<Instrument, BybitError> {
        let s = self.symbol.as_str();
        if !Symbol::is_valid(s) {
            return Err(BybitError::Decode(format!("invalid symbol {s:?}")));
        }
        let tick_size = parse_field(s, "tickSize", &self.price_filter.tick_size, Price::parse)?;
        let qty_step = parse_field(s, "qtyStep", &self.lot_size_filter.qty_step, Qty::parse)?;
        if tick_size.raw() <= 0 || qty_step.raw() <= 0 {
            return Err(BybitError::Decode(format!("{s}: tickSize and qtyStep must be > 0")));
        }
        let or_zero = |v: &str| if v.trim().is_empty() { "0".to_string() } else { v.to_string() };
        let min_qty = parse_field(s, "minOrderQty", &or_zero(&self.lot_size_filter.min_order_qty), Qty::parse)?;
        let max_qty = parse_field(s, "maxOrderQty", &or_zero(&self.lot_size_filter.max_order_qty), Qty::parse)?;
        let min_notional =
            parse_field(s, "minNotionalValue", &or_zero(&self.lot_size_filter.min_notional_value), Price::parse)?;
        let max_leverage = parse_field(s, "maxLeverage", &or_zero(&self.leverage_filter.max_leverage), Price::parse)?;
        if min_qty.raw() < 0 || max_qty.raw() < 0 || min_notional.raw() < 0 || max_leverage.raw() < 0 {
            return Err(BybitError::Decode(format!(
                "{s}: negative rule (minOrderQty {min_qty}, maxOrderQty {max_qty}, minNotionalValue {min_notional}, maxLeverage {max_leverage})"
            )));
        }
        let launch_time_ms = if self.launch_time.trim().is_empty() {
            0
        } else {
            self.launch_time
                .trim()
                .parse::<i64>()
                .map_err(|_| BybitError::Decode(format!("{s}: launchTime {:?} is not an integer", self.launch_time)))?
        };
        Ok(Instrument {
            symbol: Symbol::new(s),
            status: self.instrument_status(),
            tick_size,
            qty_step,
            min_qty,
            max_qty,
            min_notional,
            max_leverage,
            launch_time_ms,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Order book (REST)
// ---------------------------------------------------------------------------------------------

/// `result` of `GET /v5/market/orderbook` (always a snapshot).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderbookResult {
    /// Symbol.
    pub s: String,
    /// Bids, best (highest) first.
    #[serde(default, deserialize_with = "de_levels")]
    pub b: Vec<Level>,
    /// Asks, best (lowest) first.
    #[serde(default, deserialize_with = "de_levels")]
    pub a: Vec<Level>,
    /// Time the system generated the data, ms.
    #[serde(deserialize_with = "de_i64")]
    pub ts: i64,
    /// Update id (the REST book matches the deepest WS book's `u`, not the subscribed depth's).
    #[serde(deserialize_with = "de_u64")]
    pub u: u64,
    /// Cross sequence.
    #[serde(default, deserialize_with = "de_u64")]
    pub seq: u64,
    /// Matching-engine time, ms.
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub cts: Option<i64>,
}

impl OrderbookResult {
    /// A [`BookAction::Snapshot`] book update; `depth` is the requested limit. A level with a
    /// price <= 0 or a size < 0, or more than `depth` levels per side, refuses the book.
    pub fn into_book(self, depth: u16) -> Result<BookUpdate, BybitError> {
        self.into_book_checked(depth, &mut Refusals::default())
    }

    /// [`OrderbookResult::into_book`], reporting what it refused into `refusals`.
    pub fn into_book_checked(self, depth: u16, refusals: &mut Refusals) -> Result<BookUpdate, BybitError> {
        if !Symbol::is_valid(&self.s) {
            return Err(BybitError::Decode(format!("invalid symbol {:?}", self.s)));
        }
        check_book_levels(RefusalStream::RestOrderbook, &self.s, &self.b, &self.a, usize::from(depth), refusals)?;
        Ok(BookUpdate {
            symbol: Symbol::new(&self.s),
            action: BookAction::Snapshot,
            depth,
            bids: self.b,
            asks: self.a,
            update_id: self.u,
            seq: self.seq,
            cts_ms: self.cts,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Recent public trades (REST)
// ---------------------------------------------------------------------------------------------

/// `result` of `GET /v5/market/recent-trade`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecentTradesResult {
    /// Product type.
    #[serde(default)]
    pub category: String,
    /// Trades, newest first.
    #[serde(default)]
    pub list: Vec<RecentTrade>,
}

/// One item of [`RecentTradesResult::list`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentTrade {
    /// Trade id.
    #[serde(deserialize_with = "de_text")]
    pub exec_id: String,
    pub symbol: String,
    pub price: Price,
    pub size: Qty,
    /// Taker side.
    #[serde(deserialize_with = "de_side")]
    pub side: Side,
    /// Fill time, ms (string on the wire).
    #[serde(deserialize_with = "de_i64")]
    pub time: i64,
    /// Block trade.
    #[serde(default)]
    pub is_block_trade: bool,
    /// The maker was an RPI order (see [`Trade::rpi`]).
    #[serde(default, rename = "isRPITrade")]
    pub is_rpi_trade: bool,
}

impl RecentTradesResult {
    /// The trades of `symbol`, oldest first; items with a price or size <= 0 dropped and
    /// reported. Another symbol's item refuses the answer.
    pub fn into_batch(self, symbol: &Symbol, refusals: &mut Refusals) -> Result<TradeBatch, BybitError> {
        let mut trades = Vec::with_capacity(self.list.len());
        for t in self.list.into_iter().rev() {
            if t.symbol != symbol.as_str() {
                return Err(BybitError::Decode(format!("recent trades of {symbol} contain {:?}", t.symbol)));
            }
            if let Some(r) = item_problem(t.price, t.size) {
                refusals.add(RefusalStream::RestRecentTrade, r, || {
                    format!("{symbol}: trade {} price={} size={}", t.exec_id, t.price, t.size)
                });
                continue;
            }
            trades.push(Trade {
                ts_ms: t.time,
                price: t.price,
                qty: t.size,
                aggressor: t.side,
                id: t.exec_id,
                block_trade: t.is_block_trade,
                rpi: t.is_rpi_trade,
            });
        }
        Ok(TradeBatch { symbol: symbol.clone(), trades })
    }
}

// ---------------------------------------------------------------------------------------------
// Server time
// ---------------------------------------------------------------------------------------------

/// `result` of `GET /v5/market/time`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    /// Seconds since the epoch (string on the wire).
    #[serde(default, deserialize_with = "de_text")]
    pub time_second: String,
    /// Nanoseconds since the epoch (string on the wire).
    #[serde(default, deserialize_with = "de_text")]
    pub time_nano: String,
}

impl ServerTime {
    /// Server time in ms: from `timeNano` when it parses, else from `timeSecond`; a time at or
    /// before the epoch is refused.
    pub fn to_ms(&self) -> Result<TimeMs, BybitError> {
        let ms = if let Ok(n) = self.time_nano.trim().parse::<i128>() {
            i64::try_from(n / 1_000_000).map_err(|_| BybitError::Decode("timeNano out of range".into()))?
        } else {
            self.time_second
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|s| s.checked_mul(1_000))
                .ok_or_else(|| BybitError::Decode(format!("invalid server time {self:?}")))?
        };
        if ms <= 0 {
            return Err(BybitError::Decode(format!("server time {ms} ms is not after the epoch")));
        }
        Ok(ms)
    }
}

// ---------------------------------------------------------------------------------------------
// Klines
// ---------------------------------------------------------------------------------------------

/// `result` of `GET /v5/market/kline`. Rows stay raw JSON so that one malformed row is skipped
/// (and counted) instead of failing the whole answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KlineResult {
    /// Product type (`linear`).
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub symbol: String,
    /// Candles, newest first: `[startTime, open, high, low, close, volume, turnover]`.
    #[serde(default)]
    pub list: Vec<serde_json::Value>,
}

/// Klines parsed from one answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedKlines {
    /// Closed candles, oldest first, one per start time.
    pub klines: Vec<Kline>,
    /// Rows that did not parse or were inconsistent (skipped), with the first reason.
    pub skipped: usize,
    /// Why the first skipped row was skipped.
    pub first_error: Option<String>,
    /// Candles left out because they were still open at the server time.
    pub open: usize,
}

/// A decimal field of a row: a JSON string (or number) that parses exactly.
fn row_fixed(v: &serde_json::Value, what: &str) -> Result<Fixed, String> {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(format!("{what} is not a decimal: {other}")),
    };
    Fixed::parse(&text).map_err(|e| format!("{what} {text:?}: {e}"))
}

/// One row `[startTime, open, high, low, close, volume, turnover]` → a candle. Every price
/// must be positive with `low <= open, close <= high`; volume and turnover non-negative.
/// Turnover with more than eight decimals is rounded (it is an analytics figure).
pub fn parse_kline_row(row: &serde_json::Value) -> Result<Kline, String> {
    let a = row.as_array().ok_or_else(|| format!("row is not an array: {row}"))?;
    if a.len() < 7 {
        return Err(format!("row has {} fields, expected 7", a.len()));
    }
    let start_ms = match &a[0] {
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .filter(|t| *t >= 0)
    .ok_or_else(|| format!("startTime {} is not a time in ms", a[0]))?;
    let [open, high, low, close] =
        [(1, "open"), (2, "high"), (3, "low"), (4, "close")].map(|(i, n)| row_fixed(&a[i], n));
    let (open, high, low, close) = (Price(open?), Price(high?), Price(low?), Price(close?));
    if [open, high, low, close].iter().any(|p| p.raw() <= 0) {
        return Err(format!("non-positive price in {row}"));
    }
    if low > open.min(close) || high < open.max(close) || low > high {
        return Err(format!("inconsistent high/low in {row}"));
    }
    let volume = Qty(row_fixed(&a[5], "volume")?);
    let turnover = match row_fixed(&a[6], "turnover") {
        Ok(t) => Price(t),
        Err(e) => {
            let f = a[6].as_str().and_then(|s| s.trim().parse::<f64>().ok()).filter(|f| f.is_finite());
            Price::from_f64(f.ok_or(e)?)
        }
    };
    if volume.raw() < 0 || turnover.raw() < 0 {
        return Err(format!("negative volume or turnover in {row}"));
    }
    Ok(Kline { start_ms, open, high, low, close, volume, turnover })
}

impl KlineResult {
    /// The closed candles, oldest first: bad rows skipped and counted, rows of another symbol an
    /// error, and candles with `start + interval_ms > server_ms` (still open) left out.
    pub fn into_closed(self, symbol: &Symbol, interval_ms: i64, server_ms: TimeMs) -> Result<ParsedKlines, BybitError> {
        if !self.symbol.is_empty() && self.symbol != symbol.as_str() {
            return Err(BybitError::Decode(format!("kline for {:?} answered with {:?}", symbol.as_str(), self.symbol)));
        }
        let mut out = ParsedKlines::default();
        let rows = self.list.len();
        for row in &self.list {
            match parse_kline_row(row) {
                Ok(k) if k.start_ms.saturating_add(interval_ms) > server_ms => out.open += 1,
                Ok(k) => out.klines.push(k),
                Err(e) => {
                    out.skipped += 1;
                    out.first_error.get_or_insert(e);
                }
            }
        }
        if rows > 0 && out.skipped == rows {
            return Err(BybitError::Decode(format!(
                "every kline row is malformed: {}",
                out.first_error.unwrap_or_default()
            )));
        }
        out.klines.sort_by_key(|k| k.start_ms);
        out.klines.dedup_by_key(|k| k.start_ms);
        Ok(out)
    }
}
