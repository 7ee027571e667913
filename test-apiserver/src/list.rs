//! List semantics: options from the query string, selectors, `resourceVersion` /
//! `resourceVersionMatch`, and `limit`/`continue` pagination with opaque tokens in the real
//! format (`{"v":"meta.k8s.io/v1","rv":N,"start":"ns/name\u0000"}`, base64url).

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Value, json};

use crate::fields::FieldSelector;
use crate::selectors::LabelSelector;
use crate::status::{ApiError, Cause};
use crate::storage::ObjectKey;

/// Parsed list (and watch) options.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0: no limit).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

impl ListOptions {
    /// Reads the options from query parameters.
    ///
    /// # Errors
    /// 400 for malformed selectors or numbers, 422 for forbidden combinations.
    pub fn from_query(q: &BTreeMap<String, String>) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or_default())?;
        let fields = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or_default())?;
        let limit = match q.get("limit").filter(|s| !s.is_empty()) {
            Some(s) => s.parse::<i64>().map_err(|e| ApiError::bad_request(format!("limit: {e}")))?.max(0),
            None => 0,
        };
        let opts = Self {
            labels,
            fields,
            limit: usize::try_from(limit).unwrap_or(0),
            continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
            resource_version: q.get("resourceVersion").filter(|s| !s.is_empty()).cloned(),
            resource_version_match: q.get("resourceVersionMatch").filter(|s| !s.is_empty()).cloned(),
        };
        opts.validate()?;
        Ok(opts)
    }

    fn validate(&self) -> Result<(), ApiError> {
        let invalid = |c: Cause| ApiError::invalid("meta.k8s.io", "ListOptions", "", &[c]);
        if self.continue_token.is_some() && self.resource_version.as_deref().is_some_and(|rv| rv != "0") {
            return Err(invalid(Cause::forbidden(
                "resourceVersion",
                "specifying resource version is not allowed when using continue",
            )));
        }
        if let Some(m) = &self.resource_version_match {
            if !["Exact", "NotOlderThan"].contains(&m.as_str()) {
                return Err(invalid(Cause::unsupported("resourceVersionMatch", m, &["Exact", "NotOlderThan", ""])));
            }
            if self.resource_version.is_none() {
                return Err(invalid(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )));
            }
        }
        Ok(())
    }

    /// The resourceVersion as a number, if one is given.
    ///
    /// # Errors
    /// 400 for a non-numeric resourceVersion, as the real server.
    pub fn rv_number(&self) -> Result<Option<u64>, ApiError> {
        match self.resource_version.as_deref() {
            None => Ok(None),
            Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
                ApiError::invalid(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    &[Cause::invalid("resourceVersion", s, "must be a valid resource version")],
                )
            }),
        }
    }
}

/// A decoded continue token.
#[derive(Debug, Clone, PartialEq)]
pub struct ContinueToken {
    /// The resourceVersion of the list's first page.
    pub rv: u64,
    /// The key to start from.
    pub start: String,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)?;
        bits = (bits << 6) | u32::try_from(v).ok()?;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push(u8::try_from((bits >> nbits) & 0xff).ok()?);
        }
    }
    Some(out)
}

impl ContinueToken {
    /// The opaque token string.
    pub fn encode(&self) -> String {
        let body = json!({"v": "meta.k8s.io/v1", "rv": self.rv, "start": format!("{}\u{0}", self.start)});
        b64url_encode(body.to_string().as_bytes())
    }

