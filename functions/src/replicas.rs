//! Cross-region snapshot copies, chosen by configuration: the ARM snapshot copier when
//! `LIFEBOAT_REPLICA_RESOURCE_GROUP` is set (see the settings table in [`crate::storage`] and
//! `docs/azure.md`), none otherwise.

use std::sync::Arc;

use anyhow::Context;
use lifeboat_shared::adapters::azure::arm::{ArmClient, ArmSettings, ArmSnapshotCopier};
use lifeboat_shared::ports::SnapshotCopier;

use crate::storage::auth_from_lookup;

/// The resource group replicas are created in: `/subscriptions/{id}/resourceGroups/{name}`.
pub const REPLICA_GROUP_VAR: &str = "LIFEBOAT_REPLICA_RESOURCE_GROUP";
/// ARM's endpoint, for a sovereign cloud (default `https://management.azure.com`).
pub const ARM_ENDPOINT_VAR: &str = "LIFEBOAT_ARM_ENDPOINT";

/// The snapshot copier the process environment asks for.
///
/// # Errors
/// See [`snapshot_copier_from_lookup`].
pub fn snapshot_copier_from_env() -> anyhow::Result<Option<Arc<dyn SnapshotCopier>>> {
    snapshot_copier_from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// The snapshot copier the settings `get` returns ask for: ARM's with the Lifeboat identity
/// (`LIFEBOAT_AZURE_AUTH`, as for storage) when [`REPLICA_GROUP_VAR`] is set, else `None`.
///
/// # Errors
/// A malformed resource group id or endpoint, or an identity that cannot be built (`dev-key`
/// is no identity), each named.
pub fn snapshot_copier_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Arc<dyn SnapshotCopier>>> {
    let Some(group) = get(REPLICA_GROUP_VAR) else { return Ok(None) };
    let credential = auth_from_lookup(&get)?
        .token_credential("Azure Resource Manager")
        .with_context(|| format!("{REPLICA_GROUP_VAR} is set: snapshot copies need an Azure identity"))?;
    let mut settings = ArmSettings::default();
    if let Some(endpoint) = get(ARM_ENDPOINT_VAR) {
        settings.endpoint = endpoint;
    }
    let client = ArmClient::new(credential, settings).context(ARM_ENDPOINT_VAR)?;
    let copier = ArmSnapshotCopier::new(client, group.trim()).context(REPLICA_GROUP_VAR)?;
    Ok(Some(Arc::new(copier)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn no_replica_group_means_no_copier() {
        assert!(snapshot_copier_from_lookup(lookup(&[])).expect("fine").is_none());
    }

    #[test]
    fn a_replica_group_builds_the_arm_copier_with_the_default_identity() {
        let copier = snapshot_copier_from_lookup(lookup(&[(
            REPLICA_GROUP_VAR,
            "/subscriptions/0000/resourceGroups/lifeboat-replicas",
        )]))
        .expect("managed identity needs no setting");
        assert!(copier.is_some());
    }

    #[test]
    fn bad_settings_are_named() {
        let err = snapshot_copier_from_lookup(lookup(&[
            (REPLICA_GROUP_VAR, "/subscriptions/0000/resourceGroups/g/providers/Microsoft.Compute/snapshots/s"),
            ("LIFEBOAT_AZURE_AUTH", "azure-cli"),
        ]))
        .err()
        .expect("not a group");
        assert!(format!("{err:#}").contains(REPLICA_GROUP_VAR), "{err:#}");
        let err = snapshot_copier_from_lookup(lookup(&[
            (REPLICA_GROUP_VAR, "/subscriptions/0000/resourceGroups/g"),
            ("LIFEBOAT_AZURE_AUTH", "dev-key"),
        ]))
        .err()
        .expect("dev-key is no identity");
        assert!(format!("{err:#}").contains("Azure identity"), "{err:#}");
        let err = snapshot_copier_from_lookup(lookup(&[
            (REPLICA_GROUP_VAR, "/subscriptions/0000/resourceGroups/g"),
            ("LIFEBOAT_AZURE_AUTH", "azure-cli"),
            (ARM_ENDPOINT_VAR, "http://arm.example.com"),
        ]))
        .err()
        .expect("tokens only over https");
        assert!(format!("{err:#}").contains(ARM_ENDPOINT_VAR), "{err:#}");
    }
}
