//! What a finished request does with its session: the write-back rules as one pure
//! function, decided before any store call and carried out by the manager.

use std::time::{Duration, SystemTime};

use super::state::{Ending, SessionState};
use crate::codec::Record;
use crate::config::Config;

/// The step a finished request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// No store call and no cookie: a new session that stayed empty, or a stored one with
    /// nothing due.
    Nothing,
    /// A new session with data: stored under a fresh id, and its cookie sent.
    Create,
    /// A stored session this request did not change: its expiry moved (`touch`) and its
    /// cookie sent again, each only when due. Its data is never changed; a resend goes
    /// with a conditional write of the record as loaded, so that a cookie made from it
    /// never follows another request's change of the session.
    Refresh {
        /// Move the stored expiry.
        touch: bool,
        /// Send the cookie again.
        resend: bool,
    },
    /// Ended by `destroy()`, by its absolute timeout, or emptied by `clear()`: deleted,
    /// whatever other requests wrote meanwhile.
    End {
        /// Values were inserted after the end: they start a new session.
        then_create: bool,
    },
    /// `regenerate()`: the data moves to a fresh id and the old record goes.
    Regenerate,
    /// Changed: written back if no other request wrote it meanwhile, merged otherwise;
    /// deleted if this request emptied it.
    WriteBack {
        /// Send the cookie with the write.
        resend: bool,
    },
}

/// Decides what a finished request does with `state`, given the configuration, whether
/// the store refreshes expiry as it reads (`touches_on_load`), and the time.
pub(crate) fn decide(
    state: &SessionState,
    config: &Config,
    touches_on_load: bool,
    now: SystemTime,
) -> Plan {
    let Some(origin) = &state.origin else {
        return if state.is_empty() {
            Plan::Nothing
        } else {
            Plan::Create
        };
    };
    let record = &state.record;
    match state.ending {
        // `destroy`, and a `clear` that left the session empty, end it.
        Ending::Ended => {
            return Plan::End {
                then_create: !state.is_empty(),
            }
        }
        _ if state.is_cleared() && state.is_empty() => return Plan::End { then_create: false },
        Ending::Regenerated => return Plan::Regenerate,
        Ending::Kept if state.is_modified() || state.is_empty() => {
            return Plan::WriteBack {
                resend: origin.resign
                    || state.permanence_changed()
                    || cookie_due(config, record, now),
            }
        }
        Ending::Kept => {}
    }
    // Unmodified. A store that refreshes as it reads has moved the expiry already.
    let refreshed_on_load = config.refresh_each_request && touches_on_load;
    let touch = config.refresh_each_request
        && !refreshed_on_load
        && origin
            .loaded
            .expires_at()
            .is_none_or(|stored| expiry(config, record, now) > stored + config.refresh_threshold);
    // The cookie's Max-Age follows the stored expiry, so it is sent again only when that
    // moves, or when the cookie must be re-signed under the current key.
    let resend = origin.resign || (cookie_due(config, record, now) && (touch || refreshed_on_load));
    if touch || resend {
        Plan::Refresh { touch, resend }
    } else {
        Plan::Nothing
    }
}

/// When the session ends however active it is: the absolute timeout in force, counted
/// from the record's creation (which `regenerate()` resets), so that a timeout configured
/// or lowered later applies to sessions stored before.
pub(crate) fn deadline(config: &Config, record: &Record) -> Option<SystemTime> {
    let timeout = config.absolute_timeout?;
    // A creation time too far out to add to is a corrupt record: end it.
    Some(
        record
            .created_at
            .checked_add(timeout)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    )
}

/// The idle expiry, never past the absolute deadline.
pub(crate) fn expiry(config: &Config, record: &Record, now: SystemTime) -> SystemTime {
    let idle = now + config.lifetime;
    match deadline(config, record) {
        Some(deadline) => idle.min(deadline),
        None => idle,
    }
}

