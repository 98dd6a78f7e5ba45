//! Table comparison (placeholder, owned by the table work).

/// Runs the table comparison and prints JSON lines to stdout.
pub fn run(_quick: bool) -> anyhow::Result<()> {
    anyhow::bail!("table comparison not implemented yet")
}
