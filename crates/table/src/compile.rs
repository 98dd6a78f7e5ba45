//! From a sorted prefix list to a compiled trie shape, shared by both node layouts
//! ([`Poptrie`](crate::poptrie::Poptrie) and [`NibbleTrie`](crate::nibble::NibbleTrie)).
//!
//! Input: prefixes as left-aligned `u128` keys, sorted by `(key, len)` — so every prefix
//! comes before the prefixes nested inside it (pre-order) — unique, host bits zero.
//!
//! One recursive pass per node: prefixes that end inside the node's 6-bit chunk *paint*
//! the slots they cover (in pre-order, so a nested prefix paints over its parent: the
//! longest wins); prefixes that go deeper form the contiguous sub-slice of their slot's
//! child. Children are compiled first and stored as one contiguous block afterwards
//! (post-order), which lets a finished subtree still be simplified:
//!
//! - a subtree whose 64 slots all hold one value becomes a single leaf;
//! - with `compress`, a node starts where its prefixes diverge or the shortest of them
//!   ends, whichever comes first (not at the next multiple of 6 bits), and a node that
//!   only passes through to one child (all its slots hold one value besides that child)
//!   is skipped: the node records the key bits it expects (`path`, `offset`) and the
//!   value to answer when a key deviates from them (`fallback`). This path compression
//!   removes the long single-child chains of sparse IPv6 tables, and lets the node
//!   below a /32 cover bits 32..38 instead of 28..34 (a synthetic IPv6 /48 is then
//!   two nodes below the direct-pointing array instead of three).

use crate::poptrie::{Node, TrieKey, LEAF_FLAG, STRIDE};

/// A prefix to compile: key left-aligned in a `u128` (an IPv4 address sits in the top 32
/// bits), host bits zero, and its value's dictionary index (non-zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CompileEntry {
    pub key: u128,
    pub len: u8,
    pub leaf: u32,
}

/// A compiled node: its Poptrie bitmaps plus where it sits in the key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BuiltNode {
    pub node: Node,
    /// The key bits `0..offset` shared by every address below this node (left-aligned).
    pub path: u128,
    /// Bit at which this node's 6-bit chunk starts.
    pub offset: u8,
    /// The leaf for keys that reach this node but differ from `path` (only possible when
    /// skipped pass-through nodes sit above it).
    pub fallback: u32,
}

/// The compiled shape: direct-pointing array, nodes (children of a node contiguous),
/// leaf runs (the leaves of a node contiguous), as in a Poptrie.
#[derive(Clone, Debug, Default)]
pub(crate) struct Compiled {
    /// Key bits the direct-pointing array consumes.
    pub top_bits: u32,
    pub top: Vec<u32>,
    pub nodes: Vec<BuiltNode>,
    pub leaves: Vec<u32>,
    /// Whether pass-through nodes were skipped (nodes may start below their parent's end).
    pub compressed: bool,
    /// The largest leaf index anywhere in the trie (`0` when empty).
    pub max_leaf: u32,
}

impl Compiled {
    /// The leaf of every slot of `node` (a child's slot gets the value of the leaf run it
    /// sits in; callers skip those).
    pub(crate) fn slot_leaves(&self, node: &Node) -> [u32; 64] {
        let mut out = [0u32; 64];
        // The leaf of the current run: a running rank instead of a popcount per slot.
        let mut next = node.leaf_base as usize;
        let mut current = 0u32;
        for (slot, leaf) in out.iter_mut().enumerate() {
            if node.leaf_runs & (1u64 << slot) != 0 {
                current = self.leaves[next];
                next += 1;
            }
            *leaf = current;
        }
        out
    }

