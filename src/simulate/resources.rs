//! The API resources the simulated cluster serves, and their request paths.

/// One API resource as discovery lists it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    pub name: &'static str,
    /// The API group; `""` is the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    pub kind: &'static str,
}

macro_rules! resources {
    ($($constant:ident = $name:literal, $group:literal, $version:literal, $namespaced:literal, $kind:literal;)*) => {
        $(#[allow(dead_code)] // A table: not every resource is used by every behavior.
        pub(crate) const $constant: &ResourceType = &ResourceType {
            name: $name, group: $group, version: $version, namespaced: $namespaced, kind: $kind,
        };)*
    };
}

resources! {
    PODS = "pods", "", "v1", true, "Pod";
    SECRETS = "secrets", "", "v1", true, "Secret";
    CONFIGMAPS = "configmaps", "", "v1", true, "ConfigMap";
    SERVICES = "services", "", "v1", true, "Service";
    ENDPOINTS = "endpoints", "", "v1", true, "Endpoints";
    EVENTS = "events", "", "v1", true, "Event";
    NAMESPACES = "namespaces", "", "v1", false, "Namespace";
    NODES = "nodes", "", "v1", false, "Node";
    SERVICEACCOUNTS = "serviceaccounts", "", "v1", true, "ServiceAccount";
    PERSISTENTVOLUMECLAIMS = "persistentvolumeclaims", "", "v1", true, "PersistentVolumeClaim";
    PERSISTENTVOLUMES = "persistentvolumes", "", "v1", false, "PersistentVolume";
    RESOURCEQUOTAS = "resourcequotas", "", "v1", true, "ResourceQuota";
    LEASES = "leases", "coordination.k8s.io", "v1", true, "Lease";
    DEPLOYMENTS = "deployments", "apps", "v1", true, "Deployment";
    REPLICASETS = "replicasets", "apps", "v1", true, "ReplicaSet";
    DAEMONSETS = "daemonsets", "apps", "v1", true, "DaemonSet";
    STATEFULSETS = "statefulsets", "apps", "v1", true, "StatefulSet";
    JOBS = "jobs", "batch", "v1", true, "Job";
    CRONJOBS = "cronjobs", "batch", "v1", true, "CronJob";
    ENDPOINTSLICES = "endpointslices", "discovery.k8s.io", "v1", true, "EndpointSlice";
    INGRESSES = "ingresses", "networking.k8s.io", "v1", true, "Ingress";
    INGRESSCLASSES = "ingressclasses", "networking.k8s.io", "v1", false, "IngressClass";
    NETWORKPOLICIES = "networkpolicies", "networking.k8s.io", "v1", true, "NetworkPolicy";
    HORIZONTALPODAUTOSCALERS = "horizontalpodautoscalers", "autoscaling", "v2", true, "HorizontalPodAutoscaler";
    PODDISRUPTIONBUDGETS = "poddisruptionbudgets", "policy", "v1", true, "PodDisruptionBudget";
    ROLES = "roles", "rbac.authorization.k8s.io", "v1", true, "Role";
    ROLEBINDINGS = "rolebindings", "rbac.authorization.k8s.io", "v1", true, "RoleBinding";
    CLUSTERROLES = "clusterroles", "rbac.authorization.k8s.io", "v1", false, "ClusterRole";
    CLUSTERROLEBINDINGS = "clusterrolebindings", "rbac.authorization.k8s.io", "v1", false, "ClusterRoleBinding";
    VALIDATINGWEBHOOKCONFIGURATIONS = "validatingwebhookconfigurations", "admissionregistration.k8s.io", "v1", false, "ValidatingWebhookConfiguration";
    MUTATINGWEBHOOKCONFIGURATIONS = "mutatingwebhookconfigurations", "admissionregistration.k8s.io", "v1", false, "MutatingWebhookConfiguration";
    CERTIFICATESIGNINGREQUESTS = "certificatesigningrequests", "certificates.k8s.io", "v1", false, "CertificateSigningRequest";
    CUSTOMRESOURCEDEFINITIONS = "customresourcedefinitions", "apiextensions.k8s.io", "v1", false, "CustomResourceDefinition";
    APISERVICES = "apiservices", "apiregistration.k8s.io", "v1", false, "APIService";
    STORAGECLASSES = "storageclasses", "storage.k8s.io", "v1", false, "StorageClass";
    CSIDRIVERS = "csidrivers", "storage.k8s.io", "v1", false, "CSIDriver";
    CSINODES = "csinodes", "storage.k8s.io", "v1", false, "CSINode";
    VOLUMEATTACHMENTS = "volumeattachments", "storage.k8s.io", "v1", false, "VolumeAttachment";
    PRIORITYCLASSES = "priorityclasses", "scheduling.k8s.io", "v1", false, "PriorityClass";
    RUNTIMECLASSES = "runtimeclasses", "node.k8s.io", "v1", false, "RuntimeClass";
    FLOWSCHEMAS = "flowschemas", "flowcontrol.apiserver.k8s.io", "v1", false, "FlowSchema";
    PRIORITYLEVELCONFIGURATIONS = "prioritylevelconfigurations", "flowcontrol.apiserver.k8s.io", "v1", false, "PriorityLevelConfiguration";
    TOKENREVIEWS = "tokenreviews", "authentication.k8s.io", "v1", false, "TokenReview";
    SUBJECTACCESSREVIEWS = "subjectaccessreviews", "authorization.k8s.io", "v1", false, "SubjectAccessReview";
    SELFSUBJECTACCESSREVIEWS = "selfsubjectaccessreviews", "authorization.k8s.io", "v1", false, "SelfSubjectAccessReview";
    SELFSUBJECTRULESREVIEWS = "selfsubjectrulesreviews", "authorization.k8s.io", "v1", false, "SelfSubjectRulesReview";
    PODMETRICS = "pods", "metrics.k8s.io", "v1beta1", true, "PodMetrics";
    NODEMETRICS = "nodes", "metrics.k8s.io", "v1beta1", false, "NodeMetrics";
    CERTIFICATES = "certificates", "cert-manager.io", "v1", true, "Certificate";
    CERTIFICATEREQUESTS = "certificaterequests", "cert-manager.io", "v1", true, "CertificateRequest";
    ISSUERS = "clusterissuers", "cert-manager.io", "v1", false, "ClusterIssuer";
    APPLICATIONS = "applications", "argoproj.io", "v1alpha1", true, "Application";
    SERVICEMONITORS = "servicemonitors", "monitoring.coreos.com", "v1", true, "ServiceMonitor";
    PROMETHEUSRULES = "prometheusrules", "monitoring.coreos.com", "v1", true, "PrometheusRule";
    PROMETHEUSES = "prometheuses", "monitoring.coreos.com", "v1", true, "Prometheus";
}

