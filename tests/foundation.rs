//! Foundation: configuration layering and hot reload, crash-safe JSONL store, retention, and the
//! engine's fixed step order and DEGRADED policy.
#![allow(clippy::result_large_err)]

use scalper::config::paths::{DataKind, Paths};
use scalper::config::reload::{ConfigReloader, ReloadOutcome};
use scalper::config::ConfigFile;
use scalper::config::{Config, ConfigError, EndpointPreset};
use scalper::domain::{EventTime, Symbol};
use scalper::engine::clock::ManualClock;
use scalper::engine::event::{Event, EventKind, Mode, TimerKind};
use scalper::engine::output::{Output, StatusChange};
use scalper::engine::{DegradedPolicy, Engine, Pipeline, Tick};
use scalper::monitoring::metrics::Metrics;
use scalper::storage::json_store::read_jsonl;
use scalper::storage::retention;
use std::io::{BufRead, BufReader};
use std::rc::Rc;
use std::sync::Arc;

#[test]
fn config_layers_defaults_file_then_env() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "scalper.toml",
            r#"
            mode = "DRY_RUN"
            [risk]
            per_trade = 0.004
            [thresholds]
            watch = 50.0
            [endpoints]
            preset = "testnet"
            "#,
        )?;
        // Defaults only.
        let d = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(d.mode, Mode::Sim, "SIM is the default mode");
        assert_eq!(d.fees.maker, 0.0002);
        assert_eq!(d.fees.taker, 0.00055);
        // File over defaults.
        let f = Config::load(Some("scalper.toml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(f.mode, Mode::DryRun);
        assert_eq!(f.risk.per_trade, 0.004);
        assert_eq!(f.thresholds.watch, 50.0);
        assert_eq!(f.thresholds.arm, 70.0, "untouched keys keep their defaults");
        assert_eq!(f.endpoints.preset, EndpointPreset::Testnet);
        assert!(f.endpoints.effective().rest_url.contains("testnet"));
        // Environment over file.
        jail.set_env("SCALPER_RISK__PER_TRADE", "0.002");
        jail.set_env("SCALPER_DATA_DIR", "/tmp/scalper-data");
        jail.set_env("SCALPER_LIVE_PIN_HASH", "not-config-and-ignored");
        let e = Config::load(Some("scalper.toml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(e.risk.per_trade, 0.002);
        assert_eq!(e.data_dir.as_deref(), Some(std::path::Path::new("/tmp/scalper-data")));
        assert_eq!(e.thresholds.watch, 50.0);
        Ok(())
    });
}

#[test]
fn live_mode_from_a_file_alone_is_refused() {
    let err = Config::from_toml_str("mode = \"LIVE\"").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Invalid(_)));
    assert!(msg.contains("LIVE cannot be set from configuration"), "{msg}");
    figment::Jail::expect_with(|jail| {
        jail.set_env("SCALPER_MODE", "LIVE");
        assert!(Config::load(None).is_err(), "LIVE from the environment is refused too");
        Ok(())
    });
}

