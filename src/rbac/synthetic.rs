//! Generated snapshots of a given size, for benchmarks and scale tests
//! (`auditlens rbac synth`). Deterministic for a seed; the mix of rules
//! imitates a large multi-tenant cluster: mostly namespaced read/write roles,
//! some risky ones, many bindings per role.

use super::snapshot::Snapshot;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rand::{Rng, SeedableRng};

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|text| text.to_string()).collect()),
        resources: Some(resources.iter().map(|text| text.to_string()).collect()),
        verbs: verbs.iter().map(|text| text.to_string()).collect(),
        resource_names: None,
        non_resource_urls: None,
    }
}

fn rule_palette() -> Vec<PolicyRule> {
    vec![
        rule(
            &[""],
            &["pods", "services", "configmaps"],
            &["get", "list", "watch"],
        ),
        rule(
            &["apps"],
            &["deployments", "statefulsets"],
            &["get", "list", "watch", "create", "update", "patch"],
        ),
        rule(&[""], &["secrets"], &["get", "list"]),
        rule(&[""], &["pods/exec", "pods/attach"], &["create"]),
        rule(&["batch"], &["jobs", "cronjobs"], &["*"]),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            &["create", "patch"],
        ),
        rule(&[""], &["events"], &["delete"]),
        rule(&["example.com"], &["widgets"], &["get", "list"]),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &["rbac.authorization.k8s.io"],
            &["rolebindings"],
            &["create", "update"],
        ),
    ]
}

/// `roles` roles (a tenth of them ClusterRoles) and `bindings` bindings (a
/// tenth of them ClusterRoleBindings) over `roles / 10` namespaces.
pub fn generate_snapshot(roles: usize, bindings: usize, seed: u64) -> Snapshot {
    let mut random = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let palette = rule_palette();
    let namespaces = (roles / 10).max(1);
    let cluster_roles = (roles / 10).max(1);
    let mut snapshot = Snapshot::default();
    let pick_rules = |random: &mut rand_chacha::ChaCha8Rng| -> Vec<PolicyRule> {
        let count = random.random_range(1..=4);
        (0..count)
            .map(|_| palette[random.random_range(0..palette.len())].clone())
            .collect()
    };
    for index in 0..cluster_roles {
        snapshot.upsert_cluster_role(ClusterRole {
            metadata: ObjectMeta {
                name: Some(format!("cluster-role-{index}")),
                ..ObjectMeta::default()
            },
            rules: Some(pick_rules(&mut random)),
            aggregation_rule: None,
        });
    }
    for index in 0..roles.saturating_sub(cluster_roles) {
        snapshot.upsert_role(Role {
            metadata: ObjectMeta {
                name: Some(format!("role-{index}")),
                namespace: Some(format!("tenant-{}", index % namespaces)),
                ..ObjectMeta::default()
            },
            rules: Some(pick_rules(&mut random)),
        });
    }
    let namespaced_roles = roles.saturating_sub(cluster_roles).max(1);
    let subject = |random: &mut rand_chacha::ChaCha8Rng, namespace: &str| -> Subject {
        match random.random_range(0..3) {
            0 => Subject {
                kind: "User".into(),
                name: format!("user-{}", random.random_range(0..5000)),
                api_group: Some("rbac.authorization.k8s.io".into()),
                namespace: None,
            },
            1 => Subject {
                kind: "Group".into(),
                name: format!("team-{}", random.random_range(0..500)),
                api_group: Some("rbac.authorization.k8s.io".into()),
                namespace: None,
            },
            _ => Subject {
                kind: "ServiceAccount".into(),
                name: format!("app-{}", random.random_range(0..50)),
                api_group: None,
                namespace: Some(namespace.to_string()),
            },
        }
    };
    let cluster_bindings = bindings / 10;
    for index in 0..cluster_bindings {
        let role = random.random_range(0..cluster_roles);
        let subjects = (0..random.random_range(1..=3))
            .map(|_| subject(&mut random, "default"))
            .collect();
        snapshot.upsert_cluster_role_binding(ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("cluster-binding-{index}")),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: format!("cluster-role-{role}"),
            },
            subjects: Some(subjects),
        });
    }
    for index in 0..bindings.saturating_sub(cluster_bindings) {
        let role_index = random.random_range(0..namespaced_roles);
        let namespace = format!("tenant-{}", role_index % namespaces);
        let role_ref = if random.random_range(0..4) == 0 {
            RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: format!("cluster-role-{}", random.random_range(0..cluster_roles)),
            }
        } else {
            RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: format!("role-{role_index}"),
            }
        };
        let subjects = (0..random.random_range(1..=3))
            .map(|_| subject(&mut random, &namespace))
            .collect();
        snapshot.upsert_role_binding(RoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("binding-{index}")),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            role_ref,
            subjects: Some(subjects),
        });
    }
    snapshot
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_as_asked() {
        let snapshot = super::generate_snapshot(100, 400, 7);
        assert_eq!(snapshot.roles.len() + snapshot.cluster_roles.len(), 100);
        assert_eq!(
            snapshot.role_bindings.len() + snapshot.cluster_role_bindings.len(),
            400
        );
    }
}
