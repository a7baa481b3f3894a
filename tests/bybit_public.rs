//! Bybit v5 public connector: fixtures in the documented format, the REST client against a tiny
//! axum mock, and the WS feed against a tiny tokio-tungstenite mock.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use scalper::connectors::bybit_public::messages::{
    parse_envelope, parse_ws_frame, InstrumentsPage, MarketData, OrderbookResult, ServerTime, TickersResult, WsMessage,
};
use scalper::connectors::bybit_public::{
    BybitError, ConnectorStats, FeedConfig, FeedHandle, PublicFeed, PublicRest, RestConfig, Subscription,
};
use scalper::domain::{Price, Qty, Side, Symbol};
use scalper::engine::event::{Event, EventKind, FeedState};
use scalper::market::data::{BookAction, InstrumentStatus, Level};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/bybit/", $name))
    };
}

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}
fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}
fn lvl(price: &str, qty: &str) -> Level {
    Level { price: p(price), qty: q(qty) }
}

// =============================================================================================
// Fixtures
// =============================================================================================

#[test]
fn fixture_instruments_parse_and_filter() {
    let page: InstrumentsPage = parse_envelope(fixture!("instruments_linear.json")).unwrap();
    assert_eq!(page.category, "linear");
    assert_eq!(page.next_page_cursor, "");
    assert_eq!(page.list.len(), 4);
    let keep: Vec<&str> = page.list.iter().filter(|i| i.is_usdt_perpetual()).map(|i| i.symbol.as_str()).collect();
    assert_eq!(keep, vec!["BTCUSDT", "1000PEPEUSDT"]);

    let btc = page.list[0].to_instrument().unwrap();
    assert_eq!(btc.symbol.as_str(), "BTCUSDT");
    assert_eq!(btc.status, InstrumentStatus::Trading);
    assert_eq!(btc.tick_size, p("0.1"));
    assert_eq!(btc.qty_step, q("0.001"));
    assert_eq!(btc.min_qty, q("0.001"));
    assert_eq!(btc.max_qty, q("1190"));
    assert_eq!(btc.min_notional, p("5"));
    assert_eq!(btc.max_leverage, p("100"));
    assert_eq!(btc.launch_time_ms, 1_584_230_400_000);

    let pepe = page.list[1].to_instrument().unwrap();
    assert_eq!(pepe.tick_size.raw(), 100);
    assert_eq!(pepe.qty_step, q("100"));

    let pre: InstrumentsPage = parse_envelope(fixture!("instruments_prelaunch.json")).unwrap();
    let newtok = pre.list[0].to_instrument().unwrap();
    assert_eq!(newtok.status, InstrumentStatus::PreLaunch);
    assert_eq!(newtok.max_leverage, p("5"));
}

#[test]
fn fixture_error_envelope_is_api_error() {
    let e = parse_envelope::<TickersResult>(fixture!("error_params.json")).unwrap_err();
    assert_eq!(e, BybitError::Api { code: 10001, msg: "params error: Category is invalid".into() });
}

