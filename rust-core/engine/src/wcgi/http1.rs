//! One request over one yamux stream as plain HTTP/1.1, the way go-wagi's guests expect it:
//! the request as a reverse proxy would send it, the response parsed and streamed back.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cgi_env;
use crate::cgi_response::MAX_HEAD;
use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::request::{HttpFacts, RunSpec};
use crate::response_fields::ResponseHead;

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
];

fn gone(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(FailureKind::InstanceGone, format!("{what}: {e}"))
}

fn client_gone() -> Failure {
    Failure::new(FailureKind::ClientGone, "client went away")
}

/// The request head: the client's method, target, headers and Host, plus the
/// `X-Forwarded-*` headers as Caddy's `reverse_proxy` sets them. The stream stays open for
/// the next request once the exchange ends cleanly (HTTP/1.1 keep-alive, as `reverse_proxy`
/// keeps its connections to a backend).
pub fn request_head(spec: &RunSpec) -> Vec<u8> {
    let http = &spec.http;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        http.method, http.request_uri, http.host
    );
    let mut prior = PriorForwarded::default();
    for (name, value) in &http.headers {
        let lower = name.to_ascii_lowercase();
        // Expect: Caddy already answered it when the body was first read.
        if HOP_BY_HOP.contains(&lower.as_str()) || lower == "content-length" || lower == "expect" {
            continue;
        }
        match lower.as_str() {
            "x-forwarded-for" => prior.add_for(value),
            "x-forwarded-proto" => prior.proto = Some(value),
            "x-forwarded-host" => prior.host = Some(value),
            _ => head.push_str(&format!("{name}: {value}\r\n")),
        }
    }
    head.push_str(&forwarded_headers(http, prior));
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        http.content_length.unwrap_or(0)
    ));
    head.into_bytes()
}

/// The `X-Forwarded-*` values the client sent: every `X-Forwarded-For` line joined, the
/// last `X-Forwarded-Proto` and `X-Forwarded-Host`.
#[derive(Default)]
struct PriorForwarded<'a> {
    chain: Option<String>,
    proto: Option<&'a str>,
    host: Option<&'a str>,
}

impl PriorForwarded<'_> {
    fn add_for(&mut self, value: &str) {
        match &mut self.chain {
            Some(chain) => {
                chain.push_str(", ");
                chain.push_str(value);
            }
            None => self.chain = Some(value.to_string()),
        }
    }
}

/// `X-Forwarded-For`, `-Proto` and `-Host` as `reverse_proxy` sets them. From a proxy the
/// server trusts (`trusted_proxies`) its chain is kept with the client appended and its
/// Proto and Host are kept; from anyone else all three are replaced with what the
/// connection shows, so a client cannot tell the guest it is someone else.
fn forwarded_headers(http: &HttpFacts, prior: PriorForwarded) -> String {
    let trusted = http.trusted_proxy;
    let client = client_ip(&http.remote_addr);
    if client.is_none() && !trusted {
        // No peer address to vouch for (a Unix socket) and nobody trusted: say nothing.
        return String::new();
    }
    // What an untrusted peer claims is dropped; an empty claim counts as none.
    let prior = if trusted {
        prior
    } else {
        PriorForwarded::default()
    };
    let chain: Vec<&str> = prior
        .chain
        .as_deref()
        .filter(|c| !c.is_empty())
        .into_iter()
        .chain(client)
        .collect();
    let scheme = if http.tls_protocol.is_some() {
        "https"
    } else {
        "http"
    };
    let mut out = String::new();
    if !chain.is_empty() {
        out.push_str(&format!("X-Forwarded-For: {}\r\n", chain.join(", ")));
    }
    out.push_str(&format!(
        "X-Forwarded-Proto: {}\r\nX-Forwarded-Host: {}\r\n",
        prior.proto.filter(|p| !p.is_empty()).unwrap_or(scheme),
        prior.host.filter(|h| !h.is_empty()).unwrap_or(&http.host)
    ));
    out
}

/// The client's IP from `ip:port` (without an IPv6 zone), or `None` when the address has
/// no port, as for a Unix socket (`@`).
fn client_ip(remote_addr: &str) -> Option<&str> {
    let (ip, port) = cgi_env::split_host_port(remote_addr);
    let ip = ip.split('%').next().unwrap_or(ip);
    (!port.is_empty() && !ip.is_empty()).then_some(ip)
}

