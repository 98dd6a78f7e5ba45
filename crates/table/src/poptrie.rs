//! The compiled lookup structure: a Poptrie (Asai & Ohara, SIGCOMM 2015).
//!
//! A key is consumed from its most significant bit: the first `top_bits` bits (chosen per
//! trie at build time) index a flat *direct-pointing* array; every further level consumes
//! a 6-bit *chunk* and lives in a [`Node`] that describes its 64 slots with two bitmaps:
//!
//! - `children`: bit `s` set when slot `s` continues in a child node. The children of a
//!   node are stored contiguously, so the child of slot `s` is
//!   `nodes[child_base + popcount(children & bits_up_to(s)) - 1]`.
//! - `leaf_runs`: bit `s` set when slot `s` is a leaf whose value differs from the
//!   previous leaf slot of the same node (run-length leaf compression). The value of leaf
//!   slot `s` is `leaves[leaf_base + popcount(leaf_runs & bits_up_to(s)) - 1]`.
//!
//! Leaf values are indices into the table's value dictionary; `0` means "no prefix
//! matches". The build collapses every subtree whose slots all resolve to one value into
//! a single leaf, which is what keeps a table with few distinct values small.
//!
//! With `u16` leaves the trie is path-compressed like the nibble layout (`compile.rs`):
//! a node's `meta` word holds its offset, a 40-bit window of the key bits it expects
//! and the `fallback` leaf for keys that differ, so a synthetic IPv6 /48 is two or
//! three nodes below the direct-pointing array instead of six, and an address that leaves
//! a sparse subtree is answered by its first node without a leaf read. `u32` leaves
//! (more than 65,535 values) do not fit the fallback: that trie is not compressed, and
//! its `meta` holds the offset and a window that every key reaching the node matches.
//!
//! Build input: prefixes as left-aligned `u128` keys, sorted by `(key, len)` (so every
//! prefix comes before the prefixes nested inside it), without duplicates.

use inregion_hint::prefetch;

#[cfg(test)]
use crate::compile::{compile, CompileEntry};
use crate::compile::{Compiled, MAX_JUMP};

/// Bits consumed per node level.
pub(crate) const STRIDE: u32 = 6;

/// Marks a direct-pointing entry that holds a leaf value instead of a node index.
pub(crate) const LEAF_FLAG: u32 = 1 << 31;

/// How many lookups a batch prefetches together (enough independent misses in flight to
/// hide most of the memory latency, few enough to stay within the CPU's miss buffers).
pub(crate) const BATCH_LANES: usize = 32;
const _: () = assert!(BATCH_LANES <= 64, "lane masks are u64");

/// One inner node: 64 slots, each a child node or a (run-compressed) leaf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Node {
    pub(crate) children: u64,
    pub(crate) leaf_runs: u64,
    pub(crate) leaf_base: u32,
    pub(crate) child_base: u32,
    /// The node's path window, offset and fallback leaf ([`pack_meta`]); set by
    /// [`Poptrie::from_compiled`] (the compiler keeps them in its `BuiltNode`).
    pub(crate) meta: u64,
}

/// Bits of a node's `meta` (and of a nibble tip) that hold its path window: the key
/// bits `offset - MAX_JUMP..offset` (all of `0..offset` when shorter). A node starts at
/// most [`MAX_JUMP`] bits past its parent's end, and the nodes above checked the bits
/// above the window, so comparing the window checks every bit skipped above the node.
pub(crate) const WINDOW_BITS: u32 = MAX_JUMP;
const _: () = assert!(
    WINDOW_BITS + 24 == 64,
    "meta: window, offset, a 16-bit leaf"
);

/// A `meta` word: the window of `path` (left-aligned) at `offset`, the offset (bits
/// 40..48) and `leaves` (bits 48..64: a Poptrie's fallback, or a nibble node's fallback
/// and a tip's value, see `nibble.rs`).
pub(crate) fn pack_meta(path: u128, offset: u8, leaves: u16) -> u64 {
    let window = path.window(u32::from(offset)) & ((1u64 << WINDOW_BITS) - 1);
    window | u64::from(offset) << WINDOW_BITS | u64::from(leaves) << 48
}

/// The offset of a `meta` word: the bit at which its node's chunk starts.
#[inline(always)]
pub(crate) fn meta_offset(meta: u64) -> u32 {
    (meta >> WINDOW_BITS) as u32 & 0xFF
}

/// Whether `key` lies on the path whose window `meta` holds, for a node at `offset`.
#[inline(always)]
pub(crate) fn on_path<K: TrieKey>(key: K, meta: u64, offset: u32) -> bool {
    // Shifting out the top 24 bits drops the offset and the leaves.
    (key.window(offset) ^ meta) << (64 - WINDOW_BITS) == 0
}

