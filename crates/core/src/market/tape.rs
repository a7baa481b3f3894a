//! Trade tape: a fixed-capacity ring of the most recent public trades of one symbol.
//!
//! Trades are kept in time order (oldest first internally); a trade older than the newest one
//! already stored is refused and counted, so time-window queries can binary-search. The ring never
//! grows past its capacity: when full, the oldest trade is dropped.

use crate::domain::{Price, Qty, Side, TimeMs};
use crate::market::data::Trade;
use std::collections::VecDeque;

/// One trade as kept on the tape (compact, `Copy`: no trade id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapePrint {
    /// Fill time, ms.
    pub ts_ms: TimeMs,
    pub price: Price,
    pub qty: Qty,
    /// Taker side.
    pub aggressor: Side,
}

impl From<&Trade> for TapePrint {
    fn from(t: &Trade) -> Self {
        TapePrint { ts_ms: t.ts_ms, price: t.price, qty: t.qty, aggressor: t.aggressor }
    }
}

/// Aggregated taker volume over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapeVolume {
    /// Volume bought by takers.
    pub buy: Qty,
    /// Volume sold by takers.
    pub sell: Qty,
    /// Number of trades.
    pub count: usize,
}

impl TapeVolume {
    /// Total volume.
    pub fn total(&self) -> Qty {
        Qty::from_raw(self.buy.raw().saturating_add(self.sell.raw()))
    }
    /// Taker delta `buy - sell` (signed).
    pub fn delta(&self) -> Qty {
        Qty::from_raw(self.buy.raw().saturating_sub(self.sell.raw()))
    }
}

/// Ring buffer of the last N trades of one symbol.
#[derive(Debug, Clone)]
pub struct Tape {
    buf: VecDeque<TapePrint>,
    cap: usize,
    out_of_order: u64,
    invalid: u64,
    last_dropped_ts: Option<TimeMs>,
}

