//! Sanity refusals of the public decoders: values that parse but that Bybit never sends
//! (a price <= 0, a negative size, an oversized book), counted by stream and reason in
//! [`Refusals`] for `scalper_public_refused_total`. Separate from the decoders so that the REST
//! and the WS paths count into the same labels.

use crate::error::BybitError;
use scalper_core::domain::{Price, Qty, Symbol, TimeMs};
use scalper_core::market::data::Level;

/// Which decoder refused a value (the `stream` label of `scalper_public_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalStream {
    /// `publicTrade.{symbol}`.
    Trade,
    /// `allLiquidation.{symbol}`.
    Liquidation,
    /// `orderbook.{depth}.{symbol}`.
    Book,
    /// `tickers.{symbol}`.
    Ticker,
    /// `GET /v5/market/orderbook`.
    RestOrderbook,
    /// `GET /v5/market/tickers`.
    RestTickers,
    /// `GET /v5/market/recent-trade`.
    RestRecentTrade,
    /// `GET /v5/market/instruments-info`.
    RestInstruments,
}

impl RefusalStream {
    /// Every stream, in label order.
    pub const ALL: [RefusalStream; 8] = [
        RefusalStream::Trade,
        RefusalStream::Liquidation,
        RefusalStream::Book,
        RefusalStream::Ticker,
        RefusalStream::RestOrderbook,
        RefusalStream::RestTickers,
        RefusalStream::RestRecentTrade,
        RefusalStream::RestInstruments,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalStream::Trade => "trade",
            RefusalStream::Liquidation => "liquidation",
            RefusalStream::Book => "book",
            RefusalStream::Ticker => "ticker",
            RefusalStream::RestOrderbook => "rest_orderbook",
            RefusalStream::RestTickers => "rest_tickers",
            RefusalStream::RestRecentTrade => "rest_recent_trade",
            RefusalStream::RestInstruments => "rest_instruments",
        }
    }
}

/// Why a value was refused (the `reason` label of `scalper_public_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalReason {
    /// A price <= 0.
    NonPositivePrice,
    /// A trade or liquidation size <= 0.
    NonPositiveSize,
    /// A book level size < 0, or a negative volume / turnover / open interest.
    NegativeValue,
    /// A trade time too far ahead of the receive time.
    FutureTime,
    /// More book levels per side than the subscribed depth allows.
    Oversized,
    /// Instrument rules out of range (negative limits).
    InvalidRules,
}

impl RefusalReason {
    /// Every reason, in label order.
    pub const ALL: [RefusalReason; 6] = [
        RefusalReason::NonPositivePrice,
        RefusalReason::NonPositiveSize,
        RefusalReason::NegativeValue,
        RefusalReason::FutureTime,
        RefusalReason::Oversized,
        RefusalReason::InvalidRules,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::NonPositivePrice => "non_positive_price",
            RefusalReason::NonPositiveSize => "non_positive_size",
            RefusalReason::NegativeValue => "negative_value",
            RefusalReason::FutureTime => "future_time",
            RefusalReason::Oversized => "oversized",
            RefusalReason::InvalidRules => "invalid_rules",
        }
    }
}

/// What the decoders refused in one message: counts by (stream, reason), the first refusal's
/// detail for the log, and the book to resync when a book frame was refused whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    counts: Vec<(RefusalStream, RefusalReason, u64)>,
    first: Option<String>,
    /// Set by the WS book decoder (in the parent module) when it refuses a book frame whole.
    pub(super) book_resync: Option<(Symbol, u16)>,
}

impl Refusals {
    /// Counts one refusal; `detail` is only built for the first one.
    pub fn add(&mut self, stream: RefusalStream, reason: RefusalReason, detail: impl FnOnce() -> String) {
        match self.counts.iter_mut().find(|(s, r, _)| *s == stream && *r == reason) {
            Some(c) => c.2 += 1,
            None => self.counts.push((stream, reason, 1)),
        }
        if self.first.is_none() {
            self.first = Some(detail());
        }
    }

    /// Nothing refused.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Number of refused values.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.2).sum()
    }

    /// Refusals of one kind.
    pub fn count(&self, stream: RefusalStream, reason: RefusalReason) -> u64 {
        self.counts.iter().find(|(s, r, _)| *s == stream && *r == reason).map_or(0, |c| c.2)
    }

    /// `(stream, reason, count)` of every kind refused, in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (RefusalStream, RefusalReason, u64)> + '_ {
        self.counts.iter().copied()
    }

    /// Detail of the first refusal.
    pub fn first(&self) -> Option<&str> {
        self.first.as_deref()
    }

    /// Symbol and depth of a book frame refused whole: the local book missed an update and must
    /// be resynced.
    pub fn book_resync(&self) -> Option<&(Symbol, u16)> {
        self.book_resync.as_ref()
    }

    /// Adds everything of `other`.
    pub fn merge(&mut self, other: Refusals) {
        for (s, r, n) in other.counts {
            match self.counts.iter_mut().find(|(s2, r2, _)| *s2 == s && *r2 == r) {
                Some(c) => c.2 += n,
                None => self.counts.push((s, r, n)),
            }
        }
        if self.first.is_none() {
            self.first = other.first;
        }
        if self.book_resync.is_none() {
            self.book_resync = other.book_resync;
        }
    }
}

/// Context of the sanity checks of a WS frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sanity {
    /// Local receive time of the frame, ms (`None`: no time bound, e.g. reading a recording).
    pub recv_ms: Option<TimeMs>,
    /// A trade whose `T` is more than this many ms after `recv_ms` is refused.
    pub max_trade_ahead_ms: i64,
}

/// Checks book levels: price > 0, size >= 0, at most `max_levels` per side. The first problem
/// refuses the whole book.
pub(super) fn check_book_levels(
    stream: RefusalStream,
    sym: &str,
    bids: &[Level],
    asks: &[Level],
    max_levels: usize,
    refusals: &mut Refusals,
) -> Result<(), BybitError> {
    for (name, side) in [("bids", bids), ("asks", asks)] {
        if side.len() > max_levels {
            let detail = format!("{sym}: {} {name} levels, at most {max_levels} allowed", side.len());
            refusals.add(stream, RefusalReason::Oversized, || detail.clone());
            return Err(BybitError::Decode(detail));
        }
        for l in side {
            let reason = if l.price.raw() <= 0 {
                RefusalReason::NonPositivePrice
            } else if l.qty.raw() < 0 {
                RefusalReason::NegativeValue
            } else {
                continue;
            };
            let detail = format!("{sym}: {name} level price={} size={}", l.price, l.qty);
            refusals.add(stream, reason, || detail.clone());
            return Err(BybitError::Decode(detail));
        }
    }
    Ok(())
}

/// Why a trade or liquidation item is refused: price <= 0 or size <= 0.
pub(super) fn item_problem(price: Price, qty: Qty) -> Option<RefusalReason> {
    if price.raw() <= 0 {
        Some(RefusalReason::NonPositivePrice)
    } else if qty.raw() <= 0 {
        Some(RefusalReason::NonPositiveSize)
    } else {
        None
    }
}
