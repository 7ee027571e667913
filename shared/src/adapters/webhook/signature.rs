//! The signature of the generic JSON webhook: HMAC-SHA256 over `{timestamp}.{raw body}`.
//!
//! Lifeboat sends `X-Lifeboat-Timestamp: <unix seconds>` and
//! `X-Lifeboat-Signature: sha256=<lowercase hex>`. A receiver recomputes the HMAC with the
//! shared key over the timestamp, a `.`, and the body exactly as received, compares in
//! constant time, and refuses timestamps too far from its clock (replays). [`verify`] does all
//! of that.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature (lowercase: header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "x-lifeboat-signature";
/// The header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-lifeboat-timestamp";

fn mac(key: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Lifeboat-Signature` value for `body` sent at `timestamp`: `sha256=<hex>`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(key, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether `signature` is `body`'s signature at `timestamp` under `key`, and `timestamp` is
/// within `tolerance_secs` of `now` (Unix seconds).
pub fn verify(key: &[u8], timestamp: i64, body: &[u8], signature: &str, now: i64, tolerance_secs: i64) -> bool {
    if (now - timestamp).abs() > tolerance_secs {
        return false;
    }
    let Some(hex) = signature.strip_prefix("sha256=") else { return false };
    let Some(bytes) = decode_hex(hex) else { return false };
    mac(key, timestamp, body).verify_slice(&bytes).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac() {
        // python3: hmac.new(b"Jefe", b"0.what do ya want for nothing?", hashlib.sha256).hexdigest()
        let expected = "sha256=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc";
        assert_eq!(sign(b"Jefe", 0, b"what do ya want for nothing?"), expected);
    }

    #[test]
    fn tampering_a_wrong_key_or_an_old_timestamp_fail() {
        let sig = sign(b"key", 1_000, b"{\"a\":1}");
        assert!(verify(b"key", 1_000, b"{\"a\":1}", &sig, 1_100, 300));
        assert!(!verify(b"key", 1_000, b"{\"a\":2}", &sig, 1_100, 300), "body changed");
        assert!(!verify(b"other", 1_000, b"{\"a\":1}", &sig, 1_100, 300), "wrong key");
        assert!(!verify(b"key", 1_001, b"{\"a\":1}", &sig, 1_100, 300), "timestamp changed");
        assert!(!verify(b"key", 1_000, b"{\"a\":1}", &sig, 2_000, 300), "replayed too late");
        assert!(!verify(b"key", 1_000, b"{\"a\":1}", "sha256=zz", 1_100, 300), "not hex");
    }
}
