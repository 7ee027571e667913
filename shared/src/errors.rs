//! Errors as people read them in logs and reports.

/// `error: cause: cause of the cause`, the whole chain of sources on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_on_the_line() {
        let e = Outer(std::io::Error::other("the disk is gone"));
        assert_eq!(chain(&e), "outer: the disk is gone");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }
}
