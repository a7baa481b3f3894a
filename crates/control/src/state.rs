//! Shared state of the control plane: what the read-only surfaces (HTTP, gRPC reads) see, and what
//! the gRPC mutations need (the core's input channel and the secrets).

use super::auth::Security;
use super::bus::EventBus;
use super::view::{ControlView, SummaryView};
use crate::monitoring::metrics::Metrics;
use scalper_core::config::paths::Paths;
use scalper_core::engine::event::Event;
use scalper_core::engine::health::HealthBoard;
use scalper_core::engine::snapshot::EngineSnapshot;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Everything the read-only surfaces need. Cheap to clone.
#[derive(Clone)]
pub struct ReadState {
    /// Metrics registry (`/metrics`, storage status).
    pub metrics: Arc<Metrics>,
    /// Component health.
    pub health: HealthBoard,
    /// Latest engine snapshot.
    pub snapshot: watch::Receiver<EngineSnapshot>,
    /// Latest control view (symbols, trades, global state).
    pub view: watch::Receiver<Arc<ControlView>>,
    /// Engine events.
    pub events: EventBus,
    /// Data layout (storage status); `None` when unknown.
    pub paths: Option<Paths>,
}

impl ReadState {
    /// Read state with an empty view and a fresh bus (for callers that only have a snapshot).
    pub fn new(metrics: Arc<Metrics>, health: HealthBoard, snapshot: watch::Receiver<EngineSnapshot>) -> ReadState {
        let (_tx, view) = watch::channel(Arc::new(ControlView::default()));
        ReadState { metrics, health, snapshot, view, events: EventBus::default(), paths: None }
    }
    pub fn current_view(&self) -> Arc<ControlView> {
        self.view.borrow().clone()
    }
    /// The current summary (snapshot + view).
    pub fn summary(&self) -> SummaryView {
        let snap = self.snapshot.borrow().clone();
        SummaryView::new(&snap, &self.current_view())
    }
}

/// Everything the gRPC service needs.
#[derive(Clone)]
pub struct ControlState {
    /// Read side.
    pub read: ReadState,
    /// The core's input channel: every mutation becomes an event here.
    pub commands: mpsc::Sender<Event>,
    /// Token and LIVE PIN.
    pub security: Arc<Security>,
    /// Config file re-read by `ReloadConfig` (`None` = refused).
    pub config_path: Option<PathBuf>,
    /// The configuration the engine started with: what a reload keeps of the settings read only
    /// at start-up (`Config::keep_startup_only`).
    pub startup_config: Option<Arc<scalper_core::config::Config>>,
    /// A private exchange connector is running (API credentials loaded): LIVE can be asked for.
    pub live_available: bool,
    /// Rate limit of the lines logged for refused tokens and PIN attempts (10 a second).
    pub auth_log: Arc<super::LogGate>,
}

impl ControlState {
    /// New control state.
    pub fn new(read: ReadState, commands: mpsc::Sender<Event>, security: Security) -> ControlState {
        ControlState {
            read,
            commands,
            security: Arc::new(security),
            config_path: None,
            startup_config: None,
            live_available: false,
            auth_log: Arc::new(super::LogGate::new(std::time::Duration::from_millis(100))),
        }
    }
    /// Declares whether a private exchange connector runs (LIVE possible).
    pub fn with_live(mut self, available: bool) -> ControlState {
        self.live_available = available;
        self
    }
    /// Sets the config file `ReloadConfig` re-reads.
    pub fn with_config_path(mut self, path: Option<PathBuf>) -> ControlState {
        self.config_path = path;
        self
    }
    /// Sets the configuration the engine started with.
    pub fn with_startup_config(mut self, cfg: Arc<scalper_core::config::Config>) -> ControlState {
        self.startup_config = Some(cfg);
        self
    }
}
