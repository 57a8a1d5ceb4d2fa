//! The feedback loop over gRPC: `TriageIncident` requests to verdicts and
//! outcomes back to messages. The service handler (`src/api/service.rs`) only
//! moves this onto a blocking thread.

use super::learning::ThresholdPolicy;
use super::suppression::Suppression;
use super::triage::{TriageOutcome, TriageState, Verdict, record_verdict};
use super::{FeedbackError, SharedClock, ThresholdChange, system_clock};
use crate::api::ApiError;
use crate::api::catalog::SharedCatalog;
use crate::api::proto;
use chrono::{DateTime, Utc};

/// What the API needs to record verdicts: the threshold bounds and the clock.
#[derive(Debug, Clone)]
pub struct FeedbackContext {
    pub policy: ThresholdPolicy,
    pub clock: SharedClock,
}

impl Default for FeedbackContext {
    fn default() -> FeedbackContext {
        FeedbackContext {
            policy: ThresholdPolicy::from_config(&super::FeedbackConfig::default()),
            clock: system_clock(),
        }
    }
}

impl From<FeedbackError> for ApiError {
    fn from(error: FeedbackError) -> ApiError {
        match error {
            FeedbackError::NotFound(_) => ApiError::NotFound(error.to_string()),
            FeedbackError::Invalid(_) => ApiError::InvalidArgument(error.to_string()),
            FeedbackError::Api(inner) => inner,
            other => ApiError::Catalog(other.to_string()),
        }
    }
}

fn timestamp(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    })
}

/// The proto state for a state.
pub fn state_to_proto(state: TriageState) -> proto::TriageState {
    match state {
        TriageState::Open => proto::TriageState::Open,
        TriageState::Acknowledged => proto::TriageState::Acknowledged,
        TriageState::ResolvedTruePositive => proto::TriageState::ResolvedTruePositive,
        TriageState::ResolvedBenign => proto::TriageState::ResolvedBenign,
    }
}

/// A `TriageIncidentRequest` as a verdict, or why it is not one.
pub fn verdict_from_request(
    request: &proto::TriageIncidentRequest,
) -> Result<Verdict, FeedbackError> {
    let state = match proto::TriageState::try_from(request.state) {
        Ok(proto::TriageState::Open) => TriageState::Open,
        Ok(proto::TriageState::Acknowledged) => TriageState::Acknowledged,
        Ok(proto::TriageState::ResolvedTruePositive) => TriageState::ResolvedTruePositive,
        Ok(proto::TriageState::ResolvedBenign) => TriageState::ResolvedBenign,
        Ok(proto::TriageState::Unspecified) | Err(_) => {
            return Err(FeedbackError::Invalid(format!(
                "state {} is not a triage state (OPEN, ACKNOWLEDGED, RESOLVED_TRUE_POSITIVE, RESOLVED_BENIGN)",
                request.state
            )));
        }
    };
    let text = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_string());
    let suppress_for = match request.suppress_days {
        0 => None,
        days if days <= 366 => Some(chrono::Duration::days(i64::from(days))),
        days => {
            return Err(FeedbackError::Invalid(format!(
                "suppress_days {days}: at most 366; a suppression must be renewed, not forgotten"
            )));
        }
    };
    Ok(Verdict {
        subject_id: request.id.trim().to_string(),
        state,
        reason: text(&request.reason),
        actor: request.actor.trim().to_string(),
        suppress_for,
        suppress_namespace: text(&request.suppress_namespace),
        suppress_source: text(&request.suppress_source),
    })
}

fn suppression_to_proto(suppression: &Suppression) -> proto::Suppression {
    proto::Suppression {
        id: suppression.id.clone(),
        detector: suppression.detector.clone(),
        identity_pattern: suppression.identity_pattern.clone(),
        namespace_pattern: suppression.namespace_pattern.clone().unwrap_or_default(),
        source_pattern: suppression.source_pattern.clone().unwrap_or_default(),
        reason: suppression.reason.clone(),
        owner: suppression.owner.clone(),
        created_at: timestamp(suppression.created_at),
        expires_at: timestamp(suppression.expires_at),
        origin: suppression.origin.clone(),
    }
}

fn change_to_proto(change: &ThresholdChange) -> proto::ThresholdChange {
    proto::ThresholdChange {
        id: change.id.clone(),
        detector: change.detector.clone(),
        identity: change.identity.clone(),
        old_min_score: change.old_min_score,
        new_min_score: change.new_min_score,
        bound: change.bound,
        benign_verdicts: change.benign_verdicts as i64,
        reason: change.reason.clone(),
        at: timestamp(change.at),
    }
}

/// An outcome as the RPC's response.
pub fn outcome_to_proto(outcome: &TriageOutcome) -> proto::TriageIncidentResponse {
    let event = &outcome.event;
    proto::TriageIncidentResponse {
        event: Some(proto::TriageEvent {
            seq: event.seq,
            subject_kind: event.subject_kind.as_str().to_string(),
            subject_id: event.subject_id.clone(),
            state: event.state.as_str().to_string(),
            reason: event.reason.clone().unwrap_or_default(),
            actor: event.actor.clone(),
            at: timestamp(event.at),
        }),
        identity: outcome.identity.clone(),
        suppressions: outcome
            .suppressions
            .iter()
            .map(suppression_to_proto)
            .collect(),
        threshold_changes: outcome
            .threshold_changes
            .iter()
            .map(change_to_proto)
            .collect(),
        held_back: outcome.held_back.clone(),
    }
}

/// Records a verdict on the daemon's catalog (blocking: call from a blocking thread).
pub fn triage(
    catalog: &SharedCatalog,
    verdict: &Verdict,
    context: &FeedbackContext,
) -> Result<proto::TriageIncidentResponse, ApiError> {
    let connection = {
        let guard = catalog
            .lock()
            .map_err(|_| ApiError::Catalog("the catalog lock is poisoned".into()))?;
        guard
            .try_clone()
            .map_err(|error| ApiError::Catalog(format!("opening a catalog connection: {error}")))?
    };
    let outcome = record_verdict(
        &connection,
        verdict,
        &context.policy,
        context.clock.as_ref(),
    )?;
    Ok(outcome_to_proto(&outcome))
}
