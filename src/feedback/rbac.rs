//! RBAC feedback (issue 9, part 5): a finding of the RBAC audit accepted as a
//! known exception, and a least-privilege recommendation marked applied.
//!
//! **Accepted findings** (`rbac_exceptions`) are the catalog twin of the
//! config file's `[rbac.exceptions.*]` and follow the rules of suppressions:
//! a mandatory reason, an owner, an expiry (default
//! `[feedback] default_suppression_days`), never updated in place. They are
//! read at every audit against the clock of that moment, so one stops
//! applying at its expiry without a restart; an expired one is named in the
//! finding it no longer waives. A waived finding is not dropped: the audit
//! lists it under `accepted` with the exception that waived it.
//!
//! **Applied recommendations** (`rbac_applied_recommendations`) keep the
//! rules of the recommendation a person says was applied, with who and when.
//! Every later audit compares the identity's grants in the audited snapshot
//! with those rules and reports the remaining gap: each grant that allows
//! something the recommendation does not (a wildcard, another verb, another
//! namespace, a name not listed); Kubernetes' bootstrap grants to every
//! authenticated caller (`system:discovery`...) are not counted. The design
//! decision: coverage is judged per
//! (verb, API group, resource, name) of each grant, against rules in the same
//! scope, so a grant is "within" only when every request it allows is one the
//! recommendation allows too.

use super::{Clock, FeedbackError, Result, database, micros_to_time, stable_id};
use crate::rbac::authorizer::{Authorizer, UserInfo};
use crate::rbac::checks::{AuditReport, Finding};
use crate::rbac::config::RbacException;
use crate::rbac::recommend::RoleRecommendation;
use crate::rbac::snapshot::Snapshot;
use chrono::{DateTime, Utc};
use duckdb::{Connection, params};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Which findings an acceptance waives: unset fields match anything, as in
/// `[rbac.exceptions.*]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingSelector {
    /// A check id such as `R10` (required).
    pub check: String,
    pub subject_kind: Option<String>,
    pub subject_name: Option<String>,
    pub subject_namespace: Option<String>,
    /// As printed in findings: `ClusterRoleBinding/name` or `RoleBinding/ns/name`.
    pub binding: Option<String>,
    /// As printed in findings: `ClusterRole/name` or `Role/ns/name`.
    pub role: Option<String>,
    pub namespace: Option<String>,
}

impl FindingSelector {
    /// The same selector as a config exception, for the audit's matching rule.
    fn as_exception(&self) -> RbacException {
        RbacException {
            check: Some(self.check.clone()),
            subject_kind: self.subject_kind.clone(),
            subject_name: self.subject_name.clone(),
            subject_namespace: self.subject_namespace.clone(),
            binding: self.binding.clone(),
            role: self.role.clone(),
            namespace: self.namespace.clone(),
            // Expiry is judged by the caller, to the microsecond.
            expires: chrono::NaiveDate::MAX,
            reason: String::new(),
        }
    }

    pub fn matches(&self, finding: &Finding) -> bool {
        crate::rbac::checks::exception_matches(&self.as_exception(), finding)
    }

    fn describe(&self) -> String {
        let mut text = self.check.clone();
        let fields = [
            ("subject_kind", &self.subject_kind),
            ("subject", &self.subject_name),
            ("subject_namespace", &self.subject_namespace),
            ("binding", &self.binding),
            ("role", &self.role),
            ("namespace", &self.namespace),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                let _ = write!(text, " {name}={value}");
            }
        }
        text
    }
}

