//! Security of the real server: bearer tokens on and off, TLS and mutual TLS
//! with certificates made by rcgen, the non-loopback rule, and tokens kept
//! out of logs.

mod api_support;

use api_support::{ApiServer, cli, make_data_dir};
use auditlens::api::client::{ClientOptions, connect, run_query};
use auditlens::api::proto;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use tonic::Code;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn select_one(options: &ClientOptions) -> Result<u64, auditlens::api::ApiError> {
    let mut client = connect(options).await?;
    let result = run_query(
        &mut client,
        proto::QueryRequest {
            sql: "SELECT 1".into(),
            ..Default::default()
        },
    )
    .await?;
    Ok(result.summary.rows)
}

fn code_of(result: Result<u64, auditlens::api::ApiError>) -> Code {
    match result {
        Err(auditlens::api::ApiError::Rpc(status)) => status.code(),
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

const TOKEN: &str = "correct-horse-battery-staple-7f3a";

#[test]
fn bearer_token_is_required_when_set_and_never_logged() {
    let data = make_data_dir();
    let secrets = tempfile::tempdir().expect("temp dir");
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let wrong_file = secrets.path().join("wrong");
    std::fs::write(&wrong_file, "not-the-token").expect("token file");
    let server = ApiServer::start(
        data.path(),
        &["--api-token-file", token_file.to_str().expect("utf-8")],
        &[],
    );

    runtime().block_on(async {
        let anonymous = server.options();
        assert_eq!(code_of(select_one(&anonymous).await), Code::Unauthenticated);
        let wrong = ClientOptions {
            token_file: Some(wrong_file.clone()),
            ..server.options()
        };
        assert_eq!(code_of(select_one(&wrong).await), Code::Unauthenticated);
        let right = ClientOptions {
            token_file: Some(token_file.clone()),
            ..server.options()
        };
        assert_eq!(select_one(&right).await.expect("authenticated"), 1);

        // Health stays open for probes; reflection needs the token.
        let channel = auditlens::api::client::channel(&anonymous)
            .await
            .expect("channel");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health is open");
        let mut reflection =
            tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
                channel,
            );
        let request = tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                ),
            ),
        };
        let refused = reflection
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await;
        assert_eq!(
            refused.expect_err("reflection needs the token").code(),
            Code::Unauthenticated
        );
    });

    // The CLI reads the token from the environment too.
    let (ok, stdout, stderr) = cli(
        &[
            "query",
            "SELECT 'hello' AS greeting",
            "--server",
            &server.url(),
            "--format",
            "csv",
        ],
        &[("AUDITLENS_API_TOKEN", TOKEN)],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("hello"));
    let (ok, _, stderr) = cli(&["query", "SELECT 1", "--server", &server.url()], &[]);
    assert!(!ok);
    assert!(stderr.contains("Unauthenticated"), "{stderr}");

    let log = server.stop();
    assert!(
        log.contains("\"bearer\""),
        "requests are logged with their auth: {log}"
    );
    assert!(!log.contains(TOKEN), "the token leaked into the log");
    assert!(
        !log.contains("not-the-token"),
        "a presented token leaked into the log"
    );
}

#[test]
fn without_a_token_requests_are_open_on_loopback() {
    let data = make_data_dir();
    let server = ApiServer::start(data.path(), &[], &[]);
    runtime().block_on(async {
        assert_eq!(select_one(&server.options()).await.expect("open"), 1);
    });
}

#[test]
fn a_non_loopback_address_needs_a_token_or_an_explicit_override() {
    let data = make_data_dir();
    let (ok, _, stderr) = cli(
        &[
            "--data-dir",
            data.path().to_str().expect("utf-8"),
            "api-serve",
            "--grpc-listen",
            "0.0.0.0:0",
        ],
        &[],
    );
    assert!(!ok, "must refuse to start");
    assert!(
        stderr.contains("refusing to listen on non-loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-insecure-remote"), "{stderr}");
}

