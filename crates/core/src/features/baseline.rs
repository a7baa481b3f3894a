//! Long-horizon, outlier-robust baselines of one symbol: what "normal" is for it, so that a move,
//! a volume burst or a wall can be judged against the symbol's own history rather than against
//! the last few seconds.
//!
//! | baseline | sample (once per completed second) | seeded from 1 m klines |
//! |---|---|---|
//! | `ret5_var` | `r5²`, the squared 5 s log return in percent, over overlapping windows | `median(r1m²) / 0.455 / 12` |
//! | `volume_rate` | taker volume of the second (base units) | `median(volume1m) / 60` |
//! | `trade_rate` | trades in the second | — |
//! | `spread_bps` | spread at the end of the second | — |
//! | `level_size` | median resting size of the top levels | — |
//! | `bid_depth`, `ask_depth` | notional within 0.5 % of the mid, USDT | — |
//!
//! Each is a bias-corrected EWMA with half-life `half_life_s` (default 30 min), **winsorised**
//! once it has `min_samples`: a sample above `clip × estimate` counts as `clip × estimate`
//! (`clip` is 16 for squared returns, i.e. a 4 σ move, and `volume_clip` for rates and sizes), so
//! one burst cannot move "normal" far. While the symbol is in a pump phase the caller stops
//! sampling ([`SymbolBaselines::close_second`] with `frozen`), so a pump never becomes its own
//! baseline.
//!
//! A baseline is **warm** once it has `warmup_s` seconds of samples, or was seeded from at least
//! `min_klines` one-minute candles (volatility and volume), or restored from a persisted state
//! younger than `restore_max_age_s` (everything). Nothing derived from a baseline acts before the
//! baselines it needs are warm ([`SymbolBaselines::warm`]).

use crate::domain::TimeMs;
use crate::features::math::{ewma_alpha, median, Ewma};
use crate::market::data::Kline;
use serde::{Deserialize, Serialize};

/// `median(χ²₁)`: the median of a squared standard normal, used to turn the median of squared
/// returns into a variance that one outlier cannot inflate.
const MEDIAN_CHI2_1: f64 = 0.454_936_423_119_572_8;

/// Baseline settings (`[intel.baseline]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Half-life of every baseline, seconds (minutes to hours). > 0.
    pub half_life_s: f64,
    /// Seconds of live samples that make a baseline warm (a recording without history is warm
    /// after this much market time). In [10, 600].
    pub warmup_s: u32,
    /// Samples before winsorising starts.
    pub min_samples: u32,
    /// Winsorising factor for rates and sizes (volume, trades, spread, depth, level size). > 1.
    pub volume_clip: f64,
    /// Winsorising factor for squared returns (16 = 4 σ). > 1.
    pub return_clip: f64,
    /// One-minute klines needed for a kline seed to make volatility and volume warm.
    pub min_klines: usize,
    /// A persisted baseline older than this is not restored, seconds.
    pub restore_max_age_s: i64,
    /// Seconds of history after which the volatility baseline is *mature*: a variance from a
    /// minute of data is good enough to judge a move (with a minimum size), but too uncertain to
    /// judge volatility itself against (one calm minute makes the next ordinary one look 10×).
    /// The volatility ratio acts only on a mature baseline (seeded, restored or lived this long).
    pub mature_s: u32,
    /// Floor of σ(60 s), in ticks of the price: a symbol that barely trades is not "calm enough"
    /// for one tick to be a many-σ move.
    pub sigma_floor_ticks: f64,
    /// One-minute klines the live edge fetches per symbol at start and at a listing to seed the
    /// baselines (`/v5/market/kline`, the still-open minute dropped). 0 = no fetch (warm-up from
    /// live data or a persisted profile only). In [0, 1000]; below `min_klines` a fetch cannot
    /// make anything warm.
    pub seed_klines: u16,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            half_life_s: 1_800.0,
            warmup_s: 60,
            min_samples: 30,
            volume_clip: 20.0,
            return_clip: 16.0,
            min_klines: 30,
            restore_max_age_s: 6 * 3_600,
            mature_s: 1_800,
            sigma_floor_ticks: 2.0,
            seed_klines: 120,
        }
    }
}

