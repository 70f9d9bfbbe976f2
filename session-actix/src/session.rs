//! The `Session` extractor and the per-request state it shares with the middleware.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, ready, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use session_core::adapter::{RequestCookie, SessionManager, SessionState};
use session_core::{Device, FlashMessage, Level, SessionHandle, SessionInfo, SessionValue};

use crate::error::SessionError;

/// Per-request session state, stored in the request's extensions by the middleware.
pub(crate) struct RequestSession {
    manager: SessionManager,
    cookie: RequestCookie,
    error_status: StatusCode,
    /// `None` until a handler first extracts the session (lazy loading), and again after
    /// the middleware has taken it for write-back.
    state: RefCell<Option<SessionState>>,
    loaded: Cell<bool>,
    /// An extraction is reading the store; the others of this request wait for it.
    loading: Cell<bool>,
    /// The extractions waiting for that read.
    waiting: RefCell<Vec<Waker>>,
    /// The browser, read by the middleware only when the configuration keeps it.
    device: Option<Device>,
}

impl RequestSession {
    pub(crate) fn new(
        manager: SessionManager,
        cookie: RequestCookie,
        error_status: StatusCode,
        device: Option<Device>,
    ) -> Self {
        Self {
            manager,
            cookie,
            error_status,
            state: RefCell::new(None),
            loaded: Cell::new(false),
            loading: Cell::new(false),
            waiting: RefCell::new(Vec::new()),
            device,
        }
    }

    fn failed(&self, source: session_core::adapter::Error, during: &'static str) -> SessionError {
        SessionError::manager_failed(
            self.manager.store().backend(),
            source,
            self.error_status,
            during,
        )
    }

    pub(crate) fn manager(&self) -> &SessionManager {
        &self.manager
    }

    pub(crate) fn error_status(&self) -> StatusCode {
        self.error_status
    }

    /// Ends the session's use by this request: the state, if a handler loaded it (`None`
    /// means the session was never touched). A load that finishes later, or an extraction
    /// from a request kept past its response, then sees `Finished` instead of a session
    /// whose changes nothing would write.
    pub(crate) fn finish(&self) -> Option<SessionState> {
        self.loaded.set(true);
        self.state.borrow_mut().take()
    }

