//! Virtual time: nanoseconds since the start of the simulation.
//!
//! The engine never reads a wall clock; every instant is a [`SimTime`] computed from the
//! scenario and the seeded random streams. It is the edge's own time type
//! ([`inregion_edge::SimTime`]), so instants pass between the two without conversion.

pub use inregion_edge::SimTime;
