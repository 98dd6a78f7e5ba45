//! The SQLite store: the control plane's default durable home (`inregion serve`'s data
//! directory), a complete [`Store`] on the database alone.
//!
//! - `journal_mode=WAL`. [`Durability::Full`] (the default) sets `synchronous=FULL`:
//!   every COMMIT fsyncs the WAL before it returns, so a batch acknowledged by
//!   [`Store::commit`] survives a crash of the process, of the OS and a power loss.
//!   [`Durability::Process`] sets `synchronous=NORMAL`: the WAL is written but not
//!   fsynced at each commit, so an acknowledged batch survives a crash or kill of the
//!   process (the OS still has the pages), not an OS crash or a power loss, which can
//!   lose the last commits but never corrupts the database.
//! - One `BEGIN IMMEDIATE … COMMIT` per batch: the control plane's group commit hands
//!   over everything queued while the previous batch was syncing, so one fsync covers
//!   many operations.
//! - An I/O error at a commit (a failed write or fsync) is [`StoreError::DiskFailed`]:
//!   the commit's frames may be in the WAL, where a crash would replay them, so the
//!   outcome is unknown and the control plane halts writes until a restart. A full disk
//!   (`SQLITE_FULL`) is not that: nothing was written, and writes resume with room.
//! - Checkpoints run off the commit path, on a connection of their own (`checkpoint.rs`).
//! - Row bodies are storage records of their own (`rows.rs`), never the API's shapes;
//!   the schema is versioned by `PRAGMA user_version`, with one migration per version.
//! - At open the file must pass `PRAGMA quick_check` and carry a schema this program
//!   knows: a damaged, foreign or newer database is refused with the file named, never
//!   started over empty.
//! - Constraints mirror the rules as a second line of defence: one live binding per
//!   `(prefix_id, cidr)` (a partial unique index), unique prefix CIDRs, unique token
//!   digests, unique region keys, foreign keys to accounts and prefixes.
//! - Beside the database, `<file>-key` holds the [`TokenKey`] that token secrets are
//!   hashed with (0600, never in the database: a leaked database alone does not let
//!   anyone test guesses), and the database holds the key's check value, so a key file
//!   that is not its own is refused. The key file is also the store's lock: a second
//!   process opening the same database is refused while the first has it.
//! - Files are created owner-only (0600), and existing ones are narrowed to it.
//!
//! Files: this one opens the store and commits; `schema.rs` holds the migrations and the
//! key file; `records.rs` turns each [`Change`] into SQL and each row back into a record.

mod records;
mod schema;
#[cfg(test)]
mod tests;

use super::checkpoint::{Checkpointer, JOURNAL_SIZE_LIMIT};
use super::rows::{AccountRow, AddressMapRow, PrefixRow, RegionRow, TokenRow, UserRow};
use super::{Loaded, Store};
use crate::auth::TokenKey;
use crate::error::StoreError;
use crate::records::{BindingRecord, EdgeNodeRecord};
use crate::state::{Change, Commit};
use inregion_model::{AccountId, BindingId, Cidr, Iata, PrefixId, RegionKey, Timestamp};
use records::{binding_row, write};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use schema::{migrate, token_keys};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How far a commit is durable once [`Store::commit`] has returned (`inregion serve
/// --durability`).
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
    /// Declared after `conn`: stopped (and its connection closed) after the writer's.
    checkpointer: Option<Checkpointer>,
    token_key: TokenKey,
    /// Keys adopted with restored snapshots: the key file's lines after the first.
    adopted: Vec<TokenKey>,
    /// The key file, open and locked for the store's life (see the module docs).
    key_file: std::fs::File,
    key_path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Creates `path` owner-only if it is missing, or narrows it to owner-only if it exists.
fn owner_only(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::metadata(path) {
            Ok(m) => {
                if m.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| StoreError::io(path, e))?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| StoreError::io(path, e))?;
            }
            Err(e) => return Err(StoreError::io(path, e)),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// SQLite could not use the database for a reason that is not damage to it: the file
/// named, and the free space when the disk holding it is nearly full (SQLite says only
/// "disk I/O error" when it cannot create its `-shm` file on a full disk).
fn cannot_use(path: &Path, e: &rusqlite::Error) -> StoreError {
    let mut what = e.to_string();
    if let Some(free) = free_bytes(path) {
        if free < 1 << 20 {
            what = format!(
                "{what}; the disk holding it has {} KiB free: free some space and start again",
                free >> 10
            );
        }
    }
    StoreError::io(path, std::io::Error::other(what))
}

