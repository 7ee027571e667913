//! Runs the pre- and post-snapshot hooks of the selected pods (see [`crate::domain::hooks`])
//! around the snapshot requests, when the policy asks for them (`volumes.hooks: true`).
//!
//! - Pre hooks run, pod by pod in namespace/name order, after the objects are exported and
//!   before any VolumeSnapshot is requested. A failure (the command exits non-zero, cannot
//!   start, outlives its timeout, or the pod is not `Running`) with `on-error: Continue` is a
//!   warning in the manifest (the backup is partial); with `Fail` no further pre hook runs, no
//!   snapshot is requested, the post hooks of the pods whose pre hook ran are run (to undo a
//!   freeze), and the backup fails with the reason.
//! - Post hooks run once every VolumeSnapshot has been *created*, not once it is ready (as
//!   Velero's CSI path does: CSI drivers cut the snapshot when it is created; waiting for
//!   `readyToUse`, which includes the upload, would keep an application frozen for minutes).
//!   They run even when requesting the snapshots failed. Every post hook runs; a `Fail` one
//!   that fails fails the backup (its snapshots stay recorded in the catalog), a `Continue`
//!   one is a warning.
//! - A hook is not retried, as it need not be idempotent. A redelivered `backup` message whose
//!   earlier delivery stopped after the hooks (before the catalog recorded the snapshots) runs
//!   them again: Velero has the same property; hooks must tolerate a second run.

use crate::domain::hooks::{Hook, OnError, PodHooks};
use crate::ports::cluster::Cluster;

/// What the pre hooks did.
#[derive(Debug, Default)]
pub(crate) struct PreHooks<'a> {
    /// Pods whose pre hook ran (or was tried), whose post hook must run whatever happens.
    pub ran: Vec<&'a PodHooks>,
    /// Failures of `Continue` hooks.
    pub warnings: Vec<String>,
    /// The failure of a `Fail` hook, which fails the backup.
    pub failure: Option<String>,
}

/// What the post hooks did.
#[derive(Debug, Default)]
pub(crate) struct PostHooks {
    /// Failures of `Continue` hooks.
    pub warnings: Vec<String>,
    /// The failures of `Fail` hooks (joined), which fail the backup.
    pub failure: Option<String>,
}

/// Runs the pre hook of each pod that has one, stopping at the first `Fail` failure.
pub(crate) async fn run_pre<'a>(cluster: &dyn Cluster, pods: &'a [PodHooks]) -> PreHooks<'a> {
    let mut outcome = PreHooks::default();
    for pod in pods {
        let Some(hook) = &pod.pre else { continue };
        outcome.ran.push(pod);
        if let Err(reason) = run_one(cluster, pod, hook, "pre").await {
            match hook.on_error {
                OnError::Continue => outcome.warnings.push(reason),
                OnError::Fail => {
                    outcome.failure = Some(reason);
                    break;
                }
            }
        }
    }
    outcome
}

/// Runs the post hook of each of `pods` that has one, all of them whatever fails.
pub(crate) async fn run_post(cluster: &dyn Cluster, pods: &[&PodHooks]) -> PostHooks {
    let mut outcome = PostHooks::default();
    let mut failures = Vec::new();
    for pod in pods {
        let Some(hook) = &pod.post else { continue };
        if let Err(reason) = run_one(cluster, pod, hook, "post").await {
            match hook.on_error {
                OnError::Continue => outcome.warnings.push(reason),
                OnError::Fail => failures.push(reason),
            }
        }
    }
    outcome.failure = (!failures.is_empty()).then(|| failures.join("; "));
    outcome
}

