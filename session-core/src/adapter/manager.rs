//! Loading a session at the start of a request and writing it back at the end: the
//! session semantics of `docs/design.md`, in one place, for any web framework.

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::field::Empty;
use tracing::Instrument as _;

use super::plan::{self, Plan};
use super::state::{Origin, SessionState};
use crate::codec::Record;
use crate::codec::{Codec, CodecError};
use crate::config::Config;
use crate::id::{RandomError, SessionId};
use crate::keyring::Verified;
use crate::metrics::{self, Event, Operation, StoreMetrics, Took};
use crate::store::{Loaded, Revision, SharedStore, StoreError, StoreKey, UserKey};

/// How often `create` is retried with a fresh id after `DuplicateId`. With 128 or more
/// random bits a single retry is already astronomically unlikely.
const CREATE_ATTEMPTS: usize = 3;

/// How many conditional writes a write-back tries before it gives up with
/// [`Error::Contended`]: each failed one means another request's write landed first.
const WRITE_ATTEMPTS: usize = 16;

/// Conflicts answered by an immediate retry before the retries are spread out in time.
const EAGER_RETRIES: usize = 2;

/// The pause before a retry is random, up to the time the failed attempt took times a
/// factor that doubles with each retry up to this one: on a slow store the window grows
/// with the store's own pace, so contending requests spread out instead of colliding.
const MAX_BACKOFF_FACTOR: u32 = 32;

/// The longest single pause, so that a store that answers slowly and keeps conflicting
/// holds a request for seconds at most, not minutes.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// The smallest time unit of that pause: the runtime's timer wakes sleepers on
/// millisecond ticks, so shorter pauses would wake contending requests together.
const MIN_BACKOFF_UNIT: Duration = Duration::from_millis(1);

/// How a regenerate's move to a new id ended.
enum Moved {
    /// The data is under the new id and the old record is gone.
    Done,
    /// The request left the session empty: the old record is gone, nothing was moved.
    Emptied,
    /// Another request ended the session meanwhile.
    Vanished,
}

/// Loading or saving a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session could not be encoded.
    #[error("cannot encode the session")]
    Codec(#[from] CodecError),
    /// No random id could be made.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Another request stored the session in a form this build cannot decode (a newer
    /// deployment's, say), so this request's changes cannot be merged into it; nothing
    /// was written.
    #[error("cannot merge into the session another request stored")]
    Unmergeable(#[source] CodecError),
    /// Other requests kept writing the session while this one merged its changes into
    /// it, more often than the manager retries; nothing of this request was written.
    #[error("the session kept changing under this request ({attempts} attempts to write it back)")]
    Contended {
        /// How many conditional writes were tried.
        attempts: usize,
    },
}

impl Error {
    /// Whether the request can succeed later (the store failed, other requests kept the
    /// session too busy to write back, or another deployment stored it in a format this
    /// one cannot merge into), which calls for a "try again later" answer such as 503;
    /// otherwise the failure is this process's own (encoding, randomness), a 500.
    ///
    /// ```
    /// use session_core::adapter::Error;
    /// use session_core::store::StoreError;
    ///
    /// assert!(Error::from(StoreError::UnknownId).is_unavailable());
    /// assert!(Error::Contended { attempts: 16 }.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        match self {
            // A store that cannot do what was asked will not learn it later.
            Self::Store(StoreError::Unsupported { .. }) => false,
            Self::Store(_) | Self::Contended { .. } | Self::Unmergeable(_) => true,
            Self::Codec(_) | Self::Random(_) => false,
        }
    }
}

/// A signed cookie logs someone in: only its name and attributes show.
impl std::fmt::Debug for CookieUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |header: &str| {
            let (pair, attributes) = header.split_once(';').unwrap_or((header, ""));
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            format!("{name}=..;{attributes}")
        };
        match self {
            Self::Keep => f.write_str("Keep"),
            Self::Set(header) => f.debug_tuple("Set").field(&redacted(header)).finish(),
            Self::Remove(header) => f.debug_tuple("Remove").field(&redacted(header)).finish(),
        }
    }
}

/// The session cookie a request carried, after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestCookie {
    /// No cookie of the session's name.
    Absent,
    /// One or more, none with a valid signature and shape.
    Invalid,
    /// The first one that verified.
    Valid(Verified),
}

/// What the response must do with the session cookie.
#[derive(Clone, PartialEq, Eq)]
pub enum CookieUpdate {
    /// Leave the browser's cookie as it is.
    Keep,
    /// Send this `Set-Cookie` header value.
    Set(String),
    /// Send this `Set-Cookie` header value, which removes the cookie.
    Remove(String),
}

