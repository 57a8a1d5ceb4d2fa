//! Rules: what one request (or a short burst of them) says on its own.
//!
//! [`RuleSet::evaluate`] takes every decoded [`AuditEvent`] in time order, live
//! as lines are ingested or replayed from stored history, with the same code.
//! It looks at each request once, on its final stage (see
//! [`super::stages`]), and keeps only bounded state: sliding windows for 403
//! bursts and secret enumeration, a short cooldown per (rule, identity,
//! target) so a chatty session is one anomaly, and small caches (roles created
//! with wildcards, recent CSR creations) that let a later event cite an
//! earlier one as evidence.
//!
//! The catalogue of rules is data ([`RULES`]: id, default severity, title,
//! tier, whether habit may silence it); what each rule matches is code, since
//! most of them read a request object. An allow list of the built-in
//! controllers keeps a fresh cluster quiet ([`super::allowlist`]); add-ons are
//! deliberately *not* allow-listed by name for anything but workload templates
//! (a stolen Argo CD token is the attacker's favourite), habit covers them. Rules marked `habitual` may additionally be silenced
//! by the caller when the identity has done exactly this before (Prometheus
//! reading `nodes/proxy` every 30 s is its job; the first time anyone does it
//! is news): [`RuleHit::habit_keys`] names the actions, and
//! [`super::live::LiveDetector`] checks them against the novelty index.

pub mod objects;
pub mod windows;

use super::allowlist::IdentityPatterns;
use super::anomaly::{Anomaly, AnomalyKind, Severity, datetime_from_micros, stable_anomaly_id};
use super::stages::FinalStageFilter;
use crate::audit::{AuditEvent, IdentityKind};
use objects::{HostAccess, PolicyRule};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use windows::SlidingWindows;

const MINUTE: i64 = 60_000_000;

/// Whether a rule raises alerts or only records activity (Falco's
/// `kactivity` rules: every RBAC or secret write by a person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleTier {
    /// On by default: something a security engineer must look at.
    Alert,
    /// Off by default ([`RuleOptions::audit_trail`]): an info-level record of
    /// sensitive writes, for teams that want every one of them in the store.
    AuditTrail,
}

/// One rule of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct RuleSpec {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub tier: RuleTier,
    /// Whether the caller may silence a hit because the identity has done the
    /// same action before (within the novelty lookback).
    pub habitual: bool,
}

const fn rule(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    habitual: bool,
) -> RuleSpec {
    RuleSpec {
        id,
        severity,
        title,
        tier: RuleTier::Alert,
        habitual,
    }
}

/// The catalogue. Severities are the defaults; some rules raise or lower
/// them per event (a broad group subject, a write by an anonymous caller).
pub const RULES: &[RuleSpec] = &[
    rule(
        "rbac.wildcard_grant",
        Severity::High,
        "Role grants wildcard access",
        false,
    ),
    rule(
        "rbac.escalation_grant",
        Severity::High,
        "Role grants escalate, bind or impersonate",
        false,
    ),
    rule(
        "rbac.sensitive_grant",
        Severity::Medium,
        "Role grants exec, node proxy, tokens or secrets",
        false,
    ),
    rule(
        "rbac.cluster_admin_binding",
        Severity::Critical,
        "Binding to cluster-admin or a wildcard role",
        false,
    ),
    rule(
        "rbac.broad_group_binding",
        Severity::High,
        "Binding grants a role to every authenticated or anonymous caller",
        false,
    ),
    rule(
        "rbac.system_role_modified",
        Severity::High,
        "Built-in system role or binding modified",
        false,
    ),
    rule(
        "admission.webhook_changed",
        Severity::High,
        "Admission webhook configuration changed",
        true,
    ),
    rule(
        "config.service_account_critical_write",
        Severity::High,
        "Service account wrote RBAC, webhooks, CRDs or cluster config",
        true,
    ),
    rule(
        "config.critical_configmap_changed",
        Severity::Medium,
        "Critical cluster configuration changed",
        false,
    ),
    rule(
        "config.credentials_in_configmap",
        Severity::Medium,
        "Config map written with credentials in it",
        false,
    ),
    rule(
        "workload.exec_system_namespace",
        Severity::High,
        "Exec, attach or port-forward into a system namespace",
        false,
    ),
    rule(
        "workload.exec",
        Severity::Low,
        "Exec or attach into a pod",
        true,
    ),
    rule(
        "workload.privileged_pod",
        Severity::High,
        "Pod with privileged or host access",
        false,
    ),
    rule(
        "node.proxy",
        Severity::High,
        "Kubelet API reached through nodes/proxy",
        true,
    ),
    rule(
        "certificates.csr_approval",
        Severity::High,
        "Certificate signing request approved by hand",
        false,
    ),
    rule(
        "serviceaccount.privileged_token_request",
        Severity::High,
        "Token requested for a privileged service account",
        true,
    ),
    rule(
        "auth.anonymous_allowed",
        Severity::High,
        "Anonymous request allowed",
        false,
    ),
    rule(
        "auth.impersonation",
        Severity::Medium,
        "Request made by impersonating another identity",
        true,
    ),
    rule(
        "auth.forbidden_burst",
        Severity::Medium,
        "Burst of denied requests across resources",
        false,
    ),
    rule(
        "secrets.cluster_wide_list",
        Severity::High,
        "Secrets listed across all namespaces",
        true,
    ),
    rule(
        "secrets.enumeration",
        Severity::High,
        "Many distinct secrets read",
        true,
    ),
    rule(
        "audit.events_deleted",
        Severity::Medium,
        "Kubernetes events deleted",
        true,
    ),
    RuleSpec {
        id: "activity.rbac_changed",
        severity: Severity::Info,
        title: "RBAC object written by a person",
        tier: RuleTier::AuditTrail,
        habitual: false,
    },
    RuleSpec {
        id: "activity.secret_changed",
        severity: Severity::Info,
        title: "Secret written by a person",
        tier: RuleTier::AuditTrail,
        habitual: false,
    },
];

/// The catalogue entry of a rule id.
pub fn rule_spec(id: &str) -> Option<&'static RuleSpec> {
    RULES.iter().find(|spec| spec.id == id)
}

