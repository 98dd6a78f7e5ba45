//! The etcd test harness itself (tests/etcd_support): a 3-member cluster starts, a
//! put/get through the JSON gateway works, it keeps quorum with 2 of 3 members and
//! refuses writes with 1 of 3, a member killed with -9 or stopped comes back on its data
//! directory, and members never outlive the process that started them. Also: a replica's
//! periodic re-read repairs what its watch missed.

/// The control plane tests' account and prefix.
#[path = "../crates/control/tests/common/mod.rs"]
mod common;
mod etcd_support;

use etcd_support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

#[track_caller]
fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        assert!(Instant::now() < deadline, "{what} (pid {pid}) still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn base64_round_trips() {
    for s in [
        "",
        "f",
        "fo",
        "foo",
        "foob",
        "fooba",
        "foobar",
        "/t-1/\u{ff}",
    ] {
        assert_eq!(unb64(&b64(s.as_bytes())), s.as_bytes());
    }
    assert_eq!(b64(b"foobar"), "Zm9vYmFy");
    assert_eq!(b64(b"fooba"), "Zm9vYmE=");
    assert_eq!(b64(b"foob"), "Zm9vYg==");
    assert_eq!(prefix_end(b"/a/"), b"/a0");
    assert_eq!(prefix_end(&[b'a', 0xff]), b"b");
}

#[test]
fn a_cluster_serves_survives_a_member_and_restarts_it() {
    let t0 = Instant::now();
    let c = Cluster::start(3);
    let v = etcd_version(&etcd_binary()).unwrap();
    eprintln!(
        "etcd {v}, 3 members healthy in {:?}: {}",
        t0.elapsed(),
        c.url()
    );
    assert!(c.url().starts_with("etcd://127.0.0.1:"));
    assert_eq!(c.endpoints().split(',').count(), 3);
    let pids: Vec<u32> = (0..3).map(|i| c.pid(i).expect("running")).collect();

    // A write through one member is read through every other.
    let p = unique_prefix();
    assert!(
        p.starts_with("/t-") && p.ends_with('/') && p.len() == 20,
        "{p}"
    );
    let k = format!("{p}k1");
    let r1 = c.put(0, &k, "v1").unwrap();
    for i in 0..3 {
        assert_eq!(c.get(i, &k).unwrap().as_deref(), Some("v1"), "member {i}");
    }
    assert_eq!(c.get(1, &format!("{p}absent")).unwrap(), None);

    // Kill the leader with -9: the other two keep quorum and take writes.
    let leader = c.leader().expect("a leader");
    c.kill9(leader);
    assert!(c.pid(leader).is_none());
    assert!(gone(pids[leader]));
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let deadline = Instant::now() + Duration::from_secs(15);
    let r2 = loop {
        match c.put(a, &format!("{p}k2"), "v2") {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "no write with 2 of 3: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert!(r2 > r1);
    assert_eq!(c.get(b, &format!("{p}k2")).unwrap().as_deref(), Some("v2"));
    let l2 = c.leader().expect("a new leader");
    assert_ne!(l2, leader);

    // Stop a second one (SIGTERM): 1 of 3 has no quorum, a write does not succeed.
    c.stop(b);
    assert!(
        c.put(a, &format!("{p}k3"), "v3").is_err(),
        "a write with 1 of 3"
    );

    // Both come back on their data directories with everything committed.
    c.restart(leader);
    c.restart(b);
    for i in 0..3 {
        c.wait_healthy(i, Duration::from_secs(30)).unwrap();
        assert_eq!(c.get(i, &k).unwrap().as_deref(), Some("v1"), "member {i}");
        assert_eq!(
            c.get(i, &format!("{p}k2")).unwrap().as_deref(),
            Some("v2"),
            "member {i}"
        );
    }
    let r4 = c.put(leader, &format!("{p}k4"), "v4").unwrap();
    assert!(r4 > r2);
    let all = c.range_prefix(b, &p).unwrap();
    let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&k.as_str()) && keys.contains(&format!("{p}k4").as_str()));

    // Drop kills every member.
    let now: Vec<u32> = (0..3).map(|i| c.pid(i).unwrap()).collect();
    let dir = c.data_dir(0).to_owned();
    drop(c);
    for pid in now {
        wait_gone(pid, "etcd member after drop");
    }
    assert!(!dir.exists(), "the temporary directory is removed");
    eprintln!("whole test {:?}", t0.elapsed());
}

