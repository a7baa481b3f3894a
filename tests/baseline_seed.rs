//! Baseline seeding over real loopback sockets: the simulator's `/v5/market/kline` in Bybit's
//! shape, the connector that reads it, and the engine that seeds its baselines from klines at
//! start and from the profiles an earlier run persisted.

use scalper::config::paths::{DataKind, Paths};
use scalper::config::Config;
use scalper::connectors::bybit_public::{BybitError, PublicRest};
use scalper::connectors::simulator::{ClockMode, SimConfig, SimExchange, SimHandle};
use scalper::domain::Symbol;
use scalper::engine::runtime::{self, LiveEngine, Probe, RunOptions};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_767_225_600_000 + 25_000; // 2026-01-01T00:00:25Z

async fn get_json(sim: &SimHandle, query: &str) -> Value {
    let r = reqwest::get(format!("{}/v5/market/kline?{query}", sim.rest_url())).await.expect("GET");
    assert_eq!(r.status(), 200, "{query}");
    r.json().await.expect("JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_klines_have_bybit_shape_and_order_and_the_connector_reads_them() {
    let sim = SimExchange::start(SimConfig {
        seed: 11,
        symbols: 4,
        tick_interval_ms: 100,
        clock: ClockMode::Manual,
        start_time_ms: Some(T0),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    // 150 s of market: three live minutes (00:00 partly, 00:01, 00:02 still open).
    sim.advance(1_500).await.unwrap();
    let now = sim.now_ms();

    // The raw answer: envelope, strings, newest first, default limit 200, open minute included.
    let v = get_json(&sim, "category=linear&symbol=BTCUSDT&interval=1").await;
    assert_eq!(v["retCode"], 0);
    assert_eq!(v["retMsg"], "OK");
    assert!(v["retExtInfo"].is_object());
    assert_eq!(v["time"].as_i64(), Some(now));
    assert_eq!(v["result"]["category"], "linear");
    assert_eq!(v["result"]["symbol"], "BTCUSDT");
    let list = v["result"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 200);
    let starts: Vec<i64> = list
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            assert_eq!(r.len(), 7);
            assert!(r.iter().all(Value::is_string), "every field is a string: {r:?}");
            r[0].as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(starts[0], now - now.rem_euclid(60_000), "the newest row is the still-open minute");
    assert!(starts.windows(2).all(|w| w[0] - w[1] == 60_000), "newest first, one minute apart");
    // Same state, same bytes (seeded, deterministic).
    assert_eq!(get_json(&sim, "category=linear&symbol=BTCUSDT&interval=1").await["result"], v["result"]);
    // The open minute's close is the last trade of the simulator's tape.
    let last = sim.book_levels("BTCUSDT").unwrap();
    let close: f64 = list[0][4].as_str().unwrap().parse().unwrap();
    let (bid, ask) = (last.bids[0].price.to_f64(), last.asks[0].price.to_f64());
    assert!(close > bid * 0.995 && close < ask * 1.005, "close {close} near the book {bid}/{ask}");
    // start/end/limit and an aggregated interval.
    let v =
        get_json(&sim, &format!("category=linear&symbol=SIM001USDT&interval=5&end={}&limit=3", T0 - 3_600_000)).await;
    let l = v["result"]["list"].as_array().unwrap();
    assert_eq!(l.len(), 3);
    let s0: i64 = l[0][0].as_str().unwrap().parse().unwrap();
    assert_eq!(s0 % 300_000, 0);
    assert!(s0 <= T0 - 3_600_000);

    // Daily candles: UTC-aligned, newest first, over the 30 synthesised days and the live one.
    let t = Instant::now();
    let v = get_json(&sim, "symbol=ETHUSDT&interval=D&limit=1000").await;
    let l = v["result"]["list"].as_array().unwrap();
    assert!((30..=32).contains(&l.len()), "{} daily candles", l.len());
    let days: Vec<i64> = l.iter().map(|r| r[0].as_str().unwrap().parse().unwrap()).collect();
    assert!(days.iter().all(|d| d % 86_400_000 == 0) && days.windows(2).all(|w| w[0] - w[1] == 86_400_000));
    assert!(t.elapsed() < Duration::from_secs(10), "30 days of minutes took {:?}", t.elapsed());

    // Bad params: Bybit's retCode 10001 with a message, HTTP 200.
    for (q, msg) in [
        ("category=linear&symbol=BTCUSDT", "interval"),
        ("category=linear&symbol=BTCUSDT&interval=7", "interval"),
        ("category=linear&symbol=BTCUSDT&interval=1&limit=0", "limit"),
        ("category=linear&symbol=BTCUSDT&interval=1&limit=1001", "limit"),
        ("category=linear&symbol=BTCUSDT&interval=1&start=9&end=3", "start"),
        ("category=linear&interval=1", "symbol"),
        ("category=linear&symbol=NOPEUSDT&interval=1", "Not supported symbols"),
        ("category=spot&symbol=BTCUSDT&interval=1", "category"),
    ] {
        let v = get_json(&sim, q).await;
        assert_eq!(v["retCode"], 10001, "{q}: {v}");
        assert!(v["retMsg"].as_str().unwrap().contains(msg), "{q}: {v}");
    }

    // The connector: oldest first, the still-open minute dropped, exact values.
    let rest = PublicRest::new(&sim.rest_url()).unwrap();
    let ks = rest.klines_1m(&Symbol::new("BTCUSDT"), 120).await.unwrap();
    assert_eq!(ks.len(), 119);
    assert!(ks.windows(2).all(|w| w[1].start_ms - w[0].start_ms == 60_000));
    assert_eq!(ks.last().unwrap().start_ms, starts[1], "newest closed minute");
    let row = &list[1];
    let k = ks.last().unwrap();
    assert_eq!(k.close.to_string(), scalper::domain::Price::parse(row[4].as_str().unwrap()).unwrap().to_string());
    assert_eq!(k.volume, scalper::domain::Qty::parse(row[5].as_str().unwrap()).unwrap());
    // Bad symbol: the API error, not retried.
    let e = rest.klines_1m(&Symbol::new("NOPEUSDT"), 120).await.unwrap_err();
    assert_eq!(e, BybitError::Api { code: 10001, msg: "Not supported symbols".into() });
    // Injected rate limits (HTTP 429, then retCode 10006) are retried and the fetch succeeds.
    let before = rest.stats().snapshot();
    sim.rest_http_errors(429, 1);
    sim.rest_ret_code_errors(10006, 1);
    let ks2 = rest.klines_1m(&Symbol::new("BTCUSDT"), 120).await.unwrap();
    assert_eq!(ks2, ks);
    let after = rest.stats().snapshot();
    assert_eq!(after.rest_rate_limited - before.rest_rate_limited, 2);
    assert!(sim.counters().rest_faults >= 2);
    sim.shutdown().await;
}

struct Run {
    probes: mpsc::Sender<Probe>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    metrics: Arc<scalper::monitoring::metrics::Metrics>,
}

impl Run {
    fn start(sim: &SimHandle, dir: &Path, edit: impl FnOnce(&mut Config)) -> Run {
        let mut cfg = Config { endpoints: sim.endpoints(), ..Config::default() };
        cfg.server.http_addr = "127.0.0.1:0".into();
        cfg.server.grpc_addr = "127.0.0.1:0".into();
        edit(&mut cfg);
        let (probes, probe_rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let opts = RunOptions {
            probes: Some(probe_rx),
            ..RunOptions::new(Arc::new(cfg), Paths::with_data_dir(dir), cancel.clone())
        };
        let metrics = opts.metrics.clone();
        let task = tokio::spawn(runtime::run(opts));
        Run { probes, cancel, task, metrics }
    }

    async fn probe<T: Send + 'static>(&self, f: impl FnOnce(&LiveEngine) -> T + Send + 'static) -> T {
        let (tx, rx) = oneshot::channel();
        self.probes
            .send(Box::new(move |e| {
                let _ = tx.send(f(e));
            }))
            .await
            .expect("engine running");
        rx.await.expect("probe answered")
    }

    /// (symbol, volatility warm, fully warm per the feature snapshot) of every tracked symbol.
    async fn warmth(&self) -> Vec<(Symbol, bool, bool)> {
        self.probe(|e| {
            e.pipeline()
                .symbols()
                .map(|(s, m)| (s.clone(), m.intel.baselines().volatility_warm(), m.intel.snapshot().baseline_warm))
                .collect()
        })
        .await
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// `BASELINE_SEEDED` records of `symbol` in the event log.
fn seeded_records(dir: &Path, symbol: &str) -> Vec<Value> {
    let d = Paths::with_data_dir(dir).symbol_dir(DataKind::Events, Some(&Symbol::new(symbol)));
    let mut out = Vec::new();
    for f in std::fs::read_dir(d).into_iter().flatten().flatten() {
        for line in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                if v.to_string().contains("BASELINE_SEEDED") {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// The field `k` of a record, wherever the store nested the body.
fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).or_else(|| v.get("body").and_then(|b| b.get(k))).or_else(|| v.get("data").and_then(|b| b.get(k)))
}

fn sim_config() -> SimConfig {
    SimConfig {
        seed: 5,
        symbols: 8,
        tick_interval_ms: 50,
        clock: ClockMode::RealTime { speed: 1.0 },
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_seeds_volatility_baselines_from_klines_within_seconds() {
    let listing =
        scalper::connectors::simulator::UniverseEvent::NewListing { symbol: "SIMNEWUSDT".into(), at_ms: 3_000 };
    let sim = SimExchange::start(SimConfig { events: vec![listing], ..sim_config() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = Run::start(&sim, dir.path(), |c| c.universe.refresh_s = 1);
    // Every symbol's volatility baseline is warm long before the 60 s live warm-up could do it.
    let deadline = started + Duration::from_secs(15);
    loop {
        let w: Vec<_> = run.warmth().await.into_iter().filter(|(s, _, _)| s.as_str() != "SIMNEWUSDT").collect();
        if w.len() >= 8 && w.iter().all(|(_, vol, _)| *vol) {
            break;
        }
        assert!(Instant::now() < deadline, "volatility baselines not seeded within 15 s: {w:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    // The seed came from klines, logged per symbol, and its σ matches the simulator's market.
    let deadline = Instant::now() + Duration::from_secs(5);
    let rec = loop {
        let recs = seeded_records(dir.path(), "BTCUSDT");
        if let Some(r) = recs.into_iter().find(|r| field(r, "source").and_then(Value::as_str) == Some("kline")) {
            break r;
        }
        assert!(Instant::now() < deadline, "no BASELINE_SEEDED kline record for BTCUSDT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(field(&rec, "taken"), Some(&Value::Bool(true)), "{rec}");
    assert!(field(&rec, "klines").and_then(Value::as_u64).unwrap_or(0) >= 100, "{rec}");
    // BTC: 60 % a year → σ(60 s) ≈ 0.6 / √(525 960) ≈ 0.083 %.
    let sigma = field(&rec, "sigma_60s_pct").and_then(Value::as_f64).unwrap_or(0.0);
    assert!(sigma > 0.04 && sigma < 0.2, "σ(60 s) of BTCUSDT seeded at {sigma} %");
    let ok = run.metrics.baseline_seeds.with_label_values(&["kline", "ok"]).get();
    assert!(ok >= 8, "kline seeds counted: {ok}");
    assert_eq!(run.metrics.baseline_seeds.with_label_values(&["kline", "error"]).get(), 0);
    // A listing during the run is seeded the same way; Bybit has no history for it yet, so its
    // few klines are not taken and it warms up from live data.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rec = loop {
        if let Some(r) = seeded_records(dir.path(), "SIMNEWUSDT").into_iter().next() {
            break r;
        }
        assert!(Instant::now() < deadline, "the new listing was never seeded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(field(&rec, "source").and_then(Value::as_str), Some("kline"), "{rec}");
    assert_eq!(field(&rec, "taken"), Some(&Value::Bool(false)), "{rec}");
    assert!(field(&rec, "klines").and_then(Value::as_u64).unwrap_or(99) < 30, "{rec}");
    assert!(run.metrics.baseline_seeds.with_label_values(&["kline", "ok"]).get() >= 9);
    // Every seed reached the core after the universe that lists its symbol.
    assert_eq!(run.probe(|e| e.pipeline().counters().unknown_symbol_events).await, 0);
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_restores_baselines_from_the_profiles_and_is_warm_at_once() {
    let sim = SimExchange::start(sim_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A short warm-up so the first run gets warm (and persisted) quickly; no kline seed, so what
    // the second run knows comes from the profiles alone.
    let short = |c: &mut Config| {
        std::sync::Arc::make_mut(&mut c.intel.baseline).warmup_s = 10;
        std::sync::Arc::make_mut(&mut c.intel.baseline).seed_klines = 0;
    };
    let first = Run::start(&sim, dir.path(), short);
    let paths = Paths::with_data_dir(dir.path());
    let with_baselines = |paths: &Paths| -> Vec<String> {
        sim.symbols()
            .into_iter()
            .map(|s| s.symbol)
            .filter(|s| {
                std::fs::read_to_string(paths.profile_file(s))
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .is_some_and(|v| v.get("baselines").is_some_and(|b| !b.is_null()))
            })
            .map(|s| s.as_str().to_string())
            .collect()
    };
    // Each warm symbol is persisted once a minute (in its own second of the minute).
    let deadline = Instant::now() + Duration::from_secs(100);
    let persisted = loop {
        let p = with_baselines(&paths);
        if p.len() >= 3 {
            break p;
        }
        assert!(Instant::now() < deadline, "no profile baselines persisted: {p:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    first.stop().await;

    let second = Run::start(&sim, dir.path(), short);
    let started = Instant::now();
    // The persisted symbols are fully warm (every baseline, FeatureSnapshot.baseline_warm) within
    // a few seconds, while live data alone needs warmup_s = 10 s.
    let deadline = started + Duration::from_secs(6);
    loop {
        let w = second.warmth().await;
        let warm: Vec<&str> = w.iter().filter(|(_, _, full)| *full).map(|(s, _, _)| s.as_str()).collect();
        if persisted.iter().all(|s| warm.contains(&s.as_str())) {
            break;
        }
        assert!(Instant::now() < deadline, "restored symbols {persisted:?} not warm within 6 s: {w:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(9), "warm before live data could have done it");
    let ok = second.metrics.baseline_seeds.with_label_values(&["profile", "ok"]).get();
    assert!(ok >= persisted.len() as u64, "profile restores counted: {ok}");
    assert_eq!(second.metrics.baseline_seeds.with_label_values(&["kline", "ok"]).get(), 0, "no kline fetch");
    // The event log says where it came from.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let taken = seeded_records(dir.path(), &persisted[0]).iter().any(|r| {
            field(r, "source").and_then(Value::as_str) == Some("profile")
                && field(r, "taken") == Some(&Value::Bool(true))
        });
        if taken {
            break;
        }
        assert!(Instant::now() < deadline, "no BASELINE_SEEDED profile record taken for {}", persisted[0]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeder_goes_prime_first_by_turnover_within_its_rate_and_counts_every_outcome() {
    use scalper::engine::event::EventKind;
    use scalper::engine::seeder::{self, SeedRequest, SeederConfig};
    use scalper::features::baseline::BaselineState;
    let sim = SimExchange::start(SimConfig { seed: 3, symbols: 60, clock: ClockMode::Manual, ..SimConfig::default() })
        .await
        .unwrap();
    sim.advance(5).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::with_data_dir(dir.path());
    std::fs::create_dir_all(paths.profiles_dir()).unwrap();
    let now = runtime::wall_ms();
    let profile = |updated_ms| serde_json::json!({"symbol": "X", "baselines": BaselineState { updated_ms, ..BaselineState::default() }});
    std::fs::write(paths.profile_file(&Symbol::new("BTCUSDT")), profile(now - 1_000).to_string()).unwrap();
    std::fs::write(paths.profile_file(&Symbol::new("ETHUSDT")), profile(now - 7 * 3_600_000).to_string()).unwrap();
    std::fs::write(paths.profile_file(&Symbol::new("SIM001USDT")), "{not json").unwrap();
    let metrics = Arc::new(scalper::monitoring::metrics::Metrics::new());
    let (tx, mut rx) = mpsc::channel(1_000);
    let cfg =
        SeederConfig { seed_klines: 50, restore_max_age_s: 6 * 3_600, concurrency: 1, rate_per_s: 20.0, burst: 5.0 };
    let rest = Arc::new(PublicRest::new(&sim.rest_url()).unwrap());
    let h = seeder::spawn(cfg, rest, paths, tx, metrics.clone(), CancellationToken::new());
    // Queued in symbol order; Prime (BTC, ETH) first, then by turnover (SIM060 highest).
    let symbols: Vec<Symbol> = sim.symbols().into_iter().map(|s| s.symbol).collect();
    let batch = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| SeedRequest {
            symbol: s.clone(),
            prime: matches!(s.as_str(), "BTCUSDT" | "ETHUSDT"),
            turnover: i as f64,
        })
        .collect();
    let started = Instant::now();
    h.request(batch);
    drop(h);
    let mut order = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("seeding finishes") {
        match ev.kind {
            EventKind::Baselines { symbol, .. } => order.push(format!("profile:{symbol}")),
            EventKind::History(h) => {
                assert_eq!(h.interval_min, 1);
                assert_eq!(h.klines.len(), 49, "{}: 50 fetched, the open minute dropped", h.symbol);
                order.push(h.symbol.as_str().to_string());
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    let took = started.elapsed();
    // 60 kline requests at 20/s after a burst of 5: at least 2.75 s.
    assert!(took >= Duration::from_millis(2_600), "60 requests in {took:?}: faster than the rate");
    assert_eq!(sim.counters().rest_requests, 60);
    // Both Prime: ETHUSDT (turnover 1) before BTCUSDT (0); a profile before its klines.
    let mut want = vec!["ETHUSDT".to_string(), "profile:BTCUSDT".into(), "BTCUSDT".into()];
    let mut others: Vec<&Symbol> = symbols.iter().filter(|s| !matches!(s.as_str(), "BTCUSDT" | "ETHUSDT")).collect();
    others.reverse();
    want.extend(others.into_iter().map(|s| s.as_str().to_string()));
    assert_eq!(order, want);
    let get = |src: &str, r: &str| metrics.baseline_seeds.with_label_values(&[src, r]).get();
    assert_eq!((get("profile", "ok"), get("profile", "stale"), get("profile", "error")), (1, 1, 1));
    assert_eq!(get("profile", "missing"), 57);
    assert_eq!((get("kline", "ok"), get("kline", "error")), (60, 0));
    sim.shutdown().await;
}
