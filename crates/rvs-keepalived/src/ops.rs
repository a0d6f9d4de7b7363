//! From the configuration to table entries: the services and real servers keepalived would
//! put in IPVS (`ipvswrapper.c ipvs_set_srule/ipvs_set_drule`, `ipvs_cmd`), before any
//! health check has run (every real server alive with its configured weight). The
//! [`crate::pool`] moves them as health verdicts come; [`entries`] lists them with where
//! the configuration wrote them, for a data plane to admit.

use crate::config::Config;
use crate::diag::Pos;
use crate::lvs::{RealServer, SorryServer, VirtualServer, VsTarget};
use crate::vsg::VsgEntry;
use rvs_core::{Change, DestConfig, Family, Forward, Netmask, Protocol, ServiceConfig, ServiceKey};

/// One `virtual_server` block as table entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredVs {
    /// Index in [`Config::virtual_servers`].
    pub index: usize,
    /// keepalived's identity of a virtual server (`vs_iseq`): reloads match on it.
    pub id: VsTarget,
    /// One service per address (or fwmark) of the virtual server; several for a group.
    pub services: Vec<ServiceConfig>,
    /// Real servers with their configured weights, per service (same order as
    /// `services`).
    pub dests: Vec<Vec<DestConfig>>,
    /// The sorry server, per service.
    pub sorry: Option<Vec<DestConfig>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub vss: Vec<DesiredVs>,
}

impl DesiredState {
    /// Every (service, its real servers).
    pub fn services(&self) -> impl Iterator<Item = (&ServiceConfig, &[DestConfig])> {
        self.vss
            .iter()
            .flat_map(|v| v.services.iter().zip(v.dests.iter().map(|d| d.as_slice())))
    }
}

/// The table entries of a configuration.
pub fn to_table_ops(cfg: &Config) -> DesiredState {
    DesiredState {
        vss: cfg
            .virtual_servers
            .iter()
            .enumerate()
            .map(|(i, vs)| desired_vs(cfg, i, vs))
            .collect(),
    }
}

pub fn desired_vs(cfg: &Config, index: usize, vs: &VirtualServer) -> DesiredVs {
    let services: Vec<ServiceConfig> = service_keys(cfg, vs)
        .into_iter()
        .map(|k| service_config(vs, k))
        .collect();
    let dests = services
        .iter()
        .map(|s| {
            vs.real_servers
                .iter()
                .map(|rs| dest_for(vs, &s.key, rs, vs.weight_of(rs)))
                .collect()
        })
        .collect();
    let sorry = vs.sorry_server.as_ref().map(|ss| {
        services
            .iter()
            .map(|s| sorry_dest(vs, &s.key, ss))
            .collect()
    });
    DesiredVs {
        index,
        id: vs.target.clone(),
        services,
        dests,
        sorry,
    }
}

/// The services a virtual server stands for.
pub fn service_keys(cfg: &Config, vs: &VirtualServer) -> Vec<ServiceKey> {
    let fam = vs.ip_family.unwrap_or(Family::V4);
    let proto = vs.protocol.unwrap_or(Protocol::Udp);
    match &vs.target {
        VsTarget::Addr { ip, port } => vec![ServiceKey::Addr {
            proto,
            addr: *ip,
            port: *port,
        }],
        VsTarget::Fwmark(mark) => vec![ServiceKey::Fwmark {
            mark: *mark,
            family: fam,
        }],
        VsTarget::Group(name) => {
            let Some(g) = cfg.group(name) else {
                return Vec::new();
            };
            let mut keys = Vec::new();
            for e in &g.entries {
                match e {
                    VsgEntry::Range { port, .. } => {
                        for addr in e.addresses() {
                            keys.push(ServiceKey::Addr {
                                proto,
                                addr,
                                port: *port,
                            });
                        }
                    }
                    VsgEntry::Fwmark { mark, family } => keys.push(ServiceKey::Fwmark {
                        mark: *mark,
                        family: family.unwrap_or(fam),
                    }),
                }
            }
            keys
        }
    }
}

