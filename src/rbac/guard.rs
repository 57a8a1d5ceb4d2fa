//! The guard: a ValidatingAdmissionWebhook (admission.k8s.io/v1
//! AdmissionReview over HTTPS, rustls with ring) that evaluates the RBAC
//! policies below on Role/ClusterRole/RoleBinding/ClusterRoleBinding writes,
//! and the export of the same policies as ValidatingAdmissionPolicy (CEL).
//!
//! Design decision: the object policies are *data* ([`OBJECT_POLICIES`] and
//! [`CRITICAL_PROBES`]): the Rust evaluator walks them, and the CEL exporter
//! renders each into an expression with the same message. So the two sides
//! cannot drift apart in what they list; what is not proven (that a CEL
//! engine evaluates the rendered text as the Rust walker does) is said in
//! docs/RBAC.md. One policy is webhook-only: `critical-binding` resolves the
//! bound role in the current snapshot, which a ValidatingAdmissionPolicy
//! cannot see.
//!
//! The HTTPS server around [`Guard::handle_review`] is [`super::guard_server`];
//! this file stays free of networking so the fuzz crate compiles the handler
//! on its own. A malformed review is answered with HTTP 400 and a message,
//! never a panic;
//! every decision is logged (tracing), counted, and written back to the API
//! server's audit log as `auditAnnotations`; a denial (or a dry-run
//! would-deny) is reported as an [`Anomaly`] with detector `guard.denied`
//! through the callback the daemon wires.

use super::authorizer::Authorizer;
use super::checks::{Scope, permission_hits};
use super::config::{GuardConfig, GuardMode, RbacConfig};
use super::snapshot::Snapshot;
use crate::detect::{Anomaly, AnomalyKind, Severity};
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which object kinds a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyTarget {
    Roles,
    Bindings,
}

/// One policy: an id, the objects it applies to, the message on violation.
#[derive(Debug, Clone, Copy)]
pub struct GuardPolicy {
    pub id: &'static str,
    pub target: PolicyTarget,
    pub severity: Severity,
    pub message: &'static str,
}

pub const WILDCARD_RULES: GuardPolicy = GuardPolicy {
    id: "wildcard-rules",
    target: PolicyTarget::Roles,
    severity: Severity::High,
    message: "auditlens guard: rules with '*' in verbs or resources are not allowed; list the verbs and resources needed",
};
pub const PRIVILEGE_VERBS: GuardPolicy = GuardPolicy {
    id: "privilege-verbs",
    target: PolicyTarget::Roles,
    severity: Severity::Critical,
    message: "auditlens guard: escalate, bind and impersonate grants are not allowed",
};
pub const FORBIDDEN_BINDING: GuardPolicy = GuardPolicy {
    id: "forbidden-binding",
    target: PolicyTarget::Bindings,
    severity: Severity::Critical,
    message: "auditlens guard: bindings to cluster-admin or to system:masters, system:anonymous, system:unauthenticated or system:authenticated are not allowed",
};
pub const CRITICAL_GRANT: GuardPolicy = GuardPolicy {
    id: "critical-grant",
    target: PolicyTarget::Roles,
    severity: Severity::Critical,
    message: "auditlens guard: the role grants a permission rated Critical in RBAC_RISKS.md (nodes/proxy, CSR signer approval, mutating webhooks; in privileged namespaces also tokens, secrets, workloads, configmaps)",
};
/// Webhook-only (needs the snapshot to resolve roleRef).
pub const CRITICAL_BINDING: GuardPolicy = GuardPolicy {
    id: "critical-binding",
    target: PolicyTarget::Bindings,
    severity: Severity::Critical,
    message: "auditlens guard: the binding grants a role whose rules are rated Critical in RBAC_RISKS.md at the binding's scope",
};

