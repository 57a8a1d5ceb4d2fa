//! The guard over real HTTPS (certificates from rcgen, rustls on both ends):
//! AdmissionReview JSON in the shape of the Kubernetes API reference, a
//! malformed review (HTTP 400), the metrics endpoint, the `auditlens guard`
//! binary, and `guard export` parsed as typed admissionregistration/v1 objects.

use auditlens::rbac::config::{GuardConfig, GuardMode, RbacConfig};
use auditlens::rbac::guard::{Guard, OBJECT_POLICIES, export_policies_yaml};
use auditlens::rbac::guard_server::{serve, tls_config};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

const REVIEW_WILDCARD: &str = r#"{
  "apiVersion": "admission.k8s.io/v1",
  "kind": "AdmissionReview",
  "request": {
    "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
    "kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRole"},
    "resource": {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "clusterroles"},
    "requestKind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRole"},
    "requestResource": {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "clusterroles"},
    "name": "everything",
    "operation": "CREATE",
    "userInfo": {"username": "admin", "uid": "014fbff9a07c", "groups": ["system:authenticated", "my-admin-group"], "extra": {"some-key": ["some-value1", "some-value2"]}},
    "object": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "everything"},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    "oldObject": null,
    "dryRun": false,
    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
  }
}"#;

const REVIEW_BENIGN: &str = r#"{
  "apiVersion": "admission.k8s.io/v1",
  "kind": "AdmissionReview",
  "request": {
    "uid": "b1e3c1a4-0000-4000-8000-000000000001",
    "kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "Role"},
    "resource": {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "roles"},
    "namespace": "app",
    "name": "pod-reader",
    "operation": "CREATE",
    "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
    "object": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pod-reader", "namespace": "app"},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
    "dryRun": false
  }
}"#;

fn certificate() -> (
    rustls_pki_types::CertificateDer<'static>,
    rustls_pki_types::PrivateKeyDer<'static>,
    String,
    String,
) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let der = certified.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    (
        der,
        key,
        certified.cert.pem(),
        certified.signing_key.serialize_pem(),
    )
}

async fn post(
    address: SocketAddr,
    certificate: &rustls_pki_types::CertificateDer<'static>,
    path: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let server_name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector
        .connect(server_name, tcp)
        .await
        .expect("TLS handshake");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("http");
    tokio::spawn(connection);
    let method = if body.is_empty() { "GET" } else { "POST" };
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_reviews_over_tls() {
    let (der, key, _, _) = certificate();
    let tls = tls_config(vec![der.clone()], key).expect("tls");
    let guard = Arc::new(Guard::new(
        GuardConfig::default(),
        RbacConfig::default(),
        None,
        "test".into(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(guard.clone(), listener, tls, async {
        let _ = stopped.await;
    }));

    let (status, body) = post(
        address,
        &der,
        "/validate",
        REVIEW_WILDCARD.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let review: serde_json::Value = serde_json::from_slice(&body).expect("review");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(
        review["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(review["response"]["allowed"], false);
    assert_eq!(review["response"]["status"]["code"], 403);

    let (status, body) = post(
        address,
        &der,
        "/validate",
        REVIEW_BENIGN.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let review: serde_json::Value = serde_json::from_slice(&body).expect("review");
    assert_eq!(review["response"]["allowed"], true);

    let (status, body) = post(address, &der, "/validate", b"{\"apiVersion\": 7}".to_vec()).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("malformed AdmissionReview"));

    let (status, body) = post(address, &der, "/metrics", Vec::new()).await;
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&body);
    assert!(
        metrics.contains("auditlens_guard_denied_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("auditlens_guard_malformed_total 1"),
        "{metrics}"
    );

    let _ = stop.send(());
    server.await.expect("server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_and_dry_run_warns() {
    let (der, _, cert_pem, key_pem) = certificate();
    let folder = tempfile::tempdir().expect("tempdir");
    let cert = folder.path().join("tls.crt");
    let key = folder.path().join("tls.key");
    std::fs::write(&cert, cert_pem).expect("cert");
    std::fs::write(&key, key_pem).expect("key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args([
            "guard",
            "--listen",
            "127.0.0.1:0",
            "--mode",
            "dry-run",
            "--tls-cert",
        ])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--data-dir")
        .arg(folder.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn guard");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = lines.next().expect("a line").expect("utf8");
    let address: SocketAddr = line
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let (status, body) = post(
        address,
        &der,
        "/validate",
        REVIEW_WILDCARD.as_bytes().to_vec(),
    )
    .await;
    child.kill().expect("stop guard");
    let _ = child.wait();
    assert_eq!(status, 200);
    let review: serde_json::Value = serde_json::from_slice(&body).expect("review");
    assert_eq!(review["response"]["allowed"], true, "dry-run allows");
    assert!(
        review["response"]["warnings"][0]
            .as_str()
            .expect("warning")
            .contains("'*'")
    );
}

#[test]
fn usage_error_without_certificates() {
    let folder = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args(["guard", "--data-dir"])
        .arg(folder.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-cert"));
}

#[test]
fn export_parses_as_typed_validating_admission_policies() {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    let output = Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args(["guard", "export"])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf8");
    assert_eq!(
        text,
        export_policies_yaml(&GuardConfig::default(), &RbacConfig::default())
    );
    let mut policies = Vec::new();
    let mut bindings = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(document).expect("yaml");
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_value(&value).expect("json");
        match json["kind"].as_str() {
            Some("ValidatingAdmissionPolicy") => policies.push(
                serde_json::from_value::<ValidatingAdmissionPolicy>(json).expect("typed policy"),
            ),
            Some("ValidatingAdmissionPolicyBinding") => bindings.push(
                serde_json::from_value::<ValidatingAdmissionPolicyBinding>(json)
                    .expect("typed binding"),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(policies.len(), OBJECT_POLICIES.len());
    for policy in OBJECT_POLICIES {
        let exported = policies
            .iter()
            .find(|exported| {
                exported.metadata.name.as_deref() == Some(&format!("auditlens-guard-{}", policy.id))
            })
            .unwrap_or_else(|| panic!("no ValidatingAdmissionPolicy for {}", policy.id));
        let spec = exported.spec.as_ref().expect("spec");
        let validations = spec.validations.as_ref().expect("validations");
        assert_eq!(validations.len(), 1);
        assert_eq!(
            validations[0].message.as_deref(),
            Some(policy.message),
            "same message as the webhook"
        );
        assert!(
            spec.match_conditions
                .as_ref()
                .is_some_and(|conditions| !conditions.is_empty()),
            "exemptions exported"
        );
        let binding = bindings
            .iter()
            .find(|binding| {
                binding
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.policy_name.as_deref())
                    == exported.metadata.name.as_deref()
            })
            .expect("a binding per policy");
        assert_eq!(
            binding
                .spec
                .as_ref()
                .and_then(|spec| spec.validation_actions.clone()),
            Some(vec!["Deny".to_string()])
        );
    }
    let dry_run = export_policies_yaml(
        &GuardConfig {
            mode: GuardMode::DryRun,
            ..GuardConfig::default()
        },
        &RbacConfig::default(),
    );
    assert!(
        dry_run.contains("- Warn") && dry_run.contains("- Audit") && !dry_run.contains("- Deny")
    );
}
