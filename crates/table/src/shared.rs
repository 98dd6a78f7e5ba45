//! Versioned snapshots shared between one writer and many readers (arc-swap).

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::table::Table;

/// One published version of the table: what a reader sees, whole.
#[derive(Debug)]
pub struct Snapshot<V> {
    version: u64,
    table: Table<V>,
}

impl<V> Snapshot<V> {
    /// A snapshot of `table` at `version`.
    pub fn new(version: u64, table: Table<V>) -> Self {
        Snapshot { version, table }
    }

    /// The version it was published with.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The table.
    pub fn table(&self) -> &Table<V> {
        &self.table
    }
}

impl<V> Deref for Snapshot<V> {
    type Target = Table<V>;
    fn deref(&self) -> &Table<V> {
        &self.table
    }
}

/// Why [`SharedTable::publish`] refused a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Versions must increase; this one is not newer than the current snapshot.
    #[error("version {offered} is not newer than the published version {current}")]
    StaleVersion {
        /// The version already published.
        current: u64,
        /// The version that was offered.
        offered: u64,
    },
}

/// The data plane's handle: the current [`Snapshot`], swapped atomically.
///
/// - Readers call [`load`](Self::load) (no locks, no allocation, no contended
///   reference-count update on the fast path) once per packet batch and do all lookups of
///   the batch on that one snapshot, so a batch never mixes two versions.
/// - A writer calls [`publish`](Self::publish): an O(1) pointer swap. The previous
///   snapshot is freed when the last reader holding it lets go.
///
/// Share it between threads with an `Arc<SharedTable<V>>` (it is `Send + Sync` when `V`
/// is).
#[derive(Debug)]
pub struct SharedTable<V> {
    current: ArcSwap<Snapshot<V>>,
}

/// A reader's pinned snapshot from [`SharedTable::load`]. Dereferences to the
/// [`Snapshot`] (and through it to the [`Table`]). Drop it promptly: while it lives the
/// snapshot it points to cannot be freed.
pub struct SnapshotGuard<V> {
    guard: Guard<Arc<Snapshot<V>>>,
}

impl<V> Deref for SnapshotGuard<V> {
    type Target = Snapshot<V>;
    fn deref(&self) -> &Snapshot<V> {
        &self.guard
    }
}

impl<V> SnapshotGuard<V> {
    /// Turns the guard into an owned `Arc` (for holding a snapshot for a long time).
    pub fn into_arc(self) -> Arc<Snapshot<V>> {
        Guard::into_inner(self.guard)
    }
}

impl<V> std::fmt::Debug for SnapshotGuard<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotGuard")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<V> SharedTable<V> {
    /// A handle whose first snapshot is `table` at `version`.
    pub fn new(version: u64, table: Table<V>) -> Self {
        SharedTable {
            current: ArcSwap::from_pointee(Snapshot::new(version, table)),
        }
    }

    /// The current snapshot, pinned until the guard is dropped.
    #[inline]
    pub fn load(&self) -> SnapshotGuard<V> {
        SnapshotGuard {
            guard: self.current.load(),
        }
    }

    /// The current snapshot as an owned `Arc`.
    pub fn load_full(&self) -> Arc<Snapshot<V>> {
        self.current.load_full()
    }

    /// The version of the current snapshot.
    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// Publishes `table` as `version`, which must be greater than the current version.
    /// Readers that load afterwards see it; readers holding the previous snapshot keep it
    /// until they drop it. Returns the version it replaced.
    ///
    /// O(1): one allocation for the snapshot header and an atomic pointer swap (the
    /// previous table is freed here only if no reader still holds it).
    pub fn publish(&self, version: u64, table: Table<V>) -> Result<u64, PublishError> {
        let new = Arc::new(Snapshot::new(version, table));
        let mut current = self.current.load();
        loop {
            if version <= current.version {
                return Err(PublishError::StaleVersion {
                    current: current.version,
                    offered: version,
                });
            }
            let previous = self.current.compare_and_swap(&*current, Arc::clone(&new));
            if Arc::ptr_eq(&*previous, &*current) {
                return Ok(current.version);
            }
            // Another writer won the race: check the version against its snapshot.
            current = previous;
        }
    }
}

