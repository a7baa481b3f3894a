//! Client-side rate limiting of the private REST API: one token bucket per endpoint group,
//! refilled continuously at Bybit's documented per-second limit, and tightened by what the venue
//! reports in `X-Bapi-Limit-Status` / `X-Bapi-Limit-Reset-Timestamp` (when the venue says no
//! request is left, the group is blocked until the reset time).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Endpoints sharing one Bybit rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointGroup {
    /// `POST /v5/order/create`.
    Create,
    /// `POST /v5/order/amend`.
    Amend,
    /// `POST /v5/order/cancel`.
    Cancel,
    /// `POST /v5/order/cancel-all`.
    CancelAll,
    /// `GET /v5/order/realtime` and `/v5/order/history`.
    OrderQuery,
    /// `GET /v5/execution/list`.
    Execution,
    /// `GET /v5/position/list`.
    Position,
    /// `GET /v5/account/wallet-balance`.
    Account,
    /// `POST /v5/position/set-leverage`.
    Leverage,
    /// `POST /v5/position/trading-stop`.
    TradingStop,
}

impl EndpointGroup {
    /// Every group.
    pub const ALL: [EndpointGroup; 10] = [
        EndpointGroup::Create,
        EndpointGroup::Amend,
        EndpointGroup::Cancel,
        EndpointGroup::CancelAll,
        EndpointGroup::OrderQuery,
        EndpointGroup::Execution,
        EndpointGroup::Position,
        EndpointGroup::Account,
        EndpointGroup::Leverage,
        EndpointGroup::TradingStop,
    ];

    /// The group of a private REST path.
    pub fn of_path(path: &str) -> Option<EndpointGroup> {
        Some(match path {
            "/v5/order/create" => EndpointGroup::Create,
            "/v5/order/amend" => EndpointGroup::Amend,
            "/v5/order/cancel" => EndpointGroup::Cancel,
            "/v5/order/cancel-all" => EndpointGroup::CancelAll,
            "/v5/order/realtime" | "/v5/order/history" => EndpointGroup::OrderQuery,
            "/v5/execution/list" => EndpointGroup::Execution,
            "/v5/position/list" => EndpointGroup::Position,
            "/v5/account/wallet-balance" => EndpointGroup::Account,
            "/v5/position/set-leverage" => EndpointGroup::Leverage,
            "/v5/position/trading-stop" => EndpointGroup::TradingStop,
            _ => return None,
        })
    }

    /// Bybit's default limit for linear contracts, requests per second per UID: 10 for order
    /// entry, leverage and trading-stop; 50 for queries.
    pub fn default_rate(self) -> u32 {
        match self {
            EndpointGroup::Create
            | EndpointGroup::Amend
            | EndpointGroup::Cancel
            | EndpointGroup::CancelAll
            | EndpointGroup::Leverage
            | EndpointGroup::TradingStop => 10,
            EndpointGroup::OrderQuery | EndpointGroup::Execution | EndpointGroup::Position | EndpointGroup::Account => {
                50
            }
        }
    }
}

/// Requests per second allowed per group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    per_second: BTreeMap<EndpointGroup, u32>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { per_second: EndpointGroup::ALL.iter().map(|g| (*g, g.default_rate())).collect() }
    }
}

impl RateLimits {
    /// Limit of a group (requests per second, >= 1).
    pub fn get(&self, g: EndpointGroup) -> u32 {
        self.per_second.get(&g).copied().unwrap_or_else(|| g.default_rate()).max(1)
    }
    /// Sets the limit of a group.
    pub fn set(&mut self, g: EndpointGroup, per_second: u32) -> &mut Self {
        self.per_second.insert(g, per_second.max(1));
        self
    }
}

/// What a response said about the limit of its endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitStatus {
    /// `X-Bapi-Limit`: the limit of the endpoint.
    pub limit: Option<u32>,
    /// `X-Bapi-Limit-Status`: requests left in the current window.
    pub remaining: Option<u32>,
    /// Time until `X-Bapi-Limit-Reset-Timestamp` (server clock), when in the future.
    pub reset_in: Option<Duration>,
}

/// A token bucket with an optional hard block (venue said "nothing left until T").
#[derive(Debug, Clone)]
pub struct Bucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl Bucket {
    /// Full bucket of `per_second` tokens refilled at `per_second` per second.
    pub fn new(per_second: u32, now: Instant) -> Bucket {
        let c = per_second.max(1) as f64;
        Bucket::with_burst(c, c, now)
    }

    /// Full bucket of `burst` tokens (at least 1) refilled at `rate_per_s` per second (a
    /// non-positive or non-finite rate counts as 1).
    pub fn with_burst(rate_per_s: f64, burst: f64, now: Instant) -> Bucket {
        let rate = if rate_per_s.is_finite() && rate_per_s > 0.0 { rate_per_s } else { 1.0 };
        let capacity = if burst.is_finite() { burst.max(1.0) } else { 1.0 };
        Bucket { capacity, rate, tokens: capacity, last: now, blocked_until: None }
    }

    /// Waits until a token is available and takes it.
    pub async fn take(bucket: &Mutex<Bucket>) {
        loop {
            let wait = match bucket.lock() {
                Ok(mut b) => b.try_take(Instant::now()),
                // A panicked holder cannot have left the bucket half-updated in a harmful way.
                Err(poisoned) => poisoned.into_inner().try_take(Instant::now()),
            };
            match wait {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Takes one token now, or says how long to wait before trying again.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(missing / self.rate).max(Duration::from_millis(1)))
        }
    }

