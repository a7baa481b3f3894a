//! Symbol profiles: what trading a symbol has been like (win rate, MFE/MAE, pump and spoofing
//! frequency) and the adjustments that follow from it — smaller size, a higher required score,
//! and an automatic blacklist after bad statistics. Pure; persisted by the edge to
//! `data/profiles/<SYMBOL>.json`. Every adjustment is reversible and logged.

use crate::domain::{Symbol, TimeMs};
use serde::{Deserialize, Serialize};

/// When and how profiles adjust trading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfilePolicy {
    /// Trades needed before any adjustment.
    pub min_trades: u64,
    /// Win rate below this → size cut and extra score.
    pub bad_win_rate: f64,
    /// Size multiplier applied to a bad symbol, (0, 1].
    pub size_cut: f64,
    /// Score points added for a bad symbol.
    pub extra_score: f64,
    /// Σ R at or below this (after `min_trades`) → automatic blacklist.
    pub blacklist_sum_r: f64,
    /// Spoof verdicts per trade above this also add the extra score.
    pub spoof_per_trade: f64,
}

impl Default for ProfilePolicy {
    fn default() -> Self {
        ProfilePolicy {
            min_trades: 10,
            bad_win_rate: 0.35,
            size_cut: 0.5,
            extra_score: 10.0,
            blacklist_sum_r: -6.0,
            spoof_per_trade: 20.0,
        }
    }
}

/// The profile of one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolProfile {
    pub symbol: Symbol,
    /// Closed trades.
    pub trades: u64,
    /// Trades with net PnL > 0.
    pub wins: u64,
    /// Σ net PnL, USDT.
    pub net_pnl: f64,
    /// Σ R multiples.
    pub sum_r: f64,
    /// Average MFE, fraction of entry.
    pub avg_mfe: f64,
    /// Average MAE, fraction of entry.
    pub avg_mae: f64,
    /// Pump-phase transitions seen.
    pub pump_events: u64,
    /// Spoofing verdicts seen.
    pub spoof_events: u64,
    /// Last update (event time).
    pub updated_ms: TimeMs,
    /// Size multiplier in force, (0, 1].
    pub size_multiplier: f64,
    /// Extra score required, points.
    pub extra_score: f64,
    /// Blacklisted by the profile.
    pub auto_blacklisted: bool,
    /// Why the adjustments are what they are.
    pub reason: String,
    /// The symbol's long baselines, read back at start so a restart needs no warm-up
    /// (absent in files written before baselines existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<crate::features::baseline::BaselineState>,
}

/// A change of a profile's adjustments, for the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileChange {
    /// Size multiplier now.
    pub size_multiplier: f64,
    /// Extra score now.
    pub extra_score: f64,
    /// Auto-blacklisted now.
    pub auto_blacklisted: bool,
    pub reason: String,
}

impl SymbolProfile {
    /// Empty profile.
    pub fn new(symbol: Symbol) -> Self {
        SymbolProfile {
            symbol,
            trades: 0,
            wins: 0,
            net_pnl: 0.0,
            sum_r: 0.0,
            avg_mfe: 0.0,
            avg_mae: 0.0,
            pump_events: 0,
            spoof_events: 0,
            updated_ms: 0,
            size_multiplier: 1.0,
            extra_score: 0.0,
            auto_blacklisted: false,
            reason: String::new(),
            baselines: None,
        }
    }

    /// Win rate in [0, 1] (0 without trades).
    pub fn win_rate(&self) -> f64 {
        if self.trades == 0 {
            0.0
        } else {
            self.wins as f64 / self.trades as f64
        }
    }

    /// Records a closed trade.
    pub fn on_trade(&mut self, net_pnl: f64, r: f64, mfe: f64, mae: f64, now: TimeMs) {
        let n = self.trades as f64;
        self.avg_mfe = (self.avg_mfe * n + mfe) / (n + 1.0);
        self.avg_mae = (self.avg_mae * n + mae) / (n + 1.0);
        self.trades += 1;
        if net_pnl > 0.0 {
            self.wins += 1;
        }
        self.net_pnl += net_pnl;
        self.sum_r += r;
        self.updated_ms = now;
    }

    /// Records a pump transition.
    pub fn on_pump(&mut self, now: TimeMs) {
        self.pump_events += 1;
        self.updated_ms = now;
    }

    /// Records a spoofing verdict.
    pub fn on_spoof(&mut self, now: TimeMs) {
        self.spoof_events += 1;
        self.updated_ms = now;
    }

