//! inregion-edge (placeholder)
