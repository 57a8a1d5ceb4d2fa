//! Falco's labeled k8s-audit traces (testdata/falco, Apache-2.0, see SOURCE.txt):
//! every case whose expected Falco rule is about RBAC, exec/attach, secrets,
//! privileged pods, anonymous access or webhooks fires the matching auditlens
//! rule as many times as Falco does, and the "no alert" cases stay quiet.
//! The mapping is the table below; docs/DETECTION.md explains it.

use auditlens::audit::AuditEvent;
use auditlens::detect::rules::{RuleOptions, RuleSet, RuleTier, rule_spec};
use auditlens::detect::{Anomaly, Severity};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Falco rule → auditlens rule id.
const MAPPED: &[(&str, &str)] = &[
    ("Create Privileged Pod", "workload.privileged_pod"),
    ("Create Sensitive Mount Pod", "workload.privileged_pod"),
    ("Create HostNetwork Pod", "workload.privileged_pod"),
    ("Anonymous Request Allowed", "auth.anonymous_allowed"),
    ("Attach/Exec Pod", "workload.exec"),
    (
        "System ClusterRole Modified/Deleted",
        "rbac.system_role_modified",
    ),
    ("Attach to cluster-admin Role", "rbac.cluster_admin_binding"),
    ("ClusterRole With Wildcard Created", "rbac.wildcard_grant"),
    ("ClusterRole With Pod Exec Created", "rbac.sensitive_grant"),
    (
        "Create/Modify Configmap With Private Credentials",
        "config.credentials_in_configmap",
    ),
    // Falco's activity ("kactivity") rules: the audit-trail tier.
    (
        "ClusterRole With Write Privileges Created",
        "activity.rbac_changed",
    ),
    ("K8s Role/Clusterrole Created", "activity.rbac_changed"),
    ("K8s Role/Clusterrole Deleted", "activity.rbac_changed"),
    (
        "K8s Role/Clusterrolebinding Created",
        "activity.rbac_changed",
    ),
    (
        "K8s Role/Clusterrolebinding Deleted",
        "activity.rbac_changed",
    ),
    ("K8s Secret Created", "activity.secret_changed"),
    ("K8s Secret Deleted", "activity.secret_changed"),
];

/// Falco rules deliberately out of scope, with why.
const OUT_OF_SCOPE: &[(&str, &str)] = &[
    ("Create Disallowed Pod", "site allow list of images"),
    ("Disallowed K8s User", "site allow list of users"),
    (
        "Create Disallowed Namespace",
        "site allow list of namespaces",
    ),
    (
        "Create NodePort Service",
        "network exposure, not identity behaviour",
    ),
    (
        "Pod Created in Kube Namespace",
        "not in the target list; privileged ones are caught",
    ),
    (
        "Service Account Created in Kube Namespace",
        "not in the target list",
    ),
    ("K8s Deployment Created", "activity of a non-sensitive kind"),
    ("K8s Deployment Deleted", "activity of a non-sensitive kind"),
    ("K8s Service Created", "activity of a non-sensitive kind"),
    ("K8s Service Deleted", "activity of a non-sensitive kind"),
    ("K8s ConfigMap Created", "activity of a non-sensitive kind"),
    ("K8s ConfigMap Deleted", "activity of a non-sensitive kind"),
    ("K8s Namespace Created", "activity of a non-sensitive kind"),
    ("K8s Namespace Deleted", "activity of a non-sensitive kind"),
    (
        "K8s Serviceaccount Created",
        "activity of a non-sensitive kind",
    ),
    (
        "K8s Serviceaccount Deleted",
        "activity of a non-sensitive kind",
    ),
    ("json_pointer_example", "a test of Falco's rule engine"),
];

#[derive(Debug, Deserialize)]
struct Case {
    test: String,
    trace_file: String,
    detect: bool,
    detect_counts: BTreeMap<String, usize>,
    extra_rules: Vec<String>,
}

fn falco_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/falco")
}

fn cases() -> Vec<Case> {
    let text =
        std::fs::read_to_string(falco_dir().join("labels_derived_from_falco_k8s_audit_tests.json"))
            .expect("labels file");
    serde_json::from_str(&text).expect("labels JSON")
}

/// The options a case's extra Falco rule files amount to.
fn options_for(case: &Case, audit_trail: bool) -> RuleOptions {
    let mut options = RuleOptions {
        audit_trail,
        ..RuleOptions::default()
    };
    for extra in &case.extra_rules {
        if extra == "trust_nginx_container.yaml" {
            options.trusted_images.push("nginx".into());
        }
    }
    options
}

/// Runs a fresh rule set over a trace file; undecodable lines are skipped,
/// as the daemon quarantines them.
fn run(trace: &str, options: RuleOptions) -> Vec<Anomaly> {
    let text = std::fs::read_to_string(falco_dir().join(trace)).expect("trace file");
    let mut rules = RuleSet::new(options);
    let mut anomalies = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(event) = decode_fixture(line) {
            anomalies.extend(rules.evaluate(&event));
        }
    }
    anomalies
}

