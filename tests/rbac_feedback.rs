//! RBAC feedback end to end with the real binary and a real catalog (issue 9,
//! part 5): a finding accepted from the command line is waived by the next
//! audits until it expires, then reported again with no restart of anything;
//! a recommendation marked applied is checked by every later audit against
//! the identity's grants, with the grants beyond it reported as the gap.

mod common;

use serde_json::{Value, json};
use std::path::Path;

const ACCOUNT: &str = "system:serviceaccount:shop:cart";

use common::{run_as_tester as auditlens, succeed};

fn json_of(data_dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&succeed(data_dir, args)).expect("JSON output")
}

/// One allowed request by the cart's service account.
fn request(index: u64, verb: &str, uri: &str, resource: &str, name: Option<&str>) -> String {
    let name = name
        .map(|name| format!(",\"name\":\"{name}\""))
        .unwrap_or_default();
    format!(
        concat!(
            "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"cart-{index}\",",
            "\"stage\":\"ResponseComplete\",\"requestURI\":\"{uri}\",\"verb\":\"{verb}\",",
            "\"user\":{{\"username\":\"{account}\",\"groups\":[\"system:serviceaccounts\",\"system:serviceaccounts:shop\",\"system:authenticated\"]}},",
            "\"sourceIPs\":[\"10.1.0.7\"],\"userAgent\":\"cart/1.4\",",
            "\"objectRef\":{{\"resource\":\"{resource}\",\"namespace\":\"shop\"{name},\"apiVersion\":\"v1\"}},",
            "\"responseStatus\":{{\"metadata\":{{}},\"code\":200}},",
            "\"requestReceivedTimestamp\":\"2026-11-27T09:{minute:02}:00.000000Z\",\"stageTimestamp\":\"2026-11-27T09:{minute:02}:00.010000Z\",",
            "\"annotations\":{{\"authorization.k8s.io/decision\":\"allow\",\"authorization.k8s.io/reason\":\"RBAC: allowed\"}}}}"
        ),
        index = index,
        uri = uri,
        verb = verb,
        account = ACCOUNT,
        resource = resource,
        name = name,
        minute = index % 60,
    )
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name}, "rules": rules})
}

fn binding_to_cart(kind: &str, name: &str, namespace: Option<&str>, role: &str) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": [{"kind": "ServiceAccount", "name": "cart", "namespace": "shop"}]})
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// A data folder with a morning of the cart's requests and an RBAC snapshot
/// that grants it far more: everything in `shop`, and every secret.
fn setup(scratch: &Path) -> std::path::PathBuf {
    let data = scratch.join("data");
    let log = scratch.join("audit.log");
    let mut lines = Vec::new();
    for index in 0..30 {
        lines.push(if index % 2 == 0 {
            request(
                index,
                "get",
                "/api/v1/namespaces/shop/configmaps/cart-config",
                "configmaps",
                Some("cart-config"),
            )
        } else {
            request(index, "list", "/api/v1/namespaces/shop/pods", "pods", None)
        });
    }
    std::fs::write(&log, lines.join("\n") + "\n").expect("audit log");
    succeed(&data, &["ingest", &log.display().to_string()]);
    let rbac = list(vec![
        cluster_role(
            "shop-everything",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
        cluster_role(
            "secret-reader",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]),
        ),
        binding_to_cart(
            "RoleBinding",
            "cart-everything",
            Some("shop"),
            "shop-everything",
        ),
        binding_to_cart("ClusterRoleBinding", "cart-secrets", None, "secret-reader"),
    ]);
    save_snapshot(scratch, &data, "rbac-before.json", &rbac);
    data
}

fn save_snapshot(scratch: &Path, data: &Path, name: &str, rbac: &Value) {
    let path = scratch.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(rbac).expect("json")).expect("rbac");
    succeed(
        data,
        &[
            "rbac",
            "snapshot",
            "save",
            "--rbac",
            &path.display().to_string(),
        ],
    );
}

