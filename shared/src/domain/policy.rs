//! Policies and protected clusters, declared as Kubernetes-style YAML documents
//! (GitOps-friendly), and the targets they define.
//!
//! ```yaml
//! apiVersion: lifeboat.io/v1alpha1
//! kind: Cluster
//! metadata: { name: prod-weu-1 }
//! spec:
//!   region: westeurope
//!   aks: { resourceId: /subscriptions/…/resourceGroups/…/providers/Microsoft.ContainerService/managedClusters/prod-weu-1 }
//! ---
//! apiVersion: lifeboat.io/v1alpha1
//! kind: BackupPolicy
//! metadata: { name: nightly }
//! spec:
//!   clusters: [prod-weu-1]
//!   schedule: "0 0 2 * * *"
//!   rpo: 26h
//!   retention: { keepLast: 7, daily: 14, weekly: 8 }
//!   replication: { region: northeurope, rpo: 30h }
//!   preUpgrade: { on: [PreUpgrade, NodePoolRollingStarted, ScheduledMaintenance], freshness: 6h }
//! ```
//!
//! `preUpgrade` (optional; these are its defaults) says which upgrade events from Event Grid
//! start a backup and how fresh an existing one must be to skip it: see
//! [`crate::domain::pre_upgrade_policy`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::names::{ClusterName, PolicyName};
use super::pre_upgrade_policy::PreUpgradeSpec;
use super::schedule::{CatchUp, Schedule};

/// The only `apiVersion` this build reads.
pub const API_VERSION: &str = "lifeboat.io/v1alpha1";

/// A problem in a configuration document, named by source, document, field and problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name} (document {document}): {field}: {problem}")]
pub struct ConfigError {
    /// The file (or other source) the document came from.
    pub source_name: String,
    /// 1-based position of the document in the source.
    pub document: usize,
    /// Path of the offending field, e.g. `spec.retention.daily`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

/// A protected cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// The Azure region (or other location) the cluster runs in.
    pub region: String,
    /// Tags recorded in every backup's manifest (`git_tag: v1.4.2`, `env: prod`): what was
    /// deployed when it was taken.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// How to reach it.
    #[serde(flatten)]
    pub connection: ClusterConnection,
}

/// How Lifeboat reaches a cluster's API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClusterConnection {
    /// An AKS cluster, by ARM resource id (credentials from Entra ID).
    Aks {
        /// `/subscriptions/…/providers/Microsoft.ContainerService/managedClusters/…`.
        #[serde(rename = "resourceId")]
        resource_id: String,
    },
    /// Any cluster, through a kubeconfig.
    Kubeconfig {
        /// Path of the kubeconfig (the default one when absent).
        path: Option<String>,
        /// Context to use (the current one when absent).
        context: Option<String>,
        /// The ARM resource id of the AKS cluster this kubeconfig reaches, if it is one (e.g. a
        /// kubeconfig from `az aks get-credentials`): lets upgrade events name the cluster.
        #[serde(rename = "resourceId", default)]
        resource_id: Option<String>,
    },
}

impl ClusterConnection {
    /// The cluster's ARM resource id, when it is an AKS cluster (declared by `aks.resourceId`
    /// or `kubeconfig.resourceId`).
    pub fn arm_resource_id(&self) -> Option<&str> {
        match self {
            ClusterConnection::Aks { resource_id } => Some(resource_id),
            ClusterConnection::Kubeconfig { resource_id, .. } => resource_id.as_deref(),
        }
    }
}

/// What a policy backs up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// Namespace name globs to include (all when empty).
    #[serde(default)]
    pub include_namespaces: Vec<String>,
    /// Namespace name globs to exclude.
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// Resources (`deployments`, `certificates.cert-manager.io`) to include (all when empty).
    #[serde(default)]
    pub include_resources: Vec<String>,
    /// Resources to exclude.
    #[serde(default)]
    pub exclude_resources: Vec<String>,
    /// Kubernetes label selector objects must match.
    pub label_selector: Option<String>,
    /// Which cluster-scoped objects to include.
    #[serde(default)]
    pub cluster_scoped: ClusterScoped,
}

