//! A Bybit v5 exchange simulator on loopback: public REST market data and the public linear
//! WebSocket with Bybit's JSON shapes, error codes and sequence semantics, driven by a seeded,
//! deterministic synthetic market with scenarios and fault injection.
//!
//! It is an exchange, not a test double: connectors, the engine and `scalper demo` talk to it
//! over real sockets exactly as they would talk to `api.bybit.com` / `stream.bybit.com`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), scalper_sim::SimError> {
//! use scalper_sim::{ClockMode, SimConfig, SimExchange};
//! let sim = SimExchange::start(SimConfig { clock: ClockMode::Manual, ..SimConfig::default() }).await?;
//! println!("REST {} WS {}", sim.rest_url(), sim.ws_public_url());
//! sim.advance(10).await?; // ten market steps
//! let book = sim.book_levels("BTCUSDT");
//! sim.shutdown().await;
//! # let _ = book; Ok(()) }
//! ```
//!
//! Served on one port:
//! - `GET /v5/market/instruments-info?category=linear[&symbol][&status][&limit][&cursor]`
//!   (cursor pagination, default 500, max 1000, sorted by symbol; default status `Trading`)
//! - `GET /v5/market/orderbook?category=linear&symbol=&limit=` (1..=500, default 25; the
//!   `orderbook.1000` view with its `u`)
//! - `GET /v5/market/tickers?category=linear[&symbol=]`
//! - `GET /v5/market/time`
//! - `GET /v5/market/kline?[category=linear]&symbol=&interval=[&start][&end][&limit]` (newest
//!   first, default 200, max 1000; live minutes from the simulator's own trades, earlier minutes
//!   synthesised from the symbol's calm market, see `history.rs`)
//! - WebSocket `/v5/public/linear`: `orderbook.{1|50|200|1000}.{S}`, `publicTrade.{S}`,
//!   `tickers.{S}`, `allLiquidation.{S}`; `subscribe`/`unsubscribe`/`ping`.
//! - Private, signed (see [`SimHandle::private`]): `GET /v5/account/wallet-balance`,
//!   `/v5/position/list`, `/v5/order/realtime`, `/v5/order/history`, `/v5/execution/list`;
//!   `POST /v5/order/create|amend|cancel|cancel-all`, `/v5/position/set-leverage`,
//!   `/v5/position/trading-stop`; WebSocket `/v5/private` (`auth`, `order`, `execution`,
//!   `position`, `wallet`). Orders match against the simulator's own books.
//!
//! The market is a deterministic function of (config, step number): each symbol has its own
//! seeded RNG, and publication never consumes randomness. Timestamps are `start_time_ms +
//! step * tick_interval_ms`, so with [`ClockMode::Manual`] and a fixed `start_time_ms` every
//! byte is reproducible.

mod book;
pub mod cli;
pub mod config;
mod exchange;
mod history;
mod market;
mod prints;
mod private;
mod private_http;
mod private_ws;
mod rng;
mod server;
mod universe;
mod wire;
mod ws;

pub use config::{
    base_symbol_name, ClockMode, CrossedKind, Fault, Scenario, ScenarioAssignment, ScenarioLabel, ScheduledFault,
    SimConfig, UniverseEvent,
};
pub use private::{ApiKey, PrivateConfig, PrivateCounters, PrivateFault, SimExecutionView, SimOrderView, SimPrivate};

use exchange::{Counters, Exchange};
use scalper_core::domain::{Price, Qty, Side, Symbol, TimeMs};
use scalper_core::market::data::{Instrument, Level};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Errors of the simulator API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The configuration is inconsistent.
    #[error("invalid simulator config: {0}")]
    InvalidConfig(String),
    /// Binding the loopback port failed.
    #[error("cannot bind simulator port: {0}")]
    Bind(String),
    /// No such symbol in the universe.
    #[error("unknown symbol {0}")]
    UnknownSymbol(String),
    /// The clock is running in real time (pause it or use [`ClockMode::Manual`]).
    #[error("the simulator clock is running; pause it or use manual mode")]
    ClockRunning,
    /// Resume is meaningless in manual mode.
    #[error("the simulator clock is manual")]
    ManualClock,
    /// The simulator has been shut down.
    #[error("the simulator is shut down")]
    Shutdown,
}

