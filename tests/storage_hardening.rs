//! Issue #13, storage side: a store that cannot write is a health problem that stops new entries
//! (through an input event, so replay refuses the same entries) while open positions still exit;
//! the operator's blacklist and news flags survive a restart; absurd configuration values are
//! refused with the key and its range; `scalper replay` refuses a recording with gaps.

mod common;
use common::driver::{armed_config, CoreDriver};
use common::{p, probe};
use scalper::config::paths::{DataKind, Paths};
use scalper::config::Config;
use scalper::config::ConfigFile;
use scalper::connectors::simulator::{SimConfig, SimExchange};
use scalper::control::auth::Security;
use scalper::domain::{Price, Side, Symbol};
use scalper::engine::event::{Event, EventKind};
use scalper::engine::health::{HealthBoard, Status};
use scalper::engine::runtime::{self, RunOptions};
use scalper::market::data::BookAction;
use scalper::monitoring::metrics::Metrics;
use scalper::storage::json_store::Store;
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const HELD: &str = "AAAUSDT";
const NEW: &str = "BBBUSDT";

/// The core trading two symbols in SIM on hand-built books, every input kept for a replay.
struct Desk(CoreDriver);

impl std::ops::Deref for Desk {
    type Target = CoreDriver;
    fn deref(&self) -> &CoreDriver {
        &self.0
    }
}

impl std::ops::DerefMut for Desk {
    fn deref_mut(&mut self) -> &mut CoreDriver {
        &mut self.0
    }
}

impl Desk {
    fn new() -> Desk {
        Desk(CoreDriver::new(armed_config(), &[HELD, NEW]))
    }
    fn trades_closed(&self) -> Vec<Value> {
        self.of_kind(DataKind::TradesLog)
    }
    /// Books of `sym` until the core plans an entry there; the entry, if any.
    fn try_enter(&mut self, sym: &str) -> Option<Value> {
        let before = self.named("ENTRY", Some(sym)).len();
        self.book(sym, BookAction::Snapshot);
        for _ in 0..4 {
            self.book(sym, BookAction::Delta);
        }
        self.named("ENTRY", Some(sym)).get(before).cloned()
    }
    fn position_open(&self, sym: &str) -> bool {
        self.e.pipeline().desk().portfolio.position(&Symbol::new(sym)).is_some()
    }
}

/// Feeds the store watcher's events into the core; returns the kinds fed.
async fn forward(rx: &mut mpsc::Receiver<Event>, d: &mut Desk, up: bool) -> EventKind {
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("storage health event").unwrap();
    assert!(matches!(&ev.kind, EventKind::StorageHealth { up: u, .. } if *u == up), "{:?}", ev.kind);
    d.ev(ev.kind.clone());
    ev.kind
}

