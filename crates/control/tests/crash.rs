//! Crash test: a child process (this test binary, re-run on the ignored `child_writer`
//! test with an environment variable) creates bindings from several threads as fast as it
//! can and prints `ACK <id>` after each acknowledged write. The parent kills it with
//! SIGKILL at a random moment, reopens the database and checks that every acknowledged
//! binding is there and that SQLite reports the file sound (`PRAGMA integrity_check`).
//! Three rounds on the same database, so recovery after a crash is crashed again.
//!
//! What this proves and what it does not: SIGKILL ends the process at an arbitrary point,
//! including in the middle of a frame of the commit log or of an SQLite transaction, so it
//! checks atomicity, that an acknowledgement is only sent once the batch is in the log,
//! and the recovery that applies the log's last seconds (which SQLite has not received
//! yet when the kill lands) through a plain `SqliteStore::open`. It does not cut the
//! power: that each frame is fsynced before it is acknowledged is checked by reading the
//! code (`store::log::Segment::append`), not by this test.

use inregion_control::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ACCT: &str = "0123456789abcdef0123456789abcdef";
const PREFIX: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ENV: &str = "INREGION_CRASH_DB";

fn seed() -> SeedConfig {
    SeedConfig::from_toml(&format!(
        r#"
[[accounts]]
id = "{ACCT}"
entitlements = ["regional_services", "regional_services_byoip"]
[[prefixes]]
account = "{ACCT}"
id = "{PREFIX}"
cidr = "2001:db8::/32"
asn = 64496
"#
    ))
    .unwrap()
}

/// The child: not a test on its own (ignored); the parent runs it with `--ignored`.
#[test]
#[ignore = "helper process for crash_recovery_keeps_every_acknowledged_write"]
fn child_writer() {
    let Ok(path) = std::env::var(ENV) else {
        return;
    };
    let cp =
        std::sync::Arc::new(ControlPlane::open_sqlite(&path, ControlConfig::default()).unwrap());
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
fn crash_recovery_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let mut acked_total: Vec<String> = Vec::new();
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ACK ").map(str::to_owned))
                .collect::<Vec<_>>()
        });
        // Wait for the first acknowledgement so that the kill lands mid-stream, then a
        // random 50..650 ms more.
        let start = Instant::now();
        while !path.exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(300 + rng % 600));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        assert!(
            !acked.is_empty(),
            "round {round}: the child acknowledged nothing"
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
                "round {round}: acknowledged binding {id} is missing"
            );
        }
        // Unacknowledged but committed writes may exist (killed between COMMIT and the
        // print); never fewer than acknowledged.
        assert!(live as usize >= acked_total.len());
        // Versions: one per committed operation, consecutive from the seed's.
        let versions: std::collections::BTreeSet<u64> = cp
            .changes_since(0)
            .bindings
            .iter()
            .map(|b| b.version)
            .collect();
        assert_eq!(versions.len() as u64, live);
        assert_eq!(versions.iter().next_back().copied(), Some(cp.version()));
        eprintln!(
            "round {round}: {} acknowledged so far, {live} stored",
            acked_total.len()
        );
    }
}
