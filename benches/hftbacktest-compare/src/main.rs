//! Replays the same order-book streams into scalper's `OrderBook` and hftbacktest 0.9.4's
//! `ROIVectorMarketDepth`, `HashMapMarketDepth` and `BTreeMarketDepth`, checks that every book
//! holds the same levels as ours after every message (outside the timed loops), then times each
//! book alone over the whole stream and prints nanoseconds per level update (median of `--runs`).
//!
//! Streams: the real Bybit v5 `orderbook.N` recordings in `shared/realdata` (zstd JSON lines,
//! decoded with scalper's own frame parser) and the synthetic `bench-replay` stream
//! (`UniverseStream`, seed 42, 25 events/ms, its book updates only).
//!
//! hftbacktest keys levels by `round(price / tick)` on `f64` prices; ours by exact integer
//! ticks. Every symbol's tick is the gcd of all its prices in the stream (exact for both), and
//! the ROIVector range covers the stream's whole price range, as that depth requires.
//! hftbacktest never drops levels beyond the subscribed depth while ours does, so the check
//! covers our levels and every tick between our best and our worst level.

use hftbacktest::depth::{
    BTreeMarketDepth, HashMapMarketDepth, L2MarketDepth, MarketDepth, ROIVectorMarketDepth, INVALID_MAX, INVALID_MIN,
};
use hftbacktest::types::Side as HSide;
use scalper::connectors::bybit_public::messages::{parse_ws_frame, MarketData, WsMessage};
use scalper::domain::{Price, Side};
use scalper::engine::event::EventKind;
use scalper::engine::synthetic::UniverseStream;
use scalper::market::data::{BookAction, BookUpdate};
use scalper::market::orderbook::OrderBook;
use std::collections::HashMap;
use std::error::Error;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

/// One level update as hftbacktest takes it.
#[derive(Clone, Copy)]
struct HLevel {
    bid: bool,
    price: f64,
    qty: f64,
}

/// One message of a stream, ready for every book.
struct Msg {
    sym: usize,
    upd: BookUpdate,
    snapshot: bool,
    levels: Vec<HLevel>,
}

/// Per-symbol facts the books are built from.
struct SymInfo {
    name: String,
    tick: Price,
    depth: usize,
    lo: f64,
    hi: f64,
}

struct Stream {
    name: String,
    syms: Vec<SymInfo>,
    msgs: Vec<Msg>,
}

impl Stream {
    fn level_updates(&self) -> usize {
        self.msgs.iter().map(|m| m.levels.len()).sum()
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// Builds a stream from book updates in arrival order.
fn build(name: &str, updates: Vec<BookUpdate>) -> Res<Stream> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut syms: Vec<SymInfo> = Vec::new();
    let mut gcds: Vec<i64> = Vec::new();
    let mut msgs = Vec::with_capacity(updates.len());
    for upd in updates {
        let key = upd.symbol.as_str().to_string();
        let sym = *index.entry(key.clone()).or_insert_with(|| {
            syms.push(SymInfo { name: key, tick: Price::from_raw(1), depth: 1, lo: f64::MAX, hi: f64::MIN });
            gcds.push(0);
            syms.len() - 1
        });
        let info = &mut syms[sym];
        info.depth = info.depth.max(usize::from(upd.depth)).max(upd.bids.len()).max(upd.asks.len());
        let mut levels = Vec::with_capacity(upd.bids.len() + upd.asks.len());
        for (bid, side) in [(true, &upd.bids), (false, &upd.asks)] {
            for l in side.iter() {
                if l.price.raw() <= 0 {
                    return Err(format!("{name}: non-positive price in {}", info.name).into());
                }
                gcds[sym] = gcd(gcds[sym], l.price.raw());
                let p = l.price.to_f64();
                info.lo = info.lo.min(p);
                info.hi = info.hi.max(p);
                levels.push(HLevel { bid, price: p, qty: l.qty.to_f64() });
            }
        }
        let snapshot = upd.action == BookAction::Snapshot;
        msgs.push(Msg { sym, upd, snapshot, levels });
    }
    for (info, g) in syms.iter_mut().zip(gcds) {
        if g <= 0 {
            return Err(format!("{name}: no levels for {}", info.name).into());
        }
        info.tick = Price::from_raw(g);
    }
    Ok(Stream { name: name.to_string(), syms, msgs })
}

/// Reads a zstd JSON-lines file of Bybit v5 public frames, keeping the order-book frames.
fn load_real(dir: &Path, set: &str) -> Res<Stream> {
    let path = dir.join(set).join("book.jsonl.zst");
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = BufReader::new(zstd::Decoder::new(file).map_err(|e| format!("{}: {e}", path.display()))?);
    let mut updates = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: line {}: {e}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_ws_frame(&line) {
            Ok(WsMessage::Market { data: MarketData::Book(b), .. }) => updates.push(b),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: line {}: {e}", path.display(), n + 1).into()),
        }
    }
    build(set, updates)
}

