//! `inregion simulate` (placeholder).

use std::process::ExitCode;

/// Arguments of `inregion simulate`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `inregion simulate`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`inregion simulate` is not implemented yet")
}
