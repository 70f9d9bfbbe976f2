//! A private `redis-server` for tests that must stop, restart, freeze or count commands on
//! a server nobody else uses.

use std::collections::BTreeMap;
use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::launcher::backends::Backend;
use crate::launcher::{Error, Server};

/// A `redis-server` on a free loopback port that keeps nothing on disk, stopped when
/// dropped.
#[derive(Debug)]
pub struct RedisServer(Server);

impl RedisServer {
    /// Starts one and waits until it listens.
    pub fn start() -> Result<Self, Error> {
        Server::start(Backend::Redis.spec()?).map(Self)
    }

    /// Starts a `valkey-server` instead (the one in `SESSION_TEST_VALKEY_SERVER_BIN`, which
    /// `cargo xtask test` fetches), for what differs on a server with `SET ... IFEQ`.
    pub fn start_valkey() -> Result<Self, Error> {
        Server::start(Backend::Valkey.spec()?).map(Self)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.0.address())
    }

    /// Kills the server.
    pub fn stop(&mut self) -> Result<(), Error> {
        self.0.kill()
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing answers.
    pub fn freeze(&self) -> Result<(), Error> {
        self.0.freeze()
    }

    /// Lets a frozen server run again (`SIGCONT`).
    pub fn thaw(&self) -> Result<(), Error> {
        self.0.thaw()
    }

    /// Starts the server again on the same port (empty: it keeps nothing on disk).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.0.restart()
    }

    /// The total number of commands the server has executed, from `INFO commandstats`,
    /// not counting the `INFO` commands this method itself sends. Commands that scripts
    /// call count too (see [`calls`]).
    pub fn commands(&self) -> io::Result<u64> {
        Ok(calls(self.0.port())?.values().sum())
    }

    /// The number of commands clients sent (see [`client_commands`]).
    pub fn client_commands(&self) -> io::Result<u64> {
        client_commands(self.0.port())
    }

    /// The calls of each command the server has executed (see [`calls`]).
    pub fn calls(&self) -> io::Result<BTreeMap<String, u64>> {
        calls(self.0.port())
    }

    /// Runs `operation`, and returns its output with the calls of each command the server
    /// executed meanwhile, the commands it did not execute left out.
    ///
    /// # Panics
    /// If the server's counts cannot be read: this is for tests.
    #[allow(clippy::expect_used)] // test machinery: a panic is the failure report
    pub async fn calls_during<F: std::future::Future>(
        &self,
        operation: F,
    ) -> (F::Output, BTreeMap<String, u64>) {
        let before = self.calls().expect("INFO commandstats");
        let output = operation.await;
        let mut after = self.calls().expect("INFO commandstats");
        for (name, calls) in before {
            if let Some(now) = after.get_mut(&name) {
                *now -= calls;
            }
        }
        after.retain(|_, calls| *calls > 0);
        (output, after)
    }
}

/// The number of commands clients sent the Redis on `port`, as the sum of [`calls`]
/// without those that `RedisStore`'s conditional-write script called: each run of it
/// calls `GETRANGE` and one more command (two more only for an empty value, which the
/// store never writes), and nothing else sends `GETRANGE`.
pub fn client_commands(port: u16) -> io::Result<u64> {
    let calls = calls(port)?;
    let script_calls = 2 * calls.get("getrange").copied().unwrap_or(0);
    calls
        .values()
        .sum::<u64>()
        .checked_sub(script_calls)
        .ok_or_else(|| io::Error::other("fewer commands than the script calls counted"))
}

/// The calls of each command the Redis on `port` has executed, by name (`get`, `evalsha`,
/// `client|setinfo`, ...), from `INFO commandstats`, without `info`. A script's invocation
/// counts under `evalsha` or `eval`, and each command it calls under its own name; an
/// invocation answered `NOSCRIPT` counts under `evalsha` too.
pub fn calls(port: u16) -> io::Result<BTreeMap<String, u64>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.write_all(b"INFO commandstats\r\n")?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    // A bulk string: `$<len>\r\n<body>\r\n`.
    loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some((header, body)) = text.split_once("\r\n") {
            let len: usize = header.trim_start_matches('$').parse().unwrap_or(0);
            if body.len() >= len + 2 {
                break;
            }
        }
    }
    Ok(parse_commandstats(&String::from_utf8_lossy(&reply)))
}

/// The `calls=` of each `cmdstat_<name>:` line, without `info`.
fn parse_commandstats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse::<u64>().ok()?))
        })
        .filter(|(name, _)| name != "info")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_give_the_calls_of_each_command_but_info() {
        let reply = "$160\r\n# Commandstats\r\ncmdstat_get:calls=3,usec=5,usec_per_call=1.67,rejected_calls=0,failed_calls=0\r\ncmdstat_client|setinfo:calls=2,usec=1\r\ncmdstat_info:calls=9,usec=1\r\n\r\n";
        let calls = parse_commandstats(reply);
        assert_eq!(
            calls.into_iter().collect::<Vec<_>>(),
            [("client|setinfo".to_owned(), 2), ("get".to_owned(), 3)]
        );
    }
}
