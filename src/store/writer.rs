//! The Parquet part writer: one partition's rows → one immutable, self-describing
//! part file, written atomically.
//!
//! A part is written to a hidden temporary file, fsynced, renamed into place and
//! the folder fsynced, so a reader (or a crash) sees either the whole part or
//! nothing. Each part records, in its Parquet key-value metadata, the flush it
//! belongs to and the source byte offsets of its rows ([`PartMetadata`]). That
//! makes the folder of parts the durable truth: the catalog's manifest and
//! `checkpoints.json` can both be rebuilt from it. The flush sequence is also in
//! the file name, so start-up reconciliation can tell committed parts from the
//! orphans of a crashed flush without opening them.

use super::builder::PartitionKey;
use super::schema::event_schema;
use super::{Result, StoreError};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Columns whose values almost never repeat: a dictionary would only be
/// built, found too large and thrown away (Parquet falls back to plain), at
/// the cost of hashing and comparing every value. Measured: dictionary
/// interning and its comparisons were ~5 % of ingest CPU.
const NEARLY_UNIQUE_COLUMNS: &[&str] = &[
    "ts",
    "stage_ts",
    "audit_id",
    "request_uri",
    "annotations",
    "request_object",
    "response_object",
    "source_offset",
];

/// Columns no query prunes row groups or pages by (free text, JSON, random
/// IDs in a part sorted by time): min/max statistics would compare every
/// value for nothing.
const COLUMNS_WITHOUT_STATISTICS: &[&str] = &[
    "audit_id",
    "request_uri",
    "user_agent",
    "response_reason",
    "authz_reason",
    "annotations",
    "request_object",
    "response_object",
    "source_fingerprint",
];

/// The key under which a part's [`PartMetadata`] is stored in the Parquet footer.
pub const PART_METADATA_KEY: &str = "auditlens.part";

/// The rows a part holds from one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpan {
    pub source_id: String,
    /// The first-line fingerprint of the source, hex.
    pub fingerprint: String,
    /// The path the lines were read from.
    pub source_file: String,
    /// Offset of the first line held.
    pub min_offset: u64,
    /// Exclusive end of the last line held.
    pub end_offset: u64,
    pub rows: u64,
}

/// What a part says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMetadata {
    pub format_version: u32,
    pub part_id: String,
    pub flush_seq: u64,
    pub cluster: String,
    pub date: String,
    pub hour: u8,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub sources: Vec<SourceSpan>,
    /// For a compacted part: the parts it replaces (their part ids).
    #[serde(default)]
    pub replaces: Vec<String>,
}

/// A part on disk: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenPart {
    pub path: PathBuf,
    pub bytes: u64,
    pub metadata: PartMetadata,
}

/// Writes parts under `<events>/cluster=C/date=D/hour=HH/`.
#[derive(Debug, Clone)]
pub struct PartWriter {
    events_dir: PathBuf,
    row_group_rows: usize,
    zstd_level: i32,
}

/// Builds a part id that sorts by flush sequence: `part-<seq>-<ulid>`.
pub fn part_id(flush_seq: u64) -> String {
    format!("part-{flush_seq:012}-{}", ulid::Ulid::new())
}

/// The flush sequence encoded in a part's file name, if it is one of ours.
pub fn flush_seq_of_file_name(file_name: &str) -> Option<u64> {
    let rest = file_name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    rest.split('-').next()?.parse().ok()
}

impl PartWriter {
    pub fn new(
        events_dir: impl Into<PathBuf>,
        row_group_rows: usize,
        zstd_level: i32,
    ) -> PartWriter {
        PartWriter {
            events_dir: events_dir.into(),
            row_group_rows: row_group_rows.max(1),
            zstd_level,
        }
    }

    pub fn partition_dir(&self, cluster: &str, date: &str, hour: u8) -> PathBuf {
        self.events_dir
            .join(format!("cluster={cluster}"))
            .join(format!("date={date}"))
            .join(format!("hour={hour:02}"))
    }

