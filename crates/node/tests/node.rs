//! The node runtime in-process against an in-test fake feed server (axum on 127.0.0.1:0
//! implementing `/edge/v1/snapshot`, `/changes`, `/nodes/{id}` from an in-memory model).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use inregion_feed::wire::{
    Changes, FeedBinding, FeedChange, HeartbeatAnswer, NodeReport, NodeView, Snapshot,
};
use inregion_model::{
    BindingId, Cidr, Iata, ReferenceData, RegionDefinition, RegionKey, Timestamp,
};
use inregion_node::{ControlUrl, NodeConfig, RunningNode};
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

const TOKEN: &str = "edge-secret";

/// What the fake answered, in order.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Snapshot(u64),
    Changes { since: u64, version: u64, n: usize },
    Cut { since: u64 },
    Gone { since: u64 },
}

#[derive(Default)]
struct Model {
    epoch: u64,
    version: u64,
    records: BTreeMap<BindingId, (Cidr, RegionKey, bool, u64)>,
    regions: Vec<RegionDefinition>,
    nodes: BTreeMap<String, (NodeReport, bool)>,
    gone_next: u32,
    cut_next: u32,
    refuse_snapshots: bool,
    /// Every feed request answers 503.
    down: bool,
    events: Vec<Event>,
}

struct Fake {
    model: Mutex<Model>,
    notify: Notify,
}

type F = Arc<Fake>;

fn id(i: u8) -> BindingId {
    BindingId::parse(&format!("00000000-0000-4000-8000-0000000000{i:02x}")).unwrap()
}

impl Fake {
    fn m(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap()
    }

    fn put(&self, i: u8, cidr: &str, key: &str) -> u64 {
        let v = {
            let mut m = self.m();
            m.version += 1;
            let v = m.version;
            m.records.insert(
                id(i),
                (
                    Cidr::parse_strict(cidr).unwrap(),
                    RegionKey::parse(key).unwrap(),
                    false,
                    v,
                ),
            );
            v
        };
        self.notify.notify_waiters();
        v
    }

    fn delete(&self, i: u8) -> u64 {
        let v = {
            let mut m = self.m();
            m.version += 1;
            let v = m.version;
            let r = m.records.get_mut(&id(i)).unwrap();
            r.2 = true;
            r.3 = v;
            v
        };
        self.notify.notify_waiters();
        v
    }

    fn other(&self) -> u64 {
        let v = {
            let mut m = self.m();
            m.version += 1;
            m.version
        };
        self.notify.notify_waiters();
        v
    }

    fn live(&self) -> Vec<(BindingId, String, String)> {
        self.m()
            .records
            .iter()
            .filter(|(_, r)| !r.2)
            .map(|(id, r)| (*id, r.0.to_string(), r.1.as_str().to_owned()))
            .collect()
    }
}

fn err(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": code}})),
    )
        .into_response()
}

