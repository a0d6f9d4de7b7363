//! Health checker blocks of a `real_server` (`check_tcp.c`, `check_http.c`,
//! `check_misc.c`, `check_dns.c`, `check_api.c` common keywords).

use crate::diag::{Diags, Pos};
use crate::script::{self, Script};
use crate::tree::Node;
use crate::value::{self, arg, bool_opt, ip, timer, uint};
use std::net::IpAddr;
use std::time::Duration;

/// One checker of a real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checker {
    pub pos: Pos,
    pub kind: CheckerKind,
    pub common: CheckerCommon,
}

/// Keywords every checker shares. `None` means "inherit" (checker → real_server →
/// virtual_server → the checker type's default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckerCommon {
    /// Probe this address instead of the real server's (`connect_ip`).
    pub connect_ip: Option<IpAddr>,
    /// Probe this port instead of the real server's (`connect_port`).
    pub connect_port: Option<u16>,
    /// Source address of probes (`bindto`).
    pub bindto: Option<IpAddr>,
    /// Source port of probes (`bind_port`).
    pub bind_port: Option<u16>,
    /// Device probes leave by (`bind_if`, SO_BINDTODEVICE).
    pub bind_if: Option<String>,
    /// Firewall mark set on probe sockets (`fwmark`, SO_MARK).
    pub fwmark: Option<u32>,
    pub connect_timeout: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub delay_loop: Option<Duration>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckerKind {
    /// `TCP_CHECK`: a connect completes within connect_timeout.
    Tcp,
    /// `HTTP_GET`.
    Http(HttpCheck),
    /// `SSL_GET`: HTTP over TLS.
    Ssl(HttpCheck),
    /// `MISC_CHECK`: an external script.
    Misc(MiscCheck),
    /// `DNS_CHECK`.
    Dns(DnsCheck),
    /// A checker keepalived has and rvs does not yet (`SMTP_CHECK`, `UDP_CHECK`,
    /// `PING_CHECK`, `BFD_CHECK`, `FILE_CHECK`): parsed, reported, never run, and it
    /// never counts as failed.
    Unsupported(String),
}

impl Checker {
    /// Same checker configuration (positions in the file do not count): what a reload
    /// compares to decide whether a checker keeps its state.
    pub fn same_config(&self, other: &Checker) -> bool {
        self.kind == other.kind && self.common == other.common
    }
}

impl CheckerKind {
    /// The keyword, as `rvsadm --status` shows it.
    pub fn name(&self) -> &str {
        match self {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http(_) => "HTTP_GET",
            CheckerKind::Ssl(_) => "SSL_GET",
            CheckerKind::Misc(_) => "MISC_CHECK",
            CheckerKind::Dns(_) => "DNS_CHECK",
            CheckerKind::Unsupported(n) => n,
        }
    }

    /// keepalived's `default_retry` of the checker type.
    pub fn default_retry(&self) -> u32 {
        match self {
            CheckerKind::Misc(_) => 0,
            CheckerKind::Dns(_) => 3,
            _ => 1,
        }
    }

    /// keepalived's `default_delay_before_retry`; `None` means delay_loop (DNS_CHECK).
    pub fn default_delay_before_retry(&self) -> Option<Duration> {
        match self {
            CheckerKind::Http(_) | CheckerKind::Ssl(_) => Some(Duration::from_secs(3)),
            CheckerKind::Dns(_) => None,
            _ => Some(Duration::from_secs(1)),
        }
    }
}

