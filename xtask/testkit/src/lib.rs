//! What the workspace's tests and `cargo xtask` share; never published.
//!
//! - [`launcher`]: one way to run a server process of a test's own (redis-server,
//!   memcached, mongoeco, PostgreSQL, MariaDB, ...) on a free loopback port, in a scratch
//!   directory, that can be killed, frozen, thawed and restarted, and that dies with the
//!   test; [`launcher::backends`] builds each backend's command line.
//! - [`RedisServer`] and [`MemcachedServer`]: private servers with the counters the store
//!   tests read (`INFO commandstats`, `stats`).
//! - [`App`]: an example app binary as a user runs it, and the HTTP client that talks to
//!   it; [`http`]: the response parser the clients share.
//! - [`CountingStore`] and [`assert_small_futures`] (feature `store`): checks on a real
//!   store; [`outage`]: what a store must do while its server does not answer.
//!
//! The outside store author's conformance suite is not here: it is public, in
//! `session_core::store::conformance`.

pub mod app;
pub mod http;
pub mod launcher;
pub mod memcached;
#[cfg(feature = "store")]
pub mod outage;
pub mod redis;
#[cfg(feature = "store")]
pub mod store;

pub use app::{Answer, App};
pub use launcher::{Error, Server, Spec};
pub use memcached::MemcachedServer;
pub use redis::RedisServer;
#[cfg(feature = "store")]
pub use store::{assert_small_futures, CountingStore, MAX_FUTURE_BYTES};
