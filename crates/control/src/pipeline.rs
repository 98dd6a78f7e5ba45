//! The commit pipeline: a committer thread that owns the [`Store`], and the tickets that
//! writers wait on (blocking or `.await`).
//!
//! ```text
//!  writer (any thread, or an async task):
//!    lock queue ─► rule ─► apply to speculative state ─► push Pending ─► unlock
//!        │                       (wake the committer if the queue was empty)
//!        ▼
//!    Ticket ─► .await (async handlers)  or  block_on (sync callers)
//!
//!  committer thread (one per control plane):
//!    wait for a non-empty queue ─► take all of it ─► store.commit(batch)
//!      (one log frame or transaction, one fsync) ─► apply to the read state ─► complete
//!      every ticket
//! ```
//!
//! With a store shared by several replicas (etcd), the committer also applies what the
//! store's follower delivers (other replicas' commits, periodic re-reads) to the read
//! state, before the next batch; what was queued on the older state fails with
//! [`StoreError::Conflict`] and its writers run their rules again. A batch that loses
//! the race to another replica does the same after catching up (and its transaction
//! writes `want/`, so that the winner holds its next commit until the loser got a turn),
//! and one whose answer was lost waits for the watch to tell whether it was applied
//! (`meta`'s nonce).
//!
//! Why a dedicated thread rather than a leader chosen among the writers: an async
//! handler must not block a runtime worker on an fsync, and moving every write to a
//! blocking pool costs two thread hand-offs per request (into the pool, and the pool
//! waking its followers one by one after each batch). Here a write costs the caller no
//! thread switch at all: the ticket's waker puts the task straight back on its runtime,
//! and the committer only sleeps when the queue is empty, so under load it commits
//! batch after batch without being woken.

use crate::error::StoreError;
use crate::plane::Writer;
use crate::state::{Change, Commit, State};
use crate::store::etcd::{EtcdStats, Remote, Sink};
use crate::store::Store;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking rule cannot leave a half-applied state behind (rules are pure and the
    // state is changed only by `apply_commit`), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Upper bounds, in seconds, of the latency histograms: [`CommitStats::duration_buckets`]
/// here, and the HTTP server's per-route request latency (the last bucket, past these,
/// is `+Inf`). 100 µs to 2.5 s: an fsync on a fast SSD is tens of microseconds, on a
/// busy shared disk it can stall for hundreds of milliseconds. Finer between 0.5 and
/// 2.5 ms, where a durable write's tail lies on an ordinary disk (a percentile read from
/// a histogram is interpolated within one bucket).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
];

/// The index of the [`LATENCY_BUCKETS`] bucket that `took` falls in
/// (`LATENCY_BUCKETS.len()` for `+Inf`).
pub fn latency_bucket(took: Duration) -> usize {
    let secs = took.as_secs_f64();
    LATENCY_BUCKETS
        .iter()
        .position(|&b| secs <= b)
        .unwrap_or(LATENCY_BUCKETS.len())
}

/// Group-commit counters since the control plane was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Successful calls to [`Store::commit`] (for the default store one SQLite
    /// transaction and one WAL fsync each).
    pub batches: u64,
    /// Operations committed by them; `commits / batches` is the mean batch size.
    pub commits: u64,
    /// How long each call to [`Store::commit`] took (successful or not), bucketed by
    /// [`LATENCY_BUCKETS`] plus a last `+Inf` bucket; not cumulative. This is the
    /// disk's share of a write's latency: a write waits for at most the batch in flight
    /// and its own.
    pub duration_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of those durations.
    pub duration_sum: Duration,
    /// How long each operation waited in the queue for its batch's commit to start,
    /// bucketed as `duration_buckets`: behind the batch in flight when it arrived, or
    /// only the committer's wake-up when none was. With the commit's own duration this
    /// splits a write's latency into waiting for the disk and using it; an operation a
    /// shared store's race sent back to its rules counts once per attempt.
    pub wait_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of those waits.
    pub wait_sum: Duration,
}

