//! Reading the request and response objects the rules need: RBAC rules,
//! bindings, pod specs and config map data.
//!
//! Objects are parsed only for the few resources whose rules read them, and
//! leniently: a field of the wrong type is treated as absent, never as an
//! error, because a rule must not go blind on one odd object. The response
//! object (the stored result) is preferred over the request object (what the
//! client sent, for a patch only the patch), since it shows what the API
//! server actually persisted.

use crate::audit::AuditEvent;
use serde_json::Value;

/// The object a write left behind: the response object if logged and it is an
/// object of the expected shape, else the request object.
pub fn written_object(event: &AuditEvent) -> Option<Value> {
    let parse = |raw: &Option<Box<serde_json::value::RawValue>>| -> Option<Value> {
        let value: Value = serde_json::from_str(raw.as_ref()?.get()).ok()?;
        // A Status (e.g. the response to a delete) is not the object.
        if value.get("kind").and_then(Value::as_str) == Some("Status") {
            return None;
        }
        Some(value)
    };
    parse(&event.response_object).or_else(|| parse(&event.request_object))
}

/// One RBAC policy rule, with the fields rules look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(text)) => vec![text.clone()],
        _ => Vec::new(),
    }
}

impl PolicyRule {
    fn from_value(value: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(value.get("verbs")),
            api_groups: strings(value.get("apiGroups")),
            resources: strings(value.get("resources")),
            non_resource_urls: strings(value.get("nonResourceURLs")),
        }
    }

    pub fn has_wildcard_verb(&self) -> bool {
        self.verbs.iter().any(|verb| verb == "*")
    }

    pub fn has_wildcard_resource(&self) -> bool {
        self.resources
            .iter()
            .any(|resource| resource == "*" || resource == "*/*")
    }

    pub fn has_wildcard_api_group(&self) -> bool {
        self.api_groups.iter().any(|group| group == "*")
    }

    pub fn grants_verb(&self, verb: &str) -> bool {
        self.verbs
            .iter()
            .any(|granted| granted == verb || granted == "*")
    }

    pub fn covers_resource(&self, resource: &str) -> bool {
        self.resources.iter().any(|granted| {
            granted == resource
                || granted == "*"
                || granted == "*/*"
                || granted
                    .strip_suffix("/*")
                    .is_some_and(|base| resource.split('/').next() == Some(base))
        })
    }

    /// A short human description: `verbs [get list] on resources [pods]`.
    pub fn describe(&self) -> String {
        let mut text = format!("verbs [{}]", self.verbs.join(" "));
        if !self.resources.is_empty() {
            text.push_str(&format!(" on resources [{}]", self.resources.join(" ")));
            if !self.api_groups.is_empty() {
                let groups: Vec<&str> = self
                    .api_groups
                    .iter()
                    .map(|group| {
                        if group.is_empty() {
                            "core"
                        } else {
                            group.as_str()
                        }
                    })
                    .collect();
                text.push_str(&format!(" in apiGroups [{}]", groups.join(" ")));
            }
        }
        if !self.non_resource_urls.is_empty() {
            text.push_str(&format!(" on URLs [{}]", self.non_resource_urls.join(" ")));
        }
        text
    }
}

/// The rules of a Role or ClusterRole, from a full object, a merge patch
/// (`{"rules": [...]}`) or a JSON patch (`[{"op":"add","path":"/rules/0","value":{...}}]`).
pub fn policy_rules(object: &Value) -> Vec<PolicyRule> {
    match object {
        Value::Object(map) => match map.get("rules") {
            Some(Value::Array(rules)) => rules.iter().map(PolicyRule::from_value).collect(),
            _ => Vec::new(),
        },
        Value::Array(operations) => operations.iter().filter_map(json_patch_rule).collect(),
        _ => Vec::new(),
    }
}

