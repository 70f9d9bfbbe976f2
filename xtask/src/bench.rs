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

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::parse_response;
use crate::process::{on_path, root, run, state_dir};
use crate::services::{self, Kind};

const ROUTES: [&str; 3] = ["/read", "/incr", "/new"];
const SESSIONS: usize = 1_000;
const SECRET: &str = "a benchmark secret of at least thirty-two bytes";
/// The CPU of the server under test.
const SERVER_CPU: &str = "0";
/// The CPU of the load generator, and of the private Redis.
const LOAD_CPU: &str = "1";

struct Options {
    stores: Vec<String>,
    rounds: usize,
    seconds: u64,
    criterion: bool,
    /// Where the file store's sessions go: see [`default_file_dir`].
    file_dir: PathBuf,
}

fn parse(args: &[String]) -> Result<Options, String> {
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
/// this machine's ext4 is mounted with `discard`, and there every replaced file freed its
/// blocks with a synchronous discard (`blkdev_issue_discard` under `rename` in perf), 1.2
/// ms of CPU per `/incr` for the baseline, and one round's ratio ranged 0.18-1.65.
pub(crate) fn default_file_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join("session-bench")
    } else {
        state_dir().join("bench")
    }
}

/// One measured run of one route.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rps: f64,
    /// Requests completed. Not req/s times the duration asked for: wrk runs a little
    /// longer than that, and per-request figures would come out a few per cent high.
    requests: u64,
    /// The server's CPU time (user + system) per request, in microseconds: steadier than
    /// req/s on a virtual machine whose neighbours steal time.
    cpu_us: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    /// Store commands per request, where the store can count them (Redis).
    commands: Option<f64>,
}

pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
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
        "examples",
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

    let mut report = String::from(
        "| store | route | baseline req/s | req/s | ratio | rounds' ratios | p50 | p99 | errors | commands/request | CPU µs/request (baseline → library) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut stores_report = String::from(
        "| store | operation | raw client ops/s | store ops/s | ratio |\n|---|---|---|---|---|\n",
    );
    for store in &options.stores {
        let target = Target::prepare(store, &scratch, &options.file_dir)?;
        let results = measure(&release, &target, &options)?;
        stores_report.push_str(&store_bench(&release, &target.library_url, &options)?);
        for (route, baseline, library, ratios) in results {
            let commands = library
                .commands
                .map_or("".to_owned(), |c| format!("{c:.2}"));
            let _ = writeln!(
                report,
                "| {} | {route} | {:.0} | {:.0} | {:.2} | {:.2}-{:.2} | {:.0} µs | {:.0} µs | {} | {commands} | {:.1} → {:.1} |",
                target.label, baseline.rps, library.rps, ratios.median, ratios.low, ratios.high, library.p50_us, library.p99_us, library.errors,
                baseline.cpu_us, library.cpu_us
            );
        }
        target.finish();
    }
    let _ = write!(
        report,
        "\nThe stores without HTTP: {CONCURRENCY} concurrent tasks on one thread, \
         our `Store` next to the raw client sending the same commands:\n\n{stores_report}"
    );
    println!("\n{report}");
    let _ = writeln!(
        report,
        "\n{} rounds of {} s per route and server, medians; `cargo xtask bench {}`",
        options.rounds,
        options.seconds,
        args.join(" ")
    );
    std::fs::write(scratch.join("report.md"), &report).map_err(|e| e.to_string())?;
    println!("(written to {})", scratch.join("report.md").display());

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

/// Concurrent tasks in the store benchmark (`examples::store_bench::CONCURRENCY`).
const CONCURRENCY: usize = 32;