/// A latency histogram over [`LATENCY_BUCKETS`] that threads add to without a lock: the
/// store's commit times and queue waits here, and the HTTP server's per-route latency.
#[derive(Debug, Default)]
pub struct AtomicHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    nanos: AtomicU64,
}

impl AtomicHistogram {
    /// Counts one observation.
    pub fn record(&self, took: Duration) {
        self.buckets[latency_bucket(took)].fetch_add(1, Ordering::Relaxed);
        // u64 nanoseconds hold 584 years of summed latency.
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The buckets (not cumulative, the last one `+Inf`) and the sum.
    pub fn snapshot(&self) -> ([u64; LATENCY_BUCKETS.len() + 1], Duration) {
        (
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            Duration::from_nanos(self.nanos.load(Ordering::Relaxed)),
        )
    }
}

/// The outcome a [`Ticket`] waits for, filled once by the committer.
#[derive(Default)]
struct Slot {
    result: Option<Result<(), StoreError>>,
    waker: Option<Waker>,
}

/// One queued operation: its commit (`None` for a no-op that only waits for everything
/// queued before it) and the slot its writer waits on.
pub(crate) struct Pending {
    commit: Option<Commit>,
    /// When it was queued: its wait for the committer is measured from here.
    queued_at: Instant,
    slot: Arc<Mutex<Slot>>,
    /// What the commit removed from the writer's state (a reset's old records): dropped
    /// by the committer after the tickets are completed, off the writers' path.
    _garbage: Vec<State>,
}

impl Pending {
    /// Queues `commit` and returns the ticket its writer waits on.
    pub(crate) fn new(commit: Option<Commit>, garbage: Vec<State>) -> (Self, Ticket) {
        let slot = Arc::new(Mutex::new(Slot::default()));
        (
            Self {
                commit,
                queued_at: Instant::now(),
                slot: slot.clone(),
                _garbage: garbage,
            },
            Ticket { slot },
        )
    }

