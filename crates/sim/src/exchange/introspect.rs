//! What [`crate::SimHandle`] reads of the exchange: exact and published books, the universe,
//! instruments, scenario events, `u` values and subscribed topics.

use super::{Exchange, DEPTHS};
use crate::book::Lvl;
use crate::universe::InstrumentSpec;
use crate::{BookLevels, Listing, ScenarioEvent, SymbolInfo};
use scalper_core::domain::{Side, Symbol};
use scalper_core::market::data::{Instrument, InstrumentStatus, Level};

impl Exchange {
    fn levels(spec: &InstrumentSpec, v: &[Lvl]) -> Vec<Level> {
        v.iter().map(|&(p, q)| Level { price: spec.price(p), qty: spec.qty(q) }).collect()
    }

    /// The simulator's own full book of a trading symbol.
    pub fn book_levels(&self, symbol: &str) -> Option<BookLevels> {
        let i = self.trading(symbol)?;
        let s = &self.symbols[i];
        let m = s.market.as_ref()?;
        let bids = m.book.top(Side::Buy, usize::MAX);
        let asks = m.book.top(Side::Sell, usize::MAX);
        Some(BookLevels {
            symbol: Symbol::new(symbol),
            bids: Self::levels(&s.spec, bids),
            asks: Self::levels(&s.spec, asks),
            update_id: None,
            seq: s.seq,
            ts_ms: s.last_ts,
        })
    }

    /// The last published view of `orderbook.{depth}.{symbol}` with its `u`.
    pub fn published_book(&self, symbol: &str, depth: usize) -> Option<BookLevels> {
        let i = self.trading(symbol)?;
        let d = DEPTHS.iter().position(|x| *x == depth)?;
        let s = &self.symbols[i];
        let ds = &s.depths[d];
        Some(BookLevels {
            symbol: Symbol::new(symbol),
            bids: Self::levels(&s.spec, &ds.bids),
            asks: Self::levels(&s.spec, &ds.asks),
            update_id: Some(ds.u),
            seq: ds.seq,
            ts_ms: ds.ts,
        })
    }

    /// Every symbol of the universe (pending listings included).
    pub fn symbol_infos(&self) -> Vec<SymbolInfo> {
        self.symbols
            .iter()
            .map(|s| SymbolInfo {
                symbol: Symbol::new(&s.spec.name),
                listing: s.listing,
                scenario: s.scenario.label(),
                launch_time_ms: s.spec.launch_time_ms,
                listing_time_ms: (s.list_step > 0).then(|| self.step_time(s.list_step)),
                delisting_time_ms: s.delist_step.map(|n| self.step_time(n)),
            })
            .collect()
    }

    /// Instrument of any known symbol with its current status.
    pub fn instrument(&self, symbol: &str) -> Option<Instrument> {
        let s = &self.symbols[*self.by_name.get(symbol)?];
        let status = match s.listing {
            Listing::Pending => InstrumentStatus::PreLaunch,
            Listing::Trading => InstrumentStatus::Trading,
            Listing::Closed => InstrumentStatus::Closed,
        };
        Some(s.spec.to_instrument(status))
    }

    /// Scenario events of a symbol (bounded history, oldest first).
    pub fn scenario_events(&self, symbol: &str) -> Option<Vec<ScenarioEvent>> {
        let s = &self.symbols[*self.by_name.get(symbol)?];
        let m = s.market.as_ref();
        Some(
            m.map(|m| {
                m.events.iter().map(|(n, k)| ScenarioEvent { ts_ms: self.step_time(*n), kind: k.clone() }).collect()
            })
            .unwrap_or_default(),
        )
    }

    /// Last published `u` of `orderbook.{depth}.{symbol}`.
    pub fn update_id(&self, symbol: &str, depth: usize) -> Option<u64> {
        let i = self.trading(symbol)?;
        let d = DEPTHS.iter().position(|x| *x == depth)?;
        Some(self.symbols[i].depths[d].u)
    }

    /// Subscribed topic names of every connection (for diagnostics).
    pub fn subscriptions(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.subs.iter().filter(|(_, l)| !l.is_empty()).map(|(t, _)| self.topic_name(*t)).collect();
        v.sort();
        v
    }
}
