//! Hostile statements against the real server: each one is refused with the
//! expected gRPC code, nothing is written anywhere, and the data folder is
//! byte-identical before and after.

mod api_support;

use api_support::{ApiServer, hash_tree, make_data_dir};
use auditlens::api::client::{connect, run_query};
use auditlens::api::proto;
use tonic::Code;

const DENIED: Code = Code::PermissionDenied;
const INVALID: Code = Code::InvalidArgument;

/// (statement, expected code). `{data}` is the data folder, `{outside}` a
/// folder outside it; every file a statement would create is named under
/// one of them and checked afterwards.
const HOSTILE: &[(&str, Code)] = &[
    // Writes, outside and inside the data folder.
    (
        "COPY (SELECT * FROM events) TO '{outside}/stolen.csv'",
        DENIED,
    ),
    (
        "COPY (SELECT 1 AS x) TO '{data}/events/cluster=default/date=2026-11-27/hour=09/part-evil.parquet' (FORMAT parquet)",
        DENIED,
    ),
    ("COPY events FROM '/etc/passwd'", DENIED),
    ("EXPORT DATABASE '{outside}/export'", DENIED),
    ("CREATE TABLE stolen AS SELECT * FROM events", DENIED),
    ("CREATE VIEW shadow AS SELECT 1", DENIED),
    ("CREATE MACRO evil(x) AS x + 1", DENIED),
    ("INSERT INTO events SELECT * FROM events", DENIED),
    ("UPDATE events SET verb = 'get'", DENIED),
    ("DELETE FROM events", DENIED),
    ("DROP VIEW events", DENIED),
    ("ALTER VIEW events RENAME TO gone", DENIED),
    (
        "WITH x AS (SELECT 1 AS a) INSERT INTO events SELECT * FROM x",
        DENIED,
    ),
    // Data-modifying WITH clauses parse as SELECT statements in DuckDB.
    (
        "WITH gone AS (DELETE FROM events RETURNING *) SELECT * FROM gone",
        DENIED,
    ),
    (
        "WITH added AS (INSERT INTO events SELECT * FROM events RETURNING *) SELECT count(*) FROM added",
        DENIED,
    ),
    (
        "SELECT * FROM (WITH changed AS (UPDATE events SET verb = 'x' RETURNING *) SELECT * FROM changed)",
        DENIED,
    ),
    // Statements smuggled through query(): DuckDB's own parser refuses them.
    (
        "SELECT * FROM query('COPY (SELECT 1) TO ''{outside}/smuggled.csv''')",
        INVALID,
    ),
    ("SELECT * FROM query('SELECT 1; SELECT 2')", INVALID),
    // Other databases and extensions.
    ("ATTACH '{outside}/other.duckdb' AS other", DENIED),
    ("ATTACH '{data}/catalog.duckdb' AS catalog", DENIED),
    ("DETACH memory", DENIED),
    ("INSTALL httpfs", DENIED),
    ("LOAD httpfs", DENIED),
    ("FORCE INSTALL json", DENIED),
    // Configuration.
    ("SET enable_external_access = true", DENIED),
    ("SET allowed_directories = ['/']", DENIED),
    ("RESET memory_limit", DENIED),
    ("SET VARIABLE secret_path = '/etc/shadow'", DENIED),
    ("PRAGMA enable_profiling", DENIED),
    ("PRAGMA memory_limit = '100GB'", DENIED),
    ("CALL pragma_table_info('events')", DENIED),
    ("CHECKPOINT", DENIED),
    ("BEGIN TRANSACTION", DENIED),
    ("VACUUM", DENIED),
    ("EXPLAIN ANALYZE SELECT 1", DENIED),
    ("PREPARE sneaky AS SELECT 1", DENIED),
    // Several statements in one request.
    ("SELECT 1; DROP VIEW events", DENIED),
    (
        "SELECT count(*) FROM events; COPY (SELECT 1) TO '{outside}/second.csv'",
        DENIED,
    ),
    // File reads outside the events folder.
    ("SELECT * FROM read_text('/etc/passwd')", DENIED),
    ("SELECT * FROM read_blob('/etc/hostname')", DENIED),
    ("SELECT * FROM read_csv('/etc/passwd')", DENIED),
    ("SELECT * FROM read_json('{outside}/anything.json')", DENIED),
    ("SELECT * FROM glob('/etc/*')", DENIED),
    ("SELECT * FROM glob('{data}/*')", DENIED),
    ("SELECT * FROM read_text('{data}/catalog.duckdb')", DENIED),
    (
        "SELECT * FROM read_text('{data}/events/../catalog.duckdb')",
        DENIED,
    ),
    ("SELECT * FROM read_parquet('{outside}/*.parquet')", DENIED),
    // Replacement scans of file paths are off in the sandbox: no such table.
    ("SELECT * FROM '/etc/passwd'", INVALID),
    ("SELECT * FROM sniff_csv('/etc/passwd')", DENIED),
    ("SELECT * FROM read_text('/proc/self/environ')", DENIED),
];

#[test]
fn hostile_statements_are_refused_and_nothing_changes() {
    let data = make_data_dir();
    let outside = tempfile::tempdir().expect("outside folder");
    let data_path = data
        .path()
        .canonicalize()
        .expect("canonical")
        .display()
        .to_string();
    let outside_path = outside.path().display().to_string();
    let server = ApiServer::start(data.path(), &[], &[]);
    let before = hash_tree(data.path());
    assert!(HOSTILE.len() >= 25);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut failures = Vec::new();
    runtime.block_on(async {
        let mut client = connect(&server.options()).await.expect("connect");
        for (template, expected) in HOSTILE {
            let sql = template
                .replace("{data}", &data_path)
                .replace("{outside}", &outside_path);
            let outcome = run_query(
                &mut client,
                proto::QueryRequest {
                    sql: sql.clone(),
                    ..Default::default()
                },
            )
            .await;
            match outcome {
                Err(auditlens::api::ApiError::Rpc(status)) if status.code() == *expected => {
                    if *expected == DENIED {
                        assert!(
                            status.message().starts_with("refused:"),
                            "{sql}: {}",
                            status.message()
                        );
                    }
                }
                Err(auditlens::api::ApiError::Rpc(status)) => failures.push(format!(
                    "{sql}\n    expected {expected:?}, got {:?}: {}",
                    status.code(),
                    status.message()
                )),
                Err(other) => failures.push(format!("{sql}\n    client error {other}")),
                Ok(result) => failures.push(format!(
                    "{sql}\n    ran and returned {} rows",
                    result.summary.rows
                )),
            }
        }
        // The server still answers normal queries afterwards.
        let result = run_query(
            &mut client,
            proto::QueryRequest {
                sql: "SELECT count(*) FROM events".into(),
                ..Default::default()
            },
        )
        .await
        .expect("a normal query still runs");
        assert_eq!(result.summary.rows, 1);
    });
    let log = server.stop();
    assert!(
        failures.is_empty(),
        "{} of {} hostile statements were not refused as expected:\n{}",
        failures.len(),
        HOSTILE.len(),
        failures.join("\n")
    );
    let after = hash_tree(data.path());
    assert_eq!(before, after, "the data folder changed");
    let written: Vec<_> = std::fs::read_dir(outside.path())
        .expect("outside")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert!(written.is_empty(), "files appeared outside: {written:?}");
    assert!(
        log.contains("PermissionDenied"),
        "refusals are logged: {log}"
    );
}