    fn complete(&self, result: Result<(), StoreError>) {
        let waker = {
            let mut s = lock(&self.slot);
            s.result = Some(result);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Resolves when the operation it was issued for is durable (or its batch failed).
/// A future for async callers; [`block_on`] waits for it on a plain thread.
#[must_use = "the write is only acknowledged once its ticket resolves"]
pub(crate) struct Ticket {
    slot: Arc<Mutex<Slot>>,
}

impl Future for Ticket {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = lock(&self.slot);
        match &s.result {
            Some(r) => Poll::Ready(r.clone()),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// Runs a future to completion on the current thread, parking between polls. Used by
/// the synchronous write methods, whose futures only ever wait on a [`Ticket`].
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            // A spurious unpark only costs another poll.
            Poll::Pending => thread::park(),
        }
    }
}

/// The writer side of the pipeline besides the speculative state: the queue and whether
/// the pipeline is shutting down. Embedded in the control plane's [`Writer`], under the
/// same mutex, so that validating and queueing are one critical section.
#[derive(Default)]
pub(crate) struct Queue {
    items: Vec<Pending>,
    stopping: bool,
    /// What other replicas committed (a shared store's follower), not yet applied.
    remote: Vec<Remote>,
}

impl Queue {
    /// Whether anything is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// State shared by the control plane and its committer thread.
pub(crate) struct Shared {
    /// Durable commits only: what readers see.
    pub(crate) read: RwLock<State>,
    /// The writer's speculative state, id generator and queue.
    pub(crate) writer: Mutex<Writer>,
    /// Signalled when the queue becomes non-empty or the pipeline stops.
    queued: Condvar,
    batches: AtomicU64,
    commits: AtomicU64,
    durations: AtomicHistogram,
    waits: AtomicHistogram,
    /// Tasks waiting for the read state to pass a version ([`VersionAfter`]) or a
    /// position ([`PositionAfter`]): woken after every durable batch, local or remote.
    version_waiters: Mutex<Vec<Waker>>,
    /// A shared store's position (etcd: `meta`'s revision) of the read state; 0 for a
    /// store of this process alone.
    position: AtomicU64,
    /// A shared store's counters and the reads of its newest position.
    pub(crate) replica: Option<Replica>,
    /// Set by the first commit that failed with an outcome the store cannot settle
    /// ([`StoreError::DiskFailed`]): every later batch fails with it, without reaching
    /// the store. Committing again would let the next commit overwrite what the failed
    /// one may have left in the WAL, so the answer "unknown" could turn into "no" now and
    /// into "yes" after a crash; only a restart (SQLite's recovery) settles it.
    halted: OnceLock<StoreError>,
}

/// What the control plane keeps of a shared (etcd) store besides the committer's copy.
pub(crate) struct Replica {
    pub(crate) stats: Arc<EtcdStats>,
    /// Reads of the store's newest position (linearizable), shared between concurrent
    /// requests.
    pub(crate) rounds: Arc<Rounds>,
}

/// Reads of the shared store's newest position, shared between concurrent requests: a
/// request needs a read that *started after it arrived* (an earlier one could miss a
/// write acknowledged just before), so each waits for the next round, and one round
/// serves everyone who arrived before it started. Under load this is about one etcd read
/// per round trip instead of one per request. Rounds run on a thread of their own (the
/// read blocks).
#[derive(Default)]
pub(crate) struct Rounds {
    state: Mutex<RoundState>,
    wanted: Condvar,
}

#[derive(Default)]
struct RoundState {
    started: u64,
    finished: u64,
    /// The highest round someone waits for.
    wanted: u64,
    /// The last finished round's answer.
    last: Option<Result<u64, StoreError>>,
    waiters: Vec<Waker>,
    stopping: bool,
}

impl Rounds {
    /// Starts the thread that runs rounds with `latest` until [`Rounds::stop`].
    pub(crate) fn start(
        self: &Arc<Self>,
        latest: Arc<dyn Fn() -> Result<u64, StoreError> + Send + Sync>,
    ) -> Result<(), StoreError> {
        let me = self.clone();
        thread::Builder::new()
            .name("inregion-etcd-fresh".into())
            .spawn(move || loop {
                let round = {
                    let mut st = lock(&me.state);
                    while st.wanted <= st.started && !st.stopping {
                        st = me.wanted.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    if st.stopping {
                        return;
                    }
                    st.started += 1;
                    st.started
                };
                let answer = latest();
                let waiters = {
                    let mut st = lock(&me.state);
                    st.finished = round;
                    st.last = Some(answer);
                    std::mem::take(&mut st.waiters)
                };
                for w in waiters {
                    w.wake();
                }
            })
            .map_err(|e| StoreError::internal(format!("cannot start the freshness thread: {e}")))?;
        Ok(())
    }

    pub(crate) fn stop(&self) {
        lock(&self.state).stopping = true;
        self.wanted.notify_all();
    }

    /// The newest position, from a read that started after this call.
    pub(crate) fn next(&self) -> NextRound<'_> {
        NextRound {
            rounds: self,
            need: None,
        }
    }
}

/// See [`Rounds::next`].
pub(crate) struct NextRound<'a> {
    rounds: &'a Rounds,
    need: Option<u64>,
}

impl Future for NextRound<'_> {
    type Output = Result<u64, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let rounds = self.rounds;
        let mut st = lock(&rounds.state);
        let need = match self.need {
            Some(n) => n,
            None => {
                // The next round to start: it begins after this moment.
                let n = st.started + 1;
                if st.wanted < n {
                    st.wanted = n;
                    rounds.wanted.notify_one();
                }
                self.need = Some(n);
                n
            }
        };
        if st.finished >= need {
            if let Some(answer) = &st.last {
                return Poll::Ready(answer.clone());
            }
        }
        st.waiters.push(cx.waker().clone());
        Poll::Pending
    }
}

/// How long the committer waits for the watch to catch up after a lost race before
/// re-reading everything itself.
const CATCH_UP: Duration = Duration::from_secs(3);
/// How long it waits to learn the outcome of a transaction whose answer was lost.
const RESOLVE: Duration = Duration::from_secs(10);

/// Resolves once the read state's shared-store position is at least `at` (a read that
/// must see every write acknowledged before it started waits on it).
pub(crate) struct PositionAfter<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) at: u64,
}

