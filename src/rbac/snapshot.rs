//! The RBAC snapshot: every Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding of a cluster (plus the few non-RBAC objects some checks
//! need: service accounts, pods and pod-owning workloads, namespaces and
//! resource quotas), as typed k8s-openapi objects.
//!
//! A snapshot comes from `kubectl get roles,clusterroles,rolebindings,clusterrolebindings -A -o json|yaml`
//! dumps (one file or a folder; `List` or single objects; multi-document YAML),
//! is kept current by applying RBAC write events from the audit stream, and is
//! versioned in the catalog table `rbac_snapshots` ([`super::versions`]), so
//! "what could X do on date D" is answered by loading the version in force at
//! D. Objects are keyed by (namespace, name); a later object with the same key
//! replaces an earlier one, like the API server would. This file never touches
//! DuckDB: the fuzz crate compiles it on its own.

use super::{RbacError, Result};
use crate::audit::AuditEvent;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

/// All objects of one cluster at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub roles: BTreeMap<ObjectKey, Role>,
    pub cluster_roles: BTreeMap<ObjectKey, ClusterRole>,
    pub role_bindings: BTreeMap<ObjectKey, RoleBinding>,
    pub cluster_role_bindings: BTreeMap<ObjectKey, ClusterRoleBinding>,
    pub service_accounts: BTreeMap<ObjectKey, ServiceAccount>,
    pub pods: BTreeMap<ObjectKey, Pod>,
    pub daemon_sets: BTreeMap<ObjectKey, DaemonSet>,
    pub deployments: BTreeMap<ObjectKey, Deployment>,
    pub stateful_sets: BTreeMap<ObjectKey, StatefulSet>,
    pub namespaces: BTreeMap<ObjectKey, Namespace>,
    pub resource_quotas: BTreeMap<ObjectKey, ResourceQuota>,
    /// Objects of kinds the snapshot does not keep, by kind (counted, not lost silently).
    pub skipped_kinds: BTreeMap<String, usize>,
}

/// What applying one audit event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The object was created or replaced.
    Upserted {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// The object (or, for deletecollection, these objects) were removed.
    Deleted {
        kind: &'static str,
        keys: Vec<ObjectKey>,
    },
    /// The event does not change RBAC state, with why.
    Ignored(String),
}

fn key_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectKey {
    (
        metadata.namespace.clone().unwrap_or_default(),
        metadata.name.clone().unwrap_or_default(),
    )
}

