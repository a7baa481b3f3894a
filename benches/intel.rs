//! Market-intelligence benchmarks: per-event cost of features + regime + score.
//!
//! First a latency report over a realistic mixed stream (book deltas near the touch with walls
//! that come and go, trade batches, one-second timers): each event's intel work
//! (`SymbolIntel::on_*` + `score()` + `GlobalRegimeTracker::observe`) is timed alone, market
//! updates (book apply, candles) are not, and p50 / p99 / p99.9 / max are printed. Then
//! criterion micro-benchmarks. Run with `cargo bench --bench intel`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper::config::Config;
use scalper::domain::{Category, Price, Qty, Side, Symbol};
use scalper::features::news::NoNews;
use scalper::intel::SymbolIntel;
use scalper::market::candles::CandleSet;
use scalper::market::data::{BookAction, BookUpdate, Level, Trade};
use scalper::market::orderbook::OrderBook;
use scalper::regime::global::GlobalRegimeTracker;
use std::hint::black_box;
use std::time::Instant;

const TICK: Price = Price::from_raw(10_000_000); // 0.1
const MID: i64 = 300_000; // 30 000.0

fn level(ticks: i64, units: i64) -> Level {
    Level { price: Price::from_ticks(ticks, TICK), qty: Qty::from_raw(units * 1_000_000) }
}

fn upd(action: BookAction, u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
    BookUpdate { symbol: Symbol::new("BTCUSDT"), action, depth: 200, bids, asks, update_id: u, seq: u, cts_ms: None }
}

fn snapshot(depth: i64, rng: &mut SmallRng) -> BookUpdate {
    let bids = (0..depth).map(|i| level(MID - 1 - i, rng.random_range(1..100))).collect();
    let asks = (0..depth).map(|i| level(MID + 1 + i, rng.random_range(1..100))).collect();
    upd(BookAction::Snapshot, 1, bids, asks)
}

/// A delta of 1–6 levels near the touch; 2 % of messages add a wall (or pull one).
fn delta(book: &OrderBook, u: u64, rng: &mut SmallRng) -> BookUpdate {
    let bb = book.best_bid().map(|l| l.price.to_ticks(TICK)).unwrap_or(MID - 1);
    let ba = book.best_ask().map(|l| l.price.to_ticks(TICK)).unwrap_or(MID + 1);
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    for _ in 0..rng.random_range(1..=6) {
        let d = rng.random_range(0..12).min(rng.random_range(0..12));
        let buy = rng.random_bool(0.5);
        let size = if rng.random_bool(0.02) { 3_000 } else { rng.random_range(1..100) };
        let size = if rng.random_bool(0.15) { 0 } else { size };
        if buy {
            let t = if ba - bb > 1 { bb + 1 - d } else { bb - d };
            // Never delete the last bid near the touch.
            bids.push(level(t.min(ba - 1), if t >= bb { size.max(1) } else { size }));
        } else {
            let t = if ba - bb > 1 { ba - 1 + d } else { ba + d };
            asks.push(level(t.max(bb + 1), if t <= ba { size.max(1) } else { size }));
        }
    }
    upd(BookAction::Delta, u, bids, asks)
}

fn trades(book: &OrderBook, now: i64, rng: &mut SmallRng) -> Vec<Trade> {
    let n = rng.random_range(1..=5);
    (0..n)
        .map(|i| {
            let buy = rng.random_bool(0.5);
            let l = if buy { book.best_ask() } else { book.best_bid() };
            Trade {
                ts_ms: now,
                price: l.map(|l| l.price).unwrap_or(Price::from_ticks(MID, TICK)),
                qty: Qty::from_raw(rng.random_range(1..50) * 1_000_000),
                aggressor: if buy { Side::Buy } else { Side::Sell },
                id: format!("{now}-{i}"),
                block_trade: false,
                rpi: false,
            }
        })
        .collect()
}

struct Lat(Vec<u64>);
impl Lat {
    fn report(&mut self, name: &str) {
        let v = &mut self.0;
        if v.is_empty() {
            return;
        }
        v.sort_unstable();
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
        println!(
            "intel latency {name:<28} n={:>7}  p50 {:>6.2} µs  p99 {:>6.2} µs  p99.9 {:>6.2} µs  max {:>7.2} µs",
            v.len(),
            p(0.5),
            p(0.99),
            p(0.999),
            p(1.0)
        );
    }
}

