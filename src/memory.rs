//! How the heap is backed: 2 MiB transparent huge pages through glibc's tunables, on by
//! default for the `scalper` binary (`engine.huge_pages`), and a pre-fault of the heap at
//! start-up (`engine.prefault_mib`).
//!
//! At universe scale every market event lands on a different symbol's state (~50 KiB of book
//! slots, second ring, tape and trackers per symbol, ~50 MiB for 1 000 symbols), spread over
//! more 4 KiB pages than the TLB maps, and every miss of a line then also walks the page
//! tables (in a VM, a two-dimensional walk). glibc backs its heaps with 2 MiB pages itself when
//! started with `GLIBC_TUNABLES=`[`HUGE_PAGE_TUNABLES`]: it `madvise(MADV_HUGEPAGE)`s every heap
//! and arena and grows them 32 MiB at a time (with its default 128 KiB steps the kernel
//! collapses small pages into huge ones behind the engine's back, which stalled single events
//! for 25–56 ms). A process cannot set those tunables for itself once running (glibc reads them
//! before `main`), so the binary starts itself once more with them ([`reexec_with_huge_pages`],
//! the first thing `main` does). Measured in `bench-replay` (README "Universe scale"): 1000-symbol
//! p50 0.85× and p99 0.69× with the pre-fault below. Where memory lives changes no output
//! (`tests/huge_pages.rs`).
//!
//! glibc 2.36's `hugetlb=1` takes effect only in some process starts (see [`collapse_huge`]), so
//! the pre-fault also asks for huge pages over its own range, whatever glibc decided.
//!
//! A fresh huge page's first touch can stall for milliseconds (the host backs it), and a single
//! book event stalled 6–11 ms on the project's VM. [`prefault`] (`engine.prefault_mib`,
//! `bench-replay --prefault-mib`) touches the heap the engine will grow into before the first
//! event, and the tunables keep it (no trimming, `trim_threshold`); without them malloc would
//! hand it back at once, so callers pre-fault only when [`keeps_freed_memory`]. It serves the
//! thread that runs it: glibc gives other threads arenas of their own. The engine's core runs
//! on the main thread, where `scalper`'s runtime and `bench-replay` pre-fault. One arena for
//! every thread (`arena_max=1`) would let any thread use it, but measured 1.4–2.7× worse at the
//! p99 with the recording decoded beside the core (malloc's lock), so it is not in the set.

/// The tunables of `engine.huge_pages`: THP through `madvise`, heaps grown 32 MiB at a time,
/// and freed memory never handed back to the kernel (so a [`prefault`] stays faulted).
pub const HUGE_PAGE_TUNABLES: &str =
    "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=33554432:glibc.malloc.trim_threshold=4294967295";

/// Bytes of one pre-fault block: under glibc's smallest mmap threshold (128 KiB), so that the
/// blocks come from the heap (and return to it when freed) instead of their own mappings.
const PREFAULT_BLOCK: usize = 64 * 1024 - 64;

/// Stride of the pre-fault's writes: one byte per 4 KiB page, the smallest page size.
const PAGE: usize = 4096;

/// What [`prefault`] did (the default: nothing pre-faulted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefault {
    /// Heap bytes allocated, written and freed.
    pub bytes: u64,
    /// Whether the process's tunables keep it: a trim threshold (without one glibc hands
    /// most of it back to the kernel and the next growth faults again).
    pub kept: bool,
    /// Whether it was collapsed into huge pages (with `glibc.malloc.hugetlb=1` in the tunables).
    pub huge: bool,
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
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    for _ in 0..blocks {
        let mut b: Vec<u8> = Vec::with_capacity(PREFAULT_BLOCK);
        let p = b.as_mut_ptr();
        for off in (0..PREFAULT_BLOCK).step_by(PAGE) {
            // SAFETY: `off < PREFAULT_BLOCK`, the block's capacity; a byte needs no
            // initialised neighbours, and a volatile write is not optimised away.
            unsafe { p.add(off).write_volatile(1) };
        }
        lo = lo.min(p as usize);
        hi = hi.max(p as usize + PREFAULT_BLOCK);
        held.push(b);
    }
    let setup = malloc_setup();
    // While the blocks are held: their range is this process's heap, written page by page.
    let huge = blocks > 0 && setup.contains("glibc.malloc.hugetlb=1") && collapse_huge(lo, hi);
    drop(held);
    Prefault { bytes: (blocks * PREFAULT_BLOCK) as u64, kept: keeps_prefault(&setup), huge }
}

