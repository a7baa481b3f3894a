//! Fixed ring of one-second buckets (volume, delta, trade count, liquidations, last price) that
//! gives O(window seconds) sliding-window sums in event time without keeping individual trades.
//!
//! A bucket covers `[k·1000, (k+1)·1000)` ms of **event time** (`now_ms`, the engine's receive
//! time), never the exchange's trade time, so every window is measured on one clock. A window of
//! `W` ms ending at `now` covers `[now - W, now]`: buckets entirely inside count fully; the oldest
//! bucket, only partly inside, counts pro rata to its overlap (a deterministic linear
//! approximation that keeps windows smooth across second boundaries).
//!
//! Summation order (fixed, so that results are exact functions of the buckets): a window that
//! reaches back past the current second is the sum of its *full past seconds* (newest first,
//! from zero), then the current second, then its oldest second with its weight. The full past
//! seconds cannot change while the ring's second stays the same (writes land in the newest
//! bucket only), so [`SecondRing::windows_cached`] keeps their sums from one event to the next
//! and reads 1 + N buckets per call instead of the whole span (31 for a 30 s window).

use crate::domain::TimeMs;

/// Number of one-second buckets kept (covers windows up to `RING_SECONDS - 1` seconds: the
/// longest an event reads is the 60 s return). 64 stored buckets of 64 bytes are one 4 KiB
/// page, so an event's half-dozen bucket reads cost one TLB entry (see [`ALLOCATED`]).
pub const RING_SECONDS: usize = 64;

/// One second of activity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SecBucket {
    /// Second index `floor(ms / 1000)` (of a window: the second it ends in).
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

/// A [`SecBucket`] as the ring stores it, in one 64-byte line: the second relative to the
/// ring's base second and the trade count as integers. Reads convert it back exactly (a count
/// is a whole number, which `f64` holds exactly).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Stored {
    /// `sec - base` of the ring; [`Stored::UNUSED`] for an unused slot.
    rel: i32,
    count: u32,
    buy: f64,
    sell: f64,
    buy_notional: f64,
    sell_notional: f64,
    liq_long: f64,
    liq_short: f64,
    price: f64,
}

impl Stored {
    const UNUSED: i32 = i32::MIN;
    const EMPTY: Stored = Stored {
        rel: Stored::UNUSED,
        count: 0,
        buy: 0.0,
        sell: 0.0,
        buy_notional: 0.0,
        sell_notional: 0.0,
        liq_long: 0.0,
        liq_short: 0.0,
        price: 0.0,
    };

    #[inline]
    fn bucket(&self, sec: i64) -> SecBucket {
        SecBucket {
            sec,
            buy: self.buy,
            sell: self.sell,
            buy_notional: self.buy_notional,
            sell_notional: self.sell_notional,
            count: self.count as f64,
            liq_long: self.liq_long,
            liq_short: self.liq_short,
            price: self.price,
        }
    }
}

const _: () = assert!(
    std::mem::size_of::<Stored>() == 64
        && RING_SECONDS.is_power_of_two()
        && RING_SECONDS * 64 == PAGE
        && ALLOCATED <= 255
);

/// Buckets allocated per ring: one more page's worth, short one, so that [`RING_SECONDS`]
/// consecutive buckets start at a page boundary, give or take the 48 bytes malloc's 16-byte
/// alignment leaves (see [`SecondRing::origin`]). One event reads up to six buckets (the
/// current second, the windows' oldest, 5, 30 and 60 s back), and at a universe of 1 000
/// symbols each page a symbol's event touches is a likely TLB miss (a two-level page walk in
/// a VM): unaligned 72-byte buckets for 128 seconds spread those reads over two or three
/// pages. An allocation aligned to the page by the allocator (`memalign`) leaves a free
/// fragment beside every ring, and malloc's bins then walked them (1.4 page misses per event
/// at 1000 symbols in a page-granular cache model): this costs 4 KiB a symbol instead.
const ALLOCATED: usize = 2 * RING_SECONDS - 1;

/// Bytes of a page.
const PAGE: usize = 4096;

