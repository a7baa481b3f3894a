//! The stream rewriting of an injection (see the parent module's docs): the real book kept in
//! ticks, the [`Script`] of a trial, the [`Injector`] that shifts prices, adds walls and trades
//! and renumbers updates, and the look-ahead over the real touch path ([`Background`],
//! [`spoof_spot`]). Separate from the trial loop and the report, which only choose a script and
//! judge the core's outputs.

use scalper_core::domain::{EventTime, Price, Qty, Side, Symbol, TimeMs};
use scalper_core::engine::event::{ControlCommand, Event, EventKind};
use scalper_core::features::math::median;
use scalper_core::market::data::{BookAction, BookUpdate, Level, Trade, TradeBatch};
use std::collections::BTreeMap;

/// Real top of book of one symbol over time, for the look-ahead.
#[derive(Debug, Clone, Copy)]
pub(super) struct Touch {
    pub(super) t: TimeMs,
    pub(super) bid: i64,
    pub(super) ask: i64,
}

/// The real book kept by the injector, in ticks.
#[derive(Debug, Clone, Default)]
pub(super) struct RealBook {
    bids: BTreeMap<i64, Qty>,
    asks: BTreeMap<i64, Qty>,
}

impl RealBook {
    pub(super) fn apply(&mut self, b: &BookUpdate, tick: Price) {
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
    pub(super) fn median_level(&self) -> f64 {
        let mut v: Vec<f64> =
            self.bids.iter().rev().take(20).chain(self.asks.iter().take(20)).map(|(_, q)| q.to_f64()).collect();
        median(&mut v).unwrap_or(0.0)
    }
    /// Largest level within `n` ticks of the touch on either side.
    pub(super) fn max_near(&self, n: i64) -> f64 {
        let Some((b, a)) = self.touch() else { return 0.0 };
        let mb = self.bids.range(b - n..=b).map(|(_, q)| q.to_f64()).fold(0.0, f64::max);
        let ma = self.asks.range(a..=a + n).map(|(_, q)| q.to_f64()).fold(0.0, f64::max);
        mb.max(ma)
    }
}

/// What the script does to the stream over time.
#[derive(Debug, Clone)]
pub(super) enum Script {
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
pub(super) struct Background {
    pub(super) tick: Price,
    depth: u16,
    pub(super) path: Vec<Touch>,
    pub(super) first_ms: TimeMs,
    pub(super) last_ms: TimeMs,
    pub(super) volume: f64,
}

pub(super) fn background(events: &[Event], sym: &Symbol) -> Option<Background> {
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
pub(super) fn spoof_spot(path: &[Touch], from: TimeMs, side: Side, dist: i64) -> Option<(TimeMs, i64, TimeMs)> {
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
pub(super) fn injected_stream(
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
