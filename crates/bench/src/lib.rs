//! Quick, side-by-side comparisons of inregion's data plane against plain baselines.
//!
//! Each comparison builds the same input for ours and for the baseline, runs both in the
//! same process, and prints one JSON object per line per case. The binary
//! `inregion-bench` (`cargo run --release -p inregion-bench -- table --quick`) and the
//! `inregion bench` subcommand both call into this library.
//!
//! - [`table`]: the region table against `ip_network_table`.
//! - [`edge`]: the edge decision against a baseline written the obvious way.

#![warn(missing_docs)]

pub mod edge;
pub mod table;
pub mod workload;
