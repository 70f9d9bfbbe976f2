//! `cargo xtask soak`: mixed session traffic against the `bench` app for minutes on end,
//! checking every answer, with the server's memory over time.
//!
//! Each client thread keeps its own sessions, so it knows what every counter must be:
//! `/read` must answer it, `/incr` one more. Churn logs a session out and starts a new
//! one in its place, so the store holds a bounded number of sessions however long the
//! run. A wrong counter, a status other than 200 or a broken connection is an error.
//! The run fails on any error, or when the server's resident memory grew by 10 % or more
//! between the end of the warm-up and the end of the run.

use std::io::Write as _;
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_testkit::http::{read_response, Response};

use crate::bench::{default_file_dir, Server, Target};
use crate::process::{root, run, state_dir};

/// Sessions each client thread keeps.
const SESSIONS_PER_CLIENT: usize = 16;
/// The longest run: a day.
const MAX_MINUTES: f64 = 24.0 * 60.0;

/// The largest growth of the server's memory after warm-up that passes.
const MAX_GROWTH: f64 = 0.10;

struct Options {
    store: String,
    minutes: f64,
    clients: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        store: String::new(),
        minutes: 10.0,
        clients: 8,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--store" => options.store = value("--store")?,
            "--minutes" => {
                options.minutes = value("--minutes")?
                    .parse()
                    .ok()
                    .filter(|m: &f64| *m > 0.0 && *m <= MAX_MINUTES)
                    .ok_or(format!(
                        "--minutes takes a number above 0, at most {MAX_MINUTES}"
                    ))?
            }
            "--clients" => {
                options.clients = value("--clients")?
                    .parse()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or("--clients takes a positive number")?
            }
            other => return Err(format!("unknown soak option `{other}`")),
        }
    }
    if options.store.is_empty() {
        return Err("soak needs --store NAME|URL (redis, file, postgres, ... or a URL)".into());
    }
    Ok(options)
}

/// What all client threads have seen so far.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
}

pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    run(Command::new("cargo").args([
        "build",
        "--release",
        "--locked",
        "-p",
        "bench",
        "--bin",
        "bench",
    ]))?;
    let scratch = state_dir().join("soak");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let target = Target::prepare(&options.store, &scratch, &default_file_dir())?;
    let result = soak(&options, &target);
    target.finish();
    result
}

/// The run itself, against a prepared store.
fn soak(options: &Options, target: &Target) -> Result<(), String> {
    let binary = root().join("target").join("release").join("bench");
    let server = Server::start(&binary, &target.library_url)?;
    let pid = server.child.id();
    println!(
        "soak: {} for {} min, {} clients; every 30 s: requests per second, errors, server RSS",
        target.label, options.minutes, options.clients
    );

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..options.clients)
        .map(|n| {
            let (counters, stop, port) = (Arc::clone(&counters), Arc::clone(&stop), server.port);
            std::thread::spawn(move || client(port, n as u64, &counters, &stop))
        })
        .collect();

    let started = Instant::now();
    let length = Duration::from_secs_f64(options.minutes * 60.0);
    let warm_up = (length / 10).min(Duration::from_secs(60));
    // Resident memory after warm-up, sampled every 30 s.
    let mut samples: Vec<u64> = Vec::new();
    let mut last = (Instant::now(), 0);
    while started.elapsed() < length {
        std::thread::sleep(Duration::from_secs(30).min(length.saturating_sub(started.elapsed())));
        let rss = rss_kib(pid).ok_or("cannot read the server's memory: has it exited?")?;
        if started.elapsed() >= warm_up {
            samples.push(rss);
        }
        let requests = counters.requests.load(Ordering::Relaxed);
        let rate = (requests - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), requests);
        let elapsed = started.elapsed().as_secs();
        println!(
            "{:>3}:{:02}  {rate:>8.0} req/s  errors {:>4}  RSS {:>7.1} MiB",
            elapsed / 60,
            elapsed % 60,
            counters.errors.load(Ordering::Relaxed),
            rss as f64 / 1024.0
        );
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
    samples.push(rss_kib(pid).ok_or("cannot read the server's memory: has it exited?")?);
    drop(server);

    let requests = counters.requests.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    // The first sample after warm-up against the largest of the last three: one low
    // sample at the end cannot hide growth.
    let warm_rss = samples[0].max(1);
    let final_rss = samples
        .iter()
        .rev()
        .take(3)
        .copied()
        .max()
        .unwrap_or(warm_rss);
    let peak_rss = samples.iter().copied().max().unwrap_or(warm_rss);
    let growth = final_rss as f64 / warm_rss as f64 - 1.0;
    println!(
        "soak: {requests} requests, {errors} errors; RSS {:.1} MiB after warm-up, {:.1} MiB at the end ({:+.1} %), peak {:.1} MiB",
        warm_rss as f64 / 1024.0,
        final_rss as f64 / 1024.0,
        growth * 100.0,
        peak_rss as f64 / 1024.0
    );
    if errors > 0 {
        return Err(format!("{errors} errors (see the lines above)"));
    }
    if growth >= MAX_GROWTH {
        return Err(format!(
            "the server's memory grew by {:.1} % after warm-up",
            growth * 100.0
        ));
    }
    Ok(())
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// One session this client owns: its cookie and what its counter must be.
struct Owned {
    cookie: String,
    counter: i64,
}

