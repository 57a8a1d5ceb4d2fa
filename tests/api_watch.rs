//! The server started in-process through `auditlens::api::serve`, as the
//! daemon starts it: health flips from NOT_SERVING to SERVING when the daemon
//! says the catalog is ready, WatchAnomalies delivers anomalies the daemon
//! stores and announces, and a client resumes from the last `seq` it saw.

mod api_support;

use api_support::{insert_anomaly, make_data_dir};
use auditlens::api::client::{ClientOptions, connect};
use auditlens::api::proto;
use auditlens::api::{ApiConfig, ApiState, bind};
use auditlens::detect::{Anomaly, AnomalyKind, Severity};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;

fn announced(id: &str) -> Anomaly {
    Anomaly {
        id: id.into(),
        detector: "rules.test".into(),
        kind: AnomalyKind::Rule,
        identity: "mallory".into(),
        cluster: "default".into(),
        window_start: chrono::Utc::now(),
        window_end: chrono::Utc::now(),
        severity: Severity::High,
        score: 1.0,
        title: "test".into(),
        reasons: vec![],
        evidence_audit_ids: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_flips_and_watch_delivers_and_resumes() {
    let data = make_data_dir();
    let catalog = auditlens::api::catalog::open_catalog(&data.path().join("catalog.duckdb"))
        .expect("catalog");
    let catalog = Arc::new(Mutex::new(catalog));
    let (mut state, ready) = ApiState::new(data.path());
    state.catalog = Some(catalog.clone());
    let announcer = state.anomalies.clone();
    // A long poll interval: delivery within the test's wait must come from the wake-up.
    let config = ApiConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        watch_poll_interval: Duration::from_secs(3600),
        ..ApiConfig::default()
    };
    let bound = bind(config).await.expect("bind");
    let address = bound.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(state, async {
        let _ = stopped.await;
    }));
    let options = ClientOptions {
        server: format!("http://{address}"),
        ..ClientOptions::default()
    };

    let channel = auditlens::api::client::channel(&options)
        .await
        .expect("channel");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = |mut health: tonic_health::pb::health_client::HealthClient<
        tonic::transport::Channel,
    >| async move {
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "auditlens.v1.AuditLens".into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status()
    };
    assert_eq!(check(health.clone()).await, ServingStatus::NotServing);
    ready.send(true).expect("ready");
    let mut status = ServingStatus::NotServing;
    for _ in 0..100 {
        status = check(health.clone()).await;
        if status == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, ServingStatus::Serving);
    let _ = &mut health;

    let mut client = connect(&options).await.expect("connect");
    // after_seq 0: only anomalies stored from now on (the three in the catalog are not replayed).
    let mut watch = client
        .watch_anomalies(proto::WatchAnomaliesRequest {
            filter: None,
            after_seq: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let seq = {
        let connection = catalog.lock().expect("lock");
        insert_anomaly(
            &connection,
            "live-1",
            "mallory",
            "critical",
            "rules.live",
            None,
        )
    };
    announcer
        .send(announced("live-1"))
        .expect("a watcher is subscribed");
    let received = tokio::time::timeout(Duration::from_secs(20), watch.message())
        .await
        .expect("delivered without waiting for the poll")
        .expect("stream ok")
        .expect("one anomaly")
        .anomaly
        .expect("anomaly");
    assert_eq!(received.id, "live-1");
    assert_eq!(received.seq, seq);
    drop(watch);

    // Resume: two more stored while nobody watched, filtered by identity.
    {
        let connection = catalog.lock().expect("lock");
        insert_anomaly(&connection, "missed-1", "bob", "low", "rules.live", None);
        insert_anomaly(
            &connection,
            "missed-2",
            "mallory",
            "high",
            "rules.live",
            None,
        );
    }
    let mut resumed = client
        .watch_anomalies(proto::WatchAnomaliesRequest {
            filter: Some(proto::AnomalyFilter {
                identity: "mallory".into(),
                ..Default::default()
            }),
            after_seq: seq,
        })
        .await
        .expect("watch")
        .into_inner();
    let next = tokio::time::timeout(Duration::from_secs(20), resumed.message())
        .await
        .expect("backlog delivered")
        .expect("stream ok")
        .expect("one anomaly")
        .anomaly
        .expect("anomaly");
    assert_eq!(
        next.id, "missed-2",
        "bob's anomaly is filtered out, mallory's missed one is replayed"
    );

    let _ = stop.send(());
    server
        .await
        .expect("server task")
        .expect("server stopped cleanly");
}
