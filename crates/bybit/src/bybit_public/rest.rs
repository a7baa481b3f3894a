//! Bybit v5 public REST client: instruments (paginated), order-book snapshots, tickers,
//! one-minute klines and server time. Every request has a timeout; retryable failures (HTTP 429 / 5xx, timeouts,
//! transport errors, Bybit's rate-limit code) are retried a bounded number of times with
//! exponential backoff and jitter. Everything is counted in [`ConnectorStats`].

use super::messages::{
    envelope_result, InstrumentsPage, KlineResult, OrderbookResult, RecentTradesResult, RefusalReason, RefusalStream,
    Refusals, ServerTime, TickersResult,
};
use super::{backoff_delay, jitter_seed, BybitError, ConnectorStats};
use crate::paging::collect_pages;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper_core::domain::{Symbol, TimeMs};
use scalper_core::market::data::{BookUpdate, Instrument, InstrumentStatus, Kline, TickerUpdate, TradeBatch};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Settings of [`PublicRest`].
#[derive(Debug, Clone, PartialEq)]
pub struct RestConfig {
    /// Base URL, e.g. `https://api.bybit.com` or `http://127.0.0.1:PORT` (simulator).
    pub base_url: String,
    /// Timeout of one whole request (connect + response).
    pub timeout: Duration,
    /// Attempts per call, first one included (>= 1).
    pub max_attempts: u32,
    /// Backoff of the first retry (doubles each retry, with jitter).
    pub backoff_base: Duration,
    /// Upper bound of one backoff.
    pub backoff_max: Duration,
    /// Also fetch `status=PreLaunch` contracts (Bybit returns only `Trading` by default).
    pub include_prelaunch: bool,
    /// Page size for instruments-info (`limit`, Bybit allows 1..=1000).
    pub page_limit: u32,
    /// Safety bound on pages followed per sweep.
    pub max_pages: u32,
}

impl RestConfig {
    /// Defaults for `base_url`: 10 s timeout, 4 attempts, backoff 250 ms → 5 s, PreLaunch
    /// included, 1000 instruments per page, at most 50 pages.
    pub fn new(base_url: &str) -> Self {
        RestConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            include_prelaunch: true,
            page_limit: 1000,
            max_pages: 50,
        }
    }
}

/// Client for Bybit's public v5 REST endpoints.
#[derive(Debug)]
pub struct PublicRest {
    client: reqwest::Client,
    cfg: RestConfig,
    stats: Arc<ConnectorStats>,
    rng: Mutex<SmallRng>,
    latency: Option<prometheus::Histogram>,
}

/// Max characters of a body kept in an error.
const BODY_SNIPPET: usize = 200;

fn snippet(body: &str) -> String {
    body.chars().take(BODY_SNIPPET).collect()
}

impl PublicRest {
    /// Client with default settings (see [`RestConfig::new`]) and its own stats.
    pub fn new(base_url: &str) -> Result<Self, BybitError> {
        Self::with_config(RestConfig::new(base_url), Arc::new(ConnectorStats::default()))
    }

