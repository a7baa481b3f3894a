//! Market intelligence on the simulator's labelled scenarios, end to end: the simulator runs the
//! demo scenarios on a manual clock, the real public connector receives them over loopback (with
//! the simulator's clock as receive time), and the real core classifies them. Reports recall,
//! false positives and detection delay (`cargo test --test scenarios_sim -- --nocapture`).
//!
//! `SIM_SEED=<n>` runs the same scenarios on another seed of the synthetic market (default 3).

use scalper::config::Config;
use scalper::connectors::bybit_public::{FeedConfig, PublicFeed, PublicRest, Subscription};
use scalper::connectors::simulator::{
    ClockMode, Scenario, ScenarioAssignment, ScenarioEventKind, SimConfig, SimExchange, UniverseEvent,
};
use scalper::domain::{EventTime, Side, Symbol};
use scalper::engine::clock::FrozenClock;
use scalper::engine::core::CorePipeline;
use scalper::engine::event::{ControlCommand, Event, EventKind, FeedState, TimerKind};
use scalper::engine::output::{FeedCommand, Output};
use scalper::engine::{DegradedPolicy, Engine};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_795_000_000_000;
const PUMP_AT: i64 = 80_000;
const PND_AT: i64 = 90_000;
const CRASH_AT: i64 = 120_000;
const JUMP_AT: i64 = 150_000;
const LISTING_AT: i64 = 100_000;
/// How long the operator's news flag on a shocked symbol lasts.
const NEWS_TTL: i64 = 30_000;
const SCENARIO_SYMBOLS: [&str; 6] =
    ["SIM001USDT", "SIM002USDT", "SIM003USDT", "SIM004USDT", "SIM005USDT", "SIM006USDT"];

/// One intelligence record of the run.
struct Rec {
    symbol: String,
    ts: i64,
    body: serde_json::Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_are_recognised_on_the_simulator() {
    // The demo's scenarios, started after the detectors' 60 s baseline warm-up (an engine that
    // has just started cannot know what "unusual volume" is for a symbol), and a listing.
    let assign = |symbol: &str, scenario: Scenario| ScenarioAssignment { symbol: symbol.into(), scenario };
    let seed = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let sim_cfg = SimConfig {
        clock: ClockMode::Manual,
        start_time_ms: Some(T0),
        events: vec![UniverseEvent::NewListing { symbol: "SIMNEWUSDT".into(), at_ms: LISTING_AT }],
        scenarios: vec![
            assign("SIM001USDT", Scenario::Pump { start_ms: PUMP_AT, duration_ms: 60_000, magnitude_bps: 800 }),
            assign(
                "SIM002USDT",
                Scenario::PumpAndDump { start_ms: PND_AT, pump_ms: 40_000, dump_ms: 20_000, magnitude_bps: 1_200 },
            ),
            assign("SIM003USDT", Scenario::SpoofWalls { every_ms: 8_000 }),
            assign("SIM004USDT", Scenario::AbsorbingWall { start_ms: 10_000, repeat_ms: 60_000 }),
            assign("SIM005USDT", Scenario::NewsShock { at_ms: CRASH_AT, jump_bps: -600 }),
            assign("SIM006USDT", Scenario::NewsShock { at_ms: JUMP_AT, jump_bps: 900 }),
        ],
        ..SimConfig::demo(seed)
    };
    let sim = SimExchange::start(sim_cfg).await.unwrap();
    let rest = PublicRest::new(&sim.rest_url()).unwrap();
    let insts = rest.instruments_linear().await.unwrap();
    let mut cfg = Config::default();
    cfg.universe.prime_top_n = 0;
    let mut engine = Engine::new(
        CorePipeline::new(Arc::new(cfg)),
        FrozenClock,
        DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 },
    );
    let mut seq = 0u64;
    let mut records: Vec<Rec> = Vec::new();
    let mut run = |engine: &mut Engine<CorePipeline, FrozenClock>, now: i64, kind: EventKind| -> Vec<Output> {
        seq += 1;
        let out = engine.on_event(&Event::new(seq, EventTime::local(now), kind));
        for o in &out.items {
            if let Output::Record(r) = o {
                if let Some(s) = &r.symbol {
                    let ts = r.body["ts_ms"].as_i64().unwrap_or(now);
                    records.push(Rec { symbol: s.to_string(), ts, body: r.body.clone() });
                }
            }
        }
        out.items
    };
    run(&mut engine, T0, EventKind::Feed { connection: 0, state: FeedState::Connected });
    let out = run(&mut engine, T0, EventKind::Universe(insts));
    let subs: Vec<Subscription> = out
        .iter()
        .filter_map(|o| if let Output::Feed(FeedCommand::Subscribe(v)) = o { Some(v.clone()) } else { None })
        .flatten()
        .map(|(s, d)| Subscription::new(s, d))
        .collect();
    assert_eq!(subs.len(), 50);