/// An open position on HELD; then storage fails (a sink on /dev/full: ENOSPC), the edge's watcher
/// reports it, and the core refuses an entry on NEW while HELD's stop still closes its position.
/// Recovery brings entries back, and a replay of the inputs refuses the same entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_blocks_new_entries_keeps_exits_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::with_data_dir(dir.path());
    let full = paths.hourly_file(DataKind::Events, None, "1970-01-01T00");
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    // The watcher's recovery probe (an atomic write under system/) must fail too until the fix.
    std::fs::write(paths.system_dir(), b"not a directory").unwrap();
    let metrics = Arc::new(Metrics::new());
    let health = HealthBoard::default();
    let store = Store::start(paths.clone(), 64, 16, metrics.clone());
    let h = store.handle();
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    runtime::spawn_storage_watch(h.clone(), tx, health.clone(), metrics.clone(), cancel.clone());

    let mut d = Desk::new();
    let e = d.try_enter(HELD).expect("an entry on HELD while storage is up");
    let side = if e["side"] == "Buy" { Side::Buy } else { Side::Sell };
    let entry = p(e["entry"].as_str().unwrap());
    d.trade(HELD, Price::from_raw(entry.raw() - side.sign() * p("0.01").raw()), "100000", side.opposite());
    assert!(d.position_open(HELD), "entry filled");

    // The disk is full: the writer fails, storage goes DOWN everywhere.
    h.append(DataKind::Events, None, 0, &serde_json::json!({"event": "X"})).await.unwrap();
    forward(&mut rx, &mut d, false).await;
    assert_eq!(health.snapshot()["storage"].status, Status::Down);
    assert!(health.snapshot()["storage"].detail.contains("No space left"), "{:?}", health.snapshot());
    assert_eq!(metrics.storage_up.get(), 0);
    assert_eq!(metrics.component_up.with_label_values(&["storage"]).get(), 0);
    assert!(d.e.pipeline().flags().storage_down);
    assert_eq!(d.named("STORAGE_DOWN", None).len(), 1);

    assert!(d.try_enter(NEW).is_none(), "no new entry while storage is DOWN");
    let refused = d.named("ENTRY_REFUSED", Some(NEW));
    assert!(
        refused.iter().any(|r| r["reason"].as_str().unwrap_or("").contains("storage DOWN")),
        "refusal names the reason: {refused:?}"
    );
    // HELD's stop is still honoured: price runs through it and the position closes.
    let stop = p(e["stop"].as_str().unwrap());
    let through = Price::from_raw(stop.raw() - side.sign() * p("0.05").raw());
    d.trade(HELD, through, "100000", side.opposite());
    d.trade(HELD, through, "100000", side.opposite());
    assert!(!d.position_open(HELD), "the open position still exits while storage is DOWN");
    assert_eq!(d.trades_closed().last().unwrap()["reason"], "STOP_LOSS");

    // Room again: the watcher's probe succeeds, storage comes back UP, entries resume.
    std::fs::remove_file(&full).unwrap();
    std::fs::remove_file(paths.system_dir()).unwrap();
    forward(&mut rx, &mut d, true).await;
    assert_eq!(health.snapshot()["storage"].status, Status::Up);
    assert_eq!(metrics.storage_up.get(), 1);
    assert!(!d.e.pipeline().flags().storage_down);
    d.now += 60_000; // past the refusal back-off
    assert!(d.try_enter(NEW).is_some(), "entries resume once storage is UP");

    // Replay: the same inputs into a fresh core give the same outputs, refusal included.
    let mut fresh = common::driver::engine(armed_config());
    for (ev, out) in d.inputs.iter().zip(&d.outputs) {
        assert_eq!(&fresh.on_event(ev), out, "replay diverged at seq {}", ev.seq);
    }
    cancel.cancel();
    store.shutdown().await;
}

/// A writer thread that dies (a panic in it) turns storage DOWN and blocks new entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writer_is_storage_down_and_blocks_entries() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let health = HealthBoard::default();
    let store = Store::start(Paths::with_data_dir(dir.path()), 64, 16, metrics.clone());
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    runtime::spawn_storage_watch(store.handle(), tx, health.clone(), metrics.clone(), cancel.clone());
    assert!(store.handle().inject_writer_panic());
    let mut d = Desk::new();
    let EventKind::StorageHealth { detail, .. } = forward(&mut rx, &mut d, false).await else { unreachable!() };
    assert!(detail.contains("died"), "{detail}");
    assert_eq!(health.overall(), Status::Down);
    assert_eq!(metrics.storage_up.get(), 0);
    assert!(d.try_enter(NEW).is_none(), "no entry with a dead writer");
    assert!(!d.named("ENTRY_REFUSED", Some(NEW)).is_empty());
    cancel.cancel();
}

const TOKEN: &str = "test-token-storage";

fn ctl(addr: &str, args: &[&str]) -> (i32, String) {
    common::scalperctl(addr, TOKEN, args)
}

/// One engine run on `dir` against `sim`; returns its gRPC address, probe sender, task, token.
async fn start_engine(
    sim: &scalper::connectors::simulator::SimHandle,
    dir: &std::path::Path,
) -> (String, mpsc::Sender<runtime::Probe>, tokio::task::JoinHandle<anyhow::Result<()>>, CancellationToken) {
    let mut cfg = Config { endpoints: sim.endpoints(), ..Config::default() };
    cfg.server.http_addr = "127.0.0.1:0".into();
    cfg.server.grpc_addr = "127.0.0.1:0".into();
    let (probe_tx, probe_rx) = mpsc::channel(4);
    let (grpc_tx, grpc_rx) = oneshot::channel();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(runtime::run(RunOptions {
        grpc_bound: Some(grpc_tx),
        security: Some(Security::new(Some(TOKEN), None)),
        probes: Some(probe_rx),
        ..RunOptions::new(Arc::new(cfg), Paths::with_data_dir(dir), cancel.clone())
    }));
    (format!("http://{}", grpc_rx.await.unwrap()), probe_tx, task, cancel)
}

