//! Virtual time: nanoseconds since the start of the simulation.
//!
//! The engine never reads a wall clock; every instant is a [`SimTime`] computed from the
//! scenario and the seeded random streams.

use std::fmt;

/// An instant (or a span) of simulated time, in nanoseconds since the scenario's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(u64);

impl SimTime {
    /// The start of the simulation.
    pub const ZERO: SimTime = SimTime(0);
    /// The far future (used for "never").
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// From nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s.saturating_mul(1_000_000_000))
    }
    /// From fractional seconds (negative and NaN give zero; saturates).
    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_nan() || s <= 0.0 {
            SimTime(0)
        } else {
            SimTime((s * 1e9).min(u64::MAX as f64) as u64)
        }
    }
    /// From a `std::time::Duration` (saturates).
    pub fn from_duration(d: std::time::Duration) -> Self {
        SimTime(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
    /// Nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Seconds, fractional.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// As a `std::time::Duration`.
    pub fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
    /// `self + d`, saturating.
    pub fn saturating_add(self, d: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
    /// `self - d`, saturating at zero.
    pub fn saturating_sub(self, d: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(d.0))
    }
}

impl fmt::Display for SimTime {
    /// `T+1h30m00s`-style, to the second (`T+0.250s` below one second).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0 / 1_000_000_000;
        if s == 0 && self.0 > 0 {
            return write!(f, "T+{:.3}s", self.as_secs_f64());
        }
        let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
        if h > 0 {
            write!(f, "T+{h}h{m:02}m{sec:02}s")
        } else if m > 0 {
            write!(f, "T+{m}m{sec:02}s")
        } else {
            write!(f, "T+{sec}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_display() {
        assert_eq!(SimTime::from_secs(2).as_nanos(), 2_000_000_000);
        assert_eq!(SimTime::from_secs_f64(-1.0), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(1.5).as_nanos(), 1_500_000_000);
        assert_eq!(SimTime::from_secs(5400).to_string(), "T+1h30m00s");
        assert_eq!(SimTime::from_secs(61).to_string(), "T+1m01s");
        assert_eq!(SimTime::from_nanos(250_000_000).to_string(), "T+0.250s");
        assert_eq!(
            SimTime::MAX.saturating_add(SimTime::from_secs(1)),
            SimTime::MAX
        );
    }
}
