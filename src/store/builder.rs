//! Decoded events → Arrow columns of the fixed schema, one builder per
//! `(date, hour)` partition.
//!
//! Decode workers each fill their own builders for a chunk of lines and hand
//! finished `RecordBatch`es to the writer, so the only data crossing threads is
//! columnar. Raw request/response objects are kept only for the resources
//! [`ObjectRetention`] names; Secret objects are never kept, whatever the
//! config says, because their data is the secret itself.

use super::schema::event_schema;
use super::{Result, StoreError};
use crate::audit::{AuditEvent, EventText, IdentityKind};
use arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::record_batch::RecordBatch;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

/// A `(date, hour)` partition: days since the epoch and the hour of day, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub days_since_epoch: i32,
    pub hour: u8,
}

impl PartitionKey {
    pub fn of_micros(micros: i64) -> PartitionKey {
        let seconds = micros.div_euclid(1_000_000);
        let days = seconds.div_euclid(86_400);
        let hour = (seconds.rem_euclid(86_400) / 3600) as u8;
        PartitionKey {
            days_since_epoch: days as i32,
            hour,
        }
    }

    /// `YYYY-MM-DD`.
    pub fn date_text(&self) -> String {
        let date = chrono::DateTime::from_timestamp(i64::from(self.days_since_epoch) * 86_400, 0)
            .map(|time| time.format("%Y-%m-%d").to_string());
        date.unwrap_or_else(|| format!("day-{}", self.days_since_epoch))
    }

    /// The first microsecond of this hour.
    pub fn start_micros(&self) -> i64 {
        (i64::from(self.days_since_epoch) * 86_400 + i64::from(self.hour) * 3600) * 1_000_000
    }
}

/// Which raw request/response objects are stored.
#[derive(Debug, Clone)]
pub struct ObjectRetention {
    patterns: Vec<(String, String)>,
    max_bytes: usize,
}

impl ObjectRetention {
    /// `patterns`: `group/resource[/subresource]`, `resource[/subresource]` for
    /// the core group, `group/*` for a whole group.
    pub fn new(patterns: &[String], max_bytes: usize) -> ObjectRetention {
        let patterns = patterns
            .iter()
            .map(|pattern| match pattern.split_once('/') {
                Some((first, rest)) if first.contains('.') => (first.to_string(), rest.to_string()),
                _ => (String::new(), pattern.clone()),
            })
            .collect();
        ObjectRetention {
            patterns,
            max_bytes,
        }
    }

    pub fn keeps(&self, group: &str, resource: Option<&str>, subresource: Option<&str>) -> bool {
        let Some(resource) = resource else {
            return false;
        };
        if group.is_empty() && resource == "secrets" {
            return false;
        }
        // `resource` or `resource/subresource`, compared without building it.
        let names_this = |pattern: &str| match subresource.filter(|sub| !sub.is_empty()) {
            Some(sub) => {
                pattern
                    .strip_prefix(resource)
                    .and_then(|rest| rest.strip_prefix('/'))
                    == Some(sub)
            }
            None => pattern == resource,
        };
        self.patterns
            .iter()
            .any(|(pattern_group, pattern_resource)| {
                pattern_group == group && (pattern_resource == "*" || names_this(pattern_resource))
            })
    }
}

/// Where a line came from, stored with its row.
#[derive(Debug, Clone, Copy)]
pub struct LineOrigin<'a> {
    pub source_file: &'a str,
    pub source_fingerprint: &'a str,
    pub offset: u64,
}

/// Column builders for one partition.
pub struct EventColumns {
    ts: TimestampMicrosecondBuilder,
    stage_ts: TimestampMicrosecondBuilder,
    audit_id: StringBuilder,
    stage: StringBuilder,
    level: StringBuilder,
    verb: StringBuilder,
    request_uri: StringBuilder,
    username: StringBuilder,
    user_groups: ListBuilder<StringBuilder>,
    impersonated_user: StringBuilder,
    identity_kind: StringBuilder,
    sa_namespace: StringBuilder,
    sa_name: StringBuilder,
    source_ip: StringBuilder,
    source_ips: ListBuilder<StringBuilder>,
    user_agent: StringBuilder,
    api_group: StringBuilder,
    api_version: StringBuilder,
    resource: StringBuilder,
    subresource: StringBuilder,
    namespace: StringBuilder,
    name: StringBuilder,
    response_code: Int32Builder,
    response_reason: StringBuilder,
    decision: StringBuilder,
    authz_reason: StringBuilder,
    annotations: StringBuilder,
    request_object: StringBuilder,
    response_object: StringBuilder,
    source_file: StringBuilder,
    source_fingerprint: StringBuilder,
    source_offset: Int64Builder,
    rows: usize,
    annotation_buffer: Vec<u8>,
}

impl Default for EventColumns {
    fn default() -> Self {
        EventColumns::new()
    }
}

impl EventColumns {
    pub fn new() -> EventColumns {
        EventColumns::with_capacity(1024)
    }

