//! Edge nodes: their registry, the majority that activates changes under
//! [`Activation::Edges`], and the binding feed they follow (`docs/edge-protocol.md`).
//!
//! What is durable and what is not, and why:
//! - a node's *registration* (id, data center, address) is a record
//!   ([`Change::EdgeNode`]): a restart of the control plane must not forget a stopped
//!   node, or the majority would shrink and activate changes that only a minority has;
//! - what a node has *applied* and when it was *last seen* live in memory
//!   ([`EdgeRuntime`]): written on every heartbeat they would cost a commit per node per
//!   second. After a restart every node counts as having applied nothing until it
//!   reports again, which can delay an activation, never hasten it;
//! - an *activation* is a commit of the records it settles (`active_at` or `gone_at`
//!   set to the moment the majority was reached), so it survives restarts and is never
//!   taken back.
//!
//! Liveness and expiry run on the wall clock passed in (`wall_now`), not on the
//! emulated clock that the binding lifecycle uses (`clock_now`): advancing the emulated
//! clock by a day must not expire every node.

use super::*;
use crate::pipeline::VersionAfter;
use inregion_feed::wire::{self, is_node_id};
use std::sync::MutexGuard;

/// What the edge nodes reported since this control plane was opened.
#[derive(Debug, Default)]
pub(crate) struct EdgeRuntime {
    seen: HashMap<String, Seen>,
    /// When this process first heard of the registry: the baseline of liveness and
    /// expiry for nodes registered before a restart and not heard from since.
    started: Option<Timestamp>,
    /// The highest majority version computed so far (activation never goes back).
    activated_through: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    applied: u64,
    at: Timestamp,
}

/// Why a node's report or removal was refused.
#[derive(Debug, thiserror::Error)]
pub enum EdgeNodeError {
    /// The node id is not 1–64 characters of `[A-Za-z0-9._-]`.
    #[error("invalid node id {0:?}: 1-64 characters of A-Z a-z 0-9 . _ -")]
    InvalidNodeId(String),
    /// The data center is not in the reference data.
    #[error("unknown data center {0:?}: not in the reference data")]
    UnknownDc(String),
    /// No node is registered under this id.
    #[error("no edge node {0:?} is registered")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One registered node as the registry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeNodeStatus {
    /// The registration.
    pub record: EdgeNodeRecord,
    /// The newest version it reported applied since this process started (0 before).
    pub applied_version: u64,
    /// Heard from within [`EdgeRegistryConfig::live_timeout`].
    pub live: bool,
    /// When it last reported to this process.
    pub last_seen: Option<Timestamp>,
}

impl EdgeNodeStatus {
    /// The wire form, with the age of the last report relative to `wall_now`.
    pub fn to_wire(&self, wall_now: Timestamp) -> wire::NodeView {
        wire::NodeView {
            node_id: self.record.node_id.clone(),
            dc: self.record.dc,
            address: self.record.address.clone(),
            applied_version: self.applied_version,
            live: self.live,
            registered_at: self.record.registered_at,
            last_seen_ms_ago: self.last_seen.map(|t| {
                u64::try_from((wall_now.as_micros() - t.as_micros()).max(0) / 1000).unwrap_or(0)
            }),
        }
    }
}

/// The registry at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRegistryView {
    /// Every registered node, by id.
    pub nodes: Vec<EdgeNodeStatus>,
    /// The highest version a majority of the registered nodes have applied (never
    /// lower than an earlier answer of this process).
    pub activated_through: u64,
    /// How many nodes make a majority: ⌊registered / 2⌋ + 1.
    pub majority: usize,
}

impl EdgeRegistryView {
    /// The wire form of `GET /edge/v1/nodes`.
    pub fn to_wire(&self, wall_now: Timestamp) -> wire::Registry {
        wire::Registry {
            nodes: self.nodes.iter().map(|n| n.to_wire(wall_now)).collect(),
            activated_through: self.activated_through,
            majority: self.majority,
            registered: self.nodes.len(),
        }
    }
}

