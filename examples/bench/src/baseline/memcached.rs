//! memcached, in the meta protocol through the async client `MemcachedStore` uses, with its
//! timeouts. The library refreshes expiry on every read, which memcached does in the read
//! itself, so `/read` is `mg key v c T<ttl>`; `/incr` is that and `ms key S<n> T<ttl>
//! C<cas> c`, the write conditional on the CAS just read; `/new` is `ms key S<n> T<ttl> ME
//! c`, an add, which cannot overwrite.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use memcache::exp::{AsyncMetaClient, Get, Meta, MutationStatus, Set, Ttl};

use super::{counter, expires_at, failure, key, new_sid, sid, text, with_cookie, ATTEMPTS};

/// `MemcachedStore`'s default timeout, for connecting and for each exchange (unless the
/// URL sets another).
const TIMEOUT: Duration = Duration::from_secs(1);

/// The client, shared by the workers as the library's store shares its own.
#[derive(Clone)]
pub struct Memcached(AsyncMetaClient);

impl std::fmt::Debug for Memcached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memcached")
    }
}

impl Memcached {
    /// The client for `host:port[,host:port...]` (a `memcache://` URL without its scheme),
    /// built as `MemcachedStore` builds its own, once every server has answered.
    pub(super) async fn connect(hosts: &str, timeout: Option<Duration>) -> Result<Self, String> {
        let timeout = timeout.unwrap_or(TIMEOUT);
        let servers: Vec<String> = hosts
            .trim_end_matches('/')
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|host| {
                if host.contains(':') {
                    host.to_owned()
                } else {
                    format!("{host}:11211")
                }
            })
            .collect();
        let unreachable = |e: memcache::exp::Error| format!("cannot reach memcached: {e}");
        let client = AsyncMetaClient::builder()
            .connect_timeout(Some(timeout))
            .io_timeout(Some(timeout))
            .max_idle(idle_connections())
            .connect_multiple_async(servers.iter().map(String::as_str))
            .await
            .map_err(unreachable)?;
        client.noop().await.map_err(unreachable)?;
        Ok(Self(client))
    }

    /// The routes, on this client.
    pub(super) fn routes(&self, config: &mut web::ServiceConfig) {
        config
            .app_data(web::Data::new(self.0.clone()))
            .route("/read", web::get().to(read))
            .route("/incr", web::get().to(incr))
            .route("/new", web::get().to(new));
    }
}

/// The expiry of a session written or read now, as `MemcachedStore` sends it: the
/// lifetime is over 30 days, which memcached takes as an absolute time only.
fn ttl() -> Ttl {
    Ttl::at(expires_at())
}

/// `mg key v c T<ttl>`: the counter and its CAS, if the session is there.
async fn load(client: &AsyncMetaClient, key: &str) -> Result<Option<(i64, u64)>, ()> {
    let get = Get::new(key).meta(Meta::NONE.cas()).touch(ttl());
    let result = client.run(get).await.map_err(drop)?;
    if !result.hit() {
        return Ok(None);
    }
    let cas = result.item.cas.ok_or(())?;
    Ok(Some((
        counter(result.value.as_deref().unwrap_or_default()),
        cas,
    )))
}

async fn read(req: HttpRequest, client: web::Data<AsyncMetaClient>) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("0");
    };
    match load(&client, &key(&sid)).await {
        Ok(found) => text(found.map_or(0, |(value, _)| value).to_string()),
        Err(()) => failure(),
    }
}

async fn incr(req: HttpRequest, client: web::Data<AsyncMetaClient>) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let key = key(&sid);
    for _ in 0..ATTEMPTS {
        let (value, cas) = match load(&client, &key).await {
            Ok(Some(found)) => found,
            Ok(None) => return text("1"),
            Err(()) => return failure(),
        };
        let value = value + 1;
        let set = Set::new(&key, value.to_string())
            .ttl(ttl())
            .compare_cas(cas)
            .return_cas();
        match client.run(set).await.map(|result| result.status) {
            Ok(MutationStatus::Applied) => return text(value.to_string()),
            Ok(MutationStatus::CasMismatch) => continue,
            Ok(MutationStatus::NotFound) => return text("1"),
            _ => return failure(),
        }
    }
    failure()
}

async fn new(client: web::Data<AsyncMetaClient>) -> HttpResponse {
    let sid = new_sid();
    let set = Set::new(key(&sid), "0").add().ttl(ttl()).return_cas();
    match client.run(set).await.map(|result| result.status) {
        Ok(MutationStatus::Applied) => with_cookie(&sid, "0"),
        _ => failure(),
    }
}

/// The store's default, or `BASELINE_MEMCACHED_IDLE`, to measure what another pool size
/// costs.
fn idle_connections() -> usize {
    std::env::var("BASELINE_MEMCACHED_IDLE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(session_memcached::DEFAULT_IDLE_CONNECTIONS)
}
