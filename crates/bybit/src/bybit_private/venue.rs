//! `BybitVenue`: the LIVE exchange edge. It carries the core's [`VenueCommand`]s out through
//! [`PrivateRest`] and turns everything the exchange says (REST answers, private-stream pushes,
//! reconciliations, periodic account snapshots) into [`VenueReport`] events for the core.
//!
//! - Commands of one symbol run in order (a per-symbol worker: leverage before the entry, a stop
//!   before its amend); symbols run concurrently, so a rate-limited symbol never holds a PANIC
//!   close of another.
//! - Creates go through [`PrivateRest::create_order`], which never blindly re-sends: an
//!   ambiguous failure is resolved by `orderLinkId`, or reported as
//!   [`VenueReport::Unresolved`] and left to the next account snapshot.
//! - Fills come from the private stream's `execution` topic (deduplicated by `execId`, with a
//!   REST reconciliation after every reconnect); order ends from its `order` topic and from the
//!   cancel answers.
//! - Every `interval` (and shortly after a [`VenueCommand::Refresh`]) positions, open orders and
//!   the wallet are fetched and reported as [`VenueReport::Account`] for the integrity check.
//!
//! The edge holds no trading state beyond which client ids it sent as reduce-only (executions
//! do not say).

use super::messages::{venue_snapshot, CODE_ORDER_FINISHED, CODE_ORDER_NOT_FOUND};
use super::{
    CancelOutcome, IntentResult, OrderStatus, PrivateError, PrivateHandle, PrivateMsg, PrivateRest, PrivateStream,
    PrivateStreamConfig, PrivateUpdate, VenueOrder, WalletBalance,
};
use crate::clock::wall_ms;
use scalper_core::domain::{EventTime, Qty, Symbol, TimeMs};
use scalper_core::engine::event::{Event, EventKind};
use scalper_core::execution::order::Intent;
use scalper_core::execution::order::{EndReason, RejectReason, VenueEvent};
use scalper_core::execution::venue::{AccountBalance, SnapshotCause, VenueCommand, VenueReport};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// Client ids remembered as reduce-only (oldest forgotten first).
const REDUCE_ONLY_MEMORY: usize = 8_192;

/// Settings of the exchange edge.
#[derive(Debug, Clone)]
pub struct BybitVenueConfig {
    /// Private stream settings (URL, heartbeats, reconnects).
    pub stream: PrivateStreamConfig,
    /// Period of the account snapshots (integrity check).
    pub reconcile_interval: Duration,
    /// Delay between a [`VenueCommand::Refresh`] and the snapshot (lets in-flight orders land).
    pub refresh_delay: Duration,
    /// Capacity of the command queue from the core.
    pub queue_capacity: usize,
    /// Capacity of each symbol's queue.
    pub per_symbol_capacity: usize,
}

impl BybitVenueConfig {
    /// Defaults around a private stream URL.
    pub fn new(ws_private_url: &str) -> Self {
        BybitVenueConfig {
            stream: PrivateStreamConfig::new(ws_private_url),
            reconcile_interval: Duration::from_secs(5),
            refresh_delay: Duration::from_millis(300),
            queue_capacity: 4_096,
            per_symbol_capacity: 256,
        }
    }
}

/// Counters of the edge (the connector's own are in [`super::PrivateStats`]).
#[derive(Debug, Default)]
pub struct VenueStats {
    /// Commands received from the core.
    pub commands: AtomicU64,
    /// Commands refused because the queue was full.
    pub commands_refused: AtomicU64,
    /// Reports sent to the core.
    pub reports: AtomicU64,
    /// Account snapshots taken.
    pub snapshots: AtomicU64,
    /// Account snapshots that failed.
    pub snapshot_errors: AtomicU64,
}

/// A running exchange edge.
pub struct BybitVenue {
    tx: mpsc::Sender<VenueCommand>,
    stream: PrivateHandle,
    stats: Arc<VenueStats>,
}

/// Sends reports into the core's input queue.
#[derive(Clone)]
struct Reporter {
    events: mpsc::Sender<Event>,
    stats: Arc<VenueStats>,
}