    /// Renumbers the nodes (and the leaf runs) in breadth-first order: the nodes that
    /// direct-pointing entries name first, in key order, then each node's block of
    /// children in the order their parents were placed.
    ///
    /// Why: the compiler stores a subtree's nodes in post-order, so the first-level
    /// nodes of a large trie lie scattered over its whole node array, one per page. On
    /// a uniform stream most lookups that leave the direct-pointing array end in a
    /// first-level node; scattered, each of them costs a TLB miss and often a cache
    /// miss, packed together they stay cached (the synthetic 200k-prefix IPv6 table:
    /// ~1,800 first-level nodes, 115 KiB packed, 14 MiB of nodes in all). Hit lookups
    /// gain the same for their upper levels. Children stay contiguous, so the layouts
    /// find them exactly as before.
    fn breadth_first(&mut self) {
        let old = std::mem::take(&mut self.nodes);
        let old_leaves = std::mem::take(&mut self.leaves);
        let mut nodes = Vec::with_capacity(old.len());
        let mut leaves = Vec::with_capacity(old_leaves.len());
        for entry in self.top.iter_mut().filter(|e| **e & LEAF_FLAG == 0) {
            nodes.push(old[*entry as usize]);
            *entry = index_u32(nodes.len() - 1);
        }
        let mut next = 0;
        while next < nodes.len() {
            let len = nodes.len();
            let node = &mut nodes[next].node;
            let runs = node.leaf_runs.count_ones() as usize;
            let base = node.leaf_base as usize;
            node.leaf_base = index_u32(leaves.len());
            leaves.extend_from_slice(&old_leaves[base..base + runs]);
            let children = node.children.count_ones() as usize;
            let base = node.child_base as usize;
            node.child_base = index_u32(len);
            nodes.extend_from_slice(&old[base..base + children]);
            next += 1;
        }
        debug_assert_eq!(nodes.len(), old.len());
        debug_assert_eq!(leaves.len(), old_leaves.len());
        self.nodes = nodes;
        self.leaves = leaves;
    }
}

/// Compiles `entries` with a `top_bits` direct-pointing array.
pub(crate) fn compile(entries: &[CompileEntry], top_bits: u32, compress: bool) -> Compiled {
    debug_assert!(entries
        .windows(2)
        .all(|w| (w[0].key, w[0].len) < (w[1].key, w[1].len)));
    // Painted with `LEAF_FLAG | leaf`; slots that need a node are replaced below.
    let mut top = vec![LEAF_FLAG; 1usize << top_bits];
    // Slots of the direct-pointing array that need a node, with their prefixes.
    let mut deep: Vec<(usize, usize, usize)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let slot = entry.key.top(top_bits);
        if u32::from(entry.len) <= top_bits {
            // Pre-order: a nested prefix paints after the prefix that contains it.
            let count = 1usize << (top_bits - u32::from(entry.len));
            top[slot..slot + count].fill(LEAF_FLAG | entry.leaf);
        } else {
            match deep.last_mut() {
                Some((last, _, end)) if *last == slot => *end = i + 1,
                _ => deep.push((slot, i, i + 1)),
            }
        }
    }
    let mut compiler = Compiler {
        compiled: Compiled {
            top_bits,
            compressed: compress,
            max_leaf: entries.iter().map(|e| e.leaf).max().unwrap_or(0),
            ..Compiled::default()
        },
        pending_children: Vec::new(),
    };
    for (slot, start, end) in deep {
        let inherited = top[slot] & !LEAF_FLAG;
        match compiler.node(&entries[start..end], top_bits, inherited) {
            Subtree::Leaf(leaf) => top[slot] = LEAF_FLAG | leaf,
            Subtree::Node(node) => {
                let index = index_u32(compiler.compiled.nodes.len());
                assert!(index < LEAF_FLAG, "more than 2^31 trie nodes");
                top[slot] = index;
                compiler.compiled.nodes.push(node);
            }
        }
    }
    compiler.compiled.top = top;
    compiler.compiled.breadth_first();
    compiler.compiled
}

/// What compiling one subtree produced.
enum Subtree {
    /// Every address in the subtree resolves to this leaf.
    Leaf(u32),
    /// An inner node (its children and leaves are already stored).
    Node(BuiltNode),
}

