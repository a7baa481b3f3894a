//! One side of the book: a dense window of levels indexed by key offset, plus an ordered
//! fallback for levels below it, and exact division by the tick size.
//!
//! Keys are those of the book (ticks for bids, `-ticks` for asks), so the best level is the
//! highest key on both sides. The window holds keys `base .. base + W` (`W` a power of two sized
//! from the depth): a level there is set, found or deleted in `O(1)` with one occupancy bit, and
//! the next best after the best is deleted is found by scanning those bits 64 slots at a time.
//! Keys below the window live in `out`, a sorted `Vec` (only deep levels of wide books land
//! there). Nothing is ever kept above the window: a level that would land above it moves the
//! window first (`rebase`), and a message that leaves the best too close to the bottom moves it
//! down (`settle`), so the touch and the levels near it always sit in the dense part. Unlike a
//! fixed price range, any positive tick is accepted; a move costs `O(levels)` and is rare.

use crate::domain::Qty;

/// One stored level: side key (ticks for bids, -ticks for asks) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) key: i64,
    pub(super) qty: Qty,
}

/// Exact division by a fixed positive divisor without a hardware divide: the divisor is
/// `odd << shift`, `n` is divisible by it iff its low `shift` bits are zero and
/// `(n >> shift) * odd⁻¹ (mod 2^64) <= u64::MAX / odd`, and that product is then the quotient
/// (Granlund & Montgomery, *Division by invariant integers*, §9; Hacker's Delight 10-17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TickDiv {
    shift: u32,
    low_mask: u64,
    /// Inverse of the odd part modulo 2^64.
    inv: u64,
    /// `u64::MAX / odd`: products above it are not exact quotients.
    limit: u64,
}

impl TickDiv {
    /// `None` for a divisor <= 0.
    pub(super) fn new(divisor: i64) -> Option<TickDiv> {
        if divisor <= 0 {
            return None;
        }
        let d = divisor as u64;
        let shift = d.trailing_zeros();
        let odd = d >> shift;
        // Newton's iteration doubles the correct low bits: 3 (odd * odd ≡ 1 mod 8) → 96.
        let mut inv = odd;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inv)));
        }
        Some(TickDiv { shift, low_mask: (1u64 << shift) - 1, inv, limit: u64::MAX / odd })
    }

    /// `n / divisor` when the divisor divides `n` exactly, else `None`.
    #[inline]
    pub(super) fn exact(self, n: u64) -> Option<u64> {
        if n & self.low_mask != 0 {
            return None;
        }
        let q = (n >> self.shift).wrapping_mul(self.inv);
        (q <= self.limit).then_some(q)
    }
}

/// Window slots for a book capped at `depth` levels a side: room for a wide book's depth below
/// the touch and for the market to move before the window does.
fn window_for(depth: usize) -> usize {
    depth.saturating_mul(8).clamp(256, 4096).next_power_of_two()
}

/// One side of a book (see the module docs). `repr(C)`: the fields are in the order a level
/// update reads them, 80 bytes, so a book's two sides and its sequencing state span four cache
/// lines (see `OrderBook`).
#[derive(Debug, Clone)]
#[repr(C)]
pub(super) struct BookSide {
    /// Key of slot 0. `base + W - 1` never overflows.
    base: i64,
    /// Size per slot, zero when the slot holds no level. Length `W`.
    qty: Box<[Qty]>,
    /// Occupancy bit per slot. Length `W / 64`.
    bits: Box<[u64]>,
    /// 1 + the highest occupied slot; 0 when the window is empty.
    hi: usize,
    /// Levels in the window.
    in_window: usize,
    /// Levels below the window (keys < `base`), ascending.
    out: Vec<Entry>,
}

impl BookSide {
    pub(super) fn new(depth: usize) -> BookSide {
        let w = window_for(depth);
        BookSide {
            base: 0,
            qty: vec![Qty::ZERO; w].into_boxed_slice(),
            bits: vec![0u64; w / 64].into_boxed_slice(),
            hi: 0,
            in_window: 0,
            out: Vec::new(),
        }
    }

