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

/// A string of the line: borrowed from it when the JSON string has no escape
/// (nearly every string of an audit log), decoded into its own buffer when it
/// has one. Storing a line needs no owned copy of its strings; detection,
/// which keeps events, converts them with [`EventView::into_event`].
///
/// `Option<Cow<str>>` would not do: serde borrows a `Cow` only when it is the
/// field's whole type, and allocates inside an `Option` or a `Vec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineText<'a>(pub Cow<'a, str>);

impl LineText<'_> {
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for LineText<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for LineText<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LineText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = LineText<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                text: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(LineText(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(LineText(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(LineText(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl Serialize for LineText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

fn owned(text: Option<LineText<'_>>) -> Option<String> {
    text.map(LineText::into_string)
}

/// `user` and `impersonatedUser` of an audit event (`authentication.k8s.io/v1 UserInfo`).
/// `S` is `String`, or [`LineText`] in an [`EventView`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo<S = String> {
    #[serde(default)]
    pub username: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<S>,
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub groups: Vec<S>,
}

impl UserInfo<LineText<'_>> {
    fn into_owned(self) -> UserInfo {
        UserInfo {
            username: self.username.into_string(),
            uid: owned(self.uid),
            groups: self.groups.into_iter().map(LineText::into_string).collect(),
        }
    }
}

/// `objectRef`: what the request was about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference<S = String> {
    #[serde(default = "none")]
    pub resource: Option<S>,
    #[serde(default = "none")]
    pub namespace: Option<S>,
    #[serde(default = "none")]
    pub name: Option<S>,
    #[serde(default = "none")]
    pub uid: Option<S>,
    #[serde(default = "none")]
    pub api_group: Option<S>,
    #[serde(default = "none")]
    pub api_version: Option<S>,
    #[serde(default = "none")]
    pub resource_version: Option<S>,
    #[serde(default = "none")]
    pub subresource: Option<S>,
}

impl ObjectReference<LineText<'_>> {
    fn into_owned(self) -> ObjectReference {
        ObjectReference {
            resource: owned(self.resource),
            namespace: owned(self.namespace),
            name: owned(self.name),
            uid: owned(self.uid),
            api_group: owned(self.api_group),
            api_version: owned(self.api_version),
            resource_version: owned(self.resource_version),
            subresource: owned(self.subresource),
        }
    }
}

/// `responseStatus`: a `metav1.Status`, usually only `code` on success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus<S = String> {
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default = "none")]
    pub status: Option<S>,
    #[serde(default = "none")]
    pub reason: Option<S>,
    #[serde(default = "none")]
    pub message: Option<S>,
}

impl ResponseStatus<LineText<'_>> {
    fn into_owned(self) -> ResponseStatus {
        ResponseStatus {
            code: self.code,
            status: owned(self.status),
            reason: owned(self.reason),
            message: owned(self.message),
        }
    }
}

fn none<T>() -> Option<T> {
    None
}

/// The wire shape, exactly as the API server writes it, every string borrowed
/// from the line where it can be.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    #[serde(default, borrow)]
    kind: Option<LineText<'a>>,
    #[serde(default, borrow)]
    api_version: Option<LineText<'a>>,
    #[serde(default, borrow)]
    level: Option<LineText<'a>>,
    #[serde(default, borrow, rename = "auditID")]
    audit_id: Option<LineText<'a>>,
    #[serde(default, borrow)]
    stage: Option<LineText<'a>>,
    #[serde(default, borrow, rename = "requestURI")]
    request_uri: Option<LineText<'a>>,
    #[serde(default, borrow)]
    verb: Option<LineText<'a>>,
    #[serde(default, borrow)]
    user: Option<UserInfo<LineText<'a>>>,
    #[serde(default, borrow)]
    impersonated_user: Option<UserInfo<LineText<'a>>>,
    #[serde(
        default,
        borrow,
        rename = "sourceIPs",
        deserialize_with = "null_as_default"
    )]
    source_ips: Vec<LineText<'a>>,
    #[serde(default, borrow)]
    user_agent: Option<LineText<'a>>,
    #[serde(default, borrow)]
    object_ref: Option<ObjectReference<LineText<'a>>>,
    #[serde(default, borrow)]
    response_status: Option<ResponseStatus<LineText<'a>>>,
    #[serde(default, borrow)]
    request_object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    response_object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    request_received_timestamp: Option<LineText<'a>>,
    #[serde(default, borrow)]
    stage_timestamp: Option<LineText<'a>>,
    /// `v1beta1` and old logs: the event time.
    #[serde(default, borrow)]
    timestamp: Option<LineText<'a>>,
    #[serde(default, borrow, deserialize_with = "null_as_default")]
    annotations: BTreeMap<LineText<'a>, LineText<'a>>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One decoded audit event. Times are UTC microseconds since the epoch.