impl BaselineConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if !(self.half_life_s.is_finite() && self.half_life_s > 0.0) {
            e.push(format!("{prefix}.half_life_s must be > 0, got {}", self.half_life_s));
        }
        if !(10..=600).contains(&self.warmup_s) {
            e.push(format!("{prefix}.warmup_s must be in [10, 600], got {}", self.warmup_s));
        }
        for (n, v) in [("volume_clip", self.volume_clip), ("return_clip", self.return_clip)] {
            if !(v.is_finite() && v > 1.0) {
                e.push(format!("{prefix}.{n} must be > 1, got {v}"));
            }
        }
        if self.min_klines == 0 || self.min_klines > 1_000 {
            e.push(format!("{prefix}.min_klines must be in [1, 1000], got {}", self.min_klines));
        }
        if self.restore_max_age_s < 0 {
            e.push(format!("{prefix}.restore_max_age_s must be >= 0, got {}", self.restore_max_age_s));
        }
        if !(self.sigma_floor_ticks.is_finite() && self.sigma_floor_ticks >= 0.0) {
            e.push(format!("{prefix}.sigma_floor_ticks must be >= 0, got {}", self.sigma_floor_ticks));
        }
        if self.seed_klines > 1_000 {
            e.push(format!("{prefix}.seed_klines must be in [0, 1000], got {}", self.seed_klines));
        } else if self.seed_klines > 0 && (self.seed_klines as usize) <= self.min_klines {
            e.push(format!(
                "{prefix}.seed_klines must be 0 or above min_klines ({}; one fetched minute is still open), got {}",
                self.min_klines, self.seed_klines
            ));
        }
    }
}

/// One robust baseline: estimate and the seconds of history behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineValue {
    /// Current estimate (units of the baseline).
    pub value: f64,
    /// Seconds of history behind it (live samples, or the equivalent of a seed).
    pub seconds: u32,
}

/// Everything persisted in the symbol profile (`baselines` of `data/profiles/<SYMBOL>.json`) and
/// restored at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineState {
    /// Variance of 5 s log returns, percent².
    pub ret5_var: BaselineValue,
    /// Taker volume per second, base units.
    pub volume_rate: BaselineValue,
    /// Trades per second.
    pub trade_rate: BaselineValue,
    pub spread_bps: BaselineValue,
    /// Median resting level size near the touch, base units.
    pub level_size: BaselineValue,
    /// Bid notional within 0.5 % of the mid, USDT.
    pub bid_depth: BaselineValue,
    /// Ask notional within 0.5 % of the mid, USDT.
    pub ask_depth: BaselineValue,
    /// Event time of the last sample.
    pub updated_ms: TimeMs,
}

impl BaselineState {
    /// Young enough to restore at `now`: written (`updated_ms > 0`) at most `max_age_s` ago.
    pub fn is_fresh(&self, now: TimeMs, max_age_s: i64) -> bool {
        self.updated_ms > 0 && now.saturating_sub(self.updated_ms) <= max_age_s.saturating_mul(1000)
    }

    /// An hour-deep state with these values, as a restart restores from a profile: for
    /// synthetic markets and tests that start from a known "normal" instead of warming up.
    /// `depth` is the notional within 0.5 % on each side, USDT.
    pub fn steady(
        ret5_var: f64,
        volume_rate: f64,
        trade_rate: f64,
        spread_bps: f64,
        level_size: f64,
        depth: f64,
        updated_ms: TimeMs,
    ) -> Self {
        let v = |value: f64| BaselineValue { value, seconds: 3_600 };
        BaselineState {
            ret5_var: v(ret5_var),
            volume_rate: v(volume_rate),
            trade_rate: v(trade_rate),
            spread_bps: v(spread_bps),
            level_size: v(level_size),
            bid_depth: v(depth),
            ask_depth: v(depth),
            updated_ms,
        }
    }
}

/// A winsorised, bias-corrected EWMA with its history length.
#[derive(Debug, Clone, Copy, Default)]
struct Robust {
    ewma: Ewma,
    seconds: u32,
}

