//! The core's per-symbol market state, built lazily: a Universe event only registers each new
//! symbol (its [`MarketSpec`]: a few words, no allocation beyond the id table), and the heavy
//! state (book, tape, candle rings, feature trackers — hundreds of KiB of buffers per symbol)
//! is built on the first access of any kind, usually the symbol's first market event. Building
//! at 1 000 symbols in one Universe event cost ~27 ms; spread over first events it costs a few
//! µs each.
//!
//! Exactness: the state built on first access is the one `add_symbol` used to build at the
//! Universe event (same inputs, captured then: the instrument's tick, the depth, the intel
//! configuration and costs of the symbol's category at that time), and nothing could have
//! touched it in between, since every read or write goes through the build. So records and
//! decisions are the same as with eager building, and a replay builds at the same events.

use crate::domain::{Category, Symbol, TimeMs};
use crate::engine::symbol_table::{SymbolId, SymbolRef, SymbolTable};
use crate::features::costs::CostParams;
use crate::intel::IntelConfig;
use crate::intel::SymbolIntel;
use crate::market::candles::CandleSet;
use crate::market::data::{Instrument, TickerUpdate};
use crate::market::orderbook::OrderBook;
use crate::market::tape::Tape;
use crate::scoring::scalp_score::ScalpScore;
use std::cell::{Cell, OnceCell};
use std::sync::Arc;

/// Trades kept per symbol on the tape.
pub const TAPE_CAPACITY: usize = 2_000;
/// Closed candles kept per interval.
pub const CANDLE_RING: usize = 300;
/// Late-trade grace before a candle closes on time alone, ms.
pub const CANDLE_GRACE_MS: i64 = 250;
/// Market state of one symbol. `repr(C)`, hot fields first: what every book or trade event
/// reads comes before the candles (read by trades and candle closes only) and the ticker (by
/// tickers only), so a book event's prefetch ([`SymbolMarket::HOT_BYTES`]) skips their lines.
#[derive(Debug)]
#[repr(C)]
pub struct SymbolMarket {
    /// L2 book.
    pub book: OrderBook,
    /// Market intelligence (features, symbol regime).
    pub intel: SymbolIntel,
    /// Latest FinalScalpScore.
    pub score: ScalpScore,
    /// Trade tape.
    pub tape: Tape,
    /// Trading rules.
    pub instrument: Instrument,
    pub category: Category,
    /// Last book update (event time).
    pub last_book_ms: Option<TimeMs>,
    /// Last trade (event time).
    pub last_trade_ms: Option<TimeMs>,
    /// When a resync was last requested and not yet answered by a snapshot.
    pub resync_pending_since: Option<TimeMs>,
    /// Book errors seen.
    pub book_errors: u64,
    /// Micro-candles.
    pub candles: CandleSet,
    /// Merged ticker.
    pub ticker: TickerUpdate,
}

impl SymbolMarket {
    /// Bytes from the start that a book or trade event reads (everything before the candles).
    pub const HOT_BYTES: usize = std::mem::offset_of!(SymbolMarket, candles);

    /// Prefetches the hot bytes (see [`crate::engine::prefetch`]).
    #[inline]
    fn prefetch_hot(&self) {
        crate::engine::prefetch::bytes((self as *const SymbolMarket).cast(), Self::HOT_BYTES);
    }

    /// One address in each page besides its own that a book event reads near the touch: the
    /// book's windows and occupancy words, the second ring ([`PageProbe`]).
    fn page_probe(&self) -> PageProbe {
        let [a, b, c, d] = self.book.page_probe();
        PageProbe([a, b, c, d, self.intel.page_probe()])
    }
}

/// One address in each page of a symbol's buffers that its book events read, taken when its
/// state is built (the buffers never move), kept beside the state in [`Markets`] so the first
/// look-ahead prefetch finds them without reading the state. Prefetching one line of each
/// page together with the state's first line starts all of an event's page walks at once:
/// a prefetch that misses the TLB holds up retirement until its walk ends (in a VM a
/// two-dimensional walk), and one at a time they were the prefetch routine's largest stall in
/// a `perf` profile at 1 000 symbols. A hint only: zero (not built) prefetches nothing.
#[derive(Debug, Clone, Copy, Default)]
struct PageProbe([usize; 5]);

