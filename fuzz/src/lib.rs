//! The auditlens modules under fuzzing, compiled from the main crate's own
//! source files with `#[path]`, so the fuzz build never links DuckDB.
//!
//! Only modules that need nothing outside themselves are included: the audit
//! line decoder, the ingest reader (with the fingerprint helpers it uses) and
//! the config loader. A module reaching into `crate::store` would not compile
//! here, which is how this file notices a boundary change.
#![allow(dead_code, unused_imports)]

#[path = "../../src/audit/mod.rs"]
pub mod audit;

#[path = "../../src/config.rs"]
pub mod config;

pub mod ingest;
