//! Fills and exits: fills from the venue update the portfolio and the state machine; open
//! positions are managed (stop, take-profit, break-even, time stop) and flattened on a kill.

use super::*;

impl Desk {
    /// Public trades against the SIM venue's resting orders.
    pub fn on_trades(&mut self, mode: Mode, batch: &TradeBatch, book: &OrderBook, now: TimeMs, out: &mut Outputs) {
        let evs = self.venue_for(mode, false).on_trades(batch, book);
        self.on_venue(evs, now, out);
    }

    pub(super) fn on_venue(&mut self, evs: Vec<VenueEvent>, now: TimeMs, out: &mut Outputs) {
        for ev in evs {
            match ev {
                VenueEvent::Accepted { .. } | VenueEvent::Amended { .. } => {}
                VenueEvent::Triggered { symbol, client_id, price } => {
                    out.record(Some(symbol), now, EventRecord::StopTriggered { client_id: &client_id, price });
                }
                VenueEvent::Rejected { symbol, client_id, reason: RejectReason::OrderNotFound } => {
                    // A cancel/amend of an order that already ended (filled, or cancelled by the
                    // venue as reduce-only without a position). An entry the venue does not know
                    // and that filled nothing is over.
                    tracing::debug!(symbol = %symbol, client_id, "cancel/amend of an order that already ended");
                    self.restore_stop_if_lost(&symbol, &client_id, now, out);
                    self.entry_ended(&symbol, &client_id, EntryEnd::NotFoundAtVenue, CancelReason::Timeout, now, out);
                }
                VenueEvent::Rejected { symbol, client_id, reason } => {
                    out.record(
                        Some(symbol.clone()),
                        now,
                        EventRecord::OrderRejected { client_id: &client_id, reason, bybit: reason.bybit() },
                    );
                    if self.is_entry(&symbol, &client_id) {
                        if let Some(w) = self.working.get_mut(&symbol) {
                            w.entry = None;
                        }
                        self.step(&symbol, now, Input::Cancelled(CancelReason::Rejected), out);
                    }
                    self.protect_if_stop_refused(&symbol, &client_id, now, out);
                }
                VenueEvent::Cancelled { symbol, client_id, remaining, reason } => {
                    // Ends the venue decided are timeouts of the entry's life; one never sent
                    // (DRY_RUN) is a plain cancel.
                    let why =
                        if reason == EndReason::NotSent { CancelReason::Cancelled } else { CancelReason::Timeout };
                    self.entry_ended(&symbol, &client_id, EntryEnd::Ended { remaining, reason }, why, now, out);
                }
                VenueEvent::Filled(fill) => self.on_fill(fill, now, out),
            }
        }
    }

