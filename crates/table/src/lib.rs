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
//!  Table<V>               immutable; per family:
//!   ├─ values             dictionary: leaf index -> Option<V> (0 = no match)
//!   ├─ v4 Poptrie         2^18-entry direct array ─► nodes (6-bit chunks) ─► leaves
//!   ├─ v6 Poptrie         2^16-entry direct array ─► nodes (6-bit chunks) ─► leaves
//!   └─ sorted prefixes    (prefix, value) list for longest_match() and iter()
//!        │ publish()
//!        ▼
//!  SharedTable<V>         ArcSwap<Snapshot { version, table }>; readers load() a guard
//! ```
//!
//! Each trie is a Poptrie (Asai & Ohara, SIGCOMM 2015): after the direct-pointing array,
//! a node stores 64 slots with two `u64` bitmaps, one marking slots that continue in a
//! child node, one marking the starts of runs of equal leaves; children and leaves are
//! stored contiguously and found with a popcount. Start reading at [`TableBuilder::build`]
//! and `poptrie.rs`.
//!
//! # Invariants
//!
//! - A lookup returns the value of the longest stored prefix containing the address, or
//!   `None`; IPv4 and IPv6 are separate (an IPv4-mapped IPv6 address is looked up as
//!   IPv6).
//! - Subtrees in which every address resolves to the same value are collapsed into one
//!   leaf, so the compiled size depends on how values are laid out, not only on the
//!   number of prefixes (few distinct region ids compress well).
//! - A [`Table`] never changes after it is built; new versions are new tables.
//!
//! # Complexity
//!
//! - `lookup`: at most `1 + ceil((32 - 18) / 6) = 4` dependent memory reads for IPv4,
//!   `1 + ceil((128 - 16) / 6) = 20` for IPv6 (typically 3-5 for routed prefixes); no
//!   allocation. `lookup_batch_*` prefetch groups of 32 lookups so their misses overlap.
//! - `longest_match`: one binary search per distinct prefix length present.
//! - `build`: O(n · 64) time; the compiled trie of a full BGP IPv4 table (~1M prefixes,
//!   12 values) is a few MiB; [`Table::size_bytes`] also counts the sorted prefix list.
//! - [`SharedTable::publish`]: O(1).
//!
//! The crate does no I/O and has no threads, globals or clocks.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod builder;
mod nibble;
mod poptrie;
mod prefetch;
mod shared;
mod table;

#[cfg(test)]
mod proptests;

pub use builder::TableBuilder;
pub use shared::{PublishError, SharedTable, Snapshot, SnapshotGuard};
pub use table::{Table, TableStats};