#[test]
fn validation_lists_every_problem_clearly() {
    let err = Config::from_toml_str(
        r#"
        [risk]
        per_trade = 0.2
        [thresholds]
        watch = 80.0
        arm = 60.0
        [categories.wild]
        max_leverage = 5.0
        max_notional = 100.0
        book_depth = 25
        max_positions = 1
        "#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("risk.per_trade must be in (0, 0.05], got 0.2"), "{err}");
    assert!(err.contains("thresholds.arm (60) must be >= thresholds.watch (80)"), "{err}");
    assert!(err.contains("categories.wild.book_depth must be one of"), "{err}");
    let unknown = Config::from_toml_str("[risk]\nper_trde = 0.01").unwrap_err().to_string();
    assert!(unknown.contains("per_trde"), "typos are refused, not ignored: {unknown}");
}

#[test]
fn invalid_hot_reload_keeps_the_last_good_config() {
    // Inside a Jail: other tests set SCALPER_* variables, and the Jail serialises them.
    figment::Jail::expect_with(|_jail| {
        hot_reload_body();
        Ok(())
    });
}

fn hot_reload_body() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scalper.toml");
    std::fs::write(&path, "[risk]\nper_trade = 0.004\n").unwrap();
    let initial = Arc::new(Config::load(Some(&path)).unwrap());
    let metrics = Arc::new(Metrics::new());
    let (mut reloader, rx) = ConfigReloader::new(path.clone(), initial, metrics.clone());
    assert_eq!(reloader.check_once(false), ReloadOutcome::Unchanged);

    std::fs::write(&path, "[risk]\nper_trade = 0.003\n").unwrap();
    assert_eq!(reloader.check_once(false), ReloadOutcome::Reloaded);
    assert_eq!(rx.borrow().risk.per_trade, 0.003);

    std::fs::write(&path, "[risk]\nper_trade = 0.9\n").unwrap();
    match reloader.check_once(false) {
        ReloadOutcome::Rejected(msg) => assert!(msg.contains("risk.per_trade"), "{msg}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(rx.borrow().risk.per_trade, 0.003, "last good config stays in force");

    std::fs::write(&path, "this is = not [toml").unwrap();
    assert!(matches!(reloader.check_once(false), ReloadOutcome::Rejected(_)));
    std::fs::write(&path, "mode = \"LIVE\"\n").unwrap();
    assert!(matches!(reloader.check_once(false), ReloadOutcome::Rejected(_)));
    assert_eq!(rx.borrow().mode, Mode::Sim);
    assert_eq!(metrics.config_reloads.with_label_values(&["rejected"]).get(), 3);
    assert_eq!(metrics.config_reloads.with_label_values(&["ok"]).get(), 1);

    // Settings read only at start-up keep their running values and are counted; the rest of
    // the same file applies.
    std::fs::write(
        &path,
        "[risk]\nper_trade = 0.002\n[server]\nhttp_addr = \"127.0.0.1:19999\"\n[engine]\nhuge_pages = false\nprefault_mib = 64\n",
    )
    .unwrap();
    assert_eq!(reloader.check_once(false), ReloadOutcome::Reloaded);
    let now = rx.borrow().clone();
    assert_eq!(now.risk.per_trade, 0.002, "the live part applies");
    assert_eq!(now.server.http_addr, Config::default().server.http_addr, "still the address it listens on");
    assert!(now.engine.huge_pages && now.engine.prefault_mib == Config::default().engine.prefault_mib);
    assert_eq!(metrics.config_reloads.with_label_values(&["restart_needed"]).get(), 1);
    // Only start-up settings changed: nothing to reload, but said again.
    std::fs::write(&path, "[risk]\nper_trade = 0.002\n[engine]\nhuge_pages = false\n").unwrap();
    assert_eq!(reloader.check_once(false), ReloadOutcome::Unchanged);
    assert_eq!(metrics.config_reloads.with_label_values(&["restart_needed"]).get(), 2);
}

#[test]
fn every_start_up_only_setting_a_reload_changes_is_named_and_kept() {
    let running = Config::default();
    let mut file = running.clone();
    file.data_dir = Some("/elsewhere".into());
    file.endpoints.rest_url = "https://example.invalid".into();
    file.server.grpc_addr = "127.0.0.1:1".into();
    file.control.http_max_connections += 1;
    file.storage.queue_capacity += 1;
    file.storage.record_raw = !running.storage.record_raw;
    file.storage.max_disk_gb += 1;
    file.engine.degraded_tick_ms += 1;
    file.engine.input_queue_capacity += 1;
    file.engine.venue_queue_capacity += 1;
    file.engine.huge_pages = !running.engine.huge_pages;
    file.universe.refresh_s += 1;
    // Applied live: stays as the file says.
    file.risk.per_trade = 0.001;
    file.engine.feed_down_risk_off_s += 1;
    let kept = file.keep_startup_only(&running);
    assert_eq!(
        kept,
        [
            "data_dir",
            "endpoints",
            "server.grpc_addr",
            "control",
            "storage.queue_capacity",
            "storage.record_raw",
            "storage.max_disk_gb",
            "engine.degraded_tick_ms",
            "engine.input_queue_capacity",
            "engine.venue_queue_capacity",
            "engine.huge_pages",
            "universe.refresh_s",
        ]
    );
    let mut expected = running.clone();
    expected.risk.per_trade = 0.001;
    expected.engine.feed_down_risk_off_s += 1;
    assert_eq!(file, expected, "every start-up setting back to the running value, the rest as in the file");
    assert!(file.keep_startup_only(&running).is_empty());
}

/// Kills a process that is appending (SIGKILL, mid-write) and checks the files: no torn line is
/// ever read back, and every acknowledged record is there exactly once, in order.
#[test]
fn store_survives_a_kill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scalper"))
        .args(["--log-format", "json", "storage-stress", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse().unwrap();
            if acked >= 3_000 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acked >= 3_000);
    let paths = Paths::with_data_dir(dir.path());
    let file = paths.hourly_file(DataKind::Events, Some(&Symbol::new("BTCUSDT")), "2026-11-24T13");
    let (values, bad) = read_jsonl(&file).unwrap();
    assert!(bad <= 1, "at most the one line being written when killed is unusable, got {bad}");
    let ns: Vec<u64> = values.iter().map(|v| v["n"].as_u64().unwrap()).collect();
    assert!(ns.len() as u64 >= acked, "every acknowledged record is present");
    for (i, n) in ns.iter().enumerate() {
        assert_eq!(*n, i as u64 + 1, "records are whole, unique and in order");
    }
}

const H: i64 = 3_600_000;

#[test]
fn retention_deletes_only_old_raw_files_and_folds_days() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::with_data_dir(dir.path());
    let now = retention::parse_hour_key("2026-11-26T12").unwrap() + 30 * 60_000;
    let btc = Symbol::new("BTCUSDT");
    let write = |kind: DataKind, hour: &str, body: &str| {
        let f = paths.hourly_file(kind, Some(&btc), hour);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, body).unwrap();
    };
    // now = 26th 12:30. The 25th 11:00 file ended 25.5 h ago (deleted); the 25th 12:00 file still
    // holds records younger than 24 h (kept); the 25th 13:00 file is 23.5 h old (kept).
    write(DataKind::Events, "2026-11-25T11", "{}\n");
    write(DataKind::Events, "2026-11-25T12", "{}\n");
    write(DataKind::Events, "2026-11-25T13", "{}\n");
    write(DataKind::Raw, "2026-11-20T00", "{}\n");
    write(DataKind::Microcandles, "2026-11-26T12", "{}\n");
    // Trades of two days; the trade log itself is kept.
    write(
        DataKind::TradesLog,
        "2026-11-24T10",
        "{\"symbol\":\"BTCUSDT\",\"exit_ms\":1795514400000,\"gross_pnl\":12.0,\"fees\":2.0,\"net_pnl\":10.0}\n\
         {\"symbol\":\"BTCUSDT\",\"exit_ms\":1795514500000,\"gross_pnl\":-3.0,\"fees\":1.0,\"net_pnl\":-4.0}\n",
    );
    write(
        DataKind::TradesLog,
        "2026-11-25T10",
        "{\"symbol\":\"BTCUSDT\",\"exit_ms\":1795600800000,\"gross_pnl\":5.0,\"fees\":1.0,\"net_pnl\":4.0}\n",
    );
    std::fs::create_dir_all(paths.profiles_dir()).unwrap();
    std::fs::write(paths.profile_file(&btc), "{}").unwrap();

    let rep = retention::run_once(&paths, now, 24);
    assert_eq!(rep.deleted_files, 2, "{rep:?}");
    assert!(!paths.hourly_file(DataKind::Events, Some(&btc), "2026-11-25T11").exists());
    assert!(paths.hourly_file(DataKind::Events, Some(&btc), "2026-11-25T12").exists());
    assert!(paths.hourly_file(DataKind::Events, Some(&btc), "2026-11-25T13").exists());
    assert!(!paths.hourly_file(DataKind::Raw, Some(&btc), "2026-11-20T00").exists());
    assert!(paths.hourly_file(DataKind::Microcandles, Some(&btc), "2026-11-26T12").exists());
    assert!(paths.hourly_file(DataKind::TradesLog, Some(&btc), "2026-11-24T10").exists());
    assert!(paths.profile_file(&btc).exists(), "profiles are never deleted");

    let day: retention::DaySummary =
        serde_json::from_slice(&std::fs::read(paths.day_summary_file("2026-11-24")).unwrap()).unwrap();
    assert_eq!((day.count, day.wins, day.losses), (2, 1, 1));
    assert_eq!(day.net_pnl, 6.0);
    assert_eq!(day.fees, 3.0);
    assert_eq!(day.per_symbol["BTCUSDT"].trades, 2);
    assert!(paths.day_summary_file("2026-11-25").exists());

    let (log, bad) = read_jsonl(&paths.retention_log()).unwrap();
    assert_eq!((log.len(), bad), (1, 0));
    assert_eq!(log[0]["deleted_files"], 2);

    // Retention never goes below 24 h even if asked to.
    write(DataKind::Events, "2026-11-26T00", "{}\n");
    let rep = retention::run_once(&paths, now, 1);
    assert_eq!(rep.deleted_files, 0);
    assert_eq!(rep.cutoff_ms, now - 24 * H);
}

