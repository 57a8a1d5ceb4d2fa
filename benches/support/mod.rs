//! What the benchmarks that drive the real binary share: knobs from the
//! environment, and the daemon started over an audit folder with its gRPC
//! address read from its stderr (killed when dropped).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A whole-number knob from the environment, or its default.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The auditlens binary of this build.
pub fn auditlens() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditlens"))
}

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `auditlens serve` over `audit` into `data`, gRPC and metrics on free
/// loopback ports, plus `extra` arguments; returns the process and its gRPC
/// address once it has named it. Its stderr keeps being drained.
pub fn start_daemon(data: &Path, audit: &Path, extra: &[&str]) -> (KillOnDrop, String) {
    let mut daemon = KillOnDrop(
        auditlens()
            .arg("--data-dir")
            .arg(data)
            .arg("serve")
            .arg("--audit-dir")
            .arg(audit)
            .args([
                "--grpc-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon"),
    );
    let stderr = daemon.0.stderr.take().expect("stderr");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"grpc_listening\"")
                && let Some(start) = line.find('{')
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(&line[start..])
                && let Some(address) = value["address"].as_str()
            {
                let _ = sender.send(address.to_string());
            }
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(300))
        .expect("the daemon names its gRPC address");
    (daemon, address)
}
