//! A realistic service for timing one scheduling decision through the `Scheduler` trait:
//! `n` servers with weights 1..=100 and live connection counts (0..50 active, 0..200
//! inactive), clients spread over many addresses and destinations over 1024 addresses
//! (lblc/lblcr/dh caches warm). Shared by the criterion bench and the table printer.

use rvs_core::config::DestConfig;
use rvs_core::dest::{Dest, DestArena, DestId, DestView, ServiceId};
use rvs_core::sched::{DestChange, Random, SchedEnv, SchedInput, SchedKind, Scheduler, XorShift};
use rvs_core::types::{Protocol, SchedFlags};
use std::net::{IpAddr, Ipv4Addr};

/// mh cannot place more servers than its 4093 slots; beyond that the kernel keeps the
/// table it had (see mh.rs), which is what the bench reproduces.
const MH_SLOTS: usize = 4093;

pub struct Service {
    arena: DestArena,
    order: Vec<DestId>,
    sched: Box<dyn Scheduler>,
    rng: XorShift,
    flags: SchedFlags,
    i: u32,
}

impl Service {
    pub fn new(kind: SchedKind, n: usize) -> Self {
        Self::build(kind, n, false)
    }

    /// True for the schedulers that rvs indexes (so a scanning build differs).
    pub fn indexed_elsewhere(&self) -> bool {
        matches!(
            self.sched.kind(),
            SchedKind::Lc
                | SchedKind::Wlc
                | SchedKind::Sed
                | SchedKind::Nq
                | SchedKind::Fo
                | SchedKind::Ovf
        )
    }

    /// With the kernel's O(n) scan instead of rvs's index (lc/wlc/sed/nq/fo/ovf).
    pub fn scanning(kind: SchedKind, n: usize) -> Self {
        Self::build(kind, n, true)
    }

    fn build(kind: SchedKind, n: usize, scan: bool) -> Self {
        let mut rng = XorShift::new(0x5eed ^ n as u64);
        let mut arena = DestArena::with_key();
        let mut order = Vec::with_capacity(n);
        for i in 0..n {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a80_0000 + i as u32));
            let cfg = DestConfig::new(addr, 80).with_weight(1 + rng.below(100));
            let mut d = Dest::new(ServiceId::default(), cfg, i as u64 + 1);
            d.activeconns = rng.below(50);
            d.inactconns = rng.below(200);
            order.push(arena.insert(d));
        }
        let flags = SchedFlags::default();
        let mut sched = if scan {
            kind.build_scan_only()
        } else {
            kind.build()
        };
        // Bind after the servers exist (ipvsadm -E -s), then add the rest one by one.
        let bound = if kind == SchedKind::Mh {
            n.min(MH_SLOTS)
        } else {
            n
        };
        sched.update(
            &DestView::new(&order[..bound], &arena),
            flags,
            DestChange::Reset,
        );
        for k in bound..n {
            sched.update(
                &DestView::new(&order[..=k], &arena),
                flags,
                DestChange::Added(order[k]),
            );
        }
        let mut s = Service {
            arena,
            order,
            sched,
            rng,
            flags,
            i: 0,
        };
        for _ in 0..4096 {
            s.pick(); // warm the lblc/lblcr caches
        }
        s
    }

    /// One decision, plus what it does to the loads: the chosen server gains an active
    /// connection and a random server loses one, both reported to the scheduler as the
    /// table reports them (`load_changed`). Keeps the loads steady and makes the cost of
    /// an indexed scheduler's upkeep part of the figure.
    #[inline]
    pub fn pick(&mut self) -> Option<DestId> {
        let picked = self.decide();
        if let Some(id) = picked {
            self.arena[id].activeconns += 1;
            self.sched
                .load_changed(&DestView::new(&self.order, &self.arena), id);
        }
        let k = self.order[self.rng.below(self.order.len() as u32) as usize];
        if self.arena[k].activeconns > 0 {
            self.arena[k].activeconns -= 1;
            self.sched
                .load_changed(&DestView::new(&self.order, &self.arena), k);
        }
        picked
    }

    /// One decision for the next client (and destination).
    #[inline]
    fn decide(&mut self) -> Option<DestId> {
        self.i = self.i.wrapping_add(1);
        let input = SchedInput {
            proto: Some(Protocol::Tcp),
            saddr: IpAddr::V4(Ipv4Addr::from(
                0xcb00_0000u32.wrapping_add(self.i.wrapping_mul(2_654_435_761)),
            )),
            sport: self.i as u16,
            daddr: IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (self.i & 1023))),
            dport: 80,
        };
        let view = DestView::new(&self.order, &self.arena);
        let mut env = SchedEnv {
            now: 1000,
            flags: self.flags,
            rng: &mut self.rng,
        };
        self.sched.schedule(&view, &input, &mut env)
    }
}

pub const SIZES: [usize; 3] = [10, 1_000, 10_000];
