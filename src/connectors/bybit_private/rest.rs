//! Signed Bybit v5 private REST client.
//!
//! Every request is signed (see [`super::sign`]) with a timestamp on the venue's clock (local
//! time + an offset measured from `/v5/market/time`), passes the endpoint group's token bucket,
//! and feeds the venue's `X-Bapi-Limit-*` headers back into it.
//!
//! Retries: HTTP 429 / 5xx, retCodes 10000 / 10006 / 10016 / 10018, timeouts and transport
//! failures are retried with exponential backoff and jitter; 10002 (timestamp out of window)
//! resynchronises the clock first. **Order creation is never retried blindly**: when a create
//! fails in a way that leaves its fate unknown (timeout, 5xx, broken connection, server-side
//! timeout code), the client looks the `orderLinkId` up (`/v5/order/realtime`, open then
//! closed, then `/v5/order/history`). Found → that order is the result. Not found → the client
//! waits until the request's own receive window has closed on the venue's clock (after which
//! no copy of it can be accepted) plus a safety margin, looks again, and only re-sends when
//! the order provably does not exist. A duplicate-`orderLinkId` rejection (110072) resolves
//! to the existing order. Rejections that prove the request was not processed (429, 10006,
//! 10002, connection refused) are re-sent directly.

use super::limiter::{EndpointGroup, LimitStatus, RateLimiter, RateLimits};
use super::messages::{
    sort_items, AmendOrderBody, CancelAllBody, CancelAllResult, CancelOrderBody, CreateOrderBody, OrderAck, Page,
    RawExecution, RawItem, RawOrder, RawPosition, SetLeverageBody, SkipReason, TradingStopBody, VenueExecution,
    VenueOrder, VenuePosition, WalletBalance, WalletResult, CODE_DUPLICATE_LINK_ID, CODE_LEVERAGE_NOT_MODIFIED,
    CODE_ORDER_FINISHED, CODE_ORDER_NOT_FOUND, CODE_RATE_LIMIT, CODE_TIMESTAMP,
};
use super::sign::{
    redact_exchange_text, Credentials, HEADER_API_KEY, HEADER_RECV_WINDOW, HEADER_SIGN, HEADER_TIMESTAMP,
};
use super::{PrivateError, PrivateStats};
use crate::connectors::bybit_public::messages::{envelope_result, ServerTime};
use crate::connectors::bybit_public::{
    backoff_delay, error_chain, jitter_seed, BybitError, SystemTimeSource, TimeSource,
};
use crate::connectors::paging::collect_pages;
use crate::domain::{Fixed, Price, Qty, Side, Symbol, TimeMs};
use crate::execution::order::{Intent, OrderKind, OrderRequest};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Settings of [`PrivateRest`].
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateRestConfig {
    /// Base URL, e.g. `https://api.bybit.com` or the simulator's `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// `X-BAPI-RECV-WINDOW`, ms: how long after its timestamp the venue accepts a request.
    pub recv_window_ms: u64,
    /// Timeout of one request (connect + response).
    pub timeout: Duration,
    /// Attempts per call, first included (>= 1).
    pub max_attempts: u32,
    /// First retry backoff (doubles per retry, with jitter).
    pub backoff_base: Duration,
    /// Largest backoff.
    pub backoff_max: Duration,
    /// Requests per second per endpoint group.
    pub rate_limits: RateLimits,
    /// Extra wait after an ambiguous create's receive window closed before its absence counts
    /// as proven (covers clock-offset error and venue-internal queuing).
    pub resolve_margin: Duration,
    /// Look-ups of an ambiguous create after its window closed before giving up.
    pub resolve_attempts: u32,
    /// Safety bound on pages followed by list queries.
    pub max_pages: u32,
    /// Seed of the jitter generator (`None`: from the wall clock).
    pub jitter_seed: Option<u64>,
}

impl PrivateRestConfig {
    /// Defaults for `base_url`: recv window 5 s, timeout 5 s, 5 attempts, backoff 200 ms → 5 s,
    /// Bybit's default rate limits, resolve margin 1 s with 5 look-ups, 20 pages.
    pub fn new(base_url: &str) -> Self {
        PrivateRestConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            recv_window_ms: 5_000,
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            rate_limits: RateLimits::default(),
            resolve_margin: Duration::from_secs(1),
            resolve_attempts: 5,
            max_pages: 20,
            jitter_seed: None,
        }
    }
}

