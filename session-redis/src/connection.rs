//! One connection per store per thread, so each actix worker drives its own connection on
//! its own runtime: no request waits for another thread to move its bytes.
//!
//! # Why a watchdog and not a timeout per command
//! A single-server connection has no per-command response timeout, because a tokio timer
//! per command (registered in the timer wheel, then removed) costs the server measurable
//! CPU on every request (see `docs/performance.md`). Instead, a task wakes every half
//! timeout (a tick) and counts the answers the connection received; each command notes the
//! tick it started in. When nothing was answered for two ticks, a whole timeout of
//! silence, every command still waiting that started before that silence fails with a
//! timeout, at most one and a half timeouts after it was sent, and the connection is
//! dropped so the next call opens a new one. Answers that came before a command was sent
//! do not postpone its failure, and a command sent during the silence is not failed with
//! the older ones: it gets its own whole timeout. A server that is slow but answering is
//! not hung, where per-command timeouts would fail its commands one by one.
//!
//! A command whose caller gave up before its answer (a request timeout shorter than the
//! store's, an extractor beside the session that failed) is not an answer: callers that
//! always give up first cannot keep a dead connection in use. Its own answer cannot be
//! seen, so when such a command is followed by a whole timeout without any answer, the
//! connection, dead or merely idle, is no longer handed out, and the next call opens a new
//! one; commands already waiting on it keep their own timeouts. Cluster connections keep
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

/// Ticks, half a timeout apart, back to the reading that decides: a command started before
/// it and still waiting, with nothing answered since, has had at least one timeout of
/// silence, and was sent at most three half timeouts ago.
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

    /// Whether the watchdog retired this connection.
    fn is_retired(&self) -> bool {
        match self {
            Self::Single(_, health) => health.retired.load(Ordering::Relaxed),
            Self::Cluster(_) => false,
        }
    }
}

/// What the watchdog of one connection sees.
pub(crate) struct Health {
    /// The watchdog's ticks so far: a command notes the tick it started in.
    ticks: AtomicU64,
    /// Commands answered so far; not those whose callers gave up first.
    answered: AtomicU64,
    /// Commands that started in a tick before this one and are still waiting fail: they
    /// have waited a whole timeout with nothing answered.
    fail_before: AtomicU64,
    /// The earliest tick a command started in whose caller gave up before its answer,
    /// with no answer since; [`NONE`] if there is none.
    abandoned_in: AtomicU64,
    /// Commands timed out on it: it is dead, and every new command fails at once.
    dead: AtomicBool,
    /// It is not to be handed out again: dead, or silent after commands given up on.
    retired: AtomicBool,
    /// Wakes the waiting commands to look at `fail_before`.
    silence: Notify,
}

/// No tick: in `abandoned_in`, no command given up on since the last answer.
const NONE: u64 = u64::MAX;

impl Default for Health {
    fn default() -> Self {
        Self {
            ticks: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            fail_before: AtomicU64::new(0),
            abandoned_in: AtomicU64::new(NONE),
            dead: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            silence: Notify::new(),
        }
    }
}

