//! Fault injection on the Cloudflare surface (`/client/v4/...`): the middleware that
//! applies [`inregion_control::FaultSet`] rules, and their admin endpoints
//! (`GET/POST /__inregion/faults`, `DELETE /__inregion/faults/{id}`).
//!
//! Every injected fault is logged (`inregion::faults`, at info) and counted in
//! `/metrics` (`inregion_faults_injected_total{rule, kind}`). Injected 429 and 5xx
//! answers carry `x-should-retry: true` (and `Retry-After` where the rule sets one), so
//! the official SDKs retry them as they would Cloudflare's. The admin surface,
//! `/metrics` and `/healthz` are never faulted, so a test can always remove a rule.

use crate::admin::guard;
use crate::app::App;
use crate::body;
use crate::envelope::{HttpError, Success};
use crate::extract::{PathParams, RawBody};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use inregion_control::{FaultAction, FaultRule, FaultSet, FaultSpec};
use serde::Serialize;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

fn faults(app: &App) -> MutexGuard<'_, FaultSet> {
    app.faults.lock().unwrap_or_else(|p| p.into_inner())
}

fn injected(app: &App, rule: &str, kind: &'static str, method: &Method, path: &str) {
    app.metrics.record_fault(rule, kind);
    tracing::info!(target: "inregion::faults", rule, kind, %method, path, "fault injected");
}

/// An injected error answer: the Cloudflare envelope, `x-should-retry: true` for 429 and
/// 5xx, `Retry-After` when set.
fn error_response(status: u16, code: u32, message: &str, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = HttpError::new(status, code, message).into_response();
    let h = resp.headers_mut();
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        h.insert("x-should-retry", HeaderValue::from_static("true"));
    }
    if let Some(s) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            h.insert("retry-after", v);
        }
    }
    resp
}

/// The binding id a PATCH targets, or the CIDR a create asks for, when `req` is one.
fn binding_write_target(
    method: &Method,
    path: &str,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    const BINDINGS: &str = "/dls/regional_services/prefix_bindings";
    let Some((_, rest)) = path.split_once(BINDINGS) else {
        return (None, None);
    };
    if *method == Method::POST && rest.trim_matches('/').is_empty() {
        let cidr = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("cidr").and_then(|c| c.as_str()).map(str::to_owned));
        return (None, cidr);
    }
    if *method == Method::PATCH {
        return (Some(rest.trim_matches('/').to_owned()), None);
    }
    (None, None)
}

/// Rewrites `provisioning.state` to `provisioning` in an Addressing binding answer
/// (one object or a list) for the bindings a `stuck` rule holds.
fn hold_stuck(app: &App, body: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let set = faults(app);
    let mut changed = false;
    let mut fix = |item: &mut serde_json::Value| {
        let id = item
            .get("id")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned();
        let cidr = item
            .get("cidr")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned();
        if let Some(state) = item.pointer_mut("/provisioning/state") {
            if set.is_stuck(&id, &cidr) && state != "provisioning" {
                *state = serde_json::Value::from("provisioning");
                changed = true;
            }
        }
    };
    match v.get_mut("result") {
        Some(serde_json::Value::Array(items)) => items.iter_mut().for_each(&mut fix),
        Some(item @ serde_json::Value::Object(_)) => fix(item),
        _ => {}
    }
    drop(set);
    changed.then(|| serde_json::to_vec(&v).ok()).flatten()
}