    async fn ensure_loaded(&self) -> Result<(), SessionError> {
        // Extractors of one request are polled together: one reads the store, the others
        // take its session, or read again themselves if it failed or was dropped.
        poll_fn(|cx| {
            if self.loading.get() && !self.loaded.get() {
                let mut waiting = self.waiting.borrow_mut();
                // Polled again before the read ended (by its handler's other extractors):
                // one entry per task is enough.
                if !waiting.iter().any(|waker| waker.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        if self.loaded.get() {
            return Ok(());
        }
        let _loading = Loading::start(self);
        match self.manager.load(self.cookie.clone()).await {
            Ok(state) => {
                // After the response the session is finished: the state would be lost.
                if !self.loaded.replace(true) {
                    *self.state.borrow_mut() = Some(state);
                }
                Ok(())
            }
            Err(source) => Err(SessionError::manager_failed(
                self.manager.store().backend(),
                source,
                self.error_status,
                "loading",
            )),
        }
    }
}

/// A store read under way for a request's session; when it ends, however it ends, the
/// extractions waiting for it go on.
struct Loading<'a>(&'a RequestSession);

impl<'a> Loading<'a> {
    fn start(session: &'a RequestSession) -> Self {
        session.loading.set(true);
        Self(session)
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        self.0.loading.set(false);
        for waker in self.0.waiting.take() {
            waker.wake();
        }
    }
}

/// The session of the current request: take it as a handler argument.
///
/// The store is read when a handler first extracts it (routes that never ask for the
/// session cost nothing), and written back once, after the handler has answered, if and
/// only if something changed. Values are anything serde can represent.
///
/// ```no_run
/// use actix_web::{get, Responder};
/// use session_actix::{Session, SessionError};
///
/// #[get("/visits")]
/// async fn visits(session: Session) -> Result<impl Responder, SessionError> {
///     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
///     session.insert("visits", visits)?;
///     Ok(format!("visit number {visits}"))
/// }
/// ```
#[derive(Clone)]
pub struct Session(Rc<RequestSession>);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    fn read<R>(&self, read: impl FnOnce(&SessionState) -> R) -> Result<R, SessionError> {
        self.0
            .state
            .borrow()
            .as_ref()
            .map(read)
            .ok_or(SessionError::Finished)
    }

    /// The logged-in user and this session's handle (`None` before it is stored), or
    /// `None` when no one is logged in.
    fn logged_in(&self) -> Result<Option<(String, Option<SessionHandle>)>, SessionError> {
        self.read(|state| {
            let user = state.user()?.to_owned();
            Some((user, state.handle()))
        })
    }

    fn write<R>(&self, write: impl FnOnce(&mut SessionState) -> R) -> Result<R, SessionError> {
        self.0
            .state
            .borrow_mut()
            .as_mut()
            .map(write)
            .ok_or(SessionError::Finished)
    }

    /// The value under `key` as a `T`; `Ok(None)` if absent, an error if it is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        Ok(self.read(|state| state.get(key))??)
    }

    /// Stores `value` under `key`. Storing a value equal to the current one changes
    /// nothing and causes no write. If a concurrent request of the same session sets the
    /// same key, the one written back last wins; keys it does not set are merged. For a
    /// value computed from the current one, use [`Session::update`].
    pub fn insert(
        &self,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> Result<(), SessionError> {
        Ok(self.write(|state| state.insert(key, value))??)
    }

    /// Sets `key` to `f(current value)` and returns the new value: a read-modify-write
    /// that loses nothing to concurrent requests.
    ///
    /// When another request of the same session (a parallel AJAX call, say) writes it
    /// before this one is written back, `f` is run again on the value that request stored,
    /// so counters, lists and carts add up. `f` should compute the new value from its
    /// argument alone; the value returned here is the one this request computed.
    ///
    /// ```no_run
    /// use session_actix::{Session, SessionError};
    ///
    /// async fn add_to_cart(session: Session) -> Result<String, SessionError> {
    ///     let items = session.update("cart", |cart: Option<Vec<String>>| {
    ///         let mut cart = cart.unwrap_or_default();
    ///         cart.push("book".to_owned());
    ///         cart
    ///     })?;
    ///     Ok(format!("{} items", items.len()))
    /// }
    /// ```
    pub fn update<T, F>(&self, key: impl Into<String>, f: F) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        Ok(self.write(|state| state.update(key, f))??)
    }

    /// Removes `key`, returning its raw value if it had one.
    pub fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        self.write(|state| state.remove(key))
    }

