//! Where state and backups live, chosen by configuration (environment variables, which are app
//! settings in Azure Functions):
//!
//! | variable | meaning |
//! |---|---|
//! | `LIFEBOAT_STORAGE` | `embedded` (default: SQLite and a local directory under the data dir), `azure`, or `aws` (S3 objects, SQLite state under the data dir) |
//! | `LIFEBOAT_BLOB_ENDPOINT` | e.g. `https://acct.blob.core.windows.net`, Azurite: `http://127.0.0.1:10000/devstoreaccount1` |
//! | `LIFEBOAT_BLOB_CONTAINER` | the backups' container (default `lifeboat`) |
//! | `LIFEBOAT_TABLE_ENDPOINT` | e.g. `https://acct.table.core.windows.net`, Azurite: `http://127.0.0.1:10002/devstoreaccount1` |
//! | `LIFEBOAT_AZURE_AUTH` | `managed-identity` (default), `workload-identity`, `azure-cli` or `dev-key` (Azurite only) |
//! | `LIFEBOAT_AZURE_CLIENT_ID` | client id of a user-assigned managed identity (else `AZURE_CLIENT_ID`, else system-assigned) |
//! | `LIFEBOAT_REPLICA_RESOURCE_GROUP` | `/subscriptions/{id}/resourceGroups/{name}`: where cross-region snapshot replicas are created (ARM `CopyStart`); unset: no snapshot copier (see [`crate::replicas`]) |
//! | `LIFEBOAT_ARM_ENDPOINT` | Azure Resource Manager's endpoint for a sovereign cloud (default `https://management.azure.com`) |
//! | `LIFEBOAT_S3_BUCKET` | with `aws`: the backups' bucket (required) |
//! | `LIFEBOAT_S3_ENDPOINT` | with `aws`: an endpoint other than AWS's, addressed path-style (moto: `http://127.0.0.1:5000`) |
//! | `AWS_REGION` | with `aws`: the bucket's region (Lambda sets it; else `AWS_DEFAULT_REGION`, else `us-east-1`) |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | with `aws`: the credentials (Lambda sets them from the function's role) |
//!
//! With `aws` there is no DynamoDB adapter: state stays in SQLite under the data directory, which
//! on Lambda is `/tmp` and lasts only as long as the execution environment.
//! | `LIFEBOAT_REPLICA_REGION` | the second region `copy` replicates to (as policies name it in `replication.region`) |
//! | `LIFEBOAT_REPLICA_BLOB_ENDPOINT` | that region's Blob endpoint (another account; Azurite: the same or a second account) |
//! | `LIFEBOAT_REPLICA_BLOB_CONTAINER` | the replicas' container there (default `lifeboat`) |
//!
//! With the embedded defaults, replicas go to `<data>/replica/<region>` for every region the
//! policies name, no setting needed. In Azure the identity needs Storage Blob Data Reader on the
//! source account (it includes `generateUserDelegationKey`, for the source SAS) and Storage Blob
//! Data Contributor on the replica's account.
//!
//! No setting holds a key or SAS: Azure access is by identity, and `dev-key` is Azurite's public
//! development key, refused for anything but a loopback endpoint.

use std::sync::Arc;

use anyhow::Context;
use lifeboat_shared::adapters::aws::{AwsCredentials, S3ObjectStore, S3Settings, region_from_env};
use lifeboat_shared::adapters::azure::{
    AZURITE_BLOB_VERSION, AzureAuthMode, BlobObjectCopier, BlobObjectStore, ClientSettings, TableStateStore,
};
use lifeboat_shared::ports::{ObjectStore, StateStore};

use crate::replica::Replica;

/// The backups' container unless `LIFEBOAT_BLOB_CONTAINER` says otherwise.
pub const DEFAULT_CONTAINER: &str = "lifeboat";

/// Where state and objects live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Storage {
    /// SQLite state and a local object directory, under the data directory.
    #[default]
    Embedded,
    /// Azure Table Storage and Blob Storage.
    Azure(AzureStorage),
    /// S3 for objects; SQLite state under the data directory (no DynamoDB adapter yet).
    Aws(AwsStorage),
}

