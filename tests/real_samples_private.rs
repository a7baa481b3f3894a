//! Every real Bybit v5 private message in `../shared/bybit-real-samples` (docs examples and
//! published captures, origins in its SOURCES.md) goes through the private connector's own
//! decoding path: WS frames through `parse_private_frame`, REST lists through the envelope and
//! `sort_items` (what `PrivateRest` runs on every list), wallets through the unified-account
//! check, errors through the envelope and the redaction. USDT-perpetual items are kept with
//! their exact values; foreign ones (an option order, a USDC perpetual's execution) are skipped
//! and counted; a classic account's wallet is refused. Then each decoder is fed the real samples
//! with impossible values (negative sizes and prices, a size without a side): the bad item is a
//! counted decode error of its own, its neighbours are kept.

mod common;

use common::PRIVATE_REST_SAMPLES as PRIVATE_REST;
use common::{p as px, q as qty, real_samples_dir};
use scalper::connectors::bybit_private::messages::{
    parse_private_frame, sort_items, OrderAck, Page, PrivateFrame, RawExecution, RawOrder, RawPosition, SkipReason,
    Sorted, WalletResult,
};
use scalper::connectors::bybit_private::sign::redact_exchange_text;
use scalper::connectors::bybit_private::{ItemTopic, OrderStatus, PrivateStats};
use scalper::connectors::bybit_public::messages::envelope_result;
use scalper::connectors::bybit_public::BybitError;
use scalper::domain::{Fixed, Qty, Side};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for source in std::fs::read_dir(dir).expect("samples dir").flatten().filter(|e| e.path().is_dir()) {
        for f in std::fs::read_dir(source.path()).expect("source dir").flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.ends_with(".json") && keep(&name) {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    let source = p.parent().and_then(|d| d.file_name()).map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    format!("{source}/{}", p.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sample(dir: &Path, rel_path: &str) -> String {
    read(&dir.join(rel_path))
}

fn dec(s: &str) -> Fixed {
    Fixed::parse(s).expect("decimal")
}

/// The REST list of a sample, sorted the way `PrivateRest` sorts it, with the skips counted.
fn rest_list<R>(text: &str, stats: &PrivateStats) -> Sorted<R::Typed>
where
    R: scalper::connectors::bybit_private::messages::RawItem + serde::de::DeserializeOwned,
{
    let v: Value = serde_json::from_str(text).expect("json");
    let page: Page<R> = envelope_result(v).expect("ok envelope");
    let sorted = sort_items(&page.list);
    stats.count_skipped("rest", &sorted.skipped);
    sorted
}

#[test]
fn every_real_private_ws_sample_decodes_through_the_connector() {
    let Some(dir) = real_samples_dir() else { return };
    let paths = files(&dir, |n| n.starts_with("ws_private__"));
    assert_eq!(paths.len(), 11, "private WS samples: {:?}", paths.iter().map(|p| rel(p)).collect::<Vec<_>>());
    let stats = PrivateStats::default();
    let mut checked = 0;
    for p in &paths {
        let name = rel(p);
        let frame = parse_private_frame(&read(p)).unwrap_or_else(|e| panic!("{name}: {e}"));
        stats.count_skipped("ws", frame.skipped());
        match (name.as_str(), &frame) {
            ("bybit-docs/ws_private__execution.json", PrivateFrame::Executions { ts_ms, executions, skipped }) => {
                assert_eq!((*ts_ms, executions.len(), skipped.len()), (Some(1_746_270_400_355), 1, 0));
                let x = &executions[0];
                assert_eq!(
                    (x.symbol.as_str(), x.side, x.exec_price, x.exec_qty),
                    ("BTCUSDT", Side::Sell, px("95900.1"), qty("0.5"))
                );
                assert_eq!((x.exec_fee, x.closed_size, x.exec_pnl), (dec("26.3725275"), qty("0.5"), Some(dec("0.05"))));
                assert!(x.is_trade() && !x.is_maker);
                assert_eq!(x.exec_time_ms, 1_746_270_400_353);
            }
            ("bybit-docs/ws_private__execution_2024.json", PrivateFrame::Executions { executions, skipped, .. }) => {
                assert_eq!((executions.len(), skipped.len()), (1, 0));
                let x = &executions[0];
                assert_eq!((x.symbol.as_str(), x.exec_price, x.exec_qty), ("XRPUSDT", px("0.3374"), qty("25")));
                assert_eq!((x.closed_size, x.exec_pnl), (Qty::ZERO, None), "closedSize \"\" and no execPnl");
            }
            ("bybit-docs/ws_private__order_option.json", PrivateFrame::Orders { orders, skipped, .. }) => {
                // The option order of the all-in-one topic is skipped alone, never taken as ours.
                assert!(orders.is_empty(), "{orders:?}");
                assert_eq!(skipped.len(), 1);
                assert_eq!((skipped[0].topic, skipped[0].reason), (ItemTopic::Order, SkipReason::Category));
                assert_eq!(skipped[0].symbol, "ETH-30DEC22-1400-C");
            }
            ("bybit-docs/ws_private__position.json", PrivateFrame::Positions { positions, skipped, .. }) => {
                assert_eq!((positions.len(), skipped.len()), (1, 0));
                let p = &positions[0];
                assert_eq!((p.symbol.as_str(), p.side, p.size, p.avg_price), ("BTCUSDT", None, Qty::ZERO, None));
                assert_eq!((p.position_idx, p.mark_price, p.cur_realised_pnl), (2, Some(px("28184.5")), dec("1.26")));
                assert!(p.to_snapshot().is_none(), "a closed position is flat");
            }
            ("bybit-docs/ws_private__position_2023.json", PrivateFrame::Positions { positions, skipped, .. }) => {
                assert_eq!((positions.len(), skipped.len()), (1, 0));
                let p = &positions[0];
                assert_eq!((p.symbol.as_str(), p.side, p.size), ("XRPUSDT", Some(Side::Buy), qty("75")));
                assert_eq!((p.avg_price, p.leverage), (Some(px("0.3615")), Some(dec("10"))));
                assert_eq!(p.unrealised_pnl, dec("-1.8075"), "PnL may be negative");
            }
            ("bybit-docs/ws_private__wallet.json", PrivateFrame::Wallet { wallets, skipped, .. }) => {
                assert_eq!((wallets.len(), skipped.len()), (1, 0));
                let w = &wallets[0];
                assert!(w.unified && w.not_unified_reason().is_none());
                assert_eq!((w.total_equity, w.total_wallet_balance), (dec("10262.91335023"), dec("9684.46297164")));
            }
            ("furnace/ws_private__execution_market.json", PrivateFrame::Executions { executions, skipped, .. }) => {
                assert_eq!((executions.len(), skipped.len()), (2, 0));
                let sizes: Vec<Qty> = executions.iter().map(|x| x.exec_qty).collect();
                assert_eq!(sizes, vec![qty("1"), qty("9")]);
                assert!(executions.iter().all(|x| x.symbol.as_str() == "XRPUSDT" && x.side == Side::Buy));
                assert_eq!(executions[1].exec_price, px("3.1427"));
            }
            ("furnace/ws_private__order_new.json", PrivateFrame::Orders { orders, skipped, .. }) => {
                assert_eq!((orders.len(), skipped.len()), (1, 0));
                let o = &orders[0];
                assert_eq!((o.symbol.as_str(), o.side, o.status.clone()), ("XRPUSDT", Side::Buy, OrderStatus::New));
                assert_eq!(
                    (o.price, o.qty, o.leaves_qty, o.avg_price),
                    (Some(px("2.5293")), qty("10"), qty("10"), None)
                );
            }
            ("furnace/ws_private__position.json", PrivateFrame::Positions { positions, skipped, .. }) => {
                assert_eq!((positions.len(), skipped.len()), (1, 0));
                let p = &positions[0];
                assert_eq!(
                    (p.symbol.as_str(), p.side, p.size, p.avg_price),
                    ("XRPUSDT", Some(Side::Buy), qty("4"), Some(px("2.7862")))
                );
            }
            ("furnace/ws_private__wallet.json", PrivateFrame::Wallet { wallets, .. }) => {
                let w = &wallets[0];
                assert!(w.unified);
                assert_eq!(w.total_equity, dec("1001.52819962"));
                assert_eq!(w.coin("USDT").map(|c| c.wallet_balance), Some(dec("1000.05007561")));
            }
            ("moxt/ws_private__wallet_contract_account.json", PrivateFrame::Wallet { wallets, skipped, .. }) => {
                // A classic account decodes, but is never taken for an equity of 0.
                assert_eq!((wallets.len(), skipped.len()), (1, 0));
                let w = &wallets[0];
                assert!(!w.unified);
                let why = w.not_unified_reason().expect("classic account refused");
                assert!(why.contains("CONTRACT") && why.contains("Unified Trading Account"), "{why}");
            }
            (other, f) => panic!("{other}: unexpected {f:?}"),
        }
        checked += 1;
    }
    assert_eq!(checked, paths.len());
    let s = stats.snapshot();
    assert_eq!(s.skipped(ItemTopic::Order, SkipReason::Category), 1, "the option order");
    let total: u64 = ItemTopic::ALL
        .iter()
        .flat_map(|t| SkipReason::ALL.iter().map(move |r| (*t, *r)))
        .map(|(t, r)| s.skipped(t, r))
        .sum();
    assert_eq!(total, 1, "nothing else is skipped");
}

#[test]
fn every_real_private_rest_sample_decodes_through_the_connector() {
    let Some(dir) = real_samples_dir() else { return };
    let paths = files(&dir, |n| PRIVATE_REST.iter().any(|p| n.starts_with(p)));
    assert!(paths.len() >= 30, "only {} private REST samples", paths.len());
    let stats = PrivateStats::default();
    let mut api_errors = 0;
    for p in &paths {
        let name = rel(p);
        let text = read(p);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let code = v["retCode"].as_i64().unwrap_or_else(|| panic!("{name}: no retCode"));
        if code != 0 {
            // Every error answer is a typed Api error, and its text is safe to log.
            let err = envelope_result::<Value>(v.clone()).expect_err(&name);
            let BybitError::Api { code: c, msg } = &err else { panic!("{name}: {err:?}") };
            assert_eq!(*c, code, "{name}");
            let safe = redact_exchange_text(msg, "de21RcqOIH8Gfxvxvv1");
            assert!(!safe.contains("de21RcqOIH8Gfxvxvv1"), "{name}: {safe}");
            if code == 10004 {
                assert_eq!(safe, "error sign! origin_string[***]", "{name}");
            }
            api_errors += 1;
            continue;
        }
        let file = p.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
        if file.starts_with("rest_execution_list__") {
            let s = rest_list::<RawExecution>(&text, &stats);
            // The docs' example is an ETHPERP (USDC perpetual) fill of the `linear` category.
            assert!(s.kept.is_empty(), "{name}: {:?}", s.kept);
            assert_eq!(s.skipped.len(), 1, "{name}");
            assert_eq!((s.skipped[0].reason, s.skipped[0].symbol.as_str()), (SkipReason::Symbol, "ETHPERP"));
        } else if file.starts_with("rest_order_realtime__") {
            let s = rest_list::<RawOrder>(&text, &stats);
            assert!(s.skipped.is_empty(), "{name}: {:?}", s.skipped);
            match name.as_str() {
                "bybit-docs/rest_order_realtime__linear.json" => {
                    let o = &s.kept[0];
                    assert_eq!((o.symbol.as_str(), o.order_link_id.as_str()), ("ETHUSDT", "test-000005"));
                    assert_eq!(
                        (o.price, o.qty, o.avg_price, o.trigger_price),
                        (Some(px("1600")), qty("0.1"), None, None)
                    );
                    assert!(o.status.is_open());
                }
                "furnace/rest_order_realtime__cancelled_with_cursor.json" => {
                    let o = &s.kept[0];
                    assert_eq!(
                        (o.symbol.as_str(), o.status.clone(), o.qty),
                        ("XRPUSDT", OrderStatus::Cancelled, qty("4"))
                    );
                    assert_eq!(o.leaves_qty, Qty::ZERO, "leavesQty \"\"");
                }
                "moxt/rest_order_realtime__empty.json" => assert!(s.kept.is_empty()),
                other => panic!("{other}: not expected"),
            }
        } else if file.starts_with("rest_position_list__") {
            let s = rest_list::<RawPosition>(&text, &stats);
            assert!(s.skipped.is_empty(), "{name}");
            let p0 = &s.kept[0];
            assert_eq!(
                (p0.symbol.as_str(), p0.side, p0.size, p0.avg_price),
                ("XRPUSDT", Some(Side::Buy), qty("100"), Some(px("0.3615")))
            );
            assert_eq!((p0.take_profit, p0.stop_loss), (None, None));
        } else if file.starts_with("rest_order_create__") || file.starts_with("rest_order_cancel__") {
            let ack: OrderAck = envelope_result(v).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!ack.order_id.is_empty(), "{name}");
        } else if file.starts_with("rest_set_leverage__") {
            envelope_result::<Value>(v).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if file.starts_with("rest_wallet__") {
            let r: WalletResult = envelope_result(v).unwrap_or_else(|e| panic!("{name}: {e}"));
            let w = r.list[0].typed().unwrap_or_else(|e| panic!("{name}: {e}"));
            match name.as_str() {
                "bybit-docs/rest_wallet__unified.json" => {
                    assert!(w.unified);
                    assert_eq!(w.total_equity, dec("3.31216591"));
                }
                "furnace/rest_wallet__unified.json" => {
                    assert!(w.unified);
                    assert_eq!((w.total_equity, w.total_available_balance), (dec("999.729"), dec("839.77236")));
                }
                "moxt/rest_wallet__contract_account.json" => {
                    assert!(!w.unified && w.not_unified_reason().is_some(), "classic account refused");
                    assert_eq!(w.account_type, "CONTRACT");
                }
                other => panic!("{other}: not expected"),
            }
        } else {
            panic!("{name}: success answer of an unexpected endpoint");
        }
    }
    assert!(api_errors >= 12, "only {api_errors} error samples");
    let s = stats.snapshot();
    assert_eq!(s.skipped(ItemTopic::Execution, SkipReason::Symbol), 1, "the ETHPERP execution");
}

/// `text` with `data[i][field]` (WS) or `result.list[i][field]` (REST) replaced by `value`.
fn mutate(text: &str, i: usize, field: &str, value: &str) -> String {
    let mut v: Value = serde_json::from_str(text).expect("json");
    let item = if v.get("data").is_some() { &mut v["data"][i] } else { &mut v["result"]["list"][i] };
    assert!(item.get(field).is_some(), "{field} not in the sample");
    item[field] = Value::String(value.into());
    v.to_string()
}

fn invalid_only(skipped: &[scalper::connectors::bybit_private::Skipped], field: &str) {
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].reason, SkipReason::Invalid);
    assert!(skipped[0].detail.contains(field), "{:?}", skipped[0].detail);
}

#[test]
fn impossible_values_in_real_ws_samples_are_refused_item_by_item() {
    let Some(dir) = real_samples_dir() else { return };
    // Executions: two fills in one frame; the mutated one is refused, the other kept.
    let execs = sample(&dir, "furnace/ws_private__execution_market.json");
    for (field, bad) in
        [("execQty", "-9"), ("execPrice", "-3.1427"), ("execPrice", "0"), ("execValue", "-1"), ("closedSize", "-1")]
    {
        match parse_private_frame(&mutate(&execs, 1, field, bad)).expect("frame") {
            PrivateFrame::Executions { executions, skipped, .. } => {
                assert_eq!(executions.len(), 1, "{field}={bad}");
                assert_eq!(executions[0].exec_qty, qty("1"), "the sound fill is kept");
                invalid_only(&skipped, field);
            }
            f => panic!("{f:?}"),
        }
    }
    // Orders: negative price, quantity, fills or average price are impossible.
    let order = sample(&dir, "furnace/ws_private__order_new.json");
    for (field, bad) in
        [("price", "-2.5293"), ("qty", "-10"), ("leavesQty", "-1"), ("cumExecQty", "-1"), ("avgPrice", "-1")]
    {
        let f = parse_private_frame(&mutate(&order, 0, field, bad)).expect("frame");
        let PrivateFrame::Orders { orders, skipped, .. } = f else { panic!("{f:?}") };
        assert!(orders.is_empty(), "{field}={bad}");
        invalid_only(&skipped, field);
    }
    // ... while what Bybit does send stays accepted: "0"/"" average price, market price "0".
    for (field, ok) in [("avgPrice", "0"), ("avgPrice", ""), ("price", "0")] {
        let f = parse_private_frame(&mutate(&order, 0, field, ok)).expect("frame");
        assert_eq!(f.skipped().len(), 0, "{field}={ok:?} is legal");
    }
    // Positions: a negative size or price, or a size without a side, would be a wrong position.
    let pos = sample(&dir, "bybit-docs/ws_private__position_2023.json");
    for (field, bad) in
        [("size", "-75"), ("entryPrice", "-0.3615"), ("markPrice", "-1"), ("leverage", "-10"), ("side", "")]
    {
        let f = parse_private_frame(&mutate(&pos, 0, field, bad)).expect("frame");
        let PrivateFrame::Positions { positions, skipped, .. } = f else { panic!("{f:?}") };
        assert!(positions.is_empty(), "{field}={bad:?}");
        invalid_only(&skipped, if field == "side" { "without a side" } else { field });
    }
    // A closed position ("0" size, no side) is legal.
    let closed = mutate(&mutate(&pos, 0, "size", "0"), 0, "side", "");
    assert_eq!(parse_private_frame(&closed).expect("frame").skipped().len(), 0);
    // A sound item next to a refused one in the same frame survives.
    let mut v: Value = serde_json::from_str(&pos).expect("json");
    let mut bad = v["data"][0].clone();
    bad["size"] = Value::String("-1".into());
    v["data"].as_array_mut().expect("data").push(bad);
    let f = parse_private_frame(&v.to_string()).expect("frame");
    let PrivateFrame::Positions { positions, skipped, .. } = f else { panic!("{f:?}") };
    assert_eq!((positions.len(), skipped.len()), (1, 1));
    assert_eq!(positions[0].size, qty("75"));
}

#[test]
fn impossible_values_in_real_rest_samples_are_counted_decode_errors() {
    let Some(dir) = real_samples_dir() else { return };
    let stats = PrivateStats::default();
    let orders = sample(&dir, "bybit-docs/rest_order_realtime__linear.json");
    for (field, bad) in [("price", "-1600"), ("qty", "-0.10"), ("cumExecValue", "-1"), ("triggerPrice", "-1")] {
        let s = rest_list::<RawOrder>(&mutate(&orders, 0, field, bad), &stats);
        assert!(s.kept.is_empty(), "{field}={bad}");
        invalid_only(&s.skipped, field);
    }
    let positions = sample(&dir, "bybit-docs/rest_position_list__linear_2023.json");
    for (field, bad) in [("size", "-100"), ("avgPrice", "-0.3615"), ("markPrice", "-0.3432"), ("side", "")] {
        let s = rest_list::<RawPosition>(&mutate(&positions, 0, field, bad), &stats);
        assert!(s.kept.is_empty(), "{field}={bad:?}");
        invalid_only(&s.skipped, if field == "side" { "without a side" } else { field });
    }
    // The execution sample is a USDC perpetual's: as a USDT one, its mutations are refused.
    let execs = mutate(&sample(&dir, "bybit-docs/rest_execution_list__linear.json"), 0, "symbol", "ETHUSDT");
    assert_eq!(rest_list::<RawExecution>(&execs, &stats).kept.len(), 1, "the sound one decodes");
    for (field, bad) in [("execQty", "-0.1"), ("execPrice", "-1190.15"), ("execValue", "-119.015")] {
        let s = rest_list::<RawExecution>(&mutate(&execs, 0, field, bad), &stats);
        assert!(s.kept.is_empty(), "{field}={bad}");
        invalid_only(&s.skipped, field);
    }
    let s = stats.snapshot();
    assert_eq!(s.skipped(ItemTopic::Order, SkipReason::Invalid), 4);
    assert_eq!(s.skipped(ItemTopic::Position, SkipReason::Invalid), 4);
    assert_eq!(s.skipped(ItemTopic::Execution, SkipReason::Invalid), 3);
}
