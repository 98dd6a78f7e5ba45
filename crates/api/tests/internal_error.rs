//! The 500 row of the contract's error table (§12), over real HTTP on loopback: when the
//! store fails to commit, the client gets a 500 failure envelope, nothing changes, and
//! the same request succeeds once the store works again.

use inregion_api::{dev_seed, DEMO_PREFIX_ID, DEV_ACCOUNT_ID};
use inregion_api::{router, App};
use inregion_control::{ControlConfig, ControlPlane, MemoryStore, Timestamp};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

const TOKEN: &str = "internal-error-test-token-000000000000";

/// One HTTP/1.1 request with `Connection: close`; returns (status, JSON body).
fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
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
    let json = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{e}: {payload}"));
    (status, json)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_a_500_and_changes_nothing() {
    let store = MemoryStore::new();
    let control =
        ControlPlane::open(Box::new(store.clone()), ControlConfig::default()).expect("open");
    control
        .seed(
            &dev_seed(TOKEN).expect("dev seed"),
            Timestamp::from_micros(0),
        )
        .expect("seed");
    let app = Arc::new(App::new(Arc::new(control)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(app, 1 << 20)).await.unwrap();
    });

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
