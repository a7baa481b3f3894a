//! The control plane end to end: the real gRPC server on 127.0.0.1:0 with a test input channel and
//! snapshot/view watches, driven by the real `scalperctl` binary; the HTTP API over a real socket.

use scalper::config::paths::Paths;
use scalper::control::auth::{PinHash, Security};
use scalper::control::bus::EventBus;
use scalper::control::view::{ControlView, GlobalView, NewsFlagView, PositionView, SymbolView, TradeView};
use scalper::control::{grpc, http, ControlState, ReadState};
use scalper::domain::Symbol;
use scalper::engine::event::{ControlCommand, Event, EventKind, FeedState, Mode};
use scalper::engine::health::{HealthBoard, Status};
use scalper::engine::runtime::{wall_ms, EngineSnapshot};
use scalper::monitoring::metrics::Metrics;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "t0ken-for-tests";
const PIN: &str = "4321";

struct Harness {
    url: String,
    rx: mpsc::Receiver<Event>,
    snap: watch::Sender<EngineSnapshot>,
    view: watch::Sender<Arc<ControlView>>,
    bus: EventBus,
    metrics: Arc<Metrics>,
    health: HealthBoard,
    cancel: CancellationToken,
    server: grpc::GrpcServer,
}

async fn start(security: Security, config_path: Option<PathBuf>) -> Harness {
    start_with(security, config_path, None).await
}

async fn start_with(security: Security, config_path: Option<PathBuf>, paths: Option<Paths>) -> Harness {
    let metrics = Arc::new(Metrics::new());
    let health = HealthBoard::default();
    let (snap, snap_rx) = watch::channel(EngineSnapshot::default());
    let (view, view_rx) = watch::channel(Arc::new(ControlView::default()));
    let bus = EventBus::new(100, 64);
    let read = ReadState {
        metrics: metrics.clone(),
        health: health.clone(),
        snapshot: snap_rx,
        view: view_rx,
        events: bus.clone(),
        paths,
    };
    let (tx, rx) = mpsc::channel(64);
    let state = ControlState::new(read, tx, security)
        .with_config_path(config_path)
        .with_startup_config(Arc::new(scalper::config::Config::default()));
    let cancel = CancellationToken::new();
    let server = grpc::serve(state, "127.0.0.1:0".parse().unwrap(), cancel.clone()).await.unwrap();
    Harness { url: format!("http://{}", server.local_addr), rx, snap, view, bus, metrics, health, cancel, server }
}

