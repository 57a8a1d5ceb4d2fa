//! RBAC drift for the nightly report: which grants appeared and which went
//! away since last week, and how much of what each identity holds it
//! actually used, day by day over the last 8 days.
//!
//! Grants are compared after expansion (binding × subject × effective rule,
//! aggregation resolved by the [`Authorizer`]), so an edit to a ClusterRole
//! shows up as new grants for every subject bound to it. Each day's score is
//! the one `auditlens rbac recommend` prints (rules used / rules granted; 1.0
//! is least privilege, near 0 is over-privileged), computed against the
//! snapshot version in force at the end of that day and the allowed requests
//! of the 7 days ending with it, matched by the same rule matcher
//! ([`Grant::covers`](super::authorizer::Grant::covers)).
//!
//! Design decision: usage is read as distinct request shapes, each with a
//! bitmask of the days it occurred on, by one aggregation over 14 days of
//! `events` ([`load_usage`]); matching is then shapes × grants, not
//! requests × grants, and [`compute_drift`] is a pure function of snapshots
//! and shapes that the tests drive directly.

use super::authorizer::{Authorizer, BindingEntry, RequestAttributes, UserInfo, describe_rule};
use super::recommend::sensitivity;
use super::versions::{SnapshotVersion, list_snapshot_versions, load_snapshot_version};
use super::{RbacError, Result};
use chrono::{Duration, NaiveDate};
use k8s_openapi::api::rbac::v1::Subject;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The trend covers this many days, ending with the report's day; its first
/// day is the baseline of "since last week".
pub const TREND_DAYS: usize = 8;
/// A grant counts as used on a day when a request of the trailing this-many
/// days (ending with that day) used it.
pub const USAGE_WINDOW_DAYS: usize = 7;
/// Days of usage read: the window of the trend's first day through its last.
const SPAN_DAYS: usize = TREND_DAYS + USAGE_WINDOW_DAYS - 1;
/// New and removed grants kept in the report (the counts are exact).
const GRANT_LIST_LIMIT: usize = 200;
/// Identities kept in the report, most unused rules first.
const IDENTITY_LIMIT: usize = 40;

/// The drift section (`rbac_drift` in the report's JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RbacDrift {
    /// False when no snapshot version was in force at any day of the trend.
    pub available: bool,
    /// The version in force at the end of the report's day.
    pub current: Option<VersionInForce>,
    /// The version in force at the end of the day a week earlier.
    pub baseline: Option<VersionInForce>,
    /// Grants in `current` and not in `baseline` (0 without both).
    pub new_grant_count: u64,
    pub removed_grant_count: u64,
    /// Sensitive first, then by subject; cut at 200 (the counts are exact).
    pub new_grants: Vec<GrantLine>,
    pub removed_grants: Vec<GrantLine>,
    /// Identities that held any rule on any day of the trend.
    pub identities_scored: u64,
    /// Most unused rules on the report's day first; cut at 40.
    pub over_privilege: Vec<IdentityPrivilege>,
}

/// A snapshot version and when it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInForce {
    pub version: i64,
    /// RFC 3339 UTC.
    pub taken_at: String,
    pub source: String,
}

impl From<&SnapshotVersion> for VersionInForce {
    fn from(version: &SnapshotVersion) -> VersionInForce {
        VersionInForce {
            version: version.version,
            taken_at: version.taken_at.clone(),
            source: version.source.clone(),
        }
    }
}

/// One expanded grant: a subject holds a rule through a binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantLine {
    /// `User alice`, `Group system:authenticated`, `ServiceAccount ci/deployer`.
    pub subject: String,
    /// `ClusterRoleBinding/name` or `RoleBinding/namespace/name`.
    pub binding: String,
    /// `ClusterRole/name` or `Role/namespace/name`.
    pub role: String,
    /// Where it applies; `None` is cluster-wide.
    pub namespace: Option<String>,
    /// The rule in one line (see [`describe_rule`]).
    pub rule: String,
    /// What makes it sensitive (secrets, RBAC, webhooks, wildcard...); empty if nothing.
    pub sensitive: Vec<String>,
}

