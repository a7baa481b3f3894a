//! [`SymbolHarness`]: one symbol's market state (book, tape, candles), a news source and its
//! [`SymbolIntel`], driven by [`Event`]s in the order the engine would apply them. Used by the
//! scenario tests and the bench; the integrator can feed it recorded or simulator streams.

use crate::domain::{Price, Symbol};
use crate::engine::event::{ControlCommand, Event, EventKind, TimerKind};
use crate::features::news::ManualNewsSource;
use crate::intel::{IntelEvent, SymbolIntel};
use crate::market::candles::CandleSet;
use crate::market::orderbook::{BookError, OrderBook};
use crate::market::tape::Tape;

/// Market state + intelligence of one symbol.
#[derive(Debug, Clone)]
pub struct SymbolHarness {
    pub book: OrderBook,
    /// Trade tape.
    pub tape: Tape,
    /// Micro-candles.
    pub candles: CandleSet,
    /// News flags.
    pub news: ManualNewsSource,
    pub intel: SymbolIntel,
    /// Book updates refused (the book then waits for a snapshot).
    pub book_errors: u64,
}

impl SymbolHarness {
    /// New harness: a book with `tick` and `depth` levels, a 10 000-trade tape, 300 candles per
    /// interval (no close grace).
    pub fn new(intel: SymbolIntel, tick: Price, depth: usize) -> Result<Self, BookError> {
        let news = ManualNewsSource::default();
        Ok(SymbolHarness {
            book: OrderBook::new(tick, depth)?,
            tape: Tape::new(10_000),
            candles: CandleSet::new(300, 0),
            news,
            intel,
            book_errors: 0,
        })
    }

    pub fn symbol(&self) -> &Symbol {
        self.intel.symbol()
    }

    /// Applies an event of this symbol (others and unrelated kinds are ignored) and returns the
    /// intelligence events it produced.
    pub fn on_event(&mut self, ev: &Event) -> Vec<IntelEvent> {
        let now = ev.now_ms();
        if let Some(s) = ev.symbol() {
            if s != self.intel.symbol() {
                return Vec::new();
            }
        }
        match &ev.kind {
            EventKind::Book(b) => {
                if self.book.apply(b).is_err() {
                    self.book_errors += 1;
                }
                self.intel.on_book(&self.book, now)
            }
            EventKind::Trades(tb) => {
                for t in &tb.trades {
                    self.tape.push(t);
                    self.candles.on_trade(t);
                }
                self.intel.on_trades(&tb.trades, now)
            }
            EventKind::Liquidation(l) => self.intel.on_liquidation(l, now),
            EventKind::Timer(TimerKind::Second) => {
                self.candles.on_time(now);
                self.news.expire(now);
                self.intel.on_second(&self.candles, &self.book, &self.news, now)
            }
            EventKind::Control(ControlCommand::SetNewsFlag { symbol, impact, news_type, expires_ms })
                if symbol == self.intel.symbol() =>
            {
                self.news.set_manual(symbol, *impact, news_type, now, *expires_ms);
                self.intel.on_news(&self.news, now)
            }
            EventKind::Control(ControlCommand::ClearNewsFlag(symbol)) if symbol == self.intel.symbol() => {
                self.news.clear(symbol);
                self.intel.on_news(&self.news, now)
            }
            _ => Vec::new(),
        }
    }
}
