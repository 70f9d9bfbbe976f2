//! How a session becomes bytes in a store, and back.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keyed::Keyed;
use crate::time::{from_unix_millis, unix_millis};

/// The current format version, the first field of every stored record.
pub const FORMAT_VERSION: u32 = 1;

pub(crate) type Data = Keyed<Value>;

/// The encoding of stored sessions.
///
/// Decoding recognises both encodings whatever the setting (a JSON record starts with `{`,
/// a MessagePack one with a map marker), so switching codecs does not log anyone out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// JSON: readable with `redis-cli GET` or `cat`. The default.
    #[default]
    Json,
    /// MessagePack with named fields: smaller and faster to decode.
    MessagePack,
}

/// A stored record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// JSON encoding or decoding failed.
    #[error("JSON session record")]
    Json(#[from] serde_json::Error),
    /// MessagePack encoding failed.
    #[error("MessagePack session record")]
    MessagePackEncode(#[from] rmp_serde::encode::Error),
    /// MessagePack decoding failed.
    #[error("MessagePack session record")]
    MessagePackDecode(#[from] rmp_serde::decode::Error),
    /// The record names a format version this build does not know (a newer deployment
    /// wrote it, say).
    #[error(
        "session record format version {0} is not supported (this build reads {FORMAT_VERSION})"
    )]
    Version(u32),
    /// The bytes are neither a JSON nor a MessagePack record.
    #[error("stored bytes are not a session record")]
    Unrecognised,
}

/// A session as it is stored: its data and what the server needs to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub(crate) created_at: SystemTime,
    pub(crate) deadline: Option<SystemTime>,
    pub(crate) permanent: bool,
    /// When the cookie was last sent, for permanent cookies whose `Max-Age` slides.
    pub(crate) cookie_sent_at: Option<SystemTime>,
    pub(crate) data: Data,
}

impl Record {
    /// When the session was first stored.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// The absolute deadline after which the session is dead however active it is.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.deadline
    }

    /// Whether the cookie outlives the browser session.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[derive(Serialize)]
struct WireRef<'a> {
    v: u32,
    created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<u64>,
    permanent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<u64>,
    data: &'a Data,
}

#[derive(Deserialize)]
struct Wire {
    v: u32,
    created: u64,
    #[serde(default)]
    deadline: Option<u64>,
    permanent: bool,
    #[serde(default)]
    cookie: Option<u64>,
    data: Data,
}

impl Codec {
    /// Encodes a record.
    pub fn encode(self, record: &Record) -> Result<Vec<u8>, CodecError> {
        let wire = WireRef {
            v: FORMAT_VERSION,
            created: unix_millis(record.created_at),
            deadline: record.deadline.map(unix_millis),
            permanent: record.permanent,
            cookie: record.cookie_sent_at.map(unix_millis),
            data: &record.data,
        };
        Ok(match self {
            Self::Json => serde_json::to_vec(&wire)?,
            Self::MessagePack => rmp_serde::to_vec_named(&wire)?,
        })
    }

    /// Decodes a record written by either codec.
    pub fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
        let wire: Wire = match bytes.first() {
            Some(b'{') => serde_json::from_slice(bytes)?,
            // fixmap, map16, map32
            Some(0x80..=0x8f | 0xde | 0xdf) => rmp_serde::from_slice(bytes)?,
            _ => return Err(CodecError::Unrecognised),
        };
        if wire.v != FORMAT_VERSION {
            return Err(CodecError::Version(wire.v));
        }
        Ok(Record {
            created_at: from_unix_millis(wire.created),
            deadline: wire.deadline.map(from_unix_millis),
            permanent: wire.permanent,
            cookie_sent_at: wire.cookie.map(from_unix_millis),
            data: wire.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn record() -> Record {
        let mut data = Data::new();
        data.insert("uname".into(), json!("Zoë ✓"));
        data.insert("ключ".into(), json!({"n": [1, 2.5, null, true]}));
        data.insert("big".into(), json!(u64::MAX));
        Record {
            created_at: from_unix_millis(1_700_000_000_123),
            deadline: Some(from_unix_millis(1_700_000_000_123) + Duration::from_secs(60)),
            permanent: false,
            cookie_sent_at: Some(from_unix_millis(1_700_000_000_500)),
            data,
        }
    }

    #[test]
    fn both_codecs_round_trip() {
        for codec in [Codec::Json, Codec::MessagePack] {
            let bytes = codec.encode(&record()).unwrap();
            assert_eq!(Codec::decode(&bytes).unwrap(), record(), "{codec:?}");
        }
    }

    #[test]
    fn json_starts_with_the_format_version() {
        let bytes = Codec::Json.encode(&record()).unwrap();
        assert!(
            bytes.starts_with(br#"{"v":1,"#),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn message_pack_starts_with_the_format_version() {
        let bytes = Codec::MessagePack.encode(&record()).unwrap();
        // fixmap of 6 entries, then the fixstr "v" and the integer 1.
        assert_eq!(&bytes[..4], &[0x86, 0xa1, b'v', 0x01]);
    }

    #[test]
    fn records_without_the_newer_optional_fields_still_load() {
        let old = br#"{"v":1,"created":5,"permanent":true,"data":{"a":1}}"#;
        let record = Codec::decode(old).unwrap();
        assert_eq!(record.cookie_sent_at, None);
        assert_eq!(record.deadline, None);
        assert_eq!(record.len(), 1);
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors() {
        let future = br#"{"v":2,"created":0,"permanent":true,"data":{}}"#;
        assert!(matches!(Codec::decode(future), Err(CodecError::Version(2))));
        assert!(matches!(Codec::decode(b""), Err(CodecError::Unrecognised)));
        assert!(matches!(
            Codec::decode(b"\x00\x01"),
            Err(CodecError::Unrecognised)
        ));
        assert!(Codec::decode(b"{not json").is_err());
        assert!(Codec::decode(&[0x85, 0xa1]).is_err());
    }
}
