//! Users' sessions and listing on every database: what the rows hold after logins, the
//! migration of a table made without `user_key`, and prefix ranges that compare byte-wise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use common::{mysql_url, postgres_url, run_sql, stores, unique};
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::store::{ScanCursor, Store, StoreKey, UserKey};
use session_core::{Config, IdLength, Keyring, SessionId, SharedStore};
use session_sql::{Dialect, SqlPool, SqlStore, TableSetup};
use sqlx::Row as _;

/// A row as stored: id, user_key, data.
type Row = (String, Option<String>, Vec<u8>);

/// Every row of `table`.
async fn rows(pool: &SqlPool, table: &str) -> Vec<Row> {
    let sql = format!("SELECT id, user_key, data FROM {table}");
    // Unchecked: MySQL flags the ascii_bin columns as binary, which sqlx will not read as
    // text.
    macro_rules! read {
        ($pool:expr) => {
            sqlx::query(&sql)
                .fetch_all($pool)
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    (
                        row.try_get_unchecked(0).unwrap(),
                        row.try_get_unchecked(1).unwrap(),
                        row.try_get(2).unwrap(),
                    )
                })
                .collect()
        };
    }
    match pool {
        SqlPool::Postgres(pool) => read!(pool),
        SqlPool::MySql(pool) => read!(pool),
        SqlPool::Sqlite(pool) => read!(pool),
        _ => unreachable!("all three databases are compiled in"),
    }
}

fn manager(store: &SqlStore) -> SessionManager {
    let keyring = Keyring::new([[7u8; 32]]).unwrap();
    let config = Config::builder(keyring).build().unwrap();
    SessionManager::new(SharedStore::new(store.clone()), config)
}

/// Saves the state `cookie` loads, logged in as `user` if any, and returns the cookie a
/// browser would send next.
async fn saved(
    sessions: &SessionManager,
    cookie: RequestCookie,
    user: Option<&str>,
) -> RequestCookie {
    let mut state = sessions.load(cookie).await.unwrap();
    state.insert("seen", true).unwrap();
    if let Some(user) = user {
        state.log_in(user, None);
    }
    match sessions.save(state).await.unwrap() {
        CookieUpdate::Set(header) => {
            let pair = header.split(';').next().unwrap().to_owned();
            sessions.verify([pair.as_str()])
        }
        other => panic!("expected a cookie, got {other:?}"),
    }
}

fn id_of(cookie: &RequestCookie) -> SessionId {
    match cookie.clone() {
        RequestCookie::Valid(verified) => verified.into_id(),
        _ => panic!("no valid cookie"),
    }
}

