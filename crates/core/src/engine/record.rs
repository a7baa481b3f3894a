//! The typed bodies of the store's records: one [`EventRecord`] variant per engine event, the
//! [`TradeRecord`] of the trades log, and the already typed intel events and micro-candles.
//! [`Outputs::record`](crate::engine::output::Outputs::record) accepts nothing else, so every
//! record's shape is declared here. Each is turned into the `serde_json::Value` the store writes
//! (keys sorted, so the JSONL bytes are deterministic); the tests pin that JSON.
//!
//! Field types are the types the records always carried: `f64` where a figure was written as a
//! float, [`Money`]/[`Price`]/[`Qty`] (exact decimal strings) where it was written exact. Where a
//! fixed string was written (`"wild"`, `"exchange"`, `"no book"`, a global regime's label), a type
//! that serialises to that same string stands in for it.

use crate::config::paths::DataKind;
use crate::domain::{Category, Fixed, Mode, Price, Qty, Side, Symbol, TimeMs};
use crate::execution::contract::DropReason;
use crate::execution::entry::EntryDecision;
use crate::execution::integrity::{IntegrityReport, KillReason};
use crate::execution::order::{EndReason, Fill, Intent, RejectReason};
use crate::execution::tpsl::MarketRisk;
use crate::intel::IntelEvent;
use crate::market::candles::Candle;
use crate::market::data::FeedState;
use crate::market::profile::{ProfileChange, SymbolOverride};
use crate::market::universe::RemovalReason;
use crate::regime::global::GlobalRegime;
use crate::risk::money::Money;
use crate::state::machine::{ExitReason, Input, Transition};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;

mod sealed {
    pub trait Sealed {}
}

/// A typed record body; implemented only by the types of this module (and the intel events and
/// micro-candles), which is what keeps ad-hoc JSON out of the store.
pub trait Record: Serialize + sealed::Sealed {
    /// The store directory every record of this type goes to.
    const KIND: DataKind;
}

/// The JSON body the store writes for `rec`. Serialising these plain types cannot fail; if it
/// ever did, the body says so (`{"error": …}`) rather than bringing the engine down.
pub fn body<R: Record>(rec: &R) -> serde_json::Value {
    serde_json::to_value(rec).unwrap_or_else(|e| {
        tracing::error!(kind = ?R::KIND, error = %e, "record body not serialisable");
        let mut m = serde_json::Map::new();
        m.insert("error".into(), serde_json::Value::String(e.to_string()));
        serde_json::Value::Object(m)
    })
}

