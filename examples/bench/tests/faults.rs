//! Faults on every backend, through the `bench` app as a user runs it.
//!
//! Each server backend gets a private server (`session_testkit::launcher`), killed with SIGKILL
//! and restarted on the same port and data directory, then frozen with SIGSTOP and
//! thawed, while clients keep sending requests. While the server is away every answer is
//! a 503 within the store's timeout and a margin, never a 500, a hang or a dropped
//! connection; once it is back, requests succeed again from the same app process; and
//! sessions acknowledged before the fault read back their exact values wherever the
//! server kept its data (PostgreSQL and MariaDB across a restart, every server across a
//! freeze).
//!
//! The embedded stores get a small tmpfs that fills up, and one that turns read-only: a
//! remount for files, and for SQLite, which keeps its database open for writing, an ext4
//! that turns read-only by itself on an error. Writes answer 503, what was stored reads
//! back unchanged, and writes succeed again once there is space, or the filesystem is
//! writable again (not for the ext4, which stays read-only until it is unmounted).
//!
//! The tests run one at a time (see [`one_at_a_time`]). The programs come from the
//! variables `cargo xtask test` sets; the filesystem tests need root, to mount.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

#[path = "faults/disk.rs"]
mod disk;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use disk::{require_root, Access, Ext4, Filler, MountNamespace, Tmpfs};
use session_testkit::launcher::backends::Backend;
use session_testkit::{Answer, App, Server};

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// The store timeout the app is configured with (`store_timeout_ms`).
const TIMEOUT: Duration = Duration::from_secs(1);

/// The longest an answer may take while the store is away: one and a half timeouts
/// (Redis's watchdog fails commands one to one and a half timeouts after they were sent;
/// the other stores fail a round trip within one, and a request to a store that is away
/// ends with its first round trip), and a margin for a small, busy machine. An answer
/// after two timeouts is over it.
const LIMIT: Duration = Duration::from_millis(1500 + 500);

/// How long clients send requests while a server is away.
const OUTAGE: Duration = Duration::from_secs(2);

/// Clients sending requests at once during an outage (the app has two workers).
const CLIENTS: usize = 4;

/// How long a store may take to be used again once its server is back.
const RECOVERY: Duration = Duration::from_secs(20);

/// Rounds of writes and reads on a filesystem in trouble.
const DISK_ROUNDS: usize = 3;

/// Serializes the tests of this file: the time limits mean nothing when several
/// servers, apps and clients share a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// Taken first by every test, for as long as it runs; a failed test does not stop the
/// others.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A session acknowledged with its counter's value.
struct Witness {
    cookie: String,
    value: i64,
}

/// Sessions created and incremented before a fault, whose values must survive it.
struct Witnesses(Vec<Witness>);

impl Witnesses {
    /// Four sessions, incremented one to four times, every answer a 200.
    fn create(app: &App, what: &str) -> Self {
        let witnesses = (1..=4)
            .map(|increments| {
                let cookie = new_session(app, what);
                for expected in 1..=increments {
                    let answer = app.get("/incr", Some(&cookie));
                    assert!(
                        answer.is(200) && answer.body == expected.to_string(),
                        "{what}: increment: {answer:?}"
                    );
                }
                Witness {
                    cookie,
                    value: increments,
                }
            })
            .collect();
        Self(witnesses)
    }

    /// Every session reads back its exact value.
    fn check(&self, app: &App, what: &str) {
        for witness in &self.0 {
            let answer = app.get("/read", Some(&witness.cookie));
            assert!(
                answer.is(200) && answer.body == witness.value.to_string(),
                "{what}: a session acknowledged at {} reads back as {answer:?}",
                witness.value
            );
        }
    }
}

/// A new session's cookie.
fn new_session(app: &App, what: &str) -> String {
    let answer = app.get("/new", None);
    assert!(answer.is(200), "{what}: /new: {answer:?}");
    answer
        .cookie
        .unwrap_or_else(|| panic!("{what}: /new set no cookie"))
}

/// Whether `answer` is a 503 within [`LIMIT`]; otherwise what is wrong with it.
fn refused_in_time(path: &str, answer: &Answer) -> Result<(), String> {
    if !answer.is(503) {
        return Err(format!(
            "{path}: {:?} after {:?}, not a 503",
            answer.status, answer.elapsed
        ));
    }
    if answer.elapsed > LIMIT {
        return Err(format!(
            "{path}: 503 after {:?}, over {LIMIT:?}",
            answer.elapsed
        ));
    }
    Ok(())
}

