//! inregion-model (placeholder)