/// Sessions for one application: a store and a configuration.
///
/// A web-framework adapter calls [`SessionManager::verify`] on the request's cookie (no
/// I/O), [`SessionManager::load`] when a handler first asks for the session, and
/// [`SessionManager::save`] after the handler has answered. Cloning is cheap, and clones
/// share the queues in which write-backs of one session take turns: make one manager per
/// application and clone it, rather than one per worker thread.
///
/// ```
/// use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
/// use session_core::{Config, Keyring, MemoryStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let config = Config::builder(Keyring::new([[7u8; 32]])?).build()?;
/// let sessions = SessionManager::new(MemoryStore::new(), config);
///
/// let mut state = sessions.load(RequestCookie::Absent).await?;
/// state.insert("uname", "ferris")?;
/// let CookieUpdate::Set(header) = sessions.save(state).await? else { unreachable!() };
/// assert!(header.starts_with("session="));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SessionManager {
    store: SharedStore,
    config: Arc<Config>,
    writes: Arc<WriteQueues>,
    metrics: StoreMetrics,
}

/// Write-backs of one session through one manager (and its clones) take turns, in the
/// order they come: overlapping requests in one process then queue up instead of
/// retrying against each other, and the conditional writes only meet other processes'.
/// Sessions share a queue by a hash of their key, so the table stays small.
struct WriteQueues(Box<[tokio::sync::Mutex<()>]>);

/// Queues per manager: enough that unrelated sessions rarely share one.
const WRITE_QUEUES: usize = 1024;
// `queue_index` keeps the top bits of a 64-bit hash, as many as index the queues.
const _: () = assert!(WRITE_QUEUES.is_power_of_two() && WRITE_QUEUES > 1);

impl WriteQueues {
    fn new() -> Self {
        Self(
            (0..WRITE_QUEUES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        )
    }

    /// Waits for the turn of the session stored under `key`.
    async fn turn(&self, key: &StoreKey) -> tokio::sync::MutexGuard<'_, ()> {
        let queue = &self.0[queue_index(key.as_str())];
        // A free queue is taken without an `Acquire` future; a busy one is never barged
        // into, since tokio hands a released turn to the oldest waiter first.
        match queue.try_lock() {
            Ok(turn) => turn,
            Err(_) => queue.lock().await,
        }
    }
}

/// The queue of a store key: a key ends in a random id or its digest, so its last eight
/// bytes, multiplied by an odd constant, spread keys evenly over the queues.
fn queue_index(key: &str) -> usize {
    let bytes = key.as_bytes();
    let tail = bytes
        .len()
        .checked_sub(8)
        .and_then(|start| bytes.get(start..))
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map_or(0, u64::from_le_bytes);
    let hash = tail.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // The top bits of the product mix every byte of the tail.
    (hash >> (u64::BITS - WRITE_QUEUES.trailing_zeros())) as usize
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .finish()
    }
}

