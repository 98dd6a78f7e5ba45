//! `inregion-hint`: hints to the CPU and the OS for the data plane's hot paths, and the
//! workspace's only `unsafe` code, kept to a few audited calls behind a safe API that
//! cannot be misused from safe code (no other crate of the workspace has any; most
//! forbid `unsafe_code`).
//!
//! # Where to start
//!
//! - [`prefetch`]: batch lookups first touch the direct-pointing entries of a whole group
//!   of addresses, then the nodes they point to, issuing a prefetch for each so that the
//!   cache misses of the group overlap instead of being paid one after another
//!   (memory-level parallelism). The table's batch lookups and the edge's flow table
//!   pipeline their misses this way.
//! - [`huge_page_vec`]: a large array read at random (a flow table of a million flows is
//!   128 MiB) misses the TLB on almost every access with 4 KiB pages, and a software
//!   prefetch that misses the TLB waits for the page walk (under virtualization, a
//!   nested walk), which serializes what the prefetch was meant to overlap. Asking the
//!   kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`, Linux) before the array
//!   is first written makes the whole array reachable through a few dozen TLB entries.
//! - [`with_streaming`] and its [`StreamingWriter`]: a new flow's pin is written to a
//!   line of a 128 MiB table that is almost never cached; a plain store reads the line
//!   from memory first (read-for-ownership), which was half the cost of a new flow.
//!   Non-temporal ("streaming") stores write the whole line without that read.
//! - [`with_popcnt`]: the workspace builds for the x86-64 baseline, which has no
//!   `popcnt`; a batch of trie walks (each step counts the bits of a bitmap) runs a copy
//!   of itself compiled with `popcnt` when the CPU has it, picked at run time.
//!
//! ```
//! #[derive(Clone, Copy, Default, PartialEq, Debug, zerocopy::IntoBytes)]
//! #[repr(C, align(64))]
//! struct Line([u64; 8]); // one cache line, no padding
//!
//! let mut lines = inregion_hint::huge_page_vec(1 << 16, Line::default());
//! inregion_hint::prefetch(&lines, 700); // start the load now, use the line later
//! let hits = inregion_hint::with_streaming(&mut lines, |w| {
//!     w.write(700, Line([7; 8])); // a streaming store: the line is not read first
//!     w.write(9, Line([9; 8]));
//!     // Reading an element with a pending store fences first (it is never read early).
//!     w.get(700).map(|l| l.0[0])
//! }); // the scope fences the stores still pending before it returns
//! assert_eq!(hits, Some(7));
//! assert_eq!((lines[700], lines[9]), (Line([7; 8]), Line([9; 8])));
//! ```
//!
//! # Invariants
//!
//! - **A hint never changes a result.** A prefetch is not a memory access in Rust's
//!   abstract machine: it cannot fault and does not change what any later load
//!   returns. `MADV_HUGEPAGE` changes how the kernel backs pages, never their contents.
//!   Where a hint is not available (other architectures or systems, or huge pages
//!   disabled) it does nothing. The tests compare contents; the table's and the edge's
//!   batch tests compare against single lookups.
//! - **Code compiled for `popcnt` runs only on a CPU that has it**: [`with_popcnt`]
//!   checks the CPU before every call of the copy compiled for it, and that copy is not
//!   reachable otherwise. Both copies are the same source; the table's property tests
//!   run its batches through each.
//! - **No memory with a pending non-temporal store is accessed before a fence.** Rust's
//!   contract for non-temporal stores (`core::arch::x86_64::_mm_sfence`) is that after
//!   one, and before *any* other access to the memory it wrote (even by the same
//!   thread), the thread that issued it must call `_mm_sfence`: for the Rust memory model
//!   the store happens asynchronously, as if on a background thread, and the fence joins
//!   it. This crate makes breaking that contract impossible from safe code:
//!   - the only way to issue one is [`StreamingWriter::write`], and a writer exists only
//!     inside [`with_streaming`], lent to its closure by `&mut`: the closure cannot keep
//!     it, forget it, move it out of the scope or to another thread (it is neither `Send`
//!     nor `Sync`);
//!   - the scope holds the vector's unique borrow, so while a store may be pending
//!     nothing reaches the elements except through the writer, and the writer fences
//!     before any access to an element that has a pending store (a read, a plain
//!     write, another streaming store), before lending the whole vector
//!     ([`StreamingWriter::vec_mut`]) and when the scope ends, on return or unwind, so
//!     nothing is left pending once the borrow is released;
//!   - a writer never creates a reference that covers an element with a pending store
//!     (it addresses elements through the vector's raw pointer).
//!
//!   A guard *value* whose `Drop` fences would not do: `std::mem::forget` ends its
//!   borrow without running `Drop`, and safe code could then read the lines before any
//!   fence; the closure is the reason the scope cannot end without its fence (the same
//!   reason `std::thread::scope` takes a closure).
//! - **A streaming store writes exactly what an assignment writes.** It is used only for
//!   types of exactly one 64-byte-aligned, 64-byte cache line (other types get a plain
//!   assignment), and a writer takes only `Copy` types that implement
//!   [`zerocopy::IntoBytes`] (no padding: every byte of a value is initialized, checked
//!   at compile time by its derive), since the store loads the value's bytes as integer
//!   vectors and an uninitialized padding byte would be undefined behaviour there.
//!
//! # Cost
//!
//! A streaming scope costs one `sfence` at its end when it issued a store, plus one
//! whenever an element with a pending store is accessed again or more than
//! [`PENDING_MAX`] stores are pending. Checking whether an element is pending is one
//! test of a 512-bit filter (and a scan of the pending list only when the filter says
//! maybe), so reads of other elements stay as cheap as plain indexing.

