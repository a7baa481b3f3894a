//! The named tasks around the core loop, each feeding it through the one input channel (or
//! keeping the data directory in shape): retention, configuration reload, the timers, and the
//! universe refresher. Each stops when `cancel` is cancelled.

use scalper_bybit::bybit_public::PublicRest;
use scalper_bybit::clock::wall_ms;
use scalper_control::monitoring::metrics::Metrics;
use scalper_control::reload::ConfigReloader;
use scalper_core::config::paths::Paths;
use scalper_core::config::Config;
use scalper_core::domain::{EventTime, Symbol};
use scalper_core::engine::event::{Event, EventKind, TimerKind};
use scalper_core::engine::health::{HealthBoard, Status};
use scalper_storage::retention;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Retention: every `storage.retention_interval_s`, on a blocking thread, deletes what is older
/// than the retention window or over the disk budget, and publishes what it did.
pub(super) fn spawn_retention(cfg: &Config, paths: Paths, metrics: Arc<Metrics>, cancel: CancellationToken) {
    let hours = cfg.storage.retention_hours;
    let every = Duration::from_secs(cfg.storage.retention_interval_s);
    let budget = cfg.storage.max_disk_gb.saturating_mul(1_000_000_000);
    metrics.storage_budget_bytes.set(i64::try_from(budget).unwrap_or(i64::MAX));
    tokio::spawn(async move {
        loop {
            let p = paths.clone();
            let res =
                tokio::task::spawn_blocking(move || retention::run_with_budget(&p, wall_ms(), hours, Some(budget)))
                    .await;
            match res {
                Ok(r) => {
                    retention::publish(&metrics, &r);
                    tracing::info!(deleted = r.deleted_files, kept = r.kept_files, days = ?r.day_summaries, errors = r.errors.len(), "retention run");
                }
                Err(e) => {
                    metrics.retention_runs.with_label_values(&["failed"]).inc();
                    tracing::error!(error = %e, "retention run failed");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// Configuration hot reload: a validated new configuration becomes a `ConfigReload` event,
/// followed by the per-symbol overrides read again from the profile files.
pub(super) fn spawn_config_reload(
    path: PathBuf,
    paths: Paths,
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let (reloader, mut rx) = ConfigReloader::new(path, cfg, metrics.clone());
    tokio::spawn(reloader.run(cancel.clone()));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.changed() => {
                    if r.is_err() { return; }
                    let c = rx.borrow_and_update().clone();
                    let _ = tx.send(Event::new(0, EventTime::local(wall_ms()), EventKind::ConfigReload(c))).await;
                    let (p, m) = (paths.clone(), metrics.clone());
                    match tokio::task::spawn_blocking(move || crate::config::overrides::overrides_command(&p, &m)).await {
                        Ok(cmd) => {
                            let _ = tx.send(Event::new(0, EventTime::local(wall_ms()), EventKind::Control(cmd))).await;
                        }
                        Err(e) => tracing::error!(error = %e, "reading the per-symbol overrides failed; the previous ones stay"),
                    }
                }
            }
        }
    });
}

/// The timers: `Timer(Second)` every second, `Timer(Universe)` every `universe_every` seconds.
pub(super) fn spawn_timers(universe_every: u64, tx: mpsc::Sender<Event>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            n += 1;
            let now = wall_ms();
            if tx.send(Event::new(0, EventTime::local(now), EventKind::Timer(TimerKind::Second))).await.is_err() {
                return;
            }
            if n.is_multiple_of(universe_every) {
                let _ = tx.send(Event::new(0, EventTime::local(now), EventKind::Timer(TimerKind::Universe))).await;
            }
        }
    });
}

/// The universe refresher: the first round sends every ticker (so the first classification sees
/// turnover, also kept in `turnover` for the seeder), then every round the instrument list.
pub(super) fn spawn_universe_refresh(
    rest: PublicRest,
    every: Duration,
    tx: mpsc::Sender<Event>,
    health: HealthBoard,
    turnover: Arc<Mutex<HashMap<Symbol, f64>>>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        let mut first = true;
        loop {
            if first {
                // Tickers first so the first classification sees turnover.
                match rest.tickers_linear().await {
                    Ok(ts) => {
                        let now = wall_ms();
                        if let Ok(mut m) = turnover.lock() {
                            m.extend(ts.iter().filter_map(|t| Some((t.symbol.clone(), t.turnover_24h?))));
                        }
                        for t in ts {
                            let _ = tx.send(Event::new(0, EventTime::local(now), EventKind::Ticker(t))).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "initial tickers failed; classifying without turnover"),
                }
            }
            match rest.instruments_linear().await {
                Ok(list) => {
                    first = false;
                    health.set("universe", Status::Up, format!("{} instruments", list.len()));
                    let _ = tx.send(Event::new(0, EventTime::local(wall_ms()), EventKind::Universe(list))).await;
                }
                Err(e) => {
                    health.set("universe", Status::Degraded, format!("instrument refresh failed: {e}"));
                    tracing::error!(error = %e, "instrument refresh failed; keeping the current universe");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}
