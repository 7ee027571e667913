//! Where chained messages are sent, chosen by configuration (environment variables, which are
//! app settings in Azure Functions):
//!
//! | variable | meaning |
//! |---|---|
//! | `LIFEBOAT_BUS` | `embedded` (default: SQLite queues under the data dir, pumped by `lifeboat up`), `servicebus` or `sqs` |
//! | `LIFEBOAT_SERVICEBUS_NAMESPACE` | the namespace's host name, e.g. `lifeboat-prod.servicebus.windows.net` |
//! | `LIFEBOAT_AZURE_AUTH`, `LIFEBOAT_AZURE_CLIENT_ID` | the identity, as for storage (see [`crate::storage`]); `dev-key` is refused |
//! | `LIFEBOAT_SQS_QUEUE_URL_PREFIX` | with `sqs`: prepended to a queue's name, e.g. `https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-` |
//! | `LIFEBOAT_SQS_FIFO` | with `sqs`: `true` when the queues are FIFO (`<name>.fifo`; they take no scheduled messages), default `false` |
//! | `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | with `sqs`: region and credentials (Lambda sets them) |
//!
//! With Service Bus or SQS, every send (handlers and CLI) goes through [`ServiceBusBus`]; receiving is
//! the host's (Functions triggers, Lambda's SQS event source mappings), so the app has no local queues to pump or report.

use std::sync::Arc;

use anyhow::Context;
use lifeboat_shared::adapters::aws::{AwsCredentials, SqsBus, SqsSettings, region_from_env};
use lifeboat_shared::adapters::azure::{AzureAuthMode, ServiceBusBus, ServiceBusSettings};
use lifeboat_shared::ports::Bus;

use crate::storage::auth_from_lookup;

/// Where messages are sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BusChoice {
    /// SQLite queues under the data directory (the local runtime receives from them).
    #[default]
    Embedded,
    /// Azure Service Bus.
    ServiceBus(ServiceBusChoice),
    /// Amazon SQS (credentials are read from the environment when opening).
    Sqs(SqsSettings),
}

/// The Service Bus settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBusChoice {
    /// The namespace's host name.
    pub namespace: String,
    /// How to authenticate (an Entra ID identity).
    pub auth: AzureAuthMode,
}

impl BusChoice {
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
    /// A missing or malformed setting, named (a value that looks like a key is not repeated).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        match get("LIFEBOAT_BUS").as_deref().map(str::trim) {
            None | Some("embedded") => Ok(Self::Embedded),
            Some("servicebus") => {
                let namespace = get("LIFEBOAT_SERVICEBUS_NAMESPACE")
                    .context("LIFEBOAT_BUS=servicebus needs LIFEBOAT_SERVICEBUS_NAMESPACE (see docs/azure.md)")?;
                let namespace = check_namespace(namespace.trim())?;
                let auth = auth_from_lookup(&get)?;
                anyhow::ensure!(
                    auth != AzureAuthMode::DevKey,
                    "LIFEBOAT_BUS=servicebus needs an Entra ID identity: LIFEBOAT_AZURE_AUTH=dev-key is Azurite's \
                     storage key (use managed-identity, workload-identity or azure-cli)"
                );
                Ok(Self::ServiceBus(ServiceBusChoice { namespace, auth }))
            }
            Some("sqs") => {
                let prefix = get("LIFEBOAT_SQS_QUEUE_URL_PREFIX")
                    .context("LIFEBOAT_BUS=sqs needs LIFEBOAT_SQS_QUEUE_URL_PREFIX (e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-)")?;
                let fifo = match get("LIFEBOAT_SQS_FIFO").as_deref().map(str::trim) {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => anyhow::bail!("LIFEBOAT_SQS_FIFO={other:?}: expected true or false"),
                };
                let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")).unwrap_or_else(region_from_env);
                Ok(Self::Sqs(SqsSettings { queue_url_prefix: prefix.trim().to_owned(), region, fifo }))
            }
            Some(other) => anyhow::bail!("LIFEBOAT_BUS={other:?}: expected embedded, servicebus or sqs"),
        }
    }

    /// One line for people: where messages go.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "messages in SQLite queues in the data directory".to_owned(),
            Self::ServiceBus(sb) => format!("messages sent to Service Bus namespace {}", sb.namespace),
            Self::Sqs(sqs) => format!("messages sent to SQS queues {}<queue>", sqs.queue_url_prefix),
        }
    }
}

/// `namespace` if it is a host name such as `name.servicebus.windows.net`.
fn check_namespace(namespace: &str) -> anyhow::Result<String> {
    // A connection string is a secret: say what is wrong without repeating it.
    anyhow::ensure!(
        !namespace.to_ascii_lowercase().contains("sharedaccess"),
        "LIFEBOAT_SERVICEBUS_NAMESPACE holds a connection string or key: give the namespace's host name \
         (e.g. lifeboat-prod.servicebus.windows.net); access is by identity, never by key"
    );
    let label_ok = |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let host_ok = namespace.contains('.') && namespace.split('.').all(label_ok);
    anyhow::ensure!(
        host_ok,
        "LIFEBOAT_SERVICEBUS_NAMESPACE={namespace:?}: expected the namespace's host name, e.g. \
         lifeboat-prod.servicebus.windows.net (no https://, no path)"
    );
    Ok(namespace.to_ascii_lowercase())
}

