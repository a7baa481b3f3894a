//! Per-symbol synthetic market: a latent fair price that random-walks (plus scenario drift),
//! market makers quoting an exact-tick book around it, takers printing trades against the book,
//! liquidations, open interest, funding and 24 h statistics. Pure and deterministic: the state
//! after step `n` depends only on the seed, the config and `n`.
//!
//! The calm market is calibrated to real perpetual-futures data (`tests/sim_realism.rs`,
//! [`crate::market::stats`]):
//! * **Stochastic volatility.** The fair price's per-step volatility is the symbol's base
//!   volatility times `exp(x - s²)`, where the log-volatility state `x` is an AR(1) process
//!   with stationary standard deviation `s` ([`VOL_OF_VOL`]) and time constant
//!   [`VOL_MEMORY_MS`]. The mean variance is unchanged (`E[exp(2(x - s²))] = 1`), but 1 s
//!   returns get fat tails (excess kurtosis about 8-10) and volatility clusters (|1 s return|
//!   autocorrelation about 0.25 at 1 s, fading by 10 s). Taker activity follows the same state.
//! * **Heavy-tailed level sizes.** A new level is dust (a fraction of the typical size), a
//!   typical level, or, rarely, a large resting order ([`LevelMix`]; at most [`BIG_PER_SIDE`]
//!   among the best 20 levels of a side); near the touch large levels are sticky (quote updates
//!   never re-size or pull them), so the touch region shows many small levels and a few very
//!   large ones.
//! * **Heavy-tailed trade sizes.** Log-normal with log-sigma [`TRADE_SIZE_SIGMA`] around a small
//!   median, with the mean trade size unchanged: most prints are tiny, a few are huge.

use super::book::Book;
use super::config::Scenario;
use super::history::CalmStats;
use super::rng::{geometric, lognormal, mix_seed, normal, poisson, uuid_like};
use super::universe::InstrumentSpec;
use super::wire::Dec;
use super::{ScenarioEventKind, WallKind};
use crate::domain::Side;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

const MS_PER_YEAR: f64 = 365.25 * 24.0 * 3_600_000.0;
const BUCKET_MS: i64 = 300_000;
const BUCKETS: usize = 288;
const DAY_MS: i64 = 86_400_000;
const EVENTS_KEPT: usize = 256;

/// Stationary standard deviation of the log-volatility state (dimensionless). Excess kurtosis of
/// returns under log-normal stochastic volatility is `3 (exp(4 s²) - 1)`: about 10 for 0.6.
pub(crate) const VOL_OF_VOL: f64 = 0.7;
/// Time constant of the log-volatility state, ms of simulated time (> 0).
pub(crate) const VOL_MEMORY_MS: f64 = 3_000.0;
/// Exponent linking taker activity to the volatility state (0 = independent). The activity
/// multiplier `exp(a x - a² s² / 2)` has mean 1.
const ACTIVITY_VOL_LINK: f64 = 0.5;
/// Log-sigma of the trade-size distribution (the old market used 1.0): p90 / median is
/// `exp(1.28 σ)` (about 19), p99 / median `exp(2.33 σ)` (about 210).
pub(crate) const TRADE_SIZE_SIGMA: f64 = 2.5;
/// Median trade size as a multiple of the spec's typical trade size. Sizes are capped at 12
/// typical level sizes (= 72 typical trades, see `InstrumentSpec`); with that cap the mean of a
/// log-normal with this median and log-sigma [`TRADE_SIZE_SIGMA`] is 1.65 typical trades, the
/// old market's mean, so volumes, turnover and the pace at which walls are eaten are unchanged.
const TRADE_MEDIAN_OVER_TYPICAL: f64 = 0.107;
/// A level at least this many typical level sizes is a large resting order. Within
/// [`BIG_STICKY_TICKS`] of the touch random quote updates never re-size or pull it: it leaves
/// only when traded, run over by the quotes or left behind by the price. (Pulling large levels
/// near a moving touch is what spoofing looks like: the calm market must not do it, only the
/// spoof-wall scenario does.)
const BIG_LEVEL_MIN: f64 = 6.0;
/// Distance from the touch, ticks, within which large levels are sticky (twice the distance the
/// spoof detector calls "near").
const BIG_STICKY_TICKS: i64 = 8;
/// At most this many large levels among the best 20 of a side: a mixture draw of a large level
/// beyond it becomes a typical one (slow books would otherwise fill up with sticky large levels).
const BIG_PER_SIDE: usize = 2;
/// Scenario walls are at least this many times the mean size of the best 20 levels of their
/// side, so they stay exceptional in a heavy-tailed book.
const WALL_OVER_MEAN: f64 = 7.0;

/// Mixture of level sizes, as multiples of the typical level size (log-normal components).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LevelMix {
    /// Share of dust levels (0..1).
    pub dust_share: f64,
    /// Median dust size, typical sizes.
    pub dust_size: f64,
    /// Share of large levels (0..1, `dust_share + big_share < 1`).
    pub big_share: f64,
    /// Median large-level size, typical sizes.
    pub big_size: f64,
    /// Log-sigma of the typical component.
    pub sigma: f64,
}

