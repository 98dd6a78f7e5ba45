//! The node's HTTP API (axum): `/v1/decide`, `/v1/status`, `/v1/health` behind the edge
//! token, `/metrics` open.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use inregion_model::Iata;
use serde::Deserialize;
use serde_json::json;

use crate::query::{FlowRequest, MAX_BATCH};
use crate::state::Shared;

/// An error answer: `{"error":{"code":..,"message":..}}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

/// The router over `sh`.
pub(crate) fn router(sh: Arc<Shared>) -> Router {
    let v1 = Router::new()
        .route("/v1/decide", get(decide_get).post(decide_post))
        .route("/v1/status", get(status))
        .route("/v1/health", post(health))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&sh), auth));
    Router::new()
        .merge(v1)
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(sh)
}

/// Equal in time whatever the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), sh.token.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "missing or wrong edge token (Authorization: Bearer <edge token>)".into(),
        }
        .into_response()
    }
}

fn no_table() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "unavailable",
        message: "no table yet: the node has not applied a first snapshot from its source at this data center".into(),
    }
}

async fn decide_get(
    State(sh): State<Arc<Shared>>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut q) = q.map_err(|e| ApiError::bad(format!("query: {e}")))?;
    if let Some(k) = q.keys().find(|k| {
        !matches!(
            k.as_str(),
            "src" | "dst" | "proto" | "sport" | "dport" | "dc"
        )
    }) {
        return Err(ApiError::bad(format!("{k}: unknown parameter")));
    }
    let req = FlowRequest {
        src: q.remove("src"),
        dst: q.remove("dst"),
        proto: q.remove("proto"),
        sport: q.remove("sport"),
        dport: q.remove("dport"),
        dc: q.remove("dc"),
    };
    let flow = req
        .check(&sh.dcs)
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let d = sh
        .decide(&[flow])
        .and_then(|mut d| d.pop())
        .ok_or_else(no_table)?;
    Ok(Json(d).into_response())
}

#[derive(Deserialize)]
struct Batch {
    flows: Vec<FlowRequest>,
}

async fn decide_post(State(sh): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let batch: Batch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("body: expected {{\"flows\":[...]}}: {e}")))?;
    if batch.flows.len() > MAX_BATCH {
        return Err(ApiError::bad(format!(
            "flows: {} flows, at most {MAX_BATCH} per request",
            batch.flows.len()
        )));
    }
    let flows = batch
        .flows
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.check(&sh.dcs)
                .map_err(|e| ApiError::bad(format!("flows[{i}].{e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let decisions = sh.decide(&flows).ok_or_else(no_table)?;
    Ok(Json(json!({"decisions": decisions})).into_response())
}

async fn status(State(sh): State<Arc<Shared>>) -> Response {
    let s = sh.status();
    let applied = s.applied_version();
    let source_version = s.feed.source_version;
    Json(json!({
        "node_ids": sh.node_ids,
        "dcs": s.dcs,
        "applied_version": applied,
        "source": sh.source_name,
        "source_version": source_version,
        "feed_lag": source_version.map(|v| v.saturating_sub(applied)),
        "table_prefixes": s.table_prefixes,
        "bindings": s.bindings,
        "stale": s.feed.stale_since().is_some(),
        "cached_version": s.feed.cached.as_ref().map(|c| c.snapshot.version),
        "last_error": s.feed.last_error,
        "stale_since": s.feed.stale_since().map(|t| humantime::format_rfc3339_millis(t).to_string()),
        "changes_applied": s.feed.changes_applied,
        "relists": s.feed.relists,
        "repairs": s.feed.repairs,
        "feed_errors": s.feed.feed_errors,
        "pending_deliveries": s.pending_deliveries,
        "unhealthy_dcs": s.unhealthy,
        "has_table": sh.has_table(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct HealthBody {
    dc: String,
    healthy: Option<bool>,
}

async fn health(State(sh): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let b: HealthBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "body: expected {{\"dc\":\"AMS\",\"healthy\":false|true|null}}: {e}"
        ))
    })?;
    let code = Iata::parse(&b.dc.to_ascii_uppercase())
        .map_err(|e| ApiError::bad(format!("dc: {:?}: {e}", b.dc)))?;
    let healthy = sh
        .set_override(code, b.healthy)
        .ok_or_else(|| ApiError::bad(format!("dc: unknown data center {code}")))?;
    tracing::info!(dc = %code, over = ?b.healthy, healthy, "health override");
    Ok(
        Json(json!({"dc": code.as_str(), "override": b.healthy, "healthy": healthy}))
            .into_response(),
    )
}

async fn metrics(State(sh): State<Arc<Shared>>) -> Response {
    let s = sh.status();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let applied: Vec<(String, u64)> = s
        .dcs
        .iter()
        .map(|d| (format!("{{dc=\"{}\"}}", d.dc), d.applied_version))
        .collect();
    metric(
        "inregion_edge_applied_version",
        "gauge",
        "Table version applied at each data center of this process.",
        &applied,
    );
    let sv = s.feed.source_version.unwrap_or(0);
    metric(
        "inregion_edge_source_version",
        "gauge",
        "Latest version seen from the source.",
        &[(String::new(), sv)],
    );
    metric(
        "inregion_edge_feed_lag",
        "gauge",
        "Source version minus the lowest applied version.",
        &[(String::new(), sv.saturating_sub(s.applied_version()))],
    );
    metric(
        "inregion_edge_relists_total",
        "counter",
        "Snapshots read after the first one.",
        &[(String::new(), s.feed.relists)],
    );
    metric(
        "inregion_edge_repairs_total",
        "counter",
        "Periodic re-reads that found a difference.",
        &[(String::new(), s.feed.repairs)],
    );
    metric(
        "inregion_edge_feed_errors_total",
        "counter",
        "Failed source requests.",
        &[(String::new(), s.feed.feed_errors)],
    );
    metric(
        "inregion_edge_changes_applied_total",
        "counter",
        "Binding changes applied from change sets.",
        &[(String::new(), s.feed.changes_applied)],
    );
    let decisions: Vec<(String, u64)> = ["in_region", "forwarded", "global", "refused"]
        .iter()
        .map(|v| {
            (
                format!("{{verdict=\"{v}\"}}"),
                s.decisions.get(v).copied().unwrap_or(0),
            )
        })
        .collect();
    metric(
        "inregion_edge_decisions_total",
        "counter",
        "Decisions answered, by verdict.",
        &decisions,
    );
    metric(
        "inregion_edge_table_prefixes",
        "gauge",
        "Prefixes in the first data center's table.",
        &[(String::new(), s.table_prefixes as u64)],
    );
    metric(
        "inregion_edge_stale",
        "gauge",
        "1 while the source is unreachable.",
        &[(String::new(), u64::from(s.feed.stale_since().is_some()))],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