impl SecBucket {
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

/// Weight of second `sec`'s bucket in a window starting at `start_ms`: 1 when the bucket lies
/// inside it, else the fraction of the second the window overlaps (see the module docs).
#[inline]
fn overlap_weight(sec: i64, start_ms: TimeMs) -> f64 {
    let b_start = sec * 1000;
    if b_start >= start_ms {
        1.0
    } else {
        ((b_start + 1000 - start_ms) as f64 / 1000.0).clamp(0.0, 1.0)
    }
}

/// Windows whose past-second sums [`SecondRing::windows_cached`] keeps.
pub const CACHED_WINDOWS: usize = 4;

/// Sums of the full past seconds of up to [`CACHED_WINDOWS`] windows, with what they were
/// computed from; valid while the ring's second and contents below it are unchanged (see
/// [`SecondRing::windows_cached`]).
#[derive(Debug, Clone)]
struct PastSums {
    /// Second of the call they were computed for (`i64::MIN`: none).
    now_sec: i64,
    /// The ring's `newest_sec` then.
    newest_sec: i64,
    /// The ring's `writes` then.
    writes: u64,
    /// Per window: `sec` = its oldest second (the key), the rest = the sums of the seconds
    /// strictly between it and `now_sec`.
    sums: [SecBucket; CACHED_WINDOWS],
}

/// Ring of [`RING_SECONDS`] one-second buckets.
#[derive(Debug, Clone)]
pub struct SecondRing {
    /// [`ALLOCATED`] buckets, of which `origin..origin + RING_SECONDS` are used: second `sec`
    /// is at `origin + (sec + stagger) mod RING_SECONDS`, stored relative to `first_sec`.
    buf: Box<[Stored; ALLOCATED]>,
    /// The used bucket that starts nearest a page boundary, at most 64 bytes before it.
    /// Placement only: a clone (elsewhere in memory) keeps it, correct but unaligned.
    origin: u8,
    /// Rotation of the slots, different from one ring to the next. The pages are aligned, so
    /// without it every symbol's bucket of the same second would sit at the same page offset,
    /// in the same set of the L1 cache (8 ways). Placement only: no value depends on it.
    stagger: u8,
    /// Past-second sums of the latest [`SecondRing::windows_cached`] call. Inline, in the
    /// symbol's hot bytes: boxed, they were one more page for every event to touch.
    past: PastSums,
    /// Bucket writes so far ([`SecondRing::current`] calls); a change tells the cache that a
    /// bucket it may have summed was written.
    writes: u64,
    newest_sec: i64,
    /// Second of the first bucket ever created (`i64::MAX` before any): no second before it has
    /// a bucket, so backward scans stop there instead of probing the whole ring (exact: the
    /// probes they skip would all miss). Also the base of the stored seconds; a second more
    /// than `i32::MAX` after it empties the ring and becomes the base.
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

/// The next ring's [`SecondRing::stagger`]: successive rings step through every slot (37 is
/// odd, so coprime with the 64 slots).
fn next_stagger() -> u8 {
    static RINGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (n.wrapping_mul(37) % RING_SECONDS) as u8
}

impl SecondRing {
    /// Empty ring.
    pub fn new() -> Self {
        let buf = Box::new([Stored::EMPTY; ALLOCATED]);
        let to_page = (PAGE - buf.as_ptr() as usize % PAGE) % PAGE;
        let origin = (to_page / std::mem::size_of::<Stored>()) as u8;
        SecondRing {
            buf,
            origin,
            stagger: next_stagger(),
            past: PastSums {
                now_sec: i64::MIN,
                newest_sec: i64::MIN,
                writes: 0,
                sums: [SecBucket::default(); CACHED_WINDOWS],
            },
            writes: 0,
            newest_sec: i64::MIN,
            first_sec: i64::MAX,
            last_price: 0.0,
        }
    }

    #[inline]
    fn slot(&self, sec: i64) -> usize {
        // `RING_SECONDS` divides 2^64, so the wrapping sum's low bits are `sec mod` it.
        // Both terms below `RING_SECONDS`: the index is provably inside `buf` (no bounds check).
        (self.origin as usize % RING_SECONDS)
            + (sec.wrapping_add(self.stagger as i64) as u64 % RING_SECONDS as u64) as usize
    }

    /// The used buckets.
    #[inline]
    fn used(&mut self) -> &mut [Stored] {
        let o = self.origin as usize;
        &mut self.buf[o..o + RING_SECONDS]
    }

    /// `sec` relative to the base (`first_sec`), when it is stored there.
    #[inline]
    fn rel(&self, sec: i64) -> Option<i32> {
        // Negative differences and overflows wrap to above `i32::MAX` as `u64`.
        let d = sec.wrapping_sub(self.first_sec);
        let fits = (d as u64) <= i32::MAX as u64 && (sec >= self.first_sec);
        fits.then_some(d as i32)
    }

