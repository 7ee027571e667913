//! [`Bus`] on Amazon SQS: SendMessage in SQS's JSON protocol (`AmazonSQS.SendMessage`).
//!
//! - The queue's URL is `<queue_url_prefix><queue>` (`.fifo` appended for FIFO queues), e.g.
//!   `https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-` + `backup-requests`: the
//!   names the Lambda host maps back to functions (see the `lifeboat` crate's `hosts::lambda`).
//! - Duplicate detection: FIFO queues drop a resend with the same `MessageDeduplicationId`
//!   (the message id) within 5 minutes; each message is its own group (its correlation id, else
//!   its id). Standard queues have no duplicate detection: a resend after a crash is delivered
//!   twice, and the handlers' own idempotence (every Lifeboat message is) absorbs it.
//! - Scheduling: `DelaySeconds`, at most 900 (15 minutes, SQS's limit). A message scheduled
//!   further out is delayed 900 s and carries its due time in the `scheduled-enqueue-time`
//!   attribute; Lifeboat only schedules snapshot checks today, at most a minute out. FIFO
//!   queues take no per-message delay: a scheduled message to one is refused
//!   ([`BusError::Invalid`]), so queues that get scheduled messages (`snapshot-checks`) must be
//!   standard queues.
//! - Correlation id, subject, content type, the message id and the application properties travel
//!   as string message attributes (SQS allows 10 per message).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use tracing::instrument;

use super::http::{Call, CallError, SignedClient};
use super::{AwsCredentials, SetupError};
use crate::ports::bus::{Bus, BusError, OutgoingMessage, validate};

/// SQS's longest per-message delay.
pub const MAX_DELAY_SECONDS: i64 = 900;
/// SQS's most message attributes per message.
pub const MAX_ATTRIBUTES: usize = 10;

/// Where the queues are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsSettings {
    /// Prepended to a queue's name to make its URL (see the module docs).
    pub queue_url_prefix: String,
    /// The region (`AWS_REGION` on Lambda).
    pub region: String,
    /// Whether the queues are FIFO queues (names ending `.fifo`).
    pub fifo: bool,
}

/// Sends to SQS queues.
#[derive(Debug, Clone)]
pub struct SqsBus {
    client: SignedClient,
    settings: SqsSettings,
}

fn json_call(target: &str, body: &Value) -> Call {
    Call {
        path: "/".to_owned(),
        headers: vec![
            ("content-type".to_owned(), "application/x-amz-json-1.0".to_owned()),
            ("x-amz-target".to_owned(), format!("AmazonSQS.{target}")),
        ],
        body: Bytes::from(body.to_string()),
        ..Call::default()
    }
}

fn string_attribute(value: &str) -> Value {
    json!({ "DataType": "String", "StringValue": value })
}

/// The message attributes of `message`.
fn attributes(message: &OutgoingMessage) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    out.insert("content-type".to_owned(), string_attribute(&message.content_type));
    out.insert("message-id".to_owned(), string_attribute(&message.message_id));
    if let Some(correlation) = &message.correlation_id {
        out.insert("correlation-id".to_owned(), string_attribute(correlation));
    }
    if let Some(subject) = &message.subject {
        out.insert("subject".to_owned(), string_attribute(subject));
    }
    for (name, value) in &message.properties {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name.len() > 256 || !name.chars().all(allowed) || name.starts_with('.') {
            return Err(format!("property name {name:?} is not a valid SQS attribute name"));
        }
        if out.insert(name.clone(), string_attribute(value)).is_some() {
            return Err(format!("property {name:?} clashes with an attribute the bus sets"));
        }
    }
    if out.len() > MAX_ATTRIBUTES {
        return Err(format!("{} message attributes exceed SQS's {MAX_ATTRIBUTES}", out.len()));
    }
    Ok(out)
}

