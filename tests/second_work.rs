//! The one-second timer's per-symbol work is spread over the following events (no stall at the
//! second in a large universe), yet every candle still closes once, at its boundary, with its
//! content; a symbol's second-work always precedes its own next data; and what one event does is
//! bounded whatever the universe size.

mod common;
use common::instrument;
use scalper::config::paths::DataKind;
use scalper::config::Config;
use scalper::domain::{EventTime, Price, Qty, Side, Symbol};
use scalper::engine::clock::FrozenClock;
use scalper::engine::core::CorePipeline;
use scalper::engine::event::{Event, EventKind, TimerKind};
use scalper::engine::output::{Output, Outputs};
use scalper::engine::second_work::SECOND_WORK_PER_EVENT;
use scalper::engine::{DegradedPolicy, Engine};
use scalper::market::data::{TickerUpdate, Trade, TradeBatch};
use std::collections::BTreeMap;
use std::sync::Arc;

const N: usize = 100;
/// Start of the stream (past the first 15 s, so the first timer writes feature snapshots).
const B: i64 = 100_000;

struct T {
    e: Engine<CorePipeline, FrozenClock>,
    seq: u64,
}

impl T {
    fn new() -> T {
        let pipeline = CorePipeline::new(Arc::new(Config::default()));
        let policy = DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 };
        T { e: Engine::new(pipeline, FrozenClock, policy), seq: 0 }
    }
    fn ev(&mut self, now: i64, kind: EventKind) -> Outputs {
        self.seq += 1;
        self.e.on_event(&Event::new(self.seq, EventTime::local(now), kind))
    }
}

fn sym(i: usize) -> Symbol {
    Symbol::new(&format!("S{i:03}USDT"))
}

fn trades(i: usize, at: i64, prices: &[&str]) -> EventKind {
    let trades = prices
        .iter()
        .enumerate()
        .map(|(k, p)| Trade {
            ts_ms: at + k as i64,
            price: Price::parse(p).unwrap(),
            qty: Qty::parse("1").unwrap(),
            aggressor: Side::Buy,
            id: format!("{i}-{at}-{k}"),
            block_trade: false,
            rpi: false,
        })
        .collect();
    EventKind::Trades(TradeBatch { symbol: sym(i), trades })
}

/// An event about no tracked symbol (does only the scheduled second-work).
fn idle() -> EventKind {
    EventKind::Ticker(TickerUpdate { symbol: Symbol::new("NOTTRACKEDUSDT"), ..Default::default() })
}

/// The closed 1 s candles of an event, by symbol.
fn candles(o: &Outputs) -> Vec<(String, serde_json::Value)> {
    o.items
        .iter()
        .filter_map(|x| match x {
            Output::Record(r) if r.kind == DataKind::Microcandles && r.body["interval"] == "1s" => {
                Some((r.symbol.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default(), r.body.clone()))
            }
            _ => None,
        })
        .collect()
}

fn metric_snapshots(o: &Outputs) -> Vec<(String, i64)> {
    o.items
        .iter()
        .filter_map(|x| match x {
            Output::Snapshot { kind: DataKind::Metrics, name, body } => Some((name.clone(), body["ts_ms"].as_i64()?)),
            _ => None,
        })
        .collect()
}

/// A universe of `N` symbols that each traded twice in [1000, 2000).
fn universe_that_traded() -> T {
    let mut t = T::new();
    t.ev(0, EventKind::Universe((0..N).map(|i| instrument(&sym(i).to_string(), "0.1", "0.001", "100")).collect()));
    assert_eq!(t.e.pipeline().symbols().count(), N);
    for i in 0..N {
        t.ev(B + 1_100 + i as i64, trades(i, B + 1_100 + i as i64, &["100", "101"]));
    }
    t
}

#[test]
fn the_timer_does_a_bounded_slice_and_every_candle_closes_once_with_its_content() {
    let mut t = universe_that_traded();
    // The first timer past the close grace: only a bounded slice of symbols closes on it.
    let o = t.ev(B + 3_000, EventKind::Timer(TimerKind::Second));
    let mut closed = candles(&o);
    assert_eq!(closed.len(), SECOND_WORK_PER_EVENT, "a bounded slice, not the whole universe");
    let snaps = metric_snapshots(&o);
    assert_eq!(snaps.len(), SECOND_WORK_PER_EVENT);
    let mut all_snaps = snaps;
    // Every following event does at most its own symbol and a bounded slice.
    let mut events = 0;
    while closed.len() < N {
        let o = t.ev(B + 3_001 + events, idle());
        let c = candles(&o);
        assert!(!c.is_empty() && c.len() <= SECOND_WORK_PER_EVENT, "{}", c.len());
        closed.extend(c);
        all_snaps.extend(metric_snapshots(&o));
        events += 1;
        assert!(events < N as i64, "the spread work finishes");
    }
    assert!(candles(&t.ev(B + 3_500, idle())).is_empty(), "nothing closes twice");
    let by_symbol: BTreeMap<String, serde_json::Value> = closed.into_iter().collect();
    assert_eq!(by_symbol.len(), N, "every symbol's candle closed exactly once");
    for (s, c) in &by_symbol {
        assert_eq!(c["start_ms"], B + 1_000, "{s}");
        assert_eq!(
            (c["open"].as_str(), c["close"].as_str(), c["trades"].as_u64()),
            (Some("100"), Some("101"), Some(2))
        );
    }
    // Feature snapshots: one per symbol, stamped with the timer's time.
    assert_eq!(all_snaps.len(), N);
    assert!(all_snaps.iter().all(|(_, ts)| *ts == B + 3_000));
}

#[test]
fn a_symbols_own_event_does_its_second_work_first() {
    let mut t = universe_that_traded();
    t.ev(B + 3_000, EventKind::Timer(TimerKind::Second));
    // The last symbol is far back in the queue; its own trade at 3 001 first closes its old
    // candle (without the new trade), then opens a new one.
    let last = N - 1;
    let o = t.ev(B + 3_001, trades(last, B + 3_001, &["150"]));
    let c = candles(&o);
    let own = c.iter().find(|(s, _)| s == sym(last).as_str()).expect("its candle closed on its own event");
    assert_eq!(own.1["start_ms"], B + 1_000);
    assert_eq!((own.1["close"].as_str(), own.1["trades"].as_u64()), (Some("101"), Some(2)));
    assert_eq!(c.len(), SECOND_WORK_PER_EVENT + 1, "its own plus a bounded slice");
}

#[test]
fn the_next_timer_finishes_what_a_sparse_stream_left() {
    let mut t = universe_that_traded();
    let first = candles(&t.ev(B + 3_000, EventKind::Timer(TimerKind::Second)));
    // No event between the two timers: the second one finishes the first one's work.
    let o = t.ev(B + 4_000, EventKind::Timer(TimerKind::Second));
    let second = candles(&o);
    assert_eq!(first.len() + second.len(), N);
    assert!(second.iter().all(|(_, c)| c["start_ms"] == B + 1_000));
    // Feature snapshots are throttled (15 s): the leftovers still carry the first timer's time.
    let snaps = metric_snapshots(&o);
    assert_eq!(snaps.len(), N - SECOND_WORK_PER_EVENT);
    assert!(snaps.iter().all(|(_, ts)| *ts == B + 3_000));
}
