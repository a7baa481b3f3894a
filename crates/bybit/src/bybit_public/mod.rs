//! Bybit v5 public market-data connector (linear USDT perpetuals).
//!
//! - [`messages`]: serde types for the v5 REST envelope, instruments, order book, tickers, server
//!   time and every public WebSocket frame we use, with exact conversions into
//!   [`scalper_core::market::data`] types.
//! - [`rest`]: [`PublicRest`], a reqwest client with timeouts, typed errors and bounded retries
//!   with exponential backoff and jitter.
//! - [`ws`]: [`PublicFeed`], the public WebSocket feed spread over several connections, with
//!   acknowledged subscriptions, heartbeats, reconnects with full resubscription and run-time
//!   subscribe / unsubscribe / resync commands.
//!
//! The same code talks to `api.bybit.com` and to the loopback simulator; only the base URLs
//! differ (see [`scalper_core::config::Endpoints`]).

pub mod messages;
pub mod rest;
pub mod ws;

pub use crate::error::{error_chain, BybitError};
pub use rest::{PublicRest, RestConfig};
pub use ws::{FeedCommandError, FeedConfig, FeedHandle, FeedStatus, PublicFeed, StreamSet, Subscription};

use scalper_core::domain::TimeMs;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the public connector, shared (via `Arc`) by the REST client and the WS feed so
/// metrics can read them at any time. All counters only grow.
#[derive(Debug, Default)]
pub struct ConnectorStats {
    /// REST requests sent (every attempt).
    pub rest_requests: AtomicU64,
    /// REST attempts that failed (any error).
    pub rest_errors: AtomicU64,
    /// REST attempts that were retried after a retryable error.
    pub rest_retries: AtomicU64,
    /// REST attempts answered with HTTP 429 or Bybit's rate-limit code.
    pub rest_rate_limited: AtomicU64,
    /// WS frames received (text frames, including acks and pongs).
    pub ws_frames: AtomicU64,
    /// WS frames that could not be parsed.
    pub ws_malformed: AtomicU64,
    /// WS connection attempts that failed or connections that dropped.
    pub ws_disconnects: AtomicU64,
    /// Successful WS (re)connections after the first one of each connection.
    pub ws_reconnects: AtomicU64,
    /// Subscribe requests sent.
    pub ws_subscribe_requests: AtomicU64,
    /// Negative or missing subscribe / unsubscribe acknowledgements.
    pub ws_ack_failures: AtomicU64,
    /// Topics given up on after every retry failed.
    pub ws_topics_failed: AtomicU64,
    /// Heartbeat pings sent.
    pub ws_pings: AtomicU64,
    /// Heartbeat pongs received.
    pub ws_pongs: AtomicU64,
    /// Heartbeat or data timeouts that forced a reconnect.
    pub ws_timeouts: AtomicU64,
    /// Market-data events handed to the output queue.
    pub ws_events: AtomicU64,
    /// Times the output queue was full and the feed had to wait.
    pub ws_queue_full: AtomicU64,
    /// Values refused by the decoders' sanity checks, indexed
    /// `[RefusalStream as usize][RefusalReason as usize]` (see [`messages::Refusals`]).
    pub refused: [[AtomicU64; REFUSAL_REASONS]; REFUSAL_STREAMS],
}

/// Number of [`messages::RefusalStream`]s.
pub const REFUSAL_STREAMS: usize = messages::RefusalStream::ALL.len();
/// Number of [`messages::RefusalReason`]s.
pub const REFUSAL_REASONS: usize = messages::RefusalReason::ALL.len();
/// Minimum time between two "refused public data" warnings (all sources together).
const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// Throttle of the refusal warning (process-wide); what it holds back is counted in refusals.
static REFUSAL_LOG: std::sync::LazyLock<crate::LogGate> =
    std::sync::LazyLock::new(|| crate::LogGate::new(REFUSAL_LOG_INTERVAL));

/// A plain copy of [`ConnectorStats`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// [`ConnectorStats::rest_requests`].
    pub rest_requests: u64,
    /// [`ConnectorStats::rest_errors`].
    pub rest_errors: u64,
    /// [`ConnectorStats::rest_retries`].
    pub rest_retries: u64,
    /// [`ConnectorStats::rest_rate_limited`].
    pub rest_rate_limited: u64,
    /// [`ConnectorStats::ws_frames`].
    pub ws_frames: u64,
    /// [`ConnectorStats::ws_malformed`].
    pub ws_malformed: u64,
    /// [`ConnectorStats::ws_disconnects`].
    pub ws_disconnects: u64,
    /// [`ConnectorStats::ws_reconnects`].
    pub ws_reconnects: u64,
    /// [`ConnectorStats::ws_subscribe_requests`].
    pub ws_subscribe_requests: u64,
    /// [`ConnectorStats::ws_ack_failures`].
    pub ws_ack_failures: u64,
    /// [`ConnectorStats::ws_topics_failed`].
    pub ws_topics_failed: u64,
    /// [`ConnectorStats::ws_pings`].
    pub ws_pings: u64,
    /// [`ConnectorStats::ws_pongs`].
    pub ws_pongs: u64,
    /// [`ConnectorStats::ws_timeouts`].
    pub ws_timeouts: u64,
    /// [`ConnectorStats::ws_events`].
    pub ws_events: u64,
    /// [`ConnectorStats::ws_queue_full`].
    pub ws_queue_full: u64,
    /// [`ConnectorStats::refused`].
    pub refused: [[u64; REFUSAL_REASONS]; REFUSAL_STREAMS],
}

