//! Users' sessions as Redis holds them: what is stored after logins, which commands the
//! index costs, and listing under prefixes with glob characters. Each test runs its own
//! `redis-server`, so that its dump and its command counts concern it alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::store::{Store, StoreError, StoreKey, UserKey};
use session_core::{Config, IdLength, Keyring, SessionId};
use session_redis::RedisStore;
use session_testkit::{CountingStore, RedisServer};

const PREFIX: &str = "app:";

fn hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn manager(store: impl Into<session_core::SharedStore>) -> SessionManager {
    let config = Config::builder(Keyring::new([[5u8; 32]]).unwrap())
        .key_prefix(PREFIX)
        .build()
        .unwrap();
    SessionManager::new(store, config)
}

async fn raw(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Saves `state` and returns the cookie a browser would send next.
async fn save(
    sessions: &SessionManager,
    state: session_core::adapter::SessionState,
) -> RequestCookie {
    match sessions.save(state).await.unwrap() {
        CookieUpdate::Set(header) => sessions.verify([header.split(';').next().unwrap()]),
        other => panic!("expected a cookie, got {other:?}"),
    }
}

/// Logs `user` in on `cookie`'s session (a new one for `Absent`), as an application does.
async fn logged_in(sessions: &SessionManager, cookie: RequestCookie, user: &str) -> RequestCookie {
    let mut state = sessions.load(cookie).await.unwrap();
    state.insert("seen", true).unwrap();
    state.log_in(user, None);
    save(sessions, state).await
}

fn id(cookie: &RequestCookie) -> SessionId {
    match cookie.clone() {
        RequestCookie::Valid(verified) => verified.into_id(),
        other => panic!("no valid cookie: {other:?}"),
    }
}

/// Every key under `prefix`, with its type and contents (a string's value, a set's
/// members), read with `SCAN`, `TYPE`, `GET` and `SMEMBERS`.
async fn dump(
    raw: &mut MultiplexedConnection,
    prefix: &str,
) -> BTreeMap<String, (String, Vec<Vec<u8>>)> {
    let mut keys = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(100)
            .query_async(raw)
            .await
            .unwrap();
        keys.extend(found);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut dump = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(raw).await.unwrap();
        let contents: Vec<Vec<u8>> = match kind.as_str() {
            "string" => {
                let value: Vec<u8> = redis::cmd("GET").arg(&key).query_async(raw).await.unwrap();
                vec![value]
            }
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(raw)
                .await
                .unwrap(),
            other => panic!("a key of type {other}"),
        };
        dump.insert(key, (kind, contents));
    }
    dump
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn no_key_value_or_index_member_holds_a_session_id() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let sessions = manager(store);
    let user = "alice@example.com";
    let anonymous = {
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("cart", 1).unwrap();
        save(&sessions, state).await
    };
    // Logging in on the anonymous session moves it to a new id; a second device logs in
    // on a session of its own, and then regenerates its id.
    let phone = logged_in(&sessions, anonymous.clone(), user).await;
    let laptop = logged_in(&sessions, RequestCookie::Absent, user).await;
    let mut state = sessions.load(laptop.clone()).await.unwrap();
    state.regenerate();
    let regenerated = save(&sessions, state).await;
    let ids: Vec<SessionId> = [&anonymous, &phone, &laptop, &regenerated]
        .into_iter()
        .map(id)
        .collect();

    let mut raw = raw(&server).await;
    let dump = dump(&mut raw, PREFIX).await;
    for (key, (_, contents)) in &dump {
        for id in &ids {
            assert!(!key.contains(id.as_str()), "a key holds a session id");
            for content in contents {
                assert!(
                    !contains(content, id.as_str()),
                    "a value or an index member holds a session id"
                );
            }
        }
    }
    // Two live sessions and the user's index, whose members are their keys.
    let live: BTreeSet<String> = [&phone, &regenerated]
        .into_iter()
        .map(|cookie| StoreKey::new(PREFIX, &id(cookie)).as_str().to_owned())
        .collect();
    let index = UserKey::new(PREFIX, user);
    let expected: BTreeSet<&str> = live
        .iter()
        .map(String::as_str)
        .chain([index.as_str()])
        .collect();
    assert_eq!(
        dump.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected
    );
    let (kind, members) = &dump[index.as_str()];
    assert_eq!(kind, "set");
    let members: BTreeSet<String> = members
        .iter()
        .map(|member| String::from_utf8(member.clone()).unwrap())
        .collect();
    assert_eq!(members, live);
    // The index never expires: a session's expiry moves without it.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(index.as_str())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(ttl, -1);
}

const INDEX_COMMANDS: [&str; 6] = ["sadd", "srem", "smembers", "multi", "exec", "scan"];

