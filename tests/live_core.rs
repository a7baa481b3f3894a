//! LIVE inside the core, deterministically: exchange reports are input events like any other, so
//! a LIVE session is driven here by hand (no sockets) and then replayed into a fresh core with
//! byte-identical outputs. Covers: LIVE refused until the exchange account is known, wallet
//! sync, orders going to the exchange edge (leverage first), exit orders after a fill, integrity
//! against exchange snapshots (a mismatch must persist), PANIC from the exchange's own state and
//! confirmed by it, and leaving LIVE with a trade still open.

mod common;
use common::driver::{armed_config, CoreDriver};
use common::{p, q};
use scalper::config::Config;
use scalper::domain::{Price, Side, Symbol};
use scalper::engine::clock::FrozenClock;
use scalper::engine::core::CorePipeline;
use scalper::engine::event::{ControlCommand, EventKind, FeedState, Mode};
use scalper::engine::output::{Output, Outputs};
use scalper::engine::Engine;
use scalper::execution::integrity::{OrderSnapshot, PositionSnapshot, VenueSnapshot};
use scalper::execution::order::VenueEvent;
use scalper::execution::order::{Fill, Intent, Liquidity, OrderKind};
use scalper::execution::venue::{AccountBalance, SnapshotCause, VenueCommand, VenueReport};
use scalper::market::data::BookAction;
use scalper::risk::money::Money;
use serde_json::Value;

const SYM: &str = "AAAUSDT";

struct Live(CoreDriver);

impl std::ops::Deref for Live {
    type Target = CoreDriver;
    fn deref(&self) -> &CoreDriver {
        &self.0
    }
}

impl std::ops::DerefMut for Live {
    fn deref_mut(&mut self) -> &mut CoreDriver {
        &mut self.0
    }
}

fn engine() -> Engine<CorePipeline, FrozenClock> {
    common::driver::engine(live_config())
}

/// DRY_RUN (LIVE is entered from it), any positive score arming.
fn live_config() -> Config {
    Config { mode: Mode::DryRun, ..armed_config() }
}

impl Live {
    fn new() -> Live {
        Live(CoreDriver::new(live_config(), &[SYM, "BBBUSDT"]))
    }
    fn venue(&mut self, r: VenueReport) -> Outputs {
        self.ev(EventKind::Venue(r))
    }
    fn records(&self, name: &str) -> Vec<Value> {
        self.named(name, None)
    }
    /// Closed trades logged so far.
    fn trades(&self) -> Vec<Value> {
        self.of_kind(scalper::config::paths::DataKind::TradesLog)
    }
    fn account(&mut self, positions: Vec<PositionSnapshot>, orders: Vec<OrderSnapshot>, wallet: &str) -> Outputs {
        let m = Money::parse(wallet).unwrap();
        self.venue(VenueReport::Account {
            snapshot: VenueSnapshot { positions, orders },
            balance: Some(AccountBalance { equity: m, wallet_balance: m, available: m }),
            cause: SnapshotCause::Periodic,
        })
    }
}

/// The first order placed at the exchange whose client id starts with `prefix`.
fn placed(out: &Outputs, prefix: &str) -> Option<scalper::execution::order::OrderRequest> {
    commands(out).into_iter().find_map(|c| match c {
        VenueCommand::Submit(Intent::Place(r)) if r.client_id.starts_with(prefix) => Some(r),
        _ => None,
    })
}

