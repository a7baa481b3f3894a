//! Pump engine: NONE → PREPUMP → PUMPING → BLOWOFF → DUMP → COOLDOWN → NONE.
//!
//! Inputs ([`PumpInputs`]) are computed by the symbol facade from event-time windows:
//! returns over 5 s / 30 s / 60 s (percent), the 5 s volume and trade rates relative to the
//! symbol's own baselines (EWMA per second, frozen outside NONE so a pump never becomes its own
//! baseline), ask/bid thinning within 0.5 % of the mid versus their baselines, the 5 s taker
//! delta ratio and the share of 10 s traded notional that came from liquidations.
//!
//! Transitions (one per evaluation; enter and exit thresholds differ — hysteresis):
//!
//! | from | to | when |
//! |---|---|---|
//! | NONE | PREPUMP | `r30 >= pre_ret_pct`, `z30 >= pre_z`, `vol_ratio >= pre_vol_ratio` and `trades_5s >= min_trades_5s / 2` |
//! | NONE, PREPUMP | DUMP | crash: `r30 <= −crash_ret_pct`, `z30 <= −pump_z`, `delta5 < 0`, `trades_5s >= min_trades_5s` and ≥ 2 of {vol, trade rate, bid thinning, long liquidations} confirmations |
//! | PREPUMP | PUMPING | `r30 >= pump_ret_pct`, `z30 >= pump_z`, `delta5 > 0`, `trades_5s >= min_trades_5s` and ≥ 2 of {`vol_ratio >= pump_vol_ratio`, `trade_rate_ratio >= pump_tps_ratio`, `ask_thinning >= thin_fraction`, `liq_short_share >= liq_burst_share`} |
//! | PREPUMP | NONE | `r30 < pre_exit_ret_pct` after `min_dwell_ms`, or `prepump_timeout_ms` without escalation |
//! | PUMPING | BLOWOFF | acceleration: `r5 >= blowoff_ret_5s_pct` and (`vol_ratio` or `trade_rate_ratio`) `>= blowoff_vol_ratio` |
//! | PUMPING, BLOWOFF | DUMP | drawdown from the phase peak `>= dump_drawdown_pct` and `delta5 < 0` |
//! | PUMPING | COOLDOWN | stalled (`r30 < stall_ret_pct` and `vol_ratio < stall_vol_ratio`) for `stall_ms` |
//! | BLOWOFF | COOLDOWN | no new high for `blowoff_timeout_ms` |
//! | DUMP | COOLDOWN | settled (`r5 > −settle_ret_5s_pct` and `vol_ratio < settle_vol_ratio`) for `dump_settle_ms` |
//! | COOLDOWN | NONE | `cooldown_ms` after entering COOLDOWN |
//!
//! `z30` is the 30 s return in σ of the symbol's own long baseline
//! ([`crate::features::baseline`]): a pump is a *displacement* that is large for this symbol, not
//! only large in percent, confirmed by flow and volume. Nothing fires before the baselines are
//! warm.

use crate::domain::TimeMs;
use crate::features::math::pct_change;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Pump phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PumpState {
    /// Nothing unusual.
    #[default]
    None,
    /// Early signs: price rising on higher volume.
    Prepump,
    /// Confirmed pump.
    Pumping,
    /// Accelerating climax.
    Blowoff,
    /// Falling hard (after a pump, or a crash).
    Dump,
    /// After the move; times out to NONE.
    Cooldown,
}

impl PumpState {
    /// Upper-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            PumpState::None => "NONE",
            PumpState::Prepump => "PREPUMP",
            PumpState::Pumping => "PUMPING",
            PumpState::Blowoff => "BLOWOFF",
            PumpState::Dump => "DUMP",
            PumpState::Cooldown => "COOLDOWN",
        }
    }
    /// PUMPING, BLOWOFF or DUMP.
    pub fn is_active(self) -> bool {
        matches!(self, PumpState::Pumping | PumpState::Blowoff | PumpState::Dump)
    }
}

