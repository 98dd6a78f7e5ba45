//! inregion-table (placeholder)