/// One accepted finding, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceptedFinding {
    pub id: String,
    #[serde(flatten)]
    pub selector: FindingSelector,
    pub reason: String,
    pub owner: String,
    /// Who ran the command.
    pub accepted_by: String,
    pub accepted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl AcceptedFinding {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.accepted_at <= now && now < self.expires_at
    }

    /// One line: what, why, whose, until when.
    pub fn describe(&self) -> String {
        format!(
            "{} {}: {} (owner {}, accepted by {} at {}, expires {})",
            self.id,
            self.selector.describe(),
            self.reason,
            self.owner,
            self.accepted_by,
            self.accepted_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// What `auditlens rbac accept` asks for.
#[derive(Debug, Clone)]
pub struct NewAcceptance {
    pub selector: FindingSelector,
    pub reason: String,
    pub owner: String,
    pub accepted_by: String,
    pub expires_at: DateTime<Utc>,
}

fn table_exists(connection: &Connection, name: &str) -> Result<bool> {
    let count: i64 = connection
        .query_row(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? \
             AND database_name = current_database() AND schema_name = 'main'",
            [name],
            |row| row.get(0),
        )
        .map_err(database(format!("looking for table {name}")))?;
    Ok(count > 0)
}

/// Stores an acceptance after checking it: a check id, something narrower
/// than the whole check (a subject, binding or role), a reason, an owner,
/// an expiry in the future and at most a year away.
pub fn accept(
    connection: &Connection,
    new: &NewAcceptance,
    clock: &dyn Clock,
) -> Result<AcceptedFinding> {
    let now = clock.now();
    let selector = &new.selector;
    if !crate::rbac::checks::CHECKS
        .iter()
        .any(|check| check.id == selector.check)
    {
        return Err(FeedbackError::Invalid(format!(
            "{:?} is not a check of the RBAC audit (R01 ... R32)",
            selector.check
        )));
    }
    if selector.subject_name.is_none() && selector.binding.is_none() && selector.role.is_none() {
        return Err(FeedbackError::Invalid(
            "an accepted finding names its subject, binding or role (--subject, --binding, --role): \
             a whole check is switched off in the config file, not accepted"
                .into(),
        ));
    }
    if new.reason.trim().is_empty() {
        return Err(FeedbackError::Invalid(
            "an accepted finding needs a reason (--reason)".into(),
        ));
    }
    if new.owner.trim().is_empty() {
        return Err(FeedbackError::Invalid(
            "an accepted finding needs an owner (--owner)".into(),
        ));
    }
    if new.expires_at <= now {
        return Err(FeedbackError::Invalid(format!(
            "expiry {} is not in the future",
            new.expires_at.to_rfc3339()
        )));
    }
    if new.expires_at > now + chrono::Duration::days(366) {
        return Err(FeedbackError::Invalid(
            "an accepted finding expires within a year: renew it, do not forget it".into(),
        ));
    }
    let id = stable_id(
        "acc",
        &[
            &selector.describe(),
            &now.timestamp_micros().to_string(),
            &new.accepted_by,
        ],
    );
    connection
        .execute(
            "INSERT INTO rbac_exceptions (id, check_id, subject_kind, subject_name, subject_namespace, binding, role, \
             namespace, reason, owner, accepted_by, accepted_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?))",
            params![
                id,
                selector.check,
                selector.subject_kind,
                selector.subject_name,
                selector.subject_namespace,
                selector.binding,
                selector.role,
                selector.namespace,
                new.reason,
                new.owner,
                new.accepted_by,
                now.timestamp_micros(),
                new.expires_at.timestamp_micros()
            ],
        )
        .map_err(database(format!("storing accepted finding {id}")))?;
    Ok(AcceptedFinding {
        id,
        selector: selector.clone(),
        reason: new.reason.clone(),
        owner: new.owner.clone(),
        accepted_by: new.accepted_by.clone(),
        accepted_at: micros_to_time(now.timestamp_micros()),
        expires_at: micros_to_time(new.expires_at.timestamp_micros()),
    })
}

/// Every accepted finding, oldest first (none when the table does not exist,
/// as in a catalog opened read-only before the first acceptance).
pub fn accepted_findings(connection: &Connection) -> Result<Vec<AcceptedFinding>> {
    if !table_exists(connection, "rbac_exceptions")? {
        return Ok(Vec::new());
    }
    let mut statement = connection
        .prepare(
            "SELECT id, check_id, subject_kind, subject_name, subject_namespace, binding, role, namespace, \
                    reason, owner, accepted_by, epoch_us(accepted_at), epoch_us(expires_at) \
             FROM rbac_exceptions ORDER BY accepted_at, id",
        )
        .map_err(database("reading accepted findings"))?;
    let rows = statement
        .query_map([], |row| {
            Ok(AcceptedFinding {
                id: row.get(0)?,
                selector: FindingSelector {
                    check: row.get(1)?,
                    subject_kind: row.get(2)?,
                    subject_name: row.get(3)?,
                    subject_namespace: row.get(4)?,
                    binding: row.get(5)?,
                    role: row.get(6)?,
                    namespace: row.get(7)?,
                },
                reason: row.get(8)?,
                owner: row.get(9)?,
                accepted_by: row.get(10)?,
                accepted_at: micros_to_time(row.get(11)?),
                expires_at: micros_to_time(row.get(12)?),
            })
        })
        .map_err(database("reading accepted findings"))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("reading accepted findings"))
}

/// A finding waived by an accepted exception, as the audit lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaivedFinding {
    pub finding: Finding,
    /// `acc-…` for the catalog, the `[rbac.exceptions.<name>]` name for the config.
    pub exception: String,
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Applies the accepted findings in force at `now` to an audit: a matching
/// finding moves to `suppressed` (with the acceptance's id); one matched
/// only by expired acceptances stays, its reason naming the expiry.
pub fn apply_accepted(
    mut report: AuditReport,
    accepted: &[AcceptedFinding],
    now: DateTime<Utc>,
) -> AuditReport {
    if accepted.is_empty() {
        return report;
    }
    for acceptance in accepted.iter().filter(|a| now >= a.expires_at) {
        report.expired_exceptions.push(format!(
            "{} (expired {})",
            acceptance.id,
            acceptance.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    let findings = std::mem::take(&mut report.findings);
    'findings: for mut finding in findings {
        let mut expired_notes = Vec::new();
        for acceptance in accepted {
            if !acceptance.selector.matches(&finding) {
                continue;
            }
            if acceptance.is_active(now) {
                report.suppressed.push((finding, acceptance.id.clone()));
                continue 'findings;
            }
            if now >= acceptance.expires_at {
                expired_notes.push(format!(
                    " [accepted as {} until {}, expired]",
                    acceptance.id,
                    acceptance.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
                ));
            }
        }
        for note in expired_notes {
            finding.reason.push_str(&note);
        }
        report.findings.push(finding);
    }
    report
}

/// The waived findings of a report, with the reason and expiry of what waived them.
pub fn waived(
    report: &AuditReport,
    accepted: &[AcceptedFinding],
    config: &crate::rbac::config::RbacConfig,
) -> Vec<WaivedFinding> {
    report
        .suppressed
        .iter()
        .map(|(finding, name)| {
            let (reason, expires_at) = match accepted.iter().find(|a| &a.id == name) {
                Some(acceptance) => (acceptance.reason.clone(), Some(acceptance.expires_at)),
                None => (
                    config
                        .exceptions
                        .get(name)
                        .map(|exception| exception.reason.clone())
                        .unwrap_or_default(),
                    config
                        .exceptions
                        .get(name)
                        .and_then(|exception| exception.expires.and_hms_opt(23, 59, 59))
                        .map(|time| time.and_utc()),
                ),
            };
            WaivedFinding {
                finding: finding.clone(),
                exception: name.clone(),
                reason,
                expires_at,
            }
        })
        .collect()
}

// ------------------------------------------------------------ recommendations

/// One rule of a recommendation with where it applies (`None`: cluster-wide).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopedRule {
    pub namespace: Option<String>,
    pub rule: PolicyRule,
}

/// A recommendation a person said was applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedRecommendation {
    pub id: String,
    pub identity: String,
    /// Groups the identity's requests carried (their bindings count too).
    pub groups: Vec<String>,
    pub rules: Vec<ScopedRule>,
    pub applied_by: String,
    pub applied_at: DateTime<Utc>,
}

/// The rules a recommendation grants, each in the scope its binding gives it.
pub fn recommended_rules(recommendation: &RoleRecommendation) -> Vec<ScopedRule> {
    let mut rules = Vec::new();
    for binding in &recommendation.role_bindings {
        let namespace = binding.metadata.namespace.clone();
        let role_rules = if binding.role_ref.kind == "ClusterRole" {
            recommendation
                .cluster_roles
                .iter()
                .find(|role| role.metadata.name.as_deref() == Some(binding.role_ref.name.as_str()))
                .and_then(|role| role.rules.clone())
        } else {
            recommendation
                .roles
                .iter()
                .find(|role| {
                    role.metadata.name.as_deref() == Some(binding.role_ref.name.as_str())
                        && role.metadata.namespace == namespace
                })
                .and_then(|role| role.rules.clone())
        };
        for rule in role_rules.unwrap_or_default() {
            rules.push(ScopedRule {
                namespace: namespace.clone(),
                rule,
            });
        }
    }
    for binding in &recommendation.cluster_role_bindings {
        let role_rules = recommendation
            .cluster_roles
            .iter()
            .find(|role| role.metadata.name.as_deref() == Some(binding.role_ref.name.as_str()))
            .and_then(|role| role.rules.clone());
        for rule in role_rules.unwrap_or_default() {
            rules.push(ScopedRule {
                namespace: None,
                rule,
            });
        }
    }
    rules
}

/// Stores `recommendation` as applied by `actor`, now.
pub fn mark_applied(
    connection: &Connection,
    recommendation: &RoleRecommendation,
    groups: &[String],
    actor: &str,
    clock: &dyn Clock,
) -> Result<AppliedRecommendation> {
    let now = clock.now();
    let rules = recommended_rules(recommendation);
    if rules.is_empty() {
        return Err(FeedbackError::Invalid(format!(
            "the recommendation for {} grants nothing: nothing to mark applied",
            recommendation.identity
        )));
    }
    let rules_json = serde_json::to_string(&rules)
        .map_err(|error| FeedbackError::Invalid(format!("encoding the rules: {error}")))?;
    let groups_json = serde_json::to_string(groups)
        .map_err(|error| FeedbackError::Invalid(format!("encoding the groups: {error}")))?;
    let id = stable_id(
        "app",
        &[
            &recommendation.identity,
            &now.timestamp_micros().to_string(),
            &rules_json,
        ],
    );
    connection
        .execute(
            "INSERT INTO rbac_applied_recommendations (id, identity, groups_json, rules_json, applied_by, applied_at) \
             VALUES (?, ?, ?, ?, ?, make_timestamp(?))",
            params![
                id,
                recommendation.identity,
                groups_json,
                rules_json,
                actor,
                now.timestamp_micros()
            ],
        )
        .map_err(database(format!("storing applied recommendation {id}")))?;
    Ok(AppliedRecommendation {
        id,
        identity: recommendation.identity.clone(),
        groups: groups.to_vec(),
        rules,
        applied_by: actor.to_string(),
        applied_at: micros_to_time(now.timestamp_micros()),
    })
}

/// The newest applied recommendation per identity.
pub fn applied_recommendations(connection: &Connection) -> Result<Vec<AppliedRecommendation>> {
    if !table_exists(connection, "rbac_applied_recommendations")? {
        return Ok(Vec::new());
    }
    let mut statement = connection
        .prepare(
            "SELECT id, identity, groups_json, rules_json, applied_by, epoch_us(applied_at) \
             FROM rbac_applied_recommendations \
             QUALIFY row_number() OVER (PARTITION BY identity ORDER BY applied_at DESC, id DESC) = 1 \
             ORDER BY identity",
        )
        .map_err(database("reading applied recommendations"))?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .map_err(database("reading applied recommendations"))?
        .collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("reading applied recommendations"))?;
    rows.into_iter()
        .map(|(id, identity, groups, rules, applied_by, at)| {
            let decode = |what: &str, error: serde_json::Error| {
                FeedbackError::Invalid(format!(
                    "applied recommendation {id}: unreadable {what}: {error}"
                ))
            };
            Ok(AppliedRecommendation {
                groups: serde_json::from_str(&groups).map_err(|error| decode("groups", error))?,
                rules: serde_json::from_str(&rules).map_err(|error| decode("rules", error))?,
                id,
                identity,
                applied_by,
                applied_at: micros_to_time(at),
            })
        })
        .collect()
}

