//! The core's per-symbol state, addressed by small integer ids: each symbol is interned to a
//! [`SymbolId`] on first sight (never reused for another symbol within the table's life, so a
//! replay assigns the same ids in the same order), values live in a dense `Vec` indexed by id,
//! and a separate id list keeps symbol order for iteration (deterministic, as with the
//! `BTreeMap` it replaces). Looking a symbol up is one hash of its text and one comparison (a
//! pointer comparison when the caller holds the interned `Arc`), or, when the same symbol as
//! the previous lookup is asked again (the ten pipeline steps of one event ask a dozen times),
//! one comparison.

use crate::domain::Symbol;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

/// A symbol's index in its [`SymbolTable`]: assigned in order of first insertion, kept by the
/// symbol when it is removed and inserted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymbolId(pub u32);

impl SymbolId {
    /// The id as a `Vec` index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A symbol with its id in the engine's market table ([`crate::engine::markets::Markets`]), the
/// universe-wide id space: other tables find their row for it through
/// [`SymbolTable::focus`] with one load instead of a hash probe.
#[derive(Debug, Clone, Copy)]
pub struct SymbolRef<'a> {
    /// The market table's id of `symbol`.
    pub id: SymbolId,
    /// The market table's interned copy.
    pub symbol: &'a Symbol,
}

/// FxHash-style hasher for symbol texts (a handful of bytes): a multiply and rotate per word,
/// much cheaper than SipHash; no protection against chosen collisions is needed for exchange
/// symbol names.
#[derive(Default, Clone, Copy)]
pub struct SymbolHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl SymbolHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for SymbolHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hash builder for symbol-keyed maps.
pub type SymbolHash = BuildHasherDefault<SymbolHasher>;

/// No id (the lookup cache is empty).
const NONE: u32 = u32::MAX;

/// Bytes of a symbol held inside the id index (every exchange symbol is shorter).
const INLINE: usize = 23;

/// A symbol of up to [`INLINE`] bytes as a map key held by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ShortKey {
    len: u8,
    bytes: [u8; INLINE],
}

impl ShortKey {
    #[inline]
    fn of(s: &str) -> Option<ShortKey> {
        let b = s.as_bytes();
        if b.len() > INLINE {
            return None;
        }
        let mut bytes = [0u8; INLINE];
        bytes[..b.len()].copy_from_slice(b);
        Some(ShortKey { len: b.len() as u8, bytes })
    }
}

/// Symbol text → id. A short symbol (all exchange symbols) is keyed by its bytes held in the
/// map's own bucket, so looking up a fresh copy of it (an event's symbol) compares bytes the
/// probe has already loaded instead of reading the interned copy's text from the heap: one
/// cache miss fewer per lookup once the universe outgrows the cache. Longer symbols are keyed
/// by the symbol itself.
#[derive(Debug, Clone, Default)]
struct IdIndex {
    short: HashMap<ShortKey, SymbolId, SymbolHash>,
    long: HashMap<Symbol, SymbolId, SymbolHash>,
}

impl IdIndex {
    #[inline]
    fn get(&self, k: &Symbol) -> Option<SymbolId> {
        match ShortKey::of(k.as_str()) {
            Some(key) => self.short.get(&key).copied(),
            None => self.long.get(k).copied(),
        }
    }

    fn insert(&mut self, k: &Symbol, id: SymbolId) {
        match ShortKey::of(k.as_str()) {
            Some(key) => self.short.insert(key, id),
            None => self.long.insert(k.clone(), id),
        };
    }
}

/// Symbol → value with interned ids. Lookups are O(1); inserting a symbol after the current
/// last in symbol order (the universe lists symbols sorted) is O(1), elsewhere and removing are
/// O(n) moves of 4-byte ids.
#[derive(Debug)]
pub struct SymbolTable<V> {
    /// Id of every symbol ever inserted.
    ids: IdIndex,
    /// Symbol of each id (the interned `Arc`).
    names: Vec<Symbol>,
    /// Value of each id; `None` while the symbol is not in the table.
    slots: Vec<Option<V>>,
    /// Ids present, sorted by symbol.
    order: Vec<SymbolId>,
    /// Id of the last symbol found (a hint only: checked against the key before use).
    last: AtomicU32,
    /// This table's id of each market-table id seen by [`SymbolTable::focus`] (`NONE` when not
    /// known yet). A hint like `last`: whatever it says is checked against the key before use.
    by_market: Vec<u32>,
}