impl Future for PositionAfter<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.position() >= self.at {
            return Poll::Ready(());
        }
        lock(&self.shared.version_waiters).push(cx.waker().clone());
        if self.shared.position() >= self.at {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Resolves to the read state's version once it is above `after` (a long-polling
/// change-feed reader waits on it). Runtime-agnostic: the committer wakes it.
pub(crate) struct VersionAfter<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) after: u64,
}

impl Future for VersionAfter<'_> {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let v = self.shared.read_state().version;
        if v > self.after {
            return Poll::Ready(v);
        }
        lock(&self.shared.version_waiters).push(cx.waker().clone());
        // Checked again after registering: a batch applied in between has already
        // drained the waiters, and would otherwise never wake this one.
        let v = self.shared.read_state().version;
        if v > self.after {
            Poll::Ready(v)
        } else {
            Poll::Pending
        }
    }
}

impl Shared {
    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.read.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared store's position of the read state (0 when the store is not shared).
    pub(crate) fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    fn wake_waiters(&self) {
        for w in std::mem::take(&mut *lock(&self.version_waiters)) {
            w.wake();
        }
    }

    /// The sink a shared store's follower delivers to: queues under the writer lock
    /// and wakes the committer; `false` once the control plane is gone.
    fn remote_sink(shared: &Arc<Shared>) -> Sink {
        let weak = Arc::downgrade(shared);
        Arc::new(move |r| {
            let Some(s) = weak.upgrade() else {
                return false;
            };
            let mut w = lock(&s.writer);
            if w.queue.stopping {
                return false;
            }
            w.queue.remote.push(r);
            drop(w);
            s.queued.notify_all();
            true
        })
    }

