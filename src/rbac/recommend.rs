//! Least-privilege roles from observed usage: for an identity (or all of
//! them) and a period, the Roles/ClusterRoles and bindings that allow exactly
//! the requests it made and were allowed, as kubectl-appliable YAML, with the
//! evidence behind every rule and the diff against what it holds now.
//!
//! Design decision: no silent widening. A rule carries `resourceNames` unless
//! the verb cannot be restricted by name (create, list, watch,
//! deletecollection) or the caller asked `--generalize names`; namespaced usage
//! becomes one Role per namespace unless the caller asked `--generalize
//! namespaces`. Either generalization is stated in an annotation. Denied
//! requests are reported, never granted.

use super::authorizer::{
    Authorizer, Grant, RequestAttributes, UserInfo, rule_allows, verb_carries_no_name,
};
use super::snapshot::Snapshot;
use super::{RbacError, Result};
use crate::audit::{Identity, IdentityKind, format_rfc3339_micros};
use chrono::{DateTime, Utc};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// What to recommend for.
#[derive(Debug, Clone, Default)]
pub struct RecommendOptions {
    /// One identity (username; for impersonated requests the impersonated user), or all when `None`.
    pub identity: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Drop `resourceNames` (stated in an annotation).
    pub generalize_names: bool,
    /// One ClusterRole + ClusterRoleBinding instead of a Role per namespace (stated in an annotation).
    pub generalize_namespaces: bool,
}

/// One request as read from the `requests` view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedRequest {
    pub identity: String,
    /// The requester's groups; empty for an impersonated request (the
    /// impersonator's groups are not the impersonated identity's).
    pub groups: Vec<String>,
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// For non-resource requests: the path without the query.
    pub path: Option<String>,
    /// Microseconds since the epoch, UTC.
    pub ts: i64,
    pub audit_id: String,
    pub allowed: bool,
}

impl ObservedRequest {
    pub fn attributes(&self) -> RequestAttributes {
        match &self.path {
            Some(path) => RequestAttributes::non_resource(&self.verb, path),
            None => {
                let combined = if self.subresource.is_empty() {
                    self.resource.clone()
                } else {
                    format!("{}/{}", self.resource, self.subresource)
                };
                RequestAttributes::resource(
                    &self.verb,
                    &self.api_group,
                    &combined,
                    &self.namespace,
                    &self.name,
                )
            }
        }
    }
}

/// Why a generated rule exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEvidence {
    /// `Role/ns/name#index` or `ClusterRole/name#index`.
    pub rule: String,
    pub count: u64,
    pub first_use: String,
    pub last_use: String,
    pub example_audit_id: String,
}

/// A grant the identity holds but did not use in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnusedGrant {
    pub sensitive: bool,
    /// What makes it sensitive (secrets, nodes, webhooks, RBAC, CRDs, impersonate, escalate/bind, wildcard).
    pub why_sensitive: Vec<String>,
    pub grant: Grant,
}

/// Denied requests of one shape, reported (never granted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeniedRequest {
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub count: u64,
    pub example_audit_id: String,
}

/// The recommendation for one identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleRecommendation {
    pub identity: String,
    pub subject: Subject,
    pub since: Option<String>,
    pub until: Option<String>,
    pub allowed_requests: u64,
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub evidence: Vec<RuleEvidence>,
    /// Generalizations applied (empty unless asked).
    pub generalized: Vec<String>,
    /// `None` without a current snapshot.
    pub granted_rules: Option<usize>,
    pub used_grant_rules: Option<usize>,
    /// used / granted: 1.0 is least privilege, near 0 is over-privileged.
    pub over_privilege_score: Option<f64>,
    /// Sensitive first.
    pub unused_grants: Vec<UnusedGrant>,
    pub denied: Vec<DeniedRequest>,
}

