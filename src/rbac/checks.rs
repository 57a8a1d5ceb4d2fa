//! The risk audit: every row of RBAC_RISKS.md as a check over a snapshot,
//! producing [`Finding`]s with the subject, binding, role, namespace, reason and
//! fix; exceptions with expiry; table, JSON and SARIF 2.1.0 output.
//!
//! Design decision: permission rows are evaluated on a role's *effective*
//! rules with the authorizer's own matcher ([`super::authorizer::rule_allows`]),
//! once per (role, scope) and shared by every binding of that role. That keeps
//! wildcard, subresource and apiGroup semantics identical to the API server
//! (the krane #80 class of false findings cannot happen) and makes 20,000
//! bindings cost about as much as their distinct roles.
//!
//! Noise control: findings on built-in bootstrap bindings are kept but
//! reported at `info` with `origin: builtin`; vendor-managed ones are marked
//! `origin: vendor` at their real severity. "Built-in" is defined strictly (so
//! an attacker cannot hide by copying a label): the binding carries
//! `kubernetes.io/bootstrapping=rbac-defaults`, is named `system:*` or
//! `cluster-admin`, and binds only `system:*` users/groups or kube-system
//! service accounts.

use super::authorizer::{
    Authorizer, BindingEntry, BindingKind, RequestAttributes, UserInfo, rule_allows,
    subject_applies_to,
};
use super::config::RbacConfig;
use super::snapshot::Snapshot;
use crate::detect::Severity;
use chrono::{NaiveDate, Utc};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io;

/// The subject a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FindingSubject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    pub name: String,
    /// For service accounts; `null` otherwise.
    pub namespace: Option<String>,
}

/// Whose object the finding is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Created by the cluster's operators: the findings that matter.
    Custom,
    /// A Kubernetes bootstrap default (reported at `info`).
    Builtin,
    /// Managed by a cloud vendor (EKS, GKE, AKS, OpenShift).
    Vendor,
}

/// One risky grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The RBAC_RISKS.md row: `R01` ... `R32`.
    pub check: String,
    pub severity: Severity,
    pub subject: FindingSubject,
    /// `ClusterRoleBinding/name` or `RoleBinding/namespace/name`; empty when no binding is involved.
    pub binding: String,
    /// `ClusterRole/name` or `Role/namespace/name`; empty when no role is involved.
    pub role: String,
    /// Where the grant applies; `null` is cluster-wide.
    pub namespace: Option<String>,
    pub reason: String,
    /// The check's fix text (shared, not copied per finding).
    pub fix: Cow<'static, str>,
    pub origin: Origin,
}

/// One check of the catalogue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CheckInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub fix: &'static str,
}

/// Every row of RBAC_RISKS.md, in order.
pub const CHECKS: [CheckInfo; 32] = [
    CheckInfo {
        id: "R01",
        title: "Membership of group system:masters",
        fix: "Remove the binding to system:masters; issue named admin identities bound to narrower roles, and keep system:masters for break-glass certificates only.",
    },
    CheckInfo {
        id: "R02",
        title: "Wildcard verbs on wildcard resources (cluster-admin shape)",
        fix: "Replace '*' with the verbs and resources actually needed (see `auditlens rbac recommend`); never bind it cluster-wide.",
    },
    CheckInfo {
        id: "R03",
        title: "Binding to system:anonymous / system:unauthenticated",
        fix: "Delete the subject system:anonymous / system:unauthenticated from the binding.",
    },
    CheckInfo {
        id: "R04",
        title: "Sensitive role bound to system:authenticated or system:serviceaccounts",
        fix: "Bind the role to the specific users, groups or service accounts that need it instead of an all-identities group.",
    },
    CheckInfo {
        id: "R05",
        title: "impersonate on users/groups/serviceaccounts/uids/userextras",
        fix: "Remove the impersonate verb, or restrict it with resourceNames to the few identities that must be impersonated.",
    },
    CheckInfo {
        id: "R06",
        title: "escalate on roles/clusterroles",
        fix: "Remove the escalate verb; role authors should only grant rights they hold.",
    },
    CheckInfo {
        id: "R07",
        title: "bind on roles/clusterroles plus writes on bindings",
        fix: "Remove the bind verb, or restrict it with resourceNames to the roles this subject may hand out.",
    },
    CheckInfo {
        id: "R08",
        title: "Writes on roles, clusterroles, rolebindings, clusterrolebindings",
        fix: "Limit RBAC writes to a CI identity or to resourceNames; prefer namespaced Roles.",
    },
    CheckInfo {
        id: "R09",
        title: "create serviceaccounts/token",
        fix: "Remove create on serviceaccounts/token, or restrict it with resourceNames to the service accounts this subject owns.",
    },
    CheckInfo {
        id: "R10",
        title: "get/list/watch secrets",
        fix: "Grant get on named secrets (resourceNames) instead of list/watch; never cluster-wide or in kube-system.",
    },
    CheckInfo {
        id: "R11",
        title: "Writes on secrets",
        fix: "Remove create/update/patch on secrets in privileged namespaces; use an external secret manager's controller.",
    },
    CheckInfo {
        id: "R12",
        title: "create pods or workload controllers",
        fix: "Let a deployment pipeline create workloads; enforce Pod Security Admission 'restricted'; never in kube-system.",
    },
    CheckInfo {
        id: "R13",
        title: "update/patch pods",
        fix: "Remove update/patch on pods (or restrict with resourceNames); change workloads through their controllers.",
    },
    CheckInfo {
        id: "R14",
        title: "pods/exec or pods/attach",
        fix: "Remove exec/attach, or grant it just-in-time in one namespace.",
    },
    CheckInfo {
        id: "R15",
        title: "update/patch pods/ephemeralcontainers",
        fix: "Remove pods/ephemeralcontainers writes except for a break-glass debug role.",
    },
    CheckInfo {
        id: "R16",
        title: "pods/portforward",
        fix: "Remove pods/portforward, or grant it just-in-time in one namespace.",
    },
    CheckInfo {
        id: "R17",
        title: "get or create nodes/proxy",
        fix: "Remove nodes/proxy; use the metrics API or a dedicated read-only endpoint instead (it bypasses audit and admission).",
    },
    CheckInfo {
        id: "R18",
        title: "Create and approve CertificateSigningRequests for kube-apiserver-client",
        fix: "Split CSR creation from approval and restrict approve on signers to the exact signerName needed.",
    },
    CheckInfo {
        id: "R19",
        title: "Writes on admission webhook configurations",
        fix: "Restrict webhook configuration writes to the operator that owns them (resourceNames).",
    },
    CheckInfo {
        id: "R20",
        title: "Writes on admission policies, policy engines or CRDs",
        fix: "Restrict policy and CRD writes to the platform team's deploy identity.",
    },
    CheckInfo {
        id: "R21",
        title: "create persistentvolumes",
        fix: "Remove create persistentvolumes; use StorageClasses and dynamic provisioning.",
    },
    CheckInfo {
        id: "R22",
        title: "update/patch namespaces",
        fix: "Remove namespace writes: relabeling weakens Pod Security Admission and NetworkPolicy selection.",
    },
    CheckInfo {
        id: "R23",
        title: "update/patch configmaps in kube-system (aws-auth, coredns)",
        fix: "Remove configmap writes in kube-system; on EKS manage access entries instead of aws-auth.",
    },
    CheckInfo {
        id: "R24",
        title: "Pod eviction/deletion with node updates (steal pods)",
        fix: "Keep node writes with the node lifecycle controllers; don't combine them with pod deletion.",
    },
    CheckInfo {
        id: "R25",
        title: "update/patch pods/status",
        fix: "Remove pods/status writes; only kubelets need them.",
    },
    CheckInfo {
        id: "R26",
        title: "update/patch services/status (CVE-2020-8554)",
        fix: "Remove services/status writes except for the load-balancer controller; block externalIPs with admission.",
    },
    CheckInfo {
        id: "R27",
        title: "Writes on services, endpoints, ingresses, network policies, Gateway API",
        fix: "Restrict networking writes to the deploy pipeline of the namespace.",
    },
    CheckInfo {
        id: "R28",
        title: "Delete on everything, workloads, secrets or events",
        fix: "Remove broad delete/deletecollection; never grant delete on events.",
    },
    CheckInfo {
        id: "R29",
        title: "Powerful service account token mounted in pods",
        fix: "Set automountServiceAccountToken: false, or run the pods with a service account holding only what they need.",
    },
    CheckInfo {
        id: "R30",
        title: "Service account mapped to a cloud IAM identity",
        fix: "Review the cloud role's permissions; scope the trust policy to this exact service account.",
    },
    CheckInfo {
        id: "R31",
        title: "Binding to a missing role or service account",
        fix: "Delete the binding, or the subject: a later object with the same name inherits the rights.",
    },
    CheckInfo {
        id: "R32",
        title: "Object creation without a ResourceQuota",
        fix: "Add a ResourceQuota (object counts and sizes) to the namespace.",
    },
];