/// Pump engine settings (percent values: 1.0 = 1 %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PumpConfig {
    /// PREPUMP: 30 s return in σ of the symbol's baseline.
    pub pre_z: f64,
    /// PUMPING and crash: |30 s return| in σ of the symbol's baseline.
    pub pump_z: f64,
    /// PREPUMP: 30 s return, percent.
    pub pre_ret_pct: f64,
    /// PREPUMP: volume ratio.
    pub pre_vol_ratio: f64,
    /// PREPUMP exit: 30 s return below this, percent.
    pub pre_exit_ret_pct: f64,
    /// PREPUMP gives up after this long, ms.
    pub prepump_timeout_ms: i64,
    /// Minimum time in a state before a de-escalation, ms.
    pub min_dwell_ms: i64,
    /// PUMPING: 30 s return, percent.
    pub pump_ret_pct: f64,
    /// PUMPING confirmation: volume ratio.
    pub pump_vol_ratio: f64,
    /// PUMPING confirmation: trade-rate ratio.
    pub pump_tps_ratio: f64,
    /// PUMPING confirmation: ask thinning (bid thinning for crashes), [0, 1].
    pub thin_fraction: f64,
    /// PUMPING confirmation: liquidation share of traded notional over 10 s, [0, 1].
    pub liq_burst_share: f64,
    /// Trades in 5 s needed for PUMPING / crash (half for PREPUMP).
    pub min_trades_5s: f64,
    /// BLOWOFF: 5 s return, percent.
    pub blowoff_ret_5s_pct: f64,
    /// BLOWOFF: volume or trade-rate ratio.
    pub blowoff_vol_ratio: f64,
    /// BLOWOFF → COOLDOWN without a new high for this long, ms.
    pub blowoff_timeout_ms: i64,
    /// DUMP: drawdown from the phase peak, percent.
    pub dump_drawdown_pct: f64,
    /// Crash DUMP from NONE/PREPUMP: 30 s fall, percent.
    pub crash_ret_pct: f64,
    /// PUMPING stall: 30 s return below this, percent …
    pub stall_ret_pct: f64,
    /// … and volume ratio below this …
    pub stall_vol_ratio: f64,
    /// … for this long, ms → COOLDOWN.
    pub stall_ms: i64,
    /// DUMP settled: 5 s return above minus this, percent …
    pub settle_ret_5s_pct: f64,
    /// … and volume ratio below this …
    pub settle_vol_ratio: f64,
    /// … for this long, ms → COOLDOWN.
    pub dump_settle_ms: i64,
    /// COOLDOWN → NONE after this long, ms.
    pub cooldown_ms: i64,
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig {
            pre_z: 3.0,
            pump_z: 5.0,
            pre_ret_pct: 0.4,
            pre_vol_ratio: 2.0,
            pre_exit_ret_pct: 0.15,
            prepump_timeout_ms: 60_000,
            min_dwell_ms: 3_000,
            pump_ret_pct: 1.0,
            pump_vol_ratio: 3.0,
            pump_tps_ratio: 2.0,
            thin_fraction: 0.3,
            liq_burst_share: 0.05,
            min_trades_5s: 10.0,
            blowoff_ret_5s_pct: 0.8,
            blowoff_vol_ratio: 5.0,
            blowoff_timeout_ms: 30_000,
            dump_drawdown_pct: 1.0,
            crash_ret_pct: 1.5,
            stall_ret_pct: 0.3,
            stall_vol_ratio: 1.5,
            stall_ms: 20_000,
            settle_ret_5s_pct: 0.2,
            settle_vol_ratio: 2.0,
            dump_settle_ms: 10_000,
            cooldown_ms: 120_000,
        }
    }
}

impl PumpConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        let pos = [
            ("pre_z", self.pre_z),
            ("pump_z", self.pump_z),
            ("pre_ret_pct", self.pre_ret_pct),
            ("pre_vol_ratio", self.pre_vol_ratio),
            ("pump_ret_pct", self.pump_ret_pct),
            ("pump_vol_ratio", self.pump_vol_ratio),
            ("pump_tps_ratio", self.pump_tps_ratio),
            ("blowoff_ret_5s_pct", self.blowoff_ret_5s_pct),
            ("blowoff_vol_ratio", self.blowoff_vol_ratio),
            ("dump_drawdown_pct", self.dump_drawdown_pct),
            ("crash_ret_pct", self.crash_ret_pct),
        ];
        for (n, v) in pos {
            if !(v.is_finite() && v > 0.0) {
                e.push(format!("{prefix}.{n} must be > 0, got {v}"));
            }
        }
        if self.pump_ret_pct < self.pre_ret_pct || self.pre_exit_ret_pct >= self.pre_ret_pct {
            e.push(format!("{prefix}: need pre_exit_ret_pct < pre_ret_pct <= pump_ret_pct"));
        }
        for (n, v) in [("thin_fraction", self.thin_fraction), ("liq_burst_share", self.liq_burst_share)] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                e.push(format!("{prefix}.{n} must be in [0, 1], got {v}"));
            }
        }
        let times = [
            ("prepump_timeout_ms", self.prepump_timeout_ms),
            ("blowoff_timeout_ms", self.blowoff_timeout_ms),
            ("stall_ms", self.stall_ms),
            ("dump_settle_ms", self.dump_settle_ms),
            ("cooldown_ms", self.cooldown_ms),
        ];
        for (n, v) in times {
            if v <= 0 {
                e.push(format!("{prefix}.{n} must be > 0, got {v}"));
            }
        }
        if self.min_dwell_ms < 0 || self.min_trades_5s.is_nan() || self.min_trades_5s < 0.0 {
            e.push(format!("{prefix}: min_dwell_ms and min_trades_5s must be >= 0"));
        }
    }
}