/// `http_protocol`: the request line version and whether `Connection: close` is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HttpProtocol {
    /// `GET … HTTP/1.0`, no Connection header (the default).
    #[default]
    Http10,
    /// `1.0C`: HTTP/1.0 with `Connection: close`.
    Http10Close,
    /// `GET … HTTP/1.1` with `Connection: close`.
    Http11,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpCheck {
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub http_protocol: HttpProtocol,
    /// Send SNI (SSL_GET).
    pub enable_sni: bool,
    pub sni_name: Option<String>,
    /// Re-check immediately (not after delay_loop) while down and not failing.
    pub fast_recovery: bool,
    pub tls_compliant: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub path: String,
    /// MD5 of the body (what `genhash` prints).
    pub digest: Option<[u8; 16]>,
    /// Accepted status codes as inclusive ranges; default 200-299.
    pub status_codes: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
}

impl Url {
    pub fn accepts(&self, code: u16) -> bool {
        self.status_codes
            .iter()
            .any(|(a, b)| (*a..=*b).contains(&code))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscCheck {
    pub script: Script,
    /// Seconds the script may run (`misc_timeout`, whole seconds as keepalived reads it);
    /// `None` means the virtual server's delay_loop.
    pub timeout: Option<u32>,
    /// Exit status 2..=255 means "up with weight status − 2".
    pub dynamic: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsCheck {
    /// Query type (A=1, NS=2, CNAME=5, SOA=6 default, MX=15, TXT=16, AAAA=28, RRSIG=46,
    /// DNSKEY=48).
    pub qtype: u16,
    /// Query name; "" (the default) and "." both mean the root.
    pub name: String,
}

/// keepalived's `DNS_TYPE` table.
pub const DNS_TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("RRSIG", 46),
    ("DNSKEY", 48),
];

const UNSUPPORTED_CHECKERS: &[&str] = &[
    "SMTP_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "BFD_CHECK",
    "FILE_CHECK",
];

/// Is `name` a checker block keyword?
pub fn is_checker(name: &str) -> bool {
    matches!(
        name,
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK"
    ) || UNSUPPORTED_CHECKERS.contains(&name)
}

/// Parses a checker block.
pub fn parse(d: &mut Diags, n: &Node) -> Option<Checker> {
    let name = n.name();
    let mut common = CheckerCommon::default();
    let connection = !matches!(name, "MISC_CHECK" | "FILE_CHECK" | "BFD_CHECK");
    if UNSUPPORTED_CHECKERS.contains(&name) {
        d.warn_once(
            name,
            n.pos(),
            format!("{name} is not supported by rvs yet - the checker is ignored"),
        );
        return Some(Checker {
            pos: n.pos().clone(),
            kind: CheckerKind::Unsupported(name.to_string()),
            common,
        });
    }
    let mut http = HttpCheck::default();
    let mut misc_script: Option<Script> = None;
    let mut misc_timeout = None;
    let mut misc_dynamic = false;
    let mut misc_user: Option<(String, Option<String>)> = None;
    let mut dns = DnsCheck {
        qtype: 6,
        name: String::new(),
    };
    let is_http = name == "HTTP_GET" || name == "SSL_GET";
    for c in n.children() {
        if common_keyword(d, c, &mut common, connection) {
            continue;
        }
        let k = c.name();
        match (name, k) {
            (_, "nb_get_retry") if connection => {
                d.warn_once(
                    "nb_get_retry",
                    c.pos(),
                    "'nb_get_retry' is deprecated - use 'retry'",
                );
                common.retry = uint(d, c, 1, 0, u32::MAX as u64).map(|v| v as u32);
            }
            ("HTTP_GET" | "SSL_GET", _) if is_http => http_keyword(d, c, name, &mut http),
            ("MISC_CHECK", "misc_path") => misc_script = script::parse(d, c, false),
            ("MISC_CHECK", "misc_timeout") => {
                misc_timeout = uint(d, c, 1, 0, u64::from(u32::MAX) / 1_000_000).map(|v| v as u32)
            }
            ("MISC_CHECK", "misc_dynamic") => misc_dynamic = true,
            ("MISC_CHECK", "user") => {
                if let Some(u) = arg(d, c, 1) {
                    misc_user =
                        Some((u.text.clone(), value::opt_arg(c, 2).map(|g| g.text.clone())));
                }
            }
            ("DNS_CHECK", "type") => {
                if let Some(t) = arg(d, c, 1) {
                    match DNS_TYPES
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&t.text))
                    {
                        Some((_, v)) => dns.qtype = *v,
                        None => d.error(&t.pos, format!("unknown DNS_CHECK type '{}'", t.text)),
                    }
                }
            }
            ("DNS_CHECK", "name") => {
                if let Some(t) = arg(d, c, 1) {
                    if dns_name_ok(&t.text) {
                        dns.name = t.text.clone();
                    } else {
                        d.error(
                            &t.pos,
                            format!("DNS_CHECK name '{}' has an empty label", t.text),
                        );
                    }
                }
            }
            _ => d.unknown(c.pos(), k),
        }
    }
    let kind = match name {
        "TCP_CHECK" => CheckerKind::Tcp,
        "HTTP_GET" | "SSL_GET" => {
            if http.urls.is_empty() {
                d.error(n.pos(), format!("{name} has no url - add url {{ path / }}"));
                return None;
            }
            if name == "HTTP_GET" {
                CheckerKind::Http(http)
            } else {
                CheckerKind::Ssl(http)
            }
        }
        "MISC_CHECK" => {
            let Some(mut script) = misc_script else {
                d.error(n.pos(), "MISC_CHECK has no misc_path");
                return None;
            };
            if let Some((u, g)) = misc_user {
                script.user = Some(u);
                script.group = g;
            }
            CheckerKind::Misc(MiscCheck {
                script,
                timeout: misc_timeout,
                dynamic: misc_dynamic,
            })
        }
        "DNS_CHECK" => CheckerKind::Dns(dns),
        _ => unreachable!("is_checker() lists the names"),
    };
    Some(Checker {
        pos: n.pos().clone(),
        kind,
        common,
    })
}

