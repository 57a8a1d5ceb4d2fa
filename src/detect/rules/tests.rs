use super::*;
use serde_json::json;

const T0: i64 = 1_800_000_000_000_000;

/// Builds an event from its interesting parts; everything else realistic defaults.
struct EventBuilder {
    value: serde_json::Value,
}

fn event(user: &str, verb: &str, resource: &str) -> EventBuilder {
    EventBuilder {
        value: json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": format!("{user}-{verb}-{resource}"),
            "stage": "ResponseComplete",
            "requestURI": format!("/api/v1/{resource}"),
            "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.0.7"],
            "userAgent": "kubectl/v1.30.1 (linux/amd64) kubernetes/abc",
            "objectRef": {"resource": resource, "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": "2027-01-15T08:00:00.000000Z",
            "stageTimestamp": "2027-01-15T08:00:00.010000Z",
            "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
        }),
    }
}

impl EventBuilder {
    fn set(mut self, path: &[&str], value: serde_json::Value) -> Self {
        let mut target = &mut self.value;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        self
    }
    fn id(self, id: &str) -> Self {
        self.set(&["auditID"], json!(id))
    }
    fn group(self, group: &str) -> Self {
        self.set(&["objectRef", "apiGroup"], json!(group))
    }
    fn namespace(self, namespace: &str) -> Self {
        self.set(&["objectRef", "namespace"], json!(namespace))
    }
    fn name(self, name: &str) -> Self {
        self.set(&["objectRef", "name"], json!(name))
    }
    fn subresource(self, subresource: &str) -> Self {
        self.set(&["objectRef", "subresource"], json!(subresource))
    }
    fn uri(self, uri: &str) -> Self {
        self.set(&["requestURI"], json!(uri))
    }
    fn code(self, code: i32) -> Self {
        let decision = if code == 403 { "forbid" } else { "allow" };
        self.set(&["responseStatus", "code"], json!(code)).set(
            &["annotations", "authorization.k8s.io/decision"],
            json!(decision),
        )
    }
    fn stage(self, stage: &str) -> Self {
        self.set(&["stage"], json!(stage))
    }
    fn object(self, object: serde_json::Value) -> Self {
        self.set(&["requestObject"], object)
    }
    fn at_minute(self, minute: i64) -> Self {
        let text = crate::audit::format_rfc3339_micros(T0 + minute * 60_000_000);
        self.set(&["requestReceivedTimestamp"], json!(text))
            .set(&["stageTimestamp"], json!(text))
    }
    fn impersonating(self, user: &str, groups: &[&str]) -> Self {
        self.set(
            &["impersonatedUser"],
            json!({"username": user, "groups": groups}),
        )
    }
    fn build(self) -> AuditEvent {
        AuditEvent::decode(self.value.to_string().as_bytes()).expect("valid test event")
    }
}

fn fired(rules: &mut RuleSet, event: AuditEvent) -> Vec<String> {
    rules
        .evaluate(&event)
        .into_iter()
        .map(|anomaly| anomaly.detector)
        .collect()
}

fn fresh() -> RuleSet {
    RuleSet::new(RuleOptions::default())
}

