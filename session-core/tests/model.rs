//! A model-based test of the session manager: random interleavings of several requests
//! of one session (load, insert, remove, read-modify-write, clear, regenerate, destroy,
//! save, abandon), with store failures injected into saves, checked against a reference
//! model written from the rules rather than from the code: the stored session equals the
//! committed requests applied in commit order, key by key; nothing ended comes back; no
//! write loses another request's keys.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use proptest::prelude::*;
use session_core::{
    Config, CookieUpdate, Keyring, Loaded, MemoryStore, RequestCookie, Revision, SessionManager,
    SessionState, Store, StoreError, StoreKey,
};

/// `MemoryStore`, except that the call numbered `fail_at` fails before reaching it, as a
/// store that goes down between two steps of a write-back.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    calls: AtomicUsize,
    fail_at: AtomicUsize,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call == self.fail_at.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("memory", "injected failure"));
        }
        Ok(())
    }

    /// Makes the `n`th store call from now fail (`None`: none).
    fn fail_in(&self, n: Option<usize>) {
        let at = n.map_or(usize::MAX, |n| self.calls.load(Ordering::SeqCst) + n);
        self.fail_at.store(at, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for Flaky {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.check()?;
        self.inner.load(key).await
    }
    async fn create(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        self.check()?;
        self.inner.create(key, v, at).await
    }
    async fn update(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        self.check()?;
        self.inner.update(key, v, at, revision).await
    }
    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.check()?;
        self.inner.touch(key, at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete_if_unchanged(key, revision).await
    }
}

#[derive(Clone, Debug)]
enum Op {
    Begin(usize),
    Insert(usize, usize, i64),
    Remove(usize, usize),
    Incr(usize, usize),
    Clear(usize),
    Regenerate(usize),
    Destroy(usize),
    /// Save, with the store failing at the given call of the save, if any.
    Save(usize, Option<usize>),
    Abandon(usize),
}

const REQUESTS: usize = 3;
const KEYS: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REQUESTS;
    let k = 0..KEYS.len();
    prop_oneof![
        3 => r.clone().prop_map(Op::Begin),
        3 => (r.clone(), k.clone(), 0..3i64).prop_map(|(r, k, v)| Op::Insert(r, k, v)),
        2 => (r.clone(), k.clone()).prop_map(|(r, k)| Op::Remove(r, k)),
        3 => (r.clone(), k).prop_map(|(r, k)| Op::Incr(r, k)),
        1 => r.clone().prop_map(Op::Clear),
        1 => r.clone().prop_map(Op::Regenerate),
        1 => r.clone().prop_map(Op::Destroy),
        4 => (r.clone(), proptest::option::weighted(0.2, 0..4usize)).prop_map(|(r, f)| Op::Save(r, f)),
        1 => r.prop_map(Op::Abandon),
    ]
}

type Data = BTreeMap<String, i64>;

/// How a request changed one key, by the rules: set outright, or only incremented.
#[derive(Clone, Debug)]
enum Touch {
    Set,
    Incremented(i64),
}

/// One request, as the model sees it.
struct Request {
    state: SessionState,
    generation: u64,
    loaded: Data,
    local: Data,
    touched: BTreeMap<String, Touch>,
    cleared: bool,
    regenerated: bool,
    destroyed: bool,
}

impl Request {
    fn set(&mut self, key: &str, value: Option<i64>) {
        if self.local.get(key).copied() == value {
            return; // not a change
        }
        match value {
            Some(v) => self.local.insert(key.to_owned(), v),
            None => self.local.remove(key),
        };
        if !self.cleared && self.loaded.get(key).copied() == value {
            self.touched.remove(key); // back to what was loaded: untouched
        } else {
            self.touched.insert(key.to_owned(), Touch::Set);
        }
    }

    fn incr(&mut self, key: &str) {
        let next = self.local.get(key).copied().unwrap_or(0) + 1;
        self.local.insert(key.to_owned(), next);
        let touch = match self.touched.get(key) {
            None if !self.cleared => Touch::Incremented(1),
            Some(Touch::Incremented(n)) => Touch::Incremented(n + 1),
            _ => Touch::Set,
        };
        self.touched.insert(key.to_owned(), touch);
    }

    /// This request's changes applied onto what is stored when it commits.
    fn applied_to(&self, current: &Data) -> Data {
        let mut data = if self.cleared {
            Data::new()
        } else {
            current.clone()
        };
        for (key, touch) in &self.touched {
            let value = match touch {
                Touch::Set => self.local.get(key).copied(),
                Touch::Incremented(n) => Some(data.get(key).copied().unwrap_or(0) + n),
            };
            match value {
                Some(v) => data.insert(key.clone(), v),
                None => data.remove(key),
            };
        }
        data
    }
}

fn data_of(state: &SessionState) -> Data {
    state
        .keys()
        .map(|k| (k.to_owned(), state.get::<i64>(k).unwrap().unwrap()))
        .collect()
}

