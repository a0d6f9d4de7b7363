//! A bare server list driven straight through the [`Scheduler`] trait, for the unit and
//! property tests of the schedulers (the table and packets are covered by the vectors).

use super::{DestChange, Random, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::config::DestConfig;
use crate::dest::{Dest, DestArena, DestId, DestView, ServiceId};
use crate::types::{Millis, Protocol, SchedFlags};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

/// Random source that plays back fixed draws, then always 0.
#[derive(Default)]
pub struct Draws(pub VecDeque<u32>);

impl Random for Draws {
    fn below(&mut self, bound: u32) -> u32 {
        let v = self.0.pop_front().unwrap_or(0);
        assert!(v < bound, "draw {v} not below {bound}");
        v
    }
}

pub struct Fixture {
    pub arena: DestArena,
    /// Oldest first, like the table keeps it.
    pub order: Vec<DestId>,
    pub sched: Box<dyn Scheduler>,
    pub flags: SchedFlags,
    pub rng: Draws,
    pub now: Millis,
    seq: u64,
}

/// `192.168.(n / 256).(n % 256)`: a distinct server address per number.
pub fn server_addr(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 168, (n >> 8) as u8, n as u8))
}

pub fn client(addr: u32, port: u16) -> SchedInput {
    SchedInput {
        proto: Some(Protocol::Tcp),
        saddr: IpAddr::V4(Ipv4Addr::from(addr)),
        sport: port,
        daddr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        dport: 80,
    }
}

impl Fixture {
    pub fn new(kind: SchedKind) -> Self {
        let mut f = Fixture {
            arena: DestArena::with_key(),
            order: Vec::new(),
            sched: kind.build(),
            flags: SchedFlags::default(),
            rng: Draws::default(),
            now: 0,
            seq: 0,
        };
        f.notify(DestChange::Reset);
        f
    }

    /// A fixture whose scheduler is bound after the servers exist (`cw = mw` for wrr).
    pub fn bound_with(kind: SchedKind, weights: &[u32]) -> (Self, Vec<DestId>) {
        let mut f = Fixture::new(SchedKind::None);
        let ids = weights.iter().map(|w| f.add(*w)).collect();
        f.sched = kind.build();
        f.notify(DestChange::Reset);
        (f, ids)
    }

    pub fn view(&self) -> DestView<'_> {
        DestView::new(&self.order, &self.arena)
    }

    fn notify(&mut self, change: DestChange) {
        let view = DestView::new(&self.order, &self.arena);
        self.sched.update(&view, self.flags, change);
    }

    /// Adds a server at the head of the list; its address is numbered by insertion.
    pub fn add(&mut self, weight: u32) -> DestId {
        self.seq += 1;
        let cfg = DestConfig::new(server_addr(self.seq as u32), 80).with_weight(weight);
        let id = self
            .arena
            .insert(Dest::new(ServiceId::default(), cfg, self.seq));
        self.order.push(id);
        self.notify(DestChange::Added(id));
        id
    }

    /// Changes a server as an admin edit would (weight edits keep `last_weight`).
    pub fn edit(&mut self, id: DestId, f: impl FnOnce(&mut Dest)) {
        let d = &mut self.arena[id];
        f(d);
        if d.cfg.weight > 0 {
            d.last_weight = d.cfg.weight;
        }
        self.notify(DestChange::Edited(id));
    }

    /// Sets runtime counters and tells the scheduler, as the table does on every change.
    pub fn load(&mut self, id: DestId, active: u32, inactive: u32) {
        let d = &mut self.arena[id];
        d.activeconns = active;
        d.inactconns = inactive;
        let view = DestView::new(&self.order, &self.arena);
        self.sched.load_changed(&view, id);
    }

    /// Sets or clears OVERLOAD and tells the scheduler.
    pub fn overload(&mut self, id: DestId, on: bool) {
        self.arena[id].overloaded = on;
        let view = DestView::new(&self.order, &self.arena);
        self.sched.load_changed(&view, id);
    }

    pub fn remove(&mut self, id: DestId) {
        let pos = self.order.iter().position(|x| *x == id).expect("member");
        let newer = self.order.get(pos + 1).copied();
        self.order.remove(pos);
        self.arena[id].available = false;
        self.notify(DestChange::Removed { id, newer });
    }

    pub fn pick_for(&mut self, input: &SchedInput) -> Option<DestId> {
        let view = DestView::new(&self.order, &self.arena);
        let mut env = SchedEnv {
            now: self.now,
            flags: self.flags,
            rng: &mut self.rng,
        };
        self.sched.schedule(&view, input, &mut env)
    }

    pub fn pick(&mut self) -> Option<DestId> {
        self.pick_for(&client(0xcb00_7101, 1000))
    }

    pub fn tick(&mut self, now: Millis) {
        self.now = now;
        let view = DestView::new(&self.order, &self.arena);
        self.sched.tick(&view, now);
    }
}

/// A server for property tests: (weight, active, inactive, OVERLOAD).
pub type Spec = (u32, u32, u32, bool);

pub fn arb_servers() -> impl proptest::strategy::Strategy<Value = Vec<Spec>> {
    use proptest::prelude::*;
    prop::collection::vec((0u32..5, 0u32..6, 0u32..6, prop::bool::weighted(0.2)), 1..9)
}

impl Fixture {
    /// Servers added in the order given (so the last one heads the list), then loaded.
    pub fn with_servers(kind: SchedKind, specs: &[Spec]) -> (Self, Vec<DestId>) {
        let mut f = Fixture::new(kind);
        let ids: Vec<DestId> = specs.iter().map(|s| f.add(s.0)).collect();
        for (id, s) in ids.iter().zip(specs) {
            f.load(*id, s.1, s.2);
            f.overload(*id, s.3);
        }
        (f, ids)
    }
}

/// Reference rule written as "smallest value, then the first server in list order that
/// has it": values are fractions `num / den` (den > 0), compared exactly.
pub fn first_with_least(
    view: &DestView<'_>,
    ok: impl Fn(&Dest) -> bool,
    value: impl Fn(&Dest) -> (u64, u64),
) -> Option<DestId> {
    let candidates: Vec<(DestId, (u64, u64))> = view
        .iter()
        .filter(|(_, d)| ok(d))
        .map(|(id, d)| (id, value(d)))
        .collect();
    let less = |a: (u64, u64), b: (u64, u64)| {
        (a.0 as u128) * (b.1 as u128) < (b.0 as u128) * (a.1 as u128)
    };
    let best = candidates
        .iter()
        .map(|c| c.1)
        .reduce(|a, b| if less(b, a) { b } else { a })?;
    candidates
        .iter()
        .find(|c| !less(best, c.1) && !less(c.1, best))
        .map(|c| c.0)
}
