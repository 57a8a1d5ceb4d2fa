//! The simulated cluster: namespaces, nodes, applications and their pods, the
//! identities that act on them, and the RBAC state that grants what they do.
//!
//! Machine identities (kubelets, controllers, add-ons, application service
//! accounts, the CI deployer) get roles whose rules grow from what they are
//! seen doing in benign operation, as if an operator had written least-ish
//! privilege roles for them up front; the role objects exist from the start
//! and are dumped at the end with everything they grant. Attack traffic never
//! grows a role. Human users get fixed, realistic roles (cluster-admin, view,
//! edit, admin), so their odd requests outside them really are denied.

use super::engine::CallTarget;
use super::json::{self, quoted};
use super::rbac::{Binding, PolicyRule, RbacState, Role, Subject};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub(crate) const KUBERNETES_VERSION: &str = "v1.31.2";
pub(crate) const KUBERNETES_COMMIT: &str = "5864a46";

/// What part an identity plays (drives which activities it gets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Kubelet {
        node: usize,
    },
    ControlPlane,
    Controller,
    AddOn,
    ContinuousIntegration,
    Application {
        app: usize,
    },
    Human {
        human: usize,
    },
    Anonymous,
    /// An identity that only appears in attacks (for example a minted token).
    Other,
}

pub(crate) struct Identity {
    pub username: String,
    pub groups: Vec<String>,
    /// `{"username":...,"uid":...,"groups":[...],"extra":{...}}`, pre-rendered.
    pub user_json: String,
    /// As it appears under `impersonatedUser`.
    pub impersonated_json: String,
    pub user_agent: Rc<str>,
    pub source_ips: Vec<Rc<str>>,
    pub human: bool,
    pub part: Part,
    /// The role that grows from this identity's benign use, if any.
    pub derived_role: Option<usize>,
}

/// A role whose rules are the union of what its holder was seen doing, plus a
/// fixed base.
pub(crate) struct DerivedRole {
    pub namespace: Option<String>,
    pub name: String,
    pub base: Vec<PolicyRule>,
    /// (group, resource[/subresource], resourceName or "") -> verbs
    pub grants: BTreeMap<(String, String, String), BTreeSet<String>>,
    /// Whether grants name the object (application roles) or not.
    pub with_names: bool,
}

