//! The HTML report of a real day opens in headless Chromium with no console
//! message and no network request (tests/browser/check_report.sh, which
//! installs Debian's `chromium` when it is missing and self-tests its two
//! detectors on deliberately bad pages first).
//!
//! The day is the simulated one in testdata/sim: ingested, detected and stored
//! with the real binary, then reported.

mod common;

use common::{run, testdata};
use std::process::Command;

#[test]
fn html_report_of_a_simulated_day_opens_in_headless_chromium_cleanly() {
    let data = tempfile::tempdir().expect("data dir");
    let mut logs: Vec<String> = std::fs::read_dir(testdata("sim"))
        .expect("testdata/sim")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("audit"))
        })
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    logs.sort();
    let mut ingest = vec!["ingest", "--no-progress"];
    ingest.extend(logs.iter().map(String::as_str));
    let output = run(data.path(), &ingest);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(data.path(), &["detect", "--store", "--format", "jsonl"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.stdout.is_empty(),
        "the simulated day has attacks to report"
    );

    let report = data.path().join("report.html");
    let output = run(
        data.path(),
        &[
            "report",
            "--date",
            "2026-11-25",
            "--format",
            "html",
            "--out",
            &report.to_string_lossy(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let screenshot = data.path().join("report.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/check_report.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(&report)
        .arg(&screenshot)
        .output()
        .expect("run tests/browser/check_report.sh");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::metadata(&screenshot).expect("screenshot").len() > 10_000);
}
