//! Baseline seeding at the edge of `scalper run`: when the core subscribes a symbol (first
//! universe, a new listing, a depth change), this task reads the baselines an earlier run
//! persisted in `data/profiles/<SYMBOL>.json` and fetches its recent one-minute klines, and
//! queues them into the core as [`EventKind::Baselines`] and [`EventKind::History`] — after
//! the `Universe` event that made the symbol known, so the core takes them.
//!
//! It runs beside the core and the feed and never makes them wait: requests are queued without
//! blocking, Prime symbols first and then by 24 h turnover; at most `concurrency` symbols are in
//! flight and kline requests pass a token bucket ([`SeederConfig::rate_per_s`], burst
//! [`SeederConfig::burst`]) well inside Bybit's public limit of 600 requests per 5 s per IP
//! (<https://bybit-exchange.github.io/docs/v5/rate-limit>): the default 20/s seeds 550 symbols
//! in about 30 s using a sixth of that budget, leaving the rest to instrument refreshes and book
//! resyncs. A failed fetch is logged and counted (`scalper_baseline_seeds_total`) and the symbol
//! simply warms up from live data. Offline tools (replay, backtest, import) never run this.

use scalper_bybit::bybit_private::limiter::Bucket;
use scalper_bybit::bybit_public::PublicRest;
use scalper_control::monitoring::metrics::Metrics;
use scalper_core::config::paths::Paths;
use scalper_core::domain::{EventTime, Symbol, TimeMs};
use scalper_core::engine::event::{Event, EventKind};
use scalper_core::features::baseline::BaselineState;
use scalper_core::market::data::KlineHistory;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Settings of the seeder.
#[derive(Debug, Clone, PartialEq)]
pub struct SeederConfig {
    /// One-minute klines fetched per symbol (0 = profiles only). At most 1000.
    pub seed_klines: u16,
    /// A persisted state older than this is not sent (the core would refuse it), seconds.
    pub restore_max_age_s: i64,
    /// Symbols seeded at the same time (>= 1).
    pub concurrency: usize,
    /// Kline requests per second, sustained (> 0).
    pub rate_per_s: f64,
    /// Kline requests that may go at once after a quiet period (>= 1).
    pub burst: f64,
}

impl SeederConfig {
    /// From the baseline settings: 8 symbols in flight, 20 requests/s, bursts of 20.
    pub fn from_config(cfg: &scalper_core::config::Config) -> SeederConfig {
        let b = &cfg.intel.baseline;
        SeederConfig {
            seed_klines: b.seed_klines,
            restore_max_age_s: b.restore_max_age_s,
            concurrency: 8,
            rate_per_s: 20.0,
            burst: 20.0,
        }
    }
}

/// One symbol to seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRequest {
    pub symbol: Symbol,
    /// Prime symbols go first.
    pub prime: bool,
    /// 24 h turnover, USDT (0 when unknown); higher goes first after Prime.
    pub turnover: f64,
}

/// Handle to queue symbols; dropping every handle lets the task finish its queue and stop.
#[derive(Debug, Clone)]
pub struct SeederHandle {
    tx: mpsc::UnboundedSender<Vec<SeedRequest>>,
}

impl SeederHandle {
    /// Queues symbols without waiting (ignored once the task stopped).
    pub fn request(&self, batch: Vec<SeedRequest>) {
        if !batch.is_empty() {
            let _ = self.tx.send(batch);
        }
    }
}

/// What seeding one symbol gave, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    profile: &'static str,
    kline: Option<&'static str>,
}

struct Ctx {
    cfg: SeederConfig,
    rest: Arc<PublicRest>,
    paths: Paths,
    tx: mpsc::Sender<Event>,
    bucket: Mutex<Bucket>,
    now: fn() -> TimeMs,
}

