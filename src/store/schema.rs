//! The fixed Arrow schema of stored events (DESIGN.md "Storage").
//!
//! Times are `TIMESTAMP` in microseconds *without* a zone and always UTC: DuckDB
//! handles zone-less timestamps in its core, while `TIMESTAMPTZ` arithmetic
//! (`date_trunc`, `hour()`) needs the ICU extension, which a sandboxed,
//! offline DuckDB cannot load. The partition columns `cluster`, `date` and
//! `hour` live in the folder names, not in the files.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// Column names, in file order.
pub mod column {
    pub const TS: &str = "ts";
    pub const STAGE_TS: &str = "stage_ts";
    pub const AUDIT_ID: &str = "audit_id";
    pub const STAGE: &str = "stage";
    pub const LEVEL: &str = "level";
    pub const VERB: &str = "verb";
    pub const REQUEST_URI: &str = "request_uri";
    pub const USERNAME: &str = "username";
    pub const USER_GROUPS: &str = "user_groups";
    pub const IMPERSONATED_USER: &str = "impersonated_user";
    pub const IDENTITY_KIND: &str = "identity_kind";
    pub const SA_NAMESPACE: &str = "sa_namespace";
    pub const SA_NAME: &str = "sa_name";
    pub const SOURCE_IP: &str = "source_ip";
    pub const SOURCE_IPS: &str = "source_ips";
    pub const USER_AGENT: &str = "user_agent";
    pub const API_GROUP: &str = "api_group";
    pub const API_VERSION: &str = "api_version";
    pub const RESOURCE: &str = "resource";
    pub const SUBRESOURCE: &str = "subresource";
    pub const NAMESPACE: &str = "namespace";
    pub const NAME: &str = "name";
    pub const RESPONSE_CODE: &str = "response_code";
    pub const RESPONSE_REASON: &str = "response_reason";
    pub const DECISION: &str = "decision";
    pub const AUTHZ_REASON: &str = "authz_reason";
    pub const ANNOTATIONS: &str = "annotations";
    pub const REQUEST_OBJECT: &str = "request_object";
    pub const RESPONSE_OBJECT: &str = "response_object";
    pub const SOURCE_FILE: &str = "source_file";
    pub const SOURCE_FINGERPRINT: &str = "source_fingerprint";
    pub const SOURCE_OFFSET: &str = "source_offset";
}

/// The schema of every Parquet part.
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            use column::*;
            let timestamp = DataType::Timestamp(TimeUnit::Microsecond, None);
            let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
            let text_list = |name: &str| {
                Field::new(
                    name,
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    true,
                )
            };
            Arc::new(Schema::new(vec![
                Field::new(TS, timestamp.clone(), false),
                Field::new(STAGE_TS, timestamp, false),
                text(AUDIT_ID, false),
                text(STAGE, false),
                text(LEVEL, true),
                text(VERB, false),
                text(REQUEST_URI, true),
                text(USERNAME, false),
                text_list(USER_GROUPS),
                text(IMPERSONATED_USER, true),
                text(IDENTITY_KIND, false),
                text(SA_NAMESPACE, true),
                text(SA_NAME, true),
                text(SOURCE_IP, true),
                text_list(SOURCE_IPS),
                text(USER_AGENT, true),
                text(API_GROUP, true),
                text(API_VERSION, true),
                text(RESOURCE, true),
                text(SUBRESOURCE, true),
                text(NAMESPACE, true),
                text(NAME, true),
                Field::new(RESPONSE_CODE, DataType::Int32, true),
                text(RESPONSE_REASON, true),
                text(DECISION, true),
                text(AUTHZ_REASON, true),
                text(ANNOTATIONS, true),
                text(REQUEST_OBJECT, true),
                text(RESPONSE_OBJECT, true),
                text(SOURCE_FILE, false),
                text(SOURCE_FINGERPRINT, false),
                Field::new(SOURCE_OFFSET, DataType::Int64, false),
            ]))
        })
        .clone()
}

/// The DuckDB type of each column, for the typed empty `events` view used
/// before the first part exists.
pub fn duckdb_column_types() -> Vec<(&'static str, &'static str)> {
    use column::*;
    vec![
        (TS, "TIMESTAMP"),
        (STAGE_TS, "TIMESTAMP"),
        (AUDIT_ID, "VARCHAR"),
        (STAGE, "VARCHAR"),
        (LEVEL, "VARCHAR"),
        (VERB, "VARCHAR"),
        (REQUEST_URI, "VARCHAR"),
        (USERNAME, "VARCHAR"),
        (USER_GROUPS, "VARCHAR[]"),
        (IMPERSONATED_USER, "VARCHAR"),
        (IDENTITY_KIND, "VARCHAR"),
        (SA_NAMESPACE, "VARCHAR"),
        (SA_NAME, "VARCHAR"),
        (SOURCE_IP, "VARCHAR"),
        (SOURCE_IPS, "VARCHAR[]"),
        (USER_AGENT, "VARCHAR"),
        (API_GROUP, "VARCHAR"),
        (API_VERSION, "VARCHAR"),
        (RESOURCE, "VARCHAR"),
        (SUBRESOURCE, "VARCHAR"),
        (NAMESPACE, "VARCHAR"),
        (NAME, "VARCHAR"),
        (RESPONSE_CODE, "INTEGER"),
        (RESPONSE_REASON, "VARCHAR"),
        (DECISION, "VARCHAR"),
        (AUTHZ_REASON, "VARCHAR"),
        (ANNOTATIONS, "VARCHAR"),
        (REQUEST_OBJECT, "VARCHAR"),
        (RESPONSE_OBJECT, "VARCHAR"),
        (SOURCE_FILE, "VARCHAR"),
        (SOURCE_FINGERPRINT, "VARCHAR"),
        (SOURCE_OFFSET, "BIGINT"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duckdb_types_cover_every_arrow_column_in_order() {
        let schema = event_schema();
        let names: Vec<&str> = schema
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        let typed: Vec<&str> = duckdb_column_types()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, typed);
    }
}
