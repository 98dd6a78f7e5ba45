//! [`LogStore`]: SQLite behind a commit log of our own (documented on the type).

use super::log::{self, Segment};
use super::sqlite::{Durability, SqliteStore};
use super::{Loaded, Store};
use crate::error::StoreError;
use crate::pipeline::lock as lock_mutex;
use crate::state::Commit;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the applier hands what the log acknowledged to SQLite, in one fsynced
/// transaction. Rarely, because SQLite rewrites every page a transaction touches: at
/// 2,000 creates/s on the development VM, transactions of a few creates each wrote
/// 17 KB per create (34 MB/s), one a second 4-6 KB, one every 5 s 2.5-2.7 KB, and the
/// disk's flushes that requests wait for are the faster for it (p99 of a paced create
/// 12-13 ms against 16-68 ms at one a second). The log holds that much more to replay
/// after a crash: 5 s of writes replay in well under a second.
const APPLY_EVERY: Duration = Duration::from_millis(if cfg!(test) { 2000 } else { 5000 });
/// When no write arrives for this long, the applier applies what it holds at once: with
/// occasional writes (a test pipeline, a person at a terminal) SQLite is never more than
/// this behind, and only a steady stream is batched for [`APPLY_EVERY`].
const APPLY_WHEN_IDLE: Duration = Duration::from_millis(if cfg!(test) { 5 } else { 20 });
/// Batches queued for the applier before a writer waits (back-pressure when SQLite falls
/// behind; memory stays bounded).
const QUEUE_BATCHES: usize = 1 << 16;
/// Commits that make the applier apply before [`APPLY_EVERY`] is up.
const APPLY_MAX: usize = 50_000;

/// State shared by the writer (committer thread) and the applier.
struct Shared {
    dir: PathBuf,
    segments: Mutex<Segments>,
    /// Why writes are refused, once they are.
    failed: Mutex<Option<String>>,
    /// Test hooks: `paused` keeps the applier from applying; `abandon` makes it stop at
    /// once without applying or syncing what it holds (a crash, as far as the database
    /// is concerned).
    #[cfg(test)]
    paused: std::sync::atomic::AtomicBool,
    #[cfg(test)]
    abandon: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Segments {
    /// The number of the segment being written.
    current: u64,
    /// The next segment, created or reused ahead of time by the applier: `(seq, file)`.
    prepared: Option<(u64, std::fs::File)>,
    /// Written-full segments, oldest first, with the last version each holds.
    closed: VecDeque<(u64, PathBuf, u64)>,
    /// Segment files that hold nothing the database lacks, ready for reuse.
    spare: Vec<PathBuf>,
}

enum Msg {
    Apply(Vec<Commit>),
    Load(mpsc::Sender<Result<Loaded, StoreError>>),
}

/// SQLite behind a commit log of our own: the default store of `inregion serve`.
///
/// ```text
///  committer thread                          applier thread (owns the SqliteStore)
///  commit(batch):                            every 5 s (APPLY_EVERY), or once writes
///    frame ─► preallocated segment (pwrite)    pause for 20 ms, or a load or a stop:
///    ─► fdatasync                                every batch received ─► one SQLite
///    ─► batch queued for the applier               transaction, synchronous=FULL
///    ─► acknowledged                             ─► log segments holding only
///                                                  versions now in SQLite are reused
/// ```
///
/// Why: a write is durable once its frame is synced, and that is all a request waits
/// for. With SQLite alone a request also waits out SQLite's pauses: the fsync of a WAL
/// that grows (a file-system journal commit on top of the data) and the WAL restart,
/// which needs every frame copied into the database first (see [`SqliteStore`]). Here
/// they happen on the applier. And SQLite rewrites each page a transaction touches, so
/// one transaction every few seconds instead of one per batch cuts what it writes about
/// six times (at 2,000 creates/s on the development VM: 150-160 MB in 30 s instead of
/// about 1 GB), which also shortens the flushes that requests do wait for.
///
/// Recovery is [`SqliteStore::open`]'s: it applies the log's commits that the database
/// lacks (a crash before the applier's transaction), syncs, and only then reads. So the
/// database plus its log always hold every acknowledged write, and a plain
/// [`SqliteStore`] opened on the file sees them too. The log directory's lock keeps a
/// second process out.
///
/// Failure handling:
/// - a batch that cannot be written or synced fails (500 at the API, nothing changes),
///   and the store refuses later writes until it is reopened: after a failed
///   `fdatasync` the kernel may have dropped the data, so nothing written afterwards
///   could be trusted to follow it. Not being able to prepare the next segment only
///   fails that batch (nothing was written);
/// - SQLite refusing an acknowledged batch (a full disk, say) stops the applier and the
///   store refuses later writes; the batch stays in the log and is applied at the next
///   open, which reports the error if it persists instead of dropping the batch;
/// - dropping the store applies everything queued first.
///
/// Open it with [`LogStore::open`].
pub struct LogStore {
    shared: Arc<Shared>,
    segment: Segment,
    sync: bool,
    tx: Option<SyncSender<Msg>>,
    applier: Option<JoinHandle<()>>,
    db: PathBuf,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("db", &self.db)
            .field("log", &self.shared.dir)
            .finish()
    }
}