impl<V> Default for SymbolTable<V> {
    fn default() -> Self {
        SymbolTable {
            ids: IdIndex::default(),
            names: Vec::new(),
            slots: Vec::new(),
            order: Vec::new(),
            last: AtomicU32::new(NONE),
            by_market: Vec::new(),
        }
    }
}

impl<V: Clone> Clone for SymbolTable<V> {
    fn clone(&self) -> Self {
        SymbolTable {
            ids: self.ids.clone(),
            names: self.names.clone(),
            slots: self.slots.clone(),
            order: self.order.clone(),
            last: AtomicU32::new(self.last.load(Ordering::Relaxed)),
            by_market: self.by_market.clone(),
        }
    }
}

impl<V> SymbolTable<V> {
    /// Empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `k` if it was ever inserted (present or not).
    #[inline]
    pub fn id(&self, k: &Symbol) -> Option<SymbolId> {
        let hint = self.last.load(Ordering::Relaxed);
        if let Some(s) = self.names.get(hint as usize) {
            if s == k {
                return Some(SymbolId(hint));
            }
        }
        let id = self.ids.get(k)?;
        self.last.store(id.0, Ordering::Relaxed);
        Some(id)
    }

    /// Makes `r`'s row the lookup hint, so that this table's next lookups of `r.symbol` find it
    /// with one comparison (a pointer comparison for the interned copy) instead of hashing its
    /// text and probing the id index: cold lines once the universe outgrows the cache, asked
    /// for once per event by every table the event touches. The market id resolves to this
    /// table's id through `by_market`, learnt on the first focus after `r.symbol` was inserted.
    /// Changes no answer: a hint is checked against the key before use.
    #[inline]
    pub fn focus(&mut self, r: SymbolRef<'_>) {
        let i = r.id.index();
        let own = match self.by_market.get(i) {
            Some(&own) if own != NONE => own,
            _ => {
                let Some(own) = self.ids.get(r.symbol) else { return };
                if self.by_market.len() <= i {
                    self.by_market.resize(i + 1, NONE);
                }
                self.by_market[i] = own.0;
                own.0
            }
        };
        self.last.store(own, Ordering::Relaxed);
    }

    /// Prefetches the row (and interned name) of market id `id`, if [`SymbolTable::focus`] has
    /// learnt it: its address needs no probe, so the hint costs one load.
    #[inline]
    pub fn prefetch_market(&self, id: SymbolId) {
        if let Some(&own) = self.by_market.get(id.index()) {
            if own != NONE {
                crate::engine::prefetch::slice(&self.slots, own as usize..own as usize + 1);
                crate::engine::prefetch::slice(&self.names, own as usize..own as usize + 1);
            }
        }
    }

    /// The id of `k` (ever inserted) from the id index alone: neither reads nor moves the
    /// lookup hint. For prefetching another event's state: the hint holds the current event's
    /// symbol, and checking it against another symbol reads that symbol's interned text, a
    /// line nothing else needs.
    #[inline]
    pub fn peek_id(&self, k: &Symbol) -> Option<SymbolId> {
        self.ids.get(k)
    }

    /// The symbol of an id given by this table.
    pub fn symbol(&self, id: SymbolId) -> Option<&Symbol> {
        self.names.get(id.index())
    }

    /// The value of `k`.
    #[inline]
    pub fn get(&self, k: &Symbol) -> Option<&V> {
        self.get_id(self.id(k)?)
    }

    /// The value of `k`, mutable.
    #[inline]
    pub fn get_mut(&mut self, k: &Symbol) -> Option<&mut V> {
        let id = self.id(k)?;
        self.get_id_mut(id)
    }

    /// The value of an id.
    #[inline]
    pub fn get_id(&self, id: SymbolId) -> Option<&V> {
        self.slots.get(id.index())?.as_ref()
    }

    /// The value of an id, mutable.
    #[inline]
    pub fn get_id_mut(&mut self, id: SymbolId) -> Option<&mut V> {
        self.slots.get_mut(id.index())?.as_mut()
    }

    /// True when `k` is in the table.
    pub fn contains_key(&self, k: &Symbol) -> bool {
        self.get(k).is_some()
    }

