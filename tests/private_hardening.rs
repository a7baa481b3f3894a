//! The private connector against the simulator where Bybit's real behaviour is hostile: frames
//! that mix spot, option and USDC items with ours, last pages that still carry a cursor, a
//! classic (non-unified) account, and error texts that carry the API key.

use scalper::connectors::bybit_private::venue::{BybitVenue, BybitVenueConfig};
use scalper::connectors::bybit_private::{
    Credentials, ItemTopic, PrivateError, PrivateMsg, PrivateRest, PrivateRestConfig, PrivateStats, PrivateStream,
    PrivateStreamConfig, PrivateUpdate, SkipReason,
};
use scalper::connectors::bybit_public::{ConnectorStats, PublicRest, RestConfig};
use scalper::connectors::simulator::{ClockMode, SimConfig, SimExchange, SimHandle};
use scalper::domain::{Qty, Side, Symbol};
use scalper::engine::event::{EventKind, FeedState};
use scalper::execution::order::{OrderKind, OrderRequest};
use scalper::execution::venue::VenueReport;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sim-api-key";
const SECRET: &str = "sim-api-secret";
const BTC: &str = "BTCUSDT";

async fn sim(symbols: usize) -> SimHandle {
    let cfg = SimConfig {
        symbols,
        seed: 11,
        tick_interval_ms: 50,
        clock: ClockMode::RealTime { speed: 1.0 },
        ..SimConfig::default()
    };
    SimExchange::start(cfg).await.expect("simulator starts")
}

fn client(sim: &SimHandle, secret: &str) -> Arc<PrivateRest> {
    let mut c = PrivateRestConfig::new(&sim.rest_url());
    c.timeout = Duration::from_secs(2);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.jitter_seed = Some(7);
    let creds = Credentials::new(KEY, secret).expect("credentials");
    Arc::new(PrivateRest::with_config(c, creds, Arc::new(PrivateStats::default())).expect("client"))
}

fn stream_cfg(sim: &SimHandle, topics: &[&str]) -> PrivateStreamConfig {
    let mut c = PrivateStreamConfig::new(&sim.private().ws_private_url());
    c.topics = topics.iter().map(|t| t.to_string()).collect();
    c.ack_timeout = Duration::from_secs(2);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c.jitter_seed = Some(3);
    c
}

fn market(link: &str, qty: &str) -> OrderRequest {
    OrderRequest {
        client_id: link.into(),
        symbol: Symbol::new(BTC),
        side: Side::Buy,
        kind: OrderKind::Market,
        qty: Qty::parse(qty).expect("qty"),
        reduce_only: false,
    }
}

/// Runs one stream on `topics`, fills a market order, and returns what the stream delivered
/// once the fill and its position update are in, with the client's counters.
async fn fill_through(
    topics: &[&str],
    link: &str,
) -> (Vec<PrivateMsg>, scalper::connectors::bybit_private::PrivateStatsSnapshot) {
    let sim = sim(3).await;
    let rest = client(&sim, SECRET);
    let (tx, mut rx) = mpsc::channel(1_024);
    let cancel = CancellationToken::new();
    let stream = PrivateStream::new(stream_cfg(&sim, topics), rest.clone()).start(tx, cancel.clone());
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.iter().any(|m: &PrivateMsg| matches!(m.update, PrivateUpdate::Reconciled(_))) {
        seen.push(tokio::time::timeout_at(deadline, rx.recv()).await.expect("reconciled in time").expect("open"));
    }
    rest.create_order(&market(link, "0.010")).await.expect("order placed");
    let done = |seen: &[PrivateMsg]| {
        let filled = seen.iter().any(|m| matches!(&m.update, PrivateUpdate::Execution(x) if x.order_link_id == link));
        let position = seen.iter().any(|m| matches!(&m.update, PrivateUpdate::Position(p) if !p.size.is_zero()));
        let order = seen.iter().any(|m| matches!(&m.update, PrivateUpdate::Order(o) if o.order_link_id == link));
        filled && position && order
    };
    while !done(&seen) {
        seen.push(tokio::time::timeout_at(deadline, rx.recv()).await.expect("fill pushed in time").expect("open"));
    }
    // Let any stray frame of the same change arrive.
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        seen.push(m);
    }
    stream.shutdown();
    stream.join().await;
    (seen, rest.stats().snapshot())
}

