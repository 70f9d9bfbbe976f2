//! Session configuration, with the defaults of Flask-Session where they are secure.

use std::time::Duration;

use crate::codec::Codec;
use crate::cookie::{CookieSettings, SameSite};
use crate::id::{base64_len, IdLength, IdLengthError, MAX_ID_BYTES};
use crate::keyring::{Keyring, KeyringError};
use crate::store::{KeyScheme, DEFAULT_KEY_PREFIX};

/// Flask's `PERMANENT_SESSION_LIFETIME`: 31 days.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// How long after a refresh another request may pass without extending expiry again.
pub const DEFAULT_REFRESH_THRESHOLD: Duration = Duration::from_secs(60);

/// memcached's longest key, the tightest limit on a store key of any backend.
const MEMCACHED_MAX_KEY_BYTES: usize = 250;

/// The size of session-sql's key column on MySQL (`VARCHAR(255)`); PostgreSQL and SQLite
/// use unbounded `TEXT`.
const SQL_KEY_COLUMN_CHARS: usize = 255;

const _: () = assert!(
    Config::MAX_KEY_PREFIX_LEN + base64_len(MAX_ID_BYTES) <= SQL_KEY_COLUMN_CHARS,
    "a key with the longest prefix and id must fit the SQL key column"
);

/// The setting a [`ConfigError`] about a duration is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationSetting {
    /// [`ConfigBuilder::lifetime`].
    Lifetime,
    /// [`ConfigBuilder::absolute_timeout`].
    AbsoluteTimeout,
    /// [`ConfigBuilder::refresh_threshold`].
    RefreshThreshold,
}

impl std::fmt::Display for DurationSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Lifetime => "lifetime",
            Self::AbsoluteTimeout => "absolute timeout",
            Self::RefreshThreshold => "refresh threshold",
        })
    }
}

/// A configuration that cannot work, or would be insecure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The keyring could not be made; here so that one `?` serves a function that builds
    /// both the keyring and the configuration.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The id length is outside 16..=64 bytes.
    #[error(transparent)]
    IdLength(#[from] IdLengthError),
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
    ZeroDuration(DurationSetting),
    /// A lifetime, timeout or threshold longer than [`Config::MAX_DURATION`].
    #[error("the session {0} is longer than the maximum of 100 years")]
    DurationTooLong(DurationSetting),
    /// `Partitioned` without `Secure`, which browsers reject.
    #[error("a Partitioned cookie requires Secure")]
    PartitionedNeedsSecure,
    /// The store key prefix has a character other than printable ASCII, or a space.
    #[error("the store key prefix may only have printable ASCII characters other than space")]
    KeyPrefixCharacters,
    /// The store key prefix has more than [`Config::MAX_KEY_PREFIX_LEN`] bytes.
    #[error(
        "the store key prefix has {0} bytes; at most {max} leave room for the id in every store's keys",
        max = Config::MAX_KEY_PREFIX_LEN
    )]
    KeyPrefixTooLong(usize),
    /// The HTTP status an adapter answers when the store fails is not an error status
    /// (4xx or 5xx): a browser would take the failed request for a success or a redirect.
    #[error("the status answered when the store fails must be 4xx or 5xx, not {0}")]
    ErrorStatus(u16),
}

/// Everything a [`SessionManager`](crate::adapter::SessionManager) needs besides the store.
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
/// | | [`key_scheme`](ConfigBuilder::key_scheme) | ids hashed at rest |
/// | | [`device_info`](ConfigBuilder::device_info) | not kept |
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
    pub(crate) key_scheme: KeyScheme,
    pub(crate) device_info: DeviceInfo,
}

/// Whether a session logged in with `log_in` keeps the browser's `User-Agent` and address,
/// for a devices page.
///
/// # Default
/// [`DeviceInfo::Omit`]: both are personal data, kept only when the application asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceInfo {
    /// Keep neither.
    #[default]
    Omit,
    /// Keep the `User-Agent` (cut to [`Device::MAX_USER_AGENT`](crate::Device::MAX_USER_AGENT)
    /// bytes) and the client's address with the session, from the request that logged in.
    Keep,
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
    /// The longest lifetime, absolute timeout or refresh threshold [`ConfigBuilder::build`]
    /// accepts: 100 years (of 365.25 days).
    ///
    /// Longer than any session needs, and short enough that every time computed from it
    /// (now plus a lifetime, a creation time plus the absolute timeout) is representable,
    /// and that the cookie's `Expires` stays within HTTP dates, which end with the year
    /// 9999.
    pub const MAX_DURATION: Duration = Duration::from_secs(36_525 * 24 * 60 * 60);

    /// The longest store key prefix, in bytes: 164.
    ///
    /// A store key is the prefix followed by the id, and the longest id (64 random bytes,
    /// [`MAX_ID_BYTES`](crate::MAX_ID_BYTES)) has 86 characters. memcached keys have at
    /// most 250 bytes, and session-sql's MySQL key column holds 255 characters, so a
    /// prefix of this length fits every backend whatever the id length. session-fs
    /// `%XX`-escapes characters unsafe in a file name, which can triple a prefix's length;
    /// a key whose escaped name would pass a file name's 255 bytes gets a shortened name
    /// ending in the key's SHA-256 instead, so every accepted prefix works there too.
    pub const MAX_KEY_PREFIX_LEN: usize = MEMCACHED_MAX_KEY_BYTES - base64_len(MAX_ID_BYTES);

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
                key_scheme: KeyScheme::default(),
                device_info: DeviceInfo::default(),
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

    /// How ids appear in store keys.
    pub fn key_scheme(&self) -> KeyScheme {
        self.key_scheme
    }

    /// Whether logins keep the browser's `User-Agent` and address.
    pub fn device_info(&self) -> DeviceInfo {
        self.device_info
    }
}

