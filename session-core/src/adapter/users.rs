//! Users and their sessions: list a user's sessions, end one, end all but the current one,
//! and count or page through every session.

use std::time::SystemTime;

use super::manager::{Error, SessionManager};
use super::plan;
use crate::codec::{Codec, Device, Record};
use crate::metrics::Operation;
use crate::store::{ScanCursor, SessionHandle, StoreKey, UserKey};

/// One session as a devices page shows it.
///
/// "Last active" costs no write of its own: it is read off the expiry, which every refresh
/// moves anyway, so it is as fresh as the refresh threshold
/// ([`ConfigBuilder::refresh_threshold`](crate::ConfigBuilder::refresh_threshold)), and
/// without `refresh_each_request` it is the last time the session was written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Names the session in [`SessionManager::end_session`]; not a usable cookie.
    pub handle: SessionHandle,
    /// The user it is bound to, if any.
    pub user: Option<String>,
    /// When it was created (for a login: when the user logged in).
    pub created_at: SystemTime,
    /// When it was last used, to within the refresh threshold. Once an absolute timeout
    /// caps the expiry, refreshes no longer move it, and this stays where the cap began.
    pub last_active: SystemTime,
    /// When it expires unless used again.
    pub expires_at: SystemTime,
    /// Whether it is the session of the request that asked.
    pub current: bool,
    /// The browser that logged in, when [`DeviceInfo::Keep`](crate::DeviceInfo::Keep) is
    /// configured.
    pub device: Option<Device>,
}

/// How many times [`SessionManager::end_sessions`] lists a user's sessions again to end
/// what requests running meanwhile moved to new ids.
const END_PASSES: usize = 4;

/// An entry of a user's index, as the manager reads it.
struct Entry {
    key: StoreKey,
    /// `None` for a key that is not under this configuration's prefix.
    handle: Option<SessionHandle>,
    /// `None` when the session cannot be shown (unreadable, or past its deadline).
    info: Option<SessionInfo>,
}