/// Tunables of the rule layer. The defaults are the values documented in
/// docs/DETECTION.md.
#[derive(Debug, Clone)]
pub struct RuleOptions {
    /// Built-in controllers: silent for every rule about writes they do as
    /// their job.
    pub controllers: IdentityPatterns,
    /// Platform automation (GitOps) whose privileged workloads are reported
    /// like a controller's (once per owner, never in system namespaces).
    pub automation: IdentityPatterns,
    /// Namespaces whose workloads legitimately run privileged (CNI, kube-proxy)
    /// and where exec is an alert of its own.
    pub system_namespaces: Vec<String>,
    /// Images trusted to run privileged (Falco's `falco_privileged_images`).
    pub trusted_images: Vec<String>,
    /// Record every RBAC and secret write by a person (info level).
    pub audit_trail: bool,
    /// 403 bursts: window, minimum denied requests, distinct targets and resources.
    pub forbidden_window_micros: i64,
    pub forbidden_min_requests: usize,
    pub forbidden_min_targets: usize,
    pub forbidden_min_resources: usize,
    /// Secret enumeration: distinct names in the short window.
    pub secrets_short_window_micros: i64,
    pub secrets_min_distinct_names: usize,
    /// Secret enumeration: distinct namespaces in the long window (low and slow).
    pub secrets_long_window_micros: i64,
    pub secrets_min_distinct_namespaces: usize,
    /// Quiet time per (rule, identity, target) after a hit of a chatty rule.
    pub cooldown_micros: i64,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            controllers: IdentityPatterns::builtin_controllers(),
            automation: IdentityPatterns::platform_automation(),
            system_namespaces: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
            trusted_images: Vec::new(),
            audit_trail: false,
            forbidden_window_micros: 30 * MINUTE,
            forbidden_min_requests: 10,
            forbidden_min_targets: 5,
            forbidden_min_resources: 3,
            secrets_short_window_micros: 30 * MINUTE,
            secrets_min_distinct_names: 10,
            secrets_long_window_micros: 6 * 60 * MINUTE,
            secrets_min_distinct_namespaces: 4,
            cooldown_micros: 10 * MINUTE,
        }
    }
}

/// A rule's verdict on one event or burst, before it becomes an [`Anomaly`].
#[derive(Debug, Clone)]
pub struct RuleHit {
    pub anomaly: Anomaly,
    /// The actions (`verb resource[/subresource] namespace`) this hit is about,
    /// for rules marked `habitual`; empty for the others.
    pub habit_keys: Vec<String>,
}

/// A denied request inside a 403-burst window.
#[derive(Debug, Clone)]
struct DeniedRequest {
    audit_id: String,
    target: String,
    resource: String,
    namespace: String,
}

/// A secret read inside an enumeration window.
#[derive(Debug, Clone)]
struct SecretRead {
    audit_id: String,
    namespace: String,
    name: String,
    verb: String,
}

/// The stateful rule evaluator. One per cluster.
#[derive(Debug)]
pub struct RuleSet {
    options: RuleOptions,
    cluster: String,
    stages: FinalStageFilter,
    forbidden: SlidingWindows<DeniedRequest>,
    secrets: SlidingWindows<SecretRead>,
    cooldowns: HashMap<String, i64>,
    /// `kind/namespace/name` of roles seen granting wildcards, so a later
    /// binding to one is as serious as a cluster-admin binding.
    wildcard_roles: HashSet<String>,
    /// CSR name → audit ID of its creation by a person or workload.
    csr_creations: HashMap<String, String>,
    /// Owners (namespace/kind/name) whose controller-created privileged pods were reported.
    reported_pod_owners: HashSet<String>,
    evaluated_requests: u64,
}

const CACHE_LIMIT: usize = 10_000;

fn remember<T: std::hash::Hash + Eq>(set: &mut HashSet<T>, value: T) {
    if set.len() >= CACHE_LIMIT {
        set.clear();
    }
    set.insert(value);
}

/// Facts of one event that almost every rule reads.
struct Facts<'a> {
    event: &'a AuditEvent,
    actor: &'a str,
    actor_kind: IdentityKind,
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    namespace: &'a str,
    name: &'a str,
    allowed: bool,
    controller: bool,
    automation: bool,
}

