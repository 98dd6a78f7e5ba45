//! `inregion serve` (placeholder).

use std::process::ExitCode;

/// Arguments of `inregion serve`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `inregion serve`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`inregion serve` is not implemented yet")
}
