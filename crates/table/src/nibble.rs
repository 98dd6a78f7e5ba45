//! The fast layout for tables with at most 15 distinct values (region ids): a Poptrie
//! whose nodes carry their 64 leaves inline as 4-bit values.
//!
//! A Poptrie lookup reads the direct-pointing entry, one node per level, and finally the
//! leaf array: the leaf is one more dependent cache miss. With at most 15 values a leaf
//! fits in a nibble, so a node stores all 64 of them in 32 bytes and the whole node fits
//! one 64-byte cache line: a lookup ends at the node where it leaves the trie, and an
//! IPv4 lookup of a /24 reads two lines (direct entry, node) instead of three.
//!
//! ```text
//!   NibbleNode (64 bytes, cache-line aligned)
//!   ┌──────┬──────────────┬──────────┬────────────┬──────────┬───────────────────────┐
//!   │ meta │ children u64 │ tips u64 │ child_base │ tip_base │ leaves: 64 × 4 bits   │
//!   └──────┴──────────────┴──────────┴────────────┴──────────┴───────────────────────┘
//!   slot s: child  nodes[child_base + popcount(children & below(s))]  if children bit s
//!           tip    tips[tip_base + popcount(tips & below(s))]          if tips bit s
//!           leaf   leaves nibble s                                    otherwise
//! ```
//!
//! Nodes also carry the key bits they expect and a `fallback` leaf (`meta`: a 40-bit
//! window of the path, the offset, the fallback), so that pass-through nodes can be
//! skipped (path compression, see `compile.rs`): a key that differs from a node's path
//! gets the fallback. A skip is at most `MAX_JUMP` = 40 bits, so the window covers
//! every bit skipped above the node (the nodes above checked the rest).
//!
//! A *tip* is a node below which every address has one value: a lone prefix's node,
//! which only checks the path (most nodes of a large table of /48s). It is one `u64`
//! (window, offset, value, fallback) in an array of its own instead of a 64-byte node,
//! which made the synthetic 200k-prefix IPv6 trie 2.7x smaller (5.3 instead of 14.4
//! MiB: fewer cache and TLB misses on hit lookups). A direct-pointing entry always
//! names a full node.
//!
//! Built from the same [`Compiled`] shape as the Poptrie layout, so the two layouts
//! cannot disagree about the structure.

use inregion_hint::prefetch;

use crate::compile::Compiled;
use crate::poptrie::{
    meta_offset, on_path, pack_meta, prefetch_entry_node, BatchWalk, TopArray, TrieKey,
    BATCH_LANES, LEAF_FLAG,
};

/// Largest leaf index a nibble holds (`0` = no match, `1..=15` = values).
pub(crate) const MAX_NIBBLE_LEAF: u32 = 15;

/// Marks a lane of the lock-step walk that has reached a tip (node indices stay
/// below 2^31).
const TIP_LANE: u32 = 1 << 31;

/// `meta` of a node (`value` 0) or a tip: the path window and offset as in a Poptrie
/// node, the fallback in bits 48..52 and a tip's value in bits 52..56.
fn nibble_meta(path: u128, offset: u8, value: u32, fallback: u32) -> u64 {
    debug_assert!(value <= MAX_NIBBLE_LEAF && fallback <= MAX_NIBBLE_LEAF);
    pack_meta(path, offset, (fallback | value << 4) as u16)
}

#[inline(always)]
fn meta_fallback(meta: u64) -> u32 {
    (meta >> 48) as u32 & 0xF
}

/// The leaf a tip answers for `key`: its value on its path, else its fallback.
#[inline(always)]
fn tip_leaf<K: TrieKey>(tip: u64, key: K) -> u32 {
    if on_path(key, tip, meta_offset(tip)) {
        (tip >> 52) as u32 & 0xF
    } else {
        meta_fallback(tip)
    }
}

/// One inner node with inline leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct NibbleNode {
    /// The path window, the bit at which this node's chunk starts, and the fallback:
    /// the leaf for keys that reach this node but differ from its path (see
    /// [`nibble_meta`]).
    meta: u64,
    /// Slots that continue in a full node.
    children: u64,
    /// Slots that end in a tip.
    tips: u64,
    child_base: u32,
    tip_base: u32,
    /// Leaf of slot `s`: bits `4 * (s % 2)..` of byte `s / 2`.
    leaves: [u8; 32],
}

impl NibbleNode {
    #[inline(always)]
    fn leaf(&self, slot: usize) -> u32 {
        u32::from(self.leaves[slot >> 1] >> ((slot & 1) * 4)) & 0xF
    }

