//! A data folder for report tests: a week of history plus one reported day
//! of audit events written as Hive-partitioned Parquet with DuckDB's own
//! COPY, and catalog rows (anomalies, incidents, parts, an RBAC findings
//! table) inserted with plain SQL, the way the daemon's modules write them.
#![allow(dead_code)]

use std::path::Path;

pub const REPORT_DAY: &str = "2026-11-26";
pub const CLUSTER: &str = "default";

/// One batch of `count` identical requests spread over an hour.
pub struct Batch<'a> {
    pub date: &'a str,
    pub hour: u32,
    pub user: &'a str,
    pub kind: &'a str,
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub ip: &'a str,
    pub code: i32,
    pub count: u32,
    pub id_prefix: &'a str,
}

impl Default for Batch<'_> {
    fn default() -> Self {
        Batch {
            date: REPORT_DAY,
            hour: 9,
            user: "alice@example.com",
            kind: "user",
            verb: "get",
            group: "",
            resource: "configmaps",
            subresource: None,
            namespace: Some("team-a"),
            name: Some("app"),
            ip: "10.0.0.1",
            code: 200,
            count: 1,
            id_prefix: "x",
        }
    }
}

fn literal(text: Option<&str>) -> String {
    match text {
        Some(text) => format!("'{}'", text.replace('\'', "''")),
        None => "NULL".to_string(),
    }
}

/// Creates the staging table the batches go into.
pub fn staging() -> duckdb::Connection {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let columns: Vec<String> = auditlens::store::schema::duckdb_column_types()
        .into_iter()
        .map(|(name, sql_type)| format!("{name} {sql_type}"))
        .collect();
    connection
        .execute_batch(&format!(
            "CREATE TABLE staged ({}, cluster VARCHAR)",
            columns.join(", ")
        ))
        .expect("staging table");
    connection
}

/// Adds a batch; `stages` > 1 also stores a RequestReceived row per request.
pub fn add(connection: &duckdb::Connection, batch: &Batch<'_>, stages: u32) {
    let decision = if batch.code == 403 {
        "'forbid'"
    } else {
        "'allow'"
    };
    for stage in 0..stages.max(1) {
        let stage_name = if stage == 0 {
            "ResponseComplete"
        } else {
            "RequestReceived"
        };
        let sql = format!(
            "INSERT INTO staged SELECT \
               TIMESTAMP '{date} {hour:02}:00:00' + to_seconds(i * (3599 // greatest({count}, 1))) AS ts, \
               TIMESTAMP '{date} {hour:02}:00:00' + to_seconds(i * (3599 // greatest({count}, 1))) AS stage_ts, \
               '{prefix}-' || i AS audit_id, '{stage_name}', 'Metadata', '{verb}', '/api', '{user}', ['system:authenticated'], NULL, \
               '{kind}', NULL, NULL, '{ip}', ['{ip}'], 'kubectl/v1.31.0', {group}, 'v1', '{resource}', {subresource}, {namespace}, {name}, \
               {code}, NULL, {decision}, NULL, NULL, NULL, NULL, 'audit.log', 'fp-test', i, '{cluster}' \
             FROM range({count}) AS r(i)",
            date = batch.date,
            hour = batch.hour,
            count = batch.count,
            prefix = batch.id_prefix,
            verb = batch.verb,
            user = batch.user,
            kind = batch.kind,
            ip = batch.ip,
            group = if batch.group.is_empty() {
                "NULL".to_string()
            } else {
                literal(Some(batch.group))
            },
            resource = batch.resource,
            subresource = literal(batch.subresource),
            namespace = literal(batch.namespace),
            name = literal(batch.name),
            code = batch.code,
            cluster = CLUSTER,
        );
        connection.execute_batch(&sql).expect("insert batch");
    }
}

/// Writes the staged rows as `events/cluster=C/date=D/hour=H/*.parquet`.
pub fn write_parquet(connection: &duckdb::Connection, data_dir: &Path) {
    let events = data_dir.join("events");
    std::fs::create_dir_all(&events).expect("events dir");
    connection
        .execute_batch(&format!(
            "COPY (SELECT *, CAST(ts AS DATE) AS date, hour(ts) AS hour FROM staged ORDER BY ts) TO '{}' \
             (FORMAT parquet, PARTITION_BY (cluster, date, hour), OVERWRITE_OR_IGNORE true)",
            events.display()
        ))
        .expect("copy to parquet");
}

/// What the fixture holds, for the assertions.
pub struct Expected {
    pub alice_requests_today: u64,
    pub alice_history_per_day: u64,
    pub denied_today: u64,
    pub rbac_change_audit_id: String,
    pub quarantined: u64,
}

