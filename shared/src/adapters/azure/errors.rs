//! Reading `azure_core` errors: the HTTP status, the service's error code, and whether trying
//! again may help.

use azure_core::error::ErrorKind;

/// The HTTP status the service answered with, if the error is an HTTP answer.
pub(crate) fn status(e: &azure_core::Error) -> Option<u16> {
    e.http_status().map(u16::from)
}

/// The service's error code (`x-ms-error-code`, e.g. `BlobNotFound`), if it sent one.
pub(crate) fn code(e: &azure_core::Error) -> Option<&str> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

/// Whether a retry may succeed: throttling, timeouts, server errors, broken connections, and
/// token acquisition (the identity endpoint may be briefly unavailable).
pub(crate) fn is_transient(e: &azure_core::Error) -> bool {
    match e.kind() {
        ErrorKind::HttpResponse { status, .. } => matches!(u16::from(*status), 408 | 429 | 500..=599),
        ErrorKind::Connection | ErrorKind::Io | ErrorKind::Credential => true,
        _ => false,
    }
}
