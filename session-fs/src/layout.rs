//! Names and bytes on disk: which file holds a session, and its header.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::SystemTime;

use session_core::time::{from_unix_millis, unix_millis};
use session_core::{Revision, StoreKey};

/// The length of the header this version writes (a file read may have an older, shorter
/// one: see [`Header::record_offset`]).
pub(crate) const HEADER_LEN: usize = 24;
const MAGIC: &[u8; 4] = b"SES2";
/// Files written before records carried revisions: the same header without the revision.
const LEGACY_MAGIC: &[u8; 4] = b"SES1";
const LEGACY_HEADER_LEN: usize = 16;
const LENGTH_OFFSET: usize = 4;
const EXPIRY_OFFSET: usize = 8;
const REVISION_OFFSET: usize = 16;

/// The file name for a key: the key itself where its characters are safe in a file name
/// (borrowed: the default `session:<id>` keys always are), `%XX` otherwise. Never starts
/// with `.`, which marks the store's own files.
pub(crate) fn file_name(key: &StoreKey) -> Cow<'_, str> {
    let key = key.as_str();
    let safe = |(i, byte): (usize, u8)| SAFE[usize::from(byte)] || (byte == b'.' && i > 0);
    if key.bytes().enumerate().all(safe) {
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
    Cow::Owned(name)
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
/// `%XX` escapes. Anything else in the directory (`lost+found`, another program's file)
/// is not a session, whatever it holds.
pub(crate) fn is_session_file(name: &str) -> bool {
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
/// little-endian `u64`; 24 bytes. The expiry sits at the same 8-byte-aligned offset in
/// every version, so `touch` is one small aligned write that leaves the revision alone.
///
/// `SES1` files, written before records carried revisions, have the same first 16 bytes
/// and no revision (their length field is 0 in files written before it was kept); they
/// read as [`Revision::UNVERSIONED`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    record_len: u32,
    expires_at: u64,
    revision: Revision,
    legacy: bool,
}

impl Header {
    /// The header of a file holding `record_len` bytes of record at `revision`; a record
    /// too long for the field (4 GiB) is marked unknown and read to the end.
    pub(crate) fn new(record_len: usize, expires_at: SystemTime, revision: Revision) -> Self {
        Self {
            record_len: u32::try_from(record_len).unwrap_or(0),
            expires_at: unix_millis(expires_at),
            revision,
            legacy: false,
        }
    }

    /// The header at the start of `bytes`, the first bytes of a file (at most
    /// [`HEADER_LEN`]; fewer if the file is shorter); `None` if it is not a session file.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let (revision, legacy) = match bytes.get(..4)? {
            magic if magic == MAGIC => {
                let revision: [u8; 8] = bytes.get(REVISION_OFFSET..HEADER_LEN)?.try_into().ok()?;
                (Revision::new(u64::from_le_bytes(revision)), false)
            }
            magic if magic == LEGACY_MAGIC => (Revision::UNVERSIONED, true),
            _ => return None,
        };
        let record_len: [u8; 4] = bytes.get(LENGTH_OFFSET..EXPIRY_OFFSET)?.try_into().ok()?;
        let expiry: [u8; 8] = bytes
            .get(EXPIRY_OFFSET..LEGACY_HEADER_LEN)?
            .try_into()
            .ok()?;
        Some(Self {
            record_len: u32::from_le_bytes(record_len),
            expires_at: u64::from_le_bytes(expiry),
            revision,
            legacy,
        })
    }

    /// The header in this version's format.
    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[LENGTH_OFFSET..EXPIRY_OFFSET].copy_from_slice(&self.record_len.to_le_bytes());
        bytes[EXPIRY_OFFSET..REVISION_OFFSET].copy_from_slice(&self.expires_at.to_le_bytes());
        bytes[REVISION_OFFSET..].copy_from_slice(&self.revision.get().to_le_bytes());
        bytes
    }

    /// How many bytes of the file the header takes: where the record starts.
    pub(crate) fn record_offset(self) -> usize {
        if self.legacy {
            LEGACY_HEADER_LEN
        } else {
            HEADER_LEN
        }
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

    /// The record's revision; [`Revision::UNVERSIONED`] for a `SES1` file.
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
    fn header_round_trips() {
        let at = from_unix_millis(1_800_000_000_123);
        let bytes = Header::new(300, at, Revision::new(7)).to_bytes();
        assert_eq!(&bytes[..4], b"SES2");
        assert_eq!(&bytes[16..], &7u64.to_le_bytes());
        let header = Header::parse(&bytes).unwrap();
        assert_eq!(header.expires_at(), at);
        assert_eq!(header.record_len(), Some(300));
        assert_eq!(header.revision(), Revision::new(7));
        assert_eq!(header.record_offset(), 24);
        // The expiry field `touch` writes is the one the header is read from.
        let (offset, field) = Header::expiry_field(at);
        assert_eq!(&bytes[offset as usize..][..8], &field);
        assert!(Header::parse(&bytes[..23]).is_none(), "a cut revision");
        assert!(Header::parse(b"JUNKJUNKJUNKJUNKJUNKJUNK").is_none());
        assert!(Header::parse(b"SES2").is_none());
    }

    #[test]
    fn legacy_headers_have_no_revision() {
        let at = from_unix_millis(1_800_000_000_123);
        let mut old = [0u8; 16];
        old[..4].copy_from_slice(b"SES1");
        old[4..8].copy_from_slice(&300u32.to_le_bytes());
        old[8..].copy_from_slice(&1_800_000_000_123u64.to_le_bytes());
        let header = Header::parse(&old).unwrap();
        assert_eq!(header.expires_at(), at);
        assert_eq!(header.record_len(), Some(300));
        assert_eq!(header.revision(), Revision::UNVERSIONED);
        assert_eq!(header.record_offset(), 16);
        // Files written before the length was kept have zeros there.
        old[4..8].fill(0);
        assert_eq!(Header::parse(&old).unwrap().record_len(), None);
        assert!(Header::parse(&old[..15]).is_none());
    }
}
