//! The engine's real pipeline: owns all market state and (as later capabilities land) features,
//! regime, scoring, state machines, risk and execution. Everything here is synchronous and
//! deterministic: maps are ordered, time comes from the event.

use crate::config::paths::DataKind;
use crate::config::Config;
use crate::domain::{Category, Symbol, TimeMs};
use crate::engine::desk::{Desk, DeskFlags};
use crate::engine::event::{ControlCommand, Mode};
use crate::engine::event::{Event, EventKind, FeedState, TimerKind};
use crate::engine::markets::{MarketSpec, Markets};
use crate::engine::output::{FeedCommand, Output, StatusChange};
use crate::engine::second_work::{SecondDue, SecondWork};
use crate::engine::symbol_table::SymbolTable;
use crate::engine::{Pipeline, Tick};
use crate::execution::integrity::{KillReason, KillSwitch};
use crate::execution::mode::ModeManager;
use crate::execution::order::Intent;
use crate::features::costs::CostParams;
use crate::features::{IntelConfig, IntelEvent, ManualNewsSource, SymbolIntel};
use crate::market::candles::{Candle, CandleSet};
use crate::market::data::{Instrument, TickerUpdate};
use crate::market::orderbook::OrderBook;
use crate::market::profile::{ProfilePolicy, SymbolProfile};
use crate::market::tape::Tape;
use crate::market::universe::{MarketStats, RemovalReason, Universe};
use crate::regime::global::{GlobalRegime, GlobalRegimeChange, GlobalRegimeTracker};
use crate::scoring::scalp_score::ScalpScore;
use crate::scoring::SignalLevel;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Trades kept per symbol on the tape.
pub const TAPE_CAPACITY: usize = 2_000;
/// Closed candles kept per interval.
pub const CANDLE_RING: usize = 300;
/// Late-trade grace before a candle closes on time alone, ms.
pub const CANDLE_GRACE_MS: i64 = 250;
/// A book that got no update for this long while its symbol traded is stale, ms.
pub const STALE_BOOK_MS: i64 = 30_000;
/// A resync still unanswered after this long is asked again, ms.
pub const RESYNC_RETRY_MS: i64 = 5_000;
/// Feature snapshots (`data/metrics/<SYMBOL>.json`) are written at most this often, ms.
pub const FEATURE_SNAPSHOT_EVERY_MS: i64 = 15_000;
/// Each warm symbol's baselines are written into its profile this often, seconds.
pub const BASELINE_PERSIST_EVERY_S: i64 = 60;

/// Market state of one symbol.
#[derive(Debug)]
pub struct SymbolMarket {
    /// Trading rules.
    pub instrument: Instrument,
    /// Category.
    pub category: Category,
    /// L2 book.
    pub book: OrderBook,
    /// Trade tape.
    pub tape: Tape,
    /// Micro-candles.
    pub candles: CandleSet,
    /// Merged ticker.
    pub ticker: TickerUpdate,
    /// Last book update (event time).
    pub last_book_ms: Option<TimeMs>,
    /// Last trade (event time).
    pub last_trade_ms: Option<TimeMs>,
    /// When a resync was last requested and not yet answered by a snapshot.
    pub resync_pending_since: Option<TimeMs>,
    /// Book errors seen.
    pub book_errors: u64,
    /// Market intelligence (features, symbol regime).
    pub intel: SymbolIntel,
    /// Latest FinalScalpScore.
    pub score: ScalpScore,
}

