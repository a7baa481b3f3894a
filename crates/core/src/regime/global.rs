//! Global regime: GLOBAL_NORMAL, GLOBAL_RISK_OFF, GLOBAL_PANIC.
//!
//! Inputs: the majors' (BTC/ETH by default) moves and volatility relative to their own long
//! baselines ([`crate::features::baseline`]), breadth (the share of warm symbols dumping
//! together, each judged against its own baseline) and feed health. Level tests (any one
//! suffices; `z60` is a major's 60 s return in σ of its baseline, `vr` its volatility ratio, both
//! 0 while its baseline is cold):
//!
//! | level | condition |
//! |---|---|
//! | PANIC | a major's `|r60| >= panic_shock_pct` or `|r5| >= panic_shock_5s_pct`; or `|z60| >= panic_z` with `|r60| >= panic_z_min_move_pct`; or `vr >= panic_vol_ratio`; or breadth `>= panic_breadth` |
//! | RISK_OFF | a major's `|r60| >= risk_off_shock_pct`; or `|z60| >= risk_off_z` with `|r60| >= risk_off_z_min_move_pct`; or `vr >= risk_off_vol_ratio`; or breadth `>= risk_off_breadth`; or the feed has been down for `>= feed_down_risk_off_ms` |
//!
//! While the regime is at a level, that level's thresholds are multiplied by `exit_factor`
//! (hysteresis). A higher level is entered at once; a lower one one step at a time, after
//! `min_dwell_ms` at the current level.
//!
//! A warm symbol is *dumping* when its 60 s return is `<= −breadth_drop_pct` and `<= −breadth_z`
//! σ of its own baseline, or its pump phase is DUMP; breadth = dumping / observed warm symbols,
//! 0 below `breadth_min_symbols` of them. Counts
//! are kept incrementally (commutative), and per-symbol state lives in `BTreeMap`s, so the
//! result never depends on hash order.

use crate::domain::{Symbol, TimeMs};
use crate::engine::symbol_table::{SymbolId, SymbolRef, SymbolTable};
use crate::features::pump::PumpState;
use crate::features::FeatureSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Market-wide regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum GlobalRegime {
    /// Normal.
    #[default]
    #[serde(rename = "GLOBAL_NORMAL")]
    GlobalNormal,
    /// Reduce risk: higher thresholds, fewer entries.
    #[serde(rename = "GLOBAL_RISK_OFF")]
    GlobalRiskOff,
    /// No new entries.
    #[serde(rename = "GLOBAL_PANIC")]
    GlobalPanic,
}

impl GlobalRegime {
    pub fn as_str(self) -> &'static str {
        match self {
            GlobalRegime::GlobalNormal => "GLOBAL_NORMAL",
            GlobalRegime::GlobalRiskOff => "GLOBAL_RISK_OFF",
            GlobalRegime::GlobalPanic => "GLOBAL_PANIC",
        }
    }
    fn level(self) -> u8 {
        self as u8
    }
    fn from_level(l: u8) -> Self {
        match l {
            0 => GlobalRegime::GlobalNormal,
            1 => GlobalRegime::GlobalRiskOff,
            _ => GlobalRegime::GlobalPanic,
        }
    }
}

/// Global-regime settings (percent values: 1.0 = 1 %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalRegimeConfig {
    /// Symbols whose shocks and volatility count.
    pub majors: Vec<String>,
    /// RISK_OFF: a major's |60 s return|, percent.
    pub risk_off_shock_pct: f64,
    /// PANIC: a major's |60 s return|, percent.
    pub panic_shock_pct: f64,
    /// PANIC: a major's |5 s return|, percent.
    pub panic_shock_5s_pct: f64,
    /// RISK_OFF: a major's |60 s return| in σ of its baseline …
    pub risk_off_z: f64,
    /// … with at least this |60 s return|, percent.
    pub risk_off_z_min_move_pct: f64,
    /// PANIC: a major's |60 s return| in σ of its baseline …
    pub panic_z: f64,
    /// … with at least this |60 s return|, percent.
    pub panic_z_min_move_pct: f64,
    /// RISK_OFF: a major's volatility ratio.
    pub risk_off_vol_ratio: f64,
    /// PANIC: a major's volatility ratio.
    pub panic_vol_ratio: f64,
    /// A symbol dumps when its 60 s return <= −this, percent …
    pub breadth_drop_pct: f64,
    /// … and <= −this many σ of its baseline.
    pub breadth_z: f64,
    /// RISK_OFF: share of symbols dumping, [0, 1].
    pub risk_off_breadth: f64,
    /// PANIC: share of symbols dumping, [0, 1].
    pub panic_breadth: f64,
    /// Breadth counts only with at least this many observed symbols.
    pub breadth_min_symbols: usize,
    /// Feed down this long → RISK_OFF, ms (`from_config` takes `engine.feed_down_risk_off_s`).
    pub feed_down_risk_off_ms: i64,
    /// Thresholds of the current level are multiplied by this to leave it, (0, 1].
    pub exit_factor: f64,
    /// Minimum time at a level before stepping down, ms.
    pub min_dwell_ms: i64,
}

