//! The one place where a session id becomes a key in a store.

use std::fmt;

use crate::SessionId;

/// The default key prefix, so `redis-cli --scan --pattern 'session:*'` lists sessions.
pub const DEFAULT_KEY_PREFIX: &str = "session:";

/// The key a session is stored under: `<prefix><id>`.
///
/// Every backend receives this and never builds keys of its own, so a later change of
/// scheme (hashing ids at rest, say) is a change to [`StoreKey::new`] alone. Like
/// [`SessionId`], its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey(Box<str>);

impl StoreKey {
    /// The key for `id` under `prefix`.
    pub fn new(prefix: &str, id: &SessionId) -> Self {
        let mut key = String::with_capacity(prefix.len() + id.as_str().len());
        key.push_str(prefix);
        key.push_str(id.as_str());
        Self(key.into())
    }

    /// The key as text: the prefix followed by base64url characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}
