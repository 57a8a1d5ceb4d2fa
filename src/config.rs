//! One typed configuration: defaults that work from a checkout, then a TOML
//! file, then `AUDITLENS_*` environment variables, then command-line flags.
//!
//! Every section has a default, so `auditlens serve` runs with no file at all.
//! Unknown keys in the file are an error (a typo must not silently fall back
//! to a default on a security tool). Environment variables use the section and
//! key in upper case joined by `__`, e.g. `AUDITLENS_STORE__RETENTION_DAYS=30`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Environment { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The cluster name recorded with every event (`cluster=` partition).
    pub cluster: String,
    pub ingest: IngestConfig,
    pub store: StoreConfig,
    pub api: ApiSection,
    pub report: crate::report::ReportConfig,
    pub alerts: crate::alerts::AlertsConfig,
    pub feedback: crate::feedback::FeedbackConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cluster: "default".to_string(),
            ingest: IngestConfig::default(),
            store: StoreConfig::default(),
            api: ApiSection::default(),
            report: crate::report::ReportConfig::default(),
            alerts: crate::alerts::AlertsConfig::default(),
            feedback: crate::feedback::FeedbackConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// The folder kube-apiserver writes its audit log to (`--audit-log-path`'s folder).
    pub dir: PathBuf,
    /// File names to read in that folder (a glob on the file name).
    pub glob: String,
    /// How often the folder is rescanned, whatever file-system events say.
    pub scan_interval_ms: u64,
    /// Lines longer than this are quarantined, never buffered whole.
    pub max_line_bytes: usize,
    /// A rotated (no longer written) plain file whose last line has no newline
    /// is taken as complete after this long without growing.
    pub partial_line_grace_ms: u64,
    /// Threads decoding lines (0: one per core).
    pub decode_threads: usize,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            dir: PathBuf::from("/var/log/kubernetes/audit"),
            glob: "audit*.log*".to_string(),
            scan_interval_ms: 1_000,
            max_line_bytes: 4 * 1024 * 1024,
            partial_line_grace_ms: 30_000,
            decode_threads: 0,
        }
    }
}

impl IngestConfig {
    pub fn scan_interval(&self) -> Duration {
        Duration::from_millis(self.scan_interval_ms.max(10))
    }
    pub fn partial_line_grace(&self) -> Duration {
        Duration::from_millis(self.partial_line_grace_ms)
    }
    pub fn decode_thread_count(&self) -> usize {
        if self.decode_threads > 0 {
            self.decode_threads
        } else {
            std::thread::available_parallelism()
                .map(|count| count.get())
                .unwrap_or(2)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// A buffer is written as Parquet at least this often, so data is
    /// queryable within seconds.
    pub flush_interval_ms: u64,
    /// ... or as soon as it holds this many rows,
    pub flush_rows: usize,
    /// ... or this many bytes of decoded columns (bounds the writer's memory).
    pub flush_bytes: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// ZSTD level for Parquet pages.
    pub zstd_level: i32,
    /// Partitions older than this many days are deleted (0 keeps everything).
    pub retention_days: u32,
    /// A closed hour with at least this many parts has its small parts compacted.
    pub compact_min_parts: usize,
    /// An hour still receiving events is compacted when this many of its
    /// parts are small, so queries of the last hour do not open one part per flush.
    pub open_hour_compact_parts: usize,
    /// One compaction takes in at most this many rows...
    pub compact_max_rows: u64,
    /// ...and this many uncompressed bytes (it holds them in memory). A part
    /// at half either limit is not small: it is not rewritten again.
    pub compact_max_bytes: u64,
    /// How often the daemon considers compaction and retention.
    pub maintenance_interval_ms: u64,
    /// Request/response objects are stored raw only for these resources
    /// (`group/resource` or `resource` for the core group; `*` within a group).
    pub keep_objects: Vec<String>,
    /// For secrets, objects are never kept whatever `keep_objects` says:
    /// their data is the secret itself.
    pub keep_objects_max_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            flush_interval_ms: 2_000,
            flush_rows: 131_072,
            flush_bytes: 48 * 1024 * 1024,
            row_group_rows: 131_072,
            zstd_level: 1,
            retention_days: 90,
            compact_min_parts: 4,
            open_hour_compact_parts: 16,
            compact_max_rows: 131_072,
            compact_max_bytes: 128 * 1024 * 1024,
            maintenance_interval_ms: 60_000,
            keep_objects: vec![
                "rbac.authorization.k8s.io/*".to_string(),
                "admissionregistration.k8s.io/*".to_string(),
                "pods".to_string(),
                "serviceaccounts/token".to_string(),
                "certificates.k8s.io/certificatesigningrequests".to_string(),
                "apiextensions.k8s.io/customresourcedefinitions".to_string(),
            ],
            keep_objects_max_bytes: 256 * 1024,
        }
    }
}

impl StoreConfig {
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms.max(10))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_listen: String,
    /// Prometheus `/metrics`, `/healthz`, `/readyz`.
    pub metrics_listen: String,
    /// A file holding the bearer token clients must send.
    pub token_file: Option<PathBuf>,
}

