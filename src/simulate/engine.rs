//! The simulation engine: turns calls into authorized requests, requests into
//! the stage events the API server writes, and advances simulated time window
//! by window.
//!
//! Design: every request is decided (authorized, given a status code and
//! latency) the moment it is issued, and its stage events (RequestReceived,
//! ResponseStarted, ResponseComplete) wait in a pending list keyed by their
//! stage timestamp. A window is written when simulated time passes its end, in
//! stage-timestamp order, exactly as the API server appends to its log; long
//! requests (watches, exec sessions) complete windows later.

use super::cluster::Cluster;
use super::json::{self, push_escaped, push_micro_time, push_string, push_u64};
use super::rbac::{Attributes, Binding, RbacState, Role, Target};
use super::resources::{self, ResourceType};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;

/// Audit level of one request, as the simulated audit policy assigns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

/// A change to RBAC that takes effect if the request making it is allowed.
#[derive(Debug, Clone)]
pub(crate) enum RbacEffect {
    PutRole(Role),
    PutBinding(Binding),
}

/// What a call is about.
#[derive(Debug, Clone)]
pub(crate) enum CallTarget {
    Resource {
        resource: &'static ResourceType,
        subresource: Option<&'static str>,
        namespace: Option<Rc<str>>,
        name: Option<String>,
    },
    NonResource(String),
}

/// One API call an identity makes; the engine decides its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub actor: usize,
    pub verb: &'static str,
    pub target: CallTarget,
    /// The query string including its `?`, or empty.
    pub query: String,
    pub source_ip: Option<Rc<str>>,
    pub user_agent: Option<Rc<str>>,
    pub impersonate: Option<usize>,
    pub request_object: Option<Value>,
    pub response_object: Option<Value>,
    /// Long-running calls (watch, exec, port-forward) last this long and get a
    /// ResponseStarted stage.
    pub duration_us: Option<i64>,
    /// The object does not exist: 404 NotFound.
    pub missing: bool,
    /// An optimistic-concurrency loss: 409 Conflict.
    pub conflict: bool,
    pub label: Option<usize>,
    pub rbac_effect: Option<RbacEffect>,
    /// Extra annotations, pre-rendered as `,"key":"value"` pairs.
    pub extra_annotations: Option<&'static str>,
}

impl Call {
    pub(crate) fn resource(
        actor: usize,
        verb: &'static str,
        resource: &'static ResourceType,
    ) -> Call {
        Call {
            actor,
            verb,
            target: CallTarget::Resource {
                resource,
                subresource: None,
                namespace: None,
                name: None,
            },
            query: String::new(),
            source_ip: None,
            user_agent: None,
            impersonate: None,
            request_object: None,
            response_object: None,
            duration_us: None,
            missing: false,
            conflict: false,
            label: None,
            rbac_effect: None,
            extra_annotations: None,
        }
    }

    pub(crate) fn path(actor: usize, path: &str) -> Call {
        Call {
            target: CallTarget::NonResource(path.to_string()),
            ..Call::resource(actor, "get", resources::NAMESPACES)
        }
    }

    pub(crate) fn namespace(mut self, value: &Rc<str>) -> Call {
        if let CallTarget::Resource { namespace, .. } = &mut self.target {
            *namespace = Some(value.clone());
        }
        self
    }

    pub(crate) fn name(mut self, value: impl Into<String>) -> Call {
        if let CallTarget::Resource { name, .. } = &mut self.target {
            *name = Some(value.into());
        }
        self
    }

    pub(crate) fn subresource(mut self, value: &'static str) -> Call {
        if let CallTarget::Resource { subresource, .. } = &mut self.target {
            *subresource = Some(value);
        }
        self
    }

    pub(crate) fn query(mut self, value: impl Into<String>) -> Call {
        self.query = value.into();
        self
    }

    pub(crate) fn via_ip(mut self, ip: &Rc<str>) -> Call {
        self.source_ip = Some(ip.clone());
        self
    }

    pub(crate) fn agent(mut self, agent: &Rc<str>) -> Call {
        self.user_agent = Some(agent.clone());
        self
    }

