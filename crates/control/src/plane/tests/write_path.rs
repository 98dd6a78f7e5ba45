//! The write path: failed commits, reopening, serialized and group-committed writers
//! (blocking and async), seeded ids, `Send + Sync`.

use super::*;

#[test]
fn failed_commit_changes_nothing_and_recovers() {
    let f = fx();
    let before = f.cp.dump();
    f.store.fail_next_commits(1);
    let e = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap_err();
    assert_eq!((e.code(), e.http_status()), (1000, 500));
    assert_eq!(f.cp.dump(), before);
    // The same request now succeeds: the speculative state was rolled back.
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(f.cp.version(), before.version + 1);
}

#[test]
fn reopen_restores_everything() {
    let f = fx();
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let before = f.cp.dump();
    let again = ControlPlane::open(Box::new(f.store.clone()), ControlConfig::default()).unwrap();
    assert_eq!(again.dump(), before);
}

#[test]
fn concurrent_writers_are_serialized_and_group_committed() {
    let f = std::sync::Arc::new(fx());
    let threads: Vec<_> = (0..8)
        .map(|th| {
            let f = f.clone();
            std::thread::spawn(move || {
                (0..32)
                    .map(|i| {
                        f.create(V6, &format!("2001:db8:{th:x}:{i:x}::/64"), "eu", t(0))
                            .unwrap()
                            .id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<BindingId> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), 256);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 256);
    let cs = f.cp.changes_since(0).unwrap();
    assert_eq!(cs.bindings.len(), 256);
    // Versions are consecutive: one per operation.
    let mut vs: Vec<u64> = cs.bindings.iter().map(|b| b.version).collect();
    vs.sort();
    assert!(vs.windows(2).all(|w| w[1] == w[0] + 1));
    // Concurrent duplicates: exactly one wins.
    let wins: usize = (0..8)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || f.create(DEMO, "203.0.113.0/25", "eu", t(0)).is_ok())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap() as usize)
        .sum();
    assert_eq!(wins, 1);
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    fut.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

#[test]
fn async_writers_wait_without_threads_and_commit_in_order() {
    // 64 writes driven by one thread: each first poll validates and queues; none blocks.
    let f = fx();
    let mut futs: Vec<_> = (0..64)
        .map(|i| {
            let input = CreateBinding::new(V6, &format!("2001:db8:77:{i:x}::/64"), "eu");
            Box::pin(f.cp.create_binding_async(&f.rw, ACCT, input, t(0)))
        })
        .collect();
    let mut done: Vec<Option<Binding>> = vec![None; futs.len()];
    while done.iter().any(Option::is_none) {
        for (fut, out) in futs.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                if let std::task::Poll::Ready(r) = poll_once(fut.as_mut()) {
                    *out = Some(r.unwrap().result);
                }
            }
        }
        std::thread::yield_now();
    }
    // Queued in creation order, so versions follow it, one per write.
    let vs: Vec<u64> = done
        .iter()
        .map(|b| {
            f.cp.binding_record(&b.as_ref().unwrap().id)
                .unwrap()
                .version
        })
        .collect();
    assert!(vs.windows(2).all(|w| w[1] == w[0] + 1), "{vs:?}");
    // A refused write returns at its first poll and queues nothing.
    let before = f.cp.version();
    let dup = CreateBinding::new(V6, "2001:db8:77::/64", "eu");
    let r = poll_once(std::pin::pin!(f.cp.create_binding_async(
        &f.rw,
        ACCT,
        dup,
        t(0)
    )));
    assert!(
        matches!(
            r,
            std::task::Poll::Ready(Err(CreateBindingError::Conflict(_)))
        ),
        "{r:?}"
    );
    assert_eq!(f.cp.version(), before);
}

#[test]
fn a_write_queued_then_abandoned_is_committed_whole() {
    // An HTTP client that disconnects drops its handler's future after the write was
    // queued: the write still lands, and dropping the control plane drains the queue.
    let f = fx();
    let input = CreateBinding::new(V6, "2001:db8:ab::/48", "eu");
    let _ = poll_once(std::pin::pin!(f.cp.create_binding_async(
        &f.rw,
        ACCT,
        input,
        t(0)
    )));
    let Fx { cp, store, .. } = f;
    drop(cp);
    let reopened = ControlPlane::open(Box::new(store), ControlConfig::default()).unwrap();
    let cs = reopened.changes_since(0).unwrap();
    assert!(
        cs.bindings
            .iter()
            .any(|b| b.cidr.to_string() == "2001:db8:ab::/48"),
        "the abandoned write was lost"
    );
}