/// Most of Falco's fixtures are hand-edited events without `apiVersion`,
/// which auditlens's decoder (rightly, for real logs) rejects; the test adds
/// `audit.k8s.io/v1` to such `kind: Event` objects. Anything else that does
/// not decode (fal_01_003's `{"kind": 0}`) is skipped, as the daemon would
/// quarantine it.
fn decode_fixture(line: &str) -> Option<AuditEvent> {
    if let Ok(event) = AuditEvent::decode(line.as_bytes()) {
        return Some(event);
    }
    let mut value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("kind")? != "Event" || value.get("apiVersion").is_some() {
        return None;
    }
    value["apiVersion"] = serde_json::json!("audit.k8s.io/v1");
    AuditEvent::decode(value.to_string().as_bytes()).ok()
}

fn mapped(falco_rule: &str) -> Option<&'static str> {
    MAPPED
        .iter()
        .find(|(name, _)| *name == falco_rule)
        .map(|(_, id)| *id)
}

#[test]
fn every_falco_rule_is_mapped_or_explicitly_out_of_scope() {
    for case in cases() {
        for rule in case.detect_counts.keys() {
            let known = mapped(rule).is_some() || OUT_OF_SCOPE.iter().any(|(name, _)| name == rule);
            assert!(
                known,
                "case {}: Falco rule {rule:?} is neither mapped nor out of scope",
                case.test
            );
        }
    }
    for (_, id) in MAPPED {
        assert!(rule_spec(id).is_some(), "{id} is not in the rule catalogue");
    }
}

#[test]
fn in_scope_cases_fire_the_matching_rule_as_often_as_falco() {
    let mut checked = 0;
    for case in cases().iter().filter(|case| case.detect) {
        for (falco_rule, expected_count) in &case.detect_counts {
            let Some(rule_id) = mapped(falco_rule) else {
                continue;
            };
            let tier = rule_spec(rule_id).expect("catalogued").tier;
            let anomalies = run(
                &case.trace_file,
                options_for(case, tier == RuleTier::AuditTrail),
            );
            let count = anomalies
                .iter()
                .filter(|anomaly| anomaly.detector == rule_id)
                .count();
            assert_eq!(
                count, *expected_count,
                "case {} ({}): Falco fires {falco_rule:?} {expected_count}×, auditlens {rule_id} {count}×: {anomalies:#?}",
                case.test, case.trace_file
            );
            for anomaly in anomalies
                .iter()
                .filter(|anomaly| anomaly.detector == rule_id)
            {
                assert!(
                    !anomaly.evidence_audit_ids.is_empty()
                        && !anomaly.reasons.is_empty()
                        && !anomaly.identity.is_empty()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} in-scope expectations found");
}

#[test]
fn no_alert_cases_stay_quiet_even_with_the_audit_trail() {
    let mut checked = 0;
    for case in cases().iter().filter(|case| !case.detect) {
        for audit_trail in [false, true] {
            let anomalies = run(&case.trace_file, options_for(case, audit_trail));
            assert!(
                anomalies.is_empty(),
                "case {} ({}), audit trail {audit_trail}: {anomalies:#?}",
                case.test,
                case.trace_file
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} quiet cases found");
}

#[test]
fn alert_rules_fire_only_what_falco_expects_of_each_trace() {
    // For each trace: the alert-tier rules Falco's in-scope expectations map to.
    let mut expected: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for case in cases() {
        let entry = expected.entry(case.trace_file.clone()).or_default();
        for falco_rule in case.detect_counts.keys() {
            if let Some(rule_id) = mapped(falco_rule)
                && rule_spec(rule_id).expect("catalogued").tier == RuleTier::Alert
            {
                entry.insert(rule_id);
            }
        }
    }
    for (trace, allowed) in expected {
        let fired: BTreeSet<String> = run(&trace, RuleOptions::default())
            .into_iter()
            .map(|anomaly| anomaly.detector)
            .collect();
        for detector in &fired {
            assert!(
                allowed.contains(detector.as_str()),
                "trace {trace}: {detector} fired but Falco expects only {allowed:?}"
            );
        }
    }
}

#[test]
fn severities_follow_the_facts() {
    let by_trace = |trace: &str| run(trace, RuleOptions::default());
    let admin = by_trace("attach_cluster_admin_role.json");
    assert_eq!(admin[0].severity, Severity::Critical);
    assert_eq!(admin[0].identity, "minikube-user");
    let anonymous = by_trace("anonymous_creates_namespace_foo.json");
    assert_eq!(
        anonymous[0].severity,
        Severity::Critical,
        "an anonymous write"
    );
    let privileged = by_trace("create_nginx_pod_privileged.json");
    assert_eq!(
        privileged[0].severity,
        Severity::Medium,
        "created by the replicaset controller from a template"
    );
    let exec = by_trace("exec_pod.json");
    assert_eq!(exec[0].severity, Severity::Low);
    assert!(
        exec[0]
            .reasons
            .iter()
            .any(|reason| reason.contains("command: bash")),
        "{:?}",
        exec[0].reasons
    );
}
