//! Level-2 order book for one symbol, maintained from Bybit v5 `orderbook.{depth}.{symbol}`
//! snapshots and deltas (or REST snapshots).
//!
//! Levels are keyed by exact integer ticks (`price.raw() / tick.raw()`, an exact division by a
//! precomputed inverse), never by `f64`. Bids are keyed by `ticks`, asks by `-ticks`, so on both
//! sides the best level is the highest key and one implementation serves both. Each side is a
//! dense window of slots indexed by key offset around the touch, with an occupancy bit per slot,
//! plus a sorted `Vec` for the deep levels below it ([`window`]): a level update in the window is
//! `O(1)`, and the window follows the market (no fixed price range, any tick accepted).
//!
//! A delta is applied in `O(n + k log k)` for `k` levels on a book side of `n`: levels in the
//! window are set one by one, the ones below it are sorted once (the last occurrence of a price
//! wins, as if applied in message order) and merged into the sorted part in one pass. A message
//! carrying more levels per side than its subscribed depth allows (`depth` in a snapshot,
//! `2 × depth` in a delta: every held level deleted plus a whole new side; `depth` is the larger
//! of the update's and the book's) is refused as [`BookError::Oversized`] before anything is
//! touched, like every other level error: nothing is ever half-applied.
//!
//! Sequencing follows Bybit's rules: a snapshot replaces the book; deltas must carry
//! `u == last + 1`; a snapshot with `u == 1` is a service restart and resets the book; depth-1
//! streams may resend a snapshot with the same `u`. Any error clears the book and marks it
//! invalid until the next snapshot: the caller must resync (resubscribe / fetch a snapshot).

use crate::domain::{Price, Qty, Side, TimeMs};
use crate::market::data::{BookAction, BookUpdate, Instrument, Level};

/// Why a book update was refused. After any of the update errors the book is cleared and
/// invalid until the next accepted snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// A delta arrived before any snapshot, or after an error (the book awaits a snapshot).
    #[error("no valid snapshot: delta u={got} refused")]
    NoSnapshot {
        /// Update id of the refused delta.
        got: u64,
    },
    /// Update id not newer than the last applied one (duplicate or out of order).
    #[error("stale update: u={got} after u={last}")]
    Stale {
        /// Last applied update id.
        last: u64,
        /// Update id received.
        got: u64,
    },
    /// Update id skipped at least one message.
    #[error("gap in updates: u={got} after u={last}")]
    Gap {
        /// Last applied update id.
        last: u64,
        /// Update id received.
        got: u64,
    },
    /// A level price is not a multiple of the tick size.
    #[error("price {price} is off the tick grid {tick}")]
    OffTick {
        /// Offending price.
        price: Price,
        /// Book tick size.
        tick: Price,
    },
    /// A level with a non-positive price or a negative quantity.
    #[error("invalid level price={price} qty={qty}")]
    InvalidLevel {
        /// Level price.
        price: Price,
        /// Level quantity.
        qty: Qty,
    },
    /// After applying, best bid >= best ask (crossed or locked book).
    #[error("crossed book: bid {bid} >= ask {ask}")]
    Crossed {
        /// Best bid price.
        bid: Price,
        /// Best ask price.
        ask: Price,
    },
    /// More levels on one side than the subscribed depth allows.
    #[error("oversized book update: {levels} levels on one side, at most {max}")]
    Oversized {
        /// Levels carried by the larger side.
        levels: usize,
        /// The most allowed per side.
        max: usize,
    },
    /// Construction with a tick size <= 0.
    #[error("invalid tick size {0}")]
    InvalidTick(Price),
    /// Construction with a maximum depth of 0.
    #[error("invalid max depth {0}")]
    InvalidDepth(usize),
}

/// What kind of update was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyKind {
    /// A snapshot replaced the book.
    Snapshot,
    /// A snapshot with `u == 1` after a later id: the exchange's book service restarted.
    Restart,
    /// A snapshot with the same `u` as the last update (depth-1 keep-alive resend).
    Resend,
    /// A delta was applied.
    Delta,
}

/// Result of an accepted update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Kind of update.
    pub kind: ApplyKind,
    /// Number of levels carried by the message (both sides).
    pub levels: usize,
    /// True when the best bid or best ask (price or size) changed.
    pub touch_changed: bool,
}

mod window;

use window::{BookSide, Entry, TickDiv};

/// Level-2 order book of one symbol with exact tick-keyed levels and Bybit v5 sequencing.
///
/// `repr(C, align(64))`: what a delta reads and writes comes first and fills exactly four cache
/// lines (sequencing state and the tick divisor, then the two sides' 80-byte headers, then
/// `last_cts_ms` and `tick`); the reused buffers come last. With hundreds of books updated in
/// turn each book's header is usually out of the L1 cache, so every line saved is a miss saved.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct OrderBook {
    valid: bool,
    has_snapshot: bool,
    /// Exact division by `tick`.
    div: TickDiv,
    max_depth: usize,
    last_update_id: u64,
    seq: u64,
    bids: BookSide,
    asks: BookSide,
    last_cts_ms: Option<TimeMs>,
    tick: Price,
    /// Reused buffer of a snapshot's or a large delta's validated levels.
    scratch_delta: Vec<Entry>,
    /// Reused buffer of a book side's levels below its window ([`BookSide::set_many`], [`BookSide::load`]).
    scratch_side: Vec<Entry>,
}

/// Up to this many levels per side a delta is applied level by level with no buffer; more are
/// validated into a buffer first and applied with [`BookSide::set_many`].
const SMALL_DELTA: usize = 16;

/// Sets a delta's validated levels (`ticks[i]` is the tick index of `levels[i]`) on one side, in
/// message order. Returns the side's best level as it was before the first level at or above
/// it, or `None` when there was none: every level then landed below an untouched best (and the
/// depth cap only drops the worst levels), so the best cannot have changed and its slot, often
/// a cache line no level of the delta touches, is never loaded.
#[inline]
fn set_levels(book_side: &mut BookSide, side: Side, ticks: &[i64], levels: &[Level]) -> Option<Option<Entry>> {
    if levels.is_empty() {
        // Not even the side's header is read.
        return None;
    }
    let best_key = book_side.best_key();
    let mut before = None;
    for (&t, l) in ticks.iter().zip(levels) {
        let key = key_of(side, t);
        if before.is_none() && best_key.is_none_or(|b| key >= b) {
            before = Some(book_side.best());
        }
        book_side.set(key, l.qty);
    }
    before
}

