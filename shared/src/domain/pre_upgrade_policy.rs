//! A policy's `spec.preUpgrade`: which upgrade events start a backup, and how fresh an
//! existing backup must be to make one unnecessary.
//!
//! ```yaml
//! spec:
//!   preUpgrade:
//!     on: [PreUpgrade, NodePoolRollingStarted, ScheduledMaintenance]   # the default
//!     freshness: 6h          # a committed backup younger than this is enough (default 6h)
//!     maintenanceLead: 2h    # scheduled maintenance: back up this long before it starts (default 2h)
//! ```
//!
//! Every field is optional, and a policy without `preUpgrade` gets the defaults: a pipeline's
//! `Lifeboat.PreUpgrade`, the start of a node pool's rolling and AKS's scheduled-maintenance
//! notices trigger a backup. `on: []` turns pre-upgrade backups off for the policy. The other
//! triggers (`NewKubernetesVersionAvailable`, `ClusterSupportEnding`, `ClusterSupportEnded`,
//! `ResourceWriteSuccess`) announce that an upgrade is due rather than start one, or fire on
//! every write to the cluster: opt in when you want a backup then too.
//!
//! Scheduled maintenance: a `Scheduled` notice (AKS sends one 7 days and one 24 hours ahead)
//! schedules the backup request for `scheduledTime - maintenanceLead` (at once when that is
//! already past), under one id per maintenance, so both notices ask for the same backup; the
//! `Started` notice asks for a backup at once unless one younger than `freshness` exists,
//! which the scheduled one is when `maintenanceLead` is shorter than `freshness`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::policy::humantime_serde_compat;
use super::upgrade_events::UpgradeTrigger;

/// `spec.preUpgrade` of a backup policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreUpgradeSpec {
    /// The events that start a backup ([`UpgradeTrigger::DEFAULT`] when absent).
    #[serde(default = "default_triggers")]
    pub on: Vec<UpgradeTrigger>,
    /// A committed backup of the target younger than this makes a new one unnecessary.
    #[serde(default = "default_freshness", with = "humantime_serde_compat")]
    pub freshness: Duration,
    /// How long before a scheduled maintenance its backup is requested.
    #[serde(default = "default_lead", with = "humantime_serde_compat")]
    pub maintenance_lead: Duration,
}

impl PreUpgradeSpec {
    /// The default freshness: 6 hours.
    pub const DEFAULT_FRESHNESS: Duration = Duration::from_secs(6 * 3600);
    /// The default maintenance lead: 2 hours.
    pub const DEFAULT_LEAD: Duration = Duration::from_secs(2 * 3600);

    /// Whether `trigger` starts a backup under this policy.
    pub fn triggers_on(&self, trigger: UpgradeTrigger) -> bool {
        self.on.contains(&trigger)
    }
}

impl Default for PreUpgradeSpec {
    fn default() -> Self {
        Self { on: default_triggers(), freshness: default_freshness(), maintenance_lead: default_lead() }
    }
}

fn default_triggers() -> Vec<UpgradeTrigger> {
    UpgradeTrigger::DEFAULT.to_vec()
}

fn default_freshness() -> Duration {
    PreUpgradeSpec::DEFAULT_FRESHNESS
}

fn default_lead() -> Duration {
    PreUpgradeSpec::DEFAULT_LEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Config;

    fn policy(pre_upgrade: &str) -> Result<Config, String> {
        let text = format!(
            r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec: {{ region: westeurope, kubeconfig: {{}} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: hourly }}
spec:
  clusters: [prod]
  schedule: "0 0 * * * *"
  rpo: 2h
  retention: {{ keepLast: 24 }}
{pre_upgrade}
"#
        );
        Config::from_sources([("policy.yaml", text.as_str())]).map_err(|e| format!("{e:?}"))
    }

    fn spec(config: &Config) -> &PreUpgradeSpec {
        &config.policies.values().next().expect("one policy").spec.pre_upgrade
    }

    #[test]
    fn a_policy_without_pre_upgrade_gets_the_defaults() {
        let config = policy("").unwrap();
        let spec = spec(&config);
        assert_eq!(spec, &PreUpgradeSpec::default());
        assert!(spec.triggers_on(UpgradeTrigger::NodePoolRollingStarted));
        assert!(!spec.triggers_on(UpgradeTrigger::ResourceWriteSuccess));
        assert_eq!(spec.freshness, Duration::from_secs(6 * 3600));
    }

    #[test]
    fn triggers_freshness_and_lead_are_read() {
        let config = policy(
            "  preUpgrade: { on: [ResourceWriteSuccess, ClusterSupportEnding], freshness: 30m, maintenanceLead: 4h }",
        )
        .unwrap();
        let spec = spec(&config);
        assert_eq!(spec.on, [UpgradeTrigger::ResourceWriteSuccess, UpgradeTrigger::ClusterSupportEnding]);
        assert_eq!(spec.freshness, Duration::from_secs(1800));
        assert_eq!(spec.maintenance_lead, Duration::from_secs(4 * 3600));
        assert!(!spec.triggers_on(UpgradeTrigger::PreUpgrade));
    }

    #[test]
    fn unknown_triggers_and_fields_are_refused() {
        for bad in ["  preUpgrade: { on: [NodePoolRollingSucceeded] }", "  preUpgrade: { freshnes: 1h }"] {
            let error = policy(bad).unwrap_err();
            assert!(error.contains("preUpgrade"), "{bad}: {error}");
        }
    }
}
