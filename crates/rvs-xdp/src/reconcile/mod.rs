//! `sync(&Table)`: brings the BPF maps in line with the table after every change.
//!
//! * Services and real servers get **slots** (indexes into the BPF arrays). A server keeps
//!   its slot while it lives in the table (also in the trash, so a revived server keeps its
//!   counters) and, after the table forgets it, until its last connection is gone. Slots
//!   found in pinned maps at start are adopted by (service, address, port).
//! * A service value carries its server list (newest first) and is replaced as a whole,
//!   so a packet always sees one consistent list.
//! * dh/sh/mh tables are exported from rvs-core's own schedulers and written double
//!   buffered; rr/wrr cursors are adjusted as the kernel adjusts them on a list change
//!   (the changes are recovered by comparing with the previously pushed state).
//! * Sysctls, timeouts and the TCP state tables are generated from `rvs_core::state`.

use crate::abi::{self, Plain};
use crate::error::{map_err, Result};
use crate::loader::Director;
use crate::sys::{BPF_ANY, BPF_F_LOCK};
use rvs_core::sched::gcd;
use rvs_core::state::{tcp_next, Dir, TcpFlags, TcpState};
use rvs_core::{DestId, Family, Forward, Protocol, SchedKind, ServiceKey, Table, TunnelType};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// 16 address bytes as the ABI holds them: IPv4 in the first four.
pub fn addr_bytes(a: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

pub fn family_code(f: Family) -> u8 {
    match f {
        Family::V4 => abi::RVS_AF_INET,
        Family::V6 => abi::RVS_AF_INET6,
    }
}

pub fn sched_code(k: SchedKind) -> u8 {
    match k {
        SchedKind::Rr => abi::RVS_SCHED_RR,
        SchedKind::Wrr => abi::RVS_SCHED_WRR,
        SchedKind::Lc => abi::RVS_SCHED_LC,
        SchedKind::Wlc => abi::RVS_SCHED_WLC,
        SchedKind::Sed => abi::RVS_SCHED_SED,
        SchedKind::Nq => abi::RVS_SCHED_NQ,
        SchedKind::Lblc => abi::RVS_SCHED_LBLC,
        SchedKind::Lblcr => abi::RVS_SCHED_LBLCR,
        SchedKind::Dh => abi::RVS_SCHED_DH,
        SchedKind::Sh => abi::RVS_SCHED_SH,
        SchedKind::Mh => abi::RVS_SCHED_MH,
        SchedKind::Fo => abi::RVS_SCHED_FO,
        SchedKind::Ovf => abi::RVS_SCHED_OVF,
        SchedKind::Twos => abi::RVS_SCHED_TWOS,
        SchedKind::None => abi::RVS_SCHED_NONE,
    }
}

/// The BPF key of a service.
pub fn svc_key(key: &ServiceKey) -> abi::SvcKey {
    let mut k = abi::SvcKey::default();
    match *key {
        ServiceKey::Addr { proto, addr, port } => {
            k.addr = addr_bytes(&addr);
            k.port = port.to_be();
            k.proto = proto.number();
            k.family = family_code(Family::of(&addr));
        }
        ServiceKey::Fwmark { mark, family } => {
            k.addr[..4].copy_from_slice(&mark.to_ne_bytes());
            k.family = family_code(family);
        }
    }
    k
}

/// The config value generated from the table's sysctls and timeouts and from
/// `rvs_core::state` (so the BPF state machine cannot diverge from the model's).
pub fn config_of(table: &Table) -> abi::Config {
    let mut c = abi::Config {
        abi_version: abi::RVS_ABI_VERSION,
        ..Default::default()
    };
    let s = &table.sysctl;
    c.flags = (if s.expire_nodest_conn {
        abi::RVS_CFG_EXPIRE_NODEST_CONN
    } else {
        0
    }) | (if s.expire_quiescent_template {
        abi::RVS_CFG_EXPIRE_QUIESCENT_TEMPLATE
    } else {
        0
    }) | (if s.sloppy_tcp {
        abi::RVS_CFG_SLOPPY_TCP
    } else {
        0
    }) | (if s.secure_tcp {
        abi::RVS_CFG_SECURE_TCP
    } else {
        0
    });
    c.conn_reuse_mode = s.conn_reuse_mode as u32;
    c.udp_timeout = table.timeouts.udp;
    c.tcp_timeout = table.timeouts.tcp;
    for st in TcpState::ALL {
        if st.is_active() {
            c.tcp_active |= 1 << (st as u32);
        }
    }
    let events = [
        TcpFlags::SYN,
        TcpFlags {
            fin: true,
            ..Default::default()
        },
        TcpFlags::ACK,
        TcpFlags::RST,
    ];
    for (secure_i, secure) in [false, true].into_iter().enumerate() {
        // tables: 0 INPUT, 1 OUTPUT, 2 INPUT-ONLY
        for (ti, (dir, input_only)) in [(Dir::In, false), (Dir::Out, false), (Dir::In, true)]
            .into_iter()
            .enumerate()
        {
            for (ev, flags) in events.iter().enumerate() {
                for st in TcpState::ALL {
                    let idx = ((secure_i * 3 + ti) * 4 + ev) * 11 + st as usize;
                    c.tcp_next[idx] = tcp_next(st, dir, input_only, *flags, secure) as u8;
                }
            }
        }
    }
    c
}

/// A real server's BPF configuration.
pub fn dest_value(cfg: &rvs_core::DestConfig, svc_slot: u32, available: bool) -> abi::Dest {
    abi::Dest {
        addr: addr_bytes(&cfg.addr),
        port: cfg.port.to_be(),
        family: family_code(Family::of(&cfg.addr)),
        fwd: cfg.forward.code() as u8,
        tun_type: match cfg.tunnel.kind {
            TunnelType::Ipip => abi::RVS_TUN_IPIP,
            TunnelType::Gue => abi::RVS_TUN_GUE,
            TunnelType::Gre => abi::RVS_TUN_GRE,
        },
        tun_flags: match cfg.tunnel.csum {
            rvs_core::TunnelCsum::NoCsum => 0,
            rvs_core::TunnelCsum::Csum => 1,
            rvs_core::TunnelCsum::RemCsum => 2,
        },
        tun_port: cfg.tunnel.port.to_be(),
        weight: cfg.weight,
        u_threshold: cfg.u_threshold,
        l_threshold: cfg.l_threshold,
        svc: svc_slot,
        flags: if available { abi::RVS_DF_AVAILABLE } else { 0 },
    }
}

/// What was pushed for one service, to tell what changed next time.
#[derive(Clone, Debug)]
struct Pushed {
    slot: u32,
    kind: SchedKind,
    flags: u32,
    /// (server, its slot, its configuration) in list order.
    list: Vec<(DestId, u16, rvs_core::DestConfig)>,
    lut: Option<Vec<u16>>,
    lut_gen: u32,
}

/// Who holds a dest slot.
#[derive(Clone, Debug)]
pub struct DestSlot {
    pub id: Option<DestId>,
    pub svc_slot: u32,
    pub addr: IpAddr,
    pub port: u16,
    /// Still a live member of its service.
    pub live: bool,
}

/// The userspace half of the data plane's state.
#[derive(Debug, Default)]
pub struct SyncState {
    svc_slots: HashMap<ServiceKey, u32>,
    free_svc: BTreeSet<u32>,
    pub(crate) dest_slots: HashMap<u16, DestSlot>,
    by_dest: HashMap<DestId, u16>,
    free_dest: BTreeSet<u16>,
    pushed: HashMap<ServiceKey, Pushed>,
    vips: HashSet<abi::VipKey>,
    config: Option<abi::Config>,
    pub(crate) warned: HashSet<String>,
    /// Service slots whose lblc/lblcr caches must be cleared (the slot was freed or the
    /// scheduler rebound): the garbage collector does it.
    pub(crate) lblc_flush: Vec<u32>,
    /// Adopted slots not yet claimed by a table object.
    adopted_svc: HashMap<abi::SvcKey, u32>,
    adopted_dest: HashMap<(u32, [u8; 16], u16), u16>,
    /// Build of the object, so test-only behaviour (fwmark) is not warned about there.
    pub(crate) test_build: bool,
    /// Addresses of servers that got a slot since the last call (to resolve up front).
    new_dest_addrs: Vec<IpAddr>,
    /// Slots found in use at start: their traffic counters hold an earlier rvsd's history.
    adopted_slots: HashSet<u16>,
}

impl std::hash::Hash for abi::VipKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.addr.hash(h);
        self.family.hash(h);
    }
}

