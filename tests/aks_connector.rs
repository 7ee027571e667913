//! `AksConnector` end to end: the cluster read from a local fake of ARM (managed cluster GET,
//! `listClusterUserCredential`), then a TLS test API server reached with the CA from that
//! credential and an Entra ID bearer token from the credential, renewed before it expires.

#[path = "support/fake_arm.rs"]
mod fake_arm;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::Method;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use lifeboat_shared::adapters::azure::aks::{AKS_API_VERSION, AKS_SCOPE, AksConnector};
use lifeboat_shared::adapters::azure::arm::{ArmClient, ArmSettings};
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::domain::policy::{Cluster, ClusterConnection, ClusterSpec};
use lifeboat_shared::ports::cluster::{ApiResourceInfo, ClusterConnector, ClusterError};
use lifeboat_test_apiserver::{Options, TestApiServer};
use serde_json::json;

const ARM_TOKEN: &str = "arm-token-7c1f";
const AKS_TOKEN: &str = "aks-entra-token-41b9";
const CLUSTER_ID: &str =
    "/subscriptions/sub/resourceGroups/prod/providers/Microsoft.ContainerService/managedClusters/prod-weu";

/// Hands out the tokens given, in order (the last one again once they run out), counting calls
/// and recording the scopes asked for.
#[derive(Debug)]
struct Tokens {
    tokens: Vec<(&'static str, azure_core::time::Duration)>,
    scopes: Mutex<Vec<String>>,
}

impl Tokens {
    fn new(tokens: Vec<(&'static str, azure_core::time::Duration)>) -> Arc<Self> {
        Arc::new(Self { tokens, scopes: Mutex::default() })
    }

    fn calls(&self) -> usize {
        self.scopes.lock().expect("lock").len()
    }
}

#[async_trait]
impl TokenCredential for Tokens {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        let mut asked = self.scopes.lock().expect("lock");
        let (token, lifetime) = self.tokens[asked.len().min(self.tokens.len() - 1)];
        asked.push(scopes.join(" "));
        Ok(AccessToken::new(Secret::new(token), azure_core::time::OffsetDateTime::now_utc() + lifetime))
    }
}

/// The kubeconfig AKS returns with `format=exec`: the server, its CA, and a kubelogin user.
fn aks_kubeconfig(server: &str, ca_pem: &str) -> String {
    let ca = azure_core::base64::encode(ca_pem.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod-weu\n  cluster:\n    certificate-authority-data: {ca}\n    server: {server}\ncontexts:\n- name: prod-weu\n  context:\n    cluster: prod-weu\n    user: clusterUser_prod_prod-weu\ncurrent-context: prod-weu\nusers:\n- name: clusterUser_prod_prod-weu\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n      interactiveMode: IfAvailable\n"
    )
}

struct Setup {
    arm: fake_arm::Running,
    api: lifeboat_test_apiserver::Running,
    connector: AksConnector,
}

async fn setup(tokens: Arc<Tokens>) -> Setup {
    let api = TestApiServer::start(Options { token: Some(AKS_TOKEN.into()), tls: true, ..Options::default() })
        .await
        .expect("api server");
    api.seed_sample_app("shop").await.expect("seed");
    let arm = fake_arm::start().await;
    arm.add_managed_cluster(
        CLUSTER_ID,
        json!({ "env": "prod", "costCenter": "42" }),
        json!({
            "fqdn": "prod-weu-dns-1a2b.hcp.westeurope.azmk8s.io",
            "kubernetesVersion": "1.33",
            "currentKubernetesVersion": "1.33.2",
            "agentPoolProfiles": [
                { "name": "system", "count": 3, "vmSize": "Standard_D4s_v5", "mode": "System" },
                { "name": "apps", "count": 5, "vmSize": "Standard_E8s_v5", "mode": "User" }
            ]
        }),
        &aks_kubeconfig(&api.url(), api.ca_pem().expect("tls")),
    );
    let settings = ArmSettings {
        endpoint: arm.base.clone(),
        attempts: 2,
        backoff: Duration::from_millis(10),
        max_wait: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(5),
    };
    let arm_credential = Tokens::new(vec![(ARM_TOKEN, azure_core::time::Duration::hours(1))]);
    let client = ArmClient::new(arm_credential, settings).expect("arm client");
    let connector = AksConnector::new(client, tokens);
    Setup { arm, api, connector }
}

fn aks(name: &str, resource_id: &str) -> Cluster {
    Cluster {
        name: ClusterName::new(name).expect("name"),
        spec: ClusterSpec {
            region: "westeurope".into(),
            tags: Default::default(),
            connection: ClusterConnection::Aks { resource_id: resource_id.into() },
        },
    }
}

/// One request: the list of namespaces.
async fn list_namespaces(cluster: &dyn lifeboat_shared::ports::cluster::Cluster) -> Result<usize, ClusterError> {
    let namespaces = ApiResourceInfo {
        group: String::new(),
        version: "v1".into(),
        resource: "namespaces".into(),
        kind: "Namespace".into(),
        namespaced: false,
        verbs: vec!["list".into()],
    };
    Ok(cluster.list(&namespaces, None, None, 100, None).await?.items.len())
}

async fn namespaces(cluster: &dyn lifeboat_shared::ports::cluster::Cluster) -> Result<Vec<String>, ClusterError> {
    let resources = cluster.discover().await?;
    let namespaces = resources.iter().find(|r| r.group.is_empty() && r.resource == "namespaces").expect("namespaces");
    let page = cluster.list(namespaces, None, None, 100, None).await?;
    Ok(page.items.iter().filter_map(|n| n.pointer("/metadata/name")?.as_str().map(str::to_owned)).collect())
}

#[tokio::test]
async fn an_aks_cluster_is_read_from_arm_and_reached_over_tls_with_an_entra_token() {
    let tokens = Tokens::new(vec![(AKS_TOKEN, azure_core::time::Duration::hours(1))]);
    let s = setup(Arc::clone(&tokens)).await;

    let cluster = s.connector.connect(&aks("prod", CLUSTER_ID)).await.expect("connected");
    let names = namespaces(cluster.as_ref()).await.expect("listed over TLS with the token");
    assert!(names.contains(&"shop".to_owned()), "{names:?}");
    assert_eq!(cluster.version().await.expect("version"), s.api.options().git_version);

    // One token served every request, asked for the AKS server application.
    assert_eq!(*tokens.scopes.lock().expect("lock"), [AKS_SCOPE]);

    let info = s.connector.aks_cluster("prod").await.expect("cluster info kept");
    assert_eq!(info.fqdn.as_deref(), Some("prod-weu-dns-1a2b.hcp.westeurope.azmk8s.io"));
    assert_eq!(info.kubernetes_version.as_deref(), Some("1.33.2"));
    assert_eq!(info.tags.get("costCenter").map(String::as_str), Some("42"));
    let pools: Vec<(&str, Option<u64>)> = info.node_pools.iter().map(|p| (p.name.as_str(), p.count)).collect();
    assert_eq!(pools, [("system", Some(3)), ("apps", Some(5))]);

    let calls: Vec<(Method, String, String)> =
        s.arm.requests().into_iter().map(|r| (r.method, r.path, r.query.unwrap_or_default())).collect();
    assert_eq!(
        calls,
        [
            (Method::GET, CLUSTER_ID.to_owned(), format!("api-version={AKS_API_VERSION}")),
            (
                Method::POST,
                format!("{CLUSTER_ID}/listClusterUserCredential"),
                format!("format=exec&api-version={AKS_API_VERSION}")
            ),
        ]
    );
    assert!(s.arm.requests().iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {ARM_TOKEN}"))));

    // The client is cached per cluster: ARM is not asked again.
    s.connector.connect(&aks("prod", CLUSTER_ID)).await.expect("cached");
    assert_eq!(s.arm.requests().len(), 2);
}

#[tokio::test]
async fn a_token_near_expiry_is_renewed_and_a_fresh_one_is_reused() {
    let soon = azure_core::time::Duration::minutes(2);
    let tokens = Tokens::new(vec![(AKS_TOKEN, soon), (AKS_TOKEN, azure_core::time::Duration::hours(1))]);
    let s = setup(Arc::clone(&tokens)).await;
    let cluster = s.connector.connect(&aks("prod", CLUSTER_ID)).await.expect("connected");

    for request in ["first", "second", "third"] {
        assert!(list_namespaces(cluster.as_ref()).await.expect(request) > 0);
    }
    // The first token expired within the margin, so the next request fetched another, and that
    // one (good for an hour) served the rest.
    assert_eq!(tokens.calls(), 2);
}

#[tokio::test]
async fn the_renewed_token_is_the_one_sent() {
    let soon = azure_core::time::Duration::minutes(2);
    let tokens =
        Tokens::new(vec![(AKS_TOKEN, soon), ("a-token-the-server-refuses", azure_core::time::Duration::hours(1))]);
    let s = setup(Arc::clone(&tokens)).await;
    let cluster = s.connector.connect(&aks("prod", CLUSTER_ID)).await.expect("connected");

    list_namespaces(cluster.as_ref()).await.expect("the first token is accepted");
    let err = list_namespaces(cluster.as_ref()).await.expect_err("the second token is refused");
    assert!(matches!(err, ClusterError::Forbidden { .. }), "{err}");
}

#[tokio::test]
async fn arm_refusing_the_cluster_read_is_forbidden_naming_the_cluster() {
    let tokens = Tokens::new(vec![(AKS_TOKEN, azure_core::time::Duration::hours(1))]);
    let s = setup(Arc::clone(&tokens)).await;
    s.arm.inject(Method::GET, 403, None, "AuthorizationFailed");

    let err = s.connector.connect(&aks("prod", CLUSTER_ID)).await.err().expect("denied");
    assert!(matches!(err, ClusterError::Forbidden { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(CLUSTER_ID) && message.contains("reading AKS cluster"), "{message}");
    assert!(message.contains("AuthorizationFailed"), "{message}");
    assert_eq!(tokens.calls(), 0, "no token for the API server without a cluster");
}

#[tokio::test]
async fn a_missing_cluster_is_invalid_naming_the_resource_id() {
    let s = setup(Tokens::new(vec![(AKS_TOKEN, azure_core::time::Duration::hours(1))])).await;
    let missing = CLUSTER_ID.replace("prod-weu", "gone");

    let err = s.connector.connect(&aks("gone", &missing)).await.err().expect("missing");
    assert!(matches!(err, ClusterError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains(&missing) && err.to_string().contains("no such AKS cluster"), "{err}");
}

#[tokio::test]
async fn a_cluster_with_a_kubeconfig_is_reached_without_arm() {
    let s = setup(Tokens::new(vec![(AKS_TOKEN, azure_core::time::Duration::hours(1))])).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("kubeconfig");
    s.api.write_kubeconfig(&path).expect("kubeconfig");
    let cluster = Cluster {
        name: ClusterName::new("onprem").expect("name"),
        spec: ClusterSpec {
            region: "dc1".into(),
            tags: Default::default(),
            connection: ClusterConnection::Kubeconfig {
                path: Some(path.display().to_string()),
                context: None,
                resource_id: None,
            },
        },
    };

    let client = s.connector.connect(&cluster).await.expect("connected");
    assert!(namespaces(client.as_ref()).await.expect("listed").contains(&"shop".to_owned()));
    assert!(s.arm.requests().is_empty());
}