/// Side key of a tick index: bids ascending by ticks, asks ascending by -ticks.
#[inline]
fn key_of(side: Side, ticks: i64) -> i64 {
    match side {
        Side::Buy => ticks,
        Side::Sell => -ticks,
    }
}

impl OrderBook {
    /// Empty, invalid book with the given tick size and maximum levels kept per side.
    pub fn new(tick: Price, max_depth: usize) -> Result<Self, BookError> {
        let Some(div) = TickDiv::new(tick.raw()) else {
            return Err(BookError::InvalidTick(tick));
        };
        if max_depth == 0 {
            return Err(BookError::InvalidDepth(max_depth));
        }
        Ok(OrderBook {
            tick,
            div,
            max_depth,
            bids: BookSide::new(max_depth),
            asks: BookSide::new(max_depth),
            valid: false,
            has_snapshot: false,
            last_update_id: 0,
            seq: 0,
            last_cts_ms: None,
            scratch_delta: Vec::new(),
            scratch_side: Vec::new(),
        })
    }

    /// Empty book for an instrument's tick size.
    pub fn from_instrument(inst: &Instrument, max_depth: usize) -> Result<Self, BookError> {
        OrderBook::new(inst.tick_size, max_depth)
    }

    /// Changes the tick size (Bybit tick reconfiguration): clears the book, which then awaits a
    /// snapshot.
    pub fn set_tick(&mut self, tick: Price) -> Result<(), BookError> {
        let Some(div) = TickDiv::new(tick.raw()) else {
            return Err(BookError::InvalidTick(tick));
        };
        self.tick = tick;
        self.div = div;
        self.invalidate();
        Ok(())
    }

    /// Clears the book and marks it invalid (e.g. the feed disconnected). The next snapshot
    /// is accepted whatever its update id.
    pub fn invalidate(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.valid = false;
    }

    /// Applies a snapshot or delta with Bybit v5 semantics; on error the book is cleared and
    /// invalid until the next snapshot.
    pub fn apply(&mut self, upd: &BookUpdate) -> Result<ApplyOutcome, BookError> {
        let res = match upd.action {
            BookAction::Snapshot => self.apply_snapshot(upd),
            BookAction::Delta => self.apply_delta(upd),
        };
        if res.is_err() {
            self.invalidate();
        }
        res
    }

    fn apply_snapshot(&mut self, upd: &BookUpdate) -> Result<ApplyOutcome, BookError> {
        let u = upd.update_id;
        let kind = if u == 1 && self.has_snapshot && self.last_update_id > 1 {
            ApplyKind::Restart
        } else if self.valid && u < self.last_update_id && u != 1 {
            return Err(BookError::Stale { last: self.last_update_id, got: u });
        } else if self.valid && u == self.last_update_id {
            ApplyKind::Resend
        } else {
            ApplyKind::Snapshot
        };
        self.check_size(upd, usize::from(upd.depth).max(self.max_depth))?;
        let before = self.touch();
        self.load_side(Side::Buy, &upd.bids)?;
        self.load_side(Side::Sell, &upd.asks)?;
        self.check_crossed()?;
        self.valid = true;
        self.has_snapshot = true;
        self.last_update_id = u;
        self.seq = upd.seq;
        self.last_cts_ms = upd.cts_ms;
        Ok(ApplyOutcome { kind, levels: upd.bids.len() + upd.asks.len(), touch_changed: before != self.touch() })
    }

