//! The virtual-service table: services, their real servers, the connection table, timeouts,
//! sysctls and global stats. Admin operations fail exactly where the kernel fails, with the
//! same errno (`ip_vs_ctl.c`).

use crate::config::{DestConfig, ServiceConfig};
use crate::conn::{Conn, ConnId, ConnTable};
use crate::dest::{Dest, DestArena, DestId, DestView, ServiceId};
use crate::error::{Errno, Result, TableError};
use crate::sched::{DestChange, Random, SchedKind, Scheduler, XorShift};
use crate::state::Timeouts;
use crate::stats::Stats;
use crate::types::{Family, Forward, Millis, ServiceKey, TunnelType};
use slotmap::SlotMap;
use std::collections::HashMap;
use std::net::IpAddr;

/// A trashed server is freed once unreferenced for this long (`IP_VS_DEST_TRASH_PERIOD`).
pub const DEST_TRASH_PERIOD_MS: Millis = 120_000;
/// A template (or FTP control) with live children is re-armed for this long instead of
/// expiring.
pub const CONTROL_REARM_MS: Millis = 60_000;
/// Largest weight the kernel stores (an `int`).
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

/// The `/proc/sys/net/ipv4/vs/*` switches the model honours (defaults as in the kernel).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sysctl {
    /// Expire an entry whose server is gone on its next packet (and re-schedule it).
    pub expire_nodest_conn: bool,
    /// Treat templates of weight-0 servers as invalid.
    pub expire_quiescent_template: bool,
    /// Bit 1: a SYN hitting a TIME_WAIT/CLOSE entry re-schedules; bit 2: FIN_WAIT too (DR/TUN).
    pub conn_reuse_mode: u8,
    /// Any non-RST TCP segment (not only SYN) may open an entry.
    pub sloppy_tcp: bool,
    /// Any SCTP chunk (not only INIT) may open an entry.
    #[serde(default)]
    pub sloppy_sctp: bool,
    /// Use the `secure_tcp` state tables.
    pub secure_tcp: bool,
    /// Connection hash size shown by `ipvsadm -L` is `1 << conn_tab_bits`.
    pub conn_tab_bits: u8,
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            sloppy_tcp: false,
            sloppy_sctp: false,
            secure_tcp: false,
            conn_tab_bits: 12,
        }
    }
}

/// Connection-sync daemon settings as `ipvsadm --start-daemon` gives them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncDaemonConfig {
    pub master: bool,
    pub mcast_ifn: String,
    pub syncid: u8,
    /// 0 = the kernel default for the role.
    pub sync_maxlen: u16,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: u16,
    pub mcast_ttl: u8,
}

/// One virtual service with its scheduler and its server list.
pub struct Service {
    pub cfg: ServiceConfig,
    pub(crate) sched: Box<dyn Scheduler>,
    /// Live servers, oldest first (list order is the reverse).
    pub(crate) order: Vec<DestId>,
    /// The same servers by address, for O(1) lookups on add/edit/delete.
    pub(crate) by_addr: HashMap<(IpAddr, u16), DestId>,
    pub stats: Stats,
}

impl Service {
    pub fn sched_kind(&self) -> SchedKind {
        self.sched.kind()
    }

    /// The dh/sh/mh lookup table as the scheduler last built it (see
    /// [`Scheduler::lookup_table`]); `None` for the other schedulers.
    pub fn lookup_table(&self) -> Option<Vec<Option<DestId>>> {
        self.sched.lookup_table()
    }
}

