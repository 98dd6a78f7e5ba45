//! Hints to the CPU and the OS: the workspace's only `unsafe`, kept to a few audited calls.
//!
//! - [`prefetch`]: batch lookups first touch the direct-pointing entries of a whole group
//!   of addresses, then the nodes they point to, issuing a prefetch for each so that the
//!   cache misses of the group overlap instead of being paid one after another
//!   (memory-level parallelism). The edge's flow table pipelines its probes the same way.
//! - [`huge_page_vec`]: a large array read at random (a flow table of a million flows is
//!   128 MiB) misses the TLB on almost every access with 4 KiB pages, and a software
//!   prefetch that misses the TLB waits for the page walk (under virtualization, a
//!   nested walk), which serializes what the prefetch was meant to overlap. Asking the
//!   kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`, Linux) before the array
//!   is first written makes the whole array reachable through a few dozen TLB entries.
//!
//! - [`write_streaming`] and [`stream_fence`]: a new flow's pin is written to a line of a
//!   128 MiB table that is almost never cached; a plain store reads the line from memory
//!   first (read-for-ownership), which was half the cost of a new flow. Non-temporal
//!   stores write the whole line without that read. Unlike the hints, these do store:
//!   they write exactly what an assignment writes (tested), and the fence orders them
//!   before the batch returns, as Rust's memory model requires of non-temporal stores.
//!
//! The hints cannot change a result: a prefetch cannot fault and does not change what any
//! later load returns, and `MADV_HUGEPAGE` changes how the kernel backs pages, never
//! their contents (the batch tests compare against single lookups; the tests below
//! check contents). Where a hint is not available (other architectures or systems, or
//! huge pages disabled), it does nothing.

#![allow(unsafe_code)]

/// Hints the CPU to bring `slice[index]` into the L1 cache. Out-of-range indices are
/// ignored. Safe to call with anything: a hint never faults and never changes a result.
///
/// ```
/// let slots = vec![0u64; 1024];
/// inregion_table::prefetch(&slots, 700); // start the load now, use the slot later
/// inregion_table::prefetch(&slots, 5000); // out of range: nothing happens
/// assert_eq!(slots[700], 0);
/// ```
#[inline(always)]
pub fn prefetch<T>(slice: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = slice.get(index) {
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has (it is part of the
        // x86_64 baseline the crate is compiled for). It never dereferences the pointer
        // architecturally and cannot fault; the pointer comes from a live reference.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                (item as *const T).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, index);
}

/// Writes `value` to `*dst` with non-temporal (streaming) stores when `T` is exactly one
/// 64-byte-aligned cache line on x86_64: the line is written whole without first being
/// read from memory (no read-for-ownership), and without displacing other lines from the
/// cache. Elsewhere, a plain assignment. Later loads by the same thread see the value;
/// call [`stream_fence`] before another thread may read it.
#[inline(always)]
pub fn write_streaming<T: Copy>(dst: &mut T, value: T) {
    #[cfg(target_arch = "x86_64")]
    if std::mem::size_of::<T>() == 64 && std::mem::align_of::<T>() >= 64 {
        use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let src = (&value as *const T).cast::<__m128i>();
        let dst = (dst as *mut T).cast::<__m128i>();
        // SAFETY: SSE2 is in the x86_64 baseline. `dst` comes from a live `&mut T` of 64
        // bytes aligned to 64, so the four 16-byte stores are in bounds and 16-aligned as
        // `_mm_stream_si128` requires; `src` is a live local of the same size (read
        // unaligned). `T: Copy` has no drop glue, so overwriting without dropping the old
        // value is what an assignment does, and the bytes written are a valid `T`.
        unsafe {
            for i in 0..4 {
                _mm_stream_si128(dst.add(i), _mm_loadu_si128(src.add(i)));
            }
        }
        return;
    }
    *dst = value;
}

/// Orders every earlier [`write_streaming`] before any later store (an `sfence`), so that
/// another thread that synchronizes with this one afterwards sees them.
#[inline(always)]
pub fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is in the x86_64 baseline; a fence has no operands.
    unsafe {
        core::arch::x86_64::_mm_sfence();
    }
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
/// let v = inregion_table::huge_page_vec(1 << 20, 7u64);
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
/// pages. `start..start + len` must lie inside one live allocation owned by the caller.
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
    fn streaming_writes_read_back_like_assignments() {
        // One 64-byte line (the streaming path on x86_64), in a large array written out
        // of order, then read back by this thread and after the fence.
        #[derive(Clone, Copy, Default, PartialEq, Debug)]
        #[repr(C, align(64))]
        struct Line([u64; 8]);
        let mut lines = vec![Line::default(); 4096];
        for i in (0..lines.len()).rev().step_by(3) {
            write_streaming(&mut lines[i], Line([i as u64; 8]));
            assert_eq!(lines[i], Line([i as u64; 8]), "read back by the writer");
        }
        stream_fence();
        for (i, l) in lines.iter().enumerate() {
            let want = if (lines.len() - 1 - i) % 3 == 0 {
                i as u64
            } else {
                0
            };
            assert_eq!(*l, Line([want; 8]), "{i}");
        }
        // Other sizes and alignments: a plain assignment.
        let mut small = [0u32; 3];
        write_streaming(&mut small, [1, 2, 3]);
        let mut unaligned = [0u8; 64];
        write_streaming(&mut unaligned, [9u8; 64]);
        assert_eq!((small, unaligned), ([1, 2, 3], [9u8; 64]));
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