fn cart_findings(audit: &Value) -> Vec<Value> {
    audit["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|finding| finding["subject"]["name"] == "cart")
        .cloned()
        .collect()
}

#[test]
fn an_accepted_finding_is_waived_until_it_expires_then_reported_again() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = setup(scratch.path());
    let audit = json_of(&data, &["rbac", "audit", "--format", "json"]);
    let object = audit.as_object().expect("object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec!["findings"],
        "nothing accepted yet: the plain document"
    );
    let findings = cart_findings(&audit);
    assert!(findings.len() >= 2, "{findings:?}");
    let secrets = findings
        .iter()
        .find(|finding| finding["binding"] == "ClusterRoleBinding/cart-secrets")
        .expect("the secret reader grant is a finding")
        .clone();
    let check = secrets["check"].as_str().expect("check");

    // A reason is mandatory, and so is something narrower than the check.
    let no_reason = auditlens(
        &data,
        &["rbac", "accept", "--check", check, "--subject", "cart"],
    );
    assert!(!no_reason.status.success());
    let whole_check = auditlens(
        &data,
        &[
            "rbac",
            "accept",
            "--check",
            check,
            "--reason",
            "all of them",
        ],
    );
    assert!(!whole_check.status.success());
    assert!(
        String::from_utf8_lossy(&whole_check.stderr).contains("--subject"),
        "{}",
        String::from_utf8_lossy(&whole_check.stderr)
    );

    // Accepted for a few seconds: the audits before the expiry waive it,
    // the ones after report it again (each audit reads the catalog anew).
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    let accepted = json_of(
        &data,
        &[
            "rbac",
            "accept",
            "--check",
            check,
            "--subject",
            "cart",
            "--subject-namespace",
            "shop",
            "--binding",
            "ClusterRoleBinding/cart-secrets",
            "--reason",
            "cart decrypts payment tokens; ticket SEC-7",
            "--owner",
            "payments-team",
            "--expires",
            &expires,
            "--format",
            "json",
        ],
    );
    let id = accepted["id"].as_str().expect("id").to_string();
    assert_eq!(accepted["owner"], "payments-team");
    assert_eq!(accepted["accepted_by"], "tester");
    let waived = json_of(&data, &["rbac", "audit", "--format", "json"]);
    let is_accepted = |finding: &Value| {
        finding["check"] == check && finding["binding"] == "ClusterRoleBinding/cart-secrets"
    };
    let accepted_count = findings
        .iter()
        .filter(|finding| is_accepted(finding))
        .count();
    let remaining = cart_findings(&waived);
    assert_eq!(remaining.len(), findings.len() - accepted_count, "waived");
    assert!(!remaining.iter().any(is_accepted));
    let listed = waived["accepted"].as_array().expect("accepted listed");
    assert_eq!(listed.len(), accepted_count);
    assert_eq!(listed[0]["exception"], id.as_str());
    assert_eq!(
        listed[0]["reason"],
        "cart decrypts payment tokens; ticket SEC-7"
    );
    let table = succeed(&data, &["rbac", "exceptions"]);
    assert!(
        table.starts_with("active") && table.contains(&id),
        "{table}"
    );

    // A default expiry is 30 days.
    let thirty_days = json_of(
        &data,
        &[
            "rbac",
            "accept",
            "--check",
            check,
            "--subject",
            "someone-else",
            "--reason",
            "not this one",
            "--format",
            "json",
        ],
    );
    let expires_at = chrono::DateTime::parse_from_rfc3339(
        thirty_days["expires_at"].as_str().expect("expires_at"),
    )
    .expect("time");
    let days =
        (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.0).contains(&days), "{days}");

    std::thread::sleep(std::time::Duration::from_secs(7));
    let expired = json_of(&data, &["rbac", "audit", "--format", "json"]);
    let again = cart_findings(&expired);
    assert_eq!(again.len(), findings.len(), "reported again after expiry");
    let back = again
        .iter()
        .find(|finding| finding["binding"] == "ClusterRoleBinding/cart-secrets")
        .expect("back");
    assert!(
        back["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains(&id) && reason.contains("expired")),
        "{back}"
    );
    let table = succeed(&data, &["rbac", "exceptions"]);
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("expired") && line.contains(&id)),
        "{table}"
    );
}

#[test]
fn an_applied_recommendation_is_checked_by_the_next_audits() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = setup(scratch.path());
    let recommendation = json_of(
        &data,
        &[
            "rbac",
            "recommend",
            ACCOUNT,
            "--format",
            "json",
            "--mark-applied",
        ],
    );
    let recommendation = recommendation
        .as_array()
        .and_then(|all| all.first())
        .expect("one recommendation")
        .clone();
    assert!(
        !recommendation["roles"]
            .as_array()
            .expect("roles")
            .is_empty()
    );
    let listed = succeed(&data, &["rbac", "exceptions"]);
    assert!(
        listed.contains("applied") && listed.contains(ACCOUNT),
        "{listed}"
    );

    // Not applied yet in the cluster: both broad grants are the gap.
    let audit = json_of(&data, &["rbac", "audit", "--format", "json"]);
    let checks = audit["recommendations_applied"]
        .as_array()
        .expect("checked");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["identity"], ACCOUNT);
    assert_eq!(checks[0]["matches"], false);
    let beyond: Vec<&str> = checks[0]["grants_beyond"]
        .as_array()
        .expect("gap")
        .iter()
        .filter_map(|grant| grant["binding"].as_str())
        .collect();
    assert!(
        beyond.contains(&"RoleBinding/shop/cart-everything")
            && beyond.contains(&"ClusterRoleBinding/cart-secrets"),
        "{beyond:?}"
    );
    let table = succeed(&data, &["rbac", "audit"]);
    assert!(
        table.contains("RECOMMENDATIONS APPLIED (1)")
            && table.contains("grant(s) beyond the recommendation"),
        "{table}"
    );

    // The cluster now holds exactly the recommended roles and bindings.
    let mut items = Vec::new();
    for key in [
        "roles",
        "cluster_roles",
        "role_bindings",
        "cluster_role_bindings",
    ] {
        items.extend(recommendation[key].as_array().cloned().unwrap_or_default());
    }
    save_snapshot(
        scratch.path(),
        &data,
        "rbac-applied.json",
        &list(items.clone()),
    );
    let audit = json_of(&data, &["rbac", "audit", "--format", "json"]);
    let check = &audit["recommendations_applied"][0];
    assert_eq!(check["matches"], true, "{check}");
    assert_eq!(check["grants_beyond"].as_array().map(Vec::len), Some(0));
    assert!(succeed(&data, &["rbac", "audit"]).contains("grants match the recommendation"),);

    // One grant too many comes back: only it is the remaining gap.
    items.push(cluster_role(
        "secret-reader",
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
    ));
    items.push(binding_to_cart(
        "RoleBinding",
        "cart-secrets",
        Some("shop"),
        "secret-reader",
    ));
    save_snapshot(scratch.path(), &data, "rbac-drifted.json", &list(items));
    let audit = json_of(&data, &["rbac", "audit", "--format", "json"]);
    let check = &audit["recommendations_applied"][0];
    assert_eq!(check["matches"], false);
    let gap = check["grants_beyond"].as_array().expect("gap");
    assert_eq!(gap.len(), 1, "{gap:?}");
    assert_eq!(gap[0]["binding"], "RoleBinding/shop/cart-secrets");
    assert_eq!(gap[0]["beyond"], json!(["get secrets"]));
}