/// Numbers the pump engine evaluates (also the evidence of a transition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PumpInputs {
    /// Reference price (last trade, else mid).
    pub price: f64,
    /// Return over 5 s, percent.
    pub ret_5s_pct: f64,
    /// Return over 30 s, percent.
    pub ret_30s_pct: f64,
    /// Return over 60 s, percent.
    pub ret_60s_pct: f64,
    /// 5 s volume rate / baseline volume rate.
    pub vol_ratio: f64,
    /// 5 s trade rate / baseline trade rate.
    pub trade_rate_ratio: f64,
    /// Trades in the last 5 s.
    pub trades_5s: f64,
    /// `1 − ask notional within 0.5 % / its baseline`, [0, 1].
    pub ask_thinning: f64,
    /// `1 − bid notional within 0.5 % / its baseline`, [0, 1].
    pub bid_thinning: f64,
    /// Liquidated-short notional / traded notional over 10 s, [0, 1].
    pub liq_short_share: f64,
    /// Liquidated-long notional / traded notional over 10 s, [0, 1].
    pub liq_long_share: f64,
    /// Taker delta ratio over 5 s, [-1, 1].
    pub delta_ratio_5s: f64,
    /// 30 s return in σ of the symbol's long baseline (0 while cold).
    pub move_z_30s: f64,
    /// True once the symbol's baselines are warm.
    pub warm: bool,
}

/// Evidence of a transition: the inputs plus the phase's extreme.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PumpEvidence {
    /// Inputs at the transition.
    #[serde(flatten)]
    pub inputs: PumpInputs,
    /// Highest price of the pump phases (0 outside them).
    pub peak_price: f64,
    /// Drawdown from `peak_price`, percent.
    pub drawdown_pct: f64,
    /// Confirmations counted for PUMPING / crash.
    pub confirmations: u32,
}

/// A pump-phase transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PumpEvent {
    /// Previous phase.
    pub from: PumpState,
    /// New phase.
    pub to: PumpState,
    /// Event time.
    pub ts_ms: TimeMs,
    /// Rule that fired.
    pub reason: Cow<'static, str>,
    /// Numbers behind it.
    pub evidence: PumpEvidence,
}

/// The pump state machine.
#[derive(Debug, Clone)]
pub struct PumpEngine {
    /// Shared by every symbol's tracker (one copy per configuration, not per symbol).
    cfg: std::sync::Arc<PumpConfig>,
    state: PumpState,
    since_ms: TimeMs,
    peak: f64,
    peak_ms: TimeMs,
    cond_since: Option<TimeMs>,
}

impl PumpEngine {
    /// New engine in NONE.
    pub fn new(cfg: impl Into<std::sync::Arc<PumpConfig>>) -> Self {
        PumpEngine { cfg: cfg.into(), state: PumpState::None, since_ms: 0, peak: 0.0, peak_ms: 0, cond_since: None }
    }

    /// Replaces the settings.
    pub fn set_config(&mut self, cfg: impl Into<std::sync::Arc<PumpConfig>>) {
        self.cfg = cfg.into();
    }

    pub fn config(&self) -> &PumpConfig {
        &self.cfg
    }

    /// Current phase.
    pub fn state(&self) -> PumpState {
        self.state
    }

    /// When the current phase began.
    pub fn since_ms(&self) -> TimeMs {
        self.since_ms
    }