impl ServiceBusChoice {
    /// The bus.
    ///
    /// # Errors
    /// When the credential or the client cannot be built.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Bus>> {
        let credential = self.auth.token_credential("Service Bus").context("setting up Service Bus credentials")?;
        let bus = ServiceBusBus::for_namespace(&self.namespace, credential, &ServiceBusSettings::default())
            .context("opening Service Bus")?;
        Ok(Arc::new(bus))
    }
}

/// The SQS bus of `settings`, with the environment's credentials.
///
/// # Errors
/// Missing credentials or an invalid queue URL prefix.
pub fn open_sqs(settings: &SqsSettings) -> anyhow::Result<Arc<dyn Bus>> {
    let credentials = AwsCredentials::from_env().context("LIFEBOAT_BUS=sqs needs AWS credentials")?;
    Ok(Arc::new(SqsBus::new(settings.clone(), credentials).context("opening SQS")?))
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
        assert_eq!(BusChoice::from_lookup(lookup(&[])).expect("choice"), BusChoice::Embedded);
        let explicit = BusChoice::from_lookup(lookup(&[("LIFEBOAT_BUS", "embedded")])).expect("choice");
        assert_eq!(explicit, BusChoice::Embedded);
    }

    #[test]
    fn servicebus_reads_namespace_and_identity() {
        let choice = BusChoice::from_lookup(lookup(&[
            ("LIFEBOAT_BUS", "servicebus"),
            ("LIFEBOAT_SERVICEBUS_NAMESPACE", " Lifeboat-Prod.servicebus.windows.net "),
            ("LIFEBOAT_AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002"),
        ]))
        .expect("choice");
        let expected = ServiceBusChoice {
            namespace: "lifeboat-prod.servicebus.windows.net".into(),
            auth: AzureAuthMode::ManagedIdentity { client_id: Some("00000000-0000-0000-0000-000000000002".into()) },
        };
        assert_eq!(choice, BusChoice::ServiceBus(expected));
        let cli = BusChoice::from_lookup(lookup(&[
            ("LIFEBOAT_BUS", "servicebus"),
            ("LIFEBOAT_SERVICEBUS_NAMESPACE", "x.servicebus.windows.net"),
            ("LIFEBOAT_AZURE_AUTH", "azure-cli"),
        ]))
        .expect("choice");
        assert!(matches!(cli, BusChoice::ServiceBus(ServiceBusChoice { auth: AzureAuthMode::AzureCli, .. })));
    }

    #[test]
    fn sqs_reads_prefix_fifo_and_region() {
        let choice = BusChoice::from_lookup(lookup(&[
            ("LIFEBOAT_BUS", "sqs"),
            ("LIFEBOAT_SQS_QUEUE_URL_PREFIX", "https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-"),
            ("LIFEBOAT_SQS_FIFO", "true"),
            ("AWS_REGION", "eu-west-1"),
        ]))
        .expect("choice");
        let BusChoice::Sqs(sqs) = choice else { panic!("expected sqs") };
        assert!(sqs.fifo);
        assert_eq!(sqs.region, "eu-west-1");
        let err = BusChoice::from_lookup(lookup(&[("LIFEBOAT_BUS", "sqs")])).expect_err("no prefix");
        assert!(format!("{err:#}").contains("LIFEBOAT_SQS_QUEUE_URL_PREFIX"), "{err:#}");
        let err = BusChoice::from_lookup(lookup(&[
            ("LIFEBOAT_BUS", "sqs"),
            ("LIFEBOAT_SQS_QUEUE_URL_PREFIX", "https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-"),
            ("LIFEBOAT_SQS_FIFO", "yes"),
        ]))
        .expect_err("not a boolean");
        assert!(format!("{err:#}").contains("LIFEBOAT_SQS_FIFO"), "{err:#}");
    }

    #[test]
    fn bad_settings_are_refused_clearly() {
        let err = |pairs: &[(&str, &str)]| format!("{:#}", BusChoice::from_lookup(lookup(pairs)).expect_err("refused"));
        let e = err(&[("LIFEBOAT_BUS", "kafka")]);
        assert!(e.contains("\"kafka\"") && e.contains("servicebus") && e.contains("sqs"), "{e}");
        let e = err(&[("LIFEBOAT_BUS", "servicebus")]);
        assert!(e.contains("LIFEBOAT_SERVICEBUS_NAMESPACE"), "{e}");
        for bad in ["https://x.servicebus.windows.net", "x.servicebus.windows.net/q", "lifeboat", "a..b"] {
            let e = err(&[("LIFEBOAT_BUS", "servicebus"), ("LIFEBOAT_SERVICEBUS_NAMESPACE", bad)]);
            assert!(e.contains("host name"), "{bad}: {e}");
        }
        let secret = "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0";
        let e = err(&[("LIFEBOAT_BUS", "servicebus"), ("LIFEBOAT_SERVICEBUS_NAMESPACE", secret)]);
        assert!(e.contains("connection string") && !e.contains("c2VjcmV0"), "{e}");
        let e = err(&[
            ("LIFEBOAT_BUS", "servicebus"),
            ("LIFEBOAT_SERVICEBUS_NAMESPACE", "x.servicebus.windows.net"),
            ("LIFEBOAT_AZURE_AUTH", "dev-key"),
        ]);
        assert!(e.contains("dev-key"), "{e}");
        let e = err(&[
            ("LIFEBOAT_BUS", "servicebus"),
            ("LIFEBOAT_SERVICEBUS_NAMESPACE", "x.servicebus.windows.net"),
            ("LIFEBOAT_AZURE_AUTH", "sas"),
        ]);
        assert!(e.contains("LIFEBOAT_AZURE_AUTH"), "{e}");
    }
}
