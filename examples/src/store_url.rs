//! Picks the session store from a URL, as Flask-Session's `SESSION_TYPE` picks a backend.

use std::sync::Arc;

use session_core::{MemoryStore, Store};
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
/// The error is one line for the user and never repeats the URL, which may hold a
/// password.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not echoed: it may hold a password.
        return Err(
            "SESSION_STORE_URL is not a URL (try file://.sessions or memory://)".to_owned(),
        );
    };
    match scheme {
        "file" => {
            if rest.is_empty() {
                return Err("file:// needs a directory, e.g. file://.sessions".to_owned());
            }
            let store = FileStore::new(rest)
                .map_err(|e| format!("cannot use session directory `{rest}`: {e}"))?;
            Ok(Arc::new(store))
        }
        "memory" => Ok(Arc::new(MemoryStore::new())),
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {
            let store = RedisStore::connect(url).await.map_err(|e| one_line("Redis", &e))?;
            Ok(Arc::new(store))
        }
        "memcache" => {
            let store = MemcachedStore::connect(url).await.map_err(|e| one_line("memcached", &e))?;
            Ok(Arc::new(store))
        }
        "mongodb" | "mongodb+srv" => {
            let store = MongoStore::connect(url).await.map_err(|e| one_line("MongoDB", &e))?;
            Ok(Arc::new(store))
        }
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite" => {
            let store = SqlStore::connect(url).await.map_err(|e| one_line("SQL", &e))?;
            Ok(Arc::new(store))
        }
        _ => Err(format!(
            "unknown session store URL scheme `{scheme}://`; expected file://, memory://, redis://, redis+cluster://, postgres://, mysql://, sqlite://, memcache:// or mongodb://"
        )),
    }
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
}