/// The calm market's level-size mixture: near the touch, p90 / median about 4, p99 / median
/// about 30, 3 % of levels at 12x the median or more (real perps range from flat alt books,
/// p90 about 2, to majors full of tiny orders, p90 above 20).
pub(crate) const LEVEL_MIX: LevelMix =
    LevelMix { dust_share: 0.2, dust_size: 0.12, big_share: 0.03, big_size: 15.0, sigma: 0.8 };

/// Bybit tick direction of the last trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TickDir {
    Plus,
    ZeroPlus,
    Minus,
    ZeroMinus,
}

impl TickDir {
    /// Bybit spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TickDir::Plus => "PlusTick",
            TickDir::ZeroPlus => "ZeroPlusTick",
            TickDir::Minus => "MinusTick",
            TickDir::ZeroMinus => "ZeroMinusTick",
        }
    }
}

/// One fill printed on the tape.
#[derive(Debug, Clone)]
pub(crate) struct Fill {
    pub price: i64,
    pub lots: i64,
    pub taker: Side,
    pub dir: TickDir,
    pub id: String,
}

/// One liquidation (side of the liquidated position).
#[derive(Debug, Clone)]
pub(crate) struct Liq {
    pub side: Side,
    pub price: i64,
    pub lots: i64,
}

/// What one step produced.
#[derive(Debug, Default)]
pub(crate) struct StepOut {
    pub fills: Vec<Fill>,
    pub liqs: Vec<Liq>,
}

/// A large resting order placed by a scenario.
#[derive(Debug, Clone)]
pub(crate) struct Wall {
    pub side: Side,
    pub price: i64,
    pub lots: i64,
    pub kind: WallKind,
    pub placed_step: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    id: i64,
    open: i64,
    high: i64,
    low: i64,
    vol: i64,
    turnover: f64,
}

const EMPTY_BUCKET: Bucket = Bucket { id: i64::MIN, open: 0, high: i64::MIN, low: i64::MAX, vol: 0, turnover: 0.0 };

/// Rolling 24 h statistics in 5-minute buckets, blended with a seeded "virtual" history for the
/// first day so tickers look like a market that existed before the simulator started.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    buckets: Vec<Bucket>,
    cur: i64,
    vol_sum: i64,
    turnover_sum: f64,
    hi: i64,
    lo: i64,
    listed_ms: i64,
    v_prev24: i64,
    v_prev1h: i64,
    v_high: i64,
    v_low: i64,
    v_vol: f64,
    v_turnover: f64,
}

impl Stats {
    fn slot(id: i64) -> usize {
        id.rem_euclid(BUCKETS as i64) as usize
    }

    fn roll(&mut self, t_rel: i64, last: i64) {
        let id = t_rel.div_euclid(BUCKET_MS);
        if id <= self.cur {
            return;
        }
        let from = if id - self.cur > BUCKETS as i64 { id - BUCKETS as i64 + 1 } else { self.cur + 1 };
        for b in from..=id {
            let s = Self::slot(b);
            let old = self.buckets[s];
            if old.id != i64::MIN {
                self.vol_sum -= old.vol;
                self.turnover_sum -= old.turnover;
            }
            self.buckets[s] = Bucket { id: b, open: last, high: last, low: last, vol: 0, turnover: 0.0 };
        }
        // Buckets older than the window that were never overwritten.
        for s in 0..BUCKETS {
            let old = self.buckets[s];
            if old.id != i64::MIN && old.id <= id - BUCKETS as i64 {
                self.vol_sum -= old.vol;
                self.turnover_sum -= old.turnover;
                self.buckets[s] = EMPTY_BUCKET;
            }
        }
        self.cur = id;
        self.hi = self.buckets.iter().filter(|b| b.id != i64::MIN).map(|b| b.high).max().unwrap_or(i64::MIN);
        self.lo = self.buckets.iter().filter(|b| b.id != i64::MIN).map(|b| b.low).min().unwrap_or(i64::MAX);
    }

    fn on_trade(&mut self, price: i64, lots: i64, turnover: f64) {
        let b = &mut self.buckets[Self::slot(self.cur)];
        b.high = b.high.max(price);
        b.low = b.low.min(price);
        b.vol += lots;
        b.turnover += turnover;
        self.vol_sum += lots;
        self.turnover_sum += turnover;
        self.hi = self.hi.max(price);
        self.lo = self.lo.min(price);
    }

    fn virtual_weight(&self, t_rel: i64) -> f64 {
        (1.0 - (t_rel - self.listed_ms) as f64 / DAY_MS as f64).clamp(0.0, 1.0)
    }

