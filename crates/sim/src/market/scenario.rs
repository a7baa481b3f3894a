//! Scenario effects on the market (pumps, dumps, news shocks, spoof and absorbing walls): the
//! per-step [`Effect`] a scenario has, the walls it places and how they leave the book, and the
//! bounded event log that tests check detection against.

use super::{Market, Wall};
use crate::config::Scenario;
use crate::{ScenarioEventKind, WallKind};
use rand::Rng;
use scalper_core::domain::Side;

/// Scenario events kept per market; the oldest go first.
const EVENTS_KEPT: usize = 256;
/// Scenario walls are at least this many times the mean size of the best 20 levels of their
/// side, so they stay exceptional in a heavy-tailed book.
const WALL_OVER_MEAN: f64 = 7.0;

/// How a wall left the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    Pulled,
    Consumed,
    RunOver,
}

/// Scenario bookkeeping between steps.
#[derive(Debug, Clone, Default)]
pub(super) struct ScState {
    phase: u8,
    pub(super) next_wall_ms: i64,
    breakout_until: u64,
    breakout_dir: f64,
}

/// Scenario influence on one step.
#[derive(Debug, Clone)]
pub(super) struct Effect {
    pub(super) drift_rel: f64,
    pub(super) drift_ticks: f64,
    pub(super) vol: f64,
    pub(super) activity: f64,
    pub(super) buy_bias: f64,
    pub(super) liq_mult: f64,
    pub(super) liq_side: Option<Side>,
    pub(super) cap_above: Option<f64>,
    pub(super) cap_below: Option<f64>,
    pub(super) place_wall: Option<WallKind>,
    /// Taker sizes other than the calm market's: (median as a multiple of the spec's typical
    /// trade size, log-sigma).
    pub(super) taker_sizes: Option<(f64, f64)>,
}

impl Default for Effect {
    fn default() -> Self {
        Effect {
            drift_rel: 0.0,
            drift_ticks: 0.0,
            vol: 1.0,
            activity: 1.0,
            buy_bias: 0.0,
            liq_mult: 1.0,
            liq_side: None,
            cap_above: None,
            cap_below: None,
            place_wall: None,
            taker_sizes: None,
        }
    }
}

impl Market {
    fn push_event(&mut self, step: u64, kind: ScenarioEventKind) {
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back((step, kind));
    }

    fn wall_placed_event(&self, w: &Wall) -> ScenarioEventKind {
        ScenarioEventKind::WallPlaced {
            side: w.side,
            price: self.spec.price(w.price),
            qty: self.spec.qty(w.lots),
            kind: w.kind,
        }
    }

    /// Records a wall that left the book and schedules the next one.
    fn wall_gone(&mut self, w: &Wall, n: u64, how: Gone) {
        let side = w.side;
        let price = self.spec.price(w.price);
        let t = n as i64 * self.tick_ms;
        let kind = match how {
            Gone::Pulled => ScenarioEventKind::WallPulled { side, price },
            Gone::Consumed => ScenarioEventKind::WallConsumed { side, price },
            Gone::RunOver => ScenarioEventKind::WallRemoved { side, price },
        };
        self.push_event(n, kind);
        match (&self.scenario, w.kind) {
            (Scenario::SpoofWalls { every_ms }, WallKind::Spoof) => self.sc.next_wall_ms = t + (*every_ms).max(1),
            (Scenario::AbsorbingWall { repeat_ms, .. }, WallKind::Absorbing) => {
                if how == Gone::Consumed {
                    // Break out through the eaten wall.
                    self.sc.breakout_dir = if side == Side::Sell { 1.0 } else { -1.0 };
                    self.sc.breakout_until = n + (3_000 / self.tick_ms).max(3) as u64;
                    self.sc.next_wall_ms = if *repeat_ms > 0 { t + repeat_ms } else { i64::MAX };
                } else {
                    // Not eaten (the price ran away): put a new one up soon.
                    self.sc.next_wall_ms = t + 1_000;
                }
            }
            _ => {}
        }
    }