/// One identity's score over the trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityPrivilege {
    pub identity: String,
    /// One entry per trend day, oldest first.
    pub days: Vec<PrivilegeDay>,
}

impl IdentityPrivilege {
    /// The report's day (the last of the trend).
    pub fn last(&self) -> Option<&PrivilegeDay> {
        self.days.last()
    }

    /// The baseline day, a week before the report's.
    pub fn first(&self) -> Option<&PrivilegeDay> {
        self.days.first()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivilegeDay {
    pub date: NaiveDate,
    /// Rules the identity held at the day's end (expanded grants).
    pub granted_rules: u64,
    /// Of those, the ones a request of the trailing 7 days used.
    pub used_rules: u64,
    /// `used_rules / granted_rules`; `None` when it held nothing that day.
    pub score: Option<f64>,
}

impl PrivilegeDay {
    pub fn unused_rules(&self) -> u64 {
        self.granted_rules.saturating_sub(self.used_rules)
    }
}

/// One distinct allowed request shape and the days it occurred on.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageShape {
    pub identity: String,
    pub request: RequestAttributes,
    /// Bit `i` set: it occurred on the span's day `i` (the span starts
    /// `TREND_DAYS + USAGE_WINDOW_DAYS - 2` days before the report's day).
    pub days: u32,
}

/// What the identities did over the span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub shapes: Vec<UsageShape>,
    /// Groups each identity was seen with (requests not impersonated).
    pub groups: BTreeMap<String, BTreeSet<String>>,
}

/// The first day of the usage span for a report's day.
pub fn span_start(date: NaiveDate) -> NaiveDate {
    date - Duration::days((SPAN_DAYS - 1) as i64)
}

/// The end of a day as a timestamp: a version taken at that instant or
/// before is in force for the day.
fn day_end(date: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    (date + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        - Duration::microseconds(1)
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Reads the span's allowed request shapes of `cluster` from the `events`
/// view the connection already has.
pub fn load_usage(
    connection: &duckdb::Connection,
    cluster: &str,
    date: NaiveDate,
) -> Result<Usage> {
    let first = literal(&span_start(date).format("%Y-%m-%d").to_string());
    let last = literal(&date.format("%Y-%m-%d").to_string());
    let in_span = format!(
        "cluster = {} AND date BETWEEN CAST({first} AS DATE) AND CAST({last} AS DATE) AND username IS NOT NULL",
        literal(cluster)
    );
    // Allowed as `rbac recommend` reads it: the authorizer's decision, else a
    // response code other than 401/403 (RequestReceived rows carry neither).
    // Names are dropped in SQL where the request carries none
    // (`verb_carries_no_name`), so list/watch/create collapse to one shape.
    let shapes_sql = format!(
        "SELECT identity, verb, api_group, resource, subresource, namespace, name, path, bit_or(day_bit) FROM (
            SELECT coalesce(nullif(impersonated_user, ''), username) AS identity, verb,
                   coalesce(api_group, '') AS api_group, coalesce(resource, '') AS resource,
                   coalesce(subresource, '') AS subresource, coalesce(namespace, '') AS namespace,
                   CASE WHEN verb IN ('list', 'watch', 'deletecollection')
                          OR (verb = 'create' AND coalesce(subresource, '') = '') THEN ''
                        ELSE coalesce(name, '') END AS name,
                   CASE WHEN coalesce(resource, '') = '' THEN split_part(coalesce(request_uri, ''), '?', 1) END AS path,
                   (1::BIGINT << CAST(date_diff('day', CAST({first} AS DATE), date) AS INTEGER)) AS day_bit
            FROM events
            WHERE {in_span} AND verb IS NOT NULL
              AND (decision = 'allow'
                   OR (decision IS NULL AND response_code IS NOT NULL AND response_code NOT IN (401, 403))))
         GROUP BY ALL"
    );
    let context = "reading RBAC usage from the events view";
    let mut statement = connection
        .prepare(&shapes_sql)
        .map_err(RbacError::duckdb(context))?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<String>>(7)?,
                row.get::<_, i64>(8)?,
            ))
        })
        .map_err(RbacError::duckdb(context))?;
    let mut usage = Usage::default();
    for row in rows {
        let (identity, verb, api_group, resource, subresource, namespace, name, path, days) =
            row.map_err(RbacError::duckdb(context))?;
        let request = match path {
            Some(path) => RequestAttributes::non_resource(&verb, &path),
            None => {
                let combined = if subresource.is_empty() {
                    resource
                } else {
                    format!("{resource}/{subresource}")
                };
                RequestAttributes::resource(&verb, &api_group, &combined, &namespace, &name)
            }
        };
        usage.shapes.push(UsageShape {
            identity,
            request,
            days: u32::try_from(days).unwrap_or(u32::MAX),
        });
    }
    let groups_sql = format!(
        "SELECT username, user_group FROM (
            SELECT DISTINCT username, unnest(user_groups) AS user_group FROM events
            WHERE {in_span} AND coalesce(impersonated_user, '') = '')
         WHERE user_group IS NOT NULL"
    );
    let mut statement = connection
        .prepare(&groups_sql)
        .map_err(RbacError::duckdb(context))?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(RbacError::duckdb(context))?;
    for row in rows {
        let (identity, group) = row.map_err(RbacError::duckdb(context))?;
        usage.groups.entry(identity).or_default().insert(group);
    }
    Ok(usage)
}

