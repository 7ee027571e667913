//! `upgrade_event` (Event Grid): a backup before every AKS upgrade.
//!
//! Input: one event or a batch (an array), in the Event Grid schema or CloudEvents 1.0, from
//! the Functions host's Event Grid trigger (`Data.event`) or the local runtime's webhook.
//!
//! What the hosts expect, and so how this answers:
//! - The Functions host answers the subscription validation handshake itself; it hands the
//!   event to the function and answers Event Grid 200 when the invocation succeeds. A failed
//!   invocation (non-2xx) makes Event Grid retry with backoff (by default up to 30 attempts
//!   within 24 hours), then drop or dead-letter the event.
//! - The local runtime's webhook answers the handshakes, then 200 when every event was
//!   handled, and the handler's status otherwise; Event Grid treats a webhook's 5xx the same
//!   way (retry, then dead-letter).
//!
//! So an event that can never be handled (malformed, unknown schema version, a known type
//! with malformed data) is acknowledged, with the reason in the invocation's logs: retrying
//! cannot fix it. A failure of the state store or the bus answers 503 (or 500) so Event Grid
//! redelivers; the claims make the redelivery finish the work without duplicating it.

use lifeboat_shared::domain::upgrade_events::{classify, parse_delivery_value};
use lifeboat_shared::workflows::upgrade_event::{self, Deps};
use serde_json::Value;

use super::{HandlerError, Outcome, retryable};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, delivery: &Value) -> Result<Outcome, HandlerError> {
    let events = parse_delivery_value(delivery).map_err(|e| HandlerError::BadInvocation(e.to_string()))?;
    let deps = Deps { config: &app.config, state: app.state.as_ref(), bus: app.bus.as_ref(), now: app.clock.now() };
    let mut logs = Vec::new();
    let mut failures = Vec::new();
    let mut transient = false;
    for (index, parsed) in events.into_iter().enumerate() {
        let id = parsed.as_ref().map(|e| e.id.clone()).unwrap_or_else(|_| format!("#{index}"));
        let event = match parsed.and_then(|e| classify(&e)) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(event.id = %id, error = %e, "malformed upgrade event acknowledged (a retry cannot fix it)");
                logs.push(format!("event {id} refused and acknowledged (never retried): {e}"));
                continue;
            }
        };
        match upgrade_event::handle(&deps, &event).await {
            Ok(report) => {
                let lines = report.lines();
                lines.iter().for_each(|l| tracing::info!(event.id = %event.id, "{l}"));
                logs.extend(lines);
            }
            Err(e) => {
                tracing::error!(event.id = %event.id, error = %e, cause = ?std::error::Error::source(&e), "upgrade event failed");
                transient |= e.is_transient();
                failures.push(format!("event {}: {e}", event.id));
            }
        }
    }
    if !failures.is_empty() {
        // Event Grid redelivers the whole delivery; what succeeded is claimed and not repeated.
        return Err(retryable(transient, failures.join("; ")));
    }
    Ok(Outcome::done(logs))
}
