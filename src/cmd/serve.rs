//! `inregion serve`: the DLS and Addressing API over HTTP (see `crates/api/README.md`).
//!
//! This module only turns flags into [`inregion_api::ServeOptions`], sets up logging and
//! the runtime, and prints the start-up banner; everything else is in `inregion-api`.

use anyhow::Context;
use inregion_api::{
    shutdown_signal, DevTokenSource, ServeOptions, Server, DEMO_PREFIX_CIDR, DEMO_PREFIX_ID,
    DEV_ACCOUNT_ID,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Log output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How far an acknowledged write is durable (`--durability`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DurabilityArg {
    /// SQLite `synchronous=FULL`: the write-ahead log is fsynced before a write is
    /// acknowledged, so it survives a crash of the server, of the OS and a power loss. A
    /// disk that fails an fsync halts writes (500, /healthz 503) until a restart.
    Full,
    /// SQLite `synchronous=NORMAL`: the write-ahead log is written, not fsynced, per
    /// write. An acknowledged write survives a crash or kill -9 of the server, not an OS
    /// crash or power loss, which can lose the last writes (the database stays
    /// consistent). Faster on slow disks (CI runners).
    Process,
}

/// `--activation`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ActivationArg {
    /// After --propagation-delay.
    Delay,
    /// Once a majority of registered edge nodes applied the change.
    Edges,
}

/// Arguments of `inregion serve`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Address to listen on. Port 0 picks a free port; the bound address is printed on
    /// the first line of stdout ("inregion: listening on http://ADDR").
    #[arg(long, env = "INREGION_LISTEN", default_value = "127.0.0.1:8787")]
    listen: String,
    /// Data directory: the SQLite database (inregion.sqlite3, with its -wal and -shm
    /// files), the key token secrets are hashed with (inregion.sqlite3-key), the dev
    /// token and the clock offset. Created 0700 if missing, files 0600; a restart on the
    /// same directory keeps everything. Back up the database and its -key file together.
    #[arg(long, env = "INREGION_DATA", default_value = "./inregion-data")]
    data: PathBuf,
    /// Keep everything in memory instead of the data directory (lost on exit); the same
    /// as --store memory.
    #[arg(long, conflicts_with = "data")]
    in_memory: bool,
    /// Where the state lives: "sqlite" (the default: the database in --data), "memory"
    /// (lost on exit), or "etcd://HOST:PORT[,HOST:PORT...]": an etcd cluster (3.4 or
    /// later, its client URLs) shared by any number of serve replicas, which then behave
    /// as one server (a write acknowledged by one is seen by reads through any other;
    /// two replicas racing to create the same CIDR give one 201 and one 409). On etcd,
    /// no data directory is used: pass the same --dev-token (and --edge-token) to every
    /// replica; writes answer 503 (retried by the SDKs) while etcd has no quorum, reads
    /// keep answering from the replica's last state with an x-inregion-stale-ms header.
    #[arg(
        long,
        env = "INREGION_STORE",
        default_value = "sqlite",
        value_name = "sqlite|memory|etcd://HOST:PORT,..."
    )]
    store: String,
    /// Key prefix of this emulator's records in etcd, so that several emulators can
    /// share one cluster (replicas of one emulator use the same prefix).
    #[arg(long, env = "INREGION_ETCD_PREFIX", default_value = inregion_control::DEFAULT_ETCD_PREFIX)]
    etcd_prefix: String,
    /// The most operations etcd accepts in one transaction (etcd's own --max-txn-ops,
    /// default 128): concurrent writes are grouped into transactions of at most this
    /// many record changes. A single write needing more (a bulk create, a reset or a
    /// snapshot restore of a large world) needs etcd started with a larger value.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(3..))]
    etcd_max_txn_ops: u32,
    /// How far an acknowledged write is durable: "full" (SQLite synchronous=FULL)
    /// fsyncs every write before answering (survives a power loss); "process"
    /// (synchronous=NORMAL) skips the per-write fsync (survives a crash or kill -9 of the
    /// server, not of the OS or the machine; faster on slow disks).
    #[arg(
        long,
        env = "INREGION_DURABILITY",
        value_enum,
        default_value = "full",
        conflicts_with = "in_memory"
    )]
    durability: DurabilityArg,
    /// Seeding file (TOML): accounts, entitlements, tokens, users, prefixes, custom
    /// regions. Applied idempotently at every start. See examples/inregion.toml.
    #[arg(long, env = "INREGION_CONFIG")]
    config: Option<PathBuf>,
    /// Secret of the development token (every permission on the dev account). When
    /// unset: the one saved in the data directory by an earlier start, else a random one.
    #[arg(long, env = "INREGION_DEV_TOKEN", hide_env_values = true)]
    dev_token: Option<String>,
    /// Do not create the development account, token and demo prefix.
    #[arg(long, conflicts_with = "dev_token")]
    no_dev: bool,
    /// How long a created or changed binding takes to become active ("30s", "90m",
    /// "5h"). Cloudflare takes 4-6 hours; the short default suits pipelines and demos.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    propagation_delay: Duration,
    /// What makes a created, changed or deleted binding active: "delay" (after
    /// --propagation-delay, whatever edge nodes report) or "edges" (once a majority of
    /// the registered edge nodes, `inregion edge`, report having applied it; with no
    /// registered node nothing activates). Majority of the nodes registered at each
    /// report: a stopped node keeps counting until --edge-expiry or deregistration.
    #[arg(long, value_enum, default_value = "delay")]
    activation: ActivationArg,
    /// Token of the edge nodes (`inregion edge --edge-token`) for the edge feed
    /// (/edge/v1/...). Never a Cloudflare credential. When unset: the one saved in the
    /// data directory by an earlier start, else a random one (printed at start).
    #[arg(long, env = "INREGION_EDGE_TOKEN", hide_env_values = true)]
    edge_token: Option<String>,
    /// An edge node not heard from for this long is deregistered (no longer counted in
    /// the majority).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    edge_expiry: Duration,
    /// How often edge nodes report (told to them in every answer).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    edge_heartbeat: Duration,
    /// An edge node not heard from for this long is not live: other nodes stop
    /// forwarding to its data center (it still counts toward the majority).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    edge_live_timeout: Duration,
    /// How long a deleted binding is kept once its deletion has propagated, before it is
    /// purged from memory and the database ("10m", "1h", "1d"). Edge nodes and other
    /// change-feed readers further behind than this re-read everything.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    tombstone_retention: Duration,
    /// A request's head must arrive within this long; on a kept-alive connection it is
    /// also the idle timeout. Then the connection is closed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// A request's body must arrive within this long after its head (else 408).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// On SIGTERM or Ctrl-C, how long requests in flight get to finish before the
    /// remaining connections are closed. A second signal exits at once.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Enable the admin surface (/__inregion/...: advance the clock, force activation,
    /// approve prefixes, seed). It needs the admin token, never a Cloudflare credential.
    #[arg(long)]
    admin: bool,
    /// Admin token (header X-Inregion-Admin-Token); random and printed when unset.
    #[arg(
        long,
        env = "INREGION_ADMIN_TOKEN",
        hide_env_values = true,
        requires = "admin"
    )]
    admin_token: Option<String>,
    /// Largest accepted request body, in bytes (larger: 413).
    #[arg(long, default_value_t = inregion_api::DEFAULT_MAX_BODY_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(64..))]
    max_body_bytes: u64,
    /// Cap on live bindings per prefix (more: 400 / 1117). No cap when unset.
    #[arg(long)]
    max_bindings_per_prefix: Option<usize>,
    /// Worker threads of the async runtime (default: one per CPU core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// Log format (logs go to stderr; filter with RUST_LOG, e.g. RUST_LOG=inregion=debug
    /// logs every request).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`); shared by the
