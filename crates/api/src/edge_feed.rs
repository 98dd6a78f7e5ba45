//! The edge feed, outside Cloudflare's API: `/edge/v1/...`, what `inregion edge` nodes
//! follow and report to (`docs/edge-protocol.md`; the documents are
//! [`inregion_feed::wire`]).
//!
//! Every request needs the server's edge token in `Authorization: Bearer ...` (never a
//! Cloudflare credential: no token of the emulated accounts opens it). Errors are the
//! feed's own small JSON shape, not Cloudflare's envelope: nodes are not API clients.
//!
//! `changes` long-polls: with `wait_ms` it parks until the next durable commit (the
//! control plane's committer wakes it) or the wait runs out, holding no thread.

use crate::app::App;
use crate::body::QueryParams;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use inregion_control::{EdgeNodeError, FeedError};
use inregion_feed::wire::{self, ErrorBody, ErrorCode, ErrorDetail};
use inregion_model::{Clock, SystemClock, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// The edge feed's routes (state: [`App`]), under [`wire::PATH_PREFIX`].
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().nest(
        wire::PATH_PREFIX,
        Router::new()
            .route("/snapshot", get(snapshot))
            .route("/changes", get(changes))
            .route("/nodes", get(registry))
            .route("/nodes/{node_id}", put(report).delete(remove)),
    )
}

/// A feed error: its status comes from its code.
struct FeedHttpError(ErrorCode, String);

impl IntoResponse for FeedHttpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.0,
                message: self.1,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if self.0 == ErrorCode::Unauthorized {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"inregion edge feed\""),
            );
        }
        resp
    }
}

fn bad(message: impl Into<String>) -> FeedHttpError {
    FeedHttpError(ErrorCode::BadRequest, message.into())
}

/// Checks the bearer token against the server's edge token (constant time).
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), FeedHttpError> {
    let Some(expected) = app.edge_token.as_deref() else {
        return Err(FeedHttpError(
            ErrorCode::Unauthorized,
            "this server has no edge token: the edge feed is closed".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(FeedHttpError(
            ErrorCode::Unauthorized,
            "wrong edge token (serve --edge-token / INREGION_EDGE_TOKEN)".into(),
        )),
        None => Err(FeedHttpError(
            ErrorCode::Unauthorized,
            "missing edge token: send Authorization: Bearer <edge token>".into(),
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The registry's clock: wall time, never the admin-advanced emulated clock (see
/// [`inregion_control::ControlPlane::report_edge_node`]).
fn wall_now() -> Timestamp {
    SystemClock.now()
}

async fn snapshot(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&app, &headers) {
        return e.into_response();
    }
    Json(app.control.edge_snapshot(app.edge_epoch)).into_response()
}

fn query_u64(q: &QueryParams, name: &str) -> Result<Option<u64>, FeedHttpError> {
    q.get(name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| bad(format!("{name}={v:?} is not a non-negative integer")))
        })
        .transpose()
}

async fn changes(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let run = async {
        authorize(&app, &headers)?;
        let q = QueryParams::parse(raw.as_deref());
        let since = query_u64(&q, "since")?.ok_or_else(|| bad("since is required"))?;
        let wait = query_u64(&q, "wait_ms")?
            .unwrap_or(0)
            .min(wire::MAX_WAIT_MS);
        let mut stopping = app.stopping.subscribe();
        if wait > 0 && app.control.version() == since && !*stopping.borrow() {
            // Nothing new yet: park until a commit, the end of the wait, or the server
            // starting to stop (the node then reconnects to whatever serves next).
            tokio::select! {
                _ = tokio::time::timeout(
                    Duration::from_millis(wait),
                    app.control.version_after(since),
                ) => {}
                _ = stopping.changed() => {}
            }
        }
        app.control
            .edge_changes(since, app.edge_epoch)
            .map_err(|e| match e {
                FeedError::TooFarBehind { .. } | FeedError::Ahead { .. } => {
                    FeedHttpError(ErrorCode::TooFarBehind, e.to_string())
                }
            })
    };
    match run.await {
        Ok(c) => Json(c).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn registry(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&app, &headers) {
        return e.into_response();
    }
    let now = wall_now();
    Json(app.control.edge_registry(now).to_wire(now)).into_response()
}

fn node_error(e: EdgeNodeError) -> FeedHttpError {
    let code = match &e {
        EdgeNodeError::InvalidNodeId(_) | EdgeNodeError::UnknownDc(_) => ErrorCode::BadRequest,
        EdgeNodeError::NotFound(_) => ErrorCode::NotFound,
        EdgeNodeError::Store(_) => ErrorCode::Unavailable,
    };
    FeedHttpError(code, e.to_string())
}

async fn report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        authorize(&app, &headers)?;
        let report: wire::NodeReport = serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "body: {e} (expected {{\"dc\": IATA, \"address\": \"host:port\", \
                 \"applied_version\": N}})"
            ))
        })?;
        let wall = wall_now();
        let (node, view) = app
            .control
            .report_edge_node_async(&node_id, &report, wall, app.now())
            .await
            .map_err(node_error)?;
        let cfg = app.control.config().edges;
        Ok::<_, FeedHttpError>(wire::HeartbeatAnswer {
            node: node.to_wire(wall),
            nodes: view.nodes.iter().map(|n| n.to_wire(wall)).collect(),
            activated_through: view.activated_through,
            heartbeat_ms: cfg.heartbeat.as_millis() as u64,
            live_timeout_ms: cfg.live_timeout.as_millis() as u64,
        })
    };
    match run.await {
        Ok(a) => Json(a).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn remove(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(node_id): Path<String>,
) -> Response {
    let run = async {
        authorize(&app, &headers)?;
        app.control
            .remove_edge_node_async(&node_id, wall_now(), app.now())
            .await
            .map_err(node_error)
    };
    match run.await {
        Ok(_) => Json(serde_json::json!({ "deleted": true })).into_response(),
        Err(e) => e.into_response(),
    }
}