    /// Applies what other replicas committed to the read state (and to the writer's
    /// speculative state), with the writer locked as `w`. Returns what was queued and
    /// must now be validated again (its rules ran against a state without these
    /// commits), and what the applied clears removed. With `force`, a re-read at the
    /// state's own position replaces it without being compared (a reload asked for by
    /// this replica, not the periodic check).
    fn apply_remote(
        &self,
        store: &mut dyn Store,
        w: &mut Writer,
        items: Vec<Remote>,
        force: bool,
    ) -> (Vec<Pending>, Vec<State>) {
        let Some(etcd) = store.as_etcd() else {
            return (Vec::new(), Vec::new());
        };
        let mut removed = Vec::new();
        let mut applied: Vec<Commit> = Vec::new();
        let mut reloaded = false;
        let mut pos = self.position();
        let mut st = self.read.write().unwrap_or_else(|e| e.into_inner());
        for r in items {
            match r {
                Remote::Batch {
                    commit,
                    purged_through,
                    position,
                    generation,
                    nonce: _,
                } => {
                    if position <= pos {
                        continue; // this replica's own commit, or seen already
                    }
                    removed.extend(st.apply_commit_deferring_drop(&commit));
                    st.purged_through = purged_through;
                    etcd.applied(position, generation, purged_through);
                    pos = position;
                    applied.push(commit);
                }
                Remote::Reload {
                    loaded,
                    position,
                    generation,
                } => {
                    if position < pos {
                        continue; // older than what the watch delivered
                    }
                    let fresh = State::from_loaded(loaded);
                    if position == pos && !force {
                        let same = fresh.version == st.version
                            && fresh.purged_through == st.purged_through
                            && fresh.dump() == st.dump();
                        if same {
                            continue;
                        }
                        etcd.stats_ref().repairs.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            position,
                            "etcd: the periodic re-read differs from the watched state; repaired"
                        );
                    }
                    etcd.applied(position, generation, fresh.purged_through);
                    removed.push(std::mem::replace(&mut *st, fresh));
                    pos = position;
                    reloaded = true;
                    applied.clear();
                }
                Remote::Want => {} // for the committer's loop (`run`), not the state
            }
        }
        if pos == self.position() && !reloaded {
            return (Vec::new(), removed);
        }
        self.position.store(pos, Ordering::Release);
        // Queued operations were validated against a state without these commits.
        let stale = std::mem::take(&mut w.queue.items);
        if reloaded || !stale.is_empty() {
            w.reset_to(&st);
        } else {
            // The speculative state equalled the read state: the same commits keep them
            // equal, without a copy.
            for c in &applied {
                removed.extend(w.spec_mut().apply_commit_deferring_drop(c));
            }
            w.reset_version(st.version);
        }
        drop(st);
        self.wake_waiters();
        (stale, removed)
    }

    /// Waits (applying what the follower delivers) until `done` says so or `timeout`
    /// passes; `done` sees each remote item before it is applied. Operations queued
    /// meanwhile that became stale are failed with [`StoreError::Conflict`].
    fn catch_up(
        &self,
        store: &mut dyn Store,
        timeout: Duration,
        mut done: impl FnMut(&Shared, Option<&Remote>) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self, None) {
                return true;
            }
            let mut w = lock(&self.writer);
            while w.queue.remote.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                w = self
                    .queued
                    .wait_timeout(w, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let items = std::mem::take(&mut w.queue.remote);
            let mut finished = false;
            for r in &items {
                finished |= done(self, Some(r));
            }
            let (stale, _removed) = self.apply_remote(store, &mut w, items, false);
            drop(w);
            let conflict = StoreError::Conflict {
                position: self.position(),
            };
            for p in &stale {
                p.complete(Err(conflict.clone()));
            }
            if finished {
                return true;
            }
        }
    }

    /// Queues `commit` with the writer locked (`w`), waking the committer if it sleeps.
    pub(crate) fn push(
        &self,
        w: &mut Writer,
        commit: Option<Commit>,
        garbage: Vec<State>,
    ) -> Ticket {
        let (pending, ticket) = Pending::new(commit, garbage);
        let q = &mut w.queue;
        let was_empty = q.items.is_empty();
        q.items.push(pending);
        if was_empty {
            // The committer only waits while the queue is empty, so only this push can
            // find it asleep.
            self.queued.notify_one();
        }
        ticket
    }

    /// Why writes are halted, if they are (see `halted`).
    pub(crate) fn halted(&self) -> Option<StoreError> {
        self.halted.get().cloned()
    }

    pub(crate) fn stats(&self) -> CommitStats {
        let (duration_buckets, duration_sum) = self.durations.snapshot();
        let (wait_buckets, wait_sum) = self.waits.snapshot();
        CommitStats {
            batches: self.batches.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            duration_buckets,
            duration_sum,
            wait_buckets,
            wait_sum,
        }
    }

    /// Commits everything queued as one batch and completes every ticket in it.
    fn commit_batch(&self, store: &mut dyn Store, batch: Vec<Pending>) {
        let commits: Vec<&Commit> = batch.iter().filter_map(|p| p.commit.as_ref()).collect();
        let result = if commits.is_empty() {
            Ok(())
        } else if let Some(e) = self.halted.get() {
            Err(e.clone())
        } else {
            // A store that panics must not leave its writers waiting forever: the batch
            // fails like any store error, and so does everything queued behind it.
            let started = Instant::now();
            for p in batch.iter().filter(|p| p.commit.is_some()) {
                self.waits
                    .record(started.saturating_duration_since(p.queued_at));
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match store.as_etcd() {
                    Some(etcd) => {
                        let purged_through = purge_horizon(&self.read_state(), &commits);
                        etcd.commit_shared(&commits, purged_through)
                    }
                    None => store.commit(&commits),
                }
            }))
            .unwrap_or_else(|_| Err(StoreError::internal("the store panicked during a commit")));
            self.durations.record(started.elapsed());
            r
        };
        let result = match result {
            Err(StoreError::Conflict { position }) => {
                // Another replica won: catch up to what it wrote, then every writer of
                // this batch and behind it validates again on the newer state.
                let caught_up = self.catch_up(store, CATCH_UP, |s, _| s.position() >= position);
                if !caught_up {
                    self.reload(store);
                }
                Err(StoreError::Conflict { position })
            }
            Err(StoreError::Indeterminate {
                base,
                nonce,
                what,
                retry,
            }) => {
                // The first transaction after `base` is the one that won it: ours if it
                // carries our nonce (the watch has then applied it already).
                let mut ours = None;
                let deadline = Instant::now() + RESOLVE;
                while ours.is_none() && Instant::now() < deadline {
                    self.catch_up(store, Duration::from_millis(100), |_, r| {
                        if let Some(Remote::Batch {
                            position, nonce: n, ..
                        }) = r
                        {
                            if *position > base && ours.is_none() {
                                ours = Some(*n == nonce);
                            }
                        }
                        ours.is_some()
                    });
                    if ours.is_some() {
                        break;
                    }
                    // Nothing from the watch: ask etcd. `meta` still at the base means
                    // the transaction did not happen and never will (see `read_meta`);
                    // `meta` carrying our nonce means it did and was the last one.
                    match store.as_etcd().map(|e| e.read_meta()) {
                        Some(Ok((position, _))) if position == base => ours = Some(false),
                        Some(Ok((position, n))) if n == nonce => {
                            // Ours, and the newest: the watch will bring it.
                            self.catch_up(store, RESOLVE, |s, _| s.position() >= position);
                            if self.position() >= position {
                                ours = Some(true);
                            }
                        }
                        _ => {}
                    }
                }
                match ours {
                    Some(true) => {
                        self.batches.fetch_add(1, Ordering::Relaxed);
                        self.commits
                            .fetch_add(commits.len() as u64, Ordering::Relaxed);
                        // Applied (from the watch); what was queued behind it was
                        // validated on a state that is gone: fail it to run again.
                        let later = {
                            let mut w = lock(&self.writer);
                            let later = std::mem::take(&mut w.queue.items);
                            w.reset_to(&self.read_state());
                            later
                        };
                        for p in &batch {
                            p.complete(Ok(()));
                        }
                        let conflict = StoreError::Conflict {
                            position: self.position(),
                        };
                        for p in &later {
                            p.complete(Err(conflict.clone()));
                        }
                        return;
                    }
                    // It did not happen: run the operation again, unless the store's
                    // refusal stands (it would only be refused again).
                    Some(false) if retry => Err(StoreError::Conflict {
                        position: self.position(),
                    }),
                    Some(false) => Err(StoreError::Unavailable(what)),
                    None => Err(StoreError::Indeterminate {
                        base,
                        nonce,
                        what,
                        retry,
                    }),
                }
            }
            r => r,
        };
        // Dropped last, once every ticket is completed (see `Pending::_garbage`).
        let mut removed = Vec::new();
        match &result {
            Ok(()) => {
                if !commits.is_empty() {
                    self.batches.fetch_add(1, Ordering::Relaxed);
                    self.commits
                        .fetch_add(commits.len() as u64, Ordering::Relaxed);
                    let mut st = self.read.write().unwrap_or_else(|e| e.into_inner());
                    for c in &commits {
                        removed.extend(st.apply_commit_deferring_drop(c));
                    }
                    if let Some(etcd) = store.as_etcd() {
                        self.position.store(etcd.position(), Ordering::Release);
                    }
                    drop(st);
                    self.wake_waiters();
                }
                for p in &batch {
                    p.complete(Ok(()));
                }
            }
            Err(e) => {
                if matches!(e, StoreError::DiskFailed { .. }) && self.halted.set(e.clone()).is_ok()
                {
                    tracing::error!(error = %e, "writes halted until a restart");
                }
                let later = {
                    let mut w = lock(&self.writer);
                    let later = std::mem::take(&mut w.queue.items);
                    w.reset_to(&self.read_state());
                    later
                };
                for p in batch.iter().chain(later.iter()) {
                    p.complete(Err(e.clone()));
                }
            }
        }
    }
}