    #[inline(always)]
    fn child(&self, slot: usize) -> u32 {
        // Bits strictly below `slot`; for slot 0 the mask is 0.
        self.child_base + (self.children & ((1u64 << slot) - 1)).count_ones()
    }

    #[inline(always)]
    fn tip(&self, slot: usize) -> usize {
        (self.tip_base + (self.tips & ((1u64 << slot) - 1)).count_ones()) as usize
    }
}

/// A Poptrie with inline 4-bit leaves; see the module docs.
#[derive(Clone, Debug)]
pub(crate) struct NibbleTrie {
    /// Key bits the direct-pointing array consumes (chosen at build time).
    top_bits: u32,
    /// `1 << top_bits` entries: a node index, or `LEAF_FLAG | leaf`.
    top: Box<[u32]>,
    nodes: Box<[NibbleNode]>,
    /// One `u64` per tip (see [`nibble_meta`]).
    tips: Box<[u64]>,
}

impl NibbleTrie {
    /// Lays out `compiled`; `None` if a leaf index exceeds [`MAX_NIBBLE_LEAF`].
    pub(crate) fn from_compiled(compiled: &Compiled) -> Option<Self> {
        // Every leaf, fallback and direct leaf is one of the entries' leaves (or 0).
        if compiled.max_leaf > MAX_NIBBLE_LEAF {
            return None;
        }
        let slot_leaves: Vec<[u32; 64]> = compiled
            .nodes
            .iter()
            .map(|built| compiled.slot_leaves(&built.node))
            .collect();
        // The nodes that direct-pointing entries name (breadth-first order puts them
        // first) stay full nodes; every other node without children whose slots all
        // hold one value is a tip.
        let named = compiled.top.iter().filter(|&&e| e & LEAF_FLAG == 0).count();
        let is_tip = |i: usize| {
            let leaves = &slot_leaves[i];
            i >= named
                && compiled.nodes[i].node.children == 0
                && leaves.iter().all(|&l| l == leaves[0])
        };
        // New indices: the full nodes and the tips each keep their order, so the full
        // children of a node (and its tips) stay contiguous.
        let mut renumber = Vec::with_capacity(compiled.nodes.len());
        let (mut full, mut tips) = (0u32, 0u32);
        for i in 0..compiled.nodes.len() {
            let counter = if is_tip(i) { &mut tips } else { &mut full };
            renumber.push(*counter);
            *counter += 1;
        }
        let mut nodes = Vec::with_capacity(full as usize);
        let mut tip_words = Vec::with_capacity(tips as usize);
        for (i, built) in compiled.nodes.iter().enumerate() {
            if is_tip(i) {
                tip_words.push(nibble_meta(
                    built.path,
                    built.offset,
                    slot_leaves[i][0],
                    built.fallback,
                ));
                continue;
            }
            let node = &built.node;
            let first = node.child_base as usize;
            let block = first..first + node.children.count_ones() as usize;
            let (mut children, mut tip_slots) = (0u64, 0u64);
            let (mut child_base, mut tip_base) = (None, None);
            let mut pending = node.children;
            for child in block {
                let slot = pending.trailing_zeros();
                pending &= pending - 1;
                let (mask, base) = if is_tip(child) {
                    (&mut tip_slots, &mut tip_base)
                } else {
                    (&mut children, &mut child_base)
                };
                *mask |= 1 << slot;
                base.get_or_insert(renumber[child]);
            }
            let mut leaves = [0u8; 32];
            for (pair, byte) in leaves.iter_mut().enumerate() {
                // Child and tip slots hold no leaf: their nibble is masked to 0
                // (branch-free).
                let nibble = |slot: usize| {
                    let is_leaf = (!node.children >> slot) as u8 & 1;
                    (slot_leaves[i][slot] as u8) * is_leaf
                };
                *byte = nibble(2 * pair) | nibble(2 * pair + 1) << 4;
            }
            nodes.push(NibbleNode {
                meta: nibble_meta(built.path, built.offset, 0, built.fallback),
                children,
                tips: tip_slots,
                child_base: child_base.unwrap_or(0),
                tip_base: tip_base.unwrap_or(0),
                leaves,
            });
        }
        Some(NibbleTrie {
            top_bits: compiled.top_bits,
            top: compiled
                .top
                .iter()
                .map(|&e| {
                    if e & LEAF_FLAG == 0 {
                        renumber[e as usize]
                    } else {
                        e
                    }
                })
                .collect(),
            nodes: nodes.into_boxed_slice(),
            tips: tip_words.into_boxed_slice(),
        })
    }

