//! The Bybit v5 private connector against the simulator's private surface, over real loopback
//! sockets: signatures, order lifecycle with exact wallet accounting, a private WebSocket that
//! loses its connection mid-trade, rate-limit storms and ambiguous creates.

use scalper::connectors::bybit_private::messages::{
    parse_private_frame, OrderAck, Page, PrivateFrame, RawExecution, RawOrder, RawPosition, WalletResult,
};
use scalper::connectors::bybit_private::sign::sign_rest;
use scalper::connectors::bybit_private::{
    CancelOutcome, Credentials, EndpointGroup, IntentResult, OrderStatus, PlaceOutcome, PrivateError, PrivateMsg,
    PrivateRest, PrivateRestConfig, PrivateStream, PrivateStreamConfig, PrivateUpdate, UpdateSource, VenueExecution,
};
use scalper::connectors::bybit_public::messages::envelope_result;
use scalper::connectors::bybit_public::BybitError;
use scalper::connectors::simulator::{
    ClockMode, PrivateConfig, PrivateFault, Scenario, ScenarioAssignment, SimConfig, SimExchange, SimHandle,
};
use scalper::domain::{Fixed, Price, Qty, Side, Symbol};
use scalper::engine::event::FeedState;
use scalper::execution::integrity::reconcile;
use scalper::execution::order::{Intent, OrderKind, OrderRequest, TimeInForce};
use scalper::state::machine::ExitReason;
use scalper_core::testkit::q;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sim-api-key";
const SECRET: &str = "sim-api-secret";
const BTC: &str = "BTCUSDT";

async fn sim() -> SimHandle {
    let cfg = SimConfig {
        symbols: 3,
        seed: 11,
        tick_interval_ms: 50,
        clock: ClockMode::RealTime { speed: 1.0 },
        ..SimConfig::default()
    };
    SimExchange::start(cfg).await.expect("simulator starts")
}

fn rest_cfg(sim: &SimHandle) -> PrivateRestConfig {
    let mut c = PrivateRestConfig::new(&sim.rest_url());
    c.timeout = Duration::from_secs(2);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.max_attempts = 8;
    c.resolve_margin = Duration::from_millis(200);
    c.jitter_seed = Some(7);
    c
}

fn client(cfg: PrivateRestConfig, key: &str, secret: &str) -> Arc<PrivateRest> {
    let creds = Credentials::new(key, secret).expect("credentials");
    Arc::new(PrivateRest::with_config(cfg, creds, Default::default()).expect("client"))
}

fn stream_cfg(sim: &SimHandle) -> PrivateStreamConfig {
    let mut c = PrivateStreamConfig::new(&sim.private().ws_private_url());
    c.ping_interval = Duration::from_millis(300);
    c.pong_timeout = Duration::from_millis(1_000);
    c.ack_timeout = Duration::from_secs(2);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c.jitter_seed = Some(3);
    c
}

fn order(link: &str, side: Side, kind: OrderKind, qty: &str, reduce_only: bool) -> OrderRequest {
    OrderRequest { client_id: link.into(), symbol: Symbol::new(BTC), side, kind, qty: q(qty), reduce_only }
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/bybit/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Receives until `pred` accepts a message or `wait` passes.
async fn recv_until(
    rx: &mut mpsc::Receiver<PrivateMsg>,
    wait: Duration,
    seen: &mut Vec<PrivateMsg>,
    mut pred: impl FnMut(&PrivateMsg) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => {
                let hit = pred(&m);
                seen.push(m);
                if hit {
                    return true;
                }
            }
            _ => return false,
        }
    }
}

fn executions(seen: &[PrivateMsg]) -> Vec<(UpdateSource, VenueExecution)> {
    seen.iter()
        .filter_map(|m| match &m.update {
            PrivateUpdate::Execution(x) => Some((m.source, x.clone())),
            _ => None,
        })
        .collect()
}

fn filled_qty(seen: &[PrivateMsg], link: &str) -> Qty {
    Qty::from_raw(executions(seen).iter().filter(|(_, x)| x.order_link_id == link).map(|(_, x)| x.exec_qty.raw()).sum())
}

/// Receives until the executions of `link` add up to `qty` (fails after 5 s).
async fn wait_filled(rx: &mut mpsc::Receiver<PrivateMsg>, seen: &mut Vec<PrivateMsg>, link: &str, qty: &str) {
    let want = q(qty);
    if filled_qty(seen, link) == want {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while filled_qty(seen, link) != want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => seen.push(m),
            _ => panic!("{link}: filled {} of {want}", filled_qty(seen, link)),
        }
    }
}

