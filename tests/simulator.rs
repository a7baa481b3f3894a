//! The Bybit v5 simulator over real sockets, with plain reqwest / tokio-tungstenite clients
//! (`tests/common/sim.rs`, no project connector involved): REST envelopes, pagination and
//! errors, WebSocket snapshots and deltas against the simulator's own books, trades, tickers and
//! liquidations, ping / pong and subscription errors. Faults, determinism and scenarios:
//! `tests/simulator_scenarios.rs`.

mod common;

use common::sim::*;
use futures_util::SinkExt;
use scalper::connectors::simulator::{ClockMode, Scenario, ScenarioAssignment, SimConfig, SimHandle};
use scalper::domain::{Price, Qty};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn handle_is_shareable_across_tasks() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<SimHandle>();
}

#[tokio::test]
async fn rest_envelope_pagination_and_errors() {
    let sim = start(manual(520)).await;

    // Pagination through nextPageCursor returns every instrument exactly once, sorted.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let client = reqwest::Client::new();
    for page in 0.. {
        let mut q = vec![("category", "linear".to_string()), ("limit", "150".to_string())];
        if !cursor.is_empty() {
            q.push(("cursor", cursor.clone()));
        }
        let v: Value = client
            .get(format!("{}/v5/market/instruments-info", sim.rest_url()))
            .query(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["retCode"], 0);
        assert_eq!(v["retMsg"], "OK");
        assert_eq!(v["retExtInfo"], json!({}));
        assert!(v["time"].as_i64().unwrap() > 1_600_000_000_000);
        assert_eq!(v["result"]["category"], "linear");
        for i in v["result"]["list"].as_array().unwrap() {
            seen.push(s(&i["symbol"]).to_string());
        }
        cursor = s(&v["result"]["nextPageCursor"]).to_string();
        if page == 3 {
            // Like Bybit's, the last page (70 items) still carries a cursor ...
            assert_eq!(v["result"]["list"].as_array().unwrap().len(), 70);
            assert!(!cursor.is_empty(), "the last page keeps a cursor");
        }
        if cursor.is_empty() {
            // ... which leads to an empty list with an empty cursor.
            assert_eq!(page, 4);
            assert!(v["result"]["list"].as_array().unwrap().is_empty());
            break;
        }
    }
    assert_eq!(seen.len(), 520);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 520);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert!(seen.contains(&"SIM518USDT".to_string()));

    // Default page is 500; the cursor also works pasted raw into the URL.
    let (_, v) = get(&sim, "/v5/market/instruments-info?category=linear").await;
    assert_eq!(v["result"]["list"].as_array().unwrap().len(), 500);
    let raw = s(&v["result"]["nextPageCursor"]).to_string();
    assert!(raw.starts_with("first%3D"), "{raw}");
    let (_, v2) = get(&sim, &format!("/v5/market/instruments-info?category=linear&cursor={raw}")).await;
    assert_eq!(v2["result"]["list"].as_array().unwrap().len(), 20);

    // Instrument shape (BTCUSDT).
    let (_, v) = get(&sim, "/v5/market/instruments-info?category=linear&symbol=BTCUSDT").await;
    let i = &v["result"]["list"][0];
    assert_eq!(i["contractType"], "LinearPerpetual");
    assert_eq!(i["status"], "Trading");
    assert_eq!(i["baseCoin"], "BTC");
    assert_eq!(i["quoteCoin"], "USDT");
    assert_eq!(i["priceScale"], "2");
    assert_eq!(i["priceFilter"]["tickSize"], "0.10");
    assert_eq!(i["lotSizeFilter"]["qtyStep"], "0.001");
    assert_eq!(i["lotSizeFilter"]["minOrderQty"], "0.001");
    assert_eq!(i["lotSizeFilter"]["minNotionalValue"], "5");
    assert_eq!(i["leverageFilter"]["maxLeverage"], "100.00");
    assert!(i["launchTime"].as_str().unwrap().parse::<i64>().unwrap() > 0);
    assert_eq!(i["fundingInterval"].as_i64().unwrap() % 60, 0);
    assert_eq!(i["isPreListing"], false);
    assert!(i["preListingInfo"].is_null());
    // Unknown symbol: empty list.
    let (_, v) = get(&sim, "/v5/market/instruments-info?category=linear&symbol=NOPEUSDT").await;
    assert_eq!(v["retCode"], 0);
    assert_eq!(v["result"]["list"], json!([]));

    // Errors: HTTP 200 with Bybit retCodes.
    for path in [
        "/v5/market/instruments-info?category=linear&limit=1001",
        "/v5/market/instruments-info?category=linear&limit=abc",
        "/v5/market/instruments-info?category=linear&cursor=garbage",
        "/v5/market/instruments-info",
        "/v5/market/orderbook?category=spot&symbol=BTCUSDT",
        "/v5/market/orderbook?category=linear",
        "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=501",
        "/v5/market/orderbook?category=linear&symbol=NOPEUSDT",
        "/v5/market/tickers?category=linear&symbol=NOPEUSDT",
    ] {
        let (status, v) = get(&sim, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(v["retCode"], 10001, "{path}: {v}");
        assert_eq!(v["result"], json!({}), "{path}");
    }

    // Time.
    let (_, v) = get(&sim, "/v5/market/time").await;
    let secs: i64 = s(&v["result"]["timeSecond"]).parse().unwrap();
    let nanos: i128 = s(&v["result"]["timeNano"]).parse().unwrap();
    assert_eq!((nanos / 1_000_000_000) as i64, secs);
    assert_eq!(secs, v["time"].as_i64().unwrap() / 1000);

    // Tickers: all, and one with Bybit's field set.
    let (_, v) = get(&sim, "/v5/market/tickers?category=linear").await;
    assert_eq!(v["result"]["list"].as_array().unwrap().len(), 520);
    let (_, v) = get(&sim, "/v5/market/tickers?category=linear&symbol=ETHUSDT").await;
    let t = &v["result"]["list"][0];
    for k in [
        "lastPrice",
        "indexPrice",
        "markPrice",
        "prevPrice24h",
        "price24hPcnt",
        "highPrice24h",
        "lowPrice24h",
        "turnover24h",
        "volume24h",
        "fundingRate",
        "nextFundingTime",
        "bid1Price",
        "bid1Size",
        "ask1Price",
        "ask1Size",
        "openInterest",
    ] {
        assert!(t[k].is_string(), "{k} missing in {t}");
    }
    let bid = Price::parse(s(&t["bid1Price"])).unwrap();
    let ask = Price::parse(s(&t["ask1Price"])).unwrap();
    assert!(bid < ask);
    assert!(s(&t["turnover24h"]).parse::<f64>().unwrap() > 0.0);
    assert!(sim.counters().rest_requests >= 20);
    sim.shutdown().await;
}

