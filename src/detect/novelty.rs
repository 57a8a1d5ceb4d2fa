//! First-seen novelty: each identity against its own history.
//!
//! For every identity (the authenticated actor) the [`NoveltyIndex`] keeps,
//! within a lookback (default 14 days), the namespaces it touched, its source
//! addresses and networks, its user-agent families, its verb-resource pairs,
//! the exact actions it performs (`verb resource namespace`, used to let a
//! rule's habitual hit pass silently) and the hours of day it is active. Each
//! is a hash map from value to first and last time seen, so observing an
//! event costs a handful of hash lookups.
//!
//! The one design decision to know: novel facts are *scored and combined*, not
//! alerted one by one. A person touches a new address or upgrades kubectl now
//! and then; that alone is nothing. Facts of one identity within a window
//! (default 30 min from the first novel fact) are combined as independent
//! evidence, `score = 1 - Π(1 - weight)`, and one anomaly with every reason is
//! raised only when the combined score passes a threshold. Weights differ for
//! machine identities (service accounts, nodes, control plane: stable, so a new
//! network or user agent is a strong signal) and people (who roam: new
//! networks and hours weigh less, several new namespaces at once weigh more).
//! An identity with too little history (days observed, requests) is
//! *learning*: it feeds the index but raises nothing.
//!
//! The index can be rebuilt from stored history with one DuckDB query per
//! fact kind over the `events` view ([`NoveltyIndex::rebuild`]), so `auditlens
//! detect --since T` learns from everything before `T`.

use super::anomaly::{Anomaly, AnomalyKind, Severity, datetime_from_micros, stable_anomaly_id};
use super::rules::action_key;
use crate::audit::{AuditEvent, Identity, IdentityKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// Tunables of the novelty layer (documented in docs/DETECTION.md).
#[derive(Debug, Clone)]
pub struct NoveltyOptions {
    /// How far back a value counts as known.
    pub lookback_micros: i64,
    /// An identity is learning until it was seen on this many distinct days...
    pub min_days_observed: u32,
    /// ...and made this many requests.
    pub min_requests: u64,
    /// Novel facts within this span of the first one are combined.
    pub window_micros: i64,
    /// Combined score from which an anomaly is raised.
    pub alert_threshold: f64,
    /// Hour-of-day novelty needs this many observed days to mean anything.
    pub min_days_for_hours: u32,
}

impl Default for NoveltyOptions {
    fn default() -> Self {
        NoveltyOptions {
            lookback_micros: 14 * DAY,
            min_days_observed: 2,
            min_requests: 50,
            window_micros: 30 * 60_000_000,
            alert_threshold: 0.6,
            min_days_for_hours: 4,
        }
    }
}

/// What kind of first-seen fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FactKind {
    Namespace,
    Network,
    Address,
    PublicAddress,
    UserAgent,
    Action,
    Hour,
}

impl FactKind {
    fn as_str(self) -> &'static str {
        match self {
            FactKind::Namespace => "namespace",
            FactKind::Network => "network",
            FactKind::Address => "address",
            FactKind::PublicAddress => "public_address",
            FactKind::UserAgent => "user_agent",
            FactKind::Action => "action",
            FactKind::Hour => "hour",
        }
    }
}

/// One novel fact with its weight and the sentence that explains it.
#[derive(Debug, Clone)]
struct NovelFact {
    kind: FactKind,
    value: String,
    weight: f64,
    reason: String,
}

const NAMESPACE_HABIT_PREFIX: &str = "namespace:";

/// A habit key meaning "has worked in `namespace`" (any request there).
pub fn namespace_habit_key(namespace: &str) -> String {
    format!("{NAMESPACE_HABIT_PREFIX}{namespace}")
}

/// First and last time a value was seen (UTC µs).
#[derive(Debug, Clone, Copy)]
struct Seen {
    first: i64,
    last: i64,
}

