//! The server's clock: wall time plus an offset that the admin surface can advance.
//!
//! Rules never read a clock (they take `now` as an argument); the server reads this one
//! once per request. The offset is persisted next to the database, because binding states
//! are derived from stored timestamps and `now`: forgetting an advance at restart would
//! turn active bindings back into provisioning ones.

use inregion_model::{Clock, SystemClock, Timestamp};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Wall time plus a forward offset (microseconds), optionally persisted to a file.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_us: AtomicI64,
    file: Option<PathBuf>,
    /// Serializes advances so the file always holds the latest offset.
    write: Mutex<()>,
}

/// Why the clock could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// Reading or writing the offset file failed.
    #[error("clock offset file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The offset file does not hold an integer.
    #[error("clock offset file {0} is corrupt (expected an integer of microseconds)")]
    Corrupt(PathBuf),
    /// The clock would pass [`OffsetClock::LIMIT`]; it was left as it was.
    #[error(
        "the clock cannot pass {} (it would be at {would_be}): times past it would run into \
         the end of what timestamps hold",
        OffsetClock::LIMIT
    )]
    PastLimit {
        /// Where the clock would have been.
        would_be: Timestamp,
    },
}

impl OffsetClock {
    /// How far the clock may go: 9000-01-01T00:00:00Z. Timestamps end at 9999-12-31, and
    /// the end itself stands for "until a majority of edge nodes applied it"
    /// (`AWAITING_EDGES`); a clock near it would clamp every time derived from it (a
    /// propagation delay, a retention window) onto that marker.
    pub const LIMIT: Timestamp = Timestamp::from_secs(221_845_392_000);

    /// A clock at wall time, not persisted.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock whose offset lives in `file` (read now if it exists, written on advance).
    pub fn persisted(file: PathBuf) -> Result<Self, ClockError> {
        let offset = match std::fs::read_to_string(&file) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| ClockError::Corrupt(file.clone()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(ClockError::Io { path: file, source }),
        };
        Ok(Self {
            offset_us: AtomicI64::new(offset),
            file: Some(file),
            write: Mutex::new(()),
        })
    }

    /// The current offset from wall time.
    pub fn offset(&self) -> Duration {
        Duration::from_micros(self.offset_us.load(Ordering::SeqCst).max(0) as u64)
    }

    /// Moves the clock forward by `d`; returns the new time. The new offset is on disk
    /// (written and synced) before this returns. Past [`Self::LIMIT`]:
    /// [`ClockError::PastLimit`], nothing changed.
    pub fn advance(&self, d: Duration) -> Result<Timestamp, ClockError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let add = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let new = self.offset_us.load(Ordering::SeqCst).saturating_add(add);
        self.check_offset_us(new)?;
        self.store(new)?;
        Ok(self.now())
    }

    /// Whether an offset of `offset_us` keeps the clock within [`Self::LIMIT`] now
    /// ([`ClockError::PastLimit`] if not): for a caller that must refuse before it
    /// changes anything else (a snapshot restore).
    pub fn check_offset_us(&self, offset_us: i64) -> Result<(), ClockError> {
        let would_be = SystemClock
            .now()
            .plus(Duration::from_micros(offset_us.max(0) as u64));
        if would_be > Self::LIMIT {
            return Err(ClockError::PastLimit { would_be });
        }
        Ok(())
    }

    /// Sets the offset from wall time (a reset: 0; a snapshot restore: the snapshot's),
    /// persisted like [`Self::advance`]. Negative offsets are taken as 0; one that would
    /// put the clock past [`Self::LIMIT`] is refused.
    pub fn set_offset_us(&self, offset_us: i64) -> Result<Timestamp, ClockError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.check_offset_us(offset_us)?;
        self.store(offset_us.max(0))?;
        Ok(self.now())
    }

    /// The offset in microseconds (what a snapshot records).
    pub fn offset_us(&self) -> i64 {
        self.offset_us.load(Ordering::SeqCst).max(0)
    }

    /// Writes `new` to the file (if any), then makes it the offset. Called with `write`
    /// held.
    fn store(&self, new: i64) -> Result<(), ClockError> {
        if let Some(path) = &self.file {
            let tmp = path.with_extension("tmp");
            let io = |source| ClockError::Io {
                path: path.clone(),
                source,
            };
            {
                use std::io::Write;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(&tmp).map_err(io)?;
                f.write_all(new.to_string().as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
            }
            std::fs::rename(&tmp, path).map_err(io)?;
        }
        self.offset_us.store(new, Ordering::SeqCst);
        Ok(())
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().plus(Duration::from_micros(
            self.offset_us.load(Ordering::Relaxed).max(0) as u64,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_and_persists() {
        let dir = std::env::temp_dir().join(format!("inregion-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("clock-offset");
        let _ = std::fs::remove_file(&file);
        let c = OffsetClock::persisted(file.clone()).unwrap();
        let before = c.now();
        let after = c.advance(Duration::from_secs(3600)).unwrap();
        assert!(after.since(before) >= Duration::from_secs(3600));
        let again = OffsetClock::persisted(file.clone()).unwrap();
        assert_eq!(again.offset(), Duration::from_secs(3600));
        std::fs::write(&file, "garbage").unwrap();
        assert!(matches!(
            OffsetClock::persisted(file),
            Err(ClockError::Corrupt(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
