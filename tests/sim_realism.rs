//! Is the simulator's calm market realistic? The same statistics ([`MarketStats`]) are measured
//! on real market data (`../shared/realdata`, see its README) and on the simulator's calm market
//! (no scenario, manual clock, over loopback with the project's own frame parser), and every
//! simulator statistic must fall inside a band derived from the real ones.
//!
//! How a band is derived (see [`BANDS`]): the real symbols whose sample is large enough for that
//! statistic (a minimum number of returns, level samples or trades) give a range `[min, max]`;
//! the band widens it by a stated slack, multiplicative for scale-like statistics (rates,
//! ratios, volatility: real markets differ by symbol and day far more than by a few percent)
//! and additive for autocorrelations (a sample ACF over `n` points has a standard error of
//! about `1 / sqrt(n)`). The simulator is summarised by the median over its calm symbols, so one
//! unusual symbol does not decide the outcome.
//!
//! `cargo test --test sim_realism -- --nocapture` prints the side-by-side table. Without the
//! data directory the test prints a note and passes, unless `CI` is set (then it fails).

mod common;

use futures_util::{SinkExt, StreamExt};
use scalper::connectors::bybit_public::messages::{parse_ws_frame, WsMessage};
use scalper::connectors::simulator::{ClockMode, SimConfig, SimExchange};
use scalper::domain::EventTime;
use scalper::market::stats::{MarketStats, StatsSummary, SymbolStats};
use std::path::Path;
use std::time::Duration;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

/// The real sets (directories under `../shared/realdata`).
const SETS: [&str; 4] = ["binance_um_0718", "bybit5_linear", "bybit1_linear", "bybit5_xrp_ob500"];

/// Simulated calm market: symbols and seconds of market time (`SIM_SEED=<n>` changes the seed,
/// default 7).
const SIM_SYMBOLS: usize = 10;
const SIM_SECONDS: u64 = 600;
const SIM_SEED: u64 = 7;

/// Which sample a statistic needs before a real symbol can serve as a reference.
#[derive(Clone, Copy)]
enum Need {
    /// At least this many 1 s returns.
    Returns(usize),
    /// At least this many level-size samples.
    Levels(usize),
    /// At least this many trades.
    Trades(usize),
    /// At least this many seconds of data.
    Span(f64),
}

/// How the real range `[min, max]` is widened into the band.
#[derive(Clone, Copy)]
enum Slack {
    /// `[min * lo, max * hi]`.
    Mul(f64, f64),
    /// `[min - d, max + d]`.
    Add(f64),
    /// Fixed band `[lo, hi]` (the real range is shown for reference and must lie inside).
    Fixed(f64, f64),
}

struct Band {
    name: &'static str,
    get: fn(&SymbolStats) -> Option<f64>,
    need: Need,
    slack: Slack,
    why: &'static str,
}