fn holds(text: &[u8], id: &SessionId) -> bool {
    text.windows(id.as_str().len())
        .any(|window| window == id.as_str().as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_logins_no_row_holds_a_session_id() {
    for (database, store, table) in stores("ids").await {
        let sessions = manager(&store);
        let anonymous = saved(&sessions, RequestCookie::Absent, None).await;
        let alice_1 = saved(&sessions, anonymous.clone(), Some("alice")).await;
        let alice_2 = saved(&sessions, RequestCookie::Absent, Some("alice")).await;
        let bob = saved(&sessions, RequestCookie::Absent, Some("bob")).await;
        let other = saved(&sessions, RequestCookie::Absent, None).await;
        // The id given up at log-in, too: no id ever issued is in the table.
        let ids: Vec<SessionId> = [&anonymous, &alice_1, &alice_2, &bob, &other]
            .into_iter()
            .map(id_of)
            .collect();
        assert!(
            sessions.load(anonymous).await.unwrap().is_empty(),
            "{database}"
        );
        assert_eq!(sessions.sessions_of("alice", None).await.unwrap().len(), 2);

        let rows = rows(store.pool(), &table).await;
        assert_eq!(rows.len(), 4, "{database}: a row per live session");
        let bound: Vec<&String> = rows
            .iter()
            .filter_map(|(_, user, _)| user.as_ref())
            .collect();
        assert_eq!(bound.len(), 3, "{database}: the logged-in rows are bound");
        assert_eq!(
            bound.iter().collect::<BTreeSet<_>>().len(),
            2,
            "{database}: one user key per user"
        );
        for (id, user_key, data) in &rows {
            for session in &ids {
                assert!(
                    !holds(id.as_bytes(), session),
                    "{database}: an id column holds an id"
                );
                assert!(
                    !user_key
                        .as_ref()
                        .is_some_and(|u| holds(u.as_bytes(), session)),
                    "{database}: a user_key holds an id"
                );
                assert!(!holds(data, session), "{database}: data holds an id");
            }
            assert!(
                !user_key
                    .as_ref()
                    .is_some_and(|u| u.contains("alice") || u.contains("bob")),
                "{database}: a user_key holds a user id"
            );
        }
    }
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn new_key(prefix: &str) -> StoreKey {
    StoreKey::new(prefix, &SessionId::generate(IdLength::default()).unwrap())
}

/// The table as this crate created it before it had `user_key`, with one session in it.
fn old_table(dialect: Dialect, t: &str, index: &str, expires_at: i64) -> String {
    let (table, data) = match dialect {
        Dialect::Postgres => (
            format!(
                "CREATE TABLE {t} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                 expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, \
                 revision BIGINT NOT NULL);\n\
                 CREATE INDEX {index} ON {t} (expires_at)"
            ),
            "decode('6f6c64', 'hex')",
        ),
        Dialect::MySql => (
            format!(
                "CREATE TABLE {t} (id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin \
                 NOT NULL PRIMARY KEY, data LONGBLOB NOT NULL, expires_at BIGINT NOT NULL, \
                 created_at BIGINT NOT NULL, revision BIGINT NOT NULL, \
                 INDEX {index} (expires_at))"
            ),
            "X'6f6c64'",
        ),
        _ => (
            format!(
                "CREATE TABLE {t} (id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL, \
                 expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, \
                 revision INTEGER NOT NULL) WITHOUT ROWID;\n\
                 CREATE INDEX {index} ON {t} (expires_at)"
            ),
            "X'6f6c64'",
        ),
    };
    format!(
        "{table};\nINSERT INTO {t} (id, data, expires_at, created_at, revision) \
         VALUES ('mig:old', {data}, {expires_at}, 0, 1)"
    )
}

/// A table of the shape this crate created before it had `user_key`, holding one session,
/// in each database: the pool, the table's name and schema.
async fn old_tables(name: &str) -> Vec<(SqlPool, String, Option<String>)> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-sql");
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        dir.join(format!("{}.db", unique(name))).display()
    );
    let schema = unique(name);
    let mysql_table = unique(name);
    let postgres = SqlPool::from(sqlx::PgPool::connect(&postgres_url()).await.unwrap());
    let mysql = SqlPool::from(sqlx::MySqlPool::connect(&mysql_url()).await.unwrap());
    let sqlite = SqlPool::from(sqlx::SqlitePool::connect(&sqlite_url).await.unwrap());
    run_sql(&postgres, &format!("CREATE SCHEMA \"{schema}\"")).await;
    let expires_at = in_an_hour()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut tables = Vec::new();
    for (pool, table, schema, qualified) in [
        (
            postgres,
            "sessions".to_owned(),
            Some(schema.clone()),
            format!("\"{schema}\".\"sessions\""),
        ),
        (mysql, mysql_table.clone(), None, format!("`{mysql_table}`")),
        (
            sqlite,
            "sessions".to_owned(),
            None,
            "\"sessions\"".to_owned(),
        ),
    ] {
        let dialect = pool.dialect();
        let index = match dialect {
            Dialect::MySql => format!("`{table}_expires_at`"),
            _ => format!("\"{table}_expires_at\""),
        };
        run_sql(&pool, &old_table(dialect, &qualified, &index, expires_at)).await;
        tables.push((pool, table, schema));
    }
    tables
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_key_migration_brings_an_old_table_to_the_new_shape() {
    for (pool, table, schema) in old_tables("old").await {
        let schema = schema.as_deref();
        let dialect = pool.dialect();
        let migration = SqlStore::user_key_migration(dialect, &table, schema).unwrap();
        run_sql(&pool, &migration).await;

        let connect = |setup| {
            let mut builder = SqlStore::from_pool(pool.clone())
                .table(&table)
                .table_setup(setup);
            if let Some(schema) = schema {
                builder = builder.schema(schema);
            }
            builder.connect()
        };
        let store = connect(TableSetup::Existing).await.unwrap();
        let old = StoreKey::from_stored("mig:old");
        let loaded = store.load(&old).await.unwrap().unwrap();
        assert_eq!(
            loaded.value(),
            b"old",
            "{dialect:?}: the old session is kept"
        );

        let user = UserKey::new("mig:", "alice");
        assert!(
            store.list_bound(&user).await.unwrap().is_empty(),
            "{dialect:?}"
        );
        let key = new_key("mig:");
        store
            .create_bound(&key, b"new", in_an_hour(), &user)
            .await
            .unwrap();
        let listed = store.list_bound(&user).await.unwrap();
        assert_eq!(listed.len(), 1, "{dialect:?}");
        assert_eq!(
            (listed[0].key(), listed[0].value()),
            (&key, &b"new"[..]),
            "{dialect:?}"
        );
        assert_eq!(store.count("mig:").await.unwrap(), 2, "{dialect:?}");
        let page = store.scan("mig:", None, 10).await.unwrap();
        assert_eq!(page.records.len(), 2, "{dialect:?}");
        store.unbind(&user, &key).await.unwrap();
        assert!(
            store.list_bound(&user).await.unwrap().is_empty(),
            "{dialect:?}"
        );

        // The migrated table is the one this build creates: its DDL finds nothing to do.
        connect(TableSetup::CreateIfMissing).await.unwrap();
        run_sql(
            &pool,
            &SqlStore::migration(dialect, &table, schema).unwrap(),
        )
        .await;
        if let SqlPool::Postgres(pg) = &pool {
            let collation: Option<String> = sqlx::query_scalar(
                "SELECT collation_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = 'sessions' AND column_name = 'id'",
            )
            .bind(schema)
            .fetch_one(pg)
            .await
            .unwrap();
            assert_eq!(collation.as_deref(), Some("C"));
        }
    }
}

/// Ids that `prefix` ranges must tell apart: under `a_%:` (whose `_` and `%` a `LIKE` would
/// read as wildcards), in no order that a locale would agree with.
const INSIDE: [&str; 6] = ["a_%:-x", "a_%:0", "a_%:A", "a_%:_", "a_%:a", "a_%:z~"];
const OUTSIDE: [&str; 8] = [
    "a_%:", "a_%;", "a_%", "aX%:b", "a_Y:c", "a_%9", "A_%:x", "b",
];

/// `count` and a `scan` in pages of two see exactly the ids under the prefix, in byte order.
async fn check_ranges(database: &str, store: &SqlStore) {
    for id in INSIDE.iter().chain(&OUTSIDE) {
        let key = StoreKey::from_stored(*id);
        store.create(&key, b"x", in_an_hour()).await.unwrap();
    }
    assert_eq!(
        store.count("a_%:").await.unwrap(),
        INSIDE.len() as u64,
        "{database}"
    );
    let mut seen = Vec::new();
    let mut after: Option<ScanCursor> = None;
    loop {
        let page = store.scan("a_%:", after.as_ref(), 2).await.unwrap();
        assert!(page.records.len() <= 2, "{database}");
        seen.extend(page.records.iter().map(|l| l.key().as_str().to_owned()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen, INSIDE,
        "{database}: the ids under the prefix, byte-wise"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_ranges_are_byte_wise_and_literal() {
    for (database, store, _) in stores("ranges").await {
        check_ranges(database, &store).await;
    }
    // A PostgreSQL id column in a locale's order still gives byte-wise ranges and pages.
    let schema = unique("icu");
    let store = SqlStore::builder(postgres_url())
        .schema(&schema)
        .connect()
        .await
        .unwrap();
    let alter = format!(
        "ALTER TABLE \"{schema}\".sessions ALTER COLUMN id SET DATA TYPE TEXT COLLATE \"und-x-icu\""
    );
    run_sql(store.pool(), &alter).await;
    check_ranges("postgres und-x-icu", &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_create_if_missing_upgrades_an_old_table() {
    for (pool, table, schema) in old_tables("auto").await {
        let schema = schema.as_deref();
        let dialect = pool.dialect();
        let connect = || {
            let mut builder = SqlStore::from_pool(pool.clone())
                .table(&table)
                .table_setup(TableSetup::CreateIfMissing);
            if let Some(schema) = schema {
                builder = builder.schema(schema);
            }
            builder.connect()
        };
        let store = connect().await.unwrap();
        let old = StoreKey::from_stored("mig:old");
        assert!(store.load(&old).await.unwrap().is_some(), "{dialect:?}");
        let user = UserKey::new("mig:", "alice");
        let key = new_key("mig:");
        store
            .create_bound(&key, b"new", in_an_hour(), &user)
            .await
            .unwrap();
        assert_eq!(
            store.list_bound(&user).await.unwrap().len(),
            1,
            "{dialect:?}"
        );
        // Upgraded once: the next connect finds nothing to do.
        connect().await.unwrap();
    }
}