type ValueHistory = HashMap<String, Seen>;

fn touch(values: &mut ValueHistory, value: &str, ts: i64) {
    match values.get_mut(value) {
        Some(seen) => {
            seen.first = seen.first.min(ts);
            seen.last = seen.last.max(ts);
        }
        None => {
            values.insert(
                value.to_string(),
                Seen {
                    first: ts,
                    last: ts,
                },
            );
        }
    }
}

fn known(values: &ValueHistory, value: &str, horizon: i64) -> bool {
    values.get(value).is_some_and(|seen| seen.last >= horizon)
}

/// Novel facts of one identity waiting for their window to close.
#[derive(Debug)]
struct OpenWindow {
    start: i64,
    end: i64,
    facts: Vec<NovelFact>,
    evidence: Vec<String>,
}

const MAX_EVIDENCE: usize = 100;

/// One identity's history.
#[derive(Debug)]
struct IdentityHistory {
    machine: bool,
    first_seen: i64,
    last_seen: i64,
    requests: u64,
    days_observed: u32,
    last_day: i64,
    namespaces: ValueHistory,
    addresses: ValueHistory,
    networks: ValueHistory,
    user_agents: ValueHistory,
    actions: ValueHistory,
    habits: ValueHistory,
    /// Last time active at each hour of day (UTC), `i64::MIN` if never.
    hours: [i64; 24],
    any_public_address: bool,
    open: Option<OpenWindow>,
}

impl IdentityHistory {
    fn new(machine: bool, ts: i64) -> IdentityHistory {
        IdentityHistory {
            machine,
            first_seen: ts,
            last_seen: ts,
            requests: 0,
            days_observed: 0,
            last_day: i64::MIN,
            namespaces: HashMap::new(),
            addresses: HashMap::new(),
            networks: HashMap::new(),
            user_agents: HashMap::new(),
            actions: HashMap::new(),
            habits: HashMap::new(),
            hours: [i64::MIN; 24],
            any_public_address: false,
            open: None,
        }
    }

    /// Removes the values first seen within `[start, end]`; returns how many.
    fn forget_first_seen_within(&mut self, start: i64, end: i64) -> usize {
        let mut forgotten = 0;
        for values in self.value_histories() {
            let before = values.len();
            values.retain(|_, seen| seen.first < start || seen.first > end);
            forgotten += before - values.len();
        }
        forgotten
    }

    /// Every first/last-seen map of the identity (hours are kept apart).
    fn value_histories(&mut self) -> [&mut ValueHistory; 6] {
        [
            &mut self.namespaces,
            &mut self.addresses,
            &mut self.networks,
            &mut self.user_agents,
            &mut self.actions,
            &mut self.habits,
        ]
    }

    fn forget_before(&mut self, horizon: i64) {
        for values in self.value_histories() {
            values.retain(|_, seen| seen.last >= horizon);
        }
    }
}

/// Whether an identity kind learns as a machine (stable) or a person (roams).
fn is_machine(kind: IdentityKind) -> bool {
    !matches!(kind, IdentityKind::User)
}

/// The product of a user agent without its version:
/// `kubectl/v1.30.1 (linux/amd64) kubernetes/abc` → `kubectl`.
pub fn user_agent_family(user_agent: Option<&str>) -> String {
    let agent = user_agent.unwrap_or("").trim();
    if agent.is_empty() {
        return "(none)".into();
    }
    let product = agent.split(['/', ' ', ';']).next().unwrap_or(agent);
    product.to_ascii_lowercase()
}