/// Sends requests from [`CLIENTS`] clients for [`OUTAGE`] while the server is away:
/// every answer must be a 503 within [`LIMIT`]. Returns the slowest answer's time.
fn away(app: &App, sessions: &[String], what: &str) -> Duration {
    let until = Instant::now() + OUTAGE;
    let answers = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (client, cookie) in sessions.iter().enumerate() {
            let answers = &answers;
            scope.spawn(move || {
                let mut n = client;
                while Instant::now() < until {
                    // A new session (a create), an increment (a load, then an update)
                    // and a read (a load).
                    let (path, cookie) = match n % 3 {
                        0 => ("/new", None),
                        1 => ("/incr", Some(cookie.as_str())),
                        _ => ("/read", Some(cookie.as_str())),
                    };
                    let answer = app.get(path, cookie);
                    answers.lock().unwrap().push((path, answer));
                    n += 1;
                }
            });
        }
    });
    let answers = answers.into_inner().unwrap();
    let failures: Vec<String> = answers
        .iter()
        .filter_map(|(path, answer)| refused_in_time(path, answer).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{what}: {} of {} answers wrong:\n{}",
        failures.len(),
        answers.len(),
        failures.join("\n")
    );
    assert!(answers.len() >= CLIENTS, "{what}: too few answers");
    let slowest = answers.iter().map(|(_, a)| a.elapsed).max().unwrap();
    eprintln!(
        "{what}: {} answers, all 503, slowest {slowest:?}",
        answers.len()
    );
    slowest
}

/// Waits until a new session can be stored again (every answer meanwhile a 503), then
/// checks that a few sessions work from start to end. Returns how long it took.
fn recovered(app: &App, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let answer = app.get("/new", None);
        if answer.is(200) {
            break;
        }
        assert!(answer.is(503), "{what}: while recovering: {answer:?}");
        assert!(
            started.elapsed() < RECOVERY,
            "{what}: still failing after {RECOVERY:?}: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    for _ in 0..3 {
        let cookie = new_session(app, what);
        for (path, expected) in [("/incr", "1"), ("/incr", "2"), ("/read", "2")] {
            let answer = app.get(path, Some(&cookie));
            assert!(
                answer.is(200) && answer.body == expected,
                "{what}: {path} after recovery: {answer:?}"
            );
        }
    }
    eprintln!("{what}: requests succeed again after {took:?}");
    took
}

/// New sessions for the clients of [`away`].
fn sessions(app: &App, what: &str) -> Vec<String> {
    (0..CLIENTS).map(|_| new_session(app, what)).collect()
}

/// The store URL of `server`, with the app's store timeout.
fn store_url(backend: Backend, server: &Server) -> String {
    let address = server.address();
    let base = match backend {
        Backend::Redis | Backend::Valkey => format!("redis://{address}"),
        Backend::Memcached => format!("memcache://{address}"),
        Backend::Mongodb => format!("mongodb://{address}/faults"),
        Backend::Postgres => format!("postgres://postgres@{address}/postgres"),
        Backend::Mariadb => format!("mysql://root@{address}/test"),
    };
    format!("{base}?store_timeout_ms={}", TIMEOUT.as_millis())
}

/// The bench app with two workers in front of `store_url`, run by `command`, logging to
/// `app.log` in `log_dir`.
fn start_app(command: std::process::Command, store_url: &str, log_dir: &std::path::Path) -> App {
    App::with_command(command)
        .workers(2)
        .log_dir(log_dir)
        .start(store_url)
}

/// The server backend's fault test: killed and restarted, then frozen and thawed.
fn outages(backend: Backend) {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let name = backend.name();
    let mut server = Server::start(backend.spec().unwrap()).unwrap();
    let mut app = start_app(
        std::process::Command::new(BENCH),
        &store_url(backend, &server),
        server.dir(),
    );

    let witnesses = Witnesses::create(&app, name);
    let traffic = sessions(&app, name);
    server.kill().unwrap();
    away(&app, &traffic, &format!("{name} killed"));
    server.restart().unwrap();
    recovered(&app, &format!("{name} restarted"));
    let witnesses = if backend.keeps_data() {
        witnesses.check(&app, &format!("{name} after its restart"));
        witnesses
    } else {
        // The server kept its sessions in memory: they went with it.
        Witnesses::create(&app, name)
    };

    let traffic = sessions(&app, name);
    server.freeze().unwrap();
    // A failure leaves the server frozen until it is dropped, which thaws and kills it.
    away(&app, &traffic, &format!("{name} frozen"));
    server.thaw().unwrap();
    recovered(&app, &format!("{name} thawed"));
    witnesses.check(&app, &format!("{name} after its thaw"));
    app.assert_healthy();
    eprintln!("{name}: fault test took {:?}", started.elapsed());
}

#[test]
fn redis_killed_restarted_frozen_and_thawed() {
    outages(Backend::Redis);
}

#[test]
fn memcached_killed_restarted_frozen_and_thawed() {
    outages(Backend::Memcached);
}

#[test]
fn mongodb_killed_restarted_frozen_and_thawed() {
    outages(Backend::Mongodb);
}

