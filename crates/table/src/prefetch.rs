//! Software prefetch: the crate's only `unsafe`, kept to one audited call.
//!
//! Batch lookups first touch the direct-pointing entries of a whole group of addresses,
//! then the nodes they point to, issuing a prefetch for each so that the cache misses of
//! the group overlap instead of being paid one after another (memory-level parallelism).
//! A prefetch is only a hint: it cannot fault, and it does not change what any later load
//! returns, so it cannot affect results (the batch tests compare against single lookups).
//!
//! On targets other than x86_64 [`prefetch`] compiles to nothing.

#![allow(unsafe_code)]

/// Hints the CPU to bring `slice[index]` into the L1 cache. Out-of-range indices are
/// ignored.
#[inline(always)]
pub(crate) fn prefetch<T>(slice: &[T], index: usize) {
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
}