/// Which cluster-scoped objects a backup includes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClusterScoped {
    /// Those the selected namespaced objects need (their PVs, CRDs, bound ClusterRoles).
    #[default]
    Auto,
    /// All of them.
    All,
    /// None.
    None,
}

/// How many backups to keep (restic `forget` semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// The newest N.
    pub keep_last: Option<u32>,
    /// The newest of each of the last N hours.
    pub hourly: Option<u32>,
    /// ... days.
    pub daily: Option<u32>,
    /// ... weeks.
    pub weekly: Option<u32>,
    /// ... months.
    pub monthly: Option<u32>,
    /// ... years.
    pub yearly: Option<u32>,
    /// Every backup taken within this duration of the newest one (restic's `--keep-within`:
    /// relative to the newest backup, not to now, so a stopped schedule deletes nothing).
    #[serde(default, with = "opt_duration")]
    pub within: Option<Duration>,
    /// Pre-upgrade backups' own rule (see [`PreUpgradeRetention`]); keeps the last 3 when absent.
    pub pre_upgrade: Option<PreUpgradeRetention>,
    /// IANA time zone (`Europe/Berlin`) whose hours, days, weeks, months and years the buckets
    /// follow, daylight saving included; UTC when absent.
    pub time_zone: Option<chrono_tz::Tz>,
}

/// How many pre-upgrade backups (taken because the cluster was about to be upgraded) to keep.
///
/// Pre-upgrade backups form their own series: the policy's regular rules (keepLast and the
/// buckets, within) neither see nor count them, so an upgrade storm cannot shorten the regular
/// history, and this rule alone decides which pre-upgrade backups stay. Both rules keep
/// (either is enough), with restic's meaning:
///
/// ```yaml
/// retention: { keepLast: 7, daily: 14, preUpgrade: { keepLast: 2, within: 30d } }
/// ```
///
/// Without the block, the last [`PreUpgradeRetention::DEFAULT_KEEP_LAST`] are kept. The safety
/// rules (newest committed backup of the target, legal hold, immutability, running restores)
/// apply to pre-upgrade backups as to every other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreUpgradeRetention {
    /// The newest N pre-upgrade backups.
    pub keep_last: Option<u32>,
    /// Every pre-upgrade backup taken within this duration of the newest pre-upgrade backup.
    #[serde(default, with = "opt_duration")]
    pub within: Option<Duration>,
}

impl PreUpgradeRetention {
    /// How many pre-upgrade backups are kept when a policy says nothing about them.
    pub const DEFAULT_KEEP_LAST: u32 = 3;
}

impl Retention {
    /// Whether any rule keeps anything.
    pub fn keeps_something(&self) -> bool {
        [self.keep_last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly]
            .iter()
            .any(|n| n.is_some_and(|n| n > 0))
            || self.within.is_some()
    }

    /// The pre-upgrade rule in force: the policy's, or keep the last
    /// [`PreUpgradeRetention::DEFAULT_KEEP_LAST`].
    pub fn pre_upgrade_rule(&self) -> PreUpgradeRetention {
        self.pre_upgrade
            .clone()
            .unwrap_or(PreUpgradeRetention { keep_last: Some(PreUpgradeRetention::DEFAULT_KEEP_LAST), within: None })
    }
}

impl PolicySpec {
    /// The retention of the copies in the second region: `replication.retention`, or the
    /// primary's when the policy gives none.
    pub fn replica_retention(&self) -> &Retention {
        self.replication.as_ref().and_then(|r| r.retention.as_ref()).unwrap_or(&self.retention)
    }
}

/// Copies to a second region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replication {
    /// The region to copy to.
    pub region: String,
    /// Most age the newest replicated backup may have.
    #[serde(with = "humantime_serde_compat")]
    pub rpo: Duration,
    /// Retention of the copies (the primary's when absent).
    pub retention: Option<Retention>,
}

/// Volume data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volumes {
    /// Take CSI VolumeSnapshots of the selected PVCs.
    #[serde(default = "yes")]
    pub snapshot: bool,
    /// Run the pre- and post-snapshot hooks that selected pods declare with Velero's
    /// `pre.hook.backup.velero.io/*` and `post.hook.backup.velero.io/*` annotations (see
    /// [`crate::domain::hooks`]). Off unless asked for: a hook runs a command in the workload.
    #[serde(default)]
    pub hooks: bool,
}