impl PageProbe {
    #[inline]
    fn prefetch(self) {
        for a in self.0 {
            crate::engine::prefetch::addr(a);
        }
    }
}

// A market event reads most of its symbol's hot bytes (2712 now, with the second ring's 304
// bytes of cached sums, inline since they cost a page of their own, and the zone tracker's 192
// bytes of exact zone sums, which spare a book event the rescan of ~30 levels a side): a field
// added before the candles, or a tracker keeping its own copy of its configuration again (200
// bytes for the pump's), costs every event at universe scale. 43 cache lines at most, checked
// at build time.
const _: () = assert!(SymbolMarket::HOT_BYTES <= 43 * 64, "SymbolMarket's hot bytes outgrew 43 cache lines");

/// What a symbol's state is built from, as of its registration (the Universe event that added
/// it), plus the current instrument and category (kept up to date by later refreshes).
#[derive(Debug, Clone)]
pub struct MarketSpec {
    /// The symbol (the interned `Arc` handed to the state it builds).
    pub symbol: Symbol,
    /// Instrument at registration: the book's tick size.
    pub origin: Instrument,
    /// Book levels kept per side.
    pub depth: usize,
    /// Intelligence configuration in force at registration (shared by the whole universe).
    pub intel: Arc<IntelConfig>,
    /// Costs of the category at registration.
    pub costs: CostParams,
    /// Current trading rules.
    pub instrument: Instrument,
    /// Current category.
    pub category: Category,
    /// Score points the symbol's signals need on top of the thresholds (profile + override).
    pub extra_score: f64,
}

impl MarketSpec {
    /// True when the state can be built: the book's constructor accepts the tick and depth
    /// (the same conditions as `OrderBook::new`, checked without allocating).
    pub fn buildable(&self) -> bool {
        self.origin.tick_size.raw() > 0 && self.depth > 0
    }

    fn build(&self) -> Option<Box<SymbolMarket>> {
        let book = match OrderBook::from_instrument(&self.origin, self.depth) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(symbol = %self.symbol, error = %e, "instrument has unusable trading rules; not tracked");
                return None;
            }
        };
        // Allocation order: what every market event reads (the book's slots, the features'
        // buffers, then the state itself) first, next to each other, and the large rings an
        // event touches at one end or not at all (tape, closed candles) after them. An event
        // then touches fewer pages: at 1000 symbols the TLB no longer holds a symbol's pages
        // when its next event comes (see the README, "Pages, not lines").
        let mut intel = SymbolIntel::new(self.symbol.clone(), self.intel.clone(), self.costs, 0);
        intel.set_extra_threshold(self.extra_score);
        let slot = Box::<SymbolMarket>::new_uninit();
        Some(Box::write(
            slot,
            SymbolMarket {
                instrument: self.instrument.clone(),
                category: self.category,
                book,
                tape: Tape::new(TAPE_CAPACITY),
                candles: CandleSet::new(CANDLE_RING, CANDLE_GRACE_MS),
                ticker: TickerUpdate { symbol: self.symbol.clone(), ..Default::default() },
                last_book_ms: None,
                last_trade_ms: None,
                resync_pending_since: None,
                book_errors: 0,
                intel,
                score: ScalpScore::default(),
            },
        ))
    }
}

/// One registered symbol: what its state is built from (the state itself is in
/// [`Markets`]' `built`).
#[derive(Debug)]
struct Slot {
    /// Boxed: read only to build the state and on universe refreshes.
    spec: Box<MarketSpec>,
    /// The build failed (logged once): the symbol reads as absent.
    failed: Cell<bool>,
}

impl Slot {
    /// Builds the state; `None` (logged the first time) when it cannot be built.
    fn build(&self) -> Option<Box<SymbolMarket>> {
        if self.failed.get() {
            return None;
        }
        let m = self.spec.build();
        self.failed.set(m.is_none());
        m
    }
}

