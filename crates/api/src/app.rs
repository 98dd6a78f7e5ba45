//! The router and the Cloudflare-surface handlers.
//!
//! Every handler has the same shape: read the clock once, authenticate, call one
//! [`ControlPlane`] method with the raw inputs, render the result or the typed error.
//! Everything runs on the async workers: reads take a shared lock on in-memory state;
//! writes validate and queue under the writer lock, then `.await` their durable group
//! commit (the control plane's committer thread wakes them), so no request holds a
//! thread while an fsync runs. A write whose client goes away is still committed whole
//! or not at all: once queued it belongs to the committer.

use crate::admin;
use crate::auth;
use crate::body::{self, QueryParams};
use crate::clock::OffsetClock;
use crate::envelope::{ErrorItem, HttpError, ResultInfo, Success};
use crate::extract::{no_route, ClientIp, PathParams, RawBody};
use crate::metrics::{Metrics, UNMATCHED};
use axum::extract::{DefaultBodyLimit, MatchedPath, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use inregion_control::{
    ApiError, Clock, ControlPlane, CreateAddressMap, CreateBinding, CreatePrefix, MembershipKind,
    Notice, Page, PageRequest, Principal, Timestamp, UpdateAddressMap, UpdateBinding, WriteKind,
};
use std::sync::Arc;
use std::time::Instant;

/// Default request body limit (1 MiB): far above any real DLS or Addressing body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Shared state of the HTTP server.
pub struct App {
    /// The rules and the state.
    pub control: Arc<ControlPlane>,
    /// The server's clock (wall time plus the admin offset).
    pub clock: Arc<OffsetClock>,
    /// Request metrics.
    pub metrics: Metrics,
    /// `Some(token)`: the admin surface is enabled and needs this token in
    /// `X-Inregion-Admin-Token`. `None`: the admin surface refuses every request.
    pub admin_token: Option<String>,
    /// Fault injection rules in force (`faults.rs`).
    pub faults: std::sync::Mutex<inregion_control::FaultSet>,
    /// What `POST /__inregion/reset` returns to: the seeding documents applied at start
    /// (the dev world, `--config`), whose `faults` are the start rules.
    pub start_seeds: Vec<inregion_control::SeedConfig>,
    /// `Some(token)`: edge nodes may follow the feed and register (`/edge/v1/...`,
    /// `edge_feed.rs`) with this bearer token. `None`: the edge feed is closed.
    pub edge_token: Option<String>,
    /// This server process's feed generation (random at start): a node that followed
    /// another incarnation re-reads everything.
    pub edge_epoch: u64,
    /// Set to `true` when the server starts to stop: long polls answer at once instead
    /// of holding the graceful drain for their whole wait.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl App {
    /// State over `control`, with a non-persisted clock and the admin surface disabled.
    pub fn new(control: Arc<ControlPlane>) -> Self {
        Self {
            control,
            clock: Arc::new(OffsetClock::new()),
            metrics: Metrics::new(),
            admin_token: None,
            faults: Default::default(),
            start_seeds: Vec::new(),
            edge_token: None,
            edge_epoch: rand::random::<u64>() >> 11,
            stopping: tokio::sync::watch::channel(false).0,
        }
    }

    /// The time used for this request.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

type AppState = Arc<App>;

/// Builds the whole router: `/client/v4/...` (Cloudflare surface), `/metrics`,
/// `/openapi.json`, `/healthz` and `/__inregion/...` (admin).
pub fn router(app: AppState, max_body_bytes: usize) -> Router {
    const A: &str = "/client/v4/accounts/{account_id}";
    let cf = Router::new()
        .route(&format!("{A}/dls/regions"), get(list_regions))
        .route(&format!("{A}/dls/regions/{{region_id}}"), get(get_region))
        .route(
            &format!("{A}/dls/regional_services/prefix_bindings"),
            get(list_bindings).post(create_binding),
        )
        .route(
            &format!("{A}/dls/regional_services/prefix_bindings/{{binding_id}}"),
            get(get_binding).patch(patch_binding).delete(delete_binding),
        )
        .route(
            &format!("{A}/addressing/prefixes"),
            get(list_prefixes).post(create_prefix),
        )
        .route(
            &format!("{A}/addressing/prefixes/{{prefix_id}}"),
            get(get_prefix),
        )
        .route(&format!("{A}/addressing/services"), get(list_services))
        .route(
            &format!("{A}/addressing/prefixes/{{prefix_id}}/bindings"),
            get(list_service_bindings),
        )
        .route(
            &format!("{A}/addressing/prefixes/{{prefix_id}}/bindings/{{binding_id}}"),
            get(get_service_binding).delete(delete_service_binding),
        )
        .route(
            &format!("{A}/addressing/address_maps"),
            get(list_address_maps).post(create_address_map),
        )
        .route(
            &format!("{A}/addressing/address_maps/{{address_map_id}}"),
            get(get_address_map)
                .patch(update_address_map)
                .delete(delete_address_map),
        )
        .route(
            &format!("{A}/addressing/address_maps/{{address_map_id}}/ips/{{ip_address}}"),
            put(add_ip).delete(remove_ip),
        )
        .route(
            &format!("{A}/addressing/address_maps/{{address_map_id}}/zones/{{zone_id}}"),
            put(add_zone).delete(remove_zone),
        )
        .route(
            &format!(
                "{A}/addressing/address_maps/{{address_map_id}}/accounts/{{member_account_id}}"
            ),
            put(add_account).delete(remove_account),
        )
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .merge(admin::routes())
        .merge(crate::edge_feed::routes());
    cf.method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::faults::inject,
        ))
        .route_layer(middleware::from_fn_with_state(app.clone(), fresh_state))
        .route_layer(middleware::from_fn_with_state(app.clone(), track))
        .fallback(unmatched)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(app)
}

