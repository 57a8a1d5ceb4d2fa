//! End to end: the real binary (`auditlens api-serve`) on port 0 over a data
//! folder written with DuckDB; every RPC, health, reflection, and the CLI
//! client commands against it.

mod api_support;

use api_support::{ApiServer, ROWS_PER_HOUR, cli, direct_query_i64, make_data_dir};
use auditlens::api::client::{connect, run_query};
use auditlens::api::proto;
use std::collections::HashMap;
use tonic::Code;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn query_streams_arrow_with_schema_first_and_a_summary() {
    let data = make_data_dir();
    let server = ApiServer::start(data.path(), &[], &[]);
    runtime().block_on(async {
        let mut client = connect(&server.options()).await.expect("connect");
        let mut stream = client
            .query(proto::QueryRequest {
                sql: "SELECT audit_id, verb, ts FROM events ORDER BY ts".into(),
                max_chunk_bytes: 4096,
                ..Default::default()
            })
            .await
            .expect("query")
            .into_inner();
        let mut kinds = Vec::new();
        let mut largest_batch = 0usize;
        while let Some(message) = stream.message().await.expect("message") {
            match message.part.expect("part") {
                proto::query_response::Part::Schema(schema) => {
                    kinds.push("schema");
                    let names: Vec<&str> = schema.columns.iter().map(|column| column.name.as_str()).collect();
                    assert_eq!(names, ["audit_id", "verb", "ts"]);
                }
                proto::query_response::Part::Batch(batch) => {
                    kinds.push("batch");
                    largest_batch = largest_batch.max(batch.ipc.len());
                }
                proto::query_response::Part::JsonRows(_) => panic!("arrow was asked for"),
                proto::query_response::Part::Summary(summary) => {
                    kinds.push("summary");
                    assert_eq!(summary.rows, 2 * ROWS_PER_HOUR as u64);
                    assert!(!summary.truncated);
                    assert_eq!(summary.query_hash.len(), 16);
                }
            }
        }
        assert_eq!(kinds.first(), Some(&"schema"));
        assert_eq!(kinds.last(), Some(&"summary"));
        assert!(kinds.iter().filter(|kind| **kind == "batch").count() > 2, "small chunks give many batches");
        // The chunk bound holds up to the IPC framing of one message.
        assert!(largest_batch <= 2 * 4096 + 1024, "largest batch message {largest_batch} bytes");

        // The collected stream decodes as one Arrow IPC stream, equal to DuckDB's own answer.
        let result = run_query(
            &mut client,
            proto::QueryRequest {
                sql: "SELECT namespace, count(*) AS n FROM requests WHERE resource = 'secrets' GROUP BY ALL ORDER BY 1"
                    .into(),
                ..Default::default()
            },
        )
        .await
        .expect("query");
        let total: usize = result.batches.iter().map(|batch| batch.num_rows()).sum();
        assert_eq!(total, 3);
        let expected = direct_query_i64(
            data.path(),
            "SELECT count(*) FROM requests WHERE resource = 'secrets' AND namespace = 'default'",
        );
        let counts = result.batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("count column")
            .value(0);
        assert_eq!(counts, expected);
    });
    let log = server.stop();
    assert!(
        log.contains("gRPC request") && log.contains("\"Query\""),
        "request log line missing: {log}"
    );
    assert!(log.contains("query_hash"), "{log}");
}

