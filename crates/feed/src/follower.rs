//! The reader's side of the feed: list, then watch from the next version; re-list when
//! told. Sans-IO: the caller performs the request that [`Follower::next_request`] names
//! and hands the answer back.

use crate::wire::{Changes, FeedBinding, Snapshot};
use inregion_model::{BindingId, Cidr, RegionDefinition, RegionKey};
use std::collections::BTreeMap;

/// What the follower needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRequest {
    /// Read everything (`GET /edge/v1/snapshot`): at start, and after a re-list order.
    Snapshot,
    /// Read what changed after `since` (`GET /edge/v1/changes?since=`).
    Changes {
        /// The follower's version.
        since: u64,
    },
}

/// Why a change set was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The answer is for another `since` than the follower's version (a late answer to
    /// an earlier request): applying it could repeat or skip changes. Ignore it.
    #[error("answer for since={since} but the follower is at {at:?}")]
    NotAtSince {
        /// The `since` the answer was requested with.
        since: u64,
        /// The follower's version (`None`: it holds no snapshot).
        at: Option<u64>,
    },
    /// The source was restarted (another epoch) or its version is below `since`: it was
    /// reset or replaced. The follower now needs a snapshot.
    #[error(
        "the source was replaced (at version {version}, follower at {since}): re-read everything"
    )]
    SourceWentBack {
        /// The follower's version.
        since: u64,
        /// The source's version.
        version: u64,
    },
}

/// The bindings a reader holds, at one version of the source.
#[derive(Debug, Clone, Default)]
pub struct Follower {
    version: Option<u64>,
    epoch: u64,
    bindings: BTreeMap<BindingId, (Cidr, RegionKey)>,
    regions: Vec<RegionDefinition>,
    changes_applied: u64,
    relists: u64,
}

impl Follower {
    /// A follower that holds nothing yet (its first request is a snapshot).
    pub fn new() -> Self {
        Self::default()
    }

    /// The version held; `None` before the first snapshot and after a re-list order.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// What to ask the source next.
    pub fn next_request(&self) -> NextRequest {
        match self.version {
            None => NextRequest::Snapshot,
            Some(since) => NextRequest::Changes { since },
        }
    }

