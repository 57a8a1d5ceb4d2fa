//! The ingest reader and the fingerprint helpers it uses (`super::fingerprint`),
//! from the main crate's files.

#[path = "../../src/ingest/fingerprint.rs"]
pub mod fingerprint;
#[path = "../../src/ingest/reader.rs"]
pub mod reader;
