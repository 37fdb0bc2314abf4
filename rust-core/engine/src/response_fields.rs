//! What a guest may say in its response head, for CGI and WCGI alike.
//!
//! The guest decides the status and the end-to-end headers; the server decides how the
//! response is framed and what happens to the connection. So the status must be a final
//! one (a 1xx would go out as an interim response, a 101 as a protocol switch), hop-by-hop
//! headers are dropped, and `Content-Length` must be one decimal number or the response is
//! refused: two different lengths reaching a client or a proxy in front of Caddy are a
//! response-splitting hazard.

use crate::failure::{Failure, FailureKind};

/// The status and header fields of a guest's response (CGI or WCGI), ready for the HTTP
/// response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Fields in the order the guest wrote them, without `Status`. Repeated names repeat.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Headers that describe one connection, not the response (RFC 9110 7.6.1), plus the
/// framing header `Transfer-Encoding`: the server frames the response itself.
const HOP_BY_HOP: [&[u8]; 8] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
];

/// The statuses a guest may answer with.
pub const FINAL_STATUSES: std::ops::RangeInclusive<u16> = 200..=599;

fn malformed(message: String) -> Failure {
    Failure::new(FailureKind::MalformedResponse, message)
}

/// Checks the status and removes what the guest may not decide. Fails (502) when the head
/// cannot be made valid: a non-final status, or conflicting or invalid `Content-Length`s.
pub fn sanitize(head: &mut ResponseHead) -> Result<(), Failure> {
    if !FINAL_STATUSES.contains(&head.status) {
        return Err(malformed(format!(
            "guest answered with status {}; only 200-599 are allowed",
            head.status
        )));
    }
    let named_in_connection = connection_tokens(&head.fields);
    let mut length: Option<Vec<u8>> = None;
    let mut kept = Vec::with_capacity(head.fields.len());
    for (name, value) in head.fields.drain(..) {
        let lower = name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_slice()) || named_in_connection.contains(&lower) {
            continue;
        }
        if lower == b"content-length" {
            for piece in value.split(|&b| b == b',') {
                let n = parse_length(piece)?;
                match &length {
                    Some(seen) if *seen != n => {
                        return Err(malformed(
                            "guest sent conflicting Content-Length values".into(),
                        ))
                    }
                    _ => length = Some(n),
                }
            }
            continue;
        }
        kept.push((name, value));
    }
    // 204 and 304 have no body, so no length (RFC 9110 8.6).
    if let Some(n) = length.filter(|_| head.status != 204 && head.status != 304) {
        kept.push((b"Content-Length".to_vec(), n));
    }
    head.fields = kept;
    Ok(())
}

/// The header names listed in `Connection` values, lower-cased: they are hop-by-hop too.
fn connection_tokens(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|t| t.trim_ascii().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// One `Content-Length` value: ASCII digits only, canonical (no sign, no spaces inside).
fn parse_length(value: &[u8]) -> Result<Vec<u8>, Failure> {
    let digits = value.trim_ascii();
    let valid = !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit);
    if !valid {
        return Err(malformed(format!(
            "guest sent an invalid Content-Length: {:?}",
            String::from_utf8_lossy(&value[..value.len().min(32)])
        )));
    }
    // Leading zeros would make equal lengths compare unequal as text.
    let first = digits
        .iter()
        .position(|&b| b != b'0')
        .unwrap_or(digits.len() - 1);
    Ok(digits[first..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, fields: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            status,
            fields: fields
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn names(h: &ResponseHead) -> Vec<String> {
        h.fields
            .iter()
            .map(|(n, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    #[test]
    fn only_final_statuses() {
        for status in [100, 101, 103, 199, 600, 999] {
            let err = sanitize(&mut head(status, &[])).unwrap_err();
            assert_eq!(err.kind, FailureKind::MalformedResponse, "{status}");
        }
        for status in [200, 204, 302, 404, 599] {
            sanitize(&mut head(status, &[])).unwrap();
        }
    }

    #[test]
    fn hop_by_hop_and_framing_headers_are_dropped() {
        let mut h = head(
            200,
            &[
                ("Transfer-Encoding", "gzip"),
                ("Connection", "close, X-Secret"),
                ("X-Secret", "1"),
                ("Keep-Alive", "timeout=5"),
                ("Upgrade", "h2c"),
                ("Trailer", "X"),
                ("X-Kept", "yes"),
                ("Set-Cookie", "a=1"),
            ],
        );
        sanitize(&mut h).unwrap();
        assert_eq!(names(&h), vec!["X-Kept=yes", "Set-Cookie=a=1"]);
    }

    #[test]
    fn content_length_must_agree() {
        let mut same = head(200, &[("Content-Length", "5"), ("content-length", "05, 5")]);
        sanitize(&mut same).unwrap();
        assert_eq!(names(&same), vec!["Content-Length=5"]);
        for bad in [
            &[("Content-Length", "5"), ("Content-Length", "6")][..],
            &[("Content-Length", "5, 6")][..],
            &[("Content-Length", "-1")][..],
            &[("Content-Length", "+5")][..],
            &[("Content-Length", "")][..],
            &[("Content-Length", "1 2")][..],
            &[("Content-Length", "99999999999999999999")][..],
        ] {
            let err = sanitize(&mut head(200, bad)).unwrap_err();
            assert_eq!(err.kind, FailureKind::MalformedResponse, "{bad:?}");
        }
    }

    #[test]
    fn no_length_on_bodiless_statuses() {
        let mut h = head(204, &[("Content-Length", "3")]);
        sanitize(&mut h).unwrap();
        assert!(h.fields.is_empty());
    }
}
