//! The deployment files are checked as the cluster would read them: every
//! Kubernetes manifest is parsed into its typed k8s-openapi object, the audit
//! policy into a small audit.k8s.io/v1 Policy model that is then *evaluated*
//! on representative requests (first matching rule wins, as in the API
//! server), and the systemd unit and container file for their hardening.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Deserialize;
use std::path::{Path, PathBuf};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

#[derive(Default)]
struct Manifests {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    config_maps: Vec<ConfigMap>,
    daemon_sets: Vec<DaemonSet>,
    services: Vec<Service>,
    network_policies: Vec<NetworkPolicy>,
    files: Vec<String>,
}

fn load_manifests() -> Manifests {
    let mut manifests = Manifests::default();
    let directory = deploy_dir().join("kubernetes");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("deploy/kubernetes exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    paths.sort();
    for path in paths {
        let file_name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if file_name == "kustomization.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut documents = 0;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{file_name}: {error}"));
            if value.is_null() {
                continue;
            }
            documents += 1;
            let kind = value
                .get("kind")
                .and_then(|kind| kind.as_str())
                .unwrap_or_else(|| panic!("{file_name}: a document without kind"))
                .to_string();
            let context = |error: serde_yaml::Error| format!("{file_name}: {kind}: {error}");
            match kind.as_str() {
                "Namespace" => manifests.namespaces.push(
                    serde_yaml::from_value(value)
                        .map_err(context)
                        .expect("Namespace"),
                ),
                "ServiceAccount" => manifests.service_accounts.push(
                    serde_yaml::from_value(value)
                        .map_err(context)
                        .expect("ServiceAccount"),
                ),
                "ConfigMap" => manifests.config_maps.push(
                    serde_yaml::from_value(value)
                        .map_err(context)
                        .expect("ConfigMap"),
                ),
                "DaemonSet" => manifests.daemon_sets.push(
                    serde_yaml::from_value(value)
                        .map_err(context)
                        .expect("DaemonSet"),
                ),
                "Service" => manifests.services.push(
                    serde_yaml::from_value(value)
                        .map_err(context)
                        .expect("Service"),
                ),
                "NetworkPolicy" => manifests.network_policies.push(
                    serde_yaml::from_value(value)
                        .map_err(context)
                        .expect("NetworkPolicy"),
                ),
                // auditlens reads files only: any RBAC object here would be a grant it does not need.
                other => panic!(
                    "{file_name}: unexpected kind {other}; the service account needs no RBAC"
                ),
            }
        }
        assert!(documents > 0, "{file_name} holds no manifest");
        manifests.files.push(file_name);
    }
    manifests
}

#[test]
fn kustomization_lists_every_manifest() {
    let manifests = load_manifests();
    let text = std::fs::read_to_string(deploy_dir().join("kubernetes/kustomization.yaml"))
        .expect("kustomization");
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let mut listed: Vec<String> = value["resources"]
        .as_sequence()
        .expect("resources list")
        .iter()
        .map(|entry| entry.as_str().expect("string").to_string())
        .collect();
    listed.sort();
    let mut files = manifests.files.clone();
    files.sort();
    assert_eq!(listed, files);
}

#[test]
fn namespace_and_service_account_grant_nothing() {
    let manifests = load_manifests();
    assert_eq!(manifests.namespaces.len(), 1);
    let namespace = manifests.namespaces[0].metadata.name.clone().expect("name");
    assert_eq!(manifests.service_accounts.len(), 1);
    let account = &manifests.service_accounts[0];
    assert_eq!(
        account.metadata.namespace.as_deref(),
        Some(namespace.as_str())
    );
    assert_eq!(
        account.automount_service_account_token,
        Some(false),
        "no API token: auditlens never calls the API"
    );
}

