//! `inregion-node`: the runtime of `inregion edge`, edge nodes as real processes.
//!
//! A node process serves one or several data centers. It follows a binding feed
//! (`inregion serve`'s `/edge/v1/`, see `docs/edge-protocol.md`) with the sans-IO
//! [`inregion_feed::Follower`], turns every version it reaches into a region table,
//! hands it to an [`inregion_edge::Edge`] (at once, or held back per data center by an
//! apply delay), reports what each data center applied to the source's registry, and
//! answers over HTTP where a flow is processed.
//!
//! ```text
//!  FeedSource ──snapshot / changes──► Follower ──version──► region_table ──► Edge
//!  (HTTP today)                        (sans-IO)             (whole table)    install / publish+tick
//!       ▲                                                                      │
//!       └──── PUT /edge/v1/nodes/{id} (applied_version) ◄── heartbeat ─────────┤
//!                                                                              ▼
//!                                               GET/POST /v1/decide ──► Edge::decide
//! ```
//!
//! # Invariants
//!
//! - **Never half a change.** A version's table is built whole, then installed (or
//!   published) in one step; a decision sees one version's table or the next.
//! - **Never skip or repeat a change.** A failed or cut `changes` answer is discarded and
//!   the same `since` is asked again (after a backoff of 100 ms doubling to 2 s); a 410,
//!   another epoch or a source that went back re-reads the snapshot.
//! - **Never answer from an empty table before the first snapshot**: `/v1/decide` answers
//!   503 `unavailable` until a first version from the source has reached the ingress data
//!   center (with an apply delay, that is after its delay); afterwards an unreachable
//!   source leaves the last table in force and marks answers `stale`.
//! - **A restart does not need the source** when the node has a table cache
//!   ([`NodeConfig::cache`], `cache.rs`): the last version followed is applied at start,
//!   answers are `stale` until the source's own snapshot replaces it, and the registry is
//!   told version 0 meanwhile (a cached table never counts towards a majority).
//! - **Fail closed on unknown regions.** A binding whose region key no definition names
//!   (neither managed nor in the snapshot's custom regions, after re-reading it) is
//!   bound to a region whose only member is a synthetic data center (no location, always
//!   unhealthy): flows to it are refused, never processed at the ingress. Custom regions
//!   resolve their members like [`inregion_model::RegionDefinition::contains`]; one
//!   without any member is treated the same way.
//! - The edge stays sans-IO: time is a monotonic clock since the process started, read
//!   here; the apply delays come from a `ChaCha8Rng` seeded with [`NodeConfig::seed`].
//!
//! Apply delays hold back every version, the first one included: a node started with
//! `--apply-delay 30s` answers 503 at a data center until its first version arrives there.
//!
//! Rebuilds: when the region definitions change, when the source went back, or when a
//! periodic re-read repairs the version already held, the node builds a new `Edge` and
//! installs the version at every data center at once (no apply delay); open flows'
//! pins are forgotten then.
//!
//! # Where to start
//!
//! [`start`] with a [`NodeConfig`] (or [`start_with_source`] with another
//! [`FeedSource`]); it returns a [`RunningNode`] with the bound address. The HTTP API is
//! in `api.rs`, the follow loop, heartbeat and timer in `follow.rs`, the shared state in
//! `state.rs`, the pure request parsing in [`query`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod api;
mod cache;
pub mod config;
mod follow;
pub mod query;
pub mod source;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use inregion_model::ReferenceData;
use tokio::sync::watch;

use crate::state::Shared;

pub use config::{parse_apply_delay, parse_dcs, ControlUrl, NodeConfig};
pub use source::{FeedSource, HttpSource, SourceError};

/// Why a node could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A bad setting (unknown data center, bad `--control`, ...).
    #[error("{0}")]
    Config(String),
    /// Could not bind or serve the listen address.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The edge refused a table.
    #[error(transparent)]
    Edge(#[from] inregion_edge::EdgeError),
    /// The source could not be set up.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// A started node: its address, and its task (which ends after the shutdown future
/// completes and the node has stopped).
#[derive(Debug)]
pub struct RunningNode {
    /// The address the HTTP API is bound to.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl RunningNode {
    /// Waits until the node has stopped (after the shutdown future completed).
    pub async fn wait(self) -> Result<(), NodeError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Config(format!("the node task failed: {e}"))),
        }
    }
}

/// Starts a node following the source named by `config.control`; it runs until
/// `shutdown` completes. Returns once the listen address is bound.
pub async fn start(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningNode, NodeError> {
    let source = match &config.control {
        ControlUrl::Http(base) => HttpSource::new(base, &config.edge_token)?,
    };
    start_with_source(config, source, shutdown).await
}

/// [`start`] with an explicit [`FeedSource`].
pub async fn start_with_source<S: FeedSource>(
    config: NodeConfig,
    source: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningNode, NodeError> {
    let refdata = ReferenceData::embedded();
    let node_ids = config.validate(&refdata)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| NodeError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    let shared = Arc::new(Shared::new(
        config.dcs.clone(),
        node_ids.clone(),
        config.edge_token.clone(),
        source.describe(),
        config.apply_delay,
        config.seed,
        refdata,
    )?);
    let source = Arc::new(source);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    // The cache before the tasks: the follower's first version must reach the writer,
    // and a cached table must be in force before the first heartbeat.
    let cache_writer = match &config.cache {
        None => None,
        Some(path) => {
            match cache::load(path, &shared.source_name) {
                Ok(Some(loaded)) => {
                    let version = loaded.snapshot.version;
                    match shared.apply_cache(loaded) {
                        Ok(()) => tracing::info!(
                            version,
                            path = %path.display(),
                            "answering from the table cache (marked stale) until the source answers"
                        ),
                        Err(e) => tracing::warn!(error = %e, "the table cache is ignored"),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "the table cache is ignored"),
            }
            let (tx, rx) = watch::channel(None);
            shared.open_cache(tx);
            Some(cache::writer(
                path.clone(),
                shared.source_name.clone(),
                rx,
                stop_rx.clone(),
            ))
        }
    };
    let wait = Duration::from_millis(config.wait_ms.min(inregion_feed::wire::MAX_WAIT_MS));
    let mut tasks = vec![
        tokio::spawn(follow::follow(
            Arc::clone(&shared),
            Arc::clone(&source),
            wait,
            config.resync_interval.max(Duration::from_millis(10)),
            stop_rx.clone(),
        )),
        tokio::spawn(follow::heartbeat(
            Arc::clone(&shared),
            Arc::clone(&source),
            addr.to_string(),
            stop_rx.clone(),
        )),
        tokio::spawn(follow::timer(Arc::clone(&shared), stop_rx.clone())),
    ];
    tasks.extend(cache_writer.map(tokio::spawn));
    let app = api::router(Arc::clone(&shared));
    let mut server_stop = stop_rx.clone();
    let deregister = config.deregister_on_exit;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { follow::stopped(&mut server_stop).await })
            .await;
        for t in tasks {
            let _ = t.await;
        }
        if deregister {
            for id in &node_ids {
                match tokio::time::timeout(Duration::from_secs(3), source.deregister(id)).await {
                    Ok(Ok(())) => tracing::info!(node_id = %id, "deregistered"),
                    Ok(Err(e)) => {
                        tracing::warn!(node_id = %id, error = %e, "deregistration failed")
                    }
                    Err(_) => tracing::warn!(node_id = %id, "deregistration timed out"),
                }
            }
        }
        served.map_err(|source| NodeError::Listen {
            addr: addr.to_string(),
            source,
        })
    });
    Ok(RunningNode { addr, task })
}
