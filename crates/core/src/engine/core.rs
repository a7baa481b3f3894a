//! The engine's real pipeline: owns all market state and (as later capabilities land) features,
//! regime, scoring, state machines, risk and execution. Everything here is synchronous and
//! deterministic: maps are ordered, time comes from the event.

use crate::config::paths::DataKind;
use crate::config::Config;
use crate::domain::{Category, Symbol, TimeMs};
use crate::engine::desk::{Desk, DeskFlags};
use crate::engine::event::{ControlCommand, Mode};
use crate::engine::event::{Event, EventKind, FeedState, TimerKind};
use crate::engine::markets::SymbolMarket;
use crate::engine::markets::{MarketSpec, Markets};
use crate::engine::output::{FeedCommand, Output, StatusChange};
use crate::engine::record::{BaselineSource, EventRecord};
use crate::engine::second_work::{SecondDue, SecondWork};
use crate::engine::symbol_table::SymbolTable;
use crate::engine::{Pipeline, Tick};
use crate::execution::integrity::{KillReason, KillSwitch};
use crate::execution::mode::ModeManager;
use crate::execution::order::Intent;
use crate::features::ManualNewsSource;
use crate::intel::{IntelConfig, IntelEvent};
use crate::market::candles::Candle;
use crate::market::data::{Instrument, TickerUpdate};
use crate::market::orderbook::BookChanges;
use crate::market::profile::{ProfilePolicy, SymbolOverride, SymbolProfile};
use crate::market::universe::{MarketStats, RemovalReason, Universe};
use crate::regime::global::{GlobalRegime, GlobalRegimeChange, GlobalRegimeTracker};
use crate::scoring::SignalLevel;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod second;

mod universe;

mod control;

/// A book that got no update for this long while its symbol traded is stale, ms.
pub const STALE_BOOK_MS: i64 = 30_000;
/// A resync still unanswered after this long is asked again, ms.
pub const RESYNC_RETRY_MS: i64 = 5_000;
/// Feature snapshots (`data/metrics/<SYMBOL>.json`) are written at most this often, ms.
pub const FEATURE_SNAPSHOT_EVERY_MS: i64 = 15_000;
/// Each warm symbol's baselines are written into its profile this often, seconds.
pub const BASELINE_PERSIST_EVERY_S: i64 = 60;

/// With `engine.prefetch` on, from this many registered symbols on, each market event's symbol
/// state is prefetched (see [`crate::engine::prefetch`]). Below this a universe's hot state
/// (2520 bytes a symbol, [`crate::engine::markets::SymbolMarket::HOT_BYTES`], plus the book and
/// ring lines an event reads) stays in a core's private L2 cache, and the prefetch would only
/// add instructions (~450 per event, +3.8 % at 50 symbols, callgrind).
pub const PREFETCH_FROM_SYMBOLS: usize = 64;

/// Counters the core keeps (exported as metrics by the edge).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoreCounters {
    /// Book updates applied.
    pub book_updates: u64,
    /// Book updates whose imbalance zones were re-summed from the book (a snapshot, a moved
    /// mid, a large delta); the others were kept from the delta's level changes.
    pub zone_rescans: u64,
    /// Book errors by reason (`gap`, `stale`, `crossed`, …).
    pub book_errors: BTreeMap<&'static str, u64>,
    /// Resyncs requested.
    pub resyncs: u64,
    /// Trades processed.
    pub trades: u64,
    /// Market events for symbols outside the universe (ignored).
    pub unknown_symbol_events: u64,
    pub candles_closed: u64,
    /// Times the aggregate feed left CONNECTED.
    pub feed_outages: u64,
}

/// Engine-level flags visible to every step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GlobalFlags {
    /// Aggregate feed state.
    pub feed: Option<FeedState>,
    /// Since when the feed is not CONNECTED.
    pub feed_not_ok_since: Option<TimeMs>,
    /// Feed down for too long: RISK_OFF.
    pub feed_risk_off: bool,
    /// The store cannot write ([`EventKind::StorageHealth`]): new entries are refused.
    pub storage_down: bool,
}

