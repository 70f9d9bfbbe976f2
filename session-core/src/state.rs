//! What a handler sees: the session's data, and the record of what it changed.

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::codec::{Data, Record};
use crate::keyed::Keyed;
use crate::SessionId;

/// How a key differs from the record that was loaded.
///
/// Kept per key rather than as one "modified" flag, so that a later write policy can
/// re-apply exactly these changes onto a freshly loaded record and two concurrent
/// requests that touch different keys lose nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The key was absent and now has a value.
    Inserted,
    /// The key had a value and now has a different one.
    Changed,
    /// The key had a value and is now absent.
    Removed,
}

/// A value could not be converted to or from the session's representation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// `insert` was given a value serde cannot represent (a map with non-string keys, a
    /// float that is NaN, ...). The session was not changed.
    #[error("cannot store session key `{key}`")]
    Serialize {
        /// The session key.
        key: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// `get` found a value of another shape than the type asked for.
    #[error("session key `{key}` does not hold the requested type")]
    Deserialize {
        /// The session key.
        key: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// The state of one session during one request.
///
/// Every mutation goes through one private method that compares the new value with the
/// current one and updates the change record, so "is it modified" has a single answer:
/// [`SessionState::is_modified`]. Writing an equal value, or removing an absent key, is
/// not a modification.
///
/// ```
/// use session_core::SessionState;
///
/// let mut state = SessionState::new(true);
/// state.insert("uname", "ferris").unwrap();
/// assert_eq!(state.get::<String>("uname").unwrap().as_deref(), Some("ferris"));
/// assert!(state.is_modified());
/// ```
#[derive(Debug, Clone)]
pub struct SessionState {
    /// The id of the stored record this state came from; `None` for a session that is not
    /// stored yet, or whose id was retired by `regenerate` or `destroy`.
    pub(crate) id: Option<SessionId>,
    /// A stored id to delete at write-back.
    pub(crate) retired: Option<SessionId>,
    pub(crate) record: Record,
    changes: Keyed<Change>,
    metadata_changed: bool,
    /// When the stored record expires, if the store said.
    pub(crate) expires_at: Option<SystemTime>,
    /// The cookie verified under an old key and should be re-signed.
    pub(crate) resign: bool,
    /// The request's cookie led to no session (forged, unknown, expired, undecodable);
    /// removed at write-back if the session stays empty.
    pub(crate) dead_cookie: bool,
    default_permanent: bool,
}

impl SessionState {
    /// A new, empty session that is not stored yet.
    pub fn new(permanent: bool) -> Self {
        Self {
            id: None,
            retired: None,
            record: Record {
                created_at: SystemTime::now(),
                deadline: None,
                permanent,
                cookie_sent_at: None,
                data: Data::new(),
            },
            changes: Keyed::new(),
            metadata_changed: false,
            expires_at: None,
            resign: false,
            dead_cookie: false,
            default_permanent: permanent,
        }
    }

    pub(crate) fn loaded(
        id: SessionId,
        record: Record,
        expires_at: Option<SystemTime>,
        resign: bool,
        default_permanent: bool,
    ) -> Self {
        Self {
            id: Some(id),
            retired: None,
            record,
            changes: Keyed::new(),
            metadata_changed: false,
            expires_at,
            resign,
            dead_cookie: false,
            default_permanent,
        }
    }

    pub(crate) fn with_dead_cookie(mut self) -> Self {
        self.dead_cookie = true;
        self
    }

    /// The value under `key`, deserialized as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ValueError> {
        self.record
            .data
            .get(key)
            .map(|value| {
                T::deserialize(value).map_err(|source| ValueError::Deserialize {
                    key: key.to_owned(),
                    source,
                })
            })
            .transpose()
    }

    /// The raw value under `key`.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.record.data.get(key)
    }

    /// Stores `value` under `key`; returns an error, and changes nothing, if serde cannot
    /// represent the value.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> Result<(), ValueError> {
        let key = key.into();
        match serde_json::to_value(value) {
            Ok(value) => {
                self.set(key, Some(value));
                Ok(())
            }
            Err(source) => Err(ValueError::Serialize { key, source }),
        }
    }

    /// Removes `key` and returns its value, if it had one.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.set(key.to_owned(), None)
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &str) -> bool {
        self.record.data.contains_key(key)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.record.data.keys()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.record.data.len()
    }

    /// Whether the session has no keys. An empty session is neither stored nor given a
    /// cookie.
    pub fn is_empty(&self) -> bool {
        self.record.data.is_empty()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        let keys: Vec<String> = self.record.data.keys().map(str::to_owned).collect();
        for key in keys {
            self.set(key, None);
        }
    }

    /// Whether the cookie outlives the browser session (`Max-Age` = lifetime).
    pub fn is_permanent(&self) -> bool {
        self.record.permanent
    }

    /// Makes the cookie permanent or a browser-session cookie.
    pub fn set_permanent(&mut self, permanent: bool) {
        if self.record.permanent != permanent {
            self.record.permanent = permanent;
            self.metadata_changed = true;
        }
    }

    /// Gives the session a new id at write-back, keeping its data; the old record is
    /// deleted and the old cookie stops working. Call it on login, to defeat session
    /// fixation.
    pub fn regenerate(&mut self) {
        if let Some(id) = self.id.take() {
            self.retired = Some(id);
        }
    }

    /// Ends the session: its record is deleted and its cookie removed at write-back.
    ///
    /// Values inserted afterwards in the same request start a new session with a new id.
    pub fn destroy(&mut self) {
        let retired = self.id.take().or_else(|| self.retired.take());
        *self = Self::new(self.default_permanent);
        self.retired = retired;
    }

    /// Whether anything (data or metadata) differs from what was loaded.
    pub fn is_modified(&self) -> bool {
        !self.changes.is_empty() || self.metadata_changed
    }

    pub(crate) fn permanence_changed(&self) -> bool {
        self.metadata_changed
    }

    /// What happened to each key since the session was loaded.
    pub fn changes(&self) -> impl Iterator<Item = (&str, Change)> {
        self.changes.iter().map(|(key, change)| (key, *change))
    }

    /// The record as it would be stored: data and metadata.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// When the session was first stored (for a new one: when it was made).
    pub fn created_at(&self) -> SystemTime {
        self.record.created_at
    }

    /// The single place where data changes and the change record is kept.
    fn set(&mut self, key: String, new: Option<Value>) -> Option<Value> {
        if self.record.data.get(&key) == new.as_ref() {
            return new;
        }
        let was_present_at_load = match self.changes.get(&key) {
            Some(Change::Inserted) => false,
            Some(Change::Changed | Change::Removed) => true,
            None => self.record.data.contains_key(&key),
        };
        let change = match (was_present_at_load, new.is_some()) {
            (false, true) => Some(Change::Inserted),
            (false, false) => None,
            (true, true) => Some(Change::Changed),
            (true, false) => Some(Change::Removed),
        };
        let old = match new {
            Some(value) => self.record.data.insert(key.clone(), value),
            None => self.record.data.remove(&key),
        };
        match change {
            Some(change) => self.changes.insert(key, change),
            None => self.changes.remove(&key),
        };
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdLength;
    use serde_json::json;

    fn stored(data: &[(&str, Value)]) -> SessionState {
        let mut record = SessionState::new(true).record;
        record.data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let id = SessionId::generate(IdLength::default()).unwrap();
        SessionState::loaded(id, record, None, false, true)
    }

    #[test]
    fn equal_insert_and_absent_remove_are_not_modifications() {
        let mut state = stored(&[("a", json!(1))]);
        state.insert("a", 1).unwrap();
        assert_eq!(state.remove("missing"), None);
        assert!(!state.is_modified());
    }

    #[test]
    fn changes_are_tracked_per_key() {
        let mut state = stored(&[("a", json!(1)), ("b", json!(2))]);
        state.insert("a", 10).unwrap();
        state.remove("b");
        state.insert("c", "new").unwrap();
        let changes: Vec<_> = state.changes().collect();
        assert_eq!(
            changes,
            [
                ("a", Change::Changed),
                ("b", Change::Removed),
                ("c", Change::Inserted)
            ]
        );
    }

    #[test]
    fn inserting_then_removing_a_new_key_is_no_change() {
        let mut state = stored(&[]);
        state.insert("tmp", true).unwrap();
        state.remove("tmp");
        assert!(!state.is_modified());
        assert_eq!(state.changes().count(), 0);
    }

    #[test]
    fn removing_then_reinserting_is_a_change() {
        let mut state = stored(&[("a", json!(1))]);
        state.remove("a");
        state.insert("a", 2).unwrap();
        assert_eq!(
            state.changes().collect::<Vec<_>>(),
            [("a", Change::Changed)]
        );
    }

    #[test]
    fn clear_records_removals() {
        let mut state = stored(&[("a", json!(1)), ("b", json!(2))]);
        state.clear();
        assert!(state.is_empty());
        assert_eq!(
            state
                .changes()
                .filter(|(_, c)| *c == Change::Removed)
                .count(),
            2
        );
    }

    #[test]
    fn failed_insert_changes_nothing() {
        let mut state = stored(&[]);
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        assert!(matches!(
            state.insert("bad", bad),
            Err(ValueError::Serialize { .. })
        ));
        assert!(!state.is_modified());
    }

    #[test]
    fn get_with_the_wrong_type_is_an_error() {
        let state = stored(&[("n", json!("text"))]);
        assert!(matches!(
            state.get::<u32>("n"),
            Err(ValueError::Deserialize { .. })
        ));
        assert_eq!(state.get::<u32>("absent").unwrap(), None);
    }

    #[test]
    fn permanent_flag_is_metadata() {
        let mut state = stored(&[("a", json!(1))]);
        state.set_permanent(true);
        assert!(!state.is_modified());
        state.set_permanent(false);
        assert!(state.is_modified());
    }

    #[test]
    fn regenerate_retires_the_id_and_keeps_data() {
        let mut state = stored(&[("a", json!(1))]);
        let old = state.id.clone();
        state.regenerate();
        assert_eq!(state.id, None);
        assert_eq!(state.retired, old);
        assert_eq!(state.get::<i32>("a").unwrap(), Some(1));
    }

    #[test]
    fn destroy_retires_the_id_and_clears_everything() {
        let mut state = stored(&[("a", json!(1))]);
        state.set_permanent(false);
        let old = state.id.clone();
        state.destroy();
        assert!(state.is_empty());
        assert!(state.is_permanent());
        assert!(!state.is_modified());
        assert_eq!(state.retired, old);
        // regenerate then destroy still deletes the stored record
        let mut state = stored(&[("a", json!(1))]);
        let old = state.id.clone();
        state.regenerate();
        state.destroy();
        assert_eq!(state.retired, old);
    }
}
