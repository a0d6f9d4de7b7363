//! The slot allocator: services and real servers get **slots**, indexes into the BPF
//! arrays (`rvs_sched_state`, `rvs_dests`, the shared counters).
//!
//! A server keeps its slot while it lives in the table (also in the trash, so a revived
//! server keeps its counters) and, after the table forgets it, until its last connection
//! is gone (the reconciler decides when; see `retire_dests`). Slots found in use in pinned
//! maps at start are **adopted**: a service by its BPF key, a server by (service slot,
//! address, port), so a restarted rvsd gives every object the slot it had and no flow
//! loses its server.

use crate::abi::{self, Plain};
use crate::encode::{addr_bytes, ip_of, svc_key};
use crate::error::{map_err, Result};
use crate::loader::Director;
use rvs_core::{DestId, ServiceKey};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

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

/// Service and server slots: who holds which, which are free, which were adopted.
#[derive(Debug, Default)]
pub struct Slots {
    svc: HashMap<ServiceKey, u32>,
    free_svc: BTreeSet<u32>,
    dests: HashMap<u16, DestSlot>,
    by_dest: HashMap<DestId, u16>,
    free_dest: BTreeSet<u16>,
    /// Adopted slots not yet claimed by a table object.
    adopted_svc: HashMap<abi::SvcKey, u32>,
    adopted_dest: HashMap<(u32, [u8; 16], u16), u16>,
    /// Addresses of servers that got a slot since the last call (to resolve up front).
    new_dest_addrs: Vec<IpAddr>,
    /// Slots found in use at start: their traffic counters hold an earlier rvsd's history.
    adopted_slots: HashSet<u16>,
}

impl Slots {
    /// Every slot free but those found in use in the (pinned) maps, which are adopted.
    pub fn adopt(dir: &Director) -> Result<Slots> {
        let mut s = Slots {
            free_svc: (0..abi::RVS_MAX_SERVICES).collect(),
            free_dest: (0..abi::RVS_MAX_DESTS as u16).collect(),
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
            s.dests.insert(
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

    pub fn take_new_dest_addrs(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.new_dest_addrs)
    }

    /// A slot adopted at start (its counters predate this rvsd).
    pub fn is_adopted_slot(&self, slot: u16) -> bool {
        self.adopted_slots.contains(&slot)
    }

    pub fn dest_slot(&self, id: DestId) -> Option<u16> {
        self.by_dest.get(&id).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u16, &DestSlot)> {
        self.dests.iter()
    }

    /// The slot of a service: the one it holds, the one adopted for its key, or a free
    /// one (`None` when all are in use).
    pub(super) fn claim_svc(&mut self, key: &ServiceKey) -> Option<u32> {
        if let Some(s) = self.svc.get(key) {
            return Some(*s);
        }
        let bk = svc_key(key);
        let slot = match self.adopted_svc.remove(&bk) {
            Some(s) => s,
            None => self.free_svc.pop_first()?,
        };
        self.svc.insert(*key, slot);
        Some(slot)
    }

    /// The slot of a server, as [`claim_svc`](Self::claim_svc) for services.
    pub(super) fn claim_dest(
        &mut self,
        id: DestId,
        svc_slot: u32,
        addr: IpAddr,
        port: u16,
    ) -> Option<u16> {
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
        self.dests.insert(
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

    /// Adopted services no table object claimed yet (their VIPs stay during the grace).
    pub(super) fn unclaimed_services(&self) -> impl Iterator<Item = &abi::SvcKey> {
        self.adopted_svc.keys()
    }

    /// Ends the adoption grace: the unclaimed adopted services, to be removed (their slots
    /// are not free yet); unclaimed adopted servers are no longer kept for their owners.
    pub(super) fn end_grace(&mut self) -> Vec<(abi::SvcKey, u32)> {
        let svcs = std::mem::take(&mut self.adopted_svc).into_iter().collect();
        self.adopted_dest.clear();
        svcs
    }

    /// Services holding a slot that are not in `seen`.
    pub(super) fn services_not_in(&self, seen: &HashSet<ServiceKey>) -> Vec<ServiceKey> {
        self.svc
            .keys()
            .filter(|k| !seen.contains(*k))
            .copied()
            .collect()
    }

    /// Takes a service's slot from it (the slot is not free yet: [`free_svc`](Self::free_svc)).
    pub(super) fn take_svc(&mut self, key: &ServiceKey) -> Option<u32> {
        self.svc.remove(key)
    }

    pub(super) fn free_svc(&mut self, slot: u32) {
        self.free_svc.insert(slot);
    }

    /// Every dest slot held, by number.
    pub(super) fn dest_slot_numbers(&self) -> Vec<u16> {
        self.dests.keys().copied().collect()
    }

    pub(super) fn holder(&self, slot: u16) -> Option<&DestSlot> {
        self.dests.get(&slot)
    }

    /// A server now (again) in its service's list.
    pub(super) fn mark_live(&mut self, slot: u16, id: DestId) {
        if let Some(s) = self.dests.get_mut(&slot) {
            s.live = true;
            s.id = Some(id);
        }
    }

    pub(super) fn mark_gone(&mut self, slot: u16) {
        if let Some(s) = self.dests.get_mut(&slot) {
            s.live = false;
        }
    }

    /// An adopted server slot still kept for a table object that may claim it.
    pub(super) fn adoption_pending(&self, slot: u16) -> bool {
        self.adopted_dest.values().any(|s| *s == slot)
    }

    pub(super) fn free_dest(&mut self, slot: u16) {
        if let Some(info) = self.dests.remove(&slot) {
            if let Some(id) = info.id {
                self.by_dest.remove(&id);
            }
        }
        self.free_dest.insert(slot);
        self.adopted_slots.remove(&slot);
    }
}
