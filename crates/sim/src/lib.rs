//! inregion-sim (placeholder)
