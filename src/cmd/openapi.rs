//! `inregion openapi`: print the OpenAPI document that `serve` serves at `/openapi.json`.

use std::io::Write;
use std::process::ExitCode;

/// Print the OpenAPI 3.1 document of the HTTP API (the same text `GET /openapi.json`
/// answers), generated from the server's code.
///
/// Example: `inregion openapi > openapi.json`, then point Schemathesis, an SDK generator
/// or a client at the file.
#[derive(clap::Args)]
pub(crate) struct Args {}

/// Writes the document to stdout.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(inregion_api::openapi_document().as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