/// `value × rate` rounded up at 10^-8, computed here independently of the crate's money code.
fn fee_up(value: Fixed, rate: Fixed) -> i64 {
    let p = value.raw() as i128 * rate.raw() as i128; // 10^-16
    let s = 100_000_000i128;
    (if p >= 0 { (p + s - 1) / s } else { p / s }) as i64
}

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

#[test]
fn documented_rest_shapes_parse_exactly() {
    let v = |n: &str| serde_json::from_str::<serde_json::Value>(&fixture(n)).expect("json");
    let w: WalletResult = envelope_result(v("private_wallet_balance.json")).unwrap();
    let w = w.list[0].typed().unwrap();
    let usdt = w.coin("USDT").unwrap();
    assert_eq!(w.account_type, "UNIFIED");
    assert_eq!(usdt.wallet_balance, Fixed::parse("10400.15").unwrap());
    assert_eq!(usdt.unrealised_pnl, Fixed::parse("12.58905261").unwrap());
    assert_eq!(usdt.total_position_im, Fixed::parse("126.03905261").unwrap());

    let p: Page<RawPosition> = envelope_result(v("private_position_list.json")).unwrap();
    let ps: Vec<_> = p.list.iter().map(|r| r.typed().unwrap()).collect();
    assert_eq!(ps[0].side, Some(Side::Buy));
    assert_eq!(ps[0].size, q("0.02"));
    assert_eq!(ps[0].avg_price, Some(Price::parse("64950.35").unwrap()));
    assert_eq!(ps[0].stop_loss, Some(Price::parse("64000").unwrap()));
    assert_eq!(ps[0].take_profit, None);
    assert_eq!((ps[1].side, ps[1].size), (None, Qty::ZERO));

    let o: Page<RawOrder> = envelope_result(v("private_order_realtime.json")).unwrap();
    let os: Vec<_> = o.list.iter().map(|r| r.typed().unwrap()).collect();
    assert_eq!(os[0].status, OrderStatus::Untriggered);
    assert_eq!(os[0].kind(), OrderKind::StopMarket { trigger: Price::parse("64000").unwrap() });
    assert!(os[0].reduce_only);
    assert_eq!(os[1].kind(), OrderKind::Limit { price: Price::parse("64900.5").unwrap(), tif: TimeInForce::PostOnly });
    assert_eq!((os[1].leaves_qty, os[1].cum_exec_qty), (q("0.004"), q("0.006")));

    let x: Page<RawExecution> = envelope_result(v("private_execution_list.json")).unwrap();
    let xs: Vec<_> = x.list.iter().map(|r| r.typed().unwrap()).collect();
    assert_eq!(xs[0].exec_pnl, Some(Fixed::parse("1.293").unwrap()));
    assert_eq!(xs[0].closed_size, q("0.02"));
    assert!(!xs[0].is_maker && xs[1].is_maker);
    let fill = xs[1].to_fill(false);
    assert_eq!((fill.qty, fill.fee), (q("0.006"), Fixed::parse("0.0778806").unwrap()));
    assert_eq!(fill.fee.raw(), fee_up(xs[1].exec_value, xs[1].fee_rate));

    let ack: OrderAck = envelope_result(v("private_create_order.json")).unwrap();
    assert_eq!(ack.order_link_id, "e-BTCUSDT-4");
    let dup = envelope_result::<OrderAck>(v("private_error_duplicate.json")).unwrap_err();
    assert!(matches!(dup, BybitError::Api { code: 110072, .. }));
}

