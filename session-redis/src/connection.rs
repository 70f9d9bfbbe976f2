//! One connection per store per thread, so each actix worker drives its own connection on
//! its own runtime: no request waits for another thread to move its bytes.

use std::cell::RefCell;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisResult};

/// A connection to a single server or to a cluster. Cloning is cheap and shares it.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connection {
    pub(crate) async fn query<T: FromRedisValue>(&mut self, command: &Cmd) -> RedisResult<T> {
        match self {
            Self::Single(connection) => command.query_async(connection).await,
            Self::Cluster(connection) => command.query_async(connection).await,
        }
    }
}

thread_local! {
    /// This thread's connections, by store. A handful of entries at most: a linear scan
    /// beats hashing.
    static CONNECTIONS: RefCell<Vec<(u64, Connection)>> = const { RefCell::new(Vec::new()) };
}

/// This thread's connection for store `store`, if it has one.
pub(crate) fn cached(store: u64) -> Option<Connection> {
    CONNECTIONS.with_borrow(|connections| {
        connections
            .iter()
            .find(|(id, _)| *id == store)
            .map(|(_, connection)| connection.clone())
    })
}

/// Keeps `connection` as this thread's connection for `store`.
pub(crate) fn remember(store: u64, connection: Connection) {
    CONNECTIONS.with_borrow_mut(|connections| {
        connections.retain(|(id, _)| *id != store);
        connections.push((store, connection));
    });
}

/// Drops this thread's connection for `store`, so the next call reconnects.
pub(crate) fn forget(store: u64) {
    CONNECTIONS.with_borrow_mut(|connections| connections.retain(|(id, _)| *id != store));
}
