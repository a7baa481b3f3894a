//! Seeded fuzzing of every Bybit decoder with mutated real messages.
//!
//! Every file under `../shared/bybit-real-samples/**` (each line of a `.jsonl` sequence is one
//! message) is mutated by a seeded generator (numbers negated, zeroed, made huge or NaN-ish,
//! fields removed, duplicated or given another type, arrays emptied or blown up to thousands of
//! items, timestamps pushed far into the future, text truncated, bytes flipped or inserted) and
//! each mutant goes through EVERY decoder: the public WS frame parser (with its sanity checks and a
//! receive time), the public REST results (instruments, orderbook, tickers, recent trades, time,
//! klines), the private WS frame parser and the private REST results (orders, executions,
//! positions, wallet, acks). Accepted order books are also applied to an `OrderBook`.
//!
//! Asserted: no panic anywhere, and no accepted public event or value carries a price <= 0 or a
//! size <= 0 where Bybit never sends one (book delete levels of size 0 excepted, as are the
//! signed analytics fields: 24 h change, funding rate). The private decoders are held to the same
//! rule by [`private_values_must_be_positive`] (the values Bybit legitimately sends as "0", such
//! as the average price of an unfilled order, excepted).
//!
//! CI runs `FRAMES_DEFAULT` mutants (a few seconds in debug); `SCALPER_FUZZ_FRAMES=1000000`
//! (best with `--release`) runs a long campaign, `SCALPER_FUZZ_SEED` changes the seed.

mod common;

use common::real_samples_dir;
use scalper::connectors::bybit_private::messages::{
    is_position_tpsl, parse_private_frame, CancelAllResult, OrderAck, Page, PrivateFrame, RawExecution, RawOrder,
    RawPosition, VenueExecution, VenueOrder, VenuePosition, WalletResult,
};
use scalper::connectors::bybit_public::messages::{
    parse_envelope, parse_ws_frame_checked, InstrumentsPage, KlineResult, MarketData, OrderbookResult,
    RecentTradesResult, Refusals, Sanity, ServerTime, TickersResult, WsMessage,
};
use scalper::domain::{EventTime, Price, Symbol, TimeMs};
use scalper::engine::event::EventKind;
use scalper::market::data::{BookUpdate, Instrument, TickerUpdate, Trade};
use scalper::market::orderbook::OrderBook;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// Mutants per CI run.
const FRAMES_DEFAULT: u64 = 2_500;
/// Local receive time given to the WS parser (frames' own times are around 2022-2025).
const RECV_MS: TimeMs = 1_760_000_000_000;

/// Every message of every sample file, as parsed JSON, grouped by file.
fn corpus(dir: &Path) -> Vec<(String, Vec<Value>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable samples dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable sample");
        let name = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
        let messages = if f.extension().is_some_and(|x| x == "jsonl") {
            let lines = text.lines().filter(|l| !l.trim().is_empty());
            lines.map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}"))).collect()
        } else {
            vec![serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))]
        };
        out.push((name, messages));
    }
    out
}

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Replacement texts for a decimal string.
const NUMBER_TEXTS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-1",
    "-30000",
    "",
    " ",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e308",
    "1e-9",
    "0.000000001",
    "92233720368.54775807",
    "99999999999999999999999",
    "-99999999999999999999999",
    "1.2.3",
    "+5",
    "--5",
    "0x10",
    "١٢٣",
];

/// Far-future or absurd times.
const TIME_VALUES: &[i64] = &[4_102_444_800_000, 253_402_300_799_999, i64::MAX, -1, 0, 1_760_000_000_000 + 3_600_000];

fn is_decimal_text(s: &str) -> bool {
    !s.is_empty() && s.parse::<f64>().is_ok()
}

fn is_time_key(k: &str) -> bool {
    matches!(
        k,
        "T" | "ts"
            | "cts"
            | "time"
            | "timeSecond"
            | "timeNano"
            | "creationTime"
            | "createdTime"
            | "updatedTime"
            | "execTime"
            | "launchTime"
            | "start"
            | "end"
    )
}

