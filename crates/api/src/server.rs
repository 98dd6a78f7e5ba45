//! Start-up and shutdown of `inregion serve`: the data directory, the development
//! seed, the listener and graceful shutdown.
//!
//! Data directory layout (`--data DIR`):
//!
//! | file | what |
//! | --- | --- |
//! | `inregion.sqlite3` (+ `-wal`, `-shm`) | the control plane's database |
//! | `inregion.sqlite3-key` | the key token secrets are hashed with, and the database's lock |
//! | `dev-token` | the development token's secret, reused at the next start |
//! | `clock-offset` | how far the admin surface advanced the clock (microseconds) |
//!
//! The directory is created 0700 and every file in it is 0600.

use crate::app::{router, App, DEFAULT_MAX_BODY_BYTES};
use crate::clock::{ClockError, OffsetClock};
use crate::metrics::Metrics;
use inregion_control::{
    AccountSeed, Activation, Clock, ControlConfig, ControlPlane, Durability, EdgeRegistryConfig,
    Entitlement, Permission, PrefixId, PrefixSeed, SeedConfig, StoreError, TokenId, TokenSeed,
};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The development account (the id used throughout Cloudflare's API docs).
pub const DEV_ACCOUNT_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// The demo BYOIP prefix's id: the seed page's example id, so its curl commands run as
/// written.
pub const DEMO_PREFIX_ID: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
/// The demo prefix: strictly contains the seed page's `203.0.113.0/24`.
pub const DEMO_PREFIX_CIDR: &str = "203.0.112.0/22";
/// The demo prefix's origin ASN (documentation range, RFC 5398).
pub const DEMO_PREFIX_ASN: u32 = 64496;
/// The development token's fixed id: a new dev secret replaces the previous one.
pub const DEV_TOKEN_ID: &str = "de7de7de7de7de7de7de7de7de7de7de";
/// Default propagation delay of `inregion serve` (short, for pipelines and demos;
/// Cloudflare takes 4-6 hours).
pub const DEFAULT_PROPAGATION_DELAY: Duration = Duration::from_secs(30);
/// Default of [`ServeOptions::tombstone_retention`] (`--tombstone-retention`).
pub const DEFAULT_TOMBSTONE_RETENTION: Duration = Duration::from_secs(3600);

/// How often the server purges tombstones past their retention window.
const PURGE_EVERY: Duration = Duration::from_secs(30);

/// Database file name inside the data directory.
pub const DB_FILE: &str = "inregion.sqlite3";

/// Everything `inregion serve` needs to start.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (`127.0.0.1:8787`; port 0 picks a free port).
    pub listen: String,
    /// Data directory; `None` keeps everything in memory (nothing survives a restart),
    /// unless `etcd` is set.
    pub data_dir: Option<PathBuf>,
    /// The etcd cluster the state lives in, shared with other replicas (then no data
    /// directory is used).
    pub etcd: Option<inregion_control::EtcdConfig>,
    /// Seeding document applied at every start (`--config`).
    pub seed: Option<SeedConfig>,
    /// Seed the development account, token and demo prefix.
    pub dev: bool,
    /// The development token's secret; `None`: reuse the one in the data directory, or
    /// generate one.
    pub dev_token: Option<String>,
    /// How long a binding change takes to become active.
    pub propagation_delay: Duration,
    /// `Some(token)`: enable the admin surface with this token.
    pub admin_token: Option<String>,
    /// Request body limit in bytes.
    pub max_body_bytes: usize,
    /// Optional cap on live bindings per prefix (400 / 1117); `None`: no cap.
    pub max_bindings_per_prefix: Option<usize>,
    /// How far an acknowledged write is durable (with a data directory).
    pub durability: Durability,
    /// How long a deleted binding is kept after its deletion propagated, before it is
    /// purged (memory and database); change-feed readers further behind re-read all.
    pub tombstone_retention: Duration,
    /// Connection timeouts, limit and shutdown drain.
    pub limits: ConnectionLimits,
    /// What makes a binding change active: the delay, or a majority of edge nodes.
    pub activation: Activation,
    /// The edge nodes' heartbeat, liveness and expiry.
    pub edges: EdgeRegistryConfig,
    /// The edge nodes' token for the edge feed (`/edge/v1/...`); `None`: reuse the one
    /// saved in the data directory by an earlier start, else generate one.
    pub edge_token: Option<String>,
}

