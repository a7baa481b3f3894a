//! Bybit v5 private connector (linear USDT perpetuals, unified account, one-way mode).
//!
//! - [`sign`]: HMAC-SHA256 request and WebSocket-auth signatures; [`Credentials`] from the
//!   environment or an owner-only file, redacted in `Debug`.
//! - [`messages`]: request bodies built from the core's [`scalper_core::execution::order::OrderRequest`],
//!   typed, exact views of orders, executions, positions and wallets (REST and WS).
//! - [`limiter`]: token buckets per endpoint group, tightened by `X-Bapi-Limit-*` headers.
//! - [`rest`]: [`PrivateRest`], the signed REST client (wallet, positions, open orders,
//!   executions, create / amend / cancel / cancel-all, leverage, trading-stop) with bounded
//!   retries and exactly-once order creation by `orderLinkId`.
//! - [`ws`]: [`PrivateStream`], the authenticated private WebSocket (`order.linear`,
//!   `execution.linear`, `position.linear`, `wallet`; items of other categories and linear
//!   contracts that are not USDT perpetuals are skipped one by one and counted) with heartbeats, reconnects with re-auth, and a REST reconciliation
//!   after every (re)connect so no fill is ever missed; executions are deduplicated by `execId`.
//!
//! The connector holds no trading state: it carries requests out and reports what the venue
//! says. The same code talks to `api.bybit.com` and to the loopback simulator.

pub mod limiter;
pub mod messages;
pub mod rest;
pub mod sign;
pub mod venue;
pub mod ws;

pub use limiter::{EndpointGroup, RateLimits};
pub use messages::{
    ItemTopic, OrderStatus, SkipReason, Skipped, VenueExecution, VenueOrder, VenuePosition, WalletBalance,
};
pub use rest::{CancelOutcome, IntentResult, PlaceOutcome, Placed, PrivateRest, PrivateRestConfig};
pub use sign::{Credentials, CredentialsError};
pub use ws::{
    PrivateHandle, PrivateMsg, PrivateStream, PrivateStreamConfig, PrivateUpdate, Reconciliation, UpdateSource,
};

use crate::bybit_public::BybitError;
use std::sync::atomic::{AtomicU64, Ordering};

/// Everything that can go wrong in the private connector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivateError {
    /// The venue or the transport failed (see [`BybitError`]; `Api` carries Bybit's retCode,
    /// e.g. 10004 for a bad signature, 10002 for a stale timestamp, 110007 for balance).
    #[error(transparent)]
    Venue(#[from] BybitError),
    /// Credentials could not be loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The request cannot be expressed (bad `orderLinkId`, non-positive quantity, …).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The account cannot be traded: a classic (non-unified) account, whose wallet has no USD
    /// totals. LIVE is refused with this reason.
    #[error("{0}")]
    AccountUnsupported(String),
    /// An order create failed ambiguously and its fate could not be established: it may or
    /// may not exist. Never re-sent; the caller must reconcile.
    #[error("order {order_link_id}: fate unknown after an ambiguous create failure ({last_error})")]
    Unresolved {
        /// Client order id.
        order_link_id: String,
        /// The last error met while resolving.
        last_error: String,
    },
}

impl PrivateError {
    /// Bybit's retCode, when the venue answered with one.
    pub fn ret_code(&self) -> Option<i64> {
        match self {
            PrivateError::Venue(BybitError::Api { code, .. }) => Some(*code),
            _ => None,
        }
    }
}