/// The middleware: request rules first (error, delay, timeout), then binding `fail`
/// rules on binding writes, then `stuck` rules on Addressing binding answers.
pub(crate) async fn inject(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/client/v4/") {
        return next.run(req).await;
    }
    let method = req.method().clone();
    // The lock is taken and released here, never held across an await.
    let decided = {
        let mut set = faults(&app);
        (!set.rules().is_empty()).then(|| {
            let roll = rand::random::<f64>();
            let action = set.on_request(method.as_str(), &path, roll);
            let any_fail = set
                .rules()
                .iter()
                .any(|r| matches!(r.action, FaultAction::Fail(_)) && r.remaining != Some(0));
            (action, any_fail, set.any_stuck())
        })
    };
    let Some((action, any_fail, any_stuck)) = decided else {
        return next.run(req).await;
    };
    let req = match action {
        Some((
            rule,
            FaultAction::Status {
                status,
                code,
                message,
                retry_after,
            },
        )) => {
            injected(&app, &rule, "status", &method, &path);
            return error_response(status, code, &message, retry_after);
        }
        Some((rule, FaultAction::Timeout(ms))) => {
            injected(&app, &rule, "timeout", &method, &path);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return error_response(504, 1000, "injected fault: the request timed out", None);
        }
        Some((rule, FaultAction::Delay(ms))) => {
            injected(&app, &rule, "delay", &method, &path);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            req
        }
        _ => req,
    };
    let req = if any_fail && (method == Method::POST || method == Method::PATCH) {
        let (parts, body) = req.into_parts();
        // The router's body limit still applies downstream; read at most that much here.
        let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
            return HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                1100,
                "request body too large",
            )
            .into_response();
        };
        let (id, cidr) = binding_write_target(&method, &path, &bytes);
        if id.is_some() || cidr.is_some() {
            let hit = faults(&app).fail_binding(id.as_deref(), cidr.as_deref());
            if let Some(rule) = hit {
                injected(&app, &rule, "fail", &method, &path);
                return error_response(
                    500,
                    1000,
                    "injected fault: the binding failed to provision",
                    None,
                );
            }
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let resp = next.run(req).await;
    if any_stuck
        && method == Method::GET
        && path.contains("/bindings")
        && resp.status().is_success()
    {
        let (parts, body) = resp.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
            return HttpError::internal("internal error: reading a response").into_response();
        };
        return match hold_stuck(&app, &bytes) {
            Some(b) => {
                injected(&app, "stuck", "stuck", &method, &path);
                let mut parts = parts;
                parts.headers.remove(axum::http::header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(b))
            }
            None => Response::from_parts(parts, Body::from(bytes)),
        };
    }
    resp
}

/// A rule as listed: the rule as given plus its counters.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RuleView {
    #[serde(flatten)]
    spec: FaultSpec,
    /// `status`, `delay`, `timeout`, `stuck` or `fail`.
    #[schema(value_type = String)]
    kind: &'static str,
    /// Matches left (`null`: until removed).
    remaining: Option<u64>,
    applied: u64,
}

fn view(r: &FaultRule) -> RuleView {
    RuleView {
        spec: r.spec.clone(),
        kind: r.action.kind(),
        remaining: r.remaining,
        applied: r.applied,
    }
}

/// `GET /__inregion/faults`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let rules: Vec<RuleView> = faults(&app).rules().iter().map(view).collect();
    Ok(Success::ok(rules).into_response())
}

/// `POST /__inregion/faults` with one rule.
pub(crate) async fn add(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let spec: FaultSpec = body::typed(body::json_object(&bytes)?)?;
    let rule = faults(&app)
        .add(spec)
        .map_err(|e| HttpError::bad_request(1905, e.to_string()))?;
    tracing::info!(target: "inregion::faults", rule = %rule.id, kind = rule.action.kind(), "fault rule added");
    Ok(Success::ok(view(&rule)).into_response())
}

/// `DELETE /__inregion/faults/{id}`.
pub(crate) async fn remove(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParams(id): PathParams<String>,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    if !faults(&app).remove(&id) {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            1904,
            format!("fault rule {id} not found"),
        ));
    }
    tracing::info!(target: "inregion::faults", rule = %id, "fault rule removed");
    #[derive(Serialize)]
    struct Id {
        id: String,
    }
    Ok(Success::ok(Id { id }).into_response())
}

/// Replaces every rule with the start rules (`--config`'s `[[faults]]`).
pub(crate) fn reset(app: &App) -> Result<(), HttpError> {
    let mut set = FaultSet::new();
    for spec in app.start_seeds.iter().flat_map(|s| s.faults.iter()) {
        set.add(spec.clone())
            .map_err(|e| HttpError::internal(format!("internal error: {e}")))?;
    }
    *faults(app) = set;
    Ok(())
}