/// The statistics and their bands.
const BANDS: [Band; 16] = [
    Band {
        name: "ret_std_bps",
        get: |s| s.ret_std_bps.filter(|v| *v > 0.0),
        need: Need::Returns(25),
        slack: Slack::Mul(0.5, 2.0),
        why: "1 s volatility differs by symbol and day; a factor 2 around the observed calm range",
    },
    Band {
        name: "ret_excess_kurtosis",
        get: |s| s.ret_excess_kurtosis,
        need: Need::Returns(300),
        slack: Slack::Mul(0.25, 3.0),
        why: "fat tails (real ~10-12 over 8 min); sample kurtosis is noisy, so only 'clearly fat, \
              not absurd'",
    },
    Band {
        name: "abs_ret_acf1",
        get: |s| s.abs_ret_acf1,
        need: Need::Returns(300),
        slack: Slack::Add(0.12),
        why: "volatility clustering at 1 s; +-0.12 is ~3 standard errors of a 600-point ACF",
    },
    Band {
        name: "abs_ret_acf5",
        get: |s| s.abs_ret_acf5,
        need: Need::Returns(300),
        slack: Slack::Add(0.12),
        why: "clustering decays within ~10 s; same +-0.12",
    },
    Band {
        name: "abs_ret_acf10",
        get: |s| s.abs_ret_acf10,
        need: Need::Returns(300),
        slack: Slack::Add(0.12),
        why: "same +-0.12",
    },
    Band {
        name: "level_p50",
        get: |s| s.level_p50,
        need: Need::Levels(400),
        slack: Slack::Mul(0.8, 1.25),
        why: "about 1 by construction (size / snapshot median)",
    },
    Band {
        name: "level_p90",
        get: |s| s.level_p90,
        need: Need::Levels(400),
        slack: Slack::Mul(0.8, 1.25),
        why: "real books range from flat alt books to majors full of tiny orders",
    },
    Band {
        name: "level_p99",
        get: |s| s.level_p99,
        need: Need::Levels(400),
        slack: Slack::Mul(0.8, 1.25),
        why: "a few very large levels near the touch",
    },
    Band {
        name: "level_share_12x",
        get: |s| s.level_share_large,
        need: Need::Levels(400),
        slack: Slack::Mul(0.8, 1.25),
        why: "share of levels >= 12x the snapshot median",
    },
    Band {
        name: "book_updates_per_s",
        get: |s| s.book_updates_per_s,
        need: Need::Span(4.0),
        slack: Slack::Mul(0.5, 2.0),
        why: "200-level streams push every 100 ms when anything changed (Binance-derived diffs \
              are faster)",
    },
    Band {
        name: "levels_per_update",
        get: |s| s.levels_per_update,
        need: Need::Span(4.0),
        slack: Slack::Mul(0.5, 2.0),
        why: "levels carried by one delta",
    },
    Band {
        name: "trades_per_s",
        get: |s| s.trades_per_s,
        need: Need::Trades(50),
        slack: Slack::Mul(0.25, 2.0),
        why: "the simulated universe spans majors and quiet alts",
    },
    Band {
        name: "trade_size_p90",
        get: |s| s.trade_size_p90,
        need: Need::Trades(50),
        slack: Slack::Mul(0.5, 2.0),
        why: "heavy-tailed trade sizes: most trades are tiny, a few are huge",
    },
    Band {
        name: "trade_size_p99",
        get: |s| s.trade_size_p99,
        need: Need::Trades(200),
        slack: Slack::Mul(0.33, 3.0),
        why: "p99 needs a few hundred trades; factor 3 for its noise",
    },
    Band {
        name: "spread_ticks_p50",
        get: |s| s.spread_ticks_p50,
        need: Need::Span(4.0),
        slack: Slack::Fixed(1.0, 2.0),
        why: "liquid perps quote a one-tick spread; thin simulated symbols may quote 2",
    },
    Band {
        name: "spread_ticks_p90",
        get: |s| s.spread_ticks_p90,
        need: Need::Span(4.0),
        slack: Slack::Fixed(1.0, 4.0),
        why: "the spread widens now and then (up to 4 ticks at the 90th percentile in the 2021 set)",
    },
];

fn enough(s: &SymbolStats, need: Need) -> bool {
    match need {
        Need::Returns(n) => s.returns >= n,
        Need::Levels(n) => s.level_samples >= n,
        Need::Trades(n) => s.trades >= n,
        Need::Span(t) => s.span_s >= t,
    }
}

fn real_stats(root: &Path) -> Vec<(String, SymbolStats)> {
    let mut all = Vec::new();
    for set in SETS {
        // The importer `scalper evaluate` uses: a malformed line fails the import loudly.
        let events = common::realdata_events(&root.join(set));
        let mut st = MarketStats::new();
        for e in &events {
            st.on_event(e);
        }
        for s in st.summary().symbols {
            assert_eq!(s.book_errors, 0, "{set} {}: the real book did not replay cleanly", s.symbol);
            all.push((set.to_string(), s));
        }
    }
    all
}