/// The book updates of the `bench-replay` stream: setup snapshots then `events` stream events.
fn load_synthetic(symbols: usize, events: usize) -> Res<Stream> {
    let mut s = UniverseStream::new(symbols, 42, 25);
    let mut updates = Vec::new();
    for ev in s.setup().into_iter().chain((&mut s).take(events)) {
        if let EventKind::Book(b) = ev.kind {
            updates.push(b);
        }
    }
    build(&format!("synthetic_{symbols}sym"), updates)
}

/// The hftbacktest side of the comparison, over its three L2 depths.
trait HBook: MarketDepth + L2MarketDepth {}
impl<T: MarketDepth + L2MarketDepth> HBook for T {}

#[inline]
fn h_apply<D: HBook>(d: &mut D, m: &Msg) {
    if m.snapshot {
        d.clear_depth(HSide::None, 0.0);
    }
    for l in &m.levels {
        if l.bid {
            black_box(d.update_bid_depth(l.price, l.qty, 0));
        } else {
            black_box(d.update_ask_depth(l.price, l.qty, 0));
        }
    }
}

/// Checks that `d` holds exactly our levels between our best and worst on both sides.
fn check<D: HBook>(what: &str, ours: &OrderBook, d: &D, tick: Price) -> Result<(), String> {
    for side in [Side::Buy, Side::Sell] {
        let levels: Vec<_> = ours.top_n(side, usize::MAX).collect();
        let h_best = match side {
            Side::Buy => d.best_bid_tick(),
            Side::Sell => d.best_ask_tick(),
        };
        let qty_at = |t: i64| match side {
            Side::Buy => d.bid_qty_at_tick(t),
            Side::Sell => d.ask_qty_at_tick(t),
        };
        let Some(first) = levels.first() else {
            if h_best != INVALID_MIN && h_best != INVALID_MAX {
                return Err(format!("{what}: {side:?} empty in ours, best tick {h_best} in theirs"));
            }
            continue;
        };
        if h_best != first.price.to_ticks(tick) {
            return Err(format!("{what}: {side:?} best tick {} ours, {h_best} theirs", first.price.to_ticks(tick)));
        }
        let mut prev: Option<i64> = None;
        for l in &levels {
            let t = l.price.to_ticks(tick);
            if let Some(p) = prev {
                let (a, b) = if p < t { (p + 1, t) } else { (t + 1, p) };
                if let Some(x) = (a..b).find(|&x| qty_at(x) != 0.0) {
                    return Err(format!("{what}: {side:?} tick {x} holds {} theirs, empty ours", qty_at(x)));
                }
            }
            let q = qty_at(t);
            if q != l.qty.to_f64() {
                return Err(format!("{what}: {side:?} tick {t}: {} ours, {q} theirs", l.qty.to_f64()));
            }
            prev = Some(t);
        }
    }
    Ok(())
}

fn new_ours(s: &Stream) -> Res<Vec<OrderBook>> {
    s.syms.iter().map(|i| OrderBook::new(i.tick, i.depth).map_err(|e| format!("{}: {e}", i.name).into())).collect()
}

fn new_roi(s: &Stream) -> Vec<ROIVectorMarketDepth> {
    s.syms
        .iter()
        .map(|i| {
            let t = i.tick.to_f64();
            ROIVectorMarketDepth::new(t, 1e-8, i.lo - 4.0 * t, i.hi + 4.0 * t)
        })
        .collect()
}

fn new_hash(s: &Stream) -> Vec<HashMapMarketDepth> {
    s.syms.iter().map(|i| HashMapMarketDepth::new(i.tick.to_f64(), 1e-8)).collect()
}

