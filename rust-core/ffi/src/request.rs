//! Decoding the request record the server passes to `wagi_handle`.
//!
//! The record is one flat buffer (so the server passes a single pointer with no pointers
//! inside, which is what cgo allows): a sequence of fields, each a one-byte `wagi_field`
//! tag followed by its strings, each string a little-endian u32 length and that many bytes.
//! `WAGI_FIELD_HEADER`, `WAGI_FIELD_ENV`, `WAGI_FIELD_SITE_ENV` and the mounts carry two
//! strings, the rest one.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use wagi_core::{
    Failure, FailureKind, FileIdentity, GostRules, ListRules, Mode, Mount, NetEntry, NetLimits,
    NetPolicy, RuleSet, RunSpec, StderrMode,
};

/// Field tags of the request record.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wagi_field {
    /// Path of the wasm file to run.
    WAGI_FIELD_MODULE_PATH = 1,
    WAGI_FIELD_METHOD = 2,
    /// The request target as the client sent it, before any rewrite, e.g. `/a?b=c`.
    WAGI_FIELD_REQUEST_URI = 3,
    WAGI_FIELD_QUERY_STRING = 4,
    /// e.g. `HTTP/1.1`.
    WAGI_FIELD_PROTOCOL = 5,
    /// The Host the client asked for.
    WAGI_FIELD_HOST = 6,
    /// `ip:port` of the client.
    WAGI_FIELD_REMOTE_ADDR = 7,
    /// Present only over TLS: the protocol name, e.g. `TLSv1.3`.
    WAGI_FIELD_TLS_PROTOCOL = 8,
    /// Two strings: name, value. Once per value of a repeated header.
    WAGI_FIELD_HEADER = 9,
    /// Decimal body length; absent when unknown.
    WAGI_FIELD_CONTENT_LENGTH = 10,
    WAGI_FIELD_SERVER_SOFTWARE = 11,
    WAGI_FIELD_DOCUMENT_ROOT = 12,
    WAGI_FIELD_SCRIPT_NAME = 13,
    WAGI_FIELD_SCRIPT_FILENAME = 14,
    WAGI_FIELD_PATH_INFO = 15,
    /// Two strings: key, value. Configured guest environment.
    WAGI_FIELD_ENV = 16,
    /// Two strings: host directory, guest path. Read-only.
    WAGI_FIELD_MOUNT_RO = 17,
    /// Two strings: host directory, guest path. Read-write.
    WAGI_FIELD_MOUNT_RW = 18,
    /// Decimal milliseconds.
    WAGI_FIELD_TIMEOUT_MS = 19,
    /// Decimal bytes.
    WAGI_FIELD_MEMORY_BYTES = 20,
    /// Directory for precompiled code; absent: compile in memory only.
    WAGI_FIELD_CACHE_DIR = 21,
    /// Decimal milliseconds an unused module stays loaded.
    WAGI_FIELD_KEEPALIVE_MS = 22,
    /// `auto` (default: WCGI if the module exports `wagi_wcgi`), `cgi` or `wcgi`.
    WAGI_FIELD_MODE = 23,
    /// Decimal count of long-lived instances per module in WCGI mode.
    WAGI_FIELD_INSTANCES = 24,
    /// IP address of the listener the request came in on (`SERVER_ADDR`).
    WAGI_FIELD_SERVER_ADDR = 25,
    /// The authenticated user (`REMOTE_USER`), e.g. from `basic_auth`.
    WAGI_FIELD_REMOTE_USER = 26,
    /// Present only over TLS: the cipher suite name, e.g. `TLS_AES_128_GCM_SHA256`.
    WAGI_FIELD_TLS_CIPHER = 27,
    /// `1` when the client is a proxy the server trusts (`trusted_proxies`), so its
    /// `X-Forwarded-*` headers are kept; absent or `0` otherwise.
    WAGI_FIELD_TRUSTED_PROXY = 28,
    /// Two strings: key, value. The configured guest environment evaluated without the
    /// request, for long-lived WCGI instances. Absent when `WAGI_FIELD_ENV` values hold no
    /// placeholders (they serve instances as they are).
    WAGI_FIELD_SITE_ENV = 29,
    /// Decimal milliseconds a file in the cache directory may go unused before it is pruned.
    WAGI_FIELD_CACHE_MAX_AGE_MS = 30,
    /// One argument of the guest (`argv`), in order; absent: the module's path alone.
    WAGI_FIELD_ARG = 31,
    /// One argument evaluated without the request, for long-lived WCGI instances. Absent
    /// when the `WAGI_FIELD_ARG` values hold no placeholders.
    WAGI_FIELD_SITE_ARG = 32,
    /// The exported function a run starts at instead of `_start`.
    WAGI_FIELD_ENTRYPOINT = 33,
    /// What becomes of the guest's stderr: `log` (default) or `discard`.
    WAGI_FIELD_STDERR = 34,
    /// One `network` allow entry (`host`, `*.domain`, IP, CIDR, optional `:port[-port]`).
    /// Turns outbound network on, with the `network` lists.
    WAGI_FIELD_NET_ALLOW = 35,
    /// One `network` deny entry, as for `WAGI_FIELD_NET_ALLOW`.
    WAGI_FIELD_NET_DENY = 36,
    /// A go-wagi `WASI_NET` rule string (`bypass=...`). Turns outbound network on with that
    /// reading. A site record whose env holds a non-empty `WASI_NET` and no allow/deny
    /// field gets it from there (the other network fields then apply to it).
    WAGI_FIELD_NET_WASI = 37,
    /// Decimal count of connection files a CGI request or a WCGI instance may hold open.
    WAGI_FIELD_NET_MAX_CONNECTIONS = 38,
    /// Decimal milliseconds resolving and connecting may take.
    WAGI_FIELD_NET_CONNECT_TIMEOUT_MS = 39,
    /// Decimal bytes buffered per direction per connection.
    WAGI_FIELD_NET_BUFFER_BYTES = 40,
    /// PEM file of CAs trusted for `/tls` connections besides the system's.
    WAGI_FIELD_NET_CA_FILE = 41,
    /// Five decimal strings: the device, inode, size, modification and change times
    /// (nanoseconds since the epoch, may be negative) of the module file as the server
    /// just stat'ed it. Optional: without it the engine stats the file itself.
    WAGI_FIELD_MODULE_IDENTITY = 42,
}

