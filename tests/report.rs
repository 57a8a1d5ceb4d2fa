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
    assert_eq!(html.matches("<svg").count(), 4, "four inline charts");
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