/// `GET /healthz`: `ok`, or 503 with the reason once writes are halted (the disk failed
/// a commit: see [`ControlPlane::halted`]), so that a supervisor's liveness check
/// restarts the server, whose recovery then settles the failed write.
async fn healthz(State(app): State<AppState>) -> Response {
    match app.control.halted() {
        None => "ok\n".into_response(),
        Some(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("halted: {e}\n")).into_response(),
    }
}

/// How long a request on a replica waits to confirm it has every acknowledged write
/// before a read answers from what it has (with `x-inregion-stale-ms`) or a write answers
/// 503.
const FRESHNESS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// On a replica of a shared store (etcd), every request first asks the store for its
/// newest revision and waits until this replica has applied it, so that it sees every
/// write acknowledged by any replica before it started: a read finds it, and a write's
/// rule is decided on it (a PATCH of a binding just created through another replica
/// finds the binding). When the store cannot answer (no quorum, unreachable), a read
/// answers from the replica's last state, with `x-inregion-stale-ms` (how long ago the
/// store last answered this replica), and a write answers 503, retryable.
async fn fresh_state(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !app.control.is_replica() || path == "/metrics" || path == "/healthz" {
        return next.run(req).await;
    }
    let read = req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD;
    let fresh = tokio::time::timeout(FRESHNESS_WAIT, app.control.wait_fresh())
        .await
        .is_ok_and(|r| r.is_ok());
    if fresh {
        return next.run(req).await;
    }
    let ms = app
        .control
        .replica_stats()
        .and_then(|s| s.since_contact)
        .map_or(u128::MAX, |t| t.as_millis());
    if !read {
        tracing::warn!(stale_ms = %ms, "etcd did not confirm this replica is current; write refused");
        return HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            inregion_control::INTERNAL_CODE,
            "the store is unavailable: etcd could not confirm this replica is current; try again",
        )
        .into_response();
    }
    tracing::warn!(stale_ms = %ms, "etcd did not confirm this read's freshness; answered from the replica's last state");
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&ms.to_string()) {
        resp.headers_mut().insert("x-inregion-stale-ms", v);
    }
    resp
}

