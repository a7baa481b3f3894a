//! Whole-pipeline benchmark: a synthetic full universe (500 symbols, orderbook.50 snapshots then
//! deltas of 1-6 levels near the touch, trade batches every 4th event) through
//! `Engine<CorePipeline>`. Reports time per event and events/s on one core.
//! Run with `cargo bench --bench pipeline`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper::config::Config;
use scalper::domain::{EventTime, Price, Qty, Side, Symbol};
use scalper::engine::clock::FrozenClock;
use scalper::engine::core::CorePipeline;
use scalper::engine::event::{Event, EventKind};
use scalper::engine::{DegradedPolicy, Engine};
use scalper::market::data::{BookAction, BookUpdate, Instrument, InstrumentStatus, Level, Trade, TradeBatch};
use std::collections::BTreeMap;
use std::sync::Arc;

const SYMBOLS: usize = 500;
const EVENTS: usize = 200_000;
const TICK: Price = Price::from_raw(10_000_000);

fn lvl(t: i64, q: i64) -> Level {
    Level { price: Price::from_ticks(t, TICK), qty: Qty::from_raw(q * 100_000) }
}

fn instruments() -> Vec<Instrument> {
    (0..SYMBOLS)
        .map(|i| Instrument {
            symbol: Symbol::new(&format!("S{i:04}USDT")),
            status: InstrumentStatus::Trading,
            tick_size: TICK,
            qty_step: Qty::parse("0.001").unwrap(),
            min_qty: Qty::parse("0.001").unwrap(),
            max_qty: Qty::parse("1000").unwrap(),
            min_notional: Price::parse("5").unwrap(),
            max_leverage: Price::parse("50").unwrap(),
            launch_time_ms: 0,
        })
        .collect()
}

/// Events in order: universe, one snapshot per symbol, then the measured stream.
fn stream() -> (Vec<Event>, Vec<Event>) {
    let mut rng = SmallRng::seed_from_u64(42);
    let insts = instruments();
    let mut setup = vec![Event::new(1, EventTime::local(0), EventKind::Universe(insts.clone()))];
    // Per symbol: mid in ticks, last u, shadow of the best levels.
    let mut state: BTreeMap<Symbol, (i64, u64)> = BTreeMap::new();
    for (i, inst) in insts.iter().enumerate() {
        let mid = 100_000 + i as i64 * 10;
        let bids = (1..=50).map(|k| lvl(mid - k, rng.random_range(1..500))).collect();
        let asks = (1..=50).map(|k| lvl(mid + k, rng.random_range(1..500))).collect();
        let depth = 50;
        setup.push(Event::new(
            0,
            EventTime::local(1),
            EventKind::Book(BookUpdate {
                symbol: inst.symbol.clone(),
                action: BookAction::Snapshot,
                depth,
                bids,
                asks,
                update_id: 1000,
                seq: 1000,
                cts_ms: Some(1),
            }),
        ));
        state.insert(inst.symbol.clone(), (mid, 1000));
    }
    let syms: Vec<Symbol> = state.keys().cloned().collect();
    let mut evs = Vec::with_capacity(EVENTS);
    for n in 0..EVENTS {
        let now = 10 + n as i64 / 50; // ~50 events per ms across the universe
        let s = &syms[rng.random_range(0..syms.len())];
        let (mid, u) = state.get_mut(s).expect("known symbol");
        if n % 4 == 3 {
            let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
            let px = if side == Side::Buy { *mid + 1 } else { *mid - 1 };
            let trades = (0..rng.random_range(1..4))
                .map(|k| Trade {
                    ts_ms: now,
                    price: Price::from_ticks(px, TICK),
                    qty: Qty::from_raw(rng.random_range(1..50) * 100_000),
                    aggressor: side,
                    id: format!("{n}-{k}"),
                    block_trade: false,
                    rpi: false,
                })
                .collect();
            evs.push(Event::new(0, EventTime::local(now), EventKind::Trades(TradeBatch { symbol: s.clone(), trades })));
        } else {
            *u += 1;
            let k = rng.random_range(1..=6);
            let mut bids = Vec::new();
            let mut asks = Vec::new();
            for _ in 0..k {
                let off = rng.random_range(1..=20);
                let q = if rng.random_bool(0.15) { 0 } else { rng.random_range(1..500) };
                if rng.random_bool(0.5) {
                    bids.push(lvl(*mid - off, q));
                } else {
                    asks.push(lvl(*mid + off, q));
                }
            }
            evs.push(Event::new(
                0,
                EventTime::local(now),
                EventKind::Book(BookUpdate {
                    symbol: s.clone(),
                    action: BookAction::Delta,
                    depth: 50,
                    bids,
                    asks,
                    update_id: *u,
                    seq: *u,
                    cts_ms: Some(now),
                }),
            ));
        }
    }
    (setup, evs)
}

fn engine(setup: &[Event]) -> Engine<CorePipeline, FrozenClock> {
    let mut cfg = Config::default();
    cfg.categories.prime.book_depth = 50;
    cfg.universe.prime_top_n = 0;
    let mut e = Engine::new(
        CorePipeline::new(Arc::new(cfg)),
        FrozenClock,
        DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 },
    );
    for ev in setup {
        e.on_event(ev);
    }
    e
}

fn bench_pipeline(c: &mut Criterion) {
    let (setup, evs) = stream();
    {
        // Sanity: the stream is valid (no book errors) so we measure the normal path.
        let mut e = engine(&setup);
        for ev in &evs {
            e.on_event(ev);
        }
        let c = e.pipeline().counters();
        assert!(c.book_errors.is_empty(), "synthetic stream must not break books: {:?}", c.book_errors);
        assert_eq!(e.pipeline().symbols().count(), SYMBOLS);
    }
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("core_500_symbols_per_event", |b| {
        b.iter_batched(
            || engine(&setup),
            |mut e| {
                for ev in &evs {
                    std::hint::black_box(e.on_event(ev));
                }
                e
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
