//! `AksConnector` end to end: the cluster read from a local fake of ARM (managed cluster GET,
//! `listClusterUserCredential`), then a TLS test API server reached with the CA from that
//! credential and an Entra ID bearer token from the credential, renewed before it expires; and
//! a backup of that cluster, whose manifest records ARM's tags, version and node pools.

#[path = "support/fake_arm.rs"]
mod fake_arm;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::Method;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use lifeboat::app::{DataDir, Settings, embedded_with_clock};
use lifeboat::handlers::{self, MessageInput, TimerInput, TriggerInput};
use lifeboat_shared::adapters::azure::aks::{AKS_API_VERSION, AKS_SCOPE, AksConnector};
use lifeboat_shared::adapters::azure::arm::{ArmClient, ArmSettings};
use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::manifest::Manifest;
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::domain::platform::NodePool;
use lifeboat_shared::domain::policy::{Cluster, ClusterConnection, ClusterSpec, Config};
use lifeboat_shared::domain::records::BackupState;
use lifeboat_shared::ports::cluster::{ApiResourceInfo, ClusterConnector, ClusterError};
use lifeboat_shared::ports::object_store::collect_bytes;
use lifeboat_shared::ports::{ManualClock, QueueReceiver, ReceivedMessage};
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
    assert_eq!(client.platform().await.expect("platform"), None, "a kubeconfig cluster has no platform facts");
    assert!(s.arm.requests().is_empty());
}

/// A backup of the AKS cluster through the real handlers (`schedule_tick` → `backup` →
/// `snapshot_check`) on the embedded stores, the cluster reached through `AksConnector`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_an_aks_cluster_records_what_arm_says_of_it_in_the_manifest() {
    let s = setup(Tokens::new(vec![(AKS_TOKEN, azure_core::time::Duration::hours(1))])).await;
    let dir = tempfile::tempdir().expect("dir");
    let yaml = format!(
        r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec:
  region: westeurope
  aks: {{ resourceId: "{CLUSTER_ID}" }}
  tags: {{ env: production, team: payments }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: hourly }}
spec:
  clusters: [prod]
  schedule: "0 0 * * * *"
  rpo: 2h
  retention: {{ keepLast: 24 }}
"#
    );
    let config = Config::from_sources([("policy.yaml", yaml.as_str())]).expect("config");
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:30Z").expect("time").with_timezone(&chrono::Utc);
    let clock = Arc::new(ManualClock::new(now));
    let (mut app, queue) =
        embedded_with_clock(&DataDir::new(&dir.path().join("data")), config, Settings::default(), clock.clone())
            .expect("app");
    let connector = Arc::new(s.connector);
    // The host connected before a new release re-tagged the cluster and upgraded it.
    connector.connect(&aks("prod", CLUSTER_ID)).await.expect("connected");
    s.arm.add_managed_cluster(
        CLUSTER_ID,
        json!({ "env": "prod", "costCenter": "42", "git_tag": "release-v1.4.0" }),
        json!({
            "fqdn": "prod-weu-dns-1a2b.hcp.westeurope.azmk8s.io",
            "kubernetesVersion": "1.34",
            "currentKubernetesVersion": "1.34.1",
            "agentPoolProfiles": [
                { "name": "system", "count": 3, "vmSize": "Standard_D4s_v5", "mode": "System" },
                { "name": "apps", "count": 7, "vmSize": "Standard_E8s_v5", "mode": "User" }
            ]
        }),
        &aks_kubeconfig(&s.api.url(), s.api.ca_pem().expect("tls")),
    );
    app.clusters = connector;

    let id = BackupId::parse("hourly-20261122t100000z").expect("id");
    let cluster = ClusterName::new("prod").expect("name");
    let mut function = "schedule_tick";
    let mut input = TriggerInput::Timer(TimerInput::default());
    for _ in 0..20 {
        let def = app.function(function).expect("function").clone();
        handlers::dispatch(&app, &def, input).await.unwrap_or_else(|e| panic!("{function}: {e}"));
        let state = catalog::get(app.state.as_ref(), &cluster, &id).await.expect("catalog").map(|(r, _)| r.state);
        if state == Some(BackupState::Committed) {
            break;
        }
        clock.advance(Duration::from_secs(60));
        let (next, message) = next_message(queue.as_ref()).await;
        (function, input) = (next, TriggerInput::Message(MessageInput::from(&message)));
    }

    let key = format!("backups/prod/{id}/manifest.json");
    let (_, body) = app.objects.get(&key, None).await.expect("the backup is committed");
    let manifest: Manifest = serde_json::from_slice(&collect_bytes(body).await.expect("read")).expect("manifest");
    let tags: Vec<(&str, &str)> = manifest.cluster_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        tags,
        [("costCenter", "42"), ("env", "production"), ("git_tag", "release-v1.4.0"), ("team", "payments")],
        "ARM's tags of the backup's time merged with the document's, the document winning on env"
    );
    assert_eq!(manifest.cluster_version, s.api.options().git_version, "the API server's own version");
    let platform = manifest.platform.expect("ARM's description of the cluster");
    assert_eq!(platform.resource_id, CLUSTER_ID);
    assert_eq!(platform.kubernetes_version.as_deref(), Some("1.34.1"), "the version after the upgrade");
    assert_eq!(platform.fqdn.as_deref(), Some("prod-weu-dns-1a2b.hcp.westeurope.azmk8s.io"));
    assert_eq!(platform.tags.get("env").map(String::as_str), Some("prod"), "ARM's own tags, as read");
    let pool = |name: &str, count, vm_size: &str, mode: &str| NodePool {
        name: name.into(),
        count: Some(count),
        vm_size: Some(vm_size.into()),
        mode: Some(mode.into()),
    };
    assert_eq!(
        platform.node_pools,
        [pool("system", 3, "Standard_D4s_v5", "System"), pool("apps", 7, "Standard_E8s_v5", "User")]
    );
}

#[tokio::test]
async fn when_arm_cannot_be_read_at_backup_time_the_cluster_is_described_as_it_was_when_connected() {
    let s = setup(Tokens::new(vec![(AKS_TOKEN, azure_core::time::Duration::hours(1))])).await;
    let cluster = s.connector.connect(&aks("prod", CLUSTER_ID)).await.expect("connected");
    s.arm.inject(Method::GET, 403, None, "AuthorizationFailed");

    let platform = cluster.platform().await.expect("no failure").expect("a description");
    assert_eq!(platform.kubernetes_version.as_deref(), Some("1.33.2"));
    assert_eq!(platform.tags.get("costCenter").map(String::as_str), Some("42"));
    let gets = s.arm.requests().iter().filter(|r| r.method == Method::GET).count();
    assert_eq!(gets, 2, "ARM was asked again (and refused)");
}

/// The next message of the backup chain and the function it goes to.
async fn next_message(queue: &SqliteQueue) -> (&'static str, ReceivedMessage) {
    for _ in 0..50 {
        for (queue_name, function) in [("backup-requests", "backup"), ("snapshot-checks", "snapshot_check")] {
            if let Some(message) = queue.receive(queue_name, 1).await.expect("receive").pop() {
                queue.complete(&message).await.expect("complete");
                return (function, message);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // scheduled checks come due in real time too
    }
    panic!("the backup chain stopped");
}
