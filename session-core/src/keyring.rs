//! Signing and verifying cookie values: `<id>.<HMAC-SHA256 signature>`.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::id::{base64_len, has_id_shape, IdLength, SessionId};

type HmacSha256 = Hmac<Sha256>;

/// The fewest bytes a secret may have.
pub const MIN_SECRET_BYTES: usize = 32;

/// Separates this use of the application secret from any other use the application
/// makes of it: the signing key is HMAC(secret, this label), never the secret itself.
const KEY_DERIVATION_LABEL: &[u8] = b"session-core/v1/cookie-id-signature";

const SIGNATURE_LEN: usize = base64_len(32);

/// A keyring that cannot be made: no secret, or one too short to sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// A secret has fewer than [`MIN_SECRET_BYTES`] bytes.
    #[error("session secret has {0} bytes; at least 32 are required")]
    SecretTooShort(usize),
    /// The keyring was given no secret.
    #[error("at least one session secret is required")]
    NoSecret,
}

/// The secrets that sign and verify session cookies.
///
/// The first secret signs; every secret verifies, so a secret can be rotated without
/// logging anyone out: put the new one first and keep the old one until the longest
/// session lifetime has passed. A cookie that verifies under an old secret is re-signed
/// with the first one on its next response.
///
/// The signature is HMAC-SHA256 over the cookie name and the id, so a value signed for one
/// cookie name is refused under another. Verification is constant-time.
///
/// ```
/// use session_core::{IdLength, Keyring, SessionId};
///
/// let old = Keyring::new([[7u8; 32]]).unwrap();
/// let rotated = Keyring::new([[9u8; 32], [7u8; 32]]).unwrap();
///
/// let id = SessionId::generate(IdLength::default()).unwrap();
/// let cookie = old.sign("session", &id);
///
/// let verified = rotated.verify("session", &cookie, IdLength::default()).unwrap();
/// assert_eq!(verified.id(), &id);
/// assert!(verified.needs_resigning());
/// assert!(rotated.verify("other-cookie", &cookie, IdLength::default()).is_none());
/// ```
#[derive(Clone)]
pub struct Keyring {
    // Each entry is an HMAC already keyed with a derived key; cloning it skips the key
    // schedule on every request.
    keys: Arc<[HmacSha256]>,
}

/// A cookie value whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    id: SessionId,
    resign: bool,
}

impl Verified {
    /// The id the cookie carried.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Whether it verified under a secret other than the first, and so should be re-signed.
    pub fn needs_resigning(&self) -> bool {
        self.resign
    }

    /// Takes the id out.
    pub fn into_id(self) -> SessionId {
        self.id
    }
}

impl Keyring {
    /// A keyring from one or more secrets, the signing one first. Each secret must have at
    /// least [`MIN_SECRET_BYTES`] bytes; there must be at least one.
    pub fn new<I, S>(secrets: I) -> Result<Self, KeyringError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let keys = secrets
            .into_iter()
            .map(|secret| derive(secret.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyringError::NoSecret);
        }
        Ok(Self { keys: keys.into() })
    }

    /// A keyring that does not sign: the cookie carries the bare id.
    ///
    /// Only for interoperability with a system that cannot sign. Ids are still 256-bit
    /// random values and strict mode still refuses ids the server did not issue, but a
    /// leaked store key becomes a usable cookie. Logs a warning every time it is made.
    pub fn insecure_unsigned() -> Self {
        tracing::warn!("session cookie signing is disabled: cookies carry bare session ids");
        Self { keys: Arc::new([]) }
    }

    /// Whether this keyring signs (false only for [`Keyring::insecure_unsigned`]).
    pub fn is_signing(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The cookie value for `id` under `cookie_name`: `<id>.<signature>`.
    pub fn sign(&self, cookie_name: &str, id: &SessionId) -> String {
        let Some(first) = self.keys.first() else {
            return id.as_str().to_owned();
        };
        let mut value = String::with_capacity(id.as_str().len() + 1 + SIGNATURE_LEN);
        value.push_str(id.as_str());
        value.push('.');
        URL_SAFE_NO_PAD.encode_string(tag(first, cookie_name, id.as_str()), &mut value);
        value
    }

    /// Checks a cookie value: its shape first (no allocation for obvious garbage), then
    /// the signature under each key in turn, in constant time per key.
    ///
    /// The value may be text or the raw bytes of a `Cookie` header: bytes that are not
    /// UTF-8 are refused like any other character outside the cookie's alphabet.
    pub fn verify(
        &self,
        cookie_name: &str,
        value: &(impl AsRef<[u8]> + ?Sized),
        length: IdLength,
    ) -> Option<Verified> {
        self.verify_bytes(cookie_name, value.as_ref(), length)
    }

    fn verify_bytes(&self, cookie_name: &str, value: &[u8], length: IdLength) -> Option<Verified> {
        if !self.is_signing() {
            let id = SessionId::parse(std::str::from_utf8(value).ok()?, length)?;
            return Some(Verified { id, resign: false });
        }
        if value.len() != length.encoded_len() + 1 + SIGNATURE_LEN {
            return None;
        }
        let (id, signature) = value.split_at_checked(length.encoded_len())?;
        let signature = signature.strip_prefix(b".")?;
        if !has_id_shape(id, length) {
            return None;
        }
        // Base64url characters only, so this is ASCII and the conversion cannot fail.
        let id = std::str::from_utf8(id).ok()?;
        let position = self
            .keys
            .iter()
            .position(|key| is_signature(tag(key, cookie_name, id), signature))?;
        Some(Verified {
            id: SessionId::signed(id),
            resign: position > 0,
        })
    }
}

