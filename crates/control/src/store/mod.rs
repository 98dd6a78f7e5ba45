//! Durable state behind a small trait.
//!
//! The rules never talk to a store: they turn a request into [`Commit`]s of whole-record
//! upserts, and the [`crate::ControlPlane`] hands batches of commits to a [`Store`]. A
//! backend therefore needs only two operations, and a distributed one (etcd: one key per
//! record, a transaction per batch, compare-on-create for the unique keys) fits behind
//! the same trait without touching the rules.
//!
//! - [`SqliteStore`]: the default. WAL, `synchronous=FULL` (the WAL is fsync'd at every
//!   commit), one transaction per batch, schema migrations, uniqueness constraints.
//! - [`MemoryStore`]: for tests and simulations; clones share their contents, so a test
//!   can "reopen" one.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::{Durability, SqliteStore};

use crate::error::StoreError;
use crate::state::{Change, Commit};

/// Everything a store holds: the records (as upserts, in an order that applies cleanly)
/// and the version of the last commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The version of the last durable commit.
    pub version: u64,
    /// The records.
    pub records: Vec<Change>,
}

/// A durable home for the control plane's records.
///
/// Contract for implementations:
/// - `commit` applies all the given commits atomically, in order, and returns only once
///   they are durable (survive a crash of the process and of the machine). On error,
///   none of them is applied.
/// - `load` returns exactly the records of all successful commits (last upsert wins).
/// - Implementations enforce the uniqueness rules they can (live binding per
///   `(prefix, cidr)`, prefix CIDR, token secret hash, region key) as constraints, as a
///   second line of defence behind the rules: a violation is an error, never a silent
///   overwrite.
pub trait Store: Send {
    /// Reads everything.
    fn load(&mut self) -> Result<Loaded, StoreError>;

    /// Persists `commits` atomically and durably.
    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError>;

    /// A short name for logs and metrics (`sqlite`, `memory`).
    fn kind(&self) -> &'static str;
}
