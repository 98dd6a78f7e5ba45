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
//! [`server::Server::bind`] (start-up, data directory, dev seed), then [`app::router`]
//! (every route and handler), [`envelope`] (the response shapes).

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod body;
pub mod clock;
pub mod edge_feed;
pub mod envelope;
pub mod extract;
pub mod faults;
pub mod metrics;
pub mod openapi;
pub mod server;

pub use app::{router, App};
pub use envelope::{ErrorItem, HttpError, ResultInfo, Success};
pub use server::{ServeOptions, Server, Started};
