//! Reads complete lines from one audit file, plain or gzip, from a byte offset.
//!
//! Offsets are positions in the *decompressed* stream, so a plain file and the
//! `.gz` it later becomes agree on every line's offset. A chunk only ever holds
//! whole lines: a trailing line without its newline is left for the next read
//! (the API server may be half-way through writing it) unless the caller says
//! the file is finished. A line longer than the read buffer is never buffered
//! whole: it is skipped to its newline and reported as [`OversizedLine`] with
//! a prefix, so memory is bounded by the buffer, not by the file.

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// How a file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Plain,
    Gzip,
}

impl FileFormat {
    pub fn of_path(path: &Path) -> FileFormat {
        if path.extension().is_some_and(|extension| extension == "gz") {
            FileFormat::Gzip
        } else {
            FileFormat::Plain
        }
    }
}

/// A run of whole lines starting at `start` (a line boundary).
#[derive(Debug, Clone)]
pub struct LineChunk {
    pub start: u64,
    /// Whole lines, each ending in `\n`, except that the last one may lack it
    /// when the caller declared the file finished.
    pub data: Vec<u8>,
}

impl LineChunk {
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

/// A line too long to buffer: where it started, how long it was, its first bytes.
#[derive(Debug, Clone)]
pub struct OversizedLine {
    pub offset: u64,
    pub length: u64,
    pub prefix: Vec<u8>,
}

/// What one read produced.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub chunk: Option<LineChunk>,
    pub oversized: Vec<OversizedLine>,
    /// Bytes after the last newline, waiting for the rest of their line.
    pub pending_partial: u64,
    /// Nothing more to read right now.
    pub at_end: bool,
    /// The stream is damaged (a cut gzip); what came before was returned.
    pub damaged: Option<String>,
}

const OVERSIZED_PREFIX_BYTES: usize = 4096;

enum Stream {
    Plain(File),
    Gzip {
        decoder: Box<MultiGzDecoder<BufReader<File>>>,
        /// Decompressed bytes from `position` on, not yet handed out.
        carry: Vec<u8>,
        finished: bool,
        damaged: Option<String>,
    },
}

/// Reads lines of one file from a position.
pub struct LineReader {
    path: PathBuf,
    /// A second handle on the same open file, for its size even after the
    /// path was renamed or deleted.
    handle: File,
    stream: Stream,
    position: u64,
    buffer_bytes: usize,
    skipping: Option<OversizedLine>,
}

