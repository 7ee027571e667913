//! Bearer-token authentication: every request but the health and version endpoints must carry
//! `Authorization: Bearer <token>`, or gets the real server's 401 Status.

use axum::http::{HeaderMap, header};

use crate::status::ApiError;

/// Paths the real server serves to anonymous clients (`system:public-info-viewer`).
const PUBLIC: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// Checks the request's bearer token.
///
/// # Errors
/// 401 `Unauthorized` for a missing or wrong token.
pub(crate) fn check(headers: &HeaderMap, path: &str, token: &str) -> Result<(), ApiError> {
    if PUBLIC.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))) {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn requires_the_right_token() {
        let mut h = HeaderMap::new();
        assert_eq!(check(&h, "/api", "s3cret").map_err(|e| e.code), Err(401));
        assert!(check(&h, "/version", "s3cret").is_ok());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer wrong"));
        assert_eq!(check(&h, "/api", "s3cret").map_err(|e| e.code), Err(401));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert!(check(&h, "/api", "s3cret").is_ok());
    }
}