impl Robust {
    fn push(&mut self, x: f64, alpha: f64, clip: f64, min_samples: u32) {
        if !x.is_finite() || x < 0.0 {
            return;
        }
        let est = self.ewma.get();
        let x = if self.seconds >= min_samples && est > 0.0 { x.min(clip * est) } else { x };
        self.ewma.push(x, alpha);
        self.seconds = self.seconds.saturating_add(1);
    }
    fn get(&self) -> f64 {
        self.ewma.get()
    }
    fn value(&self) -> BaselineValue {
        BaselineValue { value: self.get(), seconds: self.seconds }
    }
    /// Starts from `v` as if it had `v.seconds` samples (capped so that live data still moves it).
    fn seed(&mut self, v: BaselineValue, cap_s: u32) {
        if !(v.value.is_finite() && v.value >= 0.0) || v.seconds == 0 {
            return;
        }
        let mut e = Ewma::default();
        e.push(v.value, 1.0);
        self.ewma = e;
        self.seconds = v.seconds.min(cap_s);
    }
}

/// What one completed second looked like, for [`SymbolBaselines::close_second`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SecondSample {
    /// 5 s log return ending at this second, percent (`None` when a price is missing).
    pub ret5_pct: Option<f64>,
    /// Taker volume in the second, base units.
    pub volume: f64,
    /// Trades in the second.
    pub trades: f64,
    /// Book figures at the end of the second (`None` when the book is not valid).
    pub book: Option<BookSample>,
}

/// Book figures at the end of a second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BookSample {
    pub spread_bps: f64,
    /// Median resting level size near the touch, base units.
    pub level_size: f64,
    /// Bid notional within 0.5 %, USDT.
    pub bid_depth: f64,
    /// Ask notional within 0.5 %, USDT.
    pub ask_depth: f64,
}

/// The baselines of one symbol.
#[derive(Debug, Clone)]
pub struct SymbolBaselines {
    /// Shared by every symbol's tracker (one copy per configuration, not per symbol).
    cfg: std::sync::Arc<BaselineConfig>,
    ret5_var: Robust,
    /// Short-horizon (30 s half-life) variance of 5 s returns, for the volatility ratio.
    short_var: Ewma,
    volume_rate: Robust,
    trade_rate: Robust,
    spread_bps: Robust,
    level_size: Robust,
    bid_depth: Robust,
    ask_depth: Robust,
    updated_ms: TimeMs,
}

/// Half-life of the short variance the volatility ratio compares with the baseline, seconds.
pub const SHORT_VAR_HALF_LIFE_S: f64 = 30.0;

impl SymbolBaselines {
    /// Empty (cold) baselines.
    pub fn new(cfg: impl Into<std::sync::Arc<BaselineConfig>>) -> Self {
        SymbolBaselines {
            cfg: cfg.into(),
            ret5_var: Robust::default(),
            short_var: Ewma::default(),
            volume_rate: Robust::default(),
            trade_rate: Robust::default(),
            spread_bps: Robust::default(),
            level_size: Robust::default(),
            bid_depth: Robust::default(),
            ask_depth: Robust::default(),
            updated_ms: 0,
        }
    }

    /// Replaces the settings (the estimates are kept).
    pub fn set_config(&mut self, cfg: impl Into<std::sync::Arc<BaselineConfig>>) {
        self.cfg = cfg.into();
    }

    pub fn config(&self) -> &BaselineConfig {
        &self.cfg
    }

    /// Feeds one completed second. With `frozen` (a pump phase is running) only the short
    /// variance moves: the long baselines must not learn the pump.
    pub fn close_second(&mut self, s: &SecondSample, frozen: bool, now: TimeMs) {
        let alpha = ewma_alpha(self.cfg.half_life_s);
        let (vc, rc, ms) = (self.cfg.volume_clip, self.cfg.return_clip, self.cfg.min_samples);
        match s.ret5_pct.filter(|r| r.is_finite()) {
            Some(r) => {
                self.short_var.push(r * r, ewma_alpha(SHORT_VAR_HALF_LIFE_S));
                if !frozen {
                    self.ret5_var.push(r * r, alpha, rc, ms);
                }
            }
            // The first seconds have no 5 s return yet: they still count as market time seen,
            // so the warm-up is the same `warmup_s` for every baseline.
            None if !frozen => self.ret5_var.seconds = self.ret5_var.seconds.saturating_add(1),
            None => {}
        }
        if frozen {
            return;
        }
        self.volume_rate.push(s.volume, alpha, vc, ms);
        self.trade_rate.push(s.trades, alpha, vc, ms);
        if let Some(b) = s.book {
            self.spread_bps.push(b.spread_bps, alpha, vc, ms);
            if b.level_size > 0.0 {
                self.level_size.push(b.level_size, alpha, vc, ms);
            }
            self.bid_depth.push(b.bid_depth, alpha, vc, ms);
            self.ask_depth.push(b.ask_depth, alpha, vc, ms);
        }
        self.updated_ms = now;
    }

