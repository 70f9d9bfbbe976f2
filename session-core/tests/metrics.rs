//! The metrics a `SessionManager` reports, read back from a recorder installed for the
//! test's thread only: each counter moves when its event happens, and every store call
//! gives the latency histogram one sample labelled with its backend and operation.

#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use session_core::adapter::{CookieUpdate, Error, RequestCookie, SessionManager, SessionState};
use session_core::metrics::{
    CONFLICTS_MERGED, CONTENDED, CREATED, DESTROYED, EXPIRED, REGENERATED, STORE_CALL_DURATION,
    STORE_ERRORS, UNDECODABLE,
};
use session_core::store::{Loaded, Revision, Store, StoreError, StoreKey};
use session_core::{Config, ConfigBuilder, IdLength, Keyring, MemoryStore, SessionId, SharedStore};
use session_testkit::CountingStore;

/// The counters without labels.
const COUNTERS: [&str; 7] = [
    CREATED,
    REGENERATED,
    DESTROYED,
    EXPIRED,
    UNDECODABLE,
    CONFLICTS_MERGED,
    CONTENDED,
];

/// Runs `test` on a single-threaded runtime with a recorder of its own, which it reads
/// through the snapshotter.
fn recorded<F, Fut>(test: F)
where
    F: FnOnce(Snapshotter) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(test(snapshotter)));
}

/// A metric's name and labels.
type Series = (String, Vec<(String, String)>);

/// What was recorded since the last reading: counter increments and histogram samples,
/// by name and labels.
#[derive(Debug, Default)]
struct Recorded {
    counters: BTreeMap<Series, u64>,
    samples: BTreeMap<Series, Vec<f64>>,
    described: BTreeMap<String, (Option<Unit>, String)>,
}

