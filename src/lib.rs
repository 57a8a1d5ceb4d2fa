//! auditlens: a Kubernetes audit-log daemon.
//!
//! It tails the API server's rotated audit logs, stores every event exactly once
//! as Hive-partitioned Parquet queried through embedded DuckDB, learns how each
//! identity normally behaves, flags what deviates, audits RBAC, and answers
//! investigations over gRPC. `main.rs` is only the command line; everything it
//! runs lives in these modules (see docs/ARCHITECTURE.md for the map).

pub mod alerts;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod detect;
pub mod feedback;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod rbac;
pub mod report;
pub mod simulate;
pub mod store;
#[cfg(test)]
mod test_support;