fn new_btree(s: &Stream) -> Vec<BTreeMarketDepth> {
    s.syms.iter().map(|i| BTreeMarketDepth::new(i.tick.to_f64(), 1e-8)).collect()
}

/// Applies every message to all four books, checking them against ours after each one.
fn verify(s: &Stream) -> Res<()> {
    let (mut ours, mut roi, mut hash, mut bt) = (new_ours(s)?, new_roi(s), new_hash(s), new_btree(s));
    for (n, m) in s.msgs.iter().enumerate() {
        let book = &mut ours[m.sym];
        book.apply(&m.upd).map_err(|e| format!("{}: message {n}: refused by ours: {e}", s.name))?;
        h_apply(&mut roi[m.sym], m);
        h_apply(&mut hash[m.sym], m);
        h_apply(&mut bt[m.sym], m);
        let tick = s.syms[m.sym].tick;
        let at = format!("{} message {n} ({})", s.name, s.syms[m.sym].name);
        check(&format!("ROIVector, {at}"), book, &roi[m.sym], tick)?;
        check(&format!("HashMap, {at}"), book, &hash[m.sym], tick)?;
        check(&format!("BTree, {at}"), book, &bt[m.sym], tick)?;
    }
    Ok(())
}

#[inline(never)]
fn time_ours(s: &Stream) -> Res<f64> {
    let mut books = new_ours(s)?;
    let started = Instant::now();
    for m in &s.msgs {
        black_box(books[m.sym].apply(&m.upd).map_err(|e| format!("{}: {e}", s.name))?);
    }
    Ok(started.elapsed().as_nanos() as f64)
}

#[inline(never)]
fn time_h<D: HBook>(s: &Stream, mut books: Vec<D>) -> f64 {
    let started = Instant::now();
    for m in &s.msgs {
        h_apply(&mut books[m.sym], m);
    }
    black_box(&books);
    started.elapsed().as_nanos() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Res<()> {
    let mut runs = 15usize;
    let mut realdata = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/realdata"));
    let (mut symbols, mut events) = (500usize, 200_000usize);
    let mut only: Option<String> = None;
    let mut verify_books = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--runs" => runs = val("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--realdata" => realdata = PathBuf::from(val("--realdata")?),
            "--symbols" => symbols = val("--symbols")?.parse().map_err(|e| format!("--symbols: {e}"))?,
            "--events" => events = val("--events")?.parse().map_err(|e| format!("--events: {e}"))?,
            "--only" => only = Some(val("--only")?),
            "--no-verify" => verify_books = false,
            "-h" | "--help" => {
                println!(
                    "hftbacktest-compare [--runs N] [--realdata DIR] [--symbols N] [--events N] [--only STREAM] [--no-verify]\n  \
                     --only: run only the streams whose name contains STREAM (e.g. synthetic)\n  \
                     --no-verify: skip the level-for-level check (for profiling the timed loops)"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    let runs = runs.max(1);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let mut streams = Vec::new();
    for set in ["bybit5_linear", "bybit5_xrp_ob500", "binance_um_0718"] {
        if wanted(set) {
            streams.push(load_real(&realdata, set)?);
        }
    }
    if wanted("synthetic") {
        streams.push(load_synthetic(symbols, events)?);
    }

    println!("ns per level update, median of {runs} runs (every book checked level for level after every message)");
    println!(
        "{:<22} {:>6} {:>9} {:>8} {:>10} {:>9} {:>8} {:>9}",
        "stream", "msgs", "levels", "scalper", "ROIVector", "HashMap", "BTree", "ours/ROI"
    );
    for s in &streams {
        if verify_books {
            verify(s)?;
        }
        let lv = s.level_updates() as f64;
        let (mut o, mut r, mut h, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            o.push(time_ours(s)? / lv);
            r.push(time_h(s, new_roi(s)) / lv);
            h.push(time_h(s, new_hash(s)) / lv);
            b.push(time_h(s, new_btree(s)) / lv);
        }
        let (o, r, h, b) = (median(o), median(r), median(h), median(b));
        println!(
            "{:<22} {:>6} {:>9} {:>8.1} {:>10.1} {:>9.1} {:>8.1} {:>9.2}",
            s.name,
            s.msgs.len(),
            s.level_updates(),
            o,
            r,
            h,
            b,
            o / r
        );
    }
    Ok(())
}
