//! Market-state benchmarks: order-book delta (still and trending market) and snapshot apply, book queries, tape push and
//! candle update. Run with `cargo bench --bench market`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper::domain::{Price, Qty, Side, Symbol};
use scalper::market::candles::CandleSet;
use scalper::market::data::{BookAction, BookUpdate, Level};
use scalper::market::orderbook::OrderBook;
use scalper::market::tape::{Tape, TapePrint};
use std::hint::black_box;

const TICK: Price = Price::from_raw(10_000_000); // 0.1
const MID_TICKS: i64 = 300_000; // 30 000.0

fn level(ticks: i64, qty_units: i64) -> Level {
    Level { price: Price::from_ticks(ticks, TICK), qty: Qty::from_raw(qty_units * 100_000) }
}

fn update(action: BookAction, u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
    BookUpdate { symbol: Symbol::new("BTCUSDT"), action, depth: 50, bids, asks, update_id: u, seq: u, cts_ms: Some(0) }
}

/// A full snapshot of `depth` levels per side.
fn snapshot(depth: usize, rng: &mut SmallRng) -> BookUpdate {
    let bids = (0..depth as i64).map(|i| level(MID_TICKS - 1 - i, rng.random_range(1..1000))).collect();
    let asks = (0..depth as i64).map(|i| level(MID_TICKS + 1 + i, rng.random_range(1..1000))).collect();
    update(BookAction::Snapshot, 1_000, bids, asks)
}

/// A realistic stream of deltas: 1-10 levels per message, concentrated near the touch, with
/// deletes, touch improvements and refills at the far end. Never crosses.
fn delta_stream(depth: usize, msgs: usize, seed: u64) -> (BookUpdate, Vec<BookUpdate>, usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let snap = snapshot(depth, &mut rng);
    let mut shadow = OrderBook::new(TICK, depth).expect("valid book");
    shadow.apply(&snap).expect("valid snapshot");
    let mut out = Vec::with_capacity(msgs);
    let mut total_levels = 0;
    for m in 0..msgs {
        let u = 1_001 + m as u64;
        let bb = shadow.best_bid().map(|l| l.price.to_ticks(TICK)).unwrap_or(MID_TICKS - 1);
        let ba = shadow.best_ask().map(|l| l.price.to_ticks(TICK)).unwrap_or(MID_TICKS + 1);
        let (bid_max, ask_min) = if ba - bb >= 3 { (bb + 1, ba - 1) } else { (bb, ba) };
        let k = rng.random_range(1..=10);
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for _ in 0..k {
            let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
            let count = shadow.level_count(side);
            let d = rng.random_range(0..16).min(rng.random_range(0..16));
            let (ticks, worst) = match side {
                Side::Buy => (bid_max - d, shadow.top_n(side, usize::MAX).last()),
                Side::Sell => (ask_min + d, shadow.top_n(side, usize::MAX).last()),
            };
            let lvl = if count < depth && rng.random_bool(0.3) {
                // Refill at the far end, as the exchange does when levels enter the view.
                let w = worst.map(|l| l.price.to_ticks(TICK)).unwrap_or(ticks);
                let far = if side == Side::Buy { w - 1 } else { w + 1 };
                level(far, rng.random_range(1..1000))
            } else if count > depth / 2 && rng.random_bool(0.25) {
                level(ticks, 0)
            } else {
                level(ticks, rng.random_range(1..1000))
            };
            match side {
                Side::Buy => bids.push(lvl),
                Side::Sell => asks.push(lvl),
            }
        }
        total_levels += k;
        let d = update(BookAction::Delta, u, bids, asks);
        shadow.apply(&d).expect("generated delta applies");
        out.push(d);
    }
    (snap, out, total_levels)
}

/// A trending stream: the mid walks a tick at a time with a 50-tick jump every 500 messages,
/// each message clears the levels the move crossed and requotes a few levels around the new
/// touch, so the book's window keeps moving with the market. Never crosses.
fn drift_stream(depth: usize, msgs: usize, seed: u64) -> (BookUpdate, Vec<BookUpdate>, usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let snap = snapshot(depth, &mut rng);
    let mut shadow = OrderBook::new(TICK, depth).expect("valid book");
    shadow.apply(&snap).expect("valid snapshot");
    let (mut out, mut total_levels, mut mid) = (Vec::with_capacity(msgs), 0, MID_TICKS);
    for m in 0..msgs {
        let step = if m % 500 == 499 { 50 } else { 1 };
        mid += if rng.random_bool(0.5) { step } else { -step };
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for l in shadow.top_n(Side::Buy, usize::MAX).take_while(|l| l.price.to_ticks(TICK) >= mid) {
            bids.push(Level { price: l.price, qty: Qty::ZERO });
        }
        for l in shadow.top_n(Side::Sell, usize::MAX).take_while(|l| l.price.to_ticks(TICK) <= mid) {
            asks.push(Level { price: l.price, qty: Qty::ZERO });
        }
        for _ in 0..rng.random_range(1..=4) {
            let d = rng.random_range(0..20);
            bids.push(level(mid - 1 - d, rng.random_range(1..1000)));
            asks.push(level(mid + 1 + d, rng.random_range(1..1000)));
        }
        total_levels += bids.len() + asks.len();
        let d = update(BookAction::Delta, 1_001 + m as u64, bids, asks);
        shadow.apply(&d).expect("generated delta applies");
        out.push(d);
    }
    (snap, out, total_levels)
}

