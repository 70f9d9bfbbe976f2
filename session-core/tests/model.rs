//! A model-based test of the session manager: random interleavings of several requests
//! of one session (load, insert, remove, read-modify-write, clear, permanence, regenerate,
//! login, destroy, save, abandon) and of "log out everywhere", with store failures
//! injected into saves, checked against a reference model written from the rules rather
//! than from the code: the stored session equals the committed requests applied in commit
//! order, key by key, permanence and user included; nothing ended comes back; no write
//! loses another request's keys; the user's sessions list the session exactly when it is
//! bound to the user; a cookie goes out only when the rules send one, and an unmodified
//! request's resend only when no other request wrote the session since it was loaded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use proptest::prelude::*;
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use session_core::store::{Listed, Loaded, Revision, Store, StoreError, StoreKey, UserKey};
use session_core::{Config, Keyring, MemoryStore};

/// `MemoryStore`, except that the call numbered `fail_at` fails before reaching it, as a
/// store that goes down between two steps of a write-back; that a hook can save another
/// request just before a given write of a record, as a request that overlaps this one's
/// write-back (a record write, since the index calls after an ending come after the
/// ending has committed); and
/// that conflicts can come without the current record, as from stores that cannot return
/// it in the same round trip.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    calls: AtomicUsize,
    writes: AtomicUsize,
    fail_at: AtomicUsize,
    strip_current: bool,
    hook: Mutex<Option<Hook>>,
    hooked: Mutex<Option<Result<CookieUpdate, session_core::adapter::Error>>>,
}

/// Another request's save, run just before the record write numbered `at`.
struct Hook {
    at: usize,
    sessions: SessionManager,
    state: SessionState,
}

impl Flaky {
    /// Counts a call (and a record write, if `write`), failing it or running the hook first
    /// if it is their turn.
    async fn check(&self, write: bool) -> Result<(), StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call == self.fail_at.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("memory", "injected failure"));
        }
        let hook = if write {
            let at = self.writes.fetch_add(1, Ordering::SeqCst);
            let mut hook = self.hook.lock().unwrap();
            match hook.as_ref() {
                Some(h) if h.at == at => hook.take(),
                _ => None,
            }
        } else {
            None
        };
        if let Some(Hook {
            sessions, state, ..
        }) = hook
        {
            let result = sessions.save(state).await;
            *self.hooked.lock().unwrap() = Some(result);
        }
        Ok(())
    }

    fn answer<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Err(StoreError::Conflict { .. }) if self.strip_current => Err(StoreError::conflict()),
            other => other,
        }
    }

    /// Makes the `n`th store call from now fail (`None`: none).
    fn fail_in(&self, n: Option<usize>) {
        let at = n.map_or(usize::MAX, |n| self.calls.load(Ordering::SeqCst) + n);
        self.fail_at.store(at, Ordering::SeqCst);
    }

    /// Saves `state` just before the `n`th record write from now.
    fn save_in(&self, n: usize, sessions: &SessionManager, state: SessionState) {
        let at = self.writes.load(Ordering::SeqCst) + n;
        let sessions = sessions.clone();
        *self.hook.lock().unwrap() = Some(Hook {
            at,
            sessions,
            state,
        });
    }

    /// The hooked save's result, if it ran; the hook is gone either way.
    fn hooked(&self) -> Option<Result<CookieUpdate, session_core::adapter::Error>> {
        self.hook.lock().unwrap().take();
        self.hooked.lock().unwrap().take()
    }
}

#[async_trait]
impl Store for Flaky {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.check(false).await?;
        self.inner.load(key).await
    }
    async fn create(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        self.check(true).await?;
        self.inner.create(key, v, at).await
    }
    async fn update(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        self.check(true).await?;
        self.answer(self.inner.update(key, v, at, revision).await)
    }
    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.check(true).await?;
        self.inner.touch(key, at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.check(true).await?;
        self.inner.delete(key).await
    }
    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        self.check(true).await?;
        self.answer(self.inner.delete_if_unchanged(key, revision).await)
    }
    async fn create_bound(
        &self,
        key: &StoreKey,
        v: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        self.check(true).await?;
        self.inner.create_bound(key, v, at, user).await
    }
    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        self.check(false).await?;
        self.inner.unbind(user, key).await
    }
    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        self.check(false).await?;
        self.inner.list_bound(user).await
    }
}

