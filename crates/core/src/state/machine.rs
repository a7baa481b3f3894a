//! Per-symbol trading state machine.
//!
//! ```text
//!  FLAT ──score>watch & regime ok──> WATCHING_{LONG,SHORT} ──score>arm & confirmed──> ARMED_{LONG,SHORT}
//!    ^                                    │ score decays / flips                   │ decays / flips
//!    └────────────────────────────────────┴────────────────────────────────────────┘
//!  ARMED ──OrderPlaced──> ORDER_PLACED ──Filled──> IN_POSITION ──Managed──> MANAGING
//!                              │ Cancelled (cancel/reject/timeout)    │ ExitTriggered      │ ExitTriggered
//!                              v                                      v                    v
//!                      COOLDOWN (or FLAT)                           EXITED ──Tick──> COOLDOWN ──Tick≥until──> FLAT
//!  any non-position state ──RegimeBlocked──> BLOCKED_REGIME ──RegimeCleared──> FLAT / COOLDOWN
//! ```
//!
//! Inputs are typed; [`TradingMachine::step`] returns the [`Transition`] taken, or `None` when the
//! input does not apply to the current state (illegal inputs are no-ops by construction). A
//! regime block that arrives while an order is working or a position is open is remembered: the
//! order/position is kept and managed, and the machine goes to BLOCKED_REGIME instead of FLAT /
//! COOLDOWN once it is out of the market.

use crate::config::Thresholds;
use crate::domain::{Side, Symbol, TimeMs};
use serde::{Deserialize, Serialize};

/// The state of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeState {
    /// Nothing going on.
    Flat,
    /// Long score above the watch threshold.
    WatchingLong,
    /// Short score above the watch threshold.
    WatchingShort,
    /// Long setup confirmed; an entry may be issued.
    ArmedLong,
    /// Short setup confirmed; an entry may be issued.
    ArmedShort,
    /// Entry order working.
    OrderPlaced,
    /// Position open, not yet managed.
    InPosition,
    /// Position open and managed (break-even, TP1, trailing…).
    Managing,
    /// Position closed; cooldown starts on the next tick.
    Exited,
    /// Waiting before the symbol may be watched again.
    Cooldown,
    /// Symbol regime is high-risk (pump, manipulation, news): no new setups.
    BlockedRegime,
}

impl TradeState {
    /// Label as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::Flat => "FLAT",
            TradeState::WatchingLong => "WATCHING_LONG",
            TradeState::WatchingShort => "WATCHING_SHORT",
            TradeState::ArmedLong => "ARMED_LONG",
            TradeState::ArmedShort => "ARMED_SHORT",
            TradeState::OrderPlaced => "ORDER_PLACED",
            TradeState::InPosition => "IN_POSITION",
            TradeState::Managing => "MANAGING",
            TradeState::Exited => "EXITED",
            TradeState::Cooldown => "COOLDOWN",
            TradeState::BlockedRegime => "BLOCKED_REGIME",
        }
    }
    /// True while an order is working or a position is open.
    pub fn in_market(self) -> bool {
        matches!(self, TradeState::OrderPlaced | TradeState::InPosition | TradeState::Managing)
    }
    /// True when a position is open.
    pub fn has_position(self) -> bool {
        matches!(self, TradeState::InPosition | TradeState::Managing)
    }
    fn watching(side: Side) -> TradeState {
        match side {
            Side::Buy => TradeState::WatchingLong,
            Side::Sell => TradeState::WatchingShort,
        }
    }
    fn armed(side: Side) -> TradeState {
        match side {
            Side::Buy => TradeState::ArmedLong,
            Side::Sell => TradeState::ArmedShort,
        }
    }
}

/// Setup confirmations required to arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confirmation {
    /// Order-book walls support the direction.
    pub walls: bool,
    /// Trade flow supports the direction.
    pub flow: bool,
    /// A fresh negative news item exists for the symbol.
    pub fresh_bad_news: bool,
}

impl Confirmation {
    /// All confirmations met: walls, flow and no fresh bad news.
    pub fn confirmed(&self) -> bool {
        self.walls && self.flow && !self.fresh_bad_news
    }
}