fn commands(out: &Outputs) -> Vec<VenueCommand> {
    out.items
        .iter()
        .filter_map(|o| match o {
            Output::Venue(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn fill(id: &str, exec: &str, side: Side, price: &str, qty: &str, reduce_only: bool, pnl: Option<&str>) -> VenueReport {
    VenueReport::Order(VenueEvent::Filled(Fill {
        symbol: Symbol::new(SYM),
        order_id: format!("o-{id}"),
        client_id: id.into(),
        exec_id: exec.into(),
        side,
        price: p(price),
        qty: q(qty),
        fee: Money::parse("0.05").unwrap(),
        liquidity: Liquidity::Taker,
        reduce_only,
        ts_ms: 0,
        venue_pnl: pnl.map(|v| Money::parse(v).unwrap()),
    }))
}

/// LIVE entered with a 5,000 USDT account; returns the entry request the core sent.
fn live_with_entry(s: &mut Live) -> scalper::execution::order::OrderRequest {
    s.ev(EventKind::Control(ControlCommand::EnterLive));
    let refused = s.records("MODE_REFUSED");
    assert_eq!(refused.len(), 1, "LIVE refused while the exchange account is unknown");
    assert!(refused[0]["reason"].as_str().unwrap().contains("not known"), "{refused:?}");
    assert_eq!(s.e.pipeline().mode(), Mode::DryRun);

    s.venue(VenueReport::Feed(FeedState::Connected));
    // An account holding a position the engine did not open is not taken over.
    s.account(vec![PositionSnapshot { symbol: Symbol::new("ZZZUSDT"), side: Side::Buy, qty: q("1") }], vec![], "5000");
    s.ev(EventKind::Control(ControlCommand::EnterLive));
    assert_eq!(s.e.pipeline().mode(), Mode::DryRun);
    let refused = s.records("MODE_REFUSED");
    assert!(refused[1]["reason"].as_str().unwrap().contains("did not open"), "{refused:?}");
    s.account(vec![], vec![], "5000");
    s.ev(EventKind::Control(ControlCommand::EnterLive));
    assert_eq!(s.e.pipeline().mode(), Mode::Live);
    assert_eq!(s.e.pipeline().desk().portfolio.balance(), Money::parse("5000").unwrap(), "balance = wallet");

    s.book(SYM, BookAction::Snapshot);
    let mut sent = Vec::new();
    for _ in 0..3 {
        let out = s.book(SYM, BookAction::Delta);
        sent.extend(commands(&out));
        if !sent.is_empty() {
            break;
        }
    }
    assert!(
        matches!(&sent[0], VenueCommand::SetLeverage { symbol, .. } if symbol.as_str() == SYM),
        "leverage first: {sent:?}"
    );
    let Some(VenueCommand::Submit(Intent::Place(req))) = sent.get(1).cloned() else {
        panic!("the entry goes to the exchange edge: {sent:?}")
    };
    assert!(!req.reduce_only);
    assert!(s.e.pipeline().desk().venue.snapshot().orders.is_empty(), "nothing rests in the SIM venue in LIVE");
    req
}

/// The exchange refusing an order of ours.
fn rejected(client_id: &str, reason: scalper::execution::order::RejectReason) -> VenueReport {
    VenueReport::Order(VenueEvent::Rejected { symbol: Symbol::new(SYM), client_id: client_id.into(), reason })
}

/// LIVE entered and the entry filled whole at its limit: the entry, its price and the stop the
/// core placed for the position.
fn live_position(
    s: &mut Live,
) -> (scalper::execution::order::OrderRequest, Price, scalper::execution::order::OrderRequest) {
    let req = live_with_entry(s);
    let px = match req.kind {
        OrderKind::Limit { price, .. } => price,
        k => panic!("{k:?}"),
    };
    let out = s.venue(fill(&req.client_id, "x1", req.side, &px.to_string(), &req.qty.to_string(), false, None));
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_some());
    let sl = placed(&out, "sl-").expect("stop placed");
    (req, px, sl)
}

#[test]
fn a_live_session_in_the_core_and_its_exact_replay() {
    let mut s = Live::new();
    let req = live_with_entry(&mut s);
    let (side, qty) = (req.side, req.qty);
    let px = match req.kind {
        OrderKind::Limit { price, .. } => price,
        k => panic!("maker entry expected: {k:?}"),
    };

    // Acknowledged and filled at the exchange: the stop and the take-profits go there too.
    s.venue(VenueReport::Order(VenueEvent::Accepted {
        symbol: Symbol::new(SYM),
        client_id: req.client_id.clone(),
        order_id: "o1".into(),
    }));
    let out = s.venue(fill(&req.client_id, "x1", side, &px.to_string(), &qty.to_string(), false, None));
    let exits: Vec<Intent> = commands(&out)
        .into_iter()
        .filter_map(|c| match c {
            VenueCommand::Submit(i) => Some(i),
            _ => None,
        })
        .collect();
    let sl = exits
        .iter()
        .find_map(|i| match i {
            Intent::Place(r) if matches!(r.kind, OrderKind::StopMarket { .. }) => Some(r.clone()),
            _ => None,
        })
        .expect("exchange-side stop");
    assert!(sl.reduce_only && sl.qty == qty && sl.side == side.opposite());
    let tps: Vec<_> =
        exits.iter().filter(|i| matches!(i, Intent::Place(r) if r.client_id.starts_with("tp-"))).collect();
    assert!(!tps.is_empty(), "take-profits at the exchange");
    for i in &exits {
        if let Intent::Place(r) = i {
            s.venue(VenueReport::Order(VenueEvent::Accepted {
                symbol: Symbol::new(SYM),
                client_id: r.client_id.clone(),
                order_id: format!("o-{}", r.client_id),
            }));
        }
    }
    let live_orders: Vec<OrderSnapshot> = exits
        .iter()
        .filter_map(|i| match i {
            Intent::Place(r) => Some(OrderSnapshot {
                symbol: r.symbol.clone(),
                client_id: r.client_id.clone(),
                side: r.side,
                kind: r.kind,
                remaining: r.qty,
                reduce_only: true,
            }),
            _ => None,
        })
        .collect();
    let position = vec![PositionSnapshot { symbol: Symbol::new(SYM), side, qty }];

    // The exchange agrees: no integrity problem. Then it loses the stop once (a snapshot racing
    // an amend): suspect only. Then twice: INTEGRITY_BROKEN.
    s.account(position.clone(), live_orders.clone(), "4999.9");
    let without_sl: Vec<OrderSnapshot> = live_orders.iter().filter(|o| o.client_id != sl.client_id).cloned().collect();
    let out = s.account(position.clone(), without_sl.clone(), "4999.9");
    assert!(
        commands(&out).contains(&VenueCommand::Resolve { symbol: Symbol::new(SYM), client_id: sl.client_id.clone() }),
        "a missing order is looked up by orderLinkId"
    );
    assert!(!s.e.pipeline().desk().integrity.is_broken(), "one sighting is not enough");
    s.account(position.clone(), without_sl, "4999.9");
    assert!(s.e.pipeline().desk().integrity.is_broken(), "a persistent mismatch breaks integrity");
    assert_eq!(s.records("INTEGRITY_BROKEN").len(), 1);

    // PANIC: cancels and a reduce-only market close computed from the exchange's last state,
    // then a fresh snapshot is asked for.
    let out = s.ev(EventKind::Control(ControlCommand::PanicCloseAll));
    let cmds = commands(&out);
    let close = cmds
        .iter()
        .find_map(|c| match c {
            VenueCommand::Submit(Intent::Close { client_id, qty: cq, position_side, .. }) => {
                assert_eq!((*cq, *position_side), (qty, side));
                Some(client_id.clone())
            }
            _ => None,
        })
        .expect("a reduce-only close");
    assert!(cmds.iter().any(|c| matches!(c, VenueCommand::Submit(Intent::Cancel { .. }))), "{cmds:?}");
    assert!(cmds.contains(&VenueCommand::Refresh));
    let exit_px = Price::from_raw(px.raw() - side.sign() * p("0.05").raw());
    let gross = Money::from_raw(-(qty.raw() as i128 * p("0.05").raw() as i128 / scalper::domain::SCALE as i128) as i64);
    s.venue(fill(
        &close,
        "x2",
        side.opposite(),
        &exit_px.to_string(),
        &qty.to_string(),
        true,
        Some(&gross.to_string()),
    ));
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_none(), "closed locally");
    assert!(s.records("PANIC_CONFIRMED").is_empty(), "not confirmed before the exchange says so");
    s.account(vec![], vec![], "4990");
    assert_eq!(s.records("PANIC_CONFIRMED").len(), 1, "confirmed by the exchange's own state");
    let trades = s.trades();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0]["reason"], "PANIC");
    // Net = the venue's gross − the two fees.
    let net = Money::from_raw(gross.raw() - Money::parse("0.1").unwrap().raw());
    assert_eq!(trades[0]["net_pnl_exact"], net.to_string());

    // Replay: the same inputs into a fresh core give the same outputs, byte for byte.
    let mut fresh = engine();
    for (ev, expected) in s.inputs.iter().zip(&s.outputs) {
        let got = fresh.on_event(ev);
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(expected).unwrap(),
            "replay diverged at seq {}",
            ev.seq
        );
    }
}

