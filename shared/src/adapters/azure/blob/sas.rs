//! Read-only SAS tokens for one blob, authorising the *source* of a cross-account Copy Blob:
//! a service SAS signed with the account key (Azurite), or a user-delegation SAS signed with a
//! key the service hands to an Entra ID identity (Azure). Signed with service version
//! [`SAS_VERSION`], whose string-to-sign layouts are the documented ones below. The tokens are
//! secrets: never logged.

use chrono::{DateTime, SecondsFormat, Utc};

/// The service version the tokens are signed for.
pub(super) const SAS_VERSION: &str = "2022-11-02";

/// What every token says: the blob and the validity window.
#[derive(Debug, Clone)]
pub(super) struct SasScope {
    /// `/blob/{account}/{container}/{blob}` (blob name unencoded).
    pub canonical_resource: String,
    /// Valid from.
    pub start: DateTime<Utc>,
    /// Valid until.
    pub expiry: DateTime<Utc>,
}

/// The parts of a user delegation key that go into the token.
#[derive(Debug, Clone)]
pub(super) struct DelegationKeyInfo {
    /// `skoid`.
    pub object_id: String,
    /// `sktid`.
    pub tenant_id: String,
    /// `skt`.
    pub start: String,
    /// `ske`.
    pub expiry: String,
    /// `sks`.
    pub service: String,
    /// `skv`.
    pub version: String,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The string a service SAS (read, one blob) signs.
pub(super) fn service_string_to_sign(scope: &SasScope) -> String {
    // permissions, start, expiry, resource, identifier, IP, protocol, version, resource type,
    // snapshot time, encryption scope, then the five response headers.
    [
        "r",
        &time(scope.start),
        &time(scope.expiry),
        &scope.canonical_resource,
        "",
        "",
        "https,http",
        SAS_VERSION,
        "b",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n")
}

/// The string a user-delegation SAS (read, one blob) signs.
pub(super) fn delegation_string_to_sign(scope: &SasScope, key: &DelegationKeyInfo) -> String {
    [
        "r",
        &time(scope.start),
        &time(scope.expiry),
        &scope.canonical_resource,
        &key.object_id,
        &key.tenant_id,
        &key.start,
        &key.expiry,
        &key.service,
        &key.version,
        "", // authorized user object id
        "", // unauthorized user object id
        "", // correlation id
        "", // IP
        "https",
        SAS_VERSION,
        "b",
        "", // snapshot time
        "", // encryption scope
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n")
}

/// The query parameters of a token (before `sig`).
pub(super) fn query(scope: &SasScope, key: Option<&DelegationKeyInfo>) -> Vec<(&'static str, String)> {
    let mut q = vec![
        ("sv", SAS_VERSION.to_owned()),
        ("sr", "b".to_owned()),
        ("sp", "r".to_owned()),
        ("st", time(scope.start)),
        ("se", time(scope.expiry)),
    ];
    match key {
        Some(k) => {
            q.push(("spr", "https".to_owned()));
            q.extend([
                ("skoid", k.object_id.clone()),
                ("sktid", k.tenant_id.clone()),
                ("skt", k.start.clone()),
                ("ske", k.expiry.clone()),
                ("sks", k.service.clone()),
                ("skv", k.version.clone()),
            ]);
        }
        None => q.push(("spr", "https,http".to_owned())),
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> SasScope {
        SasScope {
            canonical_resource: "/blob/acct/c/backups/x/objects.tar.zst".into(),
            start: DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            expiry: DateTime::from_timestamp(1_767_229_200, 0).unwrap(),
        }
    }

    #[test]
    fn a_service_sas_signs_the_documented_fields_in_order() {
        let s = service_string_to_sign(&scope());
        assert_eq!(
            s,
            "r\n2026-01-01T00:00:00Z\n2026-01-01T01:00:00Z\n/blob/acct/c/backups/x/objects.tar.zst\n\n\nhttps,http\n2022-11-02\nb\n\n\n\n\n\n\n"
        );
        assert_eq!(s.split('\n').count(), 16);
    }

    #[test]
    fn a_delegation_sas_carries_the_key_fields_and_https_only() {
        let key = DelegationKeyInfo {
            object_id: "oid".into(),
            tenant_id: "tid".into(),
            start: "2026-01-01T00:00:00Z".into(),
            expiry: "2026-01-01T02:00:00Z".into(),
            service: "b".into(),
            version: "2022-11-02".into(),
        };
        let s = delegation_string_to_sign(&scope(), &key);
        assert_eq!(s.split('\n').count(), 24);
        assert!(s.contains("\noid\ntid\n2026-01-01T00:00:00Z\n2026-01-01T02:00:00Z\nb\n2022-11-02\n\n\n\n\nhttps\n"));
        let q = query(&scope(), Some(&key));
        assert!(q.contains(&("skoid", "oid".into())) && q.contains(&("spr", "https".into())));
    }
}