/// The store benchmark's table rows for one store URL.
fn store_bench(release: &Path, url: &str, options: &Options) -> Result<String, String> {
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

/// A store to benchmark: the URLs for both servers and what to clean between runs.
pub(crate) struct Target {
    pub(crate) label: String,
    pub(crate) library_url: String,
    /// `None`: no by-hand baseline exists for this store, compare with no session at all.
    baseline_url: String,
    redis: Option<(String, Vec<services::Running>)>,
    cleanup: Option<PathBuf>,
}

impl Target {
    pub(crate) fn prepare(store: &str, scratch: &Path, file_dir: &Path) -> Result<Self, String> {
        let simple = |label: &str, library_url: String, baseline_url: String| Self {
            label: label.to_owned(),
            library_url,
            baseline_url,
            redis: None,
            cleanup: None,
        };
        let service = |kind: Kind| -> Result<String, String> {
            let running = services::ensure_all(&[kind])?;
            let url = running[0].url.clone();
            // Left running for the bench; services found running are never stopped.
            std::mem::forget(running);
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
            "memory" => simple(
                "memory (baseline: no session)",
                "memory://".into(),
                "memory://".into(),
            ),
            "redis" => {
                // A private server: /new makes a million keys, and the counts of commands
                // must be ours alone. On the load generator's CPU, as if on another host:
                // the server's CPU then does the server's work only. Left to the scheduler,
                // Redis ran on the server's CPU in 40 % of samples, and each run's ratio
                // depended on where it happened to land.
                let running = services::start_private(Kind::Redis)?;
                for pid in running.pids() {
                    run(Command::new("taskset")
                        .args(["-pc", LOAD_CPU, &pid.to_string()])
                        .stdout(Stdio::null()))?;
                }
                let url = running.url.clone();
                Self {
                    label: "redis".to_owned(),
                    library_url: url.clone(),
                    baseline_url: url.clone(),
                    redis: Some((url, vec![running])),
                    cleanup: None,
                }
            }
            "redis-cluster" => simple(
                "redis cluster (baseline: no session)",
                service(Kind::RedisCluster)?,
                "memory://".into(),
            ),
            "memcached" => simple(
                "memcached (baseline: no session)",
                service(Kind::Memcached)?,
                "memory://".into(),
            ),
            "mongodb" => simple(
                "mongodb (baseline: no session)",
                service(Kind::Mongodb)?,
                "memory://".into(),
            ),
            "postgres" => simple(
                "postgres (baseline: no session)",
                service(Kind::Postgres)?,
                "memory://".into(),
            ),
            "mysql" => simple(
                "mysql (baseline: no session)",
                service(Kind::Mysql)?,
                "memory://".into(),
            ),
            "sqlite" => simple(
                "sqlite (baseline: no session)",
                format!("sqlite://{}?mode=rwc", scratch.join("bench.db").display()),
                "memory://".into(),
            ),
            url if url.contains("://") => simple(url, url.to_owned(), "memory://".into()),
            other => return Err(format!("unknown store `{other}`")),
        })
    }

    /// Empties the store between runs, so no run pays for the sessions of the last.
    fn reset(&self) {
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

    /// Commands clients have sent the private Redis. `INFO commandstats` also counts the
    /// commands a script calls, under their own names: `RedisStore`'s conditional write
    /// calls `GETRANGE` and one more command per run, and nothing else sends `GETRANGE`.
    fn redis_commands(&self) -> Option<u64> {
        let (url, _) = self.redis.as_ref()?;
        let port = url.rsplit(':').next()?;
        let output = Command::new("redis-cli")
            .args(["-p", port, "INFO", "commandstats"])
            .output()
            .ok()?;
        let calls: Vec<(String, u64)> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
            .filter_map(|l| {
                let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split("calls=").nth(1)?.split(',').next()?;
                Some((name.to_owned(), calls.parse::<u64>().ok()?))
            })
            .collect();
        let total: u64 = calls.iter().map(|(_, n)| n).sum();
        let scripted: u64 = calls
            .iter()
            .filter(|(name, _)| name == "getrange")
            .map(|(_, n)| 2 * n)
            .sum();
        Some(total.saturating_sub(scripted))
    }

    pub(crate) fn finish(self) {
        self.reset();
        if let Some((_, running)) = self.redis {
            services::stop_started(running);
        }
    }
}

/// A route's medians, baseline and library, and the ratios of the rounds' pairs.
type RouteResult = (&'static str, Sample, Sample, Ratios);

/// The ratios of req/s, library / baseline, each from one round's pair, which ran back to
/// back: their median, and the lowest and highest, how far one round can move the figure
/// on this machine. Pairing keeps a slow stretch of the machine from landing on one side.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ratios {
    median: f64,
    low: f64,
    high: f64,
}

impl Ratios {
    fn of(baseline: &[Sample], library: &[Sample]) -> Self {
        let mut ratios: Vec<f64> = baseline
            .iter()
            .zip(library)
            .map(|(baseline, library)| library.rps / baseline.rps)
            .collect();
        let median = median_of(&mut ratios);
        Self {
            median,
            low: ratios.first().copied().unwrap_or_default(),
            high: ratios.last().copied().unwrap_or_default(),
        }
    }
}

/// The median of `values`, which it leaves sorted: the middle one, or the mean of the
/// middle two.
fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn measure(release: &Path, target: &Target, options: &Options) -> Result<Vec<RouteResult>, String> {
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
        .map(|(route, (baseline, library))| {
            let ratios = Ratios::of(&baseline, &library);
            (*route, median(&baseline), median(&library), ratios)
        })
        .collect())
}

fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = samples.iter().map(f).collect();
        median_of(&mut values)
    };
    let mut commands: Vec<f64> = samples.iter().filter_map(|s| s.commands).collect();
    Sample {
        rps: pick(|s| s.rps),
        requests: pick(|s| s.requests as f64) as u64,
        cpu_us: pick(|s| s.cpu_us),
        p50_us: pick(|s| s.p50_us),
        p99_us: pick(|s| s.p99_us),
        errors: samples.iter().map(|s| s.errors).sum(),
        commands: (!commands.is_empty()).then(|| median_of(&mut commands)),
    }
}

