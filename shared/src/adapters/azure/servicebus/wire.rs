//! The Service Bus REST "Send Message" request, as documented:
//!
//! - Send Message: <https://learn.microsoft.com/rest/api/servicebus/send-message-to-queue>:
//!   `POST https://{namespace}.servicebus.windows.net/{queuePath|topicPath}/messages`, headers
//!   `Authorization` (Entra ID: `Bearer <JWT>`), `Content-Type` (the message's content type),
//!   `BrokerProperties` (JSON), custom properties as further headers; the body is the payload.
//!   Answers: 201 sent; 400 bad request; 401 authorization failure; 403 quota exceeded or
//!   message too large; 410 (some versions of the page: 404) no such queue or topic; 500
//!   internal error.
//! - Message headers and properties / Introduction:
//!   <https://learn.microsoft.com/rest/api/servicebus/message-headers-and-properties>:
//!   `BrokerProperties` keys `MessageId`, `CorrelationId`, `Label` (the subject), and
//!   `ScheduledEnqueueTimeUtc` in RFC 1123 form (`Sun, 06 Nov 1994 08:49:37 GMT`); unknown
//!   keys are ignored; each custom property travels in its own HTTP header.
//!
//! Custom property values are sent JSON-quoted (`"value"`), as the legacy REST SDKs did, so a
//! value such as `42` or `true` keeps its string type; the docs' example shows bare values.
//! This cannot be checked against Service Bus here (no emulator runs on this machine).

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};

use crate::ports::bus::OutgoingMessage;

/// The RFC 1123 date format the REST API uses for `ScheduledEnqueueTimeUtc`.
pub(crate) const RFC1123: &str = "%a, %d %b %Y %H:%M:%S GMT";

/// Headers a custom property may not take: the request's own, and the service's.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "brokerproperties",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "expect",
    "host",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// `at` in RFC 1123 form, rounded up to the next whole second: the format has no fractions,
/// and rounding down would deliver the message before the time asked for.
pub(crate) fn rfc1123_not_before(at: DateTime<Utc>) -> String {
    let whole = at.trunc_subsecs(0);
    let at = if whole < at { whole + chrono::Duration::seconds(1) } else { whole };
    at.format(RFC1123).to_string()
}

/// The `BrokerProperties` header: JSON, ASCII only (header values must be).
pub(crate) fn broker_properties(message: &OutgoingMessage) -> String {
    let mut props = Map::new();
    props.insert("MessageId".into(), Value::String(message.message_id.clone()));
    if let Some(at) = message.scheduled_enqueue_time {
        props.insert("ScheduledEnqueueTimeUtc".into(), Value::String(rfc1123_not_before(at)));
    }
    if let Some(id) = &message.correlation_id {
        props.insert("CorrelationId".into(), Value::String(id.clone()));
    }
    if let Some(subject) = &message.subject {
        props.insert("Label".into(), Value::String(subject.clone()));
    }
    ascii_json(&Value::Object(props))
}

/// A custom property's value: a JSON string, ASCII only.
pub(crate) fn property_value(value: &str) -> String {
    ascii_json(&Value::String(value.to_owned()))
}

/// Why a custom property's name cannot be a header, if it cannot.
///
/// The SDK's header names are lowercase (it lowercases them), and HTTP ignores case: a name with
/// upper-case letters would arrive changed, so it is refused rather than altered.
pub(crate) fn property_name_problem(name: &str) -> Option<String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Some(format!("property name {name:?} is not an HTTP header name"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!("property name {name:?} has upper-case letters, which HTTP headers do not keep"));
    }
    if RESERVED_HEADERS.contains(&name) || name.starts_with("x-ms-") {
        return Some(format!("property name {name:?} is a header of the request itself"));
    }
    None
}

/// JSON text with every non-ASCII character escaped (`\uXXXX`, surrogate pairs beyond the BMP).
fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn scheduled_times_are_rfc1123_and_never_early() {
        let at = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 37).single().expect("time");
        assert_eq!(rfc1123_not_before(at), "Sun, 06 Nov 1994 08:49:37 GMT");
        let later = at + chrono::Duration::milliseconds(1);
        assert_eq!(rfc1123_not_before(later), "Sun, 06 Nov 1994 08:49:38 GMT");
    }

    #[test]
    fn broker_properties_name_the_documented_keys_in_ascii() {
        let mut m = OutgoingMessage::json("q", "bäckup-1", b"{}".to_vec());
        m.subject = Some("BackupRequest".into());
        m.correlation_id = Some("b-1".into());
        let text = broker_properties(&m);
        assert!(text.is_ascii(), "{text}");
        let back: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(back["MessageId"], "bäckup-1");
        assert_eq!(back["Label"], "BackupRequest");
        assert_eq!(back["CorrelationId"], "b-1");
        assert!(back.get("ScheduledEnqueueTimeUtc").is_none());
        assert_eq!(property_value("😀"), "\"\\ud83d\\ude00\"");
    }

    #[test]
    fn property_names_must_survive_as_headers() {
        assert_eq!(property_name_problem("backup-id"), None);
        for bad in ["", "a b", "Kind", "content-type", "BrokerProperties", "x-ms-foo", "é"] {
            assert!(property_name_problem(bad).is_some(), "{bad:?} should be refused");
        }
    }
}