/// Symbol → market state, by id, in symbol order for iteration.
#[derive(Debug, Default)]
pub struct Markets {
    table: SymbolTable<Slot>,
    /// The built state of each id; empty while not built, and emptied when the symbol is
    /// unregistered or registered again. Apart from the registrations and 8 bytes an entry:
    /// every event's prefetch reads its symbol's entry to find the state, and 1 000 symbols'
    /// entries take 125 cache lines, where the registration slots (spec, state and the
    /// table's option, 24 bytes each) took 375 and cost a cold line per event (the
    /// prefetch's largest stall in a `perf` profile).
    built: Vec<OnceCell<Box<SymbolMarket>>>,
    /// The [`PageProbe`] of each built state, by id (default while not built).
    probes: Vec<Cell<PageProbe>>,
}

impl Markets {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or re-registers, starting its state over) a symbol. Returns false, and
    /// registers nothing, when its state could not be built (see [`MarketSpec::buildable`]).
    pub fn register(&mut self, spec: MarketSpec) -> bool {
        if !spec.buildable() {
            tracing::error!(symbol = %spec.symbol, "instrument has unusable trading rules; not tracked");
            return false;
        }
        let symbol = spec.symbol.clone();
        self.table.insert(symbol.clone(), Slot { spec: Box::new(spec), failed: Cell::new(false) });
        if let Some(id) = self.table.id(&symbol) {
            if self.built.len() <= id.index() {
                self.built.resize_with(id.index() + 1, OnceCell::new);
                self.probes.resize_with(id.index() + 1, Cell::default);
            }
            self.drop_state(id);
        }
        true
    }

    /// Updates the current instrument, category and the category's costs (of the state too,
    /// when built: a symbol that turns Wild trades at Wild leverage from its next refresh).
    pub fn set_member(&mut self, s: &Symbol, category: Category, instrument: &Instrument, costs: CostParams) {
        let Some(id) = self.table.id(s) else { return };
        let Some(slot) = self.table.get_id_mut(id) else { return };
        if let Some(m) = self.built.get_mut(id.index()).and_then(|c| c.get_mut()) {
            if m.category != category {
                m.intel.set_costs(costs);
            }
            m.category = category;
            m.instrument = instrument.clone();
        }
        slot.spec.category = category;
        slot.spec.instrument = instrument.clone();
        slot.spec.costs = costs;
    }

    /// Applies a reloaded configuration to every registered symbol: the `[intel]` section
    /// (shared, `intel`) and the costs of its category (`costs`, from fees, leverage and the cost
    /// settings). A state built later is built from them, and a built state's trackers take them
    /// and keep what they learnt (baselines, walls, phases).
    pub fn reconfigure(&mut self, intel: &Arc<IntelConfig>, costs: impl Fn(Category) -> CostParams) {
        for slot in self.table.values_mut() {
            slot.spec.intel = intel.clone();
            slot.spec.costs = costs(slot.spec.category);
        }
        for m in self.built.iter_mut().filter_map(|c| c.get_mut()) {
            m.intel.set_config(intel.clone(), costs(m.category));
        }
    }

    /// Unregisters a symbol (its id stays its own).
    pub fn remove(&mut self, s: &Symbol) {
        if let Some(id) = self.table.id(s) {
            self.drop_state(id);
        }
        self.table.remove(s);
    }

    /// Drops the built state of `id` and its page probe (built again on next access).
    fn drop_state(&mut self, id: SymbolId) {
        if let Some(c) = self.built.get_mut(id.index()) {
            *c = OnceCell::new();
        }
        if let Some(p) = self.probes.get_mut(id.index()) {
            *p = Cell::default();
        }
    }

    /// Builds the state of `id` (registered, else `None`) and keeps its page probe.
    fn build(&self, id: SymbolId) -> Option<Box<SymbolMarket>> {
        let m = self.table.get_id(id)?.build()?;
        if let Some(p) = self.probes.get(id.index()) {
            p.set(m.page_probe());
        }
        Some(m)
    }

    /// The id of a symbol ever registered.
    #[inline]
    pub fn id(&self, s: &Symbol) -> Option<SymbolId> {
        self.table.id(s)
    }

    /// The table's own copy of `s` (of a symbol ever registered). Maps filled from it (the
    /// desk's, the global regime's) then find it by pointer comparison instead of reading
    /// another copy's text: an event's symbol is a fresh allocation, and comparing it with the
    /// copy a map holds reads that copy, a cache miss per map once the universe is large.
    #[inline]
    pub fn interned(&self, s: &Symbol) -> Option<&Symbol> {
        self.table.symbol(self.table.id(s)?)
    }

    /// The interned copy of `event`'s symbol ([`Markets::interned`]); `None` for an event of no
    /// symbol or of one never registered. Borrows only the markets, so a step can hold it while
    /// it updates the desk.
    #[inline]
    pub fn event_symbol(&self, event: &crate::engine::event::Event) -> Option<&Symbol> {
        self.event_ref(event).map(|r| r.symbol)
    }

    /// [`Markets::event_symbol`] with its id, for the tables that follow the market ids
    /// ([`SymbolTable::focus`]).
    #[inline]
    pub fn event_ref(&self, event: &crate::engine::event::Event) -> Option<SymbolRef<'_>> {
        let id = self.table.id(event.symbol()?)?;
        Some(SymbolRef { id, symbol: self.table.symbol(id)? })
    }

    /// Prefetches the state of `s` when built, for an event at `now` (see
    /// [`crate::engine::prefetch`]): the state's hot bytes ([`SymbolMarket::HOT_BYTES`]), the
    /// book's levels near the touch (64 slots a side: every level of a tick-dense depth-50
    /// book), the feature buffers and, for a trade event, the newest trade and the candles.
    /// Returns the symbol's id (whether built or not), for the other tables' prefetches.
    #[inline]
    pub fn prefetch(&self, s: &Symbol, now: TimeMs, trade: bool) -> Option<SymbolId> {
        let id = self.table.peek_id(s)?;
        if let Some(m) = self.peek_id(id) {
            m.prefetch_hot();
            m.book.prefetch_touch(64);
            m.intel.prefetch(now);
            if trade {
                // Only trades touch the tape (and the candles) on every event; a book event
                // reads the tape's newest trade for a held symbol only.
                m.tape.prefetch();
                crate::engine::prefetch::value(&m.candles);
            }
        }
        Some(id)
    }

    /// Prefetches only the hot bytes of the state of `s` (when built): the headers through
    /// which [`Markets::prefetch`] finds the rest, so that a later `prefetch` of the same
    /// symbol computes its addresses without waiting for memory.
    #[inline]
    pub fn prefetch_hot(&self, s: &Symbol) {
        let Some(id) = self.table.peek_id(s) else { return };
        if let Some(m) = self.peek_id(id) {
            if let Some(p) = self.probes.get(id.index()) {
                p.get().prefetch();
            }
            m.prefetch_hot();
        }
    }

    /// The state of id `id` if already built (builds nothing).
    #[inline]
    fn peek_id(&self, id: SymbolId) -> Option<&SymbolMarket> {
        self.built.get(id.index())?.get().map(|m| &**m)
    }

    /// The state of `s` (built on first access).
    #[inline]
    pub fn get(&self, s: &Symbol) -> Option<&SymbolMarket> {
        self.get_id(self.table.id(s)?)
    }

    /// The state of `s`, mutable (built on first access).
    #[inline]
    pub fn get_mut(&mut self, s: &Symbol) -> Option<&mut SymbolMarket> {
        self.get_id_mut(self.table.id(s)?)
    }

    /// The state of `s` if already built (`None` otherwise): for reads whose answer on a state
    /// never built is known (no trade, no book), so that they do not build every state at once.
    #[inline]
    pub fn peek(&self, s: &Symbol) -> Option<&SymbolMarket> {
        self.peek_id(self.table.id(s)?)
    }

    /// The state of an id (built on first access).
    #[inline]
    pub fn get_id(&self, id: SymbolId) -> Option<&SymbolMarket> {
        let cell = self.built.get(id.index())?;
        if let Some(m) = cell.get() {
            return Some(m);
        }
        // Not built: registered (else absent), then built now.
        let m = self.build(id)?;
        Some(cell.get_or_init(|| m))
    }

    /// The state of an id, mutable (built on first access).
    #[inline]
    pub fn get_id_mut(&mut self, id: SymbolId) -> Option<&mut SymbolMarket> {
        if self.built.get(id.index())?.get().is_none() {
            let m = self.build(id)?;
            let _ = self.built.get_mut(id.index())?.set(m);
        }
        self.built.get_mut(id.index())?.get_mut().map(|m| &mut **m)
    }

    /// True when `s` is registered (does not build its state).
    #[inline]
    pub fn contains_key(&self, s: &Symbol) -> bool {
        self.table.contains_key(s)
    }

    /// Registered symbols in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Symbol> + ExactSizeIterator {
        self.table.keys()
    }

    /// Every symbol's state in symbol order (builds the states not built yet).
    pub fn iter(&self) -> impl Iterator<Item = (&Symbol, &SymbolMarket)> {
        self.table.iter_ids().filter_map(|(id, _)| Some((self.table.symbol(id)?, self.get_id(id)?)))
    }

    /// Symbols whose state is built, in symbol order (a test and diagnostics aid).
    pub fn built(&self) -> usize {
        self.table.iter_ids().filter(|(id, _)| self.peek_id(*id).is_some()).count()
    }

    /// Number of registered symbols.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when none is registered.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{Markets, SymbolId};
    use crate::engine::clock::FrozenClock;
    use crate::engine::core::CorePipeline;
    use crate::engine::event::{Event, EventKind};
    use crate::engine::synthetic::UniverseStream;
    use crate::engine::{DegradedPolicy, Engine};
    use std::sync::Arc;

    const N: usize = 40;

    fn engine() -> Engine<CorePipeline, FrozenClock> {
        engine_with(UniverseStream::config())
    }

    fn engine_with(cfg: crate::config::Config) -> Engine<CorePipeline, FrozenClock> {
        let policy = DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 };
        Engine::new(CorePipeline::new(Arc::new(cfg)), FrozenClock, policy)
    }

    /// The configuration with `engine.prefetch` on.
    fn prefetching() -> crate::config::Config {
        let mut cfg = UniverseStream::config();
        cfg.engine.prefetch = true;
        cfg
    }

    /// The synthetic stream with the upper half of the universe silent until well after the
    /// first timers (its snapshots held back, its earlier data dropped): those symbols are
    /// registered by the Universe event and first seen seconds later.
    fn stream() -> Vec<Event> {
        let mut s = UniverseStream::new(N, 7, 5);
        let setup = s.setup();
        let late = |e: &Event| match &e.kind {
            EventKind::Book(b) => b.symbol.as_str() >= "S0020USDT",
            EventKind::Trades(t) => t.symbol.as_str() >= "S0020USDT",
            _ => false,
        };
        let (held, early): (Vec<Event>, Vec<Event>) = setup.into_iter().partition(late);
        let mut all = early;
        let body: Vec<Event> = (&mut s).take(30_000).collect();
        let (a, b) = body.split_at(15_000);
        // Nothing of the upper half before its snapshots.
        all.extend(a.iter().filter(|e| !late(e)).cloned());
        let at = a.last().map(|e| e.time);
        all.extend(held.into_iter().map(|mut e| {
            if let Some(t) = at {
                e.time = t;
            }
            e
        }));
        all.extend(b.iter().cloned());
        for (i, e) in all.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        all
    }

    /// A symbol registered by a Universe event and first seen later produces exactly the records
    /// and decisions it did when its state was built eagerly at the Universe event.
    #[test]
    fn lazily_built_symbols_behave_as_eagerly_built_ones() {
        let events = stream();
        let (mut lazy, mut eager) = (engine(), engine());
        let mut timers_before_late = 0;
        let mut seen_late = false;
        let mut built_before_late = 0;
        for e in &events {
            let a = lazy.on_event(e);
            let b = eager.on_event(e);
            if let EventKind::Universe(_) = e.kind {
                assert_eq!(lazy.pipeline().built_symbols(), 0, "registration builds nothing");
                // What the Universe event used to do: build every member's state.
                assert_eq!(eager.pipeline().symbols().count(), N);
                assert_eq!(eager.pipeline().built_symbols(), N);
            }
            match &e.kind {
                EventKind::Timer(_) if !seen_late => timers_before_late += 1,
                EventKind::Book(b) if b.symbol.as_str() >= "S0020USDT" => {
                    if !seen_late {
                        // Only timers' second-work can have built them so far.
                        built_before_late = lazy.pipeline().built_symbols();
                    }
                    seen_late = true
                }
                _ => {}
            }
            assert_eq!(a, b, "event {} ({:?})", e.seq, e.kind);
        }
        assert!(timers_before_late >= 2, "the late symbols went through timers before their first data");
        assert!(built_before_late > 0);
        assert_eq!(lazy.pipeline().built_symbols(), N);
    }

    /// The core keeps most books' imbalance zones from the deltas' level changes and counts the
    /// rest: at least one rescan a symbol (its snapshot), far fewer than the updates.
    #[test]
    fn zone_rescans_are_counted_and_rare_on_small_deltas() {
        let mut s = UniverseStream::new(5, 3, 5);
        let mut e = engine();
        let mut events = s.setup();
        events.extend((&mut s).take(4_000));
        for (i, ev) in events.iter_mut().enumerate() {
            ev.seq = i as u64 + 1;
            e.on_event(ev);
        }
        let c = e.pipeline().counters();
        assert!(c.book_updates > 2_000, "{}", c.book_updates);
        assert!(c.zone_rescans >= 5, "each snapshot rescans: {}", c.zone_rescans);
        assert!(c.zone_rescans * 5 < c.book_updates, "{} rescans of {} updates", c.zone_rescans, c.book_updates);
    }

    /// Unregistering drops the state and registering again starts it over; the dense
    /// `built` entries follow the registrations.
    #[test]
    fn removal_and_registration_start_the_state_over() {
        use super::{MarketSpec, Markets};
        use crate::domain::{Category, Symbol};
        let cfg = UniverseStream::config();
        let mut s = UniverseStream::new(3, 1, 5);
        let setup = s.setup();
        let members = setup
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Universe(u) => Some(u.clone()),
                _ => None,
            })
            .expect("the stream starts with its universe");
        let spec = |i: usize| MarketSpec {
            symbol: members[i].symbol.clone(),
            origin: members[i].clone(),
            depth: 50,
            intel: Arc::new(cfg.intel.clone()),
            costs: cfg.cost_params(Category::Normal),
            instrument: members[i].clone(),
            category: Category::Normal,
            extra_score: 0.0,
        };
        let mut m = Markets::new();
        assert!(m.register(spec(0)) && m.register(spec(1)));
        let a: Symbol = members[0].symbol.clone();
        assert_eq!(m.built(), 0);
        m.get_mut(&a).expect("registered").book_errors = 7;
        assert_eq!((m.built(), m.peek(&a).map(|x| x.book_errors)), (1, Some(7)));
        m.remove(&a);
        assert!(m.get(&a).is_none() && m.peek(&a).is_none(), "unregistered reads as absent");
        assert_eq!(m.built(), 0);
        assert!(m.register(spec(0)));
        assert!(m.peek(&a).is_none(), "registered again: not built yet");
        assert_eq!(m.get(&a).map(|x| x.book_errors), Some(0), "a fresh state");
        m.get_mut(&a).expect("registered").book_errors = 3;
        assert!(m.register(spec(0)));
        assert_eq!(m.get(&a).map(|x| x.book_errors), Some(0), "re-registering starts over");
        let b = &members[1].symbol;
        assert_eq!(m.get_id(m.id(b).expect("id")).map(|x| x.book_errors), Some(0));
        assert_eq!(m.iter().count(), 2);
    }

    /// Processing each event with `engine.prefetch` on and the next two as prefetch hints (what
    /// replay and the runtime do when they are already queued) gives exactly the outputs of
    /// processing it alone with the prefetch off, in a universe large enough for it to run.
    #[test]
    fn prefetching_the_next_event_changes_no_output() {
        let n = crate::engine::core::PREFETCH_FROM_SYMBOLS + 16;
        let mut s = UniverseStream::new(n, 11, 5);
        let mut events = s.setup();
        events.extend((&mut s).take(20_000));
        let (mut plain, mut hinted) = (engine(), engine_with(prefetching()));
        for (i, e) in events.iter().enumerate() {
            let a = plain.on_event(e);
            let b = hinted.on_event_ahead(e, [events.get(i + 1), events.get(i + 2)]);
            assert_eq!(a, b, "event {} ({:?})", e.seq, e.kind);
        }
        assert_eq!(hinted.pipeline().symbols().count(), n, "the prefetch ran (universe above its threshold)");
        assert_eq!(hinted.pipeline().built_symbols(), n);
    }

    /// Every built state's page probe is taken at its build and still names its buffers after
    /// thousands of events (the book's windows and the ring are never reallocated): a probe
    /// gone stale would prefetch pages the events no longer read.
    #[test]
    fn page_probes_follow_the_built_states() {
        let n = crate::engine::core::PREFETCH_FROM_SYMBOLS + 16;
        let mut s = UniverseStream::new(n, 5, 5);
        let mut e = engine();
        for ev in s.setup().iter().chain((&mut s).take(20_000).collect::<Vec<_>>().iter()) {
            e.on_event(ev);
        }
        let m = e.pipeline().markets();
        let mut seen = 0;
        for (sym, state) in m.iter() {
            let id = m.id(sym).expect("registered");
            let kept = m.probes[id.index()].get().0;
            assert_eq!(kept, state.page_probe().0, "{sym}");
            assert!(kept.iter().all(|&a| a != 0), "{sym}: {kept:?}");
            // The ring's probe is its first used bucket, at most 64 bytes before a page.
            assert!((4096 - kept[4] % 4096) % 4096 < 64, "{sym}: ring at {:#x}", kept[4]);
            seen += 1;
        }
        assert_eq!(seen, n);
        // A symbol registered again starts without a probe until its state is built again.
        let mut fresh = Markets::new();
        let spec = m.table.get_id(SymbolId(0)).expect("slot").spec.as_ref().clone();
        let sym = spec.symbol.clone();
        assert!(fresh.register(spec.clone()));
        assert_eq!(fresh.probes[0].get().0, [0; 5], "not built: no probe");
        assert!(fresh.get(&sym).is_some());
        assert!(fresh.probes[0].get().0.iter().all(|&a| a != 0), "built on first access");
        assert!(fresh.register(spec));
        assert_eq!(fresh.probes[0].get().0, [0; 5], "registered again: state and probe dropped");
    }

    /// Ids follow first registration and are the same in every replay of a stream.
    #[test]
    fn ids_are_stable_across_replays() {
        let events = stream();
        let (mut a, mut b) = (engine(), engine());
        for e in &events {
            a.on_event(e);
            b.on_event(e);
        }
        let ids = |e: &Engine<CorePipeline, FrozenClock>| -> Vec<(String, u32)> {
            e.pipeline()
                .symbols()
                .filter_map(|(s, _)| Some((s.as_str().to_string(), e.pipeline().symbol_id(s)?.0)))
                .collect()
        };
        let ia = ids(&a);
        assert_eq!(ia.len(), N);
        assert_eq!(ia, ids(&b));
        // The synthetic universe lists symbols in order: ids are their ranks.
        assert!(ia.iter().enumerate().all(|(i, (_, id))| *id == i as u32), "{ia:?}");
    }
}
