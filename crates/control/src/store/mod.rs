//! Durable state behind a small trait.
//!
//! The rules never talk to a store: they turn a request into [`Commit`]s of whole-record
//! upserts, and the [`crate::ControlPlane`] hands batches of commits to a [`Store`]. A
//! backend therefore needs only two operations, and a distributed one (etcd: one key per
//! record, a transaction per batch, compare-on-create for the unique keys) fits behind
//! the same trait without touching the rules.
//!
//! - [`SqliteStore`]: the default ([`ControlPlane::open_sqlite`](crate::ControlPlane::open_sqlite)).
//!   WAL, `synchronous=FULL` (the WAL is fsynced at every commit; `NORMAL` with
//!   [`Durability::Process`]), one transaction per batch, checkpoints off the commit path
//!   (`checkpoint.rs`), row bodies of its own (`rows.rs`), schema migrations,
//!   uniqueness constraints.
//! - [`EtcdStore`]: the records in an etcd cluster, shared by any number of replicas
//!   (`inregion serve --store etcd://...`): a key per record, a transaction per batch,
//!   conditional on the replica's state being current; a watch keeps each replica's
//!   state current.
//! - [`MemoryStore`]: for tests and simulations; clones share their contents, so a test
//!   can "reopen" one.

mod checkpoint;
pub(crate) mod etcd;
mod memory;
#[cfg(test)]
pub(crate) mod round_trip;
mod rows;
mod snapshot;
mod sqlite;

pub use etcd::{EtcdConfig, EtcdStore, EtcdUrlError, DEFAULT_ETCD_PREFIX};
pub use memory::MemoryStore;
pub use snapshot::{Snapshot, SnapshotError, SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_VERSION};
pub use sqlite::{Durability, SqliteStore};

use crate::auth::TokenKey;
use crate::error::StoreError;
use crate::state::{Change, Commit};

/// Everything a store holds: the records (as upserts, in an order that applies cleanly)
/// and the version of the last commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The version of the last durable commit.
    pub version: u64,
    /// The highest version of a binding forgotten by a purge
    /// ([`crate::State::purged_through`]).
    pub purged_through: u64,
    /// The records.
    pub records: Vec<Change>,
}

/// A durable home for the control plane's records.
///
/// Contract for implementations:
/// - `commit` applies all the given commits atomically, in order, and returns only once
///   they are durable (as far as the store promises: see [`Durability`]). On error,
///   none of them is applied.
/// - `load` returns exactly the records of all successful commits (last upsert wins,
///   purged bindings absent) and the highest purged version.
/// - Implementations enforce the uniqueness rules they can (live binding per
///   `(prefix, cidr)`, prefix CIDR, token secret digest, region key) as constraints, as
///   a second line of defence behind the rules: a violation is an error, never a silent
///   overwrite.
/// - `token_key` is the same for every open of the same durable state: secrets stored
///   with it must verify after a restart.
pub trait Store: Send {
    /// Reads everything.
    fn load(&mut self) -> Result<Loaded, StoreError>;

    /// Persists `commits` atomically and durably.
    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError>;

    /// The key that token secrets and global keys are hashed with.
    fn token_key(&self) -> TokenKey;

    /// A short name for logs and metrics (`sqlite`, `memory`, `etcd`).
    fn kind(&self) -> &'static str;

    /// The etcd store behind this one, when the state is shared with other replicas:
    /// the commit pipeline then follows it and resolves conflicts (see `etcd/mod.rs`).
    fn as_etcd(&mut self) -> Option<&mut EtcdStore> {
        None
    }

    /// The most record changes one [`Store::commit`] should carry when it groups several
    /// operations (`None`: no limit). An operation larger than this is still committed,
    /// alone.
    fn max_batch_changes(&self) -> Option<usize> {
        None
    }
}

/// Records for the stores' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::records::{Account, Approval, BindingRecord, Prefix};
    use inregion_model::{
        AccountId, BindingId, Cidr, Entitlement, PrefixId, RegionKey, ServiceId, Timestamp,
    };

    pub(crate) fn account() -> Account {
        Account {
            id: AccountId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            name: "a".into(),
            entitlements: [Entitlement::RegionalServices].into_iter().collect(),
        }
    }

    pub(crate) fn prefix(a: &Account) -> Prefix {
        Prefix {
            id: PrefixId::parse("a1b2c3d4-e5f6-7890-abcd-ef1234567890").unwrap(),
            account_id: a.id.clone(),
            cidr: Cidr::parse_strict("203.0.113.0/24").unwrap(),
            asn: 64496,
            description: String::new(),
            approved: Approval::Approved,
            base_service: ServiceId::random(),
            created_at: Timestamp::EPOCH,
            modified_at: Timestamp::EPOCH,
        }
    }

    pub(crate) fn binding(a: &Account, p: &Prefix, cidr: &str, version: u64) -> BindingRecord {
        BindingRecord {
            id: BindingId::random(),
            account_id: a.id.clone(),
            prefix_id: p.id.clone(),
            cidr: Cidr::parse_strict(cidr).unwrap(),
            region: RegionKey::parse("eu").unwrap(),
            previous_region: Some(RegionKey::parse("us").unwrap()),
            created_at: Timestamp::from_secs(1),
            changed_at: Timestamp::from_secs(2),
            active_at: Timestamp::from_secs(3),
            deleted_at: None,
            gone_at: None,
            version,
        }
    }
}
