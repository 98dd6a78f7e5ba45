//! `inregion-feed`: the binding feed between `inregion serve` and `inregion edge` nodes.
//!
//! Two layers, no I/O in either:
//!
//! - [`wire`]: the JSON documents of `serve`'s `/edge/v1/` endpoints (snapshot, changes,
//!   node registry), shared by the server that writes them and the nodes that read them,
//!   so the two cannot drift. The protocol and its rules are described in
//!   `docs/edge-protocol.md`.
//! - [`Follower`]: what a reader holds (the bindings in force at one version) and how it
//!   moves: apply a snapshot, apply a change set, or learn that it must re-list. It
//!   decides the next request; the caller performs it (HTTP today, etcd later) and
//!   hands the answer back.
//!
//! # Invariants
//!
//! - A follower's version only grows within one source generation; a snapshot replaces
//!   everything (a re-list may move the version backwards when the source was reset).
//! - Applying a change set whose `version` is not newer than the follower's is a no-op;
//!   a change set from an older `since` than the follower's version is refused, so an
//!   answer to a retried request is never applied twice.
//!
//! # Where to start
//!
//! [`Follower::new`], then [`Follower::next_request`] in a loop, feeding answers to
//! [`Follower::apply_snapshot`] / [`Follower::apply_changes`] /
//! [`Follower::must_relist`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod follower;
pub mod wire;

pub use follower::{ApplyError, Follower, NextRequest};
