//! Audit files that misbehave: permissions that flip (the daemon runs as an
//! unprivileged user, since root ignores file modes), a clock that jumps
//! backwards (events whose timestamps go back in time), and the audit folder
//! replaced by a symlink while the daemon runs. Every line is stored exactly
//! once in the end, and none is skipped because it could not be read for a while.

mod common;
mod harden;

use common::{Counts, audit_line, binary, counts, query_strings, stop_daemon, wait_until};
use harden::{audit_line_at, daemon_command, start_daemon_with, stored_audit_ids};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn exactly(rows: i64) -> Counts {
    Counts {
        rows,
        distinct_events: rows,
        distinct_lines: rows,
    }
}

fn append(path: &Path, prefix: &str, range: std::ops::Range<u64>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    let text: String = range
        .map(|index| audit_line(prefix, index) + "\n")
        .collect();
    file.write_all(text.as_bytes()).expect("append");
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

const NOBODY: u32 = 65534;

#[test]
fn files_that_become_unreadable_are_read_once_readable_again() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to start the daemon as another user (setpriv)");
        return;
    }
    // The binary must be reachable by the unprivileged user (the target dir
    // under /root is not), so it runs from a copy.
    let bin_dir = tempfile::tempdir().expect("bin dir");
    set_mode(bin_dir.path(), 0o755);
    let program = bin_dir.path().join("auditlens");
    std::fs::copy(binary(), &program).expect("copy binary");
    set_mode(&program, 0o755);
    let audit = tempfile::tempdir().expect("audit");
    set_mode(audit.path(), 0o755);
    let data = tempfile::tempdir().expect("data");
    std::os::unix::fs::chown(data.path(), Some(NOBODY), Some(NOBODY)).expect("chown data");

    let live = audit.path().join("audit.log");
    append(&live, "perm", 0..500);
    set_mode(&live, 0o644);
    let home = data.path().to_string_lossy().into_owned();
    let inner = daemon_command(
        &program,
        data.path(),
        audit.path(),
        &[("HOME", home.as_str())],
    );
    // setpriv execs the daemon: the child's pid is the daemon's.
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(inner.get_program())
        .args(inner.get_args());
    for (name, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let daemon = command.spawn().expect("start daemon as nobody");
    assert!(
        wait_until(Duration::from_secs(60), || counts(data.path()).rows >= 500),
        "first lines not stored"
    );

    // A backup appears without read permission (created so: created readable
    // and chmodded after, the daemon, woken by its creation, could read it
    // first), and the live file loses it before it grows again.
    let backup = audit.path().join("audit-2026-11-27T09-00-00.000.log");
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Root (this test) may write a file of mode 000; nobody may not read it.
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o000)
            .open(&backup)
            .expect("create unreadable backup");
        assert_eq!(
            file.metadata().expect("stat").permissions().mode() & 0o777,
            0
        );
        let text: String = (0..400)
            .map(|index| audit_line("perm-backup", index) + "\n")
            .collect();
        file.write_all(text.as_bytes()).expect("write backup");
    }
    set_mode(&live, 0o000);
    append(&live, "perm", 500..800);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        stored_audit_ids(data.path(), "audit_id LIKE 'perm-backup-%'"),
        0,
        "an unreadable file was read"
    );

    set_mode(&backup, 0o644);
    set_mode(&live, 0o644);
    let caught_up = wait_until(Duration::from_secs(60), || counts(data.path()).rows >= 1200);
    let stderr = stop_daemon(daemon);
    assert!(caught_up, "{:?}: {stderr}", counts(data.path()));
    assert_eq!(counts(data.path()), exactly(1200), "{stderr}");
}

#[test]
fn timestamps_that_jump_backwards_go_to_their_own_partitions() {
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    // Retention (by event time) would rightly expire the oldest of these.
    let daemon = start_daemon_with(
        data.path(),
        audit.path(),
        &[("AUDITLENS_STORE__RETENTION_DAYS", "0")],
    );
    // The API server's clock steps back an hour, then a day, then years (an
    // NTP correction, a restored VM snapshot), then forward again.
    let times = [
        "2026-11-27T09:59:59.900000Z",
        "2026-11-27T08:59:59.999999Z",
        "2026-11-26T23:30:00Z",
        "2024-02-29T12:00:00Z",
        "1970-01-01T00:00:00Z",
        "2026-11-27T10:00:00.000001Z",
    ];
    let mut text = String::new();
    let mut index = 0u64;
    for time in times {
        for _ in 0..50 {
            text.push_str(&audit_line_at("clock", index, time));
            text.push('\n');
            index += 1;
        }
    }
    std::fs::write(audit.path().join("audit.log"), text).expect("write");
    let total = index as i64;
    assert!(wait_until(Duration::from_secs(60), || counts(data.path())
        .rows
        >= total));
    stop_daemon(daemon);
    assert_eq!(counts(data.path()), exactly(total));
    let partitions = query_strings(
        data.path(),
        "SELECT CAST(date AS VARCHAR), CAST(hour AS VARCHAR), CAST(count(*) AS VARCHAR) FROM events GROUP BY ALL ORDER BY 1, 2",
    );
    assert_eq!(partitions.len(), times.len(), "{partitions:?}");
    assert!(
        partitions.iter().all(|row| row[2].as_deref() == Some("50")),
        "{partitions:?}"
    );
    let misplaced = query_strings(
        data.path(),
        "SELECT CAST(count(*) AS VARCHAR) FROM events WHERE date <> CAST(ts AS DATE) OR hour <> hour(ts)",
    );
    assert_eq!(misplaced[0][0].as_deref(), Some("0"));
}

#[test]
fn the_audit_folder_replaced_by_a_symlink_is_followed_without_rereading() {
    let root = tempfile::tempdir().expect("root");
    let data = tempfile::tempdir().expect("data");
    let audit = root.path().join("audit");
    std::fs::create_dir(&audit).expect("audit dir");
    append(&audit.join("audit.log"), "symlink", 0..300);
    let daemon = start_daemon_with(data.path(), &audit, &[]);
    assert!(wait_until(Duration::from_secs(60), || counts(data.path())
        .rows
        >= 300));

    // An operator moves the folder to another disk and leaves a symlink: the
    // old live file is now a backup there, and a new live file starts.
    let moved = root.path().join("disk2-audit");
    std::fs::create_dir(&moved).expect("new folder");
    std::fs::copy(
        audit.join("audit.log"),
        moved.join("audit-2026-11-27T09-00-00.000.log"),
    )
    .expect("copy");
    append(&moved.join("audit.log"), "symlink", 300..600);
    std::fs::rename(&audit, root.path().join("audit.old")).expect("move old folder");
    std::os::unix::fs::symlink(&moved, &audit).expect("symlink");
    append(&moved.join("audit.log"), "symlink", 600..700);
    let caught_up = wait_until(Duration::from_secs(60), || counts(data.path()).rows >= 700);
    std::thread::sleep(Duration::from_secs(1));
    let stderr = stop_daemon(daemon);
    assert!(caught_up, "{:?}: {stderr}", counts(data.path()));
    assert_eq!(counts(data.path()), exactly(700), "{stderr}");
    // A restart through the symlink reads nothing twice.
    let daemon = start_daemon_with(data.path(), &audit, &[]);
    std::thread::sleep(Duration::from_secs(2));
    stop_daemon(daemon);
    assert_eq!(counts(data.path()), exactly(700));
}
