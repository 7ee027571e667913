//! Pre- and post-snapshot hooks, declared on pods with Velero's annotations, so that pods
//! already annotated for Velero work unchanged:
//!
//! | annotation | meaning | default |
//! |---|---|---|
//! | `pre.hook.backup.velero.io/command` | the command: a JSON array (`["/sbin/fsfreeze", "--freeze", "/data"]`) or one word | none: no hook |
//! | `pre.hook.backup.velero.io/container` | the container it runs in | the pod's first container |
//! | `pre.hook.backup.velero.io/on-error` | `Fail`: the backup fails; `Continue`: a warning | `Fail` |
//! | `pre.hook.backup.velero.io/timeout` | how long it may run (`30s`, `2m`) | `30s` |
//!
//! and the same under `post.hook.backup.velero.io/`. As in Velero, a command that is not a
//! valid JSON array is one word, an unknown `on-error` is `Fail`, and an unreadable timeout is
//! the default.
//!
//! ```
//! use lifeboat_shared::domain::hooks::{OnError, pod_hooks};
//! let pod = serde_json::json!({
//!     "metadata": {"namespace": "shop", "name": "db-0", "annotations": {
//!         "pre.hook.backup.velero.io/command": "[\"/bin/sh\", \"-c\", \"sync\"]",
//!         "pre.hook.backup.velero.io/on-error": "Continue"
//!     }},
//!     "spec": {"containers": [{"name": "db"}]}
//! });
//! let hooks = pod_hooks(&pod).unwrap();
//! let pre = hooks.pre.unwrap();
//! assert_eq!((pre.container.as_str(), pre.on_error), ("db", OnError::Continue));
//! assert_eq!(pre.command, ["/bin/sh", "-c", "sync"]);
//! assert!(hooks.post.is_none());
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Annotation prefix of pre-snapshot hooks.
pub const PRE_PREFIX: &str = "pre.hook.backup.velero.io/";
/// Annotation prefix of post-snapshot hooks.
pub const POST_PREFIX: &str = "post.hook.backup.velero.io/";
/// How long a hook may run when its annotation does not say (Velero's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a failed hook does to the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnError {
    /// The backup fails with the hook's reason.
    Fail,
    /// The backup goes on; the failure is a warning in the manifest (a partial backup).
    Continue,
}

/// One hook: a command run in a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// The container.
    pub container: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// What a failure does.
    pub on_error: OnError,
    /// How long it may run.
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
}

/// A pod's hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodHooks {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// Its phase when listed (hooks run only in a `Running` pod).
    pub phase: Option<String>,
    /// Runs before the snapshots are requested.
    pub pre: Option<Hook>,
    /// Runs after they are requested.
    pub post: Option<Hook>,
}

impl PodHooks {
    /// `namespace/pod`.
    pub fn pod_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.pod)
    }
}

/// The hooks a pod's annotations declare; `None` when it declares none (or has no name).
pub fn pod_hooks(pod: &Value) -> Option<PodHooks> {
    let annotations = pod.pointer("/metadata/annotations").and_then(Value::as_object)?;
    let first_container = pod.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let hook = |prefix: &str| {
        let get = |key: &str| annotations.get(&format!("{prefix}{key}")).and_then(Value::as_str);
        let command = parse_command(get("command")?)?;
        Some(Hook {
            container: get("container")
                .filter(|c| !c.is_empty())
                .map_or_else(|| first_container.clone(), str::to_owned),
            command,
            on_error: if get("on-error") == Some("Continue") { OnError::Continue } else { OnError::Fail },
            timeout: get("timeout").and_then(|t| humantime::parse_duration(t).ok()).unwrap_or(DEFAULT_TIMEOUT),
        })
    };
    let (pre, post) = (hook(PRE_PREFIX), hook(POST_PREFIX));
    if pre.is_none() && post.is_none() {
        return None;
    }
    Some(PodHooks {
        namespace: pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned(),
        pod: pod.pointer("/metadata/name").and_then(Value::as_str)?.to_owned(),
        phase: pod.pointer("/status/phase").and_then(Value::as_str).map(str::to_owned),
        pre,
        post,
    })
}

/// Velero's reading of a command annotation: a JSON array of strings, else one word.
fn parse_command(value: &str) -> Option<Vec<String>> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.starts_with('[')
        && let Ok(words) = serde_json::from_str::<Vec<String>>(value)
    {
        return (!words.is_empty()).then_some(words);
    }
    Some(vec![value.to_owned()])
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(annotations: Value) -> Value {
        json!({
            "metadata": {"namespace": "shop", "name": "db-0", "annotations": annotations},
            "spec": {"containers": [{"name": "db"}, {"name": "sidecar"}]},
            "status": {"phase": "Running"}
        })
    }

    #[test]
    fn a_pod_without_hook_annotations_has_no_hooks() {
        assert_eq!(pod_hooks(&pod(json!({"other": "x"}))), None);
        assert_eq!(pod_hooks(&pod(json!({"pre.hook.backup.velero.io/on-error": "Continue"}))), None);
    }

    #[test]
    fn annotations_are_read_as_velero_reads_them() {
        let hooks = pod_hooks(&pod(json!({
            "pre.hook.backup.velero.io/command": "[\"fsfreeze\", \"--freeze\", \"/data\"]",
            "pre.hook.backup.velero.io/container": "sidecar",
            "pre.hook.backup.velero.io/timeout": "2m",
            "post.hook.backup.velero.io/command": "unfreeze",
            "post.hook.backup.velero.io/on-error": "Sometimes",
        })))
        .unwrap();
        assert_eq!(hooks.pod_ref(), "shop/db-0");
        assert_eq!(hooks.phase.as_deref(), Some("Running"));
        let pre = hooks.pre.unwrap();
        assert_eq!(pre.command, ["fsfreeze", "--freeze", "/data"]);
        assert_eq!(pre.container, "sidecar");
        assert_eq!(pre.timeout, Duration::from_secs(120));
        assert_eq!(pre.on_error, OnError::Fail);
        let post = hooks.post.unwrap();
        assert_eq!(post.command, ["unfreeze"], "one word");
        assert_eq!(post.container, "db", "the first container by default");
        assert_eq!(post.on_error, OnError::Fail, "an unknown on-error is Fail");
        assert_eq!(post.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn a_command_that_is_not_a_json_array_is_one_word_and_a_bad_timeout_is_the_default() {
        let hooks = pod_hooks(&pod(json!({
            "pre.hook.backup.velero.io/command": "[not json",
            "pre.hook.backup.velero.io/timeout": "soon",
        })))
        .unwrap();
        let pre = hooks.pre.unwrap();
        assert_eq!(pre.command, ["[not json"]);
        assert_eq!(pre.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn hooks_survive_a_round_trip_through_json() {
        let hooks = pod_hooks(&pod(json!({"pre.hook.backup.velero.io/command": "[\"a\", \"b\"]"}))).unwrap();
        let back: PodHooks = serde_json::from_value(serde_json::to_value(&hooks).unwrap()).unwrap();
        assert_eq!(back, hooks);
    }
}