/// A grant that allows more than the applied recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrantBeyond {
    pub binding: String,
    pub role: String,
    /// `None`: cluster-wide.
    pub namespace: Option<String>,
    pub rule: PolicyRule,
    /// What of the rule the recommendation does not allow, e.g.
    /// `delete secrets`, `* *`, `get /metrics`.
    pub beyond: Vec<String>,
}

/// How the identity's grants compare with the recommendation applied to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendationCheck {
    pub identity: String,
    pub applied: String,
    pub applied_by: String,
    pub applied_at: DateTime<Utc>,
    /// Nothing granted beyond the recommendation.
    pub matches: bool,
    /// The remaining gap.
    pub grants_beyond: Vec<GrantBeyond>,
}

fn listed(values: &Option<Vec<String>>) -> Vec<String> {
    values.clone().unwrap_or_default()
}

fn allows_value(allowed: &[String], value: &str) -> bool {
    allowed.iter().any(|entry| entry == "*" || entry == value)
}

fn url_allowed(allowed: &[String], url: &str) -> bool {
    allowed.iter().any(|entry| {
        entry == "*"
            || entry == url
            || entry
                .strip_suffix('*')
                .is_some_and(|prefix| url.starts_with(prefix))
    })
}

/// Whether a recommended rule in `scope` allows verb/group/resource (and
/// `name`, `None` meaning every name) in `namespace`.
fn covers(
    recommended: &ScopedRule,
    namespace: Option<&str>,
    verb: &str,
    group: &str,
    resource: &str,
    name: Option<&str>,
) -> bool {
    if let Some(scope) = &recommended.namespace
        && namespace != Some(scope.as_str())
    {
        return false;
    }
    let rule = &recommended.rule;
    if !allows_value(&rule.verbs, verb)
        || !allows_value(&listed(&rule.api_groups), group)
        || !allows_value(&listed(&rule.resources), resource)
    {
        return false;
    }
    let names = listed(&rule.resource_names);
    names.is_empty() || name.is_some_and(|name| names.iter().any(|listed| listed == name))
}

