//! A minimal HTTP/1.1 request-head reader and response writer, shared by the stats responder
//! and the WebSocket upgrade. One request per connection (`Connection: close`); the head is
//! bounded ([`MAX_HEAD`]), so a client cannot make the server hold more than that per
//! connection before it answers 431.
//!
//! Pure functions over byte slices: no sockets, no clock.

/// Largest request head (request line and headers, with the blank line) read before answering
/// `431 Request Header Fields Too Large`.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head: method, target path (query string removed) and header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Target path without the query string, e.g. `/metrics`.
    pub path: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The value of the first header field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True when the comma-separated header `name` contains `token` (case-insensitive), in any
    /// of its occurrences.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why a request head was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Longer than [`MAX_HEAD`] or more than [`MAX_HEADERS`] fields: 431.
    TooLarge,
    /// Not an HTTP/1.x request head: 400.
    Malformed,
}

impl HeadError {
    /// The response for this error.
    pub fn response(self) -> Vec<u8> {
        match self {
            HeadError::TooLarge => response(431, "Request Header Fields Too Large", &[], "text/plain", b"request head too large\n"),
            HeadError::Malformed => response(400, "Bad Request", &[], "text/plain", b"bad request\n"),
        }
    }
}

/// Parses a request head from the start of `buf`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((head, used)))` with the bytes the head took (anything after it belongs to the
/// next protocol, e.g. WebSocket frames).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let end = match find(buf, b"\r\n\r\n") {
        Some(i) => i,
        None if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        None => {
            // A bare request line of garbage is refused early rather than after 8 KiB.
            if let Some(i) = find(buf, b"\r\n") {
                parse_request_line(&buf[..i])?;
            }
            return Ok(None);
        }
    };
    if end + 4 > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = core::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let (method, path) = parse_request_line(lines.next().unwrap_or_default().as_bytes())?;
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(HeadError::Malformed);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Some((Head { method, path, headers }, end + 4)))
}

fn parse_request_line(line: &[u8]) -> Result<(String, String), HeadError> {
    let line = core::str::from_utf8(line).map_err(|_| HeadError::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty() || !method.bytes().all(is_token_char) || !target.starts_with('/') {
        return Err(HeadError::Malformed);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed);
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Ok((method.to_string(), path.to_string()))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete `Connection: close` response with `Content-Length`.
pub fn response(code: u16, reason: &str, extra: &[(&str, &str)], content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (n, v) in extra {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// What a stats request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsRoute {
    /// `GET /` or `GET /stats`: the JSON snapshot.
    Json,
    /// `GET /metrics`: Prometheus text format.
    Metrics,
    /// Another path: 404.
    NotFound,
    /// Not `GET` (or `HEAD`): 405, the responder is read-only.
    MethodNotAllowed,
}

/// Routes a stats request.
pub fn stats_route(head: &Head) -> StatsRoute {
    if head.method != "GET" && head.method != "HEAD" {
        return StatsRoute::MethodNotAllowed;
    }
    match head.path.as_str() {
        "/" | "/stats" => StatsRoute::Json,
        "/metrics" => StatsRoute::Metrics,
        _ => StatsRoute::NotFound,
    }
}

/// The full response to a stats request, given the counters (only read for the two stats
/// routes). `HEAD` gets the headers without the body.
pub fn stats_response(head: &Head, stats: impl FnOnce() -> crate::sys::Stats) -> Vec<u8> {
    let mut out = match stats_route(head) {
        StatsRoute::Json => response(200, "OK", &[], "application/json", stats().to_json().as_bytes()),
        StatsRoute::Metrics => {
            response(200, "OK", &[], "text/plain; version=0.0.4; charset=utf-8", stats().to_prometheus().as_bytes())
        }
        StatsRoute::NotFound => response(404, "Not Found", &[], "text/plain", b"not found\n"),
        StatsRoute::MethodNotAllowed => {
            response(405, "Method Not Allowed", &[("Allow", "GET, HEAD")], "text/plain", b"read-only\n")
        }
    };
    if head.method == "HEAD" {
        if let Some(i) = find(&out, b"\r\n\r\n") {
            out.truncate(i + 4);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_is_parsed_with_its_length() {
        let req = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept:  text/plain \r\n\r\nrest";
        let (head, used) = parse_head(req).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/metrics");
        assert_eq!(head.header("accept"), Some("text/plain"));
        assert_eq!(&req[used..], b"rest");
    }

    #[test]
    fn a_partial_head_needs_more_bytes() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert_eq!(parse_head(b"GET / HT"), Ok(None));
    }

    #[test]
    fn an_oversized_head_is_too_large() {
        let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert_eq!(parse_head(&req), Err(HeadError::TooLarge));
        let long_line = [b"GET /".as_slice(), &[b'a'; MAX_HEAD]].concat();
        assert_eq!(parse_head(&long_line), Err(HeadError::TooLarge));
    }

    #[test]
    fn too_many_headers_are_too_large() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            req.extend(format!("h{i}: v\r\n").as_bytes());
        }
        req.extend(b"\r\n");
        assert_eq!(parse_head(&req), Err(HeadError::TooLarge));
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(parse_head(b"\x16\x03\x01\x02\x00\r\n"), Err(HeadError::Malformed));
        assert_eq!(parse_head(b"GET / HTTP/2\r\n\r\n"), Err(HeadError::Malformed));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), Err(HeadError::Malformed));
        assert_eq!(parse_head(b"GET nopath HTTP/1.1\r\n\r\n"), Err(HeadError::Malformed));
    }

    #[test]
    fn token_lists_are_matched_case_insensitively() {
        let (head, _) = parse_head(b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Protocol: mqttv3.1\r\nsec-websocket-protocol: MQTT\r\n\r\n").unwrap().unwrap();
        assert!(head.header_has_token("connection", "upgrade"));
        assert!(head.header_has_token("Sec-WebSocket-Protocol", "mqtt"));
        assert!(!head.header_has_token("connection", "close"));
    }

    #[test]
    fn stats_routes() {
        let route = |req: &[u8]| stats_route(&parse_head(req).unwrap().unwrap().0);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), StatsRoute::Json);
        assert_eq!(route(b"GET /stats HTTP/1.0\r\n\r\n"), StatsRoute::Json);
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), StatsRoute::Metrics);
        assert_eq!(route(b"GET /other HTTP/1.1\r\n\r\n"), StatsRoute::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), StatsRoute::MethodNotAllowed);
    }

    #[test]
    fn a_head_request_gets_no_body() {
        let (head, _) = parse_head(b"HEAD /stats HTTP/1.1\r\n\r\n").unwrap().unwrap();
        let out = stats_response(&head, Default::default);
        assert!(out.ends_with(b"\r\n\r\n"));
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
}
