//! Conversions between `SystemTime` and the Unix milliseconds that records and stores use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; times before it count as 0.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `millis` milliseconds after the Unix epoch.
pub fn from_unix_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Milliseconds since the Unix epoch as the signed 64-bit integer databases store
/// (BIGINT, BSON dates); saturates at `i64::MAX`.
pub fn unix_millis_i64(time: SystemTime) -> i64 {
    i64::try_from(unix_millis(time)).unwrap_or(i64::MAX)
}

/// The time `millis` milliseconds after the Unix epoch; negative values count as 0.
pub fn from_unix_millis_i64(millis: i64) -> SystemTime {
    from_unix_millis(u64::try_from(millis).unwrap_or(0))
}