/// One client thread: its own connection and sessions, until `stop`.
fn client(port: u16, seed: u64, counters: &Counters, stop: &AtomicBool) {
    let mut random = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let mut connection = Connection::new(port);
    let mut sessions: Vec<Owned> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let outcome = if sessions.len() < SESSIONS_PER_CLIENT {
            connection.start_session().map(|owned| sessions.push(owned))
        } else {
            let slot = (next() % SESSIONS_PER_CLIENT as u64) as usize;
            match next() % 100 {
                0..=59 => connection.check("/read", &mut sessions[slot], 0),
                60..=84 => connection.check("/incr", &mut sessions[slot], 1),
                _ => connection.churn(&mut sessions[slot]),
            }
        };
        counters
            .requests
            .fetch_add(std::mem::take(&mut connection.sent), Ordering::Relaxed);
        if let Err(error) = outcome {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: {error}");
            connection.stream = None;
            // A session whose state is now unknown is replaced rather than checked.
            sessions.clear();
        }
    }
}

/// A client's keep-alive connection, opened again after an error.
struct Connection {
    stream: Option<TcpStream>,
    port: u16,
    /// Requests sent since the caller last took the count.
    sent: u64,
}

impl Connection {
    fn new(port: u16) -> Self {
        Self {
            stream: None,
            port,
            sent: 0,
        }
    }

    /// `/read` or `/incr` on a session: the answer must be its counter plus `step`.
    fn check(&mut self, route: &str, owned: &mut Owned, step: i64) -> Result<(), String> {
        let response = self.request(route, Some(&owned.cookie))?;
        owned.counter += step;
        if response.body != owned.counter.to_string() {
            return Err(format!(
                "{route} answered {:?} where the counter is {}",
                response.body, owned.counter
            ));
        }
        Ok(())
    }

    /// Logs a session out, checks that it is gone, and starts a new one in its place.
    fn churn(&mut self, owned: &mut Owned) -> Result<(), String> {
        let response = self.request("/logout", Some(&owned.cookie))?;
        if !response.cookie.as_deref().is_some_and(|c| c.ends_with('=')) {
            return Err(format!(
                "/logout did not remove the cookie (Set-Cookie {:?})",
                response.cookie
            ));
        }
        let after = self.request("/read", Some(&owned.cookie))?;
        if after.body != "0" {
            return Err(format!(
                "a logged-out session still answers: /read gave {:?}",
                after.body
            ));
        }
        *owned = self.start_session()?;
        Ok(())
    }

    fn start_session(&mut self) -> Result<Owned, String> {
        let response = self.request("/new", None)?;
        let cookie = response.cookie.ok_or("/new set no cookie")?;
        Ok(Owned { cookie, counter: 0 })
    }

    /// One request; anything but a complete 200 answer is an error.
    fn request(&mut self, route: &str, cookie: Option<&str>) -> Result<Response, String> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(("127.0.0.1", self.port))
                    .map_err(|e| format!("connect: {e}"))?;
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
                self.stream.insert(stream)
            }
        };
        let cookie_line = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
        let text = format!("GET {route} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie_line}\r\n");
        self.sent += 1;
        stream
            .write_all(text.as_bytes())
            .map_err(|e| format!("{route}: {e}"))?;
        let mut buffer = Vec::new();
        let response = read_response(stream, &mut buffer).map_err(|e| format!("{route}: {e}"))?;
        if response.status != 200 {
            return Err(format!("{route} answered {}", response.status));
        }
        Ok(response)
    }
}
