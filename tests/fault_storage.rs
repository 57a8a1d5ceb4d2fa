//! Damage to the data folder while the daemon is stopped: the catalog deleted
//! or overwritten, `checkpoints.json` deleted, a Parquet part corrupted. Each
//! time the daemon starts, repairs what it can from what survives (parts
//! describe themselves; sources still on disk are read again) and stores every
//! line exactly once; what cannot be repaired is reported, never duplicated.

mod common;
mod harden;

use common::{Counts, counts, stop_daemon, wait_until};
use harden::start_daemon_with;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes `batches` batches of `per_batch` lines, letting the daemon flush
/// between them so the folder holds several parts. Returns lines written.
fn ingest_in_batches(
    data_dir: &Path,
    audit_dir: &Path,
    prefix: &str,
    first: u64,
    batches: u64,
    per_batch: u64,
) -> u64 {
    let daemon = start_daemon_with(data_dir, audit_dir, &[]);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(audit_dir.join("audit.log"))
        .expect("open");
    let mut index = first;
    for _ in 0..batches {
        let mut text = String::new();
        for _ in 0..per_batch {
            text.push_str(&common::audit_line(prefix, index));
            text.push('\n');
            index += 1;
        }
        file.write_all(text.as_bytes()).expect("append");
        let target = index as i64;
        assert!(
            wait_until(Duration::from_secs(60), || counts(data_dir).rows >= target),
            "daemon did not store batch"
        );
    }
    stop_daemon(daemon);
    index
}

fn manifest_live_rows(data_dir: &Path) -> i64 {
    let connection =
        duckdb::Connection::open(data_dir.join("catalog.duckdb")).expect("open catalog");
    connection
        .query_row(
            "SELECT coalesce(sum(rows), 0)::BIGINT FROM parts WHERE removed_at IS NULL",
            [],
            |row| row.get(0),
        )
        .expect("manifest rows")
}

fn exactly(rows: i64) -> Counts {
    Counts {
        rows,
        distinct_events: rows,
        distinct_lines: rows,
    }
}

fn parts(data_dir: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> =
        glob::glob(&data_dir.join("events/*/*/*/*.parquet").to_string_lossy())
            .expect("glob")
            .flatten()
            .collect();
    parts.sort();
    parts
}

/// Restarts over the same folder, appends more lines, and checks the whole is exactly once.
fn restart_and_check(data_dir: &Path, audit_dir: &Path, prefix: &str, written: u64) -> String {
    let daemon = start_daemon_with(data_dir, audit_dir, &[]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(audit_dir.join("audit.log"))
        .expect("open");
    let mut text = String::new();
    for index in written..written + 100 {
        text.push_str(&common::audit_line(prefix, index));
        text.push('\n');
    }
    file.write_all(text.as_bytes()).expect("append");
    let total = (written + 100) as i64;
    let caught_up = wait_until(Duration::from_secs(60), || counts(data_dir).rows >= total);
    let stderr = stop_daemon(daemon);
    assert!(caught_up, "{:?} of {total}: {stderr}", counts(data_dir));
    assert_eq!(counts(data_dir), exactly(total), "{stderr}");
    stderr
}

/// Parts the daemon moved aside as corrupt.
fn parts_moved_aside(data_dir: &std::path::Path) -> usize {
    glob::glob(&data_dir.join("corrupt/*/*/*/*.parquet").to_string_lossy())
        .expect("glob")
        .flatten()
        .count()
}

#[test]
fn a_deleted_catalog_is_rebuilt_from_the_parts() {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let written = ingest_in_batches(data.path(), audit.path(), "catalog-deleted", 0, 4, 200);
    std::fs::remove_file(data.path().join("catalog.duckdb")).expect("delete catalog");
    let _ = std::fs::remove_file(data.path().join("catalog.duckdb.wal"));
    restart_and_check(data.path(), audit.path(), "catalog-deleted", written);
    assert_eq!(manifest_live_rows(data.path()), (written + 100) as i64);
}

#[test]
fn a_corrupted_catalog_is_moved_aside_and_rebuilt() {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let written = ingest_in_batches(data.path(), audit.path(), "catalog-corrupt", 0, 4, 200);
    let catalog = data.path().join("catalog.duckdb");
    let mut bytes = std::fs::read(&catalog).expect("read catalog");
    for byte in bytes.iter_mut().take(8192) {
        *byte = 0xA5;
    }
    std::fs::write(&catalog, &bytes).expect("corrupt catalog");
    restart_and_check(data.path(), audit.path(), "catalog-corrupt", written);
    assert_eq!(manifest_live_rows(data.path()), (written + 100) as i64);
    let aside = std::fs::read_dir(data.path())
        .expect("list")
        .flatten()
        .any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("catalog.duckdb.corrupt-")
        });
    assert!(aside, "the corrupt catalog was not kept aside");
}