pub fn service_config(vs: &VirtualServer, key: ServiceKey) -> ServiceConfig {
    let mut s = ServiceConfig::new(key);
    s.scheduler = vs
        .lvs_sched
        .clone()
        .unwrap_or_else(|| rvs_core::config::DEFAULT_SCHEDULER.to_string());
    s.sched_flags = vs.sched_flags;
    s.persistence = vs.persistence_timeout;
    s.netmask = vs
        .persistence_granularity
        .unwrap_or(Netmask(key.family().max_prefix()));
    s.pe = vs.persistence_engine.clone();
    s.ops = vs.ops;
    s
}

/// A real server of `vs` as a destination of the service `key`, with `weight`.
/// Only NAT maps ports: other methods use the service's port (0 for fwmark services).
pub fn dest_for(vs: &VirtualServer, key: &ServiceKey, rs: &RealServer, weight: u32) -> DestConfig {
    let m = vs.method_of(rs);
    let port = if m.forward == Forward::Masq && rs.port != 0 {
        rs.port
    } else {
        key.port()
    };
    DestConfig {
        addr: rs.addr,
        port,
        forward: m.forward,
        weight,
        u_threshold: rs.uthreshold,
        l_threshold: rs.lthreshold,
        tunnel: m.tunnel,
    }
}

pub fn sorry_dest(vs: &VirtualServer, key: &ServiceKey, ss: &SorryServer) -> DestConfig {
    let m = ss
        .lvs_method
        .or(vs.lvs_method)
        .unwrap_or(crate::lvs::LvsMethod::NAT);
    let port = if m.forward == Forward::Masq && ss.port != 0 {
        ss.port
    } else {
        key.port()
    };
    DestConfig {
        addr: ss.addr,
        port,
        forward: m.forward,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tunnel: m.tunnel,
    }
}

/// A table entry of the configuration, with the block that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where the block starts.
    pub pos: Pos,
    /// `virtual_server 10.0.0.1 80`, `real_server 10.0.0.2 80`, `sorry_server …`.
    pub block: String,
    /// The change that puts the entry in the table.
    pub change: Change,
}

/// Every service, real server and sorry server the configuration can put in the table
/// (whatever the health checks say), in file order: what a data plane must admit.
pub fn entries(cfg: &Config) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, vs) in cfg.virtual_servers.iter().enumerate() {
        let d = desired_vs(cfg, i, vs);
        let block = match &vs.target {
            VsTarget::Addr { ip, port } => format!("virtual_server {ip} {port}"),
            VsTarget::Fwmark(m) => format!("virtual_server fwmark {m}"),
            VsTarget::Group(g) => format!("virtual_server group {g}"),
        };
        for s in &d.services {
            out.push(Entry {
                pos: vs.pos.clone(),
                block: block.clone(),
                change: Change::SetService(s.clone()),
            });
        }
        let dest = |svc: &ServiceConfig, dest: &DestConfig| Change::SetDest {
            svc: svc.key,
            dest: dest.clone(),
        };
        for (ri, rs) in vs.real_servers.iter().enumerate() {
            for (svc, per_svc) in d.services.iter().zip(&d.dests) {
                out.push(Entry {
                    pos: rs.pos.clone(),
                    block: format!("real_server {} {}", rs.addr, rs.port),
                    change: dest(svc, &per_svc[ri]),
                });
            }
        }
        if let (Some(ss), Some(sorry)) = (&vs.sorry_server, &d.sorry) {
            for (svc, sd) in d.services.iter().zip(sorry) {
                out.push(Entry {
                    pos: ss.pos.clone(),
                    block: format!("sorry_server {} {}", ss.addr, ss.port),
                    change: dest(svc, sd),
                });
            }
        }
    }
    out
}
