//! Non-temporal ("streaming") line stores, fenced by construction.
//!
//! Rust's contract for a non-temporal store (see `core::arch::x86_64::_mm_sfence`):
//! after it, and before any other access to the memory it wrote, even by the same
//! thread, that thread must execute `_mm_sfence`. Here a store can only be issued by a
//! [`StreamingWriter`], a writer only exists inside [`with_streaming`], and everything
//! that can reach the written memory before the scope's closing fence goes through the
//! writer, which fences first when the element it is asked for has a pending store.
//!
//! The invariant the writer keeps (call it *P*): every element that has had a streaming
//! store since this thread's last `sfence` is in `pending[..count]`, and its bit
//! (`filter_bit(index)`) is set in `filter`. Every access to an element (`get`, `get_mut`,
//! `write`) first checks the element against *P* and fences when it is pending;
//! `vec_mut` and the end of the scope fence whatever is pending. Resetting `count` and
//! `filter` happens only right after an `sfence`.

use std::cell::Cell;
use std::marker::PhantomData;

use zerocopy::IntoBytes;

/// Most streaming stores a [`StreamingWriter`] keeps pending: one more fences them all
/// first. 64 is a receive batch of new flows, so a batch of new flows is fenced once, at
/// the end; the list is 512 bytes of the writer's stack frame.
pub const PENDING_MAX: usize = 64;

/// Bits of the writer's filter of pending elements: eight times [`PENDING_MAX`], so that
/// even with a full list a new element's bit is set only one time in eight, and the
/// exact list is scanned that rarely (a 64-bit filter was set for most elements by the
/// end of a batch of 64 new flows, and its scans were an eighth of a new flow's
/// instructions).
const FILTER_BITS: usize = 8 * PENDING_MAX;
/// 64-bit words of the filter.
const FILTER_WORDS: usize = FILTER_BITS / 64;