impl SessionManager {
    /// Sessions kept in `store` (a store, or an `Arc` of one: see [`SharedStore`]),
    /// configured by `config`.
    pub fn new(store: impl Into<SharedStore>, config: Config) -> Self {
        let store = store.into();
        Self {
            metrics: StoreMetrics::new(store.backend()),
            store,
            config: Arc::new(config),
            writes: Arc::new(WriteQueues::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Finds the session cookie in a request's `Cookie` headers: the first value whose
    /// signature checks out. Does no I/O; a malformed or forged value never becomes an id.
    /// Takes the headers' raw bytes (or text): bytes that are not UTF-8 in other cookies do
    /// not hide the session cookie.
    pub fn verify<H: AsRef<[u8]>>(
        &self,
        cookie_headers: impl IntoIterator<Item = H>,
    ) -> RequestCookie {
        let cookie = self.config.cookie();
        let mut seen = false;
        for header in cookie_headers {
            for value in cookie.values_in(header.as_ref()) {
                seen = true;
                let length = self.config.id_length;
                if let Some(verified) = self.config.keyring.verify(cookie.name(), value, length) {
                    return RequestCookie::Valid(verified);
                }
            }
        }
        if seen {
            RequestCookie::Invalid
        } else {
            RequestCookie::Absent
        }
    }

    /// The session for a request: a new empty one without a verified cookie, or when the
    /// stored record is absent, expired, past its absolute deadline or undecodable.
    ///
    /// `cookie` is what [`SessionManager::verify`] returned. A cookie that leads nowhere
    /// is left alone: the response removes a cookie only when this request ended its
    /// session, so a late answer to an old request cannot delete a newer login's cookie.
    pub async fn load(&self, cookie: RequestCookie) -> Result<SessionState, Error> {
        let config = &self.config;
        let RequestCookie::Valid(verified) = cookie else {
            return Ok(SessionState::new(config.permanent));
        };
        let resign = verified.needs_resigning();
        let id = verified.into_id();
        let key = self.key(&id);
        // Read once, and only if this load needs the time: to refresh on load, or to check
        // an absolute deadline.
        let clock = OnceCell::new();
        let now = || *clock.get_or_init(SystemTime::now);
        let loaded = if self.refreshes_on_load() {
            let expires_at = now() + config.lifetime;
            self.call(
                Operation::LoadAndTouch,
                self.store.load_and_touch(&key, expires_at),
            )
            .await?
        } else {
            self.call(Operation::Load, self.store.load(&key)).await?
        };
        let Some(loaded) = loaded else {
            return Ok(SessionState::new(config.permanent));
        };
        let Some(record) = self.decode(&loaded) else {
            return Ok(SessionState::new(config.permanent));
        };
        let origin = Origin {
            id,
            key,
            loaded,
            resign,
            user: record.user.clone(),
        };
        if plan::deadline(&self.config, &record).is_some_and(|deadline| deadline <= now()) {
            Event::Expired.count();
            return Ok(SessionState::ended(origin, config.permanent));
        }
        Ok(SessionState::loaded(origin, record, config.permanent))
    }

    /// Writes the session back and says what to do with the cookie.
    ///
    /// Follows the write-back rules of `docs/design.md`: an ended session is deleted and
    /// its cookie removed; an empty one is not stored; a new one is created under a fresh
    /// id; a regenerated one moves to a fresh id; a modified one is written back only if
    /// no other request wrote it since it was loaded, and otherwise this request's changes
    /// are merged into what that request wrote; an unmodified one is only touched, when the
    /// refresh threshold has passed, and its permanent cookie sent again with a conditional
    /// write of the unchanged record when due. A session deleted meanwhile is never
    /// brought back.
    /// Callers skip this entirely when the handler answered 5xx.
    // Not an `async fn`: one keeps its arguments twice in its future
    // (rust-lang/rust#62958), and a request allocates this future and the ones below, which
    // must stay small enough for the allocator's fast path (`small_futures` below).
    #[allow(clippy::manual_async_fn)]
    pub fn save(
        &self,
        mut state: SessionState,
    ) -> impl Future<Output = Result<CookieUpdate, Error>> + '_ {
        async move {
            let now = SystemTime::now();
            let plan = plan::decide(&state, &self.config, self.store.touches_on_load(), now);
            let Some(origin) = state.origin.take() else {
                // A session that is not stored yet can only be created, or left alone.
                return match plan {
                    Plan::Create => Box::pin(self.create(state, now)).await,
                    _ => Ok(CookieUpdate::Keep),
                };
            };
            match plan {
                Plan::Nothing => Ok(CookieUpdate::Keep),
                Plan::Create => Box::pin(self.create(state, now)).await,
                // A resend writes the record, so it takes its turn like any write (boxed:
                // it is due at most once per refresh threshold); a touch never waits.
                Plan::Refresh { resend: true, .. } => {
                    let _turn = self.writes.turn(&origin.key).await;
                    Box::pin(self.resend(state, &origin, now)).await
                }
                Plan::Refresh { touch, .. } => self.refresh(&state, &origin, touch, now).await,
                Plan::End { then_create } => {
                    let _turn = self.writes.turn(&origin.key).await;
                    let ended = Box::pin(self.end(origin)).await?;
                    if ended {
                        Event::Destroyed.count();
                    }
                    if then_create {
                        Box::pin(self.create(state, now)).await
                    } else if ended {
                        Ok(self.removal())
                    } else {
                        Ok(self.vanished())
                    }
                }
                Plan::Regenerate => {
                    let _turn = self.writes.turn(&origin.key).await;
                    Box::pin(self.regenerate(state, origin, now)).await
                }
                Plan::WriteBack { resend } => {
                    let _turn = self.writes.turn(&origin.key).await;
                    Box::pin(self.write_back(state, origin, resend, now)).await
                }
            }
        }
    }

    /// Deletes the record whatever other requests wrote to it meanwhile; `false` when it
    /// was gone already (ended by another request, whose answer removed the cookie: this
    /// one must not remove a cookie that may be a newer login's by now).
    async fn end(&self, origin: Origin) -> Result<bool, Error> {
        let key = origin.key.clone();
        let ended = self.delete_whatever(&key, origin.loaded.revision()).await?;
        if ended {
            self.unbind(origin.user.as_deref(), &key).await;
        }
        Ok(ended)
    }

    /// Deletes the record under `key`, first at `revision` and then at whatever revision
    /// other requests moved it to; `false` when it was gone already.
    async fn delete_whatever(&self, key: &StoreKey, mut revision: Revision) -> Result<bool, Error> {
        for _ in 1..WRITE_ATTEMPTS {
            let delete = self.store.delete_if_unchanged(key, revision);
            let current = match self.call(Operation::DeleteIfUnchanged, delete).await {
                Ok(()) => return Ok(true),
                Err(StoreError::UnknownId) => return Ok(false),
                Err(StoreError::Conflict { current }) => current,
                Err(error) => return Err(error.into()),
            };
            let Some(current) = self.reported_or_loaded(key, current).await? else {
                return Ok(false);
            };
            revision = current.revision();
        }
        // Still being written: ending it matters more than telling who ended it.
        self.call(Operation::Delete, self.store.delete(key)).await?;
        Ok(true)
    }

    /// An unmodified session whose cookie is not due: its expiry is extended if planned.
    async fn refresh(
        &self,
        state: &SessionState,
        origin: &Origin,
        touch: bool,
        now: SystemTime,
    ) -> Result<CookieUpdate, Error> {
        if touch {
            let expires_at = plan::expiry(&self.config, &state.record, now);
            let touch = self.store.touch(&origin.key, expires_at);
            match self.call(Operation::Touch, touch).await {
                Ok(()) => {}
                // Ended by another request meanwhile: that request removed the cookie.
                Err(StoreError::UnknownId) => return Ok(CookieUpdate::Keep),
                Err(error) => return Err(error.into()),
            }
        }
        Ok(CookieUpdate::Keep)
    }

    /// Sends an unmodified session's cookie again, with one conditional write of its
    /// record that moves its expiry and notes when the cookie went out (so the next
    /// requests do not send it again). If another request changed the record meanwhile
    /// (its permanence, say), regenerated it (a login) or ended it, that request answered
    /// with the cookie the browser should keep: this request's, made from the record it
    /// loaded, would undo it, so none is sent.
    async fn resend(
        &self,
        mut state: SessionState,
        origin: &Origin,
        now: SystemTime,
    ) -> Result<CookieUpdate, Error> {
        state.record.cookie_sent_at = Some(now);
        let bytes = self.config.codec.encode(&state.record)?;
        // Without refresh-each-request, a resend (a re-signing) leaves the expiry where
        // it was, where the store tells it.
        let kept = (!self.config.refresh_each_request)
            .then(|| origin.loaded.expires_at())
            .flatten();
        let expires_at = kept.unwrap_or_else(|| plan::expiry(&self.config, &state.record, now));
        let write = self
            .store
            .update_loaded(&origin.key, &bytes, expires_at, &origin.loaded);
        match self.call(Operation::Update, write).await {
            Ok(_) => Ok(self.set_cookie(&origin.id, &state.record, now)),
            Err(StoreError::Conflict { .. } | StoreError::UnknownId) => Ok(CookieUpdate::Keep),
            Err(error) => Err(error.into()),
        }
    }

    /// A modified session under its own id: a conditional update (or, once emptied, a
    /// conditional delete), merged and retried when another request wrote it first.
    // Not an `async fn`, as `save`.
    #[allow(clippy::manual_async_fn)]
    fn write_back(
        &self,
        mut state: SessionState,
        mut origin: Origin,
        resend: bool,
        now: SystemTime,
    ) -> impl Future<Output = Result<CookieUpdate, Error>> + '_ {
        async move {
            let key = &origin.key;
            for attempt in 1..=WRITE_ATTEMPTS {
                let started = attempt_started(attempt);
                let result = if state.is_empty() {
                    self.call(
                        Operation::DeleteIfUnchanged,
                        self.store
                            .delete_if_unchanged(key, origin.loaded.revision()),
                    )
                    .await
                    .map(|()| None)
                } else {
                    if resend {
                        // Recorded in the write that happens anyway, so that the next requests
                        // know the browser's copy is fresh.
                        state.record.cookie_sent_at = Some(now);
                    }
                    let bytes = self.config.codec.encode(&state.record)?;
                    let expires_at = plan::expiry(&self.config, &state.record, now);
                    self.call(
                        Operation::Update,
                        self.store
                            .update_loaded(key, &bytes, expires_at, &origin.loaded),
                    )
                    .await
                    .map(Some)
                };
                let current = match result {
                    Ok(Some(_)) if resend => {
                        return Ok(self.set_cookie(&origin.id, &state.record, now))
                    }
                    Ok(Some(_)) => return Ok(CookieUpdate::Keep),
                    // This request removed the last key: it ended the session.
                    Ok(None) => {
                        Event::Destroyed.count();
                        Box::pin(self.unbind(origin.user.as_deref(), key)).await;
                        return Ok(self.removal());
                    }
                    Err(StoreError::Conflict { current }) => current,
                    Err(StoreError::UnknownId) => return Ok(self.vanished()),
                    Err(error) => return Err(error.into()),
                };
                if attempt == WRITE_ATTEMPTS {
                    break;
                }
                let Some(current) = Box::pin(self.current(key, current)).await? else {
                    return Ok(self.vanished());
                };
                let (loaded, record) = current;
                origin.loaded = loaded;
                Box::pin(self.merge(&mut state, record, attempt, started)).await;
            }
            Err(self.contended())
        }
    }

    /// A regenerated session: its data, merged with what other requests wrote, moves to a
    /// new id. The new record is created before the old one is deleted, and the old one
    /// only if it is still at the revision merged, so a failure in between leaves the old
    /// session working and an ended session stays ended.
    // Not an `async fn`, as `save`.
    #[allow(clippy::manual_async_fn)]
    fn regenerate(
        &self,
        mut state: SessionState,
        mut origin: Origin,
        now: SystemTime,
    ) -> impl Future<Output = Result<CookieUpdate, Error>> + '_ {
        async move {
            let mut copy = None;
            let moved =
                Box::pin(self.move_to_new_id(&mut state, &mut origin, &mut copy, now)).await;
            let copy_key = copy.map(|(id, _)| (self.key(&id), id));
            let new_user = state.record.user.clone();
            match (moved, copy_key) {
                (Ok(Moved::Done), Some((_, id))) => {
                    Event::Regenerated.count();
                    self.unbind(origin.user.as_deref(), &origin.key).await;
                    Ok(self.set_cookie(&id, &state.record, now))
                }
                (Ok(moved), copy) => {
                    // Emptied or ended meanwhile: the copy must not linger until it expires.
                    if let Some((key, _)) = copy {
                        self.call(Operation::Delete, self.store.delete(&key))
                            .await?;
                        self.unbind(new_user.as_deref(), &key).await;
                    }
                    Ok(match moved {
                        Moved::Emptied => {
                            Event::Destroyed.count();
                            self.unbind(origin.user.as_deref(), &origin.key).await;
                            self.removal()
                        }
                        Moved::Done | Moved::Vanished => self.vanished(),
                    })
                }
                (Err(error), copy) => {
                    // The old session still works. The copy is removed too; its own failure
                    // changes nothing for the caller, who gets the first error.
                    if let Some((key, _)) = copy {
                        let _ = self.call(Operation::Delete, self.store.delete(&key)).await;
                        self.unbind(new_user.as_deref(), &key).await;
                    }
                    Err(error)
                }
            }
        }
    }

