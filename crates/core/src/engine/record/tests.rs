//! Each record's JSON, pinned twice: as the exact text the store writes, and as equal to the
//! `json!` blob the engine built before the records were typed (copied from that code, with the
//! same expressions), so a change of shape or of a field's type fails here.

use super::*;
use crate::execution::integrity::Mismatch;
use crate::execution::order::{Liquidity, OrderKind, OrderRequest, TimeInForce};
use crate::market::candles::Interval;
use crate::state::machine::{CancelReason, TradeState, TransitionReason};
use crate::testkit::{m, p, q};
use serde_json::{json, Value};

/// The text the store writes for `rec`.
fn text<R: Record>(rec: &R) -> String {
    body(rec).to_string()
}

/// `rec` is written as `expected`, which is also what the legacy blob gives.
#[track_caller]
fn pinned<R: Record>(rec: R, legacy: Value, expected: &str) {
    assert_eq!(text(&rec), expected);
    assert_eq!(body(&rec), legacy, "differs from the legacy json! blob");
    assert_eq!(legacy.to_string(), expected);
}

fn sym() -> Symbol {
    Symbol::new("XUSDT")
}

#[test]
fn orders_and_stops() {
    let (client_id, price) = ("sl-X-1".to_string(), p("4.09"));
    pinned(
        EventRecord::StopTriggered { client_id: &client_id, price },
        json!({"event": "STOP_TRIGGERED", "client_id": client_id, "price": price}),
        r#"{"client_id":"sl-X-1","event":"STOP_TRIGGERED","price":"4.09"}"#,
    );
    let reason = RejectReason::Exchange { code: 110007 };
    pinned(
        EventRecord::OrderRejected { client_id: &client_id, reason, bybit: reason.bybit() },
        json!({"event": "ORDER_REJECTED", "client_id": client_id, "reason": reason, "bybit": reason.bybit()}),
        r#"{"bybit":"110007","client_id":"sl-X-1","event":"ORDER_REJECTED","reason":{"exchange":{"code":110007}}}"#,
    );
    let reason = RejectReason::PostOnlyWouldTakeLiquidity;
    pinned(
        EventRecord::OrderRejected { client_id: &client_id, reason, bybit: reason.bybit() },
        json!({"event": "ORDER_REJECTED", "client_id": client_id, "reason": reason, "bybit": reason.bybit()}),
        r#"{"bybit":"EC_PostOnlyWillTakeLiquidity","client_id":"sl-X-1","event":"ORDER_REJECTED","reason":"post_only_would_take_liquidity"}"#,
    );
    let (id, new_id, stop, qty) = ("sl-X-1", "sl-X-7".to_string(), p("4.1"), q("12.5"));
    pinned(
        EventRecord::StopReplaced { lost: id, client_id: &new_id, stop, qty },
        json!({"event": "STOP_REPLACED", "lost": id, "client_id": new_id, "stop": stop, "qty": qty}),
        r#"{"client_id":"sl-X-7","event":"STOP_REPLACED","lost":"sl-X-1","qty":"12.5","stop":"4.1"}"#,
    );
    pinned(
        EventRecord::StopRefusedClosing { client_id: id },
        json!({"event": "STOP_REFUSED_CLOSING", "client_id": id}),
        r#"{"client_id":"sl-X-1","event":"STOP_REFUSED_CLOSING"}"#,
    );
    let (new_stop, mark) = (p("4.2"), p("4.35"));
    pinned(
        EventRecord::BreakEven { stop: new_stop, mark },
        json!({"event": "BREAK_EVEN", "stop": new_stop, "mark": mark}),
        r#"{"event":"BREAK_EVEN","mark":"4.35","stop":"4.2"}"#,
    );
}

