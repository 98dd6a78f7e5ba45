//! The commit log: preallocated segment files of checksummed frames, each frame one
//! batch of [`Commit`]s. [`LogStore`](super::LogStore) writes a batch here, syncs it and
//! acknowledges it; SQLite receives it afterwards, off the request path.
//!
//! ```text
//!  <database>-log/
//!    LOCK                    flock'd by the one process that has the database open
//!    00000000000000a3.log    segment 0xa3: frames from offset 0, then zeroes or stale
//!    00000000000000a4.log    the next segment, prepared in advance (no frame yet)
//!
//!  frame = magic u32 | segment u64 | length u32 | crc32 u32 | JSON of [Commit, ...]
//!          (little endian; the CRC covers segment, length and payload; the magic says
//!          whether the frame was fsynced before the next one was written)
//! ```
//!
//! Why segments of a fixed size, written in place and reused: appending to a growing
//! file makes every `fdatasync` also commit the file system's journal (the new size and
//! blocks), which on a VM disk stalls for tens of milliseconds now and then; overwriting
//! blocks that already exist costs only the data flush. A segment is written full of
//! zeroes once, when it is created, and later reused by renaming: its stale frames carry
//! the old segment number and so never parse as frames of the new one.
//!
//! Recovery ([`recover`]) reads the segments in order and keeps, per segment, the frames
//! from offset 0 up to the first one that does not check (a torn write, stale or zero
//! bytes). A frame is written only after the previous one is synced, so every
//! acknowledged frame is in that prefix. Frames written without a sync
//! ([`Durability::Process`](super::Durability::Process)) carry another magic: after a
//! crash of the machine one of them may be missing while a later one survived, and
//! recovery then keeps what comes before the hole, as that mode promises, instead of
//! refusing to open.

use crate::error::StoreError;
use crate::records::AddressMap;
use crate::state::{Change, Commit};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The magic of a frame fsynced before the next was written ("ILRG" little endian).
const MAGIC: u32 = 0x4752_4c49;
/// The magic of a frame written without an fsync (`--durability process`): one that may
/// be lost in a crash of the machine, even with a later frame kept ("ILRU").
const MAGIC_UNSYNCED: u32 = 0x5552_4c49;
const HEADER: usize = 20;
/// Bytes of one segment. Test builds use small segments so that rolling over is
/// exercised by small tests.
pub(crate) const SEGMENT_BYTES: u64 = if cfg!(test) { 16 << 10 } else { 4 << 20 };
const LOCK_FILE: &str = "LOCK";

/// The log directory of the database at `db`: `<db>-log`, beside SQLite's `-wal`.
pub(crate) fn dir_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-log");
    PathBuf::from(name)
}

/// Maps an I/O error on `path` to a store error that says what was being done.
pub(crate) fn io(
    what: impl std::fmt::Display,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StoreError {
    let what = what.to_string();
    let path = path.display().to_string();
    move |e| StoreError::new(format!("commit log: {what} {path}: {e}"))
}

/// The segment file with number `seq`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.log"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".log")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Takes the directory's lock file (created if missing) for as long as the returned
/// file is open: a second process opening the same database gets a clear error instead
/// of two writers interleaving frames.
pub(crate) fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("cannot open", &path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::new(format!(
            "the database is in use by another process (it holds {})",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock", &path)(e)),
    }
}

/// Fsyncs a directory, so that a rename or a new file in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync directory", dir))
}

/// Creates a segment file of [`SEGMENT_BYTES`] zero bytes at `path`, synced.
pub(crate) fn create_zeroed(path: &Path) -> Result<File, StoreError> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io("cannot create", path))?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = SEGMENT_BYTES as usize;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).map_err(io("cannot fill", path))?;
        left -= n;
    }
    f.sync_all().map_err(io("cannot sync", path))?;
    Ok(f)
}

/// The segments in a log directory, by number, and leftovers of interrupted
/// preparations (`*.tmp`), which hold nothing.
pub(crate) struct Listing {
    pub(crate) segments: Vec<(u64, PathBuf)>,
    pub(crate) temporary: Vec<PathBuf>,
}

pub(crate) fn list(dir: &Path) -> Result<Listing, StoreError> {
    let mut segments = Vec::new();
    let mut temporary = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("cannot read", dir))? {
        let entry = entry.map_err(io("cannot read", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = parse_segment_name(name) {
            segments.push((seq, entry.path()));
        } else if name.ends_with(".tmp") {
            temporary.push(entry.path());
        }
    }
    segments.sort();
    Ok(Listing {
        segments,
        temporary,
    })
}

/// A commit as the log writes it: [`Commit`]'s own JSON, except that an address map
/// also carries its `account_id` (the API shape leaves it out, and decoding needs it).
/// Decoded as a plain `Vec<Commit>`.
struct LogCommit<'a>(&'a Commit);
struct LogChange<'a>(&'a Change);

