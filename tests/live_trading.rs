//! LIVE end to end over loopback: the whole engine (`runtime::run`) with its private connector
//! against the simulator's private API (real signatures, matching, wallet). Entering LIVE needs
//! the confirmation and the PIN (through `scalperctl`); in LIVE the engine trades the exchange
//! account: entries, exchange-side stops and take-profits, exits; a dropped private WebSocket
//! mid-trade loses no fill; PANIC flattens and is confirmed by the exchange's own state; the
//! PnL of the trade log equals the simulator's wallet change to the last unit; leaving LIVE is
//! immediate.

mod common;
use common::probe;
use scalper::config::paths::{DataKind, Paths};
use scalper::config::Config;
use scalper::connectors::bybit_private::Credentials;
use scalper::connectors::bybit_private::EndpointGroup;
use scalper::connectors::simulator::{PrivateConfig, PrivateFault, SimConfig, SimExchange, SimHandle};
use scalper::control::auth::{PinHash, Security};
use scalper::engine::event::Mode;
use scalper::engine::runtime::{self, EngineSnapshot, LiveEngine, Probe, RunOptions};
use scalper::risk::money::Money;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "live-test-token";
const PIN: &str = "4711";

/// `scalperctl` with the PIN and the confirmation on stdin; returns (exit code, stdout+stderr).
fn ctl(addr: &str, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scalperctl"))
        .args(["--addr", addr, "--token", TOKEN])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scalperctl runs");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("scalperctl ends");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

async fn ctl_async(addr: &str, args: &[&str], stdin: &str) -> (i32, String) {
    let (a, args, stdin): (String, Vec<String>, String) =
        (addr.into(), args.iter().map(|s| s.to_string()).collect(), stdin.into());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ctl(&a, &args, &stdin)
    })
    .await
    .expect("scalperctl task")
}

async fn wait_for<T: Send + 'static>(
    tx: &mpsc::Sender<Probe>,
    what: &str,
    secs: u64,
    f: impl Fn(&LiveEngine) -> Option<T> + Send + Sync + Clone + 'static,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe(tx, f.clone()).await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every record of a kind the store wrote, in file order.
fn records(data: &Path, kind: DataKind) -> Vec<Value> {
    let paths = Paths::with_data_dir(data);
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(paths.kind_dir(kind)) else { return out };
    let mut dirs: Vec<_> = rd.flatten().filter(|e| e.path().is_dir()).collect();
    dirs.sort_by_key(|d| d.file_name());
    for d in dirs {
        let mut files: Vec<_> = std::fs::read_dir(d.path()).into_iter().flatten().flatten().collect();
        files.sort_by_key(|f| f.file_name());
        for f in files {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            out.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
        }
    }
    out
}

fn money(v: &Value) -> Money {
    Money::parse(v.as_str().unwrap_or("0")).expect("exact money")
}

struct Live {
    sim: SimHandle,
    addr: String,
    probes: mpsc::Sender<Probe>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: tempfile::TempDir,
}

