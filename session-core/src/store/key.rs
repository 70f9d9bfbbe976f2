//! The one place where a session id becomes a key in a store, and a user id the key of
//! that user's index.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::SessionId;

/// The default key prefix, so `redis-cli --scan --pattern 'session:*'` lists sessions.
pub const DEFAULT_KEY_PREFIX: &str = "session:";

/// What follows the prefix in the key of a user's index: a session key never holds a `:`
/// after its prefix, so the two cannot meet.
const USER_INFIX: &str = "user:";

/// The length of a digest in base64url: 32 bytes of SHA-256.
const DIGEST_LEN: usize = 43;

/// How a session id appears in its store key.
///
/// # Default
/// [`KeyScheme::HashedId`]: a Redis dump, an SQL backup or a look at the session
/// directory shows no id that a cookie could carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyScheme {
    /// `<prefix><SHA-256 of the id, base64url>`: nothing read from a store logs anyone in.
    #[default]
    HashedId,
    /// `<prefix><id>`: for tools outside this project that look sessions up by the id in
    /// the cookie. Anyone who can read the store can then take over its sessions.
    PlainId,
}

/// The key a session is stored under: `<prefix><digest of the id>` by default, see
/// [`KeyScheme`].
///
/// Every backend receives this and never builds keys of its own. Like [`SessionId`], its
/// `Debug` output is redacted.
///
/// ```
/// use session_core::store::{KeyScheme, StoreKey};
/// use session_core::{IdLength, SessionId};
///
/// let id = SessionId::generate(IdLength::default()).unwrap();
/// let key = StoreKey::new("session:", &id);
/// assert!(key.as_str().starts_with("session:"));
/// assert!(!key.as_str().contains(id.as_str()));
/// let plain = StoreKey::with_scheme("session:", &id, KeyScheme::PlainId);
/// assert_eq!(plain.as_str(), format!("session:{}", id.as_str()));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(Box<str>);

impl StoreKey {
    /// The key for `id` under `prefix`, with the id hashed ([`KeyScheme::HashedId`]).
    pub fn new(prefix: &str, id: &SessionId) -> Self {
        Self::with_scheme(prefix, id, KeyScheme::HashedId)
    }

    /// The key for `id` under `prefix`, in `scheme`.
    pub fn with_scheme(prefix: &str, id: &SessionId, scheme: KeyScheme) -> Self {
        match scheme {
            KeyScheme::HashedId => {
                let mut key = String::with_capacity(prefix.len() + DIGEST_LEN);
                key.push_str(prefix);
                push_digest(&mut key, id.as_str());
                Self(key.into())
            }
            KeyScheme::PlainId => Self(joined(prefix, id.as_str())),
        }
    }

    /// A key as a store kept it (a member of a user's index, a row's id, a file's name),
    /// for stores that list keys.
    pub fn from_stored(key: impl Into<Box<str>>) -> Self {
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

/// The key of a user's index, the list of the sessions bound to that user:
/// `<prefix>user:<SHA-256 of the user id, base64url>`.
///
/// Hashing the user id gives every backend a key of fixed length and safe characters
/// (memcached keys, file names), whatever the application uses as user ids.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserKey(Box<str>);

impl UserKey {
    /// The index key of `user` under `prefix`.
    ///
    /// ```
    /// use session_core::store::UserKey;
    ///
    /// let key = UserKey::new("session:", "alice@example.com");
    /// assert!(key.as_str().starts_with("session:user:"));
    /// assert_eq!(key, UserKey::new("session:", "alice@example.com"));
    /// ```
    pub fn new(prefix: &str, user: &str) -> Self {
        let mut key = String::with_capacity(prefix.len() + USER_INFIX.len() + DIGEST_LEN);
        key.push_str(prefix);
        key.push_str(USER_INFIX);
        push_digest(&mut key, user);
        Self(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserKey(..)")
    }
}

/// Whether `key`, a key found under `prefix`, is a session's rather than a user index's:
/// stores that list keys by prefix use it to skip the indexes.
pub fn is_session_key(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(':'))
}

/// A session's opaque handle: the SHA-256 of its id, base64url. It names a session on a
/// devices page and in "log out that one", and is not a usable cookie.
///
/// ```
/// use session_core::SessionHandle;
///
/// assert!(SessionHandle::parse("not a handle").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle(Box<str>);

impl SessionHandle {
    /// The handle of `id`.
    pub(crate) fn of(id: &SessionId) -> Self {
        Self(digest(id.as_str()).into())
    }

    /// The handle of the session stored under `key`, made under `prefix` and `scheme`.
    pub(crate) fn of_key(prefix: &str, scheme: KeyScheme, key: &StoreKey) -> Option<Self> {
        let rest = key.as_str().strip_prefix(prefix)?;
        match scheme {
            KeyScheme::HashedId => Self::parse(rest),
            KeyScheme::PlainId => Some(Self(digest(rest).into())),
        }
    }

    /// A handle from text (a URL path segment, say): `None` unless it has a handle's shape.
    pub fn parse(text: &str) -> Option<Self> {
        let shaped = text.len() == DIGEST_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| Self(text.into()))
    }

    /// The handle as text: 43 base64url characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.0)
    }
}

fn digest(text: &str) -> String {
    let mut digest = String::with_capacity(DIGEST_LEN);
    push_digest(&mut digest, text);
    digest
}

/// Appends the digest of `text` to `out`, which the key being built already holds room for.
fn push_digest(out: &mut String, text: &str) {
    URL_SAFE_NO_PAD.encode_string(Sha256::digest(text.as_bytes()), out);
}

fn joined(prefix: &str, rest: &str) -> Box<str> {
    let mut key = String::with_capacity(prefix.len() + rest.len());
    key.push_str(prefix);
    key.push_str(rest);
    key.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdLength;

    #[test]
    fn a_hashed_key_holds_the_handle_and_not_the_id() {
        let id = SessionId::generate(IdLength::default()).unwrap();
        let key = StoreKey::new("p:", &id);
        assert!(!key.as_str().contains(id.as_str()));
        let handle = SessionHandle::of(&id);
        assert_eq!(key.as_str(), format!("p:{handle}"));
        assert_eq!(
            SessionHandle::of_key("p:", KeyScheme::HashedId, &key),
            Some(handle.clone())
        );
        let plain = StoreKey::with_scheme("p:", &id, KeyScheme::PlainId);
        assert_eq!(
            SessionHandle::of_key("p:", KeyScheme::PlainId, &plain),
            Some(handle)
        );
    }

    #[test]
    fn session_keys_and_user_keys_are_told_apart() {
        let id = SessionId::generate(IdLength::default()).unwrap();
        assert!(is_session_key("p:", StoreKey::new("p:", &id).as_str()));
        assert!(is_session_key(
            "p:",
            StoreKey::with_scheme("p:", &id, KeyScheme::PlainId).as_str()
        ));
        assert!(!is_session_key("p:", UserKey::new("p:", "alice").as_str()));
        assert!(!is_session_key("p:", "q:abc"));
        assert!(!is_session_key("p:", "p:"));
    }

    #[test]
    fn handles_parse_only_in_their_shape() {
        let id = SessionId::generate(IdLength::default()).unwrap();
        let handle = SessionHandle::of(&id);
        assert_eq!(SessionHandle::parse(handle.as_str()), Some(handle));
        assert!(SessionHandle::parse("../../etc/passwd").is_none());
        assert!(SessionHandle::parse(&"a".repeat(44)).is_none());
        assert!(SessionHandle::parse(&"a".repeat(42)).is_none());
    }
}
