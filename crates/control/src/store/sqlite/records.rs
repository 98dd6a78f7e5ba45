//! Records in and out of SQL: each [`Change`] as statements, each binding row back as a
//! record (the other tables keep a JSON body in the store's own row format, `rows.rs`).

use super::*;
use crate::records::AddressMap;

/// A row body's JSON.
fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::internal(format!("encoding a row: {e}")))
}

pub(super) fn write(
    tx: &rusqlite::Transaction<'_>,
    ch: &Change,
    version: u64,
) -> Result<(), StoreError> {
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
        Change::Binding(b) => write_binding(tx, b)?,
        Change::AddressMap(m) => write_address_map(tx, m)?,
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
                .execute(params![version])?;
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
pub(super) fn binding_row(
    r: &rusqlite::Row<'_>,
) -> Result<Result<BindingRecord, String>, rusqlite::Error> {
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

/// Upserts one binding row.
fn write_binding(tx: &rusqlite::Transaction<'_>, b: &BindingRecord) -> Result<(), StoreError> {
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
        b.version,
    ])?;
    Ok(())
}

/// Upserts one address map and its IP rows.
fn write_address_map(tx: &rusqlite::Transaction<'_>, m: &AddressMap) -> Result<(), StoreError> {
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
    let mut ins = tx.prepare_cached("INSERT INTO address_map_ips (map_id, ip) VALUES (?1, ?2)")?;
    for ip in &m.ips {
        ins.execute(params![
            m.id.as_str(),
            inregion_model::cidr::canonical_ip(ip.ip)
        ])?;
    }
    Ok(())
}