/// The snapshot version in force at the end of each trend day (oldest
/// first), each version loaded once.
pub fn load_versions_in_force(
    connection: &duckdb::Connection,
    date: NaiveDate,
) -> Result<Vec<Option<Arc<VersionedAuthorizer>>>> {
    let versions = list_snapshot_versions(connection)?;
    let mut loaded: HashMap<i64, Arc<VersionedAuthorizer>> = HashMap::new();
    let mut days = Vec::with_capacity(TREND_DAYS);
    for offset in (0..TREND_DAYS).rev() {
        let end = day_end(date - Duration::days(offset as i64))
            .format("%Y-%m-%dT%H:%M:%S.%6fZ")
            .to_string();
        // Listed oldest first; RFC 3339 with fixed width compares as text.
        let in_force = versions
            .iter()
            .rev()
            .find(|version| version.taken_at <= end);
        let Some(version) = in_force else {
            days.push(None);
            continue;
        };
        if let Some(authorizer) = loaded.get(&version.version) {
            days.push(Some(Arc::clone(authorizer)));
            continue;
        }
        let Some((version, snapshot)) = load_snapshot_version(connection, version.version)? else {
            days.push(None);
            continue;
        };
        let authorizer = Arc::new(VersionedAuthorizer {
            version: VersionInForce::from(&version),
            authorizer: Authorizer::new(&snapshot),
        });
        loaded.insert(version.version, Arc::clone(&authorizer));
        days.push(Some(authorizer));
    }
    Ok(days)
}

/// A snapshot version, resolved for evaluation.
#[derive(Debug)]
pub struct VersionedAuthorizer {
    pub version: VersionInForce,
    pub authorizer: Authorizer,
}

/// The whole section: versions from the catalog, usage from `events`.
pub fn build_drift(
    connection: &duckdb::Connection,
    cluster: &str,
    date: NaiveDate,
) -> Result<RbacDrift> {
    let days = load_versions_in_force(connection, date)?;
    if days.iter().all(Option::is_none) {
        return Ok(RbacDrift::default());
    }
    let usage = load_usage(connection, cluster, date)?;
    Ok(compute_drift(date, &days, &usage))
}

