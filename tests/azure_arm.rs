//! The ARM adapters against a local fake of Azure Resource Manager.
//!
//! ARM cannot be emulated here (no emulator exists, and these tests must run offline): the
//! server in `support/fake_arm.rs` answers with the request and response shapes ARM documents
//! (snapshots with `CopyStart`, error bodies, `Azure-AsyncOperation` polling, 429 with
//! `Retry-After`). The tests assert the exact requests sent, and what a user of the port sees.

#[path = "support/fake_arm.rs"]
mod fake_arm;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::Method;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use lifeboat_shared::adapters::azure::arm::snapshot_copier::SNAPSHOT_API_VERSION;
use lifeboat_shared::adapters::azure::arm::{ARM_SCOPE, ArmClient, ArmSettings, ArmSnapshotCopier};
use lifeboat_shared::ports::snapshot_copier::{CopyProgress, SnapshotCopier, SnapshotCopyError};
use serde_json::json;

const TOKEN: &str = "arm-test-token-5d1e";
const SOURCE: &str = "/subscriptions/sub/resourceGroups/prod/providers/Microsoft.Compute/snapshots/pvc-data-0";
const REPLICAS: &str = "/subscriptions/sub/resourceGroups/lifeboat-replicas";

/// A fixed token; records the scopes asked for.
#[derive(Debug, Default)]
struct FakeToken {
    scopes: Mutex<Vec<String>>,
}

#[async_trait]
impl TokenCredential for FakeToken {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        self.scopes.lock().expect("lock").extend(scopes.iter().map(|s| (*s).to_owned()));
        let expires = azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1);
        Ok(AccessToken::new(Secret::new(TOKEN), expires))
    }
}

fn settings(base: &str) -> ArmSettings {
    ArmSettings {
        endpoint: base.to_owned(),
        attempts: 3,
        backoff: Duration::from_millis(20),
        max_wait: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(10),
    }
}

async fn copier() -> (fake_arm::Running, ArmSnapshotCopier, Arc<FakeToken>) {
    let arm = fake_arm::start().await;
    arm.add_snapshot(SOURCE, "westeurope");
    let token = Arc::new(FakeToken::default());
    let client = ArmClient::new(Arc::clone(&token) as Arc<dyn TokenCredential>, settings(&arm.base)).expect("client");
    let copier = ArmSnapshotCopier::new(client, REPLICAS).expect("copier");
    (arm, copier, token)
}

#[tokio::test]
async fn start_copy_puts_a_copystart_snapshot_once_and_progress_follows_it() {
    let (arm, copier, token) = copier().await;

    let replica = copier.start_copy(SOURCE, "northeurope").await.expect("copy started");
    assert!(
        replica.starts_with(&format!("{REPLICAS}/providers/Microsoft.Compute/snapshots/pvc-data-0-northeurope-")),
        "{replica}"
    );

    let requests = arm.resource_requests();
    let calls: Vec<(Method, String)> = requests.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(
        calls,
        [(Method::GET, replica.clone()), (Method::GET, SOURCE.to_owned()), (Method::PUT, replica.clone())]
    );
    for request in &requests {
        assert_eq!(request.query.as_deref(), Some(format!("api-version={SNAPSHOT_API_VERSION}").as_str()));
        assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    }
    assert_eq!(
        requests[2].body,
        Some(json!({
            "location": "northeurope",
            "properties": {
                "creationData": { "createOption": "CopyStart", "sourceResourceId": SOURCE },
                "incremental": true,
            },
        }))
    );
    assert!(token.scopes.lock().expect("lock").iter().all(|s| s == ARM_SCOPE));

    // A redelivered message starts nothing new: the replica is found by its derived name.
    assert_eq!(copier.start_copy(SOURCE, "northeurope").await.expect("again"), replica);
    assert_eq!(arm.resource_requests().iter().filter(|r| r.method == Method::PUT).count(), 1);

    assert_eq!(copier.progress(&replica).await.expect("progress"), CopyProgress::Running { percent: Some(0) });
    arm.set_copy_percent(&replica, 57.5);
    assert_eq!(copier.progress(&replica).await.expect("progress"), CopyProgress::Running { percent: Some(57) });
    arm.set_copy_percent(&replica, 100.0);
    assert_eq!(copier.progress(&replica).await.expect("progress"), CopyProgress::Done);
}

#[tokio::test]
async fn a_concurrent_put_that_conflicts_means_the_copy_exists() {
    let (arm, copier, _) = copier().await;
    arm.inject(Method::PUT, 409, None, "Conflict");
    let replica = copier.start_copy(SOURCE, "northeurope").await.expect("the other call's copy");
    assert!(replica.contains("pvc-data-0-northeurope-"), "{replica}");
}

#[tokio::test]
async fn a_missing_source_is_not_found_and_nothing_is_created() {
    let (arm, copier, _) = copier().await;
    let missing = SOURCE.replace("pvc-data-0", "pvc-gone");
    let err = copier.start_copy(&missing, "northeurope").await.expect_err("no source");
    assert!(matches!(&err, SnapshotCopyError::NotFound { what } if *what == missing), "{err}");
    assert!(arm.resource_requests().iter().all(|r| r.method == Method::GET));
}

#[tokio::test]
async fn a_deleted_source_fails_the_copy_with_arms_reason() {
    let (arm, copier, _) = copier().await;
    let replica = copier.start_copy(SOURCE, "northeurope").await.expect("started");
    arm.remove(SOURCE);
    let progress = copier.progress(&replica).await.expect("progress");
    let CopyProgress::Failed { reason } = progress else { panic!("expected a failure, got {progress:?}") };
    assert!(reason.starts_with("CopySourceNotFound: "), "{reason}");
}

