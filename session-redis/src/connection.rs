//! One connection per store per thread, so each actix worker drives its own connection on
//! its own runtime: no request waits for another thread to move its bytes.
//!
//! # Why a watchdog and not a timeout per command
//! A single-server connection has no per-command response timeout, because a tokio timer
//! per command (registered in the timer wheel, then removed) costs the server measurable
//! CPU on every request (see `docs/performance.md`). Instead, each connection counts the
//! commands it started and finished, and a task wakes every half timeout and notes both
//! counts: when a command counted as started two ticks ago is still unanswered and no
//! command has finished since that tick (a whole timeout of silence while it waited, at
//! most one and a half timeouts after it was sent), the connection is declared hung,
//! every command waiting on it fails with a timeout, and the next call opens a new
//! connection. Answers that came before a command was sent do not postpone its failure. A
//! server that is slow but answering is not hung, where per-command timeouts would fail
//! its commands one by one. A command whose caller gave up before its answer (a request
//! timeout shorter than the store's) stays unanswered in these counts, since its answer
//! cannot be seen: a connection that then answers nothing for a whole timeout, dead or
//! merely idle, is retired, and the next call opens a new one. Cluster connections keep
//! the client's own response timeout.

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
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisResult};
use tokio::runtime::{self, Handle};
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};

/// Ticks, half a timeout apart, back to the one whose counts decide whether a connection is
/// hung: a command started before it and still waiting, with nothing finished since, has
/// had at least one timeout of silence, and was sent at most three half timeouts ago.
const STALLED_TICKS: usize = 2;

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

    /// Sends a pipeline in one round trip; on a cluster, to the slot of its first key, which
    /// every command of it must share.
    pub(crate) async fn query_pipeline<T: FromRedisValue>(
        &mut self,
        pipeline: &Pipeline,
    ) -> RedisResult<T> {
        match self {
            Self::Single(connection, health) => {
                health.track(pipeline.query_async(connection)).await
            }
            Self::Cluster(connection) => pipeline.query_async(connection).await,
        }
    }

    /// Sends a keyless command: on a cluster, to the master serving `slot`, or to any node
    /// for `None`; on a single server, to it.
    pub(crate) async fn query_on<T: FromRedisValue>(
        &mut self,
        command: Cmd,
        slot: Option<Slot>,
    ) -> RedisResult<T> {
        match self {
            Self::Single(..) => self.query(&command).await,
            Self::Cluster(connection) => {
                let node = match slot {
                    Some(slot) => SingleNodeRoutingInfo::SpecificNode(Route::with_slot(
                        slot,
                        SlotAddr::Master,
                    )),
                    None => SingleNodeRoutingInfo::Random,
                };
                let reply = connection
                    .route_command(command, RoutingInfo::SingleNode(node))
                    .await?;
                Ok(redis::from_redis_value(reply)?)
            }
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
        let mut command = pin!(command);
        poll_fn(|cx| match command.as_mut().poll(cx) {
            Poll::Ready(result) => {
                // Only an answer counts: a command dropped by a caller that gave up is
                // still unanswered, or callers that always give up first would keep a
                // dead connection looking alive.
                self.finished.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(result)
            }
            Poll::Pending => hang.as_mut().poll(cx).map(|()| Err(hung())),
        })
        .await
    }
}

fn hung() -> RedisError {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "Redis did not answer within the timeout",
    )
    .into()
}

