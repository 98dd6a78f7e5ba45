//! `inregion trace`: explain one decision step by step.

use inregion_model::ReferenceData;
use inregion_sim::scenario::{parse_duration_text, parse_place};
use inregion_sim::{trace, TraceRequest};
use inregion_sim::{Scenario, SimTime};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Examples:
  inregion trace 203.0.113.7 --from GRU
      a client in São Paulo, at the end of the quickstart scenario (the binding has
      moved to us and propagated everywhere)
  inregion trace 203.0.113.7 --from DE --at 3h
      before the eu binding has reached Germany's data centers: processed at ingress
  inregion trace 203.0.113.7 --from -23.55,-46.63 --at 7h
      a point (lat,lon): the eu binding is in force, the flow is forwarded to the EU
  inregion trace 198.51.100.10 --from NRT --at 3h --scenario scenarios/jp-fail-closed.toml
      every Japanese data center is down: refused (fail closed)

--from takes an IATA code (GRU), a country code (BR: its first data-center city) or
lat,lon. --at is a simulated time since the scenario's start (90m, 4h 30m); the timeline,
failures and per-data-center propagation are replayed up to it. Without --scenario the
quickstart scenario's bindings are used (embedded; no file needed).";

/// Arguments of `inregion trace`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Destination address (IPv4 or IPv6).
    ip: String,
    /// Where the client is: IATA code, country code, or lat,lon.
    #[arg(long, value_name = "IATA|COUNTRY|LAT,LON", allow_hyphen_values = true)]
    from: String,
    /// Simulated time since the scenario's start (default: its end).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Scenario file (default: the embedded quickstart scenario).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
}

/// Runs `inregion trace`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dst: IpAddr = args
        .ip
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{:?} is not an IP address", args.ip))?;
    let (from_name, from) = parse_place(&args.from).map_err(|m| anyhow::anyhow!("--from: {m}"))?;
    let scenario = match &args.scenario {
        Some(p) => Scenario::from_path(p)?,
        None => Scenario::quickstart(),
    };
    let at = match &args.at {
        Some(t) => {
            let t = SimTime::from_duration(
                parse_duration_text(t).map_err(|m| anyhow::anyhow!("--at: {m}"))?,
            );
            anyhow::ensure!(
                t <= scenario.duration,
                "--at {:?} is after the end of scenario {} (it lasts {})",
                args.at.as_deref().unwrap_or_default(),
                scenario.name,
                humantime::format_duration(scenario.duration.as_duration())
            );
            Some(t)
        }
        None => None,
    };
    let req = TraceRequest {
        dst,
        from_name,
        from,
        at,
    };
    let t = trace(scenario, &ReferenceData::embedded(), &req)?;
    super::simulate::write_stdout(&t.to_text())?;
    Ok(ExitCode::SUCCESS)
}