/// The version that the ⌊n/2⌋+1-th most advanced node has applied: the highest version
/// a majority has applied (0 with no nodes).
fn majority_version(mut applied: Vec<u64>) -> u64 {
    if applied.is_empty() {
        return 0;
    }
    applied.sort_unstable_by(|a, b| b.cmp(a));
    applied[applied.len() / 2]
}

impl ControlPlane {
    fn edge_runtime(&self) -> MutexGuard<'_, EdgeRuntime> {
        lock(&self.edges)
    }

    /// The registry as it stands at `wall_now` (and the majority version it implies).
    fn edge_view(&self, rt: &mut EdgeRuntime, wall_now: Timestamp) -> EdgeRegistryView {
        let started = *rt.started.get_or_insert(wall_now);
        let live_for = self.config.edges.live_timeout;
        let st = self.read_state();
        let nodes: Vec<EdgeNodeStatus> = st
            .edge_nodes
            .values()
            .map(|r| {
                let seen = rt.seen.get(&r.node_id);
                EdgeNodeStatus {
                    record: r.clone(),
                    applied_version: seen.map_or(0, |s| s.applied),
                    live: seen.is_some_and(|s| s.at.max(started).plus(live_for) > wall_now),
                    last_seen: seen.map(|s| s.at),
                }
            })
            .collect();
        drop(st);
        let w = majority_version(nodes.iter().map(|n| n.applied_version).collect());
        rt.activated_through = rt.activated_through.max(w);
        EdgeRegistryView {
            majority: nodes.len() / 2 + 1,
            nodes,
            activated_through: rt.activated_through,
        }
    }

    /// The edge nodes' registry at `wall_now` (`GET /edge/v1/nodes`).
    pub fn edge_registry(&self, wall_now: Timestamp) -> EdgeRegistryView {
        let mut rt = self.edge_runtime();
        self.edge_view(&mut rt, wall_now)
    }

    write_op! {
        /// A node's registration or heartbeat (`PUT /edge/v1/nodes/{id}`): registers it
        /// (durably) when new or moved, records what it has applied, forgets nodes gone for
        /// longer than [`EdgeRegistryConfig::expiry`], and under [`Activation::Edges`]
        /// activates every change that a majority has now applied (at `clock_now`). Returns
        /// this node and the registry.
        fn report_edge_node / report_edge_node_async(
            &self,
            node_id: &str,
            report: &wire::NodeReport,
            wall_now: Timestamp,
            clock_now: Timestamp,
        ) -> Result<(EdgeNodeStatus, EdgeRegistryView), EdgeNodeError> {
            if !is_node_id(node_id) {
                return Err(EdgeNodeError::InvalidNodeId(node_id.to_owned()));
            }
            if self.config.reference.data_center(report.dc).is_none() {
                return Err(EdgeNodeError::UnknownDc(report.dc.to_string()));
            }
            let record = EdgeNodeRecord {
                node_id: node_id.to_owned(),
                dc: report.dc,
                address: report.address.clone(),
                registered_at: wall_now,
            };
            // Seen before the registration is committed: a concurrent reader that finds the
            // new node registered must also find it live. (A refused commit leaves an entry
            // for an unregistered id, which no view reads.)
            self.edge_runtime().seen.insert(
                node_id.to_owned(),
                Seen {
                    applied: report.applied_version,
                    at: wall_now,
                },
            );
            self.submit_async(|r, _ctx| {
                Ok::<_, EdgeNodeError>(match r.st.edge_nodes.get(node_id) {
                    Some(old) if old.dc == record.dc && old.address == record.address => {
                        (Vec::new(), ())
                    }
                    Some(old) => (
                        vec![Change::EdgeNode(EdgeNodeRecord {
                            registered_at: old.registered_at,
                            ..record.clone()
                        })],
                        (),
                    ),
                    None => (vec![Change::EdgeNode(record.clone())], ()),
                })
            })
            .await?;
            let view = self.expire_and_activate_async(wall_now, clock_now).await?;
            let node = view
                .nodes
                .iter()
                .find(|n| n.record.node_id == node_id)
                .cloned()
                .ok_or_else(|| EdgeNodeError::NotFound(node_id.to_owned()))?;
            Ok((node, view))
        }
    }

    write_op! {
        /// Deregisters a node (`DELETE /edge/v1/nodes/{id}`): it no longer counts toward the
        /// majority (which may activate changes, at `clock_now`).
        fn remove_edge_node / remove_edge_node_async(
            &self,
            node_id: &str,
            wall_now: Timestamp,
            clock_now: Timestamp,
        ) -> Result<EdgeRegistryView, EdgeNodeError> {
            self.submit_async(|r, _ctx| {
                if !r.st.edge_nodes.contains_key(node_id) {
                    return Err(EdgeNodeError::NotFound(node_id.to_owned()));
                }
                Ok((vec![Change::RemoveEdgeNode(node_id.to_owned())], ()))
            })
            .await?;
            self.edge_runtime().seen.remove(node_id);
            Ok(self.expire_and_activate_async(wall_now, clock_now).await?)
        }
    }

    /// Forgets the nodes not heard from for [`EdgeRegistryConfig::expiry`] and, under
    /// [`Activation::Edges`], activates what the majority has applied. The server calls
    /// it on every heartbeat and periodically.
    pub async fn expire_and_activate_async(
        &self,
        wall_now: Timestamp,
        clock_now: Timestamp,
    ) -> Result<EdgeRegistryView, StoreError> {
        let expiry = self.config.edges.expiry;
        let expired: Vec<String> = {
            let mut rt = self.edge_runtime();
            let started = *rt.started.get_or_insert(wall_now);
            let st = self.read_state();
            st.edge_nodes
                .keys()
                .filter(|id| {
                    let last = rt.seen.get(*id).map_or(started, |s| s.at.max(started));
                    last.plus(expiry) <= wall_now
                })
                .cloned()
                .collect()
        };
        if !expired.is_empty() {
            self.submit_async(|r, _ctx| {
                let gone = expired
                    .iter()
                    .filter(|id| r.st.edge_nodes.contains_key(*id))
                    .map(|id| Change::RemoveEdgeNode(id.clone()))
                    .collect();
                Ok::<_, StoreError>((gone, ()))
            })
            .await?;
            let mut rt = self.edge_runtime();
            for id in &expired {
                rt.seen.remove(id);
            }
        }
        let view = {
            let mut rt = self.edge_runtime();
            self.edge_view(&mut rt, wall_now)
        };
        if self.config.activation == Activation::Edges {
            self.activate_through(view.activated_through, clock_now)
                .await?;
        }
        Ok(view)
    }

    /// Settles every change up to `version` that waits for the edge nodes, at `now`
    /// (one commit). Returns how many records it settled.
    async fn activate_through(&self, version: u64, now: Timestamp) -> Result<usize, StoreError> {
        self.settle_awaiting(version, |b| match b.deleted_at {
            Some(d) => (b.active_at, Some(now.max(d))),
            None => (now.max(b.changed_at), None),
        })
        .await
    }

    /// Under [`Activation::Delay`], settles the changes that a run under
    /// [`Activation::Edges`] left waiting for nodes (a data directory switched back to the
    /// delay): each takes effect [`ControlConfig::propagation_delay`] after it was made,
    /// as if it had been made under the delay (one commit; none without such changes).
    /// Returns how many records it settled. The server calls it at start.
    pub async fn settle_awaiting_by_delay(&self) -> Result<usize, StoreError> {
        if self.config.activation != Activation::Delay {
            return Ok(0);
        }
        let delay = self.config.propagation_delay;
        self.settle_awaiting(u64::MAX, |b| match b.deleted_at {
            Some(d) => (b.active_at, Some(d.plus(delay))),
            None => (b.changed_at.plus(delay), None),
        })
        .await
    }

    /// Rewrites every record waiting for the edge nodes up to `version` with the
    /// `(active_at, gone_at)` that `settle` gives it (`gone_at` only for deleted ones).
    async fn settle_awaiting(
        &self,
        version: u64,
        settle: impl Fn(&BindingRecord) -> (Timestamp, Option<Timestamp>),
    ) -> Result<usize, StoreError> {
        self.submit_async(|r, ctx| {
            let changes: Vec<Change> =
                r.st.awaiting_edges
                    .iter()
                    .take_while(|(v, _)| *v <= version)
                    .filter_map(|(_, id)| r.st.bindings.get(id))
                    .map(|b| {
                        let mut nb = b.clone();
                        let (active_at, gone_at) = settle(b);
                        nb.active_at = active_at;
                        if nb.deleted_at.is_some() {
                            nb.gone_at = gone_at;
                        }
                        nb.version = ctx.version;
                        Change::Binding(nb)
                    })
                    .collect();
            let n = changes.len();
            Ok::<_, StoreError>((changes, n))
        })
        .await
    }

    /// Every live binding with the region it is bound to, and every custom region, at
    /// one version (`GET /edge/v1/snapshot`). `epoch` identifies this server process.
    pub fn edge_snapshot(&self, epoch: u64) -> wire::Snapshot {
        let st = self.read_state();
        let mut bindings: Vec<wire::FeedBinding> = st
            .live_by_cidr
            .values()
            .filter_map(|id| st.bindings.get(id))
            .map(|b| wire::FeedBinding {
                binding_id: b.id,
                cidr: b.cidr,
                region_key: b.region.clone(),
            })
            .collect();
        let mut regions: Vec<RegionDefinition> =
            st.regions.values().map(|r| r.definition.clone()).collect();
        let (version, purged_through) = (st.version, st.purged_through);
        drop(st);
        bindings.sort_unstable_by_key(|b| (b.cidr, b.binding_id));
        regions.sort_by(|a, b| a.key.cmp(&b.key));
        wire::Snapshot {
            epoch,
            version,
            purged_through,
            bindings,
            regions,
        }
    }

    /// The bindings changed after `since`, for edge nodes (`GET /edge/v1/changes`).
    /// Refused when `since` is older than the newest purged tombstone, or newer than
    /// this server's version (the reader followed another incarnation of it).
    pub fn edge_changes(&self, since: u64, epoch: u64) -> Result<wire::Changes, FeedError> {
        let version = self.version();
        if since > version {
            return Err(FeedError::Ahead { since, version });
        }
        let set = self.changes_since(since)?;
        Ok(wire::Changes {
            epoch,
            version: set.version,
            changes: set
                .bindings
                .into_iter()
                .map(|b| wire::FeedChange {
                    binding_id: b.id,
                    cidr: b.cidr,
                    region_key: b.region,
                    deleted: b.deleted_at.is_some(),
                    version: b.version,
                })
                .collect(),
        })
    }

    /// Waits until the durable version is above `after`; returns it. For long-polling
    /// readers; wrap it in a timeout.
    pub async fn version_after(&self, after: u64) -> u64 {
        VersionAfter {
            shared: self.pipe.shared(),
            after,
        }
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::majority_version;

    #[test]
    fn majority_is_what_more_than_half_have_applied() {
        assert_eq!(majority_version(vec![]), 0);
        assert_eq!(majority_version(vec![7]), 7);
        assert_eq!(majority_version(vec![7, 3]), 3);
        assert_eq!(majority_version(vec![9, 7, 3]), 7);
        assert_eq!(majority_version(vec![9, 7, 3, 1]), 3);
        assert_eq!(majority_version(vec![1, 9, 3, 7, 5]), 5);
        // Brute force against the definition: the largest v that more than half reach.
        for n in 1..7u64 {
            for seed in 0..50u64 {
                let v: Vec<u64> = (0..n).map(|i| (i * 7 + seed * 13) % 11).collect();
                let best = (0..=11)
                    .filter(|c| v.iter().filter(|x| *x >= c).count() * 2 > v.len())
                    .max()
                    .unwrap();
                assert_eq!(majority_version(v.clone()), best, "{v:?}");
            }
        }
    }
}
