//! The CGI/1.1 environment (RFC 3875 section 4.1) for one request, built the way Caddy's
//! FastCGI transport builds it, so guests written for go-wagi behind `php_fastcgi` see the
//! same variables; and the smaller, visitor-free environment of a long-lived WCGI instance.

use std::borrow::Cow;

use crate::guest::CStrings;
use crate::request::{HttpFacts, RunSpec};

/// Builds the guest's environment for one request. Nothing comes from the host process's
/// own environment.
pub fn build(spec: &RunSpec) -> Env<'_> {
    // The variables below, one per header at most, and the configured ones.
    let mut env = Env {
        vars: Vec::with_capacity(REQUEST_VARIABLES + spec.http.headers.len() + spec.env.len()),
    };
    site_level(spec, &mut env);
    request_level(spec, &mut env);
    env.extend(&spec.env);
    env
}

/// The environment a long-lived WCGI instance starts with. It serves every visitor, so it
/// gets only what names the site and the module, the configured `env` evaluated without
/// any request, and `WAGI_WCGI=true`: no query string, cookie or address of whichever
/// request happened to start it. Each request brings its own facts over HTTP.
pub fn instance(spec: &RunSpec) -> Env<'_> {
    let mut env = Env::default();
    site_level(spec, &mut env);
    env.extend(spec.site_env.as_ref().unwrap_or(&spec.env));
    env.set("WAGI_WCGI", "true");
    env
}

/// How many variables [`site_level`] and [`request_level`] set at most (a capacity hint).
const REQUEST_VARIABLES: usize = 28;

/// The variables that are the same for every request to a module: the only derived ones a
/// WCGI instance sees.
fn site_level<'a>(spec: &'a RunSpec, env: &mut Env<'a>) {
    let script = &spec.script;
    env.set("GATEWAY_INTERFACE", "CGI/1.1");
    env.set("SERVER_SOFTWARE", &spec.http.server_software);
    env.set("DOCUMENT_ROOT", &script.document_root);
    env.set("SCRIPT_NAME", &script.script_name);
    env.set("SCRIPT_FILENAME", &script.script_filename);
}

/// The variables of one request, as Caddy's FastCGI transport (`buildEnv`) sets them.
fn request_level<'a>(spec: &'a RunSpec, env: &mut Env<'a>) {
    let http = &spec.http;
    let script = &spec.script;
    let (remote_ip, remote_port) = split_host_port(&http.remote_addr);
    let (server_name, server_port) = split_host_port(&http.host);
    let https = http.tls_protocol.is_some();
    let server_port = match server_port {
        "" if https => "443",
        "" => "80",
        port => port,
    };

    env.set("SERVER_NAME", server_name);
    env.set("SERVER_PORT", server_port);
    if !http.server_addr.is_empty() {
        env.set("SERVER_ADDR", &http.server_addr);
    }
    env.set("SERVER_PROTOCOL", &http.protocol);
    env.set("REQUEST_METHOD", &http.method);
    env.set("REQUEST_SCHEME", if https { "https" } else { "http" });
    env.set("REQUEST_URI", &http.request_uri);
    env.set("QUERY_STRING", &http.query_string);
    // Caddy's DOCUMENT_URI is the request path up to the script: the script's URL path.
    env.set("DOCUMENT_URI", &script.script_name);
    env.set("PATH_INFO", &script.path_info);
    if !script.path_info.is_empty() {
        // RFC 3875 4.1.6: PATH_TRANSLATED exists only with PATH_INFO.
        env.set(
            "PATH_TRANSLATED",
            join_under_root(&script.document_root, &script.path_info),
        );
    }
    env.set("REMOTE_ADDR", remote_ip);
    env.set("REMOTE_HOST", remote_ip);
    env.set("REMOTE_PORT", remote_port);
    // Set even when empty, as Caddy does, so a guest can tell "nobody" from "not told".
    env.set("REMOTE_IDENT", "");
    env.set("REMOTE_USER", &http.remote_user);
    env.set("AUTH_TYPE", auth_type(http));
    env.set(
        "CONTENT_LENGTH",
        http.content_length
            .map(|n| n.to_string())
            .unwrap_or_default(),
    );
    env.set("CONTENT_TYPE", header(http, "content-type").unwrap_or(""));
    env.set("HTTP_HOST", &http.host);
    if let Some(proto) = &http.tls_protocol {
        env.set("HTTPS", "on");
        env.set("SSL_PROTOCOL", proto);
    }
    if let Some(cipher) = &http.tls_cipher {
        env.set("SSL_CIPHER", cipher);
    }

    for (name, value) in &http.headers {
        // httpoxy: a `Proxy` request header must never become HTTP_PROXY.
        if name.eq_ignore_ascii_case("proxy") || name.eq_ignore_ascii_case("host") {
            continue;
        }
        let key = header_env_name(name);
        let separator = if name.eq_ignore_ascii_case("cookie") {
            "; "
        } else {
            ", "
        };
        env.append(key, value, separator);
    }
}

