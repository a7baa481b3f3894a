//! The simulated instruments: Bybit-like tick sizes, quantity steps, leverage filters and launch
//! times, drawn from the seed so the same seed always lists the same universe.

use super::rng::{log_uniform, mix_seed};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper_core::domain::{Price, Qty, Symbol, SCALE};
use scalper_core::market::data::{Instrument, InstrumentStatus};

/// Static trading rules and market character of one symbol.
#[derive(Debug, Clone)]
pub(crate) struct InstrumentSpec {
    /// Symbol, e.g. `SIM001USDT`.
    pub name: String,
    /// Base coin, e.g. `SIM001`.
    pub base: String,
    /// Tick size in 10^-8 units.
    pub tick_raw: i64,
    /// Decimals used to print prices (`priceScale`).
    pub price_scale: u32,
    /// Quantity step in 10^-8 units.
    pub qty_step_raw: i64,
    /// Decimals used to print quantities.
    pub qty_decimals: u32,
    /// Maximum limit-order quantity, lots.
    pub max_qty_lots: i64,
    /// Maximum market-order quantity, lots.
    pub max_mkt_qty_lots: i64,
    /// Maximum leverage as Bybit prints it (`"100.00"`).
    pub max_leverage: &'static str,
    /// Launch time, ms since epoch.
    pub launch_time_ms: i64,
    /// Funding interval, minutes.
    pub funding_interval_min: i64,
    /// Starting mid price, ticks.
    pub start_price_ticks: i64,
    /// Expected trades per simulated second.
    pub trades_per_sec: f64,
    /// Typical resting size of one level, lots.
    pub level_lots: f64,
    /// Typical trade size, lots.
    pub trade_lots: f64,
    /// Annualised volatility.
    pub vol_annual: f64,
    /// Quoted spread in ticks (>= 1).
    pub spread_ticks: i64,
}

fn pow10(e: u32) -> i64 {
    10i64.pow(e)
}

/// Raw value of 10^k at 8 decimals (k in -8..=10).
fn raw_pow10(k: i32) -> i64 {
    pow10((8 + k) as u32)
}

impl InstrumentSpec {
    /// Generates the spec of a symbol from the seed. `index` is the symbol's stable index;
    /// `listed_at_ms` overrides the launch time for new listings.
    pub fn generate(seed: u64, index: usize, name: &str, listed_at_ms: Option<i64>) -> InstrumentSpec {
        let mut rng = SmallRng::seed_from_u64(mix_seed(seed ^ 0x5eed_1257, index as u64));
        let base = name.strip_suffix("USDT").unwrap_or(name).to_string();
        // (price, tick exponent, price scale, qty exponent, trades/s, level notional, vol)
        let (price, tick_k, scale, qty_k, tps, level_usd, vol, lev) = match name {
            "BTCUSDT" => (65_000.0 * (0.9 + 0.2 * rng.random::<f64>()), -1, 2, -3, 25.0, 120_000.0, 0.6, "100.00"),
            "ETHUSDT" => (3_200.0 * (0.9 + 0.2 * rng.random::<f64>()), -2, 2, -2, 15.0, 60_000.0, 0.8, "100.00"),
            _ => {
                let price = log_uniform(&mut rng, 0.002, 2_000.0);
                let tick_k = ((price / 3_000.0).log10().floor() as i32).clamp(-6, 0);
                let qty_k = ((30.0 / price).log10().floor() as i32).clamp(-3, 4);
                let levs = ["75.00", "50.00", "50.00", "25.00", "25.00", "20.00", "12.50", "10.00"];
                let lev = levs[rng.random_range(0..levs.len())];
                let tps = log_uniform(&mut rng, 0.4, 8.0);
                let level_usd = log_uniform(&mut rng, 800.0, 40_000.0);
                let vol = 0.8 + 1.2 * rng.random::<f64>();
                (price, tick_k, (-tick_k).max(0) as u32, qty_k, tps, level_usd, vol, lev)
            }
        };
        let tick_raw = raw_pow10(tick_k);
        let qty_step_raw = raw_pow10(qty_k);
        let tick_f = tick_raw as f64 / SCALE as f64;
        let step_f = qty_step_raw as f64 / SCALE as f64;
        let start_price_ticks = ((price / tick_f).round() as i64).max(100);
        let px = start_price_ticks as f64 * tick_f;
        let lots_for = |usd: f64| (usd / px / step_f).max(1.0);
        // Limit-order cap around $50M notional, market-order cap a fifth of it, as round numbers.
        let max_qty_lots = round_pow10(lots_for(50_000_000.0));
        let max_mkt_qty_lots = (max_qty_lots / 5).max(1);
        let launch_time_ms = listed_at_ms.unwrap_or_else(|| {
            // Between 2020-09 and 2025-03, on the hour.
            let t = rng.random_range(1_600_000_000_000i64..1_740_000_000_000i64);
            t - t.rem_euclid(3_600_000)
        });
        let funding_interval_min = if rng.random_bool(0.8) { 480 } else { 240 };
        let spread_ticks = if tps > 3.0 { 1 } else { rng.random_range(1..=3) };
        InstrumentSpec {
            name: name.to_string(),
            base,
            tick_raw,
            price_scale: scale,
            qty_step_raw,
            qty_decimals: (-qty_k).max(0) as u32,
            max_qty_lots,
            max_mkt_qty_lots,
            max_leverage: lev,
            launch_time_ms,
            funding_interval_min,
            start_price_ticks,
            trades_per_sec: tps,
            level_lots: lots_for(level_usd),
            trade_lots: lots_for(level_usd / 6.0),
            vol_annual: vol,
            spread_ticks,
        }
    }