#[test]
fn leaving_live_is_immediate_and_the_open_trade_stays_at_the_exchange() {
    let mut s = Live::new();
    let (req, _, sl) = live_position(&mut s);

    // The exchange says the stop does not exist (an amend found nothing) while the position is
    // open: a new stop is placed for the whole position.
    let out = s.venue(rejected(&sl.client_id, scalper::execution::order::RejectReason::OrderNotFound));
    let replaced = placed(&out, "sl-").expect("a new stop");
    assert_ne!(replaced.client_id, sl.client_id);
    assert_eq!((replaced.kind, replaced.qty, replaced.reduce_only), (sl.kind, sl.qty, true));
    assert_eq!(s.records("STOP_REPLACED").len(), 1);

    s.ev(EventKind::Control(ControlCommand::SetMode(Mode::Sim)));
    assert_eq!(s.e.pipeline().mode(), Mode::Sim, "leaving LIVE is immediate, even with a trade open");
    let changed = s.records("MODE_CHANGED");
    assert_eq!(changed.last().unwrap()["live_trades_open"], true);

    // The open trade is still managed at the exchange: its PANIC close goes there, not to SIM.
    s.ev(EventKind::Control(ControlCommand::PanicCloseAll));
    s.account(vec![PositionSnapshot { symbol: Symbol::new(SYM), side: req.side, qty: req.qty }], vec![], "5000");
    let sent: Vec<VenueCommand> = s.outputs.iter().rev().take(2).flat_map(commands).collect();
    assert!(
        sent.iter().any(|c| matches!(c, VenueCommand::Submit(Intent::Close { symbol, .. }) if symbol.as_str() == SYM)),
        "the LIVE trade's close goes to the exchange: {sent:?}"
    );
    s.ev(EventKind::Control(ControlCommand::Resume));

    // No new entry on another symbol while the LIVE trade is open.
    s.book("BBBUSDT", BookAction::Snapshot);
    for _ in 0..3 {
        s.book("BBBUSDT", BookAction::Delta);
    }
    let refusals = s.records("ENTRY_REFUSED");
    assert!(
        refusals.iter().any(|r| r["reason"].as_str().unwrap_or("").contains("opened in LIVE are still open")),
        "{refusals:?}"
    );
    assert_eq!(s.records("ENTRY").len(), 1, "no second entry");
}

