//! The etcd store: the control plane's records in an etcd cluster, shared by any number
//! of `inregion serve` replicas (`--store etcd://HOST:PORT[,HOST:PORT...]`).
//!
//! - One key per record (`layout.rs`); one etcd transaction per group-commit batch. Every
//!   transaction is conditional on the `meta` key's `mod_revision` being the one this
//!   replica's state was built from, and rewrites `meta`: commits from all replicas are
//!   serialized by etcd itself, and a rule only ever commits what it validated against
//!   the newest state. The uniqueness rules (one live binding per prefix and CIDR, one
//!   prefix per CIDR, token secrets, region keys) therefore hold across replicas through
//!   the transaction's compare, not through a lock in one process.
//! - A replica that lost the race gets [`StoreError::Conflict`]: the commit pipeline
//!   catches up from the watch and runs the rule again (a duplicate create then answers
//!   409, as on one server).
//! - A transaction whose answer was lost ([`StoreError::Indeterminate`]) is resolved from
//!   the watch: the first `meta` written after the base revision carries the nonce of the
//!   transaction that won it. So is one that etcd answered "database space exceeded":
//!   etcd applies the transaction that crosses its space quota and *then* answers that
//!   error (its quota applier), so the answer does not say whether it happened; the
//!   writes after it are refused until an operator compacts, defragments and disarms
//!   the NOSPACE alarm, and answer 503 saying so.
//! - Each replica follows the prefix (`follow.rs`): list, then watch from the next
//!   revision; on a compacted revision list again; after a dropped stream resume from
//!   the last revision seen; and re-read everything periodically, repairing any
//!   difference (etcd 3.4 has known watch bugs).
//! - Token secrets are hashed with a key stored in etcd (`token-key`), so that every
//!   replica verifies every token.
//!
//! Files: this one (open, load, commit), `client.rs` (the etcd client, blocking calls),
//! `layout.rs` (keys and values), `follow.rs` (the watch and the periodic re-read).

mod client;
mod follow;
mod layout;

use super::{Loaded, Store};
use crate::auth::TokenKey;
use crate::error::StoreError;
use crate::state::{Change, Commit};
use client::{Client, ClientError, ModRevisionIs, Op};
use follow::Follower;
pub(crate) use follow::Sink;
use layout::{KeyKind, Layout, Meta, FORMAT};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the etcd store lives and how it behaves (`inregion serve --store etcd://...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client endpoints, `host:port`, tried in order.
    pub endpoints: Vec<String>,
    /// The key prefix of this emulator's records (default `/inregion/`), so several
    /// emulators can share a cluster.
    pub prefix: String,
    /// A request to etcd that takes longer fails (default 5 s).
    pub request_timeout: Duration,
    /// How often a replica re-reads everything and repairs what its watch missed
    /// (default 60 s).
    pub resync_interval: Duration,
    /// The most operations etcd accepts in one transaction (its `--max-txn-ops`,
    /// default 128): a group commit takes no more queued writes than fit. A single write
    /// that needs more (a bulk create, a reset or restore of a large world) is refused
    /// by etcd unless it was started with a larger `--max-txn-ops`.
    pub max_txn_ops: usize,
}

/// The default `--etcd-prefix`.
pub const DEFAULT_ETCD_PREFIX: &str = "/inregion/";

/// Why `--store etcd://...` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EtcdUrlError(String);

impl EtcdConfig {
    /// Parses `etcd://HOST:PORT[,HOST:PORT...]` (the scheme may be left out), with the
    /// default prefix and timings.
    pub fn parse(url: &str) -> Result<Self, EtcdUrlError> {
        let rest = url.strip_prefix("etcd://").unwrap_or(url);
        let rest = rest.trim_end_matches('/');
        let mut endpoints = Vec::new();
        for e in rest.split(',') {
            let e = e.trim();
            let ok = e
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(EtcdUrlError(format!(
                    "{e:?} is not HOST:PORT (expected etcd://HOST:PORT[,HOST:PORT...], \
                     e.g. etcd://127.0.0.1:2379)"
                )));
            }
            endpoints.push(e.to_owned());
        }
        Ok(Self {
            endpoints,
            prefix: DEFAULT_ETCD_PREFIX.into(),
            request_timeout: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
            max_txn_ops: 128,
        })
    }

    /// The prefix, checked: it must start and end with `/`.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, EtcdUrlError> {
        if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.len() < 2 {
            return Err(EtcdUrlError(format!(
                "--etcd-prefix {prefix:?} must start and end with '/' (e.g. /inregion/)"
            )));
        }
        self.prefix = prefix.into();
        Ok(self)
    }
}