#[tokio::test]
async fn a_429_is_retried_after_the_servers_retry_after() {
    let (arm, copier, _) = copier().await;
    arm.inject(Method::GET, 429, Some("1"), "TooManyRequests");
    copier.start_copy(SOURCE, "northeurope").await.expect("started after the wait");
    let requests = arm.resource_requests();
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}, before the server's Retry-After");
    assert_eq!(requests[0].path, requests[1].path, "the same request is tried again");
}

#[tokio::test]
async fn a_long_retry_after_is_handed_to_the_caller_instead_of_slept_through() {
    let (arm, copier, _) = copier().await;
    arm.inject(Method::GET, 429, Some("120"), "TooManyRequests");
    let started = std::time::Instant::now();
    let err = copier.progress(SOURCE).await.expect_err("throttled");
    assert!(started.elapsed() < Duration::from_secs(5));
    let SnapshotCopyError::Throttled { what, retry_after } = &err else { panic!("expected throttling, got {err}") };
    assert_eq!(retry_after, &Duration::from_secs(120));
    assert_eq!(what, &format!("reading the snapshot replica {SOURCE}"));
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_refusal_names_the_operation_the_resource_and_arms_code() {
    let (arm, copier, _) = copier().await;
    arm.inject(Method::PUT, 403, None, "AuthorizationFailed");
    let err = copier.start_copy(SOURCE, "northeurope").await.expect_err("denied");
    assert!(matches!(err, SnapshotCopyError::Denied { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("starting the snapshot copy {REPLICAS}/providers/Microsoft.Compute/snapshots/")),
        "{text}"
    );
    assert!(text.contains("403 AuthorizationFailed: injected by the test"), "{text}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn server_errors_past_the_retries_are_unavailable() {
    let (arm, copier, _) = copier().await;
    for _ in 0..3 {
        arm.inject(Method::GET, 503, None, "ServiceUnavailable");
    }
    let err = copier.progress(SOURCE).await.expect_err("unavailable");
    assert!(matches!(err, SnapshotCopyError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(arm.resource_requests().len(), 3, "three tries");
}

#[tokio::test]
async fn delete_follows_the_async_operation_and_is_idempotent() {
    let (arm, copier, _) = copier().await;
    let replica = copier.start_copy(SOURCE, "northeurope").await.expect("started");
    assert!(copier.delete(&replica).await.expect("deleted"));
    assert!(arm.resource(&replica).is_none());
    let polls: Vec<String> =
        arm.requests().into_iter().filter(|r| r.path.contains("/operations/")).map(|r| r.path).collect();
    assert_eq!(polls.len(), 2, "InProgress once, then Succeeded: {polls:?}");
    assert!(!copier.delete(&replica).await.expect("second delete"), "already gone");
}

#[tokio::test]
async fn delete_follows_a_location_header_until_it_stops_answering_202() {
    let (arm, copier, _) = copier().await;
    let replica = copier.start_copy(SOURCE, "northeurope").await.expect("started");
    {
        let mut fake = arm.state.lock().expect("lock");
        fake.location_polling = true;
        fake.operation_polls = 2;
    }
    assert!(copier.delete(&replica).await.expect("deleted"));
    let polls: Vec<Option<String>> =
        arm.requests().into_iter().filter(|r| r.path.contains("/operationResults/")).map(|r| r.authorization).collect();
    assert_eq!(polls.len(), 3, "202 twice, then 204");
    assert!(polls.iter().all(|a| a.as_deref() == Some(&*format!("Bearer {TOKEN}"))));
}

#[tokio::test]
async fn an_operation_url_off_arms_host_is_not_polled() {
    let (arm, copier, _) = copier().await;
    let replica = copier.start_copy(SOURCE, "northeurope").await.expect("started");
    arm.state.lock().expect("lock").poll_host = Some("attacker.example:8080".to_owned());
    let err = copier.delete(&replica).await.expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("status URL http://attacker.example:8080/") && text.contains(" is not on "), "{text}");
    assert!(arm.requests().iter().all(|r| !r.path.contains("/operations/")));
}

#[tokio::test]
async fn a_deletion_that_fails_reports_arms_error() {
    let (arm, copier, _) = copier().await;
    let replica = copier.start_copy(SOURCE, "northeurope").await.expect("started");
    arm.state.lock().expect("lock").delete_outcome = Some("Failed");
    let err = copier.delete(&replica).await.expect_err("failed");
    let text = err.to_string();
    assert!(text.contains(&format!("deleting the snapshot replica {replica}")), "{text}");
    assert!(text.contains("Failed: OperationNotAllowed: The snapshot is in use."), "{text}");
}

#[tokio::test]
async fn handles_that_are_not_snapshot_ids_are_invalid() {
    let (arm, copier, _) = copier().await;
    for bad in ["pvc-data-0", "/subscriptions/sub/resourceGroups/prod/providers/Microsoft.Compute/disks/d1"] {
        let err = copier.progress(bad).await.expect_err(bad);
        assert!(matches!(err, SnapshotCopyError::Invalid { .. }), "{err}");
    }
    let err = copier.start_copy(SOURCE, "north europe").await.expect_err("not a region");
    assert!(matches!(err, SnapshotCopyError::Invalid { .. }), "{err}");
    assert!(arm.requests().is_empty());
    assert!(
        ArmSnapshotCopier::new(
            ArmClient::new(Arc::new(FakeToken::default()), settings(&arm.base)).expect("client"),
            SOURCE
        )
        .is_err()
    );
}
