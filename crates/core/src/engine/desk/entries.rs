//! Entries: a signal becomes a planned, sized, risk-checked entry order (maker first, taker
//! fallback), reviewed while it works and ended when it fills, times out or is refused.

use super::*;

impl Desk {
    /// Steps 5–6: feeds the score and regime into the symbol's machine. `extra_score` is what
    /// the symbol's score must clear on top of the watch and arm thresholds (its profile's and
    /// the operator's override), taken off the score the machine compares.
    #[allow(clippy::too_many_arguments)]
    pub fn on_signal(
        &mut self,
        s: &Symbol,
        f: &FeatureSnapshot,
        score: &ScalpScore,
        regime: RegimeState,
        regime_ok: bool,
        extra_score: f64,
        now: TimeMs,
        out: &mut Outputs,
    ) {
        let blocked_now = match regime {
            RegimeState::Pump => Some(BlockReason::Pump),
            RegimeState::Manipulated => Some(BlockReason::Manipulated),
            RegimeState::NewsDriven if f.news_impact >= 0.5 => Some(BlockReason::News),
            _ => None,
        };
        let w = self.working.get_or_insert_with(s, Working::default);
        let was_blocked = w.blocked;
        w.blocked = blocked_now.is_some();
        match (was_blocked, blocked_now) {
            (false, Some(r)) => self.step(s, now, Input::RegimeBlocked(r), out),
            (true, None) => self.step(s, now, Input::RegimeCleared, out),
            _ => {}
        }
        let (side, value) = if score.long >= score.short { (Side::Buy, score.long) } else { (Side::Sell, score.short) };
        let value = value - extra_score;
        let confirm = Confirmation {
            walls: match side {
                Side::Buy => f.wall_support >= f.wall_resistance,
                Side::Sell => f.wall_resistance >= f.wall_support,
            },
            flow: match side {
                Side::Buy => f.delta_5s >= 0.0,
                Side::Sell => f.delta_5s <= 0.0,
            },
            fresh_bad_news: f.news_impact >= 0.5,
        };
        self.step(s, now, Input::Score { side, score: value, regime_ok, confirm }, out);
    }