/// A ServiceAccount subject's namespace: its own, else the binding's.
fn service_account_namespace<'a>(subject: &'a Subject, binding_namespace: &'a str) -> &'a str {
    subject
        .namespace
        .as_deref()
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or(binding_namespace)
}

fn subject_text(subject: &Subject, binding_namespace: &str) -> String {
    match subject.kind.as_str() {
        "ServiceAccount" => format!(
            "ServiceAccount {}/{}",
            service_account_namespace(subject, binding_namespace),
            subject.name
        ),
        kind => format!("{kind} {}", subject.name),
    }
}

/// The username a User or ServiceAccount subject authenticates as; `None`
/// for groups (their members are not known from RBAC alone).
fn subject_username(subject: &Subject, binding_namespace: &str) -> Option<String> {
    match subject.kind.as_str() {
        "User" => Some(subject.name.clone()),
        "ServiceAccount" => Some(format!(
            "system:serviceaccount:{}:{}",
            service_account_namespace(subject, binding_namespace),
            subject.name
        )),
        _ => None,
    }
}

/// Subject, binding, scope, role and rule (as JSON): one expanded grant.
type GrantKey = (String, String, String, String, String);

/// Every (subject, binding, rule) a version grants, keyed for comparison.
fn expanded_grants(authorizer: &Authorizer) -> BTreeMap<GrantKey, GrantLine> {
    let mut grants = BTreeMap::new();
    for binding in authorizer.bindings() {
        let Some(rules) = &binding.rules else {
            continue;
        };
        for subject in &binding.subjects {
            for rule in rules.iter().filter(|rule| binding.rule_takes_effect(rule)) {
                let line = grant_line(binding, subject, rule);
                let key = (
                    line.subject.clone(),
                    line.binding.clone(),
                    line.namespace.clone().unwrap_or_default(),
                    line.role.clone(),
                    serde_json::to_string(rule).unwrap_or_else(|_| line.rule.clone()),
                );
                grants.insert(key, line);
            }
        }
    }
    grants
}

fn grant_line(
    binding: &BindingEntry,
    subject: &Subject,
    rule: &k8s_openapi::api::rbac::v1::PolicyRule,
) -> GrantLine {
    GrantLine {
        subject: subject_text(subject, &binding.namespace),
        binding: binding.display(),
        role: binding.role_display(),
        namespace: binding.scope().map(str::to_string),
        rule: describe_rule(rule),
        sensitive: sensitivity(rule),
    }
}

/// Grants in `to` and not in `from`: sensitive first, then by subject.
fn grants_added(
    from: &BTreeMap<GrantKey, GrantLine>,
    to: &BTreeMap<GrantKey, GrantLine>,
) -> Vec<GrantLine> {
    let mut added: Vec<GrantLine> = to
        .iter()
        .filter(|(key, _)| !from.contains_key(*key))
        .map(|(_, line)| line.clone())
        .collect();
    // `false < true`: grants with a sensitivity sort first.
    added.sort_by(|left, right| {
        (left.sensitive.is_empty(), left).cmp(&(right.sensitive.is_empty(), right))
    });
    added
}