#[test]
fn every_rule_in_the_catalogue_has_a_unique_id() {
    let mut ids: Vec<&str> = RULES.iter().map(|spec| spec.id).collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[test]
fn wildcard_clusterrole_then_binding_is_critical_twice() {
    let mut rules = fresh();
    let role = event("mallory", "create", "clusterroles")
        .group(RBAC_GROUP)
        .name("backdoor")
        .object(json!({"kind": "ClusterRole", "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}))
        .id("role-1")
        .build();
    let anomalies = rules.evaluate(&role);
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].detector, "rbac.wildcard_grant");
    assert_eq!(anomalies[0].severity, Severity::Critical);
    assert_eq!(anomalies[0].evidence_audit_ids, vec!["role-1"]);
    assert_eq!(anomalies[0].identity, "mallory");
    assert!(
        anomalies[0]
            .reasons
            .iter()
            .any(|reason| reason.contains("verbs [*]")),
        "{:?}",
        anomalies[0].reasons
    );
    let binding = event("mallory", "create", "clusterrolebindings")
        .group(RBAC_GROUP)
        .name("backdoor")
        .object(json!({"roleRef": {"kind": "ClusterRole", "name": "backdoor"}, "subjects": [{"kind": "ServiceAccount", "name": "x", "namespace": "dev"}]}))
        .id("binding-1")
        .build();
    let anomalies = rules.evaluate(&binding);
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(anomalies[0].detector, "rbac.cluster_admin_binding");
    assert_eq!(anomalies[0].severity, Severity::Critical);
}

#[test]
fn patches_with_wildcards_are_caught_from_the_response_object() {
    let mut rules = fresh();
    let mut builder = event("alice", "patch", "roles")
        .group(RBAC_GROUP)
        .namespace("dev")
        .name("reader");
    builder = builder.set(&["responseObject"], json!({"kind": "Role", "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}));
    builder = builder
        .object(json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}));
    let anomalies = rules.evaluate(&builder.build());
    assert_eq!(anomalies.len(), 1);
    assert_eq!(
        anomalies[0].severity,
        Severity::Medium,
        "a namespaced role with wildcard verbs only"
    );
}

#[test]
fn escalation_and_sensitive_grants() {
    let mut rules = fresh();
    let role = event("alice", "create", "clusterroles")
        .group(RBAC_GROUP)
        .name("helper")
        .object(json!({"rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate", "bind"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}
        ]}))
        .build();
    let mut detectors = fired(&mut rules, role);
    detectors.sort();
    assert_eq!(
        detectors,
        vec!["rbac.escalation_grant", "rbac.sensitive_grant"]
    );
}

#[test]
fn a_narrow_role_change_is_quiet() {
    let mut rules = fresh();
    let role = event("platform-admin@example.com", "update", "roles")
        .group(RBAC_GROUP)
        .namespace("payments")
        .name("viewer")
        .object(json!({"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}]}))
        .build();
    assert!(fired(&mut rules, role).is_empty());
}

#[test]
fn broad_group_bindings_are_flagged_but_defaults_are_not() {
    let mut rules = fresh();
    let broad = event("alice", "create", "clusterrolebindings")
        .group(RBAC_GROUP)
        .name("everyone-edits")
        .object(json!({"roleRef": {"kind": "ClusterRole", "name": "edit"}, "subjects": [{"kind": "Group", "name": "system:authenticated"}]}))
        .build();
    assert_eq!(fired(&mut rules, broad), vec!["rbac.broad_group_binding"]);
    let default = event("alice", "create", "clusterrolebindings")
        .group(RBAC_GROUP)
        .name("discovery")
        .id("other")
        .object(json!({"roleRef": {"kind": "ClusterRole", "name": "system:discovery"}, "subjects": [{"kind": "Group", "name": "system:authenticated"}]}))
        .build();
    assert!(fired(&mut rules, default).is_empty());
}

#[test]
fn controllers_writing_rbac_are_quiet() {
    let mut rules = fresh();
    let aggregation = event("system:serviceaccount:kube-system:clusterrole-aggregation-controller", "update", "clusterroles")
        .group(RBAC_GROUP)
        .name("admin")
        .object(json!({"rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]}))
        .build();
    assert!(fired(&mut rules, aggregation).is_empty());
    let bootstrap = event("system:apiserver", "create", "clusterroles")
        .group(RBAC_GROUP)
        .name("cluster-admin")
        .object(json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}))
        .build();
    assert!(fired(&mut rules, bootstrap).is_empty());
}

#[test]
fn service_account_writing_critical_config() {
    let mut rules = fresh();
    let coredns = event("system:serviceaccount:ci:deployer", "patch", "configmaps")
        .namespace("kube-system")
        .name("coredns")
        .build();
    assert_eq!(
        fired(&mut rules, coredns),
        vec!["config.service_account_critical_write"]
    );
    let human = event("alice", "update", "configmaps")
        .namespace("kube-system")
        .name("aws-auth")
        .id("h")
        .build();
    assert_eq!(
        fired(&mut rules, human),
        vec!["config.critical_configmap_changed"]
    );
    let crd = event(
        "system:serviceaccount:ci:deployer",
        "create",
        "customresourcedefinitions",
    )
    .group("apiextensions.k8s.io")
    .name("x.example.com")
    .id("c")
    .build();
    assert_eq!(
        fired(&mut rules, crd),
        vec!["config.service_account_critical_write"]
    );
    let argo = event(
        "system:serviceaccount:argocd:argocd-application-controller",
        "create",
        "customresourcedefinitions",
    )
    .group("apiextensions.k8s.io")
    .id("argo")
    .build();
    let hits = rules.evaluate_hits(&argo);
    assert_eq!(
        hits[0].habit_keys,
        vec!["create customresourcedefinitions *"],
        "automation is silenced by habit, not by name"
    );
    let system = event("system:serviceaccount:ci:deployer", "patch", "configmaps")
        .namespace("kube-system")
        .name("my-app")
        .id("o")
        .build();
    let hits = rules.evaluate_hits(&system);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].anomaly.severity, Severity::Medium);
    assert_eq!(
        hits[0].habit_keys,
        vec!["patch configmaps kube-system"],
        "habitual writers may be silenced"
    );
    let ordinary = event("system:serviceaccount:ci:deployer", "patch", "configmaps")
        .namespace("app")
        .name("my-app")
        .id("o2")
        .build();
    assert!(fired(&mut rules, ordinary).is_empty());
    let coredns_hits = rules.evaluate_hits(
        &event("system:serviceaccount:ci:deployer", "update", "configmaps")
            .namespace("kube-system")
            .name("coredns")
            .id("o3")
            .build(),
    );
    assert!(
        coredns_hits[0].habit_keys.is_empty(),
        "critical config is never silenced by habit"
    );
}

#[test]
fn webhooks_changed() {
    let mut rules = fresh();
    let webhook = event("alice", "delete", "validatingwebhookconfigurations")
        .group("admissionregistration.k8s.io")
        .name("gatekeeper")
        .build();
    let anomalies = rules.evaluate(&webhook);
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].detector, "admission.webhook_changed");
    assert_eq!(anomalies[0].severity, Severity::High);
    let cainjector = event(
        "system:serviceaccount:cert-manager:cert-manager-cainjector",
        "patch",
        "mutatingwebhookconfigurations",
    )
    .group("admissionregistration.k8s.io")
    .id("ca")
    .build();
    let hits = rules.evaluate_hits(&cainjector);
    assert!(
        hits.iter().all(|hit| !hit.habit_keys.is_empty()),
        "a CA injector's routine patch may be silenced by habit"
    );
}

#[test]
fn exec_into_kube_system_is_high_and_counted_once_per_request() {
    let mut rules = fresh();
    let uri = "/api/v1/namespaces/kube-system/pods/etcd-0/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fkubernetes%2Fpki%2Fca.key&stdin=true";
    let started = event("alice", "create", "pods")
        .namespace("kube-system")
        .name("etcd-0")
        .subresource("exec")
        .uri(uri)
        .code(101)
        .stage("ResponseStarted")
        .build();
    let anomalies = rules.evaluate(&started);
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].detector, "workload.exec_system_namespace");
    assert!(
        anomalies[0]
            .reasons
            .iter()
            .any(|reason| reason.contains("cat /etc/kubernetes/pki/ca.key")),
        "{:?}",
        anomalies[0].reasons
    );
    let complete = event("alice", "create", "pods")
        .namespace("kube-system")
        .name("etcd-0")
        .subresource("exec")
        .uri(uri)
        .code(101)
        .build();
    assert!(
        rules.evaluate(&complete).is_empty(),
        "the ResponseComplete of the same request is not a second hit"
    );
    let received = event("bob", "create", "pods")
        .namespace("kube-system")
        .subresource("exec")
        .stage("RequestReceived")
        .id("r")
        .build();
    assert!(rules.evaluate(&received).is_empty());
}

