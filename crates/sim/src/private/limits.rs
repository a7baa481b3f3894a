//! Per-key, per-endpoint-group request rate limits with Bybit's limit headers. Separate because
//! it is a wall-clock budget in front of the account, independent of what the request does.

use super::PrivateState;
use scalper_bybit::bybit_private::limiter::EndpointGroup;

/// Rate-limit window of one (key, group).
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    start: std::time::Instant,
    used: u32,
}

/// Limit headers of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_ms: i64,
}

impl PrivateState {
    /// Counts a request against the rate limit of (`key`, `group`): `Err` when exhausted.
    pub fn rate_limit(&mut self, key: &str, group: EndpointGroup, now_ms: i64) -> Result<LimitHeaders, LimitHeaders> {
        let limit = self.cfg.rate_limits.get(group);
        let now = std::time::Instant::now();
        let w = self.windows.entry((key.to_string(), group)).or_insert(Window { start: now, used: 0 });
        let elapsed = now.duration_since(w.start);
        if elapsed >= std::time::Duration::from_secs(1) {
            *w = Window { start: now, used: 0 };
        }
        let reset_ms = now_ms + 1_000 - now.duration_since(w.start).as_millis() as i64;
        if w.used >= limit {
            self.counters.rate_limited += 1;
            return Err(LimitHeaders { limit, remaining: 0, reset_ms });
        }
        w.used += 1;
        Ok(LimitHeaders { limit, remaining: limit - w.used, reset_ms: now_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::super::PrivateConfig;
    use super::*;

    #[test]
    fn rate_limit_window() {
        let mut cfg = PrivateConfig::default();
        cfg.rate_limits.set(EndpointGroup::Create, 3);
        let mut s = PrivateState::new(cfg, 1);
        for left in [2, 1, 0] {
            assert_eq!(s.rate_limit("k", EndpointGroup::Create, 1_000).unwrap().remaining, left);
        }
        let e = s.rate_limit("k", EndpointGroup::Create, 1_000).unwrap_err();
        assert_eq!((e.remaining, e.limit), (0, 3));
        assert!(e.reset_ms > 1_000 && e.reset_ms <= 2_000);
        // Other keys and groups have their own windows.
        assert!(s.rate_limit("other", EndpointGroup::Create, 1_000).is_ok());
        assert!(s.rate_limit("k", EndpointGroup::Position, 1_000).is_ok());
        assert_eq!(s.counters.rate_limited, 1);
    }
}