#[test]
fn fixture_rest_orderbook_tickers_time() {
    let ob: OrderbookResult = parse_envelope(fixture!("orderbook_rest.json")).unwrap();
    assert_eq!(ob.ts, 1_760_000_000_123);
    let book = ob.into_book(25).unwrap();
    assert_eq!(book.action, BookAction::Snapshot);
    assert_eq!(book.depth, 25);
    assert_eq!(book.bids, vec![lvl("61234.5", "2.417"), lvl("61234.4", "0.033"), lvl("61233.9", "1.5")]);
    assert_eq!(book.asks, vec![lvl("61234.6", "0.812"), lvl("61234.8", "3.004")]);
    assert_eq!((book.update_id, book.seq, book.cts_ms), (9_182_736, 456_789_012_345, Some(1_760_000_000_119)));

    let t: TickersResult = parse_envelope(fixture!("tickers_linear.json")).unwrap();
    assert_eq!(t.list.len(), 3);
    let btc = t.list[0].clone().into_update();
    assert_eq!(btc.symbol.as_str(), "BTCUSDT");
    assert_eq!(btc.last_price, Some(p("61234.5")));
    assert_eq!(btc.mark_price, Some(p("61236.78")));
    assert_eq!(btc.index_price, Some(p("61240.12")));
    assert_eq!(btc.bid1_price, Some(p("61234.5")));
    assert_eq!(btc.ask1_price, Some(p("61234.6")));
    assert_eq!(btc.price_24h_pcnt, Some(0.018673));
    assert_eq!(btc.funding_rate, Some(0.0001));
    assert_eq!(btc.open_interest, Some(52341.118));
    assert_eq!(btc.volume_24h, Some(134567.891));
    assert_eq!(btc.turnover_24h, Some(8_123_456_789.123_4));
    // Pre-launch contracts send empty strings: no value, not an error.
    let pre = t.list[1].clone().into_update();
    assert_eq!(pre.symbol.as_str(), "NEWTOKUSDT");
    assert!(pre.last_price.is_none() && pre.funding_rate.is_none() && pre.bid1_price.is_none());

    let st: ServerTime = parse_envelope(fixture!("server_time.json")).unwrap();
    assert_eq!(st.to_ms().unwrap(), 1_760_000_000_654);
}

#[test]
fn fixture_ws_orderbook_snapshot_and_delta() {
    let WsMessage::Market { ts_ms, data: MarketData::Book(b) } =
        parse_ws_frame(fixture!("ws_orderbook_snapshot.json")).unwrap()
    else {
        panic!("not a book")
    };
    assert_eq!(ts_ms, 1_760_000_001_001);
    assert_eq!(b.symbol.as_str(), "BTCUSDT");
    assert_eq!((b.action, b.depth), (BookAction::Snapshot, 50));
    assert_eq!(b.bids, vec![lvl("61234.5", "2.417"), lvl("61234.4", "0.033")]);
    assert_eq!(b.asks, vec![lvl("61234.6", "0.812"), lvl("61234.8", "3.004")]);
    assert_eq!((b.update_id, b.seq, b.cts_ms), (1_234_501, 456_789_012_400, Some(1_760_000_000_998)));

    let WsMessage::Market { ts_ms, data: MarketData::Book(d) } =
        parse_ws_frame(fixture!("ws_orderbook_delta.json")).unwrap()
    else {
        panic!("not a book")
    };
    assert_eq!(ts_ms, 1_760_000_001_021);
    assert_eq!(d.action, BookAction::Delta);
    assert_eq!(d.bids, vec![lvl("61234.4", "0"), lvl("61234.3", "1.25")]);
    assert!(d.asks.is_empty());
    assert_eq!(d.update_id, 1_234_502);
}

#[test]
fn fixture_ws_trades_tickers_liquidations() {
    let WsMessage::Market { ts_ms, data: MarketData::Trades(t) } =
        parse_ws_frame(fixture!("ws_public_trade.json")).unwrap()
    else {
        panic!("not trades")
    };
    assert_eq!(ts_ms, 1_760_000_001_105);
    assert_eq!(t.symbol.as_str(), "BTCUSDT");
    assert_eq!(t.trades.len(), 2);
    assert_eq!(t.trades[0].ts_ms, 1_760_000_001_102);
    assert_eq!(t.trades[0].aggressor, Side::Buy);
    assert_eq!(t.trades[0].qty, q("0.015"));
    assert_eq!(t.trades[0].price, p("61234.6"));
    assert_eq!(t.trades[0].id, "6e0a1f3c-2b7d-5c4e-9a8b-0c1d2e3f4a5b");
    assert!(!t.trades[0].block_trade);
    assert_eq!(t.trades[1].aggressor, Side::Sell);
    assert!(t.trades[1].block_trade);

    let WsMessage::Market { ts_ms, data: MarketData::Ticker(s) } =
        parse_ws_frame(fixture!("ws_ticker_snapshot.json")).unwrap()
    else {
        panic!("not a ticker")
    };
    assert_eq!(ts_ms, 1_760_000_001_200);
    assert_eq!(s.last_price, Some(p("61234.5")));
    assert_eq!(s.funding_rate, Some(0.0001));
    assert_eq!(s.open_interest, Some(52341.118));

    let WsMessage::Market { data: MarketData::Ticker(d), .. } =
        parse_ws_frame(fixture!("ws_ticker_delta.json")).unwrap()
    else {
        panic!("not a ticker")
    };
    assert_eq!(d.last_price, Some(p("61234.6")));
    assert_eq!(d.mark_price, Some(p("61237.01")));
    // Fields absent from a delta did not change: they stay None.
    assert_eq!((d.index_price, d.funding_rate, d.volume_24h), (None, None, None));

    let WsMessage::Market { ts_ms, data: MarketData::Liquidations(l) } =
        parse_ws_frame(fixture!("ws_all_liquidation.json")).unwrap()
    else {
        panic!("not liquidations")
    };
    assert_eq!(ts_ms, 1_760_000_001_402);
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].side, l[0].qty, l[0].price, l[0].ts_ms), (Side::Buy, q("0.25"), p("61102.3"), 1_760_000_001_398));
    assert_eq!(l[1].side, Side::Sell);
}