/// A pipeline that records which step ran, and can make one step "slow" on the injected clock.
struct Recorder {
    calls: Vec<&'static str>,
    /// `(seq of the hinted event, its distance ahead, steps run before the hint)` of each
    /// prefetch hint.
    hints: std::cell::RefCell<Vec<(u64, usize, usize)>>,
    clock: Rc<ManualClock>,
    slow_step_nanos: u64,
}

macro_rules! rec {
    ($($name:ident),*) => {
        impl Pipeline for Recorder {
            $(fn $name(&mut self, _t: &mut Tick<'_>) {
                self.calls.push(stringify!($name));
                if stringify!($name) == "features" {
                    self.clock.advance_nanos(self.slow_step_nanos);
                }
            })*
            fn prefetch(&self, next: &Event, distance: usize) {
                self.hints.borrow_mut().push((next.seq, distance, self.calls.len()));
            }
        }
    };
}
rec!(market_update, microstructure, features, regime, scoring, state_machine, risk, execution, logging, metrics);

fn timer(seq: u64) -> Event {
    Event::new(seq, EventTime::local(1_000 * seq as i64), EventKind::Timer(TimerKind::Second))
}

#[test]
fn engine_runs_the_ten_steps_in_order_and_degrades_on_slow_ticks() {
    let clock = Rc::new(ManualClock::default());
    let rec = Recorder { calls: vec![], hints: Default::default(), clock: clock.clone(), slow_step_nanos: 1_000 };
    let policy = DegradedPolicy { tick_budget_nanos: 300_000_000, recover_ticks: 3 };
    let mut engine = Engine::new(rec, clock.clone(), policy);

    let out = engine.on_event(&timer(1));
    assert_eq!(
        engine.pipeline().calls,
        [
            "market_update",
            "microstructure",
            "features",
            "regime",
            "scoring",
            "state_machine",
            "risk",
            "execution",
            "logging",
            "metrics"
        ]
    );
    assert!(out.is_empty());
    assert!(!engine.is_degraded());

    // One step takes 301 ms on the injected clock: the engine asks for DEGRADED. The edge turns
    // the request into an input event (recorded), and that event is what sets the flag, with its
    // record, so a replay on any machine degrades at the same place.
    engine.pipeline_mut().slow_step_nanos = 301_000_000;
    let out = engine.on_event(&timer(2));
    assert!(out.items.contains(&Output::Status(StatusChange::DegradedEnter)));
    assert!(!engine.is_degraded(), "measurement alone does not change the flag");
    let enter = Event::new(3, EventTime::local(2_500), EventKind::Degraded { on: true, tick_ns: 301_000_000 });
    engine.pipeline_mut().slow_step_nanos = 1_000;
    let out = engine.on_event(&enter);
    assert!(engine.is_degraded());
    assert!(out.items.iter().any(|o| matches!(o, Output::Record(r) if r.body["event"] == "DEGRADED_ENTER")));

    // Recovery needs 3 fast ticks in a row (the Degraded event's own tick was the first).
    assert!(engine.on_event(&timer(4)).is_empty());
    let out = engine.on_event(&timer(5));
    assert!(out.items.contains(&Output::Status(StatusChange::DegradedExit)));
    assert!(engine.is_degraded(), "still DEGRADED until the edge's event");
    let exit = Event::new(6, EventTime::local(5_500), EventKind::Degraded { on: false, tick_ns: 1_000 });
    let out = engine.on_event(&exit);
    assert!(!engine.is_degraded());
    assert!(out.items.iter().any(|o| matches!(o, Output::Record(r) if r.body["event"] == "DEGRADED_EXIT")));

    // Replay: a frozen clock never measures a slow tick, yet the recorded events degrade it.
    let mut replay = Engine::new(
        Recorder {
            calls: vec![],
            hints: Default::default(),
            clock: Rc::new(ManualClock::default()),
            slow_step_nanos: 0,
        },
        scalper::engine::clock::FrozenClock,
        policy,
    );
    replay.on_event(&timer(2));
    assert!(!replay.is_degraded());
    replay.on_event(&enter);
    assert!(replay.is_degraded());
    replay.on_event(&exit);
    assert!(!replay.is_degraded());
    assert_eq!(engine.pipeline().calls.len(), 60);
    assert_eq!(engine.events_processed(), 6);
    assert!(engine.pipeline().hints.borrow().is_empty(), "on_event alone hints nothing");

    // With the next events in hand, their prefetch hints come before the current event's steps.
    let out = engine.on_event_ahead(&timer(7), [Some(&timer(8)), Some(&timer(9))]);
    assert!(out.is_empty());
    assert_eq!(*engine.pipeline().hints.borrow(), [(8, 1, 60), (9, 2, 60)]);
    assert_eq!(engine.pipeline().calls.len(), 70, "the hinted events themselves are not processed");
    engine.on_event_ahead(&timer(8), [None, Some(&timer(10))]);
    assert_eq!(engine.pipeline().hints.borrow()[2], (10, 2, 70));
}

