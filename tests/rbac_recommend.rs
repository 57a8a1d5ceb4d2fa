//! `recommend` end to end: audit events written as Hive-partitioned Parquet
//! with DuckDB (the layout of DESIGN.md), read back through the `requests`
//! view, turned into roles, and every allowed request replayed through the
//! authorizer against the generated roles (all allowed); requests that were
//! not made, or were denied, stay denied.

use auditlens::rbac::RequestAttributes;
use auditlens::rbac::authorizer::{Authorizer, UserInfo};
use auditlens::rbac::recommend::{RecommendOptions, load_requests, recommend};
use auditlens::rbac::snapshot::Snapshot;
use std::path::Path;
use std::process::Command;

struct Row {
    ts: &'static str,
    audit_id: &'static str,
    stage: &'static str,
    verb: &'static str,
    user: &'static str,
    impersonated: Option<&'static str>,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    namespace: &'static str,
    name: &'static str,
    uri: &'static str,
    code: i32,
    decision: &'static str,
}

#[allow(clippy::too_many_arguments)]
fn row(
    ts: &'static str,
    audit_id: &'static str,
    verb: &'static str,
    user: &'static str,
    group: &'static str,
    resource: &'static str,
    namespace: &'static str,
    name: &'static str,
    code: i32,
) -> Row {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    Row {
        ts,
        audit_id,
        stage: "ResponseComplete",
        verb,
        user,
        impersonated: None,
        group,
        resource,
        subresource,
        namespace,
        name,
        uri: "/api",
        code,
        decision: if code == 403 { "forbid" } else { "allow" },
    }
}

fn events() -> Vec<Row> {
    let alice = "alice";
    let deployer = "system:serviceaccount:ci:deployer";
    let mut rows = vec![
        row(
            "2026-11-27 09:00:01",
            "a-1",
            "get",
            alice,
            "",
            "configmaps",
            "app",
            "settings",
            200,
        ),
        row(
            "2026-11-27 09:00:02",
            "a-2",
            "get",
            alice,
            "",
            "configmaps",
            "app",
            "settings",
            200,
        ),
        row(
            "2026-11-27 09:00:03",
            "a-3",
            "list",
            alice,
            "",
            "pods",
            "app",
            "",
            200,
        ),
        row(
            "2026-11-27 09:00:04",
            "a-4",
            "watch",
            alice,
            "",
            "pods",
            "app",
            "",
            200,
        ),
        row(
            "2026-11-27 09:00:05",
            "a-5",
            "get",
            alice,
            "",
            "pods",
            "app",
            "web-1",
            200,
        ),
        row(
            "2026-11-27 09:00:06",
            "a-6",
            "create",
            alice,
            "",
            "pods/exec",
            "app",
            "web-1",
            101,
        ),
        row(
            "2026-11-27 09:00:07",
            "a-7",
            "get",
            alice,
            "",
            "secrets",
            "app",
            "db",
            403,
        ),
        row(
            "2026-11-27 09:00:08",
            "a-8",
            "list",
            alice,
            "",
            "nodes",
            "",
            "",
            200,
        ),
        row(
            "2026-11-27 09:00:09",
            "a-9",
            "get",
            alice,
            "",
            "pods",
            "app",
            "missing",
            404,
        ),
        row(
            "2026-11-27 09:10:00",
            "d-1",
            "patch",
            deployer,
            "apps",
            "deployments",
            "app",
            "web",
            200,
        ),
        row(
            "2026-11-27 09:10:01",
            "d-2",
            "create",
            deployer,
            "apps",
            "deployments",
            "staging",
            "api",
            201,
        ),
        row(
            "2026-11-27 09:10:02",
            "d-3",
            "get",
            deployer,
            "",
            "namespaces",
            "staging",
            "staging",
            200,
        ),
        row(
            "2026-11-27 09:10:03",
            "d-4",
            "update",
            deployer,
            "apps",
            "deployments/scale",
            "app",
            "web",
            200,
        ),
        // Outside the period used below.
        row(
            "2026-11-27 11:00:00",
            "late-1",
            "delete",
            alice,
            "",
            "pods",
            "app",
            "web-1",
            200,
        ),
    ];
    // A non-resource request.
    let mut health = row(
        "2026-11-27 09:00:10",
        "a-10",
        "get",
        alice,
        "",
        "",
        "",
        "",
        200,
    );
    health.uri = "/healthz?verbose=1";
    rows.push(health);
    // Impersonation: admin acting as bob; bob is who needs the grant.
    let mut impersonated = row(
        "2026-11-27 09:20:00",
        "b-1",
        "list",
        "admin",
        "",
        "services",
        "app",
        "",
        200,
    );
    impersonated.impersonated = Some("bob");
    rows.push(impersonated);
    // Two stages of one request: counted once.
    let mut received = row(
        "2026-11-27 09:00:01",
        "a-1",
        "get",
        alice,
        "",
        "configmaps",
        "app",
        "settings",
        200,
    );
    received.stage = "RequestReceived";
    rows.push(received);
    rows
}

