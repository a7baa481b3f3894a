//! LIVE: orders sent to the exchange venue, its reports (orders, fills, account snapshots)
//! reconciled with what the desk believes, and the checks before LIVE is entered.

use super::*;
use crate::engine::record::PanicWitness;

impl Desk {
    /// Step 8: carries intents out through the one venue contract ([`Venue`]). An intent of a
    /// trade opened in LIVE goes to the exchange whatever the mode is now (its protection lives
    /// there); otherwise the mode picks the venue. What a venue answers at once takes the same
    /// path as the exchange's later reports ([`Desk::on_venue`]).
    pub fn execute<'b>(
        &mut self,
        mode: &ModeManager,
        intents: Vec<Intent>,
        books: &'b dyn Fn(&Symbol) -> Option<&'b OrderBook>,
        now: TimeMs,
        out: &mut Outputs,
    ) {
        for i in intents {
            let s = i.symbol().clone();
            let (live_trade, leverage) = self.working.get(&s).map_or((false, Fixed::ZERO), |w| (w.live, w.leverage));
            let venue = self.venue_for(mode.mode(), live_trade);
            let journal = venue.journal();
            let answer = venue.submit(&i, SubmitContext { books, leverage, now });
            if let Some(reason) = answer.dropped {
                out.record(Some(s), now, EventRecord::IntentDropped { reason, intent: &i });
                continue;
            }
            let (submits, setup): (Vec<VenueCommand>, Vec<VenueCommand>) =
                answer.commands.into_iter().partition(|c| matches!(c, VenueCommand::Submit(_)));
            out.items.extend(setup.into_iter().map(Output::Venue));
            match journal {
                Some(Journal::Sent) => out.record(Some(s), now, EventRecord::OrderSent { intent: &i }),
                Some(Journal::DryRun) => out.record(Some(s), now, EventRecord::DryRunOrder { intent: &i }),
                None => {}
            }
            out.items.extend(submits.into_iter().map(Output::Venue));
            self.on_venue(answer.events, now, out);
        }
    }

    /// The venue an intent goes to: the exchange for a trade opened in LIVE, else the mode's.
    pub(super) fn venue_for(&mut self, mode: Mode, live_trade: bool) -> &mut dyn Venue {
        match mode {
            _ if live_trade => &mut self.live,
            Mode::Live => &mut self.live,
            Mode::DryRun => &mut self.dry_run,
            Mode::Sim => &mut self.venue,
        }
    }

    /// True while a trade opened in LIVE still has a position or a working entry.
    pub fn live_trades_open(&self) -> bool {
        self.working.iter().any(|(s, w)| w.live && (w.entry.is_some() || self.portfolio.position(s).is_some()))
            || self.live.orders.values().any(|o| self.working.get(&o.snapshot.symbol).is_some_and(|w| w.live))
    }

    /// A report of the LIVE exchange edge.
    pub fn on_venue_report(&mut self, r: &VenueReport, mode: Mode, kill: &KillSwitch, now: TimeMs, out: &mut Outputs) {
        match r {
            VenueReport::Order(VenueEvent::Filled(f)) if !self.live.first_sighting(&f.exec_id) => {
                tracing::debug!(symbol = %f.symbol, exec_id = %f.exec_id, "execution already booked; ignored");
            }
            VenueReport::Order(ev) => {
                self.live.on_order_event(ev);
                self.on_venue(vec![ev.clone()], now, out);
            }
            VenueReport::Unresolved { symbol, client_id, error } => {
                tracing::error!(symbol = %symbol, client_id, error, "order create unresolved: it may exist at the exchange; reconciling");
                out.record(Some(symbol.clone()), now, EventRecord::OrderUnresolved { client_id, error });
                out.push(Output::Venue(VenueCommand::Refresh));
            }
            VenueReport::Account { snapshot, balance, cause } => {
                self.on_account(snapshot, *balance, *cause, mode, kill, now, out)
            }
            VenueReport::Balance(b) => {
                self.live.balance = Some(*b);
                self.live.unsupported = None;
            }
            VenueReport::AccountUnsupported { reason } => {
                if self.live.unsupported.as_ref() != Some(reason) {
                    out.record(None, now, EventRecord::AccountUnsupported { reason });
                }
                self.live.unsupported = Some(reason.clone());
                self.live.balance = None;
            }
            VenueReport::Feed(st) => {
                if self.live.feed != Some(*st) {
                    let level_ok = *st == FeedState::Connected;
                    if !level_ok && mode == Mode::Live {
                        tracing::warn!(state = ?st, "private stream not connected: no new LIVE entries until it is back");
                    }
                    out.record(None, now, EventRecord::PrivateFeed { state: *st });
                }
                self.live.feed = Some(*st);
            }
            VenueReport::RequestFailed { symbol, client_id, action, error } => {
                // A failed lookup is asked again at the next snapshot.
                self.live.resolving.remove(client_id);
                tracing::warn!(symbol = %symbol, client_id, action, error, "exchange request failed; order unchanged");
                out.record(Some(symbol.clone()), now, EventRecord::VenueRequestFailed { client_id, action, error });
            }
            VenueReport::Leverage { symbol, leverage, error } => {
                if let Some(e) = error {
                    self.live.leverage.remove(symbol);
                    tracing::warn!(symbol = %symbol, leverage = %leverage, error = %e, "set leverage failed");
                    out.record(
                        Some(symbol.clone()),
                        now,
                        EventRecord::LeverageFailed { leverage: *leverage, error: e },
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_account(
        &mut self,
        snap: &VenueSnapshot,
        balance: Option<AccountBalance>,
        cause: SnapshotCause,
        mode: Mode,
        kill: &KillSwitch,
        now: TimeMs,
        out: &mut Outputs,
    ) {
        self.live.snapshot = Some(snap.clone());
        self.live.snapshots += 1;
        if let Some(b) = balance {
            self.live.balance = Some(b);
            self.live.unsupported = None;
        }
        let engaged = mode == Mode::Live || self.live_trades_open();
        if !engaged {
            return;
        }
        // Integrity: local positions and orders against the exchange's own lists.
        let local = VenueSnapshot {
            positions: self
                .portfolio
                .positions()
                .filter(|p| mode == Mode::Live || self.working.get(&p.symbol).is_some_and(|w| w.live))
                .map(|p| PositionSnapshot { symbol: p.symbol.clone(), side: p.side, qty: p.qty })
                .collect(),
            orders: self.live.local_orders(snap),
        };
        let report = self.live.check(&local, snap, now);
        if !self.live.suspect.is_empty() {
            tracing::debug!(suspect = ?self.live.suspect, snapshot = self.live.snapshots, "integrity: suspect mismatches");
        }
        for cmd in self.live.resolve_requests() {
            out.push(Output::Venue(cmd));
        }
        if let Some(cmd) = self.live.recovery_request(now, RECOVERY_WINDOW_MS) {
            tracing::warn!(suspect = ?self.live.suspect, "positions disagree with the exchange: fetching its executions");
            out.push(Output::Venue(cmd));
        }
        if !report.ok() && self.integrity.apply(&report) {
            tracing::error!(
                ?report,
                ?cause,
                "INTEGRITY_BROKEN: local state disagrees with the exchange; new trades blocked"
            );
            out.record(None, now, EventRecord::IntegrityBroken { report: &report });
        }
        // The real account is the money: when flat on both sides, the balance follows the wallet.
        let flat_here = self.portfolio.positions().len() == 0;
        if let (Some(b), true, true) = (balance, snap.positions.is_empty(), flat_here) {
            let before = self.portfolio.balance();
            if before != b.wallet_balance
                && mode == Mode::Live
                && self.portfolio.rebase(b.wallet_balance, now, false).is_ok()
            {
                out.record(None, now, EventRecord::WalletSync { from: before, to: b.wallet_balance });
            }
        }
        // PANIC: confirmed only by the exchange's own state.
        if kill.is_engaged() {
            if snap.positions.is_empty() && snap.orders.is_empty() {
                if !self.live.panic_confirmed {
                    self.live.panic_confirmed = true;
                    tracing::warn!("PANIC confirmed by the exchange: no position, no working order");
                    out.record(
                        None,
                        now,
                        EventRecord::PanicConfirmed { by: PanicWitness::Exchange, snapshot: self.live.snapshots },
                    );
                }
            } else {
                let more = self.flatten(kill, mode, now, out);
                self.pending.extend(more);
            }
        }
    }

    /// Entering LIVE: the local balance becomes the exchange wallet's, and the day's figures
    /// start from it. Returns the reason when LIVE cannot be entered.
    pub fn enter_live(&mut self, now: TimeMs, out: &mut Outputs) -> Result<(), String> {
        if let Some(why) = &self.live.unsupported {
            return Err(why.clone());
        }
        if !self.live.ready() {
            return Err(format!(
                "the exchange account is not known yet (private stream {:?}, {} snapshot(s)); is the private connector \
                 configured (SCALPER_BYBIT_API_KEY / SCALPER_BYBIT_API_SECRET)?",
                self.live.feed, self.live.snapshots
            ));
        }
        if self.integrity.is_broken() {
            return Err("INTEGRITY_BROKEN is set: clear it after investigation first".into());
        }
        if let Some(snap) = &self.live.snapshot {
            if !snap.positions.is_empty() || !snap.orders.is_empty() {
                return Err(format!(
                    "the exchange account already holds {} position(s) and {} working order(s) this engine did not open; \
                     close them (or use an account dedicated to the engine) first",
                    snap.positions.len(),
                    snap.orders.len()
                ));
            }
        }
        let Some(b) = self.live.balance else { return Err("no wallet balance from the exchange yet".into()) };
        let from = self.portfolio.balance();
        self.portfolio.rebase(b.wallet_balance, now, true).map_err(|e| e.to_string())?;
        self.live.panic_confirmed = false;
        self.live.live_since_ms = Some(now);
        out.record(None, now, EventRecord::WalletSync { from, to: b.wallet_balance });
        Ok(())
    }

    /// Integrity: local positions against the venue's.
    pub fn reconcile(&mut self, mode: Mode, now: TimeMs, out: &mut Outputs) {
        let Some(venue) = self.venue_for(mode, false).local_snapshot() else { return };
        let local = VenueSnapshot {
            positions: self
                .portfolio
                .positions()
                .map(|p| PositionSnapshot { symbol: p.symbol.clone(), side: p.side, qty: p.qty })
                .collect(),
            orders: venue.orders.clone(),
        };
        let report = crate::execution::integrity::reconcile(&local, &venue, now);
        let was = self.integrity.is_broken();
        self.integrity.apply(&report);
        if self.integrity.is_broken() && !was {
            tracing::error!(?report, "INTEGRITY_BROKEN: local positions disagree with the venue; new trades blocked");
            out.record(None, now, EventRecord::IntegrityBroken { report: &report });
        }
    }
}