    #[inline]
    fn w(&self) -> usize {
        self.qty.len()
    }

    /// Window slot of `key`, if inside the window.
    #[inline]
    fn slot(&self, key: i64) -> Option<usize> {
        // Wrapping difference as u64 is below W iff base <= key < base + W (both fit in i64).
        let off = key.wrapping_sub(self.base) as u64;
        (off < self.w() as u64).then_some(off as usize)
    }

    /// Base that puts `top` three quarters up the window (room for the market to rise a quarter
    /// window before the next move), clamped so the window's last key fits in `i64`.
    fn base_for(&self, top: i64) -> i64 {
        let w = self.w() as i64;
        top.saturating_sub(w / 4 * 3).min(i64::MAX - (w - 1))
    }

    /// Number of levels.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.in_window + self.out.len()
    }

    /// Key of the best level, read from the side's own fields only (no slot is loaded while
    /// the window holds a level).
    #[inline]
    pub(super) fn best_key(&self) -> Option<i64> {
        if self.hi > 0 {
            Some(self.base + self.hi as i64 - 1)
        } else {
            self.out.last().map(|e| e.key)
        }
    }

    /// The best (highest-key) level.
    #[inline]
    pub(super) fn best(&self) -> Option<Entry> {
        if self.hi > 0 {
            let i = self.hi - 1;
            Some(Entry { key: self.base + i as i64, qty: self.qty[i] })
        } else {
            self.out.last().copied()
        }
    }

    /// Levels, best first.
    #[inline]
    pub(super) fn iter(&self) -> SideIter<'_> {
        SideIter { side: self, word: self.hi.div_ceil(64), bits: 0, out: self.out.len() }
    }

    /// Prefetches the `slots` window slots below the best and their occupancy words (see
    /// [`crate::engine::prefetch`]).
    #[inline]
    pub(super) fn prefetch_touch(&self, slots: usize) {
        if self.hi > 0 {
            let lo = self.hi.saturating_sub(slots);
            crate::engine::prefetch::slice(&self.qty, lo..self.hi);
            crate::engine::prefetch::slice(&self.bits, lo / 64..self.hi.div_ceil(64));
        }
    }

    /// Addresses in the pages a level update near the touch reads: the slot where a rebase puts
    /// the best (three quarters up the window) and the occupancy words. Fixed for the side's
    /// life (the buffers are allocated once), so they can be kept outside it.
    pub(super) fn page_probe(&self) -> [usize; 2] {
        let at = self.w() / 4 * 3;
        [self.qty.as_ptr().wrapping_add(at) as usize, self.bits.as_ptr() as usize]
    }

    /// Removes every level.
    pub(super) fn clear(&mut self) {
        self.clear_window();
        self.out.clear();
    }

    fn clear_window(&mut self) {
        if self.in_window > self.w() / 16 {
            self.qty.fill(Qty::ZERO);
            self.bits.fill(0);
        } else {
            for w in 0..self.hi.div_ceil(64) {
                let mut b = self.bits[w];
                while b != 0 {
                    self.qty[w * 64 + b.trailing_zeros() as usize] = Qty::ZERO;
                    b &= b - 1;
                }
                self.bits[w] = 0;
            }
        }
        self.hi = 0;
        self.in_window = 0;
    }

    /// 1 + the highest occupied slot below slot `i`, or 0.
    #[inline]
    fn highest_below(&self, i: usize) -> usize {
        let mut w = i / 64;
        let mut b = self.bits[w] & ((1u64 << (i % 64)) - 1);
        loop {
            if b != 0 {
                return w * 64 + 64 - b.leading_zeros() as usize;
            }
            if w == 0 {
                return 0;
            }
            w -= 1;
            b = self.bits[w];
        }
    }

    /// Sets slot `i`; returns its former size (zero when empty).
    #[inline]
    fn set_slot(&mut self, i: usize, qty: Qty) -> Qty {
        let cur = self.qty[i];
        if qty.is_zero() {
            if cur.is_zero() {
                return cur;
            }
            self.qty[i] = Qty::ZERO;
            self.bits[i / 64] &= !(1u64 << (i % 64));
            self.in_window -= 1;
            if i + 1 == self.hi {
                self.hi = self.highest_below(i);
            }
        } else {
            if cur.is_zero() {
                self.bits[i / 64] |= 1u64 << (i % 64);
                self.in_window += 1;
                if i >= self.hi {
                    self.hi = i + 1;
                }
            }
            self.qty[i] = qty;
        }
        cur
    }

    /// Sets one level below the window (qty 0 deletes); returns its former size.
    fn set_out(&mut self, key: i64, qty: Qty) -> Qty {
        let out = &mut self.out;
        match out.binary_search_by(|e| e.key.cmp(&key)) {
            Ok(i) => {
                let cur = out[i].qty;
                if qty.is_zero() {
                    out.remove(i);
                } else {
                    out[i].qty = qty;
                }
                cur
            }
            Err(i) => {
                if !qty.is_zero() {
                    out.insert(i, Entry { key, qty });
                }
                Qty::ZERO
            }
        }
    }

    /// Sets one level (qty 0 deletes; deleting an absent level is a no-op); returns its former
    /// size (zero when absent).
    #[inline]
    pub(super) fn set(&mut self, key: i64, qty: Qty) -> Qty {
        if let Some(i) = self.slot(key) {
            self.set_slot(i, qty)
        } else if key < self.base {
            self.set_out(key, qty)
        } else {
            if !qty.is_zero() {
                // Above the window, hence above every level: it becomes the best.
                self.rebase(self.base_for(key));
                if let Some(i) = self.slot(key) {
                    self.set_slot(i, qty);
                }
            }
            Qty::ZERO
        }
    }

    /// Applies `levels` (in message order; qty 0 deletes) with the same result as [`BookSide::set`]
    /// on each, in `O(n + k log k)`: levels below the window are sorted once and merged.
    /// `levels` is reordered (used as work space); `scratch` is a reused buffer (contents ignored).
    pub(super) fn set_many(&mut self, levels: &mut [Entry], scratch: &mut Vec<Entry>) {
        if let Some(top) = levels.iter().filter(|e| !e.qty.is_zero()).map(|e| e.key).max() {
            if top > self.base && self.slot(top).is_none() {
                self.rebase(self.base_for(top));
            }
        }
        // Levels below the window are compacted to the front of `levels`, in message order
        // (the write index never passes the read index).
        let mut below = 0;
        for r in 0..levels.len() {
            let e = levels[r];
            if let Some(i) = self.slot(e.key) {
                self.set_slot(i, e.qty);
            } else if e.key < self.base {
                levels[below] = e;
                below += 1;
            }
        }
        if below > 0 {
            self.merge_out(&mut levels[..below], scratch);
        }
    }

    /// Merges `delta` (keys below the window, message order, qty 0 deletes) into `out`, through
    /// `scratch`, which is left holding the former `out`'s buffer (no allocation once warm).
    fn merge_out(&mut self, delta: &mut [Entry], scratch: &mut Vec<Entry>) {
        // Stable: equal keys keep message order, so the last of each run is the one that wins.
        delta.sort_by_key(|e| e.key);
        let old = &self.out;
        let merged = scratch;
        merged.clear();
        merged.reserve(old.len() + delta.len());
        let (mut i, mut j) = (0, 0);
        while j < delta.len() {
            let mut last = delta[j];
            while j + 1 < delta.len() && delta[j + 1].key == last.key {
                j += 1;
                last = delta[j];
            }
            j += 1;
            while i < old.len() && old[i].key < last.key {
                merged.push(old[i]);
                i += 1;
            }
            if i < old.len() && old[i].key == last.key {
                i += 1;
            }
            if !last.qty.is_zero() {
                merged.push(last);
            }
        }
        merged.extend_from_slice(&old[i..]);
        std::mem::swap(&mut self.out, merged);
    }

    /// Replaces the side with `levels` (message order, zero sizes already skipped; a repeated
    /// key keeps its last occurrence). `scratch` is a reused buffer (contents ignored).
    pub(super) fn load(&mut self, levels: &[Entry], scratch: &mut Vec<Entry>) {
        self.clear();
        let Some(top) = levels.iter().map(|e| e.key).max() else {
            return;
        };
        self.base = self.base_for(top);
        let below = scratch;
        below.clear();
        for e in levels {
            match self.slot(e.key) {
                Some(i) => {
                    self.set_slot(i, e.qty);
                }
                None => below.push(*e),
            }
        }
        // Exchanges send best first, i.e. descending keys: reversed, that is already sorted.
        below.reverse();
        if !below.windows(2).all(|p| p[0].key < p[1].key) {
            // Stable: among equal keys the first is the last occurrence in the message.
            below.sort_by_key(|e| e.key);
            below.dedup_by_key(|e| e.key);
        }
        self.out.extend_from_slice(below);
    }

    /// Drops the worst levels beyond `depth`; true when it dropped any.
    #[inline]
    pub(super) fn truncate_worst(&mut self, depth: usize) -> bool {
        let n = self.len();
        if n > depth {
            self.drop_worst(n - depth);
            return true;
        }
        false
    }

    /// Drops the `excess` worst levels (fewer than there are).
    #[cold]
    fn drop_worst(&mut self, mut excess: usize) {
        let k = excess.min(self.out.len());
        self.out.drain(..k);
        excess -= k;
        let mut w = 0;
        while excess > 0 && w < self.bits.len() {
            while excess > 0 && self.bits[w] != 0 {
                let i = w * 64 + self.bits[w].trailing_zeros() as usize;
                self.qty[i] = Qty::ZERO;
                self.bits[w] &= self.bits[w] - 1;
                self.in_window -= 1;
                excess -= 1;
            }
            w += 1;
        }
        if self.in_window == 0 {
            self.hi = 0;
        }
    }

    /// End of a message: when the best has fallen into the bottom eighth of the window (or
    /// below it), moves the window down so the touch is back in the dense part.
    #[inline]
    pub(super) fn settle(&mut self) {
        if self.hi > self.w() / 8 {
            return;
        }
        if let Some(top) = self.best() {
            let base = self.base_for(top.key);
            if base != self.base {
                self.rebase(base);
            }
        }
    }

    /// Moves the window to start at `base`; every level must be below `base + W`.
    fn rebase(&mut self, base: i64) {
        let mut all = std::mem::take(&mut self.out);
        for w in 0..self.hi.div_ceil(64) {
            let mut b = self.bits[w];
            while b != 0 {
                let i = w * 64 + b.trailing_zeros() as usize;
                all.push(Entry { key: self.base + i as i64, qty: self.qty[i] });
                b &= b - 1;
            }
        }
        self.clear_window();
        self.base = base;
        let split = all.partition_point(|e| e.key < base);
        for e in &all[split..] {
            if let Some(i) = self.slot(e.key) {
                self.set_slot(i, e.qty);
            }
        }
        all.truncate(split);
        self.out = all;
    }
}

