//! File identity: the checksum of a file's first line, confirmed by a longer prefix.
//!
//! kube-apiserver renames its live file on rotation and may gzip the backup
//! into a new inode, so neither path nor inode identifies an audit file. The
//! first line does: it is written once, before rotation, and survives rename
//! and compression (we hash the *decompressed* line). Two different files can
//! still share a first line (test fixtures, a copy), so a match is confirmed by
//! the checksum of a longer prefix recorded at commit time ([`PrefixCheck`]).

use std::io::Read;

/// The most bytes of a file's prefix used to confirm a fingerprint match.
pub const CONFIRM_PREFIX_LIMIT: u64 = 64 * 1024;

/// The checksum of a file's first line (including its newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    pub fn of_first_line(line_with_newline: &[u8]) -> Fingerprint {
        Fingerprint(xxhash_rust::xxh3::xxh3_64(line_with_newline))
    }

    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The checksum of a file's first `length` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrefixCheck {
    pub length: u64,
    pub hash: u64,
}

impl PrefixCheck {
    pub fn of(prefix: &[u8]) -> PrefixCheck {
        PrefixCheck {
            length: prefix.len() as u64,
            hash: xxhash_rust::xxh3::xxh3_64(prefix),
        }
    }
}

/// Reads up to `limit` bytes from the start of a (decompressed) stream.
pub fn read_prefix(reader: &mut dyn Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut prefix = Vec::new();
    reader.take(limit).read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// The first line of `prefix` including its newline, if it is complete.
pub fn first_line(prefix: &[u8]) -> Option<&[u8]> {
    memchr::memchr(b'\n', prefix).map(|end| &prefix[..=end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_needs_its_newline() {
        assert_eq!(
            first_line(b"{\"a\":1}\n{\"b\":2}"),
            Some(&b"{\"a\":1}\n"[..])
        );
        assert_eq!(first_line(b"{\"a\":1}"), None);
        assert_ne!(
            Fingerprint::of_first_line(b"a\n"),
            Fingerprint::of_first_line(b"b\n")
        );
    }
}
