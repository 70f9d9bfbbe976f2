//! One connection per store per thread, so each actix worker drives its own connection on
//! its own runtime: no request waits for another thread to move its bytes.
//!
//! # Why a watchdog and not a timeout per command
//! A single-server connection has no per-command response timeout. A tokio timer per
//! command (registered in the timer wheel, then removed) cost 0.25 µs of the server's CPU
//! per command: 0.5 µs of the 14 µs of a Redis `/incr`, measured as the `bench` server
//! with and without redis-rs's response timeout in alternating, paired rounds. Instead, each
//! connection counts the commands it started and finished, and a task wakes every half
//! timeout: when commands are outstanding and none has finished for three ticks in a row
//! (at least one timeout, at most one and a half), the connection is declared hung, every
//! command waiting on it fails with a timeout, and the next call opens a new connection.
//! A server that is slow but answering is not hung, where per-command timeouts would fail
//! its commands one by one. Cluster connections keep the client's own response timeout.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

/// Ticks without a finished command, while some are outstanding, that make a connection
/// hung. Ticks are half a timeout apart, and a command may have started just before the
/// first one, so three ticks are at least one timeout of silence.
const STALLED_TICKS: u32 = 3;

/// A connection to a single server or to a cluster. Cloning is cheap and shares it.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(MultiplexedConnection, Arc<Health>),
    Cluster(ClusterConnection),
}

impl Connection {
    /// A single-server connection, watched for hangs by a task on the current runtime.
    pub(crate) fn watched(connection: MultiplexedConnection, timeout: Duration) -> Self {
        let health = Arc::new(Health::default());
        tokio::spawn(watch(Arc::downgrade(&health), timeout));
        Self::Single(connection, health)
    }

    pub(crate) async fn query<T: FromRedisValue>(&mut self, command: &Cmd) -> RedisResult<T> {
        match self {
            Self::Single(connection, health) => health.track(command.query_async(connection)).await,
            Self::Cluster(connection) => command.query_async(connection).await,
        }
    }

    /// Whether the watchdog gave up on this connection.
    fn is_hung(&self) -> bool {
        match self {
            Self::Single(_, health) => health.hung.load(Ordering::Relaxed),
            Self::Cluster(_) => false,
        }
    }
}

/// What the watchdog of one connection sees.
#[derive(Default)]
pub(crate) struct Health {
    started: AtomicU64,
    finished: AtomicU64,
    hung: AtomicBool,
    /// Wakes the commands still waiting when the connection is declared hung.
    hang: Notify,
}

impl Health {
    /// Runs one command, counted, and failed with a timeout if the connection is declared
    /// hung before it answers.
    async fn track<T>(&self, command: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
        // Created before the check, so a hang declared in between still wakes it.
        let mut hang = pin!(self.hang.notified());
        if self.hung.load(Ordering::Relaxed) {
            return Err(hung());
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        // Counted as finished however it ends, dropped mid-flight included.
        let _finished = Finished(&self.finished);
        let mut command = pin!(command);
        poll_fn(|cx| match command.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => hang.as_mut().poll(cx).map(|()| Err(hung())),
        })
        .await
    }
}

struct Finished<'a>(&'a AtomicU64);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn hung() -> RedisError {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "Redis did not answer within the timeout",
    )
    .into()
}

/// Declares the connection hung when commands are outstanding and none finishes for
/// [`STALLED_TICKS`] ticks of half a timeout; ends with the connection.
async fn watch(health: Weak<Health>, timeout: Duration) {
    let mut ticks = tokio::time::interval((timeout / 2).max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut seen, mut stalled) = (0, 0);
    loop {
        ticks.tick().await;
        let Some(health) = health.upgrade() else {
            return;
        };
        let finished = health.finished.load(Ordering::Relaxed);
        let outstanding = health.started.load(Ordering::Relaxed) != finished;
        stalled = if outstanding && finished == seen {
            stalled + 1
        } else {
            0
        };
        seen = finished;
        if stalled >= STALLED_TICKS {
            health.hung.store(true, Ordering::Relaxed);
            health.hang.notify_waiters();
            return;
        }
    }
}

thread_local! {
    /// This thread's connections, by store. A handful of entries at most: a linear scan
    /// beats hashing.
    static CONNECTIONS: RefCell<Vec<(u64, Connection)>> = const { RefCell::new(Vec::new()) };
}

/// This thread's connection for store `store`, if it has one that is not hung.
pub(crate) fn cached(store: u64) -> Option<Connection> {
    CONNECTIONS.with_borrow_mut(|connections| {
        let index = connections.iter().position(|(id, _)| *id == store)?;
        if connections[index].1.is_hung() {
            connections.swap_remove(index);
            return None;
        }
        Some(connections[index].1.clone())
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