    /// Removes `key` and returns its value as a `T`; an error, and nothing removed, if the
    /// value is not a `T`.
    pub fn remove_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        // Read before removing, so that a refused value stays, as `take_value` leaves it.
        let value = self.get::<T>(key)?;
        self.remove(key)?;
        Ok(value)
    }

    /// The application's `T`, kept under [`SessionValue::KEY`], or `T::default()` when the
    /// session has none; an error if the stored value is not a `T`.
    ///
    /// ```no_run
    /// use serde::{Deserialize, Serialize};
    /// use session_actix::{Session, SessionError, SessionValue};
    ///
    /// #[derive(Default, Serialize, Deserialize)]
    /// struct Cart {
    ///     items: Vec<String>,
    /// }
    ///
    /// impl SessionValue for Cart {
    ///     const KEY: &'static str = "cart";
    /// }
    ///
    /// async fn show(session: Session) -> Result<String, SessionError> {
    ///     Ok(session.value::<Cart>()?.items.join(", "))
    /// }
    ///
    /// async fn add(session: Session) -> Result<String, SessionError> {
    ///     let cart = session.update_value(|cart: &mut Cart| cart.items.push("book".into()))?;
    ///     Ok(format!("{} items", cart.items.len()))
    /// }
    /// ```
    pub fn value<T: SessionValue>(&self) -> Result<T, SessionError> {
        Ok(self.read(SessionState::value::<T>)??)
    }

    /// Stores `value` under [`SessionValue::KEY`], as [`Session::insert`].
    pub fn set_value<T: SessionValue>(&self, value: &T) -> Result<(), SessionError> {
        Ok(self.write(|state| state.set_value(value))??)
    }

    /// Changes the application's `T` in place, starting from the default, and returns the
    /// new value: like [`Session::update`], `f` runs again on the value a concurrent
    /// request stored, so it should change its argument and do nothing else.
    pub fn update_value<T, F>(&self, f: F) -> Result<T, SessionError>
    where
        T: SessionValue,
        F: Fn(&mut T) + Send + Sync + 'static,
    {
        Ok(self.write(|state| state.update_value(f))??)
    }

    /// Removes the application's `T` and returns it, if the session had one.
    pub fn take_value<T: SessionValue>(&self) -> Result<Option<T>, SessionError> {
        Ok(self.write(SessionState::take_value::<T>)??)
    }

    /// Adds a flash message for the next request that reads them, typically the page a
    /// form's POST redirects to.
    ///
    /// ```no_run
    /// use actix_web::{http::header::LOCATION, HttpResponse};
    /// use session_actix::{Level, Session, SessionError};
    ///
    /// async fn save_settings(session: Session) -> Result<HttpResponse, SessionError> {
    ///     session.flash(Level::Success, "Settings saved")?;
    ///     Ok(HttpResponse::SeeOther().insert_header((LOCATION, "/")).finish())
    /// }
    /// ```
    pub fn flash(&self, level: Level, text: impl Into<String>) -> Result<(), SessionError> {
        Ok(self.write(|state| state.flash(level, text))??)
    }

    /// The flash messages added since they were last taken, oldest first; each is shown
    /// once. Escape their text before putting it in HTML.
    pub fn take_flashes(&self) -> Result<Vec<FlashMessage>, SessionError> {
        Ok(self.write(SessionState::take_flashes)??)
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &str) -> Result<bool, SessionError> {
        self.read(|state| state.contains(key))
    }

    /// The keys, in order.
    pub fn keys(&self) -> Result<Vec<String>, SessionError> {
        self.read(|state| state.keys().map(str::to_owned).collect())
    }

    /// The number of keys.
    pub fn len(&self) -> Result<usize, SessionError> {
        self.read(SessionState::len)
    }

    /// Whether the session holds nothing: no keys, and no user logged in with
    /// [`Session::log_in`] (an empty session is neither stored nor given a cookie).
    pub fn is_empty(&self) -> Result<bool, SessionError> {
        self.read(SessionState::is_empty)
    }

    /// Removes every key, including any a concurrent request adds, and logs the user out
    /// ([`Session::log_in`]'s binding goes too); at write-back the record is deleted and the
    /// cookie removed.
    pub fn clear(&self) -> Result<(), SessionError> {
        self.write(SessionState::clear)
    }

    /// Whether the cookie outlives the browser session.
    pub fn is_permanent(&self) -> Result<bool, SessionError> {
        self.read(SessionState::is_permanent)
    }

    /// Makes the cookie permanent (`Max-Age` = lifetime) or a browser-session cookie.
    pub fn set_permanent(&self, permanent: bool) -> Result<(), SessionError> {
        self.write(|state| state.set_permanent(permanent))
    }

    /// A new id for the same data, at write-back; the old record is deleted and the old
    /// cookie stops working. **Call it on login** to defeat session fixation.
    pub fn regenerate(&self) -> Result<(), SessionError> {
        self.write(SessionState::regenerate)
    }

    /// Ends the session (logout): the record is deleted and the cookie removed, with the
    /// same attributes it was set with.
    pub fn destroy(&self) -> Result<(), SessionError> {
        self.write(SessionState::destroy)
    }

    /// Logs `user` in: binds the session to the user id and gives it a new id at
    /// write-back (no session fixation). The session is then listed by
    /// [`Session::sessions`] and ended by "log out everywhere"; [`Session::destroy`] logs
    /// out. With [`DeviceInfo::Keep`](session_core::DeviceInfo::Keep) configured, the
    /// browser's `User-Agent` and address are kept with it.
    ///
    /// ```no_run
    /// use session_actix::{Session, SessionError};
    ///
    /// async fn logged_in(session: Session) -> Result<&'static str, SessionError> {
    ///     session.log_in("alice")?;
    ///     Ok("welcome")
    /// }
    /// ```
    pub fn log_in(&self, user: impl Into<String>) -> Result<(), SessionError> {
        let device = self.0.device.clone();
        self.write(|state| state.log_in(user, device))
    }

    /// The user the session is bound to by [`Session::log_in`], if any.
    pub fn user(&self) -> Result<Option<String>, SessionError> {
        self.read(|state| state.user().map(str::to_owned))
    }

    /// The logged-in user's live sessions, most recently active first, this one marked
    /// `current`; empty when no one is logged in. For a devices page.
    ///
    /// ```no_run
    /// use session_actix::{Session, SessionError};
    ///
    /// async fn devices(session: Session) -> Result<String, SessionError> {
    ///     let sessions = session.sessions().await?;
    ///     Ok(format!("{} devices", sessions.len()))
    /// }
    /// ```
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, SessionError> {
        let Some((user, current)) = self.logged_in()? else {
            return Ok(Vec::new());
        };
        self.0
            .manager
            .sessions_of(&user, current.as_ref())
            .await
            .map_err(|error| self.0.failed(error, "listing"))
    }

    /// Ends the logged-in user's session named by `handle` (a "Revoke" button); `false`
    /// when the user has no such session. The current session's handle logs out.
    pub async fn end_session(&self, handle: &SessionHandle) -> Result<bool, SessionError> {
        let Some((user, current)) = self.logged_in()? else {
            return Ok(false);
        };
        if current.as_ref() == Some(handle) {
            self.destroy()?;
            return Ok(true);
        }
        self.0
            .manager
            .end_session(&user, handle)
            .await
            .map_err(|error| self.0.failed(error, "ending a session"))
    }

    /// Ends every other session of the logged-in user ("log out everywhere else", after a
    /// password change say) and returns how many it ended; this one stays logged in.
    ///
    /// ```no_run
    /// use session_actix::{Session, SessionError};
    ///
    /// async fn password_changed(session: Session) -> Result<String, SessionError> {
    ///     let ended = session.end_other_sessions().await?;
    ///     Ok(format!("logged out on {ended} other devices"))
    /// }
    /// ```
    pub async fn end_other_sessions(&self) -> Result<usize, SessionError> {
        let Some((user, current)) = self.logged_in()? else {
            return Ok(0);
        };
        self.0
            .manager
            .end_sessions(&user, current.as_ref())
            .await
            .map_err(|error| self.0.failed(error, "ending sessions"))
    }

    /// Ends every session of the logged-in user, this one included ("log out
    /// everywhere"); returns how many others it ended. Call it before
    /// [`Session::destroy`], not after: a destroyed session has no user any more.
    pub async fn end_all_sessions(&self) -> Result<usize, SessionError> {
        let ended = self.end_other_sessions().await?;
        self.destroy()?;
        Ok(ended)
    }
}

impl FromRequest for Session {
    type Error = SessionError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(session) = req.extensions().get::<Rc<RequestSession>>().cloned() else {
            return Box::pin(ready(Err(SessionError::MissingMiddleware)));
        };
        Box::pin(async move {
            session.ensure_loaded().await?;
            Ok(Session(session))
        })
    }
}
