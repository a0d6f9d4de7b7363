//! Text → [`Vector`]s. Every default (auto clients, default destination) is resolved here,
//! so the steps a backend receives are concrete.

use super::{Action, Expect, Step, Vector};
use crate::config::{DestConfig, ServiceConfig};
use crate::sched::SchedKind;
use crate::types::{Family, Forward, Netmask, Protocol, SchedFlags, ServiceKey};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A line that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub origin: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Reads and parses one vector file.
pub fn parse_file(path: &Path) -> Result<Vec<Vector>, ParseError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ParseError {
        origin: origin.clone(),
        line: 0,
        message: e.to_string(),
    })?;
    parse_str(&text, &origin)
}

/// Parses the vectors of a file's text; `origin` names it in errors.
pub fn parse_str(text: &str, origin: &str) -> Result<Vec<Vector>, ParseError> {
    let mut vectors: Vec<Vector> = Vec::new();
    let mut ctx: Option<Ctx> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ParseError {
            origin: origin.to_string(),
            line,
            message,
        };
        let words: Vec<&str> = raw
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let Some((&first, rest)) = words.split_first() else {
            continue;
        };
        match first {
            "vector" => {
                let [name] = rest else {
                    return Err(err("usage: vector NAME".into()));
                };
                if let Some(c) = ctx.take() {
                    vectors.push(c.finish().map_err(err)?);
                }
                if vectors.iter().any(|v| v.name == *name) {
                    return Err(err(format!("duplicate vector name {name}")));
                }
                ctx = Some(Ctx::new(name, line));
            }
            _ => {
                let c = ctx
                    .as_mut()
                    .ok_or_else(|| err("statement outside a vector".into()))?;
                c.statement(first, rest, line).map_err(err)?;
            }
        }
    }
    if let Some(c) = ctx.take() {
        let line = text.lines().count();
        vectors.push(c.finish().map_err(|message| ParseError {
            origin: origin.to_string(),
            line,
            message,
        })?);
    }
    Ok(vectors)
}

/// A vector being read.
struct Ctx {
    name: String,
    line: usize,
    service: Option<ServiceConfig>,
    steps: Vec<Step>,
    /// Last auto-client number handed out.
    auto: u32,
}

type Res<T> = Result<T, String>;

impl Ctx {
    fn new(name: &str, line: usize) -> Self {
        Ctx {
            name: name.to_string(),
            line,
            service: None,
            steps: Vec::new(),
            auto: 0,
        }
    }

    fn finish(self) -> Res<Vector> {
        let service = self
            .service
            .ok_or_else(|| format!("vector {} has no service", self.name))?;
        Ok(Vector {
            name: self.name,
            line: self.line,
            service,
            steps: self.steps,
        })
    }