#[test]
fn a_missed_fill_is_recovered_from_the_exchange_and_a_repeated_one_is_booked_once() {
    let mut s = Live::new();
    let req = live_with_entry(&mut s);
    let entered_at = s.e.pipeline().desk().live.live_since_ms.expect("LIVE entry time");
    let px = match req.kind {
        OrderKind::Limit { price, .. } => price,
        k => panic!("{k:?}"),
    };
    let entry_fill = fill(&req.client_id, "x1", req.side, &px.to_string(), &req.qty.to_string(), false, None);
    let out = s.venue(entry_fill.clone());
    let sl = placed(&out, "sl-").expect("stop placed");
    // The same execution again (stream and reconciliation both delivered it): booked once.
    s.venue(entry_fill.clone());
    let pos = s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).cloned().expect("position");
    assert_eq!(pos.qty, req.qty, "a repeated execution is not booked twice");

    // The exchange's stop filled but the fill never arrived: the next snapshot shows no position.
    let mut orders = Vec::new();
    for c in commands(&out) {
        if let VenueCommand::Submit(Intent::Place(r)) = c {
            s.venue(VenueReport::Order(VenueEvent::Accepted {
                symbol: r.symbol.clone(),
                client_id: r.client_id.clone(),
                order_id: format!("o-{}", r.client_id),
            }));
            if !r.client_id.starts_with("sl-") {
                orders.push(OrderSnapshot {
                    symbol: r.symbol.clone(),
                    client_id: r.client_id.clone(),
                    side: r.side,
                    kind: r.kind,
                    remaining: r.qty,
                    reduce_only: true,
                });
            }
        }
    }
    let out = s.account(vec![], orders.clone(), "4990");
    let recover = commands(&out)
        .into_iter()
        .find_map(|c| match c {
            VenueCommand::RecoverExecutions { since_ms } => Some(since_ms),
            _ => None,
        })
        .expect("the executions are fetched when positions disagree");
    assert!(recover >= entered_at, "nothing from before LIVE is fetched");
    assert!(!s.e.pipeline().desk().integrity.is_broken(), "not broken on a first sighting");

    // The recovery delivers the old entry execution again (ignored) and the missed stop fill.
    let stop = match sl.kind {
        OrderKind::StopMarket { trigger } => trigger,
        k => panic!("{k:?}"),
    };
    s.venue(entry_fill);
    let gross = Money::from_raw(
        (req.side.sign() as i128 * (stop.raw() as i128 - px.raw() as i128) * req.qty.raw() as i128
            / scalper::domain::SCALE as i128) as i64,
    );
    s.venue(fill(
        &sl.client_id,
        "x2",
        sl.side,
        &stop.to_string(),
        &req.qty.to_string(),
        true,
        Some(&gross.to_string()),
    ));
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_none(), "the missed exit is booked");
    let trades = s.trades();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0]["reason"], "STOP_LOSS");
    assert_eq!(s.records("FILL").len(), 2, "two executions booked, the repeats dropped");
    // The exchange agrees now (the take-profits it still lists are cancelled by the engine).
    s.account(vec![], orders, "4990");
    assert!(!s.e.pipeline().desk().integrity.is_broken());
}

