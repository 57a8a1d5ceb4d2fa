//! One audit event, decoded from one JSON line.

use super::identity::Identity;
use super::timestamp::parse_rfc3339_micros;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Why a line is not an audit event. Each variant names the problem in words an
/// operator can act on; the ingest layer quarantines the line with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("not UTF-8: {0}")]
    InvalidUtf8(String),
    #[error("not an audit event: kind is {0:?}, expected \"Event\"")]
    WrongKind(String),
    #[error("unsupported apiVersion {0:?} (auditlens reads audit.k8s.io/v1 and v1beta1)")]
    UnsupportedApiVersion(String),
    #[error("missing required field {0}")]
    MissingField(&'static str),
    #[error("missing timestamp: neither requestReceivedTimestamp nor timestamp is set")]
    MissingTimestamp,
    #[error("invalid timestamp in {field}: {value:?}")]
    InvalidTimestamp { field: &'static str, value: String },
    #[error("line is {length} bytes, longer than the {limit}-byte limit")]
    LineTooLong { length: usize, limit: usize },
}

impl DecodeError {
    /// A short, stable reason code for counters and the quarantine file.
    pub fn reason_code(&self) -> &'static str {
        match self {
            DecodeError::NotJson(_) => "not_json",
            DecodeError::InvalidUtf8(_) => "invalid_utf8",
            DecodeError::WrongKind(_) => "wrong_kind",
            DecodeError::UnsupportedApiVersion(_) => "unsupported_api_version",
            DecodeError::MissingField(_) => "missing_field",
            DecodeError::MissingTimestamp => "missing_timestamp",
            DecodeError::InvalidTimestamp { .. } => "invalid_timestamp",
            DecodeError::LineTooLong { .. } => "line_too_long",
        }
    }
}

/// `user` and `impersonatedUser` of an audit event (`authentication.k8s.io/v1 UserInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<String>,
}

/// `objectRef`: what the request was about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub api_group: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
}

/// `responseStatus`: a `metav1.Status`, usually only `code` on success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The wire shape, exactly as the API server writes it.
/// Fields that are only checked or parsed (kind, apiVersion, timestamps) are
/// borrowed from the line rather than copied.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default, rename = "auditID")]
    audit_id: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default, rename = "requestURI")]
    request_uri: Option<String>,
    #[serde(default)]
    verb: Option<String>,
    #[serde(default)]
    user: Option<UserInfo>,
    #[serde(default)]
    impersonated_user: Option<UserInfo>,
    #[serde(default, rename = "sourceIPs", deserialize_with = "null_as_default")]
    source_ips: Vec<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    object_ref: Option<ObjectReference>,
    #[serde(default)]
    response_status: Option<ResponseStatus>,
    #[serde(default)]
    request_object: Option<Box<RawValue>>,
    #[serde(default)]
    response_object: Option<Box<RawValue>>,
    #[serde(default, borrow)]
    request_received_timestamp: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stage_timestamp: Option<Cow<'a, str>>,
    /// `v1beta1` and old logs: the event time.
    #[serde(default, borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "null_as_default")]
    annotations: BTreeMap<String, String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One decoded audit event. Times are UTC microseconds since the epoch.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// `requestReceivedTimestamp` (or `timestamp` in old logs).
    pub ts: i64,
    /// `stageTimestamp`, or `ts` when the log does not carry one.
    pub stage_ts: i64,
    pub audit_id: String,
    pub stage: String,
    pub level: String,
    pub verb: String,
    pub request_uri: String,
    pub api_version_of_event: String,
    pub user: UserInfo,
    pub impersonated_user: Option<UserInfo>,
    pub source_ips: Vec<String>,
    pub user_agent: Option<String>,
    pub object_ref: Option<ObjectReference>,
    pub response_status: Option<ResponseStatus>,
    pub request_object: Option<Box<RawValue>>,
    pub response_object: Option<Box<RawValue>>,
    pub annotations: BTreeMap<String, String>,
}

const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

