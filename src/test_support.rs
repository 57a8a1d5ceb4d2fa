//! Helpers shared by the unit tests of several modules: times and days from
//! text, and an in-memory catalog with the detection and feedback tables.

use crate::audit::AuditEvent;
use crate::store::builder::{LineOrigin, ObjectRetention, PartitionKey, PartitionedColumns};
use crate::store::writer::{PartWriter, SourceSpan, WrittenPart};
use chrono::{DateTime, NaiveDate, Utc};

/// An RFC 3339 time.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid time")
        .with_timezone(&Utc)
}

/// A `YYYY-MM-DD` day.
pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("valid date")
}

/// An in-memory catalog with the anomaly, incident and feedback tables.
pub fn catalog() -> duckdb::Connection {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    crate::detect::store::ensure_tables(&connection).expect("tables");
    connection
}

fn line(index: u64, hour: u32) -> String {
    format!(
        "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"id-{index}\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\
         \"user\":{{\"username\":\"alice\"}},\"requestReceivedTimestamp\":\"2020-01-01T{hour:02}:00:{:02}Z\"}}",
        index % 60
    )
}

/// Writes a committed-looking part of `count` events (audit IDs `id-<first>`...)
/// at 2020-01-01 `hour`:00, from source `00aa` at offsets `index * 100`.
pub fn write_part(writer: &PartWriter, seq: u64, first: u64, count: u64, hour: u32) -> WrittenPart {
    let retention = ObjectRetention::new(&[], 1024);
    let mut columns = PartitionedColumns::default();
    for index in first..first + count {
        let text = line(index, hour);
        let event = AuditEvent::decode(text.as_bytes()).expect("valid");
        columns.append(
            &event,
            LineOrigin {
                source_file: "f",
                source_fingerprint: "00aa",
                offset: index * 100,
            },
            &retention,
        );
    }
    let batches = columns.finish().expect("batches");
    let (key, batch): (PartitionKey, _) = batches.into_iter().next().expect("one partition");
    let span = SourceSpan {
        source_id: "00aa".into(),
        fingerprint: "00aa".into(),
        source_file: "f".into(),
        min_offset: first * 100,
        end_offset: (first + count) * 100,
        rows: count,
    };
    writer
        .write_part("default", key, seq, &[batch], vec![span], Vec::new())
        .expect("part")
}
