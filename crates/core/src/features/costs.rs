//! Fee hurdle and leverage safety.
//!
//! **MinMoveForProfit** (fraction of price, per direction) is the favourable mid-price move a
//! round trip needs to break even:
//!
//! ```text
//! min_move = fee(entry) + fee(exit) + slip(entry) + slip(exit) + latency_price_buffer_pct / 100
//! ```
//!
//! * `fee(leg)` is the maker or taker fee (fraction of notional) for how that leg is expected to
//!   execute ([`CostConfig::entry`], [`CostConfig::exit`]; default maker entry, taker exit).
//! * `slip(leg)` is 0 for a maker leg (conservative: the half-spread a maker earns is ignored)
//!   and, for a taker leg, `|vwap − mid| / mid` from walking the current book for
//!   [`CostConfig::slippage_notional_usdt`] of notional (a long enters by taking asks and exits by
//!   hitting bids; a short the reverse). When the visible book cannot fill the notional, the
//!   rest is priced at the worst visible level and the walk is flagged incomplete.
//! * The latency buffer (configured in percent) is applied once per round trip.
//!
//! **Liquidation price** (Bybit linear USDT perpetual, isolated margin, no extra margin, risk
//! tier with zero maintenance-margin deduction; fees to close ignored):
//!
//! ```text
//! long:  LP = entry × (1 − 1/leverage + MMR)
//! short: LP = entry × (1 + 1/leverage − MMR)
//! ```
//!
//! which is `entry ∓ (IM − MM) / size` with `IM = entry·size/leverage`, `MM = entry·size·MMR`.
//! MMR is the tier-1 maintenance margin rate: 0.5 % for Prime symbols (BTCUSDT/ETHUSDT tier 1)
//! and 1 % for others by default ([`CostConfig`]), conservative for most of Bybit's tier-1 rates.
//! The liquidation distance is therefore `1/leverage − MMR` (fraction of entry).
//!
//! **LiqSafetyScore** ∈ [0, 1] compares the expected stop distance with the liquidation
//! distance: `clamp01((1 − stop / liq) / (1 − liq_safe_fraction))` — 1 while the stop is at most
//! `liq_safe_fraction` of the way to liquidation, falling linearly to 0 when the stop is at or
//! beyond the liquidation price. The expected stop distance is
//! `max(stop_min_pct, stop_atr_mult × ATR(3 s) %) / 100`.

use crate::domain::{Category, Side};
use crate::features::math::clamp01;
use crate::market::orderbook::OrderBook;
use serde::{Deserialize, Serialize};

/// How a leg is expected to execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liquidity {
    /// Resting limit order (maker fee, no slippage).
    Maker,
    /// Crossing order (taker fee, walks the book).
    Taker,
}

/// Fee-hurdle and leverage-safety settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// Notional walked through the book for slippage, USDT. > 0.
    pub slippage_notional_usdt: f64,
    /// Expected execution of the entry leg.
    pub entry: Liquidity,
    /// Expected execution of the exit leg.
    pub exit: Liquidity,
    /// Maintenance margin rate for Prime symbols (fraction).
    pub mmr_prime: f64,
    /// Maintenance margin rate for Normal symbols (fraction).
    pub mmr_normal: f64,
    /// Maintenance margin rate for Wild symbols (fraction).
    pub mmr_wild: f64,
    /// Expected stop distance = this × ATR(3 s) … (>= 0)
    pub stop_atr_mult: f64,
    /// … but at least this percent of price. > 0.
    pub stop_min_pct: f64,
    /// Stop at or inside this fraction of the liquidation distance scores 1. [0, 1).
    pub liq_safe_fraction: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            slippage_notional_usdt: 1_000.0,
            entry: Liquidity::Maker,
            exit: Liquidity::Taker,
            mmr_prime: 0.005,
            mmr_normal: 0.01,
            mmr_wild: 0.01,
            stop_atr_mult: 3.0,
            stop_min_pct: 0.15,
            liq_safe_fraction: 0.5,
        }
    }
}

impl CostConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if !(self.slippage_notional_usdt.is_finite() && self.slippage_notional_usdt > 0.0) {
            e.push(format!("{prefix}.slippage_notional_usdt must be > 0, got {}", self.slippage_notional_usdt));
        }
        for (n, v) in [("mmr_prime", self.mmr_prime), ("mmr_normal", self.mmr_normal), ("mmr_wild", self.mmr_wild)] {
            if !(v.is_finite() && (0.0..0.5).contains(&v)) {
                e.push(format!("{prefix}.{n} must be in [0, 0.5), got {v}"));
            }
        }
        if !(self.stop_atr_mult.is_finite() && self.stop_atr_mult >= 0.0) {
            e.push(format!("{prefix}.stop_atr_mult must be >= 0, got {}", self.stop_atr_mult));
        }
        if !(self.stop_min_pct.is_finite() && self.stop_min_pct > 0.0) {
            e.push(format!("{prefix}.stop_min_pct must be > 0, got {}", self.stop_min_pct));
        }
        if !(self.liq_safe_fraction.is_finite() && (0.0..1.0).contains(&self.liq_safe_fraction)) {
            e.push(format!("{prefix}.liq_safe_fraction must be in [0, 1), got {}", self.liq_safe_fraction));
        }
    }

    /// Maintenance margin rate of a category.
    pub fn mmr(&self, c: Category) -> f64 {
        match c {
            Category::Prime => self.mmr_prime,
            Category::Normal => self.mmr_normal,
            Category::Wild => self.mmr_wild,
        }
    }
}

