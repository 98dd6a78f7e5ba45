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

use super::checkpoint::{Checkpointer, JOURNAL_SIZE_LIMIT};
use super::rows::{AccountRow, AddressMapRow, PrefixRow, RegionRow, TokenRow, UserRow};
use super::{Loaded, Store};
use crate::auth::TokenKey;
use crate::error::StoreError;
use crate::records::{BindingRecord, EdgeNodeRecord};
use crate::state::{Change, Commit};
use inregion_model::{AccountId, BindingId, Cidr, Iata, PrefixId, RegionKey, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The schema, one entry per version; entry `i` moves `user_version` from `i` to `i + 1`.
///
/// 1. Tables, indexes and constraints; row bodies in the shapes of the records of the
///    time.
/// 2. Storage records of their own (`rows.rs`: reads version 1 bodies unchanged),
///    secret digests keyed by the data directory's key (`settings.token_key_check`),
///    purged tombstones (`meta.purged_through`).
/// 3. Edge node registrations (`edge_nodes`), for `serve --activation edges`.
const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('purged_through', 0);
"#,
    r#"
CREATE TABLE edge_nodes (
    id            TEXT PRIMARY KEY,
    dc            TEXT NOT NULL,
    address       TEXT NOT NULL,
    registered_at INTEGER NOT NULL
) STRICT;
"#,
];

/// The tables every current database has (checked at open).
const TABLES: [&str; 10] = [
    "meta",
    "settings",
    "accounts",
    "users",
    "tokens",
    "prefixes",
    "regions",
    "bindings",
    "address_maps",
    "edge_nodes",
];

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
    /// database open or a file cannot be created.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
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
            .map_err(|e| corrupt(format!("not a readable SQLite database ({e})")))?;
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

/// Brings the schema to the newest version, refusing a newer or a foreign one.
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let have: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if have > supported {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: have,
            supported,
        });
    }
    if have == 0 {
        // A new database must be empty: a file of another program is not ours to write.
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                what: "holds tables but no inregion schema version: not an inregion database"
                    .into(),
            });
        }
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(have as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(m)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    for t in TABLES {
        let found: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [t],
                |r| r.get(0),
            )
            .optional()?;
        if found.is_none() {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                what: format!("schema version {supported} but table {t} is missing"),
            });
        }
    }
    Ok(())
}

/// Reads the key file (or creates the key when the database has none yet) and checks its
/// first key against the database. The file holds one key per line: the store's own, then
/// the keys adopted with restored snapshots (appended, never rewritten). A last line cut
/// short by a crash while appending is ignored: the commit that needed it never happened.
fn token_keys(
    conn: &Connection,
    path: &Path,
    key_path: &Path,
    key_file: &mut std::fs::File,
) -> Result<(TokenKey, Vec<TokenKey>), StoreError> {
    let stored_check: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = 'token_key_check'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let mut text = String::new();
    std::io::Read::read_to_string(key_file, &mut text).map_err(|e| StoreError::io(key_path, e))?;
    let corrupt = |what: String| StoreError::Corrupt {
        path: key_path.to_owned(),
        what,
    };
    let mut keys = Vec::new();
    let segments: Vec<&str> = text.split('\n').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match TokenKey::from_hex(seg) {
            Some(k) => keys.push(k),
            None if seg.trim().is_empty() || (last && i > 0) => {}
            None => {
                return Err(corrupt(format!(
                    "line {}: expected 64 hex characters",
                    i + 1
                )))
            }
        }
    }
    if keys.is_empty() {
        if stored_check.is_some() {
            return Err(corrupt(format!(
                "the key file is empty or missing, but {} holds secrets hashed with a key: \
                 restore the key file from a backup (tokens cannot be checked without it), \
                 or move the database away to start over",
                path.display()
            )));
        }
        let key = TokenKey::random();
        key_file
            .write_all(format!("{}\n", key.to_hex()).as_bytes())
            .and_then(|()| key_file.sync_all())
            .map_err(|e| StoreError::io(key_path, e))?;
        if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The file's name is durable once its directory is synced.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::io(dir, e))?;
        }
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('token_key_check', ?1)",
            [key.check_value()],
        )?;
        return Ok((key, Vec::new()));
    }
    // Leave the file ending in a newline, ready for appends: cut a torn last line, end a
    // complete one.
    if !text.is_empty() && !text.ends_with('\n') {
        let tail = segments.last().copied().unwrap_or_default();
        let fix = if TokenKey::from_hex(tail).is_some() {
            key_file.write_all(b"\n")
        } else {
            key_file
                .set_len((text.len() - tail.len()) as u64)
                .and_then(|()| std::io::Seek::seek(key_file, std::io::SeekFrom::End(0)).map(drop))
        };
        fix.and_then(|()| key_file.sync_data())
            .map_err(|e| StoreError::io(key_path, e))?;
    }
    let key = keys.remove(0);
    match stored_check {
        Some(c) if c == key.check_value() => {}
        Some(_) => {
            return Err(corrupt(format!(
                "this key file does not belong to {} (its check value differs): \
                 restore the database's own key file",
                path.display()
            )))
        }
        None => {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('token_key_check', ?1)",
                [key.check_value()],
            )?;
        }
    }
    Ok((key, keys))
}