struct Pki {
    folder: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files.
    fn new() -> Pki {
        let folder = tempfile::tempdir().expect("temp dir");
        let write =
            |name: &str, text: String| std::fs::write(folder.path().join(name), text).expect("pem");

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
        write("ca.pem", ca.pem());

        let mut server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("params");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("key");
        let server_cert = server_params
            .signed_by(&server_key, &*ca)
            .expect("server cert");
        write("server.pem", server_cert.pem());
        write("server.key", server_key.serialize_pem());

        let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().expect("key");
        let client_cert = client_params
            .signed_by(&client_key, &*ca)
            .expect("client cert");
        write("client.pem", client_cert.pem());
        write("client.key", client_key.serialize_pem());

        // A second, unrelated CA and client, which the server must not trust.
        let mut rogue_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        rogue_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let rogue = CertifiedIssuer::self_signed(rogue_params, KeyPair::generate().expect("key"))
            .expect("rogue");
        let mut rogue_client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        rogue_client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let rogue_key = KeyPair::generate().expect("key");
        write(
            "rogue-client.pem",
            rogue_client_params
                .signed_by(&rogue_key, &*rogue)
                .expect("cert")
                .pem(),
        );
        write("rogue-client.key", rogue_key.serialize_pem());
        Pki { folder }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn tls_client(server: &ApiServer, pki: &Pki, client: Option<(&str, &str)>) -> ClientOptions {
    ClientOptions {
        server: format!("https://{}", server.address),
        ca_cert: Some(pki.path("ca.pem")),
        client_cert: client.map(|(cert, _)| pki.path(cert)),
        client_key: client.map(|(_, key)| pki.path(key)),
        tls_domain: Some("localhost".into()),
        ..ClientOptions::default()
    }
}

fn start_tls(data: &Path, pki: &Pki, mutual: bool) -> ApiServer {
    let mut arguments = vec![
        "--tls-cert".to_string(),
        pki.arg("server.pem"),
        "--tls-key".to_string(),
        pki.arg("server.key"),
    ];
    if mutual {
        arguments.extend(["--tls-client-ca".to_string(), pki.arg("ca.pem")]);
    }
    let borrowed: Vec<&str> = arguments.iter().map(String::as_str).collect();
    ApiServer::start(data, &borrowed, &[])
}

#[test]
fn tls_serves_https_and_refuses_plaintext() {
    let data = make_data_dir();
    let pki = Pki::new();
    let server = start_tls(data.path(), &pki, false);
    runtime().block_on(async {
        assert_eq!(
            select_one(&tls_client(&server, &pki, None))
                .await
                .expect("over TLS"),
            1
        );
        let plaintext = select_one(&server.options()).await;
        assert!(
            plaintext.is_err(),
            "plaintext must not work against a TLS server"
        );
    });
    let (ok, stdout, stderr) = cli(
        &[
            "query",
            "SELECT 'secure' AS channel",
            "--server",
            &format!("https://{}", server.address),
            "--ca-cert",
            &pki.arg("ca.pem"),
            "--tls-domain",
            "localhost",
            "--format",
            "csv",
        ],
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("secure"));
}

#[test]
fn mutual_tls_requires_a_client_certificate_from_the_trusted_ca() {
    let data = make_data_dir();
    let pki = Pki::new();
    let server = start_tls(data.path(), &pki, true);
    runtime().block_on(async {
        assert_eq!(
            select_one(&tls_client(
                &server,
                &pki,
                Some(("client.pem", "client.key"))
            ))
            .await
            .expect("mutual TLS"),
            1
        );
        assert!(
            select_one(&tls_client(&server, &pki, None)).await.is_err(),
            "no client certificate must fail"
        );
        assert!(
            select_one(&tls_client(
                &server,
                &pki,
                Some(("rogue-client.pem", "rogue-client.key"))
            ))
            .await
            .is_err(),
            "a client certificate from another CA must fail"
        );
    });
    let log = server.stop();
    assert!(
        log.contains("mtls"),
        "mutual-TLS callers are logged as such: {log}"
    );
}