fn object_name(value: &Value) -> String {
    value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

impl Snapshot {
    /// Loads a file or every `.json`/`.yaml`/`.yml` file under a folder (sorted, recursive).
    pub fn load(path: &Path) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let metadata = std::fs::metadata(path).map_err(|source| RbacError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if metadata.is_dir() {
            let mut files = Vec::new();
            collect_files(path, &mut files)?;
            files.sort();
            if files.is_empty() {
                return Err(RbacError::BadFile {
                    path: path.to_path_buf(),
                    message: "no .json, .yaml or .yml files in this folder".into(),
                });
            }
            for file in files {
                snapshot.load_file(&file)?;
            }
        } else {
            snapshot.load_file(path)?;
        }
        Ok(snapshot)
    }

    /// Adds every object of one file.
    pub fn load_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|source| RbacError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_text(&text, path)
    }

    /// Adds every object of a JSON or YAML text; `origin` names it in errors.
    pub fn load_text(&mut self, text: &str, origin: &Path) -> Result<()> {
        if self.load_json_list(text, origin)? {
            return Ok(());
        }
        let documents = parse_documents(text, origin)?;
        let mut index = 0usize;
        for document in documents {
            for (object, inferred_kind) in flatten_lists(document) {
                self.insert_value(object, inferred_kind.as_deref(), origin, index)?;
                index += 1;
            }
        }
        Ok(())
    }

    /// Fast path for the common `kubectl get -o json` case, a JSON `List`: the
    /// items are borrowed slices of the text, parsed one at a time, so memory
    /// peaks at the text plus the typed objects instead of a whole JSON tree.
    /// Returns false (nothing loaded) when the text is not a JSON list.
    fn load_json_list(&mut self, text: &str, origin: &Path) -> Result<bool> {
        #[derive(serde::Deserialize)]
        struct ListHead<'a> {
            #[serde(default)]
            kind: Option<String>,
            #[serde(borrow, default)]
            items: Option<Vec<&'a serde_json::value::RawValue>>,
        }
        if !text.trim_start().starts_with('{') {
            return Ok(false);
        }
        let Ok(head) = serde_json::from_str::<ListHead<'_>>(text) else {
            return Ok(false);
        };
        let (Some(kind), Some(items)) = (head.kind.as_deref(), head.items) else {
            return Ok(false);
        };
        let Some(item_kind) = kind.strip_suffix("List") else {
            return Ok(false);
        };
        let item_kind = (!item_kind.is_empty()).then_some(item_kind);
        for (index, item) in items.iter().enumerate() {
            let value: Value =
                serde_json::from_str(item.get()).map_err(|error| RbacError::BadObject {
                    path: origin.to_path_buf(),
                    index,
                    kind: "?".into(),
                    name: String::new(),
                    message: format!("not valid JSON: {error}"),
                })?;
            self.insert_value(value, item_kind, origin, index)?;
        }
        Ok(true)
    }

    fn insert_value(
        &mut self,
        mut object: Value,
        inferred_kind: Option<&str>,
        origin: &Path,
        index: usize,
    ) -> Result<()> {
        let kind = match object.get("kind").and_then(Value::as_str) {
            Some(kind) => kind.to_string(),
            None => match inferred_kind {
                Some(kind) => {
                    if let Some(map) = object.as_object_mut() {
                        map.insert("kind".into(), Value::String(kind.to_string()));
                    }
                    kind.to_string()
                }
                None => {
                    return Err(RbacError::BadObject {
                        path: origin.to_path_buf(),
                        index,
                        kind: "?".into(),
                        name: object_name(&object),
                        message: "object has no kind".into(),
                    });
                }
            },
        };
        let name = object_name(&object);
        let bad = |message: String| RbacError::BadObject {
            path: origin.to_path_buf(),
            index,
            kind: kind.clone(),
            name: name.clone(),
            message,
        };
        fn typed<T: DeserializeOwned>(
            object: Value,
            bad: impl Fn(String) -> RbacError,
        ) -> Result<T> {
            serde_json::from_value(object).map_err(|error| bad(error.to_string()))
        }
        // A null or empty name counts as missing: k8s-openapi would read it as
        // no name, key the object ("", ""), and the stored snapshot (which
        // omits the name) would then fail to load from the catalog.
        let name_missing = match object.pointer("/metadata/name") {
            None | Some(Value::Null) => true,
            Some(Value::String(name)) => name.is_empty(),
            // Any other type is reported by the typed parse below.
            Some(_) => false,
        };
        if name_missing && is_kept_kind(&kind) {
            return Err(bad("metadata.name is missing or empty".into()));
        }
        match kind.as_str() {
            "Role" => {
                let role: Role = typed(object, bad)?;
                check_rules(role.rules.as_deref()).map_err(bad)?;
                self.upsert_role(role);
            }
            "ClusterRole" => {
                let role: ClusterRole = typed(object, bad)?;
                check_rules(role.rules.as_deref()).map_err(bad)?;
                self.upsert_cluster_role(role);
            }
            "RoleBinding" => {
                let binding: RoleBinding = typed(object, bad)?;
                check_role_ref(&binding.role_ref).map_err(bad)?;
                self.upsert_role_binding(binding);
            }
            "ClusterRoleBinding" => {
                let binding: ClusterRoleBinding = typed(object, bad)?;
                check_role_ref(&binding.role_ref).map_err(bad)?;
                self.upsert_cluster_role_binding(binding);
            }
            "ServiceAccount" => {
                let account: ServiceAccount = typed(object, bad)?;
                self.service_accounts
                    .insert(key_of(&account.metadata), account);
            }
            "Pod" => {
                let pod: Pod = typed(object, bad)?;
                self.pods.insert(key_of(&pod.metadata), pod);
            }
            "DaemonSet" => {
                let daemon_set: DaemonSet = typed(object, bad)?;
                self.daemon_sets
                    .insert(key_of(&daemon_set.metadata), daemon_set);
            }
            "Deployment" => {
                let deployment: Deployment = typed(object, bad)?;
                self.deployments
                    .insert(key_of(&deployment.metadata), deployment);
            }
            "StatefulSet" => {
                let stateful_set: StatefulSet = typed(object, bad)?;
                self.stateful_sets
                    .insert(key_of(&stateful_set.metadata), stateful_set);
            }
            "Namespace" => {
                let namespace: Namespace = typed(object, bad)?;
                self.namespaces
                    .insert(key_of(&namespace.metadata), namespace);
            }
            "ResourceQuota" => {
                let quota: ResourceQuota = typed(object, bad)?;
                self.resource_quotas.insert(key_of(&quota.metadata), quota);
            }
            other => *self.skipped_kinds.entry(other.to_string()).or_default() += 1,
        }
        Ok(())
    }

    pub fn upsert_role(&mut self, role: Role) {
        self.roles.insert(key_of(&role.metadata), role);
    }
    pub fn upsert_cluster_role(&mut self, role: ClusterRole) {
        self.cluster_roles.insert(
            (
                String::new(),
                role.metadata.name.clone().unwrap_or_default(),
            ),
            role,
        );
    }
    pub fn upsert_role_binding(&mut self, binding: RoleBinding) {
        self.role_bindings
            .insert(key_of(&binding.metadata), binding);
    }
    pub fn upsert_cluster_role_binding(&mut self, binding: ClusterRoleBinding) {
        self.cluster_role_bindings.insert(
            (
                String::new(),
                binding.metadata.name.clone().unwrap_or_default(),
            ),
            binding,
        );
    }

    /// Number of RBAC objects (roles, cluster roles and both kinds of binding).
    pub fn rbac_object_count(&self) -> usize {
        self.roles.len()
            + self.cluster_roles.len()
            + self.role_bindings.len()
            + self.cluster_role_bindings.len()
    }

    /// Whether the dump included namespaces or quotas (so "no quota" means something).
    pub fn has_quota_information(&self) -> bool {
        !self.namespaces.is_empty() || !self.resource_quotas.is_empty()
    }

    /// All objects as one `v1 List` (each item with its apiVersion and kind),
    /// the format stored in the catalog and readable by [`Snapshot::load`].
    pub fn to_list_json(&self) -> Result<String> {
        fn push<T: serde::Serialize>(
            items: &mut Vec<Value>,
            objects: &BTreeMap<ObjectKey, T>,
        ) -> Result<()> {
            for object in objects.values() {
                items.push(serde_json::to_value(object).map_err(|error| {
                    RbacError::Invalid(format!("serializing the snapshot: {error}"))
                })?);
            }
            Ok(())
        }
        let mut items = Vec::with_capacity(self.rbac_object_count());
        push(&mut items, &self.cluster_roles)?;
        push(&mut items, &self.roles)?;
        push(&mut items, &self.cluster_role_bindings)?;
        push(&mut items, &self.role_bindings)?;
        push(&mut items, &self.service_accounts)?;
        push(&mut items, &self.pods)?;
        push(&mut items, &self.daemon_sets)?;
        push(&mut items, &self.deployments)?;
        push(&mut items, &self.stateful_sets)?;
        push(&mut items, &self.namespaces)?;
        push(&mut items, &self.resource_quotas)?;
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        serde_json::to_string(&list)
            .map_err(|error| RbacError::Invalid(format!("serializing the snapshot: {error}")))
    }

    /// Applies one audit event: a create/update/patch/delete/deletecollection of
    /// an RBAC object that succeeded. Needs `RequestResponse` level for writes
    /// (the object body); for patch only the responseObject is used, because the
    /// requestObject is the patch, not the object.
    pub fn apply_event(&mut self, event: &AuditEvent) -> Result<ApplyOutcome> {
        let ignored = |why: &str| Ok(ApplyOutcome::Ignored(why.to_string()));
        if event.stage != "ResponseComplete" {
            return ignored("not the ResponseComplete stage");
        }
        if event.api_group() != "rbac.authorization.k8s.io" {
            return ignored("not an RBAC object");
        }
        let Some(resource) = event.resource() else {
            return ignored("no objectRef.resource");
        };
        let kind: &'static str = match resource {
            "roles" => "Role",
            "clusterroles" => "ClusterRole",
            "rolebindings" => "RoleBinding",
            "clusterrolebindings" => "ClusterRoleBinding",
            _ => return ignored("not an RBAC kind"),
        };
        if event.subresource().is_some() {
            return ignored("subresource request");
        }
        if !matches!(event.response_code(), Some(code) if (200..300).contains(&code)) {
            return ignored("the request did not succeed");
        }
        if event.request_uri.contains("dryRun=") {
            return ignored("dry-run request");
        }
        let bad = |message: String| RbacError::BadEvent {
            audit_id: event.audit_id.clone(),
            message,
        };
        let parse_body = |raw: &serde_json::value::RawValue| -> Result<Value> {
            serde_json::from_str(raw.get())
                .map_err(|error| bad(format!("body is not JSON: {error}")))
        };
        match event.verb.as_str() {
            "create" | "update" | "patch" => {
                let body = match (
                    event.verb.as_str(),
                    &event.response_object,
                    &event.request_object,
                ) {
                    (_, Some(response), _) => parse_body(response.as_ref())?,
                    ("patch", None, _) => {
                        return ignored(
                            "patch without responseObject (needs RequestResponse level)",
                        );
                    }
                    (_, None, Some(request)) => parse_body(request.as_ref())?,
                    (_, None, None) => {
                        return ignored("write without a body (needs RequestResponse level)");
                    }
                };
                let name = object_name(&body);
                if name.is_empty() {
                    // Keyed ("", ""), it would make the stored snapshot unloadable.
                    return ignored("write body without metadata.name");
                }
                let namespace = event.namespace().unwrap_or("").to_string();
                let mut body = body;
                if let Some(map) = body.as_object_mut() {
                    map.entry("kind")
                        .or_insert_with(|| Value::String(kind.to_string()));
                }
                let typed_error =
                    |error: serde_json::Error| bad(format!("{kind} {name:?}: {error}"));
                match kind {
                    "Role" => {
                        let mut role: Role = serde_json::from_value(body).map_err(typed_error)?;
                        if role.metadata.namespace.is_none() {
                            role.metadata.namespace = Some(namespace.clone());
                        }
                        self.upsert_role(role);
                    }
                    "ClusterRole" => {
                        self.upsert_cluster_role(serde_json::from_value(body).map_err(typed_error)?)
                    }
                    "RoleBinding" => {
                        let mut binding: RoleBinding =
                            serde_json::from_value(body).map_err(typed_error)?;
                        if binding.metadata.namespace.is_none() {
                            binding.metadata.namespace = Some(namespace.clone());
                        }
                        self.upsert_role_binding(binding);
                    }
                    _ => self.upsert_cluster_role_binding(
                        serde_json::from_value(body).map_err(typed_error)?,
                    ),
                }
                Ok(ApplyOutcome::Upserted {
                    kind,
                    namespace,
                    name,
                })
            }
            "delete" => {
                let Some(name) = event.object_name() else {
                    return ignored("delete without a name");
                };
                let namespace = if matches!(kind, "Role" | "RoleBinding") {
                    event.namespace().unwrap_or("").to_string()
                } else {
                    String::new()
                };
                let key = (namespace, name.to_string());
                self.remove(kind, &key);
                Ok(ApplyOutcome::Deleted {
                    kind,
                    keys: vec![key],
                })
            }
            "deletecollection" => {
                // The response of a deletecollection is the list of deleted
                // objects; without it we cannot know what the selector matched.
                let Some(response) = &event.response_object else {
                    return ignored(
                        "deletecollection without responseObject: deleted objects unknown",
                    );
                };
                let list = parse_body(response.as_ref())?;
                let mut keys = Vec::new();
                for item in list
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = object_name(item);
                    let namespace = if matches!(kind, "Role" | "RoleBinding") {
                        item.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or_else(|| event.namespace().unwrap_or(""))
                            .to_string()
                    } else {
                        String::new()
                    };
                    let key = (namespace, name);
                    self.remove(kind, &key);
                    keys.push(key);
                }
                Ok(ApplyOutcome::Deleted { kind, keys })
            }
            _ => ignored("read-only verb"),
        }
    }

    fn remove(&mut self, kind: &str, key: &ObjectKey) {
        match kind {
            "Role" => {
                self.roles.remove(key);
            }
            "ClusterRole" => {
                self.cluster_roles.remove(key);
            }
            "RoleBinding" => {
                self.role_bindings.remove(key);
            }
            _ => {
                self.cluster_role_bindings.remove(key);
            }
        }
    }
}