#[test]
fn a_position_whose_stop_is_refused_is_closed_at_market_and_booked_as_a_stop_loss() {
    let mut s = Live::new();
    let (req, px, sl) = live_position(&mut s);

    // The exchange refuses the stop itself: the position must not stay unprotected.
    let out = s.venue(rejected(&sl.client_id, scalper::execution::order::RejectReason::Exchange { code: 110007 }));
    assert_eq!(s.records("STOP_REFUSED_CLOSING").len(), 1);
    let close = commands(&out)
        .into_iter()
        .find_map(|c| match c {
            VenueCommand::Submit(Intent::Close { client_id, qty, reason, .. }) => Some((client_id, qty, reason)),
            _ => None,
        })
        .expect("a market close goes to the exchange");
    assert_eq!(close.1, req.qty, "the whole position");
    assert_eq!(close.2, scalper::state::machine::ExitReason::StopLoss);

    // Its fill closes the trade, booked with the close's own reason.
    s.venue(fill(&close.0, "x2", req.side.opposite(), &px.to_string(), &req.qty.to_string(), true, None));
    let trades = s.trades();
    assert_eq!(trades.len(), 1, "{trades:?}");
    assert_eq!(trades[0]["reason"], "STOP_LOSS", "{trades:?}");
}

#[test]
fn dry_run_answers_through_the_venue_contract_nothing_sent_and_the_entry_ends() {
    let mut s = Live::new();
    assert_eq!(s.e.pipeline().mode(), Mode::DryRun);
    s.book(SYM, BookAction::Snapshot);
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.extend(commands(&s.book(SYM, BookAction::Delta)));
    }
    assert!(sent.is_empty(), "DRY_RUN sends nothing to the exchange: {sent:?}");
    let journal = s.records("DRY_RUN_ORDER");
    assert!(!journal.is_empty(), "the entry is journalled");
    let id = journal[0]["intent"]["client_id"].as_str().map(str::to_string);
    let ended = s.records("ENTRY_CANCELLED");
    assert!(
        ended.iter().any(|r| r["reason"] == "not_sent" && r["client_id"].as_str().map(str::to_string) == id),
        "the entry ends at once as never sent: {ended:?} (journal {journal:?})"
    );
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_none());
    assert!(s.e.pipeline().desk().venue.snapshot().orders.is_empty(), "nothing rests in the SIM venue");
}
