//! Several `inregion serve` replicas on one etcd prefix behave as one server, against a
//! real 3-member etcd cluster per test (tests/etcd_support):
//! - a write acknowledged by one replica is read through the other right afterwards;
//! - duplicate creates of one CIDR raced over both replicas give exactly one 201, and a
//!   per-prefix cap raced over both is never exceeded;
//! - with an etcd member killed with -9 (the leader) under load and restarted, no
//!   acknowledged create is lost, no acknowledged delete comes back, no CIDR is bound
//!   twice, both replicas end equal to what clients were told, and every read during
//!   the run saw a state that existed between its request and its answer;
//! - a replica killed with -9 leaves the other serving reads and writes;
//! - without quorum, writes answer a retryable 503 and reads answer from the last state.
//!
//! Each history is written to `<target>/etcd-replicas/<test>.jsonl` for diagnosis.

mod api_support;

use api_support::etcd_support::{b64, signal, unique_prefix, Cluster};
use api_support::*;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

const BINDINGS: &str = "/dls/regional_services/prefix_bindings";
const STALE: &str = "x-inregion-stale-ms";

/// A replica of `inregion serve` on `cluster`'s `prefix`.
fn replica(cluster: &Cluster, prefix: &str, extra: &[&str]) -> Server {
    let url = cluster.url();
    let mut args = vec![
        "--store",
        url.as_str(),
        "--etcd-prefix",
        prefix,
        "--etcd-max-txn-ops",
        "10000",
    ];
    args.extend_from_slice(extra);
    Server::start_with(Opts {
        args,
        ..Opts::default()
    })
}

/// A fresh 3-member cluster and two replicas on one new prefix, each started with
/// `extra` (bound in this order, the replicas are dropped before the cluster).
fn two_replicas(extra: &[&str]) -> (Cluster, String, [Server; 2]) {
    let cluster = Cluster::start(3);
    let prefix = unique_prefix();
    let r = [
        replica(&cluster, &prefix, extra),
        replica(&cluster, &prefix, extra),
    ];
    (cluster, prefix, r)
}

fn client(timeout: Duration) -> Client {
    Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// One answer: status (0 when none came: connection refused, reset, timeout), body,
/// whether it was marked stale, `x-should-retry`.
#[derive(Clone, Debug, Default)]
struct Answer {
    status: u16,
    body: Value,
    text: String,
    stale: Option<String>,
    retry: Option<String>,
}

impl Answer {
    fn id(&self) -> Option<String> {
        self.body["result"]["id"].as_str().map(str::to_owned)
    }
    fn code(&self) -> Option<u64> {
        self.body["errors"][0]["code"].as_u64()
    }
}

/// A request with the dev token to `base` + the dev account's `path`.
fn call(c: &Client, method: &str, base: &str, path: &str, body: Option<&Value>) -> Answer {
    let url = format!("{base}/client/v4/accounts/{ACCOUNT}{path}");
    let mut rb = c
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .bearer_auth(DEV_TOKEN);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    match rb.send() {
        Err(e) => Answer {
            text: format!("no answer: {e}"),
            ..Answer::default()
        },
        Ok(r) => {
            let status = r.status().as_u16();
            let h = |n: &str| {
                r.headers()
                    .get(n)
                    .map(|v| v.to_str().unwrap_or("?").to_owned())
            };
            let (stale, retry) = (h(STALE), h("x-should-retry"));
            let text = r.text().unwrap_or_default();
            Answer {
                status,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
                text,
                stale,
                retry,
            }
        }
    }
}

/// A CIDR as the server echoes it (RFC 5952 for IPv6).
fn canon(cidr: &str) -> String {
    cidr.parse::<ipnet::IpNet>()
        .unwrap_or_else(|e| panic!("{cidr}: {e}"))
        .to_string()
}

fn create_body(prefix: &str, cidr: &str, region: &str) -> Value {
    json!({"prefix_id": prefix, "cidr": cidr, "region_key": region})
}

/// `POST` a binding of `cidr` in `prefix` to `region` through `base`.
fn create(c: &Client, base: &str, prefix: &str, cidr: &str, region: &str) -> Answer {
    call(
        c,
        "POST",
        base,
        BINDINGS,
        Some(&create_body(prefix, cidr, region)),
    )
}

/// Every binding of the dev account through `base`, all pages (asserts 200s).
fn list_all(c: &Client, base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = if cursor.is_empty() {
            format!("{BINDINGS}?per_page=100")
        } else {
            format!("{BINDINGS}?per_page=100&cursor={cursor}")
        };
        let r = call(c, "GET", base, &path, None);
        assert_eq!(r.status, 200, "list {base}{path}: {}", r.text);
        assert!(
            r.stale.is_none(),
            "list {base}{path} marked stale ({:?}) with every member up",
            r.stale
        );
        out.extend(r.body["result"].as_array().unwrap().iter().cloned());
        cursor = r.body["result_info"]["cursor"].as_str().unwrap().to_owned();
        if cursor.is_empty() {
            return out;
        }
    }
}

/// `<target>/etcd-replicas/<name>.jsonl`
fn history_path(name: &str) -> std::path::PathBuf {
    let dir = target_dir().join("etcd-replicas");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.jsonl"))
}

// ---------------------------------------------------------------------------------------
// (a) read-your-writes across replicas

