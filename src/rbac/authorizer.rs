//! The RBAC authorizer, with exactly the API server's semantics, over a
//! [`Snapshot`]: rule matching, binding resolution, aggregated ClusterRoles,
//! subjects and implicit groups, the `system:masters` bypass, effective
//! permissions of an identity and who-can.
//!
//! Semantics (kube-apiserver `plugin/pkg/auth/authorizer/rbac` and
//! `pkg/apis/rbac/v1/evaluation_helpers.go`), which every other part of this
//! module relies on:
//! - verbs and apiGroups match exactly or by `*`;
//! - a resource rule matches `*`, the exact `resource` or `resource/subresource`
//!   string, or `*/subresource`. `pods/*` is matched literally: the API server
//!   does not expand it, so it grants no real subresource (tested);
//! - `resourceNames` restrict only requests that carry a name; list, watch,
//!   deletecollection and the create of a new object (POST to a collection)
//!   carry none ([`RequestAttributes::resource`] drops it), so a
//!   names-restricted rule never grants them. A create on a subresource
//!   (`pods/exec`, `serviceaccounts/token`, `pods/eviction`) names its parent
//!   object, so resourceNames do restrict it, as in the API server;
//! - non-resource URLs match exactly, by `*`, or by a prefix ending in `*`;
//! - ClusterRoleBindings apply everywhere; a RoleBinding applies only to requests
//!   in its own namespace, also when it references a ClusterRole; non-resource
//!   requests have no namespace, so only ClusterRoleBindings grant them;
//! - an aggregated ClusterRole holds the rules of every ClusterRole its
//!   `aggregationRule` selects (matchLabels and matchExpressions), transitively;
//! - `system:masters` is allowed everything before RBAC is asked (the API
//!   server's privileged-group authorizer).
//!
//! Implicit groups are the authenticator's job, not RBAC's:
//! [`UserInfo::with_implicit_groups`] adds them for an identity given by name.

use super::snapshot::Snapshot;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub const MASTERS_GROUP: &str = "system:masters";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// Who is asking: a username and its groups, as the authenticator hands them to the authorizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// Exactly these groups, nothing added.
    pub fn new(
        name: impl Into<String>,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }

    /// The groups an authenticator adds: `system:unauthenticated` for
    /// `system:anonymous`, else `system:authenticated`; for
    /// `system:serviceaccount:<ns>:<name>` also `system:serviceaccounts` and
    /// `system:serviceaccounts:<ns>`. `extra_groups` (e.g. from the token) are kept.
    pub fn with_implicit_groups(name: &str, extra_groups: &[String]) -> UserInfo {
        let mut groups: Vec<String> = extra_groups.to_vec();
        let mut add = |group: String| {
            if !groups.contains(&group) {
                groups.push(group);
            }
        };
        if name == ANONYMOUS_USER {
            add(UNAUTHENTICATED_GROUP.to_string());
        } else {
            add(AUTHENTICATED_GROUP.to_string());
            if let Some(rest) = name.strip_prefix("system:serviceaccount:")
                && let Some((namespace, _)) = rest.split_once(':')
            {
                add(SERVICE_ACCOUNTS_GROUP.to_string());
                add(format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"));
            }
        }
        UserInfo {
            name: name.to_string(),
            groups,
        }
    }

    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|group| group == MASTERS_GROUP)
    }
}

/// What is asked: a resource request or a non-resource request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RequestAttributes {
    pub verb: String,
    /// Empty for cluster-scoped and non-resource requests.
    pub namespace: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    /// Empty when the request carries no name.
    pub name: String,
    /// `Some(path)` for a non-resource request.
    pub path: Option<String>,
}

/// Whether a request with this verb (on this subresource, empty for none)
/// carries no object name, so `resourceNames` cannot restrict it: list, watch,
/// deletecollection, and create of a new object. A create on a subresource
/// (`pods/exec`) names the parent object.
pub fn verb_carries_no_name(verb: &str, subresource: &str) -> bool {
    matches!(verb, "list" | "watch" | "deletecollection")
        || (verb == "create" && subresource.is_empty())
}

