//! `--json` (rvs extension): listings for scripts. Always numeric, in the same order as
//! the text listings (sorted unless `--nosort`), every counter exact. Field order is fixed
//! by the structs below.
//!
//! ```json
//! {"version": "1.2.1", "size": 4096, "services": [{
//!   "protocol": "TCP", "address": "10.0.0.1", "port": 80, "fwmark": null,
//!   "family": "ipv4", "scheduler": "wrr", "flags": ["flag-1"], "persistent": 360,
//!   "netmask": "255.255.255.0", "pe": null, "ops": false,
//!   "stats": {"conns": 0, "inpkts": 0, "outpkts": 0, "inbytes": 0, "outbytes": 0},
//!   "rates": {"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0},
//!   "servers": [{"address": "192.168.1.10", "port": 80, "forward": "Route", "weight": 3,
//!     "u_threshold": 0, "l_threshold": 0, "active_conns": 12, "inactive_conns": 40,
//!     "persistent_conns": 0, "tunnel": null, "stats": {...}, "rates": {...}}]}]}
//! ```

use crate::check::tunnel_name;
use crate::format::conns::proto_name;
use crate::format::misc::daemons_in_order;
use crate::format::services::sched_flag_names;
use crate::sort::sorted_services;
use rvs_api::{StatusReply, TimeoutsReply};
use rvs_core::snapshot::{ConnInfo, DestInfo, ServiceInfo, TableInfo};
use rvs_core::{Counters, Family, Forward, Rates, ServiceKey, SyncDaemonConfig, TunnelCsum};
use serde::Serialize;
use serde_json::Value;

fn to_text(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("listing values always serialize");
    s.push('\n');
    s
}

#[derive(Serialize)]
struct Stats {
    conns: u64,
    inpkts: u64,
    outpkts: u64,
    inbytes: u64,
    outbytes: u64,
}

impl From<&Counters> for Stats {
    fn from(c: &Counters) -> Self {
        Stats {
            conns: c.conns,
            inpkts: c.inpkts,
            outpkts: c.outpkts,
            inbytes: c.inbytes,
            outbytes: c.outbytes,
        }
    }
}

#[derive(Serialize)]
struct RatesJson {
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
}

impl From<&Rates> for RatesJson {
    fn from(r: &Rates) -> Self {
        RatesJson {
            cps: r.cps,
            inpps: r.inpps,
            outpps: r.outpps,
            inbps: r.inbps,
            outbps: r.outbps,
        }
    }
}

#[derive(Serialize)]
struct Tunnel {
    #[serde(rename = "type")]
    kind: &'static str,
    port: u16,
    csum: &'static str,
}

#[derive(Serialize)]
struct Server {
    address: String,
    port: u16,
    forward: &'static str,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    active_conns: u32,
    inactive_conns: u32,
    persistent_conns: u32,
    tunnel: Option<Tunnel>,
    stats: Stats,
    rates: RatesJson,
}

impl From<&DestInfo> for Server {
    fn from(d: &DestInfo) -> Self {
        let c = &d.cfg;
        let tunnel = (c.forward == Forward::Tunnel).then(|| Tunnel {
            kind: tunnel_name(c.tunnel.kind),
            port: c.tunnel.port,
            csum: match c.tunnel.csum {
                TunnelCsum::NoCsum => "nocsum",
                TunnelCsum::Csum => "csum",
                TunnelCsum::RemCsum => "remcsum",
            },
        });
        Server {
            address: c.addr.to_string(),
            port: c.port,
            forward: c.forward.name(),
            weight: c.weight,
            u_threshold: c.u_threshold,
            l_threshold: c.l_threshold,
            active_conns: d.activeconns,
            inactive_conns: d.inactconns,
            persistent_conns: d.persistconns,
            tunnel,
            stats: (&d.stats).into(),
            rates: (&d.rates).into(),
        }
    }
}

#[derive(Serialize)]
struct Service {
    protocol: Option<&'static str>,
    address: Option<String>,
    port: Option<u16>,
    fwmark: Option<u32>,
    family: &'static str,
    scheduler: String,
    flags: Vec<&'static str>,
    persistent: Option<u32>,
    /// Dotted mask for IPv4, prefix length for IPv6.
    netmask: Value,
    pe: Option<String>,
    ops: bool,
    stats: Stats,
    rates: RatesJson,
    servers: Vec<Server>,
}

