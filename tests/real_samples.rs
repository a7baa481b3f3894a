//! Every real Bybit v5 public message in `../shared/bybit-real-samples` (docs examples and
//! published captures, origins in its SOURCES.md) goes through the connector's own decoding path
//! with its sanity checks, and every decoded value is compared with the sample's own JSON:
//! - `ws_public__*`: [`parse_ws_frame_checked`] (receive time = the frame's `ts`): books, trades
//!   (with `BT` / `RPI`), tickers and liquidations carry exactly the sample's values and nothing is
//!   refused; kline (not subscribed) is reported as unhandled;
//! - `ws_op__*`: the public socket's parser and the private socket's both read the operation
//!   answer (pong, subscribe or auth ack) with its `op`, `conn_id`, `req_id` and success;
//! - `rest_instruments__`, `rest_orderbook__`, `rest_recent_trade__`, `rest_tickers__`,
//!   `rest_time__`: the REST client's result types and conversions.
//!
//! The recorded `ob500` sequence replays into a valid book with the snapshot's exact levels.

mod common;

use common::real_samples_dir;
use scalper::connectors::bybit_private::messages::{parse_private_frame, PrivateFrame};
use scalper::connectors::bybit_public::messages::{
    parse_envelope, parse_ws_frame, parse_ws_frame_checked, InstrumentsPage, MarketData, OrderbookResult,
    RecentTradesResult, Refusals, Sanity, ServerTime, TickersResult, WsMessage,
};
use scalper::domain::{EventTime, Price, Qty, Side, Symbol};
use scalper::engine::event::EventKind;
use scalper::market::data::{BookAction, Level, TickerUpdate};
use scalper::market::orderbook::OrderBook;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for source in std::fs::read_dir(dir).expect("samples dir").flatten().filter(|e| e.path().is_dir()) {
        for f in std::fs::read_dir(source.path()).expect("source dir").flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.starts_with(prefix) && name.ends_with(".json") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
    (text, v)
}

fn price(v: &Value) -> Price {
    Price::parse(v.as_str().expect("a decimal string")).expect("a decimal")
}

fn qty(v: &Value) -> Qty {
    Qty::parse(v.as_str().expect("a decimal string")).expect("a decimal")
}

fn int(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_str()?.parse().ok()).unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn side(v: &Value) -> Side {
    match v.as_str() {
        Some("Buy") => Side::Buy,
        Some("Sell") => Side::Sell,
        other => panic!("not a side: {other:?}"),
    }
}

fn levels(v: &Value) -> Vec<Level> {
    v.as_array().map(|a| a.iter().map(|l| Level { price: price(&l[0]), qty: qty(&l[1]) }).collect()).unwrap_or_default()
}

/// The optional price field `name` of a ticker JSON object (`""` or absent: none).
fn opt_price(d: &Value, name: &str) -> Option<Price> {
    d.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(|s| Price::parse(s).expect("a decimal"))
}

fn opt_f64(d: &Value, name: &str) -> Option<f64> {
    d.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(|s| s.parse().expect("a number"))
}

fn assert_ticker_matches(t: &TickerUpdate, d: &Value, what: &str) {
    assert_eq!(t.symbol.as_str(), d["symbol"].as_str().unwrap(), "{what}");
    assert_eq!(t.last_price, opt_price(d, "lastPrice"), "{what}: lastPrice");
    assert_eq!(t.mark_price, opt_price(d, "markPrice"), "{what}: markPrice");
    assert_eq!(t.index_price, opt_price(d, "indexPrice"), "{what}: indexPrice");
    assert_eq!(t.bid1_price, opt_price(d, "bid1Price"), "{what}: bid1Price");
    assert_eq!(t.ask1_price, opt_price(d, "ask1Price"), "{what}: ask1Price");
    assert_eq!(t.price_24h_pcnt, opt_f64(d, "price24hPcnt"), "{what}: price24hPcnt");
    assert_eq!(t.turnover_24h, opt_f64(d, "turnover24h"), "{what}: turnover24h");
    assert_eq!(t.volume_24h, opt_f64(d, "volume24h"), "{what}: volume24h");
    assert_eq!(t.funding_rate, opt_f64(d, "fundingRate"), "{what}: fundingRate");
    assert_eq!(t.open_interest, opt_f64(d, "openInterest"), "{what}: openInterest");
    for p in [t.last_price, t.mark_price, t.index_price, t.bid1_price, t.ask1_price].into_iter().flatten() {
        assert!(p.raw() > 0, "{what}: price {p}");
    }
}