#[test]
fn daemonset_runs_hardened_on_control_plane_nodes() {
    let manifests = load_manifests();
    assert_eq!(manifests.daemon_sets.len(), 1);
    let daemon_set = &manifests.daemon_sets[0];
    let spec = daemon_set.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let account = manifests.service_accounts[0]
        .metadata
        .name
        .clone()
        .expect("name");
    assert_eq!(pod.service_account_name.as_deref(), Some(account.as_str()));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(
        pod.node_selector
            .as_ref()
            .and_then(|selector| selector.get("node-role.kubernetes.io/control-plane"))
            .map(String::as_str),
        Some("")
    );
    let tolerations = pod.tolerations.as_ref().expect("tolerations");
    assert!(
        tolerations
            .iter()
            .any(|toleration| toleration.key.as_deref()
                == Some("node-role.kubernetes.io/control-plane")
                && toleration.effect.as_deref() == Some("NoSchedule")
                && toleration.operator.as_deref() == Some("Exists"))
    );
    assert_ne!(pod.host_network, Some(true));
    assert_ne!(pod.host_pid, Some(true));
    assert_ne!(pod.host_ipc, Some(true));

    let pod_security = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert!(pod_security.run_as_user.is_some_and(|user| user > 0));
    assert_eq!(
        pod_security
            .seccomp_profile
            .as_ref()
            .map(|profile| profile.type_.as_str()),
        Some("RuntimeDefault")
    );

    let volumes = pod.volumes.as_ref().expect("volumes");
    let audit_volume = volumes
        .iter()
        .find(|volume| {
            volume
                .host_path
                .as_ref()
                .is_some_and(|host| host.path == "/var/log/kubernetes/audit")
        })
        .expect("the audit log folder is a hostPath volume");
    let data_volume = volumes
        .iter()
        .find(|volume| {
            volume
                .host_path
                .as_ref()
                .is_some_and(|host| host.path == "/var/lib/auditlens")
        })
        .expect("a data volume");
    let config_volume = volumes
        .iter()
        .find(|volume| volume.config_map.is_some())
        .expect("a config map volume");
    let config_map_name = manifests.config_maps[0]
        .metadata
        .name
        .clone()
        .expect("name");
    assert_eq!(
        config_volume
            .config_map
            .as_ref()
            .map(|source| source.name.as_str()),
        Some(config_map_name.as_str())
    );

    assert_eq!(pod.containers.len(), 1);
    for container in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        let security = container
            .security_context
            .as_ref()
            .expect("container securityContext");
        assert_eq!(
            security.allow_privilege_escalation,
            Some(false),
            "{}",
            container.name
        );
        assert_ne!(security.privileged, Some(true));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_ne!(security.run_as_non_root, Some(false));
        let capabilities = security.capabilities.as_ref().expect("capabilities");
        assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert!(capabilities.add.as_ref().is_none_or(Vec::is_empty));
        let mounts = container.volume_mounts.as_ref().expect("mounts");
        let audit_mount = mounts
            .iter()
            .find(|mount| mount.name == audit_volume.name)
            .expect("audit folder mounted");
        assert_eq!(
            audit_mount.read_only,
            Some(true),
            "the audit log folder must be mounted read-only"
        );
        let data_mount = mounts
            .iter()
            .find(|mount| mount.name == data_volume.name)
            .expect("data mounted");
        let args = container.args.clone().unwrap_or_default().join(" ");
        assert!(
            args.contains(&format!("--data-dir={}", data_mount.mount_path)),
            "{args}"
        );
        let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            probe
                .as_ref()
                .and_then(|probe| probe.http_get.as_ref())
                .and_then(|get| get.path.clone())
        };
        assert_eq!(
            probe_path(&container.liveness_probe).as_deref(),
            Some("/healthz")
        );
        assert_eq!(
            probe_path(&container.readiness_probe).as_deref(),
            Some("/readyz")
        );
        let port_names: Vec<String> = container
            .ports
            .iter()
            .flatten()
            .filter_map(|port| port.name.clone())
            .collect();
        for service in &manifests.services {
            for port in service
                .spec
                .as_ref()
                .and_then(|spec| spec.ports.as_ref())
                .expect("service ports")
            {
                let target = match port.target_port.as_ref().expect("targetPort") {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => {
                        name.clone()
                    }
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(number) => {
                        panic!("use port names, not {number}")
                    }
                };
                assert!(
                    port_names.contains(&target),
                    "service port {target} has no container port"
                );
            }
        }
    }
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.labels.clone())
        .expect("pod labels");
    for service in &manifests.services {
        let selector = service
            .spec
            .as_ref()
            .and_then(|spec| spec.selector.clone())
            .expect("selector");
        assert!(
            selector
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value)),
            "service selects the pods"
        );
    }
    let service_names: Vec<String> = manifests
        .services
        .iter()
        .filter_map(|service| service.metadata.name.clone())
        .collect();
    assert!(
        service_names.iter().any(|name| name.contains("grpc"))
            && service_names.iter().any(|name| name.contains("metrics"))
    );
}