#[test]
fn deleted_checkpoints_are_rebuilt_and_nothing_is_read_twice() {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let written = ingest_in_batches(data.path(), audit.path(), "checkpoints", 0, 4, 200);
    std::fs::remove_file(data.path().join("checkpoints.json")).expect("delete checkpoints");
    let stderr = restart_and_check(data.path(), audit.path(), "checkpoints", written);
    assert!(stderr.contains("rebuilt"), "{stderr}");
    assert!(data.path().join("checkpoints.json").exists());
}

/// Overwrites a part's footer (the last 64 bytes) so its metadata cannot be read.
fn corrupt_footer(part: &Path) {
    let mut bytes = std::fs::read(part).expect("read part");
    let length = bytes.len();
    for byte in &mut bytes[length.saturating_sub(64)..] {
        *byte = 0x5A;
    }
    std::fs::write(part, &bytes).expect("write part");
}

#[test]
fn a_corrupt_part_is_moved_aside_and_its_rows_read_again_from_the_source() {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let written = ingest_in_batches(data.path(), audit.path(), "corrupt-part", 0, 5, 150);
    let all = parts(data.path());
    assert!(all.len() >= 3, "expected several parts, got {all:?}");
    let victim = all[all.len() / 2].clone();
    corrupt_footer(&victim);
    let stderr = restart_and_check(data.path(), audit.path(), "corrupt-part", written);
    assert!(stderr.contains("corrupt part"), "{stderr}");
    assert!(
        !victim.exists(),
        "the corrupt part is still among the parts"
    );
    let moved = parts_moved_aside(data.path());
    assert_eq!(moved, 1);
    // The manifest agrees with the folder, and another restart changes nothing.
    assert_eq!(manifest_live_rows(data.path()), (written + 100) as i64);
    let daemon = start_daemon_with(data.path(), audit.path(), &[]);
    std::thread::sleep(Duration::from_secs(2));
    stop_daemon(daemon);
    assert_eq!(counts(data.path()), exactly((written + 100) as i64));
}

#[test]
fn a_corrupt_part_whose_source_is_gone_is_moved_aside_and_reported() {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let written = ingest_in_batches(data.path(), audit.path(), "source-gone", 0, 4, 150) as i64;
    let all = parts(data.path());
    let victim = all[0].clone();
    let victim_rows = {
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        let sql = format!("SELECT count(*) FROM read_parquet('{}')", victim.display());
        connection
            .query_row(&sql, [], |row| row.get::<_, i64>(0))
            .expect("count victim")
    };
    corrupt_footer(&victim);
    // The source rotates away and is deleted: its lines cannot be read again.
    std::fs::remove_file(audit.path().join("audit.log")).expect("delete source");
    let daemon = start_daemon_with(data.path(), audit.path(), &[]);
    let settled = wait_until(Duration::from_secs(30), || !victim.exists());
    // It keeps serving: a new audit file is read and stored.
    let mut file = std::fs::File::create(audit.path().join("audit.log")).expect("new source");
    let more: String = (0..50)
        .map(|index| common::audit_line("source-gone-after", index) + "\n")
        .collect();
    file.write_all(more.as_bytes()).expect("append");
    let expected = written - victim_rows + 50;
    let serving = wait_until(Duration::from_secs(60), || {
        counts(data.path()).rows >= expected
    });
    let stderr = stop_daemon(daemon);
    assert!(settled, "{stderr}");
    assert!(serving, "{:?} of {expected}: {stderr}", counts(data.path()));
    assert!(stderr.contains("is gone"), "{stderr}");
    assert!(
        stderr.contains(&format!("rows_lost={victim_rows}")),
        "{stderr}"
    );
    assert_eq!(counts(data.path()), exactly(expected));
    let moved = parts_moved_aside(data.path());
    assert_eq!(moved, 1, "the corrupt part was not kept aside");
}
