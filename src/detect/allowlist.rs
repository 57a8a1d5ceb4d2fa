//! Identity allow lists: glob patterns over usernames.
//!
//! A fresh cluster must be quiet, and most of what a rule would flag on a
//! quiet cluster is the control plane doing its job (the namespace controller
//! deleting events, the garbage collector, kubelets fetching their pods'
//! secrets). Rules consult [`IdentityPatterns::builtin_controllers`] (what
//! every Kubernetes distribution runs) everywhere, and
//! [`IdentityPatterns::platform_automation`] (GitOps and Helm controllers,
//! cert-manager) only for the pods their workloads create: a name-based pass
//! for an add-on's RBAC or webhook writes would be a pass for whoever steals
//! its token, so those are silenced by habit instead. Both lists are plain data
//! so an operator can replace them.

use serde::{Deserialize, Serialize};

/// A list of username patterns where `*` matches any run of characters
/// (including none). Matching is exact otherwise: `system:node:*` matches every
/// kubelet but not `system:nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityPatterns {
    patterns: Vec<String>,
}

impl IdentityPatterns {
    pub fn new<I, S>(patterns: I) -> IdentityPatterns
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        IdentityPatterns {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// The control plane and the controllers of kube-controller-manager,
    /// kube-scheduler, kube-proxy and the kubelets.
    pub fn builtin_controllers() -> IdentityPatterns {
        IdentityPatterns::new([
            "system:apiserver",
            "system:kube-controller-manager",
            "system:kube-scheduler",
            "system:kube-proxy",
            "system:node:*",
            "system:serviceaccount:kube-system:*-controller",
            "system:serviceaccount:kube-system:generic-garbage-collector",
            "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
            "system:serviceaccount:kube-system:persistent-volume-binder",
            "system:serviceaccount:kube-system:pv-protection-controller",
            "system:serviceaccount:kube-system:root-ca-cert-publisher",
            "system:serviceaccount:kube-system:service-account-controller",
            "system:serviceaccount:kube-system:ttl-after-finished-controller",
            "system:serviceaccount:kube-system:legacy-service-account-token-cleaner",
            "system:serviceaccount:kube-system:resourcequota-controller",
            "system:serviceaccount:kube-system:kube-proxy",
        ])
    }

    /// Add-ons whose normal job is writing RBAC, CRDs, webhook configurations
    /// or kube-system configuration. The names are the upstream defaults of
    /// Argo CD, Flux, Helm's tiller-less controllers and cert-manager.
    pub fn platform_automation() -> IdentityPatterns {
        IdentityPatterns::new([
            "system:serviceaccount:argocd:argocd-application-controller",
            "system:serviceaccount:argocd:argocd-server",
            "system:serviceaccount:flux-system:kustomize-controller",
            "system:serviceaccount:flux-system:helm-controller",
            "system:serviceaccount:cert-manager:cert-manager-cainjector",
            "system:serviceaccount:cert-manager:cert-manager-webhook",
            "system:serviceaccount:kube-system:tiller",
        ])
    }

    pub fn matches(&self, username: &str) -> bool {
        self.patterns
            .iter()
            .any(|pattern| glob_matches(pattern, username))
    }

    pub fn extend(&mut self, other: &IdentityPatterns) {
        self.patterns.extend(other.patterns.iter().cloned());
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let remaining: Vec<&str> = parts.collect();
    if remaining.is_empty() {
        return rest.is_empty();
    }
    let Some((last, middle)) = remaining.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(position) => rest = &rest[position + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shells() {
        assert!(glob_matches("system:node:*", "system:node:worker-1"));
        assert!(!glob_matches("system:node:*", "system:nodes"));
        assert!(glob_matches(
            "system:serviceaccount:kube-system:*-controller",
            "system:serviceaccount:kube-system:namespace-controller"
        ));
        assert!(!glob_matches(
            "system:serviceaccount:kube-system:*-controller",
            "system:serviceaccount:kube-system:coredns"
        ));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "abc"));
        assert!(glob_matches("a*b*c", "a-x-b-y-c"));
        assert!(!glob_matches("a*b*c", "a-x-c-y-b"));
        assert!(!glob_matches("ab*ba", "aba"));
    }

    #[test]
    fn builtin_controllers_cover_the_quiet_cluster() {
        let controllers = IdentityPatterns::builtin_controllers();
        assert!(controllers.matches("system:serviceaccount:kube-system:generic-garbage-collector"));
        assert!(controllers.matches("system:kube-controller-manager"));
        assert!(controllers.matches("system:node:ip-10-0-0-1"));
        assert!(!controllers.matches("system:serviceaccount:default:default"));
        assert!(!controllers.matches("alice@example.com"));
    }
}
