//! The async edges around the core for `scalper run` / `scalper demo`. [`run`] wires them: the
//! store and its health watch, the named tasks of `tasks` (retention, config reload, timers,
//! universe refresh), the public feed behind the shedder, the seeder, the private connector, the
//! HTTP API and gRPC, and finally the `core_loop`, the only place the engine is touched. Every
//! source feeds it through one bounded channel, and the loop stamps each event's sequence number.

use scalper_bybit::bybit_private::venue::{BybitVenue, BybitVenueConfig};
use scalper_bybit::bybit_private::{Credentials, CredentialsError, PrivateRest, PrivateRestConfig};
use scalper_bybit::bybit_public::{FeedConfig, FeedHandle, PublicFeed, PublicRest, RestConfig, Subscription};
pub use scalper_bybit::clock::wall_ms;
use scalper_bybit::clock::MonotonicClock;
use scalper_control::monitoring::metrics::Metrics;
use scalper_core::config::paths::Paths;
use scalper_core::config::Config;
use scalper_core::domain::{EventTime, TimeMs};
use scalper_core::engine::core::CorePipeline;
use scalper_core::engine::event::{Event, EventKind};
use scalper_core::engine::health::{HealthBoard, Status};
use scalper_core::engine::output::FeedCommand;
use scalper_core::engine::{DegradedPolicy, Engine};
use scalper_storage::json_store::Store;
use scalper_storage::recorder::Recorder;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

mod core_loop;
mod tasks;

use core_loop::CoreLoop;
pub use scalper_core::engine::snapshot::EngineSnapshot;

/// The engine type the runtime drives.
pub type LiveEngine = Engine<CorePipeline, MonotonicClock>;

/// A read-only look at the engine, run by the core loop between two events (tests, API).
pub type Probe = Box<dyn FnOnce(&LiveEngine) + Send>;

/// Options for [`run`].
pub struct RunOptions {
    /// Configuration in force at start.
    pub config: Arc<Config>,
    /// Config file to watch for hot reload.
    pub config_path: Option<PathBuf>,
    /// Resolved paths.
    pub paths: Paths,
    /// Cancelled to stop everything (flushes the store).
    pub shutdown: CancellationToken,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    pub health: HealthBoard,
    /// Receives the HTTP address once bound (tests use port 0).
    pub http_bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
    /// Receives each published snapshot.
    pub snapshot_tx: Option<watch::Sender<EngineSnapshot>>,
    /// Control-plane secrets (`None`: from the environment).
    pub security: Option<scalper_control::auth::Security>,
    /// Receives the gRPC address once bound.
    pub grpc_bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
    /// Probes answered between events.
    pub probes: Option<mpsc::Receiver<Probe>>,
    /// Bybit API credentials for the private connector (`None`: from the environment, see
    /// [`Credentials::from_env`]; none there either: no private connector, LIVE unavailable).
    pub credentials: Option<Credentials>,
}

impl RunOptions {
    /// Options with every optional part left out: no config file to watch, control secrets and
    /// API credentials from the environment, no address reports, no snapshot channel, no probes.
    /// Set the rest with struct-update syntax.
    pub fn new(config: Arc<Config>, paths: Paths, shutdown: CancellationToken) -> RunOptions {
        RunOptions {
            config,
            config_path: None,
            paths,
            shutdown,
            metrics: Arc::new(Metrics::new()),
            health: HealthBoard::default(),
            http_bound: None,
            snapshot_tx: None,
            security: None,
            grpc_bound: None,
            probes: None,
            credentials: None,
        }
    }
}