/// The request path of a resource request, without the query string.
pub(crate) fn path(
    resource: &ResourceType,
    namespace: Option<&str>,
    name: Option<&str>,
    subresource: Option<&str>,
) -> String {
    let mut path = String::with_capacity(96);
    if resource.group.is_empty() {
        path.push_str("/api/");
        path.push_str(resource.version);
    } else {
        path.push_str("/apis/");
        path.push_str(resource.group);
        path.push('/');
        path.push_str(resource.version);
    }
    if let Some(namespace) = namespace.filter(|_| resource.namespaced) {
        path.push_str("/namespaces/");
        path.push_str(namespace);
    }
    path.push('/');
    path.push_str(resource.name);
    if let Some(name) = name {
        path.push('/');
        path.push_str(name);
        if let Some(subresource) = subresource {
            path.push('/');
            path.push_str(subresource);
        }
    }
    path
}

/// `?allowWatchBookmarks=true&resourceVersion=N&timeout=7m43s&timeoutSeconds=463&watch=true`,
/// as client-go reflectors send it. `selector` is an already-encoded
/// `fieldSelector=...` or `labelSelector=...` pair, if any.
pub(crate) fn watch_query(
    resource_version: u64,
    timeout_seconds: u32,
    selector: Option<&str>,
) -> String {
    let mut query = String::with_capacity(120);
    query.push_str("?allowWatchBookmarks=true");
    if let Some(selector) = selector {
        query.push('&');
        query.push_str(selector);
    }
    query.push_str("&resourceVersion=");
    query.push_str(&resource_version.to_string());
    query.push_str("&timeout=");
    query.push_str(&(timeout_seconds / 60).to_string());
    query.push('m');
    query.push_str(&(timeout_seconds % 60).to_string());
    query.push_str("s&timeoutSeconds=");
    query.push_str(&timeout_seconds.to_string());
    query.push_str("&watch=true");
    query
}

/// Percent-encodes a query value the way Go's `url.QueryEscape` does for the
/// characters that appear in selectors.
pub(crate) fn query_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 8);
    for character in value.chars() {
        match character {
            '=' => escaped.push_str("%3D"),
            ',' => escaped.push_str("%2C"),
            '/' => escaped.push_str("%2F"),
            ':' => escaped.push_str("%3A"),
            ' ' => escaped.push('+'),
            '!' => escaped.push_str("%21"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_paths_like_the_api_server() {
        assert_eq!(
            path(PODS, Some("shop"), Some("web-1"), Some("exec")),
            "/api/v1/namespaces/shop/pods/web-1/exec"
        );
        assert_eq!(path(PODS, None, None, None), "/api/v1/pods");
        assert_eq!(
            path(CLUSTERROLEBINDINGS, Some("ignored"), Some("x"), None),
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x"
        );
        assert_eq!(
            watch_query(42, 463, Some("fieldSelector=spec.nodeName%3Dn1")),
            "?allowWatchBookmarks=true&fieldSelector=spec.nodeName%3Dn1&resourceVersion=42&timeout=7m43s&timeoutSeconds=463&watch=true"
        );
    }
}