impl LogStore {
    /// Opens (creating if needed) the database at `path` and its log directory
    /// `<path>-log`, applying whatever the log holds that the database lacks.
    /// `durability` says whether each batch's frame is fsynced ([`Durability::Full`]) or
    /// only written ([`Durability::Process`]: survives a crash of the process, not of
    /// the machine).
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let db = path.as_ref().to_path_buf();
        let dir = log::dir_of(&db);
        std::fs::create_dir_all(&dir).map_err(log::io("cannot create", &dir))?;
        // Takes the directory's lock and applies the log (SqliteStore::open's recovery).
        let mut sqlite = SqliteStore::open_applier(&db)?;
        let spent = sqlite.take_spent_segments();
        let first = spent.iter().map(|(s, _)| s + 1).max().unwrap_or(1);
        let mut spare: Vec<PathBuf> = spent.into_iter().map(|(_, p)| p).collect();
        // The first segment: a spent one renamed, or a new one.
        let path0 = log::segment_path(&dir, first);
        let file = match spare.pop() {
            Some(old) => reuse(&old, &path0)?,
            None => log::create_zeroed(&path0)?,
        };
        log::sync_dir(&dir)?;
        let shared = Arc::new(Shared {
            dir,
            segments: Mutex::new(Segments {
                current: first,
                spare,
                ..Segments::default()
            }),
            failed: Mutex::new(None),
            #[cfg(test)]
            paused: Default::default(),
            #[cfg(test)]
            abandon: Default::default(),
        });
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let s = Arc::clone(&shared);
        let applier = std::thread::Builder::new()
            .name("inregion-apply-sqlite".into())
            .spawn(move || apply_loop(&s, sqlite, &rx))
            .map_err(|e| StoreError::new(format!("cannot start the applier thread: {e}")))?;
        Ok(Self {
            shared,
            segment: Segment {
                seq: first,
                file,
                path: path0,
                offset: 0,
                last_version: 0,
            },
            sync: durability == Durability::Full,
            tx: Some(tx),
            applier: Some(applier),
            db,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db
    }

    /// The log directory (`<database>-log`).
    pub fn log_dir(&self) -> &Path {
        &self.shared.dir
    }

    fn refused(&self) -> Option<StoreError> {
        lock_mutex(&self.shared.failed).as_ref().map(|why| {
            StoreError::new(format!(
                "{why}; writes are refused until the store is reopened \
                 (every acknowledged write is safe)"
            ))
        })
    }

    fn fail(&self, why: String) {
        lock_mutex(&self.shared.failed).get_or_insert(why);
    }

    /// Closes the current segment and moves to the next: the prepared one when the
    /// applier has it ready, else one made here (slower: a new file is filled). Holds
    /// the segment lock throughout, so that the applier never renames a file onto the
    /// name being created here.
    fn roll(&mut self) -> Result<(), StoreError> {
        let next = self.segment.seq + 1;
        let path = log::segment_path(&self.shared.dir, next);
        let mut s = lock_mutex(&self.shared.segments);
        let file = match s.prepared.take() {
            Some((seq, f)) if seq == next => f,
            Some((seq, _)) => {
                return Err(StoreError::new(format!(
                    "commit log: prepared segment {seq:016x} where {next:016x} was expected"
                )))
            }
            None => {
                let f = match s.spare.pop() {
                    Some(old) => reuse(&old, &path)?,
                    None => log::create_zeroed(&path)?,
                };
                log::sync_dir(&self.shared.dir)?;
                f
            }
        };
        let old = std::mem::replace(
            &mut self.segment,
            Segment {
                seq: next,
                file,
                path,
                offset: 0,
                last_version: 0,
            },
        );
        s.current = next;
        s.closed.push_back((old.seq, old.path, old.last_version));
        Ok(())
    }
}

impl Store for LogStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let (reply, answer) = mpsc::channel();
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(Msg::Load(reply)).ok())
            .ok_or_else(|| StoreError::new("the applier thread has stopped"))?;
        answer
            .recv()
            .map_err(|_| StoreError::new("the applier thread has stopped"))?
    }

    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError> {
        let Some(last) = commits.last() else {
            return Ok(());
        };
        if let Some(e) = self.refused() {
            return Err(e);
        }
        let mut frame = log::encode(self.segment.seq, commits, self.sync)?;
        if !self.segment.fits(frame.len()) {
            // Nothing is written when this fails: the batch fails, later ones may work.
            self.roll()?;
            log::seal(&mut frame, self.segment.seq);
        }
        if let Err(e) = self.segment.append(&frame, self.sync) {
            self.fail(e.0.clone());
            return Err(e);
        }
        self.segment.last_version = last.version;
        let batch: Vec<Commit> = commits.iter().map(|&c| c.clone()).collect();
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Apply(batch)).is_ok());
        if !sent {
            // The applier is gone (it only stops on a failure it has recorded): the
            // batch is durable in the log and applied at the next open.
            self.fail("the applier thread has stopped".into());
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        // The applier applies and syncs everything queued, then returns.
        drop(self.tx.take());
        if let Some(t) = self.applier.take() {
            let _ = t.join();
        }
    }
}

