//! Huge pages are the operator's choice through glibc's tunables (`scalper::memory`):
//! `bench-replay` reports the malloc set-up it ran with and the heap it pre-faulted, and where
//! the heap lives changes no decision.

use std::process::Command;

/// Runs a small `bench-replay` with `GLIBC_TUNABLES` set to `tunables` (or unset) and
/// `--prefault-mib prefault_mib`, and returns its JSON report.
fn bench(tunables: Option<&str>, prefault_mib: u32) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalper"));
    cmd.args(["bench-replay", "--symbols", "30", "--events", "3000", "--prefault-mib", &prefault_mib.to_string()]);
    cmd.arg("--json").arg(&json);
    cmd.env_remove("GLIBC_TUNABLES").env_remove("SCALPER_PROGRESS_INTERVAL_MS");
    if let Some(t) = tunables {
        cmd.env("GLIBC_TUNABLES", t);
    }
    let out = cmd.output().expect("scalper runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  malloc               "), "the report names the malloc set-up: {stdout}");
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json")
}

#[test]
fn huge_pages_change_no_decision_and_are_reported() {
    let plain = bench(None, 0);
    let huge = bench(Some(scalper::memory::HUGE_PAGE_TUNABLES), 16);
    assert_eq!(plain["malloc"].as_str(), Some("default"), "{plain}");
    assert_eq!(
        huge["malloc"].as_str().map(str::to_owned),
        Some(format!("GLIBC_TUNABLES={}", scalper::memory::HUGE_PAGE_TUNABLES)),
        "{huge}"
    );
    if cfg!(target_os = "linux") {
        assert!(huge["anon_huge_bytes"].is_u64(), "read from /proc/self/smaps_rollup: {huge}");
    }
    assert!(plain["decision_lines"].as_u64().is_some_and(|n| n > 0), "the run decided something: {plain}");
    assert_eq!(plain["decision_sha256"], huge["decision_sha256"], "where the heap lives must not change a decision");
    assert_eq!(plain["decision_lines"], huge["decision_lines"]);
    assert_eq!(plain["prefault_bytes"].as_u64(), Some(0), "{plain}");
    assert!(huge["prefault_bytes"].as_u64().is_some_and(|b| b >= 16 << 20), "16 MiB written before the run: {huge}");
    assert_eq!(huge["prefault_kept"].as_bool(), Some(true), "the recommended tunables keep it: {huge}");
    assert_eq!(plain["prefault_kept"].as_bool(), Some(false), "{plain}");
}
