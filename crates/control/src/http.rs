//! Read-only HTTP JSON API beside `/metrics`. Nothing here mutates the engine.
//!
//! | route | body |
//! |---|---|
//! | `/metrics` | Prometheus text exposition |
//! | `/api/health` | `{overall, components}` |
//! | `/api/summary` | [`SummaryView`](super::view::SummaryView) |
//! | `/api/hotlist?limit=N` | `{ts_ms, entries: [SymbolView]}` (default 20, max 500) |
//! | `/api/symbol/{symbol}` | [`SymbolView`](super::view::SymbolView); 404 `{error}` when not tracked |
//! | `/api/trades/active` | `{ts_ms, trades: [TradeView]}` |
//! | `/api/events/recent?limit=N&symbol=S` | `{events: [EventRecord]}` oldest first (default 100) |
//! | `/api/storage/status` | store queue, writes/failures/drops by kind, retention runs, last run |
//!
//! Errors are JSON `{"error": "..."}` with 400 (bad request) or 404 (unknown symbol or route).
//!
//! [`serve`] runs the router under hard limits (`control.http_*`): at most `max_connections`
//! connections at once (more are closed at once, `scalper_http_connections_rejected_total`), a
//! request head must arrive within `header_timeout` (also the keep-alive wait), a request must be
//! answered within `request_timeout` (408), and a connection with no byte moving for
//! `idle_timeout` is closed (`scalper_http_timeouts_total{kind}`). So idle or slow clients cannot
//! use up the process's file descriptors, which the gRPC listener, storage and the feeds need.

use super::state::ReadState;
use super::view::{DEFAULT_HOTLIST, MAX_HOTLIST};
use crate::monitoring::metrics::Metrics;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::core::Collector;
use scalper_core::engine::health::HealthBoard;
use scalper_core::engine::snapshot::EngineSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Default number of events served by `/api/events/recent`.
pub const DEFAULT_RECENT_EVENTS: usize = 100;
/// Bytes read from the end of the retention log to find its last record.
const RETENTION_TAIL_BYTES: u64 = 64 * 1024;

/// Shared state of the HTTP API (the original, minimal form; see [`api_router`] for the full one).
#[derive(Clone)]
pub struct ApiState {
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Component health.
    pub health: HealthBoard,
    /// Latest engine snapshot.
    pub snapshot: watch::Receiver<EngineSnapshot>,
}

/// The router over an [`ApiState`]: every route is served; symbol, trade and event routes are
/// empty because no view or bus is attached. Prefer [`api_router`].
pub fn router(state: ApiState) -> Router {
    api_router(ReadState::new(state.metrics, state.health, state.snapshot))
}

/// The full read-only router (`/metrics` and every `/api/*` route).
pub fn api_router(state: ReadState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/health", get(health))
        .route("/api/summary", get(summary))
        .route("/api/hotlist", get(hotlist))
        .route("/api/symbol/{symbol}", get(symbol))
        .route("/api/trades/active", get(trades))
        .route("/api/events/recent", get(events))
        .route("/api/storage/status", get(storage))
        .fallback(not_found)
        .with_state(state)
}

/// Connection limits and timeouts of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time to receive a complete request head, also the wait for the next one on a kept-alive
    /// connection.
    pub header_timeout: Duration,
    /// Time from a request's head to the end of its response.
    pub request_timeout: Duration,
    /// Time with no byte read or written after which a connection is closed.
    pub idle_timeout: Duration,
}

