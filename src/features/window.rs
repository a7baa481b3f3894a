//! Fixed ring of one-second buckets (volume, delta, trade count, liquidations, last price) that
//! gives O(window seconds) sliding-window sums in event time without keeping individual trades.
//!
//! A bucket covers `[k·1000, (k+1)·1000)` ms of **event time** (`now_ms`, the engine's receive
//! time), never the exchange's trade time, so every window is measured on one clock. A window of
//! `W` ms ending at `now` covers `[now - W, now]`: buckets entirely inside count fully; the oldest
//! bucket, only partly inside, counts pro rata to its overlap (a deterministic linear
//! approximation that keeps windows smooth across second boundaries).

use crate::domain::TimeMs;

/// Number of one-second buckets kept (covers windows up to `RING_SECONDS - 1` seconds).
pub const RING_SECONDS: usize = 128;

/// One second of activity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SecBucket {
    /// Second index `floor(ms / 1000)`; `i64::MIN` for an unused slot.
    pub sec: i64,
    /// Taker buy volume (base units).
    pub buy: f64,
    /// Taker sell volume (base units).
    pub sell: f64,
    /// Taker buy notional (USDT).
    pub buy_notional: f64,
    /// Taker sell notional (USDT).
    pub sell_notional: f64,
    /// Number of trades.
    pub count: f64,
    /// Notional of liquidated longs (forced sells), USDT.
    pub liq_long: f64,
    /// Notional of liquidated shorts (forced buys), USDT.
    pub liq_short: f64,
    /// Last known reference price at the end of the second (carried forward; 0 = unknown).
    pub price: f64,
}

impl SecBucket {
    fn empty(sec: i64, price: f64) -> Self {
        SecBucket { sec, price, ..SecBucket::default() }
    }
    fn add_weighted(&mut self, o: &SecBucket, w: f64) {
        self.buy += o.buy * w;
        self.sell += o.sell * w;
        self.buy_notional += o.buy_notional * w;
        self.sell_notional += o.sell_notional * w;
        self.count += o.count * w;
        self.liq_long += o.liq_long * w;
        self.liq_short += o.liq_short * w;
    }
    /// Total taker volume.
    pub fn volume(&self) -> f64 {
        self.buy + self.sell
    }
    /// Total taker notional.
    pub fn notional(&self) -> f64 {
        self.buy_notional + self.sell_notional
    }
    /// Taker delta `buy - sell`.
    pub fn delta(&self) -> f64 {
        self.buy - self.sell
    }
}

/// Ring of [`RING_SECONDS`] one-second buckets.
#[derive(Debug, Clone)]
pub struct SecondRing {
    buf: Vec<SecBucket>,
    newest_sec: i64,
    last_price: f64,
}

impl Default for SecondRing {
    fn default() -> Self {
        SecondRing::new()
    }
}

/// Second index of a time.
#[inline]
pub fn sec_of(ms: TimeMs) -> i64 {
    ms.div_euclid(1000)
}

impl SecondRing {
    /// Empty ring.
    pub fn new() -> Self {
        SecondRing {
            buf: vec![SecBucket { sec: i64::MIN, ..SecBucket::default() }; RING_SECONDS],
            newest_sec: i64::MIN,
            last_price: 0.0,
        }
    }

    #[inline]
    fn slot(sec: i64) -> usize {
        sec.rem_euclid(RING_SECONDS as i64) as usize
    }

    /// The bucket of `now_ms`, created (with the carried-forward price) when new. Time never
    /// goes back: an older `now_ms` lands in the newest bucket.
    pub fn current(&mut self, now_ms: TimeMs) -> &mut SecBucket {
        let sec = sec_of(now_ms).max(self.newest_sec);
        self.newest_sec = sec;
        let price = self.last_price;
        let b = &mut self.buf[Self::slot(sec)];
        if b.sec != sec {
            *b = SecBucket::empty(sec, price);
        }
        b
    }

    /// Records a trade at `now_ms`.
    pub fn add_trade(&mut self, now_ms: TimeMs, price: f64, qty: f64, buy: bool) {
        let b = self.current(now_ms);
        if buy {
            b.buy += qty;
            b.buy_notional += price * qty;
        } else {
            b.sell += qty;
            b.sell_notional += price * qty;
        }
        b.count += 1.0;
        self.set_price(now_ms, price);
    }

    /// Records a liquidation notional (`long_liquidated` = a long position was closed).
    pub fn add_liquidation(&mut self, now_ms: TimeMs, notional: f64, long_liquidated: bool) {
        let b = self.current(now_ms);
        if long_liquidated {
            b.liq_long += notional;
        } else {
            b.liq_short += notional;
        }
    }

