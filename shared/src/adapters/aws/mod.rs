//! AWS adapters: [`S3ObjectStore`] (S3) and [`SqsBus`] (sending to SQS), both on a small client
//! of our own: `reqwest` (already in the tree through `azure_core`) with Signature Version 4
//! signing ([`sigv4`], on the `hmac` and `sha2` crates Lifeboat already uses) and `quick-xml`
//! (also already in the tree) for S3's few XML answers. The AWS SDK for Rust or the
//! `object_store` crate would each add a large dependency tree (smithy runtime, or a second HTTP
//! stack and its features) to build on every change, for the eight calls used here.
//!
//! Credentials come from the environment, as Lambda provides them ([`AwsCredentials::from_env`]);
//! an endpoint override points both clients at an emulator (moto) instead of AWS.

mod credentials;
mod http;
pub mod s3;
pub mod sigv4;
pub mod sqs;

pub use credentials::{AwsCredentials, CredentialsError};
pub use s3::{S3ObjectStore, S3Settings};
pub use sqs::{SqsBus, SqsSettings};

/// The region when neither the settings nor `AWS_REGION` / `AWS_DEFAULT_REGION` name one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The region of the environment: `AWS_REGION` (set by Lambda), else `AWS_DEFAULT_REGION`, else
/// [`DEFAULT_REGION`].
pub fn region_from_env() -> String {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned())
}

/// Why an AWS adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The endpoint is not an http(s) URL without path, query or fragment.
    #[error("invalid AWS endpoint {endpoint:?}: expected an http(s) URL such as https://s3.eu-west-1.amazonaws.com")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
    },
    /// The bucket name breaks S3's rules.
    #[error("invalid bucket name {bucket:?}: 3 to 63 lowercase letters, digits, dots and dashes")]
    InvalidBucket {
        /// The name given.
        bucket: String,
    },
    /// The queue URL prefix is not an http(s) URL.
    #[error(
        "invalid SQS queue URL prefix {prefix:?}: expected e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/lifeboat-"
    )]
    InvalidQueuePrefix {
        /// The prefix given.
        prefix: String,
    },
    /// Building the HTTP client failed.
    #[error("building the HTTP client failed")]
    Client(#[source] reqwest::Error),
}