    fn statement(&mut self, verb: &str, args: &[&str], line: usize) -> Res<()> {
        if verb == "service" {
            if self.service.is_some() || !self.steps.is_empty() {
                return Err("service must be the first statement, once".into());
            }
            self.service = Some(parse_service(args)?);
            return Ok(());
        }
        let family = self
            .service
            .as_ref()
            .ok_or("the first statement must be service")?
            .key
            .family();
        let mut push = |action| self.steps.push(Step { line, action });
        match verb {
            "server" => {
                let [name, addr, opts @ ..] = args else {
                    return Err("usage: server NAME ADDR:PORT [options]".into());
                };
                let (addr, port) = sockaddr(addr, None)?;
                let mut cfg = DestConfig::new(addr, port);
                apply_server_opts(&mut cfg, opts)?;
                push(Action::AddServer {
                    name: name.to_string(),
                    cfg,
                });
            }
            "edit" => {
                let [name, opts @ ..] = args else {
                    return Err("usage: edit NAME [weight W] [upper U] [lower L]".into());
                };
                let (mut weight, mut upper, mut lower) = (None, None, None);
                for (k, v) in pairs(opts)? {
                    match k {
                        "weight" => weight = Some(number(v)?),
                        "upper" => upper = Some(number(v)?),
                        "lower" => lower = Some(number(v)?),
                        _ => return Err(format!("unknown edit option {k}")),
                    }
                }
                push(Action::EditServer {
                    name: name.to_string(),
                    weight,
                    upper,
                    lower,
                });
            }
            "remove" | "close" | "end" => {
                let [name] = args else {
                    return Err(format!("usage: {verb} NAME"));
                };
                let name = name.to_string();
                push(match verb {
                    "remove" => Action::RemoveServer { name },
                    "close" => Action::Close { server: name },
                    _ => Action::End { server: name },
                });
            }
            "flags" => {
                let [list] = args else {
                    return Err("usage: flags F[,F..] | flags none".into());
                };
                push(Action::SetFlags(sched_flags(list)?));
            }
            "scheduler" => {
                let [name] = args else {
                    return Err("usage: scheduler SCHED".into());
                };
                let kind = SchedKind::from_name(name)
                    .ok_or_else(|| format!("unknown scheduler {name}"))?;
                push(Action::SetScheduler(kind));
            }
            "pick" => {
                let action = self.pick(args, family)?;
                self.steps.push(Step { line, action });
            }
            "picks" => {
                if args.is_empty() {
                    return Err("usage: picks NAME|none ...".into());
                }
                for word in args {
                    let action = self.pick(&["->", word], family)?;
                    self.steps.push(Step { line, action });
                }
            }
            "advance" => {
                let [t] = args else {
                    return Err("usage: advance N[ms|s|m|h|d]".into());
                };
                push(Action::Advance { ms: duration(t)? });
            }
            "rand" => {
                let (draws, below) = match args {
                    [d @ .., "below", b] => (d, Some(number(b)?)),
                    d => (d, None),
                };
                if draws.is_empty() {
                    return Err("usage: rand N... [below B]".into());
                }
                let draws = draws.iter().map(|d| number(d)).collect::<Res<_>>()?;
                push(Action::Rand { draws, below });
            }
            "expect" => {
                let [name, opts @ ..] = args else {
                    return Err("usage: expect NAME [active N] [inactive N] ...".into());
                };
                let (mut active, mut inactive, mut persist, mut overloaded) =
                    (None, None, None, None);
                for (k, v) in pairs(opts)? {
                    match k {
                        "active" => active = Some(number(v)?),
                        "inactive" => inactive = Some(number(v)?),
                        "persist" => persist = Some(number(v)?),
                        "overloaded" => overloaded = Some(yes_no(v)?),
                        _ => return Err(format!("unknown expect field {k}")),
                    }
                }
                push(Action::Expect {
                    server: name.to_string(),
                    active,
                    inactive,
                    persist,
                    overloaded,
                });
            }
            "sysctl" => {
                let [name, value] = args else {
                    return Err("usage: sysctl NAME VALUE".into());
                };
                push(Action::Sysctl {
                    name: name.to_string(),
                    value: number(value)?,
                });
            }
            _ => return Err(format!("unknown statement {verb}")),
        }
        Ok(())
    }

    /// `[from ADDR[:PORT]] [to ADDR[:PORT]] -> NAME|none`, with auto-client defaults.
    fn pick(&mut self, args: &[&str], family: Family) -> Res<Action> {
        let (head, expect) = match args {
            [h @ .., "->", e] => (h, *e),
            _ => return Err("a pick needs `-> NAME|none`".into()),
        };
        self.auto += 1;
        let k = self.auto;
        let auto_port = (10_000 + k) as u16;
        let mut client = (auto_client(family, k), auto_port);
        let svc = self.service.as_ref().expect("checked by caller");
        let mut to = default_destination(&svc.key);
        for (key, v) in pairs(head)? {
            match key {
                "from" => client = sockaddr(v, Some(auto_port))?,
                "to" => to = sockaddr(v, Some(to.1))?,
                _ => return Err(format!("unknown pick option {key}")),
            }
        }
        let expect = match expect {
            "none" => Expect::NoServer,
            name => Expect::Server(name.to_string()),
        };
        Ok(Action::Pick { client, to, expect })
    }
}

fn auto_client(family: Family, k: u32) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + k)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xc,
            0,
            0,
            0,
            (k >> 16) as u16,
            k as u16,
        )),
    }
}

fn default_destination(key: &ServiceKey) -> (IpAddr, u16) {
    match *key {
        ServiceKey::Addr { addr, port, .. } => (addr, if port == 0 { 80 } else { port }),
        ServiceKey::Fwmark {
            family: Family::V4, ..
        } => (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 80),
        ServiceKey::Fwmark { .. } => (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xd, 0, 0, 0, 0, 1)),
            80,
        ),
    }
}