    /// The steps of [`regenerate`](Self::regenerate): writes the state under a new id (kept
    /// in `copy`), then deletes the old record if it is still at the revision merged; on a
    /// conflict, merges and does both again.
    async fn move_to_new_id(
        &self,
        state: &mut SessionState,
        origin: &mut Origin,
        copy: &mut Option<(SessionId, Revision)>,
        now: SystemTime,
    ) -> Result<Moved, Error> {
        let old_key = origin.key.clone();
        for attempt in 1..=WRITE_ATTEMPTS {
            let started = attempt_started(attempt);
            if state.is_empty() {
                // Nothing to move: the copy goes, and so does the old record, unless
                // another request wrote to it meanwhile.
                if let Some((id, _)) = copy.take() {
                    self.call(Operation::Delete, self.store.delete(&self.key(&id)))
                        .await?;
                }
            } else {
                state.record.cookie_sent_at = Some(now);
                let bytes = self.config.codec.encode(&state.record)?;
                let expires_at = plan::expiry(&self.config, &state.record, now);
                match copy {
                    None => {
                        let user = state.record.user.as_deref();
                        *copy = Some(self.create_record(&bytes, expires_at, user).await?);
                    }
                    Some((id, revision)) => {
                        let key = self.key(id);
                        let update = self.store.update(&key, &bytes, expires_at, *revision);
                        *revision = self.call(Operation::Update, update).await?;
                    }
                }
            }
            let delete = self
                .store
                .delete_if_unchanged(&old_key, origin.loaded.revision());
            let current = match self.call(Operation::DeleteIfUnchanged, delete).await {
                Ok(()) if state.is_empty() => return Ok(Moved::Emptied),
                Ok(()) => return Ok(Moved::Done),
                Err(StoreError::Conflict { current }) => current,
                Err(StoreError::UnknownId) => return Ok(Moved::Vanished),
                Err(error) => return Err(error.into()),
            };
            if attempt == WRITE_ATTEMPTS {
                break;
            }
            let Some((loaded, record)) = self.current(&old_key, current).await? else {
                return Ok(Moved::Vanished);
            };
            origin.loaded = loaded;
            self.merge(state, record, attempt, started).await;
        }
        Err(self.contended())
    }