/// A leaf value as stored: an index into the value dictionary (`0` = no match).
pub(crate) trait LeafIndex: Copy + Eq + Default + std::fmt::Debug {
    /// Converts a dictionary index; the caller guarantees that it fits.
    fn from_index(index: u32) -> Self;
    /// The dictionary index.
    fn index(self) -> u32;
}

impl LeafIndex for u16 {
    #[inline(always)]
    fn from_index(index: u32) -> Self {
        debug_assert!(index <= u32::from(u16::MAX));
        index as u16
    }
    #[inline(always)]
    fn index(self) -> u32 {
        u32::from(self)
    }
}

impl LeafIndex for u32 {
    #[inline(always)]
    fn from_index(index: u32) -> Self {
        index
    }
    #[inline(always)]
    fn index(self) -> u32 {
        self
    }
}

/// A lookup key: an address as an unsigned integer, most significant bit first.
pub(crate) trait TrieKey: Copy {
    /// The first `bits` bits (`1..=32` for a `u32` key, `1..=64` for a `u128`), as an
    /// index into the direct-pointing array.
    fn top(self, bits: u32) -> usize;
    /// The 6-bit chunk starting at bit `offset` (zero-padded past the key's end).
    fn chunk(self, offset: u32) -> usize;
    /// The first `len` bits (`1..=64` for a `u32` key, `1..=127` for a `u128`),
    /// right-aligned, truncated to their last 64 (the nibble layout compares a window
    /// of them).
    fn window(self, len: u32) -> u64;
    /// The first 32 bits: the IPv4 address itself for a `u32` key (the DIR-16-8-8
    /// layout, IPv4 only, never sees another).
    fn v4_bits(self) -> u32;
}

impl TrieKey for u32 {
    #[inline(always)]
    fn top(self, bits: u32) -> usize {
        (self >> (32 - bits)) as usize
    }
    #[inline(always)]
    fn chunk(self, offset: u32) -> usize {
        // Widen so that a chunk running past bit 32 reads zero padding.
        (((u64::from(self) << 32) << offset) >> (64 - STRIDE)) as usize
    }
    #[inline(always)]
    fn window(self, len: u32) -> u64 {
        debug_assert!((1..=64).contains(&len));
        (u64::from(self) << 32) >> (64 - len)
    }
    #[inline(always)]
    fn v4_bits(self) -> u32 {
        self
    }
}

impl TrieKey for u128 {
    #[inline(always)]
    fn top(self, bits: u32) -> usize {
        // The direct-pointing array indexes at most 64 bits: one 64-bit shift of the high
        // half instead of a 128-bit shift (two shifts and a select on x86-64).
        debug_assert!((1..=64).contains(&bits));
        ((self >> 64) as u64 >> (64 - bits)) as usize
    }
    #[inline(always)]
    fn chunk(self, offset: u32) -> usize {
        // Nodes above /64 (nearly all of a real table's) read the high half alone: a
        // 64-bit shift instead of a 128-bit one (two shifts and a select on x86-64).
        if offset <= 64 - STRIDE {
            (((self >> 64) as u64) << offset >> (64 - STRIDE)) as usize
        } else {
            ((self << offset) >> (128 - STRIDE)) as usize
        }
    }
    #[inline(always)]
    fn window(self, len: u32) -> u64 {
        debug_assert!((1..=127).contains(&len));
        if len <= 64 {
            (self >> 64) as u64 >> (64 - len)
        } else {
            (self >> (128 - len)) as u64
        }
    }
    #[inline(always)]
    fn v4_bits(self) -> u32 {
        (self >> 96) as u32
    }
}

/// A trie's direct-pointing array, borrowed by value: a batch's first pass keeps its
/// pointer, length and width in registers instead of reading them from the trie again
/// after every answer it writes (the compiler cannot tell the answers from the trie).
#[derive(Clone, Copy)]
pub(crate) struct TopArray<'a> {
    entries: &'a [u32],
    bits: u32,
}

impl<'a> TopArray<'a> {
    /// `entries` (`1 << bits` of them) indexed by the first `bits` bits of a key.
    pub(crate) fn new(entries: &'a [u32], bits: u32) -> Self {
        debug_assert_eq!(entries.len(), 1 << bits);
        TopArray { entries, bits }
    }

    /// The direct-pointing entry of `key`: `LEAF_FLAG | leaf`, or a node index.
    #[inline(always)]
    pub(crate) fn entry<K: TrieKey>(self, key: K) -> u32 {
        self.entries[key.top(self.bits)]
    }

