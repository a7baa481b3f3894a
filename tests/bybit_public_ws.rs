//! Bybit v5 public WS feed against a tiny tokio-tungstenite mock: batching, acks, pings,
//! reconnects, refusals, backpressure and shutdown.

mod common;

use common::bybit::fixture;
use common::p;
use futures_util::{SinkExt, StreamExt};
use scalper::connectors::bybit_public::{FeedConfig, FeedHandle, PublicFeed, Subscription};
use scalper::domain::{Side, Symbol};
use scalper::engine::event::{Event, EventKind, FeedState};
use scalper::market::data::BookAction;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Behavior {
    ack: bool,
    pong: bool,
    fail_topics: Vec<String>,
    snapshot_on_subscribe: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior { ack: true, pong: true, fail_topics: Vec::new(), snapshot_on_subscribe: true }
    }
}

enum ServerCmd {
    Send(String),
    Drop,
}

struct ConnRec {
    received: Vec<Value>,
    tx: mpsc::UnboundedSender<ServerCmd>,
}

#[derive(Default)]
struct MockState {
    behavior: Mutex<Behavior>,
    conns: Mutex<Vec<ConnRec>>,
}

struct MockWs {
    url: String,
    state: Arc<MockState>,
}

fn book_snapshot(depth: u16, sym: &str, u: u64) -> String {
    json!({
        "topic": format!("orderbook.{depth}.{sym}"), "type": "snapshot", "ts": 1_760_000_000_000u64 + u,
        "data": {"s": sym, "b": [["100.5", "1"]], "a": [["100.6", "2"]], "u": u, "seq": 1000 + u},
        "cts": 1_760_000_000_000u64 + u - 1
    })
    .to_string()
}

impl MockWs {
    async fn start(behavior: Behavior) -> MockWs {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = l.local_addr().unwrap();
        let state = Arc::new(MockState { behavior: Mutex::new(behavior), conns: Mutex::new(Vec::new()) });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { continue };
                let (tx, rx) = mpsc::unbounded_channel();
                let idx = {
                    let mut c = st.conns.lock().unwrap();
                    c.push(ConnRec { received: Vec::new(), tx });
                    c.len() - 1
                };
                tokio::spawn(serve_ws(ws, rx, st.clone(), idx));
            }
        });
        MockWs { url: format!("ws://{addr}/v5/public/linear"), state }
    }

    fn conn_count(&self) -> usize {
        self.state.conns.lock().unwrap().len()
    }

    fn received(&self, conn: usize) -> Vec<Value> {
        self.state.conns.lock().unwrap().get(conn).map(|c| c.received.clone()).unwrap_or_default()
    }

    /// Every `op` request of a connection, as (op, args).
    fn ops(&self, conn: usize) -> Vec<(String, Vec<String>)> {
        self.received(conn)
            .iter()
            .map(|v| {
                let op = v["op"].as_str().unwrap_or("").to_string();
                let args = v["args"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                (op, args)
            })
            .collect()
    }

    fn subscribed(&self, conn: usize) -> BTreeSet<String> {
        self.ops(conn).into_iter().filter(|(op, _)| op == "subscribe").flat_map(|(_, a)| a).collect()
    }

    fn send(&self, conn: usize, text: String) {
        let _ = self.state.conns.lock().unwrap()[conn].tx.send(ServerCmd::Send(text));
    }

    fn drop_conn(&self, conn: usize) {
        let _ = self.state.conns.lock().unwrap()[conn].tx.send(ServerCmd::Drop);
    }
}

