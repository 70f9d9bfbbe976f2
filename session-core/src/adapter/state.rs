//! What a handler sees: the session's data, and the record of what it changed.
//!
//! The record of changes is what lets two overlapping requests of one session lose
//! nothing: when a write-back finds that another request wrote the session since it was
//! loaded, the manager re-applies exactly this request's changes onto the current record
//! ([`SessionState::rebase`]), instead of overwriting it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::codec::{Data, Device, Record};
use crate::keyed::Keyed;
use crate::store::{Loaded, SessionHandle, StoreKey};
use crate::{SessionId, SessionValue};

/// How a key differs from the record that was loaded.
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
    /// `insert` or `update` was given a value nested deeper than
    /// [`Codec::MAX_VALUE_DEPTH`](crate::Codec::MAX_VALUE_DEPTH) arrays and objects, which
    /// no stored session could be read back with. The session was not changed.
    #[error(
        "cannot store session key `{key}`: its value nests arrays and objects deeper than {max} levels, which could not be read back",
        max = crate::Codec::MAX_VALUE_DEPTH
    )]
    TooDeep {
        /// The session key.
        key: String,
    },
    /// `get` found a value of another shape than the type asked for.
    #[error("session key `{key}` does not hold the requested type")]
    Deserialize {
        /// The session key.
        key: String,
        /// What serde said, without the stored value it quotes.
        #[source]
        source: RedactedSerdeError,
    },
}

/// A serde_json failure on stored session data, without serde's message: that message
/// quotes the value it could not convert, and session data must never reach a log.
///
/// ```
/// use session_core::RedactedSerdeError;
///
/// let error = serde_json::from_value::<u32>(serde_json::json!("a secret")).unwrap_err();
/// let redacted = RedactedSerdeError::from(error);
/// assert!(!redacted.to_string().contains("a secret"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedactedSerdeError {
    category: serde_json::error::Category,
}

impl RedactedSerdeError {
    /// What kind of failure it was (for a stored value of the wrong shape: `Data`).
    pub fn category(&self) -> serde_json::error::Category {
        self.category
    }
}

impl From<serde_json::Error> for RedactedSerdeError {
    fn from(error: serde_json::Error) -> Self {
        Self {
            category: error.classify(),
        }
    }
}

impl fmt::Display for RedactedSerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.category {
            serde_json::error::Category::Io => "an I/O error",
            serde_json::error::Category::Syntax => "a syntax error",
            serde_json::error::Category::Data => "a value of another shape",
            serde_json::error::Category::Eof => "an unexpected end",
        };
        write!(
            f,
            "serde_json found {what} (its message, which quotes the data, is withheld)"
        )
    }
}

impl std::error::Error for RedactedSerdeError {}

/// The stored record a state was loaded from.
#[derive(Clone)]
pub(crate) struct Origin {
    pub(crate) id: SessionId,
    /// The id's store key, computed once per request (it hashes the id).
    pub(crate) key: StoreKey,
    /// The stored record as loaded (its bytes, revision and expiry, if the store said):
    /// the write-back is conditional on it.
    pub(crate) loaded: Loaded,
    /// The cookie verified under an old key and should be re-signed.
    pub(crate) resign: bool,
    /// The user the stored record is bound to, whose index entry goes with the record.
    pub(crate) user: Option<String>,
}

/// What the request does to the stored record it loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It stays under its id (and is written back if modified).
    Kept,
    /// Its data moves to a new id and the old record is deleted (`regenerate`).
    Regenerated,
    /// It is deleted (`destroy`, or past its absolute deadline at load).
    Ended,
}

/// A closure of [`SessionState::update`], kept to be run again on the current value when
/// another request wrote the session meanwhile.
///
/// It answers the key's new value, or `None` to remove the key.
type Replay = Arc<dyn Fn(Option<&Value>) -> Result<Option<Value>, serde_json::Error> + Send + Sync>;

/// What this request did to one key.
#[derive(Clone)]
struct Edit {
    /// The value the key had when the session was loaded.
    original: Option<Value>,
    how: How,
}

