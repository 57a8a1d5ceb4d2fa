//! Per-event cost of live detection: `LiveDetector::observe` (rules +
//! novelty) and `RuleSet::evaluate` alone, on a mixed stream shaped like a
//! busy cluster (kubelet lease renewals and watches, controller writes, app
//! service accounts reading config and secrets, people with kubectl, and a
//! sprinkle of RBAC writes and pod creations whose objects the rules parse).
//! Run: `cargo bench --bench detect`. Figures go in docs/DETECTION.md.

use auditlens::audit::AuditEvent;
use auditlens::detect::rules::{RuleOptions, RuleSet};
use auditlens::detect::{DetectorOptions, LiveDetector};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;

fn stream(count: usize) -> Vec<AuditEvent> {
    let start = 1_800_057_600_000_000_i64;
    let mut events = Vec::with_capacity(count * 2);
    for index in 0..count {
        let ts = start + index as i64 * 20_000; // 50 events/s
        let time = auditlens::audit::format_rfc3339_micros(ts);
        let (user, verb, resource, namespace, ip, agent, object) = match index % 20 {
            0..=5 => (
                format!("system:node:worker-{}", index % 12),
                "update",
                "leases",
                "kube-node-lease",
                format!("10.0.1.{}", index % 12),
                "kubelet/v1.30.1",
                None,
            ),
            6..=8 => (
                "system:kube-controller-manager".to_string(),
                "get",
                "endpoints",
                "default",
                "10.0.0.2".to_string(),
                "kube-controller-manager/v1.30.1",
                None,
            ),
            9..=12 => (
                format!("system:serviceaccount:app-{}:web", index % 15),
                "get",
                "configmaps",
                "app",
                format!("10.244.{}.7", index % 9),
                "web/1.0 client-go",
                None,
            ),
            13 => (
                format!("system:serviceaccount:app-{}:web", index % 15),
                "get",
                "secrets",
                "app",
                format!("10.244.{}.7", index % 9),
                "web/1.0 client-go",
                None,
            ),
            14..=17 => (
                format!("user{}@example.com", index % 30),
                "list",
                "pods",
                "dev",
                format!("203.0.113.{}", index % 30),
                "kubectl/v1.30.1 (linux/amd64)",
                None,
            ),
            18 => (
                "alice@example.com".to_string(),
                "create",
                "pods",
                "dev",
                "203.0.113.5".to_string(),
                "kubectl/v1.30.1",
                Some(
                    json!({"kind": "Pod", "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": index % 400 == 18}}]}}),
                ),
            ),
            _ => (
                "platform@example.com".to_string(),
                "update",
                "roles",
                "dev",
                "203.0.113.9".to_string(),
                "kubectl/v1.30.1",
                Some(
                    json!({"kind": "Role", "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
                ),
            ),
        };
        let group = if resource == "roles" {
            "rbac.authorization.k8s.io"
        } else if resource == "leases" {
            "coordination.k8s.io"
        } else {
            ""
        };
        for stage in ["RequestReceived", "ResponseComplete"] {
            let mut value = json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": format!("bench-{index}"),
                "stage": stage, "requestURI": format!("/api/v1/namespaces/{namespace}/{resource}"), "verb": verb,
                "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": [ip], "userAgent": agent,
                "objectRef": {"resource": resource, "namespace": namespace, "apiGroup": group, "apiVersion": "v1", "name": format!("obj-{}", index % 50)},
                "responseStatus": {"code": 200}, "requestReceivedTimestamp": time, "stageTimestamp": time,
                "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
            });
            if let Some(object) = &object
                && stage == "ResponseComplete"
            {
                value["requestObject"] = object.clone();
                value["level"] = json!("RequestResponse");
            }
            events
                .push(AuditEvent::decode(value.to_string().as_bytes()).expect("valid bench event"));
        }
    }
    events
}

fn bench_detect(criterion: &mut Criterion) {
    let warmup = stream(200_000);
    let measured = stream(20_000);
    let mut group = criterion.benchmark_group("detect");
    group.throughput(Throughput::Elements(measured.len() as u64));
    group.bench_function("live_observe_per_event", |bencher| {
        bencher.iter_batched(
            || {
                // A detector that has learned 200k events of history.
                let mut detector = LiveDetector::new(DetectorOptions::default());
                for event in &warmup {
                    detector.observe(event, "default");
                }
                detector
            },
            |mut detector| {
                for event in &measured {
                    black_box(detector.observe(event, "default"));
                }
                detector
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("rules_only_per_event", |bencher| {
        bencher.iter_batched(
            || RuleSet::new(RuleOptions::default()),
            |mut rules| {
                for event in &measured {
                    black_box(rules.evaluate(event));
                }
                rules
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_detect
}
criterion_main!(benches);