/// Counters the core keeps (exported as metrics by the edge).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoreCounters {
    /// Book updates applied.
    pub book_updates: u64,
    /// Book errors by reason (`gap`, `stale`, `crossed`, …).
    pub book_errors: BTreeMap<&'static str, u64>,
    /// Resyncs requested.
    pub resyncs: u64,
    /// Trades processed.
    pub trades: u64,
    /// Market events for symbols outside the universe (ignored).
    pub unknown_symbol_events: u64,
    /// Candles closed.
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
    /// Manual news flags (control plane, news file, automatic listing flags).
    news: ManualNewsSource,
    /// Global regime.
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
    /// Profile policy.
    profile_policy: ProfilePolicy,
    /// Symbols blacklisted by their profile (and only those are un-blacklisted by it).
    auto_blacklisted: BTreeSet<Symbol>,
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
            news: ManualNewsSource::new(cfg.intel.news.clone()),
            global: GlobalRegimeTracker::from_config(&cfg, 0),
            desk: Desk::new(&cfg),
            intents: Vec::new(),
            last_feature_snapshot_ms: 0,
            profiles: SymbolTable::new(),
            profile_policy: ProfilePolicy::default(),
            auto_blacklisted: BTreeSet::new(),
            second: SecondWork::new(),
            cfg,
        }
    }

    /// The trading desk (portfolio, machines, venue).
    pub fn desk(&self) -> &Desk {
        &self.desk
    }
    /// Global regime.
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

    fn note_intel(profiles: &mut SymbolTable<SymbolProfile>, sym: &Symbol, evs: &[IntelEvent], now: TimeMs) {
        for e in evs {
            let p = profiles.get_or_insert_with(sym, || SymbolProfile::new(sym.clone()));
            match e {
                IntelEvent::Pump(_) => p.on_pump(now),
                IntelEvent::Wall(w) if w.outcome == crate::features::WallOutcome::Spoofing => p.on_spoof(now),
                _ => {}
            }
        }
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

    /// Writes each warm symbol's baselines into its profile once a minute, a sixtieth of the
    /// universe per second (no stall at the minute): the symbols of this event's second-work
    /// slice marked for it by the timer.
    fn persist_baselines(&mut self, slice: &[(Symbol, SecondDue)], t: &mut Tick<'_>) {
        for (s, d) in slice {
            let Some(m) = self.symbols.get(s) else { continue };
            if !d.persist || !m.intel.baselines().warm() {
                continue;
            }
            let p = self.profiles.get_or_insert_with(s, || SymbolProfile::new(s.clone()));
            p.baselines = Some(m.intel.baselines().state());
            let body = serde_json::to_value(&*p).unwrap_or_default();
            t.out.push(Output::Snapshot { kind: DataKind::Profiles, name: s.as_str().to_string(), body });
        }
    }

    fn update_profiles(&mut self, now: TimeMs, t: &mut Tick<'_>) {
        for c in self.desk.take_closed() {
            let p = self.profiles.get_or_insert_with(&c.symbol, || SymbolProfile::new(c.symbol.clone()));
            p.on_trade(c.net_pnl, c.r, c.mfe, c.mae, now);
            let change = p.apply_policy(&self.profile_policy);
            let body = serde_json::to_value(&*p).unwrap_or_default();
            t.out.push(Output::Snapshot { kind: DataKind::Profiles, name: c.symbol.as_str().to_string(), body });
            if let Some(ch) = change {
                tracing::info!(symbol = %c.symbol, reason = %ch.reason, "profile adjustments changed");
                t.out.record(
                    DataKind::Events,
                    Some(c.symbol.clone()),
                    now,
                    serde_json::json!({"event": "PROFILE_CHANGED", "change": ch}),
                );
                if let Some(m) = self.symbols.get_mut(&c.symbol) {
                    m.intel.set_extra_threshold(ch.extra_score);
                }
                if ch.auto_blacklisted && self.controls.blacklist.insert(c.symbol.clone()) {
                    self.auto_blacklisted.insert(c.symbol.clone());
                } else if !ch.auto_blacklisted && self.auto_blacklisted.remove(&c.symbol) {
                    self.controls.blacklist.remove(&c.symbol);
                }
            }
        }
    }

    fn log_intel(sym: &Symbol, evs: Vec<IntelEvent>, now: TimeMs, t: &mut Tick<'_>) {
        for e in evs {
            let body = serde_json::to_value(&e).unwrap_or_default();
            t.out.record(DataKind::Events, Some(sym.clone()), now, body);
        }
    }

    fn log_global(ch: Option<GlobalRegimeChange>, t: &mut Tick<'_>) {
        if let Some(c) = ch {
            tracing::warn!(from = c.from.as_str(), to = c.to.as_str(), reason = %c.reason, "global regime change");
            let body = serde_json::json!({"event": "GLOBAL_REGIME", "from": c.from.as_str(), "to": c.to.as_str(), "reason": c.reason});
            t.out.record(DataKind::Events, None, c.ts_ms, body);
        }
    }

    fn desk_flags(&self, sym: &Symbol, degraded: bool) -> DeskFlags {
        DeskFlags {
            paused: self.controls.paused,
            blacklisted: self.controls.blacklist.contains(sym),
            kill: self.controls.kill.is_engaged(),
            degraded,
            global_risk_off: self.flags.feed_risk_off
                || self.flags.feed != Some(FeedState::Connected)
                || self.global.regime() != GlobalRegime::GlobalNormal,
            size_multiplier: self.profiles.get(sym).map(|p| p.size_multiplier).unwrap_or(1.0),
            storage_down: self.flags.storage_down,
        }
    }

    /// The universe.
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
    /// Symbols whose market state is built (the others are registered, built on first access).
    pub fn built_symbols(&self) -> usize {
        self.symbols.built()
    }
    /// The table's own copy of the event's symbol (see [`Markets::interned`]); `None` for an
    /// event of no symbol or of a symbol never registered.
    fn event_symbol(&self, event: &Event) -> Option<&Symbol> {
        self.symbols.interned(event.symbol()?)
    }
    /// All symbols' market state, sorted.
    pub fn symbols(&self) -> impl Iterator<Item = (&Symbol, &SymbolMarket)> {
        self.symbols.iter()
    }
    /// Counters.
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

    fn on_control(&mut self, cmd: &ControlCommand, now: TimeMs, t: &mut Tick<'_>) {
        let body = match cmd {
            ControlCommand::SetMode(m) if *m != Mode::Live && self.controls.mode.mode() == Mode::Live => {
                // Leaving LIVE is always allowed and immediate. Trades still open at the exchange
                // stay protected there (stop + take-profits) and keep being managed; no new entry
                // starts until they are closed.
                let open = self.desk.live_trades_open();
                match self.controls.mode.request(*m, now) {
                    Ok(Some(ch)) => {
                        tracing::warn!(to = m.as_str(), live_trades_open = open, "left LIVE");
                        serde_json::json!({"event": "MODE_CHANGED", "from": ch.from, "to": ch.to, "live_trades_open": open})
                    }
                    Ok(None) => return,
                    Err(e) => serde_json::json!({"event": "MODE_REFUSED", "to": m, "reason": e.to_string()}),
                }
            }
            ControlCommand::EnterLive if self.controls.mode.mode() == Mode::Live => return,
            ControlCommand::EnterLive
                if self.desk.portfolio.positions().len() != 0 || !self.desk.venue.snapshot().orders.is_empty() =>
            {
                serde_json::json!({"event": "MODE_REFUSED", "to": Mode::Live,
                    "reason": "positions or orders are open in the current mode; close them first (panic, or wait)"})
            }
            ControlCommand::EnterLive => match self.desk.enter_live(now, t.out) {
                Ok(()) => match self.controls.mode.enter_live(now) {
                    Some(ch) => {
                        tracing::warn!(from = ch.from.as_str(), "entered LIVE: real orders from now on");
                        serde_json::json!({"event": "MODE_CHANGED", "from": ch.from, "to": ch.to})
                    }
                    None => return,
                },
                Err(reason) => {
                    tracing::error!(%reason, "LIVE refused by the engine");
                    serde_json::json!({"event": "MODE_REFUSED", "to": Mode::Live, "reason": reason})
                }
            },
            ControlCommand::SetMode(m)
                if *m != self.controls.mode.mode()
                    && (self.desk.portfolio.positions().len() != 0
                        || !self.desk.venue.snapshot().orders.is_empty()) =>
            {
                // Positions and orders live in the current mode's venue: switching would orphan them.
                serde_json::json!({"event": "MODE_REFUSED", "to": m,
                    "reason": "positions or orders are open in the current mode; close them first (panic, or wait)"})
            }
            ControlCommand::SetMode(m) => match self.controls.mode.request(*m, now) {
                Ok(Some(ch)) => serde_json::json!({"event": "MODE_CHANGED", "from": ch.from, "to": ch.to}),
                Ok(None) => return,
                Err(e) => serde_json::json!({"event": "MODE_REFUSED", "to": m, "reason": e.to_string()}),
            },
            ControlCommand::Pause => {
                self.controls.paused = true;
                serde_json::json!({"event": "PAUSED"})
            }
            ControlCommand::Resume => {
                self.controls.paused = false;
                // Resume also releases a manual PANIC once everything is flat.
                self.controls.kill.reset();
                serde_json::json!({"event": "RESUMED"})
            }
            ControlCommand::PanicCloseAll => {
                self.controls.kill.engage(KillReason::ManualPanic, now);
                serde_json::json!({"event": "PANIC_CLOSE_ALL"})
            }
            ControlCommand::Blacklist(s) => {
                self.controls.blacklist.insert(s.clone());
                serde_json::json!({"event": "BLACKLISTED", "symbol": s})
            }
            ControlCommand::Unblacklist(s) => {
                self.controls.blacklist.remove(s);
                serde_json::json!({"event": "UNBLACKLISTED", "symbol": s})
            }
            ControlCommand::SetNewsFlag { symbol, impact, news_type, expires_ms } => {
                self.news.set_manual(symbol, *impact, news_type, now, *expires_ms);
                if let Some(m) = self.symbols.get_mut(symbol) {
                    let evs = m.intel.on_news(&self.news, now);
                    Self::log_intel(symbol, evs, now, t);
                }
                serde_json::json!({
                "event": "NEWS_FLAG_SET", "symbol": symbol, "impact": impact, "news_type": news_type, "expires_ms": expires_ms
                })
            }
            ControlCommand::ClearNewsFlag(s) => {
                self.news.clear(s);
                if let Some(m) = self.symbols.get_mut(s) {
                    let evs = m.intel.on_news(&self.news, now);
                    Self::log_intel(s, evs, now, t);
                }
                serde_json::json!({"event": "NEWS_FLAG_CLEARED", "symbol": s})
            }
        };
        tracing::info!(%body, "control command applied");
        t.out.record(DataKind::Events, None, now, body);
    }

    /// Registers a universe member; its market state is built on first access (see
    /// [`crate::engine::markets`]), from what is captured here.
    fn add_symbol(&mut self, sym: &Symbol) {
        let Some(m) = self.universe.get(sym) else { return };
        self.symbols.register(MarketSpec {
            symbol: sym.clone(),
            origin: m.instrument.clone(),
            depth: m.depth as usize,
            intel: self.intel_cfg.clone(),
            costs: CostParams::from_config(&self.cfg, m.category),
            instrument: m.instrument.clone(),
            category: m.category,
        });
    }

    fn request_resync(&mut self, sym: &Symbol, now: TimeMs, t: &mut Tick<'_>) {
        if let Some(m) = self.symbols.get_mut(sym) {
            m.resync_pending_since = Some(now);
        }
        self.counters.resyncs += 1;
        t.out.push(Output::Feed(FeedCommand::Resync(sym.clone())));
    }

    fn on_universe(&mut self, list: &[Instrument], now: TimeMs, t: &mut Tick<'_>) {
        let stats = &self.stats;
        let lookup = |s: &Symbol| stats.get(s).copied().unwrap_or_default();
        let diff = self.universe.refresh(&self.cfg, list, &lookup, now);
        for (s, reason) in &diff.removed {
            self.symbols.remove(s);
            t.out.record(
                DataKind::Events,
                Some(s.clone()),
                now,
                serde_json::json!({"event": "SYMBOL_REMOVED", "reason": reason}),
            );
        }
        if !diff.removed.is_empty() {
            t.out.push(Output::Feed(FeedCommand::Unsubscribe(diff.removed.iter().map(|(s, _)| s.clone()).collect())));
        }
        for (s, _) in &diff.added {
            self.add_symbol(s);
        }
        for s in &diff.new_listings {
            self.news.on_new_listing(s, now);
            t.out.record(
                DataKind::Events,
                Some(s.clone()),
                now,
                serde_json::json!({"event": "NEWS_LISTING", "category": "wild"}),
            );
        }
        for (s, depth) in &diff.resubscribe {
            // A depth change starts the book over at the new depth.
            self.symbols.remove(s);
            self.add_symbol(s);
            t.out.record(
                DataKind::Events,
                Some(s.clone()),
                now,
                serde_json::json!({"event": "DEPTH_CHANGED", "depth": depth}),
            );
        }
        // Categories may change without a depth change.
        for (s, m) in self.universe.members() {
            self.symbols.set_member(s, m.category, &m.instrument);
        }
        let mut subs: Vec<(Symbol, u16)> = diff.added.clone();
        subs.extend(diff.resubscribe.iter().cloned());
        if !subs.is_empty() {
            t.out.push(Output::Feed(FeedCommand::Subscribe(subs)));
        }
        if !diff.is_empty() {
            t.out.record(
                DataKind::Events,
                None,
                now,
                serde_json::json!({
                    "event": "UNIVERSE_CHANGED",
                    "added": diff.added.len(), "removed": diff.removed.len(),
                    "resubscribed": diff.resubscribe.len(), "new_listings": diff.new_listings,
                    "size": self.universe.len(),
                }),
            );
        }
    }

    /// Decides which symbols' second-work this event does (see [`crate::engine::second_work`]):
    /// a `Timer(Second)` makes every symbol due and decides whether this second writes feature
    /// snapshots and which symbols persist their baselines.
    fn schedule_second_work(&mut self, t: &Tick<'_>) {
        let now = t.event.now_ms();
        if matches!(t.event.kind, EventKind::Timer(TimerKind::Second)) {
            let snapshot = now - self.last_feature_snapshot_ms >= FEATURE_SNAPSHOT_EVERY_MS;
            if snapshot {
                self.last_feature_snapshot_ms = now;
            }
            let slot = now.div_euclid(1000).rem_euclid(BASELINE_PERSIST_EVERY_S);
            let persist = |i: usize| (i as i64) % BASELINE_PERSIST_EVERY_S == slot;
            self.second.on_timer(now, self.symbols.keys(), snapshot, persist);
        } else {
            self.second.on_event(t.event.symbol());
        }
    }

    /// Market part of the slice's second-work, as of each symbol's boundary time: candle closes
    /// on time, stale books and unanswered resyncs.
    fn second_market(&mut self, slice: &[(Symbol, SecondDue)], t: &mut Tick<'_>) {
        for (s, d) in slice {
            if let Some(m) = self.symbols.get_mut(s) {
                for c in m.candles.on_time(d.at) {
                    self.closed.push((s.clone(), c));
                }
            }
        }
        let mut resync = Vec::new();
        for (s, d) in slice {
            let Some(m) = self.symbols.get_mut(s) else { continue };
            let now = d.at;
            if let Some(since) = m.resync_pending_since {
                if now - since >= RESYNC_RETRY_MS {
                    resync.push((s.clone(), now));
                }
                continue;
            }
            let stale = match (m.last_book_ms, m.last_trade_ms) {
                (Some(b), Some(tr)) => tr - b > STALE_BOOK_MS && now - b > STALE_BOOK_MS,
                _ => false,
            };
            if stale && m.book.is_valid() {
                m.book.invalidate();
                m.book_errors += 1;
                *self.counters.book_errors.entry("stale_book").or_default() += 1;
                tracing::warn!(symbol = %s, "book stale while the symbol trades: invalidated, resyncing");
                resync.push((s.clone(), now));
            }
        }
        for (s, at) in resync {
            self.request_resync(&s, at, t);
        }
    }

    /// Global part of the one-second timer (the per-symbol part is spread, see
    /// [`CorePipeline::schedule_second_work`]).
    fn on_second(&mut self, now: TimeMs, t: &mut Tick<'_>) {
        // Feed down too long → RISK_OFF.
        if let Some(since) = self.flags.feed_not_ok_since {
            if !self.flags.feed_risk_off && now - since >= self.cfg.engine.feed_down_risk_off_s as i64 * 1000 {
                self.flags.feed_risk_off = true;
                tracing::error!(down_ms = now - since, "feed down too long: global RISK_OFF (no new positions)");
                t.out.push(Output::Status(StatusChange::FeedRiskOffEnter));
                t.out.record(
                    DataKind::Events,
                    None,
                    now,
                    serde_json::json!({"event": "FEED_RISK_OFF", "down_ms": now - since}),
                );
            }
        }
    }

    fn on_universe_timer(&mut self, now: TimeMs, t: &mut Tick<'_>) {
        let symbols = &self.symbols;
        // A state never built has no trade: peek, do not build every state on this timer.
        let last = |s: &Symbol| symbols.peek(s).and_then(|m| m.last_trade_ms);
        let gone = self.universe.drop_inactive(&self.cfg.universe, &last, now);
        for s in &gone {
            self.symbols.remove(s);
            t.out.record(
                DataKind::Events,
                Some(s.clone()),
                now,
                serde_json::json!({"event": "SYMBOL_REMOVED", "reason": RemovalReason::Inactive}),
            );
        }
        if !gone.is_empty() {
            t.out.push(Output::Feed(FeedCommand::Unsubscribe(gone)));
        }
    }

    fn on_feed(&mut self, connection: u32, state: FeedState, now: TimeMs, t: &mut Tick<'_>) {
        if connection != 0 {
            return;
        }
        self.flags.feed = Some(state);
        match state {
            FeedState::Connected => {
                self.flags.feed_not_ok_since = None;
                if self.flags.feed_risk_off {
                    self.flags.feed_risk_off = false;
                    tracing::info!("feed back: leaving feed RISK_OFF");
                    t.out.push(Output::Status(StatusChange::FeedRiskOffExit));
                    t.out.record(DataKind::Events, None, now, serde_json::json!({"event": "FEED_RISK_OFF_EXIT"}));
                }
            }
            FeedState::Reconnecting | FeedState::Down => {
                if self.flags.feed_not_ok_since.is_none() {
                    self.counters.feed_outages += 1;
                    self.flags.feed_not_ok_since = Some(now);
                }
            }
        }
        t.out.record(DataKind::Events, None, now, serde_json::json!({"event": "FEED_STATE", "state": state}));
    }
}