pub fn check_info(id: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|check| check.id == id)
}

/// Where a role's rules take effect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Cluster,
    Namespace(String),
}

/// One permission row a rule set hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionHit {
    pub check: &'static str,
    pub severity: Severity,
    pub reason: String,
}

/// Probes a rule set with the authorizer's matcher.
struct Probe<'a> {
    rules: &'a [PolicyRule],
}

impl Probe<'_> {
    fn can(&self, verb: &str, group: &str, resource: &str) -> bool {
        let request = RequestAttributes::resource(verb, group, resource, "", "");
        self.rules.iter().any(|rule| rule_allows(rule, &request))
    }
    fn can_named(&self, verb: &str, group: &str, resource: &str, name: &str) -> bool {
        let request = RequestAttributes::resource(verb, group, resource, "", name);
        self.rules.iter().any(|rule| rule_allows(rule, &request))
    }
    fn any_verb(&self, verbs: &[&str], group: &str, resource: &str) -> Option<String> {
        let granted: Vec<&str> = verbs
            .iter()
            .copied()
            .filter(|verb| self.can(verb, group, resource))
            .collect();
        (!granted.is_empty())
            .then(|| format!("{} {}", granted.join("/"), qualified(group, resource)))
    }
    fn any_of(&self, verbs: &[&str], targets: &[(&str, &str)]) -> Vec<String> {
        targets
            .iter()
            .filter_map(|(group, resource)| self.any_verb(verbs, group, resource))
            .collect()
    }
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

