//! The immutable, compiled table and its read path.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::builder::TableBuilder;
use crate::compile::{compile, CompileEntry};
use crate::dir::{DirTrie, MAX_DIR_INDEX};
use crate::nibble::{NibbleTrie, MAX_NIBBLE_LEAF};
use crate::poptrie::{BatchWalk, Poptrie, TrieKey, BATCH_LANES, LEAF_FLAG};

/// Direct-pointing bits of the IPv4 trie: 2^18 entries (1 MiB). Poptrie's paper found 18
/// the best trade-off for full tables; it leaves 14 bits = levels at 18, 24, 30, so a /24
/// (the most common length) ends in the first node. Smaller arrays for small tables were
/// measured slower on a 10k-prefix BYOIP set (16 or 14 bits: 256 or 64 KiB, but /24s one
/// node level deeper), so every non-empty IPv4 trie uses 18.
const V4_TOP: u32 = 18;
/// Direct-pointing bits of the IPv6 trie: 2^16 entries (256 KiB); routed IPv6 prefixes
/// are /16 and longer.
const V6_TOP: u32 = 16;
/// Direct-pointing bits of a trie without prefixes: 256 entries (1 KiB), so that an empty
/// family (a v4-only or v6-only table, [`Table::empty`]) costs neither memory nor build
/// time.
const EMPTY_TOP: u32 = 8;

/// Direct-pointing bits for a trie of `prefixes` prefixes whose non-empty size is `top`.
fn top_bits(prefixes: usize, top: u32) -> u32 {
    if prefixes == 0 {
        EMPTY_TOP
    } else {
        top
    }
}

/// The IPv4 trie takes the DIR-16-8-8 layout (`dir.rs`) while it needs at most this many
/// bytes: 128 KiB of top level plus 512 bytes per /16 and per /24 that holds a longer
/// prefix, so about 7,900 of them: the size of a customer's or a region's bindings (the
/// 10k-prefix BYOIP benchmark set takes 1.9 MiB). Larger tables (a full BGP table would
/// need tens of MiB) take the Poptrie layouts, whose footprint grows far slower.
pub(crate) const DIR_MAX_BYTES: usize = 4 << 20;

/// The inline-leaf layout is chosen while its nodes and tips take at most this many
/// times the bytes of the (compressed) Poptrie's nodes and leaves built from the same
/// shape (as a fraction: 9/10; the direct-pointing arrays are the same). Built from
/// one shape, the inline-leaf trie always reads fewer lines per lookup (no leaf array;
/// a lone prefix's node is an 8-byte tip), but its nodes are 64 bytes against 32: it
/// pays where the tips make it the smaller of the two. Measured (12 values at random;
/// ratio, single lookups of nibble against Poptrie on the 2-core VM): synthetic 10k
/// IPv6 0.64, hit lookups ~1.4x faster; synthetic 200k IPv6 0.64; real IPv4 0.98,
/// hits ~0.85x; real IPv6 1.04, hits and uniform ~0.6-0.75x (the compressed
/// Poptrie's small upper nodes are shared by many lookups and stay cached).
const NIBBLE_MAX_SIZE_RATIO: (usize, usize) = (9, 10);

/// A compiled trie in the fastest layout that fits the table.
#[derive(Clone, Debug)]
enum Trie {
    /// IPv4 only, small tables: fixed 16-8-8 strides of 16-bit entries (`dir.rs`).
    Dir(DirTrie),
    /// At most 15 distinct values: leaves inline in 64-byte nodes.
    Nibble(NibbleTrie),
    /// Up to 65,535 distinct values (or too many nodes for the inline layout).
    Narrow(Poptrie<u16>),
    /// More distinct values than fit a `u16`.
    Wide(Poptrie<u32>),
}

/// The node layout of one family's trie (see the crate docs), as [`Table::stats`]
/// reports it and [`TableBuilder::build_with_layouts`](crate::TableBuilder::build_with_layouts) forces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// No prefixes: a small direct-pointing array of misses.
    Empty,
    /// IPv4 only, small tables: fixed 16-8-8 strides of 16-bit entries.
    Dir16_8_8,
    /// At most 15 distinct values: 64-byte nodes with inline 4-bit leaves and path
    /// compression, lone prefixes as 8-byte tips.
    Nibble,
    /// Path-compressed Poptrie nodes and a leaf array of 16-bit leaves (up to 65,535
    /// distinct values).
    PoptrieU16,
    /// Poptrie nodes and a leaf array of 32-bit leaves.
    PoptrieU32,
}

impl Layout {
    /// The layout's short name (`empty`, `dir-16-8-8`, `nibble`, `poptrie-u16`,
    /// `poptrie-u32`), as benchmarks print it.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Empty => "empty",
            Layout::Dir16_8_8 => "dir-16-8-8",
            Layout::Nibble => "nibble",
            Layout::PoptrieU16 => "poptrie-u16",
            Layout::PoptrieU32 => "poptrie-u32",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for Layout {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// Why [`TableBuilder::build_with_layouts`](crate::TableBuilder::build_with_layouts) could not give a
/// family the layout asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {family} prefixes cannot take the {layout} layout ({why})")]
pub struct LayoutError {
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// The layout asked for.
    pub layout: Layout,
    /// Why not.
    pub why: &'static str,
}

impl Trie {
    /// The trie of one family in the Poptrie layouts, or the inline-leaf layout when
    /// it fits (at most 15 distinct values) and takes at most [`NIBBLE_MAX_SIZE_RATIO`]
    /// times the Poptrie's bytes: both candidates are built from one compiled shape and
    /// compared. Depends on this family's prefixes and values only.
    fn build(entries: &[CompileEntry], top_bits: u32, distinct_values: usize) -> Self {
        // `u16` leaves take the compressed shape (their nodes have room for a 16-bit
        // fallback), `u32` leaves the plain one; the inline-leaf layout is built from
        // the same compressed shape.
        let narrow = distinct_values <= usize::from(u16::MAX);
        let compiled = compile(entries, top_bits, narrow);
        let poptrie = if narrow {
            Trie::Narrow(Poptrie::from_compiled(&compiled))
        } else {
            Trie::Wide(Poptrie::from_compiled(&compiled))
        };
        if distinct_values <= MAX_NIBBLE_LEAF as usize + 1 {
            if let Some(nibble) = NibbleTrie::from_compiled(&compiled) {
                // Both have the same direct-pointing array: compare what lies below it.
                let top = std::mem::size_of::<u32>() << top_bits;
                let (num, den) = NIBBLE_MAX_SIZE_RATIO;
                if (nibble.size_bytes() - top) * den <= (poptrie.size_bytes() - top) * num {
                    return Trie::Nibble(nibble);
                }
            }
        }
        poptrie
    }

    /// The IPv4 trie: DIR-16-8-8 when `dir` allows it and it fits [`DIR_MAX_BYTES`],
    /// else as [`build`](Self::build) chooses.
    fn build_v4(entries: &[CompileEntry], distinct_values: usize, dir: bool) -> Self {
        if dir && !entries.is_empty() && distinct_values <= MAX_DIR_INDEX {
            let chunks = DirTrie::chunks_for(entries);
            if chunks < MAX_DIR_INDEX && DirTrie::bytes_with(chunks) <= DIR_MAX_BYTES {
                return Trie::Dir(DirTrie::build(entries));
            }
        }
        Self::build(entries, top_bits(entries.len(), V4_TOP), distinct_values)
    }

    /// The trie in exactly `layout`, if the entries fit it.
    fn build_forced(
        entries: &[CompileEntry],
        top_bits: u32,
        distinct_values: usize,
        layout: Layout,
        v4: bool,
    ) -> Result<Self, &'static str> {
        match layout {
            Layout::Empty if entries.is_empty() => Ok(Self::build(entries, top_bits, 1)),
            Layout::Empty => Err("the family has prefixes"),
            Layout::Dir16_8_8 => {
                if !v4 {
                    return Err("DIR-16-8-8 is an IPv4 layout");
                }
                if entries.is_empty() {
                    return Err("the family has no prefixes");
                }
                if distinct_values > MAX_DIR_INDEX || DirTrie::chunks_for(entries) >= MAX_DIR_INDEX
                {
                    return Err("too many values or chunks for 16-bit entries");
                }
                Ok(Trie::Dir(DirTrie::build(entries)))
            }
            Layout::Nibble => NibbleTrie::from_compiled(&compile(entries, top_bits, true))
                .map(Trie::Nibble)
                .ok_or("more than 15 distinct values"),
            Layout::PoptrieU16 if distinct_values <= usize::from(u16::MAX) => Ok(Trie::Narrow(
                Poptrie::from_compiled(&compile(entries, top_bits, true)),
            )),
            Layout::PoptrieU16 => Err("more than 65,535 distinct values"),
            Layout::PoptrieU32 => Ok(Trie::Wide(Poptrie::from_compiled(&compile(
                entries, top_bits, false,
            )))),
        }
    }

    fn size_bytes(&self) -> usize {
        match self {
            Trie::Dir(t) => t.size_bytes(),
            Trie::Nibble(t) => t.size_bytes(),
            Trie::Narrow(t) => t.size_bytes(),
            Trie::Wide(t) => t.size_bytes(),
        }
    }

    fn node_count(&self) -> usize {
        match self {
            Trie::Dir(t) => t.node_count(),
            Trie::Nibble(t) => t.node_count(),
            Trie::Narrow(t) => t.node_count(),
            Trie::Wide(t) => t.node_count(),
        }
    }

    fn layout(&self) -> Layout {
        match self {
            Trie::Dir(_) => Layout::Dir16_8_8,
            Trie::Nibble(_) => Layout::Nibble,
            Trie::Narrow(_) => Layout::PoptrieU16,
            Trie::Wide(_) => Layout::PoptrieU32,
        }
    }

    #[inline(always)]
    fn lookup<K: TrieKey>(&self, key: K) -> u32 {
        match self {
            Trie::Dir(t) => t.lookup(key.v4_bits()),
            Trie::Nibble(t) => t.lookup(key),
            Trie::Narrow(t) => t.lookup(key),
            Trie::Wide(t) => t.lookup(key),
        }
    }

    #[inline(always)]
    fn prefetch_top<K: TrieKey>(&self, key: K) {
        match self {
            Trie::Dir(t) => t.prefetch_top(key.v4_bits()),
            Trie::Nibble(t) => t.prefetch_top(key),
            Trie::Narrow(t) => t.prefetch_top(key),
            Trie::Wide(t) => t.prefetch_top(key),
        }
    }
}

/// An immutable longest-prefix-match table from IPv4/IPv6 prefixes to values `V`,
/// compiled for fast reads by [`TableBuilder::build`].
///
/// Lookups never allocate. Cloning is O(1): clones share the compiled data (it never
/// changes). Publish new versions through a [`SharedTable`](crate::SharedTable).
#[derive(Debug)]
pub struct Table<V> {
    data: Arc<TableData<V>>,
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Table {
            data: Arc::clone(&self.data),
        }
    }
}