    // Not an `async fn`, as `save`.
    #[allow(clippy::manual_async_fn)]
    fn create(
        &self,
        mut state: SessionState,
        now: SystemTime,
    ) -> impl Future<Output = Result<CookieUpdate, Error>> + '_ {
        async move {
            state.record.cookie_sent_at = Some(now);
            let bytes = self.config.codec.encode(&state.record)?;
            let expires_at = plan::expiry(&self.config, &state.record, now);
            let user = state.record.user.as_deref();
            let (id, _) = self.create_record(&bytes, expires_at, user).await?;
            Event::Created.count();
            Ok(self.set_cookie(&id, &state.record, now))
        }
    }

    /// Stores `bytes` under a fresh id, bound to `user` if any; a taken id (astronomically
    /// unlikely) gets another.
    async fn create_record(
        &self,
        bytes: &[u8],
        expires_at: SystemTime,
        user: Option<&str>,
    ) -> Result<(SessionId, Revision), Error> {
        let user = user.map(|user| self.user_key(user));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = SessionId::generate(self.config.id_length)?;
            let key = self.key(&id);
            let created = match &user {
                None => {
                    let create = self.store.create(&key, bytes, expires_at);
                    self.call(Operation::Create, create).await
                }
                Some(user) => {
                    let create = self.store.create_bound(&key, bytes, expires_at, user);
                    self.call(Operation::CreateBound, create).await
                }
            };
            match created {
                Ok(revision) => {
                    if let Some(user) = &user {
                        self.prune(user).await;
                    }
                    return Ok((id, revision));
                }
                Err(StoreError::DuplicateId) if attempt < CREATE_ATTEMPTS => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The record a conflict reported, or read again when the store did not return it;
    /// `None` when it is gone.
    async fn current(
        &self,
        key: &StoreKey,
        reported: Option<Loaded>,
    ) -> Result<Option<(Loaded, Record)>, Error> {
        let Some(loaded) = self.reported_or_loaded(key, reported).await? else {
            return Ok(None);
        };
        // Written by a format this build cannot read: merging into it would destroy it.
        let record = Codec::decode(loaded.value()).map_err(|error| {
            Event::Undecodable.count();
            Error::Unmergeable(error)
        })?;
        Ok(Some((loaded, record)))
    }

    /// The record a conflict reported, or, from a store that does not report it, the one
    /// stored now; `None` when it is gone.
    async fn reported_or_loaded(
        &self,
        key: &StoreKey,
        reported: Option<Loaded>,
    ) -> Result<Option<Loaded>, Error> {
        match reported {
            Some(loaded) => Ok(Some(loaded)),
            None => Ok(self.call(Operation::Load, self.store.load(key)).await?),
        }
    }

    /// Re-applies the request's changes onto `current`. Once the first retries have
    /// failed, it first waits a random pause whose ceiling grows with the attempts and with
    /// what the failed attempt took since it `started`, so that contending requests spread
    /// out. `started` may be `None` only for the first `EAGER_RETRIES` attempts, which do
    /// not pause (see `attempt_started`).
    async fn merge(
        &self,
        state: &mut SessionState,
        current: Record,
        attempt: usize,
        started: Option<Instant>,
    ) {
        let overwritten = state.rebase(current);
        Event::ConflictMerged.count();
        tracing::debug!(
            backend = self.store.backend(),
            attempt,
            overwritten,
            "session written by another request meanwhile; changes merged"
        );
        if attempt > EAGER_RETRIES {
            let factor = 1u32 << (attempt - EAGER_RETRIES).min(MAX_BACKOFF_FACTOR.ilog2() as usize);
            let took = started.map_or(Duration::ZERO, |started| started.elapsed());
            let ceiling = took
                .max(MIN_BACKOFF_UNIT)
                .saturating_mul(factor)
                .min(MAX_PAUSE);
            let ceiling = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
            let pause = getrandom::u64().unwrap_or(0) % ceiling.saturating_add(1);
            tokio::time::sleep(Duration::from_micros(pause)).await;
        }
    }

    /// The `Set-Cookie` that removes the cookie, with the attributes it was set with.
    fn removal(&self) -> CookieUpdate {
        CookieUpdate::Remove(self.config.cookie.removal())
    }

    fn contended(&self) -> Error {
        Event::Contended.count();
        Error::Contended {
            attempts: WRITE_ATTEMPTS,
        }
    }

    /// A session another request ended while this one held it: this request's changes
    /// are dropped, and the cookie is left to the request that ended it.
    fn vanished(&self) -> CookieUpdate {
        tracing::debug!(
            backend = self.store.backend(),
            "session ended by another request; this request's changes were dropped"
        );
        CookieUpdate::Keep
    }

    /// The stored record, or `None` (logged) when it cannot be decoded.
    fn decode(&self, loaded: &Loaded) -> Option<Record> {
        match Codec::decode(loaded.value()) {
            Ok(record) => Some(record),
            Err(error) => {
                Event::Undecodable.count();
                // Not deleted: it may be a newer format written by a newer deployment
                // during a rolling upgrade. It expires by itself.
                tracing::warn!(
                    backend = self.store.backend(),
                    error = error.redacted(),
                    "undecodable session record treated as absent"
                );
                None
            }
        }
    }

    /// Whether reads extend expiry in the same round trip (Redis `GETEX`, memcached
    /// `gat`), so no separate touch is ever due.
    fn refreshes_on_load(&self) -> bool {
        self.config.refresh_each_request && self.store.touches_on_load()
    }

    fn set_cookie(&self, id: &SessionId, record: &Record, now: SystemTime) -> CookieUpdate {
        let config = &self.config;
        let value = config.keyring.sign(config.cookie.name(), id);
        let max_age = record.permanent.then(|| {
            plan::expiry(&self.config, record, now)
                .duration_since(now)
                .unwrap_or(Duration::ZERO)
        });
        CookieUpdate::Set(config.cookie.set_cookie(&value, max_age))
    }

    pub(crate) fn key(&self, id: &SessionId) -> StoreKey {
        StoreKey::with_scheme(&self.config.key_prefix, id, self.config.key_scheme)
    }

    /// The index key of `user`.
    pub(crate) fn user_key(&self, user: &str) -> UserKey {
        UserKey::new(&self.config.key_prefix, user)
    }

    /// Lists `user`'s index, which prunes the entries of sessions that ended without a
    /// logout (expired), so that an index no one looks at does not grow with every login.
    /// A failure is logged and not passed on: the login itself succeeded.
    async fn prune(&self, user: &UserKey) {
        let list = self.store.list_bound(user);
        if let Err(error) = self.call(Operation::ListBound, list).await {
            tracing::warn!(
                backend = self.store.backend(),
                error = &error as &dyn std::error::Error,
                "could not prune a user's index after a login; it is pruned when next listed"
            );
        }
    }

    /// Takes `key` out of `user`'s index after its record went. A failure is logged and
    /// not passed on: the record is gone, which is what ends the session, and an entry
    /// left behind is pruned when it is next met.
    async fn unbind(&self, user: Option<&str>, key: &StoreKey) {
        let Some(user) = user else { return };
        let user = self.user_key(user);
        let unbind = self.store.unbind(&user, key);
        if let Err(error) = self.call(Operation::Unbind, unbind).await {
            tracing::warn!(
                backend = self.store.backend(),
                error = &error as &dyn std::error::Error,
                "could not take an ended session out of its user's index; it is pruned when next listed"
            );
        }
    }

    /// Runs one store call inside a span that records the operation, the backend, the
    /// outcome and the duration, and never the id, and reports it to the metrics.
    pub(crate) async fn call<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let span = tracing::debug_span!(
            "session_store",
            operation = operation.as_str(),
            backend = self.store.backend(),
            outcome = Empty,
            duration_us = Empty,
        );
        let (result, took) = if span.is_disabled() {
            drop(span);
            if !metrics::TIMED {
                return call.await;
            }
            let started = Instant::now();
            (call.await, Took::Since(started))
        } else {
            // Boxed so that the span stays out of every request's future when tracing is
            // off: a smaller future is a cheaper allocation for each request.
            let (result, took) = Box::pin(traced(span, call)).await;
            (result, Took::Measured(took))
        };
        let failed = outcome(&result) == Outcome::Error;
        self.metrics.call(operation, failed, took);
        result
    }
}

