//! The session cookie's attributes, and reading and writing its headers with the
//! `cookie` crate.

use std::borrow::Cow;
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
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            name: DEFAULT_COOKIE_NAME.to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: false,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
        }
    }
}

impl CookieSettings {
    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` header value that hands the browser `value`.
    ///
    /// With `max_age`, the cookie carries `Max-Age` and `Expires` (a permanent session);
    /// without, it lasts until the browser closes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::CookieSettings;
    ///
    /// let settings = CookieSettings::default();
    /// let header = settings.set_cookie("id.signature", Some(Duration::from_secs(60)));
    /// assert!(header.starts_with("session=id.signature; "));
    /// assert!(header.contains("; Max-Age=60"));
    /// ```
    pub fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> String {
        let mut cookie = self.cookie(value);
        if let Some(max_age) = max_age {
            // HTTP dates end with the year 9999, and a time that far out is as good as never
            // for a browser; the configuration keeps lifetimes well short of it anyway.
            let last = UNIX_EPOCH + LAST_HTTP_DATE;
            let expires = SystemTime::now()
                .checked_add(max_age)
                .map_or(last, |expires| expires.min(last));
            let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            cookie.set_max_age(CookieDuration::seconds(seconds));
            cookie.set_expires(OffsetDateTime::from(expires));
        }
        cookie.to_string()
    }

    /// The `Set-Cookie` header value that removes the cookie: the same Path, Domain,
    /// Secure, SameSite and Partitioned as when it was set, an empty value, `Max-Age=0` and
    /// an `Expires` in the past, so every browser drops it.
    ///
    /// ```
    /// use session_core::CookieSettings;
    ///
    /// let removal = CookieSettings::default().removal();
    /// assert!(removal.starts_with("session=; "));
    /// assert!(removal.contains("Max-Age=0"));
    /// ```
    pub fn removal(&self) -> String {
        let mut cookie = self.cookie("");
        cookie.set_max_age(CookieDuration::ZERO);
        cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
        cookie.to_string()
    }

    /// The cookie with `value` and every attribute but its lifetime.
    fn cookie<'c>(&'c self, value: &'c str) -> Cookie<'c> {
        let mut cookie = Cookie::build((self.name.as_str(), value))
            .path(self.path.as_str())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site.into())
            .partitioned(self.partitioned)
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.as_str());
        }
        cookie
    }

    /// Calls `check` on the value of each cookie named like the session cookie in a
    /// `Cookie` header, in order, and returns its first answer that is not `None`. There
    /// can be several such cookies (one per matching Path or Domain); the caller takes the
    /// first that verifies.
    ///
    /// The header is taken as bytes: a header may carry bytes that are not UTF-8 in other
    /// cookies (set by another application on the same site), and those must not hide the
    /// session cookie. Such bytes become U+FFFD, which no valid session cookie contains.
    ///
    /// ```
    /// use session_core::CookieSettings;
    ///
    /// let settings = CookieSettings::default();
    /// let found = settings.find_value(b"theme=\xff; session=abc", |value| {
    ///     (value == "abc").then_some(value.len())
    /// });
    /// assert_eq!(found, Some(3));
    /// ```
    pub fn find_value<T>(
        &self,
        header: &[u8],
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let text = String::from_utf8_lossy(header);
        let text: &str = match &text {
            Cow::Borrowed(text) => text,
            Cow::Owned(text) => text,
        };
        Cookie::split_parse(text)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == self.name)
            .find_map(|cookie| check(cookie.value_trimmed()))
    }
}

/// The last second an HTTP date can express, 9999-12-31 23:59:59 UTC, after the epoch.
const LAST_HTTP_DATE: Duration = Duration::from_secs(253_402_300_799);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CookieSettings {
        CookieSettings {
            domain: Some("example.com".into()),
            path: "/app".into(),
            secure: true,
            partitioned: true,
            same_site: SameSite::Strict,
            ..CookieSettings::default()
        }
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
        assert!(header.starts_with("session=v; "), "{header}");
        assert_eq!(attributes(&header), ["HttpOnly", "Path=/", "SameSite=Lax"]);
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
        assert!(set.contains("; Max-Age=60"), "{set}");
        assert!(set.contains("; Expires="), "{set}");
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

    fn values(settings: &CookieSettings, header: &[u8]) -> Vec<String> {
        let mut values = Vec::new();
        settings.find_value(header, |value| {
            values.push(value.to_owned());
            None::<()>
        });
        values
    }

    #[test]
    fn values_in_finds_every_match() {
        let settings = CookieSettings::default();
        let header = b"a=1; session=first;other=2;  session = second ; sessionx=3";
        assert_eq!(values(&settings, header), ["first", "second"]);
        assert_eq!(values(&settings, br#"session="quoted""#), ["quoted"]);
        assert_eq!(values(&settings, b"session=a=b"), ["a=b"]);
        assert_eq!(values(&settings, b"").len(), 0);
        assert_eq!(values(&settings, b"garbage;;=;session").len(), 0);
        assert_eq!(values(&settings, b"Session=x; SESSION=y").len(), 0);
    }

    #[test]
    fn bytes_that_are_not_utf8_in_other_cookies_do_not_hide_the_session_cookie() {
        let settings = CookieSettings::default();
        assert_eq!(values(&settings, b"a=\xff; session=v"), ["v"]);
        assert_eq!(values(&settings, b"session=v;b=\xc3\x28"), ["v"]);
        assert_eq!(values(&settings, b"\xfe\xff=\x80; session=v; \xff"), ["v"]);
        // The session cookie's own bad bytes come through as U+FFFD, for verification to
        // refuse.
        assert_eq!(values(&settings, b"session=\xff"), ["\u{fffd}"]);
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
            let seconds = max_age.as_secs().min(i64::MAX as u64);
            assert!(header.contains(&format!("; Max-Age={seconds}")), "{header}");
            assert!(
                header.contains("; Expires=Fri, 31 Dec 9999 23:59:59 GMT"),
                "{header}"
            );
        }
    }
}
