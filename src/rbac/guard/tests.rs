//! Decisions of the guard on AdmissionReview bodies shaped like the
//! Kubernetes API reference, and the never-panic property on garbage.

use super::*;
use std::sync::Mutex;

fn review(
    kind: &str,
    namespace: Option<&str>,
    operation: &str,
    username: &str,
    groups: &[&str],
    object: Value,
) -> Vec<u8> {
    let resource = format!("{}s", kind.to_lowercase());
    let mut request = serde_json::json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": kind},
        "resource": {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": resource},
        "requestKind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": kind},
        "requestResource": {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": resource},
        "name": object.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "operation": operation,
        "userInfo": {"username": username, "uid": "014fbff9a07c", "groups": groups},
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    });
    if let Some(namespace) = namespace {
        request["namespace"] = Value::String(namespace.into());
    }
    serde_json::to_vec(&serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})).expect("json")
}

fn role(kind: &str, name: &str, rules: Value) -> Value {
    serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "rules": rules})
}

fn binding(kind: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
    serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects})
}

fn guard(mode: GuardMode) -> Guard {
    Guard::new(
        GuardConfig {
            mode,
            ..GuardConfig::default()
        },
        RbacConfig::default(),
        None,
        "test".into(),
    )
}

fn allowed(response: &Value) -> bool {
    response["response"]["allowed"]
        .as_bool()
        .expect("allowed is a bool")
}

