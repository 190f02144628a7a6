//! A blocking HTTP/1.1 client for tests: `std::net`, `Connection: close`, no
//! redirects followed. It plays the browser (authorize, then the redirect to
//! a `vault` loopback listener) and talks to the fake in self-tests.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::Value;

const CONNECT_PATIENCE: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_mins(1);
const MAX_RESPONSE: usize = 4 << 20;

/// A response read by [`http_request`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// `GET url` → (status, body); no redirects followed.
pub fn http_get(url: &str) -> (u16, String) {
    let r = http_request("GET", url, &[], b"");
    (r.status, r.body)
}

/// One HTTP/1.1 request with `Connection: close`. A refused connection is
/// retried for up to 10 s (a `vault` loopback listener may still be starting);
/// reads time out after 60 s; panics on any transport error.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
    assert_eq!(parsed.scheme(), "http", "only http:// is supported: {url}");
    let host = parsed.host_str().expect("URL without host");
    let port = parsed.port_or_known_default().expect("URL without port");
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("resolve {host}: {e}"))
        .collect();
    let mut stream = connect(&addrs, url);
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");

    let target = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
    let authority = &parsed[url::Position::BeforeHost..url::Position::BeforePath];
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    if !body.is_empty() || method != "GET" {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .unwrap_or_else(|e| panic!("send request to {url}: {e}"));
    read_response(&mut stream, url)
}

fn connect(addrs: &[SocketAddr], url: &str) -> TcpStream {
    let deadline = Instant::now() + CONNECT_PATIENCE;
    loop {
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(addr, Duration::from_secs(5)) {
                Ok(s) => return s,
                Err(e) => last = Some(e),
            }
        }
        assert!(
            Instant::now() < deadline,
            "cannot connect to {url}: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_response(stream: &mut TcpStream, url: &str) -> HttpResponse {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 16 * 1024];
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        if let Some(r) = parse_response(&buf, false) {
            return r;
        }
        assert!(
            Instant::now() < deadline && buf.len() < MAX_RESPONSE,
            "no complete response from {url} (read {} bytes)",
            buf.len()
        );
        match stream.read(&mut chunk) {
            Ok(0) => {
                return parse_response(&buf, true).unwrap_or_else(|| {
                    panic!(
                        "{url} closed the connection mid-response: {:?}",
                        String::from_utf8_lossy(&buf)
                    )
                });
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read response from {url}: {e}"),
        }
    }
}

/// A complete response in `buf`, or `None` if more bytes are needed.
fn parse_response(buf: &[u8], eof: bool) -> Option<HttpResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let rest = &buf[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = find("content-length").and_then(|l| l.parse::<usize>().ok()) {
        rest.get(..len)?.to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a complete chunked body, or `None` if it is not complete yet.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_hex:?}"));
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