/// Paths to every node of `v` (object keys and array indices), `v` itself first.
fn paths(v: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(PathStep::Key(k.clone()));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            // Long arrays (500-level books): a sample of their items is enough.
            for (i, c) in a.iter().enumerate().take(8) {
                prefix.push(PathStep::Index(i));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (PathStep::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (PathStep::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// One structural mutation at a random node.
fn mutate_value(v: &mut Value, rng: &mut Rng) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let path = all[rng.below(all.len())].clone();
    let key = match path.last() {
        Some(PathStep::Key(k)) => Some(k.clone()),
        _ => None,
    };
    // Removing or duplicating needs the parent.
    if !path.is_empty() && rng.chance(6) {
        let (last, parent_path) = path.split_last().expect("non-empty");
        if let Some(parent) = node_mut(v, parent_path) {
            match (parent, last) {
                (Value::Object(m), PathStep::Key(k)) => {
                    if rng.chance(2) {
                        m.remove(k);
                    } else if let Some(c) = m.get(k).cloned() {
                        m.insert(format!("{k}_"), c);
                    }
                }
                (Value::Array(a), PathStep::Index(i)) => {
                    if rng.chance(2) && *i < a.len() {
                        a.remove(*i);
                    } else if let Some(c) = a.get(*i).cloned() {
                        a.insert(*i, c);
                    }
                }
                _ => {}
            }
        }
        return;
    }
    let Some(node) = node_mut(v, &path) else { return };
    let is_time = key.as_deref().is_some_and(is_time_key);
    match node {
        Value::String(s) if is_time && rng.chance(2) => {
            let t = TIME_VALUES[rng.below(TIME_VALUES.len())];
            *s = t.to_string();
        }
        Value::Number(_) if is_time && rng.chance(2) => {
            *node = Value::from(TIME_VALUES[rng.below(TIME_VALUES.len())]);
        }
        Value::String(s) if is_decimal_text(s) => match rng.below(4) {
            0 => *s = format!("-{s}"),
            1 => *s = NUMBER_TEXTS[rng.below(NUMBER_TEXTS.len())].to_string(),
            2 => *node = serde_json::json!(-s.parse::<f64>().unwrap_or(1.0)),
            _ => *node = type_swap(rng),
        },
        Value::Number(n) => match rng.below(4) {
            0 => *node = serde_json::json!(-n.as_f64().unwrap_or(1.0)),
            1 => *node = Value::from(0),
            2 => *node = serde_json::json!(1e300),
            _ => *node = Value::String(n.to_string()),
        },
        Value::Array(a) => match rng.below(3) {
            0 => a.clear(),
            1 if !a.is_empty() => {
                // A huge array: thousands of copies of one item (a 10 MB book delta in small;
                // more than 2 × any depth, which is what the checks bound).
                // At most ~100 kB per blow-up: debug-mode decoding costs per byte.
                let item = a[rng.below(a.len())].clone();
                let n = (1_001 + rng.below(4_000)).min(100_000 / item.to_string().len().max(1));
                a.extend(std::iter::repeat_n(item, n));
            }
            _ => *node = type_swap(rng),
        },
        Value::Bool(b) => {
            *node = if rng.chance(2) { Value::Bool(!*b) } else { Value::String(b.to_string()) };
        }
        _ => *node = type_swap(rng),
    }
}

fn type_swap(rng: &mut Rng) -> Value {
    match rng.below(7) {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => Value::from(-1),
        3 => Value::String(String::new()),
        4 => Value::String("Buy".into()),
        5 => Value::Array(vec![]),
        _ => Value::Object(Default::default()),
    }
}

/// Byte-level damage: truncation, flips, insertions, a duplicated key.
fn mutate_text(text: &mut String, rng: &mut Rng) {
    let mut bytes = std::mem::take(text).into_bytes();
    match rng.below(4) {
        0 if !bytes.is_empty() => bytes.truncate(rng.below(bytes.len())),
        1 => {
            for _ in 0..1 + rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let i = rng.below(bytes.len() + 1);
            let junk: &[&[u8]] = &[b"-", b"0", b"\"", b",", b"{", b"]", b"\\u0000", b"\xff", b"e999"];
            let j = junk[rng.below(junk.len())];
            bytes.splice(i..i, j.iter().copied());
        }
        _ => {
            // Duplicate the first key of the text (`{"a":1` → `{"a":1,"a":1`).
            let s = String::from_utf8_lossy(&bytes).to_string();
            if let (Some(start), Some(end)) = (s.find('{'), s.find(',')) {
                if start < end {
                    let pair = s[start + 1..end].to_string();
                    bytes = s.replacen(&format!("{pair},"), &format!("{pair},{pair},"), 1).into_bytes();
                }
            }
        }
    }
    *text = String::from_utf8_lossy(&bytes).into_owned();
}

/// Counts of what the decoders did with the mutants.
#[derive(Debug, Default)]
struct Tally {
    frames: u64,
    ws_market: u64,
    ws_errors: u64,
    ws_refused: u64,
    rest_accepted: u64,
    private_accepted: u64,
    book_applies: u64,
}

fn check_price(p: Price, what: &str, ctx: &str) {
    assert!(p.raw() > 0, "{ctx}: accepted {what} {p}");
}

fn check_book(b: &BookUpdate, ctx: &str) {
    for l in b.bids.iter().chain(&b.asks) {
        check_price(l.price, "book price", ctx);
        assert!(l.qty.raw() >= 0, "{ctx}: accepted book size {}", l.qty);
    }
}

fn check_trade(t: &Trade, ctx: &str) {
    check_price(t.price, "trade price", ctx);
    assert!(t.qty.raw() > 0, "{ctx}: accepted trade size {}", t.qty);
}

fn check_ticker(t: &TickerUpdate, ctx: &str) {
    for p in [t.last_price, t.mark_price, t.index_price, t.bid1_price, t.ask1_price].into_iter().flatten() {
        check_price(p, "ticker price", ctx);
    }
    for x in [t.turnover_24h, t.volume_24h, t.open_interest].into_iter().flatten() {
        assert!(x >= 0.0 && x.is_finite(), "{ctx}: accepted ticker volume {x}");
    }
    for x in [t.price_24h_pcnt, t.funding_rate].into_iter().flatten() {
        assert!(x.is_finite(), "{ctx}: accepted ticker figure {x}");
    }
}

fn check_instrument(i: &Instrument, ctx: &str) {
    check_price(i.tick_size, "tick size", ctx);
    assert!(i.qty_step.raw() > 0, "{ctx}: qty step {}", i.qty_step);
    assert!(i.min_qty.raw() >= 0 && i.max_qty.raw() >= 0, "{ctx}: {i:?}");
    assert!(i.min_notional.raw() >= 0 && i.max_leverage.raw() >= 0, "{ctx}: {i:?}");
}

/// The non-positive prices and sizes a private value carries where Bybit never sends them.
fn private_order_problems(o: &VenueOrder) -> Vec<String> {
    let mut v = Vec::new();
    for (n, p) in [("price", o.price), ("avgPrice", o.avg_price), ("triggerPrice", o.trigger_price)] {
        if let Some(p) = p.filter(|p| p.raw() <= 0) {
            v.push(format!("order {n} {p}"));
        }
    }
    // Size 0 is Bybit's own for Full-mode position TP/SL orders, negative never.
    if o.qty.raw() < 0 || (o.qty.raw() == 0 && !is_position_tpsl(&o.stop_order_type)) {
        v.push(format!("order qty {} ({:?})", o.qty, o.stop_order_type));
    }
    if o.leaves_qty.raw() < 0 || o.cum_exec_qty.raw() < 0 {
        v.push(format!("order leaves/cum qty {} / {}", o.leaves_qty, o.cum_exec_qty));
    }
    v
}

/// A fill (trade, bust, ADL) must have a positive price and size; other executions (funding,
/// settlement: never booked as fills, see `VenueExecution::is_trade`) only non-negative ones.
fn private_execution_problems(e: &VenueExecution) -> Vec<String> {
    let mut v = Vec::new();
    let floor = if e.is_trade() { 1 } else { 0 };
    if e.exec_price.raw() < floor {
        v.push(format!("execution price {} ({:?})", e.exec_price, e.exec_type));
    }
    if e.exec_qty.raw() < floor {
        v.push(format!("execution qty {} ({:?})", e.exec_qty, e.exec_type));
    }
    if e.closed_size.raw() < 0 {
        v.push(format!("execution closedSize {}", e.closed_size));
    }
    v
}

fn private_position_problems(p: &VenuePosition) -> Vec<String> {
    let mut v = Vec::new();
    if p.size.raw() < 0 {
        v.push(format!("position size {}", p.size));
    }
    for (n, x) in [("avgPrice", p.avg_price), ("markPrice", p.mark_price)] {
        if let Some(x) = x.filter(|x| x.raw() <= 0) {
            v.push(format!("position {n} {x}"));
        }
    }
    if let Some(l) = p.leverage.filter(|l| l.raw() <= 0) {
        v.push(format!("position leverage {l}"));
    }
    v
}

/// The private decoders' share of the "no non-positive price or size" rule: a violation fails
/// the run with the mutant that caused it.
fn private_values_must_be_positive(problems: Vec<String>, ctx: &str) {
    if problems.is_empty() {
        return;
    }
    panic!("{ctx}: private decoder accepted {problems:?}");
}

/// Runs one text through every decoder, checking what is accepted. `name` is the sample's file
/// name: a private REST answer is held to the value rule only by the decoder of its own
/// endpoint (every private result field is optional, so an execution list also "decodes" as
/// an order list with zero quantities).
fn run_all(text: &str, name: &str, ctx: &str, book: &mut OrderBook, tally: &mut Tally) {
    let kind = name.rsplit('/').next().unwrap_or(name);
    tally.frames += 1;
    // Public WebSocket, as the live feed calls it.
    let mut refused = Refusals::default();
    match parse_ws_frame_checked(text, Sanity { recv_ms: Some(RECV_MS), max_trade_ahead_ms: 5_000 }, &mut refused) {
        Ok(WsMessage::Market { ts_ms, data }) => {
            tally.ws_market += 1;
            match &data {
                MarketData::Book(b) => {
                    check_book(b, ctx);
                    let _ = book.apply(b);
                    tally.book_applies += 1;
                }
                MarketData::Trades(b) => {
                    for t in &b.trades {
                        check_trade(t, ctx);
                        let ahead = t.ts_ms.saturating_sub(RECV_MS);
                        assert!(ahead <= 5_000, "{ctx}: accepted a trade {ahead} ms ahead");
                    }
                }
                MarketData::Ticker(t) => check_ticker(t, ctx),
                MarketData::Liquidations(v) => {
                    for l in v {
                        check_price(l.price, "liquidation price", ctx);
                        assert!(l.qty.raw() > 0, "{ctx}: accepted liquidation size {}", l.qty);
                    }
                }
            }
            let mut evs = Vec::new();
            data.push_events(EventTime { exchange_ms: Some(ts_ms), recv_ms: RECV_MS }, &mut evs);
            for e in &evs {
                if let EventKind::Trades(b) = &e.kind {
                    assert!(!b.trades.is_empty(), "{ctx}: empty trade event");
                }
            }
        }
        Ok(_) => {}
        Err(_) => tally.ws_errors += 1,
    }
    tally.ws_refused += refused.total();

    // Public REST, as the REST client converts them.
    let mut refused = Refusals::default();
    if let Ok(page) = parse_envelope::<InstrumentsPage>(text) {
        for i in &page.list {
            if let Ok(inst) = i.to_instrument() {
                check_instrument(&inst, ctx);
                tally.rest_accepted += 1;
            }
        }
    }
    if let Ok(ob) = parse_envelope::<OrderbookResult>(text) {
        if let Ok(b) = ob.into_book_checked(500, &mut refused) {
            check_book(&b, ctx);
            let _ = book.apply(&b);
            tally.rest_accepted += 1;
        }
    }
    if let Ok(t) = parse_envelope::<TickersResult>(text) {
        for u in t.into_updates(&mut refused) {
            check_ticker(&u, ctx);
            tally.rest_accepted += 1;
        }
    }
    if let Ok(r) = parse_envelope::<RecentTradesResult>(text) {
        let sym = Symbol::new(r.list.first().map_or("BTCUSDT", |t| t.symbol.as_str()));
        if let Ok(b) = r.into_batch(&sym, &mut refused) {
            for t in &b.trades {
                check_trade(t, ctx);
                tally.rest_accepted += 1;
            }
        }
    }
    if let Ok(t) = parse_envelope::<ServerTime>(text) {
        let _ = t.to_ms();
    }
    if let Ok(k) = parse_envelope::<KlineResult>(text) {
        let sym = Symbol::new(if k.symbol.is_empty() { "BTCUSDT" } else { k.symbol.as_str() });
        if let Ok(out) = k.into_closed(&sym, 60_000, RECV_MS) {
            for c in &out.klines {
                for p in [c.open, c.high, c.low, c.close] {
                    check_price(p, "kline price", ctx);
                }
                assert!(c.volume.raw() >= 0 && c.turnover.raw() >= 0, "{ctx}: {c:?}");
            }
        }
    }

    // Private WebSocket and REST.
    if let Ok(f) = parse_private_frame(text) {
        tally.private_accepted += 1;
        let problems: Vec<String> = match &f {
            PrivateFrame::Orders { orders, .. } => orders.iter().flat_map(private_order_problems).collect(),
            PrivateFrame::Executions { executions, .. } => {
                executions.iter().flat_map(private_execution_problems).collect()
            }
            PrivateFrame::Positions { positions, .. } => positions.iter().flat_map(private_position_problems).collect(),
            PrivateFrame::Wallet { .. } | PrivateFrame::Op(_) | PrivateFrame::Unhandled(_) => Vec::new(),
        };
        private_values_must_be_positive(problems, ctx);
    }
    if let Ok(p) = parse_envelope::<Page<RawOrder>>(text) {
        let orders: Vec<VenueOrder> = p.list.iter().filter_map(|o| o.typed().ok()).collect();
        if kind.starts_with("rest_order_realtime") {
            private_values_must_be_positive(orders.iter().flat_map(private_order_problems).collect(), ctx);
        }
    }
    if let Ok(p) = parse_envelope::<Page<RawExecution>>(text) {
        let execs: Vec<VenueExecution> = p.list.iter().filter_map(|e| e.typed().ok()).collect();
        if kind.starts_with("rest_execution_list") {
            private_values_must_be_positive(execs.iter().flat_map(private_execution_problems).collect(), ctx);
        }
    }
    if let Ok(p) = parse_envelope::<Page<RawPosition>>(text) {
        let positions: Vec<VenuePosition> = p.list.iter().filter_map(|x| x.typed().ok()).collect();
        if kind.starts_with("rest_position_list") {
            private_values_must_be_positive(positions.iter().flat_map(private_position_problems).collect(), ctx);
        }
    }
    if let Ok(w) = parse_envelope::<WalletResult>(text) {
        for x in &w.list {
            let _ = x.typed();
        }
    }
    let _ = parse_envelope::<OrderAck>(text);
    let _ = parse_envelope::<CancelAllResult>(text);
    tally.ws_refused += refused.total();
}

#[test]
fn mutated_real_messages_never_panic_and_never_yield_non_positive_values() {
    let Some(dir) = real_samples_dir() else { return };
    let corpus = corpus(&dir);
    assert!(corpus.len() >= 70, "only {} sample files", corpus.len());
    let frames: u64 = std::env::var("SCALPER_FUZZ_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(FRAMES_DEFAULT);
    let seed: u64 = std::env::var("SCALPER_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5CA1_9E12);
    let mut rng = Rng(seed | 1);
    let mut book = OrderBook::new(Price::from_raw(1), 500).expect("a book on the finest grid");
    let mut tally = Tally::default();
    let started = Instant::now();

    // The unmutated corpus first (no panic, nothing insane accepted either).
    for (name, messages) in &corpus {
        for v in messages {
            run_all(&v.to_string(), name, name, &mut book, &mut tally);
        }
    }
    let baseline_errors = tally.ws_errors;
    let messages: usize = corpus.iter().map(|c| c.1.len()).sum();
    for i in 0..frames {
        // A file, then one of its messages: a 50-line sequence is one sample, not fifty.
        let (name, lines) = &corpus[rng.below(corpus.len())];
        let mut v = lines[rng.below(lines.len())].clone();
        let structural = 1 + rng.below(3);
        for _ in 0..structural {
            mutate_value(&mut v, &mut rng);
        }
        let mut text = v.to_string();
        if rng.chance(4) {
            mutate_text(&mut text, &mut rng);
        }
        let ctx = format!("mutant {i} of {name} (seed {seed}): {}", text.chars().take(300).collect::<String>());
        run_all(&text, name, &ctx, &mut book, &mut tally);
    }
    let took = started.elapsed();
    println!(
        "fuzzed {} texts ({} mutants of {} real messages, seed {seed}) in {took:.2?}: {} public market frames \
         accepted, {} WS decode errors ({} on the real corpus), {} values refused by the sanity checks, {} REST \
         values accepted, {} private frames accepted, {} book applies",
        tally.frames,
        frames,
        messages,
        tally.ws_market,
        tally.ws_errors,
        baseline_errors,
        tally.ws_refused,
        tally.rest_accepted,
        tally.private_accepted,
        tally.book_applies,
    );
    assert!(tally.ws_refused > 0, "the mutants must exercise the sanity checks");
    assert!(tally.ws_market > frames / 50, "mutants must still reach the public WS value checks");
}
