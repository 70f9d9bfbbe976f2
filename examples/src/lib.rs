//! The example apps' shared parts: settings from the environment, the store URL, and the
//! routes of each app (kept here so the tests can drive them without a socket).

pub mod baseline;
pub mod bench;
pub mod login;
pub mod server;
pub mod settings;
pub mod store_bench;
pub mod store_url;

pub use settings::Settings;
pub use store_url::open_store;
