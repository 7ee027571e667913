//! age X25519 key pairs, for tests and the CLI (`lifeboat keys generate`).

use age::secrecy::ExposeSecret;

/// Generates an age X25519 identity: `(secret, public)`, i.e. the `AGE-SECRET-KEY-1…` string
/// that decrypts (keep it out of logs and out of the cluster being backed up) and the `age1…`
/// recipient to put in [`super::ArchiveOptions::recipients`]. Both work with the `age` tool.
pub fn generate_identity() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    let secret = identity.to_string().expose_secret().to_owned();
    (secret, identity.to_public().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_age_s_prefixes_and_differ() {
        let (secret, public) = generate_identity();
        assert!(secret.starts_with("AGE-SECRET-KEY-1"), "secret prefix");
        assert!(public.starts_with("age1"), "{public}");
        assert_ne!(generate_identity().0, secret);
    }
}
