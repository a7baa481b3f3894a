//! `scalperctl`'s output for people against the demo engine (runtime + simulator over loopback,
//! real gRPC): `top` (one frame with `--once` and when stdout is not a terminal) shows the global
//! state, the hot list and the open positions with prices at each symbol's tick size, money and R
//! with 2 decimals, scores and bps with 1; `events` is one line per event, `-o json` the raw form.

mod common;
use common::probe;
use scalper::control::format;
use std::process::Command;
use std::time::{Duration, Instant};

fn ctl(addr: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scalperctl"))
        .args(["--addr", addr])
        .args(args)
        .env_remove("SCALPER_CONTROL_TOKEN")
        .output()
        .expect("scalperctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

async fn ctl_async(addr: &str, args: &[&str]) -> (i32, String, String) {
    let addr = addr.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        ctl(&addr, &a)
    })
    .await
    .expect("scalperctl task")
}

/// Decimals written after the point ("60909.9" → 1, "12" → 0).
fn decimals(s: &str) -> usize {
    s.split_once('.').map(|(_, d)| d.len()).unwrap_or(0)
}

/// The rows of the table that follows the line `title` (header skipped), split on whitespace.
fn section<'a>(frame: &'a str, title_prefix: &str) -> (Vec<&'a str>, Vec<Vec<&'a str>>) {
    let lines: Vec<&str> = frame.lines().collect();
    let start = lines.iter().position(|l| l.starts_with(title_prefix)).unwrap_or_else(|| panic!("no {title_prefix}"));
    let header: Vec<&str> = lines[start + 1].split_whitespace().collect();
    let rows = lines[start + 2..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_and_events_print_for_people() {
    let eng = common::start_engine(8, "unused-token", |_| {}).await;
    let (addr, snap, probe_tx) = (eng.addr.clone(), eng.snap.clone(), eng.probes.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while snap.borrow().symbols != 8 {
        assert!(Instant::now() < deadline, "universe never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait for an open position that the published view (once per second) shows too.
    let deadline = Instant::now() + Duration::from_secs(60);
    let trades_json = loop {
        let open = probe(&probe_tx, |e| e.pipeline().desk().portfolio.positions().len()).await;
        if open > 0 {
            let (code, out, err) = ctl_async(&addr, &["-o", "json", "trades"]).await;
            assert_eq!(code, 0, "{err}");
            let v: serde_json::Value = serde_json::from_str(&out).expect("trades JSON");
            if v["trades"].as_array().is_some_and(|t| !t.is_empty()) {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "the demo engine never opened a position");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The views carry each instrument's increments.
    let t0 = &trades_json["trades"][0];
    let (tick, step) = (t0["tick_size"].as_f64().unwrap(), t0["qty_step"].as_f64().unwrap());
    assert!(tick > 0.0 && step > 0.0, "tick and step reach scalperctl: {t0}");
    let (code, out, _) = ctl_async(&addr, &["-o", "json", "hotlist"]).await;
    assert_eq!(code, 0);
    let hot: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ticks: std::collections::BTreeMap<String, f64> = hot["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["symbol"].as_str().unwrap().to_string(), e["tick_size"].as_f64().unwrap()))
        .collect();
    assert!(ticks.values().all(|t| *t > 0.0), "{ticks:?}");

    // `top --once`, and `top` with stdout not a terminal: one frame each, then exit 0.
    for args in [vec!["top", "--once"], vec!["top", "--limit", "5"]] {
        let (code, frame, err) = ctl_async(&addr, &args).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!frame.contains("\x1b["), "no escape codes when not a terminal: {frame:?}");
        let first = frame.lines().next().unwrap_or_default();
        assert!(first.starts_with("scalper top ") && first.contains("mode SIM"), "{frame}");
        let equity = frame.lines().find(|l| l.starts_with("equity")).expect("equity line");
        let amount = equity.split_whitespace().nth(1).unwrap();
        assert_eq!(decimals(amount), 2, "money with 2 decimals: {equity}");
        assert!(frame.lines().any(|l| l.starts_with("health") && l.contains("feed UP")), "{frame}");

        let (header, rows) = section(&frame, "HOT LIST (top ");
        assert_eq!(
            header,
            ["SYMBOL", "CAT", "REGIME", "STATE", "LONG", "SHORT", "SPREAD_BPS", "IMB", "PRICE", "TURNOVER_24H"]
        );
        assert!(!rows.is_empty() && rows.len() <= if args.len() == 3 { 5 } else { 10 }, "{frame}");
        for r in &rows {
            assert_eq!(r.len(), header.len(), "{r:?}");
            assert_eq!((decimals(r[4]), decimals(r[5]), decimals(r[6])), (1, 1, 1), "scores and bps with 1: {r:?}");
            let tick = ticks[r[0]];
            assert_eq!(Some(decimals(r[8])), format::step_decimals(tick), "price at tick {tick}: {r:?}");
        }

        let (header, rows) = section(&frame, "POSITIONS (");
        assert_eq!(header, ["SYMBOL", "SIDE", "QTY", "ENTRY", "MARK", "STOP", "TP", "UPNL", "R", "STATE", "OPENED"]);
        assert!(!rows.is_empty(), "an open position is shown: {frame}");
        for r in &rows {
            let tick = ticks[r[0]];
            let d = format::step_decimals(tick);
            for (i, col) in [(3, "ENTRY"), (4, "MARK"), (5, "STOP")] {
                assert_eq!(Some(decimals(r[i])), d, "{col} at tick {tick}: {r:?}");
            }
            assert_eq!((decimals(r[7]), decimals(r[8])), (2, 2), "uPnL and R with 2: {r:?}");
        }
    }

    // status and symbol: money with 2 decimals and its unit, the price at the symbol's tick.
    let (code, out, _) = ctl_async(&addr, &["status"]).await;
    assert_eq!(code, 0);
    let equity = out.lines().find(|l| l.starts_with("equity")).expect("equity line");
    let parts: Vec<&str> = equity.split_whitespace().collect();
    assert_eq!((decimals(parts[1]), parts[2]), (2, "USDT"), "{out}");
    let sym = ticks.keys().next().unwrap().clone();
    let (code, out, _) = ctl_async(&addr, &["symbol", &sym]).await;
    assert_eq!(code, 0);
    let price = out.lines().find(|l| l.starts_with("price")).expect("price line");
    let price = price.split_whitespace().nth(1).unwrap();
    assert_eq!(Some(decimals(price)), format::step_decimals(ticks[&sym]), "{out}");
    let score = out.lines().find(|l| l.starts_with("score long / short")).expect("score line");
    let s: Vec<&str> = score.split_whitespace().collect();
    assert_eq!((decimals(s[4]), decimals(s[6])), (1, 1), "{score}");

    // Events: one line each, time first, never a JSON object; -o json keeps the raw records.
    let (code, out, err) = ctl_async(&addr, &["events", "--limit", "40"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 40, "{out}");
    for l in &lines {
        let time = l.split_whitespace().next().unwrap_or_default();
        assert!(
            time.len() == 12 && time.as_bytes()[2] == b':' && time.as_bytes()[8] == b'.'
                || time.len() == 10 && time.as_bytes()[4] == b'-',
            "time first: {l}"
        );
        assert!(!l.contains('{') && !l.contains("\"event\""), "no JSON in a line: {l}");
    }
    assert!(lines.iter().any(|l| l.contains(" STATE ") && l.contains(" → ")), "{out}");
    let (code, out, _) = ctl_async(&addr, &["events", "--limit", "40", "--ascii"]).await;
    assert_eq!(code, 0);
    assert!(!out.chars().any(|c| format::width(c.encode_utf8(&mut [0u8; 4])) == 2), "ASCII tags, no emoji: {out}");
    assert!(out.lines().any(|l| l.contains(" -> ") && l.contains(" STATE ")), "the STATE tag: {out}");
    let (code, out, _) = ctl_async(&addr, &["-o", "json", "events", "--limit", "5"]).await;
    assert_eq!(code, 0);
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
        assert!(v["body"].is_object() && v["seq"].is_u64(), "{l}");
    }

    eng.stop().await;
}