impl Shared {
    /// Re-reads everything from the shared store and applies it (when the watch did not
    /// deliver in time).
    fn reload(&self, store: &mut dyn Store) {
        let loaded = match store.load() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "re-reading the shared store failed");
                return;
            }
        };
        let Some(etcd) = store.as_etcd() else {
            return;
        };
        let (position, generation) = (etcd.position(), etcd.generation());
        // `load` moved the store's position; the state follows it here.
        let item = Remote::Reload {
            loaded,
            position,
            generation,
        };
        let mut w = lock(&self.writer);
        let (stale, _removed) = self.apply_remote(store, &mut w, vec![item], true);
        drop(w);
        let conflict = StoreError::Conflict { position };
        for p in &stale {
            p.complete(Err(conflict.clone()));
        }
    }
}

/// The purge horizon ([`State::purged_through`]) after `commits` are applied to `st`.
fn purge_horizon(st: &State, commits: &[&Commit]) -> u64 {
    let mut p = st.purged_through;
    for c in commits {
        for ch in &c.changes {
            match ch {
                Change::PurgeBinding(id) => {
                    if let Some(b) = st.bindings.get(id) {
                        p = p.max(b.version);
                    }
                }
                Change::Clear => p = c.version,
                _ => {}
            }
        }
    }
    p
}