/// k8s-openapi fills missing required fields with defaults; the API server
/// would have rejected such objects, so a dump holding one is reported.
fn check_role_ref(
    role_ref: &k8s_openapi::api::rbac::v1::RoleRef,
) -> std::result::Result<(), String> {
    if role_ref.name.is_empty() {
        return Err("roleRef is missing or has no name".into());
    }
    if !matches!(role_ref.kind.as_str(), "Role" | "ClusterRole") {
        return Err(format!(
            "roleRef.kind must be Role or ClusterRole, not {:?}",
            role_ref.kind
        ));
    }
    Ok(())
}

fn check_rules(
    rules: Option<&[k8s_openapi::api::rbac::v1::PolicyRule]>,
) -> std::result::Result<(), String> {
    for (index, rule) in rules.unwrap_or(&[]).iter().enumerate() {
        if rule.verbs.is_empty() {
            return Err(format!("rules[{index}].verbs is missing or empty"));
        }
    }
    Ok(())
}

fn is_kept_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Role"
            | "ClusterRole"
            | "RoleBinding"
            | "ClusterRoleBinding"
            | "ServiceAccount"
            | "Pod"
            | "DaemonSet"
            | "Deployment"
            | "StatefulSet"
            | "Namespace"
            | "ResourceQuota"
    )
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| RbacError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| RbacError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else if path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| matches!(extension, "json" | "yaml" | "yml"))
        {
            files.push(path);
        }
    }
    Ok(())
}

