//! Answering over wasi:http: a response head handed to the host, then a body written in
//! the pieces the host accepts. Every step returns `None` once the host refuses it (the
//! client went away, the request ended): the route then stops, and a body dropped without
//! `finish` tells the host the response is incomplete.

use wasip2::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::streams::OutputStream;

pub type ResponseOut = ResponseOutparam;

/// The body of a response whose head is with the host.
pub struct Body {
    // Declared first so it is dropped before the body it belongs to.
    stream: OutputStream,
    body: OutgoingBody,
}

/// Hands the host a response head; the head goes out with the first body bytes.
pub fn start(out: ResponseOut, status: u16, headers: &[(&str, &[u8])]) -> Option<Body> {
    let fields = Fields::new();
    for (name, value) in headers {
        fields.append(name, value).ok()?;
    }
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).ok()?;
    let body = response.body().ok()?;
    let stream = body.write().ok()?;
    ResponseOutparam::set(out, Ok(response));
    Some(Body { stream, body })
}

/// A whole response at once.
pub fn respond(out: ResponseOut, status: u16, body: &[u8]) -> Option<()> {
    let mut response = start(out, status, &[("content-type", b"text/plain")])?;
    response.write(body)?;
    response.finish()
}

impl Body {
    /// Writes `data` as the host permits, waiting while it does not, then flushes it so
    /// that it reaches the client now rather than with the next piece.
    pub fn write(&mut self, mut data: &[u8]) -> Option<()> {
        while !data.is_empty() {
            let permitted = self.stream.check_write().ok()?;
            if permitted == 0 {
                self.stream.subscribe().block();
                continue;
            }
            let n = data
                .len()
                .min(usize::try_from(permitted).unwrap_or(usize::MAX));
            self.stream.write(&data[..n]).ok()?;
            data = &data[n..];
        }
        self.stream.blocking_flush().ok()
    }

    /// Ends the body: the response is complete.
    pub fn finish(self) -> Option<()> {
        let Body { stream, body } = self;
        drop(stream);
        OutgoingBody::finish(body, None).ok()
    }
}
