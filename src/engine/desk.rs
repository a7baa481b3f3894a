//! The trading desk inside the core: per-symbol state machines, the portfolio, the risk engine,
//! the TP/SL planner and (in SIM) the SIM venue, wired together in the pipeline's order.
//! Everything is deterministic: ordered maps, ids from counters, time from the event.

use crate::config::paths::DataKind;
use crate::config::Config;
use crate::domain::{Category, Fixed, Price, Qty, Side, Symbol, TimeMs};
use crate::engine::event::{FeedState, Mode};
use crate::engine::output::{Output, Outputs};
use crate::engine::symbol_table::SymbolTable;
use crate::execution::entry::{EntryDecision, MakerFirstConfig, MakerFirstEntry};
use crate::execution::integrity::{IntegrityGuard, KillSwitch, PositionSnapshot, VenueSnapshot};
use crate::execution::mode::ModeManager;
use crate::execution::order::{Fill, Intent, Liquidity, OrderKind, OrderRequest, TimeInForce};
use crate::execution::sim::{RejectReason, SimVenue, VenueEvent};
use crate::execution::tpsl::{self, BreakEvenInput, MarketRisk, TpSlPlan, TpSlPolicy, TpSlRequest};
use crate::execution::venue::{AccountBalance, LiveAccount, SnapshotCause, VenueCommand, VenueReport};
use crate::features::FeatureSnapshot;
use crate::market::data::{Instrument, TradeBatch};
use crate::market::orderbook::OrderBook;
use crate::regime::symbol::RegimeState;
use crate::risk::engine::{Candidate, Committed, RiskEngine, RiskFlags, RiskLimits};
use crate::risk::money::{FeeRates, Money, Rate};
use crate::risk::sizing::{size_position, SizeRequest, SizingLimits, SizingParams};
use crate::scoring::scalp_score::ScalpScore;
use crate::state::machine::{
    BlockReason, CancelReason, Confirmation, ExitReason, Input, MachineConfig, ManagementAction, TradeState,
    TradingMachine,
};
use crate::state::portfolio::{FillOutcome, Portfolio, PositionPlan, TakeProfit};
use serde_json::json;

/// An entry order not yet filled is cancelled after this long, ms.
pub const ENTRY_TIMEOUT_MS: i64 = 5_000;
/// A position is closed at market after this long, ms.
pub const MAX_HOLD_MS: i64 = 10 * 60_000;
/// How far back missed executions are fetched when positions disagree with the exchange, ms.
pub const RECOVERY_WINDOW_MS: i64 = 15 * 60_000;
/// After a refused entry, the desk waits this long before trying again, ms.
pub const RETRY_AFTER_REFUSAL_MS: i64 = 1_000;

/// Orders and plans of one symbol.
#[derive(Debug, Clone, Default)]
struct Working {
    entry: Option<(String, TimeMs)>,
    /// Maker-first tactic of the working entry (None once switched to taker).
    tactic: Option<MakerFirstEntry>,
    /// Planned entry quantity.
    entry_qty: Qty,
    plan: Option<PositionPlan>,
    tpsl: Option<TpSlPlan>,
    sl_id: Option<String>,
    tp_ids: Vec<String>,
    break_even_done: bool,
    managed: bool,
    refused_at: Option<TimeMs>,
    blocked: bool,
    closing: bool,
    /// The trade lives at the exchange (opened in LIVE): every intent of it goes there, even
    /// after the engine left LIVE.
    live: bool,
    /// Leverage the entry was sized with.
    leverage: Fixed,
}

/// A closed trade in the numbers profiles need.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedSummary {
    /// Symbol.
    pub symbol: Symbol,
    /// Net PnL, USDT.
    pub net_pnl: f64,
    /// R multiple.
    pub r: f64,
    /// MFE, fraction of entry.
    pub mfe: f64,
    /// MAE, fraction of entry.
    pub mae: f64,
}

/// Everything the desk needs to know about the engine for one decision.
#[derive(Debug, Clone, Copy)]
pub struct DeskFlags {
    /// Operator pause.
    pub paused: bool,
    /// Symbol blacklisted.
    pub blacklisted: bool,
    /// Kill switch engaged.
    pub kill: bool,
    /// DEGRADED.
    pub degraded: bool,
    /// Global RISK_OFF / PANIC or feed down.
    pub global_risk_off: bool,
    /// Size multiplier from the symbol's profile, (0, 1].
    pub size_multiplier: f64,
    /// The store cannot write (trade log, recording): no new entries.
    pub storage_down: bool,
}

