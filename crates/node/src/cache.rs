//! The table cache (`--cache FILE`): the last version a node followed, kept on disk so
//! that a node restarted while its source is unreachable answers from it instead of
//! refusing every flow (static stability: the data plane does not need the control
//! plane to start).
//!
//! - **What is written**: the version, its live bindings and the custom regions, as the
//!   source's own snapshot type ([`Snapshot`], JSON), with the source it came from and
//!   a format number. Written whole to a temporary file beside the cache, fsynced, then
//!   renamed over it (`tempfile`'s `persist`) and the directory fsynced: a crash leaves
//!   the old cache or the new one, never half of one.
//! - **When**: after a version from the source is applied, at most every
//!   [`WRITE_EVERY`] (the newest one at the end of each pause, so a burst of versions
//!   costs one write), and once more when the node stops, after its follow loop has
//!   ended (so the last version it applied is the one kept).
//! - **What a start does with it**: a cache from the same source is applied as the
//!   first table before the source is asked; decisions are then marked `stale` (their
//!   age: since the cache was written) and the heartbeat reports version 0 (nothing
//!   from the source), until the first version from the source replaces it. The node
//!   still reads a full snapshot from the source (the cache never stands in for one), so
//!   a source restarted or rolled back in the meantime is followed correctly. The cached
//!   version is installed at once, whatever the apply delay (`--apply-delay` holds back
//!   new versions; this one was applied before the restart).
//! - A missing cache is normal (first start); an unreadable one, or one from another
//!   source, is logged and ignored: the node starts as without one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use inregion_feed::wire::Snapshot;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::follow::stopped;

/// The shortest pause between two writes of the cache.
pub(crate) const WRITE_EVERY: Duration = Duration::from_secs(2);

/// This format's number; a file of another is ignored (and rewritten).
const FORMAT: u32 = 1;

/// The file's contents: written with `S = &Snapshot` (no copy), read with `Snapshot`.
#[derive(Debug, Serialize, Deserialize)]
struct CacheFile<S> {
    format: u32,
    /// The source the version came from (`FeedSource::describe`).
    source: String,
    /// When it was written (RFC 3339), for the age of answers made from it.
    written_at: String,
    snapshot: S,
}

/// A cache read at start.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The version, its bindings and regions (`epoch` and `purged_through` are 0).
    pub(crate) snapshot: Snapshot,
    /// When it was written.
    pub(crate) written_at: SystemTime,
}

/// Why a cache was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a cache this program wrote.
    #[error("{}: not a table cache of this format ({what})", path.display())]
    Format { path: PathBuf, what: String },
    /// The cache holds another source's bindings.
    #[error("{}: written for the source {found}, not {wanted}", path.display())]
    OtherSource {
        path: PathBuf,
        found: String,
        wanted: String,
    },
}

/// Reads the cache at `path` for `source`: `Ok(None)` when there is none.
pub(crate) fn load(path: &Path, source: &str) -> Result<Option<Loaded>, LoadError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoadError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let format = |what: String| LoadError::Format {
        path: path.to_owned(),
        what,
    };
    let file: CacheFile<Snapshot> =
        serde_json::from_slice(&bytes).map_err(|e| format(e.to_string()))?;
    if file.format != FORMAT {
        return Err(format(format!("format {}, expected {FORMAT}", file.format)));
    }
    if file.source != source {
        return Err(LoadError::OtherSource {
            path: path.to_owned(),
            found: file.source,
            wanted: source.to_owned(),
        });
    }
    let written_at = humantime::parse_rfc3339(&file.written_at)
        .map_err(|e| format(format!("written_at: {e}")))?;
    Ok(Some(Loaded {
        snapshot: file.snapshot,
        written_at,
    }))
}

