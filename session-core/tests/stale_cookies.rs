//! An unmodified request sends its cookie again only when that cannot undo another
//! request's answer: the resend goes with a conditional write of the record as this
//! request loaded it, so a session another request regenerated (a login), ended, or
//! changed meanwhile (its permanence) gets no stale cookie from a late response. The
//! write also notes when the cookie went out, so it is not sent again on the next request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::store::{Loaded, Revision, Store, StoreError, StoreKey};
use session_core::{Config, Keyring, MemoryStore};

/// `MemoryStore`, claiming to refresh expiry as it reads, as Redis (`GETEX`) and memcached
/// (`gat`) do: an unmodified request then makes no store call of its own but a resend.
struct RefreshesOnLoad(MemoryStore);

#[async_trait]
impl Store for RefreshesOnLoad {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn touches_on_load(&self) -> bool {
        true
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.0.load(key).await
    }
    async fn create(&self, k: &StoreKey, v: &[u8], at: SystemTime) -> Result<Revision, StoreError> {
        self.0.create(k, v, at).await
    }
    async fn update(
        &self,
        k: &StoreKey,
        v: &[u8],
        at: SystemTime,
        r: Revision,
    ) -> Result<Revision, StoreError> {
        self.0.update(k, v, at, r).await
    }
    async fn touch(&self, k: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.0.touch(k, at).await
    }
    async fn delete(&self, k: &StoreKey) -> Result<(), StoreError> {
        self.0.delete(k).await
    }
    async fn delete_if_unchanged(&self, k: &StoreKey, r: Revision) -> Result<(), StoreError> {
        self.0.delete_if_unchanged(k, r).await
    }
}

/// A manager on `store` whose cookies are due `threshold` after they were sent, and the
/// cookie of a stored session made with it.
async fn setup(store: impl Store, threshold: Duration) -> (SessionManager, RequestCookie) {
    let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
        .refresh_threshold(threshold)
        .build()
        .unwrap();
    let sessions = SessionManager::new(store, config);
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("cart", 1).unwrap();
    let CookieUpdate::Set(header) = sessions.save(state).await.unwrap() else {
        panic!("a new session sets a cookie")
    };
    let cookie = sessions.verify([header.split(';').next().unwrap()]);
    // Past the threshold: the next unmodified request resends the cookie.
    tokio::time::sleep(threshold + Duration::from_millis(5)).await;
    (sessions, cookie)
}

fn id_of(sessions: &SessionManager, update: &CookieUpdate) -> Option<RequestCookie> {
    match update {
        CookieUpdate::Set(header) => Some(sessions.verify([header.split(';').next().unwrap()])),
        _ => None,
    }
}

/// A: a request that changes nothing (a poll). B: the login, which moves the session to
/// a new id. A answers last; its cookie would put the dead pre-login id back.
#[tokio::test]
async fn a_late_refresh_does_not_put_the_pre_login_id_back() {
    let (sessions, cookie) = setup(RefreshesOnLoad(MemoryStore::new()), Duration::ZERO).await;
    let a = sessions.load(cookie.clone()).await.unwrap();
    let mut b = sessions.load(cookie.clone()).await.unwrap();
    b.regenerate();
    let login = sessions.save(b).await.unwrap();
    assert!(id_of(&sessions, &login).is_some_and(|new| new != cookie));

    assert_eq!(sessions.save(a).await.unwrap(), CookieUpdate::Keep);
}

#[tokio::test]
async fn a_late_refresh_does_not_set_an_ended_sessions_cookie_again() {
    let (sessions, cookie) = setup(RefreshesOnLoad(MemoryStore::new()), Duration::ZERO).await;
    let a = sessions.load(cookie.clone()).await.unwrap();
    let mut b = sessions.load(cookie.clone()).await.unwrap();
    b.destroy();
    assert!(matches!(
        sessions.save(b).await.unwrap(),
        CookieUpdate::Remove(_)
    ));
    assert_eq!(sessions.save(a).await.unwrap(), CookieUpdate::Keep);
}

/// B: "forget me on this browser" (a session cookie, no `Max-Age`). A, a page view that
/// loaded the permanent session before, answers after B: it must not make the browser's
/// cookie permanent again, with the same store touched or refreshed on load.
#[tokio::test]
async fn a_late_refresh_does_not_undo_a_permanence_change() {
    for touches_on_load in [false, true] {
        let (sessions, cookie) = if touches_on_load {
            setup(RefreshesOnLoad(MemoryStore::new()), Duration::ZERO).await
        } else {
            setup(MemoryStore::new(), Duration::ZERO).await
        };
        let a = sessions.load(cookie.clone()).await.unwrap();
        let mut b = sessions.load(cookie.clone()).await.unwrap();
        b.set_permanent(false);
        let CookieUpdate::Set(b_cookie) = sessions.save(b).await.unwrap() else {
            panic!("a permanence change sends the cookie")
        };
        assert!(!b_cookie.contains("Max-Age"), "{b_cookie}");

        assert_eq!(sessions.save(a).await.unwrap(), CookieUpdate::Keep);
        assert!(!sessions.load(cookie).await.unwrap().is_permanent());
    }
}

/// Once due, the cookie is sent again by one request, which notes it in the record; the
/// next request does not send it again, although the store refreshes expiry on every read.
#[tokio::test]
async fn a_resent_cookie_is_not_due_again_on_the_next_request() {
    let threshold = Duration::from_secs(1);
    let (sessions, cookie) = setup(RefreshesOnLoad(MemoryStore::new()), threshold).await;
    let first = sessions.load(cookie.clone()).await.unwrap();
    assert_eq!(
        id_of(&sessions, &sessions.save(first).await.unwrap()),
        Some(cookie.clone())
    );
    let next = sessions.load(cookie.clone()).await.unwrap();
    assert_eq!(sessions.save(next).await.unwrap(), CookieUpdate::Keep);
    assert_eq!(
        sessions
            .load(cookie)
            .await
            .unwrap()
            .get::<i64>("cart")
            .unwrap(),
        Some(1)
    );
}
