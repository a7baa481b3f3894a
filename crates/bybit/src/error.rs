//! Errors of Bybit's REST API as the connectors see them, and how they are reported.

/// Everything that can go wrong talking to Bybit's public API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BybitError {
    /// The venue answered with `retCode != 0`.
    #[error("bybit api error {code}: {msg}")]
    Api {
        /// Bybit's `retCode`.
        code: i64,
        /// Bybit's `retMsg`.
        msg: String,
    },
    /// A non-success HTTP status (429 rate limit, 403 IP ban, 5xx, …).
    #[error("http status {status}: {body}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Start of the response body, for the log.
        body: String,
    },
    /// The body was not JSON (a proxy or maintenance page, for example).
    #[error("http status {status}: body is not JSON: {body}")]
    NotJson {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// JSON that does not have the documented shape, or values that do not parse exactly.
    #[error("malformed message: {0}")]
    Decode(String),
    /// Timeout while connecting or waiting for the response.
    #[error("timeout: {0}")]
    Timeout(String),
    /// Connection-level failure (DNS, TCP, TLS, WebSocket protocol).
    #[error("transport error: {0}")]
    Transport(String),
}

impl BybitError {
    /// True when repeating the same request later may succeed: HTTP 429 and 5xx, timeouts,
    /// transport failures and Bybit's own "too many visits" (10006), "server timeout" (10000)
    /// and "internal error" (10016) codes. HTTP 403 is Bybit's IP ban (at least 10 minutes), so
    /// hammering it again is pointless and it is not retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            BybitError::Http { status, .. } => *status == 429 || (500..=599).contains(status),
            BybitError::Api { code, .. } => matches!(code, 10000 | 10006 | 10016),
            BybitError::Timeout(_) | BybitError::Transport(_) => true,
            BybitError::NotJson { status, .. } => (500..=599).contains(status),
            BybitError::Decode(_) => false,
        }
    }

    /// HTTP status attached to the error, if any.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            BybitError::Http { status, .. } | BybitError::NotJson { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `e` followed by each of its sources, joined by `": "`. reqwest's own message stops at "error
/// sending request"; the cause an operator needs (connection refused, an untrusted certificate,
/// a TLS alert) is further down the chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}
