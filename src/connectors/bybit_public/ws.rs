//! Bybit v5 public WebSocket feed spread over several connections.
//!
//! [`PublicFeed::start`] assigns symbols to connections (at most
//! [`FeedConfig::symbols_per_connection`] each) and runs one task per connection plus a small
//! supervisor that routes run-time commands. Each connection:
//!
//! - subscribes `orderbook.{depth}.{S}`, `publicTrade.{S}`, `tickers.{S}` and
//!   `allLiquidation.{S}` in requests of at most [`FeedConfig::topics_per_request`] topics, each
//!   with its own `req_id`, and checks every acknowledgement: a rejected or missing ack is
//!   logged, counted, retried topic by topic and finally reported in
//!   [`FeedHandle::failed_topics`];
//! - sends `{"op":"ping"}` every [`FeedConfig::ping_interval`]; no pong within
//!   [`FeedConfig::pong_timeout`], or no market data within [`FeedConfig::data_timeout`], drops
//!   the connection;
//! - reconnects with exponential backoff and jitter and then resubscribes every topic (which
//!   makes Bybit send fresh book snapshots);
//! - turns frames into [`Event`]s (`seq: 0`, `EventTime { exchange_ms: Some(ts), recv_ms }`
//!   with `recv_ms` from the injected [`TimeSource`]) sent through a bounded channel;
//! - reports its state as `EventKind::Feed { connection, state }` (connection 0 = aggregate, the
//!   worst state of all connections).
//!
//! Malformed frames are counted and logged (rate-limited) and never end the connection.
//! Values Bybit never sends are refused by the decoders' sanity checks
//! ([`super::messages::parse_ws_frame_checked`], with the frame's receive time bounding trade
//! times by [`FeedConfig::max_trade_ahead`]), counted in [`ConnectorStats::refused`] and logged
//! throttled; a book frame refused whole is reported to the core as
//! `EventKind::BookShed(symbol)` (a book update was lost before the core: it invalidates the
//! book and asks for a resync, exactly as for deltas shed under load).

use super::messages::{
    parse_ws_frame_checked, topic_liquidations, topic_orderbook, topic_tickers, topic_trades, MarketData, OpRequest,
    OpResponse, Refusals, Sanity, WsMessage,
};
use super::{backoff_delay, jitter_seed, ConnectorStats, StatsSnapshot, SystemTimeSource, TimeSource};
use crate::config::Config;
use crate::domain::{EventTime, Symbol, TimeMs};
use crate::engine::event::{Event, EventKind, FeedState};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Minimum time between two "malformed frame" warnings of one connection.
const MALFORMED_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// One symbol to stream, with its order-book depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subscription {
    /// Symbol.
    pub symbol: Symbol,
    /// Order-book depth (Bybit linear: 1, 50, 200, 1000).
    pub depth: u16,
}

impl Subscription {
    /// New subscription.
    pub fn new(symbol: Symbol, depth: u16) -> Self {
        Subscription { symbol, depth }
    }
}

/// Which topics are subscribed per symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSet {
    /// `orderbook.{depth}.{S}`.
    pub orderbook: bool,
    /// `publicTrade.{S}`.
    pub trades: bool,
    /// `tickers.{S}`.
    pub tickers: bool,
    /// `allLiquidation.{S}`.
    pub liquidations: bool,
}

impl Default for StreamSet {
    fn default() -> Self {
        StreamSet { orderbook: true, trades: true, tickers: true, liquidations: true }
    }
}

impl StreamSet {
    /// Topics of one symbol, in a fixed order (book, trades, tickers, liquidations).
    pub fn topics(&self, symbol: &Symbol, depth: u16) -> Vec<String> {
        let mut t = Vec::with_capacity(4);
        if self.orderbook {
            t.push(topic_orderbook(depth, symbol));
        }
        if self.trades {
            t.push(topic_trades(symbol));
        }
        if self.tickers {
            t.push(topic_tickers(symbol));
        }
        if self.liquidations {
            t.push(topic_liquidations(symbol));
        }
        t
    }
}

/// Settings of the public feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// Public linear WS URL (`wss://stream.bybit.com/v5/public/linear` or the simulator's).
    pub url: String,
    /// Max symbols per connection (>= 1).
    pub symbols_per_connection: usize,
    /// Max topics per subscribe / unsubscribe request (Bybit: 10).
    pub topics_per_request: usize,
    /// Topics per symbol.
    pub streams: StreamSet,
    /// Interval between `{"op":"ping"}` heartbeats (Bybit recommends 20 s).
    pub ping_interval: Duration,
    /// A ping unanswered for this long drops the connection.
    pub pong_timeout: Duration,
    /// No market data for this long (while something is subscribed) drops the connection: a
    /// socket that still answers pings but sends no data is a stale feed.
    pub data_timeout: Duration,
    /// A subscribe / unsubscribe request unanswered for this long counts as failed.
    pub ack_timeout: Duration,
    /// Timeout of the TCP + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
    /// First reconnect backoff (doubles per consecutive failure, with jitter).
    pub backoff_base: Duration,
    /// Largest reconnect backoff.
    pub backoff_max: Duration,
    /// Consecutive failed attempts after which a connection reports DOWN (instead of
    /// RECONNECTING); it keeps retrying at the capped backoff.
    pub down_after_failures: u32,
    /// Attempts per topic before it is given up and reported in `failed_topics`.
    pub max_subscribe_attempts: u32,
    /// Capacity of the command channels.
    pub command_capacity: usize,
    /// Seed of the jitter generator (`None`: derived from the wall clock).
    pub jitter_seed: Option<u64>,
    /// A public trade whose exchange time `T` is more than this after the local receive time is
    /// refused (see [`crate::config::UniverseConfig::trade_max_ahead_ms`]).
    pub max_trade_ahead: Duration,
}

