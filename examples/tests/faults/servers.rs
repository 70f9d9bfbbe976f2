//! Private servers that the fault tests start, kill, freeze and restart: one per test, on a
//! free loopback port, in a scratch directory, never a server anyone else uses.
//!
//! The programs come from the environment, where `cargo xtask test` (or `cargo xtask
//! services up`) puts them, installed first where a package has them.
//!
//! Every process a test starts dies with the test, even one killed by SIGKILL, which runs
//! no `Drop`: see [`dying_with_test`].

use std::collections::HashMap;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to listen after it is started.
const START: Duration = Duration::from_secs(60);

/// The server backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Redis,
    Memcached,
    /// mongoeco's wire server, from the Python environment xtask prepares.
    Mongodb,
    Postgres,
    Mariadb,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Memcached => "memcached",
            Self::Mongodb => "mongodb",
            Self::Postgres => "postgres",
            Self::Mariadb => "mariadb",
        }
    }

    /// Whether the server keeps its data across a kill and a restart: these test servers
    /// of Redis, memcached and mongoeco keep theirs in memory only.
    pub(crate) fn keeps_data(self) -> bool {
        matches!(self, Self::Postgres | Self::Mariadb)
    }
}

/// The path in the variable `var`, which xtask sets; unset or missing is a failure that
/// says how to get it.
pub(crate) fn program(var: &str) -> PathBuf {
    let Some(value) = std::env::var_os(var) else {
        panic!(
            "{var} is not set: run `cargo xtask test` (or export what `cargo xtask services up` prints)"
        )
    };
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{var}={} does not exist: run `cargo xtask test`, which installs it",
        path.display()
    );
    path
}

/// Whether this process runs as root, from `/proc/self/status` (effective uid).
pub(crate) fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// A user's uid and gid, from `/etc/passwd`.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [user, _, uid, gid, ..] if *user == name => {
                Some((uid.parse().ok()?, gid.parse().ok()?))
            }
            _ => None,
        }
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// One private server, stopped (thawed first, if frozen) when dropped.
pub(crate) struct Server {
    backend: Backend,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The uid and gid it runs as, when not this process's (PostgreSQL refuses root).
    user: Option<(u32, u32)>,
}

