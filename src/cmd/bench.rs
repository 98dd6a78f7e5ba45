//! `inregion bench`: the quick comparisons of the `inregion-bench` crate.

use std::process::ExitCode;

/// Which comparison to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum Which {
    /// The region table against `ip_network_table`.
    Table,
    /// The edge decision against a plain baseline.
    Edge,
}

const AFTER_HELP: &str = "\
Examples:
  inregion bench table --quick
      the region table against ip_network_table on synthetic and real BGP tables, one
      JSON line per case: {\"case\":..., \"ours_mdps\":..., \"baseline_mdps\":..., \"speedup\":...}
  inregion bench edge --quick
      the edge decision (new and established flows, 1M live flows) against a plain
      HashMap + linear-scan baseline
  INREGION_BENCH_ONLY=v4-real inregion bench table --quick
      only some tables (comma-separated: v4-10k, v4-real, v6-real, v6-200k; a case name
      from the output selects its table)
  INREGION_BENCH_THREADS=1,2,4,8 inregion bench edge --quick
      the thread counts of the scaling cases (default: table 1,2; edge 2)
  INREGION_EDGE_CASES=new-flows,established-flows inregion bench edge --quick
      only some edge cases (comma-separated case names from the output)
  INREGION_EDGE_LIVE=200000 inregion bench edge --quick
      another number of live flows per flow table (1 to 1000000, the default)

Speed is reported as a ratio against the baseline measured in the same run. Run from
the repository: the table comparison reads the real BGP table from benches/data/.";

/// Arguments of `inregion bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// What to compare.
    which: Which,
    /// Smaller samples: finishes within a few minutes on 2 cores.
    #[arg(long)]
    quick: bool,
}

/// Runs the comparison; JSON lines go to stdout, progress to stderr.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.which {
        Which::Table => inregion_bench::table::run(args.quick)?,
        Which::Edge => inregion_bench::edge::run(args.quick)?,
    }
    Ok(ExitCode::SUCCESS)
}
