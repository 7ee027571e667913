//! The `alerts` settings: thresholds, how often a firing alert repeats, and the sinks, read
//! from one YAML file (named by `LIFEBOAT_ALERTS_FILE`; see `docs/alerts.md`).
//!
//! ```yaml
//! renotifyEvery: 4h
//! thresholds: { warnAtPercent: 80, stuckAfter: 3h, failedInARow: 3, drillRto: 4h }
//! retry: { attempts: 4, firstBackoff: 500ms }
//! sinks:
//!   - { name: oncall, teams: { url: { file: /run/secrets/teams-url } } }
//!   - { name: chat, slack: { url: { env: LIFEBOAT_SLACK_URL } } }
//!   - { name: siem, webhook: { url: { env: LIFEBOAT_SIEM_URL }, key: { file: /run/secrets/siem-key } } }
//!   - { name: topic, serviceBus: {} }
//!   - { name: log, log: {} }
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alert_fanout::SinkRetry;
use super::webhook::SecretSource;
use crate::domain::policy::{ConfigError, humantime_serde_compat};
use crate::domain::staleness::{AlertTiming, Thresholds};
use crate::workflows::staleness::StalenessSettings;

/// The whole `alerts` settings file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertsConfig {
    /// A firing alert is notified again after this long.
    #[serde(default = "default_renotify", with = "humantime_serde_compat")]
    pub renotify_every: Duration,
    /// When conditions count as problems.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Skip listing VolumeSnapshots in every cluster (the orphan check).
    #[serde(default)]
    pub skip_orphan_scan: bool,
    /// How each sink is retried.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Where notifications go (the log when empty).
    #[serde(default)]
    pub sinks: Vec<SinkSpec>,
}

fn default_renotify() -> Duration {
    AlertTiming::default().renotify_every
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            renotify_every: default_renotify(),
            thresholds: Thresholds::default(),
            skip_orphan_scan: false,
            retry: RetrySpec::default(),
            sinks: Vec::new(),
        }
    }
}

/// Retries of a failing sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetrySpec {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    #[serde(with = "humantime_serde_compat")]
    pub first_backoff: Duration,
}

impl Default for RetrySpec {
    fn default() -> Self {
        let d = SinkRetry::default();
        Self { attempts: d.attempts, first_backoff: d.first_backoff }
    }
}

/// One sink: a name and exactly one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkSpec {
    /// Its name (lowercase letters, digits, `-`): in logs and in `sink.{name}` alerts.
    pub name: String,
    /// Microsoft Teams, through a Workflows webhook.
    pub teams: Option<UrlSink>,
    /// A Slack incoming webhook.
    pub slack: Option<UrlSink>,
    /// A generic JSON webhook signed with HMAC-SHA256.
    pub webhook: Option<SignedSink>,
    /// The `alerts` topic (Service Bus, or the local queue).
    pub service_bus: Option<Empty>,
    /// The log.
    pub log: Option<Empty>,
}

/// A sink configured by its URL alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlSink {
    /// Where the URL (a secret) is read from.
    pub url: SecretSource,
}

/// The signed webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedSink {
    /// Where the URL is read from.
    pub url: SecretSource,
    /// Where the HMAC key is read from.
    pub key: SecretSource,
}

/// A kind without settings (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

impl SinkSpec {
    fn kinds(&self) -> usize {
        [
            self.teams.is_some(),
            self.slack.is_some(),
            self.webhook.is_some(),
            self.service_bus.is_some(),
            self.log.is_some(),
        ]
        .into_iter()
        .filter(|k| *k)
        .count()
    }
}

impl AlertsConfig {
    /// The workflow's settings.
    pub fn staleness(&self) -> StalenessSettings {
        StalenessSettings {
            thresholds: self.thresholds,
            timing: AlertTiming { renotify_every: self.renotify_every },
            skip_orphan_scan: self.skip_orphan_scan,
        }
    }

    /// The retry of each sink.
    pub fn sink_retry(&self) -> SinkRetry {
        SinkRetry { attempts: self.retry.attempts, first_backoff: self.retry.first_backoff }
    }

