//! Per-symbol synthetic market: a latent fair price that random-walks (plus scenario drift),
//! market makers quoting an exact-tick book around it, takers printing trades against the book,
//! liquidations, open interest, funding and 24 h statistics. Pure and deterministic: the state
//! after step `n` depends only on the seed, the config and `n`.
//!
//! The calm market is calibrated to real perpetual-futures data (`tests/sim_realism.rs`,
//! [`scalper_core::market::stats`]):
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
//!
//! Layout: this module holds the market state, its constructor and the step (fair price,
//! takers, quotes, liquidations); `scenario` the scenario effects and walls, `ticker` the rolling
//! 24 h statistics and the ticker built from them.

mod scenario;
#[cfg(test)]
mod tests;
mod ticker;

use scenario::{Effect, ScState};
use ticker::{Stats, BUCKETS, BUCKET_MS, EMPTY_BUCKET};

use super::book::Book;
use super::config::Scenario;
use super::history::CalmStats;
use super::prints::{Fill, Liq, StepOut, TickDir};
use super::rng::{geometric, lognormal, mix_seed, normal, poisson, uuid_like};
use super::universe::InstrumentSpec;
use super::{ScenarioEventKind, WallKind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper_core::domain::Side;
use std::collections::VecDeque;

const MS_PER_YEAR: f64 = 365.25 * 24.0 * 3_600_000.0;

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

/// A large resting order placed by a scenario.
#[derive(Debug, Clone)]
pub(crate) struct Wall {
    pub side: Side,
    pub price: i64,
    pub lots: i64,
    pub kind: WallKind,
    pub placed_step: u64,
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
}
