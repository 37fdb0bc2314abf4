//! Which addresses a guest may connect to.
//!
//! Two readings of a site's rules share one check ([`check`]):
//! - the `network` subdirective's allow/deny lists ([`ListRules`]);
//! - go-wagi's `WASI_NET` string, read as gost bypass lists ([`super::gost::GostRules`]).
//!
//! Either reading first selects the host *as the guest wrote it* (exactly what go-wagi does:
//! a name is not resolved for that). Then the host resolves the name itself and checks every
//! address it resolves to, so DNS cannot smuggle a private address past a name rule:
//! - a public address passes unless a rule denies it;
//! - a loopback, private, unique-local or otherwise non-public address passes only when an
//!   IP/CIDR rule admits it (or, in the `WASI_NET` reading, when the guest wrote that
//!   address literally and the rule selected it: go-wagi connects there too);
//! - a link-local or cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254)
//!   passes only when a rule names an address or range inside those ranges.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

use super::gost::GostRules;

/// A range of ports, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports(pub u16, pub u16);

impl Ports {
    pub const ALL: Ports = Ports(0, u16::MAX);

    /// `80` or `8000-9000`.
    pub fn parse(s: &str) -> Option<Ports> {
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                (a <= b).then_some(Ports(a, b))
            }
            None => s.trim().parse().ok().map(|p| Ports(p, p)),
        }
    }

    pub fn contains(self, port: u16) -> bool {
        self.0 <= port && port <= self.1
    }
}

/// An IP network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8` or `fd00::/8`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }

    /// True when every address of this network is link-local or metadata: a rule naming
    /// such a network names those addresses on purpose.
    pub fn only_special(&self) -> bool {
        let first = self.addr;
        let (range_prefix, inside) = match first {
            IpAddr::V4(v4) => (16, class_v4(v4) == Class::Special),
            IpAddr::V6(v6) if v6 == METADATA_V6 => (128, true),
            IpAddr::V6(v6) => (10, (v6.segments()[0] & 0xffc0) == 0xfe80),
        };
        inside && self.prefix >= range_prefix
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (bytes, bits) = ((prefix / 8) as usize, prefix % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    bits == 0 || (a[bytes] ^ b[bytes]) >> (8 - bits) == 0
}

/// What an entry of a `network` list matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `*`: every host.
    Any,
    /// `example.com`: that name only.
    Name(String),
    /// `*.example.com`: names below it; `.example.com`: it and names below it.
    Below {
        domain: String,
        itself: bool,
    },
    Ip(IpAddr),
    Cidr(Cidr),
}

/// One entry of an allow or deny list: a host pattern and its ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub pattern: Pattern,
    pub ports: Ports,
}

impl Entry {
    /// `host`, `host:port`, `host:lo-hi`, `[v6]:port`, `*.domain`, `.domain`, an IP, a
    /// CIDR (`10.0.0.0/8:443`), `*`. Names are compared case-insensitively.
    pub fn parse(s: &str) -> Result<Entry, String> {
        let bad = || format!("bad network entry {s:?}");
        let (host, ports) = split_entry(s).ok_or_else(bad)?;
        let ports = match ports {
            Some(p) => Ports::parse(p).ok_or_else(bad)?,
            None => Ports::ALL,
        };
        let host = host.to_ascii_lowercase();
        let pattern = if host == "*" {
            Pattern::Any
        } else if let Some(cidr) = Cidr::parse(&host) {
            Pattern::Cidr(cidr)
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            Pattern::Ip(canonical(ip))
        } else if let Some(domain) = host.strip_prefix("*.") {
            Pattern::Below {
                domain: domain.to_string(),
                itself: false,
            }
        } else if let Some(domain) = host.strip_prefix('.') {
            Pattern::Below {
                domain: domain.to_string(),
                itself: true,
            }
        } else if !host.is_empty() && host.bytes().all(is_name_byte) {
            Pattern::Name(host)
        } else {
            return Err(bad());
        };
        if let Pattern::Below { domain, .. } = &pattern {
            if domain.is_empty() || !domain.bytes().all(is_name_byte) {
                return Err(bad());
            }
        }
        Ok(Entry { pattern, ports })
    }

    /// Whether the entry matches the host as the guest wrote it.
    fn matches_host(&self, host: &Host, port: u16) -> bool {
        if !self.ports.contains(port) {
            return false;
        }
        match (&self.pattern, host) {
            (Pattern::Any, _) => true,
            (Pattern::Name(n), Host::Name(h)) => n == h,
            (Pattern::Below { domain, itself }, Host::Name(h)) => {
                (*itself && h == domain)
                    || h.strip_suffix(domain.as_str())
                        .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
            }
            (Pattern::Ip(_) | Pattern::Cidr(_), Host::Ip(ip)) => self.matches_ip(*ip, port),
            _ => false,
        }
    }

