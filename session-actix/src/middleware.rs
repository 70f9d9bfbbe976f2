//! `SessionMiddleware`: verifies the cookie before the handler and writes the session back
//! after it.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE, USER_AGENT, VARY};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage as _, ResponseError as _};
use session_core::adapter::{CookieUpdate, SessionManager, SessionState};
use session_core::{
    Codec, Config, ConfigBuilder, ConfigError, Device, DeviceInfo, KeyScheme, Keyring, SameSite,
    SharedStore,
};

use crate::error::{ErrorWithSession, SessionError};
use crate::session::RequestSession;

/// Server-side sessions for an actix-web app.
///
/// The secure defaults, and why:
/// - the cookie carries only a signed random id (HMAC-SHA256, 256-bit ids), so a client
///   can neither read the data nor guess or forge an id;
/// - `HttpOnly` (scripts cannot steal it) and `SameSite=Lax` (other sites cannot ride it
///   on POST requests);
/// - strict ids: a cookie the server did not issue, or whose session is gone, gets a new
///   session, never the attacker's id;
/// - a store failure answers 503 instead of silently dropping the session.
///
/// `Secure` is off by default so that `http://127.0.0.1` works the first time: turn it on
/// (or name the cookie `__Host-...`) behind HTTPS.
///
/// Build it once and clone it into each worker (clones are cheap and share state): then
/// overlapping requests of one session take turns in the process instead of retrying
/// their write-backs against each other.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer};
/// use session_actix::{Session, SessionMiddleware};
/// use session_actix::Keyring;
/// use session_fs::FileStore;
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let store = FileStore::open("./.sessions")?;
///     let keyring = Keyring::new([std::env::var("SESSION_SECRET").unwrap()]).unwrap();
///     // Built once and cloned into each worker: overlapping requests of one session then
///     // take turns in the process instead of retrying against each other.
///     let sessions = SessionMiddleware::new(store, keyring);
///     HttpServer::new(move || {
///         App::new()
///             .wrap(sessions.clone())
///             .route("/", web::get().to(|s: Session| async move {
///                 s.get::<String>("uname").ok().flatten().unwrap_or_default()
///             }))
///     })
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await
/// }
/// ```
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    manager: SessionManager,
    error_status: StatusCode,
}

/// Configures a [`SessionMiddleware`]; see [`session_core::Config`] for every default.
#[must_use]
pub struct SessionMiddlewareBuilder {
    store: SharedStore,
    config: ConfigBuilder,
    error_status: StatusCode,
}

impl std::fmt::Debug for SessionMiddlewareBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddlewareBuilder")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .field("error_status", &self.error_status)
            .finish()
    }
}

impl SessionMiddleware {
    /// Sessions in `store` (a store, or an `Arc` of one shared with a cleanup task or the
    /// application), cookies signed by `keyring`, every other setting at its default.
    pub fn new(store: impl Into<SharedStore>, keyring: Keyring) -> Self {
        Self::from_manager(SessionManager::new(
            store,
            Config::builder(keyring)
                .build()
                .unwrap_or_else(|_| unreachable!("the default configuration is valid")),
        ))
    }

    /// A builder for sessions in `store` (a store, or an `Arc` of one) signed by
    /// `keyring`.
    pub fn builder(store: impl Into<SharedStore>, keyring: Keyring) -> SessionMiddlewareBuilder {
        SessionMiddlewareBuilder {
            store: store.into(),
            config: Config::builder(keyring),
            error_status: StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A middleware around an existing manager, with a 503 on store errors.
    pub fn from_manager(manager: SessionManager) -> Self {
        Self {
            manager,
            error_status: StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The manager, for code that loads or inspects sessions outside a request.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

/// Forwards a builder method to `session_core::ConfigBuilder`, keeping its docs in one place.
macro_rules! forward {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty);)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $arg: $ty) -> Self {
                self.config = self.config.$name($arg);
                self
            }
        )*
    };
}

impl SessionMiddlewareBuilder {
    forward! {
        /// The cookie name (default `session`); `__Host-` names force Secure and Path=/.
        cookie_name(name: impl Into<String>);
        /// The cookie's Path (default `/`).
        cookie_path(path: impl Into<String>);
        /// The cookie's Domain (default none: this host only).
        cookie_domain(domain: impl Into<String>);
        /// Send the cookie over HTTPS only (default off, so plain-HTTP development works).
        cookie_secure(secure: bool);
        /// Hide the cookie from scripts (default on).
        cookie_http_only(http_only: bool);
        /// The cookie's SameSite (default `Lax`).
        cookie_same_site(same_site: SameSite);
        /// Partitioned cookie, CHIPS (default off).
        cookie_partitioned(partitioned: bool);
        /// Idle timeout and permanent cookie `Max-Age` (default 31 days).
        lifetime(lifetime: Duration);
        /// Timeout counted from creation, however active the session (default none).
        absolute_timeout(timeout: Duration);
        /// Whether new sessions get a permanent cookie (default `true`).
        permanent(permanent: bool);
        /// Extend expiry on reads, with a touch, never a rewrite (default `true`).
        refresh_each_request(refresh: bool);
        /// Touch at most once per this interval (default 60 s).
        refresh_threshold(threshold: Duration);
        /// Store key prefix (default `session:`).
        key_prefix(prefix: impl Into<String>);
        /// Random bytes per id (default 32, at least 16).
        id_length(bytes: usize);
        /// Stored encoding (default JSON).
        codec(codec: Codec);
        /// How ids appear in store keys (default: hashed, so a store dump logs no one in).
        key_scheme(scheme: KeyScheme);
        /// Keep the browser's `User-Agent` and address at login, for a devices page
        /// (default: not kept).
        device_info(device_info: DeviceInfo);
    }