impl Default for Volumes {
    fn default() -> Self {
        Self { snapshot: true, hooks: false }
    }
}

fn yes() -> bool {
    true
}

fn one_shard() -> u32 {
    1
}

/// The most shards a policy may ask for.
pub const MAX_SHARDS: u32 = 64;

/// A backup policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// The clusters it protects (each must be declared by a `Cluster` document).
    pub clusters: Vec<ClusterName>,
    /// When to back up: six-field NCRONTAB, UTC.
    pub schedule: Schedule,
    /// What to do with slots missed during downtime.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Most age the newest committed backup may have before on-call hears of it.
    #[serde(with = "humantime_serde_compat")]
    pub rpo: Duration,
    /// What to back up.
    #[serde(default)]
    pub selection: Selection,
    /// Volume data.
    #[serde(default)]
    pub volumes: Volumes,
    /// How many parts a backup of one cluster is split into, each handled by its own `backup`
    /// message in parallel and joined into one committed backup (namespaces are spread by a
    /// stable hash of their name; cluster-scoped objects go with part 0). 1, the default,
    /// backs up in one piece.
    #[serde(default = "one_shard")]
    pub shards: u32,
    /// What to keep.
    pub retention: Retention,
    /// The second region, if any.
    pub replication: Option<Replication>,
    /// Client-side encryption of the archive (it holds the cluster's Secrets).
    pub encryption: Option<EncryptionSpec>,
    /// Where this policy's backups may be restored. When absent: into the clusters it
    /// protects, into the namespaces it selects, without cluster-scoped objects. `[]` allows
    /// no restore at all.
    pub restores: Option<Vec<RestoreGrant>>,
    /// Restore drills: the newest backup restored on a schedule into sandbox namespaces,
    /// checked, and cleaned up (see [`Drill`]). None when absent.
    pub drill: Option<Drill>,
    /// Backups before upgrades, from Event Grid events (see [`PreUpgradeSpec`]).
    #[serde(default)]
    pub pre_upgrade: PreUpgradeSpec,
}

/// A restore drill: every `every`, the `drill` function restores the newest committed backup's
/// `namespaces` into `{namespace}{suffix}` of `cluster` (waiting for the workloads to become
/// ready, PVCs from the snapshots when `volumes`), records the outcome and its RTO (which
/// `staleness` alerts on), and deletes the sandbox namespaces once the drill has finished.
/// The policy's restore grants need not cover the sandbox: a drill is allowed exactly those
/// namespaces, without cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Drill {
    /// The namespaces to drill (source names; at least one).
    pub namespaces: Vec<String>,
    /// How often (`7d` by default).
    #[serde(default = "weekly", with = "humantime_serde_compat")]
    pub every: Duration,
    /// The cluster to drill in (the backed-up cluster when absent).
    #[serde(default)]
    pub cluster: Option<ClusterName>,
    /// Appended to each namespace's name to make its sandbox (`-drill` by default).
    #[serde(default = "drill_suffix")]
    pub suffix: String,
    /// Restore PVCs from the volume snapshots too (yes by default: that is what is drilled).
    #[serde(default = "yes")]
    pub volumes: bool,
    /// How long the restore may wait for its workloads (`30m` by default).
    #[serde(default = "half_an_hour", with = "humantime_serde_compat")]
    pub deadline: Duration,
}

impl Drill {
    /// The sandbox of source namespace `namespace`.
    pub fn sandbox(&self, namespace: &str) -> String {
        format!("{namespace}{}", self.suffix)
    }
}

fn weekly() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn half_an_hour() -> Duration {
    Duration::from_secs(30 * 60)
}

fn drill_suffix() -> String {
    "-drill".to_owned()
}

/// Where a policy's backups may be restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreGrant {
    /// Target clusters (declared names).
    pub clusters: Vec<ClusterName>,
    /// Target namespace globs (after mapping) that may receive objects.
    pub namespaces: Vec<String>,
    /// Target namespace globs that may not, even when `namespaces` matches.
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// Whether cluster-scoped objects may be written (the request must ask too).
    #[serde(default)]
    pub cluster_scoped: bool,
}