impl RequestAttributes {
    /// A resource request. `resource` may be `resource/subresource`. The name is
    /// dropped where the API server has none (see [`verb_carries_no_name`]).
    pub fn resource(
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> RequestAttributes {
        let (resource, subresource) = match resource.split_once('/') {
            Some((resource, subresource)) => (resource, subresource),
            None => (resource, ""),
        };
        RequestAttributes {
            verb: verb.to_string(),
            namespace: namespace.to_string(),
            api_group: api_group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            name: if verb_carries_no_name(verb, subresource) {
                String::new()
            } else {
                name.to_string()
            },
            path: None,
        }
    }

    /// A non-resource request (`/healthz`, `/metrics`, `/apis`...); `verb` is the lowercase HTTP verb.
    pub fn non_resource(verb: &str, path: &str) -> RequestAttributes {
        RequestAttributes {
            verb: verb.to_string(),
            namespace: String::new(),
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            name: String::new(),
            path: Some(path.to_string()),
        }
    }

    pub fn is_resource_request(&self) -> bool {
        self.path.is_none()
    }

    /// `resource` or `resource/subresource`.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

fn strings(option: &Option<Vec<String>>) -> &[String] {
    option.as_deref().unwrap_or(&[])
}

pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs
        .iter()
        .any(|rule_verb| rule_verb == "*" || rule_verb == verb)
}

pub fn api_group_matches(rule: &PolicyRule, api_group: &str) -> bool {
    strings(&rule.api_groups)
        .iter()
        .any(|group| group == "*" || group == api_group)
}

pub fn resource_matches(rule: &PolicyRule, combined_resource: &str, subresource: &str) -> bool {
    let resource = match combined_resource.split_once('/') {
        Some((resource, _)) => resource,
        None => combined_resource,
    };
    resource_matches_parts(rule, resource, subresource)
}

/// [`resource_matches`] without building the combined string (hot path).
fn resource_matches_parts(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    strings(&rule.resources).iter().any(|rule_resource| {
        rule_resource == "*"
            || (subresource.is_empty() && rule_resource == resource)
            || (!subresource.is_empty()
                && rule_resource.len() == resource.len() + 1 + subresource.len()
                && rule_resource.starts_with(resource)
                && rule_resource.as_bytes()[resource.len()] == b'/'
                && rule_resource.ends_with(subresource))
            || (!subresource.is_empty()
                && rule_resource.len() == subresource.len() + 2
                && rule_resource.starts_with("*/")
                && rule_resource.ends_with(subresource))
    })
}

pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = strings(&rule.resource_names);
    names.is_empty() || names.iter().any(|rule_name| rule_name == name)
}

pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    strings(&rule.non_resource_urls).iter().any(|rule_url| {
        rule_url == "*"
            || rule_url == path
            || rule_url
                .strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// Whether one rule allows one request (`RuleAllows` of the API server).
pub fn rule_allows(rule: &PolicyRule, request: &RequestAttributes) -> bool {
    match &request.path {
        Some(path) => verb_matches(rule, &request.verb) && non_resource_url_matches(rule, path),
        None => {
            verb_matches(rule, &request.verb)
                && api_group_matches(rule, &request.api_group)
                && resource_matches_parts(rule, &request.resource, &request.subresource)
                && resource_name_matches(rule, &request.name)
        }
    }
}

/// Whether a label selector matches a label set (`metav1.LabelSelectorAsSelector`):
/// an empty selector matches everything; unknown operators match nothing.
pub fn label_selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_match = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| {
            let values = strings(&requirement.values);
            let label = labels.get(&requirement.key);
            match requirement.operator.as_str() {
                "In" => label.is_some_and(|label| values.contains(label)),
                "NotIn" => label.is_none_or(|label| !values.contains(label)),
                "Exists" => label.is_some(),
                "DoesNotExist" => label.is_none(),
                _ => false,
            }
        });
    labels_match && expressions_match
}

/// Which kind of binding granted something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum BindingKind {
    RoleBinding,
    ClusterRoleBinding,
}

impl BindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingKind::RoleBinding => "RoleBinding",
            BindingKind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }
}

