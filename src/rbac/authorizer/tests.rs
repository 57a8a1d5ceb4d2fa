//! Table-driven proof of the authorizer semantics, on
//! testdata/rbac/authorizer-fixture.yaml (each object there pins one rule).

use super::*;
use std::path::Path;

fn fixture() -> Authorizer {
    let mut snapshot = Snapshot::default();
    let text = include_str!("../../../testdata/rbac/authorizer-fixture.yaml");
    snapshot
        .load_text(text, Path::new("authorizer-fixture.yaml"))
        .expect("fixture loads");
    Authorizer::new(&snapshot)
}

/// One case: who (implicit groups added), extra groups, request, expected.
struct Case {
    what: &'static str,
    user: &'static str,
    groups: &'static [&'static str],
    request: RequestAttributes,
    allowed: bool,
}

fn resource(
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> RequestAttributes {
    RequestAttributes::resource(verb, group, resource, namespace, name)
}

fn url(verb: &str, path: &str) -> RequestAttributes {
    RequestAttributes::non_resource(verb, path)
}

fn case(
    what: &'static str,
    user: &'static str,
    groups: &'static [&'static str],
    request: RequestAttributes,
    allowed: bool,
) -> Case {
    Case {
        what,
        user,
        groups,
        request,
        allowed,
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Exact verbs, resources and the core group.
        case(
            "crb grants get pods anywhere",
            "alice",
            &[],
            resource("get", "", "pods", "team-a", "p"),
            true,
        ),
        case(
            "crb grants list pods cluster-wide",
            "alice",
            &[],
            resource("list", "", "pods", "", ""),
            true,
        ),
        case(
            "crb grants watch pods",
            "alice",
            &[],
            resource("watch", "", "pods", "x", ""),
            true,
        ),
        case(
            "verb not in rule",
            "alice",
            &[],
            resource("delete", "", "pods", "team-a", "p"),
            false,
        ),
        case(
            "resource not in rule",
            "alice",
            &[],
            resource("get", "", "secrets", "team-a", "s"),
            false,
        ),
        case(
            "apiGroup must match: pods in apps group",
            "alice",
            &[],
            resource("get", "apps", "pods", "team-a", "p"),
            false,
        ),
        case(
            "subresource not granted by its parent",
            "alice",
            &[],
            resource("get", "", "pods/log", "team-a", "p"),
            false,
        ),
        case(
            "unknown user gets nothing",
            "mallory",
            &[],
            resource("get", "", "pods", "team-a", "p"),
            false,
        ),
        // RoleBinding -> ClusterRole is namespace-scoped.
        case(
            "rb->clusterrole in its namespace",
            "bob",
            &[],
            resource("get", "", "pods", "team-a", "p"),
            true,
        ),
        case(
            "rb->clusterrole not in other namespace",
            "bob",
            &[],
            resource("get", "", "pods", "team-c", "p"),
            false,
        ),
        case(
            "rb->clusterrole not cluster-wide",
            "bob",
            &[],
            resource("list", "", "pods", "", ""),
            false,
        ),
        case(
            "rb->role in its namespace",
            "bob",
            &[],
            resource("create", "", "services", "team-a", ""),
            true,
        ),
        case(
            "rb->role not elsewhere",
            "bob",
            &[],
            resource("create", "", "services", "team-c", ""),
            false,
        ),
        case(
            "rb to a missing role grants nothing",
            "bob",
            &[],
            resource("create", "", "services", "team-b", ""),
            false,
        ),
        case(
            "crb referencing a Role is ignored",
            "hank",
            &[],
            resource("create", "", "services", "team-a", ""),
            false,
        ),
        // Wildcard verbs.
        case(
            "* verbs: get",
            "zed",
            &["ops"],
            resource("get", "apps", "deployments", "n", "d"),
            true,
        ),
        case(
            "* verbs: delete",
            "zed",
            &["ops"],
            resource("delete", "apps", "deployments", "n", "d"),
            true,
        ),
        case(
            "* verbs: custom verb",
            "zed",
            &["ops"],
            resource("scale-up", "apps", "deployments", "n", "d"),
            true,
        ),
        case(
            "* verbs: escalate-like verbs too",
            "zed",
            &["ops"],
            resource("deletecollection", "apps", "deployments", "n", ""),
            true,
        ),
        case(
            "* verbs keep the group",
            "zed",
            &["ops"],
            resource("get", "extensions", "deployments", "n", "d"),
            false,
        ),
        case(
            "* verbs keep the resource",
            "zed",
            &["ops"],
            resource("get", "apps", "statefulsets", "n", "s"),
            false,
        ),
        case(
            "* verbs keep the subresource out",
            "zed",
            &["ops"],
            resource("update", "apps", "deployments/scale", "n", "d"),
            false,
        ),
        case(
            "group membership needed",
            "zed",
            &[],
            resource("get", "apps", "deployments", "n", "d"),
            false,
        ),
        // Wildcard apiGroups.
        case(
            "* group: core",
            "system:serviceaccount:ci:deployer",
            &[],
            resource("get", "", "widgets", "x", "w"),
            true,
        ),
        case(
            "* group: custom group",
            "system:serviceaccount:ci:deployer",
            &[],
            resource("get", "example.com", "widgets", "", "w"),
            true,
        ),
        case(
            "* group: other resource",
            "system:serviceaccount:ci:deployer",
            &[],
            resource("get", "example.com", "gadgets", "", "g"),
            false,
        ),
        case(
            "* group: other verb",
            "system:serviceaccount:ci:deployer",
            &[],
            resource("list", "example.com", "widgets", "", ""),
            false,
        ),
        // Wildcard resources.
        case(
            "* resources: any core resource",
            "ivy",
            &[],
            resource("list", "", "secrets", "team-b", ""),
            true,
        ),
        case(
            "* resources: subresource too",
            "ivy",
            &[],
            resource("list", "", "pods/log", "team-b", ""),
            true,
        ),
        case(
            "* resources: group still matters",
            "ivy",
            &[],
            resource("list", "apps", "deployments", "team-b", ""),
            false,
        ),
        case(
            "* resources: namespace still matters",
            "ivy",
            &[],
            resource("list", "", "secrets", "team-a", ""),
            false,
        ),
        // Subresources.
        case(
            "resource/subresource exact",
            "system:serviceaccount:team-a:runner",
            &[],
            resource("create", "", "pods/exec", "team-a", "p"),
            true,
        ),
        case(
            "resource/subresource other verb",
            "system:serviceaccount:team-a:runner",
            &[],
            resource("get", "", "pods/exec", "team-a", "p"),
            false,
        ),
        case(
            "resource/subresource does not grant parent",
            "system:serviceaccount:team-a:runner",
            &[],
            resource("create", "", "pods", "team-a", ""),
            false,
        ),
        case(
            "resource/subresource other subresource",
            "system:serviceaccount:team-a:runner",
            &[],
            resource("create", "", "pods/attach", "team-a", "p"),
            false,
        ),
        case(
            "*/subresource: pods/status",
            "system:serviceaccount:z:any",
            &[],
            resource("get", "", "pods/status", "z", "p"),
            true,
        ),
        case(
            "*/subresource: deployments/status",
            "system:serviceaccount:z:any",
            &[],
            resource("get", "apps", "deployments/status", "z", "d"),
            true,
        ),
        case(
            "*/subresource: not the parent",
            "system:serviceaccount:z:any",
            &[],
            resource("get", "", "pods", "z", "p"),
            false,
        ),
        case(
            "*/subresource: not another subresource",
            "system:serviceaccount:z:any",
            &[],
            resource("get", "", "pods/log", "z", "p"),
            false,
        ),
        case(
            "*/subresource: suffix must be the whole subresource",
            "system:serviceaccount:z:any",
            &[],
            resource("get", "", "pods/substatus", "z", "p"),
            false,
        ),
        case(
            "resource/* is literal: no pods/exec",
            "frank",
            &[],
            resource("get", "", "pods/exec", "n", "p"),
            false,
        ),
        case(
            "resource/* is literal: no pods/log",
            "frank",
            &[],
            resource("get", "", "pods/log", "n", "p"),
            false,
        ),
        case(
            "resource/* is literal: not pods",
            "frank",
            &[],
            resource("get", "", "pods", "n", "p"),
            false,
        ),
        // resourceNames.
        case(
            "resourceNames: get the named object",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("get", "", "configmaps", "team-a", "app-config"),
            true,
        ),
        case(
            "resourceNames: update the named object",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("update", "", "configmaps", "team-a", "app-config"),
            true,
        ),
        case(
            "resourceNames: delete the named object",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("delete", "", "configmaps", "team-a", "app-config"),
            true,
        ),
        case(
            "resourceNames: other name",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("get", "", "configmaps", "team-a", "other"),
            false,
        ),
        case(
            "resourceNames: create carries no name",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("create", "", "configmaps", "team-a", "app-config"),
            false,
        ),
        case(
            "resourceNames: list carries no name",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("list", "", "configmaps", "team-a", "app-config"),
            false,
        ),
        case(
            "resourceNames: watch carries no name",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("watch", "", "configmaps", "team-a", "app-config"),
            false,
        ),
        case(
            "resourceNames: deletecollection carries no name",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("deletecollection", "", "configmaps", "team-a", "app-config"),
            false,
        ),
        case(
            "resourceNames: create on a subresource names its parent",
            "kim",
            &[],
            resource("create", "", "pods/exec", "x", "debug-pod"),
            true,
        ),
        case(
            "resourceNames: create on a subresource, other parent",
            "kim",
            &[],
            resource("create", "", "pods/exec", "x", "web"),
            false,
        ),
        // ServiceAccount subjects.
        case(
            "sa subject defaults to the binding namespace",
            "system:serviceaccount:team-a:builder",
            &[],
            resource("get", "", "configmaps", "team-a", "app-config"),
            true,
        ),
        case(
            "sa of another namespace with the same name",
            "system:serviceaccount:team-b:builder",
            &[],
            resource("get", "", "configmaps", "team-b", "app-config"),
            false,
        ),
        case(
            "sa subject with explicit namespace",
            "system:serviceaccount:ci:deployer",
            &[],
            resource("get", "", "widgets", "ci", "w"),
            true,
        ),
        case(
            "user named like the sa is not the sa",
            "deployer",
            &[],
            resource("get", "", "widgets", "ci", "w"),
            false,
        ),
        // Implicit groups.
        case(
            "system:serviceaccounts:<ns> group",
            "system:serviceaccount:team-a:other",
            &[],
            resource("create", "", "pods/exec", "team-a", "p"),
            true,
        ),
        case(
            "system:serviceaccounts:<ns> group: other namespace's sa",
            "system:serviceaccount:team-b:other",
            &[],
            resource("create", "", "pods/exec", "team-a", "p"),
            false,
        ),
        case(
            "system:serviceaccounts group for every sa",
            "system:serviceaccount:kube-system:x",
            &[],
            resource("get", "", "nodes/status", "", "n1"),
            true,
        ),
        case(
            "system:serviceaccounts group not for users",
            "alice",
            &[],
            resource("get", "", "nodes/status", "", "n1"),
            false,
        ),
        case(
            "system:authenticated: /healthz",
            "alice",
            &[],
            url("get", "/healthz"),
            true,
        ),
        case(
            "system:authenticated: sa too",
            "system:serviceaccount:a:b",
            &[],
            url("get", "/healthz"),
            true,
        ),
        case(
            "anonymous is not authenticated, but unauthenticated",
            "system:anonymous",
            &[],
            url("get", "/version"),
            true,
        ),
        case(
            "anonymous cannot post",
            "system:anonymous",
            &[],
            url("post", "/version"),
            false,
        ),
        case(
            "authenticated user does not get unauthenticated grants",
            "alice",
            &[],
            url("get", "/version"),
            false,
        ),
        // Non-resource URLs.
        case(
            "url prefix with trailing *",
            "alice",
            &[],
            url("get", "/logs/kube-apiserver.log"),
            true,
        ),
        case(
            "url prefix: bare prefix dir",
            "alice",
            &[],
            url("get", "/logs/"),
            true,
        ),
        case(
            "url prefix: needs the slash",
            "alice",
            &[],
            url("get", "/logsx"),
            false,
        ),
        case(
            "url exact: no prefix match without *",
            "alice",
            &[],
            url("get", "/healthz/etcd"),
            false,
        ),
        case(
            "url verb must match",
            "alice",
            &[],
            url("post", "/healthz"),
            false,
        ),
        case(
            "non-resource rule does not grant resources",
            "alice",
            &[],
            resource("get", "", "healthz", "", ""),
            false,
        ),
        case(
            "non-resource via RoleBinding is ineffective",
            "gina",
            &["-"],
            url("get", "/healthz"),
            false,
        ),
        case(
            "non-resource prefix via RoleBinding is ineffective",
            "gina",
            &["-"],
            url("get", "/logs/x"),
            false,
        ),
        // Aggregation.
        case(
            "aggregated matchLabels: child rule",
            "carol",
            &[],
            resource("get", "", "secrets", "any", "s"),
            true,
        ),
        case(
            "aggregated matchLabels: non-matching child",
            "carol",
            &[],
            resource("delete", "", "nodes", "", "n"),
            false,
        ),
        case(
            "aggregated matchExpressions In",
            "dave",
            &[],
            resource("list", "", "configmaps", "x", ""),
            true,
        ),
        case(
            "aggregated matchExpressions DoesNotExist excludes",
            "dave",
            &[],
            resource("list", "", "nodes", "", ""),
            false,
        ),
        case(
            "aggregated matchExpressions In excludes bronze",
            "dave",
            &[],
            resource("list", "", "services", "x", ""),
            false,
        ),
        case(
            "aggregation is transitive",
            "erin",
            &[],
            resource("get", "", "secrets", "any", "s"),
            true,
        ),
        case(
            "transitive aggregation keeps exclusions",
            "erin",
            &[],
            resource("delete", "", "nodes", "", "n"),
            false,
        ),
        // system:masters.
        case(
            "masters bypass RBAC for anything",
            "root",
            &["system:masters"],
            resource("delete", "", "nodes", "", "n"),
            true,
        ),
        case(
            "masters bypass for non-resource",
            "root",
            &["system:masters"],
            url("post", "/anything"),
            true,
        ),
        case(
            "a user named system:masters is not the group",
            "system:masters",
            &[],
            resource("get", "", "pods", "a", "p"),
            false,
        ),
    ]
}

