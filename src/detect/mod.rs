//! Detection: per-event rules, first-seen novelty, the anomaly record and
//! alert fan-out. Every layer writes the same [`Anomaly`], so storage, the API,
//! reports and evaluation treat a rule hit, a novelty and a model outlier alike.

mod anomaly;

pub use anomaly::{Anomaly, AnomalyKind, Severity, UnknownSeverity};