    /// Exact price of `ticks`.
    pub fn price(&self, ticks: i64) -> Price {
        Price::from_raw(ticks.saturating_mul(self.tick_raw))
    }

    /// Exact quantity of `lots`.
    pub fn qty(&self, lots: i64) -> Qty {
        Qty::from_raw(lots.saturating_mul(self.qty_step_raw))
    }

    /// Price as a float (analytics only).
    pub fn price_f(&self, ticks: f64) -> f64 {
        ticks * self.tick_raw as f64 / SCALE as f64
    }

    /// Quantity as a float (analytics only).
    pub fn qty_f(&self, lots: f64) -> f64 {
        lots * self.qty_step_raw as f64 / SCALE as f64
    }

    /// The venue-agnostic instrument.
    pub fn to_instrument(&self, status: InstrumentStatus) -> Instrument {
        Instrument {
            symbol: Symbol::new(&self.name),
            status,
            tick_size: Price::from_raw(self.tick_raw),
            qty_step: Qty::from_raw(self.qty_step_raw),
            min_qty: Qty::from_raw(self.qty_step_raw),
            max_qty: self.qty(self.max_qty_lots),
            min_notional: Price::from_raw(5 * SCALE),
            max_leverage: Price::parse(self.max_leverage).unwrap_or(Price::from_raw(10 * SCALE)),
            launch_time_ms: self.launch_time_ms,
        }
    }
}

/// Rounds a positive count down to 1, 2 or 5 times a power of ten.
fn round_pow10(x: f64) -> i64 {
    if x < 1.0 {
        return 1;
    }
    let e = x.log10().floor();
    let m = x / 10f64.powf(e);
    let lead = if m >= 5.0 {
        5.0
    } else if m >= 2.0 {
        2.0
    } else {
        1.0
    };
    (lead * 10f64.powf(e)).min(1e15) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_deterministic_and_bybit_like() {
        let a = InstrumentSpec::generate(9, 5, "SIM004USDT", None);
        let b = InstrumentSpec::generate(9, 5, "SIM004USDT", None);
        assert_eq!(a.tick_raw, b.tick_raw);
        assert_eq!(a.start_price_ticks, b.start_price_ticks);
        assert_eq!(a.launch_time_ms, b.launch_time_ms);
        let btc = InstrumentSpec::generate(9, 0, "BTCUSDT", None);
        assert_eq!(btc.tick_raw, 10_000_000);
        assert_eq!(btc.price_scale, 2);
        assert_eq!(btc.qty_step_raw, 100_000);
        for i in 2..300 {
            let s = InstrumentSpec::generate(1, i, &format!("SIM{:03}USDT", i - 1), None);
            assert!(s.tick_raw >= 100 && s.qty_step_raw >= 100_000);
            assert!(s.start_price_ticks >= 100);
            // Tick is a power of ten and a few basis points of the price at most.
            let px = s.price(s.start_price_ticks).to_f64();
            assert!(s.price(1).to_f64() / px < 0.02, "{} tick too coarse", s.name);
            assert!(s.max_qty_lots >= s.max_mkt_qty_lots && s.max_mkt_qty_lots >= 1);
            assert_eq!(s.launch_time_ms % 3_600_000, 0);
        }
        assert_eq!(round_pow10(3456.0), 2000);
        assert_eq!(round_pow10(0.3), 1);
    }
}