fn apply_loop(shared: &Shared, mut db: SqliteStore, rx: &Receiver<Msg>) {
    let mut pending: Vec<Commit> = Vec::new();
    let mut loads = Vec::new();
    let mut last_apply = Instant::now();
    let mut stopping = false;
    let mut failed = false;
    while !stopping {
        // Collect batches until the next apply is due, the writes pause, or a load or a
        // stop needs one.
        let due = last_apply + APPLY_EVERY;
        let mut wait = due.saturating_duration_since(Instant::now());
        if !pending.is_empty() {
            wait = wait.min(APPLY_WHEN_IDLE);
        }
        let mut idle = false;
        match rx.recv_timeout(wait) {
            Ok(Msg::Apply(b)) => pending.extend(b),
            Ok(Msg::Load(reply)) => loads.push(reply),
            Err(RecvTimeoutError::Timeout) => idle = !pending.is_empty(),
            Err(RecvTimeoutError::Disconnected) => stopping = true,
        }
        let apply_now = stopping
            || idle
            || !loads.is_empty()
            || pending.len() >= APPLY_MAX
            || Instant::now() >= due;
        if !apply_now {
            continue;
        }
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering::SeqCst;
            if shared.abandon.load(SeqCst) {
                return;
            }
            if shared.paused.load(SeqCst) && !stopping {
                last_apply = Instant::now();
                continue;
            }
        }
        last_apply = Instant::now();
        if !pending.is_empty() && !failed {
            // One transaction, fsynced (synchronous=FULL): what it holds is durable in
            // the database when it returns, and the log segments of it may be reused.
            let refs: Vec<&Commit> = pending.iter().collect();
            let last = refs.last().map_or(0, |c| c.version);
            match db.commit(&refs) {
                Ok(()) => recycle(shared, last),
                Err(e) => {
                    failed = true;
                    *lock_mutex(&shared.failed) = Some(format!(
                        "the database could not apply acknowledged writes ({e}); \
                         they are kept in the commit log and applied when it is reopened"
                    ));
                }
            }
            pending.clear();
        }
        for reply in loads.drain(..) {
            let _ = reply.send(db.load());
        }
        if !stopping && !failed {
            // Reuse is an optimisation: when it fails, the writer makes its own segment.
            let _ = prepare_next(shared);
        }
    }
    // On a clean stop everything was applied above, so every segment is spent and the
    // next open has nothing to replay (the files stay, to be reused).
}

