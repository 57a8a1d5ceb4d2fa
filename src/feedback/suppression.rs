//! Suppressions: "detector D for identity/namespace/source pattern P is
//! expected", with a mandatory reason, an owner and an expiry.
//!
//! A suppression never drops an anomaly: the anomaly is stored and counted,
//! and marked `suppressed_by = <suppression id>` so alert delivery skips it
//! (see [`super::marker`]). Expiry is checked against the clock each time
//! anomalies are recorded, so a suppression stops applying at its expiry
//! without a restart; renewing means creating a new one (or editing the
//! config entry's `expires`).
//!
//! Namespace and source patterns are checked against the anomaly's evidence
//! requests (the `events` view): *every* evidence request must match. When the
//! evidence cannot be read, a suppression with such a pattern does not apply:
//! an unverifiable match alerts rather than hides.

use super::config::FeedbackConfig;
use super::pattern::glob_match;
use super::{Clock, FeedbackError, Result, database, micros_to_time, stable_id};
use crate::detect::Anomaly;
use chrono::{DateTime, Utc};
use duckdb::{Connection, params};
use serde::Serialize;

/// One suppression, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppression {
    pub id: String,
    pub detector: String,
    pub identity_pattern: String,
    pub namespace_pattern: Option<String>,
    pub source_pattern: Option<String>,
    pub reason: String,
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `verdict:<triage seq>` or `config`.
    pub origin: String,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Where an anomaly's evidence requests were: (namespace, source address) of each.
pub type EvidenceScope = Vec<(Option<String>, Option<String>)>;

impl Suppression {
    /// Whether it applies at `now` (created, not expired, not retired).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.created_at <= now && now < self.expires_at && self.retired_at.is_none()
    }

    /// Whether the detector and identity patterns match (the cheap part).
    pub fn matches_subject(&self, anomaly: &Anomaly) -> bool {
        glob_match(&self.detector, &anomaly.detector)
            && glob_match(&self.identity_pattern, &anomaly.identity)
    }

    /// Whether it needs the evidence requests' namespaces or addresses.
    pub fn needs_evidence(&self) -> bool {
        self.namespace_pattern.is_some() || self.source_pattern.is_some()
    }

    /// Whether every evidence request matches the namespace and source
    /// patterns. `None` (evidence unreadable) or no evidence: no match.
    pub fn matches_evidence(&self, scope: Option<&EvidenceScope>) -> bool {
        if !self.needs_evidence() {
            return true;
        }
        let Some(scope) = scope.filter(|scope| !scope.is_empty()) else {
            return false;
        };
        scope.iter().all(|(namespace, source)| {
            let namespace_ok = self
                .namespace_pattern
                .as_deref()
                .is_none_or(|pattern| glob_match(pattern, namespace.as_deref().unwrap_or("")));
            let source_ok = self
                .source_pattern
                .as_deref()
                .is_none_or(|pattern| glob_match(pattern, source.as_deref().unwrap_or("")));
            namespace_ok && source_ok
        })
    }

    /// One line for people: what, for whom, why, until when.
    pub fn describe(&self) -> String {
        let mut scope = format!("{} for {}", self.detector, self.identity_pattern);
        if let Some(namespace) = &self.namespace_pattern {
            scope.push_str(&format!(" in namespace {namespace}"));
        }
        if let Some(source) = &self.source_pattern {
            scope.push_str(&format!(" from {source}"));
        }
        format!(
            "{} {scope} until {} ({}, owner {})",
            self.id,
            self.expires_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.reason,
            self.owner
        )
    }
}

/// A suppression to create.
#[derive(Debug, Clone)]
pub struct NewSuppression {
    pub detector: String,
    pub identity_pattern: String,
    pub namespace_pattern: Option<String>,
    pub source_pattern: Option<String>,
    pub reason: String,
    pub owner: String,
    pub expires_at: DateTime<Utc>,
    pub origin: String,
}

fn check_new(new: &NewSuppression, now: DateTime<Utc>) -> Result<()> {
    for (field, value) in [
        ("detector", &new.detector),
        ("identity pattern", &new.identity_pattern),
        ("reason", &new.reason),
        ("owner", &new.owner),
    ] {
        if value.trim().is_empty() {
            return Err(FeedbackError::Invalid(format!(
                "a suppression needs a {field}"
            )));
        }
    }
    if new.expires_at <= now {
        return Err(FeedbackError::Invalid(format!(
            "a suppression must expire in the future (expires {}, now {})",
            new.expires_at, now
        )));
    }
    Ok(())
}

