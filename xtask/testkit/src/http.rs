//! The little HTTP/1.1 client side that the tests, the benchmark and the soak share:
//! reading one response, on a connection that closes or one that is kept alive.

use std::io::{self, Read};

/// One complete response.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `name=value` pair of the first `Set-Cookie`, if any.
    pub cookie: Option<String>,
    /// The body, `Content-Length` bytes of it.
    pub body: String,
    /// How many bytes of the buffer the response took.
    pub len: usize,
}

/// The response at the start of `buffer`, once all of it (headers, then `Content-Length`
/// bytes of body) has arrived.
pub fn parse_response(buffer: &[u8]) -> Option<Response> {
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

/// Reads from a kept-alive `stream` into `buffer` until the buffer starts with a whole
/// response, which it takes out of the buffer; a connection closed first is
/// `UnexpectedEof`.
pub fn read_response(stream: &mut impl Read, buffer: &mut Vec<u8>) -> io::Result<Response> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(response) = parse_response(buffer) {
            buffer.drain(..response.len);
            return Ok(response);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
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

    #[test]
    fn kept_alive_responses_are_read_one_at_a_time() {
        let two = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n2";
        let mut stream = &two[..];
        let mut buffer = Vec::new();
        assert_eq!(read_response(&mut stream, &mut buffer).unwrap().body, "1");
        assert_eq!(read_response(&mut stream, &mut buffer).unwrap().body, "2");
        let closed = read_response(&mut stream, &mut buffer).unwrap_err();
        assert_eq!(closed.kind(), io::ErrorKind::UnexpectedEof);
    }
}
