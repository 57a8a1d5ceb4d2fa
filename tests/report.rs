//! End-to-end report tests: a data folder made of real Parquet (written by
//! DuckDB) and a real catalog file, reported on by the real binary and by the
//! library, with every figure checked against an independent DuckDB query.

mod report_support;

use auditlens::report::{
    Report, ReportConfig, ReportFormat, ReportScheduler, build_report, export_catalog_snapshot,
    report_path,
};
use chrono::{DateTime, NaiveDate, Utc};
use report_support::{REPORT_DAY, standard_data_dir};
use std::path::Path;
use std::process::Command;

fn run_report(data_dir: &Path, format: &str, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args(["report", "--date", REPORT_DAY, "--format", format, "--out"])
        .arg(out)
        .arg("--data-dir")
        .arg(data_dir)
        .env("AUDITLENS_LOG", "auditlens=warn")
        .output()
        .expect("run auditlens report")
}

fn read_report(path: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("the JSON is a Report")
}

/// Counts straight from the Parquet files, without auditlens code.
fn independent_count(data_dir: &Path, condition: &str) -> u64 {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let sql = format!(
        "SELECT count(DISTINCT audit_id) FROM read_parquet('{}/events/*/*/*/*.parquet', hive_partitioning = true) \
         WHERE CAST(ts AS DATE) = DATE '{REPORT_DAY}' AND ({condition})",
        data_dir.display()
    );
    let count: i64 = connection
        .query_row(&sql, [], |row| row.get(0))
        .expect("count");
    count as u64
}

