//! Bodies of the public REST endpoints (instruments-info with cursor pagination, orderbook,
//! tickers, kline jobs, server time) and the success / error envelopes every answer uses.

use super::{Exchange, RestError, SymbolSim};
use crate::history::{self, KlineQuery};
use crate::prints::TickerValues;
use crate::rng::mix_seed;
use crate::wire;
use crate::Listing;
use scalper_core::domain::Symbol;

fn params_error(m: &str) -> RestError {
    RestError(10001, format!("params error: {m}"))
}

impl Exchange {
    pub(super) fn trading(&self, symbol: &str) -> Option<usize> {
        self.by_name.get(symbol).copied().filter(|&i| self.symbols[i].listing == Listing::Trading)
    }

    fn delivery_ms(&self, s: &SymbolSim) -> i64 {
        s.delist_step.map_or(0, |n| self.step_time(n))
    }

    /// Body of `/v5/market/instruments-info` (linear).
    pub fn instruments_info(
        &self,
        symbol: Option<&str>,
        status: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<String, RestError> {
        let limit = match limit {
            None | Some("") => 500,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => return Err(params_error("limit must be in [1, 1000]")),
            },
        };
        let want = match status {
            None | Some("") | Some("Trading") => Listing::Trading,
            Some("Closed") => Listing::Closed,
            Some("PreLaunch") | Some("Delivering") => Listing::Pending,
            Some(_) => return Err(params_error("status invalid")),
        };
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| params_error("cursor invalid"))?),
        };
        let mut rows: Vec<&SymbolSim> = self
            .symbols
            .iter()
            .filter(|s| s.listing == want && want != Listing::Pending)
            .filter(|s| symbol.is_none_or(|q| q.is_empty() || s.spec.name == q))
            .filter(|s| after.as_deref().is_none_or(|a| s.spec.name.as_str() > a))
            .collect();
        rows.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        rows.truncate(limit);
        // Like Bybit's, the cursor stays non-empty on the last page; following it gives an
        // empty list and an empty cursor.
        let next = match (rows.first(), rows.last()) {
            (Some(f), Some(l)) => format!("first%3D{}%26last%3D{}", f.spec.name, l.spec.name),
            _ => String::new(),
        };
        let status_str = match want {
            Listing::Trading => "Trading",
            Listing::Closed => "Closed",
            Listing::Pending => "PreLaunch",
        };
        let list = rows.iter().map(|s| wire::instrument_json(&s.spec, status_str, self.delivery_ms(s))).collect();
        let result = wire::InstrumentsResult { category: "linear", list, next_page_cursor: next };
        Ok(self.envelope(result))
    }

    /// Body of `/v5/market/orderbook`: the `orderbook.1000` view (same `u`), cut to `limit`.
    pub fn orderbook(&self, symbol: Option<&str>, limit: Option<&str>) -> Result<String, RestError> {
        let symbol = match symbol {
            None | Some("") => return Err(params_error("symbol is required")),
            Some(s) => s,
        };
        let limit = match limit {
            None | Some("") => 25,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=500).contains(&n) => n,
                _ => return Err(params_error("limit must be in [1, 500]")),
            },
        };
        let i = self.trading(symbol).ok_or_else(|| RestError(10001, "Not supported symbols".into()))?;
        let s = &self.symbols[i];
        let ds = &s.depths[3];
        let r = wire::OrderbookResult {
            spec: &s.spec,
            bids: &ds.bids[..ds.bids.len().min(limit)],
            asks: &ds.asks[..ds.asks.len().min(limit)],
            ts: ds.ts,
            u: ds.u,
            seq: ds.seq,
            cts: ds.cts,
        };
        Ok(self.envelope(r))
    }

    /// Body of `/v5/market/tickers` (all trading symbols, or one).
    pub fn tickers(&self, symbol: Option<&str>) -> Result<String, RestError> {
        let now = self.now_ms();
        let t_rel = self.step as i64 * self.cfg.tick_interval_ms as i64;
        let values: Vec<TickerValues> = match symbol {
            None | Some("") => {
                let mut v: Vec<&SymbolSim> =
                    self.symbols.iter().filter(|s| s.listing == Listing::Trading && s.market.is_some()).collect();
                v.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
                v.iter().filter_map(|s| s.market.as_ref().map(|m| m.ticker(t_rel, now))).collect()
            }
            Some(q) => {
                let i = self.trading(q).ok_or_else(|| RestError(10001, "Not supported symbols".into()))?;
                self.symbols[i].market.iter().map(|m| m.ticker(t_rel, now)).collect()
            }
        };
        Ok(self.envelope(wire::TickersResult { list: &values }))
    }

    /// What `/v5/market/kline` must compute (the candles are computed outside the lock, see
    /// [`history::KlineJob::body`]).
    pub fn kline_job(
        &self,
        symbol: Option<&str>,
        interval: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        limit: Option<&str>,
    ) -> Result<history::KlineJob, RestError> {
        let symbol = match symbol {
            None | Some("") => return Err(params_error("symbol is required")),
            Some(s) => s,
        };
        let query = KlineQuery::parse(interval, start, end, limit).map_err(|(c, m)| RestError(c, m))?;
        let i = self.trading(symbol).ok_or_else(|| RestError(10001, "Not supported symbols".into()))?;
        let s = &self.symbols[i];
        let (Some(market), Some(tape)) = (s.market.as_ref(), s.minutes.as_ref()) else {
            return Err(RestError(10001, "Not supported symbols".into()));
        };
        let src = history::Source {
            seed: mix_seed(self.cfg.seed ^ 0x4B4C_494E_4553, i as u64),
            spec: s.spec.clone(),
            calm: market.calm_stats(),
            tape: tape.clone(),
            listing_price: s.spec.start_price_ticks,
            has_past: s.list_step == 0,
        };
        Ok(history::KlineJob { src, query, now_ms: self.now_ms() })
    }

    /// Body of `/v5/market/time`.
    pub fn time(&self) -> String {
        let now = self.now_ms();
        let r = wire::TimeResult {
            time_second: now.div_euclid(1000).to_string(),
            time_nano: (now as i128 * 1_000_000).to_string(),
        };
        self.envelope(r)
    }

    /// A success envelope around `result`.
    pub fn envelope<T: serde::Serialize>(&self, result: T) -> String {
        let env =
            wire::Envelope { ret_code: 0, ret_msg: "OK", result, ret_ext_info: wire::Empty {}, time: self.now_ms() };
        serde_json::to_string(&env).unwrap_or_default()
    }

    /// An error envelope.
    pub fn error_body(&self, code: i64, msg: &str) -> String {
        let env = wire::Envelope {
            ret_code: code,
            ret_msg: msg,
            result: wire::Empty {},
            ret_ext_info: wire::Empty {},
            time: self.now_ms(),
        };
        serde_json::to_string(&env).unwrap_or_default()
    }
}

/// Reads Bybit's cursor (`first%3DA%26last%3DB`, or decoded `first=A&last=B`): the last symbol
/// of the previous page.
fn parse_cursor(c: &str) -> Option<String> {
    let decoded = c.replace("%3D", "=").replace("%3d", "=").replace("%26", "&");
    decoded.split('&').find_map(|kv| kv.strip_prefix("last=")).filter(|s| Symbol::is_valid(s)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_forms() {
        assert_eq!(parse_cursor("first%3DBIOUSDT%26last%3DBTCUSDT").as_deref(), Some("BTCUSDT"));
        assert_eq!(parse_cursor("first=A1&last=SIM002USDT").as_deref(), Some("SIM002USDT"));
        assert_eq!(parse_cursor("garbage"), None);
    }
}