/// Listing state of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Listing {
    /// Announced by a [`UniverseEvent::NewListing`], not yet listed.
    Pending,
    /// Listed, status `Trading`.
    Trading,
    /// Delisted, status `Closed`.
    Closed,
}

/// A symbol of the universe as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolInfo {
    pub symbol: Symbol,
    /// Listing state.
    pub listing: Listing,
    /// Scenario label (what detection should find).
    pub scenario: ScenarioLabel,
    /// `launchTime` published in instruments-info.
    pub launch_time_ms: TimeMs,
    /// When a [`UniverseEvent::NewListing`] lists it.
    pub listing_time_ms: Option<TimeMs>,
    /// When a [`UniverseEvent::Delisting`] closes it.
    pub delisting_time_ms: Option<TimeMs>,
}

/// A book with exact prices and sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookLevels {
    pub symbol: Symbol,
    /// Bids, best (highest) first.
    pub bids: Vec<Level>,
    /// Asks, best (lowest) first.
    pub asks: Vec<Level>,
    /// `u` of the published stream view; `None` for the simulator's own full book.
    pub update_id: Option<u64>,
    /// Cross sequence at that point.
    pub seq: u64,
    /// Simulated time of that point.
    pub ts_ms: TimeMs,
}

/// Kind of scenario wall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WallKind {
    /// Placed to be pulled before the price reaches it.
    Spoof,
    /// Placed to be eaten by trades at its price.
    Absorbing,
}

/// Something a scenario did, for tests that check detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScenarioEventKind {
    PumpStarted,
    PumpEnded,
    /// The dump of a pump-and-dump started.
    DumpStarted,
    DumpEnded,
    /// A news shock jumped the price by `bps`.
    ShockJump {
        /// Jump in basis points.
        bps: i64,
    },
    /// A wall was placed.
    WallPlaced {
        /// Book side it rests on (`Buy` = bid).
        side: Side,
        price: Price,
        /// Its extra size.
        qty: Qty,
        /// Spoof or absorbing.
        kind: WallKind,
    },
    /// A spoof wall was pulled before the price reached it.
    WallPulled {
        side: Side,
        price: Price,
    },
    /// An absorbing wall was eaten by trades.
    WallConsumed {
        side: Side,
        price: Price,
    },
    /// A wall vanished because the quotes moved through or away from it.
    WallRemoved {
        side: Side,
        price: Price,
    },
}

/// A scenario event with its simulated time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioEvent {
    /// Simulated time of the step that produced it.
    pub ts_ms: TimeMs,
    /// What happened.
    pub kind: ScenarioEventKind,
}

/// Snapshot of the simulator's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCounters {
    /// Market steps run.
    pub steps: u64,
    /// WebSocket connections accepted since start.
    pub ws_connections_opened: u64,
    /// WebSocket connections open now.
    pub ws_connections_open: u64,
    /// Frames written to sockets.
    pub ws_messages_sent: u64,
    /// Orderbook frames queued (snapshots and deltas, per subscriber).
    pub book_frames: u64,
    /// publicTrade frames queued.
    pub trade_frames: u64,
    /// tickers frames queued.
    pub ticker_frames: u64,
    /// allLiquidation frames queued.
    pub liquidation_frames: u64,
    /// Acks, pongs and error replies queued.
    pub control_frames: u64,
    /// Market frames not sent because of a silence fault.
    pub frames_suppressed: u64,
    /// Orderbook deltas lost to [`Fault::SkipUpdateId`].
    pub gaps_injected: u64,
    /// Malformed frames sent.
    pub malformed_sent: u64,
    /// Crossed book frames sent (per subscriber).
    pub crossed_sent: u64,
    /// Connections dropped because their queue was full.
    pub slow_consumer_drops: u64,
    /// Connections closed for sending nothing for too long.
    pub idle_drops: u64,
    /// Connections closed by [`Fault::DropConnections`].
    pub forced_drops: u64,
    pub pongs_sent: u64,
    /// Pings left unanswered by [`Fault::RefusePongs`].
    pub pongs_refused: u64,
    /// Subscribe requests refused.
    pub subscribe_failures: u64,
    /// REST requests received.
    pub rest_requests: u64,
    /// REST requests answered by an injected fault.
    pub rest_faults: u64,
}