/// A bench server pinned to CPU 0.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start(binary: &Path, store_url: &str) -> Result<Self, String> {
        let port = services::free_port()?;
        let child = Command::new("taskset")
            .args(["-c", SERVER_CPU])
            .arg(binary)
            .env("PORT", port.to_string())
            .env("WORKERS", "1")
            .env("SESSION_SECRET", SECRET)
            .env("SESSION_STORE_URL", store_url)
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || server.child.try_wait().ok().flatten().is_some() {
                return Err(format!(
                    "{} did not start with {store_url}",
                    binary.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The CPU time the server has used so far (user + system), from `/proc`.
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 12th and
        // 13th of those, in clock ticks (100 per second on Linux).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    /// `count` sessions made with `/new`, as `name=value` cookie pairs (none for a server
    /// without sessions).
    fn sessions(&self, count: usize) -> Result<Vec<String>, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        let request = "GET /new HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let mut cookies = Vec::with_capacity(count);
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        for _ in 0..count {
            stream
                .write_all(request.as_bytes())
                .map_err(|e| e.to_string())?;
            // Read one whole response: headers, then content-length bytes.
            loop {
                if let Some(response) = parse_response(&buffer) {
                    // The no-session baseline sets none; its requests then carry none.
                    cookies.extend(response.cookie);
                    buffer.drain(..response.len);
                    break;
                }
                let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the server closed the connection".to_owned());
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
        }
        Ok(cookies)
    }
}

/// Cookies shaped like the library's (`session=<43 chars>.<43 chars>`), for a baseline
/// that has no sessions: both servers then parse requests of the same size.
fn lookalike_cookies(count: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ALPHABET[(state % 64) as usize] as char
    };
    (0..count)
        .map(|_| {
            let id: String = (0..43).map(|_| next()).collect();
            let signature: String = (0..43).map(|_| next()).collect();
            format!("session={id}.{signature}")
        })
        .collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs wrk on CPU 1 against one route, each request with a random one of `cookies`.
fn wrk(port: u16, route: &str, cookies: &[String], seconds: u64) -> Result<Sample, String> {
    let script = state_dir().join("bench").join("wrk.lua");
    let mut lua = String::from("local cookies = {\n");
    for cookie in cookies {
        let _ = writeln!(lua, "  {cookie:?},");
    }
    lua.push_str(
        "}\nrequest = function()\n  if #cookies == 0 then return wrk.format(\"GET\") end\n  \
         return wrk.format(\"GET\", nil, { Cookie = cookies[math.random(#cookies)] })\nend\n",
    );
    std::fs::write(&script, lua).map_err(|e| e.to_string())?;
    let output = Command::new("taskset")
        .args(["-c", LOAD_CPU, "wrk", "-t1", "-c32", "--latency"])
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}{route}"))
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).ok_or_else(|| format!("unexpected wrk output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Sample> {
    let number = |prefix: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    let latency = |percentile: &str| -> Option<f64> {
        let value = number(percentile)?;
        let (digits, factor) = if let Some(v) = value.strip_suffix("us") {
            (v, 1.0)
        } else if let Some(v) = value.strip_suffix("ms") {
            (v, 1_000.0)
        } else {
            (value.strip_suffix('s')?, 1_000_000.0)
        };
        Some(digits.parse::<f64>().ok()? * factor)
    };
    let mut errors = number("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(socket) = number("Socket errors:") {
        errors += socket
            .split(',')
            .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    // "  136532 requests in 2.00s, 12.34MB read"
    let requests = text.lines().find_map(|l| {
        let (count, rest) = l.trim().split_once(' ')?;
        rest.starts_with("requests in")
            .then(|| count.parse().ok())?
    })?;
    Some(Sample {
        requests,
        rps: number("Requests/sec:")?.parse().ok()?,
        p50_us: latency("50%")?,
        p99_us: latency("99%")?,
        errors,
        cpu_us: 0.0,
        commands: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_parses() {
        let text = "  Latency Distribution\n     50%  420.00us\n     75%  1.00ms\n     99%    1.93ms\n  \
                    146092 requests in 2.10s, 12.34MB read\n  \
                    Socket errors: connect 0, read 2, write 1, timeout 0\n  Non-2xx or 3xx responses: 3\n\
                    Requests/sec:  69566.27\n";
        let sample = parse_wrk(text).unwrap();
        assert_eq!(sample.rps, 69566.27);
        assert_eq!(sample.requests, 146_092);
        assert_eq!(sample.p50_us, 420.0);
        assert_eq!(sample.p99_us, 1930.0);
        assert_eq!(sample.errors, 6);
    }

    #[test]
    fn ratios_pair_each_round_with_its_own_baseline() {
        let rps = |values: &[f64]| -> Vec<Sample> {
            values
                .iter()
                .map(|&rps| Sample {
                    rps,
                    ..Sample::default()
                })
                .collect()
        };
        // One fast stretch of the machine (round 2) would make the ratio of the medians
        // 270 / 200 = 1.35; the rounds' own ratios are 0.95, 1.5 and 0.9.
        let ratios = Ratios::of(&rps(&[100.0, 200.0, 300.0]), &rps(&[95.0, 300.0, 270.0]));
        assert_eq!(
            ratios,
            Ratios {
                median: 0.95,
                low: 0.9,
                high: 1.5
            }
        );
        let even = Ratios::of(&rps(&[100.0, 100.0]), &rps(&[90.0, 80.0]));
        assert!((even.median - 0.85).abs() < 1e-9, "{even:?}");
    }
}
