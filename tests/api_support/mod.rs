//! Shared helpers for the API's end-to-end tests: a data folder made with
//! DuckDB (events as Hive-partitioned Parquet, a catalog with anomalies and
//! an incident, a report, a model), and the real binary started on port 0.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Rows per hour partition written by [`make_data_dir`].
pub const ROWS_PER_HOUR: i64 = 1800;

/// The SELECT list producing event rows from `range(...) t(i)`, with the
/// columns of `auditlens::store::schema` in order.
pub fn event_select(hour: u32) -> String {
    let columns: Vec<String> = auditlens::store::schema::duckdb_column_types()
        .into_iter()
        .map(|(name, sql_type)| {
            let expression = match name {
                "ts" | "stage_ts" => format!("TIMESTAMP '2026-11-27 {hour:02}:00:00' + to_seconds(i * 2)"),
                "audit_id" => format!("'audit-{hour:02}-' || i"),
                "stage" => "'ResponseComplete'".to_string(),
                "level" => "'Metadata'".to_string(),
                "verb" => "['get','list','watch','create','delete','patch','update'][1 + i % 7]".to_string(),
                "request_uri" => "'/api/v1/namespaces/x/' || i".to_string(),
                "username" => "['alice','bob','system:serviceaccount:kube-system:replicaset-controller','mallory','system:node:node-1'][1 + i % 5]".to_string(),
                "user_groups" => "['system:authenticated']".to_string(),
                "identity_kind" => "['user','user','service_account','user','node'][1 + i % 5]".to_string(),
                "source_ip" => "'10.0.0.' || (i % 7)".to_string(),
                "source_ips" => "['10.0.0.' || (i % 7)]".to_string(),
                "user_agent" => "CASE WHEN i % 5 = 2 THEN 'kube-controller-manager/v1.34.0' ELSE 'kubectl/v1.34.0' END".to_string(),
                "api_group" => "CASE WHEN i % 4 = 3 THEN 'rbac.authorization.k8s.io' ELSE NULL END".to_string(),
                "api_version" => "'v1'".to_string(),
                "resource" => "['pods','secrets','configmaps','roles'][1 + i % 4]".to_string(),
                "subresource" => "CASE WHEN i % 40 = 0 THEN 'exec' ELSE NULL END".to_string(),
                "namespace" => "['default','kube-system','payments'][1 + i % 3]".to_string(),
                "name" => "'object-' || (i % 10)".to_string(),
                "response_code" => "CASE WHEN i % 13 = 0 THEN 403 ELSE 200 END".to_string(),
                "decision" => "CASE WHEN i % 13 = 0 THEN 'forbid' ELSE 'allow' END".to_string(),
                "source_file" => "'/var/log/kubernetes/audit.log'".to_string(),
                "source_fingerprint" => "'fingerprint-1'".to_string(),
                "source_offset" => format!("({hour} * 1000000 + i * 300)"),
                _ => format!("CAST(NULL AS {sql_type})"),
            };
            format!("CAST({expression} AS {sql_type}) AS {name}")
        })
        .collect();
    columns.join(", ")
}

/// Inserts one anomaly into a catalog connection; returns its seq.
pub fn insert_anomaly(
    connection: &duckdb::Connection,
    id: &str,
    identity: &str,
    severity: &str,
    detector: &str,
    incident: Option<&str>,
) -> i64 {
    connection
        .query_row(
            "INSERT INTO anomalies (id, detector, kind, identity, cluster, window_start, window_end, severity, score, \
             title, reasons, evidence_audit_ids, incident_id, detected_at) VALUES \
             (?, ?, 'rule', ?, 'default', TIMESTAMP '2026-11-27 09:10:00', TIMESTAMP '2026-11-27 09:11:00', ?, 0.9, \
             'test anomaly ' || ?, ['reason one', 'reason two'], ['audit-09-1', 'audit-09-2'], ?, \
             TIMESTAMP '2026-11-27 09:12:00') RETURNING seq",
            duckdb::params![id, detector, identity, severity, id, incident],
            |row| row.get(0),
        )
        .expect("insert anomaly")
}