#[test]
fn entries() {
    let side = Side::Sell;
    let (entry, stop, tp1, tp2) = (p("4.2"), p("4.25"), p("4.15"), p("4.1"));
    let (qty, risk, notional, market) = (q("10"), m("0.5"), m("42"), MarketRisk::Normal);
    pinned(
        EventRecord::Entry { side, entry, stop, tp1, tp2, qty, risk, notional, market },
        json!({"event": "ENTRY", "side": side, "entry": entry, "stop": stop, "tp1": tp1, "tp2": tp2,
               "qty": qty, "risk": risk, "notional": notional, "market": market}),
        r#"{"entry":"4.2","event":"ENTRY","market":"NORMAL","notional":"42","qty":"10","risk":"0.5","side":"Sell","stop":"4.25","tp1":"4.15","tp2":"4.1"}"#,
    );
    let why = "storage DOWN";
    pinned(
        EventRecord::EntryRefused { reason: why.into() },
        json!({"event": "ENTRY_REFUSED", "reason": why}),
        r#"{"event":"ENTRY_REFUSED","reason":"storage DOWN"}"#,
    );
    let why = format!("profile size cut leaves {} < min qty {}", q("0.5"), q("1"));
    pinned(
        EventRecord::EntryRefused { reason: why.clone().into() },
        json!({"event": "ENTRY_REFUSED", "reason": why}),
        r#"{"event":"ENTRY_REFUSED","reason":"profile size cut leaves 0.5 < min qty 1"}"#,
    );
    let (decision, setup_ok) = (EntryDecision::SwitchToTaker { limit: p("4.21") }, true);
    pinned(
        EventRecord::EntryReview { decision, setup_ok },
        json!({"event": "ENTRY_REVIEW", "decision": decision, "setup_ok": setup_ok}),
        r#"{"decision":{"decision":"switch_to_taker","limit":"4.21"},"event":"ENTRY_REVIEW","setup_ok":true}"#,
    );
    // The two ENTRY_CANCELLED shapes: the event key, then the detail's keys.
    let client_id = "en-X-3";
    pinned(
        EventRecord::EntryCancelled { client_id, end: EntryEnd::NotFoundAtVenue },
        json!({"event": "ENTRY_CANCELLED", "client_id": client_id, "reason": "not_found_at_venue"}),
        r#"{"client_id":"en-X-3","event":"ENTRY_CANCELLED","reason":"not_found_at_venue"}"#,
    );
    let (remaining, reason) = (q("2.5"), EndReason::IocRemainder);
    pinned(
        EventRecord::EntryCancelled { client_id, end: EntryEnd::Ended { remaining, reason } },
        json!({"event": "ENTRY_CANCELLED", "client_id": client_id, "remaining": remaining, "reason": reason}),
        r#"{"client_id":"en-X-3","event":"ENTRY_CANCELLED","reason":"ioc_remainder","remaining":"2.5"}"#,
    );
}

#[test]
fn state_transition() {
    let tr = Transition {
        symbol: sym(),
        from: TradeState::OrderPlaced,
        to: TradeState::Cooldown,
        side: Some(Side::Buy),
        reason: TransitionReason::OrderEnded(CancelReason::Rejected),
        at_ms: 1_000,
    };
    let input = Input::Cancelled(CancelReason::Rejected);
    // Built in two steps before: the transition's value, then the input inserted.
    let mut legacy = json!({"event": "STATE", "transition": serde_json::to_value(&tr).unwrap()});
    legacy.as_object_mut().unwrap().insert("input".into(), serde_json::to_value(input).unwrap());
    pinned(
        EventRecord::State { transition: &tr, input },
        legacy,
        concat!(
            r#"{"event":"STATE","input":{"REJECTED":null,"input":"cancelled"},"#,
            r#""transition":{"at_ms":1000,"from":"ORDER_PLACED","reason":{"detail":"REJECTED","reason":"ORDER_ENDED"},"#,
            r#""side":"Buy","symbol":"XUSDT","to":"COOLDOWN"}}"#
        ),
    );
}