impl DerivedRole {
    /// Records the grant `call` needs; returns whether anything changed.
    pub(crate) fn grant(&mut self, verb: &str, target: &CallTarget) -> bool {
        let CallTarget::Resource {
            resource,
            subresource,
            name,
            ..
        } = target
        else {
            // Non-resource URLs are granted to everyone by system:discovery here.
            return false;
        };
        let full = match subresource {
            Some(sub) => format!("{}/{sub}", resource.name),
            None => resource.name.to_string(),
        };
        let named = self.with_names && matches!(verb, "get" | "update" | "patch" | "delete");
        let name = if named {
            name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let verbs = self
            .grants
            .entry((resource.group.to_string(), full, name))
            .or_default();
        let mut changed = verbs.insert(verb.to_string());
        // Reflectors list and then watch: roles grant both together.
        match verb {
            "list" => changed |= verbs.insert("watch".into()),
            "watch" => changed |= verbs.insert("list".into()),
            _ => {}
        }
        changed
    }

    pub(crate) fn to_role(
        &self,
        created: i64,
        uid: &str,
        resource_version: u64,
        bootstrap: bool,
    ) -> Role {
        let mut rules = self.base.clone();
        // One rule per (group, name, verb set), listing its resources.
        let mut grouped: BTreeMap<(String, String, Vec<String>), Vec<String>> = BTreeMap::new();
        for ((group, resource, name), verbs) in &self.grants {
            grouped
                .entry((group.clone(), name.clone(), verbs.iter().cloned().collect()))
                .or_default()
                .push(resource.clone());
        }
        for ((group, name, verbs), resources) in grouped {
            rules.push(PolicyRule {
                api_groups: vec![group],
                resources,
                verbs,
                resource_names: if name.is_empty() {
                    Vec::new()
                } else {
                    vec![name]
                },
                non_resource_urls: Vec::new(),
            });
        }
        Role {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            rules,
            bootstrap,
            created,
            uid: uid.to_string(),
            resource_version,
        }
    }
}

pub(crate) struct Node {
    pub name: String,
    pub ip: Rc<str>,
    pub identity: usize,
    pub uid: String,
}

pub(crate) struct Pod {
    pub name: String,
    pub node: usize,
    pub uid: String,
}

pub(crate) struct Application {
    pub name: String,
    pub namespace: Rc<str>,
    pub replicas: usize,
    pub replica_set_hash: String,
    pub pods: Vec<Pod>,
    pub identity: usize,
    pub image: String,
    pub has_cron_job: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HumanRole {
    PlatformAdmin,
    SiteReliability,
    Developer,
}

pub(crate) struct Human {
    pub identity: usize,
    pub role: HumanRole,
    pub team: usize,
    /// Offset of the person's local time from UTC, in minutes.
    pub utc_offset_minutes: i64,
    /// The namespaces this person usually works in.
    pub namespaces: Vec<Rc<str>>,
    /// Sessions per working hour.
    pub sessions_per_hour: f64,
    pub office_ips: Vec<Rc<str>>,
    pub vpn_ips: Vec<Rc<str>>,
    pub on_call: bool,
    /// A namespace this person starts using at the given time (benign adoption).
    pub adopted_namespace: Option<(i64, Rc<str>)>,
}

pub(crate) struct Team {
    pub name: &'static str,
    pub group: String,
    pub namespaces: Vec<Rc<str>>,
}

/// Well-known identities the behaviors refer to.
#[derive(Default)]
pub(crate) struct WellKnown {
    pub controller_manager: usize,
    pub scheduler: usize,
    pub api_server: usize,
    pub kube_proxy: usize,
    pub deployment_controller: usize,
    pub replicaset_controller: usize,
    pub endpointslice_controller: usize,
    pub job_controller: usize,
    pub cronjob_controller: usize,
    pub ttl_controller: usize,
    pub certificate_controller: usize,
    pub namespace_controller: usize,
    pub garbage_collector: usize,
    pub resourcequota_controller: usize,
    pub node_controller: usize,
    pub attachdetach_controller: usize,
    pub volume_binder: usize,
    pub coredns: usize,
    pub metrics_server: usize,
    pub prometheus: usize,
    pub prometheus_operator: usize,
    pub kube_state_metrics: usize,
    pub cert_manager: usize,
    pub cert_manager_cainjector: usize,
    pub ingress_nginx: usize,
    pub argocd: usize,
    pub ci_deployer: usize,
    pub anonymous: usize,
}

pub(crate) struct Cluster {
    pub identities: Vec<Identity>,
    pub derived_roles: Vec<DerivedRole>,
    pub nodes: Vec<Node>,
    pub applications: Vec<Application>,
    pub humans: Vec<Human>,
    pub teams: Vec<Team>,
    pub system_namespaces: Vec<Rc<str>>,
    pub all_namespaces: Vec<Rc<str>>,
    /// Namespaces created during the run (benign adoption), not in use before.
    pub late_namespaces: Vec<Rc<str>>,
    pub known: WellKnown,
    pub load_balancer_ips: Vec<Rc<str>>,
    pub created: i64,
}

pub(crate) fn rc(text: &str) -> Rc<str> {
    Rc::from(text)
}

fn user_json(
    username: &str,
    uid: Option<&str>,
    groups: &[String],
    extra: &[(&str, String)],
) -> String {
    let mut text = String::with_capacity(256);
    text.push_str("{\"username\":");
    text.push_str(&quoted(username));
    if let Some(uid) = uid {
        text.push_str(",\"uid\":");
        text.push_str(&quoted(uid));
    }
    text.push_str(",\"groups\":[");
    for (index, group) in groups.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&quoted(group));
    }
    text.push(']');
    if !extra.is_empty() {
        text.push_str(",\"extra\":{");
        for (index, (key, value)) in extra.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            text.push_str(&quoted(key));
            text.push_str(":[");
            text.push_str(&quoted(value));
            text.push(']');
        }
        text.push('}');
    }
    text.push('}');
    text
}

/// Sizes and names chosen from the identity target.
pub(crate) struct ClusterShape {
    pub nodes: usize,
    pub applications: usize,
    pub humans: usize,
}

impl ClusterShape {
    /// About 30 identities are fixed (control plane, controllers, add-ons, CI,
    /// anonymous); nodes, applications and humans share the rest 6:6:10.
    pub(crate) fn for_identities(identities: usize) -> ClusterShape {
        let variable = identities.saturating_sub(29).max(10) as f64;
        ClusterShape {
            nodes: ((variable * 6.0 / 22.0).round() as usize).max(3),
            applications: ((variable * 6.0 / 22.0).round() as usize).max(3),
            humans: ((variable * 10.0 / 22.0).round() as usize).max(5),
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin",
];

const KUBECTL_AGENTS: &[&str] = &[
    "kubectl/v1.31.0 (darwin/arm64) kubernetes/9edcffc",
    "kubectl/v1.30.5 (linux/amd64) kubernetes/74e84a9",
    "kubectl/v1.31.1 (darwin/amd64) kubernetes/948afe5",
    "kubectl/v1.29.9 (windows/amd64) kubernetes/114a6a3",
    "k9s/v0.32.5 (darwin/arm64) kubernetes/$Format",
];

struct Builder<'a> {
    rng: &'a mut ChaCha8Rng,
    cluster: Cluster,
    rbac: RbacState,
}

impl Builder<'_> {
    fn uid(&mut self) -> String {
        json::uuid_string(self.rng)
    }

