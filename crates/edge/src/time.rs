//! Simulated time: passed in by the caller, never read from a clock. The one time type
//! of the edge and of the simulator (`inregion-sim` re-exports it).

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

    /// From fractional seconds (negative and NaN give the origin; saturates).
    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_nan() || s <= 0.0 {
            SimTime(0)
        } else {
            SimTime((s * 1e9).min(u64::MAX as f64) as u64)
        }
    }

    /// A span as an instant after the origin (saturating).
    pub fn from_duration(d: Duration) -> Self {
        SimTime(duration_nanos(d))
    }

    /// Since the origin, as a `Duration`.
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
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
    /// `T+1h30m00s`-style, to the second (`T+0.250s` below one second): how reports and
    /// traces print an instant.
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
        assert_eq!(
            format!("{:?}", SimTime::from_millis(1500)),
            "SimTime(1.500000000s)"
        );
    }

    #[test]
    fn fractional_seconds_and_display() {
        assert_eq!(SimTime::from_secs_f64(-1.0), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(f64::NAN), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(1.5).as_nanos(), 1_500_000_000);
        assert_eq!(
            SimTime::from_duration(Duration::from_millis(7)).as_duration(),
            Duration::from_millis(7)
        );
        assert_eq!(SimTime::from_secs(5400).to_string(), "T+1h30m00s");
        assert_eq!(SimTime::from_secs(61).to_string(), "T+1m01s");
        assert_eq!(SimTime::from_secs(7).to_string(), "T+7s");
        assert_eq!(SimTime::from_nanos(250_000_000).to_string(), "T+0.250s");
        assert_eq!(SimTime::ZERO.to_string(), "T+0s");
    }
}
