//! [`Change`]: every way the virtual-service table can be changed, in one vocabulary. An
//! `ipvsadm` command line, a control-socket request, a keepalived.conf load or reload and
//! a health verdict all end as `Change`s, and [`Table::apply`] is the one place that
//! performs them.
//!
//! Each variant is one libipvs call (`ipvs_add_service`, `ipvs_update_dest`…) and fails
//! as the kernel does, with its errno, so `ipvsadm`'s messages follow. Two more are
//! keepalived's way of stating a desired entry ([`Change::SetService`],
//! [`Change::SetDest`]): add it, or edit it to this configuration if it exists.

use crate::config::{DestConfig, ServiceConfig};
use crate::error::Result;
use crate::table::{SyncDaemonConfig, Table};
use crate::types::ServiceKey;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One change to the table. The serde form is the control socket's (rvs-api): keep
/// variant and field names stable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// `-A`.
    AddService(ServiceConfig),
    /// `-E`.
    EditService(ServiceConfig),
    /// `-D`.
    DelService(ServiceKey),
    /// `-C`.
    Flush,
    /// `-Z [service]`.
    Zero(Option<ServiceKey>),
    /// `-a`.
    AddDest { svc: ServiceKey, dest: DestConfig },
    /// `-e`.
    EditDest { svc: ServiceKey, dest: DestConfig },
    /// `-d`.
    DelDest {
        svc: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
    /// `--set tcp tcpfin udp` (0 = unchanged).
    SetTimeouts { tcp: u32, tcpfin: u32, udp: u32 },
    /// `--start-daemon`.
    StartDaemon(SyncDaemonConfig),
    /// `--stop-daemon`.
    StopDaemon { master: bool },
    /// Add the service, or edit it to `cfg` if it exists (nothing if it is so already).
    SetService(ServiceConfig),
    /// Add the real server, or edit it to `dest` if it exists (nothing if it is so
    /// already).
    SetDest { svc: ServiceKey, dest: DestConfig },
    /// A `net.ipv4.vs.*` sysctl (rvs: `rvsd --sysctl`, `rvsadm --sysctl`).
    SetSysctl { name: String, value: String },
}

impl Change {
    /// The service configuration this change puts in the table (add or edit), if any.
    pub fn service_config(&self) -> Option<&ServiceConfig> {
        match self {
            Change::AddService(c) | Change::EditService(c) | Change::SetService(c) => Some(c),
            _ => None,
        }
    }

    /// The real server this change puts in the table (add or edit), with its service.
    pub fn dest_config(&self) -> Option<(&ServiceKey, &DestConfig)> {
        match self {
            Change::AddDest { svc, dest }
            | Change::EditDest { svc, dest }
            | Change::SetDest { svc, dest } => Some((svc, dest)),
            _ => None,
        }
    }
}

impl Table {
    /// Performs one change. Nothing changes when it fails; the error carries the errno
    /// the kernel returns for the same call.
    ///
    /// # Errors
    /// As the operation's own method ([`Table::add_service`], [`Table::del_dest`]…).
    pub fn apply(&mut self, change: &Change) -> Result<()> {
        match change {
            Change::AddService(cfg) => self.add_service(cfg.clone()).map(drop),
            Change::EditService(cfg) => self.edit_service(cfg.clone()),
            Change::DelService(key) => self.del_service(key),
            Change::Flush => {
                self.flush();
                Ok(())
            }
            Change::Zero(key) => self.zero(key.as_ref()),
            Change::AddDest { svc, dest } => self.add_dest(svc, dest.clone()).map(drop),
            Change::EditDest { svc, dest } => self.edit_dest(svc, dest.clone()),
            Change::DelDest { svc, addr, port } => self.del_dest(svc, *addr, *port),
            Change::SetTimeouts { tcp, tcpfin, udp } => {
                self.set_timeouts(*tcp, *tcpfin, *udp);
                Ok(())
            }
            Change::StartDaemon(cfg) => self.start_daemon(cfg.clone()),
            Change::StopDaemon { master } => self.stop_daemon(*master),
            Change::SetService(cfg) => match self.service_id(&cfg.key) {
                Some(id) if self.service(id).is_some_and(|s| s.cfg == *cfg) => Ok(()),
                Some(_) => self.edit_service(cfg.clone()),
                None => self.add_service(cfg.clone()).map(drop),
            },
            Change::SetSysctl { name, value } => self.set_sysctl(name, value),
            Change::SetDest { svc, dest } => {
                let existing = self
                    .service_id(svc)
                    .and_then(|sid| self.find_dest(sid, dest.addr, dest.port));
                match existing {
                    Some(id) if self.dest(id).is_some_and(|d| d.cfg == *dest) => Ok(()),
                    Some(_) => self.edit_dest(svc, dest.clone()),
                    None => self.add_dest(svc, dest.clone()).map(drop),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Errno;
    use crate::types::Protocol;

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    fn dest(weight: u32) -> DestConfig {
        DestConfig::new("10.0.0.2".parse().unwrap(), 80).with_weight(weight)
    }

    fn weight(t: &Table) -> Option<u32> {
        let sid = t.service_id(&key())?;
        let id = t.find_dest(sid, "10.0.0.2".parse().unwrap(), 80)?;
        Some(t.dest(id)?.cfg.weight)
    }

    #[test]
    fn changes_fail_with_the_kernel_errno_and_change_nothing() {
        let mut t = Table::new();
        let add = Change::AddService(ServiceConfig::new(key()));
        t.apply(&add).unwrap();
        assert_eq!(t.apply(&add).unwrap_err().errno, Errno::Exists);
        let bad = Change::AddDest {
            svc: ServiceKey::Fwmark {
                mark: 1,
                family: crate::types::Family::V4,
            },
            dest: dest(1),
        };
        assert_eq!(t.apply(&bad).unwrap_err().errno, Errno::NoService);
        let gone = Change::DelDest {
            svc: key(),
            addr: "10.0.0.9".parse().unwrap(),
            port: 80,
        };
        assert_eq!(t.apply(&gone).unwrap_err().errno, Errno::NotFound);
        assert_eq!(t.num_services(), 1);
        assert_eq!(weight(&t), None);
    }

    #[test]
    fn set_adds_then_edits_then_leaves_alone() {
        let mut t = Table::new();
        let svc = ServiceConfig::new(key());
        t.apply(&Change::SetService(svc.clone())).unwrap();
        t.apply(&Change::SetService(svc.clone().with_scheduler("wrr")))
            .unwrap();
        let sid = t.service_id(&key()).unwrap();
        assert_eq!(t.service(sid).unwrap().cfg.scheduler, "wrr");
        for w in [3, 5, 5] {
            t.apply(&Change::SetDest {
                svc: key(),
                dest: dest(w),
            })
            .unwrap();
            assert_eq!(weight(&t), Some(w));
        }
        assert_eq!(t.dests_of(sid).iter().count(), 1);
    }
}