#[test]
fn fixture_ws_acks_and_pong() {
    let WsMessage::Ack(a) = parse_ws_frame(fixture!("ws_subscribe_ack.json")).unwrap() else { panic!() };
    assert!(a.is_success());
    assert_eq!((a.req_id.as_str(), a.op.as_str()), ("1-1", "subscribe"));
    let WsMessage::Ack(f) = parse_ws_frame(fixture!("ws_subscribe_fail.json")).unwrap() else { panic!() };
    assert!(!f.is_success());
    assert!(f.ret_msg.contains("NOPEUSDT"));
    assert!(matches!(parse_ws_frame(fixture!("ws_pong.json")).unwrap(), WsMessage::Pong(_)));
}

// =============================================================================================
// REST against an axum mock
// =============================================================================================

async fn serve(app: Router) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

fn fast_rest(base: &str) -> (PublicRest, Arc<ConnectorStats>) {
    let mut cfg = RestConfig::new(base);
    cfg.backoff_base = Duration::from_millis(5);
    cfg.backoff_max = Duration::from_millis(20);
    cfg.max_attempts = 3;
    cfg.timeout = Duration::from_secs(2);
    let stats = Arc::new(ConnectorStats::default());
    (PublicRest::with_config(cfg, stats.clone()).unwrap(), stats)
}

#[derive(Default)]
struct RestLog {
    queries: Mutex<Vec<HashMap<String, String>>>,
    hits: AtomicUsize,
}

