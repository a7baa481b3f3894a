//! Control plane: the tonic gRPC service ([`grpc`]), the read-only HTTP JSON API beside `/metrics`
//! ([`http`]), the event bus ([`bus`]) and the view of the core they read ([`view`]).
//!
//! Reads come from the engine's `watch` channels (snapshot + view), the health board and the
//! bus; every mutation is an [`crate::engine::event::Event`] sent into the core's input channel.

pub mod auth;
pub mod bus;
pub mod convert;
pub mod grpc;
pub mod http;
pub mod state;
pub mod view;

pub use state::{ControlState, ReadState};

use crate::engine::runtime::EngineSnapshot;
use crate::monitoring::metrics::Metrics;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use view::ControlView;

/// Keeps the metrics in step with the published snapshot and view, off the core loop: calls
/// [`Metrics::observe_snapshot`] / [`Metrics::observe_view`] on every change until cancelled or
/// until both senders are gone.
pub fn spawn_observer(
    metrics: Arc<Metrics>,
    mut snapshot: watch::Receiver<EngineSnapshot>,
    mut view: watch::Receiver<Arc<ControlView>>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (mut snap_open, mut view_open) = (true, true);
        while snap_open || view_open {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = snapshot.changed(), if snap_open => match r {
                    Ok(()) => {
                        let s = snapshot.borrow_and_update().clone();
                        metrics.observe_snapshot(&s);
                    }
                    Err(_) => snap_open = false,
                },
                r = view.changed(), if view_open => match r {
                    Ok(()) => {
                        let v = view.borrow_and_update().clone();
                        metrics.observe_view(&v);
                    }
                    Err(_) => view_open = false,
                },
            }
        }
    })
}