async fn serve_ws(
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    mut rx: mpsc::UnboundedReceiver<ServerCmd>,
    st: Arc<MockState>,
    idx: usize,
) {
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(ServerCmd::Send(t)) => { if sink.send(Message::text(t)).await.is_err() { return; } }
                Some(ServerCmd::Drop) | None => return,
            },
            msg = stream.next() => {
                let Some(Ok(Message::Text(t))) = msg else {
                    match msg { Some(Ok(_)) => continue, _ => return }
                };
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                st.conns.lock().unwrap()[idx].received.push(v.clone());
                let b = st.behavior.lock().unwrap().clone();
                let op = v["op"].as_str().unwrap_or("");
                let req_id = v["req_id"].clone();
                let args: Vec<String> = v["args"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default();
                let mut replies = Vec::new();
                match op {
                    "ping" if b.pong => replies.push(json!({"success": true, "ret_msg": "pong", "conn_id": format!("mock-{idx}"), "req_id": req_id, "op": "ping"}).to_string()),
                    "subscribe" | "unsubscribe" if b.ack => {
                        let bad: Vec<&String> = args.iter().filter(|a| op == "subscribe" && b.fail_topics.contains(a)).collect();
                        let ok = bad.is_empty();
                        let ret_msg = if ok { String::new() } else { format!("error:handler not found,topic:{}", bad[0]) };
                        replies.push(json!({"success": ok, "ret_msg": ret_msg, "conn_id": format!("mock-{idx}"), "req_id": req_id, "op": op}).to_string());
                        if ok && op == "subscribe" && b.snapshot_on_subscribe {
                            for a in &args {
                                let parts: Vec<&str> = a.split('.').collect();
                                if parts.len() == 3 && parts[0] == "orderbook" {
                                    // u = how many times this connection subscribed the topic.
                                    let times = st.conns.lock().unwrap()[idx].received.iter()
                                        .filter(|r| r["op"] == "subscribe" && r["args"].as_array().is_some_and(|x| x.iter().any(|t| t == a.as_str())))
                                        .count() as u64;
                                    replies.push(book_snapshot(parts[1].parse().unwrap_or(50), parts[2], times));
                                }
                            }
                        }
                    }
                    _ => {}
                }
                for r in replies {
                    if sink.send(Message::text(r)).await.is_err() { return; }
                }
            }
        }
    }
}

fn fast_feed(url: &str) -> FeedConfig {
    let mut c = FeedConfig::new(url);
    c.ping_interval = Duration::from_millis(100);
    c.pong_timeout = Duration::from_millis(300);
    c.data_timeout = Duration::from_secs(2);
    c.ack_timeout = Duration::from_millis(300);
    c.connect_timeout = Duration::from_secs(1);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c.max_subscribe_attempts = 2;
    c.down_after_failures = 3;
    c.jitter_seed = Some(7);
    c
}

fn subs(syms: &[&str], depth: u16) -> Vec<Subscription> {
    syms.iter().map(|s| Subscription::new(Symbol::new(s), depth)).collect()
}

struct Running {
    handle: FeedHandle,
    rx: mpsc::Receiver<Event>,
    now: Arc<AtomicI64>,
    cancel: CancellationToken,
}

fn start_feed(cfg: FeedConfig, s: Vec<Subscription>) -> Running {
    let (tx, rx) = mpsc::channel(1024);
    // Just after the fixtures' exchange times: trades far ahead of receipt are refused.
    let now = Arc::new(AtomicI64::new(1_760_000_002_000));
    let n = now.clone();
    let cancel = CancellationToken::new();
    let handle =
        PublicFeed::new(cfg).with_time_source(Arc::new(move || n.load(Ordering::SeqCst))).start(s, tx, cancel.clone());
    Running { handle, rx, now, cancel }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Next event matching `pred` (others are skipped).
async fn next_event(rx: &mut mpsc::Receiver<Event>, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("timed out waiting for an event")
            .expect("event channel closed");
        if pred(&ev) {
            return ev;
        }
    }
}

fn is_feed(ev: &Event, conn: u32, state: FeedState) -> bool {
    matches!(ev.kind, EventKind::Feed { connection, state: s } if connection == conn && s == state)
}