    fn open_of(&self, id: i64) -> Option<i64> {
        let b = self.buckets[Self::slot(id)];
        (b.id == id).then_some(b.open)
    }
}

/// How a wall left the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    Pulled,
    Consumed,
    RunOver,
}

/// Scenario bookkeeping between steps.
#[derive(Debug, Clone, Default)]
struct ScState {
    phase: u8,
    next_wall_ms: i64,
    breakout_until: u64,
    breakout_dir: f64,
}

/// Scenario influence on one step.
#[derive(Debug, Clone)]
struct Effect {
    drift_rel: f64,
    drift_ticks: f64,
    vol: f64,
    activity: f64,
    buy_bias: f64,
    liq_mult: f64,
    liq_side: Option<Side>,
    cap_above: Option<f64>,
    cap_below: Option<f64>,
    place_wall: Option<WallKind>,
    /// Taker sizes other than the calm market's: (median as a multiple of the spec's typical
    /// trade size, log-sigma).
    taker_sizes: Option<(f64, f64)>,
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

/// The market of one symbol.
#[derive(Debug, Clone)]
pub(crate) struct Market {
    rng: SmallRng,
    pub spec: InstrumentSpec,
    tick_ms: i64,
    levels: usize,
    sigma_rel: f64,
    trade_rate: f64,
    /// Median trade size, lots ([`TRADE_MEDIAN_OVER_TYPICAL`] x the spec's typical size).
    trade_median: f64,
    /// Log-volatility state `x` (stationary N(0, VOL_OF_VOL²)).
    lvol: f64,
    /// AR(1) coefficient of `x` per step.
    lvol_phi: f64,
    /// Innovation standard deviation of `x` per step.
    lvol_eta: f64,
    pub fair: f64,
    pub book: Book,
    pub last_price: i64,
    pub tick_dir: TickDir,
    pub walls: Vec<Wall>,
    scenario: Scenario,
    sc: ScState,
    stats: Stats,
    oi_lots: f64,
    funding: f64,
    basis: f64,
    /// Scenario events (step, kind), newest last, bounded.
    pub events: VecDeque<(u64, ScenarioEventKind)>,
}

impl Market {
    /// A market for `spec` seeded from (`seed`, `index`), listed at `listed_step`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seed: u64,
        index: usize,
        spec: InstrumentSpec,
        scenario: Scenario,
        tick_ms: u64,
        levels: usize,
        volatility: f64,
        listed_step: u64,
    ) -> Market {
        let mut rng = SmallRng::seed_from_u64(mix_seed(seed, index as u64));
        let tick_ms = tick_ms as i64;
        let p0 = spec.start_price_ticks;
        let sigma_rel = spec.vol_annual * volatility * (tick_ms as f64 / MS_PER_YEAR).sqrt();
        let trade_rate = spec.trades_per_sec * tick_ms as f64 / 1000.0;
        let u = |rng: &mut SmallRng, a: f64, b: f64| a + (b - a) * rng.random::<f64>();
        let p0f = p0 as f64;
        let prev24 = (p0f * (1.0 + u(&mut rng, -0.08, 0.08))).round() as i64;
        let hi = (p0f.max(prev24 as f64) * (1.0 + u(&mut rng, 0.0, 0.04))).round() as i64;
        let lo = (p0f.min(prev24 as f64) * (1.0 - u(&mut rng, 0.0, 0.04))).round().max(1.0) as i64;
        // Mean trade size is about 1.65x the typical size (see TRADE_MEDIAN_OVER_TYPICAL).
        let v_vol = spec.trades_per_sec * 86_400.0 * spec.trade_lots * 1.65 * u(&mut rng, 0.8, 1.2);
        let v_turnover = spec.qty_f(v_vol) * spec.price_f(p0f);
        let prev1h = (p0f * (1.0 + u(&mut rng, -0.01, 0.01))).round() as i64;
        let listed_ms = listed_step as i64 * tick_ms;
        let stats = Stats {
            buckets: vec![EMPTY_BUCKET; BUCKETS],
            cur: listed_ms.div_euclid(BUCKET_MS) - 1,
            vol_sum: 0,
            turnover_sum: 0.0,
            hi: i64::MIN,
            lo: i64::MAX,
            listed_ms,
            v_prev24: prev24,
            v_prev1h: prev1h,
            v_high: hi,
            v_low: lo,
            v_vol,
            v_turnover,
        };
        let oi_lots = spec.level_lots * 3_000.0 * u(&mut rng, 0.5, 2.0);
        let funding = u(&mut rng, -0.0002, 0.0003);
        let lvol_phi = (-(tick_ms as f64) / VOL_MEMORY_MS).exp();
        let lvol_eta = VOL_OF_VOL * (1.0 - lvol_phi * lvol_phi).sqrt();
        let lvol = VOL_OF_VOL * normal(&mut rng);
        let trade_median = spec.trade_lots * TRADE_MEDIAN_OVER_TYPICAL;
        let mut m = Market {
            rng,
            tick_ms,
            levels,
            sigma_rel,
            trade_rate,
            trade_median,
            lvol,
            lvol_phi,
            lvol_eta,
            fair: p0f + 0.5,
            book: Book::default(),
            last_price: p0,
            tick_dir: TickDir::ZeroPlus,
            walls: Vec::new(),
            scenario,
            sc: ScState::default(),
            stats,
            oi_lots,
            funding,
            basis: 0.0,
            events: VecDeque::new(),
            spec,
        };
        m.stats.roll(listed_ms, p0);
        m.sc.next_wall_ms = match m.scenario {
            Scenario::SpoofWalls { every_ms } => listed_ms + every_ms.max(1) / 2,
            Scenario::AbsorbingWall { start_ms, .. } => start_ms,
            _ => i64::MAX,
        };
        m.requote(&Effect::default(), listed_step);
        m
    }

