//! How the heap is backed: transparent huge pages through glibc's tunables, reported by
//! `bench-replay`, and a pre-fault of the heap at start-up.
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
//!
//! Those stalls are first touches: the host backs a fresh huge page the first time the guest
//! writes it. [`prefault`] (`engine.prefault_mib`, `bench-replay --prefault-mib`) touches the
//! heap the engine will grow into before the first event, and the tunables keep it (no
//! trimming, `trim_threshold`). It serves the thread that runs it: glibc gives other threads
//! arenas of their own. The engine's core runs on the main thread, where `scalper`'s runtime
//! and `bench-replay` pre-fault. One arena for every thread (`arena_max=1`) would let any
//! thread use it, but measured 1.4–2.7× worse at the p99 with the recording decoded beside
//! the core (malloc's lock), so it is not part of the recommended set.

/// The tunables the README recommends for huge pages: THP through `madvise`, heaps grown
/// 32 MiB at a time, and freed memory never handed back to the kernel (so a [`prefault`]
/// stays faulted).
pub const HUGE_PAGE_TUNABLES: &str =
    "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=33554432:glibc.malloc.trim_threshold=4294967295";

/// Bytes of one pre-fault block: under glibc's smallest mmap threshold (128 KiB), so that the
/// blocks come from the heap (and return to it when freed) instead of their own mappings.
const PREFAULT_BLOCK: usize = 64 * 1024 - 64;

/// Stride of the pre-fault's writes: one byte per 4 KiB page, the smallest page size.
const PAGE: usize = 4096;

/// What [`prefault`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefault {
    /// Heap bytes allocated, written and freed.
    pub bytes: u64,
    /// Whether the process's tunables keep it: a trim threshold (without one glibc hands
    /// most of it back to the kernel and the next growth faults again).
    pub kept: bool,
}

/// Grows the calling thread's heap by `mib` MiB and writes every page of it, then frees it, so
/// that the engine's later allocations on that thread (symbol states built on their first events) land on memory
/// that is already backed: no first-touch fault on the event path. A page fault on a fresh
/// huge page stalled single book events for 6–11 ms on the project's VM. Costs the resident
/// memory it touches (kept for the process's life) and some milliseconds at start-up.
pub fn prefault(mib: u64) -> Prefault {
    let bytes = usize::try_from(mib).unwrap_or(usize::MAX).saturating_mul(1 << 20);
    let blocks = bytes.div_ceil(PREFAULT_BLOCK);
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        let mut b: Vec<u8> = Vec::with_capacity(PREFAULT_BLOCK);
        let p = b.as_mut_ptr();
        for off in (0..PREFAULT_BLOCK).step_by(PAGE) {
            // SAFETY: `off < PREFAULT_BLOCK`, the block's capacity; a byte needs no
            // initialised neighbours, and a volatile write is not optimised away.
            unsafe { p.add(off).write_volatile(1) };
        }
        held.push(b);
    }
    drop(held);
    Prefault { bytes: (blocks * PREFAULT_BLOCK) as u64, kept: keeps_prefault(&malloc_setup()) }
}

/// True when a malloc set-up ([`malloc_setup`]) names a trim threshold.
fn keeps_prefault(setup: &str) -> bool {
    setup.contains("glibc.malloc.trim_threshold=")
}

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
    fn a_prefault_writes_whole_blocks_and_says_whether_they_are_kept() {
        let p = prefault(1);
        assert!(p.bytes >= 1 << 20 && p.bytes < (1 << 20) + PREFAULT_BLOCK as u64, "{p:?}");
        assert_eq!(p.bytes % PREFAULT_BLOCK as u64, 0);
        assert_eq!(prefault(0).bytes, 0);
        assert!(keeps_prefault(&format!("GLIBC_TUNABLES={HUGE_PAGE_TUNABLES}")));
        assert!(!keeps_prefault("GLIBC_TUNABLES=glibc.malloc.hugetlb=1"));
        assert!(keeps_prefault("GLIBC_TUNABLES=glibc.malloc.trim_threshold=4294967295"));
        assert!(!keeps_prefault("default"));
    }

    #[test]
    fn anon_huge_pages_are_read_in_bytes() {
        let text = "Rss:              227968 kB\nAnonHugePages:    219136 kB\nShared_Hugetlb:        0 kB\n";
        assert_eq!(parse_anon_huge(text), Some(219_136 * 1024));
        assert_eq!(parse_anon_huge("Rss: 1 kB\n"), None);
        assert_eq!(parse_anon_huge("AnonHugePages: lots kB\n"), None);
    }
}
