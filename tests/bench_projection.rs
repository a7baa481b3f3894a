//! `scalper bench-replay`'s universe projection: the printed figures and the `--json` report
//! follow from the measured rates and the recording's size (arithmetic and fields, no timings).

use std::process::Command;

#[test]
fn bench_replay_projects_the_universe_from_its_measured_rates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_scalper"))
        .args(["bench-replay", "--symbols", "20", "--events", "3000", "--universe-events-per-s", "24000", "--json"])
        .arg(&json)
        .env_remove("SCALPER_PROGRESS_INTERVAL_MS")
        .output()
        .expect("scalper runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("universe projection  24000 events/s -> 2.074 G events/day"), "{stdout}");
    for want in ["B/event zstd", "GB/day uncompressed", "% of one core at 24000 events/s", "h per universe day"] {
        assert!(stdout.contains(want), "{want:?} missing: {stdout}");
    }

    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).unwrap();
    let p = &v["projection"];
    let m = &p["measured"];
    let f = |x: &serde_json::Value| x.as_f64().unwrap_or_else(|| panic!("not a number: {x} in {v}"));
    assert_eq!(f(&m["universe_events_per_s"]), 24_000.0);
    let events_per_day = f(&p["events_per_day"]);
    assert_eq!(events_per_day, 24_000.0 * 86_400.0);
    // The recording: the set-up, 3000 market events and the run header, compressed.
    let recorded = f(&m["recorded_events"]);
    assert!(recorded > 3000.0 && recorded == f(&v["events"]) + 1.0, "{v}");
    let (file_bytes, line_bytes) = (f(&m["recorded_file_bytes"]), f(&m["recorded_line_bytes"]));
    assert!(file_bytes > 0.0 && file_bytes < line_bytes, "zstd segments are smaller than their lines: {v}");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(f(&p["bytes_per_event"]), file_bytes / recorded), "{v}");
    assert!(close(f(&p["raw_bytes_per_event"]), line_bytes / recorded), "{v}");
    assert!(close(f(&p["bytes_per_day"]), file_bytes / recorded * events_per_day), "{v}");
    assert!(close(f(&p["core_load_pct"]), 100.0 * 24_000.0 / f(&m["core_events_per_s"])), "{v}");
    assert!(close(f(&m["core_events_per_s"]), f(&v["core_events_per_s"])), "{v}");
    assert!(close(f(&p["replay_s_per_day"]), events_per_day / f(&m["replay_events_per_s"])), "{v}");
    assert!(close(f(&p["replay_events_per_s_needed"]), events_per_day / 3600.0), "{v}");
    assert!(f(&m["decode_events_per_s"]) > 0.0, "{v}");
    assert_eq!(p["replay_ok"].as_bool(), Some(f(&p["replay_s_per_day"]) < 3600.0), "{v}");
    assert_eq!(p["bytes_ok"].as_bool(), Some(f(&p["bytes_per_day"]) <= 80e9), "{v}");
    assert_eq!(v["decision_sha256"].as_str().map(str::len), Some(64), "{v}");
    // Latencies per event kind: every timed event counted once, each kind's own percentiles.
    let kinds = v["by_kind"].as_object().unwrap_or_else(|| panic!("by_kind missing: {v}"));
    let counted: u64 = kinds.values().map(|k| k["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(counted as f64, f(&v["events"]), "{v}");
    for kind in ["book", "trades", "universe"] {
        let k = &kinds[kind];
        assert!(k["count"].as_u64().is_some_and(|n| n > 0), "{kind}: {v}");
        assert!(f(&k["p50"]) <= f(&k["p99"]) && f(&k["p99"]) <= f(&k["max"]), "{kind}: {v}");
    }
    let worst = v["worst_kind"].as_str().unwrap_or_default();
    assert!(close(f(&kinds[worst]["max"]), f(&v["latency_us"]["max"])), "the slowest kind holds the max: {v}");
    assert!(stdout.contains("per event kind (µs)  book "), "{stdout}");
}

/// Runs a small bench-replay writing its JSON report, with `extra` arguments.
fn bench_json(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_scalper"))
        .args(["bench-replay", "--symbols", "80", "--events", "4000", "--json"])
        .arg(&json)
        .args(extra)
        .env_remove("SCALPER_PROGRESS_INTERVAL_MS")
        .output()
        .expect("scalper runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json report")
}

/// `--decode-first` changes when the recording is decoded, not what the core sees, and
/// `--prefetch` (80 symbols: above the prefetch's threshold) only hints the caches: the same
/// events and the same decision log every way.
#[test]
fn decoding_first_and_prefetch_replay_the_same_events_and_decisions() {
    let (threaded, first) = (bench_json(&[]), bench_json(&["--decode-first"]));
    let prefetched = bench_json(&["--decode-first", "--prefetch"]);
    assert_eq!(threaded["decode_first"].as_bool(), Some(false), "{threaded}");
    assert_eq!(first["decode_first"].as_bool(), Some(true), "{first}");
    assert_eq!((first["prefetch"].as_bool(), prefetched["prefetch"].as_bool()), (Some(false), Some(true)));
    assert!(first["events"].as_u64().is_some_and(|n| n > 4000), "{first}");
    assert_eq!(first["events"], threaded["events"]);
    assert_eq!(first["decision_sha256"], threaded["decision_sha256"]);
    assert_eq!(prefetched["events"], first["events"]);
    assert_eq!(prefetched["decision_sha256"], first["decision_sha256"]);
}

#[test]
fn bench_replay_refuses_a_bad_universe_rate() {
    let out = Command::new(env!("CARGO_BIN_EXE_scalper"))
        .args(["bench-replay", "--universe-events-per-s", "lots"])
        .output()
        .expect("scalper runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--universe-events-per-s"));
}