/// Stores a new suppression (idempotent on its ID, which hashes its origin
/// and content) and returns it.
pub fn create(
    connection: &Connection,
    new: &NewSuppression,
    clock: &dyn Clock,
) -> Result<Suppression> {
    let now = clock.now();
    check_new(new, now)?;
    let id = stable_id(
        "sup",
        &[
            &new.origin,
            &new.detector,
            &new.identity_pattern,
            new.namespace_pattern.as_deref().unwrap_or(""),
            new.source_pattern.as_deref().unwrap_or(""),
        ],
    );
    connection
        .execute(
            "INSERT OR IGNORE INTO suppressions (id, detector, identity_pattern, namespace_pattern, source_pattern, \
             reason, owner, created_at, expires_at, origin) \
             VALUES (?, ?, ?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?), ?)",
            params![
                id,
                new.detector,
                new.identity_pattern,
                new.namespace_pattern,
                new.source_pattern,
                new.reason,
                new.owner,
                now.timestamp_micros(),
                new.expires_at.timestamp_micros(),
                new.origin
            ],
        )
        .map_err(database(format!("storing suppression {id}")))?;
    get(connection, &id)?
        .ok_or_else(|| FeedbackError::Invalid(format!("suppression {id} vanished after insert")))
}

const COLUMNS: &str = "id, detector, identity_pattern, namespace_pattern, source_pattern, reason, owner, \
     epoch_us(created_at), epoch_us(expires_at), origin, epoch_us(retired_at)";

fn from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Suppression> {
    Ok(Suppression {
        id: row.get(0)?,
        detector: row.get(1)?,
        identity_pattern: row.get(2)?,
        namespace_pattern: row.get(3)?,
        source_pattern: row.get(4)?,
        reason: row.get(5)?,
        owner: row.get(6)?,
        created_at: micros_to_time(row.get(7)?),
        expires_at: micros_to_time(row.get(8)?),
        origin: row.get(9)?,
        retired_at: row.get::<_, Option<i64>>(10)?.map(micros_to_time),
    })
}

fn get(connection: &Connection, id: &str) -> Result<Option<Suppression>> {
    let mut statement = connection
        .prepare(&format!("SELECT {COLUMNS} FROM suppressions WHERE id = ?"))
        .map_err(database("reading a suppression"))?;
    let mut rows = statement
        .query_map([id], from_row)
        .map_err(database("reading a suppression"))?;
    rows.next()
        .transpose()
        .map_err(database("reading a suppression"))
}

/// Every suppression ever stored, newest first.
pub fn list(connection: &Connection) -> Result<Vec<Suppression>> {
    let mut statement = connection
        .prepare(&format!(
            "SELECT {COLUMNS} FROM suppressions ORDER BY created_at DESC, id"
        ))
        .map_err(database("listing suppressions"))?;
    let rows = statement
        .query_map([], from_row)
        .map_err(database("listing suppressions"))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("listing suppressions"))
}

/// The suppressions in force at `now`.
pub fn active(connection: &Connection, now: DateTime<Utc>) -> Result<Vec<Suppression>> {
    let mut statement = connection
        .prepare(&format!(
            "SELECT {COLUMNS} FROM suppressions WHERE retired_at IS NULL \
             AND created_at <= make_timestamp(?) AND expires_at > make_timestamp(?) ORDER BY created_at, id"
        ))
        .map_err(database("reading active suppressions"))?;
    let micros = now.timestamp_micros();
    let rows = statement
        .query_map(params![micros, micros], from_row)
        .map_err(database("reading active suppressions"))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("reading active suppressions"))
}

