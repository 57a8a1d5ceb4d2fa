//! The pure half of the query statement check (the judge of DuckDB's parse
//! tree), from the main crate's file; the DuckDB half cannot be linked here.

#[path = "../../src/store/statement_guard.rs"]
pub mod statement_guard;
