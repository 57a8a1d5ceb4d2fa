//! Simulator throughput: audit events generated, rendered and written per second.
//!
//! `cargo bench --bench simulate` simulates one busy hour (rate 2,000 events/s,
//! about 7M lines) into a temporary directory, without gzip, and reports
//! events per second (the bar: at least 300,000).

use auditlens::simulate::{RotationOptions, SimulationConfig, simulate_to};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

fn config() -> SimulationConfig {
    SimulationConfig {
        start: 1_795_737_600_000_000, // 2026-11-26T22:00:00Z
        duration: 3_600_000_000,
        seed: 1,
        events_per_second: 2_000.0,
        identities: 50,
        warmup: 1_800_000_000,
        attacks: auditlens::simulate::attack_scenarios()
            .iter()
            .map(|name| name.to_string())
            .collect(),
        attack_count: 1,
        omit_stages: Vec::new(),
    }
}

fn rotation() -> RotationOptions {
    RotationOptions {
        max_size_bytes: Some(100 * 1024 * 1024),
        gzip: false,
        gzip_level: 1,
        max_backups: None,
    }
}

fn simulate_one_busy_hour(criterion: &mut Criterion) {
    let directory = tempfile::tempdir().expect("tempdir");
    let events = simulate_to(&config(), directory.path(), rotation())
        .expect("simulates")
        .events;
    let mut group = criterion.benchmark_group("simulate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(events));
    group.bench_function("one_busy_hour", |bencher| {
        bencher.iter(|| {
            let directory = tempfile::tempdir().expect("tempdir");
            simulate_to(&config(), directory.path(), rotation()).expect("simulates")
        })
    });
    group.finish();
}

criterion_group!(benches, simulate_one_busy_hour);
criterion_main!(benches);