/// Sends the request (head, then the body read from the host) on `out`. True when the body
/// went out whole, as long as its `Content-Length` said: only then may the stream carry
/// another request (a short body would make the guest read the next request as its rest).
pub async fn send_request(
    mut out: impl AsyncWrite + Unpin,
    spec: &RunSpec,
    host: &dyn Host,
) -> Result<bool, Failure> {
    out.write_all(&request_head(spec))
        .await
        .map_err(|e| gone("writing the request", e))?;
    let mut left = spec.http.content_length.unwrap_or(0);
    let mut buf = vec![0u8; 64 << 10];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = host
            .read_body(&mut buf[..want])
            .map_err(|_| client_gone())?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .await
            .map_err(|e| gone("writing the request body", e))?;
        left -= n as u64;
    }
    out.flush()
        .await
        .map_err(|e| gone("writing the request", e))?;
    Ok(left == 0)
}

/// How the response body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilEof,
}

/// How a response went, for what may happen to its stream next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relayed {
    /// Relayed whole, delimited by its `Content-Length`, nothing after it, and the guest did
    /// not ask to close: the stream may carry another request.
    Reusable,
    /// Relayed, but the stream must not carry another request.
    Spent,
    /// The stream ended before the first byte of a response: nothing reached the host.
    NoResponse,
}

/// Reads the response from `input` and streams it to the host.
pub async fn relay_response(
    mut input: impl AsyncRead + Unpin,
    head_only: bool,
    host: &dyn Host,
) -> Result<Relayed, Failure> {
    let mut buf = Vec::with_capacity(8 << 10);
    let mut chunk = vec![0u8; 64 << 10];
    let (head, framing, body_start, keep_alive) = loop {
        match parse_head(&buf, head_only)? {
            // An interim response (100 Continue, 103 Early Hints): skip it and read the
            // real one. 101 is not interim: it switches protocols, which we never allow.
            Some((head, _, len, _)) if is_interim(head.status) => {
                buf.drain(..len);
                continue;
            }
            Some(parsed) => break parsed,
            None => {}
        }
        if buf.len() > MAX_HEAD {
            return Err(Failure::new(
                FailureKind::MalformedResponse,
                "response head over 64 KiB",
            ));
        }
        let n = input
            .read(&mut chunk)
            .await
            .map_err(|e| gone("reading the response", e))?;
        if n == 0 && buf.is_empty() {
            return Ok(Relayed::NoResponse);
        }
        if n == 0 {
            return Err(no_response());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf.split_off(body_start);
    let mut body = BodyReader::new(framing, rest);
    let first = body.next(&mut input, &mut chunk).await?;
    // A body that is not complete yet may be a stream the guest writes as it goes: what it
    // has written goes out before waiting for the rest. A complete one is left to the
    // server, which sends it with its length in one write.
    host.send_head(&head, first.as_deref().unwrap_or_default(), !body.done)
        .map_err(|_| client_gone())?;
    while let Some(data) = body.next(&mut input, &mut chunk).await? {
        host.write_body(&data, true).map_err(|_| client_gone())?;
    }
    // Only a body delimited by its length ends where the guest meant it to: after a HEAD,
    // 204 or 304 a guest may still (wrongly) send a body, which would become the start of
    // the next response on this stream.
    let delimited = matches!(body.framing, Framing::Length(_));
    Ok(if keep_alive && delimited && body.buf.is_empty() {
        Relayed::Reusable
    } else {
        Relayed::Spent
    })
}

/// The failure of a stream that ended before a whole response head.
pub fn no_response() -> Failure {
    gone("reading the response", "stream ended before a response")
}

fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// The parsed head, how its body is framed, the head's length, and whether the guest keeps
/// the connection open after it (HTTP/1.1 without `Connection: close`).
type ParsedHead = (ResponseHead, Framing, usize, bool);

fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<ParsedHead>, Failure> {
    let malformed = |what: String| Failure::new(FailureKind::MalformedResponse, what);
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(format!("bad HTTP response from the guest: {e}"))),
    };
    let mut head = ResponseHead {
        status: res.code.unwrap_or(502),
        fields: res
            .headers
            .iter()
            .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
            .collect(),
    };
    if is_interim(head.status) {
        return Ok(Some((head, Framing::None, len, false)));
    }
    let framing = framing(&head.fields).map_err(malformed)?;
    // Read before `sanitize` drops the hop-by-hop headers.
    let keep_alive = res.version == Some(1) && !asks_to_close(&head.fields);
    // Drops Transfer-Encoding and the other hop-by-hop headers, checks Content-Length.
    crate::response_fields::sanitize(&mut head)?;
    let framing = if head_only || head.status == 204 || head.status == 304 {
        Framing::None
    } else {
        framing
    };
    Ok(Some((head, framing, len, keep_alive)))
}