/// Declares the connection hung when a command started [`STALLED_TICKS`] ticks of half a
/// timeout ago is still waiting and none has finished since; ends with the connection.
async fn watch(health: Weak<Health>, timeout: Duration) {
    let mut ticks = tokio::time::interval((timeout / 2).max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The (started, finished) counts at the last ticks, and when they were read, the oldest
    // first.
    let mut history = [(0u64, 0u64, Instant::now()); STALLED_TICKS];
    loop {
        ticks.tick().await;
        let Some(health) = health.upgrade() else {
            return;
        };
        // Finished first: a command counted as finished is then counted as started too.
        let finished = health.finished.load(Ordering::Relaxed);
        let started = health.started.load(Ordering::Relaxed);
        let (started_then, finished_then, read_at) = history[0];
        // Fewer commands finished than had started back then: one of those is waiting.
        if finished == finished_then && finished < started_then {
            // A tick is timed from when the last one was due, not from when its counts were
            // read: wait out the rest of a whole timeout since then, and look again.
            tokio::time::sleep_until(read_at + timeout).await;
            if health.finished.load(Ordering::Relaxed) == finished_then {
                health.hung.store(true, Ordering::Relaxed);
                health.hang.notify_waiters();
                return;
            }
        }
        history.rotate_left(1);
        history[STALLED_TICKS - 1] = (started, finished, Instant::now());
    }
}

/// The runtime a connection was opened on, which drives it: a call on another runtime (one
/// that replaced it on this thread, or one that takes turns with it) needs a connection of
/// its own.
fn current_runtime() -> Option<runtime::Id> {
    Handle::try_current().ok().map(|runtime| runtime.id())
}

thread_local! {
    /// This thread's connections, by store, with the runtime that opened each. A handful of
    /// entries at most: a linear scan beats hashing.
    static CONNECTIONS: RefCell<Vec<(u64, Option<runtime::Id>, Connection)>> =
        const { RefCell::new(Vec::new()) };
}

/// This thread's connection for store `store`, if it has one that is not hung and was
/// opened on the current runtime.
pub(crate) fn cached(store: u64) -> Option<Connection> {
    let runtime = current_runtime();
    CONNECTIONS.with_borrow_mut(|connections| {
        let index = connections.iter().position(|(id, ..)| *id == store)?;
        let (_, opened_on, connection) = &connections[index];
        if connection.is_hung() || *opened_on != runtime {
            connections.swap_remove(index);
            return None;
        }
        Some(connection.clone())
    })
}

/// Keeps `connection`, opened on the current runtime, as this thread's connection for
/// `store`.
pub(crate) fn remember(store: u64, connection: Connection) {
    let runtime = current_runtime();
    CONNECTIONS.with_borrow_mut(|connections| {
        connections.retain(|(id, ..)| *id != store);
        connections.push((store, runtime, connection));
    });
}

/// Drops this thread's connection for `store`, so the next call reconnects.
pub(crate) fn forget(store: u64) {
    CONNECTIONS.with_borrow_mut(|connections| connections.retain(|(id, ..)| *id != store));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{sleep, sleep_until, Instant};

    /// A command sent just after an answer arrived, on a connection that then goes
    /// silent, fails after one to one and a half timeouts: the answer that came before it
    /// was sent does not count as progress for it.
    // On paused time: the ticks and the checks cannot trade places on a loaded machine.
    #[tokio::test(start_paused = true)]
    async fn a_command_sent_right_after_an_answer_fails_within_one_and_a_half_timeouts() {
        let timeout = Duration::from_millis(400);
        let health = Arc::new(Health::default());
        // Ticks at 0, 200, 400, ... ms from here.
        tokio::spawn(watch(Arc::downgrade(&health), timeout));
        sleep(Duration::from_millis(40)).await;
        // One command answered, and the next one sent, which nothing answers.
        health.started.fetch_add(1, Ordering::Relaxed);
        health.finished.fetch_add(1, Ordering::Relaxed);
        health.started.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();

        sleep_until(sent + timeout - Duration::from_millis(100)).await;
        assert!(
            !health.hung.load(Ordering::Relaxed),
            "declared hung before a timeout of silence"
        );
        // Declared at the tick at 600 ms, 560 ms after it was sent; checked 80 ms later.
        sleep_until(sent + timeout * 3 / 2 + Duration::from_millis(40)).await;
        assert!(
            health.hung.load(Ordering::Relaxed),
            "not declared hung within one and a half timeouts of silence"
        );
    }

    /// Callers that give up on every command before the store's timeout (a shorter
    /// request timeout) do not keep a silent connection looking alive: it is declared hung
    /// within one and a half timeouts, so the next call reconnects.
    // On paused time: the ticks and the checks cannot trade places on a loaded machine.
    #[tokio::test(start_paused = true)]
    async fn commands_their_callers_gave_up_on_do_not_hide_a_silent_connection() {
        let timeout = Duration::from_millis(400);
        let health = Arc::new(Health::default());
        tokio::spawn(watch(Arc::downgrade(&health), timeout));
        let silent = || std::future::pending::<RedisResult<()>>();
        let first = Instant::now();
        // A caller every 50 ms that gives up after 100 ms, as a request timeout would.
        while first.elapsed() < timeout * 3 / 2 + Duration::from_millis(100) {
            let gave_up =
                tokio::time::timeout(Duration::from_millis(100), health.track(silent())).await;
            assert!(gave_up.is_err() || health.hung.load(Ordering::Relaxed));
            sleep(Duration::from_millis(50)).await;
        }
        assert!(
            health.hung.load(Ordering::Relaxed),
            "a silent connection whose callers give up was never declared hung"
        );
        assert!(health.track(silent()).await.is_err());
    }

    /// Commands given up on, among others that are answered, do not make a connection
    /// that keeps answering look hung.
    #[tokio::test(start_paused = true)]
    async fn commands_given_up_on_do_not_make_an_answering_connection_hung() {
        let timeout = Duration::from_millis(200);
        let health = Arc::new(Health::default());
        tokio::spawn(watch(Arc::downgrade(&health), timeout));
        for _ in 0..20 {
            let silent = std::future::pending::<RedisResult<()>>();
            let _ = tokio::time::timeout(Duration::from_millis(10), health.track(silent)).await;
            health
                .track(async { Ok::<_, RedisError>(()) })
                .await
                .expect("answered");
            sleep(Duration::from_millis(60)).await;
            assert!(!health.hung.load(Ordering::Relaxed));
        }
    }

    /// A connection whose commands keep being answered, however slowly, is not hung.
    // On paused time: the ticks and the checks cannot trade places on a loaded machine.
    #[tokio::test(start_paused = true)]
    async fn a_slow_connection_that_answers_is_not_hung() {
        let timeout = Duration::from_millis(200);
        let health = Arc::new(Health::default());
        tokio::spawn(watch(Arc::downgrade(&health), timeout));
        health.started.fetch_add(2, Ordering::Relaxed);
        // An answer every 80 ms, while a command always waits.
        for _ in 0..10 {
            sleep(Duration::from_millis(80)).await;
            health.finished.fetch_add(1, Ordering::Relaxed);
            health.started.fetch_add(1, Ordering::Relaxed);
            assert!(!health.hung.load(Ordering::Relaxed));
        }
    }
}
