//! The rounds: each round runs both servers back to back, alternating which goes first,
//! and loads every route of each.

use std::path::Path;

use super::options::Options;
use super::server::{lookalike_cookies, Server};
use super::statistics::{median, Ratios, Sample};
use super::target::Target;
use super::wrk::wrk;

/// The routes loaded, in report order.
const ROUTES: [&str; 3] = ["/read", "/incr", "/new"];

/// Sessions `/read` and `/incr` spread over, made beforehand.
const SESSIONS: usize = 1_000;

/// A route's medians, baseline and library, and the ratios of the rounds' pairs.
pub(super) struct RouteResult {
    pub(super) route: &'static str,
    pub(super) baseline: Sample,
    pub(super) library: Sample,
    pub(super) ratios: Ratios,
}

/// Runs `options.rounds` rounds against `target` with the binaries in `release`.
pub(super) fn measure(
    release: &Path,
    target: &Target,
    options: &Options,
) -> Result<Vec<RouteResult>, String> {
    let mut samples: Vec<(Vec<Sample>, Vec<Sample>)> = vec![(Vec::new(), Vec::new()); ROUTES.len()];
    for round in 0..options.rounds {
        // Alternate which server goes first, so drift in the machine hits both alike.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for library in order {
            let (binary, url) = if library {
                ("bench", &target.library_url)
            } else {
                ("bench-baseline", &target.baseline_url)
            };
            target.reset();
            let server = Server::start(&release.join(binary), url)?;
            for (i, route) in ROUTES.iter().enumerate() {
                let cookies = if *route == "/new" {
                    Vec::new()
                } else {
                    let cookies = server.sessions(SESSIONS)?;
                    if cookies.is_empty() {
                        // A server without sessions still gets the same requests.
                        lookalike_cookies(SESSIONS)
                    } else {
                        cookies
                    }
                };
                let before = target.redis_commands();
                let cpu_before = server.cpu_seconds();
                let mut sample = wrk(server.port, route, &cookies, options.seconds)?;
                let requests = sample.requests as f64;
                if let (Some(before), Some(after)) = (cpu_before, server.cpu_seconds()) {
                    sample.cpu_us = (after - before) / requests * 1e6;
                }
                if let (Some(before), Some(after)) = (before, target.redis_commands()) {
                    sample.commands = Some((after - before) as f64 / requests);
                }
                println!(
                    "xtask: {} {binary} {route} round {}: {:.0} req/s, {:.1} µs CPU/request",
                    target.label,
                    round + 1,
                    sample.rps,
                    sample.cpu_us
                );
                let slot = &mut samples[i];
                if library {
                    slot.1.push(sample)
                } else {
                    slot.0.push(sample)
                }
            }
        }
    }
    Ok(ROUTES
        .iter()
        .zip(samples)
        .map(|(route, (baseline, library))| RouteResult {
            route,
            ratios: Ratios::of(&baseline, &library),
            baseline: median(&baseline),
            library: median(&library),
        })
        .collect())
}
