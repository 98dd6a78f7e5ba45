//! A full disk: writes are refused, nothing acknowledged is lost, and the server writes
//! again once there is room.
//!
//! The child process (this test binary, re-run on the ignored `child_on_a_full_disk`
//! test) runs in a mount namespace of its own (`unshare --user --map-root-user --mount`,
//! no privilege needed) with a 4 MiB tmpfs as its data directory, so that the disk
//! really fills: SQLite meets `ENOSPC` when the WAL cannot grow, at a commit. There it:
//!
//! 1. fills the file system with filler files, leaving 128 KiB;
//! 2. creates bindings one at a time until one is refused, which must be a 5xx saying
//!    the disk is full; every earlier one was acknowledged;
//! 3. checks that the refused write changed nothing (version, the binding absent), that
//!    reads still answer, and that further writes are refused the same way;
//! 4. removes the filler and creates more bindings, which must succeed;
//! 5. closes the store, reopens it, and checks that every acknowledged binding is there,
//!    no refused one is, and SQLite finds the file sound;
//! 6. fills the disk to the last byte and opens the database again: refused with the
//!    file named and the disk said to be full (never "damaged"), then opened once there
//!    is room.
//!
//! The parent only checks the child's exit status and its last line.

use inregion_control::*;
use std::io::Write;
use std::path::Path;
use std::process::Command;

mod common;

use common::{seed, ACCT, PREFIX};

const ENV: &str = "INREGION_DISK_FULL_DIR";
/// The tmpfs's size.
const SIZE: &str = "4m";
/// Room left after the filler: a few commits' worth of WAL frames.
const LEFT: u64 = 128 << 10;

/// Fills `dir` to the last byte (64 KiB files, then 4 KiB and 512 B ones), then removes
/// files from the last written until at least `leave` bytes are free again. Returns the
/// files still there.
fn fill(dir: &Path, leave: u64) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for size in [64 << 10, 4 << 10, 512] {
        let chunk = vec![0x5a_u8; size];
        loop {
            let path = dir.join(format!("filler-{}", files.len()));
            let mut f = std::fs::File::create(&path).unwrap();
            let full = f.write_all(&chunk).and_then(|()| f.sync_all()).is_err();
            files.push(path);
            if full {
                break;
            }
        }
    }
    let mut freed = 0;
    while freed < leave {
        let path = files.pop().unwrap();
        freed += std::fs::metadata(&path).unwrap().len();
        std::fs::remove_file(path).unwrap();
    }
    files
}

fn create(cp: &ControlPlane, i: u32) -> Result<String, CreateBindingError> {
    let cidr = format!("2001:db8:{:x}::/48", i + 1);
    cp.create_binding(
        &Principal::system(),
        ACCT,
        CreateBinding::new(PREFIX, &cidr, "eu"),
        Timestamp::from_secs(1_800_000_000),
    )
    .map(|c| c.result.id.to_string())
}

fn live(cp: &ControlPlane, id: &str) -> bool {
    cp.binding_record(&BindingId::parse(id).unwrap())
        .is_some_and(|b| b.is_live())
}

/// The child: not a test on its own (ignored); the parent runs it with `--ignored`.
#[test]
#[ignore = "helper process for a_full_disk_refuses_writes_loses_nothing_and_recovers"]
fn child_on_a_full_disk() {
    let Ok(dir) = std::env::var(ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let path = dir.join("inregion.sqlite3");
    let cp =
        ControlPlane::open_sqlite_with(&path, Durability::Full, ControlConfig::default()).unwrap();
    cp.seed(&seed(), Timestamp::from_secs(1_800_000_000))
        .unwrap();
    let filler = fill(dir, LEFT);

    // 2. Until the disk refuses a write.
    let mut acked = Vec::new();
    let mut i = 0;
    let refused = loop {
        assert!(i < 10_000, "10,000 writes fitted in {LEFT} bytes");
        match create(&cp, i) {
            Ok(id) => acked.push(id),
            Err(e) => break e,
        }
        i += 1;
    };
    assert!(!acked.is_empty(), "not one write fitted: {refused}");
    let text = refused.to_string();
    assert!(
        refused.http_status() >= 500 && text.contains("full"),
        "a full disk answered {} / {}: {text}",
        refused.http_status(),
        refused.code()
    );

    // 3. Nothing changed; reads answer; the next writes are refused too.
    let version = cp.version();
    let cidr_refused = format!("2001:db8:{:x}::/48", i + 1);
    for j in 0..3 {
        let e = create(&cp, i + j).expect_err("a write on a still-full disk");
        assert!(e.http_status() >= 500, "{e}");
    }
    assert_eq!(cp.version(), version, "a refused write moved the version");
    for id in &acked {
        assert!(live(&cp, id), "acknowledged {id} is not readable");
    }
    let listed = cp.changes_since(0).unwrap().bindings;
    assert_eq!(
        listed.len(),
        acked.len(),
        "the change feed lists refused writes"
    );
    assert!(listed.iter().all(|b| b.cidr.to_string() != cidr_refused));

    // 4. Room again: writes succeed.
    for f in filler {
        std::fs::remove_file(f).unwrap();
    }
    for j in 0..20 {
        acked.push(create(&cp, i + 10 + j).expect("a write once there is room"));
    }

    // 5. Everything acknowledged survives a reopen; the file is sound.
    drop(cp);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
    assert_eq!(store.count_live_bindings().unwrap() as usize, acked.len());
    let cp = ControlPlane::open(Box::new(store), ControlConfig::default()).unwrap();
    for id in &acked {
        assert!(live(&cp, id), "acknowledged {id} lost after a reopen");
    }

    // 6. Started again on a disk that is full to the last byte: refused with the file
    //    named and the disk said to be full, never called damaged (which could lead an
    //    operator to delete a sound database); started once there is room.
    drop(cp);
    let filler = fill(dir, 0);
    let e = SqliteStore::open(&path).expect_err("a database opened on a full disk");
    let msg = e.to_string();
    assert!(
        matches!(e, StoreError::Io { .. })
            && msg.contains("inregion.sqlite3")
            && msg.contains("free some space"),
        "{e:?}: {msg}"
    );
    for f in filler {
        std::fs::remove_file(f).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.count_live_bindings().unwrap() as usize, acked.len());
    drop(store);
    println!("DISK-FULL-START {msg}");
    println!(
        "DISK-FULL-OK {} acknowledged before the disk filled, then refused with {} / {}: \
         {text}",
        acked.len() - 20,
        refused.http_status(),
        refused.code()
    );
}

#[test]
fn a_full_disk_refuses_writes_loses_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // The mount exists only in the child's namespace and ends with it.
    let script = format!(
        "mount -t tmpfs -o size={SIZE},mode=0700 tmpfs \"$1\" && exec \"$2\" --ignored \
         --exact child_on_a_full_disk --nocapture --test-threads=1"
    );
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(dir.path())
        .arg(&exe)
        .env(ENV, dir.path())
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("DISK-FULL-OK"),
        "the child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // libtest prints the child's line after its own "test ... " on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("DISK-FULL-OK"))
        .map_or("", |(_, rest)| rest);
    eprintln!("disk full:{line}");
    let start = stdout
        .lines()
        .find_map(|l| l.split_once("DISK-FULL-START"))
        .map_or("", |(_, rest)| rest);
    eprintln!("started on a full disk:{start}");
}