    /// Recomputes the adjustments; returns the change if any.
    pub fn apply_policy(&mut self, p: &ProfilePolicy) -> Option<ProfileChange> {
        let enough = self.trades >= p.min_trades;
        let bad_wins = enough && self.win_rate() < p.bad_win_rate;
        let spoofy = enough && self.spoof_events as f64 / self.trades.max(1) as f64 > p.spoof_per_trade;
        let black = enough && self.sum_r <= p.blacklist_sum_r;
        let size = if bad_wins { p.size_cut } else { 1.0 };
        let extra = if bad_wins || spoofy { p.extra_score } else { 0.0 };
        let mut why = Vec::new();
        if bad_wins {
            why.push(format!("win rate {:.2} < {:.2} over {} trades", self.win_rate(), p.bad_win_rate, self.trades));
        }
        if spoofy {
            why.push(format!("{} spoof verdicts over {} trades", self.spoof_events, self.trades));
        }
        if black {
            why.push(format!("sum R {:.2} <= {:.2}", self.sum_r, p.blacklist_sum_r));
        }
        let reason = why.join("; ");
        let changed = size != self.size_multiplier || extra != self.extra_score || black != self.auto_blacklisted;
        self.size_multiplier = size;
        self.extra_score = extra;
        self.auto_blacklisted = black;
        self.reason = reason.clone();
        changed.then_some(ProfileChange { size_multiplier: size, extra_score: extra, auto_blacklisted: black, reason })
    }
}

/// The operator's overrides of one symbol (the `overrides` object of its profile file), on top of
/// the configuration and of what the profile learnt. Each only ever restricts trading, except
/// `book_depth`: the leverage and notional caps lower the category's, the size multiplier lowers
/// the profile's, the extra score adds to it, and `blacklisted` blocks new entries (the
/// operator's own blacklist is separate and untouched).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolOverride {
    /// Leverage cap, > 0; the lower of it and the category's (and the instrument's) applies.
    pub max_leverage: Option<f64>,
    /// Position notional cap, USDT, > 0; the lower of it and the category's applies.
    pub max_notional: Option<f64>,
    /// Book depth to subscribe, one of Bybit's linear depths (replaces the category's).
    pub book_depth: Option<u16>,
    /// Score points added to the watch/arm thresholds, >= 0, on top of the profile's.
    pub extra_score: Option<f64>,
    /// Size multiplier, (0, 1]; the lower of it and the profile's applies.
    pub size_multiplier: Option<f64>,
    /// No new entries on this symbol.
    pub blacklisted: Option<bool>,
}

impl SymbolOverride {
    /// Checks every value; the error names the key and the value.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |k: &str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(format!("overrides.{k} must be > 0, got {x}")),
            _ => Ok(()),
        };
        positive("max_leverage", self.max_leverage)?;
        positive("max_notional", self.max_notional)?;
        if let Some(m) = self.size_multiplier {
            if !(m > 0.0 && m <= 1.0) {
                return Err(format!("overrides.size_multiplier must be in (0, 1], got {m}"));
            }
        }
        if let Some(x) = self.extra_score {
            if !(x.is_finite() && x >= 0.0) {
                return Err(format!("overrides.extra_score must be >= 0, got {x}"));
            }
        }
        if let Some(d) = self.book_depth {
            if !crate::config::BYBIT_LINEAR_DEPTHS.contains(&d) {
                return Err(format!(
                    "overrides.book_depth must be one of {:?} (Bybit linear depths), got {d}",
                    crate::config::BYBIT_LINEAR_DEPTHS
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_statistics_cut_size_raise_score_and_blacklist_then_recover() {
        let p = ProfilePolicy::default();
        let mut prof = SymbolProfile::new(Symbol::new("BADUSDT"));
        for i in 0..9 {
            prof.on_trade(-10.0, -1.0, 0.001, 0.004, i);
            assert_eq!(prof.apply_policy(&p), None, "no adjustment before min_trades");
        }
        prof.on_trade(-10.0, -1.0, 0.001, 0.004, 10);
        let ch = prof.apply_policy(&p).expect("adjusted");
        assert_eq!(ch.size_multiplier, 0.5);
        assert_eq!(ch.extra_score, 10.0);
        assert!(ch.auto_blacklisted, "sum R -10 <= -6");
        assert!(ch.reason.contains("win rate"));
        // Winning streak: everything is reversed.
        for i in 0..20 {
            prof.on_trade(20.0, 1.0, 0.004, 0.001, 20 + i);
        }
        let ch = prof.apply_policy(&p).expect("recovered");
        assert_eq!((ch.size_multiplier, ch.extra_score, ch.auto_blacklisted), (1.0, 0.0, false));
        assert!((prof.win_rate() - 20.0 / 30.0).abs() < 1e-12);
    }
}
