//! One module per subcommand: `Args` (clap) and `run(Args) -> anyhow::Result<ExitCode>`.

pub mod bench;
pub mod edge;
pub mod openapi;
pub mod serve;
pub mod simulate;
pub mod snapshot;
pub mod trace;