/// Whether a permanent cookie should be sent again so that its `Max-Age` follows the
/// server-side expiry: not on every request (a header and a signature each time), but once
/// the last one is older than the refresh threshold.
pub(crate) fn cookie_due(config: &Config, record: &Record, now: SystemTime) -> bool {
    record.permanent
        && record.cookie_sent_at.is_none_or(|sent| {
            now.duration_since(sent).unwrap_or(Duration::ZERO) > config.refresh_threshold
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::adapter::state::Origin;
    use crate::store::{Loaded, Revision};
    use crate::{IdLength, Keyring, SessionId};

    const MINUTE: Duration = Duration::from_secs(60);

    fn config(refresh_each_request: bool) -> Config {
        Config::builder(Keyring::new([[7u8; 32]]).unwrap())
            .refresh_each_request(refresh_each_request)
            .refresh_threshold(MINUTE)
            .lifetime(Duration::from_secs(3600))
            .build()
            .unwrap()
    }

    /// A stored session with one key, loaded `now`, whose stored expiry is `expires_at`
    /// and whose cookie was last sent at `cookie_sent_at`.
    fn stored(
        expires_at: Option<SystemTime>,
        cookie_sent_at: Option<SystemTime>,
        resign: bool,
    ) -> SessionState {
        let mut state = SessionState::new(true);
        state.insert("k", 1).unwrap();
        let mut record = state.record.clone();
        record.cookie_sent_at = cookie_sent_at;
        let id = SessionId::generate(IdLength::default()).unwrap();
        let origin = Origin {
            key: crate::store::StoreKey::new("test:", &id),
            id,
            loaded: match expires_at {
                Some(at) => Loaded::new(Vec::new(), Revision::FIRST).with_expiry(at),
                None => Loaded::new(Vec::new(), Revision::FIRST),
            },
            resign,
            user: None,
        };
        SessionState::loaded(origin, record, true)
    }

    fn decide_now(state: &SessionState, refresh: bool, touches_on_load: bool) -> Plan {
        decide(state, &config(refresh), touches_on_load, SystemTime::now())
    }

    #[test]
    fn a_new_session_is_created_only_with_data() {
        let mut state = SessionState::new(true);
        assert_eq!(decide_now(&state, true, false), Plan::Nothing);
        state.insert("k", 1).unwrap();
        assert_eq!(decide_now(&state, true, false), Plan::Create);
        state.remove("k");
        assert_eq!(decide_now(&state, true, false), Plan::Nothing);
    }

    #[test]
    fn destroy_ends_and_later_values_start_a_new_session() {
        let now = SystemTime::now();
        let mut state = stored(Some(now), Some(now), false);
        state.destroy();
        assert_eq!(
            decide_now(&state, true, false),
            Plan::End { then_create: false }
        );
        state.insert("after", true).unwrap();
        assert_eq!(
            decide_now(&state, true, false),
            Plan::End { then_create: true }
        );
    }

    #[test]
    fn clear_that_empties_ends_and_clear_then_insert_writes_back() {
        let now = SystemTime::now();
        let mut state = stored(Some(now), Some(now), false);
        state.clear();
        assert_eq!(
            decide_now(&state, true, false),
            Plan::End { then_create: false }
        );
        state.insert("fresh", 1).unwrap();
        assert!(matches!(
            decide_now(&state, true, false),
            Plan::WriteBack { .. }
        ));
    }

    #[test]
    fn regenerate_moves_whatever_else_changed() {
        let now = SystemTime::now();
        let mut state = stored(Some(now), Some(now), false);
        state.regenerate();
        assert_eq!(decide_now(&state, true, false), Plan::Regenerate);
        state.insert("k", 2).unwrap();
        assert_eq!(decide_now(&state, true, false), Plan::Regenerate);
        // Nothing left to move: the session ends.
        state.clear();
        assert_eq!(
            decide_now(&state, true, false),
            Plan::End { then_create: false }
        );
    }

    #[test]
    fn a_change_is_written_back_and_the_cookie_resent_when_due() {
        let now = SystemTime::now();
        let mut fresh = stored(Some(now), Some(now), false);
        fresh.insert("k", 2).unwrap();
        assert_eq!(
            decide_now(&fresh, true, false),
            Plan::WriteBack { resend: false }
        );
        let mut stale = stored(Some(now), Some(now - 2 * MINUTE), false);
        stale.insert("k", 2).unwrap();
        assert_eq!(
            decide_now(&stale, true, false),
            Plan::WriteBack { resend: true }
        );
        let mut made_temporary = stored(Some(now), Some(now), false);
        made_temporary.set_permanent(false);
        assert_eq!(
            decide_now(&made_temporary, true, false),
            Plan::WriteBack { resend: true }
        );
        let mut old_key = stored(Some(now), Some(now), true);
        old_key.insert("k", 2).unwrap();
        assert_eq!(
            decide_now(&old_key, true, false),
            Plan::WriteBack { resend: true }
        );
    }

    #[test]
    fn an_unchanged_session_is_touched_once_per_threshold() {
        let now = SystemTime::now();
        let lifetime = Duration::from_secs(3600);
        // Stored expiry as a request a moment ago left it: nothing due.
        let recent = stored(Some(now + lifetime), Some(now), false);
        assert_eq!(decide_now(&recent, true, false), Plan::Nothing);
        // Stored expiry more than a threshold behind: touch, and resend a permanent
        // cookie whose last copy is as old.
        let behind = stored(
            Some(now + lifetime - 2 * MINUTE),
            Some(now - 2 * MINUTE),
            false,
        );
        assert_eq!(
            decide_now(&behind, true, false),
            Plan::Refresh {
                touch: true,
                resend: true
            }
        );
        // A store that does not report the expiry is touched every time.
        let unknown = stored(None, Some(now), false);
        assert_eq!(
            decide_now(&unknown, true, false),
            Plan::Refresh {
                touch: true,
                resend: false
            }
        );
    }

    #[test]
    fn without_refresh_an_unchanged_session_costs_nothing() {
        let now = SystemTime::now();
        let state = stored(None, Some(now - 2 * MINUTE), false);
        assert_eq!(decide_now(&state, false, false), Plan::Nothing);
        // Except a cookie signed under an old key, which is re-signed.
        let old_key = stored(None, Some(now), true);
        assert_eq!(
            decide_now(&old_key, false, false),
            Plan::Refresh {
                touch: false,
                resend: true
            }
        );
    }

    #[test]
    fn a_store_that_refreshes_on_read_is_never_touched() {
        let now = SystemTime::now();
        let due = stored(None, Some(now - 2 * MINUTE), false);
        assert_eq!(
            decide_now(&due, true, true),
            Plan::Refresh {
                touch: false,
                resend: true
            }
        );
        let fresh = stored(None, Some(now), false);
        assert_eq!(decide_now(&fresh, true, true), Plan::Nothing);
    }

    #[test]
    fn expiry_never_passes_the_absolute_deadline() {
        let timed = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
            .lifetime(Duration::from_secs(3600))
            .absolute_timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let state = SessionState::new(true);
        let now = state.record.created_at;
        assert_eq!(
            expiry(&timed, &state.record, now),
            now + Duration::from_secs(600)
        );
        assert_eq!(
            expiry(&config(true), &state.record, now),
            now + Duration::from_secs(3600)
        );
    }
}
