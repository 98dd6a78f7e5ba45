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
