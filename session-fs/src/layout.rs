//! Names and bytes on disk: which file holds a session, and its header.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::SystemTime;

use session_core::store::time::{from_unix_millis, unix_millis};
use session_core::store::{Revision, StoreKey, UserKey};
use sha2::{Digest as _, Sha256};

/// The length of the header: the record starts right after it.
pub(crate) const HEADER_LEN: usize = 24;
const MAGIC: &[u8; 4] = b"SES2";
const LENGTH_OFFSET: usize = 4;
const EXPIRY_OFFSET: usize = 8;
const REVISION_OFFSET: usize = 16;

/// The longest file name most filesystems take (`NAME_MAX`), in bytes.
const NAME_MAX: usize = 255;

/// How much of an escaped name too long for a file name a shortened name keeps, so that
/// with `~` and the digest it fits [`NAME_MAX`].
const SHORTENED_HEAD_MAX: usize = NAME_MAX - 1 - DIGEST_HEX_LEN;

/// The hexadecimal SHA-256 at the end of a shortened name.
const DIGEST_HEX_LEN: usize = 64;

/// The file name for a key: the key itself where its characters are safe in a file name
/// (borrowed: the default `session:<id>` keys always are), `%XX` otherwise. Never starts
/// with `.`, which marks the store's own files.
///
/// An escaped name longer than [`NAME_MAX`] (a long prefix of escaped characters: 164
/// `/` are 492 bytes) is shortened to its first bytes, `~` and the key's SHA-256 in hex,
/// so that every prefix session-core accepts has names. Escaping never writes `~`, so a
/// shortened name is never another key's escaped one, and two keys share one only if
/// their SHA-256 do.
pub(crate) fn file_name(key: &StoreKey) -> Cow<'_, str> {
    name_of(key.as_str())
}

/// The name of the directory that holds `user`'s index under `.users`: made from the key
/// as a session's file name is, so it is never mistaken for anything else there.
pub(crate) fn user_dir_name(user: &UserKey) -> Cow<'_, str> {
    name_of(user.as_str())
}

/// Whether `name`, one [`file_name`] gave, is shortened, so that the key cannot be read
/// back from it.
pub(crate) fn is_shortened(name: &str) -> bool {
    name.contains('~')
}

/// The key whose [`file_name`] is `name`, if the name is not shortened and is exactly the
/// one the store gives that key (`%41` is not `A`'s name).
pub(crate) fn key_from_name(name: &str) -> Option<String> {
    if is_shortened(name) {
        return None;
    }
    let mut bytes = Vec::with_capacity(name.len());
    let mut rest = name.bytes();
    while let Some(byte) = rest.next() {
        if byte == b'%' {
            let high = hex_value(rest.next()?)?;
            let low = hex_value(rest.next()?)?;
            bytes.push(high << 4 | low);
        } else {
            bytes.push(byte);
        }
    }
    let key = String::from_utf8(bytes).ok()?;
    (name_of(&key) == name).then_some(key)
}

/// The value of an upper-case hexadecimal digit, as [`file_name`] writes escapes.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// [`file_name`] of a key as text.
fn name_of(key: &str) -> Cow<'_, str> {
    let safe = |(i, byte): (usize, u8)| SAFE[usize::from(byte)] || (byte == b'.' && i > 0);
    if key.len() <= NAME_MAX && key.bytes().enumerate().all(safe) {
        return Cow::Borrowed(key);
    }
    let mut name = String::with_capacity(key.len() + 8);
    for (i, byte) in key.bytes().enumerate() {
        if safe((i, byte)) {
            name.push(char::from(byte));
        } else {
            let _ = write!(name, "%{byte:02X}");
        }
    }
    if name.len() > NAME_MAX {
        name = shortened(key, &name);
    }
    Cow::Owned(name)
}

/// The name of `key` whose escaped name `escaped` is too long: as much of `escaped` as
/// fits [`SHORTENED_HEAD_MAX`] without cutting an escape, `~`, and the key's SHA-256.
fn shortened(key: &str, escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut head = 0;
    while head < bytes.len() {
        let next = head + if bytes[head] == b'%' { 3 } else { 1 };
        if next > SHORTENED_HEAD_MAX {
            break;
        }
        head = next;
    }
    let mut name = String::with_capacity(NAME_MAX);
    name.push_str(&escaped[..head]);
    name.push('~');
    for byte in Sha256::digest(key.as_bytes()) {
        let _ = write!(name, "{byte:02x}");
    }
    name
}

/// The bytes that stand for themselves in a file name anywhere in it (`.` only after the
/// first), as a table: every operation checks every byte of its key.
const SAFE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':';
        byte += 1;
    }
    table
};

