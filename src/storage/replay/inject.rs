//! Labelled events injected into a real recorded background, for `scalper evaluate --inject` and
//! the real-data tests: a pump, a pump-and-dump, a spoof wall placed then pulled as the price
//! approaches, an absorbing wall eaten by sellers (or buyers), and a news shock (operator flag plus
//! a price drop). Each trial runs a fresh core on a slice of one symbol's real stream
//! (`lead_ms` before the injection, so the baselines warm up on real data, and `tail_ms` after),
//! and records whether and when the judgement saw the event.
//!
//! How an injection rewrites the real stream of its symbol (exact integer ticks throughout):
//! * the injector keeps the real book from the recording's own snapshots and deltas;
//! * a price move is a shift of every price by whole ticks: when the shift changes, a snapshot
//!   of the shifted real book is emitted (Bybit does the same after a resubscribe), and every
//!   later real delta and trade is shifted too; the aggressive trades of the move are added on
//!   top (taker buys at the ask while rising, sells at the bid while falling);
//! * a wall is an extra size on top of the real level at its price, added to every emitted
//!   update that touches that price, and removed by a delta when pulled or eaten;
//! * book updates are renumbered (`u` contiguous) because the stream gained updates.
//!
//! Where a spoof wall goes is chosen by looking ahead in the real touch path: at a distance the
//! price will approach within seconds, and pulled when the touch comes within one tick — the
//! canonical spoof. The placements, sizes and speeds are drawn from a seeded generator, so a
//! report is reproducible.

use super::evaluate::Evaluator;
use crate::config::Config;
use crate::domain::{EventTime, Price, Qty, Side, Symbol, TimeMs};
use crate::engine::event::{ControlCommand, Event, EventKind};
use crate::engine::output::{Output, Outputs};
use crate::features::math::median;
use crate::market::data::{BookAction, BookUpdate, Level, Trade, TradeBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The kinds of labelled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectKind {
    /// A fast rise on heavy buying that holds.
    Pump,
    /// A rise, then a fall through the start on heavy selling.
    PumpAndDump,
    /// A large wall near the touch, pulled as the price approaches.
    SpoofWall,
    /// A large wall at the touch, eaten by aggressive orders.
    AbsorbingWall,
    /// A manual news flag and a sharp drop.
    NewsShock,
}

impl InjectKind {
    /// All kinds.
    pub const ALL: [InjectKind; 5] = [
        InjectKind::Pump,
        InjectKind::PumpAndDump,
        InjectKind::SpoofWall,
        InjectKind::AbsorbingWall,
        InjectKind::NewsShock,
    ];
    /// Label.
    pub fn as_str(self) -> &'static str {
        match self {
            InjectKind::Pump => "pump",
            InjectKind::PumpAndDump => "pump_and_dump",
            InjectKind::SpoofWall => "spoof_wall",
            InjectKind::AbsorbingWall => "absorbing_wall",
            InjectKind::NewsShock => "news_shock",
        }
    }
}

/// What to inject.
#[derive(Debug, Clone)]
pub struct InjectPlan {
    /// Trials per kind and seed.
    pub trials_per_kind: usize,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Kinds.
    pub kinds: Vec<InjectKind>,
    /// Real background before the injection (covers the warm-up), ms.
    pub lead_ms: TimeMs,
    /// Background after the injection, ms.
    pub tail_ms: TimeMs,
}

impl Default for InjectPlan {
    fn default() -> Self {
        InjectPlan {
            trials_per_kind: 2,
            seeds: vec![1, 2, 3],
            kinds: InjectKind::ALL.to_vec(),
            lead_ms: 75_000,
            tail_ms: 60_000,
        }
    }
}

/// One injected event and what the judgement made of it.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Kind.
    pub kind: InjectKind,
    /// Symbol of the background.
    pub symbol: String,
    /// Seed.
    pub seed: u64,
    /// Injection time (start of the move, wall placement or news), ms.
    pub t0_ms: TimeMs,
    /// What was injected, in words.
    pub what: String,
    /// The judgement saw it (for the absorbing wall: it was never called SPOOFING).
    pub detected: bool,
    /// From the reference time (move start; pull for a spoof; dump start for the dump leg) to
    /// the detection, ms.
    pub delay_ms: Option<i64>,
    /// Absorbing wall only: SPOOFING verdicts at its price (must be 0).
    pub spoofing_calls: u32,
    /// Why it was not detected, or a note.
    pub note: String,
}

/// Recall and delays of one kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindStats {
    /// Trials.
    pub trials: usize,
    /// Detected.
    pub detected: usize,
    /// detected / trials.
    pub recall: f64,
    /// Median detection delay, seconds.
    pub median_delay_s: Option<f64>,
    /// Largest detection delay, seconds.
    pub max_delay_s: Option<f64>,
    /// SPOOFING calls on absorbing walls (must be 0).
    pub spoofing_calls: u32,
}

