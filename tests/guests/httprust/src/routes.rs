//! The routes, picked by the last segment of the request's path.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use wasip2::http::types::{IncomingRequest, Method, Scheme};
use wasip2::io::streams::StreamError;

use crate::files;
use crate::http::{respond, start, ResponseOut};

/// Body bytes are read and generated in pieces of this size, never whole.
const PIECE: usize = 64 << 10;

pub fn route(request: IncomingRequest, out: ResponseOut) {
    let target = request.path_with_query().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    // `None` means the host stopped taking the response; there is no one left to tell.
    let _ = match path.rsplit('/').next().unwrap_or_default() {
        "hello" => respond(out, 200, b"hello from rust\n"),
        "request" => describe(&request, path, query, out),
        "echo" => echo(&request, out),
        "big" => big(
            param(query, "n").and_then(|n| n.parse().ok()).unwrap_or(0),
            out,
        ),
        "status" => status(param(query, "code").unwrap_or("200"), out),
        "env" => env(out),
        "file" => files::serve(param(query, "name").unwrap_or_default(), out),
        "sleep" => sleep(out),
        "spin" => spin(),
        "flushspin" => flush_spin(out),
        "grow" => grow(),
        "trap" => panic!("the guest failed on purpose"),
        _ => respond(out, 404, b"no such route\n"),
    };
}

/// The value of `name` in a query string (taken as sent, not percent-decoded).
fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// What the guest sees of the request, one fact a line; a repeated header is a line per
/// value, as the host delivers it.
fn describe(request: &IncomingRequest, path: &str, query: &str, out: ResponseOut) -> Option<()> {
    let method = match request.method() {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other,
    };
    let scheme = match request.scheme() {
        Some(Scheme::Http) => "http".into(),
        Some(Scheme::Https) => "https".into(),
        Some(Scheme::Other(other)) => other,
        None => String::new(),
    };
    let mut text = String::new();
    let _ = writeln!(text, "method={method}\npath={path}\nquery={query}");
    let _ = writeln!(text, "scheme={scheme}");
    let _ = writeln!(
        text,
        "authority={}",
        request.authority().unwrap_or_default()
    );
    for (name, value) in request.headers().entries() {
        let _ = writeln!(text, "header {name}={}", String::from_utf8_lossy(&value));
    }
    respond(out, 200, text.as_bytes())
}

/// Streams the request body back piece by piece as it arrives.
fn echo(request: &IncomingRequest, out: ResponseOut) -> Option<()> {
    let body = request.consume().ok()?;
    let input = body.stream().ok()?;
    let mut response = start(out, 200, &[("content-type", b"application/octet-stream")])?;
    loop {
        match input.blocking_read(PIECE as u64) {
            Ok(piece) => response.write(&piece)?,
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => return None,
        }
    }
    drop(input);
    drop(body);
    response.finish()
}

/// `n` bytes of 'x', generated a piece at a time as the client takes them.
fn big(mut n: u64, out: ResponseOut) -> Option<()> {
    let piece = vec![b'x'; PIECE];
    let mut response = start(out, 200, &[])?;
    while n > 0 {
        let len = usize::try_from(n).unwrap_or(PIECE).min(PIECE);
        response.write(&piece[..len])?;
        n -= len as u64;
    }
    response.finish()
}

/// The status asked for, with a repeated response header.
fn status(code: &str, out: ResponseOut) -> Option<()> {
    let Ok(code) = code.parse() else {
        return respond(out, 400, b"code is not a number\n");
    };
    let headers: [(&str, &[u8]); 3] = [
        ("set-cookie", b"a=1"),
        ("set-cookie", b"b=2"),
        ("x-guest", b"status"),
    ];
    let mut response = start(out, code, &headers)?;
    response.write(b"status\n")?;
    response.finish()
}

/// The environment the site gives the component, one KEY=value a line.
fn env(out: ResponseOut) -> Option<()> {
    let mut text = String::new();
    for (key, value) in wasip2::cli::environment::get_environment() {
        let _ = writeln!(text, "{key}={value}");
    }
    respond(out, 200, text.as_bytes())
}

/// Waits a minute on a monotonic-clock pollable (the host's timeout ends it first).
fn sleep(out: ResponseOut) -> Option<()> {
    let minute = wasip2::clocks::monotonic_clock::subscribe_duration(60_000_000_000);
    wasip2::io::poll::poll(&[&minute]);
    respond(out, 200, b"woke\n")
}

/// Runs until the host stops it.
fn spin() -> Option<()> {
    let mut turns = 0u64;
    loop {
        turns = core::hint::black_box(turns.wrapping_add(1));
    }
}

/// Writes a line, then runs until the host stops it: the line reaches the client while
/// the guest computes.
fn flush_spin(out: ResponseOut) -> Option<()> {
    let mut response = start(out, 200, &[])?;
    response.write(b"first\n")?;
    spin()
}

/// Takes memory a MiB at a time, touching every page, until the host refuses more.
fn grow() -> Option<()> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        held.push(core::hint::black_box(vec![1u8; 1 << 20]));
    }
}