/// Keywords of `install_checker_common_keywords`; true if `c` was one.
fn common_keyword(d: &mut Diags, c: &Node, co: &mut CheckerCommon, connection: bool) -> bool {
    let to = |d: &mut Diags, c: &Node, min: u64| timer(d, c, 1, Duration::from_micros(min), None);
    match c.name() {
        "connect_ip" if connection => co.connect_ip = ip(d, c, 1),
        "connect_port" if connection => co.connect_port = uint(d, c, 1, 1, 65535).map(|v| v as u16),
        "bindto" if connection => co.bindto = ip(d, c, 1),
        "bind_port" if connection => co.bind_port = uint(d, c, 1, 1, 65535).map(|v| v as u16),
        "bind_if" if connection => co.bind_if = value::string(d, c),
        "fwmark" if connection => co.fwmark = uint(d, c, 1, 0, u32::MAX.into()).map(|v| v as u32),
        "connect_timeout" if connection => {
            co.connect_timeout = timer(
                d,
                c,
                1,
                Duration::from_micros(1),
                Some(Duration::from_micros(u32::MAX.into())),
            )
        }
        "retry" => co.retry = uint(d, c, 1, 0, u32::MAX.into()).map(|v| v as u32),
        "delay_before_retry" => co.delay_before_retry = to(d, c, 0),
        "warmup" => co.warmup = to(d, c, 0),
        "delay_loop" => co.delay_loop = to(d, c, 1),
        "alpha" => co.alpha = bool_opt(d, c),
        "log_all_failures" => co.log_all_failures = bool_opt(d, c),
        _ => return false,
    }
    true
}

