//! Redis and Redis Cluster: `GET` on `/read`; `GET` + `SET ... EX` on `/incr`; `SET ... EX`
//! on `/new`, on one connection per worker, opened on the worker's own runtime.
//!
//! With `BASELINE_REDIS_SCRIPTED_SET=1`, `/incr` sends its `SET` from inside a script that
//! does nothing else, with the arguments `RedisStore`'s conditional write takes: what
//! running any script costs Redis, the least a conditional write by script can cost on a
//! Redis without a native one.

use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, SystemTime};

use actix_web::{web, HttpRequest, HttpResponse};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};

use super::{expires_at, failure, key, new_sid, sid, text, unix_millis, with_cookie, LIFETIME};

/// The script of `BASELINE_REDIS_SCRIPTED_SET`: the `SET` alone, no check.
const SET_SCRIPT: &str = "return redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])";

/// A stand-in for the revision `RedisStore` passes its script, of the same length.
const REVISION: &str = "0123456789abcdef";

/// Whether `/incr` writes through [`SET_SCRIPT`].
static SCRIPTED_SET: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("BASELINE_REDIS_SCRIPTED_SET").is_some());

/// [`SET_SCRIPT`]'s SHA-1, from the first `SCRIPT LOAD`.
static SET_SCRIPT_SHA: OnceLock<String> = OnceLock::new();

/// `RedisStore`'s default timeout, which its cluster client gets for connecting and for
/// each command (unless the URL sets another).
const TIMEOUT: Duration = Duration::from_secs(1);

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

/// The cluster client of `redis+cluster://host:port,host:port,...` (without the scheme),
/// built as `RedisStore` builds its own: the same nodes, connection and response timeouts.
pub(super) fn cluster_client(
    hosts: &str,
    timeout: Option<Duration>,
) -> Result<ClusterClient, String> {
    let timeout = timeout.unwrap_or(TIMEOUT);
    let (userinfo, hosts) = match hosts.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), hosts),
    };
    let nodes: Vec<String> = hosts
        .trim_end_matches('/')
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|host| format!("redis://{userinfo}{host}"))
        .collect();
    if nodes.is_empty() {
        return Err("a cluster URL needs at least one host:port".to_owned());
    }
    ClusterClientBuilder::new(nodes)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()
        .map_err(|e| format!("invalid Redis Cluster URL: {e}"))
}

/// The routes, on this worker's connection of type `C` in the app's data.
pub(super) fn routes<C>(config: &mut web::ServiceConfig)
where
    C: ConnectionLike + Clone + 'static,
{
    config
        .route("/read", web::get().to(read::<C>))
        .route("/incr", web::get().to(incr::<C>))
        .route("/new", web::get().to(new::<C>));
}

async fn read<C: ConnectionLike + Clone>(
    req: HttpRequest,
    connection: web::Data<C>,
) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("0");
    };
    let mut connection = (**connection).clone();
    match redis::cmd("GET")
        .arg(key(&sid))
        .query_async::<Option<i64>>(&mut connection)
        .await
    {
        Ok(value) => text(value.unwrap_or(0).to_string()),
        Err(_) => failure(),
    }
}

async fn incr<C: ConnectionLike + Clone>(
    req: HttpRequest,
    connection: web::Data<C>,
) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let key = key(&sid);
    let mut connection = (**connection).clone();
    let Ok(value) = redis::cmd("GET")
        .arg(&key)
        .query_async::<Option<i64>>(&mut connection)
        .await
    else {
        return failure();
    };
    let value = value.unwrap_or(0) + 1;
    let set = if *SCRIPTED_SET {
        scripted_set(&mut connection, &key, value, expires_at()).await
    } else {
        redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("EX")
            .arg(LIFETIME.as_secs())
            .query_async::<()>(&mut connection)
            .await
    };
    match set {
        Ok(()) => text(value.to_string()),
        Err(_) => failure(),
    }
}

/// `SET key value PXAT at` from inside [`SET_SCRIPT`], loaded on first use and again when
/// the server has forgotten it (a restart).
async fn scripted_set<C: ConnectionLike>(
    connection: &mut C,
    key: &str,
    value: i64,
    at: SystemTime,
) -> redis::RedisResult<()> {
    let sha = match SET_SCRIPT_SHA.get() {
        Some(sha) => sha.clone(),
        None => load_set_script(connection).await?,
    };
    let mut evalsha = redis::cmd("EVALSHA");
    evalsha
        .arg(sha)
        .arg(1)
        .arg(key)
        .arg(REVISION)
        .arg(value)
        .arg(unix_millis(at));
    match evalsha.query_async(connection).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            load_set_script(connection).await?;
            evalsha.query_async(connection).await
        }
        answer => answer,
    }
}

/// Loads [`SET_SCRIPT`] and remembers its SHA-1.
async fn load_set_script<C: ConnectionLike>(connection: &mut C) -> redis::RedisResult<String> {
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SET_SCRIPT)
        .query_async(connection)
        .await?;
    Ok(SET_SCRIPT_SHA.get_or_init(|| sha).clone())
}

async fn new<C: ConnectionLike + Clone>(connection: web::Data<C>) -> HttpResponse {
    let sid = new_sid();
    let mut connection = (**connection).clone();
    let set = redis::cmd("SET")
        .arg(key(&sid))
        .arg(0)
        .arg("EX")
        .arg(LIFETIME.as_secs())
        .query_async::<()>(&mut connection)
        .await;
    match set {
        Ok(()) => with_cookie(&sid, "0"),
        Err(_) => failure(),
    }
}
