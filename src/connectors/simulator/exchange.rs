//! The exchange state behind the sockets: every symbol's market, its published depth streams
//! (`u`, `seq`, views), tickers and liquidation batches, the subscriber registry, injected
//! faults and the clock. One mutex guards it; the market task holds it for one step at a time.

use super::book::{diff, Book, Lvl};
use super::config::{ClockMode, CrossedKind, Fault, Scenario, SimConfig, UniverseEvent};
use super::history::{self, KlineQuery, MinuteTape};
use super::market::{Liq, Market, TickerValues};
use super::rng::mix_seed;
use super::universe::InstrumentSpec;
use super::wire::{self, BookFrame};
use super::{BookLevels, Listing, ScenarioEvent, SimError, SymbolInfo};
use crate::domain::{Side, Symbol};
use crate::market::data::{Instrument, InstrumentStatus, Level};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

/// Orderbook depths served on the public linear stream.
pub(crate) const DEPTHS: [usize; 4] = [1, 50, 200, 1000];
/// Bybit linear push frequency per depth, ms.
const DEPTH_CADENCE_MS: [u64; 4] = [10, 20, 100, 200];
/// Ticker push frequency, ms.
const TICKER_CADENCE_MS: u64 = 100;
/// allLiquidation push frequency, ms.
const LIQ_CADENCE_MS: u64 = 500;
/// Level-1 books are re-sent (same `u`) after this long without a change.
const DEPTH1_REPUSH_MS: i64 = 3_000;
/// Maximum trades in one publicTrade frame.
const MAX_TRADES_PER_FRAME: usize = 1024;

/// A public topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Topic {
    /// `orderbook.{DEPTHS[d]}.{symbol}`.
    Book(u32, u8),
    /// `publicTrade.{symbol}`.
    Trade(u32),
    /// `tickers.{symbol}`.
    Ticker(u32),
    /// `allLiquidation.{symbol}`.
    Liq(u32),
}

/// Counters shared with the connection tasks (lock-free).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub steps: AtomicU64,
    pub ws_connections_opened: AtomicU64,
    pub ws_connections_open: AtomicU64,
    pub ws_messages_sent: AtomicU64,
    pub book_frames: AtomicU64,
    pub trade_frames: AtomicU64,
    pub ticker_frames: AtomicU64,
    pub liquidation_frames: AtomicU64,
    pub control_frames: AtomicU64,
    pub frames_suppressed: AtomicU64,
    pub gaps_injected: AtomicU64,
    pub malformed_sent: AtomicU64,
    pub crossed_sent: AtomicU64,
    pub slow_consumer_drops: AtomicU64,
    pub idle_drops: AtomicU64,
    pub forced_drops: AtomicU64,
    pub pongs_sent: AtomicU64,
    pub pongs_refused: AtomicU64,
    pub subscribe_failures: AtomicU64,
    pub rest_requests: AtomicU64,
    pub rest_faults: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One published depth stream of one symbol.
#[derive(Debug, Clone, Default)]
pub(crate) struct DepthStream {
    pub depth: usize,
    pub u: u64,
    pub bids: Vec<Lvl>,
    pub asks: Vec<Lvl>,
    pub ts: i64,
    pub cts: i64,
    pub seq: u64,
    version: u64,
    last_sent_ts: i64,
}

/// What one publication point of a depth stream produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// Nothing to send.
    Nothing,
    /// The view changed: `u` advanced; the delta per side.
    Changed(Vec<Lvl>, Vec<Lvl>),
    /// Level 1 unchanged for 3 s: re-send the snapshot with the same `u`.
    Repush,
}

impl DepthStream {
    /// Brings the view up to `book` at a publication point of step time `ts` / match time `cts`.
    pub(crate) fn publish(&mut self, book: &Book, ts: i64, cts: i64, seq: u64) -> Published {
        if self.version != book.version {
            self.version = book.version;
            let nb = book.top(Side::Buy, self.depth);
            let na = book.top(Side::Sell, self.depth);
            let db = diff(&self.bids, nb, Side::Buy);
            let da = diff(&self.asks, na, Side::Sell);
            if !db.is_empty() || !da.is_empty() {
                self.u += 1;
                self.bids.clear();
                self.bids.extend_from_slice(nb);
                self.asks.clear();
                self.asks.extend_from_slice(na);
                self.ts = ts.max(self.ts + 1);
                self.cts = cts.max(self.cts + 1);
                self.seq = seq;
                self.last_sent_ts = self.ts;
                return Published::Changed(db, da);
            }
        }
        if self.depth == 1 && ts - self.last_sent_ts >= DEPTH1_REPUSH_MS {
            self.ts = ts.max(self.ts + 1);
            self.last_sent_ts = self.ts;
            return Published::Repush;
        }
        Published::Nothing
    }

    /// The current view as a snapshot frame (`u` overridden when given).
    fn snapshot_frame<'a>(&'a self, u: Option<u64>, bids: Option<&'a [Lvl]>) -> BookFrame<'a> {
        BookFrame {
            depth: self.depth,
            snapshot: true,
            ts: self.ts,
            cts: self.cts,
            u: u.unwrap_or(self.u),
            seq: self.seq,
            bids: bids.unwrap_or(&self.bids),
            asks: &self.asks,
        }
    }
}

/// A symbol of the universe with its market and streams.
#[derive(Debug)]
pub(crate) struct SymbolSim {
    pub spec: InstrumentSpec,
    pub scenario: Scenario,
    pub listing: Listing,
    list_step: u64,
    delist_step: Option<u64>,
    pub market: Option<Market>,
    pub seq: u64,
    pub depths: [DepthStream; 4],
    pub ticker: Option<TickerValues>,
    /// One-minute bars since the listing (`/v5/market/kline`); `None` while not trading.
    minutes: Option<MinuteTape>,
    pending_liqs: Vec<(i64, Liq)>,
    gap: [bool; 4],
    silent: bool,
    lag_ms: i64,
    last_ts: i64,
    last_cts: i64,
}

/// A live WebSocket connection.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub token: CancellationToken,
    pub conn_id: String,
    topics: HashSet<Topic>,
    args_chars: usize,
}