    fn add_identity(
        &mut self,
        username: &str,
        groups: &[&str],
        agent: &str,
        ips: Vec<Rc<str>>,
        part: Part,
        extra: &[(&str, String)],
    ) -> usize {
        let groups: Vec<String> = groups.iter().map(|group| group.to_string()).collect();
        let uid = match part {
            Part::Human { .. } | Part::Anonymous | Part::Kubelet { .. } => None,
            _ if username.starts_with("system:serviceaccount:") => Some(self.uid()),
            _ => None,
        };
        let identity = Identity {
            username: username.to_string(),
            user_json: user_json(username, uid.as_deref(), &groups, extra),
            impersonated_json: user_json(username, None, &groups, &[]),
            groups,
            user_agent: rc(agent),
            source_ips: ips,
            human: matches!(part, Part::Human { .. }),
            part,
            derived_role: None,
        };
        self.cluster.identities.push(identity);
        self.cluster.identities.len() - 1
    }

    fn service_account(
        &mut self,
        namespace: &str,
        name: &str,
        agent: &str,
        ips: Vec<Rc<str>>,
        part: Part,
        pod: Option<(&str, usize)>,
    ) -> usize {
        let username = format!("system:serviceaccount:{namespace}:{name}");
        let account_group = format!("system:serviceaccounts:{namespace}");
        let mut extra = Vec::new();
        extra.push((
            "authentication.kubernetes.io/credential-id",
            format!("JTI={}", json::uuid_string(self.rng)),
        ));
        if let Some((pod_name, node)) = pod {
            let node_name = self
                .cluster
                .nodes
                .get(node)
                .map(|node| node.name.clone())
                .unwrap_or_default();
            let node_uid = self
                .cluster
                .nodes
                .get(node)
                .map(|node| node.uid.clone())
                .unwrap_or_default();
            extra.push(("authentication.kubernetes.io/node-name", node_name));
            extra.push(("authentication.kubernetes.io/node-uid", node_uid));
            extra.push((
                "authentication.kubernetes.io/pod-name",
                pod_name.to_string(),
            ));
            extra.push((
                "authentication.kubernetes.io/pod-uid",
                json::uuid_string(self.rng),
            ));
        }
        self.add_identity(
            &username,
            &[
                "system:serviceaccounts",
                &account_group,
                "system:authenticated",
            ],
            agent,
            ips,
            part,
            &extra,
        )
    }

    /// A ClusterRole (or Role) bound to one subject, whose rules grow from use.
    fn derive_role(
        &mut self,
        identity: usize,
        namespace: Option<&str>,
        name: &str,
        subject: Subject,
        base: Vec<PolicyRule>,
        bootstrap: bool,
    ) {
        let derived = DerivedRole {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            base,
            grants: BTreeMap::new(),
            with_names: namespace.is_some(),
        };
        let created = self.cluster.created;
        let role_uid = self.uid();
        self.rbac
            .put_role(derived.to_role(created, &role_uid, 300, bootstrap));
        let binding_uid = self.uid();
        self.rbac.put_binding(Binding {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            role_kind: if namespace.is_some() {
                "Role"
            } else {
                "ClusterRole"
            }
            .to_string(),
            role_name: name.to_string(),
            subjects: vec![subject],
            bootstrap,
            created,
            uid: binding_uid,
            resource_version: 301,
        });
        self.cluster.derived_roles.push(derived);
        self.cluster.identities[identity].derived_role = Some(self.cluster.derived_roles.len() - 1);
    }

    fn fixed_role(
        &mut self,
        namespace: Option<&str>,
        name: &str,
        rules: Vec<PolicyRule>,
        bootstrap: bool,
    ) {
        let uid = self.uid();
        let created = self.cluster.created;
        self.rbac.put_role(Role {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            rules,
            bootstrap,
            created,
            uid,
            resource_version: 200,
        });
    }

    fn bind(
        &mut self,
        namespace: Option<&str>,
        name: &str,
        role_kind: &str,
        role_name: &str,
        subjects: Vec<Subject>,
        bootstrap: bool,
    ) {
        let uid = self.uid();
        let created = self.cluster.created;
        self.rbac.put_binding(Binding {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            role_kind: role_kind.to_string(),
            role_name: role_name.to_string(),
            subjects,
            bootstrap,
            created,
            uid,
            resource_version: 201,
        });
    }
}

fn read_verbs() -> &'static [&'static str] {
    &["get", "list", "watch"]
}

fn write_verbs() -> &'static [&'static str] {
    &["create", "delete", "deletecollection", "patch", "update"]
}

/// The bootstrap `view` rules (abridged to the resources this cluster serves).
fn view_rules() -> Vec<PolicyRule> {
    vec![
        PolicyRule::resources(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "pods/log",
                "pods/status",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "events",
                "limitranges",
                "resourcequotas",
                "resourcequotas/status",
                "namespaces/status",
                "bindings",
            ],
            read_verbs(),
        ),
        PolicyRule::resources(&[""], &["namespaces"], read_verbs()),
        PolicyRule::resources(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            read_verbs(),
        ),
        PolicyRule::resources(
            &["autoscaling"],
            &["horizontalpodautoscalers"],
            read_verbs(),
        ),
        PolicyRule::resources(&["batch"], &["cronjobs", "jobs"], read_verbs()),
        PolicyRule::resources(&["discovery.k8s.io"], &["endpointslices"], read_verbs()),
        PolicyRule::resources(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            read_verbs(),
        ),
        PolicyRule::resources(&["policy"], &["poddisruptionbudgets"], read_verbs()),
        PolicyRule::resources(&["metrics.k8s.io"], &["pods", "nodes"], read_verbs()),
        PolicyRule::resources(
            &["cert-manager.io"],
            &["certificates", "certificaterequests", "issuers"],
            read_verbs(),
        ),
        PolicyRule::resources(
            &["monitoring.coreos.com"],
            &["servicemonitors", "prometheusrules"],
            read_verbs(),
        ),
    ]
}

