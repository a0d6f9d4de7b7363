//! The reconciler, `reconcile(&Table)`: brings the BPF maps in line with the table after
//! every change (what `DataPlane::sync` does for this plane).
//!
//! * Services and real servers get slots (`slots.rs`), adopted from pinned maps at start.
//! * A service value carries its server list (newest first) and is replaced as a whole,
//!   so a packet always sees one consistent list.
//! * dh/sh/mh tables are exported from rvs-core's own schedulers and written double
//!   buffered; rr/wrr cursors are adjusted as the kernel adjusts them on a list change
//!   (`cursor.rs`; the changes are recovered by comparing with the previously pushed state).
//! * Sysctls, timeouts and the TCP state tables are generated from `rvs_core::state`
//!   ([`encode::config_of`](crate::encode::config_of)).
//!
//! Every value written is built by [`encode`](crate::encode); a value equal to what the
//! map holds is not written again.

mod cursor;
mod slots;

pub use cursor::wrr_params;
pub use slots::{DestSlot, Slots};

use crate::abi::{self, Plain};
use crate::encode::{
    addr_bytes, config_of, dest_value, family_code, sched_code, service_flags, svc_key,
};
use crate::error::{map_err, Result};
use crate::loader::Director;
use crate::stats::{dest_counts, store_dest_field};
use crate::sys::BPF_ANY;
use cursor::{adjust_cursor, write_sched};
use rvs_core::{DestId, Family, Protocol, SchedKind, ServiceKey, Table};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

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

/// The userspace half of the data plane's state: the slots, and what was last pushed.
#[derive(Debug, Default)]
pub struct MapState {
    slots: Slots,
    pushed: HashMap<ServiceKey, Pushed>,
    vips: HashSet<abi::VipKey>,
    config: Option<abi::Config>,
    /// The interfaces attached to and their MACs (the other-host check).
    ifaces: Vec<(u32, [u8; 6])>,
    warned: HashSet<String>,
    /// Service slots whose lblc/lblcr caches must be cleared (the slot was freed or the
    /// scheduler rebound): the garbage collector does it.
    pub(crate) lblc_flush: Vec<u32>,
}

impl MapState {
    /// A fresh state, adopting the slots and VIPs found in the (pinned) maps.
    pub fn adopt(dir: &Director) -> Result<MapState> {
        let mut s = MapState {
            slots: Slots::adopt(dir)?,
            ..Default::default()
        };
        for (k, _) in dir.maps.vips.dump(0).map_err(map_err("rvs_vips"))? {
            s.vips.insert(abi::VipKey::from_bytes(&k));
        }
        Ok(s)
    }

    /// The interfaces the director is attached to, with their MACs: unicast frames for
    /// another MAC are left to the stack (`other_host`). Takes effect at the next sync.
    pub fn set_interfaces(&mut self, ifaces: Vec<(u32, [u8; 6])>) {
        self.ifaces = ifaces;
    }

    pub fn has_adopted(&self) -> bool {
        self.slots.has_adopted()
    }

    /// Forgets adopted objects no table object claimed (after the grace period).
    pub fn drop_unclaimed_adoptions(&mut self) {
        self.slots.drop_unclaimed_adoptions();
    }

    /// (slot, scheduler) of every service pushed.
    pub fn pushed_kinds(&self) -> impl Iterator<Item = (u32, SchedKind)> + '_ {
        self.pushed.values().map(|p| (p.slot, p.kind))
    }

    pub fn take_new_dest_addrs(&mut self) -> Vec<IpAddr> {
        self.slots.take_new_dest_addrs()
    }

    /// Ends the adoption grace: adopted services the table did not claim are removed
    /// (their connections carry on until they expire); adopted servers no longer claimed
    /// become unavailable at the next sync.
    pub fn end_grace(&mut self, dir: &Director) -> Result<()> {
        for (key, slot) in self.slots.end_grace() {
            unhash_service(dir, self, &key, slot)?;
        }
        Ok(())
    }

    /// A slot adopted at start (its counters predate this rvsd).
    pub fn is_adopted_slot(&self, slot: u16) -> bool {
        self.slots.is_adopted_slot(slot)
    }

    pub fn dest_slot(&self, id: DestId) -> Option<u16> {
        self.slots.dest_slot(id)
    }

    pub fn slots(&self) -> impl Iterator<Item = (&u16, &DestSlot)> {
        self.slots.iter()
    }

    fn warn_once(&mut self, key: String, msg: impl FnOnce() -> String) {
        if self.warned.insert(key) {
            tracing::warn!("{}", msg());
        }
    }
}