#[tokio::test]
async fn rest_instruments_follow_cursor_and_filter() {
    let log = Arc::new(RestLog::default());
    let app = Router::new()
        .route(
            "/v5/market/instruments-info",
            get(|State(log): State<Arc<RestLog>>, Query(qs): Query<HashMap<String, String>>| async move {
                log.queries.lock().unwrap().push(qs.clone());
                let body = if qs.get("status").map(String::as_str) == Some("PreLaunch") {
                    fixture!("instruments_prelaunch.json").to_string()
                } else if qs.get("cursor").map(String::as_str) == Some("page2") {
                    let mut v: Value = serde_json::from_str(fixture!("instruments_linear.json")).unwrap();
                    let mut eth = v["result"]["list"][0].clone();
                    eth["symbol"] = json!("ETHUSDT");
                    eth["priceFilter"]["tickSize"] = json!("0.01");
                    // A broken instrument is skipped, not fatal.
                    let mut bad = v["result"]["list"][0].clone();
                    bad["symbol"] = json!("BADUSDT");
                    bad["priceFilter"]["tickSize"] = json!("zero");
                    v["result"]["list"] = json!([eth, bad]);
                    v["result"]["nextPageCursor"] = json!("");
                    v.to_string()
                } else {
                    let mut v: Value = serde_json::from_str(fixture!("instruments_linear.json")).unwrap();
                    v["result"]["nextPageCursor"] = json!("page2");
                    v.to_string()
                };
                (StatusCode::OK, body)
            }),
        )
        .with_state(log.clone());
    let base = serve(app).await;
    let (rest, stats) = fast_rest(&base);
    let list = rest.instruments_linear().await.unwrap();
    let syms: Vec<&str> = list.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(syms, vec!["1000PEPEUSDT", "BTCUSDT", "ETHUSDT", "NEWTOKUSDT"]);
    let eth = list.iter().find(|i| i.symbol.as_str() == "ETHUSDT").unwrap();
    assert_eq!(eth.tick_size, p("0.01"));
    let newtok = list.iter().find(|i| i.symbol.as_str() == "NEWTOKUSDT").unwrap();
    assert_eq!(newtok.status, InstrumentStatus::PreLaunch);

    let queries = log.queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 3, "{queries:?}");
    assert!(queries.iter().all(|q| q.get("category").map(String::as_str) == Some("linear")));
    assert!(queries.iter().all(|q| q.get("limit").map(String::as_str) == Some("1000")));
    assert_eq!(queries[0].get("cursor"), None);
    assert_eq!(queries[1].get("cursor").map(String::as_str), Some("page2"));
    assert_eq!(queries[2].get("status").map(String::as_str), Some("PreLaunch"));
    let s = stats.snapshot();
    assert_eq!(s.rest_requests, 3);
    assert_eq!(s.rest_errors, 1, "the skipped instrument is counted");
    assert_eq!(s.rest_retries, 0);
}

#[tokio::test]
async fn rest_retries_429_then_succeeds() {
    let log = Arc::new(RestLog::default());
    let app = Router::new()
        .route(
            "/v5/market/orderbook",
            get(|State(log): State<Arc<RestLog>>, Query(qs): Query<HashMap<String, String>>| async move {
                log.queries.lock().unwrap().push(qs);
                if log.hits.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests".to_string())
                } else {
                    (StatusCode::OK, fixture!("orderbook_rest.json").to_string())
                }
            }),
        )
        .with_state(log.clone());
    let base = serve(app).await;
    let (rest, stats) = fast_rest(&base);
    let (book, ts) = rest.orderbook_with_ts(&Symbol::new("BTCUSDT"), 50).await.unwrap();
    assert_eq!(ts, 1_760_000_000_123);
    assert_eq!(book.action, BookAction::Snapshot);
    assert_eq!(book.depth, 50);
    assert_eq!(book.bids[0], lvl("61234.5", "2.417"));
    let qs = log.queries.lock().unwrap().clone();
    assert_eq!(qs.len(), 2);
    assert_eq!(qs[1].get("symbol").map(String::as_str), Some("BTCUSDT"));
    assert_eq!(qs[1].get("limit").map(String::as_str), Some("50"));
    let s = stats.snapshot();
    assert_eq!((s.rest_requests, s.rest_retries, s.rest_rate_limited, s.rest_errors), (2, 1, 1, 1));
}

#[tokio::test]
async fn rest_ret_code_error_surfaces_and_is_not_retried() {
    let log = Arc::new(RestLog::default());
    let app = Router::new()
        .route(
            "/v5/market/tickers",
            get(|State(log): State<Arc<RestLog>>| async move {
                log.hits.fetch_add(1, Ordering::SeqCst);
                (StatusCode::OK, fixture!("error_params.json").to_string())
            }),
        )
        .with_state(log.clone());
    let base = serve(app).await;
    let (rest, stats) = fast_rest(&base);
    let e = rest.tickers_linear().await.unwrap_err();
    assert_eq!(e, BybitError::Api { code: 10001, msg: "params error: Category is invalid".into() });
    assert_eq!(log.hits.load(Ordering::SeqCst), 1);
    assert_eq!(stats.snapshot().rest_retries, 0);
}

