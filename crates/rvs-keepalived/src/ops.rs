//! From the configuration to the table: the services and real servers keepalived would
//! put in IPVS (`ipvswrapper.c ipvs_set_srule/ipvs_set_drule`, `ipvs_cmd`), before any
//! health check has run (every real server alive with its configured weight).

use crate::config::Config;
use crate::lvs::{RealServer, SorryServer, VirtualServer, VsTarget};
use crate::vsg::VsgEntry;
use rvs_core::{
    DestConfig, Family, Forward, Netmask, Protocol, ServiceConfig, ServiceKey, Table, TableError,
};

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

    /// Adds every service and real server to `table` (a first load, no checker).
    ///
    /// # Errors
    /// The first table error (a service or server that already exists...).
    pub fn apply_all(&self, table: &mut Table) -> Result<(), TableError> {
        for (svc, dests) in self.services() {
            table.add_service(svc.clone())?;
            for d in dests {
                table.add_dest(&svc.key, d.clone())?;
            }
        }
        Ok(())
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