async fn start(secret: &str) -> Live {
    // Lively prices so exchange-side stops and take-profits are reached within seconds.
    let sim = SimExchange::start(SimConfig {
        symbols: 6,
        tick_interval_ms: 20,
        volatility: 4.0,
        seed: 5,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    // The exchange allows 2 creates per second per key, less than the engine's bursts (a
    // rate-limit storm: 10006 answers, retried by the connector, never duplicated).
    let mut pcfg = PrivateConfig::default();
    pcfg.rate_limits.set(EndpointGroup::Create, 2);
    sim.private().configure(pcfg);
    let mut cfg = Config { endpoints: sim.endpoints(), ..Config::default() };
    // DRY_RUN until LIVE: decisions run, nothing is held anywhere, so LIVE can be entered.
    cfg.mode = Mode::DryRun;
    cfg.thresholds.watch = 0.0;
    cfg.thresholds.arm = 0.0;
    // The shortest warm-up the configuration allows: no entry before it.
    std::sync::Arc::make_mut(&mut cfg.intel.baseline).warmup_s = 10;
    cfg.engine.live_reconcile_interval_ms = 400;
    cfg.server.http_addr = "127.0.0.1:0".into();
    cfg.server.grpc_addr = "127.0.0.1:0".into();
    let dir = tempfile::tempdir().expect("tempdir");
    let (snap_tx, _snap) = watch::channel(EngineSnapshot::default());
    let (probe_tx, probe_rx) = mpsc::channel(4);
    let (grpc_tx, grpc_rx) = oneshot::channel();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(runtime::run(RunOptions {
        grpc_bound: Some(grpc_tx),
        security: Some(Security::new(Some(TOKEN), Some(PinHash::from_pin("live-salt", PIN)))),
        snapshot_tx: Some(snap_tx),
        probes: Some(probe_rx),
        credentials: Some(Credentials::new("sim-api-key", secret).expect("credentials")),
        ..RunOptions::new(Arc::new(cfg), Paths::with_data_dir(dir.path()), cancel.clone())
    }));
    let addr = format!("http://{}", grpc_rx.await.expect("gRPC bound"));
    Live { sim, addr, probes: probe_tx, cancel, task, dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_trading_end_to_end_against_the_simulator() {
    if std::env::var("LIVE_DEBUG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter("scalper=debug").with_test_writer().try_init();
    }
    let h = start("sim-api-secret").await;
    let tx = h.probes.clone();
    let initial = h.sim.private().wallet_balance();

    // The private connector connects, authenticates and reconciles.
    wait_for(&tx, "private account known", 20, |e| e.pipeline().desk().live.ready().then_some(())).await;

    // LIVE needs the second confirmation and the right PIN.
    let (code, text) = ctl_async(&h.addr, &["mode", "live", "--pin-stdin"], &format!("{PIN}\nno\n")).await;
    assert_ne!(code, 0, "LIVE without the confirmation must fail: {text}");
    assert!(text.contains("confirmation"), "{text}");
    let (code, text) = ctl_async(&h.addr, &["mode", "live", "--pin-stdin"], "0000\nLIVE\n").await;
    assert_ne!(code, 0, "LIVE with a wrong PIN must fail: {text}");
    assert!(text.to_lowercase().contains("wrong pin"), "{text}");
    let (code, text) = ctl_async(&h.addr, &["mode", "live"], "").await;
    assert_ne!(code, 0, "LIVE without a PIN must fail: {text}");
    assert_eq!(probe(&tx, |e| e.pipeline().mode()).await, Mode::DryRun, "mode unchanged after refusals");
    assert!(h.sim.private().orders().is_empty(), "nothing was sent before LIVE");

    // Confirmation + PIN: LIVE.
    let (code, text) = ctl_async(&h.addr, &["mode", "live", "--pin-stdin"], &format!("{PIN}\nLIVE\n")).await;
    assert_eq!(code, 0, "LIVE with confirmation and PIN: {text}");
    assert_eq!(probe(&tx, |e| e.pipeline().mode()).await, Mode::Live);
    // The next two creates are executed by the exchange but answered with a 502: ambiguous,
    // resolved by orderLinkId, never re-sent.
    h.sim.private().inject(PrivateFault::CreateAcceptedThenHttp { status: 502, count: 2 });

    // An entry fills at the exchange; its stop and take-profits rest there. A position is never
    // left without a stop: when the venue refuses a stop (the create storm above can rate-limit
    // it), the engine closes that position at market (`x-`) instead.
    wait_for(&tx, "a LIVE position", 60, |e| e.pipeline().desk().portfolio.positions().next().map(|_| ())).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let orders = h.sim.private().orders();
        let has =
            |sym: &str, prefix: &str| orders.iter().any(|o| o.symbol == sym && o.order_link_id.starts_with(prefix));
        let filled: BTreeSet<&str> = orders
            .iter()
            .filter(|o| o.order_link_id.starts_with("e-") && o.cum_exec_qty.raw() > 0)
            .map(|o| o.symbol.as_str())
            .collect();
        let stopped = filled.iter().filter(|s| has(s, "sl-")).count();
        let all_covered = filled.iter().all(|s| has(s, "sl-") || has(s, "x-"));
        if stopped >= 1 && all_covered {
            break;
        }
        assert!(Instant::now() < deadline, "a filled entry without an exchange-side stop: {orders:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The private WebSocket drops mid-trade, and pushes are lost while it is down.
    h.sim.private().inject(PrivateFault::SuppressPushes { on: true });
    h.sim.private().drop_connections();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    h.sim.private().inject(PrivateFault::SuppressPushes { on: false });

    // Trades complete at the exchange: at least one by its exchange-side stop or take-profit.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let closed = probe(&tx, |e| e.pipeline().desk().trades_closed).await;
        let by_exchange = h
            .sim
            .private()
            .executions()
            .iter()
            .any(|x| x.order_link_id.starts_with("sl-") || x.order_link_id.starts_with("tp-"));
        if closed >= 2 && by_exchange {
            break;
        }
        assert!(Instant::now() < deadline, "no trade closed by its exchange-side stop / take-profit ({closed} closed)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // PANIC: every order cancelled, every position closed by reduce-only market orders, and
    // the exchange's own state confirms it.
    let (code, text) = ctl_async(&h.addr, &["panic"], "").await;
    assert_eq!(code, 0, "{text}");
    wait_for(&tx, "PANIC confirmed by the exchange", 30, |e| e.pipeline().desk().live.panic_confirmed.then_some(()))
        .await;
    let open: Vec<_> = h
        .sim
        .private()
        .orders()
        .into_iter()
        .filter(|o| matches!(o.status.as_str(), "New" | "PartiallyFilled" | "Untriggered"))
        .collect();
    assert!(open.is_empty(), "orders still working after PANIC: {open:?}");
    for s in ["BTCUSDT", "ETHUSDT", "SIM001USDT", "SIM002USDT", "SIM003USDT", "SIM004USDT"] {
        assert!(h.sim.private().position(s).is_none_or(|(_, q)| q.raw() == 0), "{s} still open at the exchange");
    }
    wait_for(&tx, "local book flat", 10, |e| (e.pipeline().desk().portfolio.positions().len() == 0).then_some(()))
        .await;

    // Leaving LIVE is immediate.
    let (code, text) = ctl_async(&h.addr, &["mode", "sim"], "").await;
    assert_eq!(code, 0, "{text}");
    wait_for(&tx, "SIM again", 5, |e| (e.pipeline().mode() == Mode::Sim).then_some(())).await;
    let integrity_broken = probe(&tx, |e| e.pipeline().desk().integrity.is_broken()).await;

    h.cancel.cancel();
    h.task.await.expect("engine task").expect("engine ran");
    let execs = h.sim.private().executions();
    let counters = h.sim.private().counters();
    let h_orders = h.sim.private().orders();
    let wallet = h.sim.private().wallet_balance();
    h.sim.shutdown().await;

    // No fill lost: every execution the exchange made is a FILL the engine booked, once.
    let events = records(h.dir.path(), DataKind::Events);
    let mut fills: BTreeMap<String, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event"] == "FILL") {
        *fills.entry(e["fill"]["exec_id"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    let exchange: BTreeSet<String> = execs.iter().map(|x| x.exec_id.clone()).collect();
    let booked: BTreeSet<String> = fills.keys().cloned().collect();
    assert_eq!(booked, exchange, "fills booked vs executions at the exchange");
    assert!(fills.values().all(|n| *n == 1), "an execution was booked twice: {fills:?}");

    // The storm and the ambiguous creates happened, and no order exists twice.
    eprintln!("exchange counters: {counters:?}");
    assert!(counters.rate_limited >= 1, "the exchange's create limit was hit: {counters:?}");
    assert!(counters.faults_served >= 2, "the ambiguous creates were served: {counters:?}");
    assert_eq!(counters.duplicate_link_ids, 0, "a create was re-sent blindly");
    let links: Vec<&String> = h_orders.iter().map(|o| &o.order_link_id).collect();
    let unique: BTreeSet<&String> = links.iter().copied().collect();
    assert_eq!(links.len(), unique.len(), "an orderLinkId exists twice at the exchange");
    assert!(events.iter().all(|e| e["event"] != "ORDER_UNRESOLVED"), "every ambiguous create was resolved");

    // PnL of the trade log == the exchange wallet's change, exactly.
    let trades = records(h.dir.path(), DataKind::TradesLog);
    assert!(trades.len() >= 2, "trades: {trades:?}");
    let pnl = trades.iter().fold(Money::ZERO, |acc, t| Money::from_raw(acc.raw() + money(&t["net_pnl_exact"]).raw()));
    let change = Money::from_raw(wallet.raw() - initial.raw());
    eprintln!(
        "LIVE: {} trades, {} executions, net PnL {pnl} USDT, wallet change {change} USDT",
        trades.len(),
        execs.len()
    );
    assert_eq!(pnl, change, "trade-log PnL vs simulator wallet change");
    let reasons: BTreeSet<String> = trades.iter().map(|t| t["reason"].as_str().unwrap_or("").to_string()).collect();
    assert!(reasons.iter().any(|r| r == "STOP_LOSS" || r == "TAKE_PROFIT"), "exit reasons: {reasons:?}");

    // The account agreed with the engine throughout.
    if let Some(b) = events.iter().find(|e| e["event"] == "INTEGRITY_BROKEN") {
        let ids: Vec<String> = b["report"]["mismatches"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["client_id"].as_str().map(str::to_string))
            .collect();
        for e in &events {
            let t = e.to_string();
            if std::env::var("LIVE_DEBUG").is_ok()
                || ids.iter().any(|id| t.contains(id.as_str()))
                || e["event"] == "INTEGRITY_BROKEN"
                || e["event"] == "PRIVATE_FEED"
            {
                eprintln!("{t}");
            }
        }
        for o in h_orders.iter().filter(|o| ids.contains(&o.order_link_id)) {
            eprintln!("exchange: {o:?}");
        }
    }
    assert!(
        !integrity_broken,
        "INTEGRITY_BROKEN during a clean LIVE session: {:?}",
        events.iter().find(|e| e["event"] == "INTEGRITY_BROKEN")
    );
    assert!(events.iter().any(|e| e["event"] == "PANIC_CONFIRMED"));
    assert!(events.iter().any(|e| e["event"] == "MODE_CHANGED" && e["to"] == "LIVE"));
    // Entering LIVE, the engine's balance became the exchange wallet's.
    let sync = events.iter().find(|e| e["event"] == "WALLET_SYNC").expect("WALLET_SYNC on entering LIVE");
    assert_eq!(money(&sync["to"]), initial, "{sync}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_is_refused_clearly_and_live_is_not_entered() {
    let h = start("not-the-secret").await;
    let tx = h.probes.clone();
    // The exchange refuses the signature (REST 10004, WS auth failure); the engine says so and
    // never believes it knows the account.
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.sim.private().counters().auth_failures + h.sim.private().counters().ws_auth_failed == 0 {
        assert!(Instant::now() < deadline, "the simulator never saw the bad signature");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!probe(&tx, |e| e.pipeline().desk().live.ready()).await, "account known despite a bad signature");
    let (code, text) = ctl_async(&h.addr, &["mode", "live", "--pin-stdin"], &format!("{PIN}\nLIVE\n")).await;
    assert_ne!(code, 0, "LIVE with a refused signature: {text}");
    assert!(text.contains("the engine refused LIVE") && text.contains("not known"), "{text}");
    assert_eq!(probe(&tx, |e| e.pipeline().mode()).await, Mode::DryRun);
    assert!(h.sim.private().orders().is_empty(), "no order reached the exchange");
    h.cancel.cancel();
    h.task.await.expect("engine task").expect("engine ran");
    h.sim.shutdown().await;
}
