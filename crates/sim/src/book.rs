//! The simulator's own exact-tick L2 book: prices in whole ticks, sizes in whole quantity steps
//! ("lots"), both as integers, so nothing is ever rounded. Each side is a vector sorted best
//! first, so the top-N views the depth streams publish are plain slices. Also the diff between
//! two views (a Bybit delta).

use scalper_core::domain::Side;

/// A price level: (price in ticks, size in lots).
pub(crate) type Lvl = (i64, i64);

/// Bids and asks, best first. `version` changes on every mutation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Book {
    /// Bids, highest price first.
    bids: Vec<Lvl>,
    /// Asks, lowest price first.
    asks: Vec<Lvl>,
    /// Mutation counter.
    pub version: u64,
}

/// True when price `a` comes before price `b` on `side` (is better).
fn better(side: Side, a: i64, b: i64) -> bool {
    match side {
        Side::Buy => a > b,
        Side::Sell => a < b,
    }
}

impl Book {
    fn vec_mut(&mut self, side: Side) -> &mut Vec<Lvl> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// One side, best first.
    pub fn side(&self, side: Side) -> &[Lvl] {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// Index of `price` (Ok) or where it would be inserted (Err).
    fn find(&self, side: Side, price: i64) -> Result<usize, usize> {
        match side {
            Side::Buy => self.bids.binary_search_by(|l| price.cmp(&l.0)),
            Side::Sell => self.asks.binary_search_by(|l| l.0.cmp(&price)),
        }
    }

    pub fn best_bid(&self) -> Option<Lvl> {
        self.bids.first().copied()
    }

    pub fn best_ask(&self) -> Option<Lvl> {
        self.asks.first().copied()
    }

    /// Best level of a side.
    pub fn best(&self, side: Side) -> Option<Lvl> {
        self.side(side).first().copied()
    }

    /// Worst (farthest) level of a side.
    pub fn worst(&self, side: Side) -> Option<Lvl> {
        self.side(side).last().copied()
    }

    /// Size at a price (0 when absent).
    pub fn get(&self, side: Side, price: i64) -> i64 {
        self.find(side, price).map_or(0, |i| self.side(side)[i].1)
    }

    /// Sets a level; `lots <= 0` removes it.
    pub fn set(&mut self, side: Side, price: i64, lots: i64) {
        let at = self.find(side, price);
        let v = self.vec_mut(side);
        let changed = match (at, lots > 0) {
            (Ok(i), true) => {
                let c = v[i].1 != lots;
                v[i].1 = lots;
                c
            }
            (Ok(i), false) => {
                v.remove(i);
                true
            }
            (Err(i), true) => {
                v.insert(i, (price, lots));
                true
            }
            (Err(_), false) => false,
        };
        if changed {
            self.version += 1;
        }
    }

    /// Number of levels on a side.
    pub fn len(&self, side: Side) -> usize {
        self.side(side).len()
    }

    /// Removes every level strictly better than `limit` on `side` (bids above, asks below).
    pub fn remove_better_than(&mut self, side: Side, limit: i64) {
        let v = self.vec_mut(side);
        let k = v.partition_point(|l| better(side, l.0, limit));
        if k > 0 {
            v.drain(..k);
            self.version += 1;
        }
    }

    /// Removes the worst levels until at most `n` remain.
    pub fn trim(&mut self, side: Side, n: usize) {
        let v = self.vec_mut(side);
        if v.len() > n {
            v.truncate(n);
            self.version += 1;
        }
    }

    /// An aggressive order of `lots` on `aggressor` side sweeps the opposite side, best first,
    /// over at most `max_levels` levels. Returns the fills `(price, lots)`.
    pub fn take(&mut self, aggressor: Side, mut lots: i64, max_levels: usize) -> Vec<Lvl> {
        let passive = aggressor.opposite();
        let mut fills = Vec::new();
        while lots > 0 && fills.len() < max_levels {
            let Some((p, q)) = self.best(passive) else { break };
            let f = q.min(lots);
            self.set(passive, p, q - f);
            fills.push((p, f));
            lots -= f;
        }
        fills
    }

    /// The best `n` levels of a side, best first.
    pub fn top(&self, side: Side, n: usize) -> &[Lvl] {
        let v = self.side(side);
        &v[..v.len().min(n)]
    }

    /// True when best bid >= best ask.
    #[cfg(test)]
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some((b, _)), Some((a, _))) if b >= a)
    }
}

