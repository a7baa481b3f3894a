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
    /// Second of the first bucket ever created (`i64::MAX` before any): no second before it has
    /// a bucket, so backward scans stop there instead of probing the whole ring (exact: the
    /// probes they skip would all miss).
    first_sec: i64,
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
            first_sec: i64::MAX,
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
            self.first_sec = self.first_sec.min(sec);
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

    /// Slots of the seconds `newest - back ..= newest` not before the first bucket, as two
    /// ranges of `buf` (the second empty unless the span wraps around the ring's end).
    fn recent_slots(&self, back: i64) -> [std::ops::Range<usize>; 2] {
        if self.newest_sec == i64::MIN {
            return [0..0, 0..0];
        }
        let span = self.newest_sec.saturating_sub(self.first_sec).clamp(0, back.clamp(0, RING_SECONDS as i64 - 1));
        let hi = Self::slot(self.newest_sec);
        let n = span as usize + 1;
        if n <= hi + 1 {
            [hi + 1 - n..hi + 1, 0..0]
        } else {
            [0..hi + 1, RING_SECONDS - (n - hi - 1)..RING_SECONDS]
        }
    }

    /// Prefetches the buckets of the seconds `newest - back ..= newest` (see
    /// [`crate::engine::prefetch`]).
    #[inline]
    pub fn prefetch(&self, back: i64) {
        for r in self.recent_slots(back) {
            crate::engine::prefetch::slice(&self.buf, r);
        }
    }

    /// Prefetches the bucket of one second, if it is in the ring.
    #[inline]
    pub fn prefetch_second(&self, sec: i64) {
        if self.newest_sec != i64::MIN && sec >= self.first_sec && sec <= self.newest_sec {
            let i = Self::slot(sec);
            crate::engine::prefetch::slice(&self.buf, i..i + 1);
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
        let oldest = self.newest_sec.saturating_sub(RING_SECONDS as i64 - 1).max(self.first_sec);
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
        let [w] = self.windows(now_ms, [window_ms]);
        w
    }

    /// Several [`SecondRing::window`]s ending at `now_ms` in one backward pass over the buckets.
    ///
    /// Bit-identical to calling `window` once per length: every window sums its buckets newest
    /// first from zero, so all windows share the same running sum of their full buckets; each
    /// takes a copy of it at its oldest (partial) bucket and adds that bucket with its weight,
    /// the same float operations in the same order. Seconds before the ring's first bucket are
    /// not probed (they hold nothing).
    #[inline]
    pub fn windows<const N: usize>(&self, now_ms: TimeMs, windows_ms: [i64; N]) -> [SecBucket; N] {
        let now_sec = sec_of(now_ms);
        let mut out = [SecBucket { sec: now_sec, ..SecBucket::default() }; N];
        let mut starts = [0i64; N];
        let mut firsts = [0i64; N];
        let mut lowest = now_sec;
        for i in 0..N {
            let window_ms = windows_ms[i].clamp(0, (RING_SECONDS as i64 - 1) * 1000);
            starts[i] = now_ms.saturating_sub(window_ms);
            firsts[i] = sec_of(starts[i]);
            lowest = lowest.min(firsts[i]);
        }
        let lowest = lowest.max(self.first_sec);
        let mut acc = SecBucket::default();
        let mut s = now_sec;
        while s >= lowest {
            let b = self.get(s);
            for i in 0..N {
                if firsts[i] == s {
                    let mut w_acc = acc;
                    if let Some(b) = b {
                        let b_start = s * 1000;
                        let start = starts[i];
                        let w = if b_start >= start {
                            1.0
                        } else {
                            ((b_start + 1000 - start) as f64 / 1000.0).clamp(0.0, 1.0)
                        };
                        w_acc.add_weighted(b, w);
                    }
                    out[i] = SecBucket { sec: now_sec, ..w_acc };
                }
            }
            if let Some(b) = b {
                acc.add_weighted(b, 1.0);
            }
            s -= 1;
        }
        // Windows reaching before the first bucket: everything the ring holds is inside them.
        for i in 0..N {
            if firsts[i] < lowest {
                out[i] = SecBucket { sec: now_sec, ..acc };
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetched_slots_cover_every_bucket_the_windows_read() {
        let mut r = SecondRing::new();
        assert_eq!(r.recent_slots(31), [0..0, 0..0]);
        // Start mid-ring so the span wraps around the ring's end, then keep going.
        let start = 100 * 1000;
        for k in 0..400i64 {
            let now = start + k * 700;
            r.add_trade(now, 100.0, 1.0, k % 2 == 0);
            let ranges = r.recent_slots(31);
            let covered = |slot: usize| ranges.iter().any(|x| x.contains(&slot));
            let newest = r.newest_sec;
            for s in (newest - 31).max(r.first_sec)..=newest {
                assert!(r.get(s).is_none() || covered(SecondRing::slot(s)), "second {s} at step {k} not prefetched");
            }
            let len: usize = ranges.iter().map(|x| x.len()).sum();
            assert_eq!(len as i64, (newest - r.first_sec).min(31) + 1, "step {k}: only the span is prefetched");
        }
    }

    /// The former one-window computation (every second of the window probed, newest first),
    /// kept as the oracle of [`SecondRing::windows`].
    fn window_oracle(r: &SecondRing, now_ms: TimeMs, window_ms: i64) -> SecBucket {
        let mut acc = SecBucket::default();
        let window_ms = window_ms.clamp(0, (RING_SECONDS as i64 - 1) * 1000);
        let start = now_ms.saturating_sub(window_ms);
        let now_sec = sec_of(now_ms);
        let mut s = now_sec;
        let first = sec_of(start);
        while s >= first {
            if let Some(b) = r.get(s) {
                let b_start = s * 1000;
                let w = if b_start >= start { 1.0 } else { ((b_start + 1000 - start) as f64 / 1000.0).clamp(0.0, 1.0) };
                acc.add_weighted(b, w);
            }
            s -= 1;
        }
        acc.sec = now_sec;
        acc
    }

    /// The former price lookup (probes back to the ring's oldest possible second).
    fn price_at_oracle(r: &SecondRing, t_ms: TimeMs) -> Option<f64> {
        if r.newest_sec == i64::MIN {
            return None;
        }
        let target = sec_of(t_ms).min(r.newest_sec);
        let oldest = r.newest_sec.saturating_sub(RING_SECONDS as i64 - 1);
        let mut s = target;
        while s >= oldest {
            if let Some(b) = r.get(s) {
                if b.price > 0.0 {
                    return Some(b.price);
                }
            }
            s -= 1;
        }
        None
    }

    fn bits(b: &SecBucket) -> [u64; 9] {
        [
            b.sec as u64,
            b.buy.to_bits(),
            b.sell.to_bits(),
            b.buy_notional.to_bits(),
            b.sell_notional.to_bits(),
            b.count.to_bits(),
            b.liq_long.to_bits(),
            b.liq_short.to_bits(),
            b.price.to_bits(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Random streams of trades, liquidations and price marks with gaps (up to longer than
        /// the ring): after every step the one-pass windows and the bounded price lookups equal
        /// the per-window / full-probe oracles bit for bit.
        #[test]
        fn one_pass_windows_equal_the_oracle(
            start in 0i64..5_000_000,
            steps in proptest::collection::vec((0u8..4, 0i64..3_000, 1u32..100_000, 1u32..1_000_000, proptest::bool::ANY), 1..200),
            lens in proptest::collection::vec(0i64..140_000, 1..6),
        ) {
            let mut r = SecondRing::new();
            let mut now = start;
            for (kind, dt, px, qty, buy) in steps {
                // Mostly short steps, sometimes a gap of minutes.
                now += if dt > 2_950 { dt * 60 } else { dt };
                let (p, q) = (px as f64 / 100.0, qty as f64 / 1_000.0);
                match kind {
                    0 | 1 => r.add_trade(now, p, q, buy),
                    2 => r.add_liquidation(now, p * q, buy),
                    _ => r.set_price(now, p),
                }
                for probe in [now, now + 250, now + 1_700] {
                    let ws = r.windows(probe, [1_000, 5_000, 10_000, 30_000]);
                    for (w, len) in ws.iter().zip([1_000, 5_000, 10_000, 30_000]) {
                        proptest::prop_assert_eq!(bits(w), bits(&window_oracle(&r, probe, len)));
                    }
                    for &len in &lens {
                        proptest::prop_assert_eq!(bits(&r.window(probe, len)), bits(&window_oracle(&r, probe, len)));
                    }
                    for back in [0, 5_000, 30_000, 60_000, 200_000] {
                        let a = r.price_at(probe - back).map(f64::to_bits);
                        proptest::prop_assert_eq!(a, price_at_oracle(&r, probe - back).map(f64::to_bits));
                    }
                }
            }
        }
    }

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
