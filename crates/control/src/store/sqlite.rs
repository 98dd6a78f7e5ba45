//! The embedded SQLite store: on its own a complete [`Store`], and the database behind
//! [`LogStore`](super::LogStore) (the default of `inregion serve`).
//!
//! - `journal_mode=WAL`, `synchronous=FULL`: every COMMIT fsyncs the WAL before it
//!   returns, so a batch acknowledged by [`Store::commit`] survives a crash.
//!   [`Durability::Process`] (opt-in) uses `synchronous=NORMAL` instead: no fsync per
//!   commit, durable against a crash of the process but not of the OS.
//! - One `BEGIN IMMEDIATE … COMMIT` per batch: group commit amortises the fsync over
//!   every operation queued while the previous batch was syncing.
//! - Schema migrations keyed by `PRAGMA user_version`.
//! - Checkpoints off the commit path. SQLite's automatic checkpoint (every 1,000 WAL
//!   pages) runs inside the COMMIT that crosses the threshold: it copies every page
//!   changed since the last checkpoint into the database file and fsyncs it while that
//!   batch, and every writer queued behind it, waits — tens of milliseconds on a VM disk,
//!   which was the whole p99 of durable writes. Here the writer connection has
//!   `wal_autocheckpoint=0` and a checkpointer thread (its own connection) works in two
//!   phases, see [`Checkpointer`]: PASSIVE checkpoints that copy the bulk of the frames
//!   while commits go on, then, once few frames are left, one short PASSIVE checkpoint
//!   while holding the commit gate, after which the WAL is fully copied and the next
//!   commit starts it again from the beginning (truncated to [`JOURNAL_SIZE_LIMIT`]). A
//!   PASSIVE checkpoint alone never lets the WAL restart under steady writes (new frames
//!   keep arriving), which is why the short gated phase exists; it also bounds the WAL:
//!   past [`WAL_HARD_LIMIT_FRAMES`] the gated phase runs whatever is left. Durability is
//!   unchanged: a COMMIT still fsyncs the WAL, and a checkpoint only copies committed
//!   frames. The thread stops and is joined when the store is dropped.
//! - A commit log beside the database (`<path>-log`, see [`LogStore`](super::LogStore))
//!   is locked and recovered at open: its commits the database lacks are applied before
//!   anything is read, so a plain `SqliteStore` sees every write acknowledged through
//!   the log, and two processes never write one database.
//! - Constraints mirror the rules: one live binding per `(prefix_id, cidr)` (a partial
//!   unique index), unique prefix CIDRs, unique token hashes, unique region keys,
//!   foreign keys to accounts and prefixes.

use super::{Loaded, Store};
use crate::auth::{TokenRecord, UserRecord};
use crate::error::StoreError;
use crate::records::{Account, AddressMap, BindingRecord, CustomRegion, Prefix};
use crate::state::{Change, Commit};
use inregion_model::{Cidr, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
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
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

/// The schema, one entry per version; entry `i` moves `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('version', 0);

CREATE TABLE accounts (
    id   TEXT PRIMARY KEY CHECK (length(id) = 32),
    body TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    email TEXT PRIMARY KEY,
    body  TEXT NOT NULL
) STRICT;

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    body        TEXT NOT NULL
) STRICT;

CREATE TABLE prefixes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    cidr       TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL
) STRICT;

CREATE TABLE regions (
    id         TEXT PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    body       TEXT NOT NULL
) STRICT;

CREATE TABLE bindings (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    prefix_id       TEXT NOT NULL REFERENCES prefixes (id),
    cidr            TEXT NOT NULL,
    region          TEXT NOT NULL,
    previous_region TEXT,
    created_at      INTEGER NOT NULL,
    changed_at      INTEGER NOT NULL,
    active_at       INTEGER NOT NULL,
    deleted_at      INTEGER,
    gone_at         INTEGER,
    version         INTEGER NOT NULL,
    CHECK ((deleted_at IS NULL) = (gone_at IS NULL)),
    CHECK (created_at <= changed_at)
) STRICT;
CREATE UNIQUE INDEX bindings_live_cidr ON bindings (prefix_id, cidr) WHERE deleted_at IS NULL;
CREATE INDEX bindings_version ON bindings (version);