    /// End of the current COOLDOWN (0 outside COOLDOWN).
    pub fn cooldown_until_ms(&self) -> TimeMs {
        if self.state == PumpState::Cooldown {
            self.since_ms.saturating_add(self.cfg.cooldown_ms)
        } else {
            0
        }
    }

    /// Peak price of the current pump phases (0 outside).
    pub fn peak(&self) -> f64 {
        self.peak
    }

    fn pump_confirmations(&self, i: &PumpInputs) -> u32 {
        let c = &self.cfg;
        (i.vol_ratio >= c.pump_vol_ratio) as u32
            + (i.trade_rate_ratio >= c.pump_tps_ratio) as u32
            + (i.ask_thinning >= c.thin_fraction) as u32
            + (i.liq_short_share >= c.liq_burst_share && i.liq_short_share > 0.0) as u32
    }

    fn crash_confirmations(&self, i: &PumpInputs) -> u32 {
        let c = &self.cfg;
        (i.vol_ratio >= c.pump_vol_ratio) as u32
            + (i.trade_rate_ratio >= c.pump_tps_ratio) as u32
            + (i.bid_thinning >= c.thin_fraction) as u32
            + (i.liq_long_share >= c.liq_burst_share && i.liq_long_share > 0.0) as u32
    }

    fn crash(&self, i: &PumpInputs) -> bool {
        i.ret_30s_pct <= -self.cfg.crash_ret_pct
            && i.move_z_30s <= -self.cfg.pump_z
            && i.delta_ratio_5s < 0.0
            && i.trades_5s >= self.cfg.min_trades_5s
            && self.crash_confirmations(i) >= 2
    }

    /// True when `cond` has held continuously for `for_ms` (tracked across calls in `since`, the
    /// engine's `cond_since`; a function of the field so that `evaluate` can borrow the
    /// configuration meanwhile instead of taking a reference count on it every event).
    fn held(since: &mut Option<TimeMs>, cond: bool, now: TimeMs, for_ms: i64) -> bool {
        if !cond {
            *since = None;
            return false;
        }
        let s = *since.get_or_insert(now);
        now - s >= for_ms
    }

