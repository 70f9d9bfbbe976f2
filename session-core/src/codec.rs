//! How a session becomes bytes in a store, and back.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keyed::Keyed;
use crate::store::time::{from_unix_millis, unix_millis};

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

impl CodecError {
    /// What went wrong, without the error's source: a decoder's message can quote the
    /// stored data, which must not reach a log.
    pub(crate) fn redacted(&self) -> String {
        match self {
            Self::Json(error) => {
                let category = match error.classify() {
                    serde_json::error::Category::Io => "an I/O error",
                    serde_json::error::Category::Syntax => "a syntax error",
                    serde_json::error::Category::Data => "a field of the wrong shape",
                    serde_json::error::Category::Eof => "an unexpected end",
                };
                format!(
                    "{self}: {category} at line {} column {}",
                    error.line(),
                    error.column()
                )
            }
            Self::MessagePackEncode(_) | Self::MessagePackDecode(_) => format!("{self}: malformed"),
            Self::Version(_) | Self::Unrecognised => self.to_string(),
        }
    }
}

/// A session as it is stored: its data and what the server needs to know about it.
#[derive(Clone, PartialEq)]
pub struct Record {
    pub(crate) created_at: SystemTime,
    pub(crate) permanent: bool,
    /// When the cookie was last sent, for permanent cookies whose `Max-Age` slides.
    pub(crate) cookie_sent_at: Option<SystemTime>,
    /// The user the session is bound to (`log_in`), listed in that user's index.
    pub(crate) user: Option<String>,
    /// The browser that logged in, when the configuration keeps it.
    pub(crate) device: Option<Device>,
    pub(crate) data: Data,
}

/// The browser a session was logged in from, kept for a devices page when
/// [`DeviceInfo::Keep`](crate::DeviceInfo::Keep) is configured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The `User-Agent` header, cut to a displayable length.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "agent")]
    pub user_agent: Option<String>,
    /// The client's address as the adapter saw it (behind a proxy: the proxy's, unless
    /// the adapter is told to trust a forwarding header).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "addr")]
    pub address: Option<String>,
}

impl Device {
    /// The longest `User-Agent` kept, in bytes.
    pub const MAX_USER_AGENT: usize = 256;

    /// A device from a request's `User-Agent` and address; the agent is cut at
    /// [`Device::MAX_USER_AGENT`] bytes.
    pub fn new(user_agent: Option<&str>, address: Option<String>) -> Self {
        let user_agent = user_agent.map(|agent| {
            let mut end = agent.len().min(Self::MAX_USER_AGENT);
            while !agent.is_char_boundary(end) {
                end -= 1;
            }
            agent[..end].to_owned()
        });
        Self {
            user_agent,
            address,
        }
    }
}

/// Session data stays out of logs: only its shape shows.
impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("created_at", &self.created_at)
            .field("permanent", &self.permanent)
            .field("cookie_sent_at", &self.cookie_sent_at)
            .field("bound", &self.user.is_some())
            .field("keys", &self.data.len())
            .finish()
    }
}

impl Record {
    /// When the session was first stored.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// Whether the cookie outlives the browser session.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The user the session is bound to, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The browser that logged in, if the configuration keeps it.
    pub fn device(&self) -> Option<&Device> {
        self.device.as_ref()
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
    permanent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a Device>,
    data: &'a Data,
}

#[derive(Deserialize)]
struct Wire {
    v: u32,
    created: u64,
    permanent: bool,
    #[serde(default)]
    cookie: Option<u64>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    device: Option<Device>,
    data: Data,
}

impl Codec {
    /// The deepest nesting of arrays and objects a session value may have, so that every
    /// record either codec writes can be read back; [`SessionState::insert`] and
    /// [`SessionState::update`] refuse deeper values.
    ///
    /// The JSON decoder refuses input nested 128 levels deep (its defence against stack
    /// exhaustion), a record puts each value two levels down (in the record, in its data),
    /// and the MessagePack decoder allows deeper nesting than the JSON one. A scalar has
    /// depth 0, `[1]` depth 1, `{"a": [1]}` depth 2.
    ///
    /// [`SessionState::insert`]: crate::adapter::SessionState::insert
    /// [`SessionState::update`]: crate::adapter::SessionState::update
    pub const MAX_VALUE_DEPTH: usize = 125;

    /// Encodes a record.
    pub fn encode(self, record: &Record) -> Result<Vec<u8>, CodecError> {
        let wire = WireRef {
            v: FORMAT_VERSION,
            created: unix_millis(record.created_at),
            permanent: record.permanent,
            cookie: record.cookie_sent_at.map(unix_millis),
            user: record.user.as_deref(),
            device: record.device.as_ref(),
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
            permanent: wire.permanent,
            cookie_sent_at: wire.cookie.map(from_unix_millis),
            user: wire.user,
            device: wire.device,
            data: wire.data,
        })
    }
}

