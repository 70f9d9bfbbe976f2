//! The report: a table of the routes per store, the store benchmark's table, and how the
//! figures were measured; printed, and written to `report.md`.

use std::fmt::Write as _;
use std::path::Path;

use super::options::Options;
use super::rounds::RouteResult;
use super::store_bench::CONCURRENCY;

/// The report's tables, filled store by store.
pub(super) struct Report {
    routes: String,
    stores: String,
}

impl Report {
    /// Both tables, with their headers and no rows.
    pub(super) fn new() -> Self {
        Self {
            routes: String::from(
                "| store | route | baseline req/s | req/s | ratio | rounds' ratios | p50 | p99 | errors (baseline → library) | commands/request | CPU µs/request (baseline → library) |\n\
                 |---|---|---|---|---|---|---|---|---|---|---|\n",
            ),
            stores: String::from(
                "| store | operation | raw client ops/s | store ops/s | ratio |\n|---|---|---|---|---|\n",
            ),
        }
    }

    /// A row for each route of the store labelled `label`.
    pub(super) fn add_routes(&mut self, label: &str, results: &[RouteResult]) {
        for result in results {
            let (baseline, library, ratios) = (&result.baseline, &result.library, &result.ratios);
            let commands = library
                .commands
                .map_or("".to_owned(), |c| format!("{c:.2}"));
            let _ = writeln!(
                self.routes,
                "| {label} | {} | {:.0} | {:.0} | {:.2} | {:.2}-{:.2} | {:.0} µs | {:.0} µs | {} → {} | {commands} | {:.1} → {:.1} |",
                result.route, baseline.rps, library.rps, ratios.median, ratios.low, ratios.high, library.p50_us, library.p99_us,
                baseline.errors, library.errors, baseline.cpu_us, library.cpu_us
            );
        }
    }

    /// Rows of the store benchmark's table, as `store-bench` printed them.
    pub(super) fn add_store_rows(&mut self, rows: &str) {
        self.stores.push_str(rows);
    }

    /// Prints the tables, then writes them to `path` with a line that says how they were
    /// measured (`args`: the command line of `cargo xtask bench`).
    pub(super) fn finish(
        self,
        options: &Options,
        args: &[String],
        path: &Path,
    ) -> Result<(), String> {
        let mut report = self.routes;
        let _ = write!(
            report,
            "\nThe stores without HTTP: {CONCURRENCY} concurrent tasks on one thread, \
             our `Store` next to the raw client sending the same commands:\n\n{}",
            self.stores
        );
        println!("\n{report}");
        let _ = writeln!(
            report,
            "\n{} rounds of {} s per route and server, medians; `cargo xtask bench {}`",
            options.rounds,
            options.seconds,
            args.join(" ")
        );
        std::fs::write(path, &report).map_err(|e| e.to_string())?;
        println!("(written to {})", path.display());
        Ok(())
    }
}
