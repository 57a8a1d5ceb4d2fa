//! The simulated cluster's RBAC state and an authorizer that decides like the
//! API server's RBAC authorizer.
//!
//! Every request the simulator emits is authorized here at the moment it is
//! issued, so the `authorization.k8s.io/reason` annotation names the binding
//! that really grants it, and `rbac.json` (this state at the end of the run,
//! written as `kubectl get roles,clusterroles,rolebindings,clusterrolebindings
//! -A -o json` prints it) allows exactly what the log shows allowed. Grants only
//! ever get added during a run, so the final state is a superset of every
//! earlier one; scenarios never deny first what they grant later.

use serde_json::{Value, json};

/// One `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

impl PolicyRule {
    pub fn resources(api_groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        PolicyRule {
            api_groups: strings(api_groups),
            resources: strings(resources),
            verbs: strings(verbs),
            ..PolicyRule::default()
        }
    }

    pub fn named(
        api_groups: &[&str],
        resources: &[&str],
        verbs: &[&str],
        names: &[&str],
    ) -> PolicyRule {
        PolicyRule {
            resource_names: strings(names),
            ..PolicyRule::resources(api_groups, resources, verbs)
        }
    }

    pub fn urls(urls: &[&str], verbs: &[&str]) -> PolicyRule {
        PolicyRule {
            non_resource_urls: strings(urls),
            verbs: strings(verbs),
            ..PolicyRule::default()
        }
    }

    fn allows(&self, request: &Attributes<'_>) -> bool {
        let verb_matches = self
            .verbs
            .iter()
            .any(|verb| verb == "*" || verb == request.verb);
        if !verb_matches {
            return false;
        }
        match request.target {
            Target::NonResource(path) => self.non_resource_urls.iter().any(|url| {
                url == "*"
                    || url == path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            }),
            Target::Resource {
                api_group,
                resource,
                subresource,
                name,
                ..
            } => {
                let group_matches = self
                    .api_groups
                    .iter()
                    .any(|group| group == "*" || group == api_group);
                let resource_matches =
                    self.resources
                        .iter()
                        .any(|rule_resource| match subresource {
                            None => rule_resource == "*" || rule_resource == resource,
                            Some(sub) => {
                                rule_resource == "*"
                                    || rule_resource.split_once('/').is_some_and(
                                        |(rule_main, rule_sub)| {
                                            (rule_main == resource || rule_main == "*")
                                                && (rule_sub == sub || rule_sub == "*")
                                        },
                                    )
                            }
                        });
                let name_matches = self.resource_names.is_empty()
                    || name.is_some_and(|name| {
                        self.resource_names.iter().any(|allowed| allowed == name)
                    });
                group_matches && resource_matches && name_matches
            }
        }
    }

    fn to_json(&self) -> Value {
        let mut rule = serde_json::Map::new();
        if !self.api_groups.is_empty() || !self.resources.is_empty() {
            rule.insert("apiGroups".into(), json!(self.api_groups));
        }
        if !self.non_resource_urls.is_empty() {
            rule.insert("nonResourceURLs".into(), json!(self.non_resource_urls));
        }
        if !self.resource_names.is_empty() {
            rule.insert("resourceNames".into(), json!(self.resource_names));
        }
        if !self.resources.is_empty() {
            rule.insert("resources".into(), json!(self.resources));
        }
        rule.insert("verbs".into(), json!(self.verbs));
        Value::Object(rule)
    }

    fn from_json(value: &Value) -> PolicyRule {
        let list = |field: &str| -> Vec<String> {
            value
                .get(field)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        PolicyRule {
            api_groups: list("apiGroups"),
            resources: list("resources"),
            verbs: list("verbs"),
            resource_names: list("resourceNames"),
            non_resource_urls: list("nonResourceURLs"),
        }
    }
}

/// A Role (with a namespace) or a ClusterRole (without).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub namespace: Option<String>,
    pub name: String,
    pub rules: Vec<PolicyRule>,
    /// Bootstrap roles carry `kubernetes.io/bootstrapping: rbac-defaults`.
    pub bootstrap: bool,
    pub created: i64,
    pub uid: String,
    pub resource_version: u64,
}