CREATE TABLE address_maps (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    body       TEXT NOT NULL
) STRICT;

CREATE TABLE address_map_ips (
    map_id TEXT NOT NULL REFERENCES address_maps (id) ON DELETE CASCADE,
    ip     TEXT NOT NULL,
    PRIMARY KEY (map_id, ip)
) STRICT;
"#];

/// How far a commit is durable once [`Store::commit`] has returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL` (the default): the WAL is fsynced at every commit, so an
    /// acknowledged write survives a power loss or an OS crash as well as a crash of
    /// the process.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit is written to the WAL (the OS page cache) but not
    /// fsynced. An acknowledged write survives a crash or kill of the process, not an
    /// OS crash or power loss, which can lose the last commits (never corrupt the
    /// database: checkpoints still fsync). Commits then cost no disk flush: for test
    /// pipelines on slow CI disks.
    Process,
}

/// The SQLite store. See the module docs.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Held by every commit; the checkpointer's gated phase holds it too.
    gate: Arc<Mutex<()>>,
    checkpointer: Option<Checkpointer>,
    /// The commit log directory's lock, held while a log directory exists beside the
    /// database ([`LogStore`](super::LogStore)); `None` without one.
    log_lock: Option<std::fs::File>,
    /// The log's segment files after recovery: every commit in them is in the database.
    spent_segments: Vec<(u64, PathBuf)>,
    /// The `synchronous` level of commits (`FULL` or `NORMAL`).
    synchronous: &'static str,
}

/// The checkpointer thread (module docs). Dropping it stops and joins the thread.
struct Checkpointer {
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
    fn start(path: &Path, gate: Arc<Mutex<()>>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(e)?;
        // FULL: the checkpoint fsyncs the WAL before copying and the database after.
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(e)?;
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
            .map_err(e)?;
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

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn e(err: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("sqlite: {err}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it, with
    /// [`Durability::Full`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (creating if needed) the database at `path` and migrates it; commits are
    /// as durable as `durability` says.
    ///
    /// When a commit log (`<path>-log`, written by [`LogStore`](super::LogStore)) is
    /// beside the database, its lock is taken (an error if another process holds it) and
    /// the commits it holds that the database lacks are applied and synced before this
    /// returns: what was acknowledged through the log is never missing here.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), durability)
    }

    /// The database under a [`LogStore`](super::LogStore), the log recovered as in
    /// [`open_with`](Self::open_with). `synchronous=FULL`: the applier commits every few
    /// seconds, and a commit must be durable before the log's copy of it is reused.
    pub(crate) fn open_applier(path: &Path) -> Result<Self, StoreError> {
        Self::open_inner(path, Durability::Full)
    }

    /// The log's segment files found at open, all spent (see `open_with`).
    pub(crate) fn take_spent_segments(&mut self) -> Vec<(u64, PathBuf)> {
        std::mem::take(&mut self.spent_segments)
    }

    /// Makes every commit so far durable: one `synchronous=FULL` commit, whose WAL fsync
    /// covers every frame before it (needed after a recovery under `NORMAL`).
    fn sync(&mut self) -> Result<(), StoreError> {
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(e)?;
        let r = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .and_then(|tx| {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('syncs', 1)
                     ON CONFLICT (key) DO UPDATE SET value = value + 1",
                    [],
                )?;
                tx.commit()
            })
            .map_err(e);
        let back = self
            .conn
            .pragma_update(None, "synchronous", self.synchronous)
            .map_err(e);
        r.and(back)
    }

    fn open_inner(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let log_dir = super::log::dir_of(&path);
        // Before SQLite: the lock also keeps a second process from writing the database.
        let log_lock = if log_dir.is_dir() {
            Some(super::log::lock(&log_dir)?)
        } else {
            None
        };
        let conn = Connection::open(&path).map_err(e)?;
        // WAL + FULL: a COMMIT returns after the WAL is fsync'd (NORMAL: after it is
        // written). busy_timeout covers a second process (e.g. a checker) holding a read
        // lock briefly.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Process => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(e)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e)?;
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(e)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(e(format!("journal_mode is {mode}, WAL required")));
        }
        // Checkpoints are the checkpointer thread's job (module docs).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(e)?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
            .map_err(e)?;
        // Start from an empty WAL: what a previous run left is copied and the file
        // truncated (best effort: another process reading may keep it from completing).
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let gate = Arc::new(Mutex::new(()));
        let mut s = Self {
            conn,
            path,
            gate,
            checkpointer: None,
            log_lock,
            spent_segments: Vec::new(),
            synchronous,
        };
        s.migrate()?;
        if s.log_lock.is_some() {
            s.recover_log(&log_dir)?;
        }
        s.checkpointer = Some(Checkpointer::start(&s.path, Arc::clone(&s.gate))?);
        Ok(s)
    }

