//! The LIVE venue as the core sees it: what it asks of the exchange edge ([`VenueCommand`]) and
//! what the edge reports back as events ([`VenueReport`]), plus the core's own record of the
//! exchange account ([`LiveAccount`]): the last reconciled snapshot, the wallet, the private
//! stream's state, the orders it sent that are still working, and the two-strike integrity check.
//!
//! Everything here is pure data and deterministic: the edge (`connectors::bybit_private::venue`)
//! does the I/O, and because its answers come back as recorded events, a LIVE session replays
//! exactly like a SIM one.

use crate::domain::{Fixed, Qty, Symbol, TimeMs};
use crate::execution::integrity::{reconcile, IntegrityReport, Mismatch, OrderSnapshot, VenueSnapshot};
use crate::execution::order::VenueEvent;
use crate::execution::order::{Intent, OrderKind};
use crate::market::data::FeedState;
use crate::risk::money::Money;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the core asks of the exchange edge (LIVE only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum VenueCommand {
    /// Carry an intent out (create / amend / cancel / reduce-only close).
    Submit(Intent),
    /// Set a symbol's leverage (before its first entry at that leverage).
    SetLeverage {
        symbol: Symbol,
        /// Leverage (buy and sell).
        leverage: Fixed,
    },
    /// Find out how an order the core believes working ended (its end was not reported, e.g.
    /// a push lost while the private stream was down) and report it.
    Resolve {
        symbol: Symbol,
        /// Client order id.
        client_id: String,
    },
    /// Fetch the executions since `since_ms` and report each as a fill (the core drops the ones
    /// it has booked already): positions disagree, so a fill may have been missed.
    RecoverExecutions {
        /// Start of the window (exchange time, ms).
        since_ms: TimeMs,
    },
    /// Fetch positions, open orders and the wallet now and report them as
    /// [`VenueReport::Account`] (after PANIC, after an unresolved create).
    Refresh,
}

/// The account's balance in USDT as the exchange reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    /// Equity (wallet balance + unrealised PnL).
    pub equity: Money,
    /// Wallet balance (realised).
    pub wallet_balance: Money,
    /// Available for new margin.
    pub available: Money,
}

/// Why an account snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotCause {
    /// REST reconciliation after the private stream (re)connected.
    Reconnect,
    /// The periodic integrity check.
    Periodic,
    /// Asked for by the core ([`VenueCommand::Refresh`]).
    Requested,
}

/// What the exchange edge reports. Each is an input event of the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum VenueReport {
    /// An order event: accepted, rejected, filled, ended, amended.
    Order(VenueEvent),
    /// A create whose fate could not be established (it may exist at the exchange). Never
    /// re-sent; the next account snapshot tells.
    Unresolved {
        symbol: Symbol,
        /// Client order id.
        client_id: String,
        /// Last error met.
        error: String,
    },
    /// Positions, working orders and wallet as the exchange lists them.
    Account {
        /// Positions and working orders.
        snapshot: VenueSnapshot,
        /// Wallet (when it could be fetched).
        balance: Option<AccountBalance>,
        /// Why it was taken.
        cause: SnapshotCause,
    },
    /// Wallet update pushed by the private stream.
    Balance(AccountBalance),
    /// The exchange account cannot be traded (a classic, non-unified account has no USD
    /// equity): LIVE is refused with `reason` until a wallet of a unified account arrives.
    AccountUnsupported {
        /// Why, for the operator.
        reason: String,
    },
    /// Private stream state (CONNECTED once authenticated, subscribed and reconciled).
    Feed(FeedState),
    /// An amend or cancel the exchange refused or that could not be delivered; the order is as
    /// it was (the core retries what matters: entry cancels each second, PANIC per snapshot).
    RequestFailed {
        symbol: Symbol,
        /// Client order id.
        client_id: String,
        /// `amend` or `cancel`.
        action: String,
        error: String,
    },
    /// Result of a [`VenueCommand::SetLeverage`].
    Leverage {
        symbol: Symbol,
        /// Requested leverage.
        leverage: Fixed,
        /// `None` when set (or already set); the error otherwise.
        error: Option<String>,
    },
}

