//! The store benchmark, without HTTP: each backend's `load`, `update` and `create` through
//! our [`Store`] next to the raw client sending the same commands, so the table shows what
//! the store layer itself costs (key handling, expiry conversion, reply checks, error
//! mapping, the boxed future of an object-safe trait).
//!
//! Both sides run the same work on one current-thread runtime: [`CONCURRENCY`] tasks, each
//! repeating the operation on the same ~100-byte record, alternating raw and store runs
//! over several rounds; the medians are reported.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use session_core::store::time::unix_millis_i64;
use session_core::store::{Loaded, Revision, Store, StoreKey};
use session_core::{IdLength, SessionId};
use session_sql::{SqlPool, SqlStore};

/// Concurrent tasks per run, as many as the HTTP benchmark's connections.
pub const CONCURRENCY: usize = 32;

/// Distinct sessions `load` and `update` spread over.
const SESSIONS: usize = 1_000;

/// A stored record of typical size: the encoded form of a small session.
const RECORD: &[u8] = br#"{"v":1,"created":1763683200000,"permanent":true,"cookie":1763683200000,"data":{"counter":42,"uname":"ferris"}}"#;

/// The idle lifetime both sides give their records.
const LIFETIME: Duration = Duration::from_secs(3600);

/// The three store operations a request can cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Read a live record.
    Load,
    /// Overwrite a live record.
    Update,
    /// Store a record under a new key.
    Create,
}

impl Operation {
    /// Every operation, in table order.
    pub const ALL: [Self; 3] = [Self::Load, Self::Update, Self::Create];

    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Update => "update",
            Self::Create => "create",
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One side of the comparison: something that can do the three operations.
pub trait Side {
    /// Does `operation` on `key`; `Err` is a one-line description.
    fn run<'a>(
        &'a self,
        operation: Operation,
        key: &'a StoreKey,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Our store, with the record it last wrote of each key, which a conditional update
/// needs and a request would have from its load.
pub struct Ours(pub Arc<dyn Store>, Mutex<HashMap<StoreKey, Arc<Loaded>>>);

impl Ours {
    fn new(store: Arc<dyn Store>) -> Self {
        Self(store, Mutex::default())
    }

    fn loaded(&self, key: &StoreKey) -> Arc<Loaded> {
        let records = self.1.lock().unwrap_or_else(|e| e.into_inner());
        match records.get(key) {
            Some(loaded) => Arc::clone(loaded),
            None => Arc::new(Loaded::new(RECORD.to_vec(), Revision::FIRST)),
        }
    }

    fn wrote(&self, key: &StoreKey, loaded: Loaded) {
        let mut records = self.1.lock().unwrap_or_else(|e| e.into_inner());
        records.insert(key.clone(), Arc::new(loaded));
    }
}

impl Side for Ours {
    fn run<'a>(
        &'a self,
        operation: Operation,
        key: &'a StoreKey,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let at = SystemTime::now() + LIFETIME;
            let result = match operation {
                Operation::Load => self.0.load(key).await.and_then(|loaded| {
                    loaded
                        .map(drop)
                        .ok_or(session_core::store::StoreError::UnknownId)
                }),
                Operation::Update => {
                    let loaded = self.loaded(key);
                    match self.0.update_loaded(key, RECORD, at, &loaded).await {
                        Ok(revision) => {
                            self.wrote(key, Loaded::new(RECORD.to_vec(), revision));
                            Ok(())
                        }
                        // Another task wrote the key first: one round trip all the same.
                        Err(session_core::store::StoreError::Conflict { current }) => {
                            let current = match current {
                                Some(current) => Some(current),
                                None => self.0.load(key).await.map_err(|e| e.to_string())?,
                            };
                            if let Some(current) = current {
                                self.wrote(key, current);
                            }
                            Ok(())
                        }
                        Err(error) => Err(error),
                    }
                }
                Operation::Create => self
                    .0
                    .create(key, RECORD, at)
                    .await
                    .map(|revision| self.wrote(key, Loaded::new(RECORD.to_vec(), revision))),
            };
            result.map_err(|e| e.to_string())
        })
    }
}

