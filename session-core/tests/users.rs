//! Ending a user's sessions against what other requests do meanwhile: a session moved to
//! a new id while "log out everywhere" runs, and sessions a devices page cannot show.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use session_core::store::{Listed, Loaded, Revision, Store, StoreError, StoreKey, UserKey};
use session_core::{Config, Keyring, MemoryStore};

type Hook =
    Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

/// A `MemoryStore` whose first `list_bound` runs a hook after reading the index, as if
/// another request acted between the listing and what the caller does with it.
struct AfterListing {
    inner: MemoryStore,
    hook: Mutex<Option<Hook>>,
}

#[async_trait]
impl Store for AfterListing {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.inner.load(key).await
    }
    async fn create(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        self.inner.create(key, v, at).await
    }
    async fn update(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        self.inner.update(key, v, at, revision).await
    }
    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.inner.touch(key, at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        self.inner.delete_if_unchanged(key, revision).await
    }
    async fn create_bound(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        self.inner.create_bound(key, v, at, user).await
    }
    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        self.inner.unbind(user, key).await
    }
    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        let listed = self.inner.list_bound(user).await?;
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook().await;
        }
        Ok(listed)
    }
}

fn config() -> Config {
    Config::builder(Keyring::new([[9u8; 32]]).unwrap())
        .build()
        .unwrap()
}

async fn cookie_of(manager: &SessionManager, state: SessionState) -> RequestCookie {
    match manager.save(state).await.unwrap() {
        CookieUpdate::Set(header) => manager.verify([header.split(';').next().unwrap()]),
        other => panic!("no cookie: {other:?}"),
    }
}

async fn log_in(manager: &SessionManager, user: &str) -> RequestCookie {
    let mut state = manager.load(RequestCookie::Absent).await.unwrap();
    state.log_in(user, None);
    cookie_of(manager, state).await
}

#[tokio::test]
async fn a_session_moved_to_a_new_id_while_its_user_is_logged_out_everywhere_ends_too() {
    let memory = MemoryStore::new();
    let store = Arc::new(AfterListing {
        inner: memory.clone(),
        hook: Mutex::new(None),
    });
    let sessions = SessionManager::new(Arc::clone(&store), config());
    // Another process, on the same store, whose request regenerates the stolen session.
    let elsewhere = SessionManager::new(memory.clone(), config());
    let stolen = log_in(&sessions, "ada").await;
    let mut rotating = elsewhere.load(stolen.clone()).await.unwrap();
    rotating.regenerate();
    let moved = Arc::new(Mutex::new(None));
    let hook_moved = Arc::clone(&moved);
    *store.hook.lock().unwrap() = Some(Box::new(move || {
        Box::pin(async move {
            let cookie = cookie_of(&elsewhere, rotating).await;
            *hook_moved.lock().unwrap() = Some((elsewhere, cookie));
        })
    }));

    sessions.end_sessions("ada", None).await.unwrap();
    let (elsewhere, moved) = moved.lock().unwrap().take().unwrap();
    assert!(elsewhere.load(stolen).await.unwrap().is_empty());
    assert!(
        elsewhere.load(moved).await.unwrap().is_empty(),
        "the session moved to a new id survived log out everywhere"
    );
    assert!(sessions.sessions_of("ada", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn sessions_a_devices_page_cannot_show_are_ended_too() {
    let store = MemoryStore::new();
    let sessions = SessionManager::new(store.clone(), config());
    let unreadable = log_in(&sessions, "ada").await;
    let RequestCookie::Valid(verified) = unreadable.clone() else {
        panic!("no cookie")
    };
    let key = StoreKey::new(sessions.config().key_prefix(), &verified.into_id());
    let loaded = store.load(&key).await.unwrap().unwrap();
    // As a newer deployment's format would look to this build.
    let later = SystemTime::now() + Duration::from_secs(3600);
    store
        .update(&key, b"{\"v\":99}", later, loaded.revision())
        .await
        .unwrap();
    assert!(sessions.sessions_of("ada", None).await.unwrap().is_empty());
    assert_eq!(sessions.end_sessions("ada", None).await.unwrap(), 1);
    assert!(
        store.load(&key).await.unwrap().is_none(),
        "the unreadable session lives"
    );
}