/// What of `rule` (granted in `namespace`) no recommended rule allows.
fn beyond(rule: &PolicyRule, namespace: Option<&str>, recommended: &[ScopedRule]) -> Vec<String> {
    let mut outside = Vec::new();
    let names = listed(&rule.resource_names);
    for verb in &rule.verbs {
        for group in listed(&rule.api_groups) {
            for resource in listed(&rule.resources) {
                let covered = if names.is_empty() {
                    recommended
                        .iter()
                        .any(|r| covers(r, namespace, verb, &group, &resource, None))
                } else {
                    names.iter().all(|name| {
                        recommended
                            .iter()
                            .any(|r| covers(r, namespace, verb, &group, &resource, Some(name)))
                    })
                };
                if !covered {
                    let qualified = if group.is_empty() {
                        resource.clone()
                    } else {
                        format!("{resource}.{group}")
                    };
                    outside.push(format!("{verb} {qualified}"));
                }
            }
        }
        for url in listed(&rule.non_resource_urls) {
            let covered = recommended.iter().any(|r| {
                r.namespace.is_none()
                    && allows_value(&r.rule.verbs, verb)
                    && url_allowed(&listed(&r.rule.non_resource_urls), &url)
            });
            if !covered {
                outside.push(format!("{verb} {url}"));
            }
        }
    }
    outside
}

