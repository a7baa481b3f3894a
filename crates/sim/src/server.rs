//! HTTP side of the simulator: Bybit v5 public REST market endpoints and the WebSocket upgrade
//! of `/v5/public/linear`, on one loopback port, and the HTTP plumbing the private endpoints
//! (`private_http`, merged with these routes at the crate root) share: Bybit's error envelopes,
//! injected HTTP faults and the WebSocket upgrade.

use super::exchange::{Exchange, RestError, RestFault};
use super::{ws, Shared};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

type Params = HashMap<String, String>;
type Q = Result<Query<Params>, QueryRejection>;

/// The public routes (REST market data and the public WebSocket); the crate root merges them
/// with the private ones.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v5/market/instruments-info", get(instruments_info))
        .route("/v5/market/orderbook", get(orderbook))
        .route("/v5/market/tickers", get(tickers))
        .route("/v5/market/time", get(time))
        .route("/v5/market/kline", get(kline))
        .route("/v5/public/linear", get(ws_public))
}

fn json(body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

/// Message Bybit pairs with a return code.
pub(crate) fn ret_msg(code: i64) -> &'static str {
    match code {
        10001 => "params error",
        10002 => "invalid request, please check your server timestamp or recv_window param",
        10006 => "Too many visits!",
        10016 => "Server error",
        10018 => "Exceeded the IP Rate Limit",
        _ => "error",
    }
}

pub(crate) fn fault_response(ex: &Exchange, fault: RestFault) -> Response {
    match fault {
        RestFault::RetCode(code) => json(ex.error_body(code, ret_msg(code))),
        RestFault::Http(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = if status == StatusCode::FORBIDDEN {
                "access too frequent".to_string()
            } else {
                let reason = status.canonical_reason().unwrap_or("Error");
                format!(
                    "<html><head><title>{} {reason}</title></head><body><h1>{reason}</h1></body></html>",
                    status.as_u16()
                )
            };
            let ctype = if status == StatusCode::FORBIDDEN { "text/plain" } else { "text/html" };
            let mut r = (status, body).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            r
        }
    }
}

/// Common REST path: counts, serves pending faults, checks `category=linear`, runs `f` under
/// the exchange lock and wraps errors in Bybit's envelope (HTTP 200 with a non-zero retCode).
fn rest(
    sh: &Shared,
    q: Q,
    needs_category: bool,
    f: impl FnOnce(&Exchange, &Params) -> Result<String, RestError>,
) -> Response {
    sh.counters.rest_requests.fetch_add(1, Ordering::Relaxed);
    let mut ex = sh.lock();
    if let Some(fault) = ex.take_rest_fault() {
        sh.counters.rest_faults.fetch_add(1, Ordering::Relaxed);
        return fault_response(&ex, fault);
    }
    let params = match q {
        Ok(Query(p)) => p,
        Err(_) => return json(ex.error_body(10001, "params error: invalid query string")),
    };
    if needs_category && params.get("category").map(String::as_str) != Some("linear") {
        return json(ex.error_body(10001, "Illegal category"));
    }
    match f(&ex, &params) {
        Ok(body) => json(body),
        Err(RestError(code, msg)) => json(ex.error_body(code, &msg)),
    }
}

fn p<'a>(params: &'a Params, k: &str) -> Option<&'a str> {
    params.get(k).map(String::as_str)
}

async fn instruments_info(State(sh): State<Arc<Shared>>, q: Q) -> Response {
    rest(&sh, q, true, |ex, ps| ex.instruments_info(p(ps, "symbol"), p(ps, "status"), p(ps, "limit"), p(ps, "cursor")))
}

async fn orderbook(State(sh): State<Arc<Shared>>, q: Q) -> Response {
    rest(&sh, q, true, |ex, ps| ex.orderbook(p(ps, "symbol"), p(ps, "limit")))
}

async fn tickers(State(sh): State<Arc<Shared>>, q: Q) -> Response {
    rest(&sh, q, true, |ex, ps| ex.tickers(p(ps, "symbol")))
}

/// `category` is optional here (Bybit defaults it to `linear`); any other value is refused.
/// Faults and parameters are handled under the exchange lock like every route; the candles are
/// then computed on a blocking thread, outside the lock.
async fn kline(State(sh): State<Arc<Shared>>, q: Q) -> Response {
    let mut job = None;
    let early = rest(&sh, q, false, |ex, ps| {
        if p(ps, "category").is_some_and(|c| c != "linear") {
            return Err(RestError(10001, "Illegal category".into()));
        }
        job = Some(ex.kline_job(p(ps, "symbol"), p(ps, "interval"), p(ps, "start"), p(ps, "end"), p(ps, "limit"))?);
        Ok(String::new())
    });
    let Some(job) = job else { return early };
    match tokio::task::spawn_blocking(move || job.body()).await {
        Ok(body) => json(body),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "kline computation failed").into_response(),
    }
}

async fn time(State(sh): State<Arc<Shared>>, q: Q) -> Response {
    rest(&sh, q, false, |ex, _| Ok(ex.time()))
}

/// Upgrades `/v5/public/linear` to a WebSocket.
async fn ws_public(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    upgrade(req, move |socket| ws::run_connection(sh, socket))
}

/// A WebSocket served on a hyper upgrade.
pub(crate) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The RFC 6455 handshake by hand on hyper's upgrade: checks the request, answers 101 with the
/// accept key, and runs `serve` on the socket once the connection is upgraded (400 when the
/// request is not a WebSocket upgrade).
pub(crate) fn upgrade<F, Fut>(mut req: Request, serve: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let h = req.headers();
    let is_ws =
        h.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = h.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY).filter(|_| is_ws && version_ok) else {
        return (StatusCode::BAD_REQUEST, "expected a websocket upgrade").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            serve(socket).await;
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hs = r.headers_mut();
    hs.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    hs.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hs.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}
