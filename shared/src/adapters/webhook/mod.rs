//! Alert sinks that post to webhooks: Microsoft Teams (Adaptive Card through a Workflows
//! webhook), Slack (incoming webhook) and a generic JSON webhook signed with HMAC-SHA256.
//! The HTTP sinks need the `azure` feature (they use `azure_core`'s HTTP client); secrets and
//! signatures do not.

#[cfg(feature = "azure")]
mod http;
pub mod secret;
pub mod signature;
#[cfg(feature = "azure")]
mod signed;
#[cfg(feature = "azure")]
mod slack;
#[cfg(feature = "azure")]
mod teams;
#[cfg(feature = "azure")]
mod text;

#[cfg(feature = "azure")]
pub use http::BadUrl;
pub use secret::{Secret, SecretError, SecretSource};
#[cfg(feature = "azure")]
pub use signed::SignedWebhookAlertSink;
#[cfg(feature = "azure")]
pub use slack::{SlackAlertSink, slack_payload};
#[cfg(feature = "azure")]
pub use teams::{TeamsAlertSink, teams_payload};
