//! The admin surface, outside Cloudflare's API: `/__inregion/...` (also served as
//! `/__sim/...`, the name the design contract uses).
//!
//! It moves the server clock, forces a binding's propagation to finish, approves a
//! pending prefix and applies seeding documents; for test suites it resets the server to
//! its start state, creates per-test accounts, saves and restores snapshots, and manages
//! fault injection rules ([`crate::faults`]). It is refused unless the server runs
//! with `--admin`, and then only with the server's own admin token in
//! `X-Inregion-Admin-Token`; a request carrying Cloudflare credentials is refused even
//! with the right admin token, so a Cloudflare token can never reach it.
//!
//! | code | HTTP | meaning |
//! | --- | --- | --- |
//! | 1901 | 403 | admin surface disabled (start with `--admin`) |
//! | 1902 | 401 | missing or wrong `X-Inregion-Admin-Token` |
//! | 1903 | 401 | Cloudflare credentials sent to the admin surface |

use crate::app::App;
use crate::auth::has_cloudflare_credentials;
use crate::body;
use crate::clock::ClockError;
use crate::envelope::{HttpError, Success};
use crate::extract::{PathParams, RawBody};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use inregion_control::{Clock, SeedConfig};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The largest snapshot `POST /__inregion/snapshot` accepts (1 GiB): a snapshot holds
/// every record, far more than any API body (`--max-body-bytes`).
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

/// Header carrying the admin token.
pub const ADMIN_TOKEN_HEADER: &str = "x-inregion-admin-token";

/// Where the admin surface is served: `/__inregion` and, as the design contract (§8)
/// names it, `/__sim`; the two are the same routes behind the same guard.
pub const PREFIXES: [&str; 2] = ["/__inregion", "/__sim"];

/// The admin routes (state: [`App`]), under each of [`PREFIXES`].
pub(crate) fn routes() -> Router<Arc<App>> {
    PREFIXES.iter().fold(Router::new(), |router, prefix| {
        router.nest(
            prefix,
            Router::new()
                .route("/clock", get(clock))
                .route("/clock/advance", post(advance))
                .route("/bindings/{binding_id}/activate", post(activate))
                .route("/prefixes/{prefix_id}/approve", post(approve))
                .route("/seed", post(seed))
                .route("/reset", post(reset))
                .route("/accounts", post(accounts))
                // A snapshot holds every record: not bound by --max-body-bytes.
                .route(
                    "/snapshot",
                    get(snapshot)
                        .post(restore)
                        .layer(axum::extract::DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES)),
                )
                .route("/faults", get(crate::faults::list).post(crate::faults::add))
                .route("/faults/{fault_id}", delete(crate::faults::remove)),
        )
    })
}

/// Checks the switch, the token and the absence of Cloudflare credentials.
pub(crate) fn guard(app: &App, headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(expected) = &app.admin_token else {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            1901,
            "the admin surface is disabled: start the server with --admin",
        ));
    };
    if has_cloudflare_credentials(headers) {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            1903,
            "Cloudflare credentials are not accepted on the admin surface; send X-Inregion-Admin-Token only",
        ));
    }
    let given = headers
        .get(ADMIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            1902,
            "missing or wrong X-Inregion-Admin-Token",
        ));
    }
    Ok(())
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn admin_error<E: inregion_control::ApiError>(e: E) -> HttpError {
    HttpError::from_control(&e)
}

/// `result` of the clock endpoints.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ClockView {
    /// The server's time now.
    now: inregion_control::Timestamp,
    /// How far it is ahead of wall time.
    offset_seconds: f64,
}

fn clock_view(app: &App) -> ClockView {
    ClockView {
        now: app.clock.now(),
        offset_seconds: app.clock.offset().as_secs_f64(),
    }
}

async fn clock(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    Ok(Success::ok(clock_view(&app)).into_response())
}

/// `POST /__inregion/clock/advance` with `{"seconds": 3600}` or `{"duration": "5h"}`; never
/// past [`crate::OffsetClock::LIMIT`] (400 / 1100, the clock unchanged).
async fn advance(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let map = body::json_object(&bytes)?;
    let d = match (map.get("seconds"), body::opt_string(&map, "duration")?) {
        (Some(v), None) => v
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e12)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| body::wrong_type("seconds", "a non-negative number", v))?,
        (None, Some(text)) => humantime::parse_duration(&text).map_err(|e| {
            HttpError::bad_request(1100, format!("duration {text:?} is not a duration: {e}"))
        })?,
        _ => {
            return Err(HttpError::bad_request(
                1101,
                "give exactly one of `seconds` (number) or `duration` (\"90s\", \"5h\")",
            ))
        }
    };
    app.clock.advance(d).map_err(|e| match e {
        ClockError::PastLimit { .. } => HttpError::bad_request(1100, e.to_string()),
        e => HttpError::internal(format!("internal error: {e}")),
    })?;
    tracing::info!(advanced_by = ?d, offset = ?app.clock.offset(), "admin: clock advanced");
    Ok(Success::ok(clock_view(&app)).into_response())
}

/// `result` of activate and approve: the record's id.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IdView {
    id: String,
}

async fn activate(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParams(id): PathParams<String>,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let (c, now, i) = (app.control.clone(), app.clock.now(), id.clone());
    tokio::task::spawn_blocking(move || c.force_activate(&i, now))
        .await
        .map_err(|e| HttpError::internal(format!("internal error: {e}")))?
        .map_err(admin_error)?;
    tracing::info!(binding = %id, "admin: binding force-activated");
    Ok(Success::ok(IdView { id }).into_response())
}

