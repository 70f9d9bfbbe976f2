//! Names and bytes on disk: which file holds a session, and its header.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::SystemTime;

use session_core::time::{from_unix_millis, unix_millis};
use session_core::StoreKey;

pub(crate) const HEADER_LEN: usize = 16;
const MAGIC: &[u8; 4] = b"SES1";
const LENGTH_OFFSET: usize = 4;
const EXPIRY_OFFSET: usize = 8;

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

/// Whether a directory entry is a session file (not a temporary file or the lock folder).
pub(crate) fn is_session_file(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.')
}

/// `SES1`, the record's length as a little-endian `u32` (0 in files written before the
/// length was kept: read to the end), then the expiry in little-endian Unix milliseconds
/// at an 8-byte-aligned offset, so `touch` is one small aligned write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    record_len: u32,
    expires_at: u64,
}

impl Header {
    /// The header of a file holding `record_len` bytes of record; a record too long for
    /// the field (4 GiB) is marked unknown and read to the end.
    pub(crate) fn new(record_len: usize, expires_at: SystemTime) -> Self {
        Self {
            record_len: u32::try_from(record_len).unwrap_or(0),
            expires_at: unix_millis(expires_at),
        }
    }

    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; HEADER_LEN] = bytes.try_into().ok()?;
        if &bytes[..4] != MAGIC {
            return None;
        }
        let record_len: [u8; 4] = bytes[LENGTH_OFFSET..EXPIRY_OFFSET].try_into().ok()?;
        let expiry: [u8; 8] = bytes[EXPIRY_OFFSET..].try_into().ok()?;
        Some(Self {
            record_len: u32::from_le_bytes(record_len),
            expires_at: u64::from_le_bytes(expiry),
        })
    }

    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[LENGTH_OFFSET..EXPIRY_OFFSET].copy_from_slice(&self.record_len.to_le_bytes());
        bytes[EXPIRY_OFFSET..].copy_from_slice(&self.expires_at.to_le_bytes());
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
    fn header_round_trips() {
        let at = from_unix_millis(1_800_000_000_123);
        let bytes = Header::new(300, at).to_bytes();
        assert_eq!(&bytes[..4], b"SES1");
        let header = Header::parse(&bytes).unwrap();
        assert_eq!(header.expires_at(), at);
        assert_eq!(header.record_len(), Some(300));
        // Files written before the length was kept have zeros there.
        let mut old = bytes;
        old[4..8].fill(0);
        assert_eq!(Header::parse(&old).unwrap().record_len(), None);
        assert!(Header::parse(b"JUNKJUNKJUNKJUNK").is_none());
        assert!(Header::parse(b"SES1").is_none());
    }
}
