//! The checkpointer: copies the WAL into the database file off the request path.
//!
//! SQLite's automatic checkpoint (every 1,000 WAL pages) runs inside the COMMIT that
//! crosses the threshold: it copies every page changed since the last checkpoint into the
//! database file and fsyncs it while that batch, and every writer queued behind it,
//! waits — tens of milliseconds on a VM disk, which was the whole p99 of durable writes
//! when measured. So the writer connection has `wal_autocheckpoint=0`, and this thread
//! (a connection of its own) works in two phases:
//!
//! 1. PASSIVE checkpoints copy the bulk of the frames while commits go on;
//! 2. once few frames are left, one short PASSIVE checkpoint runs while holding the
//!    commit gate, after which the WAL is fully copied and the next commit starts it
//!    again from the beginning (truncated to [`JOURNAL_SIZE_LIMIT`]).
//!
//! A PASSIVE checkpoint alone never lets the WAL restart under steady writes (new frames
//! keep arriving), which is why the short gated phase exists; it also bounds the WAL:
//! past [`WAL_HARD_LIMIT_FRAMES`] the gated phase runs whatever is left. Durability is
//! unchanged: a COMMIT still fsyncs the WAL, and a checkpoint only copies committed
//! frames. The thread stops and is joined when the store is dropped.

use crate::error::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the checkpointer looks at the WAL when it has nothing to do.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(if cfg!(test) { 10 } else { 200 });
/// The WAL is restarted (gated phase) once it holds this many frames (16 MiB of 4 KiB
/// pages): a checkpoint fsyncs the database file, so it runs every few seconds under
/// load, not after every batch.
const WAL_RESTART_FRAMES: i64 = if cfg!(test) { 32 } else { 4096 };
/// The gated phase starts once at most this many frames are left to copy (a few
/// milliseconds of copying while commits wait).
const GATED_MAX_FRAMES: i64 = if cfg!(test) { 16 } else { 256 };
/// Past this many frames (256 MiB), the gated phase runs whatever is left: a stall, but
/// the WAL stays bounded when the bulk phase cannot keep up.
const WAL_HARD_LIMIT_FRAMES: i64 = 65_536;
/// The WAL file is truncated back to this size (bytes) when it restarts.
pub(super) const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

/// The checkpointer thread (module docs). Dropping it stops and joins the thread.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: (frames in the WAL, frames copied), or `None` when
/// it could not run (another checkpoint in progress, I/O error): tried again later.
fn passive_checkpoint(conn: &Connection) -> Option<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })
    .ok()
    .filter(|&(busy, _, _)| busy == 0)
    .map(|(_, log, done)| (log, done))
}

impl Checkpointer {
    pub(super) fn start(path: &Path, gate: Arc<Mutex<()>>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        // FULL: the checkpoint fsyncs the WAL before copying and the database after.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut wait = CHECKPOINT_EVERY;
                // Runs until the store drops the sender.
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                    wait = CHECKPOINT_EVERY;
                    let Some((log, done)) = passive_checkpoint(&conn) else {
                        continue;
                    };
                    if log < WAL_RESTART_FRAMES {
                        continue;
                    }
                    if log - done <= GATED_MAX_FRAMES || log >= WAL_HARD_LIMIT_FRAMES {
                        // Commits wait for the few frames left; then the WAL is fully
                        // copied and the next commit restarts it.
                        let _gate = gate.lock().unwrap_or_else(|p| p.into_inner());
                        passive_checkpoint(&conn);
                    } else {
                        // Frames arrived while copying: go again at once (catch up).
                        wait = Duration::ZERO;
                    }
                }
            })
            .map_err(|e| StoreError::internal(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
