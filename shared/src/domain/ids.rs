//! Deterministic identifiers: the same request always gets the same id, so a redelivered
//! message or a repeated tick finds the work it already claimed.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::names::PolicyName;

/// Identifies one backup: unique within its cluster, safe as a blob path segment, a Table
/// Storage key, a Service Bus message id and a Kubernetes label value (at most 63 characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackupId(String);

/// Why a backup id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a valid backup id: use 1 to 63 letters, digits, '-' and '.', starting and ending with a letter or digit"
)]
pub struct InvalidBackupId(pub String);

impl BackupId {
    /// Validates and wraps an id read from a message or a record.
    ///
    /// # Errors
    /// [`InvalidBackupId`] when it could not be a path segment, key and label value.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidBackupId> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if ok { Ok(Self(s)) } else { Err(InvalidBackupId(s)) }
    }

    /// The id of the scheduled backup of `policy` for the slot at `slot`:
    /// `{policy}-{yyyymmddThhmmssZ}`, shortened with a hash when the policy name is long.
    pub fn scheduled(policy: &PolicyName, slot: DateTime<Utc>) -> Self {
        Self::compose(policy.as_str(), &slot.format("%Y%m%dt%H%M%Sz").to_string())
    }

    /// The id of a backup triggered by an event (Event Grid event id, pipeline run id).
    pub fn for_event(policy: &PolicyName, event_id: &str) -> Self {
        Self::compose(policy.as_str(), &format!("ev-{}", short_hash(event_id)))
    }

    /// The id of an on-demand backup, from the request's id.
    pub fn on_demand(policy: &PolicyName, request_id: &str) -> Self {
        Self::compose(policy.as_str(), &format!("od-{}", short_hash(request_id)))
    }

    fn compose(prefix: &str, suffix: &str) -> Self {
        let room = 63 - suffix.len() - 1;
        let prefix = if prefix.len() <= room {
            prefix.to_owned()
        } else {
            // Keep it readable and unique: a cut prefix plus a hash of the whole.
            let hash = short_hash(prefix);
            let keep = room - hash.len() - 1;
            format!("{}-{hash}", prefix[..keep].trim_end_matches('-'))
        };
        Self(format!("{prefix}-{suffix}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BackupId {
    type Error = InvalidBackupId;
    fn try_from(s: String) -> Result<Self, InvalidBackupId> {
        Self::parse(s)
    }
}

impl From<BackupId> for String {
    fn from(id: BackupId) -> String {
        id.0
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first 12 hex digits of SHA-256: enough to keep ids of one policy apart.
pub fn short_hash(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(s: &str) -> PolicyName {
        PolicyName::new(s).unwrap()
    }

    #[test]
    fn scheduled_ids_are_deterministic_and_readable() {
        let slot = DateTime::parse_from_rfc3339("2026-11-22T02:00:00Z").unwrap().with_timezone(&Utc);
        let a = BackupId::scheduled(&policy("nightly"), slot);
        assert_eq!(a.as_str(), "nightly-20261122t020000z");
        assert_eq!(a, BackupId::scheduled(&policy("nightly"), slot));
    }

    #[test]
    fn long_policy_names_still_give_valid_distinct_ids() {
        let slot = Utc::now();
        let a = BackupId::scheduled(&policy(&format!("{}a", "p".repeat(62))), slot);
        let b = BackupId::scheduled(&policy(&format!("{}b", "p".repeat(62))), slot);
        assert_ne!(a, b);
        assert!(BackupId::parse(a.as_str()).is_ok(), "{a}");
        assert!(a.as_str().len() <= 63);
    }

    #[test]
    fn event_ids_differ_per_event() {
        let p = policy("pre");
        assert_ne!(BackupId::for_event(&p, "e1"), BackupId::for_event(&p, "e2"));
        assert_eq!(BackupId::for_event(&p, "e1"), BackupId::for_event(&p, "e1"));
    }

    #[test]
    fn parse_refuses_path_tricks() {
        for bad in ["", "../x", "a/b", "-a", "a b"] {
            assert!(BackupId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