struct Compiler {
    compiled: Compiled,
    /// Children of the nodes being compiled, as a stack: each `node` call pushes its
    /// children above its caller's and moves them to `compiled.nodes` when done (one
    /// reused buffer instead of a 64-entry array per call).
    pending_children: Vec<BuiltNode>,
}

impl Compiler {
    /// Compiles the subtree whose chunk starts at bit `offset`. `entries` are the prefixes
    /// inside it (all longer than `offset`), `inherited` the leaf of the longest prefix
    /// that covers the whole subtree.
    fn node(&mut self, entries: &[CompileEntry], offset: u32, inherited: u32) -> Subtree {
        // With compression the node starts where its entries diverge (or the shortest
        // ends): the levels above it would pass every key through to it.
        let start = if self.compiled.compressed {
            divergence(entries, offset)
        } else {
            offset
        };
        let jumped = start > offset;
        // Where this node's parent ends: a skip of this node may not take its only
        // child further than `MAX_JUMP` bits past it.
        let parent_end = offset;
        let offset = start;
        let end = offset + STRIDE;
        let mut slot_leaf = [inherited; 64];
        let mut deep_range = [(0usize, 0usize); 64];
        let mut deep_slots = 0u64;
        for (i, entry) in entries.iter().enumerate() {
            let slot = entry.key.chunk(offset);
            let len = u32::from(entry.len);
            if len <= end {
                let count = 1usize << (end - len);
                slot_leaf[slot..slot + count].fill(entry.leaf);
            } else {
                if deep_slots & (1 << slot) == 0 {
                    deep_slots |= 1 << slot;
                    deep_range[slot].0 = i;
                }
                deep_range[slot].1 = i + 1;
            }
        }
        let mut children = 0u64;
        let first_child = self.pending_children.len();
        let mut pending = deep_slots;
        while pending != 0 {
            let slot = pending.trailing_zeros() as usize;
            pending &= pending - 1;
            let (start, stop) = deep_range[slot];
            match self.node(&entries[start..stop], end, slot_leaf[slot]) {
                Subtree::Leaf(leaf) => slot_leaf[slot] = leaf,
                Subtree::Node(node) => {
                    children |= 1 << slot;
                    self.pending_children.push(node);
                }
            }
        }
        let uniform = slot_leaf.iter().all(|&l| l == slot_leaf[0]);
        // After a jump, keys that leave the path above this node get `inherited`: the
        // subtree is one leaf only when that is also what every slot says.
        if children == 0 && uniform && (!jumped || slot_leaf[0] == inherited) {
            return Subtree::Leaf(slot_leaf[0]);
        }
        let child_count = self.pending_children.len() - first_child;
        // A child that already skipped levels below this node answers its own `fallback`
        // for keys that leave its path there; this node may only be skipped too when it
        // would answer the same for keys that leave the path here, since one `fallback`
        // serves every skipped level. (Skipping it regardless lost the lower level's
        // value: found by the `table` fuzz target, regression test below.)
        let only_fallback_agrees = child_count == 1 && {
            let only = &self.pending_children[first_child];
            u32::from(only.offset) == end || only.fallback == slot_leaf[0]
        };
        // After a jump, keys that leave this node's own path answer `inherited`: the
        // child's one fallback can stand for it only when the two agree.
        let jump_agrees = !jumped || inherited == slot_leaf[0];
        let jump_fits = child_count == 1
            && u32::from(self.pending_children[first_child].offset) - parent_end <= MAX_JUMP;
        if self.compiled.compressed && only_fallback_agrees && jump_agrees && jump_fits && uniform {
            // Pass-through: keys that stay on the child's path go on to it, every other
            // key (at this level or at a level skipped below) gets the one value here.
            let mut only = self.pending_children.pop().expect("one child");
            only.fallback = slot_leaf[0];
            return Subtree::Node(only);
        }
        let leaf_base = index_u32(self.compiled.leaves.len());
        let mut leaf_runs = 0u64;
        let mut last: Option<u32> = None;
        for (slot, &leaf) in slot_leaf.iter().enumerate() {
            if children & (1 << slot) == 0 && last != Some(leaf) {
                leaf_runs |= 1 << slot;
                self.compiled.leaves.push(leaf);
                last = Some(leaf);
            }
        }
        let child_base = index_u32(self.compiled.nodes.len());
        self.compiled
            .nodes
            .extend(self.pending_children.drain(first_child..));
        let path = entries[0].key & !(u128::MAX >> offset);
        Subtree::Node(BuiltNode {
            node: Node {
                children,
                leaf_runs,
                leaf_base,
                child_base,
                meta: 0,
            },
            path,
            offset: u8::try_from(offset).expect("offset < 128"),
            fallback: inherited,
        })
    }
}

