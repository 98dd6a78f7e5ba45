//! Quick, side-by-side comparisons of inregion's data plane against plain baselines.
//!
//! Each comparison builds the same input for ours and for the baseline, runs both in the
//! same process, and prints one JSON object per line per case. The binary
//! `inregion-bench` (`cargo run --release -p inregion-bench -- table --quick`) and the
//! `inregion bench` subcommand both call into this library.
//!
//! - [`table`]: the region table against `ip_network_table` and the peers `prefix-trie`,
//!   `iptrie` (LC-trie), `poptrie` and treebitmap.
//! - [`peers`]: those peers, each built from the same prefix list (shared with the
//!   criterion bench `benches/table.rs`).
//! - [`edge`]: the edge decision against a baseline written the obvious way.

#![warn(missing_docs)]

mod dir24;
pub mod edge;
pub mod peers;
pub mod table;
pub mod workload;

/// The thread counts of the scaling cases: `INREGION_BENCH_THREADS` (comma-separated,
/// such as `1,2,4,8,16`), or `default` when it is unset.
pub fn thread_counts(default: &str) -> anyhow::Result<Vec<usize>> {
    let spec = std::env::var("INREGION_BENCH_THREADS").unwrap_or_else(|_| default.to_owned());
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| anyhow::anyhow!("INREGION_BENCH_THREADS: bad thread count {s:?}"))
        })
        .collect()
}