    pub(crate) fn lasting(mut self, micros: i64) -> Call {
        self.duration_us = Some(micros);
        self
    }

    pub(crate) fn objects(mut self, request: Option<Value>, response: Option<Value>) -> Call {
        self.request_object = request;
        self.response_object = response;
        self
    }

    pub(crate) fn labeled(mut self, label: Option<usize>) -> Call {
        self.label = label;
        self
    }
}

/// A decided request, shared by its stage events.
struct Request {
    ts: i64,
    audit_id: [u8; 36],
    actor: usize,
    impersonated: Option<usize>,
    verb: &'static str,
    uri: String,
    source_ip: Rc<str>,
    user_agent: Rc<str>,
    target: CallTarget,
    level: Level,
    code: u16,
    /// `None`: denied; `Some(reason)`: allowed (reason may be empty).
    reason: Option<Rc<str>>,
    failure: Option<(&'static str, String)>,
    request_object: Option<String>,
    response_object: Option<String>,
    extra_annotations: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
}

struct StageRecord {
    ts: i64,
    sequence: u64,
    stage: Stage,
    request: Rc<Request>,
}

/// A call scheduled for a future instant (scenario steps, controller cascades).
struct Scheduled {
    ts: i64,
    sequence: u64,
    call: Call,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.sequence) == (other.ts, other.sequence)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.sequence).cmp(&(other.ts, other.sequence))
    }
}

/// One labeled attack or benign rarity, as written to `labels.jsonl` / `benign.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    pub scenario: String,
    pub identity: String,
    pub start: String,
    pub end: String,
    pub audit_ids: Vec<String>,
    pub severity: String,
    pub description: String,
}

pub(crate) struct LabelState {
    pub scenario: &'static str,
    pub identity: String,
    pub start: i64,
    pub end: i64,
    pub audit_ids: Vec<String>,
    pub severity: &'static str,
    pub description: String,
    pub benign: bool,
}

/// Counters of what was written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub events: u64,
    pub human_events: u64,
    pub machine_events: u64,
}

/// Receives rendered lines in order.
pub(crate) trait LineSink {
    fn write_line(&mut self, line: &[u8], stage_ts: i64) -> Result<(), super::SimulateError>;
}

/// Counts lines without keeping them (rate calibration).
pub(crate) struct CountingSink;

impl LineSink for CountingSink {
    fn write_line(&mut self, _line: &[u8], _stage_ts: i64) -> Result<(), super::SimulateError> {
        Ok(())
    }
}

pub(crate) struct Engine {
    pub rng: ChaCha8Rng,
    pub cluster: Cluster,
    pub rbac: RbacState,
    pub now: i64,
    /// Where the simulated period starts.
    pub start: i64,
    /// Whether lines are rendered (false for rate calibration, which only counts).
    pub render_lines: bool,
    pub resource_version: u64,
    pub labels: Vec<LabelState>,
    pub counts: Counts,
    omit_request_received: bool,
    omit_response_started: bool,
    pending: Vec<StageRecord>,
    scheduled: BinaryHeap<Reverse<Scheduled>>,
    sequence: u64,
    authorization_cache: HashMap<String, Option<Rc<str>>>,
    cache_key: String,
    line: Vec<u8>,
    /// Set when RBAC changed: cached decisions are dropped.
    rbac_generation: u64,
    cached_generation: u64,
}

impl Engine {
    pub(crate) fn new(
        rng: ChaCha8Rng,
        cluster: Cluster,
        rbac: RbacState,
        start: i64,
        omit_stages: &[String],
    ) -> Engine {
        Engine {
            rng,
            cluster,
            rbac,
            now: start,
            start,
            render_lines: true,
            resource_version: 8_000_000,
            labels: Vec::new(),
            counts: Counts::default(),
            omit_request_received: omit_stages.iter().any(|stage| stage == "RequestReceived"),
            omit_response_started: omit_stages.iter().any(|stage| stage == "ResponseStarted"),
            pending: Vec::with_capacity(65_536),
            scheduled: BinaryHeap::new(),
            sequence: 0,
            authorization_cache: HashMap::new(),
            cache_key: String::with_capacity(256),
            line: Vec::with_capacity(16_384),
            rbac_generation: 0,
            cached_generation: 0,
        }
    }

