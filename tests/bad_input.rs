//! Hostile and broken input: every bad line is quarantined with its reason and
//! counted, none stops ingest or costs the good lines around it.

mod common;

use common::{audit_line, counts, run, start_daemon, stop_daemon, wait_until};
use std::io::Write;
use std::time::Duration;

fn quarantine_reasons(data_dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut reasons = Vec::new();
    if let Ok(files) = std::fs::read_dir(data_dir.join("quarantine")) {
        for file in files.flatten() {
            for line in std::fs::read_to_string(file.path()).expect("read").lines() {
                let value: serde_json::Value = serde_json::from_str(line).expect("json");
                reasons.push((
                    value["reason"].as_str().unwrap_or("").to_string(),
                    value["offset"].as_u64().unwrap_or(u64::MAX),
                ));
            }
        }
    }
    reasons.sort_by_key(|(_, offset)| *offset);
    reasons
}

#[test]
fn every_kind_of_bad_line_is_quarantined_and_good_lines_survive() {
    let input = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let path = input.path().join("audit.log");
    let mut content: Vec<u8> = Vec::new();
    let mut good = 0;
    let mut push_good = |content: &mut Vec<u8>| {
        content.extend_from_slice(audit_line("bad-input", good).as_bytes());
        content.push(b'\n');
        good += 1;
    };
    push_good(&mut content);
    let bad_lines: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":".to_vec(), "not_json"),
        (b"this is not json at all".to_vec(), "not_json"),
        (b"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\"}}".to_vec(), "wrong_kind"),
        (b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v9\"}".to_vec(), "unsupported_api_version"),
        (
            b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"x\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"user\":{\"username\":\"u\"}}".to_vec(),
            "missing_timestamp",
        ),
        (b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"\xff\xfe\xfd\"}".to_vec(), "invalid_utf8"),
        (format!("{{\"kind\":\"Event\",\"pad\":\"{}\"}}", "x".repeat(10 * 1024 * 1024)).into_bytes(), "line_too_long"),
    ];
    for (line, _) in &bad_lines {
        content.extend_from_slice(line);
        content.push(b'\n');
        push_good(&mut content);
    }
    std::fs::write(&path, &content).expect("write");
    let output = run(
        data.path(),
        &["ingest", "--no-progress", &path.to_string_lossy()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(counts(data.path()).rows, good as i64);
    let reasons: Vec<String> = quarantine_reasons(data.path())
        .into_iter()
        .map(|(reason, _)| reason)
        .collect();
    let expected: Vec<String> = bad_lines
        .iter()
        .map(|(_, reason)| reason.to_string())
        .collect();
    assert_eq!(reasons, expected);
}

#[test]
fn a_gzip_cut_short_keeps_what_it_held() {
    let input = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let mut plain = Vec::new();
    for index in 0..5000 {
        plain.extend_from_slice(audit_line("cut", index).as_bytes());
        plain.push(b'\n');
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&plain).expect("compress");
    let compressed = encoder.finish().expect("finish");
    let path = input.path().join("audit-2026-11-27T09-00-00.000.log.gz");
    std::fs::write(&path, &compressed[..compressed.len() * 2 / 3]).expect("write");
    let output = run(
        data.path(),
        &["ingest", "--no-progress", &path.to_string_lossy()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("damaged"), "{stderr}");
    let stored = counts(data.path()).rows;
    assert!(stored > 1000 && stored < 5000, "stored {stored}");
    // Every stored line is one of the written ones, in order from the start.
    assert_eq!(counts(data.path()).distinct_events, stored);
}

#[test]
fn the_daemon_waits_for_a_missing_folder_and_a_partial_last_line() {
    let parent = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let audit = parent.path().join("not-yet");
    let daemon = start_daemon(data.path(), &audit, &[]);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::create_dir_all(&audit).expect("create folder");
    let path = audit.join("audit.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open");
    let first = audit_line("wait", 0);
    let second = audit_line("wait", 1);
    write!(file, "{first}\n{}", &second[..40]).expect("write");
    file.flush().expect("flush");
    assert!(wait_until(Duration::from_secs(30), || counts(data.path())
        .rows
        == 1));
    // The half line is not stored until its newline arrives.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(counts(data.path()).rows, 1);
    writeln!(file, "{}", &second[40..]).expect("finish line");
    assert!(wait_until(Duration::from_secs(30), || counts(data.path())
        .rows
        == 2));
    // A file deleted while open is still drained.
    let more: String = (2..50)
        .map(|index| audit_line("wait", index) + "\n")
        .collect();
    file.write_all(more.as_bytes()).expect("write more");
    std::fs::remove_file(&path).expect("delete");
    assert!(
        wait_until(Duration::from_secs(30), || counts(data.path()).rows == 50),
        "{:?}",
        counts(data.path())
    );
    stop_daemon(daemon);
    assert_eq!(counts(data.path()).distinct_events, 50);
}
