//! What the supervisor runs, resolved from a [`Config`]: per virtual server its real
//! servers, per real server its checkers, per checker the probe with every default applied
//! (keepalived's inheritance, ports, Host header, SNI). What the table gets is not here:
//! that is `rvs_keepalived::pool`'s.

use rvs_core::{Family, ServiceKey};
use rvs_keepalived::ops::service_keys;
use rvs_keepalived::pool::vs_name;
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
    /// The first service of the virtual server (for the operator's status).
    pub service: ServiceKey,
    pub rss: Vec<RsPlan>,
}

#[derive(Clone, Debug)]
pub struct RsPlan {
    pub addr: IpAddr,
    pub port: u16,
    /// The configured weight (keepalived's `iweight`).
    pub iweight: u32,
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

/// The plan of every virtual server of `cfg`, in its order.
pub fn plan(cfg: &Config) -> Vec<VsPlan> {
    cfg.virtual_servers
        .iter()
        .map(|vs| vs_plan(cfg, vs))
        .collect()
}

fn vs_plan(cfg: &Config, vs: &VirtualServer) -> VsPlan {
    let rss = vs
        .real_servers
        .iter()
        .map(|rs| RsPlan {
            addr: rs.addr,
            port: rs.port,
            iweight: vs.weight_of(rs),
            checkers: rs
                .checkers
                .iter()
                .filter_map(|ck| checker_plan(vs, rs, ck))
                .collect(),
        })
        .collect();
    VsPlan {
        id: vs.target.clone(),
        name: vs_name(cfg, vs),
        service: service_keys(cfg, vs)
            .first()
            .copied()
            .unwrap_or(ServiceKey::Fwmark {
                mark: 0,
                family: Family::V4,
            }),
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