/// Levels of a [`BookSide`], best first: the window's occupied slots from the top, then `out`
/// from its end.
pub(super) struct SideIter<'a> {
    side: &'a BookSide,
    /// Words of the window not yet loaded (the next one is `word - 1`).
    word: usize,
    /// Occupied slots of the current word not yet returned.
    bits: u64,
    /// Entries of `out` not yet returned (the next one is `out - 1`).
    out: usize,
}

impl Iterator for SideIter<'_> {
    type Item = Entry;

    #[inline]
    fn next(&mut self) -> Option<Entry> {
        let s = self.side;
        loop {
            if self.bits != 0 {
                let b = 63 - self.bits.leading_zeros() as usize;
                self.bits &= !(1u64 << b);
                let i = self.word * 64 + b;
                return Some(Entry { key: s.base + i as i64, qty: s.qty[i] });
            }
            if self.word == 0 {
                break;
            }
            self.word -= 1;
            self.bits = s.bits[self.word];
        }
        if self.out == 0 {
            return None;
        }
        self.out -= 1;
        Some(s.out[self.out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_div_matches_hardware_division() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut divisors = vec![1i64, 2, 3, 5, 10, 64, 100, 1_000, 10_000_000, 1 << 62, i64::MAX, i64::MAX - 1];
        divisors.extend((0..200).map(|_| (next() >> (1 + next() % 63)).max(1) as i64));
        for d in divisors {
            let div = TickDiv::new(d).unwrap();
            let du = d as u64;
            let mut ns = vec![0u64, 1, du, du.wrapping_mul(2), i64::MAX as u64, du - 1, du + 1];
            for _ in 0..200 {
                let q = next() % (i64::MAX as u64 / du + 1);
                ns.extend([q * du, (q * du).wrapping_add(1 + next() % du) & (i64::MAX as u64), next() >> 1]);
            }
            for n in ns.into_iter().filter(|&n| n <= i64::MAX as u64) {
                let want = if n % du == 0 { Some(n / du) } else { None };
                assert_eq!(div.exact(n), want, "{n} / {d}");
            }
        }
        assert_eq!(TickDiv::new(0), None);
        assert_eq!(TickDiv::new(-5), None);
    }

    fn e(key: i64, qty: i64) -> Entry {
        Entry { key, qty: Qty::from_raw(qty) }
    }

    #[test]
    fn window_moves_keep_every_level_in_order() {
        let mut s = BookSide::new(50);
        let w = s.w() as i64;
        let mut scratch = Vec::new();
        s.load(&[e(1000, 1), e(999, 2), e(1000 - w, 3), e(1000 - 3 * w, 4)], &mut scratch);
        assert_eq!(s.len(), 4);
        assert!(!s.out.is_empty(), "far levels sit below the window");
        // A level far above the window moves it up: it is the new best.
        s.set(1000 + 5 * w, Qty::from_raw(5));
        assert_eq!(s.best(), Some(e(1000 + 5 * w, 5)));
        assert_eq!(s.best_key(), Some(1000 + 5 * w));
        assert_eq!(s.iter().map(|x| x.key).collect::<Vec<_>>(), vec![1000 + 5 * w, 1000, 999, 1000 - w, 1000 - 3 * w]);
        // Deleting the best leaves it near the bottom: the window follows it down.
        s.set(1000 + 5 * w, Qty::ZERO);
        s.settle();
        assert_eq!(s.best(), Some(e(1000, 1)));
        assert!(s.slot(1000).is_some() && s.slot(999).is_some());
        s.truncate_worst(2);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![e(1000, 1), e(999, 2)]);
        s.set_many(&mut [e(1000, 0), e(999, 0), e(5, 7), e(5, 8), e(1 << 40, 0)], &mut scratch);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![e(5, 8)]);
        // Only `out` holds levels: the best key comes from it.
        assert_eq!(s.best_key(), Some(5));
        // Keys at the ends of i64 keep the window inside the range.
        s.set(i64::MAX, Qty::from_raw(1));
        s.set(-i64::MAX, Qty::from_raw(1));
        assert_eq!(s.best(), Some(e(i64::MAX, 1)));
        assert_eq!(s.iter().map(|x| x.key).collect::<Vec<_>>(), vec![i64::MAX, 5, -i64::MAX]);
        s.clear();
        assert_eq!((s.len(), s.best(), s.best_key()), (0, None, None));
    }
}