impl serde::Serialize for LogCommit<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Commit", 2)?;
        st.serialize_field("version", &self.0.version)?;
        let changes: Vec<LogChange<'_>> = self.0.changes.iter().map(LogChange).collect();
        st.serialize_field("changes", &changes)?;
        st.end()
    }
}

impl serde::Serialize for LogChange<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Change::AddressMap(map) => {
                #[derive(serde::Serialize)]
                struct WithAccount<'a> {
                    #[serde(flatten)]
                    map: &'a AddressMap,
                    account_id: &'a inregion_model::AccountId,
                }
                let body = WithAccount {
                    map,
                    account_id: &map.account_id,
                };
                s.serialize_newtype_variant("Change", 6, "AddressMap", &body)
            }
            other => other.serialize(s),
        }
    }
}

/// One frame's bytes: header and payload.
pub(crate) fn encode(seq: u64, commits: &[&Commit], synced: bool) -> Result<Vec<u8>, StoreError> {
    let mut buf = vec![0u8; HEADER];
    let commits: Vec<LogCommit<'_>> = commits.iter().map(|&c| LogCommit(c)).collect();
    serde_json::to_writer(&mut buf, &commits)
        .map_err(|e| StoreError::new(format!("commit log: encode: {e}")))?;
    let len = u32::try_from(buf.len() - HEADER)
        .map_err(|_| StoreError::new("commit log: a batch of more than 4 GiB"))?;
    let magic = if synced { MAGIC } else { MAGIC_UNSYNCED };
    buf[0..4].copy_from_slice(&magic.to_le_bytes());
    buf[12..16].copy_from_slice(&len.to_le_bytes());
    seal(&mut buf, seq);
    Ok(buf)
}