/// What a [`Table`] shares between its clones.
#[derive(Debug)]
struct TableData<V> {
    /// Value dictionaries, one per family: leaf index `i` of the IPv4 trie means
    /// `v4_values[i]`; index 0 is `None` (no match). One per family so that each trie's
    /// layout depends on its own number of distinct values only.
    v4_values: Box<[Option<V>]>,
    v6_values: Box<[Option<V>]>,
    v4: Trie,
    v6: Trie,
    /// Source prefixes sorted by (address, length): for `longest_match` and `iter`.
    v4_prefixes: Box<[(Ipv4Net, V)]>,
    v6_prefixes: Box<[(Ipv6Net, V)]>,
    /// Prefix lengths present, longest first (`longest_match` probes each).
    v4_lengths: Box<[u8]>,
    v6_lengths: Box<[u8]>,
}

impl<V: Copy + Eq + Hash> Default for Table<V> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<V: Copy + Eq + Hash> Table<V> {
    /// A new, empty [`TableBuilder`].
    pub fn builder() -> TableBuilder<V> {
        TableBuilder::new()
    }

    /// A table without prefixes: every lookup returns `None`.
    pub fn empty() -> Self {
        Self::compile(std::iter::empty(), std::iter::empty(), true)
    }

    /// Compiles sorted, unique, truncated prefixes (the builder's invariant). `dir`:
    /// whether the IPv4 trie may take the DIR-16-8-8 layout.
    pub(crate) fn compile(
        v4: impl Iterator<Item = (Ipv4Net, V)>,
        v6: impl Iterator<Item = (Ipv6Net, V)>,
        dir: bool,
    ) -> Self {
        Self::compile_in(v4, v6, dir, None).expect("the chosen layouts always fit")
    }

    /// [`compile`](Self::compile), in the given layouts when `force` is `Some`.
    pub(crate) fn compile_in(
        v4: impl Iterator<Item = (Ipv4Net, V)>,
        v6: impl Iterator<Item = (Ipv6Net, V)>,
        dir: bool,
        force: Option<(Layout, Layout)>,
    ) -> Result<Self, LayoutError> {
        let v4_prefixes: Box<[(Ipv4Net, V)]> = v4.collect();
        let v6_prefixes: Box<[(Ipv6Net, V)]> = v6.collect();
        let (v4_values, v4_entries) = dictionary(v4_prefixes.iter().map(|&(net, value)| {
            (
                u128::from(u32::from(net.network())) << 96,
                net.prefix_len(),
                value,
            )
        }));
        let (v6_values, v6_entries) = dictionary(
            v6_prefixes
                .iter()
                .map(|&(net, value)| (u128::from(net.network()), net.prefix_len(), value)),
        );
        let v4_top = top_bits(v4_entries.len(), V4_TOP);
        let v6_top = top_bits(v6_entries.len(), V6_TOP);
        let (v4, v6) = match force {
            None => (
                Trie::build_v4(&v4_entries, v4_values.len(), dir),
                Trie::build(&v6_entries, v6_top, v6_values.len()),
            ),
            Some((l4, l6)) => (
                Trie::build_forced(&v4_entries, v4_top, v4_values.len(), l4, true).map_err(
                    |why| LayoutError {
                        family: "IPv4",
                        layout: l4,
                        why,
                    },
                )?,
                Trie::build_forced(&v6_entries, v6_top, v6_values.len(), l6, false).map_err(
                    |why| LayoutError {
                        family: "IPv6",
                        layout: l6,
                        why,
                    },
                )?,
            ),
        };
        let data = TableData {
            v4,
            v6,
            v4_values,
            v6_values,
            v4_lengths: lengths_longest_first(v4_prefixes.iter().map(|(n, _)| n.prefix_len())),
            v6_lengths: lengths_longest_first(v6_prefixes.iter().map(|(n, _)| n.prefix_len())),
            v4_prefixes,
            v6_prefixes,
        };
        Ok(Table {
            data: Arc::new(data),
        })
    }

