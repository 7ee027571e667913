//! AWS credentials from the environment, as Lambda (and the AWS CLI's `export-credentials`)
//! provide them.

/// An access key, its secret and, for temporary credentials, the session token.
#[derive(Clone)]
pub struct AwsCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` (Lambda's role credentials always carry one).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the token: only which key is in use.
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// Credentials are missing from the environment.
#[derive(Debug, thiserror::Error)]
#[error("{variable} is not set: on Lambda the function's role provides it; elsewhere export the credentials")]
pub struct CredentialsError {
    /// The variable missing.
    pub variable: &'static str,
}

impl AwsCredentials {
    /// Static credentials (tests, moto).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self { access_key_id: access_key_id.into(), secret_access_key: secret_access_key.into(), session_token: None }
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` of the process.
    ///
    /// # Errors
    /// The first of the two required variables that is missing or empty.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The same, from the settings `get` returns.
    ///
    /// # Errors
    /// The first of the two required variables that is missing or empty.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let required = |variable: &'static str| get(variable).ok_or(CredentialsError { variable });
        Ok(Self {
            access_key_id: required("AWS_ACCESS_KEY_ID")?,
            secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
            session_token: get("AWS_SESSION_TOKEN"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_gives_key_secret_and_token_and_debug_hides_the_secret() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("very-secret".to_owned()),
            "AWS_SESSION_TOKEN" => Some("token-value".to_owned()),
            _ => None,
        };
        let credentials = AwsCredentials::from_lookup(env).expect("credentials");
        assert_eq!(credentials.session_token.as_deref(), Some("token-value"));
        let shown = format!("{credentials:?}");
        assert!(shown.contains("AKIDEXAMPLE") && !shown.contains("very-secret") && !shown.contains("token-value"));
        let missing = AwsCredentials::from_lookup(|name| env(name).filter(|_| name != "AWS_SECRET_ACCESS_KEY"));
        assert_eq!(missing.expect_err("no secret").variable, "AWS_SECRET_ACCESS_KEY");
    }
}
