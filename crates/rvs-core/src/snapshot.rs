//! Read-only views of the table for listings (`ipvsadm -L`, `-c`, `--json`). They are plain
//! data so the control socket can carry them.

use crate::config::{DestConfig, ServiceConfig};
use crate::stats::{Counters, Rates};
use crate::table::Table;
use crate::types::Millis;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `IP_VS_VERSION_CODE` 1.2.1, what ipvsadm prints in its header.
pub const IPVS_VERSION: (u8, u8, u8) = (1, 2, 1);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestInfo {
    pub cfg: DestConfig,
    pub activeconns: u32,
    pub inactconns: u32,
    pub persistconns: u32,
    pub overloaded: bool,
    pub last_weight: u32,
    pub stats: Counters,
    pub rates: Rates,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub cfg: ServiceConfig,
    pub stats: Counters,
    pub rates: Rates,
    /// Real servers in list order (newest first).
    pub dests: Vec<DestInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    /// Transport protocol number, 0 for fwmark templates (`IP`).
    pub proto: u8,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// State name as `ipvsadm -Lc` prints it.
    pub state: String,
    /// Milliseconds until the entry's timer fires.
    pub expires_ms: Millis,
    pub template: bool,
    pub fwmark: u32,
    pub pe_name: Option<String>,
    pub pe_data: Option<String>,
}

/// Header facts of `ipvsadm -L`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub version: (u8, u8, u8),
    /// Connection hash size (`size=`).
    pub size: u32,
    pub num_services: u32,
    pub num_conns: u64,
}

impl Table {
    pub fn info(&self) -> TableInfo {
        TableInfo {
            version: IPVS_VERSION,
            size: 1u32 << self.sysctl.conn_tab_bits,
            num_services: self.num_services() as u32,
            num_conns: self.conns().len() as u64,
        }
    }

    /// Every service with its servers, in creation order.
    pub fn snapshot(&self) -> Vec<ServiceInfo> {
        self.services()
            .map(|(id, svc)| ServiceInfo {
                cfg: svc.cfg.clone(),
                stats: svc.stats.shown(),
                rates: svc.stats.rates(),
                dests: self
                    .dests_of(id)
                    .iter()
                    .map(|(_, d)| DestInfo {
                        cfg: d.cfg.clone(),
                        activeconns: d.activeconns,
                        inactconns: d.inactconns,
                        persistconns: d.persistconns,
                        overloaded: d.overloaded,
                        last_weight: d.last_weight,
                        stats: d.stats.shown(),
                        rates: d.stats.rates(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Global counters and rates (all services).
    pub fn global_stats(&self) -> (Counters, Rates) {
        (self.stats.shown(), self.stats.rates())
    }

    /// Every connection entry and template, with the time left at `now`.
    pub fn conn_snapshot(&self, now: Millis) -> Vec<ConnInfo> {
        self.conns()
            .iter()
            .filter(|(_, c)| c.hashed || c.is_template())
            .map(|(_, c)| {
                let pe = c
                    .tkey
                    .as_ref()
                    .filter(|k| !k.pe_data.is_empty())
                    .map(|k| String::from_utf8_lossy(&k.pe_data).into_owned());
                ConnInfo {
                    proto: c.proto,
                    caddr: c.caddr,
                    cport: c.cport,
                    vaddr: c.vaddr,
                    vport: c.vport,
                    daddr: c.daddr,
                    dport: c.dport,
                    state: c.state.name().to_string(),
                    expires_ms: c.expires.saturating_sub(now),
                    template: c.is_template(),
                    fwmark: c.fwmark,
                    pe_name: pe.as_ref().map(|_| "sip".to_string()),
                    pe_data: pe,
                }
            })
            .collect()
    }
}
