//! The daemon's novelty baseline across restarts, end to end with the real
//! binary: history stored before a start is learned at the start (a service
//! account with a stored past is not "learning" again after a restart), a
//! window a person resolved as a true positive is left out of the baseline
//! so the same facts alert again, and one resolved benign stays in it.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{counts, start_daemon, stop_daemon, succeed, wait_until};
use std::collections::BTreeSet;
use std::path::Path;

const BUILDER: &str = "system:serviceaccount:ci:builder";

fn line(id: &str, at: DateTime<Utc>, namespace: &str, ip: &str, agent: &str) -> String {
    let time = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id,
        "stage": "ResponseComplete",
        "requestURI": format!("/api/v1/namespaces/{namespace}/configmaps/build"),
        "verb": "get",
        "user": {"username": BUILDER, "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]},
        "sourceIPs": [ip], "userAgent": agent,
        "objectRef": {"resource": "configmaps", "namespace": namespace, "name": "build", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": time, "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": "allow"}
    })
    .to_string()
}

/// The novelty anomalies stored for the builder (the daemon must be stopped).
fn novelty_anomalies(data_dir: &Path) -> BTreeSet<String> {
    let catalog = duckdb::Connection::open(data_dir.join("catalog.duckdb")).expect("catalog");
    let mut statement = catalog
        .prepare("SELECT id FROM anomalies WHERE identity = ? AND detector LIKE 'novelty%'")
        .expect("query");
    statement
        .query_map([BUILDER], |row| row.get::<_, String>(0))
        .expect("rows")
        .map(|row| row.expect("id"))
        .collect()
}

/// One daemon run that reads one new request of the builder, in kube-system
/// from a public address with curl (three facts its history never showed),
/// and stops. Returns the novelty anomalies stored by this run.
fn run_with_request(
    data_dir: &Path,
    audit_dir: &Path,
    round: u32,
    at: DateTime<Utc>,
) -> BTreeSet<String> {
    let before = novelty_anomalies(data_dir);
    let rows_before = counts(data_dir).rows;
    std::fs::write(
        audit_dir.join(format!("audit-round-{round}.log")),
        line(
            &format!("round-{round}"),
            at,
            "kube-system",
            "198.51.100.23",
            "curl/8.4.0",
        ) + "\n",
    )
    .expect("audit file");
    let daemon = start_daemon(data_dir, audit_dir, &[]);
    assert!(
        wait_until(std::time::Duration::from_secs(60), || counts(data_dir).rows
            > rows_before),
        "the request was stored"
    );
    let log = stop_daemon(daemon);
    assert!(
        log.contains("novelty baseline learned from stored history"),
        "{log}"
    );
    novelty_anomalies(data_dir)
        .difference(&before)
        .cloned()
        .collect()
}

#[test]
fn the_baseline_survives_restarts_and_follows_verdicts() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data_dir = scratch.path().join("data");
    let audit_dir = scratch.path().join("audit");
    std::fs::create_dir_all(&audit_dir).expect("audit dir");
    let now = Utc::now();

    // Three days of the builder in `ci`, from the CI network, as ci-runner;
    // stored before any daemon runs.
    let history: Vec<String> = (0..120)
        .map(|index| {
            let at = now - Duration::days(3)
                + Duration::days(index / 40)
                + Duration::minutes(index % 40);
            line(
                &format!("history-{index}"),
                at,
                "ci",
                "10.0.5.5",
                "ci-runner/1.0",
            )
        })
        .collect();
    let history_file = scratch.path().join("history.log");
    std::fs::write(&history_file, history.join("\n") + "\n").expect("history");
    succeed(
        &data_dir,
        &["ingest", "--no-progress", &history_file.to_string_lossy()],
    );
    assert_eq!(counts(&data_dir).rows, 120);

    // A fresh daemon knows the builder from its history: the new namespace,
    // network and user agent alert (an empty index would still be learning).
    let first = run_with_request(&data_dir, &audit_dir, 1, now - Duration::hours(2));
    assert_eq!(first.len(), 1, "one novelty anomaly for the first request");
    let first = first.into_iter().next().expect("anomaly");
    succeed(&data_dir, &["triage", &first, "--true-positive"]);

    // Confirmed as an attack: left out of the next baseline, so the same facts alert again.
    let second = run_with_request(&data_dir, &audit_dir, 2, now - Duration::hours(1));
    assert_eq!(second.len(), 1, "the attack's facts were not learned");
    let second = second.into_iter().next().expect("anomaly");
    succeed(
        &data_dir,
        &[
            "triage",
            &second,
            "--benign",
            "--reason",
            "migration job run by hand",
        ],
    );

    // Resolved benign: part of the baseline, so the same request is now usual.
    let third = run_with_request(&data_dir, &audit_dir, 3, now - Duration::minutes(1));
    assert!(third.is_empty(), "benign facts are known: {third:?}");
}
