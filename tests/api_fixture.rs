//! The emulator as a test fixture, over HTTP against the real binary: reset, per-test
//! accounts, snapshots (online, offline, and an older format), and each kind of fault
//! injection rule.
//!
//! `tests/data/snapshot-format1.json` is a format-1 snapshot: the records of
//! `crates/control/tests/fixtures/schema-v1.sqlite` (row bodies as schema version 1 wrote
//! them, plain SHA-256 token digests, no keys), exported from that file with a few lines
//! of Python's `sqlite3` and `json`.

mod api_support;

use api_support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BINDINGS: &str = "/dls/regional_services/prefix_bindings";

fn list(s: &Server) -> Vec<Value> {
    s.dev("GET", &format!("{BINDINGS}?per_page=100"), None)
        .ok(200)
        .as_array()
        .unwrap()
        .clone()
}

/// `POST /__inregion/snapshot` with `body` as it is.
fn restore(s: &Server, body: String) -> Resp {
    s.send(
        s.raw("POST", &format!("{}/__inregion/snapshot", s.base))
            .header("X-Inregion-Admin-Token", ADMIN_TOKEN)
            .body(body),
    )
}

fn cidrs(s: &Server) -> Vec<String> {
    let mut v: Vec<String> = list(s)
        .iter()
        .map(|b| b["cidr"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// What a client sees of the dev account: prefixes, bindings, address maps, regions.
fn world(s: &Server) -> Value {
    let prefixes: Vec<Value> = s
        .dev("GET", "/addressing/prefixes", None)
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!([p["id"], p["cidr"], p["approved"]]))
        .collect();
    json!({
        "prefixes": prefixes,
        "bindings": cidrs(s),
        "maps": s.dev("GET", "/addressing/address_maps", None).ok(200).as_array().unwrap().len(),
        "regions": s.dev("GET", "/dls/regions", None).ok(200).as_array().unwrap().len(),
        "clock_offset": s.admin("GET", "/clock", None).ok(200)["offset_seconds"],
    })
}

#[test]
fn reset_returns_to_a_fresh_start_and_readers_never_see_a_mixture() {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("d");
    let s = Server::start_with(Opts {
        data: Some(&data),
        ..Opts::default()
    });
    let fresh = world(&s);
    for i in 0..80 {
        s.create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "eu");
    }
    s.dev(
        "POST",
        "/addressing/address_maps",
        Some(json!({"description": "m"})),
    )
    .ok(200);
    s.admin("POST", "/clock/advance", Some(json!({"seconds": 60})))
        .ok(200);
    s.admin(
        "POST",
        "/faults",
        Some(json!({"path": "/client/v4/x", "status": 500})),
    )
    .ok(200);
    assert_ne!(world(&s), fresh);

    let r = s.admin("POST", "/reset", None);
    let took = r.ok(200)["took_ms"].as_f64().unwrap();
    assert_eq!(world(&s), fresh, "reset took {took} ms");
    assert_eq!(s.admin("GET", "/faults", None).ok(200), &json!([]));

    // Readers racing resets and restores (each one commit) see the 80 bindings of the
    // snapshot or none, never a part.
    for i in 0..80 {
        s.create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "eu");
    }
    let snap = s.admin("GET", "/snapshot", None).ok(200).to_string();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|sc| {
        let reader = sc.spawn(|| {
            let mut seen = std::collections::BTreeMap::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                *seen.entry(list(&s).len()).or_insert(0u32) += 1;
            }
            seen
        });
        for _ in 0..10 {
            s.admin("POST", "/reset", None).ok(200);
            restore(&s, snap.clone()).ok(200);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(seen.keys().all(|n| *n == 0 || *n == 80), "{seen:?}");
    // The dev token and the config's tokens work after every reset.
    s.call("GET", READ_TOKEN, ACCOUNT, BINDINGS, None).ok(200);
    // A reset is durable: after a restart the state is the reset one.
    s.admin("POST", "/reset", None).ok(200);
    s.stop();
    let again = Server::start_with(Opts {
        data: Some(&data),
        ..Opts::default()
    });
    assert_eq!(world(&again), fresh);
}

#[test]
fn per_test_accounts_are_isolated() {
    let s = Server::start();
    let a = s.admin("POST", "/accounts", None).ok(200).clone();
    let b = s
        .admin(
            "POST",
            "/accounts",
            Some(json!({"family": "ipv4", "name": "b"})),
        )
        .ok(200)
        .clone();
    for k in ["account_id", "token", "prefix_id", "cidr"] {
        assert!(a[k].is_string() && b[k].is_string(), "{a} {b}");
    }
    let (ta, tb) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());
    let (aa, ab) = (
        a["account_id"].as_str().unwrap(),
        b["account_id"].as_str().unwrap(),
    );
    // Each creates a binding in its own prefix.
    let cidr_a = a["cidr"].as_str().unwrap().replace("/48", "/56");
    s.call(
        "POST",
        ta,
        aa,
        BINDINGS,
        Some(json!({"prefix_id": a["prefix_id"], "cidr": cidr_a, "region_key": "eu"})),
    )
    .ok(201);
    let cidr_b = b["cidr"].as_str().unwrap().replace("/28", "/30");
    s.call(
        "POST",
        tb,
        ab,
        BINDINGS,
        Some(json!({"prefix_id": b["prefix_id"], "cidr": cidr_b, "region_key": "us"})),
    )
    .ok(201);
    // Neither token reaches the other's account, nor the dev account; the dev token does
    // not reach theirs.
    for (token, account) in [(ta, ab), (tb, aa), (ta, ACCOUNT), (DEV_TOKEN, aa)] {
        s.call("GET", token, account, BINDINGS, None)
            .fails(403, 10000);
        s.call("GET", token, account, "/addressing/prefixes", None)
            .fails(403, 10000);
    }
    let mine = s.call("GET", ta, aa, BINDINGS, None);
    assert_eq!(mine.ok(200).as_array().unwrap().len(), 1);
    // Chosen CIDR and permissions; a clash is refused.
    let c = s
        .admin(
            "POST",
            "/accounts",
            Some(json!({"cidr": "198.19.255.0/24", "permissions": ["DLS: Read"]})),
        )
        .ok(200)
        .clone();
    assert_eq!(c["cidr"], "198.19.255.0/24");
    s.call(
        "POST",
        c["token"].as_str().unwrap(),
        c["account_id"].as_str().unwrap(),
        BINDINGS,
        Some(json!({"prefix_id": c["prefix_id"], "cidr": "198.19.255.0/25", "region_key": "eu"})),
    )
    .fails(403, 10000);
    s.admin(
        "POST",
        "/accounts",
        Some(json!({"cidr": "198.19.255.128/25"})),
    )
    .fails(409, 1906);
    s.admin("POST", "/accounts", Some(json!({"family": "ipx"})))
        .fails(400, 1905);
    s.admin("POST", "/accounts", Some(json!({"bogus": 1})))
        .fails(400, 1100);
}