/// Makes the `suppressions` table agree with `[[feedback.suppressions]]`:
/// new entries are added (expiring at their `expires`, else first load plus
/// `default_suppression_days`, kept across restarts so a restart never renews
/// anything), changed reasons, owners and expiries are updated, and entries no
/// longer in the file are retired (kept, never deleted). Returns the
/// suppressions the file defines.
pub fn sync_config_suppressions(
    connection: &Connection,
    config: &FeedbackConfig,
    clock: &dyn Clock,
) -> Result<Vec<Suppression>> {
    config.validate().map_err(FeedbackError::Invalid)?;
    let now = clock.now();
    let mut ids = Vec::new();
    for entry in &config.suppressions {
        let id = stable_id(
            "sup",
            &[
                "config",
                &entry.detector,
                &entry.identity,
                entry.namespace.as_deref().unwrap_or(""),
                entry.source.as_deref().unwrap_or(""),
            ],
        );
        let explicit_expiry = match &entry.expires {
            Some(text) => Some(super::parse_time(text).map_err(FeedbackError::Invalid)?),
            None => None,
        };
        match get(connection, &id)? {
            Some(existing) => {
                let expires_at = explicit_expiry.unwrap_or_else(|| {
                    // Without an explicit expiry the first load's stays.
                    if existing.retired_at.is_some() {
                        now + chrono::Duration::days(i64::from(config.default_suppression_days))
                    } else {
                        existing.expires_at
                    }
                });
                connection
                    .execute(
                        "UPDATE suppressions SET reason = ?, owner = ?, expires_at = make_timestamp(?), retired_at = NULL WHERE id = ?",
                        params![entry.reason, entry.owner, expires_at.timestamp_micros(), id],
                    )
                    .map_err(database(format!("updating config suppression {id}")))?;
            }
            None => {
                let expires_at = explicit_expiry.unwrap_or_else(|| {
                    now + chrono::Duration::days(i64::from(config.default_suppression_days))
                });
                connection
                    .execute(
                        "INSERT INTO suppressions (id, detector, identity_pattern, namespace_pattern, source_pattern, \
                         reason, owner, created_at, expires_at, origin) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?), 'config')",
                        params![
                            id,
                            entry.detector,
                            entry.identity,
                            entry.namespace,
                            entry.source,
                            entry.reason,
                            entry.owner,
                            now.timestamp_micros(),
                            expires_at.timestamp_micros()
                        ],
                    )
                    .map_err(database(format!("adding config suppression {id}")))?;
            }
        }
        ids.push(id);
    }
    // Entries removed from the file stop applying; their rows stay.
    let mut statement = connection
        .prepare("SELECT id FROM suppressions WHERE origin = 'config' AND retired_at IS NULL")
        .map_err(database("reading config suppressions"))?;
    let stored: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .map_err(database("reading config suppressions"))?
        .collect::<duckdb::Result<_>>()
        .map_err(database("reading config suppressions"))?;
    for id in stored.into_iter().filter(|id| !ids.contains(id)) {
        connection
            .execute(
                "UPDATE suppressions SET retired_at = make_timestamp(?) WHERE id = ?",
                params![now.timestamp_micros(), id],
            )
            .map_err(database(format!("retiring config suppression {id}")))?;
    }
    let mut defined = Vec::new();
    for id in &ids {
        if let Some(suppression) = get(connection, id)? {
            defined.push(suppression);
        }
    }
    Ok(defined)
}

/// [`sync_config_suppressions`] on the catalog of a data folder (created if
/// missing), for commands that store anomalies outside the daemon.
pub fn sync_config_suppressions_in(
    data_dir: &std::path::Path,
    config: &FeedbackConfig,
) -> Result<Vec<Suppression>> {
    std::fs::create_dir_all(data_dir).map_err(|error| FeedbackError::File {
        path: data_dir.to_path_buf(),
        message: error.to_string(),
    })?;
    let path = data_dir.join("catalog.duckdb");
    let connection = Connection::open(&path).map_err(|error| {
        if error.to_string().to_ascii_lowercase().contains("lock") {
            FeedbackError::CatalogBusy { path: path.clone() }
        } else {
            FeedbackError::DuckDb {
                context: format!("opening {}", path.display()),
                source: error,
            }
        }
    })?;
    crate::detect::store::ensure_tables(&connection)
        .map_err(|error| FeedbackError::Invalid(error.to_string()))?;
    sync_config_suppressions(&connection, config, &super::SystemClock)
}

/// Reads the namespaces and source addresses of an anomaly's evidence
/// requests from the `events` view, if this connection has one. `None` when
/// the view is missing, the query fails or no evidence request is found.
pub fn evidence_scope(connection: &Connection, anomaly: &Anomaly) -> Option<EvidenceScope> {
    evidence_scope_of(
        connection,
        &anomaly.evidence_audit_ids,
        anomaly.window_start_micros(),
        anomaly.window_end_micros(),
    )
}