impl HttpLimits {
    /// The limits of `control.http_*`.
    pub fn from_config(c: &scalper_core::config::ControlConfig) -> HttpLimits {
        HttpLimits {
            max_connections: c.http_max_connections.max(1),
            header_timeout: Duration::from_millis(c.http_header_timeout_ms),
            request_timeout: Duration::from_millis(c.http_request_timeout_ms),
            idle_timeout: Duration::from_millis(c.http_idle_timeout_ms),
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::from_config(&scalper_core::config::ControlConfig::default())
    }
}

/// A socket that notes when a byte last moved, in ms since `base`, for the idle timeout.
struct Tracked<T> {
    io: T,
    base: Instant,
    last_ms: Arc<AtomicU64>,
}

impl<T> Tracked<T> {
    fn touch(&self) {
        self.last_ms.store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, b);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` under `limits` until `cancel` fires (then stops accepting and lets
/// open connections finish their current request). Accept errors (e.g. EMFILE) are counted,
/// logged at most once a second and retried after a pause; nothing here panics on client input.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let reject_log = super::LogGate::new(Duration::from_secs(1));
    let accept_log = super::LogGate::new(Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                metrics.http_accept_errors.inc();
                if let Some(suppressed) = accept_log.pass() {
                    tracing::warn!(error = %e, suppressed, "HTTP API: accept failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.http_connections_rejected.inc();
            if let Some(suppressed) = reject_log.pass() {
                tracing::warn!(
                    %peer,
                    max = limits.max_connections,
                    suppressed,
                    "HTTP API: connection limit reached; closing the new connection"
                );
            }
            drop(stream);
            continue;
        };
        let app = app.clone();
        let metrics = metrics.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            metrics.http_connections_open.inc();
            serve_connection(stream, app, limits, &metrics, cancel).await;
            metrics.http_connections_open.dec();
            drop(permit);
        });
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: HttpLimits,
    metrics: &Metrics,
    cancel: CancellationToken,
) {
    let base = Instant::now();
    let last_ms = Arc::new(AtomicU64::new(0));
    let io = hyper_util::rt::TokioIo::new(Tracked { io: stream, base, last_ms: last_ms.clone() });
    let inner = hyper_util::service::TowerToHyperService::new(app);
    let request_timeouts = metrics.http_timeouts.with_label_values(&["request"]);
    let svc = hyper::service::service_fn(move |req: axum::extract::Request<hyper::body::Incoming>| {
        let fut = hyper::service::Service::call(&inner, req);
        let request_timeouts = request_timeouts.clone();
        async move {
            match tokio::time::timeout(limits.request_timeout, fut).await {
                Ok(r) => r,
                Err(_) => {
                    request_timeouts.inc();
                    Ok(error(StatusCode::REQUEST_TIMEOUT, "request timed out"))
                }
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let idle_at = base + Duration::from_millis(last_ms.load(Ordering::Relaxed)) + limits.idle_timeout;
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        metrics.http_timeouts.with_label_values(&["header"]).inc();
                    } else {
                        tracing::debug!(error = %e, "HTTP API connection ended with an error");
                    }
                }
                return;
            }
            _ = tokio::time::sleep_until(idle_at.into()) => {
                let last = base + Duration::from_millis(last_ms.load(Ordering::Relaxed));
                if last.elapsed() >= limits.idle_timeout {
                    metrics.http_timeouts.with_label_values(&["idle"]).inc();
                    return;
                }
            }
            _ = cancel.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({"error": msg.into()}))).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

async fn metrics(State(s): State<ReadState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}

async fn health(State(s): State<ReadState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "overall": s.health.overall(),
        "components": s.health.snapshot(),
    }))
}

async fn summary(State(s): State<ReadState>) -> impl IntoResponse {
    Json(s.summary())
}

/// `?limit=N`.
#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    /// Maximum entries.
    pub limit: Option<usize>,
    /// Only this symbol (events).
    pub symbol: Option<String>,
}

async fn hotlist(State(s): State<ReadState>, Query(q): Query<LimitQuery>) -> impl IntoResponse {
    let limit = q.limit.unwrap_or(DEFAULT_HOTLIST).min(MAX_HOTLIST);
    let v = s.current_view();
    Json(serde_json::json!({"ts_ms": v.ts_ms, "entries": v.hotlist(limit)}))
}

async fn symbol(State(s): State<ReadState>, Path(sym): Path<String>) -> Response {
    let name = sym.trim().to_ascii_uppercase();
    if !scalper_core::domain::Symbol::is_valid(&name) {
        return error(StatusCode::BAD_REQUEST, format!("invalid symbol {sym:?}"));
    }
    let v = s.current_view();
    match v.symbol(&name) {
        Some(sv) => Json(sv).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("symbol {name} is not tracked by the engine")),
    }
}

async fn trades(State(s): State<ReadState>) -> impl IntoResponse {
    let v = s.current_view();
    Json(serde_json::json!({"ts_ms": v.ts_ms, "trades": v.trades}))
}

async fn events(State(s): State<ReadState>, Query(q): Query<LimitQuery>) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_RECENT_EVENTS);
    let sym = match q.symbol.as_deref().map(|x| x.trim().to_ascii_uppercase()) {
        Some(x) if !scalper_core::domain::Symbol::is_valid(&x) => {
            return error(StatusCode::BAD_REQUEST, format!("invalid symbol {x:?}"));
        }
        other => other,
    };
    let all = s.events.recent(super::bus::DEFAULT_RECENT);
    let matching: Vec<_> = all.iter().filter(|e| sym.is_none() || e.symbol == sym).collect();
    let skip = matching.len().saturating_sub(limit);
    let list: Vec<_> = matching.into_iter().skip(skip).map(|e| e.as_ref()).collect();
    Json(serde_json::json!({ "events": list })).into_response()
}

/// `/api/storage/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StorageStatus {
    /// Data directory (`null` when unknown).
    pub data_dir: Option<String>,
    /// Health of the `storage` component (`null` when not reported).
    pub health: Option<scalper_core::engine::health::ComponentHealth>,
    /// Records waiting in the writer's queue.
    pub queue_depth: i64,
    /// Records written, by kind.
    pub writes: BTreeMap<String, u64>,
    /// Failed writes, by kind.
    pub write_failures: BTreeMap<String, u64>,
    /// Records dropped (queue full), by kind.
    pub dropped: BTreeMap<String, u64>,
    /// Retention runs, by result.
    pub retention_runs: BTreeMap<String, u64>,
    pub retention_deleted_files: u64,
    /// Last record of `system/retention.log.jsonl` (`null` when none).
    pub last_retention: Option<serde_json::Value>,
}

/// Values of a one-label counter family, by label value.
pub fn counter_values(v: &prometheus::IntCounterVec) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for mf in v.collect() {
        for m in mf.get_metric() {
            let label = m.get_label().first().map(|l| l.value().to_string()).unwrap_or_default();
            out.insert(label, m.get_counter().get_value() as u64);
        }
    }
    out
}

/// The last parseable JSON line of a file, reading at most its last 64 KiB (`None` when the file
/// is missing, empty or has no valid line there).
pub fn last_json_line(path: &std::path::Path) -> Option<serde_json::Value> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(RETENTION_TAIL_BYTES))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.lines().rev().find_map(|l| serde_json::from_str(l.trim()).ok())
}