/// The simulator's calm market over loopback: orderbook.200 and publicTrade of every symbol,
/// parsed with the project's parser, time = the frame's `ts` (simulated, manual clock).
async fn sim_stats() -> StatsSummary {
    let cfg = SimConfig {
        seed: std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SIM_SEED),
        symbols: SIM_SYMBOLS,
        clock: ClockMode::Manual,
        start_time_ms: Some(1_790_000_000_000),
        outbound_queue: 4_000_000,
        ..SimConfig::default()
    };
    let sim = SimExchange::start(cfg.clone()).await.expect("simulator starts");
    let (mut ws, _) = connect_async(sim.ws_public_url()).await.expect("ws connect");
    let args: Vec<String> = cfg
        .base_symbol_names()
        .iter()
        .flat_map(|s| [format!("orderbook.200.{s}"), format!("publicTrade.{s}")])
        .collect();
    let sub = serde_json::json!({"op": "subscribe", "req_id": "realism", "args": args});
    ws.send(Message::Text(sub.to_string().into())).await.expect("subscribe");
    let reader = tokio::spawn(async move {
        let mut frames: Vec<String> = Vec::new();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            if let Message::Text(t) = msg {
                frames.push(t.to_string());
            }
        }
        frames
    });
    let steps = SIM_SECONDS * 1000 / cfg.tick_interval_ms;
    // Let the subscription land before the market moves.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..steps / 100 {
        sim.advance(100).await.expect("advance");
    }
    let c = sim.counters();
    sim.shutdown().await;
    let frames = reader.await.expect("reader");
    let mut st = MarketStats::new();
    let mut market_frames = 0u64;
    let mut events = Vec::new();
    for f in &frames {
        if let Ok(WsMessage::Market { ts_ms, data }) = parse_ws_frame(f) {
            market_frames += 1;
            data.push_events(EventTime { exchange_ms: Some(ts_ms), recv_ms: ts_ms }, &mut events);
        }
    }
    assert_eq!(market_frames, c.book_frames + c.trade_frames, "frames lost between the simulator and the client");
    for e in &events {
        st.on_event(e);
    }
    st.summary()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.3}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calm_simulator_matches_real_market_statistics() {
    let Some(root) = common::realdata_dir() else { return };
    let real = real_stats(&root);
    let sim = sim_stats().await;
    assert_eq!(sim.symbols.len(), SIM_SYMBOLS);

    // Per-symbol tables (real, then simulated).
    println!("{:<18} {:<10} {}", "set", "symbol", serde_json::to_string(&BANDS.map(|b| b.name)).unwrap_or_default());
    for (set, s) in &real {
        let row: Vec<String> = BANDS.iter().map(|b| fmt((b.get)(s))).collect();
        println!("{set:<18} {:<10} {}", s.symbol, row.join(" "));
    }
    for s in &sim.symbols {
        let row: Vec<String> = BANDS.iter().map(|b| fmt((b.get)(s))).collect();
        println!("{:<18} {:<10} {}", "simulator", s.symbol, row.join(" "));
    }

    let mut failures = Vec::new();
    println!("\n| statistic | real range (reference symbols) | band | simulator (median of {SIM_SYMBOLS}) | ok |");
    println!("|---|---|---|---|---|");
    for b in &BANDS {
        let refs: Vec<f64> = real.iter().filter(|(_, s)| enough(s, b.need)).filter_map(|(_, s)| (b.get)(s)).collect();
        assert!(!refs.is_empty(), "{}: no real symbol has enough data", b.name);
        let lo = refs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = refs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (blo, bhi) = match b.slack {
            Slack::Mul(a, z) => (lo * a, hi * z),
            Slack::Add(d) => (lo - d, hi + d),
            Slack::Fixed(a, z) => {
                assert!(a <= lo && hi <= z, "{}: real range {lo}..{hi} outside the fixed band", b.name);
                (a, z)
            }
        };
        let v = median(sim.symbols.iter().filter_map(|s| (b.get)(s)).collect());
        let ok = v.is_some_and(|v| v >= blo && v <= bhi);
        println!(
            "| {} | {lo:.3} .. {hi:.3} (n={}) | {blo:.3} .. {bhi:.3} | {} | {} |",
            b.name,
            refs.len(),
            fmt(v),
            if ok { "yes" } else { "NO" }
        );
        if !ok {
            failures.push(format!("{} = {} outside [{blo:.3}, {bhi:.3}] ({})", b.name, fmt(v), b.why));
        }
    }
    assert!(failures.is_empty(), "the calm simulator is unrealistic:\n{}", failures.join("\n"));
}