/// How a key's new value came about, which decides how it is re-applied onto a record
/// another request stored meanwhile.
#[derive(Clone)]
enum How {
    /// Set outright (`insert`, `remove`, `clear`): this request's value wins as it is.
    Set,
    /// Only read-modify-write closures, in order, starting from the loaded value: they are
    /// run again on the current value.
    Replay(Vec<Replay>),
}

/// The state of one session during one request.
///
/// Every mutation goes through one private method that compares the new value with the
/// current one and updates the change record, so "is it modified" has a single answer:
/// [`SessionState::is_modified`]. Writing an equal value, or removing an absent key, is
/// not a modification, but still counts for the `update`s of that key that follow it when
/// another request's write is merged.
///
/// ```
/// use session_core::adapter::SessionState;
///
/// let mut state = SessionState::new(true);
/// state.insert("uname", "ferris").unwrap();
/// assert_eq!(state.get::<String>("uname").unwrap().as_deref(), Some("ferris"));
/// assert!(state.is_modified());
/// ```
#[derive(Clone)]
pub struct SessionState {
    /// The stored record this state came from; `None` for a session that is not stored.
    pub(crate) origin: Option<Origin>,
    pub(crate) ending: Ending,
    pub(crate) record: Record,
    edits: Keyed<Edit>,
    /// `clear` was called: what other requests stored is not carried over either.
    cleared: bool,
    /// Merged onto another request's record at least once.
    rebased: bool,
    permanence_changed: bool,
    /// `log_in` or `clear` changed the user the session is bound to.
    binding_changed: bool,
    default_permanent: bool,
}

/// Session data stays out of logs: only its shape shows.
impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionState")
            .field("stored", &self.origin.is_some())
            .field("ending", &self.ending)
            .field("keys", &self.len())
            .field("edited_keys", &self.edits.len())
            .field("cleared", &self.cleared)
            .field("permanent", &self.record.permanent)
            .finish_non_exhaustive()
    }
}

impl SessionState {
    /// A new, empty session that is not stored yet.
    pub fn new(permanent: bool) -> Self {
        Self {
            origin: None,
            ending: Ending::Kept,
            record: Record {
                created_at: SystemTime::now(),
                permanent,
                cookie_sent_at: None,
                user: None,
                device: None,
                data: Data::new(),
            },
            edits: Keyed::new(),
            cleared: false,
            rebased: false,
            permanence_changed: false,
            binding_changed: false,
            default_permanent: permanent,
        }
    }

    pub(crate) fn loaded(origin: Origin, record: Record, default_permanent: bool) -> Self {
        Self {
            origin: Some(origin),
            ending: Ending::Kept,
            record,
            edits: Keyed::new(),
            cleared: false,
            rebased: false,
            permanence_changed: false,
            binding_changed: false,
            default_permanent,
        }
    }

    /// A stored session that this request found past its absolute deadline: empty, and
    /// deleted at write-back.
    pub(crate) fn ended(origin: Origin, default_permanent: bool) -> Self {
        let mut state = Self::new(default_permanent);
        state.origin = Some(origin);
        state.ending = Ending::Ended;
        state
    }