    /// Decodes a token, with the real server's 400 messages for garbage.
    ///
    /// # Errors
    /// 400 `BadRequest` for a token that is not one of ours.
    pub fn decode(s: &str) -> Result<Self, ApiError> {
        let bad =
            |why: &str| ApiError::bad_request(format!("invalid continue token: continue key is not valid: {why}"));
        let bytes = b64url_decode(s).ok_or_else(|| bad("illegal base64 data"))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(&e.to_string()))?;
        if v["v"] != "meta.k8s.io/v1" {
            return Err(bad("server does not recognize this encoded version"));
        }
        let rv = v["rv"]
            .as_u64()
            .filter(|rv| *rv > 0)
            .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        let start = v["start"].as_str().unwrap_or_default().trim_end_matches('\u{0}').to_string();
        if start.is_empty() {
            return Err(bad("encoded start key empty (version meta.k8s.io/v1)"));
        }
        Ok(Self { rv, start })
    }
}

/// The 410 for a continue token older than the kept history.
pub fn continue_expired() -> ApiError {
    ApiError::expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    )
}

/// One page of a list: the items, and the continue token and remaining count if more follow.
pub struct Page {
    /// The selected items of this page.
    pub items: Vec<Value>,
    /// Token for the next page.
    pub continue_token: Option<String>,
    /// Items after this page (set only without selectors, as the real server).
    pub remaining: Option<usize>,
}

/// Selects and paginates `objects` (sorted by key) listed at `rv`.
pub fn paginate(
    objects: &BTreeMap<ObjectKey, Value>,
    opts: &ListOptions,
    start: Option<&str>,
    rv: u64,
    namespace: Option<&str>,
) -> Page {
    let start_key = start.map(|s| match s.split_once('/') {
        Some((ns, name)) => ObjectKey::new(ns, name),
        None => ObjectKey::new("", s),
    });
    let from = start_key.as_ref().map_or(Bound::Unbounded, Bound::Included);
    let unfiltered = opts.labels.is_empty() && opts.fields.0.is_empty();
    let selected =
        objects.range((from, Bound::Unbounded)).filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns)).filter(
            |(_, v)| unfiltered || (opts.labels.matches(&crate::selectors::labels_of(v)) && opts.fields.matches(v)),
        );
    let mut items = Vec::new();
    let mut rest = selected.peekable();
    while let Some((_, v)) = rest.next() {
        items.push(v.clone());
        if opts.limit > 0 && items.len() >= opts.limit {
            let Some((next, _)) = rest.peek() else { break };
            let token = ContinueToken { rv, start: next.path() }.encode();
            let remaining = unfiltered.then(|| rest.count());
            return Page { items, continue_token: Some(token), remaining };
        }
    }
    Page { items, continue_token: None, remaining: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = ContinueToken { rv: 42, start: "ns/b".into() };
        let s = t.encode();
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(ContinueToken::decode(&s).expect("ours"), t);
        for junk in ["!!!", "aGVsbG8", &b64url_encode(br#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#)] {
            let e = ContinueToken::decode(junk).expect_err(junk);
            assert_eq!(e.code, 400, "{junk}");
            assert!(e.message.starts_with("invalid continue token: continue key is not valid"), "{}", e.message);
        }
    }

    #[test]
    fn pages_follow_key_order() {
        let objects: BTreeMap<ObjectKey, Value> =
            ["a", "b", "c"].iter().map(|n| (ObjectKey::new("ns", n), json!({"metadata": {"name": n}}))).collect();
        let opts = ListOptions { limit: 2, ..Default::default() };
        let p1 = paginate(&objects, &opts, None, 7, None);
        assert_eq!(p1.items.len(), 2);
        assert_eq!(p1.remaining, Some(1));
        let tok = ContinueToken::decode(&p1.continue_token.expect("more")).expect("valid");
        let p2 = paginate(&objects, &opts, Some(&tok.start), tok.rv, None);
        assert_eq!(p2.items[0]["metadata"]["name"], "c");
        assert!(p2.continue_token.is_none());
    }

    #[test]
    fn continue_with_resource_version_is_invalid() {
        let q: BTreeMap<String, String> =
            [("continue".to_string(), "x".to_string()), ("resourceVersion".to_string(), "5".to_string())].into();
        assert_eq!(ListOptions::from_query(&q).expect_err("forbidden").code, 422);
    }
}