impl VenueReport {
    /// Symbol concerned, if any.
    pub fn symbol(&self) -> Option<&Symbol> {
        match self {
            VenueReport::Order(ev) => Some(ev.symbol()),
            VenueReport::Unresolved { symbol, .. }
            | VenueReport::RequestFailed { symbol, .. }
            | VenueReport::Leverage { symbol, .. } => Some(symbol),
            VenueReport::Account { .. }
            | VenueReport::Balance(_)
            | VenueReport::Feed(_)
            | VenueReport::AccountUnsupported { .. } => None,
        }
    }
}

/// An order the core sent to the exchange and has not seen end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOrder {
    /// How it was sent.
    pub snapshot: OrderSnapshot,
    /// Quantity filled so far.
    pub filled: Qty,
    /// The exchange acknowledged it (create answered, or a fill seen). Until then it may still
    /// be queued behind the rate limiter, so its absence at the exchange proves nothing.
    pub acked: bool,
}

/// What the core knows of the exchange account in LIVE.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAccount {
    /// Private stream state (`None`: never reported: no private connector).
    pub feed: Option<FeedState>,
    /// Last account snapshot and its number (1, 2, …).
    pub snapshot: Option<VenueSnapshot>,
    /// Number of snapshots received.
    pub snapshots: u64,
    /// Last known balance.
    pub balance: Option<AccountBalance>,
    /// Leverage set per symbol.
    pub leverage: BTreeMap<Symbol, Fixed>,
    /// Orders sent and not seen end, by client id.
    pub orders: BTreeMap<String, LiveOrder>,
    /// Mismatches of the previous check (a mismatch must be seen twice in a row to count: a
    /// snapshot can race fills still on their way).
    pub suspect: Vec<Mismatch>,
    /// Snapshot number the last PANIC flatten was computed from.
    pub flattened_at: u64,
    /// A PANIC was confirmed flat by the exchange (reset when the kill switch is released).
    pub panic_confirmed: bool,
    /// Orders whose fate was asked for ([`VenueCommand::Resolve`]) and not answered yet.
    pub resolving: std::collections::BTreeSet<String>,
    /// When LIVE was last entered (event time): executions before it are not ours to book.
    pub live_since_ms: Option<TimeMs>,
    /// Execution ids booked, bounded (oldest forgotten first): a fill delivered twice (stream and
    /// recovery) is booked once.
    seen_execs: std::collections::BTreeSet<String>,
    seen_order: std::collections::VecDeque<String>,
    /// Executions fetches asked for the current position disagreement (0 once positions agree).
    /// While fewer than [`RECOVERY_ROUNDS`] were asked, a persistent position mismatch is held
    /// back: a fetch refused by the rate limit, or answered after the next snapshot, must not
    /// break integrity over fills that are only late.
    #[serde(default)]
    pub recovery_rounds: u8,
    /// Why the exchange account cannot be traded ([`VenueReport::AccountUnsupported`]);
    /// cleared by the next wallet of a unified account.
    #[serde(default)]
    pub unsupported: Option<String>,
}

/// Execution ids remembered for deduplication.
pub const SEEN_EXECUTIONS: usize = 20_000;

/// Executions fetches per position disagreement before it may break integrity (so a position
/// mismatch breaks on its third consecutive sighting at the latest, an order mismatch on its second).
pub const RECOVERY_ROUNDS: u8 = 2;

fn is_position_mismatch(m: &Mismatch) -> bool {
    matches!(
        m,
        Mismatch::PositionMissingAtVenue { .. }
            | Mismatch::UnknownVenuePosition { .. }
            | Mismatch::PositionQty { .. }
            | Mismatch::PositionSide { .. }
    )
}

impl LiveAccount {
    /// True when the private stream is connected and at least one snapshot was received: the
    /// engine knows the account and can trade it.
    pub fn ready(&self) -> bool {
        self.feed == Some(FeedState::Connected)
            && self.snapshot.is_some()
            && self.balance.is_some()
            && self.unsupported.is_none()
    }