/// The policies with a ValidatingAdmissionPolicy counterpart.
pub const OBJECT_POLICIES: [GuardPolicy; 4] = [
    WILDCARD_RULES,
    PRIVILEGE_VERBS,
    FORBIDDEN_BINDING,
    CRITICAL_GRANT,
];

/// Subjects a binding may not name, as (kind, name).
pub const FORBIDDEN_SUBJECTS: [(&str, &str); 4] = [
    ("Group", "system:masters"),
    ("User", "system:anonymous"),
    ("Group", "system:unauthenticated"),
    ("Group", "system:authenticated"),
];
pub const PRIVILEGE_VERB_NAMES: [&str; 3] = ["escalate", "bind", "impersonate"];

/// Where a critical probe applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeScope {
    /// Any Role or ClusterRole.
    Any,
    /// Only a Role in a privileged namespace.
    PrivilegedNamespaceRole,
}

/// A Critical row as a rule pattern: a rule matches when it has one of `verbs`
/// (or `*`), the group (or `*`), and the resource (or `*`, or `*/sub`).
/// `resourceNames` are ignored (conservative: a guard cannot know the names are harmless).
#[derive(Debug, Clone, Copy)]
pub struct CriticalProbe {
    pub row: &'static str,
    pub scope: ProbeScope,
    pub verbs: &'static [&'static str],
    pub group: &'static str,
    pub resources: &'static [&'static str],
}

pub const CRITICAL_PROBES: [CriticalProbe; 10] = [
    CriticalProbe {
        row: "R17",
        scope: ProbeScope::Any,
        verbs: &["get", "create"],
        group: "",
        resources: &["nodes/proxy"],
    },
    CriticalProbe {
        row: "R18",
        scope: ProbeScope::Any,
        verbs: &["approve"],
        group: "certificates.k8s.io",
        resources: &["signers"],
    },
    CriticalProbe {
        row: "R19",
        scope: ProbeScope::Any,
        verbs: &["create", "update", "patch", "delete"],
        group: "admissionregistration.k8s.io",
        resources: &["mutatingwebhookconfigurations"],
    },
    CriticalProbe {
        row: "R09",
        scope: ProbeScope::PrivilegedNamespaceRole,
        verbs: &["create"],
        group: "",
        resources: &["serviceaccounts/token"],
    },
    CriticalProbe {
        row: "R10",
        scope: ProbeScope::PrivilegedNamespaceRole,
        verbs: &["get", "list", "watch"],
        group: "",
        resources: &["secrets"],
    },
    CriticalProbe {
        row: "R11",
        scope: ProbeScope::PrivilegedNamespaceRole,
        verbs: &["create", "update", "patch"],
        group: "",
        resources: &["secrets"],
    },
    CriticalProbe {
        row: "R12",
        scope: ProbeScope::PrivilegedNamespaceRole,
        verbs: &["create"],
        group: "",
        resources: &["pods"],
    },
    CriticalProbe {
        row: "R12",
        scope: ProbeScope::PrivilegedNamespaceRole,
        verbs: &["create", "update", "patch"],
        group: "apps",
        resources: &["deployments", "daemonsets", "statefulsets", "replicasets"],
    },
    CriticalProbe {
        row: "R12",
        scope: ProbeScope::PrivilegedNamespaceRole,
        verbs: &["create", "update", "patch"],
        group: "batch",
        resources: &["jobs", "cronjobs"],
    },
    CriticalProbe {
        row: "R23",
        scope: ProbeScope::PrivilegedNamespaceRole,
        verbs: &["update", "patch"],
        group: "",
        resources: &["configmaps"],
    },
];

impl CriticalProbe {
    fn resource_patterns(&self) -> Vec<String> {
        let mut patterns = vec!["*".to_string()];
        for resource in self.resources {
            patterns.push(resource.to_string());
            if let Some((_, subresource)) = resource.split_once('/') {
                patterns.push(format!("*/{subresource}"));
            }
        }
        patterns
    }

