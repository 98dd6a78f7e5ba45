//! The `api` target: requests through the whole router, in process (no sockets).
//!
//! Input: one or more requests separated by a line `--`. Each request is a request line
//! `METHOD TARGET` (the target with its query string) and the body on the lines after
//! it. The request line's first character picks the credentials: `!` none, `?` the admin
//! token only, anything else the development token as a bearer token. `$LAST` in a
//! target is replaced by the `id` of the last object a request created, so that a
//! sequence can create a binding and then patch or delete it.
//!
//! Each input gets a fresh in-memory control plane with the development world and a
//! fixed id seed. The server's clock is wall time, as in production; nothing here
//! depends on its value.

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use inregion_api::{router, App};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

const DEV_TOKEN: &str = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";
const ADMIN_TOKEN: &str = "fuzz-admin";
const MAX_REQUESTS: usize = 8;
const MAX_BODY: usize = 64 << 10;

/// One runtime for every input. Its one blocking thread (the admin handlers'
/// `spawn_blocking`) is started here and never retires: a thread started during an input
/// holds its start closure where LeakSanitizer cannot see it for a moment, and libFuzzer's
/// leak check then reports a leak that is none (met after 36,552 executions).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(1)
            .thread_keep_alive(std::time::Duration::from_secs(365 * 24 * 3600))
            .build()
            .expect("a current-thread runtime");
        rt.block_on(async { tokio::task::spawn_blocking(|| ()).await })
            .expect("the blocking thread starts");
        rt
    })
}

/// Runs the input's requests against a fresh server and checks every answer.
pub fn api(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let requests: Vec<&str> = text.split("\n--\n").take(MAX_REQUESTS).collect();
    let control = Arc::new(crate::fresh_control_plane());
    let seed = inregion_api::dev_seed(DEV_TOKEN).expect("the dev seed builds");
    control
        .seed(&seed, crate::NOW)
        .expect("the dev seed applies");
    let mut app = App::new(control.clone());
    app.admin_token = Some(ADMIN_TOKEN.to_owned());
    let service = router(Arc::new(app), inregion_api::DEFAULT_MAX_BODY_BYTES);
    let mut last_id = String::new();
    runtime().block_on(async {
        for raw in requests {
            let Some(req) = parse(raw, &last_id) else {
                continue;
            };
            let described = format!("{} {}", req.method(), req.uri());
            let path = req.uri().path().to_owned();
            let is_head = req.method() == Method::HEAD;
            let is_read = is_head || req.method() == Method::GET;
            let before = control.version();
            let resp = service.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let body = to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("a response body");
            assert!(
                !status.is_server_error(),
                "{described}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            if is_read || status.is_client_error() {
                assert_eq!(
                    control.version(),
                    before,
                    "{described} answered {status} but changed the state"
                );
            }
            // HEAD answers carry the GET's headers and no body (RFC 9110 §9.3.2).
            if is_head {
                assert!(body.is_empty(), "{described}: a body on a HEAD answer");
                continue;
            }
            if path == "/metrics" || path == "/healthz" || status == StatusCode::NO_CONTENT {
                continue;
            }
            let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!("{described}: {status} with a body that is not JSON ({e})")
            });
            if path == "/openapi.json" {
                continue;
            }
            let success = v.get("success").and_then(Value::as_bool);
            assert_eq!(
                success,
                Some(status.is_success()),
                "{described}: {status} with envelope {v}"
            );
            if !status.is_success() {
                let errors = v["errors"].as_array().expect("errors array");
                assert!(!errors.is_empty(), "{described}: failure without errors");
            }
            if let Some(id) = v["result"].get("id").and_then(Value::as_str) {
                if status == StatusCode::CREATED || status == StatusCode::OK {
                    last_id = id.to_owned();
                }
            }
        }
    });
}

fn parse(raw: &str, last_id: &str) -> Option<Request<Body>> {
    let (line, body) = raw.split_once('\n').unwrap_or((raw, ""));
    if body.len() > MAX_BODY {
        return None;
    }
    let (auth, line) = match line.chars().next() {
        Some(c @ ('!' | '?')) => (c, &line[1..]),
        _ => ('b', line),
    };
    let (method, target) = line.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let target = target.replace("$LAST", last_id);
    // Fault rules answer 5xx on purpose; they have their own tests.
    if target.starts_with("/__inregion/faults") || target.starts_with("/__sim/faults") {
        return None;
    }
    let mut b = Request::builder().method(method).uri(target.as_str());
    match auth {
        '!' => {}
        '?' => b = b.header("x-inregion-admin-token", ADMIN_TOKEN),
        _ => b = b.header("authorization", format!("Bearer {DEV_TOKEN}")),
    }
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    b.body(Body::from(body.to_owned())).ok()
}