    fn apply_delta(&mut self, upd: &BookUpdate) -> Result<ApplyOutcome, BookError> {
        let u = upd.update_id;
        if !self.valid {
            return Err(BookError::NoSnapshot { got: u });
        }
        let last = self.last_update_id;
        if u <= last {
            return Err(BookError::Stale { last, got: u });
        }
        if u != last + 1 {
            return Err(BookError::Gap { last, got: u });
        }
        self.check_size(upd, usize::from(upd.depth).max(self.max_depth).saturating_mul(2))?;
        if upd.bids.len() <= SMALL_DELTA && upd.asks.len() <= SMALL_DELTA {
            // The common case (a few levels near the touch): validate every level into a
            // stack buffer of tick indices (one division per level), then set each.
            let mut ticks = [0i64; 2 * SMALL_DELTA];
            for (t, l) in ticks.iter_mut().zip(upd.bids.iter().chain(upd.asks.iter())) {
                *t = self.ticks_of(l)?;
            }
            let (bid_ticks, ask_ticks) = ticks.split_at(upd.bids.len());
            let bids_before = set_levels(&mut self.bids, Side::Buy, bid_ticks, &upd.bids);
            let asks_before = set_levels(&mut self.asks, Side::Sell, ask_ticks, &upd.asks);
            return self.finish_delta(upd, u, [bids_before, asks_before]);
        }
        // Every level is validated before the book is touched.
        let mut delta = std::mem::take(&mut self.scratch_delta);
        delta.clear();
        for (side, levels) in [(Side::Buy, &upd.bids), (Side::Sell, &upd.asks)] {
            for l in levels.iter() {
                match self.ticks_of(l) {
                    Ok(t) => delta.push(Entry { key: key_of(side, t), qty: l.qty }),
                    Err(e) => {
                        self.scratch_delta = delta;
                        return Err(e);
                    }
                }
            }
        }
        let before = [Some(self.bids.best()), Some(self.asks.best())];
        let (bids, asks) = delta.split_at_mut(upd.bids.len());
        for (side, part) in [(Side::Buy, bids), (Side::Sell, asks)] {
            let book_side = match side {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            if part.len() <= SMALL_DELTA {
                for e in part.iter() {
                    book_side.set(e.key, e.qty);
                }
            } else {
                book_side.set_many(part, &mut self.scratch_side);
            }
        }
        self.scratch_delta = delta;
        self.finish_delta(upd, u, before)
    }

    /// The common end of a delta once its levels are in: depth cap, crossing check, sequence.
    /// `before` holds per side (bids, asks) its best level before the delta, or `None` when no
    /// level of the delta was at or above that best, so that it cannot have changed (see
    /// [`set_levels`]); only then is a side's best slot loaded.
    ///
    /// Only the sides the delta carries levels for are capped and settled (an untouched side
    /// is still within the cap and settled from the message that last changed it), and the
    /// crossing check runs only when a best may have changed (the book was uncrossed before),
    /// so a one-sided delta below the touch never loads the other side's header.
    fn finish_delta(
        &mut self,
        upd: &BookUpdate,
        u: u64,
        before: [Option<Option<Entry>>; 2],
    ) -> Result<ApplyOutcome, BookError> {
        if !upd.bids.is_empty() {
            self.bids.truncate_worst(self.max_depth);
            self.bids.settle();
        }
        if !upd.asks.is_empty() {
            self.asks.truncate_worst(self.max_depth);
            self.asks.settle();
        }
        let [bids_before, asks_before] = before;
        if bids_before.is_some() || asks_before.is_some() {
            self.check_crossed()?;
        }
        let touch_changed =
            bids_before.is_some_and(|b| b != self.bids.best()) || asks_before.is_some_and(|a| a != self.asks.best());
        self.last_update_id = u;
        self.seq = upd.seq;
        if upd.cts_ms.is_some() {
            self.last_cts_ms = upd.cts_ms;
        }
        Ok(ApplyOutcome { kind: ApplyKind::Delta, levels: upd.bids.len() + upd.asks.len(), touch_changed })
    }

    /// Refuses an update with more than `max` levels on a side.
    fn check_size(&self, upd: &BookUpdate, max: usize) -> Result<(), BookError> {
        let levels = upd.bids.len().max(upd.asks.len());
        if levels > max {
            return Err(BookError::Oversized { levels, max });
        }
        Ok(())
    }

    /// Validates a level and returns its tick index.
    #[inline]
    fn ticks_of(&self, l: &Level) -> Result<i64, BookError> {
        let p = l.price.raw();
        if p <= 0 || l.qty.raw() < 0 {
            return Err(BookError::InvalidLevel { price: l.price, qty: l.qty });
        }
        match self.div.exact(p as u64) {
            Some(t) => Ok(t as i64),
            None => Err(BookError::OffTick { price: l.price, tick: self.tick }),
        }
    }

    /// Replaces one side from snapshot levels (any order; zero sizes skipped; a repeated price
    /// keeps its last non-zero occurrence). Every level is validated before the side is touched.
    fn load_side(&mut self, side: Side, levels: &[Level]) -> Result<(), BookError> {
        let mut v = std::mem::take(&mut self.scratch_delta);
        v.clear();
        let mut res = Ok(());
        for l in levels {
            match self.ticks_of(l) {
                Ok(t) => {
                    if !l.qty.is_zero() {
                        v.push(Entry { key: key_of(side, t), qty: l.qty });
                    }
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        if res.is_ok() {
            let book_side = match side {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            book_side.load(&v, &mut self.scratch_side);
            book_side.truncate_worst(self.max_depth);
        }
        self.scratch_delta = v;
        res
    }

    /// Refuses best bid >= best ask, from the best keys alone (no level slot is loaded).
    #[inline]
    fn check_crossed(&self) -> Result<(), BookError> {
        if let (Some(b), Some(a)) = (self.bids.best_key(), self.asks.best_key()) {
            if b >= -a {
                return Err(self.crossed(b, a));
            }
        }
        Ok(())
    }

    #[cold]
    fn crossed(&self, bid_key: i64, ask_key: i64) -> BookError {
        BookError::Crossed { bid: Price::from_ticks(bid_key, self.tick), ask: Price::from_ticks(-ask_key, self.tick) }
    }

    #[inline]
    fn touch(&self) -> (Option<Entry>, Option<Entry>) {
        (self.bids.best(), self.asks.best())
    }

    #[inline]
    fn side(&self, side: Side) -> &BookSide {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    fn level_of(&self, side: Side, e: Entry) -> Level {
        let ticks = match side {
            Side::Buy => e.key,
            Side::Sell => -e.key,
        };
        Level { price: Price::from_ticks(ticks, self.tick), qty: e.qty }
    }

    /// True when the book reflects the exchange (a snapshot was applied and no error since).
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Tick size used for level keys.
    pub fn tick_size(&self) -> Price {
        self.tick
    }

    /// Maximum levels kept per side.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Update id `u` of the last accepted update (0 before any).
    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    /// Cross sequence `seq` of the last accepted update.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Matching-engine time `cts` of the last update that carried one.
    pub fn last_cts_ms(&self) -> Option<TimeMs> {
        self.last_cts_ms
    }

    /// Number of levels on a side (`Buy` = bids, `Sell` = asks).
    pub fn level_count(&self, side: Side) -> usize {
        self.side(side).len()
    }

    /// Best bid level.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best().map(|e| self.level_of(Side::Buy, e))
    }

    /// Best ask level.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best().map(|e| self.level_of(Side::Sell, e))
    }

    /// Best level of a side (`Buy` = best bid, `Sell` = best ask).
    pub fn best(&self, side: Side) -> Option<Level> {
        self.side(side).best().map(|e| self.level_of(side, e))
    }

    /// Mid price `(bid + ask) / 2`, rounded down to 10^-8 (may fall between ticks).
    pub fn mid(&self) -> Option<Price> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        let s = b.price.raw() as i128 + a.price.raw() as i128;
        Some(Price::from_raw((s.div_euclid(2)) as i64))
    }

    /// Mid price as `f64` (analytics).
    pub fn mid_f64(&self) -> Option<f64> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        Some((b.price.to_f64() + a.price.to_f64()) / 2.0)
    }

    /// Spread `ask - bid` (exact).
    pub fn spread(&self) -> Option<Price> {
        let (b, a) = (self.bids.best()?, self.asks.best()?);
        Some(Price::from_ticks(-a.key - b.key, self.tick))
    }

    /// Spread in whole ticks.
    pub fn spread_ticks(&self) -> Option<i64> {
        let (b, a) = (self.bids.best()?, self.asks.best()?);
        Some(-a.key - b.key)
    }

    /// Spread in basis points of the mid.
    pub fn spread_bps(&self) -> Option<f64> {
        let mid = self.mid_f64()?;
        let s = self.spread()?.to_f64();
        if mid <= 0.0 {
            return None;
        }
        Some(s / mid * 10_000.0)
    }

    /// Volume-weighted mid from the touch: `(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)`.
    pub fn microprice(&self) -> Option<f64> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        let (bq, aq) = (b.qty.to_f64(), a.qty.to_f64());
        if bq + aq <= 0.0 {
            return None;
        }
        Some((b.price.to_f64() * aq + a.price.to_f64() * bq) / (bq + aq))
    }

    /// The best `n` levels of a side, best first.
    pub fn top_n(&self, side: Side, n: usize) -> impl Iterator<Item = Level> + '_ {
        self.side(side).iter().take(n).map(move |e| self.level_of(side, e))
    }

