//! The line reader on arbitrary files. Two modes, chosen by the first byte:
//!
//! * the bytes *are* a `.gz` file (a hostile or truncated gzip): reading must
//!   end (no endless loop), never panic, and return only whole lines;
//! * the bytes are a plain log, also written gzip-compressed: both files must
//!   yield exactly the same lines, oversized lines and offsets, and together
//!   they must account for every byte (nothing lost, nothing read twice).
#![no_main]

use auditlens_fuzz::ingest::reader::{LineReader, OversizedLine, read_file_prefix};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn scratch() -> &'static Path {
    static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let directory = base.join(format!("auditlens-fuzz-reader-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("scratch directory");
        directory
    })
}

#[derive(Debug, PartialEq, Default)]
struct Read {
    chunks: Vec<(u64, Vec<u8>)>,
    oversized: Vec<(u64, u64)>,
    damaged: bool,
}

/// Reads a whole file as the tailer would for a finished file (or an unfinished
/// one, leaving a partial last line), checking the reader's own invariants.
fn read_all(path: &Path, offset: u64, buffer: usize, finished: bool, input_len: usize) -> Read {
    let mut result = Read::default();
    let Ok(mut reader) = LineReader::open(path, offset, buffer) else { return result };
    // Each call consumes at least one byte or reports the end; allow slack.
    let mut budget = input_len * 4 + 64;
    loop {
        budget = budget.checked_sub(1).expect("reader did not reach the end: endless loop");
        let Ok(outcome) = reader.read_chunk(finished) else { return result };
        if let Some(chunk) = outcome.chunk {
            assert!(!chunk.data.is_empty(), "empty chunk");
            let last = chunk.data.len() - 1;
            if !finished {
                assert_eq!(chunk.data[last], b'\n', "an unfinished file returned a partial line");
            }
            result.chunks.push((chunk.start, chunk.data));
        }
        result.oversized.extend(outcome.oversized.iter().map(|OversizedLine { offset, length, .. }| (*offset, *length)));
        result.damaged |= outcome.damaged.is_some();
        if outcome.at_end {
            return result;
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, body)) = input.split_first() else { return };
    let buffer = 1024 + (mode as usize & 0x0f) * 97;
    let directory = scratch();
    if mode & 0x80 != 0 {
        let path = directory.join("hostile.log.gz");
        std::fs::write(&path, body).expect("write");
        let _ = read_file_prefix(&path, 64 * 1024);
        let read = read_all(&path, 0, buffer, true, body.len() * 1100 + 4096);
        let _ = read_all(&path, (mode & 0x3f) as u64, buffer, false, body.len() * 1100 + 4096);
        drop(read);
        return;
    }
    let plain = directory.join("audit.log");
    let packed = directory.join("audit.log.gz");
    std::fs::write(&plain, body).expect("write plain");
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&packed).expect("create"), flate2::Compression::fast());
    encoder.write_all(body).expect("compress");
    encoder.finish().expect("finish");
    for finished in [true, false] {
        let from_plain = read_all(&plain, 0, buffer, finished, body.len());
        let from_packed = read_all(&packed, 0, buffer, finished, body.len());
        assert_eq!(from_plain, from_packed, "plain and gzip disagree (finished={finished})");
        assert!(!from_plain.damaged);
        // Every byte is in exactly one chunk or one oversized line, in order,
        // except a trailing partial line of an unfinished file.
        let mut spans: Vec<(u64, u64)> = from_plain.chunks.iter().map(|(start, data)| (*start, data.len() as u64)).collect();
        spans.extend(from_plain.oversized.iter().copied());
        spans.sort();
        let mut position = 0u64;
        for (start, length) in spans {
            assert_eq!(start, position, "gap or overlap at {start}");
            position += length;
        }
        let tail = &body[position as usize..];
        if finished {
            assert!(tail.is_empty(), "finished file left {} bytes unread", tail.len());
        } else {
            assert!(!tail.contains(&b'\n'), "whole line left unread at {position}");
        }
        // Chunks hold exactly the file's bytes.
        for (start, data) in &from_plain.chunks {
            assert_eq!(&body[*start as usize..*start as usize + data.len()], &data[..]);
        }
        // Resuming at a committed line boundary yields the rest.
        if let Some((start, _)) = from_plain.chunks.get(1) {
            let resumed = read_all(&packed, *start, buffer, finished, body.len());
            assert_eq!(resumed.chunks.first().map(|(s, _)| *s), Some(*start));
        }
    }
});