#[test]
fn json_report_from_the_binary_holds_the_days_facts() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path();
    let expected = standard_data_dir(data_dir);
    let out = data_dir.join("out/report.json");
    let output = run_report(data_dir, "json", &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_report(&out);

    assert_eq!(report.schema_version, 1);
    assert_eq!(
        report.date,
        NaiveDate::parse_from_str(REPORT_DAY, "%Y-%m-%d").expect("date")
    );
    assert_eq!(report.catalog_source, "attached read-only");
    assert_eq!(report.summary.requests, independent_count(data_dir, "true"));
    assert!(
        report.summary.events > report.summary.requests,
        "two stages stored for some requests, counted once"
    );
    assert_eq!(report.summary.denied_requests, expected.denied_today);
    assert_eq!(
        report.summary.denied_requests,
        independent_count(data_dir, "response_code = 403")
    );

    // Incidents: only the day's, with their anomalies, most severe first.
    assert_eq!(report.incidents.len(), 1);
    let incident = &report.incidents[0];
    assert_eq!(incident.id, "inc-alice");
    assert_eq!(
        incident
            .anomalies
            .iter()
            .map(|anomaly| anomaly.id.as_str())
            .collect::<Vec<_>>(),
        ["an-1", "an-2"]
    );
    assert_eq!(incident.anomalies[1].reasons.len(), 2);
    assert_eq!(
        incident.anomalies[0].evidence_audit_ids,
        std::slice::from_ref(&expected.rbac_change_audit_id)
    );
    assert_eq!(report.ungrouped_anomalies.len(), 1);
    assert_eq!(report.ungrouped_anomalies[0].identity, "mallory");
    assert_eq!(report.summary.anomalies, 3);
    assert_eq!(
        report.summary.anomalies_by_severity.get("critical"),
        Some(&1)
    );
    assert_eq!(
        report
            .anomalies_by_hour
            .iter()
            .map(|hour| hour.count)
            .sum::<u64>(),
        3
    );

    // Activity against the usual profile.
    let alice = report
        .identity_activity
        .iter()
        .find(|activity| activity.identity == "alice@example.com")
        .expect("alice listed");
    assert_eq!(alice.requests, expected.alice_requests_today);
    assert_eq!(
        alice.requests,
        independent_count(data_dir, "username = 'alice@example.com'")
    );
    assert!((alice.usual_daily_requests - expected.alice_history_per_day as f64).abs() < 1e-9);
    assert_eq!(alice.usual_active_days, 7);
    assert!(alice.ratio_to_usual.expect("has history") > 2.5);
    let node = report
        .identity_activity
        .iter()
        .find(|activity| activity.identity == "system:node:cp-1")
        .expect("node listed");
    assert!((node.ratio_to_usual.expect("history") - 1.0).abs() < 1e-9);
    assert_eq!(report.new_identities, ["mallory"]);
    let firsts: Vec<(String, String, String)> = report
        .first_seen
        .iter()
        .map(|seen| (seen.identity.clone(), seen.what.clone(), seen.value.clone()))
        .collect();
    assert!(
        firsts.contains(&(
            "alice@example.com".into(),
            "namespace".into(),
            "kube-system".into()
        )),
        "{firsts:?}"
    );
    assert!(
        firsts.contains(&(
            "alice@example.com".into(),
            "source_ip".into(),
            "203.0.113.7".into()
        )),
        "{firsts:?}"
    );
    assert_eq!(firsts.len(), 2, "nothing else is new: {firsts:?}");

    // Denied trend: 2 per day before, 8 today, all in hour 23.
    assert_eq!(report.denied.total, 8);
    assert_eq!(report.denied.by_hour[23], 8);
    assert!((report.denied.previous_daily_average - 2.0).abs() < 1e-9);
    assert_eq!(report.denied.daily.len(), 8);
    assert_eq!(report.denied.top[0].identity, "mallory");

    // RBAC changes and compliance evidence.
    assert_eq!(report.rbac_changes.len(), 1);
    let change = &report.rbac_changes[0];
    assert_eq!(
        (
            change.identity.as_str(),
            change.verb.as_str(),
            change.resource.as_str()
        ),
        ("alice@example.com", "create", "clusterrolebindings")
    );
    assert_eq!(change.audit_id, expected.rbac_change_audit_id);
    assert!(change.succeeded);
    assert_eq!(report.compliance.rbac_change_count, 1);
    let secret_get = report
        .compliance
        .secret_access
        .iter()
        .find(|access| access.identity == "alice@example.com" && access.verb == "get")
        .expect("alice's secret reads");
    assert_eq!(secret_get.names, ["db-pass"]);
    assert_eq!(secret_get.requests, 2);
    assert!(
        report
            .compliance
            .secret_access
            .iter()
            .all(|access| access.identity != "mallory"),
        "denied reads are not reads"
    );
    assert_eq!(report.compliance.incident_evidence.len(), 1);
    assert_eq!(
        report.compliance.incident_evidence[0].evidence_audit_ids,
        ["d-alice-crb-0", "d-alice-ks-0", "d-alice-ks-1"]
    );

    // Optional tables: present and absent.
    assert!(report.rbac_risky_grants.available);
    assert_eq!(report.rbac_risky_grants.rows.len(), 1);
    assert!(
        report
            .rbac_risky_grants
            .columns
            .contains(&"check_id".to_string())
    );
    assert!(!report.models.available);
    assert!(report.models.note.contains("not available"));
    assert!(!report.rbac_unused_grants.available);

    // Ingest health from the manifest and the quarantine file.
    assert!(report.ingest.manifest_available);
    assert_eq!(report.ingest.parts_written, 2);
    assert_eq!(report.ingest.rows_written, 512);
    assert!((report.ingest.max_commit_lag_seconds.expect("lag") - 30.0).abs() < 1e-6);
    assert_eq!(report.ingest.quarantined_total, expected.quarantined);
    assert_eq!(
        report.ingest.quarantined_by_reason.get("not_json"),
        Some(&2)
    );
}

