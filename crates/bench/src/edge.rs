//! Edge comparison (placeholder, owned by the edge work).

/// Runs the edge comparison and prints JSON lines to stdout.
pub fn run(_quick: bool) -> anyhow::Result<()> {
    anyhow::bail!("edge comparison not implemented yet")
}
