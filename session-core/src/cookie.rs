//! The session cookie's attributes, and reading and writing its headers.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

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

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
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
    /// `; Path=/; HttpOnly; ...`: every attribute but the lifetime, rendered once by
    /// [`CookieSettings::prepare`] because it is the same on every response.
    attributes: String,
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
        };
        settings.prepare();
        settings
    }
}

impl CookieSettings {
    /// Renders the fixed attributes; called whenever the settings change.
    pub(crate) fn prepare(&mut self) {
        let mut attributes = format!("; Path={}", self.path);
        if let Some(domain) = &self.domain {
            attributes.push_str("; Domain=");
            attributes.push_str(domain);
        }
        if self.secure {
            attributes.push_str("; Secure");
        }
        if self.http_only {
            attributes.push_str("; HttpOnly");
        }
        attributes.push_str("; SameSite=");
        attributes.push_str(self.same_site.as_str());
        if self.partitioned {
            attributes.push_str("; Partitioned");
        }
        self.attributes = attributes;
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
            let expires = SystemTime::now() + max_age;
            // Writing to a String cannot fail.
            let _ = write!(
                header,
                "; Max-Age={}; Expires={}",
                max_age.as_secs(),
                httpdate::fmt_http_date(expires)
            );
        }
        header
    }

    /// The `Set-Cookie` header value that removes the cookie: the same Path, Domain,
    /// Secure, SameSite and Partitioned as when it was set, an empty value, `Max-Age=0` and
    /// an `Expires` in the past, so every browser drops it.
    pub fn removal(&self) -> String {
        format!(
            "{}={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            self.name, self.attributes
        )
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
        assert_eq!(header, "session=v; Path=/; HttpOnly; SameSite=Lax");
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
