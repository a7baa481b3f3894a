//! Unit tests of the private wire formats (request bodies, items, frames).

use super::*;
use scalper_core::domain::{Price, Qty};
use scalper_core::execution::order::{OrderKind, OrderRequest, TimeInForce};

fn req(kind: OrderKind, side: Side, reduce_only: bool) -> OrderRequest {
    OrderRequest {
        client_id: "e-BTCUSDT-7".into(),
        symbol: Symbol::new("BTCUSDT"),
        side,
        kind,
        qty: Qty::parse("0.010").unwrap(),
        reduce_only,
    }
}

#[test]
fn order_bodies_follow_bybit_shapes() {
    let p = Price::parse("65000.50").unwrap();
    let b = CreateOrderBody::from_request(&req(
        OrderKind::Limit { price: p, tif: TimeInForce::PostOnly },
        Side::Buy,
        false,
    ))
    .unwrap();
    assert_eq!(
        serde_json::to_string(&b).unwrap(),
        r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"65000.5","timeInForce":"PostOnly","positionIdx":0,"orderLinkId":"e-BTCUSDT-7","reduceOnly":false}"#
    );
    let m = CreateOrderBody::from_request(&req(OrderKind::Market, Side::Sell, true)).unwrap();
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"0.01","positionIdx":0,"orderLinkId":"e-BTCUSDT-7","reduceOnly":true}"#
    );
    let s = CreateOrderBody::from_request(&req(OrderKind::StopMarket { trigger: p }, Side::Sell, true)).unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["orderType"], "Market");
    assert_eq!(v["triggerPrice"], "65000.5");
    assert_eq!(v["triggerDirection"], 2);
    assert_eq!(v["triggerBy"], "LastPrice");
    assert!(v.get("timeInForce").is_none() && v.get("price").is_none());
    let buy_stop = CreateOrderBody::from_request(&req(OrderKind::StopMarket { trigger: p }, Side::Buy, true)).unwrap();
    assert_eq!(buy_stop.trigger_direction, Some(1));
    let ioc =
        CreateOrderBody::from_request(&req(OrderKind::Limit { price: p, tif: TimeInForce::Ioc }, Side::Buy, false));
    assert_eq!(ioc.unwrap().time_in_force, Some("IOC"));
}

#[test]
fn order_link_ids_are_validated() {
    assert!(validate_order_link_id("e-SIM001USDT-12_a").is_ok());
    assert!(validate_order_link_id("").is_err());
    assert!(validate_order_link_id(&"x".repeat(37)).is_err());
    assert!(validate_order_link_id("a b").is_err());
    let mut r = req(OrderKind::Market, Side::Buy, false);
    r.client_id = "bad id".into();
    assert!(CreateOrderBody::from_request(&r).is_err());
    r.client_id = "ok".into();
    r.qty = Qty::ZERO;
    assert!(CreateOrderBody::from_request(&r).is_err());
}

#[test]
fn order_objects_parse_exactly_and_map_to_kinds() {
    let raw: RawOrder = serde_json::from_str(
        r#"{"symbol":"BTCUSDT","orderId":"o1","orderLinkId":"l1","side":"Sell","orderType":"Market","price":"0",
            "qty":"0.010","timeInForce":"IOC","orderStatus":"Untriggered","leavesQty":"0.010","cumExecQty":"0",
            "cumExecValue":"0","cumExecFee":"0","avgPrice":"","triggerPrice":"64000.1","triggerDirection":2,
            "stopOrderType":"Stop","reduceOnly":true,"rejectReason":"EC_NoError","createdTime":"1700000000001",
            "updatedTime":"1700000000002"}"#,
    )
    .unwrap();
    let o = raw.typed().unwrap();
    assert_eq!(o.kind(), OrderKind::StopMarket { trigger: Price::parse("64000.1").unwrap() });
    assert!(o.status.is_open() && o.reduce_only);
    assert_eq!((o.price, o.avg_price, o.trigger_direction), (None, None, 2));
    assert_eq!(o.to_snapshot().remaining, Qty::parse("0.01").unwrap());
    let bad: RawOrder = serde_json::from_str(r#"{"symbol":"BTCUSDT","side":"Up","qty":"1"}"#).unwrap();
    assert!(matches!(bad.typed(), Err(BybitError::Decode(_))));
    let bad_qty: RawOrder = serde_json::from_str(r#"{"symbol":"BTCUSDT","side":"Buy","qty":"1.2.3"}"#).unwrap();
    assert!(bad_qty.typed().is_err());
    let zero: RawOrder = serde_json::from_str(
        r#"{"symbol":"BTCUSDT","side":"Buy","qty":"0","stopOrderType":"UNKNOWN","orderType":"Limit","price":"1"}"#,
    )
    .unwrap();
    assert!(zero.typed().is_err(), "an ordinary order of size 0 is impossible");
    let full_tp: RawOrder = serde_json::from_str(
        r#"{"symbol":"BTCUSDT","side":"Sell","qty":"0","stopOrderType":"TakeProfit","orderType":"Market","triggerPrice":"70000"}"#,
    )
    .unwrap();
    assert_eq!(full_tp.typed().unwrap().qty, Qty::ZERO, "a Full-mode position TP has size 0");
}

#[test]
fn positions_treat_empty_side_as_flat() {
    let raw: RawPosition =
        serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"","size":"0","avgPrice":"0","positionIdx":0}"#).unwrap();
    let p = raw.typed().unwrap();
    assert_eq!((p.side, p.size, p.avg_price), (None, Qty::ZERO, None));
    assert!(p.to_snapshot().is_none());
    let ws: RawPosition =
        serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"Sell","size":"2.5","entryPrice":"3000.25"}"#).unwrap();
    let p = ws.typed().unwrap();
    assert_eq!(p.avg_price, Some(Price::parse("3000.25").unwrap()));
    assert_eq!(p.to_snapshot().unwrap().side, Side::Sell);
}

