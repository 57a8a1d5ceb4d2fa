//! How the CLI prints results: aligned tables, CSV, JSON lines, raw Arrow IPC.

use super::ApiError;
use super::client::QueryResult;
use super::proto;
use std::io::Write;

/// `--format` of `auditlens query` and `.format` of the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
    Arrow,
}

impl OutputFormat {
    /// The wire format to ask the server for.
    pub fn result_format(self) -> proto::ResultFormat {
        match self {
            OutputFormat::Json => proto::ResultFormat::JsonRows,
            _ => proto::ResultFormat::ArrowIpc,
        }
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "arrow" => Ok(OutputFormat::Arrow),
            other => Err(format!(
                "unknown format {other:?}: expected table, csv, json or arrow"
            )),
        }
    }
}

fn write_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::Client(format!("writing output: {error}"))
}

/// Prints a result in `format`.
pub fn print_result(
    result: &QueryResult,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), ApiError> {
    match format {
        OutputFormat::Table => {
            let table = match &result.schema {
                Some(schema) if result.batches.is_empty() => {
                    let empty = arrow::array::RecordBatch::new_empty(schema.clone());
                    arrow::util::pretty::pretty_format_batches(&[empty])
                }
                _ => arrow::util::pretty::pretty_format_batches(&result.batches),
            }
            .map_err(write_error)?;
            writeln!(out, "{table}").map_err(write_error)?;
        }
        OutputFormat::Csv => {
            if result.batches.is_empty()
                && let Some(schema) = &result.schema
            {
                let names: Vec<&str> = schema
                    .fields()
                    .iter()
                    .map(|field| field.name().as_str())
                    .collect();
                writeln!(out, "{}", names.join(",")).map_err(write_error)?;
            }
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            for batch in &result.batches {
                writer.write(batch).map_err(write_error)?;
            }
        }
        OutputFormat::Json => {
            for row in &result.json_rows {
                writeln!(out, "{row}").map_err(write_error)?;
            }
        }
        OutputFormat::Arrow => out.write_all(&result.ipc_stream).map_err(write_error)?,
    }
    out.flush().map_err(write_error)
}

/// The line printed to stderr when a result was cut.
pub fn truncation_note(summary: &proto::QuerySummary) -> Option<String> {
    summary.truncated.then(|| {
        format!(
            "result truncated after {} rows: {}",
            summary.rows, summary.truncation_reason
        )
    })
}

/// Formats a protobuf timestamp as RFC 3339 UTC.
pub fn timestamp_text(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|timestamp| {
            chrono::DateTime::from_timestamp(timestamp.seconds, timestamp.nanos.max(0) as u32)
        })
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

/// One anomaly per line, for `auditlens anomalies`.
pub fn anomaly_line(anomaly: &proto::Anomaly) -> String {
    format!(
        "{seq:>6}  {start}  {severity:<8}  {identity:<40}  {detector:<28}  {title}",
        seq = anomaly.seq,
        start = timestamp_text(anomaly.window_start.as_ref()),
        severity = anomaly.severity,
        identity = anomaly.identity,
        detector = anomaly.detector,
        title = anomaly.title,
    )
}