/// Operator controls, changed only by control events.
#[derive(Debug, Clone)]
pub struct Controls {
    /// Execution mode (SIM / DRY_RUN; LIVE only through the PIN flow).
    pub mode: ModeManager,
    /// New entries paused.
    pub paused: bool,
    /// Symbols blocked from new signals.
    pub blacklist: BTreeSet<Symbol>,
    /// Kill switch (manual PANIC, feed/API failure, extreme market).
    pub kill: KillSwitch,
}

/// The real pipeline.
pub struct CorePipeline {
    cfg: Arc<Config>,
    controls: Controls,
    universe: Universe,
    /// Market state by symbol id (ordered for iteration; built on each symbol's first access).
    symbols: Markets,
    /// The intelligence configuration shared by the symbols registered under the current
    /// configuration (one clone per configuration, not per symbol).
    intel_cfg: Arc<IntelConfig>,
    stats: BTreeMap<Symbol, MarketStats>,
    flags: GlobalFlags,
    counters: CoreCounters,
    /// Candles closed during the current event, logged by the logging step.
    closed: Vec<(Symbol, Candle)>,
    /// The level changes of the current event's book update (market step), from which the
    /// features step keeps the symbol's zone depths without a rescan.
    book_changes: BookChanges,
    /// Manual news flags (control plane, news file, automatic listing flags).
    news: ManualNewsSource,
    global: GlobalRegimeTracker,
    /// Trading desk.
    desk: Desk,
    /// Intents produced in this tick, executed by the execution step.
    intents: Vec<Intent>,
    /// Last feature-snapshot write (event time).
    last_feature_snapshot_ms: TimeMs,
    /// Symbol profiles.
    /// Hashed (see [`SymbolTable`]): read twice per market event by `desk_flags`.
    profiles: SymbolTable<SymbolProfile>,
    profile_policy: ProfilePolicy,
    /// Symbols blacklisted by their profile (and only those are un-blacklisted by it).
    auto_blacklisted: BTreeSet<Symbol>,
    /// The operator's per-symbol overrides ([`ControlCommand::SetOverrides`]).
    overrides: BTreeMap<Symbol, SymbolOverride>,
    /// The one-second timer's per-symbol work, spread over the following events.
    second: SecondWork,
}

fn book_error_label(e: &crate::market::orderbook::BookError) -> &'static str {
    use crate::market::orderbook::BookError as B;
    match e {
        B::NoSnapshot { .. } => "no_snapshot",
        B::Stale { .. } => "stale",
        B::Gap { .. } => "gap",
        B::OffTick { .. } => "off_tick",
        B::InvalidLevel { .. } => "invalid_level",
        B::Crossed { .. } => "crossed",
        B::Oversized { .. } => "oversized",
        _ => "other",
    }
}

impl CorePipeline {
    /// New pipeline with a configuration.
    pub fn new(cfg: Arc<Config>) -> Self {
        // The configuration never holds LIVE (validation refuses it); fall back to SIM if it did.
        let mode = ModeManager::new(cfg.mode, 0)
            .unwrap_or_else(|_| ModeManager::new(Mode::Sim, 0).expect("SIM is always a valid start mode"));
        CorePipeline {
            controls: Controls { mode, paused: false, blacklist: BTreeSet::new(), kill: KillSwitch::new() },
            universe: Universe::new(),
            symbols: Markets::new(),
            intel_cfg: Arc::new(cfg.intel.clone()),
            stats: BTreeMap::new(),
            flags: GlobalFlags::default(),
            counters: CoreCounters::default(),
            closed: Vec::new(),
            book_changes: BookChanges::default(),
            news: ManualNewsSource::new(cfg.intel.news.clone()),
            global: GlobalRegimeTracker::new(cfg.global_regime(), 0),
            desk: Desk::new(&cfg),
            intents: Vec::new(),
            last_feature_snapshot_ms: 0,
            profiles: SymbolTable::new(),
            profile_policy: ProfilePolicy::default(),
            auto_blacklisted: BTreeSet::new(),
            overrides: BTreeMap::new(),
            second: SecondWork::new(),
            cfg,
        }
    }

    /// The trading desk (portfolio, machines, venue).
    pub fn desk(&self) -> &Desk {
        &self.desk
    }
    pub fn global_regime(&self) -> GlobalRegime {
        self.global.regime()
    }
    /// Manual news flags.
    pub fn news(&self) -> &ManualNewsSource {
        &self.news
    }