/// The desk.
#[derive(Debug, Clone)]
pub struct Desk {
    /// Keyed through [`SymbolTable`] (hashed, iterated in symbol order like the `BTreeMap` it
    /// replaced): touched a few times per market event, where a B-tree's string comparisons
    /// each read another symbol's text (cache misses that grow with the universe).
    machines: SymbolTable<TradingMachine>,
    working: SymbolTable<Working>,
    /// Local portfolio.
    pub portfolio: Portfolio,
    /// Risk engine.
    pub risk: RiskEngine,
    /// SIM venue (SIM mode).
    pub venue: SimVenue,
    /// Integrity guard.
    pub integrity: IntegrityGuard,
    /// The exchange account as reported by the LIVE edge.
    pub live: LiveAccount,
    mcfg: MachineConfig,
    policy: TpSlPolicy,
    next_id: u64,
    pending: Vec<Intent>,
    closed: Vec<ClosedSummary>,
    /// Trades closed so far.
    pub trades_closed: u64,
}

fn sym_key(s: &Symbol) -> &str {
    s.as_str()
}

impl Desk {
    /// New desk from configuration.
    pub fn new(cfg: &Config) -> Desk {
        let fees = FeeRates::from_config(&cfg.fees);
        Desk {
            machines: SymbolTable::new(),
            working: SymbolTable::new(),
            portfolio: Portfolio::new(Money::from_f64(cfg.risk.starting_equity), fees.taker, 0),
            risk: RiskEngine::new(RiskLimits::from_config(cfg)),
            venue: SimVenue::new(fees),
            integrity: IntegrityGuard::new(),
            live: LiveAccount::default(),
            mcfg: MachineConfig::from_thresholds(&cfg.thresholds),
            policy: TpSlPolicy::default(),
            next_id: 0,
            pending: Vec::new(),
            closed: Vec::new(),
            trades_closed: 0,
        }
    }

