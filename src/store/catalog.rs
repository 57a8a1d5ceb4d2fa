//! The DuckDB catalog (`data/catalog.duckdb`): the manifest of parts and the
//! tables of derived data (anomalies, incidents, models, RBAC snapshots).
//!
//! The catalog is an index, not the truth: parts describe themselves, so the
//! manifest is reconciled against the folder at every start and can be rebuilt
//! from scratch if the file is lost or corrupt (a corrupt file is moved aside,
//! never deleted). DuckDB lets one process open the file for writing; readers
//! outside the daemon use the Parquet folder through the shared views instead.
//! A `duckdb::Connection` is not shared across threads: each thread that needs
//! the catalog takes its own with [`Catalog::connection`].

use super::views::install_views;
use super::writer::WrittenPart;
use super::{Result, StoreError};
use duckdb::params;
use std::path::{Path, PathBuf};

/// The SQL run at every start (idempotent).
pub const CATALOG_SQL: &str = include_str!("../../sql/catalog.sql");

pub struct Catalog {
    data_dir: PathBuf,
    connection: duckdb::Connection,
}

fn duckdb_error(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::DuckDb { context, source }
}

impl Catalog {
    /// Opens (or creates) the catalog; a file DuckDB cannot open is moved
    /// aside as `catalog.duckdb.corrupt-<time>` and a new one is created.
    pub fn open(data_dir: &Path) -> Result<Catalog> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("catalog.duckdb");
        let connection = match Self::open_file(&path) {
            Ok(connection) => connection,
            Err(error) if path.exists() && !is_lock_error(&error) => {
                let aside = data_dir.join(format!(
                    "catalog.duckdb.corrupt-{}",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S")
                ));
                tracing::error!(%error, aside = %aside.display(), "catalog unreadable; moving it aside and rebuilding from the parts");
                std::fs::rename(&path, &aside).map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
                let _ = std::fs::rename(
                    data_dir.join("catalog.duckdb.wal"),
                    aside.with_extension("wal"),
                );
                Self::open_file(&path)?
            }
            Err(error) => return Err(error),
        };
        let catalog = Catalog {
            data_dir: data_dir.to_path_buf(),
            connection,
        };
        catalog.refresh_views()?;
        Ok(catalog)
    }

    fn open_file(path: &Path) -> Result<duckdb::Connection> {
        let connection = duckdb::Connection::open(path)
            .map_err(duckdb_error(format!("opening {}", path.display())))?;
        connection
            .execute_batch(CATALOG_SQL)
            .map_err(duckdb_error(format!(
                "creating catalog tables in {}",
                path.display()
            )))?;
        Ok(connection)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A new connection to the same database, for another thread.
    pub fn connection(&self) -> Result<duckdb::Connection> {
        self.connection
            .try_clone()
            .map_err(duckdb_error("cloning a catalog connection"))
    }

    /// Re-creates the `events`/`requests` views (needed once the first part exists).
    pub fn refresh_views(&self) -> Result<()> {
        install_views(&self.connection, &self.data_dir)
    }

    /// Records freshly committed parts and the parts they replace.
    pub fn record_parts(&self, parts: &[WrittenPart]) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let transaction = self
            .connection
            .unchecked_transaction()
            .map_err(duckdb_error("beginning manifest update"))?;
        for part in parts {
            let metadata = &part.metadata;
            let relative = part
                .path
                .strip_prefix(&self.data_dir)
                .unwrap_or(&part.path)
                .to_string_lossy()
                .into_owned();
            transaction
                .execute(
                    "INSERT OR REPLACE INTO parts (part_id, path, cluster, date, hour, flush_seq, rows, bytes, min_ts, max_ts, created_at) \
                     VALUES (?, ?, ?, CAST(? AS DATE), ?, ?, ?, ?, make_timestamp(?), make_timestamp(?), now()::TIMESTAMP)",
                    params![
                        metadata.part_id,
                        relative,
                        metadata.cluster,
                        metadata.date,
                        i32::from(metadata.hour),
                        metadata.flush_seq as i64,
                        metadata.rows as i64,
                        part.bytes as i64,
                        metadata.min_ts,
                        metadata.max_ts
                    ],
                )
                .map_err(duckdb_error("recording a part"))?;
            transaction
                .execute(
                    "DELETE FROM part_sources WHERE part_id = ?",
                    params![metadata.part_id],
                )
                .map_err(duckdb_error("recording part sources"))?;
            for span in &metadata.sources {
                transaction
                    .execute(
                        "INSERT INTO part_sources VALUES (?, ?, ?, ?, ?)",
                        params![
                            metadata.part_id,
                            span.source_id,
                            span.min_offset as i64,
                            span.end_offset as i64,
                            span.rows as i64
                        ],
                    )
                    .map_err(duckdb_error("recording part sources"))?;
            }
            for replaced in &metadata.replaces {
                transaction
                    .execute(
                        "UPDATE parts SET removed_at = now()::TIMESTAMP, removed_reason = 'compacted into ' || ? WHERE part_id = ? AND removed_at IS NULL",
                        params![metadata.part_id, replaced],
                    )
                    .map_err(duckdb_error("marking compacted parts"))?;
            }
        }
        transaction
            .commit()
            .map_err(duckdb_error("committing manifest update"))?;
        Ok(())
    }

    /// Marks parts removed (retention, corruption) by id.
    pub fn mark_removed(&self, part_ids: &[String], reason: &str) -> Result<()> {
        for part_id in part_ids {
            self.connection
                .execute(
                    "UPDATE parts SET removed_at = now()::TIMESTAMP, removed_reason = ? WHERE part_id = ? AND removed_at IS NULL",
                    params![reason, part_id],
                )
                .map_err(duckdb_error("marking removed parts"))?;
        }
        Ok(())
    }

    /// Makes the manifest agree with the parts on disk: adds the missing,
    /// marks the vanished as removed. Returns (added, marked removed).
    pub fn reconcile(&self, on_disk: &[WrittenPart]) -> Result<(usize, usize)> {
        let mut known = std::collections::HashSet::new();
        {
            let mut statement = self
                .connection
                .prepare("SELECT part_id FROM parts WHERE removed_at IS NULL")
                .map_err(duckdb_error("reading the manifest"))?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(duckdb_error("reading the manifest"))?;
            for row in rows {
                known.insert(row.map_err(duckdb_error("reading the manifest"))?);
            }
        }
        let disk_ids: std::collections::HashSet<&str> = on_disk
            .iter()
            .map(|part| part.metadata.part_id.as_str())
            .collect();
        let missing: Vec<WrittenPart> = on_disk
            .iter()
            .filter(|part| !known.contains(&part.metadata.part_id))
            .cloned()
            .collect();
        self.record_parts(&missing)?;
        let vanished: Vec<String> = known
            .into_iter()
            .filter(|id| !disk_ids.contains(id.as_str()))
            .collect();
        self.mark_removed(&vanished, "missing from disk at start")?;
        Ok((missing.len(), vanished.len()))
    }

    /// The source ranges the manifest recorded for a part (for re-reading a
    /// part whose own footer is unreadable). `fingerprint` is the source id's
    /// first-line part; `source_file` is unknown here and left empty.
    pub fn part_sources(&self, part_id: &str) -> Result<Vec<super::writer::SourceSpan>> {
        let mut statement = self
            .connection
            .prepare("SELECT source_id, min_offset, end_offset, rows FROM part_sources WHERE part_id = ? ORDER BY source_id, min_offset")
            .map_err(duckdb_error("reading part sources"))?;
        let rows = statement
            .query_map(params![part_id], |row| {
                let source_id: String = row.get(0)?;
                Ok(super::writer::SourceSpan {
                    fingerprint: source_id.split('-').next().unwrap_or_default().to_string(),
                    source_id,
                    source_file: String::new(),
                    min_offset: row.get::<_, i64>(1)?.max(0) as u64,
                    end_offset: row.get::<_, i64>(2)?.max(0) as u64,
                    rows: row.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .map_err(duckdb_error("reading part sources"))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(duckdb_error("reading part sources"))
    }

    /// Rows per live part according to the manifest (for status and tests).
    pub fn manifest_rows(&self) -> Result<i64> {
        self.connection
            .query_row(
                "SELECT coalesce(sum(rows), 0)::BIGINT FROM parts WHERE removed_at IS NULL",
                [],
                |row| row.get(0),
            )
            .map_err(duckdb_error("summing the manifest"))
    }
}

fn is_lock_error(error: &StoreError) -> bool {
    error.to_string().to_ascii_lowercase().contains("lock")
}