/// Client-side encryption of backups, in the age format: the operator keeps the identities
/// (private keys); Lifeboat only ever sees the recipients (public keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionSpec {
    /// age X25519 recipients (`age1…`); any one of their identities decrypts.
    pub age_recipients: Vec<String>,
}

/// Whether `s` looks like an age X25519 recipient (`age1` and 58 bech32 characters). The
/// archive writer checks the key itself when a backup starts.
pub fn looks_like_age_recipient(s: &str) -> bool {
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    s.len() == 62 && s.starts_with("age1") && s[4..].chars().all(|c| BECH32.contains(c))
}

/// A named policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its name.
    pub name: PolicyName,
    /// What it says.
    pub spec: PolicySpec,
}

/// A named cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its name.
    pub name: ClusterName,
    /// What it says.
    pub spec: ClusterSpec,
}

/// One (policy, cluster) pair: the unit that is scheduled, backed up and judged against an RPO.
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// The cluster.
    pub cluster: &'a Cluster,
}

impl Target<'_> {
    /// `{policy}.{cluster}`: a stable key for the target's records.
    pub fn key(&self) -> String {
        format!("{}.{}", self.policy.name, self.cluster.name)
    }
}

/// Every declared cluster and policy, checked as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Clusters by name.
    pub clusters: BTreeMap<ClusterName, Cluster>,
    /// Policies by name.
    pub policies: BTreeMap<PolicyName, Policy>,
}

impl Config {
    /// Every (policy, cluster) target, in name order.
    pub fn targets(&self) -> Vec<Target<'_>> {
        self.policies
            .values()
            .flat_map(|policy| {
                policy
                    .spec
                    .clusters
                    .iter()
                    .filter_map(move |c| self.clusters.get(c).map(|cluster| Target { policy, cluster }))
            })
            .collect()
    }

    /// Parses the YAML documents of several sources (`(name, text)` pairs) into one config.
    ///
    /// # Errors
    /// Every problem found, each naming its source, document and field: nothing is partly
    /// accepted.
    pub fn from_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut config = Config::default();
        let mut seen: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
        let mut references = Vec::new();
        for (source, text) in sources {
            for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
                let document = index + 1;
                let err = |field: &str, problem: String| ConfigError {
                    source_name: source.to_owned(),
                    document,
                    field: field.to_owned(),
                    problem,
                };
                let value = match serde_yaml_ng::Value::deserialize(doc) {
                    Ok(serde_yaml_ng::Value::Null) => continue, // an empty document (`---` at the end)
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(err("(document)", format!("not valid YAML: {e}")));
                        continue;
                    }
                };
                match parse_document(value) {
                    Ok(Document::Cluster(c)) => {
                        let key = ("Cluster".to_owned(), c.name.to_string());
                        if let Some((first, n)) = seen.insert(key, (source.to_owned(), document)) {
                            errors.push(err(
                                "metadata.name",
                                format!("cluster {} is already declared in {first} (document {n})", c.name),
                            ));
                        }
                        config.clusters.insert(c.name.clone(), c);
                    }
                    Ok(Document::Policy(p)) => {
                        let key = ("BackupPolicy".to_owned(), p.name.to_string());
                        if let Some((first, n)) = seen.insert(key, (source.to_owned(), document)) {
                            errors.push(err(
                                "metadata.name",
                                format!("policy {} is already declared in {first} (document {n})", p.name),
                            ));
                        }
                        for (i, c) in p.spec.clusters.iter().enumerate() {
                            references.push((err(&format!("spec.clusters[{i}]"), String::new()), c.clone()));
                        }
                        for (g, grant) in p.spec.restores.iter().flatten().enumerate() {
                            for (i, c) in grant.clusters.iter().enumerate() {
                                let field = format!("spec.restores[{g}].clusters[{i}]");
                                references.push((err(&field, String::new()), c.clone()));
                            }
                        }
                        errors.extend(check_policy(&p).into_iter().map(|(f, problem)| err(f, problem)));
                        config.policies.insert(p.name.clone(), p);
                    }
                    Err((field, problem)) => errors.push(err(&field, problem)),
                }
            }
        }
        for (mut error, cluster) in references {
            if !config.clusters.contains_key(&cluster) {
                error.problem = format!("cluster {cluster} is not declared by any Cluster document");
                errors.push(error);
            }
        }
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }
}