#[test]
fn markdown_and_html_render_the_same_facts_and_html_is_self_contained() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path();
    standard_data_dir(data_dir);
    let markdown_path = data_dir.join("report.md");
    let html_path = data_dir.join("report.html");
    for (format, path) in [("md", &markdown_path), ("html", &html_path)] {
        let output = run_report(data_dir, format, path);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let markdown = std::fs::read_to_string(&markdown_path).expect("md");
    for needle in [
        "# auditlens report: 2026-11-26",
        "alice escalated to cluster-admin",
        "d-alice-crb-0",
        "db-pass",
        "mallory",
        "Model status",
        "not available",
    ] {
        assert!(markdown.contains(needle), "markdown lacks {needle}");
    }
    let html = std::fs::read_to_string(&html_path).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    // The four of the overview and the feedback section's alerts per day (no
    // RBAC snapshot is stored here, so the drift section has no chart).
    assert_eq!(html.matches("<svg").count(), 5, "five inline charts");
    assert!(html.contains("Alerts per day by detector"));
    assert!(html.contains("No RBAC snapshot stored for these 8 days"));
    assert!(
        html.contains("default-src 'none'"),
        "a CSP forbids every fetch"
    );
    for forbidden in [
        "<script",
        "src=",
        "url(",
        "@import",
        "href=\"http",
        "<link rel=\"stylesheet",
    ] {
        assert!(!html.contains(forbidden), "HTML contains {forbidden}");
    }
    // The only absolute URL is the SVG namespace, which is never fetched.
    assert_eq!(
        html.matches("://").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    for needle in [
        "alice escalated to cluster-admin",
        "d-alice-crb-0",
        "Compliance evidence",
        "kube-system",
    ] {
        assert!(html.contains(needle), "HTML lacks {needle}");
    }
}

#[test]
fn hostile_names_are_escaped_in_html_and_markdown() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path();
    let connection = report_support::staging();
    report_support::add(
        &connection,
        &report_support::Batch {
            user: "<script>alert(1)</script>|x",
            count: 3,
            id_prefix: "evil",
            ..report_support::Batch::default()
        },
        1,
    );
    report_support::write_parquet(&connection, data_dir);
    let html_path = data_dir.join("r.html");
    let markdown_path = data_dir.join("r.md");
    assert!(run_report(data_dir, "html", &html_path).status.success());
    assert!(run_report(data_dir, "md", &markdown_path).status.success());
    let html = std::fs::read_to_string(&html_path).expect("html");
    assert!(!html.contains("<script"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;|x"));
    let markdown = std::fs::read_to_string(&markdown_path).expect("md");
    assert!(markdown.contains("\\<script\\>alert(1)\\</script\\>\\|x"));
}

#[test]
fn a_catalog_held_by_the_daemon_is_read_from_its_export() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path();
    standard_data_dir(data_dir);
    // This process now holds the catalog open for writing, as the daemon does.
    let catalog = auditlens::store::catalog::Catalog::open(data_dir).expect("catalog");
    let connection = catalog.connection().expect("connection");

    let out = data_dir.join("held.json");
    let output = run_report(data_dir, "json", &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let without_export = read_report(&out);
    assert_eq!(without_export.catalog_source, "unavailable");
    assert!(without_export.incidents.is_empty());
    assert!(
        without_export.summary.requests > 0,
        "events are read from Parquet regardless"
    );

    let exported = export_catalog_snapshot(&connection, data_dir).expect("export");
    assert!(
        exported.contains(&"anomalies".to_string())
            && exported.contains(&"rbac_findings".to_string())
    );
    let output = run_report(data_dir, "json", &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let from_export = read_report(&out);
    assert!(
        from_export.catalog_source.starts_with("export of "),
        "{}",
        from_export.catalog_source
    );
    let direct = build_report(data_dir, &connection, from_export.date, "default")
        .expect("report in-process");
    assert_eq!(from_export.incidents, direct.incidents);
    assert_eq!(from_export.ungrouped_anomalies, direct.ungrouped_anomalies);
    assert_eq!(from_export.summary, direct.summary);
    assert_eq!(from_export.ingest, direct.ingest);
    assert_eq!(from_export.rbac_risky_grants, direct.rbac_risky_grants);
}

/// A kubectl `List` of RBAC objects, as `auditlens rbac snapshot save` reads it.
fn rbac_list(items: Vec<serde_json::Value>) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

fn rbac_object(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut object = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
    });
    if let Some(namespace) = namespace {
        object["metadata"]["namespace"] = namespace.into();
    }
    if let (Some(object), Some(body)) = (object.as_object_mut(), body.as_object()) {
        object.extend(body.clone());
    }
    object
}

fn binding_to(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    role_kind: &str,
    role: &str,
    subject: serde_json::Value,
) -> serde_json::Value {
    rbac_object(
        kind,
        name,
        namespace,
        serde_json::json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [subject],
        }),
    )
}