impl Default for GlobalRegimeConfig {
    fn default() -> Self {
        GlobalRegimeConfig {
            majors: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            risk_off_shock_pct: 1.0,
            panic_shock_pct: 2.5,
            panic_shock_5s_pct: 1.2,
            risk_off_z: 8.0,
            risk_off_z_min_move_pct: 0.4,
            panic_z: 16.0,
            panic_z_min_move_pct: 1.0,
            risk_off_vol_ratio: 4.0,
            panic_vol_ratio: 8.0,
            breadth_drop_pct: 1.0,
            breadth_z: 4.0,
            risk_off_breadth: 0.3,
            panic_breadth: 0.5,
            breadth_min_symbols: 10,
            feed_down_risk_off_ms: 10_000,
            exit_factor: 0.6,
            min_dwell_ms: 30_000,
        }
    }
}

impl GlobalRegimeConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        for (n, v) in [
            ("risk_off_shock_pct", self.risk_off_shock_pct),
            ("panic_shock_pct", self.panic_shock_pct),
            ("panic_shock_5s_pct", self.panic_shock_5s_pct),
            ("risk_off_vol_ratio", self.risk_off_vol_ratio),
            ("panic_vol_ratio", self.panic_vol_ratio),
            ("breadth_drop_pct", self.breadth_drop_pct),
            ("breadth_z", self.breadth_z),
            ("risk_off_z", self.risk_off_z),
            ("panic_z", self.panic_z),
            ("risk_off_z_min_move_pct", self.risk_off_z_min_move_pct),
            ("panic_z_min_move_pct", self.panic_z_min_move_pct),
        ] {
            if !(v.is_finite() && v > 0.0) {
                e.push(format!("{prefix}.{n} must be > 0, got {v}"));
            }
        }
        if self.panic_shock_pct < self.risk_off_shock_pct
            || self.panic_vol_ratio < self.risk_off_vol_ratio
            || self.panic_z < self.risk_off_z
        {
            e.push(format!("{prefix}: panic thresholds must be >= risk-off thresholds"));
        }
        for (n, v) in [("risk_off_breadth", self.risk_off_breadth), ("panic_breadth", self.panic_breadth)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                e.push(format!("{prefix}.{n} must be in (0, 1], got {v}"));
            }
        }
        if !(self.exit_factor.is_finite() && self.exit_factor > 0.0 && self.exit_factor <= 1.0) {
            e.push(format!("{prefix}.exit_factor must be in (0, 1], got {}", self.exit_factor));
        }
        if self.feed_down_risk_off_ms < 0 || self.min_dwell_ms < 0 {
            e.push(format!("{prefix}: feed_down_risk_off_ms and min_dwell_ms must be >= 0"));
        }
        for s in &self.majors {
            if !Symbol::is_valid(s) {
                e.push(format!("{prefix}.majors: {s:?} is not a valid symbol"));
            }
        }
    }
}

/// Latest figures of a major.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MajorState {
    /// 5 s return, percent.
    pub ret_5s_pct: f64,
    /// 60 s return, percent.
    pub ret_60s_pct: f64,
    /// Volatility ratio vs own baseline (0 while cold).
    pub volatility_ratio: f64,
    /// 60 s return in σ of its baseline (0 while cold).
    pub move_z_60s: f64,
    /// When observed.
    pub ts_ms: TimeMs,
}

