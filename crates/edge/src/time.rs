//! Simulated time: passed in by the caller, never read from a clock.

use std::fmt;
use std::ops::Add;
use std::time::Duration;

/// A point in simulated time: nanoseconds since the simulation's origin.
///
/// The edge never reads a clock; every call that depends on time takes a `SimTime`.
/// Callers must pass non-decreasing times to one [`Edge`](crate::Edge) (a time that goes
/// backwards is treated as "no time passed": nothing expires, nothing is delivered early).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

impl SimTime {
    /// The origin.
    pub const ZERO: SimTime = SimTime(0);
    /// The last representable instant (about 584 years after the origin).
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// `n` nanoseconds after the origin.
    pub const fn from_nanos(n: u64) -> Self {
        SimTime(n)
    }

    /// `n` microseconds after the origin (saturating).
    pub const fn from_micros(n: u64) -> Self {
        SimTime(n.saturating_mul(1_000))
    }

    /// `n` milliseconds after the origin (saturating).
    pub const fn from_millis(n: u64) -> Self {
        SimTime(n.saturating_mul(1_000_000))
    }

    /// `n` seconds after the origin (saturating).
    pub const fn from_secs(n: u64) -> Self {
        SimTime(n.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the origin, as a float (for reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self + d`, saturating at [`SimTime::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        SimTime(self.0.saturating_add(duration_nanos(d)))
    }

    /// Time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for SimTime {
    type Output = SimTime;
    fn add(self, d: Duration) -> SimTime {
        self.saturating_add(d)
    }
}

impl fmt::Debug for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimTime({:.9}s)", self.as_secs_f64())
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.as_secs_f64())
    }
}

/// A duration as nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_saturation() {
        assert_eq!(SimTime::from_secs(2).as_nanos(), 2_000_000_000);
        assert_eq!(SimTime::from_millis(3), SimTime::from_micros(3_000));
        assert_eq!(SimTime::MAX + Duration::from_secs(1), SimTime::MAX);
        assert_eq!(
            SimTime::from_secs(5).saturating_since(SimTime::from_secs(7)),
            Duration::ZERO
        );
        assert_eq!(
            SimTime::from_secs(7).saturating_since(SimTime::from_secs(5)),
            Duration::from_secs(2)
        );
        assert_eq!(format!("{}", SimTime::from_millis(1500)), "1.500000s");
    }
}