#[tokio::test]
async fn ws_batches_subscriptions_and_spreads_symbols() {
    let mock = MockWs::start(Behavior::default()).await;
    let mut cfg = fast_feed(&mock.url);
    cfg.symbols_per_connection = 2;
    cfg.topics_per_request = 3;
    let syms = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"];
    let r = start_feed(cfg, subs(&syms, 50));
    wait_until("3 connections subscribed", || {
        mock.conn_count() == 3 && (0..3).map(|c| mock.subscribed(c).len()).sum::<usize>() == 20
    })
    .await;
    wait_until("aggregate connected", || r.handle.state() == FeedState::Connected).await;
    let mut all = BTreeSet::new();
    let mut per_conn_symbols = Vec::new();
    for c in 0..3 {
        for (op, args) in mock.ops(c) {
            if op == "subscribe" {
                assert!(!args.is_empty() && args.len() <= 3, "request of {} topics: {args:?}", args.len());
            }
        }
        let topics = mock.subscribed(c);
        let symbols: BTreeSet<String> = topics.iter().map(|t| t.rsplit('.').next().unwrap().to_string()).collect();
        assert!(symbols.len() <= 2, "connection {c} streams {symbols:?}");
        per_conn_symbols.push(symbols.len());
        all.extend(topics);
    }
    per_conn_symbols.sort();
    assert_eq!(per_conn_symbols, vec![1, 2, 2]);
    let expected: BTreeSet<String> = syms
        .iter()
        .flat_map(|s| {
            [
                format!("orderbook.50.{s}"),
                format!("publicTrade.{s}"),
                format!("tickers.{s}"),
                format!("allLiquidation.{s}"),
            ]
        })
        .collect();
    assert_eq!(all, expected);
    let status = r.handle.status();
    assert_eq!(status.connections, vec![FeedState::Connected; 3]);
    let conns: Vec<u32> = r.handle.subscriptions().iter().map(|(_, c)| *c).collect();
    assert_eq!(conns, vec![1, 1, 2, 2, 3]);
    assert!(r.handle.failed_topics().is_empty());
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_market_frames_become_events_with_exchange_and_receive_time() {
    let mock = MockWs::start(Behavior { snapshot_on_subscribe: false, ..Behavior::default() }).await;
    let mut r = start_feed(fast_feed(&mock.url), subs(&["BTCUSDT"], 50));
    next_event(&mut r.rx, |e| is_feed(e, 0, FeedState::Connected)).await;
    wait_until("subscribed", || mock.subscribed(0).len() == 4).await;
    r.now.store(1_760_000_002_777, Ordering::SeqCst);
    // Data of a symbol this feed does not stream is dropped.
    mock.send(0, book_snapshot(50, "ETHUSDT", 3));
    for f in [
        fixture!("ws_orderbook_snapshot.json"),
        fixture!("ws_orderbook_delta.json"),
        fixture!("ws_public_trade.json"),
        fixture!("ws_ticker_snapshot.json"),
        fixture!("ws_all_liquidation.json"),
    ] {
        mock.send(0, f.to_string());
    }
    let mut got = Vec::new();
    while got.len() < 6 {
        got.push(next_event(&mut r.rx, |e| e.is_market_data()).await);
    }
    assert!(got.iter().all(|e| e.seq == 0 && e.time.recv_ms == 1_760_000_002_777));
    assert!(got.iter().all(|e| e.symbol().map(|s| s.as_str()) == Some("BTCUSDT")));
    let ex: Vec<Option<i64>> = got.iter().map(|e| e.time.exchange_ms).collect();
    assert_eq!(
        ex,
        vec![
            Some(1_760_000_001_001),
            Some(1_760_000_001_021),
            Some(1_760_000_001_105),
            Some(1_760_000_001_200),
            Some(1_760_000_001_402),
            Some(1_760_000_001_402)
        ]
    );
    let EventKind::Book(b) = &got[0].kind else { panic!() };
    assert_eq!((b.action, b.update_id), (BookAction::Snapshot, 1_234_501));
    let EventKind::Book(d) = &got[1].kind else { panic!() };
    assert_eq!(d.action, BookAction::Delta);
    assert!(matches!(&got[2].kind, EventKind::Trades(t) if t.trades.len() == 2));
    assert!(matches!(&got[3].kind, EventKind::Ticker(t) if t.last_price == Some(p("61234.5"))));
    assert!(matches!(&got[4].kind, EventKind::Liquidation(l) if l.side == Side::Buy));
    assert!(matches!(&got[5].kind, EventKind::Liquidation(l) if l.side == Side::Sell));
    assert_eq!(r.handle.stats_snapshot().ws_events, 6);
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_failed_ack_is_retried_and_reported() {
    let mock = MockWs::start(Behavior { fail_topics: vec!["tickers.BTCUSDT".into()], ..Behavior::default() }).await;
    let mut cfg = fast_feed(&mock.url);
    cfg.topics_per_request = 10;
    let r = start_feed(cfg, subs(&["BTCUSDT", "ETHUSDT"], 50));
    wait_until("topic reported as failed", || !r.handle.failed_topics().is_empty()).await;
    assert_eq!(r.handle.failed_topics(), vec!["tickers.BTCUSDT".to_string()]);
    let subs_sent: Vec<Vec<String>> =
        mock.ops(0).into_iter().filter(|(op, _)| op == "subscribe").map(|(_, a)| a).collect();
    // First the batch of 8 (rejected as a whole), then topic by topic: the good ones succeed,
    // the bad one is retried until max_subscribe_attempts.
    assert_eq!(subs_sent[0].len(), 8);
    assert!(subs_sent[1..].iter().all(|a| a.len() == 1), "{subs_sent:?}");
    let bad_attempts = subs_sent.iter().filter(|a| a.contains(&"tickers.BTCUSDT".to_string())).count();
    assert_eq!(bad_attempts, 2);
    let s = r.handle.stats_snapshot();
    assert!(s.ws_ack_failures >= 2, "{s:?}");
    assert_eq!(s.ws_topics_failed, 1);
    assert_eq!(mock.conn_count(), 1, "a rejected topic does not cost the connection");
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_missing_ack_counts_as_failure() {
    let mock = MockWs::start(Behavior { ack: false, ..Behavior::default() }).await;
    let mut cfg = fast_feed(&mock.url);
    cfg.ack_timeout = Duration::from_millis(100);
    let r = start_feed(cfg, subs(&["BTCUSDT"], 1));
    wait_until("unacknowledged topics reported", || r.handle.failed_topics().len() == 4).await;
    assert!(r.handle.stats_snapshot().ws_ack_failures >= 2);
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_sends_ping_and_counts_pongs() {
    let mock = MockWs::start(Behavior::default()).await;
    let r = start_feed(fast_feed(&mock.url), subs(&["BTCUSDT"], 50));
    wait_until("two pongs", || r.handle.stats_snapshot().ws_pongs >= 2).await;
    let pings: Vec<Value> = mock.received(0).into_iter().filter(|v| v["op"] == "ping").collect();
    assert!(pings.len() >= 2);
    assert!(pings.iter().all(|v| v["req_id"].is_string() && v.get("args").is_none()));
    assert_eq!(mock.conn_count(), 1);
    assert_eq!(r.handle.stats_snapshot().ws_timeouts, 0);
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_missing_pong_forces_reconnect() {
    let mock = MockWs::start(Behavior { pong: false, ..Behavior::default() }).await;
    let r = start_feed(fast_feed(&mock.url), subs(&["BTCUSDT"], 50));
    wait_until("reconnect after missing pong", || mock.conn_count() >= 2).await;
    wait_until("timeout counted", || r.handle.stats_snapshot().ws_timeouts >= 1).await;
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_reconnects_and_resubscribes_every_topic() {
    let mock = MockWs::start(Behavior::default()).await;
    let mut cfg = fast_feed(&mock.url);
    cfg.topics_per_request = 5;
    let mut r = start_feed(cfg, subs(&["AAAUSDT", "BBBUSDT", "CCCUSDT"], 200));
    next_event(&mut r.rx, |e| is_feed(e, 0, FeedState::Connected)).await;
    wait_until("subscribed", || mock.subscribed(0).len() == 12).await;
    let first = mock.subscribed(0);

    mock.drop_conn(0);
    let mut states = Vec::new();
    let mut snapshots_after = BTreeSet::new();
    loop {
        let ev = next_event(&mut r.rx, |_| true).await;
        match &ev.kind {
            EventKind::Feed { connection: 1, state } => states.push(*state),
            EventKind::Book(b) if !states.is_empty() && b.action == BookAction::Snapshot => {
                snapshots_after.insert(b.symbol.as_str().to_string());
            }
            _ => {}
        }
        if states.last() == Some(&FeedState::Connected) && snapshots_after.len() == 3 {
            break;
        }
    }
    assert_eq!(states, vec![FeedState::Reconnecting, FeedState::Connected]);
    wait_until("resubscribed", || mock.subscribed(1).len() == 12).await;
    assert_eq!(mock.subscribed(1), first, "every topic is subscribed again");
    assert!(mock.ops(1).iter().all(|(op, a)| op != "subscribe" || a.len() <= 5));
    assert_eq!(r.handle.stats_snapshot().ws_reconnects, 1);
    assert_eq!(r.handle.state(), FeedState::Connected);
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_status_events_connected_reconnecting_connected() {
    let mock = MockWs::start(Behavior::default()).await;
    let mut r = start_feed(fast_feed(&mock.url), subs(&["BTCUSDT"], 50));
    let mut aggregate = Vec::new();
    let mut conn1 = Vec::new();
    let mut dropped = false;
    while aggregate.len() < 4 {
        let ev = next_event(&mut r.rx, |e| matches!(e.kind, EventKind::Feed { .. })).await;
        if let EventKind::Feed { connection, state } = ev.kind {
            if connection == 0 {
                aggregate.push(state);
            } else {
                assert_eq!(connection, 1);
                conn1.push(state);
            }
            if state == FeedState::Connected && !dropped {
                dropped = true;
                mock.drop_conn(0);
            }
        }
    }
    use FeedState::*;
    assert_eq!(aggregate, vec![Reconnecting, Connected, Reconnecting, Connected]);
    assert_eq!(conn1, vec![Reconnecting, Connected, Reconnecting, Connected]);
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_malformed_frames_are_counted_and_connection_survives() {
    let mock = MockWs::start(Behavior { snapshot_on_subscribe: false, ..Behavior::default() }).await;
    let mut r = start_feed(fast_feed(&mock.url), subs(&["BTCUSDT"], 50));
    next_event(&mut r.rx, |e| is_feed(e, 0, FeedState::Connected)).await;
    mock.send(0, "{not json".to_string());
    mock.send(0, fixture!("ws_public_trade.json").replace("61234.60", "61234.6.0"));
    mock.send(0, r#"{"hello":"world"}"#.to_string());
    mock.send(0, fixture!("ws_public_trade.json").to_string());
    let ev = next_event(&mut r.rx, |e| e.is_market_data()).await;
    assert!(matches!(&ev.kind, EventKind::Trades(t) if t.trades[0].price == p("61234.6")));
    let s = r.handle.stats_snapshot();
    assert_eq!(s.ws_malformed, 3);
    assert_eq!(mock.conn_count(), 1);
    assert_eq!(s.ws_disconnects, 0);
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_refuses_insane_values_counts_them_and_resyncs_a_refused_book() {
    use scalper::connectors::bybit_public::messages::{RefusalReason as R, RefusalStream as S};
    let mock = MockWs::start(Behavior { snapshot_on_subscribe: false, ..Behavior::default() }).await;
    let mut r = start_feed(fast_feed(&mock.url), subs(&["BTCUSDT"], 50));
    next_event(&mut r.rx, |e| is_feed(e, 0, FeedState::Connected)).await;
    wait_until("subscribed", || mock.subscribed(0).len() == 4).await;
    // A delta with one negative size: refused whole, reported as a lost book update.
    mock.send(0, fixture!("ws_orderbook_delta.json").replacen(r#""1.250""#, r#""-1.250""#, 1));
    let ev = next_event(&mut r.rx, |e| e.is_market_data() || matches!(e.kind, EventKind::BookShed(_))).await;
    assert!(matches!(&ev.kind, EventKind::BookShed(s) if s.as_str() == "BTCUSDT"), "{ev:?}");
    // A trade far ahead of receipt and a negative liquidation are dropped; the good trade passes.
    let far = fixture!("ws_public_trade.json").replacen("1760000001102", "1760003601102", 1);
    mock.send(0, far);
    mock.send(
        0,
        r#"{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1760000001500,"data":[{"T":1760000001499,"s":"BTCUSDT","S":"Buy","v":"-5","p":"-30000"}]}"#.to_string(),
    );
    let ev = next_event(&mut r.rx, |e| e.is_market_data()).await;
    let EventKind::Trades(t) = &ev.kind else { panic!("{ev:?}") };
    assert_eq!(t.trades.len(), 1);
    assert_eq!(t.trades[0].price, p("61234.5"));
    wait_until("refusals counted", || {
        let s = r.handle.stats_snapshot();
        s.refused[S::Liquidation as usize][R::NonPositivePrice as usize] == 1
    })
    .await;
    let s = r.handle.stats_snapshot();
    assert_eq!(s.refused[S::Book as usize][R::NegativeValue as usize], 1);
    assert_eq!(s.refused[S::Trade as usize][R::FutureTime as usize], 1);
    assert_eq!(s.ws_malformed, 0, "refusals are not malformed frames");
    assert!(r.rx.try_recv().is_err(), "the liquidation frame gave no event");
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_runtime_subscribe_unsubscribe_and_resync() {
    let mock = MockWs::start(Behavior::default()).await;
    let mut cfg = fast_feed(&mock.url);
    cfg.symbols_per_connection = 2;
    let mut r = start_feed(cfg, subs(&["AAAUSDT"], 50));
    wait_until("subscribed", || mock.subscribed(0).len() == 4).await;

    // Room on connection 1: no new connection.
    r.handle.subscribe(subs(&["BBBUSDT"], 50)).await.unwrap();
    wait_until("BBB subscribed on connection 1", || mock.subscribed(0).len() == 8).await;
    assert_eq!(mock.conn_count(), 1);
    // Connection 1 is full: a second connection opens, the first is untouched.
    r.handle.subscribe(subs(&["CCCUSDT"], 1)).await.unwrap();
    wait_until("CCC on connection 2", || mock.conn_count() == 2 && mock.subscribed(1).len() == 4).await;
    assert!(mock.subscribed(1).contains("orderbook.1.CCCUSDT"));
    let subs_now: Vec<(String, u32)> =
        r.handle.subscriptions().into_iter().map(|(s, c)| (s.symbol.as_str().to_string(), c)).collect();
    assert_eq!(subs_now, vec![("AAAUSDT".into(), 1), ("BBBUSDT".into(), 1), ("CCCUSDT".into(), 2)]);

    // Delisting.
    r.handle.unsubscribe(vec![Symbol::new("AAAUSDT")]).await.unwrap();
    wait_until("AAA unsubscribed", || mock.ops(0).iter().any(|(op, _)| op == "unsubscribe")).await;
    let unsub: BTreeSet<String> =
        mock.ops(0).into_iter().filter(|(op, _)| op == "unsubscribe").flat_map(|(_, a)| a).collect();
    let expected: BTreeSet<String> =
        ["orderbook.50.AAAUSDT", "publicTrade.AAAUSDT", "tickers.AAAUSDT", "allLiquidation.AAAUSDT"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(unsub, expected);
    // Frames in flight for the removed symbol are dropped.
    mock.send(0, book_snapshot(50, "AAAUSDT", 9));

    // Resync: unsubscribe + subscribe of the book topic, then a fresh snapshot.
    r.handle.resync(Symbol::new("BBBUSDT")).await.unwrap();
    let ev = next_event(&mut r.rx, |e| {
        let leaked = matches!(&e.kind, EventKind::Book(b) if b.symbol.as_str() == "AAAUSDT" && b.update_id == 9);
        assert!(!leaked, "data of a removed symbol leaked: {e:?}");
        matches!(&e.kind, EventKind::Book(b) if b.symbol.as_str() == "BBBUSDT" && b.update_id == 2)
    })
    .await;
    let EventKind::Book(b) = &ev.kind else { panic!() };
    assert_eq!(b.action, BookAction::Snapshot);
    let ops = mock.ops(0);
    let tail: Vec<(String, Vec<String>)> = ops.into_iter().filter(|(op, _)| op != "ping").collect();
    let last_two = &tail[tail.len() - 2..];
    assert_eq!(last_two[0], ("unsubscribe".to_string(), vec!["orderbook.50.BBBUSDT".to_string()]));
    assert_eq!(last_two[1], ("subscribe".to_string(), vec!["orderbook.50.BBBUSDT".to_string()]));
    assert_eq!(mock.conn_count(), 2, "no reconnect for run-time changes");
    r.cancel.cancel();
}

#[tokio::test]
async fn ws_unreachable_endpoint_goes_down_then_shutdown() {
    // A port with nothing listening.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut r = start_feed(fast_feed(&format!("ws://{addr}/v5/public/linear")), subs(&["BTCUSDT"], 50));
    next_event(&mut r.rx, |e| is_feed(e, 0, FeedState::Down)).await;
    assert_eq!(r.handle.state(), FeedState::Down);
    assert!(r.handle.stats_snapshot().ws_disconnects >= 3);
    r.handle.shutdown();
    tokio::time::timeout(Duration::from_secs(2), r.handle.join()).await.expect("feed stops");
    assert!(r.handle.subscribe(subs(&["ETHUSDT"], 50)).await.is_err());
    assert!(!r.cancel.is_cancelled(), "shutdown only stops the feed, not the caller's token");
}

#[tokio::test]
async fn ws_cancel_stops_and_reports_down() {
    let mock = MockWs::start(Behavior::default()).await;
    let mut r = start_feed(fast_feed(&mock.url), subs(&["BTCUSDT"], 50));
    next_event(&mut r.rx, |e| is_feed(e, 0, FeedState::Connected)).await;
    r.cancel.cancel();
    next_event(&mut r.rx, |e| is_feed(e, 0, FeedState::Down)).await;
    tokio::time::timeout(Duration::from_secs(2), r.handle.join()).await.expect("feed stops");
    assert_eq!(r.handle.status().connections, vec![FeedState::Down]);
}

#[tokio::test]
async fn ws_full_queue_applies_backpressure_without_dropping() {
    let mock = MockWs::start(Behavior { snapshot_on_subscribe: false, ..Behavior::default() }).await;
    let (tx, mut rx) = mpsc::channel(2);
    let cancel = CancellationToken::new();
    let handle = PublicFeed::new(fast_feed(&mock.url)).start(subs(&["BTCUSDT"], 50), tx, cancel.clone());
    // Status events wait for room too: read them.
    next_event(&mut rx, |e| is_feed(e, 0, FeedState::Connected)).await;
    wait_until("subscribed", || mock.subscribed(0).len() == 4).await;
    for i in 0..20u64 {
        let mut v: Value = serde_json::from_str(fixture!("ws_orderbook_delta.json")).unwrap();
        v["data"]["u"] = json!(100 + i);
        mock.send(0, v.to_string());
    }
    wait_until("queue full", || handle.stats_snapshot().ws_queue_full >= 1).await;
    let mut ids = Vec::new();
    while ids.len() < 20 {
        let ev = tokio::time::timeout(Duration::from_secs(4), rx.recv()).await.unwrap().unwrap();
        if let EventKind::Book(b) = ev.kind {
            ids.push(b.update_id);
        }
    }
    assert_eq!(ids, (100..120).collect::<Vec<u64>>(), "every update delivered, in order");
    cancel.cancel();
}

#[tokio::test]
async fn ws_slow_consumer_does_not_fake_a_dead_socket() {
    let mock = MockWs::start(Behavior { snapshot_on_subscribe: false, ..Behavior::default() }).await;
    let mut cfg = fast_feed(&mock.url);
    cfg.data_timeout = Duration::from_millis(400);
    cfg.pong_timeout = Duration::from_millis(200);
    let (tx, mut rx) = mpsc::channel(2);
    let cancel = CancellationToken::new();
    let handle = PublicFeed::new(cfg).start(subs(&["BTCUSDT"], 50), tx, cancel.clone());
    next_event(&mut rx, |e| is_feed(e, 0, FeedState::Connected)).await;
    wait_until("subscribed", || mock.subscribed(0).len() == 4).await;
    for _round in 0..2 {
        for _ in 0..6 {
            mock.send(0, fixture!("ws_public_trade.json").to_string());
        }
        // The consumer stalls longer than the data and pong timeouts.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let mut n = 0;
        while n < 6 {
            let ev = tokio::time::timeout(Duration::from_secs(4), rx.recv()).await.unwrap().unwrap();
            if ev.is_market_data() {
                n += 1;
            }
        }
    }
    assert_eq!(mock.conn_count(), 1, "a stalled consumer must not cause a reconnect");
    assert_eq!(handle.stats_snapshot().ws_timeouts, 0);
    cancel.cancel();
}
