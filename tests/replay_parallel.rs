//! Replay that uses the machine: decoding on a second thread and `--jobs N` (runs side by side)
//! give the decision log, the summary and the backtest report of the serial replay, byte for byte,
//! on the bundled recording and on a recording of several runs (runs across hourly files, a
//! restart whose clock went back, a torn tail), whole and for periods that start and end inside
//! runs.

use scalper::config::paths::Paths;
use scalper::engine::event::Event;
use scalper::engine::synthetic::{TradingMarket, EPOCH_MS};
use scalper::storage::recorder::Recorder;
use scalper::storage::replay::backtest::BacktestCollector;
use scalper::storage::replay::parallel::{replay_jobs, scan_runs, ThreadedReader};
use scalper::storage::replay::{
    recording_files, replay_items, DecisionLog, Period, RecordingReader, RecordingWriter, ReplayOptions, ReplaySummary,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const HOUR: i64 = 3_600_000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings/handbuilt")
}

/// Everything a replay produced that must not depend on how it was run.
#[derive(Debug, PartialEq)]
struct Outcome {
    log: Vec<u8>,
    summary: String,
    trades: String,
    report: String,
}

fn outcome(log: DecisionLog<Vec<u8>>, s: &ReplaySummary, bt: &BacktestCollector) -> Outcome {
    let (log, hash) = log.finish().unwrap();
    assert_eq!(hash, s.sha256);
    Outcome {
        log,
        summary: serde_json::to_string(s).unwrap(),
        trades: serde_json::to_string(bt.trades()).unwrap(),
        report: serde_json::to_string(&bt.report(0.0)).unwrap(),
    }
}

fn serial(dir: &Path, opts: &ReplayOptions) -> Outcome {
    let mut reader = RecordingReader::open(&Paths::with_data_dir(dir), opts.period).unwrap();
    let mut log = DecisionLog::new(Vec::new());
    let mut bt = BacktestCollector::new();
    let s = replay_items(&mut reader, opts, &mut log, &mut bt).unwrap();
    outcome(log, &s, &bt)
}

fn threaded(dir: &Path, opts: &ReplayOptions) -> Outcome {
    let reader = RecordingReader::open(&Paths::with_data_dir(dir), opts.period).unwrap();
    let mut reader = ThreadedReader::spawn(reader).unwrap();
    let mut log = DecisionLog::new(Vec::new());
    let mut bt = BacktestCollector::new();
    let s = replay_items(&mut reader, opts, &mut log, &mut bt).unwrap();
    outcome(log, &s, &bt)
}

/// Returns the outcome and how many parts the replay was split into.
fn jobs(dir: &Path, opts: &ReplayOptions, n: usize) -> (Outcome, usize) {
    let files = recording_files(&Paths::with_data_dir(dir)).unwrap();
    let mut log = DecisionLog::new(Vec::new());
    let (s, parts) = replay_jobs(files, opts, n, &mut log, BacktestCollector::new, None).unwrap();
    let k = parts.len();
    let mut bt = BacktestCollector::new();
    for p in parts {
        bt.merge(p);
    }
    (outcome(log, &s, &bt), k)
}

/// Adds `shift` to every timestamp (`*_ms` fields holding epoch milliseconds) of an event.
fn shifted(ev: &Event, shift: i64) -> Event {
    fn walk(v: &mut Value, shift: i64) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    match x.as_i64() {
                        Some(t) if k.ends_with("_ms") && t > 1_000_000_000_000 => *x = Value::from(t + shift),
                        _ => walk(x, shift),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, shift)),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(ev).unwrap();
    walk(&mut v, shift);
    serde_json::from_value(v).unwrap()
}

/// Run starts, relative to the epoch: A crosses from hour 0 into hour 1, B follows in hour 1,
/// C is in hour 3, D restarts with a clock two hours back (its lines land in hour 3's file).
const RUNS: [(i64, u64); 4] = [(HOUR - 8_000, 7), (HOUR + 20_000, 8), (3 * HOUR, 9), (HOUR + 50_000, 10)];
/// Market steps of 100 ms per run.
const STEPS: usize = 120;

fn multi_run_recording(dir: &Path) {
    // Plain JSONL, so a torn tail can be appended as text below (compressed segments get their
    // own torn-frame tests in storage::segment).
    let mut w = RecordingWriter::plain(dir);
    for (start, seed) in RUNS {
        let at = EPOCH_MS + start;
        w.write(&Recorder::header(Arc::new(TradingMarket::config()), at)).unwrap();
        for ev in TradingMarket::new(8, seed).with_max_move(3).events(STEPS) {
            w.write(&shifted(&ev, start)).unwrap();
        }
    }
    w.finish().unwrap();
    // A torn tail: the recorder was killed mid-line.
    let files = recording_files(&Paths::with_data_dir(dir)).unwrap();
    let last = &files.last().unwrap().0;
    let mut s = std::fs::read_to_string(last).unwrap();
    s.push_str("{\"seq\":9999,\"ti");
    std::fs::write(last, s).unwrap();
}

fn period(from: Option<i64>, to: Option<i64>) -> ReplayOptions {
    ReplayOptions {
        period: Period { from_ms: from.map(|t| EPOCH_MS + t), to_ms: to.map(|t| EPOCH_MS + t) },
        ..Default::default()
    }
}