/// The operator's controls as the running core holds them.
async fn controls(tx: &mpsc::Sender<runtime::Probe>) -> (Vec<String>, Vec<(String, String)>) {
    probe(tx, |e| {
        let p = e.pipeline();
        let black = p.controls().blacklist.iter().map(|s| s.to_string()).collect();
        let news = p.news().flags().map(|f| (f.symbol.to_string(), f.news_type.as_str().to_string())).collect();
        (black, news)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blacklist_and_news_flags_survive_a_restart() {
    let sim = SimExchange::start(SimConfig { symbols: 4, tick_interval_ms: 50, ..SimConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::with_data_dir(dir.path());

    let (addr, tx, task, cancel) = start_engine(&sim, dir.path()).await;
    for args in [
        vec!["blacklist", "add", "SIM002USDT"],
        vec!["news", "set", "SIM003USDT", "--impact", "0.7", "--type", "HACK", "--ttl", "15m"],
    ] {
        let a = addr.clone();
        let (code, out) = tokio::task::spawn_blocking(move || ctl(&a, &args)).await.unwrap();
        assert_eq!(code, 0, "{out}");
    }
    let want = (vec!["SIM002USDT".to_string()], vec![("SIM003USDT".to_string(), "HACK".to_string())]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while controls(&tx).await != want {
        assert!(Instant::now() < deadline, "controls never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    let bl: Value = serde_json::from_slice(&std::fs::read(paths.system_dir().join("blacklist.json")).unwrap()).unwrap();
    assert_eq!(bl["symbols"][0], "SIM002USDT");
    let news: Value = serde_json::from_slice(&std::fs::read(paths.news_flags_file()).unwrap()).unwrap();
    assert_eq!(news["flags"][0]["symbol"], "SIM003USDT");

    // A new engine on the same data directory starts with both, and shows them in its status.
    let (addr, tx, task, cancel) = start_engine(&sim, dir.path()).await;
    assert_eq!(controls(&tx).await, want, "restored before anything else reached the core");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = addr.clone();
        let (code, out) = tokio::task::spawn_blocking(move || ctl(&a, &["-o", "json", "status"])).await.unwrap();
        assert_eq!(code, 0);
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        if v["blacklist"][0] == "SIM002USDT" && v["news_flags"][0]["symbol"] == "SIM003USDT" {
            break;
        }
        assert!(Instant::now() < deadline, "status never showed the restored controls: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Unblacklisting persists too.
    let a = addr.clone();
    let (code, _) = tokio::task::spawn_blocking(move || ctl(&a, &["blacklist", "rm", "SIM002USDT"])).await.unwrap();
    assert_eq!(code, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !controls(&tx).await.0.is_empty() {
        assert!(Instant::now() < deadline, "unblacklist never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    let bl: Value = serde_json::from_slice(&std::fs::read(paths.system_dir().join("blacklist.json")).unwrap()).unwrap();
    assert_eq!(bl["symbols"], serde_json::json!([]));
}

fn config_error(toml: &str) -> String {
    match Config::from_toml_str(toml) {
        Ok(_) => panic!("accepted: {toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_two_reported_values_are_refused_with_key_and_range() {
    let max = i64::MAX;
    let e = config_error(&format!("[storage]\nbatch_max = {max}\n"));
    assert!(e.contains(&format!("storage.batch_max must be in [1, 65536], got {max}")), "{e}");
    let e = config_error(&format!("[engine]\ninput_queue_capacity = {max}\n"));
    assert!(e.contains(&format!("engine.input_queue_capacity must be in [16, 4194304], got {max}")), "{e}");
}

#[test]
fn every_bounded_key_refuses_values_out_of_range_and_accepts_its_limits() {
    // (section, key, first value refused above, largest value accepted)
    let table: &[(&str, &str, u64, u64)] = &[
        ("storage", "queue_capacity", 4_194_305, 4_194_304),
        ("storage", "retention_hours", 8_785, 8_784),
        ("storage", "retention_interval_s", 86_401, 86_400),
        ("storage", "max_disk_gb", 1_000_001, 1_000_000),
        ("engine", "shed_high_water", 4_194_305, 4_194_304),
        ("engine", "venue_queue_capacity", 1_048_577, 1_048_576),
        ("engine", "degraded_tick_ms", 60_001, 60_000),
        ("engine", "feed_down_risk_off_s", 3_601, 3_600),
        ("engine", "live_reconcile_interval_ms", 600_001, 600_000),
        ("engine", "prefault_mib", 16_385, 16_384),
        ("universe", "refresh_s", 3_601, 3_600),
        ("universe", "symbols_per_connection", 2_001, 2_000),
        ("universe", "ws_ping_interval_ms", 600_001, 600_000),
        ("reload", "poll_interval_ms", 3_600_001, 3_600_000),
    ];
    for (section, key, bad, good) in table {
        let e = config_error(&format!("[{section}]\n{key} = {bad}\n"));
        assert!(e.contains(&format!("{section}.{key} must be in [")) && e.contains(&format!("got {bad}")), "{e}");
        assert!(Config::from_toml_str(&format!("[{section}]\n{key} = {good}\n")).is_ok(), "{section}.{key} = {good}");
    }
    // Every integer under intel.* has a backstop by its unit.
    for (section, key, bad) in [
        ("intel.news", "listing_ttl_ms", i64::MAX),
        ("intel.baseline", "warmup_s", 2_592_001),
        ("intel.walls", "scan_levels", 100_001),
    ] {
        let e = config_error(&format!("[{section}]\n{key} = {bad}\n"));
        assert!(e.contains(&format!("{section}.{key} must be in [-")) && e.contains(&format!("got {bad}")), "{e}");
    }
    // Lower bounds still hold, and every problem is listed at once.
    let e = config_error("[storage]\nbatch_max = 0\nretention_hours = 1\n[engine]\ninput_queue_capacity = 1\n");
    for key in ["storage.batch_max", "storage.retention_hours", "engine.input_queue_capacity"] {
        assert!(e.contains(key), "{key} missing in {e}");
    }
}

#[test]
fn a_missing_config_file_is_reported_once_per_outage() {
    use scalper::config::reload::{ConfigReloader, ReloadOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scalper.toml");
    std::fs::write(&path, "[risk]\nper_trade = 0.004\n").unwrap();
    let metrics = Arc::new(Metrics::new());
    let (mut r, _rx) = ConfigReloader::new(path.clone(), Arc::new(Config::default()), metrics.clone());
    std::fs::remove_file(&path).unwrap();
    for _ in 0..20 {
        assert!(matches!(r.check_once(false), ReloadOutcome::Rejected(_)));
    }
    assert_eq!(metrics.config_reloads.with_label_values(&["rejected"]).get(), 1, "one refusal per outage");
    std::fs::write(&path, "[risk]\nper_trade = 0.003\n").unwrap();
    assert_eq!(r.check_once(false), ReloadOutcome::Reloaded);
    std::fs::remove_file(&path).unwrap();
    r.check_once(false);
    assert_eq!(metrics.config_reloads.with_label_values(&["rejected"]).get(), 2, "a new outage is reported again");
}

fn scalper_bin(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scalper")).args(args).output().expect("scalper runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn replay_exits_non_zero_on_gaps_unless_accepted() {
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings/handbuilt");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.jsonl");
    let run = |data: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["replay", "--data-dir", data.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        scalper_bin(&args)
    };
    let (code, err) = run(&fx, &[]);
    assert_eq!(code, 0, "the bundled recording is whole: {err}");

    // The same recording with one event missing in the middle and one line torn.
    let data = dir.path().join("data");
    let raw = data.join("raw/_global");
    std::fs::create_dir_all(&raw).unwrap();
    let name = "2026-01-01T00.jsonl";
    let text = std::fs::read_to_string(fx.join("raw/_global").join(name)).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(lines.len() / 2);
    let torn = "{\"seq\": 12, \"ti";
    let mut s = lines.join("\n");
    s.push('\n');
    s.push_str(torn);
    s.push('\n');
    std::fs::write(raw.join(name), s).unwrap();
    let (code, err) = run(&data, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("gaps (1 missing events, 1 unreadable lines") && err.contains("--accept-gaps"), "{err}");
    let (code, err) = run(&data, &["--accept-gaps"]);
    assert_eq!(code, 0, "{err}");
}