#[tokio::test]
async fn ws_snapshots_match_rest_and_the_simulator() {
    let sim = start(manual(3)).await;
    // With 100 ms steps the 1000-level book is pushed every 2 steps, the others every step:
    // after an even step all views are of the same book version.
    sim.advance(6).await.unwrap();
    let mut ws = connect(&sim).await;
    let ack =
        subscribe(&mut ws, &["orderbook.1000.BTCUSDT", "orderbook.50.BTCUSDT", "orderbook.1.BTCUSDT"], "r1").await;
    assert_eq!(ack["success"], true);
    assert_eq!(ack["ret_msg"], "");
    assert_eq!(ack["req_id"], "r1");
    assert!(!s(&ack["conn_id"]).is_empty());
    let mut snaps = HashMap::new();
    for _ in 0..3 {
        let f = recv(&mut ws).await;
        assert_eq!(f["type"], "snapshot");
        assert_eq!(f["data"]["s"], "BTCUSDT");
        snaps.insert(s(&f["topic"]).to_string(), f);
    }
    let s1000 = &snaps["orderbook.1000.BTCUSDT"];
    let s50 = &snaps["orderbook.50.BTCUSDT"];
    let s1 = &snaps["orderbook.1.BTCUSDT"];
    assert_eq!(levels(&s50["data"]["b"]).len(), 50);
    assert_eq!(levels(&s1["data"]["a"]).len(), 1);
    // Bybit prints prices with priceScale decimals and sizes with the qty step's.
    assert!(s(&s50["data"]["b"][0][0]).split('.').nth(1).is_some_and(|f| f.len() == 2));
    assert!(s(&s50["data"]["b"][0][1]).split('.').nth(1).is_some_and(|f| f.len() == 3));
    // Nested views of the same book.
    assert_eq!(s50["data"]["seq"], s1000["data"]["seq"]);
    assert_eq!(levels(&s50["data"]["b"]), levels(&s1000["data"]["b"])[..50].to_vec());
    assert_eq!(levels(&s1["data"]["a"]), levels(&s1000["data"]["a"])[..1].to_vec());

    // REST orderbook = the 1000-level stream: same u, same levels.
    let (_, r) = get(&sim, "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=200").await;
    let res = &r["result"];
    assert_eq!(res["s"], "BTCUSDT");
    assert_eq!(res["u"], s1000["data"]["u"]);
    assert_eq!(res["seq"], s1000["data"]["seq"]);
    assert_eq!(res["ts"], s1000["ts"]);
    assert_eq!(res["cts"], s1000["cts"]);
    assert_eq!(levels(&res["b"]), levels(&s1000["data"]["b"])[..200].to_vec());
    assert_eq!(levels(&res["a"]), levels(&s1000["data"]["a"])[..200].to_vec());
    let (_, r) = get(&sim, "/v5/market/orderbook?category=linear&symbol=BTCUSDT").await;
    assert_eq!(r["result"]["b"].as_array().unwrap().len(), 25);

    // And the simulator's own book.
    let own = sim.book_levels("BTCUSDT").unwrap();
    let pb = sim.published_book("BTCUSDT", 50).unwrap();
    assert_eq!(pb.update_id, s50["data"]["u"].as_u64());
    assert_eq!(levels(&s50["data"]["b"]), own.bids[..50].to_vec());
    assert_eq!(levels(&s50["data"]["a"]), own.asks[..50].to_vec());
    assert_eq!(own.bids.len(), 250);
    assert!(own.bids[0].price < own.asks[0].price);
    sim.shutdown().await;
}

