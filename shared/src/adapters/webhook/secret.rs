//! Secrets of the webhook sinks (URLs, HMAC keys), read from a file or an environment variable
//! named in the settings, and never shown: `Debug` prints `[redacted]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a secret is read from: `{ file: PATH }` or `{ env: NAME }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SecretSpec", into = "SecretSpec")]
pub enum SecretSource {
    /// A file holding the secret (surrounding whitespace is trimmed): a mounted Key Vault secret.
    File(PathBuf),
    /// An environment variable holding it (an app setting, possibly a Key Vault reference).
    Env(String),
}

/// The written form of a [`SecretSource`] (YAML enums would otherwise need tags).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
}

impl TryFrom<SecretSpec> for SecretSource {
    type Error = &'static str;
    fn try_from(spec: SecretSpec) -> Result<Self, Self::Error> {
        match (spec.file, spec.env) {
            (Some(file), None) => Ok(SecretSource::File(file)),
            (None, Some(env)) => Ok(SecretSource::Env(env)),
            _ => Err("set exactly one of file and env"),
        }
    }
}

impl From<SecretSource> for SecretSpec {
    fn from(source: SecretSource) -> Self {
        match source {
            SecretSource::File(file) => SecretSpec { file: Some(file), env: None },
            SecretSource::Env(env) => SecretSpec { file: None, env: Some(env) },
        }
    }
}

/// A secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value: pass it on, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Why a secret could not be read. Messages name the file or variable, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("reading secret file {path} failed")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The variable is not set (or not Unicode).
    #[error("environment variable {0} is not set")]
    Env(String),
    /// The secret is empty.
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret.
    ///
    /// # Errors
    /// [`SecretError`] when it is missing or empty.
    pub fn read(&self) -> Result<Secret, SecretError> {
        let (value, origin) = match self {
            SecretSource::File(path) => (
                std::fs::read_to_string(path).map_err(|source| SecretError::File { path: path.clone(), source })?,
                path.display().to_string(),
            ),
            SecretSource::Env(name) => (std::env::var(name).map_err(|_| SecretError::Env(name.clone()))?, name.clone()),
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(Secret(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("https://hooks.example/very-secret-token");
        assert!(!format!("{s:?}").contains("very-secret"), "{s:?}");
    }

    #[test]
    fn a_file_secret_is_trimmed_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  k3y\n").unwrap();
        assert_eq!(SecretSource::File(path.clone()).read().unwrap().expose(), "k3y");
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path).read().unwrap_err();
        assert!(matches!(err, SecretError::Empty(_)), "{err}");
    }
}
