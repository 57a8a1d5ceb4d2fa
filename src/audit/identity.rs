//! Who made a request: the classification every later stage agrees on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of identity behind a request, from its username alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// A human or an external system authenticated as a plain user.
    User,
    /// `system:serviceaccount:<namespace>:<name>`.
    ServiceAccount,
    /// `system:node:<node name>`: a kubelet.
    Node,
    /// `system:anonymous`: a request that carried no credentials.
    Anonymous,
    /// Any other `system:*` user: the control plane and its controllers.
    ControlPlane,
}

impl IdentityKind {
    /// The stable lowercase name stored in the `identity_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::User => "user",
            IdentityKind::ServiceAccount => "service_account",
            IdentityKind::Node => "node",
            IdentityKind::Anonymous => "anonymous",
            IdentityKind::ControlPlane => "control_plane",
        }
    }

    /// Parses the stored column value back; `None` for anything unknown.
    pub fn from_column(text: &str) -> Option<IdentityKind> {
        Some(match text {
            "user" => IdentityKind::User,
            "service_account" => IdentityKind::ServiceAccount,
            "node" => IdentityKind::Node,
            "anonymous" => IdentityKind::Anonymous,
            "control_plane" => IdentityKind::ControlPlane,
            _ => return None,
        })
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A classified username.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity<'a> {
    pub username: &'a str,
    pub kind: IdentityKind,
    /// For service accounts: their namespace.
    pub service_account_namespace: Option<&'a str>,
    /// For service accounts: their name.
    pub service_account_name: Option<&'a str>,
}

impl<'a> Identity<'a> {
    /// Classifies a username the way the API server's authenticators name users.
    pub fn classify(username: &'a str) -> Identity<'a> {
        let mut identity = Identity {
            username,
            kind: IdentityKind::User,
            service_account_namespace: None,
            service_account_name: None,
        };
        if let Some(rest) = username.strip_prefix("system:serviceaccount:") {
            // A malformed service-account name (no second colon) is still
            // reported as a service account, with the whole rest as its name, so
            // it never masquerades as a human user.
            identity.kind = IdentityKind::ServiceAccount;
            match rest.split_once(':') {
                Some((namespace, name)) => {
                    identity.service_account_namespace = Some(namespace);
                    identity.service_account_name = Some(name);
                }
                None => identity.service_account_name = Some(rest),
            }
        } else if username.starts_with("system:node:") {
            identity.kind = IdentityKind::Node;
        } else if username == "system:anonymous" {
            identity.kind = IdentityKind::Anonymous;
        } else if username.starts_with("system:") {
            identity.kind = IdentityKind::ControlPlane;
        }
        identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_kind() {
        let service_account =
            Identity::classify("system:serviceaccount:kube-system:replicaset-controller");
        assert_eq!(service_account.kind, IdentityKind::ServiceAccount);
        assert_eq!(
            service_account.service_account_namespace,
            Some("kube-system")
        );
        assert_eq!(
            service_account.service_account_name,
            Some("replicaset-controller")
        );
        assert_eq!(
            Identity::classify("system:node:worker-1").kind,
            IdentityKind::Node
        );
        assert_eq!(
            Identity::classify("system:anonymous").kind,
            IdentityKind::Anonymous
        );
        assert_eq!(
            Identity::classify("system:kube-scheduler").kind,
            IdentityKind::ControlPlane
        );
        assert_eq!(
            Identity::classify("system:apiserver").kind,
            IdentityKind::ControlPlane
        );
        assert_eq!(
            Identity::classify("alice@example.com").kind,
            IdentityKind::User
        );
        assert_eq!(Identity::classify("").kind, IdentityKind::User);
        // "system" without the colon is a user name like any other.
        assert_eq!(Identity::classify("systemd-user").kind, IdentityKind::User);
    }

    #[test]
    fn malformed_service_account_is_still_a_service_account() {
        let identity = Identity::classify("system:serviceaccount:lonely");
        assert_eq!(identity.kind, IdentityKind::ServiceAccount);
        assert_eq!(identity.service_account_namespace, None);
        assert_eq!(identity.service_account_name, Some("lonely"));
    }

    #[test]
    fn column_names_round_trip() {
        for kind in [
            IdentityKind::User,
            IdentityKind::ServiceAccount,
            IdentityKind::Node,
            IdentityKind::Anonymous,
            IdentityKind::ControlPlane,
        ] {
            assert_eq!(IdentityKind::from_column(kind.as_str()), Some(kind));
        }
    }
}