impl ConfigBuilder {
    /// The cookie name (default `session`). A `__Host-` name forces Secure and Path=/ and
    /// refuses a Domain; a `__Secure-` name forces Secure. The prefixes are recognised in
    /// any letter case (`__HOST-`, `__secure-`), as browsers do.
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

    /// Whether the cookie is Partitioned (CHIPS; default `false`). Requires a Secure
    /// cookie: browsers drop a Partitioned one that is not.
    pub fn cookie_partitioned(mut self, partitioned: bool) -> Self {
        self.config.cookie.partitioned = partitioned;
        self
    }

    /// The idle timeout, which is also the permanent cookie's `Max-Age` (default 31 days);
    /// more than zero and at most [`Config::MAX_DURATION`].
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.config.lifetime = lifetime;
        self
    }

    /// A timeout counted from the session's creation, however active it is (default none);
    /// more than zero and at most [`Config::MAX_DURATION`].
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
    /// (default `true`). The data is never changed for it: the store's `touch` moves only
    /// the expiry. A permanent cookie is sent again, so that its `Max-Age` follows, once
    /// per refresh threshold, together with one conditional write of the unchanged record
    /// that notes when it was sent.
    pub fn refresh_each_request(mut self, refresh: bool) -> Self {
        self.config.refresh_each_request = refresh;
        self
    }

    /// How much later than the stored expiry a refresh must move it before it is worth a
    /// `touch` (default 60 s), so a busy session is touched at most once per threshold,
    /// and how old a permanent cookie must be before it is sent again; at most
    /// [`Config::MAX_DURATION`].
    pub fn refresh_threshold(mut self, threshold: Duration) -> Self {
        self.config.refresh_threshold = threshold;
        self
    }

    /// The store key prefix (default `session:`): printable ASCII without spaces, as
    /// memcached keys require, and at most [`Config::MAX_KEY_PREFIX_LEN`] bytes.
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

    /// How ids appear in store keys (default [`KeyScheme::HashedId`]: a digest, so that
    /// nothing read from a store logs anyone in). [`KeyScheme::PlainId`] is for tools
    /// that look sessions up by the cookie's id.
    pub fn key_scheme(mut self, scheme: KeyScheme) -> Self {
        self.config.key_scheme = scheme;
        self
    }

    /// Whether logins keep the browser's `User-Agent` and address for a devices page
    /// (default [`DeviceInfo::Omit`]).
    pub fn device_info(mut self, device_info: DeviceInfo) -> Self {
        self.config.device_info = device_info;
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
            return Err(ConfigError::ZeroDuration(DurationSetting::Lifetime));
        }
        if config.absolute_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::ZeroDuration(DurationSetting::AbsoluteTimeout));
        }
        for (duration, what) in [
            (Some(config.lifetime), DurationSetting::Lifetime),
            (config.absolute_timeout, DurationSetting::AbsoluteTimeout),
            (
                Some(config.refresh_threshold),
                DurationSetting::RefreshThreshold,
            ),
        ] {
            if duration.is_some_and(|d| d > Config::MAX_DURATION) {
                return Err(ConfigError::DurationTooLong(what));
            }
        }
        check_key_prefix(&config.key_prefix)?;
        let cookie = &mut config.cookie;
        check_cookie_name(&cookie.name)?;
        check_attribute(&cookie.path, "path")?;
        if let Some(domain) = &cookie.domain {
            check_attribute(domain, "domain")?;
        }
        let host_prefix = has_prefix(&cookie.name, "__Host-");
        let prefix_requires_secure = host_prefix || has_prefix(&cookie.name, "__Secure-");
        cookie.secure = match secure {
            Some(false) if prefix_requires_secure => {
                return Err(prefix_error(&cookie.name, "Secure"));
            }
            Some(secure) => secure,
            None => prefix_requires_secure,
        };
        if host_prefix {
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
        if cookie.partitioned && !cookie.secure {
            return Err(ConfigError::PartitionedNeedsSecure);
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

/// Whether `name` starts with the cookie name prefix `prefix`, in any letter case: browsers
/// apply a prefix's rules to `__HOST-` as to `__Host-`, so its rules must hold for both.
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Printable ASCII without spaces (memcached's rule for keys, and within the MySQL key
/// column's ASCII), short enough for the longest key to fit every store.
fn check_key_prefix(prefix: &str) -> Result<(), ConfigError> {
    if !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::KeyPrefixCharacters);
    }
    if prefix.len() > Config::MAX_KEY_PREFIX_LEN {
        return Err(ConfigError::KeyPrefixTooLong(prefix.len()));
    }
    Ok(())
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
    fn durations_are_bounded() {
        let max = Config::MAX_DURATION;
        assert_eq!(
            max,
            Duration::from_secs(100 * 365 * 24 * 3600 + 25 * 24 * 3600)
        );
        let config = builder()
            .lifetime(max)
            .absolute_timeout(max)
            .refresh_threshold(max)
            .build()
            .unwrap();
        assert_eq!(config.lifetime(), max);
        assert!(builder().refresh_threshold(Duration::ZERO).build().is_ok());
        let over = max + Duration::from_nanos(1);
        for (what, builder) in [
            (DurationSetting::Lifetime, builder().lifetime(over)),
            (
                DurationSetting::AbsoluteTimeout,
                builder().absolute_timeout(over),
            ),
            (
                DurationSetting::RefreshThreshold,
                builder().refresh_threshold(over),
            ),
            (DurationSetting::Lifetime, builder().lifetime(Duration::MAX)),
        ] {
            assert_eq!(
                builder.build().err(),
                Some(ConfigError::DurationTooLong(what))
            );
        }
    }

    #[test]
    fn partitioned_requires_secure() {
        assert_eq!(
            builder().cookie_partitioned(true).build().err(),
            Some(ConfigError::PartitionedNeedsSecure)
        );
        assert_eq!(
            builder()
                .cookie_partitioned(true)
                .cookie_secure(false)
                .build()
                .err(),
            Some(ConfigError::PartitionedNeedsSecure)
        );
        for builder in [
            builder().cookie_partitioned(true).cookie_secure(true),
            builder().cookie_partitioned(true).cookie_name("__Host-id"),
        ] {
            let config = builder.build().unwrap();
            let header = config.cookie().set_cookie("v", None);
            assert!(header.contains("; Secure") && header.contains("; Partitioned"));
        }
    }

    #[test]
    fn name_prefixes_are_recognised_in_any_case() {
        for name in ["__HOST-id", "__host-id", "__hOsT-id"] {
            assert!(builder().cookie_name(name).build().unwrap().cookie().secure);
            assert_eq!(
                builder()
                    .cookie_name(name)
                    .cookie_secure(false)
                    .build()
                    .err(),
                Some(prefix_error(name, "Secure"))
            );
            assert_eq!(
                builder()
                    .cookie_name(name)
                    .cookie_domain("a.example")
                    .build()
                    .err(),
                Some(prefix_error(name, "no Domain"))
            );
            assert_eq!(
                builder()
                    .cookie_name(name)
                    .cookie_path("/app")
                    .build()
                    .err(),
                Some(prefix_error(name, "Path=/"))
            );
        }
        for name in ["__SECURE-id", "__secure-id"] {
            assert!(builder().cookie_name(name).build().unwrap().cookie().secure);
            assert_eq!(
                builder()
                    .cookie_name(name)
                    .cookie_secure(false)
                    .build()
                    .err(),
                Some(prefix_error(name, "Secure"))
            );
            assert!(builder()
                .cookie_name(name)
                .cookie_path("/app")
                .build()
                .is_ok());
        }
        // Not a prefix: the dash is part of it.
        let config = builder().cookie_name("__Hostname").build().unwrap();
        assert!(!config.cookie().secure);
    }

    #[test]
    fn key_prefix_is_checked() {
        for prefix in ["", "session:", "app/v2:{sessions}|~!"] {
            assert!(builder().key_prefix(prefix).build().is_ok(), "{prefix}");
        }
        for prefix in ["a b", "tab\t", "nl\n", "del\u{7f}", "é:", "\u{0}"] {
            assert_eq!(
                builder().key_prefix(prefix).build().err(),
                Some(ConfigError::KeyPrefixCharacters),
                "{prefix:?}"
            );
        }
        assert_eq!(Config::MAX_KEY_PREFIX_LEN, 164);
        let longest = "p".repeat(Config::MAX_KEY_PREFIX_LEN);
        assert!(builder().key_prefix(longest.as_str()).build().is_ok());
        assert_eq!(
            builder().key_prefix(format!("{longest}p")).build().err(),
            Some(ConfigError::KeyPrefixTooLong(165))
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
            Err(ConfigError::IdLength(e)) if e.bytes() == 8
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