    /// Prefetches the direct-pointing entry of `key`.
    #[inline(always)]
    pub(crate) fn prefetch<K: TrieKey>(self, key: K) {
        prefetch(self.entries, key.top(self.bits));
    }
}

/// What a batch needs of a layout with a direct-pointing array and nodes (the nibble trie
/// and the two Poptries), so that one walk (`batch_with` in `table.rs`) serves them all.
pub(crate) trait BatchWalk {
    /// Whether the lookups of a mixed block over an in-cache trie that go on to a node
    /// are finished one at a time after the first pass rather than walked in lock-step
    /// (the Poptries: their walk does more per step than the inline-leaf one).
    const MIXED_ONE_BY_ONE: bool;

    /// The direct-pointing array, for a batch's first pass.
    fn top_array(&self) -> TopArray<'_>;

    /// The rest of a lookup, from its direct-pointing entry `entry` (a leaf entry is
    /// its own answer).
    fn finish<K: TrieKey>(&self, key: K, entry: u32) -> u32;

    /// Prefetches the node a direct-pointing `entry` names (for a leaf entry, node 0:
    /// harmless, and no branch on the entry).
    fn prefetch_node(&self, entry: u32);

    /// Finishes the lookups of the lanes set in `active` in lock-step: each lane starts
    /// on node `start[lane]` (the node its direct-pointing entry names); their leaves go
    /// to `out`, the other lanes of `out` are left alone.
    fn walk_lanes<K: TrieKey>(
        &self,
        keys: &[K; BATCH_LANES],
        start: &[u32; BATCH_LANES],
        active: u64,
        out: &mut [u32; BATCH_LANES],
    );

    /// Looks up [`BATCH_LANES`] keys in lock-step (tests: the table's batch gathers
    /// the lanes itself, see `table.rs`).
    #[cfg(test)]
    fn lookup_lanes<K: TrieKey>(&self, keys: &[K; BATCH_LANES], out: &mut [u32; BATCH_LANES]) {
        let entries = keys.map(|k| self.top_array().entry(k));
        let active = lanes_from_entries(&entries, out);
        self.walk_lanes(keys, &entries, active, out);
    }
}

/// Prefetches the node of `nodes` that a direct-pointing `entry` names (for a leaf entry,
/// node 0: harmless, and no branch on the entry).
#[inline(always)]
pub(crate) fn prefetch_entry_node<T>(nodes: &[T], entry: u32) {
    prefetch(nodes, (entry & (entry >> 31).wrapping_sub(1)) as usize);
}

/// Writes the leaf of every leaf entry of `entries` to its lane of `out`, and returns
/// the mask of the lanes whose entry names a node (tests of the layouts' lane walks).
#[cfg(test)]
pub(crate) fn lanes_from_entries(
    entries: &[u32; BATCH_LANES],
    out: &mut [u32; BATCH_LANES],
) -> u64 {
    let mut active = 0u64;
    for (lane, &entry) in entries.iter().enumerate() {
        if entry & LEAF_FLAG == 0 {
            active |= 1 << lane;
        } else {
            out[lane] = entry & !LEAF_FLAG;
        }
    }
    active
}

/// A compiled Poptrie with a `top_bits`-bit direct-pointing array and leaves of type `L`.
#[derive(Clone, Debug)]
pub(crate) struct Poptrie<L> {
    /// Key bits the direct-pointing array consumes (chosen at build time).
    pub(crate) top_bits: u32,
    /// `1 << top_bits` entries: a node index, or `LEAF_FLAG | leaf`.
    pub(crate) top: Box<[u32]>,
    pub(crate) nodes: Box<[Node]>,
    pub(crate) leaves: Box<[L]>,
}

/// Bits `0..=slot` set.
#[inline(always)]
pub(crate) fn bits_up_to(slot: usize) -> u64 {
    // For slot 63 the shift yields 0 and the subtraction wraps to all ones.
    (2u64 << slot).wrapping_sub(1)
}

impl<L: LeafIndex> Poptrie<L> {
    /// Compiles `entries` (sorted by `(key, len)`, unique, host bits zero).
    #[cfg(test)]
    pub(crate) fn build(entries: &[CompileEntry], top_bits: u32) -> Self {
        Self::from_compiled(&compile(entries, top_bits, false))
    }

