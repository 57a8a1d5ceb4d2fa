//! Live mode: the simulated cluster writes its log in real time (optionally
//! sped up), rotating and gzipping like the API server, so the daemon can be
//! demonstrated and tested against a log that grows and rotates under it.
//!
//! The simulation runs on its own OS thread (it is blocking work and its
//! engine is not `Send`, so it is built inside the thread). Every tick it
//! advances simulated time to `start + elapsed real time × speedup`, writes
//! and flushes the lines, and rewrites `labels.jsonl`/`benign.jsonl`/`rbac.json`
//! about every five real seconds so a test can read the labels of attacks
//! that already happened. Setting the `stop` flag ends the run at the next
//! tick; the side files are then written a last time.

use super::output::{RotatingWriter, RotationOptions};
use super::{Result, SimulateError, Simulation, SimulationConfig, SimulationSummary};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(100);
const SIDE_FILES_EVERY: Duration = Duration::from_secs(5);

/// A running live simulation. Dropping it does not stop it: set the stop flag
/// given to [`spawn_live`], then [`LiveHandle::join`].
pub struct LiveHandle {
    thread: JoinHandle<Result<SimulationSummary>>,
}

impl LiveHandle {
    /// Waits for the simulation to end (stop flag set, or the configured
    /// duration reached in simulated time).
    pub fn join(self) -> Result<SimulationSummary> {
        self.thread
            .join()
            .map_err(|_| SimulateError::LiveThreadPanicked)?
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Starts writing `config`'s simulation into `out_dir` in real time:
/// `speedup` simulated seconds per real second. The audit.log and backups are
/// created at once (an empty audit.log first), so a tailer can start now.
pub fn spawn_live(
    config: SimulationConfig,
    out_dir: PathBuf,
    rotation: RotationOptions,
    speedup: f64,
    stop: Arc<AtomicBool>,
) -> Result<LiveHandle> {
    let mut writer = RotatingWriter::create(&out_dir, rotation)?;
    let thread = std::thread::Builder::new()
        .name("auditlens-simulate-live".into())
        .spawn(move || -> Result<SimulationSummary> {
            let started = Instant::now();
            let mut simulation = Simulation::new(&config);
            simulation.write_side_files(&out_dir)?;
            let mut side_files_written = Instant::now();
            let real_start = Instant::now();
            loop {
                let elapsed = real_start.elapsed().as_secs_f64() * speedup;
                let target = config.start + (elapsed * 1_000_000.0) as i64;
                simulation.advance_to(target, &mut writer)?;
                writer.flush()?;
                if side_files_written.elapsed() >= SIDE_FILES_EVERY {
                    simulation.write_side_files(&out_dir)?;
                    side_files_written = Instant::now();
                }
                if stop.load(Ordering::Relaxed) || simulation.now() >= simulation.end {
                    break;
                }
                std::thread::sleep(TICK);
            }
            if simulation.now() >= simulation.end {
                simulation.finish(&mut writer)?;
            }
            writer.finish()?;
            simulation.write_side_files(&out_dir)?;
            Ok(simulation.summary(writer.files_written, started.elapsed().as_secs_f64()))
        })
        .map_err(|source| SimulateError::Io {
            path: PathBuf::from("<live simulation thread>"),
            source,
        })?;
    Ok(LiveHandle { thread })
}
