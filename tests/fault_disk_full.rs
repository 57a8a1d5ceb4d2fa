//! Disk full while writing parts: the data folder is a small tmpfs filled to
//! the last byte while the daemon runs. Flushes fail; the daemon keeps its
//! buffer, stops reading once the buffer is at its limit (memory stays
//! bounded however much is written meanwhile), retries, and stores every line
//! exactly once when space returns.
//!
//! Needs `mount -t tmpfs` (root, or CAP_SYS_ADMIN). Where mounting is refused
//! the test says so on stderr and does nothing else.

mod common;
mod harden;

use common::{Counts, counts, stop_daemon, wait_until};
use harden::{proc_status_kib, start_daemon_with};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .ok()?;
        status.success().then(|| Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system holding `path` until writes fail with ENOSPC.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("ballast");
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(error) = file.write_all(&block) {
            assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
            break;
        }
    }
    let _ = file.sync_all();
}

fn append_lines(audit_dir: &Path, prefix: &str, from: u64, to: u64) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(audit_dir.join("audit.log"))
        .expect("open");
    let mut text = String::new();
    for index in from..to {
        text.push_str(&common::audit_line(prefix, index));
        text.push('\n');
        if text.len() > 4 << 20 {
            file.write_all(text.as_bytes()).expect("append");
            text.clear();
        }
    }
    file.write_all(text.as_bytes()).expect("append");
}

#[test]
fn disk_full_pauses_reading_with_bounded_memory_and_loses_nothing() {
    let audit = tempfile::tempdir().expect("audit dir");
    let mount_point = tempfile::tempdir().expect("mount point");
    let Some(tmpfs) = Tmpfs::mount(mount_point.path(), "64m") else {
        eprintln!("SKIPPED: mount -t tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)");
        return;
    };
    let data = tmpfs.path.join("data");
    let ballast = tmpfs.path.join("ballast");
    // A small buffer so back-pressure starts early.
    let environment = [
        ("AUDITLENS_STORE__FLUSH_ROWS", "5000"),
        ("AUDITLENS_STORE__FLUSH_BYTES", "8388608"),
    ];
    let mut daemon = start_daemon_with(&data, audit.path(), &environment);
    append_lines(audit.path(), "diskfull", 0, 1000);
    assert!(
        wait_until(Duration::from_secs(60), || counts(&data).rows >= 1000),
        "first lines not stored"
    );
    let pid = daemon.id();
    let baseline_kib = proc_status_kib(pid, "VmRSS").expect("rss");

    fill(&ballast);
    // ~300,000 lines (~230 MB of log) while nothing can be written.
    let total = 301_000u64;
    let mut peak_kib = baseline_kib;
    for step in 0..30u64 {
        append_lines(
            audit.path(),
            "diskfull",
            1000 + step * 10_000,
            1000 + (step + 1) * 10_000,
        );
        peak_kib = peak_kib.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
    }
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        peak_kib = peak_kib.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
    }
    assert!(
        daemon.try_wait().expect("wait").is_none(),
        "the daemon died on a full disk"
    );
    let stalled = counts(&data).rows;
    assert!(
        stalled < total as i64,
        "the disk was not full: {stalled} stored"
    );
    eprintln!(
        "disk full: RSS {baseline_kib} KiB before, peak {peak_kib} KiB while ~230 MB were written; {stalled} rows stored"
    );
    // The buffer is bounded (8 MiB of columns, 5000 rows) plus the channels'
    // chunks: far below the 230 MB written while the disk was full.
    assert!(
        peak_kib < baseline_kib + 160 * 1024,
        "memory grew while the disk was full: {baseline_kib} → {peak_kib} KiB"
    );

    std::fs::remove_file(&ballast).expect("free space");
    let caught_up = wait_until(Duration::from_secs(240), || {
        counts(&data).rows >= total as i64
    });
    let stderr = stop_daemon(daemon);
    assert!(caught_up, "did not resume: {:?}", counts(&data));
    let expected = total as i64;
    assert_eq!(
        counts(&data),
        Counts {
            rows: expected,
            distinct_events: expected,
            distinct_lines: expected
        }
    );
    assert!(
        stderr.contains("flush failed"),
        "no flush failure was reported: {stderr}"
    );
    drop(tmpfs);
}