fn inregion(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_inregion"))
        .args(args)
        .env_remove("INREGION_ADMIN_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn snapshots_round_trip_online_and_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("snap.json");
    let file_s = file.to_str().unwrap();
    let s = Server::start();
    for i in 0..20 {
        s.create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "eu");
    }
    let acct = s.admin("POST", "/accounts", None).ok(200).clone();
    s.admin("POST", "/clock/advance", Some(json!({"seconds": 90})))
        .ok(200);
    let before = world(&s);

    // Online: save, change everything, restore.
    let out = inregion(&[
        "snapshot",
        "save",
        file_s,
        "--server",
        &s.base,
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.admin("POST", "/reset", None).ok(200);
    s.create(DEMO_PREFIX, "203.0.113.200/32", "us");
    assert_ne!(world(&s), before);
    let out = inregion(&[
        "snapshot",
        "restore",
        file_s,
        "--server",
        &s.base,
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(world(&s), before);
    // The per-test account's token, made before the snapshot, still works.
    s.call(
        "GET",
        acct["token"].as_str().unwrap(),
        acct["account_id"].as_str().unwrap(),
        BINDINGS,
        None,
    )
    .ok(200);
    // A wrong admin token is refused and changes nothing.
    let out = inregion(&[
        "snapshot",
        "restore",
        file_s,
        "--server",
        &s.base,
        "--admin-token",
        "nope-nope-nope-nope-nope",
    ]);
    assert!(!out.status.success());

    // Offline: into a stopped server's fresh data directory (its own key).
    let data2 = tmp.path().join("d2");
    let other = Server::start_with(Opts {
        data: Some(&data2),
        ..Opts::default()
    });
    other.stop();
    let out = inregion(&[
        "snapshot",
        "restore",
        file_s,
        "--data",
        data2.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = Server::start_with(Opts {
        data: Some(&data2),
        ..Opts::default()
    });
    assert_eq!(world(&other), before);
    other
        .call(
            "GET",
            acct["token"].as_str().unwrap(),
            acct["account_id"].as_str().unwrap(),
            BINDINGS,
            None,
        )
        .ok(200);
    // Offline save of a running server's directory is refused with a hint.
    let out = inregion(&["snapshot", "save", "-", "--data", data2.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server"));
    other.stop();
    let offline = tmp.path().join("offline.json");
    let out = inregion(&[
        "snapshot",
        "save",
        offline.to_str().unwrap(),
        "--data",
        data2.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&offline).unwrap()).unwrap();
    assert_eq!(v["format_version"], 2);
    assert_eq!(v["bindings"].as_array().unwrap().len(), 20);

    // Bad files change nothing.
    let s2 = Server::start();
    let w2 = world(&s2);
    for bad in [
        "{}".to_owned(),
        "not json".to_owned(),
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("\"format_version\": 2", "\"format_version\": 9"),
    ] {
        let r = restore(&s2, bad);
        r.fails(400, 1905);
    }
    assert_eq!(world(&s2), w2);
}

/// A snapshot larger than `--max-body-bytes` still restores (the limit is for API bodies).
#[test]
fn snapshots_are_not_bound_by_the_api_body_limit() {
    let s = Server::start_with(Opts {
        args: vec!["--max-body-bytes", "4096"],
        ..Opts::default()
    });
    for i in 0..60 {
        s.create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "eu");
    }
    let snap = s.admin("GET", "/snapshot", None).ok(200).to_string();
    assert!(snap.len() > 4096, "{}", snap.len());
    s.admin("POST", "/reset", None).ok(200);
    let r = restore(&s, snap);
    r.ok(200);
    assert_eq!(list(&s).len(), 60);
}

#[test]
fn a_format_1_snapshot_restores() {
    let s = Server::start();
    let text = std::fs::read_to_string(repo().join("tests/data/snapshot-format1.json")).unwrap();
    let r = restore(&s, text);
    r.ok(200);
    // Its token (stored as a plain SHA-256 by schema version 1) authenticates, from the
    // address range it is restricted to.
    let acct = "0123456789abcdef0123456789abcdef";
    let token = "fixture-token-0000000000000000000000";
    let live = s.call("GET", token, acct, BINDINGS, None);
    let items = live.ok(200).as_array().unwrap().clone();
    let mut got: Vec<&str> = items.iter().map(|b| b["cidr"].as_str().unwrap()).collect();
    got.sort();
    assert_eq!(got, ["198.51.100.0/25", "2001:db8:1000::/48"]);
    // The dev account is gone (the snapshot does not have it).
    s.dev("GET", BINDINGS, None).fails(401, 9109);
}

fn metric(s: &Server, rule: &str) -> u64 {
    let text = s.send(s.raw("GET", &format!("{}/metrics", s.base))).text;
    text.lines()
        .find(|l| {
            l.starts_with("inregion_faults_injected_total")
                && l.contains(&format!("rule=\"{rule}\""))
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn fault_rules_fail_delay_time_out_and_can_be_listed_and_removed() {
    let s = Server::start();
    // 429 once on binding creates, then normal.
    let r = s.admin(
        "POST",
        "/faults",
        Some(json!({"method": "POST", "path": "/client/v4/accounts/*/dls/regional_services/prefix_bindings", "status": 429, "count": 1})),
    );
    let id = r.ok(200)["id"].as_str().unwrap().to_owned();
    let body = json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.113.0/25", "region_key": "eu"});
    let first = s.dev("POST", BINDINGS, Some(body.clone()));
    assert_eq!(first.status, 429, "{}", first.text);
    assert_eq!(first.codes(), vec![971]);
    assert_eq!(first.headers.get("retry-after").unwrap(), "1");
    assert_eq!(first.headers.get("x-should-retry").unwrap(), "true");
    assert!(list(&s).is_empty(), "the refused create changed nothing");
    s.dev("POST", BINDINGS, Some(body)).ok(201);
    assert_eq!(metric(&s, &id), 1);
    let listed = s.admin("GET", "/faults", None).ok(200).clone();
    assert_eq!(listed[0]["remaining"], 0);
    assert_eq!(listed[0]["applied"], 1);
    s.admin("DELETE", &format!("/faults/{id}"), None).ok(200);
    s.admin("DELETE", &format!("/faults/{id}"), None)
        .fails(404, 1904);

    // 503 on reads of one account only; other accounts unaffected.
    s.admin(
        "POST",
        "/faults",
        Some(json!({"id": "reads", "method": "GET", "path": "/client/v4/**", "account": ACCOUNT, "status": 503})),
    )
    .ok(200);
    let r = s.dev("GET", BINDINGS, None);
    assert_eq!((r.status, r.codes()), (503, vec![1000]));
    let other = s.admin("POST", "/accounts", None).ok(200).clone();
    s.call(
        "GET",
        other["token"].as_str().unwrap(),
        other["account_id"].as_str().unwrap(),
        BINDINGS,
        None,
    )
    .ok(200);
    s.admin("DELETE", "/faults/reads", None).ok(200);

    // Delay: served, late.
    s.admin(
        "POST",
        "/faults",
        Some(json!({"id": "slow", "path": "/client/v4/accounts/*/dls/regions", "delay_ms": 300})),
    )
    .ok(200);
    let t = Instant::now();
    s.dev("GET", "/dls/regions", None).ok(200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    s.admin("DELETE", "/faults/slow", None).ok(200);

    // Timeout: held, then 504.
    s.admin("POST", "/faults", Some(json!({"id": "hang", "path": "/client/v4/accounts/*/dls/regions", "timeout_ms": 300, "count": 1})))
        .ok(200);
    let t = Instant::now();
    let r = s.dev("GET", "/dls/regions", None);
    assert_eq!(r.status, 504);
    assert!(t.elapsed() >= Duration::from_millis(300));
    s.dev("GET", "/dls/regions", None).ok(200);

    // Probability 0 never fires; invalid rules are refused.
    s.admin(
        "POST",
        "/faults",
        Some(json!({"path": "/client/v4/**", "status": 500, "probability": 0.0})),
    )
    .ok(200);
    for _ in 0..20 {
        s.dev("GET", "/dls/regions", None).ok(200);
    }
    s.admin(
        "POST",
        "/faults",
        Some(json!({"path": "/x", "status": 200})),
    )
    .fails(400, 1905);
    s.admin(
        "POST",
        "/faults",
        Some(json!({"path": "/x", "stauts": 500})),
    )
    .fails(400, 1100);
    // The admin surface itself is never faulted.
    s.admin(
        "POST",
        "/faults",
        Some(json!({"path": "/**", "status": 500})),
    )
    .ok(200);
    s.admin("GET", "/faults", None).ok(200);
}

#[test]
fn stuck_and_failed_bindings() {
    let s = Server::start_with(Opts {
        args: vec!["--propagation-delay", "1s"],
        ..Opts::default()
    });
    let b = s.create(DEMO_PREFIX, "203.0.113.0/26", "eu");
    let id = b["id"].as_str().unwrap().to_owned();
    s.admin(
        "POST",
        "/faults",
        Some(json!({"id": "hold", "binding": "203.0.113.0/26", "effect": "stuck"})),
    )
    .ok(200);
    let status = |s: &Server| s.binding_state(DEMO_PREFIX, &id);
    s.admin("POST", "/clock/advance", Some(json!({"seconds": 60})))
        .ok(200);
    assert_eq!(status(&s), "provisioning", "held while the rule exists");
    let listed = s
        .dev(
            "GET",
            &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings"),
            None,
        )
        .ok(200)
        .clone();
    let item = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["provisioning"]["state"], "provisioning");
    s.admin("DELETE", "/faults/hold", None).ok(200);
    assert_eq!(status(&s), "active");

    // A failing binding: its create answers 500 and nothing is created.
    s.admin(
        "POST",
        "/faults",
        Some(json!({"binding": "203.0.113.128/26", "effect": "fail", "count": 1})),
    )
    .ok(200);
    let body = json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.113.128/26", "region_key": "eu"});
    let r = s.dev("POST", BINDINGS, Some(body.clone()));
    assert_eq!((r.status, r.codes()), (500, vec![1000]));
    assert_eq!(cidrs(&s), vec!["203.0.113.0/26"]);
    s.dev("POST", BINDINGS, Some(body)).ok(201);
}

#[test]
fn config_faults_are_the_start_rules_and_come_back_on_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("faults.toml");
    let mut text = std::fs::read_to_string(test_config()).unwrap();
    text.push_str(
        "\n[[faults]]\nid = \"cfg-429\"\nmethod = \"GET\"\npath = \"/client/v4/accounts/*/dls/regions\"\nstatus = 429\ncount = 1\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let s = Server::start_with(Opts {
        config: false,
        args: vec!["--config", cfg.to_str().unwrap()],
        ..Opts::default()
    });
    assert_eq!(s.dev("GET", "/dls/regions", None).status, 429);
    s.dev("GET", "/dls/regions", None).ok(200);
    s.admin("POST", "/reset", None).ok(200);
    assert_eq!(s.dev("GET", "/dls/regions", None).status, 429);
    assert_eq!(metric(&s, "cfg-429"), 2);
}

/// The admin clock: malformed requests are refused and change nothing; it goes far into
/// the future, but not past 9000-01-01, where derived times would run into the end of
/// what timestamps hold (the end itself means "awaiting edge nodes"), neither by an
/// advance nor by a snapshot's clock offset.
#[test]
fn the_clock_refuses_bad_advances_and_the_end_of_time() {
    let s = Server::start();
    let offset = |s: &Server| s.admin("GET", "/clock", None).ok(200)["offset_seconds"].clone();
    let before = offset(&s);
    for (body, code) in [
        (json!({"seconds": -1}), 1100),
        (json!({"seconds": "60"}), 1100),
        (json!({"duration": "soon"}), 1100),
        (json!({}), 1101),
        (json!({"seconds": 1, "duration": "1s"}), 1101),
        (json!({"duration": "100000years"}), 1100),
        (json!({"seconds": 999_999_999_999.0}), 1100),
    ] {
        s.admin("POST", "/clock/advance", Some(body.clone()))
            .fails(400, code);
        assert_eq!(offset(&s), before, "{body} moved the clock");
    }
    // A thousand years is fine; the bindings made then behave as at any other time.
    let now = s
        .admin(
            "POST",
            "/clock/advance",
            Some(json!({"duration": "1000years"})),
        )
        .ok(200)["now"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(now.starts_with("30"), "{now}");
    let b = s.create(DEMO_PREFIX, "203.0.113.0/26", "eu");
    let id = b["id"].as_str().unwrap();
    let state = |s: &Server| s.binding_state(DEMO_PREFIX, id);
    assert_eq!(state(&s), "provisioning");
    s.admin("POST", "/clock/advance", Some(json!({"duration": "1h"})))
        .ok(200);
    assert_eq!(state(&s), "active");

    // A snapshot whose clock offset would pass the limit is refused before anything
    // changes.
    let mut snap = s.admin("GET", "/snapshot", None).ok(200).clone();
    snap["clock_offset_us"] = json!(300_000_000_000_000_000_i64);
    let before = world(&s);
    s.admin("POST", "/snapshot", Some(snap)).fails(400, 1905);
    assert_eq!(world(&s), before);
}
