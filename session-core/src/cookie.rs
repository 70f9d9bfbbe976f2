//! The session cookie's attributes, and reading and writing its headers.

use std::time::{Duration, SystemTime};

use cookie::time::{Duration as CookieDuration, OffsetDateTime};
pub use cookie::SameSite;

use crate::time::unix_millis;

/// The default cookie name, as Flask's.
pub const DEFAULT_COOKIE_NAME: &str = "session";

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
    pub fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> String {
        let mut cookie = self.build(value);
        if let Some(max_age) = max_age {
            let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            cookie.set_max_age(CookieDuration::seconds(seconds));
            let expires = unix_millis(SystemTime::now() + max_age) / 1000;
            if let Ok(at) = OffsetDateTime::from_unix_timestamp(expires as i64) {
                cookie.set_expires(at);
            }
        }
        cookie.to_string()
    }

    /// The `Set-Cookie` header value that removes the cookie: the same Path, Domain,
    /// Secure, SameSite and Partitioned as when it was set, an empty value, `Max-Age=0` and
    /// an `Expires` in the past, so every browser drops it.
    pub fn removal(&self) -> String {
        let mut cookie = self.build("");
        cookie.set_max_age(CookieDuration::ZERO);
        cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
        cookie.to_string()
    }

    /// The values of every cookie named like the session cookie in a `Cookie` header, in
    /// order. There can be several (one per matching Path or Domain); the caller takes the
    /// first that verifies.
    pub fn values_in<'h>(&'h self, header: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        header.split(';').filter_map(move |pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name.trim() == self.name).then(|| value.trim().trim_matches('"'))
        })
    }

    fn build(&self, value: &str) -> cookie::Cookie<'static> {
        let mut cookie = cookie::Cookie::new(self.name.clone(), value.to_owned());
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        cookie.set_partitioned(self.partitioned);
        cookie
    }
}

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

    #[test]
    fn values_in_finds_every_match() {
        let settings = CookieSettings::default();
        let header = "a=1; session=first;other=2;  session = second ; sessionx=3";
        assert_eq!(
            settings.values_in(header).collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert_eq!(settings.values_in("").count(), 0);
        assert_eq!(settings.values_in("garbage;;=;session").count(), 0);
    }
}