/// Runs `f` with a [`StreamingWriter`] over `vec` and returns what `f` returns. Every
/// streaming store the writer issued is fenced before this function returns (or unwinds
/// out of `f`), so the vector is never seen with a store pending once the scope is over;
/// inside it, the writer is the only way to reach the elements.
///
/// The scope is a closure rather than a guard value because a guard could be leaked
/// (`std::mem::forget`), ending the borrow of the vector without its fence.
///
/// ```
/// #[derive(Clone, Copy, Default, PartialEq, Debug, zerocopy::IntoBytes)]
/// #[repr(C, align(64))]
/// struct Line([u64; 8]);
///
/// let mut lines = vec![Line::default(); 1024];
/// let n = inregion_hint::with_streaming(&mut lines, |w| {
///     for i in (0..w.len()).step_by(7) {
///         w.write(i, Line([i as u64; 8]));
///     }
///     w.len()
/// });
/// assert_eq!(n, 1024);
/// assert_eq!(lines[700], Line([700; 8]));
/// ```
///
/// While the writer lives, the vector cannot be reached except through it (the scope
/// holds its unique borrow):
///
/// ```compile_fail
/// # #[derive(Clone, Copy, Default, zerocopy::IntoBytes)]
/// # #[repr(C, align(64))]
/// # struct Line([u64; 8]);
/// let mut lines = vec![Line::default(); 8];
/// inregion_hint::with_streaming(&mut lines, |w| {
///     w.write(3, Line([1; 8]));
///     let early = lines[3]; // error[E0502]: `lines` is mutably borrowed by the scope
/// });
/// ```
///
/// The writer cannot leave the scope (its lifetime ends with the closure's call)...
///
/// ```compile_fail
/// # #[derive(Clone, Copy, Default, zerocopy::IntoBytes)]
/// # #[repr(C, align(64))]
/// # struct Line([u64; 8]);
/// let mut lines = vec![Line::default(); 8];
/// let w = inregion_hint::with_streaming(&mut lines, |w| w); // error: lifetime
/// ```
///
/// ...nor go to another thread, whose fence would not order this thread's stores:
///
/// ```compile_fail
/// # #[derive(Clone, Copy, Default, zerocopy::IntoBytes)]
/// # #[repr(C, align(64))]
/// # struct Line([u64; 8]);
/// let mut lines = vec![Line::default(); 8];
/// inregion_hint::with_streaming(&mut lines, |w| {
///     std::thread::scope(|s| {
///         s.spawn(|| w.write(0, Line([1; 8]))); // error[E0277]: cannot be sent
///     });
/// });
/// ```
///
/// A type with padding is refused: its padding bytes are uninitialized, and a streaming
/// store loads the value's bytes as integers. (`#[derive(zerocopy::IntoBytes)]` on it
/// fails too, naming the padding.)
///
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// #[repr(C, align(64))]
/// struct Padded(u8); // 63 bytes of padding
/// let mut v = vec![Padded(0); 4];
/// inregion_hint::with_streaming(&mut v, |w| w.write(0, Padded(1))); // error[E0277]: IntoBytes
/// ```
#[inline]
pub fn with_streaming<T, R>(vec: &mut Vec<T>, f: impl FnOnce(&mut StreamingWriter<'_, T>) -> R) -> R
where
    T: Copy + IntoBytes,
{
    let mut writer = StreamingWriter {
        vec,
        filter: [const { Cell::new(0) }; FILTER_WORDS],
        count: Cell::new(0),
        pending: [0; PENDING_MAX],
        _same_thread: PhantomData,
    };
    f(&mut writer)
    // `writer` is dropped here, or while unwinding out of `f`; its `Drop` fences. The
    // closure only ever had `&mut writer`, so it could not forget it or move it away.
}

/// The writer of a [`with_streaming`] scope: streaming stores into its vector, and
/// reads and plain writes of elements that fence first when the element has a pending
/// store (so none is ever read, or written again, before its fence).
///
/// A streaming store is used when `T` is exactly one 64-byte-aligned 64-byte cache line
/// on x86_64 ([`streams`](Self::streams)); any other `T` gets a plain assignment and
/// nothing is ever pending. `Send` and `Sync` are not implemented: the fence that
/// completes a store must run on the thread that issued it.
pub struct StreamingWriter<'a, T> {
    /// The unique borrow of the vector for the scope. Elements are addressed through its
    /// raw pointer (`as_ptr`/`as_mut_ptr` create no reference to the slice), so that no
    /// reference ever covers an element with a pending store.
    vec: &'a mut Vec<T>,
    /// Bit [`filter_bit`]`(index)` of every pending element (a filter: a clear bit proves
    /// the element is not pending; a set bit is checked against `pending`).
    filter: [Cell<u64>; FILTER_WORDS],
    /// Number of pending elements, `pending[..count]`.
    count: Cell<usize>,
    /// The elements written with streaming stores since the last fence.
    pending: [usize; PENDING_MAX],
    /// Neither `Send` nor `Sync` (the `Cell`s alone would allow `Send`).
    _same_thread: PhantomData<*mut ()>,
}

impl<T> StreamingWriter<'_, T> {
    /// Whether [`write`](Self::write) issues streaming stores for `T` on this target:
    /// `T` is one 64-byte cache line aligned to 64 bytes, on x86_64. Otherwise writes are
    /// plain assignments and nothing is ever pending.
    const STREAMS: bool = cfg!(target_arch = "x86_64")
        && std::mem::size_of::<T>() == 64
        && std::mem::align_of::<T>() == 64;

    /// Whether [`write`](Self::write) issues streaming stores for `T` on this target:
    /// `T` is exactly one 64-byte cache line aligned to 64 bytes, on x86_64. Otherwise
    /// writes are plain assignments and nothing is ever pending.
    #[inline]
    pub fn streams(&self) -> bool {
        Self::STREAMS
    }

    /// Number of elements of the vector.
    #[inline]
    pub fn len(&self) -> usize {
        self.vec.len()
    }

    /// Whether the vector is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.vec.is_empty()
    }

    /// Number of streaming stores issued and not yet fenced (at most [`PENDING_MAX`]).
    #[inline]
    pub fn pending(&self) -> usize {
        self.count.get()
    }

    /// `&vec[index]`, or `None` when out of range. Fences first when the element has a
    /// pending streaming store; an element without one is read as plain indexing would.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.vec.len() {
            return None;
        }
        self.settle(index);
        // SAFETY: `index < len`, so the pointer is in bounds of the vector's allocation,
        // aligned, and points to an initialized `T`. The element has no pending
        // streaming store: `settle` fenced if it had one, and no store can be issued
        // while the returned reference lives (it borrows `self`; `write` needs
        // `&mut self`). No `&mut` to it exists: the writer holds the vector's unique
        // borrow and lends mutable access only through `&mut self` methods, whose
        // borrows cannot overlap this one. `as_ptr` creates no reference to the slice,
        // so no other (possibly pending) element is covered by a reference.
        Some(unsafe { &*self.vec.as_ptr().add(index) })
    }

    /// `&mut vec[index]`, or `None` when out of range. Fences first when the element has
    /// a pending streaming store.
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.vec.len() {
            return None;
        }
        self.settle(index);
        // SAFETY: as in `get`: in bounds, aligned, initialized, not pending (fenced by
        // `settle`, and no store can be issued while the returned borrow of `self`
        // lives). It is unique: the writer holds the vector's unique borrow and every
        // other reference it lends borrows `self`, which this `&mut self` excludes.
        Some(unsafe { &mut *self.vec.as_mut_ptr().add(index) })
    }

    /// Hints the CPU to bring element `index` into the cache (see
    /// [`prefetch`](crate::prefetch)); out of range: nothing. Not an access: it needs no
    /// fence, even for an element with a pending store.
    #[inline(always)]
    pub fn prefetch(&self, index: usize) {
        if index < self.vec.len() {
            crate::prefetch_ptr(self.vec.as_ptr().wrapping_add(index));
        }
    }

    /// Fences every pending streaming store now (the scope does it at its end anyway).
    #[inline]
    pub fn fence(&mut self) {
        self.fence_pending();
    }

    /// The whole vector, for anything the writer does not offer (reading many
    /// elements, growing or replacing it). Fences every pending store first; no store
    /// can be issued while the returned borrow lives. Later writes index whatever
    /// vector is there then.
    #[inline]
    pub fn vec_mut(&mut self) -> &mut Vec<T> {
        self.fence_pending();
        self.vec
    }

    /// Whether element `index` has a pending streaming store (invariant *P*: the filter
    /// has no false negatives and the list is exact).
    #[inline(always)]
    fn is_pending(&self, index: usize) -> bool {
        let (word, bit) = filter_bit(index);
        self.filter[word].get() & bit != 0 && self.pending[..self.count.get()].contains(&index)
    }

    /// Fences when element `index` has a pending store, so that it can be accessed.
    #[inline(always)]
    fn settle(&self, index: usize) {
        if self.is_pending(index) {
            self.fence_pending();
        }
    }

    /// Fences when anything is pending, then records that nothing is (only after the
    /// fence, keeping invariant *P*).
    #[inline]
    fn fence_pending(&self) {
        if self.count.get() != 0 {
            sfence();
            self.count.set(0);
            for w in &self.filter {
                w.set(0);
            }
        }
    }
}

