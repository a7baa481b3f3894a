//! The tradeable universe: which symbols exist, their category (Prime / Normal / Wild) and the
//! book depth each is subscribed at. Pure: every refresh is an event with its time, and the
//! result is a [`UniverseDiff`] the feed edge turns into (un)subscriptions.

use crate::config::{Config, UniverseConfig};
use crate::domain::{Category, Symbol, TimeMs};
use crate::market::data::{Instrument, InstrumentStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

/// One symbol of the universe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Trading rules.
    pub instrument: Instrument,
    pub category: Category,
    /// Book depth subscribed.
    pub depth: u16,
    /// First time the engine saw it.
    pub first_seen_ms: TimeMs,
    /// Appeared after the first refresh: a new listing.
    pub new_listing: bool,
}

/// Why a symbol left the universe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RemovalReason {
    /// No longer in the instrument list, or not trading any more.
    Delisted,
    /// No trade for longer than `universe.inactive_drop_s`.
    Inactive,
}

/// Result of a refresh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UniverseDiff {
    /// Symbols to subscribe (new), with their depth.
    pub added: Vec<(Symbol, u16)>,
    /// Symbols whose depth changed (resubscribe at the new depth).
    pub resubscribe: Vec<(Symbol, u16)>,
    pub removed: Vec<(Symbol, RemovalReason)>,
    /// Symbols that are new listings (subset of `added`).
    pub new_listings: Vec<Symbol>,
}

impl UniverseDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.resubscribe.is_empty() && self.removed.is_empty()
    }
}

/// The universe.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    members: BTreeMap<Symbol, Member>,
    /// Upcoming (PreLaunch) instruments: known, not subscribed.
    upcoming: BTreeMap<Symbol, Instrument>,
    refreshed_once: bool,
    /// The operator's book depths by symbol, in place of the category's.
    depth_overrides: BTreeMap<Symbol, u16>,
}

/// Inputs to classification besides the instrument.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarketStats {
    /// 24 h turnover, USDT.
    pub turnover_24h: Option<f64>,
    /// 24 h change as a fraction.
    pub change_24h: Option<f64>,
}

/// The book depth a member subscribes: the operator's override, else its category's.
fn depth_of(overrides: &BTreeMap<Symbol, u16>, cfg: &Config, sym: &Symbol, cat: Category) -> u16 {
    overrides.get(sym).copied().unwrap_or(cfg.categories.get(cat).book_depth)
}

impl Universe {
    /// Empty universe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Members, sorted by symbol.
    pub fn members(&self) -> impl Iterator<Item = (&Symbol, &Member)> {
        self.members.iter()
    }
    /// One member.
    pub fn get(&self, s: &Symbol) -> Option<&Member> {
        self.members.get(s)
    }
    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// Upcoming (PreLaunch) symbols.
    pub fn upcoming(&self) -> impl Iterator<Item = &Symbol> {
        self.upcoming.keys()
    }

    /// Category of one symbol given stats and the set of top-turnover symbols.
    fn classify(
        cfg: &UniverseConfig,
        inst: &Instrument,
        stats: MarketStats,
        top: &[Symbol],
        new_listing: bool,
        now_ms: TimeMs,
    ) -> Category {
        if cfg.prime_symbols.iter().any(|p| p == inst.symbol.as_str()) || top.contains(&inst.symbol) {
            return Category::Prime;
        }
        let young = now_ms - inst.launch_time_ms < cfg.new_listing_days as i64 * DAY_MS;
        let thin = stats.turnover_24h.is_some_and(|t| t < cfg.wild_max_turnover_24h);
        let wild_move = stats.change_24h.is_some_and(|c| c.abs() >= cfg.wild_min_abs_change_24h);
        if new_listing || young || thin || wild_move {
            Category::Wild
        } else {
            Category::Normal
        }
    }

    /// Replaces the operator's per-symbol book depths; returns the members whose depth changed
    /// (to resubscribe at the new depth), in symbol order.
    pub fn set_depth_overrides(&mut self, cfg: &Config, depths: BTreeMap<Symbol, u16>) -> Vec<(Symbol, u16)> {
        self.depth_overrides = depths;
        let mut changed = Vec::new();
        for (sym, m) in self.members.iter_mut() {
            let depth = depth_of(&self.depth_overrides, cfg, sym, m.category);
            if depth != m.depth {
                m.depth = depth;
                changed.push((sym.clone(), depth));
            }
        }
        changed
    }

