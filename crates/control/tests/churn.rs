//! Churn: creating and deleting many bindings does not make the store or the memory grow
//! without bound. Once the clock passes the propagation delay plus the tombstone
//! retention, a purge leaves exactly the live bindings and the tombstones still inside
//! the window, in memory and in the database's rows; a reopened store agrees; and the
//! change feed refuses a reader from before the purge instead of giving it a diff that
//! misses deletions.

use inregion_control::*;
use std::time::Duration;

mod common;

use common::{seed, ACCT, PREFIX};

fn config() -> ControlConfig {
    ControlConfig {
        propagation_delay: Duration::from_secs(60),
        tombstone_retention: Duration::from_secs(600),
        ..ControlConfig::default()
    }
}

fn rows(path: &std::path::Path) -> u64 {
    // A second connection: SQLite allows readers beside the store's writer.
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT count(*) FROM bindings", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

#[test]
fn purged_tombstones_leave_memory_and_rows_bounded_by_live_bindings_and_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.db");
    let cp = ControlPlane::open_sqlite(&path, config()).unwrap();
    let p = Principal::system();
    let t0 = Timestamp::from_secs(1_800_000_000);
    cp.seed(&seed(), t0).unwrap();
    let mut now = t0;
    let mut live: Vec<BindingId> = Vec::new();
    let mut n = 0u32;
    // 20 rounds of one minute: create 60, delete 50 of the oldest live ones.
    for _ in 0..20 {
        for _ in 0..60 {
            n += 1;
            let cidr = format!("2001:db8:{:x}::/48", n);
            let b = cp
                .create_binding(&p, ACCT, CreateBinding::new(PREFIX, &cidr, "eu"), now)
                .unwrap();
            live.push(b.result.id);
        }
        for id in live.drain(..50) {
            cp.delete_binding(&p, ACCT, &id.to_string(), now).unwrap();
        }
        now = now.plus(Duration::from_secs(60));
        cp.purge_tombstones(now).unwrap();
    }
    // Deleted at minute k (0..=19), gone at k + 1, purged once k + 11 <= now. At minute
    // 20 the deletions of minutes 10..=19 are still inside the window.
    let kept_tombstones = 10 * 50;
    let records = cp.changes_since(cp.purged_through()).unwrap().bindings;
    let stored = cp
        .dump()
        .records
        .iter()
        .filter(|r| matches!(r, Change::Binding(_)))
        .count();
    assert_eq!(live.len(), 200);
    assert_eq!(stored, live.len() + kept_tombstones);
    assert_eq!(rows(&path), stored as u64);
    assert!(records.len() <= stored);
    let feed_reader_from_the_start = cp.changes_since(0);
    assert!(matches!(
        feed_reader_from_the_start,
        Err(FeedError::TooFarBehind { since: 0, .. })
    ));

    // Past every window: only the live bindings are left, here and after a reopen.
    now = now.plus(Duration::from_secs(3600));
    let purged = cp.purge_tombstones(now).unwrap();
    assert_eq!(purged, kept_tombstones);
    let dump = cp.dump();
    drop(cp);
    assert_eq!(rows(&path), live.len() as u64);
    let again = ControlPlane::open_sqlite(&path, config()).unwrap();
    assert_eq!(again.dump(), dump);
    assert_eq!(again.purged_through(), dump.purged_through);
    for id in &live {
        assert!(again.binding_record(id).is_some_and(|b| b.is_live()));
    }
    // A reader at the purge horizon still gets correct diffs: one new change.
    let v = again.version();
    let b = again
        .create_binding(
            &p,
            ACCT,
            CreateBinding::new(PREFIX, "2001:db8:ffff::/48", "us"),
            now,
        )
        .unwrap();
    let cs = again.changes_since(v).unwrap();
    assert_eq!(cs.bindings.len(), 1);
    assert_eq!(cs.bindings[0].id, b.result.id);
}