/// One binding, resolved for fast evaluation.
#[derive(Debug, Clone)]
pub struct BindingEntry {
    pub kind: BindingKind,
    /// Empty for ClusterRoleBindings.
    pub namespace: String,
    pub name: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
    pub labels: BTreeMap<String, String>,
    /// The role's effective rules; `None` when the referenced role does not exist.
    pub rules: Option<Arc<Vec<PolicyRule>>>,
    pub role_labels: BTreeMap<String, String>,
}

impl BindingEntry {
    /// `Kind/name` or `Kind/namespace/name`.
    pub fn display(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind.as_str(), self.name)
        } else {
            format!("{}/{}/{}", self.kind.as_str(), self.namespace, self.name)
        }
    }

    /// `ClusterRole/name` or `Role/namespace/name`.
    pub fn role_display(&self) -> String {
        if self.role_ref.kind == "Role" {
            format!("Role/{}/{}", self.namespace, self.role_ref.name)
        } else {
            format!("{}/{}", self.role_ref.kind, self.role_ref.name)
        }
    }

    /// The namespace its grants apply in; `None` = cluster-wide.
    pub fn scope(&self) -> Option<&str> {
        match self.kind {
            BindingKind::ClusterRoleBinding => None,
            BindingKind::RoleBinding => Some(&self.namespace),
        }
    }

    /// Whether one of its role's rules grants anything through this binding:
    /// a rule of only non-resource URLs takes effect through
    /// ClusterRoleBindings alone.
    pub fn rule_takes_effect(&self, rule: &PolicyRule) -> bool {
        let non_resource_only = rule
            .non_resource_urls
            .as_ref()
            .is_some_and(|urls| !urls.is_empty())
            && rule.resources.as_ref().is_none_or(Vec::is_empty);
        !(self.kind == BindingKind::RoleBinding && non_resource_only)
    }
}

/// A rule's list field as text: values joined by commas, `""` for the empty
/// string (the core API group), `-` when absent.
pub fn rule_values_text(values: &Option<Vec<String>>) -> String {
    match values.as_deref() {
        None | Some([]) => "-".into(),
        Some(values) => values
            .iter()
            .map(|value| {
                if value.is_empty() {
                    "\"\"".to_string()
                } else {
                    value.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// One rule on one line: `get,list pods,pods/log (apiGroups "") names a,b`,
/// or `get /healthz,/metrics` for non-resource URLs.
pub fn describe_rule(rule: &PolicyRule) -> String {
    let verbs = rule.verbs.join(",");
    let mut text = if rule
        .resources
        .as_ref()
        .is_some_and(|values| !values.is_empty())
    {
        format!(
            "{verbs} {} (apiGroups {})",
            rule_values_text(&rule.resources),
            rule_values_text(&rule.api_groups)
        )
    } else {
        format!("{verbs} {}", rule_values_text(&rule.non_resource_urls))
    };
    if rule
        .resource_names
        .as_ref()
        .is_some_and(|names| !names.is_empty())
    {
        text.push_str(&format!(
            " names {}",
            rule_values_text(&rule.resource_names)
        ));
    }
    text
}

/// Whether a subject of a binding (in `binding_namespace`) names this user
/// (`appliesToUser` of the API server).
pub fn subject_applies_to(subject: &Subject, user: &UserInfo, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == user.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let namespace = match subject.namespace.as_deref() {
                Some(namespace) if !namespace.is_empty() => namespace,
                _ => binding_namespace,
            };
            !namespace.is_empty()
                && user
                    .name
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(user_namespace, user_name)| {
                        user_namespace == namespace && user_name == subject.name
                    })
        }
        _ => false,
    }
}

/// One rule an identity holds, with the binding and role that grant it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    /// `ClusterRoleBinding/name` or `RoleBinding/namespace/name`.
    pub binding: String,
    /// `ClusterRole/name` or `Role/namespace/name`.
    pub role: String,
    /// Where the rule applies: `None` is cluster-wide.
    pub namespace: Option<String>,
    /// The subject of the binding that matched the identity.
    pub subject: Subject,
    pub rule: PolicyRule,
}

impl Grant {
    /// Whether this grant allows the request: its rule matches and the
    /// request is in the namespace the grant applies in (any, for cluster-wide grants).
    pub fn covers(&self, request: &RequestAttributes) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|namespace| namespace == request.namespace)
            && rule_allows(&self.rule, request)
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// Why, in words (the granting binding and role, or the bypass).
    pub reason: String,
    pub grant: Option<Grant>,
}