/// What one client may hold of the server, and how long a graceful stop waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's head (request line and headers) must arrive within this long; on a
    /// kept-alive HTTP/1 connection the clock starts when the previous answer is sent,
    /// so it is also the idle timeout. Then the connection is closed.
    pub header_timeout: Duration,
    /// A request body must arrive within this long once its head has (408 otherwise).
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// On SIGTERM / Ctrl-C, requests in flight get this long to finish; then the
    /// remaining connections are closed. A second signal exits at once.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".into(),
            data_dir: None,
            etcd: None,
            seed: None,
            dev: true,
            dev_token: None,
            propagation_delay: DEFAULT_PROPAGATION_DELAY,
            admin_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_bindings_per_prefix: None,
            durability: Durability::Full,
            tombstone_retention: DEFAULT_TOMBSTONE_RETENTION,
            limits: ConnectionLimits::default(),
            activation: Activation::Delay,
            edges: EdgeRegistryConfig::default(),
            edge_token: None,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory or a file in it could not be used. (The I/O error is the
    /// `source`, not part of the message: printers of the error chain show it once.)
    #[error("data directory {}", path.display())]
    Data {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be opened. (The store's message only: "internal error",
    /// its API wording, means nothing at start-up.)
    #[error("database: {0}")]
    Store(StoreError),
    /// The clock offset file is unusable.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The seeding document (or the development seed) was refused.
    #[error("seeding: {0}")]
    Seed(String),
    /// The token given for development use is not a valid token.
    #[error("dev token: {0}")]
    DevToken(String),
    /// The edge token given is not a valid token.
    #[error("edge token: {0}")]
    EdgeToken(String),
    /// Binding the listener failed (the cause is the `source`).
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// What was set up, for the start-up banner.
#[derive(Debug, Clone)]
pub struct Started {
    /// The bound address.
    pub addr: SocketAddr,
    /// The database file, or `None` in memory or on etcd.
    pub database: Option<PathBuf>,
    /// The etcd cluster and prefix, when the state lives there.
    pub etcd: Option<inregion_control::EtcdConfig>,
    /// The development token's secret (when `dev`).
    pub dev_token: Option<String>,
    /// Where the dev token came from.
    pub dev_token_source: DevTokenSource,
    /// The admin token (when enabled).
    pub admin_token: Option<String>,
    /// The propagation delay in force.
    pub propagation_delay: Duration,
    /// The durability of writes (meaningful with a database).
    pub durability: Durability,
    /// The edge nodes' token, and where it came from.
    pub edge_token: (String, DevTokenSource),
    /// What makes a binding change active.
    pub activation: Activation,
}

/// Where the development token's secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevTokenSource {
    /// No development seed.
    None,
    /// `--dev-token` / `INREGION_DEV_TOKEN`.
    Given,
    /// Reused from the data directory (a previous start).
    Reused,
    /// Generated now.
    Generated,
}

/// A bound, seeded server, ready to run.
pub struct Server {
    listener: TcpListener,
    app: Arc<App>,
    max_body_bytes: usize,
    limits: ConnectionLimits,
    started: Started,
}

/// A random token secret: 40 characters of `[A-Za-z0-9]` (the length of real tokens).
pub fn random_token() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

fn data_err(path: &Path) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |source| ServeError::Data {
        path: path.to_owned(),
        source,
    }
}

/// Creates the data directory (and missing parents) accessible by the owner only
/// (0700): it holds token digests and the key they are made with. An existing directory
/// is left as it is (the files in it are 0600).
fn create_private_dir(dir: &Path) -> Result<(), ServeError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(data_err(dir))
}

/// The edge token's file in the data directory.
pub const EDGE_TOKEN_FILE: &str = "edge-token";