/// Reads the identity's requests from the data folder's `requests` view (an
/// in-memory DuckDB over the Parquet), then builds the recommendations.
pub fn recommend(
    data_dir: &Path,
    current: Option<&Snapshot>,
    options: &RecommendOptions,
) -> Result<Vec<RoleRecommendation>> {
    let connection = duckdb::Connection::open_in_memory()
        .map_err(RbacError::duckdb("opening an in-memory DuckDB"))?;
    crate::store::views::install_views(&connection, data_dir).map_err(|source| {
        RbacError::Store {
            context: format!("reading {}", data_dir.display()),
            source: Box::new(source),
        }
    })?;
    let requests = load_requests(&connection, options)?;
    Ok(recommend_from_requests(&requests, current, options))
}

fn timestamp_parameter(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(|at| at.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

/// The requests of the period (one row per request), oldest first.
pub fn load_requests(
    connection: &duckdb::Connection,
    options: &RecommendOptions,
) -> Result<Vec<ObservedRequest>> {
    // Conditions are added only for the filters given, each with its own
    // parameter, so DuckDB never has to guess a parameter's type.
    let mut conditions = Vec::new();
    let mut parameters: Vec<String> = Vec::new();
    if let Some(identity) = &options.identity {
        parameters.push(identity.clone());
        conditions.push(format!(
            "coalesce(nullif(impersonated_user, ''), username) = ${}",
            parameters.len()
        ));
    }
    if let Some(since) = timestamp_parameter(options.since) {
        parameters.push(since);
        conditions.push(format!("ts >= CAST(${} AS TIMESTAMP)", parameters.len()));
    }
    if let Some(until) = timestamp_parameter(options.until) {
        parameters.push(until);
        conditions.push(format!("ts < CAST(${} AS TIMESTAMP)", parameters.len()));
    }
    let sql = format!(
        "SELECT coalesce(nullif(impersonated_user, ''), username) AS identity,
               CASE WHEN coalesce(impersonated_user, '') = '' THEN coalesce(to_json(user_groups)::VARCHAR, '[]') ELSE '[]' END,
               verb, coalesce(api_group, ''), coalesce(resource, ''), coalesce(subresource, ''),
               coalesce(namespace, ''), coalesce(name, ''), coalesce(request_uri, ''),
               epoch_us(ts), audit_id, decision, response_code
        FROM requests {}
        ORDER BY ts, audit_id",
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        }
    );
    let mut statement = connection
        .prepare(&sql)
        .map_err(RbacError::duckdb("querying the requests view"))?;
    let rows = statement
        .query_map(duckdb::params_from_iter(parameters.iter()), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, String>(7)?,
                row.get::<_, String>(8)?,
                row.get::<_, i64>(9)?,
                row.get::<_, String>(10)?,
                row.get::<_, Option<String>>(11)?,
                row.get::<_, Option<i32>>(12)?,
            ))
        })
        .map_err(RbacError::duckdb("querying the requests view"))?;
    let mut requests = Vec::new();
    for row in rows {
        let (
            identity,
            groups,
            verb,
            api_group,
            resource,
            subresource,
            namespace,
            name,
            uri,
            ts,
            audit_id,
            decision,
            code,
        ) = row.map_err(RbacError::duckdb("reading the requests view"))?;
        let allowed = match (decision.as_deref(), code) {
            (Some("allow"), _) => true,
            (Some(_), _) => false,
            (None, Some(401 | 403)) | (None, None) => false,
            (None, Some(_)) => true,
        };
        // 401: not authenticated, nothing RBAC could grant; skip.
        if code == Some(401) {
            continue;
        }
        let path = resource
            .is_empty()
            .then(|| uri.split('?').next().unwrap_or("").to_string());
        requests.push(ObservedRequest {
            identity,
            groups: serde_json::from_str(&groups).unwrap_or_default(),
            verb,
            api_group,
            resource,
            subresource,
            namespace,
            name,
            path,
            ts,
            audit_id,
            allowed,
        });
    }
    Ok(requests)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RuleTarget {
    /// (api group, resource or resource/subresource)
    Resource(String, String),
    NonResource(String),
}

#[derive(Debug, Default)]
struct Usage {
    count: u64,
    first: i64,
    last: i64,
    example: String,
    names: BTreeSet<String>,
    unnamed: bool,
    namespaces: BTreeSet<String>,
}

