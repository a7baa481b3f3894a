//! A core driven by hand, one event at a time, with no sockets: the tests of trading, risk
//! limits, LIVE reports and storage health each wrap it and add what they look at.

use super::{book_update, instrument, ladder, warm_baselines};
use scalper::config::paths::DataKind;
use scalper::config::Config;
use scalper::domain::{EventTime, Price, Side, Symbol};
use scalper::engine::clock::FrozenClock;
use scalper::engine::core::CorePipeline;
use scalper::engine::event::{Event, EventKind, FeedState};
use scalper::engine::output::{LogRecord, Output, Outputs};
use scalper::engine::{DegradedPolicy, Engine};
use scalper::market::data::{BookAction, Trade, TradeBatch};
use serde_json::Value;
use std::sync::Arc;

/// The defaults with watch and arm thresholds at 0: any positive score arms, for tests about
/// what happens after a signal rather than about the signal.
pub fn armed_config() -> Config {
    let mut cfg = Config::default();
    cfg.thresholds.watch = 0.0;
    cfg.thresholds.arm = 0.0;
    cfg
}

/// An engine on a frozen clock that never turns DEGRADED.
pub fn engine(cfg: Config) -> Engine<CorePipeline, FrozenClock> {
    Engine::new(
        CorePipeline::new(Arc::new(cfg)),
        FrozenClock,
        DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 },
    )
}

/// The engine with every input and output kept. Events are numbered from 1 and 100 ms apart,
/// starting at t = 1,000,000 ms.
pub struct CoreDriver {
    pub e: Engine<CorePipeline, FrozenClock>,
    pub seq: u64,
    pub now: i64,
    /// Book update counter (see [`book_update`]).
    pub u: u64,
    pub inputs: Vec<Event>,
    pub outputs: Vec<Outputs>,
}

impl CoreDriver {
    /// A connected feed and a universe of `symbols` (tick 0.01, step 0.1), each warm.
    pub fn new(cfg: Config, symbols: &[&str]) -> CoreDriver {
        let mut d =
            CoreDriver { e: engine(cfg), seq: 0, now: 1_000_000, u: 100, inputs: Vec::new(), outputs: Vec::new() };
        d.ev(EventKind::Feed { connection: 0, state: FeedState::Connected });
        d.ev(EventKind::Universe(symbols.iter().map(|s| instrument(s, "0.01", "0.1", "100000")).collect()));
        for s in symbols {
            let now = d.now;
            d.ev(warm_baselines(s, now));
        }
        d
    }

    /// Feeds one event 100 ms after the previous one.
    pub fn ev(&mut self, kind: EventKind) -> Outputs {
        self.seq += 1;
        self.now += 100;
        let ev = Event::new(self.seq, EventTime::local(self.now), kind);
        let out = self.e.on_event(&ev);
        self.inputs.push(ev);
        self.outputs.push(out.clone());
        out
    }

    /// A 20-level book of `sym` around 100.00 (tick 0.01) with heavier bids.
    pub fn book(&mut self, sym: &str, action: BookAction) -> Outputs {
        let update = book_update(sym, action, ladder("99.99", "100.01", "0.01", 20, "30", "10"), &mut self.u);
        self.ev(EventKind::Book(update))
    }

    /// One trade of `sym` at `price`.
    pub fn trade(&mut self, sym: &str, price: Price, qty: &str, aggressor: Side) -> Outputs {
        let t = Trade {
            ts_ms: self.now,
            price,
            qty: super::q(qty),
            aggressor,
            id: format!("t{}", self.seq),
            block_trade: false,
            rpi: false,
        };
        self.ev(EventKind::Trades(TradeBatch { symbol: Symbol::new(sym), trades: vec![t] }))
    }

    /// Every log record so far, in order.
    pub fn records(&self) -> impl Iterator<Item = &LogRecord> {
        self.outputs.iter().flat_map(|o| o.items.iter()).filter_map(|o| match o {
            Output::Record(r) => Some(r),
            _ => None,
        })
    }

    /// Bodies of the records whose `event` is `name`, about `sym` (`None`: any symbol).
    pub fn named(&self, name: &str, sym: Option<&str>) -> Vec<Value> {
        self.records()
            .filter(|r| r.body["event"] == name)
            .filter(|r| sym.is_none_or(|s| r.symbol.as_ref().is_some_and(|x| x.as_str() == s)))
            .map(|r| r.body.clone())
            .collect()
    }

    /// Bodies of the records of one kind (e.g. the closed-trades log).
    pub fn of_kind(&self, kind: DataKind) -> Vec<Value> {
        self.records().filter(|r| r.kind == kind).map(|r| r.body.clone()).collect()
    }
}
