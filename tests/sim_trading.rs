//! The whole core trading in SIM on a hand-built market: signal → post-only entry → fill →
//! exchange-side-style SL/TP orders → exit, with the trade log's PnL equal, to the last unit, to
//! the fills and fees the venue reported. Also: PANIC flattens, pause blocks new entries.

mod common;
use common::driver::{armed_config, CoreDriver};
use common::{book_update, ladder, p};
use scalper::config::paths::DataKind;
use scalper::domain::{Price, Side, Symbol};
use scalper::engine::event::{ControlCommand, EventKind};
use scalper::market::data::BookAction;
use scalper::state::machine::TradeState;
use serde_json::Value;

const SYM: &str = "AAAUSDT";

struct Sim(CoreDriver);

impl std::ops::Deref for Sim {
    type Target = CoreDriver;
    fn deref(&self) -> &CoreDriver {
        &self.0
    }
}

impl std::ops::DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut CoreDriver {
        &mut self.0
    }
}

impl Sim {
    fn new() -> Sim {
        Sim(CoreDriver::new(armed_config(), &[SYM]))
    }
    /// A book around `mid` (ticks of 0.01) with heavier bids.
    fn book(&mut self, action: BookAction, bid: &str, ask: &str) {
        let levels = ladder(bid, ask, "0.01", 20, "30", "10");
        let update = book_update(SYM, action, levels, &mut self.u);
        self.ev(EventKind::Book(update));
    }
    fn trade(&mut self, price: Price, qty: &str, aggressor: Side) {
        self.0.trade(SYM, price, qty, aggressor);
    }
    fn events(&self, name: &str) -> Vec<Value> {
        self.named(name, None)
    }
    /// A fresh book, then deltas until the core plans an entry; returns the ENTRY event and side.
    fn enter(&mut self) -> (Value, Side) {
        self.book(BookAction::Snapshot, "99.99", "100.01");
        for _ in 0..3 {
            self.book(BookAction::Delta, "99.99", "100.01");
        }
        let e = self.events("ENTRY").pop().expect("an entry");
        let side = if e["side"] == "Buy" { Side::Buy } else { Side::Sell };
        (e, side)
    }
    /// Aggressors trade through the resting entry so it fills completely.
    fn fill_entry(&mut self, e: &Value, side: Side) {
        let entry = p(e["entry"].as_str().unwrap());
        self.trade(Price::from_raw(entry.raw() - side.sign() * p("0.01").raw()), "100000", side.opposite());
    }
    fn state(&self) -> TradeState {
        self.e.pipeline().desk().state_of(&Symbol::new(SYM))
    }
}

fn fixed(v: &Value) -> i128 {
    scalper::domain::Fixed::parse(v.as_str().unwrap()).unwrap().raw() as i128
}

#[test]
fn a_signal_becomes_an_entry_a_fill_sl_tp_orders_and_an_exact_exit() {
    let mut s = Sim::new();
    s.book(BookAction::Snapshot, "99.99", "100.01");
    for _ in 0..3 {
        s.book(BookAction::Delta, "99.99", "100.01");
        if !s.events("ENTRY").is_empty() {
            break;
        }
    }
    let entries = s.events("ENTRY");
    assert_eq!(entries.len(), 1, "one entry planned; states: {:?}", s.events("STATE"));
    let e = &entries[0];
    let side = if e["side"] == "Buy" { Side::Buy } else { Side::Sell };
    assert_eq!(s.state(), TradeState::OrderPlaced);
    let entry = p(e["entry"].as_str().unwrap());
    let (stop, tp2) = (p(e["stop"].as_str().unwrap()), p(e["tp2"].as_str().unwrap()));
    assert!(side.sign() * (entry.raw() - stop.raw()) > 0, "stop on the losing side");
    assert!(side.sign() * (tp2.raw() - entry.raw()) > 0, "target on the winning side");
    let qty = e["qty"].as_str().unwrap().to_string();

    // Aggressors trade through our resting post-only entry: it fills as maker.
    let through = Price::from_raw(entry.raw() - side.sign() * p("0.01").raw());
    s.trade(through, &format!("{qty}0"), side.opposite());
    assert!(!s.events("FILL").is_empty(), "entry filled");
    assert_eq!(s.state(), TradeState::InPosition);
    let pos = s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).cloned().expect("position open");
    assert_eq!(pos.side, side);

    // Price runs to the targets; the break-even move happens on the way; TP limits fill.
    let mut px = entry;
    let step = side.sign() * p("0.01").raw();
    while side.sign() * (px.raw() - tp2.raw()) <= 0 {
        px = Price::from_raw(px.raw() + step);
        s.trade(px, "1000", side);
    }
    s.trade(Price::from_raw(px.raw() + step), "100000", side);
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_none(), "position closed");
    assert!(!s.events("BREAK_EVEN").is_empty(), "stop moved to break-even before the target");
    let closed: Vec<Value> = s.of_kind(DataKind::TradesLog);
    assert_eq!(closed.len(), 1);
    let t = &closed[0];
    assert_eq!(t["reason"], "TAKE_PROFIT");
    assert!(t["net_pnl"].as_f64().unwrap() > 0.0);
    // The symbol's profile learns from the closed trade.
    let profile = s.e.pipeline().profiles().get(&Symbol::new(SYM)).cloned().expect("a profile");
    assert_eq!((profile.trades, profile.wins), (1, 1), "{profile:?}");
    assert!((profile.net_pnl - t["net_pnl"].as_f64().unwrap()).abs() < 1e-9);
    assert!(profile.avg_mfe > 0.0, "{profile:?}");

    // PnL reconciles exactly with the fills: Σ side-signed qty × price − Σ fees.
    let fills = s.events("FILL");
    let scale = scalper::domain::SCALE as i128;
    let mut cash: i128 = 0; // 10^-16 units
    let mut fees: i128 = 0;
    for f in &fills {
        let f = &f["fill"];
        let sign: i128 = if f["side"] == "Buy" { -1 } else { 1 };
        cash += sign * fixed(&f["qty"]) * fixed(&f["price"]);
        fees += fixed(&f["fee"]);
    }
    let gross = cash.div_euclid(scale);
    assert_eq!(fixed(&t["fees_exact"]), fees, "fees equal the fills' fees");
    assert_eq!(fixed(&t["net_pnl_exact"]), gross - fees, "net PnL equals fills minus fees, exactly");
    assert_eq!(s.state(), TradeState::Exited);
}

