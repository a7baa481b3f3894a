//! Micro-candles (1 s, 3 s, 5 s, 15 s) built from public trades of one symbol.
//!
//! Candles are aligned to the Unix epoch: a candle of length `L` covers `[k·L, (k+1)·L)` ms
//! (`end_ms` is exclusive). A candle closes when a trade at or after its `end_ms` arrives, or when
//! [`CandleSet::on_time`] is called with `now_ms >= end_ms + close_grace_ms`.
//!
//! **Empty intervals produce no candle**: a series has gaps where nothing traded (consumers
//! that need a continuous series treat a gap as a flat, zero-volume candle at the previous close).
//! This keeps every call O(number of intervals), however much time passed.
//!
//! A trade older than the open candle of any interval (or older than the end of a candle already
//! closed) is out of order: it is counted and ignored, so all intervals always see the same trades.

use crate::domain::{Price, Qty, Side, TimeMs};
use crate::market::data::Trade;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Candle length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    /// 1 second.
    #[serde(rename = "1s")]
    S1,
    /// 3 seconds.
    #[serde(rename = "3s")]
    S3,
    /// 5 seconds.
    #[serde(rename = "5s")]
    S5,
    /// 15 seconds.
    #[serde(rename = "15s")]
    S15,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 4] = [Interval::S1, Interval::S3, Interval::S5, Interval::S15];

    /// Length in milliseconds.
    pub const fn ms(self) -> i64 {
        match self {
            Interval::S1 => 1_000,
            Interval::S3 => 3_000,
            Interval::S5 => 5_000,
            Interval::S15 => 15_000,
        }
    }

    /// Position in [`Interval::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Interval::S1 => 0,
            Interval::S3 => 1,
            Interval::S5 => 2,
            Interval::S15 => 3,
        }
    }

    /// Label: `"1s"`, `"3s"`, `"5s"`, `"15s"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::S3 => "3s",
            Interval::S5 => "5s",
            Interval::S15 => "15s",
        }
    }

    /// Epoch-aligned start of the interval containing `ts_ms`.
    pub fn start_of(self, ts_ms: TimeMs) -> TimeMs {
        ts_ms.div_euclid(self.ms()) * self.ms()
    }
}

/// One closed (or open) candle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Candle length.
    pub interval: Interval,
    /// Start time (inclusive), ms, a multiple of the interval length.
    pub start_ms: TimeMs,
    /// End time (exclusive), `start_ms + interval.ms()`.
    pub end_ms: TimeMs,
    /// First trade price.
    pub open: Price,
    /// Highest trade price.
    pub high: Price,
    /// Lowest trade price.
    pub low: Price,
    /// Last trade price.
    pub close: Price,
    /// Total traded size.
    pub volume: Qty,
    /// Size bought by takers.
    pub buy_volume: Qty,
    /// Size sold by takers.
    pub sell_volume: Qty,
    /// `buy_volume - sell_volume` (signed).
    pub delta: Qty,
    /// Number of trades.
    pub trades: u32,
}

impl Candle {
    fn open_with(interval: Interval, ts_ms: TimeMs, price: Price) -> Candle {
        let start_ms = interval.start_of(ts_ms);
        Candle {
            interval,
            start_ms,
            end_ms: start_ms.saturating_add(interval.ms()),
            open: price,
            high: price,
            low: price,
            close: price,
            volume: Qty::ZERO,
            buy_volume: Qty::ZERO,
            sell_volume: Qty::ZERO,
            delta: Qty::ZERO,
            trades: 0,
        }
    }

    fn add(&mut self, price: Price, qty: Qty, side: Side) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.close = price;
        let q = qty.raw();
        self.volume = Qty::from_raw(self.volume.raw().saturating_add(q));
        match side {
            Side::Buy => self.buy_volume = Qty::from_raw(self.buy_volume.raw().saturating_add(q)),
            Side::Sell => self.sell_volume = Qty::from_raw(self.sell_volume.raw().saturating_add(q)),
        }
        self.delta = Qty::from_raw(self.buy_volume.raw().saturating_sub(self.sell_volume.raw()));
        self.trades = self.trades.saturating_add(1);
    }

    /// `high - low`.
    pub fn range(&self) -> Price {
        Price::from_raw(self.high.raw() - self.low.raw())
    }

    /// `close - open` (signed).
    pub fn change(&self) -> Price {
        Price::from_raw(self.close.raw() - self.open.raw())
    }
}

