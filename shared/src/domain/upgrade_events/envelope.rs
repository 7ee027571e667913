//! One Event Grid delivery in either schema, read into one [`EventEnvelope`].
//!
//! - Event Grid schema: `id`, `topic`, `subject`, `eventType`, `eventTime`, `data`,
//!   `dataVersion` (and `metadataVersion`).
//! - CloudEvents 1.0: `id`, `source`, `subject`, `type`, `time`, `data`, `specversion`. Azure's
//!   own CloudEvents sample for AKS spells `specVersion`: both spellings are read.
//!
//! A delivery is one event or an array of them (Event Grid batches); each event of a batch
//! parses on its own, so one malformed event does not hide the others.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::EventError;

/// Which schema an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSchema {
    /// The Event Grid event schema.
    EventGrid,
    /// CloudEvents 1.0.
    CloudEvents,
}

/// The fields of one event Lifeboat reads, whatever its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope {
    /// The schema it came in.
    pub schema: EventSchema,
    /// The event's id (unique per publisher; redeliveries repeat it).
    pub id: String,
    /// `eventType` or `type`.
    pub event_type: String,
    /// `topic` or `source`: for AKS system topics, the cluster's ARM id.
    pub source: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `eventTime` or `time`, when present.
    pub time: Option<DateTime<Utc>>,
    /// `data` (`null` when absent).
    pub data: Value,
}

/// Reads a delivery: one event object or an array of them. The outer result fails only when
/// the delivery is neither; each event then parses (or fails) on its own.
///
/// # Errors
/// [`EventError::NotJson`] or [`EventError::NotAnEventOrBatch`].
pub fn parse_delivery(body: &[u8]) -> Result<Vec<Result<EventEnvelope, EventError>>, EventError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    parse_delivery_value(&value)
}

/// Like [`parse_delivery`], from a parsed JSON value.
///
/// # Errors
/// [`EventError::NotAnEventOrBatch`] when it is neither an object nor an array.
pub fn parse_delivery_value(value: &Value) -> Result<Vec<Result<EventEnvelope, EventError>>, EventError> {
    match value {
        Value::Array(events) => Ok(events.iter().map(parse_event).collect()),
        Value::Object(_) => Ok(vec![parse_event(value)]),
        _ => Err(EventError::NotAnEventOrBatch),
    }
}

/// Reads one event in either schema.
///
/// # Errors
/// [`EventError`] naming what is missing or wrong.
pub fn parse_event(value: &Value) -> Result<EventEnvelope, EventError> {
    let Value::Object(event) = value else {
        return Err(EventError::NotAnObject);
    };
    let spec_version = optional_string(event, &["specversion", "specVersion"])?;
    let (schema, type_keys, source_keys, time_keys): (_, &[&str], &[&str], &[&str]) = if event.contains_key("eventType")
    {
        (EventSchema::EventGrid, &["eventType"], &["topic"], &["eventTime"])
    } else if let Some(version) = spec_version {
        if version != "1.0" {
            return Err(EventError::UnsupportedSpecVersion(version));
        }
        (EventSchema::CloudEvents, &["type"], &["source"], &["time"])
    } else {
        return Err(EventError::UnknownSchema);
    };
    let id = optional_string(event, &["id"])?.filter(|s| !s.is_empty()).ok_or(EventError::MissingField("id"))?;
    let event_type =
        optional_string(event, type_keys)?.filter(|s| !s.is_empty()).ok_or(EventError::MissingField(type_keys[0]))?;
    let time = optional_string(event, time_keys)?
        .map(|s| {
            parse_time(&s).ok_or(EventError::InvalidField {
                field: time_keys[0].to_owned(),
                problem: "not an RFC 3339 time".to_owned(),
            })
        })
        .transpose()?;
    Ok(EventEnvelope {
        schema,
        id,
        event_type,
        source: optional_string(event, source_keys)?,
        subject: optional_string(event, &["subject"])?,
        time,
        data: event.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// The first of `keys` present, which must be a string.
fn optional_string(event: &Map<String, Value>, keys: &[&str]) -> Result<Option<String>, EventError> {
    match keys.iter().find_map(|k| event.get(*k).map(|v| (*k, v))) {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.clone())),
        Some((key, _)) => Err(EventError::InvalidField { field: key.to_owned(), problem: "not a string".to_owned() }),
    }
}

/// An RFC 3339 time; Azure writes up to 9 fractional digits, and a few of its fields none
/// of the zone (read as UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_schemas_read_into_the_same_fields() {
        let grid = json!({"id": "e1", "topic": "/t", "subject": "s", "eventType": "X", "eventTime": "2021-07-01T04:52:57.0000000Z", "data": {"a": 1}, "dataVersion": "1"});
        let cloud = json!({"id": "e1", "source": "/t", "subject": "s", "type": "X", "time": "2021-07-01T04:52:57.0000000Z", "data": {"a": 1}, "specversion": "1.0"});
        let (g, c) = (parse_event(&grid).unwrap(), parse_event(&cloud).unwrap());
        assert_eq!((g.schema, c.schema), (EventSchema::EventGrid, EventSchema::CloudEvents));
        assert_eq!(EventEnvelope { schema: EventSchema::EventGrid, ..c }, g);
        assert_eq!(g.time.unwrap().to_rfc3339(), "2021-07-01T04:52:57+00:00");
    }

    #[test]
    fn azure_spelling_spec_version_is_read() {
        let cloud = json!({"id": "e1", "source": "/t", "type": "X", "specVersion": "1.0"});
        assert_eq!(parse_event(&cloud).unwrap().schema, EventSchema::CloudEvents);
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let cases = [
            (json!(5), EventError::NotAnObject),
            (json!({"id": "e1", "data": {}}), EventError::UnknownSchema),
            (json!({"eventType": "X"}), EventError::MissingField("id")),
            (json!({"id": "", "eventType": "X"}), EventError::MissingField("id")),
            (json!({"id": "e1", "specversion": "1.0"}), EventError::MissingField("type")),
            (json!({"id": "e1", "type": "X", "specversion": "0.3"}), EventError::UnsupportedSpecVersion("0.3".into())),
            (
                json!({"id": 7, "eventType": "X"}),
                EventError::InvalidField { field: "id".into(), problem: "not a string".into() },
            ),
            (
                json!({"id": "e", "eventType": "X", "eventTime": "yesterday"}),
                EventError::InvalidField { field: "eventTime".into(), problem: "not an RFC 3339 time".into() },
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(parse_event(&event), Err(expected), "{event}");
        }
    }

    #[test]
    fn a_batch_parses_each_event_on_its_own() {
        let batch = br#"[{"id": "a", "eventType": "X"}, 3, {"id": "b", "type": "Y", "specversion": "1.0"}]"#;
        let events = parse_delivery(batch).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].as_ref().unwrap().id, "a");
        assert_eq!(events[1], Err(EventError::NotAnObject));
        assert_eq!(events[2].as_ref().unwrap().id, "b");
        assert_eq!(parse_delivery(b"\"x\""), Err(EventError::NotAnEventOrBatch));
        assert!(matches!(parse_delivery(b"{"), Err(EventError::NotJson(_))));
    }
}