/// Starts the seeder. Events go to `tx` (the core's input queue).
pub fn spawn(
    cfg: SeederConfig,
    rest: Arc<PublicRest>,
    paths: Paths,
    tx: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> SeederHandle {
    let (req_tx, rx) = mpsc::unbounded_channel();
    let bucket = Mutex::new(Bucket::with_burst(cfg.rate_per_s, cfg.burst, tokio::time::Instant::now()));
    let ctx = Arc::new(Ctx { cfg, rest, paths, tx, bucket, now: scalper_bybit::clock::wall_ms });
    tokio::spawn(run(ctx, rx, metrics, cancel));
    SeederHandle { tx: req_tx }
}

#[derive(Debug, Default)]
struct Round {
    symbols: usize,
    profile_ok: usize,
    profile_stale: usize,
    profile_error: usize,
    kline_ok: usize,
    kline_error: usize,
    started: Option<std::time::Instant>,
}

async fn run(
    ctx: Arc<Ctx>,
    mut rx: mpsc::UnboundedReceiver<Vec<SeedRequest>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    // Highest priority last (popped first).
    let mut pending: Vec<SeedRequest> = Vec::new();
    let mut queued: HashSet<Symbol> = HashSet::new();
    let mut inflight: JoinSet<Outcome> = JoinSet::new();
    let mut open = true;
    let mut round = Round::default();
    loop {
        while inflight.len() < ctx.cfg.concurrency.max(1) {
            let Some(r) = pending.pop() else { break };
            queued.remove(&r.symbol);
            round.started.get_or_insert_with(std::time::Instant::now);
            inflight.spawn(seed_one(ctx.clone(), r.symbol));
        }
        if !open && pending.is_empty() && inflight.is_empty() {
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                inflight.abort_all();
                return;
            }
            batch = rx.recv(), if open => match batch {
                Some(b) => {
                    for r in b {
                        if queued.insert(r.symbol.clone()) {
                            pending.push(r);
                        }
                    }
                    pending.sort_by(|a, b| {
                        (a.prime, a.turnover).partial_cmp(&(b.prime, b.turnover)).unwrap_or(std::cmp::Ordering::Equal)
                    });
                }
                None => open = false,
            },
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok(o) = done {
                    round.symbols += 1;
                    metrics.baseline_seeds.with_label_values(&["profile", o.profile]).inc();
                    match o.profile {
                        "ok" => round.profile_ok += 1,
                        "stale" => round.profile_stale += 1,
                        "error" => round.profile_error += 1,
                        _ => {}
                    }
                    if let Some(k) = o.kline {
                        metrics.baseline_seeds.with_label_values(&["kline", k]).inc();
                        if k == "ok" { round.kline_ok += 1 } else { round.kline_error += 1 }
                    }
                }
                if pending.is_empty() && inflight.is_empty() {
                    report(&std::mem::take(&mut round));
                }
            }
        }
    }
}

fn report(r: &Round) {
    let took_s = r.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    if r.kline_error > 0 || r.profile_error > 0 {
        tracing::warn!(
            symbols = r.symbols,
            from_profile = r.profile_ok,
            profile_stale = r.profile_stale,
            profile_errors = r.profile_error,
            kline_ok = r.kline_ok,
            kline_errors = r.kline_error,
            took_s,
            "baseline seeding done with failures (those symbols warm up from live data)"
        );
    } else {
        tracing::info!(
            symbols = r.symbols,
            from_profile = r.profile_ok,
            profile_stale = r.profile_stale,
            kline_ok = r.kline_ok,
            took_s,
            "baseline seeding done"
        );
    }
}

/// The persisted baselines of a symbol: `Ok(None)` when the file or its `baselines` is absent.
fn read_profile_baselines(paths: &Paths, symbol: &Symbol) -> Result<Option<BaselineState>, String> {
    let file = paths.profile_file(symbol);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    match v.get("baselines") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(b) => {
            serde_json::from_value(b.clone()).map(Some).map_err(|e| format!("{}: baselines: {e}", file.display()))
        }
    }
}