#[allow(clippy::large_enum_variant)] // one short-lived value per parsed document
enum Document {
    Cluster(Cluster),
    Policy(Policy),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope<S> {
    #[allow(dead_code)] // checked before deserializing, kept so it is an allowed field
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: Metadata,
    spec: S,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
    #[serde(default)]
    #[allow(dead_code)] // accepted for GitOps tooling; not used
    labels: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    annotations: BTreeMap<String, String>,
}

fn parse_document(value: serde_yaml_ng::Value) -> Result<Document, (String, String)> {
    let get = |k: &str| value.get(k).and_then(serde_yaml_ng::Value::as_str).map(str::to_owned);
    match get("apiVersion") {
        Some(v) if v == API_VERSION => {}
        Some(v) => {
            return Err(("apiVersion".into(), format!("{v:?} is not supported; use {API_VERSION}")));
        }
        None => return Err(("apiVersion".into(), "missing".into())),
    }
    let kind = get("kind").ok_or(("kind".to_owned(), "missing".to_owned()))?;
    match kind.as_str() {
        "Cluster" => {
            let env: Envelope<ClusterSpec> = deserialize_with_path(value)?;
            let name = ClusterName::new(env.metadata.name).map_err(|e| ("metadata.name".to_owned(), e.to_string()))?;
            Ok(Document::Cluster(Cluster { name, spec: env.spec }))
        }
        "BackupPolicy" => {
            let env: Envelope<PolicySpec> = deserialize_with_path(value)?;
            let name = PolicyName::new(env.metadata.name).map_err(|e| ("metadata.name".to_owned(), e.to_string()))?;
            Ok(Document::Policy(Policy { name, spec: env.spec }))
        }
        other => Err(("kind".into(), format!("{other:?} is not a kind Lifeboat reads (Cluster, BackupPolicy)"))),
    }
}

fn deserialize_with_path<T: serde::de::DeserializeOwned>(value: serde_yaml_ng::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        (if path == "." { "(document)".to_owned() } else { path }, e.into_inner().to_string())
    })
}

fn check_policy(policy: &Policy) -> Vec<(&'static str, String)> {
    let spec = &policy.spec;
    let mut problems = Vec::new();
    if spec.clusters.is_empty() {
        problems.push(("spec.clusters", "must name at least one cluster".to_owned()));
    }
    if spec.rpo.is_zero() {
        problems.push(("spec.rpo", "must be longer than zero".to_owned()));
    }
    if !(1..=MAX_SHARDS).contains(&spec.shards) {
        problems.push(("spec.shards", format!("must be between 1 and {MAX_SHARDS}")));
    }
    if spec.shards > 1 && spec.encryption.is_some() {
        // The join reads the parts back and holds no identity, so parts would be stored
        // unencrypted until joined: refused rather than weaken what `encryption` promises.
        problems.push((
            "spec.shards",
            "cannot be combined with encryption yet (parts would be stored unencrypted until joined)".to_owned(),
        ));
    }
    if !spec.retention.keeps_something() {
        problems
            .push(("spec.retention", "keeps nothing: set keepLast, a bucket (hourly … yearly) or within".to_owned()));
    }
    if let Some(r) = &spec.replication {
        if r.rpo.is_zero() {
            problems.push(("spec.replication.rpo", "must be longer than zero".to_owned()));
        }
        if r.retention.as_ref().is_some_and(|r| !r.keeps_something()) {
            problems.push(("spec.replication.retention", "keeps nothing".to_owned()));
        }
    }
    for grant in spec.restores.iter().flatten() {
        if grant.clusters.is_empty() || grant.namespaces.is_empty() {
            problems.push((
                "spec.restores",
                "each grant names at least one cluster and one namespace glob (\"*\" for all)".to_owned(),
            ));
        }
    }
    if let Some(encryption) = &spec.encryption {
        if encryption.age_recipients.is_empty() {
            problems.push((
                "spec.encryption.ageRecipients",
                "names no recipient: remove `encryption` or add one".to_owned(),
            ));
        }
        for r in encryption.age_recipients.iter().filter(|r| !looks_like_age_recipient(r)) {
            problems.push((
                "spec.encryption.ageRecipients",
                format!("{r:?} is not an age recipient (age1…, from `age-keygen -y`)"),
            ));
        }
    }
    if let Some(drill) = &spec.drill {
        if drill.namespaces.is_empty() {
            problems.push(("spec.drill.namespaces", "names no namespace to drill".to_owned()));
        }
        if drill.suffix.is_empty() {
            problems
                .push(("spec.drill.suffix", "must not be empty: a drill never restores over its source".to_owned()));
        }
        if drill.every.is_zero() {
            problems.push(("spec.drill.every", "must be longer than zero".to_owned()));
        }
        for ns in &drill.namespaces {
            let sandbox = drill.sandbox(ns);
            let valid = sandbox.len() <= 63
                && sandbox.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && sandbox.starts_with(|c: char| c.is_ascii_alphanumeric())
                && sandbox.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid || ns.contains('*') {
                problems.push((
                    "spec.drill.namespaces",
                    format!(
                        "{ns:?}: its sandbox {sandbox:?} is not a namespace name (lowercase, digits, '-', at most 63)"
                    ),
                ));
            }
        }
    }
    if let CatchUp::All { max: 0 } = spec.catch_up {
        problems.push(("spec.catchUp.all.max", "must be at least 1 (or use catchUp: none)".to_owned()));
    }
    problems
}

