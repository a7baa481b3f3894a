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
//!
//! This module holds the configuration, the handle and the context shared by the tasks; the
//! supervisor is in `supervisor`, the per-connection state machine in `conn`.

mod conn;
mod supervisor;

use super::messages::{topic_liquidations, topic_orderbook, topic_tickers, topic_trades};
use super::{ConnectorStats, StatsSnapshot, SystemTimeSource, TimeSource};
use scalper_core::config::Config;
use scalper_core::domain::{EventTime, Symbol};
use scalper_core::engine::event::{Event, EventKind, FeedState};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supervisor::Supervisor;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One symbol to stream, with its order-book depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subscription {
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
    /// refused (see [`scalper_core::config::UniverseConfig::trade_max_ahead_ms`]).
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

#[cfg(test)]
mod tests {
    use super::supervisor::dedupe;
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
