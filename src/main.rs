//! `inregion`: the command-line entry point.
//!
//! One binary, one subcommand per job. Each subcommand lives in its own module under
//! `cmd/`, with its arguments (`Args`) and a `run` function; this file only parses and
//! dispatches.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Regionalized IP bindings: a local emulator of Cloudflare's DLS API, a fast
/// longest-prefix-match data plane, and a deterministic simulator of a regionalized edge.
#[derive(Parser)]
#[command(name = "inregion", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the DLS and Addressing API over HTTP (Cloudflare's paths, envelopes and codes).
    Serve(cmd::serve::Args),
    /// Run edge nodes: follow a serve's binding feed, apply each version as a new table, answer where a flow is processed
    Edge(cmd::edge::Args),
    /// Run a scenario through the discrete-event simulator and report what it does to traffic.
    Simulate(cmd::simulate::Args),
    /// Explain, step by step, how one destination address is handled from one place.
    Trace(cmd::trace::Args),
    /// Quick side-by-side comparisons against baselines, printed as JSON lines.
    Bench(cmd::bench::Args),
    /// Save or restore a server's records and clock (online through `--server`, or
    /// offline on a stopped server's `--data` directory).
    Snapshot(cmd::snapshot::Args),
    /// Print the OpenAPI document of the HTTP API (what `serve` answers at /openapi.json).
    Openapi(cmd::openapi::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Edge(args) => cmd::edge::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Trace(args) => cmd::trace::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Snapshot(args) => cmd::snapshot::run(args),
        Command::Openapi(args) => cmd::openapi::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("inregion: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