    /// Whether an IP or CIDR entry covers `ip` (names and `*` cover no address).
    fn matches_ip(&self, ip: IpAddr, port: u16) -> bool {
        self.ports.contains(port)
            && match &self.pattern {
                Pattern::Ip(a) => *a == canonical(ip),
                Pattern::Cidr(c) => c.contains(ip),
                _ => false,
            }
    }

    /// Whether the entry names `ip` as a link-local or metadata address on purpose.
    fn names_special(&self, ip: IpAddr, port: u16) -> bool {
        self.matches_ip(ip, port)
            && match &self.pattern {
                Pattern::Ip(_) => true,
                Pattern::Cidr(c) => c.only_special(),
                _ => false,
            }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'
}

/// `host[:ports]`, with `[v6]` brackets or a bare IPv6 address (no ports then).
fn split_entry(s: &str) -> Option<(&str, Option<&str>)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match s.matches(':').count() {
        0 => Some((s, None)),
        1 => s.split_once(':').map(|(h, p)| (h, Some(p))),
        _ => Some((s, None)),
    }
}

/// The `network` subdirective's lists: an address is allowed when an allow entry matches
/// it and no deny entry does. Nothing is allowed by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRules {
    pub allow: Vec<Entry>,
    pub deny: Vec<Entry>,
}

/// A site's rules, in either reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleSet {
    List(ListRules),
    Gost(GostRules),
}

impl RuleSet {
    /// Selects the host as the guest wrote it (the first step of [`check`], which needs no
    /// resolving).
    pub fn admits(&self, host: &Host, port: u16) -> bool {
        match self {
            RuleSet::List(l) => {
                l.allow.iter().any(|e| e.matches_host(host, port))
                    && !l.deny.iter().any(|e| e.matches_host(host, port))
            }
            RuleSet::Gost(g) => g.admits(&host.written(), port),
        }
    }

    /// Whether an IP/CIDR rule admits the resolved address `ip` (a non-public one).
    fn names(&self, ip: IpAddr, port: u16, special: bool) -> bool {
        match self {
            RuleSet::List(l) => l.allow.iter().any(|e| {
                if special {
                    e.names_special(ip, port)
                } else {
                    e.matches_ip(ip, port)
                }
            }),
            RuleSet::Gost(g) => g.names(ip, port, special),
        }
    }

    /// Whether a rule keeps the resolved address `ip` away.
    fn denies(&self, ip: IpAddr, port: u16) -> bool {
        match self {
            RuleSet::List(l) => l.deny.iter().any(|e| e.matches_ip(ip, port)),
            RuleSet::Gost(g) => g.denies(ip, port),
        }
    }
}

/// A host as the guest wrote it in its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// Lower-cased.
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// `example.com`, `127.0.0.1`, `::1` or `[::1]`.
    pub fn parse(s: &str) -> Option<Host> {
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(Host::Ip(canonical(ip)));
        }
        let name = s.to_ascii_lowercase();
        (!name.is_empty() && name.len() <= 253 && name.bytes().all(is_name_byte))
            .then_some(Host::Name(name))
    }

    /// The host as go-wagi hands it to gost: what the guest wrote.
    fn written(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::Ip(ip) => ip.to_string(),
        }
    }
}

/// How far an address is from the public internet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Public,
    /// Loopback, private, unique-local, shared, unspecified, multicast, reserved.
    Private,
    /// Link-local and cloud metadata.
    Special,
}

const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub fn class(ip: IpAddr) -> Class {
    match canonical(ip) {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => class_v6(v6),
    }
}

fn class_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if a == 169 && b == 254 {
        return Class::Special;
    }
    let private = ip.is_loopback()
        || ip.is_private()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240;
    if private {
        Class::Private
    } else {
        Class::Public
    }
}

fn class_v6(ip: Ipv6Addr) -> Class {
    let first = ip.segments()[0];
    if ip == METADATA_V6 || (first & 0xffc0) == 0xfe80 {
        return Class::Special;
    }
    let private = ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || ip.to_ipv4().is_some(); // IPv4-compatible ::a.b.c.d, NAT64 aside
    if private {
        Class::Private
    } else {
        Class::Public
    }
}

/// Why an address was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No rule admits the host the guest wrote.
    NotAllowed,
    /// The name did not resolve.
    Unresolved(String),
    /// The name resolved to an address the rules keep away.
    Address(IpAddr),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed => write!(f, "not allowed by the site's network rules"),
            Refusal::Unresolved(e) => write!(f, "cannot resolve: {e}"),
            Refusal::Address(ip) => write!(f, "resolves to {ip}, which the rules do not allow"),
        }
    }
}

pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Resolves names; injectable so rules are tested without DNS.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a>;
}

/// The system resolver (getaddrinfo on tokio's blocking pool).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// The addresses the guest may connect to for `host:port`, all of them checked; the rule
/// on the written host is checked before anything is resolved.
pub async fn check(
    rules: &RuleSet,
    resolver: &dyn Resolve,
    host: &Host,
    port: u16,
) -> Result<Vec<SocketAddr>, Refusal> {
    if !rules.admits(host, port) {
        return Err(Refusal::NotAllowed);
    }
    let (ips, literal) = match host {
        Host::Ip(ip) => (vec![*ip], true),
        Host::Name(name) => {
            let ips = resolver
                .resolve(name)
                .await
                .map_err(|e| Refusal::Unresolved(e.to_string()))?;
            (ips, false)
        }
    };
    if ips.is_empty() {
        return Err(Refusal::Unresolved("no address".into()));
    }
    let mut out = Vec::with_capacity(ips.len());
    for ip in ips {
        let ip = canonical(ip);
        let ok = match class(ip) {
            Class::Public => true,
            // go-wagi connects to any address its rule selects as written; the `network`
            // lists want an IP/CIDR entry for a non-public address even when written.
            Class::Private => {
                (literal && matches!(rules, RuleSet::Gost(_))) || rules.names(ip, port, false)
            }
            Class::Special => rules.names(ip, port, true),
        } && !rules.denies(ip, port);
        if !ok {
            return Err(Refusal::Address(ip));
        }
        out.push(SocketAddr::new(ip, port));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Names from a table; counts lookups.
    #[derive(Default)]
    pub struct Table {
        pub names: HashMap<&'static str, Vec<IpAddr>>,
        pub asked: Mutex<Vec<String>>,
    }

    impl Resolve for Table {
        fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
            self.asked.lock().unwrap().push(name.to_string());
            let found = self.names.get(name).cloned();
            Box::pin(async move { found.ok_or_else(|| std::io::Error::other("no such name")) })
        }
    }

    pub fn table(entries: &[(&'static str, &str)]) -> Table {
        let mut names: HashMap<&'static str, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in entries {
            names.entry(name).or_default().push(ip.parse().unwrap());
        }
        Table {
            names,
            asked: Mutex::default(),
        }
    }

    pub fn list(allow: &[&str], deny: &[&str]) -> RuleSet {
        let parse = |v: &[&str]| v.iter().map(|e| Entry::parse(e).unwrap()).collect();
        RuleSet::List(ListRules {
            allow: parse(allow),
            deny: parse(deny),
        })
    }

    pub fn run(
        rules: &RuleSet,
        resolver: &Table,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let host = Host::parse(host).expect("host");
        futures::executor::block_on(check(rules, resolver, &host, port))
    }

    #[test]
    fn entries_parse() {
        let e = Entry::parse("10.0.0.0/8:443").unwrap();
        assert_eq!(e.ports, Ports(443, 443));
        assert!(matches!(e.pattern, Pattern::Cidr(_)));
        assert_eq!(Entry::parse("[::1]:80-90").unwrap().ports, Ports(80, 90));
        assert!(matches!(
            Entry::parse("::1").unwrap().pattern,
            Pattern::Ip(_)
        ));
        assert!(matches!(
            Entry::parse("*.Example.com").unwrap().pattern,
            Pattern::Below { itself: false, .. }
        ));
        for bad in [
            "",
            "a b",
            "host:99999",
            "10.0.0.0/33",
            "*.",
            "x:9-1",
            "[::1",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_denied_wildcard_cidr_port() {
        let dns = table(&[
            ("api.example.com", "93.184.216.34"),
            ("example.com", "93.184.216.34"),
            ("evil.example.com", "93.184.216.35"),
        ]);
        let rules = list(
            &["*.example.com:443", "10.0.0.0/8", "192.168.1.5:8080"],
            &["evil.example.com"],
        );
        assert!(run(&rules, &dns, "api.example.com", 443).is_ok());
        assert_eq!(
            run(&rules, &dns, "api.example.com", 80),
            Err(Refusal::NotAllowed),
            "port"
        );
        assert_eq!(
            run(&rules, &dns, "example.com", 443),
            Err(Refusal::NotAllowed),
            "*. is below only"
        );
        assert_eq!(
            run(&rules, &dns, "evil.example.com", 443),
            Err(Refusal::NotAllowed),
            "deny wins"
        );
        assert!(run(&rules, &dns, "10.1.2.3", 5432).is_ok(), "CIDR");
        assert_eq!(
            run(&rules, &dns, "11.1.2.3", 5432),
            Err(Refusal::NotAllowed)
        );
        assert!(run(&rules, &dns, "192.168.1.5", 8080).is_ok());
        assert_eq!(
            run(&rules, &dns, "192.168.1.5", 8081),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            run(&list(&[], &[]), &dns, "example.com", 443),
            Err(Refusal::NotAllowed),
            "deny by default"
        );
        let dotted = list(&[".example.com"], &[]);
        assert!(run(&dotted, &dns, "example.com", 1).is_ok());
        assert!(run(&dotted, &dns, "API.example.com", 1).is_ok());
    }

    #[test]
    fn a_name_cannot_smuggle_a_private_address() {
        let dns = table(&[
            ("sneaky.test", "127.0.0.1"),
            ("mixed.test", "93.184.216.34"),
            ("mixed.test", "10.0.0.1"),
        ]);
        let other_range = list(&["sneaky.test", "mixed.test", "10.0.0.0/8"], &[]);
        assert_eq!(
            run(&other_range, &dns, "sneaky.test", 80),
            Err(Refusal::Address("127.0.0.1".parse().unwrap()))
        );
        assert!(
            run(&other_range, &dns, "mixed.test", 80).is_ok(),
            "10/8 is named"
        );
        let names_only = list(&["mixed.test"], &[]);
        assert_eq!(
            run(&names_only, &dns, "mixed.test", 80),
            Err(Refusal::Address("10.0.0.1".parse().unwrap())),
            "every address is checked"
        );
        let with_loopback = list(&["sneaky.test", "127.0.0.0/8"], &[]);
        assert!(run(&with_loopback, &dns, "sneaky.test", 80).is_ok());
        let star = list(&["*"], &[]);
        assert!(
            run(&star, &dns, "127.0.0.1", 80).is_err(),
            "* names no private address"
        );
        let deny_resolved = list(&["*"], &["93.184.216.0/24"]);
        assert_eq!(
            run(&deny_resolved, &dns, "mixed.test", 80),
            Err(Refusal::Address("93.184.216.34".parse().unwrap()))
        );
    }

    #[test]
    fn metadata_needs_a_rule_naming_it() {
        let dns = table(&[
            ("metadata.test", "169.254.169.254"),
            ("v6meta.test", "fd00:ec2::254"),
        ]);
        for rules in [
            list(
                &["*", "0.0.0.0/0", "::/0", "metadata.test", "v6meta.test"],
                &[],
            ),
            RuleSet::Gost(GostRules::parse("bypass=~10.0.0.0/8")),
        ] {
            assert!(run(&rules, &dns, "169.254.169.254", 80).is_err());
            assert!(run(&rules, &dns, "metadata.test", 80).is_err());
            assert!(run(&rules, &dns, "fd00:ec2::254", 80).is_err());
            assert!(run(&rules, &dns, "v6meta.test", 80).is_err());
            assert!(
                run(&rules, &dns, "::ffff:169.254.169.254", 80).is_err(),
                "mapped"
            );
        }
        assert!(run(
            &list(&["169.254.169.254"], &[]),
            &dns,
            "169.254.169.254",
            80
        )
        .is_ok());
        assert!(run(&list(&["169.254.0.0/16"], &[]), &dns, "169.254.1.1", 80).is_ok());
        assert!(run(
            &list(&["metadata.test", "169.254.169.254"], &[]),
            &dns,
            "metadata.test",
            80
        )
        .is_ok());
        assert!(run(
            &RuleSet::Gost(GostRules::parse("bypass=169.254.169.254")),
            &dns,
            "169.254.169.254",
            80
        )
        .is_ok());
    }

    #[test]
    fn the_written_host_is_checked_before_resolving() {
        let dns = table(&[("example.com", "93.184.216.34")]);
        assert_eq!(
            run(&list(&["other.test"], &[]), &dns, "example.com", 80),
            Err(Refusal::NotAllowed)
        );
        assert!(dns.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn classes() {
        for (ip, want) in [
            ("8.8.8.8", Class::Public),
            ("127.0.0.1", Class::Private),
            ("10.9.9.9", Class::Private),
            ("172.16.0.1", Class::Private),
            ("192.168.0.1", Class::Private),
            ("100.64.0.1", Class::Private),
            ("0.0.0.0", Class::Private),
            ("169.254.169.254", Class::Special),
            ("::1", Class::Private),
            ("fc00::1", Class::Private),
            ("fe80::1", Class::Special),
            ("fd00:ec2::254", Class::Special),
            ("::ffff:127.0.0.1", Class::Private),
            ("2606:4700::1111", Class::Public),
        ] {
            assert_eq!(class(ip.parse().unwrap()), want, "{ip}");
        }
    }
}
