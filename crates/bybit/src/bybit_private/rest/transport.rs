//! The request layer of [`PrivateRest`]: one signed attempt, the retry policy around it
//! (backoff, clock resync, rate-limit feedback), paging and the USDT-perpetual universe filter
//! of list results. Every endpoint method goes through here; kept apart from the endpoints so
//! that the retry rules read in one place.

use super::{is_rate_limited, query_string, snippet, transport, Failure, Method, PrivateRest};
use crate::bybit_private::limiter::{EndpointGroup, LimitStatus};
use crate::bybit_private::messages::{
    sort_items, Page, RawItem, SkipReason, CODE_LEVERAGE_NOT_MODIFIED, CODE_ORDER_FINISHED, CODE_ORDER_NOT_FOUND,
    CODE_TIMESTAMP,
};
use crate::bybit_private::sign::{
    redact_exchange_text, HEADER_API_KEY, HEADER_RECV_WINDOW, HEADER_SIGN, HEADER_TIMESTAMP,
};
use crate::bybit_private::PrivateStats;
use crate::bybit_public::messages::envelope_result;
use crate::bybit_public::{backoff_delay, BybitError};
use crate::paging::collect_pages;
use rand::Rng;
use scalper_core::domain::TimeMs;
use serde::de::DeserializeOwned;
use std::time::Duration;

impl PrivateRest {
    pub(super) async fn get_public<T: DeserializeOwned>(&self, path: &str) -> Result<T, BybitError> {
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

    pub(super) async fn backoff(&self, attempt: u32) {
        let unit = self.rng.lock().map(|mut r| r.random::<f64>()).unwrap_or(0.5);
        tokio::time::sleep(backoff_delay(self.cfg.backoff_base, self.cfg.backoff_max, attempt, unit)).await;
    }

    pub(super) fn limit_status(&self, h: &reqwest::header::HeaderMap) -> LimitStatus {
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
    pub(super) async fn attempt<T: DeserializeOwned>(
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
    pub(super) async fn after_failure(&self, path: &str, group: EndpointGroup, f: &Failure, attempt: u32) -> bool {
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
    pub(super) async fn call<T: DeserializeOwned>(
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

    pub(super) async fn get<T: DeserializeOwned>(&self, path: &str, query: &str) -> Result<T, BybitError> {
        let group = EndpointGroup::of_path(path).unwrap_or(EndpointGroup::OrderQuery);
        self.call(Method::Get, path, query, group).await
    }

    pub(super) async fn post<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, BybitError> {
        let group = EndpointGroup::of_path(path).unwrap_or(EndpointGroup::Create);
        let json = serde_json::to_string(body).map_err(|e| BybitError::Decode(e.to_string()))?;
        self.call(Method::Post, path, &json, group).await
    }

    /// Follows `nextPageCursor` over a list endpoint (see [`collect_pages`]).
    pub(super) async fn pages<R: DeserializeOwned>(
        &self,
        path: &str,
        base: Vec<(&str, String)>,
    ) -> Result<Vec<R>, BybitError> {
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
    pub(super) fn universe<R: RawItem>(&self, path: &str, raw: &[R]) -> Result<Vec<R::Typed>, BybitError> {
        let sorted = sort_items(raw);
        self.stats.count_skipped(path, &sorted.skipped);
        if let Some(bad) = sorted.skipped.iter().find(|s| s.reason == SkipReason::Invalid) {
            return Err(BybitError::Decode(format!("{path}: {} {}: {}", R::TOPIC.as_str(), bad.symbol, bad.detail)));
        }
        Ok(sorted.kept)
    }
}
