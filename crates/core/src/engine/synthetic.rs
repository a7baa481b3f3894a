//! Seeded synthetic input streams for benchmarks, tests and the bundled replay fixture. Every
//! stream here is a pure function of its parameters and seed: same inputs, same events.
//!
//! * [`UniverseStream`]: a full universe (500+ symbols) at orderbook.50 cadence — snapshots,
//!   then deltas of 1–6 levels near the touch, trade batches, one `Timer(Second)` per second of
//!   stream time. Used by `scalper bench-replay` and `benches/replay.rs`.
//! * [`TradingMarket`]: a few symbols whose random walk, book imbalance and tape make the core
//!   enter, manage and exit positions in SIM. Used for the bundled backtest recording.

use crate::config::Config;
use crate::domain::{EventTime, Fixed, Price, Qty, Side, Symbol, TimeMs};
use crate::engine::event::{Event, EventKind, FeedState, TimerKind};
use crate::features::baseline::BaselineState;
use crate::market::data::{BookAction, BookUpdate, Instrument, InstrumentStatus, Level, Trade, TradeBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// 2026-01-01T00:00:00Z: start time of the synthetic streams.
pub const EPOCH_MS: TimeMs = 1_767_225_600_000;

fn instrument(symbol: Symbol, tick: Price, step: &str) -> Instrument {
    let q = |s: &str| Qty::parse(s).unwrap_or(Qty::ZERO);
    Instrument {
        symbol,
        status: InstrumentStatus::Trading,
        tick_size: tick,
        qty_step: q(step),
        min_qty: q(step),
        max_qty: q("100000"),
        min_notional: Price(Fixed::from_int(5)),
        max_leverage: Price(Fixed::from_int(50)),
        launch_time_ms: 0,
    }
}

/// A synthetic full-universe market-data stream (see the module docs).
pub struct UniverseStream {
    rng: SmallRng,
    syms: Vec<Symbol>,
    /// Per symbol: mid in ticks and last update id.
    state: Vec<(i64, u64)>,
    n: u64,
    events_per_ms: u64,
    start_ms: TimeMs,
    next_second: TimeMs,
    pending_timer: Option<Event>,
}

impl UniverseStream {
    /// Tick size of every synthetic instrument.
    pub const TICK: Price = Price::from_raw(10_000_000);
    /// Book depth of the stream.
    pub const DEPTH: u16 = 50;

    /// A stream over `symbols` symbols with `events_per_ms` market events per millisecond of
    /// stream time (25/ms ≈ 500 symbols × orderbook.50's 20 ms cadence + trades).
    pub fn new(symbols: usize, seed: u64, events_per_ms: u64) -> Self {
        let syms: Vec<Symbol> = (0..symbols).map(|i| Symbol::new(&format!("S{i:04}USDT"))).collect();
        let state = (0..symbols).map(|i| (100_000 + i as i64 * 10, 1000)).collect();
        UniverseStream {
            rng: SmallRng::seed_from_u64(seed),
            syms,
            state,
            n: 0,
            events_per_ms: events_per_ms.max(1),
            start_ms: EPOCH_MS,
            next_second: EPOCH_MS + 1000,
            pending_timer: None,
        }
    }

    /// The configuration the stream is meant for: every symbol at depth 50.
    pub fn config() -> Config {
        let mut cfg = Config::default();
        cfg.categories.prime.book_depth = Self::DEPTH;
        cfg.universe.prime_top_n = 0;
        cfg
    }

    /// The instrument list.
    pub fn instruments(&self) -> Vec<Instrument> {
        self.syms.iter().map(|s| instrument(s.clone(), Self::TICK, "0.001")).collect()
    }

    fn lvl(t: i64, q: i64) -> Level {
        Level { price: Price::from_ticks(t, Self::TICK), qty: Qty::from_raw(q * 100_000) }
    }

    /// Set-up events: feed connected, the universe and one depth-50 snapshot per symbol.
    pub fn setup(&mut self) -> Vec<Event> {
        let t = EventTime::local(self.start_ms);
        let mut out = vec![
            Event::new(0, t, EventKind::Feed { connection: 0, state: FeedState::Connected }),
            Event::new(0, t, EventKind::Universe(self.instruments())),
        ];
        for i in 0..self.syms.len() {
            let mid = self.state[i].0;
            let bids = (0..50).map(|_| self.rng.random_range(1..500)).collect::<Vec<i64>>();
            let asks = (0..50).map(|_| self.rng.random_range(1..500)).collect::<Vec<i64>>();
            let bids = bids.iter().enumerate().map(|(k, q)| Self::lvl(mid - 1 - k as i64, *q)).collect();
            let asks = asks.iter().enumerate().map(|(k, q)| Self::lvl(mid + 1 + k as i64, *q)).collect();
            out.push(Event::new(
                0,
                EventTime::local(self.start_ms + 1),
                EventKind::Book(BookUpdate {
                    symbol: self.syms[i].clone(),
                    action: BookAction::Snapshot,
                    depth: Self::DEPTH,
                    bids,
                    asks,
                    update_id: self.state[i].1,
                    seq: self.state[i].1,
                    cts_ms: Some(self.start_ms + 1),
                }),
            ));
        }
        out
    }

    fn market_event(&mut self, now: TimeMs) -> Event {
        let n = self.n;
        let i = self.rng.random_range(0..self.syms.len());
        let s = self.syms[i].clone();
        let mid = self.state[i].0;
        if n % 4 == 3 {
            let side = if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
            let px = if side == Side::Buy { mid + 1 } else { mid - 1 };
            let count = self.rng.random_range(1..4);
            let trades = (0..count)
                .map(|k| Trade {
                    ts_ms: now,
                    price: Price::from_ticks(px, Self::TICK),
                    qty: Qty::from_raw(self.rng.random_range(1..50) * 100_000),
                    aggressor: side,
                    id: format!("{n}-{k}"),
                    block_trade: false,
                    rpi: false,
                })
                .collect();
            Event::new(0, EventTime::local(now), EventKind::Trades(TradeBatch { symbol: s, trades }))
        } else {
            self.state[i].1 += 1;
            let u = self.state[i].1;
            let k = self.rng.random_range(1..=6);
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            for _ in 0..k {
                let off = self.rng.random_range(1..=20);
                let q = if self.rng.random_bool(0.15) { 0 } else { self.rng.random_range(1..500) };
                if self.rng.random_bool(0.5) {
                    bids.push(Self::lvl(mid - off, q));
                } else {
                    asks.push(Self::lvl(mid + off, q));
                }
            }
            Event::new(
                0,
                EventTime { exchange_ms: Some(now), recv_ms: now },
                EventKind::Book(BookUpdate {
                    symbol: s,
                    action: BookAction::Delta,
                    depth: Self::DEPTH,
                    bids,
                    asks,
                    update_id: u,
                    seq: u,
                    cts_ms: Some(now),
                }),
            )
        }
    }
}

impl Iterator for UniverseStream {
    type Item = Event;

    /// The next event of the measured stream (endless; `seq` is 0, the consumer stamps it).
    fn next(&mut self) -> Option<Event> {
        if let Some(t) = self.pending_timer.take() {
            return Some(t);
        }
        let now = self.start_ms + 10 + (self.n / self.events_per_ms) as TimeMs;
        if now >= self.next_second {
            let at = self.next_second;
            self.next_second += 1000;
            let ev = self.market_event(now);
            self.n += 1;
            self.pending_timer = Some(ev);
            return Some(Event::new(0, EventTime::local(at), EventKind::Timer(TimerKind::Second)));
        }
        let ev = self.market_event(now);
        self.n += 1;
        Some(ev)
    }
}

/// One symbol of a [`TradingMarket`].
struct Walker {
    symbol: Symbol,
    mid: i64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    u: u64,
    /// +1 trending up, -1 down.
    trend: i64,
}

/// A small hand-built market that trades (see the module docs). Books are 10 levels a side in
/// ticks of 0.01 around a random walk whose trend flips now and then; the side the trend favours
/// rests heavier, and the tape leans with the trend.
pub struct TradingMarket {
    rng: SmallRng,
    walkers: Vec<Walker>,
    now: TimeMs,
    seq: u64,
    next_second: TimeMs,
    max_move: i64,
}

impl TradingMarket {
    /// Tick size.
    pub const TICK: Price = Price::from_raw(1_000_000);
    /// Levels per side.
    pub const LEVELS: i64 = 10;
    /// Milliseconds between market steps.
    pub const STEP_MS: TimeMs = 100;

    /// A market of `symbols` symbols (`AAAUSDT`, `ABAUSDT`, …).
    pub fn new(symbols: usize, seed: u64) -> Self {
        let walkers = (0..symbols)
            .map(|i| {
                let name = format!("A{}{}USDT", (b'A' + (i / 26) as u8) as char, (b'A' + (i % 26) as u8) as char);
                Walker {
                    symbol: Symbol::new(&name),
                    mid: 10_000 + 500 * i as i64,
                    bids: BTreeMap::new(),
                    asks: BTreeMap::new(),
                    u: 0,
                    trend: 1,
                }
            })
            .collect();
        TradingMarket {
            rng: SmallRng::seed_from_u64(seed),
            walkers,
            now: EPOCH_MS,
            seq: 0,
            next_second: EPOCH_MS,
            max_move: 1,
        }
    }

    /// Largest move of one step, in ticks (1 by default).
    pub fn with_max_move(mut self, ticks: i64) -> Self {
        self.max_move = ticks.max(1);
        self
    }

    /// The configuration the market is meant for: default, with signals armed by any positive
    /// score and six concurrent positions (the market exercises the trading path, not signal
    /// quality).
    pub fn config() -> Config {
        let mut cfg = Config::default();
        cfg.thresholds.watch = 0.0;
        cfg.thresholds.arm = 0.0;
        cfg.categories.normal.max_positions = 6;
        cfg.categories.wild.max_positions = 6;
        cfg
    }

    fn ev(&mut self, time: EventTime, kind: EventKind) -> Event {
        self.seq += 1;
        Event::new(self.seq, time, kind)
    }

    /// A trade event of walker `w`: one print of `qty` units at `px` ticks, stamped now, its id
    /// from the event's sequence number.
    fn trade_event(&mut self, w: usize, side: Side, px: i64, qty: i64) -> Event {
        let t = Trade {
            ts_ms: self.now,
            price: Price::from_ticks(px, Self::TICK),
            qty: Qty(Fixed::from_int(qty)),
            aggressor: side,
            id: format!("x{}", self.seq + 1),
            block_trade: false,
            rpi: false,
        };
        let symbol = self.walkers[w].symbol.clone();
        let now = self.now;
        self.ev(
            EventTime { exchange_ms: Some(now), recv_ms: now },
            EventKind::Trades(TradeBatch { symbol, trades: vec![t] }),
        )
    }

    /// The book after a step: levels kept where they were, new levels at the base size of
    /// their side, one level per side re-sized; a trend flip re-weights every level.
    fn target_book(&mut self, w: usize, flipped: bool) -> (BTreeMap<i64, i64>, BTreeMap<i64, i64>) {
        let (mid, trend) = (self.walkers[w].mid, self.walkers[w].trend);
        let (bq, aq) = if trend > 0 { (30, 10) } else { (10, 30) };
        let mut side = |old: &BTreeMap<i64, i64>, range: std::ops::RangeInclusive<i64>, base: i64| {
            let mut m: BTreeMap<i64, i64> = BTreeMap::new();
            for t in range.clone() {
                let q = match old.get(&t) {
                    Some(q) if !flipped => *q,
                    _ => base + self.rng.random_range(0..5),
                };
                m.insert(t, q);
            }
            let k = *range.start() + self.rng.random_range(0..Self::LEVELS);
            m.insert(k, base + self.rng.random_range(0..5));
            m
        };
        let bids = side(&self.walkers[w].bids, mid - Self::LEVELS..=mid - 1, bq);
        let asks = side(&self.walkers[w].asks, mid + 1..=mid + Self::LEVELS, aq);
        (bids, asks)
    }

    fn diff(old: &BTreeMap<i64, i64>, new: &BTreeMap<i64, i64>) -> Vec<Level> {
        let lvl = |t: i64, q: i64| Level { price: Price::from_ticks(t, Self::TICK), qty: Qty(Fixed::from_int(q)) };
        let mut out: Vec<Level> = old.keys().filter(|t| !new.contains_key(t)).map(|t| lvl(*t, 0)).collect::<Vec<_>>();
        out.extend(new.iter().filter(|(t, q)| old.get(t) != Some(q)).map(|(t, q)| lvl(*t, *q)));
        out
    }

    fn book_event(&mut self, w: usize, snapshot: bool, flipped: bool) -> Event {
        let (bids, asks) = self.target_book(w, flipped);
        let lvl =
            |(t, q): (&i64, &i64)| Level { price: Price::from_ticks(*t, Self::TICK), qty: Qty(Fixed::from_int(*q)) };
        let (action, b, a) = if snapshot {
            let b = bids.iter().rev().map(lvl).collect();
            let a = asks.iter().map(lvl).collect();
            (BookAction::Snapshot, b, a)
        } else {
            let wk = &self.walkers[w];
            (BookAction::Delta, Self::diff(&wk.bids, &bids), Self::diff(&wk.asks, &asks))
        };
        let wk = &mut self.walkers[w];
        wk.bids = bids;
        wk.asks = asks;
        wk.u += 1;
        let upd = BookUpdate {
            symbol: wk.symbol.clone(),
            action,
            depth: 50,
            bids: b,
            asks: a,
            update_id: wk.u,
            seq: wk.u,
            cts_ms: Some(self.now),
        };
        let now = self.now;
        self.ev(EventTime { exchange_ms: Some(now), recv_ms: now + 1 }, EventKind::Book(upd))
    }

    /// The set-up events: feed connected, the universe, each symbol's baselines (as a restart
    /// restores them from its profile, so it trades without a warm-up) and a snapshot per symbol.
    pub fn setup(&mut self) -> Vec<Event> {
        let now = self.now;
        let mut out =
            vec![self.ev(EventTime::local(now), EventKind::Feed { connection: 0, state: FeedState::Connected })];
        let insts = self.walkers.iter().map(|w| instrument(w.symbol.clone(), Self::TICK, "0.1")).collect();
        out.push(self.ev(EventTime::local(now), EventKind::Universe(insts)));
        for w in 0..self.walkers.len() {
            let symbol = self.walkers[w].symbol.clone();
            // A tick or two per step on a ~100 price: σ(5 s) ≈ 0.1 %, 20 units a level.
            let state = BaselineState::steady(0.01, 10.0, 5.0, 10.0, 20.0, 20_000.0, now);
            out.push(self.ev(EventTime::local(now), EventKind::Baselines { symbol, state }));
        }
        for w in 0..self.walkers.len() {
            out.push(self.book_event(w, true, true));
        }
        self.next_second = now + 1000;
        out
    }

    /// Events of one market step (every symbol moves), with a `Timer(Second)` first when a
    /// second boundary is crossed.
    pub fn step(&mut self) -> Vec<Event> {
        self.now += Self::STEP_MS;
        let mut out = Vec::new();
        if self.now >= self.next_second {
            let at = self.next_second;
            self.next_second += 1000;
            out.push(self.ev(EventTime::local(at), EventKind::Timer(TimerKind::Second)));
        }
        for w in 0..self.walkers.len() {
            let flipped = self.rng.random_bool(0.03);
            if flipped {
                self.walkers[w].trend = -self.walkers[w].trend;
            }
            let up = self.rng.random_bool(if self.walkers[w].trend > 0 { 0.6 } else { 0.4 });
            let old_mid = self.walkers[w].mid;
            let size = self.rng.random_range(1..=self.max_move);
            let mv = if self.rng.random_bool(0.5) {
                0
            } else if up {
                size
            } else {
                -size
            };
            // The move is printed on the tape first: the aggressor sweeps from the touch to the
            // new one.
            if mv != 0 {
                let (side, px) = if mv > 0 { (Side::Buy, old_mid + mv) } else { (Side::Sell, old_mid + mv) };
                let qty = self.rng.random_range(20..80);
                out.push(self.trade_event(w, side, px, qty));
                self.walkers[w].mid += mv;
            } else if self.rng.random_bool(0.5) {
                let side = if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
                let px = if side == Side::Buy { old_mid + 1 } else { old_mid - 1 };
                let qty = self.rng.random_range(1..10);
                out.push(self.trade_event(w, side, px, qty));
            }
            out.push(self.book_event(w, false, flipped));
        }
        out
    }

    /// Set-up plus `steps` market steps, seq-stamped from 1.
    pub fn events(&mut self, steps: usize) -> Vec<Event> {
        let mut out = self.setup();
        for _ in 0..steps {
            out.extend(self.step());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_pure_functions_of_their_seed() {
        let a: Vec<Event> = UniverseStream::new(20, 7, 5).take(3000).collect();
        let b: Vec<Event> = UniverseStream::new(20, 7, 5).take(3000).collect();
        let c: Vec<Event> = UniverseStream::new(20, 8, 5).take(3000).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let timers = a.iter().filter(|e| matches!(e.kind, EventKind::Timer(TimerKind::Second))).count();
        // 3000 events at 5/ms ≈ 600 ms after a 10 ms offset: no whole second yet; longer: one per second.
        assert_eq!(timers, 0);
        let long: Vec<Event> = UniverseStream::new(20, 7, 5).take(12_000).collect();
        let t: Vec<TimeMs> =
            long.iter().filter(|e| matches!(e.kind, EventKind::Timer(TimerKind::Second))).map(|e| e.now_ms()).collect();
        assert_eq!(t, vec![EPOCH_MS + 1000, EPOCH_MS + 2000]);
        assert_eq!(TradingMarket::new(2, 3).events(50), TradingMarket::new(2, 3).events(50));
    }
}
