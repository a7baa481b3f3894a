//! The tradable universe: symbols listed and delisted, book resyncs, and the feed's connection
//! state (RISK_OFF when the feed is down).

use super::*;

impl CorePipeline {
    /// Registers a universe member; its market state is built on first access (see
    /// [`crate::engine::markets`]), from what is captured here.
    pub(super) fn add_symbol(&mut self, sym: &Symbol) {
        let Some(m) = self.universe.get(sym) else { return };
        self.symbols.register(MarketSpec {
            symbol: sym.clone(),
            origin: m.instrument.clone(),
            depth: m.depth as usize,
            intel: self.intel_cfg.clone(),
            costs: self.cfg.cost_params(m.category),
            instrument: m.instrument.clone(),
            category: m.category,
            extra_score: self.extra_score_of(sym),
        });
    }

    /// A depth change starts each book over at its new depth (the caller subscribes them).
    pub(super) fn restart_books(&mut self, changed: &[(Symbol, u16)], now: TimeMs, t: &mut Tick<'_>) {
        for (s, depth) in changed {
            self.symbols.remove(s);
            self.add_symbol(s);
            t.out.record(Some(s.clone()), now, EventRecord::DepthChanged { depth: *depth });
        }
    }

    pub(super) fn request_resync(&mut self, sym: &Symbol, now: TimeMs, t: &mut Tick<'_>) {
        if let Some(m) = self.symbols.get_mut(sym) {
            m.resync_pending_since = Some(now);
        }
        self.counters.resyncs += 1;
        t.out.push(Output::Feed(FeedCommand::Resync(sym.clone())));
    }

    pub(super) fn on_universe(&mut self, list: &[Instrument], now: TimeMs, t: &mut Tick<'_>) {
        let stats = &self.stats;
        let lookup = |s: &Symbol| stats.get(s).copied().unwrap_or_default();
        let diff = self.universe.refresh(&self.cfg, list, &lookup, now);
        for (s, reason) in &diff.removed {
            self.symbols.remove(s);
            t.out.record(Some(s.clone()), now, EventRecord::SymbolRemoved { reason: *reason });
        }
        if !diff.removed.is_empty() {
            t.out.push(Output::Feed(FeedCommand::Unsubscribe(diff.removed.iter().map(|(s, _)| s.clone()).collect())));
        }
        for (s, _) in &diff.added {
            self.add_symbol(s);
        }
        for s in &diff.new_listings {
            self.news.on_new_listing(s, now);
            t.out.record(Some(s.clone()), now, EventRecord::NewsListing { category: Category::Wild });
        }
        self.restart_books(&diff.resubscribe, now, t);
        // Categories may change without a depth change.
        for (s, m) in self.universe.members() {
            self.symbols.set_member(s, m.category, &m.instrument, self.cfg.cost_params(m.category));
        }
        let mut subs: Vec<(Symbol, u16)> = diff.added.clone();
        subs.extend(diff.resubscribe.iter().cloned());
        if !subs.is_empty() {
            t.out.push(Output::Feed(FeedCommand::Subscribe(subs)));
        }
        if !diff.is_empty() {
            t.out.record(
                None,
                now,
                EventRecord::UniverseChanged {
                    added: diff.added.len(),
                    removed: diff.removed.len(),
                    resubscribed: diff.resubscribe.len(),
                    new_listings: &diff.new_listings,
                    size: self.universe.len(),
                },
            );
        }
    }

    pub(super) fn on_universe_timer(&mut self, now: TimeMs, t: &mut Tick<'_>) {
        let symbols = &self.symbols;
        // A state never built has no trade: peek, do not build every state on this timer.
        let last = |s: &Symbol| symbols.peek(s).and_then(|m| m.last_trade_ms);
        let gone = self.universe.drop_inactive(&self.cfg.universe, &last, now);
        for s in &gone {
            self.symbols.remove(s);
            t.out.record(Some(s.clone()), now, EventRecord::SymbolRemoved { reason: RemovalReason::Inactive });
        }
        if !gone.is_empty() {
            t.out.push(Output::Feed(FeedCommand::Unsubscribe(gone)));
        }
    }

    pub(super) fn on_feed(&mut self, connection: u32, state: FeedState, now: TimeMs, t: &mut Tick<'_>) {
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
                    t.out.record(None, now, EventRecord::FeedRiskOffExit);
                }
            }
            FeedState::Reconnecting | FeedState::Down => {
                if self.flags.feed_not_ok_since.is_none() {
                    self.counters.feed_outages += 1;
                    self.flags.feed_not_ok_since = Some(now);
                }
            }
        }
        t.out.record(None, now, EventRecord::FeedState { state });
    }
}