/// The AWS storage settings (credentials are read from the environment when opening).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsStorage {
    /// The bucket, its region and an endpoint override.
    pub s3: S3Settings,
}

/// The Azure storage settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureStorage {
    /// Blob service endpoint.
    pub blob_endpoint: String,
    /// Container of the backups.
    pub container: String,
    /// Table service endpoint.
    pub table_endpoint: String,
    /// How to authenticate.
    pub auth: AzureAuthMode,
    /// The second region's storage, when one is configured.
    pub replica: Option<AzureReplica>,
}

/// The second region's Blob storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureReplica {
    /// The region.
    pub region: String,
    /// Its Blob endpoint.
    pub blob_endpoint: String,
    /// The replicas' container.
    pub container: String,
}

impl Storage {
    /// The choice made by the process environment.
    ///
    /// # Errors
    /// A missing or malformed setting, named.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The choice made by the settings `get` returns.
    ///
    /// # Errors
    /// A missing or malformed setting, named.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        match get("LIFEBOAT_STORAGE").as_deref().map(str::trim) {
            None | Some("embedded") => Ok(Self::Embedded),
            Some("azure") => {
                let required = |name: &str| {
                    get(name).with_context(|| format!("LIFEBOAT_STORAGE=azure needs {name} (see docs/azure.md)"))
                };
                let auth = auth_from_lookup(&get)?;
                let replica = match (get("LIFEBOAT_REPLICA_REGION"), get("LIFEBOAT_REPLICA_BLOB_ENDPOINT")) {
                    (Some(region), Some(blob_endpoint)) => Some(AzureReplica {
                        region: region.trim().to_owned(),
                        blob_endpoint,
                        container: get("LIFEBOAT_REPLICA_BLOB_CONTAINER")
                            .unwrap_or_else(|| DEFAULT_CONTAINER.to_owned()),
                    }),
                    (None, None) => None,
                    _ => anyhow::bail!(
                        "LIFEBOAT_REPLICA_REGION and LIFEBOAT_REPLICA_BLOB_ENDPOINT go together (see docs/azure.md)"
                    ),
                };
                Ok(Self::Azure(AzureStorage {
                    replica,
                    blob_endpoint: required("LIFEBOAT_BLOB_ENDPOINT")?,
                    container: get("LIFEBOAT_BLOB_CONTAINER").unwrap_or_else(|| DEFAULT_CONTAINER.to_owned()),
                    table_endpoint: required("LIFEBOAT_TABLE_ENDPOINT")?,
                    auth,
                }))
            }
            Some("aws") => {
                let bucket = get("LIFEBOAT_S3_BUCKET").context("LIFEBOAT_STORAGE=aws needs LIFEBOAT_S3_BUCKET")?;
                let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
                Ok(Self::Aws(AwsStorage {
                    s3: S3Settings {
                        bucket: bucket.trim().to_owned(),
                        region: region.unwrap_or_else(region_from_env),
                        endpoint: get("LIFEBOAT_S3_ENDPOINT").map(|e| e.trim().to_owned()),
                    },
                }))
            }
            Some(other) => anyhow::bail!("LIFEBOAT_STORAGE={other:?}: expected embedded, azure or aws"),
        }
    }

    /// One line for people: where things are kept.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "state and objects embedded in the data directory".to_owned(),
            Self::Azure(a) => format!(
                "state in Table Storage at {}, objects in container {} at {}",
                a.table_endpoint, a.container, a.blob_endpoint
            ),
            Self::Aws(a) => {
                format!("state embedded in the data directory, objects in S3 bucket {} ({})", a.s3.bucket, a.s3.region)
            }
        }
    }
}