impl Tape {
    /// Empty tape holding at most `capacity` trades (at least 1).
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(1);
        Tape { buf: VecDeque::with_capacity(cap), cap, out_of_order: 0, invalid: 0, last_dropped_ts: None }
    }

    /// Adds a trade. Returns false (and counts it) when it is older than the newest stored trade
    /// or has a non-positive price or size.
    pub fn push(&mut self, t: &Trade) -> bool {
        self.push_print(TapePrint::from(t))
    }

    /// Adds a compact trade; same rules as [`Tape::push`].
    pub fn push_print(&mut self, p: TapePrint) -> bool {
        if p.price.raw() <= 0 || p.qty.raw() <= 0 {
            self.invalid += 1;
            return false;
        }
        if let Some(last) = self.buf.back() {
            if p.ts_ms < last.ts_ms {
                self.out_of_order += 1;
                return false;
            }
        }
        if self.buf.len() == self.cap {
            if let Some(old) = self.buf.pop_front() {
                self.last_dropped_ts = Some(old.ts_ms);
            }
        }
        self.buf.push_back(p);
        true
    }

    /// Adds trades in order; returns how many were accepted.
    pub fn extend<'a>(&mut self, trades: impl IntoIterator<Item = &'a Trade>) -> usize {
        trades.into_iter().map(|t| self.push(t)).filter(|ok| *ok).count()
    }

    /// Prefetches the newest trade (read for the mark price on every event; see
    /// [`crate::engine::prefetch`]).
    #[inline]
    pub fn prefetch(&self) {
        if let Some(p) = self.buf.back() {
            crate::engine::prefetch::value(p);
        }
    }

    /// Number of stored trades.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no trade is stored.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Maximum number of stored trades.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Trades refused because they were older than the newest stored one.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Trades refused for a non-positive price or size.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Removes every trade (counters are kept).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.last_dropped_ts = None;
    }

    /// Newest trade.
    pub fn last(&self) -> Option<&TapePrint> {
        self.buf.back()
    }

    /// Price of the newest trade.
    pub fn last_price(&self) -> Option<Price> {
        self.buf.back().map(|p| p.price)
    }

    /// Oldest stored trade.
    pub fn oldest(&self) -> Option<&TapePrint> {
        self.buf.front()
    }

    /// All stored trades, newest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &TapePrint> + DoubleEndedIterator + '_ {
        self.buf.iter().rev()
    }

    /// Stored trades with `ts_ms >= t_ms`, newest first.
    pub fn since(&self, t_ms: TimeMs) -> impl ExactSizeIterator<Item = &TapePrint> + DoubleEndedIterator + '_ {
        let start = self.buf.partition_point(|p| p.ts_ms < t_ms);
        self.buf.range(start..).rev()
    }

    /// True when the tape still holds every accepted trade with `ts_ms >= t_ms` (no such trade
    /// was dropped by the ring), so window sums since `t_ms` are exact.
    pub fn is_complete_since(&self, t_ms: TimeMs) -> bool {
        self.last_dropped_ts.is_none_or(|d| d < t_ms)
    }

    /// Number of trades with `ts_ms >= t_ms`.
    pub fn count_since(&self, t_ms: TimeMs) -> usize {
        self.since(t_ms).len()
    }

    /// Taker buy / sell volume and count of trades with `ts_ms >= t_ms`.
    pub fn volume_since(&self, t_ms: TimeMs) -> TapeVolume {
        let mut v = TapeVolume::default();
        let (mut buy, mut sell) = (0i64, 0i64);
        for p in self.since(t_ms) {
            match p.aggressor {
                Side::Buy => buy = buy.saturating_add(p.qty.raw()),
                Side::Sell => sell = sell.saturating_add(p.qty.raw()),
            }
            v.count += 1;
        }
        v.buy = Qty::from_raw(buy);
        v.sell = Qty::from_raw(sell);
        v
    }

    /// Taker buy volume of trades with `ts_ms >= t_ms`.
    pub fn buy_volume_since(&self, t_ms: TimeMs) -> Qty {
        self.volume_since(t_ms).buy
    }

    /// Taker sell volume of trades with `ts_ms >= t_ms`.
    pub fn sell_volume_since(&self, t_ms: TimeMs) -> Qty {
        self.volume_since(t_ms).sell
    }

    /// Volume-weighted average price of trades with `ts_ms >= t_ms`.
    pub fn vwap_since(&self, t_ms: TimeMs) -> Option<f64> {
        let (mut pq, mut qs) = (0.0f64, 0.0f64);
        for p in self.since(t_ms) {
            let q = p.qty.to_f64();
            pq += p.price.to_f64() * q;
            qs += q;
        }
        if qs > 0.0 {
            Some(pq / qs)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::q;

    fn tr(ts: TimeMs, price: &str, qty: &str, side: Side) -> Trade {
        Trade {
            ts_ms: ts,
            price: Price::parse(price).unwrap(),
            qty: Qty::parse(qty).unwrap(),
            aggressor: side,
            id: format!("t{ts}"),
            block_trade: false,
            rpi: false,
        }
    }

    #[test]
    fn ring_keeps_last_n_newest_first() {
        let mut t = Tape::new(3);
        assert!(t.is_empty());
        assert_eq!(t.last_price(), None);
        for i in 0..5 {
            assert!(t.push(&tr(1000 + i, &format!("{}", 100 + i), "1", Side::Buy)));
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.capacity(), 3);
        let ts: Vec<_> = t.iter().map(|p| p.ts_ms).collect();
        assert_eq!(ts, vec![1004, 1003, 1002]);
        assert_eq!(t.last_price(), Some(Price::parse("104").unwrap()));
        assert_eq!(t.oldest().map(|p| p.ts_ms), Some(1002));
        assert!(t.buf.capacity() >= 3);
        // Drops tracked: window since 1002 is complete, since 1001 is not.
        assert!(t.is_complete_since(1002));
        assert!(!t.is_complete_since(1001));
    }

    #[test]
    fn never_grows_past_capacity() {
        let mut t = Tape::new(1000);
        let cap_before = t.buf.capacity();
        for i in 0..10_000 {
            t.push(&tr(i, "1", "1", Side::Sell));
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.buf.capacity(), cap_before);
        assert_eq!(Tape::new(0).capacity(), 1);
    }

    #[test]
    fn window_queries() {
        let mut t = Tape::new(100);
        let n = t.extend(&[
            tr(1000, "10", "1", Side::Buy),
            tr(2000, "11", "2", Side::Sell),
            tr(2000, "12", "3", Side::Buy),
            tr(3000, "13", "4", Side::Sell),
        ]);
        assert_eq!(n, 4);
        assert_eq!(t.count_since(2000), 3);
        assert_eq!(t.count_since(2001), 1);
        assert_eq!(t.count_since(0), 4);
        assert_eq!(t.count_since(3001), 0);
        let v = t.volume_since(2000);
        assert_eq!(v, TapeVolume { buy: q("3"), sell: q("6"), count: 3 });
        assert_eq!(v.total(), q("9"));
        assert_eq!(v.delta(), q("-3"));
        assert_eq!(t.buy_volume_since(0), q("4"));
        assert_eq!(t.sell_volume_since(2500), q("4"));
        let since: Vec<_> = t.since(2000).map(|p| p.price.to_string()).collect();
        assert_eq!(since, vec!["13", "12", "11"]);
        let vwap = t.vwap_since(2000).unwrap();
        assert!((vwap - (22.0 + 36.0 + 52.0) / 9.0).abs() < 1e-12);
        assert_eq!(t.vwap_since(5000), None);
        assert!(t.is_complete_since(0));
    }

    #[test]
    fn refuses_out_of_order_and_invalid() {
        let mut t = Tape::new(10);
        assert!(t.push(&tr(2000, "10", "1", Side::Buy)));
        assert!(!t.push(&tr(1999, "10", "1", Side::Buy)));
        assert!(t.push(&tr(2000, "10", "1", Side::Buy)));
        assert!(!t.push(&tr(2001, "0", "1", Side::Buy)));
        assert!(!t.push(&tr(2001, "10", "0", Side::Buy)));
        assert_eq!(t.out_of_order(), 1);
        assert_eq!(t.invalid(), 2);
        assert_eq!(t.len(), 2);
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.out_of_order(), 1);
    }
}
