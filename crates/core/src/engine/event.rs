//! The one ordered stream of inputs into the core. Everything that can change a decision is an
//! [`Event`]; each carries its own time, so the core never reads a clock.

use crate::config::Config;
pub use crate::domain::Mode;
use crate::domain::{EventTime, Symbol, TimeMs};
use crate::features::baseline::BaselineState;
pub use crate::market::data::FeedState;
use crate::market::data::{BookUpdate, Instrument, KlineHistory, Liquidation, TickerUpdate, TradeBatch};
use crate::market::profile::SymbolOverride;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An input to the core with its timestamps and a monotonically increasing sequence number
/// assigned by the edge that merges all sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the merged input stream.
    pub seq: u64,
    /// Exchange and receive timestamps.
    pub time: EventTime,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// New event.
    pub fn new(seq: u64, time: EventTime, kind: EventKind) -> Self {
        Event { seq, time, kind }
    }
    /// The engine's "now" for this event (receive time).
    pub fn now_ms(&self) -> TimeMs {
        self.time.recv_ms
    }
    /// Symbol the event is about, if any.
    pub fn symbol(&self) -> Option<&Symbol> {
        match &self.kind {
            EventKind::Book(b) => Some(&b.symbol),
            EventKind::Trades(t) => Some(&t.symbol),
            EventKind::Ticker(t) => Some(&t.symbol),
            EventKind::Liquidation(l) => Some(&l.symbol),
            EventKind::BookShed(s) => Some(s),
            EventKind::History(h) => Some(&h.symbol),
            EventKind::Baselines { symbol, .. } => Some(symbol),
            _ => None,
        }
    }
    /// True for high-frequency market data that backpressure may coalesce or shed.
    pub fn is_market_data(&self) -> bool {
        matches!(
            self.kind,
            EventKind::Book(_) | EventKind::Trades(_) | EventKind::Ticker(_) | EventKind::Liquidation(_)
        )
    }
}

/// A command from the control plane, already authenticated by the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlCommand {
    /// Change execution mode to SIM or DRY_RUN (leaving LIVE is always allowed). `SetMode(Live)`
    /// is refused by the core: LIVE is entered only through [`ControlCommand::EnterLive`].
    SetMode(Mode),
    /// Enter LIVE. Sent only by the control edge after the double confirmation and the PIN
    /// check; the core still refuses it unless the exchange account is known (private stream
    /// connected and reconciled) and nothing is open in the current mode.
    EnterLive,
    /// Stop opening new positions.
    Pause,
    /// Resume opening new positions.
    Resume,
    /// Cancel everything, close everything, block new trades.
    PanicCloseAll,
    /// Block a symbol from new signals.
    Blacklist(Symbol),
    /// Unblock a symbol.
    Unblacklist(Symbol),
    /// Set a manual news flag.
    SetNewsFlag {
        /// Symbol concerned.
        symbol: Symbol,
        /// Impact in [0, 1].
        impact: f64,
        /// Free-form type, e.g. `LISTING`, `HACK`, `MACRO`.
        news_type: String,
        /// Expiry time.
        expires_ms: TimeMs,
    },
    ClearNewsFlag(Symbol),
    /// The operator's per-symbol overrides, the whole set (a symbol not in it has none): read
    /// by the edge from `data/profiles/<SYMBOL>.json` at start and at each configuration reload.
    SetOverrides(BTreeMap<Symbol, SymbolOverride>),
}

/// Periodic timers, generated at the edge with their own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerKind {
    /// Every second: candle closes, expiries, staleness checks.
    Second,
    /// Every 15 s: universe refresh bookkeeping.
    Universe,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// Order-book snapshot or delta.
    Book(BookUpdate),
    /// A batch of public trades.
    Trades(TradeBatch),
    /// Ticker snapshot or delta.
    Ticker(TickerUpdate),
    /// Liquidation print.
    Liquidation(Liquidation),
    /// The instrument list (full refresh).
    Universe(Vec<Instrument>),
    /// Feed connection state change.
    Feed {
        /// Connection index (0 = aggregate of all public connections).
        connection: u32,
        /// New state.
        state: FeedState,
    },
    /// A timer fired.
    Timer(TimerKind),
    /// Control-plane command.
    Control(ControlCommand),
    /// A validated configuration replaced the running one.
    ConfigReload(Arc<Config>),
    /// Backpressure shed book deltas of this symbol, or the public feed refused one of its book
    /// frames (bad level, oversized): its book is stale and must be resynced.
    BookShed(Symbol),
    /// DEGRADED decided at the edge from measured tick latency (`on`), recorded so that replay
    /// applies it at the same place in the stream.
    Degraded {
        /// Enter (`true`) or leave (`false`) DEGRADED.
        on: bool,
        /// The tick latency that decided it, ns.
        tick_ns: u64,
    },
    /// A report of the LIVE exchange edge (acks, fills, rejects, account snapshots, private
    /// stream state).
    Venue(crate::execution::venue::VenueReport),
    /// One-minute history of a symbol fetched at start (`/v5/market/kline`): seeds its
    /// volatility and volume baselines.
    History(KlineHistory),
    /// The store's writer changed health at the edge: `up = false` while writes fail or the
    /// writer is dead. New entries are refused while it is down (open positions keep their
    /// protection and exits); recorded so that replay refuses the same entries.
    StorageHealth {
        /// Writes succeed again (`true`) or fail (`false`).
        up: bool,
        /// The edge's reason (last error).
        detail: String,
    },
    /// Baselines persisted in the symbol's profile by an earlier run, read back at start; taken
    /// only when younger than `intel.baseline.restore_max_age_s`.
    Baselines {
        symbol: Symbol,
        /// The persisted state.
        state: BaselineState,
    },
}