impl std::hash::Hash for abi::SvcKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_bytes().hash(h);
    }
}

impl SyncState {
    /// A fresh state, adopting the slots found in the (pinned) maps.
    pub fn adopt(dir: &Director, test_build: bool) -> Result<SyncState> {
        let mut s = SyncState {
            free_svc: (0..abi::RVS_MAX_SERVICES).collect(),
            free_dest: (0..abi::RVS_MAX_DESTS as u16).collect(),
            test_build,
            ..Default::default()
        };
        for (k, v) in dir.maps.services.dump(0).map_err(map_err("rvs_services"))? {
            let key = abi::SvcKey::from_bytes(&k);
            let svc = abi::Service::from_bytes(&v);
            s.free_svc.remove(&svc.slot);
            s.adopted_svc.insert(key, svc.slot);
        }
        let mut buf = abi::Dest::default();
        for slot in 0..abi::RVS_MAX_DESTS {
            dir.maps
                .dests
                .lookup(&slot.to_ne_bytes(), buf.as_bytes_mut(), 0)
                .map_err(map_err("rvs_dests"))?;
            if buf.family == 0 {
                continue;
            }
            let slot = slot as u16;
            s.free_dest.remove(&slot);
            s.adopted_slots.insert(slot);
            let addr = ip_of(buf.family, &buf.addr);
            s.adopted_dest
                .insert((buf.svc, buf.addr, u16::from_be(buf.port)), slot);
            s.dest_slots.insert(
                slot,
                DestSlot {
                    id: None,
                    svc_slot: buf.svc,
                    addr,
                    port: u16::from_be(buf.port),
                    live: buf.flags & abi::RVS_DF_AVAILABLE != 0,
                },
            );
        }
        for (k, _) in dir.maps.vips.dump(0).map_err(map_err("rvs_vips"))? {
            s.vips.insert(abi::VipKey::from_bytes(&k));
        }
        Ok(s)
    }