/// The section from the versions in force per trend day (oldest first,
/// [`TREND_DAYS`] entries) and the span's usage.
pub fn compute_drift(
    date: NaiveDate,
    days: &[Option<Arc<VersionedAuthorizer>>],
    usage: &Usage,
) -> RbacDrift {
    let mut drift = RbacDrift {
        available: days.iter().any(Option::is_some),
        current: days
            .last()
            .and_then(Option::as_ref)
            .map(|day| day.version.clone()),
        baseline: days
            .first()
            .and_then(Option::as_ref)
            .map(|day| day.version.clone()),
        ..RbacDrift::default()
    };
    if !drift.available {
        return drift;
    }

    // New and removed grants since the baseline day.
    if let (Some(Some(baseline)), Some(Some(current))) = (days.first(), days.last())
        && baseline.version.version != current.version.version
    {
        let before = expanded_grants(&baseline.authorizer);
        let after = expanded_grants(&current.authorizer);
        let mut added = grants_added(&before, &after);
        let mut removed = grants_added(&after, &before);
        drift.new_grant_count = added.len() as u64;
        drift.removed_grant_count = removed.len() as u64;
        added.truncate(GRANT_LIST_LIMIT);
        removed.truncate(GRANT_LIST_LIMIT);
        drift.new_grants = added;
        drift.removed_grants = removed;
    }

    // Who to score: every identity seen, and every user and service account
    // named by a binding of any version of the trend (one that holds rules
    // and made no request scores 0).
    let mut shapes_by_identity: BTreeMap<&str, Vec<&UsageShape>> = BTreeMap::new();
    for shape in &usage.shapes {
        shapes_by_identity
            .entry(shape.identity.as_str())
            .or_default()
            .push(shape);
    }
    let mut identities: BTreeSet<String> = shapes_by_identity
        .keys()
        .map(|identity| identity.to_string())
        .collect();
    let mut seen_versions = BTreeSet::new();
    for day in days.iter().flatten() {
        if !seen_versions.insert(day.version.version) {
            continue;
        }
        for binding in day.authorizer.bindings() {
            identities.extend(
                binding
                    .subjects
                    .iter()
                    .filter_map(|subject| subject_username(subject, &binding.namespace)),
            );
        }
    }

    let no_groups = BTreeSet::new();
    let mut scored = Vec::new();
    for identity in &identities {
        let groups: Vec<String> = usage
            .groups
            .get(identity)
            .unwrap_or(&no_groups)
            .iter()
            .cloned()
            .collect();
        let user = UserInfo::with_implicit_groups(identity, &groups);
        let shapes = shapes_by_identity
            .get(identity.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Per version: the days (bitmask over the span) each held grant was used on.
        let mut used_days_by_version: HashMap<i64, Vec<u32>> = HashMap::new();
        let mut trend = Vec::with_capacity(TREND_DAYS);
        for (index, day) in days.iter().enumerate() {
            let date = date - Duration::days((TREND_DAYS - 1 - index) as i64);
            let Some(day) = day else {
                trend.push(PrivilegeDay {
                    date,
                    granted_rules: 0,
                    used_rules: 0,
                    score: None,
                });
                continue;
            };
            let used_days = used_days_by_version
                .entry(day.version.version)
                .or_insert_with(|| {
                    day.authorizer
                        .grants_for(&user)
                        .iter()
                        .map(|grant| {
                            shapes
                                .iter()
                                .filter(|shape| grant.covers(&shape.request))
                                .fold(0u32, |days, shape| days | shape.days)
                        })
                        .collect()
                });
            // Trend day `index` is span day `index + USAGE_WINDOW_DAYS - 1`;
            // its window is span days `index ..= index + USAGE_WINDOW_DAYS - 1`.
            let window = ((1u32 << USAGE_WINDOW_DAYS) - 1) << index;
            let granted = used_days.len() as u64;
            let used = used_days.iter().filter(|days| *days & window != 0).count() as u64;
            trend.push(PrivilegeDay {
                date,
                granted_rules: granted,
                used_rules: used,
                score: (granted > 0).then(|| used as f64 / granted as f64),
            });
        }
        if trend.iter().any(|day| day.granted_rules > 0) {
            scored.push(IdentityPrivilege {
                identity: identity.clone(),
                days: trend,
            });
        }
    }
    drift.identities_scored = scored.len() as u64;
    scored.sort_by(|left, right| {
        let unused = |privilege: &IdentityPrivilege| {
            privilege
                .last()
                .map(PrivilegeDay::unused_rules)
                .unwrap_or(0)
        };
        unused(right)
            .cmp(&unused(left))
            .then_with(|| left.identity.cmp(&right.identity))
    });
    scored.truncate(IDENTITY_LIMIT);
    drift.over_privilege = scored;
    drift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::snapshot::Snapshot;
    use crate::test_support::day as date;
    use std::path::Path;

    const DAY: &str = "2026-11-26";

    fn version(number: i64, objects: &str) -> Arc<VersionedAuthorizer> {
        let mut snapshot = Snapshot::default();
        snapshot
            .load_text(objects, Path::new("test.json"))
            .expect("valid RBAC");
        Arc::new(VersionedAuthorizer {
            version: VersionInForce {
                version: number,
                taken_at: format!("2026-11-{:02}T00:00:00.000000Z", 10 + number),
                source: "test".into(),
            },
            authorizer: Authorizer::new(&snapshot),
        })
    }

    /// alice may read pods in app (one rule); in the new version she may also
    /// read secrets cluster-wide (a second, sensitive rule).
    const BEFORE: &str = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"reader","namespace":"app"},
       "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]},
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"reader","namespace":"app"},
       "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"},
       "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}]},
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"old","namespace":"app"},
       "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"},
       "subjects":[{"kind":"ServiceAccount","name":"legacy","namespace":"app"}]}]}"#;

    const AFTER: &str = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"reader","namespace":"app"},
       "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]},
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"reader","namespace":"app"},
       "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"},
       "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}]},
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"secret-reader"},
       "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}]},
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"alice-secrets"},
       "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"secret-reader"},
       "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}]}]}"#;

    fn shape(identity: &str, verb: &str, resource: &str, namespace: &str, days: u32) -> UsageShape {
        UsageShape {
            identity: identity.into(),
            request: RequestAttributes::resource(verb, "", resource, namespace, "web"),
            days,
        }
    }

    #[test]
    fn new_and_removed_grants_are_the_expanded_difference() {
        let before = version(1, BEFORE);
        let after = version(2, AFTER);
        let mut days = vec![Some(Arc::clone(&before)); TREND_DAYS - 1];
        days.push(Some(after));
        let drift = compute_drift(date(DAY), &days, &Usage::default());
        assert!(drift.available);
        assert_eq!(drift.baseline.as_ref().map(|v| v.version), Some(1));
        assert_eq!(drift.current.as_ref().map(|v| v.version), Some(2));
        assert_eq!(drift.new_grant_count, 1);
        let added = &drift.new_grants[0];
        assert_eq!(added.subject, "User alice");
        assert_eq!(added.binding, "ClusterRoleBinding/alice-secrets");
        assert_eq!(added.role, "ClusterRole/secret-reader");
        assert_eq!(added.namespace, None);
        assert_eq!(added.rule, "get secrets (apiGroups \"\")");
        assert_eq!(added.sensitive, vec!["secrets".to_string()]);
        assert_eq!(drift.removed_grant_count, 1);
        let removed = &drift.removed_grants[0];
        assert_eq!(removed.subject, "ServiceAccount app/legacy");
        assert_eq!(removed.namespace.as_deref(), Some("app"));
        assert!(removed.sensitive.is_empty());

        // The same version at both ends: nothing changed.
        let same = vec![Some(before); TREND_DAYS];
        let drift = compute_drift(date(DAY), &same, &Usage::default());
        assert_eq!((drift.new_grant_count, drift.removed_grant_count), (0, 0));
    }

    #[test]
    fn scores_follow_the_trailing_week_and_the_version_of_each_day() {
        let before = version(1, BEFORE);
        let after = version(2, AFTER);
        let mut days = vec![Some(Arc::clone(&before)); TREND_DAYS - 1];
        days.push(Some(after));
        // Span day 0 is 13 days before the report's day; trend day 0 is span day 6.
        let usage = Usage {
            shapes: vec![
                // alice read a pod on span day 0 only: inside trend day 0's
                // window (span days 0..=6), outside every later one.
                shape("alice", "get", "pods", "app", 1 << 0),
                // A pod read in another namespace is not covered by the Role.
                shape("alice", "get", "pods", "other", 1 << 12),
                // bob has no binding: never scored.
                shape("bob", "get", "pods", "app", 1 << 13),
            ],
            groups: BTreeMap::new(),
        };
        let drift = compute_drift(date(DAY), &days, &usage);
        let alice = drift
            .over_privilege
            .iter()
            .find(|privilege| privilege.identity == "alice")
            .expect("alice scored");
        assert_eq!(alice.days.len(), TREND_DAYS);
        let first = alice.first().expect("first day");
        assert_eq!(first.date, date("2026-11-19"));
        assert_eq!((first.granted_rules, first.used_rules), (1, 1));
        assert_eq!(first.score, Some(1.0));
        let second = &alice.days[1];
        assert_eq!((second.granted_rules, second.used_rules), (1, 0));
        assert_eq!(second.score, Some(0.0));
        let last = alice.last().expect("last day");
        assert_eq!(last.date, date(DAY));
        assert_eq!((last.granted_rules, last.used_rules), (2, 0));
        assert_eq!(last.unused_rules(), 2);
        assert!(
            drift.over_privilege.iter().all(|p| p.identity != "bob"),
            "no grant, no score"
        );
        // The service account bound only in the old version: scored while bound, never used.
        let legacy = drift
            .over_privilege
            .iter()
            .find(|privilege| privilege.identity == "system:serviceaccount:app:legacy")
            .expect("bound subjects are scored without requests");
        assert_eq!(legacy.first().map(|day| day.granted_rules), Some(1));
        assert_eq!(legacy.last().map(|day| day.granted_rules), Some(0));
        assert_eq!(legacy.last().and_then(|day| day.score), None);
        // Most unused rules on the report's day first.
        assert_eq!(drift.over_privilege[0].identity, "alice");
        assert_eq!(drift.identities_scored, 2);
    }

    #[test]
    fn days_before_any_snapshot_have_no_score_and_no_drift() {
        let after = version(2, AFTER);
        let mut days: Vec<Option<Arc<VersionedAuthorizer>>> = vec![None; TREND_DAYS - 1];
        days.push(Some(after));
        let usage = Usage {
            shapes: vec![shape("alice", "get", "secrets", "app", 1 << 13)],
            groups: BTreeMap::new(),
        };
        let drift = compute_drift(date(DAY), &days, &usage);
        assert!(drift.baseline.is_none());
        assert_eq!(drift.new_grant_count, 0, "no baseline, no diff");
        let alice = &drift.over_privilege[0];
        assert!(
            alice.days[..TREND_DAYS - 1]
                .iter()
                .all(|day| day.score.is_none())
        );
        let last = alice.last().expect("last");
        assert_eq!((last.granted_rules, last.used_rules), (2, 1));
        assert_eq!(last.score, Some(0.5));
        let never: Vec<Option<Arc<VersionedAuthorizer>>> = vec![None; TREND_DAYS];
        assert!(!compute_drift(date(DAY), &never, &usage).available);
    }

    #[test]
    fn group_grants_count_for_members_seen_with_the_group() {
        let objects = r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"viewer"},
           "rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get"]}]},
          {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"devs"},
           "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"viewer"},
           "subjects":[{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"devs"}]}]}"#;
        let days = vec![Some(version(1, objects)); TREND_DAYS];
        let usage = Usage {
            shapes: vec![
                shape("carol", "get", "configmaps", "app", 1 << 13),
                shape("dave", "get", "configmaps", "app", 1 << 13),
            ],
            groups: BTreeMap::from([("carol".to_string(), BTreeSet::from(["devs".to_string()]))]),
        };
        let drift = compute_drift(date(DAY), &days, &usage);
        let names: Vec<&str> = drift
            .over_privilege
            .iter()
            .map(|privilege| privilege.identity.as_str())
            .collect();
        assert_eq!(names, vec!["carol"], "dave was never seen in devs");
        assert_eq!(
            drift.over_privilege[0].last().and_then(|day| day.score),
            Some(1.0)
        );
    }
}
