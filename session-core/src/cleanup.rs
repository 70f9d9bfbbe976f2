//! Removing expired records from stores that do not expire them by themselves (files,
//! SQL), so that no expired session lives forever.

use std::time::Duration;

use crate::store::SharedStore;

/// A running cleanup task; dropping it (or calling [`Cleanup::stop`]) stops it.
#[derive(Debug)]
#[must_use = "the cleanup task stops when this handle is dropped"]
pub struct Cleanup {
    task: tokio::task::JoinHandle<()>,
}

impl Cleanup {
    /// Stops the task; a batch in progress is abandoned between two store calls.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls [`Store::delete_expired`](crate::store::Store::delete_expired) every `interval` on the current tokio runtime, logging
/// what it removed and any failure (a failure does not stop the task).
///
/// ```
/// use std::time::Duration;
/// use session_core::{spawn_cleanup, MemoryStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cleanup = spawn_cleanup(MemoryStore::new(), Duration::from_secs(3600));
/// cleanup.stop();
/// # });
/// ```
pub fn spawn_cleanup(store: impl Into<SharedStore>, interval: Duration) -> Cleanup {
    let store = store.into();
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; start one interval from now
        loop {
            ticks.tick().await;
            match store.delete_expired().await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(
                        backend = store.backend(),
                        removed,
                        "removed expired sessions"
                    )
                }
                Err(error) => tracing::warn!(
                    backend = store.backend(),
                    error = &error as &(dyn std::error::Error + 'static),
                    "removing expired sessions failed"
                ),
            }
        }
    });
    Cleanup { task }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store as _, StoreKey};
    use crate::{IdLength, MemoryStore, SessionId};
    use std::time::SystemTime;

    #[tokio::test]
    async fn removes_expired_records_periodically_and_stops() {
        let store = MemoryStore::new();
        let key = StoreKey::new("t:", &SessionId::generate(IdLength::default()).unwrap());
        let soon = SystemTime::now() + Duration::from_millis(20);
        store.create(&key, b"x", soon).await.unwrap();
        let cleanup = spawn_cleanup(store.clone(), Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // `len` counts live entries only; the raw map must be empty too.
        assert_eq!(
            store.delete_expired().await.unwrap(),
            0,
            "cleanup did not run"
        );
        cleanup.stop();
    }
}
