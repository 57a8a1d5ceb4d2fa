//! Counting a request once: which stage of an audit event detection looks at.
//!
//! The API server logs one request as up to four events sharing an audit ID
//! (RequestReceived, ResponseStarted for long-running requests, ResponseComplete,
//! Panic). Detection looks at the *final* stage it can see: ResponseComplete
//! (or Panic) for ordinary requests, and ResponseStarted for long-running ones
//! (exec, attach, port-forward, watch), whose ResponseComplete may arrive hours
//! later when the stream closes. A request evaluated on ResponseStarted is
//! remembered so its later ResponseComplete is skipped. The memory is a
//! fixed-capacity FIFO: once it is full the oldest audit ID is forgotten, so a
//! stream that outlives `capacity` newer long-running requests may be counted a
//! second time when it completes; that is the price of bounded memory.

use crate::audit::AuditEvent;
use std::collections::{HashSet, VecDeque};

/// Decides, event by event, whether this is the stage detection should look at.
#[derive(Debug)]
pub struct FinalStageFilter {
    started: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Default for FinalStageFilter {
    fn default() -> Self {
        FinalStageFilter::with_capacity(100_000)
    }
}

impl FinalStageFilter {
    pub fn with_capacity(capacity: usize) -> FinalStageFilter {
        FinalStageFilter {
            started: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `event` is the one stage of its request detection should see.
    pub fn is_final(&mut self, event: &AuditEvent) -> bool {
        match event.stage.as_str() {
            "ResponseStarted" => {
                if self.started.contains(&event.audit_id) {
                    return false;
                }
                if self.order.len() >= self.capacity
                    && let Some(oldest) = self.order.pop_front()
                {
                    self.started.remove(&oldest);
                }
                self.started.insert(event.audit_id.clone());
                self.order.push_back(event.audit_id.clone());
                true
            }
            // A completed or panicked request is final unless its
            // ResponseStarted was already counted.
            "ResponseComplete" | "Panic" => !self.started.contains(&event.audit_id),
            _ => false,
        }
    }

    /// How many long-running requests are remembered.
    pub fn remembered(&self) -> usize {
        self.started.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(audit_id: &str, stage: &str) -> AuditEvent {
        let line = format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{audit_id}","stage":"{stage}","verb":"create","user":{{"username":"u"}},"requestReceivedTimestamp":"2026-11-27T09:00:00Z"}}"#
        );
        AuditEvent::decode(line.as_bytes()).expect("valid test event")
    }

    #[test]
    fn each_request_is_seen_once() {
        let mut filter = FinalStageFilter::default();
        assert!(!filter.is_final(&event("a", "RequestReceived")));
        assert!(filter.is_final(&event("a", "ResponseComplete")));
        assert!(!filter.is_final(&event("b", "RequestReceived")));
        assert!(filter.is_final(&event("b", "ResponseStarted")));
        assert!(!filter.is_final(&event("b", "ResponseStarted")));
        assert!(!filter.is_final(&event("b", "ResponseComplete")));
        assert!(filter.is_final(&event("c", "Panic")));
    }

    #[test]
    fn memory_is_bounded() {
        let mut filter = FinalStageFilter::with_capacity(2);
        for id in ["a", "b", "c"] {
            assert!(filter.is_final(&event(id, "ResponseStarted")));
        }
        assert_eq!(filter.remembered(), 2);
        // "a" was forgotten, so its completion counts again: documented trade-off.
        assert!(filter.is_final(&event("a", "ResponseComplete")));
        assert!(!filter.is_final(&event("c", "ResponseComplete")));
    }
}