    /// Seeds volatility and volume from one-minute klines (any order). Robust: medians, not
    /// means. Needs `min_klines` usable candles; returns false (nothing changed) otherwise.
    pub fn seed_from_klines(&mut self, klines: &[Kline], now: TimeMs) -> bool {
        let mut ks: Vec<&Kline> = klines.iter().filter(|k| k.close.to_f64() > 0.0).collect();
        if ks.len() < self.cfg.min_klines.max(2) {
            return false;
        }
        ks.sort_by_key(|k| k.start_ms);
        let mut r2: Vec<f64> = ks
            .windows(2)
            .map(|w| {
                let r = (w[1].close.to_f64() / w[0].close.to_f64()).ln() * 100.0;
                r * r
            })
            .filter(|x| x.is_finite())
            .collect();
        let mut vols: Vec<f64> = ks.iter().map(|k| k.volume.to_f64()).filter(|v| v.is_finite() && *v >= 0.0).collect();
        let seconds = (ks.len() as u32).saturating_mul(60).max(self.cfg.warmup_s);
        let cap = self.cap();
        let (Some(m_r2), Some(m_vol)) = (median(&mut r2), median(&mut vols)) else {
            return false;
        };
        // Variance of 1 m returns → variance of 5 s returns (random-walk scaling).
        let var5 = m_r2 / MEDIAN_CHI2_1 / 12.0;
        // A baseline with at least as much history (restored from the profile, or lived) is
        // the better one: measured on the same 5 s returns it is compared with.
        if var5 > 0.0 && self.ret5_var.seconds < seconds.min(cap) {
            self.ret5_var.seed(BaselineValue { value: var5, seconds }, cap);
        }
        if self.volume_rate.seconds < seconds.min(cap) {
            self.volume_rate.seed(BaselineValue { value: m_vol / 60.0, seconds }, cap);
        }
        self.updated_ms = self.updated_ms.max(now);
        true
    }

    /// Most seconds a seed may claim: live data must still be able to move it.
    fn cap(&self) -> u32 {
        (self.cfg.half_life_s.min(u32::MAX as f64) as u32).max(self.cfg.warmup_s)
    }

    /// Restores a persisted state unless it is older than `restore_max_age_s` at `now`. Returns
    /// whether it was taken.
    pub fn restore(&mut self, st: &BaselineState, now: TimeMs) -> bool {
        if !st.is_fresh(now, self.cfg.restore_max_age_s) {
            return false;
        }
        let cap = self.cap();
        for (r, v) in [
            (&mut self.ret5_var, st.ret5_var),
            (&mut self.volume_rate, st.volume_rate),
            (&mut self.trade_rate, st.trade_rate),
            (&mut self.spread_bps, st.spread_bps),
            (&mut self.level_size, st.level_size),
            (&mut self.bid_depth, st.bid_depth),
            (&mut self.ask_depth, st.ask_depth),
        ] {
            // Live history already gathered in this run wins over an older file.
            if v.seconds > r.seconds {
                r.seed(v, cap);
            }
        }
        self.updated_ms = self.updated_ms.max(st.updated_ms);
        true
    }

    /// The state to persist.
    pub fn state(&self) -> BaselineState {
        BaselineState {
            ret5_var: self.ret5_var.value(),
            volume_rate: self.volume_rate.value(),
            trade_rate: self.trade_rate.value(),
            spread_bps: self.spread_bps.value(),
            level_size: self.level_size.value(),
            bid_depth: self.bid_depth.value(),
            ask_depth: self.ask_depth.value(),
            updated_ms: self.updated_ms,
        }
    }

    /// Volatility baseline warm (a symbol whose price never moved is warm with variance 0; its
    /// σ is then the tick floor).
    pub fn volatility_warm(&self) -> bool {
        self.ret5_var.seconds >= self.cfg.warmup_s
    }

    /// Flow baselines (volume and trade rate) warm. A symbol with no trade at all during the
    /// warm-up has a zero rate and is not warm.
    pub fn flow_warm(&self) -> bool {
        self.volume_rate.seconds >= self.cfg.warmup_s && self.trade_rate.seconds >= self.cfg.warmup_s
    }

    /// Book baselines (spread, level size, depth) warm.
    pub fn book_warm(&self) -> bool {
        self.spread_bps.seconds >= self.cfg.warmup_s && self.level_size.seconds >= self.cfg.warmup_s
    }

