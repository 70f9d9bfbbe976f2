//! `RedisStore` on Valkey 8.1, whose `SET ... IFEQ` makes a conditional write one native
//! command: the store conformance suite on the server in `SESSION_TEST_VALKEY_URL` (started
//! by `cargo xtask test redis`), and the commands a write sends there and on a server
//! without `IFEQ`, each on a private server of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

fn url() -> String {
    std::env::var("SESSION_TEST_VALKEY_URL").expect(
        "SESSION_TEST_VALKEY_URL is not set: run `cargo xtask test redis`, which starts Valkey",
    )
}

session_core::store_conformance_tests!(async {
    session_redis::RedisStore::connect(&url())
        .await
        .unwrap_or_else(|e| panic!("no Valkey at {}: {e}", url()))
});

mod commands {
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    use session_core::store::conformance::new_key;
    use session_core::store::{Store, StoreError};
    use session_redis::RedisStore;
    use session_testkit::RedisServer;

    fn hour() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    fn only(name: &str) -> BTreeMap<String, u64> {
        BTreeMap::from([(name.to_owned(), 1)])
    }

    #[tokio::test]
    async fn on_valkey_a_conditional_write_is_one_set_and_a_conflict_answers_the_record() {
        let server = RedisServer::start_valkey().unwrap();
        let store = RedisStore::connect(&server.url()).await.unwrap();
        let key = new_key();
        store.create(&key, b"v1", hour()).await.unwrap();
        let stale = store.load(&key).await.unwrap().unwrap();

        let (written, sent) = server
            .calls_during(store.update_loaded(&key, b"v2", hour(), &stale))
            .await;
        let second = written.unwrap();
        assert_eq!(sent, only("set"), "not one native SET");
        let current = store.load(&key).await.unwrap().unwrap();
        assert_eq!((current.value(), current.revision()), (&b"v2"[..], second));

        let (refused, sent) = server
            .calls_during(store.update_loaded(&key, b"lost", hour(), &stale))
            .await;
        match refused {
            Err(StoreError::Conflict {
                current: Some(record),
            }) => assert_eq!((record.value(), record.revision()), (&b"v2"[..], second)),
            other => panic!("expected a conflict with the current record, got {other:?}"),
        }
        assert_eq!(sent, only("set"), "the conflict took more than the SET");

        store.delete(&key).await.unwrap();
        let (gone, sent) = server
            .calls_during(store.update_loaded(&key, b"zombie", hour(), &current))
            .await;
        assert!(matches!(gone, Err(StoreError::UnknownId)), "{gone:?}");
        // Valkey answers nil for an absent key, which a read tells from a refused write.
        assert_eq!(
            sent,
            BTreeMap::from([("get".to_owned(), 1), ("set".to_owned(), 1)])
        );
    }

    #[tokio::test]
    async fn without_ifeq_the_store_runs_the_script_after_one_refused_set() {
        // Debian's Redis 7, which answers `SET ... IFEQ` with a syntax error.
        let server = RedisServer::start().unwrap();
        let store = RedisStore::connect(&server.url()).await.unwrap();
        let key = new_key();
        store.create(&key, b"v1", hour()).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();

        let (written, sent) = server
            .calls_during(store.update_loaded(&key, b"v2", hour(), &loaded))
            .await;
        let second = written.unwrap();
        assert_eq!(
            sent.get("set"),
            Some(&2),
            "the refused SET, then the script's: {sent:?}"
        );
        assert!(sent.contains_key("evalsha"), "{sent:?}");

        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!((loaded.value(), loaded.revision()), (&b"v2"[..], second));
        let (written, sent) = server
            .calls_during(store.update_loaded(&key, b"v3", hour(), &loaded))
            .await;
        written.unwrap();
        assert_eq!(
            sent,
            BTreeMap::from([
                ("evalsha".to_owned(), 1),
                ("getrange".to_owned(), 1),
                ("set".to_owned(), 1),
            ]),
            "the store tried IFEQ again"
        );
        // A clone shares what the first write learnt.
        let clone = store.clone();
        let loaded = clone.load(&key).await.unwrap().unwrap();
        let (_, sent) = server
            .calls_during(clone.update_loaded(&key, b"v4", hour(), &loaded))
            .await;
        assert_eq!(sent.get("set"), Some(&1), "{sent:?}");
    }
}