    /// Applies a new configuration.
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.risk.set_limits(RiskLimits::from_config(cfg));
        self.mcfg = MachineConfig::from_thresholds(&cfg.thresholds);
    }

    /// State machine state of a symbol.
    pub fn state_of(&self, s: &Symbol) -> TradeState {
        self.machines.get(s).map(|m| m.state()).unwrap_or(TradeState::Flat)
    }

    fn id(&mut self, prefix: &str, s: &Symbol) -> String {
        self.next_id += 1;
        format!("{prefix}-{}-{}", sym_key(s), self.next_id)
    }

    fn step(&mut self, s: &Symbol, now: TimeMs, input: Input, out: &mut Outputs) {
        let m = self.machines.get_or_insert_with(s, || TradingMachine::new(s.clone(), now));
        if let Some(tr) = m.step(&self.mcfg, now, &input) {
            let body = serde_json::to_value(&tr).unwrap_or_default();
            let mut body = json!({"event": "STATE", "transition": body});
            if let Some(o) = body.as_object_mut() {
                o.insert("input".into(), serde_json::to_value(input).unwrap_or_default());
            }
            out.record(DataKind::Events, Some(s.clone()), now, body);
        }
    }

    /// Steps 5–6: feeds the score and regime into the symbol's machine.
    #[allow(clippy::too_many_arguments)]
    pub fn on_signal(
        &mut self,
        s: &Symbol,
        f: &FeatureSnapshot,
        score: &ScalpScore,
        regime: RegimeState,
        regime_ok: bool,
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
    #[allow(clippy::too_many_arguments)]
    pub fn plan_entry(
        &mut self,
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
        let s = &inst.symbol;
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
            out.record(DataKind::Events, Some(s.clone()), now, json!({"event": "ENTRY_REFUSED", "reason": why}));
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
            out.record(DataKind::Events, Some(s.clone()), now, json!({"event": "ENTRY_REFUSED", "reason": why}));
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
        let limits = SizingLimits::new(cfg.categories.get(category), inst);
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
        let id = self.id("e", s);
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
            DataKind::Events,
            Some(s.clone()),
            now,
            json!({"event": "ENTRY", "side": side, "entry": entry, "stop": plan.stop, "tp1": plan.tp1, "tp2": plan.tp2,
                   "qty": sizing.qty, "risk": sizing.loss_at_stop, "notional": sizing.notional, "market": plan.market}),
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
        let taker_id = self.id("et", s);
        let intents = t.intents(decision, &maker_id, &taker_id, remaining);
        out.record(
            DataKind::Events,
            Some(s.clone()),
            now,
            json!({"event": "ENTRY_REVIEW", "decision": decision, "setup_ok": setup_ok}),
        );
        if let Some(w) = self.working.get_mut(s) {
            w.tactic = None;
            if matches!(decision, EntryDecision::SwitchToTaker { .. }) {
                w.entry = Some((taker_id, now));
            }
        }
        intents
    }

    /// The one-second tick for every state machine (EXITED → COOLDOWN → FLAT need time to pass).
    pub fn tick(&mut self, now: TimeMs, out: &mut Outputs) {
        let syms: Vec<Symbol> = self.machines.keys().cloned().collect();
        for s in syms {
            self.step(&s, now, Input::Tick, out);
        }
    }

    /// The one-second tick for the machines of symbols `tracked` does not know (dropped from
    /// the universe); the tracked ones are ticked one by one with [`Desk::tick_symbol`].
    pub fn tick_untracked(&mut self, tracked: impl Fn(&Symbol) -> bool, now: TimeMs, out: &mut Outputs) {
        let syms: Vec<Symbol> = self.machines.keys().filter(|s| !tracked(s)).cloned().collect();
        for s in syms {
            self.step(&s, now, Input::Tick, out);
        }
    }

    /// The one-second tick for one symbol's machine, if it has one.
    pub fn tick_symbol(&mut self, s: &Symbol, now: TimeMs, out: &mut Outputs) {
        if self.machines.contains_key(s) {
            self.step(s, now, Input::Tick, out);
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
                intents.push(Intent::Close {
                    symbol: s.clone(),
                    position_side: p.side,
                    qty: p.qty,
                    reason: ExitReason::Timeout,
                    client_id: format!("to-{}-{}", sym_key(s), self.next_id),
                });
            }
        }
        intents
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
        out.record(
            DataKind::Events,
            Some(s.clone()),
            now,
            json!({"event": "BREAK_EVEN", "stop": new_stop, "mark": mark}),
        );
        self.manage_input(s, ManagementAction::BreakEven, now, out);
        vec![Intent::Amend { symbol: s.clone(), client_id: sl, price: None, trigger: Some(new_stop), qty: None }]
    }

    fn manage_input(&mut self, s: &Symbol, a: ManagementAction, now: TimeMs, out: &mut Outputs) {
        let first = self.working.get_mut(s).map(|w| !std::mem::replace(&mut w.managed, true)).unwrap_or(false);
        if first {
            self.step(s, now, Input::Managed(a), out);
        }
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
                            client_id: format!("kill-x{n}-{}", client_id.rsplit('-').next().unwrap_or("0")),
                        },
                        other => other,
                    });
                }
                out.push(Output::Venue(VenueCommand::Refresh));
            }
        }
        intents
    }

    /// Step 8: carries intents out. An intent of a trade opened in LIVE goes to the exchange
    /// edge whatever the mode is now (its protection lives there); otherwise by mode: SIM venue,
    /// DRY_RUN record (nothing sent), or the exchange edge in LIVE.
    pub fn execute(
        &mut self,
        mode: &ModeManager,
        intents: Vec<Intent>,
        books: &dyn Fn(&Symbol) -> Option<OrderBook>,
        now: TimeMs,
        out: &mut Outputs,
    ) {
        for i in intents {
            let s = i.symbol().clone();
            let live_trade = self.working.get(&s).is_some_and(|w| w.live);
            if live_trade || mode.mode() == Mode::Live {
                self.send_live(i, now, out);
                continue;
            }
            if mode.mode() == Mode::DryRun {
                out.record(DataKind::Events, Some(s.clone()), now, json!({"event": "DRY_RUN_ORDER", "intent": i}));
                // Nothing is sent: an entry ends at once.
                if matches!(i, Intent::Place(ref r) if !r.reduce_only) {
                    if let Some(w) = self.working.get_mut(&s) {
                        w.entry = None;
                    }
                    self.step(&s, now, Input::Cancelled(CancelReason::Cancelled), out);
                }
                continue;
            }
            let Some(book) = books(&s) else {
                out.record(
                    DataKind::Events,
                    Some(s),
                    now,
                    json!({"event": "INTENT_DROPPED", "reason": "no book", "intent": i}),
                );
                continue;
            };
            let evs = self.venue.submit(&i, &book, now);
            self.on_venue(evs, now, out);
        }
    }

    /// Hands an intent to the exchange edge (setting the symbol's leverage first when an entry
    /// needs a leverage not yet set).
    fn send_live(&mut self, i: Intent, now: TimeMs, out: &mut Outputs) {
        let s = i.symbol().clone();
        if matches!(&i, Intent::Place(r) if !r.reduce_only) {
            let lev = self.working.get(&s).map(|w| w.leverage).unwrap_or(Fixed::ZERO);
            if lev.raw() > 0 && self.live.leverage.get(&s) != Some(&lev) {
                self.live.leverage.insert(s.clone(), lev);
                out.push(Output::Venue(VenueCommand::SetLeverage { symbol: s.clone(), leverage: lev }));
            }
        }
        self.live.on_sent(&i);
        out.record(DataKind::Events, Some(s), now, json!({"event": "ORDER_SENT", "intent": i}));
        out.push(Output::Venue(VenueCommand::Submit(i)));
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
                out.record(
                    DataKind::Events,
                    Some(symbol.clone()),
                    now,
                    json!({"event": "ORDER_UNRESOLVED", "client_id": client_id, "error": error}),
                );
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
                    out.record(DataKind::Events, None, now, json!({"event": "ACCOUNT_UNSUPPORTED", "reason": reason}));
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
                    out.record(DataKind::Events, None, now, json!({"event": "PRIVATE_FEED", "state": st}));
                }
                self.live.feed = Some(*st);
            }
            VenueReport::RequestFailed { symbol, client_id, action, error } => {
                // A failed lookup is asked again at the next snapshot.
                self.live.resolving.remove(client_id);
                tracing::warn!(symbol = %symbol, client_id, action, error, "exchange request failed; order unchanged");
                out.record(
                    DataKind::Events,
                    Some(symbol.clone()),
                    now,
                    json!({"event": "VENUE_REQUEST_FAILED", "client_id": client_id, "action": action, "error": error}),
                );
            }
            VenueReport::Leverage { symbol, leverage, error } => {
                if let Some(e) = error {
                    self.live.leverage.remove(symbol);
                    tracing::warn!(symbol = %symbol, leverage = %leverage, error = %e, "set leverage failed");
                    out.record(
                        DataKind::Events,
                        Some(symbol.clone()),
                        now,
                        json!({"event": "LEVERAGE_FAILED", "leverage": leverage, "error": e}),
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_account(
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
            out.record(DataKind::Events, None, now, json!({"event": "INTEGRITY_BROKEN", "report": report}));
        }
        // The real account is the money: when flat on both sides, the balance follows the wallet.
        let flat_here = self.portfolio.positions().len() == 0;
        if let (Some(b), true, true) = (balance, snap.positions.is_empty(), flat_here) {
            let before = self.portfolio.balance();
            if before != b.wallet_balance
                && mode == Mode::Live
                && self.portfolio.rebase(b.wallet_balance, now, false).is_ok()
            {
                out.record(
                    DataKind::Events,
                    None,
                    now,
                    json!({"event": "WALLET_SYNC", "from": before, "to": b.wallet_balance}),
                );
            }
        }
        // PANIC: confirmed only by the exchange's own state.
        if kill.is_engaged() {
            if snap.positions.is_empty() && snap.orders.is_empty() {
                if !self.live.panic_confirmed {
                    self.live.panic_confirmed = true;
                    tracing::warn!("PANIC confirmed by the exchange: no position, no working order");
                    out.record(
                        DataKind::Events,
                        None,
                        now,
                        json!({"event": "PANIC_CONFIRMED", "by": "exchange", "snapshot": self.live.snapshots}),
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
        out.record(DataKind::Events, None, now, json!({"event": "WALLET_SYNC", "from": from, "to": b.wallet_balance}));
        Ok(())
    }

    /// Public trades against the SIM venue's resting orders.
    pub fn on_trades(&mut self, mode: Mode, batch: &TradeBatch, book: &OrderBook, now: TimeMs, out: &mut Outputs) {
        if mode != Mode::Sim {
            return;
        }
        let evs = self.venue.on_trades(batch, book);
        self.on_venue(evs, now, out);
    }

    fn on_venue(&mut self, evs: Vec<VenueEvent>, now: TimeMs, out: &mut Outputs) {
        for ev in evs {
            match ev {
                VenueEvent::Accepted { .. } | VenueEvent::Amended { .. } => {}
                VenueEvent::Triggered { symbol, client_id, price } => {
                    out.record(
                        DataKind::Events,
                        Some(symbol),
                        now,
                        json!({"event": "STOP_TRIGGERED", "client_id": client_id, "price": price}),
                    );
                }
                VenueEvent::Rejected { symbol, client_id, reason: RejectReason::OrderNotFound } => {
                    // A cancel/amend of an order that already ended (filled, or cancelled by the
                    // venue as reduce-only without a position). An entry the venue does not know
                    // and that filled nothing is over.
                    tracing::debug!(symbol = %symbol, client_id, "cancel/amend of an order that already ended");
                    self.restore_stop_if_lost(&symbol, &client_id, now, out);
                    let detail = json!({"client_id": client_id, "reason": "not_found_at_venue"});
                    self.entry_ended(&symbol, &client_id, detail, now, out);
                }
                VenueEvent::Rejected { symbol, client_id, reason } => {
                    out.record(
                        DataKind::Events,
                        Some(symbol.clone()),
                        now,
                        json!({"event": "ORDER_REJECTED", "client_id": client_id, "reason": reason, "bybit": reason.bybit()}),
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
                    let detail = json!({"client_id": client_id, "remaining": remaining, "reason": reason});
                    self.entry_ended(&symbol, &client_id, detail, now, out);
                }
                VenueEvent::Filled(fill) => self.on_fill(fill, now, out),
            }
        }
    }

    /// The venue no longer knows the stop of a position that is still open (an amend found
    /// nothing): a new stop is placed at the position's stop for its whole size.
    fn restore_stop_if_lost(&mut self, s: &Symbol, id: &str, now: TimeMs, out: &mut Outputs) {
        let Some(p) = self.portfolio.position(s).cloned() else { return };
        let lost = self.working.get(s).is_some_and(|w| w.sl_id.as_deref() == Some(id) && !w.closing);
        if !lost || self.still_working(id) {
            return;
        }
        let new_id = self.id("sl", s);
        tracing::warn!(symbol = %s, lost = id, new = %new_id, "stop order gone at the venue while the position is open: placing a new one");
        out.record(
            DataKind::Events,
            Some(s.clone()),
            now,
            json!({"event": "STOP_REPLACED", "lost": id, "client_id": new_id, "stop": p.stop, "qty": p.qty}),
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

    /// The entries working at the venue (other than `except`'s) with the part of their planned
    /// risk not filled yet.
    fn committed_entries(&self, except: &Symbol) -> Committed {
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

    /// A position must never stay without its stop: when the venue refuses the stop order
    /// itself (not an amend of it), the position is closed at market.
    fn protect_if_stop_refused(&mut self, s: &Symbol, id: &str, now: TimeMs, out: &mut Outputs) {
        let Some(p) = self.portfolio.position(s).cloned() else { return };
        // A refused amend leaves the stop working: only a stop that is gone everywhere counts.
        let is_stop = self.working.get(s).is_some_and(|w| w.sl_id.as_deref() == Some(id) && !w.closing);
        if !is_stop || self.still_working(id) {
            return;
        }
        if let Some(w) = self.working.get_mut(s) {
            w.closing = true;
        }
        self.next_id += 1;
        let client_id = format!("x-{}-{}", sym_key(s), self.next_id);
        tracing::error!(symbol = %s, stop = id, "stop order refused by the venue: closing the position at market");
        out.record(DataKind::Events, Some(s.clone()), now, json!({"event": "STOP_REFUSED_CLOSING", "client_id": id}));
        self.pending.push(Intent::Close {
            symbol: s.clone(),
            position_side: p.side,
            qty: p.qty,
            reason: ExitReason::StopLoss,
            client_id,
        });
    }

    /// Order `id` of `s` is no longer working at the venue. If it is the working entry, it stops
    /// being worked (no more cancels); with nothing filled the entry is over (`ENTRY_CANCELLED`
    /// with `detail`).
    fn entry_ended(&mut self, s: &Symbol, id: &str, detail: serde_json::Value, now: TimeMs, out: &mut Outputs) {
        if !self.is_entry(s, id) {
            return;
        }
        if let Some(w) = self.working.get_mut(s) {
            w.entry = None;
        }
        if self.portfolio.position(s).is_none() {
            let mut body = json!({"event": "ENTRY_CANCELLED"});
            if let (Some(b), serde_json::Value::Object(d)) = (body.as_object_mut(), detail) {
                b.extend(d);
            }
            out.record(DataKind::Events, Some(s.clone()), now, body);
            self.step(s, now, Input::Cancelled(CancelReason::Timeout), out);
        }
    }

    /// True while order `id` still works at a venue (LIVE: sent and not seen to end; SIM: resting).
    fn still_working(&self, id: &str) -> bool {
        self.live.orders.contains_key(id) || self.venue.snapshot().orders.iter().any(|o| o.client_id == id)
    }

    fn is_entry(&self, s: &Symbol, id: &str) -> bool {
        self.working.get(s).and_then(|w| w.entry.as_ref()).is_some_and(|(e, _)| e == id)
    }

    fn on_fill(&mut self, fill: Fill, now: TimeMs, out: &mut Outputs) {
        let s = fill.symbol.clone();
        out.record(DataKind::Events, Some(s.clone()), now, json!({"event": "FILL", "fill": fill}));
        let plan = self.working.get(&s).and_then(|w| w.plan.clone());
        let outcome = match self.portfolio.on_fill(&fill, plan.as_ref()) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(symbol = %s, error = %e, "fill refused by the portfolio: integrity check will flag it");
                out.record(DataKind::Events, Some(s), now, json!({"event": "FILL_REFUSED", "error": e.to_string()}));
                return;
            }
        };
        match outcome {
            FillOutcome::Opened => {
                self.step(&s, now, Input::Filled, out);
                let Some(p) = self.portfolio.position(&s).cloned() else { return };
                let exit_side = p.side.opposite();
                let sl_id = self.id("sl", &s);
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
                    let id = self.id("tp", &s);
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
                out.record(
                    DataKind::Events,
                    Some(s.clone()),
                    now,
                    json!({"event": "PARTIAL_EXIT", "realized": realized, "client_id": fill.client_id}),
                );
                if fill.client_id.starts_with("tp-") {
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
                let reason = if fill.client_id.starts_with("sl-") {
                    ExitReason::StopLoss
                } else if fill.client_id.starts_with("tp-") {
                    ExitReason::TakeProfit
                } else if fill.client_id.starts_with("kill-") {
                    ExitReason::Panic
                } else {
                    ExitReason::Timeout
                };
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
                out.record(
                    DataKind::TradesLog,
                    Some(s.clone()),
                    now,
                    json!({
                        "symbol": s, "category": trade.category, "side": trade.side, "qty": trade.qty,
                        "avg_entry": trade.avg_entry, "avg_exit": trade.avg_exit,
                        "opened_ms": trade.opened_ms, "exit_ms": trade.closed_ms,
                        "gross_pnl": gross.to_f64(), "fees": trade.fees.to_f64(), "net_pnl": trade.realized.to_f64(),
                        "net_pnl_exact": trade.realized, "fees_exact": trade.fees,
                        "planned_risk": trade.planned_risk, "r_multiple": r, "mfe": trade.mfe, "mae": trade.mae,
                        "reason": reason, "break_even_moved": w.break_even_done,
                    }),
                );
                if excess.raw() > 0 {
                    out.record(
                        DataKind::Events,
                        Some(s.clone()),
                        now,
                        json!({"event": "FILL_EXCESS", "excess": excess}),
                    );
                }
                self.step(&s, now, Input::ExitTriggered(reason), out);
            }
        }
    }

    /// Trades closed since the last call.
    pub fn take_closed(&mut self) -> Vec<ClosedSummary> {
        std::mem::take(&mut self.closed)
    }

    /// Intents produced while handling venue events (exit orders after an entry fill…), to be
    /// executed in the same tick.
    pub fn take_pending(&mut self) -> Vec<Intent> {
        std::mem::take(&mut self.pending)
    }

    /// Integrity: local positions against the venue's.
    pub fn reconcile(&mut self, mode: Mode, now: TimeMs, out: &mut Outputs) {
        if mode != Mode::Sim {
            return;
        }
        let venue = self.venue.snapshot();
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
            out.record(DataKind::Events, None, now, json!({"event": "INTEGRITY_BROKEN", "report": report}));
        }
    }

    /// Exit fee rate of the portfolio.
    pub fn exit_fee(&self) -> Rate {
        self.portfolio.exit_fee()
    }
}