    pub fn has_adopted(&self) -> bool {
        !self.adopted_svc.is_empty()
    }

    /// Forgets adopted objects no table object claimed (after the grace period).
    pub fn drop_unclaimed_adoptions(&mut self) {
        self.adopted_svc.clear();
        self.adopted_dest.clear();
    }

    /// (slot, scheduler) of every service pushed.
    pub fn pushed_kinds(&self) -> impl Iterator<Item = (u32, SchedKind)> + '_ {
        self.pushed.values().map(|p| (p.slot, p.kind))
    }

    pub fn take_new_dest_addrs(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.new_dest_addrs)
    }

    /// Ends the adoption grace: adopted services the table did not claim are removed
    /// (their connections carry on until they expire); adopted servers no longer claimed
    /// become unavailable at the next sync.
    pub fn end_grace(&mut self, dir: &Director) -> Result<()> {
        for (key, slot) in std::mem::take(&mut self.adopted_svc) {
            dir.maps
                .services
                .delete(key.as_bytes())
                .map_err(map_err("rvs_services"))?;
            for g in 0..2u32 {
                let _ = dir.maps.luts.delete(&(slot * 2 + g).to_ne_bytes());
            }
            write_sched(dir, slot, abi::SchedState::default())?;
            self.lblc_flush.push(slot);
            self.free_svc.insert(slot);
        }
        self.adopted_dest.clear();
        Ok(())
    }

    /// A slot adopted at start (its counters predate this rvsd).
    pub fn is_adopted_slot(&self, slot: u16) -> bool {
        self.adopted_slots.contains(&slot)
    }

    pub fn dest_slot(&self, id: DestId) -> Option<u16> {
        self.by_dest.get(&id).copied()
    }

    pub fn slots(&self) -> impl Iterator<Item = (&u16, &DestSlot)> {
        self.dest_slots.iter()
    }

    fn warn_once(&mut self, key: String, msg: impl FnOnce() -> String) {
        if self.warned.insert(key) {
            tracing::warn!("{}", msg());
        }
    }

    fn claim_svc(&mut self, key: &ServiceKey) -> Option<u32> {
        if let Some(s) = self.svc_slots.get(key) {
            return Some(*s);
        }
        let bk = svc_key(key);
        let slot = match self.adopted_svc.remove(&bk) {
            Some(s) => s,
            None => self.free_svc.pop_first()?,
        };
        self.svc_slots.insert(*key, slot);
        Some(slot)
    }

    fn claim_dest(&mut self, id: DestId, svc_slot: u32, addr: IpAddr, port: u16) -> Option<u16> {
        if let Some(s) = self.by_dest.get(&id) {
            return Some(*s);
        }
        let slot = match self
            .adopted_dest
            .remove(&(svc_slot, addr_bytes(&addr), port))
        {
            Some(s) => s,
            None => {
                self.new_dest_addrs.push(addr);
                self.free_dest.pop_first()?
            }
        };
        self.by_dest.insert(id, slot);
        self.dest_slots.insert(
            slot,
            DestSlot {
                id: Some(id),
                svc_slot,
                addr,
                port,
                live: true,
            },
        );
        Some(slot)
    }
}

