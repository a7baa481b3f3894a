//! The simulator's own exact-tick L2 book: prices in whole ticks, sizes in whole quantity steps
//! ("lots"), both as integers, so nothing is ever rounded. Also the top-N views the depth
//! streams publish and the diff between two views (a Bybit delta).

use crate::domain::Side;
use std::collections::BTreeMap;

/// A price level: (price in ticks, size in lots).
pub(crate) type Lvl = (i64, i64);

/// Bids and asks keyed by tick. `version` changes on every mutation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Book {
    /// Bids: tick -> lots (best = highest).
    pub bids: BTreeMap<i64, i64>,
    /// Asks: tick -> lots (best = lowest).
    pub asks: BTreeMap<i64, i64>,
    /// Mutation counter.
    pub version: u64,
}

impl Book {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, i64> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The map of one side.
    pub fn side(&self, side: Side) -> &BTreeMap<i64, i64> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// Best bid.
    pub fn best_bid(&self) -> Option<Lvl> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    /// Best ask.
    pub fn best_ask(&self) -> Option<Lvl> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }

    /// Best level of a side.
    pub fn best(&self, side: Side) -> Option<Lvl> {
        match side {
            Side::Buy => self.best_bid(),
            Side::Sell => self.best_ask(),
        }
    }

    /// Worst (farthest) level of a side.
    pub fn worst(&self, side: Side) -> Option<Lvl> {
        match side {
            Side::Buy => self.bids.iter().next().map(|(p, q)| (*p, *q)),
            Side::Sell => self.asks.iter().next_back().map(|(p, q)| (*p, *q)),
        }
    }

    /// Size at a price (0 when absent).
    pub fn get(&self, side: Side, price: i64) -> i64 {
        self.side(side).get(&price).copied().unwrap_or(0)
    }

    /// Sets a level; `lots <= 0` removes it.
    pub fn set(&mut self, side: Side, price: i64, lots: i64) {
        let map = self.side_mut(side);
        let changed = if lots <= 0 { map.remove(&price).is_some() } else { map.insert(price, lots) != Some(lots) };
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
        let removed = match side {
            Side::Buy => {
                let tail = self.bids.split_off(&(limit + 1));
                !tail.is_empty()
            }
            Side::Sell => {
                let keep = self.asks.split_off(&limit);
                let removed = !self.asks.is_empty();
                self.asks = keep;
                removed
            }
        };
        if removed {
            self.version += 1;
        }
    }

    /// Removes the worst levels until at most `n` remain.
    pub fn trim(&mut self, side: Side, n: usize) {
        while self.len(side) > n {
            let Some((p, _)) = self.worst(side) else { break };
            self.set(side, p, 0);
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
    pub fn top(&self, side: Side, n: usize) -> Vec<Lvl> {
        match side {
            Side::Buy => self.bids.iter().rev().take(n).map(|(p, q)| (*p, *q)).collect(),
            Side::Sell => self.asks.iter().take(n).map(|(p, q)| (*p, *q)).collect(),
        }
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
        b.set(Side::Buy, 100, 1);
        b.remove_better_than(Side::Buy, 99);
        assert_eq!(b.best_bid(), Some((99, 1)));
        assert!(!b.is_crossed());
        b.set(Side::Sell, 99, 1);
        assert!(b.is_crossed());
    }
}
