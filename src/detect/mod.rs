//! Detection: per-event rules, first-seen novelty, the anomaly record,
//! incidents and the anomaly store. Every layer writes the same [`Anomaly`], so
//! storage, the API, reports and evaluation treat a rule hit, a novelty and a
//! model outlier alike.
//!
//! The one thing to know: live and batch detection are the same code. The
//! daemon feeds each decoded event to [`LiveDetector::observe`]; `auditlens
//! detect` replays stored history through the very same call
//! ([`history::replay`]), after rebuilding the novelty index from everything
//! before `--since`. Window-level detectors (the clustering models of
//! `src/model`) plug in through [`history::WindowDetector`].
//!
//! | module | owns |
//! |---|---|
//! | [`rules`] | the rule catalogue and the stateful [`RuleSet`] |
//! | [`novelty`] | the per-identity first-seen [`NoveltyIndex`] |
//! | [`live`] | [`LiveDetector`]: rules + novelty per event, per cluster |
//! | [`stages`] | counting each request once (final stage) |
//! | [`allowlist`] | identity patterns of built-in controllers and automation |
//! | [`incidents`] | grouping anomalies of one identity into incidents |
//! | [`store`] | the catalog's `anomalies` and `incidents` tables |
//! | [`history`] | replaying stored events in time order |
//! | [`eval`] | scoring against labeled attacks |
//! | [`command`] | `auditlens detect` and `auditlens eval` |

mod anomaly;

pub mod allowlist;
pub mod command;
pub mod eval;
pub mod history;
pub mod incidents;
pub mod live;
pub mod novelty;
pub mod rules;
pub mod stages;
pub mod store;

pub use anomaly::{
    Anomaly, AnomalyKind, Severity, UnknownSeverity, datetime_from_micros, stable_anomaly_id,
};
pub use command::{DetectArgs, EvalArgs, run_detect, run_eval};
pub use incidents::{Incident, IncidentGrouper};
pub use live::{DetectorOptions, LiveDetector};
pub use novelty::{NoveltyIndex, NoveltyOptions};
pub use rules::{RuleOptions, RuleSet};
pub use store::AnomalyStore;
