//! auditlens: a Kubernetes audit-log daemon.
//!
//! It tails the API server's rotated audit logs, stores every event exactly once
//! as Hive-partitioned Parquet queried through embedded DuckDB, learns how each
//! identity normally behaves, flags what deviates, audits RBAC, and answers
//! investigations over gRPC. `main.rs` is only the command line; everything it
//! runs lives in these modules (see docs/ARCHITECTURE.md for the map).

pub mod audit;
pub mod cli;
pub mod detect;
pub mod model;
pub mod store;