fn assert_only_ours(seen: &[PrivateMsg], link: &str) {
    let mut exec_ids = HashSet::new();
    let mut filled = 0;
    for m in seen {
        match &m.update {
            PrivateUpdate::Order(o) => {
                assert_eq!((o.symbol.as_str(), o.order_link_id.as_str()), (BTC, link), "only our linear order: {o:?}")
            }
            PrivateUpdate::Execution(x) => {
                assert_eq!(x.symbol.as_str(), BTC, "{x:?}");
                assert!(exec_ids.insert(x.exec_id.clone()), "execution {} twice", x.exec_id);
                assert!(!x.exec_id.ends_with("-spot") && !x.exec_id.ends_with("-usdc"), "a foreign fill: {x:?}");
                filled += x.exec_qty.raw();
            }
            PrivateUpdate::Position(p) => assert!(p.symbol.as_str() == BTC || p.size.is_zero(), "{p:?}"),
            _ => {}
        }
    }
    assert_eq!(Qty::from_raw(filled), Qty::parse("0.01").expect("qty"), "our fill exactly once");
}

#[tokio::test]
async fn all_in_one_topics_mix_spot_and_option_items_and_only_ours_get_through() {
    let (seen, stats) = fill_through(&["order", "execution", "position", "wallet"], "h-mixed-1").await;
    assert_only_ours(&seen, "h-mixed-1");
    // Each order / execution / position frame carried a spot and an option item.
    for topic in [ItemTopic::Order, ItemTopic::Execution, ItemTopic::Position] {
        let n = stats.skipped(topic, SkipReason::Category);
        assert!(n >= 2 && n % 2 == 0, "{topic:?}: {n} foreign-category items skipped");
    }
    assert_eq!(stats.skipped(ItemTopic::Order, SkipReason::Invalid), 0);
    assert_eq!(stats.ws_malformed, 0, "no frame was thrown away");
}

#[tokio::test]
async fn linear_topics_skip_usdc_contracts_one_by_one() {
    let (seen, stats) =
        fill_through(&["order.linear", "execution.linear", "position.linear", "wallet"], "h-lin-1").await;
    assert_only_ours(&seen, "h-lin-1");
    for topic in [ItemTopic::Order, ItemTopic::Execution, ItemTopic::Position] {
        assert!(stats.skipped(topic, SkipReason::Symbol) >= 1, "{topic:?}: the BTCPERP item");
        assert_eq!(stats.skipped(topic, SkipReason::Category), 0, "{topic:?}");
    }
    assert!(seen.iter().any(|m| matches!(m.update, PrivateUpdate::Wallet(_))), "the wallet frame is kept");
}

#[tokio::test]
async fn instrument_paging_with_a_last_page_cursor_returns_every_symbol_once() {
    let sim = sim(20).await;
    let mut cfg = RestConfig::new(&sim.rest_url());
    cfg.page_limit = 7;
    cfg.include_prelaunch = false;
    let stats = Arc::new(ConnectorStats::default());
    let rest = PublicRest::with_config(cfg, stats.clone()).expect("client");
    let got = rest.instruments_linear().await.expect("universe");
    let names: Vec<&str> = got.iter().map(|i| i.symbol.as_str()).collect();
    let unique: HashSet<&str> = names.iter().copied().collect();
    assert_eq!((names.len(), unique.len()), (20, 20), "{names:?}");
    // 7 + 7 + 6, then the last page's cursor leads to one empty page.
    assert_eq!(stats.snapshot().rest_requests, 4);
}