    fn spread(&self) -> i64 {
        self.spec.spread_ticks.max(1)
    }

    /// This market when calm (no scenario effect), per simulated second, for the history that
    /// `history.rs` synthesises before the simulator started. Mirrors [`Market::step`]: keep
    /// the two in step when recalibrating.
    pub(crate) fn calm_stats(&self) -> CalmStats {
        let per_s = 1000.0 / self.tick_ms as f64;
        CalmStats {
            sigma_rel_per_s: self.sigma_rel * per_s.sqrt(),
            trades_per_s: self.trade_rate * per_s,
            trade_lots_median: self.spec.trade_lots,
            trade_lots_log_sigma: 1.0,
            trade_lots_max: (self.spec.level_lots * 12.0).max(1.0),
            spread_ticks: self.spread(),
        }
    }

    /// Expected one-step move in ticks.
    fn step_sigma_ticks(&self) -> f64 {
        self.sigma_rel * self.fair
    }

    /// True when `lots` is a large resting order.
    fn is_big(&self, lots: i64) -> bool {
        lots as f64 >= BIG_LEVEL_MIN * self.spec.level_lots
    }

    /// A new level's size on `side`, lots (>= 1), drawn from [`LEVEL_MIX`] around the typical
    /// size, which grows 4 % per tick of `offset` from the touch.
    fn level_size(&mut self, side: Side, offset: i64) -> i64 {
        let base = self.spec.level_lots * (1.0 + 0.04 * offset as f64);
        let mix = LEVEL_MIX;
        let u: f64 = self.rng.random();
        let room = || self.book.top(side, 20).iter().filter(|l| self.is_big(l.1)).count() < BIG_PER_SIDE;
        let (median, sigma) = if u < mix.dust_share {
            (base * mix.dust_size, 1.0)
        } else if u < mix.dust_share + mix.big_share && room() {
            (base * mix.big_size, 0.7)
        } else {
            (base, mix.sigma)
        };
        lognormal(&mut self.rng, median, sigma).round().clamp(1.0, 1e12) as i64
    }

    /// Multiplier of the per-step volatility from the volatility state (mean square 1).
    fn vol_state(&self) -> f64 {
        (self.lvol - VOL_OF_VOL * VOL_OF_VOL).exp()
    }

