//! inregion-control (placeholder)