impl Facts<'_> {
    fn is_write(&self) -> bool {
        matches!(
            self.verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    fn is_modify(&self) -> bool {
        matches!(self.verb, "create" | "update" | "patch")
    }

    /// `kind namespace/name` as a person reads it.
    fn target(&self) -> String {
        let mut text = self.resource.to_string();
        if !self.subresource.is_empty() {
            text.push('/');
            text.push_str(self.subresource);
        }
        match (self.namespace, self.name) {
            ("", "") => text,
            ("", name) => format!("{text} {name}"),
            (namespace, "") => format!("{text} in {namespace}"),
            (namespace, name) => format!("{text} {namespace}/{name}"),
        }
    }

    /// `verb resource[/subresource] namespace`: the habit key of this action.
    fn action_key(&self) -> String {
        action_key(self.verb, self.resource, self.subresource, self.namespace)
    }

    /// Who, from where, with what: the reason line every rule hit carries.
    fn who(&self) -> String {
        let mut text = format!("{} by {}", self.verb, self.actor);
        if let Some(impersonated) = &self.event.impersonated_user
            && !impersonated.username.is_empty()
        {
            text.push_str(&format!(" as {}", impersonated.username));
        }
        if let Some(ip) = self.event.source_ip() {
            text.push_str(&format!(" from {ip}"));
        }
        if let Some(agent) = self
            .event
            .user_agent
            .as_deref()
            .filter(|agent| !agent.is_empty())
        {
            let short: String = agent.chars().take(80).collect();
            text.push_str(&format!(" ({short})"));
        }
        if let Some(code) = self.event.response_code() {
            text.push_str(&format!(", response {code}"));
        }
        text
    }
}

/// The habit key of an action: `verb resource[/subresource] namespace`
/// (`*` for cluster scope).
pub fn action_key(verb: &str, resource: &str, subresource: &str, namespace: &str) -> String {
    let namespace = if namespace.is_empty() { "*" } else { namespace };
    if subresource.is_empty() {
        format!("{verb} {resource} {namespace}")
    } else {
        format!("{verb} {resource}/{subresource} {namespace}")
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const WEBHOOK_RESOURCES: &[&str] = &[
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
];
const RBAC_RESOURCES: &[&str] = &[
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
];
/// Config maps that configure the cluster itself: DNS, networking, node
/// authentication (EKS), kubeadm and the API server's client-CA bundle.
const CRITICAL_CONFIGMAPS: &[(&str, &str)] = &[
    ("kube-system", "coredns"),
    ("kube-system", "kube-dns"),
    ("kube-system", "kube-proxy"),
    ("kube-system", "aws-auth"),
    ("kube-system", "kubeadm-config"),
    ("kube-system", "kubelet-config"),
    ("kube-system", "extension-apiserver-authentication"),
    ("kube-system", "cilium-config"),
    ("kube-system", "calico-config"),
    ("kube-system", "amazon-vpc-cni"),
    ("kube-public", "cluster-info"),
];
/// URIs anyone may read on a default cluster (`system:public-info-viewer`,
/// service-account issuer discovery).
const PUBLIC_PATHS: &[&str] = &[
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/.well-known/openid-configuration",
    "/openid/v1/jwks",
];
/// Service-account names that usually carry powerful roles.
const PRIVILEGED_SERVICE_ACCOUNT_MARKERS: &[&str] = &[
    "admin",
    "root",
    "controller",
    "operator",
    "deployer",
    "manager",
    "provisioner",
];
/// Roles a binding may grant to everyone without alarm (Kubernetes defaults).
const PUBLIC_ROLES: &[&str] = &[
    "system:basic-user",
    "system:discovery",
    "system:public-info-viewer",
    "system:service-account-issuer-discovery",
];

impl RuleSet {
    pub fn new(options: RuleOptions) -> RuleSet {
        RuleSet {
            forbidden: SlidingWindows::new(options.forbidden_window_micros, 256),
            secrets: SlidingWindows::new(options.secrets_long_window_micros, 512),
            options,
            cluster: "default".into(),
            stages: FinalStageFilter::default(),
            cooldowns: HashMap::new(),
            wildcard_roles: HashSet::new(),
            csr_creations: HashMap::new(),
            reported_pod_owners: HashSet::new(),
            evaluated_requests: 0,
        }
    }

    /// The cluster name written into every anomaly (default `default`).
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> RuleSet {
        self.cluster = cluster.into();
        self
    }

    pub fn options(&self) -> &RuleOptions {
        &self.options
    }

    /// Requests evaluated so far (final stages only).
    pub fn evaluated_requests(&self) -> u64 {
        self.evaluated_requests
    }

    /// Evaluates one event; returns the anomalies it completes.
    pub fn evaluate(&mut self, event: &AuditEvent) -> Vec<Anomaly> {
        self.evaluate_hits(event)
            .into_iter()
            .map(|hit| hit.anomaly)
            .collect()
    }

    /// Like [`RuleSet::evaluate`], keeping the habit keys of each hit.
    pub fn evaluate_hits(&mut self, event: &AuditEvent) -> Vec<RuleHit> {
        if !self.stages.is_final(event) {
            return Vec::new();
        }
        self.evaluate_request(event)
    }

    /// Evaluates an event already known to be the final stage of its request
    /// (the batch reader selects final stages in SQL).
    pub fn evaluate_request(&mut self, event: &AuditEvent) -> Vec<RuleHit> {
        self.evaluated_requests += 1;
        let actor = event.actor();
        let actor_identity = event.actor_identity();
        let facts = Facts {
            event,
            actor,
            actor_kind: actor_identity.kind,
            verb: event.verb.as_str(),
            group: event.api_group(),
            resource: event.resource().unwrap_or(""),
            subresource: event.subresource().unwrap_or(""),
            namespace: event.namespace().unwrap_or(""),
            name: event.object_name().unwrap_or(""),
            allowed: event.is_allowed(),
            controller: self.options.controllers.matches(actor),
            automation: self.options.automation.matches(actor),
        };
        let mut hits = Vec::new();
        if facts.group == RBAC_GROUP && RBAC_RESOURCES.contains(&facts.resource) {
            self.rbac_rules(&facts, &mut hits);
        }
        if WEBHOOK_RESOURCES.contains(&facts.resource) {
            self.webhook_rule(&facts, &mut hits);
        }
        self.critical_write_rules(&facts, &mut hits);
        if facts.resource == "pods"
            && matches!(facts.subresource, "exec" | "attach" | "portforward")
        {
            self.exec_rules(&facts, &mut hits);
        }
        if matches!(
            facts.resource,
            "pods"
                | "deployments"
                | "daemonsets"
                | "statefulsets"
                | "replicasets"
                | "jobs"
                | "cronjobs"
                | "replicationcontrollers"
        ) {
            self.privileged_pod_rule(&facts, &mut hits);
        }
        if facts.resource == "nodes" && facts.subresource == "proxy" {
            self.node_proxy_rule(&facts, &mut hits);
        }
        if facts.resource == "certificatesigningrequests" {
            self.csr_rules(&facts, &mut hits);
        }
        if facts.resource == "serviceaccounts" && facts.subresource == "token" {
            self.token_request_rule(&facts, &mut hits);
        }
        self.anonymous_rule(&facts, &mut hits);
        self.impersonation_rule(&facts, &mut hits);
        if event.is_denied() {
            self.forbidden_burst_rule(&facts, &mut hits);
        }
        if facts.resource == "secrets" {
            self.secret_rules(&facts, &mut hits);
        }
        if facts.resource == "events" {
            self.events_deleted_rule(&facts, &mut hits);
        }
        if self.options.audit_trail {
            self.audit_trail_rules(&facts, &mut hits);
        }
        hits
    }

    /// Builds a hit for a single event.
    fn single_event_hit(
        &self,
        facts: &Facts<'_>,
        rule_id: &'static str,
        severity: Severity,
        title: String,
        mut reasons: Vec<String>,
        habit_keys: Vec<String>,
    ) -> RuleHit {
        reasons.push(facts.who());
        let event = facts.event;
        self.hit(
            rule_id,
            facts.actor,
            severity,
            title,
            reasons,
            vec![event.audit_id.clone()],
            event.ts,
            event.stage_ts.max(event.ts),
            habit_keys,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn hit(
        &self,
        rule_id: &'static str,
        identity: &str,
        severity: Severity,
        title: String,
        reasons: Vec<String>,
        evidence: Vec<String>,
        window_start: i64,
        window_end: i64,
        habit_keys: Vec<String>,
    ) -> RuleHit {
        let habitual = rule_spec(rule_id).is_some_and(|spec| spec.habitual);
        RuleHit {
            anomaly: Anomaly {
                id: stable_anomaly_id(
                    &self.cluster,
                    rule_id,
                    identity,
                    window_start,
                    evidence.first().map(String::as_str),
                ),
                detector: rule_id.to_string(),
                kind: AnomalyKind::Rule,
                identity: identity.to_string(),
                cluster: self.cluster.clone(),
                window_start: datetime_from_micros(window_start),
                window_end: datetime_from_micros(window_end),
                severity,
                score: severity.rule_score(),
                title,
                reasons,
                evidence_audit_ids: evidence,
            },
            habit_keys: if habitual { habit_keys } else { Vec::new() },
        }
    }

    /// Whether (rule, identity, target) fired within the cooldown; if not,
    /// starts the cooldown.
    fn cooling_down(&mut self, rule_id: &str, identity: &str, target: &str, now: i64) -> bool {
        let key = format!("{rule_id}\u{1f}{identity}\u{1f}{target}");
        if let Some(until) = self.cooldowns.get(&key)
            && now < *until
        {
            return true;
        }
        if self.cooldowns.len() >= CACHE_LIMIT {
            self.cooldowns.retain(|_, until| *until > now);
            if self.cooldowns.len() >= CACHE_LIMIT {
                self.cooldowns.clear();
            }
        }
        self.cooldowns
            .insert(key, now + self.options.cooldown_micros);
        false
    }

    fn is_system_namespace(&self, namespace: &str) -> bool {
        self.options
            .system_namespaces
            .iter()
            .any(|system| system == namespace)
    }

    // ---- RBAC ---------------------------------------------------------------

    fn rbac_rules(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !facts.allowed || facts.controller || facts.actor_kind == IdentityKind::ControlPlane {
            return;
        }
        let is_system_object = facts.name.starts_with("system:");
        if is_system_object && matches!(facts.verb, "update" | "patch" | "delete") {
            let kind = match facts.resource {
                "clusterroles" => "ClusterRole",
                "clusterrolebindings" => "ClusterRoleBinding",
                "roles" => "Role",
                _ => "RoleBinding",
            };
            hits.push(self.single_event_hit(
                facts,
                "rbac.system_role_modified",
                Severity::High,
                format!("Built-in {kind} {} {}d", facts.name, past_tense_stem(facts.verb)),
                vec![format!("{kind} {} is maintained by Kubernetes; changing it changes what the control plane can do", facts.name)],
                Vec::new(),
            ));
        }
        if !facts.is_modify() {
            return;
        }
        let Some(object) = objects::written_object(facts.event) else {
            return;
        };
        match facts.resource {
            "roles" | "clusterroles" => self.role_content_rules(facts, &object, hits),
            _ => self.binding_rules(facts, &object, hits),
        }
    }

    fn role_content_rules(&mut self, facts: &Facts<'_>, object: &Value, hits: &mut Vec<RuleHit>) {
        let cluster_scoped = facts.resource == "clusterroles";
        let kind = if cluster_scoped {
            "ClusterRole"
        } else {
            "Role"
        };
        let role_label = role_label(kind, facts.namespace, facts.name);
        let rules = objects::policy_rules(object);
        let wildcard: Vec<&PolicyRule> = rules
            .iter()
            .filter(|rule| rule.has_wildcard_verb() || rule.has_wildcard_resource())
            .collect();
        if !wildcard.is_empty() {
            let full = wildcard
                .iter()
                .any(|rule| rule.has_wildcard_verb() && rule.has_wildcard_resource());
            let severity = match (cluster_scoped, full) {
                (true, true) => Severity::Critical,
                (true, false) | (false, true) => Severity::High,
                (false, false) => Severity::Medium,
            };
            let what = if full {
                "all verbs on all resources"
            } else {
                "wildcard access"
            };
            let mut reasons: Vec<String> = wildcard
                .iter()
                .map(|rule| format!("rule grants {}", rule.describe()))
                .collect();
            reasons.insert(
                0,
                format!("{role_label} {} grants {what}", past_tense(facts.verb)),
            );
            hits.push(self.single_event_hit(
                facts,
                "rbac.wildcard_grant",
                severity,
                format!("{role_label} grants {what}"),
                reasons,
                Vec::new(),
            ));
            remember(
                &mut self.wildcard_roles,
                format!("{kind}/{}/{}", facts.namespace, facts.name),
            );
        }
        let escalation: Vec<String> = rules
            .iter()
            .filter(|rule| !rule.has_wildcard_verb())
            .flat_map(|rule| {
                ["escalate", "bind", "impersonate"]
                    .into_iter()
                    .filter(|verb| rule.verbs.iter().any(|granted| granted == verb))
                    .map(move |verb| format!("{verb} via {}", rule.describe()))
            })
            .collect();
        if !escalation.is_empty() {
            let severity = if cluster_scoped {
                Severity::High
            } else {
                Severity::Medium
            };
            let mut reasons = vec![format!(
                "{role_label} {} with privilege-escalation verbs",
                past_tense(facts.verb)
            )];
            reasons.extend(escalation);
            hits.push(self.single_event_hit(
                facts,
                "rbac.escalation_grant",
                severity,
                format!("{role_label} grants escalate, bind or impersonate"),
                reasons,
                Vec::new(),
            ));
        }
        let sensitive: Vec<String> = rules
            .iter()
            .filter(|rule| !rule.has_wildcard_verb() && !rule.has_wildcard_resource())
            .flat_map(|rule| {
                let mut found = Vec::new();
                for (resource, verbs) in [
                    ("pods/exec", &["create", "get"][..]),
                    ("pods/attach", &["create", "get"][..]),
                    ("nodes/proxy", &["get", "create"][..]),
                    ("serviceaccounts/token", &["create"][..]),
                    (
                        "certificatesigningrequests/approval",
                        &["update", "patch"][..],
                    ),
                    ("secrets", &["get", "list", "watch"][..]),
                ] {
                    if rule.resources.iter().any(|granted| granted == resource)
                        && verbs.iter().any(|verb| rule.grants_verb(verb))
                    {
                        found.push(format!("{resource} via {}", rule.describe()));
                    }
                }
                found
            })
            .collect();
        if !sensitive.is_empty() {
            let severity = if cluster_scoped {
                Severity::Medium
            } else {
                Severity::Low
            };
            let mut reasons = vec![format!(
                "{role_label} {} with sensitive permissions",
                past_tense(facts.verb)
            )];
            reasons.extend(sensitive);
            hits.push(self.single_event_hit(
                facts,
                "rbac.sensitive_grant",
                severity,
                format!("{role_label} grants exec, node proxy, tokens or secrets"),
                reasons,
                Vec::new(),
            ));
        }
    }

    fn binding_rules(&mut self, facts: &Facts<'_>, object: &Value, hits: &mut Vec<RuleHit>) {
        let Some(binding) = objects::binding(object) else {
            return;
        };
        let cluster_scoped = facts.resource == "clusterrolebindings";
        let kind = if cluster_scoped {
            "ClusterRoleBinding"
        } else {
            "RoleBinding"
        };
        let binding_label = role_label(kind, facts.namespace, facts.name);
        let subjects: Vec<String> = binding
            .subjects
            .iter()
            .map(objects::Subject::describe)
            .collect();
        let broad: Vec<&objects::Subject> = binding
            .subjects
            .iter()
            .filter(|subject| subject.is_broad_group())
            .collect();
        let role_namespace = if binding.role_kind == "Role" {
            facts.namespace
        } else {
            ""
        };
        let wildcard_role = self.wildcard_roles.contains(&format!(
            "{}/{role_namespace}/{}",
            binding.role_kind, binding.role_name
        ));
        let admin_role = binding.role_kind == "ClusterRole" && binding.role_name == "cluster-admin";
        if admin_role || wildcard_role {
            let mut severity = if cluster_scoped {
                Severity::Critical
            } else {
                Severity::High
            };
            if !broad.is_empty()
                || binding
                    .subjects
                    .iter()
                    .any(objects::Subject::is_service_account)
            {
                severity = severity.raised();
            }
            let role_text = if admin_role {
                "cluster-admin".to_string()
            } else {
                format!(
                    "{} {} (granted wildcards earlier)",
                    binding.role_kind, binding.role_name
                )
            };
            let mut reasons = vec![
                format!(
                    "{binding_label} {} binding {role_text}",
                    past_tense(facts.verb)
                ),
                format!("subjects: {}", subjects.join(", ")),
            ];
            if !broad.is_empty() {
                reasons.push("a subject is a group that includes every authenticated, anonymous or service-account caller".into());
            }
            hits.push(self.single_event_hit(
                facts,
                "rbac.cluster_admin_binding",
                severity,
                format!(
                    "{binding_label} binds {role_text} to {}",
                    short_list(&subjects)
                ),
                reasons,
                Vec::new(),
            ));
        } else if !broad.is_empty() && !PUBLIC_ROLES.contains(&binding.role_name.as_str()) {
            let broad_names: Vec<String> = broad.iter().map(|subject| subject.describe()).collect();
            hits.push(self.single_event_hit(
                facts,
                "rbac.broad_group_binding",
                Severity::High,
                format!(
                    "{binding_label} grants {} {} to {}",
                    binding.role_kind,
                    binding.role_name,
                    broad_names.join(", ")
                ),
                vec![
                    format!(
                        "{binding_label} {} for {} {}",
                        past_tense(facts.verb),
                        binding.role_kind,
                        binding.role_name
                    ),
                    format!("subjects: {}", subjects.join(", ")),
                ],
                Vec::new(),
            ));
        }
    }

    // ---- admission webhooks -------------------------------------------------

    fn webhook_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !facts.allowed || !facts.is_write() || facts.controller {
            return;
        }
        if facts.actor_kind == IdentityKind::ControlPlane {
            return;
        }
        let severity = if matches!(facts.verb, "delete" | "deletecollection")
            || facts.actor_kind != IdentityKind::User
        {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut reasons = vec![format!("{} {}", facts.target(), past_tense(facts.verb))];
        if let Some(object) = objects::written_object(facts.event) {
            reasons.extend(webhook_details(&object));
        }
        // A CA injector patching caBundle on every rotation is habit; a webhook
        // created or deleted, or edited by a person, never is.
        let habit = if matches!(facts.verb, "update" | "patch")
            && facts.actor_kind == IdentityKind::ServiceAccount
        {
            vec![facts.action_key()]
        } else {
            Vec::new()
        };
        hits.push(self.single_event_hit(
            facts,
            "admission.webhook_changed",
            severity,
            format!(
                "Admission configuration {} {}",
                facts.name_or_resource(),
                past_tense(facts.verb)
            ),
            reasons,
            habit,
        ));
    }

    // ---- critical configuration -------------------------------------------

    fn critical_write_rules(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !facts.allowed || !facts.is_write() || facts.controller {
            return;
        }
        let critical_configmap = facts.resource == "configmaps"
            && CRITICAL_CONFIGMAPS
                .iter()
                .any(|(namespace, name)| *namespace == facts.namespace && *name == facts.name);
        let system_configmap =
            facts.resource == "configmaps" && self.is_system_namespace(facts.namespace);
        // (category, whether a habitual writer may be silenced)
        let category = if RBAC_RESOURCES.contains(&facts.resource) && facts.group == RBAC_GROUP {
            Some(("RBAC", true))
        } else if WEBHOOK_RESOURCES.contains(&facts.resource) {
            Some(("admission webhooks", true))
        } else if facts.resource == "customresourcedefinitions" {
            Some(("custom resource definitions", true))
        } else if facts.resource == "apiservices" {
            Some(("aggregated API services", true))
        } else if critical_configmap {
            Some(("critical cluster configuration", false))
        } else if system_configmap {
            Some(("configuration in a system namespace", true))
        } else {
            None
        };
        if facts.actor_kind == IdentityKind::ServiceAccount
            && let Some((category, may_be_habit)) = category
        {
            // An operator that writes its CRDs or roles on every sync is doing
            // its job once that is its habit; the content rules (wildcards,
            // cluster-admin bindings, webhooks created or deleted) still fire.
            let habit = if may_be_habit {
                vec![facts.action_key()]
            } else {
                Vec::new()
            };
            let severity = if critical_configmap || category == "RBAC" {
                Severity::High
            } else {
                Severity::Medium
            };
            hits.push(self.single_event_hit(
                facts,
                "config.service_account_critical_write",
                severity,
                format!("Service account {} {} {}", facts.actor, past_tense(facts.verb), facts.target()),
                vec![format!(
                    "service accounts rarely write {category}; a stolen or over-privileged workload token does"
                )],
                habit,
            ));
        } else if critical_configmap && facts.actor_kind != IdentityKind::ControlPlane {
            hits.push(self.single_event_hit(
                facts,
                "config.critical_configmap_changed",
                Severity::Medium,
                format!(
                    "Cluster configuration {}/{} {}",
                    facts.namespace,
                    facts.name,
                    past_tense(facts.verb)
                ),
                vec![format!(
                    "config map {}/{} configures DNS, networking or node authentication",
                    facts.namespace, facts.name
                )],
                Vec::new(),
            ));
        }
        if facts.resource == "configmaps"
            && facts.is_modify()
            && facts.actor_kind != IdentityKind::ControlPlane
        {
            let found = objects::written_object(facts.event)
                .map(|object| objects::configmap_credentials(&object))
                .unwrap_or_default();
            if !found.is_empty() {
                hits.push(self.single_event_hit(
                    facts,
                    "config.credentials_in_configmap",
                    Severity::Medium,
                    format!("Config map {} holds credentials", facts.target()),
                    vec![
                        format!("credential markers in data: {}", found.join(", ")),
                        "config maps are readable by far more identities than secrets".into(),
                    ],
                    Vec::new(),
                ));
            }
        }
    }

    // ---- workloads ----------------------------------------------------------

    fn exec_rules(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !facts.allowed || facts.controller || !matches!(facts.verb, "create" | "get") {
            return;
        }
        let command = exec_command(&facts.event.request_uri);
        let mut reasons = vec![format!(
            "{} into pod {}/{}",
            facts.subresource, facts.namespace, facts.name
        )];
        if let Some(command) = &command {
            reasons.push(format!("command: {command}"));
        }
        let suspicious_command = command.as_deref().is_some_and(is_suspicious_command);
        if self.is_system_namespace(facts.namespace) {
            if self.cooling_down(
                "workload.exec_system_namespace",
                facts.actor,
                &format!("{}/{}", facts.namespace, facts.name),
                facts.event.ts,
            ) {
                return;
            }
            let severity = if suspicious_command {
                Severity::Critical
            } else {
                Severity::High
            };
            hits.push(self.single_event_hit(
                facts,
                "workload.exec_system_namespace",
                severity,
                format!(
                    "{} into {}/{} by {}",
                    facts.subresource, facts.namespace, facts.name, facts.actor
                ),
                reasons,
                Vec::new(),
            ));
            return;
        }
        if facts.subresource == "portforward" {
            return;
        }
        // A suspicious command is reported even while the rule cools down.
        if !suspicious_command
            && self.cooling_down(
                "workload.exec",
                facts.actor,
                facts.namespace,
                facts.event.ts,
            )
        {
            return;
        }
        let mut severity = if facts.actor_kind == IdentityKind::User {
            Severity::Low
        } else {
            Severity::Medium
        };
        if suspicious_command {
            severity = severity.raised().raised();
            reasons.push("the command fetches, connects out or reads credentials".into());
        }
        // People exec into their own applications' pods as part of the job
        // (Falco's "Attach/Exec Pod" is the rule its users silence first): a
        // person who already works in the namespace is silent unless the
        // command is suspicious; a workload must have exec'd there before.
        // A suspicious command is never a habit.
        let habit = if suspicious_command {
            Vec::new()
        } else if facts.actor_kind == IdentityKind::User {
            vec![crate::detect::novelty::namespace_habit_key(facts.namespace)]
        } else {
            vec![facts.action_key()]
        };
        hits.push(self.single_event_hit(
            facts,
            "workload.exec",
            severity,
            format!(
                "{} into {}/{} by {}",
                facts.subresource, facts.namespace, facts.name, facts.actor
            ),
            reasons,
            habit,
        ));
    }

    fn privileged_pod_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !facts.allowed {
            return;
        }
        let ephemeral = facts.resource == "pods" && facts.subresource == "ephemeralcontainers";
        let pod_create =
            facts.resource == "pods" && facts.subresource.is_empty() && facts.verb == "create";
        let workload_write =
            facts.resource != "pods" && facts.subresource.is_empty() && facts.is_modify();
        if !(ephemeral || pod_create || workload_write) {
            return;
        }
        // Controllers write workloads only as a consequence of someone else's
        // write, which this rule already saw.
        if workload_write && facts.controller {
            return;
        }
        let Some(object) = objects::written_object(facts.event) else {
            return;
        };
        let Some(spec) = objects::pod_spec(facts.resource, &object) else {
            return;
        };
        let access: HostAccess = objects::host_access(spec, &self.options.trusted_images);
        if access.is_empty() {
            return;
        }
        let system_namespace = self.is_system_namespace(facts.namespace);
        let severity = if facts.controller || facts.automation {
            // A controller creating a pod from a template: report once per owner,
            // and not at all in the namespaces where privileged pods belong.
            if system_namespace
                || !(access.is_node_takeover() || access.host_network || access.host_ipc)
            {
                return;
            }
            let owner = owner_reference(&object).unwrap_or_else(|| facts.name.to_string());
            let owner_key = format!("{}/{owner}", facts.namespace);
            if self.reported_pod_owners.contains(&owner_key) {
                return;
            }
            remember(&mut self.reported_pod_owners, owner_key);
            if access.is_node_takeover() {
                Severity::Medium
            } else {
                Severity::Low
            }
        } else if access.is_node_takeover() {
            Severity::High
        } else if access.host_network || access.host_ipc {
            Severity::Medium
        } else {
            Severity::Low
        };
        let object_name = object
            .get("metadata")
            .and_then(|metadata| {
                metadata
                    .get("name")
                    .or_else(|| metadata.get("generateName"))
            })
            .and_then(Value::as_str)
            .unwrap_or(facts.name);
        let what = if ephemeral {
            "ephemeral container"
        } else {
            singular(facts.resource)
        };
        let mut reasons = vec![format!(
            "{what} {}/{object_name} {}",
            facts.namespace,
            past_tense(facts.verb)
        )];
        reasons.extend(access.reasons());
        hits.push(self.single_event_hit(
            facts,
            "workload.privileged_pod",
            severity,
            format!(
                "{what} {}/{object_name} with {}",
                facts.namespace,
                access_summary(&access)
            ),
            reasons,
            Vec::new(),
        ));
    }

    // ---- nodes, certificates, tokens ---------------------------------------

    fn node_proxy_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !facts.allowed || facts.controller || facts.actor_kind == IdentityKind::ControlPlane {
            return;
        }
        if self.cooling_down("node.proxy", facts.actor, facts.name, facts.event.ts) {
            return;
        }
        let path = facts
            .event
            .request_uri
            .split_once("/proxy")
            .map(|(_, rest)| rest)
            .unwrap_or("");
        let habit = vec![action_key(facts.verb, "nodes", "proxy", "")];
        hits.push(self.single_event_hit(
            facts,
            "node.proxy",
            Severity::High,
            format!(
                "Kubelet API of node {} reached by {}",
                facts.name, facts.actor
            ),
            vec![format!(
                "nodes/proxy gives full kubelet access (exec in any pod on the node); path {}",
                if path.is_empty() { "/" } else { path }
            )],
            habit,
        ));
    }

    fn csr_rules(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if facts.verb == "create"
            && facts.subresource.is_empty()
            && facts.allowed
            && !facts.controller
        {
            if self.csr_creations.len() >= CACHE_LIMIT {
                self.csr_creations.clear();
            }
            let name = objects::written_object(facts.event)
                .and_then(|object| {
                    object
                        .get("metadata")?
                        .get("name")?
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap_or_else(|| facts.name.to_string());
            self.csr_creations
                .insert(name, facts.event.audit_id.clone());
            return;
        }
        if facts.subresource != "approval"
            || !matches!(facts.verb, "update" | "patch")
            || !facts.allowed
            || facts.controller
        {
            return;
        }
        let mut evidence = vec![facts.event.audit_id.clone()];
        let mut reasons = vec![format!(
            "certificate signing request {} approved outside the built-in approver",
            facts.name
        )];
        if let Some(creation) = self.csr_creations.get(facts.name) {
            evidence.push(creation.clone());
            reasons.push("the request was created recently by a person or workload (creation cited as evidence)".into());
        }
        reasons.push(facts.who());
        let event = facts.event;
        hits.push(self.hit(
            "certificates.csr_approval",
            facts.actor,
            Severity::High,
            format!("CSR {} approved by {}", facts.name, facts.actor),
            reasons,
            evidence,
            event.ts,
            event.stage_ts.max(event.ts),
            Vec::new(),
        ));
    }

    fn token_request_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if facts.verb != "create"
            || !facts.allowed
            || facts.controller
            || facts.actor_kind == IdentityKind::ControlPlane
        {
            return;
        }
        let system_namespace = self.is_system_namespace(facts.namespace);
        let marker = PRIVILEGED_SERVICE_ACCOUNT_MARKERS
            .iter()
            .find(|marker| facts.name.contains(**marker));
        if !system_namespace && marker.is_none() {
            return;
        }
        // A workload asking for its own token is normal.
        if facts.actor == format!("system:serviceaccount:{}:{}", facts.namespace, facts.name) {
            return;
        }
        let why = if system_namespace {
            format!(
                "service accounts in {} run the control plane and its add-ons",
                facts.namespace
            )
        } else {
            format!(
                "the service account's name contains {:?}, which usually means a powerful role",
                marker.copied().unwrap_or("")
            )
        };
        let habit = vec![facts.action_key()];
        hits.push(self.single_event_hit(
            facts,
            "serviceaccount.privileged_token_request",
            Severity::High,
            format!(
                "Token requested for service account {}/{} by {}",
                facts.namespace, facts.name, facts.actor
            ),
            vec![why],
            habit,
        ));
    }

    // ---- authentication -----------------------------------------------------

    fn anonymous_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        let unauthenticated = facts.actor_kind == IdentityKind::Anonymous
            || facts
                .event
                .user
                .groups
                .iter()
                .any(|group| group == "system:unauthenticated");
        if !unauthenticated || !facts.allowed {
            return;
        }
        let path = facts.event.request_uri.split('?').next().unwrap_or("");
        if PUBLIC_PATHS
            .iter()
            .any(|public| path == *public || path.starts_with(&format!("{public}/")))
        {
            return;
        }
        if self.cooling_down(
            "auth.anonymous_allowed",
            facts.actor,
            &format!("{} {path}", facts.verb),
            facts.event.ts,
        ) {
            return;
        }
        let severity = if facts.is_write() {
            Severity::Critical
        } else {
            Severity::High
        };
        hits.push(self.single_event_hit(
            facts,
            "auth.anonymous_allowed",
            severity,
            format!("Anonymous {} {} allowed", facts.verb, path),
            vec!["a request without credentials was authorized beyond health and version endpoints".into()],
            Vec::new(),
        ));
    }

    fn impersonation_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        let Some(impersonated) = facts
            .event
            .impersonated_user
            .as_ref()
            .filter(|user| !user.username.is_empty())
        else {
            return;
        };
        if !facts.allowed || facts.controller || facts.actor_kind == IdentityKind::ControlPlane {
            return;
        }
        let target = impersonated.username.as_str();
        let target_kind = crate::audit::Identity::classify(target);
        let privileged_group = impersonated
            .groups
            .iter()
            .any(|group| group == "system:masters");
        let privileged = privileged_group
            || target.contains("admin")
            || target_kind.kind == IdentityKind::ControlPlane
            || target_kind.kind == IdentityKind::Node
            || target_kind
                .service_account_namespace
                .is_some_and(|namespace| self.is_system_namespace(namespace));
        if self.cooling_down("auth.impersonation", facts.actor, target, facts.event.ts) {
            return;
        }
        let severity = if privileged {
            Severity::High
        } else {
            Severity::Low
        };
        let mut reasons = vec![format!("{} acted as {target}", facts.actor)];
        if !impersonated.groups.is_empty() {
            reasons.push(format!(
                "impersonated groups: {}",
                impersonated.groups.join(", ")
            ));
        }
        if privileged {
            reasons.push("the impersonated identity is an administrator, a node or part of the control plane".into());
        }
        let habit = if privileged {
            Vec::new()
        } else {
            vec![format!("impersonate {target}")]
        };
        let mut hit = self.single_event_hit(
            facts,
            "auth.impersonation",
            severity,
            format!("{} impersonated {target}", facts.actor),
            reasons,
            habit,
        );
        if privileged {
            hit.habit_keys.clear();
        }
        hits.push(hit);
    }

    fn forbidden_burst_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if facts.controller {
            return;
        }
        let resource = if facts.resource.is_empty() {
            facts
                .event
                .request_uri
                .split('?')
                .next()
                .unwrap_or("")
                .to_string()
        } else if facts.subresource.is_empty() {
            facts.resource.to_string()
        } else {
            format!("{}/{}", facts.resource, facts.subresource)
        };
        let entry = DeniedRequest {
            audit_id: facts.event.audit_id.clone(),
            target: format!("{} {resource} {}", facts.verb, facts.namespace),
            resource,
            namespace: facts.namespace.to_string(),
        };
        let window_micros = self.forbidden.window_micros();
        let now = facts.event.ts;
        let (minimum_requests, minimum_targets, minimum_resources) = (
            self.options.forbidden_min_requests,
            self.options.forbidden_min_targets,
            self.options.forbidden_min_resources,
        );
        let Some(window) = self.forbidden.push(facts.actor, now, entry) else {
            return;
        };
        if window.entries.len() < minimum_requests {
            return;
        }
        let targets: BTreeSet<&str> = window
            .entries
            .iter()
            .map(|(_, denied)| denied.target.as_str())
            .collect();
        let resources: BTreeSet<&str> = window
            .entries
            .iter()
            .map(|(_, denied)| denied.resource.as_str())
            .collect();
        if targets.len() < minimum_targets || resources.len() < minimum_resources {
            return;
        }
        let namespace_count = window
            .entries
            .iter()
            .map(|(_, denied)| denied.namespace.as_str())
            .filter(|namespace| !namespace.is_empty())
            .collect::<BTreeSet<&str>>()
            .len();
        let count = window.entries.len();
        let start = window.entries.front().map(|(ts, _)| *ts).unwrap_or(now);
        let evidence: Vec<String> = window
            .entries
            .iter()
            .map(|(_, denied)| denied.audit_id.clone())
            .collect();
        let resource_count = resources.len();
        let resource_list: Vec<String> = resources
            .iter()
            .take(12)
            .map(|resource| resource.to_string())
            .collect();
        let touches_secrets = resources
            .iter()
            .any(|resource| resource.starts_with("secrets"));
        windows::fire(window, now, window_micros);
        let mut severity = Severity::Medium;
        if facts.actor_kind != IdentityKind::User
            || namespace_count >= 3
            || touches_secrets
            || count >= 25
        {
            severity = Severity::High;
        }
        let reasons = vec![
            format!(
                "{count} denied requests in {} min across {resource_count} resources and {namespace_count} namespaces",
                (now - start) / MINUTE + 1
            ),
            format!("resources: {}", resource_list.join(", ")),
            facts.who(),
        ];
        hits.push(self.hit(
            "auth.forbidden_burst",
            facts.actor,
            severity,
            format!(
                "{} denied {count} times across {resource_count} resources",
                facts.actor
            ),
            reasons,
            evidence,
            start,
            now,
            Vec::new(),
        ));
    }

    // ---- secrets and events -------------------------------------------------

    fn secret_rules(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !matches!(facts.verb, "get" | "list" | "watch") || facts.controller {
            return;
        }
        if facts.actor_kind == IdentityKind::Node || facts.actor_kind == IdentityKind::ControlPlane
        {
            return;
        }
        if facts.name.starts_with("sh.helm.release.") {
            return;
        }
        if facts.allowed && facts.namespace.is_empty() && matches!(facts.verb, "list" | "watch") {
            if !self.cooling_down("secrets.cluster_wide_list", facts.actor, "", facts.event.ts) {
                let habit = vec![facts.action_key()];
                hits.push(self.single_event_hit(
                    facts,
                    "secrets.cluster_wide_list",
                    Severity::High,
                    format!("{} listed secrets in every namespace", facts.actor),
                    vec![
                        "a cluster-wide secret list returns every credential in the cluster".into(),
                    ],
                    habit,
                ));
            }
            return;
        }
        let entry = SecretRead {
            audit_id: facts.event.audit_id.clone(),
            namespace: facts.namespace.to_string(),
            name: facts.name.to_string(),
            verb: facts.verb.to_string(),
        };
        let now = facts.event.ts;
        let short_horizon = now - self.options.secrets_short_window_micros;
        let (minimum_names, minimum_namespaces) = (
            self.options.secrets_min_distinct_names,
            self.options.secrets_min_distinct_namespaces,
        );
        let long_window = self.secrets.window_micros();
        let Some(window) = self.secrets.push(facts.actor, now, entry) else {
            return;
        };
        let names: BTreeSet<(&str, &str)> = window
            .entries
            .iter()
            .filter(|(ts, read)| *ts >= short_horizon && !read.name.is_empty())
            .map(|(_, read)| (read.namespace.as_str(), read.name.as_str()))
            .collect();
        let namespaces: BTreeSet<&str> = window
            .entries
            .iter()
            .map(|(_, read)| read.namespace.as_str())
            .filter(|namespace| !namespace.is_empty())
            .collect();
        let many_names = names.len() >= minimum_names;
        let many_namespaces = namespaces.len() >= minimum_namespaces;
        if !many_names && !many_namespaces {
            return;
        }
        let start = window.entries.front().map(|(ts, _)| *ts).unwrap_or(now);
        let evidence: Vec<String> = window
            .entries
            .iter()
            .map(|(_, read)| read.audit_id.clone())
            .collect();
        let habit: Vec<String> = window
            .entries
            .iter()
            .map(|(_, read)| action_key(&read.verb, "secrets", "", &read.namespace))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let name_count = names.len();
        let namespace_count = namespaces.len();
        let namespace_list: Vec<String> = namespaces
            .iter()
            .take(12)
            .map(|namespace| namespace.to_string())
            .collect();
        let request_count = window.entries.len();
        windows::fire(window, now, long_window);
        let mut reasons = Vec::new();
        if many_names {
            reasons.push(format!(
                "{name_count} distinct secrets read within {} min",
                self.options.secrets_short_window_micros / MINUTE
            ));
        }
        if many_namespaces {
            reasons.push(format!(
                "secrets read in {namespace_count} namespaces within {} h: {}",
                long_window / (60 * MINUTE),
                namespace_list.join(", ")
            ));
        }
        let title = format!(
            "{} read secrets in {namespace_count} namespaces ({request_count} requests)",
            facts.actor
        );
        reasons.push(facts.who());
        hits.push(self.hit(
            "secrets.enumeration",
            facts.actor,
            Severity::High,
            title,
            reasons,
            evidence,
            start,
            now,
            habit,
        ));
    }

    fn events_deleted_rule(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !matches!(facts.verb, "delete" | "deletecollection")
            || !facts.allowed
            || facts.controller
        {
            return;
        }
        if facts.actor_kind == IdentityKind::ControlPlane {
            return;
        }
        if self.cooling_down(
            "audit.events_deleted",
            facts.actor,
            facts.namespace,
            facts.event.ts,
        ) {
            return;
        }
        let severity = if facts.verb == "deletecollection" {
            Severity::High
        } else {
            Severity::Medium
        };
        let habit = vec![facts.action_key()];
        hits.push(self.single_event_hit(
            facts,
            "audit.events_deleted",
            severity,
            format!(
                "Events {} in {} by {}",
                past_tense(facts.verb),
                if facts.namespace.is_empty() {
                    "all namespaces"
                } else {
                    facts.namespace
                },
                facts.actor
            ),
            vec!["deleting events erases the cluster's own record of what just happened".into()],
            habit,
        ));
    }

    // ---- audit trail (off by default) --------------------------------------

    fn audit_trail_rules(&mut self, facts: &Facts<'_>, hits: &mut Vec<RuleHit>) {
        if !facts.allowed
            || !facts.is_write()
            || facts.actor.starts_with("system:")
            || !facts.subresource.is_empty()
        {
            return;
        }
        if facts.group == RBAC_GROUP && RBAC_RESOURCES.contains(&facts.resource) {
            hits.push(self.single_event_hit(
                facts,
                "activity.rbac_changed",
                Severity::Info,
                format!("{} {}", facts.target(), past_tense(facts.verb)),
                Vec::new(),
                Vec::new(),
            ));
        }
        if facts.resource == "secrets" && !self.is_system_namespace(facts.namespace) {
            let token_secret = objects::written_object(facts.event)
                .and_then(|object| {
                    object
                        .get("type")?
                        .as_str()
                        .map(|kind| kind == "kubernetes.io/service-account-token")
                })
                .unwrap_or(false);
            if !token_secret {
                hits.push(self.single_event_hit(
                    facts,
                    "activity.secret_changed",
                    Severity::Info,
                    format!("{} {}", facts.target(), past_tense(facts.verb)),
                    Vec::new(),
                    Vec::new(),
                ));
            }
        }
    }
}

impl Facts<'_> {
    fn name_or_resource(&self) -> &str {
        if self.name.is_empty() {
            self.resource
        } else {
            self.name
        }
    }
}

