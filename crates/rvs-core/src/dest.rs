//! Real servers ("destinations") and the list-order view schedulers iterate.

use crate::config::DestConfig;
use crate::stats::Stats;
use crate::types::Millis;
use slotmap::{new_key_type, SlotMap};

new_key_type! {
    /// Stable handle of a real server. It stays valid while the server sits in the trash
    /// (deleted but still referenced by connections), so connections and scheduler tables
    /// can hold it; a freed server's handle simply stops resolving.
    pub struct DestId;
    /// Stable handle of a virtual service.
    pub struct ServiceId;
}

/// A real server of one virtual service, with its runtime state.
#[derive(Clone, Debug)]
pub struct Dest {
    pub svc: ServiceId,
    pub cfg: DestConfig,
    /// Last non-zero weight (mh keeps the slots of quiesced servers).
    pub last_weight: u32,
    pub activeconns: u32,
    pub inactconns: u32,
    pub persistconns: u32,
    /// Set by the upper threshold, cleared by the hysteresis rule.
    pub overloaded: bool,
    /// Cleared while the server sits in the trash.
    pub available: bool,
    /// Connection entries (templates included) that point here.
    pub refs: u32,
    /// Insertion sequence: larger is newer. Gives list order to structures that keep
    /// servers sorted by something else.
    pub seq: u64,
    pub stats: Stats,
    /// When a trashed server was first seen unreferenced.
    pub idle_since: Option<Millis>,
}

impl Dest {
    pub fn new(svc: ServiceId, cfg: DestConfig, seq: u64) -> Self {
        Dest {
            svc,
            last_weight: cfg.weight,
            cfg,
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
            overloaded: false,
            available: true,
            refs: 0,
            seq,
            stats: Stats::default(),
            idle_since: None,
        }
    }

    pub fn weight(&self) -> u32 {
        self.cfg.weight
    }

    /// Connections that count against the thresholds (templates excluded).
    pub fn total_conns(&self) -> u32 {
        self.activeconns + self.inactconns
    }
}

pub type DestArena = SlotMap<DestId, Dest>;

/// The servers of one service in list order: newest first, as the kernel's
/// `list_add_rcu` at the head leaves them.
#[derive(Clone, Copy)]
pub struct DestView<'a> {
    /// Oldest first (cheap appends); iteration reverses it.
    order: &'a [DestId],
    arena: &'a DestArena,
}

impl<'a> DestView<'a> {
    pub fn new(order: &'a [DestId], arena: &'a DestArena) -> Self {
        DestView { order, arena }
    }

    /// Servers in list order, newest first.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (DestId, &'a Dest)> + ExactSizeIterator + 'a {
        let arena = self.arena;
        self.order.iter().rev().map(move |id| (*id, &arena[*id]))
    }

    /// Servers in list order starting right after `cursor` (or at the head when `None`),
    /// wrapping once around: the walk of rr.
    pub fn iter_after(
        &self,
        cursor: Option<DestId>,
    ) -> impl Iterator<Item = (DestId, &'a Dest)> + 'a {
        let n = self.order.len();
        // list index of the cursor (0 = newest), or None for the head.
        let start = cursor
            .and_then(|c| self.position(c))
            .map(|p| p + 1)
            .unwrap_or(0);
        let order = self.order;
        let arena = self.arena;
        (0..n).map(move |k| {
            let li = (start + k) % n;
            let id = order[n - 1 - li];
            (id, &arena[id])
        })
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The server at list index `i` (0 = newest).
    pub fn nth(&self, i: usize) -> Option<(DestId, &'a Dest)> {
        let n = self.order.len();
        if i >= n {
            return None;
        }
        let id = self.order[n - 1 - i];
        Some((id, &self.arena[id]))
    }

    /// List index (0 = newest) of a server of this service.
    pub fn position(&self, id: DestId) -> Option<usize> {
        let n = self.order.len();
        self.order.iter().rposition(|x| *x == id).map(|p| n - 1 - p)
    }

    /// Any server by handle, including trashed ones of this table; `None` once freed.
    pub fn get(&self, id: DestId) -> Option<&'a Dest> {
        self.arena.get(id)
    }

    /// True if the handle is a live member of this list.
    pub fn contains(&self, id: DestId) -> bool {
        self.arena.get(id).is_some_and(|d| d.available) && self.order.contains(&id)
    }
}