/// The delta that turns view `old` into view `new` (both best first on `side`): changed or new
/// levels with their size, vanished levels with size 0, in best-first order.
pub(crate) fn diff(old: &[Lvl], new: &[Lvl], side: Side) -> Vec<Lvl> {
    // `better(a, b)`: price a comes before price b in best-first order.
    let better = |a: i64, b: i64| match side {
        Side::Buy => a > b,
        Side::Sell => a < b,
    };
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(&(po, qo)), Some(&(pn, qn))) => {
                if po == pn {
                    if qo != qn {
                        out.push((pn, qn));
                    }
                    i += 1;
                    j += 1;
                } else if better(pn, po) {
                    out.push((pn, qn));
                    j += 1;
                } else {
                    out.push((po, 0));
                    i += 1;
                }
            }
            (Some(&(po, _)), None) => {
                out.push((po, 0));
                i += 1;
            }
            (None, Some(&(pn, qn))) => {
                out.push((pn, qn));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn apply(view: &[Lvl], delta: &[Lvl], side: Side) -> Vec<Lvl> {
        let mut m: BTreeMap<i64, i64> = view.iter().copied().collect();
        for &(p, q) in delta {
            if q == 0 {
                m.remove(&p);
            } else {
                m.insert(p, q);
            }
        }
        let mut v: Vec<Lvl> = m.into_iter().collect();
        if side == Side::Buy {
            v.reverse();
        }
        v
    }

    #[test]
    fn diff_reproduces_the_new_view() {
        let old = vec![(105, 3), (104, 1), (100, 7)];
        let new = vec![(106, 2), (104, 5), (101, 1)];
        let d = diff(&old, &new, Side::Buy);
        assert_eq!(d, vec![(106, 2), (105, 0), (104, 5), (101, 1), (100, 0)]);
        assert_eq!(apply(&old, &d, Side::Buy), new);
        let old_a = vec![(10, 1), (12, 2)];
        let new_a = vec![(9, 4), (12, 2), (13, 1)];
        let d = diff(&old_a, &new_a, Side::Sell);
        assert_eq!(d, vec![(9, 4), (10, 0), (13, 1)]);
        assert_eq!(apply(&old_a, &d, Side::Sell), new_a);
        assert!(diff(&new_a, &new_a, Side::Sell).is_empty());
    }

    #[test]
    fn take_sweeps_best_first_and_removes_empty_levels() {
        let mut b = Book::default();
        b.set(Side::Sell, 101, 2);
        b.set(Side::Sell, 102, 5);
        b.set(Side::Buy, 99, 1);
        let v0 = b.version;
        let fills = b.take(Side::Buy, 4, 10);
        assert_eq!(fills, vec![(101, 2), (102, 2)]);
        assert_eq!(b.best_ask(), Some((102, 3)));
        assert!(b.version > v0);
        b.remove_better_than(Side::Sell, 103);
        assert_eq!(b.best_ask(), None);
        b.set(Side::Buy, 98, 2);
        b.set(Side::Buy, 97, 2);
        assert_eq!(b.top(Side::Buy, 2), &[(99, 1), (98, 2)]);
        b.trim(Side::Buy, 1);
        assert_eq!(b.worst(Side::Buy), Some((99, 1)));
        b.set(Side::Buy, 100, 1);
        b.remove_better_than(Side::Buy, 99);
        assert_eq!(b.best_bid(), Some((99, 1)));
        assert!(!b.is_crossed());
        b.set(Side::Sell, 99, 1);
        assert!(b.is_crossed());
    }
}