/// State shared by the market task, the HTTP handlers and the connections.
pub(crate) struct Shared {
    ex: Mutex<Exchange>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    step_tx: watch::Sender<u64>,
    private: Mutex<private::PrivateState>,
}

impl Shared {
    /// Locks the exchange (a poisoned lock is still usable: the state is plain data).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Exchange> {
        self.ex.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Cmd {
    Advance(u64, oneshot::Sender<Result<u64, SimError>>),
    Pause(oneshot::Sender<()>),
    Resume(oneshot::Sender<Result<(), SimError>>),
}

/// Entry point: starts simulators.
pub struct SimExchange;

impl SimExchange {
    /// Validates `cfg`, binds `127.0.0.1:{cfg.port}` and starts the HTTP/WS server and the
    /// market clock. Must be called inside a Tokio runtime.
    pub async fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
        cfg.validate()?;
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await.map_err(|e| SimError::Bind(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| SimError::Bind(e.to_string()))?;
        let t0 = cfg.start_time_ms.unwrap_or_else(scalper_bybit::clock::wall_ms);
        let counters = Arc::new(Counters::default());
        let private = Mutex::new(private::PrivateState::new(PrivateConfig::default(), cfg.seed));
        let ex = Exchange::new(cfg, t0, counters.clone());
        let (step_tx, _) = watch::channel(0u64);
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared { ex: Mutex::new(ex), counters, cancel: cancel.clone(), step_tx, private });
        let app = server::routes().merge(private_http::routes()).with_state(shared.clone());
        let stop = cancel.clone();
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let market = tokio::spawn(run_market(shared.clone(), cmd_rx));
        Ok(SimHandle { shared, addr, cmds: cmd_tx, tasks: Arc::new(Mutex::new(vec![server, market])) })
    }
}

/// When the next step is due (`None` when the clock is not running).
fn next_due(ex: &Exchange) -> Option<tokio::time::Instant> {
    match ex.clock.mode {
        ClockMode::RealTime { speed } if !ex.clock.paused => {
            let ahead = (ex.step + 1).saturating_sub(ex.clock.base_step) as f64;
            let ms = ahead * ex.cfg.tick_interval_ms as f64 / speed;
            Some(tokio::time::Instant::from_std(ex.clock.base_real + Duration::from_secs_f64(ms / 1000.0)))
        }
        _ => None,
    }
}

