//! The Bybit v5 simulator over real sockets: injected faults on the WebSocket and REST, idle
//! connections, byte-for-byte determinism per seed, listings / delistings with scenario labels,
//! and scenario walls as seen on the wire. Client helpers: `tests/common/sim.rs`.

mod common;

use common::sim::*;
use scalper::connectors::simulator::{
    CrossedKind, Scenario, ScenarioAssignment, ScenarioLabel, SimConfig, UniverseEvent,
};
use scalper::domain::Qty;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

#[tokio::test]
async fn faults_on_the_websocket_are_observable() {
    // A still fair price: the crossed-book checks below need the market not to move through the
    // injected bid by itself (with a moving price, whether it does is a matter of the seed).
    let sim = start(SimConfig { volatility: 0.0, ..manual(3) }).await;
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &["orderbook.50.BTCUSDT"], "s").await;
    let mut book = ClientBook::default();
    book.apply(&recv(&mut ws).await);

    // Gap: the next delta is lost, u jumps by 2.
    sim.skip_update_id("BTCUSDT").unwrap();
    sim.advance(2).await.unwrap();
    let f = recv(&mut ws).await;
    assert_eq!(f["type"], "delta");
    assert_eq!(f["data"]["u"].as_u64().unwrap(), book.u + 2, "one u skipped");
    // One delta lost on each of the 50, 200 and 1000 streams.
    assert_eq!(sim.counters().gaps_injected, 3);
    // Resync by resubscribing: a fresh snapshot at the current u.
    send(&mut ws, json!({"op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]})).await;
    assert_eq!(recv(&mut ws).await["op"], "unsubscribe");
    subscribe(&mut ws, &["orderbook.50.BTCUSDT"], "s2").await;
    let snap = recv(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["data"]["u"].as_u64(), sim.update_id("BTCUSDT", 50));
    book = ClientBook::default();
    book.apply(&snap);

    // Silence: sockets stay open (pong still answered) but market frames stop; on resume the
    // u chain jumps.
    sim.set_silent(true);
    sim.advance(5).await.unwrap();
    send(&mut ws, json!({"op": "ping", "req_id": "during-silence"})).await;
    let v = recv(&mut ws).await;
    assert_eq!(v["req_id"], "during-silence", "no market frame may arrive while silent: {v}");
    sim.set_silent(false);
    sim.advance(1).await.unwrap();
    let f = recv(&mut ws).await;
    assert!(f["data"]["u"].as_u64().unwrap() > book.u + 1);
    assert!(sim.counters().frames_suppressed >= 5);
    book = ClientBook::default();
    send(&mut ws, json!({"op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]})).await;
    recv(&mut ws).await;
    subscribe(&mut ws, &["orderbook.50.BTCUSDT"], "s3").await;
    book.apply(&recv(&mut ws).await);

    // Crossed delta: the client book crosses and no later delta fixes it.
    sim.send_crossed_book("BTCUSDT", CrossedKind::Delta).unwrap();
    let f = recv(&mut ws).await;
    book.apply(&f);
    assert!(book.crossed());
    sim.advance(3).await.unwrap();
    for _ in 0..3 {
        book.apply(&recv(&mut ws).await);
    }
    assert!(book.crossed());
    // Crossed snapshot.
    sim.send_crossed_book("BTCUSDT", CrossedKind::Snapshot).unwrap();
    let f = recv(&mut ws).await;
    assert_eq!(f["type"], "snapshot");
    let b = levels(&f["data"]["b"]);
    let a = levels(&f["data"]["a"]);
    assert!(b[0].price >= a[0].price);
    assert!(sim.counters().crossed_sent >= 2);

    // Book service restart: snapshot with u = 1, then deltas from 2.
    sim.restart_book("BTCUSDT").unwrap();
    let f = recv(&mut ws).await;
    assert_eq!(f["type"], "snapshot");
    assert_eq!(f["data"]["u"], 1);
    book = ClientBook::default();
    book.apply(&f);
    sim.advance(1).await.unwrap();
    let f = recv(&mut ws).await;
    assert_eq!(f["data"]["u"], 2);
    book.apply(&f);

    // Malformed frame.
    sim.send_malformed_frame();
    match recv_raw(&mut ws, Duration::from_secs(2)).await {
        Got::Garbage(text) => assert!(text.starts_with("{\"topic\"") && !text.ends_with('}'), "{text}"),
        other => panic!("expected a malformed frame, got {other:?}"),
    }

    // Refused pongs.
    sim.set_refuse_pongs(true);
    send(&mut ws, json!({"op": "ping", "req_id": "p1"})).await;
    assert!(matches!(recv_raw(&mut ws, Duration::from_millis(300)).await, Got::Timeout));
    sim.set_refuse_pongs(false);
    send(&mut ws, json!({"op": "ping", "req_id": "p2"})).await;
    assert_eq!(recv(&mut ws).await["req_id"], "p2");
    assert_eq!(sim.counters().pongs_refused, 1);

    // Dropping every connection closes them without a close handshake; reconnecting works.
    let mut other = connect(&sim).await;
    sim.drop_connections();
    assert!(matches!(recv_raw(&mut ws, Duration::from_secs(2)).await, Got::Closed));
    assert!(matches!(recv_raw(&mut other, Duration::from_secs(2)).await, Got::Closed));
    assert_eq!(sim.counters().forced_drops, 2);
    let mut again = connect(&sim).await;
    let ack = subscribe(&mut again, &["orderbook.50.BTCUSDT"], "back").await;
    assert_eq!(ack["success"], true);
    assert_eq!(recv(&mut again).await["type"], "snapshot");
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_faults_and_idle_connections() {
    let mut cfg = manual(2);
    cfg.ws_idle_timeout_ms = 300;
    let sim = start(cfg).await;

    sim.rest_http_errors(429, 2);
    assert_eq!(get(&sim, "/v5/market/time").await.0, 429);
    assert_eq!(get(&sim, "/v5/market/tickers?category=linear").await.0, 429);
    assert_eq!(get(&sim, "/v5/market/time").await.0, 200);
    sim.rest_http_errors(503, 1);
    assert_eq!(get(&sim, "/v5/market/time").await.0, 503);
    sim.rest_http_errors(403, 1);
    let (status, body) = get(&sim, "/v5/market/time").await;
    assert_eq!(status, 403);
    assert_eq!(body, Value::String("access too frequent".into()));
    sim.rest_ret_code_errors(10006, 2);
    for _ in 0..2 {
        let (status, v) = get(&sim, "/v5/market/orderbook?category=linear&symbol=BTCUSDT").await;
        assert_eq!(status, 200);
        assert_eq!(v["retCode"], 10006);
        assert_eq!(v["retMsg"], "Too many visits!");
    }
    sim.rest_ret_code_errors(10016, 1);
    assert_eq!(get(&sim, "/v5/market/time").await.1["retCode"], 10016);
    assert_eq!(get(&sim, "/v5/market/time").await.1["retCode"], 0);
    assert_eq!(sim.counters().rest_faults, 7);

    // A silent client is cut after the idle timeout; a pinging one stays.
    let mut idle = connect(&sim).await;
    let mut alive = connect(&sim).await;
    let start = tokio::time::Instant::now();
    let mut closed_at = None;
    while start.elapsed() < Duration::from_millis(900) {
        send(&mut alive, json!({"op": "ping"})).await;
        assert_eq!(recv(&mut alive).await["ret_msg"], "pong");
        if closed_at.is_none() {
            if let Got::Closed = recv_raw(&mut idle, Duration::from_millis(100)).await {
                closed_at = Some(start.elapsed());
            }
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let t = closed_at.expect("idle connection closed");
    assert!(t >= Duration::from_millis(250), "closed too early: {t:?}");
    assert_eq!(sim.counters().idle_drops, 1);
    assert_eq!(sim.counters().ws_connections_open, 1);
    sim.shutdown().await;
}

/// Drops fields that depend on the wall clock at start.
fn strip_clock(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["ts", "cts", "T", "time", "nextFundingTime", "timeSecond", "timeNano"] {
                m.remove(k);
            }
            for x in m.values_mut() {
                strip_clock(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_clock),
        _ => {}
    }
}

async fn first_messages(seed: u64, k: usize) -> (Vec<Value>, Value) {
    let mut cfg = manual(5);
    cfg.seed = seed;
    cfg.scenarios =
        vec![ScenarioAssignment { symbol: "SIM002USDT".into(), scenario: Scenario::SpoofWalls { every_ms: 1_000 } }];
    let sim = start(cfg).await;
    let mut ws = connect(&sim).await;
    let args = [
        "orderbook.50.SIM002USDT",
        "publicTrade.BTCUSDT",
        "tickers.ETHUSDT",
        "orderbook.1.BTCUSDT",
        "allLiquidation.BTCUSDT",
    ];
    subscribe(&mut ws, &args, "det").await;
    sim.advance(60).await.unwrap();
    let mut out = Vec::new();
    while out.len() < k {
        let mut v = recv(&mut ws).await;
        strip_clock(&mut v);
        out.push(v);
    }
    let (_, mut inst) = get(&sim, "/v5/market/instruments-info?category=linear").await;
    strip_clock(&mut inst);
    sim.shutdown().await;
    (out, inst)
}

#[tokio::test]
async fn same_seed_same_messages() {
    let (a, ia) = first_messages(99, 120).await;
    let (b, ib) = first_messages(99, 120).await;
    assert_eq!(a, b);
    assert_eq!(ia, ib);
    let (c, ic) = first_messages(100, 120).await;
    assert_ne!(a, c);
    assert_ne!(ia, ic);
    let topics: HashSet<&str> = a.iter().filter_map(|v| v["topic"].as_str()).collect();
    assert!(topics.len() >= 4, "{topics:?}");
}

#[tokio::test]
async fn listings_delistings_and_labels() {
    let mut cfg = manual(4);
    cfg.tick_interval_ms = 100;
    cfg.events = vec![
        UniverseEvent::NewListing { symbol: "FRESHUSDT".into(), at_ms: 300 },
        UniverseEvent::Delisting { symbol: "SIM002USDT".into(), at_ms: 600 },
    ];
    cfg.scenarios = vec![
        ScenarioAssignment {
            symbol: "SIM001USDT".into(),
            scenario: Scenario::AbsorbingWall { start_ms: 0, repeat_ms: 0 },
        },
        ScenarioAssignment {
            symbol: "FRESHUSDT".into(),
            scenario: Scenario::Pump { start_ms: 0, duration_ms: 5_000, magnitude_bps: 300 },
        },
    ];
    let sim = start(cfg).await;
    let labels: HashMap<String, ScenarioLabel> =
        sim.symbols().into_iter().map(|i| (i.symbol.to_string(), i.scenario)).collect();
    assert_eq!(labels["SIM001USDT"], ScenarioLabel::AbsorbingWall);
    assert_eq!(labels["FRESHUSDT"], ScenarioLabel::Pump);
    assert_eq!(labels["BTCUSDT"], ScenarioLabel::Calm);
    assert_eq!(sim.scenario("SIM001USDT"), Some(ScenarioLabel::AbsorbingWall));

    let names = |v: &Value| -> Vec<String> {
        v["result"]["list"].as_array().unwrap().iter().map(|i| s(&i["symbol"]).to_string()).collect()
    };
    let (_, v) = get(&sim, "/v5/market/instruments-info?category=linear").await;
    assert_eq!(names(&v), vec!["BTCUSDT", "ETHUSDT", "SIM001USDT", "SIM002USDT"]);
    let mut ws = connect(&sim).await;
    let ack = subscribe(&mut ws, &["orderbook.50.FRESHUSDT"], "early").await;
    assert_eq!(ack["ret_msg"], "Invalid symbol :[orderbook.50.FRESHUSDT]");
    subscribe(&mut ws, &["publicTrade.SIM002USDT"], "doomed").await;

    sim.advance(3).await.unwrap();
    let (_, v) = get(&sim, "/v5/market/instruments-info?category=linear").await;
    assert!(names(&v).contains(&"FRESHUSDT".to_string()));
    let fresh = v["result"]["list"].as_array().unwrap().iter().find(|i| i["symbol"] == "FRESHUSDT").unwrap();
    assert_eq!(fresh["status"], "Trading");
    assert_eq!(s(&fresh["launchTime"]).parse::<i64>().unwrap(), sim.start_time_ms() + 300);
    // Trades of the doomed symbol printed meanwhile come before the next ack.
    while let Got::Json(_) = recv_raw(&mut ws, Duration::from_millis(100)).await {}
    let ack = subscribe(&mut ws, &["orderbook.50.FRESHUSDT"], "now").await;
    assert_eq!(ack["success"], true);
    loop {
        let f = recv(&mut ws).await;
        if f["topic"] == "orderbook.50.FRESHUSDT" {
            assert_eq!(f["type"], "snapshot");
            break;
        }
    }

    sim.advance(3).await.unwrap();
    let (_, v) = get(&sim, "/v5/market/instruments-info?category=linear").await;
    assert!(!names(&v).contains(&"SIM002USDT".to_string()));
    let (_, v) = get(&sim, "/v5/market/instruments-info?category=linear&status=Closed").await;
    assert_eq!(names(&v), vec!["SIM002USDT"]);
    assert_eq!(v["result"]["list"][0]["status"], "Closed");
    assert_eq!(get(&sim, "/v5/market/orderbook?category=linear&symbol=SIM002USDT").await.1["retCode"], 10001);
    // Its stream stopped: drain, step, and nothing arrives for it any more.
    while let Got::Json(_) = recv_raw(&mut ws, Duration::from_millis(100)).await {}
    sim.advance(20).await.unwrap();
    loop {
        match recv_raw(&mut ws, Duration::from_millis(200)).await {
            Got::Json(f) => assert_ne!(f["topic"], "publicTrade.SIM002USDT"),
            Got::Timeout => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(!sim.subscriptions().iter().any(|t| t.contains("SIM002USDT")));
    sim.shutdown().await;
}

#[tokio::test]
async fn spoof_walls_are_visible_on_the_wire_and_pulled_before_being_reached() {
    use scalper::connectors::simulator::ScenarioEventKind;
    use scalper::domain::Side;
    let mut cfg = manual(3);
    cfg.scenarios =
        vec![ScenarioAssignment { symbol: "SIM001USDT".into(), scenario: Scenario::SpoofWalls { every_ms: 1_500 } }];
    let sim = start(cfg).await;
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &["orderbook.50.SIM001USDT"], "w").await;
    let mut book = ClientBook::default();
    book.apply(&recv(&mut ws).await);
    sim.advance(200).await.unwrap();
    // Client book after each frame, by frame time.
    let mut history: Vec<ClientBook> = Vec::new();
    loop {
        match recv_raw(&mut ws, Duration::from_millis(300)).await {
            Got::Json(f) => {
                book.apply(&f);
                history.push(book.clone());
            }
            Got::Timeout => break,
            other => panic!("{other:?}"),
        }
    }
    let at = |ts: i64| history.iter().rev().find(|b| b.ts <= ts).cloned().expect("book at time");
    let events = sim.scenario_events("SIM001USDT").unwrap();
    let mut checked = 0;
    for (i, e) in events.iter().enumerate() {
        let ScenarioEventKind::WallPlaced { side, price, qty, .. } = e.kind else { continue };
        let Some(pulled) = events[i + 1..]
            .iter()
            .find(|x| matches!(x.kind, ScenarioEventKind::WallPulled { price: p, side: s } if p == price && s == side))
        else {
            continue;
        };
        let level = |b: &ClientBook| {
            let m = if side == Side::Buy { &b.bids } else { &b.asks };
            m.get(&price).copied().unwrap_or(Qty::ZERO)
        };
        // The wall shows in the streamed book ...
        assert!(level(&at(e.ts_ms)) >= qty, "wall at {price} not on the wire");
        // ... the price never reached it while it stood ...
        let before = at(pulled.ts_ms - 1);
        let best = if side == Side::Buy {
            *before.bids.keys().next_back().unwrap()
        } else {
            *before.asks.keys().next().unwrap()
        };
        assert!(if side == Side::Buy { best > price } else { best < price }, "wall at {price} was reached");
        // ... and it is gone once pulled.
        assert!(level(&at(pulled.ts_ms)) < qty);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} spoof walls checked: {events:?}");
    assert_eq!(sim.scenario("SIM001USDT"), Some(ScenarioLabel::SpoofWalls));
    sim.shutdown().await;
}