impl Pipeline for CorePipeline {
    fn market_update(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        self.schedule_second_work(t);
        let slice = self.second.take_slice();
        self.second_market(&slice, t);
        self.second.put_slice(slice);
        match &t.event.kind {
            EventKind::Book(upd) => {
                let Some(m) = self.symbols.get_mut(&upd.symbol) else {
                    self.counters.unknown_symbol_events += 1;
                    return;
                };
                match m.book.apply(upd) {
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
                                DataKind::Events,
                                Some(upd.symbol.clone()),
                                now,
                                serde_json::json!({"event": "BOOK_INVALID", "reason": label, "detail": e.to_string()}),
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
                    t.out.record(
                        DataKind::Events,
                        Some(sym.clone()),
                        now,
                        serde_json::json!({"event": "BOOK_INVALID", "reason": "shed"}),
                    );
                    let s = sym.clone();
                    self.request_resync(&s, now, t);
                }
            }
            EventKind::StorageHealth { up, detail } => {
                if self.flags.storage_down == *up {
                    self.flags.storage_down = !*up;
                    let body = if *up {
                        serde_json::json!({"event": "STORAGE_UP", "detail": detail})
                    } else {
                        tracing::error!(%detail, "storage DOWN: new entries refused until writes succeed again");
                        serde_json::json!({"event": "STORAGE_DOWN", "detail": detail})
                    };
                    t.out.record(DataKind::Events, None, now, body);
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
                t.out.record(
                    DataKind::Events,
                    Some(f.symbol.clone()),
                    now,
                    serde_json::json!({"event": "NEWS_FLAG_EXPIRED"}),
                );
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
                    let evs = m.intel.on_book(&m.book, now);
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
                    t.out.record(
                        DataKind::Events,
                        Some(h.symbol.clone()),
                        now,
                        serde_json::json!({"event": "BASELINE_SEEDED", "source": "kline", "klines": h.klines.len(),
                            "taken": seeded, "sigma_60s_pct": m.intel.baselines().sigma_pct(60.0, 0.0)}),
                    );
                    Self::log_intel(&h.symbol, evs, now, t);
                } else {
                    self.counters.unknown_symbol_events += 1;
                }
            }
            EventKind::Baselines { symbol, state } => {
                if let Some(m) = self.symbols.get_mut(symbol) {
                    let before = m.intel.baselines().warm();
                    let evs = m.intel.on_baselines(state, now);
                    t.out.record(
                        DataKind::Events,
                        Some(symbol.clone()),
                        now,
                        serde_json::json!({"event": "BASELINE_SEEDED", "source": "profile",
                            "age_s": (now - state.updated_ms) / 1000, "taken": !before && m.intel.baselines().warm()}),
                    );
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
                if let Some(sym) = t.event.symbol().and_then(|s| self.symbols.interned(s)) {
                    if let Some(m) = self.symbols.get(sym) {
                        let ch = self.global.observe(sym, m.intel.snapshot(), now);
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
        let Some(sym) = self.event_symbol(t.event).cloned() else { return };
        let global = self.global.regime();
        let flags = self.desk_flags(&sym, t.degraded);
        let Some(m) = self.symbols.get(&sym) else { return };
        if !m.book.is_valid() {
            return;
        }
        let best = m.score.long.max(m.score.short);
        let level = m.intel.signal(best, global, &self.cfg.thresholds, now);
        let regime_ok = level != SignalLevel::Blocked && !flags.blacklisted && !flags.paused && !flags.kill;
        let regime = m.intel.regime().state;
        let (f, score) = (*m.intel.snapshot(), m.score.clone());
        self.desk.on_signal(&sym, &f, &score, regime, regime_ok, now, t.out);
    }

    fn risk(&mut self, t: &mut Tick<'_>) {
        let now = t.event.now_ms();
        if !matches!(t.event.kind, EventKind::Book(_) | EventKind::Trades(_)) {
            return;
        }
        let Some(sym) = self.event_symbol(t.event).cloned() else { return };
        let flags = self.desk_flags(&sym, t.degraded);
        let Some(m) = self.symbols.get(&sym) else { return };
        let regime = m.intel.regime().state;
        if let Some(i) = self.desk.plan_entry(
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
                        t.out.record(
                            DataKind::Events,
                            None,
                            now,
                            serde_json::json!({"event": "KILL_SWITCH", "reason": r}),
                        );
                        self.controls.kill.engage(r, now);
                        let flat = self.desk.flatten(&self.controls.kill, mode, now, t.out);
                        self.intents.extend(flat);
                    }
                }
            }
        }
        // Position management for the event's symbol, and review of a working maker entry.
        if let Some(sym) = self.event_symbol(t.event).cloned() {
            if let Some(m) = self.symbols.get(&sym) {
                if m.book.is_valid() && self.desk.state_of(&sym) == crate::state::machine::TradeState::OrderPlaced {
                    let best = m.score.long.max(m.score.short);
                    let setup_ok = best > self.cfg.thresholds.watch && !self.controls.kill.is_engaged();
                    let i = self.desk.review_entry(&sym, &m.book, setup_ok, now, t.out);
                    self.intents.extend(i);
                }
                let mark = m.tape.last_price().or_else(|| m.book.mid());
                if let (Some(mark), true) = (mark, self.desk.portfolio.position(&sym).is_some()) {
                    let tick = m.instrument.tick_size;
                    let i = self.desk.manage(&sym, mark, tick, now, t.out);
                    self.intents.extend(i);
                }
            }
        }
        self.intents.extend(self.desk.take_pending());
        let symbols = &self.symbols;
        let books = |s: &Symbol| symbols.get(s).map(|m| m.book.clone());
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
            let body = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
            t.out.record(DataKind::Microcandles, Some(s), c.start_ms, body);
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