#[test]
fn panic_flattens_and_pause_blocks_new_entries() {
    let mut s = Sim::new();
    let (e, side) = s.enter();
    s.fill_entry(&e, side);
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_some());

    s.ev(EventKind::Control(ControlCommand::PanicCloseAll));
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_none(), "PANIC closed the position");
    assert!(s.e.pipeline().desk().venue.snapshot().orders.is_empty(), "and cancelled every order");
    let closed: Vec<Value> = s.of_kind(DataKind::TradesLog);
    assert_eq!(closed.last().unwrap()["reason"], "PANIC");

    // While paused (and with the kill switch engaged), no new entry is planned.
    s.ev(EventKind::Control(ControlCommand::Pause));
    let before = s.events("ENTRY").len();
    for _ in 0..5 {
        s.book(BookAction::Delta, "99.99", "100.01");
    }
    assert_eq!(s.events("ENTRY").len(), before);
}

#[test]
fn a_maker_entry_left_behind_switches_to_taker_or_is_abandoned() {
    let mut s = Sim::new();
    let (e, side) = s.enter();
    // The market runs away from our post-only order by 3 ticks without trading through it.
    let (bid, ask) = if side == Side::Buy { ("100.02", "100.03") } else { ("99.97", "99.98") };
    s.book(BookAction::Snapshot, bid, ask);
    let reviews = s.events("ENTRY_REVIEW");
    assert_eq!(reviews.len(), 1, "the working maker entry was reviewed once");
    let venue = s.e.pipeline().desk().venue.snapshot();
    assert!(
        !venue.orders.iter().any(|o| o.client_id == e["client_id"].as_str().unwrap_or("e-")),
        "the maker order was cancelled"
    );
    match reviews[0]["decision"]["decision"].as_str() {
        Some("switch_to_taker") => {
            let fill = s.events("FILL").pop().expect("taker fill");
            assert_eq!(fill["fill"]["liquidity"], "Taker");
            assert_eq!(s.state(), TradeState::InPosition);
        }
        Some("abandon") => {
            assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_none());
            assert_ne!(s.state(), TradeState::OrderPlaced);
        }
        other => panic!("unexpected decision {other:?}"),
    }
}

#[test]
fn an_extreme_spread_on_a_held_symbol_engages_the_kill_switch_and_flattens() {
    let mut s = Sim::new();
    let (e, side) = s.enter();
    s.fill_entry(&e, side);
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_some());
    // The book blows out to a 2.5 % spread.
    s.book(BookAction::Snapshot, "98.80", "101.30");
    assert_eq!(s.events("KILL_SWITCH").len(), 1);
    assert!(s.e.pipeline().controls().kill.is_engaged());
    assert!(s.e.pipeline().desk().portfolio.position(&Symbol::new(SYM)).is_none(), "flattened");
}

#[test]
fn after_an_exit_the_symbol_cools_down_and_can_trade_again() {
    let mut s = Sim::new();
    let (e, side) = s.enter();
    s.fill_entry(&e, side);
    s.ev(EventKind::Control(ControlCommand::PanicCloseAll));
    s.ev(EventKind::Control(ControlCommand::Resume));
    assert_eq!(s.state(), TradeState::Exited);
    // Time passes (timer events): EXITED → COOLDOWN → FLAT after the cooldown.
    for _ in 0..700 {
        s.ev(EventKind::Timer(scalper::engine::event::TimerKind::Second));
    }
    assert_ne!(s.state(), TradeState::Exited);
    let before = s.events("ENTRY").len();
    s.book(BookAction::Snapshot, "99.99", "100.01");
    for _ in 0..3 {
        s.book(BookAction::Delta, "99.99", "100.01");
    }
    assert!(s.events("ENTRY").len() > before, "the symbol trades again; states: {:?}", s.state());
}