/// Records metrics and a debug log line for every routed request.
async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let route = route.as_ref().map(MatchedPath::as_str).unwrap_or(UNMATCHED);
    let status = resp.status().as_u16();
    app.metrics.record(route, method.as_str(), status, elapsed);
    tracing::debug!(target: "inregion::http", %method, route, status, micros = elapsed.as_micros() as u64, "request");
    resp
}

async fn unmatched(State(app): State<AppState>, req: Request) -> Response {
    let start = Instant::now();
    let resp = no_route(req.uri().path()).into_response();
    app.metrics
        .record(UNMATCHED, req.method().as_str(), 400, start.elapsed());
    tracing::debug!(target: "inregion::http", method = %req.method(), path = req.uri().path(), status = 400, "no route");
    resp
}

async fn method_not_allowed(req: Request) -> Response {
    // axum adds the `Allow` header to a 405 returned from here.
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        7001,
        format!("Method {} not allowed for this route", req.method()),
    )
    .into_response()
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::openapi::document(),
    )
        .into_response()
}

async fn metrics(State(app): State<AppState>) -> Response {
    let mut out = String::with_capacity(8192);
    app.metrics.render(&mut out);
    let counts = app.control.binding_counts(app.now());
    out.push_str("# HELP inregion_bindings Prefix bindings by lifecycle state at scrape time.\n");
    out.push_str("# TYPE inregion_bindings gauge\n");
    for (state, n) in [
        ("provisioning", counts.provisioning),
        ("active", counts.active),
        ("deleting", counts.deleting),
        ("gone", counts.gone),
    ] {
        out.push_str(&format!("inregion_bindings{{state=\"{state}\"}} {n}\n"));
    }
    out.push_str(
        "# HELP inregion_control_version Committed control-plane changes (change-feed version).\n",
    );
    out.push_str("# TYPE inregion_control_version gauge\n");
    out.push_str(&format!(
        "inregion_control_version {}\n",
        app.control.version()
    ));
    let reg = app
        .control
        .edge_registry(inregion_control::SystemClock.now());
    let live = reg.nodes.iter().filter(|n| n.live).count();
    out.push_str("# HELP inregion_edge_nodes Registered edge nodes, live (heard from within --edge-live-timeout) or down (still counted toward the majority).\n");
    out.push_str("# TYPE inregion_edge_nodes gauge\n");
    out.push_str(&format!(
        "inregion_edge_nodes{{state=\"live\"}} {live}\ninregion_edge_nodes{{state=\"down\"}} {}\n",
        reg.nodes.len() - live
    ));
    out.push_str("# HELP inregion_edge_activated_through The highest version a majority of registered edge nodes have applied.\n");
    out.push_str("# TYPE inregion_edge_activated_through gauge\n");
    out.push_str(&format!(
        "inregion_edge_activated_through {}\n",
        reg.activated_through
    ));
    if let Some(r) = app.control.replica_stats() {
        for (name, kind, help, v) in [
            (
                "inregion_etcd_watch_lag_revisions",
                "gauge",
                "Revisions of the shared store this replica has seen but not yet applied.",
                r.watch_lag(),
            ),
            (
                "inregion_etcd_position",
                "gauge",
                "The etcd revision this replica's state is at.",
                r.position,
            ),
            (
                "inregion_etcd_reconnects_total",
                "counter",
                "Watch streams re-opened after a drop, and re-lists.",
                r.reconnects,
            ),
            (
                "inregion_etcd_txn_conflicts_total",
                "counter",
                "Transactions that lost the race to another replica (each rule ran again).",
                r.conflicts,
            ),
            (
                "inregion_etcd_repairs_total",
                "counter",
                "Differences between the watched state and a periodic full re-read, repaired.",
                r.repairs,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        if let Some(t) = r.since_contact {
            out.push_str("# HELP inregion_etcd_last_contact_seconds How long ago etcd last answered this replica.\n# TYPE inregion_etcd_last_contact_seconds gauge\n");
            out.push_str(&format!(
                "inregion_etcd_last_contact_seconds {:.3}\n",
                t.as_secs_f64()
            ));
        }
    }
    let commits = app.control.commit_stats();
    out.push_str("# HELP inregion_store_commit_batches_total Group-commit batches made durable (one SQLite transaction and one WAL fsync each).\n");
    out.push_str("# TYPE inregion_store_commit_batches_total counter\n");
    out.push_str(&format!(
        "inregion_store_commit_batches_total {}\n",
        commits.batches
    ));
    out.push_str("# HELP inregion_store_commits_total Write operations committed (batches / commits = mean batch size).\n");
    out.push_str("# TYPE inregion_store_commits_total counter\n");
    out.push_str(&format!(
        "inregion_store_commits_total {}\n",
        commits.commits
    ));
    out.push_str("# HELP inregion_store_commit_duration_seconds Time to make one batch durable (its SQLite transaction and WAL fsync): the disk's share of a write's latency.\n");
    out.push_str("# TYPE inregion_store_commit_duration_seconds histogram\n");
    crate::metrics::write_histogram(
        &mut out,
        "inregion_store_commit_duration_seconds",
        "",
        &inregion_control::LATENCY_BUCKETS,
        &commits.duration_buckets,
        commits.duration_sum.as_secs_f64(),
    );
    out.push_str("# HELP inregion_store_commit_wait_seconds Time each write waited in the queue for its batch's commit to start (behind the batch in flight, or the committer waking): with the commit's duration, where a write's latency goes.\n");
    out.push_str("# TYPE inregion_store_commit_wait_seconds histogram\n");
    crate::metrics::write_histogram(
        &mut out,
        "inregion_store_commit_wait_seconds",
        "",
        &inregion_control::LATENCY_BUCKETS,
        &commits.wait_buckets,
        commits.wait_sum.as_secs_f64(),
    );
    out.push_str("# HELP inregion_clock_offset_seconds How far the admin surface has advanced the server clock.\n");
    out.push_str("# TYPE inregion_clock_offset_seconds gauge\n");
    out.push_str(&format!(
        "inregion_clock_offset_seconds {}\n",
        app.clock.offset().as_secs_f64()
    ));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}

// ---------------------------------------------------------------------------- helpers

fn ctl<E: ApiError>(e: E) -> HttpError {
    HttpError::from_control(&e)
}

/// Clock reading plus authentication, the prologue of every handler.
fn begin(
    app: &App,
    headers: &HeaderMap,
    ip: ClientIp,
) -> Result<(Principal, Timestamp), HttpError> {
    let now = app.now();
    let p = auth::authenticate(&app.control, headers, ip.0, now)?;
    Ok((p, now))
}

fn page_request(q: &QueryParams) -> PageRequest {
    PageRequest {
        per_page: q.get("per_page").map(str::to_owned),
        cursor: q.get("cursor").map(str::to_owned),
    }
}

fn page_response<T: serde::Serialize>(page: Page<T>) -> Response {
    let info = ResultInfo {
        count: page.count(),
        per_page: page.per_page,
        cursor: page.next_cursor,
    };
    Success::page(page.items, info).into_response()
}

fn notices(n: Vec<Notice>) -> Vec<ErrorItem> {
    n.into_iter()
        .map(|n| ErrorItem::new(n.code, n.message))
        .collect()
}

/// Parses a body; when it is malformed, first checks that the caller may make writes of
/// `kind` on `account` (a read: nothing is written), so that the contract's precedence
/// holds: 403 before 400/1100, and a caller without access learns nothing from the body.
fn parse_after_access<T>(
    app: &App,
    p: &Principal,
    account: &str,
    kind: WriteKind,
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, HttpError>,
) -> Result<T, HttpError> {
    parse(bytes).or_else(|malformed| {
        app.control.authorize(p, account, kind).map_err(ctl)?;
        Err(malformed)
    })
}

// ---------------------------------------------------------------------------- DLS

async fn list_regions(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let q = QueryParams::parse(q.as_deref());
    let page = app
        .control
        .list_regions(&p, &account, q.get("type"), &page_request(&q))
        .map_err(ctl)?;
    Ok(page_response(page))
}

async fn get_region(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, region)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let r = app.control.get_region(&p, &account, &region).map_err(ctl)?;
    Ok(Success::ok(r).into_response())
}

async fn list_bindings(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let q = QueryParams::parse(q.as_deref());
    let page = app
        .control
        .list_bindings(&p, &account, &page_request(&q))
        .map_err(ctl)?;
    Ok(page_response(page))
}

async fn get_binding(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let b = app.control.get_binding(&p, &account, &id).map_err(ctl)?;
    Ok(Success::ok(b).into_response())
}

/// `POST …/prefix_bindings` body: each field a string when present. Messages name the
/// field; no `source.pointer` (DLS error items have none, §4.2).
fn parse_create_binding(b: &[u8]) -> Result<CreateBinding, HttpError> {
    let parse = || {
        let map = body::json_object(b)?;
        Ok(CreateBinding {
            prefix_id: body::opt_string(&map, "prefix_id")?,
            cidr: body::opt_string(&map, "cidr")?,
            region_key: body::opt_string(&map, "region_key")?,
        })
    };
    parse().map_err(HttpError::without_source)
}

/// `PATCH …/prefix_bindings/{id}` body: `region_key`, and the names of any other keys
/// (refused with 1113 by the control plane). As [`parse_create_binding`], no pointer.
fn parse_update_binding(b: &[u8]) -> Result<UpdateBinding, HttpError> {
    let parse = || {
        let map = body::json_object(b)?;
        Ok(UpdateBinding {
            region_key: body::opt_string(&map, "region_key")?,
            other_fields: map.keys().filter(|k| *k != "region_key").cloned().collect(),
        })
    };
    parse().map_err(HttpError::without_source)
}

async fn create_binding(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let input: CreateBinding = parse_after_access(
        &app,
        &p,
        &account,
        WriteKind::Bindings,
        &bytes,
        parse_create_binding,
    )?;
    let created = app
        .control
        .create_binding_async(&p, &account, input, now)
        .await
        .map_err(ctl)?;
    Ok(Success::created(created.result)
        .with_messages(notices(created.messages))
        .into_response())
}

async fn patch_binding(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id)): PathParams<(String, String)>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let input = parse_after_access(
        &app,
        &p,
        &account,
        WriteKind::Bindings,
        &bytes,
        parse_update_binding,
    )?;
    let b = app
        .control
        .patch_binding_async(&p, &account, &id, input, now)
        .await
        .map_err(ctl)?;
    Ok(Success::ok(b).into_response())
}