impl Default for ApiSection {
    fn default() -> ApiSection {
        ApiSection {
            grpc_listen: "127.0.0.1:50051".to_string(),
            metrics_listen: "127.0.0.1:9464".to_string(),
            token_file: None,
        }
    }
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut value = toml::Value::try_from(Config::default())
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let from_file: toml::Value =
                toml::from_str(&text).map_err(|error| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: error.to_string(),
                })?;
            // Validate the file alone first, so an unknown key is reported
            // against the file rather than the merged value.
            from_file
                .clone()
                .try_into::<Config>()
                .map_err(|error| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: error.to_string(),
                })?;
            merge(&mut value, from_file);
        }
        apply_environment(&mut value, std::env::vars())?;
        value
            .try_into::<Config>()
            .map_err(|error| ConfigError::Invalid(error.to_string()))
    }

    pub fn validate(&self) -> Result<()> {
        if self.cluster.is_empty() || self.cluster.contains(['/', '=', '\\']) {
            return Err(ConfigError::Invalid(format!(
                "cluster name {:?} must be non-empty and contain no '/', '=' or '\\'",
                self.cluster
            )));
        }
        if self.store.row_group_rows == 0 || self.store.flush_rows == 0 {
            return Err(ConfigError::Invalid(
                "store.row_group_rows and store.flush_rows must be positive".into(),
            ));
        }
        if self.ingest.max_line_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "ingest.max_line_bytes must be at least 1024".into(),
            ));
        }
        self.report
            .schedule_time()
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        self.alerts
            .validate()
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        self.feedback.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base_table), toml::Value::Table(overlay_table)) => {
            for (key, overlay_value) in overlay_table {
                match base_table.get_mut(&key) {
                    Some(base_value) => merge(base_value, overlay_value),
                    None => {
                        base_table.insert(key, overlay_value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// `AUDITLENS_SECTION__KEY=value` (or `AUDITLENS_KEY` for top-level keys).
/// Values are parsed as TOML when they can be (numbers, booleans, arrays),
/// else taken as strings. Variables that name no config key are ignored, since
/// `AUDITLENS_DATA_DIR` and friends belong to the command line.
fn apply_environment(
    value: &mut toml::Value,
    variables: impl Iterator<Item = (String, String)>,
) -> Result<()> {
    for (name, raw) in variables {
        let Some(path) = name.strip_prefix("AUDITLENS_") else {
            continue;
        };
        let keys: Vec<String> = path
            .split("__")
            .map(|key| key.to_ascii_lowercase())
            .collect();
        let Some(table) = value.as_table_mut() else {
            continue;
        };
        let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut table| table.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut current = table;
        for (index, key) in keys.iter().enumerate() {
            if index + 1 == keys.len() {
                if let Some(slot) = current.get_mut(key) {
                    let coerced = coerce_like(slot, parsed.clone(), &raw);
                    *slot = coerced;
                }
                break;
            }
            match current.get_mut(key).and_then(toml::Value::as_table_mut) {
                Some(next) => current = next,
                None => break,
            }
        }
    }
    value
        .clone()
        .try_into::<Config>()
        .map(|_| ())
        .map_err(|error| ConfigError::Environment {
            name: "AUDITLENS_*".into(),
            message: error.to_string(),
        })
}

/// Keeps strings as strings where the default is a string, so
/// `AUDITLENS_CLUSTER=123` means the cluster named "123".
fn coerce_like(slot: &toml::Value, parsed: toml::Value, raw: &str) -> toml::Value {
    match slot {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        _ => parsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults validate");
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/auditlens.example.toml");
        let config = Config::load(Some(&path)).expect("example config parses");
        config.validate().expect("example config validates");
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_name() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("bad.toml");
        std::fs::write(&path, "[store]\nretention_dayz = 3\n").expect("write");
        let error = Config::load(Some(&path))
            .expect_err("typo refused")
            .to_string();
        assert!(
            error.contains("bad.toml") && error.contains("retention_dayz"),
            "{error}"
        );
    }

    #[test]
    fn environment_overrides_file() {
        let mut value = toml::Value::try_from(Config::default()).expect("serializable");
        apply_environment(
            &mut value,
            vec![
                (
                    "AUDITLENS_STORE__RETENTION_DAYS".to_string(),
                    "7".to_string(),
                ),
                ("AUDITLENS_CLUSTER".to_string(), "123".to_string()),
                ("AUDITLENS_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ]
            .into_iter(),
        )
        .expect("applies");
        let config: Config = value.try_into().expect("valid");
        assert_eq!(config.store.retention_days, 7);
        assert_eq!(config.cluster, "123");
    }

    #[test]
    fn environment_with_wrong_type_is_an_error() {
        let mut value = toml::Value::try_from(Config::default()).expect("serializable");
        let result = apply_environment(
            &mut value,
            vec![(
                "AUDITLENS_STORE__RETENTION_DAYS".to_string(),
                "many".to_string(),
            )]
            .into_iter(),
        );
        assert!(result.is_err());
    }
}