    /// Replaces everything with `snapshot`. Returns whether the bindings or regions
    /// held differ from before (a periodic re-read that returns `true` repaired a
    /// difference).
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let bindings: BTreeMap<_, _> = snapshot
            .bindings
            .into_iter()
            .map(|b| (b.binding_id, (b.cidr, b.region_key)))
            .collect();
        let differs = bindings != self.bindings || snapshot.regions != self.regions;
        if self.version.is_some() || self.relists > 0 || self.changes_applied > 0 {
            self.relists += 1;
        }
        self.bindings = bindings;
        self.regions = snapshot.regions;
        self.version = Some(snapshot.version);
        self.epoch = snapshot.epoch;
        differs
    }

    /// Applies the answer to `changes?since=since`. Returns how many binding changes it
    /// carried (0: only the version moved).
    pub fn apply_changes(&mut self, since: u64, changes: Changes) -> Result<usize, ApplyError> {
        if self.version != Some(since) {
            return Err(ApplyError::NotAtSince {
                since,
                at: self.version,
            });
        }
        if changes.epoch != self.epoch || changes.version < since {
            self.version = None;
            return Err(ApplyError::SourceWentBack {
                since,
                version: changes.version,
            });
        }
        let n = changes.changes.len();
        for c in changes.changes {
            if c.deleted {
                self.bindings.remove(&c.binding_id);
            } else {
                self.bindings.insert(c.binding_id, (c.cidr, c.region_key));
            }
        }
        self.changes_applied += n as u64;
        self.version = Some(changes.version);
        Ok(n)
    }

    /// The source said this follower is too far behind (410): the next request is a
    /// snapshot. What is held stays readable until then.
    pub fn must_relist(&mut self) {
        self.version = None;
    }

    /// Whether `snapshot` holds exactly the bindings and regions held now (for a
    /// periodic comparison without replacing anything).
    pub fn matches(&self, snapshot: &Snapshot) -> bool {
        snapshot.bindings.len() == self.bindings.len()
            && snapshot.regions == self.regions
            && snapshot.bindings.iter().all(|b| {
                self.bindings
                    .get(&b.binding_id)
                    .is_some_and(|(c, r)| *c == b.cidr && *r == b.region_key)
            })
    }

    /// The bindings held, by binding id.
    pub fn bindings(&self) -> impl ExactSizeIterator<Item = FeedBinding> + '_ {
        self.bindings.iter().map(|(id, (cidr, key))| FeedBinding {
            binding_id: *id,
            cidr: *cidr,
            region_key: key.clone(),
        })
    }

    /// How many bindings are held.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The custom regions of the last snapshot.
    pub fn regions(&self) -> &[RegionDefinition] {
        &self.regions
    }

    /// Binding changes applied from change sets since creation.
    pub fn changes_applied(&self) -> u64 {
        self.changes_applied
    }

    /// Snapshots applied after the first one (re-lists and periodic re-reads).
    pub fn relists(&self) -> u64 {
        self.relists
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FeedChange;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The plain model of a source: every binding's latest record, the version of each
    /// commit, purges forgetting deleted records. `changes(since)` is what `serve`
    /// answers; the live set is what a follower must converge to.
    #[derive(Default, Clone)]
    struct Source {
        epoch: u64,
        version: u64,
        purged_through: u64,
        records: BTreeMap<u8, (u8, bool, u64)>, // id → (region, deleted, version)
    }

    fn id(i: u8) -> BindingId {
        BindingId::parse(&format!("00000000-0000-4000-8000-0000000000{i:02x}")).unwrap()
    }

    fn cidr(i: u8) -> Cidr {
        Cidr::parse_strict(&format!("10.{i}.0.0/16")).unwrap()
    }

    fn key(r: u8) -> RegionKey {
        RegionKey::parse(["eu", "us", "jp"][usize::from(r % 3)]).unwrap()
    }

    impl Source {
        fn commit(&mut self, op: &Op) {
            self.version += 1;
            match *op {
                Op::Put(i, r) => {
                    self.records.insert(i, (r, false, self.version));
                }
                Op::Delete(i) => {
                    if let Some(rec) = self.records.get_mut(&i) {
                        if !rec.1 {
                            *rec = (rec.0, true, self.version);
                        }
                    }
                }
                Op::Other => {}
                Op::Purge => {
                    let gone: Vec<u8> = self
                        .records
                        .iter()
                        .filter(|(_, r)| r.1)
                        .map(|(i, _)| *i)
                        .collect();
                    for i in gone {
                        let (_, _, v) = self.records.remove(&i).unwrap();
                        self.purged_through = self.purged_through.max(v);
                    }
                }
            }
        }

        fn snapshot(&self) -> Snapshot {
            Snapshot {
                epoch: self.epoch,
                version: self.version,
                purged_through: self.purged_through,
                bindings: self
                    .records
                    .iter()
                    .filter(|(_, r)| !r.1)
                    .map(|(i, r)| FeedBinding {
                        binding_id: id(*i),
                        cidr: cidr(*i),
                        region_key: key(r.0),
                    })
                    .collect(),
                regions: Vec::new(),
            }
        }

        /// `None`: 410 too far behind.
        fn changes(&self, since: u64) -> Option<Changes> {
            if since < self.purged_through || since > self.version {
                return None;
            }
            let mut changes: Vec<FeedChange> = self
                .records
                .iter()
                .filter(|(_, r)| r.2 > since)
                .map(|(i, r)| FeedChange {
                    binding_id: id(*i),
                    cidr: cidr(*i),
                    region_key: key(r.0),
                    deleted: r.1,
                    version: r.2,
                })
                .collect();
            changes.sort_by_key(|c| c.version);
            Some(Changes {
                epoch: self.epoch,
                version: self.version,
                changes,
            })
        }

        fn live(&self) -> BTreeMap<BindingId, (Cidr, RegionKey)> {
            self.records
                .iter()
                .filter(|(_, r)| !r.1)
                .map(|(i, r)| (id(*i), (cidr(*i), key(r.0))))
                .collect()
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        Other,
        Purge,
    }

    #[derive(Debug, Clone)]
    enum Step {
        Commit(Op),
        /// The follower polls once.
        Poll,
        /// A late duplicate of the answer to an earlier `since`.
        Replay(u8),
        /// The source is replaced by an empty one (a reset memory server).
        Reset,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..12, 0u8..3).prop_map(|(i, r)| Step::Commit(Op::Put(i, r))),
            2 => (0u8..12).prop_map(|i| Step::Commit(Op::Delete(i))),
            1 => Just(Step::Commit(Op::Other)),
            1 => Just(Step::Commit(Op::Purge)),
            4 => Just(Step::Poll),
            1 => (0u8..8).prop_map(Step::Replay),
            1 => Just(Step::Reset),
        ]
    }

    fn poll(f: &mut Follower, src: &Source) {
        match f.next_request() {
            NextRequest::Snapshot => {
                f.apply_snapshot(src.snapshot());
            }
            NextRequest::Changes { since } => match src.changes(since) {
                Some(c) => {
                    let _ = f.apply_changes(since, c);
                }
                None => f.must_relist(),
            },
        }
    }

    proptest! {
        /// Whatever the interleaving of commits, purges, resets, polls and late
        /// duplicate answers, a follower that polls until it is current holds exactly
        /// the source's live bindings, and never moves its version backwards without
        /// a snapshot.
        #[test]
        fn converges_to_the_source(steps in proptest::collection::vec(step(), 1..80)) {
            let mut src = Source::default();
            let mut f = Follower::new();
            let mut answered: Vec<(u64, Changes)> = Vec::new();
            for s in &steps {
                match s {
                    Step::Commit(op) => src.commit(op),
                    Step::Poll => {
                        let before = f.version();
                        if let NextRequest::Changes { since } = f.next_request() {
                            if let Some(c) = src.changes(since) {
                                answered.push((since, c));
                            }
                        }
                        poll(&mut f, &src);
                        if let (Some(a), Some(b)) = (before, f.version()) {
                            prop_assert!(b >= a || f.relists() > 0);
                        }
                    }
                    Step::Replay(k) => {
                        if let Some((since, c)) = answered.get(usize::from(*k)).cloned() {
                            let held = f.bindings().collect::<Vec<_>>();
                            if f.version() != Some(since) {
                                prop_assert!(f.apply_changes(since, c).is_err());
                                prop_assert_eq!(held, f.bindings().collect::<Vec<_>>());
                            }
                        }
                    }
                    Step::Reset => {
                        src = Source {
                            epoch: src.epoch + 1,
                            ..Source::default()
                        }
                    }
                }
            }
            for _ in 0..3 {
                poll(&mut f, &src);
            }
            prop_assert_eq!(f.version(), Some(src.version));
            let held: BTreeMap<_, _> =
                f.bindings().map(|b| (b.binding_id, (b.cidr, b.region_key))).collect();
            prop_assert_eq!(held, src.live());
            prop_assert!(f.matches(&src.snapshot()));
        }
    }

    #[test]
    fn a_snapshot_reports_whether_it_repaired_anything() {
        let mut src = Source::default();
        src.commit(&Op::Put(1, 0));
        let mut f = Follower::new();
        assert!(f.apply_snapshot(src.snapshot()));
        assert!(!f.apply_snapshot(src.snapshot()));
        assert_eq!(f.relists(), 1);
        src.commit(&Op::Put(1, 1));
        assert!(!f.matches(&src.snapshot()));
        assert!(f.apply_snapshot(src.snapshot()));
    }
}
