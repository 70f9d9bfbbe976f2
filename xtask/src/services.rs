//! The servers backend tests talk to, made available as docs/design.md says: reuse one that
//! already listens (at the URL in the backend's environment variable, or the standard
//! local address), else start one from installed binaries on a free loopback port in a
//! scratch directory, else install it from Debian's packages, else fail naming what is
//! missing.

use std::fs;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use session_testkit::launcher::{backends, free_port, listening, Server, Spec};

use crate::process::{on_path, run, state_dir};
use crate::{mongoeco, valkey};

/// What runs a server process.
enum Launcher {
    /// An installed program, such as `redis-server`.
    Program(&'static str),
    /// mongoeco's wire server, from this Python.
    Mongoeco(PathBuf),
    /// A server binary xtask fetched, such as Valkey's.
    Fetched(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Redis,
    /// Three masters on free loopback ports, made into a cluster with `redis-cli`.
    RedisCluster,
    /// A Valkey server (8.1, which has `SET ... IFEQ`), always private to the run.
    Valkey,
    Memcached,
    /// Two memcached servers, for the tests that spread keys over several.
    MemcachedPair,
    Mongodb,
    Postgres,
    Mysql,
}

const ALL: [Kind; 8] = [
    Kind::Redis,
    Kind::RedisCluster,
    Kind::Valkey,
    Kind::Memcached,
    Kind::MemcachedPair,
    Kind::Mongodb,
    Kind::Postgres,
    Kind::Mysql,
];

/// A service that answers, and whether this xtask run started it (and so stops it).
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) kind: Kind,
    pub(crate) url: String,
    /// The servers this run started; empty for a service it found running.
    started: Vec<Server>,
}

impl Running {
    /// The process ids of the servers this run started.
    pub(crate) fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.started.iter().filter_map(Server::pid)
    }

    /// Leaves the servers this run started running, for `services down` to stop.
    pub(crate) fn detach(self) {
        self.started.into_iter().for_each(|server| {
            server.detach();
        });
    }
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::RedisCluster => "redis-cluster",
            Self::Valkey => "valkey",
            Self::Memcached => "memcached",
            Self::MemcachedPair => "memcached-pair",
            Self::Mongodb => "mongodb",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }

    /// The variable that hands the service's URL to the tests (and, when set before, names
    /// a server to use instead of starting one).
    pub(crate) fn env_var(self) -> &'static str {
        match self {
            Self::Redis => "SESSION_TEST_REDIS_URL",
            Self::RedisCluster => "SESSION_TEST_REDIS_CLUSTER_URL",
            Self::Valkey => "SESSION_TEST_VALKEY_URL",
            Self::Memcached => "SESSION_TEST_MEMCACHED_URL",
            Self::MemcachedPair => "SESSION_TEST_MEMCACHED_PAIR_URL",
            Self::Mongodb => "SESSION_TEST_MONGODB_URL",
            Self::Postgres => "SESSION_TEST_POSTGRES_URL",
            Self::Mysql => "SESSION_TEST_MYSQL_URL",
        }
    }

    /// The standard local port, where a running server is reused; none for the cluster,
    /// which is always private to the run.
    fn default_port(self) -> Option<u16> {
        Some(match self {
            Self::Redis => 6379,
            Self::RedisCluster | Self::Valkey => return None,
            // Always a private server: the suite needs `-I 2m`, which a memcached found
            // running may not have.
            Self::Memcached | Self::MemcachedPair => return None,
            Self::Mongodb => 27017,
            Self::Postgres => 5432,
            Self::Mysql => 3306,
        })
    }

    /// How many server processes make up the service.
    fn processes(self) -> usize {
        match self {
            Self::RedisCluster => 3,
            Self::MemcachedPair => 2,
            _ => 1,
        }
    }

    fn url(self, ports: &[u16]) -> String {
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let hosts = hosts.join(",");
        match self {
            Self::Redis | Self::Valkey => format!("redis://{hosts}"),
            Self::RedisCluster => format!("redis+cluster://{hosts}"),
            Self::Memcached | Self::MemcachedPair => format!("memcache://{hosts}"),
            Self::Mongodb => format!("mongodb://{hosts}"),
            Self::Postgres => format!("postgres://postgres@{hosts}/test"),
            Self::Mysql => format!("mysql://root@{hosts}/test"),
        }
    }

    /// The installed program that runs the server, and its Debian package.
    fn program(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Redis | Self::RedisCluster => Some(("redis-server", "redis-server")),
            // Fetched by `valkey::prepare`, not from a package.
            Self::Valkey => None,
            Self::Memcached | Self::MemcachedPair => Some(("memcached", "memcached")),
            // No registry reachable here ships mongod; without one on PATH, mongoeco runs
            // instead (see `launcher`).
            Self::Mongodb => Some(("mongod", "")),
            // System database servers need a cluster set up as root; they are reused, not
            // started (the project's machines run both).
            Self::Postgres | Self::Mysql => None,
        }
    }

    /// The launcher's description of one server process of `kind`.
    fn spec(self, launcher: &Launcher) -> Result<Spec, String> {
        let program = match launcher {
            Launcher::Program(program) => PathBuf::from(program),
            Launcher::Mongoeco(python) => return Ok(backends::mongoeco(python.clone())),
            Launcher::Fetched(program) => program.clone(),
        };
        Ok(match self {
            Self::Redis | Self::Valkey => backends::redis(program),
            Self::RedisCluster => backends::redis_cluster_node(program),
            Self::Memcached | Self::MemcachedPair => backends::memcached(program),
            Self::Mongodb => backends::mongod(program),
            Self::Postgres | Self::Mysql => {
                return Err(format!("xtask does not start {}", self.name()))
            }
        })
    }
}