#[test]
fn documented_ws_shapes_parse_exactly() {
    match parse_private_frame(&fixture("private_ws_auth_ok.json")).unwrap() {
        PrivateFrame::Op(op) => assert!(op.op == "auth" && op.is_success()),
        other => panic!("{other:?}"),
    }
    match parse_private_frame(&fixture("private_ws_pong.json")).unwrap() {
        PrivateFrame::Op(op) => assert!(op.is_pong()),
        other => panic!("{other:?}"),
    }
    match parse_private_frame(&fixture("private_ws_order.json")).unwrap() {
        PrivateFrame::Orders { ts_ms, orders, .. } => {
            assert_eq!(ts_ms, Some(1_717_000_000_091));
            assert_eq!(orders[0].status, OrderStatus::PartiallyFilled);
            assert_eq!(orders[0].cum_exec_fee, Fixed::parse("0.0778806").unwrap());
        }
        other => panic!("{other:?}"),
    }
    match parse_private_frame(&fixture("private_ws_execution.json")).unwrap() {
        PrivateFrame::Executions { executions, .. } => {
            assert_eq!(executions[0].exec_id, "e0000000-0000-4000-8000-00000000000a");
            assert_eq!(executions[0].exec_price, Price::parse("64900.5").unwrap());
        }
        other => panic!("{other:?}"),
    }
    match parse_private_frame(&fixture("private_ws_position.json")).unwrap() {
        PrivateFrame::Positions { positions, .. } => {
            assert_eq!(positions[0].avg_price, Some(Price::parse("64900.5").unwrap()));
            assert_eq!(positions[0].size, q("0.006"));
        }
        other => panic!("{other:?}"),
    }
    match parse_private_frame(&fixture("private_ws_wallet.json")).unwrap() {
        PrivateFrame::Wallet { wallets, .. } => {
            assert_eq!(wallets[0].coin("USDT").unwrap().wallet_balance, Fixed::parse("10399.7871194").unwrap());
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn signed_requests_are_accepted_and_bad_ones_rejected_with_clear_errors() {
    let sim = sim().await;
    let good = client(rest_cfg(&sim), KEY, SECRET);
    let w = good.wallet_balance().await.expect("signed request accepted");
    assert_eq!(w.coin("USDT").unwrap().wallet_balance, Fixed::from_int(100_000));
    assert!(good.stats().snapshot().time_syncs >= 1);
    assert!(good.clock_offset_ms().abs() < 1_000, "offset {}", good.clock_offset_ms());

    let bad = client(rest_cfg(&sim), KEY, "wrong-secret");
    let e = bad.wallet_balance().await.unwrap_err();
    assert_eq!(e.ret_code(), Some(10004), "{e}");
    assert!(e.to_string().contains("error sign"), "{e}");
    assert_eq!(bad.stats().snapshot().rest_retries, 0, "a bad signature is not retried");

    let unknown = client(rest_cfg(&sim), "nobody", SECRET);
    assert_eq!(unknown.positions().await.unwrap_err().ret_code(), Some(10003));

    // A stale timestamp (signed correctly) is refused with 10002, by hand with reqwest.
    let ts = sim.now_ms() - 60_000;
    let query = "accountType=UNIFIED";
    let sign = sign_rest(SECRET.as_bytes(), ts, KEY, 5_000, query);
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v5/account/wallet-balance?{query}", sim.rest_url()))
        .header("X-BAPI-API-KEY", KEY)
        .header("X-BAPI-TIMESTAMP", ts.to_string())
        .header("X-BAPI-SIGN", sign)
        .header("X-BAPI-RECV-WINDOW", "5000")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["retCode"], 10002, "{body}");
    assert_eq!(sim.private().counters().auth_failures, 3);
    // Every signed answer carries the limit headers.
    let r = reqwest::Client::new()
        .get(format!("{}/v5/account/wallet-balance?{query}", sim.rest_url()))
        .header("X-BAPI-API-KEY", KEY)
        .header("X-BAPI-TIMESTAMP", sim.now_ms().to_string())
        .header("X-BAPI-SIGN", sign_rest(SECRET.as_bytes(), sim.now_ms(), KEY, 5_000, query))
        .header("X-BAPI-RECV-WINDOW", "5000")
        .send()
        .await
        .unwrap();
    let limit = r.headers().get("X-Bapi-Limit").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(limit.as_deref(), Some("50"));

    // The private WebSocket refuses a bad signature too and never reports CONNECTED.
    let (tx, mut rx) = mpsc::channel(64);
    let h = PrivateStream::new(stream_cfg(&sim), bad.clone()).start(tx, CancellationToken::new());
    let mut seen = Vec::new();
    let connected = recv_until(&mut rx, Duration::from_millis(800), &mut seen, |m| {
        m.update == PrivateUpdate::Status(FeedState::Connected)
    })
    .await;
    assert!(!connected);
    assert!(h.stats().snapshot().ws_auth_failures >= 1);
    assert!(sim.private().counters().ws_auth_failed >= 1);
    assert_eq!(sim.private().authenticated_connections(), 0);
    h.shutdown();
    h.join().await;
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Order lifecycle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn place_fill_position_close_and_the_wallet_moves_by_pnl_minus_fees() {
    let sim = sim().await;
    let rest = client(rest_cfg(&sim), KEY, SECRET);
    let (tx, mut rx) = mpsc::channel(1_024);
    let stream = PrivateStream::new(stream_cfg(&sim), rest.clone()).start(tx, CancellationToken::new());
    let mut seen = Vec::new();
    assert!(
        recv_until(&mut rx, Duration::from_secs(5), &mut seen, |m| matches!(m.update, PrivateUpdate::Reconciled(_)))
            .await
    );
    let wallet0 = rest.wallet_balance().await.unwrap().coin("USDT").unwrap().wallet_balance;
    assert!(rest.set_leverage(&Symbol::new(BTC), Fixed::from_int(5)).await.unwrap());
    assert!(!rest.set_leverage(&Symbol::new(BTC), Fixed::from_int(5)).await.unwrap(), "110043: not modified");

    // Open with a market order.
    let open = rest.create_order(&order("t-open-1", Side::Buy, OrderKind::Market, "0.010", false)).await.unwrap();
    assert_eq!((open.outcome, open.sends), (PlaceOutcome::Accepted, 1));
    wait_filled(&mut rx, &mut seen, "t-open-1", "0.01").await;
    let pos = rest.position(&Symbol::new(BTC)).await.unwrap().unwrap();
    assert_eq!((pos.side, pos.size, pos.leverage), (Some(Side::Buy), q("0.01"), Some(Fixed::from_int(5))));
    assert_eq!(sim.private().position(BTC), Some((Side::Buy, q("0.01"))));
    let rec = reconcile(
        &scalper::execution::integrity::VenueSnapshot {
            positions: vec![scalper::execution::integrity::PositionSnapshot {
                symbol: Symbol::new(BTC),
                side: Side::Buy,
                qty: q("0.01"),
            }],
            orders: vec![],
        },
        &scalper::connectors::bybit_private::messages::venue_snapshot(
            &rest.open_orders(None).await.unwrap(),
            &rest.positions().await.unwrap(),
        ),
        0,
    );
    assert!(rec.mismatches.is_empty(), "{rec:?}");

    // A post-only far below the market rests, then is cancelled; cancelling again is benign.
    let best_bid = sim.book_levels(BTC).unwrap().bids[0].price;
    let far = Price::from_raw(best_bid.raw() - 5_000 * 10_000_000);
    let rest_order =
        order("t-rest-1", Side::Buy, OrderKind::Limit { price: far, tif: TimeInForce::PostOnly }, "0.005", false);
    rest.create_order(&rest_order).await.unwrap();
    let open_orders = rest.open_orders(Some(&Symbol::new(BTC))).await.unwrap();
    assert_eq!(open_orders.len(), 1);
    assert_eq!((open_orders[0].status.clone(), open_orders[0].order_link_id.as_str()), (OrderStatus::New, "t-rest-1"));
    let sym = Symbol::new(BTC);
    let amended = rest.amend_order(&sym, "t-rest-1", Some(Price::from_raw(far.raw() - 10_000_000)), None, None).await;
    assert_eq!(amended.unwrap().order_link_id, "t-rest-1");
    assert!(matches!(rest.cancel_order(&Symbol::new(BTC), "t-rest-1").await.unwrap(), CancelOutcome::Cancelled(_)));
    assert_eq!(
        rest.cancel_order(&Symbol::new(BTC), "t-rest-1").await.unwrap(),
        CancelOutcome::NotOpen { code: 110001 }
    );
    let gone = rest.order_by_link_id(&Symbol::new(BTC), "t-rest-1").await.unwrap().unwrap();
    assert_eq!(gone.status, OrderStatus::Cancelled);

    // A post-only that would cross is cancelled by the venue, not filled.
    let best_ask = sim.book_levels(BTC).unwrap().asks[0].price;
    let cross = order(
        "t-cross-1",
        Side::Buy,
        OrderKind::Limit { price: Price::from_raw(best_ask.raw() + 50 * 10_000_000), tif: TimeInForce::PostOnly },
        "0.001",
        false,
    );
    rest.create_order(&cross).await.unwrap();
    let c = rest.order_by_link_id(&Symbol::new(BTC), "t-cross-1").await.unwrap().unwrap();
    assert_eq!((c.status, c.reject_reason.as_str()), (OrderStatus::Cancelled, "EC_PostOnlyWillTakeLiquidity"));

    // Reusing an orderLinkId resolves to the existing order instead of creating another.
    let dup = rest.create_order(&order("t-open-1", Side::Buy, OrderKind::Market, "0.010", false)).await.unwrap();
    assert_eq!((dup.outcome, dup.order_id.as_str()), (PlaceOutcome::Duplicate, open.order_id.as_str()));
    assert_eq!(sim.private().counters().duplicate_link_ids, 1);

    // A reduce-only order that would open is refused.
    let e = rest.create_order(&order("t-ro-1", Side::Buy, OrderKind::Market, "0.001", true)).await.unwrap_err();
    assert_eq!(e.ret_code(), Some(110017), "{e}");

    // A conditional stop must lie on its trigger side of the last price (110093), and waits
    // `Untriggered` until cancelled (`Deactivated`).
    let last = sim.book_levels(BTC).unwrap().asks[0].price;
    let wrong = order(
        "t-stop-0",
        Side::Sell,
        OrderKind::StopMarket { trigger: Price::from_raw(last.raw() + 1_000 * 10_000_000) },
        "0.005",
        true,
    );
    assert_eq!(rest.create_order(&wrong).await.unwrap_err().ret_code(), Some(110093));
    let stop = order(
        "t-stop-1",
        Side::Sell,
        OrderKind::StopMarket { trigger: Price::from_raw(last.raw() / 2 / 10_000_000 * 10_000_000) },
        "0.01",
        true,
    );
    rest.create_order(&stop).await.unwrap();
    let s = rest.order_by_link_id(&Symbol::new(BTC), "t-stop-1").await.unwrap().unwrap();
    assert_eq!((&s.status, s.trigger_direction, s.stop_order_type.as_str()), (&OrderStatus::Untriggered, 2, "Stop"));
    assert_eq!(s.kind(), stop.kind);
    assert!(matches!(rest.cancel_order(&Symbol::new(BTC), "t-stop-1").await.unwrap(), CancelOutcome::Cancelled(_)));
    let s = rest.order_by_link_id(&Symbol::new(BTC), "t-stop-1").await.unwrap().unwrap();
    assert_eq!(s.status, OrderStatus::Deactivated);

    // Close the rest through the Close intent (reduce-only market on the other side).
    let close = Intent::Close {
        symbol: Symbol::new(BTC),
        position_side: Side::Buy,
        qty: q("0.01"),
        reason: ExitReason::TakeProfit,
        client_id: "t-close-1".into(),
    };
    assert!(matches!(rest.submit(&close).await.unwrap(), IntentResult::Placed(_)));
    wait_filled(&mut rx, &mut seen, "t-close-1", "0.01").await;
    // Let the last position / wallet pushes of the close arrive.
    recv_until(&mut rx, Duration::from_millis(300), &mut seen, |_| false).await;
    assert_eq!(sim.private().position(BTC), None);
    let flat = rest.position(&Symbol::new(BTC)).await.unwrap().unwrap();
    assert_eq!((flat.side, flat.size), (None, Qty::ZERO));

    // Wallet change == realised PnL − fees, exactly; PnL == sell value − buy value.
    let xs = executions(&seen);
    let ids: HashSet<&str> = xs.iter().map(|(_, x)| x.exec_id.as_str()).collect();
    assert_eq!(ids.len(), xs.len(), "no execution twice");
    assert_eq!(xs.len(), sim.private().executions().len());
    let mut pnl = 0i64;
    let mut fees = 0i64;
    let mut cash = 0i64;
    for (_, x) in &xs {
        assert_eq!(x.exec_fee.raw(), fee_up(x.exec_value, x.fee_rate), "fee of {}", x.exec_id);
        assert_eq!(x.fee_rate, Fixed::parse(if x.is_maker { "0.0002" } else { "0.00055" }).unwrap());
        assert_eq!(x.exec_value.raw() as i128, x.exec_price.raw() as i128 * x.exec_qty.raw() as i128 / 100_000_000);
        pnl += x.exec_pnl.unwrap().raw();
        fees += x.exec_fee.raw();
        cash += match x.side {
            Side::Sell => x.exec_value.raw(),
            Side::Buy => -x.exec_value.raw(),
        };
    }
    assert_eq!(pnl, cash, "realised PnL of a flat round trip is its cash flow");
    assert!(fees > 0);
    let wallet1 = rest.wallet_balance().await.unwrap().coin("USDT").unwrap().wallet_balance;
    assert_eq!(wallet1.raw() - wallet0.raw(), pnl - fees);
    assert_eq!(sim.private().wallet_balance(), wallet1);
    // The stream's last wallet push agrees.
    let last_wallet = seen.iter().rev().find_map(|m| match &m.update {
        PrivateUpdate::Wallet(w) => Some(w.coin("USDT").unwrap().wallet_balance),
        _ => None,
    });
    assert_eq!(last_wallet, Some(wallet1));
    assert_eq!(rest.stats().snapshot().creates_resent, 0);
    stream.shutdown();
    stream.join().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_conditional_stop_and_a_position_stop_loss_fire_when_the_price_falls() {
    // A manual clock: the market moves only when the test advances it, and the client reads
    // the simulator's clock as its own, so signed timestamps stay valid. BTCUSDT crashes 5 %
    // at step 20 (1 s of simulated time).
    let cfg = SimConfig {
        symbols: 3,
        seed: 11,
        tick_interval_ms: 50,
        clock: ClockMode::Manual,
        start_time_ms: Some(1_700_000_000_000),
        scenarios: vec![ScenarioAssignment {
            symbol: BTC.into(),
            scenario: Scenario::NewsShock { at_ms: 1_000, jump_bps: -500 },
        }],
        ..SimConfig::default()
    };
    let sim = SimExchange::start(cfg).await.unwrap();
    let clock = sim.clone();
    let creds = Credentials::new(KEY, SECRET).unwrap();
    let rest = PrivateRest::with_config(rest_cfg(&sim), creds, Default::default())
        .unwrap()
        .with_time_source(Arc::new(move || clock.now_ms()));
    rest.sync_time().await.unwrap();
    assert_eq!(rest.clock_offset_ms(), 0);
    rest.create_order(&order("c-open-1", Side::Buy, OrderKind::Market, "0.004", false)).await.unwrap();
    let last = sim.book_levels(BTC).unwrap().bids[0].price;
    let trigger = Price::from_raw(last.raw() / 100 * 98 / 10_000_000 * 10_000_000);
    let stop = order("c-stop-1", Side::Sell, OrderKind::StopMarket { trigger }, "0.003", true);
    assert_eq!(rest.create_order(&stop).await.unwrap().outcome, PlaceOutcome::Accepted);
    let sl = Price::from_raw(trigger.raw() - 500 * 10_000_000);
    rest.set_trading_stop(&Symbol::new(BTC), None, Some(sl)).await.unwrap();
    assert_eq!(rest.position(&Symbol::new(BTC)).await.unwrap().unwrap().stop_loss, Some(sl));
    sim.advance(19).await.unwrap();
    assert_eq!(sim.private().position(BTC), Some((Side::Buy, q("0.004"))), "nothing fires before the crash");
    sim.advance(40).await.unwrap();
    assert_eq!(sim.private().position(BTC), None, "both stops fired");
    let s = rest.order_by_link_id(&Symbol::new(BTC), "c-stop-1").await.unwrap().unwrap();
    assert_eq!((s.status, s.cum_exec_qty), (OrderStatus::Filled, q("0.003")));
    let xs = sim.private().executions();
    let stop_fill = xs.iter().find(|x| x.order_link_id == "c-stop-1").unwrap();
    assert!(stop_fill.price <= trigger && !stop_fill.is_maker, "{stop_fill:?}");
    let sl_fill = xs.iter().find(|x| x.order_link_id.is_empty()).expect("the position stop loss executed");
    assert_eq!((sl_fill.side, sl_fill.qty), (Side::Sell, q("0.001")));
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Private WS loss
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_dropped_private_stream_mid_trade_loses_no_fill() {
    let sim = sim().await;
    let rest = client(rest_cfg(&sim), KEY, SECRET);
    let (tx, mut rx) = mpsc::channel(1_024);
    let stream = PrivateStream::new(stream_cfg(&sim), rest.clone()).start(tx, CancellationToken::new());
    let mut seen = Vec::new();
    let reconciled = |m: &PrivateMsg| matches!(m.update, PrivateUpdate::Reconciled(_));
    assert!(recv_until(&mut rx, Duration::from_secs(5), &mut seen, reconciled).await);

    // The fill happens while the venue's pushes are lost, then the socket dies.
    sim.private().suppress_pushes(true);
    rest.create_order(&order("d-open-1", Side::Buy, OrderKind::Market, "0.004", false)).await.unwrap();
    assert_eq!(sim.private().position(BTC), Some((Side::Buy, q("0.004"))));
    assert!(sim.private().counters().pushes_suppressed >= 1);
    sim.private().drop_connections();
    sim.private().suppress_pushes(false);

    // Reconnect → re-auth → reconciliation recovers the missed execution.
    let rec2 = |m: &PrivateMsg| matches!(&m.update, PrivateUpdate::Reconciled(r) if r.connection == 2);
    assert!(recv_until(&mut rx, Duration::from_secs(5), &mut seen, rec2).await, "reconnected and reconciled");
    let recovered: Vec<_> = executions(&seen).into_iter().filter(|(_, x)| x.order_link_id == "d-open-1").collect();
    assert!(!recovered.is_empty());
    assert!(recovered.iter().all(|(src, _)| *src == UpdateSource::Reconciliation));
    assert_eq!(filled_qty(&seen, "d-open-1"), q("0.004"));
    let snap = seen.iter().rev().find_map(|m| match &m.update {
        PrivateUpdate::Reconciled(r) => Some(r.clone()),
        _ => None,
    });
    let snap = snap.unwrap();
    assert_eq!(snap.executions_recovered, recovered.len());
    assert_eq!(snap.venue_snapshot().positions[0].qty, q("0.004"));
    assert!(sim.private().authenticated_connections() >= 1);

    // Trading continues on the new connection; a second drop re-reads the same window but
    // emits nothing twice.
    rest.create_order(&order("d-close-1", Side::Sell, OrderKind::Market, "0.004", true)).await.unwrap();
    wait_filled(&mut rx, &mut seen, "d-close-1", "0.004").await;
    assert!(executions(&seen).iter().any(|(src, x)| x.order_link_id == "d-close-1" && *src == UpdateSource::Stream));
    sim.private().drop_connections();
    let rec3 = |m: &PrivateMsg| matches!(&m.update, PrivateUpdate::Reconciled(r) if r.connection == 3);
    assert!(recv_until(&mut rx, Duration::from_secs(5), &mut seen, rec3).await);

    // Heartbeats run on the live connection.
    recv_until(&mut rx, Duration::from_millis(800), &mut seen, |_| false).await;
    let xs = executions(&seen);
    let ids: HashSet<String> = xs.iter().map(|(_, x)| x.exec_id.clone()).collect();
    assert_eq!(ids.len(), xs.len(), "every execId exactly once");
    let venue: HashSet<String> = sim.private().executions().into_iter().map(|x| x.exec_id).collect();
    assert_eq!(ids, venue, "every venue execution was delivered");
    let st = stream.stats().snapshot();
    assert!(st.ws_reconnects >= 2 && st.reconciliations >= 3, "{st:?}");
    assert!(st.ws_pings >= 1 && st.ws_pongs >= 1, "{st:?}");
    assert!(st.executions_deduped + st.reconciled_executions >= 1);
    let statuses: Vec<FeedState> = seen
        .iter()
        .filter_map(|m| match m.update {
            PrivateUpdate::Status(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(statuses.windows(2).any(|w| w == [FeedState::Reconnecting, FeedState::Connected]), "{statuses:?}");
    stream.shutdown();
    stream.join().await;
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Storms and ambiguity
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rate_limit_storm_sends_no_duplicate_order() {
    let sim = sim().await;
    let rest = client(rest_cfg(&sim), KEY, SECRET);
    rest.sync_time().await.unwrap();

    // HTTP 429 on the next requests: the create is retried (it was provably not processed)
    // and exists exactly once.
    sim.rest_http_errors(429, 4);
    let a = rest.create_order(&order("s-429-1", Side::Buy, OrderKind::Market, "0.001", false)).await.unwrap();
    assert_eq!((a.outcome, a.sends), (PlaceOutcome::Accepted, 5));
    // Bybit's own "Too many visits!" code, same story.
    sim.rest_ret_code_errors(10006, 3);
    let b = rest.create_order(&order("s-10006-1", Side::Buy, OrderKind::Market, "0.001", false)).await.unwrap();
    assert_eq!((b.outcome, b.sends), (PlaceOutcome::Accepted, 4));
    let c = sim.private().counters();
    assert_eq!((c.create_requests, c.orders_created), (2, 2));

    // The venue's per-key limit (3 creates/s here) against a burst of 8 concurrent creates
    // from a client that believes it may send 100/s: 10006 answers, retries, and still every
    // order exists once.
    let mut pcfg = PrivateConfig::default();
    pcfg.rate_limits.set(EndpointGroup::Create, 3);
    sim.private().configure(pcfg);
    let mut cfg = rest_cfg(&sim);
    cfg.rate_limits.set(EndpointGroup::Create, 100);
    cfg.max_attempts = 20;
    let burst = client(cfg, KEY, SECRET);
    burst.sync_time().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let r = burst.clone();
        tasks.push(tokio::spawn(async move {
            r.create_order(&order(&format!("s-burst-{i}"), Side::Buy, OrderKind::Market, "0.001", false)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().outcome, PlaceOutcome::Accepted);
    }
    let c = sim.private().counters();
    assert_eq!(c.orders_created, 8);
    assert!(c.rate_limited >= 1, "the venue's limit was hit: {c:?}");
    assert!(burst.stats().snapshot().rest_rate_limited >= 1);
    let links: Vec<String> = sim.private().orders().into_iter().map(|o| o.order_link_id).collect();
    let unique: HashSet<&String> = links.iter().collect();
    assert_eq!((links.len(), unique.len()), (8, 8));

    // 5xx after the venue executed the create: resolved by orderLinkId, never re-sent.
    sim.private().inject(PrivateFault::CreateAcceptedThenHttp { status: 502, count: 1 });
    let d = burst.create_order(&order("s-502-1", Side::Buy, OrderKind::Market, "0.001", false)).await.unwrap();
    assert_eq!((d.outcome, d.sends), (PlaceOutcome::Recovered, 1));
    assert_eq!(d.order.as_ref().map(|o| o.status.clone()), Some(OrderStatus::Filled));
    let c = sim.private().counters();
    assert_eq!(c.orders_created, 9);
    assert_eq!(burst.stats().snapshot().creates_recovered, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_timed_out_create_is_resolved_by_order_link_id() {
    let sim = sim().await;
    let mut cfg = rest_cfg(&sim);
    cfg.timeout = Duration::from_millis(300);
    let rest = client(cfg, KEY, SECRET);
    rest.sync_time().await.unwrap();

    // Accepted by the venue, answer lost (held far beyond the client's timeout).
    sim.private().inject(PrivateFault::CreateAcceptedResponseDelayed { delay_ms: 3_000, count: 1 });
    let placed = rest.create_order(&order("a-slow-1", Side::Buy, OrderKind::Market, "0.002", false)).await.unwrap();
    assert_eq!((placed.outcome, placed.sends), (PlaceOutcome::Recovered, 1));
    let venue = placed.order.unwrap();
    assert_eq!((venue.order_link_id.as_str(), venue.status), ("a-slow-1", OrderStatus::Filled));
    let c = sim.private().counters();
    assert_eq!((c.create_requests, c.orders_created), (1, 1));
    let st = rest.stats().snapshot();
    assert_eq!((st.creates_ambiguous, st.creates_recovered, st.creates_resent), (1, 1, 0));
    assert_eq!(sim.private().position(BTC), Some((Side::Buy, q("0.002"))));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_create_that_never_executed_is_resent_only_after_its_window_closed() {
    let sim = sim().await;
    let mut cfg = rest_cfg(&sim);
    cfg.timeout = Duration::from_millis(400);
    cfg.recv_window_ms = 800;
    let rest = client(cfg, KEY, SECRET);
    rest.sync_time().await.unwrap();

    // The request is stuck before the matching engine for 2.5 s: when it finally gets there its
    // 800 ms window has passed and it is refused (10002). Meanwhile the client proves the
    // order absent (window closed + margin, look-ups empty) and sends it again, once.
    sim.private().inject(PrivateFault::CreateDelayedBeforeProcessing { delay_ms: 2_500, count: 1 });
    let started = tokio::time::Instant::now();
    let placed = rest.create_order(&order("a-lost-1", Side::Buy, OrderKind::Market, "0.002", false)).await.unwrap();
    assert_eq!((placed.outcome, placed.sends), (PlaceOutcome::Accepted, 2));
    assert!(started.elapsed() >= Duration::from_millis(1_000), "waited for the window: {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let c = sim.private().counters();
    assert_eq!(c.orders_created, 1, "{c:?}");
    assert!(c.auth_failures >= 1, "the late copy was refused: {c:?}");
    let orders: Vec<_> = sim.private().orders().into_iter().filter(|o| o.order_link_id == "a-lost-1").collect();
    assert_eq!(orders.len(), 1);
    let st = rest.stats().snapshot();
    assert_eq!((st.creates_ambiguous, st.creates_resent, st.creates_recovered), (1, 1, 0));
    assert_eq!(sim.private().position(BTC), Some((Side::Buy, q("0.002"))));
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_rejects_and_invalid_requests_are_typed_errors() {
    let sim = sim().await;
    let rest = client(rest_cfg(&sim), KEY, SECRET);
    sim.private().inject(PrivateFault::RejectCreates { ret_code: 110007, count: 1 });
    let e = rest.create_order(&order("r-1", Side::Buy, OrderKind::Market, "0.001", false)).await.unwrap_err();
    assert_eq!(e.ret_code(), Some(110007));
    assert_eq!(rest.stats().snapshot().creates_sent, 1, "a definitive rejection is not retried");
    // The same link id can be used after a rejection (nothing was created).
    let ok = rest.create_order(&order("r-1", Side::Buy, OrderKind::Market, "0.001", false)).await.unwrap();
    assert_eq!(ok.outcome, PlaceOutcome::Accepted);
    let bad = order("has space", Side::Buy, OrderKind::Market, "0.001", false);
    assert!(matches!(rest.create_order(&bad).await, Err(PrivateError::Invalid(_))));
    let odd_qty = order("r-2", Side::Buy, OrderKind::Market, "0.0015", false);
    assert_eq!(rest.create_order(&odd_qty).await.unwrap_err().ret_code(), Some(10001));
    let huge = order("r-3", Side::Buy, OrderKind::Market, "100000", false);
    assert!(rest.create_order(&huge).await.is_err());
    assert!(rest.set_trading_stop(&Symbol::new("ETHUSDT"), None, Some(Price::parse("1").unwrap())).await.is_err());
    let tp = Price::from_raw(sim.book_levels(BTC).unwrap().asks[0].price.raw() * 2);
    rest.set_trading_stop(&Symbol::new(BTC), Some(tp), None).await.unwrap();
    let p = rest.position(&Symbol::new(BTC)).await.unwrap().unwrap();
    assert_eq!(p.take_profit, Some(tp));
    let all = rest.cancel_all(None).await.unwrap();
    assert!(all.is_empty());
    let by_side: BTreeMap<String, usize> = sim.private().orders().into_iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o.status).or_default() += 1;
        m
    });
    assert_eq!(by_side.get("Filled"), Some(&1));
    sim.shutdown().await;
}
