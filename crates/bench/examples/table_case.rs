//! Times one IPv6 case of the table comparison in isolation: the harness behind the
//! session-17 findings in `docs/benchmarks.md` (the batch waiting on its own input).
//!
//! ```text
//! cargo run --release -p inregion-bench --example table_case -- v6-200k uniform batch --before iptrie
//! ```
//!
//! Builds the table the comparison builds (same prefixes, values and streams), then runs
//! `--passes` timed passes of one contender over the 1 Mi-address stream, each after an
//! untimed pass of `--before` (a peer, as the comparison's rotation puts one there: its
//! pass pushes the stream out of the cache) or of nothing (the stream stays cached).
//! Prints one JSON line: the best, median and worst rate in M lookups/s. To compare two
//! builds, copy each binary aside and run them alternately, several rounds each: one
//! binary's rates move by several percent between runs on a shared VM.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use inregion_bench::{peers, table, workload};
use ipnet::Ipv6Net;

const USAGE: &str = "usage: table_case TABLE STREAM CONTENDER [--before PEER] [--passes N]
  TABLE      v6-10k, v6-200k or v6-real, with -regions for region-like values (v6-10k-regions)
  STREAM     hit or uniform
  CONTENDER  batch or single (ours), or a peer: prefix_trie, iptrie, poptrie, treebitmap
  --before   a contender (usually a peer) whose untimed pass runs before each timed one;
             default: none (the stream stays in the cache)
  --passes   timed passes, default 40";

/// What can be timed (or run before): ours, then the peers.
const CONTENDERS: [&str; 6] = [
    "batch",
    "single",
    "prefix_trie",
    "iptrie",
    "poptrie",
    "treebitmap",
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let case = Case::parse(&args).map_err(|e| anyhow!("{e}\n{USAGE}"))?;

    let (base, regions) = match case.table.strip_suffix("-regions") {
        Some(base) => (base, true),
        None => (case.table.as_str(), false),
    };
    // The comparison's own seeds and lengths (`inregion_bench::table`).
    let (nets, value_seed) = match base {
        "v6-real" => (
            workload::load_bgp(&workload::bgp_path())?.v6,
            table::V6_REAL_VALUE_SEED,
        ),
        _ => {
            let &(_, count, seed) = table::V6_SYNTHETIC
                .iter()
                .find(|(name, _, _)| *name == base)
                .ok_or_else(|| anyhow!("unknown table {base:?}\n{USAGE}"))?;
            (
                workload::synthetic_v6(count, seed),
                table::V6_SYNTHETIC_VALUE_SEED,
            )
        }
    };
    let prefixes: Vec<(Ipv6Net, u16)> = if regions {
        workload::region_runs(&nets)
    } else {
        workload::with_regions(&nets, value_seed)
    };
    let (hit_seed, uniform_seed) = table::V6_STREAM_SEEDS;
    let stream = match case.stream.as_str() {
        "hit" => workload::hits_v6(&nets, table::QUICK_STREAM_LEN, hit_seed),
        "uniform" => workload::uniform_v6(table::QUICK_STREAM_LEN, uniform_seed),
        other => bail!("unknown stream {other:?}\n{USAGE}"),
    };
    let ours = workload::build_ours_v6(&prefixes);
    let peers = peers::build_v6(&prefixes);
    eprintln!("table_case: {:?}", ours.stats());

    let pass = |name: &str| -> anyhow::Result<u64> {
        Ok(match name {
            "batch" => table::batch_pass_v6(&ours, &stream),
            "single" => table::single_pass_v6(&ours, &stream),
            "prefix_trie" => peers::pass(&peers.prefix_trie, &stream),
            "iptrie" => peers::pass(&peers.iptrie, &stream),
            "poptrie" => peers::pass(&peers.poptrie, &stream),
            "treebitmap" => peers::pass(&peers.treebitmap, &stream),
            other => bail!("unknown contender {other:?}\n{USAGE}"),
        })
    };

    black_box(pass(&case.contender)?); // warm up, and check the name
    let mut seconds = Vec::with_capacity(case.passes);
    for _ in 0..case.passes {
        if let Some(before) = &case.before {
            black_box(pass(before)?);
        }
        let started = Instant::now();
        black_box(pass(&case.contender)?);
        seconds.push(started.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let rate = |s: f64| (stream.len() as f64 / s / 1e6 * 10.0).round() / 10.0;
    println!(
        "{}",
        serde_json::json!({
            "table": case.table,
            "stream": case.stream,
            "contender": case.contender,
            "before": case.before,
            "passes": case.passes,
            "best_mlps": rate(seconds[0]),
            "median_mlps": rate(seconds[seconds.len() / 2]),
            "worst_mlps": rate(seconds[seconds.len() - 1]),
        })
    );
    Ok(())
}

/// The command line.
struct Case {
    table: String,
    stream: String,
    contender: String,
    before: Option<String>,
    passes: usize,
}

impl Case {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut positional = Vec::new();
        let mut before = None;
        let mut passes = 40;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--before" => before = Some(args.next().context("--before needs a peer")?.clone()),
                "--passes" => {
                    let n = args.next().context("--passes needs a number")?;
                    passes = n
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .with_context(|| format!("--passes: not a positive number: {n:?}"))?;
                }
                flag if flag.starts_with("--") => bail!("unknown option {flag:?}"),
                _ => positional.push(arg.clone()),
            }
        }
        let [table, stream, contender] = <[String; 3]>::try_from(positional)
            .map_err(|p| anyhow!("expected TABLE STREAM CONTENDER, got {} arguments", p.len()))?;
        for name in std::iter::once(&contender).chain(&before) {
            if !CONTENDERS.contains(&name.as_str()) {
                bail!("unknown contender {name:?}");
            }
        }
        Ok(Case {
            table,
            stream,
            contender,
            before,
            passes,
        })
    }
}