async fn send(ctx: &Ctx, kind: EventKind) -> bool {
    ctx.tx.send(Event::new(0, EventTime::local((ctx.now)()), kind)).await.is_ok()
}

async fn seed_one(ctx: Arc<Ctx>, symbol: Symbol) -> Outcome {
    let paths = ctx.paths.clone();
    let sym = symbol.clone();
    let read = tokio::task::spawn_blocking(move || read_profile_baselines(&paths, &sym))
        .await
        .unwrap_or_else(|e| Err(format!("profile read task failed: {e}")));
    let profile = match read {
        Ok(None) => "missing",
        Ok(Some(st)) => {
            let now = (ctx.now)();
            if !st.is_fresh(now, ctx.cfg.restore_max_age_s) {
                let age_s = now.saturating_sub(st.updated_ms) / 1000;
                tracing::debug!(symbol = %symbol, age_s, "persisted baselines too old; not restored");
                "stale"
            } else if send(&ctx, EventKind::Baselines { symbol: symbol.clone(), state: st }).await {
                "ok"
            } else {
                "error"
            }
        }
        Err(e) => {
            tracing::debug!(symbol = %symbol, error = %e, "persisted baselines unreadable");
            "error"
        }
    };
    if ctx.cfg.seed_klines == 0 {
        return Outcome { profile, kline: None };
    }
    Bucket::take(&ctx.bucket).await;
    let kline = match ctx.rest.klines_1m(&symbol, ctx.cfg.seed_klines.min(1000)).await {
        Ok(klines) => {
            tracing::debug!(symbol = %symbol, klines = klines.len(), "klines fetched for the baseline seed");
            let h = KlineHistory { symbol: symbol.clone(), interval_min: 1, klines };
            if send(&ctx, EventKind::History(h)).await {
                "ok"
            } else {
                "error"
            }
        }
        Err(e) => {
            tracing::debug!(symbol = %symbol, error = %e, "kline fetch for the baseline seed failed");
            "error"
        }
    };
    Outcome { profile, kline: Some(kline) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_klines_is_validated() {
        use scalper_core::features::baseline::BaselineConfig;
        let check = |n: u16| {
            let mut e = Vec::new();
            BaselineConfig { seed_klines: n, ..BaselineConfig::default() }.validate("intel.baseline", &mut e);
            e
        };
        assert!(check(0).is_empty(), "0 disables the fetch");
        assert!(check(120).is_empty() && check(1_000).is_empty());
        assert!(check(30)[0].contains("seed_klines"), "min_klines fetched minus the open one cannot warm");
        assert!(check(1_001)[0].contains("[0, 1000]"));
        let cfg = scalper_core::config::Config::default();
        let s = SeederConfig::from_config(&cfg);
        assert_eq!((s.seed_klines, s.restore_max_age_s), (120, cfg.intel.baseline.restore_max_age_s));
        // Well inside Bybit's 600 requests / 5 s per IP.
        assert!(s.rate_per_s * 5.0 + s.burst <= 600.0 / 4.0);
    }

    #[test]
    fn profile_baselines_missing_absent_or_broken() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let s = Symbol::new("BTCUSDT");
        assert_eq!(read_profile_baselines(&paths, &s), Ok(None));
        std::fs::create_dir_all(paths.profiles_dir()).unwrap();
        std::fs::write(paths.profile_file(&s), r#"{"symbol":"BTCUSDT","overrides":{}}"#).unwrap();
        assert_eq!(read_profile_baselines(&paths, &s), Ok(None));
        std::fs::write(paths.profile_file(&s), "{not json").unwrap();
        assert!(read_profile_baselines(&paths, &s).is_err());
        let st = BaselineState { updated_ms: 5, ..BaselineState::default() };
        let body = serde_json::json!({"symbol": "BTCUSDT", "baselines": st});
        std::fs::write(paths.profile_file(&s), body.to_string()).unwrap();
        assert_eq!(read_profile_baselines(&paths, &s), Ok(Some(st)));
    }
}