/// The network of an address: public IPv4 /24, private IPv4 /16 (a cluster's
/// pod network gives each node its own /24, so a rescheduled pod would look
/// like a new /24), IPv6 /64. `None` for text that is not an address.
pub fn network_of(address: &str) -> Option<(String, bool)> {
    let parsed: IpAddr = address.trim().parse().ok()?;
    match parsed {
        IpAddr::V4(v4) => {
            let octets = v4.octets();
            let private = v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (octets[0] == 100 && (64..128).contains(&octets[1]));
            if private {
                Some((format!("{}.{}.0.0/16", octets[0], octets[1]), false))
            } else {
                Some((
                    format!("{}.{}.{}.0/24", octets[0], octets[1], octets[2]),
                    true,
                ))
            }
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let private = v6.is_loopback()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80;
            Some((
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                ),
                !private,
            ))
        }
    }
}

fn hour_of_day(ts: i64) -> usize {
    (ts.rem_euclid(DAY) / HOUR) as usize
}

/// The per-identity first-seen index.
#[derive(Debug)]
pub struct NoveltyIndex {
    options: NoveltyOptions,
    cluster: String,
    identities: HashMap<String, IdentityHistory>,
    /// (deadline, identity) of open windows, so closing them is cheap.
    deadlines: BTreeSet<(i64, String)>,
    observed: u64,
    last_sweep: i64,
}

impl NoveltyIndex {
    pub fn new(options: NoveltyOptions) -> NoveltyIndex {
        NoveltyIndex {
            options,
            cluster: "default".into(),
            identities: HashMap::new(),
            deadlines: BTreeSet::new(),
            observed: 0,
            last_sweep: i64::MIN,
        }
    }

    pub fn with_cluster(mut self, cluster: impl Into<String>) -> NoveltyIndex {
        self.cluster = cluster.into();
        self
    }

    pub fn options(&self) -> &NoveltyOptions {
        &self.options
    }

    pub fn identity_count(&self) -> usize {
        self.identities.len()
    }

    /// Whether the identity is still learning at `ts`.
    pub fn is_learning(&self, identity: &str) -> bool {
        match self.identities.get(identity) {
            Some(history) => self.history_is_learning(history),
            None => true,
        }
    }

    fn history_is_learning(&self, history: &IdentityHistory) -> bool {
        history.days_observed < self.options.min_days_observed
            || history.requests < self.options.min_requests
    }

    /// Whether `identity` performed `action` (an [`action_key`]) before
    /// `before` and within the lookback. A key [`namespace_habit_key`] asks
    /// instead whether the identity worked in that namespace at all.
    /// Learning identities have no habits.
    pub fn is_habitual(&self, identity: &str, action: &str, before: i64) -> bool {
        let Some(history) = self.identities.get(identity) else {
            return false;
        };
        if self.history_is_learning(history) {
            return false;
        }
        let values = match action.strip_prefix(NAMESPACE_HABIT_PREFIX) {
            Some(namespace) => {
                return history.namespaces.get(namespace).is_some_and(|seen| {
                    seen.first < before && seen.last >= before - self.options.lookback_micros
                });
            }
            None => &history.habits,
        };
        values.get(action).is_some_and(|seen| {
            seen.first < before && seen.last >= before - self.options.lookback_micros
        })
    }