fn cookie_of(sessions: &SessionManager, header: &str) -> RequestCookie {
    sessions.verify([header.split(';').next().unwrap()])
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = Arc::new(Flaky::default());
    store.fail_in(None);
    let config = Config::builder(Keyring::new([[9u8; 32]]).unwrap())
        .build()
        .unwrap();
    let sessions = SessionManager::from_arc(store.clone(), config);

    let mut first = sessions.load(RequestCookie::Absent).await.unwrap();
    first.insert("a", 0).unwrap();
    let CookieUpdate::Set(header) = sessions.save(first).await.unwrap() else {
        panic!()
    };
    let mut cookie = cookie_of(&sessions, &header);
    let mut stored: Option<Data> = Some([("a".to_owned(), 0)].into());
    let mut generation = 0u64;
    let mut old_cookies = Vec::new();
    let mut failed = false;
    let mut requests: Vec<Option<Request>> = (0..REQUESTS).map(|_| None).collect();

    for op in ops {
        match op {
            Op::Begin(r) => {
                let Some(current) = &stored else { continue };
                if requests[r].is_some() {
                    continue;
                }
                let state = sessions.load(cookie.clone()).await.unwrap();
                prop_assert_eq!(
                    &data_of(&state),
                    current,
                    "a load does not see the last commit"
                );
                requests[r] = Some(Request {
                    state,
                    generation,
                    loaded: current.clone(),
                    local: current.clone(),
                    touched: BTreeMap::new(),
                    cleared: false,
                    regenerated: false,
                    destroyed: false,
                });
            }
            Op::Insert(r, k, v) => {
                let Some(req) = requests[r].as_mut().filter(|q| !q.destroyed) else {
                    continue;
                };
                req.state.insert(KEYS[k], v).unwrap();
                req.set(KEYS[k], Some(v));
            }
            Op::Remove(r, k) => {
                let Some(req) = requests[r].as_mut().filter(|q| !q.destroyed) else {
                    continue;
                };
                req.state.remove(KEYS[k]);
                req.set(KEYS[k], None);
            }
            Op::Incr(r, k) => {
                let Some(req) = requests[r].as_mut().filter(|q| !q.destroyed) else {
                    continue;
                };
                req.state
                    .update(KEYS[k], |n: Option<i64>| n.unwrap_or(0) + 1)
                    .unwrap();
                req.incr(KEYS[k]);
            }
            Op::Clear(r) => {
                let Some(req) = requests[r].as_mut().filter(|q| !q.destroyed) else {
                    continue;
                };
                req.state.clear();
                for key in req.local.keys().cloned().collect::<Vec<_>>() {
                    req.set(&key, None);
                }
                req.cleared = true;
            }
            Op::Regenerate(r) => {
                let Some(req) = requests[r].as_mut().filter(|q| !q.destroyed) else {
                    continue;
                };
                req.state.regenerate();
                req.regenerated = true;
            }
            Op::Destroy(r) => {
                let Some(req) = requests[r].as_mut() else {
                    continue;
                };
                req.state.destroy();
                req.destroyed = true;
            }
            Op::Abandon(r) => requests[r] = None,
            Op::Save(r, fail) => {
                let Some(req) = requests[r].take() else {
                    continue;
                };
                store.fail_in(fail);
                let result = sessions.save(req.state.clone()).await;
                store.fail_in(None);
                let live = stored.is_some() && req.generation == generation;
                let update = match result {
                    Err(_) => {
                        prop_assert!(fail.is_some(), "a save failed with no failure injected");
                        failed = true;
                        continue; // nothing of this request was committed
                    }
                    Ok(update) => update,
                };
                // `destroy`, and a `clear` that leaves nothing, end the session whatever
                // other requests did meanwhile.
                if req.destroyed || (req.cleared && req.local.is_empty()) {
                    prop_assert!(
                        matches!(update, CookieUpdate::Remove(_)),
                        "ended: {:?}",
                        update
                    );
                    if live {
                        stored = None;
                    }
                } else if !live {
                    prop_assert_eq!(update, CookieUpdate::Keep, "a write to an ended session");
                } else {
                    let current = stored.clone().unwrap();
                    let merged = req.applied_to(&current);
                    if merged.is_empty() {
                        prop_assert!(
                            matches!(update, CookieUpdate::Remove(_)),
                            "emptied: {:?}",
                            update
                        );
                        stored = None;
                    } else if req.regenerated {
                        let CookieUpdate::Set(header) = &update else {
                            return Err(TestCaseError::fail(format!("regenerate: {update:?}")));
                        };
                        old_cookies
                            .push(std::mem::replace(&mut cookie, cookie_of(&sessions, header)));
                        generation += 1;
                        stored = Some(merged);
                    } else {
                        if let CookieUpdate::Set(header) = &update {
                            prop_assert_eq!(&cookie_of(&sessions, header), &cookie, "a new id");
                        }
                        prop_assert!(!matches!(update, CookieUpdate::Remove(_)));
                        stored = Some(merged);
                    }
                }
                let now = sessions.load(cookie.clone()).await.unwrap();
                prop_assert_eq!(&data_of(&now), &stored.clone().unwrap_or_default());
                for old in &old_cookies {
                    prop_assert!(
                        sessions.load(old.clone()).await.unwrap().is_empty(),
                        "an old id works"
                    );
                }
                if !failed {
                    prop_assert_eq!(
                        store.inner.len(),
                        usize::from(stored.is_some()),
                        "a stray record"
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn interleaved_requests_commit_as_the_model_says(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