/// Reads a secret saved by an earlier start (`None` when there is none).
fn read_secret(path: &Path) -> Result<Option<String>, ServeError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(data_err(path)(e)),
    }
}

/// Writes a secret file readable by the owner only.
fn write_secret(path: &Path, text: &str) -> Result<(), ServeError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(data_err(path))?;
    f.write_all(text.as_bytes()).map_err(data_err(path))?;
    f.sync_all().map_err(data_err(path))
}

/// The development seed: the dev account with both entitlements, a token with every
/// permission on it, and the demo prefix.
pub fn dev_seed(token: &str) -> Result<SeedConfig, ServeError> {
    let account = DEV_ACCOUNT_ID
        .parse()
        .map_err(|e| ServeError::Seed(format!("{e}")))?;
    Ok(SeedConfig {
        accounts: vec![AccountSeed {
            id: DEV_ACCOUNT_ID
                .parse()
                .map_err(|e| ServeError::Seed(format!("{e}")))?,
            name: "inregion development account".into(),
            entitlements: vec![
                Entitlement::RegionalServices,
                Entitlement::RegionalServicesByoip,
            ],
        }],
        tokens: vec![TokenSeed {
            id: Some(TokenId::parse(DEV_TOKEN_ID).map_err(|e| ServeError::Seed(e.to_string()))?),
            name: "inregion dev token (every permission)".into(),
            secret: token.to_owned(),
            accounts: vec![account],
            permissions: Permission::ALL.to_vec(),
            not_before: None,
            expires_on: None,
            allowed_ips: Vec::new(),
            revoked: false,
        }],
        users: Vec::new(),
        prefixes: vec![PrefixSeed {
            account: DEV_ACCOUNT_ID
                .parse()
                .map_err(|e| ServeError::Seed(format!("{e}")))?,
            id: Some(PrefixId::parse(DEMO_PREFIX_ID).map_err(|e| ServeError::Seed(e.to_string()))?),
            cidr: DEMO_PREFIX_CIDR.into(),
            asn: DEMO_PREFIX_ASN,
            description: "inregion demo prefix (contains the docs' 203.0.113.0/24)".into(),
            approved: true,
            service: None,
        }],
        regions: Vec::new(),
        faults: Vec::new(),
    })
}

impl From<StoreError> for ServeError {
    fn from(e: StoreError) -> Self {
        ServeError::Store(e)
    }
}