/// The space available to this process on the file system holding `path`'s directory.
fn free_bytes(path: &Path) -> Option<u64> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// `<database>-<suffix>`: where SQLite keeps `-wal` and `-shm`, and we keep `-key`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it, with
    /// [`Durability::Full`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (creating if needed) the database at `path`, checks it and migrates it;
    /// commits are as durable as `durability` says.
    ///
    /// Errors: [`StoreError::Corrupt`] for a file that fails its integrity or schema
    /// check or a key file that is not the database's, [`StoreError::NewerSchema`] for a
    /// database of a newer version, [`StoreError::Io`] when another process has the
    /// database open, a file cannot be created, or SQLite cannot read or write it for a
    /// reason that is not damage to it (a full disk, an I/O error): the file is named,
    /// and so is the free space when the disk is nearly full.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        Self::open_checked(&path, durability).map_err(|e| match e {
            StoreError::Sqlite(e) => cannot_use(&path, &e),
            other => other,
        })
    }

    fn open_checked(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let corrupt = |what: String| StoreError::Corrupt {
            path: path.clone(),
            what,
        };
        // The key file first: it is the lock that keeps a second process out.
        let key_path = beside(&path, "-key");
        owner_only(&key_path)?;
        let mut key_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&key_path)
            .map_err(|e| StoreError::io(&key_path, e))?;
        match key_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::io(
                    &key_path,
                    std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        "the database is in use by another process (its key file is locked)",
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io(&key_path, e)),
        }
        for f in [&path, &beside(&path, "-wal"), &beside(&path, "-shm")] {
            if f == &path || f.exists() {
                owner_only(f)?;
            }
        }

        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Not a database at all, or damaged: refuse before anything writes to it.
        let check: Vec<String> = conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                    corrupt(format!("not a readable SQLite database ({e})"))
                }
                // Not damage (a full disk: WAL mode must create `-shm`; an I/O error):
                // `open_with` names the file and the free space, as for every SQLite
                // error while opening.
                _ => e.into(),
            })?;
        if check != ["ok"] {
            return Err(corrupt(format!(
                "fails SQLite's integrity check: {}",
                check.join("; ")
            )));
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(corrupt(format!("journal_mode is {mode}, WAL required")));
        }
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Process => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoints are the checkpointer's job (checkpoint.rs).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        // Start from an empty WAL: what a previous run left is copied and the file
        // truncated (best effort: another process reading may keep it from completing).
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let gate = Arc::new(Mutex::new(()));
        migrate(&conn, &path)?;
        let (token_key, adopted) = token_keys(&conn, &path, &key_path, &mut key_file)?;
        let checkpointer = Some(Checkpointer::start(&path, Arc::clone(&gate))?);
        Ok(Self {
            conn,
            path,
            gate,
            checkpointer,
            token_key,
            adopted,
            key_file,
            key_path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `PRAGMA integrity_check` and returns its rows (`["ok"]` when sound).
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Number of live (not deleted) bindings, straight from SQL (for checks).
    pub fn count_live_bindings(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM bindings WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Number of binding rows, live and tombstones (for checks: purged tombstones are
    /// gone from here).
    pub fn count_binding_rows(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM bindings", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn meta(&self, key: &str) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(v.unwrap_or(0) as u64)
    }

    fn corrupt(&self, what: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let version = self.meta("version")?;
        let purged_through = self.meta("purged_through")?;
        let mut records: Vec<Change> = self
            .adopted
            .iter()
            .cloned()
            .map(Change::AdoptTokenKey)
            .collect();
        // (key, body) of a table, decoded through its row type.
        fn rows<R: serde::de::DeserializeOwned>(
            s: &SqliteStore,
            sql: &str,
            table: &str,
            mut f: impl FnMut(&str, R) -> Result<Change, String>,
            out: &mut Vec<Change>,
        ) -> Result<(), StoreError> {
            let mut st = s.conn.prepare(sql)?;
            let mut q = st.query([])?;
            while let Some(r) = q.next()? {
                let (key, body): (String, String) = (r.get(0)?, r.get(1)?);
                let row: R = serde_json::from_str(&body)
                    .map_err(|e| s.corrupt(format!("{table} row {key}: {e}")))?;
                out.push(f(&key, row).map_err(|e| s.corrupt(format!("{table} row {key}: {e}")))?);
            }
            Ok(())
        }
        let r = &mut records;
        rows(
            self,
            "SELECT id, body FROM accounts ORDER BY id",
            "accounts",
            |_, x: AccountRow| x.get().map(Change::Account),
            r,
        )?;
        rows(
            self,
            "SELECT email, body FROM users ORDER BY email",
            "users",
            |_, x: UserRow| x.get().map(Change::User),
            r,
        )?;
        rows(
            self,
            "SELECT id, body FROM tokens ORDER BY id",
            "tokens",
            |_, x: TokenRow| x.get().map(Change::Token),
            r,
        )?;
        rows(
            self,
            "SELECT id, body FROM prefixes ORDER BY id",
            "prefixes",
            |_, x: PrefixRow| x.get().map(Change::Prefix),
            r,
        )?;
        rows(
            self,
            "SELECT id, body FROM regions ORDER BY id",
            "regions",
            |_, x: RegionRow| x.get().map(Change::Region),
            r,
        )?;
        rows(
            self,
            "SELECT account_id, body FROM address_maps ORDER BY id",
            "address_maps",
            |account, x: AddressMapRow| x.get(account).map(Change::AddressMap),
            r,
        )?;
        let mut st = self.conn.prepare(
            "SELECT id, account_id, prefix_id, cidr, region, previous_region, created_at,
                    changed_at, active_at, deleted_at, gone_at, version
             FROM bindings ORDER BY id",
        )?;
        let mut q = st.query([])?;
        while let Some(row) = q.next()? {
            let b = binding_row(row)?.map_err(|e| self.corrupt(e))?;
            records.push(Change::Binding(b));
        }
        let mut st = self
            .conn
            .prepare("SELECT id, dc, address, registered_at FROM edge_nodes ORDER BY id")?;
        let mut q = st.query([])?;
        while let Some(row) = q.next()? {
            let (id, dc, address, at): (String, String, String, i64) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            let dc = Iata::parse(&dc)
                .map_err(|e| self.corrupt(format!("edge_nodes row {id}: dc: {e}")))?;
            records.push(Change::EdgeNode(EdgeNodeRecord {
                node_id: id,
                dc,
                address,
                registered_at: Timestamp::from_micros(at),
            }));
        }
        Ok(Loaded {
            version,
            purged_through,
            records,
        })
    }

    fn commit(&mut self, commits: &[&Commit]) -> Result<(), StoreError> {
        let Some(last) = commits.last() else {
            return Ok(());
        };
        // Adopted keys go to the key file first (appended, fsynced): should the
        // transaction fail, an extra key in the ring is harmless; a committed digest
        // whose key was lost would not be.
        for c in commits {
            for ch in &c.changes {
                if let Change::AdoptTokenKey(k) = ch {
                    if *k != self.token_key && !self.adopted.contains(k) {
                        self.key_file
                            .write_all(format!("{}\n", k.to_hex()).as_bytes())
                            .and_then(|()| self.key_file.sync_data())
                            .map_err(|e| StoreError::io(&self.key_path, e))?;
                        self.adopted.push(k.clone());
                    }
                }
            }
        }
        let gate = Arc::clone(&self.gate);
        let _gate = gate.lock().unwrap_or_else(|p| p.into_inner());
        // A clear (reset, snapshot restore) empties every table. With foreign keys on,
        // SQLite deletes row by row to check them (18 ms for 10k bindings, measured)
        // instead of truncating (2 ms); so such a batch runs with them off and checks the
        // whole database with `foreign_key_check` before it commits instead.
        let clears = commits
            .iter()
            .any(|c| c.changes.iter().any(|ch| matches!(ch, Change::Clear)));
        if clears {
            self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        }
        let r = self.commit_in_transaction(commits, last.version, clears);
        if clears {
            self.conn.pragma_update(None, "foreign_keys", "ON")?;
        }
        r.map_err(|e| match e {
            // An I/O error while committing (a failed write or fsync): the frames may be
            // in the WAL, where recovery after a crash would find them, so the outcome is
            // unknown; the pipeline halts writes on it (see `StoreError::DiskFailed`). A
            // full disk is `SQLITE_FULL`, not this: nothing was written, and writes go on
            // once there is room.
            StoreError::Sqlite(source)
                if source.sqlite_error_code() == Some(ErrorCode::SystemIoFailure) =>
            {
                StoreError::DiskFailed {
                    path: self.path.clone(),
                    source,
                }
            }
            e => e,
        })
    }

    fn token_key(&self) -> TokenKey {
        self.token_key.clone()
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

impl SqliteStore {
    /// One transaction for the batch; with `check_keys`, `PRAGMA foreign_key_check` must
    /// find nothing before it commits.
    fn commit_in_transaction(
        &mut self,
        commits: &[&Commit],
        version: u64,
        check_keys: bool,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for c in commits {
            for ch in &c.changes {
                write(&tx, ch, c.version)?;
            }
        }
        tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'version'")?
            .execute(params![version])?;
        if check_keys {
            let violation: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get::<_, String>(0))
                .optional()?;
            if let Some(table) = violation {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    what: format!("a row of {table} refers to a missing record (batch refused)"),
                });
            }
        }
        // Dropping `tx` on an error above rolls back; COMMIT fsyncs the WAL (FULL).
        tx.commit()?;
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Stop the checkpointer before the writer's connection closes, so that the last
        // close checkpoints and removes the WAL.
        drop(self.checkpointer.take());
    }
}