fn subject_for(identity: &str) -> Subject {
    let classified = Identity::classify(identity);
    match (
        classified.kind,
        classified.service_account_namespace,
        classified.service_account_name,
    ) {
        (IdentityKind::ServiceAccount, Some(namespace), Some(name)) => Subject {
            kind: "ServiceAccount".into(),
            name: name.to_string(),
            namespace: Some(namespace.to_string()),
            api_group: None,
        },
        _ => Subject {
            kind: "User".into(),
            name: identity.to_string(),
            namespace: None,
            api_group: Some("rbac.authorization.k8s.io".into()),
        },
    }
}

fn object_name(identity: &str) -> String {
    let cleaned: String = identity
        .chars()
        .map(|character| {
            if character == '/' || character == '%' {
                '-'
            } else {
                character
            }
        })
        .collect();
    format!("auditlens:recommended:{cleaned}")
}

/// Sensitive kinds a grant can touch, by the authorizer's matcher.
pub(crate) fn sensitivity(rule: &PolicyRule) -> Vec<String> {
    let probes: [(&str, &str, &str, &str); 12] = [
        ("secrets", "get", "", "secrets"),
        ("nodes", "get", "", "nodes"),
        ("nodes/proxy", "get", "", "nodes/proxy"),
        (
            "mutating webhooks",
            "update",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        ),
        (
            "validating webhooks",
            "update",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        ),
        (
            "RBAC roles",
            "create",
            "rbac.authorization.k8s.io",
            "clusterroles",
        ),
        (
            "RBAC bindings",
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
        ),
        (
            "RBAC role bindings",
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
        ),
        (
            "CRDs",
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
        ),
        ("impersonate", "impersonate", "", "users"),
        ("escalate", "escalate", "rbac.authorization.k8s.io", "roles"),
        ("bind", "bind", "rbac.authorization.k8s.io", "roles"),
    ];
    let mut why: Vec<String> = probes
        .iter()
        .filter(|(_, verb, group, resource)| {
            rule_allows(
                rule,
                &RequestAttributes::resource(verb, group, resource, "", ""),
            )
        })
        .map(|(label, ..)| label.to_string())
        .collect();
    if rule.verbs.iter().any(|verb| verb == "*")
        || rule
            .resources
            .iter()
            .flatten()
            .any(|resource| resource == "*")
    {
        why.push("wildcard".into());
    }
    why.dedup();
    why
}

/// Builds the recommendations from requests already read.
pub fn recommend_from_requests(
    requests: &[ObservedRequest],
    current: Option<&Snapshot>,
    options: &RecommendOptions,
) -> Vec<RoleRecommendation> {
    let mut by_identity: BTreeMap<&str, Vec<&ObservedRequest>> = BTreeMap::new();
    for request in requests {
        if options
            .identity
            .as_deref()
            .is_none_or(|identity| identity == request.identity)
        {
            by_identity
                .entry(&request.identity)
                .or_default()
                .push(request);
        }
    }
    let authorizer = current.map(Authorizer::new);
    by_identity
        .into_iter()
        .map(|(identity, requests)| {
            recommend_one(identity, &requests, authorizer.as_ref(), options)
        })
        .collect()
}

