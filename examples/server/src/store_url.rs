//! Picks the session store from a URL, as Flask-Session's `SESSION_TYPE` picks a backend.

use std::sync::Arc;
use std::time::Duration;

use session_core::store::Store;
use session_core::MemoryStore;
use session_fs::FileStore;
use session_memcached::MemcachedStore;
use session_mongodb::MongoStore;
use session_redis::RedisStore;
use session_sql::SqlStore;

/// Opens the store a URL names: `file://DIR` (relative or absolute), `memory://`,
/// `redis://`, `rediss://`, `redis+cluster://host:port,host:port`, `postgres://`,
/// `mysql://`, `sqlite://path` (`sqlite://sessions.db?mode=rwc`), `sqlite::memory:` or
/// `memcache://host:port,host:port`, or `mongodb://host:port/database`. A server that cannot be
/// reached is an error here, at start-up, not on the first request.
///
/// A network store's URL (and `sqlite://`) may end in `store_timeout_ms=N` among its
/// query parameters: the store's timeout in milliseconds, after which a call to a server
/// that is down or does not answer fails (and the request gets a 503); without it, each
/// store's own default applies. The parameter is taken off the URL before the driver
/// sees it.
///
/// ```no_run
/// # async fn example() -> Result<(), String> {
/// let store = example_server::open_store("redis://127.0.0.1:6379?store_timeout_ms=500").await?;
/// # Ok(()) }
/// ```
///
/// The error is one line for the user and never repeats the URL, which may hold a
/// password.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not echoed: it may hold a password.
        return Err(
            "SESSION_STORE_URL is not a URL (try file://.sessions or memory://)".to_owned(),
        );
    };
    // A file path may contain `?`: only the other schemes have query parameters.
    let (url, timeout) = match scheme {
        "file" | "memory" => (url.to_owned(), None),
        _ => take_timeout(url)?,
    };
    let url = url.as_str();
    match scheme {
        "file" => {
            if rest.is_empty() {
                return Err("file:// needs a directory, e.g. file://.sessions".to_owned());
            }
            let store = FileStore::open(rest)
                .map_err(|e| format!("cannot use session directory `{rest}`: {e}"))?;
            Ok(Arc::new(store))
        }
        "memory" => Ok(Arc::new(MemoryStore::new())),
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {
            let mut builder = RedisStore::builder(url);
            if let Some(timeout) = timeout {
                builder = builder.timeout(timeout);
            }
            let store = builder.connect().await.map_err(|e| one_line("Redis", &e))?;
            Ok(Arc::new(store))
        }
        "memcache" => {
            let mut builder = MemcachedStore::builder(url);
            if let Some(timeout) = timeout {
                builder = builder.timeout(timeout);
            }
            let store = builder.connect().await.map_err(|e| one_line("memcached", &e))?;
            Ok(Arc::new(store))
        }
        "mongodb" | "mongodb+srv" => {
            let mut builder = MongoStore::builder(url);
            if let Some(timeout) = timeout {
                builder = builder.timeout(timeout);
            }
            let store = builder.connect().await.map_err(|e| one_line("MongoDB", &e))?;
            Ok(Arc::new(store))
        }
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite" => {
            let mut builder = SqlStore::builder(url);
            if let Some(timeout) = timeout {
                builder = builder.timeout(timeout);
            }
            let store = builder.connect().await.map_err(|e| one_line("SQL", &e))?;
            Ok(Arc::new(store))
        }
        _ => Err(format!(
            "unknown session store URL scheme `{scheme}://`; expected file://, memory://, redis://, redis+cluster://, postgres://, mysql://, sqlite://, memcache:// or mongodb://"
        )),
    }
}

/// The query parameter that sets the store's timeout.
const TIMEOUT_PARAMETER: &str = "store_timeout_ms";

/// `url` without its `store_timeout_ms=N` query parameter, and the timeout it set; the
/// bench's by-hand baseline reads the same parameter.
pub fn take_timeout(url: &str) -> Result<(String, Option<Duration>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut timeout = None;
    let mut kept = Vec::new();
    for parameter in query.split('&') {
        match parameter.split_once('=') {
            Some((TIMEOUT_PARAMETER, value)) => {
                let millis = value.parse::<u64>().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                    format!("{TIMEOUT_PARAMETER} must be a positive number of milliseconds, not `{value}`")
                })?;
                timeout = Some(Duration::from_millis(millis));
            }
            _ => kept.push(parameter),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, timeout))
}

/// `cannot reach the session store (Redis): <error>: <its causes>`, on one line.
fn one_line(what: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = format!("cannot reach the session store ({what}): {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn known_schemes_open() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("s").display());
        assert_eq!(open_store(&url).await.unwrap().backend(), "file");
        assert_eq!(open_store("memory://").await.unwrap().backend(), "memory");
    }

    #[tokio::test]
    async fn other_urls_are_one_line_errors() {
        for url in [
            "ftp://x",
            "nonsense",
            "file://",
            "redis://127.0.0.1:1",
            "mysql://x",
        ] {
            let error = open_store(url).await.err().unwrap();
            assert!(!error.contains('\n'), "{error}");
        }
        let error = open_store("bogus://user:hunter2@host").await.err().unwrap();
        assert!(error.contains("bogus://"), "{error}");
        let error = open_store("user:hunter2@host").await.err().unwrap();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn the_timeout_parameter_is_taken_off_the_url() {
        let ms = Duration::from_millis;
        for (url, expected, timeout) in [
            ("redis://h:1", "redis://h:1", None),
            (
                "redis://h:1?store_timeout_ms=250",
                "redis://h:1",
                Some(ms(250)),
            ),
            (
                "sqlite://s.db?mode=rwc&store_timeout_ms=9&x=1",
                "sqlite://s.db?mode=rwc&x=1",
                Some(ms(9)),
            ),
            ("mongodb://h/db?appName=a", "mongodb://h/db?appName=a", None),
        ] {
            assert_eq!(
                take_timeout(url).unwrap(),
                (expected.to_owned(), timeout),
                "{url}"
            );
        }
        for bad in ["0", "", "1s", "-5"] {
            let error = take_timeout(&format!("redis://h:1?store_timeout_ms={bad}")).unwrap_err();
            assert!(error.contains("store_timeout_ms"), "{error}");
        }
    }
}