/// A duration as people write it in policies: `26h`, `90m`, `7d` (the largest unit that
/// divides it evenly).
pub fn format_duration(d: Duration) -> String {
    match d.as_secs() {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Durations written as `90m`, `26h`, `7d` (humantime).
pub(crate) mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like 90m, 26h or 7d: {e}")))
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::humantime_serde_compat::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                humantime::parse_duration(&s)
                    .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like 90m, 26h or 7d: {e}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: prod }
spec:
  region: westeurope
  kubeconfig: { context: prod }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: nightly }
spec:
  clusters: [prod]
  schedule: "0 0 2 * * *"
  rpo: 26h
  retention: { keepLast: 7, daily: 14 }
  replication: { region: northeurope, rpo: 30h }
"#;

    fn errors_of(text: &str) -> Vec<ConfigError> {
        Config::from_sources([("policies.yaml", text)]).unwrap_err()
    }

    #[test]
    fn reads_clusters_policies_and_targets() {
        let config = Config::from_sources([("policies.yaml", GOOD)]).unwrap();
        let targets = config.targets();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].key(), "nightly.prod");
        let policy = targets[0].policy;
        assert_eq!(policy.spec.rpo, Duration::from_secs(26 * 3600));
        assert_eq!(policy.spec.retention.daily, Some(14));
        assert!(policy.spec.volumes.snapshot, "volumes are snapshotted unless turned off");
    }

    #[test]
    fn encryption_recipients_are_checked() {
        let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let ok = format!("{GOOD}  encryption: {{ ageRecipients: [{key}] }}\n");
        let config = Config::from_sources([("p.yaml", ok.as_str())]).unwrap();
        let policy = config.policies.values().next().unwrap();
        assert_eq!(policy.spec.encryption.as_ref().unwrap().age_recipients, [key]);
        let bad = format!("{GOOD}  encryption: {{ ageRecipients: [ssh-rsa AAAA] }}\n");
        let errors = errors_of(&bad);
        assert_eq!(errors[0].field, "spec.encryption.ageRecipients", "{errors:?}");
    }

    #[test]
    fn durations_print_as_written() {
        assert_eq!(format_duration(Duration::from_secs(26 * 3600)), "26h");
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format_duration(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(format_duration(Duration::from_secs(61)), "61s");
    }

    #[test]
    fn a_typo_names_file_document_and_field() {
        let errors = errors_of(&GOOD.replace("keepLast: 7", "keepLst: 7"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(
            text.starts_with("policies.yaml (document 2): spec.retention.keepLst: unknown field `keepLst`"),
            "{text}"
        );
    }

    #[test]
    fn a_bad_schedule_names_its_field() {
        let errors = errors_of(&GOOD.replace("0 0 2 * * *", "0 2 * * *"));
        assert_eq!(errors[0].field, "spec.schedule", "{errors:?}");
        assert!(errors[0].problem.contains("5 fields"), "{errors:?}");
    }

    #[test]
    fn an_unknown_cluster_is_refused_with_its_index() {
        let errors = errors_of(&GOOD.replace("clusters: [prod]", "clusters: [prod, staging]"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.clusters[1]");
        assert!(errors[0].problem.contains("staging"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = GOOD.replace("rpo: 26h", "rpo: soon").replace("kind: Cluster", "kind: Clustr");
        let errors = errors_of(&text);
        let fields: Vec<_> = errors.iter().map(|e| (e.document, e.field.as_str())).collect();
        assert!(fields.contains(&(1, "kind")), "{errors:?}");
        assert!(fields.contains(&(2, "spec.rpo")), "{errors:?}");
    }

    #[test]
    fn retention_reads_a_time_zone_and_a_pre_upgrade_rule() {
        let text = GOOD.replace(
            "{ keepLast: 7, daily: 14 }",
            "{ daily: 14, timeZone: Europe/Berlin, preUpgrade: { keepLast: 1, within: 30d } }",
        );
        let config = Config::from_sources([("p.yaml", text.as_str())]).unwrap();
        let retention = &config.policies.values().next().unwrap().spec.retention;
        assert_eq!(retention.time_zone, Some(chrono_tz::Europe::Berlin));
        let pre = retention.pre_upgrade_rule();
        assert_eq!((pre.keep_last, pre.within), (Some(1), Some(Duration::from_secs(30 * 86_400))));
        let default = Retention::default().pre_upgrade_rule();
        assert_eq!(default.keep_last, Some(PreUpgradeRetention::DEFAULT_KEEP_LAST));
    }

    #[test]
    fn an_unknown_time_zone_names_its_field() {
        let errors = errors_of(&GOOD.replace("{ keepLast: 7, daily: 14 }", "{ keepLast: 7, timeZone: Europe/Paris2 }"));
        assert_eq!(errors[0].field, "spec.retention.timeZone", "{errors:?}");
        assert!(errors[0].problem.contains("Europe/Paris2"), "{errors:?}");
    }

    #[test]
    fn replicas_use_their_own_retention_or_the_primarys() {
        let config = Config::from_sources([("p.yaml", GOOD)]).unwrap();
        let spec = &config.policies.values().next().unwrap().spec;
        assert_eq!(spec.replica_retention(), &spec.retention);
        let own = GOOD.replace("rpo: 30h }", "rpo: 30h, retention: { keepLast: 3 } }");
        let config = Config::from_sources([("p.yaml", own.as_str())]).unwrap();
        let spec = &config.policies.values().next().unwrap().spec;
        assert_eq!(spec.replica_retention().keep_last, Some(3));
    }

    #[test]
    fn shards_default_to_one_and_are_bounded() {
        let config = Config::from_sources([("p.yaml", GOOD)]).unwrap();
        assert_eq!(config.policies.values().next().unwrap().spec.shards, 1, "unsharded unless asked");
        let four = format!("{GOOD}  shards: 4\n");
        let config = Config::from_sources([("p.yaml", four.as_str())]).unwrap();
        assert_eq!(config.policies.values().next().unwrap().spec.shards, 4);
        for bad in [0, MAX_SHARDS + 1] {
            let errors = errors_of(&format!("{GOOD}  shards: {bad}\n"));
            assert_eq!(errors[0].field, "spec.shards", "{errors:?}");
        }
        let recipient = format!("age1{}", "q".repeat(58));
        let errors = errors_of(&format!("{GOOD}  shards: 2\n  encryption: {{ ageRecipients: [{recipient}] }}\n"));
        assert!(errors.iter().any(|e| e.field == "spec.shards" && e.problem.contains("encryption")), "{errors:?}");
    }

    #[test]
    fn a_policy_that_keeps_nothing_is_refused() {
        let errors = errors_of(&GOOD.replace("{ keepLast: 7, daily: 14 }", "{ keepLast: 0 }"));
        assert_eq!(errors[0].field, "spec.retention", "{errors:?}");
    }

    #[test]
    fn duplicates_name_the_first_declaration() {
        let errors = errors_of(&format!("{GOOD}\n---\n{}", GOOD.split("---").next().unwrap()));
        assert!(errors[0].problem.contains("already declared in policies.yaml (document 1)"), "{errors:?}");
    }
}
