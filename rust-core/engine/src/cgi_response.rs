//! Parses the header block of a CGI response (RFC 3875 section 6) as the guest writes it.
//!
//! The guest's stdout arrives in pieces of any size; [`HeadParser::feed`] keeps the bytes
//! until the blank line that ends the header block, then hands back the parsed head and
//! whatever body bytes came in the same piece.

use crate::failure::{Failure, FailureKind};
pub use crate::response_fields::ResponseHead;

/// Longest accepted header line, without its line ending.
pub const MAX_LINE: usize = 8 << 10;
/// Largest accepted header block.
pub const MAX_HEAD: usize = 64 << 10;

/// Incremental parser for the header block.
#[derive(Default)]
pub struct HeadParser {
    buf: Vec<u8>,
    /// How far `buf` has been scanned for line ends.
    scanned: usize,
    /// Start of the line being scanned.
    line_start: usize,
    done: bool,
}

/// What one call to [`HeadParser::feed`] produced.
pub enum Fed<'a> {
    /// The header block is not complete yet.
    NeedMore,
    /// The header block is complete; `body` is what followed it in this piece.
    Head(ResponseHead, &'a [u8]),
}

impl HeadParser {
    /// True once the header block has been parsed; later bytes are all body.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// True when some, but not all, of a header block has been received.
    pub fn has_partial_head(&self) -> bool {
        !self.done && !self.buf.is_empty()
    }

    /// Feeds the next piece of stdout. Must not be called again after it returned a head.
    pub fn feed<'a>(&mut self, data: &'a [u8]) -> Result<Fed<'a>, Failure> {
        debug_assert!(!self.done);
        let old_len = self.buf.len();
        self.buf.extend_from_slice(data);
        while let Some(offset) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            let end = self.scanned + offset;
            self.scanned = end + 1;
            let line = trim_cr(&self.buf[self.line_start..end]);
            if line.len() > MAX_LINE {
                return Err(malformed(format!(
                    "CGI header line longer than {MAX_LINE} bytes"
                )));
            }
            if line.is_empty() {
                let head = parse_head(&self.buf[..self.line_start])?;
                self.done = true;
                // Body bytes in `buf` all came from `data`: they start after the blank line.
                let body_start = self.scanned - old_len;
                self.buf = Vec::new();
                return Ok(Fed::Head(head, &data[body_start..]));
            }
            self.line_start = self.scanned;
        }
        self.scanned = self.buf.len();
        if self.buf.len() - self.line_start > MAX_LINE {
            return Err(malformed(format!(
                "CGI header line longer than {MAX_LINE} bytes"
            )));
        }
        if self.buf.len() > MAX_HEAD {
            return Err(malformed(format!(
                "CGI header block larger than {MAX_HEAD} bytes"
            )));
        }
        Ok(Fed::NeedMore)
    }
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureKind::MalformedResponse, message)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses the lines of a complete header block (without the blank line).
fn parse_head(block: &[u8]) -> Result<ResponseHead, Failure> {
    let mut status = None;
    let mut has_location = false;
    let mut has_content_type = false;
    let mut fields = Vec::new();
    for raw in block.split(|&b| b == b'\n') {
        let line = trim_cr(raw);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(malformed("folded CGI header line".into()));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| malformed(format!("CGI header line without ':': {}", show(line))))?;
        let name = &line[..colon];
        let value = trim_ows(&line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return Err(malformed(format!(
                "invalid CGI header name: {}",
                show(name)
            )));
        }
        if value.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(malformed(format!(
                "invalid byte in CGI header {}",
                show(name)
            )));
        }
        if name.eq_ignore_ascii_case(b"status") {
            status = Some(parse_status(value)?);
            continue;
        }
        has_location |= name.eq_ignore_ascii_case(b"location");
        has_content_type |= name.eq_ignore_ascii_case(b"content-type");
        fields.push((name.to_vec(), value.to_vec()));
    }
    let status = match status {
        Some(s) => s,
        None if has_location => 302,
        None if has_content_type => 200,
        None => {
            return Err(malformed(
                "CGI response has no Content-Type, Status or Location".into(),
            ))
        }
    };
    let mut head = ResponseHead { status, fields };
    crate::response_fields::sanitize(&mut head)?;
    Ok(head)
}

