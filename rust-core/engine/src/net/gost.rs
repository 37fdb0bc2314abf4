//! go-wagi's `WASI_NET` rule string, read as go-wagi v0.6.0 reads it.
//!
//! The string is a URL query; each `bypass=` value is one gost bypass: comma-separated
//! matchers, `~` in front for gost's "whitelist" flavour. go-wagi admits `host:port` (as
//! the guest wrote it) when the group's `Contains` is true:
//! - a plain list: `Contains` = some matcher matches (so `bypass=127.0.0.1` admits only it);
//! - a `~` list: `Contains` = no matcher matches (`bypass=~10.0.0.0/8` admits all but 10/8);
//! - several lists (go-gost/core `BypassGroup`): true when every `~` list is true; otherwise
//!   true when some plain list is true.
//!
//! Matchers, as go-gost/x sorts them: a CIDR (`10.0.0.0/8`, any port, IP hosts only); a
//! pattern with `*` or `?` (glob over the host, `*` crossing dots, optional `:port` or
//! `:lo-hi`); anything else an address: `host[:ports]` matching that host, or with a
//! leading dot (`.example.com`) the domain and every name below it. gost's IP-range
//! matchers (`a-b`) are not read (go-wagi's gost had none): such an entry is an address
//! that matches nothing.

use std::net::IpAddr;

use super::rules::{canonical, Cidr, Ports};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    Cidr(Cidr),
    Glob {
        pattern: String,
        ports: Option<Ports>,
    },
    Addr {
        host: String,
        ports: Option<Ports>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Bypass {
    whitelist: bool,
    matchers: Vec<Matcher>,
}

/// A `WASI_NET` string's bypass lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GostRules {
    lists: Vec<Bypass>,
}

impl GostRules {
    pub fn parse(query: &str) -> GostRules {
        let lists = query
            .split('&')
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                // Go's url.ParseQuery drops pairs holding ';' and badly escaped ones.
                if key.contains(';') || value.contains(';') {
                    return None;
                }
                (unescape(key)? == "bypass").then(|| unescape(value))?
            })
            .map(|value| {
                let (whitelist, rest) = match value.strip_prefix('~') {
                    Some(rest) => (true, rest),
                    None => (false, value.as_str()),
                };
                let matchers = rest
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(Matcher::parse)
                    .collect();
                Bypass {
                    whitelist,
                    matchers,
                }
            })
            .collect();
        GostRules { lists }
    }

    /// go-wagi's decision on `host:port` as the guest wrote it.
    pub fn admits(&self, host: &str, port: u16) -> bool {
        let addr = format!("{host}:{port}");
        let contains = |b: &Bypass| b.matched(&addr) != b.whitelist;
        let mut whitelists = self.lists.iter().filter(|b| b.whitelist).peekable();
        if whitelists.peek().is_some() && whitelists.all(contains) {
            return true;
        }
        self.lists.iter().filter(|b| !b.whitelist).any(contains)
    }

    /// Whether a plain list's CIDR or IP address admits the resolved address `ip`
    /// (`special`: and names a link-local or metadata address on purpose).
    pub fn names(&self, ip: IpAddr, port: u16, special: bool) -> bool {
        let ip = canonical(ip);
        self.lists
            .iter()
            .filter(|b| !b.whitelist)
            .flat_map(|b| &b.matchers)
            .any(|m| m.names(ip, port, special))
    }

    /// Whether a `~` list keeps the resolved address `ip` away.
    pub fn denies(&self, ip: IpAddr, port: u16) -> bool {
        let addr = format!("{}:{port}", canonical(ip));
        self.lists.iter().any(|b| b.whitelist && b.matched(&addr))
    }
}

impl Bypass {
    fn matched(&self, addr: &str) -> bool {
        self.matchers.iter().any(|m| m.matches(addr))
    }
}

impl Matcher {
    fn parse(s: &str) -> Matcher {
        if let Some(cidr) = Cidr::parse(s) {
            return Matcher::Cidr(cidr);
        }
        let (host, port) = split_host_port(s);
        let (host, ports) = match host {
            Some(h) => (h.to_string(), Ports::parse(port)),
            None => (s.to_string(), None),
        };
        if s.contains(['*', '?']) {
            Matcher::Glob {
                pattern: host,
                ports,
            }
        } else {
            Matcher::Addr {
                host: host.to_ascii_lowercase(),
                ports,
            }
        }
    }