/// How a placed order came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceOutcome {
    /// The create request was answered with success.
    Accepted,
    /// The create failed ambiguously and the order was found at the venue by its `orderLinkId`.
    Recovered,
    /// The venue rejected the create as a duplicate `orderLinkId`: the existing order is it.
    Duplicate,
}

/// Result of [`PrivateRest::create_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Venue order id.
    pub order_id: String,
    /// Client order id.
    pub order_link_id: String,
    /// How the order became known.
    pub outcome: PlaceOutcome,
    /// The order as looked up (for `Recovered` / `Duplicate`).
    pub order: Option<VenueOrder>,
    /// Create requests actually sent (1 unless re-sent after proven absence or a rejection
    /// that proves the venue did not process it).
    pub sends: u32,
}

/// Result of [`PrivateRest::cancel_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled.
    Cancelled(OrderAck),
    /// The venue does not know the order or it is already filled / cancelled (110001 / 110008).
    NotOpen {
        /// Bybit's retCode.
        code: i64,
    },
}

/// Result of [`PrivateRest::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentResult {
    /// `Intent::Place` / `Intent::Close`.
    Placed(Box<Placed>),
    /// `Intent::Cancel`.
    Cancel(CancelOutcome),
    /// `Intent::Amend`.
    Amended(OrderAck),
}

/// The venue clock as seen from here: `server ≈ local + offset`.
#[derive(Debug, Default)]
struct ServerClock {
    offset_ms: AtomicI64,
    synced: AtomicBool,
}

/// One failed attempt.
#[derive(Debug)]
struct Failure {
    err: BybitError,
    /// The request never reached the venue (connection refused, DNS): safe to re-send.
    not_sent: bool,
}

impl From<BybitError> for Failure {
    fn from(err: BybitError) -> Self {
        Failure { err, not_sent: false }
    }
}

/// True when a failed create may or may not have been executed.
fn create_is_ambiguous(f: &Failure) -> bool {
    if f.not_sent {
        return false;
    }
    match &f.err {
        BybitError::Timeout(_) | BybitError::Transport(_) => true,
        BybitError::Http { status, .. } | BybitError::NotJson { status, .. } => (500..=599).contains(status),
        BybitError::Api { code, .. } => matches!(code, 10000 | 10016),
        BybitError::Decode(_) => true,
    }
}

/// True when the venue certainly did not process the request (and will not later).
fn proven_unprocessed(f: &Failure) -> bool {
    f.not_sent
        || matches!(f.err, BybitError::Http { status: 429, .. })
        || matches!(f.err, BybitError::Api { code, .. } if code == CODE_RATE_LIMIT || code == 10018 || code == CODE_TIMESTAMP)
}