    let (tx, mut rx) = mpsc::channel::<Event>(200_000);
    let clock = sim.clone();
    let cancel = CancellationToken::new();
    let feed = PublicFeed::new(FeedConfig::new(&sim.ws_public_url()))
        .with_time_source(Arc::new(move || clock.now_ms()))
        .start(subs, tx, cancel.clone());
    // Wait for the snapshots.
    let mut got = 0;
    while got < 50 {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(ev)) => {
                if matches!(ev.kind, EventKind::Book(_)) {
                    got += 1;
                }
                run(&mut engine, ev.time.recv_ms, ev.kind);
            }
            other => panic!("feed stalled before snapshots: {other:?}"),
        }
    }

    // 190 s of exchange time, 100 ms per step; a timer event every simulated second. The news
    // shocks come with an operator's news flag (the simulator has no news feed), and the
    // universe is refreshed once after the listing.
    let steps = 1_900u64;
    for step in 1..=steps {
        sim.advance(1).await.unwrap();
        // Drain what that step produced.
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(15), rx.recv()).await {
            if !matches!(ev.kind, EventKind::Feed { .. }) {
                run(&mut engine, ev.time.recv_ms, ev.kind);
            }
        }
        let now = sim.now_ms();
        for (symbol, at) in [("SIM005USDT", CRASH_AT), ("SIM006USDT", JUMP_AT)] {
            if now == T0 + at {
                let flag = ControlCommand::SetNewsFlag {
                    symbol: Symbol::new(symbol),
                    impact: 0.8,
                    news_type: "MACRO".into(),
                    expires_ms: now + NEWS_TTL,
                };
                run(&mut engine, now, EventKind::Control(flag));
            }
        }
        if now == T0 + LISTING_AT + 1_000 {
            let insts = rest.instruments_linear().await.unwrap();
            assert!(insts.iter().any(|i| i.symbol.as_str() == "SIMNEWUSDT"), "listing not published");
            run(&mut engine, now, EventKind::Universe(insts));
        }
        if step % 10 == 0 {
            run(&mut engine, now, EventKind::Timer(TimerKind::Second));
        }
    }
    feed.shutdown();
    cancel.cancel();

    // What each symbol went through.
    let mut pump: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut first_pumping: BTreeMap<String, i64> = BTreeMap::new();
    let mut regimes: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut verdicts: BTreeMap<String, Vec<(i64, String, Side, f64)>> = BTreeMap::new();
    for r in &records {
        let s = r.symbol.clone();
        match r.body["kind"].as_str() {
            Some("PUMP") => {
                let to = r.body["to"].as_str().unwrap_or("").to_string();
                if to == "PUMPING" {
                    first_pumping.entry(s.clone()).or_insert(r.ts);
                }
                pump.entry(s).or_default().insert(to);
            }
            Some("REGIME") => {
                regimes.entry(s).or_default().push((r.ts, r.body["to"].as_str().unwrap_or("").to_string()));
            }
            Some("WALL") => {
                let outcome = r.body["outcome"].as_str().unwrap_or("").to_string();
                let side: Side = serde_json::from_value(r.body["side"].clone()).unwrap();
                let price: f64 = r.body["price"].as_str().and_then(|p| p.parse().ok()).unwrap_or(0.0);
                verdicts.entry(s).or_default().push((r.ts, outcome, side, price));
            }
            _ => {}
        }
    }
    let reached = |s: &str, st: &str| pump.get(s).is_some_and(|v| v.contains(st));
    let first_regime = |s: &str, st: &str| regimes.get(s).and_then(|v| v.iter().find(|r| r.1 == st).map(|r| r.0));
    let regime = |s: &str, st: &str| first_regime(s, st).is_some();
    let path = |s: &str| regimes.get(s).map(|v| v.iter().map(|r| r.1.as_str()).collect::<Vec<_>>()).unwrap_or_default();
    let spoofs = |s: &str| verdicts.get(s).map_or(0, |v| v.iter().filter(|w| w.1 == "SPOOFING").count());
    println!("pump states: {pump:?}");
    println!("regime paths: {:?}", regimes.keys().map(|s| (s.as_str(), path(s))).collect::<Vec<_>>());
    let secs = |from: i64, to: Option<i64>| to.map(|t| (t - from) as f64 / 1000.0);

    // Pump: PUMPING after the scenario started, and how fast; the regime follows (PUMP).
    let t_pump = first_pumping.get("SIM001USDT").copied();
    assert!(t_pump.is_some_and(|t| t >= T0 + PUMP_AT), "pump scenario not detected: {:?}", pump.get("SIM001USDT"));
    println!("pump detection delay: {:.1} s", secs(T0 + PUMP_AT, t_pump).unwrap_or(-1.0));
    assert!(first_regime("SIM001USDT", "PUMP").is_some_and(|t| t >= T0 + PUMP_AT), "{:?}", path("SIM001USDT"));
    // Pump and dump: PUMPING after its start, then DUMP; regime PUMP.
    let t_pnd = first_pumping.get("SIM002USDT").copied();
    assert!(t_pnd.is_some_and(|t| t >= T0 + PND_AT), "pump-and-dump pump phase: {:?}", pump.get("SIM002USDT"));
    assert!(reached("SIM002USDT", "DUMP"), "pump-and-dump dump phase: {:?}", pump.get("SIM002USDT"));
    assert!(first_regime("SIM002USDT", "PUMP").is_some_and(|t| t >= T0 + PND_AT), "{:?}", path("SIM002USDT"));
    println!("pump-and-dump detection delay: {:.1} s", secs(T0 + PND_AT, t_pnd).unwrap_or(-1.0));

    // Spoof walls: each wall the scenario pulled should get a SPOOFING verdict at its price
    // within 2 s, and the repeated spoofing makes the symbol MANIPULATED.
    let pulled: Vec<(i64, Side, f64)> = sim
        .scenario_events("SIM003USDT")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e.kind {
            ScenarioEventKind::WallPulled { side, price } => Some((e.ts_ms, side, price.to_f64())),
            _ => None,
        })
        .collect();
    let sim3 = verdicts.get("SIM003USDT").cloned().unwrap_or_default();
    let mut delays: Vec<i64> = pulled
        .iter()
        .filter_map(|(t, side, px)| {
            sim3.iter()
                .find(|v| v.1 == "SPOOFING" && v.2 == *side && (v.3 - px).abs() < 1e-9 && v.0 >= *t && v.0 <= t + 2_000)
                .map(|v| v.0 - t)
        })
        .collect();
    delays.sort();
    let spoof_recall = delays.len() as f64 / pulled.len().max(1) as f64;
    let t_manip = first_regime("SIM003USDT", "MANIPULATED");
    let first_pull = pulled.first().map(|p| p.0).unwrap_or(T0);
    println!(
        "spoof walls: {} pulled, {} called SPOOFING ({:.0} % recall), verdict delay after the pull median {:?} ms \
         max {:?} ms; {} SPOOFING verdicts in all; MANIPULATED {:?} s after the first pull",
        pulled.len(),
        delays.len(),
        100.0 * spoof_recall,
        delays.get(delays.len() / 2),
        delays.last(),
        spoofs("SIM003USDT"),
        secs(first_pull, t_manip)
    );
    assert!(pulled.len() >= 10, "the scenario pulled {} walls", pulled.len());
    assert!(spoof_recall >= 0.5, "pulled spoof walls recognised: {}/{}", delays.len(), pulled.len());
    assert!(t_manip.is_some(), "spoof walls: {:?}", path("SIM003USDT"));
    // The absorbing wall: eaten → ABSORBING, never MANIPULATED.
    let sim4 = verdicts.get("SIM004USDT").cloned().unwrap_or_default();
    let consumed = sim
        .scenario_events("SIM004USDT")
        .unwrap_or_default()
        .iter()
        .filter(|e| matches!(e.kind, ScenarioEventKind::WallConsumed { .. }))
        .count();
    let absorbing = sim4.iter().filter(|v| v.1 == "ABSORBING").count();
    println!(
        "absorbing wall: {consumed} eaten, {absorbing} ABSORBING verdicts, {} SPOOFING; regimes {:?}",
        spoofs("SIM004USDT"),
        path("SIM004USDT")
    );
    assert!(consumed >= 1 && absorbing >= 1, "absorbing wall: {consumed} eaten, verdicts {sim4:?}");
    assert!(!regime("SIM004USDT", "MANIPULATED"), "absorbing wall flagged as manipulation: {:?}", path("SIM004USDT"));

    // News shocks with a news flag: NEWS_DRIVEN at the shock (outranking the pump / dump the
    // jump sets off), then COOLDOWN once the flag expired.
    for (s, at) in [("SIM005USDT", CRASH_AT), ("SIM006USDT", JUMP_AT)] {
        let t_news = first_regime(s, "NEWS_DRIVEN");
        assert_eq!(t_news, Some(T0 + at), "{s}: {:?}", path(s));
        // It leaves NEWS_DRIVEN within a second of the flag's expiry (to PUMP while the jump's
        // pump phase lasts, else COOLDOWN).
        let left = regimes.get(s).and_then(|v| v.iter().find(|r| r.0 > T0 + at).cloned());
        assert!(
            left.as_ref().is_some_and(|l| l.0 >= T0 + at + NEWS_TTL && l.0 <= T0 + at + NEWS_TTL + 1_000),
            "{s}: left NEWS_DRIVEN {left:?}, path {:?}",
            path(s)
        );
        println!("news shock {s}: pump states {:?}, regimes {:?}", pump.get(s), path(s));
    }
    // The listing raises NEWS-LISTING: NEWS_DRIVEN at the next second.
    let t_listing = first_regime("SIMNEWUSDT", "NEWS_DRIVEN");
    println!("listing: NEWS_DRIVEN {:?} s after the refresh", secs(T0 + LISTING_AT + 1_000, t_listing));
    assert!(
        t_listing.is_some_and(|t| t > T0 + LISTING_AT && t <= T0 + LISTING_AT + 2_000),
        "listing: {:?}",
        path("SIMNEWUSDT")
    );

    // Calm symbols: false positives.
    let calm: Vec<String> = sim
        .symbols()
        .into_iter()
        .map(|i| i.symbol.to_string())
        .filter(|s| !SCENARIO_SYMBOLS.contains(&s.as_str()) && s != "SIMNEWUSDT")
        .collect();
    assert_eq!(calm.len(), 44);
    let fp_pump = calm.iter().filter(|s| reached(s, "PUMPING") || reached(s, "DUMP")).count();
    let fp_manip: Vec<&String> = calm.iter().filter(|s| regime(s, "MANIPULATED")).collect();
    let calm_spoofs: usize = calm.iter().map(|s| spoofs(s)).sum();
    let calm_with_spoof = calm.iter().filter(|s| spoofs(s) > 0).count();
    println!(
        "calm symbols: {} — pump false positives {fp_pump} ({:.1} %), manipulation false positives {} ({:.1} %) \
         {fp_manip:?}; SPOOFING verdicts on calm books {calm_spoofs} on {calm_with_spoof} symbols",
        calm.len(),
        100.0 * fp_pump as f64 / calm.len() as f64,
        fp_manip.len(),
        100.0 * fp_manip.len() as f64 / calm.len() as f64,
    );
    assert!(fp_pump as f64 <= 0.05 * calm.len() as f64, "pump false positives {fp_pump}/{}", calm.len());
    assert!(
        fp_manip.len() as f64 <= 0.05 * calm.len() as f64,
        "manipulation false positives {}/{}: {fp_manip:?}",
        fp_manip.len(),
        calm.len()
    );
    sim.shutdown().await;
}