    /// The value of the longest prefix containing `addr`, if any.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<V> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a),
            IpAddr::V6(a) => self.lookup_v6(a),
        }
    }

    /// The value of the longest IPv4 prefix containing `addr`, if any.
    #[inline]
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<V> {
        self.data.v4_values[self.data.v4.lookup(u32::from(addr)) as usize]
    }

    /// Starts fetching the first cache line a lookup of `addr` reads (its entry of the
    /// direct-pointing array) without waiting for it: a hint for pipelines that know an
    /// address some time before they look it up. Changes no result.
    ///
    /// ```
    /// # use inregion_table::Table;
    /// let mut b = Table::builder();
    /// b.insert("203.0.113.0/24".parse().unwrap(), 1u16);
    /// let t = b.build();
    /// let addr = "203.0.113.9".parse().unwrap();
    /// t.prefetch_v4(addr); // ... other work while the line arrives ...
    /// assert_eq!(t.lookup_v4(addr), Some(1));
    /// ```
    #[inline]
    pub fn prefetch_v4(&self, addr: Ipv4Addr) {
        self.data.v4.prefetch_top(u32::from(addr));
    }

    /// [`prefetch_v4`](Self::prefetch_v4) for an IPv6 address.
    #[inline]
    pub fn prefetch_v6(&self, addr: Ipv6Addr) {
        self.data.v6.prefetch_top(u128::from(addr));
    }

    /// The value of the longest IPv6 prefix containing `addr`, if any.
    #[inline]
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<V> {
        self.data.v6_values[self.data.v6.lookup(u128::from(addr)) as usize]
    }

    /// Looks up every address of `addrs` into the same position of `out`.
    ///
    /// Equivalent to calling [`lookup_v4`](Self::lookup_v4) for each address, but walks
    /// groups of lookups with software prefetching so that their cache misses overlap: use it when
    /// addresses come in groups (a receive batch). Does not allocate.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    pub fn lookup_batch_v4(&self, addrs: &[Ipv4Addr], out: &mut [Option<V>]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch_v4: addrs and out differ in length"
        );
        self.batch(&self.data.v4, &self.data.v4_values, addrs, out, |a| {
            u32::from(*a)
        });
    }

    /// [`lookup_batch_v4`](Self::lookup_batch_v4) for IPv6 addresses.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    pub fn lookup_batch_v6(&self, addrs: &[Ipv6Addr], out: &mut [Option<V>]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch_v6: addrs and out differ in length"
        );
        self.batch(&self.data.v6, &self.data.v6_values, addrs, out, |a| {
            u128::from(*a)
        });
    }

    /// [`lookup_batch_v4`](Self::lookup_batch_v4) for mixed addresses: each is looked
    /// up in the trie of its family.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    pub fn lookup_batch(&self, addrs: &[IpAddr], out: &mut [Option<V>]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: addrs and out differ in length"
        );
        // Runs of one family go through the prefetching path; mixed groups of fewer than a
        // batch's lanes are looked up one by one.
        let mut start = 0;
        while start < addrs.len() {
            let family_v4 = addrs[start].is_ipv4();
            let run = addrs[start..]
                .iter()
                .take_while(|a| a.is_ipv4() == family_v4)
                .count();
            let end = start + run;
            let (group, group_out) = (&addrs[start..end], &mut out[start..end]);
            if family_v4 {
                self.batch(
                    &self.data.v4,
                    &self.data.v4_values,
                    group,
                    group_out,
                    ip_v4_key,
                );
            } else {
                self.batch(
                    &self.data.v6,
                    &self.data.v6_values,
                    group,
                    group_out,
                    ip_v6_key,
                );
            }
            start = end;
        }
    }

    /// [`batch_portable`](Self::batch_portable), compiled to use `popcnt` where the CPU
    /// has it ([`inregion_hint::with_popcnt`]): the walks count bitmap bits at every
    /// node, and the workspace builds for the x86-64 baseline, where `count_ones` is a
    /// dozen instructions (hit-heavy IPv6 batches ~10 % faster on the Intel Xeon VM of
    /// `docs/benchmarks.md`). Single lookups do not dispatch: the call it costs cannot
    /// be inlined into the caller's loop.
    #[inline(always)]
    fn batch<A, K: TrieKey + Default>(
        &self,
        trie: &Trie,
        values: &[Option<V>],
        addrs: &[A],
        out: &mut [Option<V>],
        key: impl Fn(&A) -> K,
    ) {
        #[cfg(test)]
        if PORTABLE_BATCH.get() {
            return self.batch_portable(trie, values, addrs, out, key);
        }
        inregion_hint::with_popcnt(
            #[inline(always)]
            || self.batch_portable(trie, values, addrs, out, key),
        )
    }

    /// Dispatches on the layout once per call, then runs the batch walk.
    #[inline(always)]
    fn batch_portable<A, K: TrieKey + Default>(
        &self,
        trie: &Trie,
        values: &[Option<V>],
        addrs: &[A],
        out: &mut [Option<V>],
        key: impl Fn(&A) -> K,
    ) {
        // A trie this small stays in the cache: on hit-heavy blocks the lock-step walk
        // has no misses to overlap and only adds its bookkeeping (see `batch_with`).
        let in_cache = trie.size_bytes() <= LOCKSTEP_MIN_BYTES;
        match trie {
            Trie::Dir(_) if in_cache => {
                for (a, o) in addrs.iter().zip(out.iter_mut()) {
                    *o = values[trie.lookup(key(a)) as usize];
                }
            }
            Trie::Dir(t) => batch_with(
                values,
                (addrs, out),
                key,
                (None::<fn(K, u32) -> u32>, false),
                |k| t.top_entry(k.v4_bits()),
                |e, k| t.prefetch_node(e, k.v4_bits()),
                // Left to the compiler (a function of its own): DIR-16-8-8 steps count
                // no bits, and inlined here, uniform IPv4 batches over the 10k table
                // ran 15 % slower (the batch function's registers).
                |k, s, a, o| {
                    let mut v4 = [0u32; BATCH_LANES];
                    for (a, k) in v4.iter_mut().zip(k) {
                        *a = k.v4_bits();
                    }
                    t.walk_lanes(&v4, s, a, o)
                },
            ),
            Trie::Nibble(t) => walk_batch(t, in_cache, values, (addrs, out), key),
            Trie::Narrow(t) => walk_batch(t, in_cache, values, (addrs, out), key),
            Trie::Wide(t) => walk_batch(t, in_cache, values, (addrs, out), key),
        }
    }

    /// The longest prefix containing `addr` and its value, if any.
    ///
    /// Slower than [`lookup`](Self::lookup): probes the sorted prefix list once per
    /// distinct prefix length (binary search), longest first.
    pub fn longest_match(&self, addr: IpAddr) -> Option<(IpNet, V)> {
        match addr {
            IpAddr::V4(a) => self.longest_match_v4(a).map(|(n, v)| (IpNet::V4(n), v)),
            IpAddr::V6(a) => self.longest_match_v6(a).map(|(n, v)| (IpNet::V6(n), v)),
        }
    }

    /// [`longest_match`](Self::longest_match) for an IPv4 address.
    pub fn longest_match_v4(&self, addr: Ipv4Addr) -> Option<(Ipv4Net, V)> {
        self.data.v4_lengths.iter().find_map(|&len| {
            let net = Ipv4Net::new(addr, len).ok()?.trunc();
            let i = self
                .data
                .v4_prefixes
                .binary_search_by(|(n, _)| n.cmp(&net))
                .ok()?;
            Some(self.data.v4_prefixes[i])
        })
    }

    /// [`longest_match`](Self::longest_match) for an IPv6 address.
    pub fn longest_match_v6(&self, addr: Ipv6Addr) -> Option<(Ipv6Net, V)> {
        self.data.v6_lengths.iter().find_map(|&len| {
            let net = Ipv6Net::new(addr, len).ok()?.trunc();
            let i = self
                .data
                .v6_prefixes
                .binary_search_by(|(n, _)| n.cmp(&net))
                .ok()?;
            Some(self.data.v6_prefixes[i])
        })
    }

    /// Number of prefixes (IPv4 and IPv6).
    pub fn len(&self) -> usize {
        self.data.v4_prefixes.len() + self.data.v6_prefixes.len()
    }

    /// Whether the table has no prefix.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The prefixes and their values: IPv4 first, then IPv6, each sorted by address and
    /// then prefix length (a prefix before the prefixes nested inside it).
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, V)> + '_ {
        let v4 = self
            .data
            .v4_prefixes
            .iter()
            .map(|&(n, v)| (IpNet::V4(n), v));
        let v6 = self
            .data
            .v6_prefixes
            .iter()
            .map(|&(n, v)| (IpNet::V6(n), v));
        v4.chain(v6)
    }

    /// A builder holding this table's prefixes, to derive a changed table.
    pub fn to_builder(&self) -> TableBuilder<V> {
        self.iter().collect()
    }

    /// Heap and inline bytes of the whole table: the lookup tries plus the sorted prefix
    /// list kept for [`longest_match`](Self::longest_match) and [`iter`](Self::iter).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<TableData<V>>() + self.lookup_size_bytes() + self.prefix_list_bytes()
    }

    /// Bytes that the lookup path touches: the two tries and the value dictionary.
    pub fn lookup_size_bytes(&self) -> usize {
        self.data.v4.size_bytes()
            + self.data.v6.size_bytes()
            + std::mem::size_of_val(&*self.data.v4_values)
            + std::mem::size_of_val(&*self.data.v6_values)
    }

    fn prefix_list_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.data.v4_prefixes)
            + std::mem::size_of_val(&*self.data.v6_prefixes)
            + self.data.v4_lengths.len()
            + self.data.v6_lengths.len()
    }

    /// Shape of the compiled tries (for diagnostics and benchmarks).
    pub fn stats(&self) -> TableStats {
        TableStats {
            v4_prefixes: self.data.v4_prefixes.len(),
            v6_prefixes: self.data.v6_prefixes.len(),
            distinct_values: self
                .data
                .v4_values
                .iter()
                .chain(self.data.v6_values.iter())
                .flatten()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            v4_nodes: self.data.v4.node_count(),
            v6_nodes: self.data.v6.node_count(),
            v4_trie_bytes: self.data.v4.size_bytes(),
            v6_trie_bytes: self.data.v6.size_bytes(),
            v4_layout: layout_name(&self.data.v4, self.data.v4_prefixes.is_empty()),
            v6_layout: layout_name(&self.data.v6, self.data.v6_prefixes.is_empty()),
        }
    }
}

