//! What a reload changes (`ipwrapper.c clear_diff_services`): services and real servers
//! added, removed or changed, compared on the table entries both configurations produce,
//! and the real servers whose checkers changed (those restart their health checks; all
//! others keep their state).

use crate::config::Config;
use crate::lvs::VsTarget;
use crate::ops::{to_table_ops, DesiredState};
use rvs_core::{DestConfig, ServiceConfig, ServiceKey};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub added_services: Vec<ServiceConfig>,
    pub removed_services: Vec<ServiceKey>,
    /// (old, new): scheduler, flags, persistence… changed (`ipvsadm -E`).
    pub changed_services: Vec<(ServiceConfig, ServiceConfig)>,
    /// Real servers of services present in both configurations.
    pub added_dests: Vec<(ServiceKey, DestConfig)>,
    pub removed_dests: Vec<(ServiceKey, IpAddr, u16)>,
    /// (service, old, new): weight, method, thresholds changed (`ipvsadm -e`).
    pub changed_dests: Vec<(ServiceKey, DestConfig, DestConfig)>,
    /// Real servers kept whose checker configuration changed: (virtual server, address,
    /// port).
    pub changed_checkers: Vec<(VsTarget, IpAddr, u16)>,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        self.added_services.is_empty()
            && self.removed_services.is_empty()
            && self.changed_services.is_empty()
            && self.added_dests.is_empty()
            && self.removed_dests.is_empty()
            && self.changed_dests.is_empty()
            && self.changed_checkers.is_empty()
    }
}

type SvcMap<'a> = BTreeMap<SortKey, (&'a ServiceConfig, &'a [DestConfig])>;

/// An orderable service key (IpAddr, Protocol... have an order; the enum does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey((u32, u16, u8, IpAddr, u16));

fn index(d: &DesiredState) -> SvcMap<'_> {
    d.services()
        .map(|(s, ds)| (SortKey(s.key.sort_key()), (s, ds)))
        .collect()
}

/// Compares two configurations.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let (o, n) = (to_table_ops(old), to_table_ops(new));
    let (om, nm) = (index(&o), index(&n));
    let mut out = ConfigDiff::default();
    for (k, (svc, _)) in &om {
        if !nm.contains_key(k) {
            out.removed_services.push(svc.key);
        }
    }
    for (k, (svc, dests)) in &nm {
        let Some((old_svc, old_dests)) = om.get(k) else {
            out.added_services.push((*svc).clone());
            continue;
        };
        if old_svc != svc {
            out.changed_services
                .push(((*old_svc).clone(), (*svc).clone()));
        }
        for od in *old_dests {
            if !dests.iter().any(|d| d.addr == od.addr && d.port == od.port) {
                out.removed_dests.push((svc.key, od.addr, od.port));
            }
        }
        for d in *dests {
            match old_dests
                .iter()
                .find(|od| od.addr == d.addr && od.port == d.port)
            {
                None => out.added_dests.push((svc.key, d.clone())),
                Some(od) if od != d => out.changed_dests.push((svc.key, od.clone(), d.clone())),
                Some(_) => {}
            }
        }
    }
    for nvs in &new.virtual_servers {
        let Some(ovs) = old.virtual_servers.iter().find(|v| v.target == nvs.target) else {
            continue;
        };
        for nrs in &nvs.real_servers {
            let Some(ors) = ovs
                .real_servers
                .iter()
                .find(|r| r.addr == nrs.addr && r.port == nrs.port)
            else {
                continue;
            };
            let same = ors.checkers.len() == nrs.checkers.len()
                && ors
                    .checkers
                    .iter()
                    .zip(&nrs.checkers)
                    .all(|(a, b)| a.same_config(b) && ovs.timing(ors, a) == nvs.timing(nrs, b));
            if !same {
                out.changed_checkers
                    .push((nvs.target.clone(), nrs.addr, nrs.port));
            }
        }
    }
    out
}