    /// Position of `id` (symbol `k`) in `order`: found, or where it goes.
    fn position(&self, k: &Symbol) -> Result<usize, usize> {
        // Appending in symbol order (a universe listing) is the common case: one comparison.
        match self.order.last() {
            None => return Err(0),
            Some(l) if self.names[l.index()] < *k => return Err(self.order.len()),
            _ => {}
        }
        self.order.binary_search_by(|i| self.names[i.index()].cmp(k))
    }

    /// Inserts or replaces; returns the replaced value.
    pub fn insert(&mut self, k: Symbol, v: V) -> Option<V> {
        let id = self.intern(&k);
        self.last.store(id.0, Ordering::Relaxed);
        let old = self.slots[id.index()].replace(v);
        if old.is_none() {
            if let Err(pos) = self.position(&k) {
                self.order.insert(pos, id);
            }
        }
        old
    }

    /// The value of `k`, inserting `make()` first when absent (`BTreeMap::entry(k).or_insert_with`;
    /// clones `k` only when it was never inserted).
    #[inline]
    pub fn get_or_insert_with(&mut self, k: &Symbol, make: impl FnOnce() -> V) -> &mut V {
        let id = self.intern(k);
        self.last.store(id.0, Ordering::Relaxed);
        if self.slots[id.index()].is_none() {
            if let Err(pos) = self.position(k) {
                self.order.insert(pos, id);
            }
        }
        self.slots[id.index()].get_or_insert_with(make)
    }

    /// The id of `k`, assigning the next one when `k` was never inserted (its slot then empty).
    fn intern(&mut self, k: &Symbol) -> SymbolId {
        match self.id(k) {
            Some(id) => id,
            None => {
                let id = SymbolId(self.names.len() as u32);
                self.ids.insert(k, id);
                self.names.push(k.clone());
                self.slots.push(None);
                id
            }
        }
    }

    /// Removes `k`; returns its value (its id stays assigned to it).
    pub fn remove(&mut self, k: &Symbol) -> Option<V> {
        let id = self.id(k)?;
        let old = self.slots[id.index()].take()?;
        if let Ok(pos) = self.position(k) {
            self.order.remove(pos);
        }
        Some(old)
    }

