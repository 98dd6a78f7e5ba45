//! The layout for small IPv4 tables (a customer's or a region's bindings): a multibit
//! trie with fixed strides of 16, 8 and 8 bits ("DIR-16-8-8"), each level a plain array
//! of 16-bit entries.
//!
//! ```text
//!   top: 2^16 entries (128 KiB), indexed by the address's first 16 bits
//!     ├─ LEAF | leaf               the answer for the whole /16
//!     └─ chunk c                   chunks[c][bits 16..24]        (512 bytes a chunk)
//!                                    ├─ LEAF | leaf   the answer for the /24
//!                                    └─ chunk d       chunks[d][bits 24..32]: a leaf
//! ```
//!
//! A lookup is at most three dependent reads, each a plain index: no popcount, no bitmap
//! test. A batch walks its lanes level by level and only the lanes that stand on a chunk
//! take the next step, so the only branches are loop bounds, not where each walk ends.
//! The Poptrie layouts spend their instructions and branch misses exactly there: on a
//! BYOIP-shaped table of 2,000 prefixes, a batch walk took about 113 instructions per
//! address in the Poptrie layout and 50 in this one (callgrind, the whole batch call),
//! and the edge's new flows decided 9% faster with it (13 of 16 alternating pairs won).
//!
//! The price is memory, and so the layout is kept for small tables: every /16 holding a
//! longer prefix takes a chunk, and every /24 holding a longer prefix another.
//! [`DirTrie::chunks_for`] counts them before building; the table takes this layout only
//! while the trie stays under `DIR_MAX_BYTES` (`table.rs`) and chunk and leaf indices fit
//! 15 bits, and the Poptrie layouts for anything larger (a full BGP table). 16-bit
//! entries rather than 32 halve the footprint, which is what the lookups pay for: with
//! 32-bit entries the same table (1 MiB instead of 0.5) cut the instructions as much
//! but made no measurable difference to the edge's new flows (4 of 8 pairs won).
//!
//! Built by painting prefixes in order of increasing length, so that a longer prefix
//! paints over the shorter ones that contain it: the longest match wins by construction.

use inregion_hint::prefetch;

use crate::compile::CompileEntry;
use crate::poptrie::{BATCH_LANES, LEAF_FLAG};

/// Marks an entry that holds a leaf (a dictionary index below 2^15) instead of a chunk
/// index (below 2^15 too).
const LEAF: u16 = 1 << 15;
/// Chunks and distinct leaves a trie can hold (entries are 16 bits).
pub(crate) const MAX_DIR_INDEX: usize = 1 << 15;

/// Entries per chunk (8 key bits).
const CHUNK: usize = 256;
/// Entries of the top level (16 key bits).
const TOP: usize = 1 << 16;

/// A compiled DIR-16-8-8 trie of IPv4 prefixes.
#[derive(Clone, Debug)]
pub(crate) struct DirTrie {
    /// Indexed by the first 16 bits: `LEAF | leaf`, or a chunk index (never 0).
    top: Box<[u16; TOP]>,
    /// Chunk 0 is a dummy read by walks that already hold a leaf; the others hold
    /// `LEAF | leaf` or (second level only) the index of a third-level chunk.
    chunks: Box<[[u16; CHUNK]]>,
}

/// The chunk `entry` points to; when `entry` is a leaf (painted by a shorter prefix), a
/// new chunk filled with that leaf takes its place, so that the addresses a longer prefix
/// does not cover keep the shorter one's answer.
fn split(entry: &mut u16, chunks: &mut Vec<[u16; CHUNK]>) -> usize {
    if *entry & LEAF != 0 {
        chunks.push([*entry; CHUNK]);
        *entry = u16::try_from(chunks.len() - 1)
            .ok()
            .filter(|&c| c & LEAF == 0)
            .expect("fewer than 2^15 chunks (checked by `chunks_for`)");
    }
    usize::from(*entry)
}

/// The 32-bit address of a compile entry (IPv4 keys sit in the top 32 bits).
#[inline]
fn addr(e: &CompileEntry) -> u32 {
    (e.key >> 96) as u32
}

impl DirTrie {
    /// Chunks (the dummy included) a trie of `entries` (sorted by `(key, len)`, IPv4)
    /// would take: counted without building it. [`build`](Self::build) needs it below
    /// [`MAX_DIR_INDEX`].
    pub(crate) fn chunks_for(entries: &[CompileEntry]) -> usize {
        // Sorted by key, so entries sharing a /16 (or a /24) are contiguous.
        let distinct = |min_len: u8, shift: u32| {
            let mut last = None;
            entries
                .iter()
                .filter(|e| e.len > min_len)
                .filter(|e| {
                    let block = addr(e) >> shift;
                    let new = last != Some(block);
                    last = Some(block);
                    new
                })
                .count()
        };
        1 + distinct(16, 16) + distinct(24, 8)
    }

