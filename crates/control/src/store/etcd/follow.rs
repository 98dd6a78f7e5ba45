//! Following the prefix: what keeps a replica's in-memory state current with what other
//! replicas commit (the Kubernetes informer's pattern).
//!
//! - **Watch thread**: watches the prefix from the revision after the last listing; each
//!   transaction (events sharing a revision, with the `meta` key among them) becomes one
//!   [`Remote::Batch`]. A dropped stream (a member killed, a connection reset) resumes
//!   from the revision after the last one seen, on the next endpoint; a compacted
//!   revision or a cancelled watch means history is gone: list again and deliver a
//!   [`Remote::Reload`].
//! - **Re-read thread**: every `resync_interval`, lists everything and delivers a
//!   [`Remote::Reload`]; the pipeline compares it with its state at the same revision and
//!   repairs a difference (etcd 3.4 has watch bugs that drop events).
//!
//! Both deliver to a sink that answers `false` once the control plane is gone; the
//! threads then end (at the latest at the next message or re-read).

use super::client::{Client, Event, WatchMessage};
use super::layout::{KeyKind, Layout, Meta};
use super::{list, EtcdStats, Remote};
use crate::error::StoreError;
use crate::state::{Change, Commit};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Where remote changes go; `false`: nobody listens any more.
pub(crate) type Sink = Arc<dyn Fn(Remote) -> bool + Send + Sync>;

/// What the follower threads need (made by [`super::EtcdStore::follower`]).
pub(crate) struct Follower {
    pub(super) client: Arc<Client>,
    pub(super) layout: Layout,
    pub(super) stats: Arc<EtcdStats>,
    pub(super) resync_interval: Duration,
    /// This replica's id: its own `want/` writes are not news.
    pub(super) replica: u64,
}

/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Follower {
    /// Starts both threads: the watch from `revision + 1` with the records of
    /// `generation` (what the store's load saw), the re-read every interval.
    pub(crate) fn start(
        self,
        revision: u64,
        generation: u64,
        sink: Sink,
    ) -> Result<(), StoreError> {
        let me = Arc::new(self);
        let (w, s) = (me.clone(), sink.clone());
        std::thread::Builder::new()
            .name("inregion-etcd-watch".into())
            .spawn(move || w.watch_loop(revision, generation, &s))
            .map_err(|e| StoreError::internal(format!("cannot start the watch thread: {e}")))?;
        std::thread::Builder::new()
            .name("inregion-etcd-resync".into())
            .spawn(move || me.resync_loop(&sink))
            .map_err(|e| StoreError::internal(format!("cannot start the re-read thread: {e}")))?;
        Ok(())
    }

    /// Lists everything and hands it to `sink` as a [`Remote::Reload`]: the listing's
    /// (revision, generation), or `None` once the sink is closed (the store is gone).
    fn relist(&self, sink: &Sink) -> Result<Option<(u64, u64)>, StoreError> {
        let l = list(&self.client, &self.layout)?;
        self.stats.contact();
        self.stats.seen(l.position);
        let at = (l.revision, l.generation);
        let reload = Remote::Reload {
            loaded: l.loaded,
            position: l.position,
            generation: l.generation,
        };
        Ok(sink(reload).then_some(at))
    }

    fn resync_loop(&self, sink: &Sink) {
        loop {
            std::thread::sleep(self.resync_interval);
            match self.relist(sink) {
                Ok(None) => return,
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(error = %e, "etcd: the periodic re-read failed"),
            }
        }
    }

    fn watch_loop(&self, mut revision: u64, mut generation: u64, sink: &Sink) {
        let mut backoff = Duration::from_millis(50);
        let mut relist = false;
        loop {
            if relist {
                match self.relist(sink) {
                    Ok(None) => return,
                    Ok(Some((r, g))) => {
                        (revision, generation) = (r, g);
                        relist = false;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "etcd: listing failed; retrying");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            let mut gone = false;
            let result = self.client.watch(self.layout.prefix(), revision + 1, |msg| {
                self.stats.contact();
                match msg {
                    WatchMessage::Created => true,
                    WatchMessage::Events(events) => {
                        for group in by_revision(&events) {
                            let rev = group[0].kv.mod_revision;
                            match decode_group(&self.layout, group, generation, self.replica) {
                                Ok(Some(batch)) => {
                                    if let Remote::Batch {
                                        generation: g,
                                        position,
                                        ..
                                    } = &batch
                                    {
                                        generation = *g;
                                        self.stats.seen(*position);
                                    }
                                    if !sink(batch) {
                                        gone = true;
                                        return false;
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    // A value this program cannot read: re-read all, so
                                    // the state never silently misses a transaction.
                                    tracing::error!(error = %e, revision = rev, "etcd: undecodable transaction; listing again");
                                    relist = true;
                                    return false;
                                }
                            }
                            revision = rev;
                        }
                        true
                    }
                    WatchMessage::Compacted(at) => {
                        tracing::warn!(revision = revision + 1, compacted = at, "etcd: watch revision compacted; listing again");
                        relist = true;
                        false
                    }
                    WatchMessage::Canceled(why) => {
                        tracing::warn!(reason = %why, "etcd: watch cancelled; listing again");
                        relist = true;
                        false
                    }
                }
            });
            if gone {
                return;
            }
            match result {
                Ok(()) => backoff = Duration::from_millis(50),
                Err(e) => {
                    tracing::warn!(error = %e, from = revision + 1, "etcd: watch interrupted; resuming");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Consecutive events of one revision (one transaction each).
fn by_revision(events: &[Event]) -> impl Iterator<Item = &[Event]> {
    events.chunk_by(|a, b| a.kv.mod_revision == b.kv.mod_revision)
}

/// One transaction's events as a [`Remote::Batch`], or [`Remote::Want`] for another
/// replica's lost race (a `want/` write of a replica other than `me`); `None` for one
/// that did neither (the token key's creation, this replica's own `want/`).
pub(crate) fn decode_group(
    layout: &Layout,
    events: &[Event],
    generation: u64,
    me: u64,
) -> Result<Option<Remote>, String> {
    let Some(meta_event) = events
        .iter()
        .find(|e| !e.deleted && layout.kind(&e.kv.key) == KeyKind::Meta)
    else {
        let wants = events
            .iter()
            .any(|e| !e.deleted && matches!(layout.kind(&e.kv.key), KeyKind::Want(r) if r != me));
        return Ok(wants.then_some(Remote::Want));
    };
    let meta: Meta =
        serde_json::from_slice(&meta_event.kv.value).map_err(|e| format!("meta: {e}"))?;
    let mut changes = Vec::new();
    if meta.generation != generation {
        changes.push(Change::Clear);
    }
    for e in events {
        let c = if e.deleted {
            layout.decode_delete(&e.kv.key, meta.generation)?
        } else {
            layout.decode_put(&e.kv, meta.generation)?
        };
        changes.extend(c);
    }
    Ok(Some(Remote::Batch {
        commit: Commit {
            version: meta.version,
            changes,
        },
        purged_through: meta.purged_through,
        position: meta_event.kv.mod_revision,
        generation: meta.generation,
        nonce: meta.nonce,
    }))
}