/// How a store call ended: success, one of the answers the store protocol expects, or an
/// error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    DuplicateId,
    UnknownId,
    Conflict,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::DuplicateId => "duplicate_id",
            Self::UnknownId => "unknown_id",
            Self::Conflict => "conflict",
            Self::Error => "error",
        }
    }
}

fn outcome<T>(result: &Result<T, StoreError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(StoreError::DuplicateId) => Outcome::DuplicateId,
        Err(StoreError::UnknownId) => Outcome::UnknownId,
        Err(StoreError::Conflict { .. }) => Outcome::Conflict,
        Err(_) => Outcome::Error,
    }
}

/// When a write attempt started, read only for the attempts whose failure pauses in
/// proportion to how long the attempt took (see `merge`).
fn attempt_started(attempt: usize) -> Option<Instant> {
    (attempt > EAGER_RETRIES).then(Instant::now)
}

/// Runs `call` inside `span`, recording its outcome and duration there; returns the
/// duration too, for the metrics.
async fn traced<T>(
    span: tracing::Span,
    call: impl Future<Output = Result<T, StoreError>>,
) -> (Result<T, StoreError>, Duration) {
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    let took = started.elapsed();
    span.record("outcome", outcome(&result).as_str());
    span.record("duration_us", took.as_micros() as u64);
    (result, took)
}