    /// Lays out a compiled trie. A compressed one (nodes that skip key bits and answer
    /// their `fallback` off their path) needs fallbacks that fit the node's 16 bits:
    /// `u16` leaves only.
    pub(crate) fn from_compiled(compiled: &Compiled) -> Self {
        assert!(
            !compiled.compressed || compiled.max_leaf <= u32::from(u16::MAX),
            "a compressed Poptrie keeps its fallbacks in 16 bits"
        );
        Poptrie {
            top_bits: compiled.top_bits,
            top: compiled.top.clone().into_boxed_slice(),
            nodes: compiled
                .nodes
                .iter()
                .map(|n| Node {
                    // Uncompressed nodes are always on their path: no fallback.
                    meta: pack_meta(
                        n.path,
                        n.offset,
                        n.fallback as u16 * u16::from(compiled.compressed),
                    ),
                    ..n.node
                })
                .collect(),
            leaves: compiled.leaves.iter().map(|&l| L::from_index(l)).collect(),
        }
    }

    /// Heap bytes of the compiled structure.
    pub(crate) fn size_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.top)
            + std::mem::size_of_val(&*self.nodes)
            + std::mem::size_of_val(&*self.leaves)
    }

    /// Number of inner nodes (for diagnostics and tests).
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The leaf (dictionary index, `0` = no match) for `key`.
    #[inline(always)]
    pub(crate) fn lookup<K: TrieKey>(&self, key: K) -> u32 {
        self.finish(key, self.top_array().entry(key))
    }

    /// Prefetches the direct-pointing entry of `key` (the first line a lookup reads).
    #[inline(always)]
    pub(crate) fn prefetch_top<K: TrieKey>(&self, key: K) {
        self.top_array().prefetch(key);
    }
}

impl<L: LeafIndex> BatchWalk for Poptrie<L> {
    const MIXED_ONE_BY_ONE: bool = true;

    /// The rest of a lookup, from its direct-pointing entry `entry` (a leaf entry is
    /// its own answer).
    #[inline(always)]
    fn finish<K: TrieKey>(&self, key: K, entry: u32) -> u32 {
        if entry & LEAF_FLAG != 0 {
            return entry & !LEAF_FLAG;
        }
        let mut node = &self.nodes[entry as usize];
        loop {
            let offset = meta_offset(node.meta);
            // Always true unless the node skipped key bits (compression).
            if !on_path(key, node.meta, offset) {
                return (node.meta >> 48) as u32;
            }
            let slot = key.chunk(offset);
            let upto = bits_up_to(slot);
            if node.children & (1u64 << slot) != 0 {
                let index = node.child_base + (node.children & upto).count_ones() - 1;
                node = &self.nodes[index as usize];
            } else {
                let index = node.leaf_base + (node.leaf_runs & upto).count_ones() - 1;
                return self.leaves[index as usize].index();
            }
        }
    }

