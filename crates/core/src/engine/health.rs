//! Component health board, written by the edges (feed, storage, config, engine) and read by the
//! API. Not part of the deterministic core.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Health of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Working.
    Up,
    /// Working with reduced capability.
    Degraded,
    /// Not working.
    Down,
}

/// One component's entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentHealth {
    pub status: Status,
    /// Human detail (last error, state).
    pub detail: String,
}

/// Shared, cheap-to-clone health board.
#[derive(Debug, Clone, Default)]
pub struct HealthBoard {
    inner: Arc<RwLock<BTreeMap<String, ComponentHealth>>>,
}

impl HealthBoard {
    /// Sets a component's status.
    pub fn set(&self, component: &str, status: Status, detail: impl Into<String>) {
        if let Ok(mut m) = self.inner.write() {
            m.insert(component.to_string(), ComponentHealth { status, detail: detail.into() });
        }
    }
    /// A copy of every component's health.
    pub fn snapshot(&self) -> BTreeMap<String, ComponentHealth> {
        self.inner.read().map(|m| m.clone()).unwrap_or_default()
    }
    /// Worst status over all components (`Up` when empty).
    pub fn overall(&self) -> Status {
        let snap = self.snapshot();
        if snap.values().any(|c| c.status == Status::Down) {
            Status::Down
        } else if snap.values().any(|c| c.status == Status::Degraded) {
            Status::Degraded
        } else {
            Status::Up
        }
    }
}