/// `User`, `Group` or `ServiceAccount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl Subject {
    pub fn user(name: &str) -> Subject {
        Subject {
            kind: "User".into(),
            name: name.into(),
            namespace: None,
        }
    }

    pub fn group(name: &str) -> Subject {
        Subject {
            kind: "Group".into(),
            name: name.into(),
            namespace: None,
        }
    }

    pub fn service_account(namespace: &str, name: &str) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
        }
    }

    fn matches(&self, username: &str, groups: &[String]) -> bool {
        match self.kind.as_str() {
            "User" => self.name == username,
            "Group" => groups.contains(&self.name),
            "ServiceAccount" => {
                let namespace = self.namespace.as_deref().unwrap_or("");
                username
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(account_namespace, account)| {
                        account_namespace == namespace && account == self.name
                    })
            }
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => format!(
                "ServiceAccount \"{}/{}\"",
                self.name,
                self.namespace.as_deref().unwrap_or("")
            ),
            kind => format!("{kind} \"{}\"", self.name),
        }
    }
}

/// A RoleBinding (with a namespace) or a ClusterRoleBinding (without).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub namespace: Option<String>,
    pub name: String,
    /// `Role` or `ClusterRole`.
    pub role_kind: String,
    pub role_name: String,
    pub subjects: Vec<Subject>,
    pub bootstrap: bool,
    pub created: i64,
    pub uid: String,
    pub resource_version: u64,
}

/// What is asked: a resource or a non-resource path.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Resource {
        api_group: &'a str,
        resource: &'a str,
        subresource: Option<&'a str>,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    },
    NonResource(&'a str),
}

/// The request attributes RBAC decides on.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub username: &'a str,
    pub groups: &'a [String],
    pub verb: &'a str,
    pub target: Target<'a>,
}

/// Roles and bindings of one cluster.
#[derive(Debug, Clone, Default)]
pub struct RbacState {
    pub cluster_roles: Vec<Role>,
    pub roles: Vec<Role>,
    pub cluster_role_bindings: Vec<Binding>,
    pub role_bindings: Vec<Binding>,
}

/// Why `rbac.json` could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RbacDumpError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not a List: {0}")]
    NotAList(String),
}

impl RbacState {
    /// The `system:masters` group is authorized before RBAC is asked (the
    /// API server's privileged-group authorizer), with an empty reason.
    pub const PRIVILEGED_GROUP: &'static str = "system:masters";

    /// Decides like the RBAC authorizer: cluster role bindings first, then role
    /// bindings of the request's namespace, each in name order; the first
    /// binding whose role has a matching rule allows, and its description is
    /// the reason. `None` means denied.
    pub fn authorize(&self, request: &Attributes<'_>) -> Option<String> {
        for binding in &self.cluster_role_bindings {
            if let Some(reason) = self.binding_allows(binding, request) {
                return Some(reason);
            }
        }
        let namespace = match request.target {
            Target::Resource { namespace, .. } => namespace,
            Target::NonResource(_) => None,
        };
        if let Some(namespace) = namespace {
            for binding in self
                .role_bindings
                .iter()
                .filter(|binding| binding.namespace.as_deref() == Some(namespace))
            {
                if let Some(reason) = self.binding_allows(binding, request) {
                    return Some(reason);
                }
            }
        }
        None
    }

    fn binding_allows(&self, binding: &Binding, request: &Attributes<'_>) -> Option<String> {
        let subject = binding
            .subjects
            .iter()
            .find(|subject| subject.matches(request.username, request.groups))?;
        let role = if binding.role_kind == "ClusterRole" {
            self.cluster_roles
                .iter()
                .find(|role| role.name == binding.role_name)?
        } else {
            self.roles.iter().find(|role| {
                role.name == binding.role_name && role.namespace == binding.namespace
            })?
        };
        if !role.rules.iter().any(|rule| rule.allows(request)) {
            return None;
        }
        let binding_description = match &binding.namespace {
            Some(namespace) => format!("RoleBinding \"{}/{}\"", binding.name, namespace),
            None => format!("ClusterRoleBinding \"{}\"", binding.name),
        };
        Some(format!(
            "RBAC: allowed by {binding_description} of {} \"{}\" to {}",
            binding.role_kind,
            binding.role_name,
            subject.describe()
        ))
    }