fn edit_rules() -> Vec<PolicyRule> {
    let mut rules = view_rules();
    rules.push(PolicyRule::resources(
        &[""],
        &[
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "secrets",
            "services/proxy",
        ],
        read_verbs(),
    ));
    rules.push(PolicyRule::resources(
        &[""],
        &["serviceaccounts"],
        &["impersonate"],
    ));
    rules.push(PolicyRule::resources(
        &[""],
        &[
            "pods",
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "configmaps",
            "secrets",
            "services",
            "persistentvolumeclaims",
            "serviceaccounts",
            "endpoints",
        ],
        write_verbs(),
    ));
    rules.push(PolicyRule::resources(
        &["apps"],
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        write_verbs(),
    ));
    rules.push(PolicyRule::resources(
        &["autoscaling"],
        &["horizontalpodautoscalers"],
        write_verbs(),
    ));
    rules.push(PolicyRule::resources(
        &["batch"],
        &["cronjobs", "jobs"],
        write_verbs(),
    ));
    rules.push(PolicyRule::resources(
        &["networking.k8s.io"],
        &["ingresses", "networkpolicies"],
        write_verbs(),
    ));
    rules.push(PolicyRule::resources(
        &["policy"],
        &["poddisruptionbudgets"],
        write_verbs(),
    ));
    rules.push(PolicyRule::resources(
        &["cert-manager.io"],
        &["certificates", "certificaterequests", "issuers"],
        write_verbs(),
    ));
    rules
}

fn admin_rules() -> Vec<PolicyRule> {
    let mut rules = edit_rules();
    rules.push(PolicyRule::resources(
        &["authorization.k8s.io"],
        &["localsubjectaccessreviews"],
        &["create"],
    ));
    rules.push(PolicyRule::resources(
        &["rbac.authorization.k8s.io"],
        &["rolebindings", "roles"],
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    ));
    rules
}

