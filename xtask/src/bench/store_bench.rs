//! The store benchmark without HTTP: the `store-bench` binary, pinned to the server's CPU.

use std::path::Path;
use std::process::{Command, Stdio};

use super::options::Options;
use super::SERVER_CPU;

/// Concurrent tasks in the store benchmark (`bench::store_bench::CONCURRENCY`).
pub(super) const CONCURRENCY: usize = 32;

/// The store benchmark's table rows for one store URL.
pub(super) fn table_rows(release: &Path, url: &str, options: &Options) -> Result<String, String> {
    if url.starts_with("redis+cluster") {
        // No raw cluster client here: the cluster's routing is the client's, not ours.
        return Ok(String::new());
    }
    let output = Command::new("taskset")
        .args(["-c", SERVER_CPU])
        .arg(release.join("store-bench"))
        .arg(url)
        .env("ROUNDS", options.rounds.to_string())
        .env("SECONDS", options.seconds.min(2).to_string())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run store-bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("store-bench failed for {url}"));
    }
    let rows: String = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| store"))
        .map(|line| format!("{line}\n"))
        .collect();
    Ok(rows)
}