async fn approve(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParams(id): PathParams<String>,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let (c, now, i) = (app.control.clone(), app.clock.now(), id.clone());
    tokio::task::spawn_blocking(move || c.approve_prefix(&i, now))
        .await
        .map_err(|e| HttpError::internal(format!("internal error: {e}")))?
        .map_err(admin_error)?;
    tracing::info!(prefix = %id, "admin: prefix approved");
    Ok(Success::ok(IdView { id }).into_response())
}

/// `POST /__inregion/seed`: a seeding document as JSON (the same fields as the TOML
/// `--config` file). Idempotent.
async fn seed(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let cfg: SeedConfig = body::typed(body::json_object(&bytes)?)?;
    let (c, now) = (app.control.clone(), app.clock.now());
    tokio::task::spawn_blocking(move || c.seed(&cfg, now))
        .await
        .map_err(|e| HttpError::internal(format!("internal error: {e}")))?
        .map_err(admin_error)?;
    Ok(Success::ok(VersionView {
        version: app.control.version(),
    })
    .into_response())
}

/// `result` of seeding and restoring: the control plane's version after it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VersionView {
    version: u64,
}

/// `result` of a reset.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ResetView {
    version: u64,
    /// How long the reset took, in milliseconds.
    took_ms: f64,
}

/// `POST /__inregion/accounts` body (every field optional; an empty body is `{}`).
#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestAccountInput {
    /// The account's name.
    name: Option<String>,
    /// The token's permission groups (default: all).
    permissions: Option<Vec<inregion_control::Permission>>,
    /// The prefix (default: allocated from a documentation range).
    #[schema(value_type = Option<inregion_model::Cidr>)]
    cidr: Option<String>,
    /// Without `cidr`: the family to allocate, `ipv4` or `ipv6` (default).
    #[schema(pattern = "^(ipv4|ipv6)$")]
    family: Option<String>,
}

/// `result` of `POST /__inregion/accounts`: the token is shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AccountView {
    account_id: String,
    token: String,
    token_id: String,
    prefix_id: String,
    cidr: String,
}

/// `POST /__inregion/reset`: back to the start state (the dev world and `--config`), in
/// one commit; the clock offset back to 0 and the fault rules back to `--config`'s.
async fn reset(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let started = std::time::Instant::now();
    app.clock
        .set_offset_us(0)
        .map_err(|e| HttpError::internal(format!("internal error: {e}")))?;
    let now = app.clock.now();
    app.control
        .reset_async(&app.start_seeds, now)
        .await
        .map_err(admin_error)?;
    crate::faults::reset(&app)?;
    let took = started.elapsed();
    tracing::info!(
        took_ms = took.as_secs_f64() * 1e3,
        "admin: reset to the start state"
    );
    Ok(Success::ok(ResetView {
        version: app.control.version(),
        took_ms: took.as_secs_f64() * 1e3,
    })
    .into_response())
}

/// `POST /__inregion/accounts` with `{"name"?, "permissions"?: [...], "cidr"?,
/// "family"?: "ipv4"|"ipv6"}`: a fresh account with both entitlements, a token and an
/// approved prefix.
async fn accounts(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let input: TestAccountInput = if bytes.iter().all(u8::is_ascii_whitespace) {
        TestAccountInput::default()
    } else {
        body::typed(body::json_object(&bytes)?)?
    };
    let ipv4 = match input.family.as_deref() {
        None | Some("ipv6") => false,
        Some("ipv4") => true,
        Some(other) => {
            return Err(HttpError::bad_request(
                1905,
                format!("family must be \"ipv4\" or \"ipv6\", got {other:?}"),
            ))
        }
    };
    let req = inregion_control::TestAccountRequest {
        name: input.name,
        permissions: input.permissions,
        cidr: input.cidr,
        ipv4,
    };
    let a = app
        .control
        .create_test_account_async(&req, app.clock.now())
        .await
        .map_err(admin_error)?;
    Ok(Success::ok(AccountView {
        account_id: a.account_id.to_string(),
        token: a.token,
        token_id: a.token_id.to_string(),
        prefix_id: a.prefix_id.to_string(),
        cidr: a.cidr.to_string(),
    })
    .into_response())
}

/// `GET /__inregion/snapshot`: every record, the keys and the clock offset, as `result`
/// (the file format of [`inregion_control::Snapshot`]).
async fn snapshot(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let snap = app.control.snapshot(app.clock.now(), app.clock.offset_us());
    Ok(Success::ok(snap).into_response())
}

/// `POST /__inregion/snapshot` with a snapshot file as the body: replaces every record
/// (one commit) and sets the clock offset to the snapshot's.
async fn restore(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, HttpError> {
    guard(&app, &headers)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| HttpError::bad_request(1100, "the snapshot is not UTF-8 text"))?;
    let snap = inregion_control::Snapshot::from_json(text)
        .map_err(|e| HttpError::bad_request(1905, e.to_string()))?;
    let offset = snap.clock_offset_us;
    // Refused before anything changes.
    app.clock
        .check_offset_us(offset)
        .map_err(|e| HttpError::bad_request(1905, format!("the snapshot's clock offset: {e}")))?;
    app.control.restore_async(snap).await.map_err(admin_error)?;
    app.clock
        .set_offset_us(offset)
        .map_err(|e| HttpError::internal(format!("internal error: {e}")))?;
    tracing::info!(version = app.control.version(), "admin: snapshot restored");
    Ok(Success::ok(VersionView {
        version: app.control.version(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
