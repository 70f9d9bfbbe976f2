//! `cargo xtask fuzz [--seconds N] [TARGET...]`: the coverage-guided fuzz targets in
//! `session-core/fuzz` (cargo-fuzz and libFuzzer), each for a bounded time.
//!
//! cargo-fuzz needs nightly compiler flags (`-Zsanitizer`); `RUSTC_BOOTSTRAP=1` lets the
//! stable toolchain accept them, so no second toolchain is needed. Each target starts from
//! the seed corpus kept in the repository (`session-core/fuzz/corpus/TARGET`), which it
//! only reads; what a run adds goes to `corpus-growth/TARGET` and anything it finds to
//! `artifacts/TARGET`, both ignored by git.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::process::{root, run};

/// The cargo-fuzz installed when none is: the version these targets are run with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// How long each target runs unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 60;

/// The most memory a target may use, in MB, in all and in one allocation: past it,
/// libFuzzer reports an out-of-memory finding. Parsers of hostile bytes must allocate by
/// what they were given, not by what a length field claims.
const MEMORY_LIMIT_MB: u32 = 512;

/// The longest one input may take, in seconds, before libFuzzer reports it as a hang.
const INPUT_TIMEOUT_SECONDS: u32 = 30;

pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let (seconds, requested) = parse(args)?;
    let fuzz_dir = root().join("session-core").join("fuzz");
    ensure_cargo_fuzz()?;
    check_lock(&fuzz_dir)?;
    let known = list_targets(&fuzz_dir)?;
    let targets = if requested.is_empty() {
        known
    } else {
        if let Some(unknown) = requested.iter().find(|t| !known.contains(t)) {
            return Err(format!(
                "no fuzz target {unknown}; targets: {}",
                known.join(" ")
            ));
        }
        requested
    };

    run(&mut cargo_fuzz("build", &fuzz_dir))?;
    let scratch = scratch_dir(&fuzz_dir);
    let mut findings = Vec::new();
    for target in &targets {
        let growth = fuzz_dir.join("corpus-growth").join(target);
        let seeds = fuzz_dir.join("corpus").join(target);
        let artifacts = fuzz_dir.join("artifacts").join(target);
        for dir in [&growth, &artifacts, &scratch] {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let started = SystemTime::now();
        // Where the `file_header` target keeps its store.
        let outcome = run(cargo_fuzz("run", &fuzz_dir)
            .env("SESSION_FUZZ_DIR", &scratch)
            .arg(target)
            .arg(&growth)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-rss_limit_mb={MEMORY_LIMIT_MB}"))
            .arg(format!("-malloc_limit_mb={MEMORY_LIMIT_MB}"))
            .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display())));
        let _ = fs::remove_dir_all(&scratch);
        if let Err(error) = outcome {
            let found = new_files(&artifacts, started);
            let found = if found.is_empty() {
                format!("no artifact written ({error})")
            } else {
                found
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            findings.push(format!("{target}: {found}"));
        }
    }
    if findings.is_empty() {
        println!(
            "xtask: {} fuzz target(s), {seconds} s each: no finding",
            targets.len()
        );
        Ok(())
    } else {
        Err(format!(
            "fuzzing found something (reproduce with `RUSTC_BOOTSTRAP=1 cargo fuzz run \
             --fuzz-dir session-core/fuzz TARGET ARTIFACT`):\n  {}",
            findings.join("\n  ")
        ))
    }
}

fn parse(args: &[String]) -> Result<(u64, Vec<String>), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--seconds needs a positive whole number")?;
            }
            option if option.starts_with('-') => {
                return Err(format!("unknown option {option} for `cargo xtask fuzz`"));
            }
            target => targets.push(target.to_owned()),
        }
    }
    Ok((seconds, targets))
}

/// `cargo fuzz SUBCOMMAND` on the fuzz crate, allowed the nightly flags it passes to
/// rustc. Its default build has optimizations, debug assertions and overflow checks, and
/// AddressSanitizer.
fn cargo_fuzz(subcommand: &str, fuzz_dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", subcommand, "--fuzz-dir"])
        .arg(fuzz_dir);
    command
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if installed {
        return Ok(());
    }
    run(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
        "--locked",
    ]))
}

/// Fails if the fuzz crate's `Cargo.lock` does not match its dependencies: `cargo fuzz`
/// has no `--locked` and would rewrite it, leaving the tree dirty.
fn check_lock(fuzz_dir: &Path) -> Result<(), String> {
    run(Command::new("cargo")
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(fuzz_dir.join("Cargo.toml"))
        .stdout(std::process::Stdio::null()))
    .map_err(|e| {
        format!(
            "{e}: session-core/fuzz/Cargo.lock is out of date; run \
             `cargo update --workspace --manifest-path session-core/fuzz/Cargo.toml` and commit it"
        )
    })
}

fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let output = cargo_fuzz("list", fuzz_dir)
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run `cargo fuzz list`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo fuzz list` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A directory for the `file_header` target's store: in memory where the system has a
/// tmpfs at `/dev/shm`, since each input is a file written, read and removed, and a disk
/// filesystem runs the target several times slower.
fn scratch_dir(fuzz_dir: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        fuzz_dir.join("target")
    };
    base.join(format!("session-fuzz-{}", std::process::id()))
}

/// The files in `dir` modified at or after `since`: what this run wrote there.
fn new_files(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified >= since)
        })
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}