impl SqsBus {
    /// A bus sending to the queues under `settings.queue_url_prefix`, signing with `credentials`.
    ///
    /// # Errors
    /// A prefix that is not an http(s) URL.
    pub fn new(settings: SqsSettings, credentials: AwsCredentials) -> Result<Self, SetupError> {
        let invalid = || SetupError::InvalidQueuePrefix { prefix: settings.queue_url_prefix.clone() };
        let url = reqwest::Url::parse(&settings.queue_url_prefix).map_err(|_| invalid())?;
        let origin = url.origin().unicode_serialization();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid());
        }
        let client = SignedClient::new(&format!("{origin}/"), credentials, &settings.region, "sqs")?;
        Ok(Self { client, settings })
    }

    /// The URL of `queue`.
    pub fn queue_url(&self, queue: &str) -> String {
        let suffix = if self.settings.fifo && !queue.ends_with(".fifo") { ".fifo" } else { "" };
        format!("{}{queue}{suffix}", self.settings.queue_url_prefix)
    }

    fn send_request(&self, message: &OutgoingMessage) -> Result<Value, String> {
        let body = std::str::from_utf8(&message.body).map_err(|_| "SQS bodies must be UTF-8 text".to_owned())?;
        let mut request = json!({
            "QueueUrl": self.queue_url(&message.queue),
            "MessageBody": body,
            "MessageAttributes": attributes(message)?,
        });
        let delay = message.scheduled_enqueue_time.map(|at| (at - Utc::now()).num_milliseconds()).unwrap_or(0);
        if delay > 0 {
            if self.settings.fifo {
                return Err("FIFO queues take no per-message delay: send scheduled messages to a standard queue".into());
            }
            let seconds = (delay + 999) / 1000;
            request["DelaySeconds"] = json!(seconds.min(MAX_DELAY_SECONDS));
            if seconds > MAX_DELAY_SECONDS
                && let (Some(at), Some(attributes)) =
                    (message.scheduled_enqueue_time, request["MessageAttributes"].as_object_mut())
            {
                if attributes.len() >= MAX_ATTRIBUTES {
                    return Err(format!("no room for the due time among SQS's {MAX_ATTRIBUTES} attributes"));
                }
                attributes.insert("scheduled-enqueue-time".to_owned(), string_attribute(&at.to_rfc3339()));
            }
        }
        if self.settings.fifo {
            let group = message.correlation_id.as_deref().unwrap_or(&message.message_id);
            request["MessageDeduplicationId"] = json!(message.message_id);
            request["MessageGroupId"] = json!(group);
        }
        Ok(request)
    }

    /// Sends a JSON-protocol request and reads its JSON answer.
    async fn call(&self, target: &str, request: &Value) -> Result<Value, CallError> {
        let response = self.client.send(Method::POST, json_call(target, request)).await?;
        let text = response.text().await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn send_error(message: &OutgoingMessage, e: CallError) -> BusError {
    let (queue, message_id) = (message.queue.clone(), message.message_id.clone());
    let code = e.code().to_owned();
    let denied = matches!(
        code.as_str(),
        "AccessDenied"
            | "AccessDeniedException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "UnrecognizedClientException"
            | "IncompleteSignature"
    );
    if denied || matches!(e.status(), Some(401 | 403)) {
        BusError::Unauthorized { queue, message_id, reason: e.to_string() }
    } else if e.is_transient() {
        BusError::Unavailable { queue, message_id, source: Box::new(e) }
    } else {
        BusError::Invalid { queue, message_id, reason: e.to_string() }
    }
}

#[async_trait]
impl Bus for SqsBus {
    #[instrument(skip(self, message), fields(queue = %message.queue, message.id = %message.message_id))]
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError> {
        validate(&message)?;
        let request = self.send_request(&message).map_err(|reason| BusError::Invalid {
            queue: message.queue.clone(),
            message_id: message.message_id.clone(),
            reason,
        })?;
        self.call("SendMessage", &request).await.map_err(|e| send_error(&message, e))?;
        Ok(())
    }
}

/// What a test reads back from a queue.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The body.
    pub body: String,
    /// String message attributes by name.
    pub attributes: BTreeMap<String, String>,
}