#[tokio::test]
async fn deltas_rebuild_the_simulators_books_in_real_time() {
    let cfg = SimConfig {
        symbols: 4,
        tick_interval_ms: 20,
        clock: ClockMode::RealTime { speed: 1.0 },
        seed: 7,
        ..SimConfig::default()
    };
    let sim = start(cfg).await;
    let mut ws = connect(&sim).await;
    let topics =
        ["orderbook.50.BTCUSDT", "orderbook.200.ETHUSDT", "orderbook.1000.SIM001USDT", "orderbook.1.SIM002USDT"];
    subscribe(&mut ws, &topics, "x").await;
    let mut books: HashMap<String, ClientBook> = HashMap::new();
    let mut deltas = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1_200);
    while tokio::time::Instant::now() < until {
        let f = recv(&mut ws).await;
        let topic = s(&f["topic"]).to_string();
        let b = books.entry(topic.clone()).or_default();
        if topic.starts_with("orderbook.1.") {
            // Level 1 is snapshot-only with a non-decreasing u.
            assert_eq!(f["type"], "snapshot");
            assert!(f["data"]["u"].as_u64().unwrap() >= b.u);
            assert_eq!(f["data"]["b"].as_array().unwrap().len(), 1);
        } else if f["type"] == "delta" {
            deltas += 1;
            // Deltas are sorted best first.
            let bl = levels(&f["data"]["b"]);
            assert!(bl.windows(2).all(|w| w[0].price > w[1].price));
            let al = levels(&f["data"]["a"]);
            assert!(al.windows(2).all(|w| w[0].price < w[1].price));
        }
        b.apply(&f);
        assert!(!b.crossed(), "{topic} crossed");
    }
    assert!(deltas > 20, "only {deltas} deltas in 1.2 s");
    sim.pause().await.unwrap();
    // Drain until every client book has reached the simulator's u.
    let targets: Vec<(&str, usize, String)> = topics
        .iter()
        .map(|t| {
            let mut p = t.split('.');
            p.next();
            let depth: usize = p.next().unwrap().parse().unwrap();
            (*t, depth, p.next().unwrap().to_string())
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while targets.iter().any(|(t, d, sym)| books.get(*t).map(|b| b.u) != sim.update_id(sym, *d)) {
        assert!(tokio::time::Instant::now() < deadline, "client never caught up");
        match recv_raw(&mut ws, Duration::from_millis(500)).await {
            Got::Json(f) => {
                let t = s(&f["topic"]).to_string();
                books.entry(t).or_default().apply(&f);
            }
            Got::Timeout => {}
            other => panic!("{other:?}"),
        }
    }
    for (t, depth, sym) in &targets {
        let b = &books[*t];
        let pb = sim.published_book(sym, *depth).unwrap();
        assert_eq!(pb.update_id, Some(b.u));
        assert_eq!(b.bids(), pb.bids, "{t} bids");
        assert_eq!(b.asks(), pb.asks, "{t} asks");
        assert!(b.bids.len() <= *depth && b.asks.len() <= *depth);
    }
    // orderbook.50 is pushed every 20 ms step: it equals the top of the simulator's own book.
    let own = sim.book_levels("BTCUSDT").unwrap();
    assert_eq!(books["orderbook.50.BTCUSDT"].bids(), own.bids[..50].to_vec());
    assert_eq!(books["orderbook.50.BTCUSDT"].asks(), own.asks[..50].to_vec());
    let c = sim.counters();
    assert!(c.book_frames > 40 && c.ws_messages_sent >= c.book_frames);
    assert!(c.steps > 30);
    sim.resume().await.unwrap();
    let step = sim.step_count();
    sim.wait_for_step(step + 3).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn trades_tickers_and_liquidations() {
    let mut cfg = manual(4);
    cfg.scenarios = vec![ScenarioAssignment {
        symbol: "SIM001USDT".into(),
        scenario: Scenario::NewsShock { at_ms: 500, jump_bps: -800 },
    }];
    let sim = start(cfg).await;
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &["publicTrade.BTCUSDT", "tickers.BTCUSDT", "allLiquidation.SIM001USDT"], "t").await;
    let snap = recv(&mut ws).await;
    assert_eq!(snap["topic"], "tickers.BTCUSDT");
    assert_eq!(snap["type"], "snapshot");
    assert!(snap["cs"].as_u64().is_some() && snap["ts"].as_i64().is_some());
    let full: HashSet<String> = snap["data"].as_object().unwrap().keys().cloned().collect();
    for k in ["symbol", "lastPrice", "markPrice", "indexPrice", "bid1Price", "ask1Size", "turnover24h", "fundingRate"] {
        assert!(full.contains(k), "{k}");
    }
    sim.advance(80).await.unwrap();
    let (mut trades, mut ticker_deltas, mut liqs) = (0, 0, 0);
    let inst = sim.instrument("BTCUSDT").unwrap();
    let mut last_trade_seq = 0;
    loop {
        let f = match recv_raw(&mut ws, Duration::from_millis(300)).await {
            Got::Json(f) => f,
            Got::Timeout => break,
            other => panic!("{other:?}"),
        };
        match s(&f["topic"]) {
            "publicTrade.BTCUSDT" => {
                assert_eq!(f["type"], "snapshot");
                for t in f["data"].as_array().unwrap() {
                    trades += 1;
                    assert_eq!(t["s"], "BTCUSDT");
                    assert!(t["S"] == "Buy" || t["S"] == "Sell");
                    let p = Price::parse(s(&t["p"])).unwrap();
                    assert!(p.is_on_tick(inst.tick_size));
                    assert!(!Qty::parse(s(&t["v"])).unwrap().is_zero());
                    assert!(["PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"].contains(&s(&t["L"])));
                    assert_eq!(s(&t["i"]).len(), 36);
                    assert_eq!(t["BT"], false);
                    assert!(t["T"].as_i64().unwrap() <= f["ts"].as_i64().unwrap());
                    let seq = t["seq"].as_u64().unwrap();
                    assert!(seq >= last_trade_seq);
                    last_trade_seq = seq;
                }
            }
            "tickers.BTCUSDT" => {
                assert_eq!(f["type"], "delta");
                ticker_deltas += 1;
                let keys: HashSet<String> = f["data"].as_object().unwrap().keys().cloned().collect();
                assert!(keys.contains("symbol") && keys.len() >= 2 && keys.len() < full.len());
            }
            "allLiquidation.SIM001USDT" => {
                for l in f["data"].as_array().unwrap() {
                    liqs += 1;
                    assert_eq!(l["s"], "SIM001USDT");
                    assert!(l["S"] == "Buy" || l["S"] == "Sell");
                    assert!(l["T"].as_i64().is_some() && l["v"].is_string() && l["p"].is_string());
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(trades > 50, "{trades} trades");
    assert!(ticker_deltas > 20, "{ticker_deltas} ticker deltas");
    assert!(liqs > 0, "no liquidations after a -8% shock");
    let ev = sim.scenario_events("SIM001USDT").unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e.kind, scalper::connectors::simulator::ScenarioEventKind::ShockJump { bps: -800 })));
    sim.shutdown().await;
}

#[tokio::test]
async fn ping_pong_and_subscription_errors() {
    let mut cfg = manual(3);
    cfg.max_args_per_request = Some(10);
    cfg.max_args_chars = 120;
    let sim = start(cfg).await;
    let mut ws = connect(&sim).await;

    send(&mut ws, json!({"req_id": "100001", "op": "ping"})).await;
    let p = recv(&mut ws).await;
    assert_eq!(p["success"], true);
    assert_eq!(p["ret_msg"], "pong");
    assert_eq!(p["op"], "ping");
    assert_eq!(p["req_id"], "100001");
    assert!(!s(&p["conn_id"]).is_empty());
    send(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(recv(&mut ws).await["req_id"], "");

    let fail = |v: &Value| {
        assert_eq!(v["success"], false, "{v}");
        s(&v["ret_msg"]).to_string()
    };
    let m = fail(&subscribe(&mut ws, &["orderbook.30.BTCUSDT"], "a").await);
    assert_eq!(m, "error:handler not found,topic:orderbook.30.BTCUSDT");
    let m = fail(&subscribe(&mut ws, &["kline.1.BTCUSDT"], "b").await);
    assert!(m.starts_with("error:handler not found"));
    // One bad topic fails the whole batch.
    let m = fail(&subscribe(&mut ws, &["tickers.BTCUSDT", "orderbook.50.NOPEUSDT"], "c").await);
    assert_eq!(m, "Invalid symbol :[orderbook.50.NOPEUSDT]");
    assert!(sim.subscriptions().is_empty());
    let ok = subscribe(&mut ws, &["publicTrade.ETHUSDT"], "d").await;
    assert_eq!(ok["success"], true);
    let m = fail(&subscribe(&mut ws, &["publicTrade.ETHUSDT"], "e").await);
    assert_eq!(m, "error:already subscribed,topic:publicTrade.ETHUSDT");
    let eleven: Vec<String> = (0..11).map(|i| format!("tickers.SIM{:03}USDT", i)).collect();
    let refs: Vec<&str> = eleven.iter().map(String::as_str).collect();
    assert_eq!(fail(&subscribe(&mut ws, &refs, "f").await), "args size >10");
    let long = [
        "orderbook.1000.BTCUSDT",
        "orderbook.1000.ETHUSDT",
        "orderbook.200.BTCUSDT",
        "orderbook.200.ETHUSDT",
        "allLiquidation.BTCUSDT",
    ];
    assert!(fail(&subscribe(&mut ws, &long, "g").await).contains("exceeds"));

    send(&mut ws, json!({"op": "nope", "req_id": "h"})).await;
    let v = recv(&mut ws).await;
    assert_eq!(fail(&v), "error:invalid op");
    assert_eq!(v["req_id"], "h");
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert!(fail(&recv(&mut ws).await).starts_with("Failed to decode incoming data"));

    // Unsubscribe stops the stream.
    send(&mut ws, json!({"op": "unsubscribe", "args": ["publicTrade.ETHUSDT"], "req_id": "u"})).await;
    let v = recv(&mut ws).await;
    assert_eq!(v["op"], "unsubscribe");
    assert_eq!(v["success"], true);
    sim.advance(20).await.unwrap();
    assert!(matches!(recv_raw(&mut ws, Duration::from_millis(200)).await, Got::Timeout));
    assert!(sim.subscriptions().is_empty());
    assert_eq!(sim.counters().pongs_sent, 2);
    assert!(sim.counters().subscribe_failures >= 6);
    sim.shutdown().await;
}