#[test]
fn config_map_is_the_example_config() {
    let manifests = load_manifests();
    assert_eq!(manifests.config_maps.len(), 1);
    let data = manifests.config_maps[0].data.as_ref().expect("data");
    let example =
        std::fs::read_to_string(deploy_dir().join("auditlens.example.toml")).expect("example");
    assert_eq!(
        data.get("auditlens.toml"),
        Some(&example),
        "regenerate deploy/kubernetes/configmap.yaml from the example"
    );
    let parsed: toml::Value = toml::from_str(&example).expect("the example is TOML");
    assert!(parsed.get("report").is_some() && parsed.get("alerts").is_some());
}

#[test]
fn network_policy_denies_by_default() {
    let manifests = load_manifests();
    assert_eq!(manifests.network_policies.len(), 1);
    let spec = manifests.network_policies[0].spec.as_ref().expect("spec");
    let types = spec.policy_types.clone().unwrap_or_default();
    assert!(types.contains(&"Ingress".to_string()) && types.contains(&"Egress".to_string()));
    let pod_labels = manifests.daemon_sets[0]
        .spec
        .as_ref()
        .and_then(|spec| spec.template.metadata.as_ref())
        .and_then(|metadata| metadata.labels.clone())
        .expect("labels");
    let selected = spec
        .pod_selector
        .as_ref()
        .and_then(|selector| selector.match_labels.clone())
        .expect("matchLabels");
    assert!(
        selected
            .iter()
            .all(|(key, value)| pod_labels.get(key) == Some(value))
    );
    for rule in spec.ingress.iter().flatten() {
        assert!(
            rule.from.as_ref().is_some_and(|from| !from.is_empty()),
            "every ingress rule names its sources"
        );
        assert!(
            rule.ports.as_ref().is_some_and(|ports| !ports.is_empty()),
            "every ingress rule names its ports"
        );
    }
    for rule in spec.egress.iter().flatten() {
        assert!(
            rule.ports.as_ref().is_some_and(|ports| !ports.is_empty()),
            "every egress rule names its ports"
        );
    }
}

// --- the audit policy -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Policy {
    api_version: String,
    kind: String,
    #[serde(default)]
    omit_stages: Vec<String>,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
    rules: Vec<PolicyRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyRule {
    level: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<GroupResources>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    #[serde(default)]
    omit_stages: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupResources {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
}

/// A request as the audit policy sees it.
#[derive(Default)]
struct Request<'a> {
    user: &'a str,
    groups: &'a [&'a str],
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    namespace: &'a str,
    name: &'a str,
    path: &'a str,
}

impl PolicyRule {
    /// The API server's rule matching (k8s.io/apiserver/pkg/audit/policy/checker.go).
    fn matches(&self, request: &Request<'_>) -> bool {
        if !self.users.is_empty() && !self.users.iter().any(|user| user == request.user) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !request
                .groups
                .iter()
                .any(|group| self.user_groups.iter().any(|wanted| wanted == group))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.iter().any(|verb| verb == request.verb) {
            return false;
        }
        let resource_request = request.path.is_empty();
        if resource_request {
            if !self.non_resource_urls.is_empty() {
                return false;
            }
            if !self.namespaces.is_empty()
                && !self
                    .namespaces
                    .iter()
                    .any(|namespace| namespace == request.namespace)
            {
                return false;
            }
            if self.resources.is_empty() {
                return true;
            }
            let combined = if request.subresource.is_empty() {
                request.resource.to_string()
            } else {
                format!("{}/{}", request.resource, request.subresource)
            };
            self.resources.iter().any(|group_resources| {
                group_resources.group == request.group
                    && (group_resources.resources.is_empty()
                        || group_resources.resources.iter().any(|resource| {
                            let resource_matches = resource == &combined
                                || resource == "*"
                                || (!request.subresource.is_empty()
                                    && (resource == &format!("{}/*", request.resource)
                                        || resource == &format!("*/{}", request.subresource)));
                            resource_matches
                                && (group_resources.resource_names.is_empty()
                                    || group_resources
                                        .resource_names
                                        .iter()
                                        .any(|name| name == request.name))
                        }))
            })
        } else {
            if !self.resources.is_empty() || !self.namespaces.is_empty() {
                return false;
            }
            self.non_resource_urls.is_empty()
                || self
                    .non_resource_urls
                    .iter()
                    .any(|url| match url.strip_suffix('*') {
                        Some(prefix) => request.path.starts_with(prefix),
                        None => url == request.path,
                    })
        }
    }
}

