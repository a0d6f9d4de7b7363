//! Connection entries and persistence templates, their lookup indexes and their timers.
//!
//! Lookup keys follow `ip_vs_conn.c`: an inbound packet is matched on
//! (protocol, client addr:port, virtual addr:port); a NAT reply on
//! (protocol, real addr:port, client addr:port); a template on
//! (protocol or 0, masked client, virtual addr or fwmark, virtual port or 0).
//!
//! Timers are a min-heap with lazy deletion: re-arming a timer to a *later* time only
//! updates the entry (the common case, every packet), re-arming it earlier pushes a new heap
//! node; stale nodes are skipped when popped.

use crate::dest::{DestId, ServiceId};
use crate::state::ConnState;
use crate::types::{Forward, Millis};
use slotmap::{new_key_type, SlotMap};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;

new_key_type! {
    /// Handle of a connection entry or template.
    pub struct ConnId;
}

/// Inbound lookup key: (protocol, client, virtual).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InKey {
    pub proto: u8,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
}

/// NAT reply lookup key: (protocol, real server, client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutKey {
    pub proto: u8,
    pub daddr: IpAddr,
    pub dport: u16,
    pub caddr: IpAddr,
    pub cport: u16,
}

/// Template lookup key. `proto` is 0 (IPPROTO_IP) for fwmark templates, whose `vaddr` holds
/// the mark as an address (mark 1 → `0.0.0.1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    pub proto: u8,
    pub snet: IpAddr,
    pub vaddr: IpAddr,
    pub vport: u16,
    /// Persistence-engine data (SIP Call-ID); empty without a PE.
    pub pe_data: Vec<u8>,
}

/// One entry of the connection table.
#[derive(Clone, Debug)]
pub struct Conn {
    pub proto: u8,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fwmark: u32,
    pub forward: Forward,
    pub state: ConnState,
    /// Counted in the server's `inactconns` (vs `activeconns`).
    pub inactive: bool,
    /// The director has not seen (or never sees) the reply half: DR, TUN, and NAT before
    /// the first reply. Selects the INPUT-ONLY TCP table.
    pub nooutput: bool,
    /// One-packet scheduling: expires right after its packet.
    pub one_packet: bool,
    /// Created by the sync protocol rather than by local scheduling.
    pub synced: bool,
    pub dest: DestId,
    pub svc: ServiceId,
    /// Controlling persistence template.
    pub control: Option<ConnId>,
    /// Entries this one controls (templates only).
    pub n_control: u32,
    pub in_pkts: u64,
    /// Current timeout in ms (the state's, or the persistence timeout for templates).
    pub timeout: Millis,
    pub expires: Millis,
    /// Earliest heap node pending for this entry.
    heap_at: Millis,
    /// Template key, for templates, so expiry can unhash it.
    pub tkey: Option<TemplateKey>,
    /// Still findable through its index (templates are unhashed when invalidated).
    pub hashed: bool,
    /// What the sync master last sent of it.
    pub sync: crate::sync::SyncMark,
}

impl Conn {
    pub fn is_template(&self) -> bool {
        matches!(self.state, ConnState::Template { .. })
    }

    pub fn in_key(&self) -> InKey {
        InKey {
            proto: self.proto,
            caddr: self.caddr,
            cport: self.cport,
            vaddr: self.vaddr,
            vport: self.vport,
        }
    }

    pub fn out_key(&self) -> OutKey {
        OutKey {
            proto: self.proto,
            daddr: self.daddr,
            dport: self.dport,
            caddr: self.caddr,
            cport: self.cport,
        }
    }
}

/// Fields to create an entry with; the table fills in timers and indexes.
pub struct NewConn {
    pub proto: u8,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fwmark: u32,
    pub forward: Forward,
    pub state: ConnState,
    pub one_packet: bool,
    pub synced: bool,
    pub dest: DestId,
    pub svc: ServiceId,
    pub tkey: Option<TemplateKey>,
}

#[derive(Default)]
pub struct ConnTable {
    arena: SlotMap<ConnId, Conn>,
    by_in: HashMap<InKey, ConnId>,
    by_out: HashMap<OutKey, ConnId>,
    templates: HashMap<TemplateKey, ConnId>,
    timers: BinaryHeap<Reverse<(Millis, ConnId)>>,
}

