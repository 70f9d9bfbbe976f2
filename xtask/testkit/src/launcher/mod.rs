//! The one way tests and xtask run a server process: on a free loopback port (or a chosen
//! one), in a scratch directory, started, killed, frozen, thawed and restarted on the same
//! port and data, and, unless detached, dying with the test.
//!
//! ```no_run
//! use session_testkit::launcher::{backends, Server};
//!
//! let spec = backends::redis("redis-server".into());
//! let mut server = Server::start(spec).unwrap();
//! server.freeze().unwrap(); // connections stay open, nothing answers
//! server.thaw().unwrap();
//! server.kill().unwrap(); // SIGKILL, as a crash does
//! server.restart().unwrap(); // same port, same directory
//! ```
//!
//! Every process a test starts dies with the test, even one killed by SIGKILL, which runs
//! no `Drop`: see [`dying_with_test`]. As root, a server runs as the first process of a PID
//! namespace of its own, under `unshare --kill-child`: the kernel then kills every process
//! of the namespace, stopped or not, such as PostgreSQL's backends, which are in sessions
//! of their own and would stay stopped forever if the test were killed while they are
//! frozen. The user switch that PostgreSQL needs is `setpriv`'s, which sets the death
//! signal again after it, since a change of user clears it.

pub mod backends;
mod process;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use process::{dying_with_test, free_port, is_root, listening};
use process::{signal, state, tree, user_ids, wrapped_in};

/// Why a server could not be started, stopped or signalled; its `Debug` is the message,
/// so that a test's `unwrap` reads well.
pub struct Error(String);

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.0
    }
}

/// How long a server may take to listen after it is started, by default.
const START: Duration = Duration::from_secs(60);

/// How long a killed server may keep its port.
const STOP: Duration = Duration::from_secs(10);

/// What to run: a program and its arguments, in which `{port}` and `{dir}` stand for the
/// port and the scratch directory, with the set-up steps it needs before its first start.
#[derive(Clone, Debug)]
pub struct Spec {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    set_up: Vec<Step>,
    user: Option<String>,
    port: Option<u16>,
    scratch: Option<PathBuf>,
    detached: bool,
    start_timeout: Duration,
}

/// A command run to completion before the server's first start (`initdb`, ...).
#[derive(Clone, Debug)]
struct Step {
    name: String,
    program: PathBuf,
    args: Vec<String>,
}

