//! `inregion snapshot save|restore FILE`: a server's records and clock in one file
//! (format: `inregion_control::Snapshot`), through a running server's admin surface
//! (`--server`) or straight from a data directory whose server is stopped (`--data`).

use anyhow::{bail, Context};
use inregion_api::OffsetClock;
use inregion_api::DB_FILE;
use inregion_control::{Clock, ControlConfig, ControlPlane, Snapshot};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What to do.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Action {
    /// Write every record, the token keys and the clock offset to FILE.
    Save(Target),
    /// Replace every record with FILE's (one commit), adopt its token keys and set its
    /// clock offset. Snapshots of this and older format versions restore.
    Restore(Target),
}

/// Where the snapshot comes from or goes to.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["server", "data"])))]
pub(crate) struct Target {
    /// The snapshot file (`-` for stdout / stdin).
    file: PathBuf,
    /// A running server's base URL (`http://127.0.0.1:8787`), started with `--admin`.
    #[arg(long)]
    server: Option<String>,
    /// The server's admin token (`X-Inregion-Admin-Token`), with `--server`.
    #[arg(
        long,
        env = "INREGION_ADMIN_TOKEN",
        hide_env_values = true,
        requires = "server"
    )]
    admin_token: Option<String>,
    /// A data directory whose server is stopped (offline).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// Arguments of `inregion snapshot`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        return std::io::read_to_string(std::io::stdin()).context("reading stdin");
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if path == Path::new("-") {
        println!("{text}");
        return Ok(());
    }
    // Owner-only: a snapshot holds token digests and the keys they were made with. Whole
    // or not at all: a failed save leaves the previous snapshot in place.
    super::files::write_whole(path, text.as_bytes(), true)
        .with_context(|| format!("writing {}", path.display()))
}

fn open_offline(dir: &Path) -> anyhow::Result<(ControlPlane, OffsetClock)> {
    let db = dir.join(DB_FILE);
    if !db.exists() {
        bail!("{} has no database ({DB_FILE})", dir.display());
    }
    let cp = ControlPlane::open_sqlite(&db, ControlConfig::default()).map_err(|e| {
        anyhow::anyhow!("{e}; if its server is running, use --server URL --admin-token TOKEN")
    })?;
    let clock = OffsetClock::persisted(dir.join("clock-offset"))?;
    Ok((cp, clock))
}

fn admin(
    method: reqwest::Method,
    server: &str,
    token: Option<&str>,
    body: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}/__inregion/snapshot", server.trim_end_matches('/'));
    let client = reqwest::blocking::Client::new();
    let mut req = client
        .request(method, &url)
        .header("X-Inregion-Admin-Token", token.unwrap_or_default());
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    let resp = req.send().with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let v: serde_json::Value = resp
        .json()
        .with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        let msg = v["errors"][0]["message"].as_str().unwrap_or("no message");
        bail!("{url} answered {status}: {msg}");
    }
    Ok(v["result"].clone())
}

/// Runs `inregion snapshot`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Save(t) => {
            let text = match (&t.server, &t.data) {
                (Some(server), _) => {
                    let v = admin(reqwest::Method::GET, server, t.admin_token.as_deref(), None)?;
                    serde_json::to_string_pretty(&v)?
                }
                (None, Some(dir)) => {
                    let (cp, clock) = open_offline(dir)?;
                    cp.snapshot(clock.now(), clock.offset_us()).to_json()
                }
                (None, None) => bail!("give --server URL or --data DIR"),
            };
            let snap = Snapshot::from_json(&text)?;
            write_file(&t.file, &text)?;
            if t.file != Path::new("-") {
                eprintln!(
                    "inregion: saved a snapshot (format {}) to {}",
                    snap.format_version(),
                    t.file.display()
                );
            }
        }
        Action::Restore(t) => {
            let text = read_file(&t.file)?;
            // Checked here first, so a bad file is reported before anything is touched.
            let snap = Snapshot::from_json(&text).with_context(|| {
                format!(
                    "{} is not a snapshot this version restores",
                    t.file.display()
                )
            })?;
            let version = match (&t.server, &t.data) {
                (Some(server), _) => {
                    let v = admin(
                        reqwest::Method::POST,
                        server,
                        t.admin_token.as_deref(),
                        Some(text),
                    )?;
                    v["version"].as_u64().unwrap_or_default()
                }
                (None, Some(dir)) => {
                    let (cp, clock) = open_offline(dir)?;
                    let offset = snap.clock_offset_us;
                    clock.check_offset_us(offset)?;
                    cp.restore(snap)?;
                    clock.set_offset_us(offset)?;
                    cp.version()
                }
                (None, None) => bail!("give --server URL or --data DIR"),
            };
            eprintln!(
                "inregion: restored {} (now at version {version})",
                t.file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
