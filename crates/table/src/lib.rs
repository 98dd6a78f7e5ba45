//! `inregion-table`: an immutable, read-optimized longest-prefix-match table from IPv4
//! and IPv6 prefixes to small copyable values (region ids), and a versioned handle to
//! swap it atomically under concurrent readers.
//!
//! # Example
//!
//! ```
//! use inregion_table::{SharedTable, Table};
//!
//! let mut builder = Table::builder();
//! builder.insert("203.0.113.0/24".parse().unwrap(), 1u16); // region 1
//! builder.insert("203.0.113.128/25".parse().unwrap(), 2); // more specific: region 2
//! builder.insert("2001:db8::/32".parse().unwrap(), 1);
//! let table = builder.build();
//!
//! assert_eq!(table.lookup("203.0.113.7".parse().unwrap()), Some(1));
//! assert_eq!(table.lookup("203.0.113.200".parse().unwrap()), Some(2));
//! assert_eq!(table.lookup("198.51.100.1".parse().unwrap()), None);
//! assert_eq!(
//!     table.longest_match("203.0.113.200".parse().unwrap()),
//!     Some(("203.0.113.128/25".parse().unwrap(), 2)),
//! );
//!
//! // Batch lookups overlap their memory accesses; they never allocate.
//! let addrs = ["203.0.113.1".parse().unwrap(), "203.0.113.129".parse().unwrap()];
//! let mut regions = [None; 2];
//! table.lookup_batch_v4(&addrs, &mut regions);
//! assert_eq!(regions, [Some(1), Some(2)]);
//!
//! // The data plane shares a versioned snapshot; a writer swaps in new versions.
//! let shared = SharedTable::new(1, table);
//! let snapshot = shared.load(); // a reader pins version 1 for one batch
//! let mut next = snapshot.to_builder();
//! next.insert("198.51.100.0/24".parse().unwrap(), 3);
//! shared.publish(2, next.build()).unwrap();
//! assert_eq!(snapshot.version(), 1); // the pinned snapshot is unchanged
//! assert_eq!(shared.load().lookup("198.51.100.1".parse().unwrap()), Some(3));
//! ```
//!
//! # Structure
//!
//! ```text
//!  TableBuilder<V>        BTreeMaps of (prefix -> value); insert truncates host bits,
//!        │ build()        the last insert of a prefix wins
//!        ▼
//!  compile.rs             sorted prefixes -> trie shape (painting, subtree collapse,
//!        │                optional path compression); one pass, O(n · 64)
//!        ▼
//!  Table<V>               immutable; per family one trie in one of three layouts:
//!   ├─ values             a dictionary per family: leaf index -> Option<V> (index 0 =
//!   │                     no match); each trie's layout sees only its family's values
//!   ├─ v4 trie            small tables (≤ 4 MiB in it, a customer's or region's
//!   │                     bindings): dir.rs, 2^16 entries ─► 256 ─► 256 (DIR-16-8-8,
//!   │                     16-bit entries, plain indexing, no popcount)
//!   │                     larger: 2^18-entry direct array ─► 6-bit nodes ─► leaf
//!   ├─ v6 trie            2^16-entry direct array ─► 6-bit nodes ─► leaf
//!   │    (a family without prefixes gets a 2^8-entry array: 1 KiB, no nodes)
//!   │    node layouts:  nibble.rs   ≤ 15 distinct values: 64-byte nodes with 64
//!   │                               inline 4-bit leaves and path compression
//!   │                               (one line per level); a lone prefix's node
//!   │                               is an 8-byte tip
//!   │                   poptrie.rs  32-byte Poptrie nodes + run-compressed leaf
//!   │                               array (u16 leaves: path-compressed; u32)
//!   │    chooser: per family, both are laid out from one compiled shape; nibble
//!   │    when it fits and its nodes and tips take at most 0.9x the Poptrie's bytes
//!   │    below the direct-pointing array, else Poptrie
//!   │    nodes in breadth-first order: the first level packed together
//!   └─ sorted prefixes    (prefix, value) list for longest_match() and iter()
//!        │ publish()
//!        ▼
//!  SharedTable<V>         ArcSwap<Snapshot { version, table }>; readers load() a guard
//! ```
//!
//! The two node layouts are Poptries (Asai & Ohara, SIGCOMM 2015): after the direct-pointing
//! array (its width is chosen per trie at build time and stored with it), a node covers
//! 6 key bits with 64 slots; a `u64` bitmap marks the slots that continue in a child
//! node, children are stored contiguously and found with a popcount.
//! Where to start reading: [`TableBuilder::build`] → `dir.rs` (the layout of a
//! region table's IPv4 bindings) → `compile.rs` → `nibble.rs` (region ids in large
//! tables and IPv6) → `table.rs` (layout choice, dispatch, batch, `longest_match`).
//! Batch lookups answer the addresses that end in the direct-pointing array first
//! (branch-free when a block's first 32 addresses are a mix of both kinds), then
//! walk the others 32 at a time in lock-step and prefetch the next node of each before
//! stepping the others, so that their cache misses overlap (the prefetch is
//! `inregion_hint::prefetch`: the memory-hint primitives and the workspace's only
//! `unsafe` live in the `inregion-hint` crate; this crate has none).
//!
//! # Invariants
//!
//! - A lookup returns the value of the longest stored prefix containing the address, or
//!   `None`; IPv4 and IPv6 are separate (an IPv4-mapped IPv6 address is looked up as
//!   IPv6).
//! - In the Poptrie layouts, subtrees in which every address resolves to the same value
//!   are collapsed into one leaf, so the compiled size depends on how values are laid out, not only on the
//!   number of prefixes (few distinct region ids compress well).
//! - In the nibble and Poptrie-u16 layouts a node starts where the prefixes below it
//!   diverge (or the shortest of them ends), not at a multiple of 6 bits, at most 40
//!   bits past its parent: the bits above it that every prefix shares are skipped, and
//!   so is a node whose slots all say the same thing except for one child. A node
//!   checks the key bits it expects (a 40-bit window: the nodes above checked the
//!   rest) and answers its `fallback` leaf when they differ.
//! - A [`Table`] never changes after it is built; new versions are new tables.
//!
//! # Complexity
//!
//! - `lookup`: one direct-pointing read plus one node per 6 bits past it: at most 3 nodes
//!   for IPv4, at most 19 for IPv6 (typically 1-4 after path compression); in the
//!   DIR-16-8-8 layout at most 3 reads in all; no allocation.
//! - `lookup_batch_*`: the same work; lookups that end in the direct-pointing array are
//!   answered in a first pass, the others are walked in full groups of 32 with their
//!   cache misses overlapped at every level (in tries within 1 MiB, cache-resident,
//!   hit-heavy blocks are looked up one address at a time).
//! - `longest_match`: one binary search per distinct prefix length present.
//! - `build`: O(n · 64) time (a family with at most 15 values lays out both
//!   candidate layouts from it) plus filling the direct-pointing arrays (1 MiB for IPv4,
//!   256 KiB for IPv6, only for a family that has prefixes); in the DIR-16-8-8 layout a
//!   sort by prefix length and one fill per prefix (at most 2^16 entries for a short
//!   one, 256 for a longer one); a 10k-prefix IPv4 table compiles in about 2 ms, a full BGP IPv4 table (~1M prefixes, 12 values) in about
//!   0.2 s to ~8 MiB of trie; [`Table::size_bytes`] also counts the sorted prefix
//!   list (~8 bytes per IPv4 prefix, ~20 per IPv6 prefix).
//! - Publishing with [`SharedTable::publish`] is O(1).
//!
//! # CPU features
//!
//! Nothing beyond the x86-64 baseline is required. `popcnt` (x86-64-v2) makes node
//! steps cheaper (each counts the bits of a bitmap to find its child): batch lookups run
//! a copy of themselves compiled with it when the CPU has it, picked at run time
//! ([`inregion_hint::with_popcnt`]); single lookups use it when the crate is built with
//! `-C target-cpu=native` (or `x86-64-v2`), since a run-time choice would cost each of
//! them a call that cannot be inlined.
//!
//! The crate does no I/O and has no threads, globals or clocks.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod compile;
mod dir;
mod nibble;
mod poptrie;
mod shared;
mod table;

#[cfg(test)]
mod proptests;

pub use builder::TableBuilder;
/// The prefix types this crate's API takes and returns (`IpNet`, `Ipv4Net`, `Ipv6Net`),
/// re-exported so that users need not pick a matching `ipnet` version themselves.
pub use ipnet;
pub use shared::{PublishError, SharedTable, Snapshot, SnapshotGuard};
pub use table::{Layout, LayoutError, Table, TableStats};
