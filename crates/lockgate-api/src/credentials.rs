//! Where access keys come from: the [`CredentialsProvider`] the SigV4 verifier asks for the secret
//! behind an access key id, and the [`Caller`] that key authenticates as.
//!
//! The application owns the real provider (users live in the store); this crate only defines the
//! seam and a fixed in-memory [`StaticCredentials`] for tests and embedding.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use lockgate_model::Caller;

/// The secret half of an access key and the identity it signs for.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The secret access key that request signatures are derived from.
    pub secret_access_key: String,
    /// The user a correctly signed request runs as.
    pub caller: Caller,
}

impl Credential {
    /// A credential whose secret is `secret_access_key`, acting as `caller`.
    pub fn new(secret_access_key: impl Into<String>, caller: Caller) -> Self {
        Credential {
            secret_access_key: secret_access_key.into(),
            caller,
        }
    }
}

// Hand-written so that a credential in a log line or a panic message never shows its secret.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("secret_access_key", &"[REDACTED]")
            .field("caller", &self.caller)
            .finish()
    }
}

/// Looks up the secret behind an access key id.
#[async_trait]
pub trait CredentialsProvider: Send + Sync {
    /// The credential for `access_key_id`, or `None` when the key is unknown or disabled; the API
    /// then answers `UnrecognizedClientException`.
    async fn lookup(&self, access_key_id: &str) -> Option<Credential>;
}

/// A fixed set of access keys held in memory.
#[derive(Clone, Debug, Default)]
pub struct StaticCredentials {
    keys: HashMap<String, Credential>,
}

impl StaticCredentials {
    /// An empty set: every request is answered `UnrecognizedClientException`.
    pub fn new() -> Self {
        StaticCredentials::default()
    }

    /// Adds (or replaces) the key `access_key_id` with `secret_access_key`, acting as `caller`.
    pub fn insert(
        &mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        caller: Caller,
    ) {
        self.keys.insert(
            access_key_id.into(),
            Credential::new(secret_access_key, caller),
        );
    }

    /// [`StaticCredentials::insert`] in builder form.
    pub fn with_key(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        caller: Caller,
    ) -> Self {
        self.insert(access_key_id, secret_access_key, caller);
        self
    }
}

#[async_trait]
impl CredentialsProvider for StaticCredentials {
    async fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        self.keys.get(access_key_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_never_shows_its_secret_in_debug_output() {
        let credential = Credential::new(
            "wJalrXUtnFEMI/K7MDENG",
            Caller::new("alice", "123456789012"),
        );
        let debug = format!("{credential:?}");
        assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
        assert!(debug.contains("alice"), "{debug}");

        let set = StaticCredentials::new().with_key(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG",
            Caller::new("alice", "123456789012"),
        );
        assert!(!format!("{set:?}").contains("wJalrXUtnFEMI"));
    }

    #[tokio::test]
    async fn static_credentials_find_known_keys_only() {
        let set = StaticCredentials::new().with_key(
            "AKIDEXAMPLE",
            "secret",
            Caller::new("alice", "123456789012"),
        );
        let found = set.lookup("AKIDEXAMPLE").await.expect("known key");
        assert_eq!(found.secret_access_key, "secret");
        assert_eq!(found.caller.user_name, "alice");
        assert!(set.lookup("AKIDOTHER").await.is_none());
    }
}
