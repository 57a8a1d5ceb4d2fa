//! Resource limits: a 100 MB line is skipped and quarantined without being
//! buffered (peak RSS compared with the same run without it), and request
//! objects above `store.keep_objects_max_bytes` (and any Secret's) are not
//! stored.

mod common;
mod harden;

use common::{audit_line, counts, query_strings, stop_daemon, wait_until};
use harden::{proc_status_kib, start_daemon_with};
use std::io::Write;
use std::time::Duration;

/// Ingests `content` with a daemon and returns its peak RSS (KiB) once stored.
fn peak_rss_ingesting(
    content_writer: impl FnOnce(&mut std::fs::File),
    expected_rows: i64,
) -> (u64, tempfile::TempDir) {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let daemon = start_daemon_with(data.path(), audit.path(), &[]);
    {
        let mut file = std::fs::File::create(audit.path().join("audit.log")).expect("create");
        content_writer(&mut file);
    }
    let stored = wait_until(Duration::from_secs(120), || {
        counts(data.path()).rows >= expected_rows
    });
    // Let the reader finish whatever follows the last stored line.
    std::thread::sleep(Duration::from_secs(2));
    let peak = proc_status_kib(daemon.id(), "VmHWM").expect("VmHWM");
    stop_daemon(daemon);
    assert!(stored, "only {:?} stored", counts(data.path()));
    assert_eq!(counts(data.path()).rows, expected_rows);
    (peak, data)
}

fn write_lines(file: &mut std::fs::File, prefix: &str, range: std::ops::Range<u64>) {
    let text: String = range
        .map(|index| audit_line(prefix, index) + "\n")
        .collect();
    file.write_all(text.as_bytes()).expect("write");
}

#[test]
fn a_hundred_megabyte_line_is_quarantined_without_being_buffered() {
    let (baseline_kib, _) = peak_rss_ingesting(
        |file| {
            write_lines(file, "short", 0..100);
            write_lines(file, "short", 100..200);
        },
        200,
    );
    let (peak_kib, data) = peak_rss_ingesting(
        |file| {
            write_lines(file, "long", 0..100);
            // One 100 MB line (valid JSON start, so only its length is wrong).
            file.write_all(b"{\"kind\":\"Event\",\"pad\":\"")
                .expect("write");
            let block = vec![b'x'; 1 << 20];
            for _ in 0..100 {
                file.write_all(&block).expect("write");
            }
            file.write_all(b"\"}\n").expect("write");
            write_lines(file, "long", 100..200);
        },
        200,
    );
    eprintln!("peak RSS: {baseline_kib} KiB without the 100 MB line, {peak_kib} KiB with it");
    // The reader's buffer is 4 MiB: a few buffers more at most, never the line.
    assert!(
        peak_kib < baseline_kib + 48 * 1024,
        "the long line was buffered: {baseline_kib} → {peak_kib} KiB"
    );
    let quarantine: Vec<serde_json::Value> = std::fs::read_dir(data.path().join("quarantine"))
        .expect("quarantine folder")
        .flatten()
        .flat_map(|entry| {
            std::fs::read_to_string(entry.path())
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect();
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert_eq!(quarantine[0]["reason"], "line_too_long");
    assert!(quarantine[0]["line_bytes"].as_u64().expect("length") > 100 << 20);
    assert!(quarantine[0]["raw"].as_str().expect("raw").len() <= 64 * 1024);
}

fn object_line(id: &str, resource: &str, object_bytes: usize) -> String {
    let padding = "p".repeat(object_bytes);
    serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": id,
        "stage": "ResponseComplete", "verb": "create", "requestURI": format!("/api/v1/namespaces/a/{resource}"),
        "user": {"username": "alice"}, "objectRef": {"resource": resource, "namespace": "a", "name": id, "apiVersion": "v1"},
        "requestObject": {"kind": "X", "data": {"padding": padding}},
        "responseObject": {"kind": "X", "data": {"padding": "r"}},
        "requestReceivedTimestamp": "2026-11-27T09:00:00Z", "stageTimestamp": "2026-11-27T09:00:00Z"
    })
    .to_string()
}

#[test]
fn request_objects_above_the_limit_and_all_secrets_are_not_kept() {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let daemon = start_daemon_with(
        data.path(),
        audit.path(),
        &[("AUDITLENS_STORE__KEEP_OBJECTS_MAX_BYTES", "4096")],
    );
    let lines = [
        object_line("pod-small", "pods", 1000),
        object_line("pod-large", "pods", 10_000),
        object_line("secret-small", "secrets", 100),
    ];
    std::fs::write(audit.path().join("audit.log"), lines.join("\n") + "\n").expect("write");
    assert!(wait_until(Duration::from_secs(60), || counts(data.path())
        .rows
        >= 3));
    stop_daemon(daemon);
    let rows = query_strings(
        data.path(),
        "SELECT audit_id, CAST(request_object IS NOT NULL AS VARCHAR), CAST(response_object IS NOT NULL AS VARCHAR) FROM events ORDER BY audit_id",
    );
    let kept: Vec<(String, String, String)> = rows
        .into_iter()
        .map(|row| {
            (
                row[0].clone().unwrap_or_default(),
                row[1].clone().unwrap_or_default(),
                row[2].clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            ("pod-large".into(), "false".into(), "true".into()),
            ("pod-small".into(), "true".into(), "true".into()),
            ("secret-small".into(), "false".into(), "false".into()),
        ]
    );
}