impl Health {
    /// Runs one command, failed with a timeout if it waits a whole timeout with nothing
    /// answered on the connection.
    async fn track<T>(&self, command: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
        // Created before the check, so a silence declared in between still wakes it.
        let mut silence = pin!(self.silence.notified());
        if self.dead.load(Ordering::Relaxed) {
            return Err(hung());
        }
        let mut pending = Pending {
            health: self,
            tick: self.ticks.load(Ordering::Relaxed),
        };
        let mut command = pin!(command);
        poll_fn(|cx| {
            if let Poll::Ready(result) = command.as_mut().poll(cx) {
                pending.answered();
                return Poll::Ready(result);
            }
            while silence.as_mut().poll(cx).is_ready() {
                // Armed for the next silence before this one is looked at, so that one
                // declared in between still wakes it.
                silence.set(self.silence.notified());
                if pending.tick < self.fail_before.load(Ordering::Relaxed) {
                    pending.timed_out();
                    return Poll::Ready(Err(hung()));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// A command on its way; dropped before an answer, it was given up on.
struct Pending<'a> {
    health: &'a Health,
    /// The tick it started in; [`NONE`] once it has ended.
    tick: u64,
}

impl Pending<'_> {
    fn answered(&mut self) {
        self.tick = NONE;
        let health = self.health;
        health.answered.fetch_add(1, Ordering::Relaxed);
        // An answer shows the connection alive after every command given up on so far.
        if health.abandoned_in.load(Ordering::Relaxed) != NONE {
            health.abandoned_in.store(NONE, Ordering::Relaxed);
        }
    }

    fn timed_out(&mut self) {
        self.tick = NONE;
        self.health.dead.store(true, Ordering::Relaxed);
        self.health.retired.store(true, Ordering::Relaxed);
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.tick != NONE {
            self.health
                .abandoned_in
                .fetch_min(self.tick, Ordering::Relaxed);
        }
    }
}

fn hung() -> RedisError {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "Redis did not answer within the timeout",
    )
    .into()
}

/// Every half timeout, counts the answers; after [`STALLED_TICKS`] ticks without one,
/// fails the commands that were waiting before them, and retires the connection if a
/// command given up on was among them. Ends with the connection.
async fn watch(health: Weak<Health>, timeout: Duration) {
    let mut ticks = tokio::time::interval((timeout / 2).max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The answers counted at the last ticks, and when, the oldest first.
    let mut history = [(0u64, Instant::now()); STALLED_TICKS];
    for tick in 0u64.. {
        ticks.tick().await;
        let Some(health) = health.upgrade() else {
            return;
        };
        let mut answered = health.answered.load(Ordering::Relaxed);
        let (answered_then, read_at) = history[0];
        // Commands noted `tick - STALLED_TICKS` or earlier started before that reading.
        let waited_from = tick.checked_sub(STALLED_TICKS as u64);
        if let (Some(waited_from), true) = (waited_from, answered == answered_then) {
            // A tick is timed from when the last one was due, not from when its count was
            // read: wait out the rest of a whole timeout since then, and look again.
            tokio::time::sleep_until(read_at + timeout).await;
            answered = health.answered.load(Ordering::Relaxed);
            if answered == answered_then {
                if health.abandoned_in.load(Ordering::Relaxed) <= waited_from {
                    health.retired.store(true, Ordering::Relaxed);
                }
                health.fail_before.store(waited_from + 1, Ordering::Relaxed);
                health.silence.notify_waiters();
            }
        }
        history.rotate_left(1);
        history[STALLED_TICKS - 1] = (answered, Instant::now());
        health.ticks.store(tick + 1, Ordering::Relaxed);
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

/// This thread's connection for store `store`, if it has one that is not retired and was
/// opened on the current runtime.
pub(crate) fn cached(store: u64) -> Option<Connection> {
    let runtime = current_runtime();
    CONNECTIONS.with_borrow_mut(|connections| {
        let index = connections.iter().position(|(id, ..)| *id == store)?;
        let (_, opened_on, connection) = &connections[index];
        if connection.is_retired() || *opened_on != runtime {
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
    use std::future::pending;
    use tokio::time::{sleep, sleep_until, Instant};

    // Every test runs on paused time: the ticks and the checks cannot trade places on a
    // loaded machine.

    /// A watched connection's health, its watchdog ticking from now.
    fn watched(timeout: Duration) -> Arc<Health> {
        let health = Arc::new(Health::default());
        tokio::spawn(watch(Arc::downgrade(&health), timeout));
        health
    }

    /// A command the server answers after `after`.
    async fn answered_after(after: Duration) -> RedisResult<()> {
        sleep(after).await;
        Ok(())
    }

    /// Sends a command the server never answers, and gives up on it after `after`.
    async fn give_up_on_one(health: &Health, after: Duration) {
        let silent = pending::<RedisResult<()>>();
        let gave_up = tokio::time::timeout(after, health.track(silent)).await;
        assert!(gave_up.is_err(), "a silent command answered");
    }

    /// Starts `command` on `health` in a task of its own.
    fn spawn_tracked<F>(
        health: &Arc<Health>,
        command: F,
    ) -> tokio::task::JoinHandle<RedisResult<()>>
    where
        F: Future<Output = RedisResult<()>> + Send + 'static,
    {
        let health = Arc::clone(health);
        tokio::spawn(async move { health.track(command).await })
    }

    fn is_retired(health: &Health) -> bool {
        health.retired.load(Ordering::Relaxed)
    }

    /// A command sent just after an answer arrived, on a connection that then goes
    /// silent, fails after one to one and a half timeouts: the answer that came before it
    /// was sent does not count as progress for it.
    #[tokio::test(start_paused = true)]
    async fn a_command_sent_right_after_an_answer_fails_within_one_and_a_half_timeouts() {
        let timeout = Duration::from_millis(400);
        // Ticks every half timeout from here.
        let health = watched(timeout);
        sleep(Duration::from_millis(40)).await;
        health.track(answered_after(Duration::ZERO)).await.unwrap();
        let sent = Instant::now();
        let waiting = spawn_tracked(&health, pending());

        sleep_until(sent + timeout - Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "failed before a timeout of silence");
        // Failed at the first tick after a whole timeout of silence since it was sent.
        sleep_until(sent + timeout * 3 / 2 + Duration::from_millis(40)).await;
        assert!(
            waiting.is_finished(),
            "not failed within one and a half timeouts"
        );
        assert!(waiting.await.unwrap().is_err());
        assert!(is_retired(&health));
        assert!(
            health.track(answered_after(Duration::ZERO)).await.is_err(),
            "a new command on the dead connection did not fail at once"
        );
    }

    /// A connection whose commands keep being answered, however slowly, is not hung, and
    /// a command that waits meanwhile waits on.
    #[tokio::test(start_paused = true)]
    async fn a_slow_connection_that_answers_is_not_hung() {
        let timeout = Duration::from_millis(200);
        let health = watched(timeout);
        let waiting = spawn_tracked(&health, pending());
        // Answers closer together than a timeout, while that command waits.
        for _ in 0..10 {
            health
                .track(answered_after(Duration::from_millis(80)))
                .await
                .unwrap();
            assert!(!waiting.is_finished() && !is_retired(&health));
        }
    }

    /// Callers that give up on every command before the store's timeout (a shorter
    /// request timeout) do not keep a silent connection in use: it is retired within one
    /// and a half timeouts, and a caller that waits fails in time.
    #[tokio::test(start_paused = true)]
    async fn commands_their_callers_gave_up_on_do_not_hide_a_silent_connection() {
        let timeout = Duration::from_millis(400);
        let health = watched(timeout);
        let impatient = {
            let health = Arc::clone(&health);
            tokio::spawn(async move {
                // Callers that give up long before the store's timeout, one after another.
                loop {
                    let gave_up = tokio::time::timeout(
                        Duration::from_millis(100),
                        health.track(pending::<RedisResult<()>>()),
                    )
                    .await;
                    assert!(gave_up.is_err() || is_retired(&health));
                    sleep(Duration::from_millis(50)).await;
                }
            })
        };
        sleep(Duration::from_millis(10)).await;
        let first = Instant::now();
        let patient = spawn_tracked(&health, pending());
        sleep_until(first + timeout * 3 / 2 + Duration::from_millis(10)).await;
        assert!(
            is_retired(&health),
            "a silent connection whose callers give up was not retired"
        );
        assert!(
            patient.is_finished(),
            "a waiting command was not failed in time"
        );
        assert!(patient.await.unwrap().is_err());
        impatient.abort();
    }

    /// Commands given up on, among others that are answered, do not make a connection
    /// that keeps answering look hung.
    #[tokio::test(start_paused = true)]
    async fn commands_given_up_on_do_not_make_an_answering_connection_hung() {
        let timeout = Duration::from_millis(200);
        let health = watched(timeout);
        for _ in 0..20 {
            give_up_on_one(&health, Duration::from_millis(10)).await;
            health.track(answered_after(Duration::ZERO)).await.unwrap();
            sleep(Duration::from_millis(60)).await;
            assert!(!is_retired(&health));
        }
    }

    /// A command given up on, then answers, then a quiet spell: a command sent after it
    /// gets its own whole timeout, however the ticks fall.
    #[tokio::test(start_paused = true)]
    async fn a_command_given_up_on_long_ago_does_not_fail_a_new_one() {
        let timeout = Duration::from_millis(400);
        let health = watched(timeout);
        sleep(Duration::from_millis(10)).await;
        let _ = tokio::time::timeout(
            Duration::from_millis(5),
            health.track(answered_after(Duration::from_millis(20))),
        )
        .await;
        sleep(Duration::from_millis(290)).await;
        health.track(answered_after(Duration::ZERO)).await.unwrap();
        // Sent at shifting phases against the ticks, each answered well within a timeout.
        for step in 0..40u32 {
            sleep(Duration::from_millis(10 * u64::from(step % 7) + 390)).await;
            let slow = timeout * 3 / 5;
            let sent = Instant::now();
            let answer = health.track(answered_after(slow)).await;
            assert!(answer.is_ok(), "failed after {:?}", sent.elapsed());
        }
    }

    /// Idle after a command given up on, a connection is retired (its answer, if it came,
    /// could not be seen), but a command in flight at that moment keeps its own timeout.
    #[tokio::test(start_paused = true)]
    async fn idle_after_a_command_given_up_on_retires_without_failing_younger_ones() {
        let timeout = Duration::from_millis(400);
        // Ticks every half timeout from here.
        let health = watched(timeout);
        let started = Instant::now();
        give_up_on_one(&health, Duration::from_millis(5)).await;
        // In flight through the retirement, a timeout in, and through the silence declared
        // half a timeout later.
        sleep_until(started + Duration::from_millis(350)).await;
        let young = spawn_tracked(&health, answered_after(timeout * 9 / 10));
        sleep_until(started + Duration::from_millis(410)).await;
        assert!(
            is_retired(&health),
            "not retired after a timeout of silence"
        );
        assert!(
            young.await.unwrap().is_ok(),
            "a command younger than the silence failed"
        );
    }

    /// An answer after a command given up on shows the connection alive: quiet spells
    /// after it retire nothing.
    #[tokio::test(start_paused = true)]
    async fn an_answer_after_a_command_given_up_on_keeps_the_connection() {
        let timeout = Duration::from_millis(400);
        let health = watched(timeout);
        sleep(Duration::from_millis(10)).await;
        give_up_on_one(&health, Duration::from_millis(5)).await;
        health
            .track(answered_after(timeout * 9 / 10))
            .await
            .unwrap();
        sleep(timeout * 5).await;
        assert!(
            !is_retired(&health),
            "retired although an answer came after"
        );
    }

    /// A command given up on during a quiet spell retires the connection only once a whole
    /// timeout has passed without an answer after it was sent, not at the next tick.
    #[tokio::test(start_paused = true)]
    async fn a_command_given_up_on_retires_only_after_a_whole_timeout() {
        let timeout = Duration::from_millis(400);
        let health = watched(timeout);
        sleep(Duration::from_millis(1010)).await;
        let sent = Instant::now();
        give_up_on_one(&health, Duration::from_millis(5)).await;
        sleep_until(sent + timeout - Duration::from_millis(20)).await;
        assert!(!is_retired(&health), "retired before a timeout had passed");
        sleep_until(sent + timeout * 3 / 2 + Duration::from_millis(10)).await;
        assert!(
            is_retired(&health),
            "not retired within one and a half timeouts"
        );
    }
}