    /// Step 7: when ARMED, sizes and checks a trade; returns the entry intent if accepted.
    /// `s` is `inst`'s symbol, best the interned copy the desk's tables hold (compared by
    /// pointer instead of text).
    #[allow(clippy::too_many_arguments)]
    pub fn plan_entry(
        &mut self,
        s: &Symbol,
        cfg: &Config,
        inst: &Instrument,
        category: Category,
        book: &OrderBook,
        f: &FeatureSnapshot,
        regime: RegimeState,
        flags: DeskFlags,
        mode: Mode,
        now: TimeMs,
        out: &mut Outputs,
    ) -> Option<Intent> {
        debug_assert_eq!(*s, inst.symbol);
        let side = match self.state_of(s) {
            TradeState::ArmedLong => Side::Buy,
            TradeState::ArmedShort => Side::Sell,
            _ => return None,
        };
        let w = self.working.get_or_insert_with(s, Working::default);
        if w.entry.is_some() || w.refused_at.is_some_and(|t| now - t < RETRY_AFTER_REFUSAL_MS) {
            return None;
        }
        if flags.blacklisted || !book.is_valid() {
            return None;
        }
        let live_refusal = if mode == Mode::Live && !self.live.ready() {
            Some("LIVE: the exchange account is not known (private stream not connected or not reconciled yet)")
        } else if mode != Mode::Live && self.live_trades_open() {
            Some("trades opened in LIVE are still open; no new entries until they are closed")
        } else if flags.storage_down {
            Some("storage DOWN: writes fail (trade log, recording); no new entries until they succeed again")
        } else {
            None
        };
        if let Some(why) = live_refusal {
            let w = self.working.get_or_insert_with(s, Working::default);
            w.refused_at = Some(now);
            out.record(Some(s.clone()), now, EventRecord::EntryRefused { reason: why.into() });
            return None;
        }
        // Working entries of other symbols count as open in the risk check.
        let committed = self.committed_entries(s);
        let w = self.working.get_or_insert_with(s, Working::default);
        let touch = match side {
            Side::Buy => book.best_bid(),
            Side::Sell => book.best_ask(),
        }?;
        let entry = touch.price;
        let tick = inst.tick_size;
        let px = entry.to_f64();
        let min_move = if side == Side::Buy { f.min_move_long } else { f.min_move_short };
        let dist = f.stop_distance.max(2.0 * min_move).max(3.0 * tick.to_f64() / px.max(1e-12));
        let raw_stop = Price::from_f64(px * (1.0 - side.sign() as f64 * dist));
        let stop = tpsl::round_level(side.opposite(), raw_stop, tick);
        let market = match regime {
            RegimeState::Manipulated => MarketRisk::Manipulated,
            RegimeState::NewsDriven => MarketRisk::NewsHighRisk,
            _ if f.pump_state == crate::features::PumpState::Blowoff => MarketRisk::Blowoff,
            _ => MarketRisk::Normal,
        };
        let refuse = |w: &mut Working, out: &mut Outputs, why: String| {
            w.refused_at = Some(now);
            out.record(Some(s.clone()), now, EventRecord::EntryRefused { reason: why.into() });
        };
        let plan = match tpsl::plan(
            &self.policy,
            &TpSlRequest { side, entry, stop, tick, min_move_for_profit: min_move, market },
        ) {
            Ok(p) => p,
            Err(e) => {
                refuse(w, out, e.to_string());
                return None;
            }
        };
        let slippage = if side == Side::Buy { f.slippage_buy } else { f.slippage_sell };
        let params = SizingParams::from_config(cfg, slippage);
        let limits =
            SizingLimits::new(cfg.categories.get(category), inst).capped(flags.max_leverage, flags.max_notional);
        let req = SizeRequest {
            side,
            entry,
            stop: plan.stop,
            entry_liquidity: Liquidity::Maker,
            equity: self.portfolio.equity(),
            available_margin: self.portfolio.balance(),
        };
        let mut sizing = match size_position(&params, &limits, &req) {
            Ok(z) => z,
            Err(e) => {
                refuse(w, out, e.to_string());
                return None;
            }
        };
        if flags.size_multiplier < 1.0 {
            // The profile shrinks the size (never grows it); risk and notional shrink with it.
            let q = Qty::from_f64(sizing.qty.to_f64() * flags.size_multiplier.max(0.0)).floor_to_step(inst.qty_step);
            if q.raw() < inst.min_qty.raw() {
                refuse(w, out, format!("profile size cut leaves {q} < min qty {}", inst.min_qty));
                return None;
            }
            let k = q.raw() as f64 / sizing.qty.raw().max(1) as f64;
            sizing.loss_at_stop = Money::from_f64(sizing.loss_at_stop.to_f64() * k);
            sizing.notional = Money::from_f64(sizing.notional.to_f64() * k);
            sizing.qty = q;
        }
        let rflags = RiskFlags {
            paused: flags.paused,
            panic: flags.kill,
            degraded: flags.degraded,
            global_risk_off: flags.global_risk_off,
            integrity_broken: self.integrity.is_broken(),
            kill_switch: flags.kill,
        };
        let cand = Candidate {
            symbol: s.clone(),
            category,
            side,
            entry,
            stop: plan.stop,
            qty: sizing.qty,
            risk: sizing.loss_at_stop,
        };
        if let Err(e) = self.risk.pre_trade_check_with(&self.portfolio, &committed, &rflags, &cand, now) {
            refuse(w, out, e.to_string());
            return None;
        }
        let (q1, q2) = tpsl::split_qty(sizing.qty, self.policy.tp1_fraction, inst.qty_step, inst.min_qty);
        let mut tps = vec![TakeProfit { price: plan.tp1, qty: q1 }];
        if q2.raw() > 0 {
            tps.push(TakeProfit { price: plan.tp2, qty: q2 });
        }
        let id = self.id(OrderRole::Entry, s);
        // The maker edge is gone once a taker fill would cost more than a quarter of the way to
        // the stop: that bounds the taker fallback.
        let edge = (entry.raw() - plan.stop.raw()).abs() / 4;
        let worst = tpsl::round_level(side.opposite(), Price::from_raw(entry.raw() + side.sign() * edge), tick);
        let w = self.working.get_or_insert_with(s, Working::default);
        w.entry = Some((id.clone(), now));
        w.tactic = Some(MakerFirstEntry { symbol: s.clone(), side, limit: entry, worst_price: worst, placed_ms: now });
        w.entry_qty = sizing.qty;
        w.plan = Some(PositionPlan { category, stop: plan.stop, take_profits: tps, planned_risk: sizing.loss_at_stop });
        w.tpsl = Some(plan);
        w.refused_at = None;
        w.break_even_done = false;
        w.managed = false;
        w.closing = false;
        w.live = mode == Mode::Live;
        w.leverage = sizing.leverage;
        out.record(
            Some(s.clone()),
            now,
            EventRecord::Entry {
                side,
                entry,
                stop: plan.stop,
                tp1: plan.tp1,
                tp2: plan.tp2,
                qty: sizing.qty,
                risk: sizing.loss_at_stop,
                notional: sizing.notional,
                market: plan.market,
            },
        );
        self.step(s, now, Input::OrderPlaced, out);
        Some(Intent::Place(OrderRequest {
            client_id: id,
            symbol: s.clone(),
            side,
            kind: OrderKind::Limit { price: entry, tif: TimeInForce::PostOnly },
            qty: sizing.qty,
            reduce_only: false,
        }))
    }