impl<T: Copy + IntoBytes> StreamingWriter<'_, T> {
    /// `vec[index] = value`, with streaming stores when [`streams`](Self::streams): the
    /// line is written whole, without first being read from memory
    /// (read-for-ownership) and without displacing other lines from the cache. The
    /// element then has a pending store until the next fence, which the writer issues
    /// itself before anything reaches the element again, when more than
    /// [`PENDING_MAX`] stores are pending, or at the end of the scope.
    ///
    /// # Panics
    /// If `index` is out of range, as indexing does.
    #[inline]
    #[track_caller]
    pub fn write(&mut self, index: usize, value: T) {
        let len = self.vec.len();
        if index >= len {
            out_of_range(index, len);
        }
        if !Self::STREAMS {
            // Nothing is ever pending for such a `T`: a plain assignment.
            self.vec[index] = value;
            return;
        }
        // A second store to a line with a pending one is another access: fence first.
        self.settle(index);
        if self.count.get() == PENDING_MAX {
            self.fence_pending();
        }
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
            let src = (&value as *const T).cast::<__m128i>();
            let dst = self.vec.as_mut_ptr().wrapping_add(index).cast::<__m128i>();
            // SAFETY: SSE2 is in the x86_64 baseline. `STREAMS`: `T` is 64 bytes aligned
            // to 64, and `index < len`, so `dst` points to one whole element inside the
            // vector's allocation and the four 16-byte stores are in bounds and
            // 16-aligned as `_mm_stream_si128` requires. The element may be written:
            // the writer holds the vector's unique borrow, no reference to the element is
            // live (every one the writer lends borrows `self`, excluded by this
            // `&mut self`), no other thread can see it (the writer is neither `Send` nor
            // `Sync`), and it has no pending store (`settle` above). `src` is the local
            // `value`, 64 bytes, read unaligned; `T: IntoBytes` guarantees all 64 bytes
            // are initialized (no padding), so loading them as integer vectors is
            // defined. The bytes written are those of `value`, a valid `T`, and
            // `T: Copy` has no drop glue: the result is exactly what `vec[index] = value`
            // leaves. The store is recorded as pending right below, before anything else
            // can run, so invariant *P* holds again when this returns.
            unsafe {
                for k in 0..4 {
                    _mm_stream_si128(dst.add(k), _mm_loadu_si128(src.add(k)));
                }
            }
        }
        let n = self.count.get();
        self.pending[n] = index;
        self.count.set(n + 1);
        let (word, bit) = filter_bit(index);
        self.filter[word].set(self.filter[word].get() | bit);
    }
}