async fn storage(State(s): State<ReadState>) -> impl IntoResponse {
    let m = &s.metrics;
    let last_retention = match s.paths.as_ref().map(|p| p.retention_log()) {
        Some(p) => tokio::task::spawn_blocking(move || last_json_line(&p)).await.ok().flatten(),
        None => None,
    };
    Json(StorageStatus {
        data_dir: s.paths.as_ref().map(|p| p.data_dir().display().to_string()),
        health: s.health.snapshot().get("storage").cloned(),
        queue_depth: m.storage_queue_depth.get(),
        writes: counter_values(&m.storage_writes),
        write_failures: counter_values(&m.storage_write_failures),
        dropped: counter_values(&m.storage_dropped),
        retention_runs: counter_values(&m.retention_runs),
        retention_deleted_files: m.retention_deleted_files.get(),
        last_retention,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_json_line_skips_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        assert!(last_json_line(&p).is_none());
        std::fs::write(&p, "{\"n\":1}\n{\"n\":2}\n{\"n\":").unwrap();
        assert_eq!(last_json_line(&p), Some(serde_json::json!({"n": 2})));
    }

    #[test]
    fn counter_values_by_label() {
        let m = Metrics::new();
        m.storage_writes.with_label_values(&["events"]).inc_by(3);
        m.storage_writes.with_label_values(&["raw"]).inc();
        let v = counter_values(&m.storage_writes);
        assert_eq!(v.get("events"), Some(&3));
        assert_eq!(v.get("raw"), Some(&1));
        assert_eq!(v.len(), 2);
    }
}
