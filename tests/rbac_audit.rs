//! End-to-end runs of `auditlens rbac audit|who-can|can|snapshot` on the
//! testdata snapshots, through the real binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rbac")
        .join(path)
}

fn auditlens(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("AUDITLENS_CONFIG")
        .output()
        .expect("runs auditlens")
}

fn findings(output: &Output) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(&output.stdout);
    let document: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("JSON output: {error}\n{text}"));
    let object = document.as_object().expect("an object");
    assert_eq!(object.keys().collect::<Vec<_>>(), vec!["findings"]);
    document["findings"]
        .as_array()
        .expect("findings array")
        .clone()
}

#[test]
fn every_row_of_the_risk_table_fires_on_the_risky_snapshot() {
    let data = tempfile::tempdir().expect("tempdir");
    let risky = testdata("risky/snapshot.yaml");
    let output = auditlens(
        &[
            "rbac",
            "audit",
            "--rbac",
            risky.to_str().expect("utf8"),
            "--format",
            "json",
        ],
        data.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let findings = findings(&output);
    let fired: BTreeSet<String> = findings
        .iter()
        .map(|finding| finding["check"].as_str().expect("check").to_string())
        .collect();
    let expected: BTreeSet<String> = (1..=32).map(|row| format!("R{row:02}")).collect();
    let missing: Vec<&String> = expected.difference(&fired).collect();
    assert!(missing.is_empty(), "checks that did not fire: {missing:?}");
    for finding in &findings {
        let keys: BTreeSet<&str> = finding
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "check",
            "severity",
            "subject",
            "binding",
            "role",
            "namespace",
            "reason",
            "fix",
        ] {
            assert!(keys.contains(key), "{key} missing in {finding}");
        }
        let subject: BTreeSet<&str> = finding["subject"]
            .as_object()
            .expect("subject")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(subject, BTreeSet::from(["kind", "name", "namespace"]));
    }
    // Spot-check severities and attribution.
    let find = |check: &str, subject: &str| {
        findings
            .iter()
            .find(|finding| finding["check"] == check && finding["subject"]["name"] == subject)
            .unwrap_or_else(|| panic!("{check} for {subject}"))
    };
    assert_eq!(find("R02", "mallory")["severity"], "critical");
    assert_eq!(
        find("R02", "mallory")["binding"],
        "ClusterRoleBinding/god-mode"
    );
    assert_eq!(find("R10", "lister")["severity"], "high");
    assert_eq!(find("R10", "lister")["namespace"], "app");
    assert_eq!(find("R04", "system:authenticated")["severity"], "critical");
    assert_eq!(
        find("R29", "deployer")["subject"]["namespace"],
        "kube-system"
    );
    assert_eq!(
        find("R31", "former-employee")["role"],
        "Role/app/deleted-role"
    );
}

#[test]
fn least_privilege_control_has_only_info_level_builtins() {
    let data = tempfile::tempdir().expect("tempdir");
    let control = testdata("least-privilege/snapshot.yaml");
    let output = auditlens(
        &[
            "rbac",
            "audit",
            "--rbac",
            control.to_str().expect("utf8"),
            "--format",
            "json",
            "--fail-on",
            "low",
        ],
        data.path(),
    );
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout)
    );
    let findings = findings(&output);
    assert!(
        !findings.is_empty(),
        "the bootstrap defaults are reported (at info), not hidden"
    );
    for finding in &findings {
        assert_eq!(finding["origin"], "builtin", "{finding}");
        assert_eq!(finding["severity"], "info", "{finding}");
    }
}

#[test]
fn fail_on_gates_with_exit_code_3_and_usage_errors_exit_2() {
    let data = tempfile::tempdir().expect("tempdir");
    let risky = testdata("risky/snapshot.yaml");
    let risky = risky.to_str().expect("utf8");
    let gated = auditlens(
        &["rbac", "audit", "--rbac", risky, "--fail-on", "high"],
        data.path(),
    );
    assert_eq!(
        gated.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&gated.stderr)
    );
    assert!(
        String::from_utf8_lossy(&gated.stdout).contains("R02"),
        "the table is still printed"
    );
    let bad_severity = auditlens(
        &["rbac", "audit", "--rbac", risky, "--fail-on", "urgent"],
        data.path(),
    );
    assert_eq!(bad_severity.status.code(), Some(2));
    let no_snapshot = auditlens(&["rbac", "audit"], data.path());
    assert_eq!(
        no_snapshot.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&no_snapshot.stderr)
    );
}

#[test]
fn sarif_has_one_rule_per_check_and_one_result_per_finding() {
    let data = tempfile::tempdir().expect("tempdir");
    let risky = testdata("risky/snapshot.yaml");
    let risky = risky.to_str().expect("utf8");
    let json = findings(&auditlens(
        &["rbac", "audit", "--rbac", risky, "--format", "json"],
        data.path(),
    ));
    let output = auditlens(
        &["rbac", "audit", "--rbac", risky, "--format", "sarif"],
        data.path(),
    );
    let sarif: serde_json::Value = serde_json::from_slice(&output.stdout).expect("SARIF JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(
        run["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules")
            .len(),
        32
    );
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), json.len());
    for result in results {
        let level = result["level"].as_str().expect("level");
        assert!(["error", "warning", "note"].contains(&level));
        assert!(result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].is_string());
    }
}