/// All trials.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InjectionReport {
    /// Per kind.
    pub kinds: BTreeMap<InjectKind, KindStats>,
    /// Every trial.
    pub trials: Vec<Trial>,
}

impl InjectionReport {
    fn from_trials(trials: Vec<Trial>) -> Self {
        let mut kinds: BTreeMap<InjectKind, KindStats> = BTreeMap::new();
        let mut delays: BTreeMap<InjectKind, Vec<i64>> = BTreeMap::new();
        for t in &trials {
            let k = kinds.entry(t.kind).or_default();
            k.trials += 1;
            k.detected += t.detected as usize;
            k.spoofing_calls += t.spoofing_calls;
            if let (true, Some(d)) = (t.detected, t.delay_ms) {
                delays.entry(t.kind).or_default().push(d);
            }
        }
        for (kind, k) in kinds.iter_mut() {
            k.recall = k.detected as f64 / k.trials.max(1) as f64;
            if let Some(d) = delays.get_mut(kind) {
                d.sort_unstable();
                if !d.is_empty() {
                    k.median_delay_s = Some(d[d.len() / 2] as f64 / 1000.0);
                    k.max_delay_s = d.last().map(|x| *x as f64 / 1000.0);
                }
            }
        }
        InjectionReport { kinds, trials }
    }

    /// A human table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<16} {:>6} {:>8} {:>7} {:>12} {:>9} {:>10}",
            "injected", "trials", "detected", "recall", "median delay", "max delay", "spoof-call"
        );
        for (k, s) in &self.kinds {
            let d = |x: Option<f64>| x.map(|v| format!("{v:.1} s")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                o,
                "{:<16} {:>6} {:>8} {:>6.0}% {:>12} {:>9} {:>10}",
                k.as_str(),
                s.trials,
                s.detected,
                s.recall * 100.0,
                d(s.median_delay_s),
                d(s.max_delay_s),
                s.spoofing_calls
            );
        }
        for t in self.trials.iter().filter(|t| !t.detected) {
            let _ = writeln!(
                o,
                "  missed: {} {} seed {} at {}: {} ({})",
                t.kind.as_str(),
                t.symbol,
                t.seed,
                t.t0_ms,
                t.what,
                t.note
            );
        }
        o
    }
}

/// Real top of book of one symbol over time, for the look-ahead.
#[derive(Debug, Clone, Copy)]
struct Touch {
    t: TimeMs,
    bid: i64,
    ask: i64,
}

/// The real book kept by the injector, in ticks.
#[derive(Debug, Clone, Default)]
struct RealBook {
    bids: BTreeMap<i64, Qty>,
    asks: BTreeMap<i64, Qty>,
}

impl RealBook {
    fn apply(&mut self, b: &BookUpdate, tick: Price) {
        if b.action == BookAction::Snapshot {
            self.bids.clear();
            self.asks.clear();
        }
        for (side, levels) in [(&mut self.bids, &b.bids), (&mut self.asks, &b.asks)] {
            for l in levels {
                let t = l.price.to_ticks(tick);
                if l.qty.raw() <= 0 {
                    side.remove(&t);
                } else {
                    side.insert(t, l.qty);
                }
            }
        }
    }
    fn touch(&self) -> Option<(i64, i64)> {
        Some((*self.bids.keys().next_back()?, *self.asks.keys().next()?))
    }
    fn qty(&self, side: Side, t: i64) -> Qty {
        let m = if side == Side::Buy { &self.bids } else { &self.asks };
        m.get(&t).copied().unwrap_or(Qty::ZERO)
    }
    /// Median size of the top 20 levels of both sides (as the core measures a book's level size).
    fn median_level(&self) -> f64 {
        let mut v: Vec<f64> =
            self.bids.iter().rev().take(20).chain(self.asks.iter().take(20)).map(|(_, q)| q.to_f64()).collect();
        median(&mut v).unwrap_or(0.0)
    }
    /// Largest level within `n` ticks of the touch on either side.
    fn max_near(&self, n: i64) -> f64 {
        let Some((b, a)) = self.touch() else { return 0.0 };
        let mb = self.bids.range(b - n..=b).map(|(_, q)| q.to_f64()).fold(0.0, f64::max);
        let ma = self.asks.range(a..=a + n).map(|(_, q)| q.to_f64()).fold(0.0, f64::max);
        mb.max(ma)
    }
}