impl Policy {
    /// (level, omitted stages) of the first matching rule; no match is level None.
    fn evaluate(&self, request: &Request<'_>) -> (String, Vec<String>) {
        match self.rules.iter().find(|rule| rule.matches(request)) {
            Some(rule) => {
                let mut stages = self.omit_stages.clone();
                stages.extend(rule.omit_stages.iter().cloned());
                (rule.level.clone(), stages)
            }
            None => ("None".to_string(), self.omit_stages.clone()),
        }
    }
}

fn load_policy() -> Policy {
    let text =
        std::fs::read_to_string(deploy_dir().join("audit-policy.yaml")).expect("audit policy");
    serde_yaml::from_str(&text).expect("the audit policy parses as audit.k8s.io/v1 Policy")
}

#[test]
fn audit_policy_is_a_valid_v1_policy() {
    let policy = load_policy();
    assert_eq!(policy.api_version, "audit.k8s.io/v1");
    assert_eq!(policy.kind, "Policy");
    assert_ne!(policy.omit_managed_fields, Some(false));
    assert!(
        policy.omit_stages.contains(&"RequestReceived".to_string()),
        "RequestReceived is omitted"
    );
    for rule in &policy.rules {
        assert!(
            ["None", "Metadata", "Request", "RequestResponse"].contains(&rule.level.as_str()),
            "level {}",
            rule.level
        );
        for stage in &rule.omit_stages {
            assert!(
                [
                    "RequestReceived",
                    "ResponseStarted",
                    "ResponseComplete",
                    "Panic"
                ]
                .contains(&stage.as_str())
            );
        }
    }
    let last = policy.rules.last().expect("rules");
    assert!(
        last.level == "Metadata"
            && last.resources.is_empty()
            && last.non_resource_urls.is_empty()
            && last.users.is_empty()
    );
}

#[test]
fn audit_policy_levels_for_the_requests_that_matter() {
    let policy = load_policy();
    let alice: &[&str] = &["system:authenticated"];
    let node: &[&str] = &["system:nodes", "system:authenticated"];
    let level = |request: Request<'_>| policy.evaluate(&request).0;

    // RBAC and admission changes: full bodies.
    for (group, resource) in [
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("rbac.authorization.k8s.io", "roles"),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        ),
    ] {
        for verb in ["create", "update", "patch", "delete"] {
            assert_eq!(
                level(Request {
                    user: "alice",
                    groups: alice,
                    verb,
                    group,
                    resource,
                    ..Request::default()
                }),
                "RequestResponse",
                "{verb} {resource}"
            );
        }
    }
    // Secrets, config maps, token reviews: metadata only, reads and writes alike.
    for (group, resource, verb) in [
        ("", "secrets", "get"),
        ("", "secrets", "list"),
        ("", "secrets", "create"),
        ("", "configmaps", "update"),
        ("authentication.k8s.io", "tokenreviews", "create"),
    ] {
        assert_eq!(
            level(Request {
                user: "alice",
                groups: alice,
                verb,
                group,
                resource,
                namespace: "prod",
                ..Request::default()
            }),
            "Metadata",
            "{verb} {resource}"
        );
    }
    assert_eq!(
        level(Request {
            user: "alice",
            groups: alice,
            verb: "create",
            resource: "serviceaccounts",
            subresource: "token",
            namespace: "kube-system",
            ..Request::default()
        }),
        "Metadata"
    );
    // Exec, attach, port-forward: recorded, with ResponseStarted kept.
    for subresource in ["exec", "attach", "portforward"] {
        let (exec_level, omitted) = policy.evaluate(&Request {
            user: "alice",
            groups: alice,
            verb: "create",
            resource: "pods",
            subresource,
            namespace: "kube-system",
            ..Request::default()
        });
        assert_ne!(exec_level, "None", "{subresource}");
        assert!(
            !omitted.contains(&"ResponseStarted".to_string()),
            "{subresource} keeps ResponseStarted"
        );
    }
    // Pod creation keeps the request body (privileged, hostPath).
    assert_eq!(
        level(Request {
            user: "alice",
            groups: alice,
            verb: "create",
            resource: "pods",
            namespace: "default",
            ..Request::default()
        }),
        "Request"
    );
    // Noise is dropped: health checks, node heartbeats and events, leader election.
    for path in ["/healthz", "/livez", "/readyz", "/healthz/etcd"] {
        assert_eq!(
            level(Request {
                user: "system:anonymous",
                verb: "get",
                path,
                ..Request::default()
            }),
            "None",
            "{path}"
        );
    }
    assert_eq!(
        level(Request {
            user: "system:node:cp-1",
            groups: node,
            verb: "update",
            group: "coordination.k8s.io",
            resource: "leases",
            namespace: "kube-node-lease",
            ..Request::default()
        }),
        "None"
    );
    assert_eq!(
        level(Request {
            user: "system:node:cp-1",
            groups: node,
            verb: "create",
            resource: "events",
            namespace: "default",
            ..Request::default()
        }),
        "None"
    );
    assert_eq!(
        level(Request {
            user: "system:kube-scheduler",
            groups: alice,
            verb: "update",
            group: "coordination.k8s.io",
            resource: "leases",
            namespace: "kube-system",
            ..Request::default()
        }),
        "None"
    );
    // ...but a node reading secrets, or anyone deleting events, is still recorded.
    assert_eq!(
        level(Request {
            user: "system:node:cp-1",
            groups: node,
            verb: "get",
            resource: "secrets",
            namespace: "default",
            ..Request::default()
        }),
        "Metadata"
    );
    assert_eq!(
        level(Request {
            user: "alice",
            groups: alice,
            verb: "delete",
            resource: "events",
            namespace: "default",
            ..Request::default()
        }),
        "Metadata"
    );
    // Everything else at Metadata.
    assert_eq!(
        level(Request {
            user: "alice",
            groups: alice,
            verb: "list",
            group: "apps",
            resource: "deployments",
            namespace: "default",
            ..Request::default()
        }),
        "Metadata"
    );
}