impl Server {
    /// Opens the data directory, seeds, and binds the listener (does not serve yet).
    pub async fn bind(opts: ServeOptions) -> Result<Self, ServeError> {
        let config = ControlConfig {
            propagation_delay: opts.propagation_delay,
            max_bindings_per_prefix: opts.max_bindings_per_prefix,
            tombstone_retention: opts.tombstone_retention,
            activation: opts.activation,
            edges: opts.edges,
            ..ControlConfig::default()
        };
        if opts.etcd.is_some() && opts.dev && opts.dev_token.is_none() {
            // A generated secret would replace, on every replica, the dev token the
            // others were given (one token id), and nothing could save it for a restart.
            return Err(ServeError::DevToken(
                "on etcd, give --dev-token (the same secret to every replica) or --no-dev".into(),
            ));
        }
        let (control, clock, database) = open_state(&opts, config).await?;
        // A data directory last served with --activation edges may hold changes that
        // wait for nodes; under the delay they take effect the delay after they were made.
        let settled = control.settle_awaiting_by_delay().await?;
        if settled > 0 {
            tracing::info!(
                settled,
                "changes that waited for edge nodes now follow --propagation-delay"
            );
        }
        let dir = opts.data_dir.as_deref();
        let edge_token = resolve_token(
            opts.edge_token.as_deref(),
            dir.map(|d| d.join(EDGE_TOKEN_FILE)),
            ServeError::EdgeToken,
        )?;
        let (dev_token, dev_token_source) = if opts.dev {
            let (t, src) = resolve_token(
                opts.dev_token.as_deref(),
                dir.map(|d| d.join("dev-token")),
                ServeError::DevToken,
            )?;
            (Some(t), src)
        } else {
            (None, DevTokenSource::None)
        };
        let control = Arc::new(control);
        let mut seeds = Vec::new();
        if let Some(t) = &dev_token {
            seeds.push(dev_seed(t)?);
        }
        if let Some(s) = &opts.seed {
            seeds.push(s.clone());
        }
        let start_faults = seed_world(&control, &seeds, clock.now()).await?;

        let listener =
            TcpListener::bind(&opts.listen)
                .await
                .map_err(|source| ServeError::Listen {
                    addr: opts.listen.clone(),
                    source,
                })?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App {
            control,
            clock: Arc::new(clock),
            metrics: Metrics::new(),
            admin_token: opts.admin_token.clone(),
            faults: std::sync::Mutex::new(start_faults),
            start_seeds: seeds,
            edge_token: Some(edge_token.0.clone()),
            edge_epoch: rand::random::<u64>() >> 11,
            stopping: tokio::sync::watch::channel(false).0,
        });
        Ok(Self {
            listener,
            app,
            max_body_bytes: opts.max_body_bytes,
            limits: opts.limits,
            started: Started {
                addr,
                database,
                etcd: opts.etcd.clone(),
                dev_token,
                dev_token_source,
                admin_token: opts.admin_token,
                propagation_delay: opts.propagation_delay,
                durability: opts.durability,
                edge_token,
                activation: opts.activation,
            },
        })
    }

    /// What was set up.
    pub fn started(&self) -> &Started {
        &self.started
    }

    /// The shared state (for in-process tests and embedding).
    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting connections and gives the
    /// requests in flight [`ConnectionLimits::drain_timeout`] to finish before closing
    /// what is left (each write is durable once its response is sent; writes already
    /// handed to the store finish even if their client went away or was cut off).
    ///
    /// Each connection is served by hyper directly (not `axum::serve`), for what it
    /// lacks: a header-read timeout that also bounds idle kept-alive connections, a
    /// body-read timeout, a connection limit, a drain deadline, and accept errors (out of
    /// file descriptors) answered with a pause instead of a busy loop.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto;
        use tower::Service;
        let limits = self.limits;
        let router = router(self.app.clone(), self.max_body_bytes).layer(
            tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_timeout),
        );
        let purger = self.spawn_purger();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(limits.header_timeout)
            .keep_alive_timeout(limits.header_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, remote) = tokio::select! {
                () = &mut shutdown => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE, ENFILE, ECONNABORTED...: pause rather than spin.
                        tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(remote));
                    router.clone().call(req)
                },
            );
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(target: "inregion::http", error = %e, %remote, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(self.listener);
        purger.abort();
        // Long-polling edge nodes answer now rather than at the end of their wait.
        self.app.stopping.send_replace(true);
        let open = graceful.count();
        if open > 0 {
            tracing::info!(connections = open, deadline = ?limits.drain_timeout, "draining connections");
        }
        if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                deadline = ?limits.drain_timeout,
                "drain deadline passed; closing the connections left"
            );
        }
        tracing::info!(
            version = self.app.control.version(),
            "server stopped; all acknowledged writes are durable"
        );
        Ok(())
    }

    /// Deleted bindings past their retention window are purged in the background, so
    /// that churn does not grow the memory or the database.
    fn spawn_purger(&self) -> tokio::task::JoinHandle<()> {
        let app = self.app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PURGE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = app.clock.now();
                match app.control.purge_tombstones_async(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "purged deleted bindings"),
                    Err(e) => tracing::warn!(error = %e, "purging deleted bindings failed"),
                }
                // Edge nodes gone past their expiry are forgotten even when no other
                // node reports (which would do it too).
                let wall = inregion_control::SystemClock.now();
                if let Err(e) = app.control.expire_and_activate_async(wall, now).await {
                    tracing::warn!(error = %e, "expiring edge nodes failed");
                }
            }
        })
    }
}