    /// Heap bytes of the compiled structure.
    pub(crate) fn size_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.top)
            + std::mem::size_of_val(&*self.nodes)
            + std::mem::size_of_val(&*self.tips)
    }

    /// Number of inner nodes (full nodes and tips).
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len() + self.tips.len()
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

impl BatchWalk for NibbleTrie {
    const MIXED_ONE_BY_ONE: bool = false;

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

    /// Walks the lanes set in `active` level by level in lock-step with software
    /// prefetching: each unfinished lookup takes one step and prefetches the node (or
    /// tip) it goes to next, so the group's cache misses of every level are in flight
    /// together while the other lanes work. Deep IPv6 walks gain most.
    /// Each lane of `active` starts on node `start[lane]` (the node its direct-pointing
    /// entry names); their leaves go to `out`, the other lanes of `out` are left alone.
    #[inline(always)]
    fn walk_lanes<K: TrieKey>(
        &self,
        keys: &[K; BATCH_LANES],
        start: &[u32; BATCH_LANES],
        mut active: u64,
        out: &mut [u32; BATCH_LANES],
    ) {
        // A node index, or `TIP_LANE | tip index` for a lane whose last step is a tip.
        let mut next = *start;
        while active != 0 {
            let mut lanes = active;
            while lanes != 0 {
                let lane = lanes.trailing_zeros() as usize;
                lanes &= lanes - 1;
                let key = keys[lane];
                let index = next[lane];
                if index & TIP_LANE != 0 {
                    out[lane] = tip_leaf(self.tips[(index & !TIP_LANE) as usize], key);
                    active &= !(1 << lane);
                    continue;
                }
                let node = &self.nodes[index as usize];
                let offset = meta_offset(node.meta);
                if !on_path(key, node.meta, offset) {
                    out[lane] = meta_fallback(node.meta);
                    active &= !(1 << lane);
                    continue;
                }
                let slot = key.chunk(offset);
                if node.children & (1u64 << slot) != 0 {
                    let child = node.child(slot);
                    next[lane] = child;
                    prefetch(&self.nodes, child as usize);
                } else if node.tips & (1u64 << slot) != 0 {
                    let tip = node.tip(slot);
                    next[lane] = TIP_LANE | tip as u32;
                    prefetch(&self.tips, tip);
                } else {
                    out[lane] = node.leaf(slot);
                    active &= !(1 << lane);
                }
            }
        }
    }

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
            // Always true unless pass-through nodes above were skipped (compression).
            if !on_path(key, node.meta, offset) {
                return meta_fallback(node.meta);
            }
            let slot = key.chunk(offset);
            if node.children & (1u64 << slot) != 0 {
                node = &self.nodes[node.child(slot) as usize];
            } else if node.tips & (1u64 << slot) != 0 {
                return tip_leaf(self.tips[node.tip(slot)], key);
            } else {
                return node.leaf(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{compile, v4_entry as v4, CompileEntry, MAX_JUMP};
    use crate::poptrie::Poptrie;

    /// Every key, one at a time and in lock-step lanes, gets the Poptrie's answer.
    fn assert_agrees<K: TrieKey + std::fmt::LowerHex>(
        nibble: &NibbleTrie,
        poptrie: &Poptrie<u32>,
        keys: &[K],
    ) {
        for &key in keys {
            assert_eq!(nibble.lookup(key), poptrie.lookup(key), "key {key:#x}");
        }
        for group in keys.chunks_exact(BATCH_LANES) {
            let group: &[K; BATCH_LANES] = group.try_into().unwrap();
            let mut out = [u32::MAX; BATCH_LANES];
            nibble.lookup_lanes(group, &mut out);
            for (key, got) in group.iter().zip(out) {
                assert_eq!(got, poptrie.lookup(*key), "lanes, key {key:#x}");
            }
        }
    }

    #[test]
    fn compressed_paths_fall_back_when_the_key_leaves_them() {
        // A lone /32 under a /8: compression leaves one node at offset 30 whose path is
        // 10.1.2.0/30; keys in the /8 but off that path must get the /8's value.
        let entries = [v4([10, 0, 0, 0], 8, 2), v4([10, 1, 2, 3], 32, 4)];
        let nibble = NibbleTrie::from_compiled(&compile(&entries, 16, true)).unwrap();
        assert_eq!(nibble.node_count(), 1);
        let at = |a: [u8; 4]| nibble.lookup(u32::from_be_bytes(a));
        assert_eq!(at([10, 1, 2, 3]), 4);
        assert_eq!(at([10, 1, 2, 2]), 2);
        assert_eq!(at([10, 1, 3, 3]), 2);
        assert_eq!(at([10, 1, 130, 3]), 2);
        assert_eq!(at([10, 0, 2, 3]), 2);
        assert_eq!(at([11, 1, 2, 3]), 0);
    }

    #[test]
    fn node_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<NibbleNode>(), 64);
        assert_eq!(std::mem::align_of::<NibbleNode>(), 64);
    }