/// What the script does to the stream over time.
#[derive(Debug, Clone)]
enum Script {
    /// Shift by `rise` ticks linearly over `dur_ms` from `t0`; with a dump, back by `fall` ticks
    /// over `dump_ms` starting at `dump_at`. `vol_per_s`: taker volume of the move per second.
    Move { t0: TimeMs, dur_ms: i64, rise: i64, dump_at: Option<TimeMs>, dump_ms: i64, fall: i64, vol_per_s: f64 },
    /// A wall of `size` at `price` ticks on `side` from `t0` until `pull` (spoof) or eaten from
    /// `eat_at` over `eat_ms` (absorbing).
    Wall { side: Side, price: i64, size: Qty, t0: TimeMs, pull: Option<TimeMs>, eat_at: Option<TimeMs>, eat_ms: i64 },
}

/// Actions are applied on a 100 ms grid.
const STEP_MS: i64 = 100;

struct Injector {
    sym: Symbol,
    tick: Price,
    depth: u16,
    real: RealBook,
    shift: i64,
    emitted_shift: i64,
    /// Extra size on top of the real book: (side, shifted ticks) → size.
    extra: BTreeMap<(bool, i64), Qty>,
    u: u64,
    seq: u64,
    script: Script,
    /// Wall size eaten so far (absorbing).
    eaten: Qty,
    wall_live: bool,
    /// The wall was placed and has gone (pulled or eaten): never placed again.
    wall_done: bool,
    next_step: TimeMs,
    /// A manual news flag to raise at this time (impact, type), once.
    news: Option<(TimeMs, f64, &'static str)>,
}

impl Injector {
    fn price(&self, t: i64) -> Price {
        Price::from_ticks(t, self.tick)
    }

    fn book_event(&mut self, now: TimeMs, action: BookAction, bids: Vec<Level>, asks: Vec<Level>) -> Event {
        self.u += 1;
        self.seq += 1;
        let upd = BookUpdate {
            symbol: self.sym.clone(),
            action,
            depth: self.depth,
            bids,
            asks,
            update_id: self.u,
            seq: self.seq,
            cts_ms: Some(now),
        };
        Event::new(0, EventTime { exchange_ms: Some(now), recv_ms: now }, EventKind::Book(upd))
    }

    fn extra_at(&self, side: Side, t: i64) -> Qty {
        self.extra.get(&(side == Side::Buy, t)).copied().unwrap_or(Qty::ZERO)
    }

    /// A snapshot of the shifted real book plus the extras.
    fn snapshot(&mut self, now: TimeMs) -> Event {
        let sh = self.shift;
        let n = self.depth as usize;
        let mut bids: BTreeMap<i64, Qty> = self.real.bids.iter().rev().take(n).map(|(t, q)| (t + sh, *q)).collect();
        let mut asks: BTreeMap<i64, Qty> = self.real.asks.iter().take(n).map(|(t, q)| (t + sh, *q)).collect();
        for ((is_bid, t), q) in &self.extra {
            let m = if *is_bid { &mut bids } else { &mut asks };
            let e = m.entry(*t).or_insert(Qty::ZERO);
            *e = Qty::from_raw(e.raw() + q.raw());
        }
        let bl: Vec<Level> = bids.iter().rev().map(|(t, q)| Level { price: self.price(*t), qty: *q }).collect();
        let al: Vec<Level> = asks.iter().map(|(t, q)| Level { price: self.price(*t), qty: *q }).collect();
        self.emitted_shift = sh;
        self.book_event(now, BookAction::Snapshot, bl, al)
    }

    /// A real delta, shifted, with the extras merged at the prices it touches.
    fn delta(&mut self, b: &BookUpdate, now: TimeMs) -> Event {
        let sh = self.shift;
        let side_levels = |levels: &[Level], side: Side| -> Vec<Level> {
            levels
                .iter()
                .map(|l| {
                    let t = l.price.to_ticks(self.tick) + sh;
                    let q = Qty::from_raw(l.qty.raw().max(0) + self.extra_at(side, t).raw());
                    Level { price: self.price(t), qty: q }
                })
                .collect()
        };
        let bids = side_levels(&b.bids, Side::Buy);
        let asks = side_levels(&b.asks, Side::Sell);
        self.book_event(now, BookAction::Delta, bids, asks)
    }

    /// A delta that sets one level to real + extra.
    fn level_delta(&mut self, side: Side, t: i64, now: TimeMs) -> Event {
        let real = self.real.qty(side, t - self.shift);
        let q = Qty::from_raw(real.raw() + self.extra_at(side, t).raw());
        let l = vec![Level { price: self.price(t), qty: q }];
        if side == Side::Buy {
            self.book_event(now, BookAction::Delta, l, vec![])
        } else {
            self.book_event(now, BookAction::Delta, vec![], l)
        }
    }

