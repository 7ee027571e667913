//! Who may receive a restore: the policy that took a backup says which clusters and namespaces
//! its data may be written into, and whether cluster-scoped objects may be.
//!
//! Checked twice, both times before anything is written: the request alone (target cluster,
//! cluster-scoped objects), then every target namespace of the plan.

use super::names::ClusterName;
use super::policy::{Policy, RestoreGrant};
use super::restore_request::RestoreRequest;
use super::selection::glob_match;

/// What a request may do in its target cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The grants that cover the target cluster.
    grants: Vec<RestoreGrant>,
    /// Whether cluster-scoped objects (besides namespaces) may be written: the request asked
    /// and a grant allows it.
    pub cluster_scoped: bool,
}

/// Why a restore is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No grant covers the target cluster.
    #[error("policy {policy} does not allow restores into cluster {cluster}{hint}")]
    Cluster {
        /// The policy.
        policy: String,
        /// The target cluster.
        cluster: String,
        /// How to allow it.
        hint: &'static str,
    },
    /// The request asks for cluster-scoped objects and no grant allows them.
    #[error("policy {policy} does not allow cluster-scoped objects to be restored into cluster {cluster}")]
    ClusterScoped {
        /// The policy.
        policy: String,
        /// The target cluster.
        cluster: String,
    },
    /// Some target namespaces are not covered.
    #[error("policy {policy} does not allow restores into namespace(s) {} of cluster {cluster}", namespaces.join(", "))]
    Namespaces {
        /// The policy.
        policy: String,
        /// The target cluster.
        cluster: String,
        /// The namespaces refused.
        namespaces: Vec<String>,
    },
}

/// The grants of `policy`: its own `restores`, or the default (its clusters, the namespaces it
/// selects, no cluster-scoped objects); plus, when it drills, its drills' sandbox namespaces
/// (exactly those, without cluster-scoped objects).
pub fn grants(policy: &Policy) -> Vec<RestoreGrant> {
    let mut grants = own_grants(policy);
    if let Some(drill) = &policy.spec.drill {
        let clusters = match &drill.cluster {
            Some(cluster) => vec![cluster.clone()],
            None => policy.spec.clusters.clone(),
        };
        let namespaces = drill.namespaces.iter().map(|ns| drill.sandbox(ns)).collect();
        grants.push(RestoreGrant { clusters, namespaces, exclude_namespaces: Vec::new(), cluster_scoped: false });
    }
    grants
}

fn own_grants(policy: &Policy) -> Vec<RestoreGrant> {
    match &policy.spec.restores {
        Some(grants) => grants.clone(),
        None => {
            let selection = &policy.spec.selection;
            let namespaces = if selection.include_namespaces.is_empty() {
                vec!["*".to_owned()]
            } else {
                selection.include_namespaces.clone()
            };
            vec![RestoreGrant {
                clusters: policy.spec.clusters.clone(),
                namespaces,
                exclude_namespaces: selection.exclude_namespaces.clone(),
                cluster_scoped: false,
            }]
        }
    }
}

/// Checks the request against the policy that took the backup.
///
/// # Errors
/// [`Refusal::Cluster`] or [`Refusal::ClusterScoped`].
pub fn authorize(policy: &Policy, request: &RestoreRequest) -> Result<Allowed, Refusal> {
    let target: &ClusterName = &request.target_cluster;
    let grants: Vec<RestoreGrant> = grants(policy).into_iter().filter(|g| g.clusters.contains(target)).collect();
    if grants.is_empty() {
        let hint = if policy.spec.restores.is_some() {
            " (add the cluster to the policy's spec.restores)"
        } else {
            " (the policy protects other clusters: list this one under spec.restores)"
        };
        return Err(Refusal::Cluster { policy: policy.name.to_string(), cluster: target.to_string(), hint });
    }
    let scoped_allowed = grants.iter().any(|g| g.cluster_scoped);
    if request.cluster_scoped && !scoped_allowed {
        return Err(Refusal::ClusterScoped { policy: policy.name.to_string(), cluster: target.to_string() });
    }
    Ok(Allowed { grants, cluster_scoped: request.cluster_scoped && scoped_allowed })
}

