//! Writes the audit log the way kube-apiserver's log backend does.
//!
//! The API server rotates with lumberjack: when a write would take `audit.log`
//! past `--audit-log-maxsize`, the file is renamed to
//! `audit-<UTC time of rotation as 2006-01-02T15-04-05.000>.log`, a new
//! `audit.log` is opened, the backup is gzipped (`.log.gz`, the uncompressed
//! backup removed afterwards) when `--audit-log-compress` is set, and backups
//! beyond `--audit-log-maxbackup` are deleted oldest first. The rotation time
//! here is the simulated time of the line that triggered it. As in lumberjack,
//! compression and backup removal run beside the writer (one background
//! thread), so a tailer briefly sees the uncompressed backup, then the `.gz`.

use super::SimulateError;
use super::engine::LineSink;
use super::json::backup_timestamp;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

/// Rotation settings, named after the API server's flags.
#[derive(Debug, Clone)]
pub struct RotationOptions {
    /// `--audit-log-maxsize` in bytes; `None` writes one file.
    pub max_size_bytes: Option<u64>,
    /// `--audit-log-compress`.
    pub gzip: bool,
    /// Gzip level, 1 to 9.
    pub gzip_level: u32,
    /// `--audit-log-maxbackup`; `None` keeps every backup.
    pub max_backups: Option<usize>,
}

/// The compression thread and the channel that feeds it new backups.
type Mill = (Sender<PathBuf>, JoinHandle<Result<(), SimulateError>>);

pub(crate) struct RotatingWriter {
    directory: PathBuf,
    options: RotationOptions,
    file: BufWriter<File>,
    size: u64,
    last_backup_name: String,
    pub(crate) files_written: usize,
    /// Receives each new backup; compresses it (if asked) and prunes old ones.
    mill: Option<Mill>,
}

fn io_error(path: &Path, source: std::io::Error) -> SimulateError {
    SimulateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RotatingWriter {
    pub(crate) fn create(
        directory: &Path,
        options: RotationOptions,
    ) -> Result<RotatingWriter, SimulateError> {
        fs::create_dir_all(directory).map_err(|source| io_error(directory, source))?;
        let path = directory.join("audit.log");
        let file = File::create(&path).map_err(|source| io_error(&path, source))?;
        let (sender, receiver) = channel::<PathBuf>();
        let (gzip, level, max_backups) = (options.gzip, options.gzip_level, options.max_backups);
        let mill = std::thread::Builder::new()
            .name("auditlens-simulate-rotation".into())
            .spawn(move || -> Result<(), SimulateError> {
                let mut backups: Vec<PathBuf> = Vec::new();
                for backup in receiver {
                    let kept = if gzip {
                        let mut compressed = backup.clone().into_os_string();
                        compressed.push(".gz");
                        let compressed = PathBuf::from(compressed);
                        compress(&backup, &compressed, level)?;
                        fs::remove_file(&backup).map_err(|source| io_error(&backup, source))?;
                        compressed
                    } else {
                        backup
                    };
                    backups.push(kept);
                    if let Some(limit) = max_backups {
                        while backups.len() > limit {
                            let oldest = backups.remove(0);
                            fs::remove_file(&oldest).map_err(|source| io_error(&oldest, source))?;
                        }
                    }
                }
                Ok(())
            })
            .map_err(|source| io_error(directory, source))?;
        Ok(RotatingWriter {
            directory: directory.to_path_buf(),
            options,
            file: BufWriter::with_capacity(1 << 20, file),
            size: 0,
            last_backup_name: String::new(),
            files_written: 1,
            mill: Some((sender, mill)),
        })
    }

    /// Flushes audit.log and waits until every backup is compressed and pruned.
    pub(crate) fn finish(&mut self) -> Result<(), SimulateError> {
        self.flush()?;
        if let Some((sender, mill)) = self.mill.take() {
            drop(sender);
            mill.join().map_err(|_| SimulateError::Io {
                path: self.directory.clone(),
                source: std::io::Error::other("the rotation thread panicked"),
            })??;
        }
        Ok(())
    }

    fn rotate(&mut self, stage_ts: i64) -> Result<(), SimulateError> {
        let current = self.directory.join("audit.log");
        self.file
            .flush()
            .map_err(|source| io_error(&current, source))?;
        // Two rotations in one millisecond would collide: move on by a millisecond.
        let mut when = stage_ts;
        let mut name = format!("audit-{}.log", backup_timestamp(when));
        while name <= self.last_backup_name {
            when += 1000;
            name = format!("audit-{}.log", backup_timestamp(when));
        }
        self.last_backup_name = name.clone();
        let backup = self.directory.join(&name);
        fs::rename(&current, &backup).map_err(|source| io_error(&backup, source))?;
        let file = File::create(&current).map_err(|source| io_error(&current, source))?;
        self.file = BufWriter::with_capacity(1 << 20, file);
        self.size = 0;
        self.files_written += 1;
        let sent = self
            .mill
            .as_ref()
            .map(|(sender, _)| sender.send(backup.clone()));
        if !matches!(sent, Some(Ok(()))) {
            // The rotation thread stopped: its error surfaces in `finish`.
            return self.finish().and(Err(io_error(
                &backup,
                std::io::Error::other("rotation thread stopped"),
            )));
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<(), SimulateError> {
        let current = self.directory.join("audit.log");
        self.file
            .flush()
            .map_err(|source| io_error(&current, source))
    }
}

impl LineSink for RotatingWriter {
    fn write_line(&mut self, line: &[u8], stage_ts: i64) -> Result<(), SimulateError> {
        if let Some(limit) = self.options.max_size_bytes
            && self.size > 0
            && self.size + line.len() as u64 > limit
        {
            self.rotate(stage_ts)?;
        }
        self.file
            .write_all(line)
            .map_err(|source| io_error(&self.directory.join("audit.log"), source))?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// Gzips `source` into `target`; mtime 0 in the header, so output is reproducible.
fn compress(source: &Path, target: &Path, level: u32) -> Result<(), SimulateError> {
    let mut input = File::open(source).map_err(|error| io_error(source, error))?;
    let output = File::create(target).map_err(|error| io_error(target, error))?;
    let mut encoder = GzEncoder::new(BufWriter::new(output), Compression::new(level.clamp(1, 9)));
    std::io::copy(&mut input, &mut encoder).map_err(|error| io_error(target, error))?;
    let mut writer = encoder.finish().map_err(|error| io_error(target, error))?;
    writer.flush().map_err(|error| io_error(target, error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_with_lumberjack_names_and_keeps_max_backups() {
        let directory = tempfile::tempdir().expect("tempdir");
        let options = RotationOptions {
            max_size_bytes: Some(100),
            gzip: true,
            gzip_level: 6,
            max_backups: Some(2),
        };
        let mut writer = RotatingWriter::create(directory.path(), options).expect("create");
        let line = [b'x'; 60];
        // 2026-11-27T09:00:00Z plus a second per line.
        for index in 0..5 {
            writer
                .write_line(&line, 1_795_770_000_000_000 + index * 1_000_000)
                .expect("write");
        }
        writer.finish().expect("finish");
        let mut names: Vec<String> = fs::read_dir(directory.path())
            .expect("read dir")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "audit-2026-11-27T09-00-03.000.log.gz",
                "audit-2026-11-27T09-00-04.000.log.gz",
                "audit.log"
            ]
        );
        let mut text = String::new();
        let file = File::open(directory.path().join(&names[0])).expect("open");
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text)
            .expect("gunzip");
        assert_eq!(text.len(), 60);
    }
}