fn recommend_one(
    identity: &str,
    requests: &[&ObservedRequest],
    authorizer: Option<&Authorizer>,
    options: &RecommendOptions,
) -> RoleRecommendation {
    let subject = subject_for(identity);
    let name = object_name(identity);
    // scope ("" = cluster) -> target -> verb -> usage
    let mut usage: BTreeMap<String, BTreeMap<RuleTarget, BTreeMap<String, Usage>>> =
        BTreeMap::new();
    let mut denied: BTreeMap<(String, String, String, String), DeniedRequest> = BTreeMap::new();
    let mut allowed_requests = 0u64;
    for request in requests {
        let target = match &request.path {
            Some(path) => RuleTarget::NonResource(path.clone()),
            None => RuleTarget::Resource(
                request.api_group.clone(),
                if request.subresource.is_empty() {
                    request.resource.clone()
                } else {
                    format!("{}/{}", request.resource, request.subresource)
                },
            ),
        };
        if !request.allowed {
            let resource = match &target {
                RuleTarget::Resource(group, resource) if group.is_empty() => resource.clone(),
                RuleTarget::Resource(group, resource) => format!("{resource}.{group}"),
                RuleTarget::NonResource(path) => path.clone(),
            };
            let key = (
                request.verb.clone(),
                resource.clone(),
                request.namespace.clone(),
                request.name.clone(),
            );
            let entry = denied.entry(key).or_insert_with(|| DeniedRequest {
                verb: request.verb.clone(),
                resource,
                namespace: request.namespace.clone(),
                name: request.name.clone(),
                count: 0,
                example_audit_id: request.audit_id.clone(),
            });
            entry.count += 1;
            continue;
        }
        allowed_requests += 1;
        let scope = if options.generalize_namespaces || request.path.is_some() {
            String::new()
        } else {
            request.namespace.clone()
        };
        let entry = usage
            .entry(scope)
            .or_default()
            .entry(target)
            .or_default()
            .entry(request.verb.clone())
            .or_default();
        if entry.count == 0 {
            entry.first = request.ts;
            entry.example = request.audit_id.clone();
        }
        entry.count += 1;
        entry.first = entry.first.min(request.ts);
        entry.last = entry.last.max(request.ts);
        let name_restrictable =
            !verb_carries_no_name(&request.verb, &request.subresource) && request.path.is_none();
        if name_restrictable && !request.name.is_empty() {
            entry.names.insert(request.name.clone());
        } else {
            entry.unnamed = true;
        }
        entry.namespaces.insert(request.namespace.clone());
    }

    let mut generalized = Vec::new();
    if options.generalize_names {
        generalized.push("names: resourceNames dropped (--generalize names)".to_string());
    }
    if options.generalize_namespaces {
        let used: BTreeSet<String> = usage
            .values()
            .flat_map(|targets| targets.values())
            .flat_map(|verbs| verbs.values())
            .flat_map(|usage| usage.namespaces.iter().cloned())
            .filter(|namespace| !namespace.is_empty())
            .collect();
        generalized.push(format!(
            "namespaces: one cluster-wide role instead of Roles in {} (--generalize namespaces)",
            used.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }

    let mut recommendation = RoleRecommendation {
        identity: identity.to_string(),
        subject: subject.clone(),
        since: options.since.map(|at| at.to_rfc3339()),
        until: options.until.map(|at| at.to_rfc3339()),
        allowed_requests,
        roles: Vec::new(),
        cluster_roles: Vec::new(),
        role_bindings: Vec::new(),
        cluster_role_bindings: Vec::new(),
        evidence: Vec::new(),
        generalized: generalized.clone(),
        granted_rules: None,
        used_grant_rules: None,
        over_privilege_score: None,
        unused_grants: Vec::new(),
        denied: denied.into_values().collect(),
    };

    for (scope, targets) in &usage {
        let mut rules = Vec::new();
        let mut annotations = BTreeMap::new();
        annotations.insert("auditlens.io/identity".to_string(), identity.to_string());
        annotations.insert(
            "auditlens.io/period".to_string(),
            format!(
                "{} .. {}",
                recommendation.since.as_deref().unwrap_or("beginning"),
                recommendation.until.as_deref().unwrap_or("end")
            ),
        );
        if !generalized.is_empty() {
            annotations.insert(
                "auditlens.io/generalized".to_string(),
                generalized.join("; "),
            );
        }
        let kind_label = if scope.is_empty() {
            format!("ClusterRole/{name}")
        } else {
            format!("Role/{scope}/{name}")
        };
        for (target, verbs) in targets {
            for (verb, usage) in verbs {
                let rule = match target {
                    RuleTarget::Resource(group, resource) => PolicyRule {
                        api_groups: Some(vec![group.clone()]),
                        resources: Some(vec![resource.clone()]),
                        verbs: vec![verb.clone()],
                        resource_names: (!usage.unnamed
                            && !options.generalize_names
                            && !usage.names.is_empty())
                        .then(|| usage.names.iter().cloned().collect()),
                        non_resource_urls: None,
                    },
                    RuleTarget::NonResource(path) => PolicyRule {
                        api_groups: None,
                        resources: None,
                        verbs: vec![verb.clone()],
                        resource_names: None,
                        non_resource_urls: Some(vec![path.clone()]),
                    },
                };
                let index = rules.len();
                let first_use = format_rfc3339_micros(usage.first);
                let last_use = format_rfc3339_micros(usage.last);
                annotations.insert(
                    format!("auditlens.io/rule-{index}"),
                    format!(
                        "count={} first={first_use} last={last_use} example={}",
                        usage.count, usage.example
                    ),
                );
                recommendation.evidence.push(RuleEvidence {
                    rule: format!("{kind_label}#{index}"),
                    count: usage.count,
                    first_use,
                    last_use,
                    example_audit_id: usage.example.clone(),
                });
                rules.push(rule);
            }
        }
        let labels = BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "auditlens-recommend".to_string(),
        )]);
        let role_ref_kind = if scope.is_empty() {
            "ClusterRole"
        } else {
            "Role"
        };
        let role_ref = RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: role_ref_kind.into(),
            name: name.clone(),
        };
        if scope.is_empty() {
            recommendation.cluster_roles.push(ClusterRole {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(labels.clone()),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                },
                rules: Some(rules),
                aggregation_rule: None,
            });
            recommendation
                .cluster_role_bindings
                .push(ClusterRoleBinding {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    },
                    role_ref,
                    subjects: Some(vec![subject.clone()]),
                });
        } else {
            recommendation.roles.push(Role {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(scope.clone()),
                    labels: Some(labels.clone()),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                },
                rules: Some(rules),
            });
            recommendation.role_bindings.push(RoleBinding {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(scope.clone()),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                role_ref,
                subjects: Some(vec![subject.clone()]),
            });
        }
    }

    if let Some(authorizer) = authorizer {
        let groups: Vec<String> = requests
            .iter()
            .flat_map(|request| request.groups.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let user = UserInfo::with_implicit_groups(identity, &groups);
        let grants = authorizer.grants_for(&user);
        let allowed: Vec<RequestAttributes> = requests
            .iter()
            .filter(|request| request.allowed)
            .map(|request| request.attributes())
            .collect();
        let mut used = 0usize;
        for grant in &grants {
            let is_used = allowed.iter().any(|request| grant.covers(request));
            if is_used {
                used += 1;
            } else {
                let why = sensitivity(&grant.rule);
                recommendation.unused_grants.push(UnusedGrant {
                    sensitive: !why.is_empty(),
                    why_sensitive: why,
                    grant: grant.clone(),
                });
            }
        }
        recommendation.unused_grants.sort_by(|left, right| {
            right
                .sensitive
                .cmp(&left.sensitive)
                .then_with(|| right.why_sensitive.len().cmp(&left.why_sensitive.len()))
        });
        recommendation.granted_rules = Some(grants.len());
        recommendation.used_grant_rules = Some(used);
        recommendation.over_privilege_score =
            (!grants.is_empty()).then(|| used as f64 / grants.len() as f64);
    }
    recommendation
}

