//! HTTP side of the simulator's private surface: the signed v5 endpoints (account, positions,
//! orders, executions, leverage, trading-stop) with real signature and timestamp checks,
//! per-key rate limits with Bybit's `X-Bapi-Limit-*` headers, and injected faults.
//!
//! Checks, in Bybit's order: `X-BAPI-API-KEY` known (else 10003), `X-BAPI-TIMESTAMP` within
//! `server_time − recv_window <= ts < server_time + 1000` (else 10002), `X-BAPI-SIGN` equal to
//! `HMAC-SHA256(secret, ts + key + recv_window + payload)` where the payload is the raw query
//! string of a GET or the raw body of a POST (else 10004 "error sign!"), then the rate limit of
//! the endpoint group (else 10006 "Too many visits!").

use super::private::{lock_private, ret_msg, CreateFault, LimitHeaders, Outcome, PrivateState};
use super::Shared;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use scalper_bybit::bybit_private::limiter::EndpointGroup;
use scalper_bybit::bybit_private::sign::{
    rest_sign_payload, sign_rest, signatures_match, HEADER_API_KEY, HEADER_RECV_WINDOW, HEADER_SIGN, HEADER_TIMESTAMP,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Routes of the private surface (REST and the `/v5/private` WebSocket).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v5/account/wallet-balance", get(private_rest))
        .route("/v5/position/list", get(private_rest))
        .route("/v5/order/realtime", get(private_rest))
        .route("/v5/order/history", get(private_rest))
        .route("/v5/execution/list", get(private_rest))
        .route("/v5/order/create", post(private_rest))
        .route("/v5/order/amend", post(private_rest))
        .route("/v5/order/cancel", post(private_rest))
        .route("/v5/order/cancel-all", post(private_rest))
        .route("/v5/position/set-leverage", post(private_rest))
        .route("/v5/position/trading-stop", post(private_rest))
        .route("/v5/private", get(super::private_ws::ws_private))
}

fn json(body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

fn with_limits(mut r: Response, h: LimitHeaders) -> Response {
    let hs = r.headers_mut();
    for (k, v) in [
        ("X-Bapi-Limit", h.limit.to_string()),
        ("X-Bapi-Limit-Status", h.remaining.to_string()),
        ("X-Bapi-Limit-Reset-Timestamp", h.reset_ms.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            hs.insert(k, v);
        }
    }
    r
}

fn error(sh: &Shared, code: i64, msg: &str) -> Response {
    json(sh.lock().error_body(code, msg))
}

fn http_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = status.canonical_reason().unwrap_or("Error");
    let body =
        format!("<html><head><title>{} {reason}</title></head><body><h1>{reason}</h1></body></html>", status.as_u16());
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

fn header_str<'a>(h: &'a HeaderMap, k: &str) -> Option<&'a str> {
    h.get(k).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Verifies key, timestamp and signature. `Ok(key)` or the error response.
fn authenticate(sh: &Shared, h: &HeaderMap, payload: &str) -> Result<String, Box<Response>> {
    let ex = sh.lock();
    let now = ex.now_ms();
    let mut p = lock_private(sh);
    match check_auth(&p, now, h, payload) {
        Ok(k) => Ok(k),
        Err((code, msg)) => {
            p.counters.auth_failures += 1;
            Err(Box::new(json(ex.error_body(code, &msg))))
        }
    }
}

fn check_auth(p: &PrivateState, now: i64, h: &HeaderMap, payload: &str) -> Result<String, (i64, String)> {
    let invalid_key = || (10003, "API key is invalid.".to_string());
    let key = header_str(h, HEADER_API_KEY).filter(|k| !k.is_empty()).ok_or_else(invalid_key)?;
    let secret = p.secret(key).ok_or_else(invalid_key)?;
    let ts = header_str(h, HEADER_TIMESTAMP).and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| {
        (10002, "invalid request, please check your server timestamp or recv_window param".to_string())
    })?;
    let rw = match header_str(h, HEADER_RECV_WINDOW) {
        None | Some("") => 5_000,
        Some(v) => v.parse::<u64>().map_err(|_| (10001, "params error: recv_window invalid".to_string()))?,
    };
    if !(now - rw as i64 <= ts && ts < now + 1_000) {
        return Err((
            10002,
            format!(
                "invalid request, please check your server timestamp or recv_window param. \
                 req_timestamp[{ts}],server_timestamp[{now}],recv_window[{rw}]"
            ),
        ));
    }
    let expected = sign_rest(secret.as_bytes(), ts, key, rw, payload);
    match header_str(h, HEADER_SIGN) {
        Some(sign) if signatures_match(&sign.to_ascii_lowercase(), &expected) => Ok(key.to_string()),
        _ => Err((10004, format!("error sign! origin_string[{}]", rest_sign_payload(ts, key, rw, payload)))),
    }
}