/// The shape of a compiled [`Table`], from [`Table::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// IPv4 prefixes.
    pub v4_prefixes: usize,
    /// IPv6 prefixes.
    pub v6_prefixes: usize,
    /// Distinct values.
    pub distinct_values: usize,
    /// Inner nodes of the IPv4 trie.
    pub v4_nodes: usize,
    /// Inner nodes of the IPv6 trie.
    pub v6_nodes: usize,
    /// Bytes of the IPv4 trie (direct-pointing array, nodes, leaves).
    pub v4_trie_bytes: usize,
    /// Bytes of the IPv6 trie.
    pub v6_trie_bytes: usize,
    /// Node layout of the IPv4 trie (compares equal to its [`Layout::name`], such as
    /// `"nibble"`). Each family's layout depends on its own prefixes and distinct values
    /// only.
    pub v4_layout: Layout,
    /// Node layout of the IPv6 trie.
    pub v6_layout: Layout,
}

/// The layout, or [`Layout::Empty`] for a family without prefixes (whose trie is a bare
/// direct-pointing array of misses).
fn layout_name(trie: &Trie, empty: bool) -> Layout {
    if empty {
        Layout::Empty
    } else {
        trie.layout()
    }
}

/// One family's value dictionary (index 0 = no match) and its compile entries, from
/// `(key, len, value)` in the builder's order.
fn dictionary<V: Copy + Eq + Hash>(
    prefixes: impl Iterator<Item = (u128, u8, V)>,
) -> (Box<[Option<V>]>, Vec<CompileEntry>) {
    let mut index: HashMap<V, u32> = HashMap::new();
    let mut values: Vec<Option<V>> = vec![None];
    let entries = prefixes
        .map(|(key, len, value)| CompileEntry {
            key,
            len,
            leaf: *index.entry(value).or_insert_with(|| {
                values.push(Some(value));
                u32::try_from(values.len() - 1).expect("fewer than 2^32 distinct values")
            }),
        })
        .collect();
    (values.into_boxed_slice(), entries)
}

/// Tries up to this size stay in the cache (an IPv6 trie's 256 KiB direct-pointing
/// array counts in full, though global unicast uses an eighth of it): hit-heavy
/// blocks of a batch are looked up one address at a time, since the lock-step walk
/// has no misses to overlap (in-cache IPv6 tries of 0.4-0.7 MiB walked 10-25% slower
/// in lock-step than one by one); mixed blocks still take the branch-free first pass
/// and the walk (uniform addresses over the synthetic 10k IPv6 tables: batch ~1.45x
/// single instead of ~1.3x).
const LOCKSTEP_MIN_BYTES: usize = 1 << 20;

#[cfg(test)]
thread_local! {
    /// Tests: batches on this thread skip the `popcnt` dispatch and run the code compiled
    /// for the x86-64 baseline, so that both copies are checked on a CPU that has
    /// `popcnt` (see [`with_portable_batches`]).
    static PORTABLE_BATCH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tests: runs `f` with this thread's batches compiled for the x86-64 baseline.
#[cfg(test)]
pub(crate) fn with_portable_batches<R>(f: impl FnOnce() -> R) -> R {
    /// Clears the flag however `f` ends (a panicking test must not leave later tests
    /// of the same thread on the portable copy).
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            PORTABLE_BATCH.set(false);
        }
    }
    PORTABLE_BATCH.set(true);
    let _reset = Reset;
    f()
}

/// Addresses at the start of each block whose direct-pointing entries are read with a
/// branch on the entry's kind; if between 1/8 and 7/8 of them go on to a node, the rest of
/// the block is read without that branch (see [`batch_with`]).
const MIX_SAMPLE: usize = 32;

/// Addresses a batch reads ahead: their direct-pointing entries are read in one pass,
/// then the lookups that go on to a node are walked in groups of [`BATCH_LANES`].
const BATCH_BLOCK: usize = 256;

/// How far ahead of the first pass a batch prefetches its own addresses (16 lines). A
/// caller's array of addresses is often not in the cache (a 16 MiB stream read once is
/// not), and the hardware prefetcher stops at every 4 KiB page while a batch of 256 IPv6
/// addresses fills one: the fast first pass then waited on memory (uniform IPv6 after
/// the caches were flushed: 138 M/s, 214 M/s with the prefetch, 260 M/s warm; see
/// `docs/benchmarks.md`). Hit-heavy blocks over an in-cache trie skip it: their lookups
/// are slow enough for the hardware prefetcher, and 64 prefetches in flight at once took
/// the fill buffers their walks need (5-7 % slower).
const AHEAD_BYTES: usize = 1024;

/// A cache line: the input prefetch goes a line at a time.
const LINE_BYTES: usize = 64;