/// RFC 3875 4.1.1: the scheme the user authenticated with (`Basic` behind `basic_auth`),
/// taken from the `Authorization` header the authentication handler accepted; empty when
/// no user was authenticated, whatever the client sent.
fn auth_type(http: &HttpFacts) -> &str {
    if http.remote_user.is_empty() {
        return "";
    }
    header(http, "authorization")
        .map(|v| v.trim_start().split(' ').next().unwrap_or(""))
        .unwrap_or("")
}

/// An ordered environment where setting a key again replaces its value in place. It
/// borrows what it can from the request: it lives only until laid out for the guest.
#[derive(Default)]
pub struct Env<'a> {
    vars: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Env<'a> {
    /// The variables in order, laid out as the guest's `environ_get` writes them.
    pub fn to_cstrings(&self) -> CStrings {
        CStrings::environ(self.vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.vars.iter().position(|(k, _)| k == key)
    }

    fn set(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let (key, value) = (key.into(), value.into());
        match self.position(&key) {
            Some(i) => self.vars[i].1 = value,
            None => self.vars.push((key, value)),
        }
    }

    fn extend(&mut self, vars: &'a [(String, String)]) {
        for (key, value) in vars {
            self.set(key.as_str(), value.as_str());
        }
    }

    fn append(&mut self, key: String, value: &'a str, separator: &str) {
        match self.position(&key) {
            Some(i) => {
                let existing = self.vars[i].1.to_mut();
                existing.push_str(separator);
                existing.push_str(value);
            }
            None => self.vars.push((key.into(), value.into())),
        }
    }
}

/// `X-Forwarded-For` -> `HTTP_X_FORWARDED_FOR`.
fn header_env_name(name: &str) -> String {
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.chars().map(|c| match c {
        '-' | ' ' => '_',
        c => c.to_ascii_uppercase(),
    }));
    key
}