    pub(crate) fn next_resource_version(&mut self) -> u64 {
        self.resource_version += self.rng.random_range(1..40);
        self.resource_version
    }

    /// Schedules a call for `ts` (it is issued when simulated time reaches it).
    pub(crate) fn schedule(&mut self, ts: i64, call: Call) {
        self.sequence += 1;
        self.scheduled.push(Reverse(Scheduled {
            ts,
            sequence: self.sequence,
            call,
        }));
    }

    pub(crate) fn new_label(
        &mut self,
        scenario: &'static str,
        identity: &str,
        severity: &'static str,
        description: String,
        benign: bool,
    ) -> usize {
        self.labels.push(LabelState {
            scenario,
            identity: identity.to_string(),
            start: i64::MAX,
            end: i64::MIN,
            audit_ids: Vec::new(),
            severity,
            description,
            benign,
        });
        self.labels.len() - 1
    }

    /// Issues scheduled calls up to `until` (exclusive).
    pub(crate) fn issue_scheduled(&mut self, until: i64) {
        while let Some(Reverse(next)) = self.scheduled.peek() {
            if next.ts >= until {
                break;
            }
            let Some(Reverse(scheduled)) = self.scheduled.pop() else {
                break;
            };
            self.issue(scheduled.ts, scheduled.call);
        }
    }

    /// Decides a call made at `ts` and queues its stage events. Returns whether
    /// it was allowed.
    pub(crate) fn issue(&mut self, ts: i64, call: Call) -> bool {
        let effective = call.impersonate.unwrap_or(call.actor);
        let mut reason = self.authorize(effective, &call);
        if reason.is_none() && call.impersonate.is_none() && self.grow_role(effective, &call) {
            reason = self.authorize(effective, &call);
        }
        let allowed = reason.is_some();
        let (resource, subresource, namespace, name) = match &call.target {
            CallTarget::Resource {
                resource,
                subresource,
                namespace,
                name,
            } => (
                Some(*resource),
                *subresource,
                namespace.as_deref(),
                name.as_deref(),
            ),
            CallTarget::NonResource(_) => (None, None, None, None),
        };
        let long_running = call.duration_us.is_some() && allowed;
        let (code, failure) = if !allowed {
            (
                403,
                Some(("Forbidden", self.forbidden_message(effective, &call))),
            )
        } else if call.missing {
            let kind = resource.map(|resource| resource.name).unwrap_or("");
            let message = match (resource, name) {
                (Some(resource), Some(name)) if resource.group.is_empty() => {
                    format!("{kind} \"{name}\" not found")
                }
                (Some(resource), Some(name)) => {
                    format!("{kind}.{} \"{name}\" not found", resource.group)
                }
                _ => "the server could not find the requested resource".to_string(),
            };
            (404, Some(("NotFound", message)))
        } else if call.conflict {
            let message = match (resource, name) {
                (Some(resource), Some(name)) => format!(
                    "Operation cannot be fulfilled on {}{}{} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    resource.name,
                    if resource.group.is_empty() { "" } else { "." },
                    resource.group
                ),
                _ => "conflict".to_string(),
            };
            (409, Some(("Conflict", message)))
        } else if matches!(subresource, Some("exec" | "attach" | "portforward")) {
            (101, None)
        } else if call.verb == "create" {
            (201, None)
        } else {
            (200, None)
        };
        if allowed
            && code < 300
            && let Some(effect) = &call.rbac_effect
        {
            match effect.clone() {
                RbacEffect::PutRole(role) => self.rbac.put_role(role),
                RbacEffect::PutBinding(binding) => self.rbac.put_binding(binding),
            }
            self.rbac_generation += 1;
        }
        let level = audit_level(call.verb, resource, subresource, namespace);
        let succeeded = code < 300;
        let render = |object: &Option<Value>| -> Option<String> {
            if level == Level::Metadata {
                return None;
            }
            object
                .as_ref()
                .and_then(|value| serde_json::to_string(value).ok())
        };
        let request_object = if level == Level::Metadata {
            None
        } else {
            render(&call.request_object)
        };
        let response_object = if level == Level::RequestResponse && succeeded {
            render(&call.response_object)
        } else {
            None
        };
        let uri = match &call.target {
            CallTarget::Resource {
                resource,
                subresource,
                namespace,
                name,
            } => {
                let mut uri = resources::path(
                    resource,
                    namespace.as_deref(),
                    name.as_deref(),
                    *subresource,
                );
                uri.push_str(&call.query);
                uri
            }
            CallTarget::NonResource(path) => format!("{path}{}", call.query),
        };
        let identity = &self.cluster.identities[call.actor];
        let source_ip = call.source_ip.clone().unwrap_or_else(|| {
            let ips = &identity.source_ips;
            ips[self.rng.random_range(0..ips.len())].clone()
        });
        let user_agent = call
            .user_agent
            .clone()
            .unwrap_or_else(|| identity.user_agent.clone());
        let latency = request_latency(&mut self.rng, call.verb, resource.is_none(), code);
        let audit_id = json::uuid(&mut self.rng);
        if let Some(label) = call.label {
            let label = &mut self.labels[label];
            label
                .audit_ids
                .push(String::from_utf8_lossy(&audit_id).into_owned());
            label.start = label.start.min(ts);
        }
        let request = Rc::new(Request {
            ts,
            audit_id,
            actor: call.actor,
            impersonated: call.impersonate,
            verb: call.verb,
            uri,
            source_ip,
            user_agent,
            target: call.target,
            level,
            code,
            reason,
            failure,
            request_object,
            response_object,
            extra_annotations: call.extra_annotations,
        });
        let end = if long_running {
            let started = ts + latency;
            if !self.omit_response_started {
                self.push_stage(started, Stage::ResponseStarted, &request);
            }
            started + call.duration_us.unwrap_or(0)
        } else {
            ts + latency
        };
        if !self.omit_request_received {
            let received = ts + self.rng.random_range(3..40);
            self.push_stage(received, Stage::RequestReceived, &request);
        }
        self.push_stage(end, Stage::ResponseComplete, &request);
        if let Some(label) = call.label {
            let label = &mut self.labels[label];
            label.end = label.end.max(end);
        }
        allowed
    }

