//! The session cookie's attributes, and reading and writing its headers.
//!
//! The attributes, which are the same on every response, and the removal are rendered
//! once by the `cookie` crate; the `Cookie` header is scanned by hand, because a request
//! that only reads its session pays for the scan and the crate's parser costs more than
//! `docs/performance.md` allows there.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::time::{Duration as CookieDuration, OffsetDateTime};
use cookie::Cookie;

/// The default cookie name, as Flask's.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// The cookie's `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also sent on top-level navigations from other sites (links), not on their
    /// subrequests or form posts. The default.
    Lax,
    /// Sent on every request; requires `Secure`.
    None,
}

impl From<SameSite> for cookie::SameSite {
    fn from(same_site: SameSite) -> Self {
        match same_site {
            SameSite::Strict => Self::Strict,
            SameSite::Lax => Self::Lax,
            SameSite::None => Self::None,
        }
    }
}

/// The attributes of the session cookie. Built and validated by
/// [`ConfigBuilder`](crate::ConfigBuilder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) partitioned: bool,
    /// `; HttpOnly; SameSite=Lax; Path=/ ...`: every attribute but the lifetime, rendered
    /// once by [`CookieSettings::prepare`] because it is the same on every response.
    attributes: String,
    /// The whole `Set-Cookie` that removes the cookie, rendered once too.
    removal: String,
}

impl Default for CookieSettings {
    fn default() -> Self {
        let mut settings = Self {
            name: DEFAULT_COOKIE_NAME.to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: false,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            attributes: String::new(),
            removal: String::new(),
        };
        settings.prepare();
        settings
    }
}

impl CookieSettings {
    /// Renders the fixed attributes and the removal with the `cookie` crate; called
    /// whenever the settings change.
    pub(crate) fn prepare(&mut self) {
        let mut template = Cookie::build((self.name.as_str(), ""))
            .path(self.path.as_str())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site.into())
            .partitioned(self.partitioned)
            .build();
        if let Some(domain) = &self.domain {
            template.set_domain(domain.as_str());
        }
        // `name=` comes first, then every attribute, each after a `; `.
        let rendered = template.to_string();
        self.attributes = rendered
            .get(self.name.len() + 1..)
            .unwrap_or_default()
            .to_owned();
        template.set_max_age(CookieDuration::ZERO);
        template.set_expires(OffsetDateTime::UNIX_EPOCH);
        self.removal = template.to_string();
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` header value that hands the browser `value`.
    ///
    /// With `max_age`, the cookie carries `Max-Age` and `Expires` (a permanent session);
    /// without, it lasts until the browser closes.
    pub fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> String {
        let mut header =
            String::with_capacity(self.name.len() + value.len() + self.attributes.len() + 64);
        header.push_str(&self.name);
        header.push('=');
        header.push_str(value);
        header.push_str(&self.attributes);
        if let Some(max_age) = max_age {
            // HTTP dates end with the year 9999, and a time that far out is as good as never
            // for a browser; the configuration keeps lifetimes well short of it anyway.
            let last = UNIX_EPOCH + LAST_HTTP_DATE;
            let expires = SystemTime::now()
                .checked_add(max_age)
                .map_or(last, |expires| expires.min(last));
            // Writing to a String cannot fail.
            let _ = write!(
                header,
                "; Max-Age={}; Expires={}",
                max_age.as_secs(),
                httpdate::HttpDate::from(expires)
            );
        }
        header
    }

    /// The `Set-Cookie` header value that removes the cookie: the same Path, Domain,
    /// Secure, SameSite and Partitioned as when it was set, an empty value, `Max-Age=0` and
    /// an `Expires` in the past, so every browser drops it.
    pub fn removal(&self) -> String {
        self.removal.clone()
    }

    /// The values of every cookie named like the session cookie in a `Cookie` header, in
    /// order. There can be several (one per matching Path or Domain); the caller takes the
    /// first that verifies.
    ///
    /// The header is scanned as bytes: a header may carry bytes that are not UTF-8 in
    /// other cookies (set by another application on the same site), and those must not hide
    /// the session cookie. Only the value returned has to be checked, which verification
    /// does byte by byte.
    ///
    /// ```
    /// use session_core::CookieSettings;
    ///
    /// let settings = CookieSettings::default();
    /// let values: Vec<&[u8]> = settings.values_in(b"theme=\xff; session=abc").collect();
    /// assert_eq!(values, [b"abc".as_slice()]);
    /// ```
    pub fn values_in<'h>(&'h self, header: &'h [u8]) -> impl Iterator<Item = &'h [u8]> + 'h {
        header.split(|&byte| byte == b';').filter_map(move |pair| {
            let equals = pair.iter().position(|&byte| byte == b'=')?;
            let (name, value) = (&pair[..equals], &pair[equals + 1..]);
            (name.trim_ascii() == self.name.as_bytes()).then(|| trim_quotes(value.trim_ascii()))
        })
    }
}

