//! FinalScalpScoreLong / FinalScalpScoreShort ∈ [0, 100] with every term's contribution.
//!
//! For a direction `d` (+1 long, −1 short) the score is `clamp(50 + Σ terms, 0, 100)`:
//!
//! | term | points | formula |
//! |---|---|---|
//! | book | ±(`w_book` + `w_walls`) | `w_book · d · (0.4·imb_l1 + 0.3·imb_0_25 + 0.3·imb_0_5) + w_walls · d · (support − resistance)` |
//! | flow | ±`w_flow` (+`w_defence`) | `w_flow · d · (0.2·dr_1s + 0.5·dr_5s + 0.3·dr_30s) + w_defence · defence_d` (bid defence for longs, ask for shorts) |
//! | volatility | [−`w_vol`, +`w_vol`] | `w_vol · min(1, ratio) − 2·w_vol · clamp01((ratio − 2) / (explosion_ratio − 2))` |
//! | fee hurdle | [−`w_fee_penalty`, +`w_fee`] | `edge = expected move / MinMoveForProfit_d`, expected move = ATR(3 s) %; `clamp(w_fee · (edge − 1), −w_fee_penalty, w_fee)` |
//! | leverage | [−`w_liq`, 0] | `−w_liq · (1 − LiqSafetyScore)` |
//! | pump | ≤ 0 | longs: PUMPING −`pump_long_penalty`, BLOWOFF −`blowoff_long_penalty`, DUMP −`pump_long_penalty`; shorts: BLOWOFF −`blowoff_short_penalty` (do not fade a climax), DUMP −`dump_short_penalty` (late) |
//! | spoof | ≤ 0 | `−w_spoof · SpoofingScore − w_spoof_side · spoof_side` (spoofed bids hurt longs, spoofed asks shorts); `SpoofingScore >= spoof_block` blocks both |
//! | news | | news mode (`NewsImpactScore >= news_mode_threshold`): book and wall terms × `news_book_factor`, flow × `news_flow_factor`, volatility penalty dropped, `−w_news_uncertainty · impact` |
//!
//! MANIPULATED disables both directions (score 0, mode `DISABLED`); a spoof block does too.

use crate::features::pump::PumpState;
use crate::features::FeatureSnapshot;
use crate::regime::symbol::RegimeState;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use crate::features::math::{clamp, clamp01};

/// Scoring weights and corrections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Book imbalance weight, points.
    pub w_book: f64,
    /// Wall support/resistance weight, points.
    pub w_walls: f64,
    /// Flow weight, points.
    pub w_flow: f64,
    /// Defence weight, points.
    pub w_defence: f64,
    /// Volatility weight, points.
    pub w_vol: f64,
    /// Fee-hurdle bonus cap, points.
    pub w_fee: f64,
    /// Fee-hurdle penalty cap, points.
    pub w_fee_penalty: f64,
    /// Leverage-safety weight, points.
    pub w_liq: f64,
    /// Explosion ratio used by the volatility term (matches `volatility.explosion_ratio`). > 2.
    pub explosion_ratio: f64,
    /// Long penalty in PUMPING (and DUMP), points.
    pub pump_long_penalty: f64,
    /// Long penalty in BLOWOFF, points.
    pub blowoff_long_penalty: f64,
    /// Short penalty in BLOWOFF, points.
    pub blowoff_short_penalty: f64,
    /// Short penalty in DUMP, points.
    pub dump_short_penalty: f64,
    /// SpoofingScore weight, points.
    pub w_spoof: f64,
    /// Side spoof score weight, points.
    pub w_spoof_side: f64,
    /// SpoofingScore at which both directions are blocked.
    pub spoof_block: f64,
    /// NewsImpactScore at which news mode starts.
    pub news_mode_threshold: f64,
    /// Book/wall factor in news mode.
    pub news_book_factor: f64,
    /// Flow factor in news mode.
    pub news_flow_factor: f64,
    /// News uncertainty penalty per unit of impact, points.
    pub w_news_uncertainty: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            w_book: 12.0,
            w_walls: 8.0,
            w_flow: 15.0,
            w_defence: 5.0,
            w_vol: 10.0,
            w_fee: 10.0,
            w_fee_penalty: 25.0,
            w_liq: 15.0,
            explosion_ratio: 3.0,
            pump_long_penalty: 20.0,
            blowoff_long_penalty: 35.0,
            blowoff_short_penalty: 15.0,
            dump_short_penalty: 15.0,
            w_spoof: 20.0,
            w_spoof_side: 10.0,
            spoof_block: 0.8,
            news_mode_threshold: 0.5,
            news_book_factor: 0.5,
            news_flow_factor: 1.5,
            w_news_uncertainty: 10.0,
        }
    }
}