#[tokio::test]
async fn requests_on_a_bound_session_send_no_index_commands() {
    let server = RedisServer::start().unwrap();
    let store = std::sync::Arc::new(CountingStore::new(
        RedisStore::connect(&server.url()).await.unwrap(),
    ));
    let sessions = manager(store.clone());
    let cookie = logged_in(&sessions, RequestCookie::Absent, "bob").await;
    assert_eq!(store.count("create_bound"), 1);
    store.reset();

    // A read: load, and save of the unchanged session.
    let ((), commands) = server
        .calls_during(async {
            let state = sessions.load(cookie.clone()).await.unwrap();
            assert_eq!(state.user(), Some("bob"));
            assert_eq!(sessions.save(state).await.unwrap(), CookieUpdate::Keep);
        })
        .await;
    for name in INDEX_COMMANDS {
        assert!(
            !commands.contains_key(name),
            "a read sent {name}: {commands:?}"
        );
    }
    assert!(!commands.is_empty(), "the read sent nothing at all");
    // A write: the session changes, its binding does not.
    let ((), commands) = server
        .calls_during(async {
            let mut state = sessions.load(cookie.clone()).await.unwrap();
            state.insert("n", 1).unwrap();
            sessions.save(state).await.unwrap();
        })
        .await;
    for name in INDEX_COMMANDS {
        assert!(
            !commands.contains_key(name),
            "a write sent {name}: {commands:?}"
        );
    }
    assert!(commands.contains_key("evalsha"), "{commands:?}");
    for operation in ["create_bound", "unbind", "list_bound"] {
        assert_eq!(store.count(operation), 0, "{operation}");
    }
}

#[tokio::test]
async fn create_bound_is_one_transaction_and_a_refused_one_leaves_no_entry() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let (alice, bob) = (UserKey::new(PREFIX, "alice"), UserKey::new(PREFIX, "bob"));
    let key = StoreKey::new(PREFIX, &SessionId::generate(IdLength::default()).unwrap());
    let (created, commands) = server
        .calls_during(store.create_bound(&key, b"a", hour(), &alice))
        .await;
    created.unwrap();
    let one = |names: &[&str]| -> BTreeMap<String, u64> {
        names.iter().map(|name| ((*name).to_owned(), 1)).collect()
    };
    assert_eq!(commands, one(&["exec", "multi", "sadd", "set"]));

    let (refused, commands) = server
        .calls_during(store.create_bound(&key, b"b", hour(), &bob))
        .await;
    assert!(
        matches!(refused, Err(StoreError::DuplicateId)),
        "{refused:?}"
    );
    assert_eq!(commands, one(&["exec", "multi", "sadd", "set", "srem"]));
    assert!(store.list_bound(&bob).await.unwrap().is_empty());
    // Binding again to the same user refuses the record and keeps the entry.
    let again = store.create_bound(&key, b"c", hour(), &alice).await;
    assert!(matches!(again, Err(StoreError::DuplicateId)), "{again:?}");
    let listed = store.list_bound(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].key(), listed[0].value()), (&key, &b"a"[..]));

    // Listing prunes the entries of deleted records with one `SREM`, and nothing else.
    store.delete(&key).await.unwrap();
    let (listed, commands) = server.calls_during(store.list_bound(&alice)).await;
    assert!(listed.unwrap().is_empty());
    assert_eq!(commands, one(&["get", "pttl", "smembers", "srem"]));
    let mut raw = raw(&server).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(alice.as_str())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 0, "an empty index is left behind");
}

#[tokio::test]
async fn prefixes_with_glob_characters_count_and_scan_only_their_own_sessions() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let key =
        |prefix: &str| StoreKey::new(prefix, &SessionId::generate(IdLength::default()).unwrap());
    let globby = r"s[1]*?\:";
    let mut mine = BTreeSet::new();
    for _ in 0..3 {
        let key = key(globby);
        store.create(&key, b"mine", hour()).await.unwrap();
        mine.insert(key);
    }
    // Keys that the prefix would match as an unescaped pattern.
    for other in [r"s1xy\:", r"s[1]ab\:", "s1:"] {
        store.create(&key(other), b"other", hour()).await.unwrap();
    }
    store
        .create_bound(
            &key(globby),
            b"mine",
            SystemTime::now() + Duration::from_millis(1),
            &UserKey::new(globby, "u"),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert_eq!(store.count(globby).await.unwrap(), 3);
    let page = store.scan(globby, None, 100).await.unwrap();
    assert!(page.next.is_none());
    let scanned: BTreeSet<StoreKey> = page.records.iter().map(|l| l.key().clone()).collect();
    assert_eq!(scanned, mine);
    assert!(page.records.iter().all(|l| l.value() == b"mine"));
}
