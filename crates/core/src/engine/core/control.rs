//! Control commands from the operator (mode, pause, panic, blacklist, news, reload) as the core
//! applies them: step 1 of a control event.

use super::*;
use crate::engine::record;

/// Why a mode change is refused while the current mode's venue holds positions or orders.
const OPEN_IN_CURRENT_MODE: &str =
    "positions or orders are open in the current mode; close them first (panic, or wait)";

impl CorePipeline {
    pub(super) fn on_control(&mut self, cmd: &ControlCommand, now: TimeMs, t: &mut Tick<'_>) {
        let rec = match cmd {
            ControlCommand::SetMode(m) if *m != Mode::Live && self.controls.mode.mode() == Mode::Live => {
                // Leaving LIVE is always allowed and immediate. Trades still open at the exchange
                // stay protected there (stop + take-profits) and keep being managed; no new entry
                // starts until they are closed.
                let open = self.desk.live_trades_open();
                match self.controls.mode.request(*m, now) {
                    Ok(Some(ch)) => {
                        tracing::warn!(to = m.as_str(), live_trades_open = open, "left LIVE");
                        EventRecord::ModeChanged { from: ch.from, to: ch.to, live_trades_open: Some(open) }
                    }
                    Ok(None) => return,
                    Err(e) => EventRecord::ModeRefused { to: *m, reason: e.to_string().into() },
                }
            }
            ControlCommand::EnterLive if self.controls.mode.mode() == Mode::Live => return,
            ControlCommand::EnterLive
                if self.desk.portfolio.positions().len() != 0 || !self.desk.venue.snapshot().orders.is_empty() =>
            {
                EventRecord::ModeRefused { to: Mode::Live, reason: OPEN_IN_CURRENT_MODE.into() }
            }
            ControlCommand::EnterLive => match self.desk.enter_live(now, t.out) {
                Ok(()) => match self.controls.mode.enter_live(now) {
                    Some(ch) => {
                        tracing::warn!(from = ch.from.as_str(), "entered LIVE: real orders from now on");
                        EventRecord::ModeChanged { from: ch.from, to: ch.to, live_trades_open: None }
                    }
                    None => return,
                },
                Err(reason) => {
                    tracing::error!(%reason, "LIVE refused by the engine");
                    EventRecord::ModeRefused { to: Mode::Live, reason: reason.into() }
                }
            },
            ControlCommand::SetMode(m)
                if *m != self.controls.mode.mode()
                    && (self.desk.portfolio.positions().len() != 0
                        || !self.desk.venue.snapshot().orders.is_empty()) =>
            {
                // Positions and orders live in the current mode's venue: switching would orphan them.
                EventRecord::ModeRefused { to: *m, reason: OPEN_IN_CURRENT_MODE.into() }
            }
            ControlCommand::SetMode(m) => match self.controls.mode.request(*m, now) {
                Ok(Some(ch)) => EventRecord::ModeChanged { from: ch.from, to: ch.to, live_trades_open: None },
                Ok(None) => return,
                Err(e) => EventRecord::ModeRefused { to: *m, reason: e.to_string().into() },
            },
            ControlCommand::Pause => {
                self.controls.paused = true;
                EventRecord::Paused
            }
            ControlCommand::Resume => {
                self.controls.paused = false;
                // Resume also releases a manual PANIC once everything is flat.
                self.controls.kill.reset();
                EventRecord::Resumed
            }
            ControlCommand::PanicCloseAll => {
                self.controls.kill.engage(KillReason::ManualPanic, now);
                EventRecord::PanicCloseAll
            }
            ControlCommand::Blacklist(s) => {
                self.controls.blacklist.insert(s.clone());
                EventRecord::Blacklisted { symbol: s }
            }
            ControlCommand::Unblacklist(s) => {
                self.controls.blacklist.remove(s);
                EventRecord::Unblacklisted { symbol: s }
            }
            ControlCommand::SetNewsFlag { symbol, impact, news_type, expires_ms } => {
                self.news.set_manual(symbol, *impact, news_type, now, *expires_ms);
                if let Some(m) = self.symbols.get_mut(symbol) {
                    let evs = m.intel.on_news(&self.news, now);
                    Self::log_intel(symbol, evs, now, t);
                }
                EventRecord::NewsFlagSet { symbol, impact: *impact, news_type, expires_ms: *expires_ms }
            }
            ControlCommand::ClearNewsFlag(s) => {
                self.news.clear(s);
                if let Some(m) = self.symbols.get_mut(s) {
                    let evs = m.intel.on_news(&self.news, now);
                    Self::log_intel(s, evs, now, t);
                }
                EventRecord::NewsFlagCleared { symbol: s }
            }
            ControlCommand::SetOverrides(all) => self.set_overrides(all, now, t),
        };
        tracing::info!(body = %record::body(&rec), "control command applied");
        t.out.record(None, now, rec);
    }

    /// Replaces the operator's per-symbol overrides. An override with a bad value is refused
    /// whole (the edge validates too; a recording could carry anything) and named in the record.
    fn set_overrides(
        &mut self,
        all: &BTreeMap<Symbol, SymbolOverride>,
        now: TimeMs,
        t: &mut Tick<'_>,
    ) -> EventRecord<'static> {
        let mut refused = BTreeMap::new();
        let mut kept = BTreeMap::new();
        for (s, o) in all {
            match o.validate() {
                Ok(()) => {
                    kept.insert(s.clone(), o.clone());
                }
                Err(e) => {
                    tracing::warn!(symbol = %s, error = %e, "override refused");
                    refused.insert(s.clone(), e);
                }
            }
        }
        let touched: BTreeSet<Symbol> = self.overrides.keys().chain(kept.keys()).cloned().collect();
        self.overrides = kept;
        for s in &touched {
            let extra = self.extra_score_of(s);
            if let Some(m) = self.symbols.get_mut(s) {
                m.intel.set_extra_threshold(extra);
            }
        }
        let depths = self.overrides.iter().filter_map(|(s, o)| o.book_depth.map(|d| (s.clone(), d))).collect();
        let changed = self.universe.set_depth_overrides(&self.cfg, depths);
        self.restart_books(&changed, now, t);
        if !changed.is_empty() {
            t.out.push(Output::Feed(FeedCommand::Subscribe(changed)));
        }
        EventRecord::OverridesSet { overrides: self.overrides.clone(), refused }
    }
}