/// The raw client of a backend, sending by hand the commands the store sends.
pub enum Raw {
    /// A `HashMap` behind a mutex, like `MemoryStore`.
    Memory(Mutex<HashMap<String, (Vec<u8>, SystemTime)>>),
    /// A file per record, written to a temporary file and renamed, like `FileStore`.
    Files(PathBuf),
    /// One multiplexed connection: `GET`, `SET .. XX PXAT`, `SET .. NX PXAT`.
    Redis(redis::aio::MultiplexedConnection),
    /// The async meta-protocol client: `mg`, `ms` in replace mode, `ms` in add mode.
    Memcached(memcache::exp::AsyncMetaClient),
    /// sqlx on the store's own pool and table.
    Sql(RawSql),
    /// The driver on the store's own collection.
    Mongo(Collection<Document>),
}

/// The table both sides of an SQL comparison use.
pub const SQL_TABLE: &str = "bench_sessions";

/// The raw SQL side: the store's statements written by hand for its pool's dialect, once
/// per run, as the store prepares its own once.
pub struct RawSql {
    pool: SqlPool,
    load: String,
    update: String,
    insert: String,
}

impl RawSql {
    fn new(pool: SqlPool) -> Result<Self, String> {
        let postgres = pool.dialect() == session_sql::Dialect::Postgres;
        // Written with `?`; PostgreSQL numbers its placeholders.
        let numbered = |sql: String| {
            if !postgres {
                return sql;
            }
            let mut n = 0;
            sql.chars()
                .map(|c| match c {
                    '?' => {
                        n += 1;
                        format!("${n}")
                    }
                    c => c.to_string(),
                })
                .collect()
        };
        let t = SQL_TABLE;
        let columns = "(id, data, expires_at, created_at, revision) VALUES (?, ?, ?, ?, ?)";
        let insert = match pool.dialect() {
            session_sql::Dialect::Postgres => {
                format!("INSERT INTO {t} {columns} ON CONFLICT (id) DO NOTHING")
            }
            session_sql::Dialect::MySql => format!("INSERT IGNORE INTO {t} {columns}"),
            session_sql::Dialect::Sqlite => format!("INSERT OR IGNORE INTO {t} {columns}"),
            other => return Err(format!("no raw SQL for {other:?}")),
        };
        Ok(Self {
            load: numbered(format!(
                "SELECT data, expires_at FROM {t} WHERE id = ? AND expires_at > ?"
            )),
            update: numbered(format!(
                "UPDATE {t} SET data = ?, expires_at = ? WHERE id = ? AND expires_at > ?"
            )),
            insert: numbered(insert),
            pool,
        })
    }
}

/// Runs the same sqlx expression on whichever pool this is; each arm is type-checked
/// against its own database.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            SqlPool::Postgres($p) => $body,
            SqlPool::MySql($p) => $body,
            SqlPool::Sqlite($p) => $body,
            _ => return Err("unsupported pool".to_owned()),
        }
    };
}

