//! Spreads the one-second timer's per-symbol work (candle closes on time, stale-book and resync
//! checks, `SymbolIntel::on_second`, the desk's entry timeouts and max hold, baseline persistence
//! and feature snapshots) over the events that follow the timer, so that no single event pays for
//! the whole universe at once.
//!
//! On `Timer(Second)` at time `at` every tracked symbol becomes *due* with that boundary time. A
//! due symbol's work is done, with `at` as its time (so candles close at the same boundary and
//! with the same content as if done on the timer), on the first of:
//! - the timer event itself, for the first [`SECOND_WORK_PER_EVENT`] symbols in symbol order
//!   (a universe that small is handled entirely on the timer, exactly as before);
//! - the symbol's own next event, before that event touches the symbol (its second-work always
//!   precedes its next data);
//! - any later event, which takes up to [`SECOND_WORK_PER_EVENT`] due symbols from the front of
//!   the queue;
//! - the next `Timer(Second)`, which first finishes everything still due (so each symbol's work is
//!   at most one second late, even on a sparse stream).
//!
//! The schedule depends only on the order of events, so a replay does the same work at the same
//! places and reproduces the decision log.

use crate::domain::{Symbol, TimeMs};
use std::collections::{BTreeMap, VecDeque};

/// Due symbols whose second-work one event does at most (besides the event's own symbol, and
/// besides the leftovers a timer finishes). At ~35 µs per symbol this keeps an event well under
/// 1 ms; at 25 market events per ms of stream time, 1 000 symbols are done ~3 ms after the timer.
pub const SECOND_WORK_PER_EVENT: usize = 16;

/// The second-work owed to one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondDue {
    /// The timer's time: the work is done as of this instant (candle closes, timeouts, records).
    pub at: TimeMs,
    /// Also write the symbol's feature snapshot (`data/metrics/<SYMBOL>.json`).
    pub snapshot: bool,
    /// Also persist the symbol's baselines into its profile (when warm).
    pub persist: bool,
}

/// The schedule of due symbols and the slice the current event works on.
#[derive(Debug, Default)]
pub struct SecondWork {
    /// Due symbols in the order their work is taken (symbol order of the timer); may hold
    /// symbols already done through their own event (skipped when reached).
    queue: VecDeque<Symbol>,
    /// What each still-due symbol is owed.
    due: BTreeMap<Symbol, SecondDue>,
    /// The symbols whose second-work the current event does, in order.
    slice: Vec<(Symbol, SecondDue)>,
}

impl SecondWork {
    /// Empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `Timer(Second)` at `at`: the slice becomes every symbol still due from the previous
    /// timer, then the first [`SECOND_WORK_PER_EVENT`] of `symbols` (each due as of `at`); the
    /// rest wait. `persist(i)` says whether the `i`-th symbol persists its baselines this second.
    pub fn on_timer<'a>(
        &mut self,
        at: TimeMs,
        symbols: impl Iterator<Item = &'a Symbol>,
        snapshot: bool,
        persist: impl Fn(usize) -> bool,
    ) {
        self.slice.clear();
        while let Some(s) = self.queue.pop_front() {
            if let Some(d) = self.due.remove(&s) {
                self.slice.push((s, d));
            }
        }
        self.due.clear();
        for (i, s) in symbols.enumerate() {
            let d = SecondDue { at, snapshot, persist: persist(i) };
            if i < SECOND_WORK_PER_EVENT {
                self.slice.push((s.clone(), d));
            } else {
                self.queue.push_back(s.clone());
                self.due.insert(s.clone(), d);
            }
        }
    }

    /// Any other event, about `own` (if it names a symbol): the slice becomes `own` if it is due,
    /// then up to [`SECOND_WORK_PER_EVENT`] symbols from the front of the queue. Cheap when
    /// nothing is due (the usual case: the queue empties a few ms after each timer).
    pub fn on_event(&mut self, own: Option<&Symbol>) {
        self.slice.clear();
        if self.due.is_empty() {
            self.queue.clear();
            return;
        }
        if let Some(s) = own {
            if let Some(d) = self.due.remove(s) {
                self.slice.push((s.clone(), d));
            }
        }
        let mut taken = 0;
        while taken < SECOND_WORK_PER_EVENT {
            let Some(s) = self.queue.pop_front() else { break };
            if let Some(d) = self.due.remove(&s) {
                self.slice.push((s, d));
                taken += 1;
            }
        }
    }

    /// Takes the current event's slice (give it back with [`SecondWork::put_slice`] so the
    /// later pipeline steps of the same event see it too).
    pub fn take_slice(&mut self) -> Vec<(Symbol, SecondDue)> {
        std::mem::take(&mut self.slice)
    }

    /// Gives back a slice taken with [`SecondWork::take_slice`].
    pub fn put_slice(&mut self, slice: Vec<(Symbol, SecondDue)>) {
        self.slice = slice;
    }

    /// Symbols still due (not yet in any event's slice).
    pub fn pending(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(n: usize) -> Vec<Symbol> {
        (0..n).map(|i| Symbol::new(&format!("S{i:04}USDT"))).collect()
    }

    fn names(w: &mut SecondWork) -> Vec<String> {
        let s = w.take_slice();
        let out = s.iter().map(|(s, _)| s.as_str().to_string()).collect();
        w.put_slice(s);
        out
    }

    #[test]
    fn a_small_universe_is_done_entirely_on_the_timer() {
        let u = syms(SECOND_WORK_PER_EVENT);
        let mut w = SecondWork::new();
        w.on_timer(1_000, u.iter(), true, |i| i == 3);
        let s = w.take_slice();
        assert_eq!(s.len(), u.len());
        assert!(s.iter().all(|(_, d)| d.at == 1_000 && d.snapshot));
        assert_eq!(s.iter().filter(|(_, d)| d.persist).count(), 1);
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn a_large_universe_is_spread_and_every_symbol_is_done_once() {
        let u = syms(100);
        let mut w = SecondWork::new();
        w.on_timer(1_000, u.iter(), false, |_| false);
        let mut done = names(&mut w);
        assert_eq!(done.len(), SECOND_WORK_PER_EVENT);
        // The own symbol jumps the queue; then a bounded slice from the front.
        w.on_event(Some(&u[90]));
        let n = names(&mut w);
        assert_eq!(n[0], u[90].as_str());
        assert_eq!(n.len(), SECOND_WORK_PER_EVENT + 1);
        done.extend(n);
        while w.pending() > 0 {
            w.on_event(None);
            let n = names(&mut w);
            assert!(!n.is_empty() && n.len() <= SECOND_WORK_PER_EVENT);
            done.extend(n);
        }
        w.on_event(Some(&u[90]));
        assert!(names(&mut w).is_empty(), "nothing is done twice");
        done.sort();
        let mut all: Vec<String> = u.iter().map(|s| s.as_str().to_string()).collect();
        all.sort();
        assert_eq!(done, all);
    }

    #[test]
    fn the_next_timer_finishes_the_leftovers_with_their_own_time_first() {
        let u = syms(40);
        let mut w = SecondWork::new();
        w.on_timer(1_000, u.iter(), false, |_| false);
        w.on_timer(2_000, u.iter(), false, |_| false);
        let s = w.take_slice();
        let left = 40 - SECOND_WORK_PER_EVENT;
        assert_eq!(s.len(), left + SECOND_WORK_PER_EVENT);
        assert!(s[..left].iter().all(|(_, d)| d.at == 1_000));
        assert!(s[left..].iter().all(|(_, d)| d.at == 2_000));
        assert_eq!(w.pending(), 40 - SECOND_WORK_PER_EVENT);
    }
}