impl Allowed {
    /// Whether `namespace` (a target namespace) may receive objects.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.grants.iter().any(|g| {
            g.namespaces.iter().any(|p| glob_match(p, namespace))
                && !g.exclude_namespaces.iter().any(|p| glob_match(p, namespace))
        })
    }

    /// Checks every target namespace of a plan.
    ///
    /// # Errors
    /// [`Refusal::Namespaces`] naming each namespace refused.
    pub fn check_namespaces<'a>(
        &self,
        policy: &Policy,
        cluster: &ClusterName,
        namespaces: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Refusal> {
        let mut refused: Vec<String> =
            namespaces.into_iter().filter(|ns| !self.allows_namespace(ns)).map(str::to_owned).collect();
        refused.sort();
        refused.dedup();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Namespaces {
                policy: policy.name.to_string(),
                cluster: cluster.to_string(),
                namespaces: refused,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::messages::decode;
    use crate::domain::policy::Config;

    fn config(restores: &str) -> Config {
        let yaml = format!(
            r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec: {{ region: westeurope, kubeconfig: {{}} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: dr }}
spec: {{ region: northeurope, kubeconfig: {{}} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: nightly }}
spec:
  clusters: [prod]
  schedule: "0 0 2 * * *"
  rpo: 26h
  retention: {{ keepLast: 7 }}
  selection: {{ includeNamespaces: ["shop*"], excludeNamespaces: [shop-tmp] }}
{restores}
"#
        );
        Config::from_sources([("p.yaml", yaml.as_str())]).unwrap()
    }

    fn request(target: &str, cluster_scoped: bool) -> RestoreRequest {
        let body = format!(
            r#"{{"schemaVersion":1,"requestId":"r1","sourceCluster":"prod","backup":{{"kind":"latest"}},"targetCluster":"{target}","clusterScoped":{cluster_scoped}}}"#
        );
        decode(body.as_bytes()).unwrap()
    }

    fn policy(c: &Config) -> &Policy {
        c.policies.values().next().unwrap()
    }

    #[test]
    fn by_default_backups_go_back_where_they_came_from() {
        let c = config("");
        let p = policy(&c);
        let allowed = authorize(p, &request("prod", false)).unwrap();
        assert!(allowed.allows_namespace("shop"));
        assert!(allowed.allows_namespace("shop-eu"));
        assert!(!allowed.allows_namespace("shop-tmp"), "excluded by the policy's selection");
        assert!(!allowed.allows_namespace("kube-system"));
        let err = authorize(p, &request("dr", false)).unwrap_err();
        assert!(err.to_string().contains("does not allow restores into cluster dr"), "{err}");
        let err = authorize(p, &request("prod", true)).unwrap_err();
        assert!(matches!(err, Refusal::ClusterScoped { .. }), "{err}");
    }

    #[test]
    fn a_drill_may_write_exactly_its_sandboxes_in_its_cluster_and_nothing_cluster_scoped() {
        let c = config("  restores: []\n  drill: { namespaces: [shop, shop-eu], cluster: dr }");
        let p = policy(&c);
        let dr = authorize(p, &request("dr", false)).unwrap();
        assert!(dr.allows_namespace("shop-drill") && dr.allows_namespace("shop-eu-drill"));
        assert!(!dr.allows_namespace("shop"), "never the source namespace");
        assert!(!dr.allows_namespace("payments-drill"), "only the drilled namespaces' sandboxes");
        assert!(matches!(authorize(p, &request("dr", true)), Err(Refusal::ClusterScoped { .. })));
        assert!(
            matches!(authorize(p, &request("prod", false)), Err(Refusal::Cluster { .. })),
            "restores: [] still holds"
        );
    }

    #[test]
    fn a_drill_sandbox_must_be_a_namespace_name_and_differ_from_its_source() {
        let yaml = |drill: &str| {
            format!(
                "apiVersion: lifeboat.io/v1alpha1\nkind: Cluster\nmetadata: {{ name: prod }}\nspec: {{ region: westeurope, kubeconfig: {{}} }}\n---\n\
                 apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {{ name: nightly }}\n\
                 spec: {{ clusters: [prod], schedule: '0 0 2 * * *', rpo: 26h, retention: {{ keepLast: 7 }}, drill: {drill} }}\n"
            )
        };
        for (drill, field) in [
            ("{ namespaces: [] }", "spec.drill.namespaces"),
            ("{ namespaces: [shop], suffix: '' }", "spec.drill.suffix"),
            ("{ namespaces: ['Shop'] }", "spec.drill.namespaces"),
            ("{ namespaces: ['shop*'] }", "spec.drill.namespaces"),
        ] {
            let text = yaml(drill);
            let err = Config::from_sources([("p.yaml", text.as_str())]).unwrap_err();
            assert!(format!("{err:?}").contains(field), "{drill}: {err:?}");
        }
        let text = yaml("{ namespaces: [shop] }");
        let c = Config::from_sources([("p.yaml", text.as_str())]).unwrap();
        let drill = policy(&c).spec.drill.clone().unwrap();
        assert_eq!(
            (drill.sandbox("shop"), drill.every.as_secs(), drill.volumes),
            ("shop-drill".into(), 7 * 86400, true)
        );
    }

    #[test]
    fn grants_name_clusters_namespaces_and_cluster_scoped_objects() {
        let c = config(
            "  restores:\n  - { clusters: [dr], namespaces: [\"*-restore\", shop], clusterScoped: true }\n  - { clusters: [prod], namespaces: [sandbox] }",
        );
        let p = policy(&c);
        let dr = authorize(p, &request("dr", true)).unwrap();
        assert!(dr.cluster_scoped);
        assert!(dr.allows_namespace("payments-restore"));
        let err = dr.check_namespaces(p, &"dr".parse().unwrap(), ["shop", "kube-system", "payments"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy nightly does not allow restores into namespace(s) kube-system, payments of cluster dr"
        );
        let prod = authorize(p, &request("prod", false)).unwrap();
        assert!(!prod.allows_namespace("shop"), "explicit grants replace the default");
        assert!(!prod.cluster_scoped);
        assert!(matches!(authorize(p, &request("prod", true)), Err(Refusal::ClusterScoped { .. })));
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        let c = config("  restores: []");
        let err = authorize(policy(&c), &request("prod", false)).unwrap_err();
        assert!(err.to_string().contains("spec.restores"), "{err}");
    }

    #[test]
    fn grants_must_name_declared_clusters() {
        let yaml = r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: prod }
spec: { region: westeurope, kubeconfig: {} }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: nightly }
spec:
  clusters: [prod]
  schedule: "0 0 2 * * *"
  rpo: 26h
  retention: { keepLast: 7 }
  restores: [ { clusters: [elsewhere], namespaces: [] } ]
"#;
        let errors = Config::from_sources([("p.yaml", yaml)]).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|e| e.contains("spec.restores[0].clusters[0]") && e.contains("not declared")),
            "{text:?}"
        );
        assert!(text.iter().any(|e| e.contains("one namespace glob")), "{text:?}");
    }
}