impl Spec {
    /// `program`, called `name` in messages, with no arguments yet.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            set_up: Vec::new(),
            user: None,
            port: None,
            scratch: None,
            detached: false,
            start_timeout: START,
        }
    }

    /// Adds arguments; `{port}` and `{dir}` in them are replaced when the server starts.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs `program` with `args` (placeholders as in [`Self::args`]) to completion before
    /// the first start, logging to `<name>.log` in the scratch directory.
    pub fn set_up<I, S>(mut self, name: &str, program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set_up.push(Step {
            name: name.to_owned(),
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// When this process is root, runs the server (and its set-up) as `user`, which owns
    /// the scratch directory: PostgreSQL refuses to run as root.
    pub fn run_as(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// Listens on `port` rather than on a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Uses `dir` (emptied first, kept afterwards) rather than a temporary directory that
    /// goes with the server.
    pub fn scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch = Some(dir.into());
        self
    }

    /// Lets the server outlive the process that started it (xtask's shared services): no
    /// death signal, no PID namespace.
    pub fn detached(mut self) -> Self {
        self.detached = true;
        self
    }

    /// How long the server may take to listen.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// The name messages give the server.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A directory for one server: a temporary one removed with it, or a given one kept.
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
    remove: bool,
}

impl Scratch {
    /// A new, empty directory under the system's temporary directory.
    pub(crate) fn temporary(prefix: &str) -> io::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("session-testkit-{prefix}-{}-{n}", std::process::id());
            let path = std::env::temp_dir().join(name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path, remove: true }),
                // Left by an earlier process with the same id.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `path`, emptied.
    fn at(path: PathBuf) -> io::Result<Self> {
        match fs::remove_dir_all(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(&path)?;
        Ok(Self {
            path,
            remove: false,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.remove {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A server process of one's own, stopped (thawed first, if frozen) when dropped.
#[derive(Debug)]
pub struct Server {
    spec: Spec,
    port: u16,
    dir: Scratch,
    child: Option<Child>,
    /// The uid and gid it runs as, when not this process's.
    user: Option<(u32, u32)>,
}

impl Server {
    /// Sets up the scratch directory, runs the set-up steps, starts the server and waits
    /// until it listens.
    pub fn start(spec: Spec) -> Result<Self, Error> {
        let port = match spec.port {
            Some(port) => port,
            None => free_port().map_err(|e| Error::new(format!("no free port: {e}")))?,
        };
        let dir = match &spec.scratch {
            Some(dir) => Scratch::at(dir.clone()),
            None => Scratch::temporary(&spec.name),
        }
        .map_err(|e| Error::new(format!("no scratch directory for {}: {e}", spec.name)))?;
        let mut server = Self {
            spec,
            port,
            dir,
            child: None,
            user: None,
        };
        if let Some(user) = server.spec.user.clone().filter(|_| is_root()) {
            let ids = user_ids(&user).ok_or_else(|| {
                Error::new(format!(
                    "{} refuses to run as root, and there is no `{user}` user to run it as",
                    server.spec.name
                ))
            })?;
            std::os::unix::fs::chown(server.dir.path(), Some(ids.0), Some(ids.1))
                .map_err(|e| Error::new(format!("chown the scratch directory: {e}")))?;
            server.user = Some(ids);
        }
        for step in server.spec.set_up.clone() {
            server.run_once(&step)?;
        }
        server.restart()?;
        Ok(server)
    }

    /// The port it listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The scratch directory, where its data and `server.log` are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The id of the process it was started as (a wrapper's, under a PID namespace).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The name of its [`Spec`].
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Starts the server (again, killing it first if it runs) on its port, with its data
    /// directory, and waits until it listens.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill()?;
        let name = self.spec.name.clone();
        let log_path = self.dir.path().join("server.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::new(format!("cannot open {}: {e}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::new(format!("cannot open {}: {e}", log_path.display())))?;
        let child = self
            .guarded(&self.spec.program, &self.spec.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                Error::new(format!(
                    "cannot run {} (install it, or run `cargo xtask test`): {e}",
                    self.spec.program.display()
                ))
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + self.spec.start_timeout;
        while !listening(self.port) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(Error::new(format!(
                    "{name} exited ({status}); {}",
                    log_tail(&log_path)
                )));
            }
            if Instant::now() >= deadline {
                let _ = self.kill();
                return Err(Error::new(format!(
                    "{name} did not listen on port {} within {:?}; {}",
                    self.port,
                    self.spec.start_timeout,
                    log_tail(&log_path)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the server and all its processes with SIGKILL, as a crash or the OOM killer
    /// does, and waits until its port is closed; nothing to do if it is not running.
    pub fn kill(&mut self) -> Result<(), Error> {
        let Some(root) = self.pid() else {
            return Ok(());
        };
        // Stopped first, so that it starts no process between the listing and the kill.
        signal("STOP", &[root]);
        signal("KILL", &tree(root));
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let deadline = Instant::now() + STOP;
        while listening(self.port) {
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "{} still listens on port {} after SIGKILL",
                    self.spec.name, self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Freezes every process of the server with SIGSTOP: connections stay open and
    /// nothing answers, as with a server that hangs.
    pub fn freeze(&self) -> Result<(), Error> {
        let root = self.running()?;
        signal("STOP", &[root]);
        signal("STOP", &tree(root));
        let deadline = Instant::now() + Duration::from_secs(1);
        while state(root).as_deref() != Some("T") {
            if Instant::now() >= deadline {
                return Err(Error::new(format!("{} did not stop", self.spec.name)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) -> Result<(), Error> {
        signal("CONT", &tree(self.running()?));
        Ok(())
    }

    /// Leaves the server running after this value is gone, and returns its process id:
    /// for a [`Spec::detached`] server that another command stops later.
    pub fn detach(mut self) -> Option<u32> {
        self.dir.remove = false;
        self.child.take().map(|child| child.id())
    }

    fn running(&self) -> Result<u32, Error> {
        self.pid()
            .ok_or_else(|| Error::new(format!("{} is not running", self.spec.name)))
    }

    /// The arguments with `{port}` and `{dir}` filled in.
    fn expand(&self, args: &[String]) -> Vec<String> {
        let port = self.port.to_string();
        let dir = self.dir.path().display().to_string();
        args.iter()
            .map(|arg| arg.replace("{port}", &port).replace("{dir}", &dir))
            .collect()
    }

    /// Runs a set-up step to completion, as the server's user; its output goes to a log
    /// in the scratch directory, named in the failure.
    fn run_once(&self, step: &Step) -> Result<(), Error> {
        let log = self.dir.path().join(format!("{}.log", step.name));
        let file = File::create(&log)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", log.display())))?;
        let file_err = file
            .try_clone()
            .map_err(|e| Error::new(format!("cannot open {}: {e}", log.display())))?;
        let status = self
            .guarded(&step.program, &step.args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file_err)
            .status()
            .map_err(|e| Error::new(format!("cannot run {}: {e}", step.name)))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(format!(
                "{} failed ({status}); {}",
                step.name,
                log_tail(&log)
            )))
        }
    }

    /// `program` with `args` as a process that runs as the server's user, in the scratch
    /// directory, and, unless detached, dies with the test, with every process it starts.
    fn guarded(&self, program: &Path, args: &[String]) -> Command {
        let mut setpriv = Command::new("setpriv");
        if !self.spec.detached {
            setpriv.args(["--pdeathsig", "KILL"]);
        }
        if let Some((uid, gid)) = self.user {
            setpriv
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups");
        }
        setpriv.arg("--").arg(program).args(self.expand(args));
        let mut guarded = if self.spec.detached && self.user.is_none() {
            let mut plain = Command::new(program);
            plain.args(self.expand(args));
            plain
        } else if self.spec.detached {
            setpriv
        } else if is_root() {
            let mut unshare = Command::new("unshare");
            unshare.args(["--pid", "--fork", "--kill-child=KILL", "--"]);
            dying_with_test(&wrapped_in(unshare, &setpriv))
        } else {
            setpriv
        };
        guarded.current_dir(self.dir.path());
        guarded
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.thaw();
        if let Err(error) = self.kill() {
            eprintln!("stopping a test server: {error}");
        }
    }
}

/// The last lines of a log, for a failure message that outlives a temporary directory.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("{} ends with:\n{tail}", path.display())
}