impl AuditEvent {
    /// Decodes one line (without its trailing newline).
    pub fn decode(line: &[u8]) -> Result<AuditEvent, DecodeError> {
        // One SIMD UTF-8 check of the whole line, then a parse that need not
        // check each string again (serde_json's `from_str` trusts its input).
        let text = simdutf8::basic::from_utf8(line).map_err(|_| {
            DecodeError::InvalidUtf8(match std::str::from_utf8(line) {
                Err(error) => error.to_string(),
                Ok(_) => "invalid UTF-8".to_string(),
            })
        })?;
        let wire: WireEvent =
            serde_json::from_str(text).map_err(|error| DecodeError::NotJson(error.to_string()))?;
        match wire.kind.as_deref() {
            Some("Event") => {}
            Some(other) => return Err(DecodeError::WrongKind(other.to_string())),
            None => return Err(DecodeError::MissingField("kind")),
        }
        match wire.api_version.as_deref() {
            Some("audit.k8s.io/v1" | "audit.k8s.io/v1beta1") => {}
            Some(other) => return Err(DecodeError::UnsupportedApiVersion(other.to_string())),
            // Some producers (Falco's recorded traces among them) omit it; the
            // shape is still audit.k8s.io/v1.
            None => {}
        }
        let audit_id = wire.audit_id.ok_or(DecodeError::MissingField("auditID"))?;
        let stage = wire.stage.ok_or(DecodeError::MissingField("stage"))?;
        let verb = wire.verb.ok_or(DecodeError::MissingField("verb"))?;
        let user = wire.user.ok_or(DecodeError::MissingField("user"))?;
        let ts = match (&wire.request_received_timestamp, &wire.timestamp) {
            (Some(text), _) => parse_timestamp("requestReceivedTimestamp", text)?,
            (None, Some(text)) => parse_timestamp("timestamp", text)?,
            (None, None) => return Err(DecodeError::MissingTimestamp),
        };
        let stage_ts = match &wire.stage_timestamp {
            Some(text) => parse_timestamp("stageTimestamp", text)?,
            None => ts,
        };
        Ok(AuditEvent {
            ts,
            stage_ts,
            audit_id,
            stage,
            level: wire.level.unwrap_or_default(),
            verb,
            request_uri: wire.request_uri.unwrap_or_default(),
            api_version_of_event: wire.api_version.map(Cow::into_owned).unwrap_or_default(),
            user,
            impersonated_user: wire.impersonated_user,
            source_ips: wire.source_ips,
            user_agent: wire.user_agent,
            object_ref: wire.object_ref,
            response_status: wire.response_status,
            request_object: wire.request_object,
            response_object: wire.response_object,
            annotations: wire.annotations,
        })
    }

    /// The authenticated user: the actor detection attributes the request to
    /// (for impersonation, the impersonator).
    pub fn actor(&self) -> &str {
        &self.user.username
    }

    /// The identity the request acted as: the impersonated user if any.
    pub fn effective_username(&self) -> &str {
        match &self.impersonated_user {
            Some(impersonated) if !impersonated.username.is_empty() => &impersonated.username,
            _ => &self.user.username,
        }
    }

    /// The classification of the effective identity.
    pub fn effective_identity(&self) -> Identity<'_> {
        Identity::classify(self.effective_username())
    }

    /// The classification of the authenticated actor.
    pub fn actor_identity(&self) -> Identity<'_> {
        Identity::classify(self.actor())
    }

    /// The first source IP: the client as the API server saw it.
    pub fn source_ip(&self) -> Option<&str> {
        self.source_ips.first().map(String::as_str)
    }

    pub fn resource(&self) -> Option<&str> {
        self.object_ref.as_ref()?.resource.as_deref()
    }

    pub fn subresource(&self) -> Option<&str> {
        self.object_ref.as_ref()?.subresource.as_deref()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object_ref
            .as_ref()?
            .namespace
            .as_deref()
            .filter(|namespace| !namespace.is_empty())
    }

    pub fn object_name(&self) -> Option<&str> {
        self.object_ref
            .as_ref()?
            .name
            .as_deref()
            .filter(|name| !name.is_empty())
    }

    /// The API group; the core group is the empty string.
    pub fn api_group(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|object| object.api_group.as_deref())
            .unwrap_or("")
    }

    pub fn response_code(&self) -> Option<i32> {
        self.response_status.as_ref()?.code
    }

    /// `allow`, `forbid`, or `None` when the authorizer did not annotate.
    pub fn decision(&self) -> Option<&str> {
        self.annotations
            .get(DECISION_ANNOTATION)
            .map(String::as_str)
    }

    pub fn authorization_reason(&self) -> Option<&str> {
        self.annotations.get(REASON_ANNOTATION).map(String::as_str)
    }

    /// Whether the request was refused by authorization (403 or a `forbid` decision).
    pub fn is_denied(&self) -> bool {
        self.decision() == Some("forbid") || self.response_code() == Some(403)
    }

    /// Whether the request was let through and succeeded (2xx, or 101 for
    /// upgraded exec/attach streams) or, when no status is logged yet, allowed.
    pub fn is_allowed(&self) -> bool {
        match self.response_code() {
            Some(code) => (200..300).contains(&code) || code == 101,
            None => self.decision() == Some("allow"),
        }
    }

    /// Whether the verb changes state.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