#[test]
fn query_json_rows_row_limit_parameters_and_errors() {
    let data = make_data_dir();
    let server = ApiServer::start(
        data.path(),
        &["--query-max-rows", "500", "--query-timeout-ms", "1500"],
        &[],
    );
    runtime().block_on(async {
        let mut client = connect(&server.options()).await.expect("connect");
        let result = run_query(
            &mut client,
            proto::QueryRequest {
                sql: "SELECT audit_id, username FROM requests WHERE username = $who ORDER BY audit_id".into(),
                parameters: HashMap::from([("who".to_string(), "mallory".to_string())]),
                format: proto::ResultFormat::JsonRows as i32,
                max_rows: 10_000,
                ..Default::default()
            },
        )
        .await
        .expect("query");
        assert_eq!(result.json_rows.len(), 500, "the server's row limit wins over the request's");
        assert!(result.summary.truncated);
        assert_eq!(result.summary.truncation, proto::Truncation::RowLimit as i32);
        assert!(result.summary.truncation_reason.contains("500"));
        for row in &result.json_rows {
            let value: serde_json::Value = serde_json::from_str(row).expect("json row");
            assert_eq!(value["username"], "mallory");
        }

        let small = run_query(
            &mut client,
            proto::QueryRequest { sql: "SELECT * FROM events".into(), max_bytes: 20_000, ..Default::default() },
        )
        .await
        .expect("query");
        assert!(small.summary.truncated);
        assert_eq!(small.summary.truncation, proto::Truncation::ByteLimit as i32);
        assert!(small.summary.bytes <= 20_000);

        let invalid = run_query(&mut client, proto::QueryRequest { sql: "SELEC 1".into(), ..Default::default() })
            .await
            .expect_err("bad sql");
        let auditlens::api::ApiError::Rpc(status) = invalid else { panic!("{invalid:?}") };
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("syntax error"), "{}", status.message());

        let missing_column = run_query(
            &mut client,
            proto::QueryRequest { sql: "SELECT no_such_column FROM events".into(), ..Default::default() },
        )
        .await
        .expect_err("binder error");
        let auditlens::api::ApiError::Rpc(status) = missing_column else { panic!("{missing_column:?}") };
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("no_such_column"));

        let slow = run_query(
            &mut client,
            proto::QueryRequest {
                sql: "SELECT sum(a.range * b.range) FROM range(200000000) a, range(1000) b".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("time limit");
        let auditlens::api::ApiError::Rpc(status) = slow else { panic!("{slow:?}") };
        assert_eq!(status.code(), Code::DeadlineExceeded);
    });
}

#[test]
fn concurrent_queries_beyond_the_limit_are_resource_exhausted() {
    let data = make_data_dir();
    let server = ApiServer::start(
        data.path(),
        &[
            "--max-concurrent-queries",
            "1",
            "--max-queued-queries",
            "0",
            "--query-timeout-ms",
            "3000",
        ],
        &[],
    );
    runtime().block_on(async {
        let options = server.options();
        let mut first = connect(&options).await.expect("connect");
        let mut slow_stream = first
            .query(proto::QueryRequest {
                sql: "SELECT sum(a.range * b.range) FROM range(200000000) a, range(1000) b".into(),
                ..Default::default()
            })
            .await
            .expect("first query admitted")
            .into_inner();
        let mut second = connect(&options).await.expect("connect");
        let refused = second
            .query(proto::QueryRequest {
                sql: "SELECT 1".into(),
                ..Default::default()
            })
            .await
            .expect_err("second query refused");
        assert_eq!(refused.code(), Code::ResourceExhausted);
        // The stream starts with the schema (known once the statement is
        // prepared, before it runs); the time limit then ends it with
        // DEADLINE_EXCEEDED before the single aggregate row or a summary.
        let mut parts = Vec::new();
        let ended = loop {
            match slow_stream.message().await {
                Ok(Some(message)) => parts.push(message.part.expect("part")),
                Ok(None) => panic!("the slow query ended without an error after {parts:?}"),
                Err(status) => break status,
            }
        };
        assert!(
            matches!(parts.as_slice(), [proto::query_response::Part::Schema(_)]),
            "only the schema precedes the time limit: {parts:?}"
        );
        assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
        // Once the slot is free, queries run again.
        let result = run_query(
            &mut second,
            proto::QueryRequest {
                sql: "SELECT 42 AS x".into(),
                ..Default::default()
            },
        )
        .await
        .expect("runs after the slot frees");
        assert_eq!(result.summary.rows, 1);
    });
}