async fn delete_binding(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    app.control
        .delete_binding_async(&p, &account, &id, now)
        .await
        .map_err(ctl)?;
    Ok(Success::null().into_response())
}

// ---------------------------------------------------------------------------- Addressing

async fn list_prefixes(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let v = app.control.list_prefixes(&p, &account).map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn get_prefix(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, prefix)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let v = app.control.get_prefix(&p, &account, &prefix).map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn create_prefix(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let input: CreatePrefix =
        parse_after_access(&app, &p, &account, WriteKind::Prefixes, &bytes, |b| {
            body::typed(body::json_object(b)?)
        })?;
    let v = app
        .control
        .create_prefix_async(&p, &account, input, now)
        .await
        .map_err(ctl)?;
    Ok(Success::created(v).into_response())
}

async fn list_services(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let v = app.control.list_services(&p, &account).map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn list_service_bindings(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, prefix)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let v = app
        .control
        .list_service_bindings(&p, &account, &prefix, now)
        .map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn get_service_binding(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, prefix, id)): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let v = app
        .control
        .get_service_binding(&p, &account, &prefix, &id, now)
        .map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn delete_service_binding(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, prefix, id)): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    app.control
        .delete_service_binding(&p, &account, &prefix, &id)
        .map_err(ctl)?;
    Ok(Success::null().into_response())
}

