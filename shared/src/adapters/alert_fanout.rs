//! Sends each notification to every configured sink, retrying transient failures with
//! backoff. A sink that still fails is itself reported: an alert `sink.{name}` goes through
//! the sinks that did deliver, and an error line to the log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::messages::{Alert, AlertState, Severity};
use crate::ports::{AlertSink, AlertSinkError};

/// One configured sink and its name (used in logs and in `sink.{name}` alerts).
#[derive(Clone)]
pub struct NamedSink {
    /// The name.
    pub name: String,
    /// The sink.
    pub sink: Arc<dyn AlertSink>,
}

/// How patiently each sink is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkRetry {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub first_backoff: Duration,
}

impl Default for SinkRetry {
    fn default() -> Self {
        Self { attempts: 4, first_backoff: Duration::from_millis(500) }
    }
}

/// Every sink, each retried; the failures reported through the others.
pub struct FanoutAlertSink {
    sinks: Vec<NamedSink>,
    retry: SinkRetry,
}

impl FanoutAlertSink {
    /// A fan-out over `sinks`.
    pub fn new(sinks: Vec<NamedSink>, retry: SinkRetry) -> Self {
        Self { sinks, retry }
    }

    /// The sinks' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.sinks.iter().map(|s| s.name.as_str()).collect()
    }

    async fn with_retry(&self, sink: &NamedSink, alert: &Alert) -> Result<(), AlertSinkError> {
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            match sink.sink.notify(alert).await {
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    tracing::debug!(sink = %sink.name, attempt, "retrying alert delivery: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// The alert that reports `sink` failing to deliver `failed`.
pub fn sink_failure_alert(sink: &str, failed: &Alert, error: &AlertSinkError) -> Alert {
    let cause = std::error::Error::source(error).map(|s| format!(": {s}")).unwrap_or_default();
    Alert {
        schema_version: 1,
        alert_id: format!("sink.{sink}"),
        cluster: failed.cluster.clone(),
        state: AlertState::Firing,
        severity: Severity::Warning,
        summary: format!(
            "alert sink {sink} could not deliver {} #{}: {error}{cause}",
            failed.alert_id, failed.notification
        ),
        notification: failed.notification,
        at: failed.at,
    }
}

#[async_trait]
impl AlertSink for FanoutAlertSink {
    /// Succeeds when at least one sink delivered (or none is configured).
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError> {
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        for sink in &self.sinks {
            match self.with_retry(sink, alert).await {
                Ok(()) => delivered.push(sink),
                Err(e) => {
                    tracing::error!(sink = %sink.name, alert.id = %alert.alert_id, "alert sink failed: {e}");
                    failed.push((sink, e));
                }
            }
        }
        for (sink, error) in &failed {
            let report = sink_failure_alert(&sink.name, alert, error);
            for other in &delivered {
                if let Err(e) = other.sink.notify(&report).await {
                    tracing::warn!(sink = %other.name, "reporting the failure of sink {} failed: {e}", sink.name);
                }
            }
        }
        match failed.into_iter().next() {
            Some((_, e)) if delivered.is_empty() => Err(e),
            _ => Ok(()),
        }
    }
}