///
/// `S` is the string type and `R` the raw-object type: `String` and
/// `Box<RawValue>` for an event that owns its data ([`AuditEvent`], what
/// detection keeps), [`LineText`] and `&RawValue` for an [`EventView`] that
/// borrows from its line (what storage appends to columns, with no copy).
#[derive(Debug, Clone)]
pub struct AuditEvent<S = String, R = Box<RawValue>> {
    /// `requestReceivedTimestamp` (or `timestamp` in old logs).
    pub ts: i64,
    /// `stageTimestamp`, or `ts` when the log does not carry one.
    pub stage_ts: i64,
    pub audit_id: S,
    pub stage: S,
    /// Empty when the line has none (as are the next two).
    pub level: S,
    pub verb: S,
    pub request_uri: S,
    pub api_version_of_event: S,
    pub user: UserInfo<S>,
    pub impersonated_user: Option<UserInfo<S>>,
    pub source_ips: Vec<S>,
    pub user_agent: Option<S>,
    pub object_ref: Option<ObjectReference<S>>,
    pub response_status: Option<ResponseStatus<S>>,
    pub request_object: Option<R>,
    pub response_object: Option<R>,
    pub annotations: BTreeMap<S, S>,
}

/// An audit event borrowing its strings and raw objects from its line.
pub type EventView<'a> = AuditEvent<LineText<'a>, &'a RawValue>;

const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

impl AuditEvent {
    /// Decodes one line (without its trailing newline) into an event that
    /// owns its data.
    pub fn decode(line: &[u8]) -> Result<AuditEvent, DecodeError> {
        EventView::parse(line).map(EventView::into_event)
    }
}

impl<'a> EventView<'a> {
    /// Decodes one line (without its trailing newline), borrowing from it.
    /// (Not `decode`: `AuditEvent::decode` would then name two functions.)
    pub fn parse(line: &'a [u8]) -> Result<EventView<'a>, DecodeError> {
        // One SIMD UTF-8 check of the whole line, then a parse that need not
        // check each string again (serde_json's `from_str` trusts its input).
        let text = simdutf8::basic::from_utf8(line).map_err(|_| {
            DecodeError::InvalidUtf8(match std::str::from_utf8(line) {
                Err(error) => error.to_string(),
                Ok(_) => "invalid UTF-8".to_string(),
            })
        })?;
        let wire: WireEvent<'a> =
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
            api_version_of_event: wire.api_version.unwrap_or_default(),
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

    /// The same event owning its data (what detection keeps).
    pub fn into_event(self) -> AuditEvent {
        AuditEvent {
            ts: self.ts,
            stage_ts: self.stage_ts,
            audit_id: self.audit_id.into_string(),
            stage: self.stage.into_string(),
            level: self.level.into_string(),
            verb: self.verb.into_string(),
            request_uri: self.request_uri.into_string(),
            api_version_of_event: self.api_version_of_event.into_string(),
            user: self.user.into_owned(),
            impersonated_user: self.impersonated_user.map(UserInfo::into_owned),
            source_ips: self
                .source_ips
                .into_iter()
                .map(LineText::into_string)
                .collect(),
            user_agent: owned(self.user_agent),
            object_ref: self.object_ref.map(ObjectReference::into_owned),
            response_status: self.response_status.map(ResponseStatus::into_owned),
            request_object: self.request_object.map(RawValue::to_owned),
            response_object: self.response_object.map(RawValue::to_owned),
            annotations: self
                .annotations
                .into_iter()
                .map(|(key, value)| (key.into_string(), value.into_string()))
                .collect(),
        }
    }
}

/// What an [`AuditEvent`]'s text fields can be: `String` for owned events,
/// [`LineText`] for a view borrowing its line. Named once so the accessors
/// and the storage builders state the same bound.
pub trait EventText:
    std::ops::Deref<Target = str> + std::borrow::Borrow<str> + Ord + serde::Serialize
{
}

impl<T> EventText for T where
    T: std::ops::Deref<Target = str> + std::borrow::Borrow<str> + Ord + serde::Serialize
{
}

impl<S: EventText, R> AuditEvent<S, R> {
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
        self.source_ips.first().map(|address| &**address)
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
            .map(|decision| &**decision)
    }

    pub fn authorization_reason(&self) -> Option<&str> {
        self.annotations
            .get(REASON_ANNOTATION)
            .map(|reason| &**reason)
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
            &*self.verb,
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