impl Raw {
    /// The raw side for a store URL, and our store for the same URL.
    pub async fn open(url: &str, scratch: &std::path::Path) -> Result<(Self, Ours), String> {
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        let unreachable = |e: &dyn std::fmt::Display| format!("cannot reach {scheme}: {e}");
        Ok(match scheme {
            "memory" => (
                Self::Memory(Mutex::default()),
                Ours::new(Arc::new(session_core::MemoryStore::new())),
            ),
            "file" => {
                let raw = scratch.join("raw");
                std::fs::create_dir_all(&raw).map_err(|e| e.to_string())?;
                let store = session_fs::FileStore::open(scratch.join("store"))
                    .map_err(|e| e.to_string())?;
                (Self::Files(raw), Ours::new(Arc::new(store)))
            }
            "redis" => {
                let client = redis::Client::open(url).map_err(|e| unreachable(&e))?;
                let connection = crate::baseline::redis_connection(&client)
                    .await
                    .map_err(|e| unreachable(&e))?;
                let store = session_redis::RedisStore::connect(url)
                    .await
                    .map_err(|e| unreachable(&e))?;
                (Self::Redis(connection), Ours::new(Arc::new(store)))
            }
            "memcache" => {
                let servers: Vec<&str> = url["memcache://".len()..].split(',').collect();
                let client = memcache::exp::AsyncMetaClient::builder()
                    .max_idle(session_memcached::DEFAULT_IDLE_CONNECTIONS)
                    .connect_multiple_async(servers.iter().copied())
                    .await
                    .map_err(|e| unreachable(&e))?;
                let store = session_memcached::MemcachedStore::connect(url)
                    .await
                    .map_err(|e| unreachable(&e))?;
                (Self::Memcached(client), Ours::new(Arc::new(store)))
            }
            "mongodb" => {
                let store = session_mongodb::MongoStore::builder(url)
                    .collection("bench_sessions")
                    .connect()
                    .await
                    .map_err(|e| unreachable(&e))?;
                (
                    Self::Mongo(store.collection().clone()),
                    Ours::new(Arc::new(store)),
                )
            }
            "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite" => {
                let store = SqlStore::builder(url)
                    .table(SQL_TABLE)
                    .connect()
                    .await
                    .map_err(|e| unreachable(&e))?;
                (
                    Self::Sql(RawSql::new(store.pool().clone())?),
                    Ours::new(Arc::new(store)),
                )
            }
            other => return Err(format!("no raw client for `{other}://`")),
        })
    }

    async fn load(&self, key: &str) -> Result<bool, String> {
        let now = SystemTime::now();
        match self {
            Self::Memory(map) => {
                let map = map.lock().map_err(|_| "poisoned")?;
                Ok(map
                    .get(key)
                    .is_some_and(|(value, at)| *at > now && !value.is_empty()))
            }
            Self::Files(dir) => Ok(std::fs::read(dir.join(key)).is_ok_and(|v| !v.is_empty())),
            Self::Redis(connection) => {
                let mut connection = connection.clone();
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(value.is_some())
            }
            Self::Memcached(client) => {
                let result = client
                    .run(memcache::exp::Get::new(key))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(result.hit())
            }
            Self::Sql(sql) => {
                let now = unix_millis_i64(now);
                let found = on_pool!(&sql.pool, pool => sqlx::query(&sql.load)
                    .bind(key)
                    .bind(now)
                    .fetch_optional(pool)
                    .await
                    .map(|row| row.is_some()));
                found.map_err(|e| e.to_string())
            }
            Self::Mongo(collection) => {
                let filter = doc! { "_id": key, "expires_at": { "$gt": bson_date(now) } };
                let document = collection
                    .find_one(filter)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(document.is_some_and(|d| matches!(d.get("data"), Some(Bson::Binary(_)))))
            }
        }
    }

