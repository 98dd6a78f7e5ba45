//! Time as a value: [`Timestamp`] (UTC, microsecond precision) and the [`Clock`] trait.
//!
//! Rules never read a clock: every operation takes `now: Timestamp` as an argument, so a
//! simulation can drive the control plane with virtual time ([`ManualClock`]) and a
//! server with wall time ([`SystemClock`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An instant in UTC with microsecond precision, counted from the Unix epoch.
///
/// Displayed and serialized as RFC 3339 with exactly six fractional digits and a `Z`
/// suffix, as Cloudflare does: `2026-01-13T23:59:45.276558Z`.
///
/// Invariant: between [`Timestamp::MIN`] (year 0000) and [`Timestamp::MAX`] (year 9999),
/// the years RFC 3339 can write, so that every timestamp displays as text that
/// [`Timestamp::parse`] reads back (a stored record always loads again). Every
/// constructor and arithmetic operation clamps to that range.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a timestamp text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0:?} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")]
pub struct TimestampError(pub String);

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

impl Timestamp {
    /// The Unix epoch, `1970-01-01T00:00:00.000000Z`.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The earliest timestamp, `0000-01-01T00:00:00.000000Z`.
    pub const MIN: Timestamp = Timestamp(-62_167_219_200 * MICROS_PER_SEC);

    /// The latest timestamp, `9999-12-31T23:59:59.999999Z`.
    pub const MAX: Timestamp = Timestamp(253_402_300_799 * MICROS_PER_SEC + 999_999);

    /// From microseconds since the Unix epoch, clamped to [`MIN`](Self::MIN) ..=
    /// [`MAX`](Self::MAX).
    pub const fn from_micros(micros: i64) -> Self {
        if micros < Self::MIN.0 {
            Self::MIN
        } else if micros > Self::MAX.0 {
            Self::MAX
        } else {
            Self(micros)
        }
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// From whole seconds since the Unix epoch (clamped, as [`from_micros`](Self::from_micros)).
    pub const fn from_secs(secs: i64) -> Self {
        Self::from_micros(secs.saturating_mul(MICROS_PER_SEC))
    }

    /// `self + d`, saturating at [`MAX`](Self::MAX).
    pub fn plus(self, d: Duration) -> Self {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self::from_micros(self.0.saturating_add(us))
    }

    /// `self - d`, saturating at [`MIN`](Self::MIN).
    pub fn minus(self, d: Duration) -> Self {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self::from_micros(self.0.saturating_sub(us))
    }

    /// The duration from `earlier` to `self`, or zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// Parses RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SS` with an optional fraction of 1–9
    /// digits (truncated to microseconds) and a `Z` (or `+00:00`) suffix.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let err = || TimestampError(s.to_owned());
        let body = s
            .strip_suffix('Z')
            .or_else(|| s.strip_suffix('z'))
            .or_else(|| s.strip_suffix("+00:00"))
            .ok_or_else(err)?;
        // Byte offsets below are character offsets only for ASCII text.
        if !body.is_ascii() {
            return Err(err());
        }
        let b = body.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return Err(err());
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let t = &body[r];
            if t.bytes().all(|c| c.is_ascii_digit()) {
                t.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
            return Err(err());
        }
        if sec > 59 {
            return Err(err());
        }
        let mut micros = 0i64;
        let rest = &body[19..];
        if !rest.is_empty() {
            let frac = rest.strip_prefix('.').ok_or_else(err)?;
            if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            let mut digits = frac.to_owned();
            digits.truncate(6);
            while digits.len() < 6 {
                digits.push('0');
            }
            micros = digits.parse().map_err(|_| err())?;
        }
        let days = days_from_civil(y, mo, d);
        let secs = days * SECS_PER_DAY + h * 3600 + mi * 60 + sec;
        Ok(Self(secs * MICROS_PER_SEC + micros))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for the proleptic Gregorian
// calendar, no tables, no dependency.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let micros = self.0.rem_euclid(MICROS_PER_SEC);
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A source of the current time. Only the edges (the HTTP server, a simulation loop) read
/// a clock; they pass the reading to the rules.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock (`SystemTime::now`), truncated to microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A virtual clock that moves only when told to. Clones share the same time, so a
/// simulation and the server it drives see one clock.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    /// Moves the clock forward by `d` and returns the new time.
    pub fn advance(&self, d: Duration) -> Timestamp {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let step = |old: i64| Timestamp::from_micros(old.saturating_add(us)).0;
        let old = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| Some(step(old)))
            .unwrap_or_else(|old| old);
        Timestamp(step(old))
    }

    /// Sets the clock to `t` (backwards too: a test may want that; rules never assume
    /// monotonic time beyond what each stored timestamp says).
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_timestamp_round_trips_through_its_text() {
        for us in [
            i64::MIN,
            i64::MAX,
            Timestamp::MIN.0 - 1,
            Timestamp::MAX.0 + 1,
            -1,
            0,
            1_000_000_000_000 * MICROS_PER_SEC,
        ] {
            let t = Timestamp::from_micros(us);
            assert_eq!(Timestamp::parse(&t.to_string()), Ok(t), "{us}");
        }
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::EPOCH.plus(Duration::MAX), Timestamp::MAX);
        assert_eq!(Timestamp::EPOCH.minus(Duration::MAX), Timestamp::MIN);
        assert_eq!(
            ManualClock::new(Timestamp::MAX).advance(Duration::MAX),
            Timestamp::MAX
        );
    }

    #[test]
    fn non_ascii_text_is_an_error_not_a_panic() {
        for s in [
            "2026-01-13T23:59:4éZ",
            "2026-01-13T23:59:4😀+00:00",
            "é026-01-13T23:59:45Z",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn formats_like_cloudflare() {
        let t = Timestamp::parse("2026-01-13T23:59:45.276558Z").unwrap();
        assert_eq!(t.to_string(), "2026-01-13T23:59:45.276558Z");
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            Timestamp::from_micros(-1).to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            Timestamp::parse("2024-02-29T12:00:00Z")
                .unwrap()
                .to_string(),
            "2024-02-29T12:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::parse("2024-02-29T12:00:00.123456789+00:00")
                .unwrap()
                .as_micros()
                % 1_000_000,
            123_456
        );
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "2026-01-13",
            "2026-01-13T23:59:45",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-01-13T24:00:00Z",
            "2026-01-13T23:59:45.Z",
            "2026-01-13T23:59:45+01:00",
            "2026-01-13 23:59:45Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_across_many_days() {
        for days in (-719_000i64..2_900_000).step_by(997) {
            let t = Timestamp::from_micros(days * 86_400_000_000 + 3_723_000_042);
            assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
    }

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let c = ManualClock::new(Timestamp::from_secs(10));
        let c2 = c.clone();
        c.advance(Duration::from_secs(5));
        assert_eq!(c2.now(), Timestamp::from_secs(15));
        c2.set(Timestamp::from_secs(1));
        assert_eq!(c.now(), Timestamp::from_secs(1));
        assert!(SystemClock.now() > Timestamp::parse("2020-01-01T00:00:00Z").unwrap());
    }
}