#![warn(missing_docs)]
// The one crate allowed unsafe code (the workspace denies it everywhere else): each block
// is documented and tested; see the module docs above.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod stream;

pub use stream::{with_streaming, StreamingWriter, PENDING_MAX};

/// Runs `f`, compiled to use the CPU's `popcnt` instruction when this CPU has one.
///
/// The workspace builds for the x86-64 baseline, which has no `popcnt`: `count_ones`
/// is then a dozen shifts, masks and a multiply, and a Poptrie or nibble-trie step
/// counts the bits of a bitmap to find its child. `f` is compiled twice, once for the
/// baseline and once with `popcnt` enabled, and the CPU picks one at run time (the
/// check is std's cached CPUID read: one load per call). Use it around a batch of work,
/// not a single lookup: code compiled for `popcnt` cannot be inlined into a caller
/// compiled without it, so each call is a real call. What `f` computes is the same
/// either way; only the instructions differ.
///
/// For the instructions to change, `f`'s body must be inlined into this function:
/// pass a closure marked `#[inline(always)]` whose callees are `#[inline(always)]` too
/// (a callee that is not inlined is compiled once, for the baseline).
///
/// ```
/// let bitmaps = [0b1011u64, u64::MAX, 0];
/// let ones = inregion_hint::with_popcnt(
///     #[inline(always)]
///     || bitmaps.iter().map(|b| b.count_ones()).sum::<u32>(),
/// );
/// assert_eq!(ones, 3 + 64);
/// ```
#[inline(always)]
pub fn with_popcnt<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: `run_with_popcnt` only requires that the CPU executing it supports
        // `popcnt`, which was checked on this CPU just above (a process does not move to a
        // CPU with fewer features: the OS reports the features every CPU of the machine
        // has).
        return unsafe { run_with_popcnt(f) };
    }
    f()
}

/// `f()`, compiled with `popcnt` enabled (see [`with_popcnt`]): calling it on a CPU
/// without the instruction would be undefined behaviour, hence not public.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn run_with_popcnt<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Hints the CPU to bring `slice[index]` into the L1 cache. Out-of-range indices are
/// ignored. Safe to call with anything: a hint never faults and never changes a result.
///
/// ```
/// let slots = vec![0u64; 1024];
/// inregion_hint::prefetch(&slots, 700); // start the load now, use the slot later
/// inregion_hint::prefetch(&slots, 5000); // out of range: nothing happens
/// assert_eq!(slots[700], 0);
/// ```
#[inline(always)]
pub fn prefetch<T>(slice: &[T], index: usize) {
    if let Some(item) = slice.get(index) {
        prefetch_ptr(item as *const T);
    }
}