fn save_rbac_snapshot(data_dir: &Path, name: &str, list: &str, taken_at: &str) {
    let path = data_dir.join(name);
    std::fs::write(&path, list).expect("rbac file");
    let output = Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args(["rbac", "snapshot", "save", "--rbac"])
        .arg(&path)
        .args(["--taken-at", taken_at, "--data-dir"])
        .arg(data_dir)
        .env("AUDITLENS_LOG", "auditlens=warn")
        .output()
        .expect("run auditlens rbac snapshot save");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two RBAC versions for the standard data: a week before the report's day
/// alice may read configmaps and view pods in team-a; on the morning of the
/// day pods are taken away and she may read secrets cluster-wide. The CI
/// deployer may patch deployments in ci throughout.
fn save_standard_snapshots(data_dir: &Path) {
    let alice = serde_json::json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice@example.com"});
    let deployer =
        serde_json::json!({"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"});
    let config_reader = rbac_object(
        "Role",
        "config-reader",
        Some("team-a"),
        serde_json::json!({"rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
    );
    let pod_viewer = rbac_object(
        "Role",
        "pod-viewer",
        Some("team-a"),
        serde_json::json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    );
    let deployer_role = rbac_object(
        "ClusterRole",
        "deployer",
        None,
        serde_json::json!({"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}]}),
    );
    let secret_reader = rbac_object(
        "ClusterRole",
        "secret-reader",
        None,
        serde_json::json!({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
    );
    let common = vec![
        config_reader,
        pod_viewer,
        deployer_role,
        secret_reader,
        binding_to(
            "RoleBinding",
            "alice-config",
            Some("team-a"),
            "Role",
            "config-reader",
            alice.clone(),
        ),
        binding_to(
            "RoleBinding",
            "deployer",
            Some("ci"),
            "ClusterRole",
            "deployer",
            deployer,
        ),
    ];
    // A week before the report's day: alice may also view pods (never used).
    let mut before = common.clone();
    before.push(binding_to(
        "RoleBinding",
        "alice-pods",
        Some("team-a"),
        "Role",
        "pod-viewer",
        alice.clone(),
    ));
    save_rbac_snapshot(
        data_dir,
        "before.json",
        &rbac_list(before),
        "2026-11-18T12:00:00Z",
    );
    // The morning of the report's day: pods taken away, secrets cluster-wide given.
    let mut after = common;
    after.push(binding_to(
        "ClusterRoleBinding",
        "alice-secrets",
        None,
        "ClusterRole",
        "secret-reader",
        alice,
    ));
    save_rbac_snapshot(
        data_dir,
        "after.json",
        &rbac_list(after),
        "2026-11-26T08:00:00Z",
    );
}

#[test]
fn rbac_drift_shows_new_and_removed_grants_and_each_days_score() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path();
    standard_data_dir(data_dir);
    let out = data_dir.join("drift.json");
    assert!(run_report(data_dir, "json", &out).status.success());
    assert!(
        !read_report(&out).rbac_drift.available,
        "no snapshot stored yet"
    );

    save_standard_snapshots(data_dir);

    assert!(run_report(data_dir, "json", &out).status.success());
    let report = read_report(&out);
    let drift = &report.rbac_drift;
    assert!(drift.available);
    assert_eq!(
        drift.baseline.as_ref().map(|version| version.version),
        Some(1)
    );
    assert_eq!(
        drift.current.as_ref().map(|version| version.version),
        Some(2)
    );
    assert_eq!((drift.new_grant_count, drift.removed_grant_count), (1, 1));
    let added = &drift.new_grants[0];
    assert_eq!(added.subject, "User alice@example.com");
    assert_eq!(added.binding, "ClusterRoleBinding/alice-secrets");
    assert_eq!(added.namespace, None);
    assert_eq!(added.sensitive, vec!["secrets".to_string()]);
    assert_eq!(
        drift.removed_grants[0].binding,
        "RoleBinding/team-a/alice-pods"
    );

    // alice: a week ago she held configmaps (used every day) and pods (never
    // used); on the day she holds configmaps and secrets and used both.
    let alice = drift
        .over_privilege
        .iter()
        .find(|identity| identity.identity == "alice@example.com")
        .expect("alice scored");
    let first = alice.first().expect("first day");
    assert_eq!(
        first.date,
        NaiveDate::from_ymd_opt(2026, 11, 19).expect("date")
    );
    assert_eq!(
        (first.granted_rules, first.used_rules, first.score),
        (2, 1, Some(0.5))
    );
    let last = alice.last().expect("last day");
    assert_eq!(last.date, report.date);
    assert_eq!((last.granted_rules, last.used_rules), (2, 2));
    // The report's score is the one `rbac recommend` gives for the same week and snapshot.
    let catalog = duckdb::Connection::open(data_dir.join("catalog.duckdb")).expect("catalog");
    let (_, current) = auditlens::rbac::load_snapshot_at(
        &catalog,
        DateTime::parse_from_rfc3339("2026-11-26T23:59:59Z")
            .expect("time")
            .with_timezone(&Utc),
    )
    .expect("query")
    .expect("stored");
    drop(catalog);
    let options = auditlens::rbac::RecommendOptions {
        identity: Some("alice@example.com".into()),
        since: Some(
            DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
        ),
        until: Some(
            DateTime::parse_from_rfc3339("2026-11-27T00:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
        ),
        ..auditlens::rbac::RecommendOptions::default()
    };
    let recommended =
        auditlens::rbac::recommend(data_dir, Some(&current), &options).expect("recommend");
    assert_eq!(
        (
            recommended[0].granted_rules,
            recommended[0].used_grant_rules
        ),
        (
            Some(last.granted_rules as usize),
            Some(last.used_rules as usize)
        )
    );
    assert_eq!(recommended[0].over_privilege_score, last.score);
    // The CI service account patched deployments every day: least privilege throughout.
    let deployer = drift
        .over_privilege
        .iter()
        .find(|identity| identity.identity == "system:serviceaccount:ci:deployer")
        .expect("deployer scored");
    assert!(deployer.days.iter().all(|day| day.score == Some(1.0)));

    // The HTML has the section and its chart; Markdown the tables.
    let html_path = data_dir.join("drift.html");
    assert!(run_report(data_dir, "html", &html_path).status.success());
    let html = std::fs::read_to_string(&html_path).expect("html");
    assert!(html.contains("<h2 id=\"rbac-drift\">"));
    assert!(html.contains("Over-privilege score: rules used in the trailing 7 days"));
    let markdown_path = data_dir.join("drift.md");
    assert!(run_report(data_dir, "md", &markdown_path).status.success());
    let markdown = std::fs::read_to_string(&markdown_path).expect("md");
    assert!(markdown.contains("### New grants since last week"));
    assert!(markdown.contains("1 grants are new and 1 were removed"));

    // A catalog held by the daemon: the same section from its export.
    let held = auditlens::store::catalog::Catalog::open(data_dir).expect("catalog");
    let connection = held.connection().expect("connection");
    let exported = export_catalog_snapshot(&connection, data_dir).expect("export");
    assert!(exported.contains(&"rbac_snapshots".to_string()));
    assert!(run_report(data_dir, "json", &out).status.success());
    let from_export = read_report(&out);
    assert!(from_export.catalog_source.starts_with("export of "));
    assert_eq!(&from_export.rbac_drift, drift);
}

#[test]
fn scheduler_writes_the_previous_day_once_and_keeps_retention() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path();
    standard_data_dir(data_dir);
    let stale = report_path(
        data_dir,
        NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
        ReportFormat::Json,
    );
    std::fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
    std::fs::write(&stale, "{}").expect("stale report");

    let catalog = auditlens::store::catalog::Catalog::open(data_dir).expect("catalog");
    let connection = catalog.connection().expect("connection");
    let scheduler = ReportScheduler {
        data_dir: data_dir.to_path_buf(),
        cluster: "default".into(),
        config: ReportConfig {
            retention_days: 30,
            ..ReportConfig::default()
        },
        metrics: None,
    };
    let before_time: DateTime<Utc> = "2026-11-27T01:30:00Z".parse().expect("time");
    let after_time: DateTime<Utc> = "2026-11-27T02:30:00Z".parse().expect("time");

    // Before 02:00 the day before yesterday is due (none written yet).
    assert_eq!(
        scheduler.tick(&connection, before_time).expect("tick"),
        NaiveDate::from_ymd_opt(2026, 11, 25)
    );
    assert_eq!(
        scheduler.tick(&connection, before_time).expect("tick"),
        None
    );
    assert_eq!(
        scheduler.tick(&connection, after_time).expect("tick"),
        NaiveDate::from_ymd_opt(2026, 11, 26)
    );
    assert_eq!(scheduler.tick(&connection, after_time).expect("tick"), None);
    let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
    for format in [ReportFormat::Json, ReportFormat::Md, ReportFormat::Html] {
        assert!(
            report_path(data_dir, day, format).exists(),
            "{format:?} written"
        );
    }
    assert!(!stale.exists(), "retention removed the old report");
    let written = read_report(&report_path(data_dir, day, ReportFormat::Json));
    assert_eq!(written.incidents.len(), 1);
    let leftovers: Vec<String> = std::fs::read_dir(data_dir.join("reports"))
        .expect("reports")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );
}

/// Writes the sample HTML report for tests/browser/check_report.sh when
/// AUDITLENS_SAMPLE_REPORT_OUT names a file; otherwise checks it builds.
#[test]
fn sample_html_report() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path();
    standard_data_dir(data_dir);
    save_standard_snapshots(data_dir);
    let out = match std::env::var_os("AUDITLENS_SAMPLE_REPORT_OUT") {
        Some(path) => std::path::PathBuf::from(path),
        None => data_dir.join("sample.html"),
    };
    let output = run_report(data_dir, "html", &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::metadata(&out).expect("written").len() > 10_000);
}