impl<V: Copy + Eq + std::hash::Hash> Default for SharedTable<V> {
    /// Version 0 with an empty table.
    fn default() -> Self {
        SharedTable::new(0, Table::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TableBuilder;
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn table_with(value: u16) -> Table<u16> {
        let mut b = TableBuilder::new();
        b.insert("10.0.0.0/8".parse().unwrap(), value);
        b.insert("10.1.0.0/16".parse().unwrap(), value + 1);
        b.insert("2001:db8::/32".parse().unwrap(), value + 2);
        b.build()
    }

    #[test]
    fn publish_swaps_and_old_snapshots_stay_readable() {
        let shared = SharedTable::new(1, table_with(10));
        let old = shared.load();
        assert_eq!(shared.publish(2, table_with(20)), Ok(1));
        assert_eq!(old.version(), 1);
        assert_eq!(old.lookup("10.0.0.1".parse().unwrap()), Some(10));
        let new = shared.load();
        assert_eq!(new.version(), 2);
        assert_eq!(new.lookup("10.0.0.1".parse().unwrap()), Some(20));
        assert_eq!(shared.version(), 2);
    }

    #[test]
    fn publish_rejects_versions_that_are_not_newer() {
        let shared = SharedTable::new(5, table_with(10));
        assert_eq!(
            shared.publish(5, table_with(20)),
            Err(PublishError::StaleVersion {
                current: 5,
                offered: 5
            })
        );
        assert!(shared.publish(4, table_with(20)).is_err());
        assert_eq!(shared.load().lookup("10.0.0.1".parse().unwrap()), Some(10));
    }

    #[test]
    fn the_old_table_is_freed_when_its_last_reader_drops_it() {
        let shared = SharedTable::new(1, table_with(10));
        let held = shared.load().into_arc();
        shared.publish(2, table_with(20)).unwrap();
        assert_eq!(
            Arc::strong_count(&held),
            1,
            "only the reader holds version 1"
        );
        let weak = Arc::downgrade(&held);
        drop(held);
        assert!(weak.upgrade().is_none());
    }

    /// Readers batch-look-up on one loaded snapshot while a writer publishes alternating
    /// tables; every batch must equal the answers of exactly the version it loaded.
    #[test]
    fn readers_never_see_a_torn_table() {
        let shared = Arc::new(SharedTable::new(1, table_with(100)));
        let addrs: Vec<IpAddr> = ["10.0.0.1", "10.1.0.1", "2001:db8::1", "11.0.0.1"]
            .iter()
            .cycle()
            .take(64)
            .map(|s| s.parse().unwrap())
            .collect();
        let expected = |version: u64| {
            let base = if version % 2 == 1 { 100 } else { 200 };
            addrs
                .iter()
                .map(|a| table_with(base).lookup(*a))
                .collect::<Vec<_>>()
        };
        let (odd, even) = (expected(1), expected(2));
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = vec![None; addrs.len()];
                        let mut batches = 0u64;
                        let mut versions_seen = std::collections::BTreeSet::new();
                        while !stop.load(Ordering::Relaxed) || batches < 100 {
                            let snapshot = shared.load();
                            snapshot.lookup_batch(&addrs, &mut out);
                            let want = if snapshot.version() % 2 == 1 {
                                &odd
                            } else {
                                &even
                            };
                            assert_eq!(&out, want, "version {}", snapshot.version());
                            versions_seen.insert(snapshot.version());
                            batches += 1;
                        }
                        versions_seen.len()
                    })
                })
                .collect();
            for version in 2..=400u64 {
                let base = if version % 2 == 1 { 100 } else { 200 };
                shared.publish(version, table_with(base)).unwrap();
                std::thread::yield_now();
            }
            stop.store(true, Ordering::Relaxed);
            for reader in readers {
                assert!(reader.join().unwrap() >= 1);
            }
        });
        assert_eq!(shared.version(), 400);
    }
}
