//! The core's market step on hand-built event streams: universe diffs become subscriptions, book
//! errors become one resync request (not a storm), feed outages become RISK_OFF, candles are logged.

mod common;
use common::instrument;
use scalper::config::paths::DataKind;
use scalper::config::Config;
use scalper::domain::{EventTime, Price, Qty, Side, Symbol};
use scalper::engine::clock::FrozenClock;
use scalper::engine::core::CorePipeline;
use scalper::engine::event::{Event, EventKind, FeedState, TimerKind};
use scalper::engine::output::{FeedCommand, Output, Outputs, StatusChange};
use scalper::engine::{DegradedPolicy, Engine};
use scalper::market::data::{BookAction, BookUpdate, Instrument, Level, Trade, TradeBatch};
use scalper_core::testkit::lv;
use std::sync::Arc;

fn inst(s: &str) -> Instrument {
    instrument(s, "0.1", "0.001", "100")
}

fn book(s: &str, action: BookAction, u: u64, bids: Vec<Level>, asks: Vec<Level>) -> EventKind {
    EventKind::Book(BookUpdate {
        symbol: Symbol::new(s),
        action,
        depth: 50,
        bids,
        asks,
        update_id: u,
        seq: u,
        cts_ms: None,
    })
}

struct T {
    e: Engine<CorePipeline, FrozenClock>,
    seq: u64,
}

impl T {
    fn new() -> T {
        let mut cfg = Config::default();
        cfg.engine.feed_down_risk_off_s = 10;
        T {
            e: Engine::new(
                CorePipeline::new(Arc::new(cfg)),
                FrozenClock,
                DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 },
            ),
            seq: 0,
        }
    }
    fn ev(&mut self, now: i64, kind: EventKind) -> Outputs {
        self.seq += 1;
        self.e.on_event(&Event::new(self.seq, EventTime::local(now), kind))
    }
}

fn feed_cmds(o: &Outputs) -> Vec<FeedCommand> {
    o.items.iter().filter_map(|x| if let Output::Feed(c) = x { Some(c.clone()) } else { None }).collect()
}

#[test]
fn universe_changes_become_feed_commands() {
    let mut t = T::new();
    let o = t.ev(0, EventKind::Universe(vec![inst("BTCUSDT"), inst("AAAUSDT")]));
    assert_eq!(
        feed_cmds(&o),
        vec![FeedCommand::Subscribe(vec![(Symbol::new("AAAUSDT"), 50), (Symbol::new("BTCUSDT"), 200)])]
    );
    let o = t.ev(15_000, EventKind::Universe(vec![inst("BTCUSDT"), inst("NEWUSDT")]));
    let cmds = feed_cmds(&o);
    assert!(cmds.contains(&FeedCommand::Unsubscribe(vec![Symbol::new("AAAUSDT")])));
    assert!(cmds.contains(&FeedCommand::Subscribe(vec![(Symbol::new("NEWUSDT"), 50)])));
    assert!(o.items.iter().any(|x| matches!(x, Output::Record(r) if r.body["event"] == "NEWS_LISTING")));
    assert!(t.e.pipeline().symbol(&Symbol::new("AAAUSDT")).is_none());
}

#[test]
fn a_gap_asks_for_one_resync_and_a_snapshot_heals_the_book() {
    let mut t = T::new();
    t.ev(0, EventKind::Universe(vec![inst("AAAUSDT")]));
    t.ev(1, book("AAAUSDT", BookAction::Snapshot, 10, vec![lv("99.9", "1")], vec![lv("100.1", "1")]));
    t.ev(2, book("AAAUSDT", BookAction::Delta, 11, vec![lv("99.8", "2")], vec![]));
    let sym = Symbol::new("AAAUSDT");
    assert!(t.e.pipeline().symbol(&sym).unwrap().book.is_valid());
    // u jumps 11 → 13: a gap.
    let o = t.ev(3, book("AAAUSDT", BookAction::Delta, 13, vec![lv("99.7", "2")], vec![]));
    assert_eq!(feed_cmds(&o), vec![FeedCommand::Resync(sym.clone())]);
    assert!(o
        .items
        .iter()
        .any(|x| matches!(x, Output::Record(r) if r.kind == DataKind::Events && r.body["reason"] == "gap")));
    assert!(!t.e.pipeline().symbol(&sym).unwrap().book.is_valid(), "no signals from a broken book");
    // Further deltas while waiting do not ask again.
    let o = t.ev(4, book("AAAUSDT", BookAction::Delta, 14, vec![lv("99.6", "2")], vec![]));
    assert!(feed_cmds(&o).is_empty());
    // An unanswered resync is asked again after 5 s.
    let o = t.ev(5_100, EventKind::Timer(TimerKind::Second));
    assert_eq!(feed_cmds(&o), vec![FeedCommand::Resync(sym.clone())]);
    // The fresh snapshot heals it.
    t.ev(5_200, book("AAAUSDT", BookAction::Snapshot, 20, vec![lv("99.9", "1")], vec![lv("100.1", "1")]));
    let m = t.e.pipeline().symbol(&sym).unwrap();
    assert!(m.book.is_valid());
    assert!(m.resync_pending_since.is_none());
    assert_eq!(t.e.pipeline().counters().book_errors.get("gap"), Some(&1));
}