#[cfg(test)]
mod small_futures {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

    use super::*;
    use crate::{Keyring, MemoryStore};
    use session_testkit::MAX_FUTURE_BYTES;

    /// Every request boxes the futures of `load`, `save` and of the write it makes; past
    /// `MAX_FUTURE_BYTES` glibc's allocator leaves its per-thread cache for its slow path
    /// (`_int_malloc`, consolidating its fast bins). The futures are made, never polled.
    #[tokio::test]
    async fn a_request_allocates_only_small_futures() {
        let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
            .build()
            .unwrap();
        let manager = SessionManager::new(MemoryStore::new(), config);
        let mut new = manager.load(RequestCookie::Absent).await.unwrap();
        new.insert("counter", 1).unwrap();
        let CookieUpdate::Set(header) = manager.save(new).await.unwrap() else {
            panic!("a new session sets a cookie");
        };
        let cookie = manager.verify([header.split(';').next().unwrap()]);
        let loaded = || async { manager.load(cookie.clone()).await.unwrap() };
        let now = SystemTime::now();

        let mut sizes = vec![
            ("load", size_of_val(&manager.load(cookie.clone()))),
            ("save", size_of_val(&manager.save(loaded().await))),
            (
                "create",
                size_of_val(&manager.create(SessionState::new(false), now)),
            ),
        ];
        let mut state = loaded().await;
        let origin = state.origin.take().unwrap();
        sizes.push((
            "write_back",
            size_of_val(&manager.write_back(state, origin, true, now)),
        ));
        let mut state = loaded().await;
        let mut origin = state.origin.take().unwrap();
        let mut copy = None;
        sizes.push((
            "move_to_new_id",
            size_of_val(&manager.move_to_new_id(&mut state, &mut origin, &mut copy, now)),
        ));
        sizes.push(("end", size_of_val(&manager.end(origin))));
        let mut state = loaded().await;
        let origin = state.origin.take().unwrap();
        sizes.push((
            "regenerate",
            size_of_val(&manager.regenerate(state, origin, now)),
        ));
        for (future, bytes) in sizes {
            assert!(
                bytes <= MAX_FUTURE_BYTES,
                "`{future}`'s future is {bytes} bytes, more than {MAX_FUTURE_BYTES}"
            );
        }
    }
}

