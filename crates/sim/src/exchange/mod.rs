//! The exchange state behind the sockets: every symbol's market, its published depth streams
//! (`u`, `seq`, views), tickers and liquidation batches, the subscriber registry, injected
//! faults and the clock. One mutex guards it; the market task holds it for one step at a time.
//!
//! Layout: this module holds the state, the constructor and the market step with the frame
//! dispatch it drives; `depth` the published depth views, `subs` connections and subscriptions,
//! `faults` fault injection, `rest` the public REST bodies and `introspect` the handle's views.

mod depth;
mod faults;
mod introspect;
mod rest;
mod subs;
#[cfg(test)]
mod tests;

pub(crate) use depth::DepthStream;
use depth::Published;
pub(crate) use faults::RestFault;
use faults::RestFaults;

use super::config::{ClockMode, Fault, Scenario, SimConfig, UniverseEvent};
use super::history::MinuteTape;
use super::market::Market;
use super::prints::{Liq, TickerValues};
use super::rng::mix_seed;
use super::universe::InstrumentSpec;
use super::wire::{self, BookFrame};
use super::Listing;
use scalper_core::domain::Side;
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
}
