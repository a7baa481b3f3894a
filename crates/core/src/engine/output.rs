//! What the core produces: data for the edges to carry out. The core never waits for them.

use crate::config::paths::DataKind;
use crate::domain::{Symbol, TimeMs};
use crate::engine::record::{self, Record};
use serde::{Deserialize, Serialize};

/// A record for the JSONL store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Data kind (directory).
    pub kind: DataKind,
    /// Symbol (`None` = global file).
    pub symbol: Option<Symbol>,
    /// Event time of the record (decides the hourly file).
    pub ts_ms: TimeMs,
    /// Body (object; keys are sorted, so serialisation is deterministic).
    pub body: serde_json::Value,
}

/// One output of one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Append a record.
    Record(LogRecord),
    /// Atomically replace `<data>/<kind>/<name>.json` (feature snapshots, profiles).
    Snapshot {
        /// Data kind (directory).
        kind: DataKind,
        /// File stem (a symbol).
        name: String,
        body: serde_json::Value,
    },
    /// A request for the feed edge (subscriptions, book resync).
    Feed(FeedCommand),
    /// Engine-level status flag changed.
    Status(StatusChange),
    /// A request for the LIVE exchange edge (orders, leverage, account refresh).
    Venue(crate::execution::venue::VenueCommand),
}

/// What the core asks of the market-data edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedCommand {
    /// Subscribe these symbols at these book depths (new symbols or a depth change).
    Subscribe(Vec<(Symbol, u16)>),
    /// Unsubscribe these symbols (delisted, inactive).
    Unsubscribe(Vec<Symbol>),
    /// Re-fetch a fresh snapshot of a symbol's book (after a gap, crossed or stale book).
    Resync(Symbol),
}

/// Engine-level status flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusChange {
    /// Tick latency exceeded the budget: no new entries.
    DegradedEnter,
    /// Latency back under budget for long enough.
    DegradedExit,
    /// The feed has been down longer than `feed_down_risk_off_s`: global RISK_OFF.
    FeedRiskOffEnter,
    /// The feed is back.
    FeedRiskOffExit,
}

/// The outputs of one event, in the order they were produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// Outputs in order.
    pub items: Vec<Output>,
}

impl Outputs {
    /// Adds an output.
    pub fn push(&mut self, o: Output) {
        self.items.push(o);
    }
    /// Adds a store record: `rec` goes to its type's data kind as its JSON body (see
    /// [`crate::engine::record`]).
    pub fn record<R: Record>(&mut self, symbol: Option<Symbol>, ts_ms: TimeMs, rec: R) {
        self.items.push(Output::Record(LogRecord { kind: R::KIND, symbol, ts_ms, body: record::body(&rec) }));
    }
    /// True when nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
