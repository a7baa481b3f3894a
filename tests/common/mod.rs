//! Helpers shared by the integration tests; each test crate uses the ones it needs.
#![allow(dead_code)]

pub mod bybit;
pub mod driver;
pub mod sim;

use scalper::domain::{Price, Symbol};
use scalper::engine::runtime::{LiveEngine, Probe};
use scalper::market::data::{BookAction, BookUpdate, Instrument, InstrumentStatus, Level};
use tokio::sync::{mpsc, oneshot};

pub use scalper_core::testkit::{p, q};

/// Sample-name prefixes (in `../shared/bybit-real-samples`) of the private connector's REST
/// endpoints: `tests/real_samples_private.rs` decodes them, `tests/real_samples.rs` counts them
/// as claimed.
pub const PRIVATE_REST_SAMPLES: [&str; 8] = [
    "rest_execution_list__",
    "rest_order_create__",
    "rest_order_cancel__",
    "rest_order_realtime__",
    "rest_position_list__",
    "rest_set_leverage__",
    "rest_wallet__",
    "rest_error__",
];

/// Runs `scalperctl --addr addr --token token args…`; its exit code and stdout.
pub fn scalperctl(addr: &str, token: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scalperctl"))
        .args(["--addr", addr, "--token", token])
        .args(args)
        .output()
        .expect("scalperctl runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
}

/// A trading USDT perpetual: tick `tick`, quantity step and minimum `step`, at most `max_qty`,
/// 5 USDT minimum notional, 50× leverage.
pub fn instrument(symbol: &str, tick: &str, step: &str, max_qty: &str) -> Instrument {
    Instrument {
        symbol: Symbol::new(symbol),
        status: InstrumentStatus::Trading,
        tick_size: p(tick),
        qty_step: q(step),
        min_qty: q(step),
        max_qty: q(max_qty),
        min_notional: p("5"),
        max_leverage: p("50"),
        launch_time_ms: 0,
    }
}

/// `n` levels per side, `tick` apart: bids from `bid` down with `bid_qty` each, asks from `ask`
/// up with `ask_qty` each.
pub fn ladder(bid: &str, ask: &str, tick: &str, n: i64, bid_qty: &str, ask_qty: &str) -> (Vec<Level>, Vec<Level>) {
    let (b, a, t) = (p(bid).raw(), p(ask).raw(), p(tick).raw());
    let bids = (0..n).map(|i| Level { price: Price::from_raw(b - i * t), qty: q(bid_qty) }).collect();
    let asks = (0..n).map(|i| Level { price: Price::from_raw(a + i * t), qty: q(ask_qty) }).collect();
    (bids, asks)
}

/// A depth-50 book update of `symbol`, numbered from the counter `u` the way Bybit numbers
/// them: a delta follows the previous update by one, a snapshot jumps ahead.
pub fn book_update(symbol: &str, action: BookAction, levels: (Vec<Level>, Vec<Level>), u: &mut u64) -> BookUpdate {
    *u += 1;
    let snapshot = action == BookAction::Snapshot;
    let update = BookUpdate {
        symbol: Symbol::new(symbol),
        action,
        depth: 50,
        bids: levels.0,
        asks: levels.1,
        update_id: if snapshot { *u + 1000 } else { *u },
        seq: *u,
        cts_ms: None,
    };
    if snapshot {
        *u += 1000;
    }
    update
}

/// Runs `f` on the running engine between two events and returns its answer.
pub async fn probe<T: Send + 'static>(
    tx: &mpsc::Sender<Probe>,
    f: impl FnOnce(&LiveEngine) -> T + Send + 'static,
) -> T {
    let (otx, orx) = oneshot::channel();
    tx.send(Box::new(move |e| {
        let _ = otx.send(f(e));
    }))
    .await
    .expect("engine running");
    orx.await.expect("probe answered")
}

/// `../shared/<name>` beside the repository, or `None` (with a note) when it is absent outside
/// CI. In CI (`CI` set) a missing folder fails the test: the real-market proofs must run there.
pub fn shared_dir(name: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: CI must have ../shared/{name} beside the clone (the real-market tests read it there)",
            dir.display()
        );
    }
    eprintln!("note: {} not found; real-data test skipped (it runs in CI)", dir.display());
    None
}

/// `../shared/realdata`: real order-book and trade recordings (see [`shared_dir`]).
pub fn realdata_dir() -> Option<std::path::PathBuf> {
    shared_dir("realdata")
}