    fn matches(&self, addr: &str) -> bool {
        let (host, port) = split_host_port(addr);
        let host = host.unwrap_or(addr);
        let port: u16 = port.parse().unwrap_or(0);
        let port_ok = |p: &Option<Ports>| p.is_none_or(|p| p.contains(port));
        match self {
            Matcher::Cidr(c) => host.parse::<IpAddr>().is_ok_and(|ip| c.contains(ip)),
            Matcher::Glob { pattern, ports } => port_ok(ports) && glob(pattern, host),
            Matcher::Addr { host: want, ports } => {
                if !port_ok(ports) {
                    return false;
                }
                let host = host.to_ascii_lowercase();
                if *want == host || *want == format!(".{host}") {
                    return true;
                }
                let mut rest = host.as_str();
                while let Some(i) = rest.find('.').filter(|&i| i > 0) {
                    if *want == rest[i..] {
                        return true;
                    }
                    rest = &rest[i + 1..];
                }
                false
            }
        }
    }

    fn names(&self, ip: IpAddr, port: u16, special: bool) -> bool {
        match self {
            Matcher::Cidr(c) => c.contains(ip) && (!special || c.only_special()),
            Matcher::Addr { host, ports } => {
                ports.is_none_or(|p| p.contains(port))
                    && host.parse::<IpAddr>().is_ok_and(|h| canonical(h) == ip)
            }
            Matcher::Glob { .. } => false,
        }
    }
}

/// Go's `net.SplitHostPort`, reduced to what gost uses: `(Some(host), port)` or `(None, "")`
/// when `s` is not `host:port`.
fn split_host_port(s: &str) -> (Option<&str>, &str) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((h, p)) if !h.contains(']') => (Some(h), p),
            _ => (None, ""),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !h.contains('[') && !h.contains(']') => (Some(h), p),
        _ => (None, ""),
    }
}

/// gobwas/glob without separators: `*` any run of characters, `?` one character.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Go's query unescaping: `+` is a space, `%XX` a byte; `None` for a bad escape.
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::GostRules;

    fn admits(rule: &str, host: &str, port: u16) -> bool {
        GostRules::parse(rule).admits(host, port)
    }

    /// go-wagi's README and Caddyfile use `bypass=127.0.0.1`: only that address.
    #[test]
    fn readme_rule_admits_only_its_address() {
        let rule = "bypass=127.0.0.1";
        assert!(admits(rule, "127.0.0.1", 7070));
        assert!(admits(rule, "127.0.0.1", 1));
        assert!(!admits(rule, "127.0.0.2", 7070));
        assert!(!admits(rule, "localhost", 7070), "names are not resolved");
        assert!(!admits(rule, "example.com", 443));
    }

    #[test]
    fn inverted_list_admits_all_but_it() {
        let rule = "bypass=~10.0.0.0/8";
        assert!(!admits(rule, "10.1.2.3", 80));
        assert!(admits(rule, "127.0.0.1", 80));
        assert!(admits(rule, "example.com", 443));
    }

    #[test]
    fn matchers() {
        let rule =
            "bypass=example.com:443,.internal.test,*.glob.test:8000-8100,192.168.0.0/16, 10.0.0.1";
        assert!(admits(rule, "example.com", 443));
        assert!(!admits(rule, "example.com", 80));
        assert!(!admits(rule, "www.example.com", 443), "no dot: exact");
        assert!(admits(rule, "internal.test", 1));
        assert!(admits(rule, "a.b.internal.test", 1));
        assert!(admits(rule, "x.glob.test", 8050));
        assert!(admits(rule, "x.y.glob.test", 8050), "* crosses dots");
        assert!(!admits(rule, "x.glob.test", 9000));
        assert!(admits(rule, "192.168.7.7", 22));
        assert!(admits(rule, "10.0.0.1", 22), "spaces trimmed");
        assert!(!admits(rule, "10.0.0.2", 22));
    }

    #[test]
    fn several_lists_combine_as_gost_groups() {
        // Every inverted list must pass; otherwise some plain list.
        let rule = "bypass=~10.0.0.0/8&bypass=~192.168.0.0/16";
        assert!(admits(rule, "1.1.1.1", 80));
        assert!(!admits(rule, "10.0.0.1", 80));
        assert!(!admits(rule, "192.168.1.1", 80));
        let mixed = "bypass=~10.0.0.0/8&bypass=10.0.0.5";
        assert!(admits(mixed, "10.0.0.5", 80), "the plain list admits it");
        assert!(!admits(mixed, "10.0.0.6", 80));
        assert!(admits("bypass=a.test&bypass=b.test", "b.test", 80));
    }

    #[test]
    fn query_decoding_and_nothing() {
        assert!(
            admits("bypass=%7E10.0.0.0%2F8", "1.1.1.1", 80),
            "escaped ~ and /"
        );
        assert!(!admits("bypass=", "1.1.1.1", 80));
        assert!(!admits("other=1", "1.1.1.1", 80));
        assert!(
            !admits("bypass=1.1.1.1;x", "1.1.1.1", 80),
            "Go drops pairs with ;"
        );
    }
}