/// The committer thread; dropping it drains the queue, then joins the thread, so no
/// queued write is lost on shutdown.
pub(crate) struct Committer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the committer over `store`, with `state` as both the read state and (in
    /// `writer`) the speculative one.
    pub(crate) fn start(
        mut store: Box<dyn Store>,
        state: State,
        writer: Writer,
    ) -> Result<Self, StoreError> {
        let (replica, position) = match store.as_etcd() {
            Some(etcd) => {
                let (client, layout) = etcd.client();
                let latest: Arc<dyn Fn() -> Result<u64, StoreError> + Send + Sync> =
                    Arc::new(move || crate::store::EtcdStore::latest_position(&client, &layout));
                let rounds = Arc::new(Rounds::default());
                rounds.start(latest)?;
                (
                    Some(Replica {
                        stats: etcd.stats(),
                        rounds,
                    }),
                    etcd.position(),
                )
            }
            None => (None, 0),
        };
        let shared = Arc::new(Shared {
            read: RwLock::new(state),
            writer: Mutex::new(writer),
            queued: Condvar::new(),
            batches: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            durations: AtomicHistogram::default(),
            waits: AtomicHistogram::default(),
            version_waiters: Mutex::new(Vec::new()),
            position: AtomicU64::new(position),
            replica,
            halted: OnceLock::new(),
        });
        if let Some(etcd) = store.as_etcd() {
            etcd.follow(Shared::remote_sink(&shared))?;
        }
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name(format!("inregion-commit-{}", store.kind()))
            .spawn(move || run(&s, store))
            .map_err(|e| StoreError::internal(format!("cannot start the committer thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

/// After another replica's commit or a lost race, how long this replica counts as
/// contended (see `run`).
const CONTENDED_FOR: Duration = Duration::from_millis(100);
/// The longest pause a contended committer takes before its next transaction.
const MAX_CONTENDED_PAUSE_US: u64 = 3000;
/// The longest a replica holds its next commit for another that lost a race to it.
const YIELD_FOR: Duration = Duration::from_millis(100);
/// The longest a replica whose queue a remote commit failed waits for its writers to
/// queue again before committing.
const REGATHER: Duration = Duration::from_millis(2);

fn run(shared: &Shared, mut store: Box<dyn Store>) {
    // Replicas that write at once race for the same etcd revision, and the one that just
    // committed wins the next race too (the other must first learn of the commit from
    // the watch): without a pause the other could starve. While contended, each waits
    // a random moment before its next transaction, which lets the other through and
    // lets its own queue grow into a larger batch.
    let mut contended_until: Option<Instant> = None;
    let mut seen_conflicts = 0u64;
    // The pause alone does not stop a saturated replica from winning every race: the
    // other's queue is failed by each remote commit before it can commit it, or its
    // transaction loses. Either way the loser says so (`want/`: written by the losing
    // transaction's failure branch, or by a thread of the store's when a remote commit
    // failed the queue, never by the committer itself: measured, a round trip of its own
    // kept the starved replica busy asking while the other committed), and the others,
    // told by their watch (`Remote::Want`), hold their next commit until another replica
    // has committed or for at most `YIELD_FOR` (the loser must first copy the state and
    // let its writers run their rules again: tens of milliseconds on a busy machine). A
    // replica whose queue a remote commit failed holds its next commit until its writers
    // have queued again (at most `REGATHER`), so that one transaction carries them all.
    //
    // `hold`: no local commit before the instant, unless that many operations are queued
    // (usize::MAX: none will do); remote items end the wait, and decide.
    let mut hold: Option<(Instant, usize)> = None;
    loop {
        if let Some(until) = contended_until {
            if Instant::now() < until {
                let us = rand::random::<u64>() % MAX_CONTENDED_PAUSE_US;
                thread::sleep(Duration::from_micros(us));
            } else {
                contended_until = None;
            }
        }
        let batch = {
            let mut w = lock(&shared.writer);
            loop {
                while w.queue.items.is_empty() && w.queue.remote.is_empty() && !w.queue.stopping {
                    w = shared.queued.wait(w).unwrap_or_else(|e| e.into_inner());
                }
                let Some((until, enough)) = hold else { break };
                let now = Instant::now();
                if now >= until || w.queue.items.len() >= enough {
                    hold = None;
                    break;
                }
                if !w.queue.remote.is_empty() || w.queue.stopping {
                    break;
                }
                w = shared
                    .queued
                    .wait_timeout(w, until - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if !w.queue.remote.is_empty() {
                // Other replicas' commits first: what is queued may have to run again.
                let items = std::mem::take(&mut w.queue.remote);
                for r in &items {
                    match r {
                        Remote::Want => hold = Some((Instant::now() + YIELD_FOR, usize::MAX)),
                        // Another replica committed (not this one's own, echoed).
                        Remote::Batch { position, .. } if *position > shared.position() => {
                            hold = None
                        }
                        Remote::Batch { .. } | Remote::Reload { .. } => {}
                    }
                }
                let (stale, removed) = shared.apply_remote(&mut *store, &mut w, items, false);
                drop(w);
                let conflict = StoreError::Conflict {
                    position: shared.position(),
                };
                for p in &stale {
                    p.complete(Err(conflict.clone()));
                }
                drop(removed);
                tracing::trace!(target: "inregion::commit", stale = stale.len(), hold = ?hold.map(|h| h.1), "remote");
                if !stale.is_empty() {
                    hold = Some((Instant::now() + REGATHER, stale.len()));
                    if let Some(etcd) = store.as_etcd() {
                        etcd.ask_turn();
                    }
                }
                contended_until = Some(Instant::now() + CONTENDED_FOR);
                continue;
            }
            if w.queue.items.is_empty() {
                return; // stopping, and everything queued is committed
            }
            match store.max_batch_changes() {
                None => std::mem::take(&mut w.queue.items),
                Some(max) => {
                    // A store that bounds a transaction (etcd: --max-txn-ops) takes as
                    // many queued operations as fit, at least one; the rest follow.
                    let mut total = 0;
                    let n = w
                        .queue
                        .items
                        .iter()
                        .take_while(|p| {
                            total += p.commit.as_ref().map_or(0, |c| c.changes.len());
                            total <= max
                        })
                        .count()
                        .max(1);
                    w.queue.items.drain(..n).collect()
                }
            }
        };
        tracing::trace!(target: "inregion::commit", n = batch.len(), "commit");
        shared.commit_batch(&mut *store, batch);
        if let Some(r) = &shared.replica {
            let conflicts = r.stats.conflicts.load(Ordering::Relaxed);
            if conflicts != seen_conflicts {
                contended_until = Some(Instant::now() + CONTENDED_FOR);
            }
            seen_conflicts = conflicts;
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if let Some(r) = &self.shared.replica {
            r.rounds.stop();
        }
        lock(&self.shared.writer).queue.stopping = true;
        self.shared.queued.notify_one();
        if let Some(t) = self.thread.take() {
            // The thread does not panic: a store error, or a panic inside the store, fails
            // its batch (`commit_batch`). Should it panic anyway, there is nothing left
            // to commit here.
            let _ = t.join();
        }
    }
}