#[test]
fn every_write_through_one_replica_is_read_through_the_other() {
    let t = Instant::now();
    let (cluster, prefix, r) = two_replicas(&[]);
    eprintln!("cluster and 2 replicas up in {:?}", t.elapsed());
    let c = client(Duration::from_secs(30));
    let base = |i: usize| r[i].base.as_str();
    // Both replicas seeded the same configuration once: one dev account, one demo
    // prefix, one custom region, no binding.
    for i in 0..2 {
        let regions = call(&c, "GET", base(i), "/dls/regions?type=custom", None);
        assert_eq!(regions.status, 200, "{}", regions.text);
        assert_eq!(
            regions.body["result"].as_array().unwrap().len(),
            1,
            "{}",
            regions.text
        );
        assert_eq!(list_all(&c, base(i)), Vec::<Value>::new());
    }
    let mut failures = Vec::new();
    for round in 0..20u32 {
        let (w, rd) = ((round % 2) as usize, ((round + 1) % 2) as usize);
        let ctx =
            |what: &str| format!("round {round}, {what} through replica {w}, read through {rd}");
        // Writes through the other replica, each the first request there after the
        // acknowledgement: a patch, a duplicate create, a delete (collected, not asserted
        // one by one, to see how often).
        let mut first_write_after = |cidr: String, prefix: &str, method: &str, what: &str| {
            let a = create(&c, base(w), prefix, &cidr, "eu");
            assert_eq!(a.status, 201, "{}: {}", ctx("create"), a.text);
            let id = a.id().unwrap();
            let (path, body) = match method {
                "PATCH" => (
                    format!("{BINDINGS}/{id}"),
                    Some(json!({"region_key": "ca"})),
                ),
                "DELETE" => (format!("{BINDINGS}/{id}"), None),
                _ => (BINDINGS.to_owned(), Some(create_body(prefix, &cidr, "us"))),
            };
            let r = call(&c, method, base(rd), &path, body.as_ref());
            let expected = if method == "POST" { 409 } else { 200 };
            if r.status != expected {
                failures.push(format!(
                    "round {round}: {what} through replica {rd}, its first request after replica {w} acknowledged POST {cidr} ({id}): expected {expected}, got {} {}",
                    r.status, r.text
                ));
            }
        };
        first_write_after(
            format!("203.0.114.{round}/32"),
            DEMO_PREFIX,
            "PATCH",
            "PATCH",
        );
        first_write_after(
            format!("203.0.115.{round}/32"),
            DEMO_PREFIX,
            "POST",
            "duplicate POST",
        );
        first_write_after(
            format!("2001:db8:100e:{round:x}::/64"),
            V6_PREFIX,
            "DELETE",
            "DELETE",
        );
        // A custom region and a token seeded through one replica are usable in a write
        // that is the other replica's first request afterwards.
        let key = format!("first-{round}");
        let secret = format!("first-write-token-{round:04}-000000000000000");
        let seed = r[w].admin(
            "POST",
            "/seed",
            Some(json!({
                "regions": [{"account": ACCOUNT, "key": key, "name": "First write", "countries": ["AT"]}],
                "tokens": [{"name": key, "secret": secret, "accounts": [ACCOUNT], "permissions": ["DLS: Write", "DLS: Read", "IP Prefixes: Write"]}]
            })),
        );
        assert_eq!(seed.status, 200, "{}: {}", ctx("seed"), seed.text);
        let b = create(
            &c,
            base(rd),
            V6_PREFIX,
            &format!("2001:db8:100d:{round:x}::/64"),
            &key,
        );
        if b.status != 201 {
            failures.push(format!(
                "round {round}: POST with region {key} through replica {rd}, its first request after replica {w} acknowledged the seed: expected 201, got {} {}",
                b.status, b.text
            ));
        }
        let seed = r[w].admin(
            "POST",
            "/seed",
            Some(json!({
                "tokens": [{"name": format!("{key}-2"), "secret": format!("{secret}-2"), "accounts": [ACCOUNT], "permissions": ["DLS: Write", "DLS: Read", "IP Prefixes: Write"]}]
            })),
        );
        assert_eq!(seed.status, 200, "{}: {}", ctx("seed"), seed.text);
        let t = c
            .post(format!(
                "{}/client/v4/accounts/{ACCOUNT}{BINDINGS}",
                base(rd)
            ))
            .bearer_auth(format!("{secret}-2"))
            .json(&create_body(
                V6_PREFIX,
                &format!("2001:db8:100c:{round:x}::/64"),
                "eu",
            ))
            .send()
            .unwrap();
        let status = t.status().as_u16();
        if status != 201 {
            failures.push(format!(
                "round {round}: POST with a token seeded through replica {w}, as replica {rd}'s first request afterwards: expected 201, got {status} {}",
                t.text().unwrap_or_default()
            ));
        }
        // Create.
        let cidr = format!("203.0.113.{}/32", round);
        let a = create(&c, base(w), DEMO_PREFIX, &cidr, "eu");
        assert_eq!(a.status, 201, "{}: {}", ctx("create"), a.text);
        let b = a.body["result"].clone();
        let id = a.id().unwrap();
        let g = call(&c, "GET", base(rd), &format!("{BINDINGS}/{id}"), None);
        assert_eq!(
            (g.status, &g.body["result"]),
            (200, &b),
            "{}: {}",
            ctx("create"),
            g.text
        );
        assert!(g.stale.is_none(), "{}: stale {:?}", ctx("create"), g.stale);
        let listed = list_all(&c, base(rd));
        assert!(listed.contains(&b), "{}: list {listed:?}", ctx("create"));
        // A duplicate through the other replica is a conflict at once.
        let d = create(&c, base(rd), DEMO_PREFIX, &cidr, "us");
        assert_eq!(
            (d.status, d.code()),
            (409, Some(1108)),
            "{}: {}",
            ctx("duplicate after create"),
            d.text
        );
        // Patch.
        let p = call(
            &c,
            "PATCH",
            base(w),
            &format!("{BINDINGS}/{id}"),
            Some(&json!({"region_key": "us"})),
        );
        assert_eq!(p.status, 200, "{}: {}", ctx("patch"), p.text);
        let g = call(&c, "GET", base(rd), &format!("{BINDINGS}/{id}"), None);
        assert_eq!(
            (g.status, &g.body["result"]),
            (200, &p.body["result"]),
            "{}: {}",
            ctx("patch"),
            g.text
        );
        assert_eq!(g.body["result"]["region_key"], "us", "{}", ctx("patch"));
        // The service-binding view (Addressing API) of the same record.
        let sb = call(
            &c,
            "GET",
            base(rd),
            &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/{id}"),
            None,
        );
        assert_eq!(sb.status, 200, "{}: {}", ctx("service binding"), sb.text);
        // Delete (every other round), through the writer; gone through the reader.
        if round % 2 == 0 {
            let del = call(&c, "DELETE", base(w), &format!("{BINDINGS}/{id}"), None);
            assert_eq!(del.status, 200, "{}: {}", ctx("delete"), del.text);
            let g = call(&c, "GET", base(rd), &format!("{BINDINGS}/{id}"), None);
            assert_eq!(
                (g.status, g.code()),
                (404, Some(1109)),
                "{}: {}",
                ctx("delete"),
                g.text
            );
            let listed = list_all(&c, base(rd));
            assert!(
                listed.iter().all(|x| x["id"] != id.as_str()),
                "{}: deleted binding listed",
                ctx("delete")
            );
            // And the CIDR can be bound again through the reader.
            let again = create(&c, base(rd), DEMO_PREFIX, &cidr, "ca");
            assert_eq!(
                again.status,
                201,
                "{}: {}",
                ctx("create after delete"),
                again.text
            );
            let g = call(
                &c,
                "GET",
                base(w),
                &format!("{BINDINGS}/{}", again.id().unwrap()),
                None,
            );
            assert_eq!(g.status, 200, "{}: {}", ctx("create after delete"), g.text);
        }
        // A custom region created through the writer (admin seed) is listed by the reader
        // and usable there for a binding at once.
        if round % 5 == 0 {
            let key = format!("rep-{round}");
            let seed = r[w].admin(
                "POST",
                "/seed",
                Some(json!({"regions": [{"account": ACCOUNT, "key": key, "name": format!("Replica test {round}"), "countries": ["DE"]}]})),
            );
            assert_eq!(seed.status, 200, "{}: {}", ctx("custom region"), seed.text);
            let regions = call(&c, "GET", base(rd), "/dls/regions?type=custom", None);
            assert!(
                regions.body["result"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["region_key"] == key.as_str())),
                "{}: {}",
                ctx("custom region"),
                regions.text
            );
            let b = create(
                &c,
                base(rd),
                V6_PREFIX,
                &format!("2001:db8:1000:{round:x}::/64"),
                &key,
            );
            assert_eq!(
                b.status,
                201,
                "{}: {}",
                ctx("binding in the new region"),
                b.text
            );
        }
        // An address map.
        if round % 4 == 1 {
            let m = call(
                &c,
                "POST",
                base(w),
                "/addressing/address_maps",
                Some(&json!({"description": format!("map {round}")})),
            );
            assert_eq!(m.status, 200, "{}: {}", ctx("address map"), m.text);
            let mid = m.id().unwrap();
            let g = call(
                &c,
                "GET",
                base(rd),
                &format!("/addressing/address_maps/{mid}"),
                None,
            );
            assert_eq!(g.status, 200, "{}: {}", ctx("address map"), g.text);
            assert_eq!(g.body["result"]["description"], format!("map {round}"));
        }
    }
    // Both replicas list the same bindings, in the same order, and so does a third
    // replica that starts now.
    let a = list_all(&c, base(0));
    assert_eq!(a, list_all(&c, base(1)));
    let third = replica(&cluster, &prefix, &[]);
    assert_eq!(a, list_all(&c, &third.base));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 20 rounds: 1 kept of the first create, 1 patched, 1 duplicated (one DELETEd), 1 in
    // a region and 1 with a token seeded just before and, every fifth round, 1 in a new
    // region.
    assert_eq!(a.len(), 20 * 5 + 4, "{a:?}");
    // The etcd metrics are exported.
    for s in [&r[0], &r[1]] {
        let m = s.send(s.raw("GET", &format!("{}/metrics", s.base)));
        assert_eq!(m.status, 200);
        for name in [
            "inregion_etcd_watch_lag_revisions",
            "inregion_etcd_reconnects_total",
            "inregion_etcd_txn_conflicts_total",
        ] {
            assert!(
                m.text.lines().any(|l| l.starts_with(name)),
                "{name} missing from /metrics of {}",
                s.base
            );
        }
    }
    // Every key the replicas wrote is under their prefix.
    let keys = cluster.range_prefix(0, &prefix).unwrap();
    assert!(!keys.is_empty(), "nothing under {prefix} in etcd");
    eprintln!(
        "{} keys under {prefix}; test took {:?}",
        keys.len(),
        t.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// (b) races over both replicas

#[test]
fn duplicate_creates_raced_over_two_replicas_give_one_201() {
    let t = Instant::now();
    let (_cluster, _prefix, r) = two_replicas(&[]);
    let bases = [r[0].base.clone(), r[1].base.clone()];
    let mut winners = BTreeMap::new();
    let mut failures = Vec::new();
    for k in 0..20u32 {
        let cidr = if k % 2 == 0 {
            format!("203.0.113.{}/29", k * 8)
        } else {
            format!("2001:db8:1000:{k:x}::/64")
        };
        let pfx = if k % 2 == 0 { DEMO_PREFIX } else { V6_PREFIX };
        let barrier = Barrier::new(8);
        let answers: Vec<(usize, Answer)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8usize)
                .map(|i| {
                    let (barrier, cidr, base) = (&barrier, &cidr, &bases[i % 2]);
                    s.spawn(move || {
                        let c = client(Duration::from_secs(30));
                        let body = create_body(pfx, cidr, if i % 2 == 0 { "eu" } else { "us" });
                        barrier.wait();
                        (i % 2, call(&c, "POST", base, BINDINGS, Some(&body)))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created: Vec<&(usize, Answer)> =
            answers.iter().filter(|(_, a)| a.status == 201).collect();
        let conflicts = answers
            .iter()
            .filter(|(_, a)| a.status == 409 && a.code() == Some(1108))
            .count();
        if created.len() != 1 || conflicts != 7 {
            failures.push(format!(
                "{cidr}: {} x 201, {conflicts} x 409/1108; answers: {}",
                created.len(),
                answers
                    .iter()
                    .map(|(rep, a)| format!("[replica {rep}] {} {}", a.status, a.text))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        if let Some((_, a)) = created.first() {
            winners.insert(cidr.clone(), a.body["result"].clone());
        }
    }
    // Both replicas list exactly the winners.
    let c = client(Duration::from_secs(30));
    for (i, base) in bases.iter().enumerate() {
        let listed = list_all(&c, base);
        let mut by_cidr: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for b in &listed {
            by_cidr
                .entry(b["cidr"].as_str().unwrap().to_owned())
                .or_default()
                .push(b.clone());
        }
        for (cidr, bs) in &by_cidr {
            if bs.len() != 1 {
                failures.push(format!(
                    "replica {i} lists {cidr} {} times: {bs:?}",
                    bs.len()
                ));
            }
            if let Some(w) = winners.get(cidr) {
                if !bs.contains(w) {
                    failures.push(format!("replica {i}: {cidr} is {bs:?}, the 201 said {w}"));
                }
            }
        }
        if by_cidr.len() != 20 {
            failures.push(format!(
                "replica {i} lists {} CIDRs, not 20: {:?}",
                by_cidr.len(),
                by_cidr.keys().collect::<Vec<_>>()
            ));
        }
    }
    eprintln!("test took {:?}", t.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--max-bindings-per-prefix 5` on both replicas; 12 distinct CIDRs of one prefix raced
/// over both: exactly 5 are created, the others answer 400 / 1117, three rounds.
#[test]
fn a_per_prefix_cap_raced_over_two_replicas_holds() {
    let t = Instant::now();
    let (_cluster, _prefix, r) = two_replicas(&["--max-bindings-per-prefix", "5"]);
    let bases = [r[0].base.clone(), r[1].base.clone()];
    let c = client(Duration::from_secs(30));
    let mut failures = Vec::new();
    for round in 0..3u32 {
        let barrier = Barrier::new(12);
        let answers: Vec<(usize, String, Answer)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..12u32)
                .map(|i| {
                    let (barrier, base) = (&barrier, &bases[(i % 2) as usize]);
                    s.spawn(move || {
                        let c = client(Duration::from_secs(30));
                        let cidr = format!("2001:db8:1000:{round:x}{i:02x}::/64");
                        let body = create_body(V6_PREFIX, &cidr, "eu");
                        barrier.wait();
                        (
                            (i % 2) as usize,
                            cidr,
                            call(&c, "POST", base, BINDINGS, Some(&body)),
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created = answers.iter().filter(|(_, _, a)| a.status == 201).count();
        let capped = answers
            .iter()
            .filter(|(_, _, a)| a.status == 400 && a.code() == Some(1117))
            .count();
        let listed: Vec<Value> = list_all(&c, &bases[0])
            .into_iter()
            .filter(|b| b["prefix_id"] == V6_PREFIX)
            .collect();
        if created != 5 || capped != 7 || listed.len() != 5 {
            failures.push(format!(
                "round {round}: {created} x 201, {capped} x 400/1117, {} listed; answers: {}",
                listed.len(),
                answers
                    .iter()
                    .map(|(rep, cidr, a)| format!("[replica {rep} {cidr}] {} {}", a.status, a.text))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        // Empty the prefix for the next round, through alternating replicas.
        for (k, b) in listed.iter().enumerate() {
            let d = call(
                &c,
                "DELETE",
                &bases[k % 2],
                &format!("{BINDINGS}/{}", b["id"].as_str().unwrap()),
                None,
            );
            assert_eq!(d.status, 200, "{}", d.text);
        }
    }
    eprintln!("test took {:?}", t.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// (c) + (e) an etcd member killed with -9 under load: a history, then its checks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Create,
    /// A create of a CIDR raced by several clients at once.
    RaceCreate,
    /// A create by a replica's own prober (one client per replica, a create and a delete
    /// every 50 ms): whether that replica is taking writes.
    Probe,
    Delete,
    Get,
    List,
}

/// One operation of the history: what was asked, when, and what came back.
#[derive(Clone, Debug)]
struct Op {
    n: usize,
    kind: Kind,
    replica: usize,
    /// Seconds since the history began, before sending and after the answer.
    start: f64,
    end: f64,
    prefix: String,
    cidr: String,
    /// The binding's id: asked for (delete, get) or answered (create).
    id: String,
    a: Answer,
    /// List: (id, prefix, cidr) of every binding of the page.
    listed: Vec<(String, String, String)>,
}

impl Op {
    fn ok(&self) -> bool {
        (200..300).contains(&self.a.status)
    }
    /// No answer or a 5xx: the operation may or may not have happened.
    fn indeterminate(&self) -> bool {
        self.a.status == 0 || self.a.status >= 500
    }
    fn line(&self) -> String {
        format!(
            "#{} {:?} replica {} [{:.3}s..{:.3}s] {} {} {} -> {}{} {}",
            self.n,
            self.kind,
            self.replica,
            self.start,
            self.end,
            self.prefix,
            self.cidr,
            self.id,
            self.a.status,
            self.a
                .stale
                .as_ref()
                .map(|s| format!(" (stale {s} ms)"))
                .unwrap_or_default(),
            self.a.text.chars().take(300).collect::<String>()
        )
    }
    fn json(&self) -> Value {
        json!({"n": self.n, "kind": format!("{:?}", self.kind), "replica": self.replica,
            "start": self.start, "end": self.end, "prefix": self.prefix, "cidr": self.cidr,
            "id": self.id, "status": self.a.status, "stale_ms": self.a.stale,
            "body": self.a.text, "listed": self.listed.len()})
    }
}

struct History {
    t0: Instant,
    ops: Mutex<Vec<Op>>,
}

impl History {
    fn new() -> Self {
        History {
            t0: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }
    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }
    /// Runs `f` and records it.
    fn record(
        &self,
        kind: Kind,
        replica: usize,
        prefix: &str,
        cidr: &str,
        id: &str,
        f: impl FnOnce() -> Answer,
    ) -> Op {
        let start = self.now();
        let a = f();
        let end = self.now();
        let listed = if kind == Kind::List {
            a.body["result"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|b| {
                            let s = |k: &str| b[k].as_str().unwrap_or("").to_owned();
                            (s("id"), s("prefix_id"), s("cidr"))
                        })
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let id = match (kind, a.status) {
            (Kind::Create | Kind::RaceCreate | Kind::Probe, 201) => a.id().unwrap_or_default(),
            _ => id.to_owned(),
        };
        let mut ops = self.ops.lock().unwrap();
        let op = Op {
            n: ops.len(),
            kind,
            replica,
            start,
            end,
            prefix: prefix.to_owned(),
            cidr: if cidr.is_empty() {
                String::new()
            } else {
                canon(cidr)
            },
            id,
            a,
            listed,
        };
        ops.push(op.clone());
        op
    }
    fn take(&self) -> Vec<Op> {
        std::mem::take(&mut self.ops.lock().unwrap())
    }
}

fn write_history(name: &str, ops: &[Op]) -> std::path::PathBuf {
    let path = history_path(name);
    let text: String = ops.iter().map(|o| format!("{}\n", o.json())).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Each replica of `replicas` acknowledged a probe write at least every `max_gap`
/// seconds between `from` and `to` (etcd kept quorum throughout: one member down at a
/// time). Returns the violations, with the probe operations in flight during each gap.
fn availability(ops: &[Op], replicas: &[usize], from: f64, to: f64, max_gap: f64) -> Vec<String> {
    let mut v = Vec::new();
    for &rep in replicas {
        let probes: Vec<&Op> = ops
            .iter()
            .filter(|o| o.kind == Kind::Probe && o.replica == rep)
            .collect();
        let mut acks: Vec<f64> = probes
            .iter()
            .filter(|o| o.ok())
            .map(|o| o.end)
            .filter(|&t| t > from && t < to)
            .collect();
        acks.sort_by(f64::total_cmp);
        let mut last = from;
        for t in acks.into_iter().chain([to]) {
            if t - last > max_gap {
                let during: Vec<String> = ops
                    .iter()
                    .filter(|o| {
                        o.replica == rep
                            && matches!(
                                o.kind,
                                Kind::Create | Kind::RaceCreate | Kind::Probe | Kind::Delete
                            )
                            && o.end > last
                            && o.start < t
                    })
                    .take(12)
                    .map(|o| o.line())
                    .collect();
                v.push(format!(
                    "replica {rep} acknowledged no write from {last:.3}s to {t:.3}s ({:.1}s, more than {max_gap}s) though etcd kept quorum; its writes in flight then (12 at most):\n  {}",
                    t - last,
                    during.join("\n  ")
                ));
            }
            last = t;
        }
    }
    v
}

/// The violations grouped by kind: a count and the first three of each.
fn report(v: &[String]) -> String {
    const KINDS: &[(&str, &str)] = &[
        ("acknowledged no write", "a replica took no write for too long"),
        ("creates answered 201", "two 201s for one CIDR"),
        ("409 with no create", "a 409 with no other create"),
        ("answered 404 though it was created", "a write through one replica answered 404 for a binding another replica had acknowledged"),
        ("acknowledged create lost", "an acknowledged create lost"),
        ("but is at the end", "an acknowledged delete undone"),
        ("bound twice", "a CIDR bound twice"),
        ("no client was told", "a binding nobody was told of"),
        ("ends with another list", "replicas differ at the end"),
        ("a read failed", "a read failed"),
        ("stale read", "a read missed an acknowledged write"),
        ("stale list", "a list missed an acknowledged write"),
        ("no client had asked for yet", "a read saw the future"),
    ];
    let mut groups: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for x in v {
        let kind = KINDS
            .iter()
            .find(|(needle, _)| x.contains(needle))
            .map_or("other", |(_, k)| k);
        groups.entry(kind).or_default().push(x);
    }
    groups
        .iter()
        .map(|(k, xs)| {
            format!(
                "== {} x {k}:\n{}",
                xs.len(),
                xs.iter()
                    .take(3)
                    .map(|x| x.chars().take(1500).collect::<String>())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks a history and the final lists of both replicas; returns the violations.
fn check_history(ops: &[Op], finals: &[Vec<Value>]) -> (Vec<String>, String) {
    let mut v = Vec::new();
    let creates: Vec<&Op> = ops
        .iter()
        .filter(|o| matches!(o.kind, Kind::Create | Kind::RaceCreate | Kind::Probe))
        .collect();
    let acked: HashMap<&str, &Op> = creates
        .iter()
        .filter(|o| o.a.status == 201)
        .map(|o| (o.id.as_str(), *o))
        .collect();
    let mut deletes: HashMap<&str, Vec<&Op>> = HashMap::new();
    for o in ops.iter().filter(|o| o.kind == Kind::Delete) {
        deletes.entry(o.id.as_str()).or_default().push(o);
    }
    let mut by_cidr: HashMap<(&str, &str), Vec<&Op>> = HashMap::new();
    for o in &creates {
        by_cidr
            .entry((o.prefix.as_str(), o.cidr.as_str()))
            .or_default()
            .push(o);
    }
    // Answers that are impossible on their own.
    for ((p, cidr), cs) in &by_cidr {
        let won = cs.iter().filter(|o| o.a.status == 201).count();
        let open = cs.iter().filter(|o| o.indeterminate()).count();
        let conflict = cs.iter().filter(|o| o.a.status == 409).count();
        if won > 1 {
            v.push(format!(
                "{p} {cidr}: {won} creates answered 201:\n  {}",
                cs.iter().map(|o| o.line()).collect::<Vec<_>>().join("\n  ")
            ));
        }
        if conflict > 0 && won == 0 && open == 0 {
            v.push(format!(
                "{p} {cidr}: 409 with no create acknowledged or open (a conflict with a write that never happened, or the server's own retry):\n  {}",
                cs.iter().map(|o| o.line()).collect::<Vec<_>>().join("\n  ")
            ));
        }
        for o in cs {
            if !(o.ok() || o.indeterminate() || (o.a.status == 409 && o.a.code() == Some(1108))) {
                v.push(format!("unexpected create answer: {}", o.line()));
            }
        }
    }
    for (id, ds) in &deletes {
        for d in ds {
            // Each id is deleted once; a 404 is only possible after another delete of it.
            let other = ds.iter().any(|e| e.n != d.n && e.start < d.end);
            if d.a.status == 404 && !other {
                v.push(format!(
                    "delete of {id} answered 404 though it was created ({}) and never deleted before: {}",
                    acked.get(id).map(|c| c.line()).unwrap_or_default(),
                    d.line()
                ));
            } else if !(d.ok() || d.indeterminate() || d.a.status == 404) {
                v.push(format!("unexpected delete answer: {}", d.line()));
            }
        }
    }
    // The final state, the same on both replicas.
    for (i, f) in finals.iter().enumerate().skip(1) {
        if f != &finals[0] {
            let ids = |l: &Vec<Value>| -> BTreeSet<String> {
                l.iter()
                    .map(|b| b["id"].as_str().unwrap_or("").to_owned())
                    .collect()
            };
            v.push(format!(
                "replica {i} ends with another list than replica 0: only in 0: {:?}, only in {i}: {:?}",
                ids(&finals[0]).difference(&ids(f)).collect::<Vec<_>>(),
                ids(f).difference(&ids(&finals[0])).collect::<Vec<_>>()
            ));
        }
    }
    let fin = &finals[0];
    let present: HashMap<&str, &Value> = fin
        .iter()
        .map(|b| (b["id"].as_str().unwrap_or(""), b))
        .collect();
    let mut seen_cidr: HashMap<(&str, &str), &str> = HashMap::new();
    for b in fin {
        let key = (
            b["prefix_id"].as_str().unwrap_or(""),
            b["cidr"].as_str().unwrap_or(""),
        );
        let id = b["id"].as_str().unwrap_or("");
        if let Some(other) = seen_cidr.insert(key, id) {
            v.push(format!("{key:?} bound twice at the end: {other} and {id}"));
        }
        match acked.get(id) {
            Some(c) => {
                if (c.prefix.as_str(), c.cidr.as_str()) != key {
                    v.push(format!("{id} ends as {key:?}, created as {}", c.line()));
                }
            }
            None => {
                let open = by_cidr
                    .get(&key)
                    .is_some_and(|cs| cs.iter().any(|o| o.indeterminate()));
                if !open {
                    v.push(format!(
                        "{id} {key:?} is at the end but no client was told of it and no create of it is open"
                    ));
                }
            }
        }
    }
    for (id, c) in &acked {
        let ds = deletes.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let deleted = ds.iter().any(|d| d.ok());
        let maybe = ds.iter().any(|d| d.indeterminate());
        match (present.contains_key(id), deleted, maybe) {
            (true, true, _) => v.push(format!(
                "{id} was deleted ({}) but is at the end",
                ds.iter().map(|d| d.line()).collect::<Vec<_>>().join("; ")
            )),
            (false, false, false) => v.push(format!(
                "acknowledged create lost: {} (deletes: {:?})",
                c.line(),
                ds.iter().map(|d| d.line()).collect::<Vec<_>>()
            )),
            _ => {}
        }
    }
    // (e) reads: each saw a state that existed between its request and its answer.
    let (mut reads, mut stale, mut failed) = (0, 0, 0);
    for o in ops
        .iter()
        .filter(|o| matches!(o.kind, Kind::Get | Kind::List))
    {
        reads += 1;
        if o.a.stale.is_some() {
            stale += 1;
        }
        if o.a.status != 200 && !(o.kind == Kind::Get && o.a.status == 404) {
            failed += 1;
            v.push(format!(
                "a read failed (reads keep answering): {}",
                o.line()
            ));
            continue;
        }
        if o.a.stale.is_some() {
            // Answered from the replica's last state, marked so: not checked for freshness.
            continue;
        }
        // Must be visible: created (acknowledged) before the read began, no delete begun
        // before it ended. Must be gone: a delete acknowledged before the read began.
        let must_see = |id: &str| {
            acked.get(id).is_some_and(|c| c.end < o.start)
                && !deletes
                    .get(id)
                    .is_some_and(|ds| ds.iter().any(|d| d.start < o.end))
        };
        let must_miss = |id: &str| {
            deletes
                .get(id)
                .is_some_and(|ds| ds.iter().any(|d| d.ok() && d.end < o.start))
        };
        match o.kind {
            Kind::Get => {
                let found = o.a.status == 200;
                if !found && must_see(&o.id) {
                    v.push(format!(
                        "stale read: {} missed {} acknowledged before it",
                        o.line(),
                        acked[o.id.as_str()].line()
                    ));
                }
                if found && must_miss(&o.id) {
                    v.push(format!(
                        "stale read: {} found a binding deleted before it: {:?}",
                        o.line(),
                        deletes[o.id.as_str()]
                            .iter()
                            .map(|d| d.line())
                            .collect::<Vec<_>>()
                    ));
                }
                if found {
                    if let Some(c) = acked.get(o.id.as_str()) {
                        if o.a.body["result"]["cidr"] != c.cidr.as_str() {
                            v.push(format!(
                                "{} answered another CIDR than {}",
                                o.line(),
                                c.line()
                            ));
                        }
                    }
                }
            }
            Kind::List => {
                if o.a.body["result_info"]["cursor"] != "" {
                    continue; // more than one page: not one state
                }
                let ids: BTreeSet<&str> = o.listed.iter().map(|(id, _, _)| id.as_str()).collect();
                for (id, c) in &acked {
                    if must_see(id) && !ids.contains(id) {
                        v.push(format!(
                            "stale list: {} misses {} acknowledged before it",
                            o.line(),
                            c.line()
                        ));
                    }
                }
                for (id, p, cidr) in &o.listed {
                    if must_miss(id) {
                        v.push(format!(
                            "stale list: {} lists {id}, deleted before it: {:?}",
                            o.line(),
                            deletes[id.as_str()]
                                .iter()
                                .map(|d| d.line())
                                .collect::<Vec<_>>()
                        ));
                    }
                    let begun = by_cidr
                        .get(&(p.as_str(), cidr.as_str()))
                        .is_some_and(|cs| cs.iter().any(|c| c.start < o.end));
                    if !begun {
                        v.push(format!(
                            "{} lists {id} {p} {cidr}, which no client had asked for yet",
                            o.line()
                        ));
                    }
                }
            }
            _ => unreachable!(),
        }
    }
    let summary = format!(
        "{} ops: {} creates ({} acknowledged, {} indeterminate), {} deletes ({} acknowledged, {} indeterminate), {reads} reads ({stale} marked stale, {failed} failed); {} bindings at the end",
        ops.len(),
        creates.len(),
        acked.len(),
        creates.iter().filter(|o| o.indeterminate()).count(),
        deletes.values().map(Vec::len).sum::<usize>(),
        deletes.values().flatten().filter(|d| d.ok()).count(),
        deletes.values().flatten().filter(|d| d.indeterminate()).count(),
        fin.len()
    );
    (v, summary)
}

/// Load through both replicas: 3 writers (creates and deletes of CIDRs of their own),
/// a racer (4 clients creating one CIDR at once, the winner deleted again every other
/// time), a reader (GETs of known ids and one-page lists). Runs until `stop`.
fn run_load(bases: &[String; 2], h: &History, stop: &AtomicBool) {
    let known: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // Long enough to see when a stuck write is answered (etcd's own request timeout is
    // about 7 s).
    let c = || client(Duration::from_secs(30));
    std::thread::scope(|s| {
        for w in 0..3usize {
            let known = &known;
            s.spawn(move || {
                let c = c();
                let mut live: Vec<String> = Vec::new();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let rep = (i as usize + w) % 2;
                    if live.len() >= 8 || (live.len() > 2 && rand::random::<u8>().is_multiple_of(3))
                    {
                        let id = live.swap_remove(rand::random::<usize>() % live.len());
                        h.record(Kind::Delete, rep, "", "", &id, || {
                            call(&c, "DELETE", &bases[rep], &format!("{BINDINGS}/{id}"), None)
                        });
                    } else {
                        let cidr = format!("2001:db8:100{w:x}:{i:x}::/64");
                        let op = h.record(Kind::Create, rep, V6_PREFIX, &cidr, "", || {
                            create(&c, &bases[rep], V6_PREFIX, &cidr, "eu")
                        });
                        if op.a.status == 201 {
                            live.push(op.id.clone());
                            known.lock().unwrap().push(op.id);
                        }
                    }
                    i += 1;
                }
            });
        }
        // One prober per replica.
        for (rep, base) in bases.iter().enumerate() {
            s.spawn(move || {
                let c = c();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let cidr = format!("2001:db8:{:x}:{i:x}::/64", 0x1008 + rep);
                    let op = h.record(Kind::Probe, rep, V6_PREFIX, &cidr, "", || {
                        create(&c, base, V6_PREFIX, &cidr, "eu")
                    });
                    if op.a.status == 201 {
                        h.record(Kind::Delete, rep, "", "", &op.id, || {
                            call(&c, "DELETE", base, &format!("{BINDINGS}/{}", op.id), None)
                        });
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        // The racer.
        {
            let known = &known;
            s.spawn(move || {
                let cl = c();
                let mut k = 0u32;
                while !stop.load(Ordering::Relaxed) && k < 0xffff {
                    // Unique per race: a CIDR is raced once.
                    let cidr = format!("2001:db8:100f:{k:x}::/64");
                    let barrier = Barrier::new(4);
                    let ops: Vec<Op> = std::thread::scope(|s2| {
                        let hs: Vec<_> = (0..4usize)
                            .map(|j| {
                                let (barrier, cidr) = (&barrier, &cidr);
                                s2.spawn(move || {
                                    let c = c();
                                    let body = create_body(V6_PREFIX, cidr, "eu");
                                    barrier.wait();
                                    h.record(Kind::RaceCreate, j % 2, V6_PREFIX, cidr, "", || {
                                        call(&c, "POST", &bases[j % 2], BINDINGS, Some(&body))
                                    })
                                })
                            })
                            .collect();
                        hs.into_iter().map(|h| h.join().unwrap()).collect()
                    });
                    if let Some(won) = ops.iter().find(|o| o.a.status == 201) {
                        known.lock().unwrap().push(won.id.clone());
                        if k.is_multiple_of(2) {
                            let rep = (won.replica + 1) % 2;
                            h.record(Kind::Delete, rep, "", "", &won.id, || {
                                call(
                                    &cl,
                                    "DELETE",
                                    &bases[rep],
                                    &format!("{BINDINGS}/{}", won.id),
                                    None,
                                )
                            });
                        }
                    }
                    k += 1;
                }
            });
        }
        // The reader.
        s.spawn(|| {
            let c = c();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let rep = i % 2;
                if i % 4 == 3 {
                    h.record(Kind::List, rep, "", "", "", || {
                        call(
                            &c,
                            "GET",
                            &bases[rep],
                            &format!("{BINDINGS}?per_page=100"),
                            None,
                        )
                    });
                } else {
                    let id = {
                        let k = known.lock().unwrap();
                        if k.is_empty() {
                            None
                        } else {
                            Some(k[rand::random::<usize>() % k.len()].clone())
                        }
                    };
                    if let Some(id) = id {
                        h.record(Kind::Get, rep, "", "", &id, || {
                            call(&c, "GET", &bases[rep], &format!("{BINDINGS}/{id}"), None)
                        });
                    }
                }
                i += 1;
            }
        });
    });
}

#[test]
fn an_etcd_member_killed_under_load_loses_no_acknowledged_write() {
    let t = Instant::now();
    let (cluster, _prefix, r) = two_replicas(&[]);
    let bases = [r[0].base.clone(), r[1].base.clone()];
    eprintln!("cluster and 2 replicas up in {:?}", t.elapsed());
    let h = History::new();
    let stop = AtomicBool::new(false);
    let events = Mutex::new(Vec::<String>::new());
    let stopped_at = Mutex::new(0.0f64);
    std::thread::scope(|s| {
        s.spawn(|| run_load(&bases, &h, &stop));
        let ev = |what: String| {
            eprintln!("[{:.3}s] {what}", h.now());
            events
                .lock()
                .unwrap()
                .push(format!("[{:.3}s] {what}", h.now()));
        };
        std::thread::sleep(Duration::from_secs(3));
        let leader = cluster.leader().expect("a leader");
        ev(format!("kill -9 etcd member {leader} (the leader)"));
        cluster.kill9(leader);
        std::thread::sleep(Duration::from_secs(6));
        ev(format!("restart etcd member {leader}"));
        cluster.restart(leader);
        ev(format!("member {leader} healthy"));
        std::thread::sleep(Duration::from_secs(2));
        let follower = (0..3).find(|&i| Some(i) != cluster.leader()).unwrap();
        ev(format!("kill -9 etcd member {follower} (a follower)"));
        cluster.kill9(follower);
        std::thread::sleep(Duration::from_secs(3));
        ev(format!("restart etcd member {follower}"));
        cluster.restart(follower);
        std::thread::sleep(Duration::from_secs(2));
        ev("stop the load".into());
        *stopped_at.lock().unwrap() = h.now();
        stop.store(true, Ordering::Relaxed);
    });
    let ops = h.take();
    let c = client(Duration::from_secs(30));
    let finals = [list_all(&c, &bases[0]), list_all(&c, &bases[1])];
    let path = write_history("member_killed", &ops);
    let (mut violations, summary) = check_history(&ops, &finals);
    let stopped_at = *stopped_at.lock().unwrap();
    violations.extend(availability(&ops, &[0, 1], 1.0, stopped_at, 10.0));
    eprintln!(
        "{summary}; test took {:?}; history in {}",
        t.elapsed(),
        path.display()
    );
    assert!(
        violations.is_empty(),
        "{} violations ({summary}; events: {:?}; history in {}):\n{}",
        violations.len(),
        events.lock().unwrap(),
        path.display(),
        report(&violations)
    );
    assert!(
        ops.iter()
            .filter(|o| o.kind == Kind::Create && o.ok())
            .count()
            > 50,
        "too little load got through: {summary}"
    );
}

// ---------------------------------------------------------------------------------------
// (d) a replica killed with -9

#[test]
fn a_replica_killed_with_9_leaves_the_other_serving() {
    let t = Instant::now();
    let cluster = Cluster::start(3);
    let prefix = unique_prefix();
    let mut a = Some(replica(&cluster, &prefix, &[]));
    let b = replica(&cluster, &prefix, &[]);
    let bases = [a.as_ref().unwrap().base.clone(), b.base.clone()];
    let h = History::new();
    let stop = AtomicBool::new(false);
    let killed_at = Mutex::new(0.0f64);
    std::thread::scope(|s| {
        s.spawn(|| run_load(&bases, &h, &stop));
        std::thread::sleep(Duration::from_secs(3));
        *killed_at.lock().unwrap() = h.now();
        eprintln!("[{:.3}s] kill -9 replica 0", h.now());
        drop(a.take()); // SIGKILL
        std::thread::sleep(Duration::from_secs(5));
        stop.store(true, Ordering::Relaxed);
    });
    let killed_at = *killed_at.lock().unwrap();
    let mut ops = h.take();
    // Reads of the dead replica that got no answer changed nothing: not part of the
    // history (its writes stay in, indeterminate).
    ops.retain(|o| {
        !(o.replica == 0
            && matches!(o.kind, Kind::Get | Kind::List)
            && o.a.status == 0
            && o.end >= killed_at)
    });
    // Replica 1 answered everything, before and after; replica 0's answers after the kill
    // are connection errors (indeterminate if in flight).
    let mut v = Vec::new();
    for o in &ops {
        if o.replica == 1 && o.indeterminate() {
            v.push(format!(
                "replica 1 failed (a read failed or no write answer): {}",
                o.line()
            ));
        }
    }
    let after: Vec<&Op> = ops
        .iter()
        .filter(|o| o.replica == 1 && o.start > killed_at + 0.5)
        .collect();
    let writes_after = after
        .iter()
        .filter(|o| matches!(o.kind, Kind::Create | Kind::Probe | Kind::Delete) && o.ok())
        .count();
    let reads_after = after
        .iter()
        .filter(|o| matches!(o.kind, Kind::Get | Kind::List) && o.a.status == 200)
        .count();
    if writes_after < 10 || reads_after < 10 {
        v.push(format!(
            "replica 1 served {writes_after} writes and {reads_after} reads after the kill"
        ));
    }
    // A new replica sees what replica 1 sees, and the history holds.
    let c = replica(&cluster, &prefix, &[]);
    let cl = client(Duration::from_secs(30));
    let finals = [list_all(&cl, &b.base), list_all(&cl, &c.base)];
    let path = write_history("replica_killed", &ops);
    let (hv, summary) = check_history(&ops, &finals);
    v.extend(hv);
    // Nothing happened to etcd: the survivor takes writes all along.
    v.extend(availability(&ops, &[1], 1.0, killed_at + 5.0, 3.0));
    eprintln!(
        "{summary}; test took {:?}; history in {}",
        t.elapsed(),
        path.display()
    );
    assert!(
        v.is_empty(),
        "{} violations ({summary}; history in {}):\n{}",
        v.len(),
        path.display(),
        report(&v)
    );
}

// ---------------------------------------------------------------------------------------
// no quorum

/// With 2 of 3 members stopped, a write answers a Cloudflare-shaped 503 with
/// `x-should-retry: true` (not a hang, not a 500), reads answer from the replica's last
/// state marked `x-inregion-stale-ms`; once quorum is back, writes succeed and reads are
/// fresh, and nothing acknowledged was lost.
#[test]
fn without_quorum_writes_answer_503_and_reads_answer_the_last_state() {
    let t = Instant::now();
    let (cluster, _prefix, r) = two_replicas(&[]);
    let c = client(Duration::from_secs(60));
    let b = create(&c, &r[0].base, DEMO_PREFIX, "203.0.113.0/24", "eu");
    assert_eq!(b.status, 201, "{}", b.text);
    let id = b.id().unwrap();
    let before = [list_all(&c, &r[0].base), list_all(&c, &r[1].base)];
    // Two members down; the one left may be any of them.
    let leader = cluster.leader().unwrap();
    let x = (leader + 1) % 3;
    cluster.kill9(leader);
    cluster.stop(x);
    let mut failures = Vec::new();
    for (i, s) in r.iter().enumerate() {
        let t0 = Instant::now();
        let w = create(
            &c,
            &s.base,
            DEMO_PREFIX,
            &format!("203.0.114.{}/32", i),
            "eu",
        );
        let took = t0.elapsed();
        eprintln!(
            "replica {i}: write without quorum answered {} in {took:?}: {}",
            w.status, w.text
        );
        if !(w.status == 503
            && w.body["success"] == false
            && w.body["errors"].as_array().is_some_and(|e| !e.is_empty())
            && w.body["result"].is_null()
            && w.retry.as_deref() == Some("true"))
        {
            failures.push(format!(
                "replica {i}: write without quorum answered {} (x-should-retry {:?}) after {took:?}: {}",
                w.status, w.retry, w.text
            ));
        }
        let t0 = Instant::now();
        let g = call(&c, "GET", &s.base, &format!("{BINDINGS}/{id}"), None);
        let took = t0.elapsed();
        eprintln!(
            "replica {i}: read without quorum answered {} (stale {:?}) in {took:?}",
            g.status, g.stale
        );
        if g.status != 200 || g.body["result"] != b.body["result"] || g.stale.is_none() {
            failures.push(format!(
                "replica {i}: read without quorum answered {} (x-inregion-stale-ms {:?}) after {took:?}: {}",
                g.status, g.stale, g.text
            ));
        }
        if let Some(ms) = g.stale.as_deref() {
            if ms.parse::<u64>().is_err() {
                failures.push(format!("x-inregion-stale-ms is not a number of ms: {ms:?}"));
            }
        }
        let l = call(
            &c,
            "GET",
            &s.base,
            &format!("{BINDINGS}?per_page=100"),
            None,
        );
        if l.status != 200 || l.body["result"].as_array() != Some(&before[i]) || l.stale.is_none() {
            failures.push(format!(
                "replica {i}: list without quorum answered {} (stale {:?}): {}",
                l.status, l.stale, l.text
            ));
        }
    }
    cluster.restart(leader);
    cluster.restart(x);
    // Writes succeed again (allow the replicas a few seconds to reconnect), reads are
    // fresh, and the writes that answered 503 did not happen.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0u32;
    for (i, s) in r.iter().enumerate() {
        loop {
            n += 1;
            let w = create(&c, &s.base, DEMO_PREFIX, &format!("203.0.115.{n}/32"), "eu");
            if w.status == 201 {
                break;
            }
            if Instant::now() > deadline {
                failures.push(format!(
                    "replica {i}: writes still fail after quorum returned: {} {}",
                    w.status, w.text
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let after = [list_all(&c, &r[0].base), list_all(&c, &r[1].base)];
    if after[0] != after[1] {
        failures.push(format!("replicas differ after quorum returned: {after:?}"));
    }
    for x in &after[0] {
        if x["cidr"].as_str().unwrap_or("").starts_with("203.0.114.") {
            // A 5xx is indeterminate: allowed, but worth knowing.
            eprintln!("note: a write answered 503 without quorum happened after all: {x}");
        }
    }
    eprintln!("test took {:?}", t.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// counterparts of tests/api_http.rs's SQLite-only tests (api_support::SQLITE_ONLY)

/// A replica stopped (SIGTERM), then one killed with -9, come back on their prefix with
/// every record: bindings (one patched, one deleted), a custom region, a seeded token, an
/// address map; the given dev token keeps working.
#[test]
fn a_replica_restarted_on_its_prefix_keeps_its_state() {
    let cluster = Cluster::start(3);
    let prefix = unique_prefix();
    let mut s = replica(&cluster, &prefix, &[]);
    let c = client(Duration::from_secs(30));
    s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    let b2 = s.create(V6_PREFIX, "2001:db8:1000::/48", "us");
    let b3 = s.create(V6_PREFIX, "2001:db8:1001::/48", "us");
    let id = |b: &Value| b["id"].as_str().unwrap().to_owned();
    s.dev(
        "PATCH",
        &format!("{BINDINGS}/{}", id(&b2)),
        Some(json!({"region_key": "ca"})),
    )
    .ok(200);
    s.dev("DELETE", &format!("{BINDINGS}/{}", id(&b3)), None)
        .ok(200);
    s.admin(
        "POST",
        "/seed",
        Some(json!({
            "regions": [{"account": ACCOUNT, "key": "kept", "name": "Kept", "countries": ["DE"]}],
            "tokens": [{"name": "late", "secret": LATE_TOKEN, "accounts": [ACCOUNT], "permissions": ["DLS: Read"]}]
        })),
    )
    .ok(200);
    s.dev(
        "POST",
        "/addressing/address_maps",
        Some(json!({"description": "kept map"})),
    )
    .ok(200);
    let snapshot = |s: &Server| {
        (
            list_all(&c, &s.base),
            s.dev("GET", "/dls/regions", None).ok(200).clone(),
            s.dev("GET", "/addressing/address_maps", None)
                .ok(200)
                .clone(),
        )
    };
    let before = snapshot(&s);
    assert_eq!(before.0.len(), 2);
    for (how, stop) in [
        ("SIGTERM", Server::stop as fn(Server)),
        ("kill -9", drop::<Server> as fn(Server)),
    ] {
        stop(s);
        s = replica(&cluster, &prefix, &[]);
        assert_eq!(snapshot(&s), before, "after {how} and a restart");
        s.call("GET", LATE_TOKEN, ACCOUNT, BINDINGS, None).ok(200);
    }
}

/// A member that hangs (SIGSTOP: its connections stay open, nothing answers on them) is
/// left behind: the replica's requests start with that member (the first endpoint), time
/// out once, and from then on go to the other two, and its watch (HTTP/2 pings) moves too;
/// writes and reads answer again within seconds, and nothing acknowledged is lost.
#[test]
fn a_hung_etcd_member_is_left_behind() {
    let cluster = Cluster::start(3);
    let prefix = unique_prefix();
    let s = replica(&cluster, &prefix, &[]);
    let c = client(Duration::from_secs(60));
    s.create(DEMO_PREFIX, "203.0.113.0/26", "eu");
    cluster.pause(0);
    let paused = Instant::now();
    let mut acknowledged = vec!["203.0.113.0/26".to_string()];
    // Creates the next CIDR; notes it when acknowledged.
    let mut n = 0;
    let mut create_next = |acknowledged: &mut Vec<String>| {
        let cidr = format!("2001:db8:1000:{:x}::/64", 0x2000 + n);
        n += 1;
        let a = create(&c, &s.base, V6_PREFIX, &cidr, "eu");
        if a.status == 201 {
            acknowledged.push(canon(&cidr));
        }
        a
    };
    let first = loop {
        assert!(
            paused.elapsed() < Duration::from_secs(60),
            "no write acknowledged within 60 s of member 0 hanging"
        );
        let a = create_next(&mut acknowledged);
        if a.status == 201 {
            break paused.elapsed();
        }
        eprintln!(
            "[{:.1}s] create: {} {}",
            paused.elapsed().as_secs_f64(),
            a.status,
            a.text
        );
    };
    eprintln!(
        "first write acknowledged {:.1}s after member 0 hung",
        first.as_secs_f64()
    );
    for _ in 0..10 {
        let t = Instant::now();
        let a = create_next(&mut acknowledged);
        assert_eq!(a.status, 201, "a write after the first one: {}", a.text);
        let r = call(&c, "GET", &s.base, BINDINGS, None);
        assert_eq!(r.status, 200, "a read: {}", r.text);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "a write and a read took {:?}: the replica still waits on the hung member",
            t.elapsed()
        );
    }
    let listed: BTreeSet<String> = list_all(&c, &s.base)
        .iter()
        .map(|b| b["cidr"].as_str().unwrap().to_owned())
        .collect();
    for a in &acknowledged {
        assert!(
            listed.contains(a),
            "acknowledged {a} is not listed: {listed:?}"
        );
    }
    cluster.resume(0);
}

/// A replica whose watch must resume from a revision that etcd has compacted away lists
/// everything again (the informer's re-list) instead of waiting for its periodic re-read
/// (60 s) or missing what happened: replica B is frozen, the member its watch is on is
/// killed, A writes, etcd's history is compacted past B's last revision, B is thawed.
#[test]
fn a_watch_resumed_past_a_compaction_lists_again() {
    let cluster = Cluster::start(3);
    let prefix = unique_prefix();
    let a = replica(&cluster, &prefix, &[]);
    let b = replica(&cluster, &prefix, &[]);
    let c = client(Duration::from_secs(60));
    a.create(DEMO_PREFIX, "203.0.113.0/26", "eu");
    assert_eq!(list_all(&c, &b.base).len(), 1);
    assert!(signal(b.pid(), "STOP"), "kill -STOP B");
    // Both replicas' first endpoint, where B's watch is: B's connection dies under it.
    // Made the leader first, so that every run meets the harder case: nothing is written
    // until the other two elect a leader (1-2 s; writes answer 503, retryable, as they
    // should), and A's connection to member 0 breaks under its next request.
    cluster.make_leader(0).unwrap();
    cluster.kill9(0);
    // Creates `cidr` through `base`, again while it answers 503 (retryable), until
    // `deadline`; returns how many 503s came first.
    let create = |base: &str, cidr: &str, deadline: Instant| {
        let mut refused = 0;
        loop {
            let r = create(&c, base, V6_PREFIX, cidr, "eu");
            if r.status == 201 {
                return refused;
            }
            assert!(
                r.status == 503 && Instant::now() < deadline,
                "create of {cidr} through {base} after member 0 died: {} {}",
                r.status,
                r.text
            );
            refused += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let (killed, deadline) = (Instant::now(), Instant::now() + Duration::from_secs(20));
    let mut refused = 0;
    for i in 0..5 {
        let cidr = format!("2001:db8:1000:{:x}::/64", 0x3000 + i);
        refused += create(&a.base, &cidr, deadline);
    }
    eprintln!(
        "five creates through A {:?} after the leader died ({refused} answered 503 first)",
        killed.elapsed()
    );
    let now = cluster.put(1, "/compaction-mark", "x").unwrap();
    cluster
        .gateway(
            1,
            "/v3/kv/compaction",
            &json!({"revision": now.to_string(), "physical": true}),
        )
        .unwrap();
    let thawed = Instant::now();
    assert!(signal(b.pid(), "CONT"), "kill -CONT B");
    let expected = list_all(&c, &a.base);
    assert_eq!(expected.len(), 6);
    // Reads on B wait (up to 2 s) until it has applied etcd's newest revision, which
    // takes the re-list; a read that could not confirm it answers B's last state, so ask
    // until it matches: well before the periodic re-read (60 s) if the re-list works.
    let caught_up = thawed + Duration::from_secs(20);
    let mut seen = list_all(&c, &b.base);
    while seen != expected && Instant::now() < caught_up {
        std::thread::sleep(Duration::from_millis(200));
        seen = list_all(&c, &b.base);
    }
    assert_eq!(seen, expected);
    assert!(
        thawed.elapsed() < Duration::from_secs(20),
        "B caught up only after {:?} (its periodic re-read, not the re-list)",
        thawed.elapsed()
    );
    eprintln!("B caught up {:?} after it was thawed", thawed.elapsed());
    create(&b.base, "2001:db8:1000:4000::/64", caught_up);
    assert_eq!(list_all(&c, &a.base).len(), 7);
}

const LATE_TOKEN: &str = "late-token-0000000000000000000000";

/// Secrets at rest on etcd (the counterpart of api_http's check of the SQLite file): no
/// value or key under the prefix holds a token secret, its plain SHA-256 (hex, raw or
/// base64), for the dev token, the config's tokens, a seeded one and one the admin
/// surface created.
#[test]
fn etcd_holds_no_token_secret_or_plain_digest() {
    use sha2::Digest;
    let cluster = Cluster::start(3);
    let prefix = unique_prefix();
    let s = replica(&cluster, &prefix, &[]);
    s.admin(
        "POST",
        "/seed",
        Some(json!({"tokens": [{"name": "late", "secret": LATE_TOKEN, "accounts": [ACCOUNT], "permissions": ["DLS: Read"]}]})),
    )
    .ok(200);
    let acct = s.admin("POST", "/accounts", Some(json!({})));
    let acct_token = acct.ok(200)["token"].as_str().unwrap().to_owned();
    // Every token works, so every one is stored in some form.
    for t in [DEV_TOKEN, READ_TOKEN, LATE_TOKEN] {
        s.call("GET", t, ACCOUNT, BINDINGS, None).ok(200);
    }
    let kvs = cluster.range_prefix(0, &prefix).unwrap();
    assert!(kvs.len() > 10, "{} keys under {prefix}", kvs.len());
    let mut found = Vec::new();
    for secret in [
        DEV_TOKEN,
        READ_TOKEN,
        DLS_WRITE_TOKEN,
        OFFICE_TOKEN,
        LATE_TOKEN,
        acct_token.as_str(),
    ] {
        let digest = sha2::Sha256::digest(secret.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let forms: [(&str, Vec<u8>); 5] = [
            ("secret", secret.as_bytes().to_vec()),
            ("hex SHA-256", hex.clone().into_bytes()),
            ("HEX SHA-256", hex.to_uppercase().into_bytes()),
            ("raw SHA-256", digest.to_vec()),
            (
                "base64 SHA-256",
                api_support::etcd_support::b64(&digest).into_bytes(),
            ),
        ];
        for (k, v) in &kvs {
            for (what, form) in &forms {
                let hit = |hay: &[u8]| hay.windows(form.len()).any(|w| w == form.as_slice());
                if hit(v) || hit(k.as_bytes()) {
                    found.push(format!("{what} of token {secret:?} in {k}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The fixture surface across replicas (the counterpart of api_fixture's online snapshot
/// round trip): a snapshot saved through one replica and restored through the other is
/// the world of both at once, and a reset through one is seen through the other at once.
#[test]
fn a_snapshot_restored_through_one_replica_is_the_world_of_both() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("snap.json");
    let (_cluster, _prefix, r) = two_replicas(&[]);
    let c = client(Duration::from_secs(30));
    for i in 0..20 {
        r[0].create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "eu");
    }
    r[1].dev(
        "POST",
        "/addressing/address_maps",
        Some(json!({"description": "m"})),
    )
    .ok(200);
    let acct = r[1].admin("POST", "/accounts", None).ok(200).clone();
    // Everything but the clock (its offset is per replica).
    let world = |s: &Server| {
        json!({
            "bindings": list_all(&c, &s.base),
            "maps": s.dev("GET", "/addressing/address_maps", None).ok(200).clone(),
            "regions": s.dev("GET", "/dls/regions", None).ok(200).clone(),
            "prefixes": s.dev("GET", "/addressing/prefixes", None).ok(200).clone(),
        })
    };
    let before = world(&r[0]);
    assert_eq!(world(&r[1]), before);
    let snapshot = |action: &str, s: &Server| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_inregion"))
            .args(["snapshot", action])
            .arg(&file)
            .args(["--server", &s.base, "--admin-token", ADMIN_TOKEN])
            .env_remove("INREGION_ADMIN_TOKEN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "snapshot {action} through {}: {}",
            s.base,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    snapshot("save", &r[0]);
    r[1].admin("POST", "/reset", None).ok(200);
    assert_eq!(
        list_all(&c, &r[0].base),
        Vec::<Value>::new(),
        "a reset through replica 1, read through replica 0"
    );
    r[0].create(DEMO_PREFIX, "203.0.113.200/32", "us");
    snapshot("restore", &r[1]);
    assert_eq!(
        world(&r[0]),
        before,
        "restored through replica 1, read through replica 0"
    );
    assert_eq!(world(&r[1]), before);
    r[0].call(
        "GET",
        acct["token"].as_str().unwrap(),
        acct["account_id"].as_str().unwrap(),
        BINDINGS,
        None,
    )
    .ok(200);
}

/// Two replicas, each saturated by writers of its own: both keep committing, every
/// create answers 201 within 5 s. Without turns (`want/`), the replica that had just
/// committed won race after race once the state was large (copying it for the loser's
/// writers took longer than the winner's next commit): with 64 wrk connections per
/// replica and 15-30k bindings, one replica answered nothing for 10 s while the other
/// did 1,300/s (`scripts/bench-etcd.sh`). At this test's size the old code starved less:
/// it passed, with slowest answers of 2-3 s against 0.6-0.7 s with turns.
#[test]
fn two_saturated_replicas_both_commit() {
    const WRITERS: usize = 32;
    const FOR: Duration = Duration::from_secs(6);
    let (_cluster, _prefix, r) = two_replicas(&[]);
    let bases = [r[0].base.clone(), r[1].base.clone()];
    let start = Instant::now();
    // Per replica: created, other answers, slowest answer.
    let results: Vec<(usize, u64, Vec<String>, Duration)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2 * WRITERS)
            .map(|w| {
                let base = &bases[w % 2];
                s.spawn(move || {
                    let c = client(Duration::from_secs(30));
                    let (mut created, mut other, mut slowest) = (0u64, Vec::new(), Duration::ZERO);
                    let mut i = 0u32;
                    while start.elapsed() < FOR {
                        let cidr = format!("2001:db8:1000:{w:x}:{i:x}::/80");
                        let t = Instant::now();
                        let a = create(&c, base, V6_PREFIX, &cidr, "eu");
                        slowest = slowest.max(t.elapsed());
                        if a.status == 201 {
                            created += 1;
                        } else if other.len() < 2 {
                            other.push(format!("{} {:.200}", a.status, a.text));
                        }
                        i += 1;
                    }
                    (w % 2, created, other, slowest)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut created = [0u64; 2];
    let mut slowest = [Duration::ZERO; 2];
    let mut other = Vec::new();
    for (rep, n, o, s) in results {
        created[rep] += n;
        slowest[rep] = slowest[rep].max(s);
        other.extend(o.into_iter().map(|o| format!("replica {rep}: {o}")));
    }
    let total = created[0] + created[1];
    eprintln!("created {created:?} in {FOR:?}, slowest answer {slowest:?}");
    assert!(other.is_empty(), "answers other than 201: {other:?}");
    for rep in 0..2 {
        assert!(
            created[rep] * 10 >= total,
            "replica {rep} committed {} of {total} creates (under 10%): {created:?}",
            created[rep]
        );
        assert!(
            slowest[rep] < Duration::from_secs(5),
            "replica {rep}: a create took {:?}",
            slowest[rep]
        );
    }
}

/// etcd keeps every revision until it is compacted; a cluster run without
/// `--auto-compaction-*` reaches its space quota (2 GiB by default, 1 MiB here, most of
/// it taken by one key's history beforehand) and then
/// refuses every write ("mvcc: database space exceeded", its NOSPACE alarm). Creates must
/// then answer 503 with `x-should-retry: true`, change nothing, and leave reads
/// answering; once an operator compacts, defragments and disarms the alarm, writes go
/// through again, on the same replica, without a restart.
#[test]
fn etcd_out_of_space_refuses_writes_and_recovers_once_compacted() {
    let cluster = Cluster::start_with(
        1,
        &[
            "--quota-backend-bytes",
            "1048576",
            "--backend-batch-interval",
            "1ms",
        ],
    );
    // Most of the quota taken by the history of one key (what a compaction frees), so
    // that the live records fit easily once an operator has compacted.
    let junk = "x".repeat(4096);
    for _ in 0..100 {
        cluster.put(0, "/junk", &junk).unwrap();
    }
    let prefix = unique_prefix();
    let a = replica(&cluster, &prefix, &[]);
    let b = replica(&cluster, &prefix, &[]);
    let c = client(Duration::from_secs(60));
    let create = |i: u32| {
        let cidr = format!("2001:db8:1000:{:x}::/64", i & 0xffff);
        let base = if i.is_multiple_of(2) {
            &a.base
        } else {
            &b.base
        };
        create(&c, base, V6_PREFIX, &cidr, "eu")
    };
    // Eight writers at once through two replicas, so that several transactions are in
    // flight when the quota is crossed: etcd applies the one that crosses it and answers
    // it "database space exceeded" all the same, which the server must not report as a
    // failure. Timing decides whether a run meets that case (the backend's size moves
    // when it commits, hence its 1 ms batches here): with the fix reverted, 1 run in 8
    // to 12 fails.
    const WRITERS: u32 = 8;
    let acked = Mutex::new(BTreeSet::new());
    let refusals = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (acked, refusals, create) = (&acked, &refusals, &create);
            s.spawn(move || {
                for n in 0..5_000 {
                    let r = create(n * WRITERS + w);
                    if r.status != 201 {
                        refusals.lock().unwrap().push(r);
                        return;
                    }
                    acked.lock().unwrap().insert(r.id().unwrap());
                }
                panic!("5,000 creates each fitted in a 1 MiB quota");
            });
        }
    });
    let mut acked = acked.into_inner().unwrap();
    let refusals = refusals.into_inner().unwrap();
    let refused = &refusals[0];
    eprintln!(
        "{} creates before etcd's quota; then {}: {}",
        acked.len(),
        refused.status,
        refused.text
    );
    assert!(acked.len() > 10, "the quota was reached at once");
    for refused in &refusals {
        assert_eq!(refused.status, 503, "{}", refused.text);
        assert_eq!(refused.retry.as_deref(), Some("true"));
        assert!(
            refused.text.contains("space exceeded") && refused.text.contains("auto-compaction"),
            "the answer should say what is wrong and what to do: {}",
            refused.text
        );
    }
    let i = 10 * 5_000;
    // Still full: refused again; reads answer and show exactly the acknowledged writes.
    let again = create(i);
    assert_eq!(again.status, 503, "{}", again.text);
    let listed: BTreeSet<String> = list_all(&c, &a.base)
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    let through_b: BTreeSet<String> = list_all(&c, &b.base)
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, through_b, "the replicas disagree");
    assert_eq!(
        listed,
        acked,
        "listed but not acknowledged: {:?}; acknowledged but not listed: {:?}",
        listed.difference(&acked).collect::<Vec<_>>(),
        acked.difference(&listed).collect::<Vec<_>>()
    );

    // The operator's recovery: compact the history, defragment, disarm the alarm.
    let header = cluster
        .gateway(0, "/v3/kv/range", &json!({"key": b64(b"/")}))
        .unwrap();
    let revision = header["header"]["revision"].as_str().unwrap().to_owned();
    cluster
        .gateway(
            0,
            "/v3/kv/compaction",
            &json!({"revision": revision, "physical": true}),
        )
        .unwrap();
    cluster
        .gateway(0, "/v3/maintenance/defragment", &json!({}))
        .unwrap();
    let alarms = cluster
        .gateway(0, "/v3/maintenance/alarm", &json!({"action": "GET"}))
        .unwrap();
    for alarm in alarms["alarms"].as_array().unwrap() {
        cluster
            .gateway(
                0,
                "/v3/maintenance/alarm",
                &json!({"action": "DEACTIVATE", "memberID": alarm["memberID"], "alarm": "NOSPACE"}),
            )
            .unwrap();
    }
    let r = create(i + 1);
    assert_eq!(r.status, 201, "after the recovery: {}", r.text);
    acked.insert(r.id().unwrap());
    let listed: BTreeSet<String> = list_all(&c, &a.base)
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, acked);
}
