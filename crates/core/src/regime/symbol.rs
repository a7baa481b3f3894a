//! Per-symbol regime: NORMAL, PUMP, MANIPULATED, NEWS_DRIVEN, COOLDOWN.
//!
//! The wanted state is chosen by priority, each test with an enter threshold when the symbol is
//! not in that state and a lower exit threshold when it is (hysteresis):
//!
//! 1. MANIPULATED — repeated, confirmed spoofing: at least `spoof_min_verdicts` SPOOFING
//!    verdicts within `spoof_window_ms` and `SpoofingScore >= spoof_enter` (stay while the score
//!    is `>= spoof_exit`);
//! 2. NEWS_DRIVEN — `NewsImpactScore >= news_enter` (stay while `>= news_exit`);
//! 3. PUMP — pump phase PUMPING / BLOWOFF / DUMP: a displacement large for the symbol, confirmed
//!    by flow and volume ([`crate::features::pump`]). Volatility alone never makes a PUMP (a
//!    calm real market has bursts of it);
//! 4. COOLDOWN — the pump engine is in COOLDOWN, or the symbol just left 1–3, or its cooldown
//!    has not ended yet (`cooldown_until_ms = max(entry + cooldown_ms, pump cooldown end)`);
//! 5. NORMAL otherwise.
//!
//! A more restrictive state (higher in the list) is entered at once; a less restrictive one
//! only after `min_dwell_ms` in the current state, and always through COOLDOWN. Signals are
//! allowed in NORMAL and in a COOLDOWN whose end has passed ([`RegimeSnapshot::allows_signals`]).

use crate::domain::TimeMs;
use crate::features::pump::PumpState;
use crate::features::FeatureSnapshot;
use serde::{Deserialize, Serialize};

/// Regime of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegimeState {
    /// Tradeable.
    #[default]
    Normal,
    /// Pump or dump in progress.
    Pump,
    /// Spoofing detected.
    Manipulated,
    /// Active news flag.
    NewsDriven,
    /// After one of the above; tradeable once its end passed.
    Cooldown,
}

impl RegimeState {
    /// Upper-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            RegimeState::Normal => "NORMAL",
            RegimeState::Pump => "PUMP",
            RegimeState::Manipulated => "MANIPULATED",
            RegimeState::NewsDriven => "NEWS_DRIVEN",
            RegimeState::Cooldown => "COOLDOWN",
        }
    }
    /// Restrictiveness: NORMAL 0, COOLDOWN 1, PUMP 2, NEWS_DRIVEN 3, MANIPULATED 4.
    pub fn rank(self) -> u8 {
        match self {
            RegimeState::Normal => 0,
            RegimeState::Cooldown => 1,
            RegimeState::Pump => 2,
            RegimeState::NewsDriven => 3,
            RegimeState::Manipulated => 4,
        }
    }
}

/// Symbol-regime settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegimeConfig {
    /// Minimum time in a state before moving to a less restrictive one, ms.
    pub min_dwell_ms: i64,
    /// SpoofingScore to enter MANIPULATED.
    pub spoof_enter: f64,
    /// SpoofingScore below which MANIPULATED may be left.
    pub spoof_exit: f64,
    /// SPOOFING verdicts needed within `spoof_window_ms` to enter MANIPULATED.
    pub spoof_min_verdicts: u32,
    /// Window of `spoof_min_verdicts`, ms.
    pub spoof_window_ms: i64,
    /// NewsImpactScore to enter NEWS_DRIVEN.
    pub news_enter: f64,
    /// NewsImpactScore below which NEWS_DRIVEN may be left.
    pub news_exit: f64,
    /// COOLDOWN length after leaving PUMP, MANIPULATED or NEWS_DRIVEN, ms.
    pub cooldown_ms: i64,
}

impl Default for RegimeConfig {
    fn default() -> Self {
        RegimeConfig {
            min_dwell_ms: 5_000,
            spoof_enter: 0.6,
            spoof_exit: 0.3,
            spoof_min_verdicts: 3,
            spoof_window_ms: 120_000,
            news_enter: 0.5,
            news_exit: 0.3,
            cooldown_ms: 30_000,
        }
    }
}