impl ScoreConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        let nonneg = [
            ("w_book", self.w_book),
            ("w_walls", self.w_walls),
            ("w_flow", self.w_flow),
            ("w_defence", self.w_defence),
            ("w_vol", self.w_vol),
            ("w_fee", self.w_fee),
            ("w_fee_penalty", self.w_fee_penalty),
            ("w_liq", self.w_liq),
            ("pump_long_penalty", self.pump_long_penalty),
            ("blowoff_long_penalty", self.blowoff_long_penalty),
            ("blowoff_short_penalty", self.blowoff_short_penalty),
            ("dump_short_penalty", self.dump_short_penalty),
            ("w_spoof", self.w_spoof),
            ("w_spoof_side", self.w_spoof_side),
            ("news_book_factor", self.news_book_factor),
            ("news_flow_factor", self.news_flow_factor),
            ("w_news_uncertainty", self.w_news_uncertainty),
        ];
        for (n, v) in nonneg {
            if !(v.is_finite() && v >= 0.0) {
                e.push(format!("{prefix}.{n} must be >= 0, got {v}"));
            }
        }
        if !(self.explosion_ratio.is_finite() && self.explosion_ratio > 2.0) {
            e.push(format!("{prefix}.explosion_ratio must be > 2, got {}", self.explosion_ratio));
        }
        for (n, v) in [("spoof_block", self.spoof_block), ("news_mode_threshold", self.news_mode_threshold)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                e.push(format!("{prefix}.{n} must be in (0, 1], got {v}"));
            }
        }
    }
}

/// How the score was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScoreMode {
    /// Normal weights.
    #[default]
    Normal,
    /// News weights.
    News,
    /// Both directions disabled (MANIPULATED or spoof block).
    Disabled,
}

/// Contribution of each term to one direction's score, in points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreTerms {
    /// Neutral base (50).
    pub base: f64,
    /// Book imbalance and walls.
    pub book: f64,
    /// Flow, delta and defence.
    pub flow: f64,
    pub volatility: f64,
    /// Fee hurdle versus the expected move.
    pub fee_hurdle: f64,
    /// Leverage safety.
    pub leverage: f64,
    /// Pump-phase correction.
    pub pump: f64,
    /// Spoofing correction.
    pub spoof: f64,
    /// News uncertainty correction.
    pub news: f64,
    /// Final score ∈ [0, 100] (`clamp(Σ)`, or 0 when disabled).
    pub total: f64,
}

/// Scores of both directions with their explanations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScalpScore {
    /// FinalScalpScoreLong ∈ [0, 100].
    pub long: f64,
    /// FinalScalpScoreShort ∈ [0, 100].
    pub short: f64,
    pub mode: ScoreMode,
    /// Why disabled (empty otherwise).
    pub blocked: Cow<'static, str>,
    pub long_terms: ScoreTerms,
    pub short_terms: ScoreTerms,
}

