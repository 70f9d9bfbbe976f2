//! A write-back that conflicts more than once: a key this request changed with `update`
//! stays this request's change, even when a first merge runs its closure on the other
//! request's value and gets back the value it loaded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::store::{Loaded, Revision, Store, StoreError, StoreKey};
use session_core::{Config, Keyring, MemoryStore};

/// `MemoryStore`, where the `bump_at`-th `update` call is preceded by another writer
/// rewriting the record unchanged (a new revision, the same bytes), as a concurrent
/// request's cookie resend does.
struct Bumping {
    inner: MemoryStore,
    calls: AtomicUsize,
    bump_at: AtomicUsize,
}

#[async_trait]
impl Store for Bumping {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.inner.load(key).await
    }
    async fn create(&self, k: &StoreKey, v: &[u8], at: SystemTime) -> Result<Revision, StoreError> {
        self.inner.create(k, v, at).await
    }
    async fn update(
        &self,
        k: &StoreKey,
        v: &[u8],
        at: SystemTime,
        r: Revision,
    ) -> Result<Revision, StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call == self.bump_at.load(Ordering::SeqCst) {
            let current = self.inner.load(k).await?.unwrap();
            self.inner
                .update(k, current.value(), at, current.revision())
                .await?;
        }
        self.inner.update(k, v, at, r).await
    }
    async fn touch(&self, k: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.inner.touch(k, at).await
    }
    async fn delete(&self, k: &StoreKey) -> Result<(), StoreError> {
        self.inner.delete(k).await
    }
    async fn delete_if_unchanged(&self, k: &StoreKey, r: Revision) -> Result<(), StoreError> {
        self.inner.delete_if_unchanged(k, r).await
    }
}

/// n = 1. B: n -= 1 (stored first, n = 0). A: n += 1. Any serial order gives 1. A's
/// first attempt conflicts with B (merged: 0 + 1 = 1, equal to the loaded 1); its second
/// conflicts with an unchanged rewrite, and the second merge must run the `+1` again.
#[tokio::test]
async fn an_update_survives_two_conflicts() {
    let store = std::sync::Arc::new(Bumping {
        inner: MemoryStore::new(),
        calls: AtomicUsize::new(0),
        bump_at: AtomicUsize::new(usize::MAX),
    });
    let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
        .build()
        .unwrap();
    let sessions = SessionManager::new(store.clone(), config);

    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("n", 1).unwrap();
    let CookieUpdate::Set(header) = sessions.save(state).await.unwrap() else {
        panic!("a new session sets a cookie")
    };
    let cookie = sessions.verify([header.split(';').next().unwrap()]);

    let mut a = sessions.load(cookie.clone()).await.unwrap();
    let mut b = sessions.load(cookie.clone()).await.unwrap();
    b.update("n", |n: Option<i64>| n.unwrap_or(0) - 1).unwrap();
    sessions.save(b).await.unwrap();

    a.update("n", |n: Option<i64>| n.unwrap_or(0) + 1).unwrap();
    // A's attempts are the next update calls: bump before its second.
    let next = store.calls.load(Ordering::SeqCst);
    store.bump_at.store(next + 2, Ordering::SeqCst);
    sessions.save(a).await.unwrap();
    assert!(
        store.calls.load(Ordering::SeqCst) >= next + 3,
        "A conflicted twice"
    );

    let n = sessions
        .load(cookie)
        .await
        .unwrap()
        .get::<i64>("n")
        .unwrap();
    assert_eq!(n, Some(1), "A's +1 was lost on the second conflict");
}