/// The identity named by `LIFEBOAT_AZURE_AUTH` (default: managed identity, user-assigned when
/// `LIFEBOAT_AZURE_CLIENT_ID` or `AZURE_CLIENT_ID` is set), shared by storage and Service Bus.
///
/// # Errors
/// An unknown mode, named.
pub fn auth_from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<AzureAuthMode> {
    let mut auth: AzureAuthMode = match get("LIFEBOAT_AZURE_AUTH") {
        Some(mode) => mode.trim().parse().context("LIFEBOAT_AZURE_AUTH")?,
        None => AzureAuthMode::ManagedIdentity { client_id: None },
    };
    if let AzureAuthMode::ManagedIdentity { client_id } = &mut auth {
        *client_id = get("LIFEBOAT_AZURE_CLIENT_ID").or_else(|| get("AZURE_CLIENT_ID"));
    }
    Ok(auth)
}

impl AzureStorage {
    /// The state store and object store.
    ///
    /// # Errors
    /// When the credential or a client cannot be built.
    pub fn open(&self) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn ObjectStore>)> {
        let auth = self
            .auth
            .storage_auth(&[&self.blob_endpoint, &self.table_endpoint])
            .context("setting up Azure Storage credentials")?;
        let settings = self.client_settings();
        let state = TableStateStore::new(&self.table_endpoint, &auth, &settings).context("opening Table Storage")?;
        let objects = BlobObjectStore::new(&self.blob_endpoint, &self.container, &auth, &settings)
            .context("opening Blob Storage")?;
        Ok((Arc::new(state), Arc::new(objects)))
    }

    fn client_settings(&self) -> ClientSettings {
        match self.auth {
            AzureAuthMode::DevKey => ClientSettings {
                blob_service_version: Some(AZURITE_BLOB_VERSION.to_owned()),
                ..ClientSettings::default()
            },
            _ => ClientSettings::default(),
        }
    }

    /// The second region's replica (server-side copies), when one is configured.
    ///
    /// # Errors
    /// When the credential or a client cannot be built.
    pub fn open_replica(&self) -> anyhow::Result<Option<Replica>> {
        let Some(replica) = &self.replica else {
            return Ok(None);
        };
        let auth = self
            .auth
            .storage_auth(&[&self.blob_endpoint, &replica.blob_endpoint])
            .context("setting up Azure Storage credentials for the replica")?;
        let settings = self.client_settings();
        let source = BlobObjectStore::new(&self.blob_endpoint, &self.container, &auth, &settings)
            .context("opening Blob Storage")?;
        let target: Arc<BlobObjectStore> = Arc::new(
            BlobObjectStore::new(&replica.blob_endpoint, &replica.container, &auth, &settings)
                .context("opening the replica's Blob Storage")?,
        );
        let copier = BlobObjectCopier::new(Arc::new(source), &self.blob_endpoint, &auth, target.clone(), &settings)
            .context("setting up server-side copies")?;
        let snapshots = crate::replicas::snapshot_copier_from_env()?;
        Ok(Some(Replica { region: replica.region.clone(), copier: Arc::new(copier), store: target, snapshots }))
    }
}