async fn run_market(sh: Arc<Shared>, mut cmds: mpsc::Receiver<Cmd>) {
    let mut cmds_open = true;
    loop {
        let due = next_due(&sh.lock());
        tokio::select! {
            _ = sh.cancel.cancelled() => break,
            cmd = cmds.recv(), if cmds_open => match cmd {
                None => cmds_open = false,
                Some(Cmd::Advance(n, reply)) => {
                    if !sh.lock().clock.paused {
                        let _ = reply.send(Err(SimError::ClockRunning));
                        continue;
                    }
                    let mut last = sh.lock().step;
                    for _ in 0..n {
                        last = {
                            let mut ex = sh.lock();
                            ex.step();
                            ex.step
                        };
                        private::on_step(&sh);
                        sh.step_tx.send_replace(last);
                        // Let connection tasks drain their queues between steps.
                        tokio::task::yield_now().await;
                    }
                    let _ = reply.send(Ok(last));
                }
                Some(Cmd::Pause(reply)) => {
                    sh.lock().clock.paused = true;
                    let _ = reply.send(());
                }
                Some(Cmd::Resume(reply)) => {
                    let r = {
                        let mut ex = sh.lock();
                        if matches!(ex.clock.mode, ClockMode::Manual) {
                            Err(SimError::ManualClock)
                        } else {
                            ex.clock.paused = false;
                            ex.clock.base_real = Instant::now();
                            ex.clock.base_step = ex.step;
                            Ok(())
                        }
                    };
                    let _ = reply.send(r);
                }
            },
            _ = async { if let Some(d) = due { tokio::time::sleep_until(d).await } }, if due.is_some() => {
                // Run every step that is due (catching up if the machine was slow).
                for _ in 0..1_000 {
                    let stepped = {
                        let mut ex = sh.lock();
                        match next_due(&ex) {
                            Some(d) if d <= tokio::time::Instant::now() => {
                                ex.step();
                                Some(ex.step)
                            }
                            _ => None,
                        }
                    };
                    match stepped {
                        Some(s) => {
                            private::on_step(&sh);
                            sh.step_tx.send_replace(s);
                        }
                        None => break,
                    }
                }
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Handle of a running simulator: addresses, clock and fault control, introspection and
/// shutdown. Cheap to clone; all clones control the same simulator.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cmds: mpsc::Sender<Cmd>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").field("addr", &self.addr).finish()
    }
}

impl SimHandle {
    /// Listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// REST base URL, e.g. `http://127.0.0.1:40123`.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Public linear WebSocket URL, e.g. `ws://127.0.0.1:40123/v5/public/linear`.
    pub fn ws_public_url(&self) -> String {
        format!("ws://{}/v5/public/linear", self.addr)
    }

    /// The private (account) surface: API keys, faults, account introspection.
    pub fn private(&self) -> SimPrivate {
        SimPrivate { shared: self.shared.clone(), addr: self.addr }
    }

    /// Endpoints for the connectors' configuration.
    pub fn endpoints(&self) -> scalper_core::config::Endpoints {
        scalper_core::config::Endpoints::simulator(self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Exchange> {
        self.shared.lock()
    }

    async fn command<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, SimError> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(make(tx)).await.map_err(|_| SimError::Shutdown)?;
        rx.await.map_err(|_| SimError::Shutdown)
    }

    // ------------------------------------------------------------------------------- clock

    /// Runs `steps` market steps now and returns the step count reached. Only when the clock
    /// is [`ClockMode::Manual`] or paused.
    pub async fn advance(&self, steps: u64) -> Result<u64, SimError> {
        self.command(|tx| Cmd::Advance(steps, tx)).await?
    }

    /// Stops the real-time clock (simulated time freezes; frames stop).
    pub async fn pause(&self) -> Result<(), SimError> {
        self.command(Cmd::Pause).await
    }

    /// Restarts a paused real-time clock from the current step.
    pub async fn resume(&self) -> Result<(), SimError> {
        self.command(Cmd::Resume).await?
    }

    /// Waits until at least `step` steps have run.
    pub async fn wait_for_step(&self, step: u64) -> Result<u64, SimError> {
        let mut rx = self.shared.step_tx.subscribe();
        let v = rx.wait_for(|s| *s >= step).await.map_err(|_| SimError::Shutdown)?;
        Ok(*v)
    }

    /// Steps run so far.
    pub fn step_count(&self) -> u64 {
        self.lock().step
    }

    /// The simulator's current time (ms since epoch).
    pub fn now_ms(&self) -> TimeMs {
        self.lock().now_ms()
    }

    /// Simulated time of step 0.
    pub fn start_time_ms(&self) -> TimeMs {
        self.lock().t0_ms
    }

    /// The configuration it runs with.
    pub fn config(&self) -> SimConfig {
        self.lock().cfg.clone()
    }

    // ------------------------------------------------------------------------------ faults

    /// Applies a fault now. Errors on an unknown symbol.
    pub fn inject(&self, fault: Fault) -> Result<(), SimError> {
        self.lock().apply_fault(&fault)
    }

    /// [`Fault::DropConnections`].
    pub fn drop_connections(&self) {
        let _ = self.inject(Fault::DropConnections);
    }

    /// [`Fault::Silence`].
    pub fn set_silent(&self, on: bool) {
        let _ = self.inject(Fault::Silence { on });
    }

    /// [`Fault::SkipUpdateId`].
    pub fn skip_update_id(&self, symbol: &str) -> Result<(), SimError> {
        self.inject(Fault::SkipUpdateId { symbol: symbol.to_string() })
    }

    /// [`Fault::MalformedFrame`].
    pub fn send_malformed_frame(&self) {
        let _ = self.inject(Fault::MalformedFrame);
    }

    /// [`Fault::CrossedBook`].
    pub fn send_crossed_book(&self, symbol: &str, kind: CrossedKind) -> Result<(), SimError> {
        self.inject(Fault::CrossedBook { symbol: symbol.to_string(), kind })
    }

    /// [`Fault::RestHttpError`].
    pub fn rest_http_errors(&self, status: u16, count: u32) {
        let _ = self.inject(Fault::RestHttpError { status, count });
    }

    /// [`Fault::RestRetCode`].
    pub fn rest_ret_code_errors(&self, ret_code: i64, count: u32) {
        let _ = self.inject(Fault::RestRetCode { ret_code, count });
    }

    /// [`Fault::RefusePongs`].
    pub fn set_refuse_pongs(&self, on: bool) {
        let _ = self.inject(Fault::RefusePongs { on });
    }

    /// [`Fault::RestartBook`].
    pub fn restart_book(&self, symbol: &str) -> Result<(), SimError> {
        self.inject(Fault::RestartBook { symbol: symbol.to_string() })
    }

    // ------------------------------------------------------------------------ introspection

    /// The simulator's own full book of a trading symbol (exact prices and sizes).
    pub fn book_levels(&self, symbol: &str) -> Option<BookLevels> {
        self.lock().book_levels(symbol)
    }

    /// The last published view of `orderbook.{depth}.{symbol}` (what a client that applied every
    /// frame holds) with its `u`. `depth` is 1, 50, 200 or 1000.
    pub fn published_book(&self, symbol: &str, depth: usize) -> Option<BookLevels> {
        self.lock().published_book(symbol, depth)
    }

    /// Current `u` of `orderbook.{depth}.{symbol}`.
    pub fn update_id(&self, symbol: &str, depth: usize) -> Option<u64> {
        self.lock().update_id(symbol, depth)
    }

    /// Every symbol with its listing state and scenario label.
    pub fn symbols(&self) -> Vec<SymbolInfo> {
        self.lock().symbol_infos()
    }

    /// Scenario label of a symbol.
    pub fn scenario(&self, symbol: &str) -> Option<ScenarioLabel> {
        self.symbols().into_iter().find(|s| s.symbol.as_str() == symbol).map(|s| s.scenario)
    }

    /// Scenario events of a symbol so far (bounded history).
    pub fn scenario_events(&self, symbol: &str) -> Option<Vec<ScenarioEvent>> {
        self.lock().scenario_events(symbol)
    }

    /// Instrument rules of a symbol with its current status.
    pub fn instrument(&self, symbol: &str) -> Option<Instrument> {
        self.lock().instrument(symbol)
    }

    /// Topics with at least one subscriber, sorted.
    pub fn subscriptions(&self) -> Vec<String> {
        self.lock().subscriptions()
    }

    /// Counter snapshot.
    pub fn counters(&self) -> SimCounters {
        let c = &self.shared.counters;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        SimCounters {
            steps: g(&c.steps),
            ws_connections_opened: g(&c.ws_connections_opened),
            ws_connections_open: g(&c.ws_connections_open),
            ws_messages_sent: g(&c.ws_messages_sent),
            book_frames: g(&c.book_frames),
            trade_frames: g(&c.trade_frames),
            ticker_frames: g(&c.ticker_frames),
            liquidation_frames: g(&c.liquidation_frames),
            control_frames: g(&c.control_frames),
            frames_suppressed: g(&c.frames_suppressed),
            gaps_injected: g(&c.gaps_injected),
            malformed_sent: g(&c.malformed_sent),
            crossed_sent: g(&c.crossed_sent),
            slow_consumer_drops: g(&c.slow_consumer_drops),
            idle_drops: g(&c.idle_drops),
            forced_drops: g(&c.forced_drops),
            pongs_sent: g(&c.pongs_sent),
            pongs_refused: g(&c.pongs_refused),
            subscribe_failures: g(&c.subscribe_failures),
            rest_requests: g(&c.rest_requests),
            rest_faults: g(&c.rest_faults),
        }
    }

    /// Stops the clock, closes every connection and the listener, and waits for the tasks.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }
}
