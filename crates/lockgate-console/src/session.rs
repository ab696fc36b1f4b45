//! Console sessions: a random cookie value per sign-in, stored durably by its SHA-256 hash.
//!
//! The cookie value itself is never stored, so a copy of the database does not let anyone act as
//! a signed-in user. Sessions live in the store (so they survive restarts and are shared by
//! replicas) and in a small in-memory cache, so a page view costs no database round trip. Each
//! session carries its own CSRF token, which every state-changing form must echo.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::csrf::random_token;

/// How long a session lasts after sign-in, whatever the activity.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// A signed-in session as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The signed-in user's name.
    pub user: String,
    /// The CSRF token forms of this session must carry.
    pub csrf: String,
    /// When the session began (ms since the epoch).
    pub created: i64,
    /// When the session ends (ms since the epoch).
    pub expires: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("csrf", &"<redacted>")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The wall clock in milliseconds since the epoch (sessions are not engine state, so they use
/// real time even when a test moves the engine's clock).
pub fn now_millis() -> i64 {
    lockgate_model::Clock::now_millis(&lockgate_model::SystemClock)
}

fn key_of(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// Every session, by the hash of its cookie value.
pub struct Sessions {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Sessions kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Sessions {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `user`, durably, and returns the cookie value and the session.
    pub async fn create(&self, user: &str, now: i64) -> Result<(String, Session), StoreError> {
        let cookie = random_token();
        let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let session = Session {
            user: user.to_string(),
            csrf: random_token(),
            created: now,
            expires: now.saturating_add(lifetime),
        };
        let key = key_of(&cookie);
        let body =
            serde_json::to_value(&session).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.store
            .commit(vec![Mutation::Put(
                Record::new(Collection::Session, key.clone(), body)
                    .with_parent(user)
                    .with_due_at(session.expires),
            )])
            .await?;
        self.cache().insert(key, session.clone());
        Ok((cookie, session))
    }

    /// The live session for a cookie value, if any (expired sessions are not returned).
    pub async fn find(&self, cookie: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let key = key_of(cookie);
        let cached = self.cache().get(&key).cloned();
        let session = match cached {
            Some(s) => Some(s),
            None => match self.store.get(Collection::Session, &key).await? {
                Some(r) => {
                    let s: Session = r.body.decode().map_err(|e| StoreError::Corrupt {
                        collection: "sessions",
                        key: key.clone(),
                        reason: e.to_string(),
                    })?;
                    self.cache().insert(key, s.clone());
                    Some(s)
                }
                None => None,
            },
        };
        Ok(session.filter(|s| s.expires > now))
    }

    /// Ends the session of a cookie value (signing out), durably.
    pub async fn end(&self, cookie: &str) -> Result<(), StoreError> {
        let key = key_of(cookie);
        self.store
            .commit(vec![Mutation::Delete {
                collection: Collection::Session,
                key: key.clone(),
            }])
            .await?;
        self.cache().remove(&key);
        Ok(())
    }

    /// Deletes sessions that expired by `now`; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        let due = self.store.due(Collection::Session, now, 1000).await?;
        let n = due.len();
        if n > 0 {
            let keys: Vec<String> = due.into_iter().map(|r| r.key).collect();
            self.store
                .commit(
                    keys.iter()
                        .map(|k| Mutation::Delete {
                            collection: Collection::Session,
                            key: k.clone(),
                        })
                        .collect(),
                )
                .await?;
            let mut cache = self.cache();
            for k in keys {
                cache.remove(&k);
            }
        }
        self.cache().retain(|_, s| s.expires > now);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockgate_store_sqlite::SqliteStore;

    fn sessions() -> (tempfile::TempDir, SqliteStore, Sessions) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open store");
        let sessions = Sessions::new(Arc::new(store.clone()));
        (dir, store, sessions)
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_cookie_until_it_expires() {
        let (_dir, _store, sessions) = sessions();
        let (cookie, s) = sessions.create("Alice", 1_000).await.expect("create");
        let found = sessions.find(&cookie, 2_000).await.expect("find");
        assert_eq!(found.map(|f| f.user), Some("Alice".to_string()));
        assert!(sessions
            .find(&cookie, s.expires)
            .await
            .expect("find")
            .is_none());
        assert!(sessions
            .find("not-a-cookie", 2_000)
            .await
            .expect("find")
            .is_none());
    }

    #[tokio::test]
    async fn a_session_survives_a_restart_and_ends_at_sign_out() {
        let (dir, store, sessions) = sessions();
        let (cookie, _) = sessions.create("Alice", 1_000).await.expect("create");
        drop(sessions);
        store.close().expect("close");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let sessions = Sessions::new(Arc::new(store.clone()));
        assert!(sessions.find(&cookie, 2_000).await.expect("find").is_some());
        sessions.end(&cookie).await.expect("end");
        assert!(sessions.find(&cookie, 2_000).await.expect("find").is_none());
    }

    #[tokio::test]
    async fn expired_sessions_are_purged_from_the_store() {
        let (_dir, store, sessions) = sessions();
        let (old, s) = sessions.create("Alice", 1_000).await.expect("create");
        let (fresh, _) = sessions.create("Bob", s.expires).await.expect("create");
        assert_eq!(sessions.purge_expired(s.expires).await.expect("purge"), 1);
        let shared: Arc<dyn Store> = Arc::new(store);
        assert!(shared
            .get(Collection::Session, &key_of(&old))
            .await
            .expect("get")
            .is_none());
        assert!(sessions
            .find(&fresh, s.expires)
            .await
            .expect("find")
            .is_some());
    }
}
