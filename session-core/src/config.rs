//! Session configuration, with the defaults of Flask-Session where they are secure.

use std::time::Duration;

use crate::codec::Codec;
use crate::cookie::{CookieSettings, SameSite};
use crate::id::IdLength;
use crate::keyring::Keyring;
use crate::store::DEFAULT_KEY_PREFIX;

/// Flask's `PERMANENT_SESSION_LIFETIME`: 31 days.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// How long after a refresh another request may pass without extending expiry again.
pub const DEFAULT_REFRESH_THRESHOLD: Duration = Duration::from_secs(60);

/// A configuration that cannot work, or would be insecure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A secret has fewer than [`MIN_SECRET_BYTES`](crate::keyring::MIN_SECRET_BYTES) bytes.
    #[error("session secret has {0} bytes; at least 32 are required")]
    SecretTooShort(usize),
    /// The keyring was given no secret.
    #[error("at least one session secret is required")]
    NoSecret,
    /// The id length is outside 16..=64 bytes.
    #[error("session id length of {0} bytes is outside 16..=64")]
    IdLength(usize),
    /// The cookie name is empty or has characters a cookie name cannot have.
    #[error("`{0}` is not a valid cookie name")]
    CookieName(String),
    /// A cookie attribute has characters that would break the `Set-Cookie` header.
    #[error("cookie {0} contains characters not allowed in a cookie attribute")]
    CookieAttribute(&'static str),
    /// The cookie's name prefix demands attributes the settings contradict.
    #[error("a cookie named `{name}` requires {requirement}")]
    CookiePrefix {
        /// The cookie name.
        name: String,
        /// What the prefix requires.
        requirement: &'static str,
    },
    /// `SameSite=None` without `Secure`, which browsers reject.
    #[error("SameSite=None requires a Secure cookie")]
    SameSiteNoneNeedsSecure,
    /// A lifetime or timeout of zero.
    #[error("the session {0} must be longer than zero")]
    ZeroDuration(&'static str),
}

/// Everything a [`SessionManager`](crate::SessionManager) needs besides the store.
///
/// | Flask-Session | here | default |
/// |---|---|---|
/// | `SECRET_KEY`, `SESSION_USE_SIGNER` | the [`Keyring`] | signing on |
/// | `SESSION_PERMANENT` | [`permanent`](ConfigBuilder::permanent) | `true` |
/// | `PERMANENT_SESSION_LIFETIME` | [`lifetime`](ConfigBuilder::lifetime) | 31 days |
/// | `SESSION_REFRESH_EACH_REQUEST` | [`refresh_each_request`](ConfigBuilder::refresh_each_request) | `true` (touch only) |
/// | `SESSION_KEY_PREFIX` | [`key_prefix`](ConfigBuilder::key_prefix) | `"session:"` |
/// | `SESSION_ID_LENGTH` | [`id_length`](ConfigBuilder::id_length) | 32 bytes |
/// | `SESSION_SERIALIZATION_FORMAT` | [`codec`](ConfigBuilder::codec) | JSON |
/// | `SESSION_COOKIE_*` | `cookie_*` | `session`, HttpOnly, SameSite=Lax, Path=/ |
///
/// ```
/// use std::time::Duration;
/// use session_core::{Config, Keyring};
///
/// let keyring = Keyring::new([b"a secret of at least thirty-two bytes!".as_slice()])?;
/// let config = Config::builder(keyring)
///     .cookie_name("__Host-session")
///     .lifetime(Duration::from_secs(3600))
///     .absolute_timeout(Duration::from_secs(12 * 3600))
///     .build()?;
/// assert!(config.cookie().name().starts_with("__Host-"));
/// # Ok::<(), session_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) keyring: Keyring,
    pub(crate) cookie: CookieSettings,
    pub(crate) lifetime: Duration,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) permanent: bool,
    pub(crate) refresh_each_request: bool,
    pub(crate) refresh_threshold: Duration,
    pub(crate) key_prefix: String,
    pub(crate) id_length: IdLength,
    pub(crate) codec: Codec,
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] checks it.
#[derive(Clone, Debug)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
    secure: Option<bool>,
    id_length: usize,
}