    /// Total size of the best `n` levels of a side.
    pub fn depth_top_n(&self, side: Side, n: usize) -> Qty {
        Qty::from_raw(self.side(side).iter().take(n).fold(0i64, |a, e| a.saturating_add(e.qty.raw())))
    }

    /// Quote notional (price × size, USDT) of the best `n` levels of a side.
    pub fn notional_top_n(&self, side: Side, n: usize) -> f64 {
        self.top_n(side, n).map(|l| l.price.to_f64() * l.qty.to_f64()).sum()
    }

    /// Levels of a side whose price lies within `pct` percent of the mid (`0.5` = 0.5 %),
    /// best first. Empty when either side is empty.
    fn within(&self, side: Side, pct: f64) -> impl Iterator<Item = Level> + '_ {
        let limit = self.mid_f64().map(|m| match side {
            Side::Buy => m * (1.0 - pct / 100.0),
            Side::Sell => m * (1.0 + pct / 100.0),
        });
        let n = if limit.is_some() { usize::MAX } else { 0 };
        self.top_n(side, n).take_while(move |l| {
            let p = l.price.to_f64();
            match (side, limit) {
                (Side::Buy, Some(lim)) => p >= lim,
                (Side::Sell, Some(lim)) => p <= lim,
                _ => false,
            }
        })
    }

    /// Total size on a side within `pct` percent of the mid (`0.5` = 0.5 %). Zero when either
    /// side is empty.
    pub fn depth_within(&self, side: Side, pct: f64) -> Qty {
        Qty::from_raw(self.within(side, pct).fold(0i64, |a, l| a.saturating_add(l.qty.raw())))
    }

    /// Quote notional (USDT) on a side within `pct` percent of the mid.
    pub fn notional_within(&self, side: Side, pct: f64) -> f64 {
        self.within(side, pct).map(|l| l.price.to_f64() * l.qty.to_f64()).sum()
    }

    /// Size imbalance of the best `n` levels: `(bid - ask) / (bid + ask)` in [-1, 1].
    pub fn imbalance_top_n(&self, n: usize) -> Option<f64> {
        let b = self.depth_top_n(Side::Buy, n).to_f64();
        let a = self.depth_top_n(Side::Sell, n).to_f64();
        if a + b <= 0.0 {
            return None;
        }
        Some((b - a) / (b + a))
    }

    /// All levels, best first: `(bids, asks)`.
    pub fn to_levels(&self) -> (Vec<Level>, Vec<Level>) {
        (self.top_n(Side::Buy, usize::MAX).collect(), self.top_n(Side::Sell, usize::MAX).collect())
    }

    /// True when both books hold exactly the same levels (prices, sizes) on both sides,
    /// regardless of update ids and validity.
    pub fn levels_equal(&self, other: &OrderBook) -> bool {
        if self.tick == other.tick {
            return self.bids.len() == other.bids.len()
                && self.asks.len() == other.asks.len()
                && self.bids.iter().eq(other.bids.iter())
                && self.asks.iter().eq(other.asks.iter());
        }
        self.to_levels() == other.to_levels()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Symbol;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn lv(pr: &str, qt: &str) -> Level {
        Level { price: p(pr), qty: q(qt) }
    }
    fn upd(action: BookAction, u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
        BookUpdate {
            symbol: Symbol::new("BTCUSDT"),
            action,
            depth: 50,
            bids,
            asks,
            update_id: u,
            seq: u * 10,
            cts_ms: Some(1_700_000_000_000 + u as i64),
        }
    }
    fn snap(u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
        upd(BookAction::Snapshot, u, bids, asks)
    }
    fn delta(u: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookUpdate {
        upd(BookAction::Delta, u, bids, asks)
    }
    fn book() -> OrderBook {
        let mut b = OrderBook::new(p("0.5"), 50).unwrap();
        b.apply(&snap(
            100,
            vec![lv("100", "1"), lv("99.5", "2"), lv("99", "3")],
            vec![lv("100.5", "4"), lv("101", "5"), lv("101.5", "6")],
        ))
        .unwrap();
        b
    }

    #[test]
    fn touch_changed_is_exact_and_one_sided_deltas_are_checked() {
        let mut b = book();
        let mut u = 100;
        let mut d = |b: &mut OrderBook, bids: Vec<Level>, asks: Vec<Level>| {
            u += 1;
            b.apply(&delta(u, bids, asks)).map(|o| o.touch_changed)
        };
        // Below the touch on one side only: the best is never loaded and did not change.
        assert_eq!(d(&mut b, vec![lv("99", "7"), lv("98", "1")], vec![]), Ok(false));
        assert_eq!(d(&mut b, vec![], vec![lv("101.5", "0")]), Ok(false));
        // At the best with the same size, or deleted and put back as it was: unchanged.
        assert_eq!(d(&mut b, vec![lv("100", "1")], vec![]), Ok(false));
        assert_eq!(d(&mut b, vec![], vec![lv("100.5", "0"), lv("100.5", "4")]), Ok(false));
        // Below the touch first, then at it with a new size: changed.
        assert_eq!(d(&mut b, vec![lv("99.5", "9"), lv("100", "2")], vec![]), Ok(true));
        // A new best above, or the best deleted: changed.
        assert_eq!(d(&mut b, vec![], vec![lv("100.5", "0")]), Ok(true));
        assert_eq!(b.best_ask(), Some(lv("101", "5")));
        assert_eq!(d(&mut b, vec![lv("100.5", "3")], vec![]), Ok(true));
        assert_eq!(b.best_bid(), Some(lv("100.5", "3")));
        // A one-sided delta that crosses the untouched other side is refused.
        let best_ask = b.best_ask().unwrap();
        assert!(matches!(d(&mut b, vec![best_ask], vec![]), Err(BookError::Crossed { .. })));
        assert!(!b.is_valid());
    }

    #[test]
    fn hot_fields_fill_the_first_four_cache_lines() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<OrderBook>(), 64);
        assert_eq!(offset_of!(OrderBook, bids), 64);
        assert!(offset_of!(OrderBook, tick) + size_of::<Price>() <= 256);
        assert!(offset_of!(OrderBook, scratch_delta) >= offset_of!(OrderBook, tick));
    }

    #[test]
    fn snapshot_and_accessors() {
        let b = book();
        assert!(b.is_valid());
        assert_eq!(b.best_bid(), Some(lv("100", "1")));
        assert_eq!(b.best_ask(), Some(lv("100.5", "4")));
        assert_eq!(b.mid(), Some(p("100.25")));
        assert_eq!(b.spread(), Some(p("0.5")));
        assert_eq!(b.spread_ticks(), Some(1));
        let bps = b.spread_bps().unwrap();
        assert!((bps - 0.5 / 100.25 * 1e4).abs() < 1e-9);
        assert_eq!(b.level_count(Side::Buy), 3);
        assert_eq!(b.level_count(Side::Sell), 3);
        assert_eq!(b.last_update_id(), 100);
        assert_eq!(b.seq(), 1000);
        assert_eq!(b.last_cts_ms(), Some(1_700_000_000_100));
        let bids: Vec<_> = b.top_n(Side::Buy, 2).collect();
        assert_eq!(bids, vec![lv("100", "1"), lv("99.5", "2")]);
        let asks: Vec<_> = b.top_n(Side::Sell, 10).collect();
        assert_eq!(asks, vec![lv("100.5", "4"), lv("101", "5"), lv("101.5", "6")]);
        assert_eq!(b.depth_top_n(Side::Sell, 2), q("9"));
        assert!((b.notional_top_n(Side::Buy, 2) - (100.0 + 199.0)).abs() < 1e-9);
        // mid 100.25: 0.5 % → [99.74875, 100.75125]
        assert_eq!(b.depth_within(Side::Buy, 0.5), q("1"));
        assert_eq!(b.depth_within(Side::Sell, 0.5), q("4"));
        // 0.75 % → ask limit 101.0019, 1 % → bid limit 99.2475.
        assert_eq!(b.depth_within(Side::Sell, 0.75), q("9"));
        assert_eq!(b.depth_within(Side::Buy, 1.0), q("3"));
        assert_eq!(b.depth_within(Side::Buy, 50.0), q("6"));
        assert!((b.notional_within(Side::Sell, 0.75) - (100.5 * 4.0 + 101.0 * 5.0)).abs() < 1e-9);
        assert_eq!(OrderBook::new(p("1"), 5).unwrap().depth_within(Side::Buy, 1.0), Qty::ZERO);
        let imb = b.imbalance_top_n(1).unwrap();
        assert!((imb - (1.0 - 4.0) / 5.0).abs() < 1e-12);
        let mp = b.microprice().unwrap();
        assert!((mp - (100.0 * 4.0 + 100.5 * 1.0) / 5.0).abs() < 1e-9);
        assert_eq!(b.best(Side::Sell), b.best_ask());
    }

    #[test]
    fn delta_updates_inserts_and_deletes() {
        let mut b = book();
        let out = b
            .apply(&delta(101, vec![lv("100", "0"), lv("98.5", "7")], vec![lv("101", "1.5"), lv("100.5", "0")]))
            .unwrap();
        assert_eq!(out, ApplyOutcome { kind: ApplyKind::Delta, levels: 4, touch_changed: true });
        assert_eq!(b.best_bid(), Some(lv("99.5", "2")));
        assert_eq!(b.best_ask(), Some(lv("101", "1.5")));
        let (bids, asks) = b.to_levels();
        assert_eq!(bids, vec![lv("99.5", "2"), lv("99", "3"), lv("98.5", "7")]);
        assert_eq!(asks, vec![lv("101", "1.5"), lv("101.5", "6")]);
        // Deleting an absent level is fine; a far update leaves the touch alone.
        let out = b.apply(&delta(102, vec![lv("50", "0")], vec![lv("101.5", "1")])).unwrap();
        assert!(!out.touch_changed);
        assert_eq!(b.level_count(Side::Buy), 3);
        assert_eq!(b.last_update_id(), 102);
        // Improving the touch inside the spread.
        b.apply(&delta(103, vec![lv("100", "0.1")], vec![lv("100.5", "0.2")])).unwrap();
        assert_eq!(b.spread_ticks(), Some(1));
        assert_eq!(b.best_bid(), Some(lv("100", "0.1")));
    }

    #[test]
    fn delta_before_snapshot_is_refused() {
        let mut b = OrderBook::new(p("0.5"), 50).unwrap();
        assert!(!b.is_valid());
        assert_eq!(b.apply(&delta(5, vec![lv("1", "1")], vec![])), Err(BookError::NoSnapshot { got: 5 }));
        assert!(!b.is_valid());
        assert_eq!(b.level_count(Side::Buy), 0);
    }

    #[test]
    fn stale_and_duplicate_deltas_invalidate() {
        for u in [99, 100] {
            let mut b = book();
            assert_eq!(b.apply(&delta(u, vec![], vec![])), Err(BookError::Stale { last: 100, got: u }));
            assert!(!b.is_valid());
            assert_eq!(b.best_bid(), None, "book cleared after error");
            // Further deltas are refused until a snapshot.
            assert_eq!(b.apply(&delta(101, vec![], vec![])), Err(BookError::NoSnapshot { got: 101 }));
            b.apply(&snap(120, vec![lv("10", "1")], vec![lv("11", "1")])).unwrap();
            assert!(b.is_valid());
            b.apply(&delta(121, vec![], vec![])).unwrap();
        }
    }

    #[test]
    fn gap_invalidates() {
        let mut b = book();
        assert_eq!(b.apply(&delta(102, vec![], vec![])), Err(BookError::Gap { last: 100, got: 102 }));
        assert!(!b.is_valid());
        assert_eq!(b.last_update_id(), 100);
    }

    #[test]
    fn off_tick_and_invalid_levels() {
        let mut b = book();
        let e = b.apply(&delta(101, vec![lv("99.7", "1")], vec![]));
        assert_eq!(e, Err(BookError::OffTick { price: p("99.7"), tick: p("0.5") }));
        assert!(!b.is_valid());

        let mut b = book();
        let e = b.apply(&delta(101, vec![], vec![lv("101", "-1")]));
        assert_eq!(e, Err(BookError::InvalidLevel { price: p("101"), qty: q("-1") }));
        assert!(!b.is_valid());

        let mut b = book();
        let e = b.apply(&delta(101, vec![lv("0", "1")], vec![]));
        assert!(matches!(e, Err(BookError::InvalidLevel { .. })));

        let mut b = OrderBook::new(p("0.5"), 50).unwrap();
        let e = b.apply(&snap(1, vec![lv("10.25", "1")], vec![]));
        assert!(matches!(e, Err(BookError::OffTick { .. })));
        assert!(!b.is_valid());
        assert_eq!(b.level_count(Side::Buy), 0);
    }

    #[test]
    fn crossed_or_locked_invalidates() {
        let mut b = book();
        let e = b.apply(&delta(101, vec![lv("100.5", "1")], vec![]));
        assert_eq!(e, Err(BookError::Crossed { bid: p("100.5"), ask: p("100.5") }));
        assert!(!b.is_valid());

        let mut b = book();
        let e = b.apply(&delta(101, vec![], vec![lv("99.5", "1")]));
        assert_eq!(e, Err(BookError::Crossed { bid: p("100"), ask: p("99.5") }));

        let mut b = OrderBook::new(p("0.5"), 50).unwrap();
        let e = b.apply(&snap(7, vec![lv("10", "1")], vec![lv("9.5", "1")]));
        assert!(matches!(e, Err(BookError::Crossed { .. })));
        assert!(!b.is_valid());
    }

    #[test]
    fn snapshot_sequencing() {
        // u == 1 after a later id: service restart, reset and accept.
        let mut b = book();
        let out = b.apply(&snap(1, vec![lv("50", "1")], vec![lv("51", "1")])).unwrap();
        assert_eq!(out.kind, ApplyKind::Restart);
        assert!(b.is_valid());
        assert_eq!(b.last_update_id(), 1);
        assert_eq!(b.to_levels(), (vec![lv("50", "1")], vec![lv("51", "1")]));
        b.apply(&delta(2, vec![lv("49.5", "1")], vec![])).unwrap();

        // Same u resent (depth-1 keep-alive): accepted.
        let mut b = book();
        let out = b.apply(&snap(100, vec![lv("100", "9")], vec![lv("100.5", "4")])).unwrap();
        assert_eq!(out.kind, ApplyKind::Resend);
        assert!(out.touch_changed);
        assert_eq!(b.level_count(Side::Buy), 1);
        b.apply(&delta(101, vec![], vec![])).unwrap();

        // Older snapshot on a valid book: stale.
        let mut b = book();
        assert_eq!(b.apply(&snap(50, vec![], vec![])), Err(BookError::Stale { last: 100, got: 50 }));
        assert!(!b.is_valid());
        // Once invalid, any snapshot resyncs.
        let out = b.apply(&snap(50, vec![lv("1", "1")], vec![])).unwrap();
        assert_eq!(out.kind, ApplyKind::Snapshot);
        assert!(b.is_valid());

        // Newer snapshot replaces everything.
        let mut b = book();
        b.apply(&snap(500, vec![lv("90", "1")], vec![])).unwrap();
        assert_eq!(b.to_levels(), (vec![lv("90", "1")], vec![]));
    }

    #[test]
    fn depth1_snapshot_stream() {
        let mut b = OrderBook::new(p("0.1"), 1).unwrap();
        for (u, bid, ask) in [(10, "5", "5.1"), (10, "5", "5.1"), (11, "5.1", "5.2"), (11, "5.1", "5.2")] {
            b.apply(&snap(u, vec![lv(bid, "1")], vec![lv(ask, "2")])).unwrap();
            assert_eq!(b.best_bid(), Some(lv(bid, "1")));
            assert_eq!(b.best_ask(), Some(lv(ask, "2")));
        }
        assert_eq!(b.level_count(Side::Buy), 1);
    }

    #[test]
    fn depth_is_capped_keeping_the_best() {
        let mut b = OrderBook::new(p("1"), 3).unwrap();
        let bids: Vec<_> = (0..6).map(|i| lv(&(100 - i).to_string(), "1")).collect();
        let asks: Vec<_> = (0..6).map(|i| lv(&(101 + i).to_string(), "1")).collect();
        b.apply(&snap(1, bids, asks)).unwrap();
        let (bids, asks) = b.to_levels();
        assert_eq!(bids.iter().map(|l| l.price).collect::<Vec<_>>(), vec![p("100"), p("99"), p("98")]);
        assert_eq!(asks.iter().map(|l| l.price).collect::<Vec<_>>(), vec![p("101"), p("102"), p("103")]);
        // A better bid pushes out the worst; truncation happens after the whole message.
        b.apply(&delta(2, vec![lv("100.0", "2"), lv("97", "5")], vec![])).unwrap();
        assert_eq!(b.top_n(Side::Buy, 5).map(|l| l.price).collect::<Vec<_>>(), vec![p("100"), p("99"), p("98")]);
        b.apply(&delta(3, vec![lv("99", "0"), lv("97", "5")], vec![])).unwrap();
        assert_eq!(b.top_n(Side::Buy, 5).map(|l| l.price).collect::<Vec<_>>(), vec![p("100"), p("98"), p("97")]);
    }

    #[test]
    fn unsorted_snapshot_with_duplicates_is_normalised() {
        let mut b = OrderBook::new(p("1"), 10).unwrap();
        b.apply(&snap(
            3,
            vec![lv("98", "1"), lv("100", "1"), lv("98", "4"), lv("99", "0")],
            vec![lv("103", "1"), lv("101", "2")],
        ))
        .unwrap();
        assert_eq!(b.to_levels(), (vec![lv("100", "1"), lv("98", "4")], vec![lv("101", "2"), lv("103", "1")]));
    }

    #[test]
    fn construction_and_tick_change() {
        assert_eq!(OrderBook::new(Price::ZERO, 5).unwrap_err(), BookError::InvalidTick(Price::ZERO));
        assert_eq!(OrderBook::new(p("1"), 0).unwrap_err(), BookError::InvalidDepth(0));
        let mut b = book();
        b.set_tick(p("0.1")).unwrap();
        assert!(!b.is_valid());
        assert_eq!(b.tick_size(), p("0.1"));
        assert!(b.set_tick(p("-1")).is_err());
        b.apply(&snap(200, vec![lv("99.9", "1")], vec![lv("100.1", "1")])).unwrap();
        assert_eq!(b.spread_ticks(), Some(2));
    }

    #[test]
    fn levels_equal_compares_levels_only() {
        let a = book();
        let mut b = OrderBook::new(p("0.5"), 50).unwrap();
        let (bids, asks) = a.to_levels();
        b.apply(&snap(7, bids, asks)).unwrap();
        assert!(a.levels_equal(&b));
        b.apply(&delta(8, vec![lv("99", "3.5")], vec![])).unwrap();
        assert!(!a.levels_equal(&b));
    }

    #[test]
    fn oversized_updates_are_refused_before_anything_is_applied() {
        // depth 50 (the update's and the book's): a snapshot may carry 50 levels per side, a
        // delta 100.
        let ladder = |from: i64, n: i64, step: i64| -> Vec<Level> {
            (0..n).map(|i| Level { price: Price::from_ticks(from + i * step, p("0.5")), qty: q("1") }).collect()
        };
        let mut b = book();
        let e = b.apply(&delta(101, ladder(190, 101, -1), vec![]));
        assert_eq!(e, Err(BookError::Oversized { levels: 101, max: 100 }));
        assert!(!b.is_valid() && b.level_count(Side::Buy) == 0, "refused and awaiting a resync");
        assert_eq!(b.apply(&delta(102, vec![], vec![])), Err(BookError::NoSnapshot { got: 102 }));
        let mut b = OrderBook::new(p("0.5"), 50).unwrap();
        let e = b.apply(&snap(1, ladder(190, 10, -1), ladder(201, 51, 1)));
        assert_eq!(e, Err(BookError::Oversized { levels: 51, max: 50 }));
        assert!(!b.is_valid());
        // At the limits both are accepted.
        b.apply(&snap(2, ladder(200, 50, -1), ladder(201, 50, 1))).unwrap();
        b.apply(&delta(3, ladder(200, 100, -1), ladder(201, 100, 1))).unwrap();
        assert_eq!((b.level_count(Side::Buy), b.level_count(Side::Sell)), (50, 50));
        // A refused level anywhere in a large delta leaves no trace either.
        let mut b = book();
        let mut bids = ladder(190, 60, -1);
        bids[59].qty = q("-1");
        assert!(matches!(b.apply(&delta(101, bids, vec![])), Err(BookError::InvalidLevel { .. })));
        assert_eq!(b.level_count(Side::Buy), 0);
    }

    #[test]
    fn a_large_legal_delta_equals_applying_it_level_by_level() {
        // depth 1000: deltas of up to 2000 levels per side, unsorted, with repeated prices and
        // deletes, against the BTreeMap model applied in message order.
        let tick = p("0.01");
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let depth = 1000;
        let mut book = OrderBook::new(tick, depth).unwrap();
        let mut model = Model::default();
        let side = |next: &mut dyn FnMut(u64) -> u64, lo: i64, n: usize| -> Vec<(i64, i64)> {
            (0..n)
                .map(|_| (lo + next(3000) as i64, if next(4) == 0 { 0 } else { 1 + next(1_000_000) as i64 }))
                .collect()
        };
        let sb: Vec<_> = side(&mut next, 1, 1000).into_iter().filter(|l| l.1 != 0).collect();
        let sa: Vec<_> = side(&mut next, 3001, 1000).into_iter().filter(|l| l.1 != 0).collect();
        model.apply(&sb, &sa, depth);
        let mut s = snap(1, to_levels(&sb, tick), to_levels(&sa, tick));
        s.depth = depth as u16;
        book.apply(&s).unwrap();
        assert_eq!(book.to_levels(), model.levels(tick));
        for u in 2..12u64 {
            let n = 1 + next(2000) as usize;
            let (db, da) = (side(&mut next, 1, n), side(&mut next, 3001, 2000 - n + 1));
            let mut d = delta(u, to_levels(&db, tick), to_levels(&da, tick));
            d.depth = depth as u16;
            book.apply(&d).unwrap();
            model.apply(&db, &da, depth);
            assert_eq!(book.to_levels(), model.levels(tick), "after u={u}");
        }
        assert!(book.level_count(Side::Buy) > 500 && book.level_count(Side::Sell) > 500);
    }

    #[test]
    fn a_delta_at_the_size_cap_applies_in_linear_time() {
        // The largest delta any depth allows: 131 070 bid levels (2 × depth 65 535), each a
        // new level below the touch. One Vec insert per level took seconds at this size.
        let tick = p("1");
        let depth = 65_535;
        let mut b = OrderBook::new(tick, depth).unwrap();
        let mut s = snap(1, vec![lv("1", "1")], vec![lv("1000000", "1")]);
        s.depth = 65_535;
        b.apply(&s).unwrap();
        let n = 131_070;
        let bids: Vec<Level> =
            (0..n).map(|i| Level { price: Price::from_ticks(2 + 2 * i, tick), qty: q("1") }).collect();
        let mut d = delta(2, bids, vec![]);
        d.depth = 65_535;
        let started = std::time::Instant::now();
        b.apply(&d).unwrap();
        let took = started.elapsed();
        assert_eq!(b.level_count(Side::Buy), depth);
        assert_eq!(b.best_bid().map(|l| l.price), Some(Price::from_ticks(2 + 2 * (n - 1), tick)));
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    /// Reference model: BTreeMap by tick, truncated per message.
    #[derive(Default)]
    struct Model {
        bids: BTreeMap<i64, i64>,
        asks: BTreeMap<i64, i64>,
    }
    impl Model {
        fn apply(&mut self, bids: &[(i64, i64)], asks: &[(i64, i64)], depth: usize) {
            for &(t, qv) in bids {
                if qv == 0 {
                    self.bids.remove(&t);
                } else {
                    self.bids.insert(t, qv);
                }
            }
            for &(t, qv) in asks {
                if qv == 0 {
                    self.asks.remove(&t);
                } else {
                    self.asks.insert(t, qv);
                }
            }
            while self.bids.len() > depth {
                let k = *self.bids.keys().next().unwrap();
                self.bids.remove(&k);
            }
            while self.asks.len() > depth {
                let k = *self.asks.keys().next_back().unwrap();
                self.asks.remove(&k);
            }
        }
        fn levels(&self, tick: Price) -> (Vec<Level>, Vec<Level>) {
            let f = |(t, qv): (&i64, &i64)| Level { price: Price::from_ticks(*t, tick), qty: Qty::from_raw(*qv) };
            (self.bids.iter().rev().map(f).collect(), self.asks.iter().map(f).collect())
        }
    }

    fn to_levels(v: &[(i64, i64)], tick: Price) -> Vec<Level> {
        v.iter().map(|&(t, qv)| Level { price: Price::from_ticks(t, tick), qty: Qty::from_raw(qv) }).collect()
    }

    // Bids live in ticks [1, 60), asks in [60, 120): never crossed, so every delta is accepted.
    fn side_levels(lo: i64, hi: i64, max: usize) -> impl Strategy<Value = Vec<(i64, i64)>> {
        prop::collection::vec((lo..hi, prop_oneof![1 => Just(0i64), 3 => 1i64..1_000_000]), 0..max)
    }

    /// One generated message of [`far_levels_and_window_moves_match_the_model`]: snapshot or
    /// not, the centre's move, and (offset from the centre, size) per bid and ask.
    type FarMsg = (bool, i64, Vec<(i64, i64)>, Vec<(i64, i64)>);

    /// Offsets near the touch, around a window's edge and far away, so levels land in the dense
    /// window, below it and (after a jump) above it.
    fn far_side(max: usize) -> impl Strategy<Value = Vec<(i64, i64)>> {
        let off = prop_oneof![6 => 1i64..40, 2 => 150i64..700, 1 => 2_000i64..40_000];
        prop::collection::vec((off, prop_oneof![1 => Just(0i64), 3 => 1i64..1_000_000]), 0..max)
    }

    fn far_msg() -> impl Strategy<Value = FarMsg> {
        let jump = prop_oneof![6 => -3i64..=3, 2 => -400i64..=400, 1 => -6_000i64..=6_000];
        (prop::bool::weighted(0.1), jump, far_side(40), far_side(40))
    }

    /// The book's contract in a BTreeMap: snapshots (zeros skipped), deltas in message order,
    /// the depth cap, and a crossed result refused and awaiting a snapshot.
    #[derive(Default)]
    struct CheckedModel {
        book: Model,
        valid: bool,
    }
    impl CheckedModel {
        /// What the book must answer: `Ok` or the error kind's name.
        fn apply(
            &mut self,
            snapshot: bool,
            bids: &[(i64, i64)],
            asks: &[(i64, i64)],
            depth: usize,
        ) -> Result<(), &'static str> {
            if snapshot {
                self.book = Model::default();
                let nz = |v: &[(i64, i64)]| v.iter().filter(|l| l.1 != 0).copied().collect::<Vec<_>>();
                self.book.apply(&nz(bids), &nz(asks), depth);
            } else if !self.valid {
                return Err("no snapshot");
            } else {
                self.book.apply(bids, asks, depth);
            }
            if let (Some(b), Some(a)) = (self.book.bids.keys().next_back(), self.book.asks.keys().next()) {
                if b >= a {
                    self.book = Model::default();
                    self.valid = false;
                    return Err("crossed");
                }
            }
            self.valid = true;
            Ok(())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn far_levels_and_window_moves_match_the_model(
            depth in 1usize..80,
            msgs in prop::collection::vec(far_msg(), 1..60),
        ) {
            let tick = p("0.0001");
            let mut book = OrderBook::new(tick, depth).unwrap();
            let mut model = CheckedModel::default();
            let mut centre = 1_000_000i64;
            for (n, (snapshot, jump, db, da)) in msgs.iter().enumerate() {
                // The first message is always a snapshot.
                let snapshot = *snapshot || n == 0;
                centre += jump;
                let bids: Vec<(i64, i64)> = db.iter().map(|&(o, q)| (centre - o, q)).collect();
                let asks: Vec<(i64, i64)> = da.iter().map(|&(o, q)| (centre + o, q)).collect();
                let u = 10 + n as u64;
                let msg = if snapshot { snap(u, to_levels(&bids, tick), to_levels(&asks, tick)) } else { delta(u, to_levels(&bids, tick), to_levels(&asks, tick)) };
                let want = model.apply(snapshot, &bids, &asks, depth);
                let got = book.apply(&msg).map(|_| ()).map_err(|e| match e {
                    BookError::NoSnapshot { .. } => "no snapshot",
                    BookError::Crossed { .. } => "crossed",
                    _ => "other",
                });
                prop_assert_eq!(got, want, "message {}", n);
                prop_assert_eq!(book.is_valid(), model.valid);
                prop_assert_eq!(book.to_levels(), model.book.levels(tick), "message {}", n);
                prop_assert_eq!(book.best_bid(), model.book.levels(tick).0.first().copied());
                prop_assert_eq!(book.best_ask(), model.book.levels(tick).1.first().copied());
                prop_assert_eq!(book.level_count(Side::Buy), model.book.bids.len());
                prop_assert_eq!(book.level_count(Side::Sell), model.book.asks.len());
                prop_assert_eq!(book.depth_top_n(Side::Buy, 3), Qty::from_raw(model.book.bids.values().rev().take(3).sum()));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn deltas_equal_rebuild_from_snapshot(
            depth in 1usize..12,
            init_b in side_levels(1, 60, 20),
            init_a in side_levels(60, 120, 20),
            deltas in prop::collection::vec((side_levels(1, 60, 8), side_levels(60, 120, 8)), 0..40),
        ) {
            let tick = p("0.01");
            let mut book = OrderBook::new(tick, depth).unwrap();
            let mut model = Model::default();
            // Snapshot: zero sizes are skipped, a repeated price keeps its last occurrence.
            let sb: Vec<_> = init_b.iter().filter(|l| l.1 != 0).copied().collect();
            let sa: Vec<_> = init_a.iter().filter(|l| l.1 != 0).copied().collect();
            model.apply(&sb, &sa, depth);
            book.apply(&snap(1000, to_levels(&init_b, tick), to_levels(&init_a, tick))).unwrap();
            prop_assert_eq!(book.to_levels(), model.levels(tick));
            let mut u = 1000;
            for (db, da) in &deltas {
                u += 1;
                book.apply(&delta(u, to_levels(db, tick), to_levels(da, tick))).unwrap();
                model.apply(db, da, depth);
                prop_assert_eq!(book.to_levels(), model.levels(tick));
                prop_assert!(book.level_count(Side::Buy) <= depth && book.level_count(Side::Sell) <= depth);
            }
            // Rebuilding from the final state as a snapshot gives the same book.
            let (bids, asks) = book.to_levels();
            let mut rebuilt = OrderBook::new(tick, depth).unwrap();
            rebuilt.apply(&snap(u, bids, asks)).unwrap();
            prop_assert!(rebuilt.levels_equal(&book));
            prop_assert_eq!(rebuilt.best_bid(), book.best_bid());
            prop_assert_eq!(rebuilt.best_ask(), book.best_ask());
            prop_assert_eq!(book.last_update_id(), u);
        }
    }
}