    fn trades(&mut self, now: TimeMs, side: Side, price_t: i64, total: f64, n: usize) -> Option<Event> {
        if total <= 0.0 || n == 0 {
            return None;
        }
        let each = Qty::from_f64(total / n as f64);
        if each.raw() <= 0 {
            return None;
        }
        let trades = (0..n)
            .map(|i| Trade {
                ts_ms: now,
                price: self.price(price_t),
                qty: each,
                aggressor: side,
                id: format!("inj-{now}-{i}"),
                block_trade: false,
                rpi: false,
            })
            .collect();
        Some(Event::new(
            0,
            EventTime { exchange_ms: Some(now), recv_ms: now },
            EventKind::Trades(TradeBatch { symbol: self.sym.clone(), trades }),
        ))
    }

    /// Scripted actions due up to `now`, on the step grid.
    fn step_to(&mut self, now: TimeMs, out: &mut Vec<Event>) {
        while self.next_step <= now {
            let t = self.next_step;
            self.next_step += STEP_MS;
            self.act(t, out);
        }
    }

    fn act(&mut self, t: TimeMs, out: &mut Vec<Event>) {
        if let Some((at, impact, kind)) = self.news {
            if t >= at {
                self.news = None;
                let cmd = ControlCommand::SetNewsFlag {
                    symbol: self.sym.clone(),
                    impact,
                    news_type: kind.to_string(),
                    expires_ms: t + 15 * 60_000,
                };
                out.push(Event::new(0, EventTime::local(t), EventKind::Control(cmd)));
            }
        }
        let Some((rb, ra)) = self.real.touch() else { return };
        match self.script.clone() {
            Script::Move { t0, dur_ms, rise, dump_at, dump_ms, fall, vol_per_s } => {
                if t < t0 {
                    return;
                }
                let frac = |x: i64, d: i64| (x as f64 / d.max(1) as f64).clamp(0.0, 1.0);
                let mut target = (rise as f64 * frac(t - t0, dur_ms)).round() as i64;
                let mut falling = rise < 0;
                let mut moving = t - t0 < dur_ms;
                if let Some(d0) = dump_at {
                    if t >= d0 {
                        target = rise - (fall as f64 * frac(t - d0, dump_ms)).round() as i64;
                        falling = true;
                        moving = t - d0 < dump_ms;
                    }
                }
                if target != self.shift {
                    self.shift = target;
                    out.push(self.snapshot(t));
                }
                if moving {
                    let vol = vol_per_s * STEP_MS as f64 / 1000.0;
                    let (side, px) = if falling { (Side::Sell, rb + self.shift) } else { (Side::Buy, ra + self.shift) };
                    // Mostly one way: a tenth of the volume trades against the move.
                    out.extend(self.trades(t, side, px, vol * 0.9, 3));
                    let (os, op) = if falling { (Side::Buy, ra + self.shift) } else { (Side::Sell, rb + self.shift) };
                    out.extend(self.trades(t, os, op, vol * 0.1, 1));
                }
            }
            Script::Wall { side, price, size, t0, pull, eat_at, eat_ms } => {
                let key = (side == Side::Buy, price);
                let crossed = if side == Side::Buy { ra <= price } else { rb >= price };
                if t >= t0 && !self.wall_live && !self.wall_done && pull.is_none_or(|p| t < p) && !crossed {
                    self.wall_live = true;
                    self.extra.insert(key, size);
                    out.push(self.level_delta(side, price, t));
                    return;
                }
                if !self.wall_live {
                    return;
                }
                if pull.is_some_and(|p| t >= p) || (crossed && eat_at.is_none()) {
                    self.wall_live = false;
                    self.wall_done = true;
                    self.extra.remove(&key);
                    out.push(self.level_delta(side, price, t));
                    return;
                }
                if let Some(e0) = eat_at {
                    if t >= e0 || crossed {
                        // Aggressors of the other side eat the wall at its price.
                        let per_step = size.raw() / (eat_ms / STEP_MS).max(1);
                        let left = size.raw() - self.eaten.raw();
                        let bite = if crossed { left } else { per_step.min(left) };
                        if bite > 0 {
                            out.extend(self.trades(t, side.opposite(), price, Qty::from_raw(bite).to_f64(), 2));
                            self.eaten = Qty::from_raw(self.eaten.raw() + bite);
                            let rest = size.raw() - self.eaten.raw();
                            if rest <= 0 {
                                self.extra.remove(&key);
                                self.wall_live = false;
                                self.wall_done = true;
                            } else {
                                self.extra.insert(key, Qty::from_raw(rest));
                            }
                            out.push(self.level_delta(side, price, t));
                        }
                    }
                }
            }
        }
    }
}

/// The real touch path and per-second volume of one symbol.
struct Background {
    tick: Price,
    depth: u16,
    path: Vec<Touch>,
    first_ms: TimeMs,
    last_ms: TimeMs,
    volume: f64,
}

fn background(events: &[Event], sym: &Symbol) -> Option<Background> {
    let mut tick = None;
    let mut real = RealBook::default();
    let mut path = Vec::new();
    let (mut first, mut last, mut volume, mut depth) = (None, 0, 0.0, 50u16);
    for ev in events {
        match &ev.kind {
            EventKind::Universe(list) => {
                tick = list.iter().find(|i| &i.symbol == sym).map(|i| i.tick_size).or(tick);
            }
            EventKind::Book(b) if &b.symbol == sym => {
                let tk = tick?;
                depth = b.depth.max(depth);
                real.apply(b, tk);
                if let Some((bid, ask)) = real.touch() {
                    path.push(Touch { t: ev.now_ms(), bid, ask });
                    first.get_or_insert(ev.now_ms());
                    last = ev.now_ms();
                }
            }
            EventKind::Trades(b) if &b.symbol == sym => {
                volume += b.trades.iter().map(|t| t.qty.to_f64()).sum::<f64>();
            }
            _ => {}
        }
    }
    let first_ms = first?;
    let secs = ((last - first_ms) as f64 / 1000.0).max(1.0);
    Some(Background { tick: tick?, depth, path, first_ms, last_ms: last, volume: volume / secs })
}

/// Finds a spoof placement at or after `from`: (place time, wall price, pull time) such that the
/// touch on `side` comes within one tick of the wall 1–10 s later without crossing it and without
/// first drifting more than two ticks further away than where it started (the price creeps
/// towards the wall: the canonical spoof, pulled just before it would trade).
fn spoof_spot(path: &[Touch], from: TimeMs, side: Side, dist: i64) -> Option<(TimeMs, i64, TimeMs)> {
    let start = path.partition_point(|x| x.t < from);
    for i in start..path.len() {
        let p = path[i];
        let wall = if side == Side::Buy { p.bid - dist } else { p.ask + dist };
        for q in &path[i + 1..] {
            if q.t - p.t > 10_000 {
                break;
            }
            let d = if side == Side::Buy { q.bid - wall } else { wall - q.ask };
            if d <= 0 || d > dist + 2 {
                break;
            }
            if d <= 1 {
                if q.t - p.t >= 1_000 {
                    return Some((p.t, wall, q.t));
                }
                break;
            }
        }
    }
    None
}

/// Builds the injected stream of one trial: header events, then the symbol's slice with the
/// script applied.
fn injected_stream(
    events: &[Event],
    sym: &Symbol,
    bg: &Background,
    script: Script,
    news: Option<(TimeMs, f64, &'static str)>,
    from: TimeMs,
    to: TimeMs,
) -> Vec<Event> {
    let mut inj = Injector {
        sym: sym.clone(),
        tick: bg.tick,
        depth: bg.depth,
        real: RealBook::default(),
        shift: 0,
        emitted_shift: 0,
        extra: BTreeMap::new(),
        u: 0,
        seq: 0,
        script,
        eaten: Qty::ZERO,
        wall_live: false,
        wall_done: false,
        next_step: from,
        news,
    };
    let mut out = Vec::new();
    let mut started = false;
    for ev in events {
        let now = ev.now_ms();
        if now >= to {
            break;
        }
        let mine = ev.symbol().is_some_and(|s| s == sym);
        let market = ev.is_market_data();
        if now < from {
            match &ev.kind {
                EventKind::Book(b) if mine => inj.real.apply(b, bg.tick),
                _ if market || matches!(ev.kind, EventKind::Timer(_)) => {}
                _ if ev.symbol().is_some_and(|s| s != sym) => {}
                _ => out.push(ev.clone()),
            }
            continue;
        }
        if !started {
            started = true;
            out.push(inj.snapshot(now));
        }
        let mut pre = Vec::new();
        inj.step_to(now, &mut pre);
        out.extend(pre);
        match &ev.kind {
            EventKind::Book(b) if mine => {
                inj.real.apply(b, bg.tick);
                // The real market moved through an injected wall: it was traded through
                // (eaten by the market) before this update; never publish a crossed book.
                if let Some((rb, ra)) = inj.real.touch() {
                    let sh = inj.shift;
                    let crossed: Vec<(bool, i64, Qty)> = inj
                        .extra
                        .iter()
                        .filter(|((bid, t), _)| if *bid { *t >= ra + sh } else { *t <= rb + sh })
                        .map(|((bid, t), q)| (*bid, *t, *q))
                        .collect();
                    for (bid, t, q) in crossed {
                        let side = if bid { Side::Buy } else { Side::Sell };
                        out.extend(inj.trades(now, side.opposite(), t, q.to_f64(), 2));
                        inj.eaten = Qty::from_raw(inj.eaten.raw() + q.raw());
                        inj.extra.remove(&(bid, t));
                        inj.wall_live = false;
                        inj.wall_done = true;
                    }
                }
                if inj.emitted_shift != inj.shift {
                    out.push(inj.snapshot(now));
                } else {
                    out.push(inj.delta(b, now));
                }
                if matches!(inj.script, Script::Wall { .. }) {
                    // A wall is pulled on the very update that brought the price near it.
                    let mut after = Vec::new();
                    inj.act(now, &mut after);
                    out.extend(after);
                }
            }
            EventKind::Trades(b) if mine => {
                let sh = inj.shift;
                let trades = b
                    .trades
                    .iter()
                    .map(|t| Trade { price: Price::from_ticks(t.price.to_ticks(bg.tick) + sh, bg.tick), ..t.clone() })
                    .collect();
                out.push(Event { kind: EventKind::Trades(TradeBatch { symbol: sym.clone(), trades }), ..ev.clone() });
            }
            _ if mine => out.push(ev.clone()),
            _ if ev.symbol().is_some() => {}
            _ => out.push(ev.clone()),
        }
    }
    for (i, e) in out.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    out
}

/// What to look for in the outputs.
enum Expect {
    /// Pump phase PUMPING / BLOWOFF (or regime PUMP) after `t0`; with `dump_at`, then DUMP after it.
    Pump { t0: TimeMs, dump_at: Option<TimeMs> },
    /// A SPOOFING verdict at the wall's price after `pull` (within 5 s).
    Spoof { price: Price, pull: TimeMs },
    /// No SPOOFING verdict at the wall's price.
    Absorb { price: Price },
    /// Regime NEWS_DRIVEN after `t0`.
    News { t0: TimeMs },
}

fn record_bodies(out: &Outputs) -> impl Iterator<Item = &serde_json::Value> {
    out.items.iter().filter_map(|o| match o {
        Output::Record(r) => Some(&r.body),
        _ => None,
    })
}

fn run_trial(stream: &[Event], sym: &Symbol, cfg: &Arc<Config>, expect: &Expect) -> (bool, Option<i64>, u32, String) {
    let mut ev = Evaluator::new(cfg.clone(), 0);
    let (mut first_hit, mut dump_hit, mut spoof_calls): (Option<TimeMs>, Option<TimeMs>, u32) = (None, None, 0);
    let mut warm_at_t0 = None;
    for e in stream {
        let out = ev.feed(e);
        let now = e.now_ms();
        if warm_at_t0.is_none() {
            let t0 = match expect {
                Expect::Pump { t0, .. } | Expect::News { t0 } => *t0,
                Expect::Spoof { pull, .. } => *pull,
                Expect::Absorb { .. } => 0,
            };
            if now >= t0 {
                warm_at_t0 = Some(ev.core().symbol(sym).is_some_and(|m| m.intel.snapshot().baseline_warm));
            }
        }
        for b in record_bodies(&out) {
            let kind = b.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let to = b.get("to").and_then(|k| k.as_str()).unwrap_or("");
            match expect {
                Expect::Pump { t0, dump_at } => {
                    if now >= *t0
                        && first_hit.is_none()
                        && ((kind == "PUMP" && matches!(to, "PUMPING" | "BLOWOFF"))
                            || (kind == "REGIME" && to == "PUMP"))
                    {
                        first_hit = Some(now);
                    }
                    if let Some(d0) = dump_at {
                        if now >= *d0 && dump_hit.is_none() && kind == "PUMP" && to == "DUMP" {
                            dump_hit = Some(now);
                        }
                    }
                }
                Expect::Spoof { price, .. } | Expect::Absorb { price } => {
                    if kind == "WALL" && b.get("outcome").and_then(|v| v.as_str()) == Some("SPOOFING") {
                        let p = b.get("price").and_then(|v| v.as_str()).and_then(|s| Price::parse(s).ok());
                        if p == Some(*price) {
                            spoof_calls += 1;
                            if let Expect::Spoof { pull, .. } = expect {
                                if now >= *pull && now - pull <= 5_000 && first_hit.is_none() {
                                    first_hit = Some(now);
                                }
                            }
                        }
                    }
                }
                Expect::News { t0 } => {
                    if now >= *t0 && first_hit.is_none() && kind == "REGIME" && to == "NEWS_DRIVEN" {
                        first_hit = Some(now);
                    }
                }
            }
        }
    }
    let warm_note = if warm_at_t0 == Some(false) { "baselines still cold at the injection; " } else { "" };
    match expect {
        Expect::Pump { t0, dump_at } => {
            let ok = first_hit.is_some() && (dump_at.is_none() || dump_hit.is_some());
            let note = match (first_hit, dump_at, dump_hit) {
                (None, _, _) => format!("{warm_note}no PUMPING"),
                (Some(_), Some(_), None) => format!("{warm_note}PUMPING seen, no DUMP"),
                _ => String::new(),
            };
            (ok, first_hit.map(|h| h - t0), 0, note)
        }
        Expect::Spoof { pull, .. } => (
            first_hit.is_some(),
            first_hit.map(|h| h - pull),
            spoof_calls,
            if first_hit.is_none() { format!("{warm_note}no SPOOFING verdict at the wall") } else { String::new() },
        ),
        Expect::Absorb { .. } => (
            spoof_calls == 0,
            None,
            spoof_calls,
            if spoof_calls > 0 { "called SPOOFING".into() } else { String::new() },
        ),
        Expect::News { t0 } => (
            first_hit.is_some(),
            first_hit.map(|h| h - t0),
            0,
            if first_hit.is_none() { format!("{warm_note}no NEWS_DRIVEN") } else { String::new() },
        ),
    }
}

/// Runs every trial of `plan` on `events` (a real background) and reports recall and delays.
/// Symbols need at least `lead_ms + tail_ms` of book data to be used.
pub fn evaluate_injections(events: &[Event], cfg: Arc<Config>, plan: &InjectPlan) -> InjectionReport {
    evaluate_injections_with_progress(events, cfg, plan, &mut |_, _| {})
}

/// [`evaluate_injections`] calling `progress(trials started, trials planned)` before each trial
/// (a trial skipped for lack of a fitting spot still counts as started).
pub fn evaluate_injections_with_progress(
    events: &[Event],
    cfg: Arc<Config>,
    plan: &InjectPlan,
    progress: &mut dyn FnMut(u64, u64),
) -> InjectionReport {
    let planned = (plan.seeds.len() * plan.kinds.len() * plan.trials_per_kind) as u64;
    let mut started = 0u64;
    let mut syms: Vec<Symbol> = Vec::new();
    for ev in events {
        if let EventKind::Universe(list) = &ev.kind {
            for i in list {
                if !syms.contains(&i.symbol) {
                    syms.push(i.symbol.clone());
                }
            }
        }
    }
    syms.sort();
    let bgs: Vec<(Symbol, Background)> = syms
        .iter()
        .filter_map(|s| background(events, s).map(|b| (s.clone(), b)))
        .filter(|(_, b)| b.last_ms - b.first_ms >= plan.lead_ms + plan.tail_ms)
        .collect();
    let mut trials = Vec::new();
    if bgs.is_empty() {
        return InjectionReport::from_trials(trials);
    }
    for &seed in &plan.seeds {
        for (ki, &kind) in plan.kinds.iter().enumerate() {
            for n in 0..plan.trials_per_kind {
                progress(started, planned);
                started += 1;
                let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ ((ki as u64) << 32) ^ n as u64);
                let (sym, bg) = &bgs[(n + ki + seed as usize) % bgs.len()];
                let lo = bg.first_ms + plan.lead_ms;
                let hi = bg.last_ms - plan.tail_ms;
                let t0 = lo + rng.random_range(0..=(hi - lo).max(0));
                let Some((rb, ra)) = bg.path.iter().find(|x| x.t >= t0).map(|x| (x.bid, x.ask)) else { continue };
                let mid = (rb + ra) as f64 / 2.0;
                let ticks_of_pct = |pct: f64| ((mid * pct / 100.0).round() as i64).max(1);
                let mut real = RealBook::default();
                for ev in events.iter().take_while(|e| e.now_ms() < t0) {
                    if let EventKind::Book(b) = &ev.kind {
                        if &b.symbol == sym {
                            real.apply(b, bg.tick);
                        }
                    }
                }
                let median = real.median_level().max(bg.tick.to_f64().max(1e-8));
                let wall_size = |rng: &mut SmallRng| {
                    let mult: f64 = rng.random_range(30.0..60.0);
                    Qty::from_f64((median * mult).max(real.max_near(10) * 1.5))
                };
                let vol_per_s = bg.volume * rng.random_range(6.0..12.0);
                let (script, expect, what, from, to) = match kind {
                    InjectKind::Pump | InjectKind::PumpAndDump => {
                        let pct: f64 = rng.random_range(2.0..6.0);
                        let dur = rng.random_range(15_000..45_000);
                        let rise = ticks_of_pct(pct);
                        let (dump_at, dump_ms, fall) = if kind == InjectKind::PumpAndDump {
                            let at = t0 + dur + rng.random_range(3_000..10_000);
                            (
                                Some(at),
                                rng.random_range(5_000..15_000),
                                (rise as f64 * rng.random_range(1.0..1.3)) as i64,
                            )
                        } else {
                            (None, 0, 0)
                        };
                        let what = format!(
                            "+{pct:.1} % over {:.0} s{}",
                            dur as f64 / 1000.0,
                            if dump_at.is_some() { ", then dumped" } else { "" }
                        );
                        let end = dump_at.map(|d| d + dump_ms).unwrap_or(t0 + dur) + 30_000;
                        (
                            Script::Move { t0, dur_ms: dur, rise, dump_at, dump_ms, fall, vol_per_s },
                            Expect::Pump { t0, dump_at },
                            what,
                            t0 - plan.lead_ms,
                            end.min(bg.last_ms + 1),
                        )
                    }
                    InjectKind::NewsShock => {
                        let pct: f64 = rng.random_range(1.5..3.0);
                        let dur = rng.random_range(3_000..6_000);
                        (
                            Script::Move {
                                t0,
                                dur_ms: dur,
                                rise: -ticks_of_pct(pct),
                                dump_at: None,
                                dump_ms: 0,
                                fall: 0,
                                vol_per_s,
                            },
                            Expect::News { t0 },
                            format!("HACK flag, −{pct:.1} % over {:.0} s", dur as f64 / 1000.0),
                            t0 - plan.lead_ms,
                            (t0 + 30_000).min(bg.last_ms + 1),
                        )
                    }
                    InjectKind::SpoofWall => {
                        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
                        let dist = rng.random_range(3..=5);
                        let found = spoof_spot(&bg.path, t0, side, dist)
                            .map(|x| (side, x))
                            .or_else(|| spoof_spot(&bg.path, t0, side.opposite(), dist).map(|x| (side.opposite(), x)));
                        let Some((side, (place, wall, pull))) = found else {
                            continue;
                        };
                        let size = wall_size(&mut rng);
                        (
                            Script::Wall {
                                side,
                                price: wall,
                                size,
                                t0: place,
                                pull: Some(pull),
                                eat_at: None,
                                eat_ms: 0,
                            },
                            Expect::Spoof { price: Price::from_ticks(wall, bg.tick), pull },
                            format!(
                                "{} wall at {} ({} × median), {dist} ticks out, pulled after {:.1} s",
                                if side == Side::Buy { "bid" } else { "ask" },
                                Price::from_ticks(wall, bg.tick),
                                (size.to_f64() / median).round(),
                                (pull - place) as f64 / 1000.0
                            ),
                            place - plan.lead_ms,
                            (pull + 20_000).min(bg.last_ms + 1),
                        )
                    }
                    InjectKind::AbsorbingWall => {
                        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
                        let price = if side == Side::Buy { rb } else { ra };
                        let size = wall_size(&mut rng);
                        let eat_at = t0 + rng.random_range(1_500..4_000);
                        let eat_ms = rng.random_range(1_000..3_000);
                        (
                            Script::Wall { side, price, size, t0, pull: None, eat_at: Some(eat_at), eat_ms },
                            Expect::Absorb { price: Price::from_ticks(price, bg.tick) },
                            format!(
                                "{} wall {} × median at the touch, eaten in {:.1} s",
                                if side == Side::Buy { "bid" } else { "ask" },
                                (size.to_f64() / median).round(),
                                eat_ms as f64 / 1000.0
                            ),
                            t0 - plan.lead_ms,
                            (eat_at + eat_ms + 20_000).min(bg.last_ms + 1),
                        )
                    }
                };
                let news = (kind == InjectKind::NewsShock).then_some((t0, 0.8, "HACK"));
                let stream = injected_stream(events, sym, bg, script, news, from.max(bg.first_ms), to);
                let (detected, delay_ms, spoofing_calls, note) = run_trial(&stream, sym, &cfg, &expect);
                let t0_ms = match expect {
                    Expect::Spoof { pull, .. } => pull,
                    _ => t0,
                };
                trials.push(Trial {
                    kind,
                    symbol: sym.as_str().to_string(),
                    seed,
                    t0_ms,
                    what,
                    detected,
                    delay_ms,
                    spoofing_calls,
                    note,
                });
            }
        }
    }
    InjectionReport::from_trials(trials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoof_spot_finds_an_approach_and_refuses_a_cross() {
        let path: Vec<Touch> = (0..50).map(|i| Touch { t: i * 200, bid: 100 - i / 5, ask: 101 - i / 5 }).collect();
        // Bid falls one tick per second: a wall 4 ticks under the bid at t=0 is within a tick
        // at t = 3 s.
        let (place, wall, pull) = spoof_spot(&path, 0, Side::Buy, 4).unwrap();
        assert_eq!((place, wall), (0, 96));
        assert!(pull >= 1_000 && path.iter().find(|p| p.t == pull).unwrap().bid - wall == 1);
        // Asks never approach from above in a falling market.
        assert!(spoof_spot(&path, 0, Side::Sell, 4).is_none());
    }
}