/// Runs one hook; the reason it failed, if it did.
async fn run_one(cluster: &dyn Cluster, pod: &PodHooks, hook: &Hook, when: &str) -> Result<(), String> {
    let what = format!("{when} hook {:?} in pod {} container {}", hook.command, pod.pod_ref(), hook.container);
    if let Some(phase) = pod.phase.as_deref().filter(|p| *p != "Running") {
        tracing::warn!(k8s.namespace = %pod.namespace, k8s.pod = %pod.pod, phase, "{when} hook not run: pod is not running");
        return Err(format!("{what}: not run: the pod is {phase}, not Running"));
    }
    tracing::info!(k8s.namespace = %pod.namespace, k8s.pod = %pod.pod, container = %hook.container, "running {when} hook");
    match cluster.exec(&pod.namespace, &pod.pod, &hook.container, &hook.command, hook.timeout).await {
        Ok(out) if out.exit_code == 0 => Ok(()),
        Ok(out) => {
            let stderr = out.stderr.trim();
            let detail = if stderr.is_empty() { String::new() } else { format!(": {stderr}") };
            tracing::warn!(k8s.namespace = %pod.namespace, k8s.pod = %pod.pod, exit_code = out.exit_code, "{when} hook failed");
            Err(format!("{what} exited with code {}{detail}", out.exit_code))
        }
        Err(e) => {
            tracing::warn!(k8s.namespace = %pod.namespace, k8s.pod = %pod.pod, error = %e, "{when} hook failed");
            Err(format!("{what} failed: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::Value;

    use super::*;
    use crate::domain::resources::ApiResourceInfo;
    use crate::ports::cluster::{ClusterError, ExecOutput, ListPage};

    /// Answers exec only: pod `bad-*` exits 1 with stderr, `gone-*` is missing; records calls.
    #[derive(Default)]
    struct ExecOnly(Mutex<Vec<String>>);

    fn unused() -> ClusterError {
        ClusterError::Invalid { what: "test".into(), message: "not used by hooks".into() }
    }

    #[async_trait]
    impl Cluster for ExecOnly {
        async fn version(&self) -> Result<String, ClusterError> {
            Err(unused())
        }
        async fn discover(&self) -> Result<Vec<ApiResourceInfo>, ClusterError> {
            Err(unused())
        }
        async fn list(
            &self,
            _: &ApiResourceInfo,
            _: Option<&str>,
            _: Option<&str>,
            _: u32,
            _: Option<&str>,
        ) -> Result<ListPage, ClusterError> {
            Err(unused())
        }
        async fn get(&self, _: &ApiResourceInfo, _: Option<&str>, _: &str) -> Result<Option<Value>, ClusterError> {
            Err(unused())
        }
        async fn create(&self, _: &ApiResourceInfo, _: Option<&str>, _: &Value) -> Result<Value, ClusterError> {
            Err(unused())
        }
        async fn replace(&self, _: &ApiResourceInfo, _: Option<&str>, _: &Value) -> Result<Value, ClusterError> {
            Err(unused())
        }
        async fn delete(&self, _: &ApiResourceInfo, _: Option<&str>, _: &str) -> Result<bool, ClusterError> {
            Err(unused())
        }
        async fn exec(
            &self,
            namespace: &str,
            pod: &str,
            _: &str,
            command: &[String],
            _: Duration,
        ) -> Result<ExecOutput, ClusterError> {
            self.0.lock().unwrap().push(format!("{namespace}/{pod} {}", command.join(" ")));
            if pod.starts_with("gone") {
                return Err(ClusterError::NotFound { what: format!("pods {pod}") });
            }
            let exit_code = i32::from(pod.starts_with("bad"));
            Ok(ExecOutput {
                exit_code,
                stdout: String::new(),
                stderr: if exit_code == 0 { "" } else { "disk busy\n" }.into(),
            })
        }
    }

    fn hook(command: &str, on_error: OnError) -> Hook {
        Hook { container: "c".into(), command: vec![command.into()], on_error, timeout: Duration::from_secs(1) }
    }

    fn pod(name: &str, on_error: OnError) -> PodHooks {
        PodHooks {
            namespace: "ns".into(),
            pod: name.into(),
            phase: Some("Running".into()),
            pre: Some(hook("freeze", on_error)),
            post: Some(hook("thaw", on_error)),
        }
    }

    #[tokio::test]
    async fn a_failing_fail_hook_stops_the_pre_hooks_with_its_stderr_as_the_reason() {
        let cluster = ExecOnly::default();
        let pods = [pod("a", OnError::Fail), pod("bad-b", OnError::Fail), pod("c", OnError::Fail)];
        let pre = run_pre(&cluster, &pods).await;
        let reason = pre.failure.unwrap();
        assert!(reason.contains("ns/bad-b") && reason.contains("code 1") && reason.ends_with("disk busy"), "{reason}");
        assert_eq!(pre.ran.iter().map(|p| p.pod.as_str()).collect::<Vec<_>>(), ["a", "bad-b"]);
        assert_eq!(*cluster.0.lock().unwrap(), ["ns/a freeze", "ns/bad-b freeze"], "c's pre hook never ran");
        let post = run_post(&cluster, &pre.ran).await;
        assert!(post.failure.unwrap().contains("post hook"), "bad-b's thaw fails too");
        assert_eq!(cluster.0.lock().unwrap()[2..], ["ns/a thaw", "ns/bad-b thaw"]);
    }

    #[tokio::test]
    async fn continue_hooks_warn_and_every_hook_runs() {
        let cluster = ExecOnly::default();
        let pods = [pod("bad-a", OnError::Continue), pod("gone-b", OnError::Continue), pod("c", OnError::Fail)];
        let pre = run_pre(&cluster, &pods).await;
        assert_eq!(pre.failure, None);
        assert_eq!(pre.warnings.len(), 2, "{:?}", pre.warnings);
        assert!(pre.warnings[1].contains("not found"), "{:?}", pre.warnings);
        let all: Vec<&PodHooks> = pods.iter().collect();
        let post = run_post(&cluster, &all).await;
        assert_eq!((post.failure, post.warnings.len()), (None, 2));
        assert_eq!(cluster.0.lock().unwrap().len(), 6);
    }

    #[tokio::test]
    async fn a_pod_that_is_not_running_fails_its_hook_without_an_exec() {
        let cluster = ExecOnly::default();
        let pending = PodHooks { phase: Some("Pending".into()), ..pod("a", OnError::Fail) };
        let pre = run_pre(&cluster, std::slice::from_ref(&pending)).await;
        assert!(pre.failure.unwrap().contains("Pending"));
        assert!(cluster.0.lock().unwrap().is_empty());
    }
}