/// Pushes the table into the maps. Returns the number of map writes (for tests).
pub fn reconcile(dir: &Director, st: &mut MapState, table: &Table) -> Result<usize> {
    let mut writes = 0;
    writes += push_config(dir, st, table)?;
    let mut seen: HashSet<ServiceKey> = HashSet::new();
    let mut live_dests: HashSet<DestId> = HashSet::new();
    let mut vips: HashSet<abi::VipKey> = HashSet::new();
    for (sid, svc) in table.services() {
        let key = svc.cfg.key;
        // What the plane does not serve is refused before it reaches the table
        // (`XdpPlane::unserved_service`); SCTP has no program path at all.
        if let ServiceKey::Addr {
            proto: Protocol::Sctp,
            ..
        } = key
        {
            continue;
        }
        let Some(slot) = st.slots.claim_svc(&key) else {
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
            let Some(ds) = st.slots.claim_dest(id, slot, d.cfg.addr, d.cfg.port) else {
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
    for k in st.slots.unclaimed_services() {
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

fn push_config(dir: &Director, st: &mut MapState, table: &Table) -> Result<usize> {
    let mut c = config_of(table);
    for (i, (index, mac)) in st
        .ifaces
        .iter()
        .take(abi::RVS_MAX_IFACES as usize)
        .enumerate()
    {
        c.if_index[i] = *index;
        c.if_mac[i][..6].copy_from_slice(mac);
    }
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

#[allow(clippy::too_many_arguments)]
fn push_service(
    dir: &Director,
    st: &mut MapState,
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
        st.slots.mark_live(*ds, *id);
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
    writes += adjust_cursor(dir, slot, kind, flags, old.as_ref(), &list, mw, di)?;
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

/// Services gone from the table: unhashed from BPF (their connections carry on), slots
/// and scheduler state freed.
fn retire_services(dir: &Director, st: &mut MapState, seen: &HashSet<ServiceKey>) -> Result<usize> {
    let mut writes = 0;
    for key in st.slots.services_not_in(seen) {
        let slot = st.slots.take_svc(&key).expect("listed");
        st.pushed.remove(&key);
        unhash_service(dir, st, &svc_key(&key), slot)?;
        writes += 1;
    }
    Ok(writes)
}

/// Removes a service from BPF (its connections carry on) and frees its slot: lookup
/// tables, scheduler state and lblc/lblcr cache go with it.
fn unhash_service(dir: &Director, st: &mut MapState, key: &abi::SvcKey, slot: u32) -> Result<()> {
    dir.maps
        .services
        .delete(key.as_bytes())
        .map_err(map_err("rvs_services"))?;
    for g in 0..2u32 {
        let _ = dir.maps.luts.delete(&(slot * 2 + g).to_ne_bytes());
    }
    write_sched(dir, slot, abi::SchedState::default())?;
    st.lblc_flush.push(slot);
    st.slots.free_svc(slot);
    Ok(())
}

/// Servers no longer in any list: unavailable (their connections are dropped or
/// rescheduled per expire_nodest_conn) while the table still knows them; their slot is
/// freed once the table forgot them and no connection counts on them.
fn retire_dests(
    dir: &Director,
    st: &mut MapState,
    table: &Table,
    live: &HashSet<DestId>,
) -> Result<usize> {
    let mut writes = 0;
    for slot in st.slots.dest_slot_numbers() {
        let info = st.slots.holder(slot).expect("listed").clone();
        let in_list = info.id.is_some_and(|id| live.contains(&id));
        if in_list {
            continue;
        }
        if info.live || info.id.is_none() && !st.slots.adoption_pending(slot) {
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
            st.slots.mark_gone(slot);
        }
        let known = info.id.is_some_and(|id| table.dest(id).is_some());
        let adopted_pending = st.slots.adoption_pending(slot);
        let c = dest_counts(dir, slot);
        if !known && !adopted_pending && c.active == 0 && c.inactive == 0 && c.persist == 0 {
            free_dest_slot(dir, st, slot)?;
            writes += 1;
        }
    }
    Ok(writes)
}

fn free_dest_slot(dir: &Director, st: &mut MapState, slot: u16) -> Result<()> {
    dir.maps
        .dests
        .update(
            &(slot as u32).to_ne_bytes(),
            abi::Dest::default().as_bytes(),
            BPF_ANY,
        )
        .map_err(map_err("rvs_dests"))?;
    st.slots.free_dest(slot);
    Ok(())
}

fn push_vips(dir: &Director, st: &mut MapState, vips: HashSet<abi::VipKey>) -> Result<usize> {
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
