//! Reports and model artifacts the API serves straight from the data folder:
//! `reports/YYYY-MM-DD.{json,md,html}` and `models/<model>/<version>.json`.
//!
//! Names that reach a path are validated first (a date, a format from a fixed
//! list), so a request can never point outside those folders.

use super::ApiError;
use super::proto;
use std::collections::BTreeMap;
use std::path::Path;

pub const REPORT_FORMATS: [&str; 3] = ["json", "md", "html"];

fn is_report_date(text: &str) -> bool {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() && text.len() == 10
}

/// Every report date with the formats present, newest first.
pub fn list_reports(data_dir: &Path) -> Result<Vec<proto::ReportInfo>, ApiError> {
    let folder = data_dir.join("reports");
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ApiError::Io {
                path: folder,
                source,
            });
        }
    };
    let mut by_date: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some((date, format)) = name.split_once('.') else {
            continue;
        };
        if is_report_date(date) && REPORT_FORMATS.contains(&format) {
            by_date
                .entry(date.to_string())
                .or_default()
                .push(format.to_string());
        }
    }
    Ok(by_date
        .into_iter()
        .rev()
        .map(|(date, mut formats)| {
            formats.sort();
            proto::ReportInfo { date, formats }
        })
        .collect())
}

/// One report's bytes.
pub fn read_report(data_dir: &Path, date: &str, format: &str) -> Result<Vec<u8>, ApiError> {
    let format = if format.is_empty() { "json" } else { format };
    if !is_report_date(date) {
        return Err(ApiError::InvalidArgument(format!(
            "report date {date:?} is not YYYY-MM-DD"
        )));
    }
    if !REPORT_FORMATS.contains(&format) {
        return Err(ApiError::InvalidArgument(format!(
            "report format {format:?}: expected json, md or html"
        )));
    }
    let path = data_dir.join("reports").join(format!("{date}.{format}"));
    std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ApiError::NotFound(format!("no {format} report for {date}"))
        } else {
            ApiError::Io { path, source }
        }
    })
}

/// Every model version under `models/`, by name then version.
pub fn list_models(data_dir: &Path) -> Result<Vec<proto::ModelInfo>, ApiError> {
    let folder = data_dir.join("models");
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ApiError::Io {
                path: folder,
                source,
            });
        }
    };
    let mut models = Vec::new();
    for model in entries.flatten().filter(|entry| entry.path().is_dir()) {
        let name = model.file_name().to_string_lossy().to_string();
        let Ok(versions) = std::fs::read_dir(model.path()) else {
            continue;
        };
        for version in versions.flatten() {
            let path = version.path();
            if path.extension().is_none_or(|extension| extension != "json") {
                continue;
            }
            let Ok(artifact_json) = std::fs::read_to_string(&path) else {
                continue;
            };
            let version_name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().to_string())
                .unwrap_or_default();
            let trained_at = serde_json::from_str::<serde_json::Value>(&artifact_json)
                .ok()
                .and_then(|value| {
                    value
                        .get("trained_at")
                        .and_then(|at| at.as_str())
                        .map(str::to_string)
                })
                .and_then(|text| chrono::DateTime::parse_from_rfc3339(&text).ok())
                .map(|at| prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: at.timestamp_subsec_nanos() as i32,
                })
                .or_else(|| {
                    let modified = version.metadata().ok()?.modified().ok()?;
                    let since_epoch = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
                    Some(prost_types::Timestamp {
                        seconds: since_epoch.as_secs() as i64,
                        nanos: 0,
                    })
                });
            models.push(proto::ModelInfo {
                name: name.clone(),
                version: version_name,
                trained_at,
                artifact_json,
            });
        }
    }
    models.sort_by(|left, right| (&left.name, &left.version).cmp(&(&right.name, &right.version)));
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_reads_reports_and_refuses_odd_names() {
        let folder = tempfile::tempdir().expect("temp dir");
        let reports = folder.path().join("reports");
        std::fs::create_dir_all(&reports).expect("mkdir");
        std::fs::write(reports.join("2026-11-26.json"), "{}").expect("write");
        std::fs::write(reports.join("2026-11-26.html"), "<html>").expect("write");
        std::fs::write(reports.join("notes.txt"), "x").expect("write");
        let listed = list_reports(folder.path()).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].formats, vec!["html", "json"]);
        assert_eq!(
            read_report(folder.path(), "2026-11-26", "").expect("read"),
            b"{}"
        );
        assert!(matches!(
            read_report(folder.path(), "../../etc/passwd", "json"),
            Err(ApiError::InvalidArgument(_))
        ));
        assert!(matches!(
            read_report(folder.path(), "2026-11-25", "json"),
            Err(ApiError::NotFound(_))
        ));
    }
}
