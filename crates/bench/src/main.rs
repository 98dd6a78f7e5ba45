//! `inregion-bench`: quick side-by-side comparisons, one JSON object per line.
//!
//! ```text
//! cargo run --release -p inregion-bench -- table --quick
//! cargo run --release -p inregion-bench -- edge --quick
//! ```

use std::process::ExitCode;

const USAGE: &str = "usage: inregion-bench <table|edge> [--quick]

  table   region table vs ip_network_table (lookups per second, bytes, build time)
  edge    edge decision vs a plain baseline (decisions per second)

  --quick  smaller sample sizes; finishes in a few minutes on 2 cores";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let which = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str);
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if let Some(bad) = args.iter().find(|a| a.starts_with('-') && *a != "--quick") {
        eprintln!("inregion-bench: unknown option {bad}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let result = match which {
        Some("table") => inregion_bench::table::run(quick),
        Some("edge") => inregion_bench::edge::run(quick),
        Some(other) => {
            eprintln!("inregion-bench: unknown comparison {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inregion-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