    pub(super) fn on_fill(&mut self, fill: Fill, now: TimeMs, out: &mut Outputs) {
        let s = fill.symbol.clone();
        out.record(Some(s.clone()), now, EventRecord::Fill { fill: &fill });
        let plan = self.working.get(&s).and_then(|w| w.plan.clone());
        let outcome = match self.portfolio.on_fill(&fill, plan.as_ref()) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(symbol = %s, error = %e, "fill refused by the portfolio: integrity check will flag it");
                out.record(Some(s), now, EventRecord::FillRefused { error: e.to_string().into() });
                return;
            }
        };
        match outcome {
            FillOutcome::Opened => {
                self.step(&s, now, Input::Filled, out);
                let Some(p) = self.portfolio.position(&s).cloned() else { return };
                let exit_side = p.side.opposite();
                let sl_id = self.id(OrderRole::StopLoss, &s);
                let mut intents = vec![Intent::Place(OrderRequest {
                    client_id: sl_id.clone(),
                    symbol: s.clone(),
                    side: exit_side,
                    kind: OrderKind::StopMarket { trigger: p.stop },
                    qty: p.qty,
                    reduce_only: true,
                })];
                let mut tp_ids = Vec::new();
                for tp in &p.take_profits {
                    let id = self.id(OrderRole::TakeProfit, &s);
                    tp_ids.push(id.clone());
                    intents.push(Intent::Place(OrderRequest {
                        client_id: id,
                        symbol: s.clone(),
                        side: exit_side,
                        kind: OrderKind::Limit { price: tp.price, tif: TimeInForce::Gtc },
                        qty: tp.qty,
                        reduce_only: true,
                    }));
                }
                if let Some(w) = self.working.get_mut(&s) {
                    w.sl_id = Some(sl_id);
                    w.tp_ids = tp_ids;
                }
                self.pending.extend(intents);
            }
            FillOutcome::Increased => {
                // A further partial entry fill: the stop covers the whole position.
                if let (Some(p), Some(sl)) =
                    (self.portfolio.position(&s), self.working.get(&s).and_then(|w| w.sl_id.clone()))
                {
                    self.pending.push(Intent::Amend {
                        symbol: s.clone(),
                        client_id: sl,
                        price: None,
                        trigger: None,
                        qty: Some(p.qty),
                    });
                }
            }
            FillOutcome::Reduced { realized } => {
                out.record(Some(s.clone()), now, EventRecord::PartialExit { realized, client_id: &fill.client_id });
                if OrderRole::of(&fill.client_id) == Some(OrderRole::TakeProfit) {
                    self.manage_input(&s, ManagementAction::Tp1, now, out);
                }
                if let (Some(p), Some(sl)) =
                    (self.portfolio.position(&s), self.working.get(&s).and_then(|w| w.sl_id.clone()))
                {
                    if fill.client_id != sl {
                        self.pending.push(Intent::Amend {
                            symbol: s.clone(),
                            client_id: sl,
                            price: None,
                            trigger: None,
                            qty: Some(p.qty),
                        });
                    }
                }
            }
            FillOutcome::Closed { trade, excess } => {
                let reason = OrderRole::of(&fill.client_id).map_or(ExitReason::Timeout, OrderRole::exit_reason);
                // Start the symbol's working state over (in place: same as remove + insert).
                let slot = self.working.get_or_insert_with(&s, Working::default);
                let w = std::mem::take(slot);
                *slot = Working { blocked: w.blocked, live: w.live, ..Working::default() };
                // Cancel what is left of the exit orders and of a partially filled entry, so
                // nothing can reopen a position without a plan.
                for id in w.sl_id.iter().chain(w.tp_ids.iter()).chain(w.entry.iter().map(|(id, _)| id)) {
                    if *id != fill.client_id {
                        self.pending.push(Intent::Cancel { symbol: s.clone(), client_id: id.clone() });
                    }
                }
                self.trades_closed += 1;
                let r = if trade.planned_risk.raw() > 0 {
                    trade.realized.to_f64() / trade.planned_risk.to_f64()
                } else {
                    0.0
                };
                let gross = Money::from_raw(trade.realized.raw() + trade.fees.raw());
                // What the symbol's profile learns from (win rate, R, MFE/MAE as fractions of
                // the entry price).
                let entry = trade.avg_entry.to_f64();
                let frac = |x: Price| if entry > 0.0 { x.to_f64() / entry } else { 0.0 };
                self.closed.push(ClosedSummary {
                    symbol: s.clone(),
                    net_pnl: trade.realized.to_f64(),
                    r,
                    mfe: frac(trade.mfe),
                    mae: frac(trade.mae),
                });
                out.record(
                    Some(s.clone()),
                    now,
                    TradeRecord {
                        symbol: &s,
                        category: trade.category,
                        side: trade.side,
                        qty: trade.qty,
                        avg_entry: trade.avg_entry,
                        avg_exit: trade.avg_exit,
                        opened_ms: trade.opened_ms,
                        exit_ms: trade.closed_ms,
                        gross_pnl: gross.to_f64(),
                        fees: trade.fees.to_f64(),
                        net_pnl: trade.realized.to_f64(),
                        net_pnl_exact: trade.realized,
                        fees_exact: trade.fees,
                        planned_risk: trade.planned_risk,
                        r_multiple: r,
                        mfe: trade.mfe,
                        mae: trade.mae,
                        reason,
                        break_even_moved: w.break_even_done,
                    },
                );
                if excess.raw() > 0 {
                    out.record(Some(s.clone()), now, EventRecord::FillExcess { excess });
                }
                self.step(&s, now, Input::ExitTriggered(reason), out);
            }
        }
    }

    /// The venue no longer knows the stop of a position that is still open (an amend found
    /// nothing): a new stop is placed at the position's stop for its whole size.
    pub(super) fn restore_stop_if_lost(&mut self, s: &Symbol, id: &str, now: TimeMs, out: &mut Outputs) {
        let Some(p) = self.portfolio.position(s).cloned() else { return };
        let lost = self.working.get(s).is_some_and(|w| w.sl_id.as_deref() == Some(id) && !w.closing);
        if !lost || self.still_working(id) {
            return;
        }
        let new_id = self.id(OrderRole::StopLoss, s);
        tracing::warn!(symbol = %s, lost = id, new = %new_id, "stop order gone at the venue while the position is open: placing a new one");
        out.record(
            Some(s.clone()),
            now,
            EventRecord::StopReplaced { lost: id, client_id: &new_id, stop: p.stop, qty: p.qty },
        );
        if let Some(w) = self.working.get_mut(s) {
            w.sl_id = Some(new_id.clone());
        }
        self.pending.push(Intent::Place(OrderRequest {
            client_id: new_id,
            symbol: s.clone(),
            side: p.side.opposite(),
            kind: OrderKind::StopMarket { trigger: p.stop },
            qty: p.qty,
            reduce_only: true,
        }));
    }

    /// A position must never stay without its stop: when the venue refuses the stop order
    /// itself (not an amend of it), the position is closed at market.
    pub(super) fn protect_if_stop_refused(&mut self, s: &Symbol, id: &str, now: TimeMs, out: &mut Outputs) {
        let Some(p) = self.portfolio.position(s).cloned() else { return };
        // A refused amend leaves the stop working: only a stop that is gone everywhere counts.
        let is_stop = self.working.get(s).is_some_and(|w| w.sl_id.as_deref() == Some(id) && !w.closing);
        if !is_stop || self.still_working(id) {
            return;
        }
        if let Some(w) = self.working.get_mut(s) {
            w.closing = true;
        }
        let client_id = self.id(OrderRole::StopReplacement, s);
        tracing::error!(symbol = %s, stop = id, "stop order refused by the venue: closing the position at market");
        out.record(Some(s.clone()), now, EventRecord::StopRefusedClosing { client_id: id });
        self.pending.push(Intent::Close {
            symbol: s.clone(),
            position_side: p.side,
            qty: p.qty,
            reason: ExitReason::StopLoss,
            client_id,
        });
    }

    /// Position management for a symbol with an open position: mark, break-even.
    pub fn manage(&mut self, s: &Symbol, mark: Price, tick: Price, now: TimeMs, out: &mut Outputs) -> Vec<Intent> {
        self.portfolio.mark(s, mark, now);
        let Some(p) = self.portfolio.position(s) else { return Vec::new() };
        let Some(w) = self.working.get(s) else { return Vec::new() };
        if w.break_even_done || w.closing {
            return Vec::new();
        }
        let Some(sl) = w.sl_id.clone() else { return Vec::new() };
        let be = tpsl::break_even_stop(
            &self.policy,
            &BreakEvenInput {
                side: p.side,
                entry: p.avg_entry(),
                qty: p.qty,
                fees_paid: p.fees_paid,
                exit_fee: self.portfolio.exit_fee(),
                mark,
                current_stop: p.stop,
                tick,
            },
        );
        let Some(new_stop) = be else { return Vec::new() };
        if self.portfolio.set_stop(s, new_stop).is_err() {
            return Vec::new();
        }
        if let Some(w) = self.working.get_mut(s) {
            w.break_even_done = true;
        }
        out.record(Some(s.clone()), now, EventRecord::BreakEven { stop: new_stop, mark });
        self.manage_input(s, ManagementAction::BreakEven, now, out);
        vec![Intent::Amend { symbol: s.clone(), client_id: sl, price: None, trigger: Some(new_stop), qty: None }]
    }

    pub(super) fn manage_input(&mut self, s: &Symbol, a: ManagementAction, now: TimeMs, out: &mut Outputs) {
        let first = self.working.get_mut(s).map(|w| !std::mem::replace(&mut w.managed, true)).unwrap_or(false);
        if first {
            self.step(s, now, Input::Managed(a), out);
        }
    }

    /// Timer work for one symbol: entry timeouts, max hold.
    pub fn on_second(&mut self, s: &Symbol, now: TimeMs) -> Vec<Intent> {
        let mut intents = Vec::new();
        let Some(w) = self.working.get_mut(s) else { return intents };
        if let Some((id, at)) = &w.entry {
            // An entry not (completely) filled in time is cancelled; a partial fill keeps its
            // position, managed with the exit orders already placed.
            if now - at >= ENTRY_TIMEOUT_MS {
                intents.push(Intent::Cancel { symbol: s.clone(), client_id: id.clone() });
            }
        }
        if let Some(p) = self.portfolio.position(s) {
            if now - p.opened_ms >= MAX_HOLD_MS && !w.closing {
                w.closing = true;
                self.next_id += 1;
                let client_id = OrderRole::Timeout.client_id(sym_key(s), self.next_id);
                intents.push(Intent::Close {
                    symbol: s.clone(),
                    position_side: p.side,
                    qty: p.qty,
                    reason: ExitReason::Timeout,
                    client_id,
                });
            }
        }
        intents
    }

    /// Kill switch: flatten everything the venues hold. SIM: the SIM venue's own state. LIVE
    /// (or trades opened there): the exchange's last reported state, once per new snapshot,
    /// followed by a request for a fresh one, until the exchange reports nothing left.
    pub fn flatten(&mut self, kill: &KillSwitch, mode: Mode, now: TimeMs, out: &mut Outputs) -> Vec<Intent> {
        let mut intents = Vec::new();
        let snap = self.venue.snapshot();
        if !(snap.orders.is_empty() && snap.positions.is_empty()) {
            for w in self.working.values_mut().filter(|w| !w.live) {
                w.closing = true;
            }
            intents.extend(kill.flatten(&snap, now));
        }
        let live_scope = mode == Mode::Live || self.live_trades_open();
        if let (true, Some(snap)) = (live_scope, self.live.snapshot.as_ref()) {
            if self.live.snapshots > self.live.flattened_at && !(snap.orders.is_empty() && snap.positions.is_empty()) {
                self.live.flattened_at = self.live.snapshots;
                self.live.panic_confirmed = false;
                let n = self.live.snapshots;
                for i in kill.flatten(snap, now) {
                    let w = self.working.get_or_insert_with(i.symbol(), Working::default);
                    w.live = true;
                    w.closing = true;
                    intents.push(match i {
                        Intent::Close { symbol, position_side, qty, reason, client_id } => Intent::Close {
                            symbol,
                            position_side,
                            qty,
                            reason,
                            // Unique per snapshot: a close is never re-sent under the same id.
                            client_id: OrderRole::Kill.client_id(
                                &format!("x{n}"),
                                client_id.rsplit('-').next().and_then(|i| i.parse().ok()).unwrap_or(0),
                            ),
                        },
                        other => other,
                    });
                }
                out.push(Output::Venue(VenueCommand::Refresh));
            }
        }
        intents
    }

    /// Trades closed since the last call.
    pub fn take_closed(&mut self) -> Vec<ClosedSummary> {
        std::mem::take(&mut self.closed)
    }
}