    /// Client with explicit settings, counting into `stats`.
    pub fn with_config(cfg: RestConfig, stats: Arc<ConnectorStats>) -> Result<Self, BybitError> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| BybitError::Transport(e.to_string()))?;
        let rng = Mutex::new(SmallRng::seed_from_u64(jitter_seed(0x5245_5354)));
        Ok(PublicRest { client, cfg, stats, rng, latency: None })
    }

    /// Observes every attempt's latency (request sent → body read) into `h`.
    pub fn with_latency(mut self, h: prometheus::Histogram) -> Self {
        self.latency = Some(h);
        self
    }

    /// The settings.
    pub fn config(&self) -> &RestConfig {
        &self.cfg
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<ConnectorStats> {
        &self.stats
    }

    /// All USDT linear perpetuals that are `Trading` or `PreLaunch` (the latter only when
    /// [`RestConfig::include_prelaunch`]), following `nextPageCursor` (see [`collect_pages`]); sorted
    /// by symbol. Instruments whose rules do not parse are skipped with a warning (and counted
    /// as REST errors) rather than failing the whole universe.
    pub async fn instruments_linear(&self) -> Result<Vec<Instrument>, BybitError> {
        let mut by_symbol: BTreeMap<String, Instrument> = BTreeMap::new();
        self.instruments_sweep(None, &mut by_symbol).await?;
        if self.cfg.include_prelaunch {
            self.instruments_sweep(Some("PreLaunch"), &mut by_symbol).await?;
        }
        Ok(by_symbol.into_values().collect())
    }

    async fn instruments_sweep(
        &self,
        status: Option<&str>,
        out: &mut BTreeMap<String, Instrument>,
    ) -> Result<(), BybitError> {
        let limit = self.cfg.page_limit.clamp(1, 1000).to_string();
        let infos = collect_pages("instruments-info", self.cfg.max_pages, |cursor| {
            let limit = &limit;
            async move {
                let mut query: Vec<(&str, &str)> = vec![("category", "linear"), ("limit", limit)];
                if let Some(s) = status {
                    query.push(("status", s));
                }
                if let Some(c) = cursor.as_deref() {
                    query.push(("cursor", c));
                }
                let page: InstrumentsPage = self.get("/v5/market/instruments-info", &query).await?;
                Ok((page.list, page.next_page_cursor))
            }
        })
        .await?;
        for info in &infos {
            if !info.is_usdt_perpetual() {
                continue;
            }
            if !matches!(info.instrument_status(), InstrumentStatus::Trading | InstrumentStatus::PreLaunch) {
                continue;
            }
            match info.to_instrument() {
                Ok(i) => {
                    out.entry(info.symbol.clone()).or_insert(i);
                }
                Err(e) => {
                    let mut r = Refusals::default();
                    r.add(RefusalStream::RestInstruments, RefusalReason::InvalidRules, || e.to_string());
                    self.stats.record_refusals(&r, "/v5/market/instruments-info");
                    ConnectorStats::inc(&self.stats.rest_errors);
                    tracing::warn!(symbol = %info.symbol, error = %e, "skipping instrument with invalid rules");
                }
            }
        }
        Ok(())
    }

    /// Order-book snapshot of `symbol` with `limit` levels per side (linear: 1..=500). The
    /// update id `u` of the REST book belongs to Bybit's deepest book stream, not to the
    /// subscribed WS depth.
    pub async fn orderbook(&self, symbol: &Symbol, limit: u16) -> Result<BookUpdate, BybitError> {
        Ok(self.orderbook_with_ts(symbol, limit).await?.0)
    }

    /// Like [`PublicRest::orderbook`], also returning the book's `ts` (ms).
    pub async fn orderbook_with_ts(&self, symbol: &Symbol, limit: u16) -> Result<(BookUpdate, TimeMs), BybitError> {
        let limit_s = limit.clamp(1, 500).to_string();
        let query = [("category", "linear"), ("symbol", symbol.as_str()), ("limit", limit_s.as_str())];
        let r: OrderbookResult = self.get("/v5/market/orderbook", &query).await?;
        if r.s != symbol.as_str() {
            return Err(BybitError::Decode(format!("orderbook for {:?} answered with {:?}", symbol.as_str(), r.s)));
        }
        let ts = r.ts;
        let mut refused = Refusals::default();
        let book = r.into_book_checked(limit.clamp(1, 500), &mut refused);
        self.stats.record_refusals(&refused, "/v5/market/orderbook");
        Ok((book?, ts))
    }

    /// Tickers of every linear contract whose symbol is a plain symbol (dated futures such as
    /// `BTCUSDT-26DEC25` are left out), in the venue's order. Fields Bybit never sends (a price
    /// <= 0, a negative volume) are cleared, counted and logged.
    pub async fn tickers_linear(&self) -> Result<Vec<TickerUpdate>, BybitError> {
        let r: TickersResult = self.get("/v5/market/tickers", &[("category", "linear")]).await?;
        let mut refused = Refusals::default();
        let out = r.into_updates(&mut refused);
        self.stats.record_refusals(&refused, "/v5/market/tickers");
        Ok(out)
    }

    /// The newest `limit` (clamped to 1..=1000) public trades of `symbol`, oldest first; trades
    /// with a price or size <= 0 are dropped, counted and logged.
    pub async fn recent_trades(&self, symbol: &Symbol, limit: u16) -> Result<TradeBatch, BybitError> {
        let limit_s = limit.clamp(1, 1000).to_string();
        let query = [("category", "linear"), ("symbol", symbol.as_str()), ("limit", limit_s.as_str())];
        let r: RecentTradesResult = self.get("/v5/market/recent-trade", &query).await?;
        let mut refused = Refusals::default();
        let batch = r.into_batch(symbol, &mut refused);
        self.stats.record_refusals(&refused, "/v5/market/recent-trade");
        batch
    }

    /// The newest `limit` (clamped to 1..=1000) one-minute klines of `symbol`, oldest first,
    /// without the still-open newest minute (judged against the answer's server `time`, or the
    /// local clock when it has none). Malformed rows (not numbers, prices <= 0, high below low)
    /// are skipped with a warning and counted as REST errors; a symbol mismatch or an answer with
    /// only malformed rows is a [`BybitError::Decode`].
    pub async fn klines_1m(&self, symbol: &Symbol, limit: u16) -> Result<Vec<Kline>, BybitError> {
        let limit_s = limit.clamp(1, 1000).to_string();
        let query =
            [("category", "linear"), ("symbol", symbol.as_str()), ("interval", "1"), ("limit", limit_s.as_str())];
        let (r, server_ms): (KlineResult, Option<TimeMs>) = self
            .get_with("/v5/market/kline", &query, |v| {
                let time = v.get("time").and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok()));
                Ok((envelope_result(v)?, time))
            })
            .await?;
        let now = server_ms.unwrap_or_else(crate::clock::wall_ms);
        let parsed = r.into_closed(symbol, 60_000, now)?;
        if parsed.skipped > 0 {
            for _ in 0..parsed.skipped {
                ConnectorStats::inc(&self.stats.rest_errors);
            }
            tracing::warn!(symbol = %symbol, skipped = parsed.skipped, first = ?parsed.first_error, "malformed kline rows skipped");
        }
        Ok(parsed.klines)
    }

    /// Server time in ms (from `timeNano`, else `timeSecond`), for the clock offset.
    pub async fn server_time(&self) -> Result<TimeMs, BybitError> {
        let t: ServerTime = self.get("/v5/market/time", &[]).await?;
        t.to_ms()
    }

    /// GET `path` with `query`, retrying retryable failures with backoff.
    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, BybitError> {
        self.get_with(path, query, envelope_result::<T>).await
    }

    /// Like [`PublicRest::get`], with `extract` turning the whole JSON body (envelope included)
    /// into the answer.
    async fn get_with<T>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        extract: impl Fn(serde_json::Value) -> Result<T, BybitError>,
    ) -> Result<T, BybitError> {
        let attempts = self.cfg.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            let res = self.get_once(path, query, &extract).await;
            let err = match res {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            ConnectorStats::inc(&self.stats.rest_errors);
            if matches!(err, BybitError::Http { status: 429, .. } | BybitError::Api { code: 10006, .. }) {
                ConnectorStats::inc(&self.stats.rest_rate_limited);
            }
            attempt += 1;
            if !err.is_retryable() || attempt >= attempts {
                tracing::warn!(path, attempt, error = %err, "bybit public REST request failed");
                return Err(err);
            }
            ConnectorStats::inc(&self.stats.rest_retries);
            let unit = self.rng.lock().map(|mut r| r.random::<f64>()).unwrap_or(0.5);
            let delay = backoff_delay(self.cfg.backoff_base, self.cfg.backoff_max, attempt - 1, unit);
            tracing::debug!(path, attempt, ?delay, error = %err, "retrying bybit public REST request");
            tokio::time::sleep(delay).await;
        }
    }

    async fn get_once<T>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        extract: &impl Fn(serde_json::Value) -> Result<T, BybitError>,
    ) -> Result<T, BybitError> {
        ConnectorStats::inc(&self.stats.rest_requests);
        let url = format!("{}{}", self.cfg.base_url, path);
        let started = std::time::Instant::now();
        let resp = self.client.get(&url).query(query).send().await.map_err(transport_err)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(transport_err)?;
        if let Some(h) = &self.latency {
            h.observe(started.elapsed().as_secs_f64());
        }
        if !(200..300).contains(&status) {
            return Err(BybitError::Http { status, body: snippet(&body) });
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| BybitError::NotJson { status, body: snippet(&body) })?;
        extract(v)
    }
}

fn transport_err(e: reqwest::Error) -> BybitError {
    if e.is_timeout() {
        BybitError::Timeout(super::error_chain(&e))
    } else {
        BybitError::Transport(super::error_chain(&e))
    }
}
