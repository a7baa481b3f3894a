//! Backpressure between the feed and the core. Events wait in a [`ShedQueue`]; when the backlog
//! exceeds the high-water mark, the oldest high-frequency market events of the least important
//! symbols are shed first (Wild, then Normal). Prime symbols (BTC, ETH and the rest of Prime) are
//! never shed, and neither is anything that is not market data (feed status, universe, timers,
//! control, config) nor any book *snapshot* (snapshots heal books).
//!
//! Shedding a book delta can never leave a wrong book in use: the next delta of that symbol has
//! a gap in `u`, the core marks the book invalid (no signals from it) and asks for a resync.

use crate::domain::{Category, Symbol};
use crate::engine::event::{Event, EventKind};
use crate::market::data::BookAction;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What was shed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShedStats {
    /// Events shed from Wild symbols.
    pub wild: u64,
    /// Events shed from Normal symbols.
    pub normal: u64,
}

/// A FIFO with load shedding.
#[derive(Debug)]
pub struct ShedQueue {
    q: VecDeque<Event>,
    high_water: usize,
    categories: BTreeMap<Symbol, Category>,
    prime_always: Vec<Symbol>,
    stats: ShedStats,
}

impl ShedQueue {
    /// New queue that sheds once more than `high_water` events wait. `prime_always` are never
    /// shed even before the universe says their category (BTCUSDT, ETHUSDT, configured Prime).
    pub fn new(high_water: usize, prime_always: Vec<Symbol>) -> Self {
        ShedQueue {
            q: VecDeque::new(),
            high_water: high_water.max(1),
            categories: BTreeMap::new(),
            prime_always,
            stats: ShedStats::default(),
        }
    }

    /// Updates symbol categories (from the core's universe).
    pub fn set_categories(&mut self, c: BTreeMap<Symbol, Category>) {
        self.categories = c;
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.q.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
    /// Shed counters.
    pub fn stats(&self) -> ShedStats {
        self.stats
    }

    fn category(&self, s: &Symbol) -> Category {
        if self.prime_always.contains(s) {
            return Category::Prime;
        }
        // Unknown symbols count as Normal: not shed before Wild ones.
        self.categories.get(s).copied().unwrap_or(Category::Normal)
    }

    fn sheddable(&self, e: &Event, cat: Category) -> bool {
        let Some(s) = e.symbol() else { return false };
        if self.category(s) != cat {
            return false;
        }
        match &e.kind {
            EventKind::Book(b) => b.action == BookAction::Delta,
            EventKind::Trades(_) | EventKind::Ticker(_) => true,
            _ => false,
        }
    }

    /// Adds an event, shedding if the backlog is over the high-water mark. Returns how many
    /// events were shed by this push. A symbol that lost a book delta gets one
    /// [`EventKind::BookShed`] behind everything queued, so the core resyncs it.
    pub fn push(&mut self, e: Event) -> usize {
        let time = e.time;
        self.q.push_back(e);
        let mut shed = 0;
        let mut books_hit: BTreeSet<Symbol> = BTreeSet::new();
        for cat in [Category::Wild, Category::Normal] {
            while self.q.len() > self.high_water {
                let Some(i) = self.q.iter().position(|e| self.sheddable(e, cat)) else { break };
                if let Some(gone) = self.q.remove(i) {
                    if let EventKind::Book(b) = &gone.kind {
                        books_hit.insert(b.symbol.clone());
                    }
                }
                shed += 1;
                match cat {
                    Category::Wild => self.stats.wild += 1,
                    _ => self.stats.normal += 1,
                }
            }
        }
        for s in books_hit {
            let already = self.q.iter().any(|e| matches!(&e.kind, EventKind::BookShed(x) if *x == s));
            if !already {
                self.q.push_back(Event::new(0, time, EventKind::BookShed(s)));
            }
        }
        shed
    }

    /// Takes the oldest event.
    pub fn pop(&mut self) -> Option<Event> {
        self.q.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventTime, Price, Qty};
    use crate::market::data::{BookUpdate, Level};

    fn delta(s: &str, u: u64) -> Event {
        Event::new(
            0,
            EventTime::local(u as i64),
            EventKind::Book(BookUpdate {
                symbol: Symbol::new(s),
                action: BookAction::Delta,
                depth: 50,
                bids: vec![Level { price: Price::parse("1").unwrap(), qty: Qty::parse("1").unwrap() }],
                asks: vec![],
                update_id: u,
                seq: u,
                cts_ms: None,
            }),
        )
    }

    #[test]
    fn sheds_wild_first_then_normal_never_prime_or_control() {
        let mut q = ShedQueue::new(4, vec![Symbol::new("BTCUSDT")]);
        q.set_categories(
            [(Symbol::new("WILDUSDT"), Category::Wild), (Symbol::new("NORMUSDT"), Category::Normal)]
                .into_iter()
                .collect(),
        );
        for u in 1..=3 {
            q.push(delta("BTCUSDT", u));
            q.push(delta("NORMUSDT", u));
            q.push(delta("WILDUSDT", u));
        }
        q.push(Event::new(0, EventTime::local(9), EventKind::Timer(crate::engine::event::TimerKind::Second)));
        // 10 events, high water 4: all 3 Wild go first, then 3 Normal; Prime and the timer stay,
        // and each shed book gets a BookShed marker so the core resyncs it.
        assert_eq!(q.stats(), ShedStats { wild: 3, normal: 3 });
        let left: Vec<String> = std::iter::from_fn(|| q.pop())
            .map(|e| match e.kind {
                EventKind::BookShed(s) => format!("shed {s}"),
                _ => format!("{:?}", e.symbol()),
            })
            .collect();
        let kept: Vec<&String> = left.iter().filter(|s| !s.starts_with("shed")).collect();
        assert_eq!(kept, ["Some(BTCUSDT)", "Some(BTCUSDT)", "Some(BTCUSDT)", "None"]);
        assert!(left.contains(&"shed WILDUSDT".to_string()) && left.contains(&"shed NORMUSDT".to_string()), "{left:?}");
    }

    #[test]
    fn prime_is_never_shed_even_over_the_mark() {
        let mut q = ShedQueue::new(2, vec![Symbol::new("ETHUSDT")]);
        for u in 1..=10 {
            q.push(delta("ETHUSDT", u));
        }
        assert_eq!(q.len(), 10);
        assert_eq!(q.stats(), ShedStats::default());
    }
}