macro_rules! stats {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        /// Counters of the private connector, shared by [`PrivateRest`] and [`PrivateStream`]
        /// (via `Arc`). All counters only grow.
        #[derive(Debug, Default)]
        pub struct PrivateStats {
            $($(#[$m])* pub $name: AtomicU64,)*
        }

        /// A plain copy of [`PrivateStats`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct PrivateStatsSnapshot {
            $($(#[$m])* pub $name: u64,)*
        }

        impl PrivateStats {
            /// Reads every counter.
            pub fn snapshot(&self) -> PrivateStatsSnapshot {
                PrivateStatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

stats! {
    /// REST requests sent (every attempt, signed or not).
    rest_requests,
    /// REST attempts that failed.
    rest_errors,
    /// REST attempts repeated after a retryable failure.
    rest_retries,
    /// Responses that were HTTP 429 or Bybit's rate-limit codes.
    rest_rate_limited,
    /// Requests that had to wait for the client-side rate limiter.
    limiter_waits,
    /// Clock offset measurements.
    time_syncs,
    /// Create requests sent (every send).
    creates_sent,
    /// Creates that failed ambiguously (timeout, 5xx, …).
    creates_ambiguous,
    /// Ambiguous creates found at the venue by `orderLinkId`.
    creates_recovered,
    /// Ambiguous creates re-sent after their absence was proven.
    creates_resent,
    /// Creates rejected as duplicate `orderLinkId` and resolved to the existing order.
    creates_duplicate,
    /// Private WS text frames received.
    ws_frames,
    /// Private WS frames that could not be parsed.
    ws_malformed,
    /// Private WS connections that failed or dropped.
    ws_disconnects,
    /// Successful private WS reconnections (after the first connection).
    ws_reconnects,
    /// Rejected or unanswered `auth` ops.
    ws_auth_failures,
    /// Rejected or unanswered `subscribe` ops.
    ws_subscribe_failures,
    /// Heartbeat pings sent.
    ws_pings,
    /// Heartbeat pongs received.
    ws_pongs,
    /// Heartbeat timeouts that forced a reconnect.
    ws_timeouts,
    /// REST reconciliations completed.
    reconciliations,
    /// Executions emitted by a reconciliation (missed by the stream).
    reconciled_executions,
    /// Executions dropped as duplicates (same `execId`).
    executions_deduped,
    /// Updates handed to the output channel.
    updates_sent,
    /// Times the output channel was full and the stream had to wait.
    queue_full,
    /// Wallets refused because the account is not unified (classic `CONTRACT` / `SPOT`).
    wallet_not_unified,
    /// Order items left out: foreign category.
    skipped_order_category,
    /// Order items left out: not a USDT perpetual.
    skipped_order_symbol,
    /// Order items left out: impossible or malformed values.
    skipped_order_invalid,
    /// Execution items left out: foreign category.
    skipped_execution_category,
    /// Execution items left out: not a USDT perpetual.
    skipped_execution_symbol,
    /// Execution items left out: impossible or malformed values.
    skipped_execution_invalid,
    /// Position items left out: foreign category.
    skipped_position_category,
    /// Position items left out: not a USDT perpetual.
    skipped_position_symbol,
    /// Position items left out: impossible or malformed values.
    skipped_position_invalid,
    /// Wallet items left out: foreign category (never sent: wallets have none).
    skipped_wallet_category,
    /// Wallet items left out: symbol (never sent: wallets have none).
    skipped_wallet_symbol,
    /// Wallet items left out: malformed values.
    skipped_wallet_invalid,
}

impl PrivateStats {
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn skip_counter(&self, topic: ItemTopic, reason: SkipReason) -> &AtomicU64 {
        use ItemTopic as T;
        use SkipReason as R;
        match (topic, reason) {
            (T::Order, R::Category) => &self.skipped_order_category,
            (T::Order, R::Symbol) => &self.skipped_order_symbol,
            (T::Order, R::Invalid) => &self.skipped_order_invalid,
            (T::Execution, R::Category) => &self.skipped_execution_category,
            (T::Execution, R::Symbol) => &self.skipped_execution_symbol,
            (T::Execution, R::Invalid) => &self.skipped_execution_invalid,
            (T::Position, R::Category) => &self.skipped_position_category,
            (T::Position, R::Symbol) => &self.skipped_position_symbol,
            (T::Position, R::Invalid) => &self.skipped_position_invalid,
            (T::Wallet, R::Category) => &self.skipped_wallet_category,
            (T::Wallet, R::Symbol) => &self.skipped_wallet_symbol,
            (T::Wallet, R::Invalid) => &self.skipped_wallet_invalid,
        }
    }

    /// Counts items left out of a frame or a REST list, and logs them: foreign items (other
    /// categories, USDC contracts: normal on a shared account) at debug, impossible values at
    /// warn, each at most once per [`SKIP_LOG_EVERY`] of its kind (the counters see all).
    pub fn count_skipped(&self, source: &str, skipped: &[Skipped]) {
        for s in skipped {
            let c = self.skip_counter(s.topic, s.reason);
            let n = c.fetch_add(1, Ordering::Relaxed);
            if !n.is_multiple_of(SKIP_LOG_EVERY) {
                continue;
            }
            let (topic, reason) = (s.topic.as_str(), s.reason.as_str());
            if s.reason == SkipReason::Invalid {
                tracing::warn!(source, topic, reason, symbol = %s.symbol, detail = %s.detail, seen = n + 1,
                    "private item refused (impossible value); the rest of the frame is kept");
            } else {
                tracing::debug!(source, topic, reason, symbol = %s.symbol, detail = %s.detail, seen = n + 1,
                    "private item outside the USDT-perpetual universe skipped");
            }
        }
    }
}

/// One log line per this many skipped items of a (topic, reason).
pub const SKIP_LOG_EVERY: u64 = 100;

impl PrivateStatsSnapshot {
    /// Items left out for `reason` on `topic`.
    pub fn skipped(&self, topic: ItemTopic, reason: SkipReason) -> u64 {
        use ItemTopic as T;
        use SkipReason as R;
        match (topic, reason) {
            (T::Order, R::Category) => self.skipped_order_category,
            (T::Order, R::Symbol) => self.skipped_order_symbol,
            (T::Order, R::Invalid) => self.skipped_order_invalid,
            (T::Execution, R::Category) => self.skipped_execution_category,
            (T::Execution, R::Symbol) => self.skipped_execution_symbol,
            (T::Execution, R::Invalid) => self.skipped_execution_invalid,
            (T::Position, R::Category) => self.skipped_position_category,
            (T::Position, R::Symbol) => self.skipped_position_symbol,
            (T::Position, R::Invalid) => self.skipped_position_invalid,
            (T::Wallet, R::Category) => self.skipped_wallet_category,
            (T::Wallet, R::Symbol) => self.skipped_wallet_symbol,
            (T::Wallet, R::Invalid) => self.skipped_wallet_invalid,
        }
    }
}
