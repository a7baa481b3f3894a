//! The one-second timer's work, spread over the second in slices so no single event does it for
//! every symbol at once: candle closes, per-second features, baselines and profiles.

use super::*;

impl CorePipeline {
    /// Decides which symbols' second-work this event does (see [`crate::engine::second_work`]):
    /// a `Timer(Second)` makes every symbol due and decides whether this second writes feature
    /// snapshots and which symbols persist their baselines.
    pub(super) fn schedule_second_work(&mut self, t: &Tick<'_>) {
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
    pub(super) fn second_market(&mut self, slice: &[(Symbol, SecondDue)], t: &mut Tick<'_>) {
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
    pub(super) fn on_second(&mut self, now: TimeMs, t: &mut Tick<'_>) {
        // Feed down too long → RISK_OFF.
        if let Some(since) = self.flags.feed_not_ok_since {
            if !self.flags.feed_risk_off && now - since >= self.cfg.engine.feed_down_risk_off_s as i64 * 1000 {
                self.flags.feed_risk_off = true;
                tracing::error!(down_ms = now - since, "feed down too long: global RISK_OFF (no new positions)");
                t.out.push(Output::Status(StatusChange::FeedRiskOffEnter));
                t.out.record(None, now, EventRecord::FeedRiskOff { down_ms: now - since });
            }
        }
    }

    /// Writes each warm symbol's baselines into its profile once a minute, a sixtieth of the
    /// universe per second (no stall at the minute): the symbols of this event's second-work
    /// slice marked for it by the timer.
    pub(super) fn persist_baselines(&mut self, slice: &[(Symbol, SecondDue)], t: &mut Tick<'_>) {
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

    pub(super) fn update_profiles(&mut self, now: TimeMs, t: &mut Tick<'_>) {
        for c in self.desk.take_closed() {
            let p = self.profiles.get_or_insert_with(&c.symbol, || SymbolProfile::new(c.symbol.clone()));
            p.on_trade(c.net_pnl, c.r, c.mfe, c.mae, now);
            let change = p.apply_policy(&self.profile_policy);
            let body = serde_json::to_value(&*p).unwrap_or_default();
            t.out.push(Output::Snapshot { kind: DataKind::Profiles, name: c.symbol.as_str().to_string(), body });
            if let Some(ch) = change {
                tracing::info!(symbol = %c.symbol, reason = %ch.reason, "profile adjustments changed");
                t.out.record(Some(c.symbol.clone()), now, EventRecord::ProfileChanged { change: &ch });
                let extra = self.extra_score_of(&c.symbol);
                if let Some(m) = self.symbols.get_mut(&c.symbol) {
                    m.intel.set_extra_threshold(extra);
                }
                if ch.auto_blacklisted && self.controls.blacklist.insert(c.symbol.clone()) {
                    self.auto_blacklisted.insert(c.symbol.clone());
                } else if !ch.auto_blacklisted && self.auto_blacklisted.remove(&c.symbol) {
                    self.controls.blacklist.remove(&c.symbol);
                }
            }
        }
    }

    pub(super) fn note_intel(profiles: &mut SymbolTable<SymbolProfile>, sym: &Symbol, evs: &[IntelEvent], now: TimeMs) {
        for e in evs {
            let p = profiles.get_or_insert_with(sym, || SymbolProfile::new(sym.clone()));
            match e {
                IntelEvent::Pump(_) => p.on_pump(now),
                IntelEvent::Wall(w) if w.outcome == crate::features::WallOutcome::Spoofing => p.on_spoof(now),
                _ => {}
            }
        }
    }
}