    /// Grows the actor's derived role to cover a benign call (never an attack's).
    fn grow_role(&mut self, actor: usize, call: &Call) -> bool {
        let benign = call.label.is_none_or(|label| self.labels[label].benign);
        let Some(role_index) = self.cluster.identities[actor].derived_role else {
            return false;
        };
        if !benign {
            return false;
        }
        let derived = &mut self.cluster.derived_roles[role_index];
        if !derived.grant(call.verb, &call.target) {
            return false;
        }
        let existing = self
            .rbac
            .roles
            .iter()
            .chain(self.rbac.cluster_roles.iter())
            .find(|role| role.name == derived.name && role.namespace == derived.namespace);
        let (created, uid, bootstrap) = match existing {
            Some(role) => (role.created, role.uid.clone(), role.bootstrap),
            None => (self.cluster.created, String::new(), false),
        };
        let role = derived.to_role(created, &uid, 300, bootstrap);
        self.rbac.put_role(role);
        self.rbac_generation += 1;
        true
    }

    fn push_stage(&mut self, ts: i64, stage: Stage, request: &Rc<Request>) {
        self.sequence += 1;
        self.pending.push(StageRecord {
            ts,
            sequence: self.sequence,
            stage,
            request: request.clone(),
        });
    }

    fn authorize(&mut self, effective: usize, call: &Call) -> Option<Rc<str>> {
        if self.cached_generation != self.rbac_generation {
            self.authorization_cache.clear();
            self.cached_generation = self.rbac_generation;
        }
        let identity = &self.cluster.identities[effective];
        if identity
            .groups
            .iter()
            .any(|group| group == RbacState::PRIVILEGED_GROUP)
        {
            return Some(Rc::from(""));
        }
        let key = &mut self.cache_key;
        key.clear();
        key.push_str(&effective.to_string());
        key.push('|');
        key.push_str(call.verb);
        let target = match &call.target {
            CallTarget::Resource {
                resource,
                subresource,
                namespace,
                name,
            } => {
                key.push('|');
                key.push_str(resource.group);
                key.push('|');
                key.push_str(resource.name);
                key.push('|');
                key.push_str(subresource.unwrap_or(""));
                key.push('|');
                key.push_str(namespace.as_deref().unwrap_or(""));
                key.push('|');
                key.push_str(name.as_deref().unwrap_or(""));
                Target::Resource {
                    api_group: resource.group,
                    resource: resource.name,
                    subresource: *subresource,
                    namespace: namespace.as_deref().filter(|_| resource.namespaced),
                    name: name.as_deref(),
                }
            }
            CallTarget::NonResource(path) => {
                key.push_str("|path|");
                key.push_str(path);
                Target::NonResource(path)
            }
        };
        if let Some(cached) = self.authorization_cache.get(key.as_str()) {
            return cached.clone();
        }
        let decision = self
            .rbac
            .authorize(&Attributes {
                username: &identity.username,
                groups: &identity.groups,
                verb: call.verb,
                target,
            })
            .map(|reason| Rc::from(reason.as_str()));
        self.authorization_cache
            .insert(key.clone(), decision.clone());
        decision
    }

