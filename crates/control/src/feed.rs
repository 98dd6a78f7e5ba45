//! The change feed: what the data plane compiles into region tables.

use crate::records::{BindingRecord, BindingState};
use inregion_model::{BindingId, Cidr, RegionKey, Timestamp};
use serde::{Deserialize, Serialize};

/// One binding in force: traffic to `cidr` is processed in `region_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InForce {
    /// The binding.
    pub binding_id: BindingId,
    /// Its CIDR.
    pub cidr: Cidr,
    /// The region in force at the snapshot's time (may be the previous region while a
    /// change propagates).
    pub region_key: RegionKey,
}

/// The bindings in force at `(version, at)`, sorted by CIDR. Overlapping CIDRs all
/// appear: the data plane applies the most specific match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSnapshot {
    /// The global version the snapshot was taken at.
    pub version: u64,
    /// The time the regions in force were computed for.
    pub at: Timestamp,
    /// The entries.
    pub entries: Vec<InForce>,
}

/// Bindings changed after some version (their latest state; tombstones included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// The current version (pass it to the next `changes_since`).
    pub version: u64,
    /// The changed records, by ascending version.
    pub bindings: Vec<BindingRecord>,
}

/// Why [`crate::ControlPlane::changes_since`] cannot answer with a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Bindings changed after `since` have been purged since (the newest at version
    /// `purged_through`): re-read everything and follow on from that snapshot.
    #[error(
        "version {since} is too far behind: bindings up to version {purged_through} have \
         been purged; re-read everything"
    )]
    TooFarBehind {
        /// The version the reader asked from.
        since: u64,
        /// The newest version among the purged bindings.
        purged_through: u64,
    },
    /// `since` is newer than this server's version: the reader followed another
    /// incarnation of the server (a reset in-memory one). Re-read everything.
    #[error("version {since} is ahead of this server (at version {version}): re-read everything")]
    Ahead {
        /// The version the reader asked from.
        since: u64,
        /// The server's version.
        version: u64,
    },
}

/// Binding counts by lifecycle state at a time (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingCounts {
    /// Live, still propagating.
    pub provisioning: u64,
    /// Live, propagated.
    pub active: u64,
    /// Deleted, deletion still propagating.
    pub deleting: u64,
    /// Deleted and propagated (tombstones kept for the feed).
    pub gone: u64,
}

impl BindingCounts {
    pub(crate) fn add(&mut self, s: BindingState) {
        match s {
            BindingState::Provisioning => self.provisioning += 1,
            BindingState::Active => self.active += 1,
            BindingState::Deleting => self.deleting += 1,
            BindingState::Gone => self.gone += 1,
        }
    }
}
