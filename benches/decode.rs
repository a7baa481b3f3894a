//! Public WS frame decoding ([`parse_ws_frame`]): the real Bybit samples of
//! `../shared/bybit-real-samples` (single frames and the recorded `orderbook.500` sequence, when
//! the directory is there) and synthetic frames shaped like the wire (an `orderbook.50` delta
//! with 10 levels a side, a 5-trade `publicTrade` frame, a ticker delta). Throughput is in
//! frames. Each is decoded twice: `one_pass` is today's [`parse_ws_frame`]; `two_pass` is a copy
//! of the decoder before issue #14 (a first pass that finds the topic, then a typed pass over the
//! whole frame again), kept here only to compare the two side by side in one build; the bench
//! checks that both give the same messages first. Run with `cargo bench --bench decode`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use scalper::connectors::bybit_public::messages::{
    parse_ws_frame, MarketData, OpResponse, RefusalReason, RefusalStream, Refusals, TickerData, TopicFrame,
    WsLiquidation, WsMessage, WsOrderbookData, WsTrade,
};
use scalper::domain::{Price, Qty, Symbol};
use scalper::market::data::{BookAction, BookUpdate, Level, Liquidation, Trade, TradeBatch};
use serde::Deserialize;
use std::hint::black_box;
use std::path::Path;

/// Every `ws_public__*` sample frame (compacted to one line, as it arrives on the wire) and
/// every line of the `.jsonl` sequences; empty when the shared directory is absent.
fn real_frames() -> (Vec<String>, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bybit-real-samples");
    let (mut single, mut seq) = (Vec::new(), Vec::new());
    let Ok(dirs) = std::fs::read_dir(&root) else { return (single, seq) };
    let mut files: Vec<_> = dirs
        .flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|f| f.path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        if name.ends_with(".jsonl") && name.contains("ws_public__") {
            seq.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
        } else if name.starts_with("ws_public__") {
            single.push(compact(&text));
        }
    }
    (single, seq)
}

/// `text` without the whitespace outside strings, keys kept in their order (a `Value` round
/// trip would sort them and put `data` before `topic`, which Bybit never does).
fn compact(text: &str) -> String {
    let (mut out, mut in_str, mut esc) = (String::with_capacity(text.len()), false, false);
    for c in text.chars() {
        if in_str {
            out.push(c);
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if !c.is_whitespace() {
            in_str = c == '"';
            out.push(c);
        }
    }
    out
}

fn book_delta_50() -> String {
    let bids: Vec<String> =
        (0..10).map(|i| format!("[\"{}.{}0\",\"{}.{:03}\"]", 109_147 - i * 3, i % 10, i + 1, 7 * i)).collect();
    let asks: Vec<String> = (0..10)
        .map(|i| {
            format!(
                "[\"{}.{}0\",\"{}\"]",
                109_148 + i * 2,
                (i + 3) % 10,
                if i % 3 == 0 { "0".into() } else { format!("0.{:03}", 11 * i) }
            )
        })
        .collect();
    format!(
        r#"{{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1758845431663,"data":{{"s":"BTCUSDT","b":[{}],"a":[{}],"u":21111423,"seq":457538796406}},"cts":1758845431662}}"#,
        bids.join(","),
        asks.join(",")
    )
}

fn trades_5() -> String {
    let items: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"T":17588454316{i:02},"s":"BTCUSDT","S":"{}","v":"0.0{i}1","p":"109148.{i}0","L":"PlusTick","i":"9c5e2f7b-3c4a-5d6e-8f90-1a2b3c4d5e{i:02}","BT":false,"RPI":false}}"#,
                if i % 2 == 0 { "Buy" } else { "Sell" }
            )
        })
        .collect();
    format!(r#"{{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1758845431663,"data":[{}]}}"#, items.join(","))
}

const TICKER_DELTA: &str = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","tickDirection":"PlusTick","lastPrice":"109148.00","markPrice":"109147.35","indexPrice":"109160.12","bid1Price":"109147.90","bid1Size":"1.687","ask1Price":"109148.00","ask1Size":"0.512","openInterest":"52311.475","openInterestValue":"5709685123.45","turnover24h":"9845123456.1234","volume24h":"90211.332","fundingRate":"0.0001"},"cs":457538796406,"ts":1758845431663}"#;

fn decode_all(frames: &[String], parse: fn(&str) -> bool) -> usize {
    frames.iter().filter(|f| parse(black_box(f))).count()
}

fn one_pass(text: &str) -> bool {
    black_box(parse_ws_frame(text)).is_ok()
}

fn two_pass(text: &str) -> bool {
    black_box(two_pass_parse(text)).is_ok()
}
// ---------------------------------------------------------------------------------------------
// The decoder before issue #14 (two passes), for comparison only. Same checks and conversions,
// except that a refused book does not name the book to resync (a private field).
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    topic: Option<&'a str>,
    #[serde(borrow, default)]
    op: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

fn levels_ok(bids: &[Level], asks: &[Level], max: usize) -> bool {
    [bids, asks].iter().all(|side| side.len() <= max && side.iter().all(|l| l.price.raw() > 0 && l.qty.raw() >= 0))
}

fn item_problem(price: Price, qty: Qty) -> Option<RefusalReason> {
    if price.raw() <= 0 {
        Some(RefusalReason::NonPositivePrice)
    } else if qty.raw() <= 0 {
        Some(RefusalReason::NonPositiveSize)
    } else {
        None
    }
}

