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
//!
//! This module holds the client, its settings and the failure classification; the request
//! layer (signing, retries, paging) is in `transport`, the read-only endpoints in `queries`
//! and the state-changing ones in `trading`.

mod queries;
mod trading;
mod transport;

use super::limiter::{RateLimiter, RateLimits};
use super::messages::{OrderAck, VenueOrder, CODE_RATE_LIMIT, CODE_TIMESTAMP};
use super::sign::Credentials;
use super::{PrivateError, PrivateStats};
use crate::bybit_public::messages::ServerTime;
use crate::bybit_public::{error_chain, jitter_seed, BybitError, SystemTimeSource, TimeSource};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use scalper_core::domain::TimeMs;
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