    /// Writes `batches` (all of one partition) as one part, sorted by `ts`.
    /// `sources` and `replaces` are recorded in the part's metadata.
    pub fn write_part(
        &self,
        cluster: &str,
        partition: PartitionKey,
        flush_seq: u64,
        batches: &[RecordBatch],
        sources: Vec<SourceSpan>,
        replaces: Vec<String>,
    ) -> Result<WrittenPart> {
        let schema = event_schema();
        let order = ts_order(batches)?;
        let rows = order.len();
        let min_ts = order.first().map_or(0, |entry| entry.0);
        let max_ts = order.last().map_or(0, |entry| entry.0);
        let sorted_chunk = |range: std::ops::Range<usize>| -> Result<RecordBatch> {
            let indices: Vec<(usize, usize)> = order[range]
                .iter()
                .map(|entry| (entry.1, entry.2))
                .collect();
            interleave_rows(&schema, batches, &indices)
        };
        let date = partition.date_text();
        let id = part_id(flush_seq);
        let metadata = PartMetadata {
            format_version: 1,
            part_id: id.clone(),
            flush_seq,
            cluster: cluster.to_string(),
            date: date.clone(),
            hour: partition.hour,
            rows: rows as u64,
            min_ts,
            max_ts,
            sources,
            replaces,
        };
        let directory = self.partition_dir(cluster, &date, partition.hour);
        std::fs::create_dir_all(&directory).map_err(|source| StoreError::Io {
            path: directory.clone(),
            source,
        })?;
        let final_path = directory.join(format!("{id}.parquet"));
        let temporary_path = directory.join(format!(".{id}.parquet.tmp"));
        let metadata_json = serde_json::to_string(&metadata)
            .map_err(|error| StoreError::Invalid(format!("serializing part metadata: {error}")))?;
        let mut properties = WriterProperties::builder();
        for column in NEARLY_UNIQUE_COLUMNS {
            properties = properties.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        for column in COLUMNS_WITHOUT_STATISTICS {
            properties = properties
                .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
        }
        let properties = properties
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(self.zstd_level).unwrap_or_default(),
            ))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                PART_METADATA_KEY.to_string(),
                metadata_json,
            )]))
            .set_created_by(format!("auditlens {}", env!("CARGO_PKG_VERSION")))
            .build();
        let write_result =
            (|| -> Result<()> {
                let file = File::create(&temporary_path).map_err(|source| StoreError::Io {
                    path: temporary_path.clone(),
                    source,
                })?;
                let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
                    .map_err(|source| StoreError::Parquet {
                        context: format!("opening {}", temporary_path.display()),
                        source,
                    })?;
                // One row group's worth of sorted rows at a time: memory holds the
                // pending batches plus one row group, never a second full copy.
                let mut start = 0;
                while start < rows {
                    let end = (start + self.row_group_rows).min(rows);
                    let chunk = sorted_chunk(start..end)?;
                    writer.write(&chunk).map_err(|source| StoreError::Parquet {
                        context: format!("writing {}", temporary_path.display()),
                        source,
                    })?;
                    writer.flush().map_err(|source| StoreError::Parquet {
                        context: format!("writing {}", temporary_path.display()),
                        source,
                    })?;
                    start = end;
                }
                let file = writer.into_inner().map_err(|source| StoreError::Parquet {
                    context: format!("closing {}", temporary_path.display()),
                    source,
                })?;
                // If we die before this fsync, the temporary file is garbage that
                // start-up removes; the checkpoint has not moved.
                file.sync_all().map_err(|source| StoreError::Io {
                    path: temporary_path.clone(),
                    source,
                })?;
                Ok(())
            })();
        if let Err(error) = write_result {
            let _ = std::fs::remove_file(&temporary_path);
            return Err(error);
        }
        std::fs::rename(&temporary_path, &final_path).map_err(|source| StoreError::Io {
            path: final_path.clone(),
            source,
        })?;
        if let Err(error) = sync_dir(&directory) {
            // The caller treats an error as "no part": a part left behind
            // would carry a flush sequence the retry reuses, and be committed
            // twice with it.
            let _ = std::fs::remove_file(&final_path);
            return Err(error);
        }
        let bytes = std::fs::metadata(&final_path)
            .map(|meta| meta.len())
            .unwrap_or(0);
        Ok(WrittenPart {
            path: final_path,
            bytes,
            metadata,
        })
    }
}

/// Reads a part's self-description from its footer.
pub fn read_part_metadata(path: &Path) -> Result<PartMetadata> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|source| StoreError::Parquet {
        context: format!("reading footer of {}", path.display()),
        source,
    })?;
    let text = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|pairs| pairs.iter().find(|pair| pair.key == PART_METADATA_KEY))
        .and_then(|pair| pair.value.clone())
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "{} has no {PART_METADATA_KEY} metadata",
                path.display()
            ))
        })?;
    serde_json::from_str(&text).map_err(|error| {
        StoreError::Invalid(format!("{}: bad part metadata: {error}", path.display()))
    })
}

/// Reads every row of a part.
pub fn read_part_batches(path: &Path) -> Result<Vec<RecordBatch>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.with_batch_size(65_536).build())
        .map_err(|source| StoreError::Parquet {
            context: format!("opening {}", path.display()),
            source,
        })?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| StoreError::Arrow {
            context: format!("reading {}", path.display()),
            source,
        })
}

pub fn sync_dir(directory: &Path) -> Result<()> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| StoreError::Io {
            path: directory.to_path_buf(),
            source,
        })
}

/// (ts, batch index, row index) of every row, in ts order (stable).
fn ts_order(batches: &[RecordBatch]) -> Result<Vec<(i64, usize, usize)>> {
    use arrow::array::{Array, TimestampMicrosecondArray};
    let mut order = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for (batch_index, batch) in batches.iter().enumerate() {
        let ts = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| {
                StoreError::Invalid("the first column of an event batch is not ts".into())
            })?;
        for row in 0..ts.len() {
            order.push((ts.value(row), batch_index, row));
        }
    }
    order.sort_by_key(|entry| entry.0);
    Ok(order)
}

/// Builds one batch from rows picked across `batches`.
fn interleave_rows(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
    indices: &[(usize, usize)],
) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for column in 0..schema.fields().len() {
        let arrays: Vec<&dyn arrow::array::Array> = batches
            .iter()
            .map(|batch| batch.column(column).as_ref())
            .collect();
        let array =
            arrow::compute::interleave(&arrays, indices).map_err(|source| StoreError::Arrow {
                context: "ordering rows by ts".into(),
                source,
            })?;
        columns.push(array);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|source| StoreError::Arrow {
        context: "ordering rows by ts".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_seq_is_read_back_from_names() {
        let id = part_id(42);
        assert_eq!(flush_seq_of_file_name(&format!("{id}.parquet")), Some(42));
        assert_eq!(flush_seq_of_file_name("part-x.parquet"), None);
        assert_eq!(
            flush_seq_of_file_name(".part-000000000042-X.parquet.tmp"),
            None
        );
    }
}