    /// The value under `key`, deserialized as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ValueError> {
        self.record
            .data
            .get(key)
            .map(|value| {
                T::deserialize(value).map_err(|source| ValueError::Deserialize {
                    key: key.to_owned(),
                    source: source.into(),
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
    ///
    /// If another request changes the same key meanwhile, the last one written wins. For
    /// a value computed from the current one (a counter, a cart), use
    /// [`update`](SessionState::update), which loses no concurrent change.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> Result<(), ValueError> {
        let key = key.into();
        match serde_json::to_value(value) {
            Ok(value) if crate::codec::is_too_deep(&value) => Err(ValueError::TooDeep { key }),
            Ok(value) => {
                self.set(key, Some(value), None);
                Ok(())
            }
            Err(source) => Err(ValueError::Serialize { key, source }),
        }
    }

    /// Sets `key` to `f(current value)` and returns the new value.
    ///
    /// If another request of the same session writes it meanwhile, `f` is run again at
    /// write-back on the value that request stored, so concurrent updates of a counter or
    /// a cart add up instead of overwriting each other. `f` should therefore compute the
    /// new value from its argument alone, without side effects, and accept any argument,
    /// `None` included (another request may have removed the key): it runs again after the
    /// handler has answered, where a panic cannot become an error response. The value
    /// returned here is the one this request computed.
    ///
    /// ```
    /// use session_core::adapter::SessionState;
    ///
    /// let mut state = SessionState::new(true);
    /// let visits = state.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
    /// assert_eq!(visits, 1);
    /// ```
    pub fn update<T, F>(&mut self, key: impl Into<String>, f: F) -> Result<T, ValueError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        let key = key.into();
        let current = self.get::<T>(&key)?;
        let new = f(current);
        let value = match serde_json::to_value(&new) {
            Ok(value) => value,
            Err(source) => return Err(ValueError::Serialize { key, source }),
        };
        if crate::codec::is_too_deep(&value) {
            return Err(ValueError::TooDeep { key });
        }
        let replay: Replay = Arc::new(move |current: Option<&Value>| {
            let current = current.map(T::deserialize).transpose()?;
            serde_json::to_value(f(current)).map(Some)
        });
        self.set(key, Some(value), Some(replay));
        Ok(new)
    }

    /// Like [`update`](SessionState::update), where `f` answering `None` removes the key:
    /// a read-modify-write that can also empty a key, such as taking the messages read.
    pub(crate) fn update_or_remove<T, F>(
        &mut self,
        key: impl Into<String>,
        f: F,
    ) -> Result<Option<T>, ValueError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> Option<T> + Send + Sync + 'static,
    {
        let key = key.into();
        let current = self.get::<T>(&key)?;
        let new = f(current);
        let value = match new.as_ref().map(serde_json::to_value).transpose() {
            Ok(value) => value,
            Err(source) => return Err(ValueError::Serialize { key, source }),
        };
        if value.as_ref().is_some_and(crate::codec::is_too_deep) {
            return Err(ValueError::TooDeep { key });
        }
        let replay: Replay = Arc::new(move |current: Option<&Value>| {
            let current = current.map(T::deserialize).transpose()?;
            f(current).map(serde_json::to_value).transpose()
        });
        self.set(key, value, Some(replay));
        Ok(new)
    }

    /// Removes `key` and returns its value, if it had one.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let old = self.record.data.get(key).cloned();
        // Recorded even for an absent key: a later `update` of it starts from nothing.
        self.set(key.to_owned(), None, None);
        old
    }

    /// The application's `T`, kept under [`SessionValue::KEY`], or `T::default()` when the
    /// session has none; an error if the stored value is not a `T`.
    pub fn value<T: SessionValue>(&self) -> Result<T, ValueError> {
        Ok(self.get::<T>(T::KEY)?.unwrap_or_default())
    }

    /// Stores `value` under [`SessionValue::KEY`], as [`insert`](SessionState::insert).
    pub fn set_value<T: SessionValue>(&mut self, value: &T) -> Result<(), ValueError> {
        self.insert(T::KEY, value)
    }

    /// Changes the application's `T` in place, starting from the default when the session
    /// has none, and returns the new value. As with [`update`](SessionState::update), `f`
    /// runs again on the value another request stored meanwhile, so it should change its
    /// argument and do nothing else.
    pub fn update_value<T, F>(&mut self, f: F) -> Result<T, ValueError>
    where
        T: SessionValue,
        F: Fn(&mut T) + Send + Sync + 'static,
    {
        self.update(T::KEY, move |current: Option<T>| {
            let mut value = current.unwrap_or_default();
            f(&mut value);
            value
        })
    }

    /// Removes the application's `T` and returns it, if the session had one; an error,
    /// and nothing removed, if the stored value is not a `T`.
    pub fn take_value<T: SessionValue>(&mut self) -> Result<Option<T>, ValueError> {
        let value = self.get::<T>(T::KEY)?;
        self.remove(T::KEY);
        Ok(value)
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

    /// Whether the session holds nothing: no keys, and no user it is bound to. An empty
    /// session is neither stored nor given a cookie.
    pub fn is_empty(&self) -> bool {
        self.record.data.is_empty() && self.record.user.is_none()
    }

    /// Removes every key, including those another request adds meanwhile, and the user
    /// binding; a session left empty is deleted at write-back and its cookie removed.
    pub fn clear(&mut self) {
        let keys: Vec<String> = self.record.data.keys().map(str::to_owned).collect();
        for key in keys {
            self.set(key, None, None);
        }
        if self.record.user.is_some() {
            self.record.user = None;
            self.record.device = None;
            self.binding_changed = true;
        }
        self.cleared = true;
    }

    /// Binds the session to `user` and gives it a new id at write-back (see
    /// [`regenerate`](SessionState::regenerate)): call it on login. From then on the
    /// session is listed among the user's sessions, and ending them all ends it.
    ///
    /// `device` is the browser that logs in, kept for a devices page; adapters pass it
    /// only when [`DeviceInfo::Keep`](crate::DeviceInfo::Keep) is configured.
    ///
    /// ```
    /// use session_core::adapter::SessionState;
    ///
    /// let mut state = SessionState::new(true);
    /// state.log_in("alice", None);
    /// assert_eq!(state.user(), Some("alice"));
    /// ```
    pub fn log_in(&mut self, user: impl Into<String>, device: Option<Device>) {
        self.record.user = Some(user.into());
        self.record.device = device;
        self.binding_changed = true;
        self.regenerate();
    }

    /// The user the session is bound to, if any.
    pub fn user(&self) -> Option<&str> {
        self.record.user.as_deref()
    }

    /// The handle of this request's stored session, if it is stored: what
    /// [`SessionManager::sessions_of`](crate::adapter::SessionManager::sessions_of) marks
    /// as current.
    pub fn handle(&self) -> Option<SessionHandle> {
        self.origin
            .as_ref()
            .map(|origin| SessionHandle::of(&origin.id))
    }

    /// Whether the cookie outlives the browser session (`Max-Age` = lifetime).
    pub fn is_permanent(&self) -> bool {
        self.record.permanent
    }

    /// Makes the cookie permanent or a browser-session cookie.
    pub fn set_permanent(&mut self, permanent: bool) {
        if self.record.permanent != permanent {
            self.record.permanent = permanent;
            self.permanence_changed = !self.permanence_changed;
        }
    }

    /// Gives the session a new id at write-back, keeping its data, and starts a new
    /// absolute lifetime; the old record is deleted and the old cookie stops working. Call
    /// it on login, to defeat session fixation.
    ///
    /// If another request ends the session before this one is written back, this request
    /// ends with no session at all rather than bringing the ended one back.
    pub fn regenerate(&mut self) {
        if self.origin.is_some() && self.ending == Ending::Kept {
            self.ending = Ending::Regenerated;
        }
        self.record.created_at = SystemTime::now();
    }

    /// Ends the session: its record is deleted and its cookie removed at write-back.
    ///
    /// Values inserted afterwards in the same request start a new session with a new id.
    pub fn destroy(&mut self) {
        let origin = self.origin.take();
        *self = Self::new(self.default_permanent);
        if origin.is_some() {
            self.origin = origin;
            self.ending = Ending::Ended;
        }
    }

    /// Whether anything (data or metadata) differs from what was loaded.
    pub fn is_modified(&self) -> bool {
        self.cleared
            || self.permanence_changed
            || self.binding_changed
            || self
                .edits
                .iter()
                .any(|(key, edit)| !self.is_inert(key, edit))
    }

    pub(crate) fn permanence_changed(&self) -> bool {
        self.permanence_changed
    }

    pub(crate) fn is_cleared(&self) -> bool {
        self.cleared
    }

    /// What happened to each key since the session was loaded.
    pub fn changes(&self) -> impl Iterator<Item = (&str, Change)> {
        self.edits.iter().filter_map(|(key, edit)| {
            if self.is_inert(key, edit) {
                return None;
            }
            match (edit.original.is_some(), self.record.data.contains_key(key)) {
                (false, true) => Some((key, Change::Inserted)),
                (true, true) => Some((key, Change::Changed)),
                (true, false) => Some((key, Change::Removed)),
                (false, false) => None,
            }
        })
    }

    /// The record as it would be stored: data and metadata.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// When the session was first stored (for a new one: when it was made).
    pub fn created_at(&self) -> SystemTime {
        self.record.created_at
    }

    /// Re-applies this request's changes onto `current`, the record another request
    /// stored meanwhile, and makes it the record this state writes back.
    ///
    /// Keys this request did not touch, or left as they were loaded, take `current`'s
    /// values; keys it set keep its values; keys it changed with
    /// [`update`](SessionState::update) get its closures run again on `current`'s value.
    /// Returns how many keys both requests set to different values (the later write wins
    /// for those).
    pub(crate) fn rebase(&mut self, current: Record) -> usize {
        let mut overwritten = 0;
        let mut data = if self.cleared {
            Data::new()
        } else {
            current.data
        };
        // A key left as loaded is forgotten before it takes `current`'s value; what stays
        // is what this request changed, whatever values later rebases give it.
        if self.can_be_inert() {
            let record = &self.record;
            self.edits
                .retain(|key, edit| edit.original.as_ref() != record.data.get(key));
        }
        self.rebased = true;
        for (key, edit) in self.edits.iter() {
            let ours = self.record.data.get(key);
            let value = match &edit.how {
                How::Set => {
                    let theirs = data.get(key);
                    if !self.cleared && theirs != edit.original.as_ref() && theirs != ours {
                        overwritten += 1;
                    }
                    ours.cloned()
                }
                // A value of another shape than the closure expects: this request's wins.
                How::Replay(replays) => {
                    replay(replays, data.get(key)).unwrap_or_else(|_| ours.cloned())
                }
            };
            match value {
                Some(value) => data.insert(key.to_owned(), value),
                None => data.remove(key),
            };
        }
        self.record.data = data;
        if !self.permanence_changed {
            self.record.permanent = current.permanent;
        }
        if !self.binding_changed {
            self.record.user = current.user;
            self.record.device = current.device;
        }
        if self.ending == Ending::Kept {
            self.record.created_at = current.created_at;
        }
        self.record.cookie_sent_at = current.cookie_sent_at;
        overwritten
    }

    /// The single place where data changes and the change record is kept. `replay` is the
    /// closure of an [`update`](SessionState::update) that produced `new`.
    ///
    /// Every write is recorded, even one that leaves the value as it is: a later
    /// `update` of the key then starts from a value this request set, which a conflict
    /// must not replace with another request's. Whether the key counts as changed is
    /// decided at the end, by comparing with the loaded value (`is_inert`).
    fn set(&mut self, key: String, new: Option<Value>, replay: Option<Replay>) {
        let cleared = self.cleared;
        let unchanged = self.record.data.get(&key) == new.as_ref();
        // The value before this write: `new` itself when it is equal, else the one it
        // replaces, moved out in place rather than cloned.
        let old = match new {
            new if unchanged => new,
            Some(value) => match self.record.data.get_mut(&key) {
                Some(slot) => Some(std::mem::replace(slot, value)),
                None => self.record.data.insert(key.clone(), value),
            },
            None => self.record.data.remove(&key),
        };
        let Some(edit) = self.edits.get_mut(&key) else {
            // After a clear the loaded value is gone: there is nothing to replay on.
            let how = match replay {
                Some(replay) if !cleared => How::Replay(vec![replay]),
                _ => How::Set,
            };
            self.edits.insert(key, Edit { original: old, how });
            return;
        };
        // Even a write that leaves the value as it is says how it came about: a closure is
        // replayed with the others, and a plain write makes the value final.
        match (&mut edit.how, replay) {
            (How::Replay(replays), Some(replay)) => replays.push(replay),
            (how, _) => *how = How::Set,
        }
    }

    /// Whether `edit` left `key` where it was loaded, so that this request did not change
    /// it: nothing to write for it, and another request's value for it is kept.
    fn is_inert(&self, key: &str, edit: &Edit) -> bool {
        self.can_be_inert() && edit.original.as_ref() == self.record.data.get(key)
    }

    /// Whether a key can be left as loaded: not after a `clear`, as the loaded values are
    /// not carried over, nor after a rebase, where a closure run again on another
    /// request's value may give the loaded one and is still this request's change.
    fn can_be_inert(&self) -> bool {
        !self.cleared && !self.rebased
    }
}

/// A replay that could not read the value it was given, or made one too deep to store.
struct ReplayFailed;

/// Runs `replays` in order from `current`: the key's value after them, `None` if they
/// removed it.
fn replay(replays: &[Replay], current: Option<&Value>) -> Result<Option<Value>, ReplayFailed> {
    let mut value = current.cloned();
    for replay in replays {
        // A result that could not be read back fails the replay like one of the wrong
        // shape: this request's own value, checked when it was made, is written instead.
        let next = replay(value.as_ref()).map_err(|_| ReplayFailed)?;
        if next.as_ref().is_some_and(crate::codec::is_too_deep) {
            return Err(ReplayFailed);
        }
        value = next;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdLength;
    use serde_json::json;

    fn record(data: &[(&str, Value)]) -> Record {
        let mut record = SessionState::new(true).record;
        record.data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        record
    }

    fn stored(data: &[(&str, Value)]) -> SessionState {
        let id = SessionId::generate(IdLength::default()).unwrap();
        let origin = Origin {
            key: StoreKey::new("test:", &id),
            id,
            loaded: Loaded::new(Vec::new(), crate::store::Revision::FIRST),
            resign: false,
            user: None,
        };
        SessionState::loaded(origin, record(data), true)
    }

    fn data(state: &SessionState) -> Vec<(String, Value)> {
        state
            .record
            .data
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }

    fn pairs(data: &[(&str, Value)]) -> Vec<(String, Value)> {
        data.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
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
    fn changing_a_key_back_to_its_loaded_value_is_no_change() {
        let mut state = stored(&[("a", json!(1))]);
        state.insert("a", 2).unwrap();
        state.insert("a", 1).unwrap();
        assert!(!state.is_modified());
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
        assert!(state.is_modified());
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
        state.set_permanent(true);
        assert!(!state.is_modified(), "set back to what was loaded");
    }

    #[test]
    fn regenerate_moves_the_data_and_starts_a_new_lifetime() {
        let mut state = stored(&[("a", json!(1))]);
        state.record.created_at = SystemTime::UNIX_EPOCH;
        state.regenerate();
        assert_eq!(state.ending, Ending::Regenerated);
        assert!(state.origin.is_some(), "the old id is kept to delete it");
        assert_eq!(state.get::<i32>("a").unwrap(), Some(1));
        assert!(state.record.created_at > SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn destroy_ends_the_session_and_clears_everything() {
        let mut state = stored(&[("a", json!(1))]);
        state.set_permanent(false);
        state.destroy();
        assert!(state.is_empty());
        assert!(state.is_permanent());
        assert!(!state.is_modified());
        assert_eq!(state.ending, Ending::Ended);
        assert!(state.origin.is_some());
        // regenerate then destroy still deletes the stored record
        let mut state = stored(&[("a", json!(1))]);
        state.regenerate();
        state.destroy();
        assert_eq!(state.ending, Ending::Ended);
        // destroying a session that was never stored leaves nothing to delete
        let mut state = SessionState::new(true);
        state.insert("a", 1).unwrap();
        state.destroy();
        assert!(state.origin.is_none());
        assert_eq!(state.ending, Ending::Kept);
    }

    #[test]
    fn update_returns_the_new_value() {
        let mut state = stored(&[("n", json!(41))]);
        assert_eq!(
            state
                .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
                .unwrap(),
            42
        );
        assert_eq!(
            state
                .update("m", |n: Option<u32>| n.unwrap_or(0) + 1)
                .unwrap(),
            1
        );
        assert_eq!(state.get::<u32>("n").unwrap(), Some(42));
        assert!(matches!(
            state.update("n", |s: Option<String>| s.unwrap_or_default()),
            Err(ValueError::Deserialize { .. })
        ));
    }

    #[test]
    fn rebase_keeps_the_other_requests_keys_and_ours() {
        let mut state = stored(&[("a", json!(1)), ("b", json!(2))]);
        state.insert("a", 10).unwrap();
        state.remove("b");
        state.insert("c", 3).unwrap();
        let current = record(&[("a", json!(1)), ("b", json!(2)), ("x", json!("theirs"))]);
        assert_eq!(state.rebase(current), 0);
        assert_eq!(
            data(&state),
            pairs(&[("a", json!(10)), ("c", json!(3)), ("x", json!("theirs"))])
        );
    }

    #[test]
    fn rebase_counts_keys_both_requests_set_and_ours_wins() {
        let mut state = stored(&[("a", json!(1))]);
        state.insert("a", 2).unwrap();
        let current = record(&[("a", json!(3))]);
        assert_eq!(state.rebase(current), 1);
        assert_eq!(data(&state), pairs(&[("a", json!(2))]));
    }

    #[test]
    fn rebase_runs_update_closures_again_on_the_current_value() {
        let mut state = stored(&[("n", json!(1))]);
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0) * 10)
            .unwrap();
        state
            .update("new", |n: Option<u32>| n.unwrap_or(5) + 1)
            .unwrap();
        assert_eq!(state.get::<u32>("n").unwrap(), Some(20));
        state.rebase(record(&[("n", json!(7)), ("new", json!(100))]));
        assert_eq!(
            data(&state),
            pairs(&[("n", json!(80)), ("new", json!(101))])
        );
        // and again, on a later conflict
        state.rebase(record(&[("n", json!(0))]));
        assert_eq!(data(&state), pairs(&[("n", json!(10)), ("new", json!(6))]));
    }

    #[test]
    fn an_insert_after_an_update_makes_the_value_final() {
        let mut state = stored(&[("n", json!(1))]);
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        state.insert("n", 50).unwrap();
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        state.rebase(record(&[("n", json!(7))]));
        assert_eq!(data(&state), pairs(&[("n", json!(51))]));
    }

    #[test]
    fn an_update_that_leaves_the_value_as_it_is_is_still_replayed() {
        let mut state = stored(&[("n", json!(4))]);
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0).min(5))
            .unwrap();
        state.rebase(record(&[("n", json!(5))]));
        assert_eq!(
            data(&state),
            pairs(&[("n", json!(5))]),
            "the cap was not replayed"
        );
    }

    #[test]
    fn an_insert_of_the_same_value_after_an_update_makes_it_final() {
        let mut state = stored(&[("n", json!(1))]);
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        state.insert("n", 2).unwrap();
        state.rebase(record(&[("n", json!(7))]));
        assert_eq!(data(&state), pairs(&[("n", json!(2))]));
    }

    #[test]
    fn an_update_closure_that_cannot_read_the_current_value_keeps_ours() {
        let mut state = stored(&[("n", json!(1))]);
        state
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        state.rebase(record(&[("n", json!("text"))]));
        assert_eq!(data(&state), pairs(&[("n", json!(2))]));
    }

    #[test]
    fn an_update_replayed_too_deep_keeps_ours() {
        let wrap = |inner: Option<Value>| json!({ "prev": inner });
        let mut state = stored(&[("trail", json!(1))]);
        state.update("trail", wrap).unwrap();
        let deepest =
            (0..crate::Codec::MAX_VALUE_DEPTH).fold(json!(1), |inner, _| json!({ "prev": inner }));
        state.rebase(record(&[("trail", deepest)]));
        assert_eq!(data(&state), pairs(&[("trail", json!({ "prev": 1 }))]));
    }

    #[test]
    fn rebase_after_clear_drops_the_other_requests_keys() {
        let mut state = stored(&[("a", json!(1))]);
        state.clear();
        state.insert("b", 2).unwrap();
        state
            .update("c", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        state.rebase(record(&[("a", json!(1)), ("c", json!(9)), ("x", json!(3))]));
        assert_eq!(data(&state), pairs(&[("b", json!(2)), ("c", json!(1))]));
        // a key set back to its loaded value after a clear is still written
        let mut state = stored(&[("a", json!(1))]);
        state.clear();
        state.insert("a", 1).unwrap();
        assert!(state.is_modified());
        state.rebase(record(&[("x", json!(3))]));
        assert_eq!(data(&state), pairs(&[("a", json!(1))]));
    }

    #[test]
    fn rebase_keeps_a_permanence_change_and_takes_the_rest_of_the_metadata() {
        let mut state = stored(&[("a", json!(1))]);
        state.set_permanent(false);
        let mut current = record(&[("a", json!(1))]);
        current.created_at = SystemTime::UNIX_EPOCH;
        current.permanent = true;
        state.rebase(current);
        assert!(!state.is_permanent());
        assert_eq!(state.created_at(), SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn debug_output_shows_no_data() {
        let mut state = stored(&[("secret", json!("hunter2"))]);
        state.insert("token", "s3cr3t-value").unwrap();
        let debug = format!("{state:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("s3cr3t"),
            "{debug}"
        );
    }
}