/// A row body's JSON.
fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::internal(format!("encoding a row: {e}")))
}

fn write(tx: &rusqlite::Transaction<'_>, ch: &Change, version: u64) -> Result<(), StoreError> {
    match ch {
        Change::Account(a) => {
            tx.prepare_cached(
                "INSERT INTO accounts (id, body) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            )?
            .execute(params![a.id.as_str(), json(&AccountRow::of(a))?])?;
        }
        Change::User(u) => {
            tx.prepare_cached(
                "INSERT INTO users (email, body) VALUES (?1, ?2)
                 ON CONFLICT (email) DO UPDATE SET body = excluded.body",
            )?
            .execute(params![u.email, json(&UserRow::of(u))?])?;
        }
        Change::Token(t) => {
            tx.prepare_cached(
                "INSERT INTO tokens (id, secret_hash, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash,
                                                body = excluded.body",
            )?
            .execute(params![
                t.id.as_str(),
                t.secret_hash.to_hex(),
                json(&TokenRow::of(t))?
            ])?;
        }
        Change::Prefix(p) => {
            tx.prepare_cached(
                "INSERT INTO prefixes (id, account_id, cidr, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id,
                    cidr = excluded.cidr, body = excluded.body",
            )?
            .execute(params![
                p.id.as_str(),
                p.account_id.as_str(),
                p.cidr.to_string(),
                json(&PrefixRow::of(p))?
            ])?;
        }
        Change::Region(r) => {
            tx.prepare_cached(
                "INSERT INTO regions (id, key, account_id, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET key = excluded.key,
                    account_id = excluded.account_id, body = excluded.body",
            )?
            .execute(params![
                r.definition.id.to_string(),
                r.definition.key.as_str(),
                r.account_id.as_str(),
                json(&RegionRow::of(r))?
            ])?;
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
            )?
            .execute(params![
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
            ])?;
        }
        Change::AddressMap(m) => {
            tx.prepare_cached(
                "INSERT INTO address_maps (id, account_id, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id,
                    body = excluded.body",
            )?
            .execute(params![
                m.id.as_str(),
                m.account_id.as_str(),
                json(&AddressMapRow::of(m))?
            ])?;
            tx.prepare_cached("DELETE FROM address_map_ips WHERE map_id = ?1")?
                .execute(params![m.id.as_str()])?;
            let mut ins =
                tx.prepare_cached("INSERT INTO address_map_ips (map_id, ip) VALUES (?1, ?2)")?;
            for ip in &m.ips {
                ins.execute(params![
                    m.id.as_str(),
                    inregion_model::cidr::canonical_ip(ip.ip)
                ])?;
            }
        }
        Change::DeleteAddressMap(id) => {
            tx.prepare_cached("DELETE FROM address_maps WHERE id = ?1")?
                .execute(params![id.as_str()])?;
        }
        Change::Clear => {
            tx.execute_batch(
                "DELETE FROM address_map_ips; DELETE FROM address_maps; DELETE FROM bindings;
                 DELETE FROM regions; DELETE FROM prefixes; DELETE FROM tokens;
                 DELETE FROM users; DELETE FROM accounts;",
            )?;
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'purged_through'")?
                .execute(params![version as i64])?;
        }
        // Written to the key file before the transaction (`Store::commit`).
        Change::AdoptTokenKey(_) => {}
        Change::EdgeNode(n) => {
            tx.prepare_cached(
                "INSERT INTO edge_nodes (id, dc, address, registered_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET dc = excluded.dc, address = excluded.address,
                    registered_at = excluded.registered_at",
            )?
            .execute(params![
                n.node_id,
                n.dc.as_str(),
                n.address,
                n.registered_at.as_micros()
            ])?;
        }
        Change::RemoveEdgeNode(id) => {
            tx.prepare_cached("DELETE FROM edge_nodes WHERE id = ?1")?
                .execute(params![id])?;
        }
        Change::PurgeBinding(id) => {
            let id = id.to_string();
            tx.prepare_cached(
                "UPDATE meta SET value = max(value,
                    coalesce((SELECT version FROM bindings WHERE id = ?1), 0))
                 WHERE key = 'purged_through'",
            )?
            .execute(params![id])?;
            tx.prepare_cached("DELETE FROM bindings WHERE id = ?1")?
                .execute(params![id])?;
        }
    }
    Ok(())
}