fn parse(name: &str) -> Result<Kind, String> {
    ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
        let known: Vec<_> = ALL.iter().map(|k| k.name()).collect();
        format!("unknown service `{name}`; known: {}", known.join(" "))
    })
}

/// `cargo xtask services up|down|status [SERVICE...]`.
pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let kinds = match args.get(1..) {
        Some([]) | None => ALL.to_vec(),
        Some(names) => names.iter().map(|n| parse(n)).collect::<Result<_, _>>()?,
    };
    match args.first().map(String::as_str) {
        Some("up") => {
            for service in ensure_all(&kinds)? {
                let (name, var) = (service.kind.name(), service.kind.env_var());
                println!("{name:<14} {}  (export {var}={})", service.url, service.url);
                // Left running for the tests to come; `services down` stops them.
                service.detach();
            }
            if args.len() == 1 {
                for (var, path) in fault_programs()?.into_iter().chain([valkey_program()?]) {
                    println!("{:<14} (export {var}={})", "program", path.display());
                }
            }
            Ok(())
        }
        Some("down") => {
            for kind in kinds {
                if let Some((pids, _)) = read_state(kind) {
                    pids.iter().for_each(|pid| stop_pid(*pid));
                    println!("{:<14} stopped", kind.name());
                }
                let _ = fs::remove_file(state_file(kind));
            }
            Ok(())
        }
        Some("status") => {
            for kind in kinds {
                println!("{:<14} {}", kind.name(), describe(kind));
            }
            Ok(())
        }
        _ => Err("usage: cargo xtask services up|down|status [SERVICE...]".to_owned()),
    }
}

fn describe(kind: Kind) -> String {
    if let Ok(url) = std::env::var(kind.env_var()) {
        let state = if reachable_url(&url) {
            "reachable"
        } else {
            "NOT reachable"
        };
        return format!("{url} from {} ({state})", kind.env_var());
    }
    if let Some((pids, url)) = read_state(kind).filter(|(_, url)| reachable_url(url)) {
        return format!("{url} (started by xtask, pids {pids:?})");
    }
    match kind.default_port().filter(|port| listening(*port)) {
        Some(port) => format!("{} (already running)", kind.url(&[port])),
        None => "not running".to_owned(),
    }
}

/// Makes every service in `kinds` available; a failure stops what this call started.
pub(crate) fn ensure_all(kinds: &[Kind]) -> Result<Vec<Running>, String> {
    let mut running = Vec::new();
    for &kind in kinds {
        match ensure(kind) {
            Ok(service) => running.push(service),
            Err(error) => {
                stop_started(running);
                return Err(error);
            }
        }
    }
    Ok(running)
}