    /// Every baseline warm: the symbol may be judged and entered.
    pub fn warm(&self) -> bool {
        self.volatility_warm() && self.flow_warm() && self.book_warm()
    }

    /// What is still cold, for status lines (`None` when warm).
    pub fn cold_reason(&self) -> Option<String> {
        if self.warm() {
            return None;
        }
        let need = self.cfg.warmup_s;
        let mut parts = Vec::new();
        for (n, r) in [
            ("volatility", &self.ret5_var),
            ("volume", &self.volume_rate),
            ("trades", &self.trade_rate),
            ("spread", &self.spread_bps),
            ("levels", &self.level_size),
        ] {
            if r.seconds < need {
                parts.push(format!("{n} {}/{need} s", r.seconds.min(need)));
            }
        }
        Some(format!("warming up: {}", parts.join(", ")))
    }

    /// Seconds until warm if fed live data from now on (0 when warm).
    pub fn seconds_to_warm(&self) -> u32 {
        let need = self.cfg.warmup_s;
        [&self.ret5_var, &self.volume_rate, &self.trade_rate, &self.spread_bps, &self.level_size]
            .iter()
            .map(|r| need.saturating_sub(r.seconds))
            .max()
            .unwrap_or(0)
    }

    /// Variance of 5 s returns, percent² (0 while cold).
    pub fn ret5_var(&self) -> f64 {
        if self.volatility_warm() {
            self.ret5_var.get()
        } else {
            0.0
        }
    }

    /// σ of a `horizon_s` return implied by the baseline (random-walk scaling), percent,
    /// floored at `sigma_floor_ticks` ticks of `price`; 0 while cold.
    pub fn sigma_pct(&self, horizon_s: f64, tick_pct: f64) -> f64 {
        if !self.volatility_warm() {
            return 0.0;
        }
        let s = (self.ret5_var() * horizon_s.max(0.0) / 5.0).sqrt();
        s.max(self.cfg.sigma_floor_ticks * tick_pct.max(0.0))
    }

    /// Volatility baseline mature (see [`BaselineConfig::mature_s`]).
    pub fn volatility_mature(&self) -> bool {
        self.ret5_var.seconds >= self.cfg.mature_s.max(self.cfg.warmup_s)
    }

    /// √(short variance / baseline variance): 1 = as volatile as usual; 0 until the baseline is
    /// mature.
    pub fn volatility_ratio(&self) -> f64 {
        let v = self.ret5_var();
        if v <= 0.0 || !self.volatility_mature() {
            return 0.0;
        }
        (self.short_var.get() / v).sqrt()
    }

    /// Taker volume per second (0 before any sample).
    pub fn volume_rate(&self) -> f64 {
        self.volume_rate.get()
    }
    /// Trades per second.
    pub fn trade_rate(&self) -> f64 {
        self.trade_rate.get()
    }
    pub fn spread_bps(&self) -> f64 {
        self.spread_bps.get()
    }
    /// Median resting level size, base units.
    pub fn level_size(&self) -> f64 {
        self.level_size.get()
    }
    /// Bid notional within 0.5 %, USDT.
    pub fn bid_depth(&self) -> f64 {
        self.bid_depth.get()
    }
    /// Ask notional within 0.5 %, USDT.
    pub fn ask_depth(&self) -> f64 {
        self.ask_depth.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty};

    fn kline(i: i64, close: f64, vol: f64) -> Kline {
        let p = Price::from_f64(close);
        Kline {
            start_ms: i * 60_000,
            open: p,
            high: p,
            low: p,
            close: p,
            volume: Qty::from_f64(vol),
            turnover: Price::ZERO,
        }
    }

    fn calm_second(r: f64) -> SecondSample {
        SecondSample {
            ret5_pct: Some(r),
            volume: 2.0,
            trades: 3.0,
            book: Some(BookSample { spread_bps: 1.0, level_size: 5.0, bid_depth: 1e5, ask_depth: 1e5 }),
        }
    }