    /// Observes one request (the final stage of it): learns from it, and
    /// returns the anomalies of windows this event closes. Call
    /// [`NoveltyIndex::close_windows`] as time passes (live) and
    /// [`NoveltyIndex::finish`] at the end of a batch.
    pub fn observe(&mut self, event: &AuditEvent) -> Vec<Anomaly> {
        let ts = event.ts;
        let emitted = self.close_windows(ts);
        let actor_identity = event.actor_identity();
        if actor_identity.kind == IdentityKind::Anonymous {
            return emitted;
        }
        self.observed += 1;
        if self.observed.is_multiple_of(65_536) && ts - self.last_sweep > DAY {
            self.sweep(ts);
        }
        let horizon = ts - self.options.lookback_micros;
        let options = self.options.clone();
        let identity_name = event.actor();
        if !self.identities.contains_key(identity_name) {
            self.identities.insert(
                identity_name.to_string(),
                IdentityHistory::new(is_machine(actor_identity.kind), ts),
            );
        }
        let Some(history) = self.identities.get_mut(identity_name) else {
            return emitted;
        };
        let learning = history.days_observed < options.min_days_observed
            || history.requests < options.min_requests;
        let facts = if learning {
            Vec::new()
        } else {
            novel_facts(history, event, &actor_identity, horizon, &options)
        };
        learn(history, event, ts);
        if !facts.is_empty() {
            let window = history.open.get_or_insert_with(|| OpenWindow {
                start: ts,
                end: ts,
                facts: Vec::new(),
                evidence: Vec::new(),
            });
            let is_new_window = window.facts.is_empty();
            window.end = window.end.max(event.stage_ts.max(ts));
            for fact in facts {
                if !window
                    .facts
                    .iter()
                    .any(|known| known.kind == fact.kind && known.value == fact.value)
                {
                    window.facts.push(fact);
                }
            }
            if window.evidence.len() < MAX_EVIDENCE && !window.evidence.contains(&event.audit_id) {
                window.evidence.push(event.audit_id.clone());
            }
            if is_new_window {
                let deadline = window.start + options.window_micros;
                self.deadlines.insert((deadline, identity_name.to_string()));
            }
        }
        emitted
    }

    /// Closes every window whose span ended before `now`.
    pub fn close_windows(&mut self, now: i64) -> Vec<Anomaly> {
        let mut emitted = Vec::new();
        while let Some((deadline, _)) = self.deadlines.first() {
            if *deadline > now {
                break;
            }
            let Some((_, identity)) = self.deadlines.pop_first() else {
                break;
            };
            if let Some(anomaly) = self.close_window(&identity) {
                emitted.push(anomaly);
            }
        }
        emitted
    }

    /// Closes every open window (end of a batch).
    pub fn finish(&mut self) -> Vec<Anomaly> {
        self.close_windows(i64::MAX)
    }

    fn close_window(&mut self, identity: &str) -> Option<Anomaly> {
        let history = self.identities.get_mut(identity)?;
        let window = history.open.take()?;
        score_window(
            &self.options,
            &self.cluster,
            identity,
            history.machine,
            window,
        )
    }

    /// Forgets what `identity` showed for the first time within `[start, end]`
    /// (UTC µs): the namespaces, addresses, networks, user agents and actions
    /// of a window a person resolved as a true positive, so an attack never
    /// becomes the identity's usual and the same facts alert again. Values
    /// the identity had used before the window are kept; hours of activity
    /// and request counts are not undone. Returns how many values it forgot.
    pub fn unlearn_window(&mut self, identity: &str, start: i64, end: i64) -> usize {
        self.identities
            .get_mut(identity)
            .map_or(0, |history| history.forget_first_seen_within(start, end))
    }

    /// Forgets values older than the lookback and identities idle for longer.
    fn sweep(&mut self, now: i64) {
        self.last_sweep = now;
        let horizon = now - self.options.lookback_micros;
        self.identities
            .retain(|_, history| history.last_seen >= horizon || history.open.is_some());
        for history in self.identities.values_mut() {
            history.forget_before(horizon);
        }
    }

    /// Rebuilds the index from stored events before `until` (UTC µs) within
    /// the lookback. Reads the `events` view of `connection`.
    pub fn rebuild(
        &mut self,
        connection: &duckdb::Connection,
        until: i64,
    ) -> Result<u64, duckdb::Error> {
        self.rebuild_for_cluster(connection, until, None, &[])
    }