/// One record of the event log (`DataKind::Events`), tagged by its `event` key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventRecord<'a> {
    // ---- Trading desk: state machine and entries -------------------------------------------
    /// A symbol's state machine moved.
    State {
        transition: &'a Transition,
        /// The input that moved it.
        input: Input,
    },
    /// An entry order was planned, sized and accepted by the risk check.
    Entry {
        side: Side,
        /// Limit price of the maker entry (the touch on our side).
        entry: Price,
        stop: Price,
        /// First take-profit level.
        tp1: Price,
        /// Second take-profit level (only used when the size splits in two).
        tp2: Price,
        qty: Qty,
        /// Loss at the stop, USDT.
        risk: Money,
        /// Entry notional, USDT.
        notional: Money,
        /// Market condition the TP/SL plan was made for.
        market: MarketRisk,
    },
    /// An armed symbol got no entry order; retried after a pause.
    EntryRefused {
        /// Human-readable cause (LIVE not ready, storage down, sizing or risk refusal…).
        reason: Cow<'a, str>,
    },
    /// A working maker entry was reviewed and switched to taker or abandoned.
    EntryReview { decision: EntryDecision, setup_ok: bool },
    /// A working entry ended with nothing filled.
    EntryCancelled {
        client_id: &'a str,
        #[serde(flatten)]
        end: EntryEnd,
    },
    // ---- Trading desk: orders, fills, exits ------------------------------------------------
    /// A stop order was triggered at the venue.
    StopTriggered {
        client_id: &'a str,
        /// Price of the trade that triggered it.
        price: Price,
    },
    /// The venue refused an order or amend.
    OrderRejected {
        client_id: &'a str,
        reason: RejectReason,
        /// Bybit's retCode or `rejectReason` for the same refusal.
        bybit: Cow<'static, str>,
    },
    /// An execution, as the venue reported it.
    Fill { fill: &'a Fill },
    /// The portfolio refused a fill (the integrity check will flag the mismatch).
    FillRefused { error: Cow<'a, str> },
    /// A fill reduced an open position.
    PartialExit {
        /// Net PnL booked by this fill, USDT.
        realized: Money,
        /// The exit order that filled.
        client_id: &'a str,
    },
    /// A closing fill was larger than the position (venue/local mismatch).
    FillExcess {
        /// Quantity beyond the position.
        excess: Qty,
    },
    /// The venue no longer knew an open position's stop: a new one was placed.
    StopReplaced {
        /// Client id of the stop that was lost.
        lost: &'a str,
        /// Client id of the new stop.
        client_id: &'a str,
        stop: Price,
        qty: Qty,
    },
    /// The venue refused a position's stop: the position is closed at market.
    StopRefusedClosing {
        /// Client id of the refused stop.
        client_id: &'a str,
    },
    /// The stop moved to break-even.
    BreakEven {
        /// New stop price.
        stop: Price,
        /// Mark price that allowed the move.
        mark: Price,
    },
    // ---- Execution by mode -----------------------------------------------------------------
    /// DRY_RUN: the order that would have been sent (nothing is).
    DryRunOrder { intent: &'a Intent },
    /// An intent could not be carried out.
    IntentDropped { reason: DropReason, intent: &'a Intent },
    /// An intent handed to the LIVE exchange edge.
    OrderSent { intent: &'a Intent },
    // ---- LIVE exchange reports -------------------------------------------------------------
    /// An order create whose outcome is unknown (it may exist at the exchange).
    OrderUnresolved { client_id: &'a str, error: &'a str },
    /// The exchange account cannot be traded by the engine.
    AccountUnsupported { reason: &'a str },
    /// The private stream's connection state changed.
    PrivateFeed { state: FeedState },
    /// An amend or cancel request failed at the exchange; the order is unchanged.
    VenueRequestFailed {
        client_id: &'a str,
        /// `amend` or `cancel`.
        action: &'a str,
        error: &'a str,
    },
    /// Setting a symbol's leverage failed.
    LeverageFailed {
        /// The leverage asked for (buy and sell).
        leverage: Fixed,
        error: &'a str,
    },
    /// Local state disagrees with the venue: new trades are blocked.
    IntegrityBroken { report: &'a IntegrityReport },
    /// The local balance was set to the exchange wallet's.
    WalletSync {
        /// Local balance before, USDT.
        from: Money,
        /// Exchange wallet balance, USDT.
        to: Money,
    },
    /// PANIC is confirmed: nothing left open.
    PanicConfirmed {
        by: PanicWitness,
        /// Number of account snapshots received so far (the one that confirmed it).
        snapshot: u64,
    },
    // ---- Engine health ---------------------------------------------------------------------
    /// Tick latency over budget: no new entries.
    DegradedEnter {
        /// Latency of the tick that went over, ns.
        tick_ns: u64,
        /// The budget, ns.
        budget_ns: u64,
    },
    /// Tick latency back under budget.
    DegradedExit,
    /// The store can write again.
    StorageUp {
        /// The edge's last word on storage.
        detail: &'a str,
    },
    /// The store cannot write: no new entries.
    StorageDown {
        /// The edge's last error.
        detail: &'a str,
    },
    /// The market feed is down too long: global RISK_OFF.
    FeedRiskOff {
        /// How long it has been down, ms.
        down_ms: i64,
    },
    /// The market feed is back: feed RISK_OFF over.
    FeedRiskOffExit,
    /// The market feed's connection state (public connection 0).
    FeedState { state: FeedState },
    /// A book turned invalid and a resync was asked for.
    BookInvalid {
        /// Short label: `gap`, `stale`, `crossed`, …, or `shed` (dropped under backpressure).
        reason: &'static str,
        /// The book error in words; absent for a shed book.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The kill switch was engaged by an extreme market.
    KillSwitch { reason: &'a KillReason },
    // ---- Market, regime, universe ----------------------------------------------------------
    /// The market-wide regime changed.
    GlobalRegime { from: GlobalRegime, to: GlobalRegime, reason: &'a str },
    /// A symbol's baselines were seeded (from klines or a saved profile).
    BaselineSeeded {
        /// The seed was used (the baselines were not warm yet and are now).
        taken: bool,
        #[serde(flatten)]
        source: BaselineSource,
    },
    /// A news flag ran out.
    NewsFlagExpired,
    /// A symbol's profile adjustments changed.
    ProfileChanged { change: &'a ProfileChange },
    /// A symbol left the universe.
    SymbolRemoved { reason: RemovalReason },
    /// A new listing (flagged as news, traded as wild).
    NewsListing { category: Category },
    /// A symbol's book depth changed (its book starts over).
    DepthChanged {
        /// New subscription depth, levels.
        depth: u16,
    },
    /// The universe changed.
    UniverseChanged {
        /// Number of symbols added.
        added: usize,
        /// Number of symbols removed.
        removed: usize,
        /// Number of symbols resubscribed at another depth.
        resubscribed: usize,
        new_listings: &'a [Symbol],
        /// Universe size after the change.
        size: usize,
    },
    // ---- Operator controls -----------------------------------------------------------------
    /// The trading mode changed.
    ModeChanged {
        from: Mode,
        to: Mode,
        /// Leaving LIVE only: trades opened in LIVE are still open at the exchange.
        #[serde(skip_serializing_if = "Option::is_none")]
        live_trades_open: Option<bool>,
    },
    /// A mode change was refused.
    ModeRefused { to: Mode, reason: Cow<'a, str> },
    /// Operator pause: no new entries.
    Paused,
    /// Operator resume (also releases a manual PANIC).
    Resumed,
    /// Operator PANIC: close everything.
    PanicCloseAll,
    /// A symbol was blacklisted by the operator.
    Blacklisted { symbol: &'a Symbol },
    /// A symbol was taken off the blacklist by the operator.
    Unblacklisted { symbol: &'a Symbol },
    /// A manual news flag was set.
    NewsFlagSet {
        symbol: &'a Symbol,
        /// Impact in [0, 1].
        impact: f64,
        /// Free-form type, e.g. `LISTING`, `HACK`, `MACRO`.
        news_type: &'a str,
        /// When the flag runs out, ms.
        expires_ms: TimeMs,
    },
    /// A manual news flag was cleared.
    NewsFlagCleared { symbol: &'a Symbol },
    /// The operator's per-symbol overrides now in force, and the ones refused with why.
    OverridesSet { overrides: BTreeMap<Symbol, SymbolOverride>, refused: BTreeMap<Symbol, String> },
}

/// How a working entry ended without a fill (the `ENTRY_CANCELLED` keys besides the client id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryEnd {
    /// A cancel or amend found no such order at the venue: it had already ended.
    /// Written as `"reason": "not_found_at_venue"`.
    NotFoundAtVenue,
    /// The venue ended it with `remaining` unfilled.
    Ended { remaining: Qty, reason: EndReason },
}

impl Serialize for EntryEnd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            EntryEnd::NotFoundAtVenue => m.serialize_entry("reason", "not_found_at_venue")?,
            EntryEnd::Ended { remaining, reason } => {
                m.serialize_entry("remaining", remaining)?;
                m.serialize_entry("reason", reason)?;
            }
        }
        m.end()
    }
}

/// Where seeded baselines came from (`source`, with the figures of that source).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum BaselineSource {
    /// Historical klines fetched at start.
    Kline {
        /// Number of klines received.
        klines: usize,
        /// 60-second volatility after seeding, percent.
        sigma_60s_pct: f64,
    },
    /// The baselines saved in the symbol's profile.
    Profile {
        /// Age of the saved baselines, whole seconds.
        age_s: i64,
    },
}

/// Who confirmed a PANIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PanicWitness {
    /// The exchange's own account snapshot showed no position and no working order.
    Exchange,
}

/// A closed trade, as the trades log (`DataKind::TradesLog`) keeps it. No `event` key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeRecord<'a> {
    pub symbol: &'a Symbol,
    pub category: Category,
    /// Direction of the position.
    pub side: Side,
    /// Total entry quantity.
    pub qty: Qty,
    pub avg_entry: Price,
    pub avg_exit: Price,
    pub opened_ms: TimeMs,
    /// Close time, ms.
    pub exit_ms: TimeMs,
    /// PnL before fees, USDT (float).
    pub gross_pnl: f64,
    /// Fees paid, USDT (float; exact in `fees_exact`).
    pub fees: f64,
    /// PnL after fees, USDT (float; exact in `net_pnl_exact`).
    pub net_pnl: f64,
    pub net_pnl_exact: Money,
    pub fees_exact: Money,
    /// Planned risk R, USDT.
    pub planned_risk: Money,
    /// Net PnL in units of planned risk (0 when none was planned).
    pub r_multiple: f64,
    /// Maximum favourable excursion, price units.
    pub mfe: Price,
    /// Maximum adverse excursion, price units.
    pub mae: Price,
    pub reason: ExitReason,
    /// The stop had been moved to break-even.
    pub break_even_moved: bool,
}

impl sealed::Sealed for EventRecord<'_> {}
impl Record for EventRecord<'_> {
    const KIND: DataKind = DataKind::Events;
}
impl sealed::Sealed for TradeRecord<'_> {}
impl Record for TradeRecord<'_> {
    const KIND: DataKind = DataKind::TradesLog;
}
impl sealed::Sealed for IntelEvent {}
impl Record for IntelEvent {
    const KIND: DataKind = DataKind::Events;
}
impl sealed::Sealed for Candle {}
impl Record for Candle {
    const KIND: DataKind = DataKind::Microcandles;
}

#[cfg(test)]
mod tests;
