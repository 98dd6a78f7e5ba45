use super::super::fixtures::{account, binding, prefix};
use super::*;
use crate::state::State;
use inregion_model::PrefixId;
use std::time::Duration;

fn pragma(s: &SqliteStore, name: &str) -> i64 {
    s.conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
}

/// Under a steady stream of commits the checkpointer restarts the WAL (it does not
/// grow with the number of commits), and nothing committed is lost.
#[test]
fn checkpointer_keeps_the_wal_bounded_under_steady_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let wal = dir.path().join("s.db-wal");
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        pragma(&s, "wal_autocheckpoint"),
        0,
        "no checkpoint inside COMMIT"
    );
    let a = account();
    let p = prefix(&a);
    s.commit(&[&Commit {
        version: 1,
        changes: vec![Change::Account(a.clone()), Change::Prefix(p.clone())],
    }])
    .unwrap();
    let commits = 600u64;
    let mut largest = 0;
    for i in 0..commits {
        let cidr = format!("203.0.{}.{}/32", 112 + i / 256, i % 256);
        let b = binding(&a, &p, &cidr, i + 2);
        s.commit(&[&Commit {
            version: i + 2,
            changes: vec![Change::Binding(b)],
        }])
        .unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        std::thread::sleep(Duration::from_millis(1));
    }
    // Every commit appends at least two 4 KiB frames (the binding's page and the
    // version row's page): without restarts the WAL would exceed 4.9 MB.
    let unbounded = commits * 2 * 4096;
    assert!(
        largest < unbounded / 3,
        "WAL reached {largest} bytes for {commits} commits (never restarted?)"
    );
    assert_eq!(s.count_live_bindings().unwrap(), commits);
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.count_live_bindings().unwrap(), commits);
    assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
}

#[test]
fn pragmas_migrations_round_trip_and_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma(&s, "synchronous"), 2, "synchronous must be FULL");
    let a = account();
    let p = prefix(&a);
    let b = binding(&a, &p, "203.0.113.0/25", 1);
    let c1 = Commit {
        version: 1,
        changes: vec![
            Change::Account(a.clone()),
            Change::Prefix(p.clone()),
            Change::Binding(b.clone()),
        ],
    };
    s.commit(&[&c1]).unwrap();
    // A second live binding on the same (prefix, cidr) violates the partial unique
    // index, and the whole batch is rolled back.
    let dup = binding(&a, &p, "203.0.113.0/25", 2);
    let c2 = Commit {
        version: 2,
        changes: vec![Change::Binding(dup.clone())],
    };
    assert!(s.commit(&[&c2]).is_err());
    // Once the first is a tombstone, the CIDR is free.
    let mut gone = b.clone();
    gone.deleted_at = Some(Timestamp::from_secs(4));
    gone.gone_at = Some(Timestamp::from_secs(5));
    gone.version = 2;
    let c2 = Commit {
        version: 2,
        changes: vec![Change::Binding(gone.clone()), Change::Binding(dup.clone())],
    };
    s.commit(&[&c2]).unwrap();
    // Tombstone columns must be set together (CHECK).
    let mut half = dup.clone();
    half.deleted_at = Some(Timestamp::from_secs(9));
    assert!(s
        .commit(&[&Commit {
            version: 3,
            changes: vec![Change::Binding(half)]
        }])
        .is_err());
    // A binding on an unknown prefix violates the foreign key.
    let mut orphan = binding(&a, &p, "203.0.113.128/25", 3);
    orphan.prefix_id = PrefixId::random();
    assert!(s
        .commit(&[&Commit {
            version: 3,
            changes: vec![Change::Binding(orphan)]
        }])
        .is_err());
    assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
    assert_eq!(s.count_live_bindings().unwrap(), 1);
    drop(s);
    // Reopen: migrations are idempotent, everything is back.
    let mut s = SqliteStore::open(&path).unwrap();
    let l = s.load().unwrap();
    assert_eq!(l.version, 2);
    let mut want = State::default();
    want.apply_commit(&c1);
    want.apply_commit(&c2);
    let mut got = State::default();
    for r in l.records {
        got.apply(r);
    }
    got.version = l.version;
    assert_eq!(got.dump(), want.dump());
}