/// `../shared/bybit-real-samples`: real Bybit v5 messages (see [`shared_dir`]).
pub fn real_samples_dir() -> Option<std::path::PathBuf> {
    shared_dir("bybit-real-samples")
}

/// The events `scalper evaluate` would run on for one set of `../shared/realdata`: its
/// `book.jsonl.zst` and, when present, `trades.csv.zst`, imported in memory.
pub fn realdata_events(set: &std::path::Path) -> Vec<scalper::engine::event::Event> {
    let book = set.join("book.jsonl.zst");
    let trades = set.join("trades.csv.zst");
    let mut evs = Vec::new();
    scalper::storage::replay::import::import_events(
        trades.is_file().then_some(trades.as_path()),
        book.is_file().then_some(book.as_path()),
        15,
        &mut |e| {
            evs.push(e);
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", set.display()));
    evs
}

/// Baselines an earlier run persisted for `symbol` (σ(5 s) 0.1 %, hour-deep), fed right after the
/// universe so a core test trades without the 60 s warm-up — as a restart restores them.
pub fn warm_baselines(symbol: &str, now_ms: i64) -> scalper::engine::event::EventKind {
    let state = scalper::features::baseline::BaselineState::steady(0.01, 10.0, 5.0, 10.0, 10.0, 50_000.0, now_ms);
    scalper::engine::event::EventKind::Baselines { symbol: Symbol::new(symbol), state }
}

/// An engine (the real runtime) trading in SIM against an in-process simulator over loopback,
/// with gRPC and HTTP on free ports and its data in a temp directory.
pub struct TestEngine {
    pub sim: scalper::connectors::simulator::SimHandle,
    /// `http://127.0.0.1:PORT` of its gRPC control plane.
    pub addr: String,
    pub snap: tokio::sync::watch::Receiver<scalper::engine::runtime::EngineSnapshot>,
    pub probes: mpsc::Sender<Probe>,
    pub cancel: tokio_util::sync::CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub dir: tempfile::TempDir,
}

/// Starts a [`TestEngine`] on a simulator of `symbols` symbols ticking every 20 ms, whose
/// control token is `token`. Any positive score arms and baselines warm in the shortest time
/// the configuration allows, so it trades within seconds; `tweak` adjusts the rest.
pub async fn start_engine(symbols: usize, token: &str, tweak: impl FnOnce(&mut scalper::config::Config)) -> TestEngine {
    use scalper::connectors::simulator::{SimConfig, SimExchange};
    use scalper::engine::runtime::{self, EngineSnapshot, RunOptions};
    let sim = SimExchange::start(SimConfig { symbols, tick_interval_ms: 20, ..SimConfig::default() })
        .await
        .expect("simulator starts");
    let mut cfg = scalper::config::Config { endpoints: sim.endpoints(), ..Default::default() };
    cfg.thresholds.watch = 0.0;
    cfg.thresholds.arm = 0.0;
    std::sync::Arc::make_mut(&mut cfg.intel.baseline).warmup_s = 10;
    cfg.server.http_addr = "127.0.0.1:0".into();
    cfg.server.grpc_addr = "127.0.0.1:0".into();
    tweak(&mut cfg);
    let dir = tempfile::tempdir().expect("tempdir");
    let (snap_tx, snap) = tokio::sync::watch::channel(EngineSnapshot::default());
    let (probes, probe_rx) = mpsc::channel(4);
    let (grpc_tx, grpc_rx) = oneshot::channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runtime::run(RunOptions {
        grpc_bound: Some(grpc_tx),
        security: Some(scalper::control::auth::Security::new(Some(token), None)),
        snapshot_tx: Some(snap_tx),
        probes: Some(probe_rx),
        ..RunOptions::new(
            std::sync::Arc::new(cfg),
            scalper::config::paths::Paths::with_data_dir(dir.path()),
            cancel.clone(),
        )
    }));
    let addr = format!("http://{}", grpc_rx.await.expect("gRPC bound"));
    TestEngine { sim, addr, snap, probes, cancel, task, dir }
}

impl TestEngine {
    /// Waits up to 10 s for the published snapshot to list `n` symbols.
    pub async fn universe_loaded(&self, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.snap.borrow().symbols != n {
            assert!(std::time::Instant::now() < deadline, "universe never loaded");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Stops the engine and the simulator.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
        self.sim.shutdown().await;
    }
}
