//! The little HTTP/1.1 client side the benchmark and the soak need: reading one response
//! off a keep-alive connection.

/// One complete response read from the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The `name=value` pair of the first `Set-Cookie`, if any.
    pub(crate) cookie: Option<String>,
    pub(crate) body: String,
    /// How many bytes of the buffer the response took.
    pub(crate) len: usize,
}

/// The response at the start of `buffer`, once all of it (headers, then `Content-Length`
/// bytes of body) has arrived.
pub(crate) fn parse_response(buffer: &[u8]) -> Option<Response> {
    // A later response in the buffer may be cut inside a character; this one is whole or
    // not yet here.
    let text = match std::str::from_utf8(buffer) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&buffer[..error.valid_up_to()]).ok()?,
    };
    let header_end = text.find("\r\n\r\n")? + 4;
    let headers = &text[..header_end];
    let status = headers.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0;
    let mut cookie = None;
    for line in headers.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        } else if name.eq_ignore_ascii_case("set-cookie") && cookie.is_none() {
            cookie = value.trim().split(';').next().map(str::to_owned);
        }
    }
    let body = text.get(header_end..header_end + length)?;
    Some(Response {
        status,
        cookie,
        body: body.to_owned(),
        len: header_end + length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_status_cookie_body_and_length() {
        let response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nset-cookie: session=a.b; Path=/; HttpOnly\r\n\r\n41HTTP";
        assert_eq!(
            parse_response(response),
            Some(Response {
                status: 200,
                cookie: Some("session=a.b".to_owned()),
                body: "41".to_owned(),
                len: response.len() - 4,
            })
        );
        assert_eq!(
            parse_response(&response[..response.len() - 5]),
            None,
            "body incomplete"
        );
        let error = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
        let parsed = parse_response(error).unwrap();
        assert_eq!(
            (parsed.status, parsed.cookie, parsed.len),
            (503, None, error.len())
        );
    }
}