fn direction(f: &FeatureSnapshot, c: &ScoreConfig, long: bool, news: bool) -> ScoreTerms {
    let d = if long { 1.0 } else { -1.0 };
    let (bf, ff) = if news { (c.news_book_factor, c.news_flow_factor) } else { (1.0, 1.0) };
    let book_dir = 0.4 * f.imb_l1 + 0.3 * f.imb_0_25 + 0.3 * f.imb_0_5;
    let walls_dir = f.wall_support - f.wall_resistance;
    let book = bf * (c.w_book * d * book_dir + c.w_walls * d * walls_dir);
    let flow_dir = 0.2 * f.delta_ratio_1s + 0.5 * f.delta_ratio_5s + 0.3 * f.delta_ratio_30s;
    let defence = if long { f.bid_defence } else { f.ask_defence };
    let flow = ff * (c.w_flow * d * flow_dir + c.w_defence * defence);
    let r = f.volatility_ratio.max(0.0);
    let vol_penalty = 2.0 * c.w_vol * clamp01((r - 2.0) / (c.explosion_ratio - 2.0));
    let volatility = c.w_vol * r.min(1.0) - if news { 0.0 } else { vol_penalty };
    let min_move = if long { f.min_move_long } else { f.min_move_short };
    let edge = if min_move > 0.0 { (f.atr_3s_pct / 100.0) / min_move } else { 0.0 };
    let fee_hurdle = clamp(c.w_fee * (edge - 1.0), -c.w_fee_penalty, c.w_fee);
    let leverage = -c.w_liq * (1.0 - clamp01(f.liq_safety));
    let pump = match (f.pump_state, long) {
        (PumpState::Pumping, true) | (PumpState::Dump, true) => -c.pump_long_penalty,
        (PumpState::Blowoff, true) => -c.blowoff_long_penalty,
        (PumpState::Blowoff, false) => -c.blowoff_short_penalty,
        (PumpState::Dump, false) => -c.dump_short_penalty,
        _ => 0.0,
    };
    let side_spoof = if long { f.spoof_bid_score } else { f.spoof_ask_score };
    let spoof = -c.w_spoof * clamp01(f.spoofing_score) - c.w_spoof_side * clamp01(side_spoof);
    let news_term = if news { -c.w_news_uncertainty * clamp01(f.news_impact) } else { 0.0 };
    let base = 50.0;
    let sum = base + book + flow + volatility + fee_hurdle + leverage + pump + spoof + news_term;
    // `+ 0.0` turns a negative zero into zero (cleaner JSON).
    ScoreTerms {
        base,
        book: book + 0.0,
        flow: flow + 0.0,
        volatility: volatility + 0.0,
        fee_hurdle: fee_hurdle + 0.0,
        leverage: leverage + 0.0,
        pump: pump + 0.0,
        spoof: spoof + 0.0,
        news: news_term + 0.0,
        total: clamp(sum, 0.0, 100.0),
    }
}