    pub fn cluster_role(&self, name: &str) -> Option<&Role> {
        self.cluster_roles.iter().find(|role| role.name == name)
    }

    /// Adds or replaces a role, keeping name order (the authorizer's visiting order).
    pub fn put_role(&mut self, role: Role) {
        let list = if role.namespace.is_some() {
            &mut self.roles
        } else {
            &mut self.cluster_roles
        };
        match list
            .iter_mut()
            .find(|existing| existing.name == role.name && existing.namespace == role.namespace)
        {
            Some(existing) => *existing = role,
            None => {
                list.push(role);
                list.sort_by(|left, right| {
                    (&left.namespace, &left.name).cmp(&(&right.namespace, &right.name))
                });
            }
        }
    }

    pub fn put_binding(&mut self, binding: Binding) {
        let list = if binding.namespace.is_some() {
            &mut self.role_bindings
        } else {
            &mut self.cluster_role_bindings
        };
        match list.iter_mut().find(|existing| {
            existing.name == binding.name && existing.namespace == binding.namespace
        }) {
            Some(existing) => *existing = binding,
            None => {
                list.push(binding);
                list.sort_by(|left, right| {
                    (&left.namespace, &left.name).cmp(&(&right.namespace, &right.name))
                });
            }
        }
    }

    /// The object as the API server returns it (for audit request/response
    /// objects and the dump).
    pub fn role_json(role: &Role) -> Value {
        let kind = if role.namespace.is_some() {
            "Role"
        } else {
            "ClusterRole"
        };
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata_json(&role.name, role.namespace.as_deref(), role.bootstrap, role.created, &role.uid, role.resource_version),
            "rules": role.rules.iter().map(PolicyRule::to_json).collect::<Vec<_>>(),
        })
    }

    pub fn binding_json(binding: &Binding) -> Value {
        let kind = if binding.namespace.is_some() {
            "RoleBinding"
        } else {
            "ClusterRoleBinding"
        };
        let subjects: Vec<Value> = binding
            .subjects
            .iter()
            .map(|subject| match &subject.namespace {
                Some(namespace) => json!({"kind": subject.kind, "name": subject.name, "namespace": namespace}),
                None => json!({"apiGroup": "rbac.authorization.k8s.io", "kind": subject.kind, "name": subject.name}),
            })
            .collect();
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata_json(&binding.name, binding.namespace.as_deref(), binding.bootstrap, binding.created, &binding.uid, binding.resource_version),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": binding.role_kind, "name": binding.role_name},
            "subjects": subjects,
        })
    }

    /// `kubectl get roles,clusterroles,rolebindings,clusterrolebindings -A -o json`.
    pub fn to_list_json(&self) -> Value {
        let mut items = Vec::new();
        items.extend(self.roles.iter().map(RbacState::role_json));
        items.extend(self.cluster_roles.iter().map(RbacState::role_json));
        items.extend(self.role_bindings.iter().map(RbacState::binding_json));
        items.extend(
            self.cluster_role_bindings
                .iter()
                .map(RbacState::binding_json),
        );
        json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
    }

    /// Reads a `List` (or a single object) of RBAC objects back.
    pub fn from_list_json(text: &str) -> Result<RbacState, RbacDumpError> {
        let value: Value = serde_json::from_str(text)?;
        let items = match value.get("kind").and_then(Value::as_str) {
            Some("List") => value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| RbacDumpError::NotAList("no items array".into()))?,
            Some(_) => vec![value],
            None => return Err(RbacDumpError::NotAList("no kind".into())),
        };
        let mut state = RbacState::default();
        for item in &items {
            let text = |path: &[&str]| -> Option<String> {
                let mut node = item;
                for key in path {
                    node = node.get(key)?;
                }
                node.as_str().map(str::to_string)
            };
            let name = text(&["metadata", "name"]).unwrap_or_default();
            let namespace = text(&["metadata", "namespace"]);
            let uid = text(&["metadata", "uid"]).unwrap_or_default();
            match text(&["kind"]).as_deref() {
                Some("Role" | "ClusterRole") => {
                    let rules = item
                        .get("rules")
                        .and_then(Value::as_array)
                        .map(|rules| rules.iter().map(PolicyRule::from_json).collect())
                        .unwrap_or_default();
                    state.put_role(Role {
                        namespace,
                        name,
                        rules,
                        bootstrap: false,
                        created: 0,
                        uid,
                        resource_version: 0,
                    });
                }
                Some("RoleBinding" | "ClusterRoleBinding") => {
                    let subjects = item
                        .get("subjects")
                        .and_then(Value::as_array)
                        .map(|subjects| {
                            subjects
                                .iter()
                                .map(|subject| Subject {
                                    kind: subject
                                        .get("kind")
                                        .and_then(Value::as_str)
                                        .unwrap_or("")
                                        .to_string(),
                                    name: subject
                                        .get("name")
                                        .and_then(Value::as_str)
                                        .unwrap_or("")
                                        .to_string(),
                                    namespace: subject
                                        .get("namespace")
                                        .and_then(Value::as_str)
                                        .map(str::to_string),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    state.put_binding(Binding {
                        namespace,
                        name,
                        role_kind: text(&["roleRef", "kind"]).unwrap_or_default(),
                        role_name: text(&["roleRef", "name"]).unwrap_or_default(),
                        subjects,
                        bootstrap: false,
                        created: 0,
                        uid,
                        resource_version: 0,
                    });
                }
                other => {
                    return Err(RbacDumpError::NotAList(format!(
                        "unexpected item kind {other:?}"
                    )));
                }
            }
        }
        Ok(state)
    }
}

fn metadata_json(
    name: &str,
    namespace: Option<&str>,
    bootstrap: bool,
    created: i64,
    uid: &str,
    resource_version: u64,
) -> Value {
    let mut metadata = serde_json::Map::new();
    if bootstrap {
        metadata.insert(
            "annotations".into(),
            json!({"rbac.authorization.kubernetes.io/autoupdate": "true"}),
        );
    }
    metadata.insert(
        "creationTimestamp".into(),
        json!(super::json::rfc3339_seconds(created)),
    );
    if bootstrap {
        metadata.insert(
            "labels".into(),
            json!({"kubernetes.io/bootstrapping": "rbac-defaults"}),
        );
    }
    metadata.insert("name".into(), json!(name));
    if let Some(namespace) = namespace {
        metadata.insert("namespace".into(), json!(namespace));
    }
    metadata.insert(
        "resourceVersion".into(),
        json!(resource_version.to_string()),
    );
    metadata.insert("uid".into(), json!(uid));
    Value::Object(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(namespace: Option<&str>, name: &str, rules: Vec<PolicyRule>) -> Role {
        Role {
            namespace: namespace.map(str::to_string),
            name: name.into(),
            rules,
            bootstrap: false,
            created: 0,
            uid: "u".into(),
            resource_version: 1,
        }
    }

    fn binding(
        namespace: Option<&str>,
        name: &str,
        role_kind: &str,
        role_name: &str,
        subject: Subject,
    ) -> Binding {
        Binding {
            namespace: namespace.map(str::to_string),
            name: name.into(),
            role_kind: role_kind.into(),
            role_name: role_name.into(),
            subjects: vec![subject],
            bootstrap: false,
            created: 0,
            uid: "u".into(),
            resource_version: 1,
        }
    }

    fn resource<'a>(
        verb: &'a str,
        resource: &'a str,
        sub: Option<&'a str>,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> (String, Target<'a>) {
        (
            verb.to_string(),
            Target::Resource {
                api_group: "",
                resource,
                subresource: sub,
                namespace,
                name,
            },
        )
    }

    #[test]
    fn decides_and_explains_like_the_rbac_authorizer() {
        let mut state = RbacState::default();
        state.put_role(role(
            None,
            "pod-reader",
            vec![PolicyRule::resources(
                &[""],
                &["pods", "pods/log"],
                &["get", "list"],
            )],
        ));
        state.put_role(role(
            Some("shop"),
            "cart-config",
            vec![PolicyRule::named(
                &[""],
                &["configmaps"],
                &["get"],
                &["cart"],
            )],
        ));
        state.put_binding(binding(
            None,
            "readers",
            "ClusterRole",
            "pod-reader",
            Subject::group("sre"),
        ));
        state.put_binding(binding(
            Some("shop"),
            "cart",
            "Role",
            "cart-config",
            Subject::service_account("shop", "cart"),
        ));
        let sre = vec!["sre".to_string(), "system:authenticated".to_string()];
        let (verb, target) = resource("get", "pods", Some("log"), Some("shop"), Some("web"));
        let reason = state.authorize(&Attributes {
            username: "carol",
            groups: &sre,
            verb: &verb,
            target,
        });
        assert_eq!(
            reason.as_deref(),
            Some(
                "RBAC: allowed by ClusterRoleBinding \"readers\" of ClusterRole \"pod-reader\" to Group \"sre\""
            )
        );
        let (verb, target) = resource("create", "pods", Some("exec"), Some("shop"), Some("web"));
        assert!(
            state
                .authorize(&Attributes {
                    username: "carol",
                    groups: &sre,
                    verb: &verb,
                    target
                })
                .is_none()
        );

        let account = "system:serviceaccount:shop:cart";
        let (verb, target) = resource("get", "configmaps", None, Some("shop"), Some("cart"));
        assert_eq!(
            state
                .authorize(&Attributes {
                    username: account,
                    groups: &[],
                    verb: &verb,
                    target
                })
                .as_deref(),
            Some(
                "RBAC: allowed by RoleBinding \"cart/shop\" of Role \"cart-config\" to ServiceAccount \"cart/shop\""
            )
        );
        let (verb, target) = resource("get", "configmaps", None, Some("shop"), Some("other"));
        assert!(
            state
                .authorize(&Attributes {
                    username: account,
                    groups: &[],
                    verb: &verb,
                    target
                })
                .is_none()
        );
        let (verb, target) = resource("get", "configmaps", None, Some("payments"), Some("cart"));
        assert!(
            state
                .authorize(&Attributes {
                    username: account,
                    groups: &[],
                    verb: &verb,
                    target
                })
                .is_none()
        );
    }

    #[test]
    fn wildcards_and_non_resource_urls() {
        let mut state = RbacState::default();
        state.put_role(role(
            None,
            "all",
            vec![PolicyRule::resources(&["*"], &["*"], &["*"])],
        ));
        state.put_role(role(
            None,
            "health",
            vec![PolicyRule::urls(&["/healthz", "/readyz*"], &["get"])],
        ));
        state.put_binding(binding(
            None,
            "all",
            "ClusterRole",
            "all",
            Subject::user("root"),
        ));
        state.put_binding(binding(
            None,
            "health",
            "ClusterRole",
            "health",
            Subject::group("system:unauthenticated"),
        ));
        let anonymous = vec!["system:unauthenticated".to_string()];
        let allowed = |verb: &str, target: Target<'_>, user: &str, groups: &[String]| {
            state
                .authorize(&Attributes {
                    username: user,
                    groups,
                    verb,
                    target,
                })
                .is_some()
        };
        assert!(allowed(
            "get",
            Target::NonResource("/readyz/ping"),
            "system:anonymous",
            &anonymous
        ));
        assert!(!allowed(
            "get",
            Target::NonResource("/metrics"),
            "system:anonymous",
            &anonymous
        ));
        assert!(allowed(
            "delete",
            resource("delete", "nodes", None, None, Some("n1")).1,
            "root",
            &[]
        ));
        assert!(allowed(
            "create",
            resource(
                "create",
                "pods",
                Some("exec"),
                Some("kube-system"),
                Some("p")
            )
            .1,
            "root",
            &[]
        ));
    }

    #[test]
    fn the_dump_reads_back_to_the_same_decisions() {
        let mut state = RbacState::default();
        state.put_role(role(
            Some("shop"),
            "edit",
            vec![PolicyRule::resources(
                &["apps"],
                &["deployments"],
                &["patch"],
            )],
        ));
        state.put_binding(binding(
            Some("shop"),
            "ci",
            "Role",
            "edit",
            Subject::service_account("ci", "deployer"),
        ));
        let dump = serde_json::to_string(&state.to_list_json()).expect("serializes");
        let back = RbacState::from_list_json(&dump).expect("reads back");
        assert_eq!(back.roles[0].rules, state.roles[0].rules);
        assert_eq!(
            back.role_bindings[0].subjects,
            state.role_bindings[0].subjects
        );
    }
}