#[test]
fn a_bad_file_is_named_with_its_object() {
    let data = tempfile::tempdir().expect("tempdir");
    let bad = data.path().join("bad.json");
    std::fs::write(&bad, r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"half"},"subjects":[]}]}"#).expect("write");
    let output = auditlens(
        &["rbac", "audit", "--rbac", bad.to_str().expect("utf8")],
        data.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json")
            && stderr.contains("ClusterRoleBinding \"half\"")
            && stderr.contains("roleRef"),
        "{stderr}"
    );
}

#[test]
fn exceptions_waive_until_they_expire() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = data.path().join("auditlens.toml");
    std::fs::write(
        &config,
        "[rbac.exceptions.mallory]\ncheck = 'R02'\nsubject_name = 'mallory'\nexpires = '2999-12-31'\nreason = 'test'\n\
         [rbac.exceptions.old]\ncheck = 'R17'\nexpires = '2000-01-01'\nreason = 'expired long ago'\n",
    )
    .expect("write");
    let risky = testdata("risky/snapshot.yaml");
    let output = auditlens(
        &[
            "rbac",
            "audit",
            "--rbac",
            risky.to_str().expect("utf8"),
            "--format",
            "json",
            "--config",
            config.to_str().expect("utf8"),
        ],
        data.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let findings = findings(&output);
    assert!(
        !findings
            .iter()
            .any(|finding| finding["check"] == "R02" && finding["subject"]["name"] == "mallory")
    );
    assert!(
        findings
            .iter()
            .any(|finding| finding["check"] == "R05" && finding["subject"]["name"] == "mallory"),
        "only R02 is waived"
    );
    let node_proxy = findings
        .iter()
        .find(|finding| finding["check"] == "R17" && finding["subject"]["name"] == "np")
        .expect("R17");
    assert!(
        node_proxy["reason"]
            .as_str()
            .expect("reason")
            .contains("expired")
    );
}

#[test]
fn who_can_and_can_name_binding_and_role() {
    let data = tempfile::tempdir().expect("tempdir");
    let risky = testdata("risky/snapshot.yaml");
    let risky = risky.to_str().expect("utf8");
    let output = auditlens(
        &[
            "rbac",
            "who-can",
            "create",
            "pods/exec",
            "-n",
            "app",
            "--rbac",
            risky,
            "--format",
            "json",
        ],
        data.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let subjects = answer["subjects"].as_array().expect("subjects");
    let names: BTreeSet<&str> = subjects
        .iter()
        .map(|entry| entry["subject"]["name"].as_str().expect("name"))
        .collect();
    assert!(
        names.contains("system:masters") && names.contains("ex") && names.contains("mallory"),
        "{names:?}"
    );
    assert!(!names.contains("pp"), "pod-patcher cannot exec");
    let ex = subjects
        .iter()
        .find(|entry| entry["subject"]["name"] == "ex")
        .expect("ex");
    assert_eq!(ex["binding"], "RoleBinding/app/exec");
    assert_eq!(ex["role"], "Role/app/exec");
    let elsewhere = auditlens(
        &[
            "rbac",
            "who-can",
            "create",
            "pods/exec",
            "-n",
            "other",
            "--rbac",
            risky,
            "--format",
            "json",
        ],
        data.path(),
    );
    let answer: serde_json::Value = serde_json::from_slice(&elsewhere.stdout).expect("json");
    assert!(
        !answer["subjects"]
            .as_array()
            .expect("subjects")
            .iter()
            .any(|entry| entry["subject"]["name"] == "ex")
    );

    let can = auditlens(
        &[
            "rbac",
            "can",
            "system:serviceaccount:ci:minter",
            "--rbac",
            risky,
            "--format",
            "json",
        ],
        data.path(),
    );
    let answer: serde_json::Value = serde_json::from_slice(&can.stdout).expect("json");
    let grants = answer["grants"].as_array().expect("grants");
    assert!(grants.iter().any(
        |grant| grant["binding"] == "ClusterRoleBinding/token-minter"
            && grant["role"] == "ClusterRole/token-minter"
    ));
    // Inherited through the implicit group system:authenticated.
    assert!(grants.iter().any(|grant| grant["binding"]
        == "ClusterRoleBinding/everyone-reads-secrets"
        && grant["subject"]["name"] == "system:authenticated"));
}

#[test]
fn stored_versions_answer_what_could_x_do_on_date_d() {
    let data = tempfile::tempdir().expect("tempdir");
    let control = testdata("least-privilege/snapshot.yaml");
    let risky = testdata("risky/snapshot.yaml");
    let save = |path: &Path, at: &str| {
        let output = auditlens(
            &[
                "rbac",
                "snapshot",
                "save",
                "--rbac",
                path.to_str().expect("utf8"),
                "--taken-at",
                at,
            ],
            data.path(),
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    save(&control, "2026-11-01T00:00:00Z");
    save(&risky, "2026-11-20T00:00:00Z");
    let grants_on = |at: &str| {
        let output = auditlens(
            &["rbac", "can", "mallory", "--at", at, "--format", "json"],
            data.path(),
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        answer["grants"]
            .as_array()
            .expect("grants")
            .iter()
            .any(|grant| grant["binding"] == "ClusterRoleBinding/god-mode")
    };
    assert!(
        !grants_on("2026-11-10"),
        "before the risky version mallory had no god-mode"
    );
    assert!(grants_on("2026-11-21"));
    let latest = auditlens(&["rbac", "audit", "--format", "json"], data.path());
    assert!(
        findings(&latest)
            .iter()
            .any(|finding| finding["check"] == "R02" && finding["origin"] == "custom")
    );
    let list = auditlens(&["rbac", "snapshot", "list"], data.path());
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 2);
}