/// A Kubernetes bootstrap grant to every (authenticated or anonymous) caller,
/// such as `system:discovery`: not the identity's own, so never its gap.
fn everyones_bootstrap_grant(grant: &crate::rbac::authorizer::Grant) -> bool {
    grant.subject.kind == "Group"
        && matches!(
            grant.subject.name.as_str(),
            "system:authenticated" | "system:unauthenticated"
        )
        && grant.role.starts_with("ClusterRole/system:")
}

/// Compares each identity's grants in `snapshot` with the recommendation
/// applied to it.
pub fn check_applied(
    snapshot: &Snapshot,
    applied: &[AppliedRecommendation],
) -> Vec<RecommendationCheck> {
    if applied.is_empty() {
        return Vec::new();
    }
    let authorizer = Authorizer::new(snapshot);
    applied
        .iter()
        .map(|recommendation| {
            let user =
                UserInfo::with_implicit_groups(&recommendation.identity, &recommendation.groups);
            let grants_beyond: Vec<GrantBeyond> = authorizer
                .grants_for(&user)
                .into_iter()
                .filter(|grant| !everyones_bootstrap_grant(grant))
                .filter_map(|grant| {
                    let outside = if user.is_master() {
                        vec!["* * (system:masters bypasses RBAC)".to_string()]
                    } else {
                        beyond(
                            &grant.rule,
                            grant.namespace.as_deref(),
                            &recommendation.rules,
                        )
                    };
                    (!outside.is_empty()).then_some(GrantBeyond {
                        binding: grant.binding,
                        role: grant.role,
                        namespace: grant.namespace,
                        rule: grant.rule,
                        beyond: outside,
                    })
                })
                .collect();
            RecommendationCheck {
                identity: recommendation.identity.clone(),
                applied: recommendation.id.clone(),
                applied_by: recommendation.applied_by.clone(),
                applied_at: recommendation.applied_at,
                matches: grants_beyond.is_empty(),
                grants_beyond,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Severity;
    use crate::feedback::ManualClock;
    use crate::rbac::checks::{FindingSubject, Origin};
    use crate::test_support::{at, catalog};

    fn finding(check: &str, account: &str) -> Finding {
        Finding {
            check: check.into(),
            severity: Severity::High,
            subject: FindingSubject {
                kind: "ServiceAccount".into(),
                name: account.into(),
                namespace: Some("monitoring".into()),
            },
            binding: format!("ClusterRoleBinding/{account}"),
            role: "ClusterRole/secret-reader".into(),
            namespace: None,
            reason: "reads every secret".into(),
            fix: std::borrow::Cow::Borrowed("narrow it"),
            origin: Origin::Custom,
        }
    }

    fn acceptance(account: &str, expires_at: DateTime<Utc>) -> NewAcceptance {
        NewAcceptance {
            selector: FindingSelector {
                check: "R10".into(),
                subject_name: Some(account.into()),
                ..FindingSelector::default()
            },
            reason: "scrape auth; ticket SEC-12".into(),
            owner: "platform".into(),
            accepted_by: "alice".into(),
            expires_at,
        }
    }

    #[test]
    fn an_accepted_finding_is_waived_until_its_expiry_without_a_restart() {
        let connection = catalog();
        let clock = ManualClock::new(at("2026-11-01T00:00:00Z"));
        let stored = accept(
            &connection,
            &acceptance("prometheus", at("2026-12-01T00:00:00Z")),
            &clock,
        )
        .expect("accepted");
        let report = || AuditReport {
            findings: vec![finding("R10", "prometheus"), finding("R10", "grafana")],
            ..AuditReport::default()
        };
        // What a long-running process does: read the table at each audit.
        let audit = |now| {
            let accepted = accepted_findings(&connection).expect("read");
            apply_accepted(report(), &accepted, now)
        };
        let before = audit(at("2026-11-30T23:59:59Z"));
        assert_eq!(before.findings.len(), 1);
        assert_eq!(before.findings[0].subject.name, "grafana");
        assert_eq!(before.suppressed.len(), 1);
        assert_eq!(before.suppressed[0].1, stored.id);
        assert!(before.expired_exceptions.is_empty());
        let after = audit(at("2026-12-01T00:00:00Z"));
        assert_eq!(after.findings.len(), 2, "expired at its expiry");
        assert!(after.suppressed.is_empty());
        assert!(
            after.findings[0].reason.contains(&stored.id)
                && after.findings[0].reason.contains("expired"),
            "{}",
            after.findings[0].reason
        );
        assert_eq!(after.expired_exceptions.len(), 1);
    }

    #[test]
    fn an_acceptance_needs_a_reason_an_owner_a_subject_and_a_future_expiry() {
        let connection = catalog();
        let clock = ManualClock::new(at("2026-11-01T00:00:00Z"));
        let future = at("2026-11-15T00:00:00Z");
        let mut no_reason = acceptance("prometheus", future);
        no_reason.reason = " ".into();
        assert!(accept(&connection, &no_reason, &clock).is_err());
        let mut no_owner = acceptance("prometheus", future);
        no_owner.owner = String::new();
        assert!(accept(&connection, &no_owner, &clock).is_err());
        let mut whole_check = acceptance("prometheus", future);
        whole_check.selector.subject_name = None;
        assert!(accept(&connection, &whole_check, &clock).is_err());
        let mut unknown = acceptance("prometheus", future);
        unknown.selector.check = "R99".into();
        assert!(accept(&connection, &unknown, &clock).is_err());
        assert!(
            accept(
                &connection,
                &acceptance("prometheus", at("2026-10-01T00:00:00Z")),
                &clock
            )
            .is_err()
        );
        assert!(
            accept(
                &connection,
                &acceptance("prometheus", at("2028-01-01T00:00:00Z")),
                &clock
            )
            .is_err()
        );
        assert!(accepted_findings(&connection).expect("read").is_empty());
    }

    fn rule(verbs: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: verbs.iter().map(|verb| verb.to_string()).collect(),
            api_groups: Some(vec![String::new()]),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            resource_names: (!names.is_empty())
                .then(|| names.iter().map(|name| name.to_string()).collect()),
            non_resource_urls: None,
        }
    }

    #[test]
    fn coverage_is_judged_per_verb_resource_name_and_scope() {
        let recommended = vec![
            ScopedRule {
                namespace: Some("shop".into()),
                rule: rule(&["get"], &["configmaps"], &["cart-config"]),
            },
            ScopedRule {
                namespace: Some("shop".into()),
                rule: rule(&["list", "watch"], &["pods"], &[]),
            },
        ];
        let shop = Some("shop");
        assert!(
            beyond(
                &rule(&["get"], &["configmaps"], &["cart-config"]),
                shop,
                &recommended
            )
            .is_empty()
        );
        assert!(beyond(&rule(&["list"], &["pods"], &[]), shop, &recommended).is_empty());
        assert_eq!(
            beyond(&rule(&["get"], &["configmaps"], &[]), shop, &recommended),
            vec!["get configmaps"],
            "every name is more than one name"
        );
        assert_eq!(
            beyond(
                &rule(&["list"], &["pods"], &[]),
                Some("payments"),
                &recommended
            ),
            vec!["list pods"],
            "another namespace"
        );
        assert_eq!(
            beyond(&rule(&["list"], &["pods"], &[]), None, &recommended),
            vec!["list pods"],
            "cluster-wide"
        );
        assert_eq!(
            beyond(&rule(&["*"], &["pods"], &[]), shop, &recommended),
            vec!["* pods"]
        );
    }
}
