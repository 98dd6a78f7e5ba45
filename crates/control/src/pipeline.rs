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
//! Why a dedicated thread rather than a leader chosen among the writers: an async
//! handler must not block a runtime worker on an fsync, and moving every write to a
//! blocking pool costs two thread hand-offs per request (into the pool, and the pool
//! waking its followers one by one after each batch). Here a write costs the caller no
//! thread switch at all: the ticket's waker puts the task straight back on its runtime,
//! and the committer only sleeps when the queue is empty, so under load it commits
//! batch after batch without being woken.

use crate::error::StoreError;
use crate::plane::Writer;
use crate::state::{Commit, State};
use crate::store::Store;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
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
/// busy shared disk it can stall for hundreds of milliseconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
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
    durations: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    duration_nanos: AtomicU64,
    /// Tasks waiting for the read state to pass a version ([`VersionAfter`]): woken
    /// after every durable batch.
    version_waiters: Mutex<Vec<Waker>>,
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

    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.batches.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            duration_buckets: std::array::from_fn(|i| self.durations[i].load(Ordering::Relaxed)),
            duration_sum: Duration::from_nanos(self.duration_nanos.load(Ordering::Relaxed)),
        }
    }

    fn record_duration(&self, took: Duration) {
        self.durations[latency_bucket(took)].fetch_add(1, Ordering::Relaxed);
        self.duration_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Commits everything queued as one batch and completes every ticket in it.
    fn commit_batch(&self, store: &mut dyn Store, batch: Vec<Pending>) {
        let commits: Vec<&Commit> = batch.iter().filter_map(|p| p.commit.as_ref()).collect();
        let result = if commits.is_empty() {
            Ok(())
        } else {
            // A store that panics must not leave its writers waiting forever: the batch
            // fails like any store error, and so does everything queued behind it.
            let started = Instant::now();
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.commit(&commits)))
                    .unwrap_or_else(|_| {
                        Err(StoreError::internal("the store panicked during a commit"))
                    });
            self.record_duration(started.elapsed());
            r
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
                    drop(st);
                    for w in std::mem::take(&mut *lock(&self.version_waiters)) {
                        w.wake();
                    }
                }
                for p in &batch {
                    p.complete(Ok(()));
                }
            }
            Err(e) => {
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
        store: Box<dyn Store>,
        state: State,
        writer: Writer,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            read: RwLock::new(state),
            writer: Mutex::new(writer),
            queued: Condvar::new(),
            batches: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            durations: Default::default(),
            duration_nanos: AtomicU64::new(0),
            version_waiters: Mutex::new(Vec::new()),
        });
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

fn run(shared: &Shared, mut store: Box<dyn Store>) {
    loop {
        let batch = {
            let mut w = lock(&shared.writer);
            while w.queue.items.is_empty() && !w.queue.stopping {
                w = shared.queued.wait(w).unwrap_or_else(|e| e.into_inner());
            }
            if w.queue.items.is_empty() {
                return; // stopping, and everything queued is committed
            }
            std::mem::take(&mut w.queue.items)
        };
        shared.commit_batch(&mut *store, batch);
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
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