/// The standard scenario: history for alice, the CI service account and a
/// node; on the reported day alice triples her activity, reaches a new
/// namespace from a new IP, reads secrets and binds a cluster role; a new
/// identity gets denied repeatedly.
pub fn standard_events(data_dir: &Path) -> Expected {
    let connection = staging();
    let history_days = [
        "2026-11-19",
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
    ];
    for (index, day) in history_days.iter().enumerate() {
        let prefix_alice = format!("h{index}-alice");
        let prefix_ci = format!("h{index}-ci");
        let prefix_node = format!("h{index}-node");
        let prefix_denied = format!("h{index}-denied");
        add(
            &connection,
            &Batch {
                date: day,
                count: 100,
                id_prefix: &prefix_alice,
                ..Batch::default()
            },
            1,
        );
        add(
            &connection,
            &Batch {
                date: day,
                hour: 3,
                user: "system:serviceaccount:ci:deployer",
                kind: "service_account",
                verb: "patch",
                group: "apps",
                resource: "deployments",
                namespace: Some("ci"),
                ip: "10.0.5.5",
                count: 50,
                id_prefix: &prefix_ci,
                ..Batch::default()
            },
            1,
        );
        add(
            &connection,
            &Batch {
                date: day,
                hour: 12,
                user: "system:node:cp-1",
                kind: "node",
                verb: "get",
                resource: "pods",
                namespace: Some("kube-system"),
                ip: "10.0.0.10",
                count: 200,
                id_prefix: &prefix_node,
                ..Batch::default()
            },
            1,
        );
        add(
            &connection,
            &Batch {
                date: day,
                hour: 14,
                code: 403,
                count: 2,
                id_prefix: &prefix_denied,
                ..Batch::default()
            },
            1,
        );
    }
    // The reported day.
    add(
        &connection,
        &Batch {
            hour: 9,
            count: 250,
            id_prefix: "d-alice",
            ..Batch::default()
        },
        2,
    );
    add(
        &connection,
        &Batch {
            hour: 22,
            namespace: Some("kube-system"),
            ip: "203.0.113.7",
            count: 40,
            id_prefix: "d-alice-ks",
            ..Batch::default()
        },
        1,
    );
    add(
        &connection,
        &Batch {
            hour: 10,
            resource: "secrets",
            name: Some("db-pass"),
            count: 2,
            id_prefix: "d-alice-secret",
            ..Batch::default()
        },
        1,
    );
    add(
        &connection,
        &Batch {
            hour: 10,
            verb: "list",
            resource: "secrets",
            name: None,
            count: 1,
            id_prefix: "d-alice-secrets",
            ..Batch::default()
        },
        1,
    );
    add(
        &connection,
        &Batch {
            hour: 23,
            verb: "create",
            group: "rbac.authorization.k8s.io",
            resource: "clusterrolebindings",
            namespace: None,
            name: Some("alice-admin"),
            code: 201,
            count: 1,
            id_prefix: "d-alice-crb",
            ..Batch::default()
        },
        1,
    );
    add(
        &connection,
        &Batch {
            hour: 3,
            user: "system:serviceaccount:ci:deployer",
            kind: "service_account",
            verb: "patch",
            group: "apps",
            resource: "deployments",
            namespace: Some("ci"),
            ip: "10.0.5.5",
            count: 50,
            id_prefix: "d-ci",
            ..Batch::default()
        },
        1,
    );
    add(
        &connection,
        &Batch {
            hour: 12,
            user: "system:node:cp-1",
            kind: "node",
            resource: "pods",
            namespace: Some("kube-system"),
            ip: "10.0.0.10",
            count: 200,
            id_prefix: "d-node",
            ..Batch::default()
        },
        1,
    );
    add(
        &connection,
        &Batch {
            hour: 23,
            user: "mallory",
            kind: "user",
            verb: "list",
            resource: "secrets",
            namespace: Some("prod"),
            name: None,
            ip: "198.51.100.9",
            code: 403,
            count: 8,
            id_prefix: "d-mallory",
            ..Batch::default()
        },
        1,
    );
    add(
        &connection,
        &Batch {
            hour: 23,
            user: "mallory",
            kind: "user",
            verb: "get",
            resource: "namespaces",
            namespace: None,
            name: Some("prod"),
            ip: "198.51.100.9",
            count: 2,
            id_prefix: "d-mallory-ok",
            ..Batch::default()
        },
        1,
    );
    write_parquet(&connection, data_dir);
    Expected {
        alice_requests_today: 250 + 40 + 2 + 1 + 1,
        alice_history_per_day: 100 + 2,
        denied_today: 8,
        rbac_change_audit_id: "d-alice-crb-0".to_string(),
        quarantined: 3,
    }
}