    /// Symbol profiles.
    pub fn profiles(&self) -> &SymbolTable<SymbolProfile> {
        &self.profiles
    }

    /// Every warm symbol's profile with its current baselines, as `(symbol, body)`: what the edge
    /// writes at shutdown so a restart resumes from the latest baselines, not from the last
    /// minute's (a read: the core's state does not change).
    pub fn baseline_profiles(&self) -> Vec<(String, serde_json::Value)> {
        self.symbols
            .iter()
            .filter(|(_, m)| m.intel.baselines().warm())
            .map(|(s, m)| {
                let mut p = self.profiles.get(s).cloned().unwrap_or_else(|| SymbolProfile::new(s.clone()));
                p.baselines = Some(m.intel.baselines().state());
                (s.as_str().to_string(), serde_json::to_value(&p).unwrap_or_default())
            })
            .collect()
    }

    fn log_intel(sym: &Symbol, evs: Vec<IntelEvent>, now: TimeMs, t: &mut Tick<'_>) {
        for e in evs {
            t.out.record(Some(sym.clone()), now, e);
        }
    }

    fn log_global(ch: Option<GlobalRegimeChange>, t: &mut Tick<'_>) {
        if let Some(c) = ch {
            tracing::warn!(from = c.from.as_str(), to = c.to.as_str(), reason = %c.reason, "global regime change");
            t.out.record(None, c.ts_ms, EventRecord::GlobalRegime { from: c.from, to: c.to, reason: &c.reason });
        }
    }

    fn desk_flags(&self, sym: &Symbol, degraded: bool) -> DeskFlags {
        let o = self.overrides.get(sym);
        let learnt = self.profiles.get(sym).map(|p| p.size_multiplier).unwrap_or(1.0);
        DeskFlags {
            paused: self.controls.paused,
            blacklisted: self.controls.blacklist.contains(sym) || o.and_then(|o| o.blacklisted).unwrap_or(false),
            kill: self.controls.kill.is_engaged(),
            degraded,
            global_risk_off: self.flags.feed_risk_off
                || self.flags.feed != Some(FeedState::Connected)
                || self.global.regime() != GlobalRegime::GlobalNormal,
            size_multiplier: o.and_then(|o| o.size_multiplier).map_or(learnt, |m| m.min(learnt)),
            storage_down: self.flags.storage_down,
            max_leverage: o.and_then(|o| o.max_leverage),
            max_notional: o.and_then(|o| o.max_notional),
        }
    }

    /// Score points a symbol's signals need on top of the thresholds: the profile's plus the
    /// operator's override.
    fn extra_score_of(&self, sym: &Symbol) -> f64 {
        self.profiles.get(sym).map_or(0.0, |p| p.extra_score)
            + self.overrides.get(sym).and_then(|o| o.extra_score).unwrap_or(0.0)
    }

    pub fn universe(&self) -> &Universe {
        &self.universe
    }
    /// Market state of a symbol.
    pub fn symbol(&self, s: &Symbol) -> Option<&SymbolMarket> {
        self.symbols.get(s)
    }
    /// The id of a symbol ever in the universe (ids follow first registration, never reused).
    pub fn symbol_id(&self, s: &Symbol) -> Option<crate::engine::symbol_table::SymbolId> {
        self.symbols.id(s)
    }
    /// The market table (tests of its prefetch hints).
    #[cfg(test)]
    pub(crate) fn markets(&self) -> &crate::engine::markets::Markets {
        &self.symbols
    }
    /// Symbols whose market state is built (the others are registered, built on first access).
    pub fn built_symbols(&self) -> usize {
        self.symbols.built()
    }
    /// All symbols' market state, sorted.
    pub fn symbols(&self) -> impl Iterator<Item = (&Symbol, &SymbolMarket)> {
        self.symbols.iter()
    }
    pub fn counters(&self) -> &CoreCounters {
        &self.counters
    }
    /// Global flags.
    pub fn flags(&self) -> &GlobalFlags {
        &self.flags
    }
    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.cfg
    }
    /// Operator controls.
    pub fn controls(&self) -> &Controls {
        &self.controls
    }
    /// Current execution mode.
    pub fn mode(&self) -> Mode {
        self.controls.mode.mode()
    }
}

