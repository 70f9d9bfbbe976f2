//! Which Redis to talk to, from a URL.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{AsyncConnectionConfig, Client, RedisError};

use crate::connection::Connection;

/// A single server or a cluster, with the timeouts every connection gets.
#[derive(Clone)]
pub(crate) enum Target {
    /// A single server's client, its connection settings, and the timeout after which its
    /// connection's watchdog declares a silent connection hung.
    Single(Client, AsyncConnectionConfig, Duration),
    Cluster(ClusterClient),
}

/// A URL this crate cannot use. Never contains the URL, which may hold a password.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL: {reason}")]
pub struct UrlError {
    reason: String,
}

impl Target {
    /// `redis://`, `rediss://` (feature `tls`), `redis+cluster://host:port,host:port,...`
    /// and `rediss+cluster://...`.
    pub(crate) fn parse(url: &str, timeout: Duration) -> Result<Self, UrlError> {
        let invalid = |e: RedisError| UrlError {
            reason: e.to_string(),
        };
        if let Some((scheme, rest)) = url.split_once("://") {
            if let Some(node_scheme) = scheme.strip_suffix("+cluster") {
                let (userinfo, hosts) = match rest.rsplit_once('@') {
                    Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
                    None => (String::new(), rest),
                };
                let hosts = hosts.trim_end_matches('/');
                let nodes: Vec<String> = hosts
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(|host| format!("{node_scheme}://{userinfo}{host}"))
                    .collect();
                if nodes.is_empty() {
                    return Err(UrlError {
                        reason: "a cluster URL needs at least one host:port".to_owned(),
                    });
                }
                let client = ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()
                    .map_err(invalid)?;
                return Ok(Self::Cluster(client));
            }
        }
        Ok(Self::single(Client::open(url).map_err(invalid)?, timeout))
    }

    /// A single server through `client`, its connections bounded by `timeout`.
    pub(crate) fn single(client: Client, timeout: Duration) -> Self {
        // No response timeout: the connection's watchdog bounds how long commands wait,
        // without a timer per command (see `connection`).
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        Self::Single(client, config, timeout)
    }

    /// A new connection, driven by a task on the current tokio runtime.
    pub(crate) async fn connect(&self) -> Result<Connection, RedisError> {
        match self {
            Self::Single(client, config, timeout) => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map(|connection| Connection::watched(connection, *timeout)),
            Self::Cluster(client) => client.get_async_connection().await.map(Connection::Cluster),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn single_urls_with_database_numbers_parse() {
        assert!(matches!(
            Target::parse("redis://127.0.0.1:6379/3", T),
            Ok(Target::Single(..))
        ));
    }

    #[test]
    fn cluster_urls_parse() {
        let target = Target::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", T);
        assert!(matches!(target, Ok(Target::Cluster(_))));
        assert!(Target::parse("redis+cluster://", T).is_err());
    }

    #[test]
    fn errors_do_not_repeat_the_password() {
        let error = Target::parse("bogus://user:hunter2@host", T).err().unwrap();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
