//! A disk that fails an fsync at a commit: the write's outcome is unknown, so writes halt
//! until a restart, and the restart settles it.
//!
//! Why: when SQLite's fsync of the WAL fails at COMMIT, it reports the error, but the
//! commit's frames are already written. They are not yet in the WAL index, so the next
//! commit would overwrite them, and the write would be gone; a crash before that next
//! commit leaves them, and recovery replays them as committed. Measured here before the
//! halt existed: the write answered "disk I/O error" was in the database after a
//! `kill -9`. (And on Linux a failed fsync may drop the pages it could not write, so
//! trying the fsync again proves nothing: PostgreSQL and etcd stop on it.)
//!
//! The child process (this test binary, re-run on the ignored `child_with_a_failing_disk`
//! test) runs with `LD_PRELOAD` of a shim (`tests/failsync/failsync.c`, compiled here
//! with the system C compiler) that makes `fsync` and `fdatasync` fail with `EIO` while a
//! flag file exists. It:
//!
//! 1. creates binding A (acknowledged);
//! 2. raises the flag and creates B: refused with [`StoreError::DiskFailed`], whose
//!    message says the outcome is unknown;
//! 3. lowers the flag (the disk works again) and creates C, deletes A: both refused with
//!    the same error, nothing changes, reads answer, [`ControlPlane::halted`] says why;
//! 4. prints `READY` and waits to be killed (a crash: nothing is closed cleanly).
//!
//! The parent then reopens the database without the shim, as a restart would: SQLite
//! finds it sound, A is there, C is not, the versions are consecutive (B's is there
//! exactly when B is), and writes go on. Whether B survived is printed (with this SQLite,
//! it does: its frames were in the WAL).

use inregion_control::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{feed_versions, seed, ACCT, PREFIX};

const ENV_DB: &str = "INREGION_FSYNC_ERROR_DB";
/// Read by the shim: fsyncs fail while this file exists.
const ENV_FLAG: &str = "FAILSYNC_FLAG";

const A: &str = "2001:db8:a::/48";
const B: &str = "2001:db8:b::/48";
const C: &str = "2001:db8:c::/48";

fn now() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

/// Asserts that `e` is the halt's error: the disk failed, the outcome is unknown.
fn assert_disk_failed(what: &str, e: &dyn ApiError, store: Option<&StoreError>) {
    assert!(
        matches!(store, Some(StoreError::DiskFailed { .. })),
        "{what}: not a disk failure: {e}"
    );
    assert_eq!((e.http_status(), e.code()), (500, 1000), "{what}: {e}");
    assert_eq!(e.should_retry(), Some(false), "{what}: {e}");
    let text = e.to_string();
    assert!(
        text.contains("may or may not have taken effect"),
        "{what}: {text}"
    );
    assert!(text.contains("until the server restarts"), "{what}: {text}");
}

/// The child: not a test on its own (ignored); the parent runs it with `--ignored`.
#[test]
#[ignore = "helper process for a_failed_fsync_halts_writes_until_a_restart_settles_them"]
fn child_with_a_failing_disk() {
    let Ok(path) = std::env::var(ENV_DB) else {
        return;
    };
    let flag = std::env::var(ENV_FLAG).expect("the flag's path");
    let cp =
        ControlPlane::open_sqlite_with(&path, Durability::Full, ControlConfig::default()).unwrap();
    cp.seed(&seed(), now()).unwrap();
    let p = Principal::system();
    let a = cp
        .create_binding(&p, ACCT, CreateBinding::new(PREFIX, A, "eu"), now())
        .expect("A, before the disk fails");
    let version = cp.version();

    std::fs::write(&flag, b"").unwrap();
    // The shim is in force (an LD_PRELOAD that did not load would make this test vacuous).
    let probe = Path::new(&path).with_extension("probe");
    let synced = std::fs::File::create(&probe).and_then(|f| f.sync_all());
    assert_eq!(
        synced.map_err(|e| e.raw_os_error()),
        Err(Some(rustix::io::Errno::IO.raw_os_error())),
        "the fsync shim is not loaded"
    );
    let b = cp.create_binding(&p, ACCT, CreateBinding::new(PREFIX, B, "eu"), now());
    std::fs::remove_file(&flag).unwrap();
    let e = b.expect_err("B, while fsync fails");
    let store = match &e {
        CreateBindingError::Store(s) => Some(s),
        _ => None,
    };
    assert_disk_failed("B", &e, store);

    // The disk works again; the control plane still refuses to write.
    let c = cp.create_binding(&p, ACCT, CreateBinding::new(PREFIX, C, "eu"), now());
    let e = c.expect_err("C, after the failure");
    let store = match &e {
        CreateBindingError::Store(s) => Some(s),
        _ => None,
    };
    assert_disk_failed("C", &e, store);
    let d = cp.delete_binding(&p, ACCT, &a.result.id.to_string(), now());
    let e = d.expect_err("deleting A, after the failure");
    let store = match &e {
        DeleteBindingError::Store(s) => Some(s),
        _ => None,
    };
    assert_disk_failed("delete A", &e, store);
    assert!(
        matches!(cp.halted(), Some(StoreError::DiskFailed { .. })),
        "{:?}",
        cp.halted()
    );
    assert_eq!(cp.version(), version, "a refused write changed the version");
    let listed = cp
        .list_bindings(&p, ACCT, &PageRequest::default())
        .expect("reads go on");
    let cidrs: Vec<String> = listed.items.iter().map(|b| b.cidr.to_string()).collect();
    assert_eq!(cidrs, [A]);
    println!("READY");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_failed_fsync_halts_writes_until_a_restart_settles_them() {
    let dir = tempfile::tempdir().unwrap();
    let shim = dir.path().join("libfailsync.so");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/failsync/failsync.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&shim)
        .arg(&source)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} ({e}): install one (cc)"));
    assert!(built.success(), "{cc} could not build {}", source.display());

    let path = dir.path().join("fsync.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_with_a_failing_disk",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DB, &path)
        .env(ENV_FLAG, dir.path().join("failing"))
        .env("LD_PRELOAD", &shim)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("READY"));
    child.kill().unwrap(); // SIGKILL: a crash, nothing closed
    let status = child.wait().unwrap();
    assert!(
        ready,
        "the child failed before READY ({status}); see its output above"
    );

    // The restart.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    let cp = ControlPlane::open(Box::new(store), ControlConfig::default()).unwrap();
    assert!(cp.halted().is_none());
    let live: Vec<String> = cp
        .binding_records()
        .iter()
        .filter(|b| b.is_live())
        .map(|b| b.cidr.to_string())
        .collect();
    assert!(
        live.contains(&A.to_string()),
        "A was acknowledged: {live:?}"
    );
    assert!(!live.contains(&C.to_string()), "C was refused: {live:?}");
    let b_survived = live.contains(&B.to_string());
    let versions = feed_versions(&cp);
    assert_eq!(versions.len(), live.len(), "{versions:?} {live:?}");
    assert_eq!(versions.last().copied(), Some(cp.version()));
    eprintln!(
        "after the crash and restart: B (answered \"outcome unknown\") survived: {b_survived}"
    );
    let p = Principal::system();
    cp.create_binding(&p, ACCT, CreateBinding::new(PREFIX, C, "eu"), now())
        .expect("writes go on after the restart");
}