fn secured() -> Security {
    Security::new(Some(TOKEN), Some(PinHash::from_pin("pepper", PIN)))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ctl_cmd(url: &str, token: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_scalperctl"));
    c.arg("--addr").arg(url).args(args);
    c.env_remove("SCALPER_CONTROL_TOKEN").env_remove("SCALPER_CONTROL_ADDR");
    if let Some(t) = token {
        c.env("SCALPER_CONTROL_TOKEN", t);
    }
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    c
}

async fn ctl_in(url: &str, token: Option<&str>, args: &[&str], stdin: &str) -> Run {
    let mut child = ctl_cmd(url, token, args).spawn().expect("scalperctl starts");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("scalperctl finishes")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn ctl(url: &str, token: Option<&str>, args: &[&str]) -> Run {
    ctl_in(url, token, args, "").await
}

fn assert_code(r: &Run, code: i32, what: &str) {
    assert_eq!(r.code, code, "{what}: exit {} (stdout {:?}, stderr {:?})", r.code, r.stdout, r.stderr);
}

fn control(ev: Event) -> ControlCommand {
    match ev.kind {
        EventKind::Control(c) => c,
        other => panic!("expected a control event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_need_the_token() {
    let mut h = start(secured(), None).await;
    let r = ctl(&h.url, None, &["pause"]).await;
    assert_code(&r, 3, "pause without a token");
    assert!(r.stderr.contains("missing control token"), "{}", r.stderr);
    let r = ctl(&h.url, Some("wrong"), &["blacklist", "add", "BTCUSDT"]).await;
    assert_code(&r, 3, "blacklist with a wrong token");
    assert!(r.stderr.contains("invalid control token"), "{}", r.stderr);
    let r = ctl_in(&h.url, None, &["mode", "live", "--pin-stdin"], &format!("{PIN}\nLIVE\n")).await;
    assert_code(&r, 3, "mode live without a token");
    let r = ctl(&h.url, None, &["reload"]).await;
    assert_code(&r, 3, "reload without a token");
    assert!(h.rx.try_recv().is_err(), "nothing may reach the core without a token");
    // Reads need no token.
    assert_code(&ctl(&h.url, None, &["status"]).await, 0, "status without a token");
    assert_eq!(
        h.metrics.control_requests.with_label_values(&["Pause", "unauthenticated"]).get(),
        1,
        "refusals are counted"
    );

    // The alternative header is accepted too.
    let ch = tonic::transport::Endpoint::from_shared(h.url.clone()).unwrap().connect().await.unwrap();
    let mut c = scalper::proto::control_client::ControlClient::new(ch);
    let mut req = tonic::Request::new(scalper::proto::Empty {});
    req.metadata_mut().insert("x-scalper-token", TOKEN.parse().unwrap());
    assert!(c.resume(req).await.unwrap().into_inner().ok);
    assert_eq!(control(h.rx.recv().await.unwrap()), ControlCommand::Resume);
    h.cancel.cancel();

    // An engine without a configured token refuses every mutation, with a clear message.
    let mut h = start(Security::new(None, None), None).await;
    let r = ctl(&h.url, Some("anything"), &["panic"]).await;
    assert_code(&r, 3, "panic on an engine without a token");
    assert!(r.stderr.contains("no control token is configured"), "{}", r.stderr);
    assert!(h.rx.try_recv().is_err());
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_become_control_events_in_order() {
    let mut h = start(secured(), None).await;
    let t = Some(TOKEN);
    let before = wall_ms();
    for args in [
        &["pause"][..],
        &["blacklist", "add", "btcusdt"],
        &["panic"],
        &["news", "set", "ETHUSDT", "--impact", "0.7", "--type", "hack", "--ttl", "15m"],
        &["news", "clear", "ETHUSDT"],
        &["blacklist", "rm", "BTCUSDT"],
        &["resume"],
        &["mode", "dry-run"],
        &["mode", "sim"],
    ] {
        let r = ctl(&h.url, t, args).await;
        assert_code(&r, 0, &args.join(" "));
        assert!(r.stdout.starts_with("ok: "), "{}", r.stdout);
    }
    let after = wall_ms();
    let mut got = Vec::new();
    while let Ok(ev) = h.rx.try_recv() {
        assert!(ev.time.recv_ms >= before && ev.time.recv_ms <= after, "stamped with the edge's time");
        got.push(control(ev));
    }
    assert_eq!(got.len(), 9, "{got:?}");
    assert_eq!(got[0], ControlCommand::Pause);
    assert_eq!(got[1], ControlCommand::Blacklist(Symbol::new("BTCUSDT")));
    assert_eq!(got[2], ControlCommand::PanicCloseAll);
    match &got[3] {
        ControlCommand::SetNewsFlag { symbol, impact, news_type, expires_ms } => {
            assert_eq!(symbol.as_str(), "ETHUSDT");
            assert_eq!(*impact, 0.7);
            assert_eq!(news_type, "HACK");
            assert!(*expires_ms >= before + 900_000 && *expires_ms <= after + 900_000, "{expires_ms}");
        }
        other => panic!("expected a news flag, got {other:?}"),
    }
    assert_eq!(got[4], ControlCommand::ClearNewsFlag(Symbol::new("ETHUSDT")));
    assert_eq!(got[5], ControlCommand::Unblacklist(Symbol::new("BTCUSDT")));
    assert_eq!(got[6], ControlCommand::Resume);
    assert_eq!(got[7], ControlCommand::SetMode(Mode::DryRun));
    assert_eq!(got[8], ControlCommand::SetMode(Mode::Sim));

    // Malformed requests are refused (usage, exit 2) and reach nothing.
    let r = ctl(&h.url, t, &["news", "set", "ETHUSDT", "--impact", "1.5", "--type", "HACK", "--ttl", "60"]).await;
    assert_code(&r, 2, "impact out of range");
    assert!(r.stderr.contains("impact must be in [0, 1]"), "{}", r.stderr);
    let r = ctl(&h.url, t, &["news", "set", "ETHUSDT", "--impact", "0.5", "--type", "HACK", "--ttl", "30d"]).await;
    assert_code(&r, 2, "ttl too long");
    let r = ctl(&h.url, t, &["blacklist", "add", "../etc"]).await;
    assert_code(&r, 2, "invalid symbol");
    let r = ctl(&h.url, t, &["mode", "turbo"]).await;
    assert_code(&r, 2, "unknown mode (clap)");
    assert!(h.rx.try_recv().is_err());

    // JSON output for scripts.
    let r = ctl(&h.url, t, &["-o", "json", "pause"]).await;
    assert_code(&r, 0, "pause -o json");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(control(h.rx.recv().await.unwrap()), ControlCommand::Pause);

    // An engine that stopped consuming: the command is reported undelivered (exit 2).
    drop(h.rx);
    let r = ctl(&h.url, t, &["pause"]).await;
    assert_code(&r, 2, "pause with the engine gone");
    assert!(r.stderr.contains("engine has stopped"), "{}", r.stderr);
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_needs_confirmation_and_pin_and_is_rate_limited() {
    let mut h = start(secured(), None).await;
    let t = Some(TOKEN);
    let live = ["mode", "live", "--pin-stdin"];

    let r = ctl(&h.url, t, &["mode", "live"]).await;
    assert_code(&r, 2, "mode live without --pin");
    assert!(r.stderr.contains("needs the PIN"), "{}", r.stderr);

    let r = ctl_in(&h.url, t, &live, "\nLIVE\n").await;
    assert_code(&r, 3, "empty PIN");
    assert!(r.stderr.contains("LIVE needs the PIN"), "{}", r.stderr);

    let r = ctl_in(&h.url, t, &live, &format!("{PIN}\nyes\n")).await;
    assert_code(&r, 1, "right PIN without the typed confirmation");
    assert!(r.stderr.contains("confirmation"), "{}", r.stderr);
    let r = ctl_in(&h.url, t, &live, &format!("{PIN}\n")).await;
    assert_code(&r, 1, "right PIN, confirmation missing");

    // Three real PIN checks per minute: wrong, right, wrong…
    let r = ctl_in(&h.url, t, &live, "0000\nLIVE\n").await;
    assert_code(&r, 3, "wrong PIN");
    assert!(r.stderr.contains("wrong PIN"), "{}", r.stderr);
    let r = ctl_in(&h.url, t, &live, &format!("{PIN}\nLIVE\n")).await;
    assert_code(&r, 1, "right PIN: LIVE unavailable in this build");
    assert!(r.stderr.contains("PIN accepted") && r.stderr.contains("no private Bybit connector"), "{}", r.stderr);
    let r = ctl_in(&h.url, t, &live, "1111\nLIVE\n").await;
    assert_code(&r, 3, "wrong PIN again");
    // …then even the right PIN is refused until the window passes.
    let r = ctl_in(&h.url, t, &live, &format!("{PIN}\nLIVE\n")).await;
    assert_code(&r, 1, "rate limited");
    assert!(r.stderr.contains("too many PIN attempts"), "{}", r.stderr);

    let m = &h.metrics.live_pin_attempts;
    assert_eq!(m.with_label_values(&["wrong"]).get(), 2);
    assert_eq!(m.with_label_values(&["ok"]).get(), 1);
    assert_eq!(m.with_label_values(&["rate_limited"]).get(), 1);
    assert!(h.rx.try_recv().is_err(), "no LIVE (or any) mode change reached the core");

    // Leaving LIVE (to SIM) never needs the PIN and is not rate-limited.
    assert_code(&ctl(&h.url, t, &["mode", "sim"]).await, 0, "mode sim");
    assert_eq!(control(h.rx.recv().await.unwrap()), ControlCommand::SetMode(Mode::Sim));
    h.cancel.cancel();

    // No PIN hash configured: LIVE is refused outright.
    let h = start(Security::new(Some(TOKEN), None), None).await;
    let r = ctl_in(&h.url, t, &live, &format!("{PIN}\nLIVE\n")).await;
    assert_code(&r, 1, "LIVE without a configured PIN hash");
    assert!(r.stderr.contains("SCALPER_LIVE_PIN_HASH"), "{}", r.stderr);
    h.cancel.cancel();
}

fn sample_view() -> ControlView {
    ControlView {
        ts_ms: 1_700_000_000_000,
        global: GlobalView {
            paused: true,
            global_regime: "GLOBAL_NORMAL".into(),
            equity: 10_250.5,
            daily_pnl: -42.25,
            portfolio_heat: 0.012,
            max_portfolio_heat: 0.03,
            daily_loss_limit: 0.03,
            open_positions: 1,
            blacklist: vec!["DOGEUSDT".into()],
            news_flags: vec![NewsFlagView {
                symbol: "ETHUSDT".into(),
                impact: 0.5,
                news_type: "MACRO".into(),
                expires_ms: 1_700_000_900_000,
            }],
            ..Default::default()
        },
        symbols: vec![
            SymbolView {
                symbol: "BTCUSDT".into(),
                category: "prime".into(),
                price: 65_000.5,
                score_long: 40.0,
                turnover_24h: 1e9,
                book_valid: true,
                last_book_ms: 1_700_000_000_000,
                position: Some(PositionView {
                    side: "Buy".into(),
                    qty: 0.01,
                    entry_price: 64_900.0,
                    unrealized_pnl: 1.0,
                    r_multiple: 0.2,
                }),
                ..Default::default()
            },
            SymbolView {
                symbol: "ETHUSDT".into(),
                category: "prime".into(),
                price: 3_000.0,
                score_short: 85.0,
                turnover_24h: 5e8,
                ..Default::default()
            },
            SymbolView { symbol: "XYZUSDT".into(), category: "wild".into(), price: 0.0123, ..Default::default() },
        ],
        trades: vec![TradeView {
            id: "T1".into(),
            symbol: "BTCUSDT".into(),
            side: "Buy".into(),
            qty: 0.01,
            entry_price: 64_900.0,
            stop_price: 64_700.0,
            state: "OPEN".into(),
            ..Default::default()
        }],
    }
}

fn sample_snapshot() -> EngineSnapshot {
    EngineSnapshot {
        mode: "DRY_RUN".into(),
        events_processed: 4242,
        symbols: 3,
        valid_books: 1,
        feed: Some(FeedState::Connected),
        degraded: true,
        ts_ms: 1_700_000_000_500,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_show_the_published_snapshot_and_view() {
    let h = start(secured(), None).await;
    h.snap.send_replace(sample_snapshot());
    h.view.send_replace(Arc::new(sample_view()));
    h.health.set("feed", Status::Degraded, "reconnecting");

    let r = ctl(&h.url, None, &["status", "-o", "json"]).await;
    assert_code(&r, 0, "status -o json");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["mode"], "DRY_RUN");
    assert_eq!(v["events_processed"], 4242);
    assert_eq!(v["feed"], "CONNECTED");
    assert_eq!(v["degraded"], true);
    assert_eq!(v["paused"], true);
    assert_eq!(v["equity"], 10_250.5);
    assert_eq!(v["daily_pnl"], -42.25);
    assert_eq!(v["blacklist"], serde_json::json!(["DOGEUSDT"]));
    assert_eq!(v["news_flags"][0]["news_type"], "MACRO");
    assert_eq!(v["ts_ms"], 1_700_000_000_500i64);

    let r = ctl(&h.url, None, &["status"]).await;
    assert_code(&r, 0, "status");
    assert!(r.stdout.contains("DRY_RUN") && r.stdout.contains("PAUSED DEGRADED"), "{}", r.stdout);

    let r = ctl(&h.url, None, &["hotlist", "-o", "json", "--limit", "2"]).await;
    assert_code(&r, 0, "hotlist");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["symbol"].as_str().unwrap()).collect();
    assert_eq!(names, ["ETHUSDT", "BTCUSDT"], "best score first");
    let r = ctl(&h.url, None, &["hotlist"]).await;
    assert!(r.stdout.lines().next().unwrap().starts_with("SYMBOL"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 4, "{}", r.stdout);

    let r = ctl(&h.url, None, &["symbol", "btcusdt", "-o", "json"]).await;
    assert_code(&r, 0, "symbol");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["price"], 65_000.5);
    assert_eq!(v["position"]["side"], "Buy");
    let r = ctl(&h.url, None, &["symbol", "NOPEUSDT"]).await;
    assert_code(&r, 1, "unknown symbol");
    assert!(r.stderr.contains("not tracked"), "{}", r.stderr);

    let r = ctl(&h.url, None, &["trades", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["trades"][0]["id"], "T1");
    assert_eq!(v["trades"][0]["stop_price"], 64_700.0);
    let r = ctl(&h.url, None, &["trades"]).await;
    assert!(r.stdout.contains("BTCUSDT") && r.stdout.contains("OPEN"), "{}", r.stdout);

    let r = ctl(&h.url, None, &["health", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["overall"], "DEGRADED");
    assert_eq!(v["components"]["feed"]["detail"], "reconnecting");
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recent_then_follow() {
    let h = start(secured(), None).await;
    for n in 1..=3 {
        h.bus.publish(1_000 + n, Some("BTCUSDT".into()), serde_json::json!({"event": "STATE", "n": n}));
    }
    h.bus.publish(1_004, None, serde_json::json!({"event": "DEGRADED_ENTER"}));

    let r = ctl(&h.url, None, &["events", "-o", "json", "--limit", "2"]).await;
    assert_code(&r, 0, "events");
    let lines: Vec<serde_json::Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["body"]["n"], 3);
    assert_eq!(lines[1]["event"], "DEGRADED_ENTER");
    let r = ctl(&h.url, None, &["events", "-o", "json", "--symbol", "BTCUSDT"]).await;
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);

    // Follow: recent first, then live events as they are published.
    let mut child = ctl_cmd(&h.url, None, &["events", "--follow", "-o", "json", "--limit", "1"]).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&out.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "DEGRADED_ENTER");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.bus.readers() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the follower never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.bus.publish(2_000, Some("ETHUSDT".into()), serde_json::json!({"event": "PUMP_DETECTED"}));
    let next = tokio::time::timeout(Duration::from_secs(10), out.next_line()).await.unwrap().unwrap().unwrap();
    let next: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(next["event"], "PUMP_DETECTED");
    assert_eq!(next["symbol"], "ETHUSDT");
    assert_eq!(next["seq"], 5);

    // Shutting the server down ends the stream cleanly.
    h.cancel.cancel();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    tokio::time::timeout(Duration::from_secs(10), h.server.task).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_reads_the_per_symbol_overrides_again() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::with_data_dir(dir.path());
    std::fs::create_dir_all(paths.profiles_dir()).unwrap();
    std::fs::write(paths.profiles_dir().join("SOLUSDT.json"), r#"{"overrides":{"blacklisted":true}}"#).unwrap();
    let config = dir.path().join("scalper.toml");
    std::fs::write(&config, "[risk]\nper_trade = 0.004\n").unwrap();
    let mut h = start_with(secured(), Some(config), Some(paths.clone())).await;
    let r = ctl(&h.url, Some(TOKEN), &["reload"]).await;
    assert_code(&r, 0, "reload");
    assert!(matches!(h.rx.recv().await.unwrap().kind, EventKind::ConfigReload(_)));
    match h.rx.recv().await.unwrap().kind {
        EventKind::Control(ControlCommand::SetOverrides(all)) => {
            assert_eq!(all[&Symbol::new("SOLUSDT")].blacklisted, Some(true));
        }
        other => panic!("expected the overrides after the configuration, got {other:?}"),
    }
    h.cancel.cancel();

    // Without a config file a reload still re-reads the overrides.
    std::fs::write(paths.profiles_dir().join("SOLUSDT.json"), r#"{"overrides":{"size_multiplier":5}}"#).unwrap();
    let mut h = start_with(secured(), None, Some(paths)).await;
    let r = ctl(&h.url, Some(TOKEN), &["reload"]).await;
    assert_code(&r, 0, "reload of the overrides alone");
    match h.rx.recv().await.unwrap().kind {
        EventKind::Control(ControlCommand::SetOverrides(all)) => assert!(all.is_empty(), "the bad override is refused"),
        other => panic!("expected the overrides, got {other:?}"),
    }
    assert_eq!(h.metrics.override_errors.get(), 1);
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_validates_the_file_and_queues_a_reload_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scalper.toml");
    std::fs::write(&path, "[risk]\nper_trade = 0.004\n").unwrap();
    let mut h = start(secured(), Some(path.clone())).await;
    h.snap.send_replace(EngineSnapshot { mode: "DRY_RUN".into(), ..Default::default() });
    let r = ctl(&h.url, Some(TOKEN), &["reload"]).await;
    assert_code(&r, 0, "reload of a valid file");
    match h.rx.recv().await.unwrap().kind {
        EventKind::ConfigReload(c) => {
            assert_eq!(c.risk.per_trade, 0.004);
            assert_eq!(c.mode, Mode::DryRun, "a reload keeps the running mode");
        }
        other => panic!("expected a reload, got {other:?}"),
    }
    // A setting read only at start-up keeps the running value, and the operator is told.
    std::fs::write(&path, "[risk]\nper_trade = 0.003\n[engine]\nhuge_pages = false\n").unwrap();
    let r = ctl(&h.url, Some(TOKEN), &["reload"]).await;
    assert_code(&r, 0, "reload of a valid file with a start-up setting");
    assert!(r.stdout.contains("kept until the next start: engine.huge_pages"), "{}", r.stdout);
    match h.rx.recv().await.unwrap().kind {
        EventKind::ConfigReload(c) => assert!(c.risk.per_trade == 0.003 && c.engine.huge_pages, "{:?}", c.engine),
        other => panic!("expected a reload, got {other:?}"),
    }
    assert_eq!(h.metrics.config_reloads.with_label_values(&["restart_needed"]).get(), 1);
    std::fs::write(&path, "[risk]\nper_trade = 0.9\n").unwrap();
    let r = ctl(&h.url, Some(TOKEN), &["reload"]).await;
    assert_code(&r, 1, "reload of an invalid file");
    assert!(r.stderr.contains("per_trade") && r.stderr.contains("stays in force"), "{}", r.stderr);
    assert!(h.rx.try_recv().is_err());
    assert_eq!(h.metrics.config_reloads.with_label_values(&["rejected"]).get(), 1);
    assert_eq!(h.metrics.config_reloads.with_label_values(&["ok"]).get(), 2);
    h.cancel.cancel();

    let h = start(secured(), None).await;
    let r = ctl(&h.url, Some(TOKEN), &["reload"]).await;
    assert_code(&r, 1, "reload without a config file");
    assert!(r.stderr.contains("without a config file"), "{}", r.stderr);
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_health_and_reflection_services() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let h = start(secured(), None).await;
    let ch = tonic::transport::Endpoint::from_shared(h.url.clone()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(ch.clone());
    let r = health.check(HealthCheckRequest { service: "scalper.v1.Control".into() }).await.unwrap().into_inner();
    assert_eq!(r.status, ServingStatus::Serving as i32);

    let mut refl = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl.server_reflection_info(futures_util::stream::iter(vec![req])).await.unwrap().into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"scalper.v1.Control".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
    h.cancel.cancel();
}

#[test]
fn connection_errors_exit_2() {
    // Nothing listens on port 9 of loopback in the test environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scalperctl"))
        .args(["--addr", "http://127.0.0.1:9", "status"])
        .env_remove("SCALPER_CONTROL_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

#[test]
fn pin_hash_prints_a_verifiable_hash() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scalperctl"))
        .args(["pin-hash", "--pin-stdin", "--salt", "s4lt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"987654\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let h = PinHash::parse(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(h.verify("987654"));
    assert!(!h.verify("987655"));
}

async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_serves_the_view_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::with_data_dir(dir.path());
    std::fs::create_dir_all(paths.system_dir()).unwrap();
    std::fs::write(paths.retention_log(), "{\"deleted_files\":1}\n{\"deleted_files\":7}\n").unwrap();
    let metrics = Arc::new(Metrics::new());
    metrics.storage_writes.with_label_values(&["events"]).inc_by(5);
    metrics.storage_write_failures.with_label_values(&["events"]).inc();
    let (_snap_tx, snap_rx) = watch::channel(sample_snapshot());
    let (_view_tx, view_rx) = watch::channel(Arc::new(sample_view()));
    let bus = EventBus::new(10, 10);
    bus.publish(1, Some("BTCUSDT".into()), serde_json::json!({"event": "A"}));
    bus.publish(2, None, serde_json::json!({"event": "B"}));
    metrics.observe_view(&sample_view());
    let read = ReadState {
        metrics: metrics.clone(),
        health: HealthBoard::default(),
        snapshot: snap_rx,
        view: view_rx,
        events: bus,
        paths: Some(paths),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        axum::serve(listener, http::api_router(read)).with_graceful_shutdown(c2.cancelled_owned()).await.unwrap();
    });

    let (code, v) = get(addr, "/api/summary").await;
    assert_eq!(code, 200);
    assert_eq!(v["mode"], "DRY_RUN");
    assert_eq!(v["open_positions"], 1);
    let (_, v) = get(addr, "/api/hotlist?limit=1").await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(v["entries"][0]["symbol"], "ETHUSDT");
    let (code, v) = get(addr, "/api/symbol/xyzusdt").await;
    assert_eq!(code, 200);
    assert_eq!(v["category"], "wild");
    let (code, v) = get(addr, "/api/symbol/NOPEUSDT").await;
    assert_eq!(code, 404);
    assert!(v["error"].as_str().unwrap().contains("NOPEUSDT"));
    let (code, _) = get(addr, "/api/symbol/bad%2Fname").await;
    assert_eq!(code, 400);
    let (_, v) = get(addr, "/api/trades/active").await;
    assert_eq!(v["trades"][0]["symbol"], "BTCUSDT");
    let (_, v) = get(addr, "/api/events/recent?limit=1").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    assert_eq!(v["events"][0]["event"], "B");
    let (_, v) = get(addr, "/api/events/recent?symbol=BTCUSDT").await;
    assert_eq!(v["events"][0]["event"], "A");
    let (_, v) = get(addr, "/api/storage/status").await;
    assert_eq!(v["writes"]["events"], 5);
    assert_eq!(v["write_failures"]["events"], 1);
    assert_eq!(v["last_retention"]["deleted_files"], 7);
    let (code, v) = get(addr, "/api/nope").await;
    assert_eq!(code, 404);
    assert!(v["error"].is_string());

    let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"scalper_symbol_price{category="prime",symbol="BTCUSDT"} 65000.5"#), "{text}");
    assert!(text.contains("scalper_equity_usdt 10250.5"));
    // Mutations are not offered over HTTP.
    let r = reqwest::Client::new().post(format!("http://{addr}/api/summary")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    cancel.cancel();
}
