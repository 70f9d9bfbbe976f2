//! The stores to benchmark: the URL each server gets, the private Redis or Valkey, and what to
//! clean between runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LOAD_CPU;
use crate::process::run;
use crate::services::{self, Kind};

/// A store to benchmark: the URLs for both servers and what to clean between runs.
pub(crate) struct Target {
    /// The store's name in the report.
    pub(crate) label: String,
    /// The store URL of the `bench` server.
    pub(crate) library_url: String,
    /// The store URL of `bench-baseline`: the library's own for a store with a by-hand
    /// baseline, which keeps its sessions apart (see `bench::baseline`); `none://`
    /// otherwise, which then compares with no session at all.
    pub(super) baseline_url: String,
    redis: Option<(String, Vec<services::Running>)>,
    cleanup: Option<PathBuf>,
}

/// Whether `bench-baseline` has a by-hand baseline for the store at `url` that can share
/// the store with the library: a server, or an SQLite file, where it keeps its sessions
/// under keys, or in a table or collection, of its own, or memory, where each server has
/// its own map. Not for files, whose directory the file store would have to share, nor
/// for TLS or SQLite in memory.
fn has_baseline(url: &str) -> bool {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    matches!(
        scheme,
        "memory"
            | "redis"
            | "redis+cluster"
            | "memcache"
            | "mongodb"
            | "postgres"
            | "postgresql"
            | "mysql"
            | "mariadb"
            | "sqlite"
    )
}

impl Target {
    /// The target for a store name (`file`, `redis`, ...) or a store URL, with its
    /// service started if it needs one; a SQLite database goes in `scratch`, the file
    /// store's sessions in `file_dir`.
    pub(crate) fn prepare(store: &str, scratch: &Path, file_dir: &Path) -> Result<Self, String> {
        let simple = |label: &str, library_url: String, baseline_url: String| Self {
            label: label.to_owned(),
            library_url,
            baseline_url,
            redis: None,
            cleanup: None,
        };
        // Both servers on the same store: the baseline keeps its sessions apart.
        let same = |label: &str, url: String| simple(label, url.clone(), url);
        let service = |kind: Kind| -> Result<String, String> {
            let running = services::ensure_all(&[kind])?;
            let url = running[0].url.clone();
            // Left running for the bench; services found running are never stopped.
            running.into_iter().for_each(services::Running::detach);
            Ok(url)
        };
        Ok(match store {
            "file" => {
                let dir = file_dir.join("files");
                let mut target = simple(
                    &format!("file ({})", file_dir.display()),
                    format!("file://{}", dir.join("library").display()),
                    format!("file://{}", dir.join("baseline").display()),
                );
                target.cleanup = Some(dir);
                target
            }
            "memory" => same("memory", "memory://".into()),
            "redis" | "valkey" => {
                // A private server: /new makes a million keys, and the counts of commands
                // must be ours alone. On the load generator's CPU, as if on another host:
                // the server's CPU then does the server's work only. Left to the scheduler,
                // Redis lands on the server's CPU part of the time, and each run's ratio
                // then depends on where it happened to land.
                let kind = if store == "redis" {
                    Kind::Redis
                } else {
                    Kind::Valkey
                };
                let running = services::start_private(kind)?;
                for pid in running.pids() {
                    run(Command::new("taskset")
                        .args(["-pc", LOAD_CPU, &pid.to_string()])
                        .stdout(Stdio::null()))?;
                }
                let url = running.url.clone();
                Self {
                    label: store.to_owned(),
                    library_url: url.clone(),
                    baseline_url: url.clone(),
                    redis: Some((url, vec![running])),
                    cleanup: None,
                }
            }
            "redis-cluster" => same("redis cluster", service(Kind::RedisCluster)?),
            "memcached" => same("memcached", service(Kind::Memcached)?),
            "mongodb" => same("mongodb", service(Kind::Mongodb)?),
            "postgres" => same("postgres", service(Kind::Postgres)?),
            "mysql" => same("mysql", service(Kind::Mysql)?),
            "sqlite" => same(
                "sqlite",
                format!("sqlite://{}?mode=rwc", scratch.join("bench.db").display()),
            ),
            url if url.contains("://") && has_baseline(url) => same(url, url.to_owned()),
            url if url.contains("://") => simple(
                &format!("{url} (baseline: no session)"),
                url.to_owned(),
                "none://".into(),
            ),
            other => return Err(format!("unknown store `{other}`")),
        })
    }

    /// Empties the store between runs, so no run pays for the sessions of the last.
    pub(super) fn reset(&self) {
        if let Some((url, _)) = &self.redis {
            let port = url.rsplit(':').next().unwrap_or_default();
            let _ = Command::new("redis-cli")
                .args(["-p", port, "FLUSHALL"])
                .stdout(Stdio::null())
                .status();
        }
        if let Some(dir) = &self.cleanup {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Commands clients have sent the private Redis, without those that `RedisStore`'s
    /// script called (see `session_testkit::redis::client_commands`).
    pub(super) fn redis_commands(&self) -> Option<u64> {
        let (url, _) = self.redis.as_ref()?;
        let port = url.rsplit(':').next()?.parse().ok()?;
        session_testkit::redis::client_commands(port).ok()
    }

    /// Empties the store and stops the private Redis, if this target started one.
    pub(crate) fn finish(self) {
        self.reset();
        if let Some((_, running)) = self.redis {
            services::stop_started(running);
        }
    }
}
