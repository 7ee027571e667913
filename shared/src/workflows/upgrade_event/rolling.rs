//! A node pool's rolling result, recorded on the claim of the `NodePoolRollingStarted` that
//! asked for (or skipped, as fresh) its backup. No backup is requested.

use super::{Deps, EventReport, UpgradeError};
use crate::domain::policy::Target;
use crate::domain::upgrade_events::{RollingPhase, UpgradeEvent, event_types};
use crate::layout::TABLE_UPGRADE_CLAIMS;
use crate::ports::state_store::{Entity, Query, query_all};

pub(super) async fn record(
    deps: &Deps<'_>,
    target: &Target<'_>,
    event: &UpgradeEvent,
    node_pool: Option<&str>,
    phase: RollingPhase,
    report: &mut EventReport,
) -> Result<(), UpgradeError> {
    let key = target.key();
    let claim_err = |source| UpgradeError::Claim { target: key.clone(), source };
    let claims = query_all(deps.state, TABLE_UPGRADE_CLAIMS, &Query::partition(&key)).await.map_err(claim_err)?;
    // The newest start of this node pool's rolling (any pool, when the result names none).
    let started = claims
        .into_iter()
        .filter(|c| c.str("eventType") == Some(event_types::NODE_POOL_ROLLING_STARTED))
        .filter(|c| node_pool.is_none_or(|pool| c.str("nodePool") == Some(pool)))
        .max_by(|a, b| a.str("claimedAt").cmp(&b.str("claimedAt")));
    let pool = node_pool.unwrap_or("(unnamed)");
    let Some(started) = started else {
        report.recorded.push(format!(
            "{key}: node pool {pool} rolling {} (no backup of its start to record it on)",
            phase.as_str()
        ));
        return Ok(());
    };
    let backup = started.str("freshBackupId").or(started.str("backupId")).unwrap_or_default().to_owned();
    if started.str("rollingEventId") == Some(event.id.as_str()) {
        report
            .recorded
            .push(format!("{key}: node pool {pool} rolling {} already recorded on backup {backup}", phase.as_str()));
        return Ok(());
    }
    let etag = started.etag.clone();
    let updated = Entity { etag: None, ..started }
        .with("rollingOutcome", phase.as_str())
        .with("rollingEventId", event.id.as_str())
        .with("rollingOutcomeAt", event.time.unwrap_or(deps.now).to_rfc3339());
    let result = match &etag {
        Some(etag) => deps.state.update(TABLE_UPGRADE_CLAIMS, &updated, etag).await.map(|_| ()),
        None => deps.state.upsert(TABLE_UPGRADE_CLAIMS, &updated).await.map(|_| ()),
    };
    // A concurrent change (another result of this pool) fails the update: the redelivery
    // records it again on the claim as it then is.
    result.map_err(claim_err)?;
    tracing::info!(target.key = %key, backup.id = %backup, node_pool = pool, outcome = phase.as_str(), "node pool rolling result recorded");
    report.recorded.push(format!("{key}: node pool {pool} rolling {} recorded on backup {backup}", phase.as_str()));
    Ok(())
}
