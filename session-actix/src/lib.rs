//! Server-side sessions for actix-web.
//!
//! Wrap the app in [`SessionMiddleware`] with a store, and take [`Session`] in handlers:
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer, Responder};
//! use session_actix::{Session, SessionError, SessionMiddleware};
//! use session_actix::Keyring;
//! use session_fs::FileStore;
//!
//! async fn login(session: Session) -> Result<impl Responder, SessionError> {
//!     session.regenerate()?; // new id on login: no session fixation
//!     session.insert("uname", "ferris")?;
//!     Ok("logged in")
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let store = FileStore::open("./.sessions")?;
//!     let secret = std::env::var("SESSION_SECRET").expect("32+ byte secret");
//!     let keyring = Keyring::new([secret]).expect("secret of at least 32 bytes");
//!     // Built once and cloned into each worker: overlapping requests of one session then
//!     // take turns in the process instead of retrying against each other.
//!     let sessions = SessionMiddleware::new(store, keyring);
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(sessions.clone())
//!             .route("/login", web::post().to(login))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! What happens on each request follows the rules in the repository's `docs/design.md`:
//! - the cookie is verified before the handler runs, without I/O; a forged, malformed,
//!   unknown or expired one gets a fresh session;
//! - the store is read only when a handler extracts [`Session`];
//! - after the handler, a modified session is written once; an unmodified one's data is
//!   never changed: it is touched at most once per refresh threshold, and its permanent
//!   cookie sent again as often, with a conditional write of the unchanged record so that
//!   a late response never undoes another request's login or logout; an empty one is not
//!   stored and gets no cookie; nothing is written when the handler answered 5xx; an
//!   error from a middleware inside this one is an answer like a handler's (its 4xx keeps
//!   the session's changes), passed on as an [`ErrorWithSession`] that holds it;
//! - every response whose handler read the session carries `Vary: Cookie`;
//! - a store failure is logged and answered with 503 (configurable); a failure of this
//!   process (encoding the session, drawing a random id) with 500.
//!
//! Every store call runs in a `session_store` tracing span with the operation, backend,
//! outcome and duration, never the session id.

mod error;
mod middleware;
mod session;

pub use crate::error::{ErrorWithSession, SessionError};
pub use crate::middleware::{SessionMiddleware, SessionMiddlewareBuilder, SessionService};
pub use crate::session::Session;
pub use session_core::{
    describe_metrics, Codec, ConfigError, Device, DeviceInfo, FlashMessage, KeyScheme, Keyring,
    KeyringError, Level, MemoryStore, SameSite, SessionHandle, SessionInfo, SessionValue,
    SharedStore, ValueError,
};

/// The code in this crate's README and the workspace README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