    /// [`NoveltyIndex::rebuild`] restricted to one cluster's events, without
    /// the events of `excluded` windows (those of the cluster, or of every
    /// cluster): windows a person confirmed as attacks are not learned.
    /// Returns how many identities were learned.
    pub fn rebuild_for_cluster(
        &mut self,
        connection: &duckdb::Connection,
        until: i64,
        cluster: Option<&str>,
        excluded: &[crate::model::ExcludedWindow],
    ) -> Result<u64, duckdb::Error> {
        let since = until - self.options.lookback_micros;
        let final_stages =
            "stage IN ('ResponseComplete', 'ResponseStarted', 'Panic') AND username IS NOT NULL";
        let exclusions: Vec<String> = excluded
            .iter()
            .filter(|window| {
                window.cluster.is_none() || cluster.is_none() || window.cluster.as_deref() == cluster
            })
            .map(|window| {
                format!(
                    " AND NOT (username = {} AND ts BETWEEN make_timestamp({}) AND make_timestamp({}))",
                    crate::store::views::sql_string_literal(&window.identity),
                    window.start.timestamp_micros(),
                    window.end.timestamp_micros()
                )
            })
            .collect();
        let range = format!(
            "ts >= make_timestamp({since}) AND ts < make_timestamp({until}) AND {final_stages} AND {}{}",
            super::history::cluster_condition(cluster),
            exclusions.concat()
        );
        // Identity summaries first, so value rows find their identity.
        let mut statement = connection.prepare(&format!(
            "SELECT username, any_value(identity_kind), epoch_us(min(ts)), epoch_us(max(ts)), count(*), \
             count(DISTINCT CAST(ts AS DATE)), epoch_us(max(date_trunc('day', ts))) \
             FROM events WHERE {range} GROUP BY username"
        ))?;
        let mut rows = statement.query([])?;
        let mut identities = 0u64;
        while let Some(row) = rows.next()? {
            let username: String = row.get(0)?;
            let kind: Option<String> = row.get(1)?;
            let kind = kind
                .as_deref()
                .and_then(IdentityKind::from_column)
                .unwrap_or_else(|| Identity::classify(&username).kind);
            if kind == IdentityKind::Anonymous {
                continue;
            }
            let first: i64 = row.get(2)?;
            let last: i64 = row.get(3)?;
            let history = self
                .identities
                .entry(username)
                .or_insert_with(|| IdentityHistory::new(is_machine(kind), first));
            history.first_seen = history.first_seen.min(first);
            history.last_seen = history.last_seen.max(last);
            history.requests += row.get::<_, i64>(4)?.max(0) as u64;
            history.days_observed += row.get::<_, i64>(5)?.max(0) as u32;
            history.last_day = history.last_day.max(row.get::<_, i64>(6)?.div_euclid(DAY));
            identities += 1;
        }
        drop(rows);
        drop(statement);
        let value_queries: [(&str, &str); 6] = [
            ("namespace", "namespace IS NOT NULL AND namespace <> ''"),
            ("source_ip", "source_ip IS NOT NULL"),
            ("coalesce(user_agent, '')", "true"),
            (
                "verb || ' ' || coalesce(resource, '') || CASE WHEN coalesce(subresource, '') = '' THEN '' ELSE '/' || subresource END",
                "resource IS NOT NULL AND resource <> ''",
            ),
            (
                "verb || ' ' || coalesce(resource, '') || CASE WHEN coalesce(subresource, '') = '' THEN '' ELSE '/' || subresource END || ' ' || CASE WHEN coalesce(namespace, '') = '' THEN '*' ELSE namespace END",
                "resource IS NOT NULL AND resource <> ''",
            ),
            ("CAST(hour(ts) AS VARCHAR)", "true"),
        ];
        for (slot, (expression, filter)) in value_queries.iter().enumerate() {
            let mut statement = connection.prepare(&format!(
                "SELECT username, {expression} AS value, epoch_us(min(ts)), epoch_us(max(ts)) \
                 FROM events WHERE {range} AND {filter} GROUP BY ALL"
            ))?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let username: String = row.get(0)?;
                let value: Option<String> = row.get(1)?;
                let Some(value) = value else { continue };
                let first: i64 = row.get(2)?;
                let last: i64 = row.get(3)?;
                let Some(history) = self.identities.get_mut(&username) else {
                    continue;
                };
                match slot {
                    0 => merge(&mut history.namespaces, value, first, last),
                    1 => {
                        if let Some((network, public)) = network_of(&value) {
                            history.any_public_address |= public;
                            merge(&mut history.networks, network, first, last);
                        }
                        merge(&mut history.addresses, value, first, last);
                    }
                    2 => merge(
                        &mut history.user_agents,
                        user_agent_family(Some(&value)),
                        first,
                        last,
                    ),
                    3 => merge(&mut history.actions, value, first, last),
                    4 => merge(&mut history.habits, value, first, last),
                    _ => {
                        if let Ok(hour) = value.parse::<usize>()
                            && hour < 24
                        {
                            history.hours[hour] = history.hours[hour].max(last);
                        }
                    }
                }
            }
        }
        Ok(identities)
    }
}