#[test]
fn fills_and_the_trade_log() {
    let fill = Fill {
        symbol: sym(),
        order_id: "o-1".into(),
        client_id: "tp-X-2".into(),
        exec_id: "e-1".into(),
        side: Side::Sell,
        price: p("4.3"),
        qty: q("5"),
        fee: m("0.01075"),
        liquidity: Liquidity::Maker,
        reduce_only: true,
        ts_ms: 2_000,
        venue_pnl: None,
    };
    pinned(
        EventRecord::Fill { fill: &fill },
        json!({"event": "FILL", "fill": fill}),
        concat!(
            r#"{"event":"FILL","fill":{"client_id":"tp-X-2","exec_id":"e-1","fee":"0.01075","liquidity":"Maker","#,
            r#""order_id":"o-1","price":"4.3","qty":"5","reduce_only":true,"side":"Sell","symbol":"XUSDT","ts_ms":2000}}"#
        ),
    );
    let e = "position side mismatch";
    pinned(
        EventRecord::FillRefused { error: e.to_string().into() },
        json!({"event": "FILL_REFUSED", "error": e.to_string()}),
        r#"{"error":"position side mismatch","event":"FILL_REFUSED"}"#,
    );
    let realized = m("0.48925");
    pinned(
        EventRecord::PartialExit { realized, client_id: &fill.client_id },
        json!({"event": "PARTIAL_EXIT", "realized": realized, "client_id": fill.client_id}),
        r#"{"client_id":"tp-X-2","event":"PARTIAL_EXIT","realized":"0.48925"}"#,
    );
    let excess = q("1");
    pinned(
        EventRecord::FillExcess { excess },
        json!({"event": "FILL_EXCESS", "excess": excess}),
        r#"{"event":"FILL_EXCESS","excess":"1"}"#,
    );
    let (s, realized, fees, planned) = (sym(), m("-0.5215"), m("0.0215"), m("0.5"));
    let gross = Money::from_raw(realized.raw() + fees.raw());
    let r = realized.to_f64() / planned.to_f64();
    let (reason, be) = (ExitReason::StopLoss, false);
    let rec = TradeRecord {
        symbol: &s,
        category: Category::Normal,
        side: Side::Buy,
        qty: q("10"),
        avg_entry: p("4.2"),
        avg_exit: p("4.15"),
        opened_ms: 1_000,
        exit_ms: 61_000,
        gross_pnl: gross.to_f64(),
        fees: fees.to_f64(),
        net_pnl: realized.to_f64(),
        net_pnl_exact: realized,
        fees_exact: fees,
        planned_risk: planned,
        r_multiple: r,
        mfe: p("0.02"),
        mae: p("0.05"),
        reason,
        break_even_moved: be,
    };
    let legacy = json!({
        "symbol": s, "category": Category::Normal, "side": Side::Buy, "qty": q("10"),
        "avg_entry": p("4.2"), "avg_exit": p("4.15"),
        "opened_ms": 1_000, "exit_ms": 61_000,
        "gross_pnl": gross.to_f64(), "fees": fees.to_f64(), "net_pnl": realized.to_f64(),
        "net_pnl_exact": realized, "fees_exact": fees,
        "planned_risk": planned, "r_multiple": r, "mfe": p("0.02"), "mae": p("0.05"),
        "reason": reason, "break_even_moved": be,
    });
    pinned(
        rec,
        legacy,
        concat!(
            r#"{"avg_entry":"4.2","avg_exit":"4.15","break_even_moved":false,"category":"normal","exit_ms":61000,"#,
            r#""fees":0.0215,"fees_exact":"0.0215","gross_pnl":-0.5,"mae":"0.05","mfe":"0.02","net_pnl":-0.5215,"#,
            r#""net_pnl_exact":"-0.5215","opened_ms":1000,"planned_risk":"0.5","qty":"10","r_multiple":-1.043,"#,
            r#""reason":"STOP_LOSS","side":"Buy","symbol":"XUSDT"}"#
        ),
    );
}