    /// Applies a full instrument list received at `now_ms`. `stats` gives per-symbol turnover and
    /// change (from tickers); missing stats classify conservatively (not thin, not wild-moving).
    pub fn refresh(
        &mut self,
        cfg: &Config,
        instruments: &[Instrument],
        stats: &dyn Fn(&Symbol) -> MarketStats,
        now_ms: TimeMs,
    ) -> UniverseDiff {
        let ucfg = &cfg.universe;
        let mut diff = UniverseDiff::default();
        // Trading instruments sorted by symbol, the last of duplicates kept (as a map insert
        // would): a sort of the (usually already sorted) list instead of a map built by
        // inserts, which cost most of a 1 000-symbol refresh in string comparisons.
        let mut listed: Vec<(&Symbol, &Instrument)> = Vec::with_capacity(instruments.len());
        self.upcoming.clear();
        for inst in instruments {
            match inst.status {
                InstrumentStatus::Trading => listed.push((&inst.symbol, inst)),
                InstrumentStatus::PreLaunch => {
                    self.upcoming.insert(inst.symbol.clone(), inst.clone());
                }
                InstrumentStatus::Closed => {}
            }
        }
        listed.sort_by(|a, b| a.0.cmp(b.0));
        listed.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                *kept = *later;
            }
            same
        });
        let is_listed = |s: &Symbol| listed.binary_search_by(|(k, _)| (*k).cmp(s)).is_ok();
        // Top-N by turnover (ties broken by symbol for determinism).
        // Young listings never become Prime through turnover alone.
        let min_age = ucfg.new_listing_days as i64 * DAY_MS;
        let mut by_turnover: Vec<(f64, &Symbol)> = listed
            .iter()
            .filter(|(s, i)| {
                let fresh = match self.members.get(s) {
                    Some(m) => m.new_listing,
                    None => self.refreshed_once,
                };
                now_ms - i.launch_time_ms >= min_age && !fresh
            })
            .filter_map(|(s, _)| stats(s).turnover_24h.filter(|t| *t >= ucfg.wild_max_turnover_24h).map(|t| (t, *s)))
            .collect();
        by_turnover.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let top: Vec<Symbol> = by_turnover.iter().take(ucfg.prime_top_n).map(|(_, s)| (*s).clone()).collect();

        let removed: Vec<Symbol> = self.members.keys().filter(|s| !is_listed(s)).cloned().collect();
        for s in removed {
            self.members.remove(&s);
            diff.removed.push((s, RemovalReason::Delisted));
        }
        // New members are added in one bulk merge after the loop (they come in symbol order).
        let mut fresh: Vec<(Symbol, Member)> = Vec::new();
        for (sym, inst) in listed {
            let st = stats(sym);
            match self.members.get_mut(sym) {
                Some(m) => {
                    m.instrument = inst.clone();
                    let cat = Self::classify(ucfg, inst, st, &top, m.new_listing, now_ms);
                    let depth = depth_of(&self.depth_overrides, cfg, sym, cat);
                    m.category = cat;
                    if depth != m.depth {
                        m.depth = depth;
                        diff.resubscribe.push((sym.clone(), depth));
                    }
                    if m.new_listing && now_ms - m.first_seen_ms >= ucfg.new_listing_days as i64 * DAY_MS {
                        m.new_listing = false;
                    }
                }
                None => {
                    let new_listing = self.refreshed_once;
                    let cat = Self::classify(ucfg, inst, st, &top, new_listing, now_ms);
                    let depth = depth_of(&self.depth_overrides, cfg, sym, cat);
                    fresh.push((
                        sym.clone(),
                        Member { instrument: inst.clone(), category: cat, depth, first_seen_ms: now_ms, new_listing },
                    ));
                    diff.added.push((sym.clone(), depth));
                    if new_listing {
                        diff.new_listings.push(sym.clone());
                    }
                }
            }
        }
        if !fresh.is_empty() {
            let mut add: BTreeMap<Symbol, Member> = fresh.into_iter().collect();
            self.members.append(&mut add);
        }
        self.refreshed_once = true;
        diff
    }

    /// Drops members with no trade for longer than `inactive_drop_s`; `last_trade` gives each
    /// symbol's last trade time (or first-seen time when it never traded).
    pub fn drop_inactive(
        &mut self,
        cfg: &UniverseConfig,
        last_activity: &dyn Fn(&Symbol) -> Option<TimeMs>,
        now_ms: TimeMs,
    ) -> Vec<Symbol> {
        let limit = cfg.inactive_drop_s as i64 * 1000;
        let gone: Vec<Symbol> = self
            .members
            .iter()
            .filter(|(s, m)| now_ms - last_activity(s).unwrap_or(m.first_seen_ms).max(m.first_seen_ms) > limit)
            .map(|(s, _)| s.clone())
            .collect();
        for s in &gone {
            self.members.remove(s);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty};

    fn inst(s: &str, status: InstrumentStatus, launch: TimeMs) -> Instrument {
        Instrument {
            symbol: Symbol::new(s),
            status,
            tick_size: Price::parse("0.1").unwrap(),
            qty_step: Qty::parse("0.001").unwrap(),
            min_qty: Qty::parse("0.001").unwrap(),
            max_qty: Qty::parse("100").unwrap(),
            min_notional: Price::parse("5").unwrap(),
            max_leverage: Price::parse("50").unwrap(),
            launch_time_ms: launch,
        }
    }

    #[test]
    fn classifies_and_diffs() {
        let cfg = Config::default();
        let now = 100 * DAY_MS;
        let list = vec![
            inst("BTCUSDT", InstrumentStatus::Trading, 0),
            inst("AAAUSDT", InstrumentStatus::Trading, 0),
            inst("THINUSDT", InstrumentStatus::Trading, 0),
            inst("YOUNGUSDT", InstrumentStatus::Trading, now - DAY_MS),
            inst("SOONUSDT", InstrumentStatus::PreLaunch, now + DAY_MS),
        ];
        let stats = |s: &Symbol| MarketStats {
            turnover_24h: Some(if s.as_str() == "THINUSDT" { 1_000.0 } else { 1e8 }),
            change_24h: Some(0.01),
        };
        let mut u = Universe::new();
        let d = u.refresh(&cfg, &list, &stats, now);
        assert_eq!(d.added.len(), 4);
        assert!(d.new_listings.is_empty(), "first refresh is the baseline");
        assert_eq!(u.get(&Symbol::new("BTCUSDT")).unwrap().category, Category::Prime);
        assert_eq!(u.get(&Symbol::new("BTCUSDT")).unwrap().depth, 200);
        assert_eq!(u.get(&Symbol::new("THINUSDT")).unwrap().category, Category::Wild);
        assert_eq!(u.get(&Symbol::new("YOUNGUSDT")).unwrap().category, Category::Wild);
        assert_eq!(u.upcoming().count(), 1);

        // New listing and a delisting on the next refresh.
        let mut list2 = list.clone();
        list2.retain(|i| i.symbol.as_str() != "AAAUSDT");
        list2.push(inst("NEWUSDT", InstrumentStatus::Trading, 0));
        let d = u.refresh(&cfg, &list2, &stats, now + 15_000);
        assert_eq!(d.added, vec![(Symbol::new("NEWUSDT"), 50)]);
        assert_eq!(d.new_listings, vec![Symbol::new("NEWUSDT")]);
        assert_eq!(d.removed, vec![(Symbol::new("AAAUSDT"), RemovalReason::Delisted)]);
        assert_eq!(u.get(&Symbol::new("NEWUSDT")).unwrap().category, Category::Wild);

        // A symbol that stops trading is removed too.
        let mut list3 = list2.clone();
        for i in &mut list3 {
            if i.symbol.as_str() == "THINUSDT" {
                i.status = InstrumentStatus::Closed;
            }
        }
        let d = u.refresh(&cfg, &list3, &stats, now + 30_000);
        assert_eq!(d.removed, vec![(Symbol::new("THINUSDT"), RemovalReason::Delisted)]);
    }

    #[test]
    fn inactive_symbols_are_dropped() {
        let cfg = Config::default();
        let mut u = Universe::new();
        let list = vec![inst("AAAUSDT", InstrumentStatus::Trading, 0), inst("BBBUSDT", InstrumentStatus::Trading, 0)];
        u.refresh(&cfg, &list, &|_| MarketStats::default(), 0);
        let last = |s: &Symbol| if s.as_str() == "AAAUSDT" { Some(3_000_000) } else { None };
        let gone = u.drop_inactive(&cfg.universe, &last, 3_700_000);
        assert_eq!(gone, vec![Symbol::new("BBBUSDT")]);
        assert_eq!(u.len(), 1);
    }
}
