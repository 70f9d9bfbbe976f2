//! Server-side sessions: the browser keeps a signed random id, the server keeps the data.
//!
//! This crate knows no database and no web framework. Most applications use it through an
//! adapter (`session-actix`) and a store crate (`session-redis`, `session-sql`, ...), and
//! meet it only for what they configure. It is organised by who reads it:
//!
//! - **Application authors**: this page. [`Config`] and its builder say how sessions
//!   behave, the [`Keyring`] signs the cookie, the [`Codec`] picks how sessions are
//!   stored, [`SessionValue`] keeps a struct of the application's in the session,
//!   [`Level`] and [`FlashMessage`] are flash messages, [`SessionInfo`] and
//!   [`SessionHandle`] name a user's sessions on a devices page, [`KeyScheme`] says how ids
//!   are kept at rest and [`DeviceInfo`] whether logins keep the browser,
//!   [`ValueError`] is what reading or writing a value can answer,
//!   [`MemoryStore`] serves tests, and [`spawn_cleanup`] removes expired sessions from
//!   stores that do not expire them by themselves.
//! - **Store authors**: the [`store`] module, with the [`Store`](store::Store) trait and
//!   the conformance suite every store passes.
//! - **Framework-adapter authors**: the [`adapter`] module, with the
//!   [`SessionManager`](adapter::SessionManager) that loads a session for a request and
//!   writes it back by the rules of the project's `docs/design.md`.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use session_core::{Config, ConfigError, Keyring};
//!
//! fn sessions_config(secret: &[u8]) -> Result<Config, ConfigError> {
//!     Config::builder(Keyring::new([secret])?)
//!         .lifetime(Duration::from_secs(24 * 3600))
//!         .cookie_secure(true)
//!         .build()
//! }
//! # assert!(sessions_config(&[7u8; 32]).is_ok());
//! # assert!(sessions_config(b"too short").is_err());
//! ```
//!
//! # Users and their sessions
//! `SessionState::log_in` binds a session to a user id (and gives it a new id); every store
//! keeps an index of each user's sessions, so that
//! [`SessionManager::sessions_of`](adapter::SessionManager::sessions_of) lists them and
//! [`end_sessions`](adapter::SessionManager::end_sessions) logs a user out everywhere. Store
//! keys hold the SHA-256 of the id, not the id, so nothing read from a store logs anyone in.
//!
//! # Metrics
//! With a [`metrics`](https://docs.rs/metrics) recorder installed, the sessions count
//! what happens to them and time every store call: `session_created_total`,
//! `session_regenerated_total`, `session_destroyed_total`, `session_expired_total`,
//! `session_undecodable_total`, `session_conflicts_merged_total`,
//! `session_contended_total`, `session_store_errors_total` and the histogram
//! `session_store_call_duration_seconds`, the last two labelled `backend` and `operation`
//! and none with an id. The [`metrics`] module says what each counts and
//! what it costs; [`describe_metrics`] gives them their help text.
//!
//! # Performance
//! A request that reads its session costs one store round trip and a signature check; one
//! that changes it costs one more round trip for the write-back. `cargo bench -p
//! session-core` measures the parts; `docs/performance.md` has the figures.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapter;
mod cleanup;
mod codec;
mod config;
mod cookie;
mod flash;
mod id;
mod keyed;
mod keyring;
pub mod metrics;
pub mod store;
mod value;

pub use crate::adapter::state::{RedactedSerdeError, ValueError};
pub use crate::adapter::SessionInfo;
pub use crate::cleanup::{spawn_cleanup, Cleanup};
pub use crate::codec::{Codec, CodecError, Device, Record, FORMAT_VERSION};
pub use crate::config::{
    Config, ConfigBuilder, ConfigError, DeviceInfo, DurationSetting, DEFAULT_LIFETIME,
    DEFAULT_REFRESH_THRESHOLD,
};
pub use crate::cookie::{CookieSettings, SameSite, DEFAULT_COOKIE_NAME};
pub use crate::flash::{FlashMessage, Level};
pub use crate::id::{
    IdLength, IdLengthError, RandomError, SessionId, DEFAULT_ID_BYTES, MAX_ID_BYTES, MIN_ID_BYTES,
};
pub use crate::keyring::{Keyring, KeyringError, Verified, MIN_SECRET_BYTES};
pub use crate::metrics::describe_metrics;
pub use crate::store::{KeyScheme, MemoryStore, SessionHandle, SharedStore};
pub use crate::value::SessionValue;

/// The code in this crate's README compiles and runs.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