/// A JSON-patch operation that adds or replaces (part of) a policy rule.
fn json_patch_rule(operation: &Value) -> Option<PolicyRule> {
    let path = operation.get("path")?.as_str()?;
    if !path.starts_with("/rules") {
        return None;
    }
    let value = operation.get("value")?;
    let field = path.rsplit('/').find(|segment| {
        !segment.is_empty() && *segment != "-" && segment.parse::<usize>().is_err()
    });
    match (field, value) {
        (_, Value::Object(_)) => Some(PolicyRule::from_value(value)),
        (Some("verbs"), _) => Some(PolicyRule {
            verbs: strings(Some(value)),
            ..PolicyRule::default()
        }),
        (Some("resources"), _) => Some(PolicyRule {
            resources: strings(Some(value)),
            ..PolicyRule::default()
        }),
        (Some("apiGroups"), _) => Some(PolicyRule {
            api_groups: strings(Some(value)),
            ..PolicyRule::default()
        }),
        _ => None,
    }
}

/// A subject of a RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl Subject {
    /// `User alice`, `Group system:authenticated`, `ServiceAccount ci/deployer`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(namespace) if self.kind == "ServiceAccount" => {
                format!("ServiceAccount {namespace}/{}", self.name)
            }
            _ => format!("{} {}", self.kind, self.name),
        }
    }

    /// Subjects that make a grant reach everyone (or every pod).
    pub fn is_broad_group(&self) -> bool {
        (self.kind == "Group"
            && matches!(
                self.name.as_str(),
                "system:authenticated" | "system:unauthenticated" | "system:serviceaccounts"
            ))
            || (self.kind == "User" && self.name == "system:anonymous")
            || (self.kind == "Group" && self.name.starts_with("system:serviceaccounts:"))
    }

    pub fn is_service_account(&self) -> bool {
        self.kind == "ServiceAccount"
            || (self.kind == "User" && self.name.starts_with("system:serviceaccount:"))
    }
}

/// What a binding grants: the role it refers to and who gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub role_kind: String,
    pub role_name: String,
    pub subjects: Vec<Subject>,
}

/// A binding's roleRef and subjects; `None` when the object has no roleRef
/// (e.g. a patch that only touches labels).
pub fn binding(object: &Value) -> Option<Binding> {
    let role_ref = object.get("roleRef")?;
    let subjects = match object.get("subjects") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                Some(Subject {
                    kind: item.get("kind")?.as_str()?.to_string(),
                    name: item.get("name")?.as_str()?.to_string(),
                    namespace: item
                        .get("namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(Binding {
        role_kind: role_ref
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("ClusterRole")
            .to_string(),
        role_name: role_ref
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        subjects,
    })
}

/// Host paths whose mount gives a container the node (Falco's sensitive mounts, extended).
const SENSITIVE_HOST_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/root",
    "/home",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/var/run",
    "/run",
    "/var/run/docker.sock",
    "/var/run/crio/crio.sock",
    "/run/containerd",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/var/lib/docker",
    "/etc/kubernetes",
];

pub fn is_sensitive_host_path(path: &str) -> bool {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    SENSITIVE_HOST_PATHS.iter().any(|sensitive| {
        trimmed == *sensitive
            || (*sensitive != "/" && trimmed.starts_with(&format!("{sensitive}/")))
    })
}

/// Capabilities that amount to root on the node.
const DANGEROUS_CAPABILITIES: &[&str] = &[
    "SYS_ADMIN",
    "ALL",
    "SYS_PTRACE",
    "SYS_MODULE",
    "NET_ADMIN",
    "DAC_READ_SEARCH",
    "BPF",
];

/// What a pod spec asks for that escapes the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAccess {
    pub privileged_containers: Vec<String>,
    pub dangerous_capabilities: Vec<String>,
    pub host_pid: bool,
    pub host_ipc: bool,
    pub host_network: bool,
    pub sensitive_host_paths: Vec<String>,
    pub other_host_paths: Vec<String>,
}

