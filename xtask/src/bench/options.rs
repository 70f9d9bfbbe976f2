//! The command line of `cargo xtask bench`, and where the file store's sessions go.

use std::path::{Path, PathBuf};

use crate::process::state_dir;

/// What `cargo xtask bench` was asked to do.
pub(super) struct Options {
    /// Store names (`file`, `redis`, ...) or store URLs, in the order given.
    pub(super) stores: Vec<String>,
    pub(super) rounds: usize,
    /// The length of one run of one route, in seconds.
    pub(super) seconds: u64,
    /// Whether session-core's criterion benchmarks run afterwards.
    pub(super) criterion: bool,
    /// Where the file store's sessions go: see [`default_file_dir`].
    pub(super) file_dir: PathBuf,
}

/// The options in `args`; an unknown option or a missing value is an error.
pub(super) fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        stores: Vec::new(),
        rounds: 7,
        seconds: 2,
        criterion: true,
        file_dir: default_file_dir(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--store" => options.stores.push(value("--store")?),
            "--all" => options.stores.extend(
                [
                    "file",
                    "memory",
                    "redis",
                    "valkey",
                    "redis-cluster",
                    "memcached",
                    "mongodb",
                    "postgres",
                    "mysql",
                    "sqlite",
                ]
                .map(String::from),
            ),
            "--rounds" => {
                options.rounds = value("--rounds")?
                    .parse()
                    .map_err(|_| "--rounds takes a number")?
            }
            "--seconds" => {
                options.seconds = value("--seconds")?
                    .parse()
                    .map_err(|_| "--seconds takes a number")?
            }
            "--no-criterion" => options.criterion = false,
            "--file-dir" => options.file_dir = PathBuf::from(value("--file-dir")?),
            other => return Err(format!("unknown bench option `{other}`")),
        }
    }
    if options.stores.is_empty() {
        options.stores = vec!["file".into(), "redis".into(), "memory".into()];
    }
    Ok(options)
}

/// The file store's directory unless `--file-dir` says otherwise: in `/dev/shm` (tmpfs)
/// where there is one. Both servers pay the same filesystem, so the ratio measures our
/// layer against by-hand file I/O; on RAM that layer is the larger share of a request,
/// which makes the comparison stricter, not easier. On a virtual disk the device decides:
/// on a filesystem mounted with `discard`, every replaced file frees its blocks with a
/// synchronous discard under `rename`, which swamps what the benchmark is meant to see.
pub(crate) fn default_file_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join("session-bench")
    } else {
        state_dir().join("bench")
    }
}