    /// The bucket of `now_ms`, created (with the carried-forward price) when new. Time never
    /// goes back: an older `now_ms` lands in the newest bucket.
    fn current(&mut self, now_ms: TimeMs) -> &mut Stored {
        let sec = sec_of(now_ms).max(self.newest_sec);
        self.newest_sec = sec;
        self.writes = self.writes.wrapping_add(1);
        let price = self.last_price;
        let rel = match self.rel(sec) {
            Some(r) => r,
            None => {
                // The first bucket, or a second beyond the base's reach: every stored second
                // is older than the ring covers, so nothing is lost.
                self.used().fill(Stored::EMPTY);
                self.first_sec = sec;
                0
            }
        };
        let b = &mut self.buf[self.slot(sec)];
        if b.rel != rel {
            *b = Stored { rel, price, ..Stored::EMPTY };
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
        b.count = b.count.saturating_add(1);
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

    /// Prefetches what [`SecondRing::windows_cached`] with these lengths reads at `now_ms`
    /// when its sums are still valid: the bucket of the current second and of each window's
    /// oldest second (the sums themselves are inline, in the symbol's hot bytes; see
    /// [`crate::engine::prefetch`]).
    #[inline]
    pub fn prefetch_windows<const N: usize>(&self, now_ms: TimeMs, windows_ms: [i64; N]) {
        self.prefetch_second(sec_of(now_ms));
        for w in windows_ms {
            self.prefetch_second(sec_of(now_ms.saturating_sub(Self::clamp_window(w))));
        }
    }

    /// Prefetches the bucket of one second, if it is in the ring.
    #[inline]
    pub fn prefetch_second(&self, sec: i64) {
        if self.newest_sec != i64::MIN && sec >= self.first_sec && sec <= self.newest_sec {
            let i = self.slot(sec);
            crate::engine::prefetch::slice(&self.buf[..], i..i + 1);
        }
    }

    /// The address of the first used bucket: the ring's one page (fixed for the ring's life).
    pub fn page_probe(&self) -> usize {
        self.buf.as_ptr().wrapping_add(self.origin as usize) as usize
    }

    /// Latest reference price (0 before any).
    pub fn last_price(&self) -> f64 {
        self.last_price
    }

    /// Bucket of a second if it is still in the ring.
    #[inline]
    pub fn get(&self, sec: i64) -> Option<SecBucket> {
        let rel = self.rel(sec)?;
        let b = &self.buf[self.slot(sec)];
        (b.rel == rel).then(|| b.bucket(sec))
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

    #[inline]
    fn clamp_window(window_ms: i64) -> i64 {
        window_ms.clamp(0, (RING_SECONDS as i64 - 1) * 1000)
    }

    /// Several [`SecondRing::window`]s ending at `now_ms`, their past seconds summed in one
    /// backward pass (every window's past sum is a prefix of the same newest-first running
    /// sum, so each takes a copy of it at its oldest second).
    #[inline]
    pub fn windows<const N: usize>(&self, now_ms: TimeMs, windows_ms: [i64; N]) -> [SecBucket; N] {
        let (starts, firsts) = Self::bounds(now_ms, windows_ms);
        let past = self.past_sums(sec_of(now_ms), &firsts);
        self.finish(now_ms, &starts, &firsts, &past)
    }

    /// [`SecondRing::windows`], bit for bit, keeping the past-second sums of up to
    /// [`CACHED_WINDOWS`] windows for the next call: while the call's second, the windows'
    /// oldest seconds and the ring's newest second are the same, and either nothing was written
    /// since or the newest second is not in the past (writes land there only), those sums are
    /// unchanged, and the call reads the current bucket and each window's oldest one only.
    #[inline]
    pub fn windows_cached<const N: usize>(&mut self, now_ms: TimeMs, windows_ms: [i64; N]) -> [SecBucket; N] {
        if N > CACHED_WINDOWS {
            return self.windows(now_ms, windows_ms);
        }
        let (starts, firsts) = Self::bounds(now_ms, windows_ms);
        let now_sec = sec_of(now_ms);
        let c = &self.past;
        let valid = c.now_sec == now_sec
            && c.newest_sec == self.newest_sec
            && (c.newest_sec >= now_sec || c.writes == self.writes)
            && (0..N).all(|i| c.sums[i].sec == firsts[i]);
        if !valid {
            let past = self.past_sums(now_sec, &firsts);
            let c = &mut self.past;
            c.now_sec = now_sec;
            c.newest_sec = self.newest_sec;
            c.writes = self.writes;
            for i in 0..N {
                c.sums[i] = SecBucket { sec: firsts[i], ..past[i] };
            }
        }
        let c = &self.past;
        let past: [SecBucket; N] = std::array::from_fn(|i| c.sums[i]);
        self.finish(now_ms, &starts, &firsts, &past)
    }

    /// Each window's start (ms) and oldest second.
    #[inline]
    fn bounds<const N: usize>(now_ms: TimeMs, windows_ms: [i64; N]) -> ([i64; N], [i64; N]) {
        let starts = windows_ms.map(|w| now_ms.saturating_sub(Self::clamp_window(w)));
        (starts, starts.map(sec_of))
    }

    /// Per window, the sum of the buckets of the seconds strictly between its oldest second
    /// and `now_sec`, newest first from zero. Seconds before the ring's first bucket are not
    /// probed (they hold nothing).
    #[inline]
    fn past_sums<const N: usize>(&self, now_sec: i64, firsts: &[i64; N]) -> [SecBucket; N] {
        let mut out = [SecBucket::default(); N];
        let lowest = firsts.iter().copied().min().unwrap_or(now_sec).max(self.first_sec);
        let mut acc = SecBucket::default();
        let mut s = now_sec - 1;
        while s >= lowest {
            for i in 0..N {
                if firsts[i] == s {
                    out[i] = acc;
                }
            }
            if let Some(b) = self.get(s) {
                acc.add_weighted(&b, 1.0);
            }
            s -= 1;
        }
        // Windows whose oldest second is before the first bucket (or not in the past): all
        // that was summed (nothing, for the latter, which `finish` does not read).
        for i in 0..N {
            if firsts[i] < lowest {
                out[i] = acc;
            }
        }
        out
    }

    /// The windows from their past sums: + the current second, + the oldest second with its
    /// weight (the overlap of `[start, now]` with it). A window within the current second is
    /// that second alone, with its weight.
    #[inline]
    fn finish<const N: usize>(
        &self,
        now_ms: TimeMs,
        starts: &[i64; N],
        firsts: &[i64; N],
        past: &[SecBucket; N],
    ) -> [SecBucket; N] {
        let now_sec = sec_of(now_ms);
        let cur = self.get(now_sec);
        std::array::from_fn(|i| {
            let mut acc = SecBucket::default();
            if firsts[i] >= now_sec {
                if let Some(b) = cur {
                    acc.add_weighted(&b, overlap_weight(now_sec, starts[i]));
                }
            } else {
                acc = past[i];
                if let Some(b) = cur {
                    acc.add_weighted(&b, 1.0);
                }
                if let Some(b) = self.get(firsts[i]) {
                    acc.add_weighted(&b, overlap_weight(firsts[i], starts[i]));
                }
            }
            SecBucket { sec: now_sec, price: 0.0, ..acc }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One window by the definition in the module docs, every second probed: the full past
    /// seconds newest first from zero, then the current second, then the oldest with its
    /// weight; a window within the current second is that second with its weight.
    fn window_oracle(r: &SecondRing, now_ms: TimeMs, window_ms: i64) -> SecBucket {
        let start = now_ms.saturating_sub(SecondRing::clamp_window(window_ms));
        let now_sec = sec_of(now_ms);
        let first = sec_of(start);
        let weight = |s: i64| overlap_weight(s, start);
        let mut acc = SecBucket::default();
        if first >= now_sec {
            if let Some(b) = r.get(now_sec) {
                acc.add_weighted(&b, weight(now_sec));
            }
        } else {
            let mut s = now_sec - 1;
            while s > first {
                if let Some(b) = r.get(s) {
                    acc.add_weighted(&b, 1.0);
                }
                s -= 1;
            }
            if let Some(b) = r.get(now_sec) {
                acc.add_weighted(&b, 1.0);
            }
            if let Some(b) = r.get(first) {
                acc.add_weighted(&b, weight(first));
            }
        }
        acc.sec = now_sec;
        acc
    }

    /// The summation order before the past-second cache (newest first, the current second
    /// first): the same quantities, so equal up to float rounding.
    fn window_newest_first(r: &SecondRing, now_ms: TimeMs, window_ms: i64) -> SecBucket {
        let mut acc = SecBucket::default();
        let start = now_ms.saturating_sub(SecondRing::clamp_window(window_ms));
        let mut s = sec_of(now_ms);
        while s >= sec_of(start) {
            if let Some(b) = r.get(s) {
                acc.add_weighted(&b, overlap_weight(s, start));
            }
            s -= 1;
        }
        acc
    }

    fn close(a: &SecBucket, b: &SecBucket) -> bool {
        let f = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0);
        f(a.buy, b.buy)
            && f(a.sell, b.sell)
            && f(a.buy_notional, b.buy_notional)
            && f(a.sell_notional, b.sell_notional)
            && f(a.count, b.count)
            && f(a.liq_long, b.liq_long)
            && f(a.liq_short, b.liq_short)
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
        /// the ring): after every step the one-pass windows, the cached ones (probed again
        /// within the same second, in a later second and back in time) and the bounded price
        /// lookups equal the per-window / full-probe oracles bit for bit, and the windows equal
        /// the former newest-first summation up to rounding.
        #[test]
        fn one_pass_windows_equal_the_oracle(
            start in 0i64..5_000_000,
            steps in proptest::collection::vec((0u8..4, 0i64..3_000, 1u32..100_000, 1u32..1_000_000, proptest::bool::ANY), 1..200),
            lens in proptest::collection::vec(0i64..140_000, 1..6),
        ) {
            let mut r = SecondRing::new();
            let mut now = start;
            // The previous step's last probe, probed first after this step's write: a write
            // into a second its cached sums hold (probe ahead of the ring's newest second),
            // or a new second reusing a slot they read (probe 100 s back), must be seen.
            let mut carried = start;
            for (k, (kind, dt, px, qty, buy)) in steps.into_iter().enumerate() {
                // Mostly short steps, sometimes a gap of minutes.
                now += if dt > 2_950 { dt * 60 } else { dt };
                let (p, q) = (px as f64 / 100.0, qty as f64 / 1_000.0);
                match kind {
                    0 | 1 => r.add_trade(now, p, q, buy),
                    2 => r.add_liquidation(now, p * q, buy),
                    _ => r.set_price(now, p),
                }
                let last = if k % 2 == 0 { now + 2_900 } else { now - 100_000 };
                for probe in [carried, now, now + 250, now - 3_000, now + 300, last] {
                    let ws = r.windows(probe, [1_000, 5_000, 10_000, 30_000]);
                    let cached = r.windows_cached(probe, [1_000, 5_000, 10_000, 30_000]);
                    for ((w, c), len) in ws.iter().zip(&cached).zip([1_000, 5_000, 10_000, 30_000]) {
                        proptest::prop_assert_eq!(bits(w), bits(&window_oracle(&r, probe, len)));
                        proptest::prop_assert_eq!(bits(c), bits(w), "cached, window {} at {}", len, probe);
                        proptest::prop_assert!(close(w, &window_newest_first(&r, probe, len)), "{:?}", w);
                    }
                    for &len in &lens {
                        proptest::prop_assert_eq!(bits(&r.window(probe, len)), bits(&window_oracle(&r, probe, len)));
                    }
                    for back in [0, 5_000, 30_000, 60_000, 200_000] {
                        let a = r.price_at(probe - back).map(f64::to_bits);
                        proptest::prop_assert_eq!(a, price_at_oracle(&r, probe - back).map(f64::to_bits));
                    }
                }
                carried = last;
            }
        }
    }

    #[test]
    fn used_buckets_start_at_a_page_and_seconds_far_apart_start_over() {
        for _ in 0..8 {
            let r = SecondRing::new();
            let start = r.buf.as_ptr() as usize + r.origin as usize * std::mem::size_of::<Stored>();
            let past_boundary = (PAGE - start % PAGE) % PAGE;
            assert!(past_boundary < 64, "used buckets start {past_boundary} bytes before a page");
            assert!(r.origin as usize + RING_SECONDS <= r.buf.len());
        }
        // Negative times, then a second more than i32::MAX seconds later: the stored seconds
        // are relative, so the ring empties and starts over from the new base.
        let mut r = SecondRing::new();
        r.add_trade(-5_500, 10.0, 2.0, true);
        r.add_trade(-5_400, 10.0, 1.0, false);
        assert_eq!(r.get(-6).map(|b| (b.sec, b.count, b.buy, b.sell)), Some((-6, 2.0, 2.0, 1.0)));
        assert_eq!(r.get(-7), None);
        assert_eq!(r.get(-6 + RING_SECONDS as i64), None, "same slot, another second");
        let far = (i32::MAX as i64 + 100) * 1000;
        r.add_trade(far, 20.0, 3.0, true);
        assert_eq!(r.get(-6), None);
        assert_eq!(r.get(far / 1000).map(|b| (b.count, b.buy)), Some((1.0, 3.0)));
        assert_eq!(r.price_at(far + 500), Some(20.0));
        assert_eq!(r.price_at(far - 1_000), None, "nothing older survives");
        let w = r.window(far + 999, 30_000);
        assert_eq!((w.count, w.buy), (1.0, 3.0));
        // Trade counts stay whole numbers read back exactly.
        for i in 0..1_000 {
            r.add_trade(far + 1_000 + i % 1_000, 20.0, 0.1, i % 2 == 0);
        }
        assert_eq!(r.get(far / 1000 + 1).map(|b| b.count), Some(1_000.0));
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
