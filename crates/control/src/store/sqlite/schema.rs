//! The schema of the SQLite store, by version, and the key file beside the database.

use super::*;

/// The schema, one entry per version; entry `i` moves `user_version` from `i` to `i + 1`.
///
/// 1. Tables, indexes and constraints; row bodies in the shapes of the records of the
///    time.
/// 2. Storage records of their own (`rows.rs`: reads version 1 bodies unchanged),
///    secret digests keyed by the data directory's key (`settings.token_key_check`),
///    purged tombstones (`meta.purged_through`).
/// 3. Edge node registrations (`edge_nodes`), for `serve --activation edges`.
/// 4. No index on the bindings' version: nothing reads by it (the state is in memory and
///    loaded by id), and every binding write paid one more WAL page for it (5 pages per
///    create commit instead of 4, from `strace`).
pub(super) const MIGRATIONS: &[&str] = &[
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
    r#"
DROP INDEX bindings_version;
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

/// Brings the schema to the newest version, refusing a newer or a foreign one.
pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
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
pub(super) fn token_keys(
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