/// Builds the cluster and its initial RBAC state.
pub(crate) fn build(
    rng: &mut ChaCha8Rng,
    shape: &ClusterShape,
    created: i64,
) -> (Cluster, RbacState) {
    let mut builder = Builder {
        rng,
        cluster: Cluster {
            identities: Vec::new(),
            derived_roles: Vec::new(),
            nodes: Vec::new(),
            applications: Vec::new(),
            humans: Vec::new(),
            teams: Vec::new(),
            system_namespaces: Vec::new(),
            all_namespaces: Vec::new(),
            late_namespaces: Vec::new(),
            known: WellKnown::default(),
            load_balancer_ips: vec![rc("10.0.0.4"), rc("10.0.0.5")],
            created,
        },
        rbac: RbacState::default(),
    };
    let b = &mut builder;
    let kube_agent = |component: &str| {
        format!("{component}/{KUBERNETES_VERSION} (linux/amd64) kubernetes/{KUBERNETES_COMMIT}")
    };
    let control_plane_ip = vec![rc("10.0.0.10")];

    // Namespaces.
    for name in [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "default",
        "monitoring",
        "cert-manager",
        "ingress-nginx",
        "argocd",
        "ci",
    ] {
        b.cluster.system_namespaces.push(rc(name));
    }
    let team_specs: [(&'static str, &[&str]); 3] = [
        ("shop", &["shop", "shop-staging"]),
        ("payments", &["payments", "payments-staging"]),
        ("data", &["data", "data-staging"]),
    ];
    for (name, namespaces) in team_specs {
        b.cluster.teams.push(Team {
            name,
            group: format!("team-{name}"),
            namespaces: namespaces.iter().map(|namespace| rc(namespace)).collect(),
        });
    }
    b.cluster.late_namespaces.push(rc("search"));
    let mut all: Vec<Rc<str>> = b.cluster.system_namespaces.clone();
    for team in &b.cluster.teams {
        all.extend(team.namespaces.iter().cloned());
    }
    b.cluster.all_namespaces = all;

    // Bootstrap roles humans and discovery use.
    b.fixed_role(
        None,
        "cluster-admin",
        vec![
            PolicyRule::resources(&["*"], &["*"], &["*"]),
            PolicyRule::urls(&["*"], &["*"]),
        ],
        true,
    );
    b.fixed_role(None, "admin", admin_rules(), true);
    b.fixed_role(None, "edit", edit_rules(), true);
    b.fixed_role(None, "view", view_rules(), true);
    b.fixed_role(
        None,
        "system:discovery",
        vec![PolicyRule::urls(
            &[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ],
            &["get"],
        )],
        true,
    );
    b.fixed_role(
        None,
        "system:public-info-viewer",
        vec![PolicyRule::urls(
            &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            &["get"],
        )],
        true,
    );
    b.fixed_role(
        None,
        "system:basic-user",
        vec![
            PolicyRule::resources(
                &["authorization.k8s.io"],
                &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                &["create"],
            ),
            PolicyRule::resources(
                &["authentication.k8s.io"],
                &["selfsubjectreviews"],
                &["create"],
            ),
        ],
        true,
    );
    b.bind(
        None,
        "system:discovery",
        "ClusterRole",
        "system:discovery",
        vec![Subject::group("system:authenticated")],
        true,
    );
    b.bind(
        None,
        "system:public-info-viewer",
        "ClusterRole",
        "system:public-info-viewer",
        vec![
            Subject::group("system:authenticated"),
            Subject::group("system:unauthenticated"),
        ],
        true,
    );
    b.bind(
        None,
        "system:basic-user",
        "ClusterRole",
        "system:basic-user",
        vec![Subject::group("system:authenticated")],
        true,
    );
    b.bind(
        None,
        "cluster-admin",
        "ClusterRole",
        "cluster-admin",
        vec![Subject::group("system:masters")],
        true,
    );

    // Nodes and their kubelets.
    for index in 0..shape.nodes {
        let name = if index == 0 {
            "cp-1".to_string()
        } else {
            format!("worker-{}", json::name_suffix(b.rng, 5))
        };
        let ip = rc(&format!("10.0.1.{}", 10 + index));
        let uid = b.uid();
        b.cluster.nodes.push(Node {
            name: name.clone(),
            ip: ip.clone(),
            identity: 0,
            uid,
        });
        let identity = b.add_identity(
            &format!("system:node:{name}"),
            &["system:nodes", "system:authenticated"],
            &format!("kubelet/{KUBERNETES_VERSION} (linux/amd64) kubernetes/{KUBERNETES_COMMIT}"),
            vec![ip],
            Part::Kubelet { node: index },
            &[],
        );
        b.cluster.nodes[index].identity = identity;
    }
    // All kubelets share the system:node role through the system:nodes group.
    let first_kubelet = b.cluster.nodes[0].identity;
    b.derive_role(
        first_kubelet,
        None,
        "system:node",
        Subject::group("system:nodes"),
        Vec::new(),
        true,
    );
    let node_role = b.cluster.identities[first_kubelet].derived_role;
    for node in 1..b.cluster.nodes.len() {
        let identity = b.cluster.nodes[node].identity;
        b.cluster.identities[identity].derived_role = node_role;
    }

    // Control plane.
    let known = &mut WellKnown::default();
    known.controller_manager = b.add_identity(
        "system:kube-controller-manager",
        &["system:authenticated"],
        &format!("{}/leader-election", kube_agent("kube-controller-manager")),
        control_plane_ip.clone(),
        Part::ControlPlane,
        &[],
    );
    b.derive_role(
        known.controller_manager,
        None,
        "system:kube-controller-manager",
        Subject::user("system:kube-controller-manager"),
        Vec::new(),
        true,
    );
    known.scheduler = b.add_identity(
        "system:kube-scheduler",
        &["system:authenticated"],
        &format!("{}/scheduler", kube_agent("kube-scheduler")),
        control_plane_ip.clone(),
        Part::ControlPlane,
        &[],
    );
    b.derive_role(
        known.scheduler,
        None,
        "system:kube-scheduler",
        Subject::user("system:kube-scheduler"),
        Vec::new(),
        true,
    );
    known.api_server = b.add_identity(
        "system:apiserver",
        &["system:authenticated", "system:masters"],
        &kube_agent("kube-apiserver"),
        vec![rc("::1")],
        Part::ControlPlane,
        &[],
    );
    let node_ips: Vec<Rc<str>> = b.cluster.nodes.iter().map(|node| node.ip.clone()).collect();
    known.kube_proxy = b.service_account(
        "kube-system",
        "kube-proxy",
        &kube_agent("kube-proxy"),
        node_ips.clone(),
        Part::AddOn,
        None,
    );
    b.derive_role(
        known.kube_proxy,
        None,
        "system:node-proxier",
        Subject::service_account("kube-system", "kube-proxy"),
        Vec::new(),
        true,
    );

    // Controllers of kube-controller-manager, with their own service accounts.
    let controllers: [(&str, &mut usize); 13] = [
        ("deployment-controller", &mut known.deployment_controller),
        ("replicaset-controller", &mut known.replicaset_controller),
        (
            "endpointslice-controller",
            &mut known.endpointslice_controller,
        ),
        ("job-controller", &mut known.job_controller),
        ("cronjob-controller", &mut known.cronjob_controller),
        ("ttl-after-finished-controller", &mut known.ttl_controller),
        ("certificate-controller", &mut known.certificate_controller),
        ("namespace-controller", &mut known.namespace_controller),
        ("generic-garbage-collector", &mut known.garbage_collector),
        (
            "resourcequota-controller",
            &mut known.resourcequota_controller,
        ),
        ("node-controller", &mut known.node_controller),
        (
            "attachdetach-controller",
            &mut known.attachdetach_controller,
        ),
        ("persistent-volume-binder", &mut known.volume_binder),
    ];
    for (name, slot) in controllers {
        let agent = format!(
            "{}/system:serviceaccount:kube-system:{name}",
            kube_agent("kube-controller-manager")
        );
        let identity = b.service_account(
            "kube-system",
            name,
            &agent,
            control_plane_ip.clone(),
            Part::Controller,
            None,
        );
        let role = format!("system:controller:{name}");
        b.derive_role(
            identity,
            None,
            &role,
            Subject::service_account("kube-system", name),
            Vec::new(),
            true,
        );
        *slot = identity;
    }

    // Add-ons: one pod each on some worker, source IP from the pod network.
    let pod_ip = |rng: &mut ChaCha8Rng| {
        rc(&format!(
            "10.244.{}.{}",
            rng.random_range(1..8),
            rng.random_range(2..250)
        ))
    };
    let add_ons: [(&str, &str, &str, &str, &mut usize); 9] = [
        (
            "kube-system",
            "coredns",
            "coredns/v0.0.0 (linux/amd64) kubernetes/$Format",
            "system:coredns",
            &mut known.coredns,
        ),
        (
            "kube-system",
            "metrics-server",
            "metrics-server/v0.7.2 (linux/amd64) kubernetes/$Format",
            "system:metrics-server",
            &mut known.metrics_server,
        ),
        (
            "monitoring",
            "prometheus-k8s",
            "Prometheus/2.54.1",
            "prometheus-k8s",
            &mut known.prometheus,
        ),
        (
            "monitoring",
            "prometheus-operator",
            "PrometheusOperator/0.77.1",
            "prometheus-operator",
            &mut known.prometheus_operator,
        ),
        (
            "monitoring",
            "kube-state-metrics",
            "kube-state-metrics/v2.13.0 (linux/amd64) kubernetes/$Format",
            "kube-state-metrics",
            &mut known.kube_state_metrics,
        ),
        (
            "cert-manager",
            "cert-manager",
            "cert-manager-controller/v1.16.1 (linux/amd64) cert-manager/3b4a1ea6",
            "cert-manager-controller",
            &mut known.cert_manager,
        ),
        (
            "cert-manager",
            "cert-manager-cainjector",
            "cert-manager-cainjector/v1.16.1 (linux/amd64) cert-manager/3b4a1ea6",
            "cert-manager-cainjector",
            &mut known.cert_manager_cainjector,
        ),
        (
            "ingress-nginx",
            "ingress-nginx",
            "nginx-ingress-controller/v1.11.3 (linux/amd64) ingress-nginx/0106de65cfccb74405a6dfa7d9daffc6f0a6ef1a",
            "ingress-nginx",
            &mut known.ingress_nginx,
        ),
        (
            "argocd",
            "argocd-application-controller",
            "argocd-application-controller/v2.13.1+af54ef8 (linux/amd64)",
            "argocd-application-controller",
            &mut known.argocd,
        ),
    ];
    for (namespace, name, agent, role, slot) in add_ons {
        let ip = pod_ip(b.rng);
        let node = b.rng.random_range(0..b.cluster.nodes.len());
        let pod_name = format!(
            "{name}-{}-{}",
            json::name_suffix(b.rng, 10),
            json::name_suffix(b.rng, 5)
        );
        let identity = b.service_account(
            namespace,
            name,
            agent,
            vec![ip],
            Part::AddOn,
            Some((&pod_name, node)),
        );
        if name == "argocd-application-controller" {
            // Argo CD's stock role: everything, everywhere.
            b.fixed_role(
                None,
                role,
                vec![
                    PolicyRule::resources(&["*"], &["*"], &["*"]),
                    PolicyRule::urls(&["*"], &["*"]),
                ],
                false,
            );
            b.bind(
                None,
                role,
                "ClusterRole",
                role,
                vec![Subject::service_account(namespace, name)],
                false,
            );
        } else if name == "prometheus-k8s" {
            // Granted the node proxy it never uses (scrapes go to the kubelet directly).
            let base = vec![
                PolicyRule::resources(&[""], &["nodes/metrics", "nodes/proxy"], &["get"]),
                PolicyRule::urls(&["/metrics"], &["get"]),
            ];
            b.derive_role(
                identity,
                None,
                role,
                Subject::service_account(namespace, name),
                base,
                false,
            );
        } else {
            b.derive_role(
                identity,
                None,
                role,
                Subject::service_account(namespace, name),
                Vec::new(),
                name == "coredns",
            );
        }
        *slot = identity;
    }

    // The CI deployer: weekday bursts from the self-hosted runners, with a
    // broad cluster-wide role (helm installs CRDs and touches config maps).
    let runner_ips: Vec<Rc<str>> = (0..3)
        .map(|index| rc(&format!("10.40.0.{}", 21 + index)))
        .collect();
    known.ci_deployer = b.service_account(
        "ci",
        "deployer",
        "Helm/3.16.2",
        runner_ips,
        Part::ContinuousIntegration,
        None,
    );
    let ci_base = vec![
        PolicyRule::resources(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            &["get", "list", "watch", "create", "patch", "update"],
        ),
        PolicyRule::resources(
            &[""],
            &["configmaps", "secrets", "services", "serviceaccounts"],
            &[
                "get", "list", "watch", "create", "patch", "update", "delete",
            ],
        ),
    ];
    b.derive_role(
        known.ci_deployer,
        None,
        "ci-deployer",
        Subject::service_account("ci", "deployer"),
        ci_base,
        false,
    );

    known.anonymous = b.add_identity(
        "system:anonymous",
        &["system:unauthenticated"],
        "ELB-HealthChecker/2.0",
        b.cluster.load_balancer_ips.clone(),
        Part::Anonymous,
        &[],
    );

    // Applications: one deployment and service account each, in its team's namespaces.
    const APPLICATIONS: &[(&str, usize)] = &[
        ("frontend", 0),
        ("cart", 0),
        ("payments-api", 1),
        ("ledger", 1),
        ("etl-worker", 2),
        ("catalog", 0),
        ("fraud-scorer", 1),
        ("reporting", 2),
        ("checkout", 0),
        ("notifier", 1),
        ("search-indexer", 2),
        ("recommender", 0),
    ];
    for index in 0..shape.applications {
        let (base_name, team) = APPLICATIONS[index % APPLICATIONS.len()];
        let name = if index < APPLICATIONS.len() {
            base_name.to_string()
        } else {
            format!("{base_name}-{}", index / APPLICATIONS.len() + 1)
        };
        // Production mostly; every third application also in staging.
        let namespace = b.cluster.teams[team].namespaces[usize::from(index % 3 == 2)].clone();
        let replicas = b.rng.random_range(2..5);
        let hash = json::name_suffix(b.rng, 10);
        let mut pods = Vec::new();
        for _ in 0..replicas {
            let node = b
                .rng
                .random_range(1..b.cluster.nodes.len().max(2))
                .min(b.cluster.nodes.len() - 1);
            let uid = b.uid();
            pods.push(Pod {
                name: format!("{name}-{hash}-{}", json::name_suffix(b.rng, 5)),
                node,
                uid,
            });
        }
        let pod_ips: Vec<Rc<str>> = (0..replicas).map(|_| pod_ip(b.rng)).collect();
        let first_pod = (pods[0].name.clone(), pods[0].node);
        let agent = match index % 4 {
            0 => "Go-http-client/2.0".to_string(),
            1 => format!("{name}/1.{} (linux/amd64) kubernetes/$Format", index + 3),
            2 => "okhttp/4.12.0".to_string(),
            _ => "python-requests/2.32.3".to_string(),
        };
        let identity = b.service_account(
            &namespace,
            &name,
            &agent,
            pod_ips,
            Part::Application { app: index },
            Some((&first_pod.0, first_pod.1)),
        );
        b.derive_role(
            identity,
            Some(&namespace),
            &format!("{name}-config-reader"),
            Subject::service_account(&namespace, &name),
            Vec::new(),
            false,
        );
        b.cluster.applications.push(Application {
            name: name.clone(),
            namespace,
            replicas,
            replica_set_hash: hash,
            pods,
            identity,
            image: format!(
                "registry.example.com/{}/{name}:1.{}.{}",
                b.cluster.teams[team].name,
                b.rng.random_range(2..30),
                b.rng.random_range(0..10)
            ),
            has_cron_job: index % 3 == 1,
        });
    }

    // Humans over OIDC.
    let offices: [(i64, &str); 3] = [(60, "203.0.113"), (-300, "198.51.100"), (330, "192.0.2")];
    for index in 0..shape.humans {
        let role = match index {
            0 | 1 => HumanRole::PlatformAdmin,
            2 | 3 => HumanRole::SiteReliability,
            _ => HumanRole::Developer,
        };
        let team = index % b.cluster.teams.len();
        let (utc_offset_minutes, office) = offices[(index / 2) % offices.len()];
        let name = FIRST_NAMES[index % FIRST_NAMES.len()];
        let username = if index < FIRST_NAMES.len() {
            format!("{name}@example.com")
        } else {
            format!("{name}{}@example.com", index / FIRST_NAMES.len() + 1)
        };
        let mut groups: Vec<&str> = Vec::new();
        let team_group = b.cluster.teams[team].group.clone();
        match role {
            HumanRole::PlatformAdmin => groups.push("platform-admins"),
            HumanRole::SiteReliability => groups.push("sre"),
            HumanRole::Developer => {
                groups.push(&team_group);
                groups.push("developers");
            }
        }
        // One developer is also in the support group (a latent impersonation grant).
        if index == 5 {
            groups.push("support");
        }
        groups.push("system:authenticated");
        let office_ips: Vec<Rc<str>> = (0..3)
            .map(|_| rc(&format!("{office}.{}", b.rng.random_range(10..60))))
            .collect();
        let vpn_ips: Vec<Rc<str>> = (0..2)
            .map(|_| {
                rc(&format!(
                    "100.64.{}.{}",
                    b.rng.random_range(0..4),
                    b.rng.random_range(2..250)
                ))
            })
            .collect();
        let mut ips = office_ips.clone();
        ips.extend(vpn_ips.iter().cloned());
        let agent = KUBECTL_AGENTS[index % KUBECTL_AGENTS.len()];
        let identity = b.add_identity(
            &username,
            &groups,
            agent,
            ips,
            Part::Human { human: index },
            &[],
        );
        let namespaces: Vec<Rc<str>> = match role {
            HumanRole::PlatformAdmin => {
                let mut namespaces: Vec<Rc<str>> = b
                    .cluster
                    .system_namespaces
                    .iter()
                    .take(1)
                    .cloned()
                    .collect();
                namespaces.push(rc("argocd"));
                namespaces.push(rc("ingress-nginx"));
                namespaces.push(b.cluster.teams[team].namespaces[0].clone());
                namespaces
            }
            HumanRole::SiteReliability => vec![
                rc("monitoring"),
                b.cluster.teams[team].namespaces[0].clone(),
                b.cluster.teams[(team + 1) % 3].namespaces[0].clone(),
            ],
            HumanRole::Developer => b.cluster.teams[team].namespaces.clone(),
        };
        b.cluster.humans.push(Human {
            identity,
            role,
            team,
            utc_offset_minutes,
            namespaces,
            sessions_per_hour: match role {
                HumanRole::PlatformAdmin => 0.5,
                HumanRole::SiteReliability => 0.7,
                HumanRole::Developer => 0.4 + 0.1 * (index % 3) as f64,
            },
            office_ips,
            vpn_ips,
            on_call: role == HumanRole::SiteReliability,
            adopted_namespace: None,
        });
    }

    // Human RBAC: platform admins are cluster admins; SREs view everything and
    // edit production; developers edit their team's namespaces.
    b.bind(
        None,
        "platform-admins",
        "ClusterRole",
        "cluster-admin",
        vec![Subject::group("platform-admins")],
        false,
    );
    b.bind(
        None,
        "sre-view",
        "ClusterRole",
        "view",
        vec![Subject::group("sre")],
        false,
    );
    b.fixed_role(
        None,
        "sre-node-reader",
        vec![
            PolicyRule::resources(&[""], &["nodes"], read_verbs()),
            PolicyRule::resources(&["metrics.k8s.io"], &["nodes", "pods"], read_verbs()),
        ],
        false,
    );
    b.bind(
        None,
        "sre-node-reader",
        "ClusterRole",
        "sre-node-reader",
        vec![Subject::group("sre")],
        false,
    );
    b.fixed_role(
        None,
        "support-impersonator",
        vec![PolicyRule::resources(
            &[""],
            &["users", "groups"],
            &["impersonate"],
        )],
        false,
    );
    b.bind(
        None,
        "support-impersonator",
        "ClusterRole",
        "support-impersonator",
        vec![Subject::group("support")],
        false,
    );
    let team_bindings: Vec<(String, Vec<Rc<str>>)> = b
        .cluster
        .teams
        .iter()
        .map(|team| (team.group.clone(), team.namespaces.clone()))
        .collect();
    for (group, namespaces) in team_bindings {
        for namespace in namespaces {
            b.bind(
                Some(&namespace),
                &format!("{group}-edit"),
                "ClusterRole",
                "edit",
                vec![Subject::group(&group)],
                false,
            );
            if !namespace.ends_with("-staging") {
                b.bind(
                    Some(&namespace),
                    "sre-edit",
                    "ClusterRole",
                    "edit",
                    vec![Subject::group("sre")],
                    false,
                );
            }
        }
    }
    // A narrow Role platform admins sometimes adjust.
    let release_namespace = b.cluster.teams[0].namespaces[0].clone();
    b.fixed_role(
        Some(&release_namespace),
        "release-manager",
        vec![PolicyRule::resources(
            &["apps"],
            &["deployments"],
            &["get", "patch", "update"],
        )],
        false,
    );
    let release_group = b.cluster.teams[0].group.clone();
    b.bind(
        Some(&release_namespace),
        "release-manager",
        "Role",
        "release-manager",
        vec![Subject::group(&release_group)],
        false,
    );
    builder.cluster.known = std::mem::take(known);
    (builder.cluster, builder.rbac)
}

impl Cluster {
    pub(crate) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
        // Callers only pick from the non-empty lists built above.
        items.choose(rng).unwrap_or(&items[0])
    }

    pub(crate) fn identity_index(&self, username: &str) -> Option<usize> {
        self.identities
            .iter()
            .position(|identity| identity.username == username)
    }
}