    /// Scenario influence for step `n` at relative time `t`.
    pub(super) fn effect(&mut self, n: u64, t: i64) -> Effect {
        let mut e = Effect::default();
        let tick = self.tick_ms as f64;
        let steps = move |ms: i64| (ms as f64 / tick).max(1.0);
        match self.scenario.clone() {
            Scenario::Calm => {}
            Scenario::Pump { start_ms, duration_ms, magnitude_bps } => {
                let end = start_ms + duration_ms;
                if t >= start_ms && t < end {
                    if self.sc.phase == 0 {
                        self.sc.phase = 1;
                        self.push_event(n, ScenarioEventKind::PumpStarted);
                    }
                    e.drift_rel = magnitude_bps as f64 / 1e4 / steps(duration_ms);
                    e.activity = 3.0;
                    e.buy_bias = 0.2;
                    e.vol = 1.3;
                    e.liq_side = Some(Side::Sell);
                    e.liq_mult = 4.0;
                } else if t >= end && self.sc.phase == 1 {
                    self.sc.phase = 2;
                    self.push_event(n, ScenarioEventKind::PumpEnded);
                }
            }
            Scenario::PumpAndDump { start_ms, pump_ms, dump_ms, magnitude_bps } => {
                let top = start_ms + pump_ms;
                let end = top + dump_ms;
                let m = magnitude_bps as f64 / 1e4;
                if t >= start_ms && t < top {
                    if self.sc.phase == 0 {
                        self.sc.phase = 1;
                        self.push_event(n, ScenarioEventKind::PumpStarted);
                    }
                    e.drift_rel = m / steps(pump_ms);
                    e.activity = 3.0;
                    e.buy_bias = 0.2;
                    e.vol = 1.3;
                    e.liq_side = Some(Side::Sell);
                    e.liq_mult = 4.0;
                } else if t >= top && t < end {
                    if self.sc.phase < 2 {
                        self.sc.phase = 2;
                        self.push_event(n, ScenarioEventKind::DumpStarted);
                    }
                    e.drift_rel = -(m / (1.0 + m)) / steps(dump_ms);
                    e.activity = 5.0;
                    e.buy_bias = -0.25;
                    e.vol = 1.8;
                    e.liq_side = Some(Side::Buy);
                    e.liq_mult = 12.0;
                } else if t >= end && self.sc.phase == 2 {
                    self.sc.phase = 3;
                    self.push_event(n, ScenarioEventKind::DumpEnded);
                }
            }
            Scenario::NewsShock { at_ms, jump_bps } => {
                if t >= at_ms {
                    let j = jump_bps as f64 / 1e4;
                    if self.sc.phase == 0 {
                        self.sc.phase = 1;
                        self.push_event(n, ScenarioEventKind::ShockJump { bps: jump_bps });
                    }
                    let k = (-((t - at_ms) as f64) / 5_000.0).exp();
                    if t < at_ms + 3 * self.tick_ms {
                        e.drift_rel = j / 3.0;
                    }
                    e.activity = 1.0 + 9.0 * k;
                    e.vol = 1.0 + 2.0 * k;
                    e.liq_mult = 1.0 + 25.0 * k;
                    e.liq_side = Some(if j < 0.0 { Side::Buy } else { Side::Sell });
                    e.buy_bias = j.signum() * 0.2 * k;
                }
            }
            Scenario::SpoofWalls { .. } => {
                let reach = 1.0 + 1.5 * self.step_sigma_ticks();
                if let Some(i) = self.walls.iter().position(|w| w.kind == WallKind::Spoof) {
                    let w = self.walls[i].clone();
                    let touch = self.book.best(w.side).map(|l| l.0).unwrap_or(w.price);
                    let dist = (touch - w.price).abs() as f64;
                    let age_ms = (n - w.placed_step) as i64 * self.tick_ms;
                    if dist <= reach || age_ms > 30_000 {
                        // Pull before the price can reach it.
                        let left = (self.book.get(w.side, w.price) - w.lots).max(0);
                        self.book.set(w.side, w.price, left);
                        self.walls.remove(i);
                        self.wall_gone(&w, n, Gone::Pulled);
                    } else {
                        // The price drifts towards the wall, like a spoofer's bait.
                        let dir = if w.side == Side::Buy { -1.0 } else { 1.0 };
                        e.drift_ticks = dir * (0.3_f64).max(0.05 * dist);
                    }
                } else if t >= self.sc.next_wall_ms {
                    e.place_wall = Some(WallKind::Spoof);
                }
            }
            Scenario::AbsorbingWall { .. } => {
                if let Some(w) = self.walls.iter().find(|w| w.kind == WallKind::Absorbing).cloned() {
                    let s = self.spread();
                    let half = (s - 1) as f64 / 2.0;
                    // The wall is the best level of its own side once the quotes reach it.
                    let touch = self.book.best(w.side).map(|l| l.0);
                    let at_wall = touch == Some(w.price);
                    if w.side == Side::Sell {
                        e.cap_above = Some((w.price - s) as f64 + half + 0.49);
                        e.drift_ticks = 0.5_f64.max(0.05 * self.step_sigma_ticks());
                        e.buy_bias = if at_wall { 0.3 } else { 0.1 };
                    } else {
                        e.cap_below = Some(w.price as f64 + half + 0.01);
                        e.drift_ticks = -(0.5_f64.max(0.05 * self.step_sigma_ticks()));
                        e.buy_bias = if at_wall { -0.3 } else { -0.1 };
                    }
                    if at_wall {
                        e.activity = 4.0;
                        // Determined takers of ordinary size absorb the wall (the calm market's
                        // heavy-tailed sizes would make its pace a matter of a few rare prints).
                        e.taker_sizes = Some((2.0, 1.0));
                    }
                } else if n < self.sc.breakout_until {
                    e.drift_rel = self.sc.breakout_dir * 0.0004;
                    e.activity = 2.5;
                    e.buy_bias = self.sc.breakout_dir * 0.2;
                } else if t >= self.sc.next_wall_ms {
                    e.place_wall = Some(WallKind::Absorbing);
                }
            }
        }
        e
    }

