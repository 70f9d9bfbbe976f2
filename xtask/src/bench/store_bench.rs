//! The store benchmark without HTTP: the `store-bench` binary, pinned to the server's CPU.

use std::path::Path;
use std::process::{Command, Stdio};

use super::options::Options;
use super::SERVER_CPU;

/// Concurrent tasks in the store benchmark (`bench::store_bench::CONCURRENCY`).
pub(super) const CONCURRENCY: usize = 32;

/// The store benchmark's table rows for one store URL, labelled with the store's name
/// (`valkey`, which `store-bench` would call `redis` after the URL's scheme) where it was
/// given by name.
pub(super) fn table_rows(
    release: &Path,
    store: &str,
    url: &str,
    options: &Options,
) -> Result<String, String> {
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
    Ok(rows(&String::from_utf8_lossy(&output.stdout), store, url))
}

/// The table rows of `store-bench`'s output, the store's name in place of the URL's scheme
/// when the store was given by name.
fn rows(output: &str, store: &str, url: &str) -> String {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    let by_name = !store.contains("://");
    output
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| store"))
        .map(|line| match line.strip_prefix(&format!("| {scheme} |")) {
            Some(rest) if by_name => format!("| {store} |{rest}\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::rows;

    #[test]
    fn rows_carry_the_store_name_given_and_the_scheme_of_a_url() {
        let output =
            "| store | operation | raw | ours | ratio |\n|---|\n| redis | load | 2 | 1 | 0.50 |\n";
        assert_eq!(
            rows(output, "valkey", "redis://127.0.0.1:1"),
            "| valkey | load | 2 | 1 | 0.50 |\n"
        );
        assert_eq!(
            rows(output, "redis://127.0.0.1:1", "redis://127.0.0.1:1"),
            "| redis | load | 2 | 1 | 0.50 |\n"
        );
    }
}
