//! Flash messages: a message added in one request and shown once, in the next.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::adapter::SessionState;
use crate::ValueError;

/// The session key the messages are kept under until they are read.
pub(crate) const FLASH_KEY: &str = "_flash";

/// How a flash message should look: the four levels most templates style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Something the user may like to know.
    Info,
    /// Something the user did worked.
    Success,
    /// Something the user should look at.
    Warning,
    /// Something the user did failed.
    Error,
}

impl Level {
    /// The level's name in lowercase (`"info"`, `"success"`, ...), handy as a CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// A flash message, as [`SessionState::take_flashes`] hands it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashMessage {
    /// Tells this message apart from an equal one added by another request, so that taking
    /// it removes it and not the other.
    id: u64,
    level: Level,
    text: String,
}

impl FlashMessage {
    /// The level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The text, as it was added: escape it before putting it in HTML.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A number no other message of the session is likely to carry: random, or, should the
/// operating system's generator fail, the time and a counter.
fn message_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
        nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32)
    })
}

impl SessionState {
    /// Adds a message for the next request that reads the flashes, typically the page a
    /// form's POST redirects to. A message added by an overlapping request is kept too.
    ///
    /// ```
    /// use session_core::adapter::SessionState;
    /// use session_core::Level;
    ///
    /// let mut state = SessionState::new(true);
    /// state.flash(Level::Success, "Saved")?;
    /// let messages = state.take_flashes()?;
    /// assert_eq!((messages[0].level(), messages[0].text()), (Level::Success, "Saved"));
    /// assert!(state.take_flashes()?.is_empty());
    /// # Ok::<(), session_core::ValueError>(())
    /// ```
    pub fn flash(&mut self, level: Level, text: impl Into<String>) -> Result<(), ValueError> {
        let message = FlashMessage {
            id: message_id(),
            level,
            text: text.into(),
        };
        self.update_or_remove(FLASH_KEY, move |current: Option<Vec<FlashMessage>>| {
            let mut messages = current.unwrap_or_default();
            messages.push(message.clone());
            Some(messages)
        })
        .map(drop)
    }

    /// The messages added since they were last taken, oldest first, and removes them: each
    /// is shown once. Messages that an overlapping request adds meanwhile stay for the
    /// next read. Without messages it reads only, and writes nothing.
    pub fn take_flashes(&mut self) -> Result<Vec<FlashMessage>, ValueError> {
        let messages = self
            .get::<Vec<FlashMessage>>(FLASH_KEY)?
            .unwrap_or_default();
        if messages.is_empty() {
            return Ok(messages);
        }
        let taken: Vec<u64> = messages.iter().map(|message| message.id).collect();
        self.update_or_remove(FLASH_KEY, move |current: Option<Vec<FlashMessage>>| {
            let rest: Vec<FlashMessage> = current
                .unwrap_or_default()
                .into_iter()
                .filter(|message| !taken.contains(&message.id))
                .collect();
            (!rest.is_empty()).then_some(rest)
        })?;
        Ok(messages)
    }
}