/// Prefetches the line holding `*p`. `p` need not be valid: a prefetch is a hint, not an
/// access (callers pass pointers into live allocations anyway).
#[inline(always)]
pub(crate) fn prefetch_ptr<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has (it is part of the
    // x86_64 baseline the crate is compiled for). It is a hint: it does not dereference
    // the pointer in Rust's abstract machine (it is LLVM's `prefetch`, which has no
    // memory effect), cannot fault whatever the address, and changes no value, so it is
    // sound for any pointer, including one to a line with a pending streaming store.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Arrays smaller than this are not worth a system call (and cannot hold a huge page).
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// `vec![value; len]`, with the kernel asked to back it by transparent huge pages when
/// it is large (≥ 4 MiB) and the system supports it (Linux; honoured when
/// `/sys/kernel/mm/transparent_hugepage/enabled` is `always` or `madvise`). The advice is
/// given before the elements are first written, so the pages are huge from their first
/// fault. Failure of the advice is ignored: the vector is the same either way.
///
/// ```
/// let v = inregion_hint::huge_page_vec(1 << 20, 7u64);
/// assert_eq!(v.len(), 1 << 20);
/// assert!(v.iter().all(|&x| x == 7));
/// ```
pub fn huge_page_vec<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes >= HUGE_PAGE_MIN_BYTES {
        advise_huge_pages(v.as_mut_ptr().cast::<u8>(), bytes);
    }
    v.resize(len, value);
    v
}

/// Advises the kernel to back the whole 4 KiB pages of `[start, start + len)` with huge
/// pages. `start..start + len` must lie inside one live allocation owned by the caller
/// (the only caller passes a fresh vector's capacity).
#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    let addr = start as usize;
    let first = addr.next_multiple_of(PAGE);
    let end = (addr + len) / PAGE * PAGE;
    if end <= first {
        return;
    }
    // SAFETY: `[first, end)` is a page-aligned range inside the caller's allocation
    // (rounded inwards). MADV_HUGEPAGE only changes how the kernel backs these pages
    // (and may later merge them); it never changes or discards their contents, and it
    // does not unmap or remap anything the allocator owns. An error (EINVAL where THP is
    // compiled out) leaves the memory exactly as it was, so it is ignored.
    let _ = unsafe {
        rustix::mm::madvise(
            first as *mut std::ffi::c_void,
            end - first,
            rustix::mm::Advice::LinuxHugepage,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_accepts_any_index_and_changes_nothing() {
        let data = [1u32, 2, 3];
        prefetch(&data, 0);
        prefetch(&data, 2);
        prefetch(&data, 3);
        prefetch(&data, usize::MAX);
        prefetch::<u64>(&[], 0);
        assert_eq!(data, [1, 2, 3]);
    }

    #[test]
    fn with_popcnt_computes_what_the_closure_computes() {
        // Bit counts of awkward words (edges, alternating bits, a pseudo-random walk),
        // through the dispatched copy and directly; and a value that is not Copy.
        let mut words = vec![0u64, 1, u64::MAX, 1 << 63, 0x5555_5555_5555_5555];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            words.push(x);
        }
        let plain: Vec<u32> = words.iter().map(|w| w.count_ones()).collect();
        let dispatched = with_popcnt(
            #[inline(always)]
            || words.iter().map(|w| w.count_ones()).collect::<Vec<u32>>(),
        );
        assert_eq!(dispatched, plain);
        assert_eq!(plain[..5], [0, 1, 64, 1, 32]);
        let owned = String::from("moved in, moved out");
        assert_eq!(with_popcnt(move || owned), "moved in, moved out");
    }

    #[test]
    fn huge_page_vec_is_vec_from_elem() {
        for len in [0, 1, 4095, 1 << 16, (HUGE_PAGE_MIN_BYTES / 8) + 3, 3 << 20] {
            let v = huge_page_vec(len, 0xA5A5_u64);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0xA5A5));
        }
        // Non-Copy elements, large enough to be advised.
        let v = huge_page_vec(HUGE_PAGE_MIN_BYTES / 24 + 1, String::from("x"));
        assert!(v.iter().all(|s| s == "x"));
        // Writes after the advice read back.
        let mut w = huge_page_vec(1 << 20, [0u8; 64]);
        for (i, e) in w.iter_mut().enumerate().step_by(4099) {
            e[i % 64] = (i % 251) as u8;
        }
        for (i, e) in w.iter().enumerate() {
            let want = if i % 4099 == 0 { (i % 251) as u8 } else { 0 };
            assert_eq!(e[i % 64], want, "{i}");
        }
    }
}
