//! What the supervisor runs, resolved from a [`Config`]: per virtual server its table
//! services, per real server its destinations and checkers, per checker the probe with
//! every default applied (keepalived's inheritance, ports, Host header, SNI).

use rvs_core::{DestConfig, ServiceConfig};
use rvs_keepalived::ops::{desired_vs, service_keys};
use rvs_keepalived::{
    Checker, CheckerKind, Config, HttpProtocol, RealServer, Script, Timing, VirtualServer, VsTarget,
};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct VsPlan {
    pub id: VsTarget,
    /// `TCP 10.0.0.1:80`, `FWM 7`, `group WEB`: for logs.
    pub name: String,
    pub services: Vec<ServiceConfig>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    pub omega: bool,
    pub sorry: Option<SorryPlan>,
    pub rss: Vec<RsPlan>,
}

#[derive(Clone, Debug)]
pub struct SorryPlan {
    pub addr: IpAddr,
    pub port: u16,
    pub inhibit: bool,
    /// One per service of the virtual server.
    pub dests: Vec<DestConfig>,
}

#[derive(Clone, Debug)]
pub struct RsPlan {
    pub addr: IpAddr,
    pub port: u16,
    /// The configured weight (keepalived's `iweight`).
    pub iweight: u32,
    pub inhibit: bool,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    /// One per service of the virtual server; the weight is replaced when applied.
    pub dests: Vec<DestConfig>,
    pub checkers: Vec<CheckerPlan>,
}

#[derive(Clone, Debug)]
pub struct CheckerPlan {
    pub probe: ProbeSpec,
    pub timing: Timing,
    pub log_all_failures: bool,
    /// The configuration the checker came from (reloads compare it).
    pub config: Checker,
}