impl HostAccess {
    /// Whether the pod can take over its node.
    pub fn is_node_takeover(&self) -> bool {
        !self.privileged_containers.is_empty()
            || !self.dangerous_capabilities.is_empty()
            || self.host_pid
            || !self.sensitive_host_paths.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        *self == HostAccess::default()
    }

    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.privileged_containers.is_empty() {
            reasons.push(format!(
                "privileged container(s): {}",
                self.privileged_containers.join(", ")
            ));
        }
        if !self.dangerous_capabilities.is_empty() {
            reasons.push(format!(
                "added capabilities: {}",
                self.dangerous_capabilities.join(", ")
            ));
        }
        if self.host_pid {
            reasons.push("hostPID: shares the node's process namespace".to_string());
        }
        if self.host_ipc {
            reasons.push("hostIPC: shares the node's IPC namespace".to_string());
        }
        if self.host_network {
            reasons.push("hostNetwork: uses the node's network namespace".to_string());
        }
        if !self.sensitive_host_paths.is_empty() {
            reasons.push(format!(
                "mounts sensitive host path(s): {}",
                self.sensitive_host_paths.join(", ")
            ));
        }
        if !self.other_host_paths.is_empty() {
            reasons.push(format!(
                "mounts host path(s): {}",
                self.other_host_paths.join(", ")
            ));
        }
        reasons
    }
}

/// The pod spec inside a pod or a workload object (Deployment, DaemonSet,
/// StatefulSet, ReplicaSet, Job: `spec.template.spec`; CronJob:
/// `spec.jobTemplate.spec.template.spec`).
pub fn pod_spec<'a>(resource: &str, object: &'a Value) -> Option<&'a Value> {
    let spec = object.get("spec")?;
    match resource {
        "pods" => Some(spec),
        "cronjobs" => spec
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
        _ => spec.get("template")?.get("spec"),
    }
}

/// The image repository without registry tag or digest: `docker.io/library/nginx:1.25` → `nginx`
/// is matched by the caller against trusted names, so both forms are returned.
fn image_matches(image: &str, trusted: &[String]) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let without_tag = match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => without_digest,
    };
    let short = without_tag.rsplit('/').next().unwrap_or(without_tag);
    trusted
        .iter()
        .any(|name| name == image || name == without_tag || name == short)
}

/// Reads what a pod spec asks of the node. Containers whose image is in
/// `trusted_images` are ignored, and so are pod-level host settings when every
/// container is trusted (Falco's `falco_privileged_images` semantics).
pub fn host_access(spec: &Value, trusted_images: &[String]) -> HostAccess {
    let mut access = HostAccess::default();
    let mut all_trusted = true;
    let mut any_container = false;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get(list) else {
            continue;
        };
        for container in containers {
            any_container = true;
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            if image_matches(image, trusted_images) {
                continue;
            }
            all_trusted = false;
            let security = container.get("securityContext");
            if security
                .and_then(|context| context.get("privileged"))
                .and_then(Value::as_bool)
                == Some(true)
            {
                access.privileged_containers.push(name.clone());
            }
            let added = strings(
                security
                    .and_then(|context| context.get("capabilities"))
                    .and_then(|caps| caps.get("add")),
            );
            for capability in added {
                let normalized = capability.trim_start_matches("CAP_").to_ascii_uppercase();
                if DANGEROUS_CAPABILITIES.contains(&normalized.as_str()) {
                    access
                        .dangerous_capabilities
                        .push(format!("{name}:{normalized}"));
                }
            }
        }
    }
    if any_container && all_trusted {
        return access;
    }
    let flag = |field: &str| spec.get(field).and_then(Value::as_bool) == Some(true);
    access.host_pid = flag("hostPID");
    access.host_ipc = flag("hostIPC");
    access.host_network = flag("hostNetwork");
    if let Some(Value::Array(volumes)) = spec.get("volumes") {
        for volume in volumes {
            if let Some(path) = volume
                .get("hostPath")
                .and_then(|host| host.get("path"))
                .and_then(Value::as_str)
            {
                if is_sensitive_host_path(path) {
                    access.sensitive_host_paths.push(path.to_string());
                } else {
                    access.other_host_paths.push(path.to_string());
                }
            }
        }
    }
    access
}