/// Evaluates requests against one snapshot. Built once (aggregation resolved,
/// bindings indexed by namespace), then read-only and shareable across threads.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    bindings: Vec<BindingEntry>,
    cluster_binding_indexes: Vec<usize>,
    namespace_binding_indexes: HashMap<String, Vec<usize>>,
    cluster_role_rules: HashMap<String, Arc<Vec<PolicyRule>>>,
    role_rules: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
}

impl Authorizer {
    pub fn new(snapshot: &Snapshot) -> Authorizer {
        let cluster_role_rules = aggregated_cluster_role_rules(snapshot);
        let mut role_rules: HashMap<(String, String), Arc<Vec<PolicyRule>>> = HashMap::new();
        for ((namespace, name), role) in &snapshot.roles {
            role_rules.insert(
                (namespace.clone(), name.clone()),
                Arc::new(role.rules.clone().unwrap_or_default()),
            );
        }
        let cluster_role_labels: HashMap<&str, BTreeMap<String, String>> = snapshot
            .cluster_roles
            .iter()
            .map(|((_, name), role)| {
                (
                    name.as_str(),
                    role.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect();
        let role_labels = |namespace: &str, role_ref: &RoleRef| -> BTreeMap<String, String> {
            if role_ref.kind == "Role" {
                snapshot
                    .roles
                    .get(&(namespace.to_string(), role_ref.name.clone()))
                    .and_then(|role| role.metadata.labels.clone())
                    .unwrap_or_default()
            } else {
                cluster_role_labels
                    .get(role_ref.name.as_str())
                    .cloned()
                    .unwrap_or_default()
            }
        };
        let mut authorizer = Authorizer {
            cluster_role_rules,
            ..Authorizer::default()
        };
        for ((_, name), binding) in &snapshot.cluster_role_bindings {
            // A ClusterRoleBinding can only reference a ClusterRole.
            let rules = if binding.role_ref.kind == "ClusterRole" {
                authorizer
                    .cluster_role_rules
                    .get(&binding.role_ref.name)
                    .cloned()
            } else {
                None
            };
            authorizer
                .cluster_binding_indexes
                .push(authorizer.bindings.len());
            authorizer.bindings.push(BindingEntry {
                kind: BindingKind::ClusterRoleBinding,
                namespace: String::new(),
                name: name.clone(),
                role_ref: binding.role_ref.clone(),
                subjects: binding.subjects.clone().unwrap_or_default(),
                labels: binding.metadata.labels.clone().unwrap_or_default(),
                role_labels: role_labels("", &binding.role_ref),
                rules,
            });
        }
        for ((namespace, name), binding) in &snapshot.role_bindings {
            let rules = match binding.role_ref.kind.as_str() {
                "Role" => role_rules
                    .get(&(namespace.clone(), binding.role_ref.name.clone()))
                    .cloned(),
                "ClusterRole" => authorizer
                    .cluster_role_rules
                    .get(&binding.role_ref.name)
                    .cloned(),
                _ => None,
            };
            authorizer
                .namespace_binding_indexes
                .entry(namespace.clone())
                .or_default()
                .push(authorizer.bindings.len());
            authorizer.bindings.push(BindingEntry {
                kind: BindingKind::RoleBinding,
                namespace: namespace.clone(),
                name: name.clone(),
                role_ref: binding.role_ref.clone(),
                subjects: binding.subjects.clone().unwrap_or_default(),
                labels: binding.metadata.labels.clone().unwrap_or_default(),
                role_labels: role_labels(namespace, &binding.role_ref),
                rules,
            });
        }
        authorizer.role_rules = role_rules;
        authorizer
    }

    /// The rules of a Role.
    pub fn role_rules(&self, namespace: &str, name: &str) -> Option<&Arc<Vec<PolicyRule>>> {
        self.role_rules
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Every binding, ClusterRoleBindings first.
    pub fn bindings(&self) -> &[BindingEntry] {
        &self.bindings
    }

    /// The effective (aggregated) rules of a ClusterRole.
    pub fn cluster_role_rules(&self, name: &str) -> Option<&Arc<Vec<PolicyRule>>> {
        self.cluster_role_rules.get(name)
    }

    /// The bindings that can grant a request in `namespace` (all
    /// ClusterRoleBindings, plus the RoleBindings of that namespace).
    fn candidate_bindings<'a>(
        &'a self,
        namespace: &str,
    ) -> impl Iterator<Item = &'a BindingEntry> + 'a {
        let namespaced: &[usize] = if namespace.is_empty() {
            &[]
        } else {
            self.namespace_binding_indexes
                .get(namespace)
                .map(Vec::as_slice)
                .unwrap_or(&[])
        };
        self.cluster_binding_indexes
            .iter()
            .chain(namespaced.iter())
            .map(|index| &self.bindings[*index])
    }

    /// Decides one request, like the API server (privileged group, then RBAC).
    pub fn authorize(&self, user: &UserInfo, request: &RequestAttributes) -> Decision {
        if user.is_master() {
            return Decision {
                allowed: true,
                reason: format!("member of {MASTERS_GROUP}: allowed before RBAC is consulted"),
                grant: None,
            };
        }
        for binding in self.candidate_bindings(&request.namespace) {
            let Some(rules) = &binding.rules else {
                continue;
            };
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|subject| subject_applies_to(subject, user, &binding.namespace))
            else {
                continue;
            };
            if let Some(rule) = rules.iter().find(|rule| rule_allows(rule, request)) {
                return Decision {
                    allowed: true,
                    reason: format!(
                        "allowed by {} of {}",
                        binding.display(),
                        binding.role_display()
                    ),
                    grant: Some(Grant {
                        binding: binding.display(),
                        role: binding.role_display(),
                        namespace: binding.scope().map(str::to_string),
                        subject: subject.clone(),
                        rule: rule.clone(),
                    }),
                };
            }
        }
        Decision {
            allowed: false,
            reason: "no RBAC rule allows it".into(),
            grant: None,
        }
    }

    /// Every rule the user holds anywhere (effective permissions), with the
    /// binding and role granting each. Masters hold everything: the answer
    /// starts with a synthetic cluster-wide `*` grant naming the bypass.
    pub fn grants_for(&self, user: &UserInfo) -> Vec<Grant> {
        let mut grants = Vec::new();
        if user.is_master() {
            grants.push(Grant {
                binding: format!("(group {MASTERS_GROUP}: RBAC bypass)"),
                role: "(none)".into(),
                namespace: None,
                subject: Subject {
                    kind: "Group".into(),
                    name: MASTERS_GROUP.into(),
                    api_group: None,
                    namespace: None,
                },
                rule: PolicyRule {
                    api_groups: Some(vec!["*".into()]),
                    resources: Some(vec!["*".into()]),
                    verbs: vec!["*".into()],
                    non_resource_urls: None,
                    resource_names: None,
                },
            });
        }
        for binding in &self.bindings {
            let Some(rules) = &binding.rules else {
                continue;
            };
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|subject| subject_applies_to(subject, user, &binding.namespace))
            else {
                continue;
            };
            for rule in rules.iter() {
                if !binding.rule_takes_effect(rule) {
                    continue;
                }
                grants.push(Grant {
                    binding: binding.display(),
                    role: binding.role_display(),
                    namespace: binding.scope().map(str::to_string),
                    subject: subject.clone(),
                    rule: rule.clone(),
                });
            }
        }
        grants
    }
}

/// One answer of who-can: a subject, and the binding and role that let it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhoCanEntry {
    pub subject: Subject,
    pub binding: String,
    pub role: String,
    /// Where: `None` is cluster-wide.
    pub namespace: Option<String>,
}

