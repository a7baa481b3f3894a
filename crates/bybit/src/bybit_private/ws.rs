//! The Bybit v5 private WebSocket (`/v5/private`).
//!
//! One connection, driven by one task:
//!
//! 1. connect; send `{"op":"auth","args":[key, expires, sign]}` and wait for its answer;
//! 2. subscribe `order.linear`, `execution.linear`, `position.linear`, `wallet` and wait for
//!    the acknowledgement (items outside the USDT-perpetual universe are skipped one by one and
//!    counted, see [`super::messages::sort_items`]);
//! 3. **reconcile over REST** — open orders, positions, wallet and the executions since the
//!    last one seen (minus a look-back) — emitting every execution the stream did not deliver,
//!    then a [`Reconciliation`] snapshot. Frames that arrive meanwhile are kept and handled
//!    afterwards, so nothing falls into the gap between the subscription and the snapshot;
//! 4. stream: typed updates through a bounded channel, executions deduplicated by `execId`
//!    (across reconnects), `{"op":"ping"}` every [`PrivateStreamConfig::ping_interval`];
//! 5. on any failure (dropped socket, pong timeout, rejected auth, failed reconciliation)
//!    reconnect with exponential backoff and jitter and start again at 1.
//!
//! State changes are reported as [`PrivateUpdate::Status`] (CONNECTED only once reconciled).

use super::messages::{
    parse_private_frame, PrivateFrame, VenueExecution, VenueOrder, VenuePosition, WalletBalance, PRIVATE_TOPICS,
};
use super::rest::PrivateRest;
use super::PrivateStats;
use crate::bybit_public::{backoff_delay, jitter_seed, SystemTimeSource, TimeSource};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper_core::domain::TimeMs;
use scalper_core::engine::event::FeedState;
use scalper_core::execution::integrity::VenueSnapshot;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Settings of [`PrivateStream`].
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateStreamConfig {
    /// Private WS URL (`wss://stream.bybit.com/v5/private` or the simulator's).
    pub url: String,
    /// Topics to subscribe.
    pub topics: Vec<String>,
    /// Interval between `{"op":"ping"}` heartbeats (Bybit recommends 20 s).
    pub ping_interval: Duration,
    /// A ping unanswered for this long drops the connection.
    pub pong_timeout: Duration,
    /// `auth` / `subscribe` unanswered for this long fails the connection.
    pub ack_timeout: Duration,
    /// TCP + TLS + WebSocket handshake timeout.
    pub connect_timeout: Duration,
    /// `expires` of the auth op = venue clock + this.
    pub auth_expires: Duration,
    /// First reconnect backoff (doubles per consecutive failure, with jitter).
    pub backoff_base: Duration,
    /// Largest reconnect backoff.
    pub backoff_max: Duration,
    /// Consecutive failures after which the stream reports DOWN instead of RECONNECTING.
    pub down_after_failures: u32,
    /// The first reconciliation fetches executions since start − this.
    pub initial_lookback: Duration,
    /// Later reconciliations fetch executions since the last sign of life − this.
    pub reconnect_lookback: Duration,
    /// `execId`s remembered for deduplication.
    pub dedupe_capacity: usize,
    /// Seed of the jitter generator (`None`: from the wall clock).
    pub jitter_seed: Option<u64>,
}

impl PrivateStreamConfig {
    /// Defaults for `url`: the four private topics, ping 20 s, pong timeout 10 s, ack timeout
    /// 10 s, connect timeout 10 s, auth valid 10 s, backoff 500 ms → 30 s, DOWN after 5
    /// failures, look-back 10 s initially and 60 s after a reconnect, 10 000 `execId`s.
    pub fn new(url: &str) -> Self {
        PrivateStreamConfig {
            url: url.to_string(),
            topics: PRIVATE_TOPICS.iter().map(|t| t.to_string()).collect(),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            auth_expires: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            down_after_failures: 5,
            initial_lookback: Duration::from_secs(10),
            reconnect_lookback: Duration::from_secs(60),
            dedupe_capacity: 10_000,
            jitter_seed: None,
        }
    }
}