impl Pipeline for CorePipeline {
    fn prefetch(&self, next: &Event, distance: usize) {
        if self.cfg.engine.prefetch && self.symbols.len() >= PREFETCH_FROM_SYMBOLS {
            if let Some(s) = next.symbol() {
                if distance <= 1 {
                    let trade = matches!(next.kind, EventKind::Trades(_));
                    if let Some(id) = self.symbols.prefetch(s, next.now_ms(), trade) {
                        self.desk.prefetch(id);
                        self.global.prefetch(id);
                    }
                } else {
                    self.symbols.prefetch_hot(s);
                }
            }
        }
    }

    fn market_update(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        // The event's own state, in case no earlier tick was given it as a hint.
        self.prefetch(t.event, 1);
        self.schedule_second_work(t);
        let slice = self.second.take_slice();
        self.second_market(&slice, t);
        self.second.put_slice(slice);
        match &t.event.kind {
            EventKind::Book(upd) => {
                self.book_changes.clear();
                let Some(m) = self.symbols.get_mut(&upd.symbol) else {
                    self.counters.unknown_symbol_events += 1;
                    return;
                };
                match m.book.apply_tracked(upd, &mut self.book_changes) {
                    Ok(_) => {
                        self.counters.book_updates += 1;
                        m.last_book_ms = Some(now);
                        if m.book.is_valid() {
                            m.resync_pending_since = None;
                        }
                    }
                    Err(e) => {
                        let label = book_error_label(&e);
                        m.book_errors += 1;
                        *self.counters.book_errors.entry(label).or_default() += 1;
                        let pending = m.resync_pending_since.is_some();
                        if !pending {
                            tracing::warn!(symbol = %upd.symbol, error = %e, "book invalid: resyncing");
                            t.out.record(
                                Some(upd.symbol.clone()),
                                now,
                                EventRecord::BookInvalid { reason: label, detail: Some(e.to_string()) },
                            );
                            let s = upd.symbol.clone();
                            self.request_resync(&s, now, t);
                        }
                    }
                }
            }
            EventKind::Trades(batch) => {
                let Some(m) = self.symbols.get_mut(&batch.symbol) else {
                    self.counters.unknown_symbol_events += 1;
                    return;
                };
                m.tape.extend(batch.trades.iter());
                self.counters.trades += batch.trades.len() as u64;
                m.last_trade_ms = Some(now);
            }
            EventKind::Ticker(tk) => {
                let st = self.stats.entry(tk.symbol.clone()).or_default();
                if tk.turnover_24h.is_some() {
                    st.turnover_24h = tk.turnover_24h;
                }
                if tk.price_24h_pcnt.is_some() {
                    st.change_24h = tk.price_24h_pcnt;
                }
                if let Some(m) = self.symbols.get_mut(&tk.symbol) {
                    merge_ticker(&mut m.ticker, tk);
                }
            }
            EventKind::Universe(list) => self.on_universe(list, now, t),
            EventKind::Feed { connection, state } => self.on_feed(*connection, *state, now, t),
            EventKind::Timer(TimerKind::Second) => self.on_second(now, t),
            EventKind::Timer(TimerKind::Universe) => self.on_universe_timer(now, t),
            EventKind::ConfigReload(cfg) => {
                self.cfg = cfg.clone();
                self.intel_cfg = Arc::new(cfg.intel.clone());
                // Every symbol takes it now, not only those registered after the reload.
                self.symbols.reconfigure(&self.intel_cfg, |c| cfg.cost_params(c));
                self.global.set_config(cfg.global_regime());
                self.news.set_config(cfg.intel.news.clone());
                self.desk.reconfigure(cfg);
            }
            EventKind::Control(cmd) => self.on_control(cmd, now, t),
            EventKind::BookShed(sym) => {
                let pending = match self.symbols.get_mut(sym) {
                    Some(m) => {
                        m.book.invalidate();
                        *self.counters.book_errors.entry("shed").or_default() += 1;
                        m.resync_pending_since.is_some()
                    }
                    None => true,
                };
                if !pending {
                    t.out.record(Some(sym.clone()), now, EventRecord::BookInvalid { reason: "shed", detail: None });
                    let s = sym.clone();
                    self.request_resync(&s, now, t);
                }
            }
            EventKind::StorageHealth { up, detail } => {
                if self.flags.storage_down == *up {
                    self.flags.storage_down = !*up;
                    let rec = if *up {
                        EventRecord::StorageUp { detail }
                    } else {
                        tracing::error!(%detail, "storage DOWN: new entries refused until writes succeed again");
                        EventRecord::StorageDown { detail }
                    };
                    t.out.record(None, now, rec);
                }
            }
            EventKind::Liquidation(_)
            | EventKind::Venue(_)
            | EventKind::Degraded { .. }
            | EventKind::History(_)
            | EventKind::Baselines { .. } => {}
        }
    }