impl FeedConfig {
    /// Production defaults for `url`: 50 symbols and 10 topics per request, ping 20 s, pong
    /// timeout 10 s, data timeout 60 s, ack timeout 10 s, connect timeout 10 s, backoff
    /// 500 ms → 30 s, DOWN after 5 failures, 3 subscribe attempts, trades up to 5 s ahead of
    /// receipt.
    pub fn new(url: &str) -> Self {
        FeedConfig {
            url: url.to_string(),
            symbols_per_connection: 50,
            topics_per_request: 10,
            streams: StreamSet::default(),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            data_timeout: Duration::from_secs(60),
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            down_after_failures: 5,
            max_subscribe_attempts: 3,
            command_capacity: 256,
            jitter_seed: None,
            max_trade_ahead: Duration::from_secs(5),
        }
    }

    /// Defaults with the URL of `cfg.endpoints` (effective) and the per-connection / per-request
    /// limits of `cfg.universe`.
    pub fn from_config(cfg: &Config) -> Self {
        let mut f = FeedConfig::new(&cfg.endpoints.effective().ws_public_url);
        f.symbols_per_connection = cfg.universe.symbols_per_connection.max(1);
        f.topics_per_request = cfg.universe.topics_per_request.max(1);
        f.ping_interval = Duration::from_millis(cfg.universe.ws_ping_interval_ms.max(100));
        f.pong_timeout = Duration::from_millis(cfg.universe.ws_pong_timeout_ms.max(100));
        f.data_timeout = Duration::from_millis(cfg.universe.ws_data_timeout_ms.max(100));
        f.max_trade_ahead = Duration::from_millis(cfg.universe.trade_max_ahead_ms);
        f
    }

    fn housekeeping_interval(&self) -> Duration {
        let m = self.ping_interval.min(self.pong_timeout).min(self.data_timeout).min(self.ack_timeout);
        (m / 4).clamp(Duration::from_millis(5), Duration::from_millis(500))
    }
}

/// Connection states of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedStatus {
    /// Worst state over all connections (DOWN > RECONNECTING > CONNECTED); DOWN when there
    /// is no connection.
    pub aggregate: FeedState,
    /// State of connection `i + 1`.
    pub connections: Vec<FeedState>,
}

/// A command could not be delivered: the feed has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the public feed is not running")]
pub struct FeedCommandError;

#[derive(Debug)]
enum SupervisorCmd {
    Subscribe(Vec<Subscription>),
    Unsubscribe(Vec<Symbol>),
    Resync(Symbol),
}

#[derive(Debug)]
enum ConnCmd {
    Add(Vec<Subscription>),
    Remove(Vec<Symbol>),
    Resync(Symbol),
}

/// Builder and entry point of the public feed.
pub struct PublicFeed {
    cfg: FeedConfig,
    time: Arc<dyn TimeSource>,
    stats: Arc<ConnectorStats>,
}

impl PublicFeed {
    /// A feed with the system clock and fresh stats.
    pub fn new(cfg: FeedConfig) -> Self {
        PublicFeed { cfg, time: Arc::new(SystemTimeSource), stats: Arc::new(ConnectorStats::default()) }
    }

    /// Uses `time` for `EventTime::recv_ms`.
    pub fn with_time_source(mut self, time: Arc<dyn TimeSource>) -> Self {
        self.time = time;
        self
    }

