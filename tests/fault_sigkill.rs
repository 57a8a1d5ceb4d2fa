//! SIGKILL at random points: during ingest with rotation and gzip (50 kills,
//! the hardening bar), during compaction and during retention. After each
//! series every line written is stored exactly once (or, for retention,
//! exactly once or deliberately expired), never twice.

mod common;
mod harden;

use common::{Counts, counts, kill_daemon, stop_daemon, wait_until};
use harden::{RotatingWriter, audit_line_at, start_daemon_with, stored_audit_ids};
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn assert_exactly_once(data_dir: &Path, written: u64) {
    let expected = written as i64;
    let caught_up = wait_until(Duration::from_secs(120), || {
        counts(data_dir).rows >= expected
    });
    let final_counts = counts(data_dir);
    assert!(
        caught_up,
        "daemon did not catch up: {final_counts:?}, written {written}"
    );
    assert_eq!(
        final_counts,
        Counts {
            rows: expected,
            distinct_events: expected,
            distinct_lines: expected
        }
    );
}

#[test]
fn fifty_sigkills_during_ingest_with_rotation_and_gzip() {
    let audit = tempfile::tempdir().expect("audit dir");
    let data = tempfile::tempdir().expect("data dir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(50);
    let mut writer = RotatingWriter::new(audit.path(), "kill50");
    for _ in 0..50 {
        let daemon = start_daemon_with(data.path(), audit.path(), &[]);
        for _ in 0..rng.random_range(1..5) {
            writer.append(rng.random_range(50..600), &mut rng);
            match rng.random_range(0..10) {
                0..=2 => writer.rotate(true),
                3 => writer.rotate(false),
                4 => writer.copy_truncate(),
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(10..200)));
        }
        kill_daemon(daemon);
    }
    let daemon = start_daemon_with(data.path(), audit.path(), &[]);
    assert_exactly_once(data.path(), writer.written);
    stop_daemon(daemon);
    assert_eq!(counts(data.path()).rows, writer.written as i64);
}

/// Parts per partition folder.
fn part_counts(data_dir: &Path) -> Vec<usize> {
    let pattern = data_dir.join("events/*/*/*");
    glob::glob(&pattern.to_string_lossy())
        .expect("glob")
        .flatten()
        .map(|folder| {
            std::fs::read_dir(folder)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                        .count()
                })
                .unwrap_or(0)
        })
        .collect()
}

#[test]
fn sigkill_during_compaction_loses_and_duplicates_nothing() {
    let audit = tempfile::tempdir().expect("audit dir");
    let data = tempfile::tempdir().expect("data dir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut writer = RotatingWriter::new(audit.path(), "compact");
    // Compact any closed hour with 2 parts, considered every 150 ms: with
    // flushes every 200 ms most kills land in or near a compaction.
    let environment = [
        ("AUDITLENS_STORE__COMPACT_MIN_PARTS", "2"),
        ("AUDITLENS_STORE__MAINTENANCE_INTERVAL_MS", "150"),
    ];
    let mut compactions_seen = 0;
    for _ in 0..20 {
        let daemon = start_daemon_with(data.path(), audit.path(), &environment);
        for _ in 0..rng.random_range(2..6) {
            writer.append(rng.random_range(100..400), &mut rng);
            if rng.random_bool(0.2) {
                writer.rotate(true);
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(100..400)));
        }
        kill_daemon(daemon);
        if data.path().join("events").exists() && part_counts(data.path()).contains(&1) {
            compactions_seen += 1;
        }
    }
    let daemon = start_daemon_with(data.path(), audit.path(), &environment);
    assert_exactly_once(data.path(), writer.written);
    // Compaction did happen (otherwise this test proves nothing) and finishes.
    let compacted = wait_until(Duration::from_secs(30), || {
        part_counts(data.path()).iter().all(|&parts| parts <= 1)
    });
    let stderr = stop_daemon(daemon);
    assert!(
        compactions_seen > 0 || compacted,
        "no compaction ever ran: {stderr}"
    );
    assert!(
        compacted,
        "closed hours were not compacted to one part: {:?}",
        part_counts(data.path())
    );
    assert_exactly_once(data.path(), writer.written);
}

#[test]
fn sigkill_during_retention_never_resurrects_or_duplicates() {
    let audit = tempfile::tempdir().expect("audit dir");
    let data = tempfile::tempdir().expect("data dir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    // Half the lines are years old (expired at once with retention 30 days),
    // half are from the last hour (kept).
    let recent = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let environment = [
        ("AUDITLENS_STORE__RETENTION_DAYS", "30"),
        ("AUDITLENS_STORE__COMPACT_MIN_PARTS", "3"),
        ("AUDITLENS_STORE__MAINTENANCE_INTERVAL_MS", "150"),
    ];
    let path = audit.path().join("audit.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open");
    let (mut old, mut kept) = (0i64, 0i64);
    let mut index = 0u64;
    for _ in 0..20 {
        let daemon = start_daemon_with(data.path(), audit.path(), &environment);
        for _ in 0..rng.random_range(2..5) {
            let mut text = String::new();
            for _ in 0..rng.random_range(50..300) {
                let line = if index.is_multiple_of(2) {
                    old += 1;
                    audit_line_at(
                        "retention",
                        index,
                        &format!("2020-01-{:02}T10:00:00Z", 1 + index % 28),
                    )
                } else {
                    kept += 1;
                    audit_line_at("retention", index, &recent)
                };
                text.push_str(&line);
                text.push('\n');
                index += 1;
            }
            file.write_all(text.as_bytes()).expect("append");
            std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        }
        kill_daemon(daemon);
        // Whatever the kill interrupted, nothing is ever stored twice.
        if data.path().join("events").exists() {
            let now = counts(data.path());
            assert_eq!(
                now.rows, now.distinct_events,
                "duplicates after a kill: {now:?}"
            );
        }
    }
    let daemon = start_daemon_with(data.path(), audit.path(), &environment);
    let settled = wait_until(Duration::from_secs(120), || {
        stored_audit_ids(data.path(), "year(ts) = 2020") == 0
            && stored_audit_ids(data.path(), "year(ts) > 2020") >= kept
    });
    stop_daemon(daemon);
    let final_counts = counts(data.path());
    assert!(
        settled,
        "retention did not settle: {final_counts:?}, kept {kept}, old {old}"
    );
    assert_eq!(
        final_counts,
        Counts {
            rows: kept,
            distinct_events: kept,
            distinct_lines: kept
        }
    );
    // Expired lines are not read again after a restart.
    let daemon = start_daemon_with(data.path(), audit.path(), &environment);
    std::thread::sleep(Duration::from_secs(2));
    stop_daemon(daemon);
    assert_eq!(counts(data.path()).rows, kept);
}
