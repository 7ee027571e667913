//! Retrying calls to the API server on throttling and transient failures, with backoff.

use std::future::Future;
use std::time::Duration;

use crate::ports::cluster::ClusterError;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub first_backoff: Duration,
    /// Longest wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, first_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(10) }
    }
}

/// Runs `call` until it succeeds, fails permanently, or the attempts run out. A throttled
/// answer waits as long as the server asked (within `max_backoff`).
///
/// # Errors
/// The last error.
pub async fn with_retry<T, F, Fut>(policy: RetryPolicy, mut call: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let mut backoff = policy.first_backoff;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_transient() && attempt < policy.attempts => {
                let wait = match &e {
                    ClusterError::Throttled { retry_after: Some(d), .. } => *d,
                    _ => backoff,
                }
                .min(policy.max_backoff);
                tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, "retrying: {e}");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(policy.max_backoff);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn quick() -> RetryPolicy {
        RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(1), max_backoff: Duration::from_millis(2) }
    }

    #[tokio::test]
    async fn retries_transient_errors_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retry(quick(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ClusterError::Unavailable { what: "x".into(), message: "down".into() })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn does_not_retry_permanent_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retry(quick(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ClusterError::Forbidden { what: "x".into(), message: "no".into() })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn succeeds_after_a_throttle() {
        let calls = AtomicU32::new(0);
        let result = with_retry(quick(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(ClusterError::Throttled { what: "x".into(), retry_after: Some(Duration::from_millis(1)) })
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.ok(), Some(7));
    }
}