#[test]
fn exec_elsewhere_is_low_with_a_habit_key_and_cools_down() {
    let mut rules = fresh();
    let first = event("alice", "create", "pods")
        .namespace("dev")
        .name("web-1")
        .subresource("exec")
        .code(101)
        .id("e1")
        .build();
    let hits = rules.evaluate_hits(&first);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].anomaly.severity, Severity::Low);
    // A person is silenced by working in the namespace at all.
    assert_eq!(hits[0].habit_keys, vec!["namespace:dev"]);
    let second = event("alice", "create", "pods")
        .namespace("dev")
        .name("web-2")
        .subresource("exec")
        .code(101)
        .id("e2")
        .at_minute(0)
        .build();
    let mut cool = fresh();
    let _ = cool.evaluate(
        &event("alice", "create", "pods")
            .namespace("dev")
            .subresource("exec")
            .id("x")
            .at_minute(0)
            .build(),
    );
    assert!(
        cool.evaluate(&second).is_empty(),
        "a second exec within the cooldown is folded"
    );
    let curl = event("bob", "create", "pods")
        .namespace("dev")
        .subresource("exec")
        .uri("/api/v1/namespaces/dev/pods/p/exec?command=curl&command=http%3A%2F%2F169.254.169.254%2Flatest")
        .id("e3")
        .build();
    let anomalies = rules.evaluate(&curl);
    assert_eq!(anomalies[0].severity, Severity::High);
}

