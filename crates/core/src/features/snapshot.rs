//! [`FeatureSnapshot`]: every feature of one symbol, flat (`f64` fields and enums), serde.
//! Units are in the field names: `_pct` = percent (1.0 = 1 %), `_frac` or none = fraction,
//! `_ms` = event-time milliseconds, volumes in base units, notional in USDT.

use crate::domain::TimeMs;
use crate::features::news::NewsType;
use crate::features::pump::PumpState;
use serde::{Deserialize, Serialize};

/// Every feature of one symbol at `ts_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct FeatureSnapshot {
    /// Event time of the last update.
    pub ts_ms: TimeMs,
    /// True when the book was valid at the last update (book features are 0 otherwise).
    pub book_valid: bool,

    // --- book ---
    /// Mid price.
    pub mid: f64,
    /// Spread, basis points of the mid.
    pub spread_bps: f64,
    /// Microprice (touch-size-weighted mid).
    pub microprice: f64,
    /// Level-1 imbalance ∈ [-1, 1] (+ = bids heavier).
    pub imb_l1: f64,
    /// Depth imbalance within 0.1 % of the mid ∈ [-1, 1].
    pub imb_0_1: f64,
    /// Depth imbalance within 0.25 % ∈ [-1, 1].
    pub imb_0_25: f64,
    /// Depth imbalance within 0.5 % ∈ [-1, 1].
    pub imb_0_5: f64,
    /// Depth imbalance within 1 % ∈ [-1, 1].
    pub imb_1_0: f64,

    // --- walls & spoofing ---
    /// WallSupportScore ∈ [0, 1].
    pub wall_support: f64,
    /// WallResistanceScore ∈ [0, 1].
    pub wall_resistance: f64,
    /// SpoofingScore ∈ [0, 1] (decaying).
    pub spoofing_score: f64,
    /// Spoof score of the bid side ∈ [0, 1].
    pub spoof_bid_score: f64,
    /// Spoof score of the ask side ∈ [0, 1].
    pub spoof_ask_score: f64,
    /// Active bid walls.
    pub bid_walls: u32,
    /// Active ask walls.
    pub ask_walls: u32,
    /// Nearest bid wall price (0 = none).
    pub bid_wall_price: f64,
    /// Nearest ask wall price (0 = none).
    pub ask_wall_price: f64,

    // --- pump ---
    /// Pump phase.
    pub pump_state: PumpState,
    /// When the phase began.
    pub pump_since_ms: TimeMs,
    /// End of the pump COOLDOWN (0 outside it).
    pub pump_cooldown_until_ms: TimeMs,
    /// Peak price of the pump phases (0 outside).
    pub pump_peak_price: f64,
    /// Reference price (last trade, else mid).
    pub price: f64,
    /// Return over 5 s, percent.
    pub ret_5s_pct: f64,
    /// Return over 30 s, percent.
    pub ret_30s_pct: f64,
    /// Return over 60 s, percent.
    pub ret_60s_pct: f64,
    /// 5 s volume rate / baseline (1 = normal).
    pub volume_ratio: f64,
    /// 5 s trade rate / baseline (1 = normal).
    pub trade_rate_ratio: f64,
    /// Trades per second over 5 s.
    pub trades_per_s: f64,
    /// Ask notional within 0.5 % below its baseline, [0, 1].
    pub ask_thinning: f64,
    /// Bid notional within 0.5 % below its baseline, [0, 1].
    pub bid_thinning: f64,
    /// Liquidated-long notional / traded notional over 10 s, [0, 1].
    pub liq_long_share_10s: f64,
    /// Liquidated-short notional / traded notional over 10 s, [0, 1].
    pub liq_short_share_10s: f64,
    /// True once every baseline is warm: before that nothing derived from a baseline acts
    /// (ratios, z-scores, volatility score, regimes other than news, scores, entries).
    pub baseline_warm: bool,
    /// Seconds of live data still needed to be warm (0 when warm).
    pub warmup_left_s: u32,
    /// σ of a 60 s return from the long baseline, percent (0 while cold).
    pub sigma_60s_pct: f64,
    /// 30 s return in σ of the baseline (signed; 0 while cold).
    pub move_z_30s: f64,
    /// 60 s return in σ of the baseline (signed; 0 while cold).
    pub move_z_60s: f64,

    // --- flow ---
    /// Taker delta over 1 s, base units.
    pub delta_1s: f64,
    /// Taker delta over 5 s.
    pub delta_5s: f64,
    /// Taker delta over 30 s.
    pub delta_30s: f64,
    /// Delta ratio over 1 s ∈ [-1, 1].
    pub delta_ratio_1s: f64,
    /// Delta ratio over 5 s ∈ [-1, 1].
    pub delta_ratio_5s: f64,
    /// Delta ratio over 30 s ∈ [-1, 1].
    pub delta_ratio_30s: f64,
    /// Taker buy volume over 5 s.
    pub buy_vol_5s: f64,
    /// Taker sell volume over 5 s.
    pub sell_vol_5s: f64,
    /// Consecutive same-side trades (+ buys, − sells).
    pub trade_streak: i64,
    /// Consecutive seconds of same-sign delta (+ / −).
    pub delta_streak_s: i64,
    /// Bid defence ∈ [0, 1].
    pub bid_defence: f64,
    /// Ask defence ∈ [0, 1].
    pub ask_defence: f64,

    // --- volatility ---
    /// ATR on 1 s candles, percent.
    pub atr_1s_pct: f64,
    /// ATR on 3 s candles, percent.
    pub atr_3s_pct: f64,
    /// Recent volatility / the symbol's long baseline: √(30 s-half-life variance of 5 s returns
    /// ÷ baseline variance); 1 = usual, 0 until the baseline is mature
    /// (`intel.baseline.mature_s` of history, or seeded / restored).
    pub volatility_ratio: f64,
    /// VolatilityScore ∈ [0, 1].
    pub volatility_score: f64,
    /// ExplosionFlag.
    pub explosion: bool,

    // --- fees & leverage ---
    /// MinMoveForProfit of a long, fraction of price.
    pub min_move_long: f64,
    /// MinMoveForProfit of a short, fraction of price.
    pub min_move_short: f64,
    /// Slippage of a taker buy of the configured notional, fraction.
    pub slippage_buy: f64,
    /// Slippage of a taker sell, fraction.
    pub slippage_sell: f64,
    /// True when the visible book could not fill the notional on a side.
    pub book_thin: bool,
    /// Liquidation distance `1/leverage − MMR`, fraction.
    pub liq_distance: f64,
    /// Expected stop distance, fraction.
    pub stop_distance: f64,
    /// LiqSafetyScore ∈ [0, 1].
    pub liq_safety: f64,

    // --- news ---
    /// NewsImpactScore ∈ [0, 1] (0 without an active flag).
    pub news_impact: f64,
    /// NewsType of the strongest active flag.
    pub news_type: Option<NewsType>,
    /// NewsTime (0 = none).
    pub news_time_ms: TimeMs,
    /// Expiry of the flag (0 = none).
    pub news_expires_ms: TimeMs,
}