/// [`evidence_scope`] for evidence IDs and a window (UTC µs): what the triage
/// queue shows so a person can narrow a suppression to where the evidence is.
pub fn evidence_scope_of(
    connection: &Connection,
    evidence_audit_ids: &[String],
    window_start: i64,
    window_end: i64,
) -> Option<EvidenceScope> {
    if evidence_audit_ids.is_empty() {
        return None;
    }
    let has_view: i64 = connection
        .query_row(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = 'events' AND NOT internal",
            [],
            |row| row.get(0),
        )
        .ok()?;
    if has_view == 0 {
        return None;
    }
    let hour = 3_600_000_000i64;
    let placeholders = vec!["?"; evidence_audit_ids.len()].join(", ");
    let sql = format!(
        "SELECT DISTINCT namespace, source_ip FROM events WHERE audit_id IN ({placeholders}) \
         AND ts >= make_timestamp(?) AND ts < make_timestamp(?) AND stage <> 'RequestReceived'"
    );
    let mut values: Vec<duckdb::types::Value> = evidence_audit_ids
        .iter()
        .map(|id| duckdb::types::Value::Text(id.clone()))
        .collect();
    values.push(duckdb::types::Value::BigInt(window_start - hour));
    values.push(duckdb::types::Value::BigInt(
        window_end.max(window_start) + hour,
    ));
    let mut statement = connection.prepare(&sql).ok()?;
    let rows = statement
        .query_map(duckdb::params_from_iter(values), |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, Option<String>>(1)?,
            ))
        })
        .ok()?;
    let scope: EvidenceScope = rows.collect::<duckdb::Result<_>>().ok()?;
    (!scope.is_empty()).then_some(scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::ManualClock;
    use crate::test_support::{at, catalog};

    fn config_with(expires: Option<&str>) -> FeedbackConfig {
        FeedbackConfig {
            suppressions: vec![super::super::SuppressionConfig {
                detector: "admission.webhook_changed".into(),
                identity: "system:serviceaccount:cert-manager:*".into(),
                namespace: None,
                source: None,
                reason: "cainjector patches caBundle".into(),
                owner: "platform".into(),
                expires: expires.map(str::to_string),
            }],
            ..FeedbackConfig::default()
        }
    }

    #[test]
    fn config_suppressions_sync_keep_their_expiry_across_restarts_and_retire_when_removed() {
        let connection = catalog();
        let clock = ManualClock::new(at("2026-11-01T00:00:00Z"));
        let first =
            sync_config_suppressions(&connection, &config_with(None), &clock).expect("sync");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].expires_at, at("2026-12-01T00:00:00Z"));
        // A restart ten days later does not renew it.
        clock.advance(chrono::Duration::days(10));
        let again =
            sync_config_suppressions(&connection, &config_with(None), &clock).expect("sync");
        assert_eq!(again[0].expires_at, at("2026-12-01T00:00:00Z"));
        // An explicit expiry renews it.
        let renewed =
            sync_config_suppressions(&connection, &config_with(Some("2027-01-31")), &clock)
                .expect("sync");
        assert_eq!(renewed[0].expires_at, at("2027-01-31T00:00:00Z"));
        // Removed from the file: retired, not deleted.
        sync_config_suppressions(&connection, &FeedbackConfig::default(), &clock).expect("sync");
        let all = list(&connection).expect("list");
        assert_eq!(all.len(), 1);
        assert!(all[0].retired_at.is_some());
        assert!(active(&connection, clock.now()).expect("active").is_empty());
    }

    #[test]
    fn evidence_patterns_need_every_request_to_match_and_unreadable_evidence_never_matches() {
        let suppression = Suppression {
            id: "sup-1".into(),
            detector: "workload.*".into(),
            identity_pattern: "*@example.com".into(),
            namespace_pattern: Some("team-*".into()),
            source_pattern: None,
            reason: "r".into(),
            owner: "o".into(),
            created_at: at("2026-11-01T00:00:00Z"),
            expires_at: at("2026-12-01T00:00:00Z"),
            origin: "config".into(),
            retired_at: None,
        };
        let inside: EvidenceScope = vec![
            (Some("team-a".into()), Some("10.0.0.1".into())),
            (Some("team-b".into()), None),
        ];
        let partly: EvidenceScope = vec![
            (Some("team-a".into()), None),
            (Some("kube-system".into()), None),
        ];
        assert!(suppression.matches_evidence(Some(&inside)));
        assert!(!suppression.matches_evidence(Some(&partly)));
        assert!(!suppression.matches_evidence(None));
        assert!(!suppression.matches_evidence(Some(&Vec::new())));
        assert!(suppression.is_active(at("2026-11-15T00:00:00Z")));
        assert!(!suppression.is_active(at("2026-12-01T00:00:00Z")));
        assert!(!suppression.is_active(at("2026-10-31T23:59:59Z")));
    }

    #[test]
    fn a_suppression_needs_a_reason_owner_and_future_expiry() {
        let connection = catalog();
        let clock = ManualClock::new(at("2026-11-01T00:00:00Z"));
        let mut new = NewSuppression {
            detector: "workload.exec".into(),
            identity_pattern: "alice@example.com".into(),
            namespace_pattern: None,
            source_pattern: None,
            reason: "debugging".into(),
            owner: "alice".into(),
            expires_at: at("2026-11-02T00:00:00Z"),
            origin: "verdict:1".into(),
        };
        let created = create(&connection, &new, &clock).expect("created");
        assert_eq!(create(&connection, &new, &clock).expect("again"), created);
        new.reason = "  ".into();
        assert!(create(&connection, &new, &clock).is_err());
        new.reason = "debugging".into();
        new.expires_at = at("2026-10-01T00:00:00Z");
        assert!(create(&connection, &new, &clock).is_err());
    }
}