fn derive(secret: &[u8]) -> Result<HmacSha256, KeyringError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyringError::SecretTooShort(secret.len()));
    }
    let mut kdf = HmacSha256::new_from_slice(secret).map_err(|_| KeyringError::NoSecret)?;
    kdf.update(KEY_DERIVATION_LABEL);
    let derived = kdf.finalize().into_bytes();
    HmacSha256::new_from_slice(&derived).map_err(|_| KeyringError::NoSecret)
}

/// The HMAC of `id` under `key` for the cookie `cookie_name`.
fn tag(key: &HmacSha256, cookie_name: &str, id: &str) -> [u8; 32] {
    let mut mac = key.clone();
    // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
    mac.update(&(cookie_name.len() as u64).to_be_bytes());
    mac.update(cookie_name.as_bytes());
    mac.update(id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Whether a cookie's signature is `tag`, in time that does not depend on where they
/// differ. Compared encoded, not decoded: encoding the expected tag is cheaper than
/// decoding the cookie's, and only the canonical encoding of the right tag matches. In
/// 64-bit words: six constant-time comparisons instead of 43.
fn is_signature(tag: [u8; 32], signature: &[u8]) -> bool {
    const WORDS: usize = SIGNATURE_LEN.div_ceil(8);
    fn words(bytes: &[u8]) -> [u64; WORDS] {
        let mut words = [0u64; WORDS];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut padded = [0u8; 8];
            padded[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_ne_bytes(padded);
        }
        words
    }
    let mut expected = [0u8; SIGNATURE_LEN];
    // Cannot fail: 32 bytes always encode to exactly SIGNATURE_LEN characters.
    let _ = URL_SAFE_NO_PAD.encode_slice(tag, &mut expected);
    signature.len() == SIGNATURE_LEN && bool::from(words(&expected).ct_eq(&words(signature)))
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAME: &str = "session";

    fn keyring(byte: u8) -> Keyring {
        Keyring::new([[byte; 32]]).unwrap()
    }

    fn new_id() -> SessionId {
        SessionId::generate(IdLength::default()).unwrap()
    }

    fn verify(ring: &Keyring, value: &str) -> Option<Verified> {
        ring.verify(NAME, value, IdLength::default())
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            Keyring::new([[1u8; 31]]),
            Err(KeyringError::SecretTooShort(31))
        ));
        assert!(matches!(
            Keyring::new(Vec::<Vec<u8>>::new()),
            Err(KeyringError::NoSecret)
        ));
        assert!(matches!(
            Keyring::new([vec![1u8; 32], vec![2u8; 8]]),
            Err(KeyringError::SecretTooShort(8))
        ));
    }

    #[test]
    fn signed_value_has_the_documented_shape() {
        let id = new_id();
        let value = keyring(1).sign(NAME, &id);
        assert_eq!(value.len(), 43 + 1 + 43);
        assert_eq!(value.split_once('.').unwrap().0, id.as_str());
    }

    #[test]
    fn round_trip() {
        let ring = keyring(1);
        let id = new_id();
        let verified = verify(&ring, &ring.sign(NAME, &id)).unwrap();
        assert_eq!(verified.id(), &id);
        assert!(!verified.needs_resigning());
    }

    #[test]
    fn tampered_id_or_signature_is_refused() {
        let ring = keyring(1);
        let value = ring.sign(NAME, &new_id());
        for position in [0, 20, 42, 44, 60, 86] {
            let mut bytes = value.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(verify(&ring, &tampered).is_none(), "position {position}");
        }
    }

    #[test]
    fn truncated_or_extended_values_are_refused() {
        let ring = keyring(1);
        let value = ring.sign(NAME, &new_id());
        for end in 0..value.len() {
            assert!(verify(&ring, &value[..end]).is_none(), "truncated to {end}");
        }
        assert!(verify(&ring, &format!("{value}A")).is_none());
        assert!(verify(&ring, &format!("{value}=")).is_none());
        assert!(verify(&ring, &value.replace('.', "")).is_none());
    }

    #[test]
    fn signature_is_hmac_sha256_of_the_length_prefixed_name_and_the_id() {
        // Spelled out with the hmac crate, so that a change of the cookie format (which
        // would log every user out) cannot pass unnoticed.
        let secret = [9u8; 32];
        let id = SessionId::signed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let mut kdf = HmacSha256::new_from_slice(&secret).unwrap();
        kdf.update(KEY_DERIVATION_LABEL);
        let mut mac = HmacSha256::new_from_slice(&kdf.finalize().into_bytes()).unwrap();
        mac.update(&7u64.to_be_bytes());
        mac.update(b"session");
        mac.update(id.as_str().as_bytes());
        let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let value = Keyring::new([secret]).unwrap().sign("session", &id);
        assert_eq!(value, format!("{}.{expected}", id.as_str()));
    }

    #[test]
    fn a_non_canonical_encoding_of_the_right_signature_is_refused() {
        let ring = keyring(1);
        let value = ring.sign(NAME, &new_id());
        // 43 characters carry 258 bits of which a 32-byte tag uses 256: flipping the
        // lowest bit of the last character changes the text, not the decoded bytes.
        let alphabet = base64::alphabet::URL_SAFE.as_str().as_bytes();
        let last = *value.as_bytes().last().unwrap();
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        let mut bytes = value.clone().into_bytes();
        *bytes.last_mut().unwrap() = alphabet[index ^ 1];
        let tampered = String::from_utf8(bytes).unwrap();
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
        );
        let tag = |value: &str| lenient.decode(value.split_once('.').unwrap().1).unwrap();
        assert_eq!(
            tag(&tampered),
            tag(&value),
            "the same tag, spelled otherwise"
        );
        assert!(verify(&ring, &tampered).is_none());
    }

    #[test]
    fn raw_header_bytes_verify_and_bytes_that_are_not_utf8_are_refused() {
        let ring = keyring(1);
        let id = new_id();
        let value = ring.sign(NAME, &id);
        let verified = ring.verify(NAME, value.as_bytes(), IdLength::default());
        assert_eq!(verified.map(Verified::into_id), Some(id));
        for position in [0, 42, 43, 86] {
            let mut bytes = value.clone().into_bytes();
            bytes[position] = 0xff;
            assert!(ring.verify(NAME, &bytes, IdLength::default()).is_none());
        }
        let unsigned = Keyring::insecure_unsigned();
        assert!(unsigned
            .verify(NAME, b"\xff".as_slice(), IdLength::default())
            .is_none());
    }

    #[test]
    fn wrong_key_is_refused() {
        let value = keyring(1).sign(NAME, &new_id());
        assert!(verify(&keyring(2), &value).is_none());
    }

    #[test]
    fn signature_is_bound_to_the_cookie_name() {
        let ring = keyring(1);
        let value = ring.sign("a", &new_id());
        assert!(ring.verify("b", &value, IdLength::default()).is_none());
        assert!(ring.verify("a", &value, IdLength::default()).is_some());
    }

    #[test]
    fn rotation_verifies_old_keys_and_asks_for_resigning() {
        let old = keyring(1);
        let rotated = Keyring::new([[2u8; 32], [1u8; 32]]).unwrap();
        let id = new_id();

        let from_old = verify(&rotated, &old.sign(NAME, &id)).unwrap();
        assert_eq!(from_old.id(), &id);
        assert!(from_old.needs_resigning());

        let resigned = rotated.sign(NAME, &id);
        let fresh = verify(&rotated, &resigned).unwrap();
        assert!(!fresh.needs_resigning());
        // The old keyring alone no longer accepts what the new first key signed.
        assert!(verify(&old, &resigned).is_none());
    }

    #[test]
    fn unsigned_keyring_carries_the_bare_id() {
        let ring = Keyring::insecure_unsigned();
        let id = new_id();
        let value = ring.sign(NAME, &id);
        assert_eq!(value, id.as_str());
        assert_eq!(verify(&ring, &value).unwrap().id(), &id);
        assert!(verify(&ring, "../../etc/passwd").is_none());
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let debug = format!("{:?}", keyring(0x41));
        assert!(!debug.contains("65"), "{debug}");
        assert!(!debug.contains("AAAA"), "{debug}");
    }

    proptest! {
        #[test]
        fn any_signed_id_verifies_and_any_flip_does_not(
            secret in proptest::collection::vec(any::<u8>(), 32..64),
            name in "[a-zA-Z0-9_-]{1,20}",
            flip in 0usize..87,
        ) {
            let ring = Keyring::new([secret]).unwrap();
            let id = new_id();
            let value = ring.sign(&name, &id);
            let verified = ring.verify(&name, &value, IdLength::default());
            prop_assert_eq!(verified.map(Verified::into_id), Some(id));

            let mut bytes = value.into_bytes();
            bytes[flip] = if bytes[flip] == b'x' { b'y' } else { b'x' };
            let flipped = String::from_utf8(bytes).unwrap();
            prop_assert!(ring.verify(&name, &flipped, IdLength::default()).is_none());
        }
    }
}