#[test]
fn run_records_by_default_and_the_disk_budget_is_bounded() {
    let d = Config::default();
    assert!(d.storage.record_raw, "every run records its inputs unless opted out");
    assert_eq!(d.storage.max_disk_gb, 100, "24 h of the whole universe (~60 GB compressed) fit");
    let f = Config::from_toml_str("mode = \"DRY_RUN\"").unwrap();
    assert!(f.storage.record_raw, "a file without [storage] records too");
    let off = Config::from_toml_str("[storage]\nrecord_raw = false").unwrap();
    assert!(!off.storage.record_raw, "explicit opt-out");
    let err = Config::from_toml_str("[storage]\nmax_disk_gb = 0").unwrap_err().to_string();
    assert!(err.contains("storage.max_disk_gb"), "{err}");
}

#[test]
fn a_disk_budget_deletes_the_oldest_stream_files_first_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::with_data_dir(dir.path());
    let btc = Symbol::new("BTCUSDT");
    // now = 2026-11-26T12:30Z; hourly files of the last 10 hours, 1000 bytes each: the recording
    // (compressed) and an events stream, plus the current hour.
    let now = retention::parse_hour_key("2026-11-26T12").unwrap() + H / 2;
    let hour = |back: i64| scalper::storage::json_store::hour_key(now - back * H);
    let mut files = Vec::new();
    for back in 0..10 {
        let raw = scalper::storage::segment::stream_file(&paths, DataKind::Raw, None, &hour(back));
        let ev = paths.hourly_file(DataKind::Events, Some(&btc), &hour(back));
        for f in [&raw, &ev] {
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, vec![b'x'; 1000]).unwrap();
        }
        files.push((back, raw, ev));
    }
    // No budget: all younger than 24 h, all kept.
    let rep = retention::run_with_budget(&paths, now, 24, None);
    assert_eq!((rep.deleted_files, rep.kept_files, rep.kept_bytes), (0, 20, 20_000));
    // 12.5 kB budget: the 4 oldest hours go (8 files), oldest first, and are reported.
    let m = Metrics::new();
    let rep = retention::run_with_budget(&paths, now, 24, Some(12_500));
    retention::publish(&m, &rep);
    for (back, raw, ev) in &files {
        let gone = *back >= 6;
        assert_eq!(!raw.exists(), gone, "{back} h ago");
        assert_eq!(!ev.exists(), gone, "{back} h ago");
    }
    assert_eq!((rep.deleted_files, rep.budget_deleted_files, rep.budget_forced_hours), (8, 8, 4));
    assert_eq!(rep.kept_bytes, 12_000);
    assert_eq!(rep.oldest_kept_ms, Some(retention::parse_hour_key(&hour(5)).unwrap()));
    assert_eq!(m.retention_budget_forced_hours.get(), 4);
    assert_eq!(m.retention_budget_deleted_files.get(), 8);
    assert_eq!(m.storage_stream_bytes.get(), 12_000);
    assert!(m.render().contains("scalper_retention_budget_forced_hours 4"));
    // A budget below the current hour's files: everything else goes, the current hour stays.
    let rep = retention::run_with_budget(&paths, now, 24, Some(1));
    assert!(files[0].1.exists() && files[0].2.exists(), "the hour being written is never deleted");
    assert_eq!(rep.kept_files, 2);
    assert!(rep.errors.iter().any(|e| e.contains("over the budget")), "{:?}", rep.errors);
    // Within the budget again: nothing forced, the gauge goes back to 0.
    let rep = retention::run_with_budget(&paths, now, 24, Some(1_000_000));
    retention::publish(&m, &rep);
    assert_eq!((rep.budget_deleted_files, rep.budget_forced_hours), (0, 0));
    assert_eq!(m.retention_budget_forced_hours.get(), 0);
}
