//! When the nightly report is due, writing it atomically, retention, and the
//! daemon's scheduler thread (which also refreshes the catalog export that
//! `auditlens report` reads while the daemon holds the catalog).
//!
//! The schedule is stateless: the newest `data/reports/<date>.json` is the
//! record of what was written, so a daemon down at 02:00 writes the report
//! when it comes back, and a restart never writes one twice.

use super::build::{
    MODEL_TABLES, RISKY_GRANT_TABLES, UNUSED_GRANT_TABLES, build_report_with, table_exists,
};
use super::{ReportConfig, ReportError, ReportFormat, Result, catalog_export_dir, render};
use crate::store::views::sql_string_literal;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The day whose report should be written now, if any: the previous UTC day
/// once `now` is past the scheduled time (else the day before it), unless a
/// report for that day (or a later one) was already written.
pub fn due_report_date(
    now: DateTime<Utc>,
    config: &ReportConfig,
    last_written: Option<NaiveDate>,
) -> Option<NaiveDate> {
    if !config.enabled {
        return None;
    }
    let scheduled = config.schedule_time().ok()?;
    let today = now.date_naive();
    let target = if now.time() >= scheduled {
        today - Duration::days(1)
    } else {
        today - Duration::days(2)
    };
    match last_written {
        Some(written) if written >= target => None,
        _ => Some(target),
    }
}

/// `data/reports/<date>.<ext>`.
pub fn report_path(data_dir: &Path, date: NaiveDate, format: ReportFormat) -> PathBuf {
    data_dir.join("reports").join(format!(
        "{}.{}",
        date.format("%Y-%m-%d"),
        format.extension()
    ))
}

fn report_files(data_dir: &Path) -> Vec<(NaiveDate, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("reports")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let date = NaiveDate::parse_from_str(name.get(..10)?, "%Y-%m-%d").ok()?;
            Some((date, path))
        })
        .collect()
}

