//! Session ids: random bytes from the operating system, encoded base64url.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The fewest random bytes an id may have (128 bits).
pub const MIN_ID_BYTES: usize = 16;
/// The most random bytes an id may have.
pub const MAX_ID_BYTES: usize = 64;
/// The default number of random bytes in an id (256 bits).
pub const DEFAULT_ID_BYTES: usize = 32;

/// A session id: `len` bytes from the operating system's CSPRNG, base64url without padding.
///
/// An id is only ever made by [`SessionId::generate`] or by a successful cookie
/// verification ([`crate::Keyring::verify`]), so a value chosen by a client never becomes
/// an id (strict mode). Its `Debug` output is redacted: ids are bearer credentials and must
/// not end up in logs.
///
/// ```
/// use session_core::{IdLength, SessionId};
///
/// let id = SessionId::generate(IdLength::default()).unwrap();
/// assert_eq!(id.as_str().len(), 43);
/// assert_eq!(format!("{id:?}"), "SessionId(..)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(
    // Shared, not boxed: a request's id is copied from its cookie into its session state,
    // and a refcount is cheaper than an allocation.
    Arc<str>,
);

/// The number of random bytes in a new id: between 16 and 64, 32 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdLength(usize);

impl IdLength {
    /// Checks that `bytes` is between [`MIN_ID_BYTES`] and [`MAX_ID_BYTES`].
    ///
    /// ```
    /// use session_core::IdLength;
    ///
    /// assert_eq!(IdLength::new(48)?.encoded_len(), 64);
    /// assert_eq!(IdLength::new(8).unwrap_err().bytes(), 8);
    /// # Ok::<(), session_core::IdLengthError>(())
    /// ```
    pub fn new(bytes: usize) -> Result<Self, IdLengthError> {
        if (MIN_ID_BYTES..=MAX_ID_BYTES).contains(&bytes) {
            Ok(Self(bytes))
        } else {
            Err(IdLengthError { bytes })
        }
    }

    /// The number of random bytes.
    pub fn bytes(self) -> usize {
        self.0
    }

    /// The length of the encoded id in characters.
    pub fn encoded_len(self) -> usize {
        base64_len(self.0)
    }
}

impl Default for IdLength {
    fn default() -> Self {
        Self(DEFAULT_ID_BYTES)
    }
}

/// An id length outside [`MIN_ID_BYTES`]`..=`[`MAX_ID_BYTES`]: shorter ids can be
/// guessed, longer ones no longer fit every store's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("session id length of {bytes} bytes is outside 16..=64")]
pub struct IdLengthError {
    bytes: usize,
}

impl IdLengthError {
    /// The length asked for, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The operating system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(getrandom::Error);

impl SessionId {
    /// A new random id of `length` bytes.
    pub fn generate(length: IdLength) -> Result<Self, RandomError> {
        let mut bytes = [0u8; MAX_ID_BYTES];
        let bytes = &mut bytes[..length.bytes()];
        getrandom::fill(bytes).map_err(RandomError)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes).into()))
    }

    /// Accepts `encoded` as an id when it has exactly the shape of one we generate:
    /// `length.encoded_len()` base64url characters that decode to `length` bytes.
    ///
    /// This is the check that runs before any signature check or I/O; it does not make
    /// the value trustworthy on its own.
    pub(crate) fn parse(encoded: &str, length: IdLength) -> Option<Self> {
        if !has_id_shape(encoded.as_bytes(), length) {
            return None;
        }
        // Rejects non-canonical trailing bits, so one id has exactly one spelling. Decoded
        // into a stack buffer: this runs on every request that carries a cookie.
        let mut decoded = [0u8; MAX_ID_BYTES + 3];
        let len = URL_SAFE_NO_PAD.decode_slice(encoded, &mut decoded).ok()?;
        (len == length.bytes()).then(|| Self(encoded.into()))
    }

    /// An id whose exact spelling a signature has vouched for. Only [`SessionId::generate`]
    /// output is ever signed, so it is canonical without decoding it again.
    pub(crate) fn signed(encoded: &str) -> Self {
        Self(encoded.into())
    }

    /// The encoded id (base64url, no padding).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// The length and alphabet of an encoded id: the cheap check before anything else.
///
/// Every byte is looked up, with no early exit: a random id's characters defeat branch
/// prediction, so a branch per byte costs more than the lookups.
/// Takes bytes: a value from a `Cookie` header has not been checked to be UTF-8, and one
/// that has this shape is ASCII.
pub(crate) fn has_id_shape(encoded: &[u8], length: IdLength) -> bool {
    encoded.len() == length.encoded_len()
        && encoded
            .iter()
            .fold(true, |valid, &byte| valid & BASE64URL[usize::from(byte)])
}

/// The base64url alphabet, as a table indexed by byte.
const BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        byte += 1;
    }
    table
};

pub(crate) const fn base64_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_id_is_256_bits_in_43_chars() {
        let id = SessionId::generate(IdLength::default()).unwrap();
        assert_eq!(id.as_str().len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(id.as_str()).unwrap().len(), 32);
    }

    #[test]
    fn ids_differ() {
        let a = SessionId::generate(IdLength::default()).unwrap();
        let b = SessionId::generate(IdLength::default()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn id_length_bounds() {
        assert!(IdLength::new(15).is_err());
        assert!(IdLength::new(65).is_err());
        assert_eq!(IdLength::new(16).unwrap().encoded_len(), 22);
    }

    #[test]
    fn parse_rejects_wrong_shapes() {
        let len = IdLength::default();
        let good = SessionId::generate(len).unwrap();
        assert_eq!(SessionId::parse(good.as_str(), len), Some(good.clone()));
        assert_eq!(SessionId::parse(&good.as_str()[1..], len), None);
        assert_eq!(SessionId::parse(&format!("{}A", good.as_str()), len), None);
        let with_dot = format!("{}.", &good.as_str()[1..]);
        assert_eq!(SessionId::parse(&with_dot, len), None);
        let with_pad = format!("{}=", &good.as_str()[1..]);
        assert_eq!(SessionId::parse(&with_pad, len), None);
        // 43 chars carry 258 bits; an id whose two spare bits are set is not canonical.
        let mut chars: Vec<u8> = good.as_str().bytes().collect();
        chars[42] = b'_';
        assert_eq!(
            SessionId::parse(std::str::from_utf8(&chars).unwrap(), len),
            None
        );
    }

    proptest! {
        #[test]
        fn encoding_round_trips(bytes in proptest::collection::vec(any::<u8>(), 16..=64)) {
            let len = IdLength::new(bytes.len()).unwrap();
            let encoded = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(encoded.len(), len.encoded_len());
            let id = SessionId::parse(&encoded, len).unwrap();
            prop_assert_eq!(URL_SAFE_NO_PAD.decode(id.as_str()).unwrap(), bytes);
        }

        #[test]
        fn parse_never_accepts_garbage_of_the_wrong_length(s in "[A-Za-z0-9_-]{0,80}") {
            let len = IdLength::default();
            if s.len() != 43 {
                prop_assert!(SessionId::parse(&s, len).is_none());
            }
        }
    }
}