#[test]
fn durability_sets_the_sync_level_and_process_mode_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = SqliteStore::open_with(&path, Durability::Process).unwrap();
    assert_eq!(pragma(&s, "synchronous"), 1, "NORMAL");
    let a = account();
    let p = prefix(&a);
    let c = Commit {
        version: 1,
        changes: vec![
            Change::Account(a.clone()),
            Change::Prefix(p.clone()),
            Change::Binding(binding(&a, &p, "203.0.113.0/25", 1)),
        ],
    };
    s.commit(&[&c]).unwrap();
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma(&s, "synchronous"), 2, "FULL again by default");
    assert_eq!(s.count_live_bindings().unwrap(), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::open(&path).unwrap());
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(e, StoreError::NewerSchema { found: 99, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("s.db"), "{e}");
}

/// A file that is not a database, a damaged database, or another program's database
/// is refused with the file named, and left as it was.
#[test]
fn damaged_or_foreign_files_are_refused_not_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let e = SqliteStore::open(&garbage).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("garbage.db"), "{e}");
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a; 8192]);

    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let e = SqliteStore::open(&foreign).unwrap_err();
    assert!(e.to_string().contains("not an inregion database"), "{e}");

    // A real database with a page overwritten in the middle of a table.
    let path = dir.path().join("damaged.db");
    let mut s = SqliteStore::open(&path).unwrap();
    let a = account();
    let p = prefix(&a);
    let mut changes = vec![Change::Account(a.clone()), Change::Prefix(p.clone())];
    for i in 0..400u32 {
        let cidr = format!("203.0.113.{}/32", i % 256);
        let mut b = binding(&a, &p, &cidr, 1);
        if i >= 256 {
            b.deleted_at = Some(Timestamp::from_secs(4));
            b.gone_at = Some(Timestamp::from_secs(5));
        }
        changes.push(Change::Binding(b));
    }
    s.commit(&[&Commit {
        version: 1,
        changes,
    }])
    .unwrap();
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 4096, "{}", bytes.len());
    for b in &mut bytes[5 * 4096..6 * 4096] {
        *b = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
}

/// The key file: created 0600 with the database, required once secrets depend on it,
/// refused when it belongs to another database, and locked while the store is open.
#[test]
fn the_key_file_belongs_to_its_database_and_locks_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let key_path = dir.path().join("k.db-key");
    let s = SqliteStore::open(&path).unwrap();
    let key = s.token_key();
    for f in [&path, &key_path] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    // A second open of the same database while the first holds it.
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(e.to_string().contains("another process"), "{e}");
    drop(s);
    assert_eq!(SqliteStore::open(&path).unwrap().token_key(), key);

    // Another database's key.
    let other = dir.path().join("o.db");
    drop(SqliteStore::open(&other).unwrap());
    std::fs::copy(dir.path().join("o.db-key"), &key_path).unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("does not belong"), "{e}");

    // No key at all.
    std::fs::remove_file(&key_path).unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(e.to_string().contains("restore the key file"), "{e}");

    // An existing database readable by others is narrowed to the owner.
    let loose = dir.path().join("loose.db");
    drop(SqliteStore::open(&loose).unwrap());
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqliteStore::open(&loose).unwrap());
    let mode = std::fs::metadata(&loose).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// A batch with a clear runs with foreign keys off (so that SQLite truncates) and is
