//! `inregion trace` (placeholder).

use std::process::ExitCode;

/// Arguments of `inregion trace`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `inregion trace`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`inregion trace` is not implemented yet")
}