/// Per-symbol cost inputs, resolved from the configuration and the symbol's category.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostParams {
    /// Maker fee, fraction of notional.
    pub maker_fee: f64,
    /// Taker fee, fraction of notional.
    pub taker_fee: f64,
    /// Latency buffer, fraction of price (config percent / 100).
    pub latency_buffer: f64,
    /// Leverage used.
    pub leverage: f64,
    /// Maintenance margin rate.
    pub mmr: f64,
    /// Notional walked for slippage, USDT.
    pub notional: f64,
    /// Entry execution.
    pub entry: Liquidity,
    /// Exit execution.
    pub exit: Liquidity,
}

impl CostParams {
    fn fee(&self, l: Liquidity) -> f64 {
        match l {
            Liquidity::Maker => self.maker_fee,
            Liquidity::Taker => self.taker_fee,
        }
    }
}

/// Result of walking one side of the book with a taker order.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Walk {
    /// Average fill price.
    pub vwap: f64,
    /// `|vwap − mid| / mid` (fraction, includes the half-spread).
    pub slippage: f64,
    /// False when the visible book could not fill the notional.
    pub complete: bool,
}

/// Walks the book with a taker order of `notional` USDT: `Buy` takes asks, `Sell` hits bids.
/// `None` when the book has no mid or the notional is not positive. Cost O(levels walked).
pub fn walk_book(book: &OrderBook, taker: Side, notional: f64) -> Option<Walk> {
    let mid = book.mid_f64()?;
    if notional.is_nan() || notional <= 0.0 || mid <= 0.0 {
        return None;
    }
    let side = taker.opposite();
    let (mut rem, mut qty, mut cost, mut worst) = (notional, 0.0f64, 0.0f64, mid);
    for l in book.top_n(side, usize::MAX) {
        let (p, q) = (l.price.to_f64(), l.qty.to_f64());
        worst = p;
        let take = (rem / p).min(q);
        qty += take;
        cost += take * p;
        rem -= take * p;
        if rem <= notional * 1e-12 {
            break;
        }
    }
    let complete = rem <= notional * 1e-12;
    if !complete {
        qty += rem / worst;
        cost += rem;
    }
    let vwap = if qty > 0.0 { cost / qty } else { mid };
    Some(Walk { vwap, slippage: ((vwap - mid) / mid).abs(), complete })
}

/// MinMoveForProfit (fraction of price) for a direction (`Buy` = long, `Sell` = short) given
/// the walks of a taker buy (`buy`, through the asks) and a taker sell (`sell`, through the bids).
pub fn min_move_for_profit(dir: Side, p: &CostParams, buy: &Walk, sell: &Walk) -> f64 {
    let (enter_walk, exit_walk) = match dir {
        Side::Buy => (buy, sell),
        Side::Sell => (sell, buy),
    };
    let slip = |l: Liquidity, w: &Walk| if l == Liquidity::Taker { w.slippage } else { 0.0 };
    p.fee(p.entry) + p.fee(p.exit) + slip(p.entry, enter_walk) + slip(p.exit, exit_walk) + p.latency_buffer
}

/// Bybit isolated-margin liquidation price of a linear position (see the module docs).
pub fn liquidation_price(dir: Side, entry: f64, leverage: f64, mmr: f64) -> f64 {
    if leverage.is_nan() || leverage <= 0.0 {
        return 0.0;
    }
    match dir {
        Side::Buy => entry * (1.0 - 1.0 / leverage + mmr),
        Side::Sell => entry * (1.0 + 1.0 / leverage - mmr),
    }
}

/// Distance from entry to liquidation as a fraction of entry: `1/leverage − MMR` (same for both
/// directions; <= 0 means the position would be liquidated at once).
pub fn liquidation_distance(leverage: f64, mmr: f64) -> f64 {
    if leverage > 0.0 {
        1.0 / leverage - mmr
    } else {
        0.0
    }
}