fn role_label(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    }
}

fn past_tense(verb: &str) -> &'static str {
    match verb {
        "create" => "created",
        "update" => "updated",
        "patch" => "patched",
        "delete" => "deleted",
        "deletecollection" => "deleted (collection)",
        "get" => "read",
        "list" => "listed",
        "watch" => "watched",
        _ => "changed",
    }
}

fn past_tense_stem(verb: &str) -> &'static str {
    match verb {
        "update" => "update",
        "patch" => "patche",
        "delete" => "delete",
        _ => "change",
    }
}

fn singular(resource: &str) -> &str {
    match resource {
        "pods" => "pod",
        "deployments" => "deployment",
        "daemonsets" => "daemonset",
        "statefulsets" => "statefulset",
        "replicasets" => "replicaset",
        "jobs" => "job",
        "cronjobs" => "cronjob",
        "replicationcontrollers" => "replicationcontroller",
        other => other,
    }
}

fn short_list(items: &[String]) -> String {
    match items.len() {
        0 => "no subjects".into(),
        1..=2 => items.join(", "),
        count => format!("{}, {} and {} more", items[0], items[1], count - 2),
    }
}

fn access_summary(access: &HostAccess) -> String {
    let mut parts = Vec::new();
    if !access.privileged_containers.is_empty() {
        parts.push("privileged containers");
    }
    if !access.dangerous_capabilities.is_empty() {
        parts.push("added capabilities");
    }
    if access.host_pid {
        parts.push("hostPID");
    }
    if access.host_ipc {
        parts.push("hostIPC");
    }
    if access.host_network {
        parts.push("hostNetwork");
    }
    if !access.sensitive_host_paths.is_empty() {
        parts.push("sensitive hostPath mounts");
    } else if !access.other_host_paths.is_empty() {
        parts.push("hostPath mounts");
    }
    parts.join(", ")
}

