//! Control plane: the tonic gRPC service ([`grpc`]), the read-only HTTP JSON API beside `/metrics`
//! ([`http`]), the event bus ([`bus`]) and the view of the core they read ([`view`]).
//!
//! Reads come from the engine's `watch` channels (snapshot + view), the health board and the
//! bus; every mutation is an [`scalper_core::engine::event::Event`] sent into the core's input channel.
//!
//! Secrets (read by [`auth::Security::from_env`]): `SCALPER_CONTROL_TOKEN` (or a file named by
//! `SCALPER_CONTROL_TOKEN_FILE`) for every mutating gRPC call; `SCALPER_LIVE_PIN_HASH` =
//! `salt$hex(sha256(salt ‖ pin))` for LIVE (make one with `scalperctl pin-hash`). `scalper demo`
//! generates both when they are not set ([`local_token`]); `scalperctl` finds its token file.
//!
//! `scalperctl` (gRPC, default `http://127.0.0.1:50051`, `-o json` for scripts): `status`,
//! `health`, `hotlist`, `symbol BTCUSDT`, `trades`, `events [--follow]`, `top`, `mode sim|dry-run|live
//! [--pin|--pin-stdin]`, `pause`, `resume`, `panic`, `blacklist add|rm SYM`, `news set SYM
//! --impact 0.7 --type HACK --ttl 15m`, `news clear SYM`, `reload`, `pin-hash`; `--tls-ca FILE`
//! (or an `https://` address with it) for an engine serving gRPC over TLS. Exit codes: 0 ok,
//! 1 refused by the engine, 2 usage or connection error, 3 authentication (token or PIN).
//!
//! Limits (`[control]` in the configuration): the HTTP server caps connections and times out
//! slow or silent clients ([`http::serve`]); gRPC has its own listener and cap; non-loopback
//! addresses need TLS or an explicit opt-in; tokens and PINs are throttled per peer IP.

pub mod auth;
pub mod bus;
pub mod config_file;
pub mod convert;
pub mod eventline;
pub mod format;
pub mod grpc;
pub mod http;
pub mod local_token;
pub mod monitoring;
pub mod overrides;
pub mod reload;
pub mod state;
pub mod top;
pub mod view;

/// Generated gRPC types for the control plane (`proto/scalper.proto`, compiled by the top-level
/// build.rs).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("scalper.v1");
    /// Encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("scalper_descriptor");
}

pub use state::{ControlState, ReadState};

pub use scalper_bybit::LogGate;

use crate::monitoring::metrics::Metrics;
use scalper_core::engine::snapshot::EngineSnapshot;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn log_gate_passes_one_line_per_interval_and_counts_the_rest() {
        let g = LogGate::new(Duration::from_millis(200));
        assert_eq!(g.pass(), Some(0));
        assert_eq!(g.pass(), None);
        assert_eq!(g.pass(), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(g.pass(), Some(2));
        assert_eq!(g.pass(), None);
    }

    #[tokio::test]
    async fn observer_follows_snapshot_and_view_changes() {
        let metrics = Arc::new(Metrics::new());
        let (snap_tx, snap_rx) = watch::channel(EngineSnapshot::default());
        let (view_tx, view_rx) = watch::channel(Arc::new(ControlView::default()));
        let cancel = CancellationToken::new();
        let h = spawn_observer(metrics.clone(), snap_rx, view_rx, cancel.clone());
        snap_tx.send_replace(EngineSnapshot { mode: "LIVE".into(), symbols: 3, ..Default::default() });
        let mut v = ControlView::default();
        v.global.equity = 123.0;
        view_tx.send_replace(Arc::new(v));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while metrics.mode.get() != 2 || metrics.equity.get() != 123.0 {
            assert!(tokio::time::Instant::now() < deadline, "observer did not apply the changes");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(metrics.symbols_tracked.get(), 3);
        // Ends once both senders are gone.
        drop(snap_tx);
        drop(view_tx);
        tokio::time::timeout(Duration::from_secs(5), h).await.unwrap().unwrap();
        cancel.cancel();
    }
}
