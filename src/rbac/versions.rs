//! Snapshot versions in the catalog: the table `rbac_snapshots`, one row per
//! stored [`Snapshot`] (a `v1 List` as JSON), so "what could X do on date D"
//! loads the version in force at D.
//!
//! Design decision: this is the only RBAC file that touches DuckDB; the
//! loader itself ([`super::snapshot`]) stays free of it, so the fuzz crate can
//! compile the loader without linking DuckDB.

use super::snapshot::Snapshot;
use super::{RbacError, Result};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// One stored snapshot version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotVersion {
    pub version: i64,
    /// RFC 3339 UTC.
    pub taken_at: String,
    pub source: String,
    pub object_count: i64,
}

/// The catalog table of snapshot versions. Idempotent.
pub const RBAC_TABLES_SQL: &str = "
CREATE SEQUENCE IF NOT EXISTS rbac_snapshot_seq START 1;
CREATE TABLE IF NOT EXISTS rbac_snapshots (
    version BIGINT NOT NULL DEFAULT nextval('rbac_snapshot_seq') PRIMARY KEY,
    taken_at TIMESTAMP NOT NULL,        -- UTC: when the state was observed
    source VARCHAR NOT NULL,            -- a file path, 'audit-stream', ...
    object_count BIGINT NOT NULL,       -- roles + cluster roles + bindings
    objects VARCHAR NOT NULL            -- a v1 List of the typed objects, as JSON
);";

/// Creates the table if needed: only for a connection that writes (DuckDB
/// refuses any CREATE, even `IF NOT EXISTS`, on a read-only catalog).
pub fn ensure_rbac_tables(connection: &duckdb::Connection) -> Result<()> {
    connection
        .execute_batch(RBAC_TABLES_SQL)
        .map_err(RbacError::duckdb("creating the rbac_snapshots table"))
}

/// Whether the catalog holds the table; the read paths use this instead of
/// creating it, so they work on a read-only catalog. No table means no
/// version has been stored yet. A view of that name counts: the report's
/// reader session exposes the attached catalog's tables, or their Parquet
/// export, as views.
fn rbac_table_exists(connection: &duckdb::Connection) -> Result<bool> {
    connection
        .query_row(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_catalog = current_database() AND table_schema = current_schema() \
             AND table_name = 'rbac_snapshots'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|count| count > 0)
        .map_err(RbacError::duckdb("looking for the rbac_snapshots table"))
}

fn timestamp_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Stores a snapshot version; returns its version id.
pub fn save_snapshot(
    connection: &duckdb::Connection,
    snapshot: &Snapshot,
    source: &str,
    taken_at: DateTime<Utc>,
) -> Result<i64> {
    ensure_rbac_tables(connection)?;
    let objects = snapshot.to_list_json()?;
    connection
        .query_row(
            "INSERT INTO rbac_snapshots (taken_at, source, object_count, objects) \
             VALUES (CAST(? AS TIMESTAMP), ?, ?, ?) RETURNING version",
            duckdb::params![
                timestamp_text(taken_at),
                source,
                snapshot.rbac_object_count() as i64,
                objects
            ],
            |row| row.get::<_, i64>(0),
        )
        .map_err(RbacError::duckdb("storing an RBAC snapshot version"))
}

/// Every stored version, oldest first.
pub fn list_snapshot_versions(connection: &duckdb::Connection) -> Result<Vec<SnapshotVersion>> {
    if !rbac_table_exists(connection)? {
        return Ok(Vec::new());
    }
    let mut statement = connection
        .prepare(
            "SELECT version, strftime(taken_at, '%Y-%m-%dT%H:%M:%S.%fZ'), source, object_count \
             FROM rbac_snapshots ORDER BY taken_at, version",
        )
        .map_err(RbacError::duckdb("listing RBAC snapshot versions"))?;
    let rows = statement
        .query_map([], |row| {
            Ok(SnapshotVersion {
                version: row.get(0)?,
                taken_at: row.get(1)?,
                source: row.get(2)?,
                object_count: row.get(3)?,
            })
        })
        .map_err(RbacError::duckdb("listing RBAC snapshot versions"))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(RbacError::duckdb("listing RBAC snapshot versions"))
}