impl ConnectorStats {
    /// Adds one to a counter.
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            rest_requests: r(&self.rest_requests),
            rest_errors: r(&self.rest_errors),
            rest_retries: r(&self.rest_retries),
            rest_rate_limited: r(&self.rest_rate_limited),
            ws_frames: r(&self.ws_frames),
            ws_malformed: r(&self.ws_malformed),
            ws_disconnects: r(&self.ws_disconnects),
            ws_reconnects: r(&self.ws_reconnects),
            ws_subscribe_requests: r(&self.ws_subscribe_requests),
            ws_ack_failures: r(&self.ws_ack_failures),
            ws_topics_failed: r(&self.ws_topics_failed),
            ws_pings: r(&self.ws_pings),
            ws_pongs: r(&self.ws_pongs),
            ws_timeouts: r(&self.ws_timeouts),
            ws_events: r(&self.ws_events),
            ws_queue_full: r(&self.ws_queue_full),
            refused: std::array::from_fn(|i| std::array::from_fn(|j| r(&self.refused[i][j]))),
        }
    }

    /// Counts what the decoders refused and logs it, at most one warning per
    /// [`REFUSAL_LOG_INTERVAL`] (the refusals in between are reported as `suppressed`).
    /// `source` names the caller (a connection, a REST path).
    pub fn record_refusals(&self, r: &messages::Refusals, source: &str) {
        if r.is_empty() {
            return;
        }
        for (stream, reason, n) in r.iter() {
            self.refused[stream as usize][reason as usize].fetch_add(n, Ordering::Relaxed);
        }
        if let Some(suppressed) = REFUSAL_LOG.pass_n(r.total()) {
            let kinds: Vec<String> =
                r.iter().map(|(s, why, n)| format!("{}/{}={n}", s.as_str(), why.as_str())).collect();
            tracing::warn!(
                source, refused = %kinds.join(","), first = r.first().unwrap_or(""), suppressed,
                "refused public market data that Bybit never sends"
            );
        }
    }
}

/// Source of the local receive time stamped on every event (`EventTime::recv_ms`). Injectable
/// so tests control it; any `Fn() -> TimeMs` closure is one.
pub trait TimeSource: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> TimeMs;
}

/// The system wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTimeSource;

impl TimeSource for SystemTimeSource {
    fn now_ms(&self) -> TimeMs {
        crate::clock::wall_ms()
    }
}

impl<F: Fn() -> TimeMs + Send + Sync + 'static> TimeSource for F {
    fn now_ms(&self) -> TimeMs {
        self()
    }
}

/// Exponential backoff with "equal jitter": attempt `n` (0-based) waits a uniformly random time
/// in `[d/2, d]` where `d = min(max, base * 2^n)`. `unit` is a uniform random number in `[0, 1)`.
pub fn backoff_delay(
    base: std::time::Duration,
    max: std::time::Duration,
    attempt: u32,
    unit: f64,
) -> std::time::Duration {
    let factor = 2u32.saturating_pow(attempt.min(30));
    let d = base.saturating_mul(factor).min(max);
    let half = d / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// Seed for jitter generators: the wall-clock nanoseconds mixed with a salt (jitter only needs
/// to differ between processes and connections, not to be unpredictable).
pub(crate) fn jitter_seed(salt: u64) -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_caps_with_jitter_bounds() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        assert_eq!(backoff_delay(base, max, 0, 0.0), Duration::from_millis(50));
        assert_eq!(backoff_delay(base, max, 0, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(base, max, 3, 0.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(base, max, 3, 0.5), Duration::from_millis(600));
        // Capped at max, and never more than max.
        assert_eq!(backoff_delay(base, max, 10, 1.0), max);
        assert_eq!(backoff_delay(base, max, u32::MAX, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn retryable_classification() {
        let http = |status| BybitError::Http { status, body: String::new() };
        assert!(http(429).is_retryable());
        assert!(http(503).is_retryable());
        assert!(!http(403).is_retryable());
        assert!(!http(404).is_retryable());
        assert!(BybitError::Api { code: 10006, msg: "Too many visits!".into() }.is_retryable());
        assert!(!BybitError::Api { code: 10001, msg: "params error".into() }.is_retryable());
        assert!(BybitError::Timeout("x".into()).is_retryable());
        assert!(!BybitError::Decode("x".into()).is_retryable());
        assert_eq!(http(403).http_status(), Some(403));
    }

    #[test]
    fn closures_are_time_sources() {
        let t = || 42;
        assert_eq!(TimeSource::now_ms(&t), 42);
        assert!(SystemTimeSource.now_ms() > 1_600_000_000_000);
    }
}