    pub(super) fn check_walls(&mut self, n: u64) {
        let mut i = 0;
        while i < self.walls.len() {
            let w = self.walls[i].clone();
            let level = self.book.get(w.side, w.price);
            if level == 0 {
                self.walls.remove(i);
                let how = if w.kind == WallKind::Absorbing { Gone::Consumed } else { Gone::RunOver };
                self.wall_gone(&w, n, how);
                continue;
            }
            self.walls[i].lots = w.lots.min(level);
            i += 1;
        }
    }

    /// Forgets walls whose level is no longer in the book.
    pub(super) fn drop_vanished_walls(&mut self, n: u64) {
        let gone: Vec<Wall> = self.walls.iter().filter(|w| self.book.get(w.side, w.price) == 0).cloned().collect();
        for w in gone {
            self.walls.retain(|x| !(x.side == w.side && x.price == w.price));
            self.wall_gone(&w, n, Gone::RunOver);
        }
    }

    pub(super) fn is_wall(&self, side: Side, price: i64) -> bool {
        self.walls.iter().any(|w| w.side == side && w.price == price)
    }
    pub(super) fn place_wall(&mut self, kind: WallKind, n: u64) {
        let side = if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        let Some((touch, _)) = self.book.best(side) else { return };
        let sigma = self.step_sigma_ticks();
        let (dist, mult) = match kind {
            // Close enough to show in an orderbook.50 view, far enough to be pulled in time.
            WallKind::Spoof => (((3.0 + 4.0 * sigma).round() as i64 + self.rng.random_range(0..5)).min(60), 25.0),
            WallKind::Absorbing => ((2.0 + sigma).round() as i64 + self.rng.random_range(0..3), 15.0),
        };
        let price = if side == Side::Buy { touch - dist } else { touch + dist };
        if price <= 0 || self.is_wall(side, price) {
            return;
        }
        let top = self.book.top(side, 20);
        let mean = top.iter().map(|l| l.1 as f64).sum::<f64>() / top.len().max(1) as f64;
        let lots = (self.spec.level_lots * mult).max(WALL_OVER_MEAN * mean).round().max(1.0) as i64;
        let existing = self.book.get(side, price);
        self.book.set(side, price, existing + lots);
        let w = Wall { side, price, lots, kind, placed_step: n };
        let ev = self.wall_placed_event(&w);
        self.push_event(n, ev);
        self.walls.push(w);
        // The next wall is scheduled when this one is gone.
        self.sc.next_wall_ms = i64::MAX;
        // Keep the level count; the wall is near the touch, so only the far end is trimmed.
        self.book.trim(side, self.levels);
    }
}