    /// Reviews a working maker entry against the current book and picture: keep waiting, switch
    /// to taker (timeout or drift while the edge holds), or cancel (edge gone, or the setup is no
    /// longer there: score below watch, regime blocked).
    pub fn review_entry(
        &mut self,
        s: &Symbol,
        book: &OrderBook,
        setup_ok: bool,
        now: TimeMs,
        out: &mut Outputs,
    ) -> Vec<Intent> {
        let filled = self.portfolio.position(s).map(|p| p.qty.raw()).unwrap_or(0);
        let Some(w) = self.working.get(s) else { return Vec::new() };
        let (Some((maker_id, _)), Some(t)) = (w.entry.clone(), w.tactic.clone()) else { return Vec::new() };
        if filled > 0 {
            return Vec::new();
        }
        let decision = if !setup_ok || w.blocked {
            EntryDecision::Abandon
        } else {
            t.decide(&MakerFirstConfig::default(), book, now)
        };
        if decision == EntryDecision::Keep {
            return Vec::new();
        }
        let remaining = Qty::from_raw(w.entry_qty.raw() - filled);
        let taker_id = self.id(OrderRole::TakerEntry, s);
        let intents = t.intents(decision, &maker_id, &taker_id, remaining);
        out.record(Some(s.clone()), now, EventRecord::EntryReview { decision, setup_ok });
        if let Some(w) = self.working.get_mut(s) {
            w.tactic = None;
            if matches!(decision, EntryDecision::SwitchToTaker { .. }) {
                w.entry = Some((taker_id, now));
            }
        }
        intents
    }

    /// The entries working at the venue (other than `except`'s) with the part of their planned
    /// risk not filled yet.
    pub(super) fn committed_entries(&self, except: &Symbol) -> Committed {
        let mut c = Committed::default();
        for (s, w) in self.working.iter().filter(|(s, _)| *s != except) {
            let (Some(_), Some(plan)) = (&w.entry, &w.plan) else { continue };
            let filled = self.portfolio.position(s).map(|p| p.qty.raw()).unwrap_or(0);
            let planned = w.entry_qty.raw();
            let unfilled = if planned > 0 {
                let left = (planned - filled).clamp(0, planned);
                Money::from_raw(((plan.planned_risk.raw() as i128 * left as i128) / planned as i128) as i64)
            } else {
                Money::ZERO
            };
            c.add(plan.category, filled > 0, unfilled);
        }
        c
    }

    /// Order `id` of `s` is no longer working at the venue. If it is the working entry, it stops
    /// being worked (no more cancels); with nothing filled the entry is over (`ENTRY_CANCELLED`
    /// with how it `end`ed; `why` is the machine's cancel reason).
    pub(super) fn entry_ended(
        &mut self,
        s: &Symbol,
        id: &str,
        end: EntryEnd,
        why: CancelReason,
        now: TimeMs,
        out: &mut Outputs,
    ) {
        if !self.is_entry(s, id) {
            return;
        }
        if let Some(w) = self.working.get_mut(s) {
            w.entry = None;
        }
        if self.portfolio.position(s).is_none() {
            out.record(Some(s.clone()), now, EventRecord::EntryCancelled { client_id: id, end });
            self.step(s, now, Input::Cancelled(why), out);
        }
    }

    /// True while order `id` still works at a venue (LIVE: sent and not seen to end; SIM: resting).
    pub(super) fn still_working(&self, id: &str) -> bool {
        self.live.orders.contains_key(id) || self.venue.snapshot().orders.iter().any(|o| o.client_id == id)
    }

    pub(super) fn is_entry(&self, s: &Symbol, id: &str) -> bool {
        self.working.get(s).and_then(|w| w.entry.as_ref()).is_some_and(|(e, _)| e == id)
    }
}