    /// The direct-pointing array, for a batch's first pass.
    #[inline(always)]
    fn top_array(&self) -> TopArray<'_> {
        TopArray::new(&self.top, self.top_bits)
    }

    /// Prefetches the node a direct-pointing `entry` names (for a leaf entry, node 0:
    /// harmless, and no branch on the entry).
    #[inline(always)]
    fn prefetch_node(&self, entry: u32) {
        prefetch_entry_node(&self.nodes, entry);
    }

    /// Finishes the lookups of the lanes set in `active` in lock-step with software
    /// prefetching: at every level each unfinished lookup takes one step and prefetches
    /// the node (or finally the leaf) it needs next, so the group's cache misses overlap.
    /// Each lane starts on node `start[lane]` (the node its direct-pointing entry names);
    /// their leaves go to `out`, the other lanes of `out` are left alone.
    #[inline(always)]
    fn walk_lanes<K: TrieKey>(
        &self,
        keys: &[K; BATCH_LANES],
        start: &[u32; BATCH_LANES],
        mut active: u64,
        out: &mut [u32; BATCH_LANES],
    ) {
        // Per lane: the node it stands on (while active), then the leaf it reads.
        let mut index = *start;
        let mut leaf_pending = 0u64;
        while active != 0 {
            let mut lanes = active;
            while lanes != 0 {
                let lane = lanes.trailing_zeros() as usize;
                lanes &= lanes - 1;
                let node = &self.nodes[index[lane] as usize];
                // Lanes of a compressed trie stand at different depths: each node
                // knows its own offset.
                let offset = meta_offset(node.meta);
                if !on_path(keys[lane], node.meta, offset) {
                    out[lane] = (node.meta >> 48) as u32;
                    active &= !(1 << lane);
                    continue;
                }
                let slot = keys[lane].chunk(offset);
                let upto = bits_up_to(slot);
                if node.children & (1u64 << slot) != 0 {
                    index[lane] = node.child_base + (node.children & upto).count_ones() - 1;
                    prefetch(&self.nodes, index[lane] as usize);
                } else {
                    index[lane] = node.leaf_base + (node.leaf_runs & upto).count_ones() - 1;
                    prefetch(&self.leaves, index[lane] as usize);
                    active &= !(1 << lane);
                    leaf_pending |= 1 << lane;
                }
            }
        }
        while leaf_pending != 0 {
            let lane = leaf_pending.trailing_zeros() as usize;
            leaf_pending &= leaf_pending - 1;
            out[lane] = self.leaves[index[lane] as usize].index();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::compile::v4_entry as v4;

    #[test]
    fn chunk_reads_zero_padding_past_the_key() {
        assert_eq!(0xFFFF_FFFFu32.chunk(30), 0b110000);
        assert_eq!(0xFFFF_FFFFu32.chunk(0), 63);
        assert_eq!(u128::MAX.chunk(124), 0b111100);
        assert_eq!(0x8000_0000u32.top(16), 0x8000);
    }

    proptest::proptest! {
        /// The IPv6 key's high-half shortcuts read the same bits as the plain 128-bit
        /// shifts, at every offset and window length, on both sides of the halves' border.
        #[test]
        fn u128_key_shortcuts_match_the_plain_shifts(key: u128, offset in 0u32..=122, len in 1u32..=127) {
            let plain_chunk = ((key << offset) >> (128 - STRIDE)) as usize;
            proptest::prop_assert_eq!(key.chunk(offset), plain_chunk);
            proptest::prop_assert_eq!(key.window(len), (key >> (128 - len)) as u64);
            let bits = len.min(64);
            proptest::prop_assert_eq!(key.top(bits), (key >> (128 - bits)) as usize);
        }
    }

    #[test]
    fn bits_up_to_covers_the_last_slot() {
        assert_eq!(bits_up_to(0), 1);
        assert_eq!(bits_up_to(63), u64::MAX);
    }

    #[test]
    fn empty_trie_has_no_nodes_and_misses() {
        let trie = Poptrie::<u16>::build(&[], 16);
        assert_eq!(trie.node_count(), 0);
        assert_eq!(trie.lookup(0u32), 0);
        assert_eq!(trie.lookup(u32::MAX), 0);
    }

    #[test]
    fn nested_prefixes_resolve_to_the_longest() {
        let entries = [
            v4([0, 0, 0, 0], 0, 1),
            v4([10, 0, 0, 0], 8, 2),
            v4([10, 1, 2, 0], 24, 3),
            v4([10, 1, 2, 3], 32, 4),
        ];
        let trie = Poptrie::<u16>::build(&entries, 16);
        let at = |a: [u8; 4]| trie.lookup(u32::from_be_bytes(a));
        assert_eq!(at([9, 255, 255, 255]), 1);
        assert_eq!(at([10, 0, 0, 0]), 2);
        assert_eq!(at([10, 1, 2, 2]), 3);
        assert_eq!(at([10, 1, 2, 3]), 4);
        assert_eq!(at([10, 1, 2, 4]), 3);
        assert_eq!(at([10, 1, 3, 0]), 2);
        assert_eq!(at([11, 0, 0, 0]), 1);
    }

    #[test]
    fn a_subtree_with_one_value_collapses_into_a_leaf() {
        // The /32 carries the same value as its /8: no node is needed.
        let entries = [v4([10, 0, 0, 0], 8, 2), v4([10, 1, 2, 3], 32, 2)];
        let trie = Poptrie::<u16>::build(&entries, 16);
        assert_eq!(trie.node_count(), 0);
        assert_eq!(trie.lookup(u32::from_be_bytes([10, 1, 2, 3])), 2);
    }

    #[test]
    fn lock_step_lanes_agree_with_single_lookups() {
        let entries = [
            v4([10, 0, 0, 0], 8, 2),
            v4([10, 1, 2, 0], 24, 3),
            v4([10, 1, 2, 3], 32, 4),
            v4([192, 168, 0, 0], 16, 5),
        ];
        let trie = Poptrie::<u32>::build(&entries, 16);
        let mut keys = [0u32; BATCH_LANES];
        for (i, key) in keys.iter_mut().enumerate() {
            *key = u32::from_be_bytes([10, 1, 2, i as u8]) ^ ((i as u32 % 3) << 30);
        }
        let mut out = [u32::MAX; BATCH_LANES];
        trie.lookup_lanes(&keys, &mut out);
        for (key, got) in keys.iter().zip(out) {
            assert_eq!(got, trie.lookup(*key), "key {key:#x}");
        }
    }
}