#[test]
fn threaded_decoding_replays_the_bundled_recording_like_the_serial_reader() {
    let opts = ReplayOptions::default();
    let a = serial(&fixture(), &opts);
    let b = threaded(&fixture(), &opts);
    assert!(!a.log.is_empty() && a.trades != "[]", "the fixture decides and trades");
    assert_eq!(a, b);
    // The library's `replay` (decoding on a second thread) and `replay_jobs` with one job agree.
    let mut log = DecisionLog::new(Vec::new());
    let mut bt = BacktestCollector::new();
    let s = scalper::storage::replay::replay(&Paths::with_data_dir(fixture()), &opts, &mut log, &mut bt).unwrap();
    assert_eq!(outcome(log, &s, &bt), a);
    let (c, parts) = jobs(&fixture(), &opts, 4);
    assert_eq!(parts, 1, "one run: nothing to split");
    assert_eq!(c, a);
}

#[test]
fn runs_replayed_side_by_side_merge_into_the_serial_replay() {
    let dir = tempfile::tempdir().unwrap();
    multi_run_recording(dir.path());
    let files = recording_files(&Paths::with_data_dir(dir.path())).unwrap();
    assert_eq!(files.len(), 3, "hours 0, 1 and 3");
    let heads = scan_runs(files, Period::all()).unwrap();
    assert_eq!(heads.len(), 4, "one header per run: {heads:?}");
    assert_eq!(heads[0].offset, 0);

    let whole = serial(dir.path(), &ReplayOptions::default());
    let s: Value = serde_json::from_str(&whole.summary).unwrap();
    assert_eq!(s["reader"]["runs"], 4);
    assert_eq!(s["reader"]["bad_lines"], 1, "the torn tail");
    assert_eq!(s["reader"]["files"], 3);
    assert!(whole.trades != "[]", "the runs trade");
    assert_eq!(threaded(dir.path(), &ReplayOptions::default()), whole);
    for n in [2, 3, 8] {
        let (o, parts) = jobs(dir.path(), &ReplayOptions::default(), n);
        assert!(parts >= 2, "--jobs {n} split the runs ({parts} parts)");
        assert_eq!(o, whole, "--jobs {n}");
    }

    // Periods starting and ending inside runs.
    let cases = [
        // Ends inside A: serially A's lines are all buffered, B's header is read, then the flush ends it.
        (None, Some(HOUR - 2_000)),
        // Starts in A, ends inside B (C and D never read).
        (Some(HOUR - 4_000), Some(HOUR + 26_000)),
        // Starts in A, no end: D's clock went back before the start, yet serially the period had
        // started, so D is replayed (the chunk is replayed again with the latch set).
        (Some(HOUR - 4_000), None),
        // Starts inside B, ends inside C.
        (Some(HOUR + 25_000), Some(3 * HOUR + 5_000)),
        // Starts in C, after A and B (read only for their headers).
        (Some(3 * HOUR + 2_000), None),
    ];
    for (from, to) in cases {
        let opts = period(from, to);
        let want = serial(dir.path(), &opts);
        assert!(!want.log.is_empty(), "{from:?}..{to:?} replays something");
        assert_eq!(threaded(dir.path(), &opts), want, "threaded, {from:?}..{to:?}");
        for n in [2, 4] {
            assert_eq!(jobs(dir.path(), &opts, n).0, want, "--jobs {n}, {from:?}..{to:?}");
        }
    }
    let back = serial(dir.path(), &period(Some(HOUR - 4_000), None));
    let s: Value = serde_json::from_str(&back.summary).unwrap();
    assert_eq!(s["reader"]["runs"], 4, "D replayed although its clock is before --from");
}

fn scalper(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scalper")).args(args).output().expect("scalper runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn backtest_and_replay_with_jobs_write_what_one_job_writes() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    multi_run_recording(&rec);
    let rec_s = rec.to_str().unwrap();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let mut stdouts = Vec::new();
    for j in ["1", "2"] {
        let (report, decisions) = (out(&format!("bt{j}.json")), out(&format!("dec{j}.jsonl")));
        let (ok, stdout) =
            scalper(&["backtest", "--data-dir", rec_s, "--jobs", j, "--report", &report, "--decisions", &decisions]);
        assert!(ok, "backtest --jobs {j}");
        // The report names its own path on stdout: compare the rest.
        stdouts.push(stdout.replace(&format!("bt{j}"), "bt"));
    }
    assert_eq!(stdouts[0], stdouts[1]);
    let read = |p: String| std::fs::read(p).unwrap();
    assert_eq!(read(out("bt1.json")), read(out("bt2.json")), "JSON reports");
    assert_eq!(read(out("bt1.html")), read(out("bt2.html")), "HTML reports");
    assert_eq!(read(out("dec1.jsonl")), read(out("dec2.jsonl")), "decision logs");
    let rep: Value = serde_json::from_slice(&read(out("bt1.json"))).unwrap();
    assert!(rep["report"]["total"]["trades"].as_u64().unwrap() > 0);
    assert_eq!(rep["replay"]["reader"]["runs"], 4);

    let mut hashes = Vec::new();
    for j in ["1", "3"] {
        let log = out(&format!("replay{j}.jsonl"));
        let (_, stdout) = scalper(&["replay", "--data-dir", rec_s, "--jobs", j, "--out", &log, "--accept-gaps"]);
        hashes.push(stdout.split_whitespace().next().unwrap_or("").to_string());
        assert_eq!(read(log), read(out("dec1.jsonl")), "replay --jobs {j} writes the backtest's decisions");
    }
    assert_eq!(hashes[0].len(), 64);
    assert_eq!(hashes[0], hashes[1]);
    let (ok, _) = scalper(&["replay", "--data-dir", rec_s, "--jobs", "2", "--speed", "10", "--out", &out("x")]);
    assert!(!ok, "--jobs with --speed is refused");
}