/// One interval's open candle and ring of recent closed candles.
#[derive(Debug, Clone)]
struct Series {
    interval: Interval,
    current: Option<Candle>,
    closed: VecDeque<Candle>,
    /// End of the last closed candle (trades before it are out of order).
    closed_end_ms: TimeMs,
}

impl Series {
    fn push_closed(&mut self, c: Candle, cap: usize) {
        if self.closed.len() == cap {
            self.closed.pop_front();
        }
        self.closed.push_back(c);
        self.closed_end_ms = c.end_ms;
    }

    /// Earliest trade time this series still accepts.
    fn watermark(&self) -> TimeMs {
        match &self.current {
            Some(c) => c.start_ms,
            None => self.closed_end_ms,
        }
    }
}

/// Micro-candles at every [`Interval`] for one symbol, with a bounded ring of recent closed
/// candles per interval.
#[derive(Debug, Clone)]
pub struct CandleSet {
    series: [Series; 4],
    ring_capacity: usize,
    close_grace_ms: i64,
    out_of_order: u64,
    invalid: u64,
}

impl CandleSet {
    /// Empty set keeping `ring_capacity` (at least 1) closed candles per interval; `on_time`
    /// closes a candle only once `now_ms >= end_ms + close_grace_ms` (grace >= 0, lets late
    /// trades arrive when `now` is a local receive time).
    pub fn new(ring_capacity: usize, close_grace_ms: i64) -> Self {
        let cap = ring_capacity.max(1);
        let series = Interval::ALL.map(|interval| Series {
            interval,
            current: None,
            closed: VecDeque::with_capacity(cap),
            closed_end_ms: TimeMs::MIN,
        });
        CandleSet { series, ring_capacity: cap, close_grace_ms: close_grace_ms.max(0), out_of_order: 0, invalid: 0 }
    }

    /// Adds a trade; returns the candles it closed (shortest interval first, at most one per
    /// interval). Out-of-order or invalid trades are counted and ignored.
    pub fn on_trade(&mut self, t: &Trade) -> Vec<Candle> {
        self.on_print(t.ts_ms, t.price, t.qty, t.aggressor)
    }

    /// Same as [`CandleSet::on_trade`] from the trade's fields.
    pub fn on_print(&mut self, ts_ms: TimeMs, price: Price, qty: Qty, side: Side) -> Vec<Candle> {
        if price.raw() <= 0 || qty.raw() <= 0 {
            self.invalid += 1;
            return Vec::new();
        }
        if self.series.iter().any(|s| ts_ms < s.watermark()) {
            self.out_of_order += 1;
            return Vec::new();
        }
        let mut out = Vec::new();
        let cap = self.ring_capacity;
        for s in &mut self.series {
            if let Some(c) = s.current {
                if ts_ms >= c.end_ms {
                    s.push_closed(c, cap);
                    s.current = None;
                    out.push(c);
                }
            }
            s.current.get_or_insert_with(|| Candle::open_with(s.interval, ts_ms, price)).add(price, qty, side);
        }
        out
    }

    /// Advances time: closes every open candle with `end_ms + close_grace_ms <= now_ms` and
    /// returns them (shortest interval first).
    pub fn on_time(&mut self, now_ms: TimeMs) -> Vec<Candle> {
        let mut out = Vec::new();
        let cap = self.ring_capacity;
        for s in &mut self.series {
            if let Some(c) = s.current {
                if c.end_ms.saturating_add(self.close_grace_ms) <= now_ms {
                    s.push_closed(c, cap);
                    s.current = None;
                    out.push(c);
                }
            }
        }
        out
    }

    /// The open (not yet closed) candle of an interval.
    pub fn current(&self, interval: Interval) -> Option<&Candle> {
        self.series[interval.index()].current.as_ref()
    }