    /// Writes the record under `key`, which must exist already (`exists`, an update) or
    /// must not (a create); `false` when it was in the other state.
    async fn write(&self, key: &str, exists: bool) -> Result<bool, String> {
        let now = SystemTime::now();
        let at = now + LIFETIME;
        match self {
            Self::Memory(map) => {
                let mut map = map.lock().map_err(|_| "poisoned")?;
                let live = map.get(key).is_some_and(|(_, at)| *at > now);
                if live == exists {
                    map.insert(key.to_owned(), (RECORD.to_vec(), at));
                }
                Ok(live == exists)
            }
            Self::Files(dir) => {
                static SERIAL: AtomicU64 = AtomicU64::new(0);
                let temp = dir.join(format!(".tmp-{}", SERIAL.fetch_add(1, Ordering::Relaxed)));
                std::fs::write(&temp, RECORD).map_err(|e| e.to_string())?;
                std::fs::rename(&temp, dir.join(key)).map_err(|e| e.to_string())?;
                Ok(true)
            }
            Self::Redis(connection) => {
                let mut connection = connection.clone();
                let reply: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(RECORD)
                    .arg(if exists { "XX" } else { "NX" })
                    .arg("PXAT")
                    .arg(unix_millis_i64(at))
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(reply.is_some())
            }
            Self::Memcached(client) => {
                let set = memcache::exp::Set::new(key, RECORD)
                    .ttl(memcache::exp::Ttl::secs(LIFETIME.as_secs() as u32));
                let set = if exists { set.replace() } else { set.add() };
                let result = client.run(set).await.map_err(|e| e.to_string())?;
                Ok(result.status == memcache::exp::MutationStatus::Applied)
            }
            Self::Sql(sql) => {
                let (now, at) = (unix_millis_i64(now), unix_millis_i64(at));
                let written = if exists {
                    on_pool!(&sql.pool, pool => sqlx::query(&sql.update)
                        .bind(RECORD)
                        .bind(at)
                        .bind(key)
                        .bind(now)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected()))
                } else {
                    on_pool!(&sql.pool, pool => sqlx::query(&sql.insert)
                        .bind(key)
                        .bind(RECORD)
                        .bind(at)
                        .bind(now)
                        .bind(1_i64)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected()))
                };
                written.map(|rows| rows == 1).map_err(|e| e.to_string())
            }
            Self::Mongo(collection) => {
                let data = Bson::Binary(mongodb::bson::Binary {
                    subtype: mongodb::bson::spec::BinarySubtype::Generic,
                    bytes: RECORD.to_vec(),
                });
                if exists {
                    let filter = doc! { "_id": key, "expires_at": { "$gt": bson_date(now) } };
                    let update = doc! { "$set": { "data": data, "expires_at": bson_date(at) } };
                    let result = collection
                        .update_one(filter, update)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(result.matched_count == 1)
                } else {
                    let document = doc! {
                        "_id": key, "data": data,
                        "expires_at": bson_date(at), "created_at": bson_date(now),
                    };
                    collection
                        .insert_one(document)
                        .await
                        .map(|_| true)
                        .map_err(|e| e.to_string())
                }
            }
        }
    }
}

impl Side for Raw {
    fn run<'a>(
        &'a self,
        operation: Operation,
        key: &'a StoreKey,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let done = match operation {
                Operation::Load => self.load(key.as_str()).await?,
                Operation::Update => self.write(key.as_str(), true).await?,
                Operation::Create => self.write(key.as_str(), false).await?,
            };
            if done {
                Ok(())
            } else {
                Err(format!("raw {} found the wrong state", operation.name()))
            }
        })
    }
}

fn bson_date(at: SystemTime) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(unix_millis_i64(at))
}

/// A new random key under the default prefix.
pub fn new_key() -> Result<StoreKey, String> {
    let id = SessionId::generate(IdLength::default()).map_err(|e| e.to_string())?;
    Ok(StoreKey::new(session_core::store::DEFAULT_KEY_PREFIX, &id))
}

/// `SESSIONS` keys that exist on `side`, made with its own `create`.
pub async fn prepare(side: &dyn Side) -> Result<Vec<StoreKey>, String> {
    let mut keys = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let key = new_key()?;
        side.run(Operation::Create, &key).await?;
        keys.push(key);
    }
    Ok(keys)
}

/// Operations per second of `operation` on `side` over `duration`, with [`CONCURRENCY`]
/// tasks on the current thread.
pub async fn measure(
    side: Rc<dyn Side>,
    operation: Operation,
    keys: Rc<Vec<StoreKey>>,
    duration: Duration,
) -> Result<f64, String> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let local = tokio::task::LocalSet::new();
    let mut tasks = Vec::with_capacity(CONCURRENCY);
    for task in 0..CONCURRENCY {
        let (side, keys) = (Rc::clone(&side), Rc::clone(&keys));
        tasks.push(local.spawn_local(async move {
            let mut done = 0u64;
            let mut next = task;
            while Instant::now() < deadline {
                let key = match operation {
                    Operation::Create => new_key()?,
                    _ => keys[next % keys.len()].clone(),
                };
                side.run(operation, &key).await?;
                next += CONCURRENCY;
                done += 1;
            }
            Ok::<u64, String>(done)
        }));
    }
    let total = local
        .run_until(async move {
            let mut total = 0;
            for task in tasks {
                total += task.await.map_err(|e| e.to_string())??;
            }
            Ok::<u64, String>(total)
        })
        .await?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