impl Config {
    /// Starts a configuration with the defaults in the table above.
    pub fn builder(keyring: Keyring) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                keyring,
                cookie: CookieSettings::default(),
                lifetime: DEFAULT_LIFETIME,
                absolute_timeout: None,
                permanent: true,
                refresh_each_request: true,
                refresh_threshold: DEFAULT_REFRESH_THRESHOLD,
                key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
                id_length: IdLength::default(),
                codec: Codec::default(),
            },
            secure: None,
            id_length: IdLength::default().bytes(),
        }
    }

    /// The cookie attributes.
    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }

    /// The idle timeout: a session unused this long is gone.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The absolute timeout, counted from the session's creation, if any.
    pub fn absolute_timeout(&self) -> Option<Duration> {
        self.absolute_timeout
    }

    /// Whether new sessions are permanent.
    pub fn permanent(&self) -> bool {
        self.permanent
    }

    /// The store key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }
}

impl ConfigBuilder {
    /// The cookie name (default `session`). A `__Host-` name forces Secure and Path=/ and
    /// refuses a Domain; a `__Secure-` name forces Secure.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config.cookie.name = name.into();
        self
    }

    /// The cookie's Path (default `/`).
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.config.cookie.path = path.into();
        self
    }

    /// The cookie's Domain (default none: the exact host only).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.config.cookie.domain = Some(domain.into());
        self
    }

    /// Whether the cookie is sent over HTTPS only. Off by default so that the app works on
    /// `http://127.0.0.1` the first time; turn it on in production (or use a `__Host-`
    /// name, which turns it on).
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.secure = Some(secure);
        self
    }

    /// Whether scripts are kept from reading the cookie (default `true`).
    pub fn cookie_http_only(mut self, http_only: bool) -> Self {
        self.config.cookie.http_only = http_only;
        self
    }

    /// The cookie's SameSite (default `Lax`).
    pub fn cookie_same_site(mut self, same_site: SameSite) -> Self {
        self.config.cookie.same_site = same_site;
        self
    }

    /// Whether the cookie is Partitioned (CHIPS; default `false`).
    pub fn cookie_partitioned(mut self, partitioned: bool) -> Self {
        self.config.cookie.partitioned = partitioned;
        self
    }

    /// The idle timeout, which is also the permanent cookie's `Max-Age` (default 31 days).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.config.lifetime = lifetime;
        self
    }

    /// A timeout counted from the session's creation, however active it is (default none).
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.absolute_timeout = Some(timeout);
        self
    }

    /// Whether new sessions are permanent (default `true`); a handler can change it per
    /// session.
    pub fn permanent(mut self, permanent: bool) -> Self {
        self.config.permanent = permanent;
        self
    }

    /// Whether a request that reads but does not modify the session extends its expiry
    /// (default `true`). The data is never rewritten for it: the store's `touch` moves only
    /// the expiry.
    pub fn refresh_each_request(mut self, refresh: bool) -> Self {
        self.config.refresh_each_request = refresh;
        self
    }

    /// How much later than the stored expiry a refresh must move it before it is worth a
    /// `touch` (default 60 s), so a busy session is touched at most once per threshold.
    pub fn refresh_threshold(mut self, threshold: Duration) -> Self {
        self.config.refresh_threshold = threshold;
        self
    }

    /// The store key prefix (default `session:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// The number of random bytes in new ids (default 32, at least 16).
    pub fn id_length(mut self, bytes: usize) -> Self {
        self.id_length = bytes;
        self
    }

    /// How sessions are encoded in the store (default JSON).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.config.codec = codec;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let Self {
            mut config,
            secure,
            id_length,
        } = self;
        config.id_length = IdLength::new(id_length)?;
        if config.lifetime.is_zero() {
            return Err(ConfigError::ZeroDuration("lifetime"));
        }
        if config.absolute_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::ZeroDuration("absolute timeout"));
        }
        let cookie = &mut config.cookie;
        check_cookie_name(&cookie.name)?;
        check_attribute(&cookie.path, "path")?;
        if let Some(domain) = &cookie.domain {
            check_attribute(domain, "domain")?;
        }
        let prefix_requires_secure =
            cookie.name.starts_with("__Host-") || cookie.name.starts_with("__Secure-");
        cookie.secure = match secure {
            Some(false) if prefix_requires_secure => {
                return Err(prefix_error(&cookie.name, "Secure"));
            }
            Some(secure) => secure,
            None => prefix_requires_secure,
        };
        if cookie.name.starts_with("__Host-") {
            if cookie.path != "/" {
                return Err(prefix_error(&cookie.name, "Path=/"));
            }
            if cookie.domain.is_some() {
                return Err(prefix_error(&cookie.name, "no Domain"));
            }
        }
        if cookie.same_site == SameSite::None && !cookie.secure {
            return Err(ConfigError::SameSiteNoneNeedsSecure);
        }
        cookie.prepare();
        Ok(config)
    }
}

