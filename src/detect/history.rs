//! Replaying stored history through the detectors.
//!
//! Events are read from the `events` view in `(ts, stage_ts)` order, in time
//! slices (default 6 h) so that DuckDB sorts one slice at a time and memory is
//! bounded by the slice, not by history; each slice is streamed as Arrow
//! record batches and turned back into [`AuditEvent`]s, so the rules run on
//! exactly the type the live path gives them. All stages but RequestReceived
//! are read: [`super::stages::FinalStageFilter`] picks the one to evaluate,
//! as it does live. Everything before `since` is not replayed but *learned*:
//! the novelty index is rebuilt from it with aggregate queries.
//!
//! Stored rows do not carry the impersonated user's groups or the full
//! annotation map; the reconstructed event has the impersonated username, the
//! authorization decision and reason, which is all the rules read.

use super::anomaly::Anomaly;
use super::live::{DetectorOptions, LiveDetector};
use crate::audit::{AuditEvent, UserInfo};
use crate::audit::{ObjectReference, ResponseStatus};
use crate::store::views::{install_views, sql_string_literal};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use duckdb::Connection;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::path::Path;

/// What can go wrong replaying history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{context}: {source}")]
    DuckDb {
        context: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = HistoryError> = std::result::Result<T, E>;

fn database(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> HistoryError {
    let context = context.into();
    move |source| HistoryError::DuckDb { context, source }
}

/// A detector that scores whole windows of stored history rather than single
/// events: the seam where the model layer (`src/model`) plugs into `auditlens
/// detect`. It runs after the event replay, over the same range, on the same
/// DuckDB session (with the `events` and `requests` views installed).
pub trait WindowDetector {
    /// A short name for logs and errors.
    fn name(&self) -> &str;
    /// Anomalies for windows within `[since, until)` (UTC µs).
    fn detect(
        &mut self,
        connection: &Connection,
        since: i64,
        until: i64,
    ) -> std::result::Result<Vec<Anomaly>, String>;
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayRange {
    /// Start of detection (UTC µs); `None` = the first stored event.
    pub since: Option<i64>,
    /// End of detection, exclusive; `None` = after the last stored event.
    pub until: Option<i64>,
    /// Length of one sorted slice.
    pub slice_micros: i64,
}

impl Default for ReplayRange {
    fn default() -> Self {
        ReplayRange {
            since: None,
            until: None,
            slice_micros: 6 * 3_600_000_000,
        }
    }
}

/// What a replay produced.
#[derive(Debug, Default)]
pub struct ReplayOutcome {
    pub anomalies: Vec<Anomaly>,
    pub since: i64,
    pub until: i64,
    pub events_read: u64,
    pub identities_learned: u64,
    pub silenced_by_habit: u64,
    /// Window detectors that failed, with their error (detection went on without them).
    pub failed_detectors: Vec<(String, String)>,
}

/// Opens an in-memory DuckDB session with the views over `data_dir`.
pub fn open_session(data_dir: &Path) -> Result<Connection> {
    let connection =
        Connection::open_in_memory().map_err(database("opening an in-memory DuckDB session"))?;
    install_views(&connection, data_dir)?;
    Ok(connection)
}

/// First and last `ts` of stored events (UTC µs), `None` when nothing is stored.
pub fn stored_time_range(connection: &Connection) -> Result<Option<(i64, i64)>> {
    let range: (Option<i64>, Option<i64>) = connection
        .query_row(
            "SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM events",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(database("reading the stored time range"))?;
    Ok(match range {
        (Some(first), Some(last)) => Some((first, last)),
        _ => None,
    })
}

/// Learns the novelty baseline of `cluster` from its stored events before
/// `until` (UTC µs) within the lookback, leaving out the `excluded` windows
/// (confirmed attacks); returns how many identities it learned. The daemon
/// calls it at start, before reading, so a restart does not put every
/// identity back into learning.
pub fn learn_baseline(
    connection: &Connection,
    detector: &mut LiveDetector,
    cluster: &str,
    until: i64,
    excluded: &[crate::model::ExcludedWindow],
) -> Result<u64> {
    detector
        .cluster(cluster)
        .novelty_mut()
        .rebuild_for_cluster(connection, until, Some(cluster), excluded)
        .map_err(database(format!(
            "learning the novelty history of cluster {cluster}"
        )))
}

/// Replays `range` through rules and novelty (after learning from everything
/// before it), then runs the window detectors. Anomalies are sorted by window
/// start.
pub fn replay(
    connection: &Connection,
    options: &DetectorOptions,
    range: &ReplayRange,
    window_detectors: &mut [Box<dyn WindowDetector>],
) -> Result<ReplayOutcome> {
    let Some((first, last)) = stored_time_range(connection)? else {
        return Ok(ReplayOutcome::default());
    };
    let since = range.since.unwrap_or(first);
    let until = range.until.unwrap_or(last + 1);
    if until <= since {
        return Err(HistoryError::Invalid(format!(
            "empty range: until ({until}) is not after since ({since})"
        )));
    }
    let mut outcome = ReplayOutcome {
        since,
        until,
        ..ReplayOutcome::default()
    };
    let mut detector = LiveDetector::new(options.clone());
    let clusters = stored_clusters(connection)?;
    if since > first && !options.disable_novelty {
        for cluster in &clusters {
            outcome.identities_learned +=
                learn_baseline(connection, &mut detector, cluster, since, &[])?;
        }
    }
    let slice = range.slice_micros.max(60_000_000);
    let mut slice_start = since;
    while slice_start < until {
        let slice_end = (slice_start + slice).min(until);
        let sql = format!(
            "SELECT epoch_us(ts), epoch_us(stage_ts), audit_id, stage, level, verb, request_uri, username, \
             array_to_string(user_groups, chr(31)), impersonated_user, array_to_string(source_ips, chr(31)), source_ip, \
             user_agent, api_group, api_version, resource, subresource, namespace, name, response_code, response_reason, \
             decision, authz_reason, request_object, response_object, cluster \
             FROM events WHERE ts >= make_timestamp({slice_start}) AND ts < make_timestamp({slice_end}) \
             AND stage <> 'RequestReceived' ORDER BY ts, stage_ts, audit_id, stage"
        );
        let mut statement = connection
            .prepare(&sql)
            .map_err(database("preparing the event replay"))?;
        let stream = statement
            .stream_arrow([])
            .map_err(database("reading stored events"))?;
        for batch in stream {
            let batch = batch.map_err(database("reading a batch of stored events"))?;
            for (event, cluster) in events_of_batch(&batch)? {
                outcome.events_read += 1;
                outcome.anomalies.extend(detector.observe(&event, &cluster));
            }
        }
        slice_start = slice_end;
    }
    outcome.anomalies.extend(detector.finish());
    outcome.silenced_by_habit = detector.silenced_by_habit();
    for window_detector in window_detectors.iter_mut() {
        match window_detector.detect(connection, since, until) {
            Ok(anomalies) => outcome.anomalies.extend(anomalies),
            Err(error) => {
                tracing::warn!(detector = window_detector.name(), %error, "window detector failed; continuing without it");
                outcome
                    .failed_detectors
                    .push((window_detector.name().to_string(), error));
            }
        }
    }
    outcome.anomalies.sort_by(|a, b| {
        a.window_start
            .cmp(&b.window_start)
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(outcome)
}

fn stored_clusters(connection: &Connection) -> Result<Vec<String>> {
    let mut statement = connection
        .prepare("SELECT DISTINCT coalesce(cluster, 'default') FROM events ORDER BY 1")
        .map_err(database("listing stored clusters"))?;
    let clusters = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(database("listing stored clusters"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(database("reading stored clusters"))?;
    Ok(clusters)
}

/// Turns one record batch of the replay query back into events.
fn events_of_batch(batch: &RecordBatch) -> Result<Vec<(AuditEvent, String)>> {
    let int64 = |index: usize| -> Result<arrow::array::PrimitiveArray<Int64Type>> {
        let column =
            arrow::compute::cast(batch.column(index), &DataType::Int64).map_err(|source| {
                HistoryError::Arrow {
                    context: format!("column {index} as BIGINT"),
                    source,
                }
            })?;
        Ok(column.as_primitive::<Int64Type>().clone())
    };
    let int32 = |index: usize| -> Result<arrow::array::PrimitiveArray<Int32Type>> {
        let column =
            arrow::compute::cast(batch.column(index), &DataType::Int32).map_err(|source| {
                HistoryError::Arrow {
                    context: format!("column {index} as INTEGER"),
                    source,
                }
            })?;
        Ok(column.as_primitive::<Int32Type>().clone())
    };
    let text = |index: usize| -> Result<arrow::array::StringArray> {
        let column =
            arrow::compute::cast(batch.column(index), &DataType::Utf8).map_err(|source| {
                HistoryError::Arrow {
                    context: format!("column {index} as VARCHAR"),
                    source,
                }
            })?;
        Ok(column.as_string::<i32>().clone())
    };
    let ts = int64(0)?;
    let stage_ts = int64(1)?;
    let columns: Vec<arrow::array::StringArray> = (2..19).map(&text).collect::<Result<_>>()?;
    let response_code = int32(19)?;
    let late: Vec<arrow::array::StringArray> = (20..26).map(&text).collect::<Result<_>>()?;
    let get = |array: &arrow::array::StringArray, row: usize| -> Option<String> {
        if array.is_null(row) {
            None
        } else {
            Some(array.value(row).to_string())
        }
    };
    let mut events = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        if ts.is_null(row) {
            continue;
        }
        let column = |index: usize| get(&columns[index - 2], row);
        let late_column = |index: usize| get(&late[index - 20], row);
        let split = |value: Option<String>| -> Vec<String> {
            value
                .map(|joined| {
                    joined
                        .split('\u{1f}')
                        .filter(|part| !part.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut source_ips = split(column(10));
        if source_ips.is_empty()
            && let Some(ip) = column(11)
        {
            source_ips.push(ip);
        }
        let mut annotations = BTreeMap::new();
        if let Some(decision) = late_column(21) {
            annotations.insert("authorization.k8s.io/decision".to_string(), decision);
        }
        if let Some(reason) = late_column(22) {
            annotations.insert("authorization.k8s.io/reason".to_string(), reason);
        }
        let raw = |value: Option<String>| value.and_then(|json| RawValue::from_string(json).ok());
        let resource = column(15);
        let object_ref = resource.as_ref().map(|_| ObjectReference {
            resource: column(15),
            namespace: column(17),
            name: column(18),
            api_group: column(13),
            api_version: column(14),
            subresource: column(16),
            ..ObjectReference::default()
        });
        let code = if response_code.is_null(row) {
            None
        } else {
            Some(response_code.value(row))
        };
        let event = AuditEvent {
            ts: ts.value(row),
            stage_ts: if stage_ts.is_null(row) {
                ts.value(row)
            } else {
                stage_ts.value(row)
            },
            audit_id: column(2).unwrap_or_default(),
            stage: column(3).unwrap_or_default(),
            level: column(4).unwrap_or_default(),
            verb: column(5).unwrap_or_default(),
            request_uri: column(6).unwrap_or_default(),
            api_version_of_event: "audit.k8s.io/v1".into(),
            user: UserInfo {
                username: column(7).unwrap_or_default(),
                uid: None,
                groups: split(column(8)),
            },
            impersonated_user: column(9)
                .filter(|name| !name.is_empty())
                .map(|username| UserInfo {
                    username,
                    uid: None,
                    groups: Vec::new(),
                }),
            source_ips,
            user_agent: column(12),
            object_ref,
            response_status: Some(ResponseStatus {
                code,
                reason: late_column(20),
                ..ResponseStatus::default()
            }),
            request_object: raw(late_column(23)),
            response_object: raw(late_column(24)),
            annotations,
        };
        let cluster = late_column(25).unwrap_or_else(|| "default".into());
        events.push((event, cluster));
    }
    Ok(events)
}

/// Parses a `--since`/`--until` value: RFC 3339 (`2026-11-27T09:00:00Z`) or a
/// date (`2026-11-27`, midnight UTC).
pub fn parse_time_argument(text: &str) -> std::result::Result<i64, String> {
    if let Some(micros) = crate::audit::parse_rfc3339_micros(text) {
        return Ok(micros);
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc().timestamp_micros());
    }
    Err(format!(
        "{text:?} is not a time: use RFC 3339 (2026-11-27T09:00:00Z) or a date (2026-11-27)"
    ))
}

/// A SQL literal for a cluster filter (used by the novelty rebuild).
pub(crate) fn cluster_condition(cluster: Option<&str>) -> String {
    match cluster {
        Some(cluster) => format!(
            "coalesce(cluster, 'default') = {}",
            sql_string_literal(cluster)
        ),
        None => "true".into(),
    }
}

/// Replays audit-log files directly (JSON lines, `.gz` allowed), without the
/// store: for ad-hoc analysis of a log someone hands you, and for evaluating
/// detection on simulator output before it is ingested. Files are read in the
/// order given (for a rotated set: `audit-*.log* audit.log`). Everything is
/// observed, so history before `since` warms the detectors exactly as live
/// operation would; anomalies whose window starts before `since` or at or
/// after `until` are dropped. Lines that do not decode are counted and skipped.
pub fn replay_logs(
    paths: &[std::path::PathBuf],
    options: &DetectorOptions,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<ReplayOutcome> {
    use std::io::BufRead;
    let mut detector = LiveDetector::new(options.clone());
    let mut outcome = ReplayOutcome {
        since: i64::MAX,
        until: i64::MIN,
        ..ReplayOutcome::default()
    };
    let mut undecodable = 0u64;
    for path in paths {
        let file = std::fs::File::open(path)
            .map_err(|error| HistoryError::Invalid(format!("{}: {error}", path.display())))?;
        let reader: Box<dyn std::io::Read> =
            if path.extension().is_some_and(|extension| extension == "gz") {
                Box::new(flate2::read::MultiGzDecoder::new(file))
            } else {
                Box::new(file)
            };
        let mut lines = std::io::BufReader::with_capacity(1 << 20, reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = lines
                .read_until(b'\n', &mut line)
                .map_err(|error| HistoryError::Invalid(format!("{}: {error}", path.display())))?;
            if read == 0 {
                break;
            }
            let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
            if trimmed.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(event) = AuditEvent::decode(trimmed) else {
                undecodable += 1;
                continue;
            };
            if until.is_some_and(|until| event.ts >= until) {
                continue;
            }
            outcome.events_read += 1;
            outcome.since = outcome.since.min(event.ts);
            outcome.until = outcome.until.max(event.ts + 1);
            outcome
                .anomalies
                .extend(detector.observe(&event, "default"));
        }
    }
    outcome.anomalies.extend(detector.finish());
    if undecodable > 0 {
        tracing::warn!(undecodable, "lines that are not audit events were skipped");
    }
    if let Some(since) = since {
        outcome.since = since;
        outcome
            .anomalies
            .retain(|anomaly| anomaly.window_start_micros() >= since);
    }
    if let Some(until) = until {
        outcome.until = until;
        outcome
            .anomalies
            .retain(|anomaly| anomaly.window_start_micros() < until);
    }
    if outcome.since > outcome.until {
        outcome.since = 0;
        outcome.until = 0;
    }
    outcome.silenced_by_habit = detector.silenced_by_habit();
    outcome.anomalies.sort_by(|a, b| {
        a.window_start
            .cmp(&b.window_start)
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(outcome)
}