fn parse_timestamp(field: &'static str, text: &str) -> Result<i64, DecodeError> {
    parse_rfc3339_micros(text).ok_or_else(|| DecodeError::InvalidTimestamp {
        field,
        value: text.chars().take(64).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &str = r#"{"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""},"auditID":"ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6","kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","objectRef":{"apiVersion":"v1","name":"nginx-1","namespace":"default","resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2018-10-26T13:38:34.867116Z","requestURI":"/api/v1/namespaces/default/pods/nginx-1/exec?command=bash","responseStatus":{"code":101,"metadata":{}},"sourceIPs":["192.168.99.1"],"stage":"ResponseStarted","stageTimestamp":"2018-10-26T13:38:34.902914Z","user":{"groups":["system:masters","system:authenticated"],"username":"minikube-user"},"verb":"create"}"#;

    #[test]
    fn decodes_an_exec_event() {
        let event = AuditEvent::decode(EXEC.as_bytes()).expect("valid event");
        assert_eq!(event.stage, "ResponseStarted");
        assert_eq!(event.subresource(), Some("exec"));
        assert_eq!(event.namespace(), Some("default"));
        assert_eq!(event.response_code(), Some(101));
        assert_eq!(event.decision(), Some("allow"));
        assert!(event.is_allowed());
        assert!(!event.is_denied());
        assert_eq!(event.stage_ts - event.ts, 35_798);
        assert_eq!(event.source_ip(), Some("192.168.99.1"));
    }

    #[test]
    fn old_logs_use_timestamp_and_impersonation_is_effective() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","timestamp":"2017-09-11T19:55:05Z","auditID":"033d17af","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"system:admin","groups":["system:masters"]},"impersonatedUser":{"username":"bob","groups":["system:authenticated"]},"sourceIPs":["::1"],"responseStatus":{"code":403,"reason":"Forbidden"}}"#;
        let event = AuditEvent::decode(line.as_bytes()).expect("valid event");
        assert_eq!(event.ts, event.stage_ts);
        assert_eq!(event.actor(), "system:admin");
        assert_eq!(event.effective_username(), "bob");
        assert!(event.is_denied());
    }

    #[test]
    fn explains_each_kind_of_bad_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"kind\":\"Event\",", "not_json"),
            (b"hello world", "not_json"),
            (b"{\"kind\": 0}", "not_json"),
            (b"{\"kind\":\"Pod\",\"apiVersion\":\"v1\"}", "wrong_kind"),
            (b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v2\"}", "unsupported_api_version"),
            (
                b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"a\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"user\":{\"username\":\"u\"}}",
                "missing_timestamp",
            ),
            (
                b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"a\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"user\":{\"username\":\"u\"},\"requestReceivedTimestamp\":\"soon\"}",
                "invalid_timestamp",
            ),
            (b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\"}", "missing_field"),
            (b"{\"kind\":\"Event\"}", "missing_field"),
            (b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"\xff\xfe\"}", "invalid_utf8"),
        ];
        for (line, expected) in cases {
            let error = AuditEvent::decode(line).expect_err("bad line");
            assert_eq!(error.reason_code(), *expected, "{error}");
        }
    }
}