impl<T> Drop for StreamingWriter<'_, T> {
    /// Fences whatever is pending. The writer is owned by [`with_streaming`], which drops
    /// it when the closure returns or unwinds, before the vector's borrow ends.
    fn drop(&mut self) {
        self.fence_pending();
    }
}

impl<T> std::fmt::Debug for StreamingWriter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingWriter")
            .field("len", &self.vec.len())
            .field("streams", &Self::STREAMS)
            .field("pending", &self.count.get())
            .finish()
    }
}

/// The filter bit of element `index`: its word, and the bit within it. The bit is
/// taken from the top of a multiplicative hash of the index, not from its low bits:
/// the elements a caller writes may share their low bits (a hash table's free slots
/// are mostly the first of their group of 8), which would crowd them onto few bits.
#[inline(always)]
fn filter_bit(index: usize) -> (usize, u64) {
    let b =
        ((index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FILTER_BITS.ilog2())) as usize;
    (b / 64, 1 << (b % 64))
}

/// Orders every earlier streaming store of this thread before any later access (the
/// "join" of Rust's model of non-temporal stores).
#[inline(always)]
fn sfence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_sfence` needs SSE, which is in the x86_64 baseline; it has no operands
    // and accesses no memory.
    unsafe {
        core::arch::x86_64::_mm_sfence();
    }
}

#[cold]
#[track_caller]
fn out_of_range(index: usize, len: usize) -> ! {
    panic!("StreamingWriter::write: index {index} out of range for length {len}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One cache line: the streaming path on x86_64.
    #[derive(Clone, Copy, Default, PartialEq, Debug, zerocopy::IntoBytes)]
    #[repr(C, align(64))]
    struct Line([u64; 8]);

    fn line(i: usize) -> Line {
        Line(std::array::from_fn(|k| (i as u64) << 8 | k as u64))
    }

    #[test]
    fn writes_what_assignment_writes() {
        // A large vector written out of order, with reads in between (of elements with
        // and without pending stores), against the same writes done by assignment.
        let mut lines = vec![Line::default(); 4096];
        let mut want = lines.clone();
        with_streaming(&mut lines, |w| {
            assert_eq!(w.streams(), cfg!(target_arch = "x86_64"));
            for i in (0..w.len()).rev().step_by(3) {
                w.write(i, line(i));
                want[i] = line(i);
                if i % 5 == 0 {
                    assert_eq!(w.get(i), Some(&line(i)), "read back by the writer");
                }
                if i % 7 == 0 {
                    // Written again before its fence: the second store wins.
                    w.write(i, line(i + 1));
                    want[i] = line(i + 1);
                }
                if i % 11 == 0 {
                    let e = w.get_mut(i).unwrap();
                    e.0[3] ^= 0xFF;
                    want[i].0[3] ^= 0xFF;
                }
                if i + 1 < w.len() {
                    assert_eq!(w.get(i + 1), Some(&want[i + 1]));
                }
            }
        });
        assert!(lines == want);
        // After the scope, a second scope sees the same contents.
        with_streaming(&mut lines, |w| {
            for (i, l) in want.iter().enumerate() {
                assert_eq!(w.get(i), Some(l), "{i}");
            }
        });
    }

    #[test]
    fn fences_only_what_it_must() {
        // An element whose filter bit is element 0's.
        let twin = (1..).find(|&i| filter_bit(i) == filter_bit(0)).unwrap();
        let mut lines = vec![Line::default(); 300.max(twin + 1)];
        with_streaming(&mut lines, |w| {
            if !w.streams() {
                return;
            }
            w.write(0, line(0));
            assert_eq!(w.pending(), 1);
            // Other elements, and one that shares element 0's filter bit: no fence.
            assert_eq!(w.get(1), Some(&Line::default()));
            assert_eq!(w.get(64), Some(&Line::default()));
            assert_eq!(w.get(twin), Some(&Line::default()));
            assert!(w.get_mut(128).is_some());
            w.prefetch(0);
            assert_eq!(w.pending(), 1);
            // The pending element itself: fenced, then read.
            assert_eq!(w.get(0), Some(&line(0)));
            assert_eq!(w.pending(), 0);
            w.write(5, line(5));
            w.write(5, line(6)); // fences the first store before the second
            assert_eq!(w.pending(), 1);
            assert_eq!(w.get_mut(5).copied(), Some(line(6)));
            assert_eq!(w.pending(), 0);
            w.write(7, line(7));
            w.fence();
            assert_eq!(w.pending(), 0);
            // Never more than PENDING_MAX pending.
            for i in 0..200 {
                w.write(i, line(i));
                assert!(w.pending() <= PENDING_MAX);
                assert!(w.pending() > 0);
            }
            assert_eq!(w.pending(), 200 - 3 * PENDING_MAX);
            w.vec_mut();
            assert_eq!(w.pending(), 0);
        });
        assert!(lines[..200].iter().enumerate().all(|(i, l)| *l == line(i)));
    }

    #[test]
    fn out_of_range_reads_are_none() {
        let mut lines = vec![Line::default(); 3];
        with_streaming(&mut lines, |w| {
            w.write(2, line(2));
            assert_eq!(w.get(3), None);
            assert_eq!(w.get(usize::MAX), None);
            assert!(w.get_mut(3).is_none());
            w.prefetch(3);
            w.prefetch(usize::MAX);
            assert_eq!(w.len(), 3);
        });
        assert_eq!(lines[2], line(2));
        let mut empty: Vec<Line> = Vec::new();
        with_streaming(&mut empty, |w| {
            assert!(w.is_empty());
            assert_eq!(w.get(0), None);
        });
    }

    #[test]
    #[should_panic(expected = "index 3 out of range for length 3")]
    fn out_of_range_write_panics() {
        let mut lines = vec![Line::default(); 3];
        with_streaming(&mut lines, |w| w.write(3, line(3)));
    }

    #[test]
    fn other_types_get_plain_stores() {
        // Smaller, unaligned, larger, or 64 bytes at a smaller alignment.
        #[derive(Clone, Copy, Default, PartialEq, Debug, zerocopy::IntoBytes)]
        #[repr(C, align(64))]
        struct TwoLines([u64; 16]);
        #[derive(Clone, Copy, Default, PartialEq, Debug, zerocopy::IntoBytes)]
        #[repr(C, align(32))]
        struct HalfAligned([u64; 8]);

        fn check<T: Copy + IntoBytes + PartialEq + std::fmt::Debug>(
            zero: T,
            f: impl Fn(usize) -> T,
        ) {
            let mut v = vec![zero; 100];
            let mut want = v.clone();
            with_streaming(&mut v, |w| {
                assert!(!w.streams());
                for i in (0..100).step_by(3) {
                    w.write(i, f(i));
                    want[i] = f(i);
                    assert_eq!(w.pending(), 0);
                    assert_eq!(w.get(i), Some(&f(i)));
                }
            });
            assert_eq!(v, want);
        }
        check(0u32, |i| i as u32 * 3);
        check([0u8; 64], |i| [i as u8; 64]);
        check(TwoLines::default(), |i| TwoLines([i as u64; 16]));
        check(HalfAligned::default(), |i| HalfAligned([i as u64; 8]));
    }

    #[test]
    fn the_vector_can_grow_inside_the_scope() {
        let mut lines = vec![Line::default(); 8];
        with_streaming(&mut lines, |w| {
            w.write(7, line(7));
            let v = w.vec_mut(); // fences: the pending line is readable
            assert_eq!(v[7], line(7));
            *v = {
                let mut bigger = vec![Line::default(); 4096];
                bigger[..8].copy_from_slice(v);
                bigger
            };
            assert_eq!(w.pending(), 0);
            w.write(4000, line(4000));
            w.write(6, line(6));
            assert_eq!(w.get(7), Some(&line(7)));
        });
        assert_eq!(lines.len(), 4096);
        assert_eq!(
            (lines[6], lines[7], lines[4000]),
            (line(6), line(7), line(4000))
        );
    }

    #[test]
    fn a_panicking_scope_still_leaves_what_was_written() {
        let mut lines = vec![Line::default(); 16];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_streaming(&mut lines, |w| {
                w.write(3, line(3));
                panic!("in the scope");
            })
        }));
        assert!(r.is_err());
        assert_eq!(lines[3], line(3));
    }
}