/// The most key bits a compressed node may skip: its start lies at most this far past
/// the end of its parent's chunk (or past the direct-pointing array). The compressed
/// layouts check the skipped bits against a 40-bit window of the node's path (the bits
/// above the window were checked by the nodes above), which keeps a node's path, offset
/// and fallback in one `u64` (`poptrie::pack_meta`) and a lone prefix's nibble node in
/// one `u64` (a tip, `nibble.rs`). Longer skips (sparse, deep IPv6 prefixes) keep a
/// node every 40 bits.
pub(crate) const MAX_JUMP: u32 = 40;

/// Deepest bit at which a compressed node for `entries` (sorted, all longer than
/// `offset`, sharing their first `offset` bits) may start: where their keys first
/// differ, or where the shortest ends, whichever comes first; at most
/// [`MAX_JUMP`] bits past `offset`, and at most `128 - STRIDE`, so that the node's
/// chunk lies inside the key.
fn divergence(entries: &[CompileEntry], offset: u32) -> u32 {
    let (first, last) = (entries[0].key, entries[entries.len() - 1].key);
    // Sorted keys: the first and last share the bits that all share.
    let common = (first ^ last).leading_zeros();
    let shortest = entries
        .iter()
        .map(|e| u32::from(e.len))
        .min()
        .unwrap_or(offset);
    common
        .min(shortest)
        .min(128 - STRIDE)
        .min(offset + MAX_JUMP)
        .max(offset)
}

/// The compile entry of the IPv4 prefix `a/len` with value index `leaf` (the layouts'
/// unit tests).
#[cfg(test)]
pub(crate) fn v4_entry(a: [u8; 4], len: u8, leaf: u32) -> CompileEntry {
    CompileEntry {
        key: u128::from(u32::from_be_bytes(a)) << 96,
        len,
        leaf,
    }
}