    fn microstructure(&mut self, t: &mut Tick<'_>) {
        if let EventKind::Trades(batch) = &t.event.kind {
            if let Some(m) = self.symbols.get_mut(&batch.symbol) {
                for tr in &batch.trades {
                    for c in m.candles.on_trade(tr) {
                        self.closed.push((batch.symbol.clone(), c));
                    }
                }
            }
        }
    }

    fn features(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        if matches!(t.event.kind, EventKind::Timer(TimerKind::Second)) {
            for f in self.news.expire(now) {
                t.out.record(Some(f.symbol.clone()), now, EventRecord::NewsFlagExpired);
            }
        }
        // The slice's second-work comes before the event's own features.
        let slice = self.second.take_slice();
        for (s, d) in &slice {
            if let Some(m) = self.symbols.get_mut(s) {
                let evs = m.intel.on_second(&m.candles, &m.book, &self.news, d.at);
                Self::note_intel(&mut self.profiles, s, &evs, d.at);
                Self::log_intel(s, evs, d.at, t);
            }
        }
        self.second.put_slice(slice);
        match &t.event.kind {
            EventKind::Book(b) => {
                if let Some(m) = self.symbols.get_mut(&b.symbol) {
                    let rescans = m.intel.zone_rescans();
                    let evs = m.intel.on_book_tracked(&m.book, Some(&self.book_changes), now);
                    self.counters.zone_rescans += m.intel.zone_rescans() - rescans;
                    Self::note_intel(&mut self.profiles, &b.symbol, &evs, now);
                    Self::log_intel(&b.symbol, evs, now, t);
                }
            }
            EventKind::Trades(batch) => {
                if let Some(m) = self.symbols.get_mut(&batch.symbol) {
                    let evs = m.intel.on_trades(&batch.trades, now);
                    Self::note_intel(&mut self.profiles, &batch.symbol, &evs, now);
                    Self::log_intel(&batch.symbol, evs, now, t);
                }
            }
            EventKind::Liquidation(l) => {
                if let Some(m) = self.symbols.get_mut(&l.symbol) {
                    let evs = m.intel.on_liquidation(l, now);
                    Self::log_intel(&l.symbol, evs, now, t);
                }
            }
            EventKind::History(h) => {
                if let Some(m) = self.symbols.get_mut(&h.symbol) {
                    let before = m.intel.baselines().volatility_warm();
                    let evs = m.intel.on_history(h, now);
                    let seeded = !before && m.intel.baselines().volatility_warm();
                    let source = BaselineSource::Kline {
                        klines: h.klines.len(),
                        sigma_60s_pct: m.intel.baselines().sigma_pct(60.0, 0.0),
                    };
                    t.out.record(Some(h.symbol.clone()), now, EventRecord::BaselineSeeded { taken: seeded, source });
                    Self::log_intel(&h.symbol, evs, now, t);
                } else {
                    self.counters.unknown_symbol_events += 1;
                }
            }
            EventKind::Baselines { symbol, state } => {
                if let Some(m) = self.symbols.get_mut(symbol) {
                    let before = m.intel.baselines().warm();
                    let evs = m.intel.on_baselines(state, now);
                    let source = BaselineSource::Profile { age_s: (now - state.updated_ms) / 1000 };
                    let taken = !before && m.intel.baselines().warm();
                    t.out.record(Some(symbol.clone()), now, EventRecord::BaselineSeeded { taken, source });
                    Self::log_intel(symbol, evs, now, t);
                } else {
                    self.counters.unknown_symbol_events += 1;
                }
            }
            _ => {}
        }
    }