/// The newest day with a JSON report in `data/reports/` (JSON is written last).
pub fn latest_written_report(data_dir: &Path) -> Option<NaiveDate> {
    report_files(data_dir)
        .into_iter()
        .filter(|(_, path)| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .map(|(date, _)| date)
        .max()
}

/// Writes the report in each format (each file atomically), JSON last so its
/// presence means the whole set is there.
pub fn write_report(
    data_dir: &Path,
    report: &super::Report,
    formats: &[ReportFormat],
) -> Result<Vec<PathBuf>> {
    let mut ordered: Vec<ReportFormat> = formats
        .iter()
        .copied()
        .filter(|format| *format != ReportFormat::Json)
        .collect();
    ordered.dedup();
    ordered.push(ReportFormat::Json);
    let mut written = Vec::new();
    for format in ordered {
        let path = report_path(data_dir, report.date, format);
        crate::store::atomic_write(&path, render(report, format)?.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Deletes reports older than `retention_days` before `today` (0 keeps all).
/// Returns the files removed.
pub fn apply_retention(
    data_dir: &Path,
    retention_days: u32,
    today: NaiveDate,
) -> Result<Vec<PathBuf>> {
    if retention_days == 0 {
        return Ok(Vec::new());
    }
    let oldest_kept = today - Duration::days(i64::from(retention_days));
    let mut removed = Vec::new();
    for (date, path) in report_files(data_dir) {
        if date < oldest_kept {
            std::fs::remove_file(&path).map_err(|source| ReportError::Io {
                path: path.clone(),
                source,
            })?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Copies the catalog tables a report reads to `data/catalog-export/<table>.parquet`
/// (each via a temporary file and a rename), for readers outside the daemon.
pub fn export_catalog_snapshot(
    connection: &duckdb::Connection,
    data_dir: &Path,
) -> Result<Vec<String>> {
    let directory = catalog_export_dir(data_dir);
    std::fs::create_dir_all(&directory).map_err(|source| ReportError::Io {
        path: directory.clone(),
        source,
    })?;
    let mut exported = Vec::new();
    let tables = ["anomalies", "incidents", "parts"]
        .into_iter()
        .chain(["triage_events", "suppressions", "threshold_changes"])
        .chain(["rbac_snapshots"])
        .chain(MODEL_TABLES)
        .chain(RISKY_GRANT_TABLES)
        .chain(UNUSED_GRANT_TABLES);
    for table in tables {
        if !table_exists(connection, table)? {
            continue;
        }
        let temporary = directory.join(format!(".{table}.parquet.tmp"));
        let final_path = directory.join(format!("{table}.parquet"));
        connection
            .execute_batch(&format!(
                "COPY (SELECT * FROM \"{table}\") TO {} (FORMAT parquet)",
                sql_string_literal(&temporary.to_string_lossy())
            ))
            .map_err(|source| ReportError::DuckDb {
                context: format!("exporting table {table}"),
                source,
            })?;
        std::fs::rename(&temporary, &final_path).map_err(|source| ReportError::Io {
            path: final_path.clone(),
            source,
        })?;
        exported.push(table.to_string());
    }
    Ok(exported)
}

/// The daemon's report thread: writes the nightly report when due, applies
/// retention, refreshes the catalog export.
pub struct ReportScheduler {
    pub data_dir: PathBuf,
    pub cluster: String,
    pub config: ReportConfig,
    /// Where report build times and failures are counted, if anywhere.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl ReportScheduler {
    /// One check at `now`: writes the due report, if any, and returns its day.
    pub fn tick(
        &self,
        connection: &duckdb::Connection,
        now: DateTime<Utc>,
    ) -> Result<Option<NaiveDate>> {
        let Some(date) = due_report_date(now, &self.config, latest_written_report(&self.data_dir))
        else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let built = build_report_with(
            &self.data_dir,
            connection,
            date,
            &self.cluster,
            &self.config.build_options("catalog"),
        )
        .and_then(|report| {
            write_report(&self.data_dir, &report, &self.config.formats)
                .map(|written| (report, written))
        });
        if let Some(metrics) = &self.metrics {
            metrics.record_report(started.elapsed().as_secs_f64(), built.is_ok());
        }
        let (report, written) = built?;
        apply_retention(&self.data_dir, self.config.retention_days, now.date_naive())?;
        tracing::info!(
            %date,
            files = written.len(),
            incidents = report.incidents.len(),
            seconds = started.elapsed().as_secs_f64(),
            "nightly report written"
        );
        Ok(Some(date))
    }

    /// Runs on its own thread until `stop` is set: checks every 30 s.
    pub fn spawn(
        self,
        connection: duckdb::Connection,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("auditlens-report".to_string()).spawn(move || {
            let export_every = std::time::Duration::from_secs(self.config.export_interval_seconds);
            let mut last_export: Option<std::time::Instant> = None;
            while !stop.load(Ordering::SeqCst) {
                if let Err(error) = self.tick(&connection, Utc::now()) {
                    tracing::error!(%error, "nightly report failed; retrying at the next check");
                }
                if !export_every.is_zero() && last_export.is_none_or(|at| at.elapsed() >= export_every) {
                    if let Err(error) = export_catalog_snapshot(&connection, &self.data_dir) {
                        tracing::warn!(%error, "refreshing the catalog export failed");
                    }
                    last_export = Some(std::time::Instant::now());
                }
                for _ in 0..300 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{at, day};

    #[test]
    fn due_after_the_scheduled_time_for_the_previous_day() {
        let config = ReportConfig::default();
        assert_eq!(
            due_report_date(at("2026-11-27T02:00:00Z"), &config, None),
            Some(day("2026-11-26"))
        );
        assert_eq!(
            due_report_date(at("2026-11-27T01:59:59Z"), &config, None),
            Some(day("2026-11-25"))
        );
        assert_eq!(
            due_report_date(at("2026-11-27T01:59:59Z"), &config, Some(day("2026-11-25"))),
            None
        );
        assert_eq!(
            due_report_date(at("2026-11-27T02:00:00Z"), &config, Some(day("2026-11-25"))),
            Some(day("2026-11-26"))
        );
        assert_eq!(
            due_report_date(at("2026-11-27T23:00:00Z"), &config, Some(day("2026-11-26"))),
            None
        );
    }

    #[test]
    fn disabled_or_unparsable_schedule_is_never_due() {
        let mut config = ReportConfig {
            enabled: false,
            ..ReportConfig::default()
        };
        assert_eq!(
            due_report_date(at("2026-11-27T12:00:00Z"), &config, None),
            None
        );
        config.enabled = true;
        config.time_utc = "25:99".to_string();
        assert_eq!(
            due_report_date(at("2026-11-27T12:00:00Z"), &config, None),
            None
        );
        assert!(config.schedule_time().is_err());
    }

    #[test]
    fn retention_removes_only_old_reports() {
        let directory = tempfile::tempdir().expect("tempdir");
        let reports = directory.path().join("reports");
        std::fs::create_dir_all(&reports).expect("mkdir");
        for name in [
            "2026-01-01.json",
            "2026-01-01.html",
            "2026-11-20.json",
            "notes.txt",
        ] {
            std::fs::write(reports.join(name), "x").expect("write");
        }
        let removed = apply_retention(directory.path(), 30, day("2026-11-27")).expect("retention");
        assert_eq!(removed.len(), 2);
        assert!(reports.join("2026-11-20.json").exists());
        assert!(reports.join("notes.txt").exists());
        assert_eq!(
            latest_written_report(directory.path()),
            Some(day("2026-11-20"))
        );
    }
}