/// Why an order ended without a fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    /// Cancelled by us (edge lost, setup gone).
    Cancelled,
    /// Rejected by the venue (post-only would cross, risk…).
    Rejected,
    /// Not filled in time.
    Timeout,
    /// Cancelled by the kill switch / panic.
    Panic,
}

/// Why a position was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExitReason {
    /// Take-profit reached.
    TakeProfit,
    /// Stop-loss hit.
    StopLoss,
    /// Hard (catastrophic) stop hit.
    HardStop,
    /// Held too long.
    Timeout,
    /// Manual panic / kill switch.
    Panic,
    /// Closed because the regime turned against the position.
    Regime,
}

/// Why the symbol is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlockReason {
    /// Pump in progress.
    Pump,
    /// Manipulation suspected.
    Manipulated,
    /// High-risk news.
    News,
}

/// A position-management action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManagementAction {
    /// Stop moved to break-even (plus fees).
    BreakEven,
    /// First take-profit filled.
    Tp1,
    /// Trailing stop moved.
    Trail,
}

/// One input to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// Latest score of the symbol's best direction.
    Score {
        /// Direction scored.
        side: Side,
        /// Score in [0, 100].
        score: f64,
        /// Symbol and global regime allow trading.
        regime_ok: bool,
        /// Arm confirmations.
        confirm: Confirmation,
    },
    /// The entry order was issued (only from ARMED).
    OrderPlaced,
    /// The entry order filled (fully or first partial fill).
    Filled,
    /// The entry order ended without a fill.
    Cancelled(CancelReason),
    /// First management action on an open position.
    Managed(ManagementAction),
    /// The position was closed (flat at the venue).
    ExitTriggered(ExitReason),
    /// The symbol's regime became high-risk.
    RegimeBlocked(BlockReason),
    /// The high-risk regime ended.
    RegimeCleared,
    /// Time passed (timer tick); the time is the `now_ms` given to [`TradingMachine::step`].
    Tick,
}

/// Why a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransitionReason {
    /// Score rose above the watch threshold.
    ScoreAboveWatch,
    /// Score above the arm threshold with all confirmations.
    Confirmed,
    /// Score fell below the decay level.
    ScoreDecayed,
    /// The best direction flipped.
    DirectionFlipped,
    /// The regime no longer allows trading.
    RegimeNotOk,
    /// Entry order issued.
    OrderPlaced,
    /// Entry filled.
    Filled,
    /// Entry ended without fill.
    OrderEnded(CancelReason),
    /// First management action.
    Managed(ManagementAction),
    /// Position closed.
    Exit(ExitReason),
    /// Cooldown started after an exit.
    CooldownStarted,
    CooldownElapsed,
    /// Regime became high-risk.
    RegimeBlocked(BlockReason),
    /// High-risk regime ended.
    RegimeCleared,
}

/// A state change, ready to be logged as an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub symbol: Symbol,
    /// State before.
    pub from: TradeState,
    /// State after.
    pub to: TradeState,
    /// Direction of the setup/position when there is one.
    pub side: Option<Side>,
    pub reason: TransitionReason,
    /// Event time, ms.
    pub at_ms: TimeMs,
}

/// Machine parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    /// Score to start watching.
    pub watch: f64,
    /// Score to arm (with confirmations).
    pub arm: f64,
    /// Hysteresis: WATCHING/ARMED decay to FLAT when the score drops below `watch - decay_margin`.
    pub decay_margin: f64,
    /// Cooldown after an exit, ms.
    pub cooldown_ms: i64,
    /// Cooldown after an entry ended without a fill, ms (0 = straight back to FLAT).
    pub cancel_cooldown_ms: i64,
}

impl MachineConfig {
    /// From the configured thresholds with default timings (5 points hysteresis, 60 s cooldown
    /// after an exit, 10 s after a cancelled entry).
    pub fn from_thresholds(t: &Thresholds) -> Self {
        MachineConfig { watch: t.watch, arm: t.arm, decay_margin: 5.0, cooldown_ms: 60_000, cancel_cooldown_ms: 10_000 }
    }
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig::from_thresholds(&Thresholds::default())
    }
}

