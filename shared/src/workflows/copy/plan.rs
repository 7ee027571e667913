//! The pure decisions of a copy: which objects to copy, what to do with each given what the
//! target holds, and how long to wait before the next poll.

use std::time::Duration;

use crate::domain::records::ReplicaRecord;
use crate::ports::object_copier::{ObjectCopyState, ObjectFingerprint, TargetObject};

/// The objects to copy before the manifest: every key under the backup's prefix but the
/// manifest (written last, as the replica's commit), in key order, without duplicates.
pub fn blobs_before_manifest(keys: impl IntoIterator<Item = String>, manifest_key: &str) -> Vec<String> {
    let mut keys: Vec<String> = keys.into_iter().filter(|k| k != manifest_key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What a copy message of some round does, given the replica as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundStep {
    /// Copy on (the replica's round, or a first copy).
    Continue,
    /// The replica failed and this message starts a later round: start it, then copy.
    Retry,
    /// The replica failed in this round (or a later one was not asked for): nothing to do.
    Failed(String),
    /// The message is from an earlier round than the replica's: ignore it.
    Superseded,
}

/// Decides what a message of `round` does with `replica`.
pub fn round_step(replica: &ReplicaRecord, round: u32) -> RoundStep {
    if replica.removing_since.is_some() || replica.removed_at.is_some() {
        // Prune swept it (a failed copy past its retries, or its primary going): never again.
        let failure = replica.failure.clone().unwrap_or_else(|| "the replica was removed by retention".to_owned());
        return RoundStep::Failed(failure);
    }
    if round < replica.retries {
        return RoundStep::Superseded;
    }
    match &replica.failure {
        Some(_) if round > replica.retries => RoundStep::Retry,
        Some(failure) => RoundStep::Failed(failure.clone()),
        None => RoundStep::Continue,
    }
}

/// What to do with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStep {
    /// The target holds a verified copy: nothing to do.
    Done,
    /// A copy is under way: look again later.
    Pending,
    /// Nothing at the target yet: start the copy.
    Start,
    /// The target holds something that is not a good copy: copy again.
    Restart {
        /// Why (for the record's warnings).
        reason: String,
    },
}

/// Decides what to do with one object, from the source's fingerprint and what the target holds.
/// A copy that succeeded is verified: equal size and equal checksum (a checksum on one side
/// only is a difference, as the copy carries the source's checksum along).
pub fn blob_step(source: &ObjectFingerprint, target: Option<&TargetObject>) -> BlobStep {
    let Some(target) = target else {
        return BlobStep::Start;
    };
    match &target.copy {
        Some(ObjectCopyState::Pending) => BlobStep::Pending,
        Some(ObjectCopyState::Failed { reason }) => BlobStep::Restart { reason: format!("the copy failed: {reason}") },
        Some(ObjectCopyState::Succeeded) | None => match verify(source, &target.fingerprint) {
            Ok(()) => BlobStep::Done,
            Err(reason) => BlobStep::Restart { reason },
        },
    }
}

/// Checks a copy against its source.
///
/// # Errors
/// What differs, in words.
pub fn verify(source: &ObjectFingerprint, copy: &ObjectFingerprint) -> Result<(), String> {
    if source.size != copy.size {
        return Err(format!("the copy has {} bytes, the source {}", copy.size, source.size));
    }
    if source.checksum != copy.checksum {
        let show = |c: &Option<String>| c.clone().unwrap_or_else(|| "none".to_owned());
        return Err(format!(
            "the copy's checksum is {}, the source's {}",
            show(&copy.checksum),
            show(&source.checksum)
        ));
    }
    Ok(())
}

/// How long to wait before poll number `attempt` (1 for the first): `poll`, doubling with each
/// attempt, at most `max`.
pub fn poll_delay(poll: Duration, max: Duration, attempt: u32) -> Duration {
    poll.saturating_mul(1 << attempt.saturating_sub(1).min(10)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(size: u64, checksum: Option<&str>) -> ObjectFingerprint {
        ObjectFingerprint { size, checksum: checksum.map(str::to_owned) }
    }

    fn target(size: u64, checksum: Option<&str>, copy: Option<ObjectCopyState>) -> TargetObject {
        TargetObject { fingerprint: fp(size, checksum), copy }
    }

    #[test]
    fn a_later_round_retries_a_failed_replica_and_an_earlier_rounds_message_is_ignored() {
        let t = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let mut replica = ReplicaRecord::new("northeurope", t, t);
        assert_eq!(round_step(&replica, 0), RoundStep::Continue);
        replica.fail("not done by the deadline".into(), t);
        assert_eq!(round_step(&replica, 0), RoundStep::Failed("not done by the deadline".into()));
        assert_eq!(round_step(&replica, 1), RoundStep::Retry);
        replica.retry(1, t);
        assert_eq!(replica.earlier_failures, ["not done by the deadline"]);
        assert_eq!(round_step(&replica, 1), RoundStep::Continue, "a redelivery of the retry copies on");
        assert_eq!(round_step(&replica, 0), RoundStep::Superseded, "a late message of the first round");
        replica.fail("not done again".into(), t);
        replica.removing_since = Some(t);
        assert_eq!(round_step(&replica, 2), RoundStep::Failed("not done again".into()), "swept by prune: never again");
    }

    #[test]
    fn the_manifest_is_left_for_last() {
        let keys = ["b/x/manifest.json", "b/x/objects.tar.zst", "b/x/export.json", "b/x/objects.tar.zst"];
        let plan = blobs_before_manifest(keys.map(str::to_owned), "b/x/manifest.json");
        assert_eq!(plan, ["b/x/export.json", "b/x/objects.tar.zst"]);
    }

    #[test]
    fn a_missing_copy_is_started_and_a_pending_one_awaited() {
        let source = fp(10, Some("abc"));
        assert_eq!(blob_step(&source, None), BlobStep::Start);
        let pending = target(0, None, Some(ObjectCopyState::Pending));
        assert_eq!(blob_step(&source, Some(&pending)), BlobStep::Pending);
    }

    #[test]
    fn a_good_copy_is_not_copied_again() {
        let source = fp(10, Some("abc"));
        assert_eq!(
            blob_step(&source, Some(&target(10, Some("abc"), Some(ObjectCopyState::Succeeded)))),
            BlobStep::Done
        );
        // Written by a file copy (no copy state): verified the same way.
        assert_eq!(blob_step(&source, Some(&target(10, Some("abc"), None))), BlobStep::Done);
    }

    #[test]
    fn a_tampered_or_failed_copy_is_copied_again_with_the_reason() {
        let source = fp(10, Some("abc"));
        let step = blob_step(&source, Some(&target(9, Some("abc"), Some(ObjectCopyState::Succeeded))));
        assert_eq!(step, BlobStep::Restart { reason: "the copy has 9 bytes, the source 10".into() });
        let step = blob_step(&source, Some(&target(10, Some("abd"), None)));
        assert_eq!(step, BlobStep::Restart { reason: "the copy's checksum is abd, the source's abc".into() });
        let step = blob_step(&source, Some(&target(10, None, None)));
        assert!(matches!(step, BlobStep::Restart { reason } if reason.contains("checksum is none")));
        let failed = target(0, None, Some(ObjectCopyState::Failed { reason: "aborted".into() }));
        assert_eq!(blob_step(&source, Some(&failed)), BlobStep::Restart { reason: "the copy failed: aborted".into() });
    }

    #[test]
    fn polls_back_off_up_to_the_cap() {
        let (poll, max) = (Duration::from_secs(5), Duration::from_secs(60));
        let delays: Vec<u64> = (1..=6).map(|a| poll_delay(poll, max, a).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(poll_delay(poll, max, u32::MAX), max);
    }
}
