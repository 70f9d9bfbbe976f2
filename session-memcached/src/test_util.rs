//! A private `memcached` for tests that need servers of their own (two at once, or one to
//! stop). Needs `memcached` on PATH (`cargo xtask test` installs it).
#![allow(missing_docs)]

use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `memcached` on a free loopback port with a 2 MiB item limit, stopped when dropped.
#[derive(Debug)]
pub struct MemcachedServer {
    child: Option<Child>,
    port: u16,
}

impl MemcachedServer {
    pub fn start() -> io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = Self { child: None, port };
        server.restart()?;
        Ok(server)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let port = self.port.to_string();
        let child = Command::new("memcached")
            .args([
                "-u",
                "root",
                "-l",
                "127.0.0.1",
                "-p",
                &port,
                "-m",
                "64",
                "-I",
                "2m",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run memcached (install it, or run `cargo xtask test`): {e}"),
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::other("memcached did not start within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
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

impl Drop for MemcachedServer {
    fn drop(&mut self) {
        self.stop();
    }
}