impl ConnTable {
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arena.is_empty()
    }

    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.arena.get(id)
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.arena.get_mut(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.arena.iter()
    }

    pub fn lookup_in(&self, key: &InKey) -> Option<ConnId> {
        self.by_in.get(key).copied()
    }

    pub fn lookup_out(&self, key: &OutKey) -> Option<ConnId> {
        self.by_out.get(key).copied()
    }

    pub fn lookup_template(&self, key: &TemplateKey) -> Option<ConnId> {
        self.templates.get(key).copied()
    }

    /// Inserts and hashes a new entry, armed to expire `timeout` ms from `now`.
    pub fn insert(&mut self, n: NewConn, now: Millis, timeout: Millis) -> ConnId {
        let template = matches!(n.state, ConnState::Template { .. });
        let conn = Conn {
            proto: n.proto,
            caddr: n.caddr,
            cport: n.cport,
            vaddr: n.vaddr,
            vport: n.vport,
            daddr: n.daddr,
            dport: n.dport,
            fwmark: n.fwmark,
            inactive: !n.state.is_active(),
            nooutput: n.forward != Forward::Masq,
            one_packet: n.one_packet,
            synced: n.synced,
            forward: n.forward,
            state: n.state,
            dest: n.dest,
            svc: n.svc,
            control: None,
            n_control: 0,
            in_pkts: 0,
            timeout,
            expires: now + timeout,
            heap_at: now + timeout,
            tkey: n.tkey,
            hashed: !n.one_packet,
            sync: crate::sync::SyncMark::default(),
        };
        let in_key = conn.in_key();
        let out_key = conn.out_key();
        let tkey = conn.tkey.clone();
        let masq = conn.forward == Forward::Masq;
        let hashed = conn.hashed;
        let id = self.arena.insert(conn);
        if hashed {
            if template {
                if let Some(k) = tkey {
                    self.templates.insert(k, id);
                }
            } else {
                self.by_in.insert(in_key, id);
                if masq {
                    self.by_out.insert(out_key, id);
                }
            }
        }
        self.timers.push(Reverse((now + timeout, id)));
        id
    }

    /// Makes the entry unfindable (an invalid template, an entry about to be replaced) while
    /// it lives on until its timer.
    pub fn unhash(&mut self, id: ConnId) {
        let Some(c) = self.arena.get_mut(id) else {
            return;
        };
        if !c.hashed {
            return;
        }
        c.hashed = false;
        if let Some(k) = &c.tkey {
            if self.templates.get(k) == Some(&id) {
                self.templates.remove(k);
            }
        } else {
            let ik = c.in_key();
            let ok = c.out_key();
            if self.by_in.get(&ik) == Some(&id) {
                self.by_in.remove(&ik);
            }
            if self.by_out.get(&ok) == Some(&id) {
                self.by_out.remove(&ok);
            }
        }
    }

    /// Re-arms the entry's timer: it now expires `timeout` ms after `now`.
    pub fn rearm(&mut self, id: ConnId, now: Millis, timeout: Millis) {
        let Some(c) = self.arena.get_mut(id) else {
            return;
        };
        c.timeout = timeout;
        c.expires = now + timeout;
        if c.expires < c.heap_at {
            c.heap_at = c.expires;
            self.timers.push(Reverse((c.expires, id)));
        }
    }

    /// Removes the entry from the table entirely and returns it.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn> {
        self.unhash(id);
        self.arena.remove(id)
    }

    /// Pops the next entry whose timer has fired by `now`, re-queuing entries that were
    /// re-armed to a later time. Returns `None` when nothing is due.
    pub fn next_due(&mut self, now: Millis) -> Option<ConnId> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                return None;
            }
            self.timers.pop();
            let Some(c) = self.arena.get_mut(id) else {
                continue;
            };
            if c.heap_at != at {
                continue; // superseded by an earlier node that already ran
            }
            if c.expires > now {
                c.heap_at = c.expires;
                self.timers.push(Reverse((c.expires, id)));
                continue;
            }
            // Mark the node consumed; the caller either removes the entry or re-arms it.
            c.heap_at = Millis::MAX;
            return Some(id);
        }
        None
    }

    /// Earliest pending timer, for a caller that wants to sleep until then.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }
}