/// `Status: 404 Not Found` -> 404. The reason phrase is optional and ignored.
fn parse_status(value: &[u8]) -> Result<u16, Failure> {
    let code = value.split(|&b| b == b' ').next().unwrap_or_default();
    let parsed = std::str::from_utf8(code)
        .ok()
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=999).contains(c));
    parsed.ok_or_else(|| malformed(format!("invalid CGI Status: {}", show(value))))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// RFC 9110 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A bounded, printable rendering of guest bytes for error messages.
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(64)];
    format!("{:?}", String::from_utf8_lossy(shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> Result<(ResponseHead, Vec<u8>), Failure> {
        let mut p = HeadParser::default();
        for (i, piece) in pieces.iter().enumerate() {
            if let Fed::Head(head, body) = p.feed(piece)? {
                let mut all = body.to_vec();
                for rest in &pieces[i + 1..] {
                    all.extend_from_slice(rest);
                }
                return Ok((head, all));
            }
        }
        Err(malformed("incomplete".into()))
    }

    fn field<'a>(head: &'a ResponseHead, name: &str) -> Vec<&'a [u8]> {
        head.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    #[test]
    fn lf_and_crlf() {
        for input in [
            &b"Content-Type: text/plain\n\nhi"[..],
            &b"Content-Type: text/plain\r\n\r\nhi"[..],
        ] {
            let (head, body) = parse_all(&[input]).unwrap();
            assert_eq!(head.status, 200);
            assert_eq!(field(&head, "content-type"), vec![&b"text/plain"[..]]);
            assert_eq!(body, b"hi");
        }
    }

    #[test]
    fn split_across_pieces_byte_by_byte() {
        let input = b"Status: 201 Created\r\nX-A: 1\r\nContent-Type: a/b\r\n\r\nbody";
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        let (head, body) = parse_all(&pieces).unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(field(&head, "x-a"), vec![&b"1"[..]]);
        assert_eq!(body, b"body");
        assert!(field(&head, "status").is_empty());
    }

    #[test]
    fn location_without_status_is_302() {
        let (head, _) = parse_all(&[b"Location: /elsewhere\n\n"]).unwrap();
        assert_eq!(head.status, 302);
    }

    #[test]
    fn status_alone_is_enough() {
        let (head, _) = parse_all(&[b"Status: 204\n\n"]).unwrap();
        assert_eq!(head.status, 204);
    }

    #[test]
    fn repeated_headers_are_kept() {
        let (head, _) =
            parse_all(&[b"Content-Type: a/b\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n"]).unwrap();
        assert_eq!(field(&head, "set-cookie"), vec![&b"a=1"[..], &b"b=2"[..]]);
    }

    #[test]
    fn rejects_malformed() {
        let cases: &[&[u8]] = &[
            b"X-Only: 1\n\n",
            b"Status: abc\n\n",
            b"Status: 42\n\n",
            b"Status: 101\n\n",
            b"Status: 103 Early Hints\nContent-Type: a/b\n\n",
            b"Content-Type: a/b\nContent-Length: 1\nContent-Length: 2\n\n",
            b"Content-Type: a/b\nno colon here\n\n",
            b"Content-Type: a/b\n folded\n\n",
            b"Bad Name: x\nContent-Type: a/b\n\n",
            b"Content-Type: a\0b\n\n",
        ];
        for case in cases {
            let err = parse_all(&[case]).unwrap_err();
            assert_eq!(err.kind, FailureKind::MalformedResponse, "{case:?}");
        }
    }

    #[test]
    fn rejects_overlong_line_before_its_end_arrives() {
        let mut p = HeadParser::default();
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(p.feed(b"X-Long: ").is_ok());
        let err = p.feed(&long).err().unwrap();
        assert_eq!(err.kind, FailureKind::MalformedResponse);
    }

    #[test]
    fn rejects_overlong_block() {
        let mut p = HeadParser::default();
        let line = format!("X-Pad: {}\n", "a".repeat(1000));
        let mut result = Ok(Fed::NeedMore);
        for _ in 0..100 {
            result = p.feed(line.as_bytes());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result.err().map(|e| e.kind),
            Some(FailureKind::MalformedResponse)
        );
    }

    #[test]
    fn partial_head_is_reported() {
        let mut p = HeadParser::default();
        assert!(!p.has_partial_head());
        assert!(matches!(p.feed(b"Content-Type: a"), Ok(Fed::NeedMore)));
        assert!(p.has_partial_head());
    }
}