const WRITE: &[&str] = &["create", "update", "patch"];
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const WORKLOADS: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "daemonsets"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("", "replicationcontrollers"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

/// Every permission row (R02, R05–R28) a rule set hits in a scope. The
/// non-permission rows (R01, R03, R04, R29–R32) need subjects or other
/// objects and live in [`audit_snapshot_report`].
pub fn permission_hits(
    rules: &[PolicyRule],
    scope: &Scope,
    config: &RbacConfig,
    eks: bool,
) -> Vec<PermissionHit> {
    let probe = Probe { rules };
    let cluster = *scope == Scope::Cluster;
    let privileged = match scope {
        Scope::Cluster => true,
        Scope::Namespace(namespace) => config.is_privileged_namespace(namespace),
    };
    let where_text = match scope {
        Scope::Cluster => "cluster-wide".to_string(),
        Scope::Namespace(namespace) if privileged => format!("in privileged namespace {namespace}"),
        Scope::Namespace(namespace) => format!("in namespace {namespace}"),
    };
    let scoped =
        |critical: Severity, otherwise: Severity| if privileged { critical } else { otherwise };
    let mut hits = Vec::new();
    let mut hit = |check: &'static str, severity: Severity, what: String| {
        hits.push(PermissionHit {
            check,
            severity,
            reason: format!("{what} {where_text}"),
        });
    };

    // R02: the cluster-admin shape.
    if rules.iter().any(|rule| {
        rule.verbs.iter().any(|verb| verb == "*")
            && rule
                .resources
                .iter()
                .flatten()
                .any(|resource| resource == "*")
    }) {
        hit(
            "R02",
            scoped(Severity::Critical, Severity::High),
            "'*' verbs on '*' resources".into(),
        );
    }
    // R05: impersonation. Users and groups are cluster-scoped, so only a
    // cluster-wide grant can impersonate them; service accounts are namespaced.
    let impersonation = if cluster {
        probe.any_of(
            &["impersonate"],
            &[
                ("", "users"),
                ("", "groups"),
                ("", "serviceaccounts"),
                ("authentication.k8s.io", "uids"),
                ("authentication.k8s.io", "userextras/scopes"),
            ],
        )
    } else {
        probe.any_of(&["impersonate"], &[("", "serviceaccounts")])
    };
    if !impersonation.is_empty() {
        hit(
            "R05",
            scoped(Severity::Critical, Severity::High),
            impersonation.join(", "),
        );
    }
    // R06, R07, R08: RBAC writes.
    let role_kinds: &[(&str, &str)] = if cluster {
        &[(RBAC_GROUP, "roles"), (RBAC_GROUP, "clusterroles")]
    } else {
        &[(RBAC_GROUP, "roles")]
    };
    let binding_kinds: &[(&str, &str)] = if cluster {
        &[
            (RBAC_GROUP, "rolebindings"),
            (RBAC_GROUP, "clusterrolebindings"),
        ]
    } else {
        &[(RBAC_GROUP, "rolebindings")]
    };
    let escalate = probe.any_of(&["escalate"], role_kinds);
    let bind = probe.any_of(&["bind"], role_kinds);
    let binding_writes = probe.any_of(WRITE, binding_kinds);
    let role_writes = probe.any_of(WRITE, role_kinds);
    if !escalate.is_empty() {
        hit(
            "R06",
            scoped(Severity::Critical, Severity::High),
            escalate.join(", "),
        );
    }
    if !bind.is_empty() && !binding_writes.is_empty() {
        hit(
            "R07",
            scoped(Severity::Critical, Severity::High),
            format!("{} with {}", bind.join(", "), binding_writes.join(", ")),
        );
    }
    if escalate.is_empty()
        && bind.is_empty()
        && (!binding_writes.is_empty() || !role_writes.is_empty())
    {
        let mut what = role_writes.clone();
        what.extend(binding_writes.iter().cloned());
        hit(
            "R08",
            scoped(Severity::High, Severity::Medium),
            what.join(", "),
        );
    }
    // R09 .. R16: tokens, secrets, workloads, pods.
    if probe.can("create", "", "serviceaccounts/token") {
        hit(
            "R09",
            scoped(Severity::Critical, Severity::Medium),
            "create serviceaccounts/token".into(),
        );
    }
    if let Some(what) = probe.any_verb(&["get", "list", "watch"], "", "secrets") {
        hit("R10", scoped(Severity::Critical, Severity::High), what);
    }
    if let Some(what) = probe.any_verb(WRITE, "", "secrets") {
        hit("R11", scoped(Severity::Critical, Severity::Medium), what);
    }
    let mut workload = probe.any_of(&["create"], &[("", "pods")]);
    workload.extend(probe.any_of(WRITE, WORKLOADS));
    if !workload.is_empty() {
        hit(
            "R12",
            scoped(Severity::Critical, Severity::High),
            workload.join(", "),
        );
    }
    if let Some(what) = probe.any_verb(&["update", "patch"], "", "pods") {
        hit("R13", Severity::High, what);
    }
    let exec = probe.any_of(
        &["create", "get"],
        &[("", "pods/exec"), ("", "pods/attach")],
    );
    if !exec.is_empty() {
        hit("R14", Severity::High, exec.join(", "));
    }
    if let Some(what) = probe.any_verb(&["update", "patch"], "", "pods/ephemeralcontainers") {
        hit("R15", Severity::High, what);
    }
    if let Some(what) = probe.any_verb(&["create", "get"], "", "pods/portforward") {
        hit("R16", Severity::Medium, what);
    }
    // R17 .. R21: cluster-scoped resources, effective only cluster-wide.
    if cluster {
        if let Some(what) = probe.any_verb(&["get", "create"], "", "nodes/proxy") {
            hit("R17", Severity::Critical, what);
        }
        let group = "certificates.k8s.io";
        let approve_client_signer =
            probe.can_named(
                "approve",
                group,
                "signers",
                "kubernetes.io/kube-apiserver-client",
            ) || probe.can_named("approve", group, "signers", "kubernetes.io/*");
        if probe.can("create", group, "certificatesigningrequests")
            && (probe.can("update", group, "certificatesigningrequests/approval")
                || probe.can("patch", group, "certificatesigningrequests/approval"))
            && approve_client_signer
        {
            hit("R18", Severity::Critical, "create + approve certificatesigningrequests for signer kubernetes.io/kube-apiserver-client".into());
        }
        let admission = "admissionregistration.k8s.io";
        let webhook_verbs = &["create", "update", "patch", "delete"];
        if let Some(what) =
            probe.any_verb(webhook_verbs, admission, "mutatingwebhookconfigurations")
        {
            hit("R19", Severity::Critical, what);
        } else if let Some(what) =
            probe.any_verb(webhook_verbs, admission, "validatingwebhookconfigurations")
        {
            hit("R19", Severity::High, what);
        }
        let policy = probe.any_of(
            WRITE,
            &[
                (admission, "validatingadmissionpolicies"),
                (admission, "validatingadmissionpolicybindings"),
                (admission, "mutatingadmissionpolicies"),
                (admission, "mutatingadmissionpolicybindings"),
                ("apiextensions.k8s.io", "customresourcedefinitions"),
                ("templates.gatekeeper.sh", "constrainttemplates"),
                ("kyverno.io", "clusterpolicies"),
            ],
        );
        if !policy.is_empty() {
            hit("R20", Severity::High, policy.join(", "));
        }
        if probe.can("create", "", "persistentvolumes") {
            hit("R21", Severity::High, "create persistentvolumes".into());
        }
    }
    // R22: a RoleBinding granting namespace writes applies to its own namespace object.
    if let Some(what) = probe.any_verb(&["update", "patch"], "", "namespaces") {
        hit(
            "R22",
            if cluster || privileged {
                Severity::High
            } else {
                Severity::Medium
            },
            what,
        );
    }
    // R23: configmaps in kube-system, including names-restricted grants on aws-auth/coredns.
    let in_kube_system = cluster || *scope == Scope::Namespace("kube-system".into());
    if in_kube_system {
        let unrestricted = probe.any_verb(&["update", "patch"], "", "configmaps");
        let named: Vec<&str> = ["aws-auth", "coredns"]
            .into_iter()
            .filter(|name| {
                probe.can_named("update", "", "configmaps", name)
                    || probe.can_named("patch", "", "configmaps", name)
            })
            .collect();
        if unrestricted.is_some() || !named.is_empty() {
            let aws_auth = unrestricted.is_some() || named.contains(&"aws-auth");
            let severity = if eks && aws_auth {
                Severity::Critical
            } else {
                Severity::Medium
            };
            let what = unrestricted
                .unwrap_or_else(|| format!("update/patch configmaps {}", named.join(", ")));
            hit(
                "R23",
                severity,
                format!(
                    "{what} (kube-system){}",
                    if eks && aws_auth {
                        ", EKS aws-auth"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    // R24: steal pods.
    if cluster {
        let evict = probe.can("delete", "", "pods") || probe.can("create", "", "pods/eviction");
        let node_writes =
            probe.any_of(&["update", "patch"], &[("", "nodes"), ("", "nodes/status")]);
        let node_update = probe.can("update", "", "nodes") || probe.can("patch", "", "nodes");
        if evict && node_update {
            hit(
                "R24",
                Severity::High,
                format!(
                    "delete pods or create pods/eviction with {}",
                    node_writes.join(", ")
                ),
            );
        } else if !node_writes.is_empty() {
            hit("R24", Severity::Low, node_writes.join(", "));
        }
    }
    if let Some(what) = probe.any_verb(&["update", "patch"], "", "pods/status") {
        hit("R25", Severity::Low, what);
    }
    if let Some(what) = probe.any_verb(&["update", "patch"], "", "services/status") {
        hit("R26", Severity::Medium, what);
    }
    let networking = probe.any_of(
        WRITE,
        &[
            ("", "services"),
            ("", "endpoints"),
            ("discovery.k8s.io", "endpointslices"),
            ("networking.k8s.io", "ingresses"),
            ("networking.k8s.io", "networkpolicies"),
            ("gateway.networking.k8s.io", "gateways"),
            ("gateway.networking.k8s.io", "httproutes"),
        ],
    );
    if !networking.is_empty() {
        hit("R27", Severity::Medium, networking.join(", "));
    }
    // R28: destruction.
    let delete_everything = rules.iter().any(|rule| {
        rule.verbs
            .iter()
            .any(|verb| matches!(verb.as_str(), "*" | "delete" | "deletecollection"))
            && rule
                .resources
                .iter()
                .flatten()
                .any(|resource| resource == "*")
    });
    let mut destructive = probe.any_of(&["delete", "deletecollection"], WORKLOADS);
    destructive.extend(probe.any_of(
        &["delete", "deletecollection"],
        &[("", "secrets"), ("", "events"), ("events.k8s.io", "events")],
    ));
    if delete_everything {
        hit(
            "R28",
            Severity::High,
            "delete/deletecollection on '*' resources".into(),
        );
    } else if !destructive.is_empty() {
        hit("R28", Severity::Medium, destructive.join(", "));
    }
    hits
}

/// What the audit found, with what exceptions suppressed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    pub findings: Vec<Finding>,
    /// Findings an unexpired exception waived, with the exception's name.
    pub suppressed: Vec<(Finding, String)>,
    /// Exceptions past their expiry date (they no longer suppress anything).
    pub expired_exceptions: Vec<String>,
}

/// The findings of every check over a snapshot, exceptions applied as of today (UTC).
pub fn audit_snapshot(snapshot: &Snapshot, config: &RbacConfig) -> Vec<Finding> {
    audit_snapshot_report(snapshot, config, Utc::now().date_naive()).findings
}

fn subject_of(subject: &Subject, binding: &BindingEntry) -> FindingSubject {
    let namespace = if subject.kind == "ServiceAccount" {
        Some(
            subject
                .namespace
                .clone()
                .filter(|namespace| !namespace.is_empty())
                .unwrap_or_else(|| binding.namespace.clone()),
        )
    } else {
        None
    };
    FindingSubject {
        kind: subject.kind.clone(),
        name: subject.name.clone(),
        namespace,
    }
}

fn is_system_subject(subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            subject
                .namespace
                .as_deref()
                .filter(|namespace| !namespace.is_empty())
                .unwrap_or(binding_namespace)
                == "kube-system"
        }
        _ => subject.name.starts_with("system:"),
    }
}

fn origin_of(binding: &BindingEntry, config: &RbacConfig) -> Origin {
    let bootstrap_label = binding
        .labels
        .get("kubernetes.io/bootstrapping")
        .map(String::as_str)
        == Some("rbac-defaults");
    let bootstrap_name = binding.name.starts_with("system:") || binding.name == "cluster-admin";
    if bootstrap_label
        && bootstrap_name
        && binding
            .subjects
            .iter()
            .all(|subject| is_system_subject(subject, &binding.namespace))
    {
        return Origin::Builtin;
    }
    let vendor = |name: &str| {
        config
            .vendor_prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
    };
    if vendor(&binding.name)
        && (vendor(&binding.role_ref.name) || binding.role_ref.name.starts_with("system:"))
    {
        return Origin::Vendor;
    }
    Origin::Custom
}

struct FindingSink {
    findings: Vec<Finding>,
}

impl FindingSink {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        check: &'static str,
        severity: Severity,
        subject: FindingSubject,
        binding: &str,
        role: &str,
        namespace: Option<&str>,
        reason: String,
        origin: Origin,
    ) {
        let fix = Cow::Borrowed(check_info(check).map(|info| info.fix).unwrap_or_default());
        let (severity, reason) = match origin {
            Origin::Builtin => (
                Severity::Info,
                format!("built-in default (would be {severity} if custom): {reason}"),
            ),
            Origin::Vendor => (severity, format!("vendor-managed: {reason}")),
            Origin::Custom => (severity, reason),
        };
        self.findings.push(Finding {
            check: check.to_string(),
            severity,
            subject,
            binding: binding.to_string(),
            role: role.to_string(),
            namespace: namespace.map(str::to_string),
            reason,
            fix,
            origin,
        });
    }
}

fn snapshot_looks_like_eks(snapshot: &Snapshot, config: &RbacConfig) -> bool {
    match config.cloud.as_str() {
        "eks" => true,
        "" => snapshot
            .cluster_roles
            .keys()
            .any(|(_, name)| name.starts_with("eks:")),
        _ => false,
    }
}

/// All checks, with exceptions evaluated as of `today`.
pub fn audit_snapshot_report(
    snapshot: &Snapshot,
    config: &RbacConfig,
    today: NaiveDate,
) -> AuditReport {
    let authorizer = Authorizer::new(snapshot);
    let eks = snapshot_looks_like_eks(snapshot, config);
    let mut sink = FindingSink {
        findings: Vec::new(),
    };
    // Permission hits per (role rules, scope): shared by every binding of a role.
    let mut hit_cache: HashMap<(usize, Scope), std::sync::Arc<Vec<PermissionHit>>> = HashMap::new();
    let mut hits_of = |binding: &BindingEntry| -> std::sync::Arc<Vec<PermissionHit>> {
        let Some(rules) = &binding.rules else {
            return std::sync::Arc::new(Vec::new());
        };
        let scope = match binding.kind {
            BindingKind::ClusterRoleBinding => Scope::Cluster,
            BindingKind::RoleBinding => Scope::Namespace(binding.namespace.clone()),
        };
        let key = (std::sync::Arc::as_ptr(rules) as usize, scope);
        hit_cache
            .entry(key)
            .or_insert_with_key(|(_, scope)| {
                std::sync::Arc::new(permission_hits(rules, scope, config, eks))
            })
            .clone()
    };
    let quota_namespaces: BTreeSet<&str> = snapshot
        .resource_quotas
        .keys()
        .map(|(namespace, _)| namespace.as_str())
        .collect();
    let service_account_namespaces: BTreeSet<&str> = snapshot
        .service_accounts
        .keys()
        .map(|(namespace, _)| namespace.as_str())
        .collect();
    let known_namespaces: BTreeSet<&str> = snapshot
        .namespaces
        .keys()
        .map(|(_, name)| name.as_str())
        .chain(quota_namespaces.iter().copied())
        .collect();

    for binding in authorizer.bindings() {
        let origin = origin_of(binding, config);
        let binding_text = binding.display();
        let role_text = binding.role_display();
        let scope_namespace = binding.scope();
        let hits = hits_of(binding);
        for subject in &binding.subjects {
            let finding_subject = subject_of(subject, binding);
            let is_group = subject.kind == "Group";
            // R01
            if is_group && subject.name == "system:masters" {
                sink.push("R01", Severity::Critical, finding_subject.clone(), &binding_text, &role_text, scope_namespace,
                    "binds group system:masters, whose members bypass RBAC and authorization webhooks; membership comes from client certificates and cannot be revoked by deleting bindings".into(), origin);
            }
            // R03
            if (subject.kind == "User" && subject.name == "system:anonymous")
                || (is_group && subject.name == "system:unauthenticated")
            {
                sink.push("R03", Severity::Critical, finding_subject.clone(), &binding_text, &role_text, scope_namespace,
                    format!("grants {role_text} to every unauthenticated caller that can reach the API server"), origin);
            }
            // R04
            let all_identities = is_group
                && (subject.name == "system:authenticated"
                    || subject.name == "system:serviceaccounts"
                    || subject.name.starts_with("system:serviceaccounts:"));
            if all_identities {
                let sensitive: Vec<&PermissionHit> = hits
                    .iter()
                    .filter(|hit| hit.severity >= Severity::Medium)
                    .collect();
                if !sensitive.is_empty() {
                    let severity = if sensitive
                        .iter()
                        .any(|hit| hit.severity == Severity::Critical)
                    {
                        Severity::Critical
                    } else {
                        Severity::High
                    };
                    let rows: Vec<String> = sensitive
                        .iter()
                        .map(|hit| format!("{} ({})", hit.check, hit.reason))
                        .collect();
                    sink.push(
                        "R04",
                        severity,
                        finding_subject.clone(),
                        &binding_text,
                        &role_text,
                        scope_namespace,
                        format!(
                            "every identity in {} inherits: {}",
                            subject.name,
                            rows.join("; ")
                        ),
                        origin,
                    );
                }
            }
            // Permission rows.
            for hit in hits.iter() {
                sink.push(
                    hit.check,
                    hit.severity,
                    finding_subject.clone(),
                    &binding_text,
                    &role_text,
                    scope_namespace,
                    format!("{} via {role_text}", hit.reason),
                    origin,
                );
            }
            // R31: missing role or service account.
            if binding.rules.is_none() {
                sink.push("R31", Severity::Medium, finding_subject.clone(), &binding_text, &role_text, scope_namespace,
                    format!("{role_text} does not exist: whoever creates it grants its rules to this subject"), origin);
            }
            if subject.kind == "ServiceAccount" {
                let namespace = finding_subject.namespace.clone().unwrap_or_default();
                if service_account_namespaces.contains(namespace.as_str())
                    && !snapshot
                        .service_accounts
                        .contains_key(&(namespace.clone(), subject.name.clone()))
                {
                    sink.push("R31", Severity::Medium, finding_subject.clone(), &binding_text, &role_text, scope_namespace,
                        format!("service account {namespace}/{} does not exist: a new one with this name inherits {role_text}", subject.name), origin);
                }
            }
            // R32: creation without quota.
            if snapshot.has_quota_information() && binding.rules.is_some() {
                let rules = binding.rules.as_deref().map(Vec::as_slice).unwrap_or(&[]);
                let probe = Probe { rules };
                let creates: Vec<&str> = [
                    "pods",
                    "configmaps",
                    "secrets",
                    "services",
                    "persistentvolumeclaims",
                ]
                .into_iter()
                .filter(|resource| probe.can("create", "", resource))
                .collect();
                if !creates.is_empty() {
                    let unquoted: Vec<&str> = match scope_namespace {
                        Some(namespace) => (!quota_namespaces.contains(namespace))
                            .then_some(namespace)
                            .into_iter()
                            .collect(),
                        None => known_namespaces
                            .iter()
                            .copied()
                            .filter(|namespace| !quota_namespaces.contains(namespace))
                            .collect(),
                    };
                    if !unquoted.is_empty() {
                        let shown: Vec<&str> = unquoted.iter().copied().take(5).collect();
                        sink.push(
                            "R32",
                            Severity::Low,
                            finding_subject.clone(),
                            &binding_text,
                            &role_text,
                            scope_namespace,
                            format!(
                                "create {} where no ResourceQuota limits it (namespaces: {}{})",
                                creates.join("/"),
                                shown.join(", "),
                                if unquoted.len() > 5 { ", ..." } else { "" }
                            ),
                            origin,
                        );
                    }
                }
            }
        }
    }

    // R29: powerful tokens mounted in pods; R30: cloud IAM annotations.
    let mut service_account_power: HashMap<(String, String), Option<StrongestGrant>> =
        HashMap::new();
    let mut pod_specs: Vec<(String, String, String, &PodSpec)> = Vec::new();
    for ((namespace, name), daemon_set) in &snapshot.daemon_sets {
        if let Some(spec) = daemon_set
            .spec
            .as_ref()
            .and_then(|spec| spec.template.spec.as_ref())
        {
            pod_specs.push(("DaemonSet".into(), namespace.clone(), name.clone(), spec));
        }
    }
    for ((namespace, name), deployment) in &snapshot.deployments {
        if let Some(spec) = deployment
            .spec
            .as_ref()
            .and_then(|spec| spec.template.spec.as_ref())
        {
            pod_specs.push(("Deployment".into(), namespace.clone(), name.clone(), spec));
        }
    }
    for ((namespace, name), stateful_set) in &snapshot.stateful_sets {
        if let Some(spec) = stateful_set
            .spec
            .as_ref()
            .and_then(|spec| spec.template.spec.as_ref())
        {
            pod_specs.push(("StatefulSet".into(), namespace.clone(), name.clone(), spec));
        }
    }
    for ((namespace, name), pod) in &snapshot.pods {
        let owned = pod
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|owners| !owners.is_empty());
        if let (false, Some(spec)) = (owned, pod.spec.as_ref()) {
            pod_specs.push(("Pod".into(), namespace.clone(), name.clone(), spec));
        }
    }
    for (kind, namespace, name, spec) in pod_specs {
        let account = spec
            .service_account_name
            .clone()
            .filter(|account| !account.is_empty())
            .unwrap_or_else(|| "default".into());
        let account_automount = snapshot
            .service_accounts
            .get(&(namespace.clone(), account.clone()))
            .and_then(|account| account.automount_service_account_token);
        let mounted = spec
            .automount_service_account_token
            .or(account_automount)
            .unwrap_or(true);
        if !mounted {
            continue;
        }
        let power = service_account_power
            .entry((namespace.clone(), account.clone()))
            .or_insert_with(|| strongest_grant(&authorizer, &namespace, &account, &mut hits_of))
            .clone();
        if let Some((severity, check, binding, role)) = power {
            let everywhere = if kind == "DaemonSet" {
                " on every node"
            } else {
                ""
            };
            sink.push("R29", Severity::High, FindingSubject { kind: "ServiceAccount".into(), name: account.clone(), namespace: Some(namespace.clone()) },
                &binding, &role, Some(namespace.as_str()),
                format!("{kind} {namespace}/{name} runs{everywhere} with the token of {namespace}/{account}, which holds a {severity} grant ({check}); a container escape there takes that grant"), Origin::Custom);
        }
    }
    for ((namespace, name), account) in &snapshot.service_accounts {
        let annotations = account.metadata.annotations.clone().unwrap_or_default();
        for key in [
            "eks.amazonaws.com/role-arn",
            "iam.gke.io/gcp-service-account",
            "azure.workload.identity/client-id",
        ] {
            if let Some(value) = annotations.get(key) {
                sink.push(
                    "R30",
                    Severity::Info,
                    FindingSubject {
                        kind: "ServiceAccount".into(),
                        name: name.clone(),
                        namespace: Some(namespace.clone()),
                    },
                    "",
                    "",
                    Some(namespace.as_str()),
                    format!("annotated {key}={value}: its token is also a cloud identity"),
                    Origin::Custom,
                );
            }
        }
    }

    let mut findings = sink.findings;
    findings.sort_by(|left, right| {
        right
            .severity
            .cmp(&left.severity)
            .then_with(|| left.check.cmp(&right.check))
            .then_with(|| left.binding.cmp(&right.binding))
            .then_with(|| left.subject.cmp(&right.subject))
    });
    findings.dedup();
    apply_exceptions(findings, config, today)
}

