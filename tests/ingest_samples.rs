//! The real public samples ingest as they should, through the real binary.

mod common;

use common::{counts, query_strings, run, testdata};
use std::path::PathBuf;

fn quarantine(data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    let Ok(files) = std::fs::read_dir(data_dir.join("quarantine")) else {
        return entries;
    };
    for file in files.flatten() {
        let text = std::fs::read_to_string(file.path()).expect("read quarantine");
        for line in text.lines() {
            entries.push(serde_json::from_str(line).expect("quarantine entry is JSON"));
        }
    }
    entries
}

fn falco_trace_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata("falco"))
        .expect("falco traces")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            name.ends_with(".json") && !name.starts_with("labels_")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn falco_traces_ingest_with_only_the_malformed_file_quarantined() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = falco_trace_files();
    let mut args: Vec<String> = vec!["ingest".into(), "--no-progress".into()];
    args.extend(files.iter().map(|path| path.to_string_lossy().into_owned()));
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(data.path(), &arg_refs);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut expected_lines = 0i64;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read trace");
        expected_lines += text.lines().filter(|line| !line.trim().is_empty()).count() as i64;
    }
    let quarantined = quarantine(data.path());
    assert_eq!(quarantined.len(), 1, "{quarantined:#?}");
    assert!(
        quarantined[0]["source_file"]
            .as_str()
            .unwrap_or("")
            .ends_with("fal_01_003.json")
    );
    assert_eq!(quarantined[0]["reason"], "not_json");
    let stored = counts(data.path());
    assert_eq!(stored.rows, expected_lines - 1);
    assert_eq!(stored.distinct_lines, stored.rows);
}

#[test]
fn audit2rbac_demo_log_uses_the_old_timestamp_field() {
    let data = tempfile::tempdir().expect("tempdir");
    let log = testdata("audit2rbac/demo.log");
    let output = run(
        data.path(),
        &["ingest", "--no-progress", &log.to_string_lossy()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = std::fs::read_to_string(&log)
        .expect("read")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count() as i64;
    assert!(quarantine(data.path()).is_empty());
    assert_eq!(counts(data.path()).rows, lines);
    // Impersonation: the authenticated user is kept, the effective identity classified.
    let rows = query_strings(
        data.path(),
        "SELECT username, impersonated_user, identity_kind, strftime(min(ts), '%Y-%m-%dT%H:%M:%S') FROM events \
         WHERE audit_id = '033d17af-082d-4b24-aa22-627752e83d71' GROUP BY ALL",
    );
    assert_eq!(
        rows,
        vec![vec![
            Some("system:admin".into()),
            Some("bob".into()),
            Some("user".into()),
            Some("2017-09-11T19:55:05".into())
        ]]
    );
}

#[test]
fn ingesting_the_same_file_twice_stores_nothing_new() {
    let data = tempfile::tempdir().expect("tempdir");
    let log = testdata("audit2rbac/demo.log");
    let first = run(
        data.path(),
        &["ingest", "--no-progress", &log.to_string_lossy()],
    );
    assert!(first.status.success());
    let after_first = counts(data.path());
    // A copy under another name is the same source, too.
    let copy_dir = tempfile::tempdir().expect("tempdir");
    let copy = copy_dir.path().join("renamed-audit.log");
    std::fs::copy(&log, &copy).expect("copy");
    let second = run(
        data.path(),
        &[
            "ingest",
            "--no-progress",
            &log.to_string_lossy(),
            &copy.to_string_lossy(),
        ],
    );
    assert!(second.status.success());
    assert_eq!(counts(data.path()), after_first);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("ingested 0 file(s) (2 already stored)"),
        "{stdout}"
    );
}

/// Panther's EKS rule-test events are trimmed fixtures: each line is stored
/// exactly when it carries what an audit event needs, else quarantined with
/// the reason. The expectation is computed independently from the JSON.
#[test]
fn panther_eks_fixtures_are_stored_or_quarantined_with_their_reason() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = testdata("panther/flat_Amazon_EKS_Audit.jsonl");
    let output = run(
        data.path(),
        &["ingest", "--no-progress", &file.to_string_lossy()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("read");
    let mut expected_stored = 0i64;
    let mut expected_reasons = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("fixture is JSON");
        let reason = if value["kind"] != "Event" {
            Some(if value.get("kind").is_none() {
                "missing_field"
            } else {
                "wrong_kind"
            })
        } else if ["auditID", "stage", "verb", "user"]
            .iter()
            .any(|key| value.get(*key).is_none())
        {
            Some("missing_field")
        } else if value.get("requestReceivedTimestamp").is_none()
            && value.get("timestamp").is_none()
        {
            Some("missing_timestamp")
        } else {
            None
        };
        match reason {
            Some(reason) => *expected_reasons.entry(reason.to_string()).or_default() += 1,
            None => expected_stored += 1,
        }
    }
    let mut actual_reasons = std::collections::BTreeMap::<String, usize>::new();
    for entry in quarantine(data.path()) {
        *actual_reasons
            .entry(entry["reason"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    assert_eq!(counts(data.path()).rows, expected_stored);
    assert_eq!(actual_reasons, expected_reasons);
    assert!(expected_stored > 0 && !expected_reasons.is_empty());
}

/// The stored columns for a handful of real events, field by field.
#[test]
fn golden_columns_of_known_events() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = falco_trace_files();
    let mut args: Vec<String> = vec!["ingest".into(), "--no-progress".into()];
    args.extend(files.iter().map(|path| path.to_string_lossy().into_owned()));
    args.push(
        testdata("audit2rbac/demo.log")
            .to_string_lossy()
            .into_owned(),
    );
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(run(data.path(), &arg_refs).status.success());
    let golden: &[(&str, &str, [Option<&str>; 8])] = &[
        // exec into a pod: subresource, 101 upgrade, allowed by RBAC.
        (
            "exec_pod.json",
            "SELECT identity_kind, username, impersonated_user, resource, subresource, decision, CAST(response_code AS VARCHAR), stage FROM events",
            [
                Some("user"),
                Some("minikube-user"),
                None,
                Some("pods"),
                Some("exec"),
                Some("allow"),
                Some("101"),
                Some("ResponseStarted"),
            ],
        ),
    ];
    for (file, sql, expected) in golden {
        let sql = format!("{sql} WHERE source_file LIKE '%/{file}'");
        let rows = query_strings(data.path(), &sql);
        let expected: Vec<Option<String>> = expected
            .iter()
            .map(|value| value.map(str::to_string))
            .collect();
        assert_eq!(rows, vec![expected], "{file}");
    }
    // Impersonated and denied (audit2rbac): authenticated user, impersonated user, 403, service account columns empty.
    let rows = query_strings(
        data.path(),
        "SELECT username, impersonated_user, identity_kind, decision, CAST(response_code AS VARCHAR), response_reason, sa_name \
         FROM events WHERE audit_id = '033d17af-082d-4b24-aa22-627752e83d71'",
    );
    assert_eq!(
        rows,
        vec![vec![
            Some("system:admin".into()),
            Some("bob".into()),
            Some("user".into()),
            None,
            Some("403".into()),
            Some("Forbidden".into()),
            None
        ]]
    );
    // Every service-account row has its namespace and name split out.
    let rows = query_strings(
        data.path(),
        "SELECT count(*)::VARCHAR FROM events WHERE identity_kind = 'service_account' AND \
         (sa_namespace IS NULL OR sa_name IS NULL OR coalesce(impersonated_user, username) <> 'system:serviceaccount:' || sa_namespace || ':' || sa_name)",
    );
    assert_eq!(rows, vec![vec![Some("0".into())]]);
}
