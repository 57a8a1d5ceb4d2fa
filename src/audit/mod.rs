//! The `audit.k8s.io` Event model and identity classification.
//!
//! One JSON line of a kube-apiserver audit log becomes one [`EventView`], which
//! borrows its strings from the line (what storage needs), or one [`AuditEvent`],
//! which owns them (what detection keeps). The
//! model accepts `audit.k8s.io/v1` and `v1beta1` (and the old logs that carry a
//! top-level `timestamp` instead of `requestReceivedTimestamp`), and rejects
//! anything else with a [`DecodeError`] that says why, so the caller can
//! quarantine the line instead of guessing. Request and response objects are
//! kept as raw JSON (`serde_json::value::RawValue`): they are only stored for the
//! resource kinds the config names, and parsing them eagerly would dominate the
//! decode cost.
//!
//! Identity is classified once here ([`Identity`]), so every later stage (store
//! columns, rules, novelty, models, RBAC usage) agrees on who did what.

mod event;
mod identity;
mod timestamp;

pub use event::{
    AuditEvent, DecodeError, EventText, EventView, LineText, ObjectReference, ResponseStatus,
    UserInfo,
};
pub use identity::{Identity, IdentityKind};
pub use timestamp::{format_rfc3339_micros, parse_rfc3339_micros};