    /// The Rust side of the probe.
    pub fn matches(&self, rule: &PolicyRule) -> bool {
        let patterns = self.resource_patterns();
        rule.verbs
            .iter()
            .any(|verb| verb == "*" || self.verbs.contains(&verb.as_str()))
            && rule
                .api_groups
                .iter()
                .flatten()
                .any(|group| group == "*" || group == self.group)
            && rule
                .resources
                .iter()
                .flatten()
                .any(|resource| patterns.contains(resource))
    }

    /// The CEL side of the probe, over a rule variable `r`.
    pub fn cel(&self) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|item| format!("'{item}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut verbs = vec!["*".to_string()];
        verbs.extend(self.verbs.iter().map(|verb| verb.to_string()));
        format!(
            "(r.verbs.exists(v, v in [{}]) && has(r.apiGroups) && r.apiGroups.exists(g, g in ['*', '{}']) && has(r.resources) && r.resources.exists(x, x in [{}]))",
            list(&verbs),
            self.group,
            list(&self.resource_patterns())
        )
    }
}

/// One broken policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub policy: &'static str,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct RoleObject {
    #[serde(default)]
    rules: Option<Vec<PolicyRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingObject {
    role_ref: RoleRef,
    #[serde(default)]
    subjects: Option<Vec<Subject>>,
}

