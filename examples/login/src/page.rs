//! The page around every view: layout, style, escaping and how times read.

use std::time::{Duration, SystemTime};

use actix_web::http::header::{ContentType, LOCATION};
use actix_web::HttpResponse;

/// A few lines of style, so that the app reads like a page a person would use.
const STYLE: &str = "\
body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1f2328}\
h1{font-size:1.5rem}nav a{margin-right:1rem}\
table{border-collapse:collapse;width:100%;margin:1rem 0}\
th,td{text-align:left;padding:.5rem;border-bottom:1px solid #d0d7de}\
.current{font-weight:600}.muted{color:#656d76}\
button{font:inherit;padding:.3rem .8rem;border:1px solid #d0d7de;border-radius:6px;background:#f6f8fa;cursor:pointer}\
button.danger{color:#cf222e}form.inline{display:inline}\
.flash{padding:.5rem 1rem;border-radius:6px;background:#ddf4ff}.flash.success{background:#dafbe1}\
input{font:inherit;padding:.3rem}";

/// A whole HTML page titled `title` around `body`.
pub(crate) fn html(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{title}</title><style>{STYLE}</style></head>\
             <body><h1>{title}</h1>{body}</body></html>"
        ))
}

/// A `303 See Other` to `location`: where a form's POST goes next.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// How long ago `time` was, as a person says it.
pub(crate) fn ago(time: SystemTime, now: SystemTime) -> String {
    let seconds = now.duration_since(time).unwrap_or(Duration::ZERO).as_secs();
    let (count, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<b>\"Ada\" & 'Bob'</b>"),
            "&lt;b&gt;&quot;Ada&quot; &amp; &#x27;Bob&#x27;&lt;/b&gt;"
        );
    }

    #[test]
    fn ago_reads_like_speech() {
        let now = SystemTime::now();
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - Duration::from_secs(61), now), "1 minute ago");
        assert_eq!(ago(now - Duration::from_secs(7_200), now), "2 hours ago");
        assert_eq!(
            ago(now - Duration::from_secs(3 * 86_400), now),
            "3 days ago"
        );
        assert_eq!(ago(now + Duration::from_secs(5), now), "just now");
    }
}