impl From<&ServiceInfo> for Service {
    fn from(s: &ServiceInfo) -> Self {
        let cfg = &s.cfg;
        let (protocol, address, port, fwmark) = match cfg.key {
            ServiceKey::Addr { proto, addr, port } => {
                (Some(proto.name()), Some(addr.to_string()), Some(port), None)
            }
            ServiceKey::Fwmark { mark, .. } => (None, None, None, Some(mark)),
        };
        let family = cfg.key.family();
        Service {
            protocol,
            address,
            port,
            fwmark,
            family: match family {
                Family::V4 => "ipv4",
                Family::V6 => "ipv6",
            },
            scheduler: cfg.scheduler.clone(),
            flags: sched_flag_names(&cfg.scheduler, cfg.sched_flags),
            persistent: cfg.persistence,
            netmask: match family {
                Family::V4 => Value::from(cfg.netmask.dotted().to_string()),
                Family::V6 => Value::from(cfg.netmask.0),
            },
            pe: cfg.pe.clone(),
            ops: cfg.ops,
            stats: (&s.stats).into(),
            rates: (&s.rates).into(),
            servers: s.dests.iter().map(Server::from).collect(),
        }
    }
}

#[derive(Serialize)]
struct Table {
    version: String,
    size: u32,
    services: Vec<Service>,
}

/// `-L --json`: header facts and every service with its servers.
pub fn table(info: &TableInfo, services: &[ServiceInfo], nosort: bool) -> String {
    let (ma, mi, pa) = info.version;
    to_text(&Table {
        version: format!("{ma}.{mi}.{pa}"),
        size: info.size,
        services: sorted_services(services, nosort)
            .iter()
            .map(Service::from)
            .collect(),
    })
}

#[derive(Serialize)]
struct OneService {
    services: [Service; 1],
}

/// `-L -t ... --json`: one service.
pub fn one_service(svc: &ServiceInfo, nosort: bool) -> String {
    let sorted = sorted_services(std::slice::from_ref(svc), nosort);
    to_text(&OneService {
        services: [Service::from(&sorted[0])],
    })
}

#[derive(Serialize)]
struct Endpoint {
    address: String,
    port: u16,
}

#[derive(Serialize)]
struct Conn {
    protocol: String,
    state: String,
    /// Seconds left.
    expires: u64,
    template: bool,
    source: Endpoint,
    #[serde(rename = "virtual")]
    vip: Endpoint,
    destination: Endpoint,
    fwmark: u32,
    pe_name: Option<String>,
    pe_data: Option<String>,
}

#[derive(Serialize)]
struct Conns {
    connections: Vec<Conn>,
}

/// `-Lc --json`.
pub fn conns(conns: &[ConnInfo]) -> String {
    let ep = |address: std::net::IpAddr, port| Endpoint {
        address: address.to_string(),
        port,
    };
    to_text(&Conns {
        connections: conns
            .iter()
            .map(|c| Conn {
                protocol: proto_name(c.proto),
                state: c.state.clone(),
                expires: c.expires_ms / 1000,
                template: c.template,
                source: ep(c.caddr, c.cport),
                vip: ep(c.vaddr, c.vport),
                destination: ep(c.daddr, c.dport),
                fwmark: c.fwmark,
                pe_name: c.pe_name.clone(),
                pe_data: c.pe_data.clone(),
            })
            .collect(),
    })
}

#[derive(Serialize)]
struct Timeouts {
    tcp: u32,
    tcpfin: u32,
    udp: u32,
}

/// `--timeout --json`.
pub fn timeouts(t: &TimeoutsReply) -> String {
    to_text(&Timeouts {
        tcp: t.tcp,
        tcpfin: t.tcpfin,
        udp: t.udp,
    })
}

#[derive(Serialize)]
struct Daemon {
    state: &'static str,
    mcast_interface: String,
    syncid: u8,
    sync_maxlen: u16,
    mcast_group: Option<String>,
    mcast_port: u16,
    mcast_ttl: u8,
}

#[derive(Serialize)]
struct Daemons {
    daemons: Vec<Daemon>,
}

/// `--daemon --json`, with the kernel's defaults filled in as in the text listing.
pub fn daemons(list: &[SyncDaemonConfig]) -> String {
    to_text(&Daemons {
        daemons: daemons_in_order(list)
            .into_iter()
            .map(|d| Daemon {
                state: if d.master { "master" } else { "backup" },
                mcast_interface: d.mcast_ifn,
                syncid: d.syncid,
                sync_maxlen: d.sync_maxlen,
                mcast_group: d.mcast_group.map(|g| g.to_string()),
                mcast_port: d.mcast_port,
                mcast_ttl: d.mcast_ttl,
            })
            .collect(),
    })
}

#[derive(Serialize)]
struct Checker {
    service: String,
    address: String,
    port: u16,
    kind: String,
    up: bool,
    failures: u32,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct Status {
    version: String,
    dataplane: String,
    checkers: Vec<Checker>,
    facts: serde_json::Map<String, Value>,
}

/// `--status --json`.
pub fn status(s: &StatusReply) -> String {
    to_text(&Status {
        version: s.version.clone(),
        dataplane: s.dataplane.clone(),
        checkers: s
            .checkers
            .iter()
            .map(|c| Checker {
                service: c.service.to_string(),
                address: c.addr.to_string(),
                port: c.port,
                kind: c.kind.clone(),
                up: c.up,
                failures: c.failures,
                last_error: c.last_error.clone(),
            })
            .collect(),
        facts: s
            .facts
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect(),
    })
}
