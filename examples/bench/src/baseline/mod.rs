//! The benchmark's baseline: the bench app's three routes with no session library, doing
//! by hand exactly the store work a session needs, keyed by a plain `sid` cookie. Whatever
//! the library costs beyond this is what the benchmark measures.
//!
//! Each store keeps sessions apart from the library's (its own keys, table or
//! collection), with the driver and the client or pool settings of our store for it:
//!
//! | store | `/read` | `/incr` | `/new` |
//! |---|---|---|---|
//! | `memory://` | copy the live value out of a map behind a mutex | that copy, then rewrite it in place at its revision | insert one where none is |
//! | `none://` | nothing | nothing | nothing |
//! | `redis://`, `redis+cluster://` | `GET` | `GET`, `SET ... EX` | `SET ... EX` |
//! | `file://DIR` | read the file | read it, write a temporary file renamed over it | write a temporary file, rename it |
//! | `memcache://` | `mg v c T` | `mg v c T`, `ms T C<cas>` | `ms T ME` (add) |
//! | `mongodb://` | `find_one` live | `find_one` live, `update_one` live at its `rev` | `insert_one` |
//! | `postgres://`, `mysql://`, `sqlite://` | `SELECT` live by id | that `SELECT`, `UPDATE` of the live row at its revision | `INSERT` that cannot overwrite |
//!
//! A conditional write that finds another revision reads again and retries, as the
//! library's merge does; a cookie whose session is absent is answered as no session,
//! without a write.

mod files;
mod memcached;
mod memory;
mod mongo;
mod redis_kv;
mod sql;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use actix_web::body::MessageBody;
use actix_web::cookie::Cookie;
use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

pub use redis_kv::{redis_connection, RedisConnection};

/// The idle lifetime the baseline gives its sessions, as the library's default.
const LIFETIME: Duration = Duration::from_secs(31 * 24 * 3600);

/// How often `/incr` reads again after a conditional write found another revision, before
/// it answers 503.
const ATTEMPTS: usize = 16;

/// The table (SQL) or collection (MongoDB) of the baseline's sessions, apart from the
/// library's.
pub const TABLE: &str = "baseline_sessions";

/// Where the baseline keeps its sessions.
#[derive(Clone, Debug)]
pub enum Baseline {
    /// A map in this process, shared by the workers.
    Memory(memory::Memory),
    /// No sessions at all: for a store without a by-hand baseline, the cost of the whole
    /// session, store included.
    None,
    /// Redis at this URL.
    Redis(redis::Client),
    /// A Redis Cluster, with the connection settings of `RedisStore`.
    RedisCluster(Box<redis::cluster::ClusterClient>),
    /// Files in this directory.
    Files(PathBuf),
    /// memcached, through the client `MemcachedStore` uses.
    Memcached(memcached::Memcached),
    /// A MongoDB collection, as `MongoStore` opens its own.
    Mongo(mongo::Mongo),
    /// An SQL table, through a pool made as `SqlStore` makes its own.
    Sql(sql::Sql),
}

impl Baseline {
    /// The baseline for a store URL: connected, with its table, collection or directory
    /// created. A `store_timeout_ms=N` query parameter sets the timeout as it sets the
    /// library's store's, and is taken off the URL before the driver sees it.
    pub async fn connect(url: &str) -> Result<Self, String> {
        let Some((scheme, _)) = url.split_once("://") else {
            return Err("the baseline needs a store URL".to_owned());
        };
        let (url, timeout) = match scheme {
            "file" | "memory" | "none" => (url.to_owned(), None),
            _ => example_server::store_url::take_timeout(url)?,
        };
        let url = url.as_str();
        let rest = url.split_once("://").map_or("", |(_, rest)| rest);
        Ok(match scheme {
            "memory" => Self::Memory(memory::Memory::default()),
            "none" => Self::None,
            "redis" => redis::Client::open(url)
                .map(Self::Redis)
                .map_err(|e| format!("invalid Redis URL: {e}"))?,
            "redis+cluster" => {
                Self::RedisCluster(Box::new(redis_kv::cluster_client(rest, timeout)?))
            }
            "file" => {
                std::fs::create_dir_all(rest).map_err(|e| format!("cannot create {rest}: {e}"))?;
                Self::Files(PathBuf::from(rest))
            }
            "memcache" => Self::Memcached(memcached::Memcached::connect(rest, timeout).await?),
            "mongodb" => Self::Mongo(mongo::Mongo::connect(url, timeout).await?),
            "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite" => {
                Self::Sql(sql::Sql::connect(url, timeout).await?)
            }
            _ => return Err(
                "the baseline supports none://, memory://, redis://, redis+cluster://, file://, \
                     memcache://, mongodb://, postgres://, mysql:// and sqlite:// only"
                    .to_owned(),
            ),
        })
    }

    /// Registers the routes for this baseline. Redis and Redis Cluster handlers take their
    /// connection from the app's data, one per worker (see the `bench-baseline` binary).
    pub fn routes(&self, config: &mut web::ServiceConfig) {
        match self {
            Self::Memory(memory) => memory.routes(config),
            Self::None => {
                config
                    .route("/read", web::get().to(|| async { "0" }))
                    .route("/incr", web::get().to(|| async { "1" }))
                    .route("/new", web::get().to(|| async { "0" }));
            }
            Self::Redis(_) => redis_kv::routes::<redis::aio::MultiplexedConnection>(config),
            Self::RedisCluster(_) => {
                redis_kv::routes::<redis::cluster_async::ClusterConnection>(config)
            }
            Self::Files(dir) => files::routes(config, dir),
            Self::Memcached(memcached) => memcached.routes(config),
            Self::Mongo(mongo) => mongo.routes(config),
            Self::Sql(sql) => sql.routes(config),
        }
    }
}

/// The session id in the request's `sid` cookie, if it has the shape of one.
fn sid(req: &HttpRequest) -> Option<String> {
    req.cookie("sid")
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The store key of a session, as the library prefixes its own.
fn key(sid: &str) -> String {
    format!("session:{sid}")
}

fn new_sid() -> String {
    let mut bytes = [0u8; 32];
    // A failing OS RNG leaves zeros: acceptable for a benchmark baseline, never for ids.
    let _ = getrandom::fill(&mut bytes);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut sid = String::with_capacity(64);
    for b in bytes {
        sid.push(char::from(HEX[usize::from(b >> 4)]));
        sid.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    sid
}

/// The counter stored as decimal digits; anything else reads as 0.
fn counter(bytes: &[u8]) -> i64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// When a session written now expires.
fn expires_at() -> SystemTime {
    SystemTime::now() + LIFETIME
}

/// Unix milliseconds, as the SQL table and MongoDB's dates keep time.
fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A 200 with the headers the bench app's handlers get from returning a `String` or a
/// `&str`: the two sides' responses then differ only by what the session layer adds.
fn text(body: impl MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(body)
}

fn with_cookie(sid: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .cookie(
            Cookie::build("sid", sid.to_owned())
                .path("/")
                .http_only(true)
                .finish(),
        )
        .body(body)
}

fn failure() -> HttpResponse {
    HttpResponse::new(StatusCode::SERVICE_UNAVAILABLE)
}