/// Pending REST faults.
#[derive(Debug, Default)]
struct RestFaults {
    http: Option<(u16, u32)>,
    ret: Option<(i64, u32)>,
}

/// A REST fault to serve instead of the real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestFault {
    Http(u16),
    RetCode(i64),
}

/// Clock bookkeeping.
#[derive(Debug)]
pub(crate) struct ClockState {
    pub mode: ClockMode,
    pub paused: bool,
    pub base_real: Instant,
    pub base_step: u64,
}

/// A REST error: Bybit `retCode` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestError(pub i64, pub String);

fn params_error(m: &str) -> RestError {
    RestError(10001, format!("params error: {m}"))
}

/// The whole simulated venue.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub cfg: SimConfig,
    pub step: u64,
    pub t0_ms: i64,
    pub clock: ClockState,
    pub symbols: Vec<SymbolSim>,
    by_name: HashMap<String, usize>,
    subs: HashMap<Topic, Vec<(u64, mpsc::Sender<Utf8Bytes>)>>,
    conns: HashMap<u64, ConnEntry>,
    next_conn: u64,
    silent: bool,
    pub refuse_pongs: bool,
    rest: RestFaults,
    pub counters: Arc<Counters>,
    scheduled: Vec<(u64, Fault)>,
    universe: Vec<(u64, usize, bool)>,
    slow: Vec<u64>,
    cadence: [u64; 4],
    ticker_every: u64,
    liq_every: u64,
}

fn every(cadence_ms: u64, tick_ms: u64) -> u64 {
    cadence_ms.div_ceil(tick_ms).max(1)
}

fn ms_to_step(at_ms: i64, tick_ms: u64) -> u64 {
    (at_ms.max(0) as u64).div_ceil(tick_ms)
}

impl Exchange {
    /// Builds the universe at step 0 (simulated epoch `t0_ms`).
    pub fn new(cfg: SimConfig, t0_ms: i64, counters: Arc<Counters>) -> Exchange {
        let tick = cfg.tick_interval_ms;
        let mut names: Vec<(String, Option<i64>)> = cfg.base_symbol_names().into_iter().map(|n| (n, None)).collect();
        let mut universe = Vec::new();
        for ev in &cfg.events {
            if let UniverseEvent::NewListing { symbol, at_ms } = ev {
                names.push((symbol.clone(), Some(*at_ms)));
            }
        }
        let mut symbols = Vec::with_capacity(names.len());
        let mut by_name = HashMap::new();
        for (i, (name, listed_at)) in names.into_iter().enumerate() {
            let list_step = listed_at.map_or(0, |ms| ms_to_step(ms, tick));
            let launch = listed_at.map(|_| t0_ms + list_step as i64 * tick as i64);
            let spec = InstrumentSpec::generate(cfg.seed, i, &name, launch);
            let scenario =
                cfg.scenarios.iter().rev().find(|a| a.symbol == name).map_or(Scenario::Calm, |a| a.scenario.clone());
            let delist_step = cfg.events.iter().find_map(|e| match e {
                UniverseEvent::Delisting { symbol, at_ms } if *symbol == name => Some(ms_to_step(*at_ms, tick)),
                _ => None,
            });
            let s = |k: u64| mix_seed(cfg.seed ^ 0xB00C_5EED, i as u64 * 8 + k);
            let mut depths: [DepthStream; 4] = Default::default();
            for (d, ds) in depths.iter_mut().enumerate() {
                ds.depth = DEPTHS[d];
                ds.u = 1_000_000 + s(d as u64) % 90_000_000;
            }
            if list_step > 0 {
                universe.push((list_step, i, true));
            }
            if let Some(ds) = delist_step {
                universe.push((ds.max(list_step + 1), i, false));
            }
            by_name.insert(name, i);
            symbols.push(SymbolSim {
                spec,
                scenario,
                listing: Listing::Pending,
                list_step,
                delist_step,
                market: None,
                seq: 1_000_000_000 + s(5) % 9_000_000_000,
                depths,
                ticker: None,
                minutes: None,
                pending_liqs: Vec::new(),
                gap: [false; 4],
                silent: false,
                lag_ms: 1 + (s(6) % 4) as i64,
                last_ts: i64::MIN,
                last_cts: i64::MIN,
            });
        }
        universe.sort();
        let mut scheduled: Vec<(u64, Fault)> =
            cfg.faults.iter().map(|f| (ms_to_step(f.at_ms, tick).max(1), f.fault.clone())).collect();
        scheduled.sort_by_key(|f| f.0);
        let cadence = [
            every(DEPTH_CADENCE_MS[0], tick),
            every(DEPTH_CADENCE_MS[1], tick),
            every(DEPTH_CADENCE_MS[2], tick),
            every(DEPTH_CADENCE_MS[3], tick),
        ];
        let mut ex = Exchange {
            clock: ClockState {
                mode: cfg.clock,
                paused: matches!(cfg.clock, ClockMode::Manual),
                base_real: Instant::now(),
                base_step: 0,
            },
            step: 0,
            t0_ms,
            symbols,
            by_name,
            subs: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            silent: false,
            refuse_pongs: false,
            rest: RestFaults::default(),
            counters,
            scheduled,
            universe,
            slow: Vec::new(),
            cadence,
            ticker_every: every(TICKER_CADENCE_MS, tick),
            liq_every: every(LIQ_CADENCE_MS, tick),
            cfg,
        };
        for i in 0..ex.symbols.len() {
            if ex.symbols[i].list_step == 0 {
                ex.list(i, 0);
            }
        }
        ex
    }

    /// Simulated time of step `n`.
    pub fn step_time(&self, n: u64) -> i64 {
        self.t0_ms + n as i64 * self.cfg.tick_interval_ms as i64
    }

    /// The simulator's "now" (ms since epoch).
    pub fn now_ms(&self) -> i64 {
        match self.clock.mode {
            ClockMode::RealTime { speed } if !self.clock.paused => {
                let el = self.clock.base_real.elapsed().as_secs_f64() * 1000.0 * speed;
                self.step_time(self.clock.base_step) + el as i64
            }
            _ => self.step_time(self.step),
        }
    }

