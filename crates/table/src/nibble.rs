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
//!   ┌──────────────┬────────────┬───────────────────────────────┐
//!   │ children u64 │ child_base │ leaves: 64 × 4 bits           │
//!   └──────────────┴────────────┴───────────────────────────────┘
//!   slot s: child  nodes[child_base + popcount(children & below(s))]  if children bit s
//!           leaf   leaves nibble s                                    otherwise
//! ```
//!
//! Nodes also carry the key bits they expect (`path`, `offset`) and a `fallback` leaf,
//! so that pass-through nodes can be skipped (path compression, see `compile.rs`): a key
//! that differs from a node's path gets the fallback. A 64-byte line has room for it.
//!
//! Built from the same [`Compiled`] shape as the Poptrie layout, so the two layouts
//! cannot disagree about the structure.

use inregion_hint::prefetch;

use crate::compile::Compiled;
use crate::poptrie::{TrieKey, BATCH_LANES, LEAF_FLAG};

/// Largest leaf index a nibble holds (`0` = no match, `1..=15` = values).
pub(crate) const MAX_NIBBLE_LEAF: u32 = 15;

/// One inner node with inline leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct NibbleNode {
    /// Key bits `0..offset` of every address below this node (left-aligned).
    path: u128,
    children: u64,
    child_base: u32,
    /// Bit at which this node's chunk starts.
    offset: u8,
    /// Leaf for keys that reach this node but differ from `path` (path compression).
    fallback: u8,
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
}

/// A Poptrie with inline 4-bit leaves; see the module docs.
#[derive(Clone, Debug)]
pub(crate) struct NibbleTrie {
    /// Key bits the direct-pointing array consumes (chosen at build time).
    top_bits: u32,
    /// `1 << top_bits` entries: a node index, or `LEAF_FLAG | leaf`.
    top: Box<[u32]>,
    nodes: Box<[NibbleNode]>,
}

impl NibbleTrie {
    /// Lays out `compiled`; `None` if a leaf index exceeds [`MAX_NIBBLE_LEAF`].
    pub(crate) fn from_compiled(compiled: Compiled) -> Option<Self> {
        // Every leaf, fallback and direct leaf is one of the entries' leaves (or 0).
        if compiled.max_leaf > MAX_NIBBLE_LEAF {
            return None;
        }
        let nodes = compiled
            .nodes
            .iter()
            .map(|built| {
                let node = &built.node;
                let slot_leaves = compiled.slot_leaves(node);
                let mut leaves = [0u8; 32];
                for (pair, byte) in leaves.iter_mut().enumerate() {
                    // Child slots hold no leaf: their nibble is masked to 0 (branch-free).
                    let nibble = |slot: usize| {
                        let is_leaf = (!node.children >> slot) as u8 & 1;
                        (slot_leaves[slot] as u8) * is_leaf
                    };
                    *byte = nibble(2 * pair) | nibble(2 * pair + 1) << 4;
                }
                NibbleNode {
                    path: built.path,
                    children: node.children,
                    child_base: node.child_base,
                    offset: built.offset,
                    fallback: built.fallback as u8,
                    leaves,
                }
            })
            .collect();
        Some(NibbleTrie {
            top_bits: compiled.top_bits,
            top: compiled.top.into_boxed_slice(),
            nodes,
        })
    }