/// Decodes one public WS sample on the live path and checks every value against its JSON.
/// Returns the number of engine events it gives (0 for unhandled topics).
fn check_public_ws(p: &Path) -> usize {
    let (text, v) = read(p);
    let what = p.display().to_string();
    let ts = v["ts"].as_i64().expect("frame ts");
    assert!(ts > 1_500_000_000_000, "{what}: frame ts {ts}");
    let mut refused = Refusals::default();
    let msg = parse_ws_frame_checked(&text, Sanity { recv_ms: Some(ts), max_trade_ahead_ms: 5_000 }, &mut refused)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(refused.is_empty(), "{what}: refused {refused:?}");
    let topic = v["topic"].as_str().unwrap();
    let (ts_ms, data) = match msg {
        WsMessage::Market { ts_ms, data } => (ts_ms, data),
        WsMessage::Unhandled(t) => {
            assert!(t.starts_with("kline.") && t == topic, "{what}: unhandled {t}");
            return 0;
        }
        other => panic!("{what}: not market data: {other:?}"),
    };
    assert_eq!(ts_ms, ts, "{what}");
    let d = &v["data"];
    match &data {
        MarketData::Book(b) => {
            let depth: u16 = topic.split('.').nth(1).unwrap().parse().unwrap();
            assert_eq!(b.depth, depth, "{what}");
            assert_eq!(b.symbol.as_str(), d["s"].as_str().unwrap(), "{what}");
            let kind = if v["type"] == "snapshot" { BookAction::Snapshot } else { BookAction::Delta };
            assert_eq!(b.action, kind, "{what}");
            assert_eq!((b.bids.clone(), b.asks.clone()), (levels(&d["b"]), levels(&d["a"])), "{what}");
            assert_eq!((b.update_id, b.seq), (int(&d["u"]) as u64, int(&d["seq"]) as u64), "{what}");
            assert_eq!(b.cts_ms, v.get("cts").map(int), "{what}");
            assert!(!b.bids.is_empty() || !b.asks.is_empty(), "{what}: empty book");
        }
        MarketData::Trades(batch) => {
            let items = d.as_array().expect("trade data is an array");
            assert_eq!(batch.trades.len(), items.len(), "{what}");
            for (t, j) in batch.trades.iter().zip(items) {
                assert_eq!(batch.symbol.as_str(), j["s"].as_str().unwrap(), "{what}");
                assert_eq!((t.ts_ms, t.price, t.qty), (int(&j["T"]), price(&j["p"]), qty(&j["v"])), "{what}");
                assert_eq!((t.aggressor, t.id.as_str()), (side(&j["S"]), j["i"].as_str().unwrap()), "{what}");
                assert_eq!(t.block_trade, j["BT"].as_bool().unwrap_or(false), "{what}");
                assert_eq!(t.rpi, j.get("RPI").and_then(Value::as_bool).unwrap_or(false), "{what}");
                assert!(t.price.raw() > 0 && t.qty.raw() > 0, "{what}");
            }
        }
        MarketData::Ticker(t) => assert_ticker_matches(t, d, &what),
        MarketData::Liquidations(list) => {
            let items: Vec<&Value> = match d.as_array() {
                Some(a) => a.iter().collect(),
                None => vec![d],
            };
            assert_eq!(list.len(), items.len(), "{what}");
            for (l, j) in list.iter().zip(items) {
                assert_eq!(l.symbol.as_str(), j["s"].as_str().unwrap(), "{what}");
                assert_eq!((l.ts_ms, l.side), (int(&j["T"]), side(&j["S"])), "{what}");
                assert_eq!((l.price, l.qty), (price(&j["p"]), qty(&j["v"])), "{what}");
                assert!(l.price.raw() > 0 && l.qty.raw() > 0, "{what}");
            }
        }
    }
    let mut evs = Vec::new();
    data.push_events(EventTime { exchange_ms: Some(ts_ms), recv_ms: ts_ms }, &mut evs);
    assert!(!evs.is_empty(), "{what}: no event");
    for e in &evs {
        assert!(
            matches!(
                e.kind,
                EventKind::Book(_) | EventKind::Trades(_) | EventKind::Ticker(_) | EventKind::Liquidation(_)
            ),
            "{what}: {e:?}"
        );
    }
    evs.len()
}

#[test]
fn every_real_public_ws_sample_decodes_to_its_exact_values() {
    let Some(dir) = real_samples_dir() else { return };
    let paths = files(&dir, "ws_public__");
    assert!(paths.len() >= 15, "only {} public WS samples", paths.len());
    let (mut market, mut events) = (0, 0);
    for p in &paths {
        let n = check_public_ws(p);
        market += usize::from(n > 0);
        events += n;
    }
    println!("{} real public WS samples: {market} market frames, {events} events", paths.len());
    assert!(market >= 14, "{market}");
}