/// long-running subcommands.
pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests calling run twice in one process) is harmless: ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs `inregion serve` until SIGTERM or Ctrl-C.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let seed = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                inregion_control::SeedConfig::from_toml(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let admin_token = args.admin.then(|| {
        args.admin_token
            .clone()
            .unwrap_or_else(inregion_api::random_token)
    });
    let etcd = match args.store.as_str() {
        "sqlite" | "memory" => None,
        url if url.starts_with("etcd://") => {
            if args.in_memory {
                anyhow::bail!("--in-memory and --store {url} contradict each other");
            }
            Some(inregion_control::EtcdConfig {
                max_txn_ops: args.etcd_max_txn_ops as usize,
                ..inregion_control::EtcdConfig::parse(url)
                    .and_then(|c| c.with_prefix(&args.etcd_prefix))
                    .with_context(|| format!("--store {url}"))?
            })
        }
        other => anyhow::bail!(
            "--store {other:?}: expected sqlite, memory or etcd://HOST:PORT[,HOST:PORT...]"
        ),
    };
    let in_memory = args.in_memory || args.store == "memory";
    let opts = ServeOptions {
        listen: args.listen.clone(),
        data_dir: (!in_memory && etcd.is_none()).then(|| args.data.clone()),
        etcd,
        seed,
        dev: !args.no_dev,
        dev_token: args.dev_token.clone(),
        propagation_delay: args.propagation_delay,
        admin_token,
        max_body_bytes: usize::try_from(args.max_body_bytes).unwrap_or(usize::MAX),
        max_bindings_per_prefix: args.max_bindings_per_prefix,
        tombstone_retention: args.tombstone_retention,
        limits: inregion_api::ConnectionLimits {
            header_timeout: args.header_timeout,
            body_timeout: args.body_timeout,
            max_connections: args.max_connections as usize,
            drain_timeout: args.drain_timeout,
        },
        durability: match args.durability {
            DurabilityArg::Full => inregion_control::Durability::Full,
            DurabilityArg::Process => inregion_control::Durability::Process,
        },
        activation: match args.activation {
            ActivationArg::Delay => inregion_control::Activation::Delay,
            ActivationArg::Edges => inregion_control::Activation::Edges,
        },
        edges: inregion_control::EdgeRegistryConfig {
            heartbeat: args.edge_heartbeat,
            live_timeout: args.edge_live_timeout,
            expiry: args.edge_expiry,
        },
        edge_token: args.edge_token.clone(),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.workers {
        rt.worker_threads(usize::from(n));
    }
    let rt = rt.build().context("starting the async runtime")?;
    rt.block_on(async move {
        let server = Server::bind(opts).await?;
        // Handlers first: a SIGTERM sent as soon as the banner is read must stop the
        // server gracefully, not kill it.
        let shutdown = shutdown_signal();
        print_banner(&server)?;
        server.run(shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_banner(server: &Server) -> anyhow::Result<()> {
    let s = server.started();
    let base = format!("http://{}", s.addr);
    let mut out = std::io::stdout().lock();
    // First line: machine-readable, tests and scripts wait for it.
    writeln!(out, "inregion: listening on {base}")?;
    writeln!(out, "  API base URL       {base}/client/v4")?;
    match &s.database {
        Some(db) => {
            let durability = match s.durability {
                inregion_control::Durability::Full => "every write fsynced",
                inregion_control::Durability::Process => {
                    "--durability process: writes survive a server crash, not a machine crash"
                }
            };
            writeln!(out, "  database           {} ({durability})", db.display())?
        }
        None => match &s.etcd {
            Some(e) => writeln!(
                out,
                "  database           etcd://{} prefix {} (shared by every replica on it)",
                e.endpoints.join(","),
                e.prefix
            )?,
            None => writeln!(
                out,
                "  database           in memory (nothing survives exit)"
            )?,
        },
    }
    match s.activation {
        inregion_control::Activation::Delay => writeln!(
            out,
            "  propagation delay  {}",
            humantime::format_duration(s.propagation_delay)
        )?,
        inregion_control::Activation::Edges => writeln!(
            out,
            "  activation         edges: a change is active once a majority of registered edge nodes applied it"
        )?,
    }
    if let Some(token) = &s.dev_token {
        let origin = match s.dev_token_source {
            DevTokenSource::Given => "given",
            DevTokenSource::Reused => "reused from the data directory",
            DevTokenSource::Generated if s.database.is_some() => {
                "generated; saved in the data directory"
            }
            DevTokenSource::Generated => "generated; not saved",
            DevTokenSource::None => "",
        };
        writeln!(
            out,
            "  dev account        {DEV_ACCOUNT_ID} (regional_services, regional_services_byoip)"
        )?;
        writeln!(
            out,
            "  dev token          {token} ({origin}; every permission)"
        )?;
        writeln!(
            out,
            "  demo prefix        {DEMO_PREFIX_ID} {DEMO_PREFIX_CIDR} (approved)"
        )?;
    }
    match &s.admin_token {
        Some(t) => writeln!(
            out,
            "  admin surface      {base}/__inregion/  (header X-Inregion-Admin-Token: {t})"
        )?,
        None => writeln!(out, "  admin surface      disabled (--admin)")?,
    }
    let (edge_token, edge_src) = &s.edge_token;
    let edge_origin = match edge_src {
        DevTokenSource::Given => "given",
        DevTokenSource::Reused => "reused from the data directory",
        DevTokenSource::Generated if s.database.is_some() => {
            "generated; saved in the data directory"
        }
        DevTokenSource::Generated if s.etcd.is_some() => {
            "generated for this replica only: give every replica the same --edge-token"
        }
        DevTokenSource::Generated | DevTokenSource::None => "generated",
    };
    writeln!(
        out,
        "  edge feed          {base}/edge/v1/  (inregion edge --control {base} --edge-token {edge_token}; {edge_origin})"
    )?;
    writeln!(
        out,
        "  metrics / openapi  {base}/metrics  {base}/openapi.json"
    )?;
    if let Some(token) = &s.dev_token {
        writeln!(out, "Try:")?;
        writeln!(out, "  export CLOUDFLARE_API_TOKEN={token}")?;
        writeln!(
            out,
            "  curl {base}/client/v4/accounts/{DEV_ACCOUNT_ID}/dls/regions --header \"Authorization: Bearer $CLOUDFLARE_API_TOKEN\""
        )?;
    }
    out.flush()?;
    Ok(())
}
