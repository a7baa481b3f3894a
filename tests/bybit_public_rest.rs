//! Bybit v5 public REST client against a tiny axum mock: cursor paging, retries, typed errors.

mod common;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::bybit::{fixture, lvl};
use common::p;
use scalper::connectors::bybit_public::{BybitError, ConnectorStats, PublicRest, RestConfig};
use scalper::domain::Symbol;
use scalper::market::data::{BookAction, InstrumentStatus};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

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