/// checked as a whole before it commits: a dangling reference refuses it all.
#[test]
fn a_clearing_batch_still_refuses_dangling_references() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path().join("f.db")).unwrap();
    let a = account();
    let p = prefix(&a);
    let b = binding(&a, &p, "203.0.113.0/25", 1);
    s.commit(&[&Commit {
        version: 1,
        changes: vec![
            Change::Account(a.clone()),
            Change::Prefix(p.clone()),
            Change::Binding(b),
        ],
    }])
    .unwrap();
    let orphan = binding(&a, &p, "203.0.113.128/25", 2);
    let e = s
        .commit(&[&Commit {
            version: 2,
            changes: vec![
                Change::Clear,
                Change::Account(a.clone()),
                Change::Binding(orphan),
            ],
        }])
        .unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    assert_eq!(
        s.count_binding_rows().unwrap(),
        1,
        "nothing of the batch applied"
    );
    assert_eq!(pragma(&s, "foreign_keys"), 1, "foreign keys back on");
    // A valid clearing batch commits.
    s.commit(&[&Commit {
        version: 2,
        changes: vec![Change::Clear, Change::Account(a), Change::Prefix(p)],
    }])
    .unwrap();
    assert_eq!(s.count_binding_rows().unwrap(), 0);
    assert_eq!(s.load().unwrap().purged_through, 2);
}

/// Constraint violations are typed as such (not a generic SQLite failure).
#[test]
fn constraint_violations_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path().join("c.db")).unwrap();
    let a = account();
    let p = prefix(&a);
    let b = binding(&a, &p, "203.0.113.0/25", 1);
    let dup = binding(&a, &p, "203.0.113.0/25", 1);
    let e = s
        .commit(&[&Commit {
            version: 1,
            changes: vec![
                Change::Account(a),
                Change::Prefix(p),
                Change::Binding(b),
                Change::Binding(dup),
            ],
        }])
        .unwrap_err();
    assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
    assert!(std::error::Error::source(&e).is_some());
}

/// A schema-3 file (with the bindings' version index) is migrated at open: the index is
/// dropped, the version is the newest, and the rows read as before.
#[test]
fn a_schema_3_file_loses_the_unused_version_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = SqliteStore::open(&path).unwrap();
    let (a, p) = (account(), prefix(&account()));
    s.commit(&[&Commit {
        version: 1,
        changes: vec![
            Change::Account(a.clone()),
            Change::Prefix(p.clone()),
            Change::Binding(binding(&a, &p, "203.0.113.0/25", 1)),
        ],
    }])
    .unwrap();
    let before = State::from_loaded(s.load().unwrap()).dump();
    drop(s);
    // Back to how schema 3 left it.
    let c = Connection::open(&path).unwrap();
    c.execute_batch("CREATE INDEX bindings_version ON bindings (version)")
        .unwrap();
    c.pragma_update(None, "user_version", 3).unwrap();
    drop(c);

    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma(&s, "user_version"), schema::MIGRATIONS.len() as i64);
    let index: i64 = s
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'bindings_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 0);
    assert_eq!(State::from_loaded(s.load().unwrap()).dump(), before);
}

/// A version SQLite's integers cannot hold (past `i64::MAX`) is refused by the commit
/// that carries it, and nothing of that commit is written. It used to be written wrapped
/// to a negative number, which the next start then refused to read: the database would
/// not open again.
#[test]
fn a_version_past_i64_is_refused_at_commit_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = SqliteStore::open(&path).unwrap();
    let a = account();
    let p = prefix(&a);
    let c1 = Commit {
        version: 1,
        changes: vec![
            Change::Account(a.clone()),
            Change::Prefix(p.clone()),
            Change::Binding(binding(&a, &p, "203.0.113.0/25", 1)),
        ],
    };
    s.commit(&[&c1]).unwrap();
    let big = Commit {
        version: 2,
        changes: vec![Change::Binding(binding(
            &a,
            &p,
            "203.0.113.128/25",
            i64::MAX as u64 + 1,
        ))],
    };
    assert!(matches!(s.commit(&[&big]), Err(StoreError::Sqlite(_))));
    let far = Commit {
        version: u64::MAX,
        changes: vec![Change::Binding(binding(&a, &p, "203.0.113.128/25", 2))],
    };
    assert!(matches!(s.commit(&[&far]), Err(StoreError::Sqlite(_))));
    drop(s);
    let mut s = SqliteStore::open(&path).unwrap();
    let mut want = State::default();
    want.apply_commit(&c1);
    assert_eq!(State::from_loaded(s.load().unwrap()).dump(), want.dump());
    assert_eq!(s.load().unwrap().version, 1);
}