/// (severity, check, binding, role) of the strongest High-or-above grant.
type StrongestGrant = (Severity, String, String, String);

/// The strongest High-or-above grant a service account holds.
fn strongest_grant(
    authorizer: &Authorizer,
    namespace: &str,
    account: &str,
    hits_of: &mut impl FnMut(&BindingEntry) -> std::sync::Arc<Vec<PermissionHit>>,
) -> Option<StrongestGrant> {
    let user = UserInfo::with_implicit_groups(
        &format!("system:serviceaccount:{namespace}:{account}"),
        &[],
    );
    let mut best: Option<StrongestGrant> = None;
    for binding in authorizer.bindings() {
        if !binding
            .subjects
            .iter()
            .any(|subject| subject_applies_to(subject, &user, &binding.namespace))
        {
            continue;
        }
        for hit in hits_of(binding).iter() {
            if hit.severity >= Severity::High
                && best
                    .as_ref()
                    .is_none_or(|(severity, ..)| hit.severity > *severity)
            {
                best = Some((
                    hit.severity,
                    hit.check.to_string(),
                    binding.display(),
                    binding.role_display(),
                ));
            }
        }
    }
    best
}

/// Whether a waiver's fields all match the finding (unset fields match anything);
/// also used for the findings accepted from the command line (`feedback::rbac`).
pub(crate) fn exception_matches(
    exception: &super::config::RbacException,
    finding: &Finding,
) -> bool {
    let matches = |wanted: &Option<String>, actual: &str| {
        wanted.as_deref().is_none_or(|wanted| wanted == actual)
    };
    matches(&exception.check, &finding.check)
        && matches(&exception.subject_kind, &finding.subject.kind)
        && matches(&exception.subject_name, &finding.subject.name)
        && matches(
            &exception.subject_namespace,
            finding.subject.namespace.as_deref().unwrap_or(""),
        )
        && matches(&exception.binding, &finding.binding)
        && matches(&exception.role, &finding.role)
        && matches(
            &exception.namespace,
            finding.namespace.as_deref().unwrap_or(""),
        )
}