#[derive(Clone, Debug)]
enum Op {
    Begin(usize),
    Insert(usize, usize, i64),
    Remove(usize, usize),
    Incr(usize, usize),
    /// `update` to at most 1: a closure that often leaves the value as it is.
    Cap(usize, usize),
    Clear(usize),
    Permanent(usize, bool),
    Regenerate(usize),
    LogIn(usize),
    Destroy(usize),
    /// "Log out everywhere": the user's sessions ended, between two steps of the requests.
    EndAll,
    /// Save, with the store failing at the given call of the save, if any.
    Save(usize, Option<usize>),
    /// Save the first request, with the second one's save run just before the first's
    /// record write number 0 or 1, that is, before the first commits.
    SaveDuring(usize, usize, usize),
    Abandon(usize),
}

const REQUESTS: usize = 3;
const USER: &str = "alice";
const KEYS: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REQUESTS;
    let k = 0..KEYS.len();
    prop_oneof![
        3 => r.clone().prop_map(Op::Begin),
        3 => (r.clone(), k.clone(), 0..3i64).prop_map(|(r, k, v)| Op::Insert(r, k, v)),
        2 => (r.clone(), k.clone()).prop_map(|(r, k)| Op::Remove(r, k)),
        3 => (r.clone(), k.clone()).prop_map(|(r, k)| Op::Incr(r, k)),
        1 => (r.clone(), k).prop_map(|(r, k)| Op::Cap(r, k)),
        2 => r.clone().prop_map(Op::Clear),
        2 => (r.clone(), proptest::bool::ANY).prop_map(|(r, p)| Op::Permanent(r, p)),
        1 => r.clone().prop_map(Op::Regenerate),
        1 => r.clone().prop_map(Op::LogIn),
        1 => Just(Op::EndAll),
        1 => r.clone().prop_map(Op::Destroy),
        4 => (r.clone(), proptest::option::weighted(0.2, 0..4usize)).prop_map(|(r, f)| Op::Save(r, f)),
        2 => (r.clone(), r.clone(), 0..2usize).prop_map(|(r, x, at)| Op::SaveDuring(r, x, at)),
        1 => r.prop_map(Op::Abandon),
    ]
}

type Data = BTreeMap<String, i64>;

/// A read-modify-write of the model.
#[derive(Clone, Copy, Debug)]
enum Step {
    Incr,
    Cap,
}

impl Step {
    fn apply(self, n: Option<i64>) -> i64 {
        match self {
            Self::Incr => n.unwrap_or(0) + 1,
            Self::Cap => n.unwrap_or(0).min(1),
        }
    }
}

/// How a request changed one key, by the rules: set outright, or only by
/// read-modify-writes, which are run again on the value stored at commit.
#[derive(Clone, Debug)]
enum Touch {
    Set,
    Replayed(Vec<Step>),
}

/// One request, as the model sees it.
struct Request {
    state: SessionState,
    generation: u64,
    /// The model's write count when this request loaded.
    version: u64,
    loaded_permanent: bool,
    permanent: bool,
    user: Option<&'static str>,
    binding_changed: bool,
    loaded: Data,
    local: Data,
    touched: BTreeMap<String, Touch>,
    cleared: bool,
    regenerated: bool,
    destroyed: bool,
}

impl Request {
    /// A plain write: recorded even when it leaves the value as it is, so that a later
    /// read-modify-write of the key starts from a value this request set.
    fn set(&mut self, key: &str, value: Option<i64>) {
        match value {
            Some(v) => self.local.insert(key.to_owned(), v),
            None => self.local.remove(key),
        };
        self.touched.insert(key.to_owned(), Touch::Set);
    }

