//! Software prefetch of a symbol's state at the start of its event. At a universe of hundreds
//! of symbols a symbol's state is no longer in the core's private caches when its next event
//! comes, and the pipeline's steps then miss on it one load at a time (~70 misses per event at
//! 1 000 symbols, measured with callgrind's cache simulation). Asking for every line up front
//! lets the memory system fetch them in parallel. A prefetch never faults and changes no value:
//! decisions are the same with or without it. The core issues these hints only with
//! `engine.prefetch` on (off by default: measured slower than the hardware prefetchers alone on
//! the 2-core EPYC VM since session 18).

/// Bytes per cache line on the targets we run on.
const LINE: usize = 64;

/// Asks for the cache line holding `p` (a hint: no load, no fault, on any address).
#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` only hints the cache; it never dereferences `p` architecturally, so it
    // cannot fault or read memory the program does not own. SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for the cache line at address `addr` (0: nothing). For addresses kept as integers
/// ([`crate::engine::markets`]' page probes): a hint, so a stale address costs a wasted fetch,
/// never a fault or a wrong value.
#[inline(always)]
pub fn addr(addr: usize) {
    if addr != 0 {
        line(std::ptr::without_provenance(addr));
    }
}

/// Prefetches the `len` bytes from `p`.
#[inline(always)]
pub fn bytes(p: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        line(p.wrapping_add(off));
        off += LINE;
    }
    if len > 0 {
        line(p.wrapping_add(len - 1));
    }
}

/// Prefetches `v` itself (its inline bytes, not what it points to).
#[inline(always)]
pub fn value<T>(v: &T) {
    bytes((v as *const T).cast(), std::mem::size_of::<T>());
}

/// Prefetches the elements `range` of `s` (clamped to the slice).
#[inline(always)]
pub fn slice<T>(s: &[T], range: std::ops::Range<usize>) {
    let end = range.end.min(s.len());
    let start = range.start.min(end);
    let sz = std::mem::size_of::<T>();
    bytes(s.as_ptr().wrapping_add(start).cast(), (end - start) * sz);
}