/// Where an update came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSource {
    /// Pushed by the private WebSocket.
    Stream,
    /// Fetched over REST by a reconciliation.
    Reconciliation,
}

/// State of the account after a (re)connect, fetched over REST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// Connection number (1 = first connection).
    pub connection: u64,
    pub open_orders: Vec<VenueOrder>,
    /// Positions (flat ones included as the venue lists them).
    pub positions: Vec<VenuePosition>,
    pub wallet: WalletBalance,
    /// Executions of the look-back window the stream had not delivered (emitted just before).
    pub executions_recovered: usize,
}

impl Reconciliation {
    /// Positions and working orders for [`scalper_core::execution::integrity::reconcile`].
    pub fn venue_snapshot(&self) -> VenueSnapshot {
        super::messages::venue_snapshot(&self.open_orders, &self.positions)
    }
}

/// A typed update of the private stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateUpdate {
    /// Connection state changed (CONNECTED once authenticated, subscribed and reconciled).
    Status(FeedState),
    /// An order changed.
    Order(VenueOrder),
    /// An execution (each `execId` at most once).
    Execution(VenueExecution),
    /// A position changed.
    Position(VenuePosition),
    /// The wallet changed.
    Wallet(WalletBalance),
    /// A reconciliation finished.
    Reconciled(Reconciliation),
}

/// An update with its receive time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateMsg {
    /// Local receive time, ms.
    pub recv_ms: TimeMs,
    /// Venue time (`creationTime` of the frame, execution time of a reconciled execution).
    pub exchange_ms: Option<TimeMs>,
    /// Stream or reconciliation.
    pub source: UpdateSource,
    /// What happened.
    pub update: PrivateUpdate,
}

/// Builder and entry point of the private stream.
pub struct PrivateStream {
    cfg: PrivateStreamConfig,
    rest: Arc<PrivateRest>,
    time: Arc<dyn TimeSource>,
}

impl PrivateStream {
    /// A stream using `rest` for credentials, the venue clock and reconciliations.
    pub fn new(cfg: PrivateStreamConfig, rest: Arc<PrivateRest>) -> Self {
        PrivateStream { cfg, rest, time: Arc::new(SystemTimeSource) }
    }

    /// Uses `time` for `recv_ms`.
    pub fn with_time_source(mut self, time: Arc<dyn TimeSource>) -> Self {
        self.time = time;
        self
    }

    /// Starts the stream (inside a Tokio runtime). Updates go to `out`; it stops when `cancel`
    /// fires, [`PrivateHandle::shutdown`] is called or `out` is closed.
    #[must_use = "the handle reports status and stops the stream"]
    pub fn start(self, out: mpsc::Sender<PrivateMsg>, cancel: CancellationToken) -> PrivateHandle {
        let cancel = cancel.child_token();
        let (status_tx, status_rx) = watch::channel(FeedState::Down);
        let stats = self.rest.stats().clone();
        let seed = self.cfg.jitter_seed.unwrap_or_else(|| jitter_seed(0x5057_5331));
        let runner = Runner {
            dedupe: Dedupe::new(self.cfg.dedupe_capacity),
            cfg: self.cfg,
            rest: self.rest,
            time: self.time,
            out,
            cancel: cancel.clone(),
            status_tx,
            stats: stats.clone(),
            rng: SmallRng::seed_from_u64(seed),
            last_exec_ms: None,
            last_alive_ms: None,
            connections: 0,
            req_id: 0,
            reported: None,
        };
        let join = tokio::spawn(runner.run());
        PrivateHandle { status: status_rx, stats, cancel, join: Arc::new(tokio::sync::Mutex::new(Some(join))) }
    }
}

