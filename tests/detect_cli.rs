//! End to end: `auditlens detect` and `auditlens eval` on real Parquet parts
//! (written with DuckDB in the store's schema), through the real binary.
//! Three days of history train the novelty index; on the fourth day an
//! attacker creates a wildcard ClusterRole and a service account's token is
//! used from an outside address with curl.

use auditlens::store::schema::duckdb_column_types;
use auditlens::store::views::sql_string_literal;
use std::path::Path;
use std::process::Command;

const DAY: i64 = 86_400_000_000;
const MINUTE: i64 = 60_000_000;
/// 2026-11-20T00:00:00Z
const START: i64 = 1_795_651_200_000_000;

struct Row {
    ts: i64,
    audit_id: String,
    verb: &'static str,
    username: String,
    kind: &'static str,
    ip: String,
    agent: String,
    group: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
    name: Option<String>,
    code: i32,
    request_object: Option<String>,
}

fn literal(value: Option<&str>) -> String {
    value
        .map(sql_string_literal)
        .unwrap_or_else(|| "NULL".into())
}

fn write_parts(data_dir: &Path, rows: &[Row]) {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let columns: Vec<String> = duckdb_column_types()
        .into_iter()
        .map(|(name, sql_type)| format!("{name} {sql_type}"))
        .collect();
    connection
        .execute_batch(&format!("CREATE TABLE e ({})", columns.join(", ")))
        .expect("table");
    for (index, row) in rows.iter().enumerate() {
        let sa = row
            .username
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'));
        for stage in ["RequestReceived", "ResponseComplete"] {
            let values = [
                format!("make_timestamp({})", row.ts),
                format!("make_timestamp({})", row.ts + 5_000),
                sql_string_literal(&row.audit_id),
                sql_string_literal(stage),
                "'Metadata'".into(),
                sql_string_literal(row.verb),
                sql_string_literal(&format!("/apis/{}/{}", row.group, row.resource)),
                sql_string_literal(&row.username),
                "['system:authenticated']".into(),
                "NULL".into(),
                sql_string_literal(row.kind),
                literal(sa.map(|(namespace, _)| namespace)),
                literal(sa.map(|(_, name)| name)),
                sql_string_literal(&row.ip),
                format!("[{}]", sql_string_literal(&row.ip)),
                sql_string_literal(&row.agent),
                sql_string_literal(row.group),
                "'v1'".into(),
                sql_string_literal(row.resource),
                "NULL".into(),
                literal(row.namespace),
                literal(row.name.as_deref()),
                if stage == "RequestReceived" {
                    "NULL".into()
                } else {
                    row.code.to_string()
                },
                "NULL".into(),
                if row.code == 403 {
                    "'forbid'".into()
                } else {
                    "'allow'".into()
                },
                "''".into(),
                "'{}'".into(),
                literal(
                    row.request_object
                        .as_deref()
                        .filter(|_| stage == "ResponseComplete"),
                ),
                "NULL".into(),
                "'audit.log'".into(),
                "'fingerprint'".into(),
                (index * 2).to_string(),
            ];
            connection
                .execute_batch(&format!("INSERT INTO e VALUES ({})", values.join(", ")))
                .expect("insert");
        }
    }
    for day in 0..4 {
        let date = chrono::DateTime::from_timestamp_micros(START + day * DAY)
            .expect("date")
            .format("%Y-%m-%d")
            .to_string();
        let dir = data_dir.join(format!("events/cluster=default/date={date}/hour=00"));
        std::fs::create_dir_all(&dir).expect("partition dir");
        let path = dir.join("part-test.parquet");
        connection
            .execute_batch(&format!(
                "COPY (SELECT * FROM e WHERE ts >= make_timestamp({}) AND ts < make_timestamp({}) ORDER BY ts) TO {} (FORMAT parquet)",
                START + day * DAY,
                START + (day + 1) * DAY,
                sql_string_literal(&path.to_string_lossy())
            ))
            .expect("copy to parquet");
    }
}

