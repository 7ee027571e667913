//! Pumps the local queues into the queue-triggered handlers, as the Functions host does with
//! Service Bus: peek-lock, lock renewal while a handler runs, complete on success, dead-letter
//! what can never succeed, abandon with backoff what may succeed later.

use std::sync::Arc;
use std::time::Duration;

use lifeboat_shared::ports::{QueueReceiver, ReceivedMessage};
use tokio::sync::Semaphore;

use super::{Shutdown, stopped};
use crate::app::AppState;
use crate::function_defs::{FunctionDef, TriggerKind};
use crate::handlers::{self, MessageInput, Outcome, TriggerInput};

/// How long an idle queue waits before polling again.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Longest backoff between redeliveries of a failing message.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub(crate) struct Pump {
    app: AppState,
    receiver: Arc<dyn QueueReceiver>,
    workers: Arc<Semaphore>,
    capacity: u32,
}

impl Pump {
    pub(crate) fn new(app: AppState, receiver: Arc<dyn QueueReceiver>, workers: usize) -> Self {
        let capacity = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
        Self { app, receiver, workers: Arc::new(Semaphore::new(capacity as usize)), capacity }
    }

    /// Receives from every queue-triggered function's queue until shutdown, then waits up to
    /// `drain` for handlers in flight. A message whose handler did not finish stays locked
    /// and is redelivered when its lock expires: nothing is lost.
    pub(crate) async fn run(self, shutdown: Shutdown, drain: Duration) {
        let defs: Vec<FunctionDef> = self
            .app
            .functions
            .iter()
            .filter(|d| matches!(d.trigger, TriggerKind::ServiceBus { .. }))
            .cloned()
            .collect();
        let this = Arc::new(self);
        let loops: Vec<_> =
            defs.into_iter().map(|def| tokio::spawn(Arc::clone(&this).pump_queue(def, shutdown.clone()))).collect();
        for l in loops {
            let _ = l.await;
        }
        match tokio::time::timeout(drain, this.workers.acquire_many(this.capacity)).await {
            Ok(_) => tracing::info!("queue handlers drained"),
            Err(_) => tracing::warn!("handlers still running after {drain:?}: their messages are redelivered later"),
        }
    }

    async fn pump_queue(self: Arc<Self>, def: FunctionDef, shutdown: Shutdown) {
        let TriggerKind::ServiceBus { queue } = def.trigger.clone() else { return };
        loop {
            if *shutdown.borrow() {
                return;
            }
            let Ok(permit) = Arc::clone(&self.workers).acquire_owned().await else { return };
            let received = match self.receiver.receive(&queue, 1).await {
                Ok(mut batch) => batch.pop(),
                Err(e) => {
                    tracing::error!(queue, "receiving failed: {e}");
                    None
                }
            };
            let Some(message) = received else {
                drop(permit);
                tokio::select! {
                    () = tokio::time::sleep(IDLE_POLL) => continue,
                    () = stopped(shutdown.clone()) => return,
                }
            };
            let (this, def) = (Arc::clone(&self), def.clone());
            tokio::spawn(async move {
                this.handle(&def, message).await;
                drop(permit);
            });
        }
    }

    async fn handle(&self, def: &FunctionDef, message: ReceivedMessage) {
        let input = MessageInput::from(&message);
        let renewal = tokio::spawn(keep_locked(Arc::clone(&self.receiver), message.clone()));
        let result = handlers::dispatch(&self.app, def, TriggerInput::Message(input.clone())).await;
        renewal.abort();
        let settled = match result {
            Ok(Outcome::Done { .. }) => self.receiver.complete(&message).await,
            Ok(Outcome::DeadLetter { reason, description }) => {
                if let Err(e) = handlers::record_dead_letter(&self.app, &input, &reason, &description, false).await {
                    tracing::error!(queue = %message.queue, message.id = %message.message_id, "{e}");
                    return self.retry_later(&message).await;
                }
                self.receiver.dead_letter(&message, &reason, &description).await
            }
            Err(e) if e.status() < 500 => {
                // The handler says this delivery can never succeed.
                let reason = "HandlerRejected";
                if let Err(e) = handlers::record_dead_letter(&self.app, &input, reason, &e.to_string(), false).await {
                    tracing::error!(queue = %message.queue, message.id = %message.message_id, "{e}");
                }
                self.receiver.dead_letter(&message, reason, &e.to_string()).await
            }
            Err(e) => {
                tracing::warn!(
                    function = def.name, message.id = %message.message_id, delivery = message.delivery_count,
                    status = e.status(), "{e}"
                );
                return self.retry_later(&message).await;
            }
        };
        if let Err(e) = settled {
            tracing::warn!(queue = %message.queue, message.id = %message.message_id, "settling failed: {e}");
        }
    }

    async fn retry_later(&self, message: &ReceivedMessage) {
        let delay = backoff(message.delivery_count);
        if let Err(e) = self.receiver.abandon(message, Some(delay)).await {
            tracing::warn!(queue = %message.queue, message.id = %message.message_id, "abandon failed: {e}");
        }
    }
}

/// 1 s, 2 s, 4 s, … up to five minutes.
fn backoff(delivery_count: u32) -> Duration {
    let exp = delivery_count.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// Renews the message's lock at half its duration until aborted.
async fn keep_locked(receiver: Arc<dyn QueueReceiver>, message: ReceivedMessage) {
    let mut until = message.locked_until;
    loop {
        let half = (until - chrono::Utc::now()).to_std().unwrap_or_default() / 2;
        tokio::time::sleep(half.max(Duration::from_millis(500))).await;
        match receiver.renew_lock(&message).await {
            Ok(next) => until = next,
            Err(e) => {
                tracing::warn!(message.id = %message.message_id, "lock renewal failed: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
