//! `inregion simulate`: run a scenario through the discrete-event simulator.

use anyhow::Context as _;
use inregion_model::ReferenceData;
use inregion_sim::{plots, Report, Scenario, SimTime, Simulation};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::files::write_whole;

const AFTER_HELP: &str = "\
Examples:
  inregion simulate scenarios/quickstart.toml --out out/quickstart
      the README's walk-through: summary on the terminal; report.json, CSV files and
      PNG/SVG plots in out/quickstart/
  inregion simulate scenarios/quickstart.toml --seed 7 --flows 100000
      same story, another seed, fewer flows
  inregion simulate scenarios/jp-fail-closed.toml --duration 3h
      the first three simulated hours only (the arrival rate is kept)
  inregion simulate scenarios/scale-10m.toml --quiet --out out/scale
      for scripts: nothing on the terminal unless it fails (exit status 1)

A scenario is a TOML file: topology, accounts, BYOIP prefixes, a timeline of binding
operations (applied through the control plane's rules: an invalid one stops the run with
the API's error code), client populations, workload, propagation delays, failures and
DNS probes. The shipped ones in scenarios/ are commented; the format is documented in
the inregion-sim crate (`scenario` module).

report.json is byte-identical for the same scenario and seed; the run time is printed on
the terminal only.";

/// Arguments of `inregion simulate`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// The scenario file (TOML), for example scenarios/quickstart.toml.
    scenario: PathBuf,
    /// Write report.json, CSV files and plots (PNG and SVG) into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Print nothing but errors (no progress bar, no summary).
    #[arg(long, short)]
    quiet: bool,
    /// Override the number of flows (spread over the scenario's duration).
    #[arg(long, value_name = "N")]
    flows: Option<u64>,
    /// Override the simulated duration (for example 3h); keeps the arrival rate unless
    /// --flows is given. Timeline operations after it do not happen.
    #[arg(long, value_name = "TIME")]
    duration: Option<humantime::Duration>,
}

/// Applies the command-line overrides to a validated scenario, with the limits the file
/// itself has (see [`Scenario::set_duration`], [`Scenario::set_flows`]).
fn apply_overrides(mut sc: Scenario, args: &Args) -> anyhow::Result<Scenario> {
    if let Some(seed) = args.seed {
        sc.seed = seed;
    }
    if let Some(d) = args.duration {
        sc.set_duration("--duration", SimTime::from_duration(*d))?;
    }
    if let Some(n) = args.flows {
        sc.set_flows("--flows", n)?;
    }
    Ok(sc)
}

/// Runs `inregion simulate`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::from_path(&args.scenario)?;
    let scenario = apply_overrides(scenario, &args)?;
    let total = scenario.workload.flows;
    let refdata = ReferenceData::embedded();
    let sim = Simulation::new(scenario.clone(), &refdata)?;

    // A bar over simulated time, on a terminal, for runs that take a while: many flows,
    // or frequent DNS probe rounds over a long run (a year of 1 s probes has few flows).
    let probe_rounds = scenario.dns.as_ref().map_or(0, |d| {
        scenario.duration.as_nanos() / d.every.as_nanos().max(1)
    });
    let show_progress = !args.quiet
        && std::io::stderr().is_terminal()
        && (total >= 200_000 || probe_rounds >= 20_000);
    let bar = if show_progress {
        let b = indicatif::ProgressBar::new(scenario.duration.as_nanos() / 1_000_000_000);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} simulating {bar:40} {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let output = sim.run_reporting(&mut |p| {
        bar.set_position(p.at.as_nanos() / 1_000_000_000);
        bar.set_message(format!(
            "{} of {}, {}/{} flows",
            p.at, p.end, p.flows_done, p.flows_total
        ));
    })?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();

    let report = Report::new(&scenario, &output);
    let mut written = Vec::new();
    if let Some(dir) = &args.out {
        // Everything is rendered before anything is written, and each file is written
        // whole or not at all (see `files::write_whole`).
        let mut files: Vec<(String, Vec<u8>)> =
            vec![("report.json".into(), report.to_json().into())];
        for (name, text) in report.csv_files() {
            files.push((name, text.into()));
        }
        for p in plots::render_all(&report)? {
            files.push((format!("{}.png", p.name), p.png));
            files.push((format!("{}.svg", p.name), p.svg.into()));
        }
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!("--out {}: exists and is not a directory", dir.display());
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        for (name, bytes) in &files {
            let path = dir.join(name);
            write_whole(&path, bytes, false).with_context(|| {
                format!(
                    "cannot write {} ({} of {} files written before it)",
                    path.display(),
                    written.len(),
                    files.len()
                )
            })?;
            written.push(path);
        }
    }
    if !args.quiet {
        use std::fmt::Write as _;
        let mut text = report.summary();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            text,
            "\nran in {:.2} s of wall time: {:.0} simulated flows/s",
            secs,
            report.flows as f64 / secs
        );
        if let Some(dir) = &args.out {
            let _ = writeln!(text, "wrote {} files to {}:", written.len(), dir.display());
            for p in &written {
                if let Some(name) = p.file_name() {
                    let _ = writeln!(text, "    {}", name.to_string_lossy());
                }
            }
        }
        write_stdout(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