/// Writes `snapshot` from `source` as the cache at `path`, atomically (see the module
/// documentation).
pub(crate) fn write(path: &Path, source: &str, snapshot: &Snapshot) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file = CacheFile {
        format: FORMAT,
        source: source.to_owned(),
        written_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        snapshot,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        serde_json::to_writer(&mut w, &file)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

/// Writes what `rx` holds to the cache at `path`, at most every [`WRITE_EVERY`], until
/// the sender is dropped (when the follow loop has ended: it may still apply a version
/// after the stop was asked for), then once more, the newest. `stop` cuts a pause short.
pub(crate) async fn writer(
    path: PathBuf,
    source: String,
    mut rx: watch::Receiver<Option<Arc<Snapshot>>>,
    mut stop: watch::Receiver<bool>,
) {
    // What was last written (by identity: a repaired version keeps its number).
    let mut written: Option<Arc<Snapshot>> = None;
    let mut last: Option<Instant> = None;
    loop {
        let closed = rx.changed().await.is_err();
        if !closed && !*stop.borrow() {
            if let Some(due) = last.map(|t| t + WRITE_EVERY) {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = stopped(&mut stop) => {}
                }
            }
        }
        let newest = rx.borrow_and_update().clone();
        let unwritten = newest.filter(|s| !written.as_ref().is_some_and(|w| Arc::ptr_eq(w, s)));
        if let Some(s) = unwritten {
            let (p, src, version) = (path.clone(), source.clone(), s.version);
            let snapshot = Arc::clone(&s);
            let r = tokio::task::spawn_blocking(move || write(&p, &src, &snapshot)).await;
            match r {
                Ok(Ok(())) => {
                    tracing::debug!(version, path = %path.display(), "table cache written");
                    written = Some(s);
                }
                Ok(Err(e)) => {
                    tracing::warn!(version, path = %path.display(), error = %e, "could not write the table cache")
                }
                Err(e) => tracing::warn!(error = %e, "the table cache writer failed"),
            }
            last = Some(Instant::now());
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inregion_feed::wire::FeedBinding;
    use inregion_model::{BindingId, Cidr, RegionKey};

    fn snapshot(version: u64) -> Snapshot {
        Snapshot {
            epoch: 0,
            version,
            purged_through: 0,
            bindings: vec![FeedBinding {
                binding_id: BindingId::parse("00000000-0000-4000-8000-000000000001").unwrap(),
                cidr: Cidr::parse_strict("203.0.113.0/24").unwrap(),
                region_key: RegionKey::parse("eu").unwrap(),
            }],
            regions: Vec::new(),
        }
    }

    #[test]
    fn a_written_cache_loads_back_for_its_source_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.json");
        assert!(load(&path, "http://a").unwrap().is_none());
        write(&path, "http://a", &snapshot(7)).unwrap();
        let got = load(&path, "http://a").unwrap().unwrap();
        assert_eq!(got.snapshot, snapshot(7));
        let age = SystemTime::now().duration_since(got.written_at).unwrap();
        assert!(age < Duration::from_secs(60), "{age:?}");
        assert!(matches!(
            load(&path, "http://b"),
            Err(LoadError::OtherSource { .. })
        ));
        // Written again: replaced whole, nothing else left in the directory.
        write(&path, "http://a", &snapshot(8)).unwrap();
        assert_eq!(
            load(&path, "http://a").unwrap().unwrap().snapshot.version,
            8
        );
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1);
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused_not_half_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.json");
        write(&path, "http://a", &snapshot(7)).unwrap();
        let whole = std::fs::read(&path).unwrap();
        for cut in [0, 1, whole.len() / 2, whole.len() - 1] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(
                matches!(load(&path, "http://a"), Err(LoadError::Format { .. })),
                "cut at {cut}"
            );
        }
        let other = String::from_utf8(whole)
            .unwrap()
            .replace("\"format\":1", "\"format\":2");
        std::fs::write(&path, other).unwrap();
        assert!(matches!(
            load(&path, "http://a"),
            Err(LoadError::Format { .. })
        ));
    }
}