/// The batch walk shared by every layout, a block of [`BATCH_BLOCK`] addresses at a
/// time, in two passes:
///
/// 1. every address's direct-pointing entry: a leaf is the answer, written at once
///    (traffic to unbound space, most of a miss-heavy stream, costs what a single lookup
///    costs and never waits for a group); a node entry notes its position. The first
///    [`MIX_SAMPLE`] addresses branch on the entry's kind, like a single lookup; when
///    between 1/8 and 7/8 of them went on to a node (a mixed stream, such as uniform
///    addresses over a synthetic IPv6 table: ~22% go on), the rest of the block is read
///    branch-free (every address writes an answer and a position), which was 1.1-1.6x
///    faster there; streams that nearly all end at the top (miss-heavy IPv4, where a
///    single lookup costs a few cycles and the branch-free form cost ~25%) or nearly
///    all go on (hit-heavy) keep the branch, which they predict well.
/// 2. the noted lookups, gathered into full groups of [`BATCH_LANES`] whatever the mix
///    of the stream: each group's first nodes are prefetched, then `walk` takes the group
///    level by level in lock-step, so that its cache misses overlap.
///
/// After the sample, the rest of the block's addresses are prefetched [`AHEAD_BYTES`]
/// ahead of the first pass (except on the hit-heavy in-cache path below).
///
/// With `in_cache` (for a trie within [`LOCKSTEP_MIN_BYTES`]: `finish(key, entry)`,
/// the rest of a single lookup), a block whose sample nearly all went on to a node
/// (hit-heavy) is finished one lookup at a time instead, each lookup's first reads
/// issued before the previous one is finished ([`one_by_one`]): with no misses to
/// overlap, the walk's bookkeeping would cost more than it saves. With `mixed_one_by_one` too
/// (the Poptrie layouts), the noted lookups of the other blocks are also finished one
/// at a time after the first pass (uniform IPv6 over the synthetic in-cache tables
/// with region values: batch ~13% faster; the inline-leaf walk gained nothing).
///
/// `top(key)`: the direct-pointing entry (`LEAF_FLAG | leaf` or a node index);
/// `prefetch(entry, key)`: prefetch what a node entry leads to; `walk(keys, entries,
/// active, leaves)`: finish the lanes set in `active`, each from its node entry.
#[inline(always)]
fn batch_with<A, K: TrieKey + Default, V: Copy>(
    values: &[Option<V>],
    (addrs, out): (&[A], &mut [Option<V>]),
    key: impl Fn(&A) -> K,
    (in_cache, mixed_one_by_one): (Option<impl Fn(K, u32) -> u32>, bool),
    top: impl Fn(K) -> u32,
    prefetch: impl Fn(u32, K),
    walk: impl Fn(&[K; BATCH_LANES], &[u32; BATCH_LANES], u64, &mut [u32; BATCH_LANES]),
) {
    debug_assert_eq!(addrs.len(), out.len());
    let mut noted = [0u8; BATCH_BLOCK];
    let mut keys = [K::default(); BATCH_LANES];
    let mut entries = [0u32; BATCH_LANES];
    let mut leaves = [0u32; BATCH_LANES];
    for (block, block_out) in addrs.chunks(BATCH_BLOCK).zip(out.chunks_mut(BATCH_BLOCK)) {
        let mut count = 0usize;
        let sample = block.len().min(MIX_SAMPLE);
        // The sample's lines, requested together: its own loads sit behind branches that
        // mispredict on mixed streams (uniform IPv6 after another structure's pass: +1-4 %
        // in the one-case harness, within its noise; kept as it costs nothing measurable).
        for i in (0..sample).step_by(addresses_in::<A>(LINE_BYTES)) {
            inregion_hint::prefetch(block, i);
        }
        for (i, (a, o)) in block
            .iter()
            .zip(block_out.iter_mut())
            .enumerate()
            .take(sample)
        {
            branching(top(key(a)), i, o, values, &mut noted, &mut count);
        }
        if let Some(finish) = in_cache.as_ref().filter(|_| count > MIX_SAMPLE * 7 / 8) {
            // Hit-heavy over an in-cache trie: one lookup at a time (the rest of the
            // block, then the sample's lookups that went on).
            let order = (sample..block.len()).chain(noted[..count].iter().map(|&i| usize::from(i)));
            one_by_one(
                block, block_out, order, values, &key, &top, &prefetch, finish,
            );
            continue;
        }
        let ahead = addresses_in::<A>(AHEAD_BYTES);
        for i in (sample..sample + ahead).step_by(addresses_in::<A>(LINE_BYTES)) {
            inregion_hint::prefetch(block, i);
        }
        let mixed = (MIX_SAMPLE / 8..=MIX_SAMPLE * 7 / 8).contains(&count);
        count = first_pass(
            (block, block_out),
            (sample, ahead, mixed),
            values,
            (&key, &top),
            (&mut noted, count),
        );
        if let Some(finish) = in_cache.as_ref().filter(|_| mixed_one_by_one) {
            // Mixed over an in-cache Poptrie: the noted lookups have no misses to
            // overlap either, and its walk does more per step than the inline-leaf one
            // (a leaf array), so they are finished one at a time too.
            let order = noted[..count].iter().map(|&i| usize::from(i));
            one_by_one(
                block, block_out, order, values, &key, &top, &prefetch, finish,
            );
            continue;
        }
        for group in noted[..count].chunks(BATCH_LANES) {
            for ((k, e), &i) in keys.iter_mut().zip(entries.iter_mut()).zip(group) {
                *k = key(&block[usize::from(i)]);
                // Read again: the line is in the cache since the first pass.
                *e = top(*k);
                prefetch(*e, *k);
            }
            let active = u64::MAX >> (64 - group.len());
            walk(&keys, &entries, active, &mut leaves);
            for (&i, &leaf) in group.iter().zip(&leaves) {
                block_out[usize::from(i)] = values[leaf as usize];
            }
        }
    }
}

/// [`batch_with`] over a layout with nodes (`in_cache`: the trie is within
/// [`LOCKSTEP_MIN_BYTES`]).
#[inline(always)]
fn walk_batch<A, K: TrieKey + Default, V: Copy, W: BatchWalk>(
    trie: &W,
    in_cache: bool,
    values: &[Option<V>],
    (addrs, out): (&[A], &mut [Option<V>]),
    key: impl Fn(&A) -> K,
) {
    let top = trie.top_array();
    batch_with(
        values,
        (addrs, out),
        key,
        (
            in_cache.then_some(
                #[inline(always)]
                |k, e| trie.finish(k, e),
            ),
            W::MIXED_ONE_BY_ONE,
        ),
        move |k| top.entry(k),
        |e, _| trie.prefetch_node(e),
        // Inlined so that the walk is part of the `popcnt` copy (`batch`): left to the
        // compiler, this closure became a function of its own, compiled for the baseline.
        #[inline(always)]
        |k, s, a, o| trie.walk_lanes(k, s, a, o),
    )
}

/// The first pass of [`batch_with`] over `block[from..]`: each address's direct-pointing
/// entry, a leaf's answer written at once, a node entry's position noted in
/// `noted[count..]`; returns the new count. `mixed`: branch-free (every address writes an
/// answer, overwritten later for a node entry, and a position, kept only for a node entry),
/// for a stream whose sample was mixed and whose branch would mispredict often.
///
/// Not inlined on purpose: inside the whole batch function the loop's dozen live values
/// did not fit in registers and were reloaded from the stack on every address (33
/// instructions an address, 6 of them stack reloads); on its own the register allocator
/// sees only this loop.
#[inline(never)]
fn first_pass<A, K, V: Copy>(
    (block, out): (&[A], &mut [Option<V>]),
    (from, ahead, mixed): (usize, usize, bool),
    values: &[Option<V>],
    (key, top): (&impl Fn(&A) -> K, &impl Fn(K) -> u32),
    (noted, mut count): (&mut [u8; BATCH_BLOCK], usize),
) -> usize {
    if mixed {
        by_lines(block, out, from, ahead, |i, a, o| {
            let entry = top(key(a));
            let node = (entry >> 31) ^ 1; // 1 for a node entry
            *o = values[(entry & !LEAF_FLAG & node.wrapping_sub(1)) as usize];
            // count <= i < BATCH_BLOCK = 256: the mask only spares a bounds check.
            noted[count % BATCH_BLOCK] = i as u8;
            count += node as usize;
        });
    } else {
        by_lines(block, out, from, ahead, |i, a, o| {
            branching(top(key(a)), i, o, values, noted, &mut count);
        });
    }
    count
}

