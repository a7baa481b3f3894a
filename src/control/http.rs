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

use super::state::ReadState;
use super::view::{DEFAULT_HOTLIST, MAX_HOTLIST};
use crate::engine::health::HealthBoard;
use crate::engine::runtime::EngineSnapshot;
use crate::monitoring::metrics::Metrics;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::core::Collector;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use tokio::sync::watch;

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
    if !crate::domain::Symbol::is_valid(&name) {
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
        Some(x) if !crate::domain::Symbol::is_valid(&x) => {
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
    pub health: Option<crate::engine::health::ComponentHealth>,
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
    /// Files deleted by retention.
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
