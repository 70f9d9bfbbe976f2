//! The operating-system side of the launcher: who we run as, the process tree under a
//! server, signals, and the wrappers that make a process die with its owner.

use std::collections::HashMap;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether this process runs as root, from `/proc/self/status` (effective uid).
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// A user's uid and gid, from `/etc/passwd`.
pub(crate) fn user_ids(name: &str) -> Option<(u32, u32)> {
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

/// Where [`free_port`] looks: below the kernel's ephemeral ports (32768 and up here), so
/// that no port the kernel hands out meanwhile (to a client's connection, or to another
/// `bind` to port 0) can take one it gave before its server binds it, and below the Redis
/// Cluster nodes that xtask starts (20000-29999, their bus ports 10000 higher).
const FREE_PORTS: std::ops::Range<u32> = 10_000..20_000;

/// A loopback port that nothing listens on right now, and that no other call in this
/// process has returned: tests start servers on such ports in parallel, and a port that
/// two of them were given would connect a client to the wrong server.
pub fn free_port() -> std::io::Result<u16> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let span = FREE_PORTS.end - FREE_PORTS.start;
    // Processes running at once start at different places.
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let offset = start.wrapping_add(step) % span;
        let Ok(port) = u16::try_from(FREE_PORTS.start + offset) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        "no free loopback port between 10000 and 19999",
    ))
}

/// Whether something accepts connections on `127.0.0.1:port`.
pub fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// `command` (program, arguments, environment and directory) run under `setpriv
/// --pdeathsig KILL`, so that the kernel kills it when the thread that started it ends,
/// which a test killed by SIGKILL or aborted does without running any `Drop`. The
/// workspace forbids unsafe code, which setting the death signal in `pre_exec` needs.
///
/// The death signal comes with the end of the starting *thread*: whatever a test starts
/// is owned by the test's own thread, and stopped before that thread ends.
pub fn dying_with_test(command: &Command) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped.args(["--pdeathsig", "KILL", "--"]);
    wrapped_in(wrapped, command)
}

/// `outer` followed by `command`'s program and arguments, with `command`'s environment
/// and directory.
pub(crate) fn wrapped_in(mut outer: Command, command: &Command) -> Command {
    outer.arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        outer.current_dir(dir);
    }
    outer
}

/// `root` and every process under it, from `/proc` (PostgreSQL's backends are processes
/// of their own, in sessions of their own).
pub(crate) fn tree(root: u32) -> Vec<u32> {
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

/// A process's state letter from `/proc/<pid>/stat` (`T` when stopped).
pub(crate) fn state(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// Sends `signal` to `pids` with `kill(1)`; a process that has just exited is no error.
pub(crate) fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}