#[test]
fn privileged_pods_by_people_and_by_controllers() {
    let mut rules = fresh();
    let spec = json!({"spec": {"hostPID": true, "containers": [{"name": "shell", "image": "alpine", "securityContext": {"privileged": true}}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}});
    let by_person = event("mallory", "create", "pods")
        .namespace("default")
        .object(spec.clone())
        .build();
    let anomalies = rules.evaluate(&by_person);
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].severity, Severity::High);
    assert!(
        anomalies[0]
            .reasons
            .iter()
            .any(|reason| reason.contains("hostPID"))
    );
    let mut controller_spec = spec.clone();
    controller_spec["metadata"] = json!({"generateName": "agent-", "ownerReferences": [{"kind": "DaemonSet", "name": "agent"}]});
    let system = event(
        "system:serviceaccount:kube-system:daemon-set-controller",
        "create",
        "pods",
    )
    .namespace("kube-system")
    .object(controller_spec.clone())
    .id("ds-1")
    .build();
    assert!(
        fired(&mut rules, system).is_empty(),
        "privileged daemon sets belong in kube-system"
    );
    let elsewhere = |id: &str| {
        event(
            "system:serviceaccount:kube-system:daemon-set-controller",
            "create",
            "pods",
        )
        .namespace("monitoring")
        .object(controller_spec.clone())
        .id(id)
        .build()
    };
    assert_eq!(
        fired(&mut rules, elsewhere("ds-2")),
        vec!["workload.privileged_pod"]
    );
    assert!(
        fired(&mut rules, elsewhere("ds-3")).is_empty(),
        "one report per owner"
    );
    let deployment = event("alice", "create", "deployments")
        .group("apps")
        .namespace("dev")
        .object(json!({"spec": {"template": {"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "nginx"}]}}}}))
        .id("dep")
        .build();
    let anomalies = rules.evaluate(&deployment);
    assert_eq!(anomalies[0].severity, Severity::Medium);
    let plain = event("alice", "create", "pods")
        .namespace("dev")
        .object(json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}}))
        .id("plain")
        .build();
    assert!(fired(&mut rules, plain).is_empty());
}

#[test]
fn node_proxy_csr_and_tokens() {
    let mut rules = fresh();
    let proxy = event("alice", "get", "nodes")
        .name("worker-1")
        .subresource("proxy")
        .uri("/api/v1/nodes/worker-1/proxy/pods")
        .build();
    assert_eq!(fired(&mut rules, proxy), vec!["node.proxy"]);
    let kubelet = event("system:node:worker-1", "get", "nodes")
        .name("worker-1")
        .subresource("proxy")
        .id("k")
        .build();
    assert!(fired(&mut rules, kubelet).is_empty());
    let create = event("mallory", "create", "certificatesigningrequests")
        .group("certificates.k8s.io")
        .name("mallory-csr")
        .object(json!({"metadata": {"name": "mallory-csr"}}))
        .id("csr-create")
        .build();
    assert!(fired(&mut rules, create).is_empty());
    let approve = event("mallory", "update", "certificatesigningrequests")
        .group("certificates.k8s.io")
        .name("mallory-csr")
        .subresource("approval")
        .id("csr-approve")
        .build();
    let anomalies = rules.evaluate(&approve);
    assert_eq!(anomalies[0].detector, "certificates.csr_approval");
    assert_eq!(
        anomalies[0].evidence_audit_ids,
        vec!["csr-approve", "csr-create"]
    );
    let auto = event(
        "system:serviceaccount:kube-system:certificate-controller",
        "update",
        "certificatesigningrequests",
    )
    .subresource("approval")
    .id("auto")
    .build();
    assert!(fired(&mut rules, auto).is_empty());
    let token = event("alice", "create", "serviceaccounts")
        .namespace("kube-system")
        .name("clusterrole-aggregation-controller")
        .subresource("token")
        .id("t1")
        .build();
    assert_eq!(
        fired(&mut rules, token),
        vec!["serviceaccount.privileged_token_request"]
    );
    let own = event("system:serviceaccount:app:web", "create", "serviceaccounts")
        .namespace("app")
        .name("web")
        .subresource("token")
        .id("t2")
        .build();
    assert!(fired(&mut rules, own).is_empty());
    let kubelet_token = event("system:node:worker-1", "create", "serviceaccounts")
        .namespace("kube-system")
        .name("coredns")
        .subresource("token")
        .id("t3")
        .build();
    assert!(fired(&mut rules, kubelet_token).is_empty());
}

#[test]
fn anonymous_and_impersonation() {
    let mut rules = fresh();
    let health = event("system:anonymous", "get", "")
        .uri("/healthz")
        .set(&["objectRef"], serde_json::Value::Null)
        .build();
    assert!(fired(&mut rules, health).is_empty());
    let secrets = event("system:anonymous", "list", "secrets")
        .uri("/api/v1/secrets")
        .id("anon")
        .build();
    let detectors = fired(&mut rules, secrets);
    assert!(
        detectors.contains(&"auth.anonymous_allowed".to_string()),
        "{detectors:?}"
    );
    let denied = event("system:anonymous", "list", "pods")
        .uri("/api/v1/pods")
        .code(403)
        .id("anon-denied")
        .build();
    assert!(fired(&mut rules, denied).is_empty());
    let impersonation = event("mallory", "list", "secrets")
        .namespace("prod")
        .impersonating("admin", &["system:masters"])
        .id("imp")
        .build();
    let anomalies = rules.evaluate(&impersonation);
    let hit = anomalies
        .iter()
        .find(|anomaly| anomaly.detector == "auth.impersonation")
        .expect("impersonation hit");
    assert_eq!(hit.identity, "mallory", "the impersonator is the identity");
    assert_eq!(hit.severity, Severity::High);
}

#[test]
fn forbidden_bursts_need_breadth() {
    let mut rules = fresh();
    // Twenty 403s on one resource: a misconfigured client, not enumeration.
    for index in 0..20 {
        let denied = event("bob", "get", "configmaps")
            .namespace("dev")
            .code(403)
            .id(&format!("same-{index}"))
            .at_minute(index / 4)
            .build();
        assert!(fired(&mut rules, denied).is_empty());
    }
    let resources = [
        "secrets",
        "pods",
        "nodes",
        "roles",
        "clusterroles",
        "deployments",
        "services",
        "configmaps",
        "serviceaccounts",
        "leases",
    ];
    let mut all = Vec::new();
    for (index, resource) in resources.iter().enumerate() {
        let denied = event("mallory", "list", resource)
            .namespace("prod")
            .code(403)
            .id(&format!("enum-{index}"))
            .at_minute(index as i64)
            .build();
        all.extend(rules.evaluate(&denied));
    }
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].detector, "auth.forbidden_burst");
    assert_eq!(all[0].evidence_audit_ids.len(), 10);
    assert_eq!(all[0].severity, Severity::High, "touches secrets");
}