impl Server {
    /// Sets up a data directory if the backend needs one, starts the server and waits
    /// until it listens.
    pub(crate) fn start(backend: Backend) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("faults-{}-", backend.name()))
            .tempdir()
            .expect("a scratch directory");
        let mut server = Self {
            backend,
            port: free_port(),
            dir,
            child: None,
            user: None,
        };
        server.set_up();
        server.restart();
        server
    }

    /// The store URL of this server, with the app's store timeout.
    pub(crate) fn url(&self, timeout: Duration) -> String {
        let port = self.port;
        let base = match self.backend {
            Backend::Redis => format!("redis://127.0.0.1:{port}"),
            Backend::Memcached => format!("memcache://127.0.0.1:{port}"),
            Backend::Mongodb => format!("mongodb://127.0.0.1:{port}/faults"),
            Backend::Postgres => format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Backend::Mariadb => format!("mysql://root@127.0.0.1:{port}/test"),
        };
        format!("{base}?store_timeout_ms={}", timeout.as_millis())
    }

    /// The scratch directory, where the server's log is.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What a server needs before its first start: a database cluster for PostgreSQL
    /// and MariaDB.
    fn set_up(&mut self) {
        match self.backend {
            Backend::Postgres => {
                if is_root() {
                    let ids = user_ids("postgres").expect(
                        "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as",
                    );
                    std::os::unix::fs::chown(self.dir.path(), Some(ids.0), Some(ids.1))
                        .expect("chown the scratch directory");
                    self.user = Some(ids);
                }
                let bin = program("SESSION_TEST_POSTGRES_BIN_DIR");
                let mut initdb = Command::new(bin.join("initdb"));
                initdb
                    .arg("-D")
                    .arg(self.data())
                    .args(["-U", "postgres", "--auth=trust", "--no-sync"])
                    .args(["-E", "UTF8", "--locale=C"]);
                self.run_once(initdb, "initdb");
            }
            Backend::Mariadb => {
                let mut install = Command::new(program("SESSION_TEST_MARIADB_INSTALL_DB_BIN"));
                install
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", self.data().display()))
                    .args([
                        "--auth-root-authentication-method=normal",
                        "--skip-name-resolve",
                    ])
                    .args(MARIADB_SIZES);
                if is_root() {
                    install.arg("--user=root");
                }
                self.run_once(install, "mariadb-install-db");
            }
            Backend::Redis | Backend::Memcached | Backend::Mongodb => {}
        }
    }

    /// Runs a set-up command to completion, as the server's user; its output goes to a
    /// log in the scratch directory, named in the failure.
    fn run_once(&self, command: Command, what: &str) {
        let log = self.dir.path().join(format!("{what}.log"));
        let file = File::create(&log).expect("a log file");
        let status = self
            .guarded(&command)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a log file"))
            .stderr(file)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        assert!(
            status.success(),
            "{what} failed ({status}); see {}",
            log.display()
        );
    }

    fn command(&self) -> Command {
        let port = self.port.to_string();
        let command = match self.backend {
            Backend::Redis => {
                let mut command = Command::new(program("SESSION_TEST_REDIS_SERVER_BIN"));
                command
                    .args(["--bind", "127.0.0.1", "--port", &port])
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                    .arg("--dir")
                    .arg(self.dir.path());
                command
            }
            Backend::Memcached => {
                let mut command = Command::new(program("SESSION_TEST_MEMCACHED_BIN"));
                command.args(["-u", "root", "-l", "127.0.0.1", "-p", &port, "-m", "64"]);
                command
            }
            Backend::Mongodb => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("services")
                    .join("mongoeco_server.py");
                let mut command = Command::new(program("SESSION_TEST_MONGOECO_PYTHON"));
                command.arg(script).args(["--port", &port]);
                command
            }
            Backend::Postgres => {
                let mut command =
                    Command::new(program("SESSION_TEST_POSTGRES_BIN_DIR").join("postgres"));
                command
                    .arg("-D")
                    .arg(self.data())
                    .args(["-p", &port])
                    .args(["-c", "listen_addresses=127.0.0.1"])
                    .args(["-c", "unix_socket_directories="])
                    .args(["-c", "shared_buffers=16MB"]);
                command
            }
            Backend::Mariadb => {
                let mut command = Command::new(program("SESSION_TEST_MARIADBD_BIN"));
                let dir = self.dir.path().display();
                command
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", self.data().display()))
                    .arg(format!("--port={port}"))
                    .arg("--bind-address=127.0.0.1")
                    .arg(format!("--socket={dir}/mysqld.sock"))
                    .arg(format!("--pid-file={dir}/mysqld.pid"))
                    .args(["--skip-log-bin", "--skip-name-resolve"])
                    .args(MARIADB_SIZES);
                if is_root() {
                    command.arg("--user=root");
                }
                command
            }
        };
        self.guarded(&command)
    }

    /// `command` as a process that runs as the server's user, in the scratch directory,
    /// and dies with the test, with every process it starts.
    ///
    /// As root, it runs as the first process of a PID namespace of its own, under
    /// `unshare --kill-child`, which [`dying_with_test`] kills: the kernel then kills
    /// every process of the namespace, stopped or not, such as PostgreSQL's backends,
    /// which are in sessions of their own and stay stopped forever if the test is killed
    /// while they are frozen. The user switch is `setpriv`'s, which sets the death signal
    /// again after it, since a change of user clears it.
    fn guarded(&self, command: &Command) -> Command {
        let mut guarded = if is_root() {
            let mut unshare = Command::new("unshare");
            unshare
                .args(["--pid", "--fork", "--kill-child=KILL", "--", "setpriv"])
                .args(["--pdeathsig", "KILL"]);
            if let Some((uid, gid)) = self.user {
                unshare
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups");
            }
            unshare
                .arg("--")
                .arg(command.get_program())
                .args(command.get_args());
            dying_with_test(&unshare)
        } else {
            dying_with_test(command)
        };
        guarded.current_dir(self.dir.path());
        guarded
    }

    /// Starts the server (again) on its port, with its data directory, and waits until
    /// it listens.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.backend.name());
        let log_path = self.dir.path().join("server.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("a server log");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a server log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.backend.name()));
        self.child = Some(child);
        let deadline = Instant::now() + START;
        while !listening(self.port) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited ({status}); see {}",
                    self.backend.name(),
                    log_path.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on port {} within {START:?}; see {}",
                self.backend.name(),
                self.port,
                log_path.display()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The server's process (the wrappers of [`Self::guarded`]) and every process under
    /// it (PostgreSQL's backends are processes of their own, in sessions of their own).
    fn processes(&self) -> Vec<u32> {
        let Some(root) = self.child.as_ref().map(Child::id) else {
            return Vec::new();
        };
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
        let mut all = vec![root];
        let mut next = 0;
        while let Some(&pid) = all.get(next) {
            all.extend(children.get(&pid).into_iter().flatten().copied());
            next += 1;
        }
        all
    }

    /// Kills the server and all its processes with SIGKILL, as a crash or the OOM killer
    /// does, and waits until its port is closed.
    pub(crate) fn kill(&mut self) {
        if let Err(error) = self.try_kill() {
            panic!("{error}");
        }
    }

    /// [`Self::kill`], saying what went wrong rather than panicking, for `Drop`, which
    /// may run during a panic, where a second one aborts the process.
    fn try_kill(&mut self) -> Result<(), String> {
        let Some(root) = self.child.as_ref().map(Child::id) else {
            return Ok(());
        };
        // Stopped first, so that it starts no process between the listing and the kill.
        signal("STOP", &[root]);
        signal("KILL", &self.processes());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while listening(self.port) {
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} still listens on port {} after SIGKILL",
                    self.backend.name(),
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Freezes every process of the server with SIGSTOP: connections stay open and
    /// nothing answers, as with a server that hangs.
    pub(crate) fn freeze(&self) {
        let Some(root) = self.child.as_ref().map(Child::id) else {
            panic!("{} is not running", self.backend.name());
        };
        signal("STOP", &[root]);
        signal("STOP", &self.processes());
        let state = fs::read_to_string(format!("/proc/{root}/stat")).unwrap_or_default();
        let state = state
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        assert_eq!(state, Some("T"), "{} did not stop", self.backend.name());
    }

    /// Lets a frozen server run again (SIGCONT).
    pub(crate) fn thaw(&self) {
        signal("CONT", &self.processes());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.thaw();
        if let Err(error) = self.try_kill() {
            eprintln!("stopping a test server: {error}");
        }
    }
}

/// `command` (program, arguments, environment and directory) run under `setpriv
/// --pdeathsig KILL`, so that the kernel kills it when the thread that started it ends,
/// which a test killed by SIGKILL or aborted does without running any `Drop`. The
/// workspace forbids unsafe code, which setting the death signal in `pre_exec` needs.
///
/// The death signal comes with the end of the starting *thread*: whatever a test starts
/// is owned by the test's own thread, and stopped before that thread ends.
pub(crate) fn dying_with_test(command: &Command) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args(["--pdeathsig", "KILL", "--"])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// The same small InnoDB for `mariadb-install-db` and `mariadbd`.
const MARIADB_SIZES: [&str; 2] = ["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"];

/// Sends `signal` to `pids` with `kill(1)`; a process that has just exited is no error.
fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}