fn history() -> Vec<Row> {
    let mut rows = Vec::new();
    for day in 0..4 {
        for step in 0..(24 * 6) {
            let ts = START + day * DAY + step * 10 * MINUTE;
            rows.push(Row {
                ts,
                audit_id: format!("web-{day}-{step}"),
                verb: "get",
                username: "system:serviceaccount:app:web".into(),
                kind: "service_account",
                ip: "10.244.1.5".into(),
                agent: "web/1.2 (linux/amd64) client-go".into(),
                group: "",
                resource: "configmaps",
                namespace: Some("app"),
                name: Some("web-config".into()),
                code: 200,
                request_object: None,
            });
            if (9 * 6..17 * 6).contains(&step) {
                rows.push(Row {
                    ts: ts + MINUTE,
                    audit_id: format!("alice-{day}-{step}"),
                    verb: "list",
                    username: "alice@example.com".into(),
                    kind: "user",
                    ip: "203.0.113.10".into(),
                    agent: "kubectl/v1.30.1 (linux/amd64) kubernetes/abc".into(),
                    group: "",
                    resource: "pods",
                    namespace: Some("dev"),
                    name: None,
                    code: 200,
                    request_object: None,
                });
            }
        }
    }
    let attack_day = START + 3 * DAY;
    rows.push(Row {
        ts: attack_day + 14 * 60 * MINUTE,
        audit_id: "attack-role".into(),
        verb: "create",
        username: "mallory@example.com".into(),
        kind: "user",
        ip: "203.0.113.66".into(),
        agent: "kubectl/v1.30.1".into(),
        group: "rbac.authorization.k8s.io",
        resource: "clusterroles",
        namespace: None,
        name: Some("backdoor".into()),
        code: 201,
        request_object: Some(r#"{"kind":"ClusterRole","rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#.into()),
    });
    for step in 0..3 {
        rows.push(Row {
            ts: attack_day + 20 * 60 * MINUTE + step * MINUTE,
            audit_id: format!("attack-token-{step}"),
            verb: "list",
            username: "system:serviceaccount:app:web".into(),
            kind: "service_account",
            ip: "198.51.100.7".into(),
            agent: "curl/8.4.0".into(),
            group: "",
            resource: "secrets",
            namespace: Some("app"),
            name: None,
            code: 200,
            request_object: None,
        });
    }
    rows.sort_by_key(|row| row.ts);
    rows
}

fn auditlens(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run auditlens");
    assert!(
        output.status.success(),
        "auditlens {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn detect_prints_the_contract_and_eval_scores_it() {
    let data = tempfile::tempdir().expect("temp dir");
    write_parts(data.path(), &history());
    let since = "2026-11-23T00:00:00Z";
    let output = auditlens(data.path(), &["detect", "--since", since]);
    let anomalies: Vec<serde_json::Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let fields = [
        "id",
        "detector",
        "kind",
        "identity",
        "cluster",
        "window_start",
        "window_end",
        "severity",
        "score",
        "title",
        "reasons",
        "evidence_audit_ids",
    ];
    for anomaly in &anomalies {
        let object = anomaly.as_object().expect("object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = fields.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        let start = anomaly["window_start"].as_str().expect("time");
        assert!(
            start.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(start).is_ok(),
            "{start}"
        );
    }
    let wildcard = anomalies
        .iter()
        .find(|anomaly| anomaly["detector"] == "rbac.wildcard_grant")
        .expect("wildcard rule fired");
    assert_eq!(wildcard["identity"], "mallory@example.com");
    assert_eq!(wildcard["evidence_audit_ids"][0], "attack-role");
    let novelty = anomalies
        .iter()
        .find(|anomaly| anomaly["kind"] == "novelty")
        .expect("novelty fired");
    assert_eq!(novelty["identity"], "system:serviceaccount:app:web");
    assert!(
        novelty["evidence_audit_ids"]
            .as_array()
            .expect("list")
            .iter()
            .any(|id| id == "attack-token-0")
    );
    // Nothing else: alice and the service account's normal day are quiet.
    assert_eq!(anomalies.len(), 2, "{output}");

    // Without --since, the same history is replayed from the start: learning
    // identities stay quiet, so the result is the same two anomalies.
    let full = auditlens(data.path(), &["detect"]);
    assert_eq!(full.lines().count(), 2, "{full}");

    let labels = data.path().join("labels.jsonl");
    std::fs::write(
        &labels,
        concat!(
            r#"{"scenario":"wildcard_clusterrole","identity":"mallory@example.com","start":"2026-11-23T14:00:00Z","end":"2026-11-23T14:01:00Z","audit_ids":["attack-role"],"severity":"critical","description":"x"}"#,
            "\n",
            r#"{"scenario":"stolen_token","identity":"system:serviceaccount:app:web","start":"2026-11-23T20:00:00Z","end":"2026-11-23T20:03:00Z","audit_ids":["attack-token-0","attack-token-1","attack-token-2"],"severity":"high","description":"y"}"#,
            "\n"
        ),
    )
    .expect("labels");
    let evaluation: serde_json::Value = serde_json::from_str(&auditlens(
        data.path(),
        &[
            "eval",
            "--since",
            since,
            "--labels",
            &labels.to_string_lossy(),
            "--format",
            "jsonl",
        ],
    ))
    .expect("evaluation JSON");
    assert_eq!(evaluation["attacks"], 2);
    assert_eq!(evaluation["recall"], 1.0);
    assert_eq!(evaluation["false_incidents"], 0);
    let table = auditlens(
        data.path(),
        &[
            "eval",
            "--since",
            since,
            "--labels",
            &labels.to_string_lossy(),
        ],
    );
    assert!(
        table.contains("stolen_token") && table.contains("TOTAL"),
        "{table}"
    );

    // --store records them once, grouped into incidents, however often it runs.
    auditlens(data.path(), &["detect", "--since", since, "--store"]);
    auditlens(data.path(), &["detect", "--since", since, "--store"]);
    let catalog = duckdb::Connection::open(data.path().join("catalog.duckdb")).expect("catalog");
    let stored: i64 = catalog
        .query_row("SELECT count(*) FROM anomalies", [], |row| row.get(0))
        .expect("count");
    assert_eq!(stored, 2);
    let incidents: i64 = catalog
        .query_row("SELECT count(*) FROM incidents", [], |row| row.get(0))
        .expect("count");
    assert_eq!(incidents, 2);
}

#[test]
fn an_empty_store_detects_nothing() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = auditlens(data.path(), &["detect", "--format", "table"]);
    assert_eq!(output.lines().count(), 1, "only the header: {output}");
}