/// Counters and gauges of a replica, for `/metrics` ([`crate::ControlPlane::replica_stats`]).
#[derive(Debug, Default)]
pub(crate) struct EtcdStats {
    /// The newest `meta` revision seen from etcd (watch, list or own commit).
    pub(crate) latest_seen: AtomicU64,
    /// Watch streams re-opened after a drop, and re-lists.
    pub(crate) reconnects: AtomicU64,
    /// Transactions that lost the race to another replica.
    pub(crate) conflicts: AtomicU64,
    /// Differences repaired by the periodic re-read.
    pub(crate) repairs: AtomicU64,
    /// When etcd last answered anything.
    pub(crate) last_contact: Mutex<Option<Instant>>,
}

impl EtcdStats {
    pub(crate) fn contact(&self) {
        *crate::pipeline::lock(&self.last_contact) = Some(Instant::now());
    }
    pub(crate) fn seen(&self, revision: u64) {
        self.latest_seen.fetch_max(revision, Ordering::Relaxed);
    }
}

impl From<ClientError> for StoreError {
    fn from(e: ClientError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The etcd store. See the module docs.
pub struct EtcdStore {
    client: Arc<Client>,
    layout: Layout,
    config: EtcdConfig,
    token_key: TokenKey,
    /// The `meta` revision this replica's state is at: the condition of the next commit.
    position: u64,
    /// The generation the records live under at `position`.
    generation: u64,
    /// The purge horizon at `position`.
    purged_through: u64,
    /// The revision of the last [`Store::load`]: the follower watches from the next.
    listed_at: u64,
    stats: Arc<EtcdStats>,
    /// This replica's id (random per process): names its `want/` key.
    replica: u64,
    /// Wakes the thread that writes `want/` ([`Self::ask_turn`]); the thread ends when
    /// the store is dropped.
    asker: std::sync::mpsc::SyncSender<()>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.config.endpoints)
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

/// Everything under the prefix, decoded.
pub(crate) struct Listing {
    pub(crate) loaded: Loaded,
    /// `meta`'s revision (0: nothing written yet).
    pub(crate) position: u64,
    /// The revision the listing was read at (a watch resumes after it).
    pub(crate) revision: u64,
    pub(crate) generation: u64,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt {
        path: "etcd".into(),
        what,
    }
}

/// Reads and decodes everything under the layout's prefix.
pub(crate) fn list(client: &Client, layout: &Layout) -> Result<Listing, StoreError> {
    let range = client.range(layout.prefix(), false)?;
    let mut meta = Meta::default();
    let mut position = 0;
    for kv in &range.kvs {
        if layout.kind(&kv.key) == KeyKind::Meta {
            meta = serde_json::from_slice(&kv.value)
                .map_err(|e| corrupt(format!("{}meta: {e}", show(layout.prefix()))))?;
            position = kv.mod_revision;
        }
    }
    if meta.format > FORMAT {
        return Err(corrupt(format!(
            "{}meta: layout format {} is newer than this program supports ({FORMAT}); \
             upgrade inregion or use another --etcd-prefix",
            show(layout.prefix()),
            meta.format
        )));
    }
    let mut records = Vec::new();
    for kv in &range.kvs {
        if let Some(c) = layout.decode_put(kv, meta.generation).map_err(corrupt)? {
            records.push(c);
        }
    }
    Ok(Listing {
        loaded: Loaded {
            version: meta.version,
            purged_through: meta.purged_through,
            records,
        },
        position,
        revision: range.revision,
        generation: meta.generation,
    })
}

/// The wall clock in Unix seconds, as `want/` values carry it.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes replica `replica`'s `want/` key: it asks for a turn, now.
fn ask_op(layout: &Layout, replica: u64) -> Op {
    Op::Put(layout.want(replica), unix_now().to_string().into_bytes())
}

/// `want/` keys of replicas that have not asked for an hour (each process has its own
/// key, so restarts would leave them behind): deleted, unless rewritten meanwhile. Best
/// effort: a failure is only logged.
fn prune_wants(client: &Client, layout: &Layout) {
    const STALE_SECS: u64 = 3600;
    let now = unix_now();
    let r = match client.range(&layout.wants(), false) {
        Ok(r) => r,
        Err(e) => return tracing::debug!(error = %e, "etcd: listing want/ keys failed"),
    };
    for kv in r.kvs {
        let at = std::str::from_utf8(&kv.value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if at + STALE_SECS < now {
            let unchanged = [ModRevisionIs {
                key: kv.key.clone(),
                revision: kv.mod_revision,
            }];
            if let Err(e) = client.txn(&unchanged, &[Op::Delete(kv.key)], &[]) {
                tracing::debug!(error = %e, "etcd: deleting a stale want/ key failed");
            }
        }
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl EtcdStore {
    /// Connects to the cluster and makes sure the prefix has its token key (created by
    /// the first replica ever to start, read by the others). Fails when no endpoint
    /// answers.
    pub fn open(config: EtcdConfig) -> Result<Self, StoreError> {
        let client = Arc::new(
            Client::new(config.endpoints.clone(), config.request_timeout)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
        );
        let layout = Layout::new(&config.prefix);
        let key_name = layout.token_key();
        // Create-if-absent: of replicas racing at their first start, one key wins.
        let fresh = TokenKey::random();
        let out = client.txn(
            &[ModRevisionIs {
                key: key_name.clone(),
                revision: 0,
            }],
            &[Op::Put(key_name.clone(), fresh.to_hex().into_bytes())],
            &[Op::Get(key_name)],
        )?;
        let token_key = if out.succeeded {
            fresh
        } else {
            out.reads
                .into_iter()
                .next()
                .flatten()
                .and_then(|kv| {
                    std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(TokenKey::from_hex)
                })
                .ok_or_else(|| corrupt("token-key is not 64 hex digits".into()))?
        };
        prune_wants(&client, &layout);
        let stats = Arc::new(EtcdStats::default());
        stats.contact();
        let replica = rand::random();
        let asker = {
            // One request in flight and one waiting at most: asks that arrive meanwhile
            // are the same ask.
            let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
            let (client, layout) = (client.clone(), layout.clone());
            std::thread::Builder::new()
                .name("inregion-etcd-ask".into())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        if let Err(e) = client.txn(&[], &[ask_op(&layout, replica)], &[]) {
                            tracing::debug!(error = %e, "etcd: asking for a turn failed");
                        }
                    }
                })
                .map_err(|e| StoreError::internal(format!("cannot start a thread: {e}")))?;
            tx
        };
        Ok(Self {
            client,
            layout,
            config,
            token_key,
            position: 0,
            generation: 0,
            purged_through: 0,
            listed_at: 0,
            stats,
            replica,
            asker,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// Starts following the prefix from what the last [`Store::load`] read: the watch
    /// and the periodic re-read, delivering to `sink`.
    pub(crate) fn follow(&self, sink: follow::Sink) -> Result<(), StoreError> {
        self.follower().start(self.listed_at, self.generation, sink)
    }

    fn follower(&self) -> Follower {
        Follower {
            client: self.client.clone(),
            layout: self.layout.clone(),
            stats: self.stats.clone(),
            resync_interval: self.config.resync_interval,
            replica: self.replica,
        }
    }

    pub(crate) fn stats(&self) -> Arc<EtcdStats> {
        self.stats.clone()
    }

    /// The newest `meta` revision in etcd (a linearizable read): a read that waits until
    /// the replica has applied it sees every write acknowledged before it started.
    pub(crate) fn latest_position(client: &Client, layout: &Layout) -> Result<u64, StoreError> {
        let r = client.range(&layout.meta(), true)?;
        Ok(r.kvs.first().map_or(0, |kv| kv.mod_revision))
    }

    /// `meta` as etcd has it now (a linearizable read): its revision (0: absent) and
    /// the nonce of the transaction that wrote it last.
    ///
    /// Settles a transaction whose answer was lost: once a linearizable read succeeds,
    /// etcd has a leader that committed an entry of its own term, so a transaction of an
    /// earlier leader that is not visible now never will be. If `meta` is still at the
    /// transaction's base revision, the transaction did not happen.
    pub(crate) fn read_meta(&self) -> Result<(u64, u64), StoreError> {
        let r = self.client.range(&self.layout.meta(), true)?;
        self.stats.contact();
        match r.kvs.first() {
            None => Ok((0, 0)),
            Some(kv) => {
                let meta: Meta = serde_json::from_slice(&kv.value)
                    .map_err(|e| corrupt(format!("{}meta: {e}", show(self.layout.prefix()))))?;
                Ok((kv.mod_revision, meta.nonce))
            }
        }
    }

    /// Asks the other replicas for a turn (writes `want/` on a thread of its own, so the
    /// committer does not wait for it): see the pipeline's `run`.
    pub(crate) fn ask_turn(&self) {
        let _ = self.asker.try_send(());
    }

    pub(crate) fn client(&self) -> (Arc<Client>, Layout) {
        (self.client.clone(), self.layout.clone())
    }
}

/// A remote change of the shared state, as the commit pipeline applies it.
#[derive(Debug)]
pub(crate) enum Remote {
    /// One transaction of any replica (this one's too, which the pipeline skips), in
    /// revision order.
    Batch {
        /// Its changes, as one commit at the version `meta` names.
        commit: Commit,
        purged_through: u64,
        position: u64,
        generation: u64,
        nonce: u64,
    },
    /// Everything, re-read at `position` (after a compaction, or periodically).
    Reload {
        loaded: Loaded,
        position: u64,
        generation: u64,
    },
    /// Another replica lost a commit race to this one and asks for a turn: the next
    /// local commit waits (briefly) until some other replica has committed.
    Want,
}

impl Store for EtcdStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let l = list(&self.client, &self.layout)?;
        self.position = l.position;
        self.generation = l.generation;
        self.purged_through = l.loaded.purged_through;
        self.listed_at = l.revision;
        self.stats.seen(l.position);
        self.stats.contact();
        let mut loaded = l.loaded;
        // The token key is the store's, not a record.
        loaded
            .records
            .retain(|c| !matches!(c, Change::AdoptTokenKey(k) if *k == self.token_key));
        Ok(loaded)
    }

    /// The commit pipeline calls `EtcdStore::commit_shared` with the purge horizon
    /// after the batch; this keeps the last one known.
    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError> {
        self.commit_shared(commits, self.purged_through)
    }

    fn token_key(&self) -> TokenKey {
        self.token_key.clone()
    }

    fn kind(&self) -> &'static str {
        "etcd"
    }

    fn as_etcd(&mut self) -> Option<&mut EtcdStore> {
        Some(self)
    }

    fn max_batch_changes(&self) -> Option<usize> {
        // One operation per change, plus `meta` and a cleared generation's range.
        Some(self.config.max_txn_ops.saturating_sub(2).max(1))
    }
}

impl EtcdStore {
    /// One transaction for the batch, conditional on `meta` being at this replica's
    /// position. `purged_through`: the state's purge horizon after the batch (the
    /// pipeline computes it from its state).
    pub(crate) fn commit_shared(
        &mut self,
        commits: &[&Commit],
        purged_through: u64,
    ) -> Result<(), StoreError> {
        let Some(last) = commits.last() else {
            return Ok(());
        };
        let (mut ops, generation) = self
            .layout
            .batch_ops(commits, self.generation)
            .map_err(StoreError::internal)?;
        let nonce = rand::random::<u64>();
        let meta = Meta {
            format: FORMAT,
            version: last.version,
            purged_through,
            generation,
            nonce,
        };
        let meta_key = self.layout.meta();
        ops.push(Op::Put(
            meta_key.clone(),
            serde_json::to_vec(&meta).map_err(StoreError::internal)?,
        ));
        // Lost the race: say so (`want/`, which the winner's watch sees and answers by
        // pausing) and read where `meta` is now, in the same round trip.
        let failure = [
            ask_op(&self.layout, self.replica),
            Op::Get(meta_key.clone()),
        ];
        let out = self.client.txn(
            &[ModRevisionIs {
                key: meta_key.clone(),
                revision: self.position,
            }],
            &ops,
            &failure,
        );
        let out = match out {
            Ok(o) => o,
            Err(ClientError::TooManyOperations(_)) => {
                return Err(StoreError::internal(format!(
                    "this write needs {} operations in one etcd transaction, more than etcd \
                     accepts: start etcd with a larger --max-txn-ops (and serve with the same \
                     --etcd-max-txn-ops)",
                    ops.len() + 1
                )))
            }
            Err(e) if e.certainly_not_applied() => return Err(e.into()),
            Err(e) => {
                return Err(StoreError::Indeterminate {
                    base: self.position,
                    nonce,
                    what: e.to_string(),
                    // Out of space, etcd refuses every write after this one: say so
                    // once this one is settled, rather than trying again.
                    retry: !matches!(e, ClientError::NoSpace(_)),
                });
            }
        };
        self.stats.contact();
        if out.succeeded {
            self.position = out.revision;
            self.generation = generation;
            self.purged_through = purged_through;
            self.stats.seen(out.revision);
            Ok(())
        } else {
            self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
            let now = out
                .reads
                .into_iter()
                .next()
                .flatten()
                .map_or(0, |kv| kv.mod_revision);
            self.stats.seen(now);
            Err(StoreError::Conflict { position: now })
        }
    }

    /// The pipeline applied a remote transaction or a re-read: later commits build on it.
    pub(crate) fn applied(&mut self, position: u64, generation: u64, purged_through: u64) {
        self.position = position;
        self.generation = generation;
        self.purged_through = purged_through;
    }

    /// The revision the next commit is conditional on.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// The generation the records live under.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn stats_ref(&self) -> &EtcdStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_clear_errors() {
        let c = EtcdConfig::parse("etcd://127.0.0.1:2379,10.0.0.2:22379").unwrap();
        assert_eq!(c.endpoints, ["127.0.0.1:2379", "10.0.0.2:22379"]);
        assert_eq!(c.prefix, DEFAULT_ETCD_PREFIX);
        assert!(EtcdConfig::parse("127.0.0.1:2379").is_ok());
        for bad in [
            "etcd://",
            "etcd://host",
            "etcd://host:0",
            "etcd://:2379",
            "etcd://h:70000",
        ] {
            let e = EtcdConfig::parse(bad).unwrap_err();
            assert!(e.to_string().contains("HOST:PORT"), "{bad}: {e}");
        }
        assert!(c.clone().with_prefix("/a/b/").is_ok());
        assert!(c.clone().with_prefix("a/").is_err());
        assert!(c.with_prefix("/a").is_err());
    }
}
