//! How the heap is backed, for reports: transparent huge pages through glibc's tunables.
//!
//! At universe scale every market event lands on a different symbol's state (~50 KiB of book
//! slots, second ring, tape and trackers per symbol, ~50 MiB for 1 000 symbols), spread over
//! more 4 KiB pages than the TLB maps. glibc can back its heaps with 2 MiB pages itself:
//! started with `GLIBC_TUNABLES=`[`HUGE_PAGE_TUNABLES`] it `madvise(MADV_HUGEPAGE)`s every
//! heap and arena and grows them 32 MiB at a time (with its default 128 KiB steps the kernel
//! collapses small pages into huge ones behind the engine's back, which stalled single events
//! for 25–56 ms). Measured in `bench-replay` (README "Universe scale"): lower p50 and p99 at
//! 500–1000 symbols, but on this project's VM first touches of fresh memory in 2 MiB units
//! also stalled single events for 20–34 ms, so it is the operator's choice per host, not a
//! default. Where memory lives changes no output (`tests/huge_pages.rs`).

/// The tunables the README recommends for huge pages: THP through `madvise`, heaps grown
/// 32 MiB at a time.
pub const HUGE_PAGE_TUNABLES: &str = "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=33554432";

/// The malloc set-up this process started with: `GLIBC_TUNABLES=…` when set, else `default`.
pub fn malloc_setup() -> String {
    match std::env::var("GLIBC_TUNABLES") {
        Ok(t) if !t.trim().is_empty() => format!("GLIBC_TUNABLES={t}"),
        _ => "default".to_string(),
    }
}

/// Resident anonymous memory backed by huge pages, bytes (`AnonHugePages` of
/// `/proc/self/smaps_rollup`); `None` where that file is not available.
pub fn anon_huge_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    parse_anon_huge(&s)
}

/// `AnonHugePages` of an `smaps_rollup` text, bytes.
fn parse_anon_huge(smaps_rollup: &str) -> Option<u64> {
    let line = smaps_rollup.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anon_huge_pages_are_read_in_bytes() {
        let text = "Rss:              227968 kB\nAnonHugePages:    219136 kB\nShared_Hugetlb:        0 kB\n";
        assert_eq!(parse_anon_huge(text), Some(219_136 * 1024));
        assert_eq!(parse_anon_huge("Rss: 1 kB\n"), None);
        assert_eq!(parse_anon_huge("AnonHugePages: lots kB\n"), None);
    }
}