/// LiqSafetyScore ∈ [0, 1] for a stop `stop_dist` and liquidation `liq_dist` away (fractions).
pub fn liq_safety_score(stop_dist: f64, liq_dist: f64, safe_fraction: f64) -> f64 {
    if liq_dist.is_nan() || liq_dist <= 0.0 || !stop_dist.is_finite() {
        return 0.0;
    }
    let span = (1.0 - safe_fraction).max(1e-9);
    clamp01((1.0 - stop_dist.max(0.0) / liq_dist) / span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::imbalance::tests::book_of;

    fn params() -> CostParams {
        CostParams {
            maker_fee: 0.0002,
            taker_fee: 0.00055,
            latency_buffer: 0.0002,
            leverage: 10.0,
            mmr: 0.005,
            notional: 2_500.0,
            entry: Liquidity::Maker,
            exit: Liquidity::Taker,
        }
    }

    #[test]
    fn liquidation_price_formula() {
        // Bybit's own example: long 1 BTC at 20 000 with 50x, MMR 0.5 % → 19 700.
        assert!((liquidation_price(Side::Buy, 20_000.0, 50.0, 0.005) - 19_700.0).abs() < 1e-6);
        // Short mirror: 20 000 × (1 + 0.02 − 0.005) = 20 300.
        assert!((liquidation_price(Side::Sell, 20_000.0, 50.0, 0.005) - 20_300.0).abs() < 1e-6);
        assert!((liquidation_price(Side::Buy, 100.0, 10.0, 0.01) - 91.0).abs() < 1e-9);
        assert!((liquidation_distance(10.0, 0.01) - 0.09).abs() < 1e-12);
        assert_eq!(liquidation_price(Side::Buy, 100.0, 0.0, 0.01), 0.0);
    }

    #[test]
    fn liq_safety() {
        // Liquidation 9 % away; stop 3 % → 1/3 of the way (inside 50 %) → 1.
        assert_eq!(liq_safety_score(0.03, 0.09, 0.5), 1.0);
        // Stop 6.75 % → 75 % of the way → (1 − 0.75) / 0.5 = 0.5.
        assert!((liq_safety_score(0.0675, 0.09, 0.5) - 0.5).abs() < 1e-12);
        assert_eq!(liq_safety_score(0.09, 0.09, 0.5), 0.0);
        assert_eq!(liq_safety_score(0.2, 0.09, 0.5), 0.0);
        assert_eq!(liq_safety_score(0.01, -0.01, 0.5), 0.0, "leverage so high that it liquidates at once");
    }

    #[test]
    fn min_move_on_a_known_book() {
        // mid 100; asks 100.1 × 10 (1001 USDT), 100.2 × 20; bids 99.9 × 5 (499.5 USDT), 99.8 × 50.
        let b = book_of("0.1", &[("99.9", "5"), ("99.8", "50")], &[("100.1", "10"), ("100.2", "20")]);
        let p = params();
        let buy = walk_book(&b, Side::Buy, p.notional).unwrap();
        let sell = walk_book(&b, Side::Sell, p.notional).unwrap();
        // Buy 2 500 USDT: 10 @ 100.1 (1 001) + 1 499 / 100.2 @ 100.2.
        let q2 = 1_499.0 / 100.2;
        let vwap_buy = 2_500.0 / (10.0 + q2);
        assert!((buy.vwap - vwap_buy).abs() < 1e-9 && buy.complete);
        assert!((buy.slippage - (vwap_buy - 100.0) / 100.0).abs() < 1e-12);
        // Sell 2 500 USDT: 5 @ 99.9 (499.5) + 2 000.5 / 99.8 @ 99.8.
        let q2s = 2_000.5 / 99.8;
        let vwap_sell = 2_500.0 / (5.0 + q2s);
        assert!((sell.slippage - (100.0 - vwap_sell) / 100.0).abs() < 1e-12);
        // Long: maker entry (0.02 %) + taker exit (0.055 % + sell slippage) + 0.02 % latency.
        let long = min_move_for_profit(Side::Buy, &p, &buy, &sell);
        assert!((long - (0.0002 + 0.00055 + sell.slippage + 0.0002)).abs() < 1e-15);
        // Short exits by buying: buy slippage.
        let short = min_move_for_profit(Side::Sell, &p, &buy, &sell);
        assert!((short - (0.0002 + 0.00055 + buy.slippage + 0.0002)).abs() < 1e-15);
        // Taker both ways pays both slippages and two taker fees.
        let tt = CostParams { entry: Liquidity::Taker, ..p };
        let l2 = min_move_for_profit(Side::Buy, &tt, &buy, &sell);
        assert!((l2 - (0.0011 + buy.slippage + sell.slippage + 0.0002)).abs() < 1e-15);
        // Too thin: remainder at the worst level, flagged.
        let big = walk_book(&b, Side::Buy, 1e6).unwrap();
        assert!(!big.complete);
        assert!((big.vwap - 100.2).abs() < 0.01);
        assert!(walk_book(&b, Side::Buy, 0.0).is_none());
    }
}