#[test]
fn postgres_killed_restarted_frozen_and_thawed() {
    outages(Backend::Postgres);
}

#[test]
fn mariadb_killed_restarted_frozen_and_thawed() {
    outages(Backend::Mariadb);
}

/// Increments and reads the witnesses, and creates sessions, while the filesystem is in
/// trouble: every write answers 503 in time, and every read the value last acknowledged.
fn disk_trouble(app: &App, witnesses: &Witnesses, what: &str) {
    let mut failures = Vec::new();
    let mut writes = 0;
    for _ in 0..DISK_ROUNDS {
        for witness in &witnesses.0 {
            writes += 1;
            let answer = app.get("/incr", Some(&witness.cookie));
            failures.extend(refused_in_time("/incr", &answer).err());
            let answer = app.get("/read", Some(&witness.cookie));
            if !(answer.is(200) && answer.body == witness.value.to_string()) {
                failures.push(format!(
                    "/read: {answer:?}, not the acknowledged {}",
                    witness.value
                ));
            }
        }
        writes += 1;
        let answer = app.get("/new", None);
        failures.extend(refused_in_time("/new", &answer).err());
    }
    assert!(
        failures.is_empty(),
        "{what}: wrong answers:\n{}",
        failures.join("\n")
    );
    eprintln!("{what}: {writes} writes refused with 503, reads unchanged");
}

#[test]
fn files_on_a_filesystem_that_fills_up_then_turns_read_only() {
    let _serial = one_at_a_time();
    require_root("files_on_a_filesystem_that_fills_up_then_turns_read_only");
    let what = "files";
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let namespace = MountNamespace::new();
    let disk = Tmpfs::mount(&namespace, &store, 512);
    // The store keeps its lock files open for writing, and Linux refuses to remount a
    // filesystem read-only while a file on it is open for writing: the lock files get a
    // filesystem of their own, so that the session files' can turn read-only.
    let _locks = Tmpfs::mount(&namespace, &store.join(".locks"), 1024);
    let bench = namespace.command(BENCH);
    let mut app = start_app(bench, &format!("file://{}", store.display()), dir.path());
    let witnesses = Witnesses::create(&app, what);

    let filler = Filler::fill(&namespace.path(&store.join(".filler")));
    disk_trouble(&app, &witnesses, "files, filesystem full");
    filler.remove();
    recovered(&app, "files, space freed");
    witnesses.check(&app, "files, space freed");

    disk.remount(Access::ReadOnly);
    disk_trouble(&app, &witnesses, "files, filesystem read-only");
    disk.remount(Access::Writable);
    recovered(&app, "files, writable again");
    witnesses.check(&app, "files, writable again");
    app.assert_healthy();
}

/// The SQLite store's URL for a database in `store`.
fn sqlite_url(store: &std::path::Path) -> String {
    format!(
        "sqlite://{}?store_timeout_ms={}",
        store.join("sessions.db").display(),
        TIMEOUT.as_millis()
    )
}

#[test]
fn sqlite_on_a_filesystem_that_fills_up() {
    let _serial = one_at_a_time();
    require_root("sqlite_on_a_filesystem_that_fills_up");
    let what = "sqlite";
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let namespace = MountNamespace::new();
    let _disk = Tmpfs::mount(&namespace, &store, 2048);
    let bench = namespace.command(BENCH);
    let mut app = start_app(bench, &sqlite_url(&store), dir.path());
    let witnesses = Witnesses::create(&app, what);

    let filler = Filler::fill(&namespace.path(&store.join("filler")));
    disk_trouble(&app, &witnesses, "sqlite, filesystem full");
    filler.remove();
    recovered(&app, "sqlite, space freed");
    witnesses.check(&app, "sqlite, space freed");
    app.assert_healthy();
}

/// SQLite keeps its database open for writing, so Linux refuses to remount the filesystem
/// read-only under it: an ext4 turns read-only by itself, on an error, as after a failing
/// disk. It stays so until it is unmounted, which cannot happen under an open database:
/// this test checks no recovery.
#[test]
fn sqlite_on_a_filesystem_that_turns_read_only() {
    let _serial = one_at_a_time();
    require_root("sqlite_on_a_filesystem_that_turns_read_only");
    let what = "sqlite";
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let namespace = MountNamespace::new();
    let disk = Ext4::mount(&namespace, &dir.path().join("ext4.img"), &store, 8);
    let bench = namespace.command(BENCH);
    let mut app = start_app(bench, &sqlite_url(&store), dir.path());
    let witnesses = Witnesses::create(&app, what);

    disk.fail();
    disk_trouble(&app, &witnesses, "sqlite, filesystem read-only");
    witnesses.check(&app, "sqlite, filesystem read-only");
    app.assert_healthy();
}