    /// The status answered when the store fails (default 503 Service Unavailable); it
    /// must be 4xx or 5xx, which [`build`](Self::build) checks.
    pub fn error_status(mut self, status: StatusCode) -> Self {
        self.error_status = status;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] for a setting that cannot work, including an
    /// [`error_status`](Self::error_status) that is not 4xx or 5xx.
    pub fn build(self) -> Result<SessionMiddleware, ConfigError> {
        if !(self.error_status.is_client_error() || self.error_status.is_server_error()) {
            return Err(ConfigError::ErrorStatus(self.error_status.as_u16()));
        }
        let config = self.config.build()?;
        Ok(SessionMiddleware {
            manager: SessionManager::new(self.store, config),
            error_status: self.error_status,
        })
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            service: Rc::new(service),
            middleware: self.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an app's routes.
#[doc(hidden)]
pub struct SessionService<S> {
    service: Rc<S>,
    middleware: SessionMiddleware,
}

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let SessionMiddleware {
            manager,
            error_status,
        } = &self.middleware;
        // Raw bytes, not text: a byte that is not UTF-8 in another cookie must not hide
        // the session cookie, and verification checks every byte of the session cookie's.
        let headers = req.headers().get_all(COOKIE).map(HeaderValue::as_bytes);
        let cookie = manager.verify(headers);
        // Read only where the application keeps it, so other requests do not pay for it.
        let device = (manager.config().device_info() == DeviceInfo::Keep).then(|| {
            let agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok());
            let address = req.peer_addr().map(|address| address.ip().to_string());
            Device::new(agent, address)
        });
        let session = Rc::new(RequestSession::new(
            manager.clone(),
            cookie,
            *error_status,
            device,
        ));
        req.extensions_mut().insert(Rc::clone(&session));
        let response = self.service.call(req);

        Box::pin(async move {
            let result = response.await;
            let Some(state) = session.finish() else {
                // The handler never asked for the session: nothing to vary on or write.
                return result.map(ServiceResponse::map_into_left_body);
            };
            let mut response = match result {
                Ok(response) => response,
                // Boxed: rare, and the future that holds it must stay small.
                Err(error) => return Err(Box::pin(answered_with(&session, state, error)).await),
            };
            add_vary_cookie(response.headers_mut());
            if response.status().is_server_error() {
                return Ok(response.map_into_left_body());
            }
            match saved(&session, session.manager().save(state).await) {
                Ok(None) => {}
                Ok(Some(cookie)) => {
                    response.headers_mut().append(SET_COOKIE, cookie);
                }
                Err(error) => {
                    let mut failure = error.error_response();
                    add_vary_cookie(failure.headers_mut());
                    let (request, _) = response.into_parts();
                    return Ok(ServiceResponse::new(request, failure).map_into_right_body());
                }
            }
            Ok(response.map_into_left_body())
        })
    }
}

/// What a write-back's outcome adds to the answer: the `Set-Cookie` to send, if any, or
/// the error to answer with instead (logged once, where it is made).
fn saved(
    session: &RequestSession,
    outcome: Result<CookieUpdate, session_core::adapter::Error>,
) -> Result<Option<HeaderValue>, SessionError> {
    match outcome {
        Ok(CookieUpdate::Keep) => Ok(None),
        // The configuration renders only valid headers: a failure is logged and the cookie
        // left out.
        Ok(CookieUpdate::Set(header) | CookieUpdate::Remove(header)) => {
            Ok(HeaderValue::try_from(header)
                .map_err(|error| tracing::error!(%error, "unencodable Set-Cookie header"))
                .ok())
        }
        Err(source) => {
            let backend = session.manager().store().backend();
            let status = session.error_status();
            Err(SessionError::manager_failed(
                backend, source, status, "saving",
            ))
        }
    }
}

/// Writes the session back after a service inside the middleware answered `error`, as
/// after a handler's answer of the same status, and passes the error on with the
/// session's headers.
async fn answered_with(
    session: &RequestSession,
    state: SessionState,
    error: actix_web::Error,
) -> actix_web::Error {
    // As after a handler's answer: nothing is written after a 5xx.
    if error.as_response_error().status_code().is_server_error() {
        return ErrorWithSession::new(error, None).into();
    }
    match saved(session, session.manager().save(state).await) {
        Ok(cookie) => ErrorWithSession::new(error, cookie).into(),
        Err(failure) => ErrorWithSession::new(failure.into(), None).into(),
    }
}

/// Responses that depend on the session must not be cached across users.
pub(crate) fn add_vary_cookie(headers: &mut HeaderMap) {
    let already = headers.get_all(VARY).any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',').any(|item| {
                matches!(item.trim(), "*") || item.trim().eq_ignore_ascii_case("cookie")
            })
        })
    });
    if !already {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}
