//! Loading a session at the start of a request and writing it back at the end: the
//! session semantics of DESIGN.md, in one place, for any web framework.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::field::Empty;
use tracing::Instrument as _;

use crate::codec::{Codec, CodecError};
use crate::config::Config;
use crate::id::{RandomError, SessionId};
use crate::keyring::Verified;
use crate::state::SessionState;
use crate::store::{Loaded, Store, StoreError, StoreKey};

/// How often `create` is retried with a fresh id after `DuplicateId`. With 128 or more
/// random bits a single retry is already astronomically unlikely.
const CREATE_ATTEMPTS: usize = 3;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
/// [`SessionManager::save`] after the handler has answered. Cloning is cheap.
///
/// ```
/// use session_core::{Config, CookieUpdate, Keyring, MemoryStore, RequestCookie, SessionManager};
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
    store: Arc<dyn Store>,
    config: Arc<Config>,
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
    /// Sessions kept in `store`, configured by `config`.
    pub fn new(store: impl Store, config: Config) -> Self {
        Self::from_arc(Arc::new(store), config)
    }

    /// Like [`SessionManager::new`] for a store that is already shared.
    pub fn from_arc(store: Arc<dyn Store>, config: Config) -> Self {
        Self {
            store,
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Finds the session cookie in a request's `Cookie` headers: the first value whose
    /// signature checks out. Does no I/O; a malformed or forged value never becomes an id.
    pub fn verify<'h>(&self, cookie_headers: impl IntoIterator<Item = &'h str>) -> RequestCookie {
        let cookie = self.config.cookie();
        let mut seen = false;
        for header in cookie_headers {
            for value in cookie.values_in(header) {
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
    /// is removed at write-back if the session stays empty.
    pub async fn load(&self, cookie: RequestCookie) -> Result<SessionState, Error> {
        let config = &self.config;
        let verified = match cookie {
            RequestCookie::Absent => return Ok(SessionState::new(config.permanent)),
            RequestCookie::Invalid => {
                return Ok(SessionState::new(config.permanent).with_dead_cookie())
            }
            RequestCookie::Valid(verified) => verified,
        };
        let resign = verified.needs_resigning();
        let id = verified.into_id();
        let key = self.key(&id);
        let now = SystemTime::now();
        let loaded = if self.refreshes_on_load() {
            let expires_at = now + config.lifetime;
            self.call(
                "load_and_touch",
                self.dyn_store().load_and_touch(&key, expires_at),
            )
            .await?
        } else {
            self.call("load", self.dyn_store().load(&key)).await?
        };
        let dead = || Ok(SessionState::new(config.permanent).with_dead_cookie());
        let Some(loaded) = loaded else {
            return dead();
        };
        let expires_at = loaded.expires_at();
        let record = match Codec::decode(&Loaded::into_value(loaded)) {
            Ok(record) => record,
            Err(error) => {
                // Not deleted: it may be a newer format written by a newer deployment
                // during a rolling upgrade. It expires by itself.
                tracing::warn!(
                    backend = self.store.backend(),
                    error = &error as &(dyn std::error::Error + 'static),
                    "undecodable session record treated as absent"
                );
                return dead();
            }
        };
        if record.deadline.is_some_and(|deadline| deadline <= now) {
            let mut state = SessionState::new(config.permanent);
            state.retired = Some(id);
            return Ok(state);
        }
        Ok(SessionState::loaded(
            id,
            record,
            expires_at,
            resign,
            config.permanent,
        ))
    }

    /// Writes the session back and says what to do with the cookie.
    ///
    /// Follows DESIGN.md: a retired id (regenerate, destroy, absolute timeout) is deleted;
    /// an empty session is not stored and loses its cookie; a new or regenerated one is
    /// created under a fresh id; a modified one is updated (never resurrected if it was
    /// deleted meanwhile); an unmodified one is only touched, and only when the refresh
    /// threshold has passed. Callers skip this entirely when the handler answered 5xx.
    pub async fn save(&self, mut state: SessionState) -> Result<CookieUpdate, Error> {
        let config = &self.config;
        let now = SystemTime::now();
        let retired = state.retired.take();
        if let Some(old) = &retired {
            self.call("delete", self.dyn_store().delete(&self.key(old)))
                .await?;
        }
        if state.is_empty() {
            if let Some(id) = &state.id {
                self.call("delete", self.dyn_store().delete(&self.key(id)))
                    .await?;
            }
            let had_cookie = state.id.is_some() || retired.is_some() || state.dead_cookie;
            return Ok(if had_cookie {
                CookieUpdate::Remove(config.cookie.removal())
            } else {
                CookieUpdate::Keep
            });
        }

        let Some(id) = state.id.take() else {
            return Box::pin(self.create(state, now)).await;
        };
        let expires_at = self.expiry(&state, now);
        let resend = state.resign || state.permanence_changed() || self.cookie_due(&state, now);
        let extended = if state.is_modified() {
            if resend {
                // Recorded in the write that happens anyway, so that the next requests
                // know the browser's copy is fresh.
                state.record.cookie_sent_at = Some(now);
            }
            let bytes = config.codec.encode(&state.record)?;
            let key = self.key(&id);
            self.call("update", self.dyn_store().update(&key, &bytes, expires_at))
                .await
        } else if self.refresh_due(&state, expires_at) {
            let key = self.key(&id);
            self.call("touch", self.dyn_store().touch(&key, expires_at))
                .await
        } else {
            return Ok(if state.resign || (self.refreshes_on_load() && resend) {
                self.set_cookie(&id, &state, now)
            } else {
                CookieUpdate::Keep
            });
        };
        match extended {
            Ok(()) if resend => Ok(self.set_cookie(&id, &state, now)),
            Ok(()) => Ok(CookieUpdate::Keep),
            Err(StoreError::UnknownId) => {
                // Deleted meanwhile (a logout in another tab, say): the contract forbids
                // bringing it back, so this request's changes are dropped.
                tracing::debug!(
                    backend = self.store.backend(),
                    "session vanished during the request; its changes were dropped"
                );
                Ok(CookieUpdate::Remove(config.cookie.removal()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn create(
        &self,
        mut state: SessionState,
        now: SystemTime,
    ) -> Result<CookieUpdate, Error> {
        state.record.cookie_sent_at = Some(now);
        if state.record.deadline.is_none() {
            state.record.deadline = self
                .config
                .absolute_timeout
                .map(|timeout| state.record.created_at + timeout);
        }
        let bytes = self.config.codec.encode(&state.record)?;
        let expires_at = self.expiry(&state, now);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = SessionId::generate(self.config.id_length)?;
            let key = self.key(&id);
            match self
                .call("create", self.dyn_store().create(&key, &bytes, expires_at))
                .await
            {
                Ok(()) => return Ok(self.set_cookie(&id, &state, now)),
                Err(StoreError::DuplicateId) if attempt < CREATE_ATTEMPTS => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The idle expiry, never past the absolute deadline.
    fn expiry(&self, state: &SessionState, now: SystemTime) -> SystemTime {
        let idle = now + self.config.lifetime;
        match state.record.deadline {
            Some(deadline) => idle.min(deadline),
            None => idle,
        }
    }

    /// Whether a permanent cookie should be sent again so that its `Max-Age` follows the
    /// server-side expiry: not on every request (a header and a signature each time), but
    /// once the last one is older than the refresh threshold.
    fn cookie_due(&self, state: &SessionState, now: SystemTime) -> bool {
        state.is_permanent()
            && state.record.cookie_sent_at.is_none_or(|sent| {
                now.duration_since(sent).unwrap_or(Duration::ZERO) > self.config.refresh_threshold
            })
    }

    /// Whether reads extend expiry in the same round trip (Redis `GETEX`, memcached
    /// `gat`), so no separate touch is ever due.
    fn refreshes_on_load(&self) -> bool {
        self.config.refresh_each_request && self.dyn_store().touches_on_load()
    }

    fn refresh_due(&self, state: &SessionState, expires_at: SystemTime) -> bool {
        if !self.config.refresh_each_request || self.refreshes_on_load() {
            return false;
        }
        match state.expires_at {
            Some(current) => expires_at > current + self.config.refresh_threshold,
            None => true,
        }
    }

    fn set_cookie(&self, id: &SessionId, state: &SessionState, now: SystemTime) -> CookieUpdate {
        let config = &self.config;
        let value = config.keyring.sign(config.cookie.name(), id);
        let max_age = state.is_permanent().then(|| {
            self.expiry(state, now)
                .duration_since(now)
                .unwrap_or(Duration::ZERO)
        });
        CookieUpdate::Set(config.cookie.set_cookie(&value, max_age))
    }

    /// The store as a trait object. Calling through the `Arc` would pick the blanket
    /// `impl Store for Arc<S>`, whose every call boxes one more future around the real one.
    fn dyn_store(&self) -> &dyn Store {
        &*self.store
    }

    fn key(&self, id: &SessionId) -> StoreKey {
        StoreKey::new(&self.config.key_prefix, id)
    }

    /// Runs one store call inside a span that records the operation, the backend, the
    /// outcome and the duration, and never the id.
    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let span = tracing::debug_span!(
            "session_store",
            operation,
            backend = self.store.backend(),
            outcome = Empty,
            duration_us = Empty,
        );
        if span.is_disabled() {
            drop(span);
            return call.await;
        }
        // Boxed so that the span and the clock stay out of every request's future when
        // tracing is off: a smaller future is a cheaper allocation for each request.
        Box::pin(traced(span, call)).await
    }
}

async fn traced<T>(
    span: tracing::Span,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(StoreError::DuplicateId) => "duplicate_id",
        Err(StoreError::UnknownId) => "unknown_id",
        Err(_) => "error",
    };
    span.record("outcome", outcome);
    span.record("duration_us", started.elapsed().as_micros() as u64);
    result
}
