//! The demo engine (runtime + simulator over loopback) steered by the real `scalperctl` over real
//! gRPC: every command's effect is checked in the engine's own state, not just its reply.

mod common;
use common::probe;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-123";

fn ctl(addr: &str, args: &[&str]) -> (i32, String) {
    common::scalperctl(addr, TOKEN, args)
}

async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalperctl_steers_the_demo_engine() {
    let eng = common::start_engine(8, TOKEN, |_| {}).await;
    let (addr, snap, probe_tx) = (eng.addr.clone(), eng.snap.clone(), eng.probes.clone());
    let snap2 = snap.clone();
    eventually("universe loaded", move || snap2.borrow().symbols == 8).await;

    // A blacklisted symbol gets no new signals while the others do.
    let a = addr.clone();
    let (code, _) = tokio::task::spawn_blocking(move || ctl(&a, &["blacklist", "add", "SIM001USDT"])).await.unwrap();
    assert_eq!(code, 0);
    let tx = probe_tx.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut samples = 0;
    loop {
        samples += 1;
        let (black_state, others_active) = probe(&tx, |e| {
            use scalper::state::machine::TradeState as S;
            let d = e.pipeline().desk();
            let black = d.state_of(&scalper::domain::Symbol::new("SIM001USDT"));
            let active = e
                .pipeline()
                .symbols()
                .filter(|(s, _)| s.as_str() != "SIM001USDT")
                .filter(|(s, _)| !matches!(d.state_of(s), S::Flat | S::BlockedRegime))
                .count();
            (black, active)
        })
        .await;
        use scalper::state::machine::TradeState as S;
        // A position opened before the blacklist is still managed; no new setup may start.
        assert!(
            !matches!(black_state, S::WatchingLong | S::WatchingShort | S::ArmedLong | S::ArmedShort | S::OrderPlaced),
            "blacklisted symbol got a new signal: {black_state:?}"
        );
        if others_active > 0 && samples >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "no other symbol ever got a signal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait for an open position somewhere, so PANIC has something to flatten.
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe(&tx, |e| e.pipeline().desk().portfolio.positions().len()).await == 0 {
        assert!(Instant::now() < deadline, "the demo engine never opened a position");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Pause and panic reach the core's own state; panic really flattens.
    for args in [vec!["pause"], vec!["panic"]] {
        let a = addr.clone();
        let (code, out) = tokio::task::spawn_blocking(move || ctl(&a, &args)).await.unwrap();
        assert_eq!(code, 0, "{out}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (paused, black, panic) = probe(&tx, |e| {
            let c = e.pipeline().controls();
            (c.paused, c.blacklist.iter().map(|s| s.to_string()).collect::<Vec<_>>(), c.kill.is_engaged())
        })
        .await;
        if paused && black == vec!["SIM001USDT".to_string()] && panic {
            let (positions, orders) = probe(&tx, |e| {
                (e.pipeline().desk().portfolio.positions().len(), e.pipeline().desk().venue.snapshot().orders.len())
            })
            .await;
            if positions == 0 && orders == 0 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "controls not applied: paused={paused} blacklist={black:?} panic={panic}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Mode really changes (SIM → DRY_RUN → SIM); LIVE without a PIN is refused and changes nothing.
    let a = addr.clone();
    let (code, _) = tokio::task::spawn_blocking(move || ctl(&a, &["mode", "dry-run"])).await.unwrap();
    assert_eq!(code, 0);
    let tx = probe_tx.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe(&tx, |e| e.pipeline().mode()).await != scalper::engine::event::Mode::DryRun {
        assert!(Instant::now() < deadline, "mode did not change");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a = addr.clone();
    let (code, _) = tokio::task::spawn_blocking(move || ctl(&a, &["mode", "live"])).await.unwrap();
    assert_ne!(code, 0, "LIVE without PIN and confirmation is refused");
    assert_eq!(probe(&tx, |e| e.pipeline().mode()).await, scalper::engine::event::Mode::DryRun);

    // status -o json reflects it (published once per second).
    let a = addr.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a2 = a.clone();
        let (code, out) = tokio::task::spawn_blocking(move || ctl(&a2, &["-o", "json", "status"])).await.unwrap();
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        if v["mode"] == "DRY_RUN" && v["paused"] == true && v["global_panic"] == true {
            assert_eq!(v["blacklist"][0], "SIM001USDT");
            break;
        }
        assert!(Instant::now() < deadline, "status never showed the changes: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Without the token nothing is accepted.
    let a = addr.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_scalperctl"))
            .args(["--addr", &a, "resume"])
            .env_remove("SCALPER_CONTROL_TOKEN")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(probe(&tx, |e| e.pipeline().controls().paused).await, "still paused");

    eng.stop().await;
}