impl RegimeConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        for (n, en, ex) in [("spoof", self.spoof_enter, self.spoof_exit), ("news", self.news_enter, self.news_exit)] {
            if !(en.is_finite() && ex.is_finite() && 0.0 <= ex && ex <= en && en <= 1.0) {
                e.push(format!("{prefix}: need 0 <= {n}_exit <= {n}_enter <= 1, got {ex} / {en}"));
            }
        }
        if self.spoof_min_verdicts == 0 || self.spoof_window_ms <= 0 {
            e.push(format!("{prefix}: spoof_min_verdicts and spoof_window_ms must be > 0"));
        }
        if self.min_dwell_ms < 0 || self.cooldown_ms < 0 {
            e.push(format!("{prefix}: min_dwell_ms and cooldown_ms must be >= 0"));
        }
    }
}

/// What the regime is decided from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RegimeInputs {
    /// Pump phase.
    pub pump_state: PumpState,
    /// End of the pump engine's COOLDOWN (0 = none).
    pub pump_cooldown_until_ms: TimeMs,
    /// SpoofingScore ∈ [0, 1].
    pub spoofing_score: f64,
    /// NewsImpactScore ∈ [0, 1].
    pub news_impact: f64,
    /// SPOOFING verdicts within the configured window.
    pub spoof_verdicts: u32,
}

impl RegimeInputs {
    /// From a feature snapshot (`spoof_verdicts` is the caller's: the snapshot has no memory of
    /// verdicts).
    pub fn from_snapshot(s: &FeatureSnapshot) -> Self {
        RegimeInputs {
            pump_state: s.pump_state,
            pump_cooldown_until_ms: s.pump_cooldown_until_ms,
            spoofing_score: s.spoofing_score,
            news_impact: s.news_impact,
            spoof_verdicts: 0,
        }
    }
}

/// Current regime of a symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RegimeSnapshot {
    pub state: RegimeState,
    /// When it was entered.
    pub since_ms: TimeMs,
    /// End of the cooldown (meaningful in COOLDOWN).
    pub cooldown_until_ms: TimeMs,
    /// Why (set on each change).
    pub reason: String,
}

impl RegimeSnapshot {
    /// True in NORMAL, or in a COOLDOWN whose end has passed.
    pub fn allows_signals(&self, now_ms: TimeMs) -> bool {
        match self.state {
            RegimeState::Normal => true,
            RegimeState::Cooldown => now_ms >= self.cooldown_until_ms,
            _ => false,
        }
    }
}

/// A regime change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeChange {
    /// Previous state.
    pub from: RegimeState,
    /// New state.
    pub to: RegimeState,
    /// Event time.
    pub ts_ms: TimeMs,
    pub reason: String,
}

/// The per-symbol regime state machine.
#[derive(Debug, Clone)]
pub struct SymbolRegimeTracker {
    /// Shared by every symbol's tracker (one copy per configuration, not per symbol).
    cfg: std::sync::Arc<RegimeConfig>,
    snap: RegimeSnapshot,
}

impl SymbolRegimeTracker {
    /// Starts in NORMAL at `now_ms`.
    pub fn new(cfg: impl Into<std::sync::Arc<RegimeConfig>>, now_ms: TimeMs) -> Self {
        SymbolRegimeTracker {
            cfg: cfg.into(),
            snap: RegimeSnapshot {
                state: RegimeState::Normal,
                since_ms: now_ms,
                cooldown_until_ms: 0,
                reason: "start".into(),
            },
        }
    }

    /// Replaces the settings.
    pub fn set_config(&mut self, cfg: impl Into<std::sync::Arc<RegimeConfig>>) {
        self.cfg = cfg.into();
    }

    /// Current regime.
    pub fn snapshot(&self) -> &RegimeSnapshot {
        &self.snap
    }

    /// Current state.
    pub fn state(&self) -> RegimeState {
        self.snap.state
    }

