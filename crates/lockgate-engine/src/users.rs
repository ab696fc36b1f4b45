//! The users who may sign requests: names, access keys, secrets and console passwords.
//!
//! Users are created by `lockgate user add` (even while a server runs), so the directory answers
//! from memory and reloads from the store when it meets an access key it does not know, at most
//! once a second, so unknown keys cannot turn into a database scan per request. The server also
//! reloads it every few seconds, so a removed user loses access without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lockgate_model::Caller;
use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// A user as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    /// The user's name; the last part of its ARN.
    pub name: String,
    /// The account it belongs to.
    pub account_id: String,
    /// The access key id requests are signed with.
    pub access_key_id: String,
    /// The secret access key (SigV4 needs the secret itself, as AWS keeps it).
    pub secret_access_key: String,
    /// The console password's PHC-format hash.
    pub password_hash: Option<String>,
    /// When the user was created (ms since the epoch).
    pub created: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    /// The caller identity requests signed with this user's key run as.
    pub fn caller(&self) -> Caller {
        Caller::new(&self.name, &self.account_id)
    }
}

struct Cache {
    by_key: HashMap<String, UserRecord>,
    last_reload: Option<std::time::Instant>,
}

/// Users by access key, cached from the store.
pub struct UserDirectory {
    store: Arc<dyn Store>,
    cache: Mutex<Cache>,
}

impl UserDirectory {
    /// Loads every user.
    pub async fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let dir = UserDirectory {
            store,
            cache: Mutex::new(Cache {
                by_key: HashMap::new(),
                last_reload: None,
            }),
        };
        dir.reload().await?;
        Ok(dir)
    }

    /// Re-reads every user from the store, so users added or removed by `lockgate user` while
    /// the server runs take effect.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut by_key = HashMap::new();
        for r in self.store.load(Collection::User).await? {
            let user: UserRecord = r.body.decode().map_err(|e| StoreError::Corrupt {
                collection: r.collection.as_str(),
                key: r.key.clone(),
                reason: e.to_string(),
            })?;
            by_key.insert(user.access_key_id.clone(), user);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.by_key = by_key;
        cache.last_reload = Some(std::time::Instant::now());
        Ok(())
    }

    /// The user owning `access_key_id`, if any.
    pub async fn by_access_key(&self, access_key_id: &str) -> Option<UserRecord> {
        let stale = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(u) = cache.by_key.get(access_key_id) {
                return Some(u.clone());
            }
            cache
                .last_reload
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
        };
        if stale {
            if let Err(e) = self.reload().await {
                tracing::error!(error = %e, "could not reload users");
            }
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.by_key.get(access_key_id).cloned()
    }

    /// Whether no user is known yet (nobody could sign a request).
    pub fn is_empty(&self) -> bool {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .is_empty()
    }

    /// The user with this name, from memory (refreshed every few seconds), for checking on each
    /// console request that a signed-in user still exists without a database round trip.
    pub fn named(&self, name: &str) -> Option<UserRecord> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .values()
            .find(|u| u.name == name)
            .cloned()
    }

    /// The user with this name (from the store).
    pub async fn by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        get_user(self.store.as_ref(), name).await
    }
}

/// Reads one user by name.
pub async fn get_user(store: &dyn Store, name: &str) -> Result<Option<UserRecord>, StoreError> {
    match store.get(Collection::User, name).await? {
        Some(r) => r.body.decode().map(Some).map_err(|e| StoreError::Corrupt {
            collection: "users",
            key: name.to_string(),
            reason: e.to_string(),
        }),
        None => Ok(None),
    }
}

/// Every user, ordered by name.
pub async fn list_users(store: &dyn Store) -> Result<Vec<UserRecord>, StoreError> {
    let mut users = Vec::new();
    for r in store.load(Collection::User).await? {
        users.push(
            r.body
                .decode::<UserRecord>()
                .map_err(|e| StoreError::Corrupt {
                    collection: "users",
                    key: r.key.clone(),
                    reason: e.to_string(),
                })?,
        );
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

/// Stores a user (replacing one of the same name).
pub async fn put_user(store: &dyn Store, user: &UserRecord) -> Result<(), StoreError> {
    let body = serde_json::to_value(user).map_err(|e| StoreError::Backend(e.to_string()))?;
    store
        .commit(vec![Mutation::Put(Record::new(
            Collection::User,
            user.name.clone(),
            body,
        ))])
        .await
}

/// Removes a user; returns whether it existed.
pub async fn remove_user(store: &dyn Store, name: &str) -> Result<bool, StoreError> {
    let existed = get_user(store, name).await?.is_some();
    store
        .commit(vec![Mutation::Delete {
            collection: Collection::User,
            key: name.to_string(),
        }])
        .await?;
    Ok(existed)
}