    /// Heap bytes of a trie of `chunks` chunks.
    pub(crate) fn bytes_with(chunks: usize) -> usize {
        std::mem::size_of::<[u16; TOP]>() + chunks * std::mem::size_of::<[u16; CHUNK]>()
    }

    /// Compiles `entries` (IPv4, host bits zero, leaves non-zero and below
    /// [`MAX_DIR_INDEX`], fewer than [`MAX_DIR_INDEX`] chunks by
    /// [`chunks_for`](Self::chunks_for)).
    pub(crate) fn build(entries: &[CompileEntry]) -> Self {
        let mut by_len: Vec<&CompileEntry> = entries.iter().collect();
        by_len.sort_by_key(|e| e.len);
        let top: Box<[u16; TOP]> = vec![LEAF; TOP]
            .into_boxed_slice()
            .try_into()
            .expect("TOP entries");
        let mut trie = DirTrie {
            top,
            chunks: Box::new([]),
        };
        let mut chunks: Vec<[u16; CHUNK]> = vec![[LEAF; CHUNK]];
        for e in by_len {
            let a = addr(e);
            let leaf = u16::try_from(e.leaf)
                .ok()
                .filter(|&l| l & LEAF == 0)
                .expect("leaves below 2^15 (checked by the caller)")
                | LEAF;
            let len = u32::from(e.len);
            let hi = (a >> 16) as usize;
            let mid = ((a >> 8) & 0xFF) as usize;
            let lo = (a & 0xFF) as usize;
            if len <= 16 {
                trie.top[hi..hi + (1 << (16 - len))].fill(leaf);
                continue;
            }
            let c = split(&mut trie.top[hi], &mut chunks);
            if len <= 24 {
                chunks[c][mid..mid + (1 << (24 - len))].fill(leaf);
                continue;
            }
            let mut entry = chunks[c][mid];
            let d = split(&mut entry, &mut chunks);
            chunks[c][mid] = entry;
            chunks[d][lo..lo + (1 << (32 - len))].fill(leaf);
        }
        trie.chunks = chunks.into_boxed_slice();
        trie
    }