#[test]
fn enforce_denies_wildcards_with_message_and_audit_annotation() {
    let guard = guard(GuardMode::Enforce);
    let body = review(
        "ClusterRole",
        None,
        "CREATE",
        "alice",
        &["system:authenticated"],
        role(
            "ClusterRole",
            "pwn",
            serde_json::json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
    );
    let response = guard.handle_review(&body).expect("answered");
    assert!(!allowed(&response));
    assert_eq!(
        response["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(response["response"]["status"]["code"], 403);
    let message = response["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains(WILDCARD_RULES.message), "{message}");
    assert!(
        !message.contains(PRIVILEGE_VERBS.message),
        "'*' is reported as wildcard, not as the escalate verb"
    );
    assert_eq!(
        response["response"]["auditAnnotations"]["decision"],
        "denied"
    );
    assert_eq!(guard.metrics.denied.load(Ordering::Relaxed), 1);
}

#[test]
fn dry_run_allows_with_warnings() {
    let guard = guard(GuardMode::DryRun);
    let body = review(
        "ClusterRole",
        None,
        "UPDATE",
        "alice",
        &[],
        role(
            "ClusterRole",
            "x",
            serde_json::json!([{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]),
        ),
    );
    let response = guard.handle_review(&body).expect("answered");
    assert!(allowed(&response));
    let warnings = response["response"]["warnings"]
        .as_array()
        .expect("warnings");
    assert!(
        warnings[0]
            .as_str()
            .expect("text")
            .contains(PRIVILEGE_VERBS.message)
    );
    assert_eq!(guard.metrics.warned.load(Ordering::Relaxed), 1);
}

#[test]
fn bindings_to_forbidden_subjects_and_cluster_admin_are_denied() {
    let guard = guard(GuardMode::Enforce);
    for (role_name, subjects) in [
        (
            "cluster-admin",
            serde_json::json!([{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]),
        ),
        (
            "view",
            serde_json::json!([{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]),
        ),
        (
            "view",
            serde_json::json!([{"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"}]),
        ),
        (
            "view",
            serde_json::json!([{"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"}]),
        ),
        (
            "view",
            serde_json::json!([{"kind": "Group", "name": "system:masters", "apiGroup": "rbac.authorization.k8s.io"}]),
        ),
    ] {
        let body = review(
            "ClusterRoleBinding",
            None,
            "CREATE",
            "alice",
            &[],
            binding(
                "ClusterRoleBinding",
                "ClusterRole",
                role_name,
                subjects.clone(),
            ),
        );
        let response = guard.handle_review(&body).expect("answered");
        assert!(!allowed(&response), "{role_name} {subjects}");
    }
    let fine = review(
        "RoleBinding",
        Some("app"),
        "CREATE",
        "alice",
        &[],
        binding(
            "RoleBinding",
            "ClusterRole",
            "view",
            serde_json::json!([{"kind": "Group", "name": "developers"}]),
        ),
    );
    assert!(allowed(&guard.handle_review(&fine).expect("answered")));
}

#[test]
fn critical_grants_depend_on_the_namespace() {
    let guard = guard(GuardMode::Enforce);
    let secrets = serde_json::json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]);
    let in_kube_system = review(
        "Role",
        Some("kube-system"),
        "CREATE",
        "alice",
        &[],
        role("Role", "r", secrets.clone()),
    );
    assert!(!allowed(
        &guard.handle_review(&in_kube_system).expect("answered")
    ));
    let in_app = review(
        "Role",
        Some("app"),
        "CREATE",
        "alice",
        &[],
        role("Role", "r", secrets),
    );
    assert!(allowed(&guard.handle_review(&in_app).expect("answered")));
    let node_proxy = review(
        "ClusterRole",
        None,
        "CREATE",
        "alice",
        &[],
        role(
            "ClusterRole",
            "np",
            serde_json::json!([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]),
        ),
    );
    let response = guard.handle_review(&node_proxy).expect("answered");
    assert!(!allowed(&response));
    assert!(
        response["response"]["status"]["message"]
            .as_str()
            .expect("message")
            .contains("R17")
    );
}

#[test]
fn critical_binding_needs_the_snapshot() {
    let mut snapshot = Snapshot::default();
    snapshot
        .load_text(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: secret-reader}\nrules:\n- {apiGroups: [''], resources: [secrets], verbs: [list]}\n",
            std::path::Path::new("inline.yaml"),
        )
        .expect("snapshot");
    let body = review(
        "ClusterRoleBinding",
        None,
        "CREATE",
        "alice",
        &[],
        binding(
            "ClusterRoleBinding",
            "ClusterRole",
            "secret-reader",
            serde_json::json!([{"kind": "User", "name": "bob"}]),
        ),
    );
    assert!(
        allowed(
            &guard(GuardMode::Enforce)
                .handle_review(&body)
                .expect("answered")
        ),
        "without a snapshot the role is unknown"
    );
    let with_snapshot = Guard::new(
        GuardConfig::default(),
        RbacConfig::default(),
        Some(Arc::new(snapshot)),
        "test".into(),
    );
    let response = with_snapshot.handle_review(&body).expect("answered");
    assert!(!allowed(&response));
    assert!(
        response["response"]["status"]["message"]
            .as_str()
            .expect("message")
            .contains(CRITICAL_BINDING.message)
    );
    // The same role bound in an ordinary namespace is High, not Critical.
    let namespaced = review(
        "RoleBinding",
        Some("app"),
        "CREATE",
        "alice",
        &[],
        binding(
            "RoleBinding",
            "ClusterRole",
            "secret-reader",
            serde_json::json!([{"kind": "User", "name": "bob"}]),
        ),
    );
    assert!(allowed(
        &with_snapshot.handle_review(&namespaced).expect("answered")
    ));
}

#[test]
fn exemptions_and_non_writes_pass() {
    let guard = guard(GuardMode::Enforce);
    let wildcard = role(
        "ClusterRole",
        "pwn",
        serde_json::json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    );
    let by_master = review(
        "ClusterRole",
        None,
        "CREATE",
        "kubernetes-admin",
        &["system:masters"],
        wildcard.clone(),
    );
    assert!(allowed(&guard.handle_review(&by_master).expect("answered")));
    let by_aggregator = review(
        "ClusterRole",
        None,
        "UPDATE",
        "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
        &[],
        wildcard.clone(),
    );
    assert!(allowed(
        &guard.handle_review(&by_aggregator).expect("answered")
    ));
    let delete = review("ClusterRole", None, "DELETE", "alice", &[], wildcard);
    assert!(allowed(&guard.handle_review(&delete).expect("answered")));
    assert_eq!(guard.metrics.exempt.load(Ordering::Relaxed), 2);
}

#[test]
fn denials_become_anomalies() {
    let seen: Arc<Mutex<Vec<Anomaly>>> = Arc::default();
    let sink = seen.clone();
    let guard = guard(GuardMode::Enforce).with_anomaly_sink(Arc::new(move |anomaly| {
        sink.lock().expect("lock").push(anomaly)
    }));
    let body = review(
        "ClusterRoleBinding",
        None,
        "CREATE",
        "mallory",
        &[],
        binding(
            "ClusterRoleBinding",
            "ClusterRole",
            "cluster-admin",
            serde_json::json!([{"kind": "User", "name": "mallory"}]),
        ),
    );
    guard.handle_review(&body).expect("answered");
    let anomalies = seen.lock().expect("lock");
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].detector, "guard.denied");
    assert_eq!(anomalies[0].identity, "mallory");
    assert_eq!(anomalies[0].severity, Severity::Critical);
    assert_eq!(
        anomalies[0].evidence_audit_ids,
        vec!["705ab4f5-6393-11e8-b7cc-42010a800002".to_string()]
    );
}

#[test]
fn malformed_reviews_are_errors_with_a_reason() {
    let guard = guard(GuardMode::Enforce);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "not an AdmissionReview"),
        (br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#.to_vec(), "apiVersion"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#.to_vec(), "kind"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), "request is missing"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#.to_vec(), "uid"),
        (review("ClusterRole", None, "CREATE", "a", &[], serde_json::json!({"rules": "everything"})), "ClusterRole"),
        (review("RoleBinding", Some("a"), "CREATE", "a", &[], serde_json::json!({"subjects": []})), "roleRef"),
    ];
    for (body, expected) in cases {
        let error = guard.handle_review(&body).expect_err("malformed");
        assert!(
            error.to_string().contains(expected),
            "{error} should mention {expected}"
        );
    }
    assert_eq!(guard.metrics.malformed.load(Ordering::Relaxed), 7);
}

/// Found by the `admission_review` fuzz target: a review with a byte that is
/// not UTF-8 inside a field the guard ignores (here a key of `request`) was
/// answered as if it were JSON, because serde_json skips ignored strings
/// without validating them. It is malformed, like any other non-JSON body.
#[test]
fn a_body_that_is_not_utf8_is_malformed_even_in_ignored_fields() {
    let guard = guard(GuardMode::Enforce);
    let valid = review(
        "ClusterRole",
        None,
        "UPDATE",
        "alice",
        &["system:authenticated"],
        role(
            "ClusterRole",
            "secret-reader",
            serde_json::json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        ),
    );
    assert!(guard.handle_review(&valid).is_ok());
    let at = valid
        .windows(b"\"dryRun\"".len())
        .position(|window| window == b"\"dryRun\"")
        .expect("the review has a dryRun field");
    let mut hostile = valid.clone();
    hostile.insert(at + 1, 0xd3);
    let error = guard.handle_review(&hostile).expect_err("not JSON");
    assert!(error.to_string().contains("not UTF-8"), "{error}");
    assert_eq!(guard.metrics.malformed.load(Ordering::Relaxed), 1);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|number| serde_json::json!(number)),
            "[a-zA-Z*:/.-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("rules".to_string()),
                        Just("verbs".to_string()),
                        Just("resources".to_string()),
                        Just("apiGroups".to_string()),
                        Just("roleRef".to_string()),
                        Just("subjects".to_string()),
                        Just("kind".to_string()),
                        Just("name".to_string()),
                        Just("metadata".to_string()),
                        "[a-z]{1,8}",
                    ],
                    inner,
                    0..6,
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let guard = guard(GuardMode::Enforce);
            let _ = guard.handle_review(&body);
        }

        #[test]
        fn random_objects_in_valid_reviews(object in json_value(), kind in prop_oneof![Just("Role"), Just("ClusterRole"), Just("RoleBinding"), Just("ClusterRoleBinding")], operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE")]) {
            let guard = guard(GuardMode::Enforce);
            let body = review(kind, Some("kube-system"), operation, "fuzz", &[], object);
            if let Ok(response) = guard.handle_review(&body) {
                prop_assert!(response["response"]["allowed"].is_boolean());
            }
        }

        #[test]
        fn random_reviews(review in json_value()) {
            let guard = guard(GuardMode::DryRun);
            let mut wrapped = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
            wrapped["request"] = review;
            let _ = guard.handle_review(&serde_json::to_vec(&wrapped).expect("json"));
        }
    }
}