fn is_rate_limited(e: &BybitError) -> bool {
    matches!(e, BybitError::Http { status: 429, .. })
        || matches!(e, BybitError::Api { code, .. } if *code == CODE_RATE_LIMIT || *code == 10018)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn enc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k1=v1&k2=v2` in the given order (the exact string that is signed and sent).
pub fn query_string(pairs: &[(&str, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&")
}

const BODY_SNIPPET: usize = 200;

fn snippet(s: &str) -> String {
    s.chars().take(BODY_SNIPPET).collect()
}

/// Signed client for Bybit's private v5 REST endpoints.
pub struct PrivateRest {
    client: reqwest::Client,
    cfg: PrivateRestConfig,
    creds: Credentials,
    limiter: RateLimiter,
    clock: ServerClock,
    time: Arc<dyn TimeSource>,
    stats: Arc<PrivateStats>,
    rng: Mutex<SmallRng>,
    latency: Option<prometheus::Histogram>,
}

impl std::fmt::Debug for PrivateRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateRest").field("base_url", &self.cfg.base_url).field("creds", &self.creds).finish()
    }
}

enum Method {
    Get,
    Post,
}

impl PrivateRest {
    /// Client with default settings for `base_url`.
    pub fn new(base_url: &str, creds: Credentials) -> Result<Self, PrivateError> {
        Self::with_config(PrivateRestConfig::new(base_url), creds, Arc::new(PrivateStats::default()))
    }

    /// Client with explicit settings, counting into `stats`.
    pub fn with_config(
        cfg: PrivateRestConfig,
        creds: Credentials,
        stats: Arc<PrivateStats>,
    ) -> Result<Self, PrivateError> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| BybitError::Transport(e.to_string()))?;
        let seed = cfg.jitter_seed.unwrap_or_else(|| jitter_seed(0x5052_4956));
        Ok(PrivateRest {
            client,
            limiter: RateLimiter::new(&cfg.rate_limits),
            cfg,
            creds,
            clock: ServerClock::default(),
            time: Arc::new(SystemTimeSource),
            stats,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            latency: None,
        })
    }

    /// Observes every attempt's latency (request sent → body read) into `h`.
    pub fn with_latency(mut self, h: prometheus::Histogram) -> Self {
        self.latency = Some(h);
        self
    }

    /// Uses `time` as the local clock (the venue clock is `time + offset`).
    pub fn with_time_source(mut self, time: Arc<dyn TimeSource>) -> Self {
        self.time = time;
        self
    }

    /// Settings.
    pub fn config(&self) -> &PrivateRestConfig {
        &self.cfg
    }

    /// Shared counters.
    pub fn stats(&self) -> &Arc<PrivateStats> {
        &self.stats
    }

    /// The credentials (their `Debug` is redacted).
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Current estimate of the venue's clock, ms.
    pub fn server_now_ms(&self) -> TimeMs {
        self.time.now_ms() + self.clock.offset_ms.load(Ordering::Relaxed)
    }

    /// Estimated `server - local` clock offset, ms (0 before the first sync).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock.offset_ms.load(Ordering::Relaxed)
    }

    /// Measures the clock offset from `/v5/market/time` (midpoint of the round trip) and
    /// returns it.
    pub async fn sync_time(&self) -> Result<i64, PrivateError> {
        let mut last = None;
        for attempt in 0..self.cfg.max_attempts.max(1) {
            let before = self.time.now_ms();
            let r = self.get_public::<ServerTime>("/v5/market/time").await;
            let after = self.time.now_ms();
            match r.and_then(|t| t.to_ms()) {
                Ok(server) => {
                    let offset = server - (before + after) / 2;
                    self.clock.offset_ms.store(offset, Ordering::Relaxed);
                    self.clock.synced.store(true, Ordering::Relaxed);
                    PrivateStats::inc(&self.stats.time_syncs);
                    return Ok(offset);
                }
                Err(e) if e.is_retryable() => {
                    last = Some(e);
                    self.backoff(attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or_else(|| BybitError::Timeout("server time".into())).into())
    }

    async fn ensure_synced(&self) -> Result<(), PrivateError> {
        if !self.clock.synced.load(Ordering::Relaxed) {
            self.sync_time().await?;
        }
        Ok(())
    }

    async fn get_public<T: DeserializeOwned>(&self, path: &str) -> Result<T, BybitError> {
        PrivateStats::inc(&self.stats.rest_requests);
        let url = format!("{}{}", self.cfg.base_url, path);
        let resp = self.client.get(&url).send().await.map_err(|e| transport(&e).err)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| transport(&e).err)?;
        if !(200..300).contains(&status) {
            return Err(BybitError::Http { status, body: snippet(&body) });
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| BybitError::NotJson { status, body: snippet(&body) })?;
        envelope_result(v)
    }

    async fn backoff(&self, attempt: u32) {
        let unit = self.rng.lock().map(|mut r| r.random::<f64>()).unwrap_or(0.5);
        tokio::time::sleep(backoff_delay(self.cfg.backoff_base, self.cfg.backoff_max, attempt, unit)).await;
    }

    fn limit_status(&self, h: &reqwest::header::HeaderMap) -> LimitStatus {
        let num = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<i64>().ok());
        let reset_in = num("X-Bapi-Limit-Reset-Timestamp")
            .map(|ts| ts - self.server_now_ms())
            .filter(|d| *d > 0)
            .map(|d| Duration::from_millis(d as u64));
        LimitStatus {
            limit: num("X-Bapi-Limit").and_then(|v| u32::try_from(v).ok()),
            remaining: num("X-Bapi-Limit-Status").and_then(|v| u32::try_from(v).ok()),
            reset_in,
        }
    }

    /// One signed attempt. Returns the timestamp it was signed with and the outcome.
    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        payload: &str,
        group: EndpointGroup,
    ) -> (TimeMs, Result<T, Failure>) {
        let waited = self.limiter.acquire(group).await;
        if !waited.is_zero() {
            PrivateStats::inc(&self.stats.limiter_waits);
        }
        let ts = self.server_now_ms();
        let rw = self.cfg.recv_window_ms;
        let sign = self.creds.sign_rest(ts, rw, payload);
        PrivateStats::inc(&self.stats.rest_requests);
        let req = match method {
            Method::Get => {
                let url = if payload.is_empty() {
                    format!("{}{}", self.cfg.base_url, path)
                } else {
                    format!("{}{}?{}", self.cfg.base_url, path, payload)
                };
                self.client.get(url)
            }
            Method::Post => self
                .client
                .post(format!("{}{}", self.cfg.base_url, path))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(payload.to_string()),
        };
        let req = req
            .header(HEADER_API_KEY, self.creds.api_key())
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGN, sign)
            .header(HEADER_RECV_WINDOW, rw.to_string());
        let started = std::time::Instant::now();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return (ts, Err(transport(&e))),
        };
        let status = resp.status().as_u16();
        self.limiter.observe(group, self.limit_status(resp.headers()));
        let body = match resp.text().await {
            Ok(b) => {
                if let Some(h) = &self.latency {
                    h.observe(started.elapsed().as_secs_f64());
                }
                b
            }
            Err(e) => return (ts, Err(transport(&e))),
        };
        if !(200..300).contains(&status) {
            return (ts, Err(BybitError::Http { status, body: snippet(&self.redact(&body)) }.into()));
        }
        let v: serde_json::Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(_) => return (ts, Err(BybitError::NotJson { status, body: snippet(&self.redact(&body)) }.into())),
        };
        (ts, envelope_result(v).map_err(|e| Failure::from(self.redact_error(e))))
    }

    /// Exchange text without the API key or a signed `origin_string` (see
    /// [`redact_exchange_text`]).
    pub fn redact(&self, text: &str) -> String {
        redact_exchange_text(text, self.creds.api_key())
    }

    /// `e` with every exchange text in it redacted: a `retMsg` reaches logs, errors and the
    /// core's events (`RequestFailed`, `Unresolved`) from here.
    pub fn redact_error(&self, e: BybitError) -> BybitError {
        match e {
            BybitError::Api { code, msg } => BybitError::Api { code, msg: self.redact(&msg) },
            BybitError::Http { status, body } => BybitError::Http { status, body: self.redact(&body) },
            BybitError::NotJson { status, body } => BybitError::NotJson { status, body: self.redact(&body) },
            BybitError::Decode(m) => BybitError::Decode(self.redact(&m)),
            other => other,
        }
    }

    /// Bookkeeping after a failed attempt; returns whether to try again (after sleeping).
    async fn after_failure(&self, path: &str, group: EndpointGroup, f: &Failure, attempt: u32) -> bool {
        PrivateStats::inc(&self.stats.rest_errors);
        if is_rate_limited(&f.err) {
            PrivateStats::inc(&self.stats.rest_rate_limited);
            if matches!(f.err, BybitError::Api { .. }) {
                // The headers of this response already carried the reset time, if any.
                self.limiter.block(group, Duration::from_millis(100));
            }
        }
        if matches!(f.err, BybitError::Api { code: CODE_TIMESTAMP, .. }) {
            tracing::warn!(path, "request timestamp outside the receive window; resynchronising the clock");
            if self.sync_time().await.is_err() {
                return attempt + 1 < self.cfg.max_attempts;
            }
        }
        let retryable = f.not_sent
            || f.err.is_retryable()
            || matches!(f.err, BybitError::Api { code, .. } if code == CODE_TIMESTAMP || code == 10018);
        if !retryable || attempt + 1 >= self.cfg.max_attempts.max(1) {
            // "Already gone" and "not modified" answers are normal races, handled by the caller.
            let benign = matches!(f.err, BybitError::Api { code, .. }
                if code == CODE_ORDER_NOT_FOUND || code == CODE_ORDER_FINISHED || code == CODE_LEVERAGE_NOT_MODIFIED);
            if benign {
                tracing::debug!(path, attempt, error = %f.err, "bybit private REST request answered: order gone / nothing to change");
            } else {
                tracing::warn!(path, attempt, error = %f.err, "bybit private REST request failed");
            }
            return false;
        }
        PrivateStats::inc(&self.stats.rest_retries);
        if !matches!(f.err, BybitError::Api { code: CODE_TIMESTAMP, .. }) {
            self.backoff(attempt).await;
        }
        true
    }

    /// A signed call with the retry policy of idempotent requests.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        payload: &str,
        group: EndpointGroup,
    ) -> Result<T, BybitError> {
        let _ = self.ensure_synced().await;
        let mut attempt = 0;
        loop {
            let (_, r) = self.attempt::<T>(&method, path, payload, group).await;
            match r {
                Ok(v) => return Ok(v),
                Err(f) => {
                    if !self.after_failure(path, group, &f, attempt).await {
                        return Err(f.err);
                    }
                }
            }
            attempt += 1;
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &str) -> Result<T, BybitError> {
        let group = EndpointGroup::of_path(path).unwrap_or(EndpointGroup::OrderQuery);
        self.call(Method::Get, path, query, group).await
    }

    async fn post<T: DeserializeOwned, B: serde::Serialize>(&self, path: &str, body: &B) -> Result<T, BybitError> {
        let group = EndpointGroup::of_path(path).unwrap_or(EndpointGroup::Create);
        let json = serde_json::to_string(body).map_err(|e| BybitError::Decode(e.to_string()))?;
        self.call(Method::Post, path, &json, group).await
    }

    /// Follows `nextPageCursor` over a list endpoint (see [`collect_pages`]).
    async fn pages<R: DeserializeOwned>(&self, path: &str, base: Vec<(&str, String)>) -> Result<Vec<R>, BybitError> {
        collect_pages(path, self.cfg.max_pages, |cursor| {
            let mut q = base.clone();
            async move {
                if let Some(c) = cursor {
                    q.push(("cursor", c));
                }
                let page: Page<R> = self.get(path, &query_string(&q)).await?;
                Ok((page.list, page.next_page_cursor.0))
            }
        })
        .await
    }

    /// A list's items of our universe, typed; foreign ones (other categories, USDC contracts)
    /// skipped and counted. An item of our universe that does not decode fails the whole call
    /// (counted too): a snapshot missing a position must never pass for a complete one.
    fn universe<R: RawItem>(&self, path: &str, raw: &[R]) -> Result<Vec<R::Typed>, BybitError> {
        let sorted = sort_items(raw);
        self.stats.count_skipped(path, &sorted.skipped);
        if let Some(bad) = sorted.skipped.iter().find(|s| s.reason == SkipReason::Invalid) {
            return Err(BybitError::Decode(format!("{path}: {} {}: {}", R::TOPIC.as_str(), bad.symbol, bad.detail)));
        }
        Ok(sorted.kept)
    }

    // ------------------------------------------------------------------------------ account

    /// The unified account's wallet (`/v5/account/wallet-balance?accountType=UNIFIED`). A
    /// classic account (Bybit answers `accountType` `CONTRACT` with `totalEquity: ""`) is
    /// [`PrivateError::AccountUnsupported`], never an equity of 0.
    pub async fn wallet_balance(&self) -> Result<WalletBalance, PrivateError> {
        let r: WalletResult = self.get("/v5/account/wallet-balance", "accountType=UNIFIED").await?;
        let w = r.list.first().ok_or_else(|| BybitError::Decode("wallet-balance list is empty".into()))?;
        let w = w.typed().inspect_err(|_| PrivateStats::inc(&self.stats.skipped_wallet_invalid))?;
        if let Some(why) = w.not_unified_reason() {
            let n = self.stats.wallet_not_unified.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(60) {
                tracing::error!(account_type = %w.account_type, seen = n + 1, "{why}");
            }
            return Err(PrivateError::AccountUnsupported(why));
        }
        Ok(w)
    }

    /// Every USDT linear position, flat ones included as Bybit lists them
    /// (`/v5/position/list?category=linear&settleCoin=USDT`).
    pub async fn positions(&self) -> Result<Vec<VenuePosition>, PrivateError> {
        let raw: Vec<RawPosition> = self
            .pages(
                "/v5/position/list",
                vec![("category", "linear".into()), ("settleCoin", "USDT".into()), ("limit", "200".into())],
            )
            .await?;
        Ok(self.universe("/v5/position/list", &raw)?)
    }

    /// Position of one symbol (`None` when the venue lists nothing for it).
    pub async fn position(&self, symbol: &Symbol) -> Result<Option<VenuePosition>, PrivateError> {
        let raw: Vec<RawPosition> = self
            .pages("/v5/position/list", vec![("category", "linear".into()), ("symbol", symbol.as_str().into())])
            .await?;
        Ok(self.universe("/v5/position/list", &raw)?.into_iter().find(|p| &p.symbol == symbol))
    }

    // ------------------------------------------------------------------------------- orders

    /// Open orders (`/v5/order/realtime?category=linear&settleCoin=USDT`), or those of one symbol.
    pub async fn open_orders(&self, symbol: Option<&Symbol>) -> Result<Vec<VenueOrder>, PrivateError> {
        let mut q = vec![("category", "linear".to_string())];
        match symbol {
            Some(s) => q.push(("symbol", s.as_str().to_string())),
            None => q.push(("settleCoin", "USDT".to_string())),
        }
        q.push(("limit", "50".into()));
        let raw: Vec<RawOrder> = self.pages("/v5/order/realtime", q).await?;
        Ok(self.universe("/v5/order/realtime", &raw)?)
    }

    /// Looks an order up by `orderLinkId`: open orders, then recently closed ones
    /// (`openOnly=1`), then order history. `None` when none of them knows it.
    pub async fn order_by_link_id(&self, symbol: &Symbol, link_id: &str) -> Result<Option<VenueOrder>, PrivateError> {
        let sym = symbol.as_str().to_string();
        let link = link_id.to_string();
        let tries: [(&str, Vec<(&str, String)>); 3] = [
            (
                "/v5/order/realtime",
                vec![("category", "linear".into()), ("symbol", sym.clone()), ("orderLinkId", link.clone())],
            ),
            (
                "/v5/order/realtime",
                vec![
                    ("category", "linear".into()),
                    ("symbol", sym.clone()),
                    ("orderLinkId", link.clone()),
                    ("openOnly", "1".into()),
                ],
            ),
            ("/v5/order/history", vec![("category", "linear".into()), ("symbol", sym), ("orderLinkId", link)]),
        ];
        for (path, q) in tries {
            let page: Page<RawOrder> = self.get(path, &query_string(&q)).await?;
            if let Some(o) = self.universe(path, &page.list)?.into_iter().find(|o| o.order_link_id == link_id) {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Executions of USDT perpetuals since `start_ms`
    /// (`/v5/execution/list?category=linear&settleCoin=USDT`), oldest first (by time, then
    /// sequence, then id). USDT dated futures (and USDC contracts, should the venue ignore the
    /// filter) are skipped here (counted).
    pub async fn executions_since(&self, start_ms: TimeMs) -> Result<Vec<VenueExecution>, PrivateError> {
        let q = vec![
            ("category", "linear".to_string()),
            ("settleCoin", "USDT".to_string()),
            ("startTime", start_ms.to_string()),
            ("limit", "100".into()),
        ];
        let raw: Vec<RawExecution> = self.pages("/v5/execution/list", q).await?;
        let mut v = self.universe("/v5/execution/list", &raw)?;
        v.sort_by(|a, b| (a.exec_time_ms, a.seq, &a.exec_id).cmp(&(b.exec_time_ms, b.seq, &b.exec_id)));
        Ok(v)
    }

    /// Places an order (`/v5/order/create`) exactly once; see the module docs for how
    /// ambiguous failures and duplicate `orderLinkId`s are resolved.
    pub async fn create_order(&self, req: &OrderRequest) -> Result<Placed, PrivateError> {
        let body = CreateOrderBody::from_request(req).map_err(PrivateError::Invalid)?;
        let json = serde_json::to_string(&body).map_err(|e| PrivateError::Invalid(e.to_string()))?;
        self.ensure_synced().await?;
        let path = "/v5/order/create";
        let group = EndpointGroup::Create;
        let mut sends = 0u32;
        let mut attempt = 0u32;
        loop {
            sends += 1;
            PrivateStats::inc(&self.stats.creates_sent);
            let (ts, r) = self.attempt::<OrderAck>(&Method::Post, path, &json, group).await;
            let f = match r {
                Ok(ack) => {
                    return Ok(Placed {
                        order_id: ack.order_id,
                        order_link_id: ack.order_link_id,
                        outcome: PlaceOutcome::Accepted,
                        order: None,
                        sends,
                    })
                }
                Err(f) => f,
            };
            if let BybitError::Api { code: CODE_DUPLICATE_LINK_ID, .. } = f.err {
                PrivateStats::inc(&self.stats.creates_duplicate);
                let found = self.lookup_with_retries(req).await?;
                return match found {
                    Some(o) => Ok(Placed {
                        order_id: o.order_id.clone(),
                        order_link_id: o.order_link_id.clone(),
                        outcome: PlaceOutcome::Duplicate,
                        order: Some(o),
                        sends,
                    }),
                    None => Err(f.err.into()),
                };
            }
            if create_is_ambiguous(&f) {
                PrivateStats::inc(&self.stats.creates_ambiguous);
                tracing::warn!(order_link_id = %req.client_id, error = %f.err, "order create failed ambiguously; resolving by orderLinkId");
                match self.resolve_create(req, ts, &f.err).await? {
                    Some(o) => {
                        PrivateStats::inc(&self.stats.creates_recovered);
                        return Ok(Placed {
                            order_id: o.order_id.clone(),
                            order_link_id: o.order_link_id.clone(),
                            outcome: PlaceOutcome::Recovered,
                            order: Some(o),
                            sends,
                        });
                    }
                    None => {
                        PrivateStats::inc(&self.stats.creates_resent);
                        tracing::info!(order_link_id = %req.client_id, "order provably absent; sending it again");
                        attempt += 1;
                        if attempt >= self.cfg.max_attempts.max(1) {
                            return Err(f.err.into());
                        }
                        continue;
                    }
                }
            }
            if proven_unprocessed(&f) {
                if !self.after_failure(path, group, &f, attempt).await {
                    return Err(f.err.into());
                }
                attempt += 1;
                continue;
            }
            PrivateStats::inc(&self.stats.rest_errors);
            return Err(f.err.into());
        }
    }

    async fn lookup_with_retries(&self, req: &OrderRequest) -> Result<Option<VenueOrder>, PrivateError> {
        let mut last = None;
        for attempt in 0..self.cfg.resolve_attempts.max(1) {
            match self.order_by_link_id(&req.symbol, &req.client_id).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    last = Some(e);
                    self.backoff(attempt).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| PrivateError::Invalid("no look-up attempted".into())))
    }

    /// Finds out whether an ambiguously failed create exists. `Some` = it does; `None` = it
    /// provably does not (its receive window has closed and no look-up finds it).
    async fn resolve_create(
        &self,
        req: &OrderRequest,
        sent_ts: TimeMs,
        cause: &BybitError,
    ) -> Result<Option<VenueOrder>, PrivateError> {
        if let Ok(Some(o)) = self.order_by_link_id(&req.symbol, &req.client_id).await {
            return Ok(Some(o));
        }
        let closes_at = sent_ts + self.cfg.recv_window_ms as i64 + self.cfg.resolve_margin.as_millis() as i64;
        let wait = closes_at - self.server_now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let mut last_err = cause.to_string();
        for attempt in 0..self.cfg.resolve_attempts.max(1) {
            match self.order_by_link_id(&req.symbol, &req.client_id).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    last_err = e.to_string();
                    self.backoff(attempt).await;
                }
            }
        }
        Err(PrivateError::Unresolved { order_link_id: req.client_id.clone(), last_error: last_err })
    }

    /// Amends a working order by `orderLinkId` (`/v5/order/amend`).
    pub async fn amend_order(
        &self,
        symbol: &Symbol,
        link_id: &str,
        price: Option<Price>,
        trigger: Option<Price>,
        qty: Option<Qty>,
    ) -> Result<OrderAck, PrivateError> {
        let body = AmendOrderBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            order_link_id: link_id.to_string(),
            qty: qty.map(|q| q.to_string()),
            price: price.map(|p| p.to_string()),
            trigger_price: trigger.map(|p| p.to_string()),
        };
        Ok(self.post("/v5/order/amend", &body).await?)
    }

    /// Cancels an order by `orderLinkId` (`/v5/order/cancel`). An order the venue no longer
    /// has open is [`CancelOutcome::NotOpen`], not an error.
    pub async fn cancel_order(&self, symbol: &Symbol, link_id: &str) -> Result<CancelOutcome, PrivateError> {
        let body = CancelOrderBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            order_link_id: link_id.to_string(),
        };
        match self.post::<OrderAck, _>("/v5/order/cancel", &body).await {
            Ok(ack) => Ok(CancelOutcome::Cancelled(ack)),
            Err(BybitError::Api { code, .. }) if code == CODE_ORDER_NOT_FOUND || code == CODE_ORDER_FINISHED => {
                Ok(CancelOutcome::NotOpen { code })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Cancels every open order of `symbol`, or of every USDT contract (`/v5/order/cancel-all`).
    pub async fn cancel_all(&self, symbol: Option<&Symbol>) -> Result<Vec<OrderAck>, PrivateError> {
        let body = CancelAllBody {
            category: "linear",
            symbol: symbol.map(|s| s.as_str().to_string()),
            settle_coin: symbol.is_none().then_some("USDT"),
        };
        let r: CancelAllResult = self.post("/v5/order/cancel-all", &body).await?;
        Ok(r.list)
    }

    /// Sets the leverage of a symbol (both sides). `Ok(false)` when it already had it (110043).
    pub async fn set_leverage(&self, symbol: &Symbol, leverage: Fixed) -> Result<bool, PrivateError> {
        let l = leverage.to_string();
        let body = SetLeverageBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            buy_leverage: l.clone(),
            sell_leverage: l,
        };
        match self.post::<serde_json::Value, _>("/v5/position/set-leverage", &body).await {
            Ok(_) => Ok(true),
            Err(BybitError::Api { code: CODE_LEVERAGE_NOT_MODIFIED, .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets (or with `Price::ZERO` cancels) the full-position take profit and stop loss,
    /// triggered by the last price (`/v5/position/trading-stop`).
    pub async fn set_trading_stop(
        &self,
        symbol: &Symbol,
        take_profit: Option<Price>,
        stop_loss: Option<Price>,
    ) -> Result<(), PrivateError> {
        if take_profit.is_none() && stop_loss.is_none() {
            return Err(PrivateError::Invalid("trading-stop needs a take profit or a stop loss".into()));
        }
        let body = TradingStopBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            tpsl_mode: "Full",
            position_idx: 0,
            take_profit: take_profit.map(|p| p.to_string()),
            stop_loss: stop_loss.map(|p| p.to_string()),
            tp_trigger_by: take_profit.map(|_| "LastPrice"),
            sl_trigger_by: stop_loss.map(|_| "LastPrice"),
        };
        self.post::<serde_json::Value, _>("/v5/position/trading-stop", &body).await?;
        Ok(())
    }

    /// Carries out one core [`Intent`]: `Place` and `Close` (a reduce-only market order on the
    /// opposite side) through [`PrivateRest::create_order`], `Cancel`, `Amend`.
    pub async fn submit(&self, intent: &Intent) -> Result<IntentResult, PrivateError> {
        match intent {
            Intent::Place(req) => Ok(IntentResult::Placed(Box::new(self.create_order(req).await?))),
            Intent::Close { symbol, position_side, qty, client_id, .. } => {
                let req = OrderRequest {
                    client_id: client_id.clone(),
                    symbol: symbol.clone(),
                    side: match position_side {
                        Side::Buy => Side::Sell,
                        Side::Sell => Side::Buy,
                    },
                    kind: OrderKind::Market,
                    qty: *qty,
                    reduce_only: true,
                };
                Ok(IntentResult::Placed(Box::new(self.create_order(&req).await?)))
            }
            Intent::Cancel { symbol, client_id } => {
                Ok(IntentResult::Cancel(self.cancel_order(symbol, client_id).await?))
            }
            Intent::Amend { symbol, client_id, price, trigger, qty } => {
                Ok(IntentResult::Amended(self.amend_order(symbol, client_id, *price, *trigger, *qty).await?))
            }
        }
    }
}

fn transport(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure { err: BybitError::Timeout(error_chain(e)), not_sent: false }
    } else if e.is_connect() {
        Failure { err: BybitError::Transport(format!("connect: {}", error_chain(e))), not_sent: true }
    } else {
        Failure { err: BybitError::Transport(error_chain(e)), not_sent: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_encoded_in_order() {
        let q = query_string(&[("category", "linear".into()), ("orderLinkId", "a b/c".into()), ("limit", "50".into())]);
        assert_eq!(q, "category=linear&orderLinkId=a%20b%2Fc&limit=50");
    }

    #[test]
    fn create_failures_are_classified() {
        let f = |err| Failure { err, not_sent: false };
        assert!(create_is_ambiguous(&f(BybitError::Timeout("t".into()))));
        assert!(create_is_ambiguous(&f(BybitError::Http { status: 502, body: String::new() })));
        assert!(create_is_ambiguous(&f(BybitError::Api { code: 10016, msg: String::new() })));
        assert!(!create_is_ambiguous(&f(BybitError::Http { status: 429, body: String::new() })));
        assert!(!create_is_ambiguous(&f(BybitError::Api { code: 110007, msg: String::new() })));
        assert!(!create_is_ambiguous(&Failure { err: BybitError::Transport("connect".into()), not_sent: true }));
        assert!(proven_unprocessed(&f(BybitError::Http { status: 429, body: String::new() })));
        assert!(proven_unprocessed(&f(BybitError::Api { code: 10006, msg: String::new() })));
        assert!(proven_unprocessed(&f(BybitError::Api { code: 10002, msg: String::new() })));
        assert!(!proven_unprocessed(&f(BybitError::Http { status: 503, body: String::new() })));
        assert!(!proven_unprocessed(&f(BybitError::Api { code: 10004, msg: String::new() })));
    }
}