/// Reads one binding row (`SELECT` column order of [`Store::load`]).
fn binding_row(r: &rusqlite::Row<'_>) -> Result<Result<BindingRecord, String>, rusqlite::Error> {
    let text = |i: usize| r.get::<_, String>(i);
    let (id, account, prefix, cidr, region) = (text(0)?, text(1)?, text(2)?, text(3)?, text(4)?);
    let prev: Option<String> = r.get(5)?;
    let (created, changed, active): (i64, i64, i64) = (r.get(6)?, r.get(7)?, r.get(8)?);
    let (deleted, gone): (Option<i64>, Option<i64>) = (r.get(9)?, r.get(10)?);
    let version: i64 = r.get(11)?;
    let p = |what: &str, e: &dyn std::fmt::Display| format!("binding {id}: {what}: {e}");
    Ok((|| {
        Ok(BindingRecord {
            id: BindingId::parse(&id).map_err(|e| p("id", &e))?,
            account_id: AccountId::parse(&account).map_err(|e| p("account_id", &e))?,
            prefix_id: PrefixId::parse(&prefix).map_err(|e| p("prefix_id", &e))?,
            cidr: Cidr::parse_strict(&cidr).map_err(|e| p("cidr", &e))?,
            region: RegionKey::parse(&region).map_err(|e| p("region", &e))?,
            previous_region: prev
                .map(|x| RegionKey::parse(&x).map_err(|e| p("previous_region", &e)))
                .transpose()?,
            created_at: Timestamp::from_micros(created),
            changed_at: Timestamp::from_micros(changed),
            active_at: Timestamp::from_micros(active),
            deleted_at: deleted.map(Timestamp::from_micros),
            gone_at: gone.map(Timestamp::from_micros),
            version: u64::try_from(version).map_err(|e| p("version", &e))?,
        })
    })())
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
        r
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
            .execute(params![version as i64])?;
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{account, binding, prefix};
    use super::*;
    use crate::state::State;
    use inregion_model::PrefixId;
    use std::time::Duration;

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
        let e = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(e, StoreError::NewerSchema { found: 99, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("s.db"), "{e}");
    }

    /// A file that is not a database, a damaged database, or another program's database
    /// is refused with the file named, and left as it was.
    #[test]
    fn damaged_or_foreign_files_are_refused_not_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let e = SqliteStore::open(&garbage).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("garbage.db"), "{e}");
        assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a; 8192]);

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let e = SqliteStore::open(&foreign).unwrap_err();
        assert!(e.to_string().contains("not an inregion database"), "{e}");

        // A real database with a page overwritten in the middle of a table.
        let path = dir.path().join("damaged.db");
        let mut s = SqliteStore::open(&path).unwrap();
        let a = account();
        let p = prefix(&a);
        let mut changes = vec![Change::Account(a.clone()), Change::Prefix(p.clone())];
        for i in 0..400u32 {
            let cidr = format!("203.0.113.{}/32", i % 256);
            let mut b = binding(&a, &p, &cidr, 1);
            if i >= 256 {
                b.deleted_at = Some(Timestamp::from_secs(4));
                b.gone_at = Some(Timestamp::from_secs(5));
            }
            changes.push(Change::Binding(b));
        }
        s.commit(&[&Commit {
            version: 1,
            changes,
        }])
        .unwrap();
        drop(s);
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 8 * 4096, "{}", bytes.len());
        for b in &mut bytes[5 * 4096..6 * 4096] {
            *b = 0xa5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let e = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    }

    /// The key file: created 0600 with the database, required once secrets depend on it,
    /// refused when it belongs to another database, and locked while the store is open.
    #[test]
    fn the_key_file_belongs_to_its_database_and_locks_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let key_path = dir.path().join("k.db-key");
        let s = SqliteStore::open(&path).unwrap();
        let key = s.token_key();
        for f in [&path, &key_path] {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
        // A second open of the same database while the first holds it.
        let e = SqliteStore::open(&path).unwrap_err();
        assert!(e.to_string().contains("another process"), "{e}");
        drop(s);
        assert_eq!(SqliteStore::open(&path).unwrap().token_key(), key);

        // Another database's key.
        let other = dir.path().join("o.db");
        drop(SqliteStore::open(&other).unwrap());
        std::fs::copy(dir.path().join("o.db-key"), &key_path).unwrap();
        let e = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("does not belong"), "{e}");

        // No key at all.
        std::fs::remove_file(&key_path).unwrap();
        let e = SqliteStore::open(&path).unwrap_err();
        assert!(e.to_string().contains("restore the key file"), "{e}");

        // An existing database readable by others is narrowed to the owner.
        let loose = dir.path().join("loose.db");
        drop(SqliteStore::open(&loose).unwrap());
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(SqliteStore::open(&loose).unwrap());
        let mode = std::fs::metadata(&loose).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// A batch with a clear runs with foreign keys off (so that SQLite truncates) and is
    /// checked as a whole before it commits: a dangling reference refuses it all.
    #[test]
    fn a_clearing_batch_still_refuses_dangling_references() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path().join("f.db")).unwrap();
        let a = account();
        let p = prefix(&a);
        let b = binding(&a, &p, "203.0.113.0/25", 1);
        s.commit(&[&Commit {
            version: 1,
            changes: vec![
                Change::Account(a.clone()),
                Change::Prefix(p.clone()),
                Change::Binding(b),
            ],
        }])
        .unwrap();
        let orphan = binding(&a, &p, "203.0.113.128/25", 2);
        let e = s
            .commit(&[&Commit {
                version: 2,
                changes: vec![
                    Change::Clear,
                    Change::Account(a.clone()),
                    Change::Binding(orphan),
                ],
            }])
            .unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
        assert_eq!(
            s.count_binding_rows().unwrap(),
            1,
            "nothing of the batch applied"
        );
        assert_eq!(pragma(&s, "foreign_keys"), 1, "foreign keys back on");
        // A valid clearing batch commits.
        s.commit(&[&Commit {
            version: 2,
            changes: vec![Change::Clear, Change::Account(a), Change::Prefix(p)],
        }])
        .unwrap();
        assert_eq!(s.count_binding_rows().unwrap(), 0);
        assert_eq!(s.load().unwrap().purged_through, 2);
    }

    /// Constraint violations are typed as such (not a generic SQLite failure).
    #[test]
    fn constraint_violations_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path().join("c.db")).unwrap();
        let a = account();
        let p = prefix(&a);
        let b = binding(&a, &p, "203.0.113.0/25", 1);
        let dup = binding(&a, &p, "203.0.113.0/25", 1);
        let e = s
            .commit(&[&Commit {
                version: 1,
                changes: vec![
                    Change::Account(a),
                    Change::Prefix(p),
                    Change::Binding(b),
                    Change::Binding(dup),
                ],
            }])
            .unwrap_err();
        assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