    fn list(&mut self, i: usize, n: u64) {
        let cfg = &self.cfg;
        let ts = self.t0_ms + n as i64 * cfg.tick_interval_ms as i64;
        let s = &mut self.symbols[i];
        let market = Market::new(
            cfg.seed,
            i,
            s.spec.clone(),
            s.scenario.clone(),
            cfg.tick_interval_ms,
            cfg.book_levels,
            cfg.volatility,
            n,
        );
        let cts = ts - s.lag_ms;
        for ds in s.depths.iter_mut() {
            ds.bids = market.book.top(Side::Buy, ds.depth).to_vec();
            ds.asks = market.book.top(Side::Sell, ds.depth).to_vec();
            ds.version = market.book.version;
            ds.ts = ts;
            ds.cts = cts;
            ds.seq = s.seq;
            ds.last_sent_ts = ts;
        }
        s.last_ts = ts;
        s.last_cts = cts;
        s.ticker = Some(market.ticker(n as i64 * cfg.tick_interval_ms as i64, ts));
        s.minutes = Some(MinuteTape::new(ts, market.last_price));
        s.market = Some(market);
        s.listing = Listing::Trading;
    }

    fn delist(&mut self, i: usize) {
        let s = &mut self.symbols[i];
        s.listing = Listing::Closed;
        s.market = None;
        s.minutes = None;
        s.pending_liqs.clear();
        // Streams stop: forget every subscription to the symbol's topics.
        let idx = i as u32;
        let topics: Vec<Topic> = self
            .subs
            .keys()
            .filter(|t| match t {
                Topic::Book(s, _) | Topic::Trade(s) | Topic::Ticker(s) | Topic::Liq(s) => *s == idx,
            })
            .copied()
            .collect();
        for t in topics {
            if let Some(list) = self.subs.remove(&t) {
                for (c, _) in list {
                    if let Some(conn) = self.conns.get_mut(&c) {
                        conn.topics.remove(&t);
                    }
                }
            }
        }
    }

    /// Runs one market step: scheduled faults, listings/delistings, every symbol's market and
    /// the frames it publishes.
    pub fn step(&mut self) {
        self.step += 1;
        let n = self.step;
        inc(&self.counters.steps);
        while self.scheduled.first().is_some_and(|f| f.0 <= n) {
            let (_, fault) = self.scheduled.remove(0);
            let _ = self.apply_fault(&fault);
        }
        while self.universe.first().is_some_and(|e| e.0 <= n) {
            let (_, i, listing) = self.universe.remove(0);
            if listing {
                self.list(i, n);
            } else if self.symbols[i].listing == Listing::Trading {
                self.delist(i);
            }
        }
        let ts = self.step_time(n);
        let t_rel = n as i64 * self.cfg.tick_interval_ms as i64;
        let mut frames: Vec<(Topic, String)> = Vec::new();
        for i in 0..self.symbols.len() {
            let sym = &mut self.symbols[i];
            if sym.listing != Listing::Trading || sym.list_step == n {
                continue;
            }
            let Some(market) = sym.market.as_mut() else { continue };
            let out = market.step(n);
            if let Some(tape) = sym.minutes.as_mut() {
                tape.record(ts, &out.fills, &market.spec);
            }
            let idx = i as u32;
            sym.seq += 1 + out.fills.len() as u64;
            let ts_s = ts.max(sym.last_ts + 1);
            let cts = (ts - sym.lag_ms).max(sym.last_cts + 1);
            sym.last_ts = ts_s;
            sym.last_cts = cts;
            let quiet = self.silent || sym.silent;
            // Frames are built for topics with subscribers; a silence fault drops them (counted).
            let live = |t: Topic| self.subs.get(&t).is_some_and(|v| !v.is_empty());
            let sent = |t: Topic, f: String, frames: &mut Vec<(Topic, String)>| {
                if quiet {
                    inc(&self.counters.frames_suppressed);
                } else {
                    frames.push((t, f));
                }
            };
            if !out.fills.is_empty() && live(Topic::Trade(idx)) {
                for chunk in out.fills.chunks(MAX_TRADES_PER_FRAME) {
                    sent(Topic::Trade(idx), wire::trade_frame(&sym.spec, ts_s, cts, sym.seq, chunk), &mut frames);
                }
            }
            for d in 0..DEPTHS.len() {
                if !n.is_multiple_of(self.cadence[d]) {
                    continue;
                }
                let Some(market) = sym.market.as_ref() else { break };
                let ds = &mut sym.depths[d];
                let topic = Topic::Book(idx, d as u8);
                let frame = match ds.publish(&market.book, ts_s, cts, sym.seq) {
                    Published::Nothing => None,
                    Published::Changed(..) if d > 0 && sym.gap[d] => {
                        sym.gap[d] = false;
                        inc(&self.counters.gaps_injected);
                        None
                    }
                    Published::Changed(db, da) if live(topic) => {
                        let f = if d == 0 {
                            ds.snapshot_frame(None, None)
                        } else {
                            BookFrame {
                                depth: ds.depth,
                                snapshot: false,
                                ts: ds.ts,
                                cts: ds.cts,
                                u: ds.u,
                                seq: ds.seq,
                                bids: &db,
                                asks: &da,
                            }
                        };
                        Some(wire::book_frame(&sym.spec, &f))
                    }
                    Published::Repush if live(topic) => {
                        Some(wire::book_frame(&sym.spec, &ds.snapshot_frame(None, None)))
                    }
                    _ => None,
                };
                if let Some(f) = frame {
                    sent(topic, f, &mut frames);
                }
            }
            if n.is_multiple_of(self.ticker_every) {
                if let Some(market) = sym.market.as_ref() {
                    let v = market.ticker(t_rel, ts);
                    if live(Topic::Ticker(idx)) {
                        if let Some(f) = wire::ticker_frame(&v, sym.ticker.as_ref(), sym.seq, ts_s) {
                            sent(Topic::Ticker(idx), f, &mut frames);
                        }
                    }
                    sym.ticker = Some(v);
                }
            }
            sym.pending_liqs.extend(out.liqs.into_iter().map(|l| (cts, l)));
            if n.is_multiple_of(self.liq_every) && !sym.pending_liqs.is_empty() {
                if live(Topic::Liq(idx)) {
                    sent(Topic::Liq(idx), wire::liquidation_frame(&sym.spec, ts_s, &sym.pending_liqs), &mut frames);
                }
                sym.pending_liqs.clear();
            }
        }
        for (topic, frame) in frames {
            self.dispatch(topic, Utf8Bytes::from(frame));
        }
        self.drop_slow();
    }

