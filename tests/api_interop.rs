//! Interop: a Python client with no auditlens code and no .proto file
//! (tests/interop/query_via_reflection.py: grpcio, grpcio-reflection, pyarrow)
//! discovers the service by reflection, runs Query and reads the Arrow IPC
//! stream. The interpreter is AUDITLENS_PYTHON if set, else `python3` when it
//! already has the packages, else a virtual environment the test creates once
//! under the target folder from tests/interop/requirements.txt.

mod api_support;

use api_support::{ApiServer, direct_query_i64, make_data_dir};
use std::process::Command;

fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(find_or_make_python).clone()
}

fn has_packages(interpreter: &str) -> bool {
    Command::new(interpreter)
        .args(["-c", "import grpc, grpc_reflection, pyarrow"])
        .output()
        .is_ok_and(|output| output.status.success())
}

fn find_or_make_python() -> String {
    if let Ok(interpreter) = std::env::var("AUDITLENS_PYTHON") {
        return interpreter;
    }
    if has_packages("python3") {
        return "python3".to_string();
    }
    // <target>/release/deps/api_interop-* → <target>/interop-venv
    let executable = std::env::current_exe().expect("test executable path");
    let target = executable
        .ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/release/deps")
        .to_path_buf();
    let venv = target.join("interop-venv");
    let interpreter = venv.join("bin/python3").to_string_lossy().into_owned();
    if !has_packages(&interpreter) {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("run python3 -m venv");
        assert!(
            created.success(),
            "python3 -m venv {} failed",
            venv.display()
        );
        let requirements = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/requirements.txt"
        );
        let installed = Command::new(&interpreter)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                requirements,
            ])
            .status()
            .expect("run pip");
        assert!(installed.success(), "pip install -r {requirements} failed");
    }
    interpreter
}

fn run_script(address: &str, sql: &str, token: Option<&str>) -> (bool, String, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/query_via_reflection.py"
    );
    let mut command = Command::new(python());
    command.arg(script).arg(address).arg(sql);
    if let Some(token) = token {
        command.arg(token);
    }
    let output = command.output().expect("run the Python interop client");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn python_grpcio_client_discovers_the_service_and_reads_arrow() {
    let data = make_data_dir();
    let secrets = tempfile::tempdir().expect("temp dir");
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, "interop-token-123").expect("token");
    let server = ApiServer::start(
        data.path(),
        &["--api-token-file", token_file.to_str().expect("utf-8")],
        &[],
    );
    let sql = "SELECT username, count(*) AS requests FROM requests GROUP BY username ORDER BY requests DESC, username";
    let (ok, stdout, stderr) =
        run_script(&server.address.to_string(), sql, Some("interop-token-123"));
    assert!(
        ok,
        "interop client failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json answer");
    let services: Vec<&str> = answer["services"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(services.contains(&"auditlens.v1.AuditLens"), "{services:?}");
    let identities = direct_query_i64(data.path(), "SELECT count(DISTINCT username) FROM requests");
    assert_eq!(answer["rows"], identities);
    assert_eq!(answer["summary_rows"], identities);
    assert_eq!(
        answer["columns"],
        serde_json::json!(["username", "requests"])
    );
    let top = answer["first_row"]["requests"].as_i64().expect("count");
    let expected_top = direct_query_i64(
        data.path(),
        "SELECT max(n) FROM (SELECT count(*) AS n FROM requests GROUP BY username)",
    );
    assert_eq!(top, expected_top);

    // Without the token the same client is turned away.
    let (ok, _, stderr) = run_script(&server.address.to_string(), sql, None);
    assert!(!ok);
    assert!(
        stderr.contains("UNAUTHENTICATED") || stderr.contains("Unauthenticated"),
        "{stderr}"
    );
}