/// Every subject that may make `request`, with the binding and role granting
/// it. With `all_namespaces`, RoleBindings of every namespace are considered,
/// each for the request placed in its own namespace. Members of
/// `system:masters` always can; they come first.
pub fn who_can(
    authorizer: &Authorizer,
    request: &RequestAttributes,
    all_namespaces: bool,
) -> Vec<WhoCanEntry> {
    let mut entries = vec![WhoCanEntry {
        subject: Subject {
            kind: "Group".into(),
            name: MASTERS_GROUP.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        },
        binding: "(RBAC bypass)".into(),
        role: "(none)".into(),
        namespace: None,
    }];
    let mut seen: HashSet<(String, String, String, String)> = HashSet::new();
    for binding in authorizer.bindings() {
        let applies = match binding.kind {
            BindingKind::ClusterRoleBinding => true,
            BindingKind::RoleBinding => {
                all_namespaces
                    || (!request.namespace.is_empty() && binding.namespace == request.namespace)
            }
        };
        if !applies || (binding.kind == BindingKind::RoleBinding && !request.is_resource_request())
        {
            continue;
        }
        let Some(rules) = &binding.rules else {
            continue;
        };
        let mut placed = request.clone();
        if binding.kind == BindingKind::RoleBinding {
            placed.namespace = binding.namespace.clone();
        }
        if !rules.iter().any(|rule| rule_allows(rule, &placed)) {
            continue;
        }
        for subject in &binding.subjects {
            let key = (
                subject.kind.clone(),
                subject.name.clone(),
                subject.namespace.clone().unwrap_or_default(),
                binding.display(),
            );
            if seen.insert(key) {
                let mut subject = subject.clone();
                if subject.kind == "ServiceAccount"
                    && subject.namespace.as_deref().is_none_or(str::is_empty)
                {
                    subject.namespace = Some(binding.namespace.clone());
                }
                entries.push(WhoCanEntry {
                    subject,
                    binding: binding.display(),
                    role: binding.role_display(),
                    namespace: binding.scope().map(str::to_string),
                });
            }
        }
    }
    entries
}