    /// Heap bytes of the compiled structure.
    pub(crate) fn size_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.top) + std::mem::size_of_val(&*self.nodes)
    }

    /// Number of inner nodes.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The leaf (dictionary index, `0` = no match) for `key`.
    #[inline(always)]
    pub(crate) fn lookup<K: TrieKey>(&self, key: K) -> u32 {
        self.finish(key, self.top[key.top(self.top_bits)])
    }

    /// Prefetches the direct-pointing entry of `key` (the first line a lookup reads).
    #[inline(always)]
    pub(crate) fn prefetch_top<K: TrieKey>(&self, key: K) {
        prefetch(&self.top, key.top(self.top_bits));
    }

    /// The direct-pointing entry of `key`: `LEAF_FLAG | leaf`, or the index of the node
    /// where its walk goes on.
    #[inline(always)]
    pub(crate) fn top_entry<K: TrieKey>(&self, key: K) -> u32 {
        self.top[key.top(self.top_bits)]
    }

    /// Prefetches the node a direct-pointing `entry` names (for a leaf entry, node 0:
    /// harmless, and no branch on the entry).
    #[inline(always)]
    pub(crate) fn prefetch_node(&self, entry: u32) {
        prefetch(
            &self.nodes,
            (entry & (entry >> 31).wrapping_sub(1)) as usize,
        );
    }

    /// Looks up [`BATCH_LANES`] keys in lock-step (tests: the table's batch gathers
    /// the lanes itself, see `table.rs`).
    #[cfg(test)]
    pub(crate) fn lookup_lanes<K: TrieKey>(
        &self,
        keys: &[K; BATCH_LANES],
        out: &mut [u32; BATCH_LANES],
    ) {
        let entries = keys.map(|k| self.top_entry(k));
        let active = crate::poptrie::lanes_from_entries(&entries, out);
        self.walk_lanes(keys, &entries, active, out);
    }

    /// Walks the lanes set in `active` level by level in lock-step with software
    /// prefetching: each unfinished lookup takes one step and prefetches the node it goes
    /// to next, so the group's cache misses of every level are in flight together while
    /// the other lanes work. Deep IPv6 walks gain most.
    /// Each lane of `active` starts on node `start[lane]` (the node its direct-pointing
    /// entry names); their leaves go to `out`, the other lanes of `out` are left alone.
    #[inline(always)]
    pub(crate) fn walk_lanes<K: TrieKey>(
        &self,
        keys: &[K; BATCH_LANES],
        start: &[u32; BATCH_LANES],
        mut active: u64,
        out: &mut [u32; BATCH_LANES],
    ) {
        let mut node_index = *start;
        while active != 0 {
            let mut lanes = active;
            while lanes != 0 {
                let lane = lanes.trailing_zeros() as usize;
                lanes &= lanes - 1;
                let node = &self.nodes[node_index[lane] as usize];
                let key = keys[lane];
                let offset = u32::from(node.offset);
                if !key.has_prefix(node.path, offset) {
                    out[lane] = u32::from(node.fallback);
                    active &= !(1 << lane);
                    continue;
                }
                let slot = key.chunk(offset);
                if node.children & (1u64 << slot) == 0 {
                    out[lane] = node.leaf(slot);
                    active &= !(1 << lane);
                } else {
                    let child = node.child(slot);
                    node_index[lane] = child;
                    prefetch(&self.nodes, child as usize);
                }
            }
        }
    }

    /// Cache lines a lookup of `key` reads: its direct-pointing entry and every node
    /// it visits (the layout chooser's estimate of a lookup's cost).
    pub(crate) fn reads<K: TrieKey>(&self, key: K) -> u32 {
        let mut entry = self.top_entry(key);
        let mut reads = 1;
        while entry & LEAF_FLAG == 0 {
            reads += 1;
            let node = &self.nodes[entry as usize];
            let offset = u32::from(node.offset);
            let slot = key.chunk(offset);
            entry = if key.has_prefix(node.path, offset) && node.children & (1u64 << slot) != 0 {
                node.child(slot)
            } else {
                LEAF_FLAG
            };
        }
        reads
    }

    /// The rest of a lookup, from its direct-pointing entry.
    #[inline(always)]
    fn finish<K: TrieKey>(&self, key: K, entry: u32) -> u32 {
        if entry & LEAF_FLAG != 0 {
            return entry & !LEAF_FLAG;
        }
        let mut node = &self.nodes[entry as usize];
        loop {
            let offset = u32::from(node.offset);
            // Always true unless pass-through nodes above were skipped (compression).
            if !key.has_prefix(node.path, offset) {
                return u32::from(node.fallback);
            }
            let slot = key.chunk(offset);
            if node.children & (1u64 << slot) == 0 {
                return node.leaf(slot);
            }
            node = &self.nodes[node.child(slot) as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{compile, v4_entry as v4};
    use crate::poptrie::Poptrie;

    #[test]
    fn compressed_paths_fall_back_when_the_key_leaves_them() {
        // A lone /32 under a /8: compression leaves one node at offset 30 whose path is
        // 10.1.2.0/30; keys in the /8 but off that path must get the /8's value.
        let entries = [v4([10, 0, 0, 0], 8, 2), v4([10, 1, 2, 3], 32, 4)];
        let nibble = NibbleTrie::from_compiled(compile(&entries, 16, true)).unwrap();
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
        let nibble = NibbleTrie::from_compiled(compile(&entries, 16, true)).expect("leaves fit");
        assert!(nibble.node_count() <= poptrie.node_count());
        let keys: Vec<u32> = (0..512u32)
            .map(|i| {
                u32::from_be_bytes([10, 1, 2, 0])
                    .wrapping_add(i.wrapping_mul(0x0101_0007) >> (i % 24))
            })
            .chain([0, u32::MAX, u32::from_be_bytes([10, 1, 2, 63])])
            .collect();
        for &key in &keys {
            assert_eq!(nibble.lookup(key), poptrie.lookup(key), "key {key:#x}");
        }
        for group in keys.chunks_exact(BATCH_LANES) {
            let group: &[u32; BATCH_LANES] = group.try_into().unwrap();
            let mut out = [u32::MAX; BATCH_LANES];
            nibble.lookup_lanes(group, &mut out);
            for (key, got) in group.iter().zip(out) {
                assert_eq!(got, poptrie.lookup(*key), "lanes, key {key:#x}");
            }
        }
    }

    #[test]
    fn refuses_leaves_that_do_not_fit_a_nibble() {
        let deep = compile(&[v4([10, 1, 2, 3], 32, 16)], 16, true);
        assert!(NibbleTrie::from_compiled(deep).is_none());
        let top_only = compile(&[v4([10, 0, 0, 0], 8, 16)], 16, true);
        assert!(NibbleTrie::from_compiled(top_only).is_none());
    }
}