    /// Multiplier of taker activity from the volatility state (mean 1).
    fn activity_state(&self) -> f64 {
        let a = ACTIVITY_VOL_LINK;
        (a * self.lvol - 0.5 * (a * VOL_OF_VOL).powi(2)).exp()
    }

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
    fn effect(&mut self, n: u64, t: i64) -> Effect {
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

    /// Advances the market by one step (`n` = step number since simulator start).
    pub fn step(&mut self, n: u64) -> StepOut {
        let t = n as i64 * self.tick_ms;
        let last_before = self.last_price;
        self.stats.roll(t, last_before);
        let eff = self.effect(n, t);

        // 1. Latent fair price, with stochastic volatility.
        self.lvol = self.lvol * self.lvol_phi + self.lvol_eta * normal(&mut self.rng);
        let shock = normal(&mut self.rng);
        let sigma = self.sigma_rel * eff.vol * self.vol_state();
        let rel = (eff.drift_rel + sigma * shock).clamp(-0.25, 0.25);
        self.fair *= 1.0 + rel;
        self.fair += eff.drift_ticks;
        if let Some(cap) = eff.cap_above {
            self.fair = self.fair.min(cap);
        }
        if let Some(floor) = eff.cap_below {
            self.fair = self.fair.max(floor);
        }
        self.fair = self.fair.max(20.0);

        // 2. Takers.
        let mut out = StepOut::default();
        let rate = self.trade_rate * eff.activity * self.activity_state();
        let n_trades = poisson(&mut self.rng, rate);
        let mid = match (self.book.best_bid(), self.book.best_ask()) {
            (Some((b, _)), Some((a, _))) => (b + a) as f64 / 2.0,
            _ => self.fair,
        };
        let skew = ((self.fair - mid) / self.spread() as f64).clamp(-1.0, 1.0) * 0.3;
        let p_buy = (0.5 + eff.buy_bias + skew).clamp(0.05, 0.95);
        let size_mult = if eff.activity > 3.5 { 2.0 } else { 1.0 };
        let (size_median, size_sigma) = match eff.taker_sizes {
            Some((m, s)) => (self.spec.trade_lots * m, s),
            None => (self.trade_median * size_mult, TRADE_SIZE_SIGMA),
        };
        for _ in 0..n_trades {
            let taker = if self.rng.random_bool(p_buy) { Side::Buy } else { Side::Sell };
            let lots = lognormal(&mut self.rng, size_median, size_sigma)
                .round()
                .clamp(1.0, (self.spec.level_lots * 12.0).max(1.0)) as i64;
            for (price, f) in self.book.take(taker, lots, 3) {
                self.tick_dir = match price.cmp(&self.last_price) {
                    std::cmp::Ordering::Greater => TickDir::Plus,
                    std::cmp::Ordering::Less => TickDir::Minus,
                    std::cmp::Ordering::Equal => match self.tick_dir {
                        TickDir::Plus | TickDir::ZeroPlus => TickDir::ZeroPlus,
                        _ => TickDir::ZeroMinus,
                    },
                };
                self.last_price = price;
                let turnover = self.spec.qty_f(f as f64) * self.spec.price_f(price as f64);
                self.stats.on_trade(price, f, turnover);
                let id = uuid_like(&mut self.rng);
                out.fills.push(Fill { price, lots: f, taker, dir: self.tick_dir, id });
            }
        }

        // 3. Walls after the trades: eaten, consumed or run over.
        self.check_walls(n);

        // 4. Market makers re-quote around the fair price.
        self.requote(&eff, n);

        // 5. New walls.
        if let Some(kind) = eff.place_wall {
            self.place_wall(kind, n);
        }

        // 6. Liquidations, open interest, funding, index basis.
        let liq_rate = 0.02 * self.tick_ms as f64 / 1000.0 * eff.liq_mult * self.spec.trades_per_sec.sqrt();
        for _ in 0..poisson(&mut self.rng, liq_rate) {
            let side = eff.liq_side.unwrap_or(if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell });
            let away = 0.002 + 0.013 * self.rng.random::<f64>();
            let px = self.last_price as f64 * if side == Side::Buy { 1.0 - away } else { 1.0 + away };
            let lots = (self.spec.trade_lots * (2.0 + 28.0 * self.rng.random::<f64>())).round().max(1.0) as i64;
            out.liqs.push(Liq { side, price: (px.round() as i64).max(1), lots });
        }
        self.oi_lots = (self.oi_lots * (1.0 + 0.0003 * eff.activity.sqrt() * normal(&mut self.rng))).max(1.0);
        self.funding = (self.funding + 2e-7 * normal(&mut self.rng)).clamp(-0.005, 0.005);
        self.basis = (self.basis * 0.99 + 0.00002 * normal(&mut self.rng)).clamp(-0.003, 0.003);
        out
    }