#[cfg(feature = "testing")]
impl SqsBus {
    /// Creates `queue` (for emulators; on AWS queues are infrastructure), FIFO with
    /// content-based deduplication off when the settings say FIFO.
    ///
    /// # Errors
    /// What SQS answered.
    pub async fn create_queue(&self, queue: &str) -> Result<(), BusError> {
        let url = self.queue_url(queue);
        let name = url.rsplit('/').next().unwrap_or(queue).to_owned();
        let mut request = json!({ "QueueName": name });
        if self.settings.fifo {
            request["Attributes"] = json!({ "FifoQueue": "true" });
        }
        let probe = OutgoingMessage::json(queue, "create-queue", Vec::new());
        self.call("CreateQueue", &request).await.map_err(|e| send_error(&probe, e))?;
        Ok(())
    }

    /// Receives up to 10 messages visible now from `queue`, waiting up to `wait_seconds` for one.
    ///
    /// # Errors
    /// What SQS answered.
    pub async fn receive(&self, queue: &str, wait_seconds: u32) -> Result<Vec<ReceivedMessage>, BusError> {
        let request = json!({
            "QueueUrl": self.queue_url(queue),
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": wait_seconds,
            "MessageAttributeNames": ["All"],
        });
        let probe = OutgoingMessage::json(queue, "receive", Vec::new());
        let answer = self.call("ReceiveMessage", &request).await.map_err(|e| send_error(&probe, e))?;
        let messages = answer.get("Messages").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(messages
            .iter()
            .map(|m| ReceivedMessage {
                body: m.get("Body").and_then(Value::as_str).unwrap_or_default().to_owned(),
                attributes: m
                    .get("MessageAttributes")
                    .and_then(Value::as_object)
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.get("StringValue")?.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus(fifo: bool) -> SqsBus {
        let settings = SqsSettings {
            queue_url_prefix: "https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-".to_owned(),
            region: "eu-west-1".to_owned(),
            fifo,
        };
        SqsBus::new(settings, AwsCredentials::new("AKID", "secret")).expect("bus")
    }

    #[test]
    fn fifo_messages_carry_deduplication_and_group_and_standard_ones_a_capped_delay() {
        let mut message = OutgoingMessage::json("backup-requests", "backup-1", b"{}".to_vec());
        message.correlation_id = Some("b-1".to_owned());
        let fifo = bus(true).send_request(&message).expect("fifo request");
        assert_eq!(fifo["QueueUrl"], "https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-backup-requests.fifo");
        assert_eq!(
            (fifo["MessageDeduplicationId"].as_str(), fifo["MessageGroupId"].as_str()),
            (Some("backup-1"), Some("b-1"))
        );
        assert_eq!(fifo["MessageAttributes"]["correlation-id"]["StringValue"], "b-1");

        let later = message.clone().scheduled_at(Utc::now() + chrono::Duration::hours(1));
        assert!(bus(true).send_request(&later).expect_err("no delay on FIFO").contains("FIFO"));
        let standard = bus(false).send_request(&later).expect("standard request");
        assert_eq!(standard["DelaySeconds"], MAX_DELAY_SECONDS);
        assert!(standard["MessageAttributes"]["scheduled-enqueue-time"]["StringValue"].is_string());
        assert!(standard.get("MessageDeduplicationId").is_none());
    }

    #[test]
    fn too_many_or_malformed_properties_and_binary_bodies_are_refused() {
        let mut message = OutgoingMessage::json("q", "m", b"{}".to_vec());
        message.properties = (0..9).map(|i| (format!("p{i}"), "v".to_owned())).collect();
        assert!(bus(false).send_request(&message).expect_err("11 attributes").contains("exceed"));
        message.properties = BTreeMap::from([("bad name".to_owned(), "v".to_owned())]);
        assert!(bus(false).send_request(&message).is_err());
        let binary = OutgoingMessage::json("q", "m", vec![0xff, 0xfe]);
        assert!(bus(false).send_request(&binary).expect_err("binary").contains("UTF-8"));
    }
}
