//! Redis and Redis Cluster: `GET` on `/read`; `GET` + `SET ... EX` on `/incr`; `SET ... EX`
//! on `/new`, on one connection per worker, opened on the worker's own runtime.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};

use super::{failure, key, new_sid, sid, text, with_cookie, LIFETIME};

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
    let set = redis::cmd("SET")
        .arg(&key)
        .arg(value)
        .arg("EX")
        .arg(LIFETIME.as_secs())
        .query_async::<()>(&mut connection)
        .await;
    match set {
        Ok(()) => text(value.to_string()),
        Err(_) => failure(),
    }
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
