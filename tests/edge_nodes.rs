//! Edge nodes as real processes (`inregion edge`) following a real `inregion serve
//! --activation edges` on loopback: activation by a majority of registered nodes, stopped
//! nodes below a majority, a node killed with -9 catching up, decisions checked against
//! the edge crate's plain model, and a feed connection cut mid-answer by a proxy.

mod api_support;

use api_support::*;
use inregion_edge::{region_table, Edge, EdgeConfig, Topology, Verdict};
use inregion_model::{Iata, ReferenceData, RegionKey};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const EDGE_TOKEN: &str = "test-edge-token-00000000000000000000";

/// One `inregion edge` process.
struct Node {
    child: Option<Child>,
    base: String,
    dc: &'static str,
    client: reqwest::blocking::Client,
}

impl Node {
    fn start(dc: &'static str, control: &str, extra: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_inregion"))
            .args([
                "edge",
                "--dc",
                dc,
                "--control",
                control,
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--edge-token", EDGE_TOKEN])
            .args(extra)
            .env_remove("INREGION_EDGE_TOKEN")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn inregion edge");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("edge node printed nothing (did it fail to start?)")
            .unwrap();
        let base = first
            .strip_prefix("inregion edge: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Node {
            child: Some(child),
            base,
            dc,
            client: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(EDGE_TOKEN)
            .send()
            .expect("node request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn status(&self) -> Value {
        let (s, v) = self.get("/v1/status");
        assert_eq!(s, 200, "{v}");
        v
    }

    fn applied(&self) -> u64 {
        self.status()["applied_version"].as_u64().unwrap()
    }

    fn decide(&self, src: &str, dst: &str, sport: u16) -> Value {
        let (s, v) = self.get(&format!("/v1/decide?src={src}&dst={dst}&sport={sport}"));
        assert_eq!(s, 200, "{v}");
        v
    }

    fn signal(&mut self, sig: &str) {
        let c = self.child.as_mut().unwrap();
        let st = Command::new("kill")
            .args([sig, &c.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{} did not stop", self.dc);
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = None;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[track_caller]
fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve() -> Server {
    Server::start_with(Opts {
        args: vec!["--activation", "edges", "--edge-token", EDGE_TOKEN],
        ..Opts::default()
    })
}

fn edge_get(s: &Server, path: &str) -> Value {
    s.send(
        s.raw("GET", &format!("{}/edge/v1{path}", s.base))
            .bearer_auth(EDGE_TOKEN),
    )
    .body
}

fn version(s: &Server) -> u64 {
    edge_get(s, "/snapshot")["version"].as_u64().unwrap()
}

fn state(s: &Server, binding: &str) -> String {
    s.binding_state(DEMO_PREFIX, binding)
}

/// The edge crate's plain answer for a new flow from `ingress` to `dst`, with `bound`
/// the bindings and `down` the data centers marked unhealthy: (verdict, processed_at).
fn model(
    bound: &[(&str, &str)],
    down: &[&str],
    ingress: &str,
    dst: &str,
) -> (String, Option<String>) {
    let topo = Arc::new(Topology::from_reference(&ReferenceData::embedded()).unwrap());
    let keys: Vec<(ipnet::IpNet, RegionKey)> = bound
        .iter()
        .map(|(c, k)| (c.parse().unwrap(), RegionKey::parse(k).unwrap()))
        .collect();
    let table = region_table(&topo, keys.iter().map(|(n, k)| (*n, k))).unwrap();
    let mut edge = Edge::new(Arc::clone(&topo), EdgeConfig::default());
    edge.install(1, table, inregion_edge::SimTime::ZERO)
        .unwrap();
    for d in down {
        edge.set_healthy(topo.dc_by_code(Iata::parse(d).unwrap()).unwrap(), false);
    }
    let at = topo.dc_by_code(Iata::parse(ingress).unwrap()).unwrap();
    let d = edge.route(at, dst.parse().unwrap());
    let verdict = match d.verdict {
        Verdict::Global => "global",
        Verdict::InRegion => "in_region",
        Verdict::Forwarded => "forwarded",
        Verdict::Refused(_) => "refused",
        Verdict::Reset(_) => "reset",
    };
    (
        verdict.to_owned(),
        d.processed_at.map(|p| topo.dc(p).code.to_string()),
    )
}

#[track_caller]
fn check_decisions(nodes: &[Node], bound: &[(&str, &str)], down: &[&str], sport: u16) {
    for n in nodes.iter().filter(|n| n.child.is_some()) {
        for dst in ["203.0.113.7", "203.0.112.9"] {
            let got = n.decide("198.51.100.7", dst, sport);
            let (verdict, at) = model(bound, down, n.dc, dst);
            assert_eq!(got["verdict"], verdict, "{} → {dst}: {got}", n.dc);
            assert_eq!(got["ingress"], n.dc, "{got}");
            assert_eq!(
                got["processed_at"].as_str().map(str::to_owned),
                at,
                "{} → {dst}: {got}",
                n.dc
            );
        }
    }
}

/// Five nodes in five regions (FRA eu, IAD us, NRT jp, GRU br, SYD au); a binding is
/// provisioning until three of them applied it.
#[test]
fn a_majority_of_real_nodes_makes_a_binding_active() {
    let s = serve();
    let control = s.base.clone();
    // Two quick nodes, three that hold every version back for 3 s.
    let slow = ["--apply-delay", "3s"];
    let mut nodes = vec![
        Node::start("FRA", &control, &[]),
        Node::start("IAD", &control, &[]),
        Node::start("NRT", &control, &slow),
        Node::start("GRU", &control, &slow),
        Node::start("SYD", &control, &slow),
    ];
    wait_until("5 live nodes", Duration::from_secs(20), || {
        let r = edge_get(&s, "/nodes");
        r["registered"] == 5
            && r["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["live"] == true)
    });
    // Before any binding: everything global, everywhere.
    wait_until("nodes current", Duration::from_secs(20), || {
        let v = version(&s);
        nodes.iter().all(|n| n.applied() >= v)
    });
    check_decisions(&nodes, &[], &[], 40000);

    let b = s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    let id = b["id"].as_str().unwrap().to_owned();
    // The version right after the create: the binding's or later.
    let v = version(&s);
    // The two quick nodes apply it at once; 2 of 5 is not a majority.
    wait_until("FRA and IAD applied", Duration::from_secs(10), || {
        nodes[0].applied() >= v && nodes[1].applied() >= v
    });
    assert!(
        nodes[2..].iter().all(|n| n.applied() < v),
        "slow nodes held it back"
    );
    assert_eq!(state(&s, &id), "provisioning");
    let reg = edge_get(&s, "/nodes");
    assert!(reg["activated_through"].as_u64().unwrap() < v, "{reg}");
    // Once the slow ones apply it (3 s), a majority: active.
    wait_until("active", Duration::from_secs(15), || {
        state(&s, &id) == "active"
    });
    let applied = nodes.iter().filter(|n| n.applied() >= v).count();
    assert!(applied >= 3, "active with only {applied} nodes applied");
    // Every node decides like the plain model: IAD forwards to the EU, FRA processes.
    wait_until("all applied", Duration::from_secs(15), || {
        let v = version(&s);
        nodes.iter().all(|n| n.applied() >= v)
    });
    check_decisions(&nodes, &[("203.0.113.0/24", "eu")], &[], 40001);
    let iad = nodes[1].decide("198.51.100.7", "203.0.113.7", 40002);
    assert_eq!(iad["verdict"], "forwarded", "{iad}");
    assert_eq!(iad["binding"]["binding_id"], id.as_str(), "{iad}");
    assert!(iad["added_rtt_ms"].as_f64().unwrap() > 10.0, "{iad}");
    assert_eq!(
        nodes[0].decide("198.51.100.7", "203.0.113.7", 40002)["verdict"],
        "in_region"
    );

    // Three nodes stop (SIGTERM: they stay registered). A change now stays pending.
    for n in &mut nodes[2..] {
        n.signal("-TERM");
    }
    wait_until("3 nodes down", Duration::from_secs(15), || {
        let r = edge_get(&s, "/nodes");
        r["registered"] == 5
            && r["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["live"] == true)
                .count()
                == 2
    });
    let r = s.dev(
        "PATCH",
        &format!("/dls/regional_services/prefix_bindings/{id}"),
        Some(serde_json::json!({"region_key": "us"})),
    );
    r.ok(200);
    let v2 = version(&s);
    wait_until(
        "quick nodes applied the change",
        Duration::from_secs(10),
        || nodes[0].applied() >= v2 && nodes[1].applied() >= v2,
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        state(&s, &id),
        "provisioning",
        "2 of 5 registered is not a majority"
    );
    // The running nodes stop forwarding to the data centers whose nodes are down.
    check_decisions(
        &nodes,
        &[("203.0.113.0/24", "us")],
        &["NRT", "GRU", "SYD"],
        40003,
    );
    // They come back: a majority again, active.
    nodes[2] = Node::start("NRT", &control, &[]);
    nodes[3] = Node::start("GRU", &control, &[]);
    nodes[4] = Node::start("SYD", &control, &[]);
    wait_until("active again", Duration::from_secs(15), || {
        state(&s, &id) == "active"
    });

    // kill -9 one node; it restarts, catches up and answers from the current table.
    nodes[1].signal("-KILL");
    s.create(DEMO_PREFIX, "203.0.112.0/24", "jp");
    nodes[1] = Node::start("IAD", &control, &[]);
    wait_until("IAD caught up", Duration::from_secs(15), || {
        nodes[1].applied() >= version(&s)
    });
    wait_until("all live", Duration::from_secs(15), || {
        let r = edge_get(&s, "/nodes");
        r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["live"] == true)
    });
    wait_until("all current", Duration::from_secs(15), || {
        let v = version(&s);
        nodes.iter().all(|n| n.applied() >= v)
    });
    check_decisions(
        &nodes,
        &[("203.0.113.0/24", "us"), ("203.0.112.0/24", "jp")],
        &[],
        40004,
    );
    // Bad input and a wrong token: 4xx with a JSON error, never a decision.
    let (st, body) = nodes[0].get("/v1/decide?src=198.51.100.7&dst=203.0.113.999");
    assert_eq!(st, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("dst"),
        "{body}"
    );
    let r = nodes[0]
        .client
        .get(format!(
            "{}/v1/decide?src=198.51.100.7&dst=203.0.113.7",
            nodes[0].base
        ))
        .bearer_auth("wrong-token-000000000000000000000")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Serve refuses a wrong edge token too, and any Cloudflare credential.
    let r = s.send(
        s.raw("GET", &format!("{}/edge/v1/snapshot", s.base))
            .bearer_auth(DEV_TOKEN),
    );
    assert_eq!(r.status, 401);
}

/// A TCP proxy that forwards connections to `upstream` and, for every third response
/// that carries a binding change, forwards only its first half and then closes both
/// sides: a feed answer cut mid-body.
struct CuttingProxy {
    addr: String,
    cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CuttingProxy {
    fn start(upstream: &str) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let (c2, s2) = (cuts.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (cuts, seen) = (c2.clone(), seen.clone());
                std::thread::spawn(move || relay(client, server, &cuts, &seen));
            }
        });
        CuttingProxy { addr, cuts, stop }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr.trim_start_matches("http://"));
    }
}

fn relay(mut client: TcpStream, server: TcpStream, cuts: &AtomicUsize, seen: &AtomicUsize) {
    let mut up = client.try_clone().unwrap();
    let mut server_w = server.try_clone().unwrap();
    // Requests: copied as they are.
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match up.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = server_w.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if server_w.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // Responses: a read that carries a change (`"binding_id"` in a changes answer) is
    // cut in half every third time.
    let mut server = server;
    let mut buf = [0u8; 65536];
    loop {
        match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = &buf[..n];
                let is_change = chunk.windows(10).any(|w| w == b"\"changes\":")
                    && chunk.windows(12).any(|w| w == b"\"binding_id\"");
                if is_change && seen.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                    let _ = client.write_all(&chunk[..n / 2]);
                    cuts.fetch_add(1, Ordering::Relaxed);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                    return;
                }
                if client.write_all(chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
}

/// A node whose feed answers are cut mid-body ends with exactly the server's bindings:
/// nothing missed, nothing applied twice (its count of applied changes equals the
/// number of changes the server's feed holds for it).
#[test]
fn a_feed_cut_mid_answer_resumes_without_missing_or_repeating() {
    // Delay activation: each create and delete is exactly one record version in the
    // feed (under edges activation, each would be followed by its activation's).
    let s = Server::start_with(Opts {
        args: vec!["--edge-token", EDGE_TOKEN],
        ..Opts::default()
    });
    let proxy = CuttingProxy::start(&s.base);
    let node = Node::start("FRA", &proxy.addr, &[]);
    wait_until("first table", Duration::from_secs(20), || {
        node.status()["applied_version"].as_u64().unwrap_or(0) >= 1
    });
    let start = version(&s);
    let mut ids = Vec::new();
    for i in 0..40u32 {
        let cidr = format!("203.0.113.{}/32", i * 4);
        let region = ["eu", "us", "jp"][i as usize % 3];
        let b = s.create(DEMO_PREFIX, &cidr, region);
        ids.push(b["id"].as_str().unwrap().to_owned());
        if i % 4 == 3 {
            let id = ids.remove(0);
            s.dev(
                "DELETE",
                &format!("/dls/regional_services/prefix_bindings/{id}"),
                None,
            )
            .ok(200);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    wait_until("node current", Duration::from_secs(30), || {
        node.applied() >= version(&s)
    });
    assert!(
        proxy.cuts.load(Ordering::Relaxed) >= 2,
        "the proxy cut answers"
    );
    // Same bindings as the server, decision by decision.
    let snap = edge_get(&s, "/snapshot");
    let live: Vec<(String, String)> = snap["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["cidr"].as_str().unwrap().to_owned(),
                b["region_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(live.len(), 30);
    let st = node.status();
    assert_eq!(
        st["bindings"].as_u64().unwrap() as usize,
        live.len(),
        "{st}"
    );
    for (i, (cidr, region)) in live.iter().enumerate() {
        let ip = cidr.trim_end_matches("/32");
        let got = node.decide("198.51.100.7", ip, 41000 + i as u16);
        assert_eq!(
            got["binding"]["region_key"],
            region.as_str(),
            "{cidr}: {got}"
        );
    }
    // Exactly the changes of the feed since the node's first table, once each.
    let all = edge_get(&s, &format!("/changes?since={start}"));
    let want = all["changes"].as_array().unwrap().len() as u64;
    let applied = st["changes_applied"].as_u64().unwrap();
    assert!(applied >= want, "missed changes: {applied} < {want}");
    assert_eq!(
        st["relists"].as_u64().unwrap(),
        0,
        "no re-list was needed: {st}"
    );
    // With no re-list, each of the 50 writes (40 creates, 10 deletes) reached the node
    // in at most one accepted answer (fewer when an answer coalesced a create and its
    // delete); an answer applied twice would count its changes again.
    assert!(applied <= 50, "changes applied twice: {applied}");
}
