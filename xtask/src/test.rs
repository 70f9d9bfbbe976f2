//! `cargo xtask test`: the one command that says whether the project works.

use std::path::PathBuf;
use std::process::Command;

use crate::process::run;
use crate::services::{self, install, Kind};

/// A backend (or other part) of the workspace, its packages, and the services its tests
/// need. A backend lists a service only once its tests use it, so that nothing is started
/// or installed for nothing.
struct Part {
    name: &'static str,
    packages: &'static [&'static str],
    services: &'static [Kind],
}

const fn part(
    name: &'static str,
    packages: &'static [&'static str],
    services: &'static [Kind],
) -> Part {
    Part {
        name,
        packages,
        services,
    }
}

const EVERY_SERVICE: &[Kind] = &[
    Kind::Redis,
    Kind::RedisCluster,
    Kind::Postgres,
    Kind::Mysql,
    Kind::Memcached,
    Kind::Mongodb,
];

const PARTS: &[Part] = &[
    part("core", &["session-core"], &[]),
    part("fs", &["session-fs"], &[]),
    part("actix", &["session-actix"], &[]),
    // Every crate under examples/: the apps count Redis commands on a private server and
    // run on every backend.
    part(
        "examples",
        &["example-server", "login", "bench"],
        EVERY_SERVICE,
    ),
    part(
        "redis",
        &["session-redis"],
        &[Kind::Redis, Kind::RedisCluster, Kind::Valkey],
    ),
    part("sql", &["session-sql"], &[Kind::Postgres, Kind::Mysql]),
    part(
        "memcached",
        &["session-memcached"],
        &[Kind::Memcached, Kind::MemcachedPair],
    ),
    part("mongodb", &["session-mongodb"], &[Kind::Mongodb]),
];

fn select(names: &[String]) -> Result<Vec<&'static Part>, String> {
    if names.is_empty() {
        return Ok(PARTS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            PARTS.iter().find(|p| p.name == name).ok_or_else(|| {
                let known: Vec<_> = PARTS.iter().map(|p| p.name).collect();
                format!("unknown backend `{name}`; known: {}", known.join(" "))
            })
        })
        .collect()
}

/// How long each fuzz target runs in `cargo xtask test`: long enough to replay the seed
/// corpus (which holds every past finding) and explore a little; `cargo xtask fuzz` runs
/// for longer.
const FUZZ_SECONDS: &str = "10";

/// The crates published to crates.io, which `cargo package` must accept.
const PUBLISHED: &[&str] = &[
    "session-core",
    "session-fs",
    "session-actix",
    "session-redis",
    "session-memcached",
    "session-mongodb",
    "session-sql",
];

/// Removes the sources of this workspace's crates that an earlier `cargo package` unpacked
/// into Cargo's registry cache. Cargo verifies each package against the others' packages,
/// unpacked there under their version, and reuses what it finds: with the version
/// unchanged, a crate would be built against another's code as it was at that earlier run.
fn forget_unpacked_packages() -> Result<(), String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let Some(sources) = cargo_home.map(|home| home.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&sources) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        let Ok(entries) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = PUBLISHED.iter().any(|crate_name| {
                name.strip_prefix(crate_name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| format!("cannot remove {}: {e}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let everything = args.is_empty();
    // `fuzz` is a part of its own: the fuzz crate is outside the workspace.
    let fuzz = everything || args.iter().any(|a| a == "fuzz");
    let backends: Vec<String> = args.iter().filter(|a| *a != "fuzz").cloned().collect();
    if !everything && backends.is_empty() {
        return run_fuzz();
    }
    let parts = select(&backends)?;
    run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Every public item's docs build, and every intra-doc link resolves.
    run(Command::new("cargo")
        .args(["doc", "--no-deps", "--workspace", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    // Each published crate packages and builds from its package alone: no file it needs
    // is left out, no path dependency lacks a version.
    forget_unpacked_packages()?;
    let mut package = Command::new("cargo");
    package.args(["package", "--locked", "--allow-dirty"]);
    for crate_name in PUBLISHED {
        package.args(["-p", crate_name]);
    }
    run(&mut package)?;

    let mut needed: Vec<Kind> = parts
        .iter()
        .flat_map(|p| p.services.iter().copied())
        .collect();
    needed.sort_by_key(|k| *k as u8);
    needed.dedup();
    // The fault tests run private servers from these programs: the bench app's of every
    // kind, session-mongodb's of mongoeco.
    let selected = |package: &str| parts.iter().any(|p| p.packages.contains(&package));
    let mut programs = if selected("bench") {
        services::fault_programs()?
    } else if selected("session-mongodb") {
        vec![services::mongoeco_program()?]
    } else {
        Vec::new()
    };
    // session-redis's and the bench app's tests of `SET ... IFEQ` start private Valkey
    // servers.
    if selected("session-redis") || selected("bench") {
        programs.push(services::valkey_program()?);
    }
    // The login app's browser test drives a real Chromium, which it never skips.
    if selected("login") {
        programs.extend(browser_programs()?);
    }
    let running = services::ensure_all(&needed)?;

    let mut cargo = Command::new("cargo");
    cargo.args(["test", "--locked"]);
    if everything {
        cargo.arg("--workspace");
    } else {
        for package in parts.iter().flat_map(|p| p.packages) {
            cargo.args(["-p", package]);
        }
    }
    for service in &running {
        cargo.env(service.kind.env_var(), &service.url);
    }
    for (var, path) in &programs {
        cargo.env(var, path);
    }
    // Most tests wait on servers or on expiry, not on the CPU.
    cargo.args(["--", "--test-threads=4"]);
    let result = run(&mut cargo);
    services::stop_started(running);
    result?;
    if fuzz {
        run_fuzz()?;
    }
    Ok(())
}

/// Each browser program the login app's test runs: the variable that names it to the test,
/// the program, and the Debian package that installs it.
const BROWSER: &[(&str, &str, &str)] = &[
    ("SESSION_TEST_CHROMIUM", "chromium", "chromium"),
    (
        "SESSION_TEST_CHROMEDRIVER",
        "chromedriver",
        "chromium-driver",
    ),
];

/// Debian's Chromium and its WebDriver, installed when missing, with the variables that
/// name them to the test; a path already in such a variable is kept.
fn browser_programs() -> Result<Vec<(&'static str, PathBuf)>, String> {
    BROWSER
        .iter()
        .map(|&(var, program, package)| {
            if let Some(path) = std::env::var_os(var) {
                return Ok((var, PathBuf::from(path)));
            }
            if find_on_path(program).is_none() {
                install(package)?;
            }
            find_on_path(program)
                .map(|path| (var, path))
                .ok_or_else(|| format!("no `{program}` on PATH after installing {package}"))
        })
        .collect()
}

/// Where `program` is on PATH.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn run_fuzz() -> Result<(), String> {
    crate::fuzz::command(&["--seconds".to_owned(), FUZZ_SECONDS.to_owned()])
}
