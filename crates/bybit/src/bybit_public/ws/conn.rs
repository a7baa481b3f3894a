//! One public WS connection: connects, subscribes its symbols' topics and checks every ack,
//! pings, decodes frames into events, applies the supervisor's commands and reconnects with
//! backoff. Separate from the supervisor because it is the per-socket state machine; it shares
//! only the feed context ([`Ctx`]) with it.

use super::{ConnCmd, Ctx};
use crate::bybit_public::messages::{
    parse_ws_frame_checked, topic_orderbook, MarketData, OpRequest, OpResponse, Refusals, Sanity, WsMessage,
};
use crate::bybit_public::{backoff_delay, BybitError, ConnectorStats};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::Rng;
use scalper_core::domain::{EventTime, Symbol, TimeMs};
use scalper_core::engine::event::{Event, EventKind, FeedState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Minimum time between two "malformed frame" warnings of one connection.
const MALFORMED_LOG_INTERVAL: Duration = Duration::from_secs(5);

pub(super) struct Conn {
    pub(super) idx: u32,
    pub(super) ctx: Arc<Ctx>,
    pub(super) symbols: BTreeMap<Symbol, u16>,
    pub(super) cmd_rx: mpsc::Receiver<ConnCmd>,
    pub(super) rng: SmallRng,
    pub(super) req_counter: u64,
    pub(super) last_malformed_log: Option<Instant>,
    pub(super) malformed_suppressed: u64,
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
    pub(super) async fn run(mut self) {
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

    fn log_malformed(&mut self, err: &BybitError, text: &str) {
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
                                    self.log_malformed(&BybitError::Decode("binary frame is not UTF-8".into()), "");
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