    /// Builders sized for about `rows` events of a typical audit log, so a
    /// chunk's columns are not regrown (and copied) a dozen times as it is
    /// decoded. Reserved, untouched capacity costs address space, not memory.
    pub fn with_capacity(rows: usize) -> EventColumns {
        let strings =
            |bytes_per_value: usize| StringBuilder::with_capacity(rows, rows * bytes_per_value);
        let lists = |values_per_row: usize, bytes_per_value: usize| {
            ListBuilder::with_capacity(
                StringBuilder::with_capacity(
                    rows * values_per_row,
                    rows * values_per_row * bytes_per_value,
                ),
                rows,
            )
        };
        EventColumns {
            ts: TimestampMicrosecondBuilder::with_capacity(rows),
            stage_ts: TimestampMicrosecondBuilder::with_capacity(rows),
            audit_id: strings(36),
            stage: strings(16),
            level: strings(8),
            verb: strings(6),
            request_uri: strings(96),
            username: strings(40),
            user_groups: lists(2, 24),
            impersonated_user: strings(0),
            identity_kind: strings(12),
            sa_namespace: strings(12),
            sa_name: strings(16),
            source_ip: strings(12),
            source_ips: lists(1, 12),
            user_agent: strings(64),
            api_group: strings(16),
            api_version: strings(4),
            resource: strings(12),
            subresource: strings(0),
            namespace: strings(12),
            name: strings(24),
            response_code: Int32Builder::with_capacity(rows),
            response_reason: strings(0),
            decision: strings(5),
            authz_reason: strings(64),
            annotations: strings(128),
            request_object: strings(0),
            response_object: strings(0),
            source_file: strings(32),
            source_fingerprint: strings(32),
            source_offset: Int64Builder::with_capacity(rows),
            rows: 0,
            annotation_buffer: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one event, owned ([`AuditEvent`]) or borrowed from its line
    /// (`EventView`). `identity_kind`, `sa_*` describe the effective
    /// identity (the impersonated user when there is one); `username` is the
    /// authenticated user.
    pub fn append<S, R>(
        &mut self,
        event: &AuditEvent<S, R>,
        origin: LineOrigin<'_>,
        retention: &ObjectRetention,
    ) where
        S: EventText,
        R: Deref<Target = RawValue>,
    {
        self.ts.append_value(event.ts);
        self.stage_ts.append_value(event.stage_ts);
        self.audit_id.append_value(&*event.audit_id);
        self.stage.append_value(&*event.stage);
        append_optional(
            &mut self.level,
            Some(&*event.level).filter(|level| !level.is_empty()),
        );
        self.verb.append_value(&*event.verb);
        self.request_uri.append_value(&*event.request_uri);
        self.username.append_value(&*event.user.username);
        for group in &event.user.groups {
            self.user_groups.values().append_value(&**group);
        }
        self.user_groups.append(true);
        append_optional(
            &mut self.impersonated_user,
            event.impersonated_user.as_ref().map(|user| &*user.username),
        );
        let identity = event.effective_identity();
        self.identity_kind.append_value(identity.kind.as_str());
        if identity.kind == IdentityKind::ServiceAccount {
            append_optional(&mut self.sa_namespace, identity.service_account_namespace);
            append_optional(&mut self.sa_name, identity.service_account_name);
        } else {
            self.sa_namespace.append_null();
            self.sa_name.append_null();
        }
        append_optional(&mut self.source_ip, event.source_ip());
        for address in &event.source_ips {
            self.source_ips.values().append_value(&**address);
        }
        self.source_ips.append(true);
        append_optional(&mut self.user_agent, event.user_agent.as_deref());
        let object = event.object_ref.as_ref();
        append_optional(
            &mut self.api_group,
            object.and_then(|object| object.api_group.as_deref()),
        );
        append_optional(
            &mut self.api_version,
            object.and_then(|object| object.api_version.as_deref()),
        );
        append_optional(&mut self.resource, event.resource());
        append_optional(&mut self.subresource, event.subresource());
        append_optional(&mut self.namespace, event.namespace());
        append_optional(&mut self.name, event.object_name());
        self.response_code.append_option(event.response_code());
        append_optional(
            &mut self.response_reason,
            event
                .response_status
                .as_ref()
                .and_then(|status| status.reason.as_deref()),
        );
        append_optional(&mut self.decision, event.decision());
        append_optional(&mut self.authz_reason, event.authorization_reason());
        if event.annotations.is_empty() {
            self.annotations.append_null();
        } else {
            self.annotation_buffer.clear();
            // Serializing a map of strings into memory cannot fail, and
            // serde_json writes UTF-8.
            let written = serde_json::to_writer(&mut self.annotation_buffer, &event.annotations);
            match (written, std::str::from_utf8(&self.annotation_buffer)) {
                (Ok(()), Ok(text)) => self.annotations.append_value(text),
                _ => self.annotations.append_null(),
            }
        }
        let keep = retention.keeps(event.api_group(), event.resource(), event.subresource());
        append_optional(
            &mut self.request_object,
            kept_object(&event.request_object, keep, retention.max_bytes),
        );
        append_optional(
            &mut self.response_object,
            kept_object(&event.response_object, keep, retention.max_bytes),
        );
        self.source_file.append_value(origin.source_file);
        self.source_fingerprint
            .append_value(origin.source_fingerprint);
        self.source_offset.append_value(origin.offset as i64);
        self.rows += 1;
    }

    /// Finishes the columns into a batch of the event schema and resets.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.stage_ts.finish()),
            Arc::new(self.audit_id.finish()),
            Arc::new(self.stage.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.verb.finish()),
            Arc::new(self.request_uri.finish()),
            Arc::new(self.username.finish()),
            Arc::new(self.user_groups.finish()),
            Arc::new(self.impersonated_user.finish()),
            Arc::new(self.identity_kind.finish()),
            Arc::new(self.sa_namespace.finish()),
            Arc::new(self.sa_name.finish()),
            Arc::new(self.source_ip.finish()),
            Arc::new(self.source_ips.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.api_group.finish()),
            Arc::new(self.api_version.finish()),
            Arc::new(self.resource.finish()),
            Arc::new(self.subresource.finish()),
            Arc::new(self.namespace.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.response_code.finish()),
            Arc::new(self.response_reason.finish()),
            Arc::new(self.decision.finish()),
            Arc::new(self.authz_reason.finish()),
            Arc::new(self.annotations.finish()),
            Arc::new(self.request_object.finish()),
            Arc::new(self.response_object.finish()),
            Arc::new(self.source_file.finish()),
            Arc::new(self.source_fingerprint.finish()),
            Arc::new(self.source_offset.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(event_schema(), columns).map_err(|source| StoreError::Arrow {
            context: "assembling an event batch".into(),
            source,
        })
    }
}

fn kept_object<R: Deref<Target = RawValue>>(
    raw: &Option<R>,
    keep: bool,
    max_bytes: usize,
) -> Option<&str> {
    let text = raw.as_ref()?.get();
    (keep && text.len() <= max_bytes).then_some(text)
}

fn append_optional(builder: &mut StringBuilder, value: Option<&str>) {
    match value {
        Some(text) => builder.append_value(text),
        None => builder.append_null(),
    }
}

/// Builders for every partition a chunk of lines touches.
pub struct PartitionedColumns {
    partitions: BTreeMap<PartitionKey, EventColumns>,
    expected_rows: usize,
}

impl Default for PartitionedColumns {
    fn default() -> Self {
        PartitionedColumns::with_expected_rows(1024)
    }
}

impl PartitionedColumns {
    /// Builders for about `rows` lines (a chunk's line count).
    pub fn with_expected_rows(rows: usize) -> PartitionedColumns {
        PartitionedColumns {
            partitions: BTreeMap::new(),
            expected_rows: rows,
        }
    }

    pub fn append<S, R>(
        &mut self,
        event: &AuditEvent<S, R>,
        origin: LineOrigin<'_>,
        retention: &ObjectRetention,
    ) where
        S: EventText,
        R: Deref<Target = RawValue>,
    {
        let expected_rows = self.expected_rows;
        self.partitions
            .entry(PartitionKey::of_micros(event.ts))
            .or_insert_with(|| EventColumns::with_capacity(expected_rows))
            .append(event, origin, retention);
    }

    pub fn rows(&self) -> usize {
        self.partitions.values().map(EventColumns::len).sum()
    }

    pub fn finish(self) -> Result<Vec<(PartitionKey, RecordBatch)>> {
        self.partitions
            .into_iter()
            .map(|(key, mut columns)| Ok((key, columns.finish()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_follow_utc_hours() {
        let micros =
            crate::audit::parse_rfc3339_micros("2026-11-27T09:59:59.999999Z").expect("valid");
        let key = PartitionKey::of_micros(micros);
        assert_eq!(key.date_text(), "2026-11-27");
        assert_eq!(key.hour, 9);
        assert_eq!(PartitionKey::of_micros(micros + 1).hour, 10);
        let before_epoch = PartitionKey::of_micros(-1);
        assert_eq!(before_epoch.date_text(), "1969-12-31");
        assert_eq!(before_epoch.hour, 23);
    }

    #[test]
    fn object_retention_never_keeps_secrets() {
        let retention = ObjectRetention::new(
            &[
                "rbac.authorization.k8s.io/*".into(),
                "pods".into(),
                "secrets".into(),
                "serviceaccounts/token".into(),
            ],
            1024,
        );
        assert!(retention.keeps("rbac.authorization.k8s.io", Some("clusterroles"), None));
        assert!(retention.keeps("", Some("pods"), None));
        assert!(!retention.keeps("", Some("pods"), Some("exec")));
        assert!(retention.keeps("", Some("serviceaccounts"), Some("token")));
        assert!(!retention.keeps("", Some("secrets"), None));
        assert!(!retention.keeps("apps", Some("deployments"), None));
        assert!(!retention.keeps("", None, None));
    }
}