/// Scores both directions from a feature snapshot and the symbol's regime. Pure, O(1).
pub fn score(f: &FeatureSnapshot, regime: RegimeState, c: &ScoreConfig) -> ScalpScore {
    let news = f.news_impact >= c.news_mode_threshold;
    let mut long_terms = direction(f, c, true, news);
    let mut short_terms = direction(f, c, false, news);
    let blocked = if regime == RegimeState::Manipulated {
        "regime MANIPULATED"
    } else if f.spoofing_score >= c.spoof_block {
        "spoofing score above block level"
    } else {
        ""
    };
    let mode = if !blocked.is_empty() {
        long_terms.total = 0.0;
        short_terms.total = 0.0;
        ScoreMode::Disabled
    } else if news {
        ScoreMode::News
    } else {
        ScoreMode::Normal
    };
    ScalpScore {
        long: long_terms.total,
        short: short_terms.total,
        mode,
        blocked: Cow::Borrowed(blocked),
        long_terms,
        short_terms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean long set-up: bids heavy, buyers in control, normal volatility, cheap to trade.
    fn bullish() -> FeatureSnapshot {
        FeatureSnapshot {
            imb_l1: 0.6,
            imb_0_25: 0.5,
            imb_0_5: 0.4,
            wall_support: 0.5,
            delta_ratio_1s: 0.5,
            delta_ratio_5s: 0.6,
            delta_ratio_30s: 0.3,
            volatility_ratio: 1.0,
            atr_3s_pct: 0.2,
            min_move_long: 0.001,
            min_move_short: 0.001,
            liq_safety: 1.0,
            ..FeatureSnapshot::default()
        }
    }

    #[test]
    fn terms_add_up_and_are_directional() {
        let c = ScoreConfig::default();
        let s = score(&bullish(), RegimeState::Normal, &c);
        assert_eq!(s.mode, ScoreMode::Normal);
        let t = s.long_terms;
        let sum = t.base + t.book + t.flow + t.volatility + t.fee_hurdle + t.leverage + t.pump + t.spoof + t.news;
        assert!((t.total - sum.clamp(0.0, 100.0)).abs() < 1e-9);
        // book: 12 × (0.24 + 0.15 + 0.12) + 8 × 0.5 = 6.12 + 4 = 10.12.
        assert!((t.book - 10.12).abs() < 1e-9, "{t:?}");
        // flow: 15 × (0.1 + 0.3 + 0.09) = 7.35.
        assert!((t.flow - 7.35).abs() < 1e-9);
        assert!((t.volatility - 10.0).abs() < 1e-9);
        // edge = 0.002 / 0.001 = 2 → +10.
        assert!((t.fee_hurdle - 10.0).abs() < 1e-9);
        assert!(s.long > 80.0 && s.short < s.long - 30.0, "{s:?}");
        assert!((s.short_terms.book + t.book).abs() < 1e-9, "book term mirrors");
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["long_terms"]["flow"].is_number());
    }

    #[test]
    fn penalties() {
        let c = ScoreConfig::default();
        let base = score(&bullish(), RegimeState::Normal, &c);
        // PUMPING penalises longs only; BLOWOFF more.
        let mut f = bullish();
        f.pump_state = PumpState::Pumping;
        let p = score(&f, RegimeState::Pump, &c);
        assert!((base.long - p.long - 20.0).abs() < 1e-9 || p.long == 0.0);
        assert_eq!(p.short, base.short);
        f.pump_state = PumpState::Blowoff;
        let b = score(&f, RegimeState::Pump, &c);
        assert!((base.long - b.long - 35.0).abs() < 1e-9, "{} {}", base.long, b.long);
        // Spoofing: partial penalty, then block.
        let mut f = bullish();
        f.spoofing_score = 0.5;
        f.spoof_bid_score = 0.5;
        let sp = score(&f, RegimeState::Normal, &c);
        assert!((base.long - sp.long - (10.0 + 5.0)).abs() < 1e-9);
        assert!((base.short - sp.short - 10.0).abs() < 1e-9);
        f.spoofing_score = 0.85;
        let blk = score(&f, RegimeState::Normal, &c);
        assert_eq!((blk.long, blk.short, blk.mode), (0.0, 0.0, ScoreMode::Disabled));
        // MANIPULATED disables.
        let m = score(&bullish(), RegimeState::Manipulated, &c);
        assert_eq!((m.long, m.short, m.mode), (0.0, 0.0, ScoreMode::Disabled));
        assert_eq!(m.blocked, "regime MANIPULATED");
        // Fee hurdle: expected move below the minimum move costs points.
        let mut f = bullish();
        f.atr_3s_pct = 0.02; // 0.0002 vs 0.001 → edge 0.2 → −8
        let fee = score(&f, RegimeState::Normal, &c);
        assert!((fee.long_terms.fee_hurdle + 8.0).abs() < 1e-9);
        // Unsafe leverage.
        let mut f = bullish();
        f.liq_safety = 0.2;
        assert!((score(&f, RegimeState::Normal, &c).long_terms.leverage + 12.0).abs() < 1e-9);
        // Explosion: penalty.
        let mut f = bullish();
        f.volatility_ratio = 3.0;
        assert!((score(&f, RegimeState::Normal, &c).long_terms.volatility + 10.0).abs() < 1e-9);
        // News mode: book halved, flow × 1.5, volatility penalty dropped, uncertainty penalty.
        f.news_impact = 0.8;
        let n = score(&f, RegimeState::NewsDriven, &c);
        assert_eq!(n.mode, ScoreMode::News);
        assert!((n.long_terms.book - base.long_terms.book * 0.5).abs() < 1e-9);
        assert!((n.long_terms.flow - base.long_terms.flow * 1.5).abs() < 1e-9);
        assert!((n.long_terms.volatility - 10.0).abs() < 1e-9);
        assert!((n.long_terms.news + 8.0).abs() < 1e-9);
    }
}