/// Whether `name` is one that [`file_name`] can give: not empty, no leading `.` (which
/// marks the store's own temporary and lock files), and nothing but safe bytes, `.` and
/// `%XX` escapes, or such a start of at most [`SHORTENED_HEAD_MAX`] bytes, `~` and a
/// lower-case hexadecimal SHA-256. Anything else in the directory (`lost+found`, another
/// program's file) is not a session, whatever it holds.
pub(crate) fn is_session_file(name: &str) -> bool {
    match name.split_once('~') {
        None => name.len() <= NAME_MAX && is_escaped_name(name),
        Some((head, digest)) => {
            head.len() <= SHORTENED_HEAD_MAX
                && is_escaped_name(head)
                && digest.len() == DIGEST_HEX_LEN
                && digest
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        }
    }
}

/// Whether `name` is not empty, does not start with `.`, and holds nothing but safe bytes,
/// `.` and `%XX` escapes.
fn is_escaped_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    if name.is_empty() || name.starts_with('.') {
        return false;
    }
    while let Some(byte) = bytes.next() {
        let fits = match byte {
            b'%' => {
                bytes.next().is_some_and(is_escape_digit)
                    && bytes.next().is_some_and(is_escape_digit)
            }
            b'.' => true,
            _ => SAFE[usize::from(byte)],
        };
        if !fits {
            return false;
        }
    }
    true
}

/// A digit of a `%XX` escape as [`file_name`] writes it: upper-case hexadecimal.
fn is_escape_digit(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'A'..=b'F').contains(&byte)
}

/// `SES2`, the record's length as a little-endian `u32` (0 if it does not fit: read to the
/// end), the expiry in little-endian Unix milliseconds, then the record's revision as a
/// little-endian `u64`; 24 bytes. The expiry sits at an 8-byte-aligned offset, so `touch`
/// is one small aligned write that leaves the revision alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    record_len: u32,
    expires_at: u64,
    revision: Revision,
}

impl Header {
    /// The header of a file holding `record_len` bytes of record at `revision`; a record
    /// too long for the field (4 GiB) is marked unknown and read to the end.
    pub(crate) fn new(record_len: usize, expires_at: SystemTime, revision: Revision) -> Self {
        Self {
            record_len: u32::try_from(record_len).unwrap_or(0),
            expires_at: unix_millis(expires_at),
            revision,
        }
    }