impl AwsStorage {
    /// The object store, signing with the credentials of the environment.
    ///
    /// # Errors
    /// Missing credentials, or an invalid bucket or endpoint.
    pub fn open(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let credentials = AwsCredentials::from_env().context("LIFEBOAT_STORAGE=aws needs AWS credentials")?;
        let store = S3ObjectStore::new(&self.s3, credentials).context("opening S3")?;
        Ok(Arc::new(store))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn nothing_set_means_embedded() {
        assert_eq!(Storage::from_lookup(lookup(&[])).expect("choice"), Storage::Embedded);
    }

    #[test]
    fn azure_reads_endpoints_auth_and_identity() {
        let choice = Storage::from_lookup(lookup(&[
            ("LIFEBOAT_STORAGE", "azure"),
            ("LIFEBOAT_BLOB_ENDPOINT", "https://a.blob.core.windows.net"),
            ("LIFEBOAT_TABLE_ENDPOINT", "https://a.table.core.windows.net"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
        ]))
        .expect("choice");
        let Storage::Azure(azure) = choice else { panic!("expected azure") };
        assert_eq!(azure.container, DEFAULT_CONTAINER);
        assert_eq!(
            azure.auth,
            AzureAuthMode::ManagedIdentity { client_id: Some("00000000-0000-0000-0000-000000000001".into()) }
        );
    }

    #[test]
    fn aws_reads_bucket_region_and_endpoint() {
        let choice = Storage::from_lookup(lookup(&[
            ("LIFEBOAT_STORAGE", "aws"),
            ("LIFEBOAT_S3_BUCKET", "lifeboat-backups"),
            ("AWS_REGION", "eu-west-1"),
            ("LIFEBOAT_S3_ENDPOINT", "http://127.0.0.1:5000"),
        ]))
        .expect("choice");
        let Storage::Aws(aws) = choice else { panic!("expected aws") };
        assert_eq!(aws.s3.bucket, "lifeboat-backups");
        assert_eq!(aws.s3.region, "eu-west-1");
        assert_eq!(aws.s3.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        let err = Storage::from_lookup(lookup(&[("LIFEBOAT_STORAGE", "aws")])).expect_err("no bucket");
        assert!(format!("{err:#}").contains("LIFEBOAT_S3_BUCKET"), "{err:#}");
    }

    #[test]
    fn missing_and_unknown_settings_are_named() {
        let err = Storage::from_lookup(lookup(&[("LIFEBOAT_STORAGE", "azure")])).expect_err("no endpoints");
        assert!(format!("{err:#}").contains("LIFEBOAT_BLOB_ENDPOINT"), "{err:#}");
        let err = Storage::from_lookup(lookup(&[("LIFEBOAT_STORAGE", "s3")])).expect_err("unknown");
        assert!(format!("{err:#}").contains("s3"), "{err:#}");
        let err = Storage::from_lookup(lookup(&[
            ("LIFEBOAT_STORAGE", "azure"),
            ("LIFEBOAT_BLOB_ENDPOINT", "https://a.blob.core.windows.net"),
            ("LIFEBOAT_TABLE_ENDPOINT", "https://a.table.core.windows.net"),
            ("LIFEBOAT_AZURE_AUTH", "account-key"),
        ]))
        .expect_err("keys are not an auth mode");
        assert!(format!("{err:#}").contains("account-key"), "{err:#}");
    }

    #[test]
    fn the_replica_is_read_from_its_three_settings() {
        let base = [
            ("LIFEBOAT_STORAGE", "azure"),
            ("LIFEBOAT_BLOB_ENDPOINT", "https://a.blob.core.windows.net"),
            ("LIFEBOAT_TABLE_ENDPOINT", "https://a.table.core.windows.net"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| Storage::from_lookup(lookup(&[&base[..], extra].concat()));
        let Storage::Azure(azure) = with(&[
            ("LIFEBOAT_REPLICA_REGION", "northeurope"),
            ("LIFEBOAT_REPLICA_BLOB_ENDPOINT", "https://b.blob.core.windows.net"),
        ])
        .expect("valid") else {
            panic!("azure storage expected");
        };
        let replica = azure.replica.expect("a replica");
        assert_eq!(
            (replica.region.as_str(), replica.blob_endpoint.as_str(), replica.container.as_str()),
            ("northeurope", "https://b.blob.core.windows.net", DEFAULT_CONTAINER)
        );
        let err = with(&[("LIFEBOAT_REPLICA_REGION", "northeurope")]).expect_err("endpoint missing");
        assert!(format!("{err:#}").contains("LIFEBOAT_REPLICA_BLOB_ENDPOINT"), "{err:#}");
    }

    #[test]
    fn the_dev_key_is_refused_off_this_machine() {
        let azure = AzureStorage {
            blob_endpoint: "https://a.blob.core.windows.net".into(),
            container: DEFAULT_CONTAINER.into(),
            table_endpoint: "https://a.table.core.windows.net".into(),
            auth: AzureAuthMode::DevKey,
            replica: None,
        };
        let err = azure.open().err().expect("refused");
        assert!(format!("{err:#}").contains("loopback"), "{err:#}");
    }
}
