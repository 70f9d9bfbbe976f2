//! Each backend's command line for the launcher, and where the tests find its program.
//!
//! The builders take the program, so that xtask can pass what it installed; the tests take
//! it from the variables `cargo xtask test` (or `cargo xtask services up`) sets, through
//! [`Backend::spec`].

use std::path::{Path, PathBuf};

use super::{is_root, Error, Spec};

/// The variable naming `redis-server` (else it is looked up on PATH).
pub const REDIS_SERVER_BIN: &str = "SESSION_TEST_REDIS_SERVER_BIN";
/// The variable naming a `valkey-server` with `SET ... IFEQ`, which xtask fetches.
pub const VALKEY_SERVER_BIN: &str = "SESSION_TEST_VALKEY_SERVER_BIN";
/// The variable naming `memcached` (else it is looked up on PATH).
pub const MEMCACHED_BIN: &str = "SESSION_TEST_MEMCACHED_BIN";
/// The variable naming the Python that runs mongoeco, which xtask prepares.
pub const MONGOECO_PYTHON: &str = "SESSION_TEST_MONGOECO_PYTHON";
/// The variable naming the directory of PostgreSQL's `initdb` and `postgres`.
pub const POSTGRES_BIN_DIR: &str = "SESSION_TEST_POSTGRES_BIN_DIR";
/// The variable naming `mariadbd`.
pub const MARIADBD_BIN: &str = "SESSION_TEST_MARIADBD_BIN";
/// The variable naming `mariadb-install-db`.
pub const MARIADB_INSTALL_DB_BIN: &str = "SESSION_TEST_MARIADB_INSTALL_DB_BIN";

/// The launcher of mongoeco's wire server, in the repository.
pub const MONGOECO_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../services/mongoeco_server.py"
);

/// The same small InnoDB for `mariadb-install-db` and `mariadbd`.
const MARIADB_SIZES: [&str; 2] = ["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"];

/// A `redis-server` that keeps nothing on disk.
pub fn redis(program: PathBuf) -> Spec {
    Spec::new("redis", program)
        .args(["--bind", "127.0.0.1", "--port", "{port}"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--dir", "{dir}"])
}

/// A node of a Redis Cluster: [`redis`] with cluster mode on; xtask joins the nodes.
pub fn redis_cluster_node(program: PathBuf) -> Spec {
    redis(program)
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
}

/// A `memcached` with 64 MiB and a 2 MiB item limit: the conformance suite stores 1 MiB
/// sessions.
pub fn memcached(program: PathBuf) -> Spec {
    Spec::new("memcached", program)
        .args(["-u", "root", "-l", "127.0.0.1", "-p", "{port}"])
        .args(["-m", "64", "-I", "2m"])
}

/// A `mongod` with its database in the scratch directory.
pub fn mongod(program: PathBuf) -> Spec {
    Spec::new("mongod", program).args([
        "--bind_ip",
        "127.0.0.1",
        "--port",
        "{port}",
        "--dbpath",
        "{dir}",
    ])
}

/// mongoeco's wire server (see `xtask/services/mongoeco_server.py`), run by `python`.
pub fn mongoeco(python: PathBuf) -> Spec {
    Spec::new("mongoeco", python).args([MONGOECO_SCRIPT, "--port", "{port}"])
}

/// A PostgreSQL cluster of its own, made by `initdb` in the scratch directory, with the
/// `postgres` superuser and no password; run as the `postgres` user when we are root.
pub fn postgres(bin_dir: &Path) -> Spec {
    Spec::new("postgres", bin_dir.join("postgres"))
        .set_up(
            "initdb",
            bin_dir.join("initdb"),
            [
                "-D",
                "{dir}/data",
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ]
            .into_iter()
            .chain(["-E", "UTF8", "--locale=C"]),
        )
        .args(["-D", "{dir}/data", "-p", "{port}"])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .args(["-c", "shared_buffers=16MB"])
        .run_as("postgres")
}

/// A MariaDB server of its own, its data directory made by `mariadb-install-db`, with
/// `root` and no password.
pub fn mariadb(mariadbd: PathBuf, install_db: PathBuf) -> Spec {
    let as_root: &[&str] = if is_root() { &["--user=root"] } else { &[] };
    let install = ["--no-defaults", "--datadir={dir}/data"]
        .into_iter()
        .chain([
            "--auth-root-authentication-method=normal",
            "--skip-name-resolve",
        ])
        .chain(MARIADB_SIZES)
        .chain(as_root.iter().copied());
    Spec::new("mariadb", mariadbd)
        .set_up("mariadb-install-db", install_db, install)
        .args(["--no-defaults", "--datadir={dir}/data", "--port={port}"])
        .args(["--bind-address=127.0.0.1", "--socket={dir}/mysqld.sock"])
        .args([
            "--pid-file={dir}/mysqld.pid",
            "--skip-log-bin",
            "--skip-name-resolve",
        ])
        .args(MARIADB_SIZES)
        .args(as_root.iter().copied())
}

/// The path in the variable `var`, which xtask sets, else `fallback` (a name looked up on
/// PATH); unset without a fallback, or naming nothing, is an error that says how to get it.
pub fn program(var: &str, fallback: Option<&str>) -> Result<PathBuf, Error> {
    let Some(value) = std::env::var_os(var) else {
        return fallback.map(PathBuf::from).ok_or_else(|| {
            Error::new(format!(
                "{var} is not set: run `cargo xtask test` (or export what `cargo xtask services up` prints)"
            ))
        });
    };
    let path = PathBuf::from(value);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::new(format!(
            "{var}={} does not exist: run `cargo xtask test`, which installs it",
            path.display()
        )))
    }
}

/// The servers the tests run privately, from the programs the environment names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `redis-server`.
    Redis,
    /// `valkey-server`, run as [`redis`] runs Redis.
    Valkey,
    /// `memcached`.
    Memcached,
    /// mongoeco's wire server.
    Mongodb,
    /// PostgreSQL.
    Postgres,
    /// MariaDB.
    Mariadb,
}

impl Backend {
    /// `"redis"`, `"memcached"`, `"mongodb"`, `"postgres"` or `"mariadb"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Valkey => "valkey",
            Self::Memcached => "memcached",
            Self::Mongodb => "mongodb",
            Self::Postgres => "postgres",
            Self::Mariadb => "mariadb",
        }
    }

    /// Whether the server keeps its data across a kill and a restart: these servers of
    /// Redis, Valkey, memcached and mongoeco keep theirs in memory only.
    pub fn keeps_data(self) -> bool {
        matches!(self, Self::Postgres | Self::Mariadb)
    }

    /// The server's [`Spec`], with its program from the environment.
    pub fn spec(self) -> Result<Spec, Error> {
        Ok(match self {
            Self::Redis => redis(program(REDIS_SERVER_BIN, Some("redis-server"))?),
            Self::Valkey => redis(program(VALKEY_SERVER_BIN, None)?),
            Self::Memcached => memcached(program(MEMCACHED_BIN, Some("memcached"))?),
            Self::Mongodb => mongoeco(program(MONGOECO_PYTHON, None)?),
            Self::Postgres => postgres(&program(POSTGRES_BIN_DIR, None)?),
            Self::Mariadb => mariadb(
                program(MARIADBD_BIN, None)?,
                program(MARIADB_INSTALL_DB_BIN, None)?,
            ),
        })
    }
}