    fn regime(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        match &t.event.kind {
            EventKind::Timer(TimerKind::Second) => {
                let ch = self.global.on_second(now);
                Self::log_global(ch, t);
            }
            EventKind::Feed { connection: 0, state } => {
                let ch = self.global.on_feed(*state == FeedState::Connected, now);
                Self::log_global(ch, t);
            }
            _ => {
                if let Some(r) = self.symbols.event_ref(t.event) {
                    if let Some(m) = self.symbols.get_id(r.id) {
                        self.global.focus(r);
                        let ch = self.global.observe(r.symbol, m.intel.snapshot(), now);
                        Self::log_global(ch, t);
                    }
                }
            }
        }
    }

    fn scoring(&mut self, t: &mut Tick<'_>) {
        if let Some(sym) = t.event.symbol() {
            if let Some(m) = self.symbols.get_mut(sym) {
                m.score = m.intel.score();
            }
        }
    }

    fn state_machine(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        if !matches!(t.event.kind, EventKind::Book(_) | EventKind::Trades(_)) {
            return;
        }
        let Some(r) = self.symbols.event_ref(t.event) else { return };
        self.desk.focus(r);
        self.profiles.focus(r);
        let sym = r.symbol;
        let global = self.global.regime();
        let flags = self.desk_flags(sym, t.degraded);
        let Some(m) = self.symbols.get(sym) else { return };
        if !m.book.is_valid() {
            return;
        }
        let best = m.score.long.max(m.score.short);
        let level = m.intel.signal(best, global, &self.cfg.thresholds, now);
        let regime_ok = level != SignalLevel::Blocked && !flags.blacklisted && !flags.paused && !flags.kill;
        let regime = m.intel.regime().state;
        let (f, score, extra) = (*m.intel.snapshot(), m.score.clone(), m.intel.extra_threshold());
        self.desk.on_signal(sym, &f, &score, regime, regime_ok, extra, now, t.out);
    }

    fn risk(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        if !matches!(t.event.kind, EventKind::Book(_) | EventKind::Trades(_)) {
            return;
        }
        let Some(sym) = self.symbols.event_symbol(t.event) else { return };
        let flags = self.desk_flags(sym, t.degraded);
        let Some(m) = self.symbols.get(sym) else { return };
        let regime = m.intel.regime().state;
        if let Some(i) = self.desk.plan_entry(
            sym,
            &self.cfg,
            &m.instrument,
            m.category,
            &m.book,
            m.intel.snapshot(),
            regime,
            flags,
            self.controls.mode.mode(),
            now,
            t.out,
        ) {
            self.intents.push(i);
        }
    }