/// The child half of [`members_die_with_a_killed_test_process`]: starts the shared
/// cluster, prints the pids, and waits to be killed.
#[test]
fn child_process_holding_a_cluster() {
    if std::env::var_os("INREGION_ETCD_CHILD").is_none() {
        return;
    }
    let c = shared_cluster();
    let pids: Vec<String> = (0..c.len())
        .map(|i| c.pid(i).unwrap().to_string())
        .collect();
    println!("PIDS {} DIR {}", pids.join(","), c.data_dir(0).display());
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn members_die_with_a_killed_test_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_holding_a_cluster",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("INREGION_ETCD_CHILD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let (pids, dir) = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child ended without a cluster"
        );
        // libtest prints `test NAME ... ` before the test's own output, on the same line.
        if let Some(rest) = line.trim().split_once("PIDS ").map(|(_, r)| r) {
            let (p, d) = rest.split_once(" DIR ").unwrap();
            let pids: Vec<u32> = p.split(',').map(|s| s.parse().unwrap()).collect();
            break (pids, std::path::PathBuf::from(d));
        }
    };
    assert_eq!(pids.len(), 3);
    for &p in &pids {
        assert!(!gone(p), "member {p} runs");
    }
    assert!(dir.exists());
    // SIGKILL: no destructor runs in the child; the pipes close with it.
    child.kill().unwrap();
    child.wait().unwrap();
    for &p in &pids {
        wait_gone(p, "etcd member of a killed test process");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.exists() {
        assert!(Instant::now() < deadline, "{} left behind", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A replica whose watch missed a change (here: a record deleted behind its back, an
/// event without `meta` that the watch ignores) is repaired by the periodic re-read,
/// in what it serves *and* in the state its writes are checked against: re-creating
/// the deleted binding's CIDR then succeeds instead of answering "duplicate".
#[test]
fn the_periodic_re_read_repairs_reads_and_writes() {
    use common::{ACCT, PREFIX};
    use inregion_control::*;
    let c = shared_cluster();
    let prefix = unique_prefix();
    let mut cfg = EtcdConfig::parse(&c.url())
        .unwrap()
        .with_prefix(&prefix)
        .unwrap();
    cfg.resync_interval = Duration::from_millis(200);
    let cp = ControlPlane::open_etcd(cfg, ControlConfig::default()).unwrap();
    let seed = common::seed();
    let t0 = Timestamp::from_secs(1_800_000_000);
    cp.seed(&seed, t0).unwrap();
    let item = [(
        PREFIX.to_owned(),
        "2001:db8:1::/48".to_owned(),
        "eu".to_owned(),
    )];
    let id = cp.bulk_create_bindings(ACCT, &item, t0).unwrap()[0].to_string();
    // The same CIDR again is a duplicate while the binding lives.
    assert!(cp.bulk_create_bindings(ACCT, &item, t0).is_err());
    let keys = c.range_prefix(0, &prefix).unwrap();
    let key = keys
        .iter()
        .map(|(k, _)| k)
        .find(|k| k.ends_with(&format!("/b/{id}")))
        .unwrap_or_else(|| panic!("no key of binding {id} among {keys:?}"));
    c.gateway(
        0,
        "/v3/kv/deleterange",
        &serde_json::json!({ "key": b64(key.as_bytes()) }),
    )
    .unwrap();
    let p = Principal::system();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cp.replica_stats().unwrap().repairs == 0 {
        assert!(Instant::now() < deadline, "no repair within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        cp.get_binding(&p, ACCT, &id).is_err(),
        "the repaired state serves no deleted binding"
    );
    let again = cp.bulk_create_bindings(ACCT, &item, t0);
    assert!(
        again.is_ok(),
        "the writer's state was repaired too: {:?}",
        again.err()
    );
}

/// Each replica process asks for turns under a `want/` key of its own: keys not
/// rewritten for an hour are deleted by the next replica to start, fresh ones are kept.
#[test]
fn a_starting_replica_deletes_stale_want_keys() {
    use inregion_control::*;
    let c = shared_cluster();
    let prefix = unique_prefix();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale = format!("{prefix}want/00000000000000ab");
    let fresh = format!("{prefix}want/00000000000000cd");
    c.put(0, &stale, &(now - 7200).to_string()).unwrap();
    c.put(0, &fresh, &(now - 60).to_string()).unwrap();
    let cfg = EtcdConfig::parse(&c.url())
        .unwrap()
        .with_prefix(&prefix)
        .unwrap();
    let _cp = ControlPlane::open_etcd(cfg, ControlConfig::default()).unwrap();
    assert_eq!(c.get(0, &stale).unwrap(), None, "the stale key is deleted");
    assert!(c.get(0, &fresh).unwrap().is_some(), "the fresh key is kept");
}