/// Stamps an encoded frame with the segment it goes to (its number and the checksum
/// that covers it), so that a frame encoded for one segment can go to the next without
/// being encoded again.
pub(crate) fn seal(frame: &mut [u8], seq: u64) {
    frame[4..12].copy_from_slice(&seq.to_le_bytes());
    let crc = checksum(&frame[4..16], &frame[HEADER..]);
    frame[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(head: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(payload);
    h.finalize()
}

/// The frames of segment `seq` in `bytes`, from offset 0 up to the first that does not
/// check. A frame that checks but does not decode is corruption that no torn write
/// explains: an error, never skipped.
/// One decoded frame.
#[derive(Debug, PartialEq)]
pub(crate) struct Frame {
    /// Whether it was fsynced before the next frame was written.
    pub(crate) synced: bool,
    pub(crate) commits: Vec<Commit>,
}

pub(crate) fn decode(seq: u64, bytes: &[u8]) -> Result<Vec<Frame>, StoreError> {
    let mut frames = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= HEADER {
        let h = &bytes[at..at + HEADER];
        let word = |r: std::ops::Range<usize>| -> [u8; 4] { h[r].try_into().expect("4 bytes") };
        let magic = u32::from_le_bytes(word(0..4));
        let frame_seq = u64::from_le_bytes(h[4..12].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(word(12..16)) as usize;
        let crc = u32::from_le_bytes(word(16..20));
        let synced = match magic {
            MAGIC => true,
            MAGIC_UNSYNCED => false,
            _ => break,
        };
        if frame_seq != seq || len > bytes.len() - at - HEADER {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if checksum(&h[4..16], payload) != crc {
            break;
        }
        let commits: Vec<Commit> = serde_json::from_slice(payload).map_err(|e| {
            StoreError::new(format!(
                "commit log: segment {seq:016x} offset {at}: a frame that checks does not decode: {e}"
            ))
        })?;
        frames.push(Frame { synced, commits });
        at += HEADER + len;
    }
    Ok(frames)
}

/// What [`recover`] found: the commits after the database's version, in order, and the
/// segment files (all spent once those commits are in the database).
pub(crate) struct Recovered {
    pub(crate) commits: Vec<Commit>,
    pub(crate) segments: Vec<(u64, PathBuf)>,
    /// Commits left out after a hole among frames written without an fsync (a crash of
    /// the machine under `--durability process`): the versions from the first missing
    /// one on, and how many were found past the hole.
    pub(crate) lost: Option<(u64, usize)>,
}

/// Reads the log in `dir` and returns the commits the database (at `db_version`) lacks.
/// They must follow it without a gap; anything else is an error naming the versions.
pub(crate) fn recover(dir: &Path, db_version: u64) -> Result<Recovered, StoreError> {
    let listing = list(dir)?;
    for t in &listing.temporary {
        std::fs::remove_file(t).map_err(io("cannot remove", t))?;
    }
    let mut commits = Vec::new();
    let mut next = db_version + 1;
    let mut lost: Option<(u64, usize)> = None;
    for (seq, path) in &listing.segments {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io("cannot read", path))?;
        for frame in decode(*seq, &bytes)? {
            for c in frame.commits {
                if let Some((_, n)) = &mut lost {
                    *n += 1;
                    continue;
                }
                if c.version < next {
                    continue; // already in the database
                }
                if c.version != next {
                    if !frame.synced {
                        // An unsynced frame before this one did not survive: what
                        // follows the hole cannot be applied without it.
                        lost = Some((next, 1));
                        continue;
                    }
                    return Err(StoreError::new(format!(
                        "commit log: versions {next} to {} are missing before segment \
                         {seq:016x} (the database is at {db_version}); refusing to open \
                         rather than lose them",
                        c.version - 1
                    )));
                }
                next += 1;
                commits.push(c);
            }
        }
    }
    Ok(Recovered {
        commits,
        segments: listing.segments,
        lost,
    })
}

/// The segment being written: frames go at `offset`, each synced before the next.
pub(crate) struct Segment {
    pub(crate) seq: u64,
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) offset: u64,
    /// The version of the last commit written here (0: none yet).
    pub(crate) last_version: u64,
}

impl Segment {
    /// Whether a frame of `len` bytes fits in the space left. An empty segment takes a
    /// frame of any size (the file grows past [`SEGMENT_BYTES`] for it).
    pub(crate) fn fits(&self, len: usize) -> bool {
        self.offset == 0 || self.offset + len as u64 <= SEGMENT_BYTES
    }

    /// Writes `frame` at the offset, syncs it when `sync`, and moves the offset past it.
    /// On an error the offset stays, and the frame's first bytes are zeroed (best effort)
    /// so that what was written cannot parse as a frame later.
    pub(crate) fn append(&mut self, frame: &[u8], sync: bool) -> Result<(), StoreError> {
        let r = self.file.write_all_at(frame, self.offset).and_then(|()| {
            if sync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match r {
            Ok(()) => {
                self.offset += frame.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self
                    .file
                    .write_all_at(&[0u8; HEADER], self.offset)
                    .and_then(|()| self.file.sync_data());
                Err(io("cannot write", &self.path)(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Account;
    use inregion_model::{AccountId, Entitlement};

    fn commit(version: u64) -> Commit {
        Commit {
            version,
            changes: vec![Change::Account(Account {
                id: AccountId::parse(&format!("{version:032x}")).unwrap(),
                name: format!("account {version}"),
                entitlements: [Entitlement::RegionalServices].into_iter().collect(),
            })],
        }
    }

    #[test]
    fn frames_round_trip_and_decoding_stops_at_the_first_bad_one() {
        let (a, b, c) = (commit(1), commit(2), commit(3));
        let mut bytes = encode(7, &[&a, &b], true).unwrap();
        bytes.extend(encode(7, &[&c], true).unwrap());
        let whole = bytes.len();
        bytes.extend([0u8; 100]);
        let commits = |f: Vec<Frame>| -> Vec<Vec<Commit>> {
            f.into_iter()
                .map(|f| {
                    assert!(f.synced);
                    f.commits
                })
                .collect()
        };
        assert_eq!(
            commits(decode(7, &bytes).unwrap()),
            vec![vec![a.clone(), b.clone()], vec![c.clone()]]
        );
        let unsynced = encode(7, &[&c], false).unwrap();
        assert_eq!(
            decode(7, &unsynced).unwrap(),
            vec![Frame {
                synced: false,
                commits: vec![c.clone()]
            }]
        );
        // Another segment's number: nothing.
        assert!(decode(8, &bytes).unwrap().is_empty());
        // A torn second frame (cut short, or one byte changed): only the first.
        let first = encode(7, &[&a, &b], true).unwrap().len();
        for cut in [first + 1, first + HEADER, whole - 1] {
            assert_eq!(decode(7, &bytes[..cut]).unwrap().len(), 1, "cut at {cut}");
        }
        for flip in [first, first + 5, first + 13, first + 17, whole - 2] {
            let mut x = bytes.clone();
            x[flip] ^= 0x40;
            assert_eq!(decode(7, &x).unwrap().len(), 1, "byte {flip} changed");
        }
        // A frame whose checksum matches but whose payload is not a batch: an error.
        let mut bad = vec![0u8; HEADER];
        bad.extend(b"not json");
        bad[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        bad[4..12].copy_from_slice(&7u64.to_le_bytes());
        bad[12..16].copy_from_slice(&8u32.to_le_bytes());
        let crc = checksum(&bad[4..16], &bad[HEADER..]);
        bad[16..20].copy_from_slice(&crc.to_le_bytes());
        assert!(decode(7, &bad).is_err());
    }

    #[test]
    fn recovery_keeps_what_the_database_lacks_and_refuses_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write_as = |seq: u64, batches: &[&[u64]], synced: bool| {
            let f = create_zeroed(&segment_path(d, seq)).unwrap();
            let mut bytes = Vec::new();
            for b in batches {
                let cs: Vec<Commit> = b.iter().map(|&v| commit(v)).collect();
                bytes.extend(encode(seq, &cs.iter().collect::<Vec<_>>(), synced).unwrap());
            }
            f.write_all_at(&bytes, 0).unwrap();
        };
        let write = |seq: u64, batches: &[&[u64]]| write_as(seq, batches, true);
        write(3, &[&[1, 2], &[3]]);
        write(4, &[&[4], &[5, 6]]);
        std::fs::write(d.join("0000000000000005.log.tmp"), b"x").unwrap();
        let r = recover(d, 2).unwrap();
        let versions: Vec<u64> = r.commits.iter().map(|c| c.version).collect();
        assert_eq!(versions, vec![3, 4, 5, 6]);
        assert_eq!(r.segments.len(), 2);
        assert!(!d.join("0000000000000005.log.tmp").exists());
        assert!(recover(d, 6).unwrap().commits.is_empty());
        // The database ahead of the log is fine (everything in it was applied).
        assert!(recover(d, 9).unwrap().commits.is_empty());
        // A missing frame between the database and the log is not.
        write(4, &[&[5, 6]]);
        let e = recover(d, 2).err().expect("a gap");
        assert!(e.0.contains("versions 4 to 4 are missing"), "{e}");
        // The same hole among frames written without an fsync: what precedes it is kept.
        write_as(4, &[&[5, 6], &[7]], false);
        let r = recover(d, 2).unwrap();
        let versions: Vec<u64> = r.commits.iter().map(|c| c.version).collect();
        assert_eq!(versions, vec![3]);
        assert_eq!(r.lost, Some((4, 3)));
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let e = lock(dir.path()).expect_err("already locked");
        assert!(e.0.contains("in use by another process"), "{e}");
        drop(held);
        lock(dir.path()).unwrap();
    }

    proptest::proptest! {
        /// Whatever happens to a segment's bytes (cut short, bytes changed, garbage
        /// appended), decoding never panics and yields a prefix of the frames written:
        /// never a changed or invented commit.
        #[test]
        fn damaged_segments_decode_to_a_prefix(
            sizes in proptest::collection::vec(1usize..4, 1..8),
            cut in proptest::option::of(0usize..4000),
            flips in proptest::collection::vec((0usize..4000, 1u8..=255), 0..3),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut v = 0;
            let frames: Vec<Vec<Commit>> = sizes
                .iter()
                .map(|&n| (0..n).map(|_| { v += 1; commit(v) }).collect())
                .collect();
            let mut bytes = Vec::new();
            for f in &frames {
                bytes.extend(encode(9, &f.iter().collect::<Vec<_>>(), true).unwrap());
            }
            bytes.extend(&tail);
            for &(at, x) in &flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= x;
                }
            }
            if let Some(c) = cut {
                bytes.truncate(c.min(bytes.len()));
            }
            // A frame whose checksum still matches after a change decodes to an error
            // or to the original; with a CRC-32 the former is all but impossible here.
            if let Ok(got) = decode(9, &bytes) {
                proptest::prop_assert!(got.len() <= frames.len());
                for (g, want) in got.iter().zip(&frames) {
                    proptest::prop_assert_eq!(&g.commits, want);
                }
                if flips.is_empty() && cut.is_none() {
                    proptest::prop_assert_eq!(got.len(), frames.len());
                }
            }
        }
    }

    #[test]
    fn segment_names() {
        assert_eq!(parse_segment_name("00000000000000a3.log"), Some(0xa3));
        assert_eq!(parse_segment_name("a3.log"), None);
        assert_eq!(parse_segment_name("00000000000000a3.log.tmp"), None);
        assert_eq!(
            segment_path(Path::new("/x"), 0xa3),
            PathBuf::from("/x/00000000000000a3.log")
        );
        assert_eq!(
            dir_of(Path::new("/d/inregion.sqlite")),
            PathBuf::from("/d/inregion.sqlite-log")
        );
    }
}
