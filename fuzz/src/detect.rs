//! The anomaly record the guard reports denials as (`crate::detect` in the
//! main crate), from the main crate's file.

#[path = "../../src/detect/anomaly.rs"]
mod anomaly;

pub use anomaly::{Anomaly, AnomalyKind, Severity};