pub struct Table {
    pub(crate) services: SlotMap<ServiceId, Service>,
    pub(crate) by_key: HashMap<ServiceKey, ServiceId>,
    /// Creation order, the order of unsorted listings.
    pub(crate) svc_order: Vec<ServiceId>,
    /// Number of services per (family, protocol) with port 0 and of fwmark services, so the
    /// packet path skips those lookups when there are none.
    pub(crate) port0_services: usize,
    pub(crate) fwmark_services: usize,
    pub(crate) dests: DestArena,
    /// Deleted servers kept while connections use them, by (service key, address, port):
    /// re-adding one revives it.
    pub(crate) trash: HashMap<(ServiceKey, IpAddr, u16), DestId>,
    /// Trashed servers superseded in `trash` by a newer deletion of the same address;
    /// freed once unreferenced.
    pub(crate) orphans: Vec<DestId>,
    pub(crate) seq: u64,
    pub(crate) conns: ConnTable,
    pub timeouts: Timeouts,
    pub sysctl: Sysctl,
    pub stats: Stats,
    pub(crate) rng: Box<dyn Random + Send>,
    pub(crate) daemons: Vec<SyncDaemonConfig>,
    pub(crate) sync: crate::sync::SyncState,
    #[cfg(test)]
    pub(crate) scan_only: bool,
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

fn err(errno: Errno, detail: impl Into<String>) -> TableError {
    TableError::new(errno, detail)
}

/// Address checks of `ip_vs_new_dest`: a real server must be a unicast (or local) address.
fn check_unicast(addr: &IpAddr) -> Result<()> {
    let ok = match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            Errno::Invalid,
            format!("real server address {addr} is not unicast"),
        ))
    }
}

fn check_dest(svc: &ServiceConfig, d: &DestConfig) -> Result<()> {
    if d.weight > MAX_WEIGHT {
        return Err(err(Errno::Range, "server weight out of range"));
    }
    if d.l_threshold > d.u_threshold {
        return Err(err(
            Errno::Range,
            "lower threshold is higher than upper threshold",
        ));
    }
    if d.forward == Forward::Tunnel && d.tunnel.kind == TunnelType::Gue && d.tunnel.port == 0 {
        return Err(err(Errno::Invalid, "tunnel port is zero"));
    }
    if Family::of(&d.addr) != svc.key.family() && d.forward != Forward::Tunnel {
        return Err(err(
            Errno::AfNotSupported,
            "a real server of another address family needs tunnel forwarding",
        ));
    }
    check_unicast(&d.addr)
}

fn check_service(cfg: &ServiceConfig) -> Result<SchedKind> {
    let kind = SchedKind::from_name(&cfg.scheduler).ok_or_else(|| {
        err(
            Errno::NotFound,
            format!("scheduler {:?} not found", cfg.scheduler),
        )
    })?;
    if let Some(pe) = &cfg.pe {
        if pe != "sip" {
            return Err(err(
                Errno::NotFound,
                format!("persistence engine {pe:?} not found"),
            ));
        }
    }
    let max = cfg.key.family().max_prefix();
    if cfg.netmask.0 > max || (cfg.key.family() == Family::V6 && cfg.netmask.0 == 0) {
        return Err(err(Errno::Invalid, "netmask out of range"));
    }
    Ok(kind)
}

impl Table {
    pub fn new() -> Self {
        Table {
            services: SlotMap::with_key(),
            by_key: HashMap::new(),
            svc_order: Vec::new(),
            port0_services: 0,
            fwmark_services: 0,
            dests: SlotMap::with_key(),
            trash: HashMap::new(),
            orphans: Vec::new(),
            seq: 0,
            conns: ConnTable::default(),
            timeouts: Timeouts::default(),
            sysctl: Sysctl::default(),
            stats: Stats::default(),
            rng: Box::new(XorShift::new(0x9E37_79B9_7F4A_7C15)),
            daemons: Vec::new(),
            sync: Default::default(),
            #[cfg(test)]
            scan_only: false,
        }
    }

    /// Tests: services added from now on get schedulers that scan like the kernel
    /// ([`SchedKind::build_scan_only`]).
    #[cfg(test)]
    pub(crate) fn scan_only(&mut self) {
        self.scan_only = true;
    }

    /// Replaces the random source (twos); tests supply scripted draws.
    pub fn set_rng(&mut self, rng: Box<dyn Random + Send>) {
        self.rng = rng;
    }

    // ----- lookups -----