    fn check_walls(&mut self, n: u64) {
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
    fn drop_vanished_walls(&mut self, n: u64) {
        let gone: Vec<Wall> = self.walls.iter().filter(|w| self.book.get(w.side, w.price) == 0).cloned().collect();
        for w in gone {
            self.walls.retain(|x| !(x.side == w.side && x.price == w.price));
            self.wall_gone(&w, n, Gone::RunOver);
        }
    }

    fn is_wall(&self, side: Side, price: i64) -> bool {
        self.walls.iter().any(|w| w.side == side && w.price == price)
    }

    fn requote(&mut self, eff: &Effect, n: u64) {
        let s = self.spread();
        let target_bid = (self.fair - (s - 1) as f64 / 2.0).floor() as i64;
        let target_ask = target_bid + s;
        // Pull quotes on the wrong side of the new fair price (walls included: run over).
        self.book.remove_better_than(Side::Buy, target_bid);
        self.book.remove_better_than(Side::Sell, target_ask);
        self.drop_vanished_walls(n);
        // Keep the touch quoted.
        for (side, p) in [(Side::Buy, target_bid), (Side::Sell, target_ask)] {
            if self.book.get(side, p) == 0 {
                let q = self.level_size(side, 0);
                self.book.set(side, p, q);
            }
        }
        // Random quote updates, mostly near the touch.
        let updates = poisson(&mut self.rng, 2.0 + eff.activity);
        for _ in 0..updates {
            let side = if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
            let offset = geometric(&mut self.rng, 0.25) as i64 % self.levels.max(1) as i64;
            let p = match side {
                Side::Buy => target_bid - offset,
                Side::Sell => target_ask + offset,
            };
            if p <= 0 || self.is_wall(side, p) {
                continue;
            }
            // Large resting orders near the touch stay.
            if offset <= BIG_STICKY_TICKS && self.is_big(self.book.get(side, p)) {
                continue;
            }
            if offset > 0 && self.rng.random_bool(0.15) {
                self.book.set(side, p, 0);
            } else {
                let q = self.level_size(side, offset);
                self.book.set(side, p, q);
            }
        }
        // Dense near the touch.
        for side in [Side::Buy, Side::Sell] {
            for off in 1..=4i64 {
                let p = match side {
                    Side::Buy => target_bid - off,
                    Side::Sell => target_ask + off,
                };
                if p > 0 && self.book.get(side, p) == 0 && self.rng.random_bool(0.5) {
                    let q = self.level_size(side, off);
                    self.book.set(side, p, q);
                }
            }
        }
        // Fill the far end up to the configured number of levels, then trim.
        for side in [Side::Buy, Side::Sell] {
            let mut guard = 0;
            while self.book.len(side) < self.levels && guard < 4 * self.levels + 16 {
                guard += 1;
                let Some((worst, _)) = self.book.worst(side) else { break };
                let gap = 1 + geometric(&mut self.rng, 0.6) as i64;
                let p = match side {
                    Side::Buy => worst - gap,
                    Side::Sell => worst + gap,
                };
                if p <= 0 {
                    break;
                }
                let off = (p - worst).abs() + self.book.len(side) as i64;
                let q = self.level_size(side, off);
                self.book.set(side, p, q);
            }
            self.book.trim(side, self.levels);
        }
        // Walls trimmed away at the far end are gone.
        self.drop_vanished_walls(n);
    }

    fn place_wall(&mut self, kind: WallKind, n: u64) {
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

    /// Current ticker values at relative time `t` (ms since simulator start) and absolute time
    /// `now_ms`.
    pub fn ticker(&self, t: i64, now_ms: i64) -> TickerValues {
        let spec = &self.spec;
        let px = |ticks: i64| Dec::ticks(ticks, spec.tick_raw, spec.price_scale).to_string();
        let qty = |lots: i64| Dec::ticks(lots, spec.qty_step_raw, spec.qty_decimals).to_string();
        let st = &self.stats;
        let w = st.virtual_weight(t);
        let elapsed = t - st.listed_ms;
        let last = self.last_price;
        let prev24 =
            if elapsed < DAY_MS { st.v_prev24 } else { st.open_of(st.cur - BUCKETS as i64 + 1).unwrap_or(last) };
        let prev1h = if elapsed < 3_600_000 { st.v_prev1h } else { st.open_of(st.cur - 12).unwrap_or(last) };
        let mut high = st.hi.max(last);
        let mut low = st.lo.min(last);
        if w > 0.0 {
            high = high.max(st.v_high);
            low = low.min(st.v_low);
        }
        let vol_lots = st.vol_sum as f64 + w * st.v_vol;
        let turnover = st.turnover_sum + w * st.v_turnover;
        let mark = (self.fair.round() as i64).max(1);
        let index = ((mark as f64) * (1.0 + self.basis)).round().max(1.0) as i64;
        let pcnt = if prev24 > 0 { (last - prev24) as f64 / prev24 as f64 } else { 0.0 };
        let interval = spec.funding_interval_min.max(1) * 60_000;
        let next_funding = (now_ms.div_euclid(interval) + 1) * interval;
        let (b1, bq) = self.book.best_bid().unwrap_or((0, 0));
        let (a1, aq) = self.book.best_ask().unwrap_or((0, 0));
        let oi = self.oi_lots.round() as i64;
        TickerValues {
            symbol: spec.name.clone(),
            tick_direction: self.tick_dir.as_str().to_string(),
            price_24h_pcnt: Dec::from_f64(pcnt, 6).to_string(),
            last_price: px(last),
            prev_price_24h: px(prev24),
            high_price_24h: px(high),
            low_price_24h: px(low),
            prev_price_1h: px(prev1h),
            mark_price: px(mark),
            index_price: px(index),
            open_interest: qty(oi),
            open_interest_value: Dec::from_f64(spec.qty_f(oi as f64) * spec.price_f(mark as f64), 2).to_string(),
            turnover_24h: Dec::from_f64(turnover, 4).to_string(),
            volume_24h: Dec::from_f64(spec.qty_f(vol_lots), 4).to_string(),
            funding_interval_hour: (spec.funding_interval_min / 60).to_string(),
            funding_cap: "0.005".to_string(),
            next_funding_time: next_funding.to_string(),
            funding_rate: Dec::from_f64(self.funding, 6).to_string(),
            bid1_price: px(b1),
            bid1_size: qty(bq),
            ask1_price: px(a1),
            ask1_size: qty(aq),
        }
    }
}

/// Ticker fields as Bybit prints them (strings). `symbol` never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TickerValues {
    pub symbol: String,
    pub tick_direction: String,
    pub price_24h_pcnt: String,
    pub last_price: String,
    pub prev_price_24h: String,
    pub high_price_24h: String,
    pub low_price_24h: String,
    pub prev_price_1h: String,
    pub mark_price: String,
    pub index_price: String,
    pub open_interest: String,
    pub open_interest_value: String,
    pub turnover_24h: String,
    pub volume_24h: String,
    pub funding_interval_hour: String,
    pub funding_cap: String,
    pub next_funding_time: String,
    pub funding_rate: String,
    pub bid1_price: String,
    pub bid1_size: String,
    pub ask1_price: String,
    pub ask1_size: String,
}

impl TickerValues {
    /// Fields in Bybit's linear WS order (after `symbol`).
    pub fn ws_fields(&self) -> [(&'static str, &str); 24] {
        [
            ("tickDirection", &self.tick_direction),
            ("price24hPcnt", &self.price_24h_pcnt),
            ("lastPrice", &self.last_price),
            ("prevPrice24h", &self.prev_price_24h),
            ("highPrice24h", &self.high_price_24h),
            ("lowPrice24h", &self.low_price_24h),
            ("prevPrice1h", &self.prev_price_1h),
            ("markPrice", &self.mark_price),
            ("indexPrice", &self.index_price),
            ("openInterest", &self.open_interest),
            ("openInterestValue", &self.open_interest_value),
            ("turnover24h", &self.turnover_24h),
            ("volume24h", &self.volume_24h),
            ("fundingIntervalHour", &self.funding_interval_hour),
            ("fundingCap", &self.funding_cap),
            ("nextFundingTime", &self.next_funding_time),
            ("fundingRate", &self.funding_rate),
            ("bid1Price", &self.bid1_price),
            ("bid1Size", &self.bid1_size),
            ("ask1Price", &self.ask1_price),
            ("ask1Size", &self.ask1_size),
            ("preOpenPrice", ""),
            ("preQty", ""),
            ("curPreListingPhase", ""),
        ]
    }

    /// Fields in Bybit's REST `/v5/market/tickers` order (after `symbol`).
    pub fn rest_fields(&self) -> [(&'static str, &str); 29] {
        [
            ("lastPrice", &self.last_price),
            ("indexPrice", &self.index_price),
            ("markPrice", &self.mark_price),
            ("prevPrice24h", &self.prev_price_24h),
            ("price24hPcnt", &self.price_24h_pcnt),
            ("highPrice24h", &self.high_price_24h),
            ("lowPrice24h", &self.low_price_24h),
            ("prevPrice1h", &self.prev_price_1h),
            ("openInterest", &self.open_interest),
            ("openInterestValue", &self.open_interest_value),
            ("turnover24h", &self.turnover_24h),
            ("volume24h", &self.volume_24h),
            ("fundingRate", &self.funding_rate),
            ("nextFundingTime", &self.next_funding_time),
            ("predictedDeliveryPrice", ""),
            ("basisRate", ""),
            ("deliveryFeeRate", ""),
            ("deliveryTime", "0"),
            ("ask1Size", &self.ask1_size),
            ("bid1Price", &self.bid1_price),
            ("ask1Price", &self.ask1_price),
            ("bid1Size", &self.bid1_size),
            ("basis", ""),
            ("preOpenPrice", ""),
            ("preQty", ""),
            ("curPreListingPhase", ""),
            ("fundingIntervalHour", &self.funding_interval_hour),
            ("basisRateYear", ""),
            ("fundingCap", &self.funding_cap),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market(scenario: Scenario, seed: u64) -> Market {
        let spec = InstrumentSpec::generate(seed, 3, "SIM002USDT", None);
        Market::new(seed, 3, spec, scenario, 100, 60, 1.0, 0)
    }

    #[test]
    fn book_stays_uncrossed_and_sized() {
        let mut m = market(Scenario::Calm, 4);
        let mut fills = 0;
        for n in 1..=2_000 {
            let out = m.step(n);
            fills += out.fills.len();
            assert!(!m.book.is_crossed(), "crossed at step {n}");
            assert_eq!(m.book.len(Side::Buy), 60);
            assert_eq!(m.book.len(Side::Sell), 60);
            for f in &out.fills {
                assert!(f.lots > 0 && f.price > 0);
            }
        }
        assert!(fills > 0);
    }

    #[test]
    fn calm_market_has_clustered_fat_tailed_volatility_and_heavy_tailed_sizes() {
        use crate::market::stats::{autocorr, moments, percentile_sorted};
        let mut m = market(Scenario::Calm, 21);
        let (mut mids, mut sizes, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let mut vol2 = 0.0;
        let steps = 30_000u64;
        for n in 1..=steps {
            let out = m.step(n);
            sizes.extend(out.fills.iter().map(|f| f.lots as f64));
            vol2 += m.vol_state().powi(2);
            if n % 10 == 0 {
                mids.push(m.fair);
                let mut lv: Vec<f64> =
                    m.book.top(Side::Buy, 20).iter().chain(m.book.top(Side::Sell, 20)).map(|l| l.1 as f64).collect();
                lv.sort_by(f64::total_cmp);
                let med = lv[lv.len() / 2];
                ratios.extend(lv.iter().map(|q| q / med));
            }
        }
        // The volatility state keeps the configured variance on average.
        let mean_var = vol2 / steps as f64;
        assert!((0.6..1.6).contains(&mean_var), "mean variance multiplier {mean_var}");
        let r: Vec<f64> = mids.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let (_, kurt) = moments(&r);
        let abs: Vec<f64> = r.iter().map(|x| x.abs()).collect();
        assert!(kurt.unwrap_or(0.0) > 2.0, "1 s excess kurtosis {kurt:?}");
        assert!(autocorr(&abs, 1).unwrap_or(0.0) > 0.1, "|r| acf1 {:?}", autocorr(&abs, 1));
        sizes.sort_by(f64::total_cmp);
        let med = percentile_sorted(&sizes, 0.5).unwrap_or(1.0);
        assert!(percentile_sorted(&sizes, 0.9).unwrap_or(0.0) / med > 8.0, "trade sizes not heavy-tailed");
        ratios.sort_by(f64::total_cmp);
        let p99 = percentile_sorted(&ratios, 0.99).unwrap_or(0.0);
        assert!(
            p99 > 12.0,
            "level sizes not heavy-tailed: p99 {p99}, p90 {:?} level lots {} sigma ticks {} spread {}",
            percentile_sorted(&ratios, 0.9),
            m.spec.level_lots,
            m.step_sigma_ticks(),
            m.spec.spread_ticks
        );
    }

    #[test]
    fn same_seed_same_market() {
        let mut a = market(Scenario::SpoofWalls { every_ms: 2_000 }, 11);
        let mut b = market(Scenario::SpoofWalls { every_ms: 2_000 }, 11);
        for n in 1..=500 {
            let (oa, ob) = (a.step(n), b.step(n));
            assert_eq!(oa.fills.len(), ob.fills.len());
            assert_eq!(a.book.top(Side::Buy, 50), b.book.top(Side::Buy, 50));
            assert_eq!(a.book.top(Side::Sell, 50), b.book.top(Side::Sell, 50));
        }
        let mut c = market(Scenario::SpoofWalls { every_ms: 2_000 }, 12);
        c.step(1);
        assert_ne!(a.spec.start_price_ticks, c.spec.start_price_ticks);
    }

    #[test]
    fn scenarios_leave_their_marks() {
        let mut p = market(Scenario::Pump { start_ms: 1_000, duration_ms: 20_000, magnitude_bps: 2_000 }, 5);
        let start = p.fair;
        for n in 1..=250 {
            p.step(n);
        }
        assert!(p.fair > start * 1.1, "pump moved {} -> {}", start, p.fair);
        assert!(p.events.iter().any(|e| e.1 == ScenarioEventKind::PumpStarted));
        assert!(p.events.iter().any(|e| e.1 == ScenarioEventKind::PumpEnded));

        let mut s = market(Scenario::SpoofWalls { every_ms: 1_000 }, 6);
        for n in 1..=600 {
            s.step(n);
        }
        let placed = s.events.iter().filter(|e| matches!(e.1, ScenarioEventKind::WallPlaced { .. })).count();
        let pulled = s.events.iter().filter(|e| matches!(e.1, ScenarioEventKind::WallPulled { .. })).count();
        assert!(placed >= 3 && pulled >= 2, "placed {placed} pulled {pulled}");

        let mut a = market(Scenario::AbsorbingWall { start_ms: 500, repeat_ms: 0 }, 7);
        for n in 1..=3_000 {
            a.step(n);
        }
        assert!(a.events.iter().any(|e| matches!(e.1, ScenarioEventKind::WallConsumed { .. })), "{:?}", a.events);

        let mut pd =
            market(Scenario::PumpAndDump { start_ms: 1_000, pump_ms: 10_000, dump_ms: 5_000, magnitude_bps: 2_000 }, 9);
        let base = pd.fair;
        let mut top = 0.0f64;
        for n in 1..=200 {
            pd.step(n);
            top = top.max(pd.fair);
        }
        assert!(top > base * 1.12, "pump to {top} from {base}");
        assert!(pd.fair < top * 0.9, "dump back to {} from {top}", pd.fair);
        let kinds: Vec<ScenarioEventKind> = pd.events.iter().map(|e| e.1.clone()).collect();
        assert_eq!(
            kinds,
            vec![ScenarioEventKind::PumpStarted, ScenarioEventKind::DumpStarted, ScenarioEventKind::DumpEnded]
        );

        let mut x = market(Scenario::NewsShock { at_ms: 1_000, jump_bps: -1_000 }, 8);
        for n in 1..=9 {
            x.step(n);
        }
        let before = x.fair;
        for n in 10..=14 {
            x.step(n);
        }
        assert!(x.fair < before * 0.95);
    }
}