    fn forbidden_message(&self, effective: usize, call: &Call) -> String {
        let username = &self.cluster.identities[effective].username;
        match &call.target {
            CallTarget::Resource {
                resource,
                subresource,
                namespace,
                name,
            } => {
                let full = match subresource {
                    Some(sub) => format!("{}/{sub}", resource.name),
                    None => resource.name.to_string(),
                };
                let qualified = if resource.group.is_empty() {
                    resource.name.to_string()
                } else {
                    format!("{}.{}", resource.name, resource.group)
                };
                let subject = match name {
                    Some(name) => format!("{qualified} \"{name}\""),
                    None => qualified,
                };
                let scope = match namespace.as_deref().filter(|_| resource.namespaced) {
                    Some(namespace) => format!("in the namespace \"{namespace}\""),
                    None => "at the cluster scope".to_string(),
                };
                format!(
                    "{subject} is forbidden: User \"{username}\" cannot {} resource \"{full}\" in API group \"{}\" {scope}",
                    call.verb, resource.group
                )
            }
            CallTarget::NonResource(path) => {
                format!(
                    "forbidden: User \"{username}\" cannot {} path \"{path}\"",
                    call.verb
                )
            }
        }
    }

    /// Writes, in order, every stage event with a timestamp before `until`.
    pub(crate) fn flush_until(
        &mut self,
        until: i64,
        sink: &mut dyn LineSink,
    ) -> Result<(), super::SimulateError> {
        self.pending
            .sort_unstable_by_key(|record| (record.ts, record.sequence));
        let ready = self.pending.partition_point(|record| record.ts < until);
        let mut line = std::mem::take(&mut self.line);
        let mut result = Ok(());
        for record in self.pending.drain(..ready) {
            line.clear();
            if self.render_lines {
                render(&mut line, &record, &self.cluster);
                line.push(b'\n');
            }
            self.counts.events += 1;
            if self.cluster.identities[record.request.actor].human {
                self.counts.human_events += 1;
            } else {
                self.counts.machine_events += 1;
            }
            if result.is_ok() {
                result = sink.write_line(&line, record.ts);
            }
        }
        self.line = line;
        result
    }

    /// Writes everything still pending (end of the run).
    pub(crate) fn flush_all(
        &mut self,
        sink: &mut dyn LineSink,
    ) -> Result<(), super::SimulateError> {
        self.flush_until(i64::MAX, sink)
    }