fn ensure(kind: Kind) -> Result<Running, String> {
    let found = |url: String| {
        Ok(Running {
            kind,
            url,
            started: Vec::new(),
        })
    };
    if matches!(
        kind,
        Kind::Redis | Kind::RedisCluster | Kind::Memcached | Kind::MemcachedPair
    ) {
        // These tests also start private servers (outages, command counts, pairs), so
        // the binary must be there even when a server already runs.
        install_program(kind)?;
    }
    if let Ok(url) = std::env::var(kind.env_var()) {
        if !reachable_url(&url) {
            return Err(format!(
                "{} is set but nothing answers at its address",
                kind.env_var()
            ));
        }
        return found(url);
    }
    if let Some((_, url)) = read_state(kind).filter(|(_, url)| reachable_url(url)) {
        // Started by an earlier `services up`; that command's `down` stops it.
        return found(url);
    }
    if let Some(port) = kind.default_port().filter(|port| listening(*port)) {
        return found(kind.url(&[port]));
    }
    start_service(kind, &launcher(kind)?)
}

/// How to run `kind` here: its program (installed first if a package has it), or, for
/// MongoDB without `mongod`, mongoeco.
fn launcher(kind: Kind) -> Result<Launcher, String> {
    if kind == Kind::Mongodb && !on_path("mongod") {
        return mongoeco::prepare().map(Launcher::Mongoeco);
    }
    if kind == Kind::Valkey {
        return valkey::prepare().map(Launcher::Fetched);
    }
    install_program(kind).map(Launcher::Program)
}

/// A server of `kind` of this run's own, even if one is running already.
pub(crate) fn start_private(kind: Kind) -> Result<Running, String> {
    start_service(kind, &launcher(kind)?)
}

/// The program that runs `kind`, installed from Debian's packages if it is missing.
fn install_program(kind: Kind) -> Result<&'static str, String> {
    let Some((program, package)) = kind.program() else {
        return Err(format!(
            "{} is not running on 127.0.0.1:{}; start it, or set {} to a server's URL",
            kind.name(),
            kind.default_port().unwrap_or_default(),
            kind.env_var()
        ));
    };
    if on_path(program) {
        return Ok(program);
    }
    if package.is_empty() {
        return Err(format!(
            "no {} server: `{program}` is not installed and no package provides it here; set {}",
            kind.name(),
            kind.env_var()
        ));
    }
    install(package)?;
    Ok(program)
}

pub(crate) fn install(package: &str) -> Result<(), String> {
    if !on_path("apt-get") {
        return Err(format!(
            "`{package}` is not installed and there is no apt-get to install it"
        ));
    }
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive");
    if run(&mut install).is_err() {
        // A fresh machine may have no package lists yet.
        run(Command::new("apt-get").arg("update"))?;
        run(&mut install)?;
    }
    Ok(())
}

/// Starts a server of `kind` on `port` in a scratch directory under `target/xtask/`, where
/// its log stays, and waits until it listens; it outlives this process.
fn start(kind: Kind, launcher: &Launcher, port: u16) -> Result<Server, String> {
    let dir = state_dir().join(kind.name()).join(port.to_string());
    let spec = kind
        .spec(launcher)?
        .port(port)
        .scratch_dir(dir)
        .detached()
        .start_timeout(Duration::from_secs(30));
    let server = Server::start(spec)?;
    println!(
        "xtask: started {} on 127.0.0.1:{port} (pid {})",
        kind.name(),
        server.pid().unwrap_or_default()
    );
    Ok(server)
}

/// Starts every process of `kind` on free ports (a cluster also gets joined), and records
/// them for `services down`.
fn start_service(kind: Kind, launcher: &Launcher) -> Result<Running, String> {
    let ports = match kind {
        Kind::RedisCluster => cluster_ports(kind.processes())?,
        _ => (0..kind.processes())
            .map(|_| free_port().map_err(|e| format!("no free port: {e}")))
            .collect::<Result<_, _>>()?,
    };
    let mut started = Vec::new();
    let result = (|| {
        for &port in &ports {
            started.push(start(kind, launcher, port)?);
        }
        if kind == Kind::RedisCluster {
            form_cluster(&ports)?;
        }
        let url = kind.url(&ports);
        let pids: Vec<u32> = started.iter().filter_map(Server::pid).collect();
        save_state(kind, &pids, &url)?;
        Ok(url)
    })();
    // On an error, `started` goes, and with it the servers.
    result.map(|url| Running { kind, url, started })
}

