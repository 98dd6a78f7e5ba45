//! Crash test: a child process (this test binary, re-run on the ignored `child_writer`
//! test with an environment variable) creates bindings from several threads as fast as it
//! can and prints `ACK <id>` after each acknowledged write. The parent kills it with
//! SIGKILL at a random moment, reopens the database and checks that every acknowledged
//! binding is there and that SQLite reports the file sound (`PRAGMA integrity_check`).
//! Many rounds on the same database, so a database left by a crash is crashed again, in
//! both durability modes: `full` (`synchronous=FULL`) and `process` (`synchronous=NORMAL`,
//! which promises exactly this: an acknowledged write survives a kill of the process).
//!
//! What this proves and what it does not: SIGKILL ends the process at an arbitrary point,
//! including in the middle of an SQLite transaction, so it checks atomicity, that an
//! acknowledgement is only sent once the batch is committed, and SQLite's recovery of
//! its WAL. It does not cut the power: that `full` fsyncs the WAL at every commit is
//! SQLite's documented `synchronous=FULL` behaviour, set and checked by the store's unit
//! tests (`PRAGMA synchronous` reads 2).

use inregion_control::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{feed_versions, seed, ACCT, PREFIX};
const ENV: &str = "INREGION_CRASH_DB";
const ENV_MODE: &str = "INREGION_CRASH_DURABILITY";
/// Kill rounds per durability mode.
const ROUNDS: usize = 8;

/// The child: not a test on its own (ignored); the parent runs it with `--ignored`.
#[test]
#[ignore = "helper process for crash_recovery_keeps_every_acknowledged_write"]
fn child_writer() {
    let Ok(path) = std::env::var(ENV) else {
        return;
    };
    let durability = match std::env::var(ENV_MODE).as_deref() {
        Ok("process") => Durability::Process,
        _ => Durability::Full,
    };
    let cp = std::sync::Arc::new(
        ControlPlane::open_sqlite_with(&path, durability, ControlConfig::default()).unwrap(),
    );
    let now = Timestamp::from_secs(1_800_000_000);
    cp.seed(&seed(), now).unwrap();
    let p = Principal::system();
    let threads: Vec<_> = (0..4u32)
        .map(|th| {
            let cp = cp.clone();
            let p = p.clone();
            std::thread::spawn(move || {
                let mut x: u32 = std::process::id().wrapping_mul(2_654_435_761) ^ (th << 28);
                loop {
                    // xorshift: a different /64 each time; a rare collision is a 409.
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let cidr = format!("2001:db8:{:x}:{:x}::/64", x >> 16, x & 0xffff);
                    match cp.create_binding(&p, ACCT, CreateBinding::new(PREFIX, &cidr, "eu"), now)
                    {
                        Ok(c) => {
                            let out = std::io::stdout();
                            let mut out = out.lock();
                            writeln!(out, "ACK {}", c.result.id).unwrap();
                            out.flush().unwrap();
                        }
                        Err(e) => assert_eq!(e.code(), 1108, "{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn crash_recovery_keeps_every_acknowledged_write_full() {
    crash_rounds("full");
}

#[test]
fn crash_recovery_keeps_every_acknowledged_write_process() {
    crash_rounds("process");
}

fn crash_rounds(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let mut acked_total: Vec<String> = Vec::new();
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, &path)
            .env(ENV_MODE, mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("ACK ") {
                    if acked.is_empty() {
                        let _ = first_tx.send(());
                    }
                    acked.push(id.to_owned());
                }
            }
            acked
        });
        // Wait for the first acknowledgement so that the kill lands mid-stream, then a
        // random 20..400 ms more.
        first_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child acknowledged nothing within 30 s");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(20 + rng % 380));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        assert!(
            !acked.is_empty(),
            "{mode} round {round}: the child acknowledged nothing"
        );
        acked_total.extend(acked);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
        let live = store.count_live_bindings().unwrap();
        let cp = ControlPlane::open(Box::new(store), ControlConfig::default()).unwrap();
        for id in &acked_total {
            let id = BindingId::parse(id).unwrap();
            assert!(
                cp.binding_record(&id).is_some_and(|b| b.is_live()),
                "{mode} round {round}: acknowledged binding {id} is missing"
            );
        }
        // Unacknowledged but committed writes may exist (killed between COMMIT and the
        // print); never fewer than acknowledged.
        assert!(live as usize >= acked_total.len());
        // Versions: one per committed operation, consecutive from the seed's.
        let versions = feed_versions(&cp);
        assert_eq!(versions.len() as u64, live);
        assert_eq!(versions.iter().next_back().copied(), Some(cp.version()));
        eprintln!(
            "{mode} round {round}: {} acknowledged so far, {live} stored",
            acked_total.len()
        );
    }
}
