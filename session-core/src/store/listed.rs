//! What a store answers when asked for many sessions at once: a user's sessions, or a page
//! of all of them.

use std::fmt;
use std::time::SystemTime;

use super::StoreKey;

/// A live record read without touching it: its key, its bytes and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Listed {
    key: StoreKey,
    value: Vec<u8>,
    expires_at: SystemTime,
}

impl Listed {
    /// The record under `key`, holding `value`, expiring at `expires_at`.
    pub fn new(key: StoreKey, value: Vec<u8>, expires_at: SystemTime) -> Self {
        Self {
            key,
            value,
            expires_at,
        }
    }

    /// The record's key.
    pub fn key(&self) -> &StoreKey {
        &self.key
    }

    /// The stored bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// When the record expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The key and the bytes.
    pub fn into_parts(self) -> (StoreKey, Vec<u8>, SystemTime) {
        (self.key, self.value, self.expires_at)
    }
}

/// Session data stays out of logs: only its size shows.
impl fmt::Debug for Listed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listed")
            .field("bytes", &self.value.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where a [`Store::scan`](super::Store::scan) goes on: opaque text that the store made
/// (a Redis `SCAN` cursor, the last key of a page).
#[derive(Clone, PartialEq, Eq)]
pub struct ScanCursor(String);

impl ScanCursor {
    /// A cursor from the store's own text.
    pub fn new(cursor: impl Into<String>) -> Self {
        Self(cursor.into())
    }

    /// The store's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// May hold a session key: redacted.
impl fmt::Debug for ScanCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScanCursor(..)")
    }
}

/// One page of [`Store::scan`](super::Store::scan): live records, and where the next page
/// starts (`None` after the last page).
#[derive(Debug, Default)]
pub struct ScanPage {
    /// The records of this page; a page may be empty and still have a next one.
    pub records: Vec<Listed>,
    /// Where the next page starts.
    pub next: Option<ScanCursor>,
}
