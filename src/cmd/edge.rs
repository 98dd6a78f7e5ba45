//! `inregion edge`: edge nodes as real processes (see `crates/node` and
//! `docs/edge-protocol.md`).
//!
//! This module only turns flags into an [`inregion_node::NodeConfig`], sets up logging
//! and the runtime, and prints the first line; everything else is in `inregion-node`.

use anyhow::Context;
use inregion_edge::DelayDistribution;
use inregion_node::{parse_apply_delay, parse_dcs, ControlUrl, NodeConfig};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::serve::{init_logging, LogFormat};

/// Arguments of `inregion edge`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example: two data centers in one process, following a local serve:

  export INREGION_EDGE_TOKEN=edge-token-0123456789abcdef
  inregion serve --in-memory --activation edges &
  inregion edge --dc FRA,IAD --control http://127.0.0.1:8787 &
  curl -H \"Authorization: Bearer $INREGION_EDGE_TOKEN\" \\
    'http://127.0.0.1:8788/v1/decide?src=198.51.100.7&dst=203.0.113.10&dc=IAD'

The node reads a snapshot of every binding, then long-polls the changes; each version it
reaches becomes a new table (after --apply-delay at each data center), and it reports the
version each data center applied to serve's registry (PUT /edge/v1/nodes/{id}).")]
pub(crate) struct Args {
    /// Data centers served by this process, as IATA codes (FRA or FRA,IAD), or "all" for
    /// every data center of the reference data. Each is its own registered node (node
    /// id = the code). Unknown codes are refused at start.
    #[arg(long, required = true)]
    dc: String,
    /// Node id to register under (default: the data center's code). Only with a single
    /// --dc; 1-64 characters of [A-Za-z0-9._-].
    #[arg(long)]
    node_id: Option<String>,
    /// Where the binding feed comes from: http://HOST:PORT of an `inregion serve` (its
    /// /edge/v1/ endpoints). etcd:// sources are not available in this build yet.
    #[arg(long, env = "INREGION_CONTROL")]
    control: String,
    /// Address of this node's API (/v1/decide, /v1/status, /v1/health, /metrics). Port 0
    /// picks a free port; the bound address is printed on the first line of stdout
    /// ("inregion edge: listening on http://ADDR").
    #[arg(long, env = "INREGION_EDGE_LISTEN", default_value = "127.0.0.1:8788")]
    listen: String,
    /// The edge token (serve --edge-token): sent to serve as "Authorization: Bearer
    /// TOKEN", and required the same way by this node's /v1/* endpoints.
    #[arg(long, env = "INREGION_EDGE_TOKEN", hide_env_values = true)]
    edge_token: String,
    /// Hold each version back this long before it reaches each data center ("0s",
    /// "500ms", "30s"), the first one included (until it arrives, /v1/decide answers
    /// 503 there). Default: applied at once.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "apply_delay_dist")]
    apply_delay: Option<Duration>,
    /// A random hold-back per data center and version instead of a fixed one:
    /// "uniform:MIN..MAX" (e.g. uniform:100ms..2s) or "lognormal:MEDIAN,SIGMA,MAX"
    /// (e.g. lognormal:500ms,0.8,10s). Drawn from a generator seeded with --seed.
    #[arg(long)]
    apply_delay_dist: Option<String>,
    /// Seed of the apply-delay draws (same seed, same order of versions: same delays).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How often to re-read the whole snapshot and compare it with what is held; a
    /// difference is applied and counted as a repair (a warning is logged).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    resync_interval: Duration,
    /// On SIGTERM or Ctrl-C, deregister every node of this process (DELETE
    /// /edge/v1/nodes/{id}). By default a stopped node stays registered and counted.
    #[arg(long)]
    deregister_on_exit: bool,
    /// Keep the last version followed in this file (JSON, written at most every 2 s and
    /// on exit, atomically), and at start answer from it until the source answers:
    /// a node restarted while serve is unreachable then keeps deciding (answers marked
    /// stale, version 0 reported to the registry, installed at once whatever the apply
    /// delay) instead of answering 503. A cache of
    /// another --control, or one that does not parse, is ignored with a warning.
    #[arg(long, env = "INREGION_EDGE_CACHE")]
    cache: Option<std::path::PathBuf>,
    /// Log format (logs go to stderr; filter with RUST_LOG, e.g. RUST_LOG=inregion_node=debug).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn config(args: &Args) -> anyhow::Result<NodeConfig> {
    let dcs = if args.dc.trim().eq_ignore_ascii_case("all") {
        inregion_model::ReferenceData::embedded()
            .data_centers()
            .iter()
            .map(|d| d.code)
            .collect()
    } else {
        parse_dcs(&args.dc)?
    };
    let control = ControlUrl::parse(&args.control)?;
    let mut c = NodeConfig::new(dcs, control, args.edge_token.clone());
    c.node_id = args.node_id.clone();
    c.listen = args.listen.clone();
    c.seed = args.seed;
    c.resync_interval = args.resync_interval;
    c.deregister_on_exit = args.deregister_on_exit;
    c.cache = args.cache.clone();
    c.apply_delay = match (&args.apply_delay, &args.apply_delay_dist) {
        (_, Some(d)) => parse_apply_delay(d)?,
        (Some(d), None) => DelayDistribution::Fixed(*d),
        (None, None) => DelayDistribution::Fixed(Duration::ZERO),
    };
    c.validate(&inregion_model::ReferenceData::embedded())?;
    Ok(c)
}

/// Runs `inregion edge` until SIGTERM or Ctrl-C.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let config = config(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        // Handlers first: a SIGTERM sent as soon as the first line is read must stop
        // the node gracefully.
        let shutdown = inregion_api::shutdown_signal();
        let node = inregion_node::start(config, shutdown).await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "inregion edge: listening on http://{}", node.addr)?;
            out.flush()?;
        }
        node.wait().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