impl CheckerPlan {
    pub fn kind(&self) -> &'static str {
        match &self.probe {
            ProbeSpec::Tcp(_) => "TCP_CHECK",
            ProbeSpec::Http { tls: None, .. } => "HTTP_GET",
            ProbeSpec::Http { tls: Some(_), .. } => "SSL_GET",
            ProbeSpec::Misc(_) => "MISC_CHECK",
            ProbeSpec::Dns(_) => "DNS_CHECK",
        }
    }

    /// Same checker for a reload: same configuration and same resolved timers.
    pub fn same_as(&self, other: &CheckerPlan) -> bool {
        self.config.same_config(&other.config)
            && self.timing == other.timing
            && self.probe == other.probe
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeSpec {
    Tcp(ConnSpec),
    Http {
        conn: ConnSpec,
        http: HttpSpec,
        /// SSL_GET.
        tls: Option<TlsSpec>,
    },
    Misc(MiscSpec),
    Dns(DnsSpec),
}

/// Where and how a probe connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnSpec {
    pub dst: SocketAddr,
    /// `bindto` / `bind_port`.
    pub bind: Option<SocketAddr>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSpec {
    pub urls: Vec<UrlSpec>,
    pub protocol: HttpProtocol,
    pub fast_recovery: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSpec {
    pub path: String,
    pub codes: Vec<(u16, u16)>,
    pub digest: Option<[u8; 16]>,
    /// The `Host:` header value.
    pub host: String,
    /// The SNI name (SSL_GET with enable_sni), if any.
    pub sni: Option<String>,
}

impl UrlSpec {
    pub fn accepts(&self, code: u16) -> bool {
        self.codes.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSpec {
    pub enable_sni: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscSpec {
    pub script: Script,
    /// `misc_timeout`, else the virtual server's delay_loop.
    pub timeout: Duration,
    pub dynamic: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSpec {
    pub conn: ConnSpec,
    pub qtype: u16,
    pub name: String,
}

/// The plan of every virtual server of `cfg`.
pub fn plan(cfg: &Config) -> Vec<VsPlan> {
    cfg.virtual_servers
        .iter()
        .enumerate()
        .map(|(i, vs)| vs_plan(cfg, i, vs))
        .collect()
}

fn vs_plan(cfg: &Config, index: usize, vs: &VirtualServer) -> VsPlan {
    let desired = desired_vs(cfg, index, vs);
    let keys = service_keys(cfg, vs);
    let name = match &vs.target {
        VsTarget::Group(g) => format!("group {g}"),
        _ => keys.first().map(|k| k.to_string()).unwrap_or_default(),
    };
    let rss = vs
        .real_servers
        .iter()
        .enumerate()
        .map(|(ri, rs)| RsPlan {
            addr: rs.addr,
            port: rs.port,
            iweight: vs.weight_of(rs),
            inhibit: vs.inhibit(rs),
            notify_up: rs.notify_up.clone(),
            notify_down: rs.notify_down.clone(),
            dests: desired
                .dests
                .iter()
                .map(|per_svc| per_svc[ri].clone())
                .collect(),
            checkers: rs
                .checkers
                .iter()
                .filter_map(|ck| checker_plan(vs, rs, ck))
                .collect(),
        })
        .collect();
    let sorry = vs.sorry_server.as_ref().map(|s| SorryPlan {
        addr: s.addr,
        port: s.port,
        inhibit: s.inhibit,
        dests: desired.sorry.clone().unwrap_or_default(),
    });
    VsPlan {
        id: vs.target.clone(),
        name,
        services: desired.services,
        quorum: vs.quorum,
        hysteresis: vs.hysteresis,
        quorum_up: vs.quorum_up.clone(),
        quorum_down: vs.quorum_down.clone(),
        omega: vs.omega,
        sorry,
        rss,
    }
}

fn conn(rs: &RealServer, ck: &Checker, t: &Timing) -> ConnSpec {
    let c = &ck.common;
    let dst = SocketAddr::new(
        c.connect_ip.unwrap_or(rs.addr),
        c.connect_port.unwrap_or(rs.port),
    );
    let bind = match (c.bindto, c.bind_port) {
        (None, None) => None,
        (ip, port) => Some(SocketAddr::new(
            ip.unwrap_or(if dst.is_ipv4() {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u16; 8])
            }),
            port.unwrap_or(0),
        )),
    };
    ConnSpec {
        dst,
        bind,
        bind_if: c.bind_if.clone(),
        fwmark: c.fwmark,
        timeout: t.connect_timeout,
    }
}

/// `None` for checkers rvs does not run (they never fail).
pub fn checker_plan(vs: &VirtualServer, rs: &RealServer, ck: &Checker) -> Option<CheckerPlan> {
    let timing = vs.timing(rs, ck);
    let probe = match &ck.kind {
        CheckerKind::Tcp => ProbeSpec::Tcp(conn(rs, ck, &timing)),
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => {
            let conn = conn(rs, ck, &timing);
            let tls = matches!(ck.kind, CheckerKind::Ssl(_)).then_some(TlsSpec {
                enable_sni: h.enable_sni,
            });
            let urls = h
                .urls
                .iter()
                .map(|u| {
                    let vhost = u
                        .virtualhost
                        .clone()
                        .or_else(|| h.virtualhost.clone())
                        .or_else(|| rs.virtualhost.clone())
                        .or_else(|| vs.virtualhost.clone());
                    let host = vhost.unwrap_or_else(|| match conn.dst {
                        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
                        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
                    });
                    // keepalived's SNI choice: sni_name, url, checker, virtual server.
                    let sni = h
                        .sni_name
                        .clone()
                        .or_else(|| u.virtualhost.clone())
                        .or_else(|| h.virtualhost.clone())
                        .or_else(|| vs.virtualhost.clone());
                    UrlSpec {
                        path: u.path.clone(),
                        codes: u.status_codes.clone(),
                        digest: u.digest,
                        host,
                        sni: if h.enable_sni { sni } else { None },
                    }
                })
                .collect();
            ProbeSpec::Http {
                conn,
                http: HttpSpec {
                    urls,
                    protocol: h.http_protocol,
                    fast_recovery: h.fast_recovery,
                },
                tls,
            }
        }
        CheckerKind::Misc(m) => ProbeSpec::Misc(MiscSpec {
            script: m.script.clone(),
            timeout: m
                .timeout
                .map(|s| Duration::from_secs(s.into()))
                .unwrap_or(vs.delay_loop),
            dynamic: m.dynamic,
        }),
        CheckerKind::Dns(d) => ProbeSpec::Dns(DnsSpec {
            conn: conn(rs, ck, &timing),
            qtype: d.qtype,
            name: d.name.clone(),
        }),
        CheckerKind::Unsupported(_) => return None,
    };
    Some(CheckerPlan {
        probe,
        timing,
        log_all_failures: ck.common.log_all_failures.unwrap_or(false),
        config: ck.clone(),
    })
}