/// Moves closed segments whose versions are all durable in the database to the spares.
fn recycle(shared: &Shared, durable: u64) {
    let mut s = lock_mutex(&shared.segments);
    while s.closed.front().is_some_and(|&(_, _, v)| v <= durable) {
        let (_, path, _) = s.closed.pop_front().expect("checked");
        s.spare.push(path);
    }
}

/// Makes sure the segment after the current one exists, reusing a spare when there is
/// one. The slow part (filling a new file) runs without the lock.
fn prepare_next(shared: &Shared) -> Result<(), StoreError> {
    let (want, spare) = {
        let mut s = lock_mutex(&shared.segments);
        if s.prepared.is_some() {
            return Ok(());
        }
        (s.current + 1, s.spare.pop())
    };
    let tmp = shared.dir.join(format!("{want:016x}.log.tmp"));
    match spare {
        Some(old) => drop(reuse(&old, &tmp)?),
        None => drop(log::create_zeroed(&tmp)?),
    }
    let mut s = lock_mutex(&shared.segments);
    if s.current + 1 != want || s.prepared.is_some() {
        // The writer rolled meanwhile and made its own: keep this one for later.
        drop(s);
        let keep = shared.dir.join(format!("spare-{want:016x}.log.tmp"));
        std::fs::rename(&tmp, &keep).map_err(log::io("cannot rename", &tmp))?;
        lock_mutex(&shared.segments).spare.push(keep);
        return Ok(());
    }
    // Under the lock, so that the writer cannot roll past `want` in between.
    let path = log::segment_path(&shared.dir, want);
    let f = reuse(&tmp, &path)?;
    log::sync_dir(&shared.dir)?;
    s.prepared = Some((want, f));
    Ok(())
}