/// Handle on a running [`PrivateStream`]. Cheap to clone.
#[derive(Clone)]
pub struct PrivateHandle {
    status: watch::Receiver<FeedState>,
    stats: Arc<PrivateStats>,
    cancel: CancellationToken,
    join: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl PrivateHandle {
    /// Current state.
    pub fn state(&self) -> FeedState {
        *self.status.borrow()
    }

    /// A receiver notified on every state change.
    pub fn watch_status(&self) -> watch::Receiver<FeedState> {
        self.status.clone()
    }

    /// Shared counters.
    pub fn stats(&self) -> &Arc<PrivateStats> {
        &self.stats
    }

    /// Stops the stream.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Waits for the stream task to finish (after a shutdown).
    pub async fn join(&self) {
        let h = self.join.lock().await.take();
        if let Some(h) = h {
            let _ = h.await;
        }
    }
}

/// Bounded set of recently seen `execId`s (oldest forgotten first).
#[derive(Debug)]
struct Dedupe {
    cap: usize,
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Dedupe {
    fn new(cap: usize) -> Self {
        Dedupe { cap: cap.max(1), set: HashSet::new(), order: VecDeque::new() }
    }

    /// True when `id` is new (and remembers it).
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

enum End {
    Cancelled,
    Dropped(String),
}

struct Session {
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
    ping_outstanding: Option<Instant>,
}

struct Runner {
    cfg: PrivateStreamConfig,
    rest: Arc<PrivateRest>,
    time: Arc<dyn TimeSource>,
    out: mpsc::Sender<PrivateMsg>,
    cancel: CancellationToken,
    status_tx: watch::Sender<FeedState>,
    stats: Arc<PrivateStats>,
    rng: SmallRng,
    dedupe: Dedupe,
    last_exec_ms: Option<TimeMs>,
    last_alive_ms: Option<TimeMs>,
    connections: u64,
    req_id: u64,
    reported: Option<FeedState>,
}

impl Runner {
    fn next_req_id(&mut self, prefix: &str) -> String {
        self.req_id += 1;
        format!("{prefix}-{}", self.req_id)
    }

    /// Sends one update, waiting when the channel is full. False when the stream must stop.
    async fn emit(&self, source: UpdateSource, exchange_ms: Option<TimeMs>, update: PrivateUpdate) -> bool {
        let msg = PrivateMsg { recv_ms: self.time.now_ms(), exchange_ms, source, update };
        let ok = match self.out.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(msg)) => {
                PrivateStats::inc(&self.stats.queue_full);
                tokio::select! {
                    r = self.out.send(msg) => r.is_ok(),
                    _ = self.cancel.cancelled() => false,
                }
            }
        };
        if ok {
            PrivateStats::inc(&self.stats.updates_sent);
        }
        ok
    }

    async fn set_state(&mut self, s: FeedState) -> bool {
        if self.reported == Some(s) {
            return true;
        }
        self.reported = Some(s);
        self.status_tx.send_replace(s);
        self.emit(UpdateSource::Stream, None, PrivateUpdate::Status(s)).await
    }

