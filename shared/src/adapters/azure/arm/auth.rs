//! The bearer token on ARM requests: the SDK's policy over https; over plain http (only to a
//! loopback test server, which the SDK's policy refuses) a minimal policy of ours.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};

/// The auth policy for an endpoint with `scheme` (`https`, or `http` on loopback).
pub(super) fn policy(scheme: &str, credential: Arc<dyn TokenCredential>, scope: &'static str) -> Arc<dyn Policy> {
    match scheme {
        "https" => Arc::new(BearerTokenAuthorizationPolicy::new(credential, [scope])),
        _ => Arc::new(LoopbackBearerPolicy { credential, scope }),
    }
}

/// A token per try (the credential caches where it can) in the `Authorization` header.
#[derive(Debug)]
struct LoopbackBearerPolicy {
    credential: Arc<dyn TokenCredential>,
    scope: &'static str,
}

#[async_trait]
impl Policy for LoopbackBearerPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let token = self.credential.get_token(&[self.scope], None).await?;
        request.insert_header("authorization", format!("Bearer {}", token.token.secret()));
        match next.split_first() {
            Some((policy, rest)) => policy.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "the pipeline ends before the transport",
            )),
        }
    }
}