    /// Recent closed candles of an interval, newest first.
    pub fn recent(&self, interval: Interval) -> impl ExactSizeIterator<Item = &Candle> + DoubleEndedIterator + '_ {
        self.series[interval.index()].closed.iter().rev()
    }

    /// Newest closed candle of an interval.
    pub fn last_closed(&self, interval: Interval) -> Option<&Candle> {
        self.series[interval.index()].closed.back()
    }

    /// Number of closed candles kept for an interval.
    pub fn closed_len(&self, interval: Interval) -> usize {
        self.series[interval.index()].closed.len()
    }

    /// Maximum closed candles kept per interval.
    pub fn ring_capacity(&self) -> usize {
        self.ring_capacity
    }

    /// Grace applied by [`CandleSet::on_time`].
    pub fn close_grace_ms(&self) -> i64 {
        self.close_grace_ms
    }

    /// Trades ignored because they were older than an open or closed candle.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Trades ignored for a non-positive price or size.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::q;

    fn pr(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn tr(ts: TimeMs, price: &str, qty: &str, side: Side) -> Trade {
        Trade {
            ts_ms: ts,
            price: pr(price),
            qty: q(qty),
            aggressor: side,
            id: String::new(),
            block_trade: false,
            rpi: false,
        }
    }

    #[test]
    fn builds_ohlcv_and_closes_on_next_trade() {
        let mut cs = CandleSet::new(300, 0);
        let base = 1_699_999_995_000; // multiple of 15 s
        assert!(cs.on_trade(&tr(base + 100, "100", "1", Side::Buy)).is_empty());
        assert!(cs.on_trade(&tr(base + 200, "102", "2", Side::Sell)).is_empty());
        assert!(cs.on_trade(&tr(base + 300, "99", "0.5", Side::Buy)).is_empty());
        assert!(cs.on_trade(&tr(base + 999, "101", "1", Side::Sell)).is_empty());
        let cur = *cs.current(Interval::S1).unwrap();
        assert_eq!(cur.start_ms, base);
        assert_eq!(cur.end_ms, base + 1000);
        assert_eq!((cur.open, cur.high, cur.low, cur.close), (pr("100"), pr("102"), pr("99"), pr("101")));
        assert_eq!(cur.volume, q("4.5"));
        assert_eq!(cur.buy_volume, q("1.5"));
        assert_eq!(cur.sell_volume, q("3"));
        assert_eq!(cur.delta, q("-1.5"));
        assert_eq!(cur.trades, 4);
        assert_eq!(cur.range(), pr("3"));
        assert_eq!(cur.change(), pr("1"));
        // A trade exactly at end_ms belongs to the next candle and closes only the 1 s one.
        let closed = cs.on_trade(&tr(base + 1000, "103", "1", Side::Buy));
        assert_eq!(closed, vec![cur]);
        assert_eq!(cs.last_closed(Interval::S1), Some(&cur));
        assert_eq!(cs.current(Interval::S1).unwrap().open, pr("103"));
        let c3 = cs.current(Interval::S3).unwrap();
        assert_eq!((c3.trades, c3.close, c3.high), (5, pr("103"), pr("103")));
        assert_eq!(cs.closed_len(Interval::S3), 0);
    }

    #[test]
    fn closes_on_epoch_boundaries_per_interval() {
        let mut cs = CandleSet::new(300, 0);
        cs.on_trade(&tr(14_500, "10", "1", Side::Buy));
        // 15 000 is a boundary of every interval.
        let closed = cs.on_trade(&tr(15_000, "11", "1", Side::Buy));
        let got: Vec<_> = closed.iter().map(|c| (c.interval, c.start_ms, c.end_ms)).collect();
        assert_eq!(
            got,
            vec![
                (Interval::S1, 14_000, 15_000),
                (Interval::S3, 12_000, 15_000),
                (Interval::S5, 10_000, 15_000),
                (Interval::S15, 0, 15_000),
            ]
        );
        // 18 000: 1 s and 3 s close, 5 s and 15 s stay open.
        let closed = cs.on_trade(&tr(18_000, "12", "1", Side::Buy));
        assert_eq!(closed.iter().map(|c| c.interval).collect::<Vec<_>>(), vec![Interval::S1, Interval::S3]);
        assert_eq!(cs.current(Interval::S5).unwrap().trades, 2);
    }

    #[test]
    fn empty_intervals_produce_no_candle() {
        let mut cs = CandleSet::new(300, 0);
        cs.on_trade(&tr(1_100, "10", "1", Side::Buy));
        let closed = cs.on_trade(&tr(7_300, "10", "1", Side::Buy));
        let s1: Vec<_> = closed.iter().filter(|c| c.interval == Interval::S1).collect();
        assert_eq!(s1.len(), 1);
        assert_eq!(s1[0].start_ms, 1_000);
        assert_eq!(cs.current(Interval::S1).unwrap().start_ms, 7_000);
        assert_eq!(cs.closed_len(Interval::S1), 1);
    }

    #[test]
    fn on_time_closes_with_grace() {
        let mut cs = CandleSet::new(300, 200);
        cs.on_trade(&tr(500, "10", "1", Side::Buy));
        assert!(cs.on_time(1_000).is_empty(), "grace not elapsed");
        assert!(cs.on_time(1_199).is_empty());
        // Late trade inside the grace still counts.
        assert!(cs.on_trade(&tr(900, "11", "1", Side::Sell)).is_empty());
        let closed = cs.on_time(1_200);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].interval, Interval::S1);
        assert_eq!(closed[0].trades, 2);
        assert_eq!(closed[0].delta, q("0"));
        assert!(cs.current(Interval::S1).is_none());
        // Nothing open for 1 s: calling again closes nothing.
        assert!(cs.on_time(2_500).is_empty());
        // 15 s candle closes at 15 000 + grace.
        assert_eq!(
            cs.on_time(15_200).iter().map(|c| c.interval).collect::<Vec<_>>(),
            vec![Interval::S3, Interval::S5, Interval::S15]
        );
        assert!(cs.on_time(i64::MAX).is_empty());
    }

    #[test]
    fn out_of_order_trades_are_counted_and_ignored() {
        let mut cs = CandleSet::new(300, 0);
        cs.on_trade(&tr(5_500, "10", "1", Side::Buy));
        // Older than the open 1 s candle (which started at 5 000): ignored for every interval.
        assert!(cs.on_trade(&tr(4_999, "99", "1", Side::Buy)).is_empty());
        assert_eq!(cs.out_of_order(), 1);
        assert_eq!(cs.current(Interval::S15).unwrap().trades, 1);
        assert_eq!(cs.current(Interval::S15).unwrap().high, pr("10"));
        // Inside the open candle but earlier than the previous trade: accepted.
        cs.on_trade(&tr(5_100, "9", "1", Side::Buy));
        assert_eq!(cs.current(Interval::S1).unwrap().trades, 2);
        // After on_time closed the 1 s candle, trades before its end are out of order.
        cs.on_time(6_000);
        assert!(cs.on_trade(&tr(5_900, "10", "1", Side::Buy)).is_empty());
        assert_eq!(cs.out_of_order(), 2);
        assert_eq!(cs.current(Interval::S5).unwrap().trades, 2);
        // Invalid trades.
        cs.on_trade(&tr(7_000, "0", "1", Side::Buy));
        cs.on_trade(&tr(7_000, "1", "0", Side::Buy));
        assert_eq!(cs.invalid(), 2);
        // Extreme timestamps never panic.
        cs.on_trade(&tr(i64::MAX, "1", "1", Side::Buy));
        cs.on_trade(&tr(i64::MIN, "1", "1", Side::Buy));
    }

    #[test]
    fn ring_is_bounded() {
        let mut cs = CandleSet::new(5, 0);
        for i in 0..20 {
            cs.on_trade(&tr(i * 1_000, &format!("{}", 100 + i), "1", Side::Buy));
        }
        assert_eq!(cs.closed_len(Interval::S1), 5);
        assert_eq!(cs.ring_capacity(), 5);
        let starts: Vec<_> = cs.recent(Interval::S1).map(|c| c.start_ms).collect();
        assert_eq!(starts, vec![18_000, 17_000, 16_000, 15_000, 14_000]);
        assert_eq!(cs.recent(Interval::S15).len(), 1);
    }

    #[test]
    fn candle_serde_round_trip() {
        let mut cs = CandleSet::new(10, 0);
        cs.on_trade(&tr(100, "1.5", "2", Side::Sell));
        let c = cs.on_time(5_000)[0];
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"interval\":\"1s\""), "{json}");
        assert!(json.contains("\"open\":\"1.5\""), "{json}");
        assert!(json.contains("\"delta\":\"-2\""), "{json}");
        let back: Candle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