/// Finishes the lookups of `block` at the positions `order` one at a time, reading each
/// one's direct-pointing entry (and prefetching the node it names) before the previous
/// lookup is finished: its loads are issued ahead of the previous walk's branches, so a
/// mispredicted branch there does not throw them away, as it does in a loop of single
/// lookups (hit-heavy IPv6 over in-cache tries: 6-8 % faster than without, and faster
/// than single lookups; a second lookup ahead was slower).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn one_by_one<A, K: TrieKey, V: Copy>(
    block: &[A],
    out: &mut [Option<V>],
    mut order: impl Iterator<Item = usize>,
    values: &[Option<V>],
    key: &impl Fn(&A) -> K,
    top: &impl Fn(K) -> u32,
    prefetch: &impl Fn(u32, K),
    finish: &impl Fn(K, u32) -> u32,
) {
    let Some(mut at) = order.next() else { return };
    let mut k = key(&block[at]);
    let mut e = top(k);
    prefetch(e, k);
    for next in order {
        let next_k = key(&block[next]);
        let next_e = top(next_k);
        prefetch(next_e, next_k);
        out[at] = values[finish(k, e) as usize];
        (at, k, e) = (next, next_k, next_e);
    }
    out[at] = values[finish(k, e) as usize];
}

/// Addresses of type `A` in `bytes` (at least 1).
#[inline(always)]
fn addresses_in<A>(bytes: usize) -> usize {
    (bytes / std::mem::size_of::<A>().max(1)).max(1)
}

/// Calls `f(i, &block[i], &mut out[i])` for every `i` from `from` on, a cache line of
/// addresses at a time, prefetching the line `ahead` addresses further first.
#[inline(always)]
fn by_lines<A, O>(
    block: &[A],
    out: &mut [O],
    from: usize,
    ahead: usize,
    mut f: impl FnMut(usize, &A, &mut O),
) {
    let per_line = addresses_in::<A>(LINE_BYTES);
    let len = block.len().min(out.len());
    let mut start = from;
    // Whole lines: a fixed count (a constant once `A` is known), which the compiler
    // unrolls, so the loop's own counting is paid once a line instead of per address.
    while start + per_line <= len {
        inregion_hint::prefetch(block, start + ahead);
        let (line, line_out) = (
            &block[start..start + per_line],
            &mut out[start..start + per_line],
        );
        for j in 0..per_line {
            f(start + j, &line[j], &mut line_out[j]);
        }
        start += per_line;
    }
    for i in start..len {
        f(i, &block[i], &mut out[i]);
    }
}

/// The first pass of [`batch_with`] for address `i` of a block, branching like a single
/// lookup (and mispredicting as often): a leaf `entry` is the answer, a node entry's
/// position is noted.
#[inline(always)]
fn branching<V: Copy>(
    entry: u32,
    i: usize,
    out: &mut Option<V>,
    values: &[Option<V>],
    noted: &mut [u8; BATCH_BLOCK],
    count: &mut usize,
) {
    if entry & LEAF_FLAG != 0 {
        *out = values[(entry & !LEAF_FLAG) as usize];
    } else {
        noted[*count] = i as u8; // i < BATCH_BLOCK = 256
        *count += 1;
    }
}

fn ip_v4_key(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(_) => unreachable!("run of IPv4 addresses"),
    }
}

fn ip_v6_key(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V6(a) => u128::from(*a),
        IpAddr::V4(_) => unreachable!("run of IPv6 addresses"),
    }
}

