//! The Lambda events the app understands, read from the invocation's JSON: EventBridge
//! scheduled events (one per timer function) and SQS batches (one queue per queue function).
//!
//! Names on AWS are the function.json names, optionally prefixed `lifeboat-` (so several apps
//! can share an account): the rule `lifeboat-schedule_tick` fires `schedule_tick`, the queue
//! `lifeboat-backup-requests` (or `backup-requests`, or a `.fifo` queue of either name) feeds
//! `backup`.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// The prefix names on AWS may carry.
pub const NAME_PREFIX: &str = "lifeboat-";

/// An invocation's event.
#[derive(Debug, Clone, PartialEq)]
pub enum LambdaEvent {
    /// An EventBridge scheduled event.
    Scheduled {
        /// The rule's name (the last segment of the rule ARN in `resources`).
        rule: String,
    },
    /// An SQS batch.
    Sqs(Vec<SqsRecord>),
}

/// One message of an SQS batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsRecord {
    /// SQS's message id: the `itemIdentifier` of a batch item failure.
    pub message_id: String,
    /// The queue's name (the last segment of `eventSourceARN`).
    pub queue: String,
    /// The body.
    pub body: String,
    /// `ApproximateReceiveCount` (1 on the first delivery).
    pub receive_count: u32,
    /// `SentTimestamp`, where given.
    pub sent: Option<DateTime<Utc>>,
}

/// Why an event is not one the app understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Neither a scheduled event nor an SQS batch.
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
    /// A scheduled event without a rule ARN in `resources`.
    #[error("scheduled event names no rule in resources")]
    NoRule,
}

/// Reads `event`.
///
/// # Errors
/// [`EventError`] when it is neither a scheduled event nor an SQS batch.
pub fn parse(event: &Value) -> Result<LambdaEvent, EventError> {
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let is_sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
        if !records.is_empty() && records.iter().all(is_sqs) {
            return Ok(LambdaEvent::Sqs(records.iter().map(record).collect()));
        }
        return Err(EventError::Unrecognised("Records that are not all SQS messages".to_owned()));
    }
    let source = event.get("source").and_then(Value::as_str);
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    if source == Some("aws.events") && detail_type == Some("Scheduled Event") {
        let rule = event
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|arn| arn.split_once(":rule/").map(|(_, rest)| last_segment(rest, '/')))
            .ok_or(EventError::NoRule)?;
        return Ok(LambdaEvent::Scheduled { rule: rule.to_owned() });
    }
    Err(EventError::Unrecognised(format!("source {source:?}, detail-type {detail_type:?}")))
}

/// The function or queue name an AWS name stands for: without the `lifeboat-` prefix and a
/// `.fifo` suffix.
pub fn app_name(aws_name: &str) -> &str {
    let name = aws_name.strip_suffix(".fifo").unwrap_or(aws_name);
    name.strip_prefix(NAME_PREFIX).unwrap_or(name)
}

fn last_segment(s: &str, separator: char) -> &str {
    s.rsplit(separator).next().unwrap_or(s)
}

/// One record, read leniently: a field missing is empty (the batch handler refuses it).
fn record(r: &Value) -> SqsRecord {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let attribute = |name: &str| r.get("attributes").and_then(|a| a.get(name)).and_then(Value::as_str);
    SqsRecord {
        message_id: text(r.get("messageId")),
        queue: last_segment(&text(r.get("eventSourceARN")), ':').to_owned(),
        body: text(r.get("body")),
        receive_count: attribute("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1),
        sent: attribute("SentTimestamp")
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_scheduled_event_names_its_rule() {
        let event = json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/lifeboat-schedule_tick"], "detail": {}
        });
        assert_eq!(parse(&event), Ok(LambdaEvent::Scheduled { rule: "lifeboat-schedule_tick".into() }));
        let on_a_bus = json!({"source": "aws.events", "detail-type": "Scheduled Event",
            "resources": ["arn:aws:events:eu-west-1:1:rule/my-bus/lifeboat-prune"]});
        assert_eq!(parse(&on_a_bus), Ok(LambdaEvent::Scheduled { rule: "lifeboat-prune".into() }));
        let no_rule = json!({"source": "aws.events", "detail-type": "Scheduled Event", "resources": []});
        assert_eq!(parse(&no_rule), Err(EventError::NoRule));
    }

    #[test]
    fn an_sqs_batch_reads_ids_queues_and_counts() {
        let event = json!({"Records": [{
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "receiptHandle": "AQEB…", "body": "{}",
            "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1545082649183"},
            "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:lifeboat-backup-requests", "awsRegion": "eu-west-1"
        }]});
        let Ok(LambdaEvent::Sqs(records)) = parse(&event) else { panic!("an SQS batch") };
        assert_eq!(records[0].message_id, "059f36b4-87a3-44ab-83d2-661975830a7d");
        assert_eq!(app_name(&records[0].queue), "backup-requests");
        assert_eq!(records[0].receive_count, 3);
        assert_eq!(records[0].sent.map(|t| t.timestamp_millis()), Some(1_545_082_649_183));
    }

    #[test]
    fn other_events_are_refused() {
        assert!(parse(&json!({"Records": [{"eventSource": "aws:s3"}]})).is_err());
        assert!(parse(&json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"})).is_err());
        assert!(parse(&json!("text")).is_err());
    }

    #[test]
    fn aws_names_map_to_app_names() {
        assert_eq!(app_name("lifeboat-schedule_tick"), "schedule_tick");
        assert_eq!(app_name("backup-requests.fifo"), "backup-requests");
        assert_eq!(app_name("restore-requests"), "restore-requests");
    }
}