/// Current global regime and the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GlobalSnapshot {
    pub regime: GlobalRegime,
    /// When it was entered.
    pub since_ms: TimeMs,
    /// Why (set on each change).
    pub reason: String,
    /// Share of observed symbols dumping (0 below the minimum count).
    pub breadth: f64,
    /// Symbols dumping.
    pub dumping: usize,
    /// Symbols observed.
    pub observed: usize,
    /// Largest |60 s return| among majors, percent.
    pub major_max_abs_ret_60s_pct: f64,
    /// Largest |5 s return| among majors, percent.
    pub major_max_abs_ret_5s_pct: f64,
    /// Largest volatility ratio among majors.
    pub major_max_vol_ratio: f64,
    /// Largest |60 s return in σ| among majors.
    pub major_max_abs_z_60s: f64,
    /// Since when the feed is down (None = healthy).
    pub feed_down_since_ms: Option<TimeMs>,
}

/// A global-regime change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalRegimeChange {
    /// Previous regime.
    pub from: GlobalRegime,
    /// New regime.
    pub to: GlobalRegime,
    /// Event time.
    pub ts_ms: TimeMs,
    pub reason: String,
}

/// Aggregates symbols into the global regime. O(log n) per observation.
#[derive(Debug, Clone)]
pub struct GlobalRegimeTracker {
    cfg: GlobalRegimeConfig,
    majors: BTreeMap<Symbol, MajorState>,
    /// Looked up on every market event: by symbol id, its row found through
    /// [`GlobalRegimeTracker::focus`] without a hash probe (a B-tree's string comparisons, or a
    /// hash map's probe, read lines that go cold once the universe outgrows the cache).
    dumping: SymbolTable<bool>,
    n_dumping: usize,
    snap: GlobalSnapshot,
}

impl GlobalRegimeTracker {
    /// New tracker in GLOBAL_NORMAL at `now_ms`.
    pub fn new(cfg: GlobalRegimeConfig, now_ms: TimeMs) -> Self {
        GlobalRegimeTracker {
            cfg,
            majors: BTreeMap::new(),
            dumping: SymbolTable::new(),
            n_dumping: 0,
            snap: GlobalSnapshot { since_ms: now_ms, reason: "start".into(), ..GlobalSnapshot::default() },
        }
    }

    /// Replaces the settings.
    pub fn set_config(&mut self, cfg: GlobalRegimeConfig) {
        self.majors.retain(|s, _| cfg.majors.iter().any(|m| m == s.as_str()));
        self.cfg = cfg;
    }

    /// Current regime and figures.
    pub fn snapshot(&self) -> &GlobalSnapshot {
        &self.snap
    }

    /// Current regime.
    pub fn regime(&self) -> GlobalRegime {
        self.snap.regime
    }

    fn is_major(&self, s: &Symbol) -> bool {
        self.cfg.majors.iter().any(|m| m == s.as_str())
    }

    /// Records a symbol's latest features and re-evaluates.
    pub fn observe(&mut self, symbol: &Symbol, f: &FeatureSnapshot, now: TimeMs) -> Option<GlobalRegimeChange> {
        if self.is_major(symbol) {
            let m = MajorState {
                ret_5s_pct: f.ret_5s_pct,
                ret_60s_pct: f.ret_60s_pct,
                volatility_ratio: f.volatility_ratio,
                move_z_60s: f.move_z_60s,
                ts_ms: now,
            };
            match self.majors.get_mut(symbol) {
                Some(v) => *v = m,
                None => {
                    self.majors.insert(symbol.clone(), m);
                }
            }
        }
        if !f.baseline_warm {
            // Not judged until its baseline is warm (and forgotten if it cooled down again).
            if let Some(d) = self.dumping.remove(symbol) {
                self.n_dumping -= d as usize;
            }
            return self.evaluate(now);
        }
        let d = (f.ret_60s_pct <= -self.cfg.breadth_drop_pct && f.move_z_60s <= -self.cfg.breadth_z)
            || f.pump_state == PumpState::Dump;
        match self.dumping.get_mut(symbol) {
            Some(v) => {
                if *v != d {
                    if d {
                        self.n_dumping += 1;
                    } else {
                        self.n_dumping -= 1;
                    }
                    *v = d;
                }
            }
            None => {
                self.dumping.insert(symbol.clone(), d);
                self.n_dumping += d as usize;
            }
        }
        self.evaluate(now)
    }