/// The last second an HTTP date can express, 9999-12-31 23:59:59 UTC, after the epoch.
const LAST_HTTP_DATE: Duration = Duration::from_secs(253_402_300_799);

/// `value` without the double quotes a cookie value may be wrapped in.
fn trim_quotes(mut value: &[u8]) -> &[u8] {
    while let [b'"', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b'"'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CookieSettings {
        let mut settings = CookieSettings {
            domain: Some("example.com".into()),
            path: "/app".into(),
            secure: true,
            partitioned: true,
            same_site: SameSite::Strict,
            ..CookieSettings::default()
        };
        settings.prepare();
        settings
    }

    fn attributes(header: &str) -> Vec<String> {
        let mut parts: Vec<String> = header
            .split("; ")
            .skip(1)
            .filter(|a| !a.starts_with("Max-Age") && !a.starts_with("Expires"))
            .map(str::to_owned)
            .collect();
        parts.sort();
        parts
    }

    #[test]
    fn defaults_are_http_only_lax_root_path() {
        let header = CookieSettings::default().set_cookie("v", None);
        assert_eq!(header, "session=v; HttpOnly; SameSite=Lax; Path=/");
    }

    #[test]
    fn permanent_cookie_has_max_age_and_expires() {
        let header = CookieSettings::default().set_cookie("v", Some(Duration::from_secs(3600)));
        assert!(header.contains("; Max-Age=3600"), "{header}");
        assert!(header.contains("; Expires="), "{header}");
    }

    #[test]
    fn removal_keeps_every_attribute() {
        let settings = settings();
        let set = settings.set_cookie("v", Some(Duration::from_secs(60)));
        let removal = settings.removal();
        assert!(removal.starts_with("session=; "), "{removal}");
        assert!(set.contains("; Max-Age=60; Expires="), "{set}");
        assert!(removal.contains("Max-Age=0"), "{removal}");
        assert!(
            removal.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            "{removal}"
        );
        assert_eq!(attributes(&set), attributes(&removal));
        for attribute in [
            "Path=/app",
            "Domain=example.com",
            "Secure",
            "SameSite=Strict",
            "Partitioned",
            "HttpOnly",
        ] {
            assert!(
                attributes(&removal).contains(&attribute.to_owned()),
                "{attribute}: {removal}"
            );
        }
    }

    fn values<'h>(settings: &'h CookieSettings, header: &'h [u8]) -> Vec<&'h [u8]> {
        settings.values_in(header).collect()
    }

    #[test]
    fn values_in_finds_every_match() {
        let settings = CookieSettings::default();
        let header = b"a=1; session=first;other=2;  session = second ; sessionx=3";
        assert_eq!(values(&settings, header), [b"first".as_slice(), b"second"]);
        assert_eq!(values(&settings, br#"session="quoted""#), [b"quoted"]);
        assert_eq!(values(&settings, b"session=a=b"), [b"a=b"]);
        assert_eq!(settings.values_in(b"").count(), 0);
        assert_eq!(settings.values_in(b"garbage;;=;session").count(), 0);
        assert_eq!(settings.values_in(b"Session=x; SESSION=y").count(), 0);
    }

    #[test]
    fn bytes_that_are_not_utf8_in_other_cookies_do_not_hide_the_session_cookie() {
        let settings = CookieSettings::default();
        assert_eq!(values(&settings, b"a=\xff; session=v"), [b"v"]);
        assert_eq!(values(&settings, b"session=v;b=\xc3\x28"), [b"v"]);
        assert_eq!(values(&settings, b"\xfe\xff=\x80; session=v; \xff"), [b"v"]);
        // The session cookie's own bad bytes are returned as they are, for verification
        // to refuse.
        assert_eq!(values(&settings, b"session=\xff"), [b"\xff"]);
    }

    #[test]
    fn a_max_age_past_the_last_http_date_does_not_panic() {
        let settings = CookieSettings::default();
        for max_age in [
            Duration::from_secs(9_000 * 366 * 24 * 60 * 60),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            let header = settings.set_cookie("v", Some(max_age));
            assert!(
                header.ends_with(&format!(
                    "; Max-Age={}; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
                    max_age.as_secs()
                )),
                "{header}"
            );
        }
    }
}
