//! A minimal blocking HTTP/1.1 client for the `watchpost query` commands
//! and the integration tests: plain `http://` only, one request per
//! connection (`Connection: close`), `Content-Length` or chunked bodies.
//! Keeping it this small avoids an HTTP client dependency for what is a
//! loopback conversation with our own server.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a request failed before a response was read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("invalid URL {0:?}: want http://host[:port][/path]")]
    BadUrl(String),
    /// Connecting, writing or reading failed.
    #[error("cannot {op} {addr}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The server address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The response could not be understood.
    #[error("malformed HTTP response from {addr}: {reason}")]
    BadResponse {
        /// The server address.
        addr: String,
        /// What was wrong.
        reason: String,
    },
}

/// A complete response.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits `http://host:port/path?q` into (`host:port`, `/path?q`).
fn split_url(url: &str) -> Result<(String, String), ClientError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ClientError::BadUrl(url.to_string()))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i..).unwrap_or("/"),
        ),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err(ClientError::BadUrl(url.to_string()));
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_string()))
}

/// Percent-encodes a query-string component (RFC 3986 unreserved kept).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `a=1&b=2` from pairs, encoding both sides.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends one request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, ClientError> {
    let (addr, path) = split_url(url)?;
    let io = |op: &'static str| {
        let addr = addr.clone();
        move |source| ClientError::Io { op, addr, source }
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(io("resolve"))?
        .next()
        .ok_or_else(|| ClientError::BadUrl(url.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&sock, timeout).map_err(io("connect to"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(io("configure"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(io("configure"))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io("write to"))?;
    stream.write_all(body).map_err(io("write to"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io("read from"))?;
    parse_response(&raw).map_err(|reason| ClientError::BadResponse { addr, reason })
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| "headers are not UTF-8")?;
    let rest = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| "bad content-length")?;
        rest.get(..len)
            .ok_or("body shorter than content-length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size_str =
            std::str::from_utf8(b.get(..eol).unwrap_or_default()).map_err(|_| "bad chunk size")?;
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| "bad chunk size")?;
        b = b.get(eol + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("truncated chunk")?);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_forms() {
        assert_eq!(
            split_url("http://127.0.0.1:9090/api/v1/query?x=1").unwrap(),
            ("127.0.0.1:9090".into(), "/api/v1/query?x=1".into())
        );
        assert_eq!(
            split_url("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert!(split_url("https://x").is_err());
        assert_eq!(
            form(&[("query", "up{a=\"b c\"}")]),
            "query=up%7Ba%3D%22b%20c%22%7D"
        );
    }

    #[test]
    fn responses() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi").unwrap();
        assert_eq!(
            (r.status, r.text(), r.header("x-a")),
            (200, "hi".into(), Some("b"))
        );
        let r = parse_response(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.text()), (400, "abcde".into()));
        assert!(parse_response(b"garbage").is_err());
    }
}