fn load_where(
    connection: &duckdb::Connection,
    condition: &str,
    parameter: Option<String>,
) -> Result<Option<(SnapshotVersion, Snapshot)>> {
    if !rbac_table_exists(connection)? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT version, strftime(taken_at, '%Y-%m-%dT%H:%M:%S.%fZ'), source, object_count, objects \
         FROM rbac_snapshots {condition} ORDER BY taken_at DESC, version DESC LIMIT 1"
    );
    let mut statement = connection
        .prepare(&sql)
        .map_err(RbacError::duckdb("loading an RBAC snapshot"))?;
    let mapper = |row: &duckdb::Row<'_>| {
        Ok((
            SnapshotVersion {
                version: row.get(0)?,
                taken_at: row.get(1)?,
                source: row.get(2)?,
                object_count: row.get(3)?,
            },
            row.get::<_, String>(4)?,
        ))
    };
    let mut rows = match parameter {
        Some(parameter) => statement.query_map([parameter], mapper),
        None => statement.query_map([], mapper),
    }
    .map_err(RbacError::duckdb("loading an RBAC snapshot"))?;
    let Some(row) = rows.next() else {
        return Ok(None);
    };
    let (version, objects) = row.map_err(RbacError::duckdb("loading an RBAC snapshot"))?;
    let mut snapshot = Snapshot::default();
    let origin = PathBuf::from(format!(
        "catalog rbac_snapshots version {}",
        version.version
    ));
    snapshot.load_text(&objects, &origin)?;
    Ok(Some((version, snapshot)))
}

/// The newest stored version.
pub fn load_latest_snapshot(
    connection: &duckdb::Connection,
) -> Result<Option<(SnapshotVersion, Snapshot)>> {
    load_where(connection, "", None)
}

/// The version in force at `at`: the newest one taken at or before it.
pub fn load_snapshot_at(
    connection: &duckdb::Connection,
    at: DateTime<Utc>,
) -> Result<Option<(SnapshotVersion, Snapshot)>> {
    load_where(
        connection,
        "WHERE taken_at <= CAST(? AS TIMESTAMP)",
        Some(timestamp_text(at)),
    )
}

/// One stored version by its id.
pub fn load_snapshot_version(
    connection: &duckdb::Connection,
    version: i64,
) -> Result<Option<(SnapshotVersion, Snapshot)>> {
    load_where(
        connection,
        "WHERE version = CAST(? AS BIGINT)",
        Some(version.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::at;
    use std::path::Path;

    const LIST_JSON: &str = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"reader","namespace":"app"},
       "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]},
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"reader","namespace":"app"},
       "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"},
       "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}]}]}"#;

    fn listed() -> Snapshot {
        let mut snapshot = Snapshot::default();
        snapshot
            .load_text(LIST_JSON, Path::new("list.json"))
            .expect("valid");
        snapshot
    }

    #[test]
    fn versions_round_trip_through_duckdb() {
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        let first = listed();
        let day_one = at("2026-11-01T00:00:00Z");
        let day_two = at("2026-11-02T00:00:00Z");
        save_snapshot(&connection, &first, "list.json", day_one).expect("saved");
        let second = Snapshot::default();
        save_snapshot(&connection, &second, "empty", day_two).expect("saved");
        let (version, latest) = load_latest_snapshot(&connection)
            .expect("query")
            .expect("exists");
        assert_eq!(version.source, "empty");
        assert_eq!(latest.rbac_object_count(), 0);
        let noon = at("2026-11-01T12:00:00Z");
        let (version, then) = load_snapshot_at(&connection, noon)
            .expect("query")
            .expect("exists");
        assert_eq!(version.taken_at, "2026-11-01T00:00:00.000000Z");
        assert_eq!(then.roles.len(), 1);
        assert_eq!(then.role_bindings.len(), 1);
        let before = at("2026-10-01T00:00:00Z");
        assert!(
            load_snapshot_at(&connection, before)
                .expect("query")
                .is_none()
        );
        assert_eq!(list_snapshot_versions(&connection).expect("list").len(), 2);
    }

    fn open_read_only(path: &Path) -> duckdb::Connection {
        let config = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .expect("config");
        duckdb::Connection::open_with_flags(path, config).expect("read-only catalog")
    }

    #[test]
    fn read_only_catalogs_are_read_without_creating_anything() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("catalog.duckdb");
        // A catalog without the table (e.g. written by the daemon only): nothing stored yet.
        drop(duckdb::Connection::open(&path).expect("catalog"));
        let reader = open_read_only(&path);
        assert!(list_snapshot_versions(&reader).expect("list").is_empty());
        assert!(load_latest_snapshot(&reader).expect("query").is_none());
        drop(reader);

        let writer = duckdb::Connection::open(&path).expect("catalog");
        let first = listed();
        let day_one = at("2026-11-01T00:00:00Z");
        save_snapshot(&writer, &first, "list.json", day_one).expect("saved");
        drop(writer);

        let reader = open_read_only(&path);
        assert_eq!(list_snapshot_versions(&reader).expect("list").len(), 1);
        let (version, latest) = load_latest_snapshot(&reader)
            .expect("query")
            .expect("exists");
        assert_eq!(version.source, "list.json");
        assert_eq!(latest.roles.len(), 1);
        let later = at("2026-11-02T00:00:00Z");
        assert!(load_snapshot_at(&reader, later).expect("query").is_some());
    }
}
