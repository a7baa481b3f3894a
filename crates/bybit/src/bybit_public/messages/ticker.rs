//! Ticker items, shared by `GET /v5/market/tickers` (list items) and the `tickers.{symbol}` WS
//! stream (snapshot and delta `data`): the field names are the same, and so are the sanity rules
//! (a bad field reads as "unchanged").

use super::sanity::{RefusalReason, RefusalStream, Refusals};
use crate::wire::{de_opt_f64, de_opt_price};
use scalper_core::domain::{Price, Symbol};
use scalper_core::market::data::TickerUpdate;
use serde::Deserialize;

/// Ticker fields shared by `GET /v5/market/tickers` items and `tickers.{symbol}` WS data.
/// Every field except the symbol is optional (WS deltas carry only what changed; pre-launch
/// contracts send empty strings).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickerData {
    pub symbol: String,
    /// Last traded price.
    #[serde(default, deserialize_with = "de_opt_price")]
    pub last_price: Option<Price>,
    /// Mark price.
    #[serde(default, deserialize_with = "de_opt_price")]
    pub mark_price: Option<Price>,
    /// Index price.
    #[serde(default, deserialize_with = "de_opt_price")]
    pub index_price: Option<Price>,
    /// Best bid price.
    #[serde(default, deserialize_with = "de_opt_price")]
    pub bid1_price: Option<Price>,
    /// Best ask price.
    #[serde(default, deserialize_with = "de_opt_price")]
    pub ask1_price: Option<Price>,
    /// 24 h change as a fraction.
    #[serde(default, rename = "price24hPcnt", deserialize_with = "de_opt_f64")]
    pub price_24h_pcnt: Option<f64>,
    /// 24 h turnover (USDT).
    #[serde(default, rename = "turnover24h", deserialize_with = "de_opt_f64")]
    pub turnover_24h: Option<f64>,
    /// 24 h volume (base coin).
    #[serde(default, rename = "volume24h", deserialize_with = "de_opt_f64")]
    pub volume_24h: Option<f64>,
    /// Funding rate.
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub funding_rate: Option<f64>,
    /// Open interest (base coin).
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub open_interest: Option<f64>,
}

impl TickerData {
    /// Drops (and reports) every field Bybit never sends: a price <= 0, a negative turnover,
    /// volume or open interest. A dropped field reads as "no value", like one a delta omits.
    pub fn sanitize(&mut self, stream: RefusalStream, refusals: &mut Refusals) {
        let sym = self.symbol.clone();
        for (name, v) in [
            ("lastPrice", &mut self.last_price),
            ("markPrice", &mut self.mark_price),
            ("indexPrice", &mut self.index_price),
            ("bid1Price", &mut self.bid1_price),
            ("ask1Price", &mut self.ask1_price),
        ] {
            if let Some(p) = v.filter(|p| p.raw() <= 0) {
                refusals.add(stream, RefusalReason::NonPositivePrice, || format!("{sym}: ticker {name} {p}"));
                *v = None;
            }
        }
        for (name, v) in [
            ("turnover24h", &mut self.turnover_24h),
            ("volume24h", &mut self.volume_24h),
            ("openInterest", &mut self.open_interest),
        ] {
            if let Some(x) = v.filter(|x| *x < 0.0) {
                refusals.add(stream, RefusalReason::NegativeValue, || format!("{sym}: ticker {name} {x}"));
                *v = None;
            }
        }
    }

    /// Into the venue-agnostic [`TickerUpdate`] (values as given; see [`TickerData::sanitize`]).
    pub fn into_update(self) -> TickerUpdate {
        TickerUpdate {
            symbol: Symbol::new(&self.symbol),
            last_price: self.last_price,
            mark_price: self.mark_price,
            index_price: self.index_price,
            bid1_price: self.bid1_price,
            ask1_price: self.ask1_price,
            price_24h_pcnt: self.price_24h_pcnt,
            turnover_24h: self.turnover_24h,
            volume_24h: self.volume_24h,
            funding_rate: self.funding_rate,
            open_interest: self.open_interest,
        }
    }
}

/// `result` of `GET /v5/market/tickers`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TickersResult {
    /// Product type.
    #[serde(default)]
    pub category: String,
    /// One item per symbol.
    #[serde(default)]
    pub list: Vec<TickerData>,
}

impl TickersResult {
    /// Tickers of plain symbols (dated futures such as `BTCUSDT-26DEC25` left out), in the
    /// venue's order, each sanitized ([`TickerData::sanitize`]).
    pub fn into_updates(self, refusals: &mut Refusals) -> Vec<TickerUpdate> {
        self.list
            .into_iter()
            .filter(|t| Symbol::is_valid(&t.symbol))
            .map(|mut t| {
                t.sanitize(RefusalStream::RestTickers, refusals);
                t.into_update()
            })
            .collect()
    }
}