fn lengths_longest_first(lengths: impl Iterator<Item = u8>) -> Box<[u8]> {
    let mut present = [false; 129];
    for len in lengths {
        present[usize::from(len)] = true;
    }
    (0..=128u8)
        .rev()
        .filter(|&l| present[usize::from(l)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sample() -> Table<u16> {
        let mut b = Table::builder();
        b.insert(p("0.0.0.0/0"), 1);
        b.insert(p("10.0.0.0/8"), 2);
        b.insert(p("10.1.0.0/16"), 3);
        b.insert(p("10.1.2.3/32"), 4);
        b.insert(p("255.255.255.255/32"), 5);
        b.insert(p("2001:db8::/32"), 6);
        b.insert(p("2001:db8:1::/48"), 7);
        b.insert(p("2001:db8:1::1/128"), 8);
        b.insert(p("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 9);
        b.build()
    }

    #[test]
    fn empty_table_matches_nothing() {
        let t = Table::<u16>::empty();
        assert!(t.is_empty());
        assert_eq!(t.lookup(a("0.0.0.0")), None);
        assert_eq!(t.lookup(a("::")), None);
        assert_eq!(t.longest_match(a("1.2.3.4")), None);
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn longest_prefix_wins_for_both_families() {
        let t = sample();
        assert_eq!(t.len(), 9);
        assert_eq!(t.lookup(a("9.9.9.9")), Some(1));
        assert_eq!(t.lookup(a("10.200.0.1")), Some(2));
        assert_eq!(t.lookup(a("10.1.2.2")), Some(3));
        assert_eq!(t.lookup(a("10.1.2.3")), Some(4));
        assert_eq!(t.lookup(a("255.255.255.254")), Some(1));
        assert_eq!(t.lookup(a("255.255.255.255")), Some(5));
        assert_eq!(t.lookup(a("2001:db8:2::")), Some(6));
        assert_eq!(t.lookup(a("2001:db8:1::2")), Some(7));
        assert_eq!(t.lookup(a("2001:db8:1::1")), Some(8));
        assert_eq!(t.lookup(a("2001:db9::")), None);
        assert_eq!(
            t.lookup(a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Some(9)
        );
        assert_eq!(t.lookup(a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")), None);
    }

    #[test]
    fn longest_match_returns_the_prefix() {
        let t = sample();
        assert_eq!(t.longest_match(a("10.1.9.9")), Some((p("10.1.0.0/16"), 3)));
        assert_eq!(t.longest_match(a("11.0.0.0")), Some((p("0.0.0.0/0"), 1)));
        assert_eq!(
            t.longest_match(a("2001:db8:1::1")),
            Some((p("2001:db8:1::1/128"), 8))
        );
        assert_eq!(t.longest_match(a("::1")), None);
    }

    #[test]
    fn ipv6_default_route_covers_everything() {
        let t: Table<u16> = [(p("::/0"), 1)]
            .into_iter()
            .collect::<TableBuilder<_>>()
            .build();
        assert_eq!(t.lookup(a("::")), Some(1));
        assert_eq!(t.lookup(a("ffff::1")), Some(1));
        assert_eq!(t.lookup(a("1.2.3.4")), None);
    }

    #[test]
    fn batches_agree_with_single_lookups_including_the_remainder() {
        let t = sample();
        let addrs: Vec<IpAddr> = (0..37u32)
            .map(|i| {
                if i % 5 == 0 {
                    a("2001:db8:1::1")
                } else {
                    IpAddr::V4(Ipv4Addr::from(0x0A01_0200 + i))
                }
            })
            .collect();
        let mut out = vec![None; addrs.len()];
        t.lookup_batch(&addrs, &mut out);
        let expected: Vec<_> = addrs.iter().map(|&x| t.lookup(x)).collect();
        assert_eq!(out, expected);

        let v4: Vec<Ipv4Addr> = (0..40u32)
            .map(|i| Ipv4Addr::from(0x0A01_0200 + i))
            .collect();
        let mut out4 = vec![Some(0); v4.len()];
        t.lookup_batch_v4(&v4, &mut out4);
        assert_eq!(out4, v4.iter().map(|&x| t.lookup_v4(x)).collect::<Vec<_>>());

        let v6: Vec<Ipv6Addr> = (0..20u128)
            .map(|i| Ipv6Addr::from((0x2001_0db8_0001u128 << 80) + i))
            .collect();
        let mut out6 = vec![None; v6.len()];
        t.lookup_batch_v6(&v6, &mut out6);
        assert_eq!(out6, v6.iter().map(|&x| t.lookup_v6(x)).collect::<Vec<_>>());
    }

    /// Streams whose first addresses end in the direct-pointing array in every
    /// proportion (none, some, most, all go on to a node), so that both forms of the
    /// batch's first pass (branching, and branch-free for mixed streams) run, on tries
    /// large enough for the lock-step walk and on an in-cache IPv6 trie (hit-heavy
    /// blocks one lookup at a time), on every node layout: batch equals single lookups.
    #[test]
    fn batches_of_mixed_streams_agree_with_single_lookups() {
        // Large tries (lock-step walks), and an IPv6 trie small enough to stay in the
        // cache (hit-heavy blocks one lookup at a time; mixed ones walked in the
        // nibble layout, finished one at a time after the first pass in the Poptries).
        for (n4, n6) in [(1_000u32, 40_000u32), (100, 300)] {
            mixed_streams(n4, n6);
        }
    }

    fn mixed_streams(n4: u32, n6: u32) {
        let mut b = Table::builder();
        // n4 /24s (and a /30 inside each) from 10.0.0.0: node entries; 11.0.0.0/8 a leaf.
        for i in 0..n4 {
            let net = (10 << 24) | (i << 8);
            b.insert_v4(Ipv4Net::new(Ipv4Addr::from(net), 24).unwrap(), 1 + i % 7);
            b.insert_v4(Ipv4Net::new(Ipv4Addr::from(net | 64), 30).unwrap(), 8);
        }
        b.insert_v4("11.0.0.0/8".parse().unwrap(), 9);
        // n6 /48s under 2001:db8::/32, a third with a /56 inside (a tip in the nibble
        // layout), a third with two (a full node).
        for i in 0..n6 {
            let net = (0x2001_0db8u128 << 96) | (u128::from(i) << 80);
            b.insert_v6(Ipv6Net::new(Ipv6Addr::from(net), 48).unwrap(), 1 + i % 5);
            for inner in [0x77, 0x78].into_iter().take((i % 3) as usize) {
                let inner = Ipv6Addr::from(net | inner << 72);
                b.insert_v6(Ipv6Net::new(inner, 56).unwrap(), 6);
            }
        }
        b.insert_v6("2a00::/16".parse().unwrap(), 9);
        for (l4, l6) in [
            (Layout::Nibble, Layout::Nibble),
            (Layout::PoptrieU16, Layout::PoptrieU16),
            (Layout::PoptrieU32, Layout::PoptrieU32),
        ] {
            let t = b.build_with_layouts(l4, l6).unwrap();
            assert!(t.data.v4.size_bytes() > LOCKSTEP_MIN_BYTES);
            let large = n6 >= 40_000;
            assert_eq!(t.data.v6.size_bytes() > LOCKSTEP_MIN_BYTES, large, "{l6}");
            for every in [0, 1, 2, 3, 5, 9, 40] {
                // Address i goes on to a node when `every` divides it (never for 0).
                let node = |i: u32| every != 0 && i.is_multiple_of(every);
                let v4: Vec<Ipv4Addr> = (0..700u32)
                    .map(|i| {
                        let x = i.wrapping_mul(0x9E37_79B9);
                        Ipv4Addr::from(if node(i) {
                            (10 << 24) | (x % (n4 << 8))
                        } else {
                            (11 << 24) | (x & 0xFF_FFFF)
                        })
                    })
                    .collect();
                let mut out = vec![Some(u32::MAX); v4.len()];
                t.lookup_batch_v4(&v4, &mut out);
                let want: Vec<_> = v4.iter().map(|&a| t.lookup_v4(a)).collect();
                assert_eq!(out, want, "{l4} every {every}");
                let v6: Vec<Ipv6Addr> = (0..700u32)
                    .map(|i| {
                        let x = u128::from(i.wrapping_mul(0x9E37_79B9));
                        Ipv6Addr::from(if node(i) {
                            (0x2001_0db8u128 << 96) | ((x % u128::from(n6)) << 80) | x << 40
                        } else {
                            (0x2a00u128 << 112) | x << 40
                        })
                    })
                    .collect();
                let mut out = vec![Some(u32::MAX); v6.len()];
                t.lookup_batch_v6(&v6, &mut out);
                let want: Vec<_> = v6.iter().map(|&a| t.lookup_v6(a)).collect();
                assert_eq!(out, want, "{l6} every {every}");
                assert!(want.iter().all(Option::is_some));
            }
        }
    }

    /// Prefetching a destination's first line, on every layout and on a family without
    /// prefixes, leaves every lookup as it was (and never panics, whatever the address).
    #[test]
    fn prefetch_changes_no_lookup_on_any_layout() {
        let mut narrow = Table::builder();
        for i in 0..40u32 {
            narrow.insert_v4(Ipv4Net::new(Ipv4Addr::from(i << 24), 8).unwrap(), i);
        }
        let mut wide = Table::builder();
        for i in 0..70_000u32 {
            wide.insert_v4(Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap(), i);
        }
        let sample: TableBuilder<u32> = sample().iter().map(|(n, v)| (n, u32::from(v))).collect();
        // Lone /32s in 40 /24s of one /18 (5 values): tips, so the inline-leaf layout is
        // chosen.
        let mut tips = sample.clone();
        for i in 0..40u32 {
            tips.insert_v4(
                Ipv4Net::new(Ipv4Addr::from(0x0A01_0000 | i << 8 | i), 32).unwrap(),
                1 + i % 5,
            );
        }
        let tables = [
            sample.build(),
            tips.build_with(false),
            narrow.build_with(false),
            wide.build_with(false),
            Table::empty(),
        ];
        let layouts: Vec<_> = tables.iter().map(|t| t.data.v4.layout()).collect();
        assert_eq!(
            layouts,
            [
                "dir-16-8-8",
                "nibble",
                "poptrie-u16",
                "poptrie-u32",
                "nibble"
            ]
        );
        let v4 = [0u32, 1, 0x0A01_0203, 0x0100_0001, 0x2800_0000, u32::MAX];
        let v6 = [0u128, 1, 0x2001_0db8_0001u128 << 80, u128::MAX];
        for t in &tables {
            for &x in &v4 {
                let addr = Ipv4Addr::from(x);
                let before = t.lookup_v4(addr);
                t.prefetch_v4(addr);
                assert_eq!(t.lookup_v4(addr), before, "{addr}");
            }
            for &x in &v6 {
                let addr = Ipv6Addr::from(x);
                let before = t.lookup_v6(addr);
                t.prefetch_v6(addr);
                assert_eq!(t.lookup_v6(addr), before, "{addr}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "differ in length")]
    fn batch_with_mismatched_lengths_panics() {
        let t = sample();
        t.lookup_batch_v4(&[Ipv4Addr::LOCALHOST], &mut []);
    }

    #[test]
    fn more_than_u16_distinct_values_use_wide_leaves() {
        let mut b = Table::builder();
        for i in 0..70_000u32 {
            b.insert_v4(Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap(), i);
        }
        let t = b.build_with(false);
        assert!(matches!(t.data.v4, Trie::Wide(_)));
        assert_eq!(t.stats().v4_layout, "poptrie-u32");
        assert_eq!(
            t.lookup_v4(Ipv4Addr::from((69_999u32 << 8) + 7)),
            Some(69_999)
        );
        assert_eq!(t.stats().distinct_values, 70_000);
    }

    #[test]
    fn small_ipv4_tables_take_the_dir_layout_and_large_ones_fall_back() {
        let v4 = |a: u32, len: u8| Ipv4Net::new(Ipv4Addr::from(a), len).unwrap();
        // 20,000 /24s with as many values, in 79 /16s: small.
        let mut b = Table::builder();
        for i in 0..20_000u32 {
            b.insert_v4(v4(i << 8, 24), i);
        }
        let t = b.build();
        assert_eq!(t.stats().v4_layout, "dir-16-8-8");
        assert_eq!(t.stats().v4_nodes, 1 + 79);
        assert_eq!(
            t.lookup_v4(Ipv4Addr::from((19_999u32 << 8) + 7)),
            Some(19_999)
        );
        assert_eq!(t.lookup_v4(Ipv4Addr::from(20_000u32 << 8)), None);
        // More distinct values than a 16-bit entry holds.
        let mut b = Table::builder();
        for i in 0..40_000u32 {
            b.insert_v4(v4(i << 8, 24), i);
        }
        assert_eq!(b.build().stats().v4_layout, "poptrie-u16");
        // A /17 in each of 9,000 /16s: 9,000 chunks of 512 bytes, over the size limit.
        let mut b = Table::builder();
        for i in 0..9_000u32 {
            b.insert_v4(v4(i << 16, 17), i % 3);
        }
        let t = b.build();
        assert!(DirTrie::bytes_with(9_001) > DIR_MAX_BYTES);
        // (Every /17 ends in the direct-pointing array: neither layout has nodes, and
        // the chooser takes the inline-leaf one, no larger.)
        assert_eq!(t.stats().v4_layout, "nibble");
        assert_eq!(
            t.lookup_v4(Ipv4Addr::from((8_999u32 << 16) + 5)),
            Some(8_999 % 3)
        );
        assert_eq!(t.lookup_v4(Ipv4Addr::from((8_999u32 << 16) + 0x8000)), None);
    }

    #[test]
    fn iter_and_to_builder_round_trip() {
        let t = sample();
        let again = t.to_builder().build();
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            again.iter().collect::<Vec<_>>()
        );
        assert!(t.size_bytes() > t.lookup_size_bytes());
    }

    #[test]
    fn each_family_has_its_own_dictionary_and_layout() {
        // 40 distinct IPv4 values and 3 IPv6 ones: IPv6 keeps the inline-leaf layout
        // (it would not if the 40 IPv4 values shared its dictionary); its lone /48s in
        // three /32s are tips, so that it is also the smaller one.
        let mut b = Table::builder();
        for i in 0..40u32 {
            b.insert_v4(
                Ipv4Net::new(Ipv4Addr::from((10 << 24) | (i << 8)), 24).unwrap(),
                1_000 + i,
            );
        }
        for i in 0..3u16 {
            b.insert(p(&format!("2001:db{:x}:{i}::/48", 8 + i)), 7 + u32::from(i));
        }
        let t = b.build();
        let stats = t.stats();
        assert_eq!(stats.v6_layout, "nibble");
        assert_eq!(stats.distinct_values, 43);
        assert_eq!(t.lookup(a("10.0.39.1")), Some(1_039));
        assert_eq!(t.lookup(a("2001:dba:2::1")), Some(9));
        // A value used in both families reads back in both.
        let mut b = t.to_builder();
        b.insert(p("2001:db8:9::/48"), 1_000);
        let t = b.build();
        assert_eq!(t.lookup(a("2001:db8:9::1")), Some(1_000));
        assert_eq!(t.lookup(a("10.0.0.1")), Some(1_000));
        assert_eq!(t.stats().distinct_values, 43);
    }

    /// The layout (and the whole trie) the chooser builds for one family is the same
    /// whatever the other family holds: IPv6 prefixes with 12 values alone, and beside
    /// IPv4 prefixes with 40 other values (and the same 12); and the other way round.
    #[test]
    fn each_familys_layout_is_independent_of_the_other_familys_values() {
        let v4 = |i: u32| Ipv4Net::new(Ipv4Addr::from((10 << 24) | (i << 8)), 24).unwrap();
        let v6 = |i: u32| {
            Ipv6Net::new(
                Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(i) << 64)),
                64,
            )
            .unwrap()
        };
        for (few, many) in [(12u32, 40u32), (3, 2_000)] {
            let mut only6 = Table::builder();
            let mut only4 = Table::builder();
            for i in 0..600 {
                only6.insert_v6(v6(i * 7), i % few);
                only4.insert_v4(v4(i * 5), i % few);
            }
            let mut both = only6.clone();
            for i in 0..3_000 {
                both.insert_v4(v4(i), 100 + i % many);
            }
            let mut both_other_way = only4.clone();
            for i in 0..3_000 {
                both_other_way.insert_v6(v6(i), 100 + i % many);
            }
            let (alone, mixed) = (only6.build().stats(), both.build().stats());
            assert_eq!(
                (alone.v6_layout, alone.v6_nodes, alone.v6_trie_bytes),
                (mixed.v6_layout, mixed.v6_nodes, mixed.v6_trie_bytes),
                "IPv6 beside {many} IPv4 values"
            );
            let (alone, mixed) = (only4.build().stats(), both_other_way.build().stats());
            assert_eq!(
                (alone.v4_layout, alone.v4_nodes, alone.v4_trie_bytes),
                (mixed.v4_layout, mixed.v4_nodes, mixed.v4_trie_bytes),
                "IPv4 beside {many} IPv6 values"
            );
        }
    }

    #[test]
    fn an_empty_family_says_so_and_family_forms_of_get_and_remove() {
        let mut b = Table::builder();
        b.insert(p("192.0.2.0/24"), 1u8);
        let t = b.build();
        assert_eq!(t.stats().v6_layout, "empty");
        assert_ne!(t.stats().v4_layout, "empty");
        assert_eq!(Table::<u8>::empty().stats().v4_layout, "empty");
        let mut b = t.to_builder();
        let v4: Ipv4Net = "192.0.2.77/24".parse().unwrap();
        assert_eq!(b.get_v4(v4), Some(1));
        assert_eq!(b.get_v6("2001:db8::/32".parse().unwrap()), None);
        assert_eq!(b.remove_v4(v4), Some(1));
        assert_eq!(b.remove_v6("2001:db8::/32".parse().unwrap()), None);
        assert!(b.is_empty());
    }

    #[test]
    fn every_layout_can_be_forced_where_it_fits_and_answers_the_same() {
        let t = sample();
        let b = t.to_builder();
        let probes = [
            "10.1.2.3",
            "10.1.2.4",
            "10.9.9.9",
            "8.8.8.8",
            "255.255.255.255",
            "2001:db8:1::1",
            "2001:db8:1::2",
            "2001:db8:2::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::1",
        ];
        let v4 = [
            Layout::Dir16_8_8,
            Layout::Nibble,
            Layout::PoptrieU16,
            Layout::PoptrieU32,
        ];
        let v6 = [Layout::Nibble, Layout::PoptrieU16, Layout::PoptrieU32];
        for l4 in v4 {
            for l6 in v6 {
                let forced = b.build_with_layouts(l4, l6).unwrap();
                assert_eq!(
                    (forced.stats().v4_layout, forced.stats().v6_layout),
                    (l4, l6)
                );
                for addr in probes {
                    assert_eq!(
                        forced.lookup(a(addr)),
                        t.lookup(a(addr)),
                        "{l4} {l6} {addr}"
                    );
                }
            }
        }
        let e = b
            .build_with_layouts(Layout::PoptrieU16, Layout::Dir16_8_8)
            .unwrap_err();
        assert_eq!((e.family, e.layout), ("IPv6", Layout::Dir16_8_8));
        assert!(b.build_with_layouts(Layout::Empty, Layout::Nibble).is_err());
        let mut many = Table::builder();
        for i in 0..20u32 {
            many.insert_v4(Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap(), i);
        }
        let e = many
            .build_with_layouts(Layout::Nibble, Layout::Empty)
            .unwrap_err();
        assert_eq!(e.why, "more than 15 distinct values");
        assert_eq!(
            many.build_with_layouts(Layout::PoptrieU32, Layout::Empty)
                .unwrap()
                .stats()
                .v6_layout,
            Layout::Empty
        );
    }
}