/// Bytes of a transparent huge page (x86-64 and arm64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the whole 2 MiB pages within `[lo, hi)` with huge pages now
/// (`MADV_HUGEPAGE`, then a synchronous `MADV_COLLAPSE`, Linux 6.1+). glibc 2.36's own
/// `hugetlb=1` decides from the THP mode it reads, and on this project's Debian 12 that decision
/// changed from one process start to the next with the same text read (`strace`; a third of short
/// `bench-replay` runs got huge pages), so the pre-fault's range is advised here, whatever glibc
/// decided.
/// Returns whether the collapse succeeded (on failure, the advice still lets the kernel's
/// background collapse do it later).
#[cfg(target_os = "linux")]
fn collapse_huge(lo: usize, hi: usize) -> bool {
    let start = lo.div_ceil(HUGE_PAGE) * HUGE_PAGE;
    let end = hi / HUGE_PAGE * HUGE_PAGE;
    if end <= start {
        return false;
    }
    let (addr, len) = (start as *mut libc::c_void, end - start);
    // SAFETY: `[start, end)` lies between the lowest and the highest block this process still
    // holds: its own heap (other live allocations may sit between the blocks, and a hole makes
    // the call fail). Neither advice changes any byte's contents: a collapse copies each page
    // whole, as the kernel's background collapse does.
    unsafe { libc::madvise(addr, len, libc::MADV_HUGEPAGE) == 0 && libc::madvise(addr, len, libc::MADV_COLLAPSE) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn collapse_huge(_lo: usize, _hi: usize) -> bool {
    false
}

/// [`prefault`] where this process's heap keeps what it frees ([`keeps_freed_memory`]); `None`
/// elsewhere, where the memory would go straight back to the kernel. What the engine's start-up
/// and `bench-replay` call.
pub fn prefault_if_kept(mib: u64) -> Option<Prefault> {
    keeps_freed_memory().then(|| prefault(mib))
}

/// True when a malloc set-up ([`malloc_setup`]) names a trim threshold.
fn keeps_prefault(setup: &str) -> bool {
    setup.contains("glibc.malloc.trim_threshold=")
}

/// True when this process's malloc keeps freed memory (a trim threshold in its tunables), so
/// that a [`prefault`] stays with it; without one, a pre-fault is handed back to the kernel by
/// the first `free` and only costs start-up time.
pub fn keeps_freed_memory() -> bool {
    keeps_prefault(&malloc_setup())
}

/// `existing` `GLIBC_TUNABLES` with each of [`HUGE_PAGE_TUNABLES`] that it does not name
/// appended; `None` when it names them all. A tunable the operator set (even to another value)
/// is theirs and left alone.
pub fn merged_tunables(existing: Option<&str>) -> Option<String> {
    let existing = existing.map(str::trim).unwrap_or("");
    let named = |key: &str| existing.split(':').any(|t| t.split('=').next().map(str::trim) == Some(key));
    let missing: Vec<&str> =
        HUGE_PAGE_TUNABLES.split(':').filter(|t| !named(t.split('=').next().unwrap_or(t))).collect();
    if missing.is_empty() {
        return None;
    }
    let mut all: Vec<&str> = existing.split(':').filter(|t| !t.trim().is_empty()).collect();
    all.extend(missing);
    Some(all.join(":"))
}

/// What [`reexec_with_huge_pages`] found, when it returns (on success it does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HugePages {
    /// `GLIBC_TUNABLES` already names every tunable: this process has them (or the operator
    /// chose other values).
    InEffect,
    /// Not a Linux glibc build: the tunables would mean nothing.
    Unsupported,
    /// The binary could not be started again (the engine goes on with the default heap).
    Failed(String),
}

/// Set in the environment of the process [`reexec_with_huge_pages`] starts, and removed by it
/// there: a binary started once more never starts again, even if `GLIBC_TUNABLES` did not
/// survive the `exec` (glibc drops it for a set-user-id binary), so there is no loop.
const REEXEC_MARKER: &str = "SCALPER_HEAP_REEXEC";

/// Starts this binary again, same arguments and environment, with [`HUGE_PAGE_TUNABLES`]
/// merged into `GLIBC_TUNABLES` ([`merged_tunables`]), unless they are there already. Call it
/// first thing in `main`, before any thread or file is opened (it also edits the environment,
/// which is only sound while the process has one thread): `exec` keeps the process id and open
/// descriptors and replaces everything else. Returns only when nothing was started: the
/// tunables are in effect, the platform has none, this process was started by it already, or
/// `exec` failed.
pub fn reexec_with_huge_pages() -> HugePages {
    let again = std::env::var_os(REEXEC_MARKER).is_some();
    if again {
        std::env::remove_var(REEXEC_MARKER);
    }
    let existing = std::env::var_os("GLIBC_TUNABLES").map(|v| v.to_string_lossy().into_owned());
    let Some(tunables) = merged_tunables(existing.as_deref()) else {
        return HugePages::InEffect;
    };
    if again {
        return HugePages::Failed("started once more already, but GLIBC_TUNABLES did not reach this process".into());
    }
    exec_self(&tunables)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn exec_self(tunables: &str) -> HugePages {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| std::ffi::OsString::from("scalper"));
    // The running image itself, even when its file was replaced or deleted since.
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .env(REEXEC_MARKER, "1")
        .exec();
    HugePages::Failed(format!("cannot start /proc/self/exe again: {err}"))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exec_self(_tunables: &str) -> HugePages {
    HugePages::Unsupported
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
    fn the_huge_page_tunables_are_merged_into_the_operators() {
        assert_eq!(merged_tunables(None).as_deref(), Some(HUGE_PAGE_TUNABLES));
        assert_eq!(merged_tunables(Some("  ")).as_deref(), Some(HUGE_PAGE_TUNABLES));
        assert_eq!(merged_tunables(Some(HUGE_PAGE_TUNABLES)), None, "already in effect: no restart");
        // Another tunable is kept, ours are added after it.
        assert_eq!(
            merged_tunables(Some("glibc.malloc.tcache_count=0")),
            Some(format!("glibc.malloc.tcache_count=0:{HUGE_PAGE_TUNABLES}"))
        );
        // A key the operator set, to any value, stays theirs.
        let theirs = "glibc.malloc.hugetlb=0";
        let merged = merged_tunables(Some(theirs)).expect("two keys missing");
        assert!(merged.starts_with("glibc.malloc.hugetlb=0:"), "{merged}");
        assert!(!merged.contains("hugetlb=1"), "{merged}");
        assert!(merged.contains("glibc.malloc.top_pad=33554432") && merged.contains("glibc.malloc.trim_threshold="));
        assert_eq!(merged_tunables(Some(&merged)), None, "a restarted process does not restart again");
    }

    #[test]
    fn anon_huge_pages_are_read_in_bytes() {
        let text = "Rss:              227968 kB\nAnonHugePages:    219136 kB\nShared_Hugetlb:        0 kB\n";
        assert_eq!(parse_anon_huge(text), Some(219_136 * 1024));
        assert_eq!(parse_anon_huge("Rss: 1 kB\n"), None);
        assert_eq!(parse_anon_huge("AnonHugePages: lots kB\n"), None);
    }
}
