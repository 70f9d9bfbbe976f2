//! The benchmark's baseline: the bench app's three routes with no session library, doing
//! by hand exactly the store work a session needs, keyed by a plain `sid` cookie. Whatever
//! the library costs beyond this is what the benchmark measures.
//!
//! - `memory://`: no session at all; `/read` answers 0, `/incr` 1, `/new` 0.
//! - `redis://`: `GET` on `/read`; `GET` + `SET ... EX` on `/incr`; `SET ... EX` on `/new`,
//!   on one multiplexed connection per worker, opened on the worker's own runtime.
//! - `file://DIR`: a file per session, read inline on `/read`; `/incr` reads it and writes
//!   a temporary file renamed over it (the least a correct writer does: readers never see
//!   half a file); `/new` writes one the same way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::MessageBody;
use actix_web::cookie::Cookie;
use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use redis::aio::MultiplexedConnection;

/// The idle lifetime the baseline gives its sessions, as the library's default.
const LIFETIME_SECS: u64 = 31 * 24 * 3600;

/// Where the baseline keeps its sessions.
#[derive(Clone, Debug)]
pub enum Baseline {
    /// No sessions at all.
    Memory,
    /// Redis at this URL.
    Redis(redis::Client),
    /// Files in this directory.
    Files(PathBuf),
}

impl Baseline {
    /// The baseline for a store URL.
    pub fn from_url(url: &str) -> Result<Self, String> {
        match url.split_once("://") {
            Some(("memory", _)) => Ok(Self::Memory),
            Some(("redis", _)) => redis::Client::open(url)
                .map(Self::Redis)
                .map_err(|e| format!("invalid Redis URL: {e}")),
            Some(("file", dir)) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
                Ok(Self::Files(PathBuf::from(dir)))
            }
            _ => Err("the baseline supports memory://, redis:// and file:// only".to_owned()),
        }
    }

    /// Registers the routes for this baseline.
    pub fn routes(&self, config: &mut web::ServiceConfig) {
        match self {
            Self::Memory => {
                config
                    .route("/read", web::get().to(|| async { "0" }))
                    .route("/incr", web::get().to(|| async { "1" }))
                    .route("/new", web::get().to(|| async { "0" }));
            }
            Self::Redis(_) => {
                config
                    .route("/read", web::get().to(redis_read))
                    .route("/incr", web::get().to(redis_incr))
                    .route("/new", web::get().to(redis_new));
            }
            Self::Files(dir) => {
                config
                    .app_data(web::Data::new(dir.clone()))
                    .route("/read", web::get().to(file_read))
                    .route("/incr", web::get().to(file_incr))
                    .route("/new", web::get().to(file_new));
            }
        }
    }
}

fn sid(req: &HttpRequest) -> Option<String> {
    req.cookie("sid")
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn new_sid() -> String {
    let mut bytes = [0u8; 32];
    // A failing OS RNG leaves zeros: acceptable for a benchmark baseline, never for ids.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// The fastest connection redis-rs makes: multiplexed, and without the response timer it
/// starts for every command by default (its cost: see session-redis's `connection`
/// module). `RedisStore` has no such timer either, so neither side of the benchmark pays
/// for one.
pub async fn redis_connection(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// This worker's connection (made once per worker by `App::data_factory`).
pub type RedisConnection = web::Data<MultiplexedConnection>;

async fn redis_read(req: HttpRequest, connection: RedisConnection) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("0");
    };
    let mut connection = (**connection).clone();
    match redis::cmd("GET")
        .arg(format!("session:{sid}"))
        .query_async::<Option<i64>>(&mut connection)
        .await
    {
        Ok(value) => text(value.unwrap_or(0).to_string()),
        Err(_) => failure(),
    }
}

async fn redis_incr(req: HttpRequest, connection: RedisConnection) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let key = format!("session:{sid}");
    let mut connection = (**connection).clone();
    let Ok(value) = redis::cmd("GET")
        .arg(&key)
        .query_async::<Option<i64>>(&mut connection)
        .await
    else {
        return failure();
    };
    let value = value.unwrap_or(0) + 1;
    let set = redis::cmd("SET")
        .arg(&key)
        .arg(value)
        .arg("EX")
        .arg(LIFETIME_SECS)
        .query_async::<()>(&mut connection)
        .await;
    match set {
        Ok(()) => text(value.to_string()),
        Err(_) => failure(),
    }
}

async fn redis_new(connection: RedisConnection) -> HttpResponse {
    let sid = new_sid();
    let mut connection = (**connection).clone();
    let set = redis::cmd("SET")
        .arg(format!("session:{sid}"))
        .arg(0)
        .arg("EX")
        .arg(LIFETIME_SECS)
        .query_async::<()>(&mut connection)
        .await;
    match set {
        Ok(()) => with_cookie(&sid, "0"),
        Err(_) => failure(),
    }
}

fn read_counter(dir: &Path, sid: &str) -> Option<i64> {
    std::fs::read_to_string(dir.join(sid))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn write_counter(dir: &Path, sid: &str, value: i64) -> std::io::Result<()> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&temp, value.to_string())?;
    std::fs::rename(&temp, dir.join(sid))
}

async fn file_read(req: HttpRequest, dir: web::Data<PathBuf>) -> HttpResponse {
    let value = sid(&req)
        .and_then(|sid| read_counter(&dir, &sid))
        .unwrap_or(0);
    text(value.to_string())
}

async fn file_incr(req: HttpRequest, dir: web::Data<PathBuf>) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let value = read_counter(&dir, &sid).unwrap_or(0) + 1;
    match write_counter(&dir, &sid, value) {
        Ok(()) => text(value.to_string()),
        Err(_) => failure(),
    }
}

async fn file_new(dir: web::Data<PathBuf>) -> HttpResponse {
    let sid = new_sid();
    match write_counter(&dir, &sid, 0) {
        Ok(()) => with_cookie(&sid, "0"),
        Err(_) => failure(),
    }
}
