//! One published orderbook view (`orderbook.{1|50|200|1000}`) of a symbol: its `u`, `seq`,
//! timestamps and levels, and what a publication point sends (delta, snapshot re-push or
//! nothing). Separate because Bybit's sequencing rules live here and nowhere else.

use crate::book::{diff, Book, Lvl};
use crate::wire::BookFrame;
use scalper_core::domain::Side;

/// Level-1 books are re-sent (same `u`) after this long without a change.
const DEPTH1_REPUSH_MS: i64 = 3_000;

/// One published depth stream of one symbol.
#[derive(Debug, Clone, Default)]
pub(crate) struct DepthStream {
    pub depth: usize,
    pub u: u64,
    pub bids: Vec<Lvl>,
    pub asks: Vec<Lvl>,
    pub ts: i64,
    pub cts: i64,
    pub seq: u64,
    pub(super) version: u64,
    pub(super) last_sent_ts: i64,
}

/// What one publication point of a depth stream produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// Nothing to send.
    Nothing,
    /// The view changed: `u` advanced; the delta per side.
    Changed(Vec<Lvl>, Vec<Lvl>),
    /// Level 1 unchanged for 3 s: re-send the snapshot with the same `u`.
    Repush,
}

impl DepthStream {
    /// Brings the view up to `book` at a publication point of step time `ts` / match time `cts`.
    pub(crate) fn publish(&mut self, book: &Book, ts: i64, cts: i64, seq: u64) -> Published {
        if self.version != book.version {
            self.version = book.version;
            let nb = book.top(Side::Buy, self.depth);
            let na = book.top(Side::Sell, self.depth);
            let db = diff(&self.bids, nb, Side::Buy);
            let da = diff(&self.asks, na, Side::Sell);
            if !db.is_empty() || !da.is_empty() {
                self.u += 1;
                self.bids.clear();
                self.bids.extend_from_slice(nb);
                self.asks.clear();
                self.asks.extend_from_slice(na);
                self.ts = ts.max(self.ts + 1);
                self.cts = cts.max(self.cts + 1);
                self.seq = seq;
                self.last_sent_ts = self.ts;
                return Published::Changed(db, da);
            }
        }
        if self.depth == 1 && ts - self.last_sent_ts >= DEPTH1_REPUSH_MS {
            self.ts = ts.max(self.ts + 1);
            self.last_sent_ts = self.ts;
            return Published::Repush;
        }
        Published::Nothing
    }

    /// The current view as a snapshot frame (`u` overridden when given).
    pub(super) fn snapshot_frame<'a>(&'a self, u: Option<u64>, bids: Option<&'a [Lvl]>) -> BookFrame<'a> {
        BookFrame {
            depth: self.depth,
            snapshot: true,
            ts: self.ts,
            cts: self.cts,
            u: u.unwrap_or(self.u),
            seq: self.seq,
            bids: bids.unwrap_or(&self.bids),
            asks: &self.asks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_one_is_re_pushed_after_three_quiet_seconds() {
        let mut book = Book::default();
        book.set(Side::Buy, 99, 5);
        book.set(Side::Sell, 101, 7);
        let mut ds = DepthStream { depth: 1, u: 10, ..DepthStream::default() };
        assert_eq!(ds.publish(&book, 1_000, 999, 1), Published::Changed(vec![(99, 5)], vec![(101, 7)]));
        assert_eq!((ds.u, ds.ts), (11, 1_000));
        assert_eq!(ds.publish(&book, 2_000, 1_999, 2), Published::Nothing);
        // A change below the top of a depth-1 view is no change.
        book.set(Side::Buy, 98, 1);
        assert_eq!(ds.publish(&book, 3_000, 2_999, 3), Published::Nothing);
        assert_eq!(ds.publish(&book, 4_000, 3_999, 4), Published::Repush);
        assert_eq!((ds.u, ds.ts), (11, 4_000));
        assert_eq!(ds.publish(&book, 5_000, 4_999, 5), Published::Nothing);
        book.set(Side::Sell, 101, 3);
        assert_eq!(ds.publish(&book, 5_100, 5_099, 6), Published::Changed(vec![], vec![(101, 3)]));
        assert_eq!((ds.u, ds.ts, ds.seq), (12, 5_100, 6));
        // Deeper views never re-push.
        let mut d50 = DepthStream { depth: 50, ..DepthStream::default() };
        assert!(matches!(d50.publish(&book, 0, 0, 1), Published::Changed(..)));
        assert_eq!(d50.publish(&book, 10_000, 9_999, 2), Published::Nothing);
    }
}