fn merge(values: &mut ValueHistory, value: String, first: i64, last: i64) {
    match values.get_mut(&value) {
        Some(seen) => {
            seen.first = seen.first.min(first);
            seen.last = seen.last.max(last);
        }
        None => {
            values.insert(value, Seen { first, last });
        }
    }
}

fn verb_resource(event: &AuditEvent) -> Option<String> {
    let resource = event.resource().filter(|resource| !resource.is_empty())?;
    Some(match event.subresource().filter(|sub| !sub.is_empty()) {
        Some(subresource) => format!("{} {resource}/{subresource}", event.verb),
        None => format!("{} {resource}", event.verb),
    })
}

fn learn(history: &mut IdentityHistory, event: &AuditEvent, ts: i64) {
    history.requests += 1;
    history.first_seen = history.first_seen.min(ts);
    history.last_seen = history.last_seen.max(ts);
    let day = ts.div_euclid(DAY);
    if day != history.last_day {
        if day > history.last_day {
            history.days_observed += 1;
        }
        history.last_day = history.last_day.max(day);
    }
    if let Some(namespace) = event.namespace() {
        touch(&mut history.namespaces, namespace, ts);
    }
    if let Some(address) = event.source_ip() {
        touch(&mut history.addresses, address, ts);
        if let Some((network, public)) = network_of(address) {
            history.any_public_address |= public;
            touch(&mut history.networks, &network, ts);
        }
    }
    touch(
        &mut history.user_agents,
        &user_agent_family(event.user_agent.as_deref()),
        ts,
    );
    if let Some(action) = verb_resource(event) {
        touch(&mut history.actions, &action, ts);
        let key = action_key(
            &event.verb,
            event.resource().unwrap_or(""),
            event.subresource().unwrap_or(""),
            event.namespace().unwrap_or(""),
        );
        touch(&mut history.habits, &key, ts);
    }
    let hour = hour_of_day(ts);
    history.hours[hour] = history.hours[hour].max(ts);
}

/// Weights of each fact kind, for machines and for people.
fn weight(kind: FactKind, machine: bool) -> f64 {
    match (kind, machine) {
        (FactKind::Network, true) => 0.6,
        (FactKind::Network, false) => 0.3,
        (FactKind::Address, true) => 0.1,
        (FactKind::Address, false) => 0.02,
        (FactKind::PublicAddress, true) => 0.5,
        (FactKind::PublicAddress, false) => 0.0,
        (FactKind::UserAgent, true) => 0.4,
        (FactKind::UserAgent, false) => 0.25,
        (FactKind::Namespace, true) => 0.45,
        (FactKind::Namespace, false) => 0.35,
        (FactKind::Action, true) => 0.25,
        (FactKind::Action, false) => 0.12,
        (FactKind::Hour, true) => 0.05,
        (FactKind::Hour, false) => 0.3,
    }
}