#[cfg(test)]
mod write_queues {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

    use super::*;
    use std::task::{Context, Poll, Waker};

    use crate::id::MIN_ID_BYTES;
    use crate::store::KeyScheme;
    use crate::IdLength;

    /// Store keys of random ids, of the shortest and the default length, hashed or
    /// plain, land on every queue, none on many more than its share.
    #[test]
    fn keys_spread_over_every_queue() {
        for bytes in [MIN_ID_BYTES, IdLength::default().bytes()] {
            let length = IdLength::new(bytes).unwrap();
            for scheme in [KeyScheme::HashedId, KeyScheme::PlainId] {
                let mut counts = vec![0usize; WRITE_QUEUES];
                for _ in 0..WRITE_QUEUES * 32 {
                    let id = SessionId::generate(length).unwrap();
                    let key = StoreKey::with_scheme("session:", &id, scheme);
                    counts[queue_index(key.as_str())] += 1;
                }
                let (fewest, most) = (counts.iter().min(), counts.iter().max());
                let (fewest, most) = (fewest.copied().unwrap(), most.copied().unwrap());
                // An even spread keeps every queue well inside these bounds: only a skewed
                // index falls outside them.
                assert!(
                    fewest >= 4 && most <= 64,
                    "{bytes}-byte ids, {scheme:?}: queues took {fewest} to {most} keys"
                );
            }
        }
        assert_eq!(queue_index(""), 0);
    }

    /// A request that finds the queue free takes it at once, but never ahead of one that
    /// was already waiting when the turn was released.
    #[tokio::test(flavor = "current_thread")]
    async fn a_released_turn_goes_to_the_waiting_request() {
        let queues = Arc::new(WriteQueues::new());
        let id = SessionId::generate(IdLength::default()).unwrap();
        let key = StoreKey::new("session:", &id);
        let queue = &queues.0[queue_index(key.as_str())];
        let mut first = std::pin::pin!(queues.turn(&key));
        let mut context = Context::from_waker(Waker::noop());
        let Poll::Ready(first) = first.as_mut().poll(&mut context) else {
            panic!("a free queue made the request wait");
        };
        let waiter = tokio::spawn({
            let (queues, key) = (Arc::clone(&queues), key.clone());
            async move { drop(queues.turn(&key).await) }
        });
        // On this one thread, the waiter runs up to its wait behind `first`.
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        assert!(
            queue.try_lock().is_err(),
            "a later request took the turn the waiting one was due"
        );
        waiter.await.unwrap();
        assert!(queue.try_lock().is_ok());
    }
}