#[test]
fn a_crossed_book_is_refused_and_resynced() {
    let mut t = T::new();
    t.ev(0, EventKind::Universe(vec![inst("AAAUSDT")]));
    t.ev(1, book("AAAUSDT", BookAction::Snapshot, 10, vec![lv("99.9", "1")], vec![lv("100.1", "1")]));
    let o = t.ev(2, book("AAAUSDT", BookAction::Delta, 11, vec![lv("100.2", "1")], vec![]));
    assert_eq!(feed_cmds(&o), vec![FeedCommand::Resync(Symbol::new("AAAUSDT"))]);
    assert_eq!(t.e.pipeline().counters().book_errors.get("crossed"), Some(&1));
    assert!(t.e.pipeline().symbol(&Symbol::new("AAAUSDT")).unwrap().book.best_bid().is_none());
}

#[test]
fn feed_down_too_long_enters_risk_off_and_leaves_it_when_back() {
    let mut t = T::new();
    t.ev(0, EventKind::Feed { connection: 0, state: FeedState::Connected });
    t.ev(1_000, EventKind::Feed { connection: 0, state: FeedState::Reconnecting });
    let o = t.ev(10_000, EventKind::Timer(TimerKind::Second));
    assert!(!o.items.contains(&Output::Status(StatusChange::FeedRiskOffEnter)), "9 s is within the limit");
    t.ev(10_500, EventKind::Feed { connection: 0, state: FeedState::Down });
    let o = t.ev(11_000, EventKind::Timer(TimerKind::Second));
    assert!(o.items.contains(&Output::Status(StatusChange::FeedRiskOffEnter)));
    assert!(t.e.pipeline().flags().feed_risk_off);
    let o = t.ev(12_000, EventKind::Feed { connection: 0, state: FeedState::Connected });
    assert!(o.items.contains(&Output::Status(StatusChange::FeedRiskOffExit)));
    assert!(!t.e.pipeline().flags().feed_risk_off);
}

#[test]
fn trades_build_the_tape_and_closed_candles_are_logged() {
    let mut t = T::new();
    t.ev(0, EventKind::Universe(vec![inst("AAAUSDT")]));
    let tr = |ts: i64, p: &str| Trade {
        ts_ms: ts,
        price: Price::parse(p).unwrap(),
        qty: Qty::parse("1").unwrap(),
        aggressor: Side::Buy,
        id: ts.to_string(),
        block_trade: false,
        rpi: false,
    };
    t.ev(
        1_100,
        EventKind::Trades(TradeBatch {
            symbol: Symbol::new("AAAUSDT"),
            trades: vec![tr(1_100, "100"), tr(1_200, "101")],
        }),
    );
    let o =
        t.ev(2_500, EventKind::Trades(TradeBatch { symbol: Symbol::new("AAAUSDT"), trades: vec![tr(2_500, "102")] }));
    let candles: Vec<_> = o
        .items
        .iter()
        .filter_map(|x| if let Output::Record(r) = x { (r.kind == DataKind::Microcandles).then_some(r) } else { None })
        .collect();
    assert_eq!(candles.len(), 1, "the 1 s candle [1000, 2000) closed");
    assert_eq!(candles[0].body["open"], "100");
    assert_eq!(candles[0].body["close"], "101");
    assert_eq!(candles[0].body["trades"], 2);
    assert_eq!(t.e.pipeline().symbol(&Symbol::new("AAAUSDT")).unwrap().tape.len(), 3);
}

#[test]
fn events_for_unknown_symbols_are_counted_not_applied() {
    let mut t = T::new();
    t.ev(1, book("ZZZUSDT", BookAction::Snapshot, 1, vec![lv("1", "1")], vec![lv("2", "1")]));
    assert_eq!(t.e.pipeline().counters().unknown_symbol_events, 1);
}

