//! Read-only HTTP JSON API beside `/metrics`. Nothing here mutates the engine.

use crate::engine::health::HealthBoard;
use crate::engine::runtime::EngineSnapshot;
use crate::monitoring::metrics::Metrics;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use tokio::sync::watch;

/// Shared state of the HTTP API.
#[derive(Clone)]
pub struct ApiState {
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Component health.
    pub health: HealthBoard,
    /// Latest engine snapshot.
    pub snapshot: watch::Receiver<EngineSnapshot>,
}

/// The router: `/metrics`, `/api/health`, `/api/summary`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/health", get(health))
        .route("/api/summary", get(summary))
        .with_state(state)
}

async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}

async fn health(State(s): State<ApiState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "overall": s.health.overall(),
        "components": s.health.snapshot(),
    }))
}

async fn summary(State(s): State<ApiState>) -> impl IntoResponse {
    let snap = s.snapshot.borrow().clone();
    Json(snap)
}