/// Runs the engine until `shutdown` is cancelled.
pub async fn run(mut opts: RunOptions) -> anyhow::Result<()> {
    let cfg = opts.config.clone();
    let metrics = opts.metrics.clone();
    let health = opts.health.clone();
    let shutdown = opts.shutdown.clone();
    let paths = opts.paths.clone();
    tracing::info!(mode = cfg.mode.as_str(), data_dir = %paths.data_dir().display(), rest = %cfg.endpoints.effective().rest_url, "starting engine");
    // Control-plane exposure (also in `Config::validate`; repeated for configurations built in
    // code), checked before anything starts.
    let exposure = cfg.control.problems(&cfg.server);
    if !exposure.is_empty() {
        anyhow::bail!("control plane refused to start:\n  - {}", exposure.join("\n  - "));
    }
    let grpc_opts =
        scalper_control::grpc::GrpcOptions::from_config(&cfg.control).map_err(|e| anyhow::anyhow!("{e}"))?;
    // On this thread: the core loop below runs on it too (the caller's `block_on`), and glibc
    // serves each thread from its own arena. Only where the heap keeps it (`engine.huge_pages`
    // in effect): otherwise malloc hands it back at once.
    if cfg.engine.prefault_mib > 0 {
        let malloc = crate::memory::malloc_setup();
        let t0 = std::time::Instant::now();
        match crate::memory::prefault_if_kept(cfg.engine.prefault_mib) {
            Some(p) => {
                let took_ms = t0.elapsed().as_millis() as u64;
                tracing::info!(bytes = p.bytes, huge_pages = p.huge, took_ms, %malloc, "heap pre-faulted (engine.prefault_mib)");
            }
            None => tracing::info!(mib = cfg.engine.prefault_mib, %malloc,
                "heap not pre-faulted: this malloc set-up hands freed memory back (engine.huge_pages off or not in effect)"),
        }
    }

    // Storage and retention.
    let store = Store::start(paths.clone(), cfg.storage.queue_capacity, cfg.storage.batch_max, metrics.clone());
    let store_h = store.handle();
    health.set("storage", Status::Up, "writer running");
    metrics.component_up.with_label_values(&["storage"]).set(1);
    tasks::spawn_retention(&cfg, paths.clone(), metrics.clone(), shutdown.clone());

    // Input channel into the core.
    // Validation bounds it; the clamp keeps an unvalidated configuration from panicking here.
    let input_capacity = cfg.engine.input_queue_capacity.clamp(16, scalper_core::config::MAX_QUEUE_CAPACITY as usize);
    let (in_tx, in_rx) = mpsc::channel::<Event>(input_capacity);
    spawn_storage_watch(store_h.clone(), in_tx.clone(), health.clone(), metrics.clone(), shutdown.clone());

    // Config hot reload.
    if let Some(path) = opts.config_path.clone() {
        tasks::spawn_config_reload(path, paths.clone(), cfg.clone(), metrics.clone(), in_tx.clone(), shutdown.clone());
    }
    health.set("config", Status::Up, "loaded");

    // Timers.
    tasks::spawn_timers(cfg.universe.refresh_s.max(1), in_tx.clone(), shutdown.clone());

    // Public market data: REST universe refresher + WS feed.
    let ep = cfg.endpoints.effective();
    let rest = PublicRest::with_config(RestConfig::new(&ep.rest_url), metrics.connector_stats())
        .map_err(|e| anyhow::anyhow!("cannot build the REST client: {e}"))?
        .with_latency(metrics.rest_latency.with_label_values(&[scalper_control::monitoring::metrics::PUBLIC_REST]));
    // Baseline seeding (profiles, then klines) for every symbol the core subscribes; its own
    // client so the universe refresher never waits behind it.
    let seed_rest = PublicRest::with_config(RestConfig::new(&ep.rest_url), metrics.connector_stats())
        .map_err(|e| anyhow::anyhow!("cannot build the REST client: {e}"))?
        .with_latency(metrics.rest_latency.with_label_values(&[scalper_control::monitoring::metrics::PUBLIC_REST]));
    let seeder = crate::engine::seeder::spawn(
        crate::engine::seeder::SeederConfig::from_config(&cfg),
        Arc::new(seed_rest),
        paths.clone(),
        in_tx.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    // 24 h turnover of the first ticker sweep: seeding order after Prime.
    let turnover: Arc<std::sync::Mutex<std::collections::HashMap<scalper_core::domain::Symbol, f64>>> = Arc::default();
    let mut feed_cfg = FeedConfig::from_config(&cfg);
    feed_cfg.url = ep.ws_public_url.clone();
    // Feed → shedding queue → core: under load the oldest Wild (then Normal) market events are
    // shed; Prime symbols and non-market events never are.
    let (feed_tx, feed_rx) = mpsc::channel::<Event>(input_capacity);
    let (cat_tx, cat_rx) = watch::channel(std::collections::BTreeMap::new());
    spawn_shedder(feed_rx, in_tx.clone(), cat_rx, &cfg, metrics.clone(), store_h.clone());
    let feed: FeedHandle =
        PublicFeed::new(feed_cfg).with_stats(metrics.connector_stats()).start(Vec::new(), feed_tx, shutdown.clone());
    tasks::spawn_universe_refresh(
        rest,
        Duration::from_secs(cfg.universe.refresh_s.max(1)),
        in_tx.clone(),
        health.clone(),
        turnover.clone(),
        shutdown.clone(),
    );

    // Private connector (LIVE): only with API credentials.
    let credentials = match opts.credentials.take() {
        Some(c) => Some(c),
        None => match Credentials::from_env() {
            Ok(c) => Some(c),
            Err(CredentialsError::Missing) => None,
            // Credentials were given but are unusable (bad file permissions, half set): refuse.
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        },
    };
    let venue = match credentials {
        Some(creds) => {
            let private =
                PrivateRest::with_config(PrivateRestConfig::new(&ep.rest_url), creds, metrics.private_stats())
                    .map_err(|e| anyhow::anyhow!("cannot build the private REST client: {e}"))?
                    .with_latency(
                        metrics.rest_latency.with_label_values(&[scalper_control::monitoring::metrics::PRIVATE]),
                    );
            let mut vcfg = BybitVenueConfig::new(&ep.ws_private_url);
            vcfg.reconcile_interval = Duration::from_millis(cfg.engine.live_reconcile_interval_ms);
            vcfg.queue_capacity = cfg.engine.venue_queue_capacity;
            tracing::info!(rest = %ep.rest_url, ws = %ep.ws_private_url, "private connector starting (LIVE possible after confirmation + PIN)");
            health.set("private", Status::Degraded, "connecting");
            Some(BybitVenue::start(Arc::new(private), vcfg, in_tx.clone(), shutdown.clone()))
        }
        None => {
            tracing::info!("no Bybit API credentials: private connector off, LIVE unavailable");
            None
        }
    };

    // HTTP API (+ /metrics).
    let (snap_tx, snap_rx) = match opts.snapshot_tx.take() {
        Some(tx) => {
            let rx = tx.subscribe();
            (tx, rx)
        }
        None => watch::channel(EngineSnapshot::default()),
    };
    let (view_tx, view_rx) = watch::channel(Arc::new(scalper_control::view::ControlView::default()));
    let bus = scalper_control::bus::EventBus::default();
    let read = scalper_control::ReadState {
        metrics: metrics.clone(),
        health: health.clone(),
        snapshot: snap_rx.clone(),
        view: view_rx.clone(),
        events: bus.clone(),
        paths: Some(paths.clone()),
    };
    let api = read.clone();
    let listener = tokio::net::TcpListener::bind(&cfg.server.http_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind HTTP {}: {e}", cfg.server.http_addr))?;
    let http_addr = listener.local_addr()?;
    tracing::info!(%http_addr, "HTTP API and /metrics listening");
    if !http_addr.ip().is_loopback() {
        tracing::warn!(%http_addr, "the read-only HTTP API and /metrics are served in plaintext beyond loopback (control.http_allow_remote)");
    }
    if let Some(tx) = opts.http_bound.take() {
        let _ = tx.send(http_addr);
    }
    tokio::spawn(scalper_control::http::serve(
        listener,
        scalper_control::http::api_router(api),
        scalper_control::http::HttpLimits::from_config(&cfg.control),
        metrics.clone(),
        shutdown.clone(),
    ));

    // gRPC control plane: mutations become events into the core.
    let security = match opts.security.take() {
        Some(s) => s,
        None => scalper_control::auth::Security::from_env().map_err(|e| anyhow::anyhow!("{e}"))?,
    }
    .with_limits(scalper_control::auth::AuthLimits::from_config(&cfg.control));
    let grpc_addr: std::net::SocketAddr =
        cfg.server.grpc_addr.parse().map_err(|e| anyhow::anyhow!("bad server.grpc_addr: {e}"))?;
    let ctl = scalper_control::ControlState::new(read, in_tx.clone(), security)
        .with_config_path(opts.config_path.clone())
        .with_startup_config(cfg.clone())
        .with_live(venue.is_some());
    let grpc = scalper_control::grpc::serve_with(ctl, grpc_addr, grpc_opts, shutdown.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind gRPC {grpc_addr}: {e}"))?;
    tracing::info!(grpc_addr = %grpc.local_addr, "gRPC control plane listening");
    if let Some(tx) = opts.grpc_bound.take() {
        let _ = tx.send(grpc.local_addr);
    }
    scalper_control::spawn_observer(metrics.clone(), snap_rx, view_rx, shutdown.clone());

    // The core loop.
    drop(in_tx);
    let engine =
        Engine::new(CorePipeline::new(cfg.clone()), MonotonicClock::new(), DegradedPolicy::from_config(&cfg.engine));
    let seq: u64 = 0;
    let recorder = Recorder::new(cfg.storage.record_raw, store_h.clone(), &cfg, wall_ms());
    // The operator's blacklist and news flags of the last run come back first, as the control
    // commands that set them (recorded, so replay sees them too).
    let (operator, restore) = scalper_storage::operator_state::OperatorState::load(&paths, wall_ms(), &metrics);
    let last_snapshot_ms: TimeMs = 0;
    let (_no_probe_tx, no_probe_rx) = mpsc::channel::<Probe>(1);
    let probes = opts.probes.take().unwrap_or(no_probe_rx);
    // Reports the loop itself owes the core (a venue command that could not even be queued).
    let mut loopback: std::collections::VecDeque<Event> = std::collections::VecDeque::new();
    loopback.extend(restore.into_iter().map(|c| Event::new(0, EventTime::local(wall_ms()), EventKind::Control(c))));
    // Then the per-symbol overrides of the profile files (read before the loop starts).
    let overrides = crate::config::overrides::overrides_command(&paths, &metrics);
    loopback.push_back(Event::new(0, EventTime::local(wall_ms()), EventKind::Control(overrides)));
    CoreLoop {
        engine,
        seq,
        recorder,
        operator,
        last_snapshot_ms,
        probes,
        _no_probe_tx,
        loopback,
        in_rx,
        ahead: std::collections::VecDeque::with_capacity(2),
        shutdown: shutdown.clone(),
        store: store_h,
        metrics,
        health,
        bus,
        turnover,
        seeder,
        feed: &feed,
        venue,
        snap_tx,
        cat_tx,
        view_tx,
    }
    .run()
    .await;
    feed.shutdown();
    store.shutdown().await;
    Ok(())
}

/// While DOWN, the store is asked to retry a write this often.
pub const STORAGE_PROBE_EVERY: Duration = Duration::from_secs(2);

/// Mirrors the store writer's health onto the health board (`storage`), `scalper_component_up`
/// and, as an [`EventKind::StorageHealth`] input, into the core (which refuses new entries while
/// storage is DOWN). While DOWN it keeps probing the store so that recovery is noticed.
pub fn spawn_storage_watch(
    store: scalper_storage::json_store::StoreHandle,
    tx: mpsc::Sender<Event>,
    health: HealthBoard,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut rx = store.health();
    tokio::spawn(async move {
        let mut up = true;
        loop {
            let gone = tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.changed() => r.is_err(),
                _ = tokio::time::sleep(STORAGE_PROBE_EVERY), if !up => {
                    store.probe();
                    continue;
                }
            };
            let mut h = rx.borrow_and_update().clone();
            if gone && h.up {
                h = scalper_storage::json_store::StoreHealth { up: false, detail: "writer gone".into() };
            }
            if h.up != up {
                up = h.up;
                let st = if up { Status::Up } else { Status::Down };
                health.set("storage", st, h.detail.clone());
                metrics.component_up.with_label_values(&["storage"]).set(i64::from(up));
                let ev = Event::new(0, EventTime::local(wall_ms()), EventKind::StorageHealth { up, detail: h.detail });
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            if gone {
                return;
            }
        }
    });
}

fn spawn_shedder(
    mut feed_rx: mpsc::Receiver<Event>,
    in_tx: mpsc::Sender<Event>,
    mut cat_rx: watch::Receiver<
        std::collections::BTreeMap<scalper_core::domain::Symbol, scalper_core::domain::Category>,
    >,
    cfg: &Config,
    metrics: Arc<Metrics>,
    store: scalper_storage::json_store::StoreHandle,
) {
    let mut prime: Vec<scalper_core::domain::Symbol> =
        cfg.universe.prime_symbols.iter().map(|s| scalper_core::domain::Symbol::new(s)).collect();
    for s in ["BTCUSDT", "ETHUSDT"] {
        let s = scalper_core::domain::Symbol::new(s);
        if !prime.contains(&s) {
            prime.push(s);
        }
    }
    let mut q = scalper_core::engine::backpressure::ShedQueue::new(cfg.engine.shed_high_water, prime);
    tokio::spawn(async move {
        let mut feed_open = true;
        let mut last = q.stats();
        let mut last_report_ms: TimeMs = 0;
        loop {
            tokio::select! {
                biased;
                ev = feed_rx.recv(), if feed_open => match ev {
                    Some(e) => { q.push(e); }
                    None => feed_open = false,
                },
                r = cat_rx.changed() => {
                    if r.is_ok() {
                        let c = cat_rx.borrow_and_update().clone();
                        q.set_categories(c);
                    }
                }
                permit = in_tx.reserve(), if !q.is_empty() => match permit {
                    Ok(p) => { if let Some(e) = q.pop() { p.send(e); } }
                    Err(_) => return,
                },
                else => return,
            }
            metrics.queue_depth.with_label_values(&["shed_queue"]).set(q.len() as i64);
            let st = q.stats();
            if st != last {
                metrics.shed_events.with_label_values(&["wild"]).inc_by(st.wild - last.wild);
                metrics.shed_events.with_label_values(&["normal"]).inc_by(st.normal - last.normal);
                let now = wall_ms();
                if now - last_report_ms >= 1_000 {
                    last_report_ms = now;
                    tracing::warn!(
                        wild = st.wild,
                        normal = st.normal,
                        backlog = q.len(),
                        "backpressure: shedding market events"
                    );
                    let _ = store.try_append(
                        scalper_core::config::paths::DataKind::Events,
                        None,
                        now,
                        &serde_json::json!({"event": "SHED", "wild_total": st.wild, "normal_total": st.normal, "backlog": q.len()}),
                    );
                }
                last = st;
            }
        }
    });
}

async fn dispatch_feed(feed: &FeedHandle, cmd: FeedCommand) {
    let res = match cmd {
        FeedCommand::Subscribe(subs) => {
            feed.subscribe(subs.into_iter().map(|(s, d)| Subscription::new(s, d)).collect()).await
        }
        FeedCommand::Unsubscribe(syms) => feed.unsubscribe(syms).await,
        FeedCommand::Resync(s) => feed.resync(s).await,
    };
    if let Err(e) = res {
        tracing::error!(error = %e, "feed command failed (feed stopped?)");
    }
}

/// Metric label of an event kind.
pub fn event_label(k: &EventKind) -> &'static str {
    match k {
        EventKind::Book(_) => "book",
        EventKind::Trades(_) => "trades",
        EventKind::Ticker(_) => "ticker",
        EventKind::Liquidation(_) => "liquidation",
        EventKind::Universe(_) => "universe",
        EventKind::Feed { .. } => "feed",
        EventKind::Timer(_) => "timer",
        EventKind::Control(_) => "control",
        EventKind::ConfigReload(_) => "config_reload",
        EventKind::BookShed(_) => "book_shed",
        EventKind::Venue(_) => "venue",
        EventKind::Degraded { .. } => "degraded",
        EventKind::History(_) => "history",
        EventKind::Baselines { .. } => "baselines",
        EventKind::StorageHealth { .. } => "storage_health",
    }
}
