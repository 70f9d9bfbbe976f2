//! For authors of web-framework adapters: loading a request's session and writing it back.
//!
//! An adapter (such as `session-actix`) holds one [`SessionManager`] per application and,
//! for each request:
//!
//! 1. calls [`SessionManager::verify`] on the request's `Cookie` headers, which does no
//!    I/O and turns a validly signed cookie into a [`RequestCookie`];
//! 2. calls [`SessionManager::load`] when a handler first touches the session, and hands
//!    the handler the [`SessionState`];
//! 3. after the handler has answered (and not with a 5xx), calls
//!    [`SessionManager::save`] and applies the [`CookieUpdate`] to the response.
//!
//! Every rule of the write-back (what is created, updated, touched, deleted, and when the
//! cookie is sent) lives behind `save`, so adapters stay thin.

mod manager;
mod plan;
pub(crate) mod state;
mod users;

pub use manager::{CookieUpdate, Error, RequestCookie, SessionManager};
pub use state::{Change, SessionState};
pub use users::SessionInfo;
