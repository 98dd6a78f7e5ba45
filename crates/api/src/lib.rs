//! # inregion-api: the HTTP surface of `inregion serve`
//!
//! Cloudflare's DLS (regions, prefix bindings) and Addressing (prefixes, services,
//! service bindings, address maps) endpoints under `/client/v4`, with Cloudflare's
//! envelopes, status codes and error codes, plus `/metrics`, `/openapi.json`, `/healthz`
//! and an opt-in admin surface under `/__inregion/`.
//!
//! ```text
//!  TCP (tokio, hyper via axum)
//!   └─ router (app.rs) ── no route: 400 7003+7000 · wrong method: 405 7001 + Allow
//!        │  extract.rs: path params, client IP, raw body (size limit → 413)
//!        │  auth.rs:    headers → Credentials → ControlPlane::authenticate → Principal
//!        │  body.rs:    JSON syntax and JSON types only (400/1100)
//!        ▼
//!   inregion_control::ControlPlane   ← every business rule: access, permissions,
//!        │                              entitlements, validation, pagination, gate
//!        ▼
//!   envelope.rs: {success, errors, messages, result, result_info}
//! ```
//!
//! ## Invariants
//!
//! - No business rule lives here: a handler authenticates, calls one control-plane
//!   method with the raw inputs and renders the result or the typed error
//!   ([`inregion_control::ApiError`] gives the code and the status).
//! - The contract's precedence (authentication → permission → entitlement → validation
//!   → existence → conflict) is kept even for malformed bodies: the body is parsed after
//!   authentication, and a malformed body is only reported once the control plane has
//!   confirmed the caller's access.
//! - Every 4xx carries `x-should-retry: false` (the official SDKs would otherwise retry
//!   409s); every response is JSON except `/metrics` and `/healthz`.
//! - Writes run on the blocking pool and complete even when the client disconnects;
//!   graceful shutdown waits for requests in flight.
//!
//! ## Where to start
//!
//! [`Server::bind`] (start-up, data directory, dev seed, `server.rs`), then [`router`]
//! (every route and handler, `app.rs`), `envelope.rs` (the response shapes), `admin.rs`
//! and `faults.rs` (the admin surface), `edge_feed.rs` (what edge nodes follow).
//!
//! ## Public surface
//!
//! Modules are private; the crate offers, by name: the server ([`Server`],
//! [`ServeOptions`], [`ConnectionLimits`], [`Started`], [`ServeError`],
//! [`shutdown_signal`]) and the constants of its development world ([`DEV_ACCOUNT_ID`],
//! ...); the router and its state for in-process use ([`router`], [`App`]); the
//! envelope types ([`Success`], [`HttpError`]); the server's clock ([`OffsetClock`]);
//! request metrics ([`Metrics`]); the OpenAPI document ([`openapi_document`]); the
//! admin surface's header and paths ([`ADMIN_TOKEN_HEADER`], [`ADMIN_PREFIXES`]).

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod admin;
mod app;
mod auth;
mod body;
mod clock;
mod edge_feed;
mod envelope;
mod extract;
mod faults;
mod metrics;
mod openapi;
mod server;

pub use admin::{ADMIN_TOKEN_HEADER, MAX_SNAPSHOT_BYTES, PREFIXES as ADMIN_PREFIXES};
pub use app::{router, App, DEFAULT_MAX_BODY_BYTES};
pub use clock::{ClockError, OffsetClock};
pub use envelope::{ErrorItem, HttpError, ResultInfo, Success};
pub use metrics::Metrics;
pub use openapi::{document as openapi_document, document_value as openapi_value};
pub use server::{
    dev_seed, random_token, shutdown_signal, ConnectionLimits, DevTokenSource, ServeError,
    ServeOptions, Server, Started, DB_FILE, DEFAULT_PROPAGATION_DELAY, DEFAULT_TOMBSTONE_RETENTION,
    DEMO_PREFIX_ASN, DEMO_PREFIX_CIDR, DEMO_PREFIX_ID, DEV_ACCOUNT_ID, DEV_TOKEN_ID,
    EDGE_TOKEN_FILE,
};