    #[test]
    fn agrees_with_the_poptrie_it_was_built_from() {
        let entries = [
            v4([0, 0, 0, 0], 0, 1),
            v4([10, 0, 0, 0], 8, 2),
            v4([10, 1, 0, 0], 18, 15),
            v4([10, 1, 2, 0], 24, 3),
            v4([10, 1, 2, 3], 32, 4),
            v4([10, 1, 2, 63], 32, 5),
            v4([10, 1, 2, 64], 26, 6),
        ];
        let poptrie = Poptrie::<u32>::build(&entries, 16);
        let nibble = NibbleTrie::from_compiled(&compile(&entries, 16, true)).expect("leaves fit");
        assert!(nibble.node_count() <= poptrie.node_count());
        let keys: Vec<u32> = (0..512u32)
            .map(|i| {
                u32::from_be_bytes([10, 1, 2, 0])
                    .wrapping_add(i.wrapping_mul(0x0101_0007) >> (i % 24))
            })
            .chain([0, u32::MAX, u32::from_be_bytes([10, 1, 2, 63])])
            .collect();
        assert_agrees(&nibble, &poptrie, &keys);
    }

    #[test]
    fn tips_and_long_skips_agree_with_the_poptrie() {
        // 2001:db8::/32 with 40 lone /48s (tips below the node at bit 32, 10 bits
        // skipped), a lone /128 (skips longer than 40 bits keep a node every 40 bits)
        // and a lone /64 under its own /16 slot.
        let root = 0x2001_0db8u128 << 96;
        let mut entries = vec![CompileEntry {
            key: root,
            len: 32,
            leaf: 1,
        }];
        entries.extend((0..40u128).map(|i| CompileEntry {
            key: root | (i * 1_601) << 80,
            len: 48,
            leaf: 2 + (i % 13) as u32,
        }));
        entries.push(CompileEntry {
            key: root | 0xFFFF_0000_0000_0000_0000_0001,
            len: 128,
            leaf: 15,
        });
        entries.push(CompileEntry {
            key: 0x2a00_0000_0000_0001u128 << 64,
            len: 64,
            leaf: 3,
        });
        entries.sort_unstable();
        let compiled = compile(&entries, 16, true);
        // No node starts more than MAX_JUMP bits past its parent's end.
        for entry in compiled.top.iter().filter(|&&e| e & LEAF_FLAG == 0) {
            assert!(u32::from(compiled.nodes[*entry as usize].offset) - 16 <= MAX_JUMP);
        }
        for parent in &compiled.nodes {
            let first = parent.node.child_base as usize;
            let children = parent.node.children.count_ones() as usize;
            for child in &compiled.nodes[first..first + children] {
                let end = u32::from(parent.offset) + 6;
                assert!(u32::from(child.offset) - end <= MAX_JUMP);
            }
        }
        // The /128 sits in slot 63 of the node at bit 32; its skip stops 40 bits past
        // that node's end (bit 78), the next one at bit 122 (the last chunk).
        let deep: Vec<u8> = compiled
            .nodes
            .iter()
            .map(|n| n.offset)
            .filter(|&o| o > 64)
            .collect();
        assert_eq!(deep, [78, 122]);
        let nibble = NibbleTrie::from_compiled(&compiled).expect("leaves fit");
        let poptrie = Poptrie::<u32>::build(&entries, 16);
        // One tip per lone /48, and the /64's node below the one at bit 56 (its skip
        // from the direct-pointing array is cut at 40 bits).
        assert_eq!(nibble.tips.len(), 41);
        let mut keys = Vec::new();
        for e in &entries {
            keys.push(e.key);
            keys.extend((0..128).map(|bit| e.key ^ 1 << bit));
            keys.extend((0..128).step_by(7).map(|bit| e.key | u128::MAX >> bit));
        }
        assert_agrees(&nibble, &poptrie, &keys);
    }

    #[test]
    fn refuses_leaves_that_do_not_fit_a_nibble() {
        let deep = compile(&[v4([10, 1, 2, 3], 32, 16)], 16, true);
        assert!(NibbleTrie::from_compiled(&deep).is_none());
        let top_only = compile(&[v4([10, 0, 0, 0], 8, 16)], 16, true);
        assert!(NibbleTrie::from_compiled(&top_only).is_none());
    }
}