    /// Sets the reference price at `now_ms` (positive prices only).
    pub fn set_price(&mut self, now_ms: TimeMs, price: f64) {
        if price > 0.0 && price.is_finite() {
            self.current(now_ms).price = price;
            self.last_price = price;
        }
    }

    /// Latest reference price (0 before any).
    pub fn last_price(&self) -> f64 {
        self.last_price
    }

    /// Bucket of a second if it is still in the ring.
    pub fn get(&self, sec: i64) -> Option<&SecBucket> {
        let b = &self.buf[Self::slot(sec)];
        (b.sec == sec).then_some(b)
    }

    /// Reference price at time `t_ms`: the price at the end of the latest second <= `t_ms` that
    /// has a bucket. `None` when no such second is in the ring.
    pub fn price_at(&self, t_ms: TimeMs) -> Option<f64> {
        if self.newest_sec == i64::MIN {
            return None;
        }
        let target = sec_of(t_ms).min(self.newest_sec);
        let oldest = self.newest_sec.saturating_sub(RING_SECONDS as i64 - 1);
        let mut s = target;
        while s >= oldest {
            if let Some(b) = self.get(s) {
                if b.price > 0.0 {
                    return Some(b.price);
                }
            }
            s -= 1;
        }
        None
    }

    /// Pro-rata sums over `[now - window_ms, now]` (see the module docs). Windows are capped to
    /// the ring length.
    pub fn window(&self, now_ms: TimeMs, window_ms: i64) -> SecBucket {
        let mut acc = SecBucket::default();
        let window_ms = window_ms.clamp(0, (RING_SECONDS as i64 - 1) * 1000);
        let start = now_ms.saturating_sub(window_ms);
        let now_sec = sec_of(now_ms);
        let mut s = now_sec;
        let first = sec_of(start);
        while s >= first {
            if let Some(b) = self.get(s) {
                let b_start = s * 1000;
                let w = if b_start >= start { 1.0 } else { ((b_start + 1000 - start) as f64 / 1000.0).clamp(0.0, 1.0) };
                acc.add_weighted(b, w);
            }
            s -= 1;
        }
        acc.sec = now_sec;
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_pro_rata_and_bounded() {
        let mut r = SecondRing::new();
        // 1 unit bought in each of seconds 10..=19.
        for s in 10..20 {
            r.add_trade(s * 1000 + 100, 100.0, 1.0, true);
        }
        r.add_trade(19_900, 100.0, 2.0, false);
        // Window [17_500, 20_000]: second 17 half, 18 and 19 fully.
        let w = r.window(20_000, 2_500);
        assert!((w.buy - 2.5).abs() < 1e-9, "{w:?}");
        assert!((w.sell - 2.0).abs() < 1e-9);
        assert!((w.count - 3.5).abs() < 1e-9);
        assert!((w.delta() - 0.5).abs() < 1e-9);
        assert!((w.notional() - 450.0).abs() < 1e-9);
        // Window covering everything.
        assert!((r.window(19_999, 60_000).buy - 10.0).abs() < 1e-9);
        // Old buckets are overwritten after RING_SECONDS.
        r.add_trade((10 + RING_SECONDS as i64) * 1000, 100.0, 1.0, true);
        assert!(r.get(10).is_none());
        assert!(r.get(11).is_some());
    }

    #[test]
    fn price_carries_forward() {
        let mut r = SecondRing::new();
        assert_eq!(r.price_at(5_000), None);
        r.set_price(1_200, 10.0);
        r.set_price(3_500, 12.0);
        r.current(6_000); // a second with no price update carries 12
        assert_eq!(r.price_at(1_999), Some(10.0));
        assert_eq!(r.price_at(2_500), Some(10.0), "gap second falls back to the previous one");
        assert_eq!(r.price_at(3_000), Some(12.0));
        assert_eq!(r.price_at(6_100), Some(12.0));
        assert_eq!(r.get(6).map(|b| b.price), Some(12.0));
        assert_eq!(r.price_at(500), None);
        // Liquidations land in the bucket.
        r.add_liquidation(6_500, 1_000.0, true);
        r.add_liquidation(6_600, 500.0, false);
        let w = r.window(6_999, 1_000);
        assert_eq!((w.liq_long, w.liq_short), (1_000.0, 500.0));
        // Time never goes back.
        r.add_trade(1_000, 11.0, 1.0, true);
        assert_eq!(r.get(6).map(|b| b.count), Some(1.0));
    }
}