#[test]
fn anomalies_incidents_profiles_reports_models_status_and_rbac() {
    let data = make_data_dir();
    let server = ApiServer::start(data.path(), &[], &[]);
    runtime().block_on(async {
        let mut client = connect(&server.options()).await.expect("connect");

        let all = client
            .list_anomalies(proto::ListAnomaliesRequest {
                page_size: 2,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(
            all.anomalies
                .iter()
                .map(|anomaly| anomaly.seq)
                .collect::<Vec<_>>(),
            vec![3, 2]
        );
        assert_eq!(all.next_page_token, "2");
        let next = client
            .list_anomalies(proto::ListAnomaliesRequest {
                page_size: 2,
                page_token: all.next_page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("page 2")
            .into_inner();
        assert_eq!(
            next.anomalies
                .iter()
                .map(|anomaly| anomaly.seq)
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert!(next.next_page_token.is_empty());
        assert_eq!(
            next.anomalies[0].evidence_audit_ids,
            vec!["audit-09-1", "audit-09-2"]
        );

        let severe = client
            .list_anomalies(proto::ListAnomaliesRequest {
                filter: Some(proto::AnomalyFilter {
                    min_severity: "high".into(),
                    identity: "mallory".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("filtered")
            .into_inner();
        assert_eq!(severe.anomalies.len(), 2);
        let bad_filter = client
            .list_anomalies(proto::ListAnomaliesRequest {
                filter: Some(proto::AnomalyFilter {
                    min_severity: "urgent".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("bad severity");
        assert_eq!(bad_filter.code(), Code::InvalidArgument);

        let incident = client
            .get_incident(proto::GetIncidentRequest {
                id: "incident-1".into(),
            })
            .await
            .expect("incident")
            .into_inner();
        assert_eq!(incident.anomalies.len(), 2);
        assert_eq!(incident.incident.expect("incident").identity, "mallory");
        let missing = client
            .get_incident(proto::GetIncidentRequest { id: "nope".into() })
            .await
            .expect_err("404");
        assert_eq!(missing.code(), Code::NotFound);

        let profile = client
            .get_identity_profile(proto::GetIdentityProfileRequest {
                identity: "alice".into(),
                ..Default::default()
            })
            .await
            .expect("profile")
            .into_inner();
        let expected_requests = direct_query_i64(
            data.path(),
            "SELECT count(*) FROM requests WHERE username = 'alice'",
        );
        assert_eq!(profile.requests, expected_requests);
        let expected_denied = direct_query_i64(
            data.path(),
            "SELECT count(*) FROM requests WHERE username = 'alice' AND response_code = 403",
        );
        assert_eq!(profile.denied_requests, expected_denied);
        assert_eq!(profile.identity_kind, "user");
        assert_eq!(profile.active_hours.len(), 24);
        assert_eq!(
            profile.active_hours[9] + profile.active_hours[10],
            expected_requests
        );
        assert_eq!(profile.namespaces.len(), 3);
        assert!(profile.first_seen.is_some() && profile.last_seen.is_some());
        assert!(profile.archetype.is_empty());

        let reports = client
            .list_reports(proto::ListReportsRequest {})
            .await
            .expect("reports")
            .into_inner();
        assert_eq!(reports.reports.len(), 1);
        assert_eq!(reports.reports[0].formats, vec!["json", "md"]);
        let report = client
            .get_report(proto::GetReportRequest {
                date: "2026-11-26".into(),
                format: "md".into(),
            })
            .await
            .expect("report")
            .into_inner();
        assert_eq!(
            report.content,
            std::fs::read(data.path().join("reports/2026-11-26.md")).expect("file")
        );
        let traversal = client
            .get_report(proto::GetReportRequest {
                date: "../catalog".into(),
                format: "json".into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(traversal.code(), Code::InvalidArgument);

        let models = client
            .list_models(proto::ListModelsRequest {})
            .await
            .expect("models")
            .into_inner();
        assert_eq!(models.models.len(), 1);
        assert_eq!(
            (
                models.models[0].name.as_str(),
                models.models[0].version.as_str()
            ),
            ("hourly-kmeans", "v1")
        );
        let train = client
            .train_model(proto::TrainModelRequest {
                model: "hourly-kmeans".into(),
            })
            .await
            .expect_err("not wired");
        assert_eq!(train.code(), Code::Unimplemented);

        let status = client
            .get_ingest_status(proto::GetIngestStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert!(status.catalog_ready);
        assert_eq!(status.quarantined_lines, 2);

        for code in [
            client
                .audit_rbac(proto::AuditRbacRequest::default())
                .await
                .expect_err("rbac")
                .code(),
            client
                .who_can(proto::WhoCanRequest::default())
                .await
                .expect_err("rbac")
                .code(),
            client
                .recommend_role(proto::RecommendRoleRequest::default())
                .await
                .expect_err("rbac")
                .code(),
        ] {
            assert_eq!(code, Code::Unimplemented);
        }
    });
}

#[test]
fn health_is_serving_and_reflection_lists_the_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let data = make_data_dir();
    let server = ApiServer::start(data.path(), &[], &[]);
    runtime().block_on(async {
        let channel = auditlens::api::client::channel(&server.options())
            .await
            .expect("channel");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let mut serving = false;
        for _ in 0..100 {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "auditlens.v1.AuditLens".into(),
                })
                .await
                .expect("health")
                .into_inner()
                .status();
            if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
                serving = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(serving, "health never reported SERVING");

        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = reflection
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("reflection")
            .into_inner();
        let response = responses
            .message()
            .await
            .expect("message")
            .expect("one response");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("unexpected reflection answer {response:?}")
        };
        let names: Vec<String> = list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect();
        assert!(
            names.contains(&"auditlens.v1.AuditLens".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"grpc.health.v1.Health".to_string()),
            "{names:?}"
        );
    });
}

#[test]
fn cli_commands_talk_to_the_server() {
    let data = make_data_dir();
    let server = ApiServer::start(data.path(), &[], &[]);
    let url = server.url();
    let with_server = |arguments: &[&str]| {
        let mut all: Vec<&str> = arguments.to_vec();
        all.extend(["--server", url.as_str()]);
        cli(&all, &[])
    };

    let (ok, stdout, stderr) = with_server(&[
        "query",
        "SELECT verb, count(*) AS n FROM requests GROUP BY verb ORDER BY verb",
        "--format",
        "csv",
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "verb,n");
    assert_eq!(lines.len(), 8, "{stdout}");
    let expected_gets = direct_query_i64(
        data.path(),
        "SELECT count(*) FROM requests WHERE verb = 'get'",
    );
    assert!(
        lines.contains(&format!("get,{expected_gets}").as_str()),
        "{stdout}"
    );

    let (ok, stdout, _) = with_server(&[
        "query",
        "SELECT 1 AS one, 'x' AS letter",
        "--format",
        "json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(stdout.trim()).expect("json"),
        serde_json::json!({"one": 1, "letter": "x"})
    );

    let (ok, stdout, _) = with_server(&["query", "SELECT 7 AS seven", "--format", "table"]);
    assert!(ok);
    assert!(
        stdout.contains("| seven |") && stdout.contains("| 7     |"),
        "{stdout}"
    );

    let (ok, _, stderr) = with_server(&["query", "DROP VIEW events"]);
    assert!(!ok);
    assert!(
        stderr.contains("PermissionDenied") || stderr.contains("Permission denied"),
        "{stderr}"
    );
    assert!(stderr.contains("DROP"), "{stderr}");

    let (ok, stdout, stderr) = with_server(&["anomalies", "--severity", "high"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains("mallory"));

    let (ok, stdout, stderr) = with_server(&["profile", "bob"]);
    assert!(ok, "{stderr}");
    let expected = direct_query_i64(
        data.path(),
        "SELECT count(*) FROM requests WHERE username = 'bob'",
    );
    assert!(
        stdout.contains(&format!("requests     {expected} (")),
        "{stdout}"
    );

    let (ok, stdout, stderr) = with_server(&["status"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Serving") && stdout.contains("quarantined    2 lines"),
        "{stdout}"
    );

    let (ok, stdout, _) = cli(&["investigate", "--list"], &[]);
    assert!(ok);
    for name in [
        "secrets-in-namespace",
        "identity-timeline",
        "rbac-changes",
        "denied-by-identity",
        "first-seen-ips",
        "exec-sessions",
    ] {
        assert!(stdout.contains(name), "{name} missing from {stdout}");
    }

    let (ok, stdout, stderr) = with_server(&[
        "investigate",
        "secrets-in-namespace",
        "--param",
        "namespace=payments",
        "--format",
        "csv",
    ]);
    assert!(ok, "{stderr}");
    let expected = direct_query_i64(
        data.path(),
        "SELECT count(*) FROM requests WHERE resource = 'secrets' AND namespace = 'payments'",
    );
    assert_eq!(stdout.lines().count() as i64, expected + 1, "{stdout}");

    // A hostile parameter value is data, not SQL.
    let (ok, stdout, stderr) = with_server(&[
        "investigate",
        "secrets-in-namespace",
        "--param",
        "namespace=payments' OR '1'='1",
        "--format",
        "csv",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "only the header: {stdout}");

    let (ok, _, stderr) = with_server(&["investigate", "secrets-in-namespace"]);
    assert!(!ok);
    assert!(stderr.contains("namespace"), "{stderr}");

    for name in [
        "identity-timeline --param identity=alice",
        "rbac-changes",
        "denied-by-identity",
        "first-seen-ips",
        "exec-sessions",
    ] {
        let mut arguments = vec!["investigate"];
        arguments.extend(name.split(' '));
        arguments.extend(["--format", "csv"]);
        let (ok, stdout, stderr) = with_server(&arguments);
        assert!(ok, "{name}: {stderr}");
        assert!(stdout.lines().count() > 1, "{name} found nothing: {stdout}");
    }
}

#[test]
fn shell_runs_multi_line_statements_and_dot_commands() {
    use std::io::Write;
    let data = make_data_dir();
    let server = ApiServer::start(data.path(), &[], &[]);
    let history = tempfile::tempdir().expect("temp dir");
    let script = history.path().join("script.sql");
    std::fs::write(
        &script,
        "SELECT 'from-file-1' AS marker;\nSELECT 'from-file-2' AS marker;\n",
    )
    .expect("script");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .args(["shell", "--server", &server.url()])
        .env("AUDITLENS_HISTORY", history.path().join("history"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("shell");
    let input = format!(
        ".tables\n.schema requests\nSELECT count(*)\n  AS total\nFROM events;\n.format csv\n.timing on\nSELECT 'a;b' AS text;\n.read {}\n.quit\n",
        script.display()
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("shell output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("events") && stdout.contains("requests"),
        ".tables: {stdout}"
    );
    assert!(stdout.contains("audit_id"), ".schema: {stdout}");
    assert!(
        stdout.contains(&(2 * ROWS_PER_HOUR).to_string()),
        "multi-line statement: {stdout}"
    );
    assert!(
        stdout.contains("text\na;b"),
        ".format csv and quoted ';': {stdout}"
    );
    assert!(stderr.contains("rows, server"), ".timing: {stderr}");
    assert!(
        stdout.contains("from-file-1") && stdout.contains("from-file-2"),
        ".read: {stdout}"
    );
}
