//! Builds the alert sink from the `alerts` settings: each configured sink, its secrets read
//! from files or environment variables, behind one fan-out that retries and reports failures.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use lifeboat_shared::adapters::alert_config::AlertsConfig;
use lifeboat_shared::adapters::alert_fanout::{FanoutAlertSink, NamedSink};
use lifeboat_shared::adapters::bus_alert::BusAlertSink;
use lifeboat_shared::adapters::log_alert::LogAlertSink;
use lifeboat_shared::adapters::webhook::{SignedWebhookAlertSink, SlackAlertSink, TeamsAlertSink};
use lifeboat_shared::ports::{AlertSink, Bus};

/// The environment variable naming the `alerts` settings file (see `docs/alerts.md`).
pub const ALERTS_FILE_VAR: &str = "LIFEBOAT_ALERTS_FILE";

/// Reads the settings file at `path`.
///
/// # Errors
/// When it cannot be read or is invalid (every problem, by field).
pub fn load(path: &Path) -> anyhow::Result<AlertsConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{ALERTS_FILE_VAR}: reading {}", path.display()))?;
    AlertsConfig::parse(&path.display().to_string(), &text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("{} problem(s) in the alerts settings:\n{}", errors.len(), lines.join("\n"))
    })
}

/// The sink every handler notifies: the configured sinks behind a fan-out (the log when none
/// is configured). `bus` carries the `alerts` topic.
///
/// # Errors
/// When a secret cannot be read or a URL is malformed (the error names the sink, never the
/// secret).
pub fn build(config: &AlertsConfig, bus: &Arc<dyn Bus>) -> anyhow::Result<Arc<dyn AlertSink>> {
    let mut sinks = Vec::new();
    for spec in &config.sinks {
        let name = spec.name.as_str();
        let ctx = || format!("alert sink {name}");
        let sink: Arc<dyn AlertSink> = if let Some(teams) = &spec.teams {
            Arc::new(TeamsAlertSink::new(name, teams.url.read().with_context(ctx)?.expose())?)
        } else if let Some(slack) = &spec.slack {
            Arc::new(SlackAlertSink::new(name, slack.url.read().with_context(ctx)?.expose())?)
        } else if let Some(hook) = &spec.webhook {
            let url = hook.url.read().with_context(ctx)?;
            Arc::new(SignedWebhookAlertSink::new(name, url.expose(), hook.key.read().with_context(ctx)?)?)
        } else if spec.service_bus.is_some() {
            Arc::new(BusAlertSink::new(Arc::clone(bus)))
        } else {
            Arc::new(LogAlertSink)
        };
        sinks.push(NamedSink { name: name.to_owned(), sink });
    }
    if sinks.is_empty() {
        sinks.push(NamedSink { name: "log".into(), sink: Arc::new(LogAlertSink) });
    }
    Ok(Arc::new(FanoutAlertSink::new(sinks, config.sink_retry())))
}
