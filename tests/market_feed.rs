//! The engine against the Bybit v5 simulator over real loopback sockets: universe, books kept
//! equal to the exchange's, injected faults survived and recovered from, listings and delistings.

use scalper::config::paths::Paths;
use scalper::config::Config;
use scalper::connectors::simulator::{ClockMode, CrossedKind, SimConfig, SimExchange, SimHandle, UniverseEvent};
use scalper::domain::Symbol;
use scalper::engine::event::FeedState;
use scalper::engine::runtime::{self, EngineSnapshot, LiveEngine, Probe, RunOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

struct Harness {
    sim: SimHandle,
    snap: watch::Receiver<EngineSnapshot>,
    probes: mpsc::Sender<Probe>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(sim_cfg: SimConfig) -> Harness {
        let sim = SimExchange::start(sim_cfg).await.expect("simulator starts");
        let mut cfg = Config { endpoints: sim.endpoints(), ..Config::default() };
        cfg.universe.refresh_s = 1;
        cfg.universe.ws_ping_interval_ms = 300;
        cfg.universe.ws_pong_timeout_ms = 1_000;
        cfg.universe.ws_data_timeout_ms = 1_500;
        cfg.server.http_addr = "127.0.0.1:0".into();
        cfg.server.grpc_addr = "127.0.0.1:0".into();
        let dir = tempfile::tempdir().unwrap();
        let (snap_tx, snap) = watch::channel(EngineSnapshot::default());
        let (probes, probe_rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let opts = RunOptions {
            snapshot_tx: Some(snap_tx),
            probes: Some(probe_rx),
            ..RunOptions::new(Arc::new(cfg), Paths::with_data_dir(dir.path()), cancel.clone())
        };
        let task = tokio::spawn(runtime::run(opts));
        Harness { sim, snap, probes, cancel, task, _dir: dir }
    }

    async fn probe<T: Send + 'static>(&self, f: impl FnOnce(&LiveEngine) -> T + Send + 'static) -> T {
        let (tx, rx) = oneshot::channel();
        let p: Probe = Box::new(move |e| {
            let _ = tx.send(f(e));
        });
        self.probes.send(p).await.expect("engine running");
        rx.await.expect("probe answered")
    }

    async fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&EngineSnapshot) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(&self.snap.borrow()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", *self.snap.borrow());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Freezes the exchange, lets the engine drain, and compares every book with the exchange's
    /// published view at the subscribed depth.
    async fn assert_books_equal_exchange(&self) -> usize {
        self.sim.pause().await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let books = self
            .probe(|e| {
                e.pipeline()
                    .symbols()
                    .map(|(s, m)| (s.clone(), m.book.max_depth(), m.book.is_valid(), m.book.to_levels()))
                    .collect::<Vec<_>>()
            })
            .await;
        let mut checked = 0;
        for (sym, depth, valid, (bids, asks)) in books {
            assert!(valid, "{sym}: book invalid at the end of the run");
            let Some(x) = self.sim.published_book(sym.as_str(), depth) else { continue };
            assert_eq!(bids, x.bids, "{sym}: bids differ from the exchange's");
            assert_eq!(asks, x.asks, "{sym}: asks differ from the exchange's");
            checked += 1;
        }
        self.sim.resume().await.unwrap();
        checked
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
        self.sim.shutdown().await;
    }
}

fn sim_config() -> SimConfig {
    SimConfig {
        seed: 7,
        symbols: 12,
        tick_interval_ms: 20,
        clock: ClockMode::RealTime { speed: 1.0 },
        events: vec![
            UniverseEvent::NewListing { symbol: "SIMNEWUSDT".into(), at_ms: 2_000 },
            UniverseEvent::Delisting { symbol: "SIM005USDT".into(), at_ms: 2_500 },
        ],
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_tracks_the_universe_and_keeps_books_equal_to_the_exchange() {
    let h = Harness::start(sim_config()).await;
    h.wait_for("all books valid", Duration::from_secs(20), |s| s.symbols >= 12 && s.valid_books == s.symbols).await;
    assert_eq!(h.snap.borrow().feed, Some(FeedState::Connected));

    // New listing picked up within 15 s of exchange time; delisting dropped.
    let listed_at = h.sim.start_time_ms() + 2_000;
    h.wait_for("the new listing", Duration::from_secs(20), |s| s.symbols >= 12).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen_at = loop {
        let (has_new, has_delisted) = h
            .probe(|e| {
                let p = e.pipeline();
                (p.symbol(&Symbol::new("SIMNEWUSDT")).is_some(), p.symbol(&Symbol::new("SIM005USDT")).is_some())
            })
            .await;
        if has_new && !has_delisted {
            break h.sim.now_ms();
        }
        assert!(
            Instant::now() < deadline,
            "listing/delisting not reflected (new={has_new}, delisted still there={has_delisted})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(seen_at - listed_at <= 15_000, "new listing seen {} ms after it listed", seen_at - listed_at);
    let cat = h.probe(|e| e.pipeline().universe().get(&Symbol::new("SIMNEWUSDT")).map(|m| m.category)).await;
    assert_eq!(cat, Some(scalper::domain::Category::Wild), "a new listing enters as Wild");
    h.wait_for("new listing's book", Duration::from_secs(10), |s| s.valid_books == s.symbols).await;

    let checked = h.assert_books_equal_exchange().await;
    assert!(checked >= 12, "compared {checked} books");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_survives_every_injected_fault_and_recovers() {
    let h = Harness::start(SimConfig { events: vec![], ..sim_config() }).await;
    h.wait_for("all books valid", Duration::from_secs(20), |s| s.symbols >= 12 && s.valid_books == s.symbols).await;

    // A skipped update id: the book is marked invalid, resynced, and valid again.
    h.sim.skip_update_id("SIM001USDT").unwrap();
    h.wait_for("gap detected", Duration::from_secs(10), |s| {
        s.counters.book_errors.get("gap").copied().unwrap_or(0) >= 1
    })
    .await;
    h.wait_for("books valid after the gap", Duration::from_secs(10), |s| s.valid_books == s.symbols).await;

    // A crossed book.
    h.sim.send_crossed_book("SIM002USDT", CrossedKind::Delta).unwrap();
    h.wait_for("crossed detected", Duration::from_secs(10), |s| {
        s.counters.book_errors.get("crossed").copied().unwrap_or(0) >= 1
    })
    .await;
    h.wait_for("books valid after the crossed book", Duration::from_secs(10), |s| s.valid_books == s.symbols).await;
    let resyncs = h.snap.borrow().counters.resyncs;
    assert!(resyncs >= 2, "each invalid book asked for a resync ({resyncs})");

    // A malformed frame: counted by the connector, nothing breaks.
    let before = h.snap.borrow().events_processed;
    h.sim.send_malformed_frame();
    h.wait_for("events keep flowing", Duration::from_secs(5), |s| s.events_processed > before + 100).await;
    assert_eq!(h.snap.borrow().feed, Some(FeedState::Connected));

    // Dropped connections: RECONNECTING, then CONNECTED with every book resynced.
    h.sim.drop_connections();
    let outages = h.snap.borrow().counters.feed_outages;
    h.wait_for("feed back after an outage", Duration::from_secs(15), |s| {
        s.counters.feed_outages > outages && s.feed == Some(FeedState::Connected)
    })
    .await;
    h.wait_for("books valid after reconnect", Duration::from_secs(10), |s| s.valid_books == s.symbols).await;

    // A silent (stale) feed: no data and no pongs on an open socket → reconnect and resync.
    let outages = h.snap.borrow().counters.feed_outages;
    h.sim.set_silent(true);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    h.sim.set_silent(false);
    h.wait_for("feed back after a stale feed", Duration::from_secs(15), |s| {
        s.counters.feed_outages > outages && s.feed == Some(FeedState::Connected)
    })
    .await;
    h.wait_for("books valid after the stale feed", Duration::from_secs(10), |s| s.valid_books == s.symbols).await;

    // Pongs refused: the heartbeat notices and the connection is replaced.
    let outages = h.snap.borrow().counters.feed_outages;
    h.sim.set_refuse_pongs(true);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    h.sim.set_refuse_pongs(false);
    h.wait_for("feed back after missing pongs", Duration::from_secs(15), |s| {
        s.counters.feed_outages > outages && s.feed == Some(FeedState::Connected)
    })
    .await;
    h.wait_for("books valid after missing pongs", Duration::from_secs(10), |s| s.valid_books == s.symbols).await;

    // REST errors during universe refreshes: the universe stays, nothing is dropped.
    h.sim.rest_http_errors(429, 3);
    h.sim.rest_ret_code_errors(10006, 3);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.snap.borrow().symbols, 12, "a failed refresh keeps the current universe");

    let checked = h.assert_books_equal_exchange().await;
    assert_eq!(checked, 12);
    h.stop().await;
}