fn owner_reference(object: &Value) -> Option<String> {
    let owner = object
        .get("metadata")?
        .get("ownerReferences")?
        .as_array()?
        .first()?;
    Some(format!(
        "{}/{}",
        owner.get("kind").and_then(Value::as_str).unwrap_or("?"),
        owner.get("name").and_then(Value::as_str).unwrap_or("?")
    ))
}

fn webhook_details(object: &Value) -> Vec<String> {
    let Some(Value::Array(webhooks)) = object.get("webhooks") else {
        return Vec::new();
    };
    webhooks
        .iter()
        .take(4)
        .map(|webhook| {
            let name = webhook.get("name").and_then(Value::as_str).unwrap_or("?");
            let client = webhook.get("clientConfig");
            let target = client
                .and_then(|config| {
                    config
                        .get("url")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .or_else(|| {
                    let service = client?.get("service")?;
                    Some(format!(
                        "service {}/{}",
                        service
                            .get("namespace")
                            .and_then(Value::as_str)
                            .unwrap_or("?"),
                        service.get("name").and_then(Value::as_str).unwrap_or("?")
                    ))
                })
                .unwrap_or_else(|| "?".into());
            let failure = webhook
                .get("failurePolicy")
                .and_then(Value::as_str)
                .unwrap_or("default");
            format!("webhook {name} calls {target} (failurePolicy {failure})")
        })
        .collect()
}

/// The `command=` parameters of an exec URI, URL-decoded and joined by spaces.
pub fn exec_command(request_uri: &str) -> Option<String> {
    let (_, query) = request_uri.split_once('?')?;
    let parts: Vec<String> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("command="))
        .map(percent_decode)
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let high = (bytes[index + 1] as char).to_digit(16);
                let low = (bytes[index + 2] as char).to_digit(16);
                match (high, low) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        index += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_suspicious_command(command: &str) -> bool {
    const MARKERS: &[&str] = &[
        "curl",
        "wget",
        "/dev/tcp",
        "nc ",
        "ncat",
        "socat",
        "169.254.169.254",
        "/var/run/secrets",
        "base64 -d",
        "chroot /host",
        "nsenter",
    ];
    MARKERS.iter().any(|marker| command.contains(marker))
}

#[cfg(test)]
mod tests;