#[test]
fn intents_by_mode() {
    let i = Intent::Place(OrderRequest {
        client_id: "en-X-1".into(),
        symbol: sym(),
        side: Side::Buy,
        kind: OrderKind::Limit { price: p("4.2"), tif: TimeInForce::PostOnly },
        qty: q("10"),
        reduce_only: false,
    });
    let intent = serde_json::to_value(&i).unwrap().to_string();
    pinned(
        EventRecord::DryRunOrder { intent: &i },
        json!({"event": "DRY_RUN_ORDER", "intent": i}),
        &format!(r#"{{"event":"DRY_RUN_ORDER","intent":{intent}}}"#),
    );
    pinned(
        EventRecord::OrderSent { intent: &i },
        json!({"event": "ORDER_SENT", "intent": i}),
        &format!(r#"{{"event":"ORDER_SENT","intent":{intent}}}"#),
    );
    let c = Intent::Cancel { symbol: sym(), client_id: "en-X-1".into() };
    pinned(
        EventRecord::IntentDropped { reason: DropReason::NoBook, intent: &c },
        json!({"event": "INTENT_DROPPED", "reason": "no book", "intent": c}),
        r#"{"event":"INTENT_DROPPED","intent":{"client_id":"en-X-1","intent":"cancel","symbol":"XUSDT"},"reason":"no book"}"#,
    );
}

#[test]
fn live_exchange_reports() {
    let (client_id, error, action) = ("en-X-1".to_string(), "timeout".to_string(), "amend".to_string());
    pinned(
        EventRecord::OrderUnresolved { client_id: &client_id, error: &error },
        json!({"event": "ORDER_UNRESOLVED", "client_id": &client_id, "error": &error}),
        r#"{"client_id":"en-X-1","error":"timeout","event":"ORDER_UNRESOLVED"}"#,
    );
    let reason = "classic account".to_string();
    pinned(
        EventRecord::AccountUnsupported { reason: &reason },
        json!({"event": "ACCOUNT_UNSUPPORTED", "reason": &reason}),
        r#"{"event":"ACCOUNT_UNSUPPORTED","reason":"classic account"}"#,
    );
    let st = &FeedState::Reconnecting;
    pinned(
        EventRecord::PrivateFeed { state: *st },
        json!({"event": "PRIVATE_FEED", "state": st}),
        r#"{"event":"PRIVATE_FEED","state":"RECONNECTING"}"#,
    );
    pinned(
        EventRecord::VenueRequestFailed { client_id: &client_id, action: &action, error: &error },
        json!({"event": "VENUE_REQUEST_FAILED", "client_id": &client_id, "action": &action, "error": &error}),
        r#"{"action":"amend","client_id":"en-X-1","error":"timeout","event":"VENUE_REQUEST_FAILED"}"#,
    );
    let leverage = &Fixed::parse("2.5").unwrap();
    pinned(
        EventRecord::LeverageFailed { leverage: *leverage, error: &error },
        json!({"event": "LEVERAGE_FAILED", "leverage": leverage, "error": &error}),
        r#"{"error":"timeout","event":"LEVERAGE_FAILED","leverage":"2.5"}"#,
    );
    let report = IntegrityReport {
        at_ms: 5_000,
        mismatches: vec![Mismatch::OrderMissingAtVenue { symbol: sym(), client_id: "sl-X-2".into() }],
    };
    pinned(
        EventRecord::IntegrityBroken { report: &report },
        json!({"event": "INTEGRITY_BROKEN", "report": report}),
        concat!(
            r#"{"event":"INTEGRITY_BROKEN","report":{"at_ms":5000,"mismatches":"#,
            r#"[{"client_id":"sl-X-2","mismatch":"order_missing_at_venue","symbol":"XUSDT"}]}}"#
        ),
    );
    let (before, to) = (m("10000"), m("9876.5"));
    pinned(
        EventRecord::WalletSync { from: before, to },
        json!({"event": "WALLET_SYNC", "from": before, "to": to}),
        r#"{"event":"WALLET_SYNC","from":"10000","to":"9876.5"}"#,
    );
    let snapshots: u64 = 7;
    pinned(
        EventRecord::PanicConfirmed { by: PanicWitness::Exchange, snapshot: snapshots },
        json!({"event": "PANIC_CONFIRMED", "by": "exchange", "snapshot": snapshots}),
        r#"{"by":"exchange","event":"PANIC_CONFIRMED","snapshot":7}"#,
    );
}

#[test]
fn engine_health() {
    let (tick_ns, budget): (u64, u64) = (80_000_000, 50_000_000);
    pinned(
        EventRecord::DegradedEnter { tick_ns, budget_ns: budget },
        json!({"event": "DEGRADED_ENTER", "tick_ns": tick_ns, "budget_ns": budget}),
        r#"{"budget_ns":50000000,"event":"DEGRADED_ENTER","tick_ns":80000000}"#,
    );
    pinned(EventRecord::DegradedExit, json!({"event": "DEGRADED_EXIT"}), r#"{"event":"DEGRADED_EXIT"}"#);
    let detail = "disk full".to_string();
    pinned(
        EventRecord::StorageUp { detail: &detail },
        json!({"event": "STORAGE_UP", "detail": &detail}),
        r#"{"detail":"disk full","event":"STORAGE_UP"}"#,
    );
    pinned(
        EventRecord::StorageDown { detail: &detail },
        json!({"event": "STORAGE_DOWN", "detail": &detail}),
        r#"{"detail":"disk full","event":"STORAGE_DOWN"}"#,
    );
    let (now, since): (TimeMs, TimeMs) = (90_000, 30_000);
    pinned(
        EventRecord::FeedRiskOff { down_ms: now - since },
        json!({"event": "FEED_RISK_OFF", "down_ms": now - since}),
        r#"{"down_ms":60000,"event":"FEED_RISK_OFF"}"#,
    );
    pinned(EventRecord::FeedRiskOffExit, json!({"event": "FEED_RISK_OFF_EXIT"}), r#"{"event":"FEED_RISK_OFF_EXIT"}"#);
    let state = FeedState::Down;
    pinned(
        EventRecord::FeedState { state },
        json!({"event": "FEED_STATE", "state": state}),
        r#"{"event":"FEED_STATE","state":"DOWN"}"#,
    );
    // The two BOOK_INVALID shapes: with the error in words, and shed (no detail key).
    let (label, e) = ("gap", "sequence gap: 5 after 3");
    pinned(
        EventRecord::BookInvalid { reason: label, detail: Some(e.to_string()) },
        json!({"event": "BOOK_INVALID", "reason": label, "detail": e.to_string()}),
        r#"{"detail":"sequence gap: 5 after 3","event":"BOOK_INVALID","reason":"gap"}"#,
    );
    pinned(
        EventRecord::BookInvalid { reason: "shed", detail: None },
        json!({"event": "BOOK_INVALID", "reason": "shed"}),
        r#"{"event":"BOOK_INVALID","reason":"shed"}"#,
    );
    let r = KillReason::ExtremeSpread { symbol: sym(), spread_bps: 125.5 };
    pinned(
        EventRecord::KillSwitch { reason: &r },
        json!({"event": "KILL_SWITCH", "reason": r}),
        r#"{"event":"KILL_SWITCH","reason":{"kill":"EXTREME_SPREAD","spread_bps":125.5,"symbol":"XUSDT"}}"#,
    );
}

#[test]
fn market_regime_and_universe() {
    let (from, to, reason) = (GlobalRegime::GlobalNormal, GlobalRegime::GlobalRiskOff, "BTC -3% in 60 s".to_string());
    pinned(
        EventRecord::GlobalRegime { from, to, reason: &reason },
        json!({"event": "GLOBAL_REGIME", "from": from.as_str(), "to": to.as_str(), "reason": reason}),
        r#"{"event":"GLOBAL_REGIME","from":"GLOBAL_NORMAL","reason":"BTC -3% in 60 s","to":"GLOBAL_RISK_OFF"}"#,
    );
    // The two BASELINE_SEEDED shapes.
    let (klines, seeded, sigma) = (vec![(); 240].len(), true, 0.0831);
    pinned(
        EventRecord::BaselineSeeded { taken: seeded, source: BaselineSource::Kline { klines, sigma_60s_pct: sigma } },
        json!({"event": "BASELINE_SEEDED", "source": "kline", "klines": klines, "taken": seeded, "sigma_60s_pct": sigma}),
        r#"{"event":"BASELINE_SEEDED","klines":240,"sigma_60s_pct":0.0831,"source":"kline","taken":true}"#,
    );
    let (now, updated_ms): (TimeMs, TimeMs) = (100_000, 40_500);
    pinned(
        EventRecord::BaselineSeeded {
            taken: false,
            source: BaselineSource::Profile { age_s: (now - updated_ms) / 1000 },
        },
        json!({"event": "BASELINE_SEEDED", "source": "profile", "age_s": (now - updated_ms) / 1000, "taken": false}),
        r#"{"age_s":59,"event":"BASELINE_SEEDED","source":"profile","taken":false}"#,
    );
    pinned(EventRecord::NewsFlagExpired, json!({"event": "NEWS_FLAG_EXPIRED"}), r#"{"event":"NEWS_FLAG_EXPIRED"}"#);
    let ch = ProfileChange {
        size_multiplier: 0.5,
        extra_score: 5.0,
        auto_blacklisted: false,
        reason: "win rate 20%".into(),
    };
    pinned(
        EventRecord::ProfileChanged { change: &ch },
        json!({"event": "PROFILE_CHANGED", "change": ch}),
        concat!(
            r#"{"change":{"auto_blacklisted":false,"extra_score":5.0,"reason":"win rate 20%","size_multiplier":0.5},"#,
            r#""event":"PROFILE_CHANGED"}"#
        ),
    );
    let reason = &RemovalReason::Delisted;
    pinned(
        EventRecord::SymbolRemoved { reason: *reason },
        json!({"event": "SYMBOL_REMOVED", "reason": reason}),
        r#"{"event":"SYMBOL_REMOVED","reason":"DELISTED"}"#,
    );
    pinned(
        EventRecord::NewsListing { category: Category::Wild },
        json!({"event": "NEWS_LISTING", "category": "wild"}),
        r#"{"category":"wild","event":"NEWS_LISTING"}"#,
    );
    let depth: &u16 = &200;
    pinned(
        EventRecord::DepthChanged { depth: *depth },
        json!({"event": "DEPTH_CHANGED", "depth": depth}),
        r#"{"depth":200,"event":"DEPTH_CHANGED"}"#,
    );
    let (added, removed, resubscribe) =
        (vec![(sym(), 50u16)], Vec::<(Symbol, RemovalReason)>::new(), Vec::<(Symbol, u16)>::new());
    let (new_listings, size) = (vec![sym()], 12usize);
    pinned(
        EventRecord::UniverseChanged {
            added: added.len(),
            removed: removed.len(),
            resubscribed: resubscribe.len(),
            new_listings: &new_listings,
            size,
        },
        json!({
            "event": "UNIVERSE_CHANGED",
            "added": added.len(), "removed": removed.len(),
            "resubscribed": resubscribe.len(), "new_listings": new_listings,
            "size": size,
        }),
        r#"{"added":1,"event":"UNIVERSE_CHANGED","new_listings":["XUSDT"],"removed":0,"resubscribed":0,"size":12}"#,
    );
}

#[test]
fn operator_controls() {
    let (from, to, open) = (Mode::Live, Mode::Sim, true);
    pinned(
        EventRecord::ModeChanged { from, to, live_trades_open: Some(open) },
        json!({"event": "MODE_CHANGED", "from": from, "to": to, "live_trades_open": open}),
        r#"{"event":"MODE_CHANGED","from":"LIVE","live_trades_open":true,"to":"SIM"}"#,
    );
    pinned(
        EventRecord::ModeChanged { from: Mode::Sim, to: Mode::DryRun, live_trades_open: None },
        json!({"event": "MODE_CHANGED", "from": Mode::Sim, "to": Mode::DryRun}),
        r#"{"event":"MODE_CHANGED","from":"SIM","to":"DRY_RUN"}"#,
    );
    let reason = "no wallet balance from the exchange yet".to_string();
    pinned(
        EventRecord::ModeRefused { to: Mode::Live, reason: reason.clone().into() },
        json!({"event": "MODE_REFUSED", "to": Mode::Live, "reason": reason}),
        r#"{"event":"MODE_REFUSED","reason":"no wallet balance from the exchange yet","to":"LIVE"}"#,
    );
    pinned(EventRecord::Paused, json!({"event": "PAUSED"}), r#"{"event":"PAUSED"}"#);
    pinned(EventRecord::Resumed, json!({"event": "RESUMED"}), r#"{"event":"RESUMED"}"#);
    pinned(EventRecord::PanicCloseAll, json!({"event": "PANIC_CLOSE_ALL"}), r#"{"event":"PANIC_CLOSE_ALL"}"#);
    let s = &sym();
    pinned(
        EventRecord::Blacklisted { symbol: s },
        json!({"event": "BLACKLISTED", "symbol": s}),
        r#"{"event":"BLACKLISTED","symbol":"XUSDT"}"#,
    );
    pinned(
        EventRecord::Unblacklisted { symbol: s },
        json!({"event": "UNBLACKLISTED", "symbol": s}),
        r#"{"event":"UNBLACKLISTED","symbol":"XUSDT"}"#,
    );
    pinned(
        EventRecord::NewsFlagCleared { symbol: s },
        json!({"event": "NEWS_FLAG_CLEARED", "symbol": s}),
        r#"{"event":"NEWS_FLAG_CLEARED","symbol":"XUSDT"}"#,
    );
    let overrides: BTreeMap<Symbol, SymbolOverride> =
        [(sym(), SymbolOverride { max_notional: Some(2000.0), blacklisted: Some(true), ..Default::default() })].into();
    let refused: BTreeMap<Symbol, String> =
        [(Symbol::new("YUSDT"), "overrides.book_depth must be one of".into())].into();
    assert_eq!(
        text(&EventRecord::OverridesSet { overrides, refused }),
        r#"{"event":"OVERRIDES_SET","overrides":{"XUSDT":{"blacklisted":true,"book_depth":null,"extra_score":null,"max_leverage":null,"max_notional":2000.0,"size_multiplier":null}},"refused":{"YUSDT":"overrides.book_depth must be one of"}}"#
    );
    let (impact, news_type, expires_ms): (&f64, &String, &TimeMs) = (&0.8, &"HACK".to_string(), &3_600_000);
    pinned(
        EventRecord::NewsFlagSet { symbol: s, impact: *impact, news_type, expires_ms: *expires_ms },
        json!({
        "event": "NEWS_FLAG_SET", "symbol": s, "impact": impact, "news_type": news_type, "expires_ms": expires_ms
        }),
        r#"{"event":"NEWS_FLAG_SET","expires_ms":3600000,"impact":0.8,"news_type":"HACK","symbol":"XUSDT"}"#,
    );
}

#[test]
fn each_type_goes_to_its_kind() {
    let mut out = crate::engine::output::Outputs::default();
    out.record(None, 1, EventRecord::Paused);
    let s = sym();
    let c = Candle {
        interval: Interval::S1,
        start_ms: 0,
        end_ms: 1_000,
        open: p("1"),
        high: p("1"),
        low: p("1"),
        close: p("1"),
        volume: q("0"),
        buy_volume: q("0"),
        sell_volume: q("0"),
        delta: q("0"),
        trades: 0,
    };
    out.record(Some(s.clone()), c.start_ms, c);
    let kinds: Vec<DataKind> = out
        .items
        .iter()
        .filter_map(|o| match o {
            crate::engine::output::Output::Record(r) => Some(r.kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, [DataKind::Events, DataKind::Microcandles]);
    assert_eq!(TradeRecord::<'static>::KIND, DataKind::TradesLog);
    assert_eq!(IntelEvent::KIND, DataKind::Events);
    // Micro-candles are written as the candle itself, as before.
    assert_eq!(
        out.items[1],
        crate::engine::output::Output::Record(crate::engine::output::LogRecord {
            kind: DataKind::Microcandles,
            symbol: Some(s),
            ts_ms: 0,
            body: serde_json::to_value(c).unwrap(),
        })
    );
}
