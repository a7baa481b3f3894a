//! Progress of the offline tools when stderr is not a terminal: plain lines on stderr (no bar,
//! no escape codes), a closing line with what was done, and stdout exactly as before.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings/handbuilt")
}

fn dumps(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings/bybit-dumps").join(name)
}

/// Runs `scalper` with piped (non-terminal) stdout and stderr.
fn scalper(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalper"));
    cmd.args(args).env_remove("SCALPER_PROGRESS_INTERVAL_MS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("scalper runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn recording_bytes(dir: &Path) -> u64 {
    let raw = dir.join("raw/_global");
    std::fs::read_dir(&raw)
        .expect("recording")
        .filter_map(Result::ok)
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// The amount the closing line reports for `b` bytes (the tool's own units).
fn kb(b: u64) -> String {
    if b >= 1_000_000 {
        format!("{:.1} MB", b as f64 / 1e6)
    } else {
        format!("{:.1} kB", b as f64 / 1e3)
    }
}

fn no_terminal_codes(s: &str) {
    assert!(!s.contains('\u{1b}') && !s.contains('\r'), "terminal control codes off a terminal: {s:?}");
}

#[test]
fn replay_and_backtest_keep_stdout_and_report_progress_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = fixture();
    let total = kb(recording_bytes(&fx));

    let out = dir.path().join("d.jsonl");
    let (code, stdout, stderr) =
        scalper(&["replay", "--data-dir", fx.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    // stdout: only the hash line, as scripts expect.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let (hash, path) = lines[0].split_once("  ").expect("`hash  path`");
    assert_eq!(hash.len(), 64);
    assert_eq!(path, out.to_str().unwrap());
    // stderr: the closing line names everything read.
    assert!(stderr.contains(&format!("replay: done, {total} in ")), "{stderr}");
    no_terminal_codes(&stderr);

    let report = dir.path().join("r.json");
    let (code, stdout, stderr) =
        scalper(&["backtest", "--data-dir", fx.to_str().unwrap(), "--report", report.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("win rate"), "{stdout}");
    assert!(stdout.trim_end().ends_with(&format!("decisions sha256: {hash}")), "{stdout}");
    assert!(!stdout.contains("backtest:") && !stdout.contains("ETA"), "progress leaked to stdout: {stdout}");
    assert!(stderr.contains(&format!("backtest: done, {total} in ")), "{stderr}");
    no_terminal_codes(&stderr);
}

#[test]
fn evaluate_reports_each_phase_and_keeps_its_json() {
    let fx = fixture();
    let (code, stdout, stderr) = scalper(&["evaluate", "--data-dir", fx.to_str().unwrap(), "-o", "json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is the JSON document alone");
    assert!(v["background"].is_object(), "{stdout}");
    assert!(stderr.contains(&format!("evaluate: read: done, {} in ", kb(recording_bytes(&fx)))), "{stderr}");
    assert!(stderr.contains("evaluate: done, "), "{stderr}");
    no_terminal_codes(&stderr);
}

#[test]
fn import_counts_both_passes_over_the_dumps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (t, b) = (dumps("BTCUSDT-trades.csv"), dumps("BTCUSDT-ob500.jsonl"));
    let size = std::fs::metadata(&t).expect("trades").len() + std::fs::metadata(&b).expect("book").len();
    let out = dir.path().join("imported");
    let (code, stdout, stderr) = scalper(
        &[
            "import",
            "--trades",
            t.to_str().unwrap(),
            "--orderbook",
            b.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("imported ") && !stdout.contains("import:"), "{stdout}");
    // Each dump is read twice (scan, then events): every byte of both counted.
    assert!(stderr.contains(&format!("import: done, {} in ", kb(2 * size))), "{stderr}");
}

#[test]
fn long_work_prints_periodic_lines_with_rate_and_eta() {
    // A 1 ms period: the bench's replay phase lasts far longer, so periodic lines appear.
    let (code, stdout, stderr) =
        scalper(&["bench-replay", "--symbols", "20", "--events", "20000"], &[("SCALPER_PROGRESS_INTERVAL_MS", "1")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("bench-replay: "), "{stdout}");
    assert!(!stdout.contains("ETA"), "progress leaked to stdout: {stdout}");
    let periodic: Vec<&str> =
        stderr.lines().filter(|l| l.starts_with("bench-replay: replay: ") && l.contains(" ETA ")).collect();
    assert!(!periodic.is_empty(), "no periodic line: {stderr}");
    for l in &periodic {
        // `label: done/total events (pct%), rate events/s, ETA t`
        let (counts, rest) = l["bench-replay: replay: ".len()..].split_once(" events (").expect(l);
        let (done, total) = counts.split_once('/').expect(l);
        let (done, total): (u64, u64) = (done.parse().expect(l), total.parse().expect(l));
        assert!(done <= total && total > 20_000, "{l}");
        assert!(rest.contains("events/s, ETA "), "{l}");
    }
    assert!(stderr.contains("bench-replay: replay: done, "), "{stderr}");
    no_terminal_codes(&stderr);
}
