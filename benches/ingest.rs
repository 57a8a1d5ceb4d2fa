//! Decode cost: one audit line → `AuditEvent` → Arrow columns, and the batch
//! write of a partition to Parquet. The whole-ingest figure against DuckDB is
//! a documented command (docs/PERFORMANCE.md), since it needs a 1 GB file.

use auditlens::audit::AuditEvent;
use auditlens::store::builder::{LineOrigin, ObjectRetention, PartitionedColumns};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn sample_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for index in 0..2000u64 {
        lines.push(format!(
            concat!(
                "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{:08x}-7bf4-4c85-81a8-1b11253d1ba6\",",
                "\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/team-{}/pods?limit=500&resourceVersion=0\",\"verb\":\"list\",",
                "\"user\":{{\"username\":\"system:serviceaccount:team-{}:app\",\"uid\":\"3b1f6f3e-2c1d-4d8e-9f0a-1b2c3d4e5f60\",\"groups\":[\"system:serviceaccounts\",\"system:serviceaccounts:team-{}\",\"system:authenticated\"]}},",
                "\"sourceIPs\":[\"10.0.{}.{}\"],\"userAgent\":\"Go-http-client/2.0\",",
                "\"objectRef\":{{\"resource\":\"pods\",\"namespace\":\"team-{}\",\"apiVersion\":\"v1\"}},\"responseStatus\":{{\"metadata\":{{}},\"code\":200}},",
                "\"requestReceivedTimestamp\":\"2026-11-27T09:{:02}:{:02}.123456Z\",\"stageTimestamp\":\"2026-11-27T09:{:02}:{:02}.125001Z\",",
                "\"annotations\":{{\"authorization.k8s.io/decision\":\"allow\",\"authorization.k8s.io/reason\":\"RBAC: allowed by RoleBinding \\\"app\\\" of Role \\\"app\\\" to ServiceAccount \\\"app/team\\\"\"}}}}"
            ),
            index, index % 20, index % 20, index % 20, index % 250, index / 250, index % 20,
            index / 60 % 60, index % 60, index / 60 % 60, index % 60
        ));
    }
    lines
}

fn bench_decode(criterion: &mut Criterion) {
    let lines = sample_lines();
    let bytes: usize = lines.iter().map(|line| line.len() + 1).sum();
    let retention = ObjectRetention::new(
        &["rbac.authorization.k8s.io/*".into(), "pods".into()],
        256 * 1024,
    );
    let mut group = criterion.benchmark_group("decode");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("json_to_audit_event", |bench| {
        bench.iter(|| {
            for line in &lines {
                std::hint::black_box(AuditEvent::decode(line.as_bytes()).expect("valid"));
            }
        })
    });
    group.bench_function("json_to_arrow_columns", |bench| {
        bench.iter(|| {
            let mut columns = PartitionedColumns::default();
            for (index, line) in lines.iter().enumerate() {
                let event = AuditEvent::decode(line.as_bytes()).expect("valid");
                let origin = LineOrigin {
                    source_file: "/var/log/audit.log",
                    source_fingerprint: "00ff",
                    offset: index as u64,
                };
                columns.append(&event, origin, &retention);
            }
            std::hint::black_box(columns.finish().expect("batch"))
        })
    });
    group.finish();
    println!("sample: {} lines, {} bytes", lines.len(), bytes);
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