fn index_u32(len: usize) -> u32 {
    u32::try_from(len).expect("trie array larger than 2^32 entries")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(segments: [u16; 8], len: u8, leaf: u32) -> CompileEntry {
        CompileEntry {
            key: u128::from(std::net::Ipv6Addr::from(segments)),
            len,
            leaf,
        }
    }

    /// `(offset, fallback)` of every node, sorted.
    fn shape(compiled: &Compiled) -> Vec<(u8, u32)> {
        let mut shape: Vec<_> = compiled
            .nodes
            .iter()
            .map(|n| (n.offset, n.fallback))
            .collect();
        shape.sort_unstable();
        shape
    }

    /// The nibble trie of `entries` (compressed, 16 top bits) answers `want` at each
    /// address.
    fn answers(entries: &[CompileEntry], want: &[(u128, u32)]) {
        let trie = crate::nibble::NibbleTrie::from_compiled(&compile(entries, 16, true)).unwrap();
        for &(addr, leaf) in want {
            assert_eq!(
                trie.lookup(addr),
                leaf,
                "{}",
                std::net::Ipv6Addr::from(addr)
            );
        }
    }

    #[test]
    fn compression_skips_single_child_chains() {
        // A lone /64 below a /16 slot: 16 -> 22 -> ... -> 58 is a chain of pass-through
        // nodes; compression keeps one node 40 bits (MAX_JUMP) past the slot and one
        // where the /64 ends.
        let entries = [v6([0x2001, 0xdb8, 1, 2, 0, 0, 0, 0], 64, 3)];
        let plain = compile(&entries, 16, false);
        let compressed = compile(&entries, 16, true);
        assert_eq!(plain.nodes.len(), 8);
        assert_eq!(shape(&compressed), [(56, 0), (64, 0)]);
        let key = entries[0].key;
        answers(
            &entries,
            &[
                (key, 3),
                (key | 0xFFFF, 3),
                (key ^ 1 << 64, 0),
                (key ^ 1 << 100, 0),
            ],
        );
    }

    #[test]
    fn compressed_nodes_start_where_their_prefixes_diverge() {
        // A /32 with two /48s inside: the node below the /16 slot starts at bit 32 (the
        // /32 ends there and paints it), each /48 gets a node at bit 48 whose fallback
        // is the /32's value; keys leaving the /32's path get 0.
        let entries = [
            v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, 1),
            v6([0x2001, 0xdb8, 0x1234, 0, 0, 0, 0, 0], 48, 2),
            v6([0x2001, 0xdb8, 0x8000, 0, 0, 0, 0, 0], 48, 3),
        ];
        assert_eq!(
            shape(&compile(&entries, 16, true)),
            [(32, 0), (48, 1), (48, 1)]
        );
        let [a, b, c] = entries.map(|e| e.key);
        answers(
            &entries,
            &[
                (a, 1),
                (a ^ 1 << 96, 0),
                (a ^ 1 << 110, 0),
                (b, 2),
                (b | 0xFFFF, 2),
                (b ^ 1 << 80, 1),
                (c ^ 1 << 80, 1),
                (c | 1 << 70, 3),
            ],
        );
    }

    #[test]
    fn compression_keeps_a_node_whose_value_differs_from_the_skipped_levels_below() {
        // Two sibling /41s with one value, and a /49 inside the second: the node at bit
        // 40 (where the /41s diverge) passes through to the /49's node with fallback 1
        // (the /41s); but keys that leave its own path above bit 40 answer 0 (nothing
        // covers them). Skipping it would leave one fallback for two different answers,
        // and 8989:8989:8900:: (in the first /41) would read 0 (the shape found by the
        // `table` fuzz target).
        let entries = [
            v6([0x8989, 0x8989, 0x8900, 0, 0, 0, 0, 0], 41, 1),
            v6([0x8989, 0x8989, 0x8980, 0, 0, 0, 0, 0], 41, 1),
            v6([0x8989, 0x8989, 0x8989, 0x8000, 0, 0, 0, 0], 49, 2),
        ];
        assert_eq!(shape(&compile(&entries, 16, true)), [(40, 0), (49, 1)]);
        let [a, _, c] = entries.map(|e| e.key);
        answers(
            &entries,
            &[
                (a, 1),
                (c, 2),
                (c ^ 1 << 80, 1),
                (a ^ 1 << 100, 0),
                (a ^ 1 << 88, 0),
            ],
        );
    }

    #[test]
    fn compression_keeps_nodes_whose_slots_differ() {
        // /32, /40 and /64 nested, three values: three nodes, each starting where a
        // prefix ends, each falling back to the value of the level above.
        let entries = [
            v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, 1),
            v6([0x2001, 0xdb8, 0x0100, 0, 0, 0, 0, 0], 40, 2),
            v6([0x2001, 0xdb8, 0x0100, 2, 0, 0, 0, 0], 64, 3),
        ];
        assert_eq!(
            shape(&compile(&entries, 16, true)),
            [(32, 0), (40, 1), (64, 2)]
        );
        let [a, b, c] = entries.map(|e| e.key);
        answers(
            &entries,
            &[
                (a ^ 1 << 100, 0),
                (a, 1),
                (b ^ 1 << 88, 1),
                (b, 2),
                (c ^ 1 << 65, 2),
                (c, 3),
            ],
        );
    }
}