/// Mixed-stream latency report for one book depth.
fn latency_report(depth: i64, events: usize) {
    let cfg = Config::default();
    let mut rng = SmallRng::seed_from_u64(depth as u64);
    let mut book = OrderBook::new(TICK, depth as usize).expect("book");
    let mut candles = CandleSet::new(300, 0);
    let sym = Symbol::new("BTCUSDT");
    let mut intel = SymbolIntel::from_config(sym.clone(), &cfg, Category::Prime, 0);
    let mut global = GlobalRegimeTracker::new(cfg.global_regime(), 0);
    book.apply(&snapshot(depth, &mut rng)).expect("snapshot");
    let (mut lb, mut lt, mut ls, mut all) = (Lat(Vec::new()), Lat(Vec::new()), Lat(Vec::new()), Lat(Vec::new()));
    let mut now = 1_700_000_000_000i64;
    let mut u = 1u64;
    let warm = events / 10;
    for i in 0..events {
        now += 20;
        // Book delta (market step untimed).
        u += 1;
        let d = delta(&book, u, &mut rng);
        if book.apply(&d).is_err() {
            u += 1;
            let mut s = snapshot(depth, &mut rng);
            s.update_id = u;
            book.apply(&s).expect("resync");
        }
        let t0 = Instant::now();
        black_box(intel.on_book(&book, now));
        black_box(intel.score());
        black_box(global.observe(&sym, intel.snapshot(), now));
        let dt = t0.elapsed().as_nanos() as u64;
        if i >= warm {
            lb.0.push(dt);
            all.0.push(dt);
        }
        // Trades every other step.
        if rng.random_bool(0.5) {
            let tr = trades(&book, now, &mut rng);
            for t in &tr {
                candles.on_trade(t);
            }
            let t0 = Instant::now();
            black_box(intel.on_trades(&tr, now));
            black_box(intel.score());
            black_box(global.observe(&sym, intel.snapshot(), now));
            let dt = t0.elapsed().as_nanos() as u64;
            if i >= warm {
                lt.0.push(dt);
                all.0.push(dt);
            }
        }
        if now % 1000 == 0 {
            candles.on_time(now);
            let t0 = Instant::now();
            black_box(intel.on_second(&candles, &book, &NoNews, now));
            black_box(intel.score());
            black_box(global.on_second(now));
            let dt = t0.elapsed().as_nanos() as u64;
            if i >= warm {
                ls.0.push(dt);
                all.0.push(dt);
            }
        }
    }
    let (a, s, c) = intel.wall_totals();
    println!("depth {depth}: wall verdicts absorbing {a}, spoofing {s}, cancelled {c}");
    lb.report(&format!("book (depth {depth})"));
    lt.report(&format!("trades (depth {depth})"));
    ls.report(&format!("second (depth {depth})"));
    all.report(&format!("all events (depth {depth})"));
}

fn bench_intel(c: &mut Criterion) {
    latency_report(50, 200_000);
    latency_report(200, 200_000);

    let cfg = Config::default();
    let mut g = c.benchmark_group("intel");
    g.throughput(Throughput::Elements(1));
    for depth in [50i64, 200] {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut book = OrderBook::new(TICK, depth as usize).expect("book");
        book.apply(&snapshot(depth, &mut rng)).expect("snapshot");
        let mut intel = SymbolIntel::from_config(Symbol::new("BTCUSDT"), &cfg, Category::Prime, 0);
        let mut now = 0i64;
        g.bench_function(BenchmarkId::new("on_book+score", depth), |b| {
            b.iter(|| {
                now += 20;
                black_box(intel.on_book(black_box(&book), now));
                black_box(intel.score())
            })
        });
        let tr = trades(&book, 0, &mut rng);
        g.bench_function(BenchmarkId::new("on_trades+score", depth), |b| {
            b.iter(|| {
                now += 20;
                black_box(intel.on_trades(black_box(&tr), now));
                black_box(intel.score())
            })
        });
    }
    let mut intel = SymbolIntel::from_config(Symbol::new("BTCUSDT"), &cfg, Category::Prime, 0);
    let mut candles = CandleSet::new(300, 0);
    let mut rng = SmallRng::seed_from_u64(3);
    let mut book = OrderBook::new(TICK, 50).expect("book");
    book.apply(&snapshot(50, &mut rng)).expect("snapshot");
    for s in 0..300i64 {
        let p = Price::from_ticks(MID + rng.random_range(-20..20), TICK);
        candles.on_print(s * 1000, p, Qty::from_raw(100_000_000), Side::Buy);
    }
    let mut now = 300_000i64;
    g.bench_function("on_second", |b| {
        b.iter(|| {
            now += 1000;
            black_box(intel.on_second(&candles, &book, &NoNews, now))
        })
    });
    g.bench_function("score", |b| b.iter(|| black_box(intel.score())));
    let mut global = GlobalRegimeTracker::new(cfg.global_regime(), 0);
    let syms: Vec<Symbol> = (0..550).map(|i| Symbol::new(&format!("S{i:03}USDT"))).collect();
    let snap = *intel.snapshot();
    for s in &syms {
        global.observe(s, &snap, 0);
    }
    let mut i = 0usize;
    g.bench_function("global_observe_550", |b| {
        b.iter(|| {
            i = (i + 1) % syms.len();
            black_box(global.observe(&syms[i], &snap, 1))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_intel);
criterion_main!(benches);