/// Renames the segment file `old` to `new` and opens it for writing. Its stale frames
/// carry the old segment number, so none of them parses as a frame of the new one.
fn reuse(old: &Path, new: &Path) -> Result<std::fs::File, StoreError> {
    std::fs::rename(old, new).map_err(|e| {
        StoreError::new(format!(
            "commit log: cannot rename {} to {}: {e}",
            old.display(),
            new.display()
        ))
    })?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(new)
        .map_err(log::io("cannot open", new))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{account, binding, prefix};
    use super::*;
    use crate::state::{Change, State};
    use std::sync::atomic::Ordering::SeqCst;

    /// `n` commits after a first one with the account and the prefix: one binding each.
    fn commits(n: u64) -> Vec<Commit> {
        let a = account();
        let p = prefix(&a);
        let mut out = vec![Commit {
            version: 1,
            changes: vec![Change::Account(a.clone()), Change::Prefix(p.clone())],
        }];
        for i in 0..n {
            let cidr = format!("203.0.{}.{}/32", 112 + i / 256, i % 256);
            out.push(Commit {
                version: i + 2,
                changes: vec![Change::Binding(binding(&a, &p, &cidr, i + 2))],
            });
        }
        out
    }

    fn state_of(l: Loaded) -> State {
        let mut s = State::default();
        for r in l.records {
            s.apply(r);
        }
        s.version = l.version;
        s
    }

    fn segment_files(dir: &Path) -> usize {
        log::list(dir).unwrap().segments.len()
    }

    /// Commits the log acknowledged but SQLite never received (the applier stopped as in
    /// a crash) are in the database at the next open, through either store.
    #[test]
    fn acknowledged_commits_missing_from_sqlite_are_recovered() {
        for plain in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("s.db");
            let all = commits(300);
            let mut want = State::default();
            let mut s = LogStore::open(&db, Durability::Full).unwrap();
            for c in &all[..100] {
                s.commit(&[c]).unwrap();
                want.apply_commit(c);
            }
            // Let the applier catch up, then hold it: the rest reach only the log.
            while SqliteStore::count_in(&db) < 99 {
                std::thread::sleep(Duration::from_millis(5));
            }
            s.shared.paused.store(true, SeqCst);
            for chunk in all[100..].chunks(7) {
                let refs: Vec<&Commit> = chunk.iter().collect();
                s.commit(&refs).unwrap();
                for c in chunk {
                    want.apply_commit(c);
                }
            }
            assert!(
                segment_files(s.log_dir()) > 1,
                "the test must span segments"
            );
            s.shared.abandon.store(true, SeqCst);
            drop(s);
            assert!(
                SqliteStore::count_in(&db) < 300,
                "SQLite must lack some commits"
            );
            let loaded = if plain {
                let mut s = SqliteStore::open(&db).unwrap();
                assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
                assert_eq!(s.count_live_bindings().unwrap(), 300);
                s.load().unwrap()
            } else {
                LogStore::open(&db, Durability::Full)
                    .unwrap()
                    .load()
                    .unwrap()
            };
            assert_eq!(state_of(loaded).dump(), want.dump(), "plain: {plain}");
        }
    }

    /// Under a long stream of commits the log reuses its segments instead of growing,
    /// and a clean close leaves nothing to replay.
    #[test]
    fn segments_are_reused_and_a_clean_close_leaves_nothing_to_replay() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let all = commits(2000);
        let mut s = LogStore::open(&db, Durability::Process).unwrap();
        let mut most = 0;
        for (i, c) in all.iter().enumerate() {
            s.commit(&[c]).unwrap();
            most = most.max(segment_files(s.log_dir()));
            if i % 100 == 99 {
                // Writes arriving slower than the applier applies them (as in a server).
                std::thread::sleep(APPLY_WHEN_IDLE * 4);
            }
        }
        let bytes: usize = all
            .iter()
            .map(|c| log::encode(1, &[c], false).unwrap().len())
            .sum();
        let written = bytes.div_ceil(log::SEGMENT_BYTES as usize);
        assert!(written > 20, "the test must fill many segments ({written})");
        assert!(
            most < written / 2,
            "{most} segment files for {written} segments' worth of frames: not reused"
        );
        let log_dir = s.log_dir().to_path_buf();
        drop(s);
        assert_eq!(SqliteStore::count_in(&db), 2000);
        let version = SqliteStore::open(&db).unwrap().load().unwrap().version;
        assert!(log::recover(&log_dir, version).unwrap().commits.is_empty());
    }

    /// A batch SQLite refuses after the log acknowledged it (here: a second live binding
    /// on one CIDR, which the rules never produce) stops writes with a clear error; the
    /// batch is not lost, and the next open reports it instead of dropping it.
    #[test]
    fn a_batch_sqlite_refuses_stops_writes_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let all = commits(1);
        let mut s = LogStore::open(&db, Durability::Full).unwrap();
        s.commit(&[&all[0]]).unwrap();
        s.commit(&[&all[1]]).unwrap();
        while SqliteStore::count_in(&db) < 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let a = account();
        let dup = Commit {
            version: 3,
            changes: vec![Change::Binding(binding(
                &a,
                &prefix(&a),
                "203.0.112.0/32",
                3,
            ))],
        };
        s.commit(&[&dup]).unwrap();
        let refused = (0..200).find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            s.refused()
        });
        let e = refused.expect("writes refused once SQLite failed");
        assert!(e.0.contains("could not apply acknowledged writes"), "{e}");
        assert!(s.commit(&[&commits(2)[2]]).is_err());
        drop(s);
        let e = SqliteStore::open(&db).expect_err("the kept batch fails again");
        assert!(e.0.contains("applying the commit log"), "{e}");
        assert_eq!(SqliteStore::count_in(&db), 1);
    }

    /// Occasional writes reach SQLite as soon as they pause, not a whole
    /// [`APPLY_EVERY`] later (someone reading the database file sees them); a steady
    /// stream is batched.
    #[test]
    fn a_pause_in_writes_applies_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let all = commits(1);
        let mut s = LogStore::open(&db, Durability::Full).unwrap();
        let started = Instant::now();
        s.commit(&[&all[0]]).unwrap();
        s.commit(&[&all[1]]).unwrap();
        while SqliteStore::count_in(&db) < 1 {
            assert!(
                started.elapsed() < APPLY_EVERY,
                "not applied when writes paused"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            started.elapsed() < APPLY_EVERY / 2,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_second_open_of_one_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let s = LogStore::open(&db, Durability::Full).unwrap();
        for e in [
            LogStore::open(&db, Durability::Full).err(),
            SqliteStore::open(&db).err(),
        ] {
            let e = e.expect("refused");
            assert!(e.0.contains("in use by another process"), "{e}");
        }
        drop(s);
        drop(LogStore::open(&db, Durability::Full).unwrap());
    }
}