fn authed(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn snapshot(State(f): State<F>, h: HeaderMap) -> Response {
    if !authed(&h) {
        return err(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let mut m = f.m();
    if m.refuse_snapshots {
        return err(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    let s = Snapshot {
        epoch: m.epoch,
        version: m.version,
        purged_through: 0,
        bindings: m
            .records
            .iter()
            .filter(|(_, r)| !r.2)
            .map(|(id, r)| FeedBinding {
                binding_id: *id,
                cidr: r.0,
                region_key: r.1.clone(),
            })
            .collect(),
        regions: m.regions.clone(),
    };
    let v = m.version;
    m.events.push(Event::Snapshot(v));
    Json(s).into_response()
}

async fn changes(
    State(f): State<F>,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, u64>>,
) -> Response {
    if !authed(&h) {
        return err(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let since = q["since"];
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(q.get("wait_ms").copied().unwrap_or(0).min(30_000));
    loop {
        let notified = f.notify.notified();
        {
            let mut m = f.m();
            if m.down {
                return err(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
            }
            if m.gone_next > 0 || since > m.version {
                m.gone_next = m.gone_next.saturating_sub(1);
                m.events.push(Event::Gone { since });
                return err(StatusCode::GONE, "too_far_behind");
            }
            if m.version > since || tokio::time::Instant::now() >= deadline {
                let mut changes: Vec<FeedChange> = m
                    .records
                    .iter()
                    .filter(|(_, r)| r.3 > since)
                    .map(|(id, r)| FeedChange {
                        binding_id: *id,
                        cidr: r.0,
                        region_key: r.1.clone(),
                        deleted: r.2,
                        version: r.3,
                    })
                    .collect();
                changes.sort_by_key(|c| c.version);
                let c = Changes {
                    epoch: m.epoch,
                    version: m.version,
                    changes,
                };
                let text = serde_json::to_string(&c).unwrap();
                if m.cut_next > 0 && !c.changes.is_empty() {
                    m.cut_next -= 1;
                    m.events.push(Event::Cut { since });
                    let half = text[..text.len() / 2].to_owned();
                    if m.cut_next % 2 == 1 {
                        // A complete HTTP answer holding half a JSON document.
                        return (StatusCode::OK, half).into_response();
                    }
                    // The connection closed mid-body: half the document, then an abort.
                    let body = CutBody {
                        first: Some(axum::body::Bytes::from(half)),
                    };
                    return (
                        StatusCode::OK,
                        [("content-type", "application/json")],
                        axum::body::Body::new(body),
                    )
                        .into_response();
                }
                m.events.push(Event::Changes {
                    since,
                    version: c.version,
                    n: c.changes.len(),
                });
                return (StatusCode::OK, [("content-type", "application/json")], text)
                    .into_response();
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            continue; // the deadline passed: answer with what there is
        }
    }
}

/// A body that sends its first chunk, then fails: hyper aborts the connection.
struct CutBody {
    first: Option<axum::body::Bytes>,
}

impl hyper::body::Body for CutBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(match self.first.take() {
            Some(b) => Ok(hyper::body::Frame::data(b)),
            None => Err(std::io::Error::other("connection cut")),
        }))
    }
}

fn view(id: &str, r: &NodeReport, live: bool) -> NodeView {
    NodeView {
        node_id: id.to_owned(),
        dc: r.dc,
        address: r.address.clone(),
        applied_version: r.applied_version,
        live,
        registered_at: Timestamp::EPOCH,
        last_seen_ms_ago: Some(0),
    }
}

async fn node_put(
    State(f): State<F>,
    h: HeaderMap,
    Path(node): Path<String>,
    Json(r): Json<NodeReport>,
) -> Response {
    if !authed(&h) {
        return err(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let mut m = f.m();
    m.nodes.insert(node.clone(), (r.clone(), true));
    let nodes = m.nodes.iter().map(|(id, (r, l))| view(id, r, *l)).collect();
    Json(HeartbeatAnswer {
        node: view(&node, &r, true),
        nodes,
        activated_through: 0,
        heartbeat_ms: 100,
        live_timeout_ms: 300,
    })
    .into_response()
}

async fn node_delete(State(f): State<F>, h: HeaderMap, Path(node): Path<String>) -> Response {
    if !authed(&h) {
        return err(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    match f.m().nodes.remove(&node) {
        Some(_) => Json(json!({"deleted": true})).into_response(),
        None => err(StatusCode::NOT_FOUND, "not_found"),
    }
}

async fn fake() -> (F, SocketAddr) {
    let f = Arc::new(Fake {
        model: Mutex::new(Model {
            epoch: 77,
            ..Model::default()
        }),
        notify: Notify::new(),
    });
    let app = Router::new()
        .route("/edge/v1/snapshot", get(snapshot))
        .route("/edge/v1/changes", get(changes))
        .route("/edge/v1/nodes/{id}", put(node_put).delete(node_delete))
        .with_state(Arc::clone(&f));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (f, addr)
}

struct Node {
    node: Option<RunningNode>,
    stop: Option<oneshot::Sender<()>>,
    base: String,
    http: reqwest::Client,
}

async fn node(fake: SocketAddr, dcs: &str, tweak: impl FnOnce(&mut NodeConfig)) -> Node {
    let mut c = NodeConfig::new(
        inregion_node::parse_dcs(dcs).unwrap(),
        ControlUrl::parse(&format!("http://{fake}")).unwrap(),
        TOKEN,
    );
    c.listen = "127.0.0.1:0".into();
    tweak(&mut c);
    let (tx, rx) = oneshot::channel::<()>();
    let n = inregion_node::start(c, async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
    Node {
        base: format!("http://{}", n.addr),
        node: Some(n),
        stop: Some(tx),
        http: reqwest::Client::new(),
    }
}

impl Node {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn status(&self) -> Value {
        let (s, v) = self.get("/v1/status").await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Waits until `/v1/status` satisfies `ok` (5 s at most).
    async fn until(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let t = Instant::now();
        loop {
            let s = self.status().await;
            if ok(&s) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "timed out waiting for {what}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn applied(&self, v: u64) -> Value {
        self.until(&format!("applied_version {v}"), |s| {
            s["applied_version"] == v
        })
        .await
    }

    async fn decide(&self, dc: &str, dst: &str, sport: u16) -> Value {
        let (s, v) = self
            .get(&format!(
                "/v1/decide?src=198.51.100.7&dst={dst}&dc={dc}&sport={sport}"
            ))
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.node.take().unwrap().wait())
            .await
            .expect("the node stops")
            .unwrap();
    }
}

fn member(region: &str, dc: &str) -> bool {
    let r = ReferenceData::embedded();
    let i = r.data_center_index(Iata::parse(dc).unwrap()).unwrap();
    r.members_of(&RegionKey::parse(region).unwrap())
        .unwrap()
        .contains(&i)
}

/// Every successful change answer follows on from the previous snapshot or change
/// answer; a cut answer is followed by a request for the same `since`.
fn check_chain(events: &[Event]) {
    let mut at: Option<u64> = None;
    let mut retry: Option<u64> = None;
    for e in events {
        match *e {
            Event::Snapshot(v) => {
                assert_eq!(
                    retry, None,
                    "a cut answer was followed by a re-list: {events:?}"
                );
                at = Some(v);
            }
            Event::Changes { since, version, .. } => {
                assert_eq!(
                    Some(since),
                    at,
                    "a change answer skipped or repeated: {events:?}"
                );
                if let Some(r) = retry.take() {
                    assert_eq!(r, since, "not retried from the same since: {events:?}");
                }
                at = Some(version);
            }
            Event::Cut { since } => {
                assert_eq!(Some(since), at, "{events:?}");
                retry = Some(since);
            }
            Event::Gone { since } => {
                assert_eq!(Some(since), at, "{events:?}");
                at = None;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_feed_relists_and_survives_a_cut() {
    let (f, addr) = fake().await;
    f.put(1, "203.0.113.0/24", "eu");
    f.other();
    let n = node(addr, "FRA,IAD", |_| {}).await;
    let s = n.applied(2).await;
    assert_eq!(s["bindings"], 1);
    assert_eq!(s["table_prefixes"], 1);
    assert_eq!(s["stale"], false);

    // Frankfurt processes it; Washington forwards it to an EU member.
    let d = n.decide("FRA", "203.0.113.10", 1000).await;
    assert_eq!(d["verdict"], "in_region", "{d}");
    assert_eq!(d["processed_at"], "FRA");
    assert_eq!(d["binding"]["cidr"], "203.0.113.0/24");
    assert_eq!(d["binding"]["region_key"], "eu");
    assert_eq!(d["binding"]["binding_id"], id(1).as_str());
    assert_eq!(d["table_version"], 2);
    let d = n.decide("IAD", "203.0.113.10", 1000).await;
    assert_eq!(d["verdict"], "forwarded", "{d}");
    assert_eq!(d["ingress"], "IAD");
    assert!(member("eu", d["processed_at"].as_str().unwrap()), "{d}");
    assert!(d["added_rtt_ms"].as_f64().unwrap() > 50.0, "{d}");
    assert_eq!(d["established"], false);
    let again = n.decide("IAD", "203.0.113.10", 1000).await;
    assert_eq!(again["established"], true);
    assert_eq!(again["processed_at"], d["processed_at"]);
    // Unbound: global; the dc defaults to the first one.
    let (_, g) = n.get("/v1/decide?src=198.51.100.7&dst=192.0.2.1").await;
    assert_eq!(g["verdict"], "global");
    assert_eq!(g["ingress"], "FRA");
    assert_eq!(g["binding"], Value::Null);

    // Changes: the version moves and decisions follow.
    f.put(2, "198.51.100.0/24", "us");
    let v = f.delete(1);
    let s = n.applied(v).await;
    assert_eq!(s["bindings"], 1);
    assert_eq!(
        n.decide("IAD", "203.0.113.10", 1001).await["verdict"],
        "global"
    );
    let d = n.decide("FRA", "198.51.100.5", 1001).await;
    assert_eq!(d["verdict"], "forwarded", "{d}");
    assert!(member("us", d["processed_at"].as_str().unwrap()), "{d}");
    assert_eq!(d["binding"]["binding_id"], id(2).as_str());

    // 410: the node re-lists.
    let relists = s["relists"].as_u64().unwrap();
    f.m().gone_next = 1;
    let v = f.put(3, "192.0.2.0/24", "eu");
    let s = n.applied(v).await;
    assert!(s["relists"].as_u64().unwrap() > relists, "{s}");
    assert!(f.m().events.iter().any(|e| matches!(e, Event::Gone { .. })));

    // Cut answers (half a document, then a connection closed mid-body): discarded,
    // asked again from the same since.
    f.m().cut_next = 2;
    f.put(4, "2001:db8::/32", "us");
    f.put(5, "203.0.113.128/25", "jp");
    let v = f.delete(3);
    let s = n.applied(v).await;
    let cuts = f
        .m()
        .events
        .iter()
        .filter(|e| matches!(e, Event::Cut { .. }))
        .count();
    assert_eq!(cuts, 2);
    assert!(s["feed_errors"].as_u64().unwrap() >= 2, "{s}");
    // The last failure was the connection closed mid-body (a transport error).
    assert!(
        s["last_error"].as_str().unwrap().starts_with("transport"),
        "{s}"
    );
    assert_eq!(s["stale"], false, "{s}");
    let events = f.m().events.clone();
    check_chain(&events);
    // Changes applied = the binding changes of the complete answers the fake served.
    let served: usize = events
        .iter()
        .map(|e| match e {
            Event::Changes { n, .. } => *n,
            _ => 0,
        })
        .sum();
    assert_eq!(s["changes_applied"], served as u64, "{s} {events:?}");
    // The node holds exactly the fake's live bindings.
    let live = f.live();
    assert_eq!(s["bindings"], live.len() as u64);
    for (bid, cidr, key) in &live {
        let net: ipnet::IpNet = cidr.parse().unwrap();
        let dst = net.hosts().next().unwrap_or(net.addr());
        let src = if dst.is_ipv6() {
            "2001:db8:ffff::1"
        } else {
            "198.51.100.200"
        };
        let (st, d) = n
            .get(&format!("/v1/decide?src={src}&dst={dst}&dc=FRA&sport=2000"))
            .await;
        assert_eq!(st, 200, "{d}");
        assert_eq!(d["binding"]["binding_id"], bid.as_str(), "{d}");
        assert_eq!(d["binding"]["cidr"], cidr.as_str(), "{d}");
        assert_eq!(d["binding"]["region_key"], key.as_str(), "{d}");
    }
    // The most specific binding wins (203.0.113.128/25 is jp, its /24 was deleted).
    let d = n.decide("FRA", "203.0.113.200", 2001).await;
    assert_eq!(d["binding"]["region_key"], "jp");
    assert_eq!(d["verdict"], "forwarded");

    // Registry: both nodes reported what they applied.
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let m = f.m();
        for dc in ["FRA", "IAD"] {
            let (r, _) = &m.nodes[dc];
            assert_eq!(r.dc.as_str(), dc);
            assert_eq!(r.applied_version, v, "{dc}");
        }
    }
    // Metrics are open and name the versions.
    let text = reqwest::get(format!("{}/metrics", n.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(&format!("inregion_edge_applied_version{{dc=\"IAD\"}} {v}")),
        "{text}"
    );
    assert!(text.contains("inregion_edge_decisions_total{verdict=\"forwarded\"}"));
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_bad_input_and_no_table_yet() {
    let (f, addr) = fake().await;
    f.put(1, "203.0.113.0/24", "eu");
    f.m().refuse_snapshots = true;
    let n = node(addr, "FRA,IAD", |_| {}).await;
    // No table yet: 503, never an answer from an empty table.
    let (s, v) = n.get("/v1/decide?src=1.2.3.4&dst=203.0.113.1").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "unavailable");
    let st = n.until("stale", |s| s["stale"] == true).await;
    assert!(st["last_error"].as_str().unwrap().contains("503"), "{st}");
    f.m().refuse_snapshots = false;
    n.applied(1).await;

    // Auth.
    let url = format!("{}/v1/status", n.base);
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = n.http.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = n
        .http
        .post(format!("{}/v1/decide", n.base))
        .json(&json!({"flows": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        reqwest::get(format!("{}/metrics", n.base))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // Bad input names the parameter.
    for (q, param) in [
        ("src=1.2.3&dst=1.2.3.4", "src"),
        ("src=1.2.3.4", "dst"),
        ("src=1.2.3.4&dst=2001:db8::1", "dst"),
        ("src=1.2.3.4&dst=1.2.3.4&proto=sctp", "proto"),
        ("src=1.2.3.4&dst=1.2.3.4&dport=70000", "dport"),
        ("src=1.2.3.4&dst=1.2.3.4&sport=x", "sport"),
        ("src=1.2.3.4&dst=1.2.3.4&dc=AMS", "dc"),
        ("src=1.2.3.4&dst=1.2.3.4&color=red", "color"),
    ] {
        let (s, v) = n.get(&format!("/v1/decide?{q}")).await;
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(param),
            "{q}: {v}"
        );
    }

    // Batches: one bad flow refuses the whole batch, naming its index.
    let (s, v) = n
        .post(
            "/v1/decide",
            json!({"flows": [
                {"src": "198.51.100.7", "dst": "203.0.113.1", "dc": "IAD"},
                {"src": "198.51.100.7", "dst": "nope"}
            ]}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("flows[1].dst"),
        "{v}"
    );
    let (s, v) = n
        .post(
            "/v1/decide",
            json!({"flows": [
                {"src": "198.51.100.7", "dst": "203.0.113.1", "dc": "IAD", "sport": 5},
                {"src": "198.51.100.7", "dst": "203.0.113.1", "dc": "IAD", "sport": 5},
                {"src": "198.51.100.7", "dst": "203.0.113.1", "proto": "udp", "dport": 53}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let d = v["decisions"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    // Nothing was decided by the refused batch: the first flow is new here.
    assert_eq!(d[0]["verdict"], "forwarded");
    assert_eq!(d[0]["established"], false);
    assert_eq!(d[1]["established"], true);
    assert_eq!(d[2]["verdict"], "in_region");
    // The source fails: the node keeps answering from its last table, marked stale.
    f.m().down = true;
    f.notify.notify_waiters();
    let s = n.until("stale", |s| s["stale"] == true).await;
    assert!(s["last_error"].as_str().unwrap().contains("503"), "{s}");
    assert!(s["stale_since"].is_string(), "{s}");
    let d = n.decide("IAD", "203.0.113.1", 77).await;
    assert_eq!(
        (d["verdict"].clone(), d["stale"].clone()),
        (json!("forwarded"), json!(true))
    );
    f.m().down = false;
    n.until("fresh again", |s| s["stale"] == false).await;
    assert_eq!(n.decide("IAD", "203.0.113.1", 78).await["stale"], false);
    let many: Vec<Value> = (0..10_001)
        .map(|_| json!({"src": "1.2.3.4", "dst": "5.6.7.8"}))
        .collect();
    let (s, v) = n.post("/v1/decide", json!({"flows": many})).await;
    assert_eq!(s, 400, "{v}");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_custom_regions_and_deregistration() {
    let (f, addr) = fake().await;
    f.put(1, "203.0.113.0/24", "eu");
    // A registered node at AMS that is not live.
    f.m().nodes.insert(
        "AMS".into(),
        (
            NodeReport {
                dc: Iata::parse("AMS").unwrap(),
                address: String::new(),
                applied_version: 0,
            },
            false,
        ),
    );
    let n = node(addr, "IAD", |c| c.deregister_on_exit = true).await;
    n.applied(1).await;
    n.until("AMS unhealthy", |s| s["unhealthy_dcs"] == json!(["AMS"]))
        .await;
    // A local override wins over the registry, null clears it.
    let (s, v) = n
        .post("/v1/health", json!({"dc": "AMS", "healthy": true}))
        .await;
    assert_eq!((s, v["healthy"].clone()), (200, json!(true)), "{v}");
    assert_eq!(n.status().await["unhealthy_dcs"], json!([]));
    let (_, v) = n
        .post("/v1/health", json!({"dc": "AMS", "healthy": null}))
        .await;
    assert_eq!(v["healthy"], false, "{v}");
    let (s, _) = n
        .post("/v1/health", json!({"dc": "QQQ", "healthy": true}))
        .await;
    assert_eq!(s, 400);

    // A custom region that the node meets in a change: it re-reads the snapshot.
    let def: RegionDefinition = serde_json::from_value(json!({
        "key": "de-only", "name": "Germany", "id": "5b0e0000-0000-4000-8000-000000000001",
        "countries": ["DE"], "data_centers": [], "exclude_countries": []
    }))
    .unwrap();
    f.m().regions.push(def);
    f.put(2, "198.51.100.0/24", "de-only");
    // And a region that nobody defines: refused (fail closed).
    let v = f.put(3, "192.0.2.0/24", "nowhere");
    let s = n.applied(v).await;
    assert!(
        s["relists"].as_u64().unwrap() >= 1,
        "unknown keys re-read the snapshot: {s}"
    );
    let d = n.decide("IAD", "198.51.100.9", 1).await;
    assert_eq!(d["verdict"], "forwarded", "{d}");
    assert!(
        ReferenceData::embedded()
            .data_center(Iata::parse(d["processed_at"].as_str().unwrap()).unwrap())
            .unwrap()
            .country
            .as_str()
            == "DE",
        "{d}"
    );
    let d = n.decide("IAD", "192.0.2.9", 1).await;
    assert_eq!(d["verdict"], "refused", "{d}");
    assert_eq!(d["refuse_reason"], "no_healthy_in_region");
    assert_eq!(d["binding"]["region_key"], "nowhere");
    assert!(f.m().nodes.contains_key("IAD"));
    n.stop().await;
    assert!(!f.m().nodes.contains_key("IAD"), "deregistered on exit");
    assert!(f.m().nodes.contains_key("AMS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_delay_holds_versions_back() {
    let (f, addr) = fake().await;
    f.put(1, "203.0.113.0/24", "eu");
    let n = node(addr, "FRA,IAD", |c| {
        c.apply_delay = inregion_edge::DelayDistribution::Uniform {
            min: Duration::from_millis(400),
            max: Duration::from_millis(800),
        };
        c.seed = 7;
    })
    .await;
    // The first version is held back too: nothing applied, decisions wait for a table.
    let s = n
        .until("version 1 seen", |s| s["source_version"] == 1)
        .await;
    assert_eq!(s["applied_version"], 0, "{s}");
    let (st, e) = n.get("/v1/decide?src=198.51.100.7&dst=203.0.113.1").await;
    assert_eq!(st, 503, "answered from an empty table: {e}");
    n.applied(1).await;
    let t = Instant::now();
    let v = f.put(2, "198.51.100.0/24", "us");
    n.until("source version", |s| s["source_version"] == v)
        .await;
    let s = n.status().await;
    assert_eq!(s["applied_version"], 1, "applied before its delay: {s}");
    assert_eq!(s["feed_lag"], 1, "{s}");
    let d = n.decide("FRA", "198.51.100.5", 1).await;
    assert_eq!(
        (d["verdict"].clone(), d["table_version"].clone()),
        (json!("global"), json!(1))
    );
    n.applied(v).await;
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    let d = n.decide("FRA", "198.51.100.5", 2).await;
    assert_eq!(d["verdict"], "forwarded", "{d}");
    // The registry hears about it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.m().nodes["FRA"].0.applied_version, v);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_resync_repairs_and_a_restarted_source_is_reread() {
    let (f, addr) = fake().await;
    f.put(1, "203.0.113.0/24", "eu");
    let v = f.put(2, "198.51.100.0/24", "us");
    let n = node(addr, "FRA", |c| {
        c.resync_interval = Duration::from_millis(200)
    })
    .await;
    n.applied(v).await;
    // A change the feed never announced (a bug upstream): the periodic re-read finds it.
    f.m().records.get_mut(&id(1)).unwrap().1 = RegionKey::parse("jp").unwrap();
    let s = n
        .until("a repair", |s| s["repairs"].as_u64().unwrap() >= 1)
        .await;
    assert_eq!(s["applied_version"], v);
    let d = n.decide("FRA", "203.0.113.9", 1).await;
    assert_eq!(d["binding"]["region_key"], "jp", "{d}");
    assert_eq!(d["verdict"], "forwarded");
    // No more repairs once it matches.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(n.status().await["repairs"], s["repairs"]);

    // The source restarts empty with another epoch: the node follows it back to version 1.
    {
        let mut m = f.m();
        m.epoch += 1;
        m.version = 0;
        m.records.clear();
    }
    f.put(9, "192.0.2.0/24", "eu");
    let s = n.applied(1).await;
    assert_eq!(s["bindings"], 1, "{s}");
    assert_eq!(n.decide("FRA", "203.0.113.9", 2).await["verdict"], "global");
    assert_eq!(
        n.decide("FRA", "192.0.2.1", 2).await["verdict"],
        "in_region"
    );
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_without_its_source_answers_from_its_cache() {
    let (f, addr) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("table.json");
    f.put(1, "203.0.113.0/24", "eu");
    let v2 = f.put(2, "198.51.100.0/24", "us");
    let n = node(addr, "IAD", |c| c.cache = Some(cache.clone())).await;
    n.applied(v2).await;
    let fresh = n.decide("IAD", "203.0.113.10", 1000).await;
    assert_eq!(fresh["verdict"], "forwarded", "{fresh}");
    n.stop().await;
    let written: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(written["snapshot"]["version"], v2, "{written}");

    // The source is down; a node started on the cache decides from it, marked stale,
    // and reports to the registry that it applied nothing from the source.
    f.m().down = true;
    f.m().refuse_snapshots = true;
    let n = node(addr, "IAD", |c| c.cache = Some(cache.clone())).await;
    let s = n.status().await;
    assert_eq!(
        (
            s["has_table"].clone(),
            s["cached_version"].clone(),
            s["stale"].clone()
        ),
        (json!(true), json!(v2), json!(true)),
        "{s}"
    );
    let d = n.decide("IAD", "203.0.113.10", 1000).await;
    assert_eq!(
        (
            d["verdict"].clone(),
            d["processed_at"].clone(),
            d["stale"].clone()
        ),
        (
            fresh["verdict"].clone(),
            fresh["processed_at"].clone(),
            json!(true)
        ),
        "{d}"
    );
    assert_eq!(d["table_version"], v2, "{d}");
    let reported = |f: &F| f.m().nodes.get("IAD").map(|(r, _)| r.applied_version);
    let t = Instant::now();
    while reported(&f).is_none() {
        assert!(t.elapsed() < Duration::from_secs(5), "no heartbeat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reported(&f), Some(0));

    // The source is back, one version on: its table replaces the cache's.
    f.delete(2);
    let v4 = f.put(3, "192.0.2.0/24", "eu");
    f.m().down = false;
    f.m().refuse_snapshots = false;
    let s = n
        .until("the source's table", |s| {
            s["applied_version"] == v4 && s["cached_version"].is_null()
        })
        .await;
    assert_eq!(s["stale"], false, "{s}");
    let t = Instant::now();
    while reported(&f) != Some(v4) {
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", reported(&f));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        n.decide("IAD", "198.51.100.10", 1).await["binding"],
        Value::Null
    );
    n.stop().await;
    let written: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(written["snapshot"]["version"], v4, "{written}");
    assert_eq!(written["snapshot"]["bindings"].as_array().unwrap().len(), 2);

    // An apply delay holds new versions back, not the cached one (applied before).
    f.m().down = true;
    f.m().refuse_snapshots = true;
    let n = node(addr, "IAD", |c| {
        c.cache = Some(cache.clone());
        c.apply_delay = inregion_edge::DelayDistribution::Fixed(Duration::from_secs(30));
    })
    .await;
    let d = n.decide("IAD", "192.0.2.1", 5).await;
    assert_eq!(
        (d["table_version"].clone(), d["stale"].clone()),
        (json!(v4), json!(true)),
        "{d}"
    );
    n.stop().await;
    f.m().down = false;
    f.m().refuse_snapshots = false;

    // A cache written for another source is not used: no table until that one answers.
    let (other, other_addr) = fake().await;
    other.m().refuse_snapshots = true;
    let n = node(other_addr, "IAD", |c| c.cache = Some(cache.clone())).await;
    let (status, v) = n.get("/v1/decide?src=1.2.3.4&dst=203.0.113.1&dc=IAD").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(n.status().await["cached_version"], Value::Null);
    n.stop().await;
    // Nor a damaged one.
    std::fs::write(&cache, b"{\"format\": 1, \"source\": ").unwrap();
    f.m().refuse_snapshots = true;
    let n = node(addr, "IAD", |c| c.cache = Some(cache.clone())).await;
    let (status, _) = n.get("/v1/decide?src=1.2.3.4&dst=203.0.113.1&dc=IAD").await;
    assert_eq!(status, 503);
    n.stop().await;
}