    fn frame_counter(&self, topic: Topic) -> &AtomicU64 {
        match topic {
            Topic::Book(..) => &self.counters.book_frames,
            Topic::Trade(_) => &self.counters.trade_frames,
            Topic::Ticker(_) => &self.counters.ticker_frames,
            Topic::Liq(_) => &self.counters.liquidation_frames,
        }
    }

    fn dispatch(&mut self, topic: Topic, frame: Utf8Bytes) {
        let Some(list) = self.subs.get(&topic) else { return };
        let mut n = 0;
        for (c, tx) in list {
            match tx.try_send(frame.clone()) {
                Ok(()) => n += 1,
                Err(_) => self.slow.push(*c),
            }
        }
        self.frame_counter(topic).fetch_add(n, Ordering::Relaxed);
    }

    fn send_to(&mut self, conn: u64, frame: String) {
        let Some(c) = self.conns.get(&conn) else { return };
        if c.tx.try_send(Utf8Bytes::from(frame)).is_err() {
            self.slow.push(conn);
        }
    }

    fn drop_slow(&mut self) {
        let slow = std::mem::take(&mut self.slow);
        for c in slow {
            if let Some(conn) = self.conns.get(&c) {
                if !conn.token.is_cancelled() {
                    inc(&self.counters.slow_consumer_drops);
                }
                conn.token.cancel();
            }
            self.unregister_conn(c);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connections and subscriptions

    /// Registers a new connection; returns its numeric id and Bybit-style `conn_id`.
    pub fn register_conn(&mut self, tx: mpsc::Sender<Utf8Bytes>, token: CancellationToken) -> (u64, String) {
        self.next_conn += 1;
        let id = self.next_conn;
        let h = mix_seed(self.cfg.seed ^ 0xC0CC, id);
        let conn_id = format!("{:016x}-{:x}", h, id);
        self.conns.insert(id, ConnEntry { tx, token, conn_id: conn_id.clone(), topics: HashSet::new(), args_chars: 0 });
        (id, conn_id)
    }

    /// Forgets a connection and all its subscriptions.
    pub fn unregister_conn(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            for t in conn.topics {
                if let Some(list) = self.subs.get_mut(&t) {
                    list.retain(|(c, _)| *c != id);
                    if list.is_empty() {
                        self.subs.remove(&t);
                    }
                }
            }
        }
    }

    fn topic_name(&self, t: Topic) -> String {
        match t {
            Topic::Book(s, d) => format!("orderbook.{}.{}", DEPTHS[d as usize], self.symbols[s as usize].spec.name),
            Topic::Trade(s) => format!("publicTrade.{}", self.symbols[s as usize].spec.name),
            Topic::Ticker(s) => format!("tickers.{}", self.symbols[s as usize].spec.name),
            Topic::Liq(s) => format!("allLiquidation.{}", self.symbols[s as usize].spec.name),
        }
    }

    /// Parses a topic string; errors carry Bybit's `ret_msg`.
    fn parse_topic(&self, arg: &str) -> Result<Topic, String> {
        let not_found = || format!("error:handler not found,topic:{arg}");
        let parts: Vec<&str> = arg.split('.').collect();
        let (kind, depth, sym) = match parts.as_slice() {
            ["orderbook", d, s] => {
                let d: usize = d.parse().map_err(|_| not_found())?;
                let di = DEPTHS.iter().position(|x| *x == d).ok_or_else(not_found)?;
                (0u8, di as u8, *s)
            }
            ["publicTrade", s] => (1, 0, *s),
            ["tickers", s] => (2, 0, *s),
            ["allLiquidation", s] => (3, 0, *s),
            _ => return Err(not_found()),
        };
        if !Symbol::is_valid(sym) {
            return Err(not_found());
        }
        let i = match self.by_name.get(sym) {
            Some(&i) if self.symbols[i].listing == Listing::Trading => i as u32,
            _ => return Err(format!("Invalid symbol :[{arg}]")),
        };
        Ok(match kind {
            0 => Topic::Book(i, depth),
            1 => Topic::Trade(i),
            2 => Topic::Ticker(i),
            _ => Topic::Liq(i),
        })
    }

    /// Handles `subscribe`: validates the whole batch (one bad arg fails all, like Bybit), then
    /// acks and sends the snapshots, all before any later delta can be queued.
    pub fn subscribe(&mut self, conn: u64, args: &[String], req_id: &str) {
        let Some(c) = self.conns.get(&conn) else { return };
        let conn_id = c.conn_id.clone();
        let fail = |m: String| Err::<Vec<Topic>, String>(m);
        let parsed = (|| {
            if args.is_empty() {
                return fail("error:args is empty".into());
            }
            if let Some(max) = self.cfg.max_args_per_request {
                if args.len() > max {
                    return fail(format!("args size >{max}"));
                }
            }
            let mut topics = Vec::with_capacity(args.len());
            let mut chars = c.args_chars;
            for a in args {
                let t = self.parse_topic(a)?;
                if c.topics.contains(&t) || topics.contains(&t) {
                    return fail(format!("error:already subscribed,topic:{a}"));
                }
                chars += a.len();
                topics.push(t);
            }
            if chars > self.cfg.max_args_chars {
                return fail(format!("error:args length exceeds {} characters", self.cfg.max_args_chars));
            }
            Ok(topics)
        })();
        let topics = match parsed {
            Ok(t) => t,
            Err(m) => {
                inc(&self.counters.subscribe_failures);
                inc(&self.counters.control_frames);
                self.send_to(conn, wire::op_reply(false, &m, &conn_id, req_id, "subscribe"));
                return;
            }
        };
        inc(&self.counters.control_frames);
        self.send_to(conn, wire::op_reply(true, "", &conn_id, req_id, "subscribe"));
        let chars: usize = args.iter().map(|a| a.len()).sum();
        let Some(entry) = self.conns.get_mut(&conn) else { return };
        entry.args_chars += chars;
        let tx = entry.tx.clone();
        for &t in &topics {
            entry.topics.insert(t);
            self.subs.entry(t).or_default().push((conn, tx.clone()));
        }
        for t in topics {
            let (si, quiet) = match t {
                Topic::Book(s, _) | Topic::Ticker(s) => (s as usize, self.silent || self.symbols[s as usize].silent),
                _ => continue,
            };
            if quiet {
                inc(&self.counters.frames_suppressed);
                continue;
            }
            let sym = &self.symbols[si];
            let frame = match t {
                Topic::Book(_, d) => {
                    Some(wire::book_frame(&sym.spec, &sym.depths[d as usize].snapshot_frame(None, None)))
                }
                _ => sym.ticker.as_ref().and_then(|v| wire::ticker_frame(v, None, sym.seq, sym.last_ts)),
            };
            if let Some(f) = frame {
                inc(self.frame_counter(t));
                self.send_to(conn, f);
            }
        }
        self.drop_slow();
    }

    /// Handles `unsubscribe` (valid but not subscribed topics are accepted silently).
    pub fn unsubscribe(&mut self, conn: u64, args: &[String], req_id: &str) {
        let Some(c) = self.conns.get(&conn) else { return };
        let conn_id = c.conn_id.clone();
        let mut topics = Vec::new();
        for a in args {
            match self.parse_topic(a) {
                Ok(t) => topics.push((t, a.len())),
                Err(m) => {
                    inc(&self.counters.control_frames);
                    self.send_to(conn, wire::op_reply(false, &m, &conn_id, req_id, "unsubscribe"));
                    return;
                }
            }
        }
        if let Some(entry) = self.conns.get_mut(&conn) {
            for (t, len) in topics {
                if entry.topics.remove(&t) {
                    entry.args_chars = entry.args_chars.saturating_sub(len);
                    if let Some(list) = self.subs.get_mut(&t) {
                        list.retain(|(c, _)| *c != conn);
                    }
                }
            }
        }
        inc(&self.counters.control_frames);
        self.send_to(conn, wire::op_reply(true, "", &conn_id, req_id, "unsubscribe"));
        self.drop_slow();
    }

    /// Queues a control reply (pong, errors) on a connection.
    pub fn reply(&mut self, conn: u64, frame: String) {
        inc(&self.counters.control_frames);
        self.send_to(conn, frame);
        self.drop_slow();
    }

    // -----------------------------------------------------------------------------------------
    // Faults

    fn index_of(&self, symbol: &str) -> Result<usize, SimError> {
        self.by_name.get(symbol).copied().ok_or_else(|| SimError::UnknownSymbol(symbol.to_string()))
    }

    /// Applies a fault now.
    pub fn apply_fault(&mut self, fault: &Fault) -> Result<(), SimError> {
        match fault {
            Fault::DropConnections => {
                let ids: Vec<u64> = self.conns.keys().copied().collect();
                for id in ids {
                    if let Some(c) = self.conns.get(&id) {
                        c.token.cancel();
                        inc(&self.counters.forced_drops);
                    }
                    self.unregister_conn(id);
                }
            }
            Fault::Silence { on } => self.silent = *on,
            Fault::SilenceSymbol { symbol, on } => {
                let i = self.index_of(symbol)?;
                self.symbols[i].silent = *on;
            }
            Fault::SkipUpdateId { symbol } => {
                let i = self.index_of(symbol)?;
                self.symbols[i].gap = [false, true, true, true];
            }
            Fault::MalformedFrame => {
                let ids: Vec<u64> = self.conns.keys().copied().collect();
                let name = self.symbols.first().map(|s| s.spec.name.clone()).unwrap_or_default();
                for id in ids {
                    inc(&self.counters.malformed_sent);
                    self.send_to(id, wire::malformed(&name));
                }
                self.drop_slow();
            }
            Fault::CrossedBook { symbol, kind } => {
                let i = self.index_of(symbol)?;
                self.crossed(i, *kind);
            }
            Fault::RestHttpError { status, count } => self.rest.http = (*count > 0).then_some((*status, *count)),
            Fault::RestRetCode { ret_code, count } => self.rest.ret = (*count > 0).then_some((*ret_code, *count)),
            Fault::RefusePongs { on } => self.refuse_pongs = *on,
            Fault::RestartBook { symbol } => {
                let i = self.index_of(symbol)?;
                self.restart_book(i);
            }
        }
        Ok(())
    }

    fn crossed(&mut self, i: usize, kind: CrossedKind) {
        let idx = i as u32;
        if self.symbols[i].listing != Listing::Trading {
            return;
        }
        let quiet = self.silent || self.symbols[i].silent;
        let mut frames = Vec::new();
        for d in 1..DEPTHS.len() {
            let sym = &mut self.symbols[i];
            let ds = &mut sym.depths[d];
            let Some(&(ask, _)) = ds.asks.first() else { continue };
            let bad = (ask + 1, ds.bids.first().map_or(1, |b| b.1.max(1)));
            let frame = match kind {
                CrossedKind::Snapshot => {
                    let mut bids = vec![bad];
                    bids.extend_from_slice(&ds.bids);
                    wire::book_frame(&sym.spec, &ds.snapshot_frame(None, Some(&bids)))
                }
                CrossedKind::Delta => {
                    sym.seq += 1;
                    ds.seq = sym.seq;
                    ds.u += 1;
                    ds.ts += 1;
                    ds.cts += 1;
                    ds.last_sent_ts = ds.ts;
                    sym.last_ts = sym.last_ts.max(ds.ts);
                    sym.last_cts = sym.last_cts.max(ds.cts);
                    let f = BookFrame {
                        depth: ds.depth,
                        snapshot: false,
                        ts: ds.ts,
                        cts: ds.cts,
                        u: ds.u,
                        seq: ds.seq,
                        bids: &[bad],
                        asks: &[],
                    };
                    wire::book_frame(&sym.spec, &f)
                }
            };
            if !quiet {
                frames.push((Topic::Book(idx, d as u8), frame));
            }
        }
        for (t, f) in frames {
            let n = self.subs.get(&t).map_or(0, |v| v.len() as u64);
            self.counters.crossed_sent.fetch_add(n, Ordering::Relaxed);
            self.dispatch(t, Utf8Bytes::from(f));
        }
        self.drop_slow();
    }

    fn restart_book(&mut self, i: usize) {
        let idx = i as u32;
        if self.symbols[i].listing != Listing::Trading {
            return;
        }
        let quiet = self.silent || self.symbols[i].silent;
        let mut frames = Vec::new();
        let sym = &mut self.symbols[i];
        for (d, ds) in sym.depths.iter_mut().enumerate() {
            ds.u = 1;
            if !quiet {
                frames.push((Topic::Book(idx, d as u8), wire::book_frame(&sym.spec, &ds.snapshot_frame(None, None))));
            }
        }
        for (t, f) in frames {
            self.dispatch(t, Utf8Bytes::from(f));
        }
        self.drop_slow();
    }

    /// Takes the next pending REST fault, if any.
    pub fn take_rest_fault(&mut self) -> Option<RestFault> {
        if let Some((status, left)) = self.rest.http {
            self.rest.http = (left > 1).then_some((status, left - 1));
            return Some(RestFault::Http(status));
        }
        if let Some((code, left)) = self.rest.ret {
            self.rest.ret = (left > 1).then_some((code, left - 1));
            return Some(RestFault::RetCode(code));
        }
        None
    }

    // -----------------------------------------------------------------------------------------
    // REST

    fn trading(&self, symbol: &str) -> Option<usize> {
        self.by_name.get(symbol).copied().filter(|&i| self.symbols[i].listing == Listing::Trading)
    }

    fn delivery_ms(&self, s: &SymbolSim) -> i64 {
        s.delist_step.map_or(0, |n| self.step_time(n))
    }

    /// Body of `/v5/market/instruments-info` (linear).
    pub fn instruments_info(
        &self,
        symbol: Option<&str>,
        status: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<String, RestError> {
        let limit = match limit {
            None | Some("") => 500,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => return Err(params_error("limit must be in [1, 1000]")),
            },
        };
        let want = match status {
            None | Some("") | Some("Trading") => Listing::Trading,
            Some("Closed") => Listing::Closed,
            Some("PreLaunch") | Some("Delivering") => Listing::Pending,
            Some(_) => return Err(params_error("status invalid")),
        };
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| params_error("cursor invalid"))?),
        };
        let mut rows: Vec<&SymbolSim> = self
            .symbols
            .iter()
            .filter(|s| s.listing == want && want != Listing::Pending)
            .filter(|s| symbol.is_none_or(|q| q.is_empty() || s.spec.name == q))
            .filter(|s| after.as_deref().is_none_or(|a| s.spec.name.as_str() > a))
            .collect();
        rows.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        rows.truncate(limit);
        // Like Bybit's, the cursor stays non-empty on the last page; following it gives an
        // empty list and an empty cursor.
        let next = match (rows.first(), rows.last()) {
            (Some(f), Some(l)) => format!("first%3D{}%26last%3D{}", f.spec.name, l.spec.name),
            _ => String::new(),
        };
        let status_str = match want {
            Listing::Trading => "Trading",
            Listing::Closed => "Closed",
            Listing::Pending => "PreLaunch",
        };
        let list = rows.iter().map(|s| wire::instrument_json(&s.spec, status_str, self.delivery_ms(s))).collect();
        let result = wire::InstrumentsResult { category: "linear", list, next_page_cursor: next };
        Ok(self.envelope(result))
    }

    /// Body of `/v5/market/orderbook`: the `orderbook.1000` view (same `u`), cut to `limit`.
    pub fn orderbook(&self, symbol: Option<&str>, limit: Option<&str>) -> Result<String, RestError> {
        let symbol = match symbol {
            None | Some("") => return Err(params_error("symbol is required")),
            Some(s) => s,
        };
        let limit = match limit {
            None | Some("") => 25,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=500).contains(&n) => n,
                _ => return Err(params_error("limit must be in [1, 500]")),
            },
        };
        let i = self.trading(symbol).ok_or_else(|| RestError(10001, "Not supported symbols".into()))?;
        let s = &self.symbols[i];
        let ds = &s.depths[3];
        let r = wire::OrderbookResult {
            spec: &s.spec,
            bids: &ds.bids[..ds.bids.len().min(limit)],
            asks: &ds.asks[..ds.asks.len().min(limit)],
            ts: ds.ts,
            u: ds.u,
            seq: ds.seq,
            cts: ds.cts,
        };
        Ok(self.envelope(r))
    }

    /// Body of `/v5/market/tickers` (all trading symbols, or one).
    pub fn tickers(&self, symbol: Option<&str>) -> Result<String, RestError> {
        let now = self.now_ms();
        let t_rel = self.step as i64 * self.cfg.tick_interval_ms as i64;
        let values: Vec<TickerValues> = match symbol {
            None | Some("") => {
                let mut v: Vec<&SymbolSim> =
                    self.symbols.iter().filter(|s| s.listing == Listing::Trading && s.market.is_some()).collect();
                v.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
                v.iter().filter_map(|s| s.market.as_ref().map(|m| m.ticker(t_rel, now))).collect()
            }
            Some(q) => {
                let i = self.trading(q).ok_or_else(|| RestError(10001, "Not supported symbols".into()))?;
                self.symbols[i].market.iter().map(|m| m.ticker(t_rel, now)).collect()
            }
        };
        Ok(self.envelope(wire::TickersResult { list: &values }))
    }

    /// What `/v5/market/kline` must compute (the candles are computed outside the lock, see
    /// [`history::KlineJob::body`]).
    pub fn kline_job(
        &self,
        symbol: Option<&str>,
        interval: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        limit: Option<&str>,
    ) -> Result<history::KlineJob, RestError> {
        let symbol = match symbol {
            None | Some("") => return Err(params_error("symbol is required")),
            Some(s) => s,
        };
        let query = KlineQuery::parse(interval, start, end, limit).map_err(|(c, m)| RestError(c, m))?;
        let i = self.trading(symbol).ok_or_else(|| RestError(10001, "Not supported symbols".into()))?;
        let s = &self.symbols[i];
        let (Some(market), Some(tape)) = (s.market.as_ref(), s.minutes.as_ref()) else {
            return Err(RestError(10001, "Not supported symbols".into()));
        };
        let src = history::Source {
            seed: mix_seed(self.cfg.seed ^ 0x4B4C_494E_4553, i as u64),
            spec: s.spec.clone(),
            calm: market.calm_stats(),
            tape: tape.clone(),
            listing_price: s.spec.start_price_ticks,
            has_past: s.list_step == 0,
        };
        Ok(history::KlineJob { src, query, now_ms: self.now_ms() })
    }

    /// Body of `/v5/market/time`.
    pub fn time(&self) -> String {
        let now = self.now_ms();
        let r = wire::TimeResult {
            time_second: now.div_euclid(1000).to_string(),
            time_nano: (now as i128 * 1_000_000).to_string(),
        };
        self.envelope(r)
    }

    /// A success envelope around `result`.
    pub fn envelope<T: serde::Serialize>(&self, result: T) -> String {
        let env =
            wire::Envelope { ret_code: 0, ret_msg: "OK", result, ret_ext_info: wire::Empty {}, time: self.now_ms() };
        serde_json::to_string(&env).unwrap_or_default()
    }

    /// An error envelope.
    pub fn error_body(&self, code: i64, msg: &str) -> String {
        let env = wire::Envelope {
            ret_code: code,
            ret_msg: msg,
            result: wire::Empty {},
            ret_ext_info: wire::Empty {},
            time: self.now_ms(),
        };
        serde_json::to_string(&env).unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------------
    // Introspection

    fn levels(spec: &InstrumentSpec, v: &[Lvl]) -> Vec<Level> {
        v.iter().map(|&(p, q)| Level { price: spec.price(p), qty: spec.qty(q) }).collect()
    }

    /// The simulator's own full book of a trading symbol.
    pub fn book_levels(&self, symbol: &str) -> Option<BookLevels> {
        let i = self.trading(symbol)?;
        let s = &self.symbols[i];
        let m = s.market.as_ref()?;
        let bids = m.book.top(Side::Buy, usize::MAX);
        let asks = m.book.top(Side::Sell, usize::MAX);
        Some(BookLevels {
            symbol: Symbol::new(symbol),
            bids: Self::levels(&s.spec, bids),
            asks: Self::levels(&s.spec, asks),
            update_id: None,
            seq: s.seq,
            ts_ms: s.last_ts,
        })
    }

    /// The last published view of `orderbook.{depth}.{symbol}` with its `u`.
    pub fn published_book(&self, symbol: &str, depth: usize) -> Option<BookLevels> {
        let i = self.trading(symbol)?;
        let d = DEPTHS.iter().position(|x| *x == depth)?;
        let s = &self.symbols[i];
        let ds = &s.depths[d];
        Some(BookLevels {
            symbol: Symbol::new(symbol),
            bids: Self::levels(&s.spec, &ds.bids),
            asks: Self::levels(&s.spec, &ds.asks),
            update_id: Some(ds.u),
            seq: ds.seq,
            ts_ms: ds.ts,
        })
    }

    /// Every symbol of the universe (pending listings included).
    pub fn symbol_infos(&self) -> Vec<SymbolInfo> {
        self.symbols
            .iter()
            .map(|s| SymbolInfo {
                symbol: Symbol::new(&s.spec.name),
                listing: s.listing,
                scenario: s.scenario.label(),
                launch_time_ms: s.spec.launch_time_ms,
                listing_time_ms: (s.list_step > 0).then(|| self.step_time(s.list_step)),
                delisting_time_ms: s.delist_step.map(|n| self.step_time(n)),
            })
            .collect()
    }

    /// Instrument of any known symbol with its current status.
    pub fn instrument(&self, symbol: &str) -> Option<Instrument> {
        let s = &self.symbols[*self.by_name.get(symbol)?];
        let status = match s.listing {
            Listing::Pending => InstrumentStatus::PreLaunch,
            Listing::Trading => InstrumentStatus::Trading,
            Listing::Closed => InstrumentStatus::Closed,
        };
        Some(s.spec.to_instrument(status))
    }

    /// Scenario events of a symbol (bounded history, oldest first).
    pub fn scenario_events(&self, symbol: &str) -> Option<Vec<ScenarioEvent>> {
        let s = &self.symbols[*self.by_name.get(symbol)?];
        let m = s.market.as_ref();
        Some(
            m.map(|m| {
                m.events.iter().map(|(n, k)| ScenarioEvent { ts_ms: self.step_time(*n), kind: k.clone() }).collect()
            })
            .unwrap_or_default(),
        )
    }

    /// Last published `u` of `orderbook.{depth}.{symbol}`.
    pub fn update_id(&self, symbol: &str, depth: usize) -> Option<u64> {
        let i = self.trading(symbol)?;
        let d = DEPTHS.iter().position(|x| *x == depth)?;
        Some(self.symbols[i].depths[d].u)
    }

    /// Subscribed topic names of every connection (for diagnostics).
    pub fn subscriptions(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.subs.iter().filter(|(_, l)| !l.is_empty()).map(|(t, _)| self.topic_name(*t)).collect();
        v.sort();
        v
    }
}

