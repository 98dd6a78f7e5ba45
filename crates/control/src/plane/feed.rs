//! The read side for the data plane and in-process readers: the version, the bindings
//! in force at a time, the change feed and its tombstone purge, and dumps of the
//! durable state. One module for everything that reads state without a principal.

use super::*;

impl ControlPlane {
    /// The global version: bumped by every committed change.
    pub fn version(&self) -> u64 {
        self.read_state().version
    }

    /// The bindings in force at time `at` in the current version (§10): for each binding,
    /// the region the data plane applies at `at`. A fresh binding is not in force until
    /// active; a re-pointed one keeps its previous region until the change has
    /// propagated; a deleted one keeps what was in force at its deletion until the
    /// deletion has propagated. Sorted by CIDR, then id.
    pub fn bindings_in_force(&self, at: Timestamp) -> BindingSnapshot {
        let st = self.read_state();
        let mut entries: Vec<InForce> = st
            .bindings
            .values()
            .filter_map(|b| {
                b.region_in_force(at).map(|k| InForce {
                    binding_id: b.id,
                    cidr: b.cidr,
                    region_key: k.clone(),
                })
            })
            .collect();
        let version = st.version;
        drop(st);
        entries.sort_unstable_by_key(|e| (e.cidr, e.binding_id));
        BindingSnapshot {
            version,
            at,
            entries,
        }
    }

    /// The earliest time after `t` at which [`Self::bindings_in_force`] can change
    /// without a new commit (a propagation completing), if any.
    pub fn next_transition_after(&self, t: Timestamp) -> Option<Timestamp> {
        let st = self.read_state();
        st.bindings
            .values()
            .flat_map(|b| [Some(b.active_at), b.gone_at])
            .flatten()
            .filter(|x| *x > t && *x != AWAITING_EDGES)
            .min()
    }

    /// Bindings whose record changed after `version` (latest state each; tombstones
    /// included), and the current version.
    ///
    /// A reader whose `version` is older than the newest purged tombstone
    /// ([`Self::purge_tombstones`]) gets [`FeedError::TooFarBehind`]: a diff would miss
    /// that deletion, so it must re-read everything ([`Self::bindings_in_force`]) and
    /// follow on from that snapshot's version.
    pub fn changes_since(&self, version: u64) -> Result<ChangeSet, FeedError> {
        let st = self.read_state();
        if version < st.purged_through {
            return Err(FeedError::TooFarBehind {
                since: version,
                purged_through: st.purged_through,
            });
        }
        let bindings = st
            .by_version
            .range((
                Bound::Excluded((version, BindingId::from_uuid(uuid::Uuid::max()))),
                Bound::Unbounded,
            ))
            .filter_map(|(_, id)| st.bindings.get(id).cloned())
            .collect();
        Ok(ChangeSet {
            version: st.version,
            bindings,
        })
    }

    /// Forgets the deleted bindings whose deletion propagated (`gone_at`) at least
    /// [`ControlConfig::tombstone_retention`] before `now`, in memory and in the store,
    /// in one commit. Returns how many were purged. The server calls it periodically;
    /// without it tombstones would accumulate with every delete.
    pub fn purge_tombstones(&self, now: Timestamp) -> Result<usize, StoreError> {
        block_on(self.purge_tombstones_async(now))
    }

    /// [`Self::purge_tombstones`] for async callers.
    pub async fn purge_tombstones_async(&self, now: Timestamp) -> Result<usize, StoreError> {
        let retention = self.config.tombstone_retention;
        self.submit_async(|r, _ctx| {
            let changes: Vec<Change> =
                r.st.by_gone_at
                    .iter()
                    .take_while(|(gone, _)| gone.plus(retention) <= now)
                    .map(|(_, id)| Change::PurgeBinding(*id))
                    .collect();
            let n = changes.len();
            Ok::<_, StoreError>((changes, n))
        })
        .await
    }

    /// The highest version of a purged binding (0: none): [`Self::changes_since`] from a
    /// version below it is refused.
    pub fn purged_through(&self) -> u64 {
        self.read_state().purged_through
    }

    /// Every stored binding record (live, and deleted ones not yet purged), by
    /// ascending version: for in-process readers that want all of them.
    pub fn binding_records(&self) -> Vec<BindingRecord> {
        let st = self.read_state();
        st.by_version
            .iter()
            .filter_map(|(_, id)| st.bindings.get(id).cloned())
            .collect()
    }

    /// Binding counts by lifecycle state at `at` (metrics).
    pub fn binding_counts(&self, at: Timestamp) -> BindingCounts {
        let st = self.read_state();
        let mut c = BindingCounts::default();
        for b in st.bindings.values() {
            c.add(b.state_at(at));
        }
        c
    }

    /// One binding's stored record (live or tombstone), for the simulator and the admin
    /// API.
    pub fn binding_record(&self, id: &BindingId) -> Option<BindingRecord> {
        self.read_state().bindings.get(id).cloned()
    }

    /// A region's definition by key: managed, or any account's custom region (keys are
    /// globally unique). What the data plane needs to resolve members.
    pub fn region_definition(&self, key: &RegionKey) -> Option<RegionDefinition> {
        if let Some(d) = self.config.reference.region(key) {
            return Some(d.clone());
        }
        let st = self.read_state();
        st.region_by_key
            .get(key)
            .and_then(|id| st.regions.get(id))
            .map(|r| r.definition.clone())
    }

    /// Every region definition: managed ones, then custom ones by key.
    pub fn region_definitions(&self) -> Vec<RegionDefinition> {
        let mut v: Vec<RegionDefinition> = self.config.reference.regions().to_vec();
        let st = self.read_state();
        let mut custom: Vec<RegionDefinition> =
            st.regions.values().map(|r| r.definition.clone()).collect();
        custom.sort_by(|a, b| a.key.cmp(&b.key));
        v.extend(custom);
        v
    }

    /// Every durable record (deterministic order) and the version: two control planes
    /// hold the same state iff their dumps are equal.
    pub fn dump(&self) -> Loaded {
        let st = self.read_state();
        Loaded {
            version: st.version,
            purged_through: st.purged_through,
            records: st.dump(),
        }
    }

    /// The ids of the accounts in the store (sorted).
    pub fn account_ids(&self) -> Vec<AccountId> {
        let st = self.read_state();
        let s: BTreeSet<AccountId> = st.accounts.keys().cloned().collect();
        s.into_iter().collect()
    }
}