fn header<'a>(http: &'a HttpFacts, name: &str) -> Option<&'a str> {
    http.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]` into host (without brackets) and port.
pub(crate) fn split_host_port(addr: &str) -> (&str, &str) {
    if let Some(rest) = addr.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').unwrap_or("")),
            None => (addr, ""),
        };
    }
    match addr.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => (addr, ""),
        Some((host, port)) => (host, port),
        None => (addr, ""),
    }
}

/// `root` + `path` with exactly one slash between them.
fn join_under_root(root: &str, path: &str) -> String {
    format!(
        "{}/{}",
        root.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ScriptFacts;

    fn spec() -> RunSpec {
        RunSpec {
            http: HttpFacts {
                method: "POST".into(),
                request_uri: "/api.wasm/users/7?x=1".into(),
                query_string: "x=1".into(),
                protocol: "HTTP/1.1".into(),
                host: "example.com:8080".into(),
                remote_addr: "[::1]:5555".into(),
                tls_protocol: None,
                headers: vec![
                    ("Content-Type".into(), "text/plain".into()),
                    ("X-Forwarded-For".into(), "a".into()),
                    ("X-Forwarded-For".into(), "b".into()),
                    ("Cookie".into(), "a=1".into()),
                    ("Cookie".into(), "b=2".into()),
                    ("Proxy".into(), "http://evil".into()),
                ],
                content_length: Some(5),
                server_software: "Caddy".into(),
                ..HttpFacts::default()
            },
            script: ScriptFacts {
                document_root: "/srv/site".into(),
                script_name: "/api.wasm".into(),
                script_filename: "/srv/site/api.wasm".into(),
                path_info: "/users/7".into(),
            },
            ..RunSpec::default()
        }
    }

    fn get<'a>(env: &'a Env<'_>, key: &str) -> Option<&'a str> {
        env.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    #[test]
    fn cgi_variables() {
        let s = spec();
        let env = build(&s);
        assert_eq!(get(&env, "GATEWAY_INTERFACE"), Some("CGI/1.1"));
        assert_eq!(get(&env, "REQUEST_METHOD"), Some("POST"));
        assert_eq!(get(&env, "SERVER_NAME"), Some("example.com"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("8080"));
        assert_eq!(get(&env, "REMOTE_ADDR"), Some("::1"));
        assert_eq!(get(&env, "REMOTE_PORT"), Some("5555"));
        assert_eq!(get(&env, "PATH_INFO"), Some("/users/7"));
        assert_eq!(get(&env, "PATH_TRANSLATED"), Some("/srv/site/users/7"));
        assert_eq!(get(&env, "QUERY_STRING"), Some("x=1"));
        assert_eq!(get(&env, "CONTENT_LENGTH"), Some("5"));
        assert_eq!(get(&env, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&env, "REQUEST_SCHEME"), Some("http"));
        assert_eq!(get(&env, "HTTPS"), None);
    }

    #[test]
    fn repeated_headers_join_and_cookie_uses_semicolons() {
        let s = spec();
        let env = build(&s);
        assert_eq!(get(&env, "HTTP_X_FORWARDED_FOR"), Some("a, b"));
        assert_eq!(get(&env, "HTTP_COOKIE"), Some("a=1; b=2"));
    }

    #[test]
    fn proxy_header_never_becomes_http_proxy() {
        let s = spec();
        let env = build(&s);
        assert_eq!(get(&env, "HTTP_PROXY"), None);
    }

    #[test]
    fn tls_and_default_ports() {
        let mut s = spec();
        s.http.host = "example.com".into();
        s.http.tls_protocol = Some("TLSv1.3".into());
        let env = build(&s);
        assert_eq!(get(&env, "HTTPS"), Some("on"));
        assert_eq!(get(&env, "SSL_PROTOCOL"), Some("TLSv1.3"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("443"));
        assert_eq!(get(&env, "REQUEST_SCHEME"), Some("https"));
    }

    #[test]
    fn configured_env_overrides_and_no_path_translated_without_path_info() {
        let mut s = spec();
        s.script.path_info.clear();
        s.env = vec![
            ("SERVER_NAME".into(), "override".into()),
            ("APP_MODE".into(), "prod".into()),
        ];
        let env = build(&s);
        assert_eq!(get(&env, "SERVER_NAME"), Some("override"));
        assert_eq!(get(&env, "APP_MODE"), Some("prod"));
        assert_eq!(get(&env, "PATH_TRANSLATED"), None);
        assert_eq!(get(&env, "PATH_INFO"), Some(""));
    }

    #[test]
    fn fastcgi_parity_variables() {
        let mut s = spec();
        s.http.server_addr = "127.0.0.1".into();
        s.http.request_uri = "/before-rewrite?x=1".into();
        let env = build(&s);
        assert_eq!(get(&env, "SERVER_ADDR"), Some("127.0.0.1"));
        assert_eq!(get(&env, "REQUEST_URI"), Some("/before-rewrite?x=1"));
        assert_eq!(get(&env, "DOCUMENT_URI"), Some("/api.wasm"));
        assert_eq!(get(&env, "REMOTE_IDENT"), Some(""));
        assert_eq!(get(&env, "REMOTE_USER"), Some(""));
        assert_eq!(get(&env, "AUTH_TYPE"), Some(""));
        assert_eq!(get(&env, "SSL_CIPHER"), None);
        assert_eq!(get(&build(&spec()), "SERVER_ADDR"), None);
    }

    #[test]
    fn auth_type_only_for_an_authenticated_user() {
        let mut s = spec();
        s.http
            .headers
            .push(("Authorization".into(), "Basic YWxpY2U6cHc=".into()));
        assert_eq!(get(&build(&s), "AUTH_TYPE"), Some(""));
        s.http.remote_user = "alice".into();
        let env = build(&s);
        assert_eq!(get(&env, "REMOTE_USER"), Some("alice"));
        assert_eq!(get(&env, "AUTH_TYPE"), Some("Basic"));
    }

    #[test]
    fn tls_cipher() {
        let mut s = spec();
        s.http.tls_protocol = Some("TLSv1.3".into());
        s.http.tls_cipher = Some("TLS_AES_128_GCM_SHA256".into());
        assert_eq!(
            get(&build(&s), "SSL_CIPHER"),
            Some("TLS_AES_128_GCM_SHA256")
        );
    }

    #[test]
    fn instance_env_has_no_visitor_in_it() {
        let mut s = spec();
        s.env = vec![("VISITOR".into(), "x=1".into())];
        s.site_env = Some(vec![("VISITOR".into(), "".into())]);
        let env = instance(&s);
        let keys: Vec<&str> = env.vars.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(
            keys,
            [
                "GATEWAY_INTERFACE",
                "SERVER_SOFTWARE",
                "DOCUMENT_ROOT",
                "SCRIPT_NAME",
                "SCRIPT_FILENAME",
                "VISITOR",
                "WAGI_WCGI"
            ]
        );
        assert_eq!(get(&env, "VISITOR"), Some(""));
        assert_eq!(get(&env, "WAGI_WCGI"), Some("true"));
        assert_eq!(get(&env, "SCRIPT_NAME"), Some("/api.wasm"));
    }

    #[test]
    fn instance_env_uses_env_without_placeholders() {
        let mut s = spec();
        s.env = vec![("APP_MODE".into(), "prod".into())];
        assert_eq!(get(&instance(&s), "APP_MODE"), Some("prod"));
    }

    #[test]
    fn split_host_port_forms() {
        assert_eq!(split_host_port("1.2.3.4:80"), ("1.2.3.4", "80"));
        assert_eq!(split_host_port("[::1]:80"), ("::1", "80"));
        assert_eq!(split_host_port("[::1]"), ("::1", ""));
        assert_eq!(split_host_port("::1"), ("::1", ""));
        assert_eq!(split_host_port("host"), ("host", ""));
    }
}