fn novel_facts(
    history: &IdentityHistory,
    event: &AuditEvent,
    identity: &Identity<'_>,
    horizon: i64,
    options: &NoveltyOptions,
) -> Vec<NovelFact> {
    let machine = history.machine;
    let mut facts = Vec::new();
    if let Some(namespace) = event.namespace()
        && !known(&history.namespaces, namespace, horizon)
    {
        // A service account working outside its own namespace is the classic
        // stolen-token move; its own namespace being new is not.
        let own = identity.service_account_namespace == Some(namespace);
        if !own {
            // An identity that already works across many namespaces (a GitOps
            // controller, a platform admin) reaching one more is less news than
            // an application account leaving its own.
            let spread = history
                .namespaces
                .values()
                .filter(|seen| seen.last >= horizon)
                .count();
            let breadth = if spread >= 8 {
                0.4
            } else if spread >= 4 {
                0.7
            } else {
                1.0
            };
            facts.push(NovelFact {
                kind: FactKind::Namespace,
                value: namespace.to_string(),
                weight: weight(FactKind::Namespace, machine) * breadth,
                reason: format!(
                    "first request in namespace {namespace} (known: {})",
                    sample(&history.namespaces, horizon, 5)
                ),
            });
        }
    }
    if let Some(address) = event.source_ip()
        && !known(&history.addresses, address, horizon)
    {
        match network_of(address) {
            Some((network, public)) if !known(&history.networks, &network, horizon) => {
                facts.push(NovelFact {
                    kind: FactKind::Network,
                    value: network.clone(),
                    weight: weight(FactKind::Network, machine),
                    reason: format!(
                        "first request from network {network} (address {address}; known: {})",
                        sample(&history.networks, horizon, 4)
                    ),
                });
                if public && !history.any_public_address {
                    facts.push(NovelFact {
                        kind: FactKind::PublicAddress,
                        value: address.to_string(),
                        weight: weight(FactKind::PublicAddress, machine),
                        reason: format!("public address {address} for an identity only ever seen from private networks"),
                    });
                }
            }
            _ => facts.push(NovelFact {
                kind: FactKind::Address,
                value: address.to_string(),
                weight: weight(FactKind::Address, machine),
                reason: format!("first request from address {address} (known network)"),
            }),
        }
    }
    let family = user_agent_family(event.user_agent.as_deref());
    if !known(&history.user_agents, &family, horizon) {
        facts.push(NovelFact {
            kind: FactKind::UserAgent,
            value: family.clone(),
            weight: weight(FactKind::UserAgent, machine),
            reason: format!(
                "first request with user agent {:?} (known: {})",
                event.user_agent.as_deref().unwrap_or(""),
                sample(&history.user_agents, horizon, 4)
            ),
        });
    }
    if let Some(action) = verb_resource(event)
        && !known(&history.actions, &action, horizon)
    {
        let repertoire = history
            .actions
            .values()
            .filter(|seen| seen.last >= horizon)
            .count();
        let breadth = if repertoire >= 30 { 0.5 } else { 1.0 };
        facts.push(NovelFact {
            kind: FactKind::Action,
            value: action.clone(),
            weight: weight(FactKind::Action, machine) * breadth,
            reason: format!("first {action}"),
        });
    }
    if history.days_observed >= options.min_days_for_hours {
        let hour = hour_of_day(event.ts);
        let active = |offset: i64| {
            let index = (hour as i64 + offset).rem_euclid(24) as usize;
            history.hours[index] >= horizon
        };
        if !active(0) {
            let near = active(-1) || active(1);
            let base = weight(FactKind::Hour, machine);
            let weight = if near { base / 2.0 } else { base };
            facts.push(NovelFact {
                kind: FactKind::Hour,
                value: hour.to_string(),
                weight,
                reason: format!(
                    "active at {hour:02}:00 UTC, an hour never active in {} days observed{}",
                    history.days_observed,
                    if near { " (next to a usual hour)" } else { "" }
                ),
            });
        }
    }
    facts
}