    /// Points the breadth table at `r` before its [`GlobalRegimeTracker::observe`] (see
    /// [`SymbolTable::focus`]): a hint, changes no answer.
    #[inline]
    pub fn focus(&mut self, r: SymbolRef<'_>) {
        self.dumping.focus(r);
    }

    /// Prefetches the breadth row of market id `id` (once focused before).
    #[inline]
    pub fn prefetch(&self, id: SymbolId) {
        self.dumping.prefetch_market(id);
    }

    /// Forgets a symbol (delisted / dropped from the universe).
    pub fn remove_symbol(&mut self, symbol: &Symbol, now: TimeMs) -> Option<GlobalRegimeChange> {
        if let Some(d) = self.dumping.remove(symbol) {
            self.n_dumping -= d as usize;
        }
        self.majors.remove(symbol);
        self.evaluate(now)
    }

    /// Feed health (aggregate of the public connections).
    pub fn on_feed(&mut self, healthy: bool, now: TimeMs) -> Option<GlobalRegimeChange> {
        if healthy {
            self.snap.feed_down_since_ms = None;
        } else if self.snap.feed_down_since_ms.is_none() {
            self.snap.feed_down_since_ms = Some(now);
        }
        self.evaluate(now)
    }

    /// Re-evaluates on a timer (feed-down duration, dwell).
    pub fn on_second(&mut self, now: TimeMs) -> Option<GlobalRegimeChange> {
        self.evaluate(now)
    }