/// Effective rules of every ClusterRole: its own rules plus, for aggregated
/// roles, the rules of every ClusterRole its selectors match (transitively, as
/// the aggregation controller converges to), without duplicates.
fn aggregated_cluster_role_rules(snapshot: &Snapshot) -> HashMap<String, Arc<Vec<PolicyRule>>> {
    let roles: Vec<(&str, &k8s_openapi::api::rbac::v1::ClusterRole)> = snapshot
        .cluster_roles
        .iter()
        .map(|((_, name), role)| (name.as_str(), role))
        .collect();
    let empty = BTreeMap::new();
    // Direct aggregation edges: role index -> selected role indexes.
    let mut selected: Vec<Vec<usize>> = vec![Vec::new(); roles.len()];
    for (index, (_, role)) in roles.iter().enumerate() {
        let Some(selectors) = role
            .aggregation_rule
            .as_ref()
            .and_then(|rule| rule.cluster_role_selectors.as_ref())
        else {
            continue;
        };
        for (other_index, (_, other)) in roles.iter().enumerate() {
            if other_index == index {
                continue;
            }
            let labels = other.metadata.labels.as_ref().unwrap_or(&empty);
            if selectors
                .iter()
                .any(|selector| label_selector_matches(selector, labels))
            {
                selected[index].push(other_index);
            }
        }
    }
    let mut result = HashMap::with_capacity(roles.len());
    for (index, (name, role)) in roles.iter().enumerate() {
        let mut rules: Vec<PolicyRule> = role.rules.clone().unwrap_or_default();
        if !selected[index].is_empty() {
            let mut visited = HashSet::from([index]);
            let mut stack = selected[index].clone();
            while let Some(next) = stack.pop() {
                if !visited.insert(next) {
                    continue;
                }
                for rule in roles[next].1.rules.iter().flatten() {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
                stack.extend(selected[next].iter().copied());
            }
        }
        result.insert((*name).to_string(), Arc::new(rules));
    }
    result
}

#[cfg(test)]
mod tests;