    #[test]
    fn warm_after_warmup_seconds_and_robust_to_a_burst() {
        let mut b = SymbolBaselines::new(BaselineConfig { mature_s: 60, ..BaselineConfig::default() });
        for s in 0..59 {
            b.close_second(&calm_second(if s % 2 == 0 { 0.02 } else { -0.02 }), false, s * 1000);
        }
        assert!(!b.warm() && b.sigma_pct(60.0, 0.0) == 0.0 && b.volatility_ratio() == 0.0);
        assert!(b.cold_reason().unwrap().contains("volatility 59/60 s"), "{:?}", b.cold_reason());
        b.close_second(&calm_second(0.02), false, 59_000);
        assert!(b.warm() && b.cold_reason().is_none());
        let var = b.ret5_var();
        assert!((var - 0.0004).abs() < 1e-9, "{var}");
        // σ(60 s) = √(12 × 0.0004) ≈ 0.069 %.
        assert!((b.sigma_pct(60.0, 0.0) - (0.0048f64).sqrt()).abs() < 1e-9);
        // A 5 % move in one sample is winsorised at 4 σ: one sample in 61 moves the baseline by
        // a quarter (unclipped, it would have multiplied it by ~1000).
        b.close_second(&calm_second(5.0), false, 60_000);
        assert!(b.ret5_var() < var * 1.3, "{} vs {var}", b.ret5_var());
        // ... while the short variance sees it at once.
        assert!(b.volatility_ratio() > 3.0, "{}", b.volatility_ratio());
        // With the default maturity (30 min) a one-minute baseline never judges volatility.
        let mut young = b.clone();
        young.set_config(BaselineConfig::default());
        assert!(young.warm() && !young.volatility_mature() && young.volatility_ratio() == 0.0);
        // Frozen (pump phase): long baselines do not learn.
        let before = b.state();
        b.close_second(&SecondSample { volume: 1e6, ..calm_second(3.0) }, true, 61_000);
        assert_eq!(b.state().volume_rate, before.volume_rate);
        assert_eq!(b.state().ret5_var, before.ret5_var);
    }

    #[test]
    fn kline_seed_warms_volatility_and_volume_and_state_round_trips() {
        let cfg = BaselineConfig::default();
        let mut b = SymbolBaselines::new(cfg.clone());
        // ±0.1 % per minute, 10 units per minute.
        let ks: Vec<Kline> =
            (0..61).map(|i| kline(i, if i % 2 == 0 { 100.0 } else { 100.1 }, 10.0 + (i % 3) as f64)).collect();
        assert!(b.seed_from_klines(&ks, 3_600_000));
        assert!(b.volatility_warm() && !b.flow_warm() && !b.warm());
        // σ(60 s) ≈ 0.1 % / √0.455 (a two-point distribution is not normal; the order is right).
        let s60 = b.sigma_pct(60.0, 0.0);
        assert!(s60 > 0.1 && s60 < 0.2, "{s60}");
        assert!((b.volume_rate() - 11.0 / 60.0).abs() < 1e-9, "{}", b.volume_rate());
        // Too few klines: nothing taken.
        let mut c = SymbolBaselines::new(cfg.clone());
        assert!(!c.seed_from_klines(&ks[..5], 0));
        assert!(!c.volatility_warm() && c.volume_rate() == 0.0);
        // Persisted state restores everything when fresh, nothing when stale.
        for s in 0..60 {
            b.close_second(&calm_second(0.05), false, 3_600_000 + s * 1000);
        }
        assert!(b.warm());
        let st = b.state();
        let back: BaselineState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert_eq!(back, st);
        let mut r = SymbolBaselines::new(cfg.clone());
        assert!(r.restore(&st, st.updated_ms + 3_600_000));
        assert!(r.warm());
        assert!((r.ret5_var() - b.ret5_var()).abs() < 1e-12);
        let mut stale = SymbolBaselines::new(cfg);
        assert!(!stale.restore(&st, st.updated_ms + 7 * 3_600_000));
        assert!(!stale.warm());
        // Klines arriving after a restore do not replace the deeper, restored baseline.
        let before = r.ret5_var();
        assert!(r.seed_from_klines(&ks, st.updated_ms + 3_600_000));
        assert_eq!(r.ret5_var(), before);
    }

    #[test]
    fn sigma_floor_in_ticks() {
        let mut b = SymbolBaselines::new(BaselineConfig::default());
        for s in 0..60 {
            b.close_second(&calm_second(0.0001), false, s * 1000);
        }
        // Tick = 0.1 % of the price: σ is at least two ticks.
        assert!((b.sigma_pct(60.0, 0.1) - 0.2).abs() < 1e-12);
    }
}