    /// Applies the commit log's commits that the database lacks, then syncs them.
    fn recover_log(&mut self, dir: &Path) -> Result<(), StoreError> {
        let version = self.stored_version()?;
        let found = super::log::recover(dir, version)?;
        for chunk in found.commits.chunks(1024) {
            let refs: Vec<&Commit> = chunk.iter().collect();
            self.commit(&refs)
                .map_err(|x| e(format!("applying the commit log: {}", x.0)))?;
        }
        if let Some((from, dropped)) = found.lost {
            tracing::warn!(
                log = %dir.display(),
                from_version = from,
                dropped,
                "commit log: writes from version {from} on were written without fsync \
                 (--durability process) and did not all survive a crash of the machine; \
                 {dropped} after the first missing one are left out"
            );
        }
        if !found.commits.is_empty() {
            tracing::info!(
                log = %dir.display(),
                commits = found.commits.len(),
                "commit log: applied writes the database did not have yet (after a crash)"
            );
            self.sync()?;
        }
        self.spent_segments = found.segments;
        Ok(())
    }

    fn stored_version(&self) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(e)?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let have: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(e)?;
        let have = usize::try_from(have).map_err(e)?;
        if have > MIGRATIONS.len() {
            return Err(e(format!(
                "database schema version {have} is newer than this program ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
            let tx = self.conn.transaction().map_err(e)?;
            tx.execute_batch(m).map_err(e)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(e)?;
            tx.commit().map_err(e)?;
        }
        Ok(())
    }

    /// Runs `PRAGMA integrity_check` and returns its rows (`["ok"]` when sound).
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare("PRAGMA integrity_check").map_err(e)?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        Ok(rows)
    }

    /// Live bindings in the database file at `path`, read with a connection of its own
    /// (no lock, no recovery): what SQLite itself holds right now. For tests.
    #[cfg(test)]
    pub(crate) fn count_in(path: &Path) -> u64 {
        Connection::open(path)
            .and_then(|c| count_live(&c))
            .unwrap_or(0)
    }

    /// Number of live (not deleted) bindings, straight from SQL (for checks).
    pub fn count_live_bindings(&self) -> Result<u64, StoreError> {
        count_live(&self.conn).map_err(e)
    }

    fn write(tx: &rusqlite::Transaction<'_>, ch: &Change) -> Result<(), StoreError> {
        match ch {
            Change::Account(a) => {
                let body = json(a)?;
                tx.prepare_cached(
                    "INSERT INTO accounts (id, body) VALUES (?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                )
                .and_then(|mut s| s.execute(params![a.id.as_str(), body]))
                .map_err(e)?;
            }
            Change::User(u) => {
                let body = json(u)?;
                tx.prepare_cached(
                    "INSERT INTO users (email, body) VALUES (?1, ?2)
                     ON CONFLICT (email) DO UPDATE SET body = excluded.body",
                )
                .and_then(|mut s| s.execute(params![u.email, body]))
                .map_err(e)?;
            }
            Change::Token(t) => {
                let body = json(t)?;
                tx.prepare_cached(
                    "INSERT INTO tokens (id, secret_hash, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash,
                                                    body = excluded.body",
                )
                .and_then(|mut s| s.execute(params![t.id.as_str(), t.secret_hash.to_hex(), body]))
                .map_err(e)?;
            }
            Change::Prefix(p) => {
                let body = json(p)?;
                tx.prepare_cached(
                    "INSERT INTO prefixes (id, account_id, cidr, body) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id,
                        cidr = excluded.cidr, body = excluded.body",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        p.id.as_str(),
                        p.account_id.as_str(),
                        p.cidr.to_string(),
                        body
                    ])
                })
                .map_err(e)?;
            }
            Change::Region(r) => {
                let body = json(r)?;
                tx.prepare_cached(
                    "INSERT INTO regions (id, key, account_id, body) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET key = excluded.key,
                        account_id = excluded.account_id, body = excluded.body",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        r.definition.id.to_string(),
                        r.definition.key.as_str(),
                        r.account_id.as_str(),
                        body
                    ])
                })
                .map_err(e)?;
            }
            Change::Binding(b) => {
                tx.prepare_cached(
                    "INSERT INTO bindings (id, account_id, prefix_id, cidr, region, previous_region,
                        created_at, changed_at, active_at, deleted_at, gone_at, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id,
                        prefix_id = excluded.prefix_id, cidr = excluded.cidr,
                        region = excluded.region, previous_region = excluded.previous_region,
                        created_at = excluded.created_at, changed_at = excluded.changed_at,
                        active_at = excluded.active_at, deleted_at = excluded.deleted_at,
                        gone_at = excluded.gone_at, version = excluded.version",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        b.id.to_string(),
                        b.account_id.as_str(),
                        b.prefix_id.as_str(),
                        b.cidr.to_string(),
                        b.region.as_str(),
                        b.previous_region.as_ref().map(|r| r.as_str()),
                        b.created_at.as_micros(),
                        b.changed_at.as_micros(),
                        b.active_at.as_micros(),
                        b.deleted_at.map(Timestamp::as_micros),
                        b.gone_at.map(Timestamp::as_micros),
                        b.version as i64,
                    ])
                })
                .map_err(e)?;
            }
            Change::AddressMap(m) => {
                let body = json(m)?;
                tx.prepare_cached(
                    "INSERT INTO address_maps (id, account_id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id,
                        body = excluded.body",
                )
                .and_then(|mut s| s.execute(params![m.id.as_str(), m.account_id.as_str(), body]))
                .map_err(e)?;
                tx.prepare_cached("DELETE FROM address_map_ips WHERE map_id = ?1")
                    .and_then(|mut s| s.execute(params![m.id.as_str()]))
                    .map_err(e)?;
                let mut ins = tx
                    .prepare_cached("INSERT INTO address_map_ips (map_id, ip) VALUES (?1, ?2)")
                    .map_err(e)?;
                for ip in &m.ips {
                    ins.execute(params![
                        m.id.as_str(),
                        inregion_model::cidr::canonical_ip(ip.ip)
                    ])
                    .map_err(e)?;
                }
            }
            Change::DeleteAddressMap(id) => {
                tx.prepare_cached("DELETE FROM address_maps WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id.as_str()]))
                    .map_err(e)?;
            }
        }
        Ok(())
    }
}