/// Keys that mark credentials written into a config map (Falco's list).
const CREDENTIAL_MARKERS: &[&str] = &[
    "aws_access_key_id",
    "aws-access-key-id",
    "aws_s3_access_key_id",
    "aws-s3-access-key-id",
    "aws_secret_access_key",
    "password",
    "passphrase",
    "private_key",
    "-----begin",
];

/// The credential markers found in a config map's `data`, by key.
pub fn configmap_credentials(object: &Value) -> Vec<String> {
    let Some(Value::Object(data)) = object.get("data") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (key, value) in data {
        let text = value.as_str().unwrap_or_default().to_ascii_lowercase();
        let key_lower = key.to_ascii_lowercase();
        for marker in CREDENTIAL_MARKERS {
            if text.contains(marker) || key_lower.contains(marker) {
                found.push(format!("{key}: {marker}"));
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_rules_from_objects_and_patches() {
        let role = json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        let rules = policy_rules(&role);
        assert!(
            rules[0].has_wildcard_verb()
                && rules[0].has_wildcard_resource()
                && rules[0].has_wildcard_api_group()
        );
        let patch = json!([{"op": "add", "path": "/rules/0/verbs/-", "value": "*"}]);
        assert!(policy_rules(&patch)[0].has_wildcard_verb());
        let replace = json!([{"op": "replace", "path": "/rules/1", "value": {"resources": ["secrets"], "verbs": ["get"]}}]);
        assert!(policy_rules(&replace)[0].covers_resource("secrets"));
        assert!(
            policy_rules(&json!([{"op": "add", "path": "/metadata/labels/x", "value": "*"}]))
                .is_empty()
        );
    }

    #[test]
    fn subresource_wildcards_cover_subresources() {
        let rule = PolicyRule {
            resources: vec!["pods/*".into()],
            verbs: vec!["create".into()],
            ..PolicyRule::default()
        };
        assert!(rule.covers_resource("pods/exec"));
        assert!(!rule.covers_resource("secrets"));
    }

    #[test]
    fn host_access_sees_every_container_and_trusts_images() {
        let spec = json!({
            "hostPID": true,
            "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "mysql:latest", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}}],
            "volumes": [{"name": "etc", "hostPath": {"path": "/etc/"}}, {"name": "logs", "hostPath": {"path": "/var/log"}}]
        });
        let access = host_access(&spec, &[]);
        assert_eq!(access.privileged_containers, vec!["b"]);
        assert_eq!(access.dangerous_capabilities, vec!["b:SYS_ADMIN"]);
        assert!(access.host_pid && access.is_node_takeover());
        assert_eq!(access.sensitive_host_paths, vec!["/etc/"]);
        assert_eq!(access.other_host_paths, vec!["/var/log"]);
        let trusted = host_access(&spec, &["nginx".into(), "mysql".into()]);
        assert!(trusted.is_empty());
    }

    #[test]
    fn sensitive_paths_are_matched_by_component() {
        assert!(is_sensitive_host_path("/"));
        assert!(is_sensitive_host_path("/var/lib/kubelet/pki"));
        assert!(!is_sensitive_host_path("/var/log"));
        assert!(!is_sensitive_host_path("/etcetera"));
        assert!(!is_sensitive_host_path("/tmp"));
    }

    #[test]
    fn reads_bindings() {
        let object = json!({"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "Group", "name": "system:authenticated"}, {"kind": "ServiceAccount", "name": "x", "namespace": "ci"}]});
        let binding = binding(&object).expect("binding");
        assert_eq!(binding.role_name, "cluster-admin");
        assert!(binding.subjects[0].is_broad_group());
        assert_eq!(binding.subjects[1].describe(), "ServiceAccount ci/x");
    }
}