#[test]
fn secret_enumeration_fast_and_low_and_slow() {
    let mut rules = fresh();
    let mut fast = Vec::new();
    for index in 0..12 {
        let read = event("system:serviceaccount:app:web", "get", "secrets")
            .namespace("app")
            .name(&format!("s-{index}"))
            .id(&format!("f-{index}"))
            .at_minute(index)
            .build();
        fast.extend(rules.evaluate(&read));
    }
    assert_eq!(fast.len(), 1);
    assert_eq!(fast[0].detector, "secrets.enumeration");
    let mut slow = Vec::new();
    for (index, namespace) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        let read = event("carol", "get", "secrets")
            .namespace(namespace)
            .name("db")
            .id(&format!("slow-{index}"))
            .at_minute(index as i64 * 50)
            .build();
        slow.extend(rules.evaluate(&read));
    }
    assert_eq!(slow.len(), 1, "four namespaces within six hours");
    assert_eq!(
        slow[0].evidence_audit_ids,
        vec!["slow-0", "slow-1", "slow-2", "slow-3"]
    );
    let kubelet = event("system:node:w1", "get", "secrets")
        .namespace("x")
        .name("y")
        .id("kubelet")
        .build();
    assert!(fired(&mut rules, kubelet).is_empty());
    let cluster_wide = event("dave", "list", "secrets")
        .uri("/api/v1/secrets")
        .id("all")
        .build();
    assert_eq!(
        fired(&mut rules, cluster_wide),
        vec!["secrets.cluster_wide_list"]
    );
}

