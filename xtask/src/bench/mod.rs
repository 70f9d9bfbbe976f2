//! `cargo xtask bench`: the HTTP benchmark of the session middleware against a baseline
//! that does the same store work by hand, plus session-core's criterion benchmarks.
//!
//! Each store runs both servers (`bench` and `bench-baseline`, `WORKERS=1`, pinned to CPU 0
//! with `taskset`) in alternating order over several rounds; `wrk` (1 thread, 32
//! connections, pinned to CPU 1) loads each route, spreading `/read` and `/incr` over 1,000
//! sessions made beforehand. The private Redis runs on CPU 1 too (see [`Target::prepare`]).
//!
//! Each round measures the two servers back to back, so the ratio is taken per round
//! (library / baseline) and the table shows the median of those ratios with their lowest
//! and highest: on a noisy machine, how much a single round moves. The req/s, latency and
//! CPU columns are medians over the rounds.
//!
//! [`options`] reads the command line, [`target`] prepares each store, [`rounds`] runs
//! the [`server`]s under [`wrk`], [`statistics`] takes the medians and ratios,
//! [`store_bench`] runs the benchmark without HTTP, and [`report`] writes the tables.

mod options;
mod report;
mod rounds;
mod server;
mod statistics;
mod store_bench;
mod target;
mod wrk;

use std::process::Command;

use crate::process::{on_path, root, run, state_dir};
use crate::services;

pub(crate) use options::default_file_dir;
pub(crate) use server::Server;
pub(crate) use target::Target;

/// The CPU of the server under test.
const SERVER_CPU: &str = "0";
/// The CPU of the load generator, and of the private Redis.
const LOAD_CPU: &str = "1";

/// Runs `cargo xtask bench` with its arguments.
pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let options = options::parse(args)?;
    for tool in ["wrk", "taskset"] {
        if !on_path(tool) {
            services::install(if tool == "wrk" { "wrk" } else { "util-linux" })?;
        }
    }
    run(Command::new("cargo").args([
        "build",
        "--release",
        "--locked",
        "-p",
        "bench",
        "--bin",
        "bench",
        "--bin",
        "bench-baseline",
        "--bin",
        "store-bench",
    ]))?;
    let release = root().join("target").join("release");
    let scratch = state_dir().join("bench");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;

    let mut report = report::Report::new();
    for store in &options.stores {
        let target = Target::prepare(store, &scratch, &options.file_dir)?;
        let results = rounds::measure(&release, &target, &options)?;
        report.add_store_rows(&store_bench::table_rows(
            &release,
            store,
            &target.library_url,
            &options,
        )?);
        report.add_routes(&target.label, &results);
        target.finish();
    }
    report.finish(&options, args, &scratch.join("report.md"))?;

    if options.criterion {
        run(Command::new("cargo").args([
            "bench",
            "--locked",
            "-p",
            "session-core",
            "--bench",
            "core",
        ]))?;
    }
    Ok(())
}