impl SessionManager {
    /// The live sessions of `user`, most recently active first; `current` (the asking
    /// request's [`SessionState::handle`](super::SessionState::handle)) is marked.
    ///
    /// Reads the user's index and each session once, touching none of them; index entries
    /// of sessions that ended are pruned on the way.
    ///
    /// # Example
    /// ```
    /// use session_core::adapter::{CookieUpdate, SessionManager, SessionState};
    /// use session_core::{Config, Keyring, MemoryStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let config = Config::builder(Keyring::new([[7u8; 32]])?).build()?;
    /// let sessions = SessionManager::new(MemoryStore::new(), config);
    /// let mut state = SessionState::new(true);
    /// state.log_in("alice", None);
    /// assert!(matches!(sessions.save(state).await?, CookieUpdate::Set(_)));
    /// assert_eq!(sessions.sessions_of("alice", None).await?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn sessions_of(
        &self,
        user: &str,
        current: Option<&SessionHandle>,
    ) -> Result<Vec<SessionInfo>, Error> {
        let mut sessions: Vec<SessionInfo> = self
            .bound(user)
            .await?
            .into_iter()
            .filter_map(|entry| entry.info)
            .map(|info| SessionInfo {
                current: current == Some(&info.handle),
                ..info
            })
            .collect();
        sessions.sort_by_key(|session| std::cmp::Reverse(session.last_active));
        Ok(sessions)
    }

    /// Ends the session of `user` named by `handle`; `false` when the user has no such
    /// session. A handle of another user's session ends nothing.
    pub async fn end_session(&self, user: &str, handle: &SessionHandle) -> Result<bool, Error> {
        let user_key = self.user_key(user);
        for entry in self.bound(user).await? {
            if entry.handle.as_ref() == Some(handle) {
                self.end_bound(&user_key, &entry.key).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Ends every session of `user` except the one named by `except` (the current one, for
    /// "log out everywhere else"); returns how many it ended.
    ///
    /// Sessions a devices page would not show are ended too (past their absolute timeout,
    /// or stored in a format this build cannot read). A request still running in one of
    /// them cannot bring it back: one that moved its session to a new id meanwhile
    /// (`regenerate`) is met by another pass, until a pass finds nothing more to end. A login
    /// that completes at the same moment may survive; it is listed by
    /// [`sessions_of`](Self::sessions_of) like any other.
    pub async fn end_sessions(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<usize, Error> {
        let user_key = self.user_key(user);
        let mut ended = 0;
        for _ in 0..END_PASSES {
            let mut this_pass = 0;
            for entry in self.bound(user).await? {
                if except.is_none() || entry.handle.as_ref() != except {
                    self.end_bound(&user_key, &entry.key).await?;
                    this_pass += 1;
                }
            }
            if this_pass == 0 {
                break;
            }
            ended += this_pass;
        }
        Ok(ended)
    }

    /// The number of live sessions (under this configuration's key prefix).
    ///
    /// # Errors
    /// [`StoreError::Unsupported`](crate::store::StoreError::Unsupported) from a store that
    /// cannot list its keys (memcached).
    pub async fn count(&self) -> Result<u64, Error> {
        let count = self.store().count(self.config().key_prefix());
        Ok(self.call(Operation::Count, count).await?)
    }

    /// A page of at most about `limit` live sessions, untouched, and where the next page
    /// starts; pass `None` for the first page.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`](crate::store::StoreError::Unsupported) from a store that
    /// cannot list its keys (memcached).
    pub async fn scan(
        &self,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<(Vec<SessionInfo>, Option<ScanCursor>), Error> {
        let scan = self.store().scan(self.config().key_prefix(), after, limit);
        let page = self.call(Operation::Scan, scan).await?;
        let now = SystemTime::now();
        let sessions = page
            .records
            .into_iter()
            .filter_map(|listed| {
                let (key, value, expires_at) = listed.into_parts();
                let handle = self.handle(&key)?;
                let record = Codec::decode(&value).ok()?;
                self.info(handle, &record, expires_at, now)
            })
            .collect();
        Ok((sessions, page.next))
    }

    /// The sessions bound to `user`: every index entry whose record is live and not
    /// another user's, with what a devices page shows of it where it can be shown. Entries
    /// that lead to a session of another user (which only a store fault could make) are
    /// taken out of the index.
    async fn bound(&self, user: &str) -> Result<Vec<Entry>, Error> {
        let user_key = self.user_key(user);
        let listed = self
            .call(Operation::ListBound, self.store().list_bound(&user_key))
            .await?;
        let now = SystemTime::now();
        let mut entries = Vec::with_capacity(listed.len());
        for listed in listed {
            let (key, value, expires_at) = listed.into_parts();
            let handle = self.handle(&key);
            let info = match Codec::decode(&value) {
                Ok(record) if record.user() != Some(user) => {
                    let unbind = self.store().unbind(&user_key, &key);
                    self.call(Operation::Unbind, unbind).await?;
                    continue;
                }
                Ok(record) => handle
                    .clone()
                    .and_then(|handle| self.info(handle, &record, expires_at, now)),
                // Unreadable here, perhaps a newer deployment's: still the user's to end.
                Err(_) => None,
            };
            entries.push(Entry { key, handle, info });
        }
        Ok(entries)
    }

    /// The handle of the session stored under `key`; `None` for a key that is not under
    /// this configuration's prefix.
    fn handle(&self, key: &StoreKey) -> Option<SessionHandle> {
        let config = self.config();
        SessionHandle::of_key(config.key_prefix(), config.key_scheme(), key)
    }

    /// Deletes a bound session and its index entry.
    async fn end_bound(&self, user: &UserKey, key: &StoreKey) -> Result<(), Error> {
        self.call(Operation::Delete, self.store().delete(key))
            .await?;
        self.call(Operation::Unbind, self.store().unbind(user, key))
            .await?;
        Ok(())
    }

    /// What a devices page shows of `record`, stored under the session `handle` and
    /// expiring at `expires_at`; `None` once it is past its absolute deadline.
    fn info(
        &self,
        handle: SessionHandle,
        record: &Record,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Option<SessionInfo> {
        let config = self.config();
        if plan::deadline(config, record).is_some_and(|deadline| deadline <= now) {
            return None;
        }
        let created_at = record.created_at();
        let last_active = expires_at
            .checked_sub(config.lifetime())
            .unwrap_or(created_at)
            .max(created_at)
            .min(now.max(created_at));
        Some(SessionInfo {
            handle,
            user: record.user.clone(),
            created_at,
            last_active,
            expires_at,
            current: false,
            device: record.device.clone(),
        })
    }
}