impl Reporter {
    async fn send(&self, exchange_ms: Option<TimeMs>, r: VenueReport) {
        let ev = Event::new(0, EventTime { exchange_ms, recv_ms: wall_ms() }, EventKind::Venue(r));
        if self.events.send(ev).await.is_ok() {
            self.stats.reports.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Client ids sent as reduce-only, bounded.
#[derive(Default)]
struct ReduceOnly {
    set: std::collections::HashSet<String>,
    order: VecDeque<String>,
}

impl ReduceOnly {
    fn note(&mut self, id: &str) {
        if self.set.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            if self.order.len() > REDUCE_ONLY_MEMORY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }
}

/// The exchange's balance in the core's terms (USD totals of the unified account; callers
/// check [`WalletBalance::not_unified_reason`] first).
pub fn account_balance(w: &WalletBalance) -> AccountBalance {
    AccountBalance {
        equity: w.total_equity,
        wallet_balance: w.total_wallet_balance,
        available: w.total_available_balance,
    }
}

/// What an order update of the stream means for the core: only ends without a complete fill
/// (fills themselves come from the `execution` topic).
pub fn order_end(o: &VenueOrder) -> Option<VenueEvent> {
    match o.status {
        OrderStatus::Cancelled
        | OrderStatus::PartiallyFilledCanceled
        | OrderStatus::Deactivated
        | OrderStatus::Rejected => Some(VenueEvent::Cancelled {
            symbol: o.symbol.clone(),
            client_id: o.order_link_id.clone(),
            remaining: Qty::from_raw((o.qty.raw() - o.cum_exec_qty.raw()).max(0)),
            reason: EndReason::Cancelled,
        }),
        _ => None,
    }
}

fn failure_text(e: &PrivateError) -> String {
    e.to_string()
}

impl BybitVenue {
    /// Starts the private stream, the command dispatcher and the snapshot task. Reports go to
    /// `events` (the core's input queue); everything stops with `cancel`.
    pub fn start(
        rest: Arc<PrivateRest>,
        cfg: BybitVenueConfig,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> BybitVenue {
        let stats = Arc::new(VenueStats::default());
        let reporter = Reporter { events, stats: stats.clone() };
        let reduce_only = Arc::new(Mutex::new(ReduceOnly::default()));
        let refresh = Arc::new(Notify::new());

        // Private stream → reports.
        let (msg_tx, mut msg_rx) = mpsc::channel::<PrivateMsg>(1_024);
        let stream = PrivateStream::new(cfg.stream.clone(), rest.clone()).start(msg_tx, cancel.clone());
        {
            let reporter = reporter.clone();
            let reduce_only = reduce_only.clone();
            tokio::spawn(async move {
                while let Some(m) = msg_rx.recv().await {
                    let report = match m.update {
                        PrivateUpdate::Status(st) => Some(VenueReport::Feed(st)),
                        PrivateUpdate::Order(o) => order_end(&o).map(VenueReport::Order),
                        PrivateUpdate::Execution(e) if e.exec_type == "Trade" => {
                            let ro = reduce_only.lock().map(|r| r.contains(&e.order_link_id)).unwrap_or(false);
                            Some(VenueReport::Order(VenueEvent::Filled(e.to_fill(ro))))
                        }
                        PrivateUpdate::Execution(e) => {
                            tracing::info!(symbol = %e.symbol, exec_type = %e.exec_type, "non-trade execution (funding, …) not booked as a fill");
                            None
                        }
                        PrivateUpdate::Position(_) => None,
                        PrivateUpdate::Wallet(w) => Some(match w.not_unified_reason() {
                            // Its empty totals must never reach the core as an equity of 0.
                            Some(reason) => VenueReport::AccountUnsupported { reason },
                            None => VenueReport::Balance(account_balance(&w)),
                        }),
                        PrivateUpdate::Reconciled(r) => Some(VenueReport::Account {
                            snapshot: r.venue_snapshot(),
                            balance: Some(account_balance(&r.wallet)),
                            cause: SnapshotCause::Reconnect,
                        }),
                    };
                    if let Some(r) = report {
                        reporter.send(m.exchange_ms, r).await;
                    }
                }
            });
        }

        // Periodic and requested account snapshots.
        {
            let rest = rest.clone();
            let reporter = reporter.clone();
            let refresh = refresh.clone();
            let cancel = cancel.clone();
            let stats = stats.clone();
            let (every, delay) = (cfg.reconcile_interval, cfg.refresh_delay);
            tokio::spawn(async move {
                loop {
                    let cause = tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(every) => SnapshotCause::Periodic,
                        _ = refresh.notified() => {
                            tokio::time::sleep(delay).await;
                            SnapshotCause::Requested
                        }
                    };
                    match account(&rest).await {
                        Ok((snapshot, balance)) => {
                            stats.snapshots.fetch_add(1, Ordering::Relaxed);
                            reporter.send(None, VenueReport::Account { snapshot, balance: Some(balance), cause }).await;
                        }
                        Err(PrivateError::AccountUnsupported(reason)) => {
                            stats.snapshot_errors.fetch_add(1, Ordering::Relaxed);
                            reporter.send(None, VenueReport::AccountUnsupported { reason }).await;
                        }
                        Err(e) => {
                            stats.snapshot_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, ?cause, "account snapshot failed; the next one retries");
                        }
                    }
                }
            });
        }

        // Commands from the core, one ordered worker per symbol.
        let (tx, mut rx) = mpsc::channel::<VenueCommand>(cfg.queue_capacity.max(1));
        {
            let reporter = reporter.clone();
            let per_symbol = cfg.per_symbol_capacity.max(1);
            tokio::spawn(async move {
                let mut workers: HashMap<Symbol, mpsc::Sender<VenueCommand>> = HashMap::new();
                loop {
                    let cmd = tokio::select! {
                        _ = cancel.cancelled() => return,
                        c = rx.recv() => match c { Some(c) => c, None => return },
                    };
                    let symbol = match &cmd {
                        VenueCommand::Refresh => {
                            refresh.notify_one();
                            continue;
                        }
                        VenueCommand::RecoverExecutions { since_ms } => {
                            tokio::spawn(recover_executions(
                                rest.clone(),
                                *since_ms,
                                reduce_only.clone(),
                                reporter.clone(),
                            ));
                            continue;
                        }
                        VenueCommand::Resolve { symbol, client_id } => {
                            // Out of the symbol's queue: only acknowledged orders are resolved, so
                            // nothing queued can change the answer, and a backlog of amends must
                            // not delay it past the next integrity check.
                            let (rest, reporter) = (rest.clone(), reporter.clone());
                            let (symbol, client_id) = (symbol.clone(), client_id.clone());
                            tokio::spawn(async move {
                                let r = resolve(&rest, &symbol, &client_id).await;
                                reporter.send(None, r).await;
                            });
                            continue;
                        }
                        VenueCommand::Submit(i) => i.symbol().clone(),
                        VenueCommand::SetLeverage { symbol, .. } => symbol.clone(),
                    };
                    if let VenueCommand::Submit(i) = &cmd {
                        let ro = match i {
                            Intent::Place(r) if r.reduce_only => Some(r.client_id.as_str()),
                            Intent::Close { client_id, .. } => Some(client_id.as_str()),
                            _ => None,
                        };
                        if let (Some(id), Ok(mut set)) = (ro, reduce_only.lock()) {
                            set.note(id);
                        }
                    }
                    let w = workers.entry(symbol.clone()).or_insert_with(|| {
                        let (wtx, wrx) = mpsc::channel(per_symbol);
                        tokio::spawn(worker(rest.clone(), wrx, reporter.clone()));
                        wtx
                    });
                    if w.send(cmd).await.is_err() {
                        tracing::error!(symbol = %symbol, "venue worker stopped; command lost");
                    }
                }
            });
        }
        BybitVenue { tx, stream, stats }
    }

    /// Queues a command without waiting. `Err` gives it back when the queue is full or the edge
    /// stopped (the caller reports it to the core as refused).
    pub fn try_send(&self, cmd: VenueCommand) -> Result<(), VenueCommand> {
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        self.tx.try_send(cmd).map_err(|e| {
            self.stats.commands_refused.fetch_add(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
            }
        })
    }

    /// The private stream's handle (state, stats).
    pub fn stream(&self) -> &PrivateHandle {
        &self.stream
    }

    /// The edge's counters.
    pub fn stats(&self) -> &Arc<VenueStats> {
        &self.stats
    }
}

/// Reports every trade execution since `since_ms` as a fill, oldest first; the core books the
/// ones it has not seen (by `execId`).
async fn recover_executions(
    rest: Arc<PrivateRest>,
    since_ms: TimeMs,
    reduce_only: Arc<Mutex<ReduceOnly>>,
    reporter: Reporter,
) {
    match rest.executions_since(since_ms).await {
        Ok(execs) => {
            tracing::info!(since_ms, executions = execs.len(), "executions fetched to recover missed fills");
            for e in execs.into_iter().filter(|e| e.exec_type == "Trade") {
                let ro = reduce_only.lock().map(|r| r.contains(&e.order_link_id)).unwrap_or(false);
                reporter.send(Some(e.exec_time_ms), VenueReport::Order(VenueEvent::Filled(e.to_fill(ro)))).await;
            }
        }
        Err(e) => tracing::warn!(since_ms, error = %e, "fetching executions failed; the integrity check stays on it"),
    }
}

/// Positions, open orders and wallet, fetched over REST.
async fn account(
    rest: &PrivateRest,
) -> Result<(scalper_core::execution::integrity::VenueSnapshot, AccountBalance), PrivateError> {
    let positions = rest.positions().await?;
    let orders = rest.open_orders(None).await?;
    let wallet = rest.wallet_balance().await?;
    Ok((venue_snapshot(&orders, &positions), account_balance(&wallet)))
}

/// What a refused or failed command tells the core (`None`: nothing to report).
pub fn refusal_report(cmd: &VenueCommand, why: &str) -> Option<VenueReport> {
    match cmd {
        VenueCommand::Submit(Intent::Place(r)) => Some(VenueReport::Order(VenueEvent::Rejected {
            symbol: r.symbol.clone(),
            client_id: r.client_id.clone(),
            reason: RejectReason::Unreachable,
        })),
        VenueCommand::Submit(Intent::Close { symbol, client_id, .. }) => {
            Some(VenueReport::Order(VenueEvent::Rejected {
                symbol: symbol.clone(),
                client_id: client_id.clone(),
                reason: RejectReason::Unreachable,
            }))
        }
        VenueCommand::Submit(Intent::Cancel { symbol, client_id }) => Some(VenueReport::RequestFailed {
            symbol: symbol.clone(),
            client_id: client_id.clone(),
            action: "cancel".into(),
            error: why.into(),
        }),
        VenueCommand::Submit(Intent::Amend { symbol, client_id, .. }) => Some(VenueReport::RequestFailed {
            symbol: symbol.clone(),
            client_id: client_id.clone(),
            action: "amend".into(),
            error: why.into(),
        }),
        VenueCommand::SetLeverage { symbol, leverage } => {
            Some(VenueReport::Leverage { symbol: symbol.clone(), leverage: *leverage, error: Some(why.into()) })
        }
        VenueCommand::Refresh | VenueCommand::Resolve { .. } | VenueCommand::RecoverExecutions { .. } => None,
    }
}

fn not_found(e: &PrivateError) -> bool {
    matches!(e.ret_code(), Some(CODE_ORDER_NOT_FOUND | CODE_ORDER_FINISHED))
}

/// Carries out one symbol's commands in order.
async fn worker(rest: Arc<PrivateRest>, mut rx: mpsc::Receiver<VenueCommand>, reporter: Reporter) {
    while let Some(cmd) = rx.recv().await {
        let started = std::time::Instant::now();
        let report = match &cmd {
            VenueCommand::Refresh | VenueCommand::RecoverExecutions { .. } => None,
            VenueCommand::SetLeverage { symbol, leverage } => {
                let error = rest.set_leverage(symbol, *leverage).await.err().map(|e| failure_text(&e));
                Some(VenueReport::Leverage { symbol: symbol.clone(), leverage: *leverage, error })
            }
            VenueCommand::Submit(intent) => Some(submit(&rest, intent).await),
            VenueCommand::Resolve { symbol, client_id } => Some(resolve(&rest, symbol, client_id).await),
        };
        tracing::debug!(?cmd, ?report, elapsed_ms = started.elapsed().as_millis() as u64, "venue command done");
        if let Some(r) = report {
            reporter.send(None, r).await;
        }
    }
}

async fn submit(rest: &PrivateRest, intent: &Intent) -> VenueReport {
    let symbol = intent.symbol().clone();
    match (intent, rest.submit(intent).await) {
        (_, Ok(IntentResult::Placed(p))) => VenueReport::Order(VenueEvent::Accepted {
            symbol,
            client_id: p.order_link_id.clone(),
            order_id: p.order_id.clone(),
        }),
        (_, Ok(IntentResult::Cancel(CancelOutcome::Cancelled(_)))) => {
            // How much was left: the order as the exchange now lists it.
            let client_id = &client_id_of(intent);
            let remaining = match rest.order_by_link_id(&symbol, client_id).await {
                Ok(Some(o)) => Qty::from_raw((o.qty.raw() - o.cum_exec_qty.raw()).max(0)),
                Ok(None) | Err(_) => {
                    tracing::warn!(symbol = %symbol, client_id, "cancelled order not found afterwards; remaining unknown (0)");
                    Qty::ZERO
                }
            };
            VenueReport::Order(VenueEvent::Cancelled {
                symbol,
                client_id: client_id.clone(),
                remaining,
                reason: EndReason::Cancelled,
            })
        }
        (_, Ok(IntentResult::Cancel(CancelOutcome::NotOpen { .. }))) => VenueReport::Order(VenueEvent::Rejected {
            symbol,
            client_id: client_id_of(intent),
            reason: RejectReason::OrderNotFound,
        }),
        (_, Ok(IntentResult::Amended(_))) => {
            VenueReport::Order(VenueEvent::Amended { symbol, client_id: client_id_of(intent) })
        }
        (Intent::Place(_) | Intent::Close { .. }, Err(PrivateError::Unresolved { order_link_id, last_error })) => {
            VenueReport::Unresolved { symbol, client_id: order_link_id, error: last_error }
        }
        (Intent::Place(_) | Intent::Close { .. }, Err(e)) => {
            tracing::warn!(symbol = %symbol, client_id = %client_id_of(intent), error = %e, "order create refused");
            let reason = match e.ret_code() {
                Some(code) => RejectReason::Exchange { code },
                None => RejectReason::Unreachable,
            };
            VenueReport::Order(VenueEvent::Rejected { symbol, client_id: client_id_of(intent), reason })
        }
        (Intent::Cancel { .. } | Intent::Amend { .. }, Err(e)) if not_found(&e) => {
            VenueReport::Order(VenueEvent::Rejected {
                symbol,
                client_id: client_id_of(intent),
                reason: RejectReason::OrderNotFound,
            })
        }
        (Intent::Cancel { .. } | Intent::Amend { .. }, Err(e)) => VenueReport::RequestFailed {
            symbol,
            client_id: client_id_of(intent),
            action: if matches!(intent, Intent::Cancel { .. }) { "cancel" } else { "amend" }.into(),
            error: failure_text(&e),
        },
    }
}

/// How an order the core believes working ended: a terminal order is reported as ended (its
/// fills come from the execution stream and reconciliations), an unknown one as not found, a
/// working one as accepted (the snapshot raced it).
async fn resolve(rest: &PrivateRest, symbol: &Symbol, client_id: &str) -> VenueReport {
    match rest.order_by_link_id(symbol, client_id).await {
        Ok(Some(o)) if o.status.is_open() => VenueReport::Order(VenueEvent::Accepted {
            symbol: symbol.clone(),
            client_id: client_id.to_string(),
            order_id: o.order_id,
        }),
        Ok(Some(o)) => {
            tracing::info!(symbol = %symbol, client_id, status = ?o.status, "order end found by lookup (its push was missed)");
            VenueReport::Order(VenueEvent::Cancelled {
                symbol: symbol.clone(),
                client_id: client_id.to_string(),
                remaining: Qty::from_raw((o.qty.raw() - o.cum_exec_qty.raw()).max(0)),
                reason: EndReason::Cancelled,
            })
        }
        Ok(None) => VenueReport::Order(VenueEvent::Rejected {
            symbol: symbol.clone(),
            client_id: client_id.to_string(),
            reason: RejectReason::OrderNotFound,
        }),
        Err(e) => {
            tracing::warn!(symbol = %symbol, client_id, error = %e, "order lookup failed; the integrity check stays on it");
            VenueReport::RequestFailed {
                symbol: symbol.clone(),
                client_id: client_id.to_string(),
                action: "resolve".into(),
                error: e.to_string(),
            }
        }
    }
}

fn client_id_of(i: &Intent) -> String {
    match i {
        Intent::Place(r) => r.client_id.clone(),
        Intent::Cancel { client_id, .. } | Intent::Amend { client_id, .. } | Intent::Close { client_id, .. } => {
            client_id.clone()
        }
    }
}