    /// Evaluates the inputs at `now`; returns the transition, if any. O(1).
    pub fn evaluate(&mut self, i: &PumpInputs, now: TimeMs) -> Option<PumpEvent> {
        let c = &*self.cfg;
        if matches!(self.state, PumpState::Pumping | PumpState::Blowoff) && i.price > self.peak {
            self.peak = i.price;
            self.peak_ms = now;
        }
        let drawdown = if self.peak > 0.0 { -pct_change(i.price, self.peak) } else { 0.0 };
        let dwell = now - self.since_ms;
        let (to, reason) = match self.state {
            PumpState::None => {
                if !i.warm {
                    return None;
                }
                if self.crash(i) {
                    (PumpState::Dump, "crash: fast fall with volume")
                } else if i.ret_30s_pct >= c.pre_ret_pct
                    && i.move_z_30s >= c.pre_z
                    && i.vol_ratio >= c.pre_vol_ratio
                    && i.trades_5s >= c.min_trades_5s / 2.0
                {
                    (PumpState::Prepump, "30 s rise on rising volume")
                } else {
                    return None;
                }
            }
            PumpState::Prepump => {
                if i.ret_30s_pct >= c.pump_ret_pct
                    && i.move_z_30s >= c.pump_z
                    && i.delta_ratio_5s > 0.0
                    && i.trades_5s >= c.min_trades_5s
                    && self.pump_confirmations(i) >= 2
                {
                    (PumpState::Pumping, "pump confirmed")
                } else if self.crash(i) {
                    (PumpState::Dump, "crash: fast fall with volume")
                } else if dwell >= c.prepump_timeout_ms {
                    (PumpState::None, "prepump timed out")
                } else if dwell >= c.min_dwell_ms && i.ret_30s_pct < c.pre_exit_ret_pct {
                    (PumpState::None, "rise faded")
                } else {
                    return None;
                }
            }
            PumpState::Pumping => {
                if i.ret_5s_pct >= c.blowoff_ret_5s_pct
                    && (i.vol_ratio >= c.blowoff_vol_ratio || i.trade_rate_ratio >= c.blowoff_vol_ratio)
                {
                    (PumpState::Blowoff, "acceleration on climax volume")
                } else if drawdown >= c.dump_drawdown_pct && i.delta_ratio_5s < 0.0 {
                    (PumpState::Dump, "drawdown from pump peak")
                } else if Self::held(
                    &mut self.cond_since,
                    i.ret_30s_pct < c.stall_ret_pct && i.vol_ratio < c.stall_vol_ratio,
                    now,
                    c.stall_ms,
                ) && dwell >= c.min_dwell_ms
                {
                    (PumpState::Cooldown, "pump stalled")
                } else {
                    return None;
                }
            }
            PumpState::Blowoff => {
                if drawdown >= c.dump_drawdown_pct && i.delta_ratio_5s < 0.0 {
                    (PumpState::Dump, "drawdown from blow-off peak")
                } else if now - self.peak_ms >= c.blowoff_timeout_ms && dwell >= c.min_dwell_ms {
                    (PumpState::Cooldown, "blow-off without new highs")
                } else {
                    return None;
                }
            }
            PumpState::Dump => {
                let settled = i.ret_5s_pct > -c.settle_ret_5s_pct && i.vol_ratio < c.settle_vol_ratio;
                if Self::held(&mut self.cond_since, settled, now, c.dump_settle_ms) && dwell >= c.min_dwell_ms {
                    (PumpState::Cooldown, "dump settled")
                } else {
                    return None;
                }
            }
            PumpState::Cooldown => {
                if dwell >= c.cooldown_ms {
                    (PumpState::None, "cooldown over")
                } else {
                    return None;
                }
            }
        };
        let confirmations = if to == PumpState::Dump && self.peak <= 0.0 {
            self.crash_confirmations(i)
        } else {
            self.pump_confirmations(i)
        };
        let ev = PumpEvent {
            from: self.state,
            to,
            ts_ms: now,
            reason: Cow::Borrowed(reason),
            evidence: PumpEvidence { inputs: *i, peak_price: self.peak, drawdown_pct: drawdown, confirmations },
        };
        self.state = to;
        self.since_ms = now;
        self.cond_since = None;
        match to {
            PumpState::Pumping if self.peak <= 0.0 => {
                self.peak = i.price;
                self.peak_ms = now;
            }
            PumpState::None | PumpState::Prepump => {
                self.peak = 0.0;
            }
            _ => {}
        }
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> PumpInputs {
        PumpInputs {
            price: 100.0,
            vol_ratio: 1.0,
            trade_rate_ratio: 1.0,
            trades_5s: 20.0,
            move_z_30s: 0.0,
            warm: true,
            ..PumpInputs::default()
        }
    }

    #[test]
    fn walks_the_whole_cycle() {
        let mut e = PumpEngine::new(PumpConfig::default());
        let mut seen = vec![e.state()];
        let mut t = 0;
        let mut step = |e: &mut PumpEngine, i: PumpInputs, t: &mut i64| {
            *t += 1_000;
            if let Some(ev) = e.evaluate(&i, *t) {
                assert_eq!(ev.ts_ms, *t);
                seen.push(ev.to);
            }
        };
        step(&mut e, calm(), &mut t);
        // Rise on volume → PREPUMP.
        step(&mut e, PumpInputs { ret_30s_pct: 0.6, move_z_30s: 4.0, vol_ratio: 2.5, price: 100.6, ..calm() }, &mut t);
        // Strong rise, buy flow, volume and trade rate → PUMPING.
        let pump = PumpInputs {
            ret_30s_pct: 2.0,
            move_z_30s: 12.0,
            ret_5s_pct: 0.4,
            vol_ratio: 4.0,
            trade_rate_ratio: 3.0,
            delta_ratio_5s: 0.5,
            price: 102.0,
            ..calm()
        };
        step(&mut e, pump, &mut t);
        // Acceleration → BLOWOFF.
        step(&mut e, PumpInputs { ret_5s_pct: 1.5, vol_ratio: 8.0, price: 104.0, ..pump }, &mut t);
        // 2 % off the peak with selling → DUMP.
        step(&mut e, PumpInputs { ret_5s_pct: -2.0, delta_ratio_5s: -0.6, price: 101.9, ..pump }, &mut t);
        // Settles for 10 s (and the minimum dwell) → COOLDOWN.
        for _ in 0..12 {
            step(&mut e, PumpInputs { ret_5s_pct: 0.0, vol_ratio: 1.0, price: 102.0, ..calm() }, &mut t);
        }
        assert_eq!(e.state(), PumpState::Cooldown);
        assert_eq!(e.cooldown_until_ms(), e.since_ms() + 120_000);
        // Times out to NONE.
        for _ in 0..125 {
            step(&mut e, calm(), &mut t);
        }
        use PumpState::*;
        assert_eq!(seen, vec![None, Prepump, Pumping, Blowoff, Dump, Cooldown, None]);
    }

    #[test]
    fn needs_warmup_and_confirmations() {
        let mut e = PumpEngine::new(PumpConfig::default());
        let hot = PumpInputs { ret_30s_pct: 3.0, move_z_30s: 10.0, vol_ratio: 5.0, ..calm() };
        assert!(e.evaluate(&PumpInputs { warm: false, ..hot }, 1).is_none());
        assert_eq!(e.evaluate(&hot, 2).map(|x| x.to), Some(PumpState::Prepump));
        // Price alone (volume confirmation only) is not enough for PUMPING.
        let one = PumpInputs {
            ret_30s_pct: 3.0,
            move_z_30s: 10.0,
            vol_ratio: 5.0,
            trade_rate_ratio: 1.0,
            delta_ratio_5s: 0.5,
            ..calm()
        };
        assert!(e.evaluate(&one, 3).is_none());
        // Thin asks are the second confirmation.
        let ev = e.evaluate(&PumpInputs { ask_thinning: 0.5, ..one }, 4).unwrap();
        assert_eq!(ev.to, PumpState::Pumping);
        assert_eq!(ev.evidence.confirmations, 2);
        assert_eq!(ev.evidence.inputs.ask_thinning, 0.5);
    }

    #[test]
    fn a_move_ordinary_for_the_symbol_is_no_pump() {
        // 3 % in 30 s with volume, flow and thin asks, but only 2 σ for this symbol.
        let mut e = PumpEngine::new(PumpConfig::default());
        let wild = PumpInputs {
            ret_30s_pct: 3.0,
            move_z_30s: 2.0,
            vol_ratio: 5.0,
            trade_rate_ratio: 3.0,
            ask_thinning: 0.5,
            delta_ratio_5s: 0.6,
            ..calm()
        };
        assert!(e.evaluate(&wild, 1_000).is_none());
        assert!(e
            .evaluate(&PumpInputs { ret_30s_pct: -3.0, move_z_30s: -2.0, delta_ratio_5s: -0.6, ..wild }, 2_000)
            .is_none());
        // The same move at 6 σ is a displacement.
        assert_eq!(e.evaluate(&PumpInputs { move_z_30s: 6.0, ..wild }, 3_000).map(|x| x.to), Some(PumpState::Prepump));
        assert_eq!(e.evaluate(&PumpInputs { move_z_30s: 6.0, ..wild }, 4_000).map(|x| x.to), Some(PumpState::Pumping));
    }

    #[test]
    fn prepump_fades_with_hysteresis_and_crash_dumps() {
        let mut e = PumpEngine::new(PumpConfig::default());
        e.evaluate(&PumpInputs { ret_30s_pct: 0.5, move_z_30s: 4.0, vol_ratio: 3.0, ..calm() }, 0);
        assert_eq!(e.state(), PumpState::Prepump);
        // Below the enter threshold but above the exit one: stays.
        assert!(e.evaluate(&PumpInputs { ret_30s_pct: 0.2, ..calm() }, 5_000).is_none());
        // Below exit, but dwell not reached: stays; then leaves.
        let mut e2 = e.clone();
        assert!(e2.evaluate(&PumpInputs { ret_30s_pct: 0.0, ..calm() }, 1_000).is_none());
        assert_eq!(e.evaluate(&PumpInputs { ret_30s_pct: 0.1, ..calm() }, 6_000).map(|x| x.to), Some(PumpState::None));
        // Crash from NONE with bid thinning and long liquidations.
        let crash = PumpInputs {
            ret_30s_pct: -2.0,
            move_z_30s: -8.0,
            delta_ratio_5s: -0.7,
            bid_thinning: 0.5,
            liq_long_share: 0.2,
            ..calm()
        };
        let ev = e.evaluate(&crash, 7_000).unwrap();
        assert_eq!((ev.from, ev.to), (PumpState::None, PumpState::Dump));
        assert_eq!(ev.evidence.confirmations, 2);
    }
}
