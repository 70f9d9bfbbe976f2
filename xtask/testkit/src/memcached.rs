//! A private `memcached` for tests that need servers of their own (two at once, or one to
//! stop), and the `stats` they read.

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::launcher::backends::Backend;
use crate::launcher::{Error, Server};

/// A `memcached` on a free loopback port with a 2 MiB item limit, stopped when dropped.
#[derive(Debug)]
pub struct MemcachedServer(Server);

impl MemcachedServer {
    /// Starts one and waits until it listens.
    pub fn start() -> Result<Self, Error> {
        Server::start(Backend::Memcached.spec()?).map(Self)
    }

    /// One started with `-C`: its items have no CAS, so it cannot hold revisions.
    pub fn start_without_cas() -> Result<Self, Error> {
        Server::start(Backend::Memcached.spec()?.args(["-C"])).map(Self)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.0.address()
    }

    /// Kills the server.
    pub fn stop(&mut self) -> Result<(), Error> {
        self.0.kill()
    }

    /// Starts the server again on the same port (empty: it keeps nothing).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.0.restart()
    }

    /// The number of items the server holds (`stats` `curr_items`).
    pub fn items(&self) -> io::Result<u64> {
        stat(&self.address(), "curr_items")
    }
}

/// One value from a server's `stats`.
pub fn stat(address: &str, name: &str) -> io::Result<u64> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"stats\r\n")?;
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    while !text.ends_with("END\r\n") {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("STAT {name} ")))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no {name} in stats")))
}