    /// Heap bytes of the compiled structure.
    pub(crate) fn size_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.top) + std::mem::size_of_val(&*self.chunks)
    }

    /// Chunks, the dummy included (the counterpart of a node count).
    pub(crate) fn node_count(&self) -> usize {
        self.chunks.len()
    }

    /// One level down: `entry`'s chunk at `byte`, or `entry` itself when it is a leaf
    /// (which reads the dummy chunk 0 instead: no branch on the entry).
    #[inline(always)]
    fn step(&self, entry: u16, byte: u8) -> u16 {
        // All ones when `entry` is a leaf.
        let leaf = ((entry as i16) >> 15) as u16;
        let next = self.chunks[usize::from(entry & !leaf)][usize::from(byte)];
        (next & !leaf) | (entry & leaf)
    }

    /// The leaf (dictionary index, `0` = no match) for `addr`.
    #[inline(always)]
    pub(crate) fn lookup(&self, addr: u32) -> u32 {
        let e = self.top[(addr >> 16) as usize];
        // Most addresses of a small table's space are not in it: their walk ends here,
        // on a branch that traffic to unbound space predicts well.
        if e & LEAF != 0 {
            return u32::from(e & !LEAF);
        }
        let e = self.step(e, (addr >> 8) as u8);
        u32::from(self.step(e, addr as u8) & !LEAF)
    }

    /// Prefetches the top-level entry of `addr` (the first line a lookup reads).
    #[inline(always)]
    pub(crate) fn prefetch_top(&self, addr: u32) {
        prefetch(&self.top[..], (addr >> 16) as usize);
    }

    /// The top-level entry of `addr` in the form the other layouts use: `LEAF_FLAG |
    /// leaf`, or the index of the chunk where its walk goes on (no branch).
    #[inline(always)]
    pub(crate) fn top_entry(&self, addr: u32) -> u32 {
        let e = self.top[(addr >> 16) as usize];
        (u32::from(e >> 15) * LEAF_FLAG) | u32::from(e & !LEAF)
    }

    /// Prefetches the second-level line a chunk `entry` of [`top_entry`](Self::top_entry)
    /// leads `addr` to (for a leaf entry, a line of some chunk: harmless).
    #[inline(always)]
    pub(crate) fn prefetch_node(&self, entry: u32, addr: u32) {
        // A leaf entry reads chunk 0, the dummy (no branch on the entry).
        let chunk = entry & (entry >> 31).wrapping_sub(1);
        prefetch(
            &self.chunks[chunk as usize][..],
            usize::from((addr >> 8) as u8),
        );
    }

    /// Finishes the lookups of the lanes set in `active` level by level, each from chunk
    /// `start[lane]` (its top-level entry): only the lanes still on a chunk take the next
    /// step (a walk over a bit mask, whose only branches are its loop's). The reads of
    /// one level are independent of each other, so the CPU overlaps their misses. Their
    /// leaves go to `out`, the other lanes of `out` are left alone.
    #[inline(always)]
    pub(crate) fn walk_lanes(
        &self,
        keys: &[u32; BATCH_LANES],
        start: &[u32; BATCH_LANES],
        mut active: u64,
        out: &mut [u32; BATCH_LANES],
    ) {
        let mut e = [0u16; BATCH_LANES];
        let mut deeper = 0u64;
        while active != 0 {
            let lane = active.trailing_zeros() as usize;
            active &= active - 1;
            let next = self.chunks[start[lane] as usize][usize::from((keys[lane] >> 8) as u8)];
            e[lane] = next;
            out[lane] = u32::from(next & !LEAF);
            deeper |= u64::from(!next >> 15) << lane;
        }
        while deeper != 0 {
            let lane = deeper.trailing_zeros() as usize;
            deeper &= deeper - 1;
            // Third-level chunks hold only leaves.
            let leaf = self.chunks[usize::from(e[lane])][usize::from(keys[lane] as u8)];
            out[lane] = u32::from(leaf & !LEAF);
        }
    }

    /// [`BATCH_LANES`] lookups level by level (tests: the table's batch gathers the
    /// lanes itself, see `table.rs`).
    #[cfg(test)]
    pub(crate) fn lookup_lanes(&self, keys: &[u32; BATCH_LANES], out: &mut [u32; BATCH_LANES]) {
        let entries = keys.map(|k| self.top_entry(k));
        let active = crate::poptrie::lanes_from_entries(&entries, out);
        self.walk_lanes(keys, &entries, active, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::compile::v4_entry as v4;

    fn sorted(mut v: Vec<CompileEntry>) -> Vec<CompileEntry> {
        v.sort();
        v
    }

    #[test]
    fn every_level_and_the_default_route_resolve_to_the_longest() {
        let entries = sorted(vec![
            v4([0, 0, 0, 0], 0, 1),
            v4([10, 0, 0, 0], 8, 2),
            v4([10, 1, 0, 0], 16, 3),
            v4([10, 1, 2, 0], 23, 4),
            v4([10, 1, 2, 0], 24, 5),
            v4([10, 1, 2, 128], 25, 6),
            v4([10, 1, 2, 200], 32, 7),
        ]);
        let t = DirTrie::build(&entries);
        let at = |a: [u8; 4]| t.lookup(u32::from_be_bytes(a));
        assert_eq!(at([9, 9, 9, 9]), 1);
        assert_eq!(at([10, 9, 0, 0]), 2);
        assert_eq!(at([10, 1, 9, 0]), 3);
        assert_eq!(at([10, 1, 3, 1]), 4);
        assert_eq!(at([10, 1, 2, 1]), 5);
        assert_eq!(at([10, 1, 2, 129]), 6);
        assert_eq!(at([10, 1, 2, 200]), 7);
        assert_eq!(at([10, 1, 2, 201]), 6);
        // Chunks: the dummy, one for 10.1/16, one for 10.1.2/24.
        assert_eq!(t.node_count(), 3);
        assert_eq!(DirTrie::chunks_for(&entries), 3);
        assert_eq!(t.size_bytes(), DirTrie::bytes_with(3));
    }

    #[test]
    fn an_empty_trie_misses_everywhere() {
        let t = DirTrie::build(&[]);
        assert_eq!(t.lookup(0), 0);
        assert_eq!(t.lookup(u32::MAX), 0);
        assert_eq!(t.node_count(), 1);
    }

    #[test]
    fn lanes_agree_with_single_lookups() {
        let entries = sorted(vec![
            v4([192, 0, 2, 0], 24, 1),
            v4([192, 0, 2, 64], 26, 2),
            v4([198, 51, 0, 0], 16, 3),
            v4([255, 255, 255, 255], 32, 4),
        ]);
        let t = DirTrie::build(&entries);
        let mut keys = [0u32; BATCH_LANES];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = match i % 4 {
                0 => 0xC000_0200 | (i as u32 * 7) & 0xFF,
                1 => 0xC633_0000 | i as u32,
                2 => u32::MAX - (i as u32 % 2),
                _ => (i as u32).wrapping_mul(0x9E37_79B9),
            };
        }
        let mut out = [0u32; BATCH_LANES];
        t.lookup_lanes(&keys, &mut out);
        for (k, o) in keys.iter().zip(out) {
            assert_eq!(o, t.lookup(*k), "{k:#x}");
        }
    }
}
