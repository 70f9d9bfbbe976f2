//! A private `redis-server` for tests that must stop, restart or count commands on a
//! server nobody else uses. Needs `redis-server` on PATH (`cargo xtask test` installs it).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::io;
use std::net::TcpStream;
use std::time::Duration;

use session_core::test_suite::LocalServer;

/// A `redis-server` on a free loopback port that keeps nothing on disk, stopped when
/// dropped.
#[derive(Debug)]
pub struct RedisServer(LocalServer);

impl RedisServer {
    pub fn start() -> io::Result<Self> {
        let args = &[
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
        ];
        LocalServer::start("redis-server", args).map(Self)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.0.port())
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        self.0.stop();
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing answers.
    pub fn freeze(&self) -> io::Result<()> {
        self.0.signal("STOP")
    }

    /// Lets a frozen server run again (`SIGCONT`).
    pub fn thaw(&self) -> io::Result<()> {
        self.0.signal("CONT")
    }

    /// Starts the server again on the same port (empty: it keeps nothing on disk).
    pub fn restart(&mut self) -> io::Result<()> {
        self.0.restart()
    }

    /// The total number of commands the server has executed, from `INFO commandstats`,
    /// not counting the `INFO` commands this method itself sends. Commands that scripts
    /// call count too (see [`RedisServer::calls`]).
    pub fn commands(&self) -> io::Result<u64> {
        Ok(self.calls()?.values().sum())
    }

    /// The number of commands clients sent, as [`RedisServer::commands`] without those
    /// that `RedisStore`'s conditional-write script called: each run of it calls `GETRANGE`
    /// and one more command (two more only for a pre-revision record that is empty), and
    /// nothing else sends `GETRANGE`.
    pub fn client_commands(&self) -> io::Result<u64> {
        let calls = self.calls()?;
        let script_calls = 2 * calls.get("getrange").copied().unwrap_or(0);
        Ok(calls.values().sum::<u64>() - script_calls)
    }

    /// The calls of each command the server has executed, by name (`get`, `evalsha`,
    /// `client|setinfo`, ...), from `INFO commandstats`, without `info`. A script's
    /// invocation counts under `evalsha` or `eval`, and each command it calls under its own
    /// name; an invocation answered `NOSCRIPT` counts under `evalsha` too.
    pub fn calls(&self) -> io::Result<BTreeMap<String, u64>> {
        use std::io::{Read as _, Write as _};
        let mut stream = TcpStream::connect(("127.0.0.1", self.0.port()))?;
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
        let text = String::from_utf8_lossy(&reply);
        Ok(text
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.strip_prefix("calls=")?.split(',').next()?;
                Some((name.to_owned(), calls.parse::<u64>().ok()?))
            })
            .filter(|(name, _)| name != "info")
            .collect())
    }
}