    /// Rows in symbol order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Symbol, &V)> + ExactSizeIterator {
        self.order.iter().map(|id| {
            let i = id.index();
            (&self.names[i], self.slots[i].as_ref().expect("ids in order have a value"))
        })
    }

    /// Rows in symbol order with their ids.
    pub fn iter_ids(&self) -> impl DoubleEndedIterator<Item = (SymbolId, &V)> + ExactSizeIterator {
        self.order.iter().map(|id| (*id, self.slots[id.index()].as_ref().expect("ids in order have a value")))
    }

    /// Values in symbol order, mutable.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        // One `&mut` per slot, handed out in the order of `order` (each id is there once).
        let mut by_id: Vec<Option<&mut V>> = self.slots.iter_mut().map(|v| v.as_mut()).collect();
        let order = self.order.clone();
        order.into_iter().filter_map(move |id| by_id[id.index()].take())
    }

    /// Symbols in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Symbol> + ExactSizeIterator {
        self.order.iter().map(|id| &self.names[id.index()])
    }

    /// Ids present, in symbol order.
    pub fn ids(&self) -> &[SymbolId] {
        &self.order
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
        Get(u8),
        Bump(u8),
        Entry(u8, u32),
        /// Focus on a symbol through its id in another table (the markets').
        Focus(u8),
        /// Focus with another symbol's market id: a wrong hint.
        FocusWrong(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..40, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u8..40).prop_map(Op::Remove),
            (0u8..40).prop_map(Op::Get),
            (0u8..40).prop_map(Op::Bump),
            (0u8..40, any::<u32>()).prop_map(|(k, v)| Op::Entry(k, v)),
            (0u8..40).prop_map(Op::Focus),
            (0u8..40, 0u8..40).prop_map(|(k, j)| Op::FocusWrong(k, j)),
        ]
    }

    proptest! {
        /// Same answers (`get_or_insert_with` as `entry().or_insert_with`, `values_mut`, a
        /// clone) and the same iteration order as a BTreeMap, whatever the cache holds;
        /// a symbol keeps the id it got on first insertion (through removals and re-insertions,
        /// whether its text is held inline by the id index or not)
        /// and no two symbols share one; ids are dense in order of first insertion.
        #[test]
        fn behaves_like_a_btreemap(ops in proptest::collection::vec(op(), 0..300)) {
            let mut t: SymbolTable<u32> = SymbolTable::new();
            let mut m: BTreeMap<Symbol, u32> = BTreeMap::new();
            let mut first: Vec<Symbol> = Vec::new();
            // The market table: ids in another order than `t`'s (symbols enter it when focused).
            let mut market: SymbolTable<()> = SymbolTable::new();
            // Short symbols, both sides of the inline length, and long ones.
            let sym = |k: u8| match k {
                28 => Symbol::new(&format!("{}USDT", "A".repeat(INLINE - 4))),
                29 => Symbol::new(&format!("{}USDT", "A".repeat(INLINE - 3))),
                30.. => Symbol::new(&format!("S{k}{}USDT", "X".repeat(30))),
                _ => Symbol::new(&format!("S{k}USDT")),
            };
            for o in ops {
                match o {
                    Op::Insert(k, v) => {
                        if !first.contains(&sym(k)) {
                            first.push(sym(k));
                        }
                        prop_assert_eq!(t.insert(sym(k), v), m.insert(sym(k), v));
                    }
                    Op::Remove(k) => prop_assert_eq!(t.remove(&sym(k)), m.remove(&sym(k))),
                    Op::Get(k) => {
                        prop_assert_eq!(t.get(&sym(k)), m.get(&sym(k)));
                        prop_assert_eq!(t.contains_key(&sym(k)), m.contains_key(&sym(k)));
                        if let Some(id) = t.id(&sym(k)) {
                            prop_assert_eq!(t.get_id(id), m.get(&sym(k)));
                        }
                    }
                    Op::Bump(k) => {
                        if let Some(v) = t.get_mut(&sym(k)) { *v = v.wrapping_add(1); }
                        if let Some(v) = m.get_mut(&sym(k)) { *v = v.wrapping_add(1); }
                    }
                    Op::Focus(k) => {
                        market.get_or_insert_with(&sym(k), || ());
                        let id = market.id(&sym(k)).expect("just inserted");
                        t.focus(SymbolRef { id, symbol: &sym(k) });
                        prop_assert_eq!(t.get(&sym(k)), m.get(&sym(k)));
                    }
                    Op::FocusWrong(k, j) => {
                        market.get_or_insert_with(&sym(j), || ());
                        let id = market.id(&sym(j)).expect("just inserted");
                        t.focus(SymbolRef { id, symbol: &sym(j) });
                        t.focus(SymbolRef { id, symbol: &sym(k) });
                        prop_assert_eq!(t.get(&sym(k)), m.get(&sym(k)));
                    }
                    Op::Entry(k, v) => {
                        if !first.contains(&sym(k)) {
                            first.push(sym(k));
                        }
                        let a = t.get_or_insert_with(&sym(k), || v);
                        *a = a.wrapping_mul(3);
                        let b = m.entry(sym(k)).or_insert_with(|| v);
                        *b = b.wrapping_mul(3);
                    }
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for (i, v) in t.values_mut().enumerate() { *v = v.wrapping_add(i as u32); }
            for (i, v) in m.values_mut().enumerate() { *v = v.wrapping_add(i as u32); }
            let mut c = t.clone();
            prop_assert_eq!(c.values_mut().map(|v| *v).collect::<Vec<_>>(), m.values().copied().collect::<Vec<_>>());
            let a: Vec<(Symbol, u32)> = t.iter().map(|(s, v)| (s.clone(), *v)).collect();
            let b: Vec<(Symbol, u32)> = m.iter().map(|(s, v)| (s.clone(), *v)).collect();
            prop_assert_eq!(a, b);
            let ka: Vec<&Symbol> = t.keys().collect();
            let kb: Vec<&Symbol> = m.keys().collect();
            prop_assert_eq!(ka, kb);
            for (i, s) in first.iter().enumerate() {
                prop_assert_eq!(t.id(s), Some(SymbolId(i as u32)));
                prop_assert_eq!(t.symbol(SymbolId(i as u32)), Some(s));
            }
            for (id, v) in t.iter_ids() {
                prop_assert_eq!(m.get(&first[id.index()]), Some(v));
            }
        }
    }

    /// Focus resolves a market id to the table's own id once the symbol is in the table, and
    /// points the lookup hint at it (so the next lookups skip the id index).
    #[test]
    fn focus_learns_the_market_id_and_sets_the_hint() {
        let mut t: SymbolTable<u8> = SymbolTable::new();
        let (a, b) = (Symbol::new("AAUSDT"), Symbol::new("BBUSDT"));
        let (ma, mb) = (SymbolId(7), SymbolId(3));
        t.focus(SymbolRef { id: ma, symbol: &a });
        assert!(t.by_market.is_empty(), "nothing learnt for a symbol not in the table");
        t.insert(b.clone(), 1);
        t.insert(a.clone(), 2);
        t.focus(SymbolRef { id: mb, symbol: &b });
        assert_eq!(t.last.load(Ordering::Relaxed), 0);
        t.focus(SymbolRef { id: ma, symbol: &a });
        assert_eq!(t.last.load(Ordering::Relaxed), 1);
        assert_eq!((t.by_market[ma.index()], t.by_market[mb.index()]), (1, 0));
        assert_eq!(t.by_market[0], NONE);
        // Learnt ids are used without the symbol's text: the hint, checked, still answers right.
        t.focus(SymbolRef { id: mb, symbol: &a });
        assert_eq!(t.last.load(Ordering::Relaxed), 0);
        assert_eq!(t.get(&a), Some(&2));
        assert_eq!(t.get(&b), Some(&1));
        // A peek finds an id without moving the hint (left on `b` by the lookup above).
        assert_eq!(t.peek_id(&Symbol::new("AAUSDT")), Some(SymbolId(1)));
        assert_eq!(t.last.load(Ordering::Relaxed), 0);
        assert_eq!(t.peek_id(&Symbol::new("CCUSDT")), None);
    }

    #[test]
    fn ids_follow_first_sight_whatever_the_symbol_order() {
        let mut t: SymbolTable<u8> = SymbolTable::new();
        for (i, s) in ["ZZUSDT", "AAUSDT", "MMUSDT"].iter().enumerate() {
            t.insert(Symbol::new(s), i as u8);
        }
        assert_eq!(t.id(&Symbol::new("AAUSDT")), Some(SymbolId(1)));
        assert_eq!(t.keys().map(|s| s.as_str()).collect::<Vec<_>>(), ["AAUSDT", "MMUSDT", "ZZUSDT"]);
        t.remove(&Symbol::new("ZZUSDT"));
        t.insert(Symbol::new("BBUSDT"), 9);
        t.insert(Symbol::new("ZZUSDT"), 7);
        assert_eq!(t.id(&Symbol::new("ZZUSDT")), Some(SymbolId(0)), "a returning symbol keeps its id");
        assert_eq!(t.id(&Symbol::new("BBUSDT")), Some(SymbolId(3)), "ids are never reused");
    }

    /// What `Markets::interned` hands out: the copy inserted first, whatever copy asks (so maps
    /// filled from it compare by pointer), and it survives removal and re-insertion.
    #[test]
    fn the_symbol_of_an_id_is_the_copy_inserted_first() {
        let mut t: SymbolTable<u8> = SymbolTable::new();
        let first = Symbol::new("AAUSDT");
        t.insert(first.clone(), 1);
        t.remove(&Symbol::new("AAUSDT"));
        t.insert(Symbol::new("AAUSDT"), 2);
        let fresh = Symbol::new("AAUSDT");
        let got = t.id(&fresh).and_then(|id| t.symbol(id)).cloned();
        assert!(got.as_ref().is_some_and(|g| std::sync::Arc::ptr_eq(&g.0, &first.0)));
        assert!(got.is_some_and(|g| !std::sync::Arc::ptr_eq(&g.0, &fresh.0)));
        assert_eq!(t.get(&fresh), Some(&2));
    }

    #[test]
    fn the_hasher_spreads_symbols_that_share_a_prefix() {
        use std::hash::BuildHasher;
        let h = |s: &str| SymbolHash::default().hash_one(Symbol::new(s));
        let mut all: Vec<u64> = (0..2000).map(|i| h(&format!("SYM{i}USDT"))).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2000);
        assert_ne!(h("1000PEPEUSDT"), h("1000PEPEUSDC"));
    }
}