/// A data folder with two hours of events, a catalog, a report and a model.
pub fn make_data_dir() -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("temp dir");
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    for hour in [9u32, 10] {
        let part = folder.path().join(format!(
            "events/cluster=default/date=2026-11-27/hour={hour:02}"
        ));
        std::fs::create_dir_all(&part).expect("mkdir");
        let sql = format!(
            "COPY (SELECT {} FROM range({ROWS_PER_HOUR}) t(i)) TO '{}' (FORMAT parquet)",
            event_select(hour),
            part.join("part-01TEST.parquet").display()
        );
        connection.execute_batch(&sql).expect("write parquet");
    }
    let catalog = auditlens::api::catalog::open_catalog(&folder.path().join("catalog.duckdb"))
        .expect("catalog");
    insert_anomaly(
        &catalog,
        "anomaly-1",
        "mallory",
        "high",
        "rules.secret_enumeration",
        Some("incident-1"),
    );
    insert_anomaly(
        &catalog,
        "anomaly-2",
        "mallory",
        "critical",
        "rules.cluster_admin_binding",
        Some("incident-1"),
    );
    insert_anomaly(
        &catalog,
        "anomaly-3",
        "bob",
        "low",
        "novelty.new_source_ip",
        None,
    );
    catalog
        .execute_batch(
            "INSERT INTO incidents VALUES ('incident-1', 'mallory', 'default', TIMESTAMP '2026-11-27 09:10:00', \
             TIMESTAMP '2026-11-27 09:11:00', 'critical', 'mallory enumerated secrets and bound cluster-admin', 2, \
             ['rules.secret_enumeration', 'rules.cluster_admin_binding'], TIMESTAMP '2026-11-27 09:12:00')",
        )
        .expect("incident");
    drop(catalog);
    std::fs::create_dir_all(folder.path().join("reports")).expect("mkdir");
    std::fs::write(
        folder.path().join("reports/2026-11-26.json"),
        r#"{"date":"2026-11-26","incidents":1}"#,
    )
    .expect("report");
    std::fs::write(
        folder.path().join("reports/2026-11-26.md"),
        "# Report 2026-11-26\n",
    )
    .expect("report");
    std::fs::create_dir_all(folder.path().join("models/hourly-kmeans")).expect("mkdir");
    std::fs::write(
        folder.path().join("models/hourly-kmeans/v1.json"),
        r#"{"trained_at":"2026-11-27T00:00:00Z","centroids":[[0.0,1.0]]}"#,
    )
    .expect("model");
    std::fs::create_dir_all(folder.path().join("quarantine")).expect("mkdir");
    std::fs::write(
        folder.path().join("quarantine/2026-11-27.jsonl"),
        "{\"offset\":1}\n{\"offset\":2}\n",
    )
    .expect("quarantine");
    folder
}

/// Runs SQL directly on the test data with DuckDB (the expected answers).
pub fn direct_query_i64(data_dir: &Path, sql: &str) -> i64 {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    auditlens::store::views::install_views(&connection, data_dir).expect("views");
    connection
        .query_row(sql, [], |row| row.get(0))
        .expect("direct query")
}

/// The real binary serving the API on port 0.
pub struct ApiServer {
    pub child: Child,
    pub address: SocketAddr,
    pub stderr_log: PathBuf,
}

impl ApiServer {
    /// Starts `auditlens --data-dir D api-serve --grpc-listen 127.0.0.1:0 EXTRA`.
    pub fn start(data_dir: &Path, extra: &[&str], environment: &[(&str, &str)]) -> ApiServer {
        let stderr_log = data_dir.with_extension("server-stderr.log");
        let stderr = std::fs::File::create(&stderr_log).expect("stderr log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_auditlens"));
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["-vv", "api-serve", "--grpc-listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("AUDITLENS_API_TOKEN")
            .env_remove("AUDITLENS_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        for (key, value) in environment {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start auditlens api-serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let parsed: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_else(|error| {
            let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
            panic!("no listening line ({error}): {line:?}\nstderr:\n{log}")
        });
        assert_eq!(parsed["event"], "grpc_listening");
        let address = parsed["address"]
            .as_str()
            .expect("address")
            .parse()
            .expect("socket address");
        ApiServer {
            child,
            address,
            stderr_log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn options(&self) -> auditlens::api::client::ClientOptions {
        auditlens::api::client::ClientOptions {
            server: self.url(),
            ..Default::default()
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) -> String {
        // SAFETY: signalling our own child process by its id.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        self.stderr()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the CLI with arguments; returns (success, stdout, stderr).
pub fn cli(arguments: &[&str], environment: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auditlens"));
    command
        .args(arguments)
        .env_remove("AUDITLENS_API_TOKEN")
        .env_remove("AUDITLENS_SERVER");
    for (key, value) in environment {
        command.env(key, value);
    }
    let output = command.output().expect("run auditlens");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// sha256 of every file under a folder, by relative path.
pub fn hash_tree(root: &Path) -> BTreeMap<String, String> {
    use sha2::Digest;
    let mut hashes = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                hashes.insert(
                    format!("{}/", path.strip_prefix(root).expect("inside").display()),
                    String::new(),
                );
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                let digest = sha2::Sha256::digest(&bytes);
                let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
                hashes.insert(
                    path.strip_prefix(root)
                        .expect("inside")
                        .display()
                        .to_string(),
                    hex,
                );
            }
        }
    }
    hashes
}