fn http_keyword(d: &mut Diags, c: &Node, checker: &str, h: &mut HttpCheck) {
    match c.name() {
        "virtualhost" => h.virtualhost = value::string(d, c),
        "http_protocol" => {
            if let Some(t) = arg(d, c, 1) {
                h.http_protocol = match t.text.as_str() {
                    "1.0" => HttpProtocol::Http10,
                    "1.0C" | "1.0c" => HttpProtocol::Http10Close,
                    "1.1" => HttpProtocol::Http11,
                    other => {
                        d.error(
                            &t.pos,
                            format!("invalid http_protocol '{other}' (1.0, 1.0C or 1.1)"),
                        );
                        return;
                    }
                }
            }
        }
        "enable_sni" => h.enable_sni = bool_opt(d, c).unwrap_or(false),
        "sni_name" => {
            if let Some(v) = value::string(d, c) {
                h.sni_name = Some(v);
                h.enable_sni = true;
            }
        }
        "fast_recovery" => h.fast_recovery = bool_opt(d, c).unwrap_or(false),
        "tls_compliant" if checker == "SSL_GET" => {
            h.tls_compliant = bool_opt(d, c).unwrap_or(false)
        }
        "url" => {
            if value::need_block(d, c) {
                if let Some(u) = parse_url(d, c) {
                    h.urls.push(u);
                }
            }
        }
        other => d.unknown(c.pos(), other),
    }
}

fn parse_url(d: &mut Diags, n: &Node) -> Option<Url> {
    let mut path = None;
    let mut digest = None;
    let mut codes: Vec<(u16, u16)> = Vec::new();
    let mut virtualhost = None;
    for c in n.children() {
        match c.name() {
            "path" => path = value::string(d, c),
            "digest" => {
                let t = arg(d, c, 1)?;
                match parse_digest(&t.text) {
                    Some(v) => digest = Some(v),
                    None => d.error(
                        &t.pos,
                        format!(
                            "invalid digest '{}' (expected 32 hex digits, the MD5 genhash prints)",
                            t.text
                        ),
                    ),
                }
            }
            "status_code" => {
                if c.args.is_empty() {
                    d.error(c.pos(), "'status_code' needs a value");
                }
                for t in &c.args {
                    match parse_status_range(&t.text) {
                        Some(r) => codes.push(r),
                        None => d.error(
                            &t.pos,
                            format!(
                                "invalid HTTP status code '{}' (100..999 or a range 200-299)",
                                t.text
                            ),
                        ),
                    }
                }
            }
            "virtualhost" => virtualhost = value::string(d, c),
            k @ ("regex" | "regex_no_match" | "regex_options" | "regex_min_offset"
            | "regex_max_offset" | "regex_stack") => d.warn_once(
                k,
                c.pos(),
                format!("'{k}' (regex body checks) is not supported by rvs yet - ignored"),
            ),
            "tls_compliant" => {}
            other => d.unknown(c.pos(), other),
        }
    }
    let Some(path) = path else {
        d.error(n.pos(), "url has no path");
        return None;
    };
    if codes.is_empty() {
        codes.push((200, 299));
    }
    Some(Url {
        path,
        digest,
        status_codes: codes,
        virtualhost,
    })
}

pub fn parse_digest(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn parse_status_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
        None => {
            let v = s.parse::<u16>().ok()?;
            (v, v)
        }
    };
    ((100..=999).contains(&a) && (100..=999).contains(&b) && a <= b).then_some((a, b))
}

fn dns_name_ok(name: &str) -> bool {
    if name.starts_with('.') && name != "." {
        return false;
    }
    !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_and_digests() {
        assert_eq!(parse_status_range("200-299"), Some((200, 299)));
        assert_eq!(parse_status_range("404"), Some((404, 404)));
        assert_eq!(parse_status_range("300-200"), None);
        assert_eq!(parse_status_range("99"), None);
        assert_eq!(
            parse_digest("9b3a0c85a887a256d6939da88aabd8cd").map(|d| d[0]),
            Some(0x9b)
        );
        assert_eq!(parse_digest("9b3a"), None);
        assert!(dns_name_ok("."));
        assert!(dns_name_ok("example.com."));
        assert!(!dns_name_ok("a..b"));
        assert!(!dns_name_ok(".a"));
    }
}