// --- systemd unit and container file ----------------------------------------

#[test]
fn systemd_unit_is_hardened() {
    let text = std::fs::read_to_string(deploy_dir().join("auditlens.service")).expect("unit");
    let mut settings: Vec<(String, String)> = Vec::new();
    let mut section = String::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
    {
        if line.starts_with('[') {
            section = line
                .trim_matches(|character| character == '[' || character == ']')
                .to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        settings.push((
            format!("{section}.{}", key.trim()),
            value.trim().to_string(),
        ));
    }
    let get = |key: &str| {
        settings
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .collect::<Vec<_>>()
    };
    let one = |key: &str| {
        get(key)
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert!(one("Service.ExecStart").starts_with("/usr/local/bin/auditlens serve"));
    assert!(
        one("Service.DynamicUser") == "yes"
            || get("Service.User").iter().any(|user| user != "root")
    );
    assert_eq!(one("Service.ProtectSystem"), "strict");
    assert_eq!(one("Service.NoNewPrivileges"), "yes");
    assert_eq!(
        one("Service.CapabilityBoundingSet"),
        "",
        "an empty bounding set drops every capability"
    );
    assert_eq!(one("Service.AmbientCapabilities"), "");
    assert!(
        one("Service.ReadOnlyPaths")
            .split_whitespace()
            .any(|path| path == "/var/log/kubernetes/audit")
    );
    assert_eq!(one("Service.StateDirectory"), "auditlens");
    for key in [
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictSUIDSGID",
        "LockPersonality",
    ] {
        assert_eq!(one(&format!("Service.{key}")), "yes", "{key}");
    }
    assert!(
        get("Service.SystemCallFilter")
            .iter()
            .any(|filter| filter == "@system-service")
    );
    assert_eq!(one("Service.KillSignal"), "SIGTERM");
    assert_eq!(one("Install.WantedBy"), "multi-user.target");
}

#[test]
fn container_file_is_multi_stage_and_unprivileged() {
    let text = std::fs::read_to_string(deploy_dir().join("Containerfile")).expect("Containerfile");
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let stages: Vec<&&str> = instructions
        .iter()
        .filter(|line| line.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage");
    let final_stage = instructions
        .iter()
        .rposition(|line| line.starts_with("FROM "))
        .expect("FROM");
    let final_instructions = &instructions[final_stage..];
    assert!(
        final_instructions
            .iter()
            .any(|line| line.starts_with("COPY --from=")),
        "the runtime stage copies the built binary"
    );
    let user = final_instructions
        .iter()
        .rev()
        .find(|line| line.starts_with("USER "))
        .expect("USER in the runtime stage");
    let uid = user
        .trim_start_matches("USER ")
        .split(':')
        .next()
        .expect("uid");
    assert!(uid != "0" && uid != "root", "runs as non-root: {user}");
    assert!(
        !instructions.iter().any(|line| line.starts_with("ADD http")),
        "no remote ADD"
    );
    assert!(
        final_instructions
            .iter()
            .any(|line| line.starts_with("ENTRYPOINT"))
    );
}