fn count_live(c: &Connection) -> rusqlite::Result<u64> {
    c.query_row(
        "SELECT count(*) FROM bindings WHERE deleted_at IS NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// A record's JSON document (the `body` columns). Address maps omit their account id
/// (it has its own column).
fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|x| StoreError::new(format!("encode: {x}")))
}

fn de<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|x| e(format!("decode {x}: {s}")))
}

fn parse<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|x| e(format!("stored value: {x}")))
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let version = self.stored_version()?;
        let c = &self.conn;
        let mut records = Vec::new();
        let bodies = |sql: &str| -> Result<Vec<(String, String)>, StoreError> {
            let mut st = c.prepare(sql).map_err(e)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(e)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(e)?;
            Ok(rows)
        };
        for (_, b) in bodies("SELECT id, body FROM accounts ORDER BY id")? {
            records.push(Change::Account(de::<Account>(&b)?));
        }
        for (_, b) in bodies("SELECT email, body FROM users ORDER BY email")? {
            records.push(Change::User(de::<UserRecord>(&b)?));
        }
        for (_, b) in bodies("SELECT id, body FROM tokens ORDER BY id")? {
            records.push(Change::Token(de::<TokenRecord>(&b)?));
        }
        for (_, b) in bodies("SELECT id, body FROM prefixes ORDER BY id")? {
            records.push(Change::Prefix(de::<Prefix>(&b)?));
        }
        for (_, b) in bodies("SELECT id, body FROM regions ORDER BY id")? {
            records.push(Change::Region(de::<CustomRegion>(&b)?));
        }
        {
            #[derive(serde::Deserialize)]
            struct MapBody {
                id: inregion_model::AddressMapId,
                description: Option<String>,
                default_sni: Option<String>,
                enabled: bool,
                can_delete: bool,
                can_modify_ips: bool,
                created_at: Timestamp,
                modified_at: Timestamp,
                ips: Vec<crate::records::AddressMapIp>,
                memberships: Vec<crate::records::Membership>,
            }
            let mut st = c
                .prepare("SELECT account_id, body FROM address_maps ORDER BY id")
                .map_err(e)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(e)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(e)?;
            for (account, body) in rows {
                let m: MapBody = de(&body)?;
                records.push(Change::AddressMap(AddressMap {
                    id: m.id,
                    account_id: parse(inregion_model::AccountId::parse(&account))?,
                    description: m.description,
                    default_sni: m.default_sni,
                    enabled: m.enabled,
                    can_delete: m.can_delete,
                    can_modify_ips: m.can_modify_ips,
                    created_at: m.created_at,
                    modified_at: m.modified_at,
                    ips: m.ips,
                    memberships: m.memberships,
                }));
            }
        }
        let mut st = c
            .prepare(
                "SELECT id, account_id, prefix_id, cidr, region, previous_region, created_at,
                        changed_at, active_at, deleted_at, gone_at, version
                 FROM bindings ORDER BY id",
            )
            .map_err(e)?;
        let mut rows = st.query([]).map_err(e)?;
        while let Some(r) = rows.next().map_err(e)? {
            let get_s = |i: usize| r.get::<_, String>(i).map_err(e);
            let prev: Option<String> = r.get(5).map_err(e)?;
            let deleted: Option<i64> = r.get(9).map_err(e)?;
            let gone: Option<i64> = r.get(10).map_err(e)?;
            let b = BindingRecord {
                id: parse(inregion_model::BindingId::parse(&get_s(0)?))?,
                account_id: parse(inregion_model::AccountId::parse(&get_s(1)?))?,
                prefix_id: parse(inregion_model::PrefixId::parse(&get_s(2)?))?,
                cidr: parse(Cidr::parse_strict(&get_s(3)?))?,
                region: parse(inregion_model::RegionKey::parse(&get_s(4)?))?,
                previous_region: match prev {
                    Some(p) => Some(parse(inregion_model::RegionKey::parse(&p))?),
                    None => None,
                },
                created_at: Timestamp::from_micros(r.get(6).map_err(e)?),
                changed_at: Timestamp::from_micros(r.get(7).map_err(e)?),
                active_at: Timestamp::from_micros(r.get(8).map_err(e)?),
                deleted_at: deleted.map(Timestamp::from_micros),
                gone_at: gone.map(Timestamp::from_micros),
                version: r.get::<_, i64>(11).map_err(e)? as u64,
            };
            records.push(Change::Binding(b));
        }
        Ok(Loaded { version, records })
    }

    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError> {
        let Some(last) = commits.last() else {
            return Ok(());
        };
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        for c in commits {
            for ch in &c.changes {
                Self::write(&tx, ch)?;
            }
        }
        tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'version'")
            .and_then(|mut s| s.execute(params![last.version as i64]))
            .map_err(e)?;
        // Dropping `tx` on an error above rolls back; COMMIT fsyncs the WAL (FULL).
        tx.commit().map_err(e)
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{account, binding, prefix};
    use super::*;
    use crate::state::State;
    use inregion_model::PrefixId;

    fn pragma(s: &SqliteStore, name: &str) -> i64 {
        s.conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
    }

    /// Under a steady stream of commits the checkpointer restarts the WAL (it does not
    /// grow with the number of commits), and nothing committed is lost.
    #[test]
    fn checkpointer_keeps_the_wal_bounded_under_steady_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let wal = dir.path().join("s.db-wal");
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            pragma(&s, "wal_autocheckpoint"),
            0,
            "no checkpoint inside COMMIT"
        );
        let a = account();
        let p = prefix(&a);
        s.commit(&[&Commit {
            version: 1,
            changes: vec![Change::Account(a.clone()), Change::Prefix(p.clone())],
        }])
        .unwrap();
        let commits = 600u64;
        let mut largest = 0;
        for i in 0..commits {
            let cidr = format!("203.0.{}.{}/32", 112 + i / 256, i % 256);
            let b = binding(&a, &p, &cidr, i + 2);
            s.commit(&[&Commit {
                version: i + 2,
                changes: vec![Change::Binding(b)],
            }])
            .unwrap();
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            std::thread::sleep(Duration::from_millis(1));
        }
        // Every commit appends at least two 4 KiB frames (the binding's page and the
        // version row's page): without restarts the WAL would exceed 4.9 MB.
        let unbounded = commits * 2 * 4096;
        assert!(
            largest < unbounded / 3,
            "WAL reached {largest} bytes for {commits} commits (never restarted?)"
        );
        assert_eq!(s.count_live_bindings().unwrap(), commits);
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.count_live_bindings().unwrap(), commits);
        assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
    }

    #[test]
    fn pragmas_migrations_round_trip_and_constraints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(pragma(&s, "synchronous"), 2, "synchronous must be FULL");
        let a = account();
        let p = prefix(&a);
        let b = binding(&a, &p, "203.0.113.0/25", 1);
        let c1 = Commit {
            version: 1,
            changes: vec![
                Change::Account(a.clone()),
                Change::Prefix(p.clone()),
                Change::Binding(b.clone()),
            ],
        };
        s.commit(&[&c1]).unwrap();
        // A second live binding on the same (prefix, cidr) violates the partial unique
        // index, and the whole batch is rolled back.
        let dup = binding(&a, &p, "203.0.113.0/25", 2);
        let c2 = Commit {
            version: 2,
            changes: vec![Change::Binding(dup.clone())],
        };
        assert!(s.commit(&[&c2]).is_err());
        // Once the first is a tombstone, the CIDR is free.
        let mut gone = b.clone();
        gone.deleted_at = Some(Timestamp::from_secs(4));
        gone.gone_at = Some(Timestamp::from_secs(5));
        gone.version = 2;
        let c2 = Commit {
            version: 2,
            changes: vec![Change::Binding(gone.clone()), Change::Binding(dup.clone())],
        };
        s.commit(&[&c2]).unwrap();
        // Tombstone columns must be set together (CHECK).
        let mut half = dup.clone();
        half.deleted_at = Some(Timestamp::from_secs(9));
        assert!(s
            .commit(&[&Commit {
                version: 3,
                changes: vec![Change::Binding(half)]
            }])
            .is_err());
        // A binding on an unknown prefix violates the foreign key.
        let mut orphan = binding(&a, &p, "203.0.113.128/25", 3);
        orphan.prefix_id = PrefixId::random();
        assert!(s
            .commit(&[&Commit {
                version: 3,
                changes: vec![Change::Binding(orphan)]
            }])
            .is_err());
        assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
        assert_eq!(s.count_live_bindings().unwrap(), 1);
        drop(s);
        // Reopen: migrations are idempotent, everything is back.
        let mut s = SqliteStore::open(&path).unwrap();
        let l = s.load().unwrap();
        assert_eq!(l.version, 2);
        let mut want = State::default();
        want.apply_commit(&c1);
        want.apply_commit(&c2);
        let mut got = State::default();
        for r in l.records {
            got.apply(r);
        }
        got.version = l.version;
        assert_eq!(got.dump(), want.dump());
    }

    #[test]
    fn durability_sets_the_sync_level_and_process_mode_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut s = SqliteStore::open_with(&path, Durability::Process).unwrap();
        assert_eq!(pragma(&s, "synchronous"), 1, "NORMAL");
        let a = account();
        let p = prefix(&a);
        let c = Commit {
            version: 1,
            changes: vec![
                Change::Account(a.clone()),
                Change::Prefix(p.clone()),
                Change::Binding(binding(&a, &p, "203.0.113.0/25", 1)),
            ],
        };
        s.commit(&[&c]).unwrap();
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(pragma(&s, "synchronous"), 2, "FULL again by default");
        assert_eq!(s.count_live_bindings().unwrap(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(SqliteStore::open(&path).is_err());
    }
}