fn write_parquet(data_dir: &Path, rows: &[Row]) {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let columns: Vec<String> = auditlens::store::schema::duckdb_column_types()
        .into_iter()
        .map(|(name, sql_type)| format!("{name} {sql_type}"))
        .collect();
    connection
        .execute_batch(&format!("CREATE TABLE e ({})", columns.join(", ")))
        .expect("table");
    let mut insert = connection
        .prepare(
            "INSERT INTO e (ts, stage_ts, audit_id, stage, level, verb, request_uri, username, user_groups, impersonated_user,
                identity_kind, api_group, api_version, resource, subresource, namespace, name, response_code, decision,
                source_file, source_fingerprint, source_offset)
             VALUES (CAST($1 AS TIMESTAMP), CAST($1 AS TIMESTAMP), $2, $3, 'Metadata', $4, $5, $6, ['system:authenticated'], $7,
                'user', $8, 'v1', nullif($9, ''), nullif($10, ''), nullif($11, ''), nullif($12, ''), $13, $14,
                'audit.log', 'fp', $15)",
        )
        .expect("prepare");
    for (offset, row) in rows.iter().enumerate() {
        insert
            .execute(duckdb::params![
                row.ts,
                row.audit_id,
                row.stage,
                row.verb,
                row.uri,
                row.user,
                row.impersonated,
                row.group,
                row.resource,
                row.subresource,
                row.namespace,
                row.name,
                row.code,
                row.decision,
                offset as i64
            ])
            .expect("insert");
    }
    let folder = data_dir.join("events/cluster=default/date=2026-11-27/hour=09");
    std::fs::create_dir_all(&folder).expect("folder");
    let file = folder.join("part-01TEST.parquet");
    connection
        .execute_batch(&format!("COPY e TO '{}' (FORMAT parquet)", file.display()))
        .expect("copy");
}

fn until_ten() -> RecommendOptions {
    RecommendOptions {
        until: Some(
            chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
                .expect("time")
                .with_timezone(&chrono::Utc),
        ),
        ..RecommendOptions::default()
    }
}

#[test]
fn generated_roles_allow_exactly_what_was_allowed() {
    let data = tempfile::tempdir().expect("tempdir");
    write_parquet(data.path(), &events());
    let options = until_ten();
    let recommendations = recommend(data.path(), None, &options).expect("recommend");
    let identities: Vec<&str> = recommendations
        .iter()
        .map(|recommendation| recommendation.identity.as_str())
        .collect();
    assert_eq!(
        identities,
        vec!["alice", "bob", "system:serviceaccount:ci:deployer"]
    );

    // Replay every allowed request of the period.
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    auditlens::store::views::install_views(&connection, data.path()).expect("views");
    let requests = load_requests(&connection, &options).expect("requests");
    assert_eq!(
        requests
            .iter()
            .filter(|request| request.audit_id == "a-1")
            .count(),
        1,
        "stages of one request count once"
    );
    let mut replayed = 0;
    for recommendation in &recommendations {
        let authorizer = Authorizer::new(&recommendation.as_snapshot());
        // No groups at all: the generated roles alone must suffice.
        let user = UserInfo::new(recommendation.identity.clone(), Vec::<String>::new());
        for request in requests
            .iter()
            .filter(|request| request.identity == recommendation.identity)
        {
            let decision = authorizer.authorize(&user, &request.attributes());
            assert_eq!(
                decision.allowed,
                request.allowed,
                "{} {:?}: {}",
                request.audit_id,
                request.attributes(),
                decision.reason
            );
            replayed += 1;
        }
    }
    assert_eq!(replayed, requests.len());

    // Requests that were never made stay denied.
    let alice = recommendations
        .iter()
        .find(|recommendation| recommendation.identity == "alice")
        .expect("alice");
    let authorizer = Authorizer::new(&alice.as_snapshot());
    let user = UserInfo::new("alice", Vec::<String>::new());
    for (verb, group, resource, namespace, name) in [
        ("get", "", "configmaps", "app", "other"),
        ("list", "", "configmaps", "app", ""),
        ("delete", "", "pods", "app", "web-1"),
        ("list", "", "pods", "other", ""),
        ("get", "", "secrets", "app", "db"),
        ("create", "", "pods/exec", "app", "web-2"),
        ("get", "", "nodes", "", "node-1"),
    ] {
        let request = RequestAttributes::resource(verb, group, resource, namespace, name);
        assert!(
            !authorizer.authorize(&user, &request).allowed,
            "{verb} {resource} {namespace}/{name} must stay denied"
        );
    }
    assert!(
        !authorizer
            .authorize(&user, &RequestAttributes::non_resource("get", "/metrics"))
            .allowed
    );
    assert_eq!(alice.denied.len(), 1);
    assert_eq!(alice.denied[0].example_audit_id, "a-7");
    let deployer = recommendations
        .iter()
        .find(|recommendation| recommendation.identity.ends_with("deployer"))
        .expect("deployer");
    assert_eq!(deployer.subject.kind, "ServiceAccount");
    let deployer_authorizer = Authorizer::new(&deployer.as_snapshot());
    let deployer_user = UserInfo::new(deployer.identity.clone(), Vec::<String>::new());
    assert!(
        !deployer_authorizer
            .authorize(
                &deployer_user,
                &RequestAttributes::resource("patch", "apps", "deployments", "staging", "api")
            )
            .allowed
    );
}