fn apply_exceptions(findings: Vec<Finding>, config: &RbacConfig, today: NaiveDate) -> AuditReport {
    let mut report = AuditReport::default();
    for (name, exception) in &config.exceptions {
        if exception.expires < today {
            report
                .expired_exceptions
                .push(format!("{name} (expired {})", exception.expires));
        }
    }
    'findings: for mut finding in findings {
        for (name, exception) in &config.exceptions {
            if exception_matches(exception, &finding) {
                if exception.expires >= today {
                    report.suppressed.push((finding, name.clone()));
                    continue 'findings;
                }
                let _ = write!(
                    finding.reason,
                    " [exception {name} expired {}]",
                    exception.expires
                );
            }
        }
        report.findings.push(finding);
    }
    report
}

/// `{"findings": [...]}`, streamed to `out` (no intermediate JSON tree).
pub fn write_json(findings: &[Finding], out: &mut impl io::Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Document<'a> {
        findings: &'a [Finding],
    }
    serde_json::to_writer_pretty(&mut *out, &Document { findings }).map_err(io::Error::other)?;
    writeln!(out)
}

/// A fixed-width table for terminals, streamed to `out`.
pub fn write_table(findings: &[Finding], out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<4} {:<8} {:<8} {:<40} {:<45} {:<40} {:<16} REASON",
        "CHECK", "SEVERITY", "ORIGIN", "SUBJECT", "BINDING", "ROLE", "NAMESPACE"
    )?;
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.severity).or_default() += 1;
        let subject = match &finding.subject.namespace {
            Some(namespace) => format!(
                "{}:{}/{}",
                finding.subject.kind, namespace, finding.subject.name
            ),
            None => format!("{}:{}", finding.subject.kind, finding.subject.name),
        };
        let origin = match finding.origin {
            Origin::Custom => "custom",
            Origin::Builtin => "builtin",
            Origin::Vendor => "vendor",
        };
        writeln!(
            out,
            "{:<4} {:<8} {:<8} {:<40} {:<45} {:<40} {:<16} {}",
            finding.check,
            finding.severity.as_str(),
            origin,
            subject,
            finding.binding,
            finding.role,
            finding.namespace.as_deref().unwrap_or("*"),
            finding.reason
        )?;
    }
    let summary: Vec<String> = counts
        .iter()
        .rev()
        .map(|(severity, count)| format!("{count} {severity}"))
        .collect();
    writeln!(
        out,
        "{} findings{}{}",
        findings.len(),
        if summary.is_empty() { "" } else { ": " },
        summary.join(", ")
    )
}