    /// A read-modify-write, recorded to run again unless the value is already final.
    fn step(&mut self, key: &str, step: Step) {
        let next = step.apply(self.local.get(key).copied());
        self.local.insert(key.to_owned(), next);
        let touch = match self.touched.remove(key) {
            None if !self.cleared => Touch::Replayed(vec![step]),
            Some(Touch::Replayed(mut steps)) => {
                steps.push(step);
                Touch::Replayed(steps)
            }
            _ => Touch::Set,
        };
        self.touched.insert(key.to_owned(), touch);
    }

    /// Whether this request left `key` as it was loaded (and did not clear): such a key
    /// takes the value stored at commit.
    fn left_as_loaded(&self, key: &str) -> bool {
        !self.cleared && self.local.get(key) == self.loaded.get(key)
    }

    fn permanence_changed(&self) -> bool {
        self.permanent != self.loaded_permanent
    }

    /// Whether the rules write this request back: it changed a key's value, cleared, or
    /// changed the permanence.
    fn is_modified(&self) -> bool {
        self.cleared
            || self.binding_changed
            || self.permanence_changed()
            || self.touched.keys().any(|key| !self.left_as_loaded(key))
    }

    /// This request's changes applied onto what is stored when it commits.
    fn applied_to(&self, current: &Data) -> Data {
        let mut data = if self.cleared {
            Data::new()
        } else {
            current.clone()
        };
        for (key, touch) in &self.touched {
            if self.left_as_loaded(key) {
                continue;
            }
            let value = match touch {
                Touch::Set => self.local.get(key).copied(),
                Touch::Replayed(steps) => {
                    let start = data.get(key).copied();
                    Some(
                        steps
                            .iter()
                            .fold(start, |n, step| Some(step.apply(n)))
                            .unwrap_or(0),
                    )
                }
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

/// Request `r`, if it is open and has not ended its session (then it only saves).
fn open(requests: &mut [Option<Request>], r: usize) -> Option<&mut Request> {
    requests[r].as_mut().filter(|q| !q.destroyed)
}

/// What the model says is stored, and the browser's cookie for it.
struct Model {
    sessions: SessionManager,
    stored: Option<Data>,
    permanent: bool,
    user: Option<&'static str>,
    /// Writes of the stored session so far: a resend goes only if none came after its load.
    version: u64,
    /// Whether a permanent cookie is due on every request (a zero refresh threshold).
    always_due: bool,
    generation: u64,
    cookie: RequestCookie,
    old_cookies: Vec<RequestCookie>,
}

impl Model {
    /// Takes in the result of `req`'s save, committed at this point of the order.
    fn committed(&mut self, req: &Request, update: CookieUpdate) -> Result<(), TestCaseError> {
        let live = self.stored.is_some() && req.generation == self.generation;
        // `destroy`, and a `clear` that leaves nothing, end the session whatever other
        // requests wrote meanwhile; the cookie goes only if this request ended it.
        if req.destroyed || (req.cleared && req.local.is_empty() && req.user.is_none()) {
            if live {
                prop_assert!(
                    matches!(update, CookieUpdate::Remove(_)),
                    "ended: {:?}",
                    update
                );
                self.stored = None;
            } else {
                prop_assert_eq!(update, CookieUpdate::Keep, "ended by another request");
            }
            return Ok(());
        }
        if !live {
            prop_assert_eq!(update, CookieUpdate::Keep, "a write to an ended session");
            return Ok(());
        }
        if !req.regenerated && !req.is_modified() {
            // Unmodified: only a due permanent cookie goes, with a conditional write of the
            // record as loaded, which another request's write since then refuses.
            if self.always_due && req.loaded_permanent && req.version == self.version {
                self.expect_cookie(&update, "a due cookie")?;
                self.version += 1;
            } else {
                prop_assert_eq!(update, CookieUpdate::Keep, "an unmodified request");
            }
            return Ok(());
        }
        let merged = req.applied_to(self.stored.as_ref().unwrap());
        let user = if req.binding_changed {
            req.user
        } else {
            self.user
        };
        // A session bound to a user is kept without data.
        if merged.is_empty() && user.is_none() {
            prop_assert!(
                matches!(update, CookieUpdate::Remove(_)),
                "emptied: {:?}",
                update
            );
            self.stored = None;
            return Ok(());
        }
        if req.permanence_changed() {
            self.permanent = req.permanent;
        }
        self.user = user;
        self.stored = Some(merged);
        self.version += 1;
        if req.regenerated {
            let CookieUpdate::Set(header) = &update else {
                return Err(TestCaseError::fail(format!("regenerate: {update:?}")));
            };
            prop_assert_eq!(header.contains("Max-Age"), self.permanent, "{}", header);
            let new = cookie_of(&self.sessions, header);
            self.old_cookies
                .push(std::mem::replace(&mut self.cookie, new));
            self.generation += 1;
        } else if req.permanence_changed() || (self.always_due && req.permanent) {
            self.expect_cookie(&update, "a permanence change or a due cookie")?;
        } else {
            prop_assert_eq!(
                update,
                CookieUpdate::Keep,
                "a write-back with no cookie due"
            );
        }
        Ok(())
    }

    /// `update` sets the current id's cookie, permanent as the stored session is.
    fn expect_cookie(&self, update: &CookieUpdate, why: &str) -> Result<(), TestCaseError> {
        let CookieUpdate::Set(header) = update else {
            return Err(TestCaseError::fail(format!("{why}: {update:?}")));
        };
        prop_assert_eq!(&cookie_of(&self.sessions, header), &self.cookie, "a new id");
        prop_assert_eq!(header.contains("Max-Age"), self.permanent, "{}", header);
        Ok(())
    }

    /// A new session, stored with one key (bound to the user if `logged_in`), in place of
    /// the ended one: requests still holding that one find it ended.
    async fn start(&mut self, logged_in: bool) {
        let mut first = self.sessions.load(RequestCookie::Absent).await.unwrap();
        first.insert("a", 0).unwrap();
        if logged_in {
            first.log_in(USER, None);
        }
        let CookieUpdate::Set(header) = self.sessions.save(first).await.unwrap() else {
            panic!("no cookie for a new session")
        };
        let old = std::mem::replace(&mut self.cookie, cookie_of(&self.sessions, &header));
        if old != RequestCookie::Absent {
            self.old_cookies.push(old);
        }
        self.stored = Some([("a".to_owned(), 0)].into());
        self.permanent = true;
        self.user = logged_in.then_some(USER);
        self.generation += 1;
        self.version += 1;
    }

    /// The store holds what the model says, and no old id works.
    async fn check(&self, store: &Flaky, stray_possible: bool) -> Result<(), TestCaseError> {
        let now = self.sessions.load(self.cookie.clone()).await.unwrap();
        prop_assert_eq!(&data_of(&now), &self.stored.clone().unwrap_or_default());
        if self.stored.is_some() {
            prop_assert_eq!(now.is_permanent(), self.permanent, "the permanence");
            prop_assert_eq!(now.user(), self.user, "the user");
        }
        let listed = self.sessions.sessions_of(USER, None).await.unwrap();
        let bound = self.stored.is_some() && self.user == Some(USER);
        // A login whose store failed between its new record and that record's cleanup
        // leaves it, bound, until it expires or the user ends it.
        if stray_possible {
            prop_assert!(listed.len() >= usize::from(bound), "the user's sessions");
        } else {
            prop_assert_eq!(listed.len(), usize::from(bound), "the user's sessions");
        }
        if bound {
            let handle = now.handle();
            prop_assert!(
                listed.iter().any(|s| Some(&s.handle) == handle.as_ref()),
                "the session is not among its user's"
            );
        }
        for old in &self.old_cookies {
            let state = self.sessions.load(old.clone()).await.unwrap();
            prop_assert!(state.is_empty(), "an old id works");
        }
        if !stray_possible {
            let expected = usize::from(self.stored.is_some());
            prop_assert_eq!(store.inner.len(), expected, "a stray record");
        }
        Ok(())
    }
}

/// How a case varies beyond its operations.
#[derive(Clone, Copy, Debug)]
struct Setup {
    /// Conflicts come without the current record, as from stores that cannot return it.
    strip_current: bool,
    /// A zero refresh threshold: a permanent cookie is due on every request, so every
    /// unmodified request resends it with a conditional write. The default never does here.
    always_due: bool,
    /// The session starts logged in.
    logged_in: bool,
}

async fn run(ops: Vec<Op>, setup: Setup) -> Result<(), TestCaseError> {
    let Setup {
        strip_current,
        always_due,
        logged_in,
    } = setup;
    let store = Arc::new(Flaky {
        strip_current,
        ..Flaky::default()
    });
    store.fail_in(None);
    let keyring = Keyring::new([[9u8; 32]]).unwrap();
    let threshold = if always_due {
        Duration::ZERO
    } else {
        Duration::from_secs(3600)
    };
    let config = || {
        Config::builder(keyring.clone())
            .refresh_threshold(threshold)
            .build()
            .unwrap()
    };
    let sessions = SessionManager::new(store.clone(), config());
    // Saves run in the middle of another save come from another process: within one,
    // write-backs of a session take turns.
    let elsewhere = SessionManager::new(store.clone(), config());

    let mut model = Model {
        cookie: RequestCookie::Absent,
        sessions: sessions.clone(),
        stored: None,
        permanent: true,
        user: None,
        version: 0,
        always_due,
        generation: 0,
        old_cookies: Vec::new(),
    };
    model.start(logged_in).await;
    let mut failed = false;
    let mut requests: Vec<Option<Request>> = (0..REQUESTS).map(|_| None).collect();

    for op in ops {
        match op {
            Op::Begin(r) => {
                if requests[r].is_some() {
                    continue;
                }
                // Once a session ended, the browser starts another.
                if model.stored.is_none() {
                    model.start(logged_in).await;
                }
                let current = model.stored.as_ref().unwrap();
                let state = sessions.load(model.cookie.clone()).await.unwrap();
                prop_assert_eq!(&data_of(&state), current, "a load missed the last commit");
                prop_assert_eq!(state.is_permanent(), model.permanent);
                prop_assert_eq!(state.user(), model.user);
                requests[r] = Some(Request {
                    state,
                    generation: model.generation,
                    version: model.version,
                    loaded_permanent: model.permanent,
                    permanent: model.permanent,
                    user: model.user,
                    binding_changed: false,
                    loaded: current.clone(),
                    local: current.clone(),
                    touched: BTreeMap::new(),
                    cleared: false,
                    regenerated: false,
                    destroyed: false,
                });
            }
            Op::Insert(r, k, v) => {
                let Some(req) = open(&mut requests, r) else {
                    continue;
                };
                req.state.insert(KEYS[k], v).unwrap();
                req.set(KEYS[k], Some(v));
            }
            Op::Remove(r, k) => {
                let Some(req) = open(&mut requests, r) else {
                    continue;
                };
                req.state.remove(KEYS[k]);
                req.set(KEYS[k], None);
            }
            Op::Incr(r, k) | Op::Cap(r, k) => {
                let Some(req) = open(&mut requests, r) else {
                    continue;
                };
                let step = if matches!(op, Op::Incr(..)) {
                    Step::Incr
                } else {
                    Step::Cap
                };
                req.state
                    .update(KEYS[k], move |n: Option<i64>| step.apply(n))
                    .unwrap();
                req.step(KEYS[k], step);
            }
            Op::Clear(r) => {
                let Some(req) = open(&mut requests, r) else {
                    continue;
                };
                req.state.clear();
                for key in req.local.keys().cloned().collect::<Vec<_>>() {
                    req.set(&key, None);
                }
                req.cleared = true;
                if req.user.take().is_some() {
                    req.binding_changed = true;
                }
            }
            Op::Permanent(r, permanent) => {
                let Some(req) = open(&mut requests, r) else {
                    continue;
                };
                req.state.set_permanent(permanent);
                req.permanent = permanent;
            }
            Op::Regenerate(r) => {
                let Some(req) = open(&mut requests, r) else {
                    continue;
                };
                req.state.regenerate();
                req.regenerated = true;
            }
            Op::LogIn(r) => {
                let Some(req) = open(&mut requests, r) else {
                    continue;
                };
                req.state.log_in(USER, None);
                req.user = Some(USER);
                req.binding_changed = true;
                req.regenerated = true;
            }
            Op::EndAll => {
                let ended = sessions.end_sessions(USER, None).await.unwrap();
                let bound = model.stored.is_some() && model.user == Some(USER);
                // A login's new record left by an injected failure is the user's too.
                if failed {
                    prop_assert!(ended >= usize::from(bound), "sessions ended");
                } else {
                    prop_assert_eq!(ended, usize::from(bound), "sessions ended");
                }
                if bound {
                    model.stored = None;
                }
                model.check(&store, failed).await?;
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
                match result {
                    Err(_) => {
                        prop_assert!(fail.is_some(), "a save failed with no failure injected");
                        failed = true; // nothing of this request was committed
                    }
                    Ok(update) => model.committed(&req, update)?,
                }
                model.check(&store, failed).await?;
            }
            Op::SaveDuring(r, x, at) => {
                if r == x || requests[r].is_none() || requests[x].is_none() {
                    continue;
                }
                let (Some(req), Some(other)) = (requests[r].take(), requests[x].take()) else {
                    continue;
                };
                store.save_in(at, &elsewhere, other.state.clone());
                let result = sessions.save(req.state.clone()).await.unwrap();
                match store.hooked() {
                    Some(hooked) => {
                        model.committed(&other, hooked.unwrap())?;
                        model.committed(&req, result)?;
                    }
                    // This save made fewer calls: the other request comes after it.
                    None => {
                        model.committed(&req, result)?;
                        let hooked = sessions.save(other.state.clone()).await.unwrap();
                        model.committed(&other, hooked)?;
                    }
                }
                model.check(&store, failed).await?;
            }
        }
    }
    Ok(())
}

/// Runs one case on a runtime of its own.
fn run_to_end(ops: Vec<Op>, setup: Setup) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(ops, setup))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn interleaved_requests_commit_as_the_model_says(
        ops in proptest::collection::vec(op(), 1..40),
        strip_current in proptest::bool::ANY,
        always_due in proptest::bool::ANY,
        logged_in in proptest::bool::ANY,
    ) {
        run_to_end(ops, Setup { strip_current, always_due, logged_in })?;
    }
}

/// A request that cleared the session (a logout without `destroy`) and put a key back, and
/// an overlapping one that only adds a key: the merge must not bind the session again.
#[test]
fn a_merge_keeps_another_requests_logout() {
    let ops = vec![
        Op::Begin(1),
        Op::Begin(2),
        Op::Clear(1),
        Op::Insert(1, 0, 1),
        Op::Save(1, None),
        Op::Insert(2, 1, 1),
        Op::Save(2, None),
    ];
    let setup = Setup {
        strip_current: false,
        always_due: false,
        logged_in: true,
    };
    run_to_end(ops, setup).unwrap();
}

/// A login whose store failed while it removed its new record (its old session ended
/// meanwhile) leaves that record bound to the user: "log out everywhere" ends it too.
#[test]
fn log_out_everywhere_ends_what_a_failed_login_left() {
    let ops = vec![
        Op::Begin(0),
        Op::Begin(1),
        Op::LogIn(0),
        Op::Destroy(1),
        Op::Save(1, None),
        Op::Save(0, Some(3)),
        Op::EndAll,
    ];
    let setup = Setup {
        strip_current: false,
        always_due: false,
        logged_in: false,
    };
    run_to_end(ops, setup).unwrap();
}