impl LineReader {
    /// Opens `path` and positions it at `offset` (decompressed bytes).
    /// `buffer_bytes` bounds one chunk and the longest line kept whole.
    pub fn open(path: &Path, offset: u64, buffer_bytes: usize) -> std::io::Result<LineReader> {
        let file = File::open(path)?;
        let handle = file.try_clone()?;
        let stream = match FileFormat::of_path(path) {
            FileFormat::Plain => Stream::Plain(file),
            FileFormat::Gzip => Stream::Gzip {
                decoder: Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                    256 * 1024,
                    file,
                ))),
                carry: Vec::new(),
                finished: false,
                damaged: None,
            },
        };
        let mut reader = LineReader {
            path: path.to_path_buf(),
            handle,
            stream,
            position: 0,
            buffer_bytes: buffer_bytes.max(1024),
            skipping: None,
        };
        reader.skip_to(offset)?;
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The offset of the next line to be returned.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The size of the open (compressed) file now, even if its path is gone.
    pub fn file_len(&self) -> std::io::Result<u64> {
        self.handle.metadata().map(|meta| meta.len())
    }

    /// (device, inode) of the open file: which file this reader reads,
    /// whatever its path names by now.
    pub fn file_key(&self) -> std::io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = self.handle.metadata()?;
        Ok((meta.dev(), meta.ino()))
    }

    /// The first `length` bytes of the open plain file now (fewer if it is
    /// shorter), read through the handle: the inode being read, even after
    /// its path was renamed, deleted or replaced. `None` for a gzip, which is
    /// never rewritten in place.
    pub fn head(&self, length: u64) -> std::io::Result<Option<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        if let Stream::Gzip { .. } = self.stream {
            return Ok(None);
        }
        let mut buffer = vec![0u8; usize::try_from(length).unwrap_or(usize::MAX)];
        let mut filled = 0;
        while filled < buffer.len() {
            let read = self.handle.read_at(&mut buffer[filled..], filled as u64)?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        buffer.truncate(filled);
        Ok(Some(buffer))
    }

    fn skip_to(&mut self, offset: u64) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Plain(_) => {
                self.position = offset;
            }
            Stream::Gzip { decoder, .. } => {
                let skipped =
                    std::io::copy(&mut decoder.as_mut().take(offset), &mut std::io::sink())?;
                self.position = skipped;
                if skipped < offset {
                    // The file is shorter than the checkpoint: nothing to read.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} holds {skipped} bytes, fewer than the committed {offset}",
                            self.path.display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads the next run of whole lines, at most about `buffer_bytes`.
    /// `finished`: the file will not grow, so a last line without newline is
    /// a whole line.
    pub fn read_chunk(&mut self, finished: bool) -> std::io::Result<ReadOutcome> {
        let mut outcome = ReadOutcome::default();
        let mut window = self.fill_window()?;
        loop {
            if window.is_empty() {
                outcome.at_end = true;
                if let Some(line) = self.skipping.take() {
                    // The file ended inside an oversized line.
                    if finished {
                        outcome.oversized.push(line);
                    } else {
                        self.skipping = Some(line);
                    }
                }
                break;
            }
            if let Some(line) = &mut self.skipping {
                match memchr::memchr(b'\n', &window) {
                    Some(newline) => {
                        line.length += newline as u64 + 1;
                        self.consume(newline + 1);
                        if let Some(done) = self.skipping.take() {
                            outcome.oversized.push(done);
                        }
                    }
                    None => {
                        line.length += window.len() as u64;
                        let length = window.len();
                        self.consume(length);
                    }
                }
                window = self.fill_window()?;
                continue;
            }
            match memchr::memrchr(b'\n', &window) {
                Some(last_newline) => {
                    let data = window[..=last_newline].to_vec();
                    outcome.chunk = Some(LineChunk {
                        start: self.position,
                        data,
                    });
                    self.consume(last_newline + 1);
                    outcome.pending_partial = (window.len() - last_newline - 1) as u64;
                    break;
                }
                None if window.len() >= self.buffer_bytes => {
                    let prefix = window[..OVERSIZED_PREFIX_BYTES.min(window.len())].to_vec();
                    self.skipping = Some(OversizedLine {
                        offset: self.position,
                        length: window.len() as u64,
                        prefix,
                    });
                    let length = window.len();
                    self.consume(length);
                    window = self.fill_window()?;
                }
                None => {
                    let stream_done = match &self.stream {
                        Stream::Plain(_) => true,
                        Stream::Gzip { finished: done, .. } => *done,
                    };
                    if finished && stream_done {
                        outcome.chunk = Some(LineChunk {
                            start: self.position,
                            data: window.to_vec(),
                        });
                        let length = window.len();
                        self.consume(length);
                    } else {
                        outcome.pending_partial = window.len() as u64;
                    }
                    outcome.at_end = true;
                    break;
                }
            }
        }
        if let Stream::Gzip { damaged, .. } = &self.stream {
            outcome.damaged = damaged.clone();
        }
        Ok(outcome)
    }

    /// Bytes from `position` on, up to `buffer_bytes`.
    fn fill_window(&mut self) -> std::io::Result<Vec<u8>> {
        match &mut self.stream {
            Stream::Plain(file) => {
                use std::os::unix::fs::FileExt;
                let mut buffer = vec![0u8; self.buffer_bytes];
                let mut filled = 0;
                while filled < buffer.len() {
                    let read =
                        file.read_at(&mut buffer[filled..], self.position + filled as u64)?;
                    if read == 0 {
                        break;
                    }
                    filled += read;
                }
                buffer.truncate(filled);
                Ok(buffer)
            }
            Stream::Gzip {
                decoder,
                carry,
                finished,
                damaged,
            } => {
                while carry.len() < self.buffer_bytes && !*finished {
                    let start = carry.len();
                    carry.resize(self.buffer_bytes, 0);
                    match decoder.read(&mut carry[start..]) {
                        Ok(0) => {
                            carry.truncate(start);
                            *finished = true;
                        }
                        Ok(read) => carry.truncate(start + read),
                        Err(error) => {
                            carry.truncate(start);
                            *finished = true;
                            *damaged = Some(error.to_string());
                        }
                    }
                }
                Ok(carry.clone())
            }
        }
    }

    fn consume(&mut self, bytes: usize) {
        self.position += bytes as u64;
        if let Stream::Gzip { carry, .. } = &mut self.stream {
            carry.drain(..bytes.min(carry.len()));
        }
    }
}

/// Reads the first `limit` decompressed bytes of a file.
pub fn read_file_prefix(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    match FileFormat::of_path(path) {
        FileFormat::Plain => super::fingerprint::read_prefix(&mut BufReader::new(file), limit),
        FileFormat::Gzip => {
            let mut decoder = MultiGzDecoder::new(BufReader::new(file));
            let mut prefix = Vec::new();
            // A cut gzip still yields what it holds; the error is reported when
            // the file is read.
            let _ = (&mut decoder).take(limit).read_to_end(&mut prefix);
            Ok(prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).expect("write");
    }

    fn gzip(path: &Path, bytes: &[u8]) {
        let mut encoder = flate2::write::GzEncoder::new(
            File::create(path).expect("create"),
            flate2::Compression::fast(),
        );
        encoder.write_all(bytes).expect("compress");
        encoder.finish().expect("finish");
    }

    fn all_lines(
        path: &Path,
        offset: u64,
        buffer: usize,
        finished: bool,
    ) -> (Vec<u8>, Vec<OversizedLine>, u64) {
        let mut reader = LineReader::open(path, offset, buffer).expect("open");
        let mut data = Vec::new();
        let mut oversized = Vec::new();
        loop {
            let outcome = reader.read_chunk(finished).expect("read");
            // Oversized lines skipped in this read come before its chunk.
            oversized.extend(outcome.oversized);
            if let Some(chunk) = outcome.chunk {
                let skipped: u64 = oversized
                    .iter()
                    .map(|line: &OversizedLine| line.length)
                    .sum();
                assert_eq!(chunk.start, offset + data.len() as u64 + skipped);
                data.extend_from_slice(&chunk.data);
            }
            if outcome.at_end {
                return (data, oversized, outcome.pending_partial);
            }
        }
    }

    #[test]
    fn plain_and_gzip_agree_and_partial_lines_wait() {
        let directory = tempfile::tempdir().expect("tempdir");
        let plain = directory.path().join("audit.log");
        let packed = directory.path().join("audit.log.gz");
        let content = b"line one\nline two\nhalf a li";
        write(&plain, content);
        gzip(&packed, content);
        for path in [&plain, &packed] {
            let (data, oversized, pending) = all_lines(path, 0, 1024, false);
            assert_eq!(data, b"line one\nline two\n");
            assert!(oversized.is_empty());
            assert_eq!(pending, 9);
            let (data, _, _) = all_lines(path, 9, 1024, true);
            assert_eq!(data, b"line two\nhalf a li");
        }
    }

    #[test]
    fn oversized_lines_are_skipped_not_buffered() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("audit.log");
        let mut content = b"short\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 10_000));
        content.extend_from_slice(b"\nafter\n");
        write(&path, &content);
        let (data, oversized, _) = all_lines(&path, 0, 1024, false);
        assert_eq!(data, b"short\nafter\n");
        assert_eq!(oversized.len(), 1);
        assert_eq!(oversized[0].offset, 6);
        assert_eq!(oversized[0].length, 10_001);
    }

    #[test]
    fn head_reads_the_open_file_even_after_it_was_renamed_and_rewritten() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("audit.log");
        write(&path, b"first line\nsecond line\n");
        let reader = LineReader::open(&path, 0, 1024).expect("open");
        assert_eq!(reader.head(5).expect("head"), Some(b"first".to_vec()));
        let key = {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(&path).expect("stat");
            (meta.dev(), meta.ino())
        };
        assert_eq!(reader.file_key().expect("key"), key);
        // Renamed away, then cut and rewritten in place (copy-truncate).
        let moved = directory.path().join("audit-old.log");
        std::fs::rename(&path, &moved).expect("rename");
        std::fs::write(&moved, b"other").expect("rewrite");
        assert_eq!(reader.head(64).expect("head"), Some(b"other".to_vec()));
        let packed = directory.path().join("audit.log.gz");
        gzip(&packed, b"line\n");
        let reader = LineReader::open(&packed, 0, 1024).expect("open gz");
        assert_eq!(reader.head(4).expect("head"), None);
    }

    #[test]
    fn a_cut_gzip_yields_what_it_holds_and_says_so() {
        let directory = tempfile::tempdir().expect("tempdir");
        let whole = directory.path().join("whole.gz");
        let lines: Vec<u8> = (0..5000)
            .flat_map(|index| format!("line number {index}\n").into_bytes())
            .collect();
        gzip(&whole, &lines);
        let bytes = std::fs::read(&whole).expect("read");
        let cut = directory.path().join("cut.log.gz");
        write(&cut, &bytes[..bytes.len() / 2]);
        let mut reader = LineReader::open(&cut, 0, 1 << 20).expect("open");
        let mut data = Vec::new();
        let mut damaged = None;
        loop {
            let outcome = reader.read_chunk(false).expect("read");
            if let Some(chunk) = outcome.chunk {
                data.extend_from_slice(&chunk.data);
            }
            damaged = damaged.or(outcome.damaged);
            if outcome.at_end {
                break;
            }
        }
        assert!(damaged.is_some());
        assert!(!data.is_empty() && data.len() < lines.len());
        assert!(lines.starts_with(&data));
    }
}