    /// Evaluates the inputs at `now`; returns the change, if any. O(1); allocates only on a
    /// change.
    pub fn update(&mut self, i: &RegimeInputs, now: TimeMs) -> Option<RegimeChange> {
        let c = &self.cfg;
        let cur = self.snap.state;
        let manip_thr = if cur == RegimeState::Manipulated { c.spoof_exit } else { c.spoof_enter };
        let news_thr = if cur == RegimeState::NewsDriven { c.news_exit } else { c.news_enter };
        let pump_cool = i.pump_state == PumpState::Cooldown;
        if pump_cool && cur == RegimeState::Cooldown {
            self.snap.cooldown_until_ms = self.snap.cooldown_until_ms.max(i.pump_cooldown_until_ms);
        }
        let repeated = cur == RegimeState::Manipulated || i.spoof_verdicts >= c.spoof_min_verdicts;
        let target = if repeated && i.spoofing_score >= manip_thr {
            RegimeState::Manipulated
        } else if i.news_impact >= news_thr {
            RegimeState::NewsDriven
        } else if i.pump_state.is_active() {
            RegimeState::Pump
        } else if pump_cool
            || matches!(cur, RegimeState::Manipulated | RegimeState::NewsDriven | RegimeState::Pump)
            || (cur == RegimeState::Cooldown && now < self.snap.cooldown_until_ms)
        {
            RegimeState::Cooldown
        } else {
            RegimeState::Normal
        };
        if target == cur {
            return None;
        }
        let escalate = target.rank() > cur.rank();
        if !escalate && now - self.snap.since_ms < c.min_dwell_ms {
            return None;
        }
        let reason = match target {
            RegimeState::Manipulated => format!(
                "spoofing_score {:.2} >= {:.2} after {} spoofing verdicts",
                i.spoofing_score, manip_thr, i.spoof_verdicts
            ),
            RegimeState::NewsDriven => format!("news_impact {:.2} >= {:.2}", i.news_impact, news_thr),
            RegimeState::Pump => format!("pump state {}", i.pump_state.as_str()),
            RegimeState::Cooldown if pump_cool => "pump cooldown".to_string(),
            RegimeState::Cooldown => format!("left {}", cur.as_str()),
            RegimeState::Normal => "conditions normal".to_string(),
        };
        if target == RegimeState::Cooldown {
            self.snap.cooldown_until_ms =
                now.saturating_add(c.cooldown_ms).max(if pump_cool { i.pump_cooldown_until_ms } else { 0 });
        }
        self.snap.state = target;
        self.snap.since_ms = now;
        self.snap.reason = reason.clone();
        Some(RegimeChange { from: cur, to: target, ts_ms: now, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inp() -> RegimeInputs {
        RegimeInputs { spoof_verdicts: 3, ..RegimeInputs::default() }
    }

    #[test]
    fn manipulated_enters_at_once_and_leaves_through_cooldown() {
        let mut r = SymbolRegimeTracker::new(RegimeConfig::default(), 0);
        assert!(r.update(&inp(), 100).is_none());
        let ch = r.update(&RegimeInputs { spoofing_score: 0.65, ..inp() }, 1_000).unwrap();
        assert_eq!((ch.from, ch.to), (RegimeState::Normal, RegimeState::Manipulated));
        assert!(ch.reason.contains("spoofing_score 0.65"), "{}", ch.reason);
        assert!(!r.snapshot().allows_signals(1_000));
        // Falls to 0.4: above the exit threshold, stays.
        assert!(r.update(&RegimeInputs { spoofing_score: 0.4, ..inp() }, 20_000).is_none());
        // Below exit but within the dwell: stays.
        let mut r2 = r.clone();
        assert!(r2.update(&RegimeInputs { spoofing_score: 0.1, ..inp() }, 2_000).is_none());
        // Below exit after the dwell: COOLDOWN for 30 s, then NORMAL.
        let ch = r.update(&RegimeInputs { spoofing_score: 0.1, ..inp() }, 21_000).unwrap();
        assert_eq!(ch.to, RegimeState::Cooldown);
        assert_eq!(r.snapshot().cooldown_until_ms, 51_000);
        assert!(!r.snapshot().allows_signals(50_999));
        assert!(r.snapshot().allows_signals(51_000), "finished cooldown allows signals");
        assert!(r.update(&inp(), 50_000).is_none());
        assert_eq!(r.update(&inp(), 51_000).map(|c| c.to), Some(RegimeState::Normal));
    }

    #[test]
    fn hysteresis_prevents_flapping() {
        let mut r = SymbolRegimeTracker::new(RegimeConfig::default(), 0);
        // A spoofing score oscillating around the enter threshold, between enter and exit.
        let mut changes = 0;
        for k in 0..200 {
            let s = if k % 2 == 0 { 0.62 } else { 0.45 };
            if r.update(&RegimeInputs { spoofing_score: s, ..inp() }, k * 100).is_some() {
                changes += 1;
            }
        }
        assert_eq!(changes, 1, "entered once, never left");
    }

    #[test]
    fn manipulated_needs_repeated_spoofing_and_volatility_alone_is_no_pump() {
        let mut r = SymbolRegimeTracker::new(RegimeConfig::default(), 0);
        // One or two verdicts, however high the score: not MANIPULATED.
        for (k, n) in [(1, 1u32), (2, 2)] {
            assert!(r.update(&RegimeInputs { spoofing_score: 0.9, spoof_verdicts: n, ..inp() }, k * 1000).is_none());
        }
        let ch = r.update(&RegimeInputs { spoofing_score: 0.9, spoof_verdicts: 3, ..inp() }, 3_000).unwrap();
        assert_eq!(ch.to, RegimeState::Manipulated);
        assert!(ch.reason.contains("3 spoofing verdicts"), "{}", ch.reason);
        // Once in, the verdicts may age out: the score's hysteresis decides the exit.
        assert!(r.update(&RegimeInputs { spoofing_score: 0.5, spoof_verdicts: 0, ..inp() }, 20_000).is_none());
        // No input but the pump phase makes a PUMP.
        let mut r = SymbolRegimeTracker::new(RegimeConfig::default(), 0);
        for k in 0..100 {
            assert!(r.update(&inp(), k * 100).is_none());
        }
        assert_eq!(r.state(), RegimeState::Normal);
    }

    #[test]
    fn priorities_and_pump_cooldown() {
        let mut r = SymbolRegimeTracker::new(RegimeConfig::default(), 0);
        let pumping = RegimeInputs { pump_state: PumpState::Pumping, ..inp() };
        assert_eq!(r.update(&pumping, 1_000).map(|c| c.to), Some(RegimeState::Pump));
        // News outranks a pump.
        let ch = r.update(&RegimeInputs { news_impact: 0.9, ..pumping }, 2_000).unwrap();
        assert_eq!(ch.to, RegimeState::NewsDriven);
        // Spoofing outranks news.
        assert_eq!(
            r.update(&RegimeInputs { spoofing_score: 0.9, news_impact: 0.9, ..pumping }, 3_000).map(|c| c.to),
            Some(RegimeState::Manipulated)
        );
        // Pump engine in COOLDOWN until 200 000: regime cooldown lasts at least as long.
        let cool = RegimeInputs { pump_state: PumpState::Cooldown, pump_cooldown_until_ms: 200_000, ..inp() };
        assert_eq!(r.update(&cool, 10_000).map(|c| c.to), Some(RegimeState::Cooldown));
        assert_eq!(r.snapshot().cooldown_until_ms, 200_000);
        assert!(r.update(&inp(), 100_000).is_none());
        assert_eq!(r.update(&inp(), 200_000).map(|c| c.to), Some(RegimeState::Normal));
        assert_eq!(RegimeState::Manipulated.as_str(), "MANIPULATED");
        assert_eq!(serde_json::to_string(&RegimeState::NewsDriven).unwrap(), "\"NEWS_DRIVEN\"");
    }
}