#[test]
fn seeded_ids_are_reproducible() {
    let cfg = || ControlConfig {
        id_seed: Some(7),
        ..ControlConfig::default()
    };
    let a = fx_with(cfg());
    let b = fx_with(cfg());
    let x = a.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let y = b.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(x.id, y.id);
}

#[test]
fn plane_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<ControlPlane>();
}

/// A memory store whose commits take at least `delay_ms` and say when they start.
struct SlowStore {
    inner: MemoryStore,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    entered: Arc<Mutex<Vec<std::time::Instant>>>,
}

impl Store for SlowStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.inner.load()
    }
    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError> {
        lock(&self.entered).push(std::time::Instant::now());
        let ms = self.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(ms));
        self.inner.commit(commits)
    }
    fn token_key(&self) -> crate::auth::TokenKey {
        self.inner.token_key()
    }
    fn kind(&self) -> &'static str {
        "slow-memory"
    }
}

#[test]
fn commit_stats_split_a_write_into_waiting_for_the_batch_in_flight_and_its_own_commit() {
    let delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let entered = Arc::new(Mutex::new(Vec::new()));
    let store = SlowStore {
        inner: MemoryStore::new(),
        delay_ms: delay_ms.clone(),
        entered: entered.clone(),
    };
    let cp = ControlPlane::open(Box::new(store), ControlConfig::default()).unwrap();
    cp.seed(&seed_doc(), t(-100)).unwrap();
    let rw = cp
        .authenticate(&Credentials::ApiToken(RW.into()), None, t(0))
        .unwrap();
    let before = cp.commit_stats();
    let n_before = lock(&entered).len();

    // A's commit takes 300 ms; B is queued while it runs, so B waits for the rest of it.
    delay_ms.store(300, std::sync::atomic::Ordering::Relaxed);
    let create = |cidr: &str| {
        let input = CreateBinding::new(V6, cidr, "eu");
        Box::pin(cp.create_binding_async(&rw, ACCT, input, t(0)))
    };
    let mut a = create("2001:db8:a::/48");
    assert!(poll_once(a.as_mut()).is_pending());
    while lock(&entered).len() == n_before {
        std::thread::yield_now();
    }
    let a_started = lock(&entered)[n_before];
    let mut b = create("2001:db8:b::/48");
    assert!(poll_once(b.as_mut()).is_pending());
    let b_queued_by = std::time::Instant::now();
    delay_ms.store(0, std::sync::atomic::Ordering::Relaxed);
    block_on(a).unwrap();
    block_on(b).unwrap();

    let after = cp.commit_stats();
    let count = |buckets: &[u64]| buckets.iter().sum::<u64>();
    // Two operations in two batches (B was queued after A's batch was taken).
    assert_eq!(after.commits - before.commits, 2);
    assert_eq!(after.batches - before.batches, 2);
    assert_eq!(
        count(&after.wait_buckets) - count(&before.wait_buckets),
        2,
        "one wait per committed operation"
    );
    assert_eq!(
        count(&after.duration_buckets) - count(&before.duration_buckets),
        2
    );
    // B waited at least until A's commit ended; A's commit itself took its 300 ms.
    let b_waited_at_least = (a_started + Duration::from_millis(300)) - b_queued_by;
    let waited = after.wait_sum - before.wait_sum;
    assert!(
        waited >= b_waited_at_least,
        "waits {waited:?}, B alone at least {b_waited_at_least:?}"
    );
    let committing = after.duration_sum - before.duration_sum;
    assert!(committing >= Duration::from_millis(300), "{committing:?}");
    // The long wait lands in a bucket past 50 ms (unless the test thread itself stalled
    // 250 ms between seeing A start and queueing B, which the bound above allows for).
    let past_50ms = crate::latency_bucket(Duration::from_millis(50)) + 1;
    let slow_waits: u64 = (past_50ms..after.wait_buckets.len())
        .map(|i| after.wait_buckets[i] - before.wait_buckets[i])
        .sum();
    if b_waited_at_least > Duration::from_millis(50) {
        assert_eq!(slow_waits, 1, "{:?}", after.wait_buckets);
    }
}