/// Joins the nodes with `redis-cli --cluster create`; ready when every node reports
/// `cluster_state:ok`.
fn form_cluster(ports: &[u16]) -> Result<(), String> {
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    run(Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in ports {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .map_err(|e| format!("cannot run redis-cli: {e}"))?;
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the Redis cluster node on port {port} never became ready"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Free ports whose cluster bus port (port + 10000) is free too.
fn cluster_ports(count: usize) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    let start = 20_000 + (std::process::id() % 5_000) as u16;
    for port in (start..30_000).chain(20_000..start) {
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            ports.push(port);
            if ports.len() == count {
                return Ok(ports);
            }
        }
    }
    Err("no free ports for a Redis cluster between 20000 and 30000".to_owned())
}

/// Stops the services this run started; the ones it found running are left alone.
pub(crate) fn stop_started(running: Vec<Running>) {
    for service in running {
        if !service.started.is_empty() {
            // Dropping a server kills it.
            drop(service.started);
            let _ = fs::remove_file(state_file(service.kind));
        }
    }
}

/// Kills a process an earlier run started (`services down`).
fn stop_pid(pid: u32) {
    let _ = Command::new("kill").arg(pid.to_string()).status();
}

fn state_file(kind: Kind) -> PathBuf {
    state_dir().join(format!("{}.service", kind.name()))
}

fn save_state(kind: Kind, pids: &[u32], url: &str) -> Result<(), String> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    fs::create_dir_all(state_dir()).map_err(|e| e.to_string())?;
    fs::write(state_file(kind), format!("{} {url}\n", pids.join(","))).map_err(|e| e.to_string())
}

fn read_state(kind: Kind) -> Option<(Vec<u32>, String)> {
    let text = fs::read_to_string(state_file(kind)).ok()?;
    let (pids, url) = text.trim().split_once(' ')?;
    let pids = pids
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    Some((pids, url.to_owned()))
}

/// Whether the host and first port of a service URL accept connections.
fn reachable_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let first = host_port.split(',').next().unwrap_or(host_port);
    first
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

/// The programs the fault tests (`examples/bench/tests/faults.rs`) run private servers with, each
/// with the variable that tells the tests where it is; installed first where a Debian
/// package has it (mongoeco: in its virtualenv).
pub(crate) fn fault_programs() -> Result<Vec<(&'static str, PathBuf)>, String> {
    let redis = install_program(Kind::Redis)?;
    let memcached = install_program(Kind::Memcached)?;
    let mut programs = vec![
        (backends::REDIS_SERVER_BIN, located(redis)?),
        (backends::MEMCACHED_BIN, located(memcached)?),
        mongoeco_program()?,
    ];
    let postgres = match postgres_bin_dir() {
        Some(dir) => dir,
        None => {
            install("postgresql")?;
            postgres_bin_dir().ok_or("no `initdb` and `postgres` after installing postgresql")?
        }
    };
    programs.push((backends::POSTGRES_BIN_DIR, postgres));
    if find_program("mariadbd").is_none() || find_program("mariadb-install-db").is_none() {
        install("mariadb-server")?;
    }
    programs.push((backends::MARIADBD_BIN, located("mariadbd")?));
    programs.push((
        backends::MARIADB_INSTALL_DB_BIN,
        located("mariadb-install-db")?,
    ));
    Ok(programs)
}

/// Valkey's server, with the variable that names it to the tests.
pub(crate) fn valkey_program() -> Result<(&'static str, PathBuf), String> {
    Ok((backends::VALKEY_SERVER_BIN, valkey::prepare()?))
}

/// mongoeco's Python, with the variable that names it to the tests.
pub(crate) fn mongoeco_program() -> Result<(&'static str, PathBuf), String> {
    Ok((backends::MONGOECO_PYTHON, mongoeco::prepare()?))
}

/// Where `program` is: on PATH, or in the `sbin` directories a user's PATH may lack.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn located(program: &str) -> Result<PathBuf, String> {
    find_program(program).ok_or_else(|| format!("`{program}` is not installed"))
}

/// The directory with PostgreSQL's `initdb` and `postgres`: Debian keeps them off PATH,
/// in `/usr/lib/postgresql/<version>/bin` (the newest wins); else wherever PATH's `initdb`
/// really is.
fn postgres_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &PathBuf| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    let initdb = fs::canonicalize(find_program("initdb")?).ok()?;
    initdb.parent().map(PathBuf::from).filter(has_both)
}