#[tokio::test]
async fn private_lists_follow_last_page_cursors_without_duplicates() {
    let sim = sim(3).await;
    let rest = client(&sim, SECRET);
    rest.create_order(&market("h-page-1", "0.010")).await.expect("placed");
    let execs = rest.executions_since(0).await.expect("executions");
    let ids: HashSet<&str> = execs.iter().map(|x| x.exec_id.as_str()).collect();
    assert!(!execs.is_empty() && ids.len() == execs.len(), "{execs:?}");
    let positions = rest.positions().await.expect("positions");
    assert_eq!(positions.iter().filter(|p| p.symbol.as_str() == BTC).count(), 1, "{positions:?}");
    let before = rest.stats().snapshot().rest_requests;
    rest.open_orders(None).await.expect("orders");
    // The (empty) first page has an empty cursor: one request, no follow-up.
    assert_eq!(rest.stats().snapshot().rest_requests - before, 1);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_bad_signature_error_is_returned_and_logged_without_the_key() {
    let sim = sim(3).await;
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rest = client(&sim, "not-the-secret");
    let err = rest.wallet_balance().await.expect_err("bad signature refused");
    assert_eq!(err.ret_code(), Some(10004));
    let text = format!("{err} / {err:?}");
    assert!(!text.contains(KEY), "the key leaked: {text}");
    assert!(text.contains("origin_string[***]"), "{text}");
    // The order path reports the same redacted text (it becomes a core event).
    let create = rest.create_order(&market("h-sign-1", "0.010")).await.expect_err("refused");
    assert!(!format!("{create} {create:?}").contains(KEY), "{create}");
    let logged = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf8");
    assert!(logged.contains("10004"), "the failure is logged: {logged}");
    assert!(!logged.contains(KEY), "the key leaked into the log: {logged}");
}

#[tokio::test]
async fn a_classic_account_is_refused_with_a_reason_never_read_as_equity_zero() {
    let sim = sim(3).await;
    sim.private().set_classic_account(true);
    let rest = client(&sim, SECRET);
    match rest.wallet_balance().await {
        Err(PrivateError::AccountUnsupported(why)) => {
            assert!(why.contains("CONTRACT") && why.contains("Unified Trading Account"), "{why}")
        }
        other => panic!("expected AccountUnsupported, got {other:?}"),
    }
    assert_eq!(rest.stats().snapshot().wallet_not_unified, 1);

    // The exchange edge tells the core why, and never reports a balance of the classic wallet.
    let (tx, mut rx) = mpsc::channel(1_024);
    let cancel = CancellationToken::new();
    let mut cfg = BybitVenueConfig::new(&sim.private().ws_private_url());
    cfg.reconcile_interval = Duration::from_millis(100);
    cfg.stream.backoff_base = Duration::from_millis(20);
    cfg.stream.backoff_max = Duration::from_millis(100);
    let venue = BybitVenue::start(rest.clone(), cfg, tx, cancel.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut reason = None;
    while reason.is_none() {
        let ev = tokio::time::timeout_at(deadline, rx.recv()).await.expect("a report in time").expect("open");
        match ev.kind {
            EventKind::Venue(VenueReport::AccountUnsupported { reason: r }) => reason = Some(r),
            EventKind::Venue(VenueReport::Balance(b)) => panic!("a classic wallet reported as balance {b:?}"),
            EventKind::Venue(VenueReport::Account { balance: Some(b), .. }) => panic!("classic balance {b:?}"),
            EventKind::Venue(VenueReport::Feed(FeedState::Connected)) => panic!("reconciled a classic account"),
            _ => {}
        }
    }
    assert!(reason.is_some_and(|r| r.contains("Unified Trading Account")));

    // Upgraded to unified, the same edge reconciles and reports the real equity.
    sim.private().set_classic_account(false);
    let mut balance = None;
    while balance.is_none() {
        let ev = tokio::time::timeout_at(deadline, rx.recv()).await.expect("a balance in time").expect("open");
        if let EventKind::Venue(VenueReport::Account { balance: Some(b), .. }) = ev.kind {
            balance = Some(b);
        }
    }
    assert!(balance.is_some_and(|b| b.equity.raw() > 0));
    cancel.cancel();
    venue.stream().join().await;
}

/// The core's side: a classic account's reason is what the LIVE refusal says, and a unified
/// wallet lifts it.
#[test]
fn the_core_refuses_live_with_the_classic_account_reason() {
    use scalper::config::Config;
    use scalper::domain::EventTime;
    use scalper::engine::clock::FrozenClock;
    use scalper::engine::core::CorePipeline;
    use scalper::engine::event::{ControlCommand, Event, Mode};
    use scalper::engine::output::Output;
    use scalper::engine::{DegradedPolicy, Engine};
    use scalper::execution::integrity::VenueSnapshot;
    use scalper::execution::venue::{AccountBalance, SnapshotCause};
    use scalper::risk::money::Money;

    let cfg = Config { mode: Mode::DryRun, ..Config::default() };
    let mut e = Engine::new(
        CorePipeline::new(Arc::new(cfg)),
        FrozenClock,
        DegradedPolicy { tick_budget_nanos: u64::MAX, recover_ticks: 1 },
    );
    let mut seq = 0;
    let mut step = |e: &mut Engine<CorePipeline, FrozenClock>, kind: EventKind| {
        seq += 1;
        e.on_event(&Event::new(seq, EventTime::local(1_000_000 + seq as i64 * 100), kind))
    };
    let refusals = |out: &scalper::engine::output::Outputs| -> Vec<String> {
        out.items
            .iter()
            .filter_map(|o| match o {
                Output::Record(r) if r.body["event"] == "MODE_REFUSED" => r.body["reason"].as_str().map(String::from),
                _ => None,
            })
            .collect()
    };
    let m = Money::parse("5000").expect("money");
    let account = || {
        EventKind::Venue(VenueReport::Account {
            snapshot: VenueSnapshot::default(),
            balance: Some(AccountBalance { equity: m, wallet_balance: m, available: m }),
            cause: SnapshotCause::Reconnect,
        })
    };
    step(&mut e, EventKind::Venue(VenueReport::Feed(FeedState::Connected)));
    step(&mut e, account());
    let why = "the Bybit account is not a Unified Trading Account (accountType \"CONTRACT\", no totalEquity)";
    step(&mut e, EventKind::Venue(VenueReport::AccountUnsupported { reason: why.into() }));
    let out = step(&mut e, EventKind::Control(ControlCommand::EnterLive));
    assert_eq!(refusals(&out), vec![why.to_string()], "{out:?}");
    assert_eq!(e.pipeline().mode(), Mode::DryRun);
    step(&mut e, account());
    let out = step(&mut e, EventKind::Control(ControlCommand::EnterLive));
    assert!(refusals(&out).is_empty(), "{out:?}");
    assert_eq!(e.pipeline().mode(), Mode::Live);
}

/// Skips and classic-account refusals counted by the connector reach `/metrics`.
#[test]
fn skipped_items_and_classic_wallets_are_exported() {
    use scalper::connectors::bybit_private::messages::parse_private_frame;
    let m = scalper::monitoring::metrics::Metrics::new();
    let stats = m.private_stats();
    let option_order = r#"{"topic":"order","creationTime":1,"data":[
        {"category":"option","symbol":"ETH-30DEC22-1400-C","side":"Sell","qty":"1","orderStatus":"Filled"},
        {"category":"linear","symbol":"BTCPERP","side":"Buy","qty":"1","orderStatus":"New"},
        {"category":"linear","symbol":"BTCUSDT","side":"Buy","qty":"-1","orderStatus":"New"}]}"#;
    let f = parse_private_frame(option_order).expect("frame");
    stats.count_skipped("ws", f.skipped());
    stats.wallet_not_unified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    m.refresh_derived();
    let text = m.render();
    for line in [
        r#"scalper_private_items_skipped_total{reason="category",topic="order"} 1"#,
        r#"scalper_private_items_skipped_total{reason="symbol",topic="order"} 1"#,
        r#"scalper_private_items_skipped_total{reason="invalid",topic="order"} 1"#,
        "scalper_private_account_not_unified_total 1",
    ] {
        assert!(text.contains(line), "missing {line}");
    }
}
