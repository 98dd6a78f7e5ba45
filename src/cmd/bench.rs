//! `inregion bench`: the quick comparisons of the `inregion-bench` crate.

use std::process::ExitCode;

/// Which comparison to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Which {
    /// The region table against `ip_network_table`.
    Table,
    /// The edge decision against a plain baseline.
    Edge,
}

/// Arguments of `inregion bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to compare.
    which: Which,
    /// Smaller samples: finishes within a few minutes on 2 cores.
    #[arg(long)]
    quick: bool,
}

/// Runs the comparison; JSON lines go to stdout, progress to stderr.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.which {
        Which::Table => inregion_bench::table::run(args.quick)?,
        Which::Edge => inregion_bench::edge::run(args.quick)?,
    }
    Ok(ExitCode::SUCCESS)
}