impl RoleRecommendation {
    /// A snapshot of just the generated objects (what `kubectl apply` would create).
    pub fn as_snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        self.roles
            .iter()
            .cloned()
            .for_each(|role| snapshot.upsert_role(role));
        self.cluster_roles
            .iter()
            .cloned()
            .for_each(|role| snapshot.upsert_cluster_role(role));
        self.role_bindings
            .iter()
            .cloned()
            .for_each(|binding| snapshot.upsert_role_binding(binding));
        self.cluster_role_bindings
            .iter()
            .cloned()
            .for_each(|binding| snapshot.upsert_cluster_role_binding(binding));
        snapshot
    }

    /// Multi-document YAML for `kubectl apply -f -`, the diff and denied
    /// requests as leading comments.
    pub fn to_yaml(&self) -> Result<String> {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# auditlens rbac recommend: {} ({} allowed requests)",
            self.identity, self.allowed_requests
        );
        for line in &self.generalized {
            let _ = writeln!(out, "# generalized {line}");
        }
        if let (Some(granted), Some(used)) = (self.granted_rules, self.used_grant_rules) {
            let _ = writeln!(
                out,
                "# current grants: {used} of {granted} rules used, over-privilege score (used/granted) {:.2}",
                self.over_privilege_score.unwrap_or(0.0)
            );
            for unused in &self.unused_grants {
                let rule = serde_json::to_string(&unused.grant.rule).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "# unused{}: {} via {} in {}: {rule}",
                    if unused.sensitive {
                        format!(" SENSITIVE ({})", unused.why_sensitive.join(", "))
                    } else {
                        String::new()
                    },
                    unused.grant.role,
                    unused.grant.binding,
                    unused
                        .grant
                        .namespace
                        .as_deref()
                        .unwrap_or("all namespaces"),
                );
            }
        }
        for denied in &self.denied {
            let _ = writeln!(
                out,
                "# denied (not granted): {} {} ns={} name={} x{} e.g. {}",
                denied.verb,
                denied.resource,
                denied.namespace,
                denied.name,
                denied.count,
                denied.example_audit_id
            );
        }
        for role in &self.cluster_roles {
            out.push_str("---\n");
            out.push_str(&yaml(role)?);
        }
        for binding in &self.cluster_role_bindings {
            out.push_str("---\n");
            out.push_str(&yaml(binding)?);
        }
        for role in &self.roles {
            out.push_str("---\n");
            out.push_str(&yaml(role)?);
        }
        for binding in &self.role_bindings {
            out.push_str("---\n");
            out.push_str(&yaml(binding)?);
        }
        Ok(out)
    }
}

