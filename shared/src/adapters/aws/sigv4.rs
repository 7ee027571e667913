//! AWS Signature Version 4 (header-based), as documented in the IAM user guide ("Create a signed
//! AWS API request"): a canonical request, its SHA-256 in a string to sign, and an HMAC-SHA256
//! chain from the secret key through date, region and service.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::AwsCredentials;

/// The SHA-256 of an empty payload (hex).
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What is signed of one request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The `Host` header as sent: host, and `:port` when not the scheme's default.
    pub host: &'a str,
    /// The path as sent, already URI-encoded ([`uri_encode`] per segment).
    pub path: &'a str,
    /// Query parameters, not encoded (they are encoded here, as they must be sent: see
    /// [`canonical_query`]).
    pub query: &'a [(String, String)],
    /// Further headers to sign besides `host` and the `x-amz-*` ones added here (lowercase
    /// names), e.g. `range`, `content-type`.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body.
    pub payload_sha256: &'a str,
}

/// The scope of a signature.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// E.g. `eu-west-1`.
    pub region: &'a str,
    /// E.g. `s3`, `sqs`.
    pub service: &'a str,
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// AWS's `UriEncode`: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX` (uppercase), and `/` kept
/// when `keep_slash` (object key paths).
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The query string as it must be both sent and signed: names and values encoded, sorted.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> =
        query.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The headers to add to `request` so that AWS accepts it at `now`: `x-amz-date`,
/// `x-amz-content-sha256`, `x-amz-security-token` (temporary credentials) and `authorization`.
pub fn sign(
    credentials: &AwsCredentials,
    scope: Scope<'_>,
    request: Request<'_>,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let mut added: Vec<(&'static str, String)> =
        vec![("x-amz-content-sha256", request.payload_sha256.to_owned()), ("x-amz-date", amz_date.clone())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    let mut signed: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .chain([("host".to_owned(), request.host.to_owned())])
        .chain(added.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
        .collect();
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = signed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        canonical_query(request.query),
        request.payload_sha256
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}", sha256_hex(canonical_request.as_bytes()));
    let key = [scope.region, scope.service, "aws4_request"]
        .iter()
        .fold(hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), &date), |key, part| hmac(&key, part));
    let signature = hex(&hmac(&key, &string_to_sign));
    added.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of the S3 API reference ("Signature Calculations for the
    /// Authorization Header: Transferring Payload in a Single Chunk").
    #[test]
    fn the_documented_s3_get_object_example_signs_the_same() {
        let credentials = AwsCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let now = DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z").expect("date").with_timezone(&Utc);
        let headers = [("range".to_owned(), "bytes=0-9".to_owned())];
        let request = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let added = sign(&credentials, Scope { region: "us-east-1", service: "s3" }, request, now);
        let authorization = added.iter().find(|(k, _)| *k == "authorization").map(|(_, v)| v.as_str());
        assert_eq!(
            authorization,
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
    }

    /// The "GET Bucket (List Objects)" example of the same page: a signed query string.
    #[test]
    fn the_documented_list_objects_example_signs_the_query() {
        let credentials = AwsCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let now = DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z").expect("date").with_timezone(&Utc);
        let query = [("max-keys".to_owned(), "2".to_owned()), ("prefix".to_owned(), "J".to_owned())];
        let request = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/",
            query: &query,
            headers: &[],
            payload_sha256: EMPTY_SHA256,
        };
        let added = sign(&credentials, Scope { region: "us-east-1", service: "s3" }, request, now);
        let authorization = added.iter().find(|(k, _)| *k == "authorization").map(|(_, v)| v.as_str()).unwrap_or("");
        assert!(
            authorization.ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            "{authorization}"
        );
    }

    #[test]
    fn keys_and_queries_are_encoded_as_aws_expects() {
        assert_eq!(uri_encode("a b/c~d+é", true), "a%20b/c~d%2B%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        let query = [("prefix".to_owned(), "x y".to_owned()), ("list-type".to_owned(), "2".to_owned())];
        assert_eq!(canonical_query(&query), "list-type=2&prefix=x%20y");
    }
}