#[test]
fn every_real_op_answer_is_read_by_both_sockets() {
    let Some(dir) = real_samples_dir() else { return };
    let paths = files(&dir, "ws_op__");
    assert!(paths.len() >= 10, "only {} op samples", paths.len());
    for p in &paths {
        let (text, v) = read(p);
        let what = p.display().to_string();
        let op = v["op"].as_str().expect("op");
        let public = parse_ws_frame(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
        let r = match &public {
            WsMessage::Pong(r) => {
                assert!(op == "pong" || v["ret_msg"] == "pong", "{what}");
                r
            }
            WsMessage::Ack(r) => {
                assert!(r.is_success(), "{what}: a real success answer");
                r
            }
            other => panic!("{what}: {other:?}"),
        };
        assert_eq!(r.op, op, "{what}");
        assert_eq!(r.conn_id, v["conn_id"].as_str().unwrap_or(""), "{what}");
        assert_eq!(r.req_id, v["req_id"].as_str().unwrap_or(""), "{what}");
        assert_eq!(r.success, v["success"].as_bool(), "{what}");
        assert!(!r.conn_id.is_empty(), "{what}");
        let private = parse_private_frame(&text).unwrap_or_else(|e| panic!("{what}: private socket: {e}"));
        let PrivateFrame::Op(pr) = private else { panic!("{what}: {private:?}") };
        assert_eq!(&pr, r, "{what}: both sockets read the same answer");
    }
}

#[test]
fn every_real_public_rest_sample_decodes_to_its_exact_values() {
    let Some(dir) = real_samples_dir() else { return };
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for prefix in ["rest_instruments__", "rest_orderbook__", "rest_recent_trade__", "rest_tickers__", "rest_time__"] {
        for p in files(&dir, prefix) {
            let (text, v) = read(&p);
            let what = p.display().to_string();
            let r = &v["result"];
            *seen.entry(prefix).or_default() += 1;
            let mut refused = Refusals::default();
            match prefix {
                "rest_instruments__" => {
                    let page: InstrumentsPage = parse_envelope(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(page.list.len(), r["list"].as_array().unwrap().len(), "{what}");
                    for (i, j) in page.list.iter().zip(r["list"].as_array().unwrap()) {
                        assert!(i.is_usdt_perpetual(), "{what}");
                        let inst = i.to_instrument().unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(inst.symbol.as_str(), j["symbol"].as_str().unwrap(), "{what}");
                        assert_eq!(inst.tick_size, price(&j["priceFilter"]["tickSize"]), "{what}");
                        assert_eq!(inst.qty_step, qty(&j["lotSizeFilter"]["qtyStep"]), "{what}");
                        assert_eq!(inst.min_qty, qty(&j["lotSizeFilter"]["minOrderQty"]), "{what}");
                        assert_eq!(inst.max_qty, qty(&j["lotSizeFilter"]["maxOrderQty"]), "{what}");
                        assert_eq!(inst.max_leverage, price(&j["leverageFilter"]["maxLeverage"]), "{what}");
                        assert_eq!(inst.launch_time_ms, int(&j["launchTime"]), "{what}");
                        let notional = j["lotSizeFilter"].get("minNotionalValue").map_or(Price::ZERO, price);
                        assert_eq!(inst.min_notional, notional, "{what}");
                        assert!(inst.tick_size.raw() > 0 && inst.qty_step.raw() > 0, "{what}");
                    }
                }
                "rest_orderbook__" => {
                    let ob: OrderbookResult = parse_envelope(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let n = ob.b.len().max(ob.a.len());
                    let b = ob.into_book_checked(n as u16, &mut refused).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(b.action, BookAction::Snapshot);
                    assert_eq!(b.symbol.as_str(), r["s"].as_str().unwrap(), "{what}");
                    assert_eq!((b.bids.clone(), b.asks.clone()), (levels(&r["b"]), levels(&r["a"])), "{what}");
                    assert_eq!((b.update_id, b.seq), (int(&r["u"]) as u64, int(&r["seq"]) as u64), "{what}");
                    assert_eq!(b.cts_ms, r.get("cts").map(int), "{what}");
                    let bid = b.bids.first().expect("a bid").price;
                    assert!(b.asks.first().is_some_and(|a| a.price > bid), "{what}: not crossed");
                }
                "rest_recent_trade__" => {
                    let rt: RecentTradesResult = parse_envelope(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let list = r["list"].as_array().unwrap();
                    let sym = Symbol::new(list[0]["symbol"].as_str().unwrap());
                    let batch = rt.into_batch(&sym, &mut refused).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(batch.trades.len(), list.len(), "{what}");
                    // Oldest first: the answer's newest-first list reversed.
                    for (t, j) in batch.trades.iter().zip(list.iter().rev()) {
                        assert_eq!(
                            (t.ts_ms, t.price, t.qty),
                            (int(&j["time"]), price(&j["price"]), qty(&j["size"])),
                            "{what}"
                        );
                        assert_eq!(
                            (t.aggressor, t.id.as_str()),
                            (side(&j["side"]), j["execId"].as_str().unwrap()),
                            "{what}"
                        );
                        assert_eq!(t.block_trade, j["isBlockTrade"].as_bool().unwrap(), "{what}");
                        assert_eq!(t.rpi, j["isRPITrade"].as_bool().unwrap(), "{what}");
                    }
                    assert!(batch.trades.iter().any(|t| t.rpi), "{what}: the docs example is an RPI trade");
                }
                "rest_tickers__" => {
                    let tk: TickersResult = parse_envelope(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let list = r["list"].as_array().unwrap();
                    let out = tk.into_updates(&mut refused);
                    assert_eq!(out.len(), list.len(), "{what}");
                    for (t, j) in out.iter().zip(list) {
                        assert_ticker_matches(t, j, &what);
                    }
                }
                "rest_time__" => {
                    let t: ServerTime = parse_envelope(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let nanos: i128 = r["timeNano"].as_str().unwrap().parse().unwrap();
                    assert_eq!(t.to_ms().unwrap(), (nanos / 1_000_000) as i64, "{what}");
                    assert_eq!(t.to_ms().unwrap() / 1000, int(&r["timeSecond"]), "{what}");
                    assert!((t.to_ms().unwrap() - v["time"].as_i64().unwrap()).abs() < 1_000, "{what}");
                }
                _ => unreachable!(),
            }
            assert!(refused.is_empty(), "{what}: refused {refused:?}");
        }
    }
    println!("public REST samples: {seen:?}");
    assert_eq!(seen.len(), 5, "every public REST endpoint has a sample: {seen:?}");
}

#[test]
fn the_recorded_ob500_sequence_replays_into_a_valid_book() {
    let Some(dir) = real_samples_dir() else { return };
    let path = dir.join("nautilus_trader/seq_ws_public__orderbook500_xrpusdt.jsonl");
    let text = std::fs::read_to_string(&path).expect("the ob500 sequence");
    let mut book: Option<OrderBook> = None;
    let mut applied = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let WsMessage::Market { data: MarketData::Book(u), .. } = parse_ws_frame(line).expect("parses") else {
            continue;
        };
        let b = book.get_or_insert_with(|| OrderBook::new(Price::parse("0.0001").unwrap(), 500).unwrap());
        b.apply(&u).unwrap_or_else(|e| panic!("update u={} refused: {e:?}", u.update_id));
        applied += 1;
    }
    let b = book.expect("a book");
    assert!(b.is_valid() && applied >= 40, "{applied} updates");
    let (bid, ask) = (b.best_bid().unwrap().price, b.best_ask().unwrap().price);
    assert!(bid < ask, "not crossed: {bid} / {ask}");
    println!(
        "ob500: {applied} updates applied, touch {bid} / {ask}, {} + {} levels",
        b.level_count(scalper::domain::Side::Buy),
        b.level_count(scalper::domain::Side::Sell)
    );
}

/// Every sample file is claimed by one of the conformance tests: this file's public prefixes,
/// `tests/real_samples_private.rs`'s private ones, or the ob500 sequence above. A new kind of
/// sample in `../shared` fails here until a decoder test reads it.
#[test]
fn every_sample_file_is_claimed_by_a_conformance_test() {
    const CLAIMED: [&str; 9] = [
        // tests/real_samples.rs
        "ws_public__",
        "ws_op__",
        "rest_instruments__",
        "rest_orderbook__",
        "rest_recent_trade__",
        "rest_tickers__",
        "rest_time__",
        "seq_ws_public__orderbook500_",
        // tests/real_samples_private.rs (and its REST endpoints, common::PRIVATE_REST_SAMPLES)
        "ws_private__",
    ];
    let Some(dir) = real_samples_dir() else { return };
    let mut seen = 0;
    for source in std::fs::read_dir(&dir).expect("samples dir").flatten().filter(|e| e.path().is_dir()) {
        for f in std::fs::read_dir(source.path()).expect("source dir").flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            seen += 1;
            assert!(
                CLAIMED.iter().chain(&common::PRIVATE_REST_SAMPLES).any(|p| name.starts_with(p)),
                "{}: no conformance test reads this kind of sample",
                f.path().display()
            );
        }
    }
    assert!(seen >= 60, "expected the whole sample set, found {seen} files");
}
