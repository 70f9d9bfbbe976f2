//! `cargo xtask`: the project's own automation, in Rust, with no dependencies.
//!
//! ```text
//! cargo xtask test [BACKEND...]          fmt check, clippy -D warnings, then the tests,
//!                                        with the services the backends need
//! cargo xtask services up|down|status [SERVICE...]
//! cargo xtask bench [--store NAME|URL]... [--all] [--rounds N] [--seconds S] [--no-criterion] [--file-dir DIR]
//! cargo xtask fuzz [--seconds N] [TARGET...]
//! cargo xtask soak --store NAME|URL [--minutes N] [--clients N]
//! ```
//! Backends: core, fs, actix, examples (every crate under `examples/`), redis, memcached,
//! mongodb, sql; and fuzz.
//! Services: redis, memcached, mongodb, postgres, mysql.

mod bench;
mod fuzz;
mod mongoeco;
mod process;
mod services;
mod soak;
mod test;
mod valkey;

use std::process::ExitCode;

const USAGE: &str = "usage:
  cargo xtask test [BACKEND...]                     fmt, clippy, docs, packages, tests (all backends by default)
  cargo xtask services up|down|status [SERVICE...]  start, stop or show the test services
  cargo xtask bench [--store NAME|URL]... [--all] [--rounds N] [--seconds S] [--no-criterion] [--file-dir DIR]
                                                    HTTP benchmarks against a by-hand baseline
  cargo xtask fuzz [--seconds N] [TARGET...]        run the fuzz targets in session-core/fuzz,
                                                    N seconds each (default 60, all targets)
  cargo xtask soak --store NAME|URL [--minutes N] [--clients N]
                                                    mixed traffic for N minutes (default 10),
                                                    checking every answer and the server's memory

backends: core fs actix examples redis memcached mongodb sql, and fuzz (a short run of each fuzz target);
  examples: every crate under examples/ (example-server, login, bench)
services: redis memcached mongodb postgres mysql";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::command(&args[1..]),
        Some("services") => services::command(&args[1..]),
        Some("bench") => bench::command(&args[1..]),
        Some("fuzz") => fuzz::command(&args[1..]),
        Some("soak") => soak::command(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}