async fn list_address_maps(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let v = app.control.list_address_maps(&p, &account).map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn get_address_map(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, _) = begin(&app, &headers, ip)?;
    let v = app
        .control
        .get_address_map(&p, &account, &id)
        .map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn create_address_map(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(account): PathParams<String>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let input: CreateAddressMap =
        parse_after_access(&app, &p, &account, WriteKind::AddressMaps, &bytes, |b| {
            body::typed(body::json_object(b)?)
        })?;
    let v = app
        .control
        .create_address_map_async(&p, &account, input, now)
        .await
        .map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

/// `PATCH /address_maps/{id}` body: the three fields, and the names of any other keys,
/// which the control plane refuses (400 / 1113 pointing at the key, §6.4) rather than
/// ignoring them, as for the DLS PATCH: a client that sends `ips` here must not be told
/// its change succeeded.
fn parse_update_map(b: &[u8]) -> Result<UpdateAddressMap, HttpError> {
    let map = body::json_object(b)?;
    let nullable = |field: &str| -> Result<Option<Option<String>>, HttpError> {
        match map.get(field) {
            None => Ok(None),
            Some(serde_json::Value::Null) => Ok(Some(None)),
            Some(serde_json::Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(other) => Err(body::wrong_type(field, "a string or null", other)),
        }
    };
    Ok(UpdateAddressMap {
        description: nullable("description")?,
        enabled: body::opt_bool(&map, "enabled")?,
        default_sni: nullable("default_sni")?,
        other_fields: map
            .keys()
            .filter(|k| !UpdateAddressMap::FIELDS.contains(&k.as_str()))
            .cloned()
            .collect(),
    })
}

async fn update_address_map(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id)): PathParams<(String, String)>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let input = parse_after_access(
        &app,
        &p,
        &account,
        WriteKind::AddressMaps,
        &bytes,
        parse_update_map,
    )?;
    let v = app
        .control
        .update_address_map_async(&p, &account, &id, input, now)
        .await
        .map_err(ctl)?;
    Ok(Success::ok(v).into_response())
}

async fn delete_address_map(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    app.control
        .delete_address_map_async(&p, &account, &id, now)
        .await
        .map_err(ctl)?;
    Ok(Success::null().into_response())
}

async fn add_ip(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id, addr)): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    app.control
        .add_address_map_ip_async(&p, &account, &id, &addr, now)
        .await
        .map_err(ctl)?;
    Ok(Success::null().into_response())
}