/// SARIF 2.1.0: one rule per check, one result per finding, located logically
/// at the binding (or subject) since RBAC objects have no file position.
/// Streamed: the header, then one result at a time.
pub fn write_sarif(findings: &[Finding], out: &mut impl io::Write) -> io::Result<()> {
    let rules: Vec<serde_json::Value> = CHECKS
        .iter()
        .map(|check| {
            serde_json::json!({
                "id": check.id,
                "name": check.title,
                "shortDescription": {"text": check.title},
                "help": {"text": check.fix},
                "helpUri": "https://kubernetes.io/docs/concepts/security/rbac-good-practices/",
            })
        })
        .collect();
    let driver = serde_json::json!({
        "name": "auditlens",
        "informationUri": "https://github.com/auditlens/auditlens",
        "version": env!("CARGO_PKG_VERSION"),
        "rules": rules,
    });
    write!(
        out,
        "{{\"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\", \"version\": \"2.1.0\", \"runs\": [{{\"tool\": {{\"driver\": "
    )?;
    serde_json::to_writer(&mut *out, &driver).map_err(io::Error::other)?;
    write!(out, "}}, \"results\": [")?;
    for (index, finding) in findings.iter().enumerate() {
        let level = match finding.severity {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "note",
        };
        let location = if finding.binding.is_empty() {
            format!("{}/{}", finding.subject.kind, finding.subject.name)
        } else {
            finding.binding.clone()
        };
        let security_severity = match finding.severity {
            Severity::Critical => "9.5",
            Severity::High => "8.0",
            Severity::Medium => "5.5",
            Severity::Low => "3.0",
            Severity::Info => "0.0",
        };
        let result = serde_json::json!({
            "ruleId": finding.check,
            "ruleIndex": CHECKS.iter().position(|check| check.id == finding.check).unwrap_or(0),
            "level": level,
            "message": {"text": format!("{} {}: {}. Fix: {}", finding.subject.kind, finding.subject.name, finding.reason, finding.fix)},
            "locations": [{"logicalLocations": [{"fullyQualifiedName": location, "kind": "resource"}]}],
            "partialFingerprints": {"auditlens/v1": format!("{}|{}|{}|{}", finding.check, finding.binding, finding.subject.kind, finding.subject.name)},
            "properties": {
                "severity": finding.severity.as_str(),
                "security-severity": security_severity,
                "origin": finding.origin,
                "role": finding.role,
                "namespace": finding.namespace,
            },
        });
        if index > 0 {
            write!(out, ",")?;
        }
        writeln!(out)?;
        serde_json::to_writer(&mut *out, &result).map_err(io::Error::other)?;
    }
    writeln!(out, "]}}]}}")
}