#[test]
fn a_zero_or_empty_leverage_is_unknown_but_keeps_the_position() {
    for lev in ["0", "0.0", ""] {
        let raw: RawPosition = serde_json::from_str(&format!(
            r#"{{"symbol":"ETHUSDT","side":"Buy","size":"1.5","entryPrice":"3000","leverage":"{lev}"}}"#
        ))
        .unwrap();
        let p = raw.typed().unwrap();
        assert_eq!((p.leverage, p.size), (None, Qty::parse("1.5").unwrap()), "leverage {lev:?}");
    }
    let raw: RawPosition =
        serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"Buy","size":"1","leverage":"-2"}"#).unwrap();
    assert!(raw.typed().is_err(), "a negative leverage is impossible");
    let raw: RawPosition =
        serde_json::from_str(r#"{"symbol":"ETHUSDT","side":"Buy","size":"1","leverage":"10"}"#).unwrap();
    assert_eq!(raw.typed().unwrap().leverage.map(|l| l.to_string()), Some("10".to_string()));
}

#[test]
fn only_usdt_perpetual_symbols_are_ours() {
    for ours in ["BTCUSDT", "1000PEPEUSDT", "XRPUSDT"] {
        assert!(is_usdt_perpetual(ours), "{ours}");
    }
    for foreign in ["BTCPERP", "ETHPERP", "ETH-26DEC25", "BTCUSDT-26DEC25", "USDT", "ETHUSDC", "btcusdt", ""] {
        assert!(!is_usdt_perpetual(foreign), "{foreign}");
    }
}

#[test]
fn a_foreign_item_costs_only_itself() {
    let frame = r#"{"topic":"execution","creationTime":7,"data":[
        {"category":"option","symbol":"ETH-30DEC22-1400-C","execId":"o","side":"Sell","execPrice":"72.5","execQty":"1"},
        {"category":"linear","symbol":"BTCUSDT","execId":"a","side":"Buy","execPrice":"65000","execQty":"0.01"},
        {"category":"spot","symbol":"BTCUSDT","execId":"s","side":"Buy","execPrice":"65000","execQty":"0.01"},
        {"category":"linear","symbol":"ETH-26DEC25","execId":"f","side":"Buy","execPrice":"3000","execQty":"1"},
        {"category":"linear","symbol":"ETHUSDT","execId":"b","side":"Sell","execPrice":"3000","execQty":"-1"},
        {"category":"linear","symbol":"ETHUSDT","execId":"c","side":"Sell","execPrice":"3000","execQty":"2"}]}"#;
    let PrivateFrame::Executions { ts_ms, executions, skipped } = parse_private_frame(frame).unwrap() else {
        panic!("executions expected")
    };
    assert_eq!(ts_ms, Some(7));
    let ids: Vec<&str> = executions.iter().map(|x| x.exec_id.as_str()).collect();
    assert_eq!(ids, vec!["a", "c"], "ours kept, in order");
    let why: Vec<(SkipReason, &str)> = skipped.iter().map(|s| (s.reason, s.symbol.as_str())).collect();
    assert_eq!(
        why,
        vec![
            (SkipReason::Category, "ETH-30DEC22-1400-C"),
            (SkipReason::Category, "BTCUSDT"),
            (SkipReason::Symbol, "ETH-26DEC25"),
            (SkipReason::Invalid, "ETHUSDT"),
        ]
    );
    assert!(skipped.iter().all(|s| s.topic == ItemTopic::Execution));
    // An item that is not even an object is refused alone too.
    let odd = r#"{"topic":"order.linear","data":[42,{"category":"linear","symbol":"BTCUSDT","side":"Buy","qty":"1"}]}"#;
    let f = parse_private_frame(odd).unwrap();
    assert!(matches!(&f, PrivateFrame::Orders { orders, .. } if orders.len() == 1), "{f:?}");
    assert_eq!(f.skipped().len(), 1);
}

#[test]
fn frames_are_classified() {
    let pong = r#"{"req_id":"p1","op":"pong","args":["1675418560633"],"conn_id":"c1"}"#;
    match parse_private_frame(pong).unwrap() {
        PrivateFrame::Op(op) => assert!(op.is_pong() && op.req_id == "p1"),
        other => panic!("{other:?}"),
    }
    let auth = r#"{"success":false,"ret_msg":"Request not authorized","op":"auth","conn_id":"c"}"#;
    assert!(matches!(parse_private_frame(auth).unwrap(), PrivateFrame::Op(o) if !o.is_success()));
    assert!(matches!(parse_private_frame("{}"), Err(BybitError::Decode(_))));
    assert!(matches!(parse_private_frame("not json"), Err(BybitError::Decode(_))));
    let other = r#"{"topic":"greeks","creationTime":1,"data":[]}"#;
    assert_eq!(parse_private_frame(other).unwrap(), PrivateFrame::Unhandled("greeks".into()));
}