/// Whether `value` nests arrays and objects deeper than [`Codec::MAX_VALUE_DEPTH`], so that
/// a record holding it could not be decoded.
pub(crate) fn is_too_deep(value: &Value) -> bool {
    exceeds(value, Codec::MAX_VALUE_DEPTH)
}

/// Whether `value` nests deeper than `allowed`; recurses at most `allowed + 1` levels,
/// whatever the value's depth.
fn exceeds(value: &Value, allowed: usize) -> bool {
    let Some(inner) = allowed.checked_sub(1) else {
        return matches!(value, Value::Array(_) | Value::Object(_));
    };
    match value {
        Value::Array(items) => items.iter().any(|item| exceeds(item, inner)),
        Value::Object(map) => map.values().any(|item| exceeds(item, inner)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Record {
        let mut data = Data::new();
        data.insert("uname".into(), json!("Zoë ✓"));
        data.insert("ключ".into(), json!({"n": [1, 2.5, null, true]}));
        data.insert("big".into(), json!(u64::MAX));
        Record {
            created_at: from_unix_millis(1_700_000_000_123),
            permanent: false,
            cookie_sent_at: Some(from_unix_millis(1_700_000_000_500)),
            user: Some("zoë@example.com".into()),
            device: Some(Device::new(Some("Firefox ✓"), Some("127.0.0.1".into()))),
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
    fn floats_round_trip_bit_for_bit_through_json() {
        let tricky = [
            -1.5e-300,
            f64::from_bits((-1.5e-300f64).to_bits() + 1),
            0.1 + 0.2,
            2.225_073_858_507_201_4e-308,
            5e-324,
            f64::MAX,
            1.000_000_000_000_000_2,
            123_456.789_012_345_67,
        ];
        for number in tricky {
            let mut record = record();
            record.data.insert("x".into(), json!(number));
            let bytes = Codec::Json.encode(&record).unwrap();
            let back = Codec::decode(&bytes).unwrap();
            let read = back.data.get("x").and_then(Value::as_f64).unwrap();
            assert_eq!(
                read.to_bits(),
                number.to_bits(),
                "{number:e} came back as {read:e}"
            );
        }
    }

    #[test]
    fn message_pack_starts_with_the_format_version() {
        let bytes = Codec::MessagePack.encode(&record()).unwrap();
        // fixmap of 7 entries, then the fixstr "v" and the integer 1.
        assert_eq!(&bytes[..4], &[0x87, 0xa1, b'v', 0x01]);
    }

    #[test]
    fn records_without_the_newer_optional_fields_still_load() {
        let old = br#"{"v":1,"created":5,"permanent":true,"data":{"a":1}}"#;
        let record = Codec::decode(old).unwrap();
        assert_eq!(record.cookie_sent_at, None);
        assert_eq!(record.len(), 1);
    }

    /// `[[...[1]...]]`, `depth` arrays deep.
    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |value, _| Value::Array(vec![value]))
    }

    fn record_with(value: Value) -> Record {
        let mut record = record();
        record.data.insert("deep".into(), value);
        record
    }

    #[test]
    fn the_deepest_value_allowed_round_trips_and_one_level_more_would_not() {
        let deepest = record_with(nested(Codec::MAX_VALUE_DEPTH));
        for codec in [Codec::Json, Codec::MessagePack] {
            let bytes = codec.encode(&deepest).unwrap();
            assert_eq!(Codec::decode(&bytes).unwrap(), deepest, "{codec:?}");
        }
        // The limit is the JSON decoder's: a record one level deeper is written but
        // cannot be read, which is why such values are refused before they are stored.
        let bytes = Codec::Json
            .encode(&record_with(nested(Codec::MAX_VALUE_DEPTH + 1)))
            .unwrap();
        assert!(Codec::decode(&bytes).is_err());
    }

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert!(!is_too_deep(&json!(1)));
        assert!(!is_too_deep(&nested(Codec::MAX_VALUE_DEPTH)));
        assert!(is_too_deep(&nested(Codec::MAX_VALUE_DEPTH + 1)));
        assert!(is_too_deep(&nested(1_000)));
        let mut object = json!({"a": [1]});
        for _ in 2..Codec::MAX_VALUE_DEPTH {
            object = json!({ "o": object });
        }
        assert!(!is_too_deep(&object));
        assert!(is_too_deep(&json!([object])));
        // Only the deepest branch counts.
        assert!(is_too_deep(&json!([1, {}, nested(Codec::MAX_VALUE_DEPTH)])));
        let shallower = nested(Codec::MAX_VALUE_DEPTH - 1);
        assert!(!is_too_deep(&json!([1, {}, shallower])));
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