    /// Applies what the venue reported: never more tokens than it says are left, and a hard
    /// block until the reset time when nothing is left.
    pub fn observe(&mut self, now: Instant, s: LimitStatus) {
        self.refill(now);
        if let Some(rem) = s.remaining {
            self.tokens = self.tokens.min(rem as f64);
            if rem == 0 {
                let wait = s.reset_in.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(60));
                self.block_for(now, wait);
            }
        }
    }

    /// Blocks the bucket for `d` (after a rate-limit rejection).
    pub fn block_for(&mut self, now: Instant, d: Duration) {
        let until = now + d;
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        self.tokens = 0.0;
    }

    /// Tokens available now (for tests and metrics).
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        if self.blocked_until.is_some_and(|u| now < u) {
            0.0
        } else {
            self.tokens
        }
    }
}

/// One bucket per [`EndpointGroup`].
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<BTreeMap<EndpointGroup, Bucket>>,
}

impl RateLimiter {
    /// Full buckets for `limits`.
    pub fn new(limits: &RateLimits) -> RateLimiter {
        let now = Instant::now();
        let buckets = EndpointGroup::ALL.iter().map(|g| (*g, Bucket::new(limits.get(*g), now))).collect();
        RateLimiter { buckets: Mutex::new(buckets) }
    }

    fn with<T>(&self, g: EndpointGroup, f: impl FnOnce(&mut Bucket, Instant) -> T) -> Option<T> {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        b.get_mut(&g).map(|bucket| f(bucket, Instant::now()))
    }

    /// Waits for a token of `g`; returns the time waited.
    pub async fn acquire(&self, g: EndpointGroup) -> Duration {
        let start = Instant::now();
        loop {
            match self.with(g, |b, now| b.try_take(now)) {
                Some(Err(wait)) => tokio::time::sleep(wait).await,
                _ => return start.elapsed(),
            }
        }
    }

    /// Applies the venue's limit headers of a response of `g`.
    pub fn observe(&self, g: EndpointGroup, s: LimitStatus) {
        self.with(g, |b, now| b.observe(now, s));
    }

    /// Blocks `g` for `d` (after a 10006 / 429 without usable headers).
    pub fn block(&self, g: EndpointGroup, d: Duration) {
        self.with(g, |b, now| b.block_for(now, d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_of_paths_and_defaults() {
        assert_eq!(EndpointGroup::of_path("/v5/order/create"), Some(EndpointGroup::Create));
        assert_eq!(EndpointGroup::of_path("/v5/order/history"), Some(EndpointGroup::OrderQuery));
        assert_eq!(EndpointGroup::of_path("/v5/market/time"), None);
        let mut l = RateLimits::default();
        assert_eq!(l.get(EndpointGroup::Create), 10);
        assert_eq!(l.get(EndpointGroup::Position), 50);
        l.set(EndpointGroup::Create, 0);
        assert_eq!(l.get(EndpointGroup::Create), 1);
    }

    #[test]
    fn bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(4, t0);
        for _ in 0..4 {
            assert!(b.try_take(t0).is_ok());
        }
        let wait = b.try_take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(250));
        assert!(b.try_take(t0 + Duration::from_millis(249)).is_err());
        assert!(b.try_take(t0 + Duration::from_millis(250)).is_ok());
        // Never more than the capacity.
        assert!((b.available(t0 + Duration::from_secs(100)) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn a_burst_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::with_burst(10.0, 3.0, t0);
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        // The fourth at once: a tenth of a second away.
        assert_eq!(b.try_take(t0).unwrap_err(), Duration::from_millis(100));
        // After a long pause the bucket is full again, never fuller.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
        assert!((Bucket::with_burst(f64::NAN, 0.0, t0).available(t0) - 1.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn take_waits_for_the_rate() {
        let b = Mutex::new(Bucket::with_burst(50.0, 1.0, Instant::now()));
        let t0 = Instant::now();
        for _ in 0..3 {
            Bucket::take(&b).await;
        }
        // One at once, then one every 20 ms: never faster than the rate.
        let waited = Instant::now() - t0;
        assert!(waited >= Duration::from_millis(39), "{waited:?}");
        let left = b.lock().map(|mut x| x.available(Instant::now())).unwrap_or(1.0);
        assert!(left < 1.0, "the last token was taken: {left}");
    }

    #[test]
    fn venue_headers_tighten_and_block() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, t0);
        b.observe(t0, LimitStatus { limit: Some(10), remaining: Some(2), reset_in: None });
        assert!((b.available(t0) - 2.0).abs() < 1e-9);
        b.observe(t0, LimitStatus { limit: Some(10), remaining: Some(0), reset_in: Some(Duration::from_millis(700)) });
        assert_eq!(b.try_take(t0 + Duration::from_millis(100)), Err(Duration::from_millis(600)));
        assert!(b.try_take(t0 + Duration::from_millis(700)).is_ok());
    }

    #[tokio::test]
    async fn acquire_spaces_requests_out() {
        let mut limits = RateLimits::default();
        limits.set(EndpointGroup::Create, 100);
        let l = RateLimiter::new(&limits);
        let start = Instant::now();
        for _ in 0..115 {
            l.acquire(EndpointGroup::Create).await;
        }
        // 100 at once, then 15 more at 100/s.
        let el = start.elapsed();
        assert!(el >= Duration::from_millis(140) && el <= Duration::from_secs(2), "{el:?}");
        // Other groups are independent.
        let t = Instant::now();
        l.acquire(EndpointGroup::Position).await;
        assert!(t.elapsed() < Duration::from_millis(50));
        l.block(EndpointGroup::Position, Duration::from_millis(120));
        let t = Instant::now();
        l.acquire(EndpointGroup::Position).await;
        assert!(t.elapsed() >= Duration::from_millis(120));
    }
}
