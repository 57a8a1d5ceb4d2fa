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

/// The only columns with min/max statistics. A part is sorted by `ts`, so its
/// row groups and pages hold narrow `ts` ranges that time filters prune by.
/// A string column's min/max over 131,072 rows of every identity and
/// namespace prunes nothing, and computing it compared every value: measured,
/// string statistics were ~20 % of ingest CPU (`perf`: `memcmp` under the
/// column writers).
const COLUMNS_WITH_STATISTICS: &[&str] = &["ts", "stage_ts", "response_code", "source_offset"];

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
        // One row group's rows in `ts` order: slices of the pending batches
        // when the order is made of long runs of consecutive rows (a log
        // written in time order, the usual case: no copy at all), else one
        // batch gathered row by row.
        let sorted_chunk = |range: std::ops::Range<usize>| -> Result<Vec<RecordBatch>> {
            let runs = consecutive_runs(&order[range.clone()]);
            if runs.len() * MIN_ROWS_PER_SLICE <= range.len() {
                return Ok(runs
                    .into_iter()
                    .map(|(batch, first_row, length)| batches[batch].slice(first_row, length))
                    .collect());
            }
            let indices: Vec<(usize, usize)> = order[range]
                .iter()
                .map(|entry| (entry.1, entry.2))
                .collect();
            Ok(vec![interleave_rows(&schema, batches, &indices)?])
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
        for column in COLUMNS_WITH_STATISTICS {
            properties = properties
                .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::Page);
        }
        let properties = properties
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(self.zstd_level).unwrap_or_default(),
            ))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_statistics_enabled(EnabledStatistics::None)
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
                    for piece in sorted_chunk(start..end)? {
                        writer.write(&piece).map_err(|source| StoreError::Parquet {
                            context: format!("writing {}", temporary_path.display()),
                            source,
                        })?;
                    }
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

/// Opens a part and reads its footer.
fn open_footer(path: &Path) -> Result<parquet::file::reader::SerializedFileReader<File>> {
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parquet::file::reader::SerializedFileReader::new(file).map_err(|source| StoreError::Parquet {
        context: format!("reading footer of {}", path.display()),
        source,
    })
}

/// Reads a part's self-description from its footer.
pub fn read_part_metadata(path: &Path) -> Result<PartMetadata> {
    use parquet::file::reader::FileReader;
    let reader = open_footer(path)?;
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

/// A part's rows and uncompressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartSize {
    pub rows: u64,
    /// The row groups' uncompressed column data.
    pub bytes: u64,
}

/// A part's size from its footer, without reading its data.
pub fn read_part_size(path: &Path) -> Result<PartSize> {
    use parquet::file::reader::FileReader;
    let reader = open_footer(path)?;
    let metadata = reader.metadata();
    Ok(PartSize {
        rows: metadata.file_metadata().num_rows().max(0) as u64,
        bytes: metadata
            .row_groups()
            .iter()
            .map(|group| group.total_byte_size().max(0) as u64)
            .sum(),
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

/// Below this many rows per run on average, gathering the rows into one batch
/// is cheaper than handing the writer one slice per run.
const MIN_ROWS_PER_SLICE: usize = 64;

/// `order` (entries `(ts, batch, row)`) as runs of consecutive rows of one
/// batch: `(batch, first row, length)`.
fn consecutive_runs(order: &[(i64, usize, usize)]) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(_, batch, row) in order {
        match runs.last_mut() {
            Some((run_batch, first_row, length))
                if *run_batch == batch && *first_row + *length == row =>
            {
                *length += 1;
            }
            _ => runs.push((batch, row, 1)),
        }
    }
    runs
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

    #[test]
    fn runs_of_consecutive_rows() {
        let order = [
            (1, 0, 0),
            (2, 0, 1),
            (3, 0, 2),
            (4, 1, 0),
            (5, 0, 3),
            (6, 1, 1),
            (7, 1, 2),
        ];
        assert_eq!(
            consecutive_runs(&order),
            vec![(0, 0, 3), (1, 0, 1), (0, 3, 1), (1, 1, 2)]
        );
        assert!(consecutive_runs(&[]).is_empty());
    }

    /// Rows in time order (written as slices) and out of order (gathered)
    /// both come back sorted by `ts`, every row once.
    #[test]
    fn parts_are_sorted_by_ts_whatever_the_arrival_order() {
        use crate::audit::AuditEvent;
        use crate::store::builder::{
            LineOrigin, ObjectRetention, PartitionKey, PartitionedColumns,
        };
        use arrow::array::{Array, Int64Array, TimestampMicrosecondArray};
        let retention = ObjectRetention::new(&[], 1024);
        let batch_of = |seconds: &[u32]| {
            let mut columns = PartitionedColumns::default();
            for (index, second) in seconds.iter().enumerate() {
                let line = format!(
                    "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"a{second}\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"user\":{{\"username\":\"u\"}},\"requestReceivedTimestamp\":\"2026-01-01T10:{:02}:{:02}Z\"}}",
                    second / 60,
                    second % 60
                );
                let event = AuditEvent::decode(line.as_bytes()).expect("valid");
                let origin = LineOrigin {
                    source_file: "f",
                    source_fingerprint: "00",
                    offset: u64::from(*second),
                };
                columns.append(&event, origin, &retention);
                assert_eq!(columns.rows(), index + 1);
            }
            let mut batches = columns.finish().expect("batch");
            let (_, batch): (PartitionKey, RecordBatch) = batches.remove(0);
            batch
        };
        let in_order: Vec<u32> = (0..1000).collect();
        let shuffled: Vec<u32> = (1000..2000)
            .map(|second| (second * 7919) % 1000 + 1000)
            .collect();
        let folder = tempfile::tempdir().expect("temp dir");
        let writer = PartWriter::new(folder.path().to_path_buf(), 300, 1);
        let partition = PartitionKey::of_micros(
            crate::audit::parse_rfc3339_micros("2026-01-01T10:00:00Z").expect("time"),
        );
        for (seq, seconds) in [(1, &in_order), (2, &shuffled)] {
            let halves = seconds.split_at(seconds.len() / 2);
            let batches = vec![batch_of(halves.0), batch_of(halves.1)];
            let part = writer
                .write_part("c", partition, seq, &batches, Vec::new(), Vec::new())
                .expect("part");
            let mut times = Vec::new();
            let mut offsets = Vec::new();
            for batch in read_part_batches(&part.path).expect("read back") {
                let ts = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .expect("ts");
                times.extend((0..ts.len()).map(|row| ts.value(row)));
                let offset = batch
                    .column_by_name("source_offset")
                    .and_then(|column| column.as_any().downcast_ref::<Int64Array>())
                    .expect("offsets");
                offsets.extend((0..offset.len()).map(|row| offset.value(row)));
            }
            assert!(
                times.windows(2).all(|pair| pair[0] <= pair[1]),
                "part {seq} not sorted"
            );
            offsets.sort_unstable();
            let expected: Vec<i64> = {
                let mut all: Vec<i64> = seconds.iter().map(|second| i64::from(*second)).collect();
                all.sort_unstable();
                all
            };
            assert_eq!(offsets, expected, "part {seq} lost or repeated rows");
        }
    }
}
