//! Files the commands write: whole or not at all.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` whole or not at all: into a temporary file in the same
/// directory (`tempfile`, removed if anything fails), then renamed over `path`. A full
/// disk or an interrupted run leaves the previous file (or none), never a truncated one.
///
/// `private`: the file is owner-only (0600), and it and the rename are fsynced before
/// this returns, for a snapshot (token digests and their keys; a backup must survive a
/// crash, and a failed save must not destroy the last good one). Otherwise 0644 and no
/// fsync (reports and plots).
pub(crate) fn write_whole(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut b = tempfile::Builder::new();
    b.prefix(".inregion-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(if private {
            0o600
        } else {
            0o644
        }));
    }
    let mut tmp = b.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if private {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if private {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_whole;

    #[test]
    fn files_are_replaced_whole_and_failures_leave_no_debris() {
        for private in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("report.json");
            write_whole(&path, b"first", private).unwrap();
            write_whole(&path, b"second", private).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"second");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, if private { 0o600 } else { 0o644 });
            }
            // A write that cannot land (the name is taken by a directory) fails and
            // leaves neither a temporary file nor a change behind.
            let blocked = dir.path().join("plot.png");
            std::fs::create_dir(&blocked).unwrap();
            assert!(write_whole(&blocked, b"x", private).is_err());
            assert!(blocked.is_dir());
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(names.len(), 2, "{names:?}");
        }
    }
}