fn two_pass_parse(text: &str) -> Result<WsMessage, String> {
    let refusals = &mut Refusals::default();
    let probe: Probe<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Some(topic) = probe.topic else {
        if probe.op.is_some() {
            let r: OpResponse = serde_json::from_str(text).map_err(|e| e.to_string())?;
            return Ok(if r.is_pong() { WsMessage::Pong(r) } else { WsMessage::Ack(r) });
        }
        return Err("frame has neither topic nor op".into());
    };
    let sym_of = |prefix: &str| {
        let s = topic.strip_prefix(prefix).unwrap_or("");
        if Symbol::is_valid(s) {
            Ok(s)
        } else {
            Err(format!("invalid symbol in topic {topic:?}"))
        }
    };
    if let Some(rest) = topic.strip_prefix("orderbook.") {
        let (depth, sym) = rest.split_once('.').ok_or("bad orderbook topic")?;
        let depth: u16 = depth.parse().map_err(|_| "bad depth")?;
        if !Symbol::is_valid(sym) {
            return Err("invalid symbol".into());
        }
        let f: TopicFrame<WsOrderbookData> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let action = match f.kind.as_str() {
            "snapshot" => BookAction::Snapshot,
            "delta" => BookAction::Delta,
            other => return Err(format!("unknown type {other:?}")),
        };
        if f.data.s != sym {
            return Err("symbol does not match topic".into());
        }
        let max = match action {
            BookAction::Snapshot => usize::from(depth),
            BookAction::Delta => 2 * usize::from(depth),
        };
        if !levels_ok(&f.data.b, &f.data.a, max) {
            return Err("bad level".into());
        }
        let book = BookUpdate {
            symbol: Symbol::new(sym),
            action,
            depth,
            bids: f.data.b,
            asks: f.data.a,
            update_id: f.data.u,
            seq: f.data.seq,
            cts_ms: f.cts,
        };
        return Ok(WsMessage::Market { ts_ms: f.ts, data: MarketData::Book(book) });
    }
    if topic.starts_with("publicTrade.") {
        let sym = sym_of("publicTrade.")?;
        let f: TopicFrame<Vec<WsTrade>> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if f.data.iter().any(|t| t.s != sym) {
            return Err("trade symbol does not match topic".into());
        }
        let mut trades = Vec::with_capacity(f.data.len());
        for t in f.data {
            if let Some(r) = item_problem(t.p, t.v) {
                refusals.add(RefusalStream::Trade, r, || format!("{sym}: trade {} price={} size={}", t.i, t.p, t.v));
                continue;
            }
            trades.push(Trade {
                ts_ms: t.time,
                price: t.p,
                qty: t.v,
                aggressor: t.side,
                id: t.i,
                block_trade: t.block_trade,
                rpi: t.rpi,
            });
        }
        let batch = TradeBatch { symbol: Symbol::new(sym), trades };
        return Ok(WsMessage::Market { ts_ms: f.ts, data: MarketData::Trades(batch) });
    }
    if topic.starts_with("tickers.") {
        let sym = sym_of("tickers.")?;
        let mut f: TopicFrame<TickerData> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if f.data.symbol != sym {
            return Err("ticker symbol does not match topic".into());
        }
        f.data.sanitize(RefusalStream::Ticker, refusals);
        return Ok(WsMessage::Market { ts_ms: f.ts, data: MarketData::Ticker(f.data.into_update()) });
    }
    if topic.starts_with("allLiquidation.") {
        let sym = sym_of("allLiquidation.")?;
        let f: TopicFrame<OneOrMany<WsLiquidation>> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let items = match f.data {
            OneOrMany::Many(v) => v,
            OneOrMany::One(x) => vec![x],
        };
        if items.iter().any(|l| l.s != sym) {
            return Err("liquidation symbol does not match topic".into());
        }
        let mut out = Vec::with_capacity(items.len());
        for l in items {
            if let Some(r) = item_problem(l.p, l.v) {
                refusals
                    .add(RefusalStream::Liquidation, r, || format!("{sym}: liquidation price={} size={}", l.p, l.v));
                continue;
            }
            out.push(Liquidation { symbol: Symbol::new(sym), ts_ms: l.time, side: l.side, price: l.p, qty: l.v });
        }
        return Ok(WsMessage::Market { ts_ms: f.ts, data: MarketData::Liquidations(out) });
    }
    Ok(WsMessage::Unhandled(topic.to_string()))
}

fn bench_decode(c: &mut Criterion) {
    let (single, seq) = real_frames();
    let synthetic: Vec<(&str, Vec<String>)> = vec![
        ("book_delta_50x10", vec![book_delta_50()]),
        ("trades_5", vec![trades_5()]),
        ("ticker_delta", vec![TICKER_DELTA.to_string()]),
        ("real_samples", single),
        ("real_ob500_sequence", seq),
    ];
    let mut g = c.benchmark_group("ws_decode");
    for (name, frames) in &synthetic {
        if frames.is_empty() {
            continue;
        }
        for f in frames {
            let (new, old) = (parse_ws_frame(f), two_pass_parse(f));
            assert!(new.is_ok(), "{name} must decode: {f}");
            assert_eq!(new.ok(), old.ok(), "{name}: both decoders agree on {f}");
        }
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_with_input(BenchmarkId::new("one_pass", name), frames, |b, f| b.iter(|| decode_all(f, one_pass)));
        g.bench_with_input(BenchmarkId::new("two_pass", name), frames, |b, f| b.iter(|| decode_all(f, two_pass)));
    }
    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