    /// The header at the start of `bytes`, the first bytes of a file (at most
    /// [`HEADER_LEN`]; fewer if the file is shorter); `None` if it is not a session file.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.get(..LENGTH_OFFSET)? != MAGIC {
            return None;
        }
        let record_len: [u8; 4] = bytes.get(LENGTH_OFFSET..EXPIRY_OFFSET)?.try_into().ok()?;
        let expiry: [u8; 8] = bytes.get(EXPIRY_OFFSET..REVISION_OFFSET)?.try_into().ok()?;
        let revision: [u8; 8] = bytes.get(REVISION_OFFSET..HEADER_LEN)?.try_into().ok()?;
        Some(Self {
            record_len: u32::from_le_bytes(record_len),
            expires_at: u64::from_le_bytes(expiry),
            revision: Revision::new(u64::from_le_bytes(revision)),
        })
    }

    /// The header's bytes.
    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[LENGTH_OFFSET..EXPIRY_OFFSET].copy_from_slice(&self.record_len.to_le_bytes());
        bytes[EXPIRY_OFFSET..REVISION_OFFSET].copy_from_slice(&self.expires_at.to_le_bytes());
        bytes[REVISION_OFFSET..].copy_from_slice(&self.revision.get().to_le_bytes());
        bytes
    }

    /// The record's length, if the file says.
    pub(crate) fn record_len(self) -> Option<usize> {
        match self.record_len {
            0 => None,
            len => usize::try_from(len).ok(),
        }
    }

    /// Where the expiry lives in the file, and its new bytes.
    pub(crate) fn expiry_field(expires_at: SystemTime) -> (u64, [u8; 8]) {
        (EXPIRY_OFFSET as u64, unix_millis(expires_at).to_le_bytes())
    }

    pub(crate) fn expires_at(self) -> SystemTime {
        from_unix_millis(self.expires_at)
    }

    /// This header as already expired: what a damaged session file counts as, so that no
    /// operation finds a session in it and the cleanup removes it.
    pub(crate) fn expired(self) -> Self {
        Self {
            expires_at: 0,
            ..self
        }
    }

    /// The record's revision.
    pub(crate) fn revision(self) -> Revision {
        self.revision
    }

    pub(crate) fn is_live(self, now: SystemTime) -> bool {
        self.expires_at > unix_millis(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::{IdLength, SessionId};

    #[test]
    fn default_keys_are_kept_readable() {
        let id = SessionId::generate(IdLength::default()).unwrap();
        let key = StoreKey::new("session:", &id);
        let name = file_name(&key);
        assert_eq!(name, key.as_str());
        assert!(matches!(name, Cow::Borrowed(_)), "no copy of a safe key");
    }

    #[test]
    fn unsafe_prefixes_are_escaped() {
        let id = SessionId::generate(IdLength::default()).unwrap();
        let key = StoreKey::new("../x/", &id);
        let name = file_name(&key);
        assert!(name.starts_with("%2E.%2Fx%2F"), "{name}");
        assert!(!name.contains('/'));
        assert!(is_session_file(&name));
        assert!(!is_session_file(".tmp-1234"));
    }

    #[test]
    fn only_names_a_key_can_give_are_session_files() {
        for key in ["session:", "../x/", "a b+c%", "app.v2:", "\u{e9}t\u{e9}:"] {
            let id = SessionId::generate(IdLength::default()).unwrap();
            let name = file_name(&StoreKey::new(key, &id)).into_owned();
            assert!(is_session_file(&name), "{name}");
        }
        for foreign in [
            "",
            ".locks",
            "lost+found",
            "notes txt",
            "50%",
            "%2e",
            "%G0",
            "caf\u{e9}",
        ] {
            assert!(!is_session_file(foreign), "{foreign}");
        }
    }

    #[test]
    fn names_too_long_for_a_file_are_shortened_and_still_recognised() {
        let id = SessionId::generate(IdLength::new(64).unwrap()).unwrap();
        let longest = "/".repeat(164);
        let key = StoreKey::new(&longest, &id);
        let name = file_name(&key);
        assert_eq!(name.len(), 254, "{name}");
        assert!(name.starts_with(&"%2F".repeat(63)), "{name}");
        assert_eq!(name.as_bytes()[189], b'~', "no escape is cut: {name}");
        assert!(is_session_file(&name), "{name}");
        assert_eq!(file_name(&key), name, "the same key, the same name");
        // Keys that share the kept start still get names of their own.
        let other = SessionId::generate(IdLength::new(64).unwrap()).unwrap();
        assert_ne!(file_name(&StoreKey::new(&longest, &other)), name);
        // A name of up to 255 bytes is the plain escaped key; from 256 it is shortened.
        let id = SessionId::generate(IdLength::default()).unwrap();
        for (slashes, shortened) in [(70, false), (71, true)] {
            let name = file_name(&StoreKey::new(&"/".repeat(slashes), &id)).into_owned();
            assert_eq!(name.contains('~'), shortened, "{slashes}: {name}");
            assert!(
                name.len() <= 255 && is_session_file(&name),
                "{slashes}: {name}"
            );
        }
        // A safe key longer than a file name is shortened too.
        let name = file_name(&StoreKey::new(&"p".repeat(300), &id)).into_owned();
        assert!(name.len() <= 255 && is_session_file(&name), "{name}");
    }

    #[test]
    fn only_well_formed_shortened_names_are_session_files() {
        let digest = "0123456789abcdef".repeat(4);
        assert!(is_session_file(&format!("%2Fx~{digest}")));
        for foreign in [
            format!("~{digest}"),
            format!(".x~{digest}"),
            format!("x~{}", &digest[1..]),
            format!("x~{digest}0"),
            format!("x~{}", digest.to_uppercase()),
            format!("x~{digest}~{digest}"),
            format!("{}~{digest}", "x".repeat(191)),
            "backup~".to_owned(),
            "x".repeat(256),
        ] {
            assert!(!is_session_file(&foreign), "{foreign}");
        }
    }

    #[test]
    fn names_that_are_not_shortened_give_their_key_back() {
        let id = SessionId::generate(IdLength::default()).unwrap();
        for prefix in ["session:", "../x/", "a b+c%", ".hidden:", "\u{e9}t\u{e9}:"] {
            let key = StoreKey::new(prefix, &id);
            let name = file_name(&key);
            assert_eq!(
                key_from_name(&name).as_deref(),
                Some(key.as_str()),
                "{name}"
            );
        }
        let long = StoreKey::new(&"/".repeat(164), &id);
        let name = file_name(&long);
        assert!(is_shortened(&name));
        assert_eq!(key_from_name(&name), None);
        // Names the store never gives a key are nobody's.
        for foreign in ["%41bc", "%2e", "%2", "%C3", "x%ZZ"] {
            assert_eq!(key_from_name(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn header_round_trips() {
        let at = from_unix_millis(1_800_000_000_123);
        let bytes = Header::new(300, at, Revision::new(7)).to_bytes();
        assert_eq!(&bytes[..4], b"SES2");
        assert_eq!(&bytes[16..], &7u64.to_le_bytes());
        let header = Header::parse(&bytes).unwrap();
        assert_eq!(header.expires_at(), at);
        assert_eq!(header.record_len(), Some(300));
        assert_eq!(header.revision(), Revision::new(7));
        // The expiry field `touch` writes is the one the header is read from.
        let (offset, field) = Header::expiry_field(at);
        assert_eq!(&bytes[offset as usize..][..8], &field);
        assert!(Header::parse(&bytes[..23]).is_none(), "a cut revision");
        assert!(Header::parse(b"JUNKJUNKJUNKJUNKJUNKJUNK").is_none());
        assert!(Header::parse(b"SES2").is_none());
    }
}