    /// Counts into `stats` (shared with the REST client, for example).
    pub fn with_stats(mut self, stats: Arc<ConnectorStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Starts the feed for `subs` (must be called inside a Tokio runtime). Events go to `out`;
    /// the feed stops when `cancel` (or [`FeedHandle::shutdown`]) fires, when `out` is closed,
    /// or when every [`FeedHandle`] clone has been dropped.
    #[must_use = "dropping every FeedHandle stops the feed"]
    pub fn start(self, subs: Vec<Subscription>, out: mpsc::Sender<Event>, cancel: CancellationToken) -> FeedHandle {
        let cancel = cancel.child_token();
        let (status_tx, status_rx) = watch::channel(FeedStatus { aggregate: FeedState::Down, connections: Vec::new() });
        let ctx = Arc::new(Ctx {
            cfg: self.cfg,
            out,
            time: self.time,
            stats: self.stats,
            cancel: cancel.clone(),
            board: tokio::sync::Mutex::new(Board { conns: Vec::new(), aggregate: None }),
            status_tx,
            failed: Mutex::new(BTreeSet::new()),
            assignments: Mutex::new(BTreeMap::new()),
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(ctx.cfg.command_capacity.max(1));
        let sup = Supervisor { ctx: ctx.clone(), slots: Vec::new(), owner: HashMap::new(), joins: JoinSet::new() };
        let join = tokio::spawn(sup.run(subs, cmd_rx));
        FeedHandle { cmd: cmd_tx, status: status_rx, ctx, join: Arc::new(tokio::sync::Mutex::new(Some(join))) }
    }
}

/// Handle on a running [`PublicFeed`]: status, counters and run-time commands. Cheap to clone.
#[derive(Clone)]
pub struct FeedHandle {
    cmd: mpsc::Sender<SupervisorCmd>,
    status: watch::Receiver<FeedStatus>,
    ctx: Arc<Ctx>,
    join: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl FeedHandle {
    /// Streams more symbols (new listings) without touching other connections: each goes to
    /// the least-loaded connection with room, or to a new connection. A symbol already
    /// streamed with another depth has its book topic switched.
    pub async fn subscribe(&self, subs: Vec<Subscription>) -> Result<(), FeedCommandError> {
        self.cmd.send(SupervisorCmd::Subscribe(subs)).await.map_err(|_| FeedCommandError)
    }

    /// Stops streaming symbols (delistings).
    pub async fn unsubscribe(&self, symbols: Vec<Symbol>) -> Result<(), FeedCommandError> {
        self.cmd.send(SupervisorCmd::Unsubscribe(symbols)).await.map_err(|_| FeedCommandError)
    }

    /// Unsubscribes and resubscribes the book topic of `symbol` so Bybit sends a fresh snapshot
    /// (the core asks for this after a sequence gap).
    pub async fn resync(&self, symbol: Symbol) -> Result<(), FeedCommandError> {
        self.cmd.send(SupervisorCmd::Resync(symbol)).await.map_err(|_| FeedCommandError)
    }

    /// Current states.
    pub fn status(&self) -> FeedStatus {
        self.status.borrow().clone()
    }

    /// Current aggregate state.
    pub fn state(&self) -> FeedState {
        self.status.borrow().aggregate
    }

    /// A receiver notified on every state change.
    pub fn watch_status(&self) -> watch::Receiver<FeedStatus> {
        self.status.clone()
    }

    /// Topics given up after every subscribe attempt failed (cleared when a later subscribe
    /// of the topic succeeds), sorted.
    pub fn failed_topics(&self) -> Vec<String> {
        self.ctx.failed.lock().map(|f| f.iter().cloned().collect()).unwrap_or_default()
    }

    /// Streamed symbols with their depth and connection number (1-based), sorted by symbol.
    pub fn subscriptions(&self) -> Vec<(Subscription, u32)> {
        self.ctx
            .assignments
            .lock()
            .map(|a| a.iter().map(|(s, &(conn, depth))| (Subscription::new(s.clone(), depth), conn)).collect())
            .unwrap_or_default()
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<ConnectorStats> {
        &self.ctx.stats
    }

    /// A copy of the counters.
    pub fn stats_snapshot(&self) -> StatsSnapshot {
        self.ctx.stats.snapshot()
    }

    /// Stops the feed (closes every connection; connections report DOWN).
    pub fn shutdown(&self) {
        self.ctx.cancel.cancel();
    }

    /// Waits until every task of the feed has finished (after a shutdown or cancellation).
    pub async fn join(&self) {
        let h = self.join.lock().await.take();
        if let Some(h) = h {
            let _ = h.await;
        }
    }
}

struct Board {
    conns: Vec<FeedState>,
    aggregate: Option<FeedState>,
}

fn worst(states: &[FeedState]) -> FeedState {
    if states.is_empty() || states.contains(&FeedState::Down) {
        FeedState::Down
    } else if states.contains(&FeedState::Reconnecting) {
        FeedState::Reconnecting
    } else {
        FeedState::Connected
    }
}

struct Ctx {
    cfg: FeedConfig,
    out: mpsc::Sender<Event>,
    time: Arc<dyn TimeSource>,
    stats: Arc<ConnectorStats>,
    cancel: CancellationToken,
    board: tokio::sync::Mutex<Board>,
    status_tx: watch::Sender<FeedStatus>,
    failed: Mutex<BTreeSet<String>>,
    assignments: Mutex<BTreeMap<Symbol, (u32, u16)>>,
}

impl Ctx {
    /// Sends one event, waiting when the queue is full. False when the feed must stop
    /// (cancelled or the receiver is gone).
    async fn emit(&self, ev: Event) -> bool {
        match self.out.try_send(ev) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                ConnectorStats::inc(&self.stats.ws_queue_full);
                tokio::select! {
                    r = self.out.send(ev) => r.is_ok(),
                    _ = self.cancel.cancelled() => false,
                }
            }
        }
    }

    fn feed_event(&self, connection: u32, state: FeedState) -> Event {
        Event::new(0, EventTime::local(self.time.now_ms()), EventKind::Feed { connection, state })
    }

    /// Records the state of connection `idx` (1-based; a new index registers a connection) and
    /// emits the per-connection and aggregate changes, in order. With `final_` set (shutdown)
    /// events are only offered (`try_send`), never waited for.
    async fn set_state(&self, idx: u32, state: FeedState, final_: bool) {
        let mut b = self.board.lock().await;
        let i = idx.saturating_sub(1) as usize;
        if b.conns.len() <= i {
            b.conns.resize(i + 1, FeedState::Reconnecting);
        } else if b.conns[i] == state {
            return;
        }
        b.conns[i] = state;
        let agg = worst(&b.conns);
        let mut evs = vec![self.feed_event(idx, state)];
        if b.aggregate != Some(agg) {
            b.aggregate = Some(agg);
            evs.push(self.feed_event(0, agg));
        }
        self.status_tx.send_replace(FeedStatus { aggregate: agg, connections: b.conns.clone() });
        for ev in evs {
            if final_ {
                let _ = self.out.try_send(ev);
            } else {
                self.emit(ev).await;
            }
        }
    }

    fn mark_failed(&self, topic: &str) {
        if let Ok(mut f) = self.failed.lock() {
            if f.insert(topic.to_string()) {
                ConnectorStats::inc(&self.stats.ws_topics_failed);
            }
        }
    }

    fn clear_failed(&self, topics: &[String]) {
        if let Ok(mut f) = self.failed.lock() {
            for t in topics {
                f.remove(t);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Supervisor
// ---------------------------------------------------------------------------------------------

struct Slot {
    tx: mpsc::Sender<ConnCmd>,
    count: usize,
}

struct Supervisor {
    ctx: Arc<Ctx>,
    slots: Vec<Slot>,
    owner: HashMap<Symbol, usize>,
    joins: JoinSet<()>,
}

fn dedupe(subs: Vec<Subscription>) -> Vec<Subscription> {
    let mut seen: BTreeMap<Symbol, u16> = BTreeMap::new();
    let mut order = Vec::new();
    for s in subs {
        if seen.insert(s.symbol.clone(), s.depth).is_none() {
            order.push(s.symbol);
        }
    }
    order.into_iter().map(|sym| Subscription { depth: seen[&sym], symbol: sym }).collect()
}

impl Supervisor {
    async fn run(mut self, subs: Vec<Subscription>, mut cmd_rx: mpsc::Receiver<SupervisorCmd>) {
        // Initial assignment: fill connections in order.
        let per = self.ctx.cfg.symbols_per_connection.max(1);
        let subs = dedupe(subs);
        for chunk in subs.chunks(per) {
            self.spawn_connection(chunk.to_vec()).await;
        }
        loop {
            tokio::select! {
                _ = self.ctx.cancel.cancelled() => break,
                cmd = cmd_rx.recv() => match cmd {
                    Some(SupervisorCmd::Subscribe(s)) => self.subscribe(s).await,
                    Some(SupervisorCmd::Unsubscribe(s)) => self.unsubscribe(s).await,
                    Some(SupervisorCmd::Resync(s)) => self.resync(s).await,
                    None => break,
                },
            }
        }
        self.ctx.cancel.cancel();
        drop(self.slots);
        while self.joins.join_next().await.is_some() {}
    }

    async fn spawn_connection(&mut self, subs: Vec<Subscription>) -> usize {
        let slot = self.slots.len();
        let idx = slot as u32 + 1;
        let (tx, rx) = mpsc::channel(self.ctx.cfg.command_capacity.max(1));
        if let Ok(mut a) = self.ctx.assignments.lock() {
            for s in &subs {
                a.insert(s.symbol.clone(), (idx, s.depth));
            }
        }
        for s in &subs {
            self.owner.insert(s.symbol.clone(), slot);
        }
        self.slots.push(Slot { tx, count: subs.len() });
        self.ctx.set_state(idx, FeedState::Reconnecting, false).await;
        let seed = self.ctx.cfg.jitter_seed.map(|s| s ^ u64::from(idx)).unwrap_or_else(|| jitter_seed(u64::from(idx)));
        let conn = Conn {
            idx,
            ctx: self.ctx.clone(),
            symbols: subs.into_iter().map(|s| (s.symbol, s.depth)).collect(),
            cmd_rx: rx,
            rng: SmallRng::seed_from_u64(seed),
            req_counter: 0,
            last_malformed_log: None,
            malformed_suppressed: 0,
        };
        self.joins.spawn(conn.run());
        slot
    }

    async fn subscribe(&mut self, subs: Vec<Subscription>) {
        let per = self.ctx.cfg.symbols_per_connection.max(1);
        let mut batches: BTreeMap<usize, Vec<Subscription>> = BTreeMap::new();
        let mut fresh: Vec<Subscription> = Vec::new();
        for s in dedupe(subs) {
            if let Some(&slot) = self.owner.get(&s.symbol) {
                if let Ok(mut a) = self.ctx.assignments.lock() {
                    a.insert(s.symbol.clone(), (slot as u32 + 1, s.depth));
                }
                batches.entry(slot).or_default().push(s);
                continue;
            }
            let best =
                self.slots.iter().enumerate().filter(|(_, sl)| sl.count < per).min_by_key(|(i, sl)| (sl.count, *i));
            match best {
                Some((slot, _)) => {
                    self.slots[slot].count += 1;
                    self.owner.insert(s.symbol.clone(), slot);
                    if let Ok(mut a) = self.ctx.assignments.lock() {
                        a.insert(s.symbol.clone(), (slot as u32 + 1, s.depth));
                    }
                    batches.entry(slot).or_default().push(s);
                }
                None => fresh.push(s),
            }
        }
        for (slot, v) in batches {
            let _ = self.slots[slot].tx.send(ConnCmd::Add(v)).await;
        }
        for chunk in fresh.chunks(per) {
            self.spawn_connection(chunk.to_vec()).await;
        }
    }

    async fn unsubscribe(&mut self, symbols: Vec<Symbol>) {
        let mut batches: BTreeMap<usize, Vec<Symbol>> = BTreeMap::new();
        for s in symbols {
            if let Some(slot) = self.owner.remove(&s) {
                self.slots[slot].count = self.slots[slot].count.saturating_sub(1);
                if let Ok(mut a) = self.ctx.assignments.lock() {
                    a.remove(&s);
                }
                batches.entry(slot).or_default().push(s);
            }
        }
        for (slot, v) in batches {
            let _ = self.slots[slot].tx.send(ConnCmd::Remove(v)).await;
        }
    }

    async fn resync(&mut self, symbol: Symbol) {
        match self.owner.get(&symbol) {
            Some(&slot) => {
                let _ = self.slots[slot].tx.send(ConnCmd::Resync(symbol)).await;
            }
            None => tracing::warn!(%symbol, "resync requested for a symbol that is not streamed"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------------------------

struct Conn {
    idx: u32,
    ctx: Arc<Ctx>,
    symbols: BTreeMap<Symbol, u16>,
    cmd_rx: mpsc::Receiver<ConnCmd>,
    rng: SmallRng,
    req_counter: u64,
    last_malformed_log: Option<Instant>,
    malformed_suppressed: u64,
}

#[derive(Debug)]
struct Pending {
    req_id: String,
    op: &'static str,
    topics: Vec<String>,
    attempt: u32,
    deadline: Instant,
}

struct Retry {
    due: Instant,
    topics: Vec<String>,
    attempt: u32,
}

struct Session {
    sink: SplitSink<Ws, Message>,
    pending: Vec<Pending>,
    retries: Vec<Retry>,
    ping_outstanding: Option<Instant>,
    last_rx: Instant,
    healthy: bool,
}

enum End {
    Cancelled,
    Dropped(String),
}

impl Conn {
    async fn run(mut self) {
        let cfg = self.ctx.cfg.clone();
        let mut failures: u32 = 0;
        let mut ever_connected = false;
        loop {
            if self.ctx.cancel.is_cancelled() {
                break;
            }
            let attempt = tokio::select! {
                r = tokio::time::timeout(
                    cfg.connect_timeout,
                    tokio_tungstenite::connect_async_with_config(cfg.url.as_str(), None, true),
                ) => r,
                _ = self.ctx.cancel.cancelled() => break,
            };
            match attempt {
                Ok(Ok((ws, _resp))) => {
                    if ever_connected {
                        ConnectorStats::inc(&self.ctx.stats.ws_reconnects);
                    }
                    ever_connected = true;
                    tracing::info!(connection = self.idx, symbols = self.symbols.len(), "public WS connected");
                    self.ctx.set_state(self.idx, FeedState::Connected, false).await;
                    let (end, healthy) = self.session(ws).await;
                    match end {
                        End::Cancelled => break,
                        End::Dropped(reason) => {
                            ConnectorStats::inc(&self.ctx.stats.ws_disconnects);
                            tracing::warn!(connection = self.idx, %reason, "public WS connection lost");
                        }
                    }
                    failures = if healthy { 0 } else { failures.saturating_add(1) };
                }
                Ok(Err(e)) => {
                    ConnectorStats::inc(&self.ctx.stats.ws_disconnects);
                    failures = failures.saturating_add(1);
                    tracing::warn!(connection = self.idx, error = %e, failures, "public WS connect failed");
                }
                Err(_) => {
                    ConnectorStats::inc(&self.ctx.stats.ws_disconnects);
                    failures = failures.saturating_add(1);
                    tracing::warn!(connection = self.idx, failures, "public WS connect timed out");
                }
            }
            let state =
                if failures >= cfg.down_after_failures.max(1) { FeedState::Down } else { FeedState::Reconnecting };
            self.ctx.set_state(self.idx, state, false).await;
            let unit = self.rng.random::<f64>();
            let delay = backoff_delay(cfg.backoff_base, cfg.backoff_max, failures.saturating_sub(1), unit);
            if !self.backoff(delay).await {
                break;
            }
        }
        self.ctx.set_state(self.idx, FeedState::Down, true).await;
    }

    /// Sleeps `delay` while applying subscription changes. False when cancelled.
    async fn backoff(&mut self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                _ = self.ctx.cancel.cancelled() => return false,
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(ConnCmd::Add(subs)) => {
                        for s in subs {
                            self.symbols.insert(s.symbol, s.depth);
                        }
                    }
                    Some(ConnCmd::Remove(syms)) => {
                        for s in syms {
                            if let Some(depth) = self.symbols.remove(&s) {
                                self.ctx.clear_failed(&self.ctx.cfg.streams.topics(&s, depth));
                            }
                        }
                    }
                    // The next connection resubscribes everything, which brings fresh snapshots.
                    Some(ConnCmd::Resync(_)) => {}
                    None => return false,
                },
            }
        }
    }

    fn desired_topics(&self) -> BTreeSet<String> {
        self.symbols.iter().flat_map(|(s, &d)| self.ctx.cfg.streams.topics(s, d)).collect()
    }

    fn all_topics_ordered(&self) -> Vec<String> {
        self.symbols.iter().flat_map(|(s, &d)| self.ctx.cfg.streams.topics(s, d)).collect()
    }

    fn next_req_id(&mut self) -> String {
        self.req_counter += 1;
        format!("{}-{}", self.idx, self.req_counter)
    }

    async fn send_op(
        &mut self,
        sess: &mut Session,
        op: &'static str,
        topics: Vec<String>,
        attempt: u32,
    ) -> Result<(), String> {
        let per = self.ctx.cfg.topics_per_request.max(1);
        for chunk in topics.chunks(per) {
            let req_id = self.next_req_id();
            let req = if op == "subscribe" {
                ConnectorStats::inc(&self.ctx.stats.ws_subscribe_requests);
                OpRequest::subscribe(req_id.clone(), chunk.to_vec())
            } else {
                OpRequest::unsubscribe(req_id.clone(), chunk.to_vec())
            };
            sess.sink.send(Message::text(req.to_json())).await.map_err(|e| format!("send {op}: {e}"))?;
            sess.pending.push(Pending {
                req_id,
                op,
                topics: chunk.to_vec(),
                attempt,
                deadline: Instant::now() + self.ctx.cfg.ack_timeout,
            });
        }
        Ok(())
    }

    /// Handles a failed (rejected or unanswered) subscribe of `topics`: retry topic by topic
    /// after a backoff, or give up and report after the last attempt.
    fn subscribe_failed(&mut self, sess: &mut Session, topics: Vec<String>, attempt: u32) {
        let desired = self.desired_topics();
        let topics: Vec<String> = topics.into_iter().filter(|t| desired.contains(t)).collect();
        if topics.is_empty() {
            return;
        }
        if attempt >= self.ctx.cfg.max_subscribe_attempts.max(1) {
            for t in &topics {
                self.ctx.mark_failed(t);
            }
            tracing::error!(connection = self.idx, ?topics, attempt, "giving up subscribing topics");
            return;
        }
        let unit = self.rng.random::<f64>();
        let due =
            Instant::now() + backoff_delay(self.ctx.cfg.backoff_base, self.ctx.cfg.backoff_max, attempt - 1, unit);
        for t in topics {
            sess.retries.push(Retry { due, topics: vec![t], attempt: attempt + 1 });
        }
    }

    fn handle_ack(&mut self, sess: &mut Session, r: OpResponse) {
        let pos = sess
            .pending
            .iter()
            .position(|p| !r.req_id.is_empty() && p.req_id == r.req_id)
            .or_else(|| sess.pending.iter().position(|p| p.op == r.op));
        let Some(pos) = pos else {
            if r.is_success() {
                tracing::debug!(connection = self.idx, req_id = %r.req_id, op = %r.op, "unmatched ack");
            } else {
                ConnectorStats::inc(&self.ctx.stats.ws_ack_failures);
                tracing::warn!(connection = self.idx, req_id = %r.req_id, op = %r.op, ret_msg = %r.ret_msg, "unmatched failed ack");
            }
            return;
        };
        let p = sess.pending.remove(pos);
        if r.is_success() {
            if p.op == "subscribe" {
                self.ctx.clear_failed(&p.topics);
            }
            return;
        }
        ConnectorStats::inc(&self.ctx.stats.ws_ack_failures);
        tracing::warn!(
            connection = self.idx, op = p.op, topics = ?p.topics, ret_msg = %r.ret_msg, attempt = p.attempt,
            "bybit rejected request"
        );
        if p.op == "subscribe" {
            self.subscribe_failed(sess, p.topics, p.attempt);
        }
    }

    fn log_malformed(&mut self, err: &super::BybitError, text: &str) {
        ConnectorStats::inc(&self.ctx.stats.ws_malformed);
        let now = Instant::now();
        let due = self.last_malformed_log.is_none_or(|t| now.duration_since(t) >= MALFORMED_LOG_INTERVAL);
        if due {
            let sample: String = text.chars().take(200).collect();
            tracing::warn!(
                connection = self.idx, error = %err, suppressed = self.malformed_suppressed, frame = %sample,
                "malformed public WS frame"
            );
            self.last_malformed_log = Some(now);
            self.malformed_suppressed = 0;
        } else {
            self.malformed_suppressed += 1;
        }
    }

    /// True when the data belongs to a symbol (and depth) this connection still streams:
    /// frames in flight after an unsubscribe or a depth change are dropped.
    fn wanted(&self, data: &MarketData) -> bool {
        match data {
            MarketData::Book(b) => self.symbols.get(&b.symbol) == Some(&b.depth),
            MarketData::Trades(t) => self.symbols.contains_key(&t.symbol),
            MarketData::Ticker(t) => self.symbols.contains_key(&t.symbol),
            MarketData::Liquidations(v) => v.first().is_none_or(|l| self.symbols.contains_key(&l.symbol)),
        }
    }

    /// Handles one text frame. False when the feed must stop.
    async fn handle_text(&mut self, sess: &mut Session, text: &str, recv_ms: TimeMs) -> bool {
        ConnectorStats::inc(&self.ctx.stats.ws_frames);
        let sanity = Sanity {
            recv_ms: Some(recv_ms),
            max_trade_ahead_ms: i64::try_from(self.ctx.cfg.max_trade_ahead.as_millis()).unwrap_or(i64::MAX),
        };
        let mut refused = Refusals::default();
        let parsed = parse_ws_frame_checked(text, sanity, &mut refused);
        if !refused.is_empty() {
            self.ctx.stats.record_refusals(&refused, "public WS");
        }
        if let Some((symbol, depth)) = refused.book_resync() {
            // Frames in flight after an unsubscribe or a depth change concern no book of ours.
            if self.symbols.get(symbol) == Some(depth) {
                let ev = Event::new(0, EventTime { exchange_ms: None, recv_ms }, EventKind::BookShed(symbol.clone()));
                ConnectorStats::inc(&self.ctx.stats.ws_events);
                if !self.ctx.emit(ev).await {
                    return false;
                }
            }
            return true;
        }
        match parsed {
            Ok(WsMessage::Market { ts_ms, data }) => {
                // Only market data proves the feed is live: a socket that answers pings but
                // sends no data is a stale feed.
                sess.last_rx = Instant::now();
                sess.healthy = true;
                if !self.wanted(&data) {
                    return true;
                }
                let mut evs = Vec::with_capacity(1);
                data.push_events(EventTime { exchange_ms: Some(ts_ms), recv_ms }, &mut evs);
                let started = Instant::now();
                for ev in evs {
                    ConnectorStats::inc(&self.ctx.stats.ws_events);
                    if !self.ctx.emit(ev).await {
                        return false;
                    }
                }
                // Time spent waiting for our own consumer is not the venue's silence: shift the
                // heartbeat and data clocks so a stall downstream cannot fake a dead socket.
                let waited = started.elapsed();
                if waited >= Duration::from_millis(1) {
                    sess.last_rx = Instant::now();
                    if let Some(sent) = sess.ping_outstanding {
                        sess.ping_outstanding = Some(sent + waited);
                    }
                }
            }
            Ok(WsMessage::Ack(r)) => self.handle_ack(sess, r),
            Ok(WsMessage::Pong(_)) => {
                ConnectorStats::inc(&self.ctx.stats.ws_pongs);
                sess.ping_outstanding = None;
                sess.healthy = true;
            }
            Ok(WsMessage::Unhandled(topic)) => tracing::debug!(connection = self.idx, %topic, "unhandled topic"),
            Err(e) => self.log_malformed(&e, text),
        }
        true
    }

    async fn apply_command(&mut self, sess: &mut Session, cmd: ConnCmd) -> Result<(), String> {
        let streams = self.ctx.cfg.streams;
        match cmd {
            ConnCmd::Add(subs) => {
                let mut sub = Vec::new();
                let mut unsub = Vec::new();
                for s in subs {
                    match self.symbols.insert(s.symbol.clone(), s.depth) {
                        None => sub.extend(streams.topics(&s.symbol, s.depth)),
                        Some(old) if old != s.depth && streams.orderbook => {
                            unsub.push(topic_orderbook(old, &s.symbol));
                            self.ctx.clear_failed(&[topic_orderbook(old, &s.symbol)]);
                            sub.push(topic_orderbook(s.depth, &s.symbol));
                        }
                        Some(_) => {}
                    }
                }
                if !unsub.is_empty() {
                    self.send_op(sess, "unsubscribe", unsub, 1).await?;
                }
                if !sub.is_empty() {
                    self.send_op(sess, "subscribe", sub, 1).await?;
                }
            }
            ConnCmd::Remove(syms) => {
                let mut unsub = Vec::new();
                for s in syms {
                    if let Some(depth) = self.symbols.remove(&s) {
                        let topics = streams.topics(&s, depth);
                        self.ctx.clear_failed(&topics);
                        unsub.extend(topics);
                    }
                }
                if !unsub.is_empty() {
                    self.send_op(sess, "unsubscribe", unsub, 1).await?;
                }
            }
            ConnCmd::Resync(s) => {
                if let (Some(&depth), true) = (self.symbols.get(&s), streams.orderbook) {
                    let topic = topic_orderbook(depth, &s);
                    tracing::info!(connection = self.idx, %topic, "resyncing book");
                    self.send_op(sess, "unsubscribe", vec![topic.clone()], 1).await?;
                    self.send_op(sess, "subscribe", vec![topic], 1).await?;
                }
            }
        }
        Ok(())
    }

    /// Timers: heartbeat, pong / data timeouts, ack deadlines and due retries.
    async fn housekeeping(&mut self, sess: &mut Session, next_ping: &mut Instant) -> Result<(), String> {
        let ctx = self.ctx.clone();
        let cfg = &ctx.cfg;
        let now = Instant::now();
        if let Some(sent) = sess.ping_outstanding {
            if now.duration_since(sent) >= cfg.pong_timeout {
                ConnectorStats::inc(&self.ctx.stats.ws_timeouts);
                return Err(format!("no pong within {:?}", cfg.pong_timeout));
            }
        }
        if self.symbols.is_empty() {
            // Nothing subscribed: silence is expected.
            sess.last_rx = now;
        } else if now.duration_since(sess.last_rx) >= cfg.data_timeout {
            ConnectorStats::inc(&self.ctx.stats.ws_timeouts);
            return Err(format!("no frame within {:?}", cfg.data_timeout));
        }
        if now >= *next_ping {
            let req = OpRequest::ping(self.next_req_id());
            sess.sink.send(Message::text(req.to_json())).await.map_err(|e| format!("send ping: {e}"))?;
            ConnectorStats::inc(&self.ctx.stats.ws_pings);
            if sess.ping_outstanding.is_none() {
                sess.ping_outstanding = Some(now);
            }
            *next_ping = now + cfg.ping_interval;
        }
        let mut expired = Vec::new();
        sess.pending.retain(|p| {
            if p.deadline <= now {
                expired.push((p.op, p.topics.clone(), p.attempt));
                false
            } else {
                true
            }
        });
        for (op, topics, attempt) in expired {
            ConnectorStats::inc(&self.ctx.stats.ws_ack_failures);
            tracing::warn!(connection = self.idx, op, ?topics, "no acknowledgement in time");
            if op == "subscribe" {
                self.subscribe_failed(sess, topics, attempt);
            }
        }
        let mut due = Vec::new();
        sess.retries.retain(|r| {
            if r.due <= now {
                due.push((r.topics.clone(), r.attempt));
                false
            } else {
                true
            }
        });
        if !due.is_empty() {
            let desired = self.desired_topics();
            for (topics, attempt) in due {
                let topics: Vec<String> = topics.into_iter().filter(|t| desired.contains(t)).collect();
                if !topics.is_empty() {
                    self.send_op(sess, "subscribe", topics, attempt).await?;
                }
            }
        }
        Ok(())
    }

    /// One connected session. Returns why it ended and whether it was healthy (market data or
    /// a pong received), which resets the failure count.
    async fn session(&mut self, ws: Ws) -> (End, bool) {
        let (sink, mut stream) = ws.split();
        let mut sess = Session {
            sink,
            pending: Vec::new(),
            retries: Vec::new(),
            ping_outstanding: None,
            last_rx: Instant::now(),
            healthy: false,
        };
        let end = self.session_loop(&mut sess, &mut stream).await;
        if matches!(end, End::Cancelled) {
            let _ = tokio::time::timeout(Duration::from_millis(200), sess.sink.send(Message::Close(None))).await;
        }
        (end, sess.healthy)
    }

    async fn session_loop(&mut self, sess: &mut Session, stream: &mut SplitStream<Ws>) -> End {
        let topics = self.all_topics_ordered();
        if let Err(e) = self.send_op(sess, "subscribe", topics, 1).await {
            return End::Dropped(e);
        }
        let cfg = self.ctx.cfg.clone();
        let mut next_ping = Instant::now() + cfg.ping_interval;
        let mut tick = tokio::time::interval(cfg.housekeeping_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.ctx.cancel.cancelled() => return End::Cancelled,
                msg = stream.next() => {
                    let recv_ms = self.ctx.time.now_ms();
                    match msg {
                        None => return End::Dropped("stream ended".into()),
                        Some(Err(e)) => return End::Dropped(format!("read: {e}")),
                        Some(Ok(Message::Text(t))) => {
                            if !self.handle_text(sess, t.as_str(), recv_ms).await {
                                return End::Cancelled;
                            }
                        }
                        Some(Ok(Message::Binary(b))) => {
                            match std::str::from_utf8(&b) {
                                Ok(t) => {
                                    if !self.handle_text(sess, t, recv_ms).await {
                                        return End::Cancelled;
                                    }
                                }
                                Err(_) => {
                                    ConnectorStats::inc(&self.ctx.stats.ws_frames);
                                    self.log_malformed(&super::BybitError::Decode("binary frame is not UTF-8".into()), "");
                                }
                            }
                        }
                        Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) => {
                            // Flushes the automatic pong reply queued by tungstenite.
                            if let Err(e) = sess.sink.flush().await {
                                return End::Dropped(format!("flush: {e}"));
                            }
                        }
                        Some(Ok(Message::Close(frame))) => return End::Dropped(format!("closed by server: {frame:?}")),
                        Some(Ok(Message::Frame(_))) => {}
                    }
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(c) => {
                        if let Err(e) = self.apply_command(sess, c).await {
                            return End::Dropped(e);
                        }
                    }
                    None => return End::Cancelled,
                },
                _ = tick.tick() => {
                    if let Err(e) = self.housekeeping(sess, &mut next_ping).await {
                        return End::Dropped(e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_is_the_worst_state() {
        use FeedState::*;
        assert_eq!(worst(&[]), Down);
        assert_eq!(worst(&[Connected, Connected]), Connected);
        assert_eq!(worst(&[Connected, Reconnecting]), Reconnecting);
        assert_eq!(worst(&[Reconnecting, Down, Connected]), Down);
    }

    #[test]
    fn topics_per_symbol_follow_the_stream_set() {
        let s = Symbol::new("ETHUSDT");
        assert_eq!(
            StreamSet::default().topics(&s, 50),
            vec!["orderbook.50.ETHUSDT", "publicTrade.ETHUSDT", "tickers.ETHUSDT", "allLiquidation.ETHUSDT"]
        );
        let only_book = StreamSet { orderbook: true, trades: false, tickers: false, liquidations: false };
        assert_eq!(only_book.topics(&s, 1), vec!["orderbook.1.ETHUSDT"]);
    }

    #[test]
    fn dedupe_keeps_first_position_and_last_depth() {
        let a = Symbol::new("AAUSDT");
        let b = Symbol::new("BBUSDT");
        let out = dedupe(vec![
            Subscription::new(a.clone(), 50),
            Subscription::new(b.clone(), 50),
            Subscription::new(a.clone(), 200),
        ]);
        assert_eq!(out, vec![Subscription::new(a, 200), Subscription::new(b, 50)]);
    }

    #[test]
    fn config_from_engine_config() {
        let mut c = Config::default();
        c.universe.topics_per_request = 7;
        c.universe.symbols_per_connection = 11;
        let f = FeedConfig::from_config(&c);
        assert_eq!(f.url, "wss://stream.bybit.com/v5/public/linear");
        assert_eq!((f.topics_per_request, f.symbols_per_connection), (7, 11));
        assert_eq!(f.max_trade_ahead, Duration::from_secs(5), "default universe.trade_max_ahead_ms");
        c.universe.trade_max_ahead_ms = 250;
        assert_eq!(FeedConfig::from_config(&c).max_trade_ahead, Duration::from_millis(250));
        c.universe.trade_max_ahead_ms = 600_001;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("universe.trade_max_ahead_ms must be in [0, 600000], got 600001"), "{e}");
        c.universe.trade_max_ahead_ms = 5_000;
        assert_eq!(f.ping_interval, Duration::from_secs(20));
        let mut f2 = f.clone();
        f2.ping_interval = Duration::from_millis(8);
        assert_eq!(f2.housekeeping_interval(), Duration::from_millis(5));
        assert_eq!(f.housekeeping_interval(), Duration::from_millis(500));
    }
}