    pub fn service_id(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.by_key.get(key).copied()
    }

    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id)
    }

    /// Services in creation order.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &Service)> {
        self.svc_order.iter().map(|id| (*id, &self.services[*id]))
    }

    pub fn num_services(&self) -> usize {
        self.services.len()
    }

    /// A service's live servers in list order.
    pub fn dests_of(&self, id: ServiceId) -> DestView<'_> {
        DestView::new(&self.services[id].order, &self.dests)
    }

    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.dests.get(id)
    }

    pub fn find_dest(&self, svc: ServiceId, addr: IpAddr, port: u16) -> Option<DestId> {
        self.services[svc].by_addr.get(&(addr, port)).copied()
    }

    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id)
    }

    // ----- services -----

    /// `ipvsadm -A`.
    pub fn add_service(&mut self, cfg: ServiceConfig) -> Result<ServiceId> {
        let kind = check_service(&cfg)?;
        if self.by_key.contains_key(&cfg.key) {
            return Err(err(Errno::Exists, "service already exists"));
        }
        let key = cfg.key;
        #[cfg(test)]
        let sched = if self.scan_only {
            kind.build_scan_only()
        } else {
            kind.build()
        };
        #[cfg(not(test))]
        let sched = kind.build();
        let mut svc = Service {
            cfg,
            sched,
            order: Vec::new(),
            by_addr: HashMap::new(),
            stats: Stats::default(),
        };
        let flags = svc.cfg.sched_flags;
        svc.sched
            .update(&DestView::new(&[], &self.dests), flags, DestChange::Reset);
        let id = self.services.insert(svc);
        self.by_key.insert(key, id);
        self.svc_order.push(id);
        self.count_special(&key, 1);
        Ok(id)
    }

    fn count_special(&mut self, key: &ServiceKey, delta: isize) {
        match key {
            ServiceKey::Fwmark { .. } => {
                self.fwmark_services = self.fwmark_services.wrapping_add_signed(delta)
            }
            ServiceKey::Addr { port: 0, .. } => {
                self.port0_services = self.port0_services.wrapping_add_signed(delta)
            }
            _ => {}
        }
    }

    /// `ipvsadm -E`: replaces scheduler, flags, persistence, mask and PE. A scheduler
    /// change rebuilds the scheduler; the same scheduler keeps its state.
    pub fn edit_service(&mut self, cfg: ServiceConfig) -> Result<()> {
        let id = self
            .service_id(&cfg.key)
            .ok_or_else(|| err(Errno::NoService, "no such service"))?;
        let kind = check_service(&cfg)?;
        let svc = &mut self.services[id];
        let flags = cfg.sched_flags;
        let rebind = svc.sched.kind() != kind;
        if rebind && kind == SchedKind::Mh && svc.order.len() > crate::sched::MH_TABLE_SIZE {
            // ip_vs_mh_init_svc fails to build its table: the edit is refused.
            return Err(err(Errno::Invalid, "more real servers than mh table slots"));
        }
        let flags_changed = svc.cfg.sched_flags != flags;
        svc.cfg = cfg;
        if rebind {
            svc.sched = kind.build();
        }
        if rebind || flags_changed {
            let view = DestView::new(&svc.order, &self.dests);
            svc.sched.update(&view, flags, DestChange::Reset);
        }
        Ok(())
    }

    /// `ipvsadm -D`: the service goes; its servers go to the trash while connections
    /// still use them.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<()> {
        let id = self
            .service_id(key)
            .ok_or_else(|| err(Errno::NoService, "no such service"))?;
        self.unlink_service(id);
        Ok(())
    }

    fn unlink_service(&mut self, id: ServiceId) {
        let svc = self.services.remove(id).expect("service id is live");
        self.by_key.remove(&svc.cfg.key);
        self.svc_order.retain(|s| *s != id);
        self.count_special(&svc.cfg.key, -1);
        for d in svc.order {
            self.trash_dest(d, svc.cfg.key);
        }
    }

    /// `ipvsadm -C`.
    pub fn flush(&mut self) {
        let ids: Vec<ServiceId> = self.svc_order.clone();
        for id in ids {
            self.unlink_service(id);
        }
    }

    /// `ipvsadm -Z [service]`.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<()> {
        match key {
            Some(k) => {
                let id = self
                    .service_id(k)
                    .ok_or_else(|| err(Errno::NoService, "no such service"))?;
                self.zero_service(id);
            }
            None => {
                let ids: Vec<ServiceId> = self.svc_order.clone();
                for id in ids {
                    self.zero_service(id);
                }
                self.stats.zero();
            }
        }
        Ok(())
    }

    fn zero_service(&mut self, id: ServiceId) {
        let svc = &mut self.services[id];
        svc.stats.zero();
        for d in &svc.order {
            self.dests[*d].stats.zero();
        }
    }

    // ----- real servers -----

    /// `ipvsadm -a`. A server deleted from this service and still in the trash is revived
    /// with its counters (and goes to the head of the list again).
    pub fn add_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<DestId> {
        let sid = self
            .service_id(key)
            .ok_or_else(|| err(Errno::NoService, "service not defined"))?;
        check_dest(&self.services[sid].cfg, &cfg)?;
        if self.find_dest(sid, cfg.addr, cfg.port).is_some() {
            return Err(err(Errno::Exists, "destination already exists"));
        }
        self.seq += 1;
        let seq = self.seq;
        let revived = self.trash.remove(&(*key, cfg.addr, cfg.port));
        let addr = (cfg.addr, cfg.port);
        let id = match revived {
            Some(id) => {
                let d = &mut self.dests[id];
                d.svc = sid;
                d.available = true;
                d.idle_since = None;
                d.seq = seq;
                Self::apply_dest_cfg(d, cfg, true);
                id
            }
            None => self.dests.insert(Dest::new(sid, cfg, seq)),
        };
        let svc = &mut self.services[sid];
        svc.order.push(id);
        svc.by_addr.insert(addr, id);
        let flags = svc.cfg.sched_flags;
        let view = DestView::new(&svc.order, &self.dests);
        svc.sched.update(&view, flags, DestChange::Added(id));
        Ok(id)
    }

    /// `__ip_vs_update_dest`: weight, thresholds (OVERLOAD cleared when the upper threshold
    /// is removed or raised), forwarding. `last_weight` (mh) takes the weight on every add,
    /// on an edit only when it is not 0.
    fn apply_dest_cfg(d: &mut Dest, cfg: DestConfig, add: bool) {
        if cfg.u_threshold == 0 || cfg.u_threshold > d.cfg.u_threshold {
            d.overloaded = false;
        }
        if add || cfg.weight > 0 {
            d.last_weight = cfg.weight;
        }
        d.cfg = cfg;
    }

    /// `ipvsadm -e`.
    pub fn edit_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<()> {
        let sid = self
            .service_id(key)
            .ok_or_else(|| err(Errno::NoService, "service not defined"))?;
        check_dest(&self.services[sid].cfg, &cfg)?;
        let id = self
            .find_dest(sid, cfg.addr, cfg.port)
            .ok_or_else(|| err(Errno::NotFound, "no such destination"))?;
        Self::apply_dest_cfg(&mut self.dests[id], cfg, false);
        let svc = &mut self.services[sid];
        let flags = svc.cfg.sched_flags;
        let view = DestView::new(&svc.order, &self.dests);
        svc.sched.update(&view, flags, DestChange::Edited(id));
        Ok(())
    }

    /// Changes only a server's weight (health checks, `misc_dynamic`).
    pub fn set_weight(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: u16,
        weight: u32,
    ) -> Result<()> {
        let sid = self
            .service_id(key)
            .ok_or_else(|| err(Errno::NoService, "service not defined"))?;
        let id = self
            .find_dest(sid, addr, port)
            .ok_or_else(|| err(Errno::NotFound, "no such destination"))?;
        let mut cfg = self.dests[id].cfg.clone();
        cfg.weight = weight;
        self.edit_dest(key, cfg)
    }

    /// `ipvsadm -d`.
    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<()> {
        let sid = self
            .service_id(key)
            .ok_or_else(|| err(Errno::NoService, "service not defined"))?;
        let id = self
            .find_dest(sid, addr, port)
            .ok_or_else(|| err(Errno::NotFound, "no such destination"))?;
        let svc = &mut self.services[sid];
        svc.by_addr.remove(&(addr, port));
        let pos = svc.order.iter().position(|x| *x == id).expect("member");
        // The next-newer server is the one after it in the oldest-first vector.
        let newer = svc.order.get(pos + 1).copied();
        svc.order.remove(pos);
        let flags = svc.cfg.sched_flags;
        let view = DestView::new(&svc.order, &self.dests);
        svc.sched
            .update(&view, flags, DestChange::Removed { id, newer });
        self.trash_dest(id, *key);
        Ok(())
    }

    fn trash_dest(&mut self, id: DestId, key: ServiceKey) {
        let d = &mut self.dests[id];
        d.available = false;
        d.idle_since = None;
        let slot = (key, d.cfg.addr, d.cfg.port);
        // A server of the same address deleted earlier and still in the trash is
        // superseded: only the newest can be revived; the older one is freed with its
        // connections by the purge.
        if let Some(old) = self.trash.insert(slot, id) {
            self.orphans.push(old);
        }
    }

    /// Frees trashed servers unreferenced for [`DEST_TRASH_PERIOD_MS`].
    pub(crate) fn purge_trash(&mut self, now: Millis) {
        let dests = &mut self.dests;
        self.orphans.retain(|id| {
            let gone = dests.get(*id).is_none_or(|d| d.refs == 0);
            if gone {
                dests.remove(*id);
            }
            !gone
        });
        self.trash.retain(|_, id| {
            let d = &mut dests[*id];
            if d.refs > 0 {
                d.idle_since = None;
                return true;
            }
            match d.idle_since {
                None => {
                    d.idle_since = Some(now);
                    true
                }
                Some(t) if now.saturating_sub(t) < DEST_TRASH_PERIOD_MS => true,
                Some(_) => {
                    dests.remove(*id);
                    false
                }
            }
        });
    }

    // ----- timeouts and sync daemons -----

    /// `ipvsadm --set tcp tcpfin udp` (0 = unchanged).
    pub fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        self.timeouts.set_triple(tcp, tcpfin, udp);
    }

    /// `ipvsadm --start-daemon`: one master and one backup at most.
    pub fn start_daemon(&mut self, cfg: SyncDaemonConfig) -> Result<()> {
        if self.daemons.iter().any(|d| d.master == cfg.master) {
            return Err(err(Errno::Exists, "daemon has already run"));
        }
        self.daemons.push(cfg);
        Ok(())
    }

    /// `ipvsadm --stop-daemon`.
    pub fn stop_daemon(&mut self, master: bool) -> Result<()> {
        let before = self.daemons.len();
        self.daemons.retain(|d| d.master != master);
        if self.daemons.len() == before {
            return Err(err(Errno::NoService, "no daemon is running"));
        }
        Ok(())
    }

    pub fn daemons(&self) -> &[SyncDaemonConfig] {
        &self.daemons
    }

    // ----- periodic work -----

    /// One rate-estimator step for every stats object; call every 2 s.
    pub fn estimate(&mut self) {
        self.stats.estimate();
        for (_, s) in self.services.iter_mut() {
            s.stats.estimate();
        }
        for (_, d) in self.dests.iter_mut() {
            d.stats.estimate();
        }
    }

    /// Scheduler housekeeping (lblc/lblcr garbage collection) and trash purge; call about
    /// every few seconds.
    pub fn tick(&mut self, now: Millis) {
        for (_, svc) in self.services.iter_mut() {
            let view = DestView::new(&svc.order, &self.dests);
            svc.sched.tick(&view, now);
        }
        self.purge_trash(now);
    }
}

#[cfg(test)]
mod tests;