fn yaml<T: Serialize>(value: &T) -> Result<String> {
    serde_yaml::to_string(value)
        .map_err(|error| RbacError::Invalid(format!("rendering YAML: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn request(
        identity: &str,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
        id: &str,
        allowed: bool,
    ) -> ObservedRequest {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        ObservedRequest {
            identity: identity.into(),
            groups: vec![],
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            path: None,
            ts: 1_700_000_000_000_000,
            audit_id: id.into(),
            allowed,
        }
    }

    #[test]
    fn names_are_kept_unless_generalized_and_denied_are_not_granted() {
        let requests = vec![
            request(
                "alice",
                "get",
                "",
                "configmaps",
                "app",
                "settings",
                "a1",
                true,
            ),
            request("alice", "list", "", "pods", "app", "", "a2", true),
            request("alice", "get", "", "secrets", "app", "db", "a3", false),
        ];
        let options = RecommendOptions::default();
        let recommendations = recommend_from_requests(&requests, None, &options);
        assert_eq!(recommendations.len(), 1);
        let recommendation = &recommendations[0];
        assert_eq!(recommendation.roles.len(), 1);
        let rules = recommendation.roles[0].rules.clone().expect("rules");
        let configmaps = rules
            .iter()
            .find(|rule| rule.resources == Some(vec!["configmaps".into()]))
            .expect("configmaps rule");
        assert_eq!(
            configmaps.resource_names,
            Some(vec!["settings".to_string()])
        );
        assert_eq!(recommendation.denied.len(), 1);
        let authorizer = Authorizer::new(&recommendation.as_snapshot());
        let alice = UserInfo::new("alice", Vec::<String>::new());
        assert!(
            !authorizer
                .authorize(&alice, &requests[2].attributes())
                .allowed
        );
        let generalized = recommend_from_requests(
            &requests,
            None,
            &RecommendOptions {
                generalize_names: true,
                ..RecommendOptions::default()
            },
        );
        let rules = generalized[0].roles[0].rules.clone().expect("rules");
        assert!(rules.iter().all(|rule| rule.resource_names.is_none()));
        assert!(
            generalized[0].roles[0]
                .metadata
                .annotations
                .as_ref()
                .expect("annotations")
                .contains_key("auditlens.io/generalized")
        );
    }
}
