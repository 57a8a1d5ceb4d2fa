//! End to end: `auditlens train` on Parquet events written by DuckDB, the
//! artifacts and catalog row it leaves, and the model layer's detection over
//! the stored history (the attack window flagged with its own audit IDs, the
//! identity's normal windows quiet), plus the bad inputs of issue 4.

mod model_support;

use auditlens::model::{ModelRegistry, detect_range};
use chrono::{DateTime, Utc};
use model_support::{SMALL_CLUSTER_SQL, write_events};
use std::path::Path;
use std::process::{Command, Output};

fn auditlens(data_dir: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs auditlens")
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid time")
        .with_timezone(&Utc)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn trains_then_flags_the_attack_window_and_not_the_normal_ones() {
    let data = tempfile::tempdir().expect("temp dir");
    write_events(data.path(), SMALL_CLUSTER_SQL);
    let dump = data.path().join("features.parquet");
    let output = auditlens(
        data.path(),
        &[
            "train",
            "--until",
            "2026-11-26T00:00:00Z",
            "--dump-features",
            dump.to_str().expect("utf-8"),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("humans\t") && stdout.contains("workloads\t"),
        "{stdout}"
    );

    // Artifacts, catalog rows and the feature dump.
    let registry = ModelRegistry::load(&data.path().join("models"));
    assert!(registry.skipped.is_empty(), "{:?}", registry.skipped);
    let humans = registry.get("humans").expect("humans model");
    let alice = humans
        .profile("default", "alice")
        .expect("alice has a profile");
    assert!(
        alice.windows >= 100,
        "alice trained on {} windows",
        alice.windows
    );
    assert!(
        humans.profile("default", "eve").is_none(),
        "one event is too little for a profile"
    );
    let catalog = duckdb::Connection::open(data.path().join("catalog.duckdb")).expect("catalog");
    let names: Vec<String> = catalog
        .prepare("SELECT name FROM models ORDER BY name")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(names, vec!["humans".to_string(), "workloads".to_string()]);
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let (rows, identities): (i64, i64) = connection
        .query_row(
            &format!(
                "SELECT count(*), count(DISTINCT identity) FROM read_parquet('{}')",
                dump.display()
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("reads the dump");
    assert!(rows > 1000, "{rows} feature rows");
    assert_eq!(identities, 11, "4 humans, 6 service accounts and eve");

    // Detection over the last day.
    let anomalies = detect_range(
        data.path(),
        &registry,
        time("2026-11-26T00:00:00Z"),
        time("2026-11-27T00:00:00Z"),
    )
    .expect("detects");
    let alice_anomalies: Vec<_> = anomalies
        .iter()
        .filter(|anomaly| anomaly.identity == "alice")
        .collect();
    assert_eq!(alice_anomalies.len(), 1, "{alice_anomalies:#?}");
    let attack = alice_anomalies[0];
    assert_eq!(attack.window_start, time("2026-11-26T14:00:00Z"));
    assert_eq!(attack.detector, "model.humans");
    assert!(attack.score > 1.0);
    assert!(!attack.evidence_audit_ids.is_empty());
    assert!(
        attack
            .evidence_audit_ids
            .iter()
            .all(|id| id.starts_with("attack-")),
        "evidence should be the attack's requests: {:?}",
        attack.evidence_audit_ids
    );
    let reasons = attack.reasons.join(" | ");
    assert!(
        reasons.contains("read 40 secrets")
            || reasons.contains("namespaces")
            || reasons.contains("addresses"),
        "{reasons}"
    );
    // Over the whole day, the eleven identities' normal windows stay nearly quiet.
    assert!(anomalies.len() <= 3, "{anomalies:#?}");
}

#[test]
fn no_data_at_all_is_a_clear_error() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = auditlens(data.path(), &["train", "--until", "2026-11-26T00:00:00Z"]);
    assert!(!output.status.success());
    let message = text(&output);
    assert!(message.contains("0 feature windows"), "{message}");
    assert!(message.contains("no model trained"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn a_spec_with_an_unknown_feature_names_file_and_feature() {
    let data = tempfile::tempdir().expect("temp dir");
    let specs = data.path().join("specs");
    std::fs::create_dir_all(&specs).expect("specs folder");
    std::fs::write(
        specs.join("typo.toml"),
        "name = \"typo\"\nidentity_kinds = [\"user\"]\nfeatures = [\"secret_reads\", \"secrets_redd\"]\n\
         [algorithm]\nkind = \"kmeans\"\nk = 2\n",
    )
    .expect("writes spec");
    let output = auditlens(
        data.path(),
        &["train", "--models-dir", specs.to_str().expect("utf-8")],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("typo.toml") && message.contains("secrets_redd"),
        "{message}"
    );
}

#[test]
fn a_bad_until_is_rejected() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = auditlens(data.path(), &["train", "--until", "yesterday"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("RFC 3339"), "{}", text(&output));
}