/// Reads a dest slot's shared counters.
pub fn dest_counts(dir: &Director, slot: u16) -> abi::DestState {
    let base = slot as usize * size_of::<abi::DestState>();
    let m = &dir.maps.dest_state_mem;
    let ld = |o: usize| {
        m.u32_at(base + o)
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    abi::DestState {
        active: ld(0),
        inactive: ld(4),
        persist: ld(8),
        overloaded: ld(12),
        neigh_wanted: ld(16),
        pad: 0,
    }
}

fn store_dest_field(dir: &Director, slot: u16, off: usize, v: u32) {
    let base = slot as usize * size_of::<abi::DestState>();
    dir.maps
        .dest_state_mem
        .u32_at(base + off)
        .store(v, std::sync::atomic::Ordering::Relaxed);
}

pub fn clear_neigh_wanted(dir: &Director, slot: u16) {
    store_dest_field(dir, slot, 16, 0);
}

pub fn ip_of(family: u8, b: &[u8; 16]) -> IpAddr {
    if family == abi::RVS_AF_INET {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    } else {
        IpAddr::from(*b)
    }
}

/// wrr's `(mw, di)` for a list of weights (`ip_vs_wrr_gcd_weight`, `ip_vs_wrr_max_weight`).
pub fn wrr_params(weights: impl Iterator<Item = u32> + Clone) -> (u32, u32) {
    let g = weights.clone().filter(|w| *w > 0).fold(0, gcd);
    let di = if g == 0 { 1 } else { g };
    let max = weights.max().unwrap_or(0);
    (max.saturating_sub(di - 1), di)
}

/// Pushes the table into the maps. Returns the number of map writes (for tests).
pub fn sync(dir: &Director, st: &mut SyncState, table: &Table) -> Result<usize> {
    let mut writes = 0;
    writes += push_config(dir, st, table)?;
    let mut seen: HashSet<ServiceKey> = HashSet::new();
    let mut live_dests: HashSet<DestId> = HashSet::new();
    let mut vips: HashSet<abi::VipKey> = HashSet::new();
    for (sid, svc) in table.services() {
        let key = svc.cfg.key;
        if let ServiceKey::Addr {
            proto: Protocol::Sctp,
            ..
        } = key
        {
            st.warn_once(format!("sctp {key}"), || {
                format!("xdp data plane: {key} is not served: SCTP is not forwarded by XDP (the proxy does not either)")
            });
            continue;
        }
        if key.is_fwmark() && !st.test_build {
            st.warn_once(format!("fwm {key}"), || {
                format!("xdp data plane: {key} never matches: XDP runs before any firewall mark is set, so fwmark services are not served here")
            });
        }
        if svc.cfg.pe.is_some() {
            st.warn_once(format!("pe {key}"), || {
                format!("xdp data plane: {key}: the SIP persistence engine is not implemented in XDP; its new flows are dropped (reason no_pe_data)")
            });
        }
        let Some(slot) = st.claim_svc(&key) else {
            st.warn_once(format!("full {key}"), || {
                format!(
                    "xdp data plane: {key} is not served: all {} service slots are in use",
                    abi::RVS_MAX_SERVICES
                )
            });
            continue;
        };
        seen.insert(key);
        if let ServiceKey::Addr { addr, .. } = key {
            vips.insert(abi::VipKey {
                addr: addr_bytes(&addr),
                family: family_code(Family::of(&addr)) as u32,
            });
        }
        let mut list = Vec::new();
        for (id, d) in table.dests_of(sid).iter() {
            if list.len() >= abi::RVS_MAX_SVC_DESTS as usize {
                st.warn_once(format!("dests {key}"), || {
                    format!("xdp data plane: {key} has more than {} real servers; the oldest are not used for new connections", abi::RVS_MAX_SVC_DESTS)
                });
                break;
            }
            let Some(ds) = st.claim_dest(id, slot, d.cfg.addr, d.cfg.port) else {
                st.warn_once(format!("destfull {key}"), || {
                    format!(
                        "xdp data plane: out of real-server slots ({}); {key} is incomplete",
                        abi::RVS_MAX_DESTS
                    )
                });
                break;
            };
            live_dests.insert(id);
            list.push((id, ds, d.cfg.clone()));
        }
        writes += push_service(dir, st, table, sid, key, slot, list)?;
    }
    // adopted services not claimed yet keep their VIPs during the grace period
    for k in st.adopted_svc.keys() {
        if k.proto != 0 {
            vips.insert(abi::VipKey {
                addr: k.addr,
                family: k.family as u32,
            });
        }
    }
    writes += retire_services(dir, st, &seen)?;
    writes += retire_dests(dir, st, table, &live_dests)?;
    writes += push_vips(dir, st, vips)?;
    Ok(writes)
}

fn push_config(dir: &Director, st: &mut SyncState, table: &Table) -> Result<usize> {
    let c = config_of(table);
    if st.config.as_ref() == Some(&c) {
        return Ok(0);
    }
    dir.maps
        .config
        .update(&0u32.to_ne_bytes(), c.as_bytes(), BPF_ANY)
        .map_err(map_err("rvs_config"))?;
    st.config = Some(c);
    Ok(1)
}

fn service_flags(cfg: &rvs_core::ServiceConfig) -> u32 {
    let mut f = cfg.sched_flags.0 & (abi::RVS_SF_SCHED1 | abi::RVS_SF_SCHED2 | abi::RVS_SF_SCHED3);
    if cfg.persistence.is_some() {
        f |= abi::RVS_SF_PERSISTENT;
    }
    if cfg.ops {
        f |= abi::RVS_SF_OPS;
    }
    if cfg.key.is_fwmark() {
        f |= abi::RVS_SF_FWMARK;
    }
    if cfg.pe.is_some() {
        f |= abi::RVS_SF_PE;
    }
    f
}

#[allow(clippy::too_many_arguments)]
fn push_service(
    dir: &Director,
    st: &mut SyncState,
    table: &Table,
    sid: rvs_core::ServiceId,
    key: ServiceKey,
    slot: u32,
    list: Vec<(DestId, u16, rvs_core::DestConfig)>,
) -> Result<usize> {
    let svc = table.service(sid).expect("listed service");
    let cfg = &svc.cfg;
    let kind = svc.sched_kind();
    let flags = service_flags(cfg);
    let mut writes = 0;

    // real servers
    let old = st.pushed.get(&key).cloned();
    for (id, ds, dcfg) in &list {
        let prev = old.as_ref().and_then(|p| {
            p.list
                .iter()
                .find(|(i, ..)| i == id)
                .map(|(_, _, c)| c.clone())
        });
        writes += push_dest(dir, *ds, dcfg, slot, prev.as_ref())?;
        if let Some(s) = st.dest_slots.get_mut(ds) {
            s.live = true;
            s.id = Some(*id);
        }
    }

    // lookup table (dh, sh, mh), double buffered
    let lut = svc.lookup_table().map(|t| {
        t.iter()
            .map(|e| {
                e.and_then(|id| list.iter().find(|(i, ..)| *i == id).map(|(_, s, _)| *s))
                    .unwrap_or(abi::RVS_NO_DEST)
            })
            .collect::<Vec<u16>>()
    });
    let mut lut_gen = old.as_ref().map_or(0, |p| p.lut_gen);
    let rebound = old
        .as_ref()
        .is_none_or(|p| p.kind != kind || p.slot != slot);
    let lut_changed = rebound || old.as_ref().and_then(|p| p.lut.as_ref()) != lut.as_ref();
    if let (Some(table), true) = (lut.as_ref(), lut_changed) {
        lut_gen ^= 1;
        let mut v = abi::Lut::default();
        v.ent.fill(abi::RVS_NO_DEST);
        for (e, s) in v.ent.iter_mut().zip(table) {
            *e = *s;
        }
        let lkey = slot * 2 + lut_gen;
        dir.maps
            .luts
            .update(&lkey.to_ne_bytes(), v.as_bytes(), BPF_ANY)
            .map_err(map_err("rvs_luts"))?;
        writes += 1;
    }

    // scheduler state (rr, wrr)
    let (mw, di) = wrr_params(list.iter().map(|(_, _, c)| c.weight));
    writes += adjust_cursor(dir, st, slot, kind, flags, old.as_ref(), &list, mw, di)?;
    if rebound && old.is_some() {
        st.lblc_flush.push(slot);
    }

    // the service itself
    let mut v = abi::Service {
        slot,
        sched: sched_code(kind),
        family: family_code(key.family()),
        proto: key.protocol().map_or(0, Protocol::number),
        netmask: cfg.netmask.0,
        flags,
        timeout: cfg.persistence.unwrap_or(0),
        port: key.port().to_be(),
        n_dests: list.len() as u16,
        fwmark: match key {
            ServiceKey::Fwmark { mark, .. } => mark,
            _ => 0,
        },
        lut: slot * 2 + lut_gen,
        wrr_mw: mw,
        wrr_di: di,
        ..Default::default()
    };
    for (i, (_, ds, _)) in list.iter().enumerate() {
        v.dests[i] = *ds;
    }
    let bk = svc_key(&key);
    let mut cur = abi::Service::default();
    let same = dir
        .maps
        .services
        .lookup(bk.as_bytes(), cur.as_bytes_mut(), 0)
        .map_err(map_err("rvs_services"))?
        && cur == v;
    if !same {
        dir.maps
            .services
            .update(bk.as_bytes(), v.as_bytes(), BPF_ANY)
            .map_err(map_err("rvs_services"))?;
        writes += 1;
    }
    st.pushed.insert(
        key,
        Pushed {
            slot,
            kind,
            flags,
            list,
            lut,
            lut_gen,
        },
    );
    Ok(writes)
}

/// Writes a server's configuration; an upper threshold removed or raised clears OVERLOAD
/// (`__ip_vs_update_dest`).
fn push_dest(
    dir: &Director,
    slot: u16,
    cfg: &rvs_core::DestConfig,
    svc_slot: u32,
    prev: Option<&rvs_core::DestConfig>,
) -> Result<usize> {
    let v = dest_value(cfg, svc_slot, true);
    let mut cur = abi::Dest::default();
    dir.maps
        .dests
        .lookup(&(slot as u32).to_ne_bytes(), cur.as_bytes_mut(), 0)
        .map_err(map_err("rvs_dests"))?;
    let changed_config = prev.is_none_or(|p| p != cfg);
    if changed_config {
        let old_u = prev.map_or(cur.u_threshold, |p| p.u_threshold);
        let fresh = cur.family == 0;
        if fresh || cfg.u_threshold == 0 || cfg.u_threshold > old_u {
            store_dest_field(dir, slot, 12, 0);
        }
    }
    if cur == v {
        return Ok(0);
    }
    if cur.family == 0 {
        // a new slot starts from zero counts and zero traffic
        for off in (0..size_of::<abi::DestState>()).step_by(4) {
            store_dest_field(dir, slot, off, 0);
        }
        let zero = vec![0u8; dir.maps.dest_stats.value_len()];
        dir.maps
            .dest_stats
            .update(&(slot as u32).to_ne_bytes(), &zero, BPF_ANY)
            .map_err(map_err("rvs_dest_stats"))?;
    }
    dir.maps
        .dests
        .update(&(slot as u32).to_ne_bytes(), v.as_bytes(), BPF_ANY)
        .map_err(map_err("rvs_dests"))?;
    Ok(1)
}

fn read_sched(dir: &Director, slot: u32) -> Result<abi::SchedState> {
    let mut s = abi::SchedState::default();
    dir.maps
        .sched_state
        .lookup(&slot.to_ne_bytes(), s.as_bytes_mut(), BPF_F_LOCK)
        .map_err(map_err("rvs_sched_state"))?;
    Ok(s)
}

fn write_sched(dir: &Director, slot: u32, mut s: abi::SchedState) -> Result<()> {
    s.version = s.version.wrapping_add(1);
    dir.maps
        .sched_state
        .update(&slot.to_ne_bytes(), s.as_bytes(), BPF_F_LOCK)
        .map_err(map_err("rvs_sched_state"))
}

/// The rr/wrr cursor after a change, as `ip_vs_rr_del_dest` / `ip_vs_wrr_dest_changed`
/// leave it. Changes are recovered from the previous push: a fresh or rebound scheduler
/// starts at the head; rr follows a deleted cursor to the next-newer survivor; wrr rewinds
/// to the head on any list or server change and keeps its bar where it can.
#[allow(clippy::too_many_arguments)]
fn adjust_cursor(
    dir: &Director,
    _st: &SyncState,
    slot: u32,
    kind: SchedKind,
    flags: u32,
    old: Option<&Pushed>,
    list: &[(DestId, u16, rvs_core::DestConfig)],
    mw: u32,
    di: u32,
) -> Result<usize> {
    if kind != SchedKind::Rr && kind != SchedKind::Wrr {
        return Ok(0);
    }
    let fresh = old.is_none_or(|p| p.kind != kind || p.slot != slot);
    let mut s = read_sched(dir, slot)?;
    let before = s;
    if fresh {
        s.rr_cursor = abi::RVS_NO_DEST;
        s.rr_hint = 0;
        s.wrr_cl = -1;
        s.wrr_cw = mw as i32;
    } else {
        let old = old.expect("not fresh");
        let list_changed = old.list.len() != list.len()
            || old
                .list
                .iter()
                .zip(list)
                .any(|(a, b)| a.0 != b.0 || a.2 != b.2);
        match kind {
            SchedKind::Rr => {
                if s.rr_cursor != abi::RVS_NO_DEST
                    && !list.iter().any(|(_, ds, _)| *ds == s.rr_cursor)
                {
                    // the cursor's server left: the next newer survivor, or the head
                    let pos = old.list.iter().position(|(_, ds, _)| *ds == s.rr_cursor);
                    s.rr_cursor = pos
                        .and_then(|p| {
                            old.list[..p]
                                .iter()
                                .rev()
                                .find(|(id, ..)| list.iter().any(|(i, ..)| i == id))
                                .map(|(_, ds, _)| *ds)
                        })
                        .unwrap_or(abi::RVS_NO_DEST);
                }
            }
            _ => {
                let (mw, di) = (mw as i32, di as i32);
                if list_changed {
                    s.wrr_cl = -1;
                    if s.wrr_cw > mw || s.wrr_cw == 0 {
                        s.wrr_cw = mw;
                    } else if di > 1 {
                        s.wrr_cw = (s.wrr_cw / di) * di + 1;
                    }
                } else if old.flags != flags && s.wrr_cw == 0 {
                    s.wrr_cw = mw;
                    s.wrr_cl = -1;
                }
            }
        }
    }
    if s == before && !fresh {
        return Ok(0);
    }
    write_sched(dir, slot, s)?;
    Ok(1)
}

/// Services gone from the table: unhashed from BPF (their connections carry on), slots
/// and scheduler state freed.
fn retire_services(
    dir: &Director,
    st: &mut SyncState,
    seen: &HashSet<ServiceKey>,
) -> Result<usize> {
    let gone: Vec<ServiceKey> = st
        .svc_slots
        .keys()
        .filter(|k| !seen.contains(*k))
        .copied()
        .collect();
    let mut writes = 0;
    for key in gone {
        let slot = st.svc_slots.remove(&key).expect("listed");
        st.pushed.remove(&key);
        dir.maps
            .services
            .delete(svc_key(&key).as_bytes())
            .map_err(map_err("rvs_services"))?;
        for g in 0..2u32 {
            let _ = dir.maps.luts.delete(&(slot * 2 + g).to_ne_bytes());
        }
        write_sched(dir, slot, abi::SchedState::default())?;
        st.lblc_flush.push(slot);
        st.free_svc.insert(slot);
        writes += 1;
    }
    Ok(writes)
}

/// Servers no longer in any list: unavailable (their connections are dropped or
/// rescheduled per expire_nodest_conn) while the table still knows them; their slot is
/// freed once the table forgot them and no connection counts on them.
fn retire_dests(
    dir: &Director,
    st: &mut SyncState,
    table: &Table,
    live: &HashSet<DestId>,
) -> Result<usize> {
    let mut writes = 0;
    let slots: Vec<u16> = st.dest_slots.keys().copied().collect();
    for slot in slots {
        let info = st.dest_slots[&slot].clone();
        let in_list = info.id.is_some_and(|id| live.contains(&id));
        if in_list {
            continue;
        }
        if info.live || info.id.is_none() && !st.adopted_dest.values().any(|s| *s == slot) {
            // mark unavailable
            let mut cur = abi::Dest::default();
            dir.maps
                .dests
                .lookup(&(slot as u32).to_ne_bytes(), cur.as_bytes_mut(), 0)
                .map_err(map_err("rvs_dests"))?;
            if cur.flags & abi::RVS_DF_AVAILABLE != 0 {
                cur.flags &= !abi::RVS_DF_AVAILABLE;
                dir.maps
                    .dests
                    .update(&(slot as u32).to_ne_bytes(), cur.as_bytes(), BPF_ANY)
                    .map_err(map_err("rvs_dests"))?;
                writes += 1;
            }
            if let Some(s) = st.dest_slots.get_mut(&slot) {
                s.live = false;
            }
        }
        let known = info.id.is_some_and(|id| table.dest(id).is_some());
        let adopted_pending = st.adopted_dest.values().any(|s| *s == slot);
        let c = dest_counts(dir, slot);
        if !known && !adopted_pending && c.active == 0 && c.inactive == 0 && c.persist == 0 {
            free_dest_slot(dir, st, slot)?;
            writes += 1;
        }
    }
    Ok(writes)
}

fn free_dest_slot(dir: &Director, st: &mut SyncState, slot: u16) -> Result<()> {
    dir.maps
        .dests
        .update(
            &(slot as u32).to_ne_bytes(),
            abi::Dest::default().as_bytes(),
            BPF_ANY,
        )
        .map_err(map_err("rvs_dests"))?;
    if let Some(info) = st.dest_slots.remove(&slot) {
        if let Some(id) = info.id {
            st.by_dest.remove(&id);
        }
    }
    st.free_dest.insert(slot);
    st.adopted_slots.remove(&slot);
    Ok(())
}

fn push_vips(dir: &Director, st: &mut SyncState, vips: HashSet<abi::VipKey>) -> Result<usize> {
    let mut writes = 0;
    for k in vips.difference(&st.vips) {
        dir.maps
            .vips
            .update(k.as_bytes(), &1u32.to_ne_bytes(), BPF_ANY)
            .map_err(map_err("rvs_vips"))?;
        writes += 1;
    }
    for k in st.vips.difference(&vips) {
        dir.maps
            .vips
            .delete(k.as_bytes())
            .map_err(map_err("rvs_vips"))?;
        writes += 1;
    }
    st.vips = vips;
    Ok(writes)
}

/// Forwarding methods the plane serves, for `facts()`.
pub fn method_name(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "nat",
        Forward::Tunnel => "tun",
        Forward::Route => "dr",
        Forward::Local => "local",
    }
}

