//! What the example apps share: settings from the environment, the session store a URL
//! names, and the server that runs an app's routes behind the session middleware.

pub mod server;
pub mod settings;
pub mod store_url;

pub use server::{serve, serve_with};
pub use settings::{init_logging, Settings};
pub use store_url::open_store;
