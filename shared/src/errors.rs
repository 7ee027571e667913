//! Helpers for reporting errors.

use std::error::Error;

/// The error's message followed by each of its causes (its `source()` chain), `: `-separated.
///
/// Errors in this crate never repeat their `#[source]` in their own message, so this is how a
/// record, a log line or a reply says the whole story once.
///
/// ```
/// # use std::fmt;
/// #[derive(Debug)]
/// struct Upload(std::io::Error);
/// impl fmt::Display for Upload {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("uploading the archive failed")
///     }
/// }
/// impl std::error::Error for Upload {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let e = Upload(std::io::Error::other("connection reset"));
/// assert_eq!(lifeboat_shared::errors::chain(&e), "uploading the archive failed: connection reset");
/// ```
pub fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("restoring backup b1 failed")]
        Restore(#[source] Middle),
        #[error("the request was malformed")]
        Malformed,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading blob backups/c1/b1/manifest.json failed")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn joins_the_error_and_every_cause_in_order() {
        let e = Outer::Restore(Middle(std::io::Error::other("connection reset")));
        assert_eq!(
            chain(&e),
            "restoring backup b1 failed: reading blob backups/c1/b1/manifest.json failed: connection reset"
        );
    }

    #[test]
    fn an_error_without_causes_is_its_message_alone() {
        assert_eq!(chain(&Outer::Malformed), "the request was malformed");
    }
}