/// Opens the control plane over the data directory (created 0700; the database, the
/// clock offset) or in memory.
async fn open_state(
    opts: &ServeOptions,
    config: ControlConfig,
) -> Result<(ControlPlane, OffsetClock, Option<PathBuf>), ServeError> {
    if let Some(etcd) = &opts.etcd {
        let etcd = etcd.clone();
        let control = tokio::task::spawn_blocking(move || ControlPlane::open_etcd(etcd, config))
            .await
            .map_err(|e| ServeError::Seed(e.to_string()))??;
        return Ok((control, OffsetClock::new(), None));
    }
    let Some(dir) = &opts.data_dir else {
        return Ok((ControlPlane::in_memory(config), OffsetClock::new(), None));
    };
    if dir.exists() && !dir.is_dir() {
        return Err(data_err(dir)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "exists and is not a directory",
        )));
    }
    create_private_dir(dir)?;
    let db = dir.join(DB_FILE);
    let control = {
        let db = db.clone();
        let durability = opts.durability;
        tokio::task::spawn_blocking(move || ControlPlane::open_sqlite_with(db, durability, config))
            .await
            .map_err(|e| ServeError::Seed(e.to_string()))??
    };
    let clock = OffsetClock::persisted(dir.join("clock-offset"))?;
    Ok((control, clock, Some(db)))
}

/// A token's secret: the one given, else the one saved in `file` by an earlier start,
/// else a new random one; saved in `file` (0600) when there is a data directory.
fn resolve_token(
    given: Option<&str>,
    file: Option<PathBuf>,
    invalid: fn(String) -> ServeError,
) -> Result<(String, DevTokenSource), ServeError> {
    let stored = match &file {
        Some(f) => read_secret(f)?,
        None => None,
    };
    let (t, src) = match (given, stored) {
        (Some(t), _) => (t.to_owned(), DevTokenSource::Given),
        (None, Some(t)) if inregion_control::is_token_syntax(&t) => (t, DevTokenSource::Reused),
        (None, _) => (random_token(), DevTokenSource::Generated),
    };
    if !inregion_control::is_token_syntax(&t) {
        return Err(invalid(
            "must be 20 or more characters of A-Z, a-z, 0-9, '_' or '-'".into(),
        ));
    }
    if let Some(f) = &file {
        write_secret(f, &t)?;
    }
    Ok((t, src))
}

/// Applies the start's seeding documents (each idempotent, each one commit) and returns
/// the fault rules they declare.
async fn seed_world(
    control: &Arc<ControlPlane>,
    seeds: &[SeedConfig],
    now: inregion_control::Timestamp,
) -> Result<inregion_control::FaultSet, ServeError> {
    let mut start_faults = inregion_control::FaultSet::new();
    for spec in seeds.iter().flat_map(|s| s.faults.iter()) {
        start_faults
            .add(spec.clone())
            .map_err(|e| ServeError::Seed(e.to_string()))?;
    }
    for s in seeds {
        // The blocking pool needs owned values: one clone per document.
        let (c, s) = (control.clone(), s.clone());
        tokio::task::spawn_blocking(move || c.seed(&s, now))
            .await
            .map_err(|e| ServeError::Seed(e.to_string()))?
            .map_err(|e| ServeError::Seed(e.to_string()))?;
    }
    Ok(start_faults)
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives between the
/// start-up banner and the first poll is caught too (it used to kill the process with
/// the default action). Call it inside the runtime, before announcing the server.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            let (mut term, mut int) = (term, int);
            tokio::select! {
                () = next(&mut term) => tracing::info!("SIGTERM: shutting down (again to exit at once)"),
                () = next(&mut int) => tracing::info!("Ctrl-C: shutting down (again to exit at once)"),
            }
            // A second signal while draining: exit now. Every acknowledged write is
            // already durable; only requests still in flight are cut off.
            tokio::spawn(async move {
                tokio::select! {
                    () = next(&mut term) => {}
                    () = next(&mut int) => {}
                }
                tracing::warn!("second signal: exiting without waiting for requests in flight");
                std::process::exit(130);
            });
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C: shutting down");
        }
    }
}