/// JSON (one value) or YAML (one or more documents), as JSON values.
fn parse_documents(text: &str, origin: &Path) -> Result<Vec<Value>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(text).map_err(|error| RbacError::BadFile {
            path: origin.to_path_buf(),
            message: format!("not valid JSON: {error}"),
        })?;
        return Ok(match value {
            Value::Array(items) => items,
            other => vec![other],
        });
    }
    let mut documents = Vec::new();
    for (number, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value: serde_yaml::Value =
            serde::Deserialize::deserialize(document).map_err(|error| RbacError::BadFile {
                path: origin.to_path_buf(),
                message: format!("YAML document {}: {error}", number + 1),
            })?;
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_value(value).map_err(|error| RbacError::BadFile {
            path: origin.to_path_buf(),
            message: format!(
                "YAML document {}: cannot be represented as JSON: {error}",
                number + 1
            ),
        })?;
        documents.push(json);
    }
    Ok(documents)
}

/// Expands `List` / `RoleList` / ... into their items; for typed lists an item
/// without a kind gets the list's item kind.
fn flatten_lists(document: Value) -> Vec<(Value, Option<String>)> {
    let list_kind = document
        .get("kind")
        .and_then(Value::as_str)
        .filter(|kind| kind.ends_with("List"))
        .map(str::to_string);
    match (list_kind, document) {
        (Some(kind), Value::Object(mut map)) => {
            let item_kind = kind
                .strip_suffix("List")
                .filter(|kind| !kind.is_empty())
                .map(str::to_string);
            match map.remove("items") {
                Some(Value::Array(items)) => items
                    .into_iter()
                    .map(|item| (item, item_kind.clone()))
                    .collect(),
                _ => Vec::new(),
            }
        }
        (_, document) => vec![(document, None)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST_JSON: &str = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"reader","namespace":"app"},
       "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]},
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"reader","namespace":"app"},
       "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"},
       "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}]},
      {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"app"}}]}"#;

    #[test]
    fn loads_lists_and_counts_skipped_kinds() {
        let mut snapshot = Snapshot::default();
        snapshot
            .load_text(LIST_JSON, Path::new("list.json"))
            .expect("valid list");
        assert_eq!(snapshot.roles.len(), 1);
        assert_eq!(snapshot.role_bindings.len(), 1);
        assert_eq!(snapshot.skipped_kinds.get("ConfigMap"), Some(&1));
    }

    #[test]
    fn loads_multi_document_yaml_and_typed_lists() {
        let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: a\nrules:\n- apiGroups: ['']\n  resources: [nodes]\n  verbs: [get]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBindingList\nitems:\n- metadata:\n    name: b\n  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: a}\n  subjects: [{kind: Group, name: ops}]\n";
        let mut snapshot = Snapshot::default();
        snapshot
            .load_text(yaml, Path::new("x.yaml"))
            .expect("valid yaml");
        assert_eq!(snapshot.cluster_roles.len(), 1);
        assert_eq!(snapshot.cluster_role_bindings.len(), 1);
    }

    #[test]
    fn bad_object_error_names_file_and_object() {
        let text = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"broken","namespace":"x"},"subjects":[]}"#;
        let mut snapshot = Snapshot::default();
        let error = snapshot
            .load_text(text, Path::new("dump/bad.json"))
            .expect_err("roleRef missing");
        let message = error.to_string();
        assert!(message.contains("dump/bad.json"), "{message}");
        assert!(message.contains("RoleBinding \"broken\""), "{message}");
        assert!(message.contains("roleRef"), "{message}");
    }

    /// Found by the `rbac_loader` fuzz target's round-trip check (the stored
    /// form of a loaded snapshot must load again): an object whose name was
    /// null loaded as a nameless object, was stored without a name, and the
    /// stored version then failed to load ("metadata.name is missing").
    #[test]
    fn null_or_empty_names_are_refused_so_stored_snapshots_load() {
        for metadata in [r#"{"name":null}"#, r#"{"name":""}"#, r#"{"namespace":"a"}"#] {
            let text = format!(
                r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{metadata},"rules":[]}}"#
            );
            let error = Snapshot::default()
                .load_text(&text, Path::new("dump.json"))
                .expect_err("a role without a name");
            assert!(
                error.to_string().contains("metadata.name is missing"),
                "{error}"
            );
        }
        let yaml =
            "kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata:\n  name: ~\n";
        assert!(
            Snapshot::default()
                .load_text(yaml, Path::new("dump.yaml"))
                .is_err()
        );
        // What loads, stores and loads back.
        let mut snapshot = Snapshot::default();
        snapshot
            .load_text(LIST_JSON, Path::new("list.json"))
            .expect("valid list");
        let stored = snapshot.to_list_json().expect("serializes");
        let mut reloaded = Snapshot::default();
        reloaded
            .load_text(&stored, Path::new("catalog"))
            .expect("the stored form loads");
        assert_eq!(reloaded.to_list_json().expect("serializes"), stored);
    }

    #[test]
    fn applies_rbac_write_events() {
        let mut snapshot = Snapshot::default();
        let create = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterroles","verb":"create","user":{"username":"admin"},"objectRef":{"resource":"clusterroles","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1","name":"pwn"},"responseStatus":{"code":201},"requestObject":{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"pwn"},"rules":[{"verbs":["*"],"apiGroups":["*"],"resources":["*"]}]},"requestReceivedTimestamp":"2026-11-27T09:00:00.000000Z","stageTimestamp":"2026-11-27T09:00:00.001000Z"}"#;
        let event = AuditEvent::decode(create.as_bytes()).expect("event");
        let outcome = snapshot.apply_event(&event).expect("applies");
        assert!(matches!(
            outcome,
            ApplyOutcome::Upserted {
                kind: "ClusterRole",
                ..
            }
        ));
        assert!(
            snapshot
                .cluster_roles
                .contains_key(&(String::new(), "pwn".to_string()))
        );
        let patch_without_response = create.replace("\"verb\":\"create\"", "\"verb\":\"patch\"");
        let event = AuditEvent::decode(patch_without_response.as_bytes()).expect("event");
        assert!(matches!(
            snapshot.apply_event(&event).expect("ok"),
            ApplyOutcome::Ignored(_)
        ));
        let delete = create
            .replace("\"verb\":\"create\"", "\"verb\":\"delete\"")
            .replace("\"code\":201", "\"code\":200");
        let event = AuditEvent::decode(delete.as_bytes()).expect("event");
        snapshot.apply_event(&event).expect("applies");
        assert!(snapshot.cluster_roles.is_empty());
        // A body without a name (generateName, Request level) is not keyed ("", "").
        let nameless = create.replace(
            r#""metadata":{"name":"pwn"}"#,
            r#""metadata":{"generateName":"pwn-"}"#,
        );
        let event = AuditEvent::decode(nameless.as_bytes()).expect("event");
        assert!(matches!(
            snapshot.apply_event(&event).expect("ok"),
            ApplyOutcome::Ignored(_)
        ));
        assert!(snapshot.cluster_roles.is_empty());
    }
}