/// Empties every map (tests). Arrays are zeroed, hashes emptied.
pub fn wipe(dir: &Director) -> Result<()> {
    use crate::sys::RawMap;
    fn clear_hash(m: &RawMap, name: &'static str) -> Result<()> {
        for (k, _) in m.dump(0).map_err(map_err(name))? {
            m.delete(&k).map_err(map_err(name))?;
        }
        Ok(())
    }
    let mm = &dir.maps;
    clear_hash(&mm.conns4, "rvs_conns4")?;
    clear_hash(&mm.conns6, "rvs_conns6")?;
    clear_hash(&mm.out4, "rvs_out4")?;
    clear_hash(&mm.out6, "rvs_out6")?;
    clear_hash(&mm.services, "rvs_services")?;
    clear_hash(&mm.vips, "rvs_vips")?;
    clear_hash(&mm.luts, "rvs_luts")?;
    clear_hash(&mm.lblc, "rvs_lblc")?;
    clear_hash(&mm.lblcr, "rvs_lblcr")?;
    let zero_dest = abi::Dest::default();
    let zero_stats = vec![0u8; mm.dest_stats.value_len()];
    for slot in 0..abi::RVS_MAX_DESTS {
        let k = slot.to_ne_bytes();
        mm.dests
            .update(&k, zero_dest.as_bytes(), BPF_ANY)
            .map_err(map_err("rvs_dests"))?;
        mm.dest_stats
            .update(&k, &zero_stats, BPF_ANY)
            .map_err(map_err("rvs_dest_stats"))?;
        for off in (0..size_of::<abi::DestState>()).step_by(4) {
            store_dest_field(dir, slot as u16, off, 0);
        }
    }
    for slot in 0..abi::RVS_MAX_SERVICES {
        write_sched(dir, slot, abi::SchedState::default())?;
    }
    let zero_r = vec![0u8; mm.reasons.value_len()];
    for idx in 0..abi::RVS_REASON_COUNT {
        mm.reasons
            .update(&idx.to_ne_bytes(), &zero_r, BPF_ANY)
            .map_err(map_err("rvs_reasons"))?;
    }
    while let Ok(true) = mm.neigh_req.pop(abi::VipKey::default().as_bytes_mut()) {}
    if let Some(t) = &mm.test_env {
        t.update(
            &0u32.to_ne_bytes(),
            abi::TestEnv::default().as_bytes(),
            BPF_ANY,
        )
        .map_err(map_err("rvs_test_env"))?;
    }
    Ok(())
}