/// Trading state machine of one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradingMachine {
    symbol: Symbol,
    state: TradeState,
    side: Option<Side>,
    since_ms: TimeMs,
    cooldown_until_ms: TimeMs,
    blocked: Option<BlockReason>,
}

impl TradingMachine {
    /// New machine in FLAT.
    pub fn new(symbol: Symbol, now_ms: TimeMs) -> Self {
        TradingMachine {
            symbol,
            state: TradeState::Flat,
            side: None,
            since_ms: now_ms,
            cooldown_until_ms: now_ms,
            blocked: None,
        }
    }
    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }
    /// Current state.
    pub fn state(&self) -> TradeState {
        self.state
    }
    /// Direction of the current setup, order or position.
    pub fn side(&self) -> Option<Side> {
        self.side
    }
    /// Time the current state was entered.
    pub fn since_ms(&self) -> TimeMs {
        self.since_ms
    }
    /// End of the current cooldown (meaningful in COOLDOWN).
    pub fn cooldown_until_ms(&self) -> TimeMs {
        self.cooldown_until_ms
    }
    /// The remembered regime block, if any.
    pub fn blocked(&self) -> Option<BlockReason> {
        self.blocked
    }
    /// True when an entry may be issued now (ARMED).
    pub fn can_enter(&self) -> bool {
        matches!(self.state, TradeState::ArmedLong | TradeState::ArmedShort)
    }
    /// True when the entry order has been working for at least `timeout_ms`: the caller should
    /// cancel it and feed [`Input::Cancelled`]`(Timeout)` once the venue confirms.
    pub fn order_timed_out(&self, now_ms: TimeMs, timeout_ms: i64) -> bool {
        self.state == TradeState::OrderPlaced && now_ms.saturating_sub(self.since_ms) >= timeout_ms
    }

    fn go(&mut self, to: TradeState, side: Option<Side>, reason: TransitionReason, now_ms: TimeMs) -> Transition {
        let from = self.state;
        self.state = to;
        self.side = side;
        self.since_ms = now_ms;
        Transition { symbol: self.symbol.clone(), from, to, side, reason, at_ms: now_ms }
    }

    /// State to rest in after leaving the market: BLOCKED_REGIME while blocked, else COOLDOWN
    /// (when `cooldown_ms > 0`) or FLAT.
    fn rest(&mut self, cooldown_ms: i64, reason: TransitionReason, now_ms: TimeMs) -> Transition {
        if let Some(b) = self.blocked {
            self.cooldown_until_ms = now_ms.saturating_add(cooldown_ms.max(0));
            return self.go(TradeState::BlockedRegime, None, TransitionReason::RegimeBlocked(b), now_ms);
        }
        if cooldown_ms > 0 {
            self.cooldown_until_ms = now_ms.saturating_add(cooldown_ms);
            self.go(TradeState::Cooldown, None, reason, now_ms)
        } else {
            self.go(TradeState::Flat, None, reason, now_ms)
        }
    }

    /// Feeds one input at event time `now_ms`; returns the transition taken, if any.
    pub fn step(&mut self, cfg: &MachineConfig, now_ms: TimeMs, input: &Input) -> Option<Transition> {
        use TradeState as S;
        let st = self.state;
        match *input {
            Input::Score { side, score, regime_ok, confirm } => {
                // NaN counts as decayed.
                let decayed = score.is_nan() || score < cfg.watch - cfg.decay_margin;
                match st {
                    S::Flat => (regime_ok && score > cfg.watch)
                        .then(|| self.go(S::watching(side), Some(side), TransitionReason::ScoreAboveWatch, now_ms)),
                    S::WatchingLong | S::WatchingShort | S::ArmedLong | S::ArmedShort => {
                        let armed = matches!(st, S::ArmedLong | S::ArmedShort);
                        if !regime_ok {
                            Some(self.go(S::Flat, None, TransitionReason::RegimeNotOk, now_ms))
                        } else if Some(side) != self.side {
                            Some(self.go(S::Flat, None, TransitionReason::DirectionFlipped, now_ms))
                        } else if decayed {
                            Some(self.go(S::Flat, None, TransitionReason::ScoreDecayed, now_ms))
                        } else if !armed && score > cfg.arm && confirm.confirmed() {
                            Some(self.go(S::armed(side), Some(side), TransitionReason::Confirmed, now_ms))
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            }
            Input::OrderPlaced => match st {
                S::ArmedLong | S::ArmedShort => {
                    Some(self.go(S::OrderPlaced, self.side, TransitionReason::OrderPlaced, now_ms))
                }
                _ => None,
            },
            Input::Filled => match st {
                S::OrderPlaced => Some(self.go(S::InPosition, self.side, TransitionReason::Filled, now_ms)),
                _ => None,
            },
            Input::Cancelled(r) => match st {
                S::OrderPlaced => Some(self.rest(cfg.cancel_cooldown_ms, TransitionReason::OrderEnded(r), now_ms)),
                _ => None,
            },
            Input::Managed(a) => match st {
                S::InPosition => Some(self.go(S::Managing, self.side, TransitionReason::Managed(a), now_ms)),
                _ => None,
            },
            Input::ExitTriggered(r) => match st {
                S::InPosition | S::Managing => Some(self.go(S::Exited, self.side, TransitionReason::Exit(r), now_ms)),
                _ => None,
            },
            Input::RegimeBlocked(b) => {
                self.blocked = Some(b);
                match st {
                    S::OrderPlaced | S::InPosition | S::Managing | S::BlockedRegime => None,
                    S::Cooldown | S::Exited => {
                        // Keep the cooldown deadline: clearing the block must not skip it.
                        if st == S::Exited {
                            self.cooldown_until_ms = now_ms.saturating_add(cfg.cooldown_ms.max(0));
                        }
                        Some(self.go(S::BlockedRegime, None, TransitionReason::RegimeBlocked(b), now_ms))
                    }
                    _ => {
                        self.cooldown_until_ms = now_ms;
                        Some(self.go(S::BlockedRegime, None, TransitionReason::RegimeBlocked(b), now_ms))
                    }
                }
            }
            Input::RegimeCleared => {
                self.blocked = None;
                match st {
                    S::BlockedRegime if now_ms < self.cooldown_until_ms => {
                        Some(self.go(S::Cooldown, None, TransitionReason::RegimeCleared, now_ms))
                    }
                    S::BlockedRegime => Some(self.go(S::Flat, None, TransitionReason::RegimeCleared, now_ms)),
                    _ => None,
                }
            }
            Input::Tick => match st {
                S::Exited => Some(self.rest(cfg.cooldown_ms, TransitionReason::CooldownStarted, now_ms)),
                S::Cooldown if now_ms >= self.cooldown_until_ms => {
                    Some(self.go(S::Flat, None, TransitionReason::CooldownElapsed, now_ms))
                }
                _ => None,
            },
        }
    }
}

/// Every legal `(from, to)` edge. Used by tests and available to auditors of the transition log.
pub fn is_legal_edge(from: TradeState, to: TradeState) -> bool {
    use TradeState as S;
    match from {
        S::Flat => matches!(to, S::WatchingLong | S::WatchingShort | S::BlockedRegime),
        S::WatchingLong => matches!(to, S::ArmedLong | S::Flat | S::BlockedRegime),
        S::WatchingShort => matches!(to, S::ArmedShort | S::Flat | S::BlockedRegime),
        S::ArmedLong | S::ArmedShort => matches!(to, S::OrderPlaced | S::Flat | S::BlockedRegime),
        S::OrderPlaced => matches!(to, S::InPosition | S::Cooldown | S::Flat | S::BlockedRegime),
        S::InPosition => matches!(to, S::Managing | S::Exited),
        S::Managing => matches!(to, S::Exited),
        S::Exited => matches!(to, S::Cooldown | S::Flat | S::BlockedRegime),
        S::Cooldown => matches!(to, S::Flat | S::BlockedRegime),
        S::BlockedRegime => matches!(to, S::Flat | S::Cooldown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use TradeState as S;

    fn cfg() -> MachineConfig {
        MachineConfig { watch: 55.0, arm: 70.0, decay_margin: 5.0, cooldown_ms: 1_000, cancel_cooldown_ms: 500 }
    }
    const OK: Confirmation = Confirmation { walls: true, flow: true, fresh_bad_news: false };
    fn score(side: Side, s: f64) -> Input {
        Input::Score { side, score: s, regime_ok: true, confirm: OK }
    }
    fn m() -> TradingMachine {
        TradingMachine::new(Symbol::new("BTCUSDT"), 0)
    }
    /// Steps and asserts the resulting state (and that a transition happened).
    fn go(mc: &mut TradingMachine, t: TimeMs, i: Input, to: TradeState) -> Transition {
        let from = mc.state();
        let tr = mc.step(&cfg(), t, &i).unwrap_or_else(|| panic!("{i:?} from {from:?} was a no-op"));
        assert_eq!((tr.from, tr.to, tr.at_ms), (from, to, t));
        assert_eq!(mc.state(), to);
        assert!(is_legal_edge(from, to));
        tr
    }
    fn noop(mc: &mut TradingMachine, t: TimeMs, i: Input) {
        let before = mc.clone();
        assert_eq!(mc.step(&cfg(), t, &i), None, "{i:?} in {:?}", before.state());
        assert_eq!(mc.state(), before.state());
    }
    fn to_position(mc: &mut TradingMachine, side: Side) {
        go(mc, 1, score(side, 60.0), S::watching(side));
        go(mc, 2, score(side, 75.0), S::armed(side));
        go(mc, 3, Input::OrderPlaced, S::OrderPlaced);
        go(mc, 4, Input::Filled, S::InPosition);
    }

    #[test]
    fn full_long_and_short_life_cycles() {
        for side in [Side::Buy, Side::Sell] {
            let mut mc = m();
            to_position(&mut mc, side);
            assert_eq!(mc.side(), Some(side));
            let t = go(&mut mc, 5, Input::Managed(ManagementAction::BreakEven), S::Managing);
            assert_eq!(t.reason, TransitionReason::Managed(ManagementAction::BreakEven));
            go(&mut mc, 6, Input::ExitTriggered(ExitReason::TakeProfit), S::Exited);
            let t = go(&mut mc, 7, Input::Tick, S::Cooldown);
            assert_eq!(t.reason, TransitionReason::CooldownStarted);
            assert_eq!(mc.cooldown_until_ms(), 1_007);
            noop(&mut mc, 1_006, Input::Tick);
            noop(&mut mc, 1_006, score(side, 99.0));
            let t = go(&mut mc, 1_007, Input::Tick, S::Flat);
            assert_eq!((t.reason, t.side), (TransitionReason::CooldownElapsed, None));
        }
    }

    #[test]
    fn in_position_exits_directly_on_stop_hard_stop_timeout_panic() {
        for r in [ExitReason::StopLoss, ExitReason::HardStop, ExitReason::Timeout, ExitReason::Panic] {
            let mut mc = m();
            to_position(&mut mc, Side::Buy);
            let t = go(&mut mc, 9, Input::ExitTriggered(r), S::Exited);
            assert_eq!(t.reason, TransitionReason::Exit(r));
        }
    }

    #[test]
    fn watch_needs_threshold_and_regime() {
        let mut mc = m();
        noop(&mut mc, 1, score(Side::Buy, 55.0)); // not strictly above
        noop(&mut mc, 1, Input::Score { side: Side::Buy, score: 90.0, regime_ok: false, confirm: OK });
        noop(&mut mc, 1, score(Side::Buy, f64::NAN));
        let t = go(&mut mc, 1, score(Side::Buy, 55.5), S::WatchingLong);
        assert_eq!((t.reason, t.side), (TransitionReason::ScoreAboveWatch, Some(Side::Buy)));
    }

    #[test]
    fn arming_needs_every_confirmation() {
        let bad = [
            Confirmation { walls: false, ..OK },
            Confirmation { flow: false, ..OK },
            Confirmation { fresh_bad_news: true, ..OK },
        ];
        for c in bad {
            let mut mc = m();
            go(&mut mc, 1, score(Side::Sell, 60.0), S::WatchingShort);
            noop(&mut mc, 2, Input::Score { side: Side::Sell, score: 95.0, regime_ok: true, confirm: c });
        }
        let mut mc = m();
        go(&mut mc, 1, score(Side::Sell, 60.0), S::WatchingShort);
        noop(&mut mc, 2, score(Side::Sell, 70.0)); // not strictly above arm
        let t = go(&mut mc, 3, score(Side::Sell, 70.1), S::ArmedShort);
        assert_eq!(t.reason, TransitionReason::Confirmed);
    }

    #[test]
    fn watching_and_armed_decay_with_hysteresis_flip_and_regime() {
        // Watching: stays between watch - margin and watch, decays below.
        let mut mc = m();
        go(&mut mc, 1, score(Side::Buy, 60.0), S::WatchingLong);
        noop(&mut mc, 2, score(Side::Buy, 50.0));
        let t = go(&mut mc, 3, score(Side::Buy, 49.9), S::Flat);
        assert_eq!(t.reason, TransitionReason::ScoreDecayed);
        // Armed: decays too, and a NaN score counts as decayed.
        let mut mc = m();
        go(&mut mc, 1, score(Side::Buy, 60.0), S::WatchingLong);
        go(&mut mc, 2, score(Side::Buy, 80.0), S::ArmedLong);
        noop(&mut mc, 3, score(Side::Buy, 56.0));
        go(&mut mc, 4, score(Side::Buy, f64::NAN), S::Flat);
        // Direction flip.
        let mut mc = m();
        go(&mut mc, 1, score(Side::Buy, 60.0), S::WatchingLong);
        go(&mut mc, 2, score(Side::Buy, 80.0), S::ArmedLong);
        let t = go(&mut mc, 3, score(Side::Sell, 90.0), S::Flat);
        assert_eq!(t.reason, TransitionReason::DirectionFlipped);
        // Regime not ok.
        let mut mc = m();
        go(&mut mc, 1, score(Side::Sell, 60.0), S::WatchingShort);
        let t = go(&mut mc, 2, Input::Score { side: Side::Sell, score: 90.0, regime_ok: false, confirm: OK }, S::Flat);
        assert_eq!(t.reason, TransitionReason::RegimeNotOk);
    }

    #[test]
    fn order_end_goes_to_cooldown_or_flat() {
        for r in [CancelReason::Cancelled, CancelReason::Rejected, CancelReason::Timeout, CancelReason::Panic] {
            let mut mc = m();
            go(&mut mc, 1, score(Side::Buy, 60.0), S::WatchingLong);
            go(&mut mc, 2, score(Side::Buy, 80.0), S::ArmedLong);
            go(&mut mc, 3, Input::OrderPlaced, S::OrderPlaced);
            assert!(!mc.order_timed_out(100, 200));
            assert!(mc.order_timed_out(203, 200));
            let t = go(&mut mc, 10, Input::Cancelled(r), S::Cooldown);
            assert_eq!(t.reason, TransitionReason::OrderEnded(r));
            assert_eq!(mc.cooldown_until_ms(), 510);
            go(&mut mc, 510, Input::Tick, S::Flat);
        }
        let mut mc = m();
        let c = MachineConfig { cancel_cooldown_ms: 0, ..cfg() };
        for (t, i) in [(1, score(Side::Buy, 60.0)), (2, score(Side::Buy, 80.0)), (3, Input::OrderPlaced)] {
            mc.step(&c, t, &i).unwrap();
        }
        let t = mc.step(&c, 4, &Input::Cancelled(CancelReason::Rejected)).unwrap();
        assert_eq!(t.to, S::Flat);
    }

    #[test]
    fn regime_block_from_every_non_position_state_and_clear() {
        let reach: Vec<Vec<Input>> = vec![
            vec![],
            vec![score(Side::Buy, 60.0)],
            vec![score(Side::Sell, 60.0)],
            vec![score(Side::Buy, 60.0), score(Side::Buy, 80.0)],
            vec![score(Side::Sell, 60.0), score(Side::Sell, 80.0)],
        ];
        for seq in reach {
            let mut mc = m();
            for i in &seq {
                mc.step(&cfg(), 1, i).unwrap();
            }
            let t = go(&mut mc, 2, Input::RegimeBlocked(BlockReason::Pump), S::BlockedRegime);
            assert_eq!(t.reason, TransitionReason::RegimeBlocked(BlockReason::Pump));
            noop(&mut mc, 3, score(Side::Buy, 99.0));
            noop(&mut mc, 3, Input::OrderPlaced);
            noop(&mut mc, 3, Input::RegimeBlocked(BlockReason::News));
            let t = go(&mut mc, 4, Input::RegimeCleared, S::Flat);
            assert_eq!(t.reason, TransitionReason::RegimeCleared);
        }
    }

    #[test]
    fn block_during_cooldown_keeps_the_cooldown() {
        let mut mc = m();
        to_position(&mut mc, Side::Buy);
        go(&mut mc, 5, Input::ExitTriggered(ExitReason::StopLoss), S::Exited);
        go(&mut mc, 6, Input::Tick, S::Cooldown); // until 1006
        go(&mut mc, 7, Input::RegimeBlocked(BlockReason::Manipulated), S::BlockedRegime);
        go(&mut mc, 8, Input::RegimeCleared, S::Cooldown);
        noop(&mut mc, 1_005, Input::Tick);
        go(&mut mc, 1_006, Input::Tick, S::Flat);
        // Block straight after an exit.
        let mut mc = m();
        to_position(&mut mc, Side::Sell);
        go(&mut mc, 5, Input::ExitTriggered(ExitReason::StopLoss), S::Exited);
        go(&mut mc, 6, Input::RegimeBlocked(BlockReason::News), S::BlockedRegime);
        go(&mut mc, 2_000, Input::RegimeCleared, S::Flat);
    }

    #[test]
    fn positions_are_kept_and_managed_while_blocked() {
        let mut mc = m();
        to_position(&mut mc, Side::Buy);
        noop(&mut mc, 5, Input::RegimeBlocked(BlockReason::Pump));
        assert_eq!(mc.blocked(), Some(BlockReason::Pump));
        go(&mut mc, 6, Input::Managed(ManagementAction::Tp1), S::Managing);
        go(&mut mc, 7, Input::ExitTriggered(ExitReason::TakeProfit), S::Exited);
        let t = go(&mut mc, 8, Input::Tick, S::BlockedRegime);
        assert_eq!(t.reason, TransitionReason::RegimeBlocked(BlockReason::Pump));
        go(&mut mc, 9, Input::RegimeCleared, S::Cooldown); // the exit cooldown still runs
        go(&mut mc, 1_008, Input::Tick, S::Flat);
        // A working order blocked then cancelled goes to BLOCKED_REGIME; a fill is still taken.
        let mut mc = m();
        go(&mut mc, 1, score(Side::Buy, 60.0), S::WatchingLong);
        go(&mut mc, 2, score(Side::Buy, 80.0), S::ArmedLong);
        go(&mut mc, 3, Input::OrderPlaced, S::OrderPlaced);
        noop(&mut mc, 4, Input::RegimeBlocked(BlockReason::News));
        let mut filled = mc.clone();
        go(&mut mc, 5, Input::Cancelled(CancelReason::Cancelled), S::BlockedRegime);
        go(&mut filled, 5, Input::Filled, S::InPosition);
        // Clearing while in a position only forgets the block.
        noop(&mut filled, 6, Input::RegimeCleared);
        assert_eq!(filled.blocked(), None);
    }

    #[test]
    fn illegal_inputs_are_noops() {
        let mut mc = m();
        for i in [
            Input::OrderPlaced,
            Input::Filled,
            Input::Cancelled(CancelReason::Timeout),
            Input::Managed(ManagementAction::Trail),
            Input::ExitTriggered(ExitReason::StopLoss),
            Input::RegimeCleared,
            Input::Tick,
        ] {
            noop(&mut mc, 1, i);
        }
        go(&mut mc, 1, score(Side::Buy, 60.0), S::WatchingLong);
        for i in [Input::OrderPlaced, Input::Filled, Input::ExitTriggered(ExitReason::Panic), Input::Tick] {
            noop(&mut mc, 2, i);
        }
        go(&mut mc, 2, score(Side::Buy, 80.0), S::ArmedLong);
        for i in [Input::Filled, Input::Managed(ManagementAction::BreakEven), score(Side::Buy, 99.0)] {
            noop(&mut mc, 3, i);
        }
        go(&mut mc, 3, Input::OrderPlaced, S::OrderPlaced);
        for i in [Input::OrderPlaced, score(Side::Sell, 99.0), Input::ExitTriggered(ExitReason::StopLoss), Input::Tick]
        {
            noop(&mut mc, 4, i);
        }
        go(&mut mc, 4, Input::Filled, S::InPosition);
        for i in [Input::Filled, Input::Cancelled(CancelReason::Cancelled), Input::OrderPlaced, score(Side::Buy, 1.0)] {
            noop(&mut mc, 5, i);
        }
        go(&mut mc, 5, Input::Managed(ManagementAction::Tp1), S::Managing);
        noop(&mut mc, 6, Input::Managed(ManagementAction::Trail));
        go(&mut mc, 6, Input::ExitTriggered(ExitReason::Timeout), S::Exited);
        for i in [Input::Filled, Input::ExitTriggered(ExitReason::Panic), score(Side::Buy, 99.0), Input::OrderPlaced] {
            noop(&mut mc, 7, i);
        }
    }

    #[test]
    fn transitions_serialize_for_the_event_log() {
        let mut mc = m();
        let t = mc.step(&cfg(), 42, &score(Side::Sell, 60.0)).unwrap();
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j["from"], "FLAT");
        assert_eq!(j["to"], "WATCHING_SHORT");
        assert_eq!(j["reason"]["reason"], "SCORE_ABOVE_WATCH");
        assert_eq!(j["at_ms"], 42);
        assert_eq!(serde_json::from_value::<Transition>(j).unwrap(), t);
        let t2 = Transition { reason: TransitionReason::Exit(ExitReason::HardStop), ..t };
        let s = serde_json::to_string(&t2).unwrap();
        assert!(s.contains("\"detail\":\"HARD_STOP\""), "{s}");
    }

    fn any_input() -> impl Strategy<Value = Input> {
        prop_oneof![
            (any::<bool>(), 0.0f64..100.0, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
                |(b, s, r, w, f, n)| Input::Score {
                    side: if b { Side::Buy } else { Side::Sell },
                    score: s,
                    regime_ok: r,
                    confirm: Confirmation { walls: w, flow: f, fresh_bad_news: n },
                }
            ),
            Just(Input::OrderPlaced),
            Just(Input::Filled),
            Just(Input::Cancelled(CancelReason::Rejected)),
            Just(Input::Managed(ManagementAction::BreakEven)),
            Just(Input::ExitTriggered(ExitReason::StopLoss)),
            Just(Input::RegimeBlocked(BlockReason::Pump)),
            Just(Input::RegimeCleared),
            Just(Input::Tick),
        ]
    }

    proptest! {
        #[test]
        fn every_transition_is_a_legal_edge(inputs in proptest::collection::vec((0i64..400, any_input()), 1..200)) {
            let mut mc = m();
            let mut now = 0;
            for (dt, i) in inputs {
                now += dt;
                let before = mc.state();
                match mc.step(&cfg(), now, &i) {
                    Some(t) => {
                        prop_assert_eq!(t.from, before);
                        prop_assert_eq!(t.to, mc.state());
                        prop_assert!(is_legal_edge(t.from, t.to), "{:?} -> {:?} on {:?}", t.from, t.to, i);
                        // A position is never left except by an exit.
                        if before.has_position() && !t.to.has_position() {
                            prop_assert!(matches!(i, Input::ExitTriggered(_)));
                        }
                    }
                    None => prop_assert_eq!(mc.state(), before),
                }
                // Outside a position or order, a remembered block always shows as BLOCKED_REGIME
                // (EXITED waits for its tick).
                if mc.blocked().is_some() && !mc.state().in_market() && mc.state() != S::Exited {
                    prop_assert_eq!(mc.state(), S::BlockedRegime);
                }
            }
        }
    }
}