#[tokio::test]
async fn rest_rate_limit_code_is_retried_until_bounded() {
    let log = Arc::new(RestLog::default());
    let app = Router::new()
        .route(
            "/v5/market/time",
            get(|State(log): State<Arc<RestLog>>| async move {
                log.hits.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::OK,
                    r#"{"retCode":10006,"retMsg":"Too many visits!","result":{},"retExtInfo":{},"time":1}"#,
                )
            }),
        )
        .with_state(log.clone());
    let base = serve(app).await;
    let (rest, stats) = fast_rest(&base);
    let e = rest.server_time().await.unwrap_err();
    assert_eq!(e, BybitError::Api { code: 10006, msg: "Too many visits!".into() });
    assert_eq!(log.hits.load(Ordering::SeqCst), 3, "max_attempts bounds the retries");
    let s = stats.snapshot();
    assert_eq!((s.rest_retries, s.rest_rate_limited), (2, 3));
}

#[tokio::test]
async fn rest_http_errors_are_typed_with_status() {
    let hits_403 = Arc::new(AtomicUsize::new(0));
    let hits_503 = Arc::new(AtomicUsize::new(0));
    let (h403, h503) = (hits_403.clone(), hits_503.clone());
    let app = Router::new()
        .route(
            "/v5/market/time",
            get(move || async move {
                h403.fetch_add(1, Ordering::SeqCst);
                (StatusCode::FORBIDDEN, "access too frequent")
            }),
        )
        .route(
            "/v5/market/tickers",
            get(move || async move {
                h503.fetch_add(1, Ordering::SeqCst);
                (StatusCode::SERVICE_UNAVAILABLE, "<html>down</html>")
            }),
        )
        .route("/v5/market/orderbook", get(|| async { (StatusCode::OK, "<html>maintenance</html>") }));
    let base = serve(app).await;
    let (rest, _stats) = fast_rest(&base);

    let e = rest.server_time().await.unwrap_err();
    assert_eq!(e, BybitError::Http { status: 403, body: "access too frequent".into() });
    assert_eq!(hits_403.load(Ordering::SeqCst), 1, "403 (IP ban) is not retried");

    let e = rest.tickers_linear().await.unwrap_err();
    assert_eq!(e.http_status(), Some(503));
    assert_eq!(hits_503.load(Ordering::SeqCst), 3, "5xx retried up to max_attempts");

    let e = rest.orderbook(&Symbol::new("BTCUSDT"), 1).await.unwrap_err();
    assert_eq!(e, BybitError::NotJson { status: 200, body: "<html>maintenance</html>".into() });
}

#[tokio::test]
async fn rest_timeout_is_typed() {
    let app = Router::new().route(
        "/v5/market/time",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            (StatusCode::OK, fixture!("server_time.json"))
        }),
    );
    let base = serve(app).await;
    let mut cfg = RestConfig::new(&base);
    cfg.timeout = Duration::from_millis(100);
    cfg.max_attempts = 1;
    let rest = PublicRest::with_config(cfg, Arc::new(ConnectorStats::default())).unwrap();
    assert!(matches!(rest.server_time().await, Err(BybitError::Timeout(_))));
}

#[tokio::test]
async fn rest_tickers_and_server_time() {
    let app = Router::new()
        .route("/v5/market/tickers", get(|| async { (StatusCode::OK, fixture!("tickers_linear.json")) }))
        .route("/v5/market/time", get(|| async { (StatusCode::OK, fixture!("server_time.json")) }));
    let base = serve(app).await;
    let (rest, _) = fast_rest(&base);
    let t = rest.tickers_linear().await.unwrap();
    let syms: Vec<&str> = t.iter().map(|t| t.symbol.as_str()).collect();
    assert_eq!(syms, vec!["BTCUSDT", "NEWTOKUSDT"], "dated futures are left out");
    assert_eq!(t[0].last_price, Some(p("61234.5")));
    assert_eq!(rest.server_time().await.unwrap(), 1_760_000_000_654);
}

// =============================================================================================
// WS against a tokio-tungstenite mock
// =============================================================================================

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
