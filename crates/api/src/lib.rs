//! inregion-api (placeholder)
