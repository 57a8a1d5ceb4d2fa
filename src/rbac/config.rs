//! The `[rbac]` and `[guard]` sections of the config file, as serde structs the
//! lead composes into the one typed config (src/config.rs).
//!
//! Design decision: every exception must expire. An exception without
//! `expires` is a config error, and an expired one stops suppressing (and is
//! reported), so a waiver can never silently become permanent.

use super::{RbacError, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `[rbac]`: risk-audit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RbacConfig {
    /// Namespaces where a grant counts like a cluster-wide one (RBAC_RISKS.md "privNS").
    pub privileged_namespaces: Vec<String>,
    /// Name prefixes of roles and bindings that cloud vendors manage (EKS, GKE,
    /// AKS, OpenShift); findings on them are marked `vendor`.
    pub vendor_prefixes: Vec<String>,
    /// `eks`, `gke`, `aks` or empty: row 23 (`aws-auth`) is Critical on EKS.
    /// When empty, EKS is assumed if the snapshot holds `eks:` roles.
    pub cloud: String,
    /// Named, expiring waivers: `[rbac.exceptions.<name>]`.
    pub exceptions: BTreeMap<String, RbacException>,
}

impl Default for RbacConfig {
    fn default() -> RbacConfig {
        RbacConfig {
            privileged_namespaces: vec!["kube-system".into()],
            vendor_prefixes: [
                "eks:",
                "eks-",
                "aws-node",
                "vpc-resource-controller",
                "gce:",
                "gke-",
                "system:gke-",
                "cloud-provider",
                "aks-",
                "azure-",
                "system:openshift:",
                "openshift-",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            cloud: String::new(),
            exceptions: BTreeMap::new(),
        }
    }
}

/// One waiver. Unset fields match anything; at least one of `check`,
/// `subject_name`, `binding`, `role` must be set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacException {
    /// A check id such as `R10`.
    #[serde(default)]
    pub check: Option<String>,
    /// `User`, `Group` or `ServiceAccount`.
    #[serde(default)]
    pub subject_kind: Option<String>,
    #[serde(default)]
    pub subject_name: Option<String>,
    #[serde(default)]
    pub subject_namespace: Option<String>,
    /// As printed in findings: `ClusterRoleBinding/name` or `RoleBinding/ns/name`.
    #[serde(default)]
    pub binding: Option<String>,
    /// As printed in findings: `ClusterRole/name` or `Role/ns/name`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// The last day the waiver applies (UTC), `YYYY-MM-DD`.
    pub expires: NaiveDate,
    /// Why it is accepted, and who accepted it.
    #[serde(default)]
    pub reason: String,
}

impl RbacConfig {
    pub fn validate(&self) -> Result<()> {
        for (name, exception) in &self.exceptions {
            if exception.check.is_none()
                && exception.subject_name.is_none()
                && exception.binding.is_none()
                && exception.role.is_none()
            {
                return Err(RbacError::Config(format!(
                    "[rbac.exceptions.{name}] matches everything: set check, subject_name, binding or role"
                )));
            }
        }
        Ok(())
    }

    pub fn is_privileged_namespace(&self, namespace: &str) -> bool {
        self.privileged_namespaces
            .iter()
            .any(|privileged| privileged == namespace)
    }
}

/// How the webhook answers a request that breaks a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GuardMode {
    /// Deny it.
    #[default]
    Enforce,
    /// Allow it, with `warnings` the client (kubectl) prints.
    DryRun,
}

/// `[guard]`: the admission webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    pub mode: GuardMode,
    /// Usernames never denied (e.g. the API server reconciling bootstrap roles).
    pub exempt_users: Vec<String>,
    /// Groups never denied.
    pub exempt_groups: Vec<String>,
    /// Service accounts never denied, as `namespace:name`.
    pub exempt_service_accounts: Vec<String>,
    /// Policy ids switched off (see `auditlens guard export`).
    pub disabled_policies: Vec<String>,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            mode: GuardMode::Enforce,
            exempt_users: vec![
                "system:apiserver".into(),
                "system:kube-controller-manager".into(),
            ],
            exempt_groups: vec!["system:masters".into()],
            exempt_service_accounts: vec!["kube-system:clusterrole-aggregation-controller".into()],
            disabled_policies: Vec::new(),
        }
    }
}

/// Reads `[rbac]` and `[guard]` from a config file; other sections belong to
/// other modules and are ignored here.
pub fn load_sections(path: &Path) -> Result<(RbacConfig, GuardConfig)> {
    let text = std::fs::read_to_string(path).map_err(|source| RbacError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_sections(&text).map_err(|error| RbacError::Config(format!("{}: {error}", path.display())))
}

/// As [`load_sections`], from text.
pub fn parse_sections(text: &str) -> std::result::Result<(RbacConfig, GuardConfig), String> {
    #[derive(Deserialize)]
    struct Sections {
        #[serde(default)]
        rbac: Option<toml::Value>,
        #[serde(default)]
        guard: Option<toml::Value>,
    }
    let sections: Sections = toml::from_str(text).map_err(|error| error.to_string())?;
    let rbac: RbacConfig = match sections.rbac {
        Some(value) => value
            .try_into()
            .map_err(|error: toml::de::Error| format!("[rbac]: {error}"))?,
        None => RbacConfig::default(),
    };
    rbac.validate().map_err(|error| error.to_string())?;
    let guard: GuardConfig = match sections.guard {
        Some(value) => value
            .try_into()
            .map_err(|error: toml::de::Error| format!("[guard]: {error}"))?,
        None => GuardConfig::default(),
    };
    Ok((rbac, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exceptions_and_rejects_catch_all_ones() {
        let text = "[server]\nx = 1\n[rbac]\nprivileged_namespaces = ['kube-system', 'infra']\n[rbac.exceptions.prometheus]\ncheck = 'R10'\nsubject_kind = 'ServiceAccount'\nsubject_name = 'prometheus'\nsubject_namespace = 'monitoring'\nexpires = '2027-01-31'\nreason = 'reads secrets for scrape auth; ticket SEC-12'\n[guard]\nmode = 'dry-run'\n";
        let (rbac, guard) = parse_sections(text).expect("valid");
        assert_eq!(rbac.privileged_namespaces.len(), 2);
        assert_eq!(
            rbac.exceptions["prometheus"].expires,
            NaiveDate::from_ymd_opt(2027, 1, 31).expect("date")
        );
        assert_eq!(guard.mode, GuardMode::DryRun);
        let catch_all = "[rbac.exceptions.all]\nexpires = '2027-01-31'\n";
        assert!(
            parse_sections(catch_all)
                .expect_err("catch-all")
                .contains("matches everything")
        );
        let no_expiry = "[rbac.exceptions.forever]\ncheck = 'R1'\n";
        assert!(
            parse_sections(no_expiry)
                .expect_err("needs expiry")
                .contains("expires")
        );
    }
}