    /// Parses and checks the settings in `text` (YAML), read from `source`.
    ///
    /// # Errors
    /// Every problem found, each naming the source and field.
    pub fn parse(source: &str, text: &str) -> Result<AlertsConfig, Vec<ConfigError>> {
        let err = |field: &str, problem: String| ConfigError {
            source_name: source.to_owned(),
            document: 1,
            field: field.to_owned(),
            problem,
        };
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| vec![err("(document)", format!("not valid YAML: {e}"))])?;
        // An empty file means every default.
        let value = if value.is_null() { serde_yaml_ng::Value::Mapping(Default::default()) } else { value };
        let config: AlertsConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            vec![err(if path == "." { "(document)" } else { &path }, e.into_inner().to_string())]
        })?;
        let mut errors: Vec<ConfigError> = config.thresholds.problems().into_iter().map(|(f, p)| err(f, p)).collect();
        if config.renotify_every.is_zero() {
            errors.push(err("renotifyEvery", "must be longer than zero".into()));
        }
        if config.retry.attempts == 0 {
            errors.push(err("retry.attempts", "must be at least 1".into()));
        }
        let mut names = BTreeSet::new();
        for (i, sink) in config.sinks.iter().enumerate() {
            let valid = !sink.name.is_empty()
                && sink.name.len() <= 63
                && sink.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                errors.push(err(&format!("sinks[{i}].name"), format!("{:?}: use 1–63 of a-z, 0-9 and -", sink.name)));
            }
            if !names.insert(sink.name.as_str()) {
                errors.push(err(&format!("sinks[{i}].name"), format!("{:?} is used by an earlier sink", sink.name)));
            }
            if sink.kinds() != 1 {
                errors.push(err(
                    &format!("sinks[{i}]"),
                    "set exactly one of teams, slack, webhook, serviceBus, log".into(),
                ));
            }
        }
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let text = r#"
renotifyEvery: 2h
thresholds: { warnAtPercent: 75, stuckAfter: 1h }
retry: { attempts: 2, firstBackoff: 1s }
sinks:
  - { name: oncall, teams: { url: { file: /run/secrets/teams } } }
  - { name: siem, webhook: { url: { env: SIEM_URL }, key: { env: SIEM_KEY } } }
  - { name: topic, serviceBus: {} }
"#;
        let c = AlertsConfig::parse("alerts.yaml", text).unwrap();
        assert_eq!(c.staleness().timing.renotify_every, Duration::from_secs(7200));
        assert_eq!(c.thresholds.warn_at_percent, 75);
        assert_eq!(c.thresholds.failed_in_a_row, 3, "unset thresholds keep their defaults");
        assert_eq!(c.sinks.len(), 3);
        assert_eq!(c.sinks[1].webhook.as_ref().unwrap().key, SecretSource::Env("SIEM_KEY".into()));
    }

    #[test]
    fn every_problem_is_named_by_field() {
        let text = r#"
renotifyEvery: 0s
thresholds: { warnAtPercent: 120 }
sinks:
  - { name: Oncall, teams: { url: { env: A } }, slack: { url: { env: B } } }
  - { name: Oncall, log: {} }
"#;
        let errors = AlertsConfig::parse("alerts.yaml", text).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "thresholds.warnAtPercent",
                "renotifyEvery",
                "sinks[0].name",
                "sinks[0]",
                "sinks[1].name",
                "sinks[1].name"
            ]
        );
        let typo = AlertsConfig::parse("alerts.yaml", "sinks: [{ name: x, teams: { uri: { env: A } } }]").unwrap_err();
        assert_eq!(typo[0].field, "sinks[0].teams.uri", "{typo:?}");
        assert!(typo[0].problem.contains("unknown field `uri`"), "{typo:?}");
        let both = AlertsConfig::parse("a", "sinks: [{ name: x, slack: { url: { env: A, file: /f } } }]").unwrap_err();
        assert!(both[0].problem.contains("exactly one of file and env"), "{both:?}");
    }
}