#[test]
fn shedding_never_touches_prime_and_never_leaves_a_wrong_book_in_use() {
    use scalper::engine::backpressure::ShedQueue;
    let mut t = T::new();
    t.ev(0, EventKind::Universe(vec![inst("BTCUSDT"), inst("WILDUSDT")]));
    let mut q = ShedQueue::new(8, vec![Symbol::new("BTCUSDT")]);
    q.set_categories(t.e.pipeline().symbols().map(|(s, m)| (s.clone(), m.category)).collect());
    assert_eq!(t.e.pipeline().symbol(&Symbol::new("BTCUSDT")).unwrap().category, scalper::domain::Category::Prime);
    // Snapshots first (never shed), then a burst of deltas that overflows the queue.
    for s in ["BTCUSDT", "WILDUSDT"] {
        q.push(Event::new(
            0,
            EventTime::local(1),
            book(s, BookAction::Snapshot, 10, vec![lv("99.9", "1")], vec![lv("100.1", "1")]),
        ));
    }
    for u in 11..=30u64 {
        let q_bid = format!("{}", u);
        for s in ["BTCUSDT", "WILDUSDT"] {
            q.push(Event::new(0, EventTime::local(2), book(s, BookAction::Delta, u, vec![lv("99.8", &q_bid)], vec![])));
        }
    }
    assert!(q.stats().wild > 0, "the Wild symbol was shed");
    let mut resyncs = Vec::new();
    while let Some(ev) = q.pop() {
        let o = t.ev(ev.now_ms(), ev.kind);
        resyncs.extend(feed_cmds(&o));
    }
    let btc = t.e.pipeline().symbol(&Symbol::new("BTCUSDT")).unwrap();
    assert!(btc.book.is_valid(), "Prime saw every delta");
    assert_eq!(btc.book.best_bid().unwrap().price, Price::parse("99.9").unwrap());
    assert_eq!(btc.book.last_update_id(), 30);
    let wild = t.e.pipeline().symbol(&Symbol::new("WILDUSDT")).unwrap();
    assert!(!wild.book.is_valid(), "a book that lost deltas is not used");
    assert!(wild.book.best_bid().is_none());
    assert_eq!(resyncs, vec![FeedCommand::Resync(Symbol::new("WILDUSDT"))], "and it is resynced");
}

#[test]
fn baselines_are_restored_persisted_each_minute_and_handed_over_at_shutdown() {
    let mut t = T::new();
    let t0 = 1_800_000_000_000;
    t.ev(t0, EventKind::Universe(vec![inst("BTCUSDT"), inst("AAAUSDT")]));
    // A fresh persisted state warms BTCUSDT at once; a stale one (7 h old) is refused.
    let o = t.ev(t0 + 1, common::warm_baselines("BTCUSDT", t0));
    let seeded = |o: &Outputs| {
        o.items
            .iter()
            .filter_map(|x| match x {
                Output::Record(r) if r.body["event"] == "BASELINE_SEEDED" => Some(r.body["taken"].as_bool()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(seeded(&o), vec![Some(true)]);
    let o = t.ev(t0 + 2, common::warm_baselines("AAAUSDT", t0 - 7 * 3_600_000));
    assert_eq!(seeded(&o), vec![Some(false)]);
    let p = t.e.pipeline();
    assert!(p.symbol(&Symbol::new("BTCUSDT")).unwrap().intel.snapshot().baseline_warm);
    assert!(!p.symbol(&Symbol::new("AAAUSDT")).unwrap().intel.snapshot().baseline_warm);
    // Shutdown hand-over: the warm symbol only, with its baselines in the profile body.
    let profiles = p.baseline_profiles();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].0, "BTCUSDT");
    assert_eq!(profiles[0].1["baselines"]["ret5_var"]["seconds"].as_u64(), Some(1_800));
    // Once a minute each warm symbol's profile is written, spread over the minute.
    let mut written = Vec::new();
    for s in 1..=60 {
        let o = t.ev(t0 + s * 1000, EventKind::Timer(TimerKind::Second));
        for x in &o.items {
            if let Output::Snapshot { kind: DataKind::Profiles, name, body } = x {
                assert!(body["baselines"].is_object());
                written.push(name.clone());
            }
        }
    }
    assert_eq!(written, vec!["BTCUSDT".to_string()]);
}
