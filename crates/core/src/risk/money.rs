//! Exact money arithmetic on fixed-point prices and quantities.
//!
//! Amounts of USDT are [`Money`] (8 decimals, like every [`Fixed`]). A product `qty × price` is
//! carried exactly as an `i128` in units of 10^-16 USDT and rounded once, in a stated direction,
//! when it becomes money. Fees are always rounded up (a rebate towards zero), so a plan never
//! under-estimates cost. Fractions such as fee rates are [`Rate`]s, exact to 10^-8.

use crate::domain::{Fixed, Price, Qty, Side, SCALE};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of USDT, exact to 10^-8.
pub type Money = Fixed;

/// 10^8 as `i128`.
pub const S: i128 = SCALE as i128;
/// 10^16 as `i128` (a raw `qty × price` product is in 10^-16 USDT).
pub const S2: i128 = S * S;

/// A fraction (fee rate, risk per trade, slippage) exact to 10^-8: `0.00055` is 55 000 raw.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(pub Fixed);

impl Rate {
    pub const ZERO: Rate = Rate(Fixed::ZERO);
    /// From raw 10^-8 units.
    pub const fn from_raw(raw: i64) -> Rate {
        Rate(Fixed::from_raw(raw))
    }
    /// Nearest rate to a fraction given as `f64` (configuration values).
    pub fn from_f64(v: f64) -> Rate {
        if v.is_finite() {
            Rate(Fixed::from_f64(v))
        } else {
            Rate::ZERO
        }
    }
    /// Raw 10^-8 units.
    pub const fn raw(self) -> i64 {
        self.0.raw()
    }
    /// Lossy `f64` view.
    pub fn to_f64(self) -> f64 {
        self.0.to_f64()
    }
    /// Sum of two rates (saturating).
    pub fn plus(self, o: Rate) -> Rate {
        Rate::from_raw(self.raw().saturating_add(o.raw()))
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Maker and taker fee rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRates {
    /// Maker rate (may be negative: rebate).
    pub maker: Rate,
    pub taker: Rate,
}

impl FeeRates {
    /// From the configuration's fee fractions.
    pub fn from_config(f: &crate::config::Fees) -> FeeRates {
        FeeRates { maker: Rate::from_f64(f.maker), taker: Rate::from_f64(f.taker) }
    }
    /// Rate for a liquidity flag.
    pub fn rate(&self, maker: bool) -> Rate {
        if maker {
            self.maker
        } else {
            self.taker
        }
    }
}

/// `a / b` rounded towards −∞ (`b > 0`).
#[inline]
pub fn div_floor(a: i128, b: i128) -> i128 {
    a.div_euclid(b)
}

/// `a / b` rounded towards +∞ (`b > 0`).
#[inline]
pub fn div_ceil(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

/// `a × b / c` truncated towards zero (`c > 0`), without overflowing: when `a × b` does not fit
/// an `i128` it is computed as `(a / c) × b` (saturating), which loses only sub-unit precision
/// at magnitudes no real order reaches.
#[inline]
pub fn mul_div(a: i128, b: i128, c: i128) -> i128 {
    match a.checked_mul(b) {
        Some(x) => x / c,
        None => (a / c).saturating_mul(b),
    }
}

/// Clamps an `i128` into `i64`.
#[inline]
pub fn clamp_i64(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Exact `qty × price` in 10^-16 USDT.
#[inline]
pub fn notional_raw(q: Qty, p: Price) -> i128 {
    q.raw() as i128 * p.raw() as i128
}

/// Money from a 10^-16 amount, rounded down.
#[inline]
pub fn money_floor(raw16: i128) -> Money {
    Money::from_raw(clamp_i64(div_floor(raw16, S)))
}

/// Money from a 10^-16 amount, rounded up.
#[inline]
pub fn money_ceil(raw16: i128) -> Money {
    Money::from_raw(clamp_i64(div_ceil(raw16, S)))
}

/// `qty × price` rounded down to 10^-8 USDT.
pub fn notional_floor(q: Qty, p: Price) -> Money {
    money_floor(notional_raw(q, p))
}

/// `qty × price` rounded up to 10^-8 USDT.
pub fn notional_ceil(q: Qty, p: Price) -> Money {
    money_ceil(notional_raw(q, p))
}

/// Fee of a fill: `qty × price × rate`, rounded up to 10^-8 USDT (a rebate is rounded towards
/// zero). This is the one fee formula used by sizing, the SIM venue and the portfolio.
pub fn fee(q: Qty, p: Price, rate: Rate) -> Money {
    let v = notional_raw(q, p).saturating_mul(rate.raw() as i128); // 10^-24
    Money::from_raw(clamp_i64(div_ceil(v, S2)))
}

/// `amount × rate` rounded down (e.g. the risk budget `equity × risk_per_trade`).
pub fn money_times_rate_floor(m: Money, r: Rate) -> Money {
    Money::from_raw(clamp_i64(div_floor(m.raw() as i128 * r.raw() as i128, S)))
}

/// `price × rate` rounded up to 10^-8 (a price offset such as slippage).
pub fn price_times_rate_ceil(p: Price, r: Rate) -> Price {
    Price::from_raw(clamp_i64(div_ceil(p.raw() as i128 * r.raw() as i128, S)))
}

/// Cash flow of a fill in 10^-16 USDT, before fees: a buy pays `qty × price`, a sell receives it.
pub fn cash_flow_raw(side: Side, q: Qty, p: Price) -> i128 {
    -(side.sign() as i128) * notional_raw(q, p)
}

/// Sum of two money amounts (saturating).
pub fn add(a: Money, b: Money) -> Money {
    Money::from_raw(a.raw().saturating_add(b.raw()))
}

/// Difference of two money amounts (saturating).
pub fn sub(a: Money, b: Money) -> Money {
    Money::from_raw(a.raw().saturating_sub(b.raw()))
}

/// `num / den` as an `f64` ratio (0 when `den <= 0`): heat, drawdown and loss fractions.
pub fn ratio(num: Money, den: Money) -> f64 {
    if den.raw() <= 0 {
        return 0.0;
    }
    num.raw() as f64 / den.raw() as f64
}

/// True when `num / den > rate`, compared exactly (`den > 0`; false otherwise).
pub fn exceeds_rate(num: Money, den: Money, rate: Rate) -> bool {
    if den.raw() <= 0 {
        return num.raw() > 0;
    }
    num.raw() as i128 * S > rate.raw() as i128 * den.raw() as i128
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{m, p, q};

    #[test]
    fn rates_from_config_are_exact() {
        assert_eq!(Rate::from_f64(0.00055).raw(), 55_000);
        assert_eq!(Rate::from_f64(0.0002).raw(), 20_000);
        assert_eq!(Rate::from_f64(-0.0001).raw(), -10_000);
        assert_eq!(Rate::from_f64(f64::NAN), Rate::ZERO);
    }

    #[test]
    fn notional_and_fee_rounding() {
        // 0.003 × 26000.5 = 78.0015 exactly.
        assert_eq!(notional_floor(q("0.003"), p("26000.5")), m("78.0015"));
        // 0.00000001 × 0.00000003 is below 10^-8: floor 0, ceil 1 unit.
        assert_eq!(notional_floor(q("0.00000001"), p("0.00000003")), Money::ZERO);
        assert_eq!(notional_ceil(q("0.00000001"), p("0.00000003")), Money::from_raw(1));
        // 78.0015 × 0.00055 = 0.042900825 → rounded up to 0.04290083.
        assert_eq!(fee(q("0.003"), p("26000.5"), Rate::from_f64(0.00055)), m("0.04290083"));
        // Rebates are exact here or rounded towards zero.
        assert_eq!(fee(q("0.003"), p("26000.5"), Rate::from_f64(-0.0001)), m("-0.00780015"));
        assert_eq!(fee(q("0.001"), p("26000.5"), Rate::from_f64(-0.0001)), m("-0.00260005"));
        assert_eq!(fee(q("0.001"), p("1.23456789"), Rate::from_f64(-0.0001)), Money::from_raw(-12));
    }

    #[test]
    fn exact_rate_comparison() {
        assert!(!exceeds_rate(m("3"), m("100"), Rate::from_f64(0.03)));
        assert!(exceeds_rate(m("3.00000001"), m("100"), Rate::from_f64(0.03)));
        assert_eq!(money_times_rate_floor(m("10000"), Rate::from_f64(0.005)), m("50"));
        assert_eq!(price_times_rate_ceil(p("100"), Rate::from_f64(0.0002)), p("0.02"));
        assert_eq!(cash_flow_raw(Side::Buy, q("2"), p("3")), -6 * S2);
        assert_eq!(mul_div(10, 3, 4), 7);
        assert_eq!(mul_div(i128::MAX / 2, 4, 2), i128::MAX - 3);
        // Extreme inputs never panic.
        let big = Qty::from_raw(i64::MAX);
        assert!(fee(big, Price::from_raw(i64::MAX), Rate::from_f64(0.01)).raw() > 0);
    }
}