/// Catalog rows: an incident of alice with two anomalies, an anomaly of
/// mallory outside any incident, an incident of another day, parts, and an
/// RBAC findings table. Also three quarantined lines for the day.
pub fn standard_catalog(connection: &duckdb::Connection, data_dir: &Path) {
    connection
        .execute_batch(
            "INSERT INTO incidents VALUES
               ('inc-alice', 'alice@example.com', 'default', TIMESTAMP '2026-11-26 22:00:00', TIMESTAMP '2026-11-26 23:10:00', 'critical',
                'alice escalated to cluster-admin after reading secrets', 2, ['rbac.cluster_admin_binding', 'novelty.new_namespace'], TIMESTAMP '2026-11-26 23:10:00'),
               ('inc-old', 'bob', 'default', TIMESTAMP '2026-11-20 10:00:00', TIMESTAMP '2026-11-20 11:00:00', 'high', 'old incident', 1, ['x'], TIMESTAMP '2026-11-20 11:00:00');
             INSERT INTO anomalies (id, detector, kind, identity, cluster, window_start, window_end, severity, score, title, reasons, evidence_audit_ids, incident_id, detected_at) VALUES
               ('an-1', 'rbac.cluster_admin_binding', 'rule', 'alice@example.com', 'default', TIMESTAMP '2026-11-26 23:00:00', TIMESTAMP '2026-11-26 23:00:01',
                'critical', 1.0, 'ClusterRoleBinding to cluster-admin created', ['binds cluster-admin to user alice'], ['d-alice-crb-0'], 'inc-alice', TIMESTAMP '2026-11-26 23:00:02'),
               ('an-2', 'novelty.new_namespace', 'novelty', 'alice@example.com', 'default', TIMESTAMP '2026-11-26 22:00:00', TIMESTAMP '2026-11-26 22:05:00',
                'medium', 0.7, 'First request to namespace kube-system', ['alice never used kube-system in 30 days', 'from new IP 203.0.113.7'], ['d-alice-ks-0', 'd-alice-ks-1'], 'inc-alice', TIMESTAMP '2026-11-26 22:05:01'),
               ('an-3', 'rule.forbidden_burst', 'rule', 'mallory', 'default', TIMESTAMP '2026-11-26 23:00:00', TIMESTAMP '2026-11-26 23:10:00',
                'high', 0.9, '8 denied secret lists', ['8 requests denied in 10 minutes'], ['d-mallory-0'], NULL, TIMESTAMP '2026-11-26 23:10:01'),
               ('an-old', 'x', 'rule', 'bob', 'default', TIMESTAMP '2026-11-20 10:00:00', TIMESTAMP '2026-11-20 10:00:01',
                'high', 0.9, 'old', [], [], 'inc-old', TIMESTAMP '2026-11-20 10:00:02');
             INSERT INTO parts (part_id, path, cluster, date, hour, flush_seq, rows, bytes, min_ts, max_ts, created_at) VALUES
               ('p1', 'events/x/p1.parquet', 'default', DATE '2026-11-26', 9, 1, 500, 40000, TIMESTAMP '2026-11-26 09:00:00', TIMESTAMP '2026-11-26 09:59:00', TIMESTAMP '2026-11-26 09:59:10'),
               ('p2', 'events/x/p2.parquet', 'default', DATE '2026-11-26', 23, 2, 12, 3000, TIMESTAMP '2026-11-26 23:00:00', TIMESTAMP '2026-11-26 23:10:00', TIMESTAMP '2026-11-26 23:10:30');
             CREATE TABLE rbac_findings (check_id VARCHAR, subject VARCHAR, severity VARCHAR, score DOUBLE, detail VARCHAR);
             INSERT INTO rbac_findings VALUES ('wildcard_verbs', 'ClusterRole/ops-all', 'critical', 0.95, 'verbs [*] on resources [*]');",
        )
        .expect("catalog rows");
    let quarantine = data_dir.join("quarantine");
    std::fs::create_dir_all(&quarantine).expect("quarantine dir");
    let entry = |reason: &str, offset: u64| {
        serde_json::to_string(&auditlens::store::quarantine::QuarantineEntry::new(
            "audit.log",
            "fp",
            offset,
            reason,
            "bad".into(),
            b"{oops",
            5,
        ))
        .expect("json")
    };
    std::fs::write(
        quarantine.join(format!("{REPORT_DAY}.jsonl")),
        format!(
            "{}\n{}\n{}\n",
            entry("not_json", 1),
            entry("not_json", 2),
            entry("missing_timestamp", 3)
        ),
    )
    .expect("quarantine file");
}

/// A full data folder: events, a catalog file with the standard rows (closed again).
pub fn standard_data_dir(data_dir: &Path) -> Expected {
    let expected = standard_events(data_dir);
    let catalog = auditlens::store::catalog::Catalog::open(data_dir).expect("catalog");
    let connection = catalog.connection().expect("connection");
    standard_catalog(&connection, data_dir);
    drop(connection);
    drop(catalog);
    expected
}
