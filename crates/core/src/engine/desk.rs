//! The trading desk inside the core: per-symbol state machines, the portfolio, the risk engine,
//! the TP/SL planner and (in SIM) the SIM venue, wired together in the pipeline's order.
//! Everything is deterministic: ordered maps, ids from counters, time from the event.

use crate::config::Config;
use crate::domain::{Category, Fixed, Price, Qty, Side, Symbol, TimeMs};
use crate::engine::event::{FeedState, Mode};
use crate::engine::output::{Output, Outputs};
use crate::engine::record::{EntryEnd, EventRecord, TradeRecord};
use crate::engine::symbol_table::{SymbolId, SymbolRef, SymbolTable};
use crate::execution::contract::{DryRunVenue, Journal, SubmitContext, Venue};
use crate::execution::entry::{EntryDecision, MakerFirstConfig, MakerFirstEntry};
use crate::execution::integrity::{IntegrityGuard, KillSwitch, PositionSnapshot, VenueSnapshot};
use crate::execution::mode::ModeManager;
use crate::execution::order::{
    EndReason, Fill, Intent, Liquidity, OrderKind, OrderRequest, OrderRole, RejectReason, TimeInForce, VenueEvent,
};
use crate::execution::sim::SimVenue;
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

mod live;

mod fills;

mod entries;

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
    pub degraded: bool,
    /// Global RISK_OFF / PANIC or feed down.
    pub global_risk_off: bool,
    /// Size multiplier from the symbol's profile, (0, 1].
    pub size_multiplier: f64,
    /// The store cannot write (trade log, recording): no new entries.
    pub storage_down: bool,
    /// The operator's leverage cap for the symbol.
    pub max_leverage: Option<f64>,
    /// The operator's position notional cap for the symbol, USDT.
    pub max_notional: Option<f64>,
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
    pub risk: RiskEngine,
    /// SIM venue (SIM mode).
    pub venue: SimVenue,
    /// DRY_RUN venue (journals, sends nothing).
    dry_run: DryRunVenue,
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
            dry_run: DryRunVenue,
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

    /// Points the per-symbol tables at `r` (see [`SymbolTable::focus`]): the event's steps then
    /// find its machine and working orders without a hash probe. A hint; changes no answer.
    #[inline]
    pub fn focus(&mut self, r: SymbolRef<'_>) {
        self.machines.focus(r);
        self.working.focus(r);
    }

    /// Prefetches the machine and working orders of market id `id` (once focused before).
    #[inline]
    pub fn prefetch(&self, id: SymbolId) {
        self.machines.prefetch_market(id);
        self.working.prefetch_market(id);
    }

    fn id(&mut self, role: OrderRole, s: &Symbol) -> String {
        self.next_id += 1;
        role.client_id(sym_key(s), self.next_id)
    }

    fn step(&mut self, s: &Symbol, now: TimeMs, input: Input, out: &mut Outputs) {
        let m = self.machines.get_or_insert_with(s, || TradingMachine::new(s.clone(), now));
        if let Some(tr) = m.step(&self.mcfg, now, &input) {
            out.record(Some(s.clone()), now, EventRecord::State { transition: &tr, input });
        }
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

    /// Intents produced while handling venue events (exit orders after an entry fill…), to be
    /// executed in the same tick.
    pub fn take_pending(&mut self) -> Vec<Intent> {
        std::mem::take(&mut self.pending)
    }

    /// Exit fee rate of the portfolio.
    pub fn exit_fee(&self) -> Rate {
        self.portfolio.exit_fee()
    }
}