fn prefix_error(name: &str, requirement: &'static str) -> ConfigError {
    ConfigError::CookiePrefix {
        name: name.to_owned(),
        requirement,
    }
}

/// RFC 6265 token characters.
fn check_cookie_name(name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::CookieName(name.to_owned()))
    }
}

fn check_attribute(value: &str, what: &'static str) -> Result<(), ConfigError> {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b';')
    {
        Ok(())
    } else {
        Err(ConfigError::CookieAttribute(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ConfigBuilder {
        Config::builder(Keyring::new([[3u8; 32]]).unwrap())
    }

    #[test]
    fn defaults_follow_the_design() {
        let config = builder().build().unwrap();
        assert_eq!(config.lifetime(), DEFAULT_LIFETIME);
        assert!(config.permanent());
        assert!(config.refresh_each_request);
        assert_eq!(config.key_prefix(), "session:");
        assert_eq!(config.id_length.bytes(), 32);
        assert_eq!(config.codec, Codec::Json);
        let cookie = config.cookie();
        assert_eq!(cookie.name(), "session");
        assert!(cookie.http_only);
        assert_eq!(cookie.same_site, SameSite::Lax);
        assert_eq!(cookie.path, "/");
        assert_eq!(cookie.domain, None);
    }

    #[test]
    fn host_prefix_forces_secure_and_refuses_domain_and_path() {
        let config = builder().cookie_name("__Host-id").build().unwrap();
        assert!(config.cookie().secure);
        assert!(matches!(
            builder()
                .cookie_name("__Host-id")
                .cookie_secure(false)
                .build(),
            Err(ConfigError::CookiePrefix {
                requirement: "Secure",
                ..
            })
        ));
        assert!(matches!(
            builder()
                .cookie_name("__Host-id")
                .cookie_domain("example.com")
                .build(),
            Err(ConfigError::CookiePrefix {
                requirement: "no Domain",
                ..
            })
        ));
        assert!(matches!(
            builder()
                .cookie_name("__Host-id")
                .cookie_path("/app")
                .build(),
            Err(ConfigError::CookiePrefix {
                requirement: "Path=/",
                ..
            })
        ));
        assert!(
            builder()
                .cookie_name("__Secure-id")
                .build()
                .unwrap()
                .cookie()
                .secure
        );
    }

    #[test]
    fn invalid_settings_are_refused() {
        assert!(matches!(
            builder().cookie_name("a b").build(),
            Err(ConfigError::CookieName(_))
        ));
        assert!(matches!(
            builder().cookie_name("").build(),
            Err(ConfigError::CookieName(_))
        ));
        assert!(matches!(
            builder().cookie_path("/;evil").build(),
            Err(ConfigError::CookieAttribute("path"))
        ));
        assert!(matches!(
            builder().id_length(8).build(),
            Err(ConfigError::IdLength(8))
        ));
        assert!(matches!(
            builder().lifetime(Duration::ZERO).build(),
            Err(ConfigError::ZeroDuration(_))
        ));
        assert!(matches!(
            builder().cookie_same_site(SameSite::None).build(),
            Err(ConfigError::SameSiteNoneNeedsSecure)
        ));
        assert!(builder()
            .cookie_same_site(SameSite::None)
            .cookie_secure(true)
            .build()
            .is_ok());
    }
}
