//! The auditlens modules under fuzzing, compiled from the main crate's own
//! source files with `#[path]`, so the fuzz build never links DuckDB.
//!
//! Only modules that need nothing outside themselves are included: the audit
//! line decoder, the ingest reader (with the fingerprint helpers it uses), the
//! config loader (with the `[alerts]`, `[report]` and `[feedback]` sections it
//! composes),
//! the RBAC snapshot loader and guard handler (with the authorizer, risk
//! checks and anomaly record they use, see `rbac.rs`) and the query statement
//! guard's parse-tree judge (the only file of `crate::store` here). A module
//! reaching further (DuckDB, the catalog, the HTTP servers) would not compile
//! here, which is how this file notices a boundary change. Where a module's
//! error type has DuckDB variants, a stand-in with the variants used is here.
#![allow(dead_code, unused_imports)]

#[path = "../../src/audit/mod.rs"]
pub mod audit;

#[path = "../../src/config.rs"]
pub mod config;

pub mod alerts;
pub mod detect;
pub mod feedback;
pub mod ingest;
pub mod rbac;
pub mod report;
pub mod store;
