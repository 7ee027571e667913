//! The SQS bus against moto: what is sent is received with its attributes; delays and FIFO
//! de-duplication behave as SQS documents them.

mod support;

use std::time::Duration;

use chrono::Utc;
use lifeboat_shared::adapters::aws::{SqsBus, SqsSettings};
use lifeboat_shared::ports::bus::{Bus, BusError, OutgoingMessage};
use support::moto::{Moto, REGION};

fn bus(moto: &Moto, fifo: bool) -> SqsBus {
    let settings =
        SqsSettings { queue_url_prefix: moto.queue_url_prefix("lifeboat-"), region: REGION.to_owned(), fifo };
    SqsBus::new(settings, Moto::credentials()).expect("bus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_with_their_attributes_and_delays_are_honoured() {
    let Some(moto) = Moto::start() else { return };
    let bus = bus(&moto, false);
    bus.create_queue("backup-requests").await.expect("queue");

    let mut message = OutgoingMessage::json("backup-requests", "backup-prod-1", br#"{"cluster":"prod"}"#.to_vec());
    message.correlation_id = Some("b-42".to_owned());
    message.subject = Some("BackupRequest".to_owned());
    message.properties.insert("priority".to_owned(), "high".to_owned());
    bus.send(message).await.expect("send");
    let later = OutgoingMessage::json("backup-requests", "check-1", b"{}".to_vec())
        .scheduled_at(Utc::now() + chrono::Duration::seconds(3));
    bus.send(later).await.expect("send delayed");

    let received = bus.receive("backup-requests", 1).await.expect("receive");
    assert_eq!(received.len(), 1, "only the undelayed message is visible at once: {received:?}");
    let got = &received[0];
    assert_eq!(got.body, r#"{"cluster":"prod"}"#);
    let attribute = |name: &str| got.attributes.get(name).map(String::as_str);
    assert_eq!(attribute("correlation-id"), Some("b-42"));
    assert_eq!(attribute("subject"), Some("BackupRequest"));
    assert_eq!(attribute("message-id"), Some("backup-prod-1"));
    assert_eq!(attribute("priority"), Some("high"));
    assert_eq!(attribute("content-type"), Some("application/json"));

    tokio::time::sleep(Duration::from_secs(4)).await;
    let delayed = bus.receive("backup-requests", 1).await.expect("receive delayed");
    assert_eq!(
        delayed.iter().map(|m| m.attributes.get("message-id").cloned()).collect::<Vec<_>>(),
        [Some("check-1".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_queues_drop_resends_and_refuse_delays_and_unknown_queues_are_invalid() {
    let Some(moto) = Moto::start() else { return };
    let bus = bus(&moto, true);
    bus.create_queue("copy-requests").await.expect("queue");
    for _ in 0..2 {
        bus.send(OutgoingMessage::json("copy-requests", "copy-1", b"{}".to_vec())).await.expect("send");
    }
    let received = bus.receive("copy-requests", 1).await.expect("receive");
    assert_eq!(received.len(), 1, "the resend with the same id is dropped: {received:?}");

    let later = OutgoingMessage::json("copy-requests", "copy-2", b"{}".to_vec())
        .scheduled_at(Utc::now() + chrono::Duration::seconds(30));
    assert!(matches!(bus.send(later).await, Err(BusError::Invalid { .. })), "FIFO queues take no delay");

    let err = bus.send(OutgoingMessage::json("no-such-queue", "m", b"{}".to_vec())).await.expect_err("no queue");
    assert!(matches!(err, BusError::Invalid { .. }), "{err:?}");
}
