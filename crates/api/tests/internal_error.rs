//! The 500 row of the contract's error table (§12), over real HTTP on loopback: when the
//! store fails to commit, the client gets a 500 failure envelope, nothing changes, and
//! the same request succeeds once the store works again. When the disk fails a commit
//! (its outcome unknown), writes halt until a restart: every write is a 500 with
//! `x-should-retry: false`, reads go on, and `/healthz` answers 503.

use inregion_api::{dev_seed, DEMO_PREFIX_ID, DEV_ACCOUNT_ID};
use inregion_api::{router, App};
use inregion_control::{
    ControlConfig, ControlPlane, CreateBinding, MemoryStore, Principal, Timestamp,
};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

const TOKEN: &str = "internal-error-test-token-000000000000";

/// One HTTP/1.1 request with `Connection: close`; returns (status, JSON body).
fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, _, payload) = raw_request(addr, method, path, body);
    let json = serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}: {payload}"));
    (status, json)
}

/// [`request`], returning the headers (lower-cased) and the body as text.
fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the test server");
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status: u16 = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let (headers, payload) = raw.split_once("\r\n\r\n").expect("a header/body separator");
    assert!(
        !headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "the test reads plain bodies only: {headers}"
    );
    (status, headers.to_ascii_lowercase(), payload.to_owned())
}

/// [`request`] on a blocking thread (the server runs on this test's runtime).
async fn call(
    addr: SocketAddr,
    method: &'static str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let (path, body) = (path.to_owned(), body.map(str::to_owned));
    tokio::task::spawn_blocking(move || request(addr, method, &path, body.as_deref()))
        .await
        .expect("request thread")
}

/// A server on a fresh memory store seeded with the dev seed; returns the store (to
/// inject failures) and the address.
async fn serve() -> (MemoryStore, Arc<ControlPlane>, SocketAddr) {
    let store = MemoryStore::new();
    let control =
        ControlPlane::open(Box::new(store.clone()), ControlConfig::default()).expect("open");
    control
        .seed(
            &dev_seed(TOKEN).expect("dev seed"),
            Timestamp::from_micros(0),
        )
        .expect("seed");
    let control = Arc::new(control);
    let app = Arc::new(App::new(control.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(app, 1 << 20)).await.unwrap();
    });
    (store, control, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_a_500_and_changes_nothing() {
    let (store, _, addr) = serve().await;

    let bindings =
        format!("/client/v4/accounts/{DEV_ACCOUNT_ID}/dls/regional_services/prefix_bindings");
    let create = format!(
        r#"{{"prefix_id": "{DEMO_PREFIX_ID}", "cidr": "203.0.113.0/24", "region_key": "eu"}}"#
    );

    store.fail_next_commits(1);
    let (status, body) = call(addr, "POST", &bindings, Some(&create)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["result"], Value::Null);
    let errors = body["errors"].as_array().expect("errors array");
    assert!(!errors.is_empty(), "{body}");
    assert!(errors[0]["code"].as_u64().unwrap() >= 1000, "{body}");
    assert!(errors[0]["message"].is_string(), "{body}");

    // Nothing was created.
    let (status, list) = call(addr, "GET", &bindings, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["result"].as_array().unwrap().len(), 0, "{list}");
    assert_eq!(list["result_info"]["count"], 0);

    // The store works again: the same request now succeeds, once.
    let (status, created) = call(addr, "POST", &bindings, Some(&create)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["result"]["cidr"], "203.0.113.0/24");
    let (_, list) = call(addr, "GET", &bindings, None).await;
    assert_eq!(list["result"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fails_a_commit_halts_writes_until_a_restart() {
    let (store, control, addr) = serve().await;
    let bindings =
        format!("/client/v4/accounts/{DEV_ACCOUNT_ID}/dls/regional_services/prefix_bindings");
    let create = |cidr: &str| {
        format!(r#"{{"prefix_id": "{DEMO_PREFIX_ID}", "cidr": "{cidr}", "region_key": "eu"}}"#)
    };
    let (status, _) = call(addr, "POST", &bindings, Some(&create("203.0.113.0/25"))).await;
    assert_eq!(status, 201);
    let version = control.version();

    store.fail_next_commit_as_disk();
    let body = create("203.0.113.128/25");
    let failed = tokio::task::spawn_blocking({
        let (bindings, body) = (bindings.clone(), body.clone());
        move || raw_request(addr, "POST", &bindings, Some(&body))
    })
    .await
    .unwrap();
    assert_eq!(failed.0, 500, "{failed:?}");
    assert!(failed.1.contains("x-should-retry: false"), "{failed:?}");
    assert!(
        failed.2.contains("may or may not have taken effect"),
        "{failed:?}"
    );

    // The store itself would commit now; the control plane does not let it, so that what
    // the failed commit left cannot be overwritten before a restart settles it.
    for (method, path, body) in [
        ("POST", bindings.clone(), Some(create("203.0.114.0/24"))),
        ("POST", bindings.clone(), Some(body)),
    ] {
        let (status, headers, payload) =
            tokio::task::spawn_blocking(move || raw_request(addr, method, &path, body.as_deref()))
                .await
                .unwrap();
        assert_eq!(status, 500, "{payload}");
        assert!(headers.contains("x-should-retry: false"), "{headers}");
        assert!(payload.contains("no write is accepted until"), "{payload}");
    }
    assert_eq!(control.version(), version, "a halted control plane changed");
    assert_eq!(store.commit_calls(), 2, "a halted write reached the store");
    assert!(control.halted().is_some());

    // Reads go on; the supervisor is told.
    let (status, list) = call(addr, "GET", &bindings, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["result"].as_array().unwrap().len(), 1, "{list}");
    let (status, _, text) =
        tokio::task::spawn_blocking(move || raw_request(addr, "GET", "/healthz", None))
            .await
            .unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(text.starts_with("halted: "), "{text}");

    // A restart (a new control plane on the same records) writes again.
    drop(control);
    let control = ControlPlane::open(Box::new(store.clone()), ControlConfig::default()).unwrap();
    assert!(control.halted().is_none());
    assert_eq!(control.version(), version);
    let now = Timestamp::from_micros(0);
    let new = CreateBinding::new(DEMO_PREFIX_ID, "203.0.114.0/24", "eu");
    control
        .create_binding(&Principal::system(), DEV_ACCOUNT_ID, new, now)
        .expect("a write after the restart");
    assert_eq!(control.version(), version + 1);
}