impl wagi_field {
    fn from_u8(tag: u8) -> Option<Self> {
        use wagi_field::*;
        const ALL: [wagi_field; 42] = [
            WAGI_FIELD_MODULE_PATH,
            WAGI_FIELD_METHOD,
            WAGI_FIELD_REQUEST_URI,
            WAGI_FIELD_QUERY_STRING,
            WAGI_FIELD_PROTOCOL,
            WAGI_FIELD_HOST,
            WAGI_FIELD_REMOTE_ADDR,
            WAGI_FIELD_TLS_PROTOCOL,
            WAGI_FIELD_HEADER,
            WAGI_FIELD_CONTENT_LENGTH,
            WAGI_FIELD_SERVER_SOFTWARE,
            WAGI_FIELD_DOCUMENT_ROOT,
            WAGI_FIELD_SCRIPT_NAME,
            WAGI_FIELD_SCRIPT_FILENAME,
            WAGI_FIELD_PATH_INFO,
            WAGI_FIELD_ENV,
            WAGI_FIELD_MOUNT_RO,
            WAGI_FIELD_MOUNT_RW,
            WAGI_FIELD_TIMEOUT_MS,
            WAGI_FIELD_MEMORY_BYTES,
            WAGI_FIELD_CACHE_DIR,
            WAGI_FIELD_KEEPALIVE_MS,
            WAGI_FIELD_MODE,
            WAGI_FIELD_INSTANCES,
            WAGI_FIELD_SERVER_ADDR,
            WAGI_FIELD_REMOTE_USER,
            WAGI_FIELD_TLS_CIPHER,
            WAGI_FIELD_TRUSTED_PROXY,
            WAGI_FIELD_SITE_ENV,
            WAGI_FIELD_CACHE_MAX_AGE_MS,
            WAGI_FIELD_ARG,
            WAGI_FIELD_SITE_ARG,
            WAGI_FIELD_ENTRYPOINT,
            WAGI_FIELD_STDERR,
            WAGI_FIELD_NET_ALLOW,
            WAGI_FIELD_NET_DENY,
            WAGI_FIELD_NET_WASI,
            WAGI_FIELD_NET_MAX_CONNECTIONS,
            WAGI_FIELD_NET_CONNECT_TIMEOUT_MS,
            WAGI_FIELD_NET_BUFFER_BYTES,
            WAGI_FIELD_NET_CA_FILE,
            WAGI_FIELD_MODULE_IDENTITY,
        ];
        ALL.into_iter().find(|f| *f as u8 == tag)
    }
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::new(
        FailureKind::Internal,
        format!("bad request record: {}", message.into()),
    )
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self) -> Result<&'a [u8], Failure> {
        let (len, rest) = self
            .buf
            .split_first_chunk::<4>()
            .ok_or_else(|| invalid("truncated length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(invalid("truncated string"));
        }
        let (value, rest) = rest.split_at(len);
        self.buf = rest;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, Failure> {
        // Request facts are text; bytes that are not UTF-8 (rare, from obs-text headers) are
        // replaced, since WASI environment variables must be UTF-8 anyway.
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    fn number(&mut self) -> Result<u64, Failure> {
        self.parsed()
    }

    fn parsed<N: std::str::FromStr>(&mut self) -> Result<N, Failure> {
        let s = self.string()?;
        s.parse()
            .map_err(|_| invalid(format!("not a number: {s:?}")))
    }
}

/// Decodes a site's configuration record (`wagi_site_new`): the fields that do not change
/// per request.
pub(crate) fn decode_site(record: &[u8]) -> Result<RunSpec, Failure> {
    let mut spec = RunSpec::default();
    apply(&mut spec, record)?;
    // go-wagi's switch: a non-empty WASI_NET in the guest's env, unless rules came in
    // their own fields (the `network` settings alone, e.g. a connection cap, apply to it).
    let no_rules = spec
        .network
        .as_ref()
        .is_none_or(|p| p.rules == RuleSet::List(ListRules::default()));
    let wasi_net = spec.env.iter().rev().find(|(k, _)| k == "WASI_NET");
    if let Some((_, rule)) = wasi_net.filter(|(_, rule)| no_rules && !rule.is_empty()) {
        let rules = RuleSet::Gost(GostRules::parse(rule));
        network(&mut spec).rules = rules;
    }
    Ok(spec)
}

/// The spec's network policy, made (with nothing allowed) if it has none yet.
fn network(spec: &mut RunSpec) -> &mut NetPolicy {
    let policy = spec.network.get_or_insert_with(|| {
        Arc::new(NetPolicy {
            rules: RuleSet::List(ListRules::default()),
            limits: NetLimits::default(),
            ca_file: None,
        })
    });
    Arc::make_mut(policy)
}

/// Adds a `network` allow or deny entry.
fn net_entry(spec: &mut RunSpec, entry: &str, allow: bool) -> Result<(), Failure> {
    let entry = NetEntry::parse(entry).map_err(invalid)?;
    let policy = network(spec);
    if !matches!(policy.rules, RuleSet::List(_)) {
        policy.rules = RuleSet::List(ListRules::default());
    }
    if let RuleSet::List(lists) = &mut policy.rules {
        if allow {
            lists.allow.push(entry);
        } else {
            lists.deny.push(entry);
        }
    }
    Ok(())
}

/// Decodes a request record on top of its site's configuration.
pub(crate) fn decode_request(site: &RunSpec, record: &[u8]) -> Result<RunSpec, Failure> {
    let mut spec = site.clone();
    apply(&mut spec, record)?;
    if spec.module_path.as_os_str().is_empty() {
        return Err(invalid("no module path"));
    }
    Ok(spec)
}

/// Sets or appends (headers, env, mounts) each field of `record` in `spec`.
fn apply(spec: &mut RunSpec, record: &[u8]) -> Result<(), Failure> {
    use wagi_field::*;
    let mut r = Reader { buf: record };
    while let Some((&tag, rest)) = r.buf.split_first() {
        r.buf = rest;
        let field = wagi_field::from_u8(tag).ok_or_else(|| invalid(format!("tag {tag}")))?;
        match field {
            WAGI_FIELD_MODULE_PATH => spec.module_path = PathBuf::from(r.string()?),
            WAGI_FIELD_METHOD => spec.http.method = r.string()?,
            WAGI_FIELD_REQUEST_URI => spec.http.request_uri = r.string()?,
            WAGI_FIELD_QUERY_STRING => spec.http.query_string = r.string()?,
            WAGI_FIELD_PROTOCOL => spec.http.protocol = r.string()?,
            WAGI_FIELD_HOST => spec.http.host = r.string()?,
            WAGI_FIELD_REMOTE_ADDR => spec.http.remote_addr = r.string()?,
            WAGI_FIELD_TLS_PROTOCOL => spec.http.tls_protocol = Some(r.string()?),
            WAGI_FIELD_HEADER => {
                let name = r.string()?;
                spec.http.headers.push((name, r.string()?));
            }
            WAGI_FIELD_CONTENT_LENGTH => spec.http.content_length = Some(r.number()?),
            WAGI_FIELD_MODULE_IDENTITY => {
                spec.module_identity = Some(FileIdentity {
                    dev: r.number()?,
                    ino: r.number()?,
                    size: r.number()?,
                    mtime_ns: r.parsed::<i64>()?.into(),
                    ctime_ns: r.parsed::<i64>()?.into(),
                })
            }
            WAGI_FIELD_SERVER_SOFTWARE => spec.http.server_software = r.string()?,
            WAGI_FIELD_DOCUMENT_ROOT => spec.script.document_root = r.string()?,
            WAGI_FIELD_SCRIPT_NAME => spec.script.script_name = r.string()?,
            WAGI_FIELD_SCRIPT_FILENAME => spec.script.script_filename = r.string()?,
            WAGI_FIELD_PATH_INFO => spec.script.path_info = r.string()?,
            WAGI_FIELD_ENV => {
                let key = r.string()?;
                spec.env.push((key, r.string()?));
            }
            WAGI_FIELD_MOUNT_RO | WAGI_FIELD_MOUNT_RW => {
                let host_path = PathBuf::from(r.string()?);
                spec.mounts.push(Mount {
                    host_path,
                    guest_path: r.string()?,
                    writable: field == WAGI_FIELD_MOUNT_RW,
                });
            }
            WAGI_FIELD_TIMEOUT_MS => spec.limits.timeout = Duration::from_millis(r.number()?),
            WAGI_FIELD_MEMORY_BYTES => spec.limits.memory_bytes = r.number()?,
            WAGI_FIELD_CACHE_DIR => spec.cache.cache_dir = Some(PathBuf::from(r.string()?)),
            WAGI_FIELD_KEEPALIVE_MS => spec.cache.keepalive = Duration::from_millis(r.number()?),
            WAGI_FIELD_CACHE_MAX_AGE_MS => spec.cache.max_age = Duration::from_millis(r.number()?),
            WAGI_FIELD_MODE => {
                spec.mode = match r.string()?.as_str() {
                    "auto" => Mode::Auto,
                    "cgi" => Mode::Cgi,
                    "wcgi" => Mode::Wcgi,
                    "http" => Mode::Http,
                    other => return Err(invalid(format!("mode {other:?}"))),
                }
            }
            WAGI_FIELD_INSTANCES => {
                spec.wcgi_instances = u32::try_from(r.number()?).unwrap_or(u32::MAX)
            }
            WAGI_FIELD_SERVER_ADDR => spec.http.server_addr = r.string()?,
            WAGI_FIELD_REMOTE_USER => spec.http.remote_user = r.string()?,
            WAGI_FIELD_TLS_CIPHER => spec.http.tls_cipher = Some(r.string()?),
            WAGI_FIELD_TRUSTED_PROXY => spec.http.trusted_proxy = r.number()? != 0,
            WAGI_FIELD_ARG => spec.args.push(r.string()?),
            WAGI_FIELD_SITE_ARG => spec
                .site_args
                .get_or_insert_with(Vec::new)
                .push(r.string()?),
            WAGI_FIELD_ENTRYPOINT => spec.entrypoint = Some(r.string()?),
            WAGI_FIELD_STDERR => {
                spec.stderr = match r.string()?.as_str() {
                    "log" => StderrMode::Log,
                    "discard" => StderrMode::Discard,
                    other => return Err(invalid(format!("stderr {other:?}"))),
                }
            }
            WAGI_FIELD_NET_ALLOW | WAGI_FIELD_NET_DENY => {
                net_entry(spec, &r.string()?, field == WAGI_FIELD_NET_ALLOW)?
            }
            WAGI_FIELD_NET_WASI => {
                network(spec).rules = RuleSet::Gost(GostRules::parse(&r.string()?))
            }
            WAGI_FIELD_NET_MAX_CONNECTIONS => {
                let n = u32::try_from(r.number()?).unwrap_or(u32::MAX);
                network(spec).limits.max_connections = n
            }
            WAGI_FIELD_NET_CONNECT_TIMEOUT_MS => {
                network(spec).limits.connect_timeout = Duration::from_millis(r.number()?)
            }
            WAGI_FIELD_NET_BUFFER_BYTES => {
                let n = usize::try_from(r.number()?).unwrap_or(usize::MAX);
                network(spec).limits.buffer_bytes = n
            }
            WAGI_FIELD_NET_CA_FILE => network(spec).ca_file = Some(PathBuf::from(r.string()?)),
            WAGI_FIELD_SITE_ENV => {
                let key = r.string()?;
                let value = r.string()?;
                spec.site_env
                    .get_or_insert_with(Vec::new)
                    .push((key, value));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(out: &mut Vec<u8>, field: wagi_field, strings: &[&str]) {
        out.push(field as u8);
        for s in strings {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }

    #[test]
    fn decodes_every_kind_of_field() {
        use wagi_field::*;
        let mut rec = Vec::new();
        put(&mut rec, WAGI_FIELD_MODULE_PATH, &["/srv/index.wasm"]);
        put(&mut rec, WAGI_FIELD_HEADER, &["Accept", "*/*"]);
        put(&mut rec, WAGI_FIELD_HEADER, &["Accept", "text/html"]);
        put(&mut rec, WAGI_FIELD_MOUNT_RW, &["/tmp/data", "/data"]);
        put(&mut rec, WAGI_FIELD_CONTENT_LENGTH, &["42"]);
        put(&mut rec, WAGI_FIELD_TIMEOUT_MS, &["1500"]);
        put(&mut rec, WAGI_FIELD_TLS_PROTOCOL, &["TLSv1.3"]);
        put(&mut rec, WAGI_FIELD_TLS_CIPHER, &["TLS_AES_128_GCM_SHA256"]);
        put(&mut rec, WAGI_FIELD_SERVER_ADDR, &["127.0.0.1"]);
        put(&mut rec, WAGI_FIELD_REMOTE_USER, &["alice"]);
        put(&mut rec, WAGI_FIELD_TRUSTED_PROXY, &["1"]);
        put(&mut rec, WAGI_FIELD_ENV, &["WHO", "visitor"]);
        put(&mut rec, WAGI_FIELD_SITE_ENV, &["WHO", ""]);
        put(&mut rec, WAGI_FIELD_ARG, &["python.wasm"]);
        put(&mut rec, WAGI_FIELD_ARG, &["/app/main.py"]);
        put(&mut rec, WAGI_FIELD_SITE_ARG, &["python.wasm"]);
        put(&mut rec, WAGI_FIELD_ENTRYPOINT, &["serve"]);
        put(&mut rec, WAGI_FIELD_STDERR, &["discard"]);
        put(
            &mut rec,
            WAGI_FIELD_MODULE_IDENTITY,
            &["2049", "77", "4400", "-5", "1764000000123456789"],
        );
        let spec = decode_request(&RunSpec::default(), &rec).unwrap();
        assert_eq!(
            spec.module_identity,
            Some(FileIdentity {
                dev: 2049,
                ino: 77,
                size: 4400,
                mtime_ns: -5,
                ctime_ns: 1_764_000_000_123_456_789,
            })
        );
        assert_eq!(spec.request_args(), ["python.wasm", "/app/main.py"]);
        assert_eq!(spec.instance_args(), ["python.wasm"]);
        assert_eq!(spec.entrypoint.as_deref(), Some("serve"));
        assert_eq!(spec.module_path, PathBuf::from("/srv/index.wasm"));
        assert_eq!(spec.http.headers.len(), 2);
        assert_eq!(spec.http.content_length, Some(42));
        assert_eq!(spec.limits.timeout, Duration::from_millis(1500));
        assert_eq!(spec.http.tls_protocol.as_deref(), Some("TLSv1.3"));
        assert!(spec.mounts[0].writable);
        assert_eq!(spec.mounts[0].guest_path, "/data");
        assert_eq!(
            spec.http.tls_cipher.as_deref(),
            Some("TLS_AES_128_GCM_SHA256")
        );
        assert_eq!(spec.http.server_addr, "127.0.0.1");
        assert_eq!(spec.http.remote_user, "alice");
        assert!(spec.http.trusted_proxy);
        assert_eq!(spec.env, [("WHO".to_string(), "visitor".to_string())]);
        assert_eq!(
            spec.site_env,
            Some(vec![("WHO".to_string(), String::new())])
        );
        assert_eq!(spec.stderr, StderrMode::Discard);
    }

    #[test]
    fn rejects_truncation_unknown_tags_and_missing_module() {
        let decode = |rec: &[u8]| decode_request(&RunSpec::default(), rec);
        let mut rec = Vec::new();
        put(&mut rec, wagi_field::WAGI_FIELD_MODULE_PATH, &["/x.wasm"]);
        assert!(decode(&rec[..rec.len() - 1]).is_err());
        assert!(decode(&[99]).is_err());
        assert!(decode(&[]).is_err());
        let mut bad_num = rec.clone();
        put(&mut bad_num, wagi_field::WAGI_FIELD_TIMEOUT_MS, &["soon"]);
        assert!(decode(&bad_num).is_err());
        let mut short_identity = rec.clone();
        put(
            &mut short_identity,
            wagi_field::WAGI_FIELD_MODULE_IDENTITY,
            &["1", "2", "3", "4"],
        );
        assert!(decode(&short_identity).is_err());
    }

    #[test]
    fn a_request_adds_to_its_site() {
        use wagi_field::*;
        let mut site = Vec::new();
        put(&mut site, WAGI_FIELD_ENV, &["APP", "site"]);
        put(&mut site, WAGI_FIELD_MOUNT_RW, &["/tmp/data", "/data"]);
        put(&mut site, WAGI_FIELD_TIMEOUT_MS, &["1500"]);
        let site = decode_site(&site).unwrap();
        let mut rec = Vec::new();
        put(&mut rec, WAGI_FIELD_MODULE_PATH, &["/srv/index.wasm"]);
        put(&mut rec, WAGI_FIELD_ENV, &["WHO", "visitor"]);
        put(&mut rec, WAGI_FIELD_MOUNT_RO, &["/srv", "/srv"]);
        let spec = decode_request(&site, &rec).unwrap();
        assert_eq!(spec.env.len(), 2);
        assert_eq!(spec.mounts.len(), 2);
        assert_eq!(spec.limits.timeout, Duration::from_millis(1500));
        assert!(
            site.module_path.as_os_str().is_empty(),
            "the site is untouched"
        );
    }

    #[test]
    fn network_fields_and_wasi_net() {
        use wagi_field::*;
        let mut rec = Vec::new();
        put(&mut rec, WAGI_FIELD_NET_ALLOW, &["127.0.0.1"]);
        put(&mut rec, WAGI_FIELD_NET_DENY, &["*.evil.test"]);
        put(&mut rec, WAGI_FIELD_NET_MAX_CONNECTIONS, &["7"]);
        put(&mut rec, WAGI_FIELD_NET_CONNECT_TIMEOUT_MS, &["1500"]);
        let policy = decode_site(&rec).unwrap().network.unwrap();
        assert_eq!(policy.limits.max_connections, 7);
        assert_eq!(policy.limits.connect_timeout, Duration::from_millis(1500));
        assert!(
            matches!(&policy.rules, RuleSet::List(l) if l.allow.len() == 1 && l.deny.len() == 1)
        );

        let mut bad = Vec::new();
        put(&mut bad, WAGI_FIELD_NET_ALLOW, &["not a host"]);
        assert!(decode_site(&bad).is_err());

        assert!(
            decode_site(&[]).unwrap().network.is_none(),
            "off by default"
        );
        let mut env = Vec::new();
        put(&mut env, WAGI_FIELD_ENV, &["WASI_NET", "bypass=127.0.0.1"]);
        put(&mut env, WAGI_FIELD_NET_MAX_CONNECTIONS, &["3"]);
        let policy = decode_site(&env).unwrap().network.unwrap();
        assert_eq!(
            policy.rules,
            RuleSet::Gost(GostRules::parse("bypass=127.0.0.1"))
        );
        assert_eq!(policy.limits.max_connections, 3);
        let mut empty = Vec::new();
        put(&mut empty, WAGI_FIELD_ENV, &["WASI_NET", ""]);
        assert!(
            decode_site(&empty).unwrap().network.is_none(),
            "empty WASI_NET: off"
        );
    }
}