/// Evaluates the object policies (and `critical-binding` when a snapshot is
/// given) on one RBAC object. `kind` is Role, ClusterRole, RoleBinding or
/// ClusterRoleBinding; `namespace` the request's namespace. Errors say why
/// the object is not a valid object of that kind.
pub fn evaluate_object(
    kind: &str,
    namespace: &str,
    object: &Value,
    rbac: &RbacConfig,
    authorizer: Option<&Authorizer>,
    disabled: &[String],
) -> std::result::Result<Vec<Violation>, String> {
    let enabled = |policy: &GuardPolicy| !disabled.iter().any(|id| id == policy.id);
    let mut violations = Vec::new();
    let mut violate = |policy: &GuardPolicy, detail: String| {
        if enabled(policy) {
            violations.push(Violation {
                policy: policy.id,
                severity: policy.severity,
                message: format!("{} ({detail})", policy.message),
            });
        }
    };
    match kind {
        "Role" | "ClusterRole" => {
            let role: RoleObject = serde_json::from_value(object.clone())
                .map_err(|error| format!("{kind}: {error}"))?;
            let rules = role.rules.unwrap_or_default();
            for (index, rule) in rules.iter().enumerate() {
                if rule.verbs.iter().any(|verb| verb == "*")
                    || rule
                        .resources
                        .iter()
                        .flatten()
                        .any(|resource| resource == "*")
                {
                    violate(&WILDCARD_RULES, format!("rule {index}"));
                }
                let privileged: Vec<&str> = rule
                    .verbs
                    .iter()
                    .map(String::as_str)
                    .filter(|verb| PRIVILEGE_VERB_NAMES.contains(verb))
                    .collect();
                if !privileged.is_empty() {
                    violate(
                        &PRIVILEGE_VERBS,
                        format!("rule {index}: {}", privileged.join(", ")),
                    );
                }
                let in_privileged_namespace =
                    kind == "Role" && rbac.is_privileged_namespace(namespace);
                for probe in CRITICAL_PROBES.iter() {
                    let applies = probe.scope == ProbeScope::Any || in_privileged_namespace;
                    if applies && probe.matches(rule) {
                        violate(
                            &CRITICAL_GRANT,
                            format!("rule {index}: {} {}", probe.row, probe.resources.join("/")),
                        );
                    }
                }
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let binding: BindingObject = serde_json::from_value(object.clone())
                .map_err(|error| format!("{kind}: {error}"))?;
            if binding.role_ref.kind == "ClusterRole" && binding.role_ref.name == "cluster-admin" {
                violate(
                    &FORBIDDEN_BINDING,
                    "roleRef ClusterRole cluster-admin".into(),
                );
            }
            for subject in binding.subjects.iter().flatten() {
                if FORBIDDEN_SUBJECTS
                    .iter()
                    .any(|(kind, name)| subject.kind == *kind && subject.name == *name)
                {
                    violate(
                        &FORBIDDEN_BINDING,
                        format!("subject {} {}", subject.kind, subject.name),
                    );
                }
            }
            if let Some(authorizer) = authorizer {
                let rules = match binding.role_ref.kind.as_str() {
                    "ClusterRole" => authorizer.cluster_role_rules(&binding.role_ref.name),
                    _ => authorizer.role_rules(namespace, &binding.role_ref.name),
                };
                if let Some(rules) = rules {
                    let scope = if kind == "ClusterRoleBinding" {
                        Scope::Cluster
                    } else {
                        Scope::Namespace(namespace.to_string())
                    };
                    let critical: Vec<String> =
                        permission_hits(rules, &scope, rbac, rbac.cloud == "eks")
                            .into_iter()
                            .filter(|hit| hit.severity == Severity::Critical)
                            .map(|hit| format!("{} {}", hit.check, hit.reason))
                            .collect();
                    if !critical.is_empty() {
                        violate(
                            &CRITICAL_BINDING,
                            format!(
                                "{} {}: {}",
                                binding.role_ref.kind,
                                binding.role_ref.name,
                                critical.join("; ")
                            ),
                        );
                    }
                }
            }
        }
        _ => {}
    }
    Ok(violations)
}

// ---- AdmissionReview wire types (admission.k8s.io/v1) ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionReviewIn {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<AdmissionRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GroupVersionKind {
    group: String,
    version: String,
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ReviewUser {
    username: String,
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest {
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    user_info: ReviewUser,
    #[serde(default)]
    object: Option<Value>,
}

/// Why a review could not be answered (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed AdmissionReview: {0}")]
pub struct MalformedReview(pub String);

/// Counters of every decision (exposed on `/metrics`).
#[derive(Debug, Default)]
pub struct GuardMetrics {
    pub reviews: AtomicU64,
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub warned: AtomicU64,
    pub exempt: AtomicU64,
    pub malformed: AtomicU64,
}

impl GuardMetrics {
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "auditlens_guard_reviews_total",
                "AdmissionReviews answered",
                &self.reviews,
            ),
            (
                "auditlens_guard_allowed_total",
                "Reviews allowed without violation",
                &self.allowed,
            ),
            (
                "auditlens_guard_denied_total",
                "Reviews denied (enforce mode)",
                &self.denied,
            ),
            (
                "auditlens_guard_warned_total",
                "Violations allowed with warnings (dry-run mode)",
                &self.warned,
            ),
            (
                "auditlens_guard_exempt_total",
                "Reviews from exempt subjects",
                &self.exempt,
            ),
            (
                "auditlens_guard_malformed_total",
                "Malformed reviews answered with HTTP 400",
                &self.malformed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Receives the anomaly of each denial (the daemon wires it to the alert stream).
pub type AnomalySink = Arc<dyn Fn(Anomaly) + Send + Sync>;

/// The webhook's state: policies' config, the optional snapshot for
/// `critical-binding`, counters and the anomaly sink.
pub struct Guard {
    pub config: GuardConfig,
    pub rbac: RbacConfig,
    /// Resolves bound roles for `critical-binding` (built once from the snapshot).
    pub authorizer: Option<Arc<Authorizer>>,
    pub cluster: String,
    pub metrics: GuardMetrics,
    anomaly_sink: Option<AnomalySink>,
}

impl Guard {
    pub fn new(
        config: GuardConfig,
        rbac: RbacConfig,
        snapshot: Option<Arc<Snapshot>>,
        cluster: String,
    ) -> Guard {
        let authorizer = snapshot.map(|snapshot| Arc::new(Authorizer::new(&snapshot)));
        Guard {
            config,
            rbac,
            authorizer,
            cluster,
            metrics: GuardMetrics::default(),
            anomaly_sink: None,
        }
    }

    pub fn with_anomaly_sink(mut self, sink: AnomalySink) -> Guard {
        self.anomaly_sink = Some(sink);
        self
    }

    fn is_exempt(&self, user: &ReviewUser) -> Option<String> {
        if self.config.exempt_users.contains(&user.username) {
            return Some(format!("user {}", user.username));
        }
        if let Some(group) = user
            .groups
            .iter()
            .find(|group| self.config.exempt_groups.contains(group))
        {
            return Some(format!("group {group}"));
        }
        let service_account = user.username.strip_prefix("system:serviceaccount:")?;
        self.config
            .exempt_service_accounts
            .iter()
            .any(|exempt| exempt == service_account)
            .then(|| format!("service account {service_account}"))
    }

    /// Answers one AdmissionReview body with the response review (JSON).
    pub fn handle_review(&self, body: &[u8]) -> std::result::Result<Value, MalformedReview> {
        let result = self.decide(body);
        if result.is_err() {
            self.metrics.malformed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn decide(&self, body: &[u8]) -> std::result::Result<Value, MalformedReview> {
        // JSON is UTF-8. Checked up front because serde_json skips the fields
        // the guard ignores without validating their strings, so a body with a
        // stray byte there would otherwise be answered as if it were JSON.
        let text = std::str::from_utf8(body).map_err(|error| {
            MalformedReview(format!(
                "not an AdmissionReview JSON object: the body is not UTF-8 ({error})"
            ))
        })?;
        let review: AdmissionReviewIn = serde_json::from_str(text).map_err(|error| {
            MalformedReview(format!("not an AdmissionReview JSON object: {error}"))
        })?;
        if review.api_version.as_deref() != Some("admission.k8s.io/v1") {
            return Err(MalformedReview(format!(
                "apiVersion must be admission.k8s.io/v1, got {:?}",
                review.api_version
            )));
        }
        if review.kind.as_deref() != Some("AdmissionReview") {
            return Err(MalformedReview(format!(
                "kind must be AdmissionReview, got {:?}",
                review.kind
            )));
        }
        let request = review
            .request
            .ok_or_else(|| MalformedReview("request is missing".into()))?;
        if request.uid.is_empty() {
            return Err(MalformedReview("request.uid is empty".into()));
        }
        self.metrics.reviews.fetch_add(1, Ordering::Relaxed);
        let kind = request.kind.kind.as_str();
        let namespace = request
            .namespace
            .clone()
            .or_else(|| {
                request
                    .object
                    .as_ref()?
                    .pointer("/metadata/namespace")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let name = request
            .name
            .clone()
            .or_else(|| {
                request
                    .object
                    .as_ref()?
                    .pointer("/metadata/name")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let target = format!(
            "{kind} {}{name}",
            if namespace.is_empty() {
                String::new()
            } else {
                format!("{namespace}/")
            }
        );
        let allow = |annotation: &str| respond(&request.uid, true, None, &[], annotation, "");
        let is_rbac = request.kind.group == "rbac.authorization.k8s.io"
            && matches!(
                kind,
                "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
            );
        if !is_rbac || !matches!(request.operation.as_str(), "CREATE" | "UPDATE") {
            self.metrics.allowed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(uid = %request.uid, operation = %request.operation, %target, "guard: not an RBAC write, allowed");
            return Ok(allow("not-applicable"));
        }
        if let Some(exemption) = self.is_exempt(&request.user_info) {
            self.metrics.exempt.fetch_add(1, Ordering::Relaxed);
            tracing::info!(uid = %request.uid, user = %request.user_info.username, %target, %exemption, "guard: exempt subject, allowed");
            return Ok(allow("exempt"));
        }
        let object = request.object.as_ref().ok_or_else(|| {
            MalformedReview(format!(
                "{} of {kind} without request.object",
                request.operation
            ))
        })?;
        let violations = evaluate_object(
            kind,
            &namespace,
            object,
            &self.rbac,
            self.authorizer.as_deref(),
            &self.config.disabled_policies,
        )
        .map_err(MalformedReview)?;
        if violations.is_empty() {
            self.metrics.allowed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(uid = %request.uid, user = %request.user_info.username, operation = %request.operation, %target, "guard: allowed");
            return Ok(allow("allowed"));
        }
        let messages: Vec<String> = violations
            .iter()
            .map(|violation| violation.message.clone())
            .collect();
        let policies: Vec<&str> = violations
            .iter()
            .map(|violation| violation.policy)
            .collect();
        let dry_run = self.config.mode == GuardMode::DryRun;
        self.report_anomaly(&request, &target, &violations, dry_run);
        if dry_run {
            self.metrics.warned.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(uid = %request.uid, user = %request.user_info.username, operation = %request.operation, %target, policies = ?policies, "guard: would deny (dry-run), allowed with warnings");
            Ok(respond(
                &request.uid,
                true,
                None,
                &messages,
                "would-deny",
                &policies.join(","),
            ))
        } else {
            self.metrics.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(uid = %request.uid, user = %request.user_info.username, operation = %request.operation, %target, policies = ?policies, "guard: denied");
            Ok(respond(
                &request.uid,
                false,
                Some(messages.join("; ")),
                &[],
                "denied",
                &policies.join(","),
            ))
        }
    }

    fn report_anomaly(
        &self,
        request: &AdmissionRequest,
        target: &str,
        violations: &[Violation],
        dry_run: bool,
    ) {
        let Some(sink) = &self.anomaly_sink else {
            return;
        };
        let now = chrono::Utc::now();
        let severity = violations
            .iter()
            .map(|violation| violation.severity)
            .max()
            .unwrap_or(Severity::High);
        sink(Anomaly {
            id: ulid::Ulid::new().to_string(),
            detector: "guard.denied".into(),
            kind: AnomalyKind::Rule,
            identity: request.user_info.username.clone(),
            cluster: self.cluster.clone(),
            window_start: now,
            window_end: now,
            severity,
            score: 1.0,
            title: format!(
                "{} {} {target}{}",
                if dry_run {
                    "Guard would deny"
                } else {
                    "Guard denied"
                },
                request.operation,
                if dry_run {
                    " (dry-run: allowed with warnings)"
                } else {
                    ""
                }
            ),
            reasons: violations
                .iter()
                .map(|violation| violation.message.clone())
                .collect(),
            // The admission UID; the API server's audit event of this request
            // carries our auditAnnotations, which link the two.
            evidence_audit_ids: vec![request.uid.clone()],
        });
    }
}

fn respond(
    uid: &str,
    allowed: bool,
    denial: Option<String>,
    warnings: &[String],
    decision: &str,
    policies: &str,
) -> Value {
    let mut response = serde_json::json!({"uid": uid, "allowed": allowed});
    if let Some(message) = denial {
        response["status"] =
            serde_json::json!({"code": 403, "reason": "Forbidden", "message": message});
    }
    if !warnings.is_empty() {
        response["warnings"] = serde_json::json!(warnings);
    }
    let mut annotations = BTreeMap::from([("decision".to_string(), decision.to_string())]);
    if !policies.is_empty() {
        annotations.insert("policies".to_string(), policies.to_string());
    }
    response["auditAnnotations"] = serde_json::json!(annotations);
    serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

// ---- ValidatingAdmissionPolicy export ----

fn cel_string_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("'{}'", item.replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The CEL expression (true = passes) of an object policy.
pub fn policy_cel(policy: &GuardPolicy, rbac: &RbacConfig) -> String {
    match policy.id {
        "wildcard-rules" => "!has(object.rules) || !object.rules.exists(r, r.verbs.exists(v, v == '*') || (has(r.resources) && r.resources.exists(x, x == '*')))".into(),
        "privilege-verbs" => format!(
            "!has(object.rules) || !object.rules.exists(r, r.verbs.exists(v, v in [{}]))",
            cel_string_list(&PRIVILEGE_VERB_NAMES.iter().map(|verb| verb.to_string()).collect::<Vec<_>>())
        ),
        "forbidden-binding" => {
            let subjects: Vec<String> = FORBIDDEN_SUBJECTS
                .iter()
                .map(|(kind, name)| format!("(s.kind == '{kind}' && s.name == '{name}')"))
                .collect();
            format!(
                "!(object.roleRef.kind == 'ClusterRole' && object.roleRef.name == 'cluster-admin') && (!has(object.subjects) || !object.subjects.exists(s, {}))",
                subjects.join(" || ")
            )
        }
        "critical-grant" => {
            let any: Vec<String> = CRITICAL_PROBES.iter().filter(|probe| probe.scope == ProbeScope::Any).map(CriticalProbe::cel).collect();
            let privileged: Vec<String> = CRITICAL_PROBES
                .iter()
                .filter(|probe| probe.scope == ProbeScope::PrivilegedNamespaceRole)
                .map(CriticalProbe::cel)
                .collect();
            format!(
                "!has(object.rules) || !object.rules.exists(r, {} || (object.kind == 'Role' && request.namespace in [{}] && ({})))",
                any.join(" || "),
                cel_string_list(&rbac.privileged_namespaces),
                privileged.join(" || ")
            )
        }
        _ => "true".into(),
    }
}

/// ValidatingAdmissionPolicy + ValidatingAdmissionPolicyBinding YAML for
/// every object policy not disabled, with the exemptions as matchConditions
/// and the mode as validationActions (enforce: Deny; dry-run: Warn + Audit).
pub fn export_policies_yaml(config: &GuardConfig, rbac: &RbacConfig) -> String {
    let mut out = String::from(
        "# auditlens guard policies as ValidatingAdmissionPolicy (CEL), generated by `auditlens guard export`.\n\
         # The webhook-only policy critical-binding (it needs the bound role) has no counterpart here.\n",
    );
    let mut exempt_users: Vec<String> = config.exempt_users.clone();
    exempt_users.extend(
        config
            .exempt_service_accounts
            .iter()
            .map(|account| format!("system:serviceaccount:{account}")),
    );
    let exemption = format!(
        "!(request.userInfo.username in [{}]) && !request.userInfo.groups.exists(g, g in [{}])",
        cel_string_list(&exempt_users),
        cel_string_list(&config.exempt_groups)
    );
    let actions: Vec<&str> = match config.mode {
        GuardMode::Enforce => vec!["Deny"],
        GuardMode::DryRun => vec!["Warn", "Audit"],
    };
    for policy in OBJECT_POLICIES
        .iter()
        .filter(|policy| !config.disabled_policies.iter().any(|id| id == policy.id))
    {
        let resources: Vec<&str> = match policy.target {
            PolicyTarget::Roles => vec!["roles", "clusterroles"],
            PolicyTarget::Bindings => vec!["rolebindings", "clusterrolebindings"],
        };
        let name = format!("auditlens-guard-{}", policy.id);
        let vap = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "auditlens"}, "annotations": {"auditlens.io/policy": policy.id, "auditlens.io/severity": policy.severity.as_str()}},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": resources,
                }]},
                "matchConditions": [{"name": "not-exempt", "expression": exemption}],
                "validations": [{"expression": policy_cel(policy, rbac), "message": policy.message, "reason": "Forbidden"}],
            },
        });
        let binding = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "auditlens"}},
            "spec": {"policyName": name, "validationActions": actions},
        });
        for object in [vap, binding] {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&object).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests;