/// True when a `Connection` header lists `close`.
fn asks_to_close(fields: &[(Vec<u8>, Vec<u8>)]) -> bool {
    fields
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, value)| value.split(|&b| b == b','))
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// How the guest delimits its body. Only `chunked` is decoded; a body both chunked and
/// with a length is ambiguous (the classic smuggling shape) and is refused.
fn framing(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Framing, String> {
    fn named<'a>(
        fields: &'a [(Vec<u8>, Vec<u8>)],
        name: &'static [u8],
    ) -> impl Iterator<Item = &'a [u8]> {
        fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
    let codings: Vec<&[u8]> = named(fields, b"transfer-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
        .collect();
    let length = named(fields, b"content-length").next();
    match (codings.as_slice(), length) {
        ([], None) => Ok(Framing::UntilEof),
        ([], Some(value)) => std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
            .map(Framing::Length)
            .ok_or_else(|| "bad Content-Length".to_string()),
        ([only], None) if only.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
        (_, Some(_)) => Err("response has both Transfer-Encoding and Content-Length".into()),
        (_, None) => Err(format!(
            "unsupported Transfer-Encoding {:?}",
            String::from_utf8_lossy(&codings.join(&b", "[..]))
        )),
    }
}

/// Yields the response body in pieces, undoing chunked encoding.
struct BodyReader {
    framing: Framing,
    buf: Vec<u8>,
    /// Bytes left in the current chunk (chunked) or body (length).
    left: u64,
    /// A chunk's data just ended; its CRLF comes next.
    expect_crlf: bool,
    done: bool,
}

impl BodyReader {
    fn new(framing: Framing, buf: Vec<u8>) -> Self {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let done = matches!(framing, Framing::None) || matches!(framing, Framing::Length(0));
        BodyReader {
            framing,
            buf,
            left,
            expect_crlf: false,
            done,
        }
    }

    /// Takes buffered bytes of the current body or chunk, at most `left`.
    fn take_left(&mut self) -> Vec<u8> {
        let n = self
            .buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.left -= n as u64;
        self.buf.drain(..n).collect()
    }

    async fn fill(
        &mut self,
        input: &mut (impl AsyncRead + Unpin),
        chunk: &mut [u8],
    ) -> Result<bool, Failure> {
        let n = input
            .read(chunk)
            .await
            .map_err(|e| gone("reading the response body", e))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next piece of body, or `None` at its end.
    async fn next(
        &mut self,
        input: &mut (impl AsyncRead + Unpin),
        chunk: &mut [u8],
    ) -> Result<Option<Vec<u8>>, Failure> {
        if self.done {
            return Ok(None);
        }
        match self.framing {
            Framing::None => Ok(None),
            Framing::UntilEof => {
                if self.buf.is_empty() && !self.fill(input, chunk).await? {
                    self.done = true;
                    return Ok(None);
                }
                Ok(Some(std::mem::take(&mut self.buf)))
            }
            Framing::Length(_) => {
                if self.buf.is_empty() && !self.fill(input, chunk).await? {
                    return Err(gone("reading the response body", "stream ended early"));
                }
                let piece = self.take_left();
                self.done = self.left == 0;
                Ok(Some(piece))
            }
            Framing::Chunked => self.next_chunked(input, chunk).await,
        }
    }

    async fn next_chunked(
        &mut self,
        input: &mut (impl AsyncRead + Unpin),
        chunk: &mut [u8],
    ) -> Result<Option<Vec<u8>>, Failure> {
        let malformed = |what: &str| Failure::new(FailureKind::MalformedResponse, what.to_string());
        loop {
            if self.left > 0 {
                if self.buf.is_empty() && !self.fill(input, chunk).await? {
                    return Err(gone(
                        "reading the response body",
                        "stream ended inside a chunk",
                    ));
                }
                let piece = self.take_left();
                self.expect_crlf = self.left == 0;
                return Ok(Some(piece));
            }
            if self.expect_crlf {
                if self.buf.len() < 2 {
                    if !self.fill(input, chunk).await? {
                        return Err(gone(
                            "reading the response body",
                            "stream ended in chunking",
                        ));
                    }
                    continue;
                }
                if !self.buf.starts_with(b"\r\n") {
                    return Err(malformed("chunk data not followed by CRLF"));
                }
                self.buf.drain(..2);
                self.expect_crlf = false;
            }
            match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    self.buf.drain(..used);
                    self.done = true;
                    return Ok(None);
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    self.buf.drain(..used);
                    self.left = size;
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > 1024 {
                        return Err(malformed("chunk size line too long"));
                    }
                    if !self.fill(input, chunk).await? {
                        return Err(gone(
                            "reading the response body",
                            "stream ended in chunking",
                        ));
                    }
                }
                Err(_) => return Err(malformed("bad chunk size in the guest's response")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::capture::Capture;

    /// Yields its bytes one read at a time: every split point of the parsers gets hit.
    struct OneByte(Vec<u8>, usize);

    impl AsyncRead for OneByte {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let at = self.1;
            let n = usize::from(at < self.0.len() && !buf.is_empty());
            if n == 1 {
                buf[0] = self.0[at];
                self.1 += 1;
            }
            std::task::Poll::Ready(Ok(n))
        }
    }

    fn relay(response: &[u8]) -> (Result<Relayed, Failure>, Capture) {
        let host = Capture::default();
        let input = OneByte(response.to_vec(), 0);
        let result = futures::executor::block_on(relay_response(input, false, &host));
        (result, host)
    }

    /// How a response read in one piece leaves its stream.
    fn ends(response: &[u8], head_only: bool) -> Relayed {
        let host = Capture::default();
        let input = futures::io::Cursor::new(response.to_vec());
        futures::executor::block_on(relay_response(input, head_only, &host)).unwrap()
    }

    fn head_for(remote_addr: &str, trusted_proxy: bool, headers: &[(&str, &str)]) -> String {
        let spec = RunSpec {
            http: HttpFacts {
                method: "POST".into(),
                request_uri: "/a?b=1".into(),
                host: "example.com".into(),
                remote_addr: remote_addr.into(),
                trusted_proxy,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                content_length: Some(3),
                ..HttpFacts::default()
            },
            ..RunSpec::default()
        };
        String::from_utf8(request_head(&spec)).unwrap()
    }

    const FORGED: [(&str, &str); 4] = [
        ("X-Forwarded-For", "10.0.0.1"),
        ("X-Forwarded-For", "10.0.0.2"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
    ];

    #[test]
    fn request_head_is_what_a_reverse_proxy_sends() {
        let head = head_for(
            "[::1]:4000",
            false,
            &[
                ("Connection", "keep-alive"),
                ("Expect", "100-continue"),
                ("X-App", "1"),
            ],
        );
        assert!(head.starts_with("POST /a?b=1 HTTP/1.1\r\nHost: example.com\r\n"));
        assert!(head.contains("X-App: 1\r\n"));
        assert!(head.contains("X-Forwarded-For: ::1\r\n"));
        assert!(head.contains("X-Forwarded-Proto: http\r\n"));
        assert!(head.contains("X-Forwarded-Host: example.com\r\n"));
        assert!(head.contains("Content-Length: 3\r\n"));
        assert!(head.ends_with("Content-Length: 3\r\n\r\n"), "{head}");
        assert!(!head.contains("Connection"), "{head}");
        assert!(!head.contains("keep-alive") && !head.contains("100-continue"));
    }

    #[test]
    fn forwarded_headers_from_an_untrusted_client_are_replaced() {
        let head = head_for("127.0.0.1:4000", false, &FORGED);
        assert_eq!(head.matches("X-Forwarded-").count(), 3, "{head}");
        assert!(head.contains("X-Forwarded-For: 127.0.0.1\r\n"));
        assert!(head.contains("X-Forwarded-Proto: http\r\n"));
        assert!(head.contains("X-Forwarded-Host: example.com\r\n"));
    }

    #[test]
    fn forwarded_headers_from_a_trusted_proxy_are_kept_and_extended() {
        let head = head_for("[fe80::1%eth0]:4000", true, &FORGED);
        assert_eq!(head.matches("X-Forwarded-").count(), 3, "{head}");
        assert!(head.contains("X-Forwarded-For: 10.0.0.1, 10.0.0.2, fe80::1\r\n"));
        assert!(head.contains("X-Forwarded-Proto: https\r\n"));
        assert!(head.contains("X-Forwarded-Host: evil.example\r\n"));
    }

    #[test]
    fn forwarded_headers_without_a_peer_address() {
        let untrusted = head_for("@", false, &FORGED);
        assert!(!untrusted.contains("X-Forwarded-"), "{untrusted}");
        let trusted = head_for("@", true, &FORGED);
        assert!(trusted.contains("X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"));
        assert!(trusted.contains("X-Forwarded-Proto: https\r\n"));
    }

    #[test]
    fn chunked_body_is_decoded_and_hop_headers_dropped() {
        let (result, host) = relay(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        );
        result.unwrap();
        let head = host.head.lock().unwrap().clone().unwrap();
        assert_eq!(head.status, 201);
        assert!(head.fields.iter().all(|(n, _)| n != b"Transfer-Encoding"));
        assert!(head.fields.contains(&(b"X-A".to_vec(), b"1".to_vec())));
        assert_eq!(*host.body.lock().unwrap(), b"hello world");
    }

    #[test]
    fn content_length_and_eof_bodies() {
        let (r1, h1) = relay(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcIGNORED");
        r1.unwrap();
        assert_eq!(*h1.body.lock().unwrap(), b"abc");
        let (r2, h2) = relay(b"HTTP/1.1 200 OK\r\n\r\nuntil the end");
        r2.unwrap();
        assert_eq!(*h2.body.lock().unwrap(), b"until the end");
    }

    #[test]
    fn broken_responses_fail() {
        let (r, _) = relay(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        assert_eq!(r.unwrap_err().kind, FailureKind::InstanceGone);
        let (r, _) = relay(b"not http at all\r\n\r\n");
        assert_eq!(r.unwrap_err().kind, FailureKind::MalformedResponse);
        let (r, _) = relay(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert_eq!(r.unwrap_err().kind, FailureKind::MalformedResponse);
        let (r, _) = relay(b"HTTP/1.1 200");
        assert_eq!(r.unwrap_err().kind, FailureKind::InstanceGone);
        let (r, host) = relay(b"");
        assert_eq!(r.unwrap(), Relayed::NoResponse);
        assert!(host.head.lock().unwrap().is_none());
    }

    #[test]
    fn framing_and_status_the_guest_may_not_decide() {
        for bad in [
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"[..],
            b"HTTP/1.1 600 Odd\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ] {
            let (r, host) = relay(bad);
            assert_eq!(
                r.unwrap_err().kind,
                FailureKind::MalformedResponse,
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(host.head.lock().unwrap().is_none());
        }
        let (r, host) = relay(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nKeep-Alive: 5\r\nContent-Length: 2\r\n\r\nok");
        r.unwrap();
        let head = host.head.lock().unwrap().clone().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(
            head.fields,
            vec![(b"Content-Length".to_vec(), b"2".to_vec())]
        );
        assert_eq!(*host.body.lock().unwrap(), b"ok");
    }

    #[test]
    fn only_a_cleanly_ended_response_leaves_its_stream_reusable() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(ends(ok, false), Relayed::Reusable);
        for (spent, head_only) in [
            // Bytes after the body would start the next response.
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"[..],
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: x-a, Close\r\nContent-Length: 2\r\n\r\nok",
                false,
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", false),
            // No body to delimit: whatever a guest sends after it is not accounted for.
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true),
        ] {
            assert_eq!(
                ends(spent, head_only),
                Relayed::Spent,
                "{}",
                String::from_utf8_lossy(spent)
            );
        }
    }

    #[test]
    fn a_short_request_body_is_not_sent_whole() {
        let send = |declared| {
            let mut spec = RunSpec::default();
            spec.http.method = "POST".into();
            spec.http.content_length = Some(declared);
            let mut out = futures::io::Cursor::new(Vec::new());
            // Capture's body ends at once, as a client's that ended early.
            futures::executor::block_on(send_request(&mut out, &spec, &Capture::default())).unwrap()
        };
        assert!(send(0));
        assert!(!send(3));
    }
}