#[test]
fn table_of_authorization_cases() {
    let authorizer = fixture();
    let cases = cases();
    assert!(
        cases.len() >= 60,
        "the suite must hold at least 60 cases, has {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        // The "-" marker: exactly no groups (not even implicit ones), so only
        // bindings naming the user can count.
        let user = if case.groups == ["-"] {
            UserInfo::new(case.user, Vec::<String>::new())
        } else {
            let extra: Vec<String> = case.groups.iter().map(|group| group.to_string()).collect();
            UserInfo::with_implicit_groups(case.user, &extra)
        };
        let decision = authorizer.authorize(&user, &case.request);
        if decision.allowed != case.allowed {
            failures.push(format!(
                "{}: expected allowed={}, got {:?}",
                case.what, case.allowed, decision.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn decision_names_binding_and_role() {
    let authorizer = fixture();
    let decision = authorizer.authorize(
        &UserInfo::with_implicit_groups("bob", &[]),
        &resource("get", "", "pods", "team-a", "p"),
    );
    let grant = decision.grant.expect("granted");
    assert_eq!(grant.binding, "RoleBinding/team-a/bob-pods");
    assert_eq!(grant.role, "ClusterRole/pod-reader");
    assert_eq!(grant.namespace.as_deref(), Some("team-a"));
}

#[test]
fn implicit_groups() {
    let sa = UserInfo::with_implicit_groups("system:serviceaccount:ns1:app", &[]);
    assert_eq!(
        sa.groups,
        vec![
            "system:authenticated",
            "system:serviceaccounts",
            "system:serviceaccounts:ns1"
        ]
    );
    let anonymous = UserInfo::with_implicit_groups("system:anonymous", &[]);
    assert_eq!(anonymous.groups, vec!["system:unauthenticated"]);
    let user = UserInfo::with_implicit_groups("alice", &["dev".to_string()]);
    assert_eq!(user.groups, vec!["dev", "system:authenticated"]);
}

#[test]
fn who_can_respects_scope_and_lists_masters() {
    let authorizer = fixture();
    let in_team_a = who_can(
        &authorizer,
        &resource("get", "", "pods", "team-a", "p"),
        false,
    );
    let names: Vec<&str> = in_team_a
        .iter()
        .map(|entry| entry.subject.name.as_str())
        .collect();
    assert_eq!(names[0], "system:masters");
    assert!(
        names.contains(&"alice") && names.contains(&"bob"),
        "{names:?}"
    );
    let cluster = who_can(&authorizer, &resource("list", "", "pods", "", ""), false);
    let names: Vec<&str> = cluster
        .iter()
        .map(|entry| entry.subject.name.as_str())
        .collect();
    assert!(
        names.contains(&"alice") && !names.contains(&"bob"),
        "{names:?}"
    );
    let everywhere = who_can(&authorizer, &resource("list", "", "pods", "", ""), true);
    let bob = everywhere
        .iter()
        .find(|entry| entry.subject.name == "bob")
        .expect("bob via rolebinding");
    assert_eq!(bob.namespace.as_deref(), Some("team-a"));
    let exec = who_can(
        &authorizer,
        &resource("create", "", "pods/exec", "team-a", "p"),
        false,
    );
    assert!(
        exec.iter()
            .any(|entry| entry.subject.name == "system:serviceaccounts:team-a")
    );
}

#[test]
fn grants_for_lists_every_rule_with_its_source() {
    let authorizer = fixture();
    let grants = authorizer.grants_for(&UserInfo::with_implicit_groups("bob", &[]));
    let bindings: Vec<&str> = grants.iter().map(|grant| grant.binding.as_str()).collect();
    assert!(bindings.contains(&"RoleBinding/team-a/bob-pods"));
    assert!(bindings.contains(&"RoleBinding/team-a/bob-svc"));
    assert!(bindings.contains(&"ClusterRoleBinding/authenticated-health"));
    assert!(!bindings.contains(&"RoleBinding/team-b/bob-missing"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn rule(verbs: Vec<String>, groups: Vec<String>, resources: Vec<String>) -> PolicyRule {
        PolicyRule {
            verbs,
            api_groups: Some(groups),
            resources: Some(resources),
            resource_names: None,
            non_resource_urls: None,
        }
    }

    proptest! {
        /// A rule of all wildcards allows every resource request, and a rule
        /// never allows a request its exact-match twin would refuse on verb.
        #[test]
        fn wildcard_rule_allows_everything(verb in "[a-z]{1,8}", group in "[a-z.]{0,12}", resource in "[a-z]{1,10}", sub in "[a-z]{0,6}", name in "[a-z0-9-]{0,10}") {
            let combined = if sub.is_empty() { resource.clone() } else { format!("{resource}/{sub}") };
            let request = RequestAttributes::resource(&verb, &group, &combined, "ns", &name);
            prop_assert!(rule_allows(&rule(vec!["*".into()], vec!["*".into()], vec!["*".into()]), &request));
            let exact = rule(vec![verb.clone()], vec![group.clone()], vec![combined.clone()]);
            prop_assert!(rule_allows(&exact, &request));
            let other_verb = rule(vec![format!("{verb}x")], vec![group.clone()], vec![combined.clone()]);
            prop_assert!(!rule_allows(&other_verb, &request));
        }
    }
}