    fn execution(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        let mode = self.controls.mode.mode();
        if matches!(t.event.kind, EventKind::Timer(TimerKind::Second)) {
            let symbols = &self.symbols;
            self.desk.tick_untracked(|s| symbols.contains_key(s), now, t.out);
        }
        // The slice's machine ticks, entry timeouts and max hold, as of its boundary time.
        let slice = self.second.take_slice();
        for (s, d) in &slice {
            if self.symbols.contains_key(s) {
                self.desk.tick_symbol(s, d.at, t.out);
                self.intents.extend(self.desk.on_second(s, d.at));
            }
        }
        self.second.put_slice(slice);
        // The slice's lookups moved the desk's hints off the event's symbol.
        let event_ref = self.symbols.event_ref(t.event);
        if let Some(r) = event_ref {
            self.desk.focus(r);
        }
        match &t.event.kind {
            EventKind::Trades(batch) => {
                if let Some(m) = self.symbols.get(&batch.symbol) {
                    self.desk.on_trades(mode, batch, &m.book, now, t.out);
                }
            }
            EventKind::Timer(TimerKind::Second) => {
                if self.controls.kill.is_engaged() {
                    let flat = self.desk.flatten(&self.controls.kill, mode, now, t.out);
                    self.intents.extend(flat);
                }
                self.desk.reconcile(mode, now, t.out);
            }
            EventKind::Venue(r) => {
                self.desk.on_venue_report(r, mode, &self.controls.kill, now, t.out);
            }
            EventKind::Control(ControlCommand::PanicCloseAll) => {
                let flat = self.desk.flatten(&self.controls.kill, mode, now, t.out);
                self.intents.extend(flat);
            }
            _ => {}
        }
        // Kill switch on an extreme market: a Prime symbol (market-wide emergency) or a symbol we
        // hold breaching the spread / 60 s move limits.
        if let EventKind::Book(b) = &t.event.kind {
            if let Some(m) = self.symbols.get(&b.symbol) {
                let held = self.desk.portfolio.position(&b.symbol).is_some();
                if m.book.is_valid() && (held || m.category == Category::Prime) && !self.controls.kill.is_engaged() {
                    let f = m.intel.snapshot();
                    let reason = crate::execution::integrity::KillThresholds::default().check(
                        &b.symbol,
                        m.book.spread_bps(),
                        Some(f.ret_60s_pct),
                    );
                    if let Some(r) = reason {
                        tracing::error!(reason = ?r, "kill switch engaged by an extreme market");
                        t.out.record(None, now, EventRecord::KillSwitch { reason: &r });
                        self.controls.kill.engage(r, now);
                        let flat = self.desk.flatten(&self.controls.kill, mode, now, t.out);
                        self.intents.extend(flat);
                    }
                }
            }
        }
        // Position management for the event's symbol, and review of a working maker entry.
        if let Some(crate::engine::symbol_table::SymbolRef { id, symbol: sym }) = event_ref {
            if let Some(m) = self.symbols.get_id(id) {
                if m.book.is_valid() && self.desk.state_of(sym) == crate::state::machine::TradeState::OrderPlaced {
                    let best = m.score.long.max(m.score.short);
                    let setup_ok = best > self.cfg.thresholds.watch && !self.controls.kill.is_engaged();
                    let i = self.desk.review_entry(sym, &m.book, setup_ok, now, t.out);
                    self.intents.extend(i);
                }
                // The mark only for a held symbol: reading the tape's newest trade costs a
                // page of its own on every event otherwise (see `Markets::prefetch`).
                let held = self.desk.portfolio.position(sym).is_some();
                if let Some(mark) = held.then(|| m.tape.last_price().or_else(|| m.book.mid())).flatten() {
                    let tick = m.instrument.tick_size;
                    let i = self.desk.manage(sym, mark, tick, now, t.out);
                    self.intents.extend(i);
                }
            }
        }
        self.intents.extend(self.desk.take_pending());
        let symbols = &self.symbols;
        let books = |s: &Symbol| symbols.get(s).map(|m| &m.book);
        // Fills can produce follow-up intents (exit orders after an entry fill); bounded rounds.
        for _ in 0..4 {
            let batch = std::mem::take(&mut self.intents);
            if batch.is_empty() {
                break;
            }
            self.desk.execute(&self.controls.mode, batch, &books, now, t.out);
            self.intents.extend(self.desk.take_pending());
        }
        if !self.intents.is_empty() {
            tracing::error!(left = self.intents.len(), "intents left after bounded execution rounds; dropped");
            self.intents.clear();
        }
    }

    fn logging(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        self.update_profiles(now, t);
        self.counters.candles_closed += self.closed.len() as u64;
        for (s, c) in self.closed.drain(..) {
            t.out.record(Some(s), c.start_ms, c);
        }
    }

    fn metrics(&mut self, t: &mut Tick<'_>) {
        // Rolling per-symbol feature snapshots, throttled (the live metrics come from the view),
        // written with each symbol's second-work (at most a second after the timer that asked).
        let slice = self.second.take_slice();
        self.persist_baselines(&slice, t);
        for (s, d) in &slice {
            if !d.snapshot {
                continue;
            }
            let Some(m) = self.symbols.get(s) else { continue };
            let body = serde_json::json!({
                "symbol": s, "ts_ms": d.at, "category": m.category,
                "features": m.intel.snapshot(), "regime": m.intel.regime(), "score": m.score,
                "state": self.desk.state_of(s),
            });
            t.out.push(Output::Snapshot { kind: DataKind::Metrics, name: s.as_str().to_string(), body });
        }
        self.second.put_slice(slice);
    }
}

fn merge_ticker(into: &mut TickerUpdate, d: &TickerUpdate) {
    macro_rules! m {
        ($($f:ident),*) => { $( if d.$f.is_some() { into.$f = d.$f; } )* };
    }
    m!(
        last_price,
        mark_price,
        index_price,
        bid1_price,
        ask1_price,
        price_24h_pcnt,
        turnover_24h,
        volume_24h,
        funding_rate,
        open_interest
    );
}
