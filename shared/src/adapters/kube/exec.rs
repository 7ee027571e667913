//! `pods/exec` on the kube client (WebSocket, `v5.channel.k8s.io`): runs a command, keeps the
//! start of its output, and reads its exit code from the status channel.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::classify;
use crate::ports::cluster::{ClusterError, EXEC_OUTPUT_LIMIT, ExecOutput};

/// Runs `command` in `namespace`/`pod`/`container`, waiting at most `timeout`.
///
/// # Errors
/// As [`crate::ports::cluster::Cluster::exec`] says.
pub(super) async fn exec(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[String],
    timeout: Duration,
) -> Result<ExecOutput, ClusterError> {
    let what = format!("exec {command:?} in pod {namespace}/{pod} container {container}");
    let deadline = tokio::time::Instant::now() + timeout;
    let timed_out = || ClusterError::TimedOut { what: what.clone(), after: timeout };
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
    let mut process = tokio::time::timeout_at(deadline, api.exec(pod, command.iter().cloned(), &params))
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| classify(&what, e))?;
    let status = process.take_status();
    let (stdout, stderr) = (process.stdout(), process.stderr());
    let finished = async {
        let (stdout, stderr) = tokio::join!(read_capped(stdout), read_capped(stderr));
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        (stdout, stderr, status)
    };
    let Ok((stdout, stderr, status)) = tokio::time::timeout_at(deadline, finished).await else {
        process.abort();
        return Err(timed_out());
    };
    let exit_code = exit_code(&what, status)?;
    Ok(ExecOutput { exit_code, stdout, stderr })
}

/// Reads a stream to its end, keeping the first [`EXEC_OUTPUT_LIMIT`] bytes (the rest is
/// drained, or the command would block writing it).
async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else { return String::new() };
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = EXEC_OUTPUT_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// The exit code a v4/v5 status reports: 0 on success, the `ExitCode` cause of a
/// `NonZeroExitCode` failure; any other failure means the command did not run.
fn exit_code(what: &str, status: Option<Status>) -> Result<i32, ClusterError> {
    let Some(status) = status else {
        return Err(ClusterError::Unavailable {
            what: what.to_owned(),
            message: "the connection closed before the command's exit status arrived".into(),
        });
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let code = (status.reason.as_deref() == Some("NonZeroExitCode"))
        .then_some(status.details.as_ref())
        .flatten()
        .and_then(|d| d.causes.as_deref())
        .and_then(|causes| causes.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse::<i32>().ok());
    code.ok_or_else(|| ClusterError::Invalid {
        what: what.to_owned(),
        message: status.message.clone().unwrap_or_else(|| "the command could not run".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(v: serde_json::Value) -> Option<Status> {
        Some(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn exit_codes_come_from_the_status_channel() {
        assert_eq!(exit_code("x", status(serde_json::json!({"metadata": {}, "status": "Success"}))).unwrap(), 0);
        let failed = serde_json::json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        });
        assert_eq!(exit_code("x", status(failed)).unwrap(), 3);
        let not_started = serde_json::json!({
            "metadata": {}, "status": "Failure", "reason": "InternalError",
            "message": "exec: \"fsfreeze\": executable file not found in $PATH"
        });
        let e = exit_code("x", status(not_started)).unwrap_err();
        assert!(e.to_string().contains("executable file not found"), "{e}");
        assert!(exit_code("x", None).unwrap_err().is_transient());
    }

    #[tokio::test]
    async fn output_is_drained_but_only_its_start_kept() {
        let long = vec![b'a'; EXEC_OUTPUT_LIMIT * 3];
        let kept = read_capped(Some(long.as_slice())).await;
        assert_eq!(kept.len(), EXEC_OUTPUT_LIMIT);
        assert_eq!(read_capped(None::<&[u8]>).await, "");
    }
}