    pub(crate) fn finished_labels(&self) -> (Vec<Label>, Vec<Label>) {
        let mut attacks = Vec::new();
        let mut benign = Vec::new();
        for label in &self.labels {
            if label.audit_ids.is_empty() {
                continue;
            }
            let record = Label {
                scenario: label.scenario.to_string(),
                identity: label.identity.clone(),
                start: json::rfc3339_micros(label.start),
                end: json::rfc3339_micros(label.end),
                audit_ids: label.audit_ids.clone(),
                severity: label.severity.to_string(),
                description: label.description.clone(),
            };
            if label.benign {
                benign.push(record);
            } else {
                attacks.push(record);
            }
        }
        attacks.sort_by(|left, right| left.start.cmp(&right.start));
        benign.sort_by(|left, right| left.start.cmp(&right.start));
        (attacks, benign)
    }
}

/// The simulated audit policy: RBAC objects, admission webhooks, pods and
/// critical configuration writes at RequestResponse; everything else
/// (including all secret access) at Metadata.
fn audit_level(
    verb: &str,
    resource: Option<&ResourceType>,
    subresource: Option<&str>,
    namespace: Option<&str>,
) -> Level {
    let Some(resource) = resource else {
        return Level::Metadata;
    };
    let write = matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    );
    if !write {
        return Level::Metadata;
    }
    match (resource.group, resource.name, subresource) {
        ("rbac.authorization.k8s.io", _, _)
        | ("admissionregistration.k8s.io", _, _)
        | ("apiextensions.k8s.io", "customresourcedefinitions", None)
        | ("certificates.k8s.io", _, _)
        | ("", "pods", None) => Level::RequestResponse,
        ("", "configmaps", None) if namespace == Some("kube-system") => Level::RequestResponse,
        ("", "serviceaccounts", Some("token")) => Level::Metadata,
        ("", "pods", Some("binding" | "eviction")) => Level::Request,
        _ => Level::Metadata,
    }
}

fn request_latency(rng: &mut ChaCha8Rng, verb: &str, non_resource: bool, code: u16) -> i64 {
    let (low, high) = if code == 403 {
        (300, 1_500)
    } else if non_resource {
        (200, 2_000)
    } else {
        match verb {
            "get" => (600, 6_000),
            "list" => (2_000, 40_000),
            "watch" => (400, 3_000),
            "create" | "update" | "patch" => (2_500, 18_000),
            "delete" | "deletecollection" => (3_000, 25_000),
            _ => (1_000, 8_000),
        }
    };
    // A long tail: one request in fifty is several times slower.
    let base = rng.random_range(low..high);
    if rng.random_range(0..50) == 0 {
        base * 6
    } else {
        base
    }
}

