//! The gRPC surface (`auditlens.v1.AuditLens`, health, reflection) and the
//! command-line client that talks to it.
//!
//! The one design decision: **the server holds no query state of its own.**
//! Every SQL request, the canned investigations and the identity profiles all
//! go through [`crate::store::query::QueryRunner`], which opens a fresh,
//! locked-down DuckDB per query; anomalies and incidents are read from the
//! daemon's catalog through a connection the daemon hands in. So the API can
//! be started alone (`auditlens api-serve`, the tests) or by the daemon
//! (`auditlens serve`) with the same [`serve`] call, and a hostile query can
//! at worst waste its own time and memory budget.
//!
//! Map: `server` (listening, TLS, the non-loopback rule, health, reflection),
//! `service` (the RPCs), `auth` (bearer tokens), `errors` (the single mapping
//! from errors to gRPC status codes), `catalog` (anomaly and incident reads),
//! `profile`, `files` (reports and models on disk), `status` (ingest status),
//! `client` + `output` + `shell` + `investigations` (the CLI), `cli` (clap
//! arguments and entry points for `main.rs`).

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod errors;
pub mod files;
pub mod investigations;
pub mod output;
pub mod profile;
pub mod server;
pub mod service;
pub mod shell;
pub mod status;

pub use errors::ApiError;
pub use server::{ApiConfig, ApiState, BoundServer, TlsFiles, bind, serve};
pub use status::{IngestFileStatus, IngestStatus, SharedIngestStatus};

/// The generated protobuf types, client and server of `auditlens.v1`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("auditlens.v1");

    /// The encoded file descriptor set of `auditlens.v1`, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/auditlens_descriptor.bin"));
}

/// The fully qualified service name, as reflection and health report it.
pub const SERVICE_NAME: &str = "auditlens.v1.AuditLens";