fn parse_service(args: &[&str]) -> Res<ServiceConfig> {
    let (key, sched, opts) = match args {
        ["fwmark", mark, "v6", sched, opts @ ..] => (
            ServiceKey::Fwmark {
                mark: number(mark)?,
                family: Family::V6,
            },
            sched,
            opts,
        ),
        ["fwmark", mark, sched, opts @ ..] => (
            ServiceKey::Fwmark {
                mark: number(mark)?,
                family: Family::V4,
            },
            sched,
            opts,
        ),
        [proto, addr, sched, opts @ ..] => {
            let proto = match *proto {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                p => return Err(format!("unknown protocol {p}")),
            };
            let (addr, port) = sockaddr(addr, None)?;
            (ServiceKey::Addr { proto, addr, port }, sched, opts)
        }
        _ => return Err("usage: service PROTO ADDR:PORT SCHED [options]".into()),
    };
    let kind = SchedKind::from_name(sched).ok_or_else(|| format!("unknown scheduler {sched}"))?;
    let mut cfg = ServiceConfig::new(key).with_scheduler(kind.name());
    let mut rest = opts;
    while let Some((&opt, tail)) = rest.split_first() {
        rest = tail;
        if opt == "ops" {
            cfg.ops = true;
            continue;
        }
        let (&value, tail) = rest
            .split_first()
            .ok_or_else(|| format!("service option {opt} needs a value"))?;
        rest = tail;
        match opt {
            "persistent" => cfg.persistence = Some(number(value)?),
            "netmask" => cfg.netmask = netmask(value)?,
            "flags" => cfg.sched_flags = SchedFlags(sched_flags(value)?),
            _ => return Err(format!("unknown service option {opt}")),
        }
    }
    Ok(cfg)
}

fn apply_server_opts(cfg: &mut DestConfig, opts: &[&str]) -> Res<()> {
    for (k, v) in pairs(opts)? {
        match k {
            "weight" => cfg.weight = number(v)?,
            "upper" => cfg.u_threshold = number(v)?,
            "lower" => cfg.l_threshold = number(v)?,
            "method" => {
                cfg.forward = match v {
                    "dr" => Forward::Route,
                    "nat" => Forward::Masq,
                    "tun" => Forward::Tunnel,
                    m => return Err(format!("unknown method {m}")),
                }
            }
            _ => return Err(format!("unknown server option {k}")),
        }
    }
    Ok(())
}

fn pairs<'a>(words: &[&'a str]) -> Res<Vec<(&'a str, &'a str)>> {
    if !words.len().is_multiple_of(2) {
        return Err(format!("expected `key value` pairs, got {words:?}"));
    }
    Ok(words.chunks(2).map(|c| (c[0], c[1])).collect())
}

fn number(s: &str) -> Res<u32> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn yes_no(s: &str) -> Res<bool> {
    match s {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, got {s}")),
    }
}

/// `1.2.3.4:80`, `[2001:db8::1]:80`, or an address alone when a default port is given.
fn sockaddr(s: &str, default_port: Option<u16>) -> Res<(IpAddr, u16)> {
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Ok((sa.ip(), sa.port()));
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    match (bare.parse::<IpAddr>(), default_port) {
        (Ok(a), Some(p)) => Ok((a, p)),
        (Ok(_), None) => Err(format!("{s} needs a port")),
        _ => Err(format!("not an address: {s}")),
    }
}

fn netmask(s: &str) -> Res<Netmask> {
    if let Ok(bits) = s.parse::<u8>() {
        return Ok(Netmask(bits));
    }
    let dotted: Ipv4Addr = s.parse().map_err(|_| format!("not a netmask: {s}"))?;
    Netmask::from_dotted(dotted).ok_or_else(|| format!("netmask {s} is not contiguous"))
}

fn sched_flags(list: &str) -> Res<u32> {
    if list == "none" {
        return Ok(0);
    }
    list.split(',').try_fold(0, |acc, f| {
        let bit = match f {
            "flag-1" | "sh-fallback" | "mh-fallback" => SchedFlags::SCHED1,
            "flag-2" | "sh-port" | "mh-port" => SchedFlags::SCHED2,
            "flag-3" => SchedFlags::SCHED3,
            _ => return Err(format!("unknown scheduler flag {f}")),
        };
        Ok(acc | bit)
    })
}

/// `90`, `90s`, `1500ms`, `2m`, `1h`, `1d`.
fn duration(s: &str) -> Res<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s}"))?;
    let scale = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown time unit in {s}")),
    };
    Ok(n * scale)
}