    fn evaluate(&mut self, now: TimeMs) -> Option<GlobalRegimeChange> {
        let c = &self.cfg;
        let observed = self.dumping.len();
        let breadth =
            if observed >= c.breadth_min_symbols.max(1) { self.n_dumping as f64 / observed as f64 } else { 0.0 };
        let (mut r60, mut r5, mut vr) = (0.0f64, 0.0f64, 0.0f64);
        // The largest |z| among majors, with that major's own |r60| (both must be large).
        let (mut z60, mut z_r60) = (0.0f64, 0.0f64);
        for m in self.majors.values() {
            r60 = r60.max(m.ret_60s_pct.abs());
            r5 = r5.max(m.ret_5s_pct.abs());
            vr = vr.max(m.volatility_ratio);
            if m.move_z_60s.abs() > z60 {
                z60 = m.move_z_60s.abs();
                z_r60 = m.ret_60s_pct.abs();
            }
        }
        let s = &mut self.snap;
        s.breadth = breadth;
        s.dumping = self.n_dumping;
        s.observed = observed;
        s.major_max_abs_ret_60s_pct = r60;
        s.major_max_abs_ret_5s_pct = r5;
        s.major_max_vol_ratio = vr;
        s.major_max_abs_z_60s = z60;
        let cur = s.regime.level();
        let f = |level: u8| if cur >= level { c.exit_factor } else { 1.0 };
        let (fp, fr) = (f(2), f(1));
        let panic = if r60 >= c.panic_shock_pct * fp {
            Some(format!("major |r60| {r60:.2} % >= {:.2} %", c.panic_shock_pct * fp))
        } else if r5 >= c.panic_shock_5s_pct * fp {
            Some(format!("major |r5| {r5:.2} % >= {:.2} %", c.panic_shock_5s_pct * fp))
        } else if z60 >= c.panic_z * fp && z_r60 >= c.panic_z_min_move_pct * fp {
            Some(format!("major 60 s move {z_r60:.2} % = {z60:.1} σ >= {:.1} σ", c.panic_z * fp))
        } else if vr >= c.panic_vol_ratio * fp {
            Some(format!("major volatility ratio {vr:.2} >= {:.2}", c.panic_vol_ratio * fp))
        } else if breadth >= c.panic_breadth * fp {
            Some(format!("breadth {breadth:.2} >= {:.2}", c.panic_breadth * fp))
        } else {
            None
        };
        let down_ms = s.feed_down_since_ms.map(|t| now - t).unwrap_or(0);
        let risk_off = if r60 >= c.risk_off_shock_pct * fr {
            Some(format!("major |r60| {r60:.2} % >= {:.2} %", c.risk_off_shock_pct * fr))
        } else if z60 >= c.risk_off_z * fr && z_r60 >= c.risk_off_z_min_move_pct * fr {
            Some(format!("major 60 s move {z_r60:.2} % = {z60:.1} σ >= {:.1} σ", c.risk_off_z * fr))
        } else if vr >= c.risk_off_vol_ratio * fr {
            Some(format!("major volatility ratio {vr:.2} >= {:.2}", c.risk_off_vol_ratio * fr))
        } else if breadth >= c.risk_off_breadth * fr {
            Some(format!("breadth {breadth:.2} >= {:.2}", c.risk_off_breadth * fr))
        } else if s.feed_down_since_ms.is_some() && down_ms >= c.feed_down_risk_off_ms {
            Some(format!("feed down for {down_ms} ms"))
        } else {
            None
        };
        let (target, reason) = match (panic, risk_off) {
            (Some(r), _) => (2u8, r),
            (None, Some(r)) => (1, r),
            (None, None) => (0, "conditions normal".to_string()),
        };
        let next = if target > cur {
            target
        } else if target < cur && now - s.since_ms >= c.min_dwell_ms {
            cur - 1
        } else {
            return None;
        };
        let from = s.regime;
        s.regime = GlobalRegime::from_level(next);
        s.since_ms = now;
        s.reason = reason.clone();
        Some(GlobalRegimeChange { from, to: s.regime, ts_ms: now, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A warm symbol whose σ(60 s) is 0.1 %.
    fn snap(r5: f64, r60: f64, vr: f64) -> FeatureSnapshot {
        FeatureSnapshot {
            ret_5s_pct: r5,
            ret_60s_pct: r60,
            volatility_ratio: vr,
            move_z_60s: r60 / 0.1,
            sigma_60s_pct: 0.1,
            baseline_warm: true,
            ..FeatureSnapshot::default()
        }
    }

    #[test]
    fn majors_judged_against_their_own_baseline() {
        let mut g = GlobalRegimeTracker::new(GlobalRegimeConfig::default(), 0);
        let btc = Symbol::new("BTCUSDT");
        // 0.3 % is 3 σ for BTC here: nothing.
        assert!(g.observe(&btc, &snap(0.0, 0.3, 1.0), 1_000).is_none());
        // 0.2 % at 20 σ (a very calm baseline) is still below the minimum move: nothing.
        let calm = FeatureSnapshot { move_z_60s: 20.0, ..snap(0.0, 0.2, 1.0) };
        assert!(g.observe(&btc, &calm, 2_000).is_none());
        // 0.6 % = 6 σ: below risk_off_z (8). 0.9 % = 9 σ: RISK_OFF.
        assert!(g.observe(&btc, &snap(0.0, -0.6, 1.0), 3_000).is_none());
        let ch = g.observe(&btc, &snap(0.0, -0.9, 1.0), 4_000).unwrap();
        assert_eq!(ch.to, GlobalRegime::GlobalRiskOff);
        assert!(ch.reason.contains("σ"), "{}", ch.reason);
        // Volatility 8× the usual: PANIC.
        let ch = g.observe(&btc, &snap(0.0, 0.0, 8.5), 5_000).unwrap();
        assert_eq!(ch.to, GlobalRegime::GlobalPanic);
        // Cold symbols are not counted in breadth, whatever their returns.
        let mut g = GlobalRegimeTracker::new(GlobalRegimeConfig::default(), 0);
        for i in 0..20 {
            let cold = FeatureSnapshot { baseline_warm: false, ..snap(0.0, -3.0, 0.0) };
            assert!(g.observe(&Symbol::new(&format!("S{i:02}USDT")), &cold, 1_000).is_none());
        }
        assert_eq!((g.snapshot().observed, g.snapshot().dumping), (0, 0));
    }

    #[test]
    fn panic_on_btc_shock_and_stepwise_recovery() {
        let mut g = GlobalRegimeTracker::new(GlobalRegimeConfig::default(), 0);
        let btc = Symbol::new("BTCUSDT");
        assert!(g.observe(&btc, &snap(0.1, 0.3, 1.0), 1_000).is_none());
        // A 3 % BTC drop in 60 s: straight to PANIC.
        let ch = g.observe(&btc, &snap(-1.0, -3.0, 2.0), 2_000).unwrap();
        assert_eq!((ch.from, ch.to), (GlobalRegime::GlobalNormal, GlobalRegime::GlobalPanic));
        assert!(ch.reason.contains("r60"), "{}", ch.reason);
        // Back to calm: stays PANIC for the dwell, then RISK_OFF, then NORMAL (one step per dwell).
        assert!(g.observe(&btc, &snap(0.0, 0.2, 1.0), 10_000).is_none());
        assert_eq!(g.on_second(32_000).map(|c| c.to), Some(GlobalRegime::GlobalRiskOff));
        assert!(g.on_second(40_000).is_none());
        assert_eq!(g.on_second(62_000).map(|c| c.to), Some(GlobalRegime::GlobalNormal));
        // A non-major moving 3 % changes nothing by itself.
        assert!(g.observe(&Symbol::new("DOGEUSDT"), &snap(-2.0, -3.0, 9.0), 70_000).is_none());
        // A 1.5 % 5 s BTC shock is PANIC too.
        assert_eq!(g.observe(&btc, &snap(1.5, 1.5, 1.0), 80_000).map(|c| c.to), Some(GlobalRegime::GlobalPanic));
    }

    #[test]
    fn exit_hysteresis_keeps_risk_off() {
        // Percent shocks only (a symbol whose σ is large: z stays small).
        let flat_z = |f: FeatureSnapshot| FeatureSnapshot { move_z_60s: f.ret_60s_pct, ..f };
        let mut g = GlobalRegimeTracker::new(GlobalRegimeConfig::default(), 0);
        let eth = Symbol::new("ETHUSDT");
        assert_eq!(g.observe(&eth, &flat_z(snap(0.0, 1.2, 1.0)), 0).map(|c| c.to), Some(GlobalRegime::GlobalRiskOff));
        // 0.8 % is below the enter threshold (1 %) but above the exit one (0.6 %): stays.
        assert!(g.observe(&eth, &flat_z(snap(0.0, 0.8, 1.0)), 60_000).is_none());
        assert_eq!(
            g.observe(&eth, &flat_z(snap(0.0, 0.5, 1.0)), 61_000).map(|c| c.to),
            Some(GlobalRegime::GlobalNormal)
        );
    }

    #[test]
    fn breadth_and_feed() {
        let mut g = GlobalRegimeTracker::new(GlobalRegimeConfig::default(), 0);
        let syms: Vec<Symbol> = (0..20).map(|i| Symbol::new(&format!("S{i:02}USDT"))).collect();
        for s in &syms {
            assert!(g.observe(s, &snap(0.0, 0.0, 1.0), 0).is_none());
        }
        // 6 of 20 dumping (30 %) → RISK_OFF; observation order does not matter.
        let mut last = None;
        for s in syms.iter().rev().take(6) {
            last = g.observe(s, &snap(0.0, -1.5, 1.0), 1_000).or(last);
        }
        assert_eq!(last.map(|c| c.to), Some(GlobalRegime::GlobalRiskOff));
        assert_eq!((g.snapshot().dumping, g.snapshot().observed), (6, 20));
        // 10 of 20 (one in DUMP phase with a small return) → PANIC.
        let mut d = snap(0.0, -0.1, 1.0);
        d.pump_state = PumpState::Dump;
        for s in syms.iter().take(4) {
            g.observe(s, &d, 2_000);
        }
        assert_eq!(g.regime(), GlobalRegime::GlobalPanic);
        assert!((g.snapshot().breadth - 0.5).abs() < 1e-12);
        // Removing symbols updates the counts.
        g.remove_symbol(&syms[0], 3_000);
        assert_eq!((g.snapshot().dumping, g.snapshot().observed), (9, 19));
        // Feed down for 10 s → RISK_OFF (from NORMAL).
        let mut g = GlobalRegimeTracker::new(GlobalRegimeConfig::default(), 0);
        assert!(g.on_feed(false, 1_000).is_none());
        assert!(g.on_second(10_999).is_none());
        assert_eq!(g.on_second(11_000).map(|c| c.to), Some(GlobalRegime::GlobalRiskOff));
        assert!(g.on_feed(true, 12_000).is_none(), "dwell first");
        assert_eq!(g.on_second(41_000).map(|c| c.to), Some(GlobalRegime::GlobalNormal));
        assert_eq!(serde_json::to_string(&GlobalRegime::GlobalPanic).unwrap(), "\"GLOBAL_PANIC\"");
    }
}