impl Recorded {
    /// Reads (and resets) what the recorder holds.
    fn take(snapshotter: &Snapshotter) -> Self {
        let mut recorded = Self::default();
        for (key, unit, description, value) in snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let name = key.name().to_owned();
            let labels = key
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect::<Vec<_>>();
            if let Some(description) = description {
                recorded
                    .described
                    .insert(name.clone(), (unit, description.to_string()));
            }
            match (kind, value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    recorded.counters.insert((name, labels), n);
                }
                (MetricKind::Histogram, DebugValue::Histogram(values)) => {
                    let values = values.into_iter().map(|v| v.into_inner()).collect();
                    recorded.samples.insert((name, labels), values);
                }
                (kind, value) => panic!("unexpected {kind:?} {name}: {value:?}"),
            }
        }
        recorded
    }

    /// The increments of an unlabelled counter.
    fn count(&self, name: &str) -> u64 {
        self.counters
            .get(&(name.to_owned(), Vec::new()))
            .copied()
            .unwrap_or(0)
    }

    /// The unlabelled counters that moved, by name.
    fn moved(&self) -> BTreeMap<&str, u64> {
        COUNTERS
            .into_iter()
            .map(|name| (name, self.count(name)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Store errors of `backend`, by operation.
    fn errors(&self, backend: &str) -> BTreeMap<String, u64> {
        self.by_operation(&self.counters, STORE_ERRORS, backend, |n| *n)
    }

    /// Latency samples of `backend`, counted by operation; every sample is a duration.
    fn calls(&self, backend: &str) -> BTreeMap<String, u64> {
        for values in self.samples.values() {
            assert!(
                values.iter().all(|v| v.is_finite() && *v >= 0.0),
                "{values:?}"
            );
        }
        self.by_operation(&self.samples, STORE_CALL_DURATION, backend, |values| {
            values.len() as u64
        })
    }

    fn by_operation<V>(
        &self,
        map: &BTreeMap<Series, V>,
        name: &str,
        backend: &str,
        count: impl Fn(&V) -> u64,
    ) -> BTreeMap<String, u64> {
        let mut by_operation = BTreeMap::new();
        for ((metric, labels), value) in map {
            if metric != name || count(value) == 0 {
                continue;
            }
            let [(b, backend_value), (o, operation)] = labels.as_slice() else {
                panic!("{metric} labelled {labels:?}");
            };
            assert_eq!((b.as_str(), o.as_str()), ("backend", "operation"));
            if backend_value == backend {
                *by_operation.entry(operation.clone()).or_default() += count(value);
            }
        }
        by_operation
    }
}

/// Store calls by operation, as the counting wrapper saw them; resets its counts.
fn counted(store: &CountingStore) -> BTreeMap<String, u64> {
    let operations = [
        "load",
        "load_and_touch",
        "create",
        "update",
        "touch",
        "delete",
        "delete_if_unchanged",
    ];
    let counts = operations
        .into_iter()
        .map(|operation| (operation.to_owned(), store.count(operation) as u64))
        .filter(|(_, n)| *n > 0)
        .collect();
    store.reset();
    counts
}

fn manager(
    store: impl Into<SharedStore>,
    configure: fn(ConfigBuilder) -> ConfigBuilder,
) -> SessionManager {
    let config = configure(Config::builder(Keyring::new([[7u8; 32]]).unwrap()))
        .build()
        .unwrap();
    SessionManager::new(store, config)
}

async fn save(manager: &SessionManager, state: SessionState) -> RequestCookie {
    match manager.save(state).await.unwrap() {
        CookieUpdate::Set(header) => {
            let pair = header.split(';').next().unwrap().to_owned();
            manager.verify([pair.as_str()])
        }
        other => panic!("expected a cookie, got {other:?}"),
    }
}

/// A stored session with one key.
async fn stored(manager: &SessionManager) -> RequestCookie {
    let mut state = manager.load(RequestCookie::Absent).await.unwrap();
    state.insert("user", "ada").unwrap();
    save(manager, state).await
}

#[test]
fn each_lifecycle_counter_moves_with_its_event_and_every_store_call_is_timed() {
    recorded(|snapshotter| async move {
        let store = Arc::new(CountingStore::new(MemoryStore::new()));
        let sessions = manager(store.clone(), |b| b);
        let take = || Recorded::take(&snapshotter);

        let cookie = stored(&sessions).await;
        let recorded = take();
        assert_eq!(recorded.moved(), BTreeMap::from([(CREATED, 1)]));
        assert_eq!(recorded.calls("memory"), counted(&store));
        assert_eq!(recorded.calls("memory")["create"], 1);

        let mut state = sessions.load(cookie).await.unwrap();
        state.regenerate();
        let cookie = save(&sessions, state).await;
        let recorded = take();
        assert_eq!(recorded.moved(), BTreeMap::from([(REGENERATED, 1)]));
        assert_eq!(recorded.calls("memory"), counted(&store));

        let mut state = sessions.load(cookie).await.unwrap();
        state.destroy();
        assert!(matches!(
            sessions.save(state).await.unwrap(),
            CookieUpdate::Remove(_)
        ));
        let recorded = take();
        assert_eq!(recorded.moved(), BTreeMap::from([(DESTROYED, 1)]));
        assert_eq!(recorded.calls("memory"), counted(&store));

        // A clear, and the removal of the last key, end the session too.
        let emptiers: [fn(&mut SessionState); 2] = [SessionState::clear, |state| {
            state.remove("user");
        }];
        for empty in emptiers {
            let cookie = stored(&sessions).await;
            take();
            counted(&store);
            let mut state = sessions.load(cookie).await.unwrap();
            empty(&mut state);
            assert!(matches!(
                sessions.save(state).await.unwrap(),
                CookieUpdate::Remove(_)
            ));
            let recorded = take();
            assert_eq!(recorded.moved(), BTreeMap::from([(DESTROYED, 1)]));
            assert_eq!(recorded.calls("memory"), counted(&store));
        }

        // Reading and changing a session counts no event; its calls are still timed.
        let cookie = stored(&sessions).await;
        take();
        counted(&store);
        let mut state = sessions.load(cookie).await.unwrap();
        state.insert("visits", 1).unwrap();
        sessions.save(state).await.unwrap();
        let recorded = take();
        assert_eq!(recorded.moved(), BTreeMap::new());
        let calls = counted(&store);
        assert_eq!(
            calls,
            BTreeMap::from([("load".to_owned(), 1), ("update".to_owned(), 1)])
        );
        assert_eq!(recorded.calls("memory"), calls);
        assert!(recorded.errors("memory").is_empty());
    });
}

#[test]
fn a_session_past_its_absolute_deadline_counts_as_expired_then_destroyed() {
    recorded(|snapshotter| async move {
        let store = SharedStore::new(MemoryStore::new());
        let cookie = stored(&manager(store.clone(), |b| b)).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let strict = manager(store, |b| b.absolute_timeout(Duration::from_millis(10)));
        Recorded::take(&snapshotter);

        let state = strict.load(cookie).await.unwrap();
        assert!(state.is_empty());
        assert_eq!(
            Recorded::take(&snapshotter).moved(),
            BTreeMap::from([(EXPIRED, 1)])
        );
        assert!(matches!(
            strict.save(state).await.unwrap(),
            CookieUpdate::Remove(_)
        ));
        assert_eq!(
            Recorded::take(&snapshotter).moved(),
            BTreeMap::from([(DESTROYED, 1)])
        );
    });
}

#[test]
fn an_undecodable_record_is_counted() {
    recorded(|snapshotter| async move {
        let store = SharedStore::new(MemoryStore::new());
        let sessions = manager(store.clone(), |b| b);
        let id = SessionId::generate(IdLength::default()).unwrap();
        let key = StoreKey::new(sessions.config().key_prefix(), &id);
        let later = SystemTime::now() + Duration::from_secs(3600);
        store.create(&key, b"\x00garbage", later).await.unwrap();
        let value = sessions.config().keyring().sign("session", &id);
        let cookie = sessions.verify([format!("session={value}").as_str()]);
        assert!(matches!(cookie, RequestCookie::Valid(_)));
        Recorded::take(&snapshotter);

        assert!(sessions.load(cookie).await.unwrap().is_empty());
        let recorded = Recorded::take(&snapshotter);
        assert_eq!(recorded.moved(), BTreeMap::from([(UNDECODABLE, 1)]));
        assert_eq!(recorded.calls("memory")["load"], 1);
    });
}

#[test]
fn a_merged_conflict_is_counted_once_and_its_calls_timed() {
    recorded(|snapshotter| async move {
        let store = Arc::new(CountingStore::new(MemoryStore::new()));
        let sessions = manager(store.clone(), |b| b);
        let cookie = stored(&sessions).await;
        let mut first = sessions.load(cookie.clone()).await.unwrap();
        let mut second = sessions.load(cookie.clone()).await.unwrap();
        first.insert("a", 1).unwrap();
        second.insert("b", 2).unwrap();
        sessions.save(first).await.unwrap();
        Recorded::take(&snapshotter);
        counted(&store);

        sessions.save(second).await.unwrap();
        let recorded = Recorded::take(&snapshotter);
        assert_eq!(recorded.moved(), BTreeMap::from([(CONFLICTS_MERGED, 1)]));
        // The conflicting update, then the one after the merge.
        let calls = counted(&store);
        assert_eq!(calls, BTreeMap::from([("update".to_owned(), 2)]));
        assert_eq!(recorded.calls("memory"), calls);
        // Conflicts are part of the store protocol, not errors.
        assert!(recorded.errors("memory").is_empty());

        let state = sessions.load(cookie).await.unwrap();
        assert_eq!(state.get::<i32>("a").unwrap(), Some(1));
        assert_eq!(state.get::<i32>("b").unwrap(), Some(2));
    });
}

/// A `MemoryStore` on which another writer rewrites every session just before each
/// update, as a busy session's other requests would.
struct Meddled(MemoryStore);

#[async_trait::async_trait]
impl Store for Meddled {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.0.load(key).await
    }
    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        self.0.create(key, value, at).await
    }
    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        if let Some(current) = self.0.load(key).await? {
            let current_revision = current.revision();
            self.0
                .update(key, &current.into_value(), at, current_revision)
                .await?;
        }
        self.0.update(key, value, at, revision).await
    }
    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.0.touch(key, at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.0.delete(key).await
    }
    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        self.0.delete_if_unchanged(key, revision).await
    }
}