#[test]
fn diff_against_current_grants_lists_unused_sensitive_first() {
    let data = tempfile::tempdir().expect("tempdir");
    write_parquet(data.path(), &events());
    let current = Snapshot::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rbac/risky/snapshot.yaml"),
    )
    .expect("snapshot");
    // alice gets secret reading through system:authenticated in the risky snapshot.
    let options = RecommendOptions {
        identity: Some("alice".into()),
        ..until_ten()
    };
    let recommendations = recommend(data.path(), Some(&current), &options).expect("recommend");
    let alice = &recommendations[0];
    let granted = alice.granted_rules.expect("granted");
    let used = alice.used_grant_rules.expect("used");
    assert!(granted >= 1 && used <= granted);
    assert_eq!(
        alice.over_privilege_score,
        Some(used as f64 / granted as f64)
    );
    assert!(
        alice.unused_grants[0].sensitive,
        "sensitive unused grants come first"
    );
    assert!(
        alice
            .unused_grants
            .iter()
            .any(|unused| unused.why_sensitive.contains(&"secrets".to_string()))
    );
}

fn binary(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("runs")
}

#[test]
fn cli_writes_appliable_yaml_with_evidence_annotations() {
    let data = tempfile::tempdir().expect("tempdir");
    write_parquet(data.path(), &events());
    let output = binary(
        &[
            "rbac",
            "recommend",
            "alice",
            "--until",
            "2026-11-27T10:00:00Z",
        ],
        data.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf8");
    assert!(
        text.contains("# denied (not granted): get secrets"),
        "{text}"
    );
    let mut kinds = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(document).expect("yaml");
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().expect("kind").to_string();
        let json = serde_json::to_value(&value).expect("json");
        match kind.as_str() {
            "Role" => {
                let role: k8s_openapi::api::rbac::v1::Role =
                    serde_json::from_value(json).expect("typed Role");
                let annotations = role.metadata.annotations.expect("annotations");
                let evidence = &annotations["auditlens.io/rule-0"];
                assert!(
                    evidence.contains("count=")
                        && evidence.contains("first=")
                        && evidence.contains("example="),
                    "{evidence}"
                );
            }
            "ClusterRole" => drop(
                serde_json::from_value::<k8s_openapi::api::rbac::v1::ClusterRole>(json)
                    .expect("typed"),
            ),
            "RoleBinding" => drop(
                serde_json::from_value::<k8s_openapi::api::rbac::v1::RoleBinding>(json)
                    .expect("typed"),
            ),
            "ClusterRoleBinding" => drop(
                serde_json::from_value::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(json)
                    .expect("typed"),
            ),
            other => panic!("unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        vec!["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    );
    let all = binary(
        &[
            "rbac",
            "recommend",
            "--all",
            "--generalize",
            "namespaces",
            "--format",
            "json",
        ],
        data.path(),
    );
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let recommendations: serde_json::Value = serde_json::from_slice(&all.stdout).expect("json");
    for recommendation in recommendations.as_array().expect("array") {
        assert!(
            recommendation["roles"]
                .as_array()
                .expect("roles")
                .is_empty(),
            "namespaces generalized into ClusterRoles"
        );
        assert!(
            recommendation["generalized"][0]
                .as_str()
                .expect("stated")
                .starts_with("namespaces")
        );
    }
    let usage = binary(&["rbac", "recommend"], data.path());
    assert_eq!(
        usage.status.code(),
        Some(2),
        "IDENTITY or --all is required"
    );
}
