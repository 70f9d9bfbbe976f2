//! `PORT`, `WORKERS`, `SESSION_SECRET` and `SESSION_STORE_URL`.

use std::net::{Ipv4Addr, SocketAddr};

use session_core::{Keyring, MIN_SECRET_BYTES};

/// The default store: files in `./.sessions`.
pub const DEFAULT_STORE_URL: &str = "file://.sessions";

/// What the example servers read from the environment.
#[derive(Debug)]
pub struct Settings {
    /// `127.0.0.1:PORT` (default 8080).
    pub addr: SocketAddr,
    /// actix workers (default: the number of CPUs).
    pub workers: usize,
    /// From `SESSION_SECRET`, or a random one when it is unset.
    pub keyring: Keyring,
    /// `SESSION_STORE_URL` (default `file://.sessions`).
    pub store_url: String,
}

impl Settings {
    /// Reads the environment; an invalid value is an error message for the user.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Settings::from_env`] with another source of variables.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let port = match var("PORT") {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| format!("PORT must be a port number, not `{port}`"))?,
            None => 8080,
        };
        let workers = match var("WORKERS") {
            Some(workers) => workers
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("WORKERS must be a positive number, not `{workers}`"))?,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let keyring = match var("SESSION_SECRET") {
            Some(secret) => Keyring::new([secret.as_bytes()]).map_err(|_| {
                format!("SESSION_SECRET must have at least {MIN_SECRET_BYTES} bytes")
            })?,
            None => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| format!("no random secret: {e}"))?;
                tracing::warn!(
                    "SESSION_SECRET is not set: using a random secret, so sessions die with this process"
                );
                Keyring::new([secret]).map_err(|e| e.to_string())?
            }
        };
        Ok(Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            workers,
            keyring,
            store_url: var("SESSION_STORE_URL").unwrap_or_else(|| DEFAULT_STORE_URL.to_owned()),
        })
    }
}

/// Logs to stderr, `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        assert!(s.workers >= 1);
        assert_eq!(s.store_url, "file://.sessions");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        assert!(settings(&[("PORT", "http")]).unwrap_err().contains("PORT"));
        assert!(settings(&[("WORKERS", "0")])
            .unwrap_err()
            .contains("WORKERS"));
        let short = settings(&[("SESSION_SECRET", "short")]).unwrap_err();
        assert!(short.contains("at least 32 bytes"), "{short}");
        assert!(
            !short.contains("short\""),
            "the secret leaked into the message"
        );
    }
}