async fn sleep_or_shutdown(sh: &Shared, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = sh.cancel.cancelled() => false,
    }
}

/// Every private REST endpoint.
async fn private_rest(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let payload = if method == Method::GET {
        uri.query().unwrap_or("").to_string()
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    sh.counters.rest_requests.fetch_add(1, Ordering::Relaxed);
    {
        let mut ex = sh.lock();
        lock_private(&sh).counters.requests += 1;
        if let Some(f) = ex.take_rest_fault() {
            sh.counters.rest_faults.fetch_add(1, Ordering::Relaxed);
            return super::server::fault_response(&ex, f);
        }
    }
    let key = match authenticate(&sh, &headers, &payload) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let Some(group) = EndpointGroup::of_path(&path) else {
        return error(&sh, 10017, "Route not found.");
    };
    let limits = {
        let ex = sh.lock();
        let now = ex.now_ms();
        let r = lock_private(&sh).rate_limit(&key, group, now);
        match r {
            Ok(h) => h,
            Err(h) => return with_limits(json(ex.error_body(10006, "Too many visits!")), h),
        }
    };
    let is_create = path == "/v5/order/create";
    let fault = if is_create { lock_private(&sh).take_create_fault() } else { None };
    let delayed = matches!(fault, Some(CreateFault::DelayProcessing(_)));
    let work = process(sh, method, uri, headers, payload, path, fault, limits);
    if delayed {
        // A request stuck inside the venue is processed even if its client gave up.
        return tokio::spawn(work).await.unwrap_or_else(|_| http_error(503));
    }
    work.await
}

/// Processes an authenticated, rate-limited request (after its injected fault, if any).
#[allow(clippy::too_many_arguments)]
async fn process(
    sh: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    payload: String,
    path: String,
    fault: Option<CreateFault>,
    limits: LimitHeaders,
) -> Response {
    let is_create = path == "/v5/order/create";
    if let Some(CreateFault::DelayProcessing(d)) = fault {
        if !sleep_or_shutdown(&sh, Duration::from_millis(d)).await {
            return http_error(503);
        }
        // The timestamp is checked again when the request is finally processed.
        if let Err(r) = authenticate(&sh, &headers, &payload) {
            return with_limits(*r, limits);
        }
    }
    let result = {
        let mut ex = sh.lock();
        let now = ex.now_ms();
        let mut p = lock_private(&sh);
        let out: Outcome = if let Some(CreateFault::Reject(code)) = fault {
            p.reject_create(code)
        } else if method == Method::GET {
            match Query::<HashMap<String, String>>::try_from_uri(&uri) {
                Err(_) => Err(super::exchange::RestError(10001, "params error: invalid query string".into())),
                Ok(Query(q)) => match path.as_str() {
                    "/v5/account/wallet-balance" => p.wallet_balance(&ex, &q),
                    "/v5/position/list" => p.position_list(&ex, &q),
                    "/v5/order/realtime" => p.order_realtime(&ex, &q),
                    "/v5/order/history" => p.order_history(&ex, &q),
                    _ => p.execution_list(&ex, &q),
                },
            }
        } else {
            match serde_json::from_str::<serde_json::Value>(&payload) {
                Ok(b @ serde_json::Value::Object(_)) => match path.as_str() {
                    "/v5/order/create" => p.create(&mut ex, &b, now),
                    "/v5/order/amend" => p.amend(&mut ex, &b, now),
                    "/v5/order/cancel" => p.cancel(&mut ex, &b, now),
                    "/v5/order/cancel-all" => p.cancel_all(&mut ex, &b, now),
                    "/v5/position/set-leverage" => p.set_leverage(&mut ex, &b, now),
                    _ => p.trading_stop(&mut ex, &b, now),
                },
                _ => {
                    if is_create {
                        p.counters.create_requests += 1;
                        p.counters.orders_rejected += 1;
                    }
                    Err(super::exchange::RestError(10001, "params error: the body must be a JSON object".into()))
                }
            }
        };
        drop(p);
        match out {
            Ok(v) => ex.envelope(v),
            Err(super::exchange::RestError(code, msg)) => {
                let msg = if msg.is_empty() { ret_msg(code).to_string() } else { msg };
                ex.error_body(code, &msg)
            }
        }
    };
    match fault {
        Some(CreateFault::ThenHttp(status)) => http_error(status),
        Some(CreateFault::DelayResponse(d)) => {
            if !sleep_or_shutdown(&sh, Duration::from_millis(d)).await {
                return http_error(503);
            }
            with_limits(json(result), limits)
        }
        _ => with_limits(json(result), limits),
    }
}