#[test]
fn a_write_back_given_up_is_counted_with_each_merge_before_it() {
    recorded(|snapshotter| async move {
        let sessions = manager(Meddled(MemoryStore::new()), |b| b);
        let cookie = stored(&sessions).await;
        let mut state = sessions.load(cookie).await.unwrap();
        state.insert("visits", 1).unwrap();
        Recorded::take(&snapshotter);

        let error = sessions.save(state).await.unwrap_err();
        let Error::Contended { attempts } = error else {
            panic!("expected Contended, got {error:?}");
        };
        let recorded = Recorded::take(&snapshotter);
        assert_eq!(
            recorded.moved(),
            BTreeMap::from([(CONFLICTS_MERGED, attempts as u64 - 1), (CONTENDED, 1)])
        );
        assert_eq!(
            recorded.calls("memory"),
            BTreeMap::from([("update".to_owned(), attempts as u64)])
        );
        assert!(recorded.errors("memory").is_empty());
    });
}

#[test]
fn described_metrics_have_their_units_and_help() {
    recorded(|snapshotter| async move {
        session_core::describe_metrics();
        let sessions = manager(MemoryStore::new(), |b| b);
        let cookie = stored(&sessions).await;
        let mut state = sessions.load(cookie).await.unwrap();
        state.destroy();
        sessions.save(state).await.unwrap();

        let recorded = Recorded::take(&snapshotter);
        let (unit, help) = &recorded.described[STORE_CALL_DURATION];
        assert_eq!(*unit, Some(Unit::Seconds));
        assert!(help.contains("store call"), "{help}");
        // Every counter shows, and is described, even those whose event has not happened.
        for name in COUNTERS {
            let (unit, help) = &recorded.described[name];
            assert_eq!(*unit, Some(Unit::Count), "{name}");
            assert!(!help.is_empty(), "{name}");
        }
        assert_eq!(
            recorded.counters.get(&(EXPIRED.to_owned(), Vec::new())),
            Some(&0)
        );
        assert_eq!(
            recorded.moved(),
            BTreeMap::from([(CREATED, 1), (DESTROYED, 1)])
        );
    });
}