async fn remove_ip(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams((account, id, addr)): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    app.control
        .remove_address_map_ip_async(&p, &account, &id, &addr, now)
        .await
        .map_err(ctl)?;
    Ok(Success::null().into_response())
}

async fn membership(
    app: AppState,
    ip: ClientIp,
    headers: HeaderMap,
    (account, id, member): (String, String, String),
    kind: MembershipKind,
    add: bool,
) -> Result<Response, HttpError> {
    let (p, now) = begin(&app, &headers, ip)?;
    let c = &app.control;
    if add {
        c.add_address_map_membership_async(&p, &account, &id, kind, &member, now)
            .await
    } else {
        c.remove_address_map_membership_async(&p, &account, &id, kind, &member, now)
            .await
    }
    .map_err(ctl)?;
    Ok(Success::null().into_response())
}

async fn add_zone(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(params): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    membership(app, ip, headers, params, MembershipKind::Zone, true).await
}

async fn remove_zone(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(params): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    membership(app, ip, headers, params, MembershipKind::Zone, false).await
}

async fn add_account(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(params): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    membership(app, ip, headers, params, MembershipKind::Account, true).await
}

async fn remove_account(
    State(app): State<AppState>,
    ip: ClientIp,
    PathParams(params): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    membership(app, ip, headers, params, MembershipKind::Account, false).await
}