fn render(buffer: &mut Vec<u8>, record: &StageRecord, cluster: &Cluster) {
    let request = &record.request;
    let final_stage = record.stage != Stage::RequestReceived;
    buffer
        .extend_from_slice(b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"");
    buffer.extend_from_slice(request.level.as_str().as_bytes());
    buffer.extend_from_slice(b"\",\"auditID\":\"");
    buffer.extend_from_slice(&request.audit_id);
    buffer.extend_from_slice(b"\",\"stage\":\"");
    buffer.extend_from_slice(match record.stage {
        Stage::RequestReceived => b"RequestReceived",
        Stage::ResponseStarted => b"ResponseStarted",
        Stage::ResponseComplete => b"ResponseComplete",
    });
    buffer.extend_from_slice(b"\",\"requestURI\":");
    push_string(buffer, &request.uri);
    buffer.extend_from_slice(b",\"verb\":\"");
    buffer.extend_from_slice(request.verb.as_bytes());
    buffer.extend_from_slice(b"\",\"user\":");
    buffer.extend_from_slice(cluster.identities[request.actor].user_json.as_bytes());
    // The impersonation filter runs after RequestReceived is logged.
    if let (Some(impersonated), true) = (request.impersonated, final_stage) {
        buffer.extend_from_slice(b",\"impersonatedUser\":");
        buffer.extend_from_slice(
            cluster.identities[impersonated]
                .impersonated_json
                .as_bytes(),
        );
    }
    buffer.extend_from_slice(b",\"sourceIPs\":[\"");
    buffer.extend_from_slice(request.source_ip.as_bytes());
    buffer.extend_from_slice(b"\"],\"userAgent\":");
    push_string(buffer, &request.user_agent);
    if let CallTarget::Resource {
        resource,
        subresource,
        namespace,
        name,
    } = &request.target
    {
        buffer.extend_from_slice(b",\"objectRef\":{\"resource\":\"");
        buffer.extend_from_slice(resource.name.as_bytes());
        buffer.push(b'"');
        if let Some(namespace) = namespace.as_deref().filter(|_| resource.namespaced) {
            buffer.extend_from_slice(b",\"namespace\":\"");
            push_escaped(buffer, namespace);
            buffer.push(b'"');
        }
        if let Some(name) = name {
            buffer.extend_from_slice(b",\"name\":");
            push_string(buffer, name);
        }
        if !resource.group.is_empty() {
            buffer.extend_from_slice(b",\"apiGroup\":\"");
            buffer.extend_from_slice(resource.group.as_bytes());
            buffer.push(b'"');
        }
        buffer.extend_from_slice(b",\"apiVersion\":\"");
        buffer.extend_from_slice(resource.version.as_bytes());
        buffer.push(b'"');
        if let Some(subresource) = subresource {
            buffer.extend_from_slice(b",\"subresource\":\"");
            buffer.extend_from_slice(subresource.as_bytes());
            buffer.push(b'"');
        }
        buffer.push(b'}');
    }
    if final_stage {
        buffer.extend_from_slice(b",\"responseStatus\":{\"metadata\":{}");
        if let Some((reason, message)) = &request.failure {
            buffer.extend_from_slice(b",\"status\":\"Failure\",\"message\":");
            push_string(buffer, message);
            buffer.extend_from_slice(b",\"reason\":\"");
            buffer.extend_from_slice(reason.as_bytes());
            buffer.push(b'"');
            if let CallTarget::Resource { resource, name, .. } = &request.target {
                buffer.extend_from_slice(b",\"details\":{");
                if let Some(name) = name {
                    buffer.extend_from_slice(b"\"name\":");
                    push_string(buffer, name);
                    buffer.push(b',');
                }
                if !resource.group.is_empty() {
                    buffer.extend_from_slice(b"\"group\":\"");
                    buffer.extend_from_slice(resource.group.as_bytes());
                    buffer.extend_from_slice(b"\",");
                }
                buffer.extend_from_slice(b"\"kind\":\"");
                buffer.extend_from_slice(resource.name.as_bytes());
                buffer.extend_from_slice(b"\"}");
            }
        }
        buffer.extend_from_slice(b",\"code\":");
        push_u64(buffer, u64::from(request.code));
        buffer.push(b'}');
        if let Some(object) = &request.request_object {
            buffer.extend_from_slice(b",\"requestObject\":");
            buffer.extend_from_slice(object.as_bytes());
        }
        if record.stage == Stage::ResponseComplete
            && let Some(object) = &request.response_object
        {
            buffer.extend_from_slice(b",\"responseObject\":");
            buffer.extend_from_slice(object.as_bytes());
        }
    }
    buffer.extend_from_slice(b",\"requestReceivedTimestamp\":");
    push_micro_time(buffer, request.ts);
    buffer.extend_from_slice(b",\"stageTimestamp\":");
    push_micro_time(buffer, record.ts);
    if final_stage {
        buffer.extend_from_slice(b",\"annotations\":{\"authorization.k8s.io/decision\":\"");
        match &request.reason {
            Some(reason) => {
                buffer.extend_from_slice(b"allow\",\"authorization.k8s.io/reason\":");
                push_string(buffer, reason);
            }
            None => buffer.extend_from_slice(b"forbid\",\"authorization.k8s.io/reason\":\"\""),
        }
        if let (Some(extra), true) = (request.extra_annotations, request.reason.is_some()) {
            buffer.extend_from_slice(extra.as_bytes());
        }
        buffer.push(b'}');
    }
    buffer.push(b'}');
}