fn render(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut buffer = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write(&mut buffer);
    String::from_utf8_lossy(&buffer).into_owned()
}

/// [`write_json`] into a String.
pub fn render_json(findings: &[Finding]) -> String {
    render(|out| write_json(findings, out))
}

/// [`write_table`] into a String.
pub fn render_table(findings: &[Finding]) -> String {
    render(|out| write_table(findings, out))
}

/// [`write_sarif`] into a String.
pub fn render_sarif(findings: &[Finding]) -> String {
    render(|out| write_sarif(findings, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<PolicyRule> {
        serde_yaml::from_str(yaml).expect("rules")
    }

    fn checks_of(rules: &[PolicyRule], scope: Scope) -> Vec<&'static str> {
        permission_hits(rules, &scope, &RbacConfig::default(), false)
            .iter()
            .map(|hit| hit.check)
            .collect()
    }

    #[test]
    fn cluster_admin_shape_hits_the_critical_rows() {
        let admin = rules(
            "- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n- {nonResourceURLs: ['*'], verbs: ['*']}",
        );
        let hits = checks_of(&admin, Scope::Cluster);
        for expected in [
            "R02", "R05", "R06", "R07", "R09", "R10", "R17", "R18", "R19", "R28",
        ] {
            assert!(hits.contains(&expected), "{expected} missing from {hits:?}");
        }
        assert!(
            !hits.contains(&"R08"),
            "R08 is only for RBAC writes without escalate/bind"
        );
    }

    #[test]
    fn api_group_is_respected() {
        // krane #80: secrets in a custom group are not core secrets.
        let custom =
            rules("- {apiGroups: ['example.com'], resources: ['secrets'], verbs: ['get', 'list']}");
        assert!(checks_of(&custom, Scope::Cluster).is_empty());
    }

    #[test]
    fn cluster_scoped_rows_need_a_cluster_wide_grant() {
        let nodes = rules("- {apiGroups: [''], resources: ['nodes/proxy'], verbs: ['get']}");
        assert_eq!(checks_of(&nodes, Scope::Cluster), vec!["R17"]);
        assert!(checks_of(&nodes, Scope::Namespace("app".into())).is_empty());
    }

    #[test]
    fn severity_follows_scope() {
        let secrets = rules("- {apiGroups: [''], resources: ['secrets'], verbs: ['list']}");
        let severity = |scope: Scope| {
            permission_hits(&secrets, &scope, &RbacConfig::default(), false)[0].severity
        };
        assert_eq!(severity(Scope::Cluster), Severity::Critical);
        assert_eq!(
            severity(Scope::Namespace("kube-system".into())),
            Severity::Critical
        );
        assert_eq!(severity(Scope::Namespace("app".into())), Severity::High);
    }

    #[test]
    fn names_restricted_reads_are_not_secret_listing() {
        let named = rules(
            "- {apiGroups: [''], resources: ['secrets'], resourceNames: ['tls'], verbs: ['get', 'list']}",
        );
        assert!(checks_of(&named, Scope::Namespace("app".into())).is_empty());
    }

    #[test]
    fn expired_exceptions_stop_suppressing() {
        let finding = Finding {
            check: "R10".into(),
            severity: Severity::High,
            subject: FindingSubject {
                kind: "User".into(),
                name: "alice".into(),
                namespace: None,
            },
            binding: "RoleBinding/app/x".into(),
            role: "Role/app/x".into(),
            namespace: Some("app".into()),
            reason: "r".into(),
            fix: "f".into(),
            origin: Origin::Custom,
        };
        let mut config = RbacConfig::default();
        config.exceptions.insert(
            "alice".into(),
            super::super::config::RbacException {
                check: Some("R10".into()),
                subject_kind: None,
                subject_name: Some("alice".into()),
                subject_namespace: None,
                binding: None,
                role: None,
                namespace: None,
                expires: NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
                reason: "ticket".into(),
            },
        );
        let before = apply_exceptions(
            vec![finding.clone()],
            &config,
            NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
        );
        assert!(before.findings.is_empty());
        assert_eq!(before.suppressed.len(), 1);
        let after = apply_exceptions(
            vec![finding],
            &config,
            NaiveDate::from_ymd_opt(2027, 1, 1).expect("date"),
        );
        assert_eq!(after.findings.len(), 1);
        assert!(after.findings[0].reason.contains("expired"));
        assert_eq!(after.expired_exceptions.len(), 1);
    }
}