fn bench_book(c: &mut Criterion) {
    const MSGS: usize = 10_000;
    let mut g = c.benchmark_group("book");
    for depth in [50usize, 200, 1000] {
        let (snap, deltas, levels) = delta_stream(depth, MSGS, 42 + depth as u64);
        let mut book = OrderBook::new(TICK, depth).expect("valid book");
        let run = |book: &mut OrderBook| {
            book.invalidate();
            book.apply(&snap).expect("snapshot");
            for d in &deltas {
                black_box(book.apply(d).expect("delta"));
            }
        };
        g.throughput(Throughput::Elements(levels as u64));
        g.bench_function(BenchmarkId::new("delta_levels", depth), |b| b.iter(|| run(&mut book)));
        if depth == 50 {
            g.throughput(Throughput::Elements(MSGS as u64));
            g.bench_function(BenchmarkId::new("delta_msgs", depth), |b| b.iter(|| run(&mut book)));
        }

        let mut rng = SmallRng::seed_from_u64(7);
        let snap = snapshot(depth, &mut rng);
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("snapshot", depth), |b| {
            b.iter(|| {
                book.invalidate();
                black_box(book.apply(black_box(&snap)).expect("snapshot"))
            })
        });
    }

    for depth in [50usize, 200] {
        let (snap, deltas, levels) = drift_stream(depth, MSGS, 7 + depth as u64);
        let mut book = OrderBook::new(TICK, depth).expect("valid book");
        g.throughput(Throughput::Elements(levels as u64));
        g.bench_function(BenchmarkId::new("delta_levels_trending", depth), |b| {
            b.iter(|| {
                book.invalidate();
                book.apply(&snap).expect("snapshot");
                for d in &deltas {
                    black_box(book.apply(d).expect("delta"));
                }
            })
        });
    }

    // The largest legal delta (2 x depth levels per side: every level deleted and a whole new
    // side added, shifted by `depth` ticks) and an abusive one of 160,000 levels per side, which
    // is refused before anything is applied (#13: it used to take seconds, level by level).
    for depth in [50usize, 500] {
        let mut rng = SmallRng::seed_from_u64(11);
        let snap = snapshot(depth, &mut rng);
        let d = depth as i64;
        let side = |start: i64, step: i64| -> Vec<Level> {
            (0..d).map(|i| level(start + step * i, 0)).chain((0..d).map(|i| level(start + step * (i + d), 5))).collect()
        };
        let replace = update(BookAction::Delta, 1_001, side(MID_TICKS - 1, -1), side(MID_TICKS + 1, 1));
        let mut book = OrderBook::new(TICK, depth).expect("valid book");
        g.throughput(Throughput::Elements(replace.bids.len() as u64 * 2));
        g.bench_function(BenchmarkId::new("delta_replace_all", depth), |b| {
            b.iter(|| {
                book.invalidate();
                book.apply(&snap).expect("snapshot");
                black_box(book.apply(black_box(&replace)).expect("legal delta"))
            })
        });
    }
    let huge: Vec<Level> = (0..160_000).map(|i| level(MID_TICKS - 1 - i, 1)).collect();
    let abuse = update(BookAction::Delta, 1_001, huge, Vec::new());
    let mut book = OrderBook::new(TICK, 50).expect("valid book");
    book.apply(&snapshot(50, &mut SmallRng::seed_from_u64(3))).expect("snapshot");
    g.throughput(Throughput::Elements(1));
    g.bench_function("delta_160k_levels_refused", |b| b.iter(|| black_box(book.apply(black_box(&abuse)).is_err())));

    let (snap, _, _) = delta_stream(50, 1, 1);
    let mut book = OrderBook::new(TICK, 50).expect("valid book");
    book.apply(&snap).expect("snapshot");
    g.throughput(Throughput::Elements(1));
    g.bench_function("queries_50", |b| {
        b.iter(|| {
            let bk = black_box(&book);
            black_box((
                bk.best_bid(),
                bk.best_ask(),
                bk.mid(),
                bk.spread_bps(),
                bk.depth_within(Side::Buy, 0.1),
                bk.depth_within(Side::Sell, 0.1),
                bk.imbalance_top_n(5),
            ))
        })
    });
    g.finish();
}

fn bench_tape_candles(c: &mut Criterion) {
    let mut g = c.benchmark_group("trades");
    g.throughput(Throughput::Elements(1));
    let mut tape = Tape::new(2000);
    let mut ts = 0i64;
    g.bench_function("tape_push_2000", |b| {
        b.iter(|| {
            ts += 3;
            let side = if ts & 8 == 0 { Side::Buy } else { Side::Sell };
            black_box(tape.push_print(TapePrint {
                ts_ms: ts,
                price: Price::from_ticks(MID_TICKS + (ts & 15), TICK),
                qty: Qty::from_raw(100_000),
                aggressor: side,
            }))
        })
    });
    for _ in 0..5000 {
        ts += 3;
        tape.push_print(TapePrint { ts_ms: ts, price: TICK, qty: Qty::from_raw(1), aggressor: Side::Buy });
    }
    let since = ts - 1_000;
    g.bench_function("tape_volume_since_1s", |b| b.iter(|| black_box(tape.volume_since(black_box(since)))));

    let mut candles = CandleSet::new(300, 0);
    let mut ts = 0i64;
    g.bench_function("candle_update", |b| {
        b.iter(|| {
            ts += 7;
            let side = if ts & 8 == 0 { Side::Buy } else { Side::Sell };
            black_box(candles.on_print(
                ts,
                Price::from_ticks(MID_TICKS + (ts & 15), TICK),
                Qty::from_raw(100_000),
                side,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_book, bench_tape_candles);
criterion_main!(benches);
