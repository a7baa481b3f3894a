//! The core's per-symbol state, kept in symbol order (iteration is deterministic, as with the
//! `BTreeMap` it replaces) with a one-entry lookup cache: the ten pipeline steps of one event
//! look up the same symbol a dozen times, and a hit costs one string comparison instead of a
//! binary search comparing ~log2(universe) strings.

use crate::domain::Symbol;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Symbol → value, sorted by symbol. Inserts and removes (universe changes) are O(n) moves of
/// boxed values; lookups are a binary search, or one comparison when the same symbol as the
/// previous lookup is asked again.
#[derive(Debug)]
pub struct SymbolTable<V> {
    /// Sorted by symbol, no duplicates.
    rows: Vec<(Symbol, Box<V>)>,
    /// Index of the last row found (a hint only: checked against the key before use; may be
    /// out of range after a removal).
    last: AtomicUsize,
}

impl<V> Default for SymbolTable<V> {
    fn default() -> Self {
        SymbolTable { rows: Vec::new(), last: AtomicUsize::new(usize::MAX) }
    }
}

impl<V> SymbolTable<V> {
    /// Empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, k: &Symbol) -> Result<usize, usize> {
        let hint = self.last.load(Ordering::Relaxed);
        if let Some((s, _)) = self.rows.get(hint) {
            if s == k {
                return Ok(hint);
            }
        }
        let r = self.rows.binary_search_by(|(s, _)| s.cmp(k));
        if let Ok(i) = r {
            self.last.store(i, Ordering::Relaxed);
        }
        r
    }

    /// The value of `k`.
    pub fn get(&self, k: &Symbol) -> Option<&V> {
        self.find(k).ok().map(|i| &*self.rows[i].1)
    }

    /// The value of `k`, mutable.
    pub fn get_mut(&mut self, k: &Symbol) -> Option<&mut V> {
        match self.find(k) {
            Ok(i) => Some(&mut *self.rows[i].1),
            Err(_) => None,
        }
    }

    /// True when `k` is in the table.
    pub fn contains_key(&self, k: &Symbol) -> bool {
        self.find(k).is_ok()
    }

    /// Inserts or replaces; returns the replaced value.
    pub fn insert(&mut self, k: Symbol, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(i) => Some(*std::mem::replace(&mut self.rows[i].1, Box::new(v))),
            Err(i) => {
                self.rows.insert(i, (k, Box::new(v)));
                self.last.store(i, Ordering::Relaxed);
                None
            }
        }
    }

    /// Removes `k`; returns its value.
    pub fn remove(&mut self, k: &Symbol) -> Option<V> {
        match self.find(k) {
            Ok(i) => {
                self.last.store(usize::MAX, Ordering::Relaxed);
                Some(*self.rows.remove(i).1)
            }
            Err(_) => None,
        }
    }

    /// Rows in symbol order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Symbol, &V)> + ExactSizeIterator {
        self.rows.iter().map(|(s, v)| (s, &**v))
    }

    /// Rows in symbol order, values mutable.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&Symbol, &mut V)> + ExactSizeIterator {
        self.rows.iter_mut().map(|(s, v)| (&*s, &mut **v))
    }

    /// Symbols in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Symbol> + ExactSizeIterator {
        self.rows.iter().map(|(s, _)| s)
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl<'a, V> IntoIterator for &'a SymbolTable<V> {
    type Item = (&'a Symbol, &'a V);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (Symbol, Box<V>)>, fn(&'a (Symbol, Box<V>)) -> (&'a Symbol, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        fn row<V>((s, v): &(Symbol, Box<V>)) -> (&Symbol, &V) {
            (s, &**v)
        }
        self.rows.iter().map(row::<V> as fn(&'a (Symbol, Box<V>)) -> (&'a Symbol, &'a V))
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
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..40, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u8..40).prop_map(Op::Remove),
            (0u8..40).prop_map(Op::Get),
            (0u8..40).prop_map(Op::Bump),
        ]
    }

    proptest! {
        /// Same answers and the same iteration order as a BTreeMap, whatever the cache holds.
        #[test]
        fn behaves_like_a_btreemap(ops in proptest::collection::vec(op(), 0..300)) {
            let mut t: SymbolTable<u32> = SymbolTable::new();
            let mut m: BTreeMap<Symbol, u32> = BTreeMap::new();
            let sym = |k: u8| Symbol::new(&format!("S{k}USDT"));
            for o in ops {
                match o {
                    Op::Insert(k, v) => prop_assert_eq!(t.insert(sym(k), v), m.insert(sym(k), v)),
                    Op::Remove(k) => prop_assert_eq!(t.remove(&sym(k)), m.remove(&sym(k))),
                    Op::Get(k) => {
                        prop_assert_eq!(t.get(&sym(k)), m.get(&sym(k)));
                        prop_assert_eq!(t.contains_key(&sym(k)), m.contains_key(&sym(k)));
                    }
                    Op::Bump(k) => {
                        if let Some(v) = t.get_mut(&sym(k)) { *v = v.wrapping_add(1); }
                        if let Some(v) = m.get_mut(&sym(k)) { *v = v.wrapping_add(1); }
                    }
                }
                prop_assert_eq!(t.len(), m.len());
            }
            let a: Vec<(Symbol, u32)> = t.iter().map(|(s, v)| (s.clone(), *v)).collect();
            let b: Vec<(Symbol, u32)> = m.iter().map(|(s, v)| (s.clone(), *v)).collect();
            prop_assert_eq!(a, b);
            let ka: Vec<&Symbol> = t.keys().collect();
            let kb: Vec<&Symbol> = m.keys().collect();
            prop_assert_eq!(ka, kb);
        }
    }
}
