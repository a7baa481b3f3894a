//! Huge pages are on by default (`engine.huge_pages`, `scalper::memory`): the binary starts
//! itself again under glibc's huge-page tunables, keeps the operator's own tunables, and can be
//! turned off; `bench-replay` reports the malloc set-up it ran with and the heap it pre-faulted,
//! and where the heap lives changes no decision.

use scalper::memory::HUGE_PAGE_TUNABLES;
use std::process::Command;

/// Runs a small `bench-replay` with `GLIBC_TUNABLES` set to `tunables` (or unset), the extra
/// environment `env` and `--prefault-mib 16`, and returns its JSON report.
fn bench(tunables: Option<&str>, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalper"));
    cmd.args(["bench-replay", "--symbols", "30", "--events", "3000", "--prefault-mib", "16"]);
    cmd.arg("--json").arg(&json);
    cmd.env_remove("GLIBC_TUNABLES")
        .env_remove("SCALPER_PROGRESS_INTERVAL_MS")
        .env_remove("SCALPER_ENGINE__HUGE_PAGES")
        .env_remove("SCALPER_HEAP_REEXEC");
    if let Some(t) = tunables {
        cmd.env("GLIBC_TUNABLES", t);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("scalper runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  malloc               "), "the report names the malloc set-up: {stdout}");
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json")
}

#[test]
fn huge_pages_are_the_default_change_no_decision_and_are_reported() {
    let huge = bench(None, &[]);
    let plain = bench(None, &[("SCALPER_ENGINE__HUGE_PAGES", "false")]);
    assert_eq!(plain["malloc"].as_str(), Some("default"), "turned off, nothing restarts: {plain}");
    assert_eq!(plain["prefault_bytes"].as_u64(), Some(0), "a heap that hands memory back is not pre-faulted: {plain}");
    assert_eq!(plain["prefault_kept"].as_bool(), Some(false), "{plain}");
    assert!(plain["decision_lines"].as_u64().is_some_and(|n| n > 0), "the run decided something: {plain}");
    assert_eq!(plain["decision_sha256"], huge["decision_sha256"], "where the heap lives must not change a decision");
    assert_eq!(plain["decision_lines"], huge["decision_lines"]);
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert_eq!(
            huge["malloc"].as_str().map(str::to_owned),
            Some(format!("GLIBC_TUNABLES={HUGE_PAGE_TUNABLES}")),
            "by default the binary runs under the huge-page tunables: {huge}"
        );
        assert!(huge["anon_huge_bytes"].is_u64(), "read from /proc/self/smaps_rollup: {huge}");
        assert!(
            huge["prefault_bytes"].as_u64().is_some_and(|b| b >= 16 << 20),
            "16 MiB written before the run: {huge}"
        );
        assert_eq!(huge["prefault_kept"].as_bool(), Some(true), "the tunables keep it: {huge}");
        // Where the kernel offers transparent huge pages, the pre-faulted range is collapsed
        // into them whatever glibc's own check of the THP mode decided.
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        if thp.contains("[madvise]") || thp.contains("[always]") {
            assert_eq!(huge["prefault_huge"].as_bool(), Some(true), "{huge}");
            assert!(huge["anon_huge_bytes"].as_u64().is_some_and(|b| b >= 2 << 20), "{huge}");
        }
        assert_eq!(plain["prefault_huge"].as_bool(), Some(false), "{plain}");
    }
}

#[test]
fn the_operators_own_tunables_are_kept() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    // Their hugetlb setting stays theirs; the two missing tunables are added after it.
    let r = bench(Some("glibc.malloc.hugetlb=0"), &[]);
    assert_eq!(
        r["malloc"].as_str().map(str::to_owned),
        Some("GLIBC_TUNABLES=glibc.malloc.hugetlb=0:glibc.malloc.top_pad=33554432:glibc.malloc.trim_threshold=4294967295".to_owned()),
        "{r}"
    );
    assert_eq!(r["prefault_huge"].as_bool(), Some(false), "their hugetlb=0 is not overridden by the pre-fault: {r}");
    // A process started once more already never starts again, whatever its environment lacks
    // (glibc drops GLIBC_TUNABLES for a set-user-id binary): no loop, the default heap.
    let r = bench(None, &[("SCALPER_HEAP_REEXEC", "1")]);
    assert_eq!(r["malloc"].as_str(), Some("default"), "{r}");
    assert!(r["decision_lines"].as_u64().is_some_and(|n| n > 0), "{r}");
    // All three named already (here with the recommended values): started once, as is.
    let r = bench(Some(HUGE_PAGE_TUNABLES), &[]);
    assert_eq!(r["malloc"].as_str().map(str::to_owned), Some(format!("GLIBC_TUNABLES={HUGE_PAGE_TUNABLES}")), "{r}");
    assert_eq!(r["prefault_kept"].as_bool(), Some(true), "{r}");
}
