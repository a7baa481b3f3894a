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

/// Most level changes a [`BookChanges`] lists: two sides of a small delta.
const MAX_CHANGES: usize = 2 * SMALL_DELTA;

/// One level's size change made by an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelChange {
    pub side: Side,
    /// Price in ticks of the book's tick size.
    pub ticks: i64,
    /// Size before the update (zero: the level was absent).
    pub old: Qty,
    /// Size after the update (zero: the level was deleted).
    pub new: Qty,
}

/// The level changes of the last update applied with [`OrderBook::apply_tracked`], so that a
/// reader can keep book figures up to date from what changed instead of rescanning the book
/// (`features::imbalance::ZoneTracker`). Lists a delta of up to 16 levels a side whose levels
/// all stayed within the depth cap; anything else (a snapshot, a larger delta, a level dropped
/// by the cap, a refused update) leaves it incomplete, and the reader must rescan. A level
/// set twice in one message appears twice, in message order. Reused from update to update
/// (no allocation).
#[derive(Debug, Clone)]
pub struct BookChanges {
    complete: bool,
    from_u: u64,
    to_u: u64,
    len: usize,
    changes: [LevelChange; MAX_CHANGES],
}

impl Default for BookChanges {
    fn default() -> Self {
        BookChanges {
            complete: false,
            from_u: 0,
            to_u: 0,
            len: 0,
            changes: [LevelChange { side: Side::Buy, ticks: 0, old: Qty::ZERO, new: Qty::ZERO }; MAX_CHANGES],
        }
    }
}

impl BookChanges {
    /// Every size change of the last update, taking the book from update id `from_u` to `to_u`
    /// (see [`BookChanges::span`]), or `None` when the update was not fully listed.
    pub fn changes(&self) -> Option<&[LevelChange]> {
        self.complete.then(|| &self.changes[..self.len])
    }

    /// The book's update id before and after the listed update.
    pub fn span(&self) -> (u64, u64) {
        (self.from_u, self.to_u)
    }

    /// Forgets the last update (nothing listed).
    pub fn clear(&mut self) {
        self.complete = false;
        self.len = 0;
    }

    #[inline]
    fn push(&mut self, c: LevelChange) {
        if self.len < MAX_CHANGES {
            self.changes[self.len] = c;
            self.len += 1;
        } else {
            self.complete = false;
        }
    }
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
///
/// Each size change is listed in `track` when given.
#[inline]
fn set_levels(
    book_side: &mut BookSide,
    side: Side,
    ticks: &[i64],
    levels: &[Level],
    mut track: Option<&mut BookChanges>,
) -> Option<Option<Entry>> {
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
        let old = book_side.set(key, l.qty);
        if let Some(c) = track.as_deref_mut() {
            if old != l.qty {
                c.push(LevelChange { side, ticks: t, old, new: l.qty });
            }
        }
    }
    before
}

/// Side key of a tick index: bids ascending by ticks, asks ascending by -ticks (on both sides
/// a larger key is nearer the touch).
#[inline]
pub fn key_of(side: Side, ticks: i64) -> i64 {
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
        self.apply_listing(upd, None)
    }

    /// [`OrderBook::apply`], listing the level changes in `changes` (overwritten: complete
    /// only for an accepted small delta that the depth cap left whole).
    pub fn apply_tracked(&mut self, upd: &BookUpdate, changes: &mut BookChanges) -> Result<ApplyOutcome, BookError> {
        changes.clear();
        changes.from_u = self.last_update_id;
        let res = self.apply_listing(upd, Some(&mut *changes));
        if res.is_err() {
            changes.clear();
        }
        changes.to_u = self.last_update_id;
        res
    }

    /// Applies `upd`, listing a delta's changes in `track` when given; on error the book is
    /// cleared.
    fn apply_listing(&mut self, upd: &BookUpdate, track: Option<&mut BookChanges>) -> Result<ApplyOutcome, BookError> {
        let res = match upd.action {
            BookAction::Snapshot => self.apply_snapshot(upd),
            BookAction::Delta => self.apply_delta(upd, track),
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

    fn apply_delta(
        &mut self,
        upd: &BookUpdate,
        mut track: Option<&mut BookChanges>,
    ) -> Result<ApplyOutcome, BookError> {
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
            if let Some(c) = track.as_deref_mut() {
                c.complete = true;
            }
            let bids_before = set_levels(&mut self.bids, Side::Buy, bid_ticks, &upd.bids, track.as_deref_mut());
            let asks_before = set_levels(&mut self.asks, Side::Sell, ask_ticks, &upd.asks, track.as_deref_mut());
            let (outcome, dropped) = self.finish_delta(upd, u, [bids_before, asks_before])?;
            if dropped {
                if let Some(c) = track {
                    c.complete = false;
                }
            }
            return Ok(outcome);
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
        self.finish_delta(upd, u, before).map(|(outcome, _)| outcome)
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
    ///
    /// Also returns whether the depth cap dropped a level.
    fn finish_delta(
        &mut self,
        upd: &BookUpdate,
        u: u64,
        before: [Option<Option<Entry>>; 2],
    ) -> Result<(ApplyOutcome, bool), BookError> {
        let mut dropped = false;
        if !upd.bids.is_empty() {
            dropped |= self.bids.truncate_worst(self.max_depth);
            self.bids.settle();
        }
        if !upd.asks.is_empty() {
            dropped |= self.asks.truncate_worst(self.max_depth);
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
        Ok((ApplyOutcome { kind: ApplyKind::Delta, levels: upd.bids.len() + upd.asks.len(), touch_changed }, dropped))
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
            let _ = book_side.truncate_worst(self.max_depth);
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

    /// Prefetches the window slots of the `slots` keys below each side's best (see
    /// [`crate::engine::prefetch`]).
    pub fn prefetch_touch(&self, slots: usize) {
        self.bids.prefetch_touch(slots);
        self.asks.prefetch_touch(slots);
    }

    /// Addresses in the pages a level update near either touch reads ([`BookSide::page_probe`]
    /// of the bids, then the asks), fixed for the book's life.
    pub fn page_probe(&self) -> [usize; 4] {
        let [a, b] = self.bids.page_probe();
        let [c, d] = self.asks.page_probe();
        [a, b, c, d]
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

    /// A side's levels as (price in ticks, size), best first.
    pub fn levels_ticks(&self, side: Side) -> impl Iterator<Item = (i64, Qty)> + '_ {
        self.side(side).iter().map(move |e| match side {
            Side::Buy => (e.key, e.qty),
            Side::Sell => (-e.key, e.qty),
        })
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
mod tests;