    /// True the first time an execution id is seen (then remembered); false for a repeat.
    pub fn first_sighting(&mut self, exec_id: &str) -> bool {
        if !self.seen_execs.insert(exec_id.to_string()) {
            return false;
        }
        self.seen_order.push_back(exec_id.to_string());
        if self.seen_order.len() > SEEN_EXECUTIONS {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen_execs.remove(&old);
            }
        }
        true
    }

    /// After a check: while positions disagree, ask the exchange for the executions since LIVE
    /// was entered (at most `window_ms` back), once per snapshot and at most [`RECOVERY_ROUNDS`]
    /// times per disagreement.
    pub fn recovery_request(&mut self, now_ms: TimeMs, window_ms: TimeMs) -> Option<VenueCommand> {
        if !self.suspect.iter().any(is_position_mismatch) {
            self.recovery_rounds = 0;
            return None;
        }
        if self.recovery_rounds >= RECOVERY_ROUNDS {
            return None;
        }
        self.recovery_rounds += 1;
        let since_ms = self.live_since_ms.unwrap_or(now_ms).max(now_ms - window_ms);
        Some(VenueCommand::RecoverExecutions { since_ms })
    }

    /// Notes an order sent to the exchange (creates and closes; amends update it).
    pub fn on_sent(&mut self, intent: &Intent) {
        match intent {
            Intent::Place(r) => {
                self.orders.insert(
                    r.client_id.clone(),
                    LiveOrder {
                        snapshot: OrderSnapshot {
                            symbol: r.symbol.clone(),
                            client_id: r.client_id.clone(),
                            side: r.side,
                            kind: r.kind,
                            remaining: r.qty,
                            reduce_only: r.reduce_only,
                        },
                        filled: Qty::ZERO,
                        acked: false,
                    },
                );
            }
            Intent::Close { symbol, position_side, qty, client_id, .. } => {
                self.orders.insert(
                    client_id.clone(),
                    LiveOrder {
                        snapshot: OrderSnapshot {
                            symbol: symbol.clone(),
                            client_id: client_id.clone(),
                            side: position_side.opposite(),
                            kind: OrderKind::Market,
                            remaining: *qty,
                            reduce_only: true,
                        },
                        filled: Qty::ZERO,
                        acked: false,
                    },
                );
            }
            Intent::Amend { client_id, qty: Some(q), .. } => {
                if let Some(o) = self.orders.get_mut(client_id) {
                    o.snapshot.remaining = Qty::from_raw((q.raw() - o.filled.raw()).max(0));
                }
            }
            Intent::Amend { .. } | Intent::Cancel { .. } => {}
        }
    }

    /// Notes an order event; returns true when the order is known and has now ended.
    pub fn on_order_event(&mut self, ev: &VenueEvent) -> bool {
        if let VenueEvent::Cancelled { client_id, .. }
        | VenueEvent::Rejected { client_id, .. }
        | VenueEvent::Accepted { client_id, .. } = ev
        {
            self.resolving.remove(client_id);
        }
        match ev {
            VenueEvent::Filled(f) => {
                let done = match self.orders.get_mut(&f.client_id) {
                    Some(o) => {
                        o.acked = true;
                        o.filled = Qty::from_raw(o.filled.raw() + f.qty.raw());
                        o.snapshot.remaining = Qty::from_raw((o.snapshot.remaining.raw() - f.qty.raw()).max(0));
                        o.snapshot.remaining.raw() == 0
                    }
                    None => false,
                };
                if done {
                    self.orders.remove(&f.client_id);
                }
                done
            }
            VenueEvent::Cancelled { client_id, .. } => self.orders.remove(client_id).is_some(),
            // From the exchange edge a rejection is a refused create (or an order the exchange
            // does not know): either way it is not working. Refused amends and cancels come as
            // [`VenueReport::RequestFailed`] and leave the order as it was.
            VenueEvent::Rejected { client_id, .. } => self.orders.remove(client_id).is_some(),
            VenueEvent::Accepted { client_id, .. } => {
                if let Some(o) = self.orders.get_mut(client_id) {
                    o.acked = true;
                }
                false
            }
            VenueEvent::Amended { .. } | VenueEvent::Triggered { .. } => false,
        }
    }

    /// Working orders the core believes are at the exchange, as a snapshot; orders not yet
    /// acknowledged only when `venue` lists them (in flight, their absence proves nothing).
    pub fn local_orders(&self, venue: &VenueSnapshot) -> Vec<OrderSnapshot> {
        self.orders
            .values()
            .filter(|o| o.acked || venue.orders.iter().any(|v| v.client_id == o.snapshot.client_id))
            .map(|o| o.snapshot.clone())
            .collect()
    }

    /// Compares the local view with an exchange snapshot. Positions are compared exactly; orders
    /// by client id (presence both ways). Returns the mismatches seen in this *and* the
    /// previous check (persistent ones), which are the ones that break integrity; position
    /// mismatches only once [`RECOVERY_ROUNDS`] executions fetches were asked for them.
    pub fn check(&mut self, local: &VenueSnapshot, venue: &VenueSnapshot, at_ms: TimeMs) -> IntegrityReport {
        // Orders present on both sides are compared by presence only: amends and partial fills
        // in flight change prices and sizes legitimately.
        let by_id: BTreeMap<&str, &OrderSnapshot> = venue.orders.iter().map(|o| (o.client_id.as_str(), o)).collect();
        let local_orders: Vec<OrderSnapshot> = local
            .orders
            .iter()
            .map(|o| by_id.get(o.client_id.as_str()).map(|v| (*v).clone()).unwrap_or_else(|| o.clone()))
            .collect();
        let local = VenueSnapshot { positions: local.positions.clone(), orders: local_orders };
        let report = reconcile(&local, venue, at_ms);
        let held = self.recovery_rounds > 0 && self.recovery_rounds < RECOVERY_ROUNDS;
        let persistent: Vec<Mismatch> = report
            .mismatches
            .iter()
            .filter(|m| self.suspect.contains(m) && !(held && is_position_mismatch(m)))
            .cloned()
            .collect();
        self.suspect = report.mismatches;
        // A lookup still unanswered for an order no longer suspect is forgotten, so a later
        // sighting asks again.
        let suspect = &self.suspect;
        self.resolving.retain(|id| {
            suspect.iter().any(|m| matches!(m, Mismatch::OrderMissingAtVenue { client_id, .. } if client_id == id))
        });
        IntegrityReport { at_ms, mismatches: persistent }
    }

    /// Resolve requests for orders seen missing at the venue for the first time (each asked
    /// once until answered).
    pub fn resolve_requests(&mut self) -> Vec<VenueCommand> {
        let mut out = Vec::new();
        for m in &self.suspect {
            if let Mismatch::OrderMissingAtVenue { symbol, client_id } = m {
                if self.resolving.insert(client_id.clone()) {
                    out.push(VenueCommand::Resolve { symbol: symbol.clone(), client_id: client_id.clone() });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Side};
    use crate::execution::integrity::PositionSnapshot;
    use crate::execution::order::{Fill, Liquidity, OrderRequest, TimeInForce};
    use crate::testkit::q;

    fn place(id: &str, qty: &str) -> Intent {
        Intent::Place(OrderRequest {
            client_id: id.into(),
            symbol: Symbol::new("BTCUSDT"),
            side: Side::Buy,
            kind: OrderKind::Limit { price: Price::parse("100").unwrap(), tif: TimeInForce::PostOnly },
            qty: q(qty),
            reduce_only: false,
        })
    }

    fn fill(id: &str, qty: &str, exec: &str) -> VenueEvent {
        VenueEvent::Filled(Fill {
            symbol: Symbol::new("BTCUSDT"),
            order_id: "o".into(),
            client_id: id.into(),
            exec_id: exec.into(),
            side: Side::Buy,
            price: Price::parse("100").unwrap(),
            qty: q(qty),
            fee: Money::ZERO,
            liquidity: Liquidity::Maker,
            reduce_only: false,
            ts_ms: 0,
            venue_pnl: None,
        })
    }

    #[test]
    fn orders_end_on_complete_fill_cancel_or_refused_create() {
        let mut a = LiveAccount::default();
        a.on_sent(&place("e-1", "2"));
        assert!(!a.on_order_event(&fill("e-1", "1", "x1")));
        assert_eq!(a.orders["e-1"].snapshot.remaining, q("1"));
        assert!(a.on_order_event(&fill("e-1", "1", "x2")));
        assert!(a.orders.is_empty());

        a.on_sent(&place("e-2", "1"));
        let cancelled = VenueEvent::Cancelled {
            symbol: Symbol::new("BTCUSDT"),
            client_id: "e-2".into(),
            remaining: q("1"),
            reason: crate::execution::order::EndReason::Cancelled,
        };
        assert!(a.on_order_event(&cancelled));
        assert!(!a.on_order_event(&cancelled), "a second report of the same end changes nothing");

        a.on_sent(&place("e-3", "1"));
        let rejected = VenueEvent::Rejected {
            symbol: Symbol::new("BTCUSDT"),
            client_id: "e-3".into(),
            reason: crate::execution::order::RejectReason::Exchange { code: 110007 },
        };
        assert!(a.on_order_event(&rejected));
    }

    /// The exchange's view: one BTCUSDT long of 1, no orders.
    fn one_btc_long() -> VenueSnapshot {
        VenueSnapshot {
            positions: vec![PositionSnapshot { symbol: Symbol::new("BTCUSDT"), side: Side::Buy, qty: q("1") }],
            orders: vec![],
        }
    }

    #[test]
    fn a_mismatch_breaks_integrity_only_when_seen_twice_in_a_row() {
        let mut a = LiveAccount::default();
        let venue = one_btc_long();
        let local = VenueSnapshot::default();
        assert!(a.check(&local, &venue, 1).ok(), "first sighting is only suspect (a fill may be in flight)");
        // The fill arrived: agreement clears the suspicion.
        let agreed = venue.clone();
        assert!(a.check(&agreed, &venue, 2).ok());
        assert!(a.check(&local, &venue, 3).ok());
        let r = a.check(&local, &venue, 4);
        assert_eq!(r.mismatches.len(), 1, "{r:?}");
        assert!(matches!(r.mismatches[0], Mismatch::UnknownVenuePosition { .. }));
    }

    #[test]
    fn a_position_disagreement_waits_for_two_executions_fetches_before_breaking() {
        let mut a = LiveAccount::default();
        let venue = one_btc_long();
        let local = VenueSnapshot::default();
        let fetch = |a: &mut LiveAccount, t| a.recovery_request(t, 60_000).is_some();
        assert!(a.check(&local, &venue, 1).ok());
        assert!(fetch(&mut a, 1), "first sighting: the executions are fetched");
        assert!(a.check(&local, &venue, 2).ok(), "second sighting: held, the fetch may have been refused or late");
        assert!(fetch(&mut a, 2), "and fetched once more");
        let r = a.check(&local, &venue, 3);
        assert!(matches!(r.mismatches[..], [Mismatch::UnknownVenuePosition { .. }]), "third sighting breaks: {r:?}");
        assert!(!fetch(&mut a, 3), "no endless fetching");
        // Agreement resets the rounds: a later disagreement gets its fetches again.
        assert!(a.check(&venue, &venue, 4).ok());
        assert!(!fetch(&mut a, 4));
        assert!(a.check(&local, &venue, 5).ok());
        assert!(fetch(&mut a, 5));
    }

    #[test]
    fn orders_compare_by_presence() {
        let mut a = LiveAccount::default();
        a.on_sent(&place("e-1", "1"));
        let gone = VenueSnapshot::default();
        let local = VenueSnapshot { positions: vec![], orders: a.local_orders(&gone) };
        a.check(&local, &gone, 0);
        assert!(a.check(&local, &gone, 0).ok(), "a create still in flight (not acknowledged) is not missing");
        let accepted =
            VenueEvent::Accepted { symbol: Symbol::new("BTCUSDT"), client_id: "e-1".into(), order_id: "o".into() };
        a.on_order_event(&accepted);
        let mut venue_order = a.orders["e-1"].snapshot.clone();
        venue_order.remaining = q("0.5");
        let venue = VenueSnapshot { positions: vec![], orders: vec![venue_order] };
        let local = VenueSnapshot { positions: vec![], orders: a.local_orders(&venue) };
        assert!(a.check(&local, &venue, 1).ok());
        assert!(a.check(&local, &venue, 2).ok(), "a different remaining size is not a mismatch");
        a.check(&local, &gone, 3);
        let r = a.check(&local, &gone, 4);
        assert!(matches!(r.mismatches[0], Mismatch::OrderMissingAtVenue { .. }), "{r:?}");
    }
}