#[test]
fn events_deleted_but_not_by_the_namespace_controller() {
    let mut rules = fresh();
    let person = event("mallory", "deletecollection", "events")
        .namespace("prod")
        .build();
    let anomalies = rules.evaluate(&person);
    assert_eq!(anomalies[0].detector, "audit.events_deleted");
    assert_eq!(anomalies[0].severity, Severity::High);
    let controller = event(
        "system:serviceaccount:kube-system:namespace-controller",
        "deletecollection",
        "events",
    )
    .namespace("old")
    .id("nc")
    .build();
    assert!(fired(&mut rules, controller).is_empty());
}

#[test]
fn audit_trail_is_off_by_default() {
    let secret = || {
        event("alice", "create", "secrets")
            .namespace("dev")
            .name("token")
            .build()
    };
    assert!(fresh().evaluate(&secret()).is_empty());
    let mut trail = RuleSet::new(RuleOptions {
        audit_trail: true,
        ..RuleOptions::default()
    });
    assert_eq!(fired(&mut trail, secret()), vec!["activity.secret_changed"]);
}

#[test]
fn exec_command_is_url_decoded() {
    assert_eq!(
        exec_command("/x/exec?command=ls&command=-la%20%2Ftmp&stdout=true").as_deref(),
        Some("ls -la /tmp")
    );
    assert_eq!(exec_command("/x/exec?stdout=true"), None);
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%zz"), "%zz");
}

proptest::proptest! {
    #[test]
    fn arbitrary_objects_never_panic(
        verb in proptest::sample::select(vec!["create", "update", "patch", "delete", "get", "list"]),
        resource in proptest::sample::select(vec!["roles", "clusterroles", "rolebindings", "clusterrolebindings", "pods", "deployments", "cronjobs", "configmaps", "secrets", "validatingwebhookconfigurations", "certificatesigningrequests"]),
        object in proptest::sample::select(vec![
            json!(null), json!([]), json!("text"), json!({"rules": "x"}), json!({"rules": [1, {"verbs": 5}]}),
            json!({"roleRef": 3, "subjects": {"a": 1}}), json!({"spec": {"containers": "x", "volumes": [null, {"hostPath": 1}]}}),
            json!({"spec": {"template": {"spec": {"hostPID": "yes", "containers": [{"securityContext": {"capabilities": {"add": "ALL"}}}]}}}}),
            json!([{"op": "add", "path": "/rules/0/verbs", "value": ["*"]}]), json!({"data": {"k": 7}}),
        ]),
        code in proptest::sample::select(vec![200, 201, 403, 500]),
    ) {
        let mut rules = fresh();
        let built = event("fuzzer", verb, resource).group(if resource.contains("role") { RBAC_GROUP } else { "" }).namespace("ns").object(object).code(code).build();
        let _ = rules.evaluate(&built);
    }
}