/// Reads Bybit's cursor (`first%3DA%26last%3DB`, or decoded `first=A&last=B`): the last symbol
/// of the previous page.
fn parse_cursor(c: &str) -> Option<String> {
    let decoded = c.replace("%3D", "=").replace("%3d", "=").replace("%26", "&");
    decoded.split('&').find_map(|kv| kv.strip_prefix("last=")).filter(|s| Symbol::is_valid(s)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(cfg: SimConfig) -> Exchange {
        Exchange::new(cfg, 1_700_000_000_000, Arc::new(Counters::default()))
    }

    #[test]
    fn cursor_forms() {
        assert_eq!(parse_cursor("first%3DBIOUSDT%26last%3DBTCUSDT").as_deref(), Some("BTCUSDT"));
        assert_eq!(parse_cursor("first=A1&last=SIM002USDT").as_deref(), Some("SIM002USDT"));
        assert_eq!(parse_cursor("garbage"), None);
    }

    #[test]
    fn depth_views_follow_the_book_and_u_increases() {
        let mut e =
            ex(SimConfig { symbols: 3, tick_interval_ms: 20, clock: ClockMode::Manual, ..SimConfig::default() });
        let u0 = e.update_id("BTCUSDT", 50).unwrap();
        for _ in 0..50 {
            e.step();
            let s = &e.symbols[0];
            let m = s.market.as_ref().unwrap();
            assert_eq!(s.depths[1].bids, m.book.top(Side::Buy, 50));
            assert_eq!(s.depths[1].asks, m.book.top(Side::Sell, 50));
            assert!(s.depths[1].bids.windows(2).all(|w| w[0].0 > w[1].0));
        }
        assert!(e.update_id("BTCUSDT", 50).unwrap() > u0);
        assert!(e.symbols[0].depths[3].bids.len() <= 1000);
    }

    #[test]
    fn listing_and_delisting_change_the_universe() {
        let cfg = SimConfig {
            symbols: 4,
            tick_interval_ms: 100,
            clock: ClockMode::Manual,
            events: vec![
                UniverseEvent::NewListing { symbol: "NEWUSDT".into(), at_ms: 300 },
                UniverseEvent::Delisting { symbol: "SIM001USDT".into(), at_ms: 500 },
            ],
            ..SimConfig::default()
        };
        let mut e = ex(cfg);
        assert!(e.trading("NEWUSDT").is_none());
        let body = e.instruments_info(None, None, None, None).unwrap();
        assert!(!body.contains("NEWUSDT"));
        assert!(body.contains("\"deliveryTime\":\"1700000000500\""));
        for _ in 0..3 {
            e.step();
        }
        assert!(e.trading("NEWUSDT").is_some());
        assert_eq!(e.instrument("NEWUSDT").unwrap().launch_time_ms, 1_700_000_000_300);
        for _ in 0..2 {
            e.step();
        }
        assert!(e.trading("SIM001USDT").is_none());
        let closed = e.instruments_info(None, Some("Closed"), None, None).unwrap();
        assert!(closed.contains("SIM001USDT"));
        assert_eq!(e.orderbook(Some("SIM001USDT"), None).unwrap_err().0, 10001);
    }

    #[test]
    fn rest_faults_count_down() {
        let mut e = ex(SimConfig { symbols: 1, clock: ClockMode::Manual, ..SimConfig::default() });
        e.apply_fault(&Fault::RestHttpError { status: 503, count: 2 }).unwrap();
        e.apply_fault(&Fault::RestRetCode { ret_code: 10006, count: 1 }).unwrap();
        assert_eq!(e.take_rest_fault(), Some(RestFault::Http(503)));
        assert_eq!(e.take_rest_fault(), Some(RestFault::Http(503)));
        assert_eq!(e.take_rest_fault(), Some(RestFault::RetCode(10006)));
        assert_eq!(e.take_rest_fault(), None);
        assert!(matches!(e.apply_fault(&Fault::SkipUpdateId { symbol: "X".into() }), Err(SimError::UnknownSymbol(_))));
    }

    #[test]
    fn scheduled_faults_fire_at_their_step() {
        use super::super::config::ScheduledFault;
        let cfg = SimConfig {
            symbols: 1,
            clock: ClockMode::Manual,
            faults: vec![ScheduledFault { at_ms: 250, fault: Fault::RestRetCode { ret_code: 10016, count: 1 } }],
            ..SimConfig::default()
        };
        let mut e = ex(cfg);
        e.step();
        e.step();
        assert_eq!(e.take_rest_fault(), None);
        e.step();
        assert_eq!(e.take_rest_fault(), Some(RestFault::RetCode(10016)));
    }

    #[test]
    fn level_one_is_re_pushed_after_three_quiet_seconds() {
        let mut book = Book::default();
        book.set(Side::Buy, 99, 5);
        book.set(Side::Sell, 101, 7);
        let mut ds = DepthStream { depth: 1, u: 10, ..DepthStream::default() };
        assert_eq!(ds.publish(&book, 1_000, 999, 1), Published::Changed(vec![(99, 5)], vec![(101, 7)]));
        assert_eq!((ds.u, ds.ts), (11, 1_000));
        assert_eq!(ds.publish(&book, 2_000, 1_999, 2), Published::Nothing);
        // A change below the top of a depth-1 view is no change.
        book.set(Side::Buy, 98, 1);
        assert_eq!(ds.publish(&book, 3_000, 2_999, 3), Published::Nothing);
        assert_eq!(ds.publish(&book, 4_000, 3_999, 4), Published::Repush);
        assert_eq!((ds.u, ds.ts), (11, 4_000));
        assert_eq!(ds.publish(&book, 5_000, 4_999, 5), Published::Nothing);
        book.set(Side::Sell, 101, 3);
        assert_eq!(ds.publish(&book, 5_100, 5_099, 6), Published::Changed(vec![], vec![(101, 3)]));
        assert_eq!((ds.u, ds.ts, ds.seq), (12, 5_100, 6));
        // Deeper views never re-push.
        let mut d50 = DepthStream { depth: 50, ..DepthStream::default() };
        assert!(matches!(d50.publish(&book, 0, 0, 1), Published::Changed(..)));
        assert_eq!(d50.publish(&book, 10_000, 9_999, 2), Published::Nothing);
    }
}
