//! The in-memory store.

use super::{Loaded, Store};
use crate::auth::TokenKey;
use crate::error::StoreError;
use crate::state::{Commit, State};
use std::sync::{Arc, Mutex};

/// Keeps the records in memory. Clones share the same contents, so dropping a
/// [`crate::ControlPlane`] and opening a new one on a clone is a "restart".
///
/// [`MemoryStore::fail_next_commits`] makes the next commits fail, to test the error path;
/// [`MemoryStore::fail_next_commit_as_disk`] makes the next one fail as a disk that failed
/// an fsync would, to test the halt that follows.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Failures armed for the next commits, in order.
    fail_next: Vec<StoreError>,
    commits: u64,
    /// Random per store (shared by its clones, like the records).
    token_key: TokenKey,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: State::default(),
            fail_next: Vec::new(),
            commits: 0,
            token_key: TokenKey::random(),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` calls to `commit` fail with [`StoreError::Injected`] (and change
    /// nothing), replacing any failures armed before: `0` disarms.
    pub fn fail_next_commits(&self, n: usize) {
        self.lock().fail_next = vec![StoreError::Injected; n];
    }

    /// Makes the next call to `commit` fail with [`StoreError::DiskFailed`] (an
    /// `SQLITE_IOERR_FSYNC`, as SQLite reports a failed fsync) and change nothing,
    /// replacing any failures armed before.
    pub fn fail_next_commit_as_disk(&self) {
        self.lock().fail_next = vec![StoreError::DiskFailed {
            path: "memory".into(),
            source: Arc::new(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC),
                Some("injected: fsync failed".into()),
            )),
        }];
    }

    /// How many successful `commit` calls (batches) there were.
    pub fn commit_calls(&self) -> u64 {
        self.lock().commits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave `Inner` half-updated in a way
        // that matters for tests; recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let g = self.lock();
        Ok(Loaded {
            version: g.state.version(),
            purged_through: g.state.purged_through(),
            records: g.state.dump(),
        })
    }

    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError> {
        let mut g = self.lock();
        if !g.fail_next.is_empty() {
            return Err(g.fail_next.remove(0));
        }
        for c in commits {
            g.state.apply_commit(c);
        }
        g.commits += 1;
        Ok(())
    }

    fn token_key(&self) -> TokenKey {
        self.lock().token_key.clone()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
