//! One module per subcommand: `Args` (clap) and `run(Args) -> anyhow::Result<ExitCode>`.

pub(crate) mod bench;
pub(crate) mod edge;
mod files;
pub(crate) mod openapi;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod snapshot;
pub(crate) mod trace;