/// Up to `limit` known values, most recent first, for a reason line.
fn sample(values: &ValueHistory, horizon: i64, limit: usize) -> String {
    let mut recent: Vec<(&String, &Seen)> = values
        .iter()
        .filter(|(_, seen)| seen.last >= horizon)
        .collect();
    if recent.is_empty() {
        return "none".into();
    }
    recent.sort_by(|a, b| b.1.last.cmp(&a.1.last).then_with(|| a.0.cmp(b.0)));
    let shown: Vec<&str> = recent
        .iter()
        .take(limit)
        .map(|(value, _)| value.as_str())
        .collect();
    if recent.len() > limit {
        format!("{} and {} more", shown.join(", "), recent.len() - limit)
    } else {
        shown.join(", ")
    }
}

/// Combines a window's facts: independent evidence, with repeated facts of one
/// kind counting less each time (the second new namespace adds half the first's weight, ...).
fn combined_score(facts: &[NovelFact]) -> f64 {
    let mut per_kind: BTreeMap<FactKind, usize> = BTreeMap::new();
    let mut remaining = 1.0;
    let mut sorted: Vec<&NovelFact> = facts.iter().collect();
    sorted.sort_by(|a, b| {
        b.weight
            .partial_cmp(&a.weight)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for fact in sorted {
        let seen = per_kind.entry(fact.kind).or_insert(0);
        let damping = 0.5_f64.powi(*seen as i32);
        *seen += 1;
        remaining *= 1.0 - (fact.weight * damping).clamp(0.0, 0.99);
    }
    1.0 - remaining
}

fn score_window(
    options: &NoveltyOptions,
    cluster: &str,
    identity: &str,
    machine: bool,
    window: OpenWindow,
) -> Option<Anomaly> {
    let score = combined_score(&window.facts);
    if score < options.alert_threshold {
        return None;
    }
    // Several independent kinds of novelty at once (say a new network, new
    // namespaces and a night hour) is the shape of an intrusion, even when
    // each weight is modest.
    let distinct_kinds: BTreeSet<FactKind> = window
        .facts
        .iter()
        .map(|fact| fact.kind)
        .filter(|kind| *kind != FactKind::Address)
        .collect();
    let severity = if score >= 0.85 || distinct_kinds.len() >= 4 {
        Severity::High
    } else {
        Severity::Medium
    };
    let mut kind_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for fact in &window.facts {
        *kind_counts.entry(fact.kind.as_str()).or_default() += 1;
    }
    let summary: Vec<String> = kind_counts
        .iter()
        .map(|(kind, count)| {
            if *count > 1 {
                format!("{count} new {kind}s")
            } else {
                format!("new {kind}")
            }
        })
        .collect();
    let mut facts = window.facts;
    facts.sort_by(|a, b| {
        b.weight
            .partial_cmp(&a.weight)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut reasons: Vec<String> = facts
        .iter()
        .take(20)
        .map(|fact| fact.reason.clone())
        .collect();
    if facts.len() > 20 {
        reasons.push(format!("and {} more first-seen facts", facts.len() - 20));
    }
    reasons.push(format!(
        "combined novelty score {score:.2} ({} identity, threshold {:.2})",
        if machine { "machine" } else { "human" },
        options.alert_threshold
    ));
    Some(Anomaly {
        id: stable_anomaly_id(
            cluster,
            "novelty.first_seen",
            identity,
            window.start,
            window.evidence.first().map(String::as_str),
        ),
        detector: "novelty.first_seen".into(),
        kind: AnomalyKind::Novelty,
        identity: identity.to_string(),
        cluster: cluster.to_string(),
        window_start: datetime_from_micros(window.start),
        window_end: datetime_from_micros(window.end),
        severity,
        score,
        title: format!("{identity}: {}", summary.join(", ")),
        reasons,
        evidence_audit_ids: window.evidence,
    })
}

#[cfg(test)]
mod tests;