    async fn run(mut self) {
        if self.rest.clock_offset_ms() == 0 {
            if let Err(e) = self.rest.sync_time().await {
                tracing::warn!(error = %e, "private stream: initial clock sync failed");
            }
        }
        let started_ms = self.rest.server_now_ms();
        self.last_alive_ms = Some(started_ms - self.cfg.initial_lookback.as_millis() as i64);
        let mut failures: u32 = 0;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            let connect =
                tokio::time::timeout(self.cfg.connect_timeout, tokio_tungstenite::connect_async(&self.cfg.url));
            let conn = tokio::select! {
                r = connect => r,
                _ = self.cancel.cancelled() => break,
            };
            let end = match conn {
                Ok(Ok((ws, _))) => {
                    let (sink, stream) = ws.split();
                    let mut sess = Session { sink, stream, ping_outstanding: None };
                    let end = self.session(&mut sess, &mut failures).await;
                    if matches!(end, End::Cancelled) {
                        let _ = tokio::time::timeout(Duration::from_millis(200), sess.sink.send(Message::Close(None)))
                            .await;
                    }
                    end
                }
                Ok(Err(e)) => End::Dropped(format!("connect: {e}")),
                Err(_) => End::Dropped("connect timeout".into()),
            };
            match end {
                End::Cancelled => break,
                End::Dropped(reason) => {
                    PrivateStats::inc(&self.stats.ws_disconnects);
                    failures = failures.saturating_add(1);
                    tracing::warn!(reason = %reason, failures, "private stream disconnected");
                    let state = if failures >= self.cfg.down_after_failures {
                        FeedState::Down
                    } else {
                        FeedState::Reconnecting
                    };
                    if !self.set_state(state).await {
                        break;
                    }
                    let unit = self.rng.random::<f64>();
                    let delay = backoff_delay(self.cfg.backoff_base, self.cfg.backoff_max, failures - 1, unit);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.cancelled() => break,
                    }
                }
            }
        }
        self.reported = None;
        self.status_tx.send_replace(FeedState::Down);
        let _ = self.out.try_send(PrivateMsg {
            recv_ms: self.time.now_ms(),
            exchange_ms: None,
            source: UpdateSource::Stream,
            update: PrivateUpdate::Status(FeedState::Down),
        });
    }

    async fn send(&mut self, sess: &mut Session, text: String) -> Result<(), String> {
        sess.sink.send(Message::text(text)).await.map_err(|e| format!("send: {e}"))
    }

    /// Reads frames until an op answer for `op` arrives (other text frames are kept in
    /// `early`), with the ack timeout.
    async fn await_op(&mut self, sess: &mut Session, op: &str, early: &mut Vec<String>) -> Result<(), String> {
        let deadline = Instant::now() + self.cfg.ack_timeout;
        loop {
            let msg = tokio::select! {
                m = tokio::time::timeout_at(deadline, sess.stream.next()) => m,
                _ = self.cancel.cancelled() => return Err("cancelled".into()),
            };
            let text = match msg {
                Err(_) => return Err(format!("no answer to {op} within {:?}", self.cfg.ack_timeout)),
                Ok(None) => return Err("stream ended".into()),
                Ok(Some(Err(e))) => return Err(format!("read: {e}")),
                Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
                Ok(Some(Ok(Message::Close(f)))) => return Err(format!("closed by server: {f:?}")),
                Ok(Some(Ok(_))) => continue,
            };
            PrivateStats::inc(&self.stats.ws_frames);
            match parse_private_frame(&text) {
                Ok(PrivateFrame::Op(r)) if r.op == op => {
                    return if r.is_success() {
                        Ok(())
                    } else {
                        Err(format!("{op} rejected: {}", self.rest.redact(&r.ret_msg)))
                    };
                }
                Ok(PrivateFrame::Op(_)) => {}
                _ => early.push(text),
            }
        }
    }

    /// One connected session: auth, subscribe, reconcile, stream.
    async fn session(&mut self, sess: &mut Session, failures: &mut u32) -> End {
        let mut early = Vec::new();
        let expires = self.rest.server_now_ms() + self.cfg.auth_expires.as_millis() as i64;
        let auth_id = self.next_req_id("auth");
        let frame = self.rest.credentials().ws_auth_frame(&auth_id, expires);
        if let Err(e) = self.send(sess, frame).await {
            return End::Dropped(e);
        }
        if let Err(e) = self.await_op(sess, "auth", &mut early).await {
            if self.cancel.is_cancelled() {
                return End::Cancelled;
            }
            PrivateStats::inc(&self.stats.ws_auth_failures);
            tracing::error!(error = %e, "private stream authentication failed");
            return End::Dropped(e);
        }
        let sub_id = self.next_req_id("sub");
        let sub = serde_json::json!({"req_id": sub_id, "op": "subscribe", "args": self.cfg.topics}).to_string();
        if let Err(e) = self.send(sess, sub).await {
            return End::Dropped(e);
        }
        if let Err(e) = self.await_op(sess, "subscribe", &mut early).await {
            if self.cancel.is_cancelled() {
                return End::Cancelled;
            }
            PrivateStats::inc(&self.stats.ws_subscribe_failures);
            return End::Dropped(e);
        }
        self.connections += 1;
        match self.reconcile().await {
            Ok(true) => {}
            Ok(false) => return End::Cancelled,
            Err(e) => return End::Dropped(format!("reconciliation failed: {e}")),
        }
        if self.connections > 1 {
            PrivateStats::inc(&self.stats.ws_reconnects);
        }
        *failures = 0;
        if !self.set_state(FeedState::Connected).await {
            return End::Cancelled;
        }
        for text in std::mem::take(&mut early) {
            if !self.handle_text(sess, &text).await {
                return End::Cancelled;
            }
        }
        self.stream_loop(sess).await
    }

    /// Fetches the account state and the executions the stream may have missed. `Ok(false)`
    /// when the output channel is gone.
    async fn reconcile(&mut self) -> Result<bool, super::PrivateError> {
        let lookback = if self.connections <= 1 { Duration::ZERO } else { self.cfg.reconnect_lookback };
        let since = match (self.last_alive_ms, self.last_exec_ms) {
            (Some(a), Some(e)) => a.min(e),
            (Some(a), None) => a,
            (None, Some(e)) => e,
            (None, None) => self.rest.server_now_ms(),
        } - lookback.as_millis() as i64;
        let executions = self.rest.executions_since(since.max(0)).await?;
        let open_orders = self.rest.open_orders(None).await?;
        let positions = self.rest.positions().await?;
        let wallet = self.rest.wallet_balance().await?;
        let mut recovered = 0;
        for x in executions {
            if !self.dedupe.insert(&x.exec_id) {
                continue;
            }
            recovered += 1;
            PrivateStats::inc(&self.stats.reconciled_executions);
            self.last_exec_ms = Some(self.last_exec_ms.map_or(x.exec_time_ms, |t| t.max(x.exec_time_ms)));
            let t = Some(x.exec_time_ms);
            if !self.emit(UpdateSource::Reconciliation, t, PrivateUpdate::Execution(x)).await {
                return Ok(false);
            }
        }
        if recovered > 0 {
            tracing::warn!(recovered, "reconciliation recovered executions the private stream had not delivered");
        }
        PrivateStats::inc(&self.stats.reconciliations);
        self.last_alive_ms = Some(self.rest.server_now_ms());
        let rec = Reconciliation {
            connection: self.connections,
            open_orders,
            positions,
            wallet,
            executions_recovered: recovered,
        };
        Ok(self
            .emit(UpdateSource::Reconciliation, Some(self.rest.server_now_ms()), PrivateUpdate::Reconciled(rec))
            .await)
    }

    async fn stream_loop(&mut self, sess: &mut Session) -> End {
        let mut next_ping = Instant::now() + self.cfg.ping_interval;
        let tick_every = (self.cfg.ping_interval.min(self.cfg.pong_timeout) / 4)
            .clamp(Duration::from_millis(5), Duration::from_millis(500));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return End::Cancelled,
                msg = sess.stream.next() => match msg {
                    None => return End::Dropped("stream ended".into()),
                    Some(Err(e)) => return End::Dropped(format!("read: {e}")),
                    Some(Ok(Message::Text(t))) => {
                        if !self.handle_text(sess, t.as_str()).await {
                            return End::Cancelled;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        if let Err(e) = sess.sink.flush().await {
                            return End::Dropped(format!("flush: {e}"));
                        }
                    }
                    Some(Ok(Message::Close(f))) => return End::Dropped(format!("closed by server: {f:?}")),
                    Some(Ok(_)) => {}
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    if let Some(sent) = sess.ping_outstanding {
                        if now.duration_since(sent) >= self.cfg.pong_timeout {
                            PrivateStats::inc(&self.stats.ws_timeouts);
                            return End::Dropped(format!("no pong within {:?}", self.cfg.pong_timeout));
                        }
                    }
                    if now >= next_ping {
                        let id = self.next_req_id("ping");
                        let ping = serde_json::json!({"req_id": id, "op": "ping"}).to_string();
                        if let Err(e) = self.send(sess, ping).await {
                            return End::Dropped(e);
                        }
                        PrivateStats::inc(&self.stats.ws_pings);
                        if sess.ping_outstanding.is_none() {
                            sess.ping_outstanding = Some(now);
                        }
                        next_ping = now + self.cfg.ping_interval;
                    }
                }
            }
        }
    }

    /// Handles one frame. False when the stream must stop.
    async fn handle_text(&mut self, sess: &mut Session, text: &str) -> bool {
        PrivateStats::inc(&self.stats.ws_frames);
        self.last_alive_ms = Some(self.rest.server_now_ms());
        let frame = match parse_private_frame(text) {
            Ok(f) => f,
            Err(e) => {
                PrivateStats::inc(&self.stats.ws_malformed);
                let sample: String = self.rest.redact(text).chars().take(200).collect();
                let error = self.rest.redact(&e.to_string());
                tracing::warn!(%error, frame = %sample, "malformed private WS frame");
                return true;
            }
        };
        self.stats.count_skipped("ws", frame.skipped());
        match frame {
            PrivateFrame::Op(r) => {
                if r.is_pong() {
                    PrivateStats::inc(&self.stats.ws_pongs);
                    sess.ping_outstanding = None;
                } else if !r.is_success() {
                    tracing::warn!(op = %r.op, ret_msg = %self.rest.redact(&r.ret_msg), "private WS op rejected");
                }
            }
            PrivateFrame::Orders { ts_ms, orders, .. } => {
                for o in orders {
                    if !self.emit(UpdateSource::Stream, ts_ms, PrivateUpdate::Order(o)).await {
                        return false;
                    }
                }
            }
            PrivateFrame::Executions { ts_ms, executions, .. } => {
                for x in executions {
                    if !self.dedupe.insert(&x.exec_id) {
                        PrivateStats::inc(&self.stats.executions_deduped);
                        continue;
                    }
                    self.last_exec_ms = Some(self.last_exec_ms.map_or(x.exec_time_ms, |t| t.max(x.exec_time_ms)));
                    if !self.emit(UpdateSource::Stream, ts_ms, PrivateUpdate::Execution(x)).await {
                        return false;
                    }
                }
            }
            PrivateFrame::Positions { ts_ms, positions, .. } => {
                for p in positions {
                    if !self.emit(UpdateSource::Stream, ts_ms, PrivateUpdate::Position(p)).await {
                        return false;
                    }
                }
            }
            PrivateFrame::Wallet { ts_ms, wallets, .. } => {
                for w in wallets {
                    if let Some(why) = w.not_unified_reason() {
                        let n = self.stats.wallet_not_unified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if n.is_multiple_of(60) {
                            tracing::error!(seen = n + 1, "{why}");
                        }
                    }
                    if !self.emit(UpdateSource::Stream, ts_ms, PrivateUpdate::Wallet(w)).await {
                        return false;
                    }
                }
            }
            PrivateFrame::Unhandled(topic) => tracing::debug!(%topic, "unhandled private topic"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_is_bounded_and_forgets_the_oldest() {
        let mut d = Dedupe::new(2);
        assert!(d.insert("a"));
        assert!(!d.insert("a"));
        assert!(d.insert("b"));
        assert!(d.insert("c"));
        assert_eq!(d.order.len(), 2);
        assert!(d.insert("a"), "a was forgotten");
        assert!(!d.insert("c"));
    }

    #[test]
    fn defaults_subscribe_the_four_topics() {
        let c = PrivateStreamConfig::new("ws://x/v5/private");
        assert_eq!(c.topics, vec!["order.linear", "execution.linear", "position.linear", "wallet"]);
        assert_eq!(c.ping_interval, Duration::from_secs(20));
    }
}
